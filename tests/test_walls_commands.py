"""Every command honours the boundary (issue 27 items 4, 5, 7): a data set with no-flux walls (a film, walls on
z) is trained on, evaluated, exported and rolled out, and each number is checked against an independent
numpy reference (block means along the wall axis, the free energy with no gradient across a wall, the
mirror-doubled periodic box, Adam's first step), never only a shape.

One tiny film (8x8x6 solver grid, 4x4x3 network grid) and a tiny model (hidden 4) for the whole module.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")

P, N = "periodic", "neumann"
FILM = (P, P, N)
PHYS = ["--epsilon", "1.5", "--dt", "4e-3", "--steps-per-frame", "20"]


def _block_means(frames, f: int, walls) -> np.ndarray:
    """Independent downsampling: every f-th voxel on periodic axes, means of f-blocks on wall axes (float64)."""
    a = np.asarray(frames, dtype=np.float64)
    for axis, wall in zip((-3, -2, -1), walls):
        n = a.shape[axis]
        if wall:
            a = np.stack([np.take(a, range(j * f, (j + 1) * f), axis).mean(axis) for j in range(n // f)], axis)
        else:
            a = np.take(a, range(0, n, f), axis)
    return a


def _free_energy(phi, eps: float, W: float, dx: float, walls) -> float:
    """F/V = mean(W φ²(1−φ)² + ε²/2 Σ_a (forward difference / dx)²): periodic wrap, or 0 across a wall."""
    phi = np.asarray(phi, dtype=np.float64)
    grad2 = np.zeros_like(phi)
    for axis, wall in enumerate(walls):
        d = np.roll(phi, -1, axis) - phi
        if wall:  # the mirror ghost beyond the last voxel equals it
            idx = [slice(None)] * 3
            idx[axis] = -1
            d[tuple(idx)] = 0.0
        grad2 += (d / dx) ** 2
    return float(np.mean(W * phi**2 * (1 - phi) ** 2 + 0.5 * eps**2 * grad2))


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    """Data set with walls on z (generate --boundary), a random periodic CRNN checkpoint (the source of
    --init-from) and the run trained from it on the film for one epoch."""
    import torch

    from ch_numba.cli import main as ch_main
    from surrogate import CRNN, save_checkpoint
    from surrogate.cli import main as surrogate_main

    d = tmp_path_factory.mktemp("walls")
    data = d / "film.h5"
    args = ["generate", str(data), "--sequences", "3", "--frames", "5", "--size", "8,8,6", "--boundary"]
    args += ["periodic,periodic,neumann", "--backend", "numpy", "--val-fraction", "0.34", "--frequencies", "2"]
    assert ch_main(args + PHYS + ["--seed", "3"]) == 0
    torch.manual_seed(0)
    source = save_checkpoint(CRNN(hidden=4, equivariant=True), d / "periodic.pt")  # no data set: periodic
    run = d / "run"
    train = ["train", str(data), "--out", str(run), "--epochs", "1", "--hidden", "4", "--equivariant", "--batch", "2"]
    train += ["--init-from", str(source), "--threads", "1", "--no-tensorboard", "--seed", "1"]
    assert surrogate_main(train) == 0
    return {"dir": d, "data": data, "source": source, "ckpt": run / "best.pt"}


@pytest.fixture(scope="module")
def film_onnx(exported_model):
    """A graph with the walls input: the shared random CRNN exported once per session (conftest)."""
    return exported_model[1]


@pytest.fixture(scope="module")
def old_graph(exported_model, tmp_path_factory):
    """The same step as a graph exported before walls: ``walls`` no graph input, only a constant (all False)."""
    onnx = pytest.importorskip("onnx")

    m = onnx.load(exported_model[1])
    kept = [i for i in m.graph.input if i.name != "walls"]
    assert len(kept) == len(m.graph.input) - 1
    del m.graph.input[:]
    m.graph.input.extend(kept)
    out = tmp_path_factory.mktemp("old") / "periodic_only.onnx"
    onnx.save(m, out)
    return out


def test_training_on_walls_records_the_boundary_and_fine_tunes_a_periodic_checkpoint(film):
    """The checkpoint and its card record the training data's boundary; --init-from a periodic checkpoint
    starts from its weights (one Adam step away: |Δw| ≤ lr); the validation loss is the film's: the free run
    with mirror padding against the block-mean-downsampled truth, recomputed here."""
    import torch

    import ch_numba
    from surrogate import load_checkpoint
    from surrogate.card import build_card

    ckpt = load_checkpoint(film["ckpt"])
    assert ckpt["boundary"] == "periodic,periodic,neumann" == ckpt["dataset"]["boundary"]
    assert build_card(ckpt)["train"]["boundary"] == "periodic,periodic,neumann"
    assert "boundary" not in build_card(ckpt)  # not beside the physics: a runner's box is its own boundary=
    src = load_checkpoint(film["source"])
    steps = 1  # 2 training sequences, batch 2: one optimiser step in the epoch
    for k, w in ckpt["model_state"].items():
        dw = (w.double() - src["model_state"][k].double()).abs().max().item()
        assert dw <= steps * 1e-4 * (1 + 1e-3), k  # Adam moves each weight by at most lr per step
    moved = max((w - src["model_state"][k]).abs().max().item() for k, w in ckpt["model_state"].items())
    assert 0.5e-4 < moved

    model = ckpt["model"].double()
    with ch_numba.open_dataset(film["data"]) as ds:
        (val,) = ds.indices("val")
        truth = torch.from_numpy(_block_means(ds.phi[int(val)], 2, (False, False, True)))[:, None]
    losses = {}
    for boundary in (FILM, (P, P, P)):
        with torch.no_grad():
            pred = model.set_boundary(boundary).rollout(truth[:1], truth.shape[0] - 1)[0]
            losses[boundary] = float((pred - truth[1:]).pow(2).mean())
    assert ckpt["val_loss"] == pytest.approx(losses[FILM], rel=1e-4)
    assert abs(losses[(P, P, P)] - losses[FILM]) > 1e-3 * losses[FILM]  # the walls made a difference


def test_augmentation_never_permutes_a_wall_axis_with_a_periodic_one(film):
    """Drawn symmetries keep each axis's boundary and size; a sample is the independent transform of the
    block-mean-downsampled frames; the plan is a pure function of (seed, epoch)."""
    import ch_numba
    from surrogate.data import SequenceDataset, SubSequence, SubSequenceSampler
    from surrogate.symmetry import SYMMETRIES, shape_preserving_symmetries

    ds = SequenceDataset(film["data"], "train", downscale=2)
    assert ds.boundary == FILM and ds.grid == (4, 4, 3)
    perms = list(itertools.permutations(range(3)))
    for shape, boundary in [((4, 4, 3), FILM), ((4, 4, 4), FILM), ((4, 4, 4), (N, P, N)), ((4, 4, 4), (P, P, P))]:
        want = [
            8 * i + m
            for i, p in enumerate(perms)
            for m in range(8)
            if all(shape[p[j]] == shape[j] and boundary[p[j]] == boundary[j] for j in range(3))
        ]
        assert list(shape_preserving_symmetries(shape, boundary)) == want
    assert len(shape_preserving_symmetries((4, 4, 4), FILM)) == 16 and len(ds.symmetries) == 16
    sampler = SubSequenceSampler(ds.indices, ds.n_frames, 1, 2, 3, seed=5, symmetries=ds.symmetries)
    drawn = [key.symmetry for e in range(40) for batch in sampler.plan(e) for key in batch]
    assert {SYMMETRIES[s][0] for s in drawn} == {(0, 1, 2), (1, 0, 2)}  # both kept perms drawn, no other
    assert sampler.plan(7) == SubSequenceSampler(
        ds.indices, ds.n_frames, 1, 2, 3, seed=5, symmetries=ds.symmetries
    ).plan(7)
    s = next(s for s in drawn if SYMMETRIES[s] == ((1, 0, 2), 5))  # x <-> y, flip x and z
    key = SubSequence(int(ds.indices[0]), 1, 3, s, True)
    with ch_numba.open_dataset(film["data"]) as f:
        raw = f.phi[int(ds.indices[0]), 1:4]
    want = 1 - np.flip(np.transpose(_block_means(raw, 2, (False, False, True)), (0, 2, 1, 3)), (1, 3))
    np.testing.assert_allclose(ds.read(key), want, rtol=0, atol=1e-7)
    ds.close()


def test_evaluate_on_walls_uses_the_wall_physics(film, tmp_path):
    """evaluate runs the model on the data's walls: mass drift at round-off, the network-grid truth the block
    means along z, its F the wall physics (independent numpy), and F at frame 0 of the prediction equal."""
    import ch_numba
    from surrogate.evaluate import EvalConfig, evaluate

    res = evaluate(EvalConfig(model=film["ckpt"], data=film["data"], out=tmp_path / "ev", plots=False, threads=1))
    assert res["data"]["boundary"] == res["model"]["boundary"] == res["model"]["trained_boundary"] == ",".join(FILM)
    (rec,) = res["sequences"]
    with ch_numba.open_dataset(film["data"]) as ds:
        truth = ds.phi[rec["index"]]
        p = ds.params
    net = _block_means(truth, 2, (False, False, True))
    F_wall = [_free_energy(x, p.epsilon, p.W, 2 * p.dx, (False, False, True)) for x in net]
    F_periodic = [_free_energy(x, p.epsilon, p.W, 2 * p.dx, (False, False, False)) for x in net]
    np.testing.assert_allclose(rec["free_energy_net_true"], F_wall, rtol=1e-6)
    assert np.min(np.abs(np.array(F_periodic) / F_wall - 1)) > 1e-3  # the wall term is what made the difference
    assert rec["free_energy_net_pred"][0] == pytest.approx(F_wall[0], rel=1e-6)
    F_full = [_free_energy(x, p.epsilon, p.W, p.dx, (False, False, True)) for x in truth]
    np.testing.assert_allclose(rec["free_energy_true"], F_full, rtol=1e-5)  # the solver's stored F, same physics
    assert rec["mass_drift_pred_max"] < 1e-6 and max(rec["mass_drift_pred"]) < 1e-6
    assert rec["phi_mean_pred"][0] == pytest.approx(float(np.mean(net[0])), abs=1e-7)


def test_export_rollout_on_the_ic_files_walls(film, film_onnx, tmp_path, capsys):
    """export.rollout --ic h5 takes the data set's boundary; the file records it (format_version 2, info says
    so), its mass is conserved, frame 0 is the block-mean IC and the free energy is the wall physics's."""
    import ch_numba
    from ch_numba.cli import main as ch_main
    from export.rollout import main

    out = tmp_path / "roll.h5"
    args = [str(film_onnx), "--ic", "h5", "--ic-file", str(film["data"]), "--steps", "4", "--every", "2"]
    assert main(args + ["--out", str(out), "--threads", "1"]) == 0
    with ch_numba.open_dataset(out) as ds, ch_numba.open_dataset(film["data"]) as src:
        assert ds.params.boundary == FILM and int(ds.attrs["format_version"]) == 2
        frames, p = ds.phi[0], ds.params
        np.testing.assert_allclose(frames[0], _block_means(src.phi[0, 0], 2, (False, False, True)), atol=1e-7)
        assert np.max(np.abs(ds.phi_mean[0] - ds.phi_mean[0, 0])) < 1e-6
        np.testing.assert_allclose(
            ds.free_energy[0], [_free_energy(x, p.epsilon, p.W, p.dx, (0, 0, 1)) for x in frames], rtol=1e-5
        )
    capsys.readouterr()
    assert ch_main(["info", str(out)]) == 0
    assert "boundary periodic,periodic,neumann" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, says",
    [
        (["--boundary", "periodic"], "contradicts the initial condition's data set"),
        (["--boundary", "periodic,wall,neumann"], "unknown boundary 'wall'"),
        (["--boundary", "periodic,neumann"], "boundary needs one entry per axis (x, y, z), got 2"),
        (["--model-is-old"], "cannot run a box with no-flux walls"),
    ],
)
def test_bad_boundaries_are_one_line_exit_2(film, film_onnx, old_graph, tmp_path, capsys, extra, says):
    """Unknown name, wrong length, a value contradicting the IC file, a graph exported before walls."""
    from export.rollout import main

    model = str(film_onnx)
    if extra == ["--model-is-old"]:
        model, extra = str(old_graph), []
    out = tmp_path / "x.h5"
    capsys.readouterr()
    try:  # argparse's refusals exit (SystemExit 2), the command's return 2
        code = main([model, "--ic", "h5", "--ic-file", str(film["data"]), "--steps", "2", "--out", str(out)] + extra)
    except SystemExit as e:
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1 and "Traceback" not in err and not out.exists()


