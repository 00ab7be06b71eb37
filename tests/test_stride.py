"""``train --stride k``: one network step = k stored frames (issue 26 item 2), checked with numbers.

On conftest's tiny data set (8 frames of 16³, steps_per_frame 100, dt 0.01): the data layer and the
sampler read frames k apart (against the raw HDF5 arrays), a stride-2 training feeds the network frames
0, 2, 4 … of its sub-sequences (spied inputs against the stored frames), the checkpoint, the card, the
exported metadata and both runners give the time per step of k frames, ``export.rollout`` counts network
steps, and ``evaluate`` compares network step j with stored frame j·k (an identity model, whose error at
step j is the stored change from frame 0 to frame j·k, recomputed here with numpy).
"""

import json
import logging

import h5py
import numpy as np
import onnx
import pytest
import torch

from export import onnx_export
from export.runtime import Rollout, spec
from surrogate import CRNN, load_checkpoint, save_checkpoint
from surrogate.card import build_card
from surrogate.data import SequenceDataset, SubSequence, SubSequenceSampler
from surrogate.evaluate import EvalConfig, evaluate
from surrogate.runner import TorchRunner
from surrogate.train import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def stored(data_file):
    with h5py.File(data_file, "r") as f:
        return {k: f[k][...] for k in ("phi", "free_energy", "phi_mean", "time", "t0")}, dict(f.attrs)


def test_dataset_and_sampler_read_every_kth_frame(data_file):
    raw, _ = stored(data_file)
    ds = SequenceDataset(data_file, "train", 2, stride=2)
    i = int(ds.indices[0])
    assert (ds.n_frames, ds.n_steps_frames) == (8, 4)
    np.testing.assert_array_equal(ds[0][:, 0].numpy(), raw["phi"][i, ::2, ::2, ::2, ::2])  # frames 0, 2, 4, 6
    sub = ds[SubSequence(i, 1, 3, stride=2)][:, 0].numpy()
    np.testing.assert_array_equal(sub, raw["phi"][i, [1, 3, 5], ::2, ::2, ::2])
    with pytest.raises(ValueError, match=r"frames 3\.\.9 are outside the stored 0\.\.7"):
        ds[SubSequence(i, 3, 4, stride=2)]
    # three network frames at stride 3 need 7 stored frames: starts 0 and 1 only; two frames: starts 0..4
    sampler = SubSequenceSampler(ds.indices, 8, 2, 2, 3, seed=5, augment=False, stride=3)
    keys = [k for e in range(20) for b in sampler.plan(e) for k in b]
    assert {k.stride for k in keys} == {3}
    assert {(k.length, k.start) for k in keys} == {(3, 0), (3, 1), (2, 0), (2, 1), (2, 2), (2, 3), (2, 4)}
    with pytest.raises(ValueError, match=r"frames at stride 3 \(3\)"):
        SubSequenceSampler(ds.indices, 8, 2, 2, 4, stride=3)


def test_stride_2_training_sees_frames_k_apart_and_records_the_stride(data_file, tmp_path, monkeypatch):
    raw, attrs = stored(data_file)
    net = raw["phi"][:, :, ::2, ::2, ::2]  # (S, F, 8, 8, 8) network grid
    calls = []
    rollout = CRNN.rollout

    def spy(self, phi0, steps, teacher=None, *rest, **kw):
        calls.append((self.training, phi0.detach().numpy().copy(), steps, None if teacher is None else teacher.numpy()))
        return rollout(self, phi0, steps, teacher, *rest, **kw)

    monkeypatch.setattr(CRNN, "rollout", spy)
    cfg = TrainConfig(
        data=data_file,
        out=tmp_path / "run",
        epochs=1,
        batch=2,
        lr=1e-3,
        ramp=4,
        downscale=2,
        stride=2,
        min_len=4,
        max_len=4,
        augment=False,
        seed=0,
        threads=1,
        tensorboard=False,
        progress=False,
    )
    train(cfg)
    train_calls = [c for c in calls if c[0]]
    assert train_calls
    for _, phi0, steps, teacher in train_calls:
        # 4 network frames = stored start, +2, +4, +6; epoch 0 of ramp 4: L = 3, teacher frames 1 and 2
        assert steps == 3 and teacher.shape[1] == 2
        for b in range(phi0.shape[0]):
            seq, start = next(
                (s, a) for s in range(net.shape[0]) for a in range(8) if np.array_equal(net[s, a], phi0[b, 0])
            )
            assert start in (0, 1)  # start + 6 <= 7
            np.testing.assert_array_equal(teacher[b, 0, 0], net[seq, start + 2])  # frame start + k
            np.testing.assert_array_equal(teacher[b, 1, 0], net[seq, start + 4])  # frame start + 2k
    val_calls = [c for c in calls if not c[0]]
    assert [c[2] for c in val_calls] == [3]  # frames 0, 2, 4, 6 of the val sequences: 3 network steps
    ckpt = load_checkpoint(tmp_path / "run" / "best.pt")
    assert ckpt["train_config"]["stride"] == 2
    card = build_card(ckpt)
    assert attrs["steps_per_frame"] == 100 and attrs["dt"] == pytest.approx(0.01)
    assert (card["stride"], card["steps_per_frame"]) == (2, 200)
    assert card["time_per_step"] == pytest.approx(2 * 100 * 0.01)
    assert card["train"]["dataset_attrs"]["steps_per_frame"] == 100  # the data set's own, unchanged
    runner = TorchRunner(tmp_path / "run" / "best.pt", device="cpu", threads=1)
    assert (runner.stride, runner.time_per_step) == (2, pytest.approx(2.0))
    meta = onnx_export.build_metadata(ckpt, graph="dense")
    assert spec.check_metadata(json.loads(json.dumps(meta)))["stride"] == 2


