"""Geometric initial conditions: a sphere and periodic layers (slabs), sharp or with a tanh interface."""

from __future__ import annotations

import numpy as np

from .checks import _check_axis, _positive_int, _shape3


def _profile(signed_distance: np.ndarray, width) -> np.ndarray:
    """1 inside (distance < 0), 0 outside: sharp, or ½(1 − tanh(d / width)) when `width` is given."""
    if width is None:
        return (signed_distance < 0).astype(np.float64)
    width = float(width)
    if not width > 0:
        raise ValueError(f"width must be > 0 (grid units) or None for a sharp interface, got {width}")
    return 0.5 * (1.0 - np.tanh(signed_distance / width))


def sphere(
    shape, radius=None, center=None, inside: float = 1.0, outside: float = 0.0, width=None, boundary="periodic"
) -> np.ndarray:
    """A sphere of φ = inside in a matrix of φ = outside.

    Voxel (i, j, k) sits at (i + ½, j + ½, k + ½); r is its periodic (minimum-image) distance
    to `center` (the plain distance along axes with no-flux walls, ``boundary``),
    and φ0 = outside + (inside − outside) · p(r − radius) with p the sharp step
    (r < radius) or, given `width`, ½(1 − tanh((r − radius)/width)).

    Parameters
    ----------
    shape : (X, Y, Z) tuple of positive ints
    radius : float > 0, optional
        In grid units; default min(shape)/4.
    center : (3,) floats, optional
        In grid units; default the box centre (X/2, Y/2, Z/2).
    inside, outside : float
        φ inside and outside the sphere.
    width : float > 0 or None
        tanh interface width (grid units); None (default) for a sharp 0/1 interface.
        ``width = √2·ε`` is the equilibrium Cahn-Hilliard profile.

    Returns
    -------
    phi0 : float32 array (X, Y, Z)
    """
    shape = _shape3(shape)
    radius = min(shape) / 4 if radius is None else float(radius)
    if not radius > 0:
        raise ValueError(f"radius must be > 0, got {radius}")
    center = np.array([n / 2 for n in shape] if center is None else center, dtype=float)
    if center.shape != (3,) or not np.all(np.isfinite(center)):
        raise ValueError(f"center must be three finite numbers (x, y, z), got {center!r}")
    from ..params import wall_axes

    walls = wall_axes(boundary)
    d2 = np.zeros(shape)
    for axis, n in enumerate(shape):
        x = np.arange(n) + 0.5 - center[axis]
        if not walls[axis]:
            x = x - n * np.round(x / n)  # minimum image
        d2 = d2 + (x**2).reshape([-1 if a == axis else 1 for a in range(3)])
    p = _profile(np.sqrt(d2) - radius, width)
    return (outside + (inside - outside) * p).astype(np.float32)


def layers(shape, n_layers: int = 2, axis: int = 0, mean: float = 0.5, width=None) -> np.ndarray:
    """`n_layers` periodic slabs of φ = 1 in φ = 0, stacked along `axis`.

    Along `axis` (N voxels, period P = N / n_layers) each period holds one slab of
    thickness mean·P centred in it, so the φ = 1 volume fraction is `mean` (to within one
    voxel per interface for a sharp profile; exactly, up to tail overlap, for a tanh one).

    Parameters
    ----------
    shape : (X, Y, Z) tuple of positive ints
    n_layers : int, 1 ≤ n_layers ≤ N/2
    axis : 0, 1 or 2
        Normal of the slabs.
    mean : float in (0, 1)
        Volume fraction of φ = 1.
    width : float > 0 or None
        tanh interface width in grid units; None (default) for sharp interfaces.

    Returns
    -------
    phi0 : float32 array (X, Y, Z), constant in the planes normal to `axis`.
    """
    shape = _shape3(shape)
    axis = _check_axis(axis)
    n_layers = _positive_int(n_layers, "n_layers")
    n = shape[axis]
    if 2 * n_layers > n:
        raise ValueError(f"n_layers must be at most N/2 = {n // 2} along axis {axis}, got {n_layers}")
    mean = float(mean)
    if not 0.0 < mean < 1.0:
        raise ValueError(f"mean (volume fraction of the slabs) must be in (0, 1), got {mean}")
    period = n / n_layers
    x = (np.arange(n) + 0.5) % period  # position inside one period
    distance = np.abs(x - period / 2) - mean * period / 2  # < 0 inside the slab
    p = _profile(distance, width).reshape([-1 if a == axis else 1 for a in range(3)])
    return np.broadcast_to(p, shape).astype(np.float32)


slab = layers
