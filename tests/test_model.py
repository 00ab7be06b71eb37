"""CRNN / ConvGRU3D cell / checkpoints: counts, divergence layer, invariants, translations, teacher forcing.

Named tolerances: EXACT for identical op sequences, ROUNDOFF64 for float64 results that differ
only in summation order.
"""

import itertools
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from surrogate import CRNN, ConvGRU3DCell, load_checkpoint, save_checkpoint
from surrogate.model import FluxDivergence

EXACT = dict(rtol=0.0, atol=0.0)
ROUNDOFF64 = dict(rtol=1e-12, atol=1e-12)
MASS_RTOL = 1e-12


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_model(conservative=True, seed=0, dtype=torch.float64, scale=1.0, **kw):
    torch.manual_seed(seed)
    model = CRNN(conservative=conservative, **kw).to(dtype)
    if scale != 1.0:
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(scale)
    return model.eval()


def rand_phi(shape=(2, 1, 6, 7, 8), seed=1, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g, dtype=dtype)


# -- architecture --------------------------------------------------------------------------------
def test_parameter_counts_match_the_paper():
    assert CRNN(conservative=True).param_count() == 29_183
    assert CRNN(conservative=False).param_count() == 28_641
    assert sum(p.numel() for p in CRNN().parameters()) == 29_183  # nothing frozen, no hidden params


def test_cell_parameter_counts_follow_the_derivation():
    # i2h: 27·C·30 + 30 + 30·30 + 30; h2h: 27·10·20 + 20 + 20·20 + 20; h2c: 27·10·10 + 10 + 10·10 + 10
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(ConvGRU3DCell(1)) == (810 + 30 + 900 + 30) + (5400 + 20 + 400 + 20) + (2700 + 10 + 100 + 10)
    assert count(ConvGRU3DCell(10)) == 17_720
    assert count(CRNN().head) == 110 + 110 + 27 * 10 * 3 + 3


def test_config_rebuilds_the_architecture():
    model = CRNN(conservative=False, hidden=6, kernel=5)
    assert model.config == {"conservative": False, "hidden": 6, "kernel": 5, "equivariant": False}
    assert CRNN(**model.config).param_count() == model.param_count()


def test_cell_gates_against_functional_reference():
    """The cell equals the GRU equations written with F.pad(circular) + F.conv3d from its own weights."""
    torch.manual_seed(3)
    cell = ConvGRU3DCell(2, hidden=4, kernel=3).double()
    x = torch.randn(2, 2, 5, 6, 7, dtype=torch.float64)
    h = torch.randn(2, 4, 5, 6, 7, dtype=torch.float64)

    def block(seq, v):
        conv_k, _, conv_1 = seq
        v = F.conv3d(F.pad(v, (1, 1, 1, 1, 1, 1), mode="circular"), conv_k.weight, conv_k.bias)
        return F.conv3d(torch.tanh(v), conv_1.weight, conv_1.bias)

    gx, gh = block(cell.i2h, x), block(cell.h2h, h)
    r = torch.sigmoid(gx[:, 0:4] + gh[:, 0:4])
    z = torch.sigmoid(gx[:, 4:8] + gh[:, 4:8])
    c = torch.tanh(gx[:, 8:12] + block(cell.h2candidate, r * h))
    torch.testing.assert_close(cell(x, h), (1 - z) * c + z * h, **ROUNDOFF64)


# -- the divergence layer and mass ------------------------------------------------------------------
def numpy_divergence(J):
    """Σ_a J_a[i − e_a] − J_a[i + e_a], periodic, by explicit index loops. J: (3, X, Y, Z)."""
    _, nx, ny, nz = J.shape
    out = np.zeros((nx, ny, nz))
    for i, j, k in itertools.product(range(nx), range(ny), range(nz)):
        out[i, j, k] = (
            J[0, (i - 1) % nx, j, k]
            - J[0, (i + 1) % nx, j, k]
            + J[1, i, (j - 1) % ny, k]
            - J[1, i, (j + 1) % ny, k]
            + J[2, i, j, (k - 1) % nz]
            - J[2, i, j, (k + 1) % nz]
        )
    return out


