"""``generate`` against the solver alone, side by side in one run (issue 24 item 3's CPU goal).

Goal: ``generate`` on the ``cpu`` backend at 64³, ``--batch 4``, 400 steps per frame, 2 threads, LZF
storage, reaches ≥ 90 % of the solver-only throughput.

Entries (voxel updates per second, G = 1e9; the work of one run is sequences × (frames − 1) × steps
per frame × L³: frame 0 is the initial condition, no steps):

- ``solver``: the same kernel and steps with no writing: a :class:`ch_numba.solver.Stepper` of
  (batch, L, L, L) advanced ``steps_per_frame`` steps (frames − 1) times per batch of sequences.
- ``generate``: :func:`ch_numba.dataset.generate` in this process, the whole command: initial
  conditions, the per-frame blow-up check, mass and free energy, LZF compression and HDF5 writing
  of the parts, and the merge into one file — with each writer mode the function offers
  (``--writers``: today's serial writing, and the pipeline's writer thread once it exists).

Timing: ``--repeats`` rounds, interleaved over the entries (solver, generate, solver, ...), each
round one full run of each entry. Reported per entry: best, median and worst round; and the ratio
generate / solver of each round (the two runs of a round saw about the same load). The machine may
be shared: the script prints the CPU share other processes used during the run (``--wait-idle``
waits for an idle machine before each round); with others busy the numbers are noisy and the
per-round ratio is the figure to read.

Usage:  python benchmarks/generate_pipeline.py [--size 64] [--batch 4] [--sequences 4] [--frames 10]
        [--steps-per-frame 400] [--threads 2] [--repeats 5] [--wait-idle SECONDS] [--storage lzf]
"""

from __future__ import annotations

import argparse
import inspect
import logging
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

from ch_numba.dataset import DatasetConfig, generate
from ch_numba.params import CHParams
from ch_numba.solver import Stepper

if __package__:  # python -m benchmarks.generate_pipeline
    from ._common import SHARE, Timing, add_wait_idle_option, cpu_model
else:  # python benchmarks/generate_pipeline.py
    from _common import SHARE, Timing, add_wait_idle_option, cpu_model

GOAL = 0.90
G = 1e9


def writer_modes() -> list:
    """The writer modes ``generate`` offers: ``[None]`` (today's serial writing) before the pipeline."""
    if "writers" in inspect.signature(generate).parameters:
        return [0, 1]  # 0: frames written in the solver's thread; 1: one writer thread
    return [None]


