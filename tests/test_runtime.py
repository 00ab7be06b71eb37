"""export.runtime.Rollout and the rollout CLI: state handling, invariants, refusals, no PyTorch.

The ONNX model is the random-weight CRNN of conftest.py's ``exported_model`` fixture (exported
once per session; whichever module runs first writes it). Named tolerances: EXACT where the same
session runs the same ops, BATCH_ATOL for a batch against single runs (float32), MASS_RTOL for the
conserved mean of φ over 100 float32 steps.
"""

import json
import re
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import heavy_modules, run_python
from onnx import TensorProto, helper

import ch_numba
from ch_numba import initial
from ch_numba.cli import main as ch_main
from ch_numba.render import read_vti
from export.rollout import main as rollout_main
from export.runtime import Rollout, spec

EXACT = dict(rtol=0, atol=0)
BATCH_ATOL = 1e-6
MASS_RTOL = 1e-5
ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model_path(exported_model):
    return exported_model[1]


@pytest.fixture()
def runner(model_path):
    return Rollout(model_path, providers="cpu", threads=1)


def field(grid=(8, 8, 8), batch=None, seed=4):
    rng = np.random.default_rng(seed)
    shape = grid if batch is None else (batch, 1, *grid)
    return (0.5 + 0.1 * rng.uniform(-1, 1, shape)).astype(np.float32)


# -- stepping --------------------------------------------------------------------------------------
def test_rollout_equals_a_loop_of_steps(runner):
    phi0 = field()
    frames = list(runner.rollout(phi0, 5))
    assert runner.steps_done == 5
    runner.reset()
    phi, looped = phi0, []
    for _ in range(5):
        phi = runner.step(phi)
        looped.append(phi)
    assert all(f.shape == (8, 8, 8) and f.dtype == np.float32 for f in frames)
    np.testing.assert_allclose(np.stack(frames), np.stack(looped), **EXACT)


def test_every_yields_every_kth_frame(runner):
    phi0 = field((8, 10, 12), batch=2)
    all_frames = list(runner.rollout(phi0, 7))
    some = list(runner.rollout(phi0, 6, every=3))  # steps a multiple of every (7 is refused)
    assert len(some) == 2 and some[0].shape == (2, 1, 8, 10, 12)
    np.testing.assert_allclose(some[0], all_frames[2], **EXACT)
    np.testing.assert_allclose(some[1], all_frames[5], **EXACT)


def test_batch_members_are_independent(runner):
    phis = [field(seed=s) for s in (1, 2)]
    batch = np.stack(phis)[:, None]
    together = list(runner.rollout(batch, 4))[-1]
    for i, phi in enumerate(phis):
        alone = list(runner.rollout(phi, 4))[-1]
        np.testing.assert_allclose(together[i, 0], alone, rtol=0, atol=BATCH_ATOL)


def test_mass_is_conserved_over_100_steps(runner):
    phi0 = field((8, 6, 10), batch=2)
    frames = np.stack(list(runner.rollout(phi0, 100)))  # (100, 2, 1, X, Y, Z)
    m0 = phi0.reshape(2, -1).mean(axis=1, dtype=np.float64)
    m = frames.reshape(100, 2, -1).mean(axis=2, dtype=np.float64)
    assert np.max(np.abs(m - m0) / m0) < MASS_RTOL
    assert np.max(np.abs(frames[-1] - phi0)) > 1e-3  # the field did change


def test_hidden_state_is_carried_and_reset(runner):
    phi0 = field()
    first = runner.step(phi0)
    second = runner.step(phi0)  # same input, warmed-up hidden state: another output
    assert np.max(np.abs(first - second)) > 1e-6
    runner.reset()
    np.testing.assert_allclose(runner.step(phi0), first, **EXACT)
    with pytest.raises(ValueError, match="call reset"):
        runner.step(field((8, 8, 10)))
    runner.reset()
    assert runner.step(field((8, 8, 10))).shape == (8, 8, 10)


def test_rollout_can_continue_from_warmed_up_hidden_states(runner):
    truth = [field(seed=s) for s in range(4)]
    for phi in truth[:3]:
        runner.step(phi)  # teacher forcing
    continued = list(runner.rollout(truth[3], 2, reset=False))
    runner.reset()
    for phi in truth[:3]:
        runner.step(phi)
    a = runner.step(truth[3])
    b = runner.step(a)
    np.testing.assert_allclose(np.stack(continued), np.stack([a, b]), **EXACT)


def test_downscale_and_upscale_use_the_model_factor(runner):
    full = np.arange(16 * 16 * 16, dtype=np.float32).reshape(16, 16, 16)
    small = runner.downscale(full)
    assert runner.factor == 2 and small.shape == (8, 8, 8)
    np.testing.assert_array_equal(small, full[::2, ::2, ::2])
    np.testing.assert_array_equal(runner.downscale(runner.upscale(small)), small)
    with pytest.raises(ValueError, match="not divisible"):
        runner.downscale(np.zeros((15, 16, 16)))


def test_solver_batches_go_to_the_network_and_back(runner):
    """Solver (B, X, Y, Z) <-> network (N, 1, x, y, z): each member is its own downsampled field, and a
    rollout of the batch equals the members' own rollouts."""
    rng = np.random.default_rng(4)
    batch = (0.5 + 0.1 * rng.standard_normal((3, 16, 16, 16))).astype(np.float32)
    net = runner.to_network(batch)
    assert net.shape == (3, 1, 8, 8, 8)
    for b in range(3):
        np.testing.assert_array_equal(net[b, 0], batch[b, ::2, ::2, ::2])
    np.testing.assert_array_equal(runner.to_network(batch[1]), net[1:2])
    out = list(runner.rollout(net, 2))[-1]
    back = runner.from_network(out)
    assert back.shape == (3, 16, 16, 16)
    np.testing.assert_array_equal(back[:, ::2, ::2, ::2], out[:, 0])
    own = list(runner.rollout(net[2:3], 2))[-1]
    np.testing.assert_allclose(out[2:3], own, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="solver field"):
        runner.to_network(np.zeros((1, 1, 16, 16, 16)))
    with pytest.raises(ValueError, match="network field"):
        runner.from_network(np.zeros((2, 8, 8, 8)))


