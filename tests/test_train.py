"""Training: a tiny run lowers the loss; checkpoint contents; curriculum in the loop; bit-for-bit
resume (in process and after a real SIGKILL); one-line CLI errors; DDP with two gloo processes."""

import csv
import logging
import re
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ch_numba.dataset import DatasetConfig, generate
from surrogate import CRNN, load_checkpoint
from surrogate.cli import main
from surrogate.data import SequenceDataset
from surrogate.train import LOG_COLUMNS, TrainConfig, objective, train

ROOT = Path(__file__).resolve().parents[1]
EXACT = dict(rtol=0, atol=0)
#: DDP (2 ranks × batch 1) vs one process with batch 2: same math, different summation order
#: (observed ≤ 1.1e-6 after 4 Adam steps of lr 1e-3)
DDP_VS_SINGLE = dict(rtol=0, atol=1e-5)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def config(data, out, **kw):
    base = dict(
        epochs=2,
        batch=2,
        lr=3e-3,
        ramp=1,
        downscale=2,
        min_len=3,
        max_len=6,
        seed=0,
        threads=1,
        tensorboard=False,
        progress=False,
    )
    base.update(kw)
    return TrainConfig(data=data, out=out, **base)


def cli_args(data, out, *extra):
    return [
        "train",
        str(data),
        "--out",
        str(out),
        "--batch",
        "2",
        "--lr",
        "3e-3",
        "--ramp",
        "1",
        "--seq-len",
        "3:6",
        "--threads",
        "1",
        "--no-tensorboard",
        "--no-progress",
        *extra,
    ]


def env1():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("WORLD_SIZE", None)
    return env


def assert_same_state(a: dict, b: dict, tol=EXACT):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], **tol, msg=k)


def free_run_loss(model, data):
    """Objective of a free run over all frames of every training sequence (fixed, no augmentation)."""
    ds = SequenceDataset(data, "train", 2)
    seq = torch.stack([ds[k] for k in range(len(ds))])
    with torch.no_grad():
        return float(objective(model.rollout(seq[:, 0], seq.shape[1] - 1), seq, True, 0.0))


# -- a run ----------------------------------------------------------------------------------------
def test_tiny_run_lowers_the_loss_and_writes_everything(data_file, tmp_path):
    pytest.importorskip("torch.utils.tensorboard")
    out = tmp_path / "run"
    cfg = config(data_file, out, epochs=6, ramp=0, min_len=4, max_len=4, tensorboard=True)
    result = train(cfg, command="pytest")
    hist = result["history"]
    assert [r["epoch"] for r in hist] == list(range(6))
    # the training objective falls (epoch means on random sub-sequences) ...
    assert hist[-1]["train_loss"] < 0.6 * hist[0]["train_loss"], [r["train_loss"] for r in hist]
    assert min(r["val_loss"] for r in hist[1:]) < hist[0]["val_loss"]
    # ... and so does the loss of a fixed free run, against the same seed's initial weights
    torch.manual_seed(cfg.seed)
    initial = CRNN()
    trained = load_checkpoint(out / "last.pt")["model"]
    assert free_run_loss(trained, data_file) < 0.5 * free_run_loss(initial, data_file)

    # log.csv = the history
    with open(out / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == LOG_COLUMNS and len(rows) == 6
    for row, h in zip(rows, hist):
        assert int(row["epoch"]) == h["epoch"] and float(row["train_loss"]) == h["train_loss"]
        assert float(row["val_loss"]) == h["val_loss"] and int(row["teacher_frames"]) == 1
        assert float(row["lr"]) == 3e-3 and float(row["seconds"]) > 0
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))

    # checkpoints
    last = load_checkpoint(out / "last.pt")
    assert last["epoch"] == 5
    assert last["config"] == {"conservative": True, "hidden": 10, "kernel": 3, "equivariant": False}
    assert last["train_config"] == cfg.to_dict() and last["command"] == "pytest"
    assert last["history"] == hist and last["val_loss"] == hist[-1]["val_loss"]
    assert last["dataset"]["attrs"]["epsilon"] == 1.0 and last["dataset"]["attrs"]["steps_per_frame"] == 100
    assert last["dataset"]["n_frames"] == 8 and last["dataset"]["shape"] == [16, 16, 16]
    assert last["dataset"]["train"] == SequenceDataset(data_file, "train").indices.tolist()
    assert last["downscale"] == 2 and last["world_size"] == 1
    assert set(last["rng"]) >= {"torch", "numpy", "python"}
    opt = last["optimizer"]
    assert opt["param_groups"][0]["lr"] == 3e-3
    assert float(opt["state"][0]["step"]) == 6 * 2  # 4 train sequences / batch 2 = 2 steps per epoch
    best_epoch = int(np.argmin([r["val_loss"] for r in hist]))
    best = load_checkpoint(out / "best.pt")
    assert best["epoch"] == best_epoch == last["best_epoch"] == result["best_epoch"]
    assert best["val_loss"] == last["best_val_loss"] == min(r["val_loss"] for r in hist)


