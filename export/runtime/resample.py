"""Nearest resampling between the ground-truth grid and the network's grid (numpy only).

The network sees every f-th voxel of the ground-truth grid (:func:`downsample`, f = the model's
``downscale``); :func:`upsample` repeats each network voxel f³ times. One definition, used by the
runners (:mod:`export.runtime.runner_base`: :class:`export.runtime.Rollout` and
:class:`surrogate.runner.TorchRunner`), the training data (:mod:`surrogate.data`) and the evaluation
(:mod:`surrogate.evaluate`), which import them from here.

This module imports numpy only, so the torch-free runtime can use it: the dependency arrows go
``surrogate -> export -> numpy``, never from :mod:`export.runtime` to :mod:`surrogate`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["downsample", "upsample"]


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
