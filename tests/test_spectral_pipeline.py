"""A data set made with the spectral scheme goes end to end: generate → train → export → rollout,
each step carrying the scheme (a dt of 0.5 is far above the explicit bound: a step that rebuilt
CHParams from ε, M, W, dx, dt alone would refuse the file)."""

import json

import numpy as np
import pytest

from ch_numba.dataset import DatasetConfig, generate, open_dataset
from ch_numba.params import CHParams

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_spectral_data_set_trains_exports_and_rolls_out(tmp_path):
    from export import onnx_export
    from export.rollout import main as rollout_main
    from export.runtime import Rollout
    from surrogate.cli import main as surrogate_main

    p = CHParams(epsilon=1.0, dt=0.5, scheme="spectral", order=2)
    data = tmp_path / "spec.h5"
    generate(
        data,
        DatasetConfig(sequences=4, frames=5, steps_per_frame=4, size=16, val_fraction=0.5, seed=3, frequencies=(2,)),
        p,
        backend="auto",
        progress=False,
    )
    with open_dataset(data) as ds:
        assert ds.params == p and ds.params.dt > CHParams(epsilon=1.0).stable_dt()
    assert (
        surrogate_main(
            [
                "train",
                str(data),
                "--out",
                str(tmp_path / "run"),
                "--epochs",
                "1",
                "--batch",
                "2",
                "--threads",
                "1",
                "--no-tensorboard",
                "--seed",
                "0",
            ]
        )
        == 0
    )
    onnx = tmp_path / "m.onnx"
    onnx_export.export_checkpoint(tmp_path / "run" / "last.pt", onnx)
    meta = Rollout(onnx).metadata
    assert CHParams.from_metadata(meta) == p
    assert meta["scheme"] == "spectral" and meta["order"] == 2 and "dt" not in meta["assumed"]
    out = tmp_path / "roll.h5"
    assert rollout_main([str(onnx), "--ic", "perlin", "--size", "16", "--steps", "3", "--out", str(out)]) == 0
    with open_dataset(out) as ds:  # the rollout file describes the physics it emulates, scheme included
        assert ds.params.scheme == "spectral" and ds.params.dt == 0.5
        assert np.isfinite(ds.free_energy).all()
        assert json.loads(ds.attrs["config"]) is not None
