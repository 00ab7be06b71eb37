"""
Generate a data set
===================

The solver, ``ch_numba``, is the ground truth of everything else in ch3d: it integrates the
Cahn-Hilliard equation

.. math::

   \\frac{\\partial\\phi}{\\partial t} = M\\,\\nabla^2\\mu, \\qquad
   \\mu = f'(\\phi) - \\varepsilon^2\\nabla^2\\phi, \\qquad f(\\phi) = W\\phi^2(1-\\phi)^2,

on a periodic grid, and writes the sequences of frames the surrogate learns from. This tutorial
runs it twice on a tiny grid (24³, a few seconds):

1. from Python, with :class:`ch_numba.CHParams`, an initial condition from ``ch_numba.initial``,
   :func:`ch_numba.evolve` and :class:`ch_numba.Stepper`;
2. as the command ``python -m ch_numba generate``, which writes a training data set (HDF5), read
   back with :func:`ch_numba.open_dataset`.

The physics is the one of the shipped model ``crnn`` (ε = 1.5, dt = 4·10⁻³, 200 solver steps =
0.8 time units per stored frame), so the data of this page could be fed to it (the next tutorials
do). Everything is written into a temporary folder.
"""

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

work = Path(tempfile.mkdtemp(prefix="ch3d_tutorial_"))
# the solver's CPU threads (the commands' --threads): a 24³ grid gains nothing from more, and on a
# machine where another job runs, threads on every core slow Numba's kernels down several-fold
numba.set_num_threads(1)

# %%
# The physics and an initial condition
# ------------------------------------
# :class:`ch_numba.CHParams` holds the physics (ε, M, W, dx) and the time integrator (explicit Euler
# by default). It is validated when made: an explicit ``dt`` above the stability bound is refused,
# with the bound in the message.

params = ch_numba.CHParams(epsilon=1.5, mobility=1.0, W=1.0, dx=1.0, dt=4e-3)
print(params)
print(f"stable explicit dt < {params.stable_dt():.4g}")

try:
    ch_numba.CHParams(epsilon=1.5, dt=0.05)
except ValueError as error:
    print("refused:", error)

# %%
# The paper's initial conditions are Perlin noise around a mean φ (the mass). Every IC is seeded,
# so the same call gives the same field.

phi0 = ch_numba.initial.perlin(
    (24, 24, 24), frequency=3, seed=7, mean=0.5, amplitude=0.1
)
print(phi0.shape, phi0.dtype, f"mean {phi0.mean():.4f}")
print(f"range [{phi0.min():.3f}, {phi0.max():.3f}]")

# %%
# Evolve it
# ---------
# :func:`ch_numba.evolve` returns the field after ``steps`` solver steps (a new array; the CPU
# kernel is compiled by Numba on first use and cached). :class:`ch_numba.Stepper` keeps the state
# between calls, which is what a loop over frames wants: here 60 frames of 200 steps each, with the
# free energy per volume (:func:`ch_numba.free_energy`) and the mass of every frame.

phi_after = ch_numba.evolve(phi0, steps=200, params=params, backend="cpu")
print(f"after 200 steps: max |change| {np.abs(phi_after - phi0).max():.3g}")

steps_per_frame, n_frames = 200, 60
stepper = ch_numba.Stepper(phi0.shape, params, backend="cpu")
stepper.set(phi0)
frames = [phi0]
energy = [ch_numba.free_energy(phi0, params)]
mass = [phi0.mean(dtype=np.float64)]
for _ in range(n_frames):
    stepper.advance(steps_per_frame)
    phi = stepper.get()
    frames.append(phi)
    energy.append(ch_numba.free_energy(phi, params))
    mass.append(phi.mean(dtype=np.float64))
t = np.arange(n_frames + 1) * steps_per_frame * params.dt

# %%
# Spinodal decomposition, then coarsening: the Perlin noise separates into the two phases
# (φ = 0 and φ = 1), whose domains then grow. The free energy falls monotonically; the mass stays at
# its initial value to float32 round-off (the scheme conserves it exactly in exact arithmetic).

shown = [0, 10, 25, 60]
fig, axes = plt.subplots(1, len(shown), figsize=(10, 2.9), layout="constrained")
for ax, k in zip(axes, shown):
    im = ax.imshow(
        frames[k][:, :, 12].T, origin="lower", cmap="RdBu_r", vmin=0, vmax=1
    )
    ax.set_title(f"t = {t[k]:g}")
    ax.set_xlabel("x")
axes[0].set_ylabel("y")
fig.colorbar(im, ax=axes, label="φ (slice z = 12)", shrink=0.9)

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.2), layout="constrained")
ax1.plot(t, energy, "o-", ms=3)
ax1.set(xlabel="t", ylabel="F / V", title="free energy per volume")
ax2.plot(t, np.array(mass) - mass[0], "o-", ms=3)
ax2.set(
    xlabel="t", ylabel="mean φ − mean φ(0)", title="mass (float32 round-off)"
)
ax2.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))

