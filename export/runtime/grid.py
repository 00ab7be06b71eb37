"""The network's grid: a ground-truth grid divided by the model's downscale factor, at least the kernel.

A model with downscale factor f runs on the grid (X/f, Y/f, Z/f) of the ground truth's (X, Y, Z)
(nearest sampling, every f-th voxel: :mod:`export.runtime.resample`), so the ground-truth grid must be
divisible by f; and each network axis must hold at least the kernel size k: a periodic k³ stencil on
fewer than k voxels wraps the grid onto itself, nothing the network was trained on. These two
checks and their one-line messages are written once here (stdlib only, no project imports, so that
the torch-free runtime, the rollout command, training and evaluation can all call them).
"""

from __future__ import annotations

__all__ = ["grid_text", "downscaled_grid", "check_kernel", "network_grid"]


def grid_text(shape) -> str:
    """A grid as the messages write it: ``(16, 16, 32)`` -> ``"16x16x32"``."""
    return "x".join(str(int(n)) for n in shape)


def downscaled_grid(shape, factor: int, *, what: str = "the grid", prefix: str = "") -> tuple[int, ...]:
    """``shape // factor`` per axis; ValueError (one line: ``prefix``, ``what``, the grid) unless
    ``factor`` divides every axis."""
    shape, factor = tuple(int(n) for n in shape), int(factor)
    if any(n % factor for n in shape):
        raise ValueError(f"{prefix}{what} {grid_text(shape)} is not divisible by the model's downscale factor {factor}")
    return tuple(n // factor for n in shape)


def check_kernel(
    shape,
    factor: int,
    kernel: int,
    *,
    what: str = "the grid",
    prefix: str = "",
    source: str | None = None,
    cause: str | None = None,
    remedy: str | None = None,
) -> tuple[int, ...]:
    """The network grid ``shape // factor`` (floor) per axis; ValueError if it is smaller than
    ``kernel`` along an axis, one line::

        {prefix}{cause} turns {what} X×Y×Z[ of {source}] into x×y×z, smaller than the model's kernel k
        along an axis; {remedy}

    ``cause`` defaults to "downscaling by f" and ``remedy`` to the smallest grid side that works,
    k · f; without downscaling (f = 1) the message reads "{prefix}{what} X×Y×Z is smaller than ...".
    """
    shape, factor, kernel = tuple(int(n) for n in shape), int(factor), int(kernel)
    net = tuple(n // factor for n in shape)
    if min(net) < kernel:
        of = f" of {source}" if source is not None else ""
        if remedy is None:
            remedy = f"use a grid of at least {kernel * factor} per side"
        if factor == 1 and cause is None:
            head = f"{prefix}{what} {grid_text(shape)}{of} is"
        else:
            cause = cause if cause is not None else f"downscaling by {factor}"
            head = f"{prefix}{cause} turns {what} {grid_text(shape)}{of} into {grid_text(net)},"
        raise ValueError(f"{head} smaller than the model's kernel {kernel} along an axis; {remedy}")
    return net


def network_grid(shape, factor: int, kernel: int, *, what: str = "the grid", prefix: str = "") -> tuple[int, ...]:
    """The network grid of a ground-truth grid ``shape`` (X, Y, Z): :func:`downscaled_grid`, then
    :func:`check_kernel` (the same ``what`` and ``prefix``). Returns ``shape // factor``."""
    downscaled_grid(shape, factor, what=what, prefix=prefix)
    return check_kernel(shape, factor, kernel, what=what, prefix=prefix)
