"""The ``walls`` experiment: the shipped model on boxes with no-flux walls, without retraining.

The held-out ICs of ``heldout`` (same seeds, same sizes, the model's training box) are evolved by the
solver three times — periodic, with walls along z (a film between two walls: ``--boundary
periodic,periodic,neumann``) and with walls along every axis (``--boundary neumann``) — and the model
is evaluated on each in the same run (``python -m surrogate evaluate``, which reads the boundary from
the data set). With ``--spectral-truth walls`` the three ground truths are the spectral scheme's (SBDF2 at
matched accuracy; DCT along the walls), minutes instead of an hour of explicit steps. Per set: the
per-IC maximum F error on the network grid, mass drift and the wall contact of the last frame. Then the
model runs ``--steps`` (10⁴) steps from a Perlin IC on each wall box: stability (φ range), mass, and its
rest state (which axis the layers are normal to, and the contact at the walls).

Contact at a wall (no wetting: the interfaces meet the wall at 90°, ∂φ/∂n = 0): at the first cell
layer next to a wall, the mean |φ[1] − φ[0]| along the normal over the mean in-plane |∇φ| (forward
differences; 0 for a field constant along the normal there). The solver's own last frame gives the
reference value of the same number on the same grid.
"""

from __future__ import annotations

import numpy as np

from ch_numba import initial
from ch_numba.params import wall_axes
from ch_numba.render import new_figure
from ch_numba.solver import PHYSICAL_RANGE

#: the three boxes of the experiment: name (ground-truth file stem and figure prefix) -> boundary option
BOXES = {"heldout": None, "walls_film": "periodic,periodic,neumann", "walls_box": "neumann"}


def _per_ic(ev: dict) -> dict:
    """Mean, sd and worst of the per-IC maximum F error on the network grid, and the worst mass drift."""
    f = np.array([s["free_energy_rel_error_network_max"] for s in ev["sequences"]], dtype=float)
    mass = max(float(s["mass_drift_pred_max"]) for s in ev["sequences"])
    return {
        "n": int(f.size),
        "F_error_network_max_mean": float(f.mean()),
        "F_error_network_max_sd": float(f.std(ddof=1)) if f.size > 1 else 0.0,
        "F_error_network_max_worst": float(f.max()),
        "mass_drift_pred_max": mass,
    }


def contact_ratio(phi: np.ndarray, walls) -> float | None:
    """Mean |∂_n φ| over mean in-plane |∇φ| at the cell layers next to the walls (module docstring); None
    without walls. ``phi`` (X, Y, Z), ``walls`` (x, y, z) booleans."""
    phi = np.asarray(phi, dtype=np.float64)
    normal, tangential = [], []
    for axis, wall in enumerate(walls):
        if not wall:
            continue
        for first, second in ((0, 1), (-1, -2)):
            a = np.take(phi, first, axis=axis)
            b = np.take(phi, second, axis=axis)
            normal.append(np.abs(b - a).ravel())
            tangential.append(np.hypot(*(np.diff(a, axis=k, append=a.take([0], axis=k)) for k in (0, 1))).ravel())
    if not normal:
        return None
    return float(np.mean(np.concatenate(normal)) / max(np.mean(np.concatenate(tangential)), 1e-30))


def layer_axis(phi: np.ndarray) -> dict:
    """How flat the field is along each axis: the fraction of φ's variance held by its profile along that axis
    (the mean over the other two); ~1 for layers normal to the axis. Returns {"fractions": [x, y, z], "axis"}."""
    phi = np.asarray(phi, dtype=np.float64)
    var = float(phi.var()) or 1e-30
    fr = [float(phi.mean(axis=tuple(k for k in range(3) if k != a)).var() / var) for a in range(3)]
    return {"fractions": fr, "axis": int(np.argmax(fr))}