def test_torch_runner_and_rollout_agree_on_a_wall_box(film, exported_model):
    """The PyTorch runner and the ONNX runner of one checkpoint step the same wall box alike (≤ 1e-5 over 6
    steps), with mass kept; for the film's cube-equivariant model the wall step is the restriction of the
    periodic step on the box doubled with its mirror image along z (an independent reference of the runner's
    padding)."""
    from export.runtime import Rollout
    from surrogate.runner import TorchRunner

    rng = np.random.default_rng(0)
    phi0 = (0.5 + 0.2 * rng.standard_normal((4, 4, 3))).astype(np.float32)
    ckpt, onnx = exported_model
    torch_runner = TorchRunner(ckpt, device="cpu", threads=1, boundary="periodic,periodic,neumann")
    onnx_runner = Rollout(onnx, providers="cpu", threads=1, boundary=FILM)
    assert torch_runner.boundary == onnx_runner.boundary == FILM and onnx_runner.supports_walls
    a = np.stack(list(torch_runner.rollout(phi0, 6)))
    b = np.stack(list(onnx_runner.rollout(phi0, 6)))
    assert np.abs(a - b).max() <= 1e-5
    assert np.abs(a.mean(axis=(1, 2, 3)) - phi0.mean(dtype=np.float64)).max() < 1e-6
    assert np.abs(TorchRunner(ckpt, device="cpu", threads=1).step(phi0) - a[0]).max() > 1e-4  # the walls matter
    walls = np.stack(list(TorchRunner(film["ckpt"], device="cpu", threads=1, boundary=FILM).rollout(phi0, 6)))
    doubled = np.concatenate([phi0, phi0[:, :, ::-1]], axis=2)
    periodic = np.stack(list(TorchRunner(film["ckpt"], device="cpu", threads=1).rollout(doubled, 6)))
    np.testing.assert_allclose(periodic[..., :3], walls, rtol=0, atol=1e-5)
    # the runners' downscale keeps the walls in place: block means along z
    full = rng.random((8, 8, 6)).astype(np.float32)
    for r in (torch_runner, onnx_runner):
        np.testing.assert_allclose(r.downscale(full), _block_means(full, 2, (False, False, True)), atol=1e-7)


