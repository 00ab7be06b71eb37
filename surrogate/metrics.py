r"""Evaluation metrics of rollouts against ground truth (numpy only; never imports torch).

Shared by ``python -m surrogate evaluate`` and the ONNX runtime tools. Frames are numpy arrays
of shape (T, X, Y, Z) (a time series) or (X, Y, Z) (one frame, where it makes sense); per-frame
metrics return float64 arrays of shape (T,) for a series and a float for one frame.
Reductions are done in float64.

Interface displacement (paper, appendix C)
------------------------------------------
Let the prediction be the true field with its interface shifted by a small distance d(x) along
the interface normal n: φ_pred(x) = φ_true(x − d n). To first order in d,

    φ_pred − φ_true ≈ −d ∂_n φ_true,

and near an interface the gradient is along the normal, |∇φ_true|² = (∂_n φ_true)². So

    δ² = Σ (φ_pred − φ_true)² / Σ |∇φ_true|²  ≈  Σ d² |∇φ_true|² / Σ |∇φ_true|² ,

the |∇φ_true|²-weighted mean of d² over the interfaces: δ is the rms displacement of the
interfaces, in the length units of ``dx`` (grid units for dx = 1), and δ = |d| for a rigid
shift. ∇ uses periodic central differences, which underestimate the steepest gradients a
little: for the equilibrium profile ½(1 + tanh(x/w)) with w = √2 ε/√W = 4.24 (ε = 3) a rigid
shift d gives δ = 1.007 |d| (1.03 |d| for w = 2). Errors that are not displacements (wrong phases far
from interfaces) also raise δ, so it is an upper-bound-like "equivalent displacement".

Coarsening law
--------------
With f(φ) = W φ²(1−φ)² the bulk phases (φ = 0, 1) have zero energy, so F/V is interfacial:
F/V ≈ σ · (interface area per volume) ~ σ / L(t), and in the Lifshitz-Slyozov-Wagner coarsening
regime L(t) ~ t^{1/3}, hence F/V ~ t^{-1/3}. :func:`fit_power_law` fits log F = log A + α log t
over a time window (the coarsening regime: after the spinodal decomposition, before the
finite box stops the growth); α ≈ −1/3 is expected.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "rmse",
    "interface_displacement",
    "free_energy_series",
    "relative_error",
    "fit_power_law",
    "mass_drift",
    "stationary_index",
    "ensemble_stats",
    "upsample",
    "downsample",
    "summary",
]


# -- helpers ------------------------------------------------------------------------------------
def _field(a, name: str) -> np.ndarray:
    """Array of one frame (X, Y, Z) or frames (T, X, Y, Z)."""
    a = np.asarray(a)
    if a.ndim not in (3, 4):
        raise ValueError(f"expected {name} of shape (T, X, Y, Z) or (X, Y, Z), got {a.shape}")
    if not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"expected {name} to be numeric, got dtype {a.dtype}")
    return a


def _series(a, name: str) -> np.ndarray:
    """Array of frames (T, X, Y, Z)."""
    a = np.asarray(a)
    if a.ndim != 4:
        raise ValueError(f"expected {name} of shape (T, X, Y, Z), got {a.shape}")
    if not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"expected {name} to be numeric, got dtype {a.dtype}")
    return a


def _pair(pred, true) -> tuple[np.ndarray, np.ndarray]:
    pred, true = _field(pred, "pred"), _field(true, "true")
    if pred.shape != true.shape:
        raise ValueError(f"pred and true must have the same shape, got {pred.shape} and {true.shape}")
    return pred, true


def _per_frame(values: np.ndarray, one_frame: bool):
    return float(values[0]) if one_frame else values


def _factor(factor) -> int:
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ValueError(f"factor must be a positive integer, got {factor!r}")
    return int(factor)


# -- per-frame errors ---------------------------------------------------------------------------
def rmse(pred, true):
    """Root-mean-square error per frame: sqrt(mean_voxels (pred − true)²).

    pred, true : arrays (T, X, Y, Z) or (X, Y, Z), equal shapes. Returns (T,) float64 or a float.
    """
    pred, true = _pair(pred, true)
    one = pred.ndim == 3
    diff = (pred.astype(np.float64) - true.astype(np.float64)).reshape((1 if one else pred.shape[0]), -1)
    return _per_frame(np.sqrt(np.mean(diff**2, axis=1)), one)


def _grad2(phi: np.ndarray, dx: float) -> np.ndarray:
    """|∇φ|² by periodic central differences over the last three axes (float64)."""
    g2 = np.zeros(phi.shape, dtype=np.float64)
    for axis in (-3, -2, -1):
        g = (np.roll(phi, -1, axis) - np.roll(phi, 1, axis)) / (2.0 * dx)
        g2 += g * g
    return g2


def interface_displacement(pred, true, dx: float = 1.0):
    """Interface displacement δ = sqrt(Σ(φ_pred − φ_true)² / Σ|∇φ_true|²) per frame.

    Derivation in the module docstring: δ is the rms displacement of the interfaces, in the
    units of ``dx`` (grid units for dx = 1). A frame without any gradient (uniform φ_true) has
    no interface: δ is NaN there.

    pred, true : arrays (T, X, Y, Z) or (X, Y, Z), equal shapes. Returns (T,) float64 or a float.
    """
    pred, true = _pair(pred, true)
    try:
        dx = float(dx)
    except (TypeError, ValueError):
        raise ValueError(f"dx must be a positive number, got {dx!r}") from None
    if not (dx > 0 and math.isfinite(dx)):
        raise ValueError(f"dx must be a positive number, got {dx!r}")
    one = pred.ndim == 3
    p = pred.astype(np.float64).reshape((-1, *pred.shape[-3:]))
    t = true.astype(np.float64).reshape((-1, *true.shape[-3:]))
    num = np.sum((p - t) ** 2, axis=(1, 2, 3))
    den = np.sum(_grad2(t, dx), axis=(1, 2, 3))
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.where(den > 0, np.sqrt(num / np.where(den > 0, den, 1.0)), np.nan)
    return _per_frame(delta, one)


# -- energies, errors, fits ---------------------------------------------------------------------
def free_energy_series(frames, params=None) -> np.ndarray:
    """Free energy per unit volume of each frame, float64 (T,), by ``ch_numba.free_energy``.

    frames : array (T, X, Y, Z) (or one frame (X, Y, Z), giving shape (1,));
    params : ``ch_numba.CHParams`` (W, ε, dx), default ``CHParams()``.
    """
    import ch_numba  # numpy/numba only; imported here to keep this module's import light

    frames = _field(frames, "frames")
    frames = frames.reshape((-1, *frames.shape[-3:]))
    params = params if params is not None else ch_numba.CHParams()
    return np.array([ch_numba.free_energy(np.ascontiguousarray(f), params) for f in frames], dtype=np.float64)


def relative_error(a, b):
    """|a − b| / |b| elementwise (float64; inf or NaN where b = 0). a, b: equal shapes."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.abs(a - b) / np.abs(b)
    return float(out) if out.ndim == 0 else out


