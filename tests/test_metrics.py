"""surrogate.metrics against hand computations and analytic cases (numpy only, no torch)."""

import itertools
import json

import numpy as np
import pytest
from conftest import run_python

import ch_numba
from ch_numba import reference
from ch_numba.files import json_safe
from export.runtime.resample import downsample, upsample
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


def test_relative_drift_is_the_per_frame_mass_drift():
    # one definition: evaluate's per-frame curves and mass_drift's maximum
    m = np.array([0.5, 0.501, 0.498, 0.5005])
    np.testing.assert_allclose(metrics.relative_drift(m), [0.0, 2e-3, 4e-3, 1e-3], rtol=1e-9, atol=1e-15)
    np.testing.assert_array_equal(metrics.relative_drift([0.0, 1e-3, -2e-3]), [0.0, 1e-3, 2e-3])  # m_0 = 0: absolute
    base = np.random.default_rng(3).random((4, 4, 4))
    frames = np.stack([base + c for c in (0.0, 1e-3, -2e-3, 5e-4)])
    means = frames.reshape(4, -1).astype(np.float64).mean(axis=1)
    assert metrics.mass_drift(frames) == np.max(metrics.relative_drift(means))


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
    # export.runtime.resample's, the one definition, imported from there; metrics keeps deprecated aliases
    assert "upsample" not in metrics.__all__ and "downsample" not in metrics.__all__
    with pytest.warns(DeprecationWarning, match="export.runtime.resample"):
        assert metrics.upsample is upsample and metrics.downsample is downsample
    rng = np.random.default_rng(5)
    a = rng.random((3, 4, 5, 6)).astype(np.float32)
    up = upsample(a, 2)
    assert up.shape == (3, 8, 10, 12) and up.dtype == np.float32
    assert up[1, 5, 3, 11] == a[1, 2, 1, 5]  # voxel (i, j, k) fills [f·i, f·i + f)
    np.testing.assert_array_equal(downsample(up, 2), a)
    np.testing.assert_array_equal(downsample(upsample(a[0], 3), 3), a[0])
    # downsampling keeps every f-th voxel from 0 (64³ -> 32³ convention); piecewise-constant fields survive
    full = rng.random((8, 8, 8))
    np.testing.assert_array_equal(downsample(full, 2), full[::2, ::2, ::2])
    np.testing.assert_array_equal(upsample(downsample(up, 2), 2), up)
    with pytest.raises(ValueError, match="not divisible"):
        downsample(np.zeros((5, 4, 4)), 2)
    with pytest.raises(ValueError, match="positive integer"):
        upsample(a, 0)


# -- stationarity -------------------------------------------------------------------------------------
def periodic_slab(n, a, b, w, axis=0, other=4):
    """½(tanh((x − a)/w) − tanh((x − b)/w)) summed over periodic images, along ``axis`` of an
    (n along axis, ``other`` elsewhere) grid. float64."""
    x = np.arange(n, dtype=np.float64)
    p = sum(0.5 * (np.tanh((x - a + m * n) / w) - np.tanh((x - b + m * n) / w)) for m in range(-3, 4))
    shape = [other] * 3
    shape[axis] = n
    view = [1, 1, 1]
    view[axis] = n
    return np.broadcast_to(p.reshape(view), shape).copy()


def band_limited(n, x0, axis=0, other=3):
    """A smooth profile of modes 1 and 3 only (band-limited on n ≥ 8 cells), translated to x0."""
    x = np.arange(n, dtype=np.float64) - x0
    p = 0.5 + 0.3 * np.cos(2 * np.pi * x / n) + 0.1 * np.sin(6 * np.pi * x / n + 0.4)
    shape = [other] * 3
    shape[axis] = n
    view = [1, 1, 1]
    view[axis] = n
    return np.broadcast_to(p.reshape(view), shape).copy()


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("s", [0.37, -1.25, 7.9])
def test_layer_shift_of_a_band_limited_profile_is_exact(axis, s):
    """A rigid sub-cell translation multiplies every Fourier mode by a phase: exact to round-off."""
    old, new = band_limited(24, 5.0, axis), band_limited(24, 5.0 + s, axis)
    assert metrics.layer_shift(old, new, axis) == pytest.approx(s, abs=1e-12)
    assert metrics.layer_shift(new, old, axis) == pytest.approx(-s, abs=1e-12)
    shifts = metrics.layer_shifts(old, new)
    assert shifts[axis] == pytest.approx(s, abs=1e-12)
    assert np.all(np.isnan(np.delete(shifts, axis)))  # flat profiles along the layers: undefined


