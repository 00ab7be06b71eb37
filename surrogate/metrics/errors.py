r"""Errors of a prediction against the truth: RMSE, interface displacement δ, relative errors and
drifts, ensemble mean ± sd (numpy only).

Interface displacement (paper, appendix C)
------------------------------------------
Let the prediction be the true field with its interface shifted by a small distance d(x) along
the interface normal n: φ_pred(x) = φ_true(x − d n). To first order in d,

    φ_pred − φ_true ≈ −d ∂_n φ_true,

and near an interface the gradient is along the normal, |∇φ_true|² = (∂_n φ_true)². So

    δ² = Σ (φ_pred − φ_true)² / Σ |∇φ_true|²  ≈  Σ d² |∇φ_true|² / Σ |∇φ_true|² ,

the |∇φ_true|²-weighted mean of d² over the interfaces: δ is the rms displacement of the
interfaces, in the length units of ``dx`` (grid units for dx = 1), and δ = |d| for a rigid
shift. ∇ uses periodic central differences (mirror ghosts across no-flux walls), which
underestimate the steepest gradients a little: for the equilibrium profile ½(1 + tanh(x/w)) with
w = √2 ε/√W = 4.24 (ε = 3) a rigid shift d gives δ = 1.007 |d| (1.03 |d| for w = 2). Errors that
are not displacements (wrong phases far from interfaces) also raise δ, so it is an upper-bound-like
"equivalent displacement".
"""

from __future__ import annotations

import math

import numpy as np

from ch_numba.params import wall_axes  # stdlib only: (x, y, z) booleans of the wall axes

from ._checks import _pair, _per_frame, _series

__all__ = ["rmse", "interface_displacement", "relative_error", "relative_drift", "mass_drift", "ensemble_stats"]


def rmse(pred, true):
    """Root-mean-square error per frame: sqrt(mean_voxels (pred − true)²).

    pred, true : arrays (T, X, Y, Z) or (X, Y, Z), equal shapes. Returns (T,) float64 or a float.
    """
    pred, true = _pair(pred, true)
    one = pred.ndim == 3
    diff = (pred.astype(np.float64) - true.astype(np.float64)).reshape((1 if one else pred.shape[0]), -1)
    return _per_frame(np.sqrt(np.mean(diff**2, axis=1)), one)


def _grad2(phi: np.ndarray, dx: float, walls=(False, False, False)) -> np.ndarray:
    """|∇φ|² by central differences over the last three axes (float64): periodic, or on an axis with no-flux
    walls (``walls[a]``) with the mirror ghost beyond the edge (φ[−1] = φ[0], φ[N] = φ[N−1])."""
    g2 = np.zeros(phi.shape, dtype=np.float64)
    for axis, wall in zip((-3, -2, -1), walls):
        if wall:
            i = np.arange(phi.shape[axis])
            ahead, behind = np.minimum(i + 1, i[-1]), np.maximum(i - 1, 0)
            g = (np.take(phi, ahead, axis) - np.take(phi, behind, axis)) / (2.0 * dx)
        else:
            g = (np.roll(phi, -1, axis) - np.roll(phi, 1, axis)) / (2.0 * dx)
        g2 += g * g
    return g2


def interface_displacement(pred, true, dx: float = 1.0, boundary=None):
    """Interface displacement δ = sqrt(Σ(φ_pred − φ_true)² / Σ|∇φ_true|²) per frame.

    Derivation in the module docstring: δ is the rms displacement of the interfaces, in the
    units of ``dx`` (grid units for dx = 1). A frame without any gradient (uniform φ_true) has
    no interface: δ is NaN there.

    pred, true : arrays (T, X, Y, Z) or (X, Y, Z), equal shapes. Returns (T,) float64 or a float.
    boundary : None (periodic) or ``ch_numba.CHParams.boundary``'s forms: ∇ uses the mirror ghost across walls.
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
    den = np.sum(_grad2(t, dx, wall_axes(boundary)), axis=(1, 2, 3))
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.where(den > 0, np.sqrt(num / np.where(den > 0, den, 1.0)), np.nan)
    return _per_frame(delta, one)


def relative_error(a, b):
    """|a − b| / |b| elementwise (float64; inf or NaN where b = 0). a, b: equal shapes."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.abs(a - b) / np.abs(b)
    return float(out) if out.ndim == 0 else out


def relative_drift(means) -> np.ndarray:
    """|m_t − m_0| / |m_0| per frame of a series of means m (T,) (float64; the absolute drift |m_t − m_0|
    if m_0 = 0): the one definition behind :func:`mass_drift` and evaluate's per-frame mass drift."""
    means = np.asarray(means, dtype=np.float64)
    drift = np.abs(means - means[0])
    return drift / abs(means[0]) if means[0] != 0 else drift


def mass_drift(frames) -> float:
    """max_t |mean φ_t − mean φ_0| / |mean φ_0| over frames (T, X, Y, Z) (float64 means).

    If mean φ_0 = 0, the absolute drift max_t |mean φ_t| is returned (:func:`relative_drift`).
    """
    frames = _series(frames, "frames")
    means = frames.reshape(frames.shape[0], -1).astype(np.float64).mean(axis=1)
    return float(np.max(relative_drift(means)))


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
