"""Experiments where the solver and the network run side by side in this process, far beyond the
training length: the long rollout (one Perlin IC, 10³x the training sequence, F on both grids and
the stationarity of the final states) and coarsening (an ensemble in a larger box: F ~ t^α,
L ~ t^(1/3), S(k, t)). The solver is ``ch_numba.Stepper`` with the experiment's ground-truth scheme."""

from __future__ import annotations

import time

import numpy as np

import ch_numba
from ch_numba import initial
from ch_numba.render import new_figure  # a Figure on the Agg canvas, no pyplot
from ch_numba.solver import PHYSICAL_RANGE
from export.runtime.resample import downsample, upsample
from surrogate import metrics

from .common import params_of, plot_slices


def exp_long(ctx) -> dict:
    """A rollout 10³x the training sequence (50 000 network steps) vs the solver to the same time.

    Both start from one Perlin IC; F(t) is compared every 100 network steps, the final states
    are tested for stationarity over the last 10 000 steps (:func:`surrogate.metrics.stationarity`:
    rms change, plain and up to a periodic translation, interface velocity and layer drift in
    length units per 10⁴ network steps, with the network's cells f·dx and the solver's dx) and
    layering.
    """
    z = ctx.sizes.long  # network steps, between checks, stationarity tail
    steps, every, tail = z.steps, z.every, min(z.tail, z.steps // 2)
    p = params_of(ctx.meta)
    net_p = metrics.network_params(p, ctx.factor)
    ic = initial.perlin((ctx.grid,) * 3, frequency=3, seed=z.seed, mean=0.5, amplitude=0.1).astype(np.float32)
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
    F_pred = metrics.free_energy_series(upsample(pred, ctx.factor), p)
    F_true = metrics.free_energy_series(truth, p)
    # on the network grid (spacing f·dx): the fair view, free of the upsampling floor
    F_net_pred = metrics.free_energy_series(pred, net_p)
    F_net_true = metrics.free_energy_series(downsample(truth, ctx.factor), net_p)

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
    ctx.figures.mkdir(parents=True, exist_ok=True)
    fig.savefig(ctx.figures / "long_free_energy.png", dpi=110)
    k = [0, len(pred) // 100, len(pred) // 10, len(pred) - 1]
    plot_slices(
        [(f"solver t={t[i]:.0f}", truth[i]) for i in k]
        + [(f"CRNN t={t[i]:.0f}", upsample(pred[i], ctx.factor)) for i in k],
        ctx.figures / "long_slices.png",
    )
    return res


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
    z = ctx.sizes.coarsening
    size, f = z.box * ctx.grid, ctx.factor
    p = params_of(ctx.meta)
    net_params = metrics.network_params(p, f)
    q, q_spf = ctx.truth("coarsening")
    runner = ctx.runner(ctx.model)
    T = z.frames
    snaps = [T // 16, T // 4, T // 2, T - 1]
    curves = {k: [] for k in ("F_net_true", "F_net_pred", "L_true", "L_pred")}
    spectra = {}
    t_net = t_sol = 0.0
    for s in range(z.sequences):
        ic = initial.perlin((size,) * 3, frequency=3, seed=z.seed + s, mean=0.5, amplitude=0.1).astype(np.float32)
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
            f"  IC {s + 1}/{z.sequences}: L {curves['L_true'][-1][-1]:.2f} (solver) "
            f"{curves['L_pred'][-1][-1]:.2f} (network) at the last frame",
            flush=True,
        )
    t = np.arange(T) * runner.time_per_step
    t_min, t_max = t[z.fit_from], t[-1]
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
        f"{z.sequences} ICs in a {size}³ box (network {size // f}³), mean ± sd; fit window shaded",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(ctx.figures / "coarsening.png", dpi=110)
    return {
        "sequences": z.sequences,
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
