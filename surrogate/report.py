r"""The evaluation report: ensemble statistics over the sequences, the summary table, the JSON file.

What :func:`surrogate.evaluate.evaluate` presents once the per-sequence records exist (their curves
:data:`CURVES` and numbers :data:`SCALARS`, computed by :func:`surrogate.evaluate.evaluate_sequence`).

Ensemble over the S sequences: mean and sample standard deviation (ddof 1) of every per-frame
curve (frames aligned by index, i.e. by time since frame 0) and of every per-sequence number; the
exponent as mean ± sd of the per-sequence fits; and the relative error of the ensemble-mean free
energy, |⟨F_pred⟩ − ⟨F_true⟩| / ⟨F_true⟩ per frame.

The evaluation is written as strict JSON (format :data:`FORMAT`, version :data:`FORMAT_VERSION`; NaN
as null) atomically; :func:`summary_table` is the short text table the command logs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from . import metrics

__all__ = ["CURVES", "SCALARS", "FORMAT", "FORMAT_VERSION", "ensemble", "summary_table", "write_evaluation"]

FORMAT = "ch3d-evaluation"
FORMAT_VERSION = 1
#: per-frame curves of each sequence (arrays of shape (T,)) that the ensemble averages
CURVES = (
    "rmse_network",
    "rmse_full",
    "delta",
    "free_energy_pred",
    "free_energy_true",
    "free_energy_rel_error",
    "free_energy_net_pred",
    "free_energy_net_true",
    "free_energy_rel_error_network",
    "length_pred",
    "length_true",
    "mass_drift_pred",
    "mass_drift_true",
    "phi_mean_pred",
    "phi_mean_true",
)
#: per-sequence numbers that the ensemble averages
SCALARS = (
    "rmse_network_final",
    "rmse_full_final",
    "rmse_full_mean",
    "delta_final",
    "delta_max",
    "free_energy_rel_error_final",
    "free_energy_rel_error_max",
    "free_energy_rel_error_network_final",
    "free_energy_rel_error_network_max",
    "mass_drift_pred_max",
    "mass_drift_true_max",
    "alpha_pred",
    "alpha_true",
    "alpha_net_pred",
    "alpha_net_true",
    "rms_change_tail_pred",
    "rms_change_tail_true",
    "rms_change_tail_translated_pred",
    "rms_change_tail_translated_true",
    "layered_fraction_final_pred",
    "layered_fraction_final_true",
    "interface_velocity_tail_pred",
    "interface_velocity_tail_true",
)


def _stats(values) -> dict:
    """mean, sd (ddof 1; 0 for one value), min, max and count of the finite values."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"mean": np.nan, "sd": np.nan, "min": np.nan, "max": np.nan, "n": 0}
    return {
        "mean": v.mean(),
        "sd": v.std(ddof=1) if v.size > 1 else 0.0,
        "min": v.min(),
        "max": v.max(),
        "n": int(v.size),
    }


def ensemble(records: list[dict]) -> dict:
    """Ensemble statistics of per-sequence records of equal length (module docstring).

    Returns {"n_sequences", "curves": {name: {"mean": (T,), "sd": (T,)}}, "scalars": {name: stats},
    "free_energy_mean_rel_error": (T,) (of the ensemble-mean F, full grid),
    "free_energy_mean_rel_error_network": (T,) (the same on the network grid),
    "stationary_pred"/"stationary_true": number of sequences that reached a stationary state}.
    """
    if not records:
        raise ValueError("ensemble needs at least one sequence")
    curves = {}
    for name in CURVES:
        with np.errstate(all="ignore"):
            mean, sd = metrics.ensemble_stats([r[name] for r in records])
        curves[name] = {"mean": mean, "sd": sd}
    scalars = {name: _stats([r[name] for r in records]) for name in SCALARS}
    return {
        "n_sequences": len(records),
        "curves": curves,
        "scalars": scalars,
        "free_energy_mean_rel_error": metrics.relative_error(
            curves["free_energy_pred"]["mean"], curves["free_energy_true"]["mean"]
        ),
        "free_energy_mean_rel_error_network": metrics.relative_error(
            curves["free_energy_net_pred"]["mean"], curves["free_energy_net_true"]["mean"]
        ),
        "stationary_pred": sum(r["stationary_index_pred"] is not None for r in records),
        "stationary_true": sum(r["stationary_index_true"] is not None for r in records),
    }