# %%
# A data set with ``python -m ch_numba generate``
# -----------------------------------------------
# A training data set is many such sequences, each from its own seeded Perlin IC (mean φ drawn
# around 0.5), after a random number of unstored *burn-in* frames so that the data cover early and
# later states. The command is resumable (finished sequences are kept in ``OUT.h5.parts/``) and can
# be split over processes (``--shard``). Here: 2 sequences of 25 frames at 24³, each after 0 to 40
# burn-in frames. The helper below runs a command with this interpreter (``sys.executable``) in the
# temporary folder and prints what it says; ``PYTHONPATH`` points at the ch3d this page imported, so
# a source checkout works too.


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


run(
    "ch_numba generate data.h5 --sequences 2 --frames 25 --size 24"
    " --epsilon 1.5 --dt 4e-3 --steps-per-frame 200"
    " --burn-in-frames 40 --val-fraction 0.5 --seed 1"
    " --backend cpu --threads 1"
)
run("ch_numba info data.h5")

# %%
# Read it back
# ------------
# :func:`ch_numba.open_dataset` is a lazy reader: ``ds.phi`` is indexed like an array of shape
# (sequences, frames, X, Y, Z) and reads only what you ask for; the small per-sequence and per-frame
# arrays (split, seed, burn-in, free energy, mass, time) and the physics (``ds.params``, a
# :class:`~ch_numba.CHParams`) come with it.

with ch_numba.open_dataset(work / "data.h5") as ds:
    print(ds.phi.shape, ds.params)
    print("split", ds.split[:].tolist(), "seed", ds.seed[:].tolist())
    print("burn-in frames", ds.burn_in[:].tolist())
    print("IC of sequence 0:", ds.ic[0])
    last = ds.n_frames - 1
    slices = {
        (s, k): ds.phi[s, k][:, :, 12]
        for s in range(ds.n_sequences)
        for k in (0, last)
    }
    time = ds.time[:]  # time of each frame since frame 0
    t0 = ds.t0[:]  # time of frame 0 since the IC (the burn-in)
    free_energy, phi_mean = ds.free_energy[:], ds.phi_mean[:]

fig, axes = plt.subplots(2, 2, figsize=(6.4, 6), layout="constrained")
for (s, k), ax in zip(slices, axes.flat):
    ax.imshow(slices[s, k].T, origin="lower", cmap="RdBu_r", vmin=0, vmax=1)
    ax.set_title(
        f"sequence {s}, frame {k} (t = {t0[s] + time[k]:g})", fontsize=9
    )
    ax.set_xticks([])
    ax.set_yticks([])

# sphinx_gallery_thumbnail_number = 3

# %%
# The stored free energy and mass of every frame (computed by the solver in float64, before any
# lossy storage), against the time since the initial condition: the two sequences start after
# different burn-ins, so they sit at different places on the coarsening curve.

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.2), layout="constrained")
for s in range(len(t0)):
    ax1.plot(t0[s] + time, free_energy[s], "o-", ms=3, label=f"sequence {s}")
    drift = phi_mean[s] - phi_mean[s, 0]
    ax2.plot(t0[s] + time, drift, "o-", ms=3, label=f"sequence {s}")
ax1.set(xlabel="time since the IC", ylabel="F / V", title="free_energy")
ax2.set(
    xlabel="time since the IC",
    ylabel="drift of mean φ",
    title="phi_mean − phi_mean[:, 0]",
)
ax2.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
ax1.legend()

# %%
# The file
# --------
# The data set is plain HDF5 (any reader opens it: h5py, xarray with ``engine="h5netcdf"``):
#
# ============================== ============================ =====================================
# dataset                        shape                        meaning
# ============================== ============================ =====================================
# ``phi``                        (S, F, X, Y, Z) float32      the frames, one chunk per frame
# ``seed``, ``ic``               (S,)                         IC seed and IC parameters (JSON)
# ``burn_in``, ``t0``            (S,)                         unstored frames before frame 0, time
# ``split``                      (S,)                         ``train`` or ``val``
# ``phi_mean``, ``free_energy``  (S, F) float64               mass and F per volume of each frame
# ``time``                       (F,)                         time of each frame since frame 0
# ============================== ============================ =====================================
#
# The physics and provenance are root attributes (``epsilon``, ``dt``, ``steps_per_frame``,
# ``command``, ``config``, ...), and the axes carry HDF5 dimension scales (``sequence``, ``frame``,
# ``x``, ``y``, ``z``). The whole layout, including files of boxes with walls and the rollouts of the
# surrogate (the same layout), is on the :doc:`/formats` page; every option of ``generate`` is in the
# :doc:`/cli`.

import h5py  # noqa: E402

with h5py.File(work / "data.h5") as f:
    print({name: f[name].shape for name in f})
    print("attributes:", sorted(f.attrs))
    print("phi's dimension scales:", [dim[0].name for dim in f["phi"].dims])

# %%
# Clean up the temporary folder.

import shutil  # noqa: E402

shutil.rmtree(work)
