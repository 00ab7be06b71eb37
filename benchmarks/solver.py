"""Solver speed, measured side by side in one run.

Voxel updates per second (grid voxels × steps / second, G = 1e9) of the forward-Euler step

    φ ← φ + dt M ∇²(f'(φ) − ε²∇²φ)          (CHParams(): ε = 3, dt = 1e-3, periodic 7-point stencil)

for: the numpy reference (ch_numba.reference.step, float32), our ``cpu`` backend (the fused
kernel through ch_numba.solver.Stepper, float32 and float64), the plain two-pass prange kernel
(μ pass, then φ pass; kernels_cpu.two_pass_step), py-pde's CahnHilliardPDE stepped by its
compiled explicit Euler stepper (fixed dt, not adaptive, no trackers; py-pde works in float64;
its free energy is scaled differently, ∂c/∂t = ∇²(c³ − c − γ∇²c) with γ = ε², but each step
does the same stencil work) and, on a CUDA GPU, our ``cuda`` backend.

Memory-bandwidth fraction. A step must at least read φ and write φ_next: 2 × itemsize bytes
per voxel; this is what the fused kernel moves (μ lives in a cache-resident ring of planes).
The two-pass scheme must move at least 5 × itemsize (read φ, write μ; read φ and μ, write
φ_next), so the fused kernel's minimum traffic is 2/5 of it. Achieved GB/s = minimum bytes
per voxel × voxel updates/s; the fraction divides it by this machine's bandwidth, measured
here with STREAM-like numba prange loops over 256 MiB float64 arrays (copy: 16 bytes,
triad: 24 bytes per element; the larger of the two is used).

Paper data set: 64³, 50 frames × 400 steps = 20000 steps per sequence, plus the float64 free
energy and the blow-up check of every frame, timed through Stepper (advance, get, free_energy).

CUDA (on a GPU only; ``--cuda-only`` skips everything else): the fused kernel (one launch per step
for a whole batch) at each size with B = 1, and at ``--cuda-batch-size`` (64) with B =
``--cuda-batch`` (16) members, float32 and float64. The bandwidth fraction divides the minimum
traffic, 2 × itemsize bytes per voxel and step, by the device's own device-to-device copy rate
(bytes read + written per second, 1 GiB buffers). The paper data set is timed per frame of a batch:
400 steps, the copy back of the B states, their blow-up checks and free energies (on the host);
also the steps alone (the GPU's share).

Timing: every entry is the best of --repeats rounds, the rounds interleaved over all entries
(a slow spell of a shared host then spoils one round of each, not all rounds of one);
--wait-idle waits for other processes to leave the CPUs before each round, and the run
reports the CPU share other processes used meanwhile.

Usage:  python benchmarks/solver.py [--sizes 64 128 256] [--repeats 5] [--quick] [--no-pypde]
        [--wait-idle SECONDS] [--cuda-only] [--cuda-batch 16] [--cuda-batch-size 64]
        (``python -m benchmarks.solver ...`` works as well)
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numba
import numpy as np
from numba import njit, prange

from ch_numba import reference
from ch_numba.kernels_cpu import kernels
from ch_numba.params import CHParams
from ch_numba.physics import coefficients
from ch_numba.solver import Stepper, free_energy

if __package__:  # python -m benchmarks.solver
    from ._common import SHARE, Timing, add_wait_idle_option, best_time, cpu_model
else:  # python benchmarks/solver.py: this folder is first on sys.path
    from _common import SHARE, Timing, add_wait_idle_option, best_time, cpu_model

PAPER = dict(size=64, frames=50, steps_per_frame=400)
GOALS = dict(cpu_over_numpy=80.0, cpu_over_pypde=1.0, bandwidth_fraction=0.60, bandwidth_size=256)
G = 1e9
ROUND_SECONDS = 0.25  # a timing round lasts at least this long (unless a timing says otherwise)
CUDA_WORK = 2e9  # voxel updates per timed call on cuda (~10 ms on a big GPU: launch latency hidden)


def smooth_ic(n: int, dtype=np.float32, seed: int = 0) -> np.ndarray:
    """0.5 + 0.1 × Gaussian-filtered white noise (correlation length ~ n/8), scaled to max deviation 0.1."""
    rng = np.random.default_rng(seed)
    k2 = sum(np.meshgrid(*[np.fft.fftfreq(n) ** 2] * 3, indexing="ij"))
    noise = np.real(np.fft.ifftn(np.fft.fftn(rng.standard_normal((n,) * 3)) * np.exp(-k2 * (n / 8) ** 2)))
    return (0.5 + 0.1 * noise / np.abs(noise).max()).astype(dtype)


@njit(parallel=True)
def _stream_copy(a, b):
    for i in prange(a.size):
        b[i] = a[i]


@njit(parallel=True)
def _stream_triad(a, b, c, s):
    for i in prange(a.size):
        a[i] = b[i] + s * c[i]


def memory_bandwidth(nbytes: int, repeats: int) -> dict:
    """STREAM-like copy and triad bandwidth in bytes/s (bytes read + bytes written per second)."""
    n = nbytes // 8
    a, b, c = np.ones(n), np.full(n, 2.0), np.full(n, 0.5)
    copy = 16 * n / best_time(lambda: _stream_copy(a, b), repeats, 0.5)
    triad = 24 * n / best_time(lambda: _stream_triad(a, b, c, 3.0), repeats, 0.5)
    return dict(copy=copy, triad=triad, best=max(copy, triad))


def cpu_timing(n: int, dtype) -> Timing:
    """The cpu backend (fused kernel, multi-step driver) through Stepper; work = voxel updates."""
    st = Stepper((n,) * 3, CHParams(), "cpu", dtype)
    st.set(smooth_ic(n, dtype))
    steps = max(50, int(2e7 // n**3))  # the data set advances 400 steps per call
    return Timing(lambda: st.advance(steps), n**3 * steps, ROUND_SECONDS)


def _two_pass_driver(dtype):
    step = kernels(np.dtype(dtype))[1]

    @njit
    def run(a, b, mu, nsteps, two_w, eps2_dx2, dtm_dx2):
        for s in range(nsteps):
            if s % 2 == 0:
                step(a, b, mu, two_w, eps2_dx2, dtm_dx2)
            else:
                step(b, a, mu, two_w, eps2_dx2, dtm_dx2)

    return run


def two_pass_timing(n: int, dtype) -> Timing:
    run = _two_pass_driver(dtype)
    a = smooth_ic(n, dtype)
    b, mu = np.empty_like(a), np.empty_like(a)
    coef = coefficients(CHParams(), dtype)
    steps = max(2, int(2e7 // n**3)) // 2 * 2
    return Timing(lambda: run(a, b, mu, steps, *coef), n**3 * steps, ROUND_SECONDS)


def numpy_timing(n: int) -> Timing:
    phi, p = smooth_ic(n), CHParams()
    return Timing(lambda: reference.step(phi, p), n**3, min_seconds=0.5)


def pypde_timing(n: int) -> Timing | None:
    """py-pde's compiled explicit Euler stepper (float64), or None without py-pde."""
    try:
        import pde
    except ImportError:
        return None
    p = CHParams()
    grid = pde.CartesianGrid([[0, n]] * 3, [n] * 3, periodic=True)
    state = pde.ScalarField(grid, 2.0 * smooth_ic(n, np.float64) - 1.0)  # c = 2φ − 1 ∈ [−1, 1]
    eq = pde.CahnHilliardPDE(interface_width=p.epsilon**2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        solver = pde.EulerSolver(eq, backend="numba", adaptive=False)
        stepper = solver.make_stepper(state, dt=p.dt)  # compiles the right-hand side and the loop
    steps = max(2, int(1e7 // n**3))
    t = [0.0]

    def run():
        t[0] = stepper(state, t[0], t[0] + steps * p.dt)

    before = solver.info["steps"]
    run()
    if solver.info["steps"] - before != steps:
        raise RuntimeError(f"py-pde made {solver.info['steps'] - before} steps, expected {steps}")
    return Timing(run, n**3 * steps, ROUND_SECONDS)


def paper_frame_seconds(backend: str, repeats: int, batch: int | None = None, steps_only: bool = False) -> float:
    """Seconds per saved frame of the paper's data set: 400 steps, copy back + blow-up check, free energy.

    With ``batch`` B the state is a batch (B, 64, 64, 64) and the time is per frame of all B members;
    ``steps_only``: the 400 steps alone (synchronised on cuda). Best over `repeats` rounds of ≥ 1 s.
    """
    n, p = PAPER["size"], CHParams()
    shape = (n,) * 3 if batch is None else (batch, n, n, n)
    st = Stepper(shape, p, backend, np.float32)
    st.set(np.broadcast_to(smooth_ic(n), shape))

    def frame():
        st.advance(PAPER["steps_per_frame"])
        if steps_only:
            if backend == "cuda":
                from numba import cuda

                cuda.synchronize()
            return
        free_energy(st.get(), p)

    return best_time(frame, repeats, min_seconds=1.0)


def cuda_results(sizes, repeats: int, cpu_rates: dict, batch: int = 16, batch_size: int = 64) -> list[str]:
    """Lines on the cuda backend; "cuda: no GPU" without a usable device (never under the simulator)."""
    try:
        from ch_numba.kernels_cuda import gpu_available
    except ImportError:
        return ["cuda: no GPU (numba-cuda not installed)"]
    if not gpu_available():
        return ["cuda: no GPU"]
    from numba import cuda

    from ch_numba.kernels_cuda import launch_plan

    a = cuda.device_array(2**30 // 4, np.float32)
    b = cuda.device_array_like(a)

    def copy():
        b.copy_to_device(a)
        cuda.synchronize()

    bw = 2 * a.nbytes / best_time(copy, repeats, ROUND_SECONDS)
    del a, b
    dev = cuda.get_current_device()
    name = dev.name.decode() if isinstance(dev.name, bytes) else dev.name
    lines = [
        f"cuda device: {name}, {dev.MULTIPROCESSOR_COUNT} SMs; device-to-device copy {bw / G:.0f} GB/s "
        f"(read + write, 1 GiB buffers) = the reference bandwidth",
        "",
    ]
    lines += [
        "| grid | batch | cuda f32 (G vox/s) | f32 BW fraction (8 B/vox) | cuda f64 (G vox/s) | "
        "f64 BW fraction (16 B/vox) | blocks × chunk | cuda f32 / cpu f32 |"
    ]
    lines += ["|---|---|---|---|---|---|---|---|"]
    entries = [(batch_size, batch)] + [(n, 1) for n in sizes]
    for n, nb in entries:
        shape = (nb, n, n, n)
        rates = {}
        for dtype in (np.float32, np.float64):
            st = Stepper(shape, CHParams(), "cuda", dtype)
            st.set(np.broadcast_to(smooth_ic(n, dtype), shape))
            steps = max(10, int(CUDA_WORK // (nb * n**3)))

            def run(st=st, steps=steps):
                st.advance(steps)
                cuda.synchronize()

            rates[dtype] = nb * n**3 * steps / best_time(run, repeats, ROUND_SECONDS)
            del st
        grid, _, chunk = launch_plan(shape)
        r32, r64 = rates[np.float32], rates[np.float64]
        vs_cpu = f"{r32 / cpu_rates[n]:.1f}×" if n in cpu_rates and nb == 1 else "n/a"
        lines.append(
            f"| {n}³ | {nb} | {r32 / G:.2f} | {8 * r32 / bw:.0%} | {r64 / G:.2f} | {16 * r64 / bw:.0%} "
            f"| {grid[0] * grid[1] * grid[2]} × {chunk} | {vs_cpu} |"
        )
    frames = PAPER["frames"] * 1850
    for nb in (1, batch):
        full = paper_frame_seconds("cuda", repeats, nb)
        steps = paper_frame_seconds("cuda", repeats, nb, steps_only=True)
        lines += [
            "",
            f"paper data set on cuda, batch {nb} (64³ float32, 400 steps + copy back + blow-up check + F per "
            f"frame): {full / nb * 1e3:.2f} ms per sequence-frame ({steps / nb * 1e3:.2f} ms of it the steps); "
            f"the paper's 1850 × 50 frames: {frames * full / nb / 60:.1f} min "
            f"({frames * steps / nb / 60:.1f} min of steps)",
        ]
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python benchmarks/solver.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--sizes", type=int, nargs="+", default=[64, 128, 256], help="grid edges N of N³ (default 64 128 256)"
    )
    ap.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="timing rounds, interleaved over all entries; the best is kept (default 5)",
    )
    ap.add_argument("--quick", action="store_true", help="smoke run: sizes 16 32, 2 repeats, small bandwidth arrays")
    ap.add_argument("--no-pypde", action="store_true", help="skip py-pde (it compiles for ~20 s per grid size)")
    ap.add_argument("--cuda-only", action="store_true", help="only the cuda section (for a GPU machine)")
    ap.add_argument("--cuda-batch", type=int, default=16, help="members of the batched cuda entry (default 16)")
    ap.add_argument("--cuda-batch-size", type=int, default=64, help="grid edge of the batched cuda entry (default 64)")
    add_wait_idle_option(ap)
    a = ap.parse_args(argv)
    SHARE.restart(a.wait_idle)
    sizes, repeats = ([16, 32], 2) if a.quick else (a.sizes, a.repeats)
    if min(sizes) < 3 or repeats < 1 or a.cuda_batch < 1 or a.cuda_batch_size < 3:
        ap.error("sizes must be >= 3, repeats >= 1, --cuda-batch >= 1, --cuda-batch-size >= 3")
    if a.cuda_only:
        print(f"# ch_numba solver benchmark, cuda only, {time.strftime('%Y-%m-%d')}; numba {numba.__version__}")
        print("\n".join(cuda_results(sizes, repeats, {}, a.cuda_batch, a.cuda_batch_size)))
        return 0

    bw = memory_bandwidth((64 if a.quick else 256) * 2**20, repeats)
    try:
        import pde

        pde_version = pde.__version__
    except ImportError:
        pde_version = "not installed"
    print(f"# ch_numba solver benchmark, {time.strftime('%Y-%m-%d')}")
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {platform.machine()}; numba {numba.__version__} "
        f"({numba.get_num_threads()} threads, {numba.threading_layer()} layer), numpy {np.__version__}, "
        f"py-pde {pde_version}"
    )
    print(
        f"memory bandwidth (numba prange, {64 if a.quick else 256} MiB float64 arrays): "
        f"copy {bw['copy'] / G:.1f} GB/s, "
        f"triad {bw['triad'] / G:.1f} GB/s -> reference {bw['best'] / G:.1f} GB/s\n"
    )

    timings = {}
    for n in sizes:
        timings[n] = dict(numpy=numpy_timing(n))
        timings[n]["cpu32"] = cpu_timing(n, np.float32)
        timings[n]["cpu64"] = cpu_timing(n, np.float64)
        timings[n]["two32"] = two_pass_timing(n, np.float32)
        timings[n]["two64"] = two_pass_timing(n, np.float64)
        timings[n]["pde"] = None if a.no_pypde else pypde_timing(n)
    for _ in range(repeats):  # rounds interleaved over all entries
        for entries in timings.values():
            for t in entries.values():
                if t is not None:
                    t.round()
    rows = {n: {k: (None if t is None else t.rate) for k, t in entries.items()} for n, entries in timings.items()}
    del timings

    def g(x):
        return "n/a" if x is None else f"{x / G:.3f}"

    def ratio(x, y):
        return "n/a" if x is None or y is None else f"{x / y:.1f}×"

    print("voxel updates per second (G/s)\n")
    print("| grid | numpy ref f32 | cpu f32 | cpu f64 | two-pass f32 | two-pass f64 | py-pde f64 |")
    print("|---|---|---|---|---|---|---|")
    for n, r in rows.items():
        print(
            f"| {n}³ | {g(r['numpy'])} | {g(r['cpu32'])} | {g(r['cpu64'])} | {g(r['two32'])} | {g(r['two64'])} "
            f"| {g(r['pde'])} |"
        )
    print(f"\nratios (goals: cpu/numpy ≥ {GOALS['cpu_over_numpy']:.0f}×, cpu/py-pde > 1)\n")
    print("| grid | cpu/numpy f32 | cpu f32/py-pde | cpu f64/py-pde | fused/two-pass f32 | fused/two-pass f64 |")
    print("|---|---|---|---|---|---|")
    for n, r in rows.items():
        print(
            f"| {n}³ | {ratio(r['cpu32'], r['numpy'])} | {ratio(r['cpu32'], r['pde'])} | {ratio(r['cpu64'], r['pde'])} "
            f"| {ratio(r['cpu32'], r['two32'])} | {ratio(r['cpu64'], r['two64'])} |"
        )
    print(
        f"\nmemory bandwidth: minimum bytes a step must move × voxel updates/s, as a fraction of "
        f"{bw['best'] / G:.1f} GB/s (fused: 2 × itemsize per voxel, 2/5 of the two-pass minimum of 5 × itemsize; "
        f"goal ≥ {GOALS['bandwidth_fraction']:.0%} at {GOALS['bandwidth_size']}³)\n"
    )
    print("| grid | cpu f32 (8 B/vox) | cpu f64 (16 B/vox) | two-pass f32 (20 B/vox) | two-pass f64 (40 B/vox) |")
    print("|---|---|---|---|---|")
    for n, r in rows.items():
        cells = [
            f"{b * x / G:.1f} GB/s = {b * x / bw['best']:.0%}"
            for b, x in ((8, r["cpu32"]), (16, r["cpu64"]), (20, r["two32"]), (40, r["two64"]))
        ]
        print(f"| {n}³ | " + " | ".join(cells) + " |")

    seconds = paper_frame_seconds("cpu", repeats) * PAPER["frames"]
    steps = PAPER["frames"] * PAPER["steps_per_frame"]
    print(
        f"\npaper data set ({PAPER['size']}³ float32, {PAPER['frames']} frames × {PAPER['steps_per_frame']} steps = "
        f"{steps} steps per sequence, free energy per frame): cpu {3600 / seconds:.0f} sequences/hour "
        f"({seconds:.1f} s per sequence; the paper's 1850 sequences: {1850 * seconds / 3600:.1f} h)\n"
    )
    print(
        "\n".join(
            cuda_results(sizes, repeats, {n: r["cpu32"] for n, r in rows.items()}, a.cuda_batch, a.cuda_batch_size)
        )
    )
    print(f"\n{SHARE.report()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
