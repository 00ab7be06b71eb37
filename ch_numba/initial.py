"""Initial conditions φ0 on the periodic (X, Y, Z) grid; every one seeded and deterministic.

All functions return float32 arrays of shape (X, Y, Z) with φ ∈ [0, 1] (φ = 1 and φ = 0
are the two phases), except :func:`perlin_noise`, which returns the raw float64 noise.

Perlin noise (the paper's ICs) equals the ``perlin-noise`` package's own values: for an
(Nx, Ny, Nz) grid, integer frequency f (lattice cells per side) and seed s ≥ 1,

    n(i, j, k) = PerlinNoise(octaves=f, seed=s).noise([i/Nx, j/Ny, k/Nz], tile_sizes=[1, 1, 1])
               = Σ_{c ∈ corners of the lattice cell of u}  Π_a fade(1 − |u_a − c_a|) · g(c mod f)·(u − c),
    u = ((i/Nx) mod 1 · f, (j/Ny) mod 1 · f, (k/Nz) mod 1 · f),   fade(t) = 6t⁵ − 15t⁴ + 10t³,

where g(c), c ∈ {0..f−1}³, is the package's random vector for lattice point c
(``sample_vector(3, s · hasher(c, (f, f, f)))``: three ``random.uniform(−1, 1)`` after
``random.seed``). The f³ vectors are taken from the package; the interpolation is evaluated
here with numpy for all voxels at once (≈ 30 ms for 64³; the package needs ~7 s). Because the
gradients depend on c mod f, the field is exactly periodic with period N along each axis and
smooth across the boundary; its correlation length is N/f voxels. A list of frequencies gives
the sum of the noises. Then

    perlin:  φ0 = mean + amplitude · n / max|n|,   clipped to [0, 1].

Other ICs (sharp 0/1 interfaces unless a tanh `width` is given; the equilibrium interface of
f = Wφ²(1−φ)² with gradient coefficient ε² is ½(1 + tanh(x/w)) with w = √2·ε/√W, i.e.
w ≈ 4.24 voxels for the paper's ε = 3):

    sphere:  φ0 = outside + (inside − outside) · ½(1 − tanh((r − R)/w)),  r the periodic distance
             to the centre (sharp: inside where r < R);
    layers:  n periodic slabs across one axis, φ = 1 on a fraction `mean` of each period;
    random:  φ0 = mean + amplitude · U(−1, 1) per voxel (white noise, no correlation length);
    slice:   φ0 = mean, except the central plane (index N//2 along `axis`), which carries the
             Perlin noise of that plane, scaled to max deviation `amplitude`;
    mesh:    a closed triangle mesh scaled into the box, φ = inside at voxel centres inside it
             (parity of the crossings of a ray along z through each (x, y) column);
    npy/h5:  a user's (X, Y, Z) array, or one frame of a ch3d data set.
"""

from __future__ import annotations

import logging
import operator

import numpy as np

from .cli_common import check_input_file
from .solver import PHYSICAL_RANGE

log = logging.getLogger(__name__)

KINDS = ("perlin", "sphere", "layers", "slab", "random", "slice", "mesh", "npy", "h5")

# voxel budget of one block of the vectorised Perlin evaluation (bounds the temporaries)
_BLOCK_VOXELS = 1 << 20
# pairs (triangle, ray) tested at once by the mesh voxeliser
_BLOCK_PAIRS = 1 << 21
# ray offsets from the column centres (grid units): small and irrational, so that no ray
# passes exactly through a mesh edge or vertex placed at a "nice" coordinate
_RAY_JITTER = (1e-6 * (np.sqrt(2.0) - 1.0), 1e-6 * (np.sqrt(3.0) - 1.0))


# --------------------------------------------------------------------------- input checks


