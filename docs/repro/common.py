"""Plumbing shared by the experiments of docs/reproduce.py: the documented commands, the model's
physics, the condensed evaluation, result files and slice plots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

import ch_numba
from ch_numba.files import json_safe  # the project's one JSON sanitiser (NaN -> null)
from ch_numba.render import new_figure  # a Figure on the Agg canvas, no pyplot

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ROOT / "docs" / "figures"
RESULTS = ROOT / "docs" / "results"


def sh(*args: str) -> None:
    """Run one documented command (``python -m ...``), echoing it; stop on failure."""
    cmd = [sys.executable, *map(str, args)]
    print("$", " ".join(["python", *map(str, args)]), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def params_of(meta: dict) -> ch_numba.CHParams:
    return ch_numba.CHParams.from_metadata(meta)


def save_json(results: Path, name: str, data: dict) -> None:
    """``results/<name>.json`` (``results``: docs/results or its --scale subfolder)."""
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{name}.json").write_text(json.dumps(json_safe(data), indent=1) + "\n")


def condense(ev: dict) -> dict:
    """An evaluation.json without its per-frame curves per sequence (kept: ensemble curves and
    every per-sequence scalar), small enough for git."""
    seqs = [{k: v for k, v in s.items() if not isinstance(v, list)} for s in ev["sequences"]]
    keep = ("format", "date", "command", "code_version", "config", "data", "warnings", "times", "ensemble", "timing")
    return {
        **{k: ev[k] for k in keep if k in ev},
        "sequences": seqs,
        "model": {k: v for k, v in ev["model"].items() if k != "metadata"},
    }


def plot_slices(panels: list[tuple[str, np.ndarray]], path: Path) -> None:
    """One row of central z-slices (each panel: title, field (X, Y, Z))."""
    fig = new_figure(figsize=(2.6 * len(panels), 2.8))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (title, field) in zip(axes[0], panels):
        ax.imshow(field[:, :, field.shape[2] // 2].T, origin="lower", cmap="RdBu_r", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
