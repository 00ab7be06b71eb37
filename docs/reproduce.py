"""Regenerate every number and figure of docs/REPRODUCTION.md from the shipped models.

    python docs/reproduce.py                       # all experiments (~25 min on 2 CPU cores)
    python docs/reproduce.py --only long,ablation  # some of them
    python docs/reproduce.py --list                # what each experiment is

Ground truth is made with the documented commands (``python -m ch_numba generate|simulate``)
with the physics stored in the model's metadata (ε, M, W, dt, steps per frame), and compared
with ``python -m surrogate evaluate`` (RMSE, δ, F(t), mass, power law). The experiments that
need more than one model or other time sampling (long rollout, ablation, cost) are computed
here with ``export.runtime.Rollout`` (onnxruntime, no PyTorch) and ``surrogate.metrics``.

Output: ``docs/figures/<experiment>_*.png``, ``docs/results/<experiment>.json`` and
``docs/results/summary.md`` (the table of the report). Intermediate data (HDF5, a few GB at
most) go to ``--work`` (default ``/tmp/ch3d-reproduce``) and are reused when present.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ch_numba  # noqa: E402
from ch_numba import initial  # noqa: E402
from ch_numba.cli import physics_args as cli_physics_args  # noqa: E402
from ch_numba.render import new_figure  # noqa: E402  (a Figure on the Agg canvas, no pyplot)
from export.rollout import PHYSICAL_RANGE  # noqa: E402
from surrogate import metrics  # noqa: E402
from surrogate.metrics import change_up_to_translation, layered_fraction  # noqa: E402,F401  (one definition)

FIGURES = ROOT / "docs" / "figures"
RESULTS = ROOT / "docs" / "results"


# -- plumbing ------------------------------------------------------------------------------------
def sh(*args: str) -> None:
    """Run one documented command (``python -m ...``), echoing it; stop on failure."""
    cmd = [sys.executable, *map(str, args)]
    print("$", " ".join(["python", *map(str, args)]), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def params_of(meta: dict) -> ch_numba.CHParams:
    return ch_numba.CHParams.from_metadata(meta)


def save_json(name: str, data: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(metrics._json(data), indent=1) + "\n")


def evaluate(model: Path, truth: Path, name: str, work: Path, *extra: str) -> dict:
    """``python -m surrogate evaluate``; its plots are copied to docs/figures/<name>_*.png."""
    out = work / f"eval_{name}"
    sh("-m", "surrogate", "evaluate", model, truth, "--out", out, "--overwrite", *extra)  # a rerun replaces it
    FIGURES.mkdir(parents=True, exist_ok=True)
    for png in sorted(out.glob("*.png")):
        shutil.copyfile(png, FIGURES / f"{name}_{png.name}")
    return condense(json.loads((out / "evaluation.json").read_text()))


def condense(ev: dict) -> dict:
    """An evaluation.json without its per-frame curves per sequence (kept: ensemble curves and
    every per-sequence scalar), small enough for git."""
    seqs = [{k: v for k, v in s.items() if not isinstance(v, list)} for s in ev["sequences"]]
    keep = ("format", "date", "command", "code_version", "config", "data", "warnings", "times", "ensemble", "timing")
    return {
        **{k: ev[k] for k in keep if k in ev},
        "sequences": seqs,
        "model": {k: v for k, v in ev["model"].items() if k != "metadata"},
    }


def plot_slices(panels: list[tuple[str, np.ndarray]], path: Path) -> None:
    """One row of central z-slices (each panel: title, field (X, Y, Z))."""
    fig = new_figure(figsize=(2.6 * len(panels), 2.8))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (title, field) in zip(axes[0], panels):
        ax.imshow(field[:, :, field.shape[2] // 2].T, origin="lower", cmap="RdBu_r", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# -- experiments -----------------------------------------------------------------------------------
def exp_heldout(ctx) -> dict:
    """20 held-out Perlin ICs (seeds never used in training), 50 frames from the noise: RMSE, δ, F."""
    truth = ctx.truth_file("heldout")
    if not truth.exists():
        sh(
            "-m",
            "ch_numba",
            "generate",
            truth,
            "--sequences",
            20,
            "--frames",
            50,
            "--size",
            ctx.grid,
            "--seed",
            90210,
            *ctx.truth_args("heldout"),
        )
    out = {"model": evaluate(ctx.model, truth, "heldout", ctx.work, "--split", "all")}
    if ctx.ablation:
        out["ablation"] = evaluate(ctx.ablation, truth, "heldout_ablation", ctx.work, "--split", "all")
    return out


def exp_large(ctx) -> dict:
    """Generalisation: a 2x larger box (each side) and 2x longer sequences (100 frames)."""
    truth = ctx.truth_file("large")
    if not truth.exists():
        sh(
            "-m",
            "ch_numba",
            "generate",
            truth,
            "--sequences",
            8,
            "--frames",
            100,
            "--size",
            2 * ctx.grid,
            "--seed",
            4711,
            *ctx.truth_args("large"),
        )
    return {"model": evaluate(ctx.model, truth, "large", ctx.work, "--split", "all")}


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
    truth = ctx.truth_file("torus", "torus_matrix")
    if not truth.exists():
        np.save(ic, initial.mesh(stl, (ctx.grid,) * 3, inside=0.7, outside=0.45).astype(np.float32))
        sh(
            "-m",
            "ch_numba",
            "simulate",
            truth,
            "--ic",
            "npy",
            "--ic-file",
            ic,
            "--size",
            ctx.grid,
            "--frames",
            200,
            *ctx.truth_args("torus"),
        )
    return {"model": evaluate(ctx.model, truth, "torus", ctx.work, "--sequences", "0")}


def exp_slice(ctx) -> dict:
    """The central-slice IC (fluctuations in one plane only) run 10x the training length (500 frames)."""
    truth = ctx.truth_file("slice")
    if not truth.exists():
        sh(
            "-m",
            "ch_numba",
            "simulate",
            truth,
            "--ic",
            "slice",
            "--size",
            ctx.grid,
            "--frames",
            500,
            "--seed",
            3,
            "--amplitude",
            0.2,
            *ctx.truth_args("slice"),
        )
    return {"model": evaluate(ctx.model, truth, "slice", ctx.work, "--sequences", "0")}


def exp_ensemble(ctx) -> dict:
    """100 evolutions (--ensemble) from Perlin ICs over 4x the training length: mean ± sd of F(t), power law."""
    n = ctx.ensemble
    truth = ctx.truth_file("ensemble", "ensemble" if n == 100 else f"ensemble{n}")
    if not truth.exists():
        sh(
            "-m",
            "ch_numba",
            "generate",
            truth,
            "--sequences",
            n,
            "--frames",
            200,
            "--size",
            ctx.grid,
            "--seed",
            1234,
            *ctx.truth_args("ensemble"),
        )
    frame_time = float(ctx.meta["time_per_step"])  # steps_per_frame · dt of the training data
    t_min, t_max = 50 * frame_time, 200 * frame_time  # coarsening: after the phase separation (frame 50) to the end
    ev = evaluate(ctx.model, truth, "ensemble", ctx.work, "--split", "all", "--fit-range", f"{t_min:g}:{t_max:g}")
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
    fig.savefig(FIGURES / "ensemble_free_energy_network.png", dpi=110)
    return {"model": ev, "fit_window": [t_min, t_max], "power_law_of_mean_network_grid": fits}


LONG_STEPS, LONG_EVERY, LONG_TAIL = 50_000, 100, 10_000  # network steps, between checks, stationarity tail


def exp_long(ctx) -> dict:
    """A rollout 10³x the training sequence (50 000 network steps) vs the solver to the same time.

    Both start from one Perlin IC; F(t) is compared every 100 network steps, the final states
    are tested for stationarity over the last 10 000 steps (:func:`surrogate.metrics.stationarity`:
    rms change, plain and up to a periodic translation, interface velocity and layer drift in
    length units per 10⁴ network steps, with the network's cells f·dx and the solver's dx) and
    layering.
    """
    steps, every, tail = LONG_STEPS, LONG_EVERY, min(LONG_TAIL, LONG_STEPS // 2)
    p = params_of(ctx.meta)
    net_p = metrics.network_params(p, ctx.factor)
    ic = initial.perlin((ctx.grid,) * 3, frequency=3, seed=2024, mean=0.5, amplitude=0.1).astype(np.float32)
    runner = ctx.runner(ctx.model)

    t0 = time.perf_counter()
    pred = [ic[:: ctx.factor, :: ctx.factor, :: ctx.factor]]
    pred += list(runner.rollout(pred[0], steps, every=every))
    t_net = time.perf_counter() - t0
    pred = np.stack(pred)

    q, q_spf = ctx.truth("long")
    cache = ctx.truth_file("long", "long_solver", ".npy")
    if cache.exists():
        truth = np.load(cache)
        t_sol = None
    else:
        t0 = time.perf_counter()
        stepper = ch_numba.Stepper(ic.shape, q, "cpu", ic.dtype)  # one stepper: SBDF2 keeps its history
        stepper.set(ic)
        truth = [ic]
        for _ in range(steps // every):
            stepper.advance(every * q_spf)
            truth.append(stepper.get("the long rollout's ground truth"))
        t_sol = time.perf_counter() - t0
        truth = np.stack(truth)
        np.save(cache, truth)

    t = np.arange(len(pred)) * every * runner.time_per_step
    F_pred = metrics.free_energy_series(metrics.upsample(pred, ctx.factor), p)
    F_true = metrics.free_energy_series(truth, p)
    # on the network grid (spacing f·dx): the fair view, free of the upsampling floor
    F_net_pred = metrics.free_energy_series(pred, net_p)
    F_net_true = metrics.free_energy_series(metrics.downsample(truth, ctx.factor), net_p)

    def final(frames, dx):
        last = frames[-1].astype(np.float64)
        st = metrics.stationarity(frames, every, tail_steps=tail, dx=dx)
        ax = st["layer_axis"]
        return {
            "rms_change_last_10000_steps": st["rms_change"],
            "rms_change_last_10000_steps_up_to_translation": st["rms_change_up_to_translation"],
            "translation_last_10000_steps": st["translation"],
            "layered_fraction": st["layered_fraction"],
            "layer_axis": ax,
            # lengths in units of dx (not cells: the network's cells are f times the solver's)
            "interface_velocity_last_10000_steps": st["interface_velocity"],
            "layer_drift_per_1e4_steps": None if ax is None else st["layer_shift_per_1e4_steps"][ax] * dx,
            "phi_min": float(last.min()),
            "phi_max": float(last.max()),
        }

    lo = pred.reshape(len(pred), -1).min(axis=1)
    hi = pred.reshape(len(pred), -1).max(axis=1)
    bad = np.flatnonzero(~((lo >= PHYSICAL_RANGE[0]) & (hi <= PHYSICAL_RANGE[1])))  # NaN counts as outside
    res = {
        "network_steps": steps,
        "every": every,
        "time": t[-1],
        "training_sequence_frames": 50,
        "first_step_out_of_range": int(bad[0]) * every if bad.size else None,  # φ outside [-0.5, 1.5]
        "seconds_network": t_net,
        "seconds_solver": t_sol,
        "solver_scheme": str(q),
        "F_network_final": F_pred[-1],
        "F_solver_final": F_true[-1],
        "F_rel_error_max": float(np.max(metrics.relative_error(F_pred, F_true))),
        "F_net_network_final": F_net_pred[-1],
        "F_net_solver_final": F_net_true[-1],
        "F_net_rel_error_max": float(np.max(metrics.relative_error(F_net_pred, F_net_true))),
        "F_net_rel_error_final": float(metrics.relative_error(F_net_pred[-1], F_net_true[-1])),
        "tail_steps": tail,
        "mass_drift_network": metrics.mass_drift(pred),
        "network": final(pred, net_p.dx),
        "solver": final(truth, p.dx),
        "stationary_index_network": metrics.stationary_index(pred, 1e-3),
        "stationary_index_solver": metrics.stationary_index(truth, 1e-3),
    }

    fig = new_figure(figsize=(5, 3.6))
    ax = fig.subplots()
    n_net = ctx.grid // ctx.factor
    ax.loglog(t[1:], F_true[1:], color="k", label=f"solver ({ctx.grid}³)")
    ax.loglog(t[1:], F_pred[1:], "--", color="tab:red", label=f"CRNN ({n_net}³, upsampled)")
    ax.loglog(t[1:], F_net_true[1:], color="0.5", label=f"solver sampled on the network grid ({n_net}³)")
    ax.loglog(t[1:], F_net_pred[1:], ":", color="tab:red", label=f"CRNN on its grid ({n_net}³)")
    ax.set_xlabel("time")
    ax.set_ylabel("F / V")
    ax.set_title(f"{steps} network steps = {steps // 50}x the training length", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    FIGURES.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURES / "long_free_energy.png", dpi=110)
    k = [0, len(pred) // 100, len(pred) // 10, len(pred) - 1]
    plot_slices(
        [(f"solver t={t[i]:.0f}", truth[i]) for i in k]
        + [(f"CRNN t={t[i]:.0f}", metrics.upsample(pred[i], ctx.factor)) for i in k],
        FIGURES / "long_slices.png",
    )
    return res


COARSENING_SEQUENCES, COARSENING_FRAMES, COARSENING_FIT_FROM = 20, 400, 50  # fit from frame 50 to the end


def exp_coarsening(ctx) -> dict:
    """F ~ t^α and L ~ t^(1/3) on 20 evolutions in a 2x box, 8x the training length: S(k, t), L(t).

    Each Perlin IC (mean 0.5, seeds 5000 + s) runs through the solver and the network side by side,
    frame by frame, nothing stored but the curves on the network grid (the full-grid frames of a
    2x box over 400 frames would take tens of GB): F with spacing f·dx, the characteristic length
    L = 2π/⟨k⟩ (:func:`surrogate.metrics.characteristic_length`) and, for the first IC at four
    times, the structure factor S(k) (:func:`surrogate.metrics.structure_factor`). The power laws
    F ~ t^α (coarsening: α → −1/3) and L ~ t^β (β → 1/3, Lifshitz–Slyozov) are fitted to the
    ensemble means from frame 50 to the end (:func:`surrogate.metrics.fit_power_law`).
    """
    size, f = 2 * ctx.grid, ctx.factor
    p = params_of(ctx.meta)
    net_params = metrics.network_params(p, f)
    q, q_spf = ctx.truth("coarsening")
    runner = ctx.runner(ctx.model)
    T = COARSENING_FRAMES
    snaps = [T // 16, T // 4, T // 2, T - 1]
    curves = {k: [] for k in ("F_net_true", "F_net_pred", "L_true", "L_pred")}
    spectra = {}
    t_net = t_sol = 0.0
    for s in range(COARSENING_SEQUENCES):
        ic = initial.perlin((size,) * 3, frequency=3, seed=5000 + s, mean=0.5, amplitude=0.1).astype(np.float32)
        stepper = ch_numba.Stepper(ic.shape, q, "cpu", ic.dtype)
        stepper.set(ic)
        truth_net = np.empty((T, *(n // f for n in ic.shape)), np.float32)
        pred_net = np.empty_like(truth_net)
        truth_net[0] = pred_net[0] = ic[::f, ::f, ::f]
        steps = runner.rollout(pred_net[0], T - 1)
        for k in range(1, T):
            t0 = time.perf_counter()
            stepper.advance(q_spf)
            truth_net[k] = stepper.get(f"coarsening IC {s}")[::f, ::f, ::f]
            t1 = time.perf_counter()
            pred_net[k] = next(steps)
            t_sol, t_net = t_sol + t1 - t0, t_net + time.perf_counter() - t1
        curves["F_net_true"].append(metrics.free_energy_series(truth_net, net_params))
        curves["F_net_pred"].append(metrics.free_energy_series(pred_net, net_params))
        curves["L_true"].append(metrics.characteristic_length(truth_net, dx=net_params.dx))
        curves["L_pred"].append(metrics.characteristic_length(pred_net, dx=net_params.dx))
        if s == 0:
            for key, frames in (("true", truth_net), ("pred", pred_net)):
                k_, S = metrics.structure_factor(frames[snaps], dx=net_params.dx)
                spectra[key] = {"k": k_, "S": S}
        print(
            f"  IC {s + 1}/{COARSENING_SEQUENCES}: L {curves['L_true'][-1][-1]:.2f} (solver) "
            f"{curves['L_pred'][-1][-1]:.2f} (network) at the last frame",
            flush=True,
        )
    t = np.arange(T) * runner.time_per_step
    t_min, t_max = t[COARSENING_FIT_FROM], t[-1]
    stats = {k: metrics.ensemble_stats(v) for k, v in curves.items()}
    fits = {}
    for key in curves:
        a, _, r2 = metrics.fit_power_law(t, stats[key][0], t_min, t_max)
        fits[key] = {"exponent": a, "r2": r2}
    F_err = metrics.relative_error(np.stack(curves["F_net_pred"]), np.stack(curves["F_net_true"]))
    L_err = metrics.relative_error(np.stack(curves["L_pred"]), np.stack(curves["L_true"]))

    fig = new_figure(figsize=(10, 3.6))
    axF, axL, axS = fig.subplots(1, 3)
    for ax, key, ylabel in ((axF, "F_net", "F / V on the network grid"), (axL, "L", "L = 2π/⟨k⟩")):
        for who, label, color in (("true", "solver", "k"), ("pred", "CRNN", "tab:red")):
            mean, sd = stats[f"{key}_{who}"]
            ax.loglog(t[1:], mean[1:], color=color, label=f"{label}: exponent {fits[f'{key}_{who}']['exponent']:.3f}")
            ax.fill_between(t[1:], (mean - sd)[1:], (mean + sd)[1:], color=color, alpha=0.2)
        ax.axvspan(t_min, t_max, color="0.9", zorder=0)
        ax.set_xlabel("t since the initial condition")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
    for i, frame in enumerate(snaps):
        c = f"C{i}"
        axS.semilogy(spectra["true"]["k"], spectra["true"]["S"][i], color=c, label=f"t = {t[frame]:.0f}")
        axS.semilogy(spectra["pred"]["k"], spectra["pred"]["S"][i], "--", color=c)
    axS.set_xlabel("|k| (IC 0)")
    axS.set_ylabel("S(k): solver —, CRNN - -")
    axS.legend(fontsize=8)
    fig.suptitle(
        f"{COARSENING_SEQUENCES} ICs in a {size}³ box (network {size // f}³), mean ± sd; fit window shaded",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(FIGURES / "coarsening.png", dpi=110)
    return {
        "sequences": COARSENING_SEQUENCES,
        "frames": T,
        "box": size,
        "network_grid": size // f,
        "solver": str(q),
        "solver_steps_per_frame": q_spf,
        "fit_window": [float(t_min), float(t_max)],
        "exponents": fits,
        "F_net_rel_error_max": {"per_ic": F_err.max(axis=1), "worst": float(F_err.max())},
        "L_rel_error_max": {"per_ic": L_err.max(axis=1), "worst": float(L_err.max())},
        "L_final": {"solver": stats["L_true"][0][-1], "network": stats["L_pred"][0][-1]},
        "times": t,
        "curves": {k: {"mean": v[0], "sd": v[1]} for k, v in stats.items()},
        "structure_factor_ic0": {"times": t[snaps], **spectra},
        "seconds_network": t_net,
        "seconds_solver": t_sol,
    }


def exp_ablation(ctx) -> dict:
    """Conservative vs non-conservative model: mass over 10⁴ float32 steps from the same ICs."""
    if not ctx.ablation:
        return {"skipped": "no --ablation model"}
    steps, every = 10_000, 10
    out, curves = {}, {}
    ics = [
        initial.perlin((ctx.grid,) * 3, frequency=f, seed=s, mean=m, amplitude=0.1).astype(np.float32)
        for f, s, m in ((2, 501, 0.5), (3, 502, 0.45), (4, 503, 0.55))
    ]
    for label, path in (("conservative", ctx.model), ("non_conservative", ctx.ablation)):
        runner = ctx.runner(path)
        drifts, series = [], []
        for ic in ics:
            x0 = ic[:: ctx.factor, :: ctx.factor, :: ctx.factor]
            m0 = float(x0.astype(np.float64).mean())
            means = [m0] + [float(f.astype(np.float64).mean()) for f in runner.rollout(x0, steps, every=every)]
            rel = np.abs(np.array(means) - m0) / m0
            drifts.append(float(rel.max()))
            series.append(rel)
        out[label] = {"mass_drift_max": max(drifts), "mass_drift_per_ic": drifts}
        curves[label] = np.mean(series, axis=0)
    fig = new_figure(figsize=(5, 3.6))
    ax = fig.subplots()
    n = np.arange(len(curves["conservative"])) * every
    for label, c in curves.items():
        ax.semilogy(n[1:], np.maximum(c[1:], 1e-12), label=label.replace("_", "-"))
    ax.set_xlabel("network steps")
    ax.set_ylabel("|Δ mean φ| / mean φ")
    ax.legend()
    fig.tight_layout()
    fig.savefig(FIGURES / "ablation_mass.png", dpi=110)
    return {"steps": steps, **out}


# The spectral scheme at matched accuracy: SBDF2 at dt = 2 keeps F(t) within 0.2 % of the explicit
# kernel's over a 64³, ε = 3 coarsening run (benchmarks/RESULTS.md, benchmarks/spectral.py); the
# time scale of the dynamics goes like ε² (τ = 4ε²/(M f''²)), so at another ε the same accuracy
# needs dt = 2 (ε/3)².
SPECTRAL_DT_EPS3 = 2.0


# The explicit scheme's step where the model's metadata gives none (a model last trained on spectral
# data): at most this fraction of its linear stability bound (CHParams.stable_dt). The explicit data
# sets took ~0.70 (ε = 3: dt = 1.0667e-3 = 0.704 of the bound, 3,000 steps per 3.2-unit frame; this
# rule gives 3,018 steps of 1.0603e-3).
EXPLICIT_DT_FRACTION = 0.7


def explicit_frame(p, frame_time: float):
    """(CHParams, steps) of the explicit scheme covering one frame: the fewest steps with
    dt ≤ EXPLICIT_DT_FRACTION · stable_dt (the solver's cost is not inflated by a needlessly small step)."""
    physics = dict(epsilon=p.epsilon, mobility=p.mobility, W=p.W, dx=p.dx)  # without p's scheme settings
    dt_max = EXPLICIT_DT_FRACTION * ch_numba.CHParams(**physics).stable_dt()
    steps = max(1, int(np.ceil(frame_time / dt_max - 1e-9)))
    return ch_numba.CHParams(**physics, dt=frame_time / steps), steps


def spectral_frame(p, frame_time: float):
    """(CHParams, steps) of the spectral scheme (SBDF2) covering one frame at matched accuracy."""
    dt_max = SPECTRAL_DT_EPS3 * (p.epsilon / 3.0) ** 2 * p.mobility**-1
    steps = max(1, int(np.ceil(frame_time / dt_max - 1e-9)))
    q = ch_numba.CHParams(
        epsilon=p.epsilon, mobility=p.mobility, W=p.W, dx=p.dx, dt=frame_time / steps, scheme="spectral", order=2
    )
    return q, steps


def exp_cost(ctx) -> dict:
    """Step time vs voxels (onnxruntime CPU) and the speed-up over the solvers (explicit, spectral) at equal time."""
    runner_threads = None
    rows = []
    p, spf = ctx.explicit()  # the data set's explicit step, or one at 0.7 of the bound if it was spectral
    q, q_steps = spectral_frame(p, spf * p.dt)
    for n in (16, 24, 32, 48, 64):
        runner = ctx.runner(ctx.model, threads=runner_threads)
        x = initial.perlin((n,) * 3, frequency=2, seed=5).astype(np.float32)
        reps = max(3, int(2e6 / n**3))
        list(runner.rollout(x, 2))  # warm-up
        t0 = time.perf_counter()
        list(runner.rollout(x, reps, every=reps))
        step = (time.perf_counter() - t0) / reps
        full = initial.perlin((n * ctx.factor,) * 3, frequency=2, seed=5).astype(np.float32)
        ch_numba.evolve(full, steps=spf // 10, params=p, backend="cpu")  # warm-up (compilation)
        t0 = time.perf_counter()
        ch_numba.evolve(full, steps=spf, params=p, backend="cpu")
        solver = time.perf_counter() - t0
        spectral = ch_numba.Stepper(full.shape, q, "cpu")
        spectral.set(full)
        spectral.advance(2)  # warm-up (compilation, FFT plans)
        t0 = time.perf_counter()
        spectral.advance(10 * q_steps)
        spectral_s = (time.perf_counter() - t0) / 10
        rows.append(
            {
                "network_grid": n,
                "voxels": n**3,
                "seconds_per_step": step,
                "ns_per_voxel": 1e9 * step / n**3,
                "solver_grid": n * ctx.factor,
                "solver_seconds_per_frame": solver,
                "speedup": solver / step,
                "spectral_seconds_per_frame": spectral_s,
                "speedup_vs_spectral": spectral_s / step,
            }
        )
    vox = np.array([r["voxels"] for r in rows], float)
    sec = np.array([r["seconds_per_step"] for r in rows])
    slope = float(np.polyfit(np.log(vox), np.log(sec), 1)[0])
    fig = new_figure(figsize=(5, 3.6))
    ax = fig.subplots()
    ax.loglog(vox, sec, "o-", label=f"CRNN step (onnxruntime CPU), slope {slope:.2f}")
    solver = [r["solver_seconds_per_frame"] for r in rows]
    ax.loglog(vox, solver, "s-", label=f"explicit solver, {spf} steps at {ctx.factor}x the grid")
    ax.loglog(
        vox,
        [r["spectral_seconds_per_frame"] for r in rows],
        "^-",
        label=f"spectral solver (SBDF2), {q_steps} step(s) of dt {q.dt:g}",
    )
    ax.set_xlabel("network voxels")
    ax.set_ylabel("seconds per frame")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(FIGURES / "cost_per_step.png", dpi=110)
    return {
        "rows": rows,
        "loglog_slope": slope,
        "threads": runner_threads or "all cores",
        "spectral": {"dt": q.dt, "steps_per_frame": q_steps, "order": q.order},
    }


# -- the two architectures side by side (unconstrained paper CRNN vs cube-equivariant) ----------------
ARCH_SEEDS = (2024, 7, 99)  # the Perlin ICs of docs/probe_stability.py
ARCH_STEPS, ARCH_EVERY, ARCH_TAIL = 50_000, 250, 10_000
ARCH_LAYER_STEPS = 5_000
F_RISE_TOL = 1e-6  # relative step-to-step rise of F counted as a rise (float32 round-off is ~1e-7)


def architecture_label(meta: dict) -> str:
    return "equivariant" if meta.get("equivariant") else "unconstrained"


def weights_key(meta: dict) -> str:
    """A short hash of the training record in a model's metadata (command, epoch, validation loss,
    parameters): it names the trained weights, whatever the file is called, for the cache of the
    long rollouts of :func:`architecture_rollouts` in ``--work``."""
    import hashlib

    train = meta.get("train", {})
    rec = json.dumps(
        [
            train.get("command"),
            train.get("epoch"),
            train.get("best_val_loss"),
            meta.get("param_count"),
            meta.get("equivariant", False),
        ],
        sort_keys=True,
    )
    return hashlib.sha256(rec.encode()).hexdigest()[:12]


def architecture_rollouts(path: str) -> dict:
    """One model's long-time behaviour (run in its own process, one thread).

    * From the probe's three Perlin ICs (network grid), ``ARCH_STEPS`` free steps: the first step
      with φ outside the physical range, and over the last ``ARCH_TAIL`` steps
      :func:`surrogate.metrics.stationarity` (rms change plain and up to a periodic shift, layered
      fraction, interface velocity); the network-grid free energy F_n after every step, and the
      steps where it rises, F_{n+1} − F_n > ``F_RISE_TOL`` |F_n| (a gradient flow never rises).
    * The flat-layer drift probe (:func:`probe_stability.probe_layers`: mirror, offset by 0.3 cells,
      unequal 40/60; normal to x, y, z), ``ARCH_LAYER_STEPS`` steps each.
    """
    sys.path.insert(0, str(ROOT / "docs"))
    from probe_stability import probe_layers

    from export.runtime import Rollout

    runner = Rollout(path, providers="cpu", threads=1)
    meta, f = runner.metadata, runner.factor
    grid = int(meta["train_grid"])
    p = params_of(meta)
    net_p = metrics.network_params(p, f)
    ics = np.stack(
        [
            metrics.downsample(
                initial.perlin((grid,) * 3, frequency=3, seed=s, mean=0.5, amplitude=0.1).astype(np.float32), f
            )
            for s in ARCH_SEEDS
        ]
    )
    n_ic = len(ARCH_SEEDS)

    t0 = time.perf_counter()
    F, frames, first_bad = [metrics.free_energy_series(ics, net_p)], [ics], [None] * n_ic
    for k, phi in enumerate(runner.rollout(ics[:, None], ARCH_STEPS), 1):
        phi = phi[:, 0]
        F.append(metrics.free_energy_series(phi, net_p))
        if k % ARCH_EVERY == 0:
            frames.append(np.array(phi, dtype=np.float32))
            for i in range(n_ic):
                lo, hi = float(phi[i].min()), float(phi[i].max())
                if first_bad[i] is None and not (PHYSICAL_RANGE[0] <= lo and hi <= PHYSICAL_RANGE[1]):
                    first_bad[i] = k
    seconds_perlin = time.perf_counter() - t0
    F, frames = np.array(F), np.stack(frames)  # (steps + 1, n_ic), (checks + 1, n_ic, n, n, n)
    rise = np.diff(F, axis=0) / np.abs(F[:-1])
    perlin = []
    for i, seed in enumerate(ARCH_SEEDS):
        st = metrics.stationarity(frames[:, i], ARCH_EVERY, tail_steps=ARCH_TAIL)
        perlin.append(
            {
                "seed": seed,
                "first_step_out_of_range": first_bad[i],
                "phi_min": float(frames[-1, i].min()),
                "phi_max": float(frames[-1, i].max()),
                "rms_change_last_10000_steps": st["rms_change"],
                "rms_change_last_10000_steps_up_to_translation": st["rms_change_up_to_translation"],
                "translation": st["translation"],
                "layered_fraction": st["layered_fraction"],
                "interface_velocity_per_1e4_steps": st["interface_velocity"],
                "F_first": float(F[0, i]),
                "F_final": float(F[-1, i]),
                "F_rising_steps": int(np.sum(rise[:, i] > F_RISE_TOL)),
                "F_max_relative_rise": float(np.max(rise[:, i])),
                "F_curve_every_250": F[::ARCH_EVERY, i].tolist(),
            }
        )
    t0 = time.perf_counter()
    layers = [
        {k: v for k, v in probe_layers(runner, axis, variant, ARCH_LAYER_STEPS).items() if k != "drift_curve"}
        for variant in ("mirror", "offset", "unequal")
        for axis in range(3)
    ]
    return {
        "path": str(path),
        "label": architecture_label(meta),
        "param_count": meta.get("param_count"),
        "train": {k: meta.get("train", {}).get(k) for k in ("command", "epoch", "best_val_loss")},
        "perlin": perlin,
        "layers": layers,
        "steps": ARCH_STEPS,
        "layer_steps": ARCH_LAYER_STEPS,
        "seconds_perlin": seconds_perlin,
        "seconds_layers": time.perf_counter() - t0,
    }


def step_costs(paths: list, grids=(16, 32), reps: int = 7, steps: int = 100) -> dict:
    """Seconds per network step (onnxruntime CPU, one thread, batch 1), the models interleaved:
    per model and grid the median and range over ``reps`` repeats of ``steps`` steps."""
    from export.runtime import Rollout

    runners = [Rollout(q, providers="cpu", threads=1) for q in paths]
    out = {}
    for n in grids:
        x = initial.perlin((n,) * 3, frequency=2, seed=5, mean=0.5, amplitude=0.1).astype(np.float32)
        times = [[] for _ in runners]
        for r in runners:
            list(r.rollout(x, 5, every=5))  # warm-up
        for _ in range(reps):
            for j, r in enumerate(runners):
                t0 = time.perf_counter()
                list(r.rollout(x, steps, every=steps))
                times[j].append((time.perf_counter() - t0) / steps)
        out[n] = [{"median": float(np.median(t)), "min": float(np.min(t)), "max": float(np.max(t))} for t in times]
    return out


def exp_architecture(ctx) -> dict:
    """The paper's unconstrained CRNN and the cube-equivariant one side by side (--model, --other)."""
    import concurrent.futures
    import multiprocessing

    if not ctx.other:
        return {"skipped": "no --other model"}
    paths = [ctx.model, ctx.other]
    metas = [ctx.runner(q).metadata for q in paths]
    labels = [architecture_label(m) for m in metas]
    if len(set(labels)) != 2:
        raise SystemExit(f"error: --model and --other are both {labels[0]}: give one of each architecture")
    caches = [ctx.work / f"architecture_{weights_key(m)}.json" for m in metas]
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [None if c.exists() else pool.submit(architecture_rollouts, str(q)) for q, c in zip(paths, caches)]
        heldout = ctx.truth_file("heldout")
        held = (
            {
                lab: evaluate(q, heldout, f"architecture_{lab}", ctx.work, "--split", "all")
                for lab, q in zip(labels, paths)
            }
            if heldout.exists()
            else {}
        )
        runs = []
        for q, c, fut in zip(paths, caches, futures):
            if fut is None:
                runs.append(json.loads(c.read_text()))
                print(f"{q}: rollouts reused from {c}", flush=True)
            else:
                runs.append(fut.result())
                c.write_text(json.dumps(metrics._json(runs[-1])))
            runs[-1]["path"] = str(q)
    costs = step_costs(paths)
    out = {"models": {}}
    for j, (lab, run) in enumerate(zip(labels, runs)):
        ev = held.get(lab)
        if ev:
            sc = ev["ensemble"]["scalars"]
            run["heldout"] = {
                "n_sequences": ev["ensemble"]["n_sequences"],
                "F_rel_error_network_max_per_sequence": sc["free_energy_rel_error_network_max"],
                "F_rel_error_network_of_mean_max": float(
                    np.nanmax(ev["ensemble"]["free_energy_mean_rel_error_network"])
                ),
                "rmse_network_final": sc["rmse_network_final"],
                "rmse_full_final": sc["rmse_full_final"],
                "delta_max": sc["delta_max"],
            }
        run["seconds_per_step"] = {str(n): c[j] for n, c in costs.items()}
        out["models"][lab] = run
    fig = new_figure(figsize=(9, 3.4))
    ax0, ax1 = fig.subplots(1, 2)
    for lab, run in out["models"].items():
        style = "-" if lab == "equivariant" else "--"
        for k, pr in enumerate(run["perlin"]):
            n = np.arange(len(pr["F_curve_every_250"])) * ARCH_EVERY
            ax0.loglog(n[1:], pr["F_curve_every_250"][1:], style, color=f"C{k}", label=f"{lab}" if k == 0 else None)
        drift = [abs(r["drift"]) for r in run["layers"]]
        ax1.semilogy(np.arange(len(drift)), np.maximum(drift, 1e-7), "o" + style, label=lab)
    ax0.set_xlabel("network steps")
    ax0.set_ylabel("F / V (network grid)")
    ax0.set_title(f"3 Perlin ICs, {ARCH_STEPS} steps", fontsize=9)
    ax0.legend(fontsize=8)
    ax1.set_xticks(range(9))
    ax1.set_xticklabels([f"{v[0]}{'xyz'[a]}" for v in ("mirror", "offset", "unequal") for a in range(3)], fontsize=8)
    ax1.axhline(0.1, color="grey", lw=0.8, ls=":")
    ax1.set_ylabel(f"|drift| over {ARCH_LAYER_STEPS} steps (cells)")
    ax1.set_title("flat layers (m: mirror, o: 0.3 cells off, u: 40/60)", fontsize=9)
    ax1.legend(fontsize=8)
    fig.tight_layout()
    FIGURES.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURES / "architecture.png", dpi=110)
    return out


CHECK_STEPS = 100


def check_rollout(runner, grid: int, factor: int, params) -> dict:
    """The fixed short rollout that tests/test_shipped_model.py recomputes: Perlin IC (seed 99),
    100 network steps; every 10 steps F at full resolution (``free_energy``, the prediction
    upsampled: it carries the upsampling floor and rises as sharp blocky interfaces form), F on the
    network grid (``free_energy_network``, spacing factor·dx: the fair one) and the mass."""
    ic = initial.perlin((grid,) * 3, frequency=3, seed=99, mean=0.5, amplitude=0.1).astype(np.float32)
    x0 = metrics.downsample(ic, factor)
    frames = np.stack([x0, *runner.rollout(x0, CHECK_STEPS, every=10)])
    return {
        "steps": CHECK_STEPS,
        "every": 10,
        "free_energy": metrics.free_energy_series(metrics.upsample(frames, factor), params),
        "free_energy_network": metrics.free_energy_series(frames, metrics.network_params(params, factor)),
        "mass": frames.reshape(len(frames), -1).astype(np.float64).mean(axis=1),
    }


def exp_check(ctx) -> dict:
    """A fixed 100-step rollout (F and mass every 10 steps) that the tests recompute."""
    res = check_rollout(ctx.runner(ctx.model), ctx.grid, ctx.factor, params_of(ctx.meta))
    res["mass_drift"] = float(np.max(np.abs(res["mass"] - res["mass"][0])) / res["mass"][0])
    return res


EXPERIMENTS = {
    "check": exp_check,
    "heldout": exp_heldout,
    "large": exp_large,
    "torus": exp_torus,
    "slice": exp_slice,
    "ensemble": exp_ensemble,
    "coarsening": exp_coarsening,
    "long": exp_long,
    "ablation": exp_ablation,
    "cost": exp_cost,
    "architecture": exp_architecture,
}


# -- the report's table ------------------------------------------------------------------------------
def _f(x, fmt=".3g") -> str:
    return "n/a" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:{fmt}}"