def solver_run(cfg: DatasetConfig, batch: int) -> None:
    """The steps ``generate`` takes for cfg, without anything else (no IC, no check, no writing)."""
    rounds = -(-cfg.sequences // batch)
    stepper = Stepper((batch, *cfg.shape), CHParams(), "cpu", cfg.dtype)
    stepper.set(np.full((batch, *cfg.shape), cfg.ic_mean, cfg.dtype) + np.float32(0.01) * _ic(cfg))
    for _ in range(rounds):
        for _ in range(cfg.frames - 1):
            stepper.advance(cfg.steps_per_frame)


def _ic(cfg: DatasetConfig) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.standard_normal(cfg.shape).astype(cfg.dtype)


def components(cfg: DatasetConfig, batch: int, folder: Path, repeats: int) -> dict:
    """Best-of-rounds seconds of the pieces of one frame of the batch: ``step`` (steps_per_frame steps of the
    batch, the solver's threads), ``copy`` (the snapshot: a host copy of the batch) and ``write`` (one
    member's frame through SequenceFile.add: mass, free energy, compression, HDF5; on one Numba thread, as
    in the writer thread) × batch. A shared host spoils single rounds, the best round is the figure."""
    from ch_numba.dataset.writer import SequenceFile

    stepper = Stepper((batch, *cfg.shape), CHParams(), "cpu", cfg.dtype)
    stepper.set(np.full((batch, *cfg.shape), cfg.ic_mean, cfg.dtype) + np.float32(0.01) * _ic(cfg))
    stepper.advance(2000)  # a developed field: compresses as a stored frame does
    phi = stepper._host(list(range(batch)))
    sf = SequenceFile(
        folder / "part.h5", CHParams(), frames=8, steps_per_frame=cfg.steps_per_frame, shape=cfg.shape, backend="cpu"
    )
    threads = numba.get_num_threads()

    def write():
        numba.set_num_threads(1)
        for m in range(batch):
            sf.add(m % 8, phi[m])
        numba.set_num_threads(threads)

    timings = {
        "step": Timing(lambda: stepper.advance(cfg.steps_per_frame), min_seconds=0.1),
        "copy": Timing(lambda: stepper._host(list(range(batch))), min_seconds=0.05),
        "write": Timing(write, min_seconds=0.1),
    }
    for _ in range(repeats):
        for t in timings.values():
            t.round()
    sf.abort()
    return {k: t.best for k, t in timings.items()}


def generate_run(cfg: DatasetConfig, batch: int, folder: Path, writers) -> None:
    out = folder / "bench.h5"
    kwargs = {} if writers is None else {"writers": writers}
    generate(out, cfg, CHParams(), backend="cpu", progress=False, batch=batch, overwrite=True, **kwargs)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--sequences", type=int, default=4)
    p.add_argument("--frames", type=int, default=10)
    p.add_argument("--steps-per-frame", type=int, default=400)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--storage", default="lzf")
    add_wait_idle_option(p)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    numba.set_num_threads(a.threads)
    cfg = DatasetConfig(
        sequences=a.sequences,
        frames=a.frames,
        steps_per_frame=a.steps_per_frame,
        size=a.size,
        storage=a.storage,
        val_fraction=0.0,
    )
    work = cfg.sequences * (cfg.frames - 1) * cfg.steps_per_frame * a.size**3
    folder = Path(tempfile.mkdtemp(prefix="ch3d_bench_"))
    entries = {"solver": lambda: solver_run(cfg, a.batch)}
    for w in writer_modes():
        name = "generate" if w is None else f"generate --writers {w}"
        entries[name] = lambda w=w: generate_run(cfg, a.batch, folder, w)
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cpu_model()}, {platform.python_version()}, "
        f"numba {numba.__version__} ({a.threads} threads), {a.size}^3, batch {a.batch}, {cfg.sequences} sequences "
        f"x {cfg.frames} frames x {cfg.steps_per_frame} steps, {a.storage}"
    )
    SHARE.restart(a.wait_idle)
    try:
        for fn in entries.values():  # warm-up: compilation / cache load, first touch
            fn()
        times = {k: [] for k in entries}
        for r in range(a.repeats):
            for name, fn in entries.items():
                SHARE.wait_idle()
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
            print(f"round {r + 1}: " + ", ".join(f"{k} {work / times[k][-1] / G:.3f}" for k in entries), flush=True)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    print("\n| entry | best G/s | median G/s | worst G/s | generate/solver per round: median (min-max) |")
    print("|---|---|---|---|---|")
    for name, ts in times.items():
        rates = [work / t / G for t in ts]
        ratio = ""
        if name != "solver":
            rs = [s / t for s, t in zip(times["solver"], ts)]
            ratio = f"{statistics.median(rs):.0%} ({min(rs):.0%}-{max(rs):.0%})"
        print(f"| {name} | {max(rates):.3f} | {statistics.median(rates):.3f} | {min(rates):.3f} | {ratio} |")
    c = components(cfg, a.batch, folder, a.repeats)
    host = c["copy"] + c["write"]
    print(
        f"\none frame of the batch, best round: steps {1e3 * c['step']:.1f} ms ({a.threads} threads), snapshot copy "
        f"{1e3 * c['copy']:.2f} ms, write of {a.batch} members {1e3 * c['write']:.1f} ms (1 thread: mass, free energy, "
        f"{a.storage}, HDF5)\nbounds: serial writing {c['step'] / (c['step'] + host):.0%} of solver-only; a writer "
        f"thread on cores the solver's {a.threads} threads keep busy (its CPU time taken from them) "
        f"{c['step'] / (c['step'] + host / a.threads):.0%}; on an idle core 100%"
    )
    shutil.rmtree(folder, ignore_errors=True)
    print(f"\ngoal: generate >= {GOAL:.0%} of solver-only; {SHARE.report()}")


if __name__ == "__main__":
    main()