def test_evaluate_refuses_a_graph_without_walls_in_one_line(film, old_graph, tmp_path, capsys):
    """A graph exported before the walls input (as the shipped ONNX files until re-exported): evaluating it on
    the film is refused, exit 2, one line, nothing written; the same graph still runs a periodic box."""
    from export.runtime import Rollout
    from surrogate.cli import main

    old = old_graph
    assert not Rollout(old, providers="cpu", threads=1).supports_walls
    out = tmp_path / "ev"
    capsys.readouterr()
    assert main(["evaluate", str(old), str(film["data"]), "--out", str(out), "--no-plots", "--threads", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot run a box with no-flux walls (boundary periodic,periodic,neumann)" in err
    assert len(err.splitlines()) == 1 and not (out / "evaluation.json").exists()


def test_surrogate_rollout_makes_the_film_ic_for_its_walls(film, tmp_path):
    """``surrogate rollout --size X,Y,Z --boundary``: the Perlin IC made for the walls (not periodic along z),
    block-mean downscaled at frame 0, the file's box and F the film's, mass kept; the walls change the run."""
    import ch_numba
    from ch_numba import initial
    from surrogate.cli import main

    base = ["rollout", str(film["ckpt"]), "--ic", "perlin", "--size", "8,8,6", "--steps", "4", "--seed", "4"]
    base += ["--device", "cpu", "--threads", "1", "--frequency", "2"]
    runs = {}
    for name, boundary in (("film", "periodic,periodic,neumann"), ("box", "periodic")):
        runs[name] = tmp_path / f"{name}.h5"
        assert main(base + ["--boundary", boundary, "--out", str(runs[name])]) == 0
    ic = initial.perlin((8, 8, 6), 2, 4, boundary=FILM)
    assert not np.allclose(ic, initial.perlin((8, 8, 6), 2, 4))  # the IC knows the walls
    with ch_numba.open_dataset(runs["film"]) as ds, ch_numba.open_dataset(runs["box"]) as box:
        assert ds.params.boundary == FILM and int(ds.attrs["format_version"]) == 2 and box.params.periodic
        p = ds.params
        np.testing.assert_allclose(ds.phi[0, 0], _block_means(ic, 2, (False, False, True)), atol=1e-6)
        F = [_free_energy(x, p.epsilon, p.W, p.dx, (False, False, True)) for x in ds.phi[0]]
        np.testing.assert_allclose(ds.free_energy[0], F, rtol=1e-5)
        assert np.max(np.abs(ds.phi_mean[0] - ds.phi_mean[0, 0])) < 1e-6
        assert np.abs(ds.phi[0, -1] - box.phi[0, -1]).max() > 1e-3


def test_evaluation_metrics_on_walls_against_analytic_values():
    """δ's gradient uses the mirror ghost at a wall (a ramp: |∇φ|² = 1 inside, 1/4 at the two wall cells);
    L of a cosine mode of the box with walls is its wavelength (the mirror-doubled box's pure mode); the
    stationarity undoes translations along periodic axes only."""
    from surrogate import metrics

    n = 8
    z = np.arange(n, dtype=np.float64)
    ramp = np.broadcast_to(z, (4, 4, n)).copy()
    den = 4 * 4 * ((n - 2) * 1.0 + 2 * 0.25)  # per (x, y) line: central differences, mirror ghosts at z walls
    delta = metrics.interface_displacement(ramp + 0.1, ramp, boundary=FILM)
    assert delta == pytest.approx(np.sqrt(4 * 4 * n * 0.01 / den), rel=1e-12)
    m = 3
    mode = 0.5 + 0.1 * np.broadcast_to(np.cos(np.pi * m * (z + 0.5) / n), (4, 4, n))
    assert metrics.characteristic_length(mode, boundary=FILM) == pytest.approx(2 * n / m, rel=1e-12)
    assert abs(metrics.characteristic_length(mode) - 2 * n / m) > 0.1  # the periodic FFT of a half cosine
    rng = np.random.default_rng(1)
    old = rng.random((6, 4, n))
    moved, d = metrics.change_up_to_translation(np.roll(old, 2, axis=0), old, boundary=FILM)
    assert d == [2, 0, 0] and moved == pytest.approx(0, abs=1e-12)
    moved, d = metrics.change_up_to_translation(np.roll(old, 1, axis=2), old, boundary=FILM)
    assert d[2] == 0 and moved > 0.1  # no translation through a wall
    st = metrics.stationarity(np.stack([old, old, np.roll(old, 1, axis=0)]), 1, boundary=FILM)
    assert st["translation"][2] == 0 and np.isnan(st["layer_shift"][2]) and np.isfinite(st["layer_shift"][0])