def fit_power_law(t, F, t_min=None, t_max=None) -> tuple[float, float, float]:
    """Least-squares fit of log F = log A + α log t over t_min ≤ t ≤ t_max.

    Points with t ≤ 0 or F ≤ 0 are left out (no logarithm). For the coarsening regime of
    Cahn-Hilliard flow F/V ~ t^(−1/3) (module docstring), so α ≈ −1/3 is expected.

    t, F : 1D arrays of equal length. Returns (alpha, prefactor A, r2), r2 the coefficient of
    determination of the fit in log-log space (1.0 for an exact power law).
    Raises ValueError with fewer than 3 usable points in the window.
    """
    t = np.asarray(t, dtype=np.float64)
    F = np.asarray(F, dtype=np.float64)
    if t.ndim != 1 or t.shape != F.shape:
        raise ValueError(f"expected t and F as 1D arrays of equal length, got {t.shape} and {F.shape}")
    keep = np.isfinite(t) & np.isfinite(F) & (t > 0) & (F > 0)
    if t_min is not None:
        keep &= t >= t_min
    if t_max is not None:
        keep &= t <= t_max
    n = int(np.count_nonzero(keep))
    if n < 3:
        raise ValueError(f"power-law fit needs at least 3 points with t > 0, F > 0 in [{t_min}, {t_max}], got {n}")
    x, y = np.log(t[keep]), np.log(F[keep])
    alpha, logA = np.polyfit(x, y, 1)
    res = y - (alpha * x + logA)
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(res**2)) / ss_tot if ss_tot > 0 else 1.0
    return float(alpha), float(np.exp(logA)), r2


