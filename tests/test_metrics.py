"""surrogate.metrics against hand computations and analytic cases (numpy only, no torch)."""

import itertools
import json
import subprocess
import sys

import numpy as np
import pytest

import ch_numba
from ch_numba import reference
from surrogate import metrics

DELTA_RTOL = 0.02  # δ of a shifted equilibrium slab vs the shift (first-order theory; FD gradient ≈ +0.7 %)
WIDTH = np.sqrt(2.0) * 3.0  # equilibrium profile ½(1 + tanh(x / w)), w = √2 ε / √W for ε = 3, W = 1


def tanh_slab(shape=(128, 2, 2), d=0.0, w=WIDTH, lo=32.0, hi=96.0):
    """φ ≈ 1 for lo < x < hi, tanh interfaces of width w, shifted by d along x. (X, Y, Z) float64.

    The interfaces are ≥ 7.5 w from the box edge, so the field is periodic to ~1e-6."""
    x = np.arange(shape[0], dtype=np.float64)[:, None, None] - d
    phi = 0.5 * (np.tanh((x - lo) / w) - np.tanh((x - hi) / w))
    return np.broadcast_to(phi, shape).copy()


# -- errors ------------------------------------------------------------------------------------------
def test_rmse_matches_hand_computation():
    rng = np.random.default_rng(0)
    pred = rng.random((3, 2, 3, 4)).astype(np.float32)
    true = rng.random((3, 2, 3, 4)).astype(np.float32)
    want = []
    for t in range(3):
        s = sum(
            (float(pred[t, i, j, k]) - float(true[t, i, j, k])) ** 2
            for i, j, k in itertools.product(range(2), range(3), range(4))
        )
        want.append((s / 24) ** 0.5)
    np.testing.assert_allclose(metrics.rmse(pred, true), want, rtol=1e-12)
    assert metrics.rmse(pred[1], true[1]) == pytest.approx(want[1], rel=1e-12)
    assert metrics.rmse(np.zeros((2, 2, 2)), np.full((2, 2, 2), 0.5)) == pytest.approx(0.5)


@pytest.mark.parametrize("d", [0.1, -0.2, 0.3])
def test_interface_displacement_of_shifted_slab_is_the_shift(d):
    true = tanh_slab()
    pred = tanh_slab(d=d)
    assert metrics.interface_displacement(pred, true) == pytest.approx(abs(d), rel=DELTA_RTOL)
    # in physical units: the same profile on a grid of spacing dx is a displacement of d·dx
    assert metrics.interface_displacement(pred, true, dx=0.5) == pytest.approx(abs(d) * 0.5, rel=DELTA_RTOL)


def test_interface_displacement_series_is_rms_of_displacements():
    true = tanh_slab()
    # one interface moved by d1, the other by d2: δ² is the gradient-weighted mean of d², i.e. (d1² + d2²)/2
    d1, d2 = 0.1, 0.3
    x = np.arange(128.0)[:, None, None]
    pred = np.broadcast_to(0.5 * (np.tanh((x - d1 - 32) / WIDTH) - np.tanh((x - d2 - 96) / WIDTH)), (128, 2, 2))
    frames_true = np.stack([true, true])
    frames_pred = np.stack([true, pred])
    delta = metrics.interface_displacement(frames_pred, frames_true)
    assert delta.shape == (2,) and delta[0] == 0.0
    assert delta[1] == pytest.approx(np.sqrt((d1**2 + d2**2) / 2), rel=DELTA_RTOL)
    assert np.isnan(metrics.interface_displacement(np.ones((4, 4, 4)), np.zeros((4, 4, 4))))