def test_metadata_and_description(runner):
    assert runner.metadata["hidden"] == 10 and runner.metadata["train_grid"] == 16
    assert runner.time_per_step == pytest.approx(0.4)
    assert runner.providers == ["CPUExecutionProvider"] and runner.device == "cpu"
    assert "downscale=2" in repr(runner)


# -- refusals -----------------------------------------------------------------------------------------
def test_refuses_a_file_that_is_not_onnx(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ValueError, match="not a readable ONNX model"):
        Rollout(bad, providers="cpu")
    with pytest.raises(ValueError, match="no such model file"):
        Rollout(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="is a folder, not a model file"):
        Rollout(tmp_path)


def test_refuses_a_model_with_another_signature(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, "a", "b", "c"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1, "a", "b", "c"])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "other", [x], [y])
    other = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    helper.set_model_props(other, {spec.METADATA_KEY: "{}"})
    path = tmp_path / "other.onnx"
    onnx.save(other, path)
    with pytest.raises(ValueError, match="expected inputs phi, h1, h2 and outputs phi_next, h1_next, h2_next"):
        Rollout(path, providers="cpu")


def _with_metadata(model_path, tmp_path, metadata):
    proto = onnx.load(str(model_path))
    del proto.metadata_props[:]
    if metadata is not None:
        helper.set_model_props(proto, {spec.METADATA_KEY: metadata})
    path = tmp_path / "edited.onnx"
    onnx.save(proto, path)
    return path


@pytest.mark.parametrize(
    "edit, match",
    [
        (None, "has no 'ch3d' metadata"),
        ("{not json", "not valid JSON"),
        ("drop downscale", "lacks downscale"),
        ("format_version 99", "newer than this runtime"),
        ("hidden 12", "metadata says hidden=12"),
    ],
)
def test_refuses_missing_or_invalid_metadata(model_path, tmp_path, edit, match):
    meta = json.loads(onnx.load(str(model_path)).metadata_props[0].value)
    if edit == "drop downscale":
        del meta["downscale"]
    elif edit == "format_version 99":
        meta["format_version"] = 99
    elif edit == "hidden 12":
        meta["hidden"] = 12
    text = edit if edit is None or edit.startswith("{") else json.dumps(meta)
    with pytest.raises(ValueError, match=match):
        Rollout(_with_metadata(model_path, tmp_path, text), providers="cpu")


@pytest.mark.parametrize(
    "phi, match",
    [
        (np.zeros((2, 8, 8), np.float32), "network grid 2x8x8 is smaller than the model's kernel 3"),
        (np.zeros((8, 8, 8, 8), np.float32), "expected phi of shape"),
        (np.zeros((1, 2, 8, 8, 8), np.float32), "expected phi of shape"),
        (np.full((8, 8, 8), np.nan, np.float32), "NaN or Inf"),
        (np.zeros((8, 8, 8), np.complex64), "real array"),
    ],
)
def test_refuses_inputs_the_model_cannot_take(runner, phi, match):
    with pytest.raises(ValueError, match=match):
        runner.step(phi)


def test_refuses_bad_rollout_arguments_at_call_time(runner):
    with pytest.raises(ValueError, match="every must be"):
        runner.rollout(field(), 4, every=0)
    with pytest.raises(ValueError, match="steps must be"):
        runner.rollout(field(), -1)
    with pytest.raises(ValueError, match=r"^steps 4 is not a multiple of every 3; frames come every 3 steps$"):
        runner.rollout(field(), 4, every=3)  # was 1 frame, the 4th step silently run and dropped
    assert len(list(runner.rollout(field(), 0, every=3))) == 0 and len(list(runner.rollout(field(), 6, every=3))) == 2


def test_rollout_counts_are_checked_once_for_both_runners_and_the_cli():
    from export.rollout import RolloutConfig
    from export.runtime import RunnerBase, check_counts

    with pytest.raises(ValueError, match=r"^--steps 5 is not a multiple of --every 2; frames come every 2 steps$"):
        RolloutConfig(model="m.onnx", ic="perlin", steps=5, every=2)
    with pytest.raises(ValueError, match=r"^--every must be an integer >= 1, got 0$"):
        RolloutConfig(model="m.onnx", ic="perlin", steps=5, every=0)
    with pytest.raises(ValueError, match=r"^steps 5 is not a multiple of every 2"):
        RunnerBase._check_counts(5, 2)  # what Rollout and surrogate.runner.TorchRunner call
    check_counts(np.int64(6), 3)


def test_provider_choice(model_path):
    with pytest.raises(ValueError, match="providers must be one of"):
        Rollout(model_path, providers="tpu")
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(ValueError, match="no CUDA provider"):
            Rollout(model_path, providers="cuda")
        assert Rollout(model_path, providers="auto", threads=1).device == "cpu"


# -- guards: inputs and physics outside the training data (one TrainingRangeWarning per instance and kind) ------
GUARD_CONFIG = {"ic_mean": 0.5, "ic_mean_sd": 0.05, "frequencies": [2, 3, 4], "sequences": 10}


@pytest.fixture()
def guarded_model(model_path, tmp_path):
    """The test model with a generator config in its training metadata, as the real trainings have
    (ic_mean 0.5 ± 0.05: the training range of mean φ is [0.35, 0.65])."""
    meta = json.loads(onnx.load(str(model_path)).metadata_props[0].value)
    meta["train"]["dataset_attrs"]["config"] = json.dumps(GUARD_CONFIG)
    return _with_metadata(model_path, tmp_path, json.dumps(meta))


