"""``python -m surrogate evaluate`` and ``rollout``: numbers against independent numpy references.

A random-weight CRNN (checkpoint and its ONNX export) on a tiny data set (4 sequences × 6 frames
of 16³, ε = 1, burn-in 0..2 frames). Every number of evaluation.json is recomputed here from
``CRNN.rollout`` and plain numpy formulas (RMSE, δ with periodic central differences, F with
forward differences, the log-log least-squares fit), not from surrogate.metrics. Named
tolerances: REDUCTION for the same float32 fields reduced in float64 in another order, ORT_ATOL
for onnxruntime against PyTorch (float32, 5 steps), MASS for the conservative model's drift.
"""

import json
import logging
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from conftest import run_python

import ch_numba
from ch_numba import initial
from ch_numba.dataset import DatasetConfig, generate
from ch_numba.files import json_safe
from ch_numba.provenance import code_version
from export import onnx_export
from surrogate import CRNN, load_checkpoint, metrics, save_checkpoint
from surrogate.cli import main
from surrogate.evaluate import EvalConfig, ensemble, evaluate_sequence, select_sequences

REDUCTION = dict(rtol=1e-10, atol=1e-14)
ORT_ATOL = 1e-5
MASS = 1e-6
PARAMS = ch_numba.CHParams(epsilon=1.0, dt=0.01)
PLOTS = ("overview.png", "rmse.png", "delta.png", "free_energy.png", "free_energy_error.png", "mass.png", "slices.png")
ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_data(path, sequences=4, frames=6, size=16, val_fraction=0.5, burn_in=2):
    generate(
        path,
        DatasetConfig(
            sequences=sequences,
            frames=frames,
            steps_per_frame=100,
            size=size,
            val_fraction=val_fraction,
            seed=1,
            frequencies=(2,),
            burn_in_frames=burn_in,
        ),
        PARAMS,
        backend="numpy",
        progress=False,
    )
    return path


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("data") / "tiny.h5")


@pytest.fixture(scope="module")
def models(data_file, tmp_path_factory):
    """(checkpoint, onnx) of a random-weight conservative CRNN 'trained' on data_file (its physics)."""
    folder = tmp_path_factory.mktemp("model")
    with h5py.File(data_file, "r") as f:
        attrs = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in f.attrs.items()}
    torch.manual_seed(0)
    ckpt = folder / "model.pt"
    save_checkpoint(
        CRNN(),
        ckpt,
        epoch=0,
        downscale=2,
        code_version="0.1.0+git.test",
        dataset={"path": str(data_file), "attrs": attrs, "n_frames": 6, "shape": [16, 16, 16]},
    )
    onnx = folder / "model.onnx"
    onnx_export.export_checkpoint(ckpt, onnx)
    return ckpt, onnx


# -- independent references ---------------------------------------------------------------------
def read(data_file, i, T):
    with h5py.File(data_file, "r") as f:
        return (
            f["phi"][i, :T].astype(np.float32),
            f["free_energy"][i, :T],
            f["phi_mean"][i, :T],
            f["t0"][i] + f["time"][:T],
            f["split"].asstr()[i],
        )


def free_energy_numpy(phi, eps=1.0, W=1.0, dx=1.0):
    """F/V = mean(W φ²(1−φ)² + ε²/2 Σ_a ((φ[i+e_a] − φ[i]) / dx)²), periodic, float64."""
    x = phi.astype(np.float64)
    grad2 = sum((np.roll(x, -1, a) - x) ** 2 for a in range(3)) / dx**2
    return float(np.mean(W * x**2 * (1 - x) ** 2 + 0.5 * eps**2 * grad2))


