"""Noise initial conditions: periodic Perlin noise (the paper's ICs, equal to the ``perlin-noise`` package's
values; see the package docstring; not periodic along axes with no-flux walls), the Perlin IC, white noise
("random") and the perturbed plane ("slice")."""

from __future__ import annotations

import numpy as np

from ..params import wall_axes
from .checks import _check_axis, _check_level, _check_seed, _frequencies, _shape3

# voxel budget of one block of the vectorised Perlin evaluation (bounds the temporaries)
_BLOCK_VOXELS = 1 << 20


def _fade(t: np.ndarray) -> np.ndarray:
    """The package's smoothstep 6t⁵ − 15t⁴ + 10t³ (same operation order)."""
    return 6 * t**5 - 15 * t**4 + 10 * t**3


def _lattice_gradients(frequency: int, seed: int) -> np.ndarray:
    """The package's gradient vectors g(c) for the lattice points c ∈ {0..f−1}³.

    Returns
    -------
    g : float64 array (f, f, f, 3), g[c] = sample_vector(3, seed · hasher(c, (f, f, f))).
    """
    from perlin_noise.tools import hasher, sample_vector

    tiles = (frequency,) * 3
    g = np.empty((frequency, frequency, frequency, 3))
    for c in np.ndindex(frequency, frequency, frequency):
        g[c] = sample_vector(dimensions=3, seed=seed * hasher(c, tiles))
    return g


def _axis_terms(index: np.ndarray, n: int, frequency: int, wall: bool = False):
    """Per-axis quantities of the package's interpolation for voxel indices `index` of an axis of n voxels.

    The coordinate is computed as the package does, u = ((i/n) mod 1) · f. Returns, for the two
    lattice corners c0 = ⌊u⌋ and c0 + 1: their lattice indices mod f, the offsets u − c and the
    fade weights fade(1 − |u − c|); each a list of two arrays of len(index). Along an axis with walls
    (``wall``) the lattice is not wrapped: u = i · f / n and the corners are 0 .. f (f + 1 points).
    """
    if wall:
        u = np.asarray(index, dtype=np.int64) * (frequency / n)
    else:
        u = (np.asarray(index, dtype=np.int64) / n % 1.0) * frequency
    c0 = np.floor(u)
    cells, offsets, weights = [], [], []
    for o in (0, 1):
        d = u - (c0 + o)
        cells.append(c0.astype(np.int64) + o if wall else (c0.astype(np.int64) + o) % frequency)
        offsets.append(d)
        weights.append(_fade(1 - np.abs(d)))
    return cells, offsets, weights


def _noise_block(g: np.ndarray, frequency: int, shape, ix, iy, iz, walls=(False, False, False)) -> np.ndarray:
    """Noise at the voxels ix × iy × iz (index arrays) of a grid `shape`: float64 (len ix, len iy, len iz)."""
    (cx, rx, wx), (cy, ry, wy), (cz, rz, wz) = (
        _axis_terms(i, n, frequency, w) for i, n, w in zip((ix, iy, iz), shape, walls)
    )
    gx, gy, gz = g[..., 0], g[..., 1], g[..., 2]
    out = np.zeros((len(ix), len(iy), len(iz)))
    for ox in (0, 1):  # the corners in the package's order (itertools.product)
        a = cx[ox][:, None, None]
        x_off, x_w = rx[ox][:, None, None], wx[ox][:, None, None]
        for oy in (0, 1):
            b = cy[oy][None, :, None]
            y_off, xy_w = ry[oy][None, :, None], x_w * wy[oy][None, :, None]
            for oz in (0, 1):
                c = cz[oz][None, None, :]
                z_off = rz[oz][None, None, :]
                dot = gx[a, b, c] * x_off + gy[a, b, c] * y_off + gz[a, b, c] * z_off
                out += xy_w * wz[oz][None, None, :] * dot
    return out