def mass_drift(frames) -> float:
    """max_t |mean φ_t − mean φ_0| / |mean φ_0| over frames (T, X, Y, Z) (float64 means).

    If mean φ_0 = 0, the absolute drift max_t |mean φ_t| is returned.
    """
    frames = _series(frames, "frames")
    means = frames.reshape(frames.shape[0], -1).astype(np.float64).mean(axis=1)
    drift = np.max(np.abs(means - means[0]))
    return float(drift / abs(means[0])) if means[0] != 0 else float(drift)


def stationary_index(frames, tol: float) -> int | None:
    """First n with max|φ_{m+1} − φ_m| < tol for every m ≥ n, or None (frames (T, X, Y, Z), T ≥ 2).

    Frame n is then (within tol per step) the stationary state; None if the last step still
    changes by tol or more.
    """
    frames = _series(frames, "frames")
    if frames.shape[0] < 2:
        raise ValueError(f"stationary_index needs at least 2 frames, got {frames.shape[0]}")
    if not tol > 0:
        raise ValueError(f"tol must be positive, got {tol!r}")
    change = np.array(
        [np.max(np.abs(frames[m + 1].astype(np.float64) - frames[m])) for m in range(frames.shape[0] - 1)]
    )
    above = np.flatnonzero(~(change < tol))  # NaN counts as "still changing"
    if above.size == 0:
        return 0
    last = int(above[-1])
    return last + 1 if last + 1 < change.size else None


