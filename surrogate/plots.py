"""PNG plots of an evaluation (matplotlib Figures on the Agg canvas, no pyplot; numpy only, no torch).

Input is the dict of :func:`surrogate.evaluate.evaluate` (per-frame arrays (T,) per sequence and
ensemble mean/sd curves); t on the x axes is the time since frame 0 (frames aligned by index),
except the log-log panel of the free energy, which uses the time since the initial condition
(the axis of the power-law fit). Times are in the equation's units (``ch_numba.render.TIME_UNIT``).
Bands are mean ± one sample standard deviation over sequences.

The log-log panel keeps frame 0 (t = 0 when a sequence has no burn-in) on a symmetric-log time axis
(:func:`ch_numba.render.log_time_axis`); its limits fit the data, and the t^(−1/3) guide is the
least-squares line of slope −1/3 through the ground truth's points in the fit window (all positive
times without one), drawn over that window only, so it never stretches the axes.

    overview.png           the first look: F(t) of truth and model on the network grid (the fair
                           comparison: both sampled every f-th voxel), and the relative F error there
                           against the full-grid error, which includes the upsampling's error
    rmse.png               RMSE(t), full and network grid
    delta.png              interface displacement δ(t)
    free_energy.png        F(t) truth vs model; log-log F vs t since the IC with the fits and t^(−1/3)
    free_energy_error.png  |F_pred − F_true| / F_true per sequence, mean ± sd, ensemble-mean error
    mass.png               relative mass drift |⟨φ_t⟩ − ⟨φ_0⟩| / ⟨φ_0⟩, model and truth
    slices.png             central z-slices of truth, model and their difference, first sequence
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot_all", "slice_frames", "PLOT_NAMES"]

#: the files :func:`plot_all` writes, in its order
PLOT_NAMES = (
    "overview.png",
    "rmse.png",
    "delta.png",
    "free_energy.png",
    "free_energy_error.png",
    "mass.png",
    "slices.png",
)

TRUTH, MODEL = "black", "tab:red"
DPI = 110


def _figure(figsize):
    """A Figure on the Agg canvas with constrained layout (:func:`ch_numba.render.new_figure`: no pyplot,
    the caller's matplotlib backend untouched)."""
    from ch_numba.render import new_figure

    return new_figure(figsize=figsize, layout="constrained")


def _time_label(since: str) -> str:
    from ch_numba.render import TIME_UNIT

    return f"t since {since} ({TIME_UNIT})"


def _arr(x) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in x] if isinstance(x, list) else x, dtype=np.float64)


def _band(ax, t, curve: dict, color: str, label: str, scale: float = 1.0) -> None:
    mean, sd = _arr(curve["mean"]) * scale, _arr(curve["sd"]) * scale
    ax.plot(t, mean, color=color, label=label)
    ax.fill_between(t, mean - sd, mean + sd, color=color, alpha=0.2, linewidth=0)


def _save(fig, path: Path) -> Path:
    from ch_numba.render import save_png  # atomic (ch_numba.files)

    return save_png(fig, path, dpi=DPI)


def _title(result: dict, what: str) -> str:
    n = result["ensemble"]["n_sequences"]
    return f"{what} ({n} sequence{'s' if n != 1 else ''}, mean ± sd)"


def plot_overview(result: dict, path: Path) -> Path:
    return _save(overview_figure(result), path)


