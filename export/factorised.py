r"""The factorised ONNX graph of a cube-equivariant CRNN: orbit stencils and channel products.

A cube-equivariant k×k×k convolution (:mod:`surrogate.equivariant`) has the kernel
``W[o, c] = Σ_r c_{o,c,r} B_r`` (r over the orbits of the taps under the 48 cube symmetries:
for k = 3 the scalar orbits are centre, 6 faces, 12 edges, 8 corners; in general
(m+1)(m+2)(m+3)/6 of them, m = k // 2). The dense export writes the materialised W, 27·C·O
multiply-adds per voxel for C inputs and O outputs. This module writes the same function as two
standard ONNX Conv nodes, one of them with fixed ±1/0 weights:

stencils first (C ≤ O)::

    s_{c,r} = B_r ⋆ x_c                 Conv(group = C): C -> r·C channels, kernel (r·C, 1, k, k, k) = B_r
    y_o     = b_o + Σ_{c,r} c_{o,c,r} s_{c,r}      Conv 1×1: r·C -> O, weight c (O, r·C), bias b

channels first (C > O)::

    z_{o,r} = Σ_c c_{o,c,r} x_c         Conv 1×1: C -> r·O, no bias
    y_o     = b_o + Σ_r B_r ⋆ z_{o,r}    Conv(group = O): r·O -> O, kernel (O, r, k, k, k) = B_r, bias b

Multiply-adds per voxel: r·k³·min(C, O) + r·C·O instead of k³·C·O (for k = 3, r = 4 and the
CRNN's 10 -> 30 gate conv: 2,280 instead of 8,100, 3.6× fewer; its 1 -> 30, 10 -> 20 and 10 -> 10
convs 3.6×, 2.9×, 1.8×; the grouped Conv's zero taps counted as ONNX runtimes compute them). With the
flux conv below, the seven k³ convolutions of the H = 10 CRNN take 9,501 instead of 25,920 (2.7×), the
whole step with its 1×1 convolutions 12,501 instead of 28,920 (2.3×).

The vector-valued flux conv (H -> 3 channels J = (J_x, J_y, J_z), w(R d) = R w(d)) has, per input
channel, one free coefficient per orbit of the (component, tap) pairs: for k = 3 the three orbits
w(d) = c d on the faces, the edges and the corners (the centre and all "tangential" components
vanish), i.e. the vector basis B_r (r, 3, k, k, k) of :func:`surrogate.equivariant.cube_basis`.
Its output is one vector field (O = 3 channels, F = O / 3 = 1 field) from C = H inputs, so it is
written channels first::

    z_{f,r} = Σ_c c_{f,c,r} x_c           Conv 1×1: C -> r·F, no bias
    J_{f,a} = Σ_r (B_r)_a ⋆ z_{f,r}         Conv(group = F): r·F -> 3F, kernel (3F, r, k, k, k) = B_r[a]

(r·C + 3·r·k³ per voxel per field: 30 + 243 instead of 810 for H = 10; the vector conv has no bias).

Padding: the stencil Conv is padded by the boundary (:class:`surrogate.boundary.PaddedConv3d`: circular,
or the half-sample mirror on the axes the graph's ``walls`` input names), so the exporter's ``pad_mode``
(Slice + Concat with the walls input, or Pad(mode=wrap)) applies to it as to the dense graph; the 1×1 Convs
need none.

The graph is built by replacing every :class:`~surrogate.equivariant.SymmetricConv3d` of a copy of
the model by an ``nn.Sequential`` of these two ``nn.Conv3d`` (:func:`factorised_copy`), then
exported by the one export path (:func:`export.onnx_export.export_model`), so the signature,
metadata and checks are those of the dense graph. The result equals the dense graph up to float
round-off (the sums run in another order); the dense kernel ``Σ_r c_r B_r`` and this graph use the
same coefficients, exactly. Every op is a standard ONNX Conv (opset 1): onnx.checker, the onnx
reference evaluator and onnxruntime's CPU provider run it (tests/test_factorised.py); the CUDA
provider was not tried (no GPU in this session).

Speed: fewer multiply-adds are not proportionally less time on onnxruntime's CPU provider, whose
grouped 3-D Conv builds the same k³-row im2col buffer per input channel as the dense one; measured
1.1–1.3× faster per step on a busy 2-core machine (benchmarks/export_graph.py, benchmarks/RESULTS.md),
so ``--graph dense`` stays the default (:data:`export.options.DEFAULT_EQUIVARIANT_GRAPH`) until a run
on an idle machine shows the factorised graph faster at 32³, 2 threads, batch 1.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from surrogate.boundary import PaddedConv3d, WallsSequential
from surrogate.equivariant import SymmetricConv3d, cube_basis

from .options import DEFAULT_EQUIVARIANT_GRAPH, GRAPHS

__all__ = ["GRAPHS", "factorised_conv", "factorised_copy", "multiply_adds", "check_graph"]


def multiply_adds(in_channels: int, out_channels: int, kernel: int, vector: bool = False) -> dict:
    """Multiply-adds per voxel of one equivariant conv: ``{"dense": k³·C·O, "factorised": ...,
    "order": "stencils first" | "channels first"}`` (the grouped Conv's taps all counted)."""
    comps = 3 if vector else 1
    r = cube_basis(kernel, vector).shape[0]
    k3 = kernel**3
    fields = out_channels // comps
    dense = k3 * in_channels * out_channels
    if vector or in_channels > out_channels:
        fact, order = r * in_channels * fields + r * k3 * out_channels, "channels first"
    else:
        fact, order = r * k3 * in_channels + r * in_channels * out_channels, "stencils first"
    return {"dense": dense, "factorised": fact, "order": order}


def _conv(c_in, c_out, kernel, groups=1, bias=True, weight=None, bias_value=None) -> nn.Conv3d:
    conv = PaddedConv3d(c_in, c_out, kernel, groups=groups, bias=bias, dtype=weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(weight)
        if bias:
            conv.bias.copy_(bias_value if bias_value is not None else torch.zeros(c_out))
    return conv


@torch.no_grad()
def factorised_conv(conv: SymmetricConv3d) -> WallsSequential:
    """Two ``nn.Conv3d`` computing ``conv`` (module docstring): stencils first or channels first for a
    scalar output (whichever has fewer multiply-adds), channels first for a vector output. Weights in
    the coefficients' dtype; the fixed stencil weights are the exact ±1/0 entries of the cube basis."""
    if not isinstance(conv, SymmetricConv3d):
        raise ValueError(f"expected a SymmetricConv3d, got {type(conv).__name__}")
    c, o, k = conv.in_channels, conv.out_channels, conv.kernel
    coeffs = conv.coeffs.detach()  # (O / A, C, r)
    dtype = coeffs.dtype
    basis = torch.from_numpy(np.array(cube_basis(k, conv.vector))).to(dtype)  # (r, A, k, k, k)
    r = basis.shape[0]
    if conv.vector:
        fields = o // 3
        first = coeffs.permute(0, 2, 1).reshape(fields * r, c, 1, 1, 1)  # row r_index f·r + q
        stencil = basis.permute(1, 0, 2, 3, 4)  # (3, r, k, k, k): output component a, input orbit q
        stencil = stencil.repeat(fields, 1, 1, 1, 1)  # (3F, r, k, k, k), group f
        return WallsSequential(
            _conv(c, fields * r, 1, bias=False, weight=first),
            _conv(fields * r, o, k, groups=fields, bias=False, weight=stencil),
        )
    bias = conv.bias.detach()
    scalar = basis[:, 0]  # (r, k, k, k)
    if multiply_adds(c, o, k)["order"] == "stencils first":
        stencil = scalar[:, None].repeat(c, 1, 1, 1, 1)  # (r·C, 1, k, k, k): channel c·r + q = B_q
        second = coeffs.reshape(o, c * r, 1, 1, 1)  # index c·r + q, as the stencils
        return WallsSequential(
            _conv(c, c * r, k, groups=c, bias=False, weight=stencil),
            _conv(c * r, o, 1, weight=second, bias_value=bias),
        )
    first = coeffs.permute(0, 2, 1).reshape(o * r, c, 1, 1, 1)  # channel o·r + q
    stencil = scalar[None].repeat(o, 1, 1, 1, 1)  # (O, r, k, k, k), group o
    return WallsSequential(
        _conv(c, o * r, 1, bias=False, weight=first),
        _conv(o * r, o, k, groups=o, weight=stencil, bias_value=bias),
    )


def factorised_copy(model: nn.Module) -> nn.Module:
    """Deep copy of an equivariant CRNN whose every :class:`SymmetricConv3d` is its :func:`factorised_conv`
    (what ``--graph factorised`` exports). ValueError for a plain model."""
    _check_equivariant(model)
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, SymmetricConv3d):
                setattr(parent, name, factorised_conv(child))
    return model


def _check_equivariant(model) -> None:
    if not getattr(model, "equivariant", False):
        raise ValueError(
            "the factorised graph needs a cube-equivariant model (CRNN(equivariant=True)): a plain model's "
            "kernels have no orbit structure; export it with --graph dense"
        )


def check_graph(graph: str | None, equivariant: bool, pad_mode: str = "slice") -> str:
    """The graph to write: ``graph`` if given (ValueError for an unknown one, and for "factorised" with a plain
    model), else :data:`export.options.DEFAULT_EQUIVARIANT_GRAPH` for an equivariant model and "dense" for a
    plain one. ``pad_mode`` (either) is accepted for the callers' symmetry."""
    if graph is None:
        return DEFAULT_EQUIVARIANT_GRAPH if equivariant else "dense"
    if graph not in GRAPHS:
        raise ValueError(f"graph must be one of {GRAPHS}, got {graph!r}")
    if graph == "factorised" and not equivariant:
        raise ValueError(
            "--graph factorised needs a cube-equivariant model (its kernels' orbit structure); "
            "this one is plain: use --graph dense"
        )
    return graph