def _pm(stats: dict, fmt=".3g", scale=1.0) -> str:
    if not stats or not stats.get("n"):
        return "n/a"
    return f"{_f(stats['mean'] * scale, fmt)} ± {_f(stats['sd'] * scale, fmt)}"


def _scaled(x, scale=100.0):
    return None if x is None else x * scale


def summary_lines() -> list[str]:
    """Markdown tables of the headline numbers of every docs/results/<experiment>.json present."""

    def load(name):
        path = RESULTS / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    out = [
        "| experiment | sequences × frames | RMSE (full grid, mean over frames) | RMSE last frame | δ max | "
        "max F rel. error, full grid (%) | max F rel. error, network grid (%) | α CRNN (network grid) | "
        "α solver (network grid) | "
        "max mass drift |",
        "|" + "---|" * 10,
    ]
    for name in ("heldout", "large", "torus", "slice", "ensemble"):
        res = load(name)
        for label, ev in (res or {}).items():
            if not isinstance(ev, dict) or "ensemble" not in ev:
                continue
            sc = ev["ensemble"]["scalars"]
            fm, fn = sc["free_energy_rel_error_max"], sc.get("free_energy_rel_error_network_max", {})
            out.append(
                f"| {name}{'' if label == 'model' else ' (' + label + ')'} | "
                f"{ev['ensemble']['n_sequences']} × {ev['data']['frames']} | {_pm(sc['rmse_full_mean'])} | "
                f"{_pm(sc['rmse_full_final'])} | {_pm(sc['delta_max'])} | "
                f"{_pm(fm, scale=100)} (worst {_f(100 * fm['max'])}) | "
                f"{_pm(fn, scale=100)} (worst {_f(100 * fn['max']) if fn.get('n') else 'n/a'}) | "
                f"{_pm(sc['alpha_net_pred']) if 'alpha_net_pred' in sc else 'n/a'} | "
                f"{_pm(sc['alpha_net_true']) if 'alpha_net_true' in sc else 'n/a'} | "
                f"{_f(sc['mass_drift_pred_max']['max'], '.2g')} |"
            )
    horizons = (10, 25, 49, 99, 149, 199, 499)
    out += [
        "",
        "Mean over sequences of the F rel. error (full grid / network grid, %) and of the RMSE (full grid) "
        "after k network steps (training sequences: 49 steps):",
        "",
        "| experiment | " + " | ".join(f"k = {k}" for k in horizons) + " |",
        "|---|" + "---|" * len(horizons),
    ]
    for name in ("heldout", "large", "torus", "slice", "ensemble"):
        ev = (load(name) or {}).get("model")
        if not ev:
            continue
        c = ev["ensemble"]["curves"]
        cells = []
        for k in horizons:
            if k >= len(c["rmse_full"]["mean"]):
                cells.append("")
                continue
            fn = c.get("free_energy_rel_error_network", {}).get("mean", [None] * (k + 1))[k]
            cells.append(
                f"{_f(_scaled(c['free_energy_rel_error']['mean'][k]))} / {_f(_scaled(fn))} / "
                f"{_f(c['rmse_full']['mean'][k], '.2g')}"
            )
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    out += [
        "",
        "Error of the ensemble-mean F on the network grid, |⟨F_CRNN⟩ − ⟨F_solver⟩| / ⟨F_solver⟩ "
        "(mean over the sequences, then the error):",
        "",
    ]
    for name in ("heldout", "large", "torus", "slice", "ensemble"):
        ev = (load(name) or {}).get("model")
        if not ev:
            continue
        err = np.asarray(ev["ensemble"]["free_energy_mean_rel_error_network"], dtype=float)
        k = int(np.nanargmax(err))
        out.append(
            f"- {name}: max {_f(100 * err[k])} % at step {k}; at the last step ({len(err) - 1}) {_f(100 * err[-1])} %"
        )
    ens = load("ensemble") or {}
    if "power_law_of_mean_network_grid" in ens:
        lo, hi = ens["fit_window"]
        fits = ens["power_law_of_mean_network_grid"]
        out += [
            "",
            f"Power law F = A t^α of the ensemble-mean F on the network grid, t ∈ [{lo:g}, {hi:g}]: "
            + ", ".join(f"{k} α = {_f(v['alpha'])} (R² {_f(v['r2'])})" for k, v in fits.items()),
        ]
    coarse = load("coarsening")
    if coarse:
        lo, hi = coarse["fit_window"]
        ex = coarse["exponents"]
        out += [
            "",
            f"| coarsening: {coarse['sequences']} ICs × {coarse['frames']} frames, {coarse['box']}³ box "
            f"(network {coarse['network_grid']}³), fit t ∈ [{lo:.4g}, {hi:.4g}] | network | solver |",
            "|---|---|---|",
            f"| F ~ t^α of the mean F (network grid) | α = {_f(ex['F_net_pred']['exponent'])} "
            f"(R² {_f(ex['F_net_pred']['r2'])}) | α = {_f(ex['F_net_true']['exponent'])} "
            f"(R² {_f(ex['F_net_true']['r2'])}) |",
            f"| L ~ t^β of the mean L = 2π/⟨k⟩ | β = {_f(ex['L_pred']['exponent'])} "
            f"(R² {_f(ex['L_pred']['r2'])}) | β = {_f(ex['L_true']['exponent'])} "
            f"(R² {_f(ex['L_true']['r2'])}) |",
            f"| mean L at the last frame | {_f(coarse['L_final']['network'])} | {_f(coarse['L_final']['solver'])} |",
            f"| max F rel. error (network grid), worst IC | {_f(100 * coarse['F_net_rel_error_max']['worst'])} % | |",
            f"| max L rel. error, worst IC | {_f(100 * coarse['L_rel_error_max']['worst'])} % | |",
            f"\nground truth: {coarse['solver']}, {coarse['solver_steps_per_frame']} step(s) per frame",
        ]
    long = load("long")
    if long:
        n, s_ = long["network"], long["solver"]
        out += [
            "",
            "| long rollout | network | solver |",
            "|---|---|---|",
            f"| steps / time | {long['network_steps']} / {_f(long['time'], '.4g')} | same time |",
            f"| F at the end (full grid; the network's upsampled) | {_f(long['F_network_final'], '.4g')} | "
            f"{_f(long['F_solver_final'], '.4g')} |",
            f"| max F rel. error over the run (full grid) | {_f(100 * long['F_rel_error_max'])} % | |",
        ]
        if "F_net_network_final" in long:  # recorded since 2026-12-02
            out += [
                f"| F at the end on the network grid | {_f(long['F_net_network_final'], '.4g')} | "
                f"{_f(long['F_net_solver_final'], '.4g')} |",
                f"| F rel. error on the network grid: max over the run / at the end | "
                f"{_f(100 * long['F_net_rel_error_max'])} % / {_f(100 * long['F_net_rel_error_final'])} % | |",
            ]
        out += [
            f"| rms change over the last 10⁴ steps | {_f(n['rms_change_last_10000_steps'], '.2g')} | "
            f"{_f(s_['rms_change_last_10000_steps'], '.2g')} |",
            f"| the same after the best periodic translation | "
            f"{_f(n.get('rms_change_last_10000_steps_up_to_translation'), '.2g')} | "
            f"{_f(s_.get('rms_change_last_10000_steps_up_to_translation'), '.2g')} |",
            f"| layered fraction at the end (1 = flat layers) | {_f(n['layered_fraction'])} | "
            f"{_f(s_['layered_fraction'])} |",
            f"| interface velocity over the last 10⁴ steps (dx per 10⁴ steps) | "
            f"{_f(n.get('interface_velocity_last_10000_steps'), '.2g')} | "
            f"{_f(s_.get('interface_velocity_last_10000_steps'), '.2g')} |",
            f"| layer drift along the layer normal (dx per 10⁴ steps) | "
            f"{_f(n.get('layer_drift_per_1e4_steps'), '.2g')} | {_f(s_.get('layer_drift_per_1e4_steps'), '.2g')} |",
            f"| φ range at the end | {_f(n['phi_min'])} … {_f(n['phi_max'])} | "
            f"{_f(s_['phi_min'])} … {_f(s_['phi_max'])} |",
            f"| max mass drift | {_f(long['mass_drift_network'], '.2g')} | |",
            f"| first step with φ outside [−0.5, 1.5] | {long.get('first_step_out_of_range') or 'never'} | |",
        ]
    abl = load("ablation")
    if abl and "conservative" in abl:
        out += [
            "",
            f"| ablation: max mass drift over {abl['steps']} steps | conservative | non-conservative |",
            "|---|---|---|",
            f"| 3 Perlin ICs | {_f(abl['conservative']['mass_drift_max'], '.2g')} | "
            f"{_f(abl['non_conservative']['mass_drift_max'], '.2g')} |",
        ]
    cost = load("cost")
    if cost:
        spec = cost.get("spectral")
        out += [
            "",
            "| network grid | seconds per step (onnxruntime CPU) | ns per voxel | solver grid | "
            "explicit solver seconds per frame | speed-up vs explicit | spectral solver seconds per frame | "
            "speed-up vs spectral |",
            "|---|---|---|---|---|---|---|---|",
        ]
        out += [
            f"| {r['network_grid']}³ | {_f(r['seconds_per_step'])} | {_f(r['ns_per_voxel'])} | "
            f"{r['solver_grid']}³ | {_f(r['solver_seconds_per_frame'])} | {_f(r['speedup'])}× | "
            f"{_f(r.get('spectral_seconds_per_frame'))} | {_f(r.get('speedup_vs_spectral'))}× |"
            for r in cost["rows"]
        ]
        if spec:
            out.append(
                f"\nspectral solver: SBDF2, {spec['steps_per_frame']} step(s) of dt {_f(spec['dt'])} per frame "
                "(F within 0.2 % of the explicit kernel's at this accuracy, benchmarks/RESULTS.md)"
            )
        out.append(f"\nlog-log slope of step time vs voxels: {_f(cost['loglog_slope'])}")
    out += architecture_lines(load("architecture"))
    return out