def test_divergence_layer_equals_numpy_central_differences():
    rng = np.random.default_rng(4)
    J = rng.standard_normal((2, 3, 5, 6, 7))
    div = FluxDivergence()(torch.from_numpy(J))
    assert div.shape == (2, 1, 5, 6, 7)
    for n in range(2):
        np.testing.assert_allclose(div[n, 0].numpy(), numpy_divergence(J[n]), rtol=0, atol=1e-14)
    assert list(FluxDivergence().parameters()) == [] and list(FluxDivergence().buffers()) == []


def test_conservative_step_is_phi_plus_divergence_of_mean_free_flux():
    model = make_model(True)
    phi = rand_phi()
    with torch.no_grad():
        h1, h2 = model.init_hidden(phi)
        phi_next, h1n, h2n = model.step(phi, h1, h2)
        J = model.head(model.cell2(model.cell1(phi, h1), h2)).numpy()
    J = J - J.mean(axis=(2, 3, 4), keepdims=True)
    for n in range(phi.shape[0]):
        want = phi[n, 0].numpy() + numpy_divergence(J[n])
        np.testing.assert_allclose(phi_next[n, 0].numpy(), want, rtol=0, atol=1e-13)


def test_nonconservative_step_is_sigmoid_of_head():
    model = make_model(False)
    phi = rand_phi()
    with torch.no_grad():
        phi_next, h1, h2 = model(phi)
        y = model.head(h2).numpy()
    np.testing.assert_allclose(phi_next.numpy(), 1.0 / (1.0 + np.exp(-y)), rtol=1e-14, atol=1e-15)


def test_mass_conserved_to_roundoff_over_long_rollout_and_not_without_divergence():
    phi0 = rand_phi((2, 1, 8, 8, 8), seed=5)
    mean0 = phi0.mean(dim=(2, 3, 4))
    with torch.no_grad():
        cons = make_model(True, scale=3.0).rollout(phi0, 200)
        free = make_model(False, scale=3.0).rollout(phi0, 200)
    means = cons.mean(dim=(3, 4, 5))  # (N, T, 1)
    drift = ((means - mean0[:, None]).abs() / mean0[:, None]).max().item()
    assert drift < MASS_RTOL
    assert (cons[:, -1] - phi0).abs().max() > 0.05  # the field did evolve
    drift_free = ((free.mean(dim=(3, 4, 5)) - mean0[:, None]).abs() / mean0[:, None]).max().item()
    assert drift_free > 1e-3


# -- hidden states, rollout, teacher forcing --------------------------------------------------------
def test_hidden_states_start_at_zero():
    model = make_model(True)
    phi = rand_phi()
    h1, h2 = model.init_hidden(phi)
    assert h1.shape == (2, 10, 6, 7, 8) and h2.shape == (2, 10, 6, 7, 8) and h1.dtype == phi.dtype
    assert not h1.any() and not h2.any()
    with torch.no_grad():
        zeros = torch.zeros(2, 10, 6, 7, 8, dtype=phi.dtype)
        want, _, _ = model.step(phi, zeros, zeros)
        torch.testing.assert_close(model(phi)[0], want, **EXACT)
        torch.testing.assert_close(model.rollout(phi, 1)[:, 0], want, **EXACT)
        cell = model.cell1
        torch.testing.assert_close(cell(phi), cell(phi, torch.zeros(2, 10, 6, 7, 8, dtype=phi.dtype)), **EXACT)


def test_rollout_equals_manual_steps():
    model = make_model(True)
    phi0 = rand_phi()
    with torch.no_grad():
        out = model.rollout(phi0, 4)
        h1, h2 = model.init_hidden(phi0)
        phi = phi0
        for k in range(4):
            phi, h1, h2 = model.step(phi, h1, h2)
            torch.testing.assert_close(out[:, k], phi, **EXACT)
    assert out.shape == (2, 4, 1, 6, 7, 8)
    assert model.rollout(phi0, 0).shape == (2, 0, 1, 6, 7, 8)