def test_layer_shift_of_tanh_layers():
    """tanh interfaces are not band-limited: aliasing error ~ n/(2π) e^{−π² w} (docstring numbers)."""
    for n, w, tol in ((32, 1.0, 5e-4), (32, 2.0, 1e-7), (64, WIDTH, 1e-13)):
        old = periodic_slab(n, n / 4, 3 * n / 4, w)
        for s in (0.37, -0.45, 1.3):
            new = periodic_slab(n, n / 4 + s, 3 * n / 4 + s, w)
            assert abs(metrics.layer_shift(old, new, 0) - s) < tol, (n, w, s)
    # w = 1 really is not exact (the test of the tolerance can fail)
    old, new = periodic_slab(32, 8, 24, 1.0), periodic_slab(32, 8.37, 24.37, 1.0)
    assert abs(metrics.layer_shift(old, new, 0) - 0.37) > 1e-6


def test_layer_shift_range_and_integer_rolls():
    rng = np.random.default_rng(3)
    a = rng.random((16, 12, 10))
    for d in [(3, -2, 5), (-7, 6, -4), (8, 0, 1)]:  # any profile: an integer roll is exact
        b = np.roll(a, d, axis=(0, 1, 2))
        np.testing.assert_allclose(metrics.layer_shifts(a, b), d, atol=1e-12)
    # the range is (−n/2, n/2]: n/2 stays n/2, just above wraps to the negative side
    old = band_limited(20, 0.0)
    assert metrics.layer_shift(old, band_limited(20, 10.0), 0) == pytest.approx(10.0, abs=1e-12)
    assert metrics.layer_shift(old, band_limited(20, 10.5), 0) == pytest.approx(-9.5, abs=1e-12)
    assert metrics.layer_shift(old, old, 0) == 0.0
    with pytest.raises(ValueError, match="axis"):
        metrics.layer_shift(old, old, 3)
    with pytest.raises(ValueError, match="same shape"):
        metrics.layer_shift(old, old[:-1], 0)
    assert np.isnan(metrics.layer_shift(np.full(old.shape, 0.5), old, 0))  # a uniform field has no layers


def test_change_up_to_translation_finds_the_periodic_shift():
    a = np.random.default_rng(0).random((16, 12, 10))
    rms, d = metrics.change_up_to_translation(np.roll(a, (3, -2, 5), axis=(0, 1, 2)), a)
    assert rms == pytest.approx(0.0, abs=1e-12) and d == [3, -2, 5]
    assert metrics.change_up_to_translation(a, a) == (0.0, [0, 0, 0])
    other = np.random.default_rng(1).random((16, 12, 10))
    assert metrics.change_up_to_translation(other, a)[0] > 0.3  # independent U(0,1): rms ≈ 1/√6
    # a sub-cell move of a layer leaves a remainder even after the best integer translation
    rms, d = metrics.change_up_to_translation(periodic_slab(32, 8.5, 24.5, 1.0), periodic_slab(32, 8, 24, 1.0))
    assert rms > 0.05 and d[1:] == [0, 0] and d[0] in (0, 1)


def test_layered_fraction():
    assert metrics.layered_fraction(periodic_slab(32, 8, 24, 1.0, axis=1, other=16)) == pytest.approx(1.0, abs=1e-12)
    assert metrics.layered_fraction(np.full((8, 8, 8), 0.3)) == 1.0
    noise = np.random.default_rng(0).random((16, 16, 16))
    assert metrics.layered_fraction(noise) < 0.02  # var of a 256-voxel mean: ~1/256 of var(φ)
    x = 2 * np.pi * np.arange(16) / 16
    cubic = np.cos(x)[:, None, None] * np.cos(x)[None, :, None] * np.cos(x)[None, None, :]
    assert metrics.layered_fraction(cubic) == pytest.approx(0.0, abs=1e-12)  # 3D: every profile is flat
    half = periodic_slab(16, 4, 12, 1.0, other=16) + 0.5 * cubic  # layers + a 3D part: in between
    assert 0.3 < metrics.layered_fraction(half) < 0.99