def architecture_lines(arch: dict | None) -> list[str]:
    """The side-by-side table of the two architectures (experiment ``architecture``)."""
    if not arch or "models" not in arch:
        return []
    labels = [lab for lab in ("unconstrained", "equivariant") if lab in arch["models"]]
    runs = [arch["models"][lab] for lab in labels]

    def row(name, fn):
        return f"| {name} | " + " | ".join(fn(r) for r in runs) + " |"

    def per_ic(key, fmt=".2g"):
        return lambda r: " / ".join(_f(pr[key], fmt) for pr in r["perlin"])

    def layer(variant):
        return lambda r: " / ".join(_f(x["drift"], "+.2g") for x in r["layers"] if x["variant"] == variant)

    def held(key, scale=100.0):
        return lambda r: (
            _pm(r["heldout"][key], scale=scale) + f" (worst {_f(scale * r['heldout'][key]['max'])})"
            if "heldout" in r
            else "n/a"
        )

    steps, lsteps = runs[0]["steps"], runs[0]["layer_steps"]
    out = [
        "",
        "| architecture | " + " | ".join(labels) + " |",
        "|---|" + "---|" * len(labels),
        row("parameters", lambda r: str(r["param_count"])),
        row(
            "training (epoch of the checkpoint, validation MSE)",
            lambda r: f"epoch {r['train']['epoch']}, {_f(r['train']['best_val_loss'])}",
        ),
        row(
            "held-out: max F rel. error on the network grid per sequence (%)",
            held("F_rel_error_network_max_per_sequence"),
        ),
        row(
            "held-out: max rel. error of the ensemble-mean F, network grid (%)",
            lambda r: _f(100 * r["heldout"]["F_rel_error_network_of_mean_max"]) if "heldout" in r else "n/a",
        ),
        row("held-out: RMSE at the last frame, network grid", held("rmse_network_final", 1.0)),
        row("held-out: δ max (cells)", held("delta_max", 1.0)),
        row(
            f"3 Perlin ICs: first step outside [−0.5, 1.5] in {steps}",
            lambda r: " / ".join(str(pr["first_step_out_of_range"] or "never") for pr in r["perlin"]),
        ),
        row("rms change over the last 10⁴ steps", per_ic("rms_change_last_10000_steps")),
        row("the same after the best periodic translation", per_ic("rms_change_last_10000_steps_up_to_translation")),
        row("layered fraction at the end", per_ic("layered_fraction", ".3f")),
        row("interface velocity, last 10⁴ steps (cells per 10⁴ steps)", per_ic("interface_velocity_per_1e4_steps")),
        row(f"steps where F rises (of {steps}, rise > {F_RISE_TOL:g} F)", per_ic("F_rising_steps", "d")),
        row("largest step-to-step rise of F (relative)", per_ic("F_max_relative_rise")),
        row(f"flat layer on a mirror plane: drift in {lsteps} steps, normal x / y / z (cells)", layer("mirror")),
        row(f"flat layer 0.3 cells off: drift in {lsteps} steps (cells)", layer("offset")),
        row(f"unequal layers 40/60: drift in {lsteps} steps (cells)", layer("unequal")),
    ]
    for n in runs[0]["seconds_per_step"]:
        out.append(
            row(
                f"ms per step at {n}³ (onnxruntime CPU, 1 thread; median [range])",
                lambda r, n=n: (
                    f"{1e3 * r['seconds_per_step'][n]['median']:.3g} "
                    f"[{1e3 * r['seconds_per_step'][n]['min']:.3g}–{1e3 * r['seconds_per_step'][n]['max']:.3g}]"
                ),
            )
        )
    return out


