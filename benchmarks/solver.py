"""Solver speed, measured side by side in one run.

Voxel updates per second (grid voxels × steps / second) of one forward-Euler step of
    φ ← φ + dt M ∇²(f'(φ) − ε²∇²φ)
for: the numpy reference (ch_numba.reference), our fused ``cpu`` kernel (float32 and
float64), the plain two-pass prange kernel, py-pde's CahnHilliardPDE (explicit Euler,
fixed dt, same grid; py-pde works in float64) and, on a GPU, our ``cuda`` backend.

Memory-bandwidth fraction: a step must at least read φ and write φ_next, i.e.
2 × itemsize bytes per voxel (the fused kernel keeps μ in cache; the two-pass scheme
also writes and reads μ: 4 × itemsize, plus φ re-read). Achieved bytes/s = 2 × itemsize
× voxels / step time, divided by the machine's bandwidth measured here with a STREAM-like
copy (numba prange, arrays ≫ cache, read + write counted).

Usage:  python benchmarks/solver.py [--sizes 64 128 256] [--quick]
"""

from __future__ import annotations

import argparse
import platform
import time

import numba
import numpy as np
from numba import njit, prange

from ch_numba import reference
from ch_numba.kernels_cpu import kernels, ring_buffer
from ch_numba.params import CHParams
from ch_numba.physics import coefficients

PAPER = dict(size=64, frames=50, steps_per_frame=400)


def smooth_ic(n: int, dtype=np.float32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    k2 = sum(np.meshgrid(*[np.fft.fftfreq(n) ** 2] * 3, indexing="ij"))
    noise = np.real(np.fft.ifftn(np.fft.fftn(rng.standard_normal((n,) * 3)) * np.exp(-k2 * (n / 4) ** 2)))
    return (0.5 + 0.1 * noise / np.abs(noise).max()).astype(dtype)


def best_time(fn, repeats: int, min_seconds: float = 0.3) -> float:
    """Best per-call time over `repeats` rounds, each long enough to time reliably."""
    fn()  # warm-up / compile
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-6)
    inner = max(1, int(min_seconds / once))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - t0) / inner)
    return best


@njit(parallel=True, cache=True)
def _stream_copy(a, b):
    for i in prange(a.size):
        b[i] = a[i]


