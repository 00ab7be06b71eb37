"""Resampling between the ground-truth grid and the network's grid (numpy only).

The network sees every f-th voxel of the ground-truth grid along periodic axes (:func:`downsample`,
f = the model's ``downscale``) and the mean of each block of f voxels along axes with no-flux walls;
:func:`upsample` repeats each network voxel f³ times. Why block means on a wall axis: the grid is
cell-centred and a wall lies half a cell outside the first and last voxel. A block mean puts coarse cell
j at the centre of fine cells fj..fj+f−1, so the coarse grid's walls coincide with the fine grid's
and the half-sample mirror of the coarse field is the coarse field of the fine mirror (the no-flux box
of N cells = the periodic box of 2N holding the field and its mirror image, restricted); every f-th
voxel would sit (f−1)/2 fine cells off those centres and break that mirror. On a periodic axis every
f-th voxel is what the models were trained on (nothing changes for periodic data). One definition, used by the
runners (:mod:`export.runtime.runner_base`: :class:`export.runtime.Rollout` and
:class:`surrogate.runner.TorchRunner`), the training data (:mod:`surrogate.data`) and the evaluation
(:mod:`surrogate.evaluate`), which import them from here.

This module imports numpy only, so the torch-free runtime can use it: the dependency arrows go
``surrogate -> export -> numpy``, never from :mod:`export.runtime` to :mod:`surrogate`.
"""

from __future__ import annotations

import numpy as np

from ch_numba.params import wall_axes  # stdlib only; (x, y, z) booleans of the wall axes

__all__ = ["downsample", "upsample", "wall_axes"]


def _factor(factor) -> int:
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ValueError(f"factor must be a positive integer, got {factor!r}")
    return int(factor)


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


def downsample(frames, factor: int = 2, boundary=None) -> np.ndarray:
    """The network's grid from the ground truth's, along each of the last three (spatial) axes: on a periodic
    axis every factor-th voxel from voxel 0 (``a[..., ::f, ::f, ::f]`` for a periodic box, 64³ -> 32³ for
    f = 2), on an axis with no-flux walls (``boundary``, :func:`wall_axes`) the mean of each block of f
    voxels, in float64 and cast back (module docstring). Spatial sizes must be multiples of ``factor``.
    Returns a contiguous copy, same dtype; ``downsample(upsample(a, f), f, boundary) == a`` (to the
    dtype's round-off of a mean of f equal numbers: exactly).
    """
    f = _factor(factor)
    a = np.asarray(frames)
    if a.ndim < 3:
        raise ValueError(f"expected frames of shape (..., X, Y, Z), got {a.shape}")
    if any(n % f for n in a.shape[-3:]):
        raise ValueError(f"spatial shape {a.shape[-3:]} is not divisible by the factor {f}")
    walls = wall_axes(boundary)
    for axis, wall in zip((-3, -2, -1), walls):
        if not wall:
            a = a[(Ellipsis, slice(None, None, f)) + (slice(None),) * (-axis - 1)]
        elif f > 1:
            shape = a.shape[: a.ndim + axis] + (a.shape[axis] // f, f) + a.shape[a.ndim + axis + 1 :]
            a = a.reshape(shape).mean(axis=axis, dtype=np.float64).astype(_mean_dtype(frames), copy=False)
    return np.ascontiguousarray(a)


def _mean_dtype(frames) -> np.dtype:
    """The dtype of a block mean: the input's float type (integers: float64)."""
    dt = np.asarray(frames).dtype
    return dt if np.issubdtype(dt, np.floating) else np.dtype(np.float64)
