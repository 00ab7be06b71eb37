"""Dense vs factorised ONNX graph of a cube-equivariant CRNN step, side by side (issue 26 item 1).

Exports one equivariant checkpoint (default ``models/crnn64.pt``; the cost does not depend on the
weights) twice, ``--graph dense`` and ``--graph factorised`` (export/factorised.py), and times one
network step of each with the runtime (:class:`export.runtime.Rollout`: tuned CPU session, IOBinding,
state kept in place) on onnxruntime's CPU provider, for every combination of intra-op threads (1, 2),
grid (16³, 32³, 64³) and batch (1, 4).

Interleaved and repeated: each round times every (threads, grid, batch) for both graphs back to back
(the order of the two graphs alternates between rounds), so a slow spell of a shared machine hits
both graphs of a pair alike. Reported per entry: the median ms per step over the rounds with the
min–max spread, and the speedup as the median (min–max) of the per-round paired ratios dense /
factorised; with 1 thread also the ratio of the process CPU time per step (the work done, which a
busy machine inflates less than the wall time). The run ends with the CPU share other processes
used meanwhile (/proc/stat): on a shared machine the numbers are noisy and the 2-thread ones above
all (the second thread is often busy elsewhere); rerun on an idle machine before quoting them as the machine's.

Also checked before timing: the two graphs agree within 1e-5 after one step and 1e-4 after 100 steps
(32³, Perlin IC, batch 1), the tolerances of issue 26.

Usage (from the repository root):
    python -m benchmarks.export_graph [--checkpoint models/crnn64.pt] [--rounds 5] [--sizes 16 32 64]
                                      [--batches 1 4] [--threads 1 2] [--json out.json] [--wait-idle S]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ch_numba import initial
from export import onnx_export
from export.runtime import Rollout
from surrogate import load_checkpoint

if __package__:
    from ._common import SHARE, add_wait_idle_option, cpu_model, header
else:  # pragma: no cover - python benchmarks/export_graph.py
    from _common import SHARE, add_wait_idle_option, cpu_model, header

GRAPHS = ("dense", "factorised")


def export_both(checkpoint: Path, folder: Path) -> dict:
    ckpt = load_checkpoint(checkpoint)
    paths = {}
    for graph in GRAPHS:
        meta = onnx_export.build_metadata(ckpt, graph=graph, checkpoint_name=checkpoint.name)
        paths[graph] = onnx_export.export_model(ckpt["model"], folder / f"{graph}.onnx", meta, graph=graph)
    return paths


def equality(paths: dict, size: int = 32, steps: int = 100) -> dict:
    """max |dense − factorised| after one step from a random state and over a ``steps``-step rollout."""
    runners = {g: Rollout(p, providers="cpu", threads=2) for g, p in paths.items()}
    rng = np.random.default_rng(0)
    grid = (size,) * 3
    state = [rng.random((1, 1, *grid), dtype=np.float32)]
    state += [rng.uniform(-1, 1, (1, 10, *grid)).astype(np.float32) for _ in range(2)]
    feed = dict(zip(("phi", "h1", "h2"), state))
    one = {g: r.session.run(None, feed) for g, r in runners.items()}
    step = max(float(np.max(np.abs(a - b))) for a, b in zip(one["dense"], one["factorised"]))
    phi0 = initial.perlin(grid, frequency=2, seed=1, mean=0.5, amplitude=0.1)[None, None]
    roll = {g: np.stack(list(r.rollout(phi0, steps))) for g, r in runners.items()}
    return {
        "grid": size,
        "step_max_diff": step,
        "rollout_steps": steps,
        "rollout_max_diff": float(np.max(np.abs(roll["dense"] - roll["factorised"]))),
    }


def steps_for(size: int, batch: int) -> int:
    """Steps per timing: about 0.2–0.5 s of work on a 2-core machine."""
    return max(1, {16: 40, 32: 8, 64: 2}.get(size, 1) // batch)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, default=Path("models/crnn64.pt"))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--json", type=Path, default=None, help="write the raw per-round times here")
    add_wait_idle_option(p)
    a = p.parse_args(argv)
    SHARE.restart(a.wait_idle)
    print(header(f"onnxruntime {ort.__version__}"))
    with tempfile.TemporaryDirectory() as tmp:
        paths = export_both(a.checkpoint, Path(tmp))
        eq = equality(paths)
        print(
            f"equality at {eq['grid']}^3: one step max|dense - factorised| {eq['step_max_diff']:.2e} (<= 1e-5), "
            f"{eq['rollout_steps']}-step rollout {eq['rollout_max_diff']:.2e} (<= 1e-4)"
        )
        configs = [(t, s, b) for t in a.threads for s in a.sizes for b in a.batches]
        runners = {}
        for t in a.threads:
            for g in GRAPHS:
                runners[t, g] = Rollout(paths[g], providers="cpu", threads=t)
        rng = np.random.default_rng(0)
        fields = {
            (s, b): (0.5 + 0.05 * rng.standard_normal((b, 1, s, s, s))).astype(np.float32)
            for s in a.sizes
            for b in a.batches
        }
        times = {(t, s, b, g): [] for (t, s, b) in configs for g in GRAPHS}
        cpu = {(t, s, b, g): [] for (t, s, b) in configs for g in GRAPHS}
        for t, s, b in configs:  # warm-up: allocation, first touch
            for g in GRAPHS:
                for _ in runners[t, g].rollout(fields[s, b], 1):
                    pass
        for rnd in range(a.rounds):
            order = GRAPHS if rnd % 2 == 0 else GRAPHS[::-1]
            for t, s, b in configs:
                SHARE.wait_idle()
                n = steps_for(s, b)
                for g in order:
                    r = runners[t, g]
                    t0, c0 = time.perf_counter(), time.process_time()
                    for _ in r.rollout(fields[s, b], n, every=n):
                        pass
                    times[t, s, b, g].append((time.perf_counter() - t0) / n * 1e3)
                    cpu[t, s, b, g].append((time.process_time() - c0) / n * 1e3)
            print(f"round {rnd + 1}/{a.rounds} done", flush=True)
    print()
    print(
        "| threads | grid | batch | dense ms/step median (min–max) | factorised ms/step median (min–max) | "
        "speedup median (min–max of paired rounds) | CPU-time speedup (1 thread) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for t, s, b in configs:
        d, f = np.array(times[t, s, b, "dense"]), np.array(times[t, s, b, "factorised"])
        cd, cf = np.array(cpu[t, s, b, "dense"]), np.array(cpu[t, s, b, "factorised"])
        ratio = d / f
        rows.append(
            {
                "threads": t,
                "grid": s,
                "batch": b,
                "dense_ms": d.tolist(),
                "factorised_ms": f.tolist(),
                "dense_cpu_ms": cd.tolist(),
                "factorised_cpu_ms": cf.tolist(),
            }
        )
        # with one intra-op thread onnxruntime computes on the calling thread: its CPU time is the work
        # done, which other processes taking the CPU inflate less than the wall time
        c = cd / cf
        cpu_ratio = f"{np.median(c):.2f}× ({c.min():.2f}–{c.max():.2f})" if t == 1 else "–"
        print(
            f"| {t} | {s}³ | {b} | {np.median(d):.1f} ({d.min():.1f}–{d.max():.1f}) | "
            f"{np.median(f):.1f} ({f.min():.1f}–{f.max():.1f}) | "
            f"{np.median(ratio):.2f}× ({ratio.min():.2f}–{ratio.max():.2f}) | {cpu_ratio} |"
        )
    print()
    print(SHARE.report())
    if a.json:
        a.json.write_text(
            json.dumps({"equality": eq, "rows": rows, "cpu": cpu_model(), "others_cpu_share": SHARE.others()}, indent=1)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