def _noise_at(shape, frequency, seed: int, ix, iy, iz, walls=(False, False, False)) -> np.ndarray:
    """Summed noise over `frequency` (list of ints) at voxels ix × iy × iz, in blocks along x; ``walls``
    (x, y, z): the axes along which the noise is not periodic (:func:`perlin_noise`)."""
    ix, iy, iz = (np.asarray(i, dtype=np.int64) for i in (ix, iy, iz))
    walls = tuple(bool(w) for w in walls)
    out = np.zeros((len(ix), len(iy), len(iz)))
    step = max(1, _BLOCK_VOXELS // max(1, len(iy) * len(iz)))
    for f in frequency:
        g = _lattice_gradients(f + 1 if any(walls) else f, seed)
        for start in range(0, len(ix), step):
            out[start : start + step] += _noise_block(g, f, shape, ix[start : start + step], iy, iz, walls)
    return out


def perlin_noise(shape, frequency=4, seed: int = 7, boundary="periodic") -> np.ndarray:
    """Periodic Perlin gradient noise, equal to the ``perlin-noise`` package's values.

    With ``boundary`` (``CHParams.boundary``'s forms) naming no-flux walls on some axes, the noise is
    not forced to be periodic along them: there the voxel coordinate is u = i · f / n (the box spans
    f lattice cells, correlation length n/f as on the periodic axes) and the lattice has f + 1 points
    with the package's gradient vectors of frequency f + 1 (periodic axes use its first f); the field
    then no longer equals the package's ``noise()`` values.

    Parameters
    ----------
    shape : (X, Y, Z) tuple of positive ints
        Grid size.
    frequency : int ≥ 1, or a sequence of them
        Lattice cells per side: the correlation length is N/f voxels and the field is
        exactly N-periodic. A sequence gives the sum of the noises at those frequencies.
    seed : int ≥ 1
        The package's seed (it treats 0 as "random", so 0 is refused).

    Returns
    -------
    n : float64 array (X, Y, Z)
        ``n[i, j, k] == PerlinNoise(octaves=f, seed=seed).noise([i/X, j/Y, k/Z], tile_sizes=[1, 1, 1])``
        to round-off (summed over f). ``|n|`` is typically below ~0.75 per frequency.

    Raises
    ------
    ValueError
        If the shape is not 3D, the frequency not a positive integer, or the seed not ≥ 1.
    """
    shape = _shape3(shape)
    seed = _check_seed(seed)
    freqs = _frequencies(frequency)
    return _noise_at(shape, freqs, seed, *(np.arange(n) for n in shape), walls=wall_axes(boundary))


def _scaled(noise: np.ndarray, mean: float, amplitude: float) -> np.ndarray:
    """mean + amplitude · noise / max|noise|, clipped to [0, 1], as float32."""
    peak = np.abs(noise).max()
    unit = noise / peak if peak > 0 else noise
    return np.clip(mean + amplitude * unit, 0.0, 1.0).astype(np.float32)


def perlin(
    shape, frequency=4, seed: int = 7, mean: float = 0.5, amplitude: float = 0.1, boundary="periodic"
) -> np.ndarray:
    """Perlin initial condition φ0 = mean + amplitude · n / max|n|, clipped to [0, 1].

    Parameters
    ----------
    shape : (X, Y, Z) tuple of positive ints
    frequency : int ≥ 1 or sequence of ints
        Lattice cells per side (correlation length N/f), see :func:`perlin_noise`.
    seed : int ≥ 1
    mean : float in [0, 1]
        φ̄ before clipping (the mean of φ0 is within a few ·amplitude/10 of it).
    amplitude : float in [0, 1]
        Largest deviation ``|φ0 − mean|`` (reached at the noise maximum unless clipped).
    boundary : "periodic" (default), "neumann" or three of them (x, y, z)
        Along axes with walls the noise is not periodic (:func:`perlin_noise`).

    Returns
    -------
    phi0 : float32 array (X, Y, Z), values in [0, 1]
    """
    mean, amplitude = _check_level(mean, amplitude)
    return _scaled(perlin_noise(shape, frequency, seed, boundary), mean, amplitude)


def white_noise(shape, seed: int = 7, mean: float = 0.5, amplitude: float = 0.1) -> np.ndarray:
    """The "random" kind (public name ``initial.random``): white noise φ0 = mean + amplitude · U(−1, 1),
    independent per voxel, clipped to [0, 1].

    No correlation length: its energy sits at the grid scale, which the Cahn-Hilliard flow
    damps within a few steps (the reason the data sets use Perlin noise).

    Parameters
    ----------
    shape : (X, Y, Z) tuple of positive ints
    seed : int ≥ 1
        Seed of ``numpy.random.default_rng``.
    mean, amplitude : float in [0, 1]

    Returns
    -------
    phi0 : float32 array (X, Y, Z)
    """
    shape = _shape3(shape)
    mean, amplitude = _check_level(mean, amplitude)
    rng = np.random.default_rng(_check_seed(seed))
    return np.clip(mean + amplitude * rng.uniform(-1.0, 1.0, shape), 0.0, 1.0).astype(np.float32)


def perturbed_plane(
    shape, seed: int = 7, mean: float = 0.5, amplitude: float = 0.1, axis: int = 0, frequency=4, boundary="periodic"
) -> np.ndarray:
    """The "slice" kind (public name ``initial.slice``): φ0 = mean everywhere except the central plane,
    which carries Perlin fluctuations.

    The paper's long-time test: only the plane at index N//2 along `axis` is perturbed, with
    the values of :func:`perlin_noise` on that plane scaled so that max|φ0 − mean| = amplitude
    (then clipped to [0, 1]).

    Parameters
    ----------
    shape : (X, Y, Z) tuple of positive ints
    seed : int ≥ 1
    mean, amplitude : float in [0, 1]
    axis : 0, 1 or 2
        The axis normal to the perturbed plane.
    frequency : int ≥ 1 or sequence of ints
        Perlin lattice cells per side (in-plane correlation length N/f).
    boundary : "periodic" (default), "neumann" or three of them (x, y, z)
        The in-plane noise is not periodic along axes with walls (:func:`perlin_noise`).

    Returns
    -------
    phi0 : float32 array (X, Y, Z)
    """
    shape = _shape3(shape)
    seed = _check_seed(seed)
    freqs = _frequencies(frequency)
    mean, amplitude = _check_level(mean, amplitude)
    axis = _check_axis(axis)
    index = [np.arange(n) for n in shape]
    index[axis] = np.array([shape[axis] // 2])
    plane = _scaled(_noise_at(shape, freqs, seed, *index, walls=wall_axes(boundary)), mean, amplitude)
    phi = np.full(shape, mean, dtype=np.float32)
    where = [slice(None)] * 3
    where[axis] = slice(shape[axis] // 2, shape[axis] // 2 + 1)
    phi[tuple(where)] = plane
    return phi
