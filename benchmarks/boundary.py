"""The explicit CPU kernel on periodic boxes and boxes with no-flux walls (issue 27), timed in rounds.

Voxel updates per second (G = 1e9) of ``Stepper(..., backend="cpu").advance(steps)`` (the fused kernel,
float32 and float64) on a periodic 64³ box, and with walls on z (a film) and on all three axes. Every
entry is the best of ``--repeats`` rounds, the rounds interleaved over the entries (a slow spell of a
shared host then spoils one round of each). To compare the periodic kernel before and after a change,
run this script with ``PYTHONPATH`` pointing at each tree, alternately (``--periodic-only`` runs only
the periodic entries, which older trees without ``CHParams.boundary`` can run too).

Usage:  python benchmarks/boundary.py [--size 64] [--steps 200] [--repeats 5] [--periodic-only]
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np

from ch_numba.params import CHParams
from ch_numba.solver import Stepper


def entries(periodic_only: bool) -> list:
    out = [("periodic", None)]
    if not periodic_only:
        out += [("walls z", ("periodic", "periodic", "neumann")), ("walls xyz", "neumann")]
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--periodic-only", action="store_true")
    a = ap.parse_args(argv)
    shape = (a.size,) * 3
    phi0 = np.clip(0.5 + 0.1 * np.random.default_rng(1).uniform(-1, 1, shape), 0, 1)
    runs = {}
    for name, boundary in entries(a.periodic_only):
        p = CHParams() if boundary is None else CHParams(boundary=boundary)
        for dtype in (np.float32, np.float64):
            st = Stepper(shape, p, "cpu", dtype)
            st.set(phi0.astype(dtype))
            st.advance(2)  # compile / load from the cache
            runs[(name, np.dtype(dtype).name)] = st
    best = {key: np.inf for key in runs}
    for _ in range(a.repeats):
        for key, st in runs.items():
            t = time.perf_counter()
            st.advance(a.steps)
            best[key] = min(best[key], time.perf_counter() - t)
    print(f"{a.size}^3, {a.steps} steps, best of {a.repeats}, {numba.get_num_threads()} threads")
    for (name, dtype), seconds in best.items():
        print(f"  {name:10s} {dtype}: {np.prod(shape) * a.steps / seconds / 1e9:.3f} Gvox/s")


if __name__ == "__main__":
    main()
