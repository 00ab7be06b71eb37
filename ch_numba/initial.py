"""Initial conditions φ0 (X, Y, Z) on the periodic grid; every one seeded and deterministic.

Perlin noise (the paper's ICs) equals the ``perlin-noise`` package's values: for an
(Nx, Ny, Nz) grid and integer frequency f (lattice cells per side),

    n(i, j, k) = PerlinNoise(octaves=f, seed=s).noise([i/Nx, j/Ny, k/Nz], tile_sizes=[1, 1, 1])
               = Σ_{corners c of the cell of u} Π_a fade(1 − |u_a − c_a|) · g(c mod f) · (u − c),
    u = (i/Nx mod 1) · f, ...,   fade(t) = 6t⁵ − 15t⁴ + 10t³,

where the gradient g(c) is the package's own random vector for lattice point c
(taken from the package, f³ of them), and the interpolation is evaluated here with
numpy for all voxels at once. The field is exactly periodic with period N (the
lattice repeats every f cells), its correlation length is N/f. Then

    perlin: φ0 = mean + amplitude · n / max|n|, clipped to [0, 1].

Other ICs: sphere, layers (slab), random (white noise), slice (fluctuations in the
central plane only), mesh (a closed triangle mesh voxelised by ray parity), and
user arrays (.npy, or a frame of a ch3d data set).
"""

from __future__ import annotations

import builtins
from pathlib import Path

import numpy as np

KINDS = ("perlin", "sphere", "layers", "slab", "random", "slice", "mesh", "npy", "h5")


def _shape3(shape) -> tuple:
    try:
        shape = tuple(int(n) for n in shape)
    except TypeError:
        raise ValueError(f"shape must be (X, Y, Z), got {shape!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be three positive integers (X, Y, Z), got {shape!r}")
    return shape


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed <= 0:
        raise ValueError(f"seed must be a positive integer (perlin-noise treats 0 as 'random'), got {seed!r}")
    return int(seed)


def _fade(t):
    return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)


def _lattice_gradients(frequency: int, seed: int) -> np.ndarray:
    """The package's gradient vectors g(c) for c in {0..f-1}³: array (f, f, f, 3)."""
    from perlin_noise.tools import hasher, sample_vector

    tiles = (frequency,) * 3
    g = np.empty((frequency, frequency, frequency, 3))
    for c in np.ndindex(frequency, frequency, frequency):
        g[c] = sample_vector(dimensions=3, seed=seed * hasher(c, tiles))
    return g


def _axis_coords(n: int, frequency: int):
    """Per axis: lattice cell index (int, mod f) and offset in the cell, as the package computes them."""
    u = np.array([((i / n) % 1) * frequency for i in range(n)])
    cell = np.floor(u)
    return cell.astype(np.int64) % frequency, u - cell


def perlin_noise(shape, frequency=4, seed: int = 7) -> np.ndarray:
    """Periodic Perlin noise (float64, (X, Y, Z)), equal to the perlin-noise package's values.

    Parameters
    ----------
    shape : (X, Y, Z) grid.
    frequency : int ≥ 1, lattice cells per side (correlation length N/f); a sequence of
        ints gives the sum of the noises at those frequencies.
    seed : int ≥ 1.
    """
    shape = _shape3(shape)
    seed = _check_seed(seed)
    if isinstance(frequency, (list, tuple, np.ndarray)):
        if len(frequency) == 0:
            raise ValueError("frequency list is empty")
        return sum(perlin_noise(shape, f, seed) for f in frequency)
    if isinstance(frequency, bool) or not isinstance(frequency, (int, np.integer)) or frequency < 1:
        raise ValueError(f"frequency must be a positive integer (lattice cells per side), got {frequency!r}")
    f = int(frequency)
    g = _lattice_gradients(f, seed)
    (cx, dx), (cy, dy), (cz, dz) = (_axis_coords(n, f) for n in shape)
    out = np.zeros(shape)
    for ox in (0, 1):
        ix, rx = (cx + ox) % f, dx - ox
        wx = _fade(1.0 - np.abs(rx))
        for oy in (0, 1):
            iy, ry = (cy + oy) % f, dy - oy
            wy = _fade(1.0 - np.abs(ry))
            for oz in (0, 1):
                iz, rz = (cz + oz) % f, dz - oz
                wz = _fade(1.0 - np.abs(rz))
                gc = g[ix[:, None, None], iy[None, :, None], iz[None, None, :]]  # (X, Y, Z, 3)
                dot = (gc[..., 0] * rx[:, None, None] + gc[..., 1] * ry[None, :, None]
                       + gc[..., 2] * rz[None, None, :])
                out += wx[:, None, None] * wy[None, :, None] * wz[None, None, :] * dot
    return out