def reference(ckpt, data_file, i, T):
    """Everything evaluation.json reports for sequence i, from CRNN.rollout and numpy."""
    truth, F_true, m_true, t_ic, split = read(data_file, i, T)
    model = load_checkpoint(ckpt)["model"]
    net0 = np.ascontiguousarray(truth[0, ::2, ::2, ::2])
    with torch.no_grad():
        steps = model.rollout(torch.from_numpy(net0)[None, None], T - 1)[0, :, 0].numpy()
    pred_net = np.concatenate([net0[None], steps]).astype(np.float64)
    pred = pred_net.repeat(2, 1).repeat(2, 2).repeat(2, 3)
    diff = pred - truth
    t64 = truth.astype(np.float64)
    grad = [(np.roll(t64, -1, a) - np.roll(t64, 1, a)) / 2.0 for a in (1, 2, 3)]
    F_pred = np.array([free_energy_numpy(p) for p in pred])
    F_net_pred = np.array([free_energy_numpy(p, dx=2.0) for p in pred_net])
    F_net_true = np.array([free_energy_numpy(p, dx=2.0) for p in truth[:, ::2, ::2, ::2]])
    m_pred = pred_net.reshape(T, -1).mean(axis=1)
    keep = t_ic > 0
    stat = {}
    for who, net in (("pred", pred_net), ("true", truth[:, ::2, ::2, ::2].astype(np.float64))):
        m = (T - 1) // 2  # the tail: the last half of the sequence
        last, first = net[-1], net[-1 - m]
        prof = [last.mean(axis=ax).var() for ax in ((1, 2), (0, 2), (0, 1))]
        speeds = []
        for k in range(T - 1 - m, T - 1):
            g2 = sum(((np.roll(net[k], -1, a) - np.roll(net[k], 1, a)) / 2.0) ** 2 for a in range(3))
            speeds.append(np.sqrt(np.sum((net[k + 1] - net[k]) ** 2) / np.sum(g2)) * 1e4)
        stat.update(
            {
                f"rms_change_tail_{who}": np.sqrt(np.mean((last - first) ** 2)),
                f"layered_fraction_final_{who}": max(prof) / last.var(),
                f"interface_velocity_tail_{who}": np.mean(speeds),
            }
        )

    def length(frames):  # L = 2π/<k> from the full FFT on the network grid (spacing 2)
        u = frames - frames.mean(axis=(1, 2, 3), keepdims=True)
        power = np.abs(np.fft.fftn(u, axes=(1, 2, 3))) ** 2
        ks = np.meshgrid(*(2 * np.pi * np.fft.fftfreq(n, d=2.0) for n in frames.shape[1:]), indexing="ij")
        kabs = np.sqrt(sum(c**2 for c in ks))
        return 2 * np.pi * power.sum(axis=(1, 2, 3)) / (power * kabs).sum(axis=(1, 2, 3))

    return {
        **stat,
        "length_pred": length(pred_net.astype(np.float64)),
        "length_true": length(truth[:, ::2, ::2, ::2].astype(np.float64)),
        "split": split,
        "t_ic": t_ic,
        "rmse_full": np.sqrt(np.mean(diff**2, axis=(1, 2, 3))),
        "rmse_network": np.sqrt(np.mean((pred_net - truth[:, ::2, ::2, ::2]) ** 2, axis=(1, 2, 3))),
        "delta": np.sqrt(np.sum(diff**2, axis=(1, 2, 3)) / np.sum(sum(g**2 for g in grad), axis=(1, 2, 3))),
        "free_energy_pred": F_pred,
        "free_energy_true": F_true,
        "free_energy_rel_error": np.abs(F_pred - F_true) / F_true,
        "free_energy_net_pred": F_net_pred,
        "free_energy_net_true": F_net_true,
        "free_energy_rel_error_network": np.abs(F_net_pred - F_net_true) / F_net_true,
        "mass_drift_pred": np.abs(m_pred - m_pred[0]) / m_pred[0],
        "mass_drift_true": np.abs(m_true - m_true[0]) / m_true[0],
        "alpha_pred": np.polyfit(np.log(t_ic[keep]), np.log(F_pred[keep]), 1)[0],
        "alpha_true": np.polyfit(np.log(t_ic[keep]), np.log(F_true[keep]), 1)[0],
        "alpha_net_pred": np.polyfit(np.log(t_ic[keep]), np.log(F_net_pred[keep]), 1)[0],
        "alpha_net_true": np.polyfit(np.log(t_ic[keep]), np.log(F_net_true[keep]), 1)[0],
    }


def run_evaluate(capsys, *args):
    rc = main(["evaluate", *map(str, args), "--threads", "1"])
    assert rc == 0, capsys.readouterr().err


def load(out):
    return json.loads((Path(out) / "evaluation.json").read_text())


