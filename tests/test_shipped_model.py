"""The shipped models (models/crnn.onnx, cube-equivariant; models/crnn_paper.onnx, the paper's
unconstrained architecture): they load without torch, its metadata is complete, a short
rollout conserves mass and lowers the free energy, and it reproduces the numbers of the report
(docs/results/*.json, written by docs/reproduce.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_python

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "crnn.onnx"
PAPER = ROOT / "models" / "crnn_paper.onnx"
ABLATION = ROOT / "models" / "crnn_ablation.onnx"
MODEL64 = ROOT / "models" / "crnn64.onnx"  # the paper's scale: ε = 3, 64³ ground truth, 32³ network
RESULTS = ROOT / "docs" / "results"

pytest.importorskip("onnxruntime")


def _reproduce():
    spec = importlib.util.spec_from_file_location("reproduce", ROOT / "docs" / "reproduce.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def runner():
    from export.runtime import Rollout

    return Rollout(MODEL, providers="cpu", threads=1)


@pytest.fixture(scope="module", params=[MODEL, PAPER, MODEL64], ids=["crnn", "crnn_paper", "crnn64"])
def each_runner(request):
    """The conservative shipped models."""
    from export.runtime import Rollout

    return Rollout(request.param, providers="cpu", threads=1)


def test_shipped_files_exist_and_are_small():
    for path in (
        MODEL,
        MODEL.with_suffix(".pt"),
        PAPER,
        PAPER.with_suffix(".pt"),
        ABLATION,
        ABLATION.with_suffix(".pt"),
        MODEL64,
        MODEL64.with_suffix(".pt"),
        ROOT / "models" / "README.md",
    ):
        assert path.is_file(), f"{path} missing"
        assert path.stat().st_size < 2_000_000, f"{path} is too large for git"


@pytest.mark.parametrize(
    "path, conservative, equivariant, params",
    [
        (MODEL, True, True, 7010),
        (PAPER, True, False, 29183),
        (ABLATION, False, False, 28641),
        (MODEL64, True, True, 7010),
    ],
)
def test_metadata_complete(path, conservative, equivariant, params):
    from export.runtime import Rollout, spec

    meta = Rollout(path, providers="cpu", threads=1).metadata
    for key in (*spec.REQUIRED_METADATA, "epsilon", "mobility", "W", "dx", "train_grid", "param_count", "train"):
        assert meta.get(key) is not None, f"{path.name}: metadata {key} missing"
    assert meta["conservative"] is conservative
    assert meta.get("equivariant", False) is equivariant
    assert meta["param_count"] == params
    assert meta["train"]["best_val_loss"] > 0 and meta["train"]["epochs"] >= 1
    assert meta["train"]["code_version"]
    assert meta["time_per_step"] == pytest.approx(meta["steps_per_frame"] * meta["dt"])
    # the scaled configuration (ε = 1.5, 32³ → 16³) or the paper's (ε = 3, 64³ → 32³): the same
    # relative evolution per frame, 0.089 τ with τ = 4ε²/(M f''(½)²) (docs/REPRODUCTION.md §1, §5)
    scale = meta["epsilon"] / 1.5
    assert (meta["epsilon"], meta["train_grid"], meta["downscale"]) in ((1.5, 32, 2), (3.0, 64, 2))
    assert meta["time_per_step"] == pytest.approx(0.8 * scale**2, rel=1e-3)


def test_short_rollout_conserves_mass_and_lowers_free_energy(each_runner):
    import ch_numba

    runner = each_runner
    m = runner.metadata
    p = ch_numba.CHParams.from_metadata(m)  # the physics and scheme of the training data
    res = _reproduce().check_rollout(runner, int(m["train_grid"]), runner.factor, p)
    mass, F = res["mass"], res["free_energy_network"]
    assert np.max(np.abs(mass - mass[0])) / mass[0] < 1e-5  # float32 round-off only
    # on the network grid (the fair view: the upsampled full-grid F rises as blocky interfaces form)
    # the free energy falls at every checked step and by more than 20 % over the 100 steps
    assert np.all(np.diff(F) < 0), f"free energy rose on the network grid: {F}"
    assert F[-1] < 0.8 * F[0], f"free energy not lowered by 20 %: {F}"


def test_matches_the_report(runner):
    """The report's fixed rollout (docs/results/check.json) is reproduced to float32 round-off."""
    import ch_numba

    ref = json.loads((RESULTS / "check.json").read_text())
    m = runner.metadata
    p = ch_numba.CHParams.from_metadata(m)  # the physics and scheme of the training data
    res = _reproduce().check_rollout(runner, int(m["train_grid"]), runner.factor, p)
    np.testing.assert_allclose(res["free_energy"], ref["free_energy"], rtol=1e-4)
    np.testing.assert_allclose(res["free_energy_network"], ref["free_energy_network"], rtol=1e-4)
    np.testing.assert_allclose(res["mass"], ref["mass"], rtol=1e-6)


