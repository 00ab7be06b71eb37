"""A domain-decomposed host: the periodic box split along x over MPI ranks, one halo exchange per step.

Each rank owns a slab of X/size network cells along x (the whole of y and z) with its own φ, h1, h2.
Before every step it sends the ``halo`` outer x-planes of all three to its two neighbours (periodic),
receives theirs into its ghost layers, wraps y and z itself, and calls ``Rollout.step_halo`` (stateless:
the interiors of φ′, h1′, h2′ come back). No mean is exchanged (docs/embedding.md, "Halos"). Rank 0 then
gathers φ and compares it with the whole-box rollout: max |diff| ≤ 2e-6 (exit status 1 otherwise),
and the mass of a conservative model.

Usage:  mpiexec -n 2 python examples/mpi_halo.py MODEL.onnx [--size 24] [--steps 20]
(MPICH and mpi4py from PyPI: ``pip install mpich mpi4py``; each rank runs on one thread.)
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from mpi4py import MPI

from export.runtime import Rollout


def exchange(comm, local, g):
    """``local`` (C, x, Y, Z) with g ghost x-planes from the left and right neighbours (periodic ranks),
    then y and z wrapped here: (C, x + 2g, Y + 2g, Z + 2g)."""
    rank, size = comm.Get_rank(), comm.Get_size()
    left, right = (rank - 1) % size, (rank + 1) % size
    from_right = np.empty_like(local[:, :g])
    from_left = np.empty_like(local[:, :g])
    comm.Sendrecv(np.ascontiguousarray(local[:, :g]), dest=left, recvbuf=from_right, source=right)
    comm.Sendrecv(np.ascontiguousarray(local[:, -g:]), dest=right, recvbuf=from_left, source=left)
    ext = np.concatenate([from_left, local, from_right], axis=1)
    return np.pad(ext, ((0, 0), (0, 0), (g, g), (g, g)), mode="wrap")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Domain-decomposed rollout over MPI ranks with halo exchange.")
    p.add_argument("model")
    p.add_argument("--size", type=int, default=24, help="network grid edge of the periodic box (default 24)")
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args(argv)
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    r = Rollout(args.model, providers="cpu", threads=1)  # threads = cores per rank
    g, hidden, n = r.halo, r.hidden_channels, args.size
    if n % size or n // size < g:
        raise SystemExit(f"{n} network cells do not split into {size} slabs of at least the halo {g}")
    nx = n // size
    phi0 = None
    if rank == 0:
        rng = np.random.default_rng(5)
        phi0 = np.clip(0.5 + rng.standard_normal((n, n, n)), 0, 1).astype(np.float32)
    phi0 = comm.bcast(phi0, root=0)
    # this rank's state: channels 0 (φ), 1..H (h1), H+1..2H (h2) of its slab; hidden states start at zero
    state = np.zeros((1 + 2 * hidden, nx, n, n), np.float32)
    state[0] = phi0[rank * nx : (rank + 1) * nx]
    for _ in range(args.steps):
        ext = exchange(comm, state, g)
        phi, h1, h2 = r.step_halo(ext[:1], ext[1 : 1 + hidden], ext[1 + hidden :])
        state = np.concatenate([phi, h1, h2])  # phi (1, x, Y, Z): the (C, X, Y, Z) layout in, out
    slabs = comm.gather(state[0], root=0)
    if rank != 0:
        return 0
    split = np.concatenate(slabs, axis=0)
    whole = list(r.rollout(phi0, steps=args.steps, every=args.steps))[-1]
    diff = float(np.abs(split - whole).max())
    mass = abs(split.mean(dtype=np.float64) - phi0.mean(dtype=np.float64))
    print(f"{size} ranks, {n}^3 network grid, halo {g}, {args.steps} steps: max |diff| from the whole box {diff:.2e}")
    print(f"mean phi {phi0.mean(dtype=np.float64):.7f} -> {split.mean(dtype=np.float64):.7f}")
    ok = diff <= 2e-6 and (mass <= 1e-5 or not r.metadata["conservative"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
