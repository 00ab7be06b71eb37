"""What every experiment of docs/reproduce.py shares (:class:`Context`): the models, the work
folder, where figures go, the table of seeds and sizes, and the ground truth of each experiment —
its scheme (the training data's explicit one, or with ``--spectral-truth`` SBDF2 at matched
accuracy), its cached file, and :meth:`Context.ground_truth`, the one place that makes a missing
ground truth with the documented ``python -m ch_numba generate|simulate`` commands."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import ch_numba
from ch_numba.cli import physics_args as cli_physics_args

from .common import FIGURES, condense, params_of, sh
from .schemes import explicit_frame, spectral_frame
from .table import SIZES, Sizes


class Context:
    """What every experiment shares: the model (its ONNX metadata: physics, grid, downscale), the
    other models, the work folder and which experiments take the spectral ground truth; where the
    figures go (``figures``) and the experiments' seeds and sizes (``sizes``, :mod:`repro.table`)."""

    def __init__(
        self,
        model: Path,
        ablation: Path | None,
        work: Path,
        other: Path | None = None,
        spectral: tuple = (),
        ensemble: int = 100,
        *,
        figures: Path = FIGURES,
        sizes: Sizes = SIZES,
    ):
        from export.runtime import Rollout

        self._Rollout = Rollout
        self.model, self.ablation, self.work, self.other = model, ablation, work, other
        self.spectral = frozenset(spectral)
        self.ensemble = ensemble
        self.figures, self.sizes = Path(figures), sizes
        r = Rollout(model, providers="cpu")
        self.meta = r.metadata
        self.factor = r.factor
        self.grid = int(self.meta["train_grid"])

    def runner(self, path, threads=None, boundary=None):
        return self._Rollout(path, providers="cpu", threads=threads, boundary=boundary)

    def explicit(self) -> tuple[ch_numba.CHParams, int]:
        """(physics, steps per frame) of the explicit scheme over one network step: the training
        data's, or (a model last trained on spectral data) :func:`explicit_frame` over its time per step."""
        p = params_of(self.meta)
        if p.scheme == "explicit":
            return p, int(self.meta["steps_per_frame"])
        return explicit_frame(p, float(self.meta["time_per_step"]))

    def truth(self, name: str) -> tuple[ch_numba.CHParams, int]:
        """(physics, solver steps per frame) of experiment ``name``'s ground truth: the explicit
        scheme (:meth:`explicit`), or with ``--spectral-truth`` the spectral one — the training
        data's if that was spectral, else SBDF2 at matched accuracy (:func:`spectral_frame`, the
        stencil symbol: the same semi-discrete system)."""
        p = params_of(self.meta)
        if name not in self.spectral:
            return self.explicit()
        if p.scheme == "spectral":
            return p, int(self.meta["steps_per_frame"])
        return spectral_frame(p, float(self.meta["time_per_step"]))

    def truth_args(self, name: str) -> list:
        """The ``generate``/``simulate`` options of experiment ``name``'s ground truth."""
        q, spf = self.truth(name)
        return [*cli_physics_args(q), "--steps-per-frame", spf, "--backend", "cpu"]

    def truth_file(self, name: str, stem: str | None = None, suffix: str = ".h5") -> Path:
        """The cached ground truth of experiment ``name`` in the work folder (one file per scheme)."""
        return self.work / f"{stem or name}{'_spectral' if name in self.spectral else ''}{suffix}"

    def ground_truth(self, name: str, command: str, *options, stem: str | None = None, prepare=None) -> Path:
        """Experiment ``name``'s ground truth (:meth:`truth_file`), made if it is missing with
        ``python -m ch_numba COMMAND FILE OPTIONS`` and the physics of :meth:`truth_args`;
        ``prepare()`` runs first (e.g. writes an IC file the options name). Returns the file."""
        truth = self.truth_file(name, stem)
        if not truth.exists():
            if prepare is not None:
                prepare()
            sh("-m", "ch_numba", command, truth, *options, *self.truth_args(name))
        return truth

    def evaluate(self, model: Path, truth: Path, name: str, *extra: str) -> dict:
        """``python -m surrogate evaluate``; its plots are copied to docs/figures/<name>_*.png."""
        out = self.work / f"eval_{name}"
        sh("-m", "surrogate", "evaluate", model, truth, "--out", out, "--overwrite", *extra)  # a rerun replaces it
        self.figures.mkdir(parents=True, exist_ok=True)
        for png in sorted(out.glob("*.png")):
            shutil.copyfile(png, self.figures / f"{name}_{png.name}")
        return condense(json.loads((out / "evaluation.json").read_text()))