def _stays_physical(runner, steps: int) -> None:
    spec = importlib.util.spec_from_file_location("probe_stability", ROOT / "docs" / "probe_stability.py")
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    for seed in probe.SEEDS:
        r = probe.probe(runner, seed, steps)
        assert r["first_out_of_range"] is None, r
        assert r["sd"] > 0.3, r  # separated domains, not a mixed (φ ≈ ½) field
        assert -0.2 < r["min"] and r["max"] < 1.2, r


def test_stays_physical_for_2000_steps(each_runner):
    """The report's stability claim, short: 2,000 steps (40x the training sequence) from the three
    probe ICs of docs/probe_stability.py stay inside [-0.5, 1.5] with two separated phases. At the
    paper's scale (a 32³ network grid, 8x the cost per step) 500 steps here, 10⁴ in the slow test."""
    _stays_physical(each_runner, 2000 if int(each_runner.metadata["train_grid"]) <= 32 else 500)


@pytest.mark.slow
def test_paper_scale_stays_physical_for_10000_steps():
    """The paper-scale goal: 10⁴ steps from the three probe ICs (~13 min per IC on one core)."""
    from export.runtime import Rollout

    _stays_physical(Rollout(MODEL64, providers="cpu", threads=1), 10_000)


def test_change_up_to_translation_finds_the_periodic_shift():
    """The report's stationarity measure: a periodically shifted field is 'unchanged up to a
    translation' with the shift recovered; a different field is not."""
    change = _reproduce().change_up_to_translation
    a = np.random.default_rng(0).random((16, 12, 10))
    assert change(np.roll(a, (3, -2, 5), axis=(0, 1, 2)), a) == (pytest.approx(0.0, abs=1e-12), [3, -2, 5])
    other = np.random.default_rng(1).random((16, 12, 10))
    assert change(other, a)[0] > 0.3  # two independent U(0,1) fields: rms ≈ 1/√6 ≈ 0.41


