"""The cube-symmetric CRNN (``CRNN(equivariant=True)``): exact commutation with the 48 rotations and
reflections, its consequences (symmetric states keep their centre, mass), the kernel basis, the
projection from an unconstrained model, parameter counts, checkpoints and the ONNX export.

The group action is the library's one (surrogate.symmetry.cube_symmetry for scalar fields,
surrogate.equivariant.vector_symmetry for vector fields such as the flux kernel); ``symmetrise``
below is an independent projection (the plain group average of every kernel) used as reference.

Named tolerances: EXACT for identical op sequences; ROUNDOFF64 for float64 results that differ
only in summation order (a transformed input sums the same taps in another order); CENTRE for the
centre of a symmetric state after 10³ float64 steps, in cells; STEP_ATOL for onnxruntime against
PyTorch in float32 (as tests/test_export.py).
"""

import copy
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from export import onnx_export, spec
from export.runtime import Rollout
from surrogate import CRNN, ConvGRU3DCell, load_checkpoint, save_checkpoint
from surrogate.equivariant import SymmetricConv3d, cube_basis, vector_symmetry
from surrogate.symmetry import N_SYMMETRIES, SYMMETRIES, cube_symmetry, shape_preserving_symmetries

EXACT = dict(rtol=0.0, atol=0.0)
ROUNDOFF64 = dict(rtol=1e-12, atol=1e-12)
CENTRE = 1e-9
MASS_RTOL = 1e-12
STEP_ATOL = 1e-5
ROOT = Path(__file__).resolve().parents[1]
ROT_Z = 8 * 2 + 0b001  # permutation (1, 0, 2) then flip of the new x: a 90° rotation about z

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_model(equivariant=True, seed=0, scale=1.0, dtype=torch.float64, **kw):
    torch.manual_seed(seed)
    model = CRNN(equivariant=equivariant, **kw).to(dtype)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    return model.eval()


def rand_phi(shape, seed=11, dtype=torch.float64):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def symmetrise(model):
    """Reference projection: every conv kernel replaced by its group average 1/48 Σ_g g·w (scalar
    kernels; the conservative flux conv, weight and bias, as a vector field)."""
    flux = model.head[-1] if model.conservative else None
    with torch.no_grad():
        for m in model.modules():
            if not isinstance(m, nn.Conv3d):
                continue
            if m is flux:
                m.weight.copy_(sum(vector_symmetry(m.weight, s, 0) for s in range(N_SYMMETRIES)) / 48)
                b = m.bias[:, None, None, None, None]
                m.bias.copy_((sum(vector_symmetry(b, s, 0) for s in range(N_SYMMETRIES)) / 48).flatten())
            else:
                m.weight.copy_(sum(cube_symmetry(m.weight, s) for s in range(N_SYMMETRIES)) / 48)
    return model


def all_images(x, symmetries):
    """(N, ...) → (len(symmetries)·N, ...): the images of x under each symmetry, stacked on the batch."""
    return torch.cat([cube_symmetry(x, s) for s in symmetries])


# -- the kernel basis --------------------------------------------------------------------------------
def test_basis_of_3x3x3_kernels_is_centre_faces_edges_corners():
    d = np.indices((3, 3, 3)) - 1  # (3, 3, 3, 3): displacement d of every tap
    r2 = (d**2).sum(axis=0)
    scalar = cube_basis(3)
    assert scalar.shape == (4, 1, 3, 3, 3) and set(np.unique(scalar)) == {0.0, 1.0}
    for row, shell in zip(scalar[:, 0], range(4)):  # centre, 6 faces, 12 edges, 8 corners
        np.testing.assert_array_equal(row, (r2 == shell).astype(float))
    vector = cube_basis(3, vector=True)
    assert vector.shape == (3, 3, 3, 3, 3)
    for row, shell in zip(vector, (1, 2, 3)):  # w(d) = d on the faces, the edges, the corners
        np.testing.assert_array_equal(row, d * (r2 == shell))
    assert cube_basis(1).shape == (1, 1, 1, 1, 1) and cube_basis(1, vector=True).shape[0] == 0
    with pytest.raises(ValueError, match="kernel must be a positive odd integer"):
        cube_basis(4)


