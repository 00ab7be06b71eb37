r"""Evaluation metrics of rollouts against ground truth (numpy only; never imports torch).

Used by ``python -m surrogate evaluate`` and the docs/ scripts; :func:`upsample` and :func:`downsample`
are :mod:`export.resample`'s (one definition, which the torch-free runtime imports without this
package). Frames are numpy arrays of shape (T, X, Y, Z) (a time series) or (X, Y, Z) (one frame,
where it makes sense); per-frame metrics return float64 arrays of shape (T,) for a series and a
float for one frame. Reductions are done in float64.

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

Stationarity of layered states
------------------------------
A periodic box at φ̄ ≈ ½ coarsens into flat layers (a slab of each phase normal to one axis), a
stationary state of the Cahn-Hilliard flow that is neutral to translation: the physics does not
move it, a surrogate may (lattice pinning, or a steady drift). The measures, on frames
(T, X, Y, Z) of one grid, lengths in cells (of that grid) and rates per 10⁴ steps:

* :func:`layered_fraction` — max over axes of var(1D profile) / var(φ): 1 for flat layers.
* :func:`change_up_to_translation` — rms change after undoing the best periodic integer
  translation: ≈ 0 if the field only moved rigidly.
* :func:`layer_shift` — the signed sub-cell translation of the 1D profile p(x) = ⟨φ⟩ over the
  other two axes, from the phase of its first Fourier mode P₁ = Σ_x p(x) e^{−2πi x/n}: a rigid
  translation by s multiplies P₁ by e^{−2πi s/n}, so s = −n/(2π) · arg(P₁_new · conj P₁_old).
* :func:`interface_velocity` — δ (above) between two frames of one rollout, per 10⁴ steps:
  the rms normal speed of the interfaces, whatever their shape.
* :func:`stationarity` — all of these over the last ``tail_steps`` steps of a rollout.
"""

from __future__ import annotations

import math

import numpy as np

from export.resample import downsample, upsample  # one definition (numpy only), used by the runtime too

__all__ = [
    "rmse",
    "interface_displacement",
    "free_energy_series",
    "relative_error",
    "fit_power_law",
    "mass_drift",
    "relative_drift",
    "stationary_index",
    "ensemble_stats",
    "upsample",
    "downsample",
    "layered_fraction",
    "change_up_to_translation",
    "layer_shift",
    "layer_shifts",
    "interface_velocity",
    "stationarity",
    "structure_factor",
    "characteristic_length",
]


# -- helpers ------------------------------------------------------------------------------------
def _numeric(a, name: str, ndims: tuple, shape: str) -> np.ndarray:
    """``a`` as an ndarray of a numeric dtype with one of ``ndims`` dimensions (``shape`` names them)."""
    a = np.asarray(a)
    if a.ndim not in ndims:
        raise ValueError(f"expected {name} of shape {shape}, got {a.shape}")
    if not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"expected {name} to be numeric, got dtype {a.dtype}")
    return a


def _field(a, name: str) -> np.ndarray:
    """Array of one frame (X, Y, Z) or frames (T, X, Y, Z)."""
    return _numeric(a, name, (3, 4), "(T, X, Y, Z) or (X, Y, Z)")


def _series(a, name: str) -> np.ndarray:
    """Array of frames (T, X, Y, Z)."""
    return _numeric(a, name, (4,), "(T, X, Y, Z)")


def _pair(pred, true) -> tuple[np.ndarray, np.ndarray]:
    pred, true = _field(pred, "pred"), _field(true, "true")
    if pred.shape != true.shape:
        raise ValueError(f"pred and true must have the same shape, got {pred.shape} and {true.shape}")
    return pred, true


def _per_frame(values: np.ndarray, one_frame: bool):
    return float(values[0]) if one_frame else values


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


def network_params(params, factor: int):
    """The physics of the network grid: ``params`` with its spacing dx → factor · dx (W, ε, M kept).

    A network that steps every ``factor``-th voxel sees the same field with a coarser spacing; its
    free energy F[ψ] (:func:`free_energy_series`) and lengths are measured with this spacing.
    """
    import dataclasses

    return dataclasses.replace(params, dx=params.dx * factor)


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


