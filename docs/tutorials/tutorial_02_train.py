"""
Train a small model and evaluate it
===================================

The surrogate (``surrogate``, PyTorch) is a recurrent convolutional network, the CRNN: one
network step advances a field by one stored frame of the training data, on the ground-truth grid
sampled every second voxel, and its update is the divergence of a predicted flux, so mass is
conserved whatever the weights. This tutorial

1. makes a small data set with the solver (the command of :doc:`tutorial_01_generate`);
2. trains a model on it for a few seconds with ``python -m surrogate train``;
3. evaluates it against the solver with ``python -m surrogate evaluate``, beside the shipped model
   ``crnn`` (trained for hours on 670 sequences of the same physics);
4. rolls both out far beyond the training window, where the difference shows.

**A model trained for seconds is not a good model.** It shows the workflow, not the accuracy: for
real use take a shipped model (``Rollout("crnn")``, ``Rollout("crnn64")``, the model card:
:doc:`/card`) or train for hours on hundreds of sequences (the card gives the commands).
"""

import csv
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numba
import numpy as np

import ch_numba
from export.runtime import Rollout, model_path
from surrogate.metrics import free_energy_series, rmse
from surrogate.runner import TorchRunner

work = Path(tempfile.mkdtemp(prefix="ch3d_tutorial_"))
# the solver's threads (tutorial 1): a 24³ grid gains nothing from more
numba.set_num_threads(1)


def run(command):
    """Run ``python -m COMMAND`` in the work folder and print its output."""
    root = Path(ch_numba.__file__).resolve().parents[1]  # this page's ch3d
    env = {**os.environ, "PYTHONPATH": str(root)}
    print("$ python -m", command)
    args = [sys.executable, "-m", *shlex.split(command)]
    done = subprocess.run(
        args, cwd=work, env=env, capture_output=True, text=True
    )
    print(done.stdout + done.stderr)
    done.check_returncode()


# %%
# Training data
# -------------
# 8 sequences of 16 frames at 24³ with the shipped model's physics (ε = 1.5, 200 steps of
# dt = 4·10⁻³ per frame), each after 0 to 25 burn-in frames; a quarter of them is held out for
# validation (``split``). ``--threads 1`` here and below keeps every step on one core: the grids are
# tiny, and on a machine where another job runs, threads on every core slow the kernels down.

run(
    "ch_numba generate data.h5 --sequences 8 --frames 16 --size 24"
    " --epsilon 1.5 --dt 4e-3 --steps-per-frame 200"
    " --burn-in-frames 25 --val-fraction 0.25 --seed 2"
    " --backend cpu --threads 1"
)

# %%
# Train
# -----
# ``python -m surrogate train`` reads the data set, samples it onto the network grid (24³ → 12³),
# draws sub-sequences of 2 to 8 frames, augments them with the cube's symmetries and the phase swap
# φ → 1 − φ, and runs the paper's curriculum: teacher forcing over the first ``--ramp`` epochs, then
# free rollouts. ``--equivariant`` ties every kernel to the 48 rotations and reflections of the cube
# (7,010 parameters, the shipped model's architecture). It writes ``last.pt``, ``best.pt`` (lowest
# validation loss) and ``log.csv`` into ``--out``; ``--resume`` continues a run, ``--init-from``
# fine-tunes another one (all options: :doc:`/cli`). 25 epochs take about ten seconds here.

run(
    "surrogate train data.h5 --out run --equivariant"
    " --epochs 25 --batch 2 --seq-len 2:8 --ramp 5 --lr 2e-3 --seed 0"
    " --threads 1 --no-tensorboard --no-progress"
)

with open(work / "run" / "log.csv") as f:
    log = list(csv.DictReader(f))
epoch = [int(row["epoch"]) + 1 for row in log]
fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
train_loss = [float(row["train_loss"]) for row in log]
val_loss = [float(row["val_loss"]) for row in log]
ax.semilogy(epoch, train_loss, "o-", ms=3, label="training")
ax.semilogy(epoch, val_loss, "o-", ms=3, label="validation")
ax.axvspan(0.5, 5.5, color="0.9", label="teacher forcing (--ramp 5)")
ax.set(xlabel="epoch", ylabel="MSE loss (log.csv)")
ax.legend(fontsize=8, ncols=3, loc="lower center", bbox_to_anchor=(0.5, 1))

# %%
# Evaluate against the solver
# ---------------------------
# ``python -m surrogate evaluate MODEL DATA.h5`` starts the model from frame 0 of every validation
# sequence (sampled onto the network grid, zero hidden states), runs one network step per stored
# frame and compares with the solver's frames: RMSE, interface displacement, free energy, its power
# law, mass. It takes a checkpoint (``.pt``, PyTorch) or an exported model (``.onnx``, no PyTorch);
# the shipped ``crnn`` is evaluated on the same sequences (a command takes a file, so
# :func:`export.runtime.model_path` gives the installed model's). Without ``--no-plots`` it also
# writes PNG plots; here the figures are drawn from ``evaluation.json``.

run(
    "surrogate evaluate run/best.pt data.h5 --out eval_small"
    " --no-plots --threads 1"
)
crnn = shlex.quote(str(model_path("crnn")))  # models/crnn.onnx
run(f"surrogate evaluate {crnn} data.h5 --out eval_crnn --no-plots --threads 1")
evaluations = {
    "tiny model (25 epochs)": work / "eval_small" / "evaluation.json",
    "shipped crnn": work / "eval_crnn" / "evaluation.json",
}
evaluations = {
    name: json.loads(p.read_text()) for name, p in evaluations.items()
}