def check_against_reference(seq, ref, atol):
    for key in (
        "rmse_full",
        "rmse_network",
        "delta",
        "free_energy_pred",
        "free_energy_rel_error",
        "free_energy_rel_error_network",
        "length_pred",
        "length_true",
    ):
        np.testing.assert_allclose(
            seq[key], ref[key], rtol=0 if atol else REDUCTION["rtol"], atol=atol or REDUCTION["atol"], err_msg=key
        )
    np.testing.assert_allclose(seq["free_energy_true"], ref["free_energy_true"], rtol=0, atol=0)  # the stored F
    np.testing.assert_allclose(seq["mass_drift_true"], ref["mass_drift_true"], **REDUCTION)
    np.testing.assert_allclose(seq["times_since_ic"], ref["t_ic"], rtol=1e-12)
    assert max(seq["mass_drift_pred"]) < MASS and max(ref["mass_drift_pred"]) < MASS
    assert seq["alpha_true"] == pytest.approx(ref["alpha_true"], rel=1e-9)
    assert seq["alpha_pred"] == pytest.approx(ref["alpha_pred"], rel=1e-9, abs=max(atol, 1e-12) * 100)
    assert seq["alpha_net_true"] == pytest.approx(ref["alpha_net_true"], rel=1e-9)
    assert seq["alpha_net_pred"] == pytest.approx(ref["alpha_net_pred"], rel=1e-9, abs=max(atol, 1e-12) * 100)
    assert seq["alpha_net_true"] != pytest.approx(seq["alpha_true"], rel=1e-6)  # two different fits
    assert seq["split"] == ref["split"]
    for who in ("pred", "true"):  # stationarity of the end, network grid
        tol = dict(rtol=1e-3, atol=atol) if atol and who == "pred" else REDUCTION
        for key in ("rms_change_tail", "layered_fraction_final", "interface_velocity_tail"):
            assert seq[f"{key}_{who}"] == pytest.approx(ref[f"{key}_{who}"], rel=tol["rtol"], abs=tol["atol"]), key
        st = seq[f"stationarity_{who}"]
        assert st["tail_steps"] == (len(seq["rmse_full"]) - 1) // 2 and st["steps_between"] == 1
        assert st["rms_change"] == seq[f"rms_change_tail_{who}"] and len(st["layer_shift_per_1e4_steps"]) == 3
        assert 0 <= seq[f"rms_change_tail_translated_{who}"] <= seq[f"rms_change_tail_{who}"] + 1e-12
    assert ref["interface_velocity_tail_pred"] > 0 and ref["interface_velocity_tail_true"] > 0  # nonzero cases


# -- evaluate ------------------------------------------------------------------------------------------
def test_checkpoint_evaluation_equals_numpy_reference(models, data_file, tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO)
    ckpt, _ = models
    out = tmp_path / "eval"
    run_evaluate(capsys, ckpt, data_file, "--out", out)
    result = load(out)
    with h5py.File(data_file, "r") as f:
        val = np.flatnonzero(f["split"].asstr()[...] == "val").tolist()
    assert [s["index"] for s in result["sequences"]] == val and len(val) == 2  # --split val by default
    refs = [reference(ckpt, data_file, i, 6) for i in val]
    for seq, ref in zip(result["sequences"], refs):
        assert len(seq["rmse_full"]) == 6 and seq["rmse_full"][0] > 0  # frame 0 at full grid: the ×2 blocks
        assert seq["rmse_network"][0] == 0.0  # frame 0 on the network grid is the input itself
        check_against_reference(seq, ref, atol=0)
    # ensemble: mean and sample sd (ddof 1) over the two sequences, per frame and per sequence
    ens = result["ensemble"]
    both = np.array([r["rmse_full"] for r in refs])
    np.testing.assert_allclose(ens["curves"]["rmse_full"]["mean"], both.mean(axis=0), **REDUCTION)
    np.testing.assert_allclose(ens["curves"]["rmse_full"]["sd"], both.std(axis=0, ddof=1), **REDUCTION)
    F_mean = np.mean([r["free_energy_pred"] for r in refs], axis=0)
    F_true = np.mean([r["free_energy_true"] for r in refs], axis=0)
    np.testing.assert_allclose(ens["free_energy_mean_rel_error"], np.abs(F_mean - F_true) / F_true, **REDUCTION)
    F_net_mean = np.mean([r["free_energy_net_pred"] for r in refs], axis=0)
    F_net_true = np.mean([r["free_energy_net_true"] for r in refs], axis=0)
    np.testing.assert_allclose(
        ens["free_energy_mean_rel_error_network"], np.abs(F_net_mean - F_net_true) / F_net_true, **REDUCTION
    )
    alphas = [r["alpha_true"] for r in refs]
    assert ens["scalars"]["alpha_true"]["mean"] == pytest.approx(np.mean(alphas), rel=1e-9)
    assert ens["scalars"]["alpha_true"]["sd"] == pytest.approx(np.std(alphas, ddof=1), rel=1e-9)
    assert ens["scalars"]["free_energy_rel_error_max"]["max"] == pytest.approx(
        max(r["free_energy_rel_error"].max() for r in refs), rel=1e-10
    )
    # provenance and plots
    assert result["format"] == "ch3d-evaluation" and result["model"]["kind"] == "torch"
    assert result["model"]["backend"] == "torch-cpu" and result["model"]["downscale"] == 2
    assert result["model"]["metadata"]["train"]["code_version"] == "0.1.0+git.test"
    assert result["data"]["physics"]["epsilon"] == 1.0 and result["data"]["grid"] == [16, 16, 16]
    assert result["command"].startswith("python -m surrogate evaluate") and result["code_version"] == code_version()
    assert result["warnings"] == [] and result["plots"] == list(PLOTS)
    for name in PLOTS:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / name).stat().st_size > 5000
    assert "RMSE, last frame (full grid)" in caplog.text and "power-law exponent" in caplog.text
    assert "interface velocity, cells/10⁴ steps (last 2)" in caplog.text and "layered fraction" in caplog.text
    assert ens["scalars"]["interface_velocity_tail_pred"]["mean"] == pytest.approx(
        np.mean([r["interface_velocity_tail_pred"] for r in refs]), rel=1e-9
    )