def ensemble_stats(curves) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample standard deviation (ddof = 1; zeros for one curve) over runs.

    curves : array (R, T) or a sequence of R 1D arrays of equal length T.
    Returns (mean (T,), sd (T,)), float64.
    """
    try:
        c = np.asarray(curves, dtype=np.float64)
    except ValueError:
        raise ValueError("expected curves of equal length (R, T)") from None
    if c.ndim != 2 or c.shape[0] < 1:
        raise ValueError(f"expected curves of shape (R, T), got {c.shape}")
    sd = c.std(axis=0, ddof=1) if c.shape[0] > 1 else np.zeros(c.shape[1])
    return c.mean(axis=0), sd


# -- resolution ---------------------------------------------------------------------------------
def upsample(frames, factor: int = 2) -> np.ndarray:
    """Nearest-neighbour upsampling of the last three (spatial) axes: each voxel -> factor³ voxels.

    frames : array (..., X, Y, Z). Returns (..., factor·X, factor·Y, factor·Z), same dtype.
    ``downsample(upsample(a, f), f)`` equals ``a`` exactly.
    """
    f = _factor(factor)
    a = np.asarray(frames)
    if a.ndim < 3:
        raise ValueError(f"expected frames of shape (..., X, Y, Z), got {a.shape}")
    for axis in (-3, -2, -1):
        a = np.repeat(a, f, axis=axis)
    return a


def downsample(frames, factor: int = 2) -> np.ndarray:
    """Nearest sampling of the last three (spatial) axes: every factor-th voxel, from voxel 0.

    ``a[..., ::f, ::f, ::f]`` (64³ -> 32³ for f = 2, as the network's input). Spatial sizes
    must be multiples of ``factor``. Returns a contiguous copy, same dtype.
    """
    f = _factor(factor)
    a = np.asarray(frames)
    if a.ndim < 3:
        raise ValueError(f"expected frames of shape (..., X, Y, Z), got {a.shape}")
    if any(n % f for n in a.shape[-3:]):
        raise ValueError(f"spatial shape {a.shape[-3:]} is not divisible by the factor {f}")
    return np.ascontiguousarray(a[..., ::f, ::f, ::f])


# -- all numbers --------------------------------------------------------------------------------
def _json(x):
    """Python floats/lists with NaN and ±inf as None (strict JSON)."""
    if isinstance(x, dict):
        return {k: _json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json(v) for v in x]
    if isinstance(x, np.ndarray):
        return _json(x.tolist())
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    return x


def summary(pred, true, params, times, *, t_min=None, t_max=None, stationary_tol: float = 1e-4) -> dict:
    """All evaluation numbers of one rollout as a JSON-serialisable dict (NaN/inf -> None).

    Parameters
    ----------
    pred, true : arrays (T, X, Y, Z), same shape and resolution (frames 0..T−1 or 1..T).
    params : ``ch_numba.CHParams`` for the free energy (and dx for δ).
    times : array (T,), the physical time of each frame.
    t_min, t_max : window of the power-law fits (default: all t > 0).
    stationary_tol : tolerance of :func:`stationary_index`.

    Keys: per-frame lists ``times``, ``rmse``, ``interface_displacement``, ``free_energy_pred``,
    ``free_energy_true``, ``free_energy_rel_error``, ``phi_mean_pred``, ``phi_mean_true``; scalars
    ``rmse_final``, ``rmse_mean``, ``delta_final``, ``delta_max``, ``free_energy_rel_error_max``,
    ``mass_drift_pred``, ``mass_drift_true``, ``stationary_index_pred``, ``stationary_index_true``;
    fits ``power_law_pred``/``power_law_true`` as {alpha, prefactor, r2} (None if not fittable).
    """
    pred, true = _series(pred, "pred"), _series(true, "true")
    if pred.shape != true.shape:
        raise ValueError(f"pred and true must have the same shape, got {pred.shape} and {true.shape}")
    if pred.shape[0] < 1:
        raise ValueError("summary needs at least one frame, got T = 0")
    times = np.asarray(times, dtype=np.float64)
    if times.shape != (pred.shape[0],):
        raise ValueError(f"expected times of shape ({pred.shape[0]},), got {times.shape}")
    dx = float(getattr(params, "dx", 1.0))
    err = rmse(pred, true)
    delta = interface_displacement(pred, true, dx=dx)
    f_pred = free_energy_series(pred, params)
    f_true = free_energy_series(true, params)
    f_rel = relative_error(f_pred, f_true)

    def fit(F):
        try:
            alpha, pref, r2 = fit_power_law(times, F, t_min, t_max)
        except ValueError:
            return None
        return {"alpha": alpha, "prefactor": pref, "r2": r2}

    def stationary(frames):
        return stationary_index(frames, stationary_tol) if frames.shape[0] >= 2 else None

    out = {
        "n_frames": int(pred.shape[0]),
        "grid": [int(n) for n in pred.shape[1:]],
        "times": times,
        "rmse": err,
        "interface_displacement": delta,
        "free_energy_pred": f_pred,
        "free_energy_true": f_true,
        "free_energy_rel_error": f_rel,
        "phi_mean_pred": pred.reshape(pred.shape[0], -1).astype(np.float64).mean(axis=1),
        "phi_mean_true": true.reshape(true.shape[0], -1).astype(np.float64).mean(axis=1),
        "rmse_final": err[-1],
        "rmse_mean": np.mean(err),
        "delta_final": delta[-1],
        "delta_max": np.nanmax(delta) if np.any(np.isfinite(delta)) else np.nan,
        "free_energy_rel_error_max": np.nanmax(f_rel) if np.any(np.isfinite(f_rel)) else np.nan,
        "mass_drift_pred": mass_drift(pred),
        "mass_drift_true": mass_drift(true),
        "stationary_index_pred": stationary(pred),
        "stationary_index_true": stationary(true),
        "stationary_tol": stationary_tol,
        "power_law_pred": fit(f_pred),
        "power_law_true": fit(f_true),
        "fit_window": [t_min, t_max],
    }
    return _json(out)
