"""Axes of the pictures: ch_numba.render's energy plot and the evaluation's free-energy plot.

Frame 0 (t = 0) stays inside a log time axis (symmetric-log), value axes fit the data (a guide line
does not stretch them) and carry enough plain tick labels, and times are labelled with their unit.
"""

import numpy as np
import pytest

from ch_numba import render

T = np.arange(50) * 0.8  # the shipped model's frames: 0.8 time units apart, frame 0 at t = 0
F = 0.02 + 0.03 * np.exp(-T / 5) + 0.01 * (1 + T) ** (-1 / 3)  # falls by a factor ~2: less than a decade


def labelled_ticks(fig, axis):
    """(value, label) of the major ticks inside the axis's view that carry a label, after drawing."""
    fig.canvas.draw()
    lo, hi = sorted(axis.get_view_interval())
    return [
        (t.get_loc(), t.label1.get_text())
        for t in axis.get_major_ticks()
        if lo <= t.get_loc() <= hi and t.label1.get_visible() and t.label1.get_text()
    ]


def test_energy_plot_keeps_frame_0_and_fits_the_data():
    fig = render.energy_figure(T, F)
    ax = fig.axes[0]
    assert ax.get_xscale() == "symlog" and ax.get_yscale() == "log"
    x0, x1 = ax.get_xlim()
    assert x0 < 0.0 and x1 >= T[-1]  # the point of frame 0 (t = 0) is drawn, the last frame too
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), T)  # every frame plotted
    y0, y1 = ax.get_ylim()
    assert y0 < F.min() and F.max() < y1 and y1 / y0 < 1.2 * F.max() / F.min()
    yticks = labelled_ticks(fig, ax.yaxis)
    assert len(yticks) >= 3 and all(label == f"{v:g}" for v, label in yticks)  # plain numbers
    xticks = dict((label, v) for v, label in labelled_ticks(fig, ax.xaxis))
    assert xticks["0"] == 0.0 and {"1", "10"} <= set(xticks)
    assert render.TIME_UNIT in ax.get_xlabel() and "t since the initial condition" in ax.get_xlabel()


def test_energy_plot_of_a_sequence_after_burn_in_is_log_log():
    fig = render.energy_figure(T + 100.0, F)  # t from 100 to 139: under a decade
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    x0, x1 = ax.get_xlim()
    assert x0 < 100.0 and x1 > T[-1] + 100.0
    assert len(labelled_ticks(fig, ax.xaxis)) >= 3


@pytest.mark.parametrize(
    "lo, hi, want",
    [
        (0.021, 0.06, None),  # under a decade: round numbers, at least 3
        (1e-3, 1.0, [1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]),  # 1-3 decades: 1-2-5
        (1e-6, 1.0, [1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 1.0]),  # more: decades
    ],
)
def test_log_value_axis_ticks(lo, hi, want):
    fig = render.new_figure()
    ax = fig.subplots()
    values = np.geomspace(lo, hi, 20)
    ax.plot(np.arange(20), values)
    y0, y1 = render.log_value_axis(ax, values)
    assert y0 < lo and hi < y1
    ticks = [v for v, _ in labelled_ticks(fig, ax.yaxis)]
    if want is None:
        assert len(ticks) >= 3
    else:
        np.testing.assert_allclose(ticks, want, rtol=1e-12)


def synthetic_result(t0s=(0.0, 0.0, 4.0, 20.0), fit_range=(None, None)):
    """What surrogate.evaluate returns, as much as the free-energy plot reads: F falls by less than 2x over
    the sequences, so a t^(-1/3) guide over the whole time range (t 0.8 to 59) would span a factor 4."""
    seqs, trues, preds = [], [], []
    for i, t0 in enumerate(t0s):
        tic = T + t0
        true = 0.05 * (1 + 0.6 * np.exp(-tic / 3)) * (1 + tic / 40) ** (-1 / 3)
        pred = true * (1 + 0.03 * np.sin(tic / 5 + i))
        trues.append(true)
        preds.append(pred)
        seqs.append(
            {
                "index": i,
                "split": "val",
                "times_since_ic": tic.tolist(),
                "free_energy_true": true.tolist(),
                "free_energy_pred": pred.tolist(),
            }
        )

    def curve(a):
        return {"mean": np.mean(a, 0).tolist(), "sd": np.std(a, 0, ddof=1).tolist()}

    alpha = {"n": len(t0s), "mean": -0.3, "sd": 0.02}
    ensemble = {
        "n_sequences": len(t0s),
        "curves": {"free_energy_true": curve(trues), "free_energy_pred": curve(preds)},
        "scalars": {"alpha_true": alpha, "alpha_pred": alpha},
    }
    return {"times": T.tolist(), "sequences": seqs, "config": {"fit_range": list(fit_range)}, "ensemble": ensemble}