def _positive_int(value, what: str) -> int:
    """`value` as a Python int ≥ 1, or a ValueError naming `what`."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{what} must be a positive integer, got {value!r}") from None
    if value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return value


def _shape3(shape) -> tuple[int, int, int]:
    """(X, Y, Z) as three Python ints ≥ 1."""
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(f"shape must be (X, Y, Z), got {shape!r}") from None
    if len(dims) != 3:
        raise ValueError(f"shape must be three positive integers (X, Y, Z), got {shape!r}")
    try:
        return tuple(_positive_int(n, "shape") for n in dims)
    except ValueError:
        raise ValueError(f"shape must be three positive integers (X, Y, Z), got {shape!r}") from None


def _check_seed(seed) -> int:
    try:
        return _positive_int(seed, "seed")
    except ValueError:
        raise ValueError(f"seed must be a positive integer (perlin-noise treats 0 as 'random'), got {seed!r}") from None


def _check_axis(axis) -> int:
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)) or axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis!r}")
    return int(axis)


def _check_level(mean, amplitude) -> tuple[float, float]:
    mean, amplitude = float(mean), float(amplitude)
    if not 0.0 <= mean <= 1.0:
        raise ValueError(f"mean must be in [0, 1], got {mean}")
    if not 0.0 <= amplitude <= 1.0:
        raise ValueError(f"amplitude must be in [0, 1], got {amplitude}")
    return mean, amplitude


def _frequencies(frequency) -> list[int]:
    """An int, or a non-empty sequence of ints, as a list of positive ints."""
    values = list(frequency) if isinstance(frequency, (list, tuple, np.ndarray)) else [frequency]
    if len(values) == 0:
        raise ValueError("frequency list is empty")
    try:
        return [_positive_int(f, "frequency") for f in values]
    except ValueError:
        raise ValueError(
            f"frequency must be a positive integer (lattice cells per side) or a list of them, got {frequency!r}"
        ) from None


# --------------------------------------------------------------------------- Perlin noise


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


def _axis_terms(index: np.ndarray, n: int, frequency: int):
    """Per-axis quantities of the package's interpolation for voxel indices `index` of an axis of n voxels.

    The coordinate is computed as the package does, u = ((i/n) mod 1) · f. Returns, for the two
    lattice corners c0 = ⌊u⌋ and c0 + 1: their lattice indices mod f, the offsets u − c and the
    fade weights fade(1 − |u − c|); each a list of two arrays of len(index).
    """
    u = (np.asarray(index, dtype=np.int64) / n % 1.0) * frequency
    c0 = np.floor(u)
    cells, offsets, weights = [], [], []
    for o in (0, 1):
        d = u - (c0 + o)
        cells.append((c0.astype(np.int64) + o) % frequency)
        offsets.append(d)
        weights.append(_fade(1 - np.abs(d)))
    return cells, offsets, weights


def _noise_block(g: np.ndarray, frequency: int, shape, ix, iy, iz) -> np.ndarray:
    """Noise at the voxels ix × iy × iz (index arrays) of a grid `shape`: float64 (len ix, len iy, len iz)."""
    (cx, rx, wx), (cy, ry, wy), (cz, rz, wz) = (_axis_terms(i, n, frequency) for i, n in zip((ix, iy, iz), shape))
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


def _noise_at(shape, frequency, seed: int, ix, iy, iz) -> np.ndarray:
    """Summed noise over `frequency` (list of ints) at voxels ix × iy × iz, in blocks along x."""
    ix, iy, iz = (np.asarray(i, dtype=np.int64) for i in (ix, iy, iz))
    out = np.zeros((len(ix), len(iy), len(iz)))
    step = max(1, _BLOCK_VOXELS // max(1, len(iy) * len(iz)))
    for f in frequency:
        g = _lattice_gradients(f, seed)
        for start in range(0, len(ix), step):
            out[start : start + step] += _noise_block(g, f, shape, ix[start : start + step], iy, iz)
    return out


def perlin_noise(shape, frequency=4, seed: int = 7) -> np.ndarray:
    """Periodic Perlin gradient noise, equal to the ``perlin-noise`` package's values.

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
        to round-off (summed over f). |n| is typically below ~0.75 per frequency.

    Raises
    ------
    ValueError
        If the shape is not 3D, the frequency not a positive integer, or the seed not ≥ 1.
    """
    shape = _shape3(shape)
    seed = _check_seed(seed)
    freqs = _frequencies(frequency)
    return _noise_at(shape, freqs, seed, *(np.arange(n) for n in shape))


def _scaled(noise: np.ndarray, mean: float, amplitude: float) -> np.ndarray:
    """mean + amplitude · noise / max|noise|, clipped to [0, 1], as float32."""
    peak = np.abs(noise).max()
    unit = noise / peak if peak > 0 else noise
    return np.clip(mean + amplitude * unit, 0.0, 1.0).astype(np.float32)


def perlin(shape, frequency=4, seed: int = 7, mean: float = 0.5, amplitude: float = 0.1) -> np.ndarray:
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
        Largest deviation |φ0 − mean| (reached at the noise maximum unless clipped).

    Returns
    -------
    phi0 : float32 array (X, Y, Z), values in [0, 1]
    """
    mean, amplitude = _check_level(mean, amplitude)
    return _scaled(perlin_noise(shape, frequency, seed), mean, amplitude)


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
    shape, seed: int = 7, mean: float = 0.5, amplitude: float = 0.1, axis: int = 0, frequency=4
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
    plane = _scaled(_noise_at(shape, freqs, seed, *index), mean, amplitude)
    phi = np.full(shape, mean, dtype=np.float32)
    where = [slice(None)] * 3
    where[axis] = slice(shape[axis] // 2, shape[axis] // 2 + 1)
    phi[tuple(where)] = plane
    return phi


# --------------------------------------------------------------------------- geometric shapes


def _profile(signed_distance: np.ndarray, width) -> np.ndarray:
    """1 inside (distance < 0), 0 outside: sharp, or ½(1 − tanh(d / width)) when `width` is given."""
    if width is None:
        return (signed_distance < 0).astype(np.float64)
    width = float(width)
    if not width > 0:
        raise ValueError(f"width must be > 0 (grid units) or None for a sharp interface, got {width}")
    return 0.5 * (1.0 - np.tanh(signed_distance / width))


def sphere(shape, radius=None, center=None, inside: float = 1.0, outside: float = 0.0, width=None) -> np.ndarray:
    """A sphere of φ = inside in a matrix of φ = outside.

    Voxel (i, j, k) sits at (i + ½, j + ½, k + ½); r is its periodic (minimum-image) distance
    to `center`, and φ0 = outside + (inside − outside) · p(r − radius) with p the sharp step
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
    d2 = np.zeros(shape)
    for axis, n in enumerate(shape):
        x = np.arange(n) + 0.5 - center[axis]
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


# --------------------------------------------------------------------------- triangle meshes


def _edge(p: np.ndarray, q: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """2D edge function of the directed edge p → q at points (x, y): > 0 on its left.

    Computed from a canonical orientation of the edge (its lexicographically smaller end
    first) and then signed, so the two triangles sharing an edge get the identical value
    with opposite signs: a ray is claimed by exactly one of them (watertight test).
    """
    swap = (q[:, 0] < p[:, 0]) | ((q[:, 0] == p[:, 0]) & (q[:, 1] < p[:, 1]))
    a = np.where(swap[:, None], q, p)
    b = np.where(swap[:, None], p, q)
    e = (b[:, 0] - a[:, 0]) * (y - a[:, 1]) - (b[:, 1] - a[:, 1]) * (x - a[:, 0])
    return np.where(swap, -e, e)


def _voxelise(triangles: np.ndarray, shape) -> np.ndarray:
    """Inside test at voxel centres by the parity of ray crossings.

    One ray along +z through each (x, y) column centre (i + ½ + δx, j + ½ + δy), δ tiny and
    irrational. For every (triangle, ray) pair whose xy bounding boxes overlap, the
    xy-projected barycentric (edge-function) test says whether the ray crosses the
    triangle, and the barycentric interpolation of the vertex z gives where. A voxel is
    inside when an odd number of crossings lie below its centre.

    Parameters
    ----------
    triangles : float64 array (T, 3, 3)
        Vertex coordinates in grid units (voxel i spans [i, i + 1)).
    shape : (X, Y, Z)

    Returns
    -------
    inside : bool array (X, Y, Z)
    """
    nx, ny, nz = shape
    jx, jy = _RAY_JITTER
    zc = np.arange(nz) + 0.5
    flips = np.zeros(nx * ny * (nz + 1), dtype=np.uint8)  # crossing parity per column and voxel slot
    lo, hi = triangles[:, :, :2].min(axis=1), triangles[:, :, :2].max(axis=1)
    i0 = np.clip(np.ceil(lo[:, 0] - 0.5 - jx), 0, nx).astype(np.int64)
    i1 = np.clip(np.floor(hi[:, 0] - 0.5 - jx) + 1, 0, nx).astype(np.int64)
    j0 = np.clip(np.ceil(lo[:, 1] - 0.5 - jy), 0, ny).astype(np.int64)
    j1 = np.clip(np.floor(hi[:, 1] - 0.5 - jy) + 1, 0, ny).astype(np.int64)
    wi, wj = np.maximum(i1 - i0, 0), np.maximum(j1 - j0, 0)
    pairs = wi * wj
    keep = np.nonzero(pairs)[0]
    # blocks of triangles with about _BLOCK_PAIRS candidate pairs each
    bounds = np.searchsorted(np.cumsum(pairs[keep]), np.arange(1, 1 + pairs.sum() // _BLOCK_PAIRS) * _BLOCK_PAIRS)
    for block in np.split(keep, np.unique(bounds)):
        if len(block) == 0:
            continue
        count = pairs[block]
        t = np.repeat(block, count)
        offset = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
        ci, cj = i0[t] + offset // wj[t], j0[t] + offset % wj[t]
        x, y = ci + 0.5 + jx, cj + 0.5 + jy
        a, b, c = triangles[t, 0], triangles[t, 1], triangles[t, 2]
        la, lb, lc = _edge(b, c, x, y), _edge(c, a, x, y), _edge(a, b, x, y)  # unnormalised barycentrics
        hit = ((la > 0) & (lb > 0) & (lc > 0)) | ((la < 0) & (lb < 0) & (lc < 0))
        la, lb, lc, a, b, c = la[hit], lb[hit], lc[hit], a[hit], b[hit], c[hit]
        z = (la * a[:, 2] + lb * b[:, 2] + lc * c[:, 2]) / (la + lb + lc)
        k = np.searchsorted(zc, z, side="right")  # first voxel above the crossing (nz: above all)
        slots, counts = np.unique((ci[hit] * ny + cj[hit]) * (nz + 1) + k, return_counts=True)
        flips[slots[counts % 2 == 1]] ^= 1
    flips = flips.reshape(nx, ny, nz + 1)
    odd = int(np.count_nonzero(np.bitwise_xor.reduce(flips, axis=2)))
    if odd:
        log.warning("mesh voxelisation: %d of %d rays crossed the surface an odd number of times", odd, nx * ny)
    return np.bitwise_xor.accumulate(flips[:, :, :nz], axis=2).astype(bool)


def mesh(path, shape, padding: float = 0.1, inside: float = 1.0, outside: float = 0.0) -> np.ndarray:
    """Voxelise a closed triangle mesh file (STL/OBJ/PLY, read with trimesh) into the box.

    The mesh is scaled uniformly by s = min_a N_a(1 − 2·padding)/extent_a and centred in the
    box (bounding-box centre → (X/2, Y/2, Z/2)), so it keeps a margin of at least
    `padding`·N on every side. Voxels whose centres lie inside get φ = inside, the rest
    φ = outside (sharp interface; inside/outside by ray parity, see :func:`_voxelise`).

    Parameters
    ----------
    path : str or Path
        A watertight triangle mesh in any format trimesh reads.
    shape : (X, Y, Z) tuple of positive ints
    padding : float in [0, 0.5)
        Margin as a fraction of the box edge.
    inside, outside : float

    Returns
    -------
    phi0 : float32 array (X, Y, Z)

    Raises
    ------
    ValueError
        Missing or unreadable file, no triangles, or a mesh that is not watertight.
    """
    shape = _shape3(shape)
    padding = float(padding)
    if not 0.0 <= padding < 0.5:
        raise ValueError(f"padding must be in [0, 0.5), got {padding}")
    path = check_input_file(path, "mesh file")
    import trimesh

    try:
        m = trimesh.load(path, force="mesh")
    except Exception as e:  # trimesh raises many types for unreadable files
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"cannot read mesh {path}: {reason}") from None
    if not isinstance(m, trimesh.Trimesh) or len(m.faces) == 0:
        raise ValueError(f"cannot read mesh {path}: no triangles found")
    if not m.is_watertight:
        raise ValueError(f"mesh {path} is not closed (not watertight), so inside/outside is undefined")
    lo, hi = m.bounds
    box = np.array(shape, dtype=float)
    scale = np.min(box * (1 - 2 * padding) / np.maximum(hi - lo, 1e-300))
    triangles = (np.asarray(m.triangles, dtype=float) - (lo + hi) / 2) * scale + box / 2
    return np.where(_voxelise(triangles, shape), inside, outside).astype(np.float32)


# --------------------------------------------------------------------------- user arrays


def _check_array(a, where: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 3:
        raise ValueError(f"{where}: expected a 3D array (X, Y, Z), got shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"{where}: expected real numbers, got dtype {a.dtype}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{where}: contains NaN or Inf")
    a = a.astype(np.float32)
    if a.size and (a.min() < 0 or a.max() > 1):
        lo, hi = PHYSICAL_RANGE
        if lo <= a.min() and a.max() <= hi:  # beyond that range the solver refuses it, in one line of its own
            log.warning("%s: values span [%g, %g], outside φ ∈ [0, 1]", where, a.min(), a.max())
    return a


def from_npy(path) -> np.ndarray:
    """A user's (X, Y, Z) array from a .npy file.

    Parameters
    ----------
    path : str or Path
        A .npy file holding a finite 3D array of real numbers.

    Returns
    -------
    phi0 : float32 array (X, Y, Z)
    """
    path = check_input_file(path, "IC file")
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic != b"\x93NUMPY" and magic[:2] != b"PK":  # neither .npy nor a .npz archive (refused below)
        raise ValueError(f"cannot read {path} as a .npy array: it has no NumPy header (write it with numpy.save)")
    try:
        a = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"cannot read {path} as a .npy array: {str(e).splitlines()[0] if str(e) else e!r}") from None
    if not isinstance(a, np.ndarray):
        raise ValueError(f"cannot read {path} as a .npy array: it is an archive of several arrays")
    return _check_array(a, str(path))


def from_dataset(path, sequence: int = 0, frame: int = 0) -> np.ndarray:
    """One frame of a ch3d data set (HDF5 dataset ``phi`` of shape (S, F, X, Y, Z)).

    Parameters
    ----------
    path : str or Path
        HDF5 file with a dataset ``phi`` (S sequences × F frames × X × Y × Z).
    sequence, frame : int
        Indices; negative ones count from the end, as in Python.

    Returns
    -------
    phi0 : float32 array (X, Y, Z)
    """
    import h5py

    path = check_input_file(path, "data set")
    for name, value in (("sequence", sequence), ("frame", frame)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"cannot read {path} as HDF5: {str(e).splitlines()[0]}") from None
    with f:
        if "phi" not in f or not isinstance(f["phi"], h5py.Dataset):
            raise ValueError(f"{path} has no dataset 'phi' (expected a ch3d data set)")
        phi = f["phi"]
        if phi.ndim != 5:
            raise ValueError(f"{path}: 'phi' must have shape (S, F, X, Y, Z), got {phi.shape}")
        s, n = phi.shape[:2]
        if not -s <= sequence < s:
            raise ValueError(f"{path}: sequence {sequence} out of range (the file has {s})")
        if not -n <= frame < n:
            raise ValueError(f"{path}: frame {frame} out of range (sequences have {n})")
        a = phi[int(sequence) % s, int(frame) % n]
    return _check_array(a, f"{path} sequence {sequence} frame {frame}")


# --------------------------------------------------------------------------- dispatcher

_OPTIONS = {
    "perlin": ("frequency", "mean", "amplitude"),
    "random": ("mean", "amplitude"),
    "slice": ("frequency", "mean", "amplitude", "axis"),
    "sphere": ("radius", "center", "inside", "outside", "width"),
    "layers": ("n_layers", "axis", "mean", "width"),
    "slab": ("n_layers", "axis", "mean", "width"),
    "mesh": ("path", "padding", "inside", "outside"),
    "npy": ("path",),
    "h5": ("path", "sequence", "frame"),
}
_ALL_OPTIONS = sorted({name for names in _OPTIONS.values() for name in names})


def make(kind: str, shape, seed: int = 7, **options) -> np.ndarray:
    """Build an initial condition by name (the CLI's ``--ic``).

    Parameters
    ----------
    kind : one of :data:`KINDS`
    shape : (X, Y, Z) tuple of positive ints (ignored by "npy" and "h5", whose array sets it)
    seed : int ≥ 1
        Used by the random kinds (perlin, random, slice).
    **options
        Keyword arguments of the chosen function; "mesh", "npy" and "h5" take the file in
        ``path``. Options known to other kinds are ignored (so a CLI can pass its common
        options to every kind); unknown names are refused.

    Returns
    -------
    phi0 : float32 array (X, Y, Z)
    """
    if kind not in KINDS:
        raise ValueError(f"unknown initial condition {kind!r}; choose one of {', '.join(KINDS)}")
    unknown = sorted(set(options) - set(_ALL_OPTIONS))
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for initial conditions; known: {', '.join(_ALL_OPTIONS)}"
        )
    kw = {name: options[name] for name in _OPTIONS[kind] if name in options}
    if kind in ("mesh", "npy", "h5"):
        if "path" not in kw:
            raise ValueError(f"initial condition {kind!r} needs a file path (option 'path')")
        path = kw.pop("path")
        if kind == "mesh":
            return mesh(path, shape, **kw)
        if kind == "npy":
            return from_npy(path)
        return from_dataset(path, **kw)
    if kind == "perlin":
        return perlin(shape, seed=seed, **kw)
    if kind == "random":
        return white_noise(shape, seed=seed, **kw)
    if kind == "slice":
        return perturbed_plane(shape, seed=seed, **kw)
    if kind == "sphere":
        return sphere(shape, **kw)
    return layers(shape, **kw)


#: the kinds "random" and "slice" as functions: ``initial.random`` and ``initial.slice`` are served by the
#: module's ``__getattr__`` (PEP 562), so that inside this module ``slice`` stays the builtin (and ``random``
#: the standard library's name)
_KIND_FUNCTIONS = {"random": "white_noise", "slice": "perturbed_plane"}


def __getattr__(name):
    if name in _KIND_FUNCTIONS:
        return globals()[_KIND_FUNCTIONS[name]]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_KIND_FUNCTIONS))
