"""The report's tables: docs/results/summary.md, Markdown tables of the headline numbers of every
docs/results/<experiment>.json present (the evaluations, coarsening, the long rollout, ablation,
cost, and the two architectures side by side)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .architecture import F_RISE_TOL
from .common import RESULTS


def _f(x, fmt=".3g") -> str:
    return "n/a" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:{fmt}}"


def _pm(stats: dict, fmt=".3g", scale=1.0) -> str:
    if not stats or not stats.get("n"):
        return "n/a"
    return f"{_f(stats['mean'] * scale, fmt)} ± {_f(stats['sd'] * scale, fmt)}"


def _scaled(x, scale=100.0):
    return None if x is None else x * scale


def summary_lines(results: Path = RESULTS) -> list[str]:
    """Markdown tables of the headline numbers of every docs/results/<experiment>.json present
    (``results``: docs/results or its --scale subfolder)."""

    def load(name):
        path = results / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    out = [
        "| experiment | sequences × frames | RMSE (full grid, mean over frames) | RMSE last frame | δ max | "
        "max F rel. error, full grid (%) | max F rel. error, network grid (%) | α CRNN (network grid) | "
        "α solver (network grid) | "
        "max mass drift |",
        "|" + "---|" * 10,
    ]
    for name in ("heldout", "large", "torus", "slice", "ensemble"):
        res = load(name)
        for label, ev in (res or {}).items():
            if not isinstance(ev, dict) or "ensemble" not in ev:
                continue
            sc = ev["ensemble"]["scalars"]
            fm, fn = sc["free_energy_rel_error_max"], sc.get("free_energy_rel_error_network_max", {})
            out.append(
                f"| {name}{'' if label == 'model' else ' (' + label + ')'} | "
                f"{ev['ensemble']['n_sequences']} × {ev['data']['frames']} | {_pm(sc['rmse_full_mean'])} | "
                f"{_pm(sc['rmse_full_final'])} | {_pm(sc['delta_max'])} | "
                f"{_pm(fm, scale=100)} (worst {_f(100 * fm['max'])}) | "
                f"{_pm(fn, scale=100)} (worst {_f(100 * fn['max']) if fn.get('n') else 'n/a'}) | "
                f"{_pm(sc['alpha_net_pred']) if 'alpha_net_pred' in sc else 'n/a'} | "
                f"{_pm(sc['alpha_net_true']) if 'alpha_net_true' in sc else 'n/a'} | "
                f"{_f(sc['mass_drift_pred_max']['max'], '.2g')} |"
            )
    horizons = (10, 25, 49, 99, 149, 199, 499)
    out += [
        "",
        "Mean over sequences of the F rel. error (full grid / network grid, %) and of the RMSE (full grid) "
        "after k network steps (training sequences: 49 steps):",
        "",
        "| experiment | " + " | ".join(f"k = {k}" for k in horizons) + " |",
        "|---|" + "---|" * len(horizons),
    ]
    for name in ("heldout", "large", "torus", "slice", "ensemble"):
        ev = (load(name) or {}).get("model")
        if not ev:
            continue
        c = ev["ensemble"]["curves"]
        cells = []
        for k in horizons:
            if k >= len(c["rmse_full"]["mean"]):
                cells.append("")
                continue
            fn = c.get("free_energy_rel_error_network", {}).get("mean", [None] * (k + 1))[k]
            cells.append(
                f"{_f(_scaled(c['free_energy_rel_error']['mean'][k]))} / {_f(_scaled(fn))} / "
                f"{_f(c['rmse_full']['mean'][k], '.2g')}"
            )
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    out += [
        "",
        "Error of the ensemble-mean F on the network grid, |⟨F_CRNN⟩ − ⟨F_solver⟩| / ⟨F_solver⟩ "
        "(mean over the sequences, then the error):",
        "",
    ]
    for name in ("heldout", "large", "torus", "slice", "ensemble"):
        ev = (load(name) or {}).get("model")
        if not ev:
            continue
        err = np.asarray(ev["ensemble"]["free_energy_mean_rel_error_network"], dtype=float)
        k = int(np.nanargmax(err))
        out.append(
            f"- {name}: max {_f(100 * err[k])} % at step {k}; at the last step ({len(err) - 1}) {_f(100 * err[-1])} %"
        )
    ens = load("ensemble") or {}
    if "power_law_of_mean_network_grid" in ens:
        lo, hi = ens["fit_window"]
        fits = ens["power_law_of_mean_network_grid"]
        out += [
            "",
            f"Power law F = A t^α of the ensemble-mean F on the network grid, t ∈ [{lo:g}, {hi:g}]: "
            + ", ".join(f"{k} α = {_f(v['alpha'])} (R² {_f(v['r2'])})" for k, v in fits.items()),
        ]
    coarse = load("coarsening")
    if coarse:
        lo, hi = coarse["fit_window"]
        ex = coarse["exponents"]
        out += [
            "",
            f"| coarsening: {coarse['sequences']} ICs × {coarse['frames']} frames, {coarse['box']}³ box "
            f"(network {coarse['network_grid']}³), fit t ∈ [{lo:.4g}, {hi:.4g}] | network | solver |",
            "|---|---|---|",
            f"| F ~ t^α of the mean F (network grid) | α = {_f(ex['F_net_pred']['exponent'])} "
            f"(R² {_f(ex['F_net_pred']['r2'])}) | α = {_f(ex['F_net_true']['exponent'])} "
            f"(R² {_f(ex['F_net_true']['r2'])}) |",
            f"| L ~ t^β of the mean L = 2π/⟨k⟩ | β = {_f(ex['L_pred']['exponent'])} "
            f"(R² {_f(ex['L_pred']['r2'])}) | β = {_f(ex['L_true']['exponent'])} "
            f"(R² {_f(ex['L_true']['r2'])}) |",
            f"| mean L at the last frame | {_f(coarse['L_final']['network'])} | {_f(coarse['L_final']['solver'])} |",
            f"| max F rel. error (network grid), worst IC | {_f(100 * coarse['F_net_rel_error_max']['worst'])} % | |",
            f"| max L rel. error, worst IC | {_f(100 * coarse['L_rel_error_max']['worst'])} % | |",
            f"\nground truth: {coarse['solver']}, {coarse['solver_steps_per_frame']} step(s) per frame",
        ]
    long = load("long")
    if long:
        n, s_ = long["network"], long["solver"]
        out += [
            "",
            "| long rollout | network | solver |",
            "|---|---|---|",
            f"| steps / time | {long['network_steps']} / {_f(long['time'], '.4g')} | same time |",
            f"| F at the end (full grid; the network's upsampled) | {_f(long['F_network_final'], '.4g')} | "
            f"{_f(long['F_solver_final'], '.4g')} |",
            f"| max F rel. error over the run (full grid) | {_f(100 * long['F_rel_error_max'])} % | |",
        ]
        if "F_net_network_final" in long:  # recorded since 2026-12-02
            out += [
                f"| F at the end on the network grid | {_f(long['F_net_network_final'], '.4g')} | "
                f"{_f(long['F_net_solver_final'], '.4g')} |",
                f"| F rel. error on the network grid: max over the run / at the end | "
                f"{_f(100 * long['F_net_rel_error_max'])} % / {_f(100 * long['F_net_rel_error_final'])} % | |",
            ]
        out += [
            f"| rms change over the last 10⁴ steps | {_f(n['rms_change_last_10000_steps'], '.2g')} | "
            f"{_f(s_['rms_change_last_10000_steps'], '.2g')} |",
            f"| the same after the best periodic translation | "
            f"{_f(n.get('rms_change_last_10000_steps_up_to_translation'), '.2g')} | "
            f"{_f(s_.get('rms_change_last_10000_steps_up_to_translation'), '.2g')} |",
            f"| layered fraction at the end (1 = flat layers) | {_f(n['layered_fraction'])} | "
            f"{_f(s_['layered_fraction'])} |",
            f"| interface velocity over the last 10⁴ steps (dx per 10⁴ steps) | "
            f"{_f(n.get('interface_velocity_last_10000_steps'), '.2g')} | "
            f"{_f(s_.get('interface_velocity_last_10000_steps'), '.2g')} |",
            f"| layer drift along the layer normal (dx per 10⁴ steps) | "
            f"{_f(n.get('layer_drift_per_1e4_steps'), '.2g')} | {_f(s_.get('layer_drift_per_1e4_steps'), '.2g')} |",
            f"| φ range at the end | {_f(n['phi_min'])} … {_f(n['phi_max'])} | "
            f"{_f(s_['phi_min'])} … {_f(s_['phi_max'])} |",
            f"| max mass drift | {_f(long['mass_drift_network'], '.2g')} | |",
            f"| first step with φ outside [−0.5, 1.5] | {long.get('first_step_out_of_range') or 'never'} | |",
        ]
    abl = load("ablation")
    if abl and "conservative" in abl:
        out += [
            "",
            f"| ablation: max mass drift over {abl['steps']} steps | conservative | non-conservative |",
            "|---|---|---|",
            f"| 3 Perlin ICs | {_f(abl['conservative']['mass_drift_max'], '.2g')} | "
            f"{_f(abl['non_conservative']['mass_drift_max'], '.2g')} |",
        ]
    cost = load("cost")
    if cost:
        spec = cost.get("spectral")
        out += [
            "",
            "| network grid | seconds per step (onnxruntime CPU) | ns per voxel | solver grid | "
            "explicit solver seconds per frame | speed-up vs explicit | spectral solver seconds per frame | "
            "speed-up vs spectral |",
            "|---|---|---|---|---|---|---|---|",
        ]
        out += [
            f"| {r['network_grid']}³ | {_f(r['seconds_per_step'])} | {_f(r['ns_per_voxel'])} | "
            f"{r['solver_grid']}³ | {_f(r['solver_seconds_per_frame'])} | {_f(r['speedup'])}× | "
            f"{_f(r.get('spectral_seconds_per_frame'))} | {_f(r.get('speedup_vs_spectral'))}× |"
            for r in cost["rows"]
        ]
        if spec:
            out.append(
                f"\nspectral solver: SBDF2, {spec['steps_per_frame']} step(s) of dt {_f(spec['dt'])} per frame "
                "(F within 0.2 % of the explicit kernel's at this accuracy, benchmarks/RESULTS.md)"
            )
        out.append(f"\nlog-log slope of step time vs voxels: {_f(cost['loglog_slope'])}")
    out += architecture_lines(load("architecture"))
    return out


def architecture_lines(arch: dict | None) -> list[str]:
    """The side-by-side table of the two architectures (experiment ``architecture``)."""
    if not arch or "models" not in arch:
        return []
    labels = [lab for lab in ("unconstrained", "equivariant") if lab in arch["models"]]
    runs = [arch["models"][lab] for lab in labels]

    def row(name, fn):
        return f"| {name} | " + " | ".join(fn(r) for r in runs) + " |"

    def per_ic(key, fmt=".2g"):
        return lambda r: " / ".join(_f(pr[key], fmt) for pr in r["perlin"])

    def layer(variant):
        return lambda r: " / ".join(_f(x["drift"], "+.2g") for x in r["layers"] if x["variant"] == variant)

    def held(key, scale=100.0):
        return lambda r: (
            _pm(r["heldout"][key], scale=scale) + f" (worst {_f(scale * r['heldout'][key]['max'])})"
            if "heldout" in r
            else "n/a"
        )

    steps, lsteps = runs[0]["steps"], runs[0]["layer_steps"]
    out = [
        "",
        "| architecture | " + " | ".join(labels) + " |",
        "|---|" + "---|" * len(labels),
        row("parameters", lambda r: str(r["param_count"])),
        row(
            "training (epoch of the checkpoint, validation MSE)",
            lambda r: f"epoch {r['train']['epoch']}, {_f(r['train']['best_val_loss'])}",
        ),
        row(
            "held-out: max F rel. error on the network grid per sequence (%)",
            held("F_rel_error_network_max_per_sequence"),
        ),
        row(
            "held-out: max rel. error of the ensemble-mean F, network grid (%)",
            lambda r: _f(100 * r["heldout"]["F_rel_error_network_of_mean_max"]) if "heldout" in r else "n/a",
        ),
        row("held-out: RMSE at the last frame, network grid", held("rmse_network_final", 1.0)),
        row("held-out: δ max (cells)", held("delta_max", 1.0)),
        row(
            f"3 Perlin ICs: first step outside [−0.5, 1.5] in {steps}",
            lambda r: " / ".join(str(pr["first_step_out_of_range"] or "never") for pr in r["perlin"]),
        ),
        row("rms change over the last 10⁴ steps", per_ic("rms_change_last_10000_steps")),
        row("the same after the best periodic translation", per_ic("rms_change_last_10000_steps_up_to_translation")),
        row("layered fraction at the end", per_ic("layered_fraction", ".3f")),
        row("interface velocity, last 10⁴ steps (cells per 10⁴ steps)", per_ic("interface_velocity_per_1e4_steps")),
        row(f"steps where F rises (of {steps}, rise > {F_RISE_TOL:g} F)", per_ic("F_rising_steps", "d")),
        row("largest step-to-step rise of F (relative)", per_ic("F_max_relative_rise")),
        row(f"flat layer on a mirror plane: drift in {lsteps} steps, normal x / y / z (cells)", layer("mirror")),
        row(f"flat layer 0.3 cells off: drift in {lsteps} steps (cells)", layer("offset")),
        row(f"unequal layers 40/60: drift in {lsteps} steps (cells)", layer("unequal")),
    ]
    for n in runs[0]["seconds_per_step"]:
        out.append(
            row(
                f"ms per step at {n}³ (onnxruntime CPU, 1 thread; median [range])",
                lambda r, n=n: (
                    f"{1e3 * r['seconds_per_step'][n]['median']:.3g} "
                    f"[{1e3 * r['seconds_per_step'][n]['min']:.3g}–{1e3 * r['seconds_per_step'][n]['max']:.3g}]"
                ),
            )
        )
    return out


def write_summary(results: Path = RESULTS) -> Path:
    """docs/results/summary.md: the tables of the report, from the JSON files present."""
    path = results / "summary.md"
    results.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "<!-- written by python docs/reproduce.py; do not edit -->\n" + "\n".join(summary_lines(results)) + "\n"
    )
    return path