def write_summary() -> Path:
    """docs/results/summary.md: the tables of the report, from the JSON files present."""
    path = RESULTS / "summary.md"
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text("<!-- written by python docs/reproduce.py; do not edit -->\n" + "\n".join(summary_lines()) + "\n")
    return path


class Context:
    """What every experiment shares: the model (its ONNX metadata: physics, grid, downscale), the
    other models, the work folder and which experiments take the spectral ground truth."""

    def __init__(
        self,
        model: Path,
        ablation: Path | None,
        work: Path,
        other: Path | None = None,
        spectral: tuple = (),
        ensemble: int = 100,
    ):
        from export.runtime import Rollout

        self._Rollout = Rollout
        self.model, self.ablation, self.work, self.other = model, ablation, work, other
        self.spectral = frozenset(spectral)
        self.ensemble = ensemble
        r = Rollout(model, providers="cpu")
        self.meta = r.metadata
        self.factor = r.factor
        self.grid = int(self.meta["train_grid"])

    def runner(self, path, threads=None):
        return self._Rollout(path, providers="cpu", threads=threads)

    def explicit(self) -> tuple[ch_numba.CHParams, int]:
        """(physics, steps per frame) of the explicit scheme over one network step: the training
        data's, or (a model last trained on spectral data) :func:`explicit_frame` over its time per step."""
        p = params_of(self.meta)
        if p.scheme == "explicit":
            return p, int(self.meta["steps_per_frame"])
        return explicit_frame(p, float(self.meta["time_per_step"]))

    def truth(self, name: str) -> tuple[ch_numba.CHParams, int]:
        """(physics, solver steps per frame) of experiment ``name``'s ground truth: the explicit
        scheme (:meth:`explicit`), or with ``--spectral-truth`` the spectral one — the training
        data's if that was spectral, else SBDF2 at matched accuracy (:func:`spectral_frame`, the
        stencil symbol: the same semi-discrete system)."""
        p = params_of(self.meta)
        if name not in self.spectral:
            return self.explicit()
        if p.scheme == "spectral":
            return p, int(self.meta["steps_per_frame"])
        return spectral_frame(p, float(self.meta["time_per_step"]))

    def truth_args(self, name: str) -> list:
        """The ``generate``/``simulate`` options of experiment ``name``'s ground truth."""
        q, spf = self.truth(name)
        return [*cli_physics_args(q), "--steps-per-frame", spf, "--backend", "cpu"]

    def truth_file(self, name: str, stem: str | None = None, suffix: str = ".h5") -> Path:
        """The cached ground truth of experiment ``name`` in the work folder (one file per scheme)."""
        return self.work / f"{stem or name}{'_spectral' if name in self.spectral else ''}{suffix}"