def characteristic_length(frames, dx: float = 1.0):
    """L = 2π / ⟨k⟩ with ⟨k⟩ the |û|²-weighted mean |k| over all modes k ≠ 0 (module docstring).

    frames : (T, X, Y, Z) or (X, Y, Z). Returns (T,) float64 or a float, in the units of dx; NaN
    for a uniform frame (no fluctuation).
    """
    power, kabs, weight, one, _ = _spectrum(frames, dx)
    wp = power * weight
    total = wp.sum(axis=(1, 2, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_k = (wp * kabs).sum(axis=(1, 2, 3)) / total
        L = np.where(total > 0, 2 * np.pi / mean_k, np.nan)
    return _per_frame(L, one)


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


# -- stationarity -------------------------------------------------------------------------------
_OTHER_AXES = ((1, 2), (0, 2), (0, 1))


def _frame(a, name: str) -> np.ndarray:
    """One frame (X, Y, Z) as float64."""
    return _numeric(a, name, (3,), "(X, Y, Z)").astype(np.float64)


def _frame_pair(old, new) -> tuple[np.ndarray, np.ndarray]:
    old, new = _frame(old, "old"), _frame(new, "new")
    if old.shape != new.shape:
        raise ValueError(f"old and new must have the same shape, got {old.shape} and {new.shape}")
    return old, new


def _axis(axis) -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -3 <= axis < 3:
        raise ValueError(f"axis must be 0, 1 or 2 (or -3..-1), got {axis!r}")
    return int(axis) % 3


def layered_fraction(phi) -> float:
    """How one-dimensional a field is: max over axes a of var(p_a) / var(φ), p_a = ⟨φ⟩ over the other two axes.

    1 for flat layers normal to one axis (the stationary state of a periodic box at φ̄ ≈ ½),
    ≈ 0 for a bicontinuous 3D structure (for white noise ≈ 1/(number of voxels averaged into one
    profile value), e.g. 1/256 on 16³); 1 for a uniform field (nothing varies in 3D).

    phi : array (X, Y, Z). Returns a float in [0, 1] (NaN for non-finite φ).
    """
    phi = _frame(phi, "phi")
    total = phi.var()
    if not np.isfinite(total):
        return float("nan")
    if total <= (1e-12 * max(1.0, float(np.max(np.abs(phi))))) ** 2:  # uniform up to round-off
        return 1.0
    return float(max(phi.mean(axis=ax).var() / total for ax in _OTHER_AXES))


def _layer_axis(phi: np.ndarray) -> int | None:
    """The axis a of the largest var(p_a) (the normal of the layers), None for a non-finite or uniform φ."""
    v = np.array([phi.mean(axis=ax).var() for ax in _OTHER_AXES])
    return int(np.argmax(v)) if np.all(np.isfinite(v)) and v.max() > 0 else None


def change_up_to_translation(new, old) -> tuple[float, list[int]]:
    """rms(new − old rolled periodically by d), minimised over integer shifts d = (dx, dy, dz), and d.

    d maximises the periodic cross-correlation of the mean-free fields (FFT), i.e. minimises
    Σ(new − roll(old, d))²; each component is in (−n/2, n/2] (for even n; n the axis length).
    rms 0 means ``new`` is ``old`` translated by d (``np.roll(old, d, axis=(0, 1, 2))``).
    A sub-cell translation leaves a remainder: use :func:`layer_shift` for layers.

    new, old : arrays (X, Y, Z) of equal shape (note the order: new first). Returns (rms, d).
    """
    b, a = _frame_pair(old, new)
    corr = np.fft.ifftn(np.fft.fftn(a - a.mean()) * np.conj(np.fft.fftn(b - b.mean()))).real
    d = np.unravel_index(int(np.argmax(corr)), corr.shape)
    shifted = np.roll(b, d, axis=(0, 1, 2))
    return float(np.sqrt(np.mean((a - shifted) ** 2))), [int(k if k <= n // 2 else k - n) for k, n in zip(d, a.shape)]


def layer_shift(old, new, axis: int) -> float:
    """Signed translation (in cells) of the layers along ``axis`` from ``old`` to ``new``, sub-cell.

    With p(x) = ⟨φ⟩ over the two other axes (the 1D profile, n = its length) and its first
    Fourier mode P₁ = Σ_x p(x) e^{−2πi x/n}, a rigid periodic translation p_new(x) = p_old(x − s)
    multiplies P₁ by e^{−2πi s/n}, so

        s = −n/(2π) · arg(P₁_new · conj P₁_old)    ∈ (−n/2, n/2].

    Exact (to round-off) for an integer roll of any profile and for a sub-cell translation of a
    band-limited profile (Fourier modes below n/2). A sampled tanh interface is not band-limited:
    the continuous modes k = 1 ± n, 1 ± 2n, ... alias onto the sampled first mode and move with
    other phases, an error of order n/(2π) · |c_{1+n} / c_1| ~ n/(2π) · e^{−π² w} (the modes of
    tanh(x/w) decay like e^{−π² w k / n}): measured 3e-4 cells for w = 1 on 32 cells (the
    equilibrium width of the shipped model's network grid), 4e-8 for w = 2, 2e-15 for w = 4.24
    (tests/test_metrics.py). Translations by more than n/2 between the two frames alias (compare
    frames closer in time and add the shifts up, as :func:`stationarity` does).

    This is the measure for layered states (:func:`layered_fraction` ≈ 1, one period of layers
    per box along ``axis``, so P₁ ≠ 0); for other fields it is the translation of the first
    profile mode only. NaN if P₁ of either frame vanishes (|P₁| < 1e-9 · Σ|p − p̄|, e.g. the
    profile along an axis parallel to the layers, which is flat) or a frame is not finite.

    old, new : arrays (X, Y, Z) of equal shape; axis : 0, 1 or 2. Returns a float (cells).
    """
    old, new = _frame_pair(old, new)
    axis = _axis(axis)
    n = old.shape[axis]
    modes = []
    for phi in (old, new):
        p = phi.mean(axis=_OTHER_AXES[axis])  # the profile along `axis`, (n,)
        P1 = complex(np.fft.fft(p)[1]) if n > 1 else 0j
        scale = float(np.sum(np.abs(p - p.mean())))
        if not (np.isfinite(P1) and scale > 0 and abs(P1) >= 1e-9 * scale):
            return float("nan")
        modes.append(P1)
    s = -n / (2.0 * math.pi) * float(np.angle(modes[1] * np.conj(modes[0])))
    return s + n if s <= -n / 2.0 else s


def layer_shifts(old, new) -> np.ndarray:
    """:func:`layer_shift` along the three axes: float64 array (3,) in cells (NaN along an axis
    where the profile is flat, e.g. the two axes parallel to flat layers)."""
    old, new = _frame_pair(old, new)
    return np.array([layer_shift(old, new, a) for a in range(3)], dtype=np.float64)


def interface_velocity(old, new, steps, dx: float = 1.0):
    """rms normal speed of the interfaces between two frames ``steps`` steps apart, per 10⁴ steps.

        v = δ(new, old) / steps · 10⁴,   δ = sqrt(Σ(φ_new − φ_old)² / Σ|∇φ_old|²)

    (:func:`interface_displacement` with ``old`` as the reference; module docstring, paper
    appendix C). Units: length of ``dx`` per 10⁴ steps, i.e. cells per 10⁴ steps for dx = 1.
    δ is unsigned (an rms over all interfaces) and first order in the displacement. For a rigid
    shift d of tanh interfaces of width w (φ = ½(1 + tanh(x/w))), δ/|d| is 1.007 for w = 4.24,
    1.03 for w = 2 and 1.11 for w = 1.06 (the shipped model's network grid) at small d (central
    differences underestimate the steepest gradients), falls to 1 at d = 2 cells (an identity of
    the central difference) and below for larger d (0.84 at d = 4 for w = 1.06: the change
    saturates once the interfaces have moved off their old positions). So compare frames at most
    ~2 cells of motion apart (as :func:`stationarity` does, pair by pair). A sub-cell translation
    of a layer is measured too (which an integer-translation test misses).

    old, new : arrays (X, Y, Z) of equal shape (or (T, X, Y, Z), per frame); steps : > 0.
    Returns a float (array (T,) for series); NaN where ``old`` has no gradient.
    """
    try:
        steps = float(steps)
    except (TypeError, ValueError):
        raise ValueError(f"steps must be a positive number, got {steps!r}") from None
    if not (steps > 0 and math.isfinite(steps)):
        raise ValueError(f"steps must be a positive number, got {steps!r}")
    return interface_displacement(new, old, dx=dx) / steps * 1e4


def stationarity(frames, steps_between, tail_steps=None, dx: float = 1.0) -> dict:
    """How stationary the end of a rollout is: numbers over its last ``tail_steps`` steps.

    Parameters
    ----------
    frames : array (T, X, Y, Z), T ≥ 2, float, consecutive frames ``steps_between`` steps apart
        (e.g. a rollout's checkpoints, frame 0 the initial condition).
    steps_between : positive int, steps between consecutive frames.
    tail_steps : steps of the tail, a positive multiple of ``steps_between`` of at most
        (T − 1) · steps_between; None: the last half of the rollout (⌊(T − 1)/2⌋ frame intervals,
        at least one).
    dx : grid spacing for the interface velocity (1: cells).

    Returns a dict (floats, NaN where undefined; lengths in cells of this grid, or units of
    ``dx`` for the velocity) with, for L = frames[−1] and A = frames[−1 − m], m = tail_steps /
    steps_between:

    * ``steps_between``, ``tail_steps``
    * ``rms_change``: sqrt(mean (L − A)²)
    * ``rms_change_up_to_translation``, ``translation``: :func:`change_up_to_translation` (L, A)
      (the best periodic integer translation [dx, dy, dz] and the rms change after undoing it)
    * ``layered_fraction``: of L; ``layer_axis``: the axis normal to the layers (argmax of the
      profile variance; None for a uniform or non-finite field)
    * ``interface_velocity``: mean over the m consecutive pairs in the tail of
      :func:`interface_velocity` (per 10⁴ steps)
    * ``layer_shift``: per axis, Σ of :func:`layer_shift` over the consecutive pairs of the tail
      (cells; may exceed n/2 when the layers travel), list of 3; NaN along axes with a flat profile
      ``layer_shift_per_1e4_steps``: the same / tail_steps · 10⁴
    """
    frames = _series(frames, "frames")
    T = frames.shape[0]
    if T < 2:
        raise ValueError(f"stationarity needs at least 2 frames, got {T}")
    if isinstance(steps_between, bool) or not isinstance(steps_between, (int, np.integer)) or steps_between < 1:
        raise ValueError(f"steps_between must be a positive integer, got {steps_between!r}")
    steps_between = int(steps_between)
    if tail_steps is None:
        m = max(1, (T - 1) // 2)
    else:
        if (
            isinstance(tail_steps, bool)
            or not isinstance(tail_steps, (int, np.integer))
            or tail_steps < 1
            or tail_steps % steps_between
            or tail_steps // steps_between > T - 1
        ):
            raise ValueError(
                f"tail_steps must be a positive multiple of steps_between = {steps_between} and at "
                f"most {(T - 1) * steps_between} (the {T} frames), got {tail_steps!r}"
            )
        m = int(tail_steps) // steps_between
    tail = frames[T - 1 - m :].astype(np.float64)
    last, first = tail[-1], tail[0]
    with np.errstate(all="ignore"):
        moved, shift = change_up_to_translation(last, first)
        pairs = list(zip(tail[:-1], tail[1:]))
        velocity = np.mean([interface_velocity(a, b, steps_between, dx=dx) for a, b in pairs])
        shifts = np.sum([layer_shifts(a, b) for a, b in pairs], axis=0)
        out = {
            "steps_between": steps_between,
            "tail_steps": m * steps_between,
            "rms_change": float(np.sqrt(np.mean((last - first) ** 2))),
            "rms_change_up_to_translation": moved,
            "translation": shift,
            "layered_fraction": layered_fraction(last),
            "layer_axis": _layer_axis(last),
            "interface_velocity": float(velocity),
            "layer_shift": [float(s) for s in shifts],
            "layer_shift_per_1e4_steps": [float(s) / (m * steps_between) * 1e4 for s in shifts],
        }
    return out


# -- JSON ---------------------------------------------------------------------------------------
def _json(x):
    """:func:`ch_numba.files.json_safe` (the project's one JSON sanitiser) under the name docs/reproduce.py
    uses; new code calls ``json_safe`` itself."""
    from ch_numba.files import json_safe

    return json_safe(x)