@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("vector", [False, True], ids=["scalar", "vector"])
def test_basis_spans_exactly_the_invariant_kernels(kernel, vector):
    """Every row is invariant, rows are orthogonal, and the group average of random kernels lies in their
    span and fills it (so the dimension is right: (m+1)(m+2)(m+3)/6 scalar classes, m = k // 2)."""
    B = cube_basis(kernel, vector)
    r = B.shape[0]
    act = (lambda w, s: vector_symmetry(w, s, 0)) if vector else cube_symmetry
    for s in range(N_SYMMETRIES):
        np.testing.assert_array_equal(act(B.transpose(1, 0, 2, 3, 4), s).transpose(1, 0, 2, 3, 4), B)
    flat = B.reshape(r, -1)
    gram = flat @ flat.T
    np.testing.assert_array_equal(gram, np.diag(np.diag(gram)))
    w = np.random.default_rng(0).standard_normal((r + 5, *B.shape[1:]))  # r + 5 random kernels (A, k, k, k)
    avg = sum(act(w.transpose(1, 0, 2, 3, 4), s) for s in range(N_SYMMETRIES)).transpose(1, 0, 2, 3, 4) / 48
    avg = avg.reshape(r + 5, -1)
    coef, *_ = np.linalg.lstsq(flat.T, avg.T, rcond=None)
    np.testing.assert_allclose(flat.T @ coef, avg.T, rtol=0, atol=1e-13)  # in the span
    assert np.linalg.matrix_rank(avg) == r  # and spans it
    if not vector:
        m = kernel // 2
        assert r == (m + 1) * (m + 2) * (m + 3) // 6


def test_vector_symmetry_turns_the_components():
    v = torch.arange(3 * 2 * 3 * 4, dtype=torch.float64).reshape(1, 3, 2, 3, 4)
    assert SYMMETRIES[ROT_Z] == ((1, 0, 2), 0b001)
    got = vector_symmetry(v, ROT_Z, 1)
    spatial = cube_symmetry(v, ROT_Z)
    torch.testing.assert_close(got[:, 0], -spatial[:, 1], **EXACT)  # J'_x = −J_y (bit 0 of the mask set)
    torch.testing.assert_close(got[:, 1], spatial[:, 0], **EXACT)  # J'_y = J_x
    torch.testing.assert_close(got[:, 2], spatial[:, 2], **EXACT)
    np.testing.assert_array_equal(vector_symmetry(v.numpy(), ROT_Z, 1), got.numpy())
    with pytest.raises(ValueError, match="3 vector components along a non-spatial dim"):
        vector_symmetry(v, 0, -1)


# -- architecture ------------------------------------------------------------------------------------
def test_parameter_counts_follow_the_derivation():
    """cell_k: conv_k has 4 free taps per (out, in) pair (k = 3) instead of 27; the flux conv has 3 per
    input channel and no bias (model docstring)."""
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    model = CRNN(equivariant=True)
    # i2h 4·C·30 + 30 + 30·30 + 30; h2h 4·10·20 + 20 + 20·20 + 20; h2c 4·10·10 + 10 + 10·10 + 10
    assert count(model.cell1) == (120 + 30 + 930) + (800 + 20 + 420) + (400 + 10 + 110) == 2_840
    assert count(model.cell2) == (1_200 + 30 + 930) + 1_240 + 520 == 3_920
    assert count(model.head) == 2 * 110 + 3 * 10 == 250
    assert model.param_count() == 7_010 and count(model) == 7_010
    assert CRNN(equivariant=True, conservative=False).param_count() == 6_760 + 220 + 4 * 10 + 1 == 7_021
    assert CRNN(equivariant=True, kernel=5).cell1.i2h[0].coeffs.shape == (30, 1, 10)
    assert model.head[-1].bias is None and model.head[-1].coeffs.shape == (1, 10, 3)


