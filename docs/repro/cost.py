"""The cost experiment: seconds per network step against voxels (onnxruntime CPU) and the
speed-up over the solvers (explicit, and spectral at matched accuracy) to the same time."""

from __future__ import annotations

import time

import numpy as np

import ch_numba
from ch_numba import initial
from ch_numba.render import new_figure  # a Figure on the Agg canvas, no pyplot

from .schemes import spectral_frame


def exp_cost(ctx) -> dict:
    """Step time vs voxels (onnxruntime CPU) and the speed-up over the solvers (explicit, spectral) at equal time."""
    runner_threads = None
    rows = []
    p, spf = ctx.explicit()  # the data set's explicit step, or one at 0.7 of the bound if it was spectral
    q, q_steps = spectral_frame(p, spf * p.dt)
    z = ctx.sizes.cost
    for n in z.grids:
        runner = ctx.runner(ctx.model, threads=runner_threads)
        x = initial.perlin((n,) * 3, frequency=2, seed=z.seed).astype(np.float32)
        reps = max(3, int(2e6 / n**3))
        list(runner.rollout(x, 2))  # warm-up
        t0 = time.perf_counter()
        list(runner.rollout(x, reps, every=reps))
        step = (time.perf_counter() - t0) / reps
        full = initial.perlin((n * ctx.factor,) * 3, frequency=2, seed=z.seed).astype(np.float32)
        ch_numba.evolve(full, steps=spf // 10, params=p, backend="cpu")  # warm-up (compilation)
        t0 = time.perf_counter()
        ch_numba.evolve(full, steps=spf, params=p, backend="cpu")
        solver = time.perf_counter() - t0
        spectral = ch_numba.Stepper(full.shape, q, "cpu")
        spectral.set(full)
        spectral.advance(2)  # warm-up (compilation, FFT plans)
        t0 = time.perf_counter()
        spectral.advance(10 * q_steps)
        spectral_s = (time.perf_counter() - t0) / 10
        rows.append(
            {
                "network_grid": n,
                "voxels": n**3,
                "seconds_per_step": step,
                "ns_per_voxel": 1e9 * step / n**3,
                "solver_grid": n * ctx.factor,
                "solver_seconds_per_frame": solver,
                "speedup": solver / step,
                "spectral_seconds_per_frame": spectral_s,
                "speedup_vs_spectral": spectral_s / step,
            }
        )
    vox = np.array([r["voxels"] for r in rows], float)
    sec = np.array([r["seconds_per_step"] for r in rows])
    slope = float(np.polyfit(np.log(vox), np.log(sec), 1)[0])
    fig = new_figure(figsize=(5, 3.6))
    ax = fig.subplots()
    ax.loglog(vox, sec, "o-", label=f"CRNN step (onnxruntime CPU), slope {slope:.2f}")
    solver = [r["solver_seconds_per_frame"] for r in rows]
    ax.loglog(vox, solver, "s-", label=f"explicit solver, {spf} steps at {ctx.factor}x the grid")
    ax.loglog(
        vox,
        [r["spectral_seconds_per_frame"] for r in rows],
        "^-",
        label=f"spectral solver (SBDF2), {q_steps} step(s) of dt {q.dt:g}",
    )
    ax.set_xlabel("network voxels")
    ax.set_ylabel("seconds per frame")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(ctx.figures / "cost_per_step.png", dpi=110)
    return {
        "rows": rows,
        "loglog_slope": slope,
        "threads": runner_threads or "all cores",
        "spectral": {"dt": q.dt, "steps_per_frame": q_steps, "order": q.order},
    }