def test_metadata_refuses_a_bad_stride():
    meta = {"format_version": 1, "conservative": True, "hidden": 10, "kernel": 3, "downscale": 2, "dt": 0.01}
    spec.check_metadata({**meta, "steps_per_frame": 200})  # no stride: files before the option
    with pytest.raises(ValueError, match="stride=0 is not a positive integer"):
        spec.check_metadata({**meta, "steps_per_frame": 200, "stride": 0})


def test_onnx_runtime_and_rollout_count_network_steps(exported_model, tmp_path, caplog):
    """The runtime reads the stride's time per step from the metadata; export.rollout's --steps/--every
    count network steps, its time axis advances by every x steps_per_frame x dt."""
    from export.rollout import main as rollout_main

    proto = onnx.load(str(exported_model[1]))
    meta = json.loads(proto.metadata_props[0].value)
    spf, dt = meta["steps_per_frame"], meta["dt"]
    meta.update(stride=4, steps_per_frame=4 * spf, time_per_step=4 * spf * dt)
    proto.metadata_props[0].value = json.dumps(meta)
    path = tmp_path / "stride4.onnx"
    onnx.save(proto, str(path))
    r = Rollout(path, providers="cpu", threads=1)
    assert r.stride == 4 and r.time_per_step == pytest.approx(4 * spf * dt)
    out = tmp_path / "run.h5"
    args = [
        str(path),
        "--ic",
        "perlin",
        "--size",
        "16",
        "--steps",
        "6",
        "--every",
        "3",
        "--threads",
        "1",
        "--out",
        str(out),
    ]
    assert rollout_main(args) == 0
    with h5py.File(out, "r") as f:
        assert f.attrs["steps_per_frame"] == 3 * 4 * spf
        assert f.attrs["network_steps_per_frame"] == 3
        np.testing.assert_allclose(f["time"][...], [0, 3 * 4 * spf * dt, 6 * 4 * spf * dt], rtol=1e-12)
        assert f["phi"].shape[1] == 3  # frames after 0, 3 and 6 network steps
    # --ic h5 from a solver run of the model's physics: its 400 steps per stored frame are a quarter of a
    # stride-4 step, which is no physics mismatch (no warning); a quarter of the time per frame is one
    from ch_numba.cli import main as ch_main

    caplog.set_level(logging.INFO)
    for spf_data, warned in ((spf, False), (spf // 4, True)):
        data = tmp_path / f"ic{spf_data}.h5"
        sim = ["simulate", str(data), "--size", "16", "--frames", "1", "--steps-per-frame", str(spf_data)]
        sim += ["--epsilon", str(meta["epsilon"]), "--dt", str(dt), "--backend", "numpy"]
        assert ch_main(sim) == 0
        caplog.clear()
        args = [str(path), "--ic", "h5", "--ic-file", str(data), "--steps", "1", "--threads", "1"]
        assert rollout_main([*args, "--out", str(tmp_path / f"r{spf_data}.h5")]) == 0
        assert any("time_per_step" in r.getMessage() for r in caplog.records) == warned


@pytest.mark.parametrize("stride", [1, 2])
def test_evaluate_compares_step_j_with_frame_j_times_k(data_file, tmp_path, stride):
    raw, attrs = stored(data_file)
    torch.manual_seed(0)
    model = CRNN()
    with torch.no_grad():  # zero flux: phi_next = phi exactly, so the error at step j is frame j*k - frame 0
        model.head[-1].weight.zero_()
        model.head[-1].bias.zero_()
    ckpt = tmp_path / "identity.pt"
    save_checkpoint(
        model,
        ckpt,
        epoch=0,
        downscale=2,
        train_config={"stride": stride, "downscale": 2},
        dataset={
            "path": str(data_file),
            "attrs": {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in attrs.items()},
        },
    )
    result = evaluate(EvalConfig(model=ckpt, data=data_file, out=tmp_path / f"eval{stride}", plots=False, threads=1))
    T = (8 - 1) // stride + 1
    assert result["data"]["frames"] == T and result["data"]["stride"] == stride
    assert not [w for w in result["warnings"] if "time per" in w]  # the model's step = stride stored frames
    for rec in result["sequences"]:
        i = rec["index"]
        frames = raw["phi"][i, ::stride, ::2, ::2, ::2].astype(np.float64)  # stored frames 0, k, 2k, ...
        want = np.sqrt(((frames - frames[0]) ** 2).reshape(T, -1).mean(axis=1))
        np.testing.assert_allclose(rec["rmse_network"], want, rtol=1e-6, atol=1e-9)
        np.testing.assert_array_equal(rec["free_energy_true"], raw["free_energy"][i, ::stride])
        np.testing.assert_allclose(rec["times_since_ic"], raw["t0"][i] + raw["time"][::stride], rtol=1e-12)
        assert rec["rmse_network"][1] > 0


def test_bad_stride_options_are_one_line_errors(data_file, tmp_path):
    with pytest.raises(ValueError, match="--stride must be an integer >= 1, got 0"):
        TrainConfig(data=data_file, out=tmp_path / "r", stride=0)
    too_long = TrainConfig(
        data=data_file, out=tmp_path / "r", stride=4, min_len=3, max_len=3, threads=1, tensorboard=False, progress=False
    )
    with pytest.raises(ValueError, match=r"--seq-len 3:3: it stores 8 frames per sequence, 2 at --stride 4$"):
        train(too_long)