def _scaled(noise: np.ndarray, mean: float, amplitude: float) -> np.ndarray:
    peak = np.abs(noise).max()
    noise = noise / peak if peak > 0 else noise
    return np.clip(mean + amplitude * noise, 0.0, 1.0).astype(np.float32)


def _check_level(mean, amplitude):
    if not 0.0 <= mean <= 1.0:
        raise ValueError(f"mean must be in [0, 1], got {mean}")
    if not 0.0 <= amplitude <= 1.0:
        raise ValueError(f"amplitude must be in [0, 1], got {amplitude}")


def perlin(shape, frequency=4, seed: int = 7, mean: float = 0.5, amplitude: float = 0.1) -> np.ndarray:
    """φ0 = mean + amplitude · n / max|n| (n = perlin_noise), clipped to [0, 1]; float32 (X, Y, Z)."""
    _check_level(mean, amplitude)
    return _scaled(perlin_noise(shape, frequency, seed), mean, amplitude)


def random(shape, seed: int = 7, mean: float = 0.5, amplitude: float = 0.1) -> np.ndarray:
    """White noise: φ0 = mean + amplitude · U(−1, 1) per voxel, clipped; float32 (X, Y, Z)."""
    shape = _shape3(shape)
    _check_level(mean, amplitude)
    rng = np.random.default_rng(_check_seed(seed))
    return np.clip(mean + amplitude * rng.uniform(-1.0, 1.0, shape), 0.0, 1.0).astype(np.float32)


def slice(shape, seed: int = 7, mean: float = 0.5, amplitude: float = 0.1, axis: int = 0,
          frequency: int = 4) -> np.ndarray:
    """φ0 = mean everywhere except the central plane (index N//2 along `axis`), which carries
    Perlin fluctuations of the given amplitude (the paper's long-time test); float32."""
    shape = _shape3(shape)
    _check_level(mean, amplitude)
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis}")
    phi = np.full(shape, mean, dtype=np.float32)
    noise = perlin(shape, frequency, seed, mean, amplitude)
    index = [builtins.slice(None)] * 3
    index[axis] = shape[axis] // 2
    phi[tuple(index)] = noise[tuple(index)]
    return phi


def _profile(signed_distance: np.ndarray, width) -> np.ndarray:
    """1 inside (distance < 0), 0 outside: sharp, or ½(1 − tanh(d / width)) when width is given."""
    if width is None:
        return (signed_distance < 0).astype(np.float32)
    if width <= 0:
        raise ValueError(f"width must be > 0, got {width}")
    return (0.5 * (1.0 - np.tanh(signed_distance / width))).astype(np.float32)