def test_onnx_evaluation_equals_numpy_reference(models, data_file, tmp_path, capsys):
    ckpt, onnx = models
    out = tmp_path / "eval"
    run_evaluate(
        capsys,
        onnx,
        data_file,
        "--out",
        out,
        "--sequences",
        "0,2",
        "--frames",
        "5",
        "--fit-range",
        "1.5:",
        "--no-plots",
    )
    result = load(out)
    assert [s["index"] for s in result["sequences"]] == [0, 2] and result["data"]["frames"] == 5
    assert result["model"]["kind"] == "onnx" and result["model"]["backend"] == "onnxruntime-cpu"
    assert result["plots"] == [] and not list(out.glob("*.png"))
    for seq in result["sequences"]:
        ref = reference(ckpt, data_file, seq["index"], 5)
        keep = ref["t_ic"] >= 1.5  # the fit window
        ref["alpha_true"] = np.polyfit(np.log(ref["t_ic"][keep]), np.log(ref["free_energy_true"][keep]), 1)[0]
        ref["alpha_pred"] = np.polyfit(np.log(ref["t_ic"][keep]), np.log(ref["free_energy_pred"][keep]), 1)[0]
        for who in ("pred", "true"):
            F_net = ref[f"free_energy_net_{who}"][keep]
            ref[f"alpha_net_{who}"] = np.polyfit(np.log(ref["t_ic"][keep]), np.log(F_net), 1)[0]
        check_against_reference(seq, ref, atol=ORT_ATOL)


CHILD = r"""
from surrogate.cli import main
rc = main(sys.argv[1:])
assert rc == 0, rc
assert sys.modules["torch"] is None and not [m for m in sys.modules if m.startswith("torch.")]
print("TORCH-FREE OK")
"""


