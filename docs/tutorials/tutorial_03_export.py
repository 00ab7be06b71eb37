"""
Export and embed the surrogate
==============================

A trained surrogate leaves PyTorch as an ONNX file holding **one recurrent step**,
``(phi, h1, h2) -> (phi_next, h1_next, h2_next)``, with the physics it was trained on in its
metadata. The loop is the host's: a simulation code calls the step as often as it likes, reads
and changes the field between steps, and never imports torch. This tutorial

1. shows the export (``python -m export``, :func:`export.export_checkpoint`);
2. runs the shipped ``crnn`` step by step with the torch-free :class:`export.Rollout` inside
   a host loop that runs the solver beside it, checks the mass and the free energy after every step
   and keeps the field's mass on the host side;
3. shows the same loop from C, C++ and Fortran (``native/``, the :doc:`/embedding` page).
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numba
import numpy as np

import ch_numba
from export.runtime import Rollout

# the solver's threads (tutorial 1): a 32³ grid gains nothing from more
numba.set_num_threads(1)

# %%
# Export a checkpoint
# -------------------
# A checkpoint of ``python -m surrogate train`` (:doc:`tutorial_02_train`) becomes an ONNX file with
# one command (it needs the ``train`` and ``export`` extras: torch, onnx)::
#
#     python -m export runs/small/best.pt small.onnx --verify
#
# ``--verify`` runs ``onnx.checker``, then compares onnxruntime with PyTorch for one step and for a
# rollout at two grid sizes, and exits with status 1 on a mismatch. From Python::
#
#     from export import export_checkpoint
#
#     export_checkpoint("runs/small/best.pt", "small.onnx")
#
# Tracing the network with ``torch.export`` takes one to two minutes on two CPU cores, too long for
# this page, so it runs a model exported that way already: the shipped ``crnn`` (``models/crnn.onnx``,
# exported from ``models/crnn.pt``; a bare name that is not a file is an installed model,
# :func:`export.runtime.list_models`). The exporter's options are in the :doc:`/cli`, the ONNX graph
# and its metadata on the :doc:`/formats` page.
#
# The runtime
# -----------
# :class:`export.Rollout` imports numpy and onnxruntime, nothing else: a host that only
# embeds a model installs ``numpy onnxruntime`` and ch3d without its dependencies. This page's
# process has imported torch already (the previous tutorial), so a fresh interpreter checks it:

check = """
import sys
from export.runtime import Rollout

