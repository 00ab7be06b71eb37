"""Files written by the toolkit stay the same across refactors (issue 23: "written bitwise identically apart
from the provenance attributes").

``tests/golden/`` holds small data sets, solver runs, rollouts and an exported model written by the code
before the restructuring (``tests/golden/make_golden.sh``, run at commit 7ea620c). This test reruns the same
script into a temporary folder and compares every HDF5 object (values bitwise, dtype, shape, chunking,
filters, dimension scales, attributes) and the ONNX graph (nodes, initializers bitwise, opset, metadata),
skipping only what records *who* wrote a file: the command line, the code version and the output path.
onnxruntime's float32 convolutions may round differently on another CPU, so the network's frames in a
rollout are compared to 1e-6 instead of bitwise (everything else of those files bitwise)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
#: attributes that record who wrote a file, not what it holds
PROVENANCE = {"command", "code_version", "part_commands", "code_version_source", "git_commit"}
#: HDF5 object references of the dimension scales (addresses; compared by name in ``_dims``)
REFERENCES = {"DIMENSION_LIST", "REFERENCE_LIST"}
#: config keys naming the output path (a temporary folder here)
PATH_KEYS = {"out", "ic_file"}
#: onnxruntime's float32 output on another CPU (rollout frames); everything else is compared bitwise
ORT_ATOL = 1e-6
#: metadata entries the exporter writes since the golden model was made, with their values for it
#: (issue 29: ``halo``, the ghost layers of a subdomain step; issue 27: ``boundaries``, the graph takes the
#: optional ``walls`` input; everything else is as before)
NEW_METADATA = {"halo": 6, "boundaries": "periodic,neumann"}

#: ch3d metadata keys added after the golden files, with the value that means what the files did before
#: (issue 26: one network step = one stored frame; the dense graph): left out of the comparison at that value
ADDED_METADATA = {("stride",): 1, ("exported", "graph"): "dense"}


@pytest.fixture(scope="module")
def rewritten(tmp_path_factory):
    out = tmp_path_factory.mktemp("golden")
    subprocess.run(
        ["bash", str(GOLDEN / "make_golden.sh"), sys.executable, str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return out


def _attr_value(key, value):
    if key == "model_metadata" and isinstance(value, (str, bytes)):  # a rollout's model: as the ONNX test compares it
        meta = _without_added(_without_provenance(json.loads(value)))
        return {k: v for k, v in meta.items() if k not in NEW_METADATA or NEW_METADATA[k] != v}
    if key == "config" and isinstance(value, str):
        cfg = json.loads(value)
        return {k: v for k, v in cfg.items() if k not in PATH_KEYS} if isinstance(cfg, dict) else cfg
    if isinstance(value, np.ndarray):
        return (value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, bytes):
        return value.decode()
    return value


def _attrs(obj) -> dict:
    return {k: _attr_value(k, v) for k, v in obj.attrs.items() if k not in PROVENANCE | REFERENCES}


def _items(f: h5py.File) -> dict:
    items = {}
    f.visititems(lambda name, obj: items.__setitem__(name, obj))
    return items


def _dims(d: h5py.Dataset) -> list:
    return [[s.name for s in dim.values()] for dim in d.dims]


@pytest.mark.parametrize(
    "name",
    ["generate.h5", "generate_f16.h5", "simulate.h5", "simulate_h5ic.h5", "rollout.h5", "rollout_full.h5"],
)
def test_hdf5_files_are_written_as_before(rewritten, name):
    with h5py.File(GOLDEN / name, "r") as old, h5py.File(rewritten / name, "r") as new:
        assert _attrs(new) == _attrs(old)
        old_items, new_items = _items(old), _items(new)
        assert sorted(new_items) == sorted(old_items)
        for key, o in old_items.items():
            n = new_items[key]
            assert type(n) is type(o), key
            assert _attrs(n) == _attrs(o), key
            if not isinstance(o, h5py.Dataset):
                continue
            assert (n.dtype, n.shape, n.chunks, n.compression, n.compression_opts, n.scaleoffset) == (
                o.dtype,
                o.shape,
                o.chunks,
                o.compression,
                o.compression_opts,
                o.scaleoffset,
            ), key
            assert _dims(n) == _dims(o), key
            a, b = o[()], n[()]
            if name.startswith("rollout") and key in ("phi", "phi_mean", "free_energy"):
                np.testing.assert_allclose(b, a, rtol=0, atol=ORT_ATOL, err_msg=key)
            elif a.dtype.kind == "O":
                assert list(b) == list(a), key
            else:
                assert np.asarray(b).tobytes() == np.asarray(a).tobytes(), key


def _without_provenance(value):
    if isinstance(value, dict):
        return {k: _without_provenance(v) for k, v in value.items() if k not in PROVENANCE}
    return value


def _without_added(meta: dict) -> dict:
    for path, default in ADDED_METADATA.items():
        *parents, last = path
        node = meta
        for k in parents:
            node = node.get(k) if isinstance(node, dict) else None
        if isinstance(node, dict) and last in node and node[last] == default:
            del node[last]
    return meta


def _metadata(model) -> dict:
    meta = {p.key: p.value for p in model.metadata_props}
    for key, value in list(meta.items()):
        try:
            meta[key] = _without_added(_without_provenance(json.loads(value)))
        except ValueError:
            continue
    return meta


def test_exported_model_is_written_as_before(rewritten):
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    old, new = onnx.load(GOLDEN / "crnn_export.onnx"), onnx.load(rewritten / "crnn_export.onnx")
    assert [(o.domain, o.version) for o in new.opset_import] == [(o.domain, o.version) for o in old.opset_import]
    new_meta = _metadata(new)
    assert {k: new_meta["ch3d"].pop(k, None) for k in NEW_METADATA} == NEW_METADATA
    assert new_meta == _metadata(old)
    # issue 27: one more input, ``walls`` (bool[3]) with a default (an initializer: all False = periodic), which
    # selects the ghost planes with Where; the periodic step it computes by default is the golden one, bitwise
    old_inputs = [i.SerializeToString() for i in old.graph.input]
    assert [i.SerializeToString() for i in new.graph.input][:3] == old_inputs
    assert [i.name for i in new.graph.input] == ["phi", "h1", "h2", "walls"]
    out_sig = lambda g: [(o.name, o.type.SerializeToString()) for o in g.output]  # noqa: E731  (not the node names)
    assert out_sig(new.graph) == out_sig(old.graph)
    inits_old = {i.name: numpy_helper.to_array(i) for i in old.graph.initializer if i.name.startswith("model.")}
    inits_new = {i.name: numpy_helper.to_array(i) for i in new.graph.initializer}
    assert inits_new.pop("walls").tolist() == [False, False, False]
    inits_new = {k: v for k, v in inits_new.items() if k.startswith("model.")}  # the weights (not slice indices)
    assert sorted(inits_new) == sorted(inits_old) and len(inits_old) == 29
    for key, value in inits_old.items():
        assert inits_new[key].dtype == value.dtype and inits_new[key].tobytes() == value.tobytes(), key
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(0)
    feed = {
        "phi": rng.random((2, 1, 6, 5, 4), dtype=np.float32),
        "h1": rng.uniform(-1, 1, (2, 10, 6, 5, 4)).astype(np.float32),
        "h2": rng.uniform(-1, 1, (2, 10, 6, 5, 4)).astype(np.float32),
    }
    runs = [
        ort.InferenceSession(str(f), providers=["CPUExecutionProvider"]).run(None, feed)
        for f in (GOLDEN / "crnn_export.onnx", rewritten / "crnn_export.onnx")
    ]
    for a, b in zip(*runs):
        assert a.tobytes() == b.tobytes()