def test_interface_velocity_of_a_moving_layer():
    old = periodic_slab(64, 16, 48, WIDTH)
    for d, S in ((0.3, 200), (0.1, 50), (1.0, 2500)):
        new = periodic_slab(64, 16 + d, 48 + d, WIDTH)
        assert metrics.interface_velocity(old, new, S) == pytest.approx(d / S * 1e4, rel=DELTA_RTOL)
        assert metrics.interface_velocity(old, new, S, dx=0.5) == pytest.approx(0.5 * d / S * 1e4, rel=DELTA_RTOL)
    assert metrics.interface_velocity(old, old, 100) == 0.0
    # the shipped model's network grid (w ≈ 1.06): central differences overestimate by ~11 %
    narrow = [periodic_slab(64, 16 + d, 48 + d, 1.06) for d in (0.0, 0.2)]
    assert 1.09 < metrics.interface_velocity(*narrow, 100) / (0.2 / 100 * 1e4) < 1.13
    series = metrics.interface_velocity(np.stack([old, old]), np.stack([old, periodic_slab(64, 16.2, 48.2, WIDTH)]), 10)
    assert series.shape == (2,) and series[0] == 0 and series[1] == pytest.approx(200, rel=DELTA_RTOL)
    with pytest.raises(ValueError, match="steps"):
        metrics.interface_velocity(old, old, 0)


def moving_layers(T, v, n=32, w=1.0, axis=0):
    """Frames (T, ...) of a 50 % slab moving by v cells per frame along ``axis``."""
    return np.stack([periodic_slab(n, n / 4 + k * v, 3 * n / 4 + k * v, w, axis=axis, other=8) for k in range(T)])


def test_stationarity_of_a_travelling_layer():
    frames = moving_layers(41, 0.5, w=2.0, axis=2)  # 20 cells in 40 frames: more than n/2 = 16
    st = metrics.stationarity(frames, 50, tail_steps=2000)
    json.dumps(json_safe(st), allow_nan=False)
    assert st["tail_steps"] == 2000 and st["steps_between"] == 50 and st["layer_axis"] == 2
    assert st["layer_shift"][2] == pytest.approx(20.0, abs=1e-5)  # summed pair by pair, not aliased
    assert st["layer_shift_per_1e4_steps"][2] == pytest.approx(20.0 / 2000 * 1e4, rel=1e-6)
    assert np.isnan(st["layer_shift"][0]) and np.isnan(st["layer_shift"][1])
    assert st["layered_fraction"] == pytest.approx(1.0, abs=1e-12)
    assert st["interface_velocity"] == pytest.approx(0.5 / 50 * 1e4, rel=0.04)  # w = 2: +3 %
    # 20 cells = an integer translation: nothing left after undoing it
    assert st["rms_change"] > 0.3 and st["rms_change_up_to_translation"] < 1e-6 and st["translation"] == [0, 0, -12]
    # the default tail is the last half; the shift over it
    half = metrics.stationarity(frames, 50)
    assert half["tail_steps"] == 1000 and half["layer_shift"][2] == pytest.approx(10.0, abs=1e-5)


def test_stationarity_of_a_resting_state_and_errors():
    frames = np.stack([periodic_slab(32, 8, 24, 1.0, other=8)] * 5).astype(np.float32)
    st = metrics.stationarity(frames, 250, tail_steps=500)
    assert st["rms_change"] == 0.0 and st["rms_change_up_to_translation"] == 0.0 and st["translation"] == [0, 0, 0]
    assert st["interface_velocity"] == 0.0 and st["layer_shift"][0] == 0.0 and st["layer_axis"] == 0
    for bad in (0, 300, 1250, -250):
        with pytest.raises(ValueError, match="tail_steps"):
            metrics.stationarity(frames, 250, tail_steps=bad)
    with pytest.raises(ValueError, match="steps_between"):
        metrics.stationarity(frames, 0)
    with pytest.raises(ValueError, match="at least 2 frames"):
        metrics.stationarity(frames[:1], 250)
    blown = frames.copy()
    blown[-1, 0, 0, 0] = np.nan
    st = metrics.stationarity(blown, 250)
    assert np.isnan(st["rms_change"]) and np.isnan(st["interface_velocity"]) and st["layer_axis"] is None


