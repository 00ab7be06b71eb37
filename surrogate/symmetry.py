r"""The 48 symmetries of the cube acting on fields (..., X, Y, Z), and the phase swap φ → 1 − φ.

The 48 isometries of a cube (the octahedral group O_h: 6 axis permutations × 8 reflection
patterns, 90° rotations included) act on the three spatial axes of (..., X, Y, Z) arrays; index
``s = 8 p + m`` applies the p-th permutation of ``itertools.permutations((0, 1, 2))`` (output axis
j is input axis perm[j]) and then flips output axis j where bit j of m is set. On a periodic grid
``a[::-1]`` is a reflection about a grid plane (up to a shift), so every index maps a
Cahn-Hilliard solution to a solution (on an axis with no-flux walls ``a[::-1]`` mirrors the box
about its centre, walls to walls). Index 0 is the identity. Axis permutations need a cubic grid with
the same boundary on the permuted axes; :func:`shape_preserving_symmetries` lists those a grid of
another shape or boundary admits (the only ones the training data draws there).

Used by the training data's augmentation (:mod:`surrogate.data`) and by the equivariant
convolutions (:mod:`surrogate.equivariant`); numpy arrays and torch tensors alike.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import torch

__all__ = [
    "N_SYMMETRIES",
    "SYMMETRIES",
    "cube_symmetry",
    "compose_symmetries",
    "inverse_symmetry",
    "dual",
    "shape_preserving_symmetries",
]

#: (axis permutation, flip mask) of each of the 48 symmetries; index = 8 · perm index + mask.
SYMMETRIES: tuple[tuple[tuple[int, int, int], int], ...] = tuple(
    (perm, mask) for perm in itertools.permutations((0, 1, 2)) for mask in range(8)
)
N_SYMMETRIES = len(SYMMETRIES)  # 48


def cube_symmetry(x, index: int):
    """Apply symmetry ``index`` (0 … 47) of the cube to the last three axes of ``x``.

    Parameters
    ----------
    x : numpy array or torch Tensor (..., X, Y, Z)
        Leading axes (frames, channels, batch) are untouched.
    index : int in [0, 48)
        ``8 p + m``: permutation p of the axes, then flips given by the bits of m.

    Returns
    -------
    Same type, shape (..., X_p0, X_p1, X_p2). A numpy view (possibly non-contiguous); for torch a
    view after a pure permutation, a copy when flips are involved.
    """
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < N_SYMMETRIES:
        raise ValueError(f"symmetry index must be an integer in [0, {N_SYMMETRIES}), got {index!r}")
    if x.ndim < 3:
        raise ValueError(f"expected an array of shape (..., X, Y, Z), got {tuple(x.shape)}")
    perm, mask = SYMMETRIES[int(index)]
    lead = x.ndim - 3
    axes = tuple(range(lead)) + tuple(lead + p for p in perm)
    flips = tuple(lead + j for j in range(3) if mask >> j & 1)
    if isinstance(x, torch.Tensor):
        y = x.permute(axes) if perm != (0, 1, 2) else x
        return torch.flip(y, flips) if flips else y
    y = np.transpose(x, axes) if perm != (0, 1, 2) else x
    return np.flip(y, flips) if flips else y


@functools.lru_cache(maxsize=1)
def _table() -> np.ndarray:
    """table[a, b] = c with cube_symmetry(cube_symmetry(x, a), b) == cube_symmetry(x, c)."""
    probe = np.arange(3**3).reshape(3, 3, 3)  # distinct values: every symmetry gives a distinct image
    images = {cube_symmetry(probe, c).tobytes(): c for c in range(N_SYMMETRIES)}
    table = np.empty((N_SYMMETRIES, N_SYMMETRIES), dtype=np.int64)
    for a in range(N_SYMMETRIES):
        xa = cube_symmetry(probe, a)
        for b in range(N_SYMMETRIES):
            table[a, b] = images[np.ascontiguousarray(cube_symmetry(xa, b)).tobytes()]
    return table


def compose_symmetries(a: int, b: int) -> int:
    """Index c of "first a, then b": ``cube_symmetry(cube_symmetry(x, a), b) == cube_symmetry(x, c)``."""
    return int(_table()[a, b])


def inverse_symmetry(a: int) -> int:
    """Index of the inverse of symmetry ``a`` (undoes it: compose(a, inverse(a)) == 0)."""
    return int(np.flatnonzero(_table()[a] == 0)[0])


def dual(x):
    """The phase-swap symmetry φ → 1 − φ (numpy array or tensor, any shape)."""
    return 1 - x


def shape_preserving_symmetries(shape, boundary=None) -> tuple[int, ...]:
    """Indices of the symmetries that keep a grid of ``shape`` (X, Y, Z) unchanged: all 48 for a periodic cube.

    ``boundary`` (None: periodic; else the (x, y, z) names of ``ch_numba.CHParams.boundary``, any of its forms):
    an axis permutation must also keep each axis's boundary, so a wall axis is only swapped with another wall
    axis of the same size (a film between two z walls: the x ↔ y swap only). Reflections keep every box: a
    mirrored box with walls is a box with the same walls.
    """
    shape = tuple(shape)
    names = (None,) * 3
    if boundary is not None:
        from ch_numba.params import parse_boundary  # stdlib only

        names = parse_boundary(boundary)
    return tuple(
        s
        for s, (perm, _) in enumerate(SYMMETRIES)
        if tuple(shape[p] for p in perm) == shape and tuple(names[p] for p in perm) == names
    )
