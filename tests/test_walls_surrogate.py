"""No-flux walls in the surrogate (issue 27 item 4–5): the network's step on a box with walls.

The specification (surrogate/boundary.py): a box of N cells with walls along an axis is the periodic box
of 2N cells holding the field and its mirror image, restricted to the first N. A cube-equivariant model
commutes with that mirror, so its step on the wall box must equal the restriction of its periodic step
on the doubled box — φ and both hidden states, every step — which is the independent reference here
(computed by the unchanged periodic code path). Mass is exact on wall boxes for every conservative model.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from surrogate import CRNN, load_checkpoint  # noqa: E402
from surrogate.boundary import pad  # noqa: E402
from surrogate.equivariant import SymmetricConv3d  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHIPPED = "models/crnn64.pt"  # a trained equivariant model: stable over 100 steps, unlike random weights


def _doubled(x: torch.Tensor, axes) -> torch.Tensor:
    """The field and its mirror image along each axis in ``axes`` (0, 1, 2 = x, y, z): shape doubled there."""
    for a in axes:
        d = a - 3
        x = torch.cat([x, x.flip(d)], dim=d)
    return x


def _boundary(axes) -> tuple:
    return tuple("neumann" if a in axes else "periodic" for a in range(3))


def _model(dtype=torch.float64) -> CRNN:
    return load_checkpoint(SHIPPED)["model"].to(dtype).eval()


@pytest.mark.parametrize("axes", [(2,), (0, 1, 2), (0, 2)])
def test_walls_step_is_the_restricted_step_of_the_mirror_doubled_periodic_box(axes):
    """float64, 100 steps, φ and hidden states: ≤ 1e-10 (issue 27 item 4); mass exact on the wall box."""
    model = _model()
    grid = (7, 6, 5)
    g = torch.Generator().manual_seed(sum(axes))
    phi = 0.5 + 0.1 * torch.randn((1, 1, *grid), generator=g, dtype=torch.float64)
    walls = model.__class__(**model.config).to(torch.float64).eval()
    walls.load_state_dict(model.state_dict())
    walls.set_boundary(_boundary(axes))
    assert walls.boundary == _boundary(axes) and model.boundary == ("periodic",) * 3
    inner = (..., slice(0, grid[0]), slice(0, grid[1]), slice(0, grid[2]))
    x, big = phi, _doubled(phi, axes)
    h, hb = walls.init_hidden(x), model.init_hidden(big)
    worst = 0.0
    with torch.no_grad():
        for _ in range(100):
            x, *h = walls.step(x, *h)
            big, *hb = model.step(big, *hb)
            for a, b in zip((x, *h), (big, *hb)):
                worst = max(worst, (a - b[inner]).abs().max().item())
    assert worst <= 1e-10, worst
    assert abs(x.sum().item() - phi.sum().item()) <= 1e-12 * phi.sum().item()
    # the wall box's field is not trivially the periodic box's: the boundary changed the result
    with torch.no_grad():
        periodic = model.rollout(phi, 100)[:, -1]
    assert (periodic - x).abs().max().item() > 1e-3


def test_float32_and_the_runtime_walls_tensor_agree_with_the_static_walls():
    """float32 (what training and the runtime use): ≤ 1e-5 over 100 steps against the doubled periodic box;
    the run-time bool tensor ``walls`` (the exported graph's input) gives the static tuple's step exactly."""
    model = _model(torch.float32)
    grid, axes = (8, 6, 6), (1, 2)
    phi = 0.5 + 0.1 * torch.randn((2, 1, *grid), generator=torch.Generator().manual_seed(5))
    inner = (..., slice(0, grid[0]), slice(0, grid[1]), slice(0, grid[2]))
    with torch.no_grad():
        big = model.rollout(_doubled(phi, axes), 100)[..., : grid[0], : grid[1], : grid[2]]
        model.set_boundary(_boundary(axes))
        small = model.rollout(phi, 100)
        h = model.init_hidden(phi)
        static = model.step(phi, *h)
        model.set_boundary(None)
        dynamic = model.step(phi, *h, walls=torch.tensor([False, True, True]))
    assert (small - big[inner]).abs().max().item() <= 1e-5
    for a, b in zip(static, dynamic):
        assert torch.equal(a, b)


def test_pad_is_the_half_sample_mirror_on_walls_and_circular_elsewhere():
    """Against numpy's own pads: 'symmetric' (x[−1] = x[0]) on wall axes, 'wrap' on periodic ones, p = 1 and 2."""
    x = torch.randn(2, 3, 5, 4, 6, dtype=torch.float64)
    for p in (1, 2):
        for walls in [(True, False, True), (False, False, False), (True, True, True)]:
            want = x.numpy()
            for axis, wall in enumerate(walls):
                width = [(0, 0)] * 5
                width[2 + axis] = (p, p)
                want = np.pad(want, width, mode="symmetric" if wall else "wrap")
            np.testing.assert_array_equal(pad(x, p, walls).numpy(), want)
            np.testing.assert_array_equal(pad(x, p, torch.tensor(walls)).numpy(), want)
    np.testing.assert_array_equal(pad(x, 1, None).numpy(), np.pad(x.numpy(), [(0, 0)] * 2 + [(1, 1)] * 3, "wrap"))


@pytest.mark.parametrize("vector", [False, True])
def test_stencils_first_fast_path_equals_the_dense_conv_on_walls(vector):
    """The equivariant convs' fast paths (stencils of the padded field, interior kept) = the dense conv of the
    mirror-padded field, values and gradients (training on wall data uses the fast path)."""
    torch.manual_seed(1)
    conv = SymmetricConv3d(4, 6, 3, vector=vector).double()
    x = torch.randn(2, 4, 6, 5, 7, dtype=torch.float64, requires_grad=True)
    walls = (True, False, True)
    fast = conv(x, walls)
    (g_fast,) = torch.autograd.grad(fast.square().sum(), x)
    conv.stencils_first = False
    dense = conv(x, walls)
    (g_dense,) = torch.autograd.grad(dense.square().sum(), x)
    assert (fast - dense).abs().max().item() <= 1e-12
    assert (g_fast - g_dense).abs().max().item() <= 1e-11


def test_mass_is_exact_on_walls_for_the_papers_unconstrained_model_too():
    """The plain (not equivariant) model has no exact mirror symmetry, but the odd normal flux still lets no
    mass through a wall: Σφ conserved to float64 round-off over 50 steps, on walls along one and three axes."""
    torch.manual_seed(2)
    model = CRNN().double().eval()
    phi = 0.5 + 0.1 * torch.randn(1, 1, 6, 5, 4, dtype=torch.float64)
    for boundary in ("periodic,periodic,neumann", "neumann"):
        model.set_boundary(boundary)
        with torch.no_grad():
            out = model.rollout(phi, 50)
        drift = (out.sum(dim=(-3, -2, -1)) - phi.sum()).abs().max().item()
        assert drift <= 1e-12 * phi.sum().item(), (boundary, drift)


def test_set_boundary_bad_input_is_one_line():
    model = CRNN()
    with pytest.raises(ValueError, match=r"^unknown boundary 'dirichlet'"):
        model.set_boundary("dirichlet")
    with pytest.raises(ValueError, match="one entry per axis"):
        model.set_boundary(("neumann", "periodic"))
    assert model.set_boundary("neumann,periodic,periodic").boundary == ("neumann", "periodic", "periodic")
    assert model.set_boundary("periodic").boundary == ("periodic",) * 3


@pytest.fixture(scope="module")
def shipped_walls_onnx(tmp_path_factory):
    """The shipped paper-scale checkpoint exported with the walls input (dense and factorised graphs), and with
    --pad-mode wrap (a periodic-only graph)."""
    pytest.importorskip("onnx")
    from export import onnx_export

    folder = tmp_path_factory.mktemp("walls_onnx")
    out = {}
    for name, kw in {
        "dense": {},
        "factorised": {"graph": "factorised"},
        "wrap": {"pad_mode": "wrap", "opset": 19},
    }.items():
        out[name] = folder / f"{name}.onnx"
        onnx_export.export_checkpoint(SHIPPED, out[name], **kw)
    return out


@pytest.mark.parametrize("graph", ["dense", "factorised"])
def test_exported_step_runs_walls_as_pytorch_does(shipped_walls_onnx, graph):
    """onnxruntime with Rollout(boundary=...) = the PyTorch model with set_boundary: ≤ 1e-5 per step and
    ≤ 1e-4 over 100 steps (float32); mass conserved; the periodic default unchanged."""
    from export.runtime import Rollout

    model = _model(torch.float32)
    rng = np.random.default_rng(7)
    phi = (0.5 + 0.1 * rng.standard_normal((1, 1, 10, 8, 6))).astype(np.float32)
    for boundary in ("periodic", "periodic,periodic,neumann", "neumann"):
        runner = Rollout(shipped_walls_onnx[graph], providers="cpu", threads=1, boundary=boundary)
        assert runner.supports_walls and runner.boundary == model.set_boundary(boundary).boundary
        got = np.stack([f[:, 0] for f in runner.rollout(phi, 100)], axis=1)
        with torch.no_grad():
            want = model.rollout(torch.from_numpy(phi), 100)[:, :, 0].numpy()
        assert np.abs(got[:, 0] - want[:, 0]).max() <= 1e-5
        assert np.abs(got - want).max() <= 1e-4, boundary
        drift = abs(got[0, -1].sum(dtype=np.float64) - phi.sum(dtype=np.float64)) / phi.sum(dtype=np.float64)
        assert drift <= 1e-6, (boundary, drift)


def test_a_periodic_only_graph_refuses_walls_in_one_line(shipped_walls_onnx):
    from export.runtime import Rollout

    runner = Rollout(shipped_walls_onnx["wrap"], providers="cpu", threads=1)
    assert not runner.supports_walls and runner.metadata["boundaries"] == "periodic"
    with pytest.raises(ValueError, match=r"cannot run a box with no-flux walls \(boundary periodic,neumann,periodic\)"):
        Rollout(shipped_walls_onnx["wrap"], providers="cpu", threads=1, boundary="periodic,neumann,periodic")
    with pytest.raises(ValueError, match="^unknown boundary 'wall'"):
        Rollout(shipped_walls_onnx["dense"], providers="cpu", threads=1, boundary="wall")


def test_the_onnx_reference_evaluator_runs_the_walls_graph(shipped_walls_onnx):
    """Standard ONNX ops only: onnx's reference evaluator gives onnxruntime's step with walls fed (≤ 1e-5)."""
    onnx_reference = pytest.importorskip("onnx.reference")
    from export.runtime import Rollout

    rng = np.random.default_rng(3)
    phi = (0.5 + 0.1 * rng.standard_normal((1, 1, 5, 4, 6))).astype(np.float32)
    h = np.zeros((1, 10, 5, 4, 6), np.float32)
    walls = np.array([True, False, True])
    ref = onnx_reference.ReferenceEvaluator(str(shipped_walls_onnx["dense"]))
    got = ref.run(None, {"phi": phi, "h1": h, "h2": h, "walls": walls})[0]
    want = Rollout(shipped_walls_onnx["dense"], providers="cpu", threads=1, boundary="neumann,periodic,neumann").step(
        phi
    )
    assert np.abs(got - want).max() <= 1e-5
    periodic = ref.run(None, {"phi": phi, "h1": h, "h2": h, "walls": np.zeros(3, bool)})[0]
    assert np.abs(periodic - got).max() > 1e-4