def test_reproduce_uses_the_library_definitions():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "docs" / "reproduce.py"
    spec = importlib.util.spec_from_file_location("reproduce_for_metrics", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.layered_fraction is metrics.layered_fraction
    assert mod.change_up_to_translation is metrics.change_up_to_translation


# -- dead code removed ---------------------------------------------------------------------------------
def test_the_per_rollout_summary_is_gone():
    """metrics.summary duplicated evaluate's per-sequence numbers and nothing called it (issue 16, item 2)."""
    assert not hasattr(metrics, "summary") and "summary" not in metrics.__all__


def test_metrics_import_without_torch():
    code = (
        "import numpy as np, ch_numba\n"
        "from surrogate import metrics\n"
        "a = np.random.default_rng(0).random((2, 4, 4, 4))\n"
        "assert list(metrics.rmse(a, a)) == [0.0, 0.0]\n"
        "assert metrics.free_energy_series(a, ch_numba.CHParams()).shape == (2,)\n"
        "st = metrics.stationarity(a, 1)\n"
        "assert st['rms_change'] > 0 and 0 <= st['layered_fraction'] <= 1\n"
        "assert sys.modules['torch'] is None\n"
        "print('ok')\n"
    )
    res = run_python(code, no_torch=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


# -- structure factor and characteristic length -----------------------------------------------------
def _cosines(shape, modes, dx=1.0):
    """0.5 + Σ a cos(2π m x_axis / n): modes is [(axis, m, a)]."""
    phi = np.full(shape, 0.5)
    for axis, m, a in modes:
        x = np.arange(shape[axis]).reshape([-1 if d == axis else 1 for d in range(3)])
        phi = phi + a * np.cos(2 * np.pi * m * x / shape[axis])
    return phi


@pytest.mark.parametrize("dx", [1.0, 0.5])
def test_characteristic_length_of_single_and_two_modes(dx):
    n = 32
    assert metrics.characteristic_length(_cosines((n, n, n), [(0, 4, 0.3)]), dx) == pytest.approx(n * dx / 4)
    # two modes: <k> is the |û|²-weighted mean of their wavenumbers (weights a²)
    phi = _cosines((n, n, n), [(1, 3, 0.3), (2, 5, 0.1)])
    k3, k5 = 2 * np.pi * 3 / (n * dx), 2 * np.pi * 5 / (n * dx)
    want = 2 * np.pi / ((0.09 * k3 + 0.01 * k5) / 0.10)
    assert metrics.characteristic_length(phi, dx) == pytest.approx(want, rel=1e-12)
    series = metrics.characteristic_length(np.stack([phi, phi]), dx)
    assert series.shape == (2,) and series[1] == pytest.approx(want, rel=1e-12)
    assert np.isnan(metrics.characteristic_length(np.full((8, 8, 8), 0.3)))


def test_structure_factor_against_a_full_fft_reference():
    """Shell means of |û|²/V from numpy's full fftn (no rfft bookkeeping), on a non-cubic odd/even grid."""
    rng = np.random.default_rng(5)
    shape = (12, 10, 9)
    phi = rng.random(shape)
    k, S = metrics.structure_factor(phi, dx=0.7)
    u = phi - phi.mean()
    power = np.abs(np.fft.fftn(u)) ** 2 / u.size
    ks = np.meshgrid(*(2 * np.pi * np.fft.fftfreq(n, d=0.7) for n in shape), indexing="ij")
    kabs = np.sqrt(sum(c**2 for c in ks))
    shell = np.rint(kabs / (2 * np.pi / (min(shape) * 0.7))).astype(int)
    want_k, want_S = [], []
    for m in range(1, shell.max() + 1):
        sel = shell == m
        if sel.any():
            want_k.append(kabs[sel].mean())
            want_S.append(power[sel].mean())
    np.testing.assert_allclose(k, want_k, rtol=1e-12)
    np.testing.assert_allclose(S, want_S, rtol=1e-10)
    # Parseval over all shells: Σ_m count_m S_m = V var(φ) (shell 0 holds k = 0 only, where û = 0)
    counts = [np.count_nonzero(shell == m) for m in range(1, shell.max() + 1) if (shell == m).any()]
    assert float(np.dot(counts, S)) == pytest.approx(u.size * u.var(), rel=1e-10)


def test_structure_factor_peaks_at_the_mode():
    n = 32
    k, S = metrics.structure_factor(_cosines((n, n, n), [(0, 4, 0.3)]))
    peak = int(np.argmax(S))
    assert abs(k[peak] - 2 * np.pi * 4 / n) < np.pi / n  # the shell of the mode (half a shell width)
    assert S[peak] > 1e6 * np.delete(S, peak).max()
