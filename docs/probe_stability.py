"""How long does a checkpoint stay physical? Free rollouts from fixed Perlin ICs, checked every 250 steps.

    python docs/probe_stability.py runs/late03/best.pt runs/late06/last.pt --steps 10000

For each model (a PyTorch checkpoint .pt or an exported .onnx) and each IC (32³ Perlin noise,
frequency 3, mean 0.5, amplitude 0.1, seeds 2024, 7, 99, sampled every second voxel: the 16³
network grid of the shipped configuration), it rolls the network out for ``--steps`` steps and
prints the first checked step at which φ leaves [−0.5, 1.5] ("ok" if none), and at the end of
the run the range of φ, its standard deviation (½ for a sharp 50/50 two-phase field) and the rms
change over the last 2,500 steps (0 for a stationary state). This is how the third training
stage's checkpoint was chosen (models/README.md); a 10⁴-step probe of one model takes ~2 min per
IC on one core.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ch_numba import initial  # noqa: E402
from export.rollout import PHYSICAL_RANGE  # noqa: E402
from surrogate.evaluate import load_runner  # noqa: E402

SEEDS = (2024, 7, 99)
CHECK_EVERY = 250  # steps between range checks


def probe(runner, seed: int, steps: int) -> dict:
    """One free rollout: first out-of-range step (None: never), final range, sd, rms change."""
    ic = initial.perlin((32,) * 3, frequency=3, seed=seed, mean=0.5, amplitude=0.1).astype(np.float32)
    phi0 = ic[:: runner.factor, :: runner.factor, :: runner.factor]
    lag = phi = phi0
    first_bad = None
    for k, phi in enumerate(runner.rollout(phi0, steps, every=CHECK_EVERY), 1):
        lo, hi = float(phi.min()), float(phi.max())
        if first_bad is None and not (PHYSICAL_RANGE[0] <= lo and hi <= PHYSICAL_RANGE[1]):
            first_bad = k * CHECK_EVERY
            if not np.isfinite(lo + hi):
                break
        if k * CHECK_EVERY == steps - 2500:
            lag = phi
    change = float(np.sqrt(np.mean((phi.astype(np.float64) - lag) ** 2)))
    return {"seed": seed, "first_out_of_range": first_bad, "min": float(phi.min()), "max": float(phi.max()),
            "sd": float(phi.std()), "rms_change_last_2500": change}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", type=Path, help="checkpoints (.pt) or exported models (.onnx)")
    ap.add_argument("--steps", type=int, default=10_000, help="network steps per rollout (default %(default)s)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (default %(default)s)")
    a = ap.parse_args(argv)
    if a.steps < CHECK_EVERY or a.steps % CHECK_EVERY:
        ap.error(f"--steps must be a positive multiple of {CHECK_EVERY}")
    for path in a.models:
        try:
            runner, _ = load_runner(path, device="cpu", providers="cpu", threads=a.threads)
        except ValueError as exc:  # missing or unreadable model: one line, no traceback
            ap.error(str(exc))
        t0 = time.perf_counter()
        for seed in SEEDS:
            r = probe(runner, seed, a.steps)
            bad = "ok" if r["first_out_of_range"] is None else f"out of range at step {r['first_out_of_range']}"
            print(f"{path} seed {seed}: {bad}; at step {a.steps}: φ in [{r['min']:.3f}, {r['max']:.3f}], "
                  f"sd {r['sd']:.3f}, rms change over the last {min(2500, a.steps)} steps "
                  f"{r['rms_change_last_2500']:.3g}", flush=True)
        print(f"{path}: {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
