"""CRNN: two stacked ConvGRU3D cells and a "toFlux" head; conservative by construction.

One network step maps φ_n (one saved frame) to φ_{n+1}::

    h1' = cell1(φ_n, h1)              ConvGRU3DCell(1 -> H)
    h2' = cell2(h1', h2)              ConvGRU3DCell(H -> H)
    y   = head(h2')                   conv_1(H -> H) -> tanh -> conv_1(H -> H) -> tanh -> conv_k(H -> C_out)

conservative (C_out = 3): y = J = (Jx, Jy, Jz), a flux on the grid; the volume mean of each
component is removed and a fixed (parameter-free) periodic divergence layer gives::

    φ_{n+1}[i] = φ_n[i] + Σ_a ( J_a[i − e_a] − J_a[i + e_a] )      a = x, y, z  (tensor dims −3, −2, −1)

Summed over the periodic grid the increment telescopes to zero, so Σ φ (the mass) is conserved to
round-off whatever the weights. (Removing the mean flux changes the update only by round-off,
since the divergence of a constant is zero; it is kept as in the reference code.)

non-conservative ablation (C_out = 1): φ_{n+1} = σ(y), a logistic sigmoid; mass is not conserved.

Parameter count, hidden H = 10, kernel k = 3 (k³ = 27; derivation of the cells in
:mod:`surrogate.cells`)::

    cell1 (C_in = 1)                                              10,430
    cell2 (C_in = H)                                              17,720
    head  conv_1(H -> H) + conv_1(H -> H) = 2·(100 + 10)             220
          conservative:     conv_k(H -> 3) = 27·10·3 + 3              813
          non-conservative: conv_k(H -> 1) = 27·10·1 + 1              271
    total conservative     = 28,150 + 220 + 813 = 29,183
    total non-conservative = 28,150 + 220 + 271 = 28,641

The difference 542 = 2·(27·10) + 2 is the head's last conv with two more output channels.

Convolutions use circular padding and the divergence uses ``torch.roll``, so the network is
exactly equivariant under periodic translations, and all ops export to standard ONNX
(circular pad and roll become Slice + Concat).

No-flux walls (:meth:`CRNN.set_boundary`, :mod:`surrogate.boundary`): on an axis with walls the
convolutions' inputs are padded with the half-sample mirror, the flux's normal component is mirrored
with its sign changed (no flux through the wall: mass still exact) and, for the cube-equivariant model
(``exact_mirror``), its volume mean is not removed (``surrogate.boundary.flux_offset``);
for the cube-equivariant model the step is then exactly the restriction of its step on the periodic
box of twice the size holding the field and its mirror image.

Cube-equivariant variant (``equivariant=True``)
-----------------------------------------------
Every k×k×k convolution is tied to the symmetric kernels of :mod:`surrogate.equivariant`: the
cells' and (non-conservative) head's conv_k map scalar fields to scalar fields, w(R d) = w(d); the
flux conv_k(H -> 3) maps scalar fields to the vector field J, w(R d) = R w(d), without bias. The
1×1 convolutions and all pointwise maps act on channels only, and the divergence
Σ_a (J_a[i − e_a] − J_a[i + e_a]) of a vector field is a scalar field, so the step commutes with
all 48 rotations and reflections g of the cube (O_h)::

    step(g·φ, g·h1, g·h2) = (g·φ', g·h1', g·h2')       exactly, up to float round-off

on any periodic grid (axis permutations need X = Y = Z; the 8 reflections act on any grid), and
mass is conserved as before. In PyTorch a k = 3 conv runs stencils first: the four fixed
stencil sums of every input channel, then a channel product with the free taps (the flux conv:
channel products first, then the odd stencils), the same function as the dense kernel up to
round-off and ~2× cheaper to train (:mod:`surrogate.equivariant`, fast path); other k
materialise the kernel from the free taps at every call. :meth:`CRNN.to_plain` writes the kernels
into a plain CRNN (what the dense ONNX export runs: same graph, same cost per step; the factorised
export, export/factorised.py, keeps the stencils-first structure) and :meth:`CRNN.to_equivariant`
projects a plain model's kernels orthogonally onto the symmetric subspace (the group average).

Parameter count, equivariant, H = 10, k = 3 (4 free taps per scalar conv_k pair: centre, faces,
edges, corners; 3 per input channel of the flux conv: faces, edges, corners; derivation of the
cells in :mod:`surrogate.cells`)::

    cell1 (C_in = 1)                                               2,840
    cell2 (C_in = H)                                               3,920
    head  conv_1(H -> H) + conv_1(H -> H) = 2·(100 + 10)             220
          conservative:     flux conv_k(H -> 3) = 3·10, no bias       30
          non-conservative: conv_k(H -> 1) = 4·10·1 + 1               41
    total conservative     = 6,760 + 220 + 30 = 7,010
    total non-conservative = 6,760 + 220 + 41 = 7,021

An equivariant conservative model needs k ≥ 3: a 1×1×1 flux conv has no equivariant tap.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .boundary import WallsSequential, as_walls, flux_offset, vector_shift
from .cells import ConvGRU3DCell, PointwiseConv3d, check_architecture, periodic_conv
from .equivariant import SymmetricConv3d, symmetric_conv

__all__ = ["CRNN", "FluxDivergence"]

_SPATIAL = (-3, -2, -1)


class FluxDivergence(nn.Module):
    """Fixed divergence: J (N, 3, X, Y, Z) -> Σ_a (J_a[i − e_a] − J_a[i + e_a]) (N, 1, X, Y, Z).

    Component a of J pairs with spatial dim a (x: −3, y: −2, z: −1). No parameters, no buffers.
    This is minus the central-difference divergence times 2 dx; the sign and scale are
    absorbed by the learned flux. Periodic along every axis by default; across a no-flux wall
    (``walls``, :mod:`surrogate.boundary`) J_a's ghost value is its mirror with the sign changed
    (J_a[−1] = −J_a[0]), so the sum over the box still telescopes to zero: mass is conserved.
    """

    def forward(self, flux: torch.Tensor, walls=None) -> torch.Tensor:
        if flux.dim() != 5 or flux.shape[1] != 3:
            raise ValueError(f"expected flux of shape (N, 3, X, Y, Z), got {tuple(flux.shape)}")
        out = None
        for a, dim in enumerate(_SPATIAL):
            j = flux[:, a : a + 1]
            if walls is None:
                term = torch.roll(j, shifts=1, dims=dim) - torch.roll(j, shifts=-1, dims=dim)
            else:
                before, after = vector_shift(j, a, walls)
                term = before - after
            out = term if out is None else out + term
        return out


class CRNN(nn.Module):
    """Convolutional recurrent surrogate of one saved Cahn-Hilliard frame step.

    Parameters
    ----------
    conservative : bool
        True (default): flux head + fixed divergence, mass conserved to round-off.
        False: sigmoid head (the paper's non-conservative ablation).
    hidden : int
        Hidden channels H of both cells (default 10).
    kernel : int
        Odd kernel size k of the spatial convolutions (default 3).
    equivariant : bool
        False (default): unconstrained kernels (the paper's model). True: kernels tied to the cube
        symmetries, the step commutes exactly with the 48 rotations/reflections (:mod:`surrogate.model`;
        7,010 parameters for H = 10, k = 3). The default builds exactly the model, state-dict keys
        and random initialisation it always did.

    Notes
    -----
    Shapes: φ is (N, 1, X, Y, Z); hidden states h1, h2 are (N, H, X, Y, Z); any X, Y, Z ≥ 1.
    """

    def __init__(self, conservative: bool = True, hidden: int = 10, kernel: int = 3, equivariant: bool = False):
        super().__init__()
        if not isinstance(conservative, bool):
            raise ValueError(f"conservative must be a bool, got {conservative!r}")
        if not isinstance(equivariant, bool):
            raise ValueError(f"equivariant must be a bool, got {equivariant!r}")
        check_architecture(hidden, kernel)
        if equivariant and conservative and kernel < 3:
            raise ValueError(
                f"an equivariant conservative CRNN needs kernel >= 3 (a 1x1x1 flux conv has no "
                f"equivariant taps), got {kernel}"
            )
        self.conservative = conservative
        self.hidden = hidden
        self.kernel = kernel
        self.equivariant = equivariant
        conv = symmetric_conv if equivariant else periodic_conv
        self.cell1 = ConvGRU3DCell(1, hidden, kernel, conv=conv)
        self.cell2 = ConvGRU3DCell(hidden, hidden, kernel, conv=conv)
        self.head = WallsSequential(  # built in this order: the random initialisation depends on it
            PointwiseConv3d(hidden, hidden),
            nn.Tanh(),
            PointwiseConv3d(hidden, hidden),
            nn.Tanh(),
            SymmetricConv3d(hidden, 3, kernel, vector=True)  # the flux J is a vector field
            if conservative and equivariant
            else conv(hidden, 3 if conservative else 1, kernel),
        )
        self.divergence = FluxDivergence()
        self._walls = None  # the axes with no-flux walls (set_boundary); None: periodic
        #: True when the step commutes with the cube's mirrors (an equivariant model, or a plain copy of one,
        #: :meth:`to_plain`); the flux's mean along wall axes is then kept (``surrogate.boundary.flux_offset``)
        self.exact_mirror = equivariant

    # -- boundary ------------------------------------------------------------------------------
    def set_boundary(self, boundary) -> "CRNN":
        """Run on a box with no-flux walls (or periodic again); returns the model.

        ``boundary``: None or "periodic" (every axis, the default), "neumann", "X,Y,Z" or three names
        (``ch_numba.CHParams.boundary``'s forms). Every k×k×k convolution's input is then padded with the
        half-sample mirror on the wall axes and the flux's normal component is mirrored with its sign
        changed (:mod:`surrogate.boundary`); no weights change. Not stored in the state dict: a
        checkpoint's model is periodic until told otherwise.
        """
        self._walls = as_walls(boundary)
        return self

    @property
    def boundary(self) -> tuple:
        """(x, y, z) boundary names, e.g. ("periodic", "periodic", "neumann") (:meth:`set_boundary`)."""
        walls = self._walls or (False, False, False)
        return tuple("neumann" if w else "periodic" for w in walls)

    # -- description -------------------------------------------------------------------------
    @property
    def config(self) -> dict:
        """Constructor arguments, ``CRNN(**model.config)`` rebuilds the architecture."""
        return {
            "conservative": self.conservative,
            "hidden": self.hidden,
            "kernel": self.kernel,
            "equivariant": self.equivariant,
        }

    def param_count(self) -> int:
        """Number of trainable parameters (29,183 conservative / 28,641 not, for H = 10, k = 3;
        equivariant: the free parameters, 7,010 / 7,021)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def extra_repr(self) -> str:
        return (
            f"conservative={self.conservative}, hidden={self.hidden}, kernel={self.kernel}, "
            f"equivariant={self.equivariant}"
        )

    # -- plain <-> equivariant ---------------------------------------------------------------
    def _sibling(self, equivariant: bool) -> "CRNN":
        """A CRNN of this architecture (``equivariant`` as given) on this model's device and dtype,
        in this model's train/eval mode; built without touching torch's global RNG."""
        with torch.random.fork_rng(devices=[]):
            other = CRNN(self.conservative, self.hidden, self.kernel, equivariant=equivariant)
        other._walls, other.exact_mirror = self._walls, self.exact_mirror or equivariant
        p = next(self.parameters())
        return other.to(device=p.device, dtype=p.dtype).train(self.training)

    @torch.no_grad()
    def to_plain(self) -> "CRNN":
        """The same network as a plain CRNN (``equivariant=False``) with the materialised kernels.

        Every ``SymmetricConv3d`` (:mod:`surrogate.equivariant`) becomes the ``nn.Conv3d`` of the plain
        model with ``weight = Σ_r c_r B_r`` and its bias (zeros for the flux conv); all other
        weights are copied. The step is the same up to float round-off (the equivariant model sums
        the same products in another order, :mod:`surrogate.equivariant` fast path). A plain model
        is returned as a copy. Used by the ONNX export: same graph and cost as the paper's model.
        """
        if not self.equivariant:
            return copy.deepcopy(self)
        plain = self._sibling(False)
        state = dict(self.state_dict())
        for name, m in self.named_modules():
            if isinstance(m, SymmetricConv3d):
                state.pop(f"{name}.coeffs")
                state[f"{name}.weight"] = m.weight
                state[f"{name}.bias"] = m.bias if m.bias is not None else m.coeffs.new_zeros(m.out_channels)
        plain.load_state_dict(state)
        return plain

    @torch.no_grad()
    def to_equivariant(self) -> "CRNN":
        """An equivariant CRNN initialised by orthogonal projection of this model's kernels.

        Each k×k×k kernel w becomes its projection onto the cube-symmetric subspace, c = ⟨B, w⟩ /
        ⟨B, B⟩ per free tap (equal to the group average 1/48 Σ_g g·w); biases and 1×1 convolutions
        are copied, the flux conv's bias is dropped (its projection is 0). An equivariant model is
        returned as a copy. ``to_equivariant().to_plain()`` is the symmetrised plain model.
        """
        if self.equivariant:
            return copy.deepcopy(self)
        eq = self._sibling(True)
        state = dict(self.state_dict())
        for name, m in eq.named_modules():
            if isinstance(m, SymmetricConv3d):
                weight, bias = state.pop(f"{name}.weight"), state.pop(f"{name}.bias")
                state[f"{name}.coeffs"] = m.project(weight)
                if m.bias is not None:
                    state[f"{name}.bias"] = bias
        eq.load_state_dict(state)
        return eq

    # -- checks ------------------------------------------------------------------------------
    def _check_phi(self, phi: torch.Tensor, name: str = "phi") -> None:
        if not isinstance(phi, torch.Tensor):
            raise ValueError(f"expected {name} to be a torch.Tensor, got {type(phi).__name__}")
        if phi.dim() != 5 or phi.shape[1] != 1:
            raise ValueError(f"expected {name} of shape (N, 1, X, Y, Z), got {tuple(phi.shape)}")

    def _check_hidden(self, phi: torch.Tensor, h: torch.Tensor, name: str) -> None:
        n, _, *grid = phi.shape
        want = (n, self.hidden, *grid)
        if not isinstance(h, torch.Tensor) or tuple(h.shape) != want:
            got = tuple(h.shape) if isinstance(h, torch.Tensor) else type(h).__name__
            raise ValueError(f"expected {name} of shape {want} (N, {self.hidden}, X, Y, Z), got {got}")

    # -- one step ------------------------------------------------------------------------------
    def init_hidden(self, phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero hidden states (h1, h2), each (N, H, X, Y, Z), phi's dtype and device."""
        self._check_phi(phi)
        n, _, *grid = phi.shape
        return phi.new_zeros((n, self.hidden, *grid)), phi.new_zeros((n, self.hidden, *grid))

    def step(
        self, phi: torch.Tensor, h1: torch.Tensor, h2: torch.Tensor, walls=None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One network step with explicit hidden states (the unit the ONNX export takes).

        Parameters
        ----------
        phi : Tensor (N, 1, X, Y, Z)
        h1, h2 : Tensor (N, H, X, Y, Z)
        walls : bool Tensor (3,), optional
            The axes (x, y, z) with no-flux walls, chosen at run time (the exported step's input);
            default: the model's boundary (:meth:`set_boundary`).

        Returns
        -------
        (phi_next (N, 1, X, Y, Z), h1_next (N, H, X, Y, Z), h2_next (N, H, X, Y, Z))
        """
        self._check_phi(phi)
        self._check_hidden(phi, h1, "h1")
        self._check_hidden(phi, h2, "h2")
        if walls is None:
            walls = self._walls
        h1 = self.cell1(phi, h1, walls)
        h2 = self.cell2(h1, h2, walls)
        out = self.head(h2, walls)
        if self.conservative:
            out = out.to(phi.dtype)  # under autocast (bf16) the divergence still telescopes in phi's precision
            flux = out - flux_offset(out.mean(dim=_SPATIAL, keepdim=True), walls, self.exact_mirror)
            phi_next = phi + self.divergence(flux, walls)
        else:
            phi_next = torch.sigmoid(out)
        return phi_next, h1, h2

    def forward(
        self, phi: torch.Tensor, h1: torch.Tensor | None = None, h2: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``step`` with missing hidden states taken as zeros."""
        if h1 is None or h2 is None:
            z1, z2 = self.init_hidden(phi)
            h1 = z1 if h1 is None else h1
            h2 = z2 if h2 is None else h2
        return self.step(phi, h1, h2)

    # -- the loop ------------------------------------------------------------------------------
    def rollout(
        self,
        phi0: torch.Tensor,
        steps: int,
        teacher: torch.Tensor | None = None,
        input_noise: float = 0.0,
        generator: torch.Generator | None = None,
        hidden: tuple[torch.Tensor, torch.Tensor] | None = None,
        return_hidden: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Predict frames 1..steps from frame 0, hidden states starting at zero (or ``hidden``).

        Parameters
        ----------
        phi0 : Tensor (N, 1, X, Y, Z)
            Frame 0.
        steps : int ≥ 0
            Number of network steps (predicted frames).
        teacher : Tensor (N, L, 1, X, Y, Z), optional
            Ground-truth frames 1..L (teacher forcing). The input of step k + 1 is
            ``teacher[:, k - 1]`` for k ≤ L and the network's own prediction of frame k otherwise,
            so only the first min(L, steps − 1) teacher frames are used. L = 0 or None is a free
            run. Predictions are returned for every step either way.
        input_noise : float ≥ 0
            Training noise σ (default 0: none). Every step's input becomes φ + η − ⟨η⟩ with
            η ~ N(0, σ²) per voxel and ⟨η⟩ its volume mean per sample (so the mass is unchanged);
            the returned predictions are the steps' outputs, not the noisy inputs. A model trained
            so learns to pull perturbed states back towards the data (stability of long rollouts).
        generator : torch.Generator, optional
            Source of the noise (default: torch's global generator), on phi0's device.
        hidden : (h1, h2), each (N, H, X, Y, Z), optional
            Hidden states to start from (default zeros): with ``return_hidden`` a long rollout can
            be cut into pieces (truncated backpropagation in :mod:`surrogate.train`); phi0 is then
            the next step's input.
        return_hidden : bool
            Also return the hidden states after the last step.

        Returns
        -------
        Tensor (N, steps, 1, X, Y, Z): predicted frames 1..steps; with ``return_hidden`` the tuple
        (predictions, (h1, h2)).
        """
        self._check_phi(phi0, "phi0")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
        n, _, *grid = phi0.shape
        n_teacher = 0
        if teacher is not None:
            want = (n, "L", 1, *grid)
            ok = isinstance(teacher, torch.Tensor) and teacher.dim() == 6
            if not ok or teacher.shape[0] != n or tuple(teacher.shape[2:]) != (1, *grid):
                got = tuple(teacher.shape) if isinstance(teacher, torch.Tensor) else type(teacher).__name__
                shown = "(" + ", ".join(map(str, want)) + ")"
                raise ValueError(f"expected teacher of shape {shown} (N, L, 1, X, Y, Z), got {got}")
            n_teacher = teacher.shape[1]
        if isinstance(input_noise, bool) or not isinstance(input_noise, (int, float)) or not input_noise >= 0:
            raise ValueError(f"input_noise must be a number >= 0, got {input_noise!r}")
        if hidden is None:
            h1, h2 = self.init_hidden(phi0)
        else:
            h1, h2 = hidden
            self._check_hidden(phi0, h1, "h1")
            self._check_hidden(phi0, h2, "h2")
        phi = phi0
        preds = []
        for k in range(steps):
            if 0 < k <= n_teacher:
                phi = teacher[:, k - 1].to(dtype=phi0.dtype)
            if input_noise > 0:
                eta = torch.randn(phi.shape, generator=generator, device=phi.device, dtype=phi.dtype)
                phi = phi + input_noise * (eta - eta.mean(dim=_SPATIAL, keepdim=True))
            phi, h1, h2 = self.step(phi, h1, h2)
            preds.append(phi)
        out = torch.stack(preds, dim=1) if preds else phi0.new_empty((n, 0, 1, *grid))
        return (out, (h1, h2)) if return_hidden else out