@pytest.mark.parametrize("conservative", [True, False])
def test_default_model_is_unchanged_and_shipped_checkpoints_load(conservative):
    """equivariant=False builds the paper's model: the modules, state-dict keys and random initialisation
    of the reference construction order (cell1, cell2, head 1×1, 1×1, conv_k); the shipped checkpoint
    (config without 'equivariant') loads as plain."""
    torch.manual_seed(3)
    reference = nn.ModuleDict(
        {
            "cell1": ConvGRU3DCell(1, 10, 3),
            "cell2": ConvGRU3DCell(10, 10, 3),
            "head": nn.Sequential(
                nn.Conv3d(10, 10, 1),
                nn.Tanh(),
                nn.Conv3d(10, 10, 1),
                nn.Tanh(),
                nn.Conv3d(10, 3 if conservative else 1, 3, padding=1, padding_mode="circular"),
            ),
        }
    ).state_dict()
    for model in (CRNN(conservative), CRNN(conservative, equivariant=False)):
        torch.manual_seed(3)
        state = type(model)(**model.config).state_dict()
        assert list(state) == list(reference)
        for k in reference:
            torch.testing.assert_close(state[k], reference[k], **EXACT, msg=k)
        assert not any(isinstance(m, SymmetricConv3d) for m in model.modules())
    if not conservative:
        return
    a = CRNN()
    # the paper-architecture model (saved before the option existed) still loads as unconstrained
    raw = torch.load(ROOT / "models" / "crnn_paper.pt", map_location="cpu", weights_only=False)
    assert "equivariant" not in raw["config"]
    assert list(raw["model_state"]) == list(a.state_dict())
    paper = load_checkpoint(ROOT / "models" / "crnn_paper.pt")["model"]
    assert paper.equivariant is False and paper.config["equivariant"] is False


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="equivariant must be a bool"):
        CRNN(equivariant="yes")
    with pytest.raises(ValueError, match="needs kernel >= 3"):
        CRNN(equivariant=True, kernel=1)
    assert CRNN(equivariant=True, conservative=False, kernel=1).param_count() > 0  # scalar 1×1: allowed
    with pytest.raises(ValueError, match="multiple of 3 channels"):
        SymmetricConv3d(4, 4, 3, vector=True)
    with pytest.raises(ValueError, match=r"expected a kernel of shape \(30, 1, 3, 3, 3\)"):
        CRNN(equivariant=True).cell1.i2h[0].project(torch.zeros(30, 1, 5, 5, 5))


# -- exact equivariance --------------------------------------------------------------------------------
@pytest.mark.parametrize("conservative", [True, False])
def test_one_step_with_hidden_states_commutes_with_all_48_symmetries(conservative):
    model = make_model(scale=1.5, conservative=conservative)
    phi = rand_phi((1, 1, 6, 6, 6))
    h1, h2 = rand_phi((1, 10, 6, 6, 6), seed=2) - 0.5, rand_phi((1, 10, 6, 6, 6), seed=3) - 0.5
    group = range(N_SYMMETRIES)
    with torch.no_grad():
        want = model.step(phi, h1, h2)
        got = model.step(*(all_images(t, group) for t in (phi, h1, h2)))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, all_images(w, group), **ROUNDOFF64)


def test_50_step_rollout_commutes_with_all_48_symmetries_and_is_not_trivial():
    model = make_model(scale=1.5)  # the field leaves [0, 1] by ~2: a strongly non-linear map
    phi0 = rand_phi((1, 1, 6, 6, 6))
    group = range(N_SYMMETRIES)
    with torch.no_grad():
        out = model.rollout(phi0, 50)[0]  # (50, 1, X, Y, Z)
        got = model.rollout(all_images(phi0, group), 50)  # (48, 50, 1, X, Y, Z)
    for s in group:
        torch.testing.assert_close(got[s], cube_symmetry(out, s), **ROUNDOFF64, msg=f"symmetry {s}")
    # the test can fail: the rollout of a generic input is not invariant, it did evolve, and the
    # unconstrained model with the same input does not commute
    assert min((cube_symmetry(out, s) - out).abs().max() for s in range(1, N_SYMMETRIES)) > 1e-2
    assert (out[-1] - out[-2]).abs().max() > 1e-2
    plain = make_model(equivariant=False)
    with torch.no_grad():
        diff = plain.rollout(cube_symmetry(phi0, ROT_Z), 2)[0] - cube_symmetry(plain.rollout(phi0, 2)[0], ROT_Z)
    assert diff.abs().max() > 1e-3