def test_curriculum_feeds_the_ground_truth(data_file, tmp_path, monkeypatch):
    """Epoch e feeds frames 1..L(e)−1 of the sub-sequence itself as teacher; validation free-runs."""
    calls = []
    rollout = CRNN.rollout

    def spy(self, phi0, steps, teacher=None, *noise, **state):
        calls.append((self.training, steps, None if teacher is None else teacher.shape[1]))
        return rollout(self, phi0, steps, teacher, *noise, **state)

    monkeypatch.setattr(CRNN, "rollout", spy)
    train(config(data_file, tmp_path / "run", epochs=4, ramp=3, min_len=6, max_len=6))
    # T = 6, R = 3: L = ⌊6·2/3⌋ = 4, ⌊6·1/3⌋ = 2, 0 -> 1, then 1: teacher frames L − 1 = 3, 1, 0, 0
    train_calls = [c for c in calls if c[0]]
    val_calls = [c for c in calls if not c[0]]
    assert [c[2] for c in train_calls] == [3, 3, 1, 1, None, None, None, None]
    assert all(c[1] == 5 for c in train_calls)
    assert val_calls == [(False, 7, None)] * 4  # 2 val sequences in one batch of 2, all 8 frames, each epoch


# -- resume ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_resume_is_bit_for_bit(data_file, tmp_path, noise):
    straight = train(config(data_file, tmp_path / "a", epochs=2, input_noise=noise))
    train(config(data_file, tmp_path / "b", epochs=1, input_noise=noise))  # "killed" after epoch 0
    resumed = train(
        config(
            data_file,
            tmp_path / "b",
            epochs=2,
            resume=True,
            workers=2,  # workers: same data
            input_noise=noise,
        )
    )
    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    assert a["epoch"] == b["epoch"] == 1
    assert_same_state(a["model_state"], b["model_state"])
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert_same_state(sa, sb)
    drop = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert drop(straight["history"]) == drop(resumed["history"]) == drop(b["history"])
    with open(tmp_path / "b" / "log.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [0, 1]
    # nothing left to do
    again = train(config(data_file, tmp_path / "b", epochs=2, resume=True, input_noise=noise))
    assert len(again["history"]) == 2


def test_resume_after_sigkill(data_file, tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "surrogate", *cli_args(data_file, out, "--epochs", "6")],
        env=env1(),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not (out / "last.pt").exists():
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint within 60 s"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    killed_at = load_checkpoint(out / "last.pt")["epoch"]
    assert killed_at < 5  # killed mid-run
    assert main(cli_args(data_file, out, "--epochs", "6", "--resume")) == 0
    train(config(data_file, tmp_path / "straight", epochs=6))
    a, b = load_checkpoint(out / "last.pt"), load_checkpoint(tmp_path / "straight" / "last.pt")
    assert a["epoch"] == b["epoch"] == 5
    assert_same_state(a["model_state"], b["model_state"])
    assert [r["val_loss"] for r in a["history"]] == [r["val_loss"] for r in b["history"]]


# -- command line ---------------------------------------------------------------------------------
def one_line_error(capsys, code, pattern):
    import re

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert err and err[-1].startswith("error: ") and "Traceback" not in "\n".join(err)
    assert re.search(pattern, err[-1]), err[-1]


def test_cli_errors(data_file, tmp_path, capsys, caplog):
    one_line_error(capsys, main(cli_args(tmp_path / "missing.h5", tmp_path / "r")), "no such file")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    one_line_error(capsys, main(cli_args(junk, tmp_path / "r")), "not a readable HDF5")
    one_line_error(
        capsys,
        main(cli_args(data_file, tmp_path / "r", "--seq-len", "4:20")),
        r"too small for --seq-len 4:20: it stores 8 frames",
    )
    one_line_error(capsys, main(cli_args(data_file, tmp_path / "r", "--batch", "0")), "--batch must be >= 1")
    one_line_error(capsys, main(cli_args(data_file, tmp_path / "r", "--seq-len", "1")), "at least 2 frames")
    one_line_error(capsys, main(cli_args(data_file, tmp_path / "r", "--bptt", "0")), "--bptt must be >= 1")
    one_line_error(capsys, main(cli_args(data_file, tmp_path / "r", "--seed", str(2**64))), r"--seed must be in 0\.\.")
    one_line_error(
        capsys,
        main(cli_args(data_file, tmp_path / "r", "--best-from", "99", "--epochs", "1")),
        r"^error: --best-from 99 must be below --epochs 1 \(epochs are numbered 0\.\.0\): no epoch could become best\.pt$",
    )
    one_line_error(capsys, main(cli_args(data_file, tmp_path / "r", "--downscale", "3")), "not divisible")
    # the kernel larger than the grid even at --downscale 1: the remedy is a smaller kernel, not "--downscale <= 0"
    one_line_error(
        capsys,
        main(cli_args(data_file, tmp_path / "r", "--kernel", "99", "--downscale", "1")),
        r"^error: the grid 16x16x16 of .*\.h5 is smaller than the model's kernel 99 along an axis; use --kernel <= 15$",
    )
    one_line_error(
        capsys,
        main(cli_args(data_file, tmp_path / "r", "--kernel", "99", "--downscale", "2")),
        r"^error: --downscale 2 turns the grid 16x16x16 of .* into 8x8x8, smaller than the model's kernel 99 along "
        r"an axis; use --kernel <= 7$",
    )
    one_line_error(capsys, main(cli_args(data_file, tmp_path / "r", "--downscale", "8")), r"; use --downscale <= 5$")
    one_line_error(capsys, main(cli_args(data_file, tmp_path / "r", "--resume")), "no checkpoint .* to continue")
    if not torch.cuda.is_available():
        one_line_error(capsys, main(cli_args(data_file, tmp_path / "r", "--device", "cuda")), "no usable CUDA")
        one_line_error(capsys, main(cli_args(data_file, tmp_path / "r", "--amp", "fp16")), "needs a CUDA device")
    assert not (tmp_path / "r").exists()  # nothing written on refusal
    # a run exists: refuse to overwrite; refuse to resume with other numbers
    with caplog.at_level(logging.INFO, logger="surrogate.train"):
        assert main(cli_args(data_file, tmp_path / "r", "--epochs", "1")) == 0
    # epochs logged 1-based of the total (--epochs 1: "epoch 1/1", not "epoch 0/0"), the done line alike
    assert re.search(r"\bepoch 1/1: train ", caplog.text) and "epoch 0/0" not in caplog.text, caplog.text
    assert "done: best val loss" in caplog.text and " at epoch 1/1 -> " in caplog.text
    assert "; epochs 1..1 -> " in caplog.text
    capsys.readouterr()
    one_line_error(capsys, main(cli_args(data_file, tmp_path / "r", "--epochs", "2")), "already holds a run")
    one_line_error(
        capsys,
        main(cli_args(data_file, tmp_path / "r", "--epochs", "2", "--resume", "--lr", "1e-3")),
        r"cannot resume .* lr=0.003 \(now 0.001\)",
    )
    with pytest.raises(SystemExit) as exc:
        main(["train", str(data_file), "--out", str(tmp_path / "x"), "--seq-len", "a:b"])
    assert exc.value.code == 2


def test_data_set_too_small(tmp_path, capsys):
    one_frame = tmp_path / "one.h5"
    generate(
        one_frame,
        DatasetConfig(sequences=3, frames=1, steps_per_frame=1, size=8, val_fraction=0.34, seed=1, frequencies=(2,)),
        backend="numpy",
        progress=False,
    )
    one_line_error(
        capsys, main(cli_args(one_frame, tmp_path / "r", "--seq-len", "2")), "too small: 1 frame.* at least 2"
    )
    no_val = tmp_path / "noval.h5"
    generate(
        no_val,
        DatasetConfig(sequences=2, frames=3, steps_per_frame=1, size=8, val_fraction=0.0, seed=1, frequencies=(2,)),
        backend="numpy",
        progress=False,
    )
    one_line_error(capsys, main(cli_args(no_val, tmp_path / "r")), "no validation sequences")


# -- distributed ------------------------------------------------------------------------------------
def test_ddp_two_gloo_processes(data_file, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes",
        "1",
        "--nproc_per_node",
        "2",
        "-m",
        "surrogate",
        *cli_args(data_file, out, "--epochs", "2", "--batch", "1", "--lr", "1e-3", "--bptt", "2"),
    ]
    proc = subprocess.run(cmd, env=env1(), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("replicas identical on 2 ranks") == 2, proc.stderr[-3000:]  # one line per epoch
    ddp = load_checkpoint(out / "last.pt")
    assert ddp["world_size"] == 2 and ddp["replica_max_diff"] == 0.0 and ddp["epoch"] == 1
    # the same as one process with the global batch (2 ranks × 1), up to summation order
    torch.manual_seed(0)
    init = CRNN().state_dict()
    train(config(data_file, tmp_path / "single", epochs=2, batch=2, lr=1e-3, bptt=2))
    single = load_checkpoint(tmp_path / "single" / "last.pt")
    # The flux head's bias (head.4.bias) is dropped by the mean-flux removal: its gradient is zero up to
    # round-off, which Adam normalises to steps of ±lr, so it differs by O(lr) and is left out.
    dead = "head.4.bias"
    assert float(single["optimizer"]["state"][len(init) - 1]["exp_avg"].abs().max()) < 1e-8
    keep = lambda s: {k: v for k, v in s.items() if k != dead}  # noqa: E731
    assert_same_state(keep(ddp["model_state"]), keep(single["model_state"]), DDP_VS_SINGLE)
    moved = max(float((ddp["model_state"][k] - init[k]).abs().max()) for k in init)
    assert moved > 1e-4  # and the weights did train
    np.testing.assert_allclose(
        [r["val_loss"] for r in ddp["history"]], [r["val_loss"] for r in single["history"]], rtol=1e-4
    )


def manual_loss(model, seq, teacher_frames, cut_every=None):
    """Reference objective of a rollout written out step by step with CRNN.step: step j's input is
    seq[:, j] for 1 <= j < teacher_frames, else the previous prediction; with cut_every K the state
    (input, h1, h2) is detached before steps K, 2K, ... (truncated backpropagation)."""
    phi, (h1, h2) = seq[:, 0], model.init_hidden(seq[:, 0])
    steps, losses = seq.shape[1] - 1, []
    for j in range(steps):
        if 0 < j < teacher_frames:
            phi = seq[:, j]
        if cut_every and j and j % cut_every == 0:
            phi, h1, h2 = phi.detach(), h1.detach(), h2.detach()
        phi, h1, h2 = model.step(phi, h1, h2)
        losses.append((phi - seq[:, j + 1]).pow(2).mean())
    return torch.stack(losses).mean()


@pytest.mark.parametrize("teacher_frames", [1, 4])
def test_truncated_backprop_is_the_cut_gradient_of_the_same_loss(data_file, tmp_path, teacher_frames):
    """--bptt K: the same loss; its gradient is the one of the rollout with the state detached every
    K steps (a reference written with CRNN.step), and differs from the full gradient."""
    from surrogate.train import _Dist, _Trainer

    trainer = _Trainer(config(data_file, tmp_path / "t", bptt=2), _Dist())
    try:
        model = trainer.model
        seq = torch.stack([trainer.val_ds[k] for k in range(2)])[:, :6]  # 5 steps: pieces 2 + 2 + 1
        params = list(model.parameters())

        def grads(loss):
            return [g.clone() for g in torch.autograd.grad(loss, params, allow_unused=True)]

        model.zero_grad(set_to_none=True)
        loss = trainer._forward_backward(seq, teacher_frames, None)
        got = [p.grad.clone() if p.grad is not None else None for p in params]
        cut = manual_loss(model, seq, teacher_frames, cut_every=2)
        full = manual_loss(model, seq, teacher_frames)
        assert loss == pytest.approx(float(full.detach()), rel=1e-6) == pytest.approx(float(cut.detach()), rel=1e-6)
        want, whole = grads(cut), grads(full)
        differs = 0.0
        for g, w, f in zip(got, want, whole):
            if w is None:  # the flux head's last bias never reaches the loss
                assert g is None or float(g.abs().max()) < 1e-9
                continue
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-7)
            differs = max(differs, float((w - f).abs().max() / f.abs().max()))
        assert differs > 1e-3  # the cut changes the gradient: not the full backpropagation
        # K >= the number of steps: one piece, the full gradient
        model.zero_grad(set_to_none=True)
        trainer.cfg = config(data_file, tmp_path / "t", bptt=5)
        trainer._forward_backward(seq, teacher_frames, None)
        for p, f in zip(params, whole):
            if f is not None:
                torch.testing.assert_close(p.grad, f, rtol=1e-4, atol=1e-7)
    finally:
        trainer.close()


def test_bf16_autocast_on_the_cpu_keeps_mass_and_trains(data_file, tmp_path):
    """--amp bf16 on the CPU: the rollout under autocast conserves mass in float32 (the divergence
    runs in φ's precision), stays within bf16 precision of the float32 rollout, and a run trains."""
    torch.manual_seed(0)
    model = CRNN(equivariant=True)
    ds = SequenceDataset(data_file, "train", 2)
    phi0 = torch.stack([ds[k] for k in range(2)])[:, 0]
    with torch.no_grad():
        exact = model.rollout(phi0, 5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = model.rollout(phi0, 5)
    assert fast.dtype == torch.float32
    mass = fast.double().mean(dim=(2, 3, 4, 5)) - phi0.double().mean(dim=(1, 2, 3, 4))[:, None]
    assert float(mass.abs().max()) < 1e-6
    err = float((fast - exact).abs().max())
    assert 1e-6 < err < 0.02  # bf16 (8 bits of mantissa) was used, and only rounds
    run = train(config(data_file, tmp_path / "bf16", epochs=3, amp="bf16", lr=3e-3))
    losses = [r["train_loss"] for r in run["history"]]
    assert losses[-1] < losses[0]
    assert load_checkpoint(tmp_path / "bf16" / "last.pt")["train_config"]["amp"] == "bf16"


def test_non_conservative_ablation_and_mass_penalty(data_file, tmp_path):
    g = torch.Generator().manual_seed(0)
    seq = torch.rand(2, 4, 1, 3, 3, 3, generator=g, dtype=torch.float64)
    pred = torch.rand(2, 3, 1, 3, 3, 3, generator=g, dtype=torch.float64)
    p, s = pred.numpy()[:, :, 0], seq.numpy()[:, :, 0]
    mse = np.mean((p - s[:, 1:]) ** 2)
    dm = p.mean(axis=(2, 3, 4)) - s[:, :1].mean(axis=(2, 3, 4))  # (N, T−1): mass change from frame 0
    np.testing.assert_allclose(float(objective(pred, seq, False, 0.5)), mse + 0.5 * np.mean(dm**2), rtol=1e-13)
    np.testing.assert_allclose(float(objective(pred, seq, True, 0.5)), mse, rtol=1e-13)  # conservative: MSE only
    train(config(data_file, tmp_path / "ablation", epochs=1, conservative=False, mass_penalty=1e-2))
    ckpt = load_checkpoint(tmp_path / "ablation" / "last.pt")
    assert ckpt["config"]["conservative"] is False and ckpt["model"].param_count() == 28_641
    assert ckpt["train_config"]["mass_penalty"] == 1e-2 and np.isfinite(ckpt["val_loss"])


# -- fine-tuning ----------------------------------------------------------------------------------
def test_init_from_starts_at_the_checkpoint_weights(data_file, tmp_path, capsys):
    """--init-from: epoch 0 of the new run starts from the source's weights (its free-run loss before
    any step equals the source's), with a fresh optimiser and history; wrong architecture refused."""
    train(config(data_file, tmp_path / "src", epochs=2))
    src = load_checkpoint(tmp_path / "src" / "best.pt")
    # lr tiny: after one epoch the weights are still the source's to ~1e-9, a fresh init is ~0.1 away
    tuned = train(
        config(data_file, tmp_path / "tuned", epochs=1, lr=1e-12, ramp=0, init_from=str(tmp_path / "src" / "best.pt"))
    )
    new = load_checkpoint(tmp_path / "tuned" / "last.pt")
    assert [r["epoch"] for r in tuned["history"]] == [0]
    assert new["train_config"]["init_from"] == str(tmp_path / "src" / "best.pt")
    assert_same_state(new["model_state"], src["model_state"], tol=dict(rtol=0, atol=1e-8))
    scratch = train(config(data_file, tmp_path / "scratch", epochs=1, lr=1e-12, ramp=0))
    assert scratch["history"][0]["val_loss"] != pytest.approx(tuned["history"][0]["val_loss"], rel=1e-6)
    # architecture and option checks: one-line errors, nothing written
    code = main(
        cli_args(
            data_file,
            tmp_path / "bad",
            "--epochs",
            "1",
            "--no-conservative",
            "--init-from",
            str(tmp_path / "src" / "best.pt"),
        )
    )
    one_line_error(capsys, code, r"--init-from .* architecture .* differs")
    code = main(
        cli_args(
            data_file, tmp_path / "src", "--epochs", "3", "--resume", "--init-from", str(tmp_path / "src" / "best.pt")
        )
    )
    one_line_error(capsys, code, "--resume and --init-from exclude each other")
    assert not (tmp_path / "bad").exists()


def test_input_noise_changes_training_and_old_checkpoints_resume(data_file, tmp_path, capsys):
    """--input-noise enters the training rollouts (not validation: the weights before any step give
    the same val loss either way); a checkpoint written before the option existed resumes as σ = 0,
    and resuming with another σ is refused."""
    quiet = train(config(data_file, tmp_path / "quiet", epochs=1, lr=1e-12))
    noisy = train(config(data_file, tmp_path / "noisy", epochs=1, lr=1e-12, input_noise=0.1))
    assert noisy["history"][0]["val_loss"] == pytest.approx(quiet["history"][0]["val_loss"], rel=1e-6)
    assert noisy["history"][0]["train_loss"] > quiet["history"][0]["train_loss"] * 1.01
    last = tmp_path / "quiet" / "last.pt"
    old = torch.load(last, weights_only=False)
    del old["train_config"]["input_noise"]  # as written by the code before the option
    torch.save(old, last)
    assert len(train(config(data_file, tmp_path / "quiet", epochs=2, lr=1e-12, resume=True))["history"]) == 2
    code = main(
        cli_args(data_file, tmp_path / "noisy", "--epochs", "3", "--lr", "1e-12", "--resume", "--input-noise", "0.2")
    )
    one_line_error(capsys, code, r"cannot resume .* input_noise=0.1 \(now 0.2\)")


# -- the cube-equivariant model -----------------------------------------------------------------------
def test_equivariant_run_resumes_bit_for_bit_and_stays_equivariant(data_file, tmp_path, capsys):
    """--equivariant: the run trains the 7,010 free taps, resumes exactly like the plain model, and its
    weights still commute with the cube symmetries; resuming without the option is refused."""
    from surrogate.symmetry import N_SYMMETRIES, cube_symmetry

    straight = train(config(data_file, tmp_path / "a", epochs=2, equivariant=True))
    assert main(cli_args(data_file, tmp_path / "b", "--epochs", "1", "--equivariant")) == 0
    resumed = train(config(data_file, tmp_path / "b", epochs=2, resume=True, equivariant=True))
    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    assert a["config"] == {"conservative": True, "hidden": 10, "kernel": 3, "equivariant": True}
    assert a["train_config"]["equivariant"] is True and b["train_config"]["equivariant"] is True
    assert a["model"].param_count() == 7_010 and "cell1.i2h.0.coeffs" in a["model_state"]
    assert_same_state(a["model_state"], b["model_state"])
    drop = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert drop(straight["history"]) == drop(resumed["history"])
    torch.manual_seed(0)
    init = CRNN(equivariant=True).state_dict()
    assert max(float((a["model_state"][k] - init[k]).abs().max()) for k in init) > 1e-4  # it did train
    model = a["model"].double()
    phi0 = torch.rand(1, 1, 6, 6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        out = model.rollout(phi0, 3)[0]
        got = model.rollout(torch.cat([cube_symmetry(phi0, s) for s in range(N_SYMMETRIES)]), 3)
    for s in range(N_SYMMETRIES):
        torch.testing.assert_close(got[s], cube_symmetry(out, s), rtol=1e-12, atol=1e-12)
    code = main(cli_args(data_file, tmp_path / "b", "--epochs", "3", "--resume"))
    one_line_error(capsys, code, r"cannot resume .* equivariant=True \(now False\)")
    code = main(cli_args(data_file, tmp_path / "k1", "--equivariant", "--kernel", "1"))
    one_line_error(capsys, code, "--equivariant needs --kernel >= 3")


def test_init_from_projects_an_unconstrained_checkpoint_and_evaluate_reads_the_result(
    data_file, tmp_path, caplog, capsys
):
    """--equivariant --init-from PLAIN.pt starts from the orthogonal projection of PLAIN's kernels (and
    logs it); the other way an equivariant checkpoint is materialised; `evaluate` runs the .pt."""
    import json
    import logging

    from surrogate import save_checkpoint

    torch.manual_seed(7)
    source = CRNN()
    save_checkpoint(source, tmp_path / "plain.pt", epoch=0)
    with caplog.at_level(logging.INFO, logger="surrogate.train"):
        train(
            config(
                data_file,
                tmp_path / "eq",
                epochs=1,
                lr=1e-12,
                ramp=0,
                equivariant=True,
                init_from=str(tmp_path / "plain.pt"),
            )
        )
    assert "projected its unconstrained weights onto the cube-equivariant kernels (29183 -> 7010" in caplog.text
    tuned = load_checkpoint(tmp_path / "eq" / "last.pt")
    want = source.to_equivariant().state_dict()
    assert_same_state(tuned["model_state"], want, tol=dict(rtol=0, atol=1e-8))
    # an equivariant checkpoint into a plain run: its materialised kernels
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="surrogate.train"):
        train(
            config(data_file, tmp_path / "back", epochs=1, lr=1e-12, ramp=0, init_from=str(tmp_path / "eq" / "last.pt"))
        )
    assert "materialised its equivariant kernels" in caplog.text
    back = load_checkpoint(tmp_path / "back" / "last.pt")
    assert back["config"]["equivariant"] is False
    assert_same_state(back["model_state"], tuned["model"].to_plain().state_dict(), tol=dict(rtol=0, atol=1e-8))
    # evaluate an equivariant checkpoint (PyTorch backend): runs, records the architecture, conserves mass
    out = tmp_path / "eval"
    assert (
        main(
            [
                "evaluate",
                str(tmp_path / "eq" / "last.pt"),
                str(data_file),
                "--out",
                str(out),
                "--threads",
                "1",
                "--no-plots",
            ]
        )
        == 0
    ), capsys.readouterr().err
    result = json.loads((out / "evaluation.json").read_text())
    assert result["model"]["metadata"]["equivariant"] is True and result["model"]["metadata"]["param_count"] == 7010
    assert max(max(s["mass_drift_pred"]) for s in result["sequences"]) < 1e-5


def test_device_helpers_live_in_surrogate_device():
    """resolve_device, the AMP dtype and the torchrun helper moved to surrogate.device (issue 23), so
    inference does not import the trainer; the trainer's names are the same objects."""
    from surrogate import device, train

    assert train.resolve_device is device.resolve_device and train._Dist is device._Dist
    assert train._Rollout is train._UnrolledModel  # the DDP wrapper's old name
    assert device.resolve_device("cpu") == torch.device("cpu")
    assert device.amp_dtype("auto", torch.device("cpu")) is None and device.amp_dtype("bf16", torch.device("cpu"))
    with pytest.raises(ValueError, match="--amp fp16 needs a CUDA device"):
        device.amp_dtype("fp16", torch.device("cpu"))