def test_onnx_evaluation_runs_without_torch(models, data_file, tmp_path):
    ckpt, onnx = models
    out = tmp_path / "eval"
    args = ["evaluate", onnx, data_file, "--out", out, "--threads", "1", "--sequences", "1"]
    result = run_python(CHILD, *args, no_torch=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TORCH-FREE OK" in result.stdout
    seq = load(out)["sequences"][0]
    check_against_reference(seq, reference(ckpt, data_file, 1, 6), atol=ORT_ATOL)
    assert all((out / name).exists() for name in PLOTS)


def test_sequence_selection(data_file):
    with ch_numba.open_dataset(data_file) as ds:
        val, train = ds.indices("val").tolist(), ds.indices("train").tolist()

        def pick(**kw):
            return select_sequences(ds, EvalConfig(model="m", data="d", out="o", **kw)).tolist()

        assert pick() == val and pick(split="train") == train and pick(split="all") == [0, 1, 2, 3]
        assert pick(sequences=(3, 1, 3)) == [1, 3]  # any split, sorted, once
        sample = pick(split="all", max_sequences=2, seed=5)
        assert sample == sorted(np.random.default_rng(5).choice(np.arange(4), 2, replace=False).tolist())
        assert pick(split="all", max_sequences=2, seed=5) == sample and pick(max_sequences=9) == val


class _Exact:
    """A perfect 'model' at factor 1: returns the next stored frames."""

    factor = 1

    def __init__(self, frames):
        self.frames = frames

    def rollout(self, phi0, steps):
        np.testing.assert_array_equal(phi0, self.frames[0])
        return iter(self.frames[1 : steps + 1])


def test_a_perfect_model_scores_zero(data_file):
    truth, F_true, m_true, t_ic, _ = read(data_file, 1, 6)
    rec, pred = evaluate_sequence(
        _Exact(truth), truth, PARAMS, free_energy_true=F_true, phi_mean_true=m_true, t_ic=t_ic
    )
    np.testing.assert_array_equal(pred, truth)
    for key in ("rmse_full", "rmse_network", "delta"):
        np.testing.assert_array_equal(rec[key], 0.0)
    np.testing.assert_allclose(rec["free_energy_rel_error"], 0.0, atol=1e-15)  # F recomputed = F stored
    np.testing.assert_array_equal(rec["free_energy_rel_error_network"], 0.0)
    np.testing.assert_allclose(rec["mass_drift_pred"], rec["mass_drift_true"], rtol=1e-9, atol=1e-15)
    assert rec["alpha_pred"] == pytest.approx(rec["alpha_true"], rel=1e-12)
    assert rec["alpha_net_pred"] == pytest.approx(rec["alpha_net_true"], rel=1e-12)
    assert rec["stationary_index_pred"] == rec["stationary_index_true"]
    assert json_safe(rec["stationarity_pred"]) == json_safe(rec["stationarity_true"])
    assert rec["interface_velocity_tail_pred"] == rec["interface_velocity_tail_true"] > 0  # still coarsening
    ens = ensemble([rec, rec])
    np.testing.assert_array_equal(ens["curves"]["free_energy_true"]["sd"], 0.0)
    assert ens["scalars"]["alpha_true"]["n"] == 2 and ens["stationary_pred"] == ens["stationary_true"]


def test_old_names_stay_importable_from_evaluate():
    # the report moved to surrogate.report and --split's choices are SELECTIONS (issue 23); old imports work
    from surrogate import evaluate as ev
    from surrogate import report

    for name in ("CURVES", "SCALARS", "FORMAT", "FORMAT_VERSION", "ensemble", "summary_table", "_stats", "_write_json"):
        assert getattr(ev, name) is getattr(report, name), name
    assert ev.SPLITS is ev.SELECTIONS == ("val", "train", "all")


# -- rollout ---------------------------------------------------------------------------------------------
def test_rollout_cli_writes_crnn_rollout(models, tmp_path, capsys):
    ckpt, onnx = models
    out = tmp_path / "run.h5"
    assert (
        main(
            [
                "rollout",
                str(ckpt),
                "--size",
                "16",
                "--steps",
                "4",
                "--every",
                "2",
                "--seed",
                "5",
                "--out",
                str(out),
                "--threads",
                "1",
            ]
        )
        == 0
    )
    phi0 = initial.perlin((16, 16, 16), frequency=4, seed=5, mean=0.5, amplitude=0.1)[::2, ::2, ::2]
    model = load_checkpoint(ckpt)["model"]
    with torch.no_grad():
        want = model.rollout(torch.from_numpy(np.ascontiguousarray(phi0, np.float32))[None, None], 4)[0, :, 0].numpy()
    with ch_numba.open_dataset(out) as ds:
        frames = ds.sequence(0)
        assert ds.n_frames == 3 and ds.shape == (8, 8, 8) and ds.params.dx == 2.0 and ds.params.epsilon == 1.0
        assert ds.attrs["backend"] == "torch-cpu" and ds.attrs["source"] == "surrogate"
        np.testing.assert_allclose(ds.time, [0.0, 2.0, 4.0], rtol=1e-12)  # 2 steps x 100 x dt 0.01 per frame
        np.testing.assert_array_equal(frames[0], phi0.astype(np.float32))
        np.testing.assert_array_equal(frames[1:], want[[1, 3]])
        np.testing.assert_allclose(ds.free_energy[0], [free_energy_numpy(f, dx=2.0) for f in frames], rtol=1e-12)
    # the same as `python -m export.rollout` on the exported model
    from export.rollout import main as onnx_rollout

    assert (
        onnx_rollout(
            [
                str(onnx),
                "--size",
                "16",
                "--steps",
                "4",
                "--every",
                "2",
                "--seed",
                "5",
                "--out",
                str(tmp_path / "onnx.h5"),
                "--threads",
                "1",
            ]
        )
        == 0
    )
    with ch_numba.open_dataset(tmp_path / "onnx.h5") as ds:
        np.testing.assert_allclose(ds.sequence(0), frames, rtol=0, atol=ORT_ATOL)


# -- the stability probe (docs/probe_stability.py) --------------------------------------------------------
def _probe_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("probe_stability", ROOT / "docs" / "probe_stability.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class _Translator:
    """A fake runner (the shipped model's metadata) that moves the field rigidly by ``v`` cells per
    step along ``axis`` (Fourier interpolation: every mode gets its phase, so layer_shift is exact)."""

    factor = 2
    metadata = {"epsilon": 1.5, "W": 1.0, "dx": 1.0, "downscale": 2, "train_grid": 32}

    def __init__(self, v=0.0, axis=0):
        self.v, self.axis = v, axis

    def rollout(self, phi0, steps, every=1):
        n = phi0.shape[self.axis]
        k = np.fft.fftfreq(n, 1.0 / n).reshape([-1 if a == self.axis else 1 for a in range(3)])
        spec = np.fft.fft(phi0.astype(np.float64), axis=self.axis)
        for j in range(every, steps + 1, every):
            yield np.fft.ifft(spec * np.exp(-2j * np.pi * k * self.v * j / n), axis=self.axis).real.astype(np.float32)


def test_flat_layer_variants():
    probe = _probe_module()
    w = probe.interface_width(_Translator())
    assert w == pytest.approx(2 * 1.5 / np.sqrt(2) / 2)  # w = 2 ε/√(2W) / f = 1.06 network cells
    for axis in range(3):
        phi = probe.flat_layer(32, axis, w, "mirror")
        assert phi.dtype == np.float32 and phi.shape[axis] == 32 and phi.shape[(axis + 1) % 3] == 16
        p = phi.mean(axis=tuple(a for a in range(3) if a != axis)).astype(np.float64)
        np.testing.assert_allclose(p, p[(-np.arange(32)) % 32], atol=1e-7)  # mirror x -> −x (and n/2 ± u)
        assert p[8] == pytest.approx(0.5, abs=1e-6) and p.mean() == pytest.approx(0.5, abs=1e-6)
        assert metrics.layered_fraction(phi) == pytest.approx(1.0, abs=1e-6)
    off = probe.flat_layer(32, 0, w, "offset")[:, 0, 0].astype(np.float64)
    assert np.max(np.abs(off - off[(-np.arange(32)) % 32])) > 0.1  # no lattice mirror
    assert metrics.layer_shift(probe.flat_layer(32, 0, w), probe.flat_layer(32, 0, w, "offset"), 0) == pytest.approx(
        0.3, abs=1e-3
    )
    assert probe.flat_layer(32, 1, w, "unequal").mean() == pytest.approx(0.4, abs=1e-5)


@pytest.mark.parametrize("axis", [0, 2])
def test_layer_probe_measures_a_known_drift(axis):
    probe = _probe_module()
    r = probe.probe_layers(_Translator(v=0.01, axis=axis), axis, "offset", 2000)  # 20 cells: more than n/2
    assert r["drift"] == pytest.approx(20.0, abs=1e-4) and r["drift_per_1e4_steps"] == pytest.approx(100.0, rel=1e-5)
    np.testing.assert_allclose(r["drift_curve"], 2.5 * np.arange(1, 9), atol=1e-4)
    assert r["layered_fraction"] == pytest.approx(1.0, abs=1e-5)
    assert r["interface_velocity"] == pytest.approx(100.0, rel=0.15)  # 2.5 cells per 250 steps, w ≈ 1
    rest = probe.probe_layers(_Translator(v=0.0), axis, "unequal", 500)
    assert rest["drift"] == 0.0 and rest["interface_velocity"] == 0.0 and rest["rms_change_up_to_translation"] == 0


def test_perlin_probe_reports_stationarity():
    probe = _probe_module()
    r = probe.probe(_Translator(v=0.0), 7, 500)
    assert r["first_out_of_range"] is None and r["rms_change_last_2500"] == 0.0 and r["interface_velocity"] == 0.0
    assert 0 <= r["layered_fraction"] < 0.5  # Perlin noise: a 3D field
    r = probe.probe(_Translator(v=0.004, axis=1), 7, 500)  # 1 cell per 250 steps
    assert r["rms_change_last_2500"] > 0.01 and r["rms_change_up_to_translation"] < 1e-5
    assert r["translation"] == [0, 2, 0] and r["layer_shift_per_1e4_steps"][1] == pytest.approx(40.0, abs=1e-3)


# -- refusals ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    with h5py.File(d / "foreign.h5", "w") as f:
        f["x"] = np.zeros(3)
    (d / "garbage.pt").write_bytes(b"PK\x03\x04 not a checkpoint")
    (d / "noise.pt").write_bytes(bytes(range(256)) * 4)
    torch.save({"model_state": {}, "config": {}, "note": Path("not plain data")}, d / "objects.pt")
    (d / "folder.pt").mkdir()
    (d / "garbage.onnx").write_bytes(b"\x00garbage" * 10)
    make_data(d / "odd.h5", sequences=1, frames=2, size=9, val_fraction=0.0, burn_in=0)
    make_data(d / "four.h5", sequences=1, frames=2, size=4, val_fraction=0.0, burn_in=0)
    make_data(d / "noval.h5", sequences=1, frames=2, size=8, val_fraction=0.0, burn_in=0)
    make_data(d / "notrain.h5", sequences=2, frames=2, size=8, val_fraction=0.75, burn_in=0)  # round(1.5) = 2 val
    return d


@pytest.mark.parametrize(
    "args, match",
    [
        (["evaluate", "{d}/missing.pt", "{data}"], "no such model file"),
        (["evaluate", "{ckpt}", "{d}/missing.h5"], "no such file"),
        (["evaluate", "{ckpt}", "{d}/foreign.h5"], "is not a ch3d data set"),
        (["evaluate", "{d}/garbage.pt", "{data}"], "not a ch3d checkpoint"),
        (["evaluate", "{d}/garbage.onnx", "{data}"], "not a readable ONNX model"),
        (
            ["evaluate", "{onnx}", "{d}/odd.h5"],
            "grid mismatch: the data set's grid 9x9x9 is not divisible by the model's downscale factor 2",
        ),
        (["evaluate", "{ckpt}", "{d}/four.h5"], "smaller than the model's kernel 3"),
        (["evaluate", "{ckpt}", "{d}/noval.h5"], "has no 'val' sequences; use --split train or all, or --sequences"),
        (
            ["evaluate", "{ckpt}", "{d}/notrain.h5", "--split", "train"],
            "has no 'train' sequences; use --split val or all, or --sequences",
        ),  # the hint never names the split used
        (["evaluate", "{ckpt}", "{data}", "--frames", "7"], "stores only 6 frames"),
        (["evaluate", "{ckpt}", "{data}", "--frames", "1"], "--frames must be >= 2"),
        (["evaluate", "{ckpt}", "{data}", "--sequences", "4"], "--sequences 4 is out of range"),
        (["evaluate", "{ckpt}", "{data}", "--fit-range", "5:1"], "t_min 5.0 must be below t_max 1.0"),
        (["rollout", "{d}/missing.pt", "--size", "16"], "checkpoint not found"),
        (["rollout", "{ckpt}", "--size", "15"], "not divisible by the model's downscale factor 2"),
        (["rollout", "{ckpt}", "--steps", "5", "--every", "2"], "not a multiple of --every"),
        (["rollout", "{ckpt}", "--threads", "0"], "--threads must be >= 1, got 0"),
        (["evaluate", "{ckpt}", "{data}", "--threads", "0"], "--threads must be >= 1, got 0"),
        (["train", "{data}", "--threads", "0"], "--threads must be >= 1, got 0"),
        (["train", "{data}", "--downscale", "8"], "--downscale 8 turns the grid 16x16x16 of "),
        (["evaluate", "{d}/folder.pt", "{data}"], "folder.pt is a folder, not a model file"),
        (["evaluate", "{ckpt}", "{d}"], "is a folder, not a data set file"),
        (["rollout", "{d}/folder.pt"], "checkpoint {d}/folder.pt is a folder, not a file"),
        (["rollout", "{d}/noise.pt"], "not a ch3d checkpoint: {d}/noise.pt (not a file written by torch.save)"),
        (
            ["rollout", "{d}/objects.pt"],
            "(it holds Python objects other than tensors and plain data, which are not loaded)",
        ),
    ],
)
def test_bad_inputs_give_one_error_line(models, data_file, bad_files, tmp_path, capsys, args, match):
    ckpt, onnx = models
    argv = [a.format(d=bad_files, data=data_file, ckpt=ckpt, onnx=onnx) for a in args]
    argv += ["--out", str(tmp_path / ("out" if args[0] in ("evaluate", "train") else "out.h5"))]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and match.format(d=bad_files) in err[0], err
    assert "weights_only" not in err[0]  # PyTorch's advice to unpickle anything is never passed on
    assert not (tmp_path / "out.h5").exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("frame, value", [(0, np.nan), (3, np.nan), (0, np.inf)])
def test_evaluate_refuses_non_finite_ground_truth(models, data_file, tmp_path, capsys, frame, value):
    """One NaN (or Inf) voxel anywhere, even one the network's every-f-th input never sees (1, 1, 1),
    is refused with one line naming file, sequence and frame; nothing is written in --out."""
    bad = tmp_path / "bad.h5"
    bad.write_bytes(Path(data_file).read_bytes())
    with h5py.File(bad, "r+") as f:
        f["phi"][1, frame, 1, 1, 1] = value
    out = tmp_path / "out"
    argv = ["evaluate", str(models[0]), str(bad), "--split", "all", "--out", str(out), "--threads", "1"]
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    kind = "NaN" if np.isnan(value) else "Inf"
    assert err == [
        f"error: {bad}: sequence 1 frame {frame} holds {kind} at voxel (1, 1, 1); the ground truth must be finite"
    ]
    assert not out.exists()


def test_evaluate_refuses_an_earlier_evaluation_unless_overwrite(models, data_file, tmp_path, capsys):
    out = tmp_path / "eval"
    out.mkdir()
    (out / "evaluation.json").write_text("{}")
    (out / "rmse.png").write_bytes(b"an earlier plot")
    (out / "notes.txt").write_text("the user's")
    argv = [
        "evaluate",
        str(models[1]),
        str(data_file),
        "--out",
        str(out),
        "--sequences",
        "1",
        "--frames",
        "3",
        "--no-plots",
        "--threads",
        "1",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "holds an earlier evaluation (evaluation.json, rmse.png); choose another folder or pass --overwrite" in err
    assert (out / "evaluation.json").read_text() == "{}"
    assert main([*argv, "--overwrite"]) == 0
    assert load(out)["config"]["overwrite"] is True
    assert sorted(p.name for p in out.iterdir()) == ["evaluation.json", "notes.txt"]  # no plot of the earlier run


def test_evaluation_plots_leave_the_matplotlib_backend_alone(models, data_file, tmp_path, capsys, monkeypatch):
    """The plots are drawn on Figure + FigureCanvasAgg: no matplotlib.use (it would switch a notebook's
    backend), no pyplot."""
    import matplotlib

    def refuse(*args, **kwargs):
        raise AssertionError("matplotlib.use called by a library function")

    monkeypatch.setattr(matplotlib, "use", refuse)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)  # any `import matplotlib.pyplot` fails
    out = tmp_path / "eval"
    run_evaluate(capsys, models[1], data_file, "--out", out, "--sequences", "1", "--frames", "4")
    assert load(out)["plots"] == list(PLOTS)
    for name in PLOTS:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rollout_refuses_an_existing_output(models, tmp_path, capsys):
    (tmp_path / "run.h5").write_bytes(b"keep")
    assert main(["rollout", str(models[0]), "--out", str(tmp_path / "run.h5")]) == 2
    assert "already exists" in capsys.readouterr().err and (tmp_path / "run.h5").read_bytes() == b"keep"


# -- provenance ------------------------------------------------------------------------------------------
def test_code_version(monkeypatch):
    version = code_version()
    assert version.startswith(ch_numba.__version__)
    if (ROOT / ".git").exists():
        assert version.startswith(ch_numba.__version__ + "+git.")

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    from ch_numba import provenance

    monkeypatch.setattr(provenance.subprocess, "run", no_git)
    assert code_version.__wrapped__() == ch_numba.__version__


def test_training_checkpoints_record_the_code_version(data_file, tmp_path):
    from surrogate.train import TrainConfig, train

    out = tmp_path / "run"
    train(
        TrainConfig(
            data=data_file,
            out=out,
            epochs=1,
            batch=2,
            min_len=2,
            max_len=3,
            threads=1,
            tensorboard=False,
            progress=False,
        )
    )
    for name in ("last.pt", "best.pt"):
        assert load_checkpoint(out / name)["code_version"] == code_version()


# -- the torch runner (issue 23: a runner, the model card, no trainer or exporter) ------------------------
RUNNER_CHILD = r"""
import sys
from surrogate.runner import TorchRollout, TorchRunner
r = TorchRunner(sys.argv[1], device="cpu", threads=1)
assert TorchRollout is TorchRunner and "exported" not in r.metadata and r.metadata["runner"]["checkpoint"]
print("loaded:", ",".join(m for m in ("surrogate.train", "export.onnx_export", "onnx") if m in sys.modules) or "none")
"""


def test_the_torch_runner_carries_the_model_card_and_imports_neither_trainer_nor_exporter(models):
    """TorchRunner's metadata is the model card (surrogate.card): the exporter's metadata of the same
    checkpoint less its "exported" section (both say which boundaries they step), plus a "runner" section;
    loading it imports neither the trainer nor the exporter."""
    from surrogate.card import build_card
    from surrogate.runner import TorchRunner

    ckpt, onnx = models
    meta = TorchRunner(ckpt, device="cpu", threads=1).metadata
    card = onnx_export.build_metadata(load_checkpoint(ckpt), checkpoint_name=ckpt.name)
    assert card.pop("exported")["checkpoint"] == ckpt.name
    assert {k: v for k, v in meta.items() if k != "runner"} == card
    assert card.pop("boundaries") == "periodic,neumann" == meta["boundaries"]  # the graph's and the runner's
    assert card == build_card(load_checkpoint(ckpt))
    assert meta["runner"]["checkpoint"] == ckpt.name and meta["runner"]["device"] == "cpu"
    result = run_python(RUNNER_CHILD, ckpt, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "loaded: none"


def test_the_torch_runner_refuses_steps_not_a_multiple_of_every(models):
    """The same check as the ONNX runner and ``--steps``/``--every`` (export.runtime.runner_base.check_counts)."""
    from surrogate.runner import TorchRunner

    runner = TorchRunner(models[0], device="cpu", threads=1)
    phi0 = np.full((8, 8, 8), 0.5, np.float32)
    with pytest.raises(ValueError, match=r"^steps 4 is not a multiple of every 3; frames come every 3 steps$"):
        runner.rollout(phi0, 4, every=3)
    assert len(list(runner.rollout(phi0, 6, every=3))) == 2