def test_reflections_commute_on_a_non_cubic_grid():
    model = make_model(scale=1.5)
    phi0 = rand_phi((1, 1, 5, 6, 7))
    reflections = shape_preserving_symmetries((5, 6, 7))
    assert len(reflections) == 8
    with torch.no_grad():
        out = model.rollout(phi0, 50)[0]
        got = model.rollout(all_images(phi0, reflections), 50)
    for i, s in enumerate(reflections):
        torch.testing.assert_close(got[i], cube_symmetry(out, s), **ROUNDOFF64, msg=f"symmetry {s}")
    assert min((cube_symmetry(out, s) - out).abs().max() for s in reflections[1:]) > 1e-2


def test_mass_is_conserved_to_roundoff():
    model = make_model(scale=1.5)
    phi0 = rand_phi((2, 1, 8, 8, 8), seed=5)
    with torch.no_grad():
        out = model.rollout(phi0, 200)
    mean0 = phi0.mean(dim=(2, 3, 4))[:, None]
    assert ((out.mean(dim=(3, 4, 5)) - mean0).abs() / mean0).max() < MASS_RTOL
    assert (out[:, -1] - phi0).abs().max() > 0.5


# -- consequences: symmetric states keep their centre ------------------------------------------------
def tanh_profile(dist, half_width, eps=1.0):
    """φ = ½ (1 + tanh((w − |dist|) / (√2 ε))): 1 inside, 0 outside, equilibrium interfaces."""
    return 0.5 * (1 + torch.tanh((half_width - dist) / (math.sqrt(2) * eps)))


def periodic_distance(n, c):
    x = torch.arange(n, dtype=torch.float64)
    return torch.remainder(x - c + n / 2, n) - n / 2


def centre(phi, dim):
    """Circular first moment of φ − ⟨φ⟩ along a spatial dim of (N, 1, X, Y, Z), in cells: (N,)."""
    n = phi.shape[dim]
    profile = (phi - phi.mean()).sum(dim=[d for d in (2, 3, 4) if d != dim]).reshape(phi.shape[0], n)
    theta = 2 * math.pi * torch.arange(n, dtype=phi.dtype) / n
    return n / (2 * math.pi) * torch.atan2((profile * theta.sin()).sum(-1), (profile * theta.cos()).sum(-1))


def slab(axis, n=16, thin=3, c=7.5):
    """A flat layer normal to ``axis``, 8 cells thick, mirror-symmetric about the plane x_axis = c."""
    shape = [1, 1, thin, thin, thin]
    shape[2 + axis] = n
    view = [1, 1, 1, 1, 1]
    view[2 + axis] = n
    return tanh_profile(periodic_distance(n, c).abs(), 4.0).reshape(view).expand(shape).contiguous()


def droplet(n=8, c=(4.0, 4.0, 4.0), radius=2.5):
    """A sphere centred on a grid point: invariant under all 48 symmetries about its centre."""
    d = [periodic_distance(n, ci) for ci in c]
    r = (d[0][:, None, None] ** 2 + d[1][None, :, None] ** 2 + d[2][None, None, :] ** 2).sqrt()
    return tanh_profile(r, radius)[None, None]


def test_mirror_symmetric_layers_and_droplet_keep_their_centre():
    """A reflection (composed with a periodic shift) maps each state to itself, so an equivariant model
    keeps the symmetry, hence the centre, over 10³ steps; the unconstrained model moves it."""
    model = make_model(scale=0.5)  # small weights: the field stays bounded and evolves
    plain = make_model(equivariant=False, scale=0.5)
    cases = [(slab(a), [2 + a]) for a in range(3)] + [(droplet(), [2, 3, 4])]
    for phi0, dims in cases:
        with torch.no_grad():
            out = model.rollout(phi0, 1000)[:, -1]
            moved = plain.rollout(phi0, 100)[:, -1]
        assert torch.isfinite(out).all() and out.abs().max() < 5
        assert (out - phi0).abs().max() > 0.01  # the state did change (by 0.04 for the layers, 0.4 the droplet)
        for dim in dims:
            n = phi0.shape[dim]
            shift = lambda a, b: (torch.remainder(a - b + n / 2, n) - n / 2).abs().item()  # noqa: E731
            assert shift(centre(out, dim), centre(phi0, dim)) < CENTRE, (tuple(phi0.shape), dim)
            assert shift(centre(moved, dim), centre(phi0, dim)) > 1e-4, (tuple(phi0.shape), dim)