def test_relative_error_and_shape_errors():
    np.testing.assert_allclose(metrics.relative_error([1.1, 1.8], [1.0, 2.0]), [0.1, 0.1], rtol=1e-12)
    assert metrics.relative_error(3.0, 2.0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="same shape"):
        metrics.relative_error([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match=r"pred and true must have the same shape, got \(2, 4, 4, 4\) and \(4, 4, 4\)"):
        metrics.rmse(np.zeros((2, 4, 4, 4)), np.zeros((4, 4, 4)))
    with pytest.raises(ValueError, match=r"expected pred of shape \(T, X, Y, Z\) or \(X, Y, Z\), got \(4, 4\)"):
        metrics.interface_displacement(np.zeros((4, 4)), np.zeros((4, 4)))


# -- free energy and the coarsening law --------------------------------------------------------------
def test_free_energy_series_matches_numpy_reference():
    p = ch_numba.CHParams()
    rng = np.random.default_rng(1)
    frames = rng.random((3, 6, 6, 6))
    F = metrics.free_energy_series(frames, p)
    np.testing.assert_allclose(F, [reference.free_energy(f, p) for f in frames], rtol=1e-12)
    # a flat φ = 0.5 has the bulk energy W/16 and no gradient term
    assert metrics.free_energy_series(np.full((5, 5, 5), 0.5), p)[0] == pytest.approx(1.0 / 16)


def test_power_law_fit_recovers_exponent():
    t = np.linspace(1.0, 200.0, 60)
    alpha, pref, r2 = metrics.fit_power_law(t, 2.5 * t ** (-1.0 / 3.0))
    assert alpha == pytest.approx(-1.0 / 3.0, abs=1e-12) and pref == pytest.approx(2.5, rel=1e-12)
    assert r2 == pytest.approx(1.0, abs=1e-12)
    noisy = 2.5 * t ** (-1.0 / 3.0) * np.exp(np.random.default_rng(2).normal(0.0, 0.01, t.size))
    alpha, pref, r2 = metrics.fit_power_law(t, noisy)
    assert alpha == pytest.approx(-1.0 / 3.0, abs=0.01) and pref == pytest.approx(2.5, rel=0.05)
    assert 0.95 < r2 < 1.0


def test_power_law_fit_window_and_errors():
    t = np.arange(0.0, 101.0)  # t = 0 is left out
    F = np.where(t < 20, 5.0 - 0.1 * t, 3.0 * np.maximum(t, 1) ** -0.5)  # another regime before t = 20
    alpha, pref, r2 = metrics.fit_power_law(t, F, t_min=20)
    assert alpha == pytest.approx(-0.5, abs=1e-12) and pref == pytest.approx(3.0, rel=1e-12)
    assert metrics.fit_power_law(t, F)[2] < 0.99
    with pytest.raises(ValueError, match="at least 3 points"):
        metrics.fit_power_law(t, F, t_min=99.5)
    with pytest.raises(ValueError, match="equal length"):
        metrics.fit_power_law(t, F[:-1])


# -- invariants and stationarity ---------------------------------------------------------------------
def test_mass_drift():
    base = np.random.default_rng(3).random((4, 4, 4))
    base += 0.5 - base.mean()  # mean 0.5
    frames = np.stack([base + c for c in (0.0, 1e-3, -2e-3, 5e-4)])
    assert metrics.mass_drift(frames) == pytest.approx(2e-3 / 0.5, rel=1e-9)
    assert metrics.mass_drift(np.stack([base] * 3)) == 0.0


def test_stationary_index():
    rng = np.random.default_rng(4)
    final, a = rng.random((4, 4, 4)), rng.random((4, 4, 4)) + 0.5
    frames = np.stack([final + a * 2.0**-n for n in range(12)])
    # max|φ_{n+1} − φ_n| = max(a)·2^-(n+1), in (0.5, 1.5)·2^-(n+1): below 2^-7 from n = 7 on, not at n = 5
    n = metrics.stationary_index(frames, tol=2.0**-7)
    change = np.abs(np.diff(frames, axis=0)).max(axis=(1, 2, 3))
    assert n == int(np.flatnonzero(change >= 2.0**-7)[-1]) + 1 and 6 <= n <= 7
    assert np.all(change[n:] < 2.0**-7) and change[n - 1] >= 2.0**-7
    assert metrics.stationary_index(frames, tol=1e-9) is None
    assert metrics.stationary_index(np.stack([final] * 3), tol=1e-12) == 0
    # dips below the tolerance and comes back: only the final quiet stretch counts
    wobble = np.stack([final, final, final + 1.0, final + 1.0, final + 1.0])
    assert metrics.stationary_index(wobble, tol=0.5) == 2


def test_ensemble_stats_matches_hand_computation():
    curves = [[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [2.0, 5.0, 2.0]]
    mean, sd = metrics.ensemble_stats(curves)
    np.testing.assert_allclose(mean, [2.0, 3.0, 2.0])
    np.testing.assert_allclose(sd, [1.0, np.sqrt(3.0), 1.0])  # sample sd: Σ(x − x̄)² / (R − 1)
    np.testing.assert_array_equal(metrics.ensemble_stats([[1.0, 2.0]])[1], [0.0, 0.0])
    with pytest.raises(ValueError, match="equal length"):
        metrics.ensemble_stats([[1.0, 2.0], [1.0]])


# -- resolution --------------------------------------------------------------------------------------
def test_up_and_downsample_are_inverse():
    rng = np.random.default_rng(5)
    a = rng.random((3, 4, 5, 6)).astype(np.float32)
    up = metrics.upsample(a, 2)
    assert up.shape == (3, 8, 10, 12) and up.dtype == np.float32
    assert up[1, 5, 3, 11] == a[1, 2, 1, 5]  # voxel (i, j, k) fills [f·i, f·i + f)
    np.testing.assert_array_equal(metrics.downsample(up, 2), a)
    np.testing.assert_array_equal(metrics.downsample(metrics.upsample(a[0], 3), 3), a[0])
    # downsampling keeps every f-th voxel from 0 (64³ -> 32³ convention); piecewise-constant fields survive
    full = rng.random((8, 8, 8))
    np.testing.assert_array_equal(metrics.downsample(full, 2), full[::2, ::2, ::2])
    np.testing.assert_array_equal(metrics.upsample(metrics.downsample(up, 2), 2), up)
    with pytest.raises(ValueError, match="not divisible"):
        metrics.downsample(np.zeros((5, 4, 4)), 2)
    with pytest.raises(ValueError, match="positive integer"):
        metrics.upsample(a, 0)


# -- the summary -------------------------------------------------------------------------------------
def test_summary_is_json_and_consistent():
    p = ch_numba.CHParams()
    true = np.stack([tanh_slab()] * 4)
    pred = np.stack([tanh_slab(d=s) for s in (0.0, 0.1, 0.2, 0.3)])
    times = np.array([0.0, 0.4, 0.8, 1.2])
    out = metrics.summary(pred, true, p, times)
    json.dumps(out, allow_nan=False)
    np.testing.assert_allclose(out["rmse"], metrics.rmse(pred, true))
    assert out["rmse"][0] == 0.0 and out["delta_final"] == pytest.approx(0.3, rel=DELTA_RTOL)
    assert out["free_energy_rel_error"][0] == 0.0 and out["mass_drift_true"] == 0.0
    assert out["stationary_index_true"] == 0 and out["stationary_index_pred"] is None
    assert out["power_law_true"]["alpha"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match=r"expected times of shape \(4,\)"):
        metrics.summary(pred, true, p, times[:3])


def test_metrics_import_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np, ch_numba\n"
        "from surrogate import metrics\n"
        "a = np.random.default_rng(0).random((2, 4, 4, 4))\n"
        "s = metrics.summary(a, a, ch_numba.CHParams(), np.arange(2.0))\n"
        "assert s['rmse'] == [0.0, 0.0]\n"
        "assert sys.modules['torch'] is None\n"
        "print('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"
