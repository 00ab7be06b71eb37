"""What the walls input costs the exported step: periodic runs no slower (issue 27), side by side.

Times one network step (the runtime: :class:`export.runtime.Rollout`, onnxruntime CPU, IOBinding) of

    before      the shipped model as it was before walls existed (``git show REV:models/crnn64.onnx``:
                circular padding as Slice + Concat, no ``walls`` input)
    periodic    today's export of the same checkpoint (optional ``walls`` input, not fed: periodic)
    film        the same file with walls along z (``boundary="periodic,periodic,neumann"``)
    box         the same file with walls along x, y, z

at the given grids, batch sizes and intra-op threads, interleaved (every round times all four back to
back, the order rotating between rounds), repeated ``--rounds`` times. Reported: median ms per step with
the min–max spread over rounds, and each variant's median paired ratio to ``before``; with one thread also
the ratio of process CPU time (the work done, which other processes inflate less than the wall time).
The outputs of ``before`` and ``periodic`` are checked equal (bitwise) first.

Usage (repository root):
    python -m benchmarks.walls_graph [--rev 970b4c6] [--rounds 7] [--sizes 32] [--batches 1] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from export.runtime import Rollout

if __package__:
    from ._common import SHARE, add_wait_idle_option, header
else:  # pragma: no cover - python benchmarks/walls_graph.py
    from _common import SHARE, add_wait_idle_option, header

VARIANTS = {"before": None, "periodic": None, "film": "periodic,periodic,neumann", "box": "neumann"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rev", default="970b4c6", help="git revision holding the model before walls (default 970b4c6)")
    p.add_argument("--model", type=Path, default=Path("models/crnn64.onnx"))
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--sizes", type=int, nargs="+", default=[32])
    p.add_argument("--batches", type=int, nargs="+", default=[1])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    add_wait_idle_option(p)
    a = p.parse_args(argv)
    SHARE.restart(a.wait_idle)
    print(header(f"onnxruntime {ort.__version__}"))
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "before.onnx"
        old.write_bytes(subprocess.run(["git", "show", f"{a.rev}:{a.model}"], check=True, capture_output=True).stdout)
        files = {v: (old if v == "before" else a.model) for v in VARIANTS}
        runners = {
            (t, v): Rollout(files[v], providers="cpu", threads=t, boundary=VARIANTS[v])
            for t in a.threads
            for v in VARIANTS
        }
        rng = np.random.default_rng(0)
        fields = {
            (s, b): (0.5 + 0.05 * rng.standard_normal((b, 1, s, s, s))).astype(np.float32)
            for s in a.sizes
            for b in a.batches
        }
        s0 = a.sizes[0]
        x = fields[s0, a.batches[0]]
        t1 = 1 if 1 in a.threads else a.threads[0]
        pairs = zip(runners[t1, "before"].rollout(x, 3), runners[t1, "periodic"].rollout(x, 3))
        same = [np.array_equal(f, g) for f, g in pairs]
        print(f"before == periodic, 3 steps at {s0}^3, bitwise: {all(same)}")
        configs = [(t, s, b) for t in a.threads for s in a.sizes for b in a.batches]
        times = {(c, v): [] for c in configs for v in VARIANTS}
        cpu = {(c, v): [] for c in configs for v in VARIANTS}
        names = list(VARIANTS)
        for c in configs:  # warm-up
            for v in names:
                for _ in runners[c[0], v].rollout(fields[c[1], c[2]], 1):
                    pass
        for rnd in range(a.rounds):
            order = names[rnd % len(names) :] + names[: rnd % len(names)]
            for c in configs:
                t, s, b = c
                SHARE.wait_idle()
                n = max(1, {16: 40, 32: 8, 64: 2}.get(s, 1) // b)
                for v in order:
                    t0, c0 = time.perf_counter(), time.process_time()
                    for _ in runners[t, v].rollout(fields[s, b], n, every=n):
                        pass
                    times[c, v].append((time.perf_counter() - t0) / n * 1e3)
                    cpu[c, v].append((time.process_time() - c0) / n * 1e3)
            print(f"round {rnd + 1}/{a.rounds} done", flush=True)
    print()
    head = ["threads", "grid", "batch", "variant", "ms/step median (min–max)", "ratio to before, median (min–max)"]
    print("| " + " | ".join([*head, "CPU-time ratio (1 thread)"]) + " |")
    print("|---:|---:|---:|---|---:|---:|---:|")
    for c in configs:
        t, s, b = c
        base, base_cpu = np.array(times[c, "before"]), np.array(cpu[c, "before"])
        for v in names:
            d = np.array(times[c, v])
            r = d / base
            rc = np.array(cpu[c, v]) / base_cpu
            cr = f"{np.median(rc):.3f} ({rc.min():.3f}–{rc.max():.3f})" if t == 1 else "–"
            print(
                f"| {t} | {s}³ | {b} | {v} | {np.median(d):.1f} ({d.min():.1f}–{d.max():.1f}) | "
                f"{np.median(r):.3f} ({r.min():.3f}–{r.max():.3f}) | {cr} |"
            )
    print()
    print(SHARE.report())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