def overview_figure(result: dict):
    """The Figure of overview.png: F on the network grid, truth vs model (mean ± sd), and the
    relative F error on the network grid (per sequence, mean, worst) beside the full-grid error
    (mean), which includes the error of upsampling by repetition (already at frame 0, growing as
    the interfaces sharpen)."""
    t, e = _arr(result["times"]), result["ensemble"]
    c = e["curves"]
    f = result["model"]["downscale"]
    fig = _figure((10, 3.9))
    ax, er = fig.subplots(1, 2)
    _band(ax, t, c["free_energy_net_true"], TRUTH, f"ground truth, sampled every {f} voxels")
    _band(ax, t, c["free_energy_net_pred"], MODEL, "model")
    ax.set_xlabel(_time_label("frame 0"))
    ax.set_ylabel(f"F / V on the network grid (spacing {f} dx)")
    ax.set_title(_title(result, "Free energy where the model lives"), fontsize=10)
    ax.legend(fontsize=8)
    per_seq = np.array([_arr(r["free_energy_rel_error_network"]) for r in result["sequences"]]) * 100
    for row in per_seq:
        er.plot(t, row, color="tab:green", lw=0.5, alpha=0.35)
    worst = float(np.nanmax(per_seq)) if np.isfinite(per_seq).any() else float("nan")
    er.plot(t, np.nanmean(per_seq, axis=0), color="tab:green", label=f"network grid, mean (worst {worst:.1f} %)")
    full = _arr(c["free_energy_rel_error"]["mean"]) * 100
    er.plot(
        t,
        full,
        color="tab:gray",
        ls="--",
        label=f"full grid, prediction upsampled\n(upsampling floor {full[0]:.1f} % at frame 0)",
    )
    er.set_xlabel(_time_label("frame 0"))
    er.set_ylabel("|F_pred − F_true| / F_true  (%)")
    er.set_title("Relative free-energy error: network grid vs full grid", fontsize=10)
    er.set_ylim(bottom=0)
    er.legend(fontsize=8, loc="upper left")  # both errors start at ~0 and grow: the corner stays free
    return fig


