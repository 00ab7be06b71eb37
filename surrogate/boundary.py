"""Padding by the boundary: periodic axes wrap around, axes with no-flux walls mirror (half a sample).

The solver's grid is cell-centred; on an axis with no-flux walls (``ch_numba.CHParams(boundary=...)``)
a wall lies half a cell outside the first and last voxel, and a box of N cells with walls evolves as
the periodic box of 2N cells holding the field and its mirror image (restricted to the first N). The
network reproduces that by padding every k×k×k convolution's input per axis::

    periodic axis    ghost −1 ← N−1,  N ← 0            (circular; what the models were trained with)
    wall axis        ghost −1 ← 0,    N ← N−1          (half-sample mirror: x[−1−j] = x[j],
                                                       x[N+j] = x[N−1−j]; not ONNX's "reflect",
                                                       which maps −1 ↔ 1)

for every scalar field (φ and each hidden channel: all are scalars under the cube group). The flux J
of the conservative head is a vector field: across a wall its normal component changes sign
(J_a[−1] = −J_a[0], J_a[N] = −J_a[N−1]), so the divergence sees no flux through the wall and the mass
stays exact; its tangential components are scalars along that axis. The flux head's volume mean is
removed only from components whose axis is periodic (on the mirrored 2N box the mean of an odd
component is zero) — for the cube-equivariant model; a model without its mirror symmetry has the mean
removed on every axis (``flux_offset``). A cube-equivariant model (:mod:`surrogate.equivariant`)
commutes with the mirror x ↦ 2N−1−x of the doubled periodic box, so its step on a box with walls is
exactly the restriction of its step on that doubled box, hidden states included
(``tests/test_walls_surrogate.py``); the paper's model is only approximately equivariant
(docs/walls_mirror_check.py, docs/REPRODUCTION.md §5.8).

``walls`` is one of::

    None                       every axis periodic (the exact op sequence of ``padding_mode="circular"``);
    a tuple of three bools     (x, y, z), True on wall axes, fixed while the graph is built (training);
    a bool tensor of shape (3) chosen at run time: the ghost planes are selected with ``torch.where``,
                               exactly (the exported ONNX step's optional input ``walls``).

Shapes: fields (..., X, Y, Z); the padded field (..., X + 2p, Y + 2p, Z + 2p). Needs p ≤ each size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PaddedConv3d", "WallsSequential", "as_walls", "flux_offset", "pad", "vector_shift"]

_DIMS = (-3, -2, -1)


def as_walls(boundary) -> tuple | None:
    """``CRNN.set_boundary``'s argument → the static form: None when every axis is periodic, else (x, y, z)
    booleans. ``boundary``: None, "periodic", "neumann", "X,Y,Z" or three names (ch_numba.CHParams' forms;
    ValueError, one line, for anything else), or three booleans."""
    if boundary is None:
        return None
    if isinstance(boundary, (tuple, list)) and len(boundary) == 3 and all(isinstance(b, bool) for b in boundary):
        walls = tuple(boundary)
    else:
        from ch_numba.params import wall_axes

        walls = wall_axes(boundary)
    return walls if any(walls) else None


def _index(x: torch.Tensor, dim: int, sl: slice) -> tuple:
    idx = [slice(None)] * x.dim()
    idx[dim] = sl
    return tuple(idx)


def _pad_axis(x: torch.Tensor, axis: int, p: int, wall, odd: bool = False) -> torch.Tensor:
    """Pad ``x`` by ``p`` planes on both sides of spatial axis ``axis`` (0, 1, 2 = x, y, z): circular, or
    (``wall``) the half-sample mirror, negated when ``odd`` (the normal component of a vector field)."""
    dim = _DIMS[axis]
    first, last = x[_index(x, dim, slice(0, p))], x[_index(x, dim, slice(-p, None))]
    if wall is False:
        return torch.cat([last, x, first], dim=dim)
    lo, hi = (first, last) if p == 1 else (first.flip(dim), last.flip(dim))
    if odd:
        lo, hi = -lo, -hi
    if wall is not True:  # a run-time bool scalar tensor: select the planes exactly
        lo, hi = torch.where(wall, lo, last), torch.where(wall, hi, first)
    return torch.cat([lo, x, hi], dim=dim)


def pad(x: torch.Tensor, p: int, walls=None) -> torch.Tensor:
    """Pad the last three axes of ``x`` (..., X, Y, Z) by ``p`` on both sides for a k×k×k convolution
    (p = k // 2), treating ``x``'s channels as scalar fields (module docstring). ``walls`` None: the
    circular pad of ``nn.Conv3d(padding_mode="circular")``, op for op."""
    if p == 0:
        return x
    if walls is None:
        return F.pad(x, (p,) * 6, mode="circular")
    for axis in range(3):
        x = _pad_axis(x, axis, p, walls[axis])
    return x


def vector_shift(j: torch.Tensor, axis: int, walls=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(J[i − e_a], J[i + e_a]) of the component ``j`` (..., X, Y, Z) of a vector field along its own axis
    ``axis``: periodic, or across a wall its mirror with the sign changed (no flux through the wall)."""
    dim = _DIMS[axis]
    wall = False if walls is None else walls[axis]
    n = j.shape[dim]
    padded = _pad_axis(j, axis, 1, wall, odd=True)
    return padded[_index(j, dim, slice(0, n))], padded[_index(j, dim, slice(2, n + 2))]


def flux_offset(mean: torch.Tensor, walls=None, exact_mirror: bool = True) -> torch.Tensor:
    """What the flux head subtracts from the flux J (N, 3, X, Y, Z), given its volume mean ``mean``
    (N, 3, 1, 1, 1): the mean along periodic axes (a constant flux moves nothing on a periodic box). Along an
    axis with walls, for a cube-equivariant model (``exact_mirror``) nothing: on the mirror-doubled periodic
    box its normal component is odd and has mean zero, so the wall step stays exactly the doubled box's. A
    model without that symmetry (the paper's; ``exact_mirror=False``) has its mean removed there too: its
    kernels turn even a uniform field into a constant flux, which a periodic box never feels and a wall
    would pile up against (measured: φ leaves [−0.5, 1.5] within 10 steps; docs/walls_mirror_check.py)."""
    if walls is None or not exact_mirror or (isinstance(walls, tuple) and not any(walls)):
        return mean
    if isinstance(walls, tuple):
        keep = torch.tensor([not w for w in walls], dtype=torch.bool, device=mean.device).reshape(1, 3, 1, 1, 1)
    else:
        keep = ~walls.reshape(1, 3, 1, 1, 1)
    return torch.where(keep, mean, torch.zeros_like(mean))


class WallsSequential(nn.Sequential):
    """``nn.Sequential`` whose ``forward(x, walls)`` hands ``walls`` to the modules that pad (attribute
    ``takes_walls``: the k×k×k convolutions, and nested WallsSequentials); same state-dict keys as ``nn.Sequential``."""

    takes_walls = True

    def forward(self, x: torch.Tensor, walls=None) -> torch.Tensor:
        for module in self:
            x = module(x, walls) if getattr(module, "takes_walls", False) else module(x)
        return x


class PaddedConv3d(nn.Conv3d):
    """k×k×k ``nn.Conv3d`` with bias whose input is padded by :func:`pad` (circular on periodic axes, the
    half-sample mirror on wall axes). Same parameters, state-dict keys and initialisation as
    ``nn.Conv3d(C, O, k, padding=k // 2, padding_mode="circular")``; with ``walls`` None the same ops."""

    takes_walls = True

    def __init__(self, in_channels: int, out_channels: int, kernel: int, groups: int = 1, bias: bool = True, **kw):
        super().__init__(in_channels, out_channels, kernel_size=kernel, padding=0, groups=groups, bias=bias, **kw)
        self.halo = kernel // 2

    def forward(self, x: torch.Tensor, walls=None) -> torch.Tensor:
        return F.conv3d(pad(x, self.halo, walls), self.weight, self.bias, 1, 0, 1, self.groups)