Rollout("crnn")
print("torch imported:", "torch" in sys.modules)
"""
root = Path(ch_numba.__file__).resolve().parents[1]  # this page's ch3d
env = {**os.environ, "PYTHONPATH": str(root)}
fresh = subprocess.run(
    [sys.executable, "-c", check], env=env, capture_output=True, text=True
)
print(fresh.stdout, fresh.stderr)
fresh.check_returncode()

# %%
# The model carries the physics of its training data: one network step is one stored frame,
# ``steps_per_frame`` solver steps of ``dt``, on the ground-truth grid sampled every ``downscale``-th
# voxel. ``physics=`` states the host's physics; a mismatch (or a field whose mean φ lies outside the
# training data's) warns with :class:`~export.runtime.TrainingRangeWarning`.

params = ch_numba.CHParams(epsilon=1.5, dt=4e-3)  # the host's physics
steps_per_frame = 200
net = Rollout(
    "crnn",
    threads=1,
    physics={**params.as_dict(), "steps_per_frame": steps_per_frame},
)
print(net)
meta = net.metadata
keys = ["epsilon", "dt", "steps_per_frame", "time_per_step", "downscale"]
for key in keys + ["min_grid", "halo", "param_count"]:
    print(f"{key:>15s}: {meta[key]}")
print("mean φ range of the training data:", net.mean_range)

# %%
# A host loop
# -----------
# The host owns a 32³ field and its own solver. It runs the solver for the first 5 frames, feeds
# them through :meth:`~export.Rollout.step` to warm the network's hidden states up on the
# true trajectory (teacher forcing; the states start at zero), then hands over: every further step
# is one call of ``step`` on the network grid (16³). Between two steps the host reads the field (the
# mass, the free energy on the network grid) and may change it: here it puts back the mass lost to
# round-off, which for a conservative model is a change of order 10⁻⁹ (a model that is not
# conservative would need it). The solver keeps running beside it, for the comparison only.

shape, n_warm, n_steps = (32, 32, 32), 5, 100
phi0 = ch_numba.initial.perlin(shape, frequency=3, seed=11, mean=0.5)
# F on the network grid
net_params = ch_numba.CHParams(
    epsilon=params.epsilon, dx=params.dx * net.factor
)

solver = ch_numba.Stepper(shape, params)
solver.set(phi0)
truth = [phi0]
for _ in range(n_warm):
    solver.advance(steps_per_frame)
    truth.append(solver.get())

net.reset()
# the states see frames 0..4; their output would be frames 1..5
for frame in truth[:n_warm]:
    net.step(net.downscale(frame))
# the handover: the host continues from the solver's frame 5
phi = net.downscale(truth[-1])
mass0 = phi.mean(dtype=np.float64)

drift, f_net, f_true, error = [], [], [], []
t_net = t_solver = 0.0
for _ in range(n_steps):
    t = time.perf_counter()
    # one network step = 200 solver steps; the hidden states stay inside
    phi = net.step(phi)
    t_net += time.perf_counter() - t
    # the host reads the field ...
    lost = phi.mean(dtype=np.float64) - mass0
    drift.append(lost)
    f_net.append(ch_numba.free_energy(phi, net_params))
    # ... and changes it (here: the mass put back exactly)
    phi -= np.float32(lost)
    # the reference: the solver, 200 steps on the full grid
    t = time.perf_counter()
    solver.advance(steps_per_frame)
    truth.append(solver.get())
    t_solver += time.perf_counter() - t
    f_true.append(ch_numba.free_energy(net.downscale(truth[-1]), net_params))
    error.append(float(np.sqrt(np.mean((phi - net.downscale(truth[-1])) ** 2))))

print(f"solver per frame (32³, 200 steps): {1e3 * t_solver / n_steps:.1f} ms")
print(f"surrogate per step (16³): {1e3 * t_net / n_steps:.1f} ms")
print(
    f"mass: largest change in one step {np.max(np.abs(drift)):.1e} (mean φ = {mass0:.6f})"
)
print(
    f"after {n_steps} steps: RMSE {error[-1]:.3f}, F {f_net[-1]:.5f} (solver {f_true[-1]:.5f})"
)

# %%
# On a 32³ grid and one CPU thread a network step costs about as much as the 200 solver steps it
# replaces; the surrogate pays off on large grids and on GPUs (:doc:`/performance`). The free energy
# of both runs, the error against the solver and the mass change of each step before the host's
# correction: float32 round-off.

t = (n_warm + 1 + np.arange(n_steps)) * net.time_per_step
f_warm = [
    ch_numba.free_energy(net.downscale(frame), net_params)
    for frame in truth[: n_warm + 1]
]
fig, (ax1, ax2, ax3) = plt.subplots(
    1, 3, figsize=(11, 3.2), layout="constrained"
)
ax1.plot(
    np.arange(n_warm + 1) * net.time_per_step,
    f_warm,
    "k.-",
    label="solver, warm-up",
)
ax1.plot(t, f_true, "k--", label="solver")
ax1.plot(t, f_net, "C2", label="surrogate (host loop)")
ax1.set(xlabel="t", ylabel="F / V (network grid)", title="free energy")
ax1.legend(fontsize=8)
ax2.plot(t, error, "C2")
ax2.set(xlabel="t", ylabel="RMSE of φ", title="surrogate − solver")
ax3.plot(t, np.abs(drift), "C2.", ms=3)
ax3.set(
    xlabel="t",
    ylabel="|Δ mean φ| per step",
    title="mass, before the host's correction",
)
ax3.set_yscale("log")

# %%
# The field at the end: a slice through the solver's field (sampled onto the network grid) and the
# surrogate's.

fig, axes = plt.subplots(1, 3, figsize=(10, 3.3), layout="constrained")
pairs = {"solver": net.downscale(truth[-1]), "surrogate": phi}
pairs["difference"] = pairs["surrogate"] - pairs["solver"]
for ax, (name, field) in zip(axes, pairs.items()):
    limits = (-0.5, 0.5) if name == "difference" else (0, 1)
    im = ax.imshow(
        field[:, :, 8].T,
        origin="lower",
        cmap="RdBu_r",
        vmin=limits[0],
        vmax=limits[1],
    )
    ax.set_title(f"{name}, t = {t[-1]:g}", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(im, ax=ax, shrink=0.8)

# sphinx_gallery_thumbnail_number = 2

# %%
# Without a host loop, :meth:`~export.Rollout.rollout` is a generator of the field every
# ``every`` steps (the state stays inside onnxruntime between them, on the GPU with
# ``providers="cuda"``), for one field (X, Y, Z) or a batch (N, 1, X, Y, Z) of independent runs:

fields = [
    ch_numba.initial.perlin(shape, frequency=3, seed=s) for s in (1, 2, 3)
]
batch = net.downscale(np.stack(fields))[:, None]  # (3, 1, 16, 16, 16)
for k, frames in enumerate(net.rollout(batch, steps=40, every=20), start=1):
    print(
        f"after {20 * k} steps: mean φ of each run",
        frames.mean(axis=(1, 2, 3, 4)).round(6),
    )

# %%
# From C, C++ and Fortran
# -----------------------
# ``native/`` is the same runtime for compiled hosts: a C API over onnxruntime's C API
# (``ch3d_embed.h``, one C file built as ``libch3d_embed.so``), a header-only C++ wrapper
# (``ch3d.hpp``) and a Fortran module (``iso_c_binding``). It keeps the hidden states in a handle,
# parses the ``ch3d`` metadata, and refuses bad input with an error code and one line, never an
# exception or an abort across the ABI. Build it, and three example hosts compared with the Python
# runtime (max difference 0 after 20 steps), with:
#
# .. code-block:: bash
#
#     make -C native PYTHON=$PWD/.venv-test/bin/python   # -> build/native/{lib,include,bin}
#     make embed-test
#
# The loop above in C, the field float32 on the network grid in C order (z fastest), a batch of
# ``n``; ``ch3d_step`` updates ``phi`` in place and carries the hidden states:
#
# .. code-block:: c
#
#     #include "ch3d_embed.h"
#
#     ch3d_handle *h;
#     if (ch3d_open("models/crnn.onnx", /*threads=*/1, "cpu", &h) != CH3D_OK) {
#       fprintf(stderr, "%s\n", ch3d_last_error());  /* one line: what was wrong */
#       return 1;
#     }
#     const int64_t nx = 16, ny = 16, nz = 16;          /* the network grid */
#     for (int k = 0; k < n_warm; ++k)                   /* teacher forcing on solver frames */
#       ch3d_step(h, warm + k * nx * ny * nz, 1, nx, ny, nz);
#     for (int k = 0; k < n_steps; ++k) {
#       if (ch3d_step(h, phi, 1, nx, ny, nz) != CH3D_OK) break;  /* one step, in place */
#       /* ... the host reads and changes phi here ... */
#     }
#     printf("t = %g\n", ch3d_steps_done(h) * ch3d_time_per_step(h));
#     ch3d_close(h);
#
# The C++ wrapper closes the handle itself and throws ``ch3d::Error`` (``code()``, ``what()``):
#
# .. code-block:: cpp
#
#     #include "ch3d.hpp"
#
#     ch3d::Model model("models/crnn.onnx", /*threads=*/2, "cpu");  // "auto" | "cpu" | "cuda" | "cuda:N"
#     std::vector<float> phi(16 * 16 * 16, 0.5f);                    // your field
#     model.rollout(phi.data(), 1, 16, 16, 16, 20);                  // 20 steps
#     std::printf("t = %g\n", 20 * model.time_per_step());
#
# Fortran's column-major ``phi(nz, ny, nx)`` is C's (X, Y, Z) field, element for element:
#
# .. code-block:: fortran
#
#     use ch3d_embed
#     if (ch3d_open_f("models/crnn.onnx", 1, "cpu", h) /= CH3D_OK) stop ch3d_error_message()
#     status = ch3d_rollout(h, phi, 1_c_int64_t, int(nx, c_int64_t), int(ny, c_int64_t), &
#                           int(nz, c_int64_t), int(steps, c_int64_t))
#     call ch3d_close(h)
#
# The whole API, the table of bad inputs (shared with the Python runtime), threads, the CUDA
# provider and the halos of a domain-decomposed host (``Rollout.step_halo``, ``ch3d_step_halo``) are
# on the :doc:`/embedding` page; CMake and pkg-config files come with the build.