def sphere(shape, radius=None, center=None, inside: float = 1.0, outside: float = 0.0, width=None) -> np.ndarray:
    """A sphere of φ = inside in φ = outside (periodic distance to `center`).

    radius defaults to min(shape)/4, center to the box centre; `width` (grid units)
    gives a tanh interface ½(1 − tanh(d/width)), else the profile is sharp.
    """
    shape = _shape3(shape)
    radius = min(shape) / 4 if radius is None else float(radius)
    if radius <= 0:
        raise ValueError(f"radius must be > 0, got {radius}")
    center = np.array([n / 2 for n in shape] if center is None else center, dtype=float)
    if center.shape != (3,):
        raise ValueError(f"center must be (x, y, z), got {center!r}")
    d2 = np.zeros(shape)
    for axis, n in enumerate(shape):
        x = np.arange(n) + 0.5 - center[axis]
        x = x - n * np.round(x / n)  # periodic distance
        d2 = d2 + (x**2).reshape([-1 if a == axis else 1 for a in range(3)])
    w = _profile(np.sqrt(d2) - radius, width)
    return (outside + (inside - outside) * w).astype(np.float32)


def layers(shape, n_layers: int = 2, axis: int = 0, mean: float = 0.5, width=None) -> np.ndarray:
    """`n_layers` periodic slabs of φ = 1 in φ = 0 across `axis`; the φ = 1 fraction is `mean`."""
    shape = _shape3(shape)
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis}")
    if not (isinstance(n_layers, (int, np.integer)) and n_layers >= 1):
        raise ValueError(f"n_layers must be a positive integer, got {n_layers!r}")
    if not 0.0 < mean < 1.0:
        raise ValueError(f"mean must be in (0, 1), got {mean}")
    n = shape[axis]
    period = n / n_layers
    x = (np.arange(n) + 0.5) % period  # position inside one period
    half = mean * period / 2  # slab centred in the period, thickness mean·period
    dist = np.abs(x - period / 2) - half
    prof = _profile(dist, width).reshape([-1 if a == axis else 1 for a in range(3)])
    return np.broadcast_to(prof, shape).astype(np.float32)


slab = layers


def _voxelise(triangles: np.ndarray, shape) -> np.ndarray:
    """Inside test at voxel centres by parity of z-ray crossings. triangles (T, 3, 3) in grid units."""
    nx, ny, nz = shape
    # tiny irrational jitter so that rays never pass exactly through edges or vertices
    xs = np.arange(nx) + 0.5 + 1e-7 * np.sqrt(2)
    ys = np.arange(ny) + 0.5 + 1e-7 * np.sqrt(3)
    inside = np.zeros(shape, dtype=bool)
    crossings = [[[] for _ in range(ny)] for _ in range(nx)]
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    for t in range(len(triangles)):
        (ax, ay, az), (bx, by, bz), (cx, cy, cz) = a[t], b[t], c[t]
        det = (by - cy) * (ax - cx) + (cx - bx) * (ay - cy)
        if det == 0:
            continue  # triangle seen edge-on from z
        i0, i1 = np.searchsorted(xs, min(ax, bx, cx)), np.searchsorted(xs, max(ax, bx, cx))
        j0, j1 = np.searchsorted(ys, min(ay, by, cy)), np.searchsorted(ys, max(ay, by, cy))
        if i0 >= i1 or j0 >= j1:
            continue
        px, py = np.meshgrid(xs[i0:i1], ys[j0:j1], indexing="ij")
        l1 = ((by - cy) * (px - cx) + (cx - bx) * (py - cy)) / det
        l2 = ((cy - ay) * (px - cx) + (ax - cx) * (py - cy)) / det
        l3 = 1.0 - l1 - l2
        hit = (l1 >= 0) & (l2 >= 0) & (l3 >= 0)
        zs = l1 * az + l2 * bz + l3 * cz
        for i, j in zip(*np.nonzero(hit)):
            crossings[i0 + i][j0 + j].append(zs[i, j])
    zc = np.arange(nz) + 0.5
    for i in range(nx):
        for j in range(ny):
            zlist = crossings[i][j]
            if len(zlist) >= 2:
                count = np.searchsorted(np.sort(zlist), zc)  # crossings below each voxel centre
                inside[i, j] = count % 2 == 1
    return inside


