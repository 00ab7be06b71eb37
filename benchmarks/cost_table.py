"""One honest cost table (issue 26 item 5): seconds per unit of physical time, surrogate vs solvers, one run.

Per unit of physical time (the time of the Cahn-Hilliard equation in the model's units, not wall time):

    surrogate   each ONNX model given (``--models``; a checkpoint given with ``--checkpoint`` is also
                exported as the factorised graph): seconds per network step / time per network step
                (metadata ``time_per_step``: stride × the data's frame interval), on the network grid
                (the solver grid / downscale)
    explicit    the explicit finite-difference kernel (ch_numba, CPU): seconds per step / dt, dt of the
                model's training data (or 0.7 of the stability bound)
    spectral    SBDF2 (ch_numba's spectral scheme, the stencil symbol) at two step sizes: ``dt_0.2%``, the
                step that keeps F within 0.2 % of the explicit kernel (docs/repro/schemes.py), and
                ``dt_equal``, the largest step of a sweep whose F error equals the surrogate's (``--target``,
                default 1.92 %: crnn64's held-out per-IC maximum, mean over 20 ICs, docs/REPRODUCTION.md §5)

The F error of a step size is measured here first: from ``--ics`` Perlin ICs on the solver's
``--accuracy-grid`` box, SBDF2 at each dt of the sweep against the explicit kernel, the maximum over
``--frames`` frames of |F − F_explicit| / F_explicit, worst IC. (The surrogate's error is measured on the
network grid against the solver downsampled; both are the deviation of F(t) from the explicit kernel's over
the held-out horizon.)

Timing: every (threads, solver grid, batch) for every method, interleaved (the order rotates between
rounds), ``--rounds`` times; median seconds per unit time with the min–max spread, and the ratios
explicit / method and spectral(dt_equal) / method. On a shared machine (the report at the end says how
much other processes used) the numbers are noisy: rerun idle before quoting.

Usage (repository root):
    python -m benchmarks.cost_table --models models/crnn64.onnx --checkpoint models/crnn64.pt \\
        [--sizes 32 64 128] [--batches 1 8] [--threads 1 2] [--rounds 3] [--json out.json]
    python -m benchmarks.cost_table --quick          # a smoke run: 32³, one IC, a short horizon
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
import onnxruntime as ort

import ch_numba
from ch_numba import initial
from export.runtime import Rollout

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs"))
from repro.schemes import explicit_frame, spectral_frame  # noqa: E402  (the report's scheme rules, written once)

if __package__:
    from ._common import SHARE, add_wait_idle_option, cpu_model, header
else:  # pragma: no cover - python benchmarks/cost_table.py
    from _common import SHARE, add_wait_idle_option, cpu_model, header


def physics(meta: dict) -> tuple[ch_numba.CHParams, float]:
    """(explicit CHParams, frame interval of the training data) from a model's metadata: the data's explicit
    step, or (spectral data) the report's explicit step over a frame (docs/repro/schemes.py, the one rule)."""
    p = ch_numba.CHParams.from_metadata(meta)
    frame = float(meta["time_per_step"]) / int(meta.get("stride", 1))
    if p.scheme == "explicit":
        return p, frame
    return explicit_frame(p, frame)[0], frame


def spectral(p: ch_numba.CHParams, dt: float) -> ch_numba.CHParams:
    return ch_numba.CHParams(
        epsilon=p.epsilon, mobility=p.mobility, W=p.W, dx=p.dx, dt=dt, scheme="spectral", order=2, symbol="stencil"
    )


