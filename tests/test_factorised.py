"""``python -m export --graph factorised`` (export/factorised.py, issue 26 item 1): the same step as the dense graph.

References: the equivariant model's own PyTorch step (float64, to round-off), the shipped dense exports
``models/crnn.onnx`` / ``models/crnn64.onnx`` (one step within 1e-5, a 100-step rollout within 1e-4: the
issue's tolerances), and the onnx reference evaluator (pure numpy, no onnxruntime) on a tiny grid.
"""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from ch_numba import initial
from export import factorised, onnx_export, options
from export.__main__ import main as export_main
from export.runtime import Rollout
from surrogate import CRNN

ROOT = Path(__file__).resolve().parents[1]
STEP_ATOL = 1e-5  # issue 26: factorised vs dense, one step
ROLLOUT_ATOL = 1e-4  # issue 26: over 100 steps
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def state(grid, batch=2, hidden=10, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    phi = rng.random((batch, 1, *grid)).astype(dtype)
    h1, h2 = (rng.uniform(-1, 1, (batch, hidden, *grid)).astype(dtype) for _ in range(2))
    return phi, h1, h2


@pytest.mark.parametrize("kw", [{}, {"conservative": False}, {"kernel": 5, "hidden": 4}])
def test_factorised_step_is_the_models_step_in_float64(kw):
    torch.manual_seed(0)
    model = CRNN(equivariant=True, **kw).double().eval()
    fact = factorised.factorised_copy(model)
    args = [torch.from_numpy(a) for a in state((6, 7, 8), hidden=model.hidden, dtype=np.float64)]
    with torch.no_grad():
        for a, b in zip(model.step(*args), fact.step(*args)):
            np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=0, atol=1e-13)
    convs = [m for m in fact.modules() if isinstance(m, torch.nn.Conv3d)]
    k = model.kernel
    # every k^3 Conv has fixed 0/±1 stencil weights and is grouped (one group per input channel, or per
    # output channel / field for the channels-first order); the free taps sit in the 1×1 Convs
    big = [c for c in convs if c.kernel_size == (k, k, k)]
    per_group = {1, len(factorised.cube_basis(k)), len(factorised.cube_basis(k, True))}
    assert big and all(c.in_channels // c.groups in per_group for c in big)
    assert all(set(np.unique(c.weight.detach().numpy())) <= {-1.0, 0.0, 1.0} for c in big)


def test_multiply_adds_of_the_crnn_convs():
    """The counts of the module docstring: 27·C·O dense; r·k³·min(C, O) + r·C·O factorised (k = 3, r = 4)."""
    got = {(c, o): factorised.multiply_adds(c, o, 3) for c, o in ((1, 30), (10, 30), (10, 20), (10, 10))}
    assert {k: (v["dense"], v["factorised"]) for k, v in got.items()} == {
        (1, 30): (810, 108 + 120),
        (10, 30): (8100, 1080 + 1200),
        (10, 20): (5400, 1080 + 800),
        (10, 10): (2700, 1080 + 400),
    }
    flux = factorised.multiply_adds(10, 3, 3, vector=True)
    assert (flux["dense"], flux["factorised"], flux["order"]) == (810, 30 + 243, "channels first")
    assert factorised.multiply_adds(30, 10, 3)["order"] == "channels first"
    # the seven k³ convolutions of the H = 10 CRNN (cells: 1 -> 30, 10 -> 20, 10 -> 10; 10 -> 30, 10 -> 20,
    # 10 -> 10; the flux head) as the module docstring sums them
    model = CRNN(equivariant=True)
    convs = [m for m in model.modules() if isinstance(m, factorised.SymmetricConv3d)]
    counts = [factorised.multiply_adds(m.in_channels, m.out_channels, m.kernel, m.vector) for m in convs]
    assert len(convs) == 7
    assert (sum(c["dense"] for c in counts), sum(c["factorised"] for c in counts)) == (25920, 9501)


def test_graph_choice_and_refusals(tmp_path, capsys):
    assert factorised.check_graph(None, True) == options.DEFAULT_EQUIVARIANT_GRAPH  # dense until measured faster
    assert factorised.check_graph(None, False) == "dense"
    with pytest.raises(ValueError, match="needs a cube-equivariant model"):
        factorised.check_graph("factorised", False)
    with pytest.raises(ValueError, match="graph must be one of"):
        factorised.check_graph("sparse", True)
    code = export_main([str(ROOT / "models" / "crnn_paper.pt"), str(tmp_path / "x.onnx"), "--graph", "factorised"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "needs a cube-equivariant model" in err[0]
    assert not (tmp_path / "x.onnx").exists()


def compare_with_shipped(name, tmp_path, grid=(16, 16, 16), steps=100):
    """Export models/NAME.pt factorised; max |factorised − shipped dense| after one step and over a rollout."""
    out = tmp_path / f"{name}_factorised.onnx"
    meta = onnx_export.export_checkpoint(ROOT / "models" / f"{name}.pt", out, graph="factorised")
    assert meta["exported"]["graph"] == "factorised"
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto, full_check=True)
    assert json.loads(proto.metadata_props[0].value)["exported"]["graph"] == "factorised"
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    # each Conv once (the periodic and the walls branch of the graph's If share the weights)
    convs = {n.input[1]: weights[n.input[1]] for n in onnx_export.graph_nodes(proto.graph) if n.op_type == "Conv"}
    convs = list(convs.values())
    spatial = [w for w in convs if w.shape[2:] == (3, 3, 3)]
    # the 7 k³ convolutions (2 cells × 3 gates + the flux head) all carry fixed 0/±1 stencils now
    assert len(spatial) == 7 and all(set(np.unique(w)) <= {-1.0, 0.0, 1.0} for w in spatial)
    dense = Rollout(ROOT / "models" / f"{name}.onnx", providers="cpu", threads=1)
    fact = Rollout(out, providers="cpu", threads=1)
    feed = dict(zip(("phi", "h1", "h2"), state(grid)))
    step = max(
        float(np.max(np.abs(a - b))) for a, b in zip(dense.session.run(None, feed), fact.session.run(None, feed))
    )
    phi0 = np.stack([initial.perlin(grid, frequency=2, seed=1 + i, mean=0.5, amplitude=0.1) for i in range(2)])[:, None]
    frames = {k: np.stack(list(r.rollout(phi0, steps))) for k, r in (("dense", dense), ("fact", fact))}
    return out, step, float(np.max(np.abs(frames["dense"] - frames["fact"])))


def test_factorised_crnn_equals_the_shipped_dense_export(tmp_path):
    out, step, roll = compare_with_shipped("crnn", tmp_path)
    assert step <= STEP_ATOL, step
    assert roll <= ROLLOUT_ATOL, roll
    # the onnx reference evaluator (numpy, no onnxruntime) runs the factorised graph: same step as ORT's dense
    from onnx.reference import ReferenceEvaluator

    feed = dict(zip(("phi", "h1", "h2"), state((3, 4, 5), batch=1, seed=2)))
    ref = ReferenceEvaluator(str(out)).run(None, feed)
    dense = Rollout(ROOT / "models" / "crnn.onnx", providers="cpu", threads=1).session.run(None, feed)
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(ref, dense)) <= STEP_ATOL


@pytest.mark.slow
def test_factorised_crnn64_equals_the_shipped_dense_export(tmp_path):
    _, step, roll = compare_with_shipped("crnn64", tmp_path, grid=(32, 32, 32))
    assert step <= STEP_ATOL, step
    assert roll <= ROLLOUT_ATOL, roll


@pytest.mark.slow
def test_factorised_export_matches_pytorch_under_verify():
    """verify()'s rule (1 step strict, rollout within max(1e-4, 4 × sensitivity)) on a random-weight
    equivariant model exported factorised (the "other models" of the issue)."""
    torch.manual_seed(3)
    model = CRNN(equivariant=True).eval()
    ckpt = {"model": model, "train_config": {"downscale": 2}}
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        meta = onnx_export.build_metadata(ckpt, graph="factorised")
        onnx_export.export_model(model, path, meta, graph="factorised")
        report = onnx_export.verify(path, model, grids=[(8, 8, 8)], steps=30, threads=1)
    assert report[0]["ok"], report
    assert report[0]["step_max_diff"] <= STEP_ATOL
