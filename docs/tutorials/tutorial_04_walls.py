"""
No-flux walls: a thin film
==========================

Each axis of the box is periodic or bounded by two no-flux walls. A wall lies half a cell outside
the first and last voxel (cell-centred grid) and mirrors φ and μ, so that

.. math::

   \\frac{\\partial\\phi}{\\partial n} = 0, \\qquad \\frac{\\partial\\mu}{\\partial n} = 0

on it: no mass crosses the wall, and the interfaces between the phases meet it at 90° (the free
energy has no wall term). This tutorial puts walls on z, a film of 32 × 32 × 16 voxels, and

1. runs the solver with :class:`ch_numba.CHParams` ``boundary=``;
2. checks the definition: the box with walls evolves exactly as the periodic box twice as high that
   holds the field and its mirror image;
3. rolls the shipped ``crnn`` out on the same film with ``Rollout(..., boundary=...)`` (it was
   trained on periodic boxes only; on a wall axis it pads with the mirror image);
4. looks at how the layers meet the walls, and at the mass.
"""

import matplotlib.pyplot as plt
import numba
import numpy as np

import ch_numba
from export.runtime import Rollout

# the solver's threads (tutorial 1): these grids gain nothing from more
numba.set_num_threads(1)

# %%
# The solver on a film
# --------------------
# ``boundary`` takes one name per axis (``"periodic"`` or ``"neumann"``), or one name for all three;
# the commands take ``--boundary periodic,periodic,neumann`` and ``--size 32,32,16``. The initial
# conditions know the boundary too: Perlin noise is not periodic along a wall axis. The physics is the
# shipped ``crnn``'s (ε = 1.5, 200 steps of dt = 4·10⁻³ per frame); 20 frames of burn-in let the
# phases separate before the comparison starts.

walls = ("periodic", "periodic", "neumann")
params = ch_numba.CHParams(epsilon=1.5, dt=4e-3, boundary=walls)
print(params.boundary)
shape, steps_per_frame, n_frames = (32, 32, 16), 200, 100
phi0 = ch_numba.initial.perlin(
    shape, frequency=3, seed=5, mean=0.5, boundary=walls
)
# 20 frames of burn-in
phi0 = ch_numba.evolve(phi0, steps=20 * steps_per_frame, params=params)

solver = ch_numba.Stepper(shape, params)
solver.set(phi0)
truth = [phi0]
for _ in range(n_frames):
    solver.advance(steps_per_frame)
    truth.append(solver.get())
truth = np.stack(truth)

# %%
# The definition, checked
# -----------------------
# A box of N voxels with walls along an axis evolves as the periodic box of 2N voxels holding
# ``concatenate([phi, phi[::-1]])`` along it, restricted to its first N: the wall is the mirror plane.
# With the explicit scheme the two agree bitwise (in float64; here in float32 to round-off).

# the periodic box 32 x 32 x 32
doubled = np.concatenate([phi0, phi0[:, :, ::-1]], axis=2)
periodic = ch_numba.CHParams(epsilon=1.5, dt=4e-3)
doubled = ch_numba.evolve(doubled, steps=10 * steps_per_frame, params=periodic)
difference = np.abs(doubled[:, :, :16] - truth[10]).max()
print("max |walls - mirrored periodic box| after 10 frames:", difference)

# %%
# The surrogate on the same film
# ------------------------------
# ``Rollout("crnn", boundary=walls)`` gives the ONNX step its ``walls`` input: along z it pads with
# the half-sample mirror instead of wrapping around. ``downscale`` samples every second voxel along
# periodic axes and takes block means along wall axes, so the coarse grid's walls stay where the
# fine grid's are (32 × 32 × 16 → 16 × 16 × 8). The command line does the same
# (``python -m export.rollout crnn --boundary periodic,periodic,neumann ...``).

net = Rollout("crnn", boundary=walls, threads=1)
print(net.boundary)
start = net.downscale(phi0)
pred = np.stack([start, *net.rollout(start, steps=n_frames)])
truth_net = net.downscale(truth)
t = np.arange(n_frames + 1) * net.time_per_step
error = np.sqrt(np.mean((pred[-1] - truth_net[-1]) ** 2))
print(pred.shape, f"RMSE at t = {t[-1]:g}: {error:.3f}")

# %%
# A vertical cut through the film (an x–z plane; the walls are the bottom and top edges) at three
# times, solver and surrogate, with the interface φ = 1/2 drawn. Where an interface reaches a wall
# it stands upright on it.