def _write_json(path: Path, data: dict) -> None:
    """Write strict JSON (no NaN) atomically (:func:`ch_numba.files.atomic_write`)."""
    from ch_numba.files import atomic_write

    text = json.dumps(data, indent=1, allow_nan=False) + "\n"
    atomic_write(path, lambda fh: fh.write(text.encode()))


def write_evaluation(path, result: dict) -> dict:
    """Write an evaluation (the dict :func:`surrogate.evaluate.evaluate` builds) to ``path`` as strict
    JSON (:func:`_write_json`) and return it as written: JSON-safe (:func:`ch_numba.files.json_safe`:
    lists, NaN as None)."""
    from ch_numba.files import json_safe

    clean = json_safe(result)  # lists, NaN -> None
    _write_json(Path(path), clean)
    return clean


def _num(x, fmt: str = ".3g") -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:{fmt}}"


def _pm(stats: dict, fmt: str = ".3g") -> str:
    if not stats or not stats.get("n"):
        return "n/a"
    return f"{_num(stats['mean'], fmt)} ± {_num(stats['sd'], fmt)}"


def summary_table(result: dict) -> str:
    """A short text table of an evaluation's ensemble (the dict :func:`evaluate` returns): RMSE and δ at
    the last frame, free-energy error, power-law exponents, mass drift, stationary states, and the
    stationarity of the last ⌊(T−1)/2⌋ steps (network grid)."""
    e = result["ensemble"]
    s = e["scalars"]
    n, T = e["n_sequences"], result["data"]["frames"]
    tail = max(1, (T - 1) // 2)

    def both(name, fmt=".3g"):
        return _pm(s.get(f"{name}_pred", {}), fmt), _pm(s.get(f"{name}_true", {}), fmt)

    f_max = s["free_energy_rel_error_max"]
    rows = [
        ("RMSE, last frame (full grid)", _pm(s["rmse_full_final"]), ""),
        ("RMSE, last frame (network grid)", _pm(s["rmse_network_final"]), ""),
        ("interface displacement δ, last frame", _pm(s["delta_final"]), ""),
        ("max F rel. error (over frames, sequences)", _num(f_max["max"]) if f_max["n"] else "n/a", ""),
        ("F rel. error, last frame", _pm(s["free_energy_rel_error_final"]), ""),
        (
            "max F rel. error on the network grid",
            _num(s["free_energy_rel_error_network_max"]["max"])
            if s["free_energy_rel_error_network_max"]["n"]
            else "n/a",
            "",
        ),
        ("power-law exponent α of F (full grid)", _pm(s["alpha_pred"]), _pm(s["alpha_true"])),
        ("  the same on the network grid", _pm(s["alpha_net_pred"]), _pm(s["alpha_net_true"])),
        (
            "max mass drift |Δm|/m",
            _num(s["mass_drift_pred_max"]["max"], ".2g"),
            _num(s["mass_drift_true_max"]["max"], ".2g"),
        ),
        ("sequences reaching a stationary state", str(e["stationary_pred"]), str(e["stationary_true"])),
        (f"rms change over the last {tail} steps", *both("rms_change_tail", ".2g")),
        ("  the same up to a periodic translation", *both("rms_change_tail_translated", ".2g")),
        ("layered fraction, last frame (1 = layers)", *both("layered_fraction_final", ".2f")),
        (f"interface velocity, cells/10⁴ steps (last {tail})", *both("interface_velocity_tail")),
    ]
    w = max(len(r[0]) for r in rows)
    lines = [
        f"evaluation: {n} sequence(s) x {T} frames ({T - 1} network steps); mean ± sd over sequences",
        f"  {'':{w}}  {'model':>18}  {'ground truth':>18}",
    ]
    lines += [f"  {a:{w}}  {b:>18}  {c:>18}" for a, b, c in rows]
    return "\n".join(lines)