def long_run(ctx, boundary: str, steps: int, seed: int, every: int = 250) -> dict:
    """``steps`` network steps from a Perlin IC on the wall box (the model's training box, noise not periodic
    along the walls): first step out of [−0.5, 1.5] (None: never), φ range, mass drift, rest state."""
    runner = ctx.runner(ctx.model, threads=1, boundary=boundary)
    size = int(ctx.grid)
    ic = initial.perlin((size,) * 3, frequency=3, seed=seed, mean=0.5, amplitude=0.1, boundary=boundary)
    phi0 = runner.downscale(ic.astype(np.float32))
    mass0 = float(phi0.sum(dtype=np.float64))
    first_bad, frames, drift = None, [phi0], 0.0
    for k, phi in enumerate(runner.rollout(phi0, steps, every=every), 1):
        frames.append(np.array(phi))
        drift = max(drift, abs(float(phi.sum(dtype=np.float64)) - mass0) / mass0)
        if first_bad is None and not (PHYSICAL_RANGE[0] <= phi.min() and phi.max() <= PHYSICAL_RANGE[1]):
            first_bad = k * every
    last = frames[-1]
    walls = wall_axes(runner.boundary)
    return {
        "boundary": ",".join(runner.boundary),
        "steps": steps,
        "first_out_of_range": first_bad,
        "min": float(last.min()),
        "max": float(last.max()),
        "mass_drift_max": drift,
        "rms_change_last_2500": float(np.sqrt(np.mean((last - frames[-1 - min(10, len(frames) - 1)]) ** 2))),
        "layers": layer_axis(last),
        "contact_ratio": contact_ratio(last, walls),
        "_final": last,
    }


def exp_walls(ctx) -> dict:
    """No-flux walls without retraining: held-out ICs periodic / film / box in one run; 10^4 steps on walls."""
    z = ctx.sizes.heldout
    common = ("--sequences", z.sequences, "--frames", z.frames, "--size", ctx.grid, "--seed", z.seed)
    out, finals = {"sets": {}}, {}
    for name, boundary in BOXES.items():
        boundary_option = ("--boundary", boundary) if boundary else ()
        truth = ctx.ground_truth("walls", "generate", *common, *boundary_option, stem=name)
        ev = ctx.evaluate(ctx.model, truth, f"walls_eval_{name}", "--split", "all", "--no-plots")
        out["sets"][name] = {"boundary": boundary or "periodic", **_per_ic(ev)}
        if boundary:
            finals[name] = _last_frames(ctx, truth, boundary)
            walls = wall_axes(boundary)
            out["sets"][name]["contact_ratio_last_frame"] = {
                k: contact_ratio(v, walls) for k, v in finals[name].items()
            }
    base = out["sets"]["heldout"]["F_error_network_max_mean"]
    for name in ("walls_film", "walls_box"):
        s = out["sets"][name]
        s["within_periodic_plus_1_point"] = bool(s["F_error_network_max_mean"] <= base + 0.01)
    w = ctx.sizes.walls
    out["long"] = {}
    for name in ("walls_film", "walls_box"):
        res = long_run(ctx, BOXES[name], w.steps, w.seed)
        finals[name]["rest"] = res.pop("_final")
        out["long"][name] = res
    _figure(ctx, finals, out)
    return out


def _last_frames(ctx, truth, boundary) -> dict:
    """The first held-out IC's last frame on the network grid: solver (block means) and the model's rollout."""
    from ch_numba.dataset import open_dataset

    runner = ctx.runner(ctx.model, boundary=boundary)
    with open_dataset(truth) as ds:
        frames = np.asarray(ds.sequence(0), dtype=np.float32)
    net = runner.downscale(frames)
    *_, last = runner.rollout(net[0], len(frames) - 1)
    return {"solver": net[-1], "network": np.asarray(last)}


def _figure(ctx, finals: dict, out: dict) -> None:
    """docs/figures/walls.png: per wall box, xz slices (walls at top and bottom for the film) of the solver's
    and the network's last held-out frame and the network's state after 10^4 steps."""
    fig = new_figure(figsize=(8.4, 5.6))
    axes = fig.subplots(2, 3, squeeze=False)
    for row, name in zip(axes, ("walls_film", "walls_box")):
        panels = (("solver, frame 49", "solver"), ("network, step 49", "network"), ("network, 10^4 steps", "rest"))
        for ax, (title, key) in zip(row, panels):
            field = finals[name][key]
            # the xz plane, or the yz plane where the field is layered normal to y (an xz slice would be one phase)
            yz = key == "rest" and out["long"][name]["layers"]["axis"] == 1
            plane = field[field.shape[0] // 2] if yz else field[:, field.shape[1] // 2, :]
            ax.imshow(plane.T, origin="lower", cmap="RdBu_r", vmin=0, vmax=1)
            ax.set_title(f"{name.replace('walls_', '')}: {title}", fontsize=9)
            ax.set_xlabel("y" if yz else "x")
            ax.set_ylabel("z")
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    ctx.figures.mkdir(parents=True, exist_ok=True)
    fig.savefig(ctx.figures / "walls.png", dpi=110)