def test_teacher_equal_to_own_outputs_changes_nothing():
    model = make_model(True)
    phi0 = rand_phi()
    with torch.no_grad():
        free = model.rollout(phi0, 6)
        forced = model.rollout(phi0, 6, teacher=free[:, :4].clone())
        full = model.rollout(phi0, 6, teacher=free.clone())  # L > steps − 1: extra frames unused
    torch.testing.assert_close(forced, free, **EXACT)
    torch.testing.assert_close(full, free, **EXACT)


@pytest.mark.parametrize("conservative", [True, False])
def test_teacher_frames_are_the_next_inputs(conservative):
    model = make_model(conservative)
    phi0 = rand_phi()
    teacher = rand_phi((2, 3, 1, 6, 7, 8), seed=9)
    steps = 6
    with torch.no_grad():
        out = model.rollout(phi0, steps, teacher=teacher)
        h1, h2 = model.init_hidden(phi0)
        phi = phi0
        for k in range(steps):
            inp = teacher[:, k - 1] if 1 <= k <= 3 else phi  # step k+1 input: teacher frame k for k ≤ L
            phi, h1, h2 = model.step(inp, h1, h2)
            torch.testing.assert_close(out[:, k], phi, **EXACT)
        free = model.rollout(phi0, steps)
    torch.testing.assert_close(out[:, 0], free[:, 0], **EXACT)  # step 1 always from phi0
    assert (out[:, 1] - free[:, 1]).abs().max() > 0  # teacher frame 1 was used


def test_rollout_backpropagates():
    model = make_model(True, dtype=torch.float32)
    phi0 = rand_phi(dtype=torch.float32)
    teacher = rand_phi((2, 2, 1, 6, 7, 8), seed=2, dtype=torch.float32)
    loss = model.rollout(phi0, 3, teacher=teacher).square().mean()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


# -- input checks ----------------------------------------------------------------------------------
def test_input_errors_name_the_expected_shape():
    model = CRNN()
    with pytest.raises(ValueError, match=r"expected phi0 of shape \(N, 1, X, Y, Z\), got \(64, 64\)"):
        model.rollout(torch.zeros(64, 64), 3)
    with pytest.raises(ValueError, match=r"expected phi of shape \(N, 1, X, Y, Z\), got \(1, 2, 4, 4, 4\)"):
        model(torch.zeros(1, 2, 4, 4, 4))
    phi = torch.zeros(1, 1, 4, 4, 4)
    with pytest.raises(ValueError, match=r"expected h1 of shape \(1, 10, 4, 4, 4\)"):
        model.step(phi, torch.zeros(1, 10, 4, 4, 5), torch.zeros(1, 10, 4, 4, 4))
    with pytest.raises(ValueError, match=r"expected h2 of shape"):
        model.step(phi, torch.zeros(1, 10, 4, 4, 4), torch.zeros(1, 8, 4, 4, 4))
    with pytest.raises(ValueError, match=r"expected teacher of shape \(1, L, 1, 4, 4, 4\)"):
        model.rollout(phi, 3, teacher=torch.zeros(1, 2, 4, 4, 4))
    with pytest.raises(ValueError, match="steps must be a non-negative integer"):
        model.rollout(phi, -1)
    with pytest.raises(ValueError, match="kernel must be a positive odd integer"):
        CRNN(kernel=4)
    with pytest.raises(ValueError, match="hidden must be a positive integer"):
        CRNN(hidden=0)
    with pytest.raises(ValueError, match=r"expected x of shape \(N, 1, X, Y, Z\)"):
        ConvGRU3DCell(1)(torch.zeros(1, 3, 4, 4, 4))


# -- symmetries ------------------------------------------------------------------------------------
@pytest.mark.parametrize("conservative", [True, False])
def test_periodic_translation_commutes_with_the_model(conservative):
    model = make_model(conservative)
    phi0 = rand_phi()
    shifts, dims = (2, -3, 5), (-3, -2, -1)
    with torch.no_grad():
        out = model.rollout(phi0, 3)
        out_shifted = model.rollout(torch.roll(phi0, shifts, dims), 3)
    torch.testing.assert_close(out_shifted, torch.roll(out, shifts, dims), **ROUNDOFF64)


# The cube symmetries (rotations, reflections): tests/test_equivariant.py.


