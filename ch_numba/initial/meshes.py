"""Triangle-mesh initial conditions: a closed mesh file voxelised into the box (ray-parity inside test)."""

from __future__ import annotations

import logging

import numpy as np

from ..files import check_input_file
from .checks import _shape3

log = logging.getLogger("ch_numba.initial")

# pairs (triangle, ray) tested at once by the mesh voxeliser
_BLOCK_PAIRS = 1 << 21
# ray offsets from the column centres (grid units): small and irrational, so that no ray
# passes exactly through a mesh edge or vertex placed at a "nice" coordinate
_RAY_JITTER = (1e-6 * (np.sqrt(2.0) - 1.0), 1e-6 * (np.sqrt(3.0) - 1.0))


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
    φ = outside (sharp interface; inside/outside by ray parity, see ``_voxelise``).

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
