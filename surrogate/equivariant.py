r"""Convolutions tied to the symmetries of the cube: the building block of ``CRNN(equivariant=True)``.

The group
---------
The 48 isometries of the cube (O_h: 6 axis permutations × 8 reflection patterns) are the signed
permutation matrices R. Their one definition is ``surrogate.symmetry.SYMMETRIES`` with the array
action ``surrogate.symmetry.cube_symmetry`` (index ``s = 8 p + m``: output axis j is input axis
perm[j], then flipped where bit j of m is set). A scalar field transforms as (g·f)(x) = f(R⁻¹x); a
vector field also turns its components, (g·J)(x) = R J(R⁻¹x), which on arrays is
``vector_symmetry``: component j of the result is (−1)^{m_j} · component perm[j] of the
spatially transformed field.

Equivariant kernels
-------------------
A k×k×k convolution (cross-correlation, circular padding k // 2) ``y(i) = Σ_d w(d) x(i + d) + b``
with taps d ∈ {−k//2 … k//2}³ commutes with every g when::

    scalar → scalar  (w: taps → ℝ):    w(R d) = w(d)          for all 48 R
    scalar → vector  (w: taps → ℝ³):   w(R d) = R w(d)        for all 48 R,  bias b = 0

(the bias of a vector output must vanish: a constant vector is not invariant). On a periodic grid
the array flip i → n − 1 − i is a reflection composed with a translation, and translations commute
with any convolution, so these conditions are exact on every grid, cubic or not (permutations of
the axes need a cubic grid to act at all).

The solutions form a linear subspace of the taps, the range of the group-average projector
P = 1/48 Σ_g ρ(g) (ρ(g) permutes the taps, and the components with signs, as the group acts on the
kernel array). ρ is a signed permutation of the k³ (or 3k³) entries, so the range is spanned by
orbit vectors: for every orbit O of entries under the group either some g maps an entry to itself
with sign −1 (then P kills the orbit) or the orbit carries one invariant vector with entries ±1 on
O and 0 elsewhere. These vectors have disjoint supports, hence are orthogonal; ``cube_basis``
computes them (integer arithmetic, checked against trace P = rank P), orders them by the distance
of their taps from the centre and signs vector rows to point outwards (⟨B_r, d⟩ ≥ 0). A kernel is
``w = Σ_r c_r B_r``: the free coefficient c_r is the value of the taps of orbit r (up to the sign
pattern). For k = 3::

    scalar (4 free taps per (out, in) pair): centre; 6 faces; 12 edges; 8 corners
    vector (3 free taps per input channel):  w(d) = c₁ d on the 6 faces d = ±e_a, c₂ d on the
             12 edges d = ±e_a ± e_b, c₃ d on the 8 corners d = (±1, ±1, ±1); centre 0

(in general (m+1)(m+2)(m+3)/6 scalar classes, m = k // 2: 10 for k = 5). The orthogonal projection
of an unconstrained kernel w onto the subspace, which equals the group average P w, is::

    c_r = ⟨B_r, w⟩ / ⟨B_r, B_r⟩            (the signed mean of w over orbit r)

(``SymmetricConv3d.project``). Because every tap belongs to one orbit, the materialised kernel
``Σ_r c_r B_r`` is a copy of ±c_r per tap, exact in any float precision, and symmetric to the last bit.

Fast path: stencils first (scalar kernels, k = 3)
-------------------------------------------------
A tied kernel is a sum of four fixed stencils, so a scalar conv_3 is::

    y_o = b_o + Σ_c Σ_r c_{o,c,r} (B_r ⋆ x_c),      B_r ⋆ x = x, Σ_faces, Σ_edges, Σ_corners of x

The stencil sums are products of the periodic neighbour sum along one axis,
(S_a u)(i) = u(i − e_a) + u(i + e_a): faces = (S_x + S_y + S_z) x, edges = (S_x S_y + S_x S_z +
S_y S_z) x, corners = S_x S_y S_z x, 7 neighbour sums and 4 additions per input channel
(``cube_stencils``), after which the conv is a 1×1 convolution from the 4C stencil channels
to the O outputs, a matrix product. Every B_r is even (B_r(−d) = B_r(d)), so the adjoint of
x ↦ B_r ⋆ x is the same stencil: the backward pass applies the stencils to the incoming
gradients (Horner form over the axes, 6 neighbour sums) instead of the generic convolution
backward. The dense convolution computes 27·C·O products per voxel, this path 4·C·O plus the
stencils; with PyTorch's CPU kernels it trains the equivariant CRNN ~2× faster at 32³
(``benchmarks/crnn_step.py``). The result equals the dense path up to float round-off
(summation order). The ONNX export writes either the materialised dense kernel (``--graph dense``)
or the same stencils-first structure (``--graph factorised``, ``export.factorised``).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .boundary import pad
from .cells import channel_product
from .symmetry import N_SYMMETRIES, SYMMETRIES, cube_symmetry

__all__ = ["vector_symmetry", "cube_basis", "cube_stencils", "SymmetricConv3d", "symmetric_conv"]


def vector_symmetry(v, index: int, dim: int):
    """Apply cube symmetry ``index`` to a vector field: (g·J)(x) = R J(R⁻¹ x).

    Parameters
    ----------
    v : numpy array or torch Tensor (..., X, Y, Z) with the 3 components (x, y, z) along ``dim``
        (e.g. a flux (N, 3, X, Y, Z) with dim 1, a kernel (3, C, k, k, k) with dim 0); ``dim``
        must not be one of the last three (spatial) axes.
    index : int in [0, 48)
        As ``surrogate.symmetry.cube_symmetry``: permutation p, flips m.

    Returns
    -------
    Same type and shape (spatial axes permuted): ``cube_symmetry`` of every component, then
    component j ← (−1)^{m_j} · component perm[j].
    """
    y = cube_symmetry(v, index)  # checks the index and the spatial axes
    axis = dim % v.ndim
    if axis >= v.ndim - 3 or v.shape[axis] != 3:
        raise ValueError(f"expected the 3 vector components along a non-spatial dim, got dim {dim} of {tuple(v.shape)}")
    perm, mask = SYMMETRIES[int(index)]
    signs = [-1 if mask >> j & 1 else 1 for j in range(3)]
    shape = [1] * v.ndim
    shape[axis] = 3
    if isinstance(y, torch.Tensor):
        y = y.index_select(axis, torch.tensor(perm, device=y.device))
        return y * torch.tensor(signs, dtype=y.dtype, device=y.device).reshape(shape)
    return np.take(y, perm, axis=axis) * np.array(signs, dtype=y.dtype).reshape(shape)


@functools.lru_cache(maxsize=None)
def _cube_basis(kernel: int, vector: bool) -> np.ndarray:
    comps = 3 if vector else 1
    n = comps * kernel**3
    label = np.arange(1, n + 1, dtype=np.int64).reshape(comps, kernel, kernel, kernel)
    rows = np.arange(n)
    total = np.zeros((n, n), dtype=np.int64)  # Σ_g ρ(g) = 48 P, with (ρ(g) w)[t] = ±w[src_g(t)]
    for s in range(N_SYMMETRIES):
        image = vector_symmetry(label, s, 0) if vector else cube_symmetry(label, s)
        image = np.ascontiguousarray(image).reshape(-1)  # image[t] = ±(src_g(t) + 1)
        np.add.at(total, (rows, np.abs(image) - 1), np.sign(image))
    rank, rest = divmod(int(np.trace(total)), N_SYMMETRIES)
    m = kernel // 2
    coords = np.indices((kernel,) * 3).reshape(3, -1).T - m  # tap t -> displacement d
    radial = coords.T.reshape(-1)  # the field w(d) = d as (component, tap): fixes the sign of vector rows
    basis, covered = [], np.zeros(n, dtype=bool)
    for i in range(n):
        column = total[:, i]  # 48 P e_i: |stabiliser| · (±1 on the orbit of i), or 0
        if covered[i] or not column.any():
            continue
        b = np.sign(column)
        covered |= b != 0
        basis.append(-b if vector and b @ radial < 0 else b)
    B = np.array(basis, dtype=np.int64).reshape(len(basis), n)
    gram = B @ B.T
    if rest or len(basis) != rank or np.any(gram != np.diag(np.diag(gram))) or np.any(total @ B.T != 48 * B.T):
        raise RuntimeError(f"cube basis of kernel {kernel} (vector={vector}) failed its checks")  # pragma: no cover

    def key(b):
        first = int(np.flatnonzero(b)[0])
        d = coords[first % kernel**3]
        return int(d @ d), first

    B = np.array(sorted(B, key=key), dtype=np.float64).reshape(len(basis), comps, kernel, kernel, kernel)
    B.setflags(write=False)
    return B


def cube_basis(kernel: int, vector: bool = False) -> np.ndarray:
    """Orthogonal basis of the cube-equivariant k×k×k kernels (module docstring).

    Returns a read-only float64 array (r, A, k, k, k) with entries 0 and ±1, A = 1 for scalar
    outputs, 3 (components x, y, z) for vector outputs; r = 4 (scalar) or 3 (vector) for k = 3,
    1 and 0 for k = 1. Rows are mutually orthogonal, ordered by the distance of their taps from
    the centre.
    """
    if isinstance(kernel, bool) or not isinstance(kernel, int) or kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"kernel must be a positive odd integer (size-preserving padding), got {kernel!r}")
    return _cube_basis(kernel, bool(vector))


def _shift_sum(u: torch.Tensor, dim: int) -> torch.Tensor:
    """(S u)(i) = u(i − 1) + u(i + 1) along ``dim``, periodic, from two rolls (differentiable)."""
    return u.roll(1, dim) + u.roll(-1, dim)


def _neighbour_sum(u: torch.Tensor, dim: int) -> torch.Tensor:
    """:func:`_shift_sum` with one fresh tensor instead of two rolled copies (not differentiable:
    it writes with ``out=``; for the stencils' own autograd Function). Any length, 1 and 2 included."""
    n = u.shape[dim]
    if n <= 2:
        return _shift_sum(u, dim)
    out = torch.empty_like(u)
    torch.add(u.narrow(dim, 0, n - 2), u.narrow(dim, 2, n - 2), out=out.narrow(dim, 1, n - 2))
    torch.add(u.narrow(dim, n - 1, 1), u.narrow(dim, 1, 1), out=out.narrow(dim, 0, 1))
    torch.add(u.narrow(dim, n - 2, 1), u.narrow(dim, 0, 1), out=out.narrow(dim, n - 1, 1))
    return out


def _stencils_forward(x: torch.Tensor) -> torch.Tensor:
    """(N, C, X, Y, Z) -> (N, C, 4, X, Y, Z): x, faces, edges, corners sums (periodic)."""
    n, c, *grid = x.shape
    out = x.new_empty((n, c, 4, *grid))
    sx = _neighbour_sum(x, -3)
    sy = _neighbour_sum(x, -2)
    sxy = _neighbour_sum(sx, -2)
    out[:, :, 0] = x
    faces, edges = out[:, :, 1], out[:, :, 2]
    torch.add(sx, sy, out=faces)
    faces += _neighbour_sum(x, -1)
    torch.add(sxy, _neighbour_sum(sx, -1), out=edges)
    edges += _neighbour_sum(sy, -1)
    out[:, :, 3] = _neighbour_sum(sxy, -1)
    return out


def _stencils_adjoint(g: torch.Tensor) -> torch.Tensor:
    """(N, C, 4, X, Y, Z) -> (N, C, X, Y, Z): Σ_r B_r ⋆ g_r (the stencils are even: self-adjoint).

    Horner form over the axes: with the 1D factors c (identity) and s (neighbour sum) along x, y,
    z, B_0 = ccc, faces = scc + csc + ccs, edges = ssc + scs + css, corners = sss, so

        Σ_r B_r ⋆ g_r = T_0 + S_x T_1,   T_k = U_k + S_y U_{k+1},   U_k = g_k + S_z g_{k+1}.
    """
    g0, g1, g2, g3 = g.unbind(2)
    u0 = g0 + _neighbour_sum(g1, -1)
    u1 = g1 + _neighbour_sum(g2, -1)
    u2 = g2 + _neighbour_sum(g3, -1)
    t0 = u0 + _neighbour_sum(u1, -2)
    t1 = u1 + _neighbour_sum(u2, -2)
    return t0 + _neighbour_sum(t1, -3)


def _vector_stencils(z: torch.Tensor) -> torch.Tensor:
    """Vector k = 3 fast path: taps z (N, F, 3, X, Y, Z) = (faces, edges, corners) fields per output
    vector → J (N, 3F, X, Y, Z), component a of vector f being

        J_a = D_a (z_faces + (S_b + S_c) z_edges + S_b S_c z_corners),   {a, b, c} = {x, y, z},

    with (D_a u)(i) = u(i + e_a) − u(i − e_a): w(d) = c d on faces (d = ±e_a), edges and corners."""
    faces, edges, corners = z.unbind(2)
    dims = (-3, -2, -1)
    out = []
    for a in range(3):
        b, c = (d for d in dims if d != dims[a])
        inner = faces + _shift_sum(edges + _shift_sum(corners, c), b) + _shift_sum(edges, c)
        out.append(inner.roll(-1, dims[a]) - inner.roll(1, dims[a]))
    n, f, _, *grid = z.shape
    return torch.stack(out, dim=2).reshape(n, 3 * f, *grid)


class _CubeStencils(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return _stencils_forward(x)

    @staticmethod
    def backward(ctx, grad):
        return _stencils_adjoint(grad)


def cube_stencils(x: torch.Tensor) -> torch.Tensor:
    """The four cube-invariant k = 3 stencil sums of every channel, periodic: (N, C, X, Y, Z) ->
    (N, C, 4, X, Y, Z) = (x, Σ_faces, Σ_edges, Σ_corners), in the order of ``cube_basis``
    (module docstring, fast path). Differentiable (the backward applies the same stencils)."""
    if x.dim() != 5:
        raise ValueError(f"expected x of shape (N, C, X, Y, Z), got {tuple(x.shape)}")
    return _CubeStencils.apply(x)


class SymmetricConv3d(nn.Module):
    """k×k×k periodic Conv3d whose kernel is tied to the cube-equivariant subspace.

    ``y = conv3d(pad_circular(x, k // 2), W) + b`` with ``W = Σ_r c_r B_r`` materialised at every
    call (:attr:`weight`), the same op sequence as ``nn.Conv3d(padding_mode="circular")``.

    Parameters
    ----------
    in_channels : int
        Scalar input channels C.
    out_channels : int
        Output channels O: O scalar fields, or (``vector=True``) O / 3 vector fields whose
        components x, y, z are channels 3f, 3f + 1, 3f + 2.
    kernel : int
        Odd kernel size k.
    vector : bool
        Vector output: no bias (a constant vector is not invariant).

    Parameters and buffers: ``coeffs`` (O / A, C, r) free taps, A = 3 for vector output else 1;
    ``bias`` (O) for scalar output, None for vector output; ``basis`` (r, A, k, k, k) a
    non-persistent buffer from ``cube_basis`` (not in the state dict, rebuilt on construction).
    Initialisation: every free tap and bias ~ U(−1/√(C k³), 1/√(C k³)), the marginal law of a
    tap of a default-initialised ``nn.Conv3d``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, vector: bool = False):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        comps = 3 if vector else 1
        if out_channels % comps:
            raise ValueError(f"a vector output needs a multiple of 3 channels (x, y, z), got {out_channels}")
        basis = torch.from_numpy(np.array(cube_basis(kernel, vector))).to(torch.get_default_dtype())
        if basis.shape[0] == 0:
            raise ValueError(
                f"a {kernel}x{kernel}x{kernel} kernel has no cube-equivariant vector taps (need kernel >= 3)"
            )
        self.in_channels, self.out_channels, self.kernel, self.vector = in_channels, out_channels, kernel, bool(vector)
        self.register_buffer("basis", basis, persistent=False)
        self.coeffs = nn.Parameter(torch.empty(out_channels // comps, in_channels, basis.shape[0]))
        if vector:
            self.register_parameter("bias", None)
        else:
            self.bias = nn.Parameter(torch.empty(out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_channels * self.kernel**3)
        nn.init.uniform_(self.coeffs, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    @property
    def weight(self) -> torch.Tensor:
        """The kernel (O, C, k, k, k) = Σ_r c_r B_r, in the coefficients' dtype (differentiable)."""
        k = self.kernel
        w = torch.einsum("fcr,raxyz->facxyz", self.coeffs, self.basis.to(self.coeffs.dtype))
        return w.reshape(self.out_channels, self.in_channels, k, k, k)

    #: False: always the dense conv3d of the materialised kernel (what benchmarks/crnn_step.py compares against)
    stencils_first: bool = True
    takes_walls = True  # padded by the boundary (surrogate.boundary.WallsSequential hands ``walls`` over)

    def forward(self, x: torch.Tensor, walls=None) -> torch.Tensor:
        """The convolution, its input padded by :func:`surrogate.boundary.pad` (``walls``: None on a periodic
        box). The fast paths on a box with walls run on the padded field and keep its interior."""
        if self.stencils_first and self.kernel == 3 and not torch.onnx.is_in_onnx_export():
            if x.dim() != 5 or x.shape[1] != self.in_channels:
                raise ValueError(f"expected x of shape (N, {self.in_channels}, X, Y, Z), got {tuple(x.shape)}")
            return self._vector_taps_first(x, walls) if self.vector else self._stencils_first(x, walls)
        return F.conv3d(pad(x, self.kernel // 2, walls), self.weight, self.bias)

    def _stencils_first(self, x: torch.Tensor, walls=None) -> torch.Tensor:
        """The fast path of the module docstring: 1×1 conv (4C -> O) of ``cube_stencils`` (x)."""
        n, c, *grid = x.shape
        if walls is None:
            feats = cube_stencils(x)
        else:  # the periodic stencils of the padded field are exact inside it
            feats = cube_stencils(pad(x, 1, walls))[..., 1:-1, 1:-1, 1:-1]
        feats = feats.reshape(n, 4 * c, *grid)  # channel index 4 c + r
        return channel_product(feats, self.coeffs.reshape(self.out_channels, 4 * c), self.bias)

    def _vector_taps_first(self, x: torch.Tensor, walls=None) -> torch.Tensor:
        """Vector fast path: the channel sums z_{f,r} = Σ_c c_{f,c,r} x_c first (3 taps per output
        vector), then the fixed odd stencils of :func:`_vector_stencils` (z are scalar fields: padded as such)."""
        n, c, *grid = x.shape
        fields = self.out_channels // 3
        z = channel_product(x, self.coeffs.permute(0, 2, 1).reshape(fields * 3, c))  # channel 3 f + r
        if walls is None:
            return _vector_stencils(z.reshape(n, fields, 3, *grid))
        z = pad(z, 1, walls)
        return _vector_stencils(z.reshape(n, fields, 3, *z.shape[-3:]))[..., 1:-1, 1:-1, 1:-1]

    @torch.no_grad()
    def project(self, weight: torch.Tensor) -> torch.Tensor:
        """Free taps (O / A, C, r) of the orthogonal projection of an unconstrained kernel (O, C, k, k, k).

        c_r = ⟨B_r, w⟩ / ⟨B_r, B_r⟩ per (field, input channel), computed in float64, returned in
        this module's dtype. Equals the group average 1/48 Σ_g g·w; a kernel already in the
        subspace is returned unchanged (to round-off).
        """
        k, comps = self.kernel, 3 if self.vector else 1
        want = (self.out_channels, self.in_channels, k, k, k)
        if not isinstance(weight, torch.Tensor) or tuple(weight.shape) != want:
            got = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
            raise ValueError(f"expected a kernel of shape {want} (O, C, k, k, k), got {got}")
        B = self.basis.to(torch.float64).reshape(self.basis.shape[0], -1)  # (r, A k³)
        w = weight.detach().to(device=B.device, dtype=torch.float64)
        w = w.reshape(-1, comps, self.in_channels, k**3).transpose(1, 2).reshape(-1, self.in_channels, comps * k**3)
        coeffs = (w @ B.T) / (B * B).sum(dim=1)
        return coeffs.to(self.coeffs.dtype)

    @torch.no_grad()
    def load_projection_(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        """Set the free taps to :meth:`project` (weight) and a scalar output's bias to ``bias``
        (a vector output's bias is dropped: its projection is zero)."""
        self.coeffs.copy_(self.project(weight))
        if self.bias is not None and bias is not None:
            self.bias.copy_(bias)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel={self.kernel}, "
            f"{'vector' if self.vector else 'scalar'}, free_taps={self.basis.shape[0]}"
        )


def symmetric_conv(in_channels: int, out_channels: int, kernel: int) -> SymmetricConv3d:
    """Scalar → scalar :class:`SymmetricConv3d`, the equivariant twin of :func:`surrogate.cells.periodic_conv`."""
    return SymmetricConv3d(in_channels, out_channels, kernel)