def plot_rmse(result: dict, path: Path) -> Path:
    t, c = _arr(result["times"]), result["ensemble"]["curves"]
    fig = _figure((5.5, 3.8))
    ax = fig.subplots()
    _band(ax, t, c["rmse_full"], MODEL, "full grid (upsampled prediction)")
    _band(ax, t, c["rmse_network"], "tab:blue", "network grid (downsampled truth)")
    ax.set_xlabel(_time_label("frame 0"))
    ax.set_ylabel("RMSE of φ")
    ax.set_title(_title(result, "RMSE"), fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_delta(result: dict, path: Path) -> Path:
    t, c = _arr(result["times"]), result["ensemble"]["curves"]
    fig = _figure((5.5, 3.8))
    ax = fig.subplots()
    _band(ax, t, c["delta"], MODEL, "δ = sqrt(Σ(φ̂ − φ)² / Σ|∇φ|²)")
    ax.set_xlabel(_time_label("frame 0"))
    ax.set_ylabel(f"interface displacement δ (dx = {result['data']['physics']['dx']:g})")
    ax.set_title(_title(result, "Interface displacement"), fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _alpha_text(stats: dict) -> str:
    if not stats.get("n"):
        return "no fit"
    return f"α = {stats['mean']:.3f} ± {stats['sd']:.3f}"


def _draw_fits(ax, sequences: list[dict], w_lo: float, w_hi: float) -> None:
    """Each sequence's fitted F = A t^α (``power_law_true``/``power_law_pred`` of its record, where
    evaluate fitted one) as a thin solid line over the part of the fit window [w_lo, w_hi] its times cover;
    the axes keep the data's limits."""
    for who, color, label in (("true", TRUTH, "fits A t^α, truth"), ("pred", MODEL, "fits A t^α, model")):
        for rec in sequences:
            fit = rec.get(f"power_law_{who}")
            tic = _arr(rec["times_since_ic"])
            inside = tic[(tic >= w_lo) & (tic <= w_hi) & (tic > 0)]
            if not fit or inside.size < 2:
                continue
            tt = np.geomspace(inside.min(), inside.max(), 20)
            ax.plot(
                tt, fit["prefactor"] * tt ** fit["alpha"], color=color, lw=1.2, label=label, scalex=False, scaley=False
            )
            label = None  # one legend entry per kind


def free_energy_figure(result: dict):
    """The Figure of free_energy.png: F(t) truth vs model (mean ± sd) since frame 0, and log-log F vs the
    time since the IC per sequence with the fitted lines A t^α and exponents, the fit window and a t^(−1/3)
    guide."""
    from ch_numba.render import log_time_axis, log_value_axis

    t, e = _arr(result["times"]), result["ensemble"]
    c, s = e["curves"], e["scalars"]
    fig = _figure((10, 3.9))
    ax, lg = fig.subplots(1, 2)
    _band(ax, t, c["free_energy_true"], TRUTH, "ground truth")
    _band(ax, t, c["free_energy_pred"], MODEL, "model")
    ax.set_xlabel(_time_label("frame 0"))
    ax.set_ylabel("F / V")
    ax.set_title(_title(result, "Free energy"), fontsize=10)
    ax.legend(fontsize=8)
    # log-log: each sequence against its time since the IC (frame 0 included), the fits' exponents, a guide
    times, truths, preds = [], [], []
    for k, rec in enumerate(result["sequences"]):
        tic, true, pred = _arr(rec["times_since_ic"]), _arr(rec["free_energy_true"]), _arr(rec["free_energy_pred"])
        lg.plot(
            tic,
            true,
            color=TRUTH,
            lw=0.8,
            alpha=0.5,
            label=f"ground truth, {_alpha_text(s['alpha_true'])}" if k == 0 else None,
        )
        lg.plot(
            tic,
            pred,
            color=MODEL,
            lw=0.8,
            alpha=0.5,
            ls="--",
            label=f"model, {_alpha_text(s['alpha_pred'])}" if k == 0 else None,
        )
        times.append(tic)
        truths.append(true)
        preds.append(pred)
    all_t, all_true = np.concatenate(times), np.concatenate(truths)
    xlim = log_time_axis(lg, all_t)
    log_value_axis(lg, np.concatenate([all_true, np.concatenate(preds)]))
    positive = all_t[np.isfinite(all_t) & (all_t > 0)]
    lo, hi = result["config"]["fit_range"]
    if xlim is not None:
        w_lo = lo if lo is not None else float(positive.min())
        w_hi = hi if hi is not None else float(positive.max())
        if lo is not None or hi is not None:
            lg.axvspan(w_lo, w_hi, color="tab:green", alpha=0.08, label="fit window")
        _draw_fits(lg, result["sequences"], w_lo, w_hi)
        pts = (all_t >= w_lo) & (all_t <= w_hi) & (all_t > 0) & np.isfinite(all_true) & (all_true > 0)
        if pts.any():  # log F = b − (1/3) log t, b fitted to the truth's points in the window
            b = float(np.mean(np.log(all_true[pts]) + np.log(all_t[pts]) / 3))
            tt = np.geomspace(all_t[pts].min(), all_t[pts].max(), 50)
            lg.plot(
                tt, np.exp(b) * tt ** (-1 / 3), color="tab:gray", ls=":", label="∝ t^(−1/3)", scalex=False, scaley=False
            )
    lg.set_xlabel(_time_label("the initial condition"))
    lg.set_ylabel("F / V")
    lg.set_title("Coarsening: power-law fits F = A t^α", fontsize=10)
    lg.legend(fontsize=7)
    return fig


def plot_free_energy(result: dict, path: Path) -> Path:
    return _save(free_energy_figure(result), path)


def plot_free_energy_error(result: dict, path: Path) -> Path:
    t, e = _arr(result["times"]), result["ensemble"]
    fig = _figure((5.5, 3.8))
    ax = fig.subplots()
    for rec in result["sequences"]:
        ax.plot(t, 100 * _arr(rec["free_energy_rel_error"]), color="tab:gray", lw=0.5, alpha=0.4)
    _band(ax, t, e["curves"]["free_energy_rel_error"], MODEL, "per sequence, mean ± sd", scale=100)
    ax.plot(t, 100 * _arr(e["free_energy_mean_rel_error"]), color="tab:blue", ls="--", label="of the ensemble mean F")
    net = e["curves"].get("free_energy_rel_error_network")
    if net is not None:
        ax.plot(t, 100 * _arr(net["mean"]), color="tab:green", ls="-.", label="on the network grid, mean")
    ax.set_xlabel(_time_label("frame 0"))
    ax.set_ylabel("|F_pred − F_true| / F_true  (%)")
    ax.set_title(_title(result, "Free-energy error"), fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_mass(result: dict, path: Path) -> Path:
    t, c = _arr(result["times"]), result["ensemble"]["curves"]
    floor = 1e-12  # exact conservation: drawn at the floor of the log axis
    fig = _figure((5.5, 3.8))
    ax = fig.subplots()
    for name, color, label in (("mass_drift_pred", MODEL, "model"), ("mass_drift_true", TRUTH, "ground truth")):
        per_seq = np.array([_arr(r[name]) for r in result["sequences"]])
        ax.plot(t[1:], np.maximum(_arr(c[name]["mean"])[1:], floor), color=color, label=f"{label}, mean")
        ax.plot(t[1:], np.maximum(np.nanmax(per_seq, axis=0)[1:], floor), color=color, ls=":", label=f"{label}, max")
    ax.set_yscale("log")
    ax.set_xlabel(_time_label("frame 0"))
    ax.set_ylabel("|⟨φ_t⟩ − ⟨φ_0⟩| / ⟨φ_0⟩")
    ax.set_title(f"Mass drift ({result['ensemble']['n_sequences']} sequences; floor {floor:g})", fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, path)


def slice_frames(n_frames: int, count: int = 4) -> list[int]:
    """``count`` frame indices spread evenly over 0 .. n_frames − 1 (first and last included)."""
    return sorted({int(round(k)) for k in np.linspace(0, n_frames - 1, min(count, n_frames))})


def plot_slices(truth, pred, times, path: Path, title: str = "") -> Path:
    """Central z-slices of truth and prediction (both (T, X, Y, Z), same grid) and their difference
    at ~4 frames spread over the sequence."""
    truth, pred, times = np.asarray(truth), np.asarray(pred), np.asarray(times)
    ks = slice_frames(truth.shape[0])
    z = truth.shape[3] // 2
    diff = pred[ks, :, :, z].astype(np.float64) - truth[ks, :, :, z]
    lim = float(np.nanmax(np.abs(diff))) if np.any(np.isfinite(diff)) else 1.0
    lim = lim if lim > 0 else 1.0
    fig = _figure((2.3 * len(ks) + 1.0, 7.0))
    axes = fig.subplots(3, len(ks), squeeze=False)
    for j, k in enumerate(ks):
        rows = (
            (truth[k, :, :, z], "RdBu_r", 0.0, 1.0),
            (pred[k, :, :, z], "RdBu_r", 0.0, 1.0),
            (diff[j], "PuOr", -lim, lim),
        )
        for i, (img, cmap, lo, hi) in enumerate(rows):
            im = axes[i, j].imshow(
                np.asarray(img).T, origin="lower", cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest"
            )
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
            if i == 0:
                axes[i, j].set_title(f"frame {k}, t = {times[k]:g}", fontsize=9)
            if j == len(ks) - 1:
                fig.colorbar(im, ax=axes[i, :].tolist(), shrink=0.85, label="φ" if i < 2 else "model − truth")
    for i, name in enumerate(("ground truth", "model", "difference")):
        axes[i, 0].set_ylabel(name)
    fig.suptitle(title or f"central z-slice (z = {z})", fontsize=10)
    return _save(fig, path)


def plot_all(result: dict, out, truth, pred) -> list[Path]:
    """All seven plots into the folder ``out``; truth and pred are the first sequence's frames
    (T, X, Y, Z) on the ground-truth grid (prediction upsampled). Returns the paths."""
    out = Path(out)
    first = result["sequences"][0]
    title = (
        f"sequence {first['index']} ({first['split']}): central z-slice, model upsampled "
        f"×{result['model']['downscale']}"
    )
    overview, rmse, delta, energy, energy_error, mass, slices = (out / name for name in PLOT_NAMES)
    return [
        plot_overview(result, overview),
        plot_rmse(result, rmse),
        plot_delta(result, delta),
        plot_free_energy(result, energy),
        plot_free_energy_error(result, energy_error),
        plot_mass(result, mass),
        plot_slices(truth, pred, result["times"], slices, title=title),
    ]
