"""ch_numba.files: the one atomic-write helper (temporary name, fsync, rename) that every writer of the project
uses, and the one JSON sanitiser."""

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from ch_numba import files


def test_atomic_write_replaces_only_a_complete_file(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"
    target.write_bytes(b"before")
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(files.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))

    def broken(fh):
        fh.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        files.atomic_write(target, broken)
    assert target.read_bytes() == b"before" and os.listdir(tmp_path) == ["out.bin"] and not synced
    assert files.atomic_write(target, lambda fh: fh.write(b"after")) == target
    assert target.read_bytes() == b"after" and os.listdir(tmp_path) == ["out.bin"] and len(synced) == 1


def test_atomic_path_runs_checks_before_the_rename(tmp_path):
    target = tmp_path / "m.onnx"
    target.write_bytes(b"good")
    with pytest.raises(ValueError, match="mismatch"):
        with files.atomic_path(target, hidden=True) as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith(".m.onnx.tmp")
            tmp.write_bytes(b"bad")
            raise ValueError("mismatch")
    assert target.read_bytes() == b"good" and os.listdir(tmp_path) == ["m.onnx"]
    name = files.tmp_path(target).name
    assert name.startswith(f"m.onnx.tmp{os.getpid()}.") and len(name) > len(f"m.onnx.tmp{os.getpid()}.")


def test_json_safe():
    value = {
        1: np.float32(0.5),
        "a": (np.int64(3), np.nan, -math.inf),
        "b": np.arange(3),
        "c": b"x",
        "d": np.bool_(True),
        "e": Path("p/q"),
        "f": [np.array([[1.5, np.inf]])],
        "g": None,
    }
    out = files.json_safe(value)
    assert out == {
        "1": 0.5,
        "a": [3, None, None],
        "b": [0, 1, 2],
        "c": "x",
        "d": True,
        "e": "p/q",
        "f": [[[1.5, None]]],
        "g": None,
    }
    assert type(out["a"][0]) is int and type(out["d"]) is bool
    json.dumps(out, allow_nan=False)


@pytest.fixture()
def commits(monkeypatch):
    """The targets that go through files.commit (fsync + rename), in order."""
    seen = []
    real = files.commit

    def record(tmp, path, *args):
        seen.append(Path(path).name)
        return real(tmp, path, *args)

    monkeypatch.setattr(files, "commit", record)
    return seen


def test_the_solver_side_writes_through_the_one_helper(tmp_path, commits):
    """Pictures, .vti files, simulate (its per-frame checkpoint and the file), generate's parts and the merged file."""
    from ch_numba import render
    from ch_numba.cli import main

    phi = np.full((4, 4, 4), 0.5, np.float32)
    render.write_vti(tmp_path / "a.vti", {"phi": phi})
    render.plot_slices(phi, tmp_path / "a.png")
    render.plot_energy([0.0, 1.0], [2.0, 1.0], tmp_path / "e.png")
    assert commits == ["a.vti", "a.png", "e.png"]
    commits.clear()
    assert (
        main(
            [
                "simulate",
                str(tmp_path / "s.h5"),
                "--size",
                "6",
                "--frames",
                "2",
                "--steps-per-frame",
                "2",
                "--backend",
                "numpy",
            ]
        )
        == 0
    )
    assert commits == ["frame_000000.npy", "state.npz", "frame_000001.npy", "state.npz", "s.h5"]
    commits.clear()
    assert (
        main(
            [
                "generate",
                str(tmp_path / "g.h5"),
                "--sequences",
                "2",
                "--size",
                "6",
                "--frames",
                "2",
                "--steps-per-frame",
                "2",
                "--backend",
                "numpy",
            ]
        )
        == 0
    )
    assert commits == ["seq_000000.h5", "seq_000001.h5", "g.h5"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "a.vti", "e.png", "g.h5", "s.h5"]


def test_the_surrogate_side_writes_through_the_one_helper(tmp_path, commits):
    """Checkpoints, the training log, evaluation JSON and plots, ONNX files."""
    pytest.importorskip("torch")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from export.onnx_export import _atomic_save
    from surrogate import CRNN, save_checkpoint
    from surrogate.plots import _figure, _save
    from surrogate.report import _write_json
    from surrogate.train import LOG_COLUMNS, _write_csv

    save_checkpoint(CRNN(hidden=2), tmp_path / "last.pt", epoch=0)
    _write_csv(tmp_path / "log.csv", [{k: 0 for k in LOG_COLUMNS}])
    _write_json(tmp_path / "evaluation.json", {"a": 1})
    _save(_figure((2, 2)), tmp_path / "rmse.png")
    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    _atomic_save(helper.make_model(graph), tmp_path / "m.onnx", check=lambda p: onnx.checker.check_model(str(p)))
    assert commits == ["last.pt", "log.csv", "evaluation.json", "rmse.png", "m.onnx"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evaluation.json", "last.pt", "log.csv", "m.onnx", "rmse.png"]
