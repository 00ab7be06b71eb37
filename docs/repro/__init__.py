"""The experiments of docs/REPRODUCTION.md, run by ``python docs/reproduce.py`` (the command line).

Modules, one concept each:

* :mod:`repro.table`: the frozen table of every experiment's seeds and sizes (:data:`SIZES`);
* :mod:`repro.context`: :class:`Context`, what the experiments share, and the one helper that makes
  a missing ground truth (:meth:`Context.ground_truth`); :mod:`repro.schemes`: its solver schemes;
* :mod:`repro.common`: plumbing (documented commands, condensed evaluations, result files, plots);
* experiment families: :mod:`repro.evaluations` (heldout, large, torus, slice, ensemble: ``python -m
  surrogate evaluate`` against a solver data set), :mod:`repro.long_time` (long, coarsening: solver
  and network side by side), :mod:`repro.short` (check, ablation), :mod:`repro.cost`,
  :mod:`repro.architecture`, :mod:`repro.walls` (the shipped model on boxes with no-flux walls);
* :mod:`repro.report`: the Markdown tables of docs/results/summary.md.

:data:`EXPERIMENTS` maps each experiment's name to its function ``f(ctx) -> dict`` (the JSON of
docs/results/<name>.json); the first line of its docstring is its one-line description (``--list``).
"""

from __future__ import annotations

from .architecture import exp_architecture
from .cost import exp_cost
from .evaluations import exp_ensemble, exp_heldout, exp_large, exp_slice, exp_torus
from .long_time import exp_coarsening, exp_long
from .short import exp_ablation, exp_check
from .walls import exp_walls

EXPERIMENTS = {
    "check": exp_check,
    "heldout": exp_heldout,
    "large": exp_large,
    "torus": exp_torus,
    "slice": exp_slice,
    "ensemble": exp_ensemble,
    "coarsening": exp_coarsening,
    "long": exp_long,
    "ablation": exp_ablation,
    "cost": exp_cost,
    "architecture": exp_architecture,
    "walls": exp_walls,
}