def _guard_warnings(record):
    from export import runtime

    return [str(w.message) for w in record if issubclass(w.category, runtime.TrainingRangeWarning)]


def test_guard_training_mean_range_from_the_metadata(guarded_model):
    from ch_numba.dataset import IC_MEAN_CLIP
    from export import runtime

    assert runtime.IC_MEAN_CLIP is IC_MEAN_CLIP  # the generator's clip window, one definition (ch_numba.params)
    assert Rollout(guarded_model, providers="cpu", threads=1).mean_range == ((0.35, 0.65),)

    def meta(config, augment=None):
        train = {"dataset_attrs": {"config": json.dumps(config)}, "train_config": {}}
        if augment is not None:
            train["train_config"]["augment"] = augment
        return {"train": train}

    rng = runtime.training_mean_range
    assert rng(meta({"ic_mean": 0.4, "ic_mean_sd": 0.02}, augment=False)) == ((0.34, 0.46),)
    assert rng(meta({"ic_mean": 0.4, "ic_mean_sd": 0.02})) == ((0.34, 0.46), (0.54, 0.66))  # phase swap: 1 - φ too
    assert rng(meta({"ic_mean": 0.45, "ic_mean_sd": 0.05}, augment=True)) == ((0.3, 0.7),)  # overlapping: merged
    assert rng(meta({"ic_mean": 0.5, "ic_mean_sd": 0.2})) == ((0.3, 0.7),)  # the generator's clip
    assert rng(meta({"ic_mean": 0.5, "ic_mean_sd": 0.0}, augment=False)) == ((0.5, 0.5),)
    assert rng(meta({"kind": "perlin"})) is None and rng({"train": {}}) is None and rng({}) is None


def test_guard_warns_once_when_a_rollout_starts_outside_the_training_mean(guarded_model):
    r = Rollout(guarded_model, providers="cpu", threads=1)
    low = field() - 0.3  # mean 0.2
    assert abs(float(low.mean()) - 0.2) < 0.01
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        list(r.rollout(low, 2))
        list(r.rollout(low, 2))  # the same instance: not again
        r.reset()
        r.step(low)
    found = _guard_warnings(record)
    assert len(found) == 1, found
    assert "mean phi 0.2" in found[0] and "outside the training data's range [0.35, 0.65]" in found[0]
    assert record[0].filename == __file__  # points at the caller's line
    with warnings.catch_warnings(record=True) as record:  # a new instance warns again
        warnings.simplefilter("always")
        Rollout(guarded_model, providers="cpu", threads=1).step(low)
    assert len(_guard_warnings(record)) == 1