def test_runs_without_torch(tmp_path):
    """The shipped model rolls out in a process where torch cannot be imported."""
    code = (
        "import numpy as np\n"
        "from export.runtime import Rollout\n"
        f"r = Rollout({str(MODEL)!r}, providers='cpu', threads=1)\n"
        "x = np.full((8, 8, 8), 0.5, np.float32); x[:4] = 0.6\n"
        "f = list(r.rollout(x, 5))[-1]\n"
        "assert abs(f.mean() - x.mean()) < 1e-6, f.mean()\n"
        "print('ok')\n"
    )
    out = run_python(code, no_torch=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


@pytest.mark.slow
def test_heldout_numbers_match_the_report(tmp_path):
    """Rerun the report's held-out experiment and compare its headline numbers (minutes)."""
    mod = _reproduce()
    ref = json.loads((RESULTS / "heldout.json").read_text())
    mod.RESULTS = tmp_path / "results"
    mod.FIGURES = tmp_path / "figures"
    mod.main(["--only", "heldout", "--work", str(tmp_path / "work")])
    new = json.loads((tmp_path / "results" / "heldout.json").read_text())
    a, b = new["model"]["ensemble"]["scalars"], ref["model"]["ensemble"]["scalars"]
    for key in ("rmse_full_mean", "rmse_full_final", "free_energy_rel_error_max"):
        np.testing.assert_allclose(a[key]["mean"], b[key]["mean"], rtol=1e-3, atol=1e-6)


def test_explicit_reference_of_a_spectral_trained_model(tmp_path):
    """crnn64 was last trained on spectral data (its metadata: SBDF2, 4 steps of dt 0.8 per frame);
    the report's explicit reference (cost, held-out truth) is then the explicit scheme over the same
    3.2 time units at the largest dt ≤ 0.7 of the linear bound 2/(M(ε²k⁴ + 2Wk²)), k² = 12/dx²; the
    spectral truth is the training data's own scheme. A model trained on explicit data keeps its data's step."""
    mod = _reproduce()
    ctx = mod.Context(MODEL64, None, tmp_path, spectral=("long",))
    p = mod.params_of(ctx.meta)
    assert p.scheme == "spectral" and (p.dt, int(ctx.meta["steps_per_frame"])) == (0.8, 4)
    q, n = ctx.explicit()
    bound = 2.0 / (p.mobility * (p.epsilon**2 * 144.0 + 2.0 * p.W * 12.0))  # dx = 1: k⁴ = 144, k² = 12
    assert q.scheme == "explicit" and (q.epsilon, q.mobility, q.W, q.dx) == (p.epsilon, p.mobility, p.W, p.dx)
    assert n * q.dt == pytest.approx(3.2, rel=1e-12)
    assert q.dt <= 0.7 * bound < 3.2 / (n - 1)  # the fewest steps within 0.7 of the bound
    assert n == 3018
    assert ctx.truth("heldout") == (q, n) and ctx.truth("long") == (p, 4)
    scaled = mod.Context(MODEL, None, tmp_path)  # explicit data: its own dt and steps
    ps = mod.params_of(scaled.meta)
    assert scaled.explicit() == (ps, int(scaled.meta["steps_per_frame"])) and ps.scheme == "explicit"


def test_spectral_truth_and_coarsening_follow_independent_runs(tmp_path):
    """``--spectral-truth``: SBDF2 covering exactly one frame of the model's data in steps of at most
    the matched-accuracy dt; the coarsening experiment's curves equal an independent run of the
    solver (ch_numba.Stepper) and of the network, reduced by the metrics' own functions."""
    import ch_numba
    from ch_numba import initial
    from export.runtime import Rollout
    from surrogate import metrics

    mod = _reproduce()
    sizes = mod.SIZES.replace(coarsening=mod.table.Coarsening(sequences=1, frames=8, fit_from=2))
    ctx = mod.Context(MODEL, None, tmp_path, spectral=("coarsening",), figures=tmp_path, sizes=sizes)
    p = mod.params_of(ctx.meta)
    frame = int(ctx.meta["steps_per_frame"]) * p.dt
    q, n = ctx.truth("coarsening")
    assert q.scheme == "spectral" and q.order == 2 and q.symbol == "stencil"
    assert (q.epsilon, q.mobility, q.W, q.dx) == (p.epsilon, p.mobility, p.W, p.dx)
    assert n * q.dt == pytest.approx(frame, rel=1e-12)
    assert q.dt <= mod.SPECTRAL_DT_EPS3 * (p.epsilon / 3) ** 2 + 1e-12 and (n - 1) * q.dt < frame
    assert ctx.truth("heldout") == (p, int(ctx.meta["steps_per_frame"]))  # not listed: the data's scheme
    assert ctx.truth_file("coarsening").name == "coarsening_spectral.h5"
    assert ctx.truth_file("heldout").name == "heldout.h5"
    assert "--scheme" not in ctx.truth_args("heldout") and "spectral" in ctx.truth_args("coarsening")

    res = mod.exp_coarsening(ctx)
    f, size = ctx.factor, 2 * ctx.grid
    ic = initial.perlin((size,) * 3, frequency=3, seed=5000, mean=0.5, amplitude=0.1).astype(np.float32)
    stepper = ch_numba.Stepper(ic.shape, q, "cpu", ic.dtype)
    stepper.set(ic)
    truth = [ic[::f, ::f, ::f]]
    for _ in range(7):
        stepper.advance(n)
        truth.append(stepper.get()[::f, ::f, ::f])
    truth = np.stack(truth)
    pred = np.stack([truth[0], *Rollout(MODEL, providers="cpu", threads=1).rollout(truth[0], 7)])
    net = metrics.network_params(p, f)
    curves = res["curves"]
    np.testing.assert_allclose(curves["F_net_true"]["mean"], metrics.free_energy_series(truth, net), rtol=1e-12)
    np.testing.assert_allclose(curves["F_net_pred"]["mean"], metrics.free_energy_series(pred, net), rtol=1e-6)
    np.testing.assert_allclose(curves["L_true"]["mean"], metrics.characteristic_length(truth, dx=net.dx), rtol=1e-12)
    np.testing.assert_allclose(curves["L_pred"]["mean"], metrics.characteristic_length(pred, dx=net.dx), rtol=1e-6)
    err = metrics.relative_error(metrics.free_energy_series(pred, net), metrics.free_energy_series(truth, net))
    assert res["F_net_rel_error_max"]["worst"] == pytest.approx(err.max(), rel=1e-6)
    assert (tmp_path / "coarsening.png").stat().st_size > 10_000


def test_long_rollout_follows_independent_runs(tmp_path):
    """The long experiment, shortened (40 network steps, checked every 10): its F on both grids,
    mass drift and stationarity numbers equal an independent run of the network and of the solver
    (ch_numba.Stepper, the spectral truth), reduced with numpy; the solver run is cached."""
    import ch_numba
    from ch_numba import initial
    from export.runtime import Rollout
    from surrogate import metrics

    mod = _reproduce()
    sizes = mod.SIZES.replace(long=mod.table.Long(steps=40, every=10, tail=10_000))
    ctx = mod.Context(MODEL, None, tmp_path, spectral=("long",), figures=tmp_path, sizes=sizes)
    res = mod.exp_long(ctx)
    f, p = ctx.factor, mod.params_of(ctx.meta)
    q, n = ctx.truth("long")
    ic = initial.perlin((ctx.grid,) * 3, frequency=3, seed=2024, mean=0.5, amplitude=0.1).astype(np.float32)
    stepper = ch_numba.Stepper(ic.shape, q, "cpu", ic.dtype)
    stepper.set(ic)
    truth = [ic]
    for _ in range(4):
        stepper.advance(10 * n)
        truth.append(stepper.get())
    truth = np.stack(truth)
    pred = np.stack(
        [ic[::f, ::f, ::f], *Rollout(MODEL, providers="cpu", threads=1).rollout(ic[::f, ::f, ::f], 40, every=10)]
    )
    net = metrics.network_params(p, f)
    assert net.dx == f * p.dx and (net.epsilon, net.W) == (p.epsilon, p.W)

    def F(frames):  # F/V = mean(W φ²(1−φ)² + ε²/2 |∇⁺φ|²), forward differences of spacing f·dx, periodic
        x = frames.astype(np.float64)
        g2 = sum((np.roll(x, -1, axis=a) - x) ** 2 for a in (1, 2, 3)) / net.dx**2
        return np.mean(p.W * x**2 * (1 - x) ** 2 + 0.5 * p.epsilon**2 * g2, axis=(1, 2, 3))

    F_net_pred, F_net_true = F(pred), F(truth[:, ::f, ::f, ::f])
    assert res["F_net_network_final"] == pytest.approx(F_net_pred[-1], rel=1e-5)
    assert res["F_net_solver_final"] == pytest.approx(F_net_true[-1], rel=1e-9)
    err = np.abs(F_net_pred - F_net_true) / F_net_true
    assert res["F_net_rel_error_max"] == pytest.approx(err.max(), rel=1e-4, abs=1e-7)
    assert res["F_net_rel_error_final"] == pytest.approx(err[-1], rel=1e-4, abs=1e-7)
    m = pred.reshape(len(pred), -1).astype(np.float64).mean(axis=1)
    assert res["mass_drift_network"] == pytest.approx(np.max(np.abs(m - m[0])) / m[0], rel=1e-3, abs=1e-9)
    assert res["tail_steps"] == 20  # half the run when LONG_TAIL exceeds it
    last, start = pred[-1].astype(np.float64), pred[-3].astype(np.float64)
    assert res["network"]["rms_change_last_10000_steps"] == pytest.approx(
        np.sqrt(np.mean((last - start) ** 2)), rel=1e-5
    )
    assert res["first_step_out_of_range"] is None
    assert ctx.truth_file("long", "long_solver", ".npy").exists()  # cached for the next run
