r"""Observables of a field or a run: the free energy F, its power law in time, the structure factor
S(k) and the characteristic length L (numpy only; ch_numba for F).

Coarsening law
--------------
With f(φ) = W φ²(1−φ)² the bulk phases (φ = 0, 1) have zero energy, so F/V is interfacial:
F/V ≈ σ · (interface area per volume) ~ σ / L(t), and in the Lifshitz-Slyozov-Wagner coarsening
regime L(t) ~ t^{1/3}, hence F/V ~ t^{-1/3}. :func:`fit_power_law` fits log F = log A + α log t
over a time window (the coarsening regime: after the spinodal decomposition, before the
finite box stops the growth); α ≈ −1/3 is expected.

Morphology: structure factor and characteristic length
------------------------------------------------------
The free energy measures the interface area only; the structure factor says how the domains are
sized. With the fluctuation u = φ − ⟨φ⟩ on a periodic n_x × n_y × n_z grid of spacing dx, its DFT
û(k) at the wavevectors k = 2π (i/(n_x dx), j/(n_y dx), l/(n_z dx)) (signed indices) and V the
number of voxels,

    S(k) = ⟨ |û(k)|² ⟩_{shell} / V           shells |k| ∈ [(m − ½) Δk, (m + ½) Δk), Δk = 2π / (n_min dx)

(:func:`structure_factor`: the shell mean over the modes of shell m = 1, 2, ..., with the mean |k|
of the shell's modes as its abscissa; Parseval: Σ over all modes of |û|²/V = V · var(φ)). The
characteristic length is

    L = 2π / ⟨k⟩,     ⟨k⟩ = Σ_{k ≠ 0} |k| |û(k)|² / Σ_{k ≠ 0} |û(k)|²

over all modes (:func:`characteristic_length`; no binning), L = n dx / m exactly for a single
mode cos(2π m x / (n dx)). In the coarsening regime L(t) ~ t^{1/3} (LSW), fitted with
:func:`fit_power_law` (α ≈ +1/3).
"""

from __future__ import annotations

import math

import numpy as np

from ch_numba.params import wall_axes  # stdlib only: (x, y, z) booleans of the wall axes

from ._checks import _field, _per_frame

__all__ = [
    "free_energy_series",
    "network_params",
    "mirror_doubled",
    "fit_power_law",
    "structure_factor",
    "characteristic_length",
]


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


def network_params(params, factor: int):
    """The physics of the network grid: ``params`` with its spacing dx → factor · dx (W, ε, M kept).

    A network that steps every ``factor``-th voxel sees the same field with a coarser spacing; its
    free energy F[ψ] (:func:`free_energy_series`) and lengths are measured with this spacing.
    """
    import dataclasses

    return dataclasses.replace(params, dx=params.dx * factor)


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


def _spectrum(frames, dx: float):
    """|û(k)|² / V per frame (T, X, Y, Z//2+1) of u = φ − ⟨φ⟩ (rfft, float64), the |k| of the modes
    (X, Y, Z//2+1), the weight of every rfft column (1 or 2: it also stands for its mirror mode),
    whether ``frames`` was one frame, and the grid shape; a frame without fluctuation (var φ at
    round-off of its values) has power 0."""
    phi = _field(frames, "frames").astype(np.float64)
    one = phi.ndim == 3
    phi = phi[None] if one else phi
    if not (math.isfinite(dx) and dx > 0):
        raise ValueError(f"dx must be a positive number, got {dx}")
    nx, ny, nz = phi.shape[1:]
    u = phi - phi.mean(axis=(1, 2, 3), keepdims=True)
    flat = np.mean(u**2, axis=(1, 2, 3)) <= 1e-26 * np.mean(phi**2, axis=(1, 2, 3))
    u[flat] = 0.0
    power = np.abs(np.fft.rfftn(u, axes=(1, 2, 3))) ** 2 / (nx * ny * nz)
    kx = 2 * np.pi * np.fft.fftfreq(nx, d=dx)
    ky = 2 * np.pi * np.fft.fftfreq(ny, d=dx)
    kz = 2 * np.pi * np.fft.rfftfreq(nz, d=dx)
    kabs = np.sqrt(kx[:, None, None] ** 2 + ky[None, :, None] ** 2 + kz[None, None, :] ** 2)
    weight = np.full(kz.size, 2.0)  # every rfft column but z-index 0 (and nz/2 for even nz) stands for two modes
    weight[0] = 1.0
    if nz % 2 == 0:
        weight[-1] = 1.0
    return power, kabs, np.broadcast_to(weight, kabs.shape), one, (nx, ny, nz)


def structure_factor(frames, dx: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Spherically averaged structure factor S(k) of φ − ⟨φ⟩ (module docstring).

    frames : (T, X, Y, Z) or (X, Y, Z). dx : grid spacing.
    Returns (k, S): k (M,) the mean |k| of the modes of shells m = 1..M (Δk = 2π/(n_min dx), up to
    the largest |k| on the grid; empty shells left out), S (T, M) or (M,) the mean of |û(k)|²/V
    over each shell's modes.
    """
    power, kabs, weight, one, grid = _spectrum(frames, dx)
    dk = 2 * np.pi / (min(grid) * dx)
    shell = np.rint(kabs / dk).astype(np.int64).ravel()
    w = weight.ravel()
    n_shells = int(shell.max()) + 1
    count = np.bincount(shell, weights=w, minlength=n_shells)
    ksum = np.bincount(shell, weights=w * kabs.ravel(), minlength=n_shells)
    keep = (np.arange(n_shells) > 0) & (count > 0)
    S = np.stack([np.bincount(shell, weights=w * p.ravel(), minlength=n_shells)[keep] for p in power])
    S /= count[keep]
    k = ksum[keep] / count[keep]
    return k, (S[0] if one else S)


def mirror_doubled(frames, boundary=None) -> np.ndarray:
    """The periodic box equivalent to a box with no-flux walls: ``frames`` (..., X, Y, Z) concatenated with its
    mirror image along each wall axis of ``boundary`` (``ch_numba.CHParams.boundary``'s forms; None: periodic,
    returned as is): a box of N cells with walls is the periodic box of 2N restricted to its first N."""
    a = np.asarray(frames)
    for axis, wall in zip((-3, -2, -1), wall_axes(boundary)):
        if wall:
            a = np.concatenate([a, np.flip(a, axis)], axis=axis)
    return a


def characteristic_length(frames, dx: float = 1.0, boundary=None):
    """L = 2π / ⟨k⟩ with ⟨k⟩ the |û|²-weighted mean |k| over all modes k ≠ 0 (module docstring).

    frames : (T, X, Y, Z) or (X, Y, Z). Returns (T,) float64 or a float, in the units of dx; NaN
    for a uniform frame (no fluctuation). ``boundary``: with no-flux walls the spectrum is that of the
    equivalent periodic box (:func:`mirror_doubled`; its modes are the cosines of the box with walls).
    """
    power, kabs, weight, one, _ = _spectrum(mirror_doubled(frames, boundary), dx)
    wp = power * weight
    total = wp.sum(axis=(1, 2, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_k = (wp * kabs).sum(axis=(1, 2, 3)) / total
        L = np.where(total > 0, 2 * np.pi / mean_k, np.nan)
    return _per_frame(L, one)
