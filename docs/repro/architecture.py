"""The architecture experiment: the paper's unconstrained CRNN and the cube-equivariant one side by
side — long free rollouts from the probe's Perlin ICs (range, stationarity, rises of F), the
flat-layer drift probe, held-out errors and the interleaved step timing, each model's rollouts in
its own process and cached in ``--work`` under a hash of its trained weights."""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from ch_numba import initial
from ch_numba.files import json_safe  # the project's one JSON sanitiser (NaN -> null)
from ch_numba.render import new_figure  # a Figure on the Agg canvas, no pyplot
from ch_numba.solver import PHYSICAL_RANGE
from export.runtime.resample import downsample
from surrogate import metrics

from .common import ROOT, params_of
from .table import SIZES, Architecture

F_RISE_TOL = 1e-6  # relative step-to-step rise of F counted as a rise (float32 round-off is ~1e-7)


def architecture_label(meta: dict) -> str:
    return "equivariant" if meta.get("equivariant") else "unconstrained"


def weights_key(meta: dict) -> str:
    """A short hash of the training record in a model's metadata (command, epoch, validation loss,
    parameters): it names the trained weights, whatever the file is called, for the cache of the
    long rollouts of :func:`architecture_rollouts` in ``--work``."""
    import hashlib

    train = meta.get("train", {})
    rec = json.dumps(
        [
            train.get("command"),
            train.get("epoch"),
            train.get("best_val_loss"),
            meta.get("param_count"),
            meta.get("equivariant", False),
        ],
        sort_keys=True,
    )
    return hashlib.sha256(rec.encode()).hexdigest()[:12]


def architecture_rollouts(path: str, sizes: Architecture = SIZES.architecture) -> dict:
    """One model's long-time behaviour (run in its own process, one thread).

    * From the probe's three Perlin ICs (network grid, ``sizes.seeds``), ``sizes.steps`` free steps: the
      first step with φ outside the physical range, and over the last ``sizes.tail`` steps
      :func:`surrogate.metrics.stationarity` (rms change plain and up to a periodic shift, layered
      fraction, interface velocity); the network-grid free energy F_n after every step, and the
      steps where it rises, F_{n+1} − F_n > ``F_RISE_TOL`` |F_n| (a gradient flow never rises).
    * The flat-layer drift probe (:func:`probe_stability.probe_layers`: mirror, offset by 0.3 cells,
      unequal 40/60; normal to x, y, z), ``sizes.layer_steps`` steps each.
    """
    z = sizes
    sys.path.insert(0, str(ROOT / "docs"))
    from probe_stability import probe_layers

    from export.runtime import Rollout

    runner = Rollout(path, providers="cpu", threads=1)
    meta, f = runner.metadata, runner.factor
    grid = int(meta["train_grid"])
    p = params_of(meta)
    net_p = metrics.network_params(p, f)
    ics = np.stack(
        [
            downsample(initial.perlin((grid,) * 3, frequency=3, seed=s, mean=0.5, amplitude=0.1).astype(np.float32), f)
            for s in z.seeds
        ]
    )
    n_ic = len(z.seeds)

    t0 = time.perf_counter()
    F, frames, first_bad = [metrics.free_energy_series(ics, net_p)], [ics], [None] * n_ic
    for k, phi in enumerate(runner.rollout(ics[:, None], z.steps), 1):
        phi = phi[:, 0]
        F.append(metrics.free_energy_series(phi, net_p))
        if k % z.every == 0:
            frames.append(np.array(phi, dtype=np.float32))
            for i in range(n_ic):
                lo, hi = float(phi[i].min()), float(phi[i].max())
                if first_bad[i] is None and not (PHYSICAL_RANGE[0] <= lo and hi <= PHYSICAL_RANGE[1]):
                    first_bad[i] = k
    seconds_perlin = time.perf_counter() - t0
    F, frames = np.array(F), np.stack(frames)  # (steps + 1, n_ic), (checks + 1, n_ic, n, n, n)
    rise = np.diff(F, axis=0) / np.abs(F[:-1])
    perlin = []
    for i, seed in enumerate(z.seeds):
        st = metrics.stationarity(frames[:, i], z.every, tail_steps=z.tail)
        perlin.append(
            {
                "seed": seed,
                "first_step_out_of_range": first_bad[i],
                "phi_min": float(frames[-1, i].min()),
                "phi_max": float(frames[-1, i].max()),
                "rms_change_last_10000_steps": st["rms_change"],
                "rms_change_last_10000_steps_up_to_translation": st["rms_change_up_to_translation"],
                "translation": st["translation"],
                "layered_fraction": st["layered_fraction"],
                "interface_velocity_per_1e4_steps": st["interface_velocity"],
                "F_first": float(F[0, i]),
                "F_final": float(F[-1, i]),
                "F_rising_steps": int(np.sum(rise[:, i] > F_RISE_TOL)),
                "F_max_relative_rise": float(np.max(rise[:, i])),
                "F_curve_every_250": F[:: z.every, i].tolist(),
            }
        )
    t0 = time.perf_counter()
    layers = [
        {k: v for k, v in probe_layers(runner, axis, variant, z.layer_steps).items() if k != "drift_curve"}
        for variant in ("mirror", "offset", "unequal")
        for axis in range(3)
    ]
    return {
        "path": str(path),
        "label": architecture_label(meta),
        "param_count": meta.get("param_count"),
        "train": {k: meta.get("train", {}).get(k) for k in ("command", "epoch", "best_val_loss")},
        "perlin": perlin,
        "layers": layers,
        "steps": z.steps,
        "layer_steps": z.layer_steps,
        "seconds_perlin": seconds_perlin,
        "seconds_layers": time.perf_counter() - t0,
    }


