r"""Stationarity: the stationary index of a run, and how still (or how layered, how drifting) the end
of a rollout is (numpy only).

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
* :func:`interface_velocity` — δ (:mod:`surrogate.metrics.errors`) between two frames of one
  rollout, per 10⁴ steps: the rms normal speed of the interfaces, whatever their shape.
* :func:`stationarity` — all of these over the last ``tail_steps`` steps of a rollout.
"""

from __future__ import annotations

import math

import numpy as np

from ch_numba.params import wall_axes  # stdlib only: (x, y, z) booleans of the wall axes

from ._checks import _numeric, _series
from .errors import interface_displacement

__all__ = [
    "stationary_index",
    "layered_fraction",
    "change_up_to_translation",
    "layer_shift",
    "layer_shifts",
    "interface_velocity",
    "stationarity",
]


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


def change_up_to_translation(new, old, boundary=None) -> tuple[float, list[int]]:
    """rms(new − old rolled periodically by d), minimised over integer shifts d = (dx, dy, dz), and d.

    d maximises the periodic cross-correlation of the mean-free fields (FFT), i.e. minimises
    Σ(new − roll(old, d))²; each component is in (−n/2, n/2] (for even n; n the axis length).
    rms 0 means ``new`` is ``old`` translated by d (``np.roll(old, d, axis=(0, 1, 2))``).
    A sub-cell translation leaves a remainder: use :func:`layer_shift` for layers.

    new, old : arrays (X, Y, Z) of equal shape (note the order: new first). Returns (rms, d).
    boundary : None (periodic) or ``ch_numba.CHParams.boundary``'s forms: no translation along a wall axis
    (d is 0 there: a wall does not move).
    """
    b, a = _frame_pair(old, new)
    corr = np.fft.ifftn(np.fft.fftn(a - a.mean()) * np.conj(np.fft.fftn(b - b.mean()))).real
    for axis, wall in enumerate(wall_axes(boundary)):
        if wall:  # only shifts 0 along this axis
            keep = [slice(None)] * 3
            keep[axis] = slice(1, None)
            corr[tuple(keep)] = -np.inf
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


def interface_velocity(old, new, steps, dx: float = 1.0, boundary=None):
    """rms normal speed of the interfaces between two frames ``steps`` steps apart, per 10⁴ steps.

        v = δ(new, old) / steps · 10⁴,   δ = sqrt(Σ(φ_new − φ_old)² / Σ|∇φ_old|²)

    (:func:`interface_displacement` with ``old`` as the reference; :mod:`surrogate.metrics.errors`, paper
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
    boundary : None (periodic) or ``ch_numba.CHParams.boundary``'s forms (∇ with mirror ghosts across walls).
    Returns a float (array (T,) for series); NaN where ``old`` has no gradient.
    """
    try:
        steps = float(steps)
    except (TypeError, ValueError):
        raise ValueError(f"steps must be a positive number, got {steps!r}") from None
    if not (steps > 0 and math.isfinite(steps)):
        raise ValueError(f"steps must be a positive number, got {steps!r}")
    return interface_displacement(new, old, dx=dx, boundary=boundary) / steps * 1e4


def stationarity(frames, steps_between, tail_steps=None, dx: float = 1.0, boundary=None) -> dict:
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
    boundary : None (periodic) or ``ch_numba.CHParams.boundary``'s forms: along a wall axis no translation
        is undone (it is 0 in ``translation``), the layer shift is NaN (layers do not travel through a
        wall) and ∇ uses mirror ghosts.

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
        moved, shift = change_up_to_translation(last, first, boundary)
        pairs = list(zip(tail[:-1], tail[1:]))
        velocity = np.mean([interface_velocity(a, b, steps_between, dx=dx, boundary=boundary) for a, b in pairs])
        shifts = np.sum([layer_shifts(a, b) for a, b in pairs], axis=0)
        shifts[list(wall_axes(boundary))] = np.nan
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