def measure_bandwidth(nbytes: int = 512 * 2**20, repeats: int = 5) -> float:
    """Sustained memory bandwidth (bytes/s) of a parallel copy: (read + write) / time."""
    a = np.ones(nbytes // 8, dtype=np.float64)
    b = np.empty_like(a)
    t = best_time(lambda: _stream_copy(a, b), repeats, min_seconds=0.5)
    return 2 * a.nbytes / t


class CPUKernel:
    def __init__(self, n: int, dtype, fused: bool):
        self.phi = smooth_ic(n, dtype)
        self.out = np.empty_like(self.phi)
        fused_step, two_pass, _ = kernels(np.dtype(dtype))
        self.fn = fused_step if fused else two_pass
        self.scratch = ring_buffer(self.phi.shape, dtype) if fused else np.empty_like(self.phi)
        self.c = coefficients(CHParams(), dtype)

    def __call__(self):
        self.fn(self.phi, self.out, self.scratch, *self.c)
        self.phi, self.out = self.out, self.phi


def pypde_stepper(n: int, steps: int):
    """A compiled py-pde explicit-Euler stepper advancing `steps` steps of dt = 1e-3, or None."""
    try:
        import pde
    except ImportError:
        return None
    grid = pde.CartesianGrid([[0, n]] * 3, [n] * 3, periodic=True)
    state = pde.ScalarField(grid, smooth_ic(n, np.float64) * 2 - 1)
    eq = pde.CahnHilliardPDE(interface_width=9.0)
    solver = pde.ExplicitSolver(eq, scheme="euler", adaptive=False, backend="numba")
    stepper = solver.make_stepper(state, dt=1e-3)
    t = [0.0]

    def run():
        t[0] = stepper(state, t[0], t[0] + steps * 1e-3)

    return run


def cuda_rate(n: int, repeats: int):
    """(voxel updates/s, device bandwidth bytes/s) of the cuda backend, or None without a GPU."""
    try:
        from ch_numba.kernels_cuda import gpu_available
    except ImportError:
        return None
    if not gpu_available():
        return None
    from numba import cuda

    from ch_numba.solver import Stepper

    st = Stepper((n,) * 3, CHParams(), "cuda", np.float32)
    st.set(smooth_ic(n))
    steps = 50

    def run():
        st.advance(steps)
        cuda.synchronize()

    t = best_time(run, repeats) / steps
    a = cuda.device_array(64 * 2**20, np.float32)
    b = cuda.device_array_like(a)

    def copy():
        b.copy_to_device(a)
        cuda.synchronize()

    bw = 2 * a.nbytes / best_time(copy, repeats)
    return n**3 / t, bw


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256], help="grid edges (default 64 128 256)")
    ap.add_argument("--repeats", type=int, default=5, help="timing rounds, best kept (default 5)")
    ap.add_argument("--quick", action="store_true", help="small sizes, few repeats (smoke run)")
    ap.add_argument("--no-pypde", action="store_true", help="skip py-pde (its compilation takes ~20 s)")
    a = ap.parse_args(argv)
    sizes, repeats = ([16, 32], 2) if a.quick else (a.sizes, a.repeats)
    p = CHParams()

    print(f"# ch_numba solver benchmark — {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
          f"{numba.get_num_threads()} numba threads, numpy {np.__version__}, numba {numba.__version__}")
    bw = measure_bandwidth(64 * 2**20 if a.quick else 512 * 2**20, repeats)
    print(f"measured memory bandwidth (parallel copy, read+write): {bw / 1e9:.1f} GB/s\n")
    header = (f"{'grid':>5} | {'numpy ref':>10} | {'cpu f32':>8} | {'cpu f64':>8} | {'2-pass f32':>10} | "
              f"{'py-pde f64':>10} | {'cpu/numpy':>9} | {'cpu/2pass':>9} | {'cpu/py-pde':>10} | "
              f"{'f32 BW frac':>11} | {'f64 BW frac':>11}")
    print("voxel updates per second (G = 1e9)\n" + header + "\n" + "-" * len(header))
    rates = {}
    for n in sizes:
        phi = smooth_ic(n)
        ref_t = best_time(lambda phi=phi: reference.step(phi, p), max(1, repeats // 2), min_seconds=0.2)
        r_ref = n**3 / ref_t
        r32 = n**3 / best_time(CPUKernel(n, np.float32, True), repeats)
        r64 = n**3 / best_time(CPUKernel(n, np.float64, True), repeats)
        r2p = n**3 / best_time(CPUKernel(n, np.float32, False), repeats)
        r_pde = None
        if not a.no_pypde:
            steps = max(1, int(2e7 // n**3))
            run = pypde_stepper(n, steps)
            if run is not None:
                r_pde = n**3 * steps / best_time(run, max(1, repeats // 2))
        rates[n] = r32
        frac32 = 2 * 4 * r32 / bw
        frac64 = 2 * 8 * r64 / bw
        pde_txt = f"{r_pde / 1e9:9.3f}G" if r_pde else "       n/a"
        ratio_pde = f"{r32 / r_pde:9.1f}x" if r_pde else "       n/a"
        print(f"{n:>4}³ | {r_ref / 1e9:9.4f}G | {r32 / 1e9:7.2f}G | {r64 / 1e9:7.2f}G | {r2p / 1e9:9.2f}G | "
              f"{pde_txt} | {r32 / r_ref:8.0f}x | {r32 / r2p:8.2f}x | {ratio_pde} | {frac32:10.0%} | {frac64:10.0%}")
    if 64 in rates:
        steps = PAPER["frames"] * PAPER["steps_per_frame"]  # free energy per frame: < 1 % more
        per_seq = 64**3 * steps / rates[64]
        print(f"\npaper data set (64³, {PAPER['frames']} frames x {PAPER['steps_per_frame']} steps = {steps} steps/seq):"
              f" cpu {3600 / per_seq:.0f} sequences/hour ({per_seq:.1f} s/sequence; 1850 sequences:"
              f" {1850 * per_seq / 3600:.1f} h)")
    print()
    steps = PAPER["frames"] * PAPER["steps_per_frame"]
    for n in sizes:
        res = cuda_rate(n, repeats)
        if res is None:
            print(f"cuda {n}³: no GPU")
            continue
        r, dev_bw = res
        print(f"cuda {n}³: {r / 1e9:.2f} Gvox/s, {2 * 4 * r / dev_bw:.0%} of device bandwidth "
              f"({dev_bw / 1e9:.0f} GB/s), {r / rates[n]:.1f}x cpu")
        if n == 64:
            print(f"  paper data set on cuda: {3600 * r / (64**3 * steps):.0f} sequences/hour")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