@pytest.mark.parametrize("fit_range", [(None, None), (10.0, None)])
def test_free_energy_plot_guide_does_not_stretch_the_axes(fit_range):
    from surrogate import plots

    result = synthetic_result(fit_range=fit_range)
    fig = plots.free_energy_figure(result)
    lin, lg = fig.axes[:2]
    data = np.concatenate([np.r_[s["free_energy_true"], s["free_energy_pred"]] for s in result["sequences"]])
    y0, y1 = lg.get_ylim()
    assert y0 < data.min() and data.max() < y1  # the data inside ...
    assert y1 / y0 < 1.2 * data.max() / data.min()  # ... and the limits theirs, not the guide's
    x0, x1 = lg.get_xlim()
    assert lg.get_xscale() == "symlog" and x0 < 0.0 and x1 > T[-1] + 20.0  # frame 0 at t = 0 inside
    guide = [line for line in lg.lines if line.get_label() == "∝ t^(−1/3)"]
    assert len(guide) == 1
    gt, gf = (np.asarray(a, float) for a in guide[0].get_data())
    window_lo = fit_range[0] if fit_range[0] is not None else T[1]
    assert gt.min() >= window_lo - 1e-9 and gt.max() <= T[-1] + 20.0 + 1e-9  # over the data's window only
    np.testing.assert_allclose(np.diff(np.log(gf)) / np.diff(np.log(gt)), -1 / 3, rtol=1e-9)
    truth = np.concatenate([s["free_energy_true"] for s in result["sequences"]])
    assert truth.min() < np.exp(np.mean(np.log(gf))) < truth.max()  # through the truth, not beside it
    for ax in (lin, lg):
        assert render.TIME_UNIT in ax.get_xlabel()
    assert len(labelled_ticks(fig, lg.yaxis)) >= 3


def test_free_energy_plot_draws_each_sequences_fitted_power_law_in_the_window():
    from surrogate import metrics, plots

    result = synthetic_result(fit_range=(10.0, None))
    for rec in result["sequences"]:
        for who in ("true", "pred"):
            alpha, prefactor, r2 = metrics.fit_power_law(
                np.asarray(rec["times_since_ic"]), np.asarray(rec[f"free_energy_{who}"]), 10.0, None
            )
            rec[f"power_law_{who}"] = {"alpha": alpha, "prefactor": prefactor, "r2": r2}
    lg = plots.free_energy_figure(result).axes[1]
    fits = [line for line in lg.lines if line.get_color() in (plots.TRUTH, plots.MODEL) and line.get_linestyle() == "-"]
    fits = [line for line in fits if line.get_linewidth() == 1.2]
    assert len(fits) == 2 * len(result["sequences"])  # one per sequence and kind
    assert sorted(line.get_label() for line in fits if not line.get_label().startswith("_")) == [
        "fits A t^α, model",
        "fits A t^α, truth",
    ]
    recs = [(rec, who) for who in ("true", "pred") for rec in result["sequences"]]
    for line, (rec, who) in zip(fits, recs):
        t, f = (np.asarray(a, float) for a in line.get_data())
        fit = rec[f"power_law_{who}"]
        assert t.min() >= 10.0 and t.max() <= max(rec["times_since_ic"]) + 1e-9  # the window, the sequence's times
        np.testing.assert_allclose(f, fit["prefactor"] * t ** fit["alpha"], rtol=1e-12)