def experiment_list(ap: argparse.ArgumentParser, text: str, option: str) -> list[str]:
    """The experiment names of a comma-separated option; an unknown name is a usage error."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = sorted(set(names) - set(EXPERIMENTS))
    if unknown:
        ap.error(f"{option}: unknown experiment(s) {', '.join(unknown)}; choose from {', '.join(EXPERIMENTS)}")
    return names


def main(argv=None) -> int:
    epilog = "experiments:\n" + "\n".join(f"  {k:9s} {f.__doc__.splitlines()[0]}" for k, f in EXPERIMENTS.items())
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--model",
        type=Path,
        default=ROOT / "models" / "crnn.onnx",
        help="the exported model (.onnx) the report is about (default: %(default)s)",
    )
    ap.add_argument(
        "--ablation",
        type=Path,
        default=ROOT / "models" / "crnn_ablation.onnx",
        help="the non-conservative model for `heldout` and `ablation`; skipped if the file is "
        "missing (default: %(default)s)",
    )
    ap.add_argument(
        "--other",
        type=Path,
        default=ROOT / "models" / "crnn_paper.onnx",
        help="the other architecture, for `architecture` (default: %(default)s)",
    )
    ap.add_argument(
        "--work",
        type=Path,
        default=Path("/tmp/ch3d-reproduce"),
        help="folder for the intermediate data (HDF5 ground truth, evaluations; a few GB at most), "
        "reused when present; with --scale NAME its subfolder NAME (default: %(default)s)",
    )
    ap.add_argument(
        "--only",
        default=",".join(EXPERIMENTS),
        help="comma-separated experiments to run, e.g. heldout,long (default: all; --list names them)",
    )
    ap.add_argument(
        "--scale",
        default=None,
        metavar="NAME",
        help="write to docs/results/NAME/ and docs/figures/NAME/ instead of docs/results/ and "
        "docs/figures/: one report section per scale, e.g. --scale paper --model models/crnn64.onnx",
    )
    ap.add_argument(
        "--spectral-truth",
        default="",
        metavar="EXPERIMENTS",
        help="comma-separated experiments whose ground truth is the spectral scheme (SBDF2 at matched "
        "accuracy, F within 0.2 %% of the explicit kernel's) instead of the training data's scheme; "
        "for the paper scale, where 3,000 explicit steps per frame make long runs cost hours "
        "(default: none)",
    )
    ap.add_argument(
        "--ensemble",
        type=int,
        default=100,
        metavar="N",
        help="sequences of the `ensemble` experiment (default: %(default)s; 200 frames each, float32: "
        "100 take 1.3 GB at a 32³ grid, 21 GB at 64³)",
    )
    ap.add_argument("--list", action="store_true", help="list the experiments (this help) and exit")
    a = ap.parse_args(argv)
    if a.scale is not None:
        if not a.scale or "/" in a.scale or a.scale.startswith("."):
            ap.error(f"--scale must be a plain folder name, got {a.scale!r}")
        global FIGURES, RESULTS
        FIGURES, RESULTS = FIGURES / a.scale, RESULTS / a.scale
    if a.list:
        ap.print_help()
        return 0
    FIGURES.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    names = experiment_list(ap, a.only, "--only")
    spectral = experiment_list(ap, a.spectral_truth, "--spectral-truth")
    if a.ensemble < 2:
        ap.error(f"--ensemble must be at least 2, got {a.ensemble}")
    work = a.work / a.scale if a.scale else a.work  # one cache per scale: same file names, other physics
    work.mkdir(parents=True, exist_ok=True)
    ctx = Context(
        a.model,
        a.ablation if a.ablation.exists() else None,
        work,
        a.other if a.other.exists() else None,
        spectral=spectral,
        ensemble=a.ensemble,
    )
    for name in names:
        t0 = time.perf_counter()
        print(f"== {name}: {EXPERIMENTS[name].__doc__.splitlines()[0]}", flush=True)
        try:
            res = EXPERIMENTS[name](ctx)
        except subprocess.CalledProcessError as exc:
            print(f"error: {name}: command failed with status {exc.returncode}", file=sys.stderr)
            return 1
        res["seconds"] = time.perf_counter() - t0
        save_json(name, res)
        print(f"== {name} done in {res['seconds']:.0f} s -> {RESULTS / (name + '.json')}", flush=True)
    print(f"tables: {write_summary()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