# %%
# The free energy on the network grid (prediction against the solver's frames sampled the same
# way) and the RMSE of φ, for each validation sequence. Over the 15 steps of these sequences, about
# the length of its training sub-sequences, the tiny model is as good as the shipped one: it was fit
# to exactly this distribution. A short evaluation does not tell a good model from a poor one.

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
for color, (name, ev) in zip(["C1", "C2"], evaluations.items()):
    times = np.array(ev["times"])
    for i, seq in enumerate(ev["sequences"]):
        label = name if i == 0 else None
        f_pred = seq["free_energy_net_pred"]
        f_true = seq["free_energy_net_true"]
        ax1.plot(times, f_pred, "o-", ms=3, color=color, label=label)
        ax2.plot(times, seq["rmse_full"], "o-", ms=3, color=color, label=label)
        if color == "C1":
            ax1.plot(times, f_true, "k--", label="solver" if i == 0 else None)
ax1.set(
    xlabel="t since frame 0",
    ylabel="F / V (network grid)",
    title="free energy, validation sequences",
)
ax2.set(
    xlabel="t since frame 0",
    ylabel="RMSE of φ (full grid)",
    title="error against the solver",
)
ax1.legend(fontsize=8)
ax2.legend(fontsize=8)

for name, ev in evaluations.items():
    scalars = ev["ensemble"]["scalars"]
    worst = scalars["free_energy_rel_error_network_max"]["mean"]
    print(f"{name}: largest F error (network grid) {worst:.2%}")

# %%
# Beyond the training window
# --------------------------
# A rollout of 150 network steps (t = 120, ten times the evaluated window) from frame 0 of the first
# validation sequence. The solver runs the same 150 × 200 steps on the full grid. The surrogate runs
# in Python through a *runner*: ``surrogate.runner.TorchRunner`` for a checkpoint, or the
# torch-free :class:`export.Rollout` for an exported model (:doc:`tutorial_03_export`); both
# have the same ``downscale``/``rollout`` interface.

n_steps = 150
with ch_numba.open_dataset(work / "data.h5") as ds:
    seq = int(ds.indices("val")[0])
    phi0, params = ds.phi[seq, 0], ds.params

stepper = ch_numba.Stepper(phi0.shape, params)
stepper.set(phi0)
truth = [phi0]
for _ in range(n_steps):
    stepper.advance(200)
    truth.append(stepper.get())

tiny = TorchRunner(work / "run" / "best.pt", device="cpu", threads=1)
shipped = Rollout("crnn", threads=1)
start = shipped.downscale(phi0)  # every second voxel: 24³ -> 12³
rollouts = {
    name: np.stack([start, *runner.rollout(start, steps=n_steps)])
    for name, runner in [
        ("tiny model (25 epochs)", tiny),
        ("shipped crnn", shipped),
    ]
}
truth_net = shipped.downscale(np.stack(truth))

# %%
# F on the network grid (grid spacing 2) for all three, and the RMSE of φ against the
# solver. The tiny model drifts away once its rollouts are longer than anything it was trained on;
# its field leaves the physical range [0, 1] and its free energy explodes (note the log scale). The
# shipped model, trained on rollouts of up to 150 frames with input noise, follows the solver over
# the whole run (its limits are on :doc:`/card`). Mass is conserved by both, by construction.

net_params = ch_numba.CHParams(
    epsilon=params.epsilon, dx=params.dx * shipped.factor
)
t = np.arange(n_steps + 1) * shipped.time_per_step
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
ax1.semilogy(
    t, free_energy_series(truth_net, net_params), "k--", label="solver"
)
for color, (name, frames) in zip(["C1", "C2"], rollouts.items()):
    ax1.plot(t, free_energy_series(frames, net_params), color=color, label=name)
    errors = [rmse(a, b) for a, b in zip(frames, truth_net)]
    ax2.plot(t, errors, color=color, label=name)
    mass = frames.mean(axis=(1, 2, 3), dtype=np.float64)
    print(f"{name}: largest mass drift {np.abs(mass - mass[0]).max():.1e}")
ax1.axvspan(
    0, 15 * shipped.time_per_step, color="0.9", label="evaluated window"
)
ax1.set(
    xlabel="t",
    ylabel="F / V (network grid)",
    title=f"free energy, sequence {seq}",
)
ax2.set(
    xlabel="t",
    ylabel="RMSE of φ (network grid)",
    title="error against the solver",
)
ax1.legend(fontsize=8)
ax2.legend(fontsize=8)

# %%
# The last frame, a slice through the middle of the box: the solver (sampled onto the network
# grid) and the two surrogates.

panels = {
    "solver": truth_net[-1],
    **{name: frames[-1] for name, frames in rollouts.items()},
}
fig, axes = plt.subplots(1, 3, figsize=(10, 3.4), layout="constrained")
for ax, (name, field) in zip(axes, panels.items()):
    im = ax.imshow(
        field[:, :, 6].T, origin="lower", cmap="RdBu_r", vmin=0, vmax=1
    )
    ax.set_title(f"{name}, t = {t[-1]:g}", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
fig.colorbar(im, ax=axes, label="φ", shrink=0.85)

# sphinx_gallery_thumbnail_number = 4

# %%
# Next: export the model to ONNX and run it without PyTorch (:doc:`tutorial_03_export`).

import shutil  # noqa: E402

shutil.rmtree(work)