def test_guard_does_not_warn_inside_the_training_mean(guarded_model):
    r = Rollout(guarded_model, providers="cpu", threads=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        list(r.rollout(field(), 2))  # mean 0.5
        list(r.rollout(field() - 0.13, 2))  # mean 0.37
        r.reset()
        r.step(field() + 0.13)


def test_guard_names_the_batch_member_outside(guarded_model):
    r = Rollout(guarded_model, providers="cpu", threads=1)
    batch = np.stack([field(), field() + 0.3, field()])[:, None]
    with pytest.warns(UserWarning, match=r"mean phi 0\.806 \(batch member 1; 1 of 3 outside\)"):
        list(r.rollout(batch, 1))


def test_guard_no_mean_check_without_the_generator_config(runner):
    assert runner.mean_range is None  # the fixture's data-set attributes hold no config
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        list(runner.rollout(field() - 0.3, 1))


@pytest.mark.parametrize(
    "config, why",
    [
        ("{not json", "the data-set config in its metadata is not JSON"),
        ([0.5, 0.05], "the data-set config in its metadata is not a mapping (list)"),
        ({"ic_mean": "half", "ic_mean_sd": 0.05}, "holds ic_mean='half', ic_mean_sd=0.05 (expected finite numbers"),
        ({"ic_mean": 0.5, "ic_mean_sd": -1}, "ic_mean_sd=-1 (expected finite numbers, ic_mean_sd >= 0)"),
        ({"ic_mean": 0.5}, "ic_mean=0.5, ic_mean_sd=None"),
    ],
)
def test_guard_says_once_when_garbage_metadata_switches_the_mean_check_off(model_path, tmp_path, caplog, config, why):
    from export import runtime

    meta = json.loads(onnx.load(str(model_path)).metadata_props[0].value)
    meta["train"]["dataset_attrs"]["config"] = config if isinstance(config, str) else json.dumps(config)
    path = _with_metadata(model_path, tmp_path, json.dumps(meta))
    with caplog.at_level(logging.WARNING, logger="export.runtime"):
        r = Rollout(path, providers="cpu", threads=1)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            list(r.rollout(field() - 0.3, 2))  # unchecked, as the message says
    lines = [rec.getMessage() for rec in caplog.records if rec.levelno >= logging.WARNING]
    assert r.mean_range is None and runtime.mean_range_problem(meta) is not None
    assert len(lines) == 1 and lines[0].startswith("edited.onnx: the training-range check of mean phi is off: ")
    assert why in lines[0] and "\n" not in lines[0]


def test_guard_logs_nothing_when_the_range_is_known_or_not_recorded(guarded_model, model_path, caplog):
    with caplog.at_level(logging.DEBUG, logger="export.runtime"):
        assert Rollout(guarded_model, providers="cpu", threads=1).mean_range == ((0.35, 0.65),)
        assert Rollout(model_path, providers="cpu", threads=1).mean_range is None  # no config: not checked
    assert not [rec for rec in caplog.records if rec.levelno >= logging.WARNING]


@pytest.mark.parametrize("physics", ["eps=1.5", b"epsilon", 1.5, 3, object(), [("epsilon", 1.5)]])
def test_guard_refuses_physics_that_is_no_mapping_or_params(model_path, physics):
    with pytest.raises(ValueError, match=r"^physics must be a ch_numba\.CHParams, a mapping or an object with any of "):
        Rollout(model_path, providers="cpu", threads=1, physics=physics)
    from types import SimpleNamespace

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an object with the attributes still works
        Rollout(model_path, providers="cpu", threads=1, physics=SimpleNamespace(epsilon=3.0))


def test_guard_checks_the_stated_physics(model_path):
    """The test model's training data: ε = 3, M = W = dx = 1, dt = 1e-3, 400 steps per frame (t 0.4)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = Rollout(model_path, providers="cpu", threads=1, physics=ch_numba.CHParams(epsilon=3.0, dt=1e-3))
        assert same.check_physics({"dt": 4e-3, "steps_per_frame": 100}) == []  # the same time per step
        assert same.check_physics({"time_per_step": 0.4, "dx": 1.0, "scheme": "explicit"}) == []
    with pytest.warns(UserWarning, match=r"epsilon=1.5 \(trained: 3\), dx=2 \(trained: 1\)") as record:
        r = Rollout(model_path, providers="cpu", threads=1, physics={"epsilon": 1.5, "dx": 2.0, "W": 1.0})
    assert len(_guard_warnings(record)) == 1 and record[0].filename == __file__
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert r.check_physics(ch_numba.CHParams(epsilon=3.0, dt=5e-4)) == ["dt=0.0005 (trained: 0.001)"]
        assert r.check_physics({"dt": 1e-3, "steps_per_frame": 200}) == ["time_per_step=0.2 (trained: 0.4)"]
    assert _guard_warnings(record) == []  # once per instance and kind
    with pytest.raises(ValueError, match="unknown entries eps"):
        r.check_physics({"eps": 3.0})
    with pytest.raises(ValueError, match="dx=-1 is not a positive number"):
        r.check_physics({"dx": -1})


def test_guards_load_neither_surrogate_nor_torch(guarded_model):
    child = LIGHT_CHILD.replace('providers="cpu", threads=1)', 'providers="cpu", threads=1, physics={"epsilon": 1.0})')
    child = child.replace("np.full((16, 16, 16), 0.5,", "np.full((16, 16, 16), 0.1,")
    child = "import warnings\nwarnings.simplefilter('always')\n" + child
    result = run_python(child, guarded_model, report=heavy_modules(), timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "loaded: none"
    assert result.stderr.count("TrainingRangeWarning") == 2 and "epsilon=1 (trained: 3)" in result.stderr


# -- providers: CUDA options, fallback, logging (onnxruntime here has the CPU provider only: CUDA is faked) ------
_CUDA, _CPU = "CUDAExecutionProvider", "CPUExecutionProvider"


@pytest.fixture()
def fake_cuda(monkeypatch):
    """onnxruntime with a fake CUDA provider: ``mode`` "starts" (the session reports CUDA first and the
    provider options it was given; it computes on the CPU), "dropped" (CUDA silently not used) or "fails"
    (session creation raises when CUDA is asked). Records the providers and options of each session and
    the devices OrtValues are allocated on (they are made on the CPU); the global logger must stay untouched."""
    import onnxruntime as ort

    real_session, real_value = ort.InferenceSession, ort.OrtValue.ortvalue_from_shape_and_type
    state = {"mode": "starts", "sessions": [], "devices": []}

    class FakeSession:
        def __init__(self, path, sess_options=None, providers=None):
            state["sessions"].append((providers, sess_options))
            names = [p[0] if isinstance(p, tuple) else p for p in providers]
            if _CUDA in names and state["mode"] == "fails":
                raise RuntimeError("CUDA failure 100: no CUDA-capable device is detected")
            self._real = real_session(path, sess_options=sess_options, providers=[_CPU])
            self._cuda = _CUDA in names and state["mode"] == "starts"
            self._options = {
                n: {str(k): str(v) for k, v in (p[1].items() if isinstance(p, tuple) else [])}
                for n, p in zip(names, providers)
            }

        def get_providers(self):
            return [_CUDA, _CPU] if self._cuda else [_CPU]

        def get_provider_options(self):
            return {k: v for k, v in self._options.items() if k != _CUDA or self._cuda}

        def __getattr__(self, name):
            return getattr(self._real, name)

    def value(shape, dtype, device="cpu", device_id=0, *args):
        state["devices"].append((device, device_id))
        return real_value(shape, dtype, "cpu", 0)

    def no_global_logger(*args):
        raise AssertionError("the runtime must not change onnxruntime's global logger severity")

    monkeypatch.setattr(ort, "get_available_providers", lambda: [_CUDA, _CPU])
    monkeypatch.setattr(ort, "InferenceSession", FakeSession)
    monkeypatch.setattr(ort.OrtValue, "ortvalue_from_shape_and_type", staticmethod(value))
    monkeypatch.setattr(ort, "set_default_logger_severity", no_global_logger)
    return state


def test_cuda_provider_gets_tf32_off_and_its_device_id_is_used_by_iobinding(model_path, fake_cuda):
    r = Rollout(model_path, providers="cuda", threads=1)
    providers, options = fake_cuda["sessions"][-1]
    assert providers == [(_CUDA, {"device_id": 0, "use_tf32": 0}), _CPU]
    assert options.log_severity_level == 3  # the session's own logger, warnings and worse
    assert (r.device, r.device_id) == ("cuda", 0) and r.backend == "onnxruntime-cuda"
    Rollout(model_path, providers="auto", threads=1, tf32=True)
    assert fake_cuda["sessions"][-1][0][0] == (_CUDA, {"device_id": 0, "use_tf32": 1})
    fake_cuda["devices"].clear()
    r = Rollout(model_path, providers=[(_CUDA, {"device_id": 1}), _CPU], threads=1)
    assert fake_cuda["sessions"][-1][0] == [(_CUDA, {"device_id": 1, "use_tf32": 0}), _CPU]
    assert (r.device, r.device_id) == ("cuda", 1)
    out = list(r.rollout(field(batch=2), 2))
    assert len(out) == 2 and out[-1].shape == (2, 1, 8, 8, 8)
    assert fake_cuda["devices"] and set(fake_cuda["devices"]) == {("cuda", 1)}  # all six state buffers
    Rollout(model_path, providers=[(_CUDA, {"device_id": 2, "use_tf32": 1}), _CPU], threads=1)
    assert fake_cuda["sessions"][-1][0][0] == (_CUDA, {"device_id": 2, "use_tf32": 1})  # the caller's choice kept
    Rollout(model_path, providers=[_CUDA, _CPU], threads=1)
    assert fake_cuda["sessions"][-1][0][0] == (_CUDA, {"use_tf32": 0})


@pytest.mark.parametrize("mode", ["fails", "dropped"])
def test_auto_falls_back_to_cpu_in_one_line_and_cuda_refuses(model_path, fake_cuda, mode, caplog):
    fake_cuda["mode"] = mode
    caplog.set_level(logging.INFO, logger="export.runtime")
    r = Rollout(model_path, providers="auto", threads=1)
    assert (r.device, r.device_id) == ("cpu", 0) and r.providers == [_CPU]
    assert caplog.text.count("CUDA provider not usable here") == 1
    with pytest.raises(
        ValueError,
        match="providers='cuda' but the CUDA provider did not start"
        + (r" \(CUDA failure 100" if mode == "fails" else ""),
    ):
        Rollout(model_path, providers="cuda", threads=1)
    np.testing.assert_allclose(r.step(field()), Rollout(model_path, providers="cpu", threads=1).step(field()), **EXACT)


def _fake_torch(cuda):
    import types

    return types.SimpleNamespace(__version__=f"2.11.0+cu{cuda}", version=types.SimpleNamespace(cuda=cuda))


def test_prepare_cuda_preloads_once_for_cuda_builds_quietly(monkeypatch, capsys):
    """onnxruntime.preload_dlls() (issue 24 item 5): called once per process, only on a CUDA build that has it;
    what it prints goes to the debug log, not to stdout."""
    import types

    from export.runtime import providers

    calls = []

    def preload(cuda=True, cudnn=True):
        calls.append((cuda, cudnn))
        print("Failed to load libcudnn.so.9: not found")

    gpu_build = types.SimpleNamespace(cuda_version="13.0", preload_dlls=preload)
    monkeypatch.setattr(providers, "_preloaded", [])
    note = providers.prepare_cuda(gpu_build)
    assert calls == [(True, True)] and "preloaded" in note and "libcudnn.so.9" in note
    assert providers.prepare_cuda(gpu_build) == note and len(calls) == 1  # once per process
    assert capsys.readouterr().out == ""
    monkeypatch.setattr(providers, "_preloaded", [])
    assert "not a CUDA build" in providers.prepare_cuda(types.SimpleNamespace(cuda_version="", preload_dlls=preload))
    monkeypatch.setattr(providers, "_preloaded", [])
    assert "no preload_dlls" in providers.prepare_cuda(types.SimpleNamespace(cuda_version="12.8"))
    assert len(calls) == 1


def test_cuda_mismatch_with_an_imported_torch():
    import types

    from export.runtime.providers import cuda_mismatch

    ort13 = types.SimpleNamespace(cuda_version="13.0", __version__="1.31.1")
    got = cuda_mismatch(ort13, {"torch": _fake_torch("12.8")})
    assert "PyTorch 2.11.0+cu12.8 (CUDA 12.8)" in got and "onnxruntime 1.31.1 is built for CUDA 13.0" in got
    assert cuda_mismatch(ort13, {"torch": _fake_torch("13.0")}) is None  # same major
    assert cuda_mismatch(ort13, {"torch": _fake_torch(None)}) is None  # a CPU build of torch
    assert cuda_mismatch(ort13, {"torch": None}) is None and cuda_mismatch(ort13, {}) is None  # not imported
    assert cuda_mismatch(types.SimpleNamespace(cuda_version=""), {"torch": _fake_torch("12.8")}) is None


def test_cuda_session_preloads_first_and_names_a_torch_cuda_mismatch(model_path, fake_cuda, monkeypatch, caplog):
    import sys

    import onnxruntime as ort

    from export.runtime import providers

    events = []
    monkeypatch.setattr(providers, "_preloaded", [])
    monkeypatch.setattr(ort, "cuda_version", "13.0", raising=False)
    monkeypatch.setattr(ort, "preload_dlls", lambda **kw: events.append("preload"), raising=False)
    real_init = ort.InferenceSession.__init__

    def init(self, *args, **kwargs):
        events.append("session")
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(ort.InferenceSession, "__init__", init)
    Rollout(model_path, providers="cuda", threads=1)
    assert events == ["preload", "session"]
    Rollout(model_path, providers="cpu", threads=1)
    assert events == ["preload", "session", "session"]  # once per process, never for the CPU

    monkeypatch.setitem(sys.modules, "torch", _fake_torch("12.8"))
    fake_cuda["mode"] = "fails"
    with pytest.raises(ValueError, match=r"did not start \(CUDA failure 100.*\); PyTorch .*CUDA 12\.8.*CUDA 13\.0"):
        Rollout(model_path, providers="cuda", threads=1)
    caplog.set_level(logging.INFO, logger="export.runtime")
    assert Rollout(model_path, providers="auto", threads=1).providers == [_CPU]
    assert "not usable here" in caplog.text and "CUDA 12.8" in caplog.text
    fake_cuda["mode"] = "starts"
    caplog.clear()
    assert Rollout(model_path, providers="cuda", threads=1).device == "cuda"
    assert [r.levelname for r in caplog.records if "CUDA 12.8" in r.getMessage()] == ["WARNING"]


def test_verify_names_the_provider_used(exported_model, fake_cuda):
    from export import onnx_export
    from surrogate import load_checkpoint

    model = load_checkpoint(exported_model[0])["model"]
    report = onnx_export.verify(exported_model[1], model, grids=[(6, 6, 6)], steps=2, threads=1, providers="cuda")
    assert report[0]["provider"] == _CUDA and report[0]["ok"]
    assert fake_cuda["sessions"][-1][0][0] == (_CUDA, {"device_id": 0, "use_tf32": 0})
    fake_cuda["mode"] = "dropped"
    report = onnx_export.verify(exported_model[1], model, grids=[(6, 6, 6)], steps=2, threads=1, providers="auto")
    assert report[0]["provider"] == _CPU


# -- the rollout CLI -------------------------------------------------------------------------------------
def test_cli_writes_a_data_set_that_ch_numba_reads(model_path, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    out = tmp_path / "run.h5"
    rc = rollout_main(
        [
            str(model_path),
            "--ic",
            "perlin",
            "--steps",
            "6",
            "--every",
            "2",
            "--out",
            str(out),
            "--seed",
            "3",
            "--threads",
            "1",
        ]
    )
    assert rc == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.h5"]  # no temporary left behind
    phi0 = initial.perlin((16, 16, 16), frequency=4, seed=3, mean=0.5)  # --size defaults to the training grid
    runner = Rollout(model_path, providers="cpu", threads=1)
    expected = [runner.downscale(phi0)] + list(runner.rollout(runner.downscale(phi0), 6, every=2))
    with ch_numba.open_dataset(out) as ds:
        assert ds.n_sequences == 1 and ds.n_frames == 4 and ds.shape == (8, 8, 8)
        np.testing.assert_allclose(ds.time, np.arange(4) * 2 * 400 * 1e-3, rtol=1e-12)
        assert ds.attrs["steps_per_frame"] == 800 and ds.attrs["dx"] == 2.0 and ds.attrs["resolution"] == "network"
        assert ds.params.dt == 1e-3 and ds.attrs["source"] == "surrogate"
        frames = ds.sequence(0)
        np.testing.assert_allclose(frames, np.stack(expected), rtol=0, atol=BATCH_ATOL)
        np.testing.assert_allclose(ds.phi_mean[0], frames.reshape(4, -1).mean(axis=1, dtype=np.float64), rtol=1e-12)
        params = ch_numba.CHParams(dx=2.0)
        np.testing.assert_allclose(ds.free_energy[0], [ch_numba.free_energy(f, params) for f in frames], rtol=1e-12)
        assert np.max(np.abs(ds.phi_mean[0] - ds.phi_mean[0, 0])) < MASS_RTOL * 0.5
        assert ds.ic[0]["kind"] == "perlin" and ds.seed[0] == 3
    assert "F = " in caplog.text and "mean phi" in caplog.text


def test_cli_full_resolution(model_path, tmp_path):
    out = tmp_path / "full.h5"
    rc = rollout_main(
        [
            str(model_path),
            "--size",
            "16",
            "--steps",
            "2",
            "--out",
            str(out),
            "--full-resolution",
            "--threads",
            "1",
            "--ic",
            "sphere",
        ]
    )
    assert rc == 0
    with ch_numba.open_dataset(out) as ds:
        assert ds.shape == (16, 16, 16) and ds.attrs["dx"] == 1.0 and ds.attrs["resolution"] == "full"
        frames = ds.sequence(0)
        np.testing.assert_array_equal(frames[0], initial.make("sphere", (16, 16, 16)))
        np.testing.assert_array_equal(frames[1][::2, ::2, ::2].repeat(2, 0).repeat(2, 1).repeat(2, 2), frames[1])


def test_cli_rollout_of_a_model_with_other_physics_works_with_ch_numba_info_and_render(model_path, tmp_path, capsys):
    """As the real trainings: ε = 1.5, dt = 4e-3, 200 solver steps per frame, 32³ data, no code version recorded."""
    meta = json.loads(onnx.load(str(model_path)).metadata_props[0].value)
    meta.update(epsilon=1.5, dt=4e-3, steps_per_frame=200, time_per_step=0.8, train_grid=32, train_shape=[32] * 3)
    meta["train"].update(code_version="exported by ch3d 0.1.0+git.0716e6e947e9-dirty", code_version_source="exporter")
    model = _with_metadata(model_path, tmp_path, json.dumps(meta))
    out = tmp_path / "r.h5"
    assert (
        rollout_main(
            [str(model), "--ic", "perlin", "--steps", "4", "--every", "2", "--out", str(out), "--threads", "1"]
        )
        == 0
    )  # --size: the training grid, 32
    with ch_numba.open_dataset(out) as ds:
        assert ds.shape == (16, 16, 16) and ds.n_frames == 3 and ds.attrs["steps_per_frame"] == 400
        assert ds.params.epsilon == 1.5 and ds.params.dt == 4e-3 and ds.params.dx == 2.0
        np.testing.assert_allclose(ds.time, [0.0, 1.6, 3.2], rtol=1e-12)
        last = ds.phi[0, -1]
    capsys.readouterr()
    assert ch_main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "sequences 1 (a single run, no train/val split), frames 3, grid 16x16x16" in text
    assert "epsilon=1.5 M=1 W=1 dx=2 dt=0.004, 400 steps/frame" in text and "backend onnxruntime-cpu" in text
    pics = tmp_path / "pics"
    assert ch_main(["render", str(out), "--sequence", "0", "--frames", "0,-1", "--out", str(pics)]) == 0
    assert (pics / "seq0000_frame0000.png").stat().st_size > 1000 and (pics / "seq0000_frame0002.png").exists()
    assert (pics / "seq0000_strip.png").exists() and (pics / "seq0000_energy.png").exists()
    np.testing.assert_array_equal(read_vti(pics / "seq0000_frame0002.vti")["phi"], last)


def test_cli_ic_h5_states_the_data_set_physics(model_path, tmp_path, caplog):
    """--ic h5: the data set's physics goes to Rollout(physics=...), so a data set of other physics than the
    model's training data gives one warning line (and the rollout still runs); the same physics, none. A rollout
    file states the physics of its model's ground truth."""
    from export.rollout import dataset_physics

    caplog.set_level(logging.INFO)
    same, other = tmp_path / "same.h5", tmp_path / "other.h5"
    for path, eps in ((same, "3"), (other, "2")):  # the model's: eps 3, dt 1e-3, 400 steps per frame
        assert (
            ch_main(
                [
                    "simulate",
                    str(path),
                    "--size",
                    "16",
                    "--frames",
                    "1",
                    "--steps-per-frame",
                    "400",
                    "--epsilon",
                    eps,
                    "--backend",
                    "numpy",
                ]
            )
            == 0
        )
    for path, warned in (
        (same, []),
        (
            other,
            [
                "warning: model.onnx: the stated physics differs from the training "
                "data's: epsilon=2 (trained: 3); the model emulates only the physics "
                "it was trained on (one step = 0.4 time units) (warned once per "
                "Rollout)"
            ],
        ),
    ):
        caplog.clear()
        out = tmp_path / f"r_{path.name}"
        assert (
            rollout_main(
                [
                    str(model_path),
                    "--ic",
                    "h5",
                    "--ic-file",
                    str(path),
                    "--steps",
                    "2",
                    "--every",
                    "2",
                    "--out",
                    str(out),
                    "--threads",
                    "1",
                ]
            )
            == 0
        )
        assert [r.getMessage() for r in caplog.records if "physics" in r.getMessage()] == warned
        assert out.exists()
    model = {"epsilon": 3.0, "mobility": 1.0, "W": 1.0, "dx": 1.0, "dt": 1e-3, "steps_per_frame": 400}
    assert dataset_physics(same) == model
    assert dataset_physics(tmp_path / "r_same.h5") == model  # stored at dx 2, 800 steps apart


@pytest.mark.parametrize(
    "args, match",
    [
        (["--steps", "5", "--every", "2"], "not a multiple of --every"),
        (["--size", "15"], "not divisible by the model's downscale factor 2"),
        (["--size", "4"], "smaller than the model's kernel"),
        (["--ic", "npy"], "needs --ic-file"),
        (["--out", "exists"], "already exists"),
        (["--out", "folder"], "is a folder"),
        (["--threads", "0"], "--threads must be >= 1, got 0"),
        (["--size", "4000"], "GiB of memory"),
        (["--seed", "1180591620717411303424"], f"--seed must be in 0..{2**63 - 1}, got 1180591620717411303424"),
    ],
)
def test_cli_errors_are_one_line(model_path, tmp_path, capsys, args, match):
    (tmp_path / "exists.h5").write_bytes(b"")
    args = [str(tmp_path / "exists.h5") if a == "exists" else str(tmp_path) if a == "folder" else a for a in args]
    argv = [str(model_path), *args] + ([] if "--out" in args else ["--out", str(tmp_path / "o.h5")])
    assert rollout_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and match in err[0], err
    assert not (tmp_path / "o.h5").exists()


@pytest.mark.parametrize(
    "train_grid, match",
    [
        (
            -5,
            r"^error: .*edited\.onnx: metadata train_grid=-5 is not a positive grid edge, so it cannot be the "
            r"default --size; give --size$",
        ),
        (
            15,
            r"^error: the model's training grid 15 \(metadata train_grid; --size chooses another\) is not "
            r"divisible by the model's downscale factor 2$",
        ),
    ],
)
def test_cli_names_the_metadata_when_the_default_size_comes_from_it(model_path, tmp_path, capsys, train_grid, match):
    """No --size given: a bad training grid in the metadata is blamed on the metadata, not on a --size nobody gave."""
    meta = json.loads(onnx.load(str(model_path)).metadata_props[0].value)
    meta["train_grid"] = train_grid
    model = _with_metadata(model_path, tmp_path, json.dumps(meta))
    assert rollout_main([str(model), "--steps", "2", "--out", str(tmp_path / "o.h5"), "--threads", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(match, err[0]), err
    assert "--size -5" not in err[0] and not (tmp_path / "o.h5").exists()


def test_cli_overwrite_replaces_an_existing_output(model_path, tmp_path, capsys):
    out = tmp_path / "run.h5"
    out.write_bytes(b"an earlier run")
    argv = [str(model_path), "--steps", "2", "--out", str(out), "--threads", "1"]
    assert rollout_main(argv) == 2 and "pass --overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"an earlier run"
    assert rollout_main([*argv, "--overwrite"]) == 0
    with ch_numba.open_dataset(out) as ds:
        assert ds.n_frames == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.h5"]


# -- no PyTorch ------------------------------------------------------------------------------------------
CHILD = r"""
import numpy as np
from export.runtime import Rollout
from export.rollout import main

model, out, example = sys.argv[1:4]
r = Rollout(model, providers="auto", threads=1)
phi0 = r.downscale(np.full((16, 16, 16), 0.5, np.float32) + 0.05 * np.random.default_rng(0).random((16, 16, 16)))
frames = list(r.rollout(phi0, 3))
assert len(frames) == 3 and frames[-1].shape == (8, 8, 8)
assert main([model, "--steps", "2", "--out", out, "--threads", "1"]) == 0

# the embedding example, with torch importable again: it asserts itself that nothing imported it
del sys.modules["torch"]
import runpy
sys.argv = [example, model, "--size", "16", "--fd-frames", "1", "--frames", "2", "--threads", "1"]
try:
    runpy.run_path(example, run_name="__main__")
except SystemExit as e:
    assert not e.code, e.code
assert "torch" not in sys.modules
print("TORCH-FREE OK")
"""


def test_runtime_cli_and_example_run_without_torch(model_path, tmp_path):
    example = ROOT / "examples" / "embed_rollout.py"
    result = run_python(CHILD, model_path, tmp_path / "child.h5", example, no_torch=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TORCH-FREE OK" in result.stdout and "torch imported: no" in result.stdout
    with ch_numba.open_dataset(tmp_path / "child.h5") as ds:
        assert ds.n_frames == 3


LIGHT_CHILD = r"""
import sys
import numpy as np
from export.runtime import Rollout

r = Rollout(sys.argv[1], providers="cpu", threads=1)
phi0 = np.full((16, 16, 16), 0.5, np.float32) + 0.05 * np.random.default_rng(0).random((16, 16, 16), np.float32)
last = list(r.rollout(r.to_network(phi0), 3))[-1]
assert r.from_network(last).shape == (1, 16, 16, 16) and r.upscale(r.downscale(phi0)).shape == (16, 16, 16)
"""


def test_a_runtime_rollout_loads_neither_surrogate_nor_torch(model_path, tmp_path):
    """The embedding path (export.runtime) needs numpy and onnxruntime only: not ``surrogate`` (whose
    metrics held the resampling), torch, nor the solver's numba, h5py, scipy, matplotlib, nor any
    module of ch_numba but the stdlib-only ch_numba.params (:func:`conftest.heavy_modules`)."""
    result = run_python(LIGHT_CHILD, model_path, report=heavy_modules(), timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "loaded: none"


NO_TORCH_CHILD = r"""
import sys
from export.__main__ import main as export_main
from surrogate.cli import main as surrogate_main

ckpt, data, out = sys.argv[1:4]
print("export", export_main([ckpt, out + "/m.onnx"]))
print("train", surrogate_main(["train", data, "--out", out + "/run"]))
"""


def test_torch_commands_name_the_extra_to_install_without_torch(exported_model, tmp_path):
    """`export` and `surrogate train` in an install without PyTorch: one line each, status 2, the extra named."""
    data = tmp_path / "d.h5"
    assert (
        ch_main(["simulate", str(data), "--size", "8", "--frames", "2", "--steps-per-frame", "1", "--backend", "numpy"])
        == 0
    )
    out = tmp_path / "out"
    out.mkdir()
    result = run_python(NO_TORCH_CHILD, exported_model[0], data, out, no_torch=True, env=os.environ)
    assert result.stdout.split() == ["export", "2", "train", "2"], result.stderr[-3000:]
    err = result.stderr.strip().splitlines()
    assert len(err) == 2 and "Traceback" not in result.stderr, err
    assert err[0].startswith("error: `python -m export` needs PyTorch") and "pip install 'ch3d[train,export]'" in err[0]
    assert err[1].startswith("error: `surrogate train` needs PyTorch") and "pip install 'ch3d[train]'" in err[1]
    assert list(out.iterdir()) == []


@pytest.mark.gpu
def test_cuda_rollout_with_device_state_matches_cpu(model_path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this onnxruntime has no CUDA provider")
    gpu = Rollout(model_path, providers="cuda")
    assert gpu.device == "cuda" and gpu.providers[0] == "CUDAExecutionProvider"
    cpu = Rollout(model_path, providers="cpu", threads=1)
    phi0 = field((16, 12, 8), batch=2)
    on_gpu = np.stack(list(gpu.rollout(phi0, 20, every=5)))
    on_cpu = np.stack(list(cpu.rollout(phi0, 20, every=5)))
    np.testing.assert_allclose(on_gpu, on_cpu, rtol=0, atol=1e-4)
    np.testing.assert_allclose(gpu.step(on_gpu[-1]), cpu.step(on_cpu[-1]), rtol=0, atol=1e-4)


# -- layout of the runtime (issue 23) ----------------------------------------------------------------------
def test_the_old_module_paths_are_aliases_of_the_runtime_subpackage():
    """export.spec, export.resample and export.runner_base moved into export.runtime; the old paths
    re-export the same objects, and every public name of export.runtime resolves."""
    import export.resample
    import export.runner_base
    import export.runtime
    import export.spec
    from export.runtime import resample, runner_base

    assert export.spec.INPUTS is spec.INPUTS and export.spec.METADATA_KEY is spec.METADATA_KEY
    assert export.resample.downsample is resample.downsample and export.resample.upsample is resample.upsample
    assert export.runner_base.RunnerBase is runner_base.RunnerBase and Rollout.__mro__[1] is runner_base.RunnerBase
    assert export.runner_base.check_threads is runner_base.check_threads
    for name in export.runtime.__all__:
        assert getattr(export.runtime, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        export.runtime.nothing  # noqa: B018


def test_the_physics_check_is_one_function():
    """guards.physics_mismatches: epsilon, mobility, W, dx as stated; time as time_per_step, else
    dt · steps_per_frame when both are stated, else dt or steps_per_frame alone; relative 1e-6."""
    from export.runtime.guards import PHYSICS_RTOL, physics_mismatches

    meta = {"epsilon": 3.0, "mobility": 1.0, "W": 1.0, "dx": 1.0, "dt": 1e-3, "steps_per_frame": 400}
    assert PHYSICS_RTOL == 1e-6
    assert physics_mismatches(meta, {"epsilon": 3.0 * (1 + 1e-7), "dt": 2e-3, "steps_per_frame": 200}) == []
    assert physics_mismatches(meta, {"epsilon": 1.0, "time_per_step": 0.8}) == [
        ("epsilon", 1.0, 3.0),
        ("time_per_step", 0.8, pytest.approx(0.4)),
    ]
    assert physics_mismatches(meta, {"dt": 2e-3}) == [("dt", 2e-3, 1e-3)]
    assert physics_mismatches({"dt": 1e-3, "steps_per_frame": 400}, {"epsilon": 1.0, "dx": 2.0}) == []  # not known