# -- checkpoints -----------------------------------------------------------------------------------
def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    model = make_model(False, dtype=torch.float32, hidden=6)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.rollout(rand_phi(dtype=torch.float32), 2).mean().backward()
    opt.step()
    rng, torch_rng = np.random.get_state(), torch.get_rng_state()
    path = save_checkpoint(
        model,
        tmp_path / "ckpt" / "model.pt",
        epoch=7,
        optimizer=opt.state_dict(),
        numpy_rng=rng,
        torch_rng=torch_rng,
        losses=[0.5, 0.25],
        note="x",
    )
    ck = load_checkpoint(path)
    assert ck["epoch"] == 7 and ck["config"] == {"conservative": False, "hidden": 6, "kernel": 3, "equivariant": False}
    assert ck["losses"] == [0.5, 0.25] and ck["note"] == "x"
    assert not ck["model"].training and isinstance(ck["model"], CRNN)
    np.testing.assert_array_equal(ck["numpy_rng"][1], rng[1])
    assert torch.equal(ck["torch_rng"], torch_rng)
    opt2 = torch.optim.Adam(ck["model"].parameters(), lr=1e-4)
    opt2.load_state_dict(ck["optimizer"])
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    phi0 = rand_phi(dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(ck["model"].rollout(phi0, 5), model.eval().rollout(phi0, 5), **EXACT)
    save_checkpoint(model, tmp_path / "bare.pt")
    assert load_checkpoint(tmp_path / "bare.pt")["epoch"] == -1


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    save_checkpoint(CRNN(), path, epoch=1)
    before = path.read_bytes()

    def broken_save(obj, f, *a, **k):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr("surrogate.checkpoint.torch.save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(CRNN(), path, epoch=2)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.pt"]  # no temporary file left behind
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1


def test_checkpoint_errors(tmp_path):
    with pytest.raises(ValueError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"this is not a checkpoint")
    with pytest.raises(ValueError, match="not a ch3d checkpoint") as exc:
        load_checkpoint(tmp_path / "junk.pt")
    assert "\n" not in str(exc.value)
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a ch3d checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    save_checkpoint(CRNN(hidden=4), tmp_path / "bad.pt")
    data = torch.load(tmp_path / "bad.pt", weights_only=True)
    data["config"]["hidden"] = 5
    torch.save(data, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="does not fit CRNN"):
        load_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="reserved keys"):
        save_checkpoint(CRNN(), tmp_path / "x.pt", config={})


def test_input_noise_perturbs_every_input_without_changing_its_mass(monkeypatch):
    """input_noise σ: each step's input is its clean input + mean-free N(0, σ²) noise, drawn from the
    given generator (same seed, same rollout); σ = 0 is the plain rollout; σ < 0 is refused."""
    model = make_model(True)
    phi0 = rand_phi((2, 1, 12, 12, 12))
    teacher = rand_phi((2, 2, 1, 12, 12, 12), seed=3)
    with torch.no_grad():
        plain = model.rollout(phi0, 4, teacher)
        torch.testing.assert_close(model.rollout(phi0, 4, teacher, input_noise=0.0), plain, **EXACT)
        inputs = []
        step = CRNN.step
        monkeypatch.setattr(CRNN, "step", lambda self, phi, h1, h2: (inputs.append(phi), step(self, phi, h1, h2))[1])
        noisy = model.rollout(phi0, 4, teacher, 0.05, torch.Generator().manual_seed(1))
        again = model.rollout(phi0, 4, teacher, 0.05, torch.Generator().manual_seed(1))
    torch.testing.assert_close(noisy, again, **EXACT)
    clean = [phi0, teacher[:, 0], teacher[:, 1], noisy[:, 2]]  # teacher frames 1, 2, then own output 3
    for k, (x, c) in enumerate(zip(inputs[:4], clean)):
        eta = (x - c).reshape(2, -1)
        assert eta.mean(dim=1).abs().max() < 1e-12, k  # mass unchanged (float64 round-off)
        assert eta.std(dim=1).sub(0.05).abs().max() < 0.005, k  # 1728 voxels: sd of the sd ≈ 0.0009
    assert (noisy - plain).abs().max() > 1e-3
    with pytest.raises(ValueError, match="input_noise must be a number >= 0"):
        model.rollout(phi0, 2, input_noise=-0.1)