# -- plain <-> equivariant ------------------------------------------------------------------------------
@pytest.mark.parametrize("conservative", [True, False])
def test_projection_of_an_unconstrained_model_is_its_group_average(conservative):
    plain = make_model(equivariant=False, conservative=conservative, seed=4)
    eq = plain.to_equivariant()
    assert eq.equivariant and eq.config == dict(plain.config, equivariant=True)
    want = symmetrise(copy.deepcopy(plain)).state_dict()
    got = eq.to_plain().state_dict()
    assert list(got) == list(want)
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=0, atol=1e-15, msg=k)
    # projecting a kernel that is already symmetric changes nothing
    again = eq.to_plain().to_equivariant().state_dict()
    for k, v in eq.state_dict().items():
        torch.testing.assert_close(again[k], v, rtol=0, atol=1e-15, msg=k)


def test_to_plain_is_the_same_step_and_leaves_the_rng_alone():
    model = make_model(scale=1.5)
    phi0 = rand_phi((2, 1, 6, 7, 8))
    rng = torch.get_rng_state()
    plain = model.to_plain()
    assert torch.equal(torch.get_rng_state(), rng)
    assert not plain.equivariant and plain.param_count() == 29_183 and plain.head[-1].bias.abs().max() == 0
    assert next(plain.parameters()).dtype == torch.float64 and not plain.training
    with torch.no_grad():
        # dense kernels against the stencils-first fast path: the same sums in another order
        torch.testing.assert_close(plain.rollout(phi0, 5), model.rollout(phi0, 5), **ROUNDOFF64)
    assert model.to_equivariant() is not model and plain.to_plain() is not plain  # copies


def rolled_conv(x, weight, bias):
    """Reference periodic k = 3 cross-correlation y(i) = Σ_d w(d) x(i + d) + b from torch.roll."""
    y = sum(
        torch.einsum("oc,ncxyz->noxyz", weight[:, :, a + 1, b + 1, c + 1], torch.roll(x, (-a, -b, -c), (2, 3, 4)))
        for a in (-1, 0, 1)
        for b in (-1, 0, 1)
        for c in (-1, 0, 1)
    )
    return y if bias is None else y + bias[None, :, None, None, None]


@pytest.mark.parametrize("vector", [False, True])
@pytest.mark.parametrize("grid", [(5, 6, 7), (1, 2, 3), (4, 4, 4)])
def test_fast_path_is_the_dense_convolution_with_its_gradients(vector, grid):
    """SymmetricConv3d (k = 3) runs stencils and channel sums instead of conv3d: values and the
    gradients of x, the free taps and the bias equal those of the materialised kernel."""
    torch.manual_seed(11)
    m = SymmetricConv3d(3, 6 if vector else 5, 3, vector=vector).double()
    x = torch.randn(2, 3, *grid, dtype=torch.float64, requires_grad=True)
    y = m(x)
    ref = rolled_conv(x, m.weight, m.bias)
    torch.testing.assert_close(y, ref, **ROUNDOFF64)
    probe = torch.randn_like(ref)
    params = [x, m.coeffs] + ([m.bias] if m.bias is not None else [])
    got = torch.autograd.grad((y * probe).sum(), params)
    want = torch.autograd.grad((ref * probe).sum(), params)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, **ROUNDOFF64)
    assert float(ref.detach().abs().max()) > 0.1  # not a trivially zero comparison


def test_gradients_reach_every_free_tap():
    model = make_model(dtype=torch.float32).train()
    model.rollout(rand_phi((2, 1, 6, 6, 6), dtype=torch.float32), 3).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().max() > 0, name


