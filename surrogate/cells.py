"""ConvGRU3D cell: one recurrent step with an explicit hidden state.

Gates (as in the reference code CRANE, ``ConvGRUCell_parallel_3D``), for input x and hidden h::

    [x_r, x_z, x_c] = i2h(x)          i2h = conv_k(C_in -> 3H) -> tanh -> conv_1(3H -> 3H)
    [h_r, h_z]      = h2h(h)          h2h = conv_k(H -> 2H)    -> tanh -> conv_1(2H -> 2H)
    r  = σ(x_r + h_r)                 reset gate
    z  = σ(x_z + h_z)                 update gate
    c  = tanh(x_c + h2c(r ⊙ h))       h2c = conv_k(H -> H)     -> tanh -> conv_1(H -> H)
    h' = (1 − z) ⊙ c + z ⊙ h

conv_k is a 3D convolution with a k×k×k kernel, padding k // 2 and a bias: circular (periodic) on every
axis by default, the half-sample mirror on axes with no-flux walls (``walls``, :mod:`surrogate.boundary`);
conv_1 is a 1×1×1 convolution with a bias. The spatial size is preserved, and on a periodic box the cell
commutes with periodic translations of its inputs (exactly, up to float round-off).

Parameter count (C_in input channels, H hidden channels, k³ kernel taps; a conv from a to b
channels with kernel k has k³·a·b weights + b biases)::

    i2h : k³·C_in·3H + 3H  +  3H·3H + 3H
    h2h : k³·H·2H   + 2H  +  2H·2H + 2H
    h2c : k³·H·H    +  H  +   H·H  +  H

For H = 10, k = 3 (k³ = 27)::

    C_in = 1  : i2h = 810 + 30 + 900 + 30 = 1,770;   h2h = 5,400 + 20 + 400 + 20 = 5,840;
                h2c = 2,700 + 10 + 100 + 10 = 2,820;  cell total 10,430
    C_in = 10 : i2h = 8,100 + 30 + 900 + 30 = 9,060;  h2h 5,840;  h2c 2,820;  cell total 17,720

The two stacked cells of :class:`surrogate.model.CRNN` hold 28,150 parameters (see there for the
head and the totals 29,183 / 28,641).

Cube-equivariant cell (``conv=symmetric_conv``, :mod:`surrogate.equivariant`): every conv_k is tied
to the cube-invariant kernels, n_k free taps per (out, in) pair instead of k³ (n_3 = 4: centre,
faces, edges, corners); biases and the 1×1 convolutions (channels only) are unchanged. For H = 10,
k = 3 the k³ = 27 above becomes 4::

    C_in = 1  : i2h = 120 + 30 + 900 + 30 = 1,080;   h2h = 800 + 20 + 400 + 20 = 1,240;
                h2c = 400 + 10 + 100 + 10 = 520;     cell total 2,840
    C_in = 10 : i2h = 1,200 + 30 + 900 + 30 = 2,160; h2h 1,240;  h2c 520;  cell total 3,920

Every gate is then a pointwise function of scalar fields, so the cell commutes with the 48 cube
symmetries acting on x and h as scalar fields.
"""

from __future__ import annotations

import torch
from torch import nn

from .boundary import PaddedConv3d, WallsSequential

__all__ = ["ConvGRU3DCell", "PointwiseConv3d", "channel_product", "check_architecture", "periodic_conv"]


def check_architecture(hidden: int, kernel: int) -> None:
    """Raise ValueError unless ``hidden`` is a positive int and ``kernel`` a positive odd int."""
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
        raise ValueError(f"hidden must be a positive integer, got {hidden!r}")
    if isinstance(kernel, bool) or not isinstance(kernel, int) or kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"kernel must be a positive odd integer (size-preserving padding), got {kernel!r}")


def periodic_conv(in_channels: int, out_channels: int, kernel: int) -> PaddedConv3d:
    """k×k×k Conv3d with bias, padded by the boundary (circular on a periodic box; 1×1×1 when ``kernel == 1``);
    the parameters and state-dict keys of ``nn.Conv3d(padding_mode="circular")``."""
    return PaddedConv3d(in_channels, out_channels, kernel)


