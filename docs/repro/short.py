"""Short rollouts of the shipped models, no solver: the fixed check rollout that the tests
recompute (F on both grids and the mass every 10 steps), and the ablation (conservative vs
non-conservative model: mass over 10⁴ float32 steps from the same ICs)."""

from __future__ import annotations

import numpy as np

from ch_numba import initial
from ch_numba.render import new_figure  # a Figure on the Agg canvas, no pyplot
from export.runtime.resample import downsample, upsample
from surrogate import metrics

from .common import params_of
from .table import SIZES, Check


def check_rollout(runner, grid: int, factor: int, params, sizes: Check = SIZES.check) -> dict:
    """The fixed short rollout that tests/test_shipped_model.py recomputes: Perlin IC (seed 99),
    100 network steps; every 10 steps F at full resolution (``free_energy``, the prediction
    upsampled: it carries the upsampling floor and rises as sharp blocky interfaces form), F on the
    network grid (``free_energy_network``, spacing factor·dx: the fair one) and the mass."""
    ic = initial.perlin((grid,) * 3, frequency=3, seed=sizes.seed, mean=0.5, amplitude=0.1).astype(np.float32)
    x0 = downsample(ic, factor)
    frames = np.stack([x0, *runner.rollout(x0, sizes.steps, every=sizes.every)])
    return {
        "steps": sizes.steps,
        "every": sizes.every,
        "free_energy": metrics.free_energy_series(upsample(frames, factor), params),
        "free_energy_network": metrics.free_energy_series(frames, metrics.network_params(params, factor)),
        "mass": frames.reshape(len(frames), -1).astype(np.float64).mean(axis=1),
    }


def exp_check(ctx) -> dict:
    """A fixed 100-step rollout (F and mass every 10 steps) that the tests recompute."""
    res = check_rollout(ctx.runner(ctx.model), ctx.grid, ctx.factor, params_of(ctx.meta), ctx.sizes.check)
    res["mass_drift"] = float(np.max(np.abs(res["mass"] - res["mass"][0])) / res["mass"][0])
    return res


def exp_ablation(ctx) -> dict:
    """Conservative vs non-conservative model: mass over 10⁴ float32 steps from the same ICs."""
    if not ctx.ablation:
        return {"skipped": "no --ablation model"}
    z = ctx.sizes.ablation
    steps, every = z.steps, z.every
    out, curves = {}, {}
    ics = [
        initial.perlin((ctx.grid,) * 3, frequency=f, seed=s, mean=m, amplitude=0.1).astype(np.float32)
        for f, s, m in z.ics
    ]
    for label, path in (("conservative", ctx.model), ("non_conservative", ctx.ablation)):
        runner = ctx.runner(path)
        drifts, series = [], []
        for ic in ics:
            x0 = ic[:: ctx.factor, :: ctx.factor, :: ctx.factor]
            m0 = float(x0.astype(np.float64).mean())
            means = [m0] + [float(f.astype(np.float64).mean()) for f in runner.rollout(x0, steps, every=every)]
            rel = np.abs(np.array(means) - m0) / m0
            drifts.append(float(rel.max()))
            series.append(rel)
        out[label] = {"mass_drift_max": max(drifts), "mass_drift_per_ic": drifts}
        curves[label] = np.mean(series, axis=0)
    fig = new_figure(figsize=(5, 3.6))
    ax = fig.subplots()
    n = np.arange(len(curves["conservative"])) * every
    for label, c in curves.items():
        ax.semilogy(n[1:], np.maximum(c[1:], 1e-12), label=label.replace("_", "-"))
    ax.set_xlabel("network steps")
    ax.set_ylabel("|Δ mean φ| / mean φ")
    ax.legend()
    fig.tight_layout()
    fig.savefig(ctx.figures / "ablation_mass.png", dpi=110)
    return {"steps": steps, **out}
