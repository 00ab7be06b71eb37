"""Experiments evaluated by ``python -m surrogate evaluate`` against a solver data set: held-out
Perlin ICs, a larger box, the torus (mesh) IC, the central-slice IC and the ensemble of Perlin
evolutions. Each makes its ground truth once (:meth:`repro.context.Context.ground_truth`) and
keeps the condensed evaluation (RMSE, δ, F(t), mass, power law)."""

from __future__ import annotations

import numpy as np

from ch_numba import initial
from ch_numba.render import new_figure  # a Figure on the Agg canvas, no pyplot
from surrogate import metrics

from .common import ROOT


def exp_heldout(ctx) -> dict:
    """20 held-out Perlin ICs (seeds never used in training), 50 frames from the noise: RMSE, δ, F."""
    z = ctx.sizes.heldout
    truth = ctx.ground_truth(
        "heldout", "generate", "--sequences", z.sequences, "--frames", z.frames, "--size", ctx.grid, "--seed", z.seed
    )
    out = {"model": ctx.evaluate(ctx.model, truth, "heldout", "--split", "all")}
    if ctx.ablation:
        out["ablation"] = ctx.evaluate(ctx.ablation, truth, "heldout_ablation", "--split", "all")
    return out


def exp_large(ctx) -> dict:
    """Generalisation: a 2x larger box (each side) and 2x longer sequences (100 frames)."""
    z = ctx.sizes.large
    truth = ctx.ground_truth(
        "large",
        "generate",
        "--sequences",
        z.sequences,
        "--frames",
        z.frames,
        "--size",
        z.box * ctx.grid,
        "--seed",
        z.seed,
    )
    return {"model": ctx.evaluate(ctx.model, truth, "large", "--split", "all")}


def exp_torus(ctx) -> dict:
    """A mesh-shaped IC: a torus (STL written by trimesh) at φ = 0.7 in a φ = 0.45 matrix, 200 frames.

    A torus of φ = 1 in φ = 0 fills 7 % of the box: its mean (0.074) lies outside the spinodal
    region, so the solver simply dissolves it; on a mixed matrix the torus seeds the decomposition.
    """
    import trimesh

    stl = ROOT / "docs" / "data" / "torus.stl"
    if not stl.exists():
        stl.parent.mkdir(parents=True, exist_ok=True)
        trimesh.creation.torus(major_radius=1.0, minor_radius=0.4, major_sections=48, minor_sections=24).export(stl)
    ic = ctx.work / "torus_ic.npy"

    def write_ic():
        np.save(ic, initial.mesh(stl, (ctx.grid,) * 3, inside=0.7, outside=0.45).astype(np.float32))

    truth = ctx.ground_truth(
        "torus",
        "simulate",
        "--ic",
        "npy",
        "--ic-file",
        ic,
        "--size",
        ctx.grid,
        "--frames",
        ctx.sizes.torus.frames,
        stem="torus_matrix",
        prepare=write_ic,
    )
    return {"model": ctx.evaluate(ctx.model, truth, "torus", "--sequences", "0")}


def exp_slice(ctx) -> dict:
    """The central-slice IC (fluctuations in one plane only) run 10x the training length (500 frames)."""
    z = ctx.sizes.slice
    truth = ctx.ground_truth(
        "slice",
        "simulate",
        "--ic",
        "slice",
        "--size",
        ctx.grid,
        "--frames",
        z.frames,
        "--seed",
        z.seed,
        "--amplitude",
        0.2,
    )
    return {"model": ctx.evaluate(ctx.model, truth, "slice", "--sequences", "0")}


def exp_ensemble(ctx) -> dict:
    """100 evolutions (--ensemble) from Perlin ICs over 4x the training length: mean ± sd of F(t), power law."""
    n, z = ctx.ensemble, ctx.sizes.ensemble
    truth = ctx.ground_truth(
        "ensemble",
        "generate",
        "--sequences",
        n,
        "--frames",
        z.frames,
        "--size",
        ctx.grid,
        "--seed",
        z.seed,
        stem="ensemble" if n == 100 else f"ensemble{n}",
    )
    frame_time = float(ctx.meta["time_per_step"])  # steps_per_frame · dt of the training data
    # coarsening: after the phase separation (frame 50) to the end
    t_min, t_max = z.fit_from * frame_time, z.frames * frame_time
    ev = ctx.evaluate(ctx.model, truth, "ensemble", "--split", "all", "--fit-range", f"{t_min:g}:{t_max:g}")
    # F on the network grid (spacing f·dx, no upsampling floor): mean ± sd and power law of the means
    t = np.asarray(ev["times"], dtype=np.float64)
    c = ev["ensemble"]["curves"]
    fits = {}
    fig = new_figure(figsize=(5, 3.6))
    ax = fig.subplots()
    for key, label, color in (("free_energy_net_true", "solver", "k"), ("free_energy_net_pred", "CRNN", "tab:red")):
        mean = np.array(c[key]["mean"], dtype=np.float64)
        sd = np.array(c[key]["sd"], dtype=np.float64)
        alpha, _, r2 = metrics.fit_power_law(t, mean, t_min, t_max)
        fits[label] = {"alpha": alpha, "r2": r2}
        ax.plot(t, mean, color=color, label=f"{label}: α = {alpha:.3f} on t ∈ [{t_min:g}, {t_max:g}]")
        ax.fill_between(t, mean - sd, mean + sd, color=color, alpha=0.2)
    ax.set_xlabel("t since the initial condition")
    ax.set_ylabel("F / V on the network grid")
    ax.set_title(f"{ev['ensemble']['n_sequences']} evolutions, mean ± sd", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(ctx.figures / "ensemble_free_energy_network.png", dpi=110)
    return {"model": ev, "fit_window": [t_min, t_max], "power_law_of_mean_network_grid": fits}