def mesh(path, shape, padding: float = 0.1, inside: float = 1.0, outside: float = 0.0) -> np.ndarray:
    """Voxelise a closed triangle mesh (STL/OBJ/PLY, loaded with trimesh) into the box.

    The mesh is scaled uniformly to fit the box with a `padding` fraction of margin
    and centred; voxels whose centres are inside get φ = inside, the rest φ = outside.
    """
    import trimesh

    shape = _shape3(shape)
    path = Path(path)
    if not path.exists():
        raise ValueError(f"mesh file {path} not found")
    if not 0.0 <= padding < 0.5:
        raise ValueError(f"padding must be in [0, 0.5), got {padding}")
    try:
        m = trimesh.load(path, force="mesh")
    except Exception as e:  # trimesh raises many types for unreadable files
        raise ValueError(f"cannot read mesh {path}: {e}") from None
    if not isinstance(m, trimesh.Trimesh) or len(m.faces) == 0:
        raise ValueError(f"{path} holds no triangle mesh")
    if not m.is_watertight:
        raise ValueError(f"mesh {path} is not closed (not watertight): inside/outside is undefined")
    lo, hi = m.bounds
    box = np.array(shape, dtype=float)
    scale = np.min(box * (1 - 2 * padding) / np.maximum(hi - lo, 1e-12))
    tri = (m.triangles - (lo + hi) / 2) * scale + box / 2
    phi = np.where(_voxelise(tri, shape), inside, outside)
    return phi.astype(np.float32)


def _check_array(a, where: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 3:
        raise ValueError(f"{where}: expected a 3D array (X, Y, Z), got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"{where}: expected numbers, got dtype {a.dtype}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{where}: contains NaN or Inf")
    return a.astype(np.float32)


def from_npy(path) -> np.ndarray:
    """A user's (X, Y, Z) array from a .npy file, as float32."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"IC file {path} not found")
    try:
        a = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise ValueError(f"cannot read {path} as a .npy array: {e}") from None
    return _check_array(a, str(path))


def from_dataset(path, sequence: int = 0, frame: int = 0) -> np.ndarray:
    """Frame `frame` of sequence `sequence` of a ch3d data set, as float32 (X, Y, Z)."""
    from .dataset import open_dataset

    with open_dataset(path) as ds:
        s, f = ds.phi.shape[:2]
        if not -s <= sequence < s:
            raise ValueError(f"{path}: sequence {sequence} out of range (file has {s})")
        if not -f <= frame < f:
            raise ValueError(f"{path}: frame {frame} out of range (sequences have {f})")
        return _check_array(ds.phi[sequence, frame], str(path))


def make(kind: str, shape, seed: int = 7, **options) -> np.ndarray:
    """Build an IC by name (the CLI's --ic); file-based kinds take options['path']."""
    if kind not in KINDS:
        raise ValueError(f"unknown initial condition {kind!r}; choose one of {', '.join(KINDS)}")
    if kind in ("mesh", "npy", "h5"):
        if "path" not in options:
            raise ValueError(f"initial condition {kind!r} needs a file path")
        path = options.pop("path")
        if kind == "mesh":
            return mesh(path, shape, **{k: v for k, v in options.items() if k in ("padding", "inside", "outside")})
        if kind == "npy":
            return from_npy(path)
        return from_dataset(path, options.get("sequence", 0), options.get("frame", 0))
    mean, amplitude = options.get("mean", 0.5), options.get("amplitude", 0.1)
    frequency = options.get("frequency", 4)
    if kind == "perlin":
        return perlin(shape, frequency, seed, mean, amplitude)
    if kind == "random":
        return random(shape, seed, mean, amplitude)
    if kind == "slice":
        return slice(shape, seed, mean, amplitude, options.get("axis", 0), frequency)
    if kind == "sphere":
        return sphere(shape, options.get("radius"), options.get("center"), width=options.get("width"))
    return layers(shape, options.get("n_layers", 2), options.get("axis", 0), mean, options.get("width"))
