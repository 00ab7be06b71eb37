"""Embedding the ONNX surrogate in a host simulation loop: plain numpy, no PyTorch.

The host code owns a field φ on an L³ periodic grid (the ground-truth resolution). It

1. runs the finite-difference solver (ch_numba, Numba CPU) for the first K saved frames, where the
   early spinodal decomposition is fast and the solver is cheap enough;
2. feeds those frames, downscaled to the network's grid, through ``Rollout.step`` one at a time:
   this warms up the surrogate's hidden states on the true trajectory (teacher forcing) and
   measures its one-step error against the solver;
3. hands over: ``Rollout.rollout(..., reset=False)`` continues from the last solver frame with the
   warmed-up hidden states, and the surrogate takes the long tail (M frames, each one saved frame
   = steps_per_frame solver steps), the state staying inside onnxruntime between frames;
4. checks the physics on the way: the mass (mean φ) is conserved, and the free energy F (per
   volume, computed at the network's resolution, grid spacing downscale · dx, for both) is
   continuous at the handover and does not increase over the tail (Cahn-Hilliard flow is a
   gradient flow of F). A failed check is reported; with --strict the exit status is 1.

At the end the script asserts that torch was never imported.

Usage:  python examples/embed_rollout.py MODEL.onnx [--size 64] [--fd-frames 5] [--frames 50]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import numpy as np

import ch_numba
from ch_numba import initial
from export.runtime import PROVIDERS, Rollout


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description="Host loop: FD solver for the first frames, ONNX surrogate for the "
        "long tail, with mass and energy checks (no PyTorch)."
    )
    p.add_argument("model", help="ONNX model written by `python -m export`")
    p.add_argument("--size", type=int, default=64, help="ground-truth grid edge (default %(default)s)")
    p.add_argument("--fd-frames", type=int, default=5, help="saved frames computed by the solver (default %(default)s)")
    p.add_argument(
        "--frames",
        type=int,
        default=50,
        help="frames computed by the surrogate after the handover (default %(default)s)",
    )
    p.add_argument("--seed", type=int, default=7, help="Perlin IC seed (default %(default)s)")
    p.add_argument("--frequency", type=int, default=4, help="Perlin frequency (default %(default)s)")
    p.add_argument("--mean", type=float, default=0.5, help="mean phi of the IC (default %(default)s)")
    p.add_argument("--providers", choices=PROVIDERS, default="auto")
    p.add_argument("--threads", type=int, help="CPU threads of onnxruntime (default: all cores)")
    p.add_argument(
        "--energy-tol",
        type=float,
        default=1e-3,
        help="allowed relative rise of F per frame and jump of F at the handover (default %(default)g)",
    )
    p.add_argument("--mass-tol", type=float, default=1e-5, help="allowed relative mass drift (default %(default)g)")
    p.add_argument("--strict", action="store_true", help="exit with status 1 when a check fails")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if a.fd_frames < 1 or a.frames < 1:
        p.error("--fd-frames and --frames must be >= 1")

    # -- the surrogate and the physics it was trained on --------------------------------------
    net = Rollout(a.model, providers=a.providers, threads=a.threads)
    meta = net.metadata
    params = ch_numba.CHParams.from_metadata(meta)  # the training data's physics and scheme
    coarse = ch_numba.CHParams.from_metadata(meta, dx=params.dx * net.factor)  # F on the network's grid
    spf = int(meta["steps_per_frame"])
    print(
        f"model: {net}\nphysics: eps={params.epsilon:g} M={params.mobility:g} W={params.W:g} dx={params.dx:g} "
        f"dt={params.dt:g}; one frame = {spf} solver steps = t {net.time_per_step:g}"
    )

    # -- 1. the host's own solver for the first frames ----------------------------------------
    shape = (a.size,) * 3
    phi = initial.perlin(shape, frequency=a.frequency, seed=a.seed, mean=a.mean)
    warm = ch_numba.Stepper((8, 8, 8), params, "cpu")  # compile the Numba kernels outside the timing
    warm.set(np.full((8, 8, 8), 0.5, np.float32))
    warm.advance(2)
    solver = ch_numba.Stepper(shape, params, "cpu")
    solver.set(phi)
    truth = [phi]
    t0 = time.perf_counter()
    for _ in range(a.fd_frames):
        solver.advance(spf)
        truth.append(solver.get("host solver"))
    t_fd = (time.perf_counter() - t0) / a.fd_frames
    rows = []  # (frame, who, F, mass, one-step RMSE)
    for k, field in enumerate(truth):
        small = net.downscale(field)
        rows.append((k, "solver", ch_numba.free_energy(small, coarse), float(np.mean(small, dtype=np.float64)), None))

    # -- 2. warm the surrogate up on the solver frames (teacher forcing) ------------------------
    net.reset()
    for k in range(a.fd_frames):
        pred = net.step(net.downscale(truth[k]))
        err = float(np.sqrt(np.mean((pred.astype(np.float64) - net.downscale(truth[k + 1])) ** 2)))
        rows[k + 1] = rows[k + 1][:4] + (err,)

    # -- 3. handover: the surrogate takes the long tail ----------------------------------------
    t0 = time.perf_counter()
    start = net.downscale(truth[-1])
    for k, field in enumerate(net.rollout(start, a.frames, every=1, reset=False), start=a.fd_frames + 1):
        rows.append(
            (k, "surrogate", ch_numba.free_energy(field, coarse), float(np.mean(field, dtype=np.float64)), None)
        )
    t_net = (time.perf_counter() - t0) / a.frames

    print(f"\n{'frame':>5s} {'t':>9s} {'by':>9s} {'F (network grid)':>17s} {'mean phi':>10s} {'1-step RMSE':>12s}")
    for k, who, energy, mass, err in rows:
        shown = f"{err:12.3e}" if err is not None else " " * 12
        print(f"{k:5d} {k * net.time_per_step:9.4g} {who:>9s} {energy:17.6g} {mass:10.6f} {shown}")

    # -- 4. checks ---------------------------------------------------------------------------
    energies = np.array([r[2] for r in rows])
    masses = np.array([r[3] for r in rows])
    tail = energies[a.fd_frames :]  # last solver frame, then the surrogate's
    rise = float(np.max(np.diff(tail) / np.abs(tail[:-1]))) if len(tail) > 1 else 0.0
    jump = abs(energies[a.fd_frames + 1] - energies[a.fd_frames]) / abs(energies[a.fd_frames])
    drift = float(np.max(np.abs(masses - masses[0])) / abs(masses[0]))
    checks = [
        (f"mass conserved: max relative drift {drift:.2e} <= {a.mass_tol:g}", drift <= a.mass_tol),
        (
            f"F continuous at the handover: relative change {jump:.2e} in one frame <= {max(a.energy_tol, 0.05):g}",
            jump <= max(a.energy_tol, 0.05),
        ),
        (
            f"F non-increasing over the surrogate's tail: max relative rise per frame {rise:+.2e} <= {a.energy_tol:g}",
            rise <= a.energy_tol,
        ),
    ]
    print(
        f"\ncost per saved frame: solver {t_fd * 1e3:.1f} ms at {a.size}^3, surrogate {t_net * 1e3:.1f} ms at "
        f"{'x'.join(map(str, start.shape))} (x{t_fd / t_net:.1f})"
    )
    for text, ok in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {text}")
    failed = not all(ok for _, ok in checks)
    if failed:
        print(
            "(an untrained or out-of-regime model fails the energy checks: the surrogate's F must decrease like "
            "the solver's)"
        )
    assert "torch" not in sys.modules, "torch was imported by the embedding path"
    print("torch imported: no")
    return 1 if failed and a.strict else 0


if __name__ == "__main__":
    sys.exit(main())