def f_error(p: ch_numba.CHParams, frame: float, dts, grid: int, frames: int, ics: int) -> dict:
    """Worst-IC maximum over ``frames`` frames (every dt / frame-th frame when dt is longer than a frame) of
    |F_spectral(dt) − F_explicit| / F_explicit for each dt."""
    worst = {dt: 0.0 for dt in dts}
    spf = int(round(frame / p.dt))
    for seed in range(ics):
        ic = initial.perlin((grid,) * 3, frequency=3, seed=1000 + seed, mean=0.5, amplitude=0.1).astype(np.float32)
        ref = ch_numba.Stepper(ic.shape, p, "cpu")
        ref.set(ic)
        f_ref = []
        for _ in range(frames):
            ref.advance(spf)
            f_ref.append(ch_numba.free_energy(ref.get(), p))
        f_ref = np.array(f_ref)
        for dt in dts:
            q = spectral(p, dt)
            st = ch_numba.Stepper(ic.shape, q, "cpu")
            st.set(ic)
            # dt ≤ frame: n steps per frame, every frame compared; dt > frame: one step per m frames
            n, m = max(1, round(frame / dt)), max(1, round(dt / frame))
            f = []
            for _ in range(frames // m):
                st.advance(n)
                f.append(ch_numba.free_energy(st.get(), q))
            ref_at = f_ref[m - 1 :: m][: len(f)]
            worst[dt] = max(worst[dt], float(np.max(np.abs(np.array(f) - ref_at) / ref_at)))
    return worst


def sweep(frame: float, frames: int) -> list[float]:
    """Step sizes: frame · 2^j for j = −3..3 whose multiple of the frame fits the horizon twice (largest first)."""
    return [frame * 2.0**j for j in range(3, -4, -1) if frame * 2.0**j <= frame * frames / 2]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, nargs="+", default=[Path("models/crnn64.onnx")])
    ap.add_argument("--checkpoint", type=Path, default=Path("models/crnn64.pt"), help="also export it factorised")
    ap.add_argument("--no-factorised", action="store_true")
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128], help="solver grids")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--target", type=float, default=0.0192, help="the surrogate's F error (default 0.0192)")
    ap.add_argument("--accuracy-grid", type=int, default=64)
    ap.add_argument("--frames", type=int, default=50, help="frames of the accuracy runs (default 50)")
    ap.add_argument("--ics", type=int, default=2, help="ICs of the accuracy runs (default 2)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 32³, batch 1, 1 thread, 1 IC, 5 frames")
    ap.add_argument("--json", type=Path, default=None)
    add_wait_idle_option(ap)
    a = ap.parse_args(argv)
    if a.quick:
        a.sizes, a.batches, a.threads, a.rounds, a.ics, a.frames, a.accuracy_grid = [32], [1], [1], 1, 1, 5, 32
    SHARE.restart(a.wait_idle)
    print(header(f"onnxruntime {ort.__version__}"))
    with tempfile.TemporaryDirectory() as tmp:
        models = {m.stem: m for m in a.models}
        if not a.no_factorised and a.checkpoint:
            from export import onnx_export

            out = Path(tmp) / f"{a.checkpoint.stem}_factorised.onnx"
            onnx_export.export_checkpoint(a.checkpoint, out, graph="factorised")
            models[out.stem] = out
        metas = {k: Rollout(v, providers="cpu", threads=1).metadata for k, v in models.items()}
        first = next(iter(metas.values()))
        p, frame = physics(first)
        factor = int(first["downscale"])
        dt02 = spectral_frame(p, frame)[0].dt  # F within 0.2 % of the explicit kernel (docs/repro/schemes.py)
        numba.set_num_threads(max(a.threads))
        dts = sorted(set(sweep(frame, a.frames)) | {dt02}, reverse=True)
        t0 = time.perf_counter()
        err = f_error(p, frame, dts, a.accuracy_grid, a.frames, a.ics)
        print(f"F error of SBDF2 vs the explicit kernel ({a.ics} IC(s), {a.accuracy_grid}³, {a.frames} frames of "
              f"{frame:g}; {time.perf_counter() - t0:.0f} s):")  # fmt: skip
        for dt in dts:
            print(f"  dt {dt:8.4g}: {100 * err[dt]:.3f} %")
        ok = [dt for dt in dts if err[dt] <= a.target]
        dt_equal = max(ok) if ok else min(dts)
        print(f"dt_0.2% = {dt02:g} (F error {100 * err[dt02]:.3f} %); dt_equal = {dt_equal:g} (F error "
              f"{100 * err[dt_equal]:.3f} % <= target {100 * a.target:g} %)")  # fmt: skip
        methods = {"explicit": ("explicit", p), f"spectral dt {dt02:g}": ("spectral", spectral(p, dt02))}
        methods[f"spectral dt {dt_equal:g}"] = ("spectral", spectral(p, dt_equal))
        for k in models:
            methods[f"surrogate {k} (stride {int(metas[k].get('stride', 1))})"] = ("surrogate", k)
        configs = [(t, n, b) for t in a.threads for n in a.sizes for b in a.batches]
        times = {(c, m): [] for c in configs for m in methods}
        names = list(methods)
        rng = np.random.default_rng(0)
        for rnd in range(a.rounds):
            order = names[rnd % len(names) :] + names[: rnd % len(names)]
            for c in configs:
                t, n, b = c
                numba.set_num_threads(t)
                field = (0.5 + 0.05 * rng.standard_normal((b, n, n, n))).astype(np.float32)
                SHARE.wait_idle()
                for m in order:
                    kind, what = methods[m]
                    times[c, m].append(time_per_unit(kind, what, field, t, factor, models, metas))
            print(f"round {rnd + 1}/{a.rounds} done", flush=True)
    print()
    print("| threads | solver grid | batch | method | s per unit time, median (min–max) | explicit / it | "
          f"spectral dt {dt_equal:g} / it |")  # fmt: skip
    print("|---:|---:|---:|---|---:|---:|---:|")
    rows = []
    for c in configs:
        t, n, b = c
        ex = np.median(times[c, "explicit"])
        sp = np.median(times[c, f"spectral dt {dt_equal:g}"])
        for m in names:
            d = np.array(times[c, m])
            med = float(np.median(d))
            rows.append({"threads": t, "grid": n, "batch": b, "method": m, "seconds_per_unit_time": d.tolist()})
            print(f"| {t} | {n}³ | {b} | {m} | {med:.3g} ({d.min():.3g}–{d.max():.3g}) | {ex / med:.2f}× | "
                  f"{sp / med:.2f}× |")  # fmt: skip
    print()
    print(SHARE.report())
    if a.json:
        data = {"f_error": {str(k): v for k, v in err.items()}, "dt_0.2%": dt02, "dt_equal": dt_equal, "rows": rows}
        a.json.write_text(json.dumps({**data, "cpu": cpu_model(), "others_cpu_share": SHARE.others()}, indent=1))
    return 0


def time_per_unit(kind: str, what, field: np.ndarray, threads: int, factor: int, models: dict, metas: dict) -> float:
    """Seconds per unit of physical time of one method on ``field`` (B, n, n, n) (about 0.3–1 s of work)."""
    if kind == "surrogate":
        runner = Rollout(models[what], providers="cpu", threads=threads)
        x = runner.downscale(field)[:, None]
        for _ in runner.rollout(x, 1):  # warm-up: allocation, first touch
            pass
        steps = max(1, int(2e6 / x.size))
        t0 = time.perf_counter()
        for _ in runner.rollout(x, steps, every=steps):
            pass
        return (time.perf_counter() - t0) / steps / float(metas[what]["time_per_step"])
    st = ch_numba.Stepper(field.shape, what, "cpu")
    st.set(field)
    st.advance(2)  # warm-up: compilation, FFT plans
    steps = max(2, int((2e7 if kind == "explicit" else 2e6) / field.size))
    t0 = time.perf_counter()
    st.advance(steps)
    return (time.perf_counter() - t0) / steps / what.dt


if __name__ == "__main__":
    raise SystemExit(main())