# -- checkpoints and export ------------------------------------------------------------------------------
def test_checkpoint_round_trip(tmp_path):
    model = make_model(dtype=torch.float32, seed=2)
    path = save_checkpoint(model, tmp_path / "eq.pt", epoch=1)
    ck = load_checkpoint(path)
    assert ck["config"] == {"conservative": True, "hidden": 10, "kernel": 3, "equivariant": True}
    assert ck["model"].equivariant and "cell1.i2h.0.coeffs" in ck["model_state"]
    assert not any(k.endswith("basis") for k in ck["model_state"])  # rebuilt, not stored
    phi0 = rand_phi((1, 1, 6, 6, 6), dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(ck["model"].rollout(phi0, 4), model.rollout(phi0, 4), **EXACT)


def test_export_writes_the_plain_graph_and_records_equivariant(tmp_path, exported_model, dataset_attrs):
    model = make_model(dtype=torch.float32, seed=5, scale=1.5)
    ckpt = save_checkpoint(
        model, tmp_path / "eq.pt", epoch=3, downscale=2, dataset={"path": "/data/train.h5", "attrs": dataset_attrs}
    )
    path = tmp_path / "eq.onnx"
    meta = onnx_export.export_checkpoint(ckpt, path)
    assert meta["equivariant"] is True and meta["param_count"] == 7_010
    runner = Rollout(path, providers="cpu", threads=1)
    assert runner.metadata["equivariant"] is True and runner.metadata["param_count"] == 7_010
    # the graph is the plain model's: same nodes (so the same cost per step), same signature, except the few
    # nodes on the (N, 3, 1, 1, 1) flux mean that keep it on wall axes (exact_mirror: the equivariant model's
    # wall step is the mirror-doubled box's; the plain model removes it on every axis)
    proto, plain = onnx.load(str(path)), onnx.load(str(exported_model[1]))
    ops = Counter(n.op_type for n in onnx_export.graph_nodes(proto.graph))
    plain_ops = Counter(n.op_type for n in onnx_export.graph_nodes(plain.graph))
    heavy = ("Conv", "Concat", "Slice", "Tanh", "Sigmoid", "Mul", "Add", "Sub")
    assert {k: ops[k] for k in heavy} == {k: plain_ops[k] for k in heavy}
    assert sum((ops - plain_ops).values()) <= 6 and not plain_ops - ops
    assert [i.name for i in proto.graph.input] == [*spec.INPUTS, spec.WALLS_INPUT]  # walls: optional (a default)
    assert [o.name for o in proto.graph.output] == list(spec.OUTPUTS)
    assert json.loads({p.key: p.value for p in plain.metadata_props}[spec.METADATA_KEY])["equivariant"] is False
    # onnxruntime = PyTorch, and the exported step still commutes with a rotation (float32 round-off)
    rng = np.random.default_rng(3)
    phi = rng.random((2, 1, 8, 8, 8), dtype=np.float32)
    h1, h2 = (rng.uniform(-1, 1, (2, 10, 8, 8, 8)).astype(np.float32) for _ in range(2))
    got = runner.session.run(list(spec.OUTPUTS), {"phi": phi, "h1": h1, "h2": h2})
    with torch.no_grad():
        want = model.step(*(torch.from_numpy(a) for a in (phi, h1, h2)))
    for name, g, w in zip(spec.OUTPUTS, got, want):
        np.testing.assert_allclose(g, w.numpy(), rtol=0, atol=STEP_ATOL, err_msg=name)
    rot = [np.ascontiguousarray(cube_symmetry(a, ROT_Z)) for a in (phi, h1, h2)]
    turned = runner.session.run(list(spec.OUTPUTS), dict(zip(spec.INPUTS, rot)))
    for name, t, g in zip(spec.OUTPUTS, turned, got):
        np.testing.assert_allclose(t, cube_symmetry(g, ROT_Z), rtol=0, atol=STEP_ATOL, err_msg=name)
    assert np.abs(cube_symmetry(got[0], ROT_Z) - got[0]).max() > 100 * STEP_ATOL
    # and a free-running rollout (the exporter's own check: step and 30 steps from Perlin fields)
    report = onnx_export.verify(path, model, grids=[(8, 8, 8)], steps=30, threads=1)
    assert all(r["ok"] for r in report), report