shown = [0, 30, 100]
fig, axes = plt.subplots(2, 3, figsize=(10, 4), layout="constrained")
for row, (name, frames, n) in enumerate(
    [("solver", truth, 32), ("surrogate", pred, 16)]
):
    for ax, k in zip(axes[row], shown):
        cut = frames[k][:, n // 4, :].T  # (z, x) at y = 8 (solver grid)
        extent = (0, 32, 0, 16)
        ax.imshow(
            cut, origin="lower", cmap="RdBu_r", vmin=0, vmax=1, extent=extent
        )
        x = (np.arange(cut.shape[1]) + 0.5) * 32 / cut.shape[1]
        z = (np.arange(cut.shape[0]) + 0.5) * 16 / cut.shape[0]
        ax.contour(x, z, cut, levels=[0.5], colors="k", linewidths=1)
        ax.axhline(0, color="0.3", lw=4)
        ax.axhline(16, color="0.3", lw=4)
        ax.set_title(f"{name}, t = {t[k]:g}", fontsize=9)
    axes[row, 0].set_ylabel("z")
for ax in axes[1]:
    ax.set_xlabel("x")

# %%
# How the layers meet the walls
# -----------------------------
# The interface's normal is :math:`\nabla\phi/|\nabla\phi|`. Its z component, averaged over the
# interface cells (0.2 < φ < 0.8) of each layer of the film, measures how much the interfaces lie
# along the walls: 1 for interfaces parallel to them, 0 for interfaces standing upright. The
# gradient is taken with the walls' mirror ghosts, as the solver does. In both runs it falls towards
# 0 at the walls (a contact angle of 90°; the first layer of cells is half a cell from the wall, so
# it is small there, not 0), while in the middle of the film the interfaces are tilted every way.


def normal_z(phi):
    """Mean |n_z| of the interface cells of each z layer; mirror ghosts on z, periodic x and y."""
    padded = np.pad(phi, ((1, 1), (1, 1), (0, 0)), mode="wrap")
    # ghost -1 = 0, N = N - 1
    padded = np.pad(padded, ((0, 0), (0, 0), (1, 1)), mode="symmetric")
    gx, gy, gz = (
        np.gradient(padded, axis=a)[1:-1, 1:-1, 1:-1] for a in range(3)
    )
    nz = np.abs(gz) / np.sqrt(gx**2 + gy**2 + gz**2 + 1e-12)
    interface = (phi > 0.2) & (phi < 0.8)
    return np.array(
        [nz[:, :, k][interface[:, :, k]].mean() for k in range(phi.shape[2])]
    )


fig, ax1 = plt.subplots(figsize=(6, 3.4), layout="constrained")
z_true, z_net = np.arange(16) + 0.5, (np.arange(8) + 0.5) * 2
ax1.plot(
    z_true, normal_z(truth[-1]), "ko--", ms=4, label="solver (32 × 32 × 16)"
)
ax1.plot(
    z_net, normal_z(pred[-1]), "C2s-", ms=4, label="surrogate (16 × 16 × 8)"
)
for wall in (0, 16):
    ax1.axvline(wall, color="0.3", lw=4)
ax1.set(
    xlabel="z (walls at 0 and 16)",
    ylabel="mean |n_z| on the interfaces",
    title=f"t = {t[-1]:g}",
)
ax1.set_ylim(0, 1)
ax1.legend(fontsize=8)

# %%
# Mass and free energy
# --------------------
# No mass crosses a wall: the mean φ of both runs stays where it started, the solver's to float32
# round-off, the conservative network's by construction (its flux through a wall is zero). The free
# energy, computed with the wall physics (no gradient term across a wall) on the network grid,
# falls for both.

net_params = ch_numba.CHParams(epsilon=1.5, dx=2.0, boundary=walls)
fig, (ax2, ax3) = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
mass_true = truth.mean(axis=(1, 2, 3), dtype=np.float64)
mass_net = pred.mean(axis=(1, 2, 3), dtype=np.float64)
ax2.plot(t, mass_true - mass_true[0], "k--", label="solver")
ax2.plot(t, mass_net - mass_net[0], "C2", label="surrogate")
ax2.set(xlabel="t", ylabel="mean φ − mean φ(0)", title="mass in the film")
ax2.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
ax2.legend(fontsize=8)
for name, mass in [("solver", mass_true), ("surrogate", mass_net)]:
    print(f"{name}: largest mass drift {np.abs(mass - mass[0]).max():.1e}")

f_true = [ch_numba.free_energy(f, net_params) for f in truth_net]
f_pred = [ch_numba.free_energy(f, net_params) for f in pred]
ax3.plot(t, f_true, "k--", label="solver")
ax3.plot(t, f_pred, "C2", label="surrogate")
ax3.set(
    xlabel="t", ylabel="F / V (network grid)", title="free energy of the film"
)
ax3.legend(fontsize=8)

# sphinx_gallery_thumbnail_number = 1

# %%
# The walls work from data set to rollout: ``generate``, ``simulate``, ``train``, ``evaluate`` and
# the rollout commands take the box from their input; files of boxes with walls record
# ``boundary`` (:doc:`/formats`). The report measures the shipped models on films and closed boxes
# (section 5.8, :doc:`/report`); the commands are in the :doc:`/cli`.