def test_overview_shows_the_network_grid_error_first_and_the_full_grid_floor():
    """overview.png: left F on the network grid (truth and model), right the relative F error per
    sequence on the network grid, its mean and worst, beside the full grid's mean with its floor."""
    from surrogate import plots

    rng = np.random.default_rng(0)
    net_true = [0.05 * (1 + T / 40) ** (-1 / 3) for _ in range(3)]
    net_pred = [f * (1 + 0.02 * (i + 1) * np.sin(T / 7) ** 2) for i, f in enumerate(net_true)]
    errors = [np.abs(p - f) / f for p, f in zip(net_pred, net_true)]
    full = 0.08 + 0.01 * rng.random(T.size)  # the upsampling floor: not 0 at frame 0

    def curve(a):
        return {"mean": np.mean(a, 0).tolist(), "sd": np.std(a, 0, ddof=1).tolist()}

    result = {
        "times": T.tolist(),
        "model": {"downscale": 2},
        "sequences": [{"free_energy_rel_error_network": e.tolist()} for e in errors],
        "ensemble": {
            "n_sequences": 3,
            "curves": {
                "free_energy_net_true": curve(net_true),
                "free_energy_net_pred": curve(net_pred),
                "free_energy_rel_error": {"mean": full.tolist(), "sd": [0.0] * T.size},
            },
        },
    }
    fig = plots.overview_figure(result)
    left, right = fig.axes[:2]
    assert "network grid" in left.get_ylabel() and "network grid" in right.get_title()
    np.testing.assert_allclose(left.lines[0].get_ydata(), np.mean(net_true, 0))
    np.testing.assert_allclose(left.lines[1].get_ydata(), np.mean(net_pred, 0))
    lines = {line.get_label(): np.asarray(line.get_ydata(), float) for line in right.lines}
    worst = 100 * max(float(e.max()) for e in errors)
    mean_label = f"network grid, mean (worst {worst:.1f} %)"
    np.testing.assert_allclose(lines[mean_label], 100 * np.mean(errors, 0))
    assert lines[mean_label][0] == 0.0  # no floor on the network grid
    floor_label = f"full grid, prediction upsampled\n(upsampling floor {100 * full[0]:.1f} % at frame 0)"
    np.testing.assert_allclose(lines[floor_label], 100 * full)
    assert render.TIME_UNIT in left.get_xlabel() and render.TIME_UNIT in right.get_xlabel()


def test_slices_name_their_axes_in_grid_cells_with_ticks(tmp_path):
    """Each central slice names its two in-plane axes (grid cells) and has integer ticks."""
    phi = np.random.default_rng(0).random((8, 10, 12))
    fig = render.slices_figure(phi)
    names = [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes[:3]]
    assert names == [
        ("y (grid cells)", "z (grid cells)"),
        ("x (grid cells)", "z (grid cells)"),
        ("x (grid cells)", "y (grid cells)"),
    ]
    for ax in fig.axes[:3]:
        assert len(ax.get_xticks()) >= 2 and len(ax.get_yticks()) >= 2
    assert render.plot_slices(phi, tmp_path / "s.png").stat().st_size > 1000
    assert render.plot_frames(phi[None].repeat(2, 0), [0.0, 1.0], tmp_path / "f.png").exists()


def test_render_energy_title_names_the_grid_of_the_stored_free_energy():
    """A rollout's F is on the network grid (its dx is downscale·dx); a data set's on the solver's grid."""
    from pathlib import Path

    from ch_numba import open_dataset
    from ch_numba.cli import energy_title

    golden = Path(__file__).parent / "golden"
    with open_dataset(golden / "rollout.h5") as ds:
        assert energy_title(ds, 0) == "Free energy, sequence 0, on the network grid 8x8x8 (dx 2)"
    with open_dataset(golden / "rollout_full.h5") as ds:
        assert energy_title(ds, 0) == "Free energy, sequence 0, on the full grid 16x16x16 (dx 1)"
    with open_dataset(golden / "generate.h5") as ds:
        assert energy_title(ds, 2) == "Free energy, sequence 2, on the grid 8x8x8 (dx 1)"
