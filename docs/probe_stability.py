r"""How long does a checkpoint stay physical, and does it rest? Free rollouts checked every 250 steps.

    python docs/probe_stability.py runs/late03/best.pt runs/late06/last.pt --steps 10000
    python docs/probe_stability.py models/crnn.onnx --layers        # flat-layer drift, 5,000 steps

For each model (a PyTorch checkpoint .pt or an exported .onnx) and each IC (Perlin noise on the
model's training box — 32³ for the scaled models, 64³ at the paper's scale —, frequency 3, mean
0.5, amplitude 0.1, seeds 2024, 7, 99, sampled every second voxel: the 16³ or 32³ network grid),
it rolls the network out for ``--steps`` steps and
prints the first checked step at which φ leaves [−0.5, 1.5] ("ok" if none), and at the end of
the run the range of φ, its standard deviation (½ for a sharp 50/50 two-phase field), the rms
change over the last 2,500 steps (0 for a stationary state), the same after undoing the best
periodic integer translation, the layered fraction (1 for flat layers) and the interface velocity
over those steps (network cells per 10⁴ steps; :func:`surrogate.metrics.stationarity`). This is
how the third training stage's checkpoint was chosen (models/README.md); a 10⁴-step probe of one
model takes ~2 min per IC on one core.

``--layers``: the flat-layer drift probe instead. A periodic box at φ̄ ≈ ½ comes to rest in flat
layers, a stationary state that the physics does not move. On a network grid of ``--layer-cells``
(32) cells along the layer normal and the model's training grid (16) along the other two axes, a
slab of the φ = 1 phase between x = a and x = b (periodic, images summed),

    φ(x) = Σ_m ½ (tanh((x − a + m n)/w) − tanh((x − b + m n)/w)),   w = 2ℓ / f,  ℓ = ε / √(2W) / dx

(the equilibrium interface ½(1 + tanh(x/w)) of the model's physics, ℓ in ground-truth voxels, f the
model's downscale factor), is set up normal to each axis in three variants (:data:`LAYER_VARIANTS`):
``mirror`` (a = n/4, b = 3n/4: the interfaces on cell centres, the slab symmetric about the lattice
mirror planes x = n/2 and x = 0), ``offset`` (the same moved by 0.3 cells: no lattice symmetry) and
``unequal`` (a 40 % slab of φ = 1 in 60 % of φ = 0, symmetric about x = n/2). Each is rolled out for
``--steps`` steps (default 5,000); the drift of the layers along their normal is the sum of
:func:`surrogate.metrics.layer_shift` between checkpoints 250 steps apart (so it may exceed n/2),
printed in network cells and in cells per 10⁴ steps, with the layered fraction and the rms change
up to translation at the end. The physics moves none of them; an O_h-equivariant model cannot move
the mirror variant (a drift along ±x would break its mirror symmetry).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ch_numba import initial  # noqa: E402
from ch_numba.solver import PHYSICAL_RANGE  # noqa: E402
from surrogate import metrics  # noqa: E402
from surrogate.evaluate import load_runner  # noqa: E402

SEEDS = (2024, 7, 99)
CHECK_EVERY = 250  # steps between range checks
TAIL = 2500  # steps of the stationarity tail
#: flat-layer variants: name -> (slab centre offset from n/2 in cells, slab fraction of φ = 1)
LAYER_VARIANTS = {"mirror": (0.0, 0.5), "offset": (0.3, 0.5), "unequal": (0.0, 0.4)}
LAYER_CELLS = 32  # network cells along the layer normal


def probe(runner, seed: int, steps: int) -> dict:
    """One free rollout from the Perlin IC of ``seed`` (network grid), checked every 250 steps.

    Returns {seed, first_out_of_range (first checked step with φ outside [−0.5, 1.5], None: never),
    min, max, sd (of φ at the end), rms_change_last_2500 (rms of the change over the last
    min(2500, steps) steps), and from :func:`surrogate.metrics.stationarity` over the same tail:
    rms_change_up_to_translation, translation, layered_fraction, interface_velocity (network cells
    per 10⁴ steps), layer_shift_per_1e4_steps, stationarity (the whole dict)}.
    """
    size = int(runner.metadata.get("train_grid", 32))  # the model's ground-truth box (32³ for the scaled model)
    ic = initial.perlin((size,) * 3, frequency=3, seed=seed, mean=0.5, amplitude=0.1).astype(np.float32)
    phi0 = ic[:: runner.factor, :: runner.factor, :: runner.factor]
    frames = [np.array(phi0, dtype=np.float32)]
    first_bad = None
    for k, phi in enumerate(runner.rollout(phi0, steps, every=CHECK_EVERY), 1):
        frames.append(np.array(phi, dtype=np.float32))
        lo, hi = float(phi.min()), float(phi.max())
        if first_bad is None and not (PHYSICAL_RANGE[0] <= lo and hi <= PHYSICAL_RANGE[1]):
            first_bad = k * CHECK_EVERY
            if not np.isfinite(lo + hi):
                break
    phi = frames[-1]
    done = (len(frames) - 1) * CHECK_EVERY  # < steps if the run blew up
    st = metrics.stationarity(np.stack(frames), CHECK_EVERY, tail_steps=min(TAIL, done))
    return {
        "seed": seed,
        "first_out_of_range": first_bad,
        "min": float(phi.min()),
        "max": float(phi.max()),
        "sd": float(phi.std()),
        "rms_change_last_2500": st["rms_change"],
        "rms_change_up_to_translation": st["rms_change_up_to_translation"],
        "translation": st["translation"],
        "layered_fraction": st["layered_fraction"],
        "interface_velocity": st["interface_velocity"],
        "layer_shift_per_1e4_steps": st["layer_shift_per_1e4_steps"],
        "stationarity": st,
    }


def interface_width(runner) -> float:
    """w = 2ℓ / f in network cells, ℓ = ε / √(2W) / dx the equilibrium length in ground-truth voxels
    (φ = ½(1 + tanh(x/w)) is the flat equilibrium interface; from the model's metadata)."""
    m = runner.metadata
    ell = float(m["epsilon"]) / math.sqrt(2.0 * float(m["W"])) / float(m.get("dx", 1.0))
    return 2.0 * ell / runner.factor


def flat_layer(n: int, axis: int, w: float, variant: str = "mirror", other: int = 16) -> np.ndarray:
    """A periodic flat slab normal to ``axis`` (module docstring): float32 (X, Y, Z) with ``n`` cells
    along ``axis`` and ``other`` along the two other axes.

    The φ = 1 slab has thickness t = fraction · n and is centred at c = n/2 + offset
    (:data:`LAYER_VARIANTS`): a = c − t/2, b = c + t/2; images m = −3..3 make it periodic.
    """
    offset, fraction = LAYER_VARIANTS[variant]
    c, t = n / 2.0 + offset, fraction * n
    a, b = c - t / 2.0, c + t / 2.0
    x = np.arange(n, dtype=np.float64)
    p = sum(0.5 * (np.tanh((x - a + m * n) / w) - np.tanh((x - b + m * n) / w)) for m in range(-3, 4))
    shape = [1, 1, 1]
    shape[axis] = n
    full = [other] * 3
    full[axis] = n
    return np.ascontiguousarray(np.broadcast_to(p.reshape(shape), full), dtype=np.float32)


def probe_layers(runner, axis: int, variant: str, steps: int, n: int = LAYER_CELLS) -> dict:
    """Roll a flat layer (:func:`flat_layer`, normal to ``axis``, ``n`` cells along it, the model's
    training network grid, at least 16, along the others) out for ``steps`` steps (a multiple of 250).

    Returns {axis, variant, w (interface width, network cells), drift (cells along the normal: the
    sum of :func:`surrogate.metrics.layer_shift` between checkpoints 250 steps apart; NaN once φ is
    not finite), drift_per_1e4_steps, drift_curve (the accumulated drift at each checkpoint, list),
    layered_fraction, rms_change_up_to_translation (over the last min(2500, steps) steps),
    interface_velocity (cells per 10⁴ steps, same tail), min, max (of φ at the end)}.
    """
    m = runner.metadata
    other = max(16, int(m.get("train_grid", 32 * runner.factor)) // runner.factor)
    w = interface_width(runner)
    phi0 = flat_layer(n, axis, w, variant, other)
    frames, drift, curve = [phi0], 0.0, []
    for phi in runner.rollout(phi0, steps, every=CHECK_EVERY):
        phi = np.array(phi, dtype=np.float32)
        drift += metrics.layer_shift(frames[-1], phi, axis)
        curve.append(drift)
        frames.append(phi)
    st = metrics.stationarity(np.stack(frames), CHECK_EVERY, tail_steps=min(TAIL, steps))
    last = frames[-1]
    return {
        "axis": axis,
        "variant": variant,
        "w": w,
        "drift": drift,
        "drift_per_1e4_steps": drift / steps * 1e4,
        "drift_curve": curve,
        "layered_fraction": st["layered_fraction"],
        "rms_change_up_to_translation": st["rms_change_up_to_translation"],
        "interface_velocity": st["interface_velocity"],
        "min": float(last.min()),
        "max": float(last.max()),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", type=Path, help="checkpoints (.pt) or exported models (.onnx)")
    ap.add_argument(
        "--steps",
        type=int,
        default=None,
        help="network steps per rollout, a multiple of 250 (default 10000; 5000 with --layers)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads of the rollouts, PyTorch or onnxruntime (default %(default)s)",
    )
    ap.add_argument(
        "--layers", action="store_true", help="flat-layer drift probe (3 axes x 3 variants) instead of the Perlin ICs"
    )
    ap.add_argument(
        "--layer-cells",
        type=int,
        default=LAYER_CELLS,
        help="network cells along the layer normal (default %(default)s)",
    )
    ap.add_argument(
        "--variants",
        nargs="+",
        choices=list(LAYER_VARIANTS),
        default=list(LAYER_VARIANTS),
        help="with --layers: which layers (default: all)",
    )
    ap.add_argument(
        "--axes",
        nargs="+",
        choices=list("xyz"),
        default=list("xyz"),
        help="with --layers: the layer normals (default: x y z; an equivariant model gives the same drift on all three)",
    )
    a = ap.parse_args(argv)
    if a.steps is None:
        a.steps = 5_000 if a.layers else 10_000
    if a.steps < CHECK_EVERY or a.steps % CHECK_EVERY:
        ap.error(f"--steps must be a positive multiple of {CHECK_EVERY}")
    if a.layer_cells < 8:
        ap.error("--layer-cells must be >= 8")
    tail = min(TAIL, a.steps)
    for path in a.models:
        try:
            runner, _ = load_runner(path, device="cpu", providers="cpu", threads=a.threads)
        except ValueError as exc:  # missing or unreadable model: one line, no traceback
            ap.error(str(exc))
        t0 = time.perf_counter()
        if a.layers:
            print(
                f"{path}: flat layers, {a.layer_cells} network cells along the normal, interface width "
                f"w = {interface_width(runner):.3g} cells, {a.steps} steps; drift of the layers along their "
                f"normal",
                flush=True,
            )
            for variant in a.variants:
                for axis in ("xyz".index(c) for c in a.axes):
                    r = probe_layers(runner, axis, variant, a.steps, a.layer_cells)
                    print(
                        f"{path} layers {variant:7s} normal {'xyz'[axis]}: drift {r['drift']:+.3f} cells "
                        f"({r['drift_per_1e4_steps']:+.3g} cells per 10⁴ steps); at step {a.steps}: φ in "
                        f"[{r['min']:.3f}, {r['max']:.3f}], layered fraction {r['layered_fraction']:.4f}, "
                        f"over the last {tail} steps rms change up to translation "
                        f"{r['rms_change_up_to_translation']:.3g}, interface velocity "
                        f"{r['interface_velocity']:.3g} cells per 10⁴ steps",
                        flush=True,
                    )
        else:
            for seed in SEEDS:
                r = probe(runner, seed, a.steps)
                bad = "ok" if r["first_out_of_range"] is None else f"out of range at step {r['first_out_of_range']}"
                print(
                    f"{path} seed {seed}: {bad}; at step {a.steps}: φ in [{r['min']:.3f}, {r['max']:.3f}], "
                    f"sd {r['sd']:.3f}, rms change over the last {tail} steps "
                    f"{r['rms_change_last_2500']:.3g} (up to translation {r['rms_change_up_to_translation']:.3g}), "
                    f"layered fraction {r['layered_fraction']:.3f}, interface velocity "
                    f"{r['interface_velocity']:.3g} cells per 10⁴ steps",
                    flush=True,
                )
        print(f"{path}: {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