def step_costs(paths: list, grids=(16, 32), reps: int = 7, steps: int = 100, seed: int = 5) -> dict:
    """Seconds per network step (onnxruntime CPU, one thread, batch 1), the models interleaved:
    per model and grid the median and range over ``reps`` repeats of ``steps`` steps."""
    from export.runtime import Rollout

    runners = [Rollout(q, providers="cpu", threads=1) for q in paths]
    out = {}
    for n in grids:
        x = initial.perlin((n,) * 3, frequency=2, seed=seed, mean=0.5, amplitude=0.1).astype(np.float32)
        times = [[] for _ in runners]
        for r in runners:
            list(r.rollout(x, 5, every=5))  # warm-up
        for _ in range(reps):
            for j, r in enumerate(runners):
                t0 = time.perf_counter()
                list(r.rollout(x, steps, every=steps))
                times[j].append((time.perf_counter() - t0) / steps)
        out[n] = [{"median": float(np.median(t)), "min": float(np.min(t)), "max": float(np.max(t))} for t in times]
    return out


def exp_architecture(ctx) -> dict:
    """The paper's unconstrained CRNN and the cube-equivariant one side by side (--model, --other)."""
    import concurrent.futures
    import multiprocessing

    if not ctx.other:
        return {"skipped": "no --other model"}
    z = ctx.sizes.architecture
    paths = [ctx.model, ctx.other]
    metas = [ctx.runner(q).metadata for q in paths]
    labels = [architecture_label(m) for m in metas]
    if len(set(labels)) != 2:
        raise SystemExit(f"error: --model and --other are both {labels[0]}: give one of each architecture")
    caches = [ctx.work / f"architecture_{weights_key(m)}.json" for m in metas]
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [
            None if c.exists() else pool.submit(architecture_rollouts, str(q), ctx.sizes.architecture)
            for q, c in zip(paths, caches)
        ]
        heldout = ctx.truth_file("heldout")
        held = (
            {lab: ctx.evaluate(q, heldout, f"architecture_{lab}", "--split", "all") for lab, q in zip(labels, paths)}
            if heldout.exists()
            else {}
        )
        runs = []
        for q, c, fut in zip(paths, caches, futures):
            if fut is None:
                runs.append(json.loads(c.read_text()))
                print(f"{q}: rollouts reused from {c}", flush=True)
            else:
                runs.append(fut.result())
                c.write_text(json.dumps(json_safe(runs[-1])))
            runs[-1]["path"] = str(q)
    costs = step_costs(paths, z.cost_grids, z.cost_reps, z.cost_steps, z.cost_seed)
    out = {"models": {}}
    for j, (lab, run) in enumerate(zip(labels, runs)):
        ev = held.get(lab)
        if ev:
            sc = ev["ensemble"]["scalars"]
            run["heldout"] = {
                "n_sequences": ev["ensemble"]["n_sequences"],
                "F_rel_error_network_max_per_sequence": sc["free_energy_rel_error_network_max"],
                "F_rel_error_network_of_mean_max": float(
                    np.nanmax(ev["ensemble"]["free_energy_mean_rel_error_network"])
                ),
                "rmse_network_final": sc["rmse_network_final"],
                "rmse_full_final": sc["rmse_full_final"],
                "delta_max": sc["delta_max"],
            }
        run["seconds_per_step"] = {str(n): c[j] for n, c in costs.items()}
        out["models"][lab] = run
    fig = new_figure(figsize=(9, 3.4))
    ax0, ax1 = fig.subplots(1, 2)
    for lab, run in out["models"].items():
        style = "-" if lab == "equivariant" else "--"
        for k, pr in enumerate(run["perlin"]):
            n = np.arange(len(pr["F_curve_every_250"])) * z.every
            ax0.loglog(n[1:], pr["F_curve_every_250"][1:], style, color=f"C{k}", label=f"{lab}" if k == 0 else None)
        drift = [abs(r["drift"]) for r in run["layers"]]
        ax1.semilogy(np.arange(len(drift)), np.maximum(drift, 1e-7), "o" + style, label=lab)
    ax0.set_xlabel("network steps")
    ax0.set_ylabel("F / V (network grid)")
    ax0.set_title(f"3 Perlin ICs, {z.steps} steps", fontsize=9)
    ax0.legend(fontsize=8)
    ax1.set_xticks(range(9))
    ax1.set_xticklabels([f"{v[0]}{'xyz'[a]}" for v in ("mirror", "offset", "unequal") for a in range(3)], fontsize=8)
    ax1.axhline(0.1, color="grey", lw=0.8, ls=":")
    ax1.set_ylabel(f"|drift| over {z.layer_steps} steps (cells)")
    ax1.set_title("flat layers (m: mirror, o: 0.3 cells off, u: 40/60)", fontsize=9)
    ax1.legend(fontsize=8)
    fig.tight_layout()
    ctx.figures.mkdir(parents=True, exist_ok=True)
    fig.savefig(ctx.figures / "architecture.png", dpi=110)
    return out