def channel_product(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``y[n, o, ...] = b[o] + Σ_c W[o, c] x[n, c, ...]`` as one batched matrix product
    (N, O, C) @ (N, C, V): x (N, C, *grid), weight (O, C), bias (O) or None -> (N, O, *grid), in
    x's dtype. The 1×1 convolution of :class:`PointwiseConv3d` and of the equivariant fast paths."""
    n, c, *grid = x.shape
    w = weight.to(x.dtype).expand(n, -1, -1)
    flat = x.reshape(n, c, -1)
    y = torch.bmm(w, flat) if bias is None else torch.baddbmm(bias.to(x.dtype)[None, :, None], w, flat)
    return y.reshape(n, weight.shape[0], *grid)


class PointwiseConv3d(nn.Conv3d):
    """1×1×1 Conv3d with bias, ``y[n, o, v] = b[o] + Σ_c W[o, c] x[n, c, v]``, run as one batched
    matrix product (N, O, C) @ (N, C, V): PyTorch's CPU convolution kernels are slow for 1×1
    kernels on small channel counts, its backward above all (the matrix product trains the CRNN
    ~1.3× faster at 32³, ``benchmarks/crnn_step.py``). Same parameters, state-dict keys and
    initialisation as ``nn.Conv3d(C, O, kernel_size=1)``; exported to ONNX as a Conv.
    """

    #: False: run ``nn.Conv3d.forward`` instead (what benchmarks/crnn_step.py compares against)
    as_matmul: bool = True

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, kernel_size=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.as_matmul or torch.onnx.is_in_onnx_export() or x.dim() != 5:
            return super().forward(x)
        return channel_product(x, self.weight.reshape(self.out_channels, self.in_channels), self.bias)


def _gate_block(in_channels: int, out_channels: int, kernel: int, conv=periodic_conv) -> WallsSequential:
    """conv_k(in -> out) -> tanh -> conv_1(out -> out); conv_k = ``conv(in, out, kernel)``."""
    return WallsSequential(
        conv(in_channels, out_channels, kernel),
        nn.Tanh(),
        PointwiseConv3d(out_channels, out_channels),
    )


class ConvGRU3DCell(nn.Module):
    """One ConvGRU3D step ``h_next = cell(x, h)`` (gates in the docstring of :mod:`surrogate.cells`).

    Parameters
    ----------
    in_channels : int
        Channels C_in of the input x.
    hidden : int
        Channels H of the hidden state (default 10).
    kernel : int
        Odd kernel size k of the spatial convolutions (default 3), padded by the boundary.
    conv : callable (in_channels, out_channels, kernel) -> module, optional
        Factory of the three conv_k (default ``periodic_conv``; the cube-equivariant model
        passes ``surrogate.equivariant.symmetric_conv``). The gate structure is the same.
    """

    def __init__(self, in_channels: int, hidden: int = 10, kernel: int = 3, conv=periodic_conv):
        super().__init__()
        check_architecture(hidden, kernel)
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"in_channels must be a positive integer, got {in_channels!r}")
        self.in_channels = in_channels
        self.hidden = hidden
        self.kernel = kernel
        self.i2h = _gate_block(in_channels, 3 * hidden, kernel, conv)
        self.h2h = _gate_block(hidden, 2 * hidden, kernel, conv)
        self.h2candidate = _gate_block(hidden, hidden, kernel, conv)

    def init_hidden(self, x: torch.Tensor) -> torch.Tensor:
        """Zero hidden state (N, H, X, Y, Z) with x's batch size, grid, dtype and device."""
        n, _, *grid = x.shape
        return x.new_zeros((n, self.hidden, *grid))

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None, walls=None) -> torch.Tensor:
        """One step.

        Parameters
        ----------
        x : Tensor (N, C_in, X, Y, Z)
        h : Tensor (N, H, X, Y, Z) or None (zeros)
        walls : None (periodic), (x, y, z) bools or a bool tensor (3,): the axes with no-flux walls
            (:mod:`surrogate.boundary`)

        Returns
        -------
        Tensor (N, H, X, Y, Z), the next hidden state, x's dtype.
        """
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected x of shape (N, {self.in_channels}, X, Y, Z), got {tuple(x.shape)}")
        if h is None:
            h = self.init_hidden(x)
        n, _, *grid = x.shape
        if tuple(h.shape) != (n, self.hidden, *grid):
            raise ValueError(f"expected h of shape {(n, self.hidden, *grid)} (N, H, X, Y, Z), got {tuple(h.shape)}")
        x_r, x_z, x_c = self.i2h(x, walls).split(self.hidden, dim=1)
        h_r, h_z = self.h2h(h, walls).split(self.hidden, dim=1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        c = torch.tanh(x_c + self.h2candidate(r * h, walls))
        return (1 - z) * c + z * h

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, hidden={self.hidden}, kernel={self.kernel}"
