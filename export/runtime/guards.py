"""What a model was trained on, and the checks of a caller's input against it (numpy-free, torch-free).

Guards (a :class:`TrainingRangeWarning`, ``warnings.warn``, at most once per Rollout and kind; the
surrogate is only as good as its training distribution, and it is not refused: a model may be
tried elsewhere on purpose):

* ``"mean"``: a rollout starts (:meth:`Rollout.rollout`, or the first :meth:`Rollout.step` after a
  reset) from a field whose mean φ (the conserved mass; any member of a batch) lies outside
  :func:`training_mean_range`. The data-set generator draws each sequence's mean φ̄ from
  N(ic_mean, ic_mean_sd), clipped to [0.3, 0.7] (:data:`IC_MEAN_CLIP`), so the training range is
  ic_mean ± 3·ic_mean_sd (:data:`MEAN_RANGE_SDS`) clipped the same way, and its mirror image
  1 − range when the training used the phase-swap augmentation (``augment``, the default). Both
  numbers come from the metadata (``train.dataset_attrs.config``); a model whose metadata lacks
  them (a data set made by ``simulate``, an older export) is not checked; nor is one whose metadata
  holds them as garbage (``mean_range_problem``), and the Rollout logs one warning saying so.
* ``"physics"``: the caller states its physics with ``Rollout(..., physics=...)`` (a
  ``ch_numba.CHParams``, or a mapping / object with any of epsilon, mobility, W, dx, dt,
  steps_per_frame, time_per_step) and a value differs from the metadata's by more than
  :data:`PHYSICS_RTOL` (relative). ``dx`` is the ground-truth grid spacing (the network's is
  downscale · dx). Time: ``time_per_step``, else dt · steps_per_frame when both are given, is
  compared with the model's time per step; a ``dt`` alone (e.g. a CHParams) with the training dt.

The physics comparison is written once (``physics_mismatches``): the runtime's guard above and
the evaluation (``surrogate.evaluate``: the model's training physics against the ground truth's)
both call it and word its result their own way.

This module imports the standard library and the stdlib-only :mod:`ch_numba.params` (the
generator's clip window, one definition) only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

from ch_numba.params import IC_MEAN_CLIP

__all__ = [
    "TrainingRangeWarning",
    "training_mean_range",
    "mean_range_problem",
    "stated_physics",
    "physics_mismatches",
    "IC_MEAN_CLIP",
    "MEAN_RANGE_SDS",
    "PHYSICS_RTOL",
]

#: the training range of mean φ is ic_mean ± MEAN_RANGE_SDS · ic_mean_sd (:mod:`export.runtime.guards`)
MEAN_RANGE_SDS = 3.0
#: relative tolerance of the physics check (values written as decimal text and read back agree far better)
PHYSICS_RTOL = 1e-6
#: what ``Rollout(..., physics=...)`` may state; the scheme settings of a CHParams are the solver's, not
#: the model's, and are ignored
_PHYSICS_KEYS = ("epsilon", "mobility", "W", "dx", "dt", "steps_per_frame", "time_per_step")
_IGNORED_KEYS = ("scheme", "stabilization", "symbol", "order", "boundary")


class TrainingRangeWarning(UserWarning):
    """A rollout input or the caller's physics lies outside what the model was trained on
    (:mod:`export.runtime.guards`)."""


def _number(value):
    """value as a finite float, or None (missing, not a number)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def training_mean_range(meta: Mapping) -> tuple[tuple[float, float], ...] | None:
    """The range of mean φ a model was trained on, from its ``ch3d`` metadata; None if it does not say.

    ic_mean ± :data:`MEAN_RANGE_SDS` · ic_mean_sd of the training data set's generator config
    (``train.dataset_attrs.config``), clipped to :data:`IC_MEAN_CLIP` as the generator clips its draws,
    and, when the training augmented with the phase swap φ → 1 − φ (``train.train_config.augment``,
    default true), the mirrored interval too. Always a tuple of sorted, disjoint (lo, hi) intervals, so
    a caller tests ``any(lo <= m <= hi for lo, hi in ranges)``: one interval when the mirror image
    overlaps it (merged; ic_mean 0.5 ± 0.05 gives ``((0.35, 0.65),)``), two when it does not
    (ic_mean 0.4 ± 0.02 gives ``((0.34, 0.46), (0.54, 0.66))``). None also when the entries are
    garbage; ``mean_range_problem`` says why.
    """
    return _mean_range(meta)[0]


def mean_range_problem(meta: Mapping) -> str | None:
    """Why :func:`training_mean_range` is None although the metadata holds a generator config (its
    ic_mean / ic_mean_sd are not numbers, the config is not JSON, ...); None when the range is known or
    the metadata simply does not carry a config (a data set made by ``simulate``, an older export)."""
    return _mean_range(meta)[1]


def _mean_range(meta):
    """(training_mean_range, mean_range_problem) of ``meta``, computed once."""
    train = meta.get("train") if isinstance(meta, Mapping) else None
    attrs = train.get("dataset_attrs") if isinstance(train, Mapping) else None
    config = attrs.get("config") if isinstance(attrs, Mapping) else None
    if config is None:
        return None, None
    if isinstance(config, (str, bytes)):
        try:
            config = json.loads(config)
        except ValueError:
            return None, f"the data-set config in its metadata is not JSON ({str(config)[:40]!r})"
    if not isinstance(config, Mapping):
        return None, f"the data-set config in its metadata is not a mapping ({type(config).__name__})"
    raw = {k: config.get(k) for k in ("ic_mean", "ic_mean_sd")}
    if all(v is None for v in raw.values()):
        return None, None
    mean, sd = _number(raw["ic_mean"]), _number(raw["ic_mean_sd"])
    if mean is None or sd is None or sd < 0:
        return None, (
            f"the data-set config in its metadata holds ic_mean={raw['ic_mean']!r}, "
            f"ic_mean_sd={raw['ic_mean_sd']!r} (expected finite numbers, ic_mean_sd >= 0)"
        )
    lo = min(max(mean - MEAN_RANGE_SDS * sd, IC_MEAN_CLIP[0]), IC_MEAN_CLIP[1])
    hi = max(min(mean + MEAN_RANGE_SDS * sd, IC_MEAN_CLIP[1]), IC_MEAN_CLIP[0])
    ranges = [(lo, hi)]
    train_config = train.get("train_config")
    if not isinstance(train_config, Mapping) or train_config.get("augment", True):
        ranges.append((1.0 - hi, 1.0 - lo))
    ranges.sort()
    merged = [ranges[0]]
    for a, b in ranges[1:]:
        if a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return tuple((round(a, 12), round(b, 12)) for a, b in merged), None


def stated_physics(physics) -> dict[str, float]:
    """The physics a caller states, as floats: ``physics`` is a ``ch_numba.CHParams``, or a mapping or
    object with any of epsilon, mobility, W, dx, dt, steps_per_frame, time_per_step (a mapping's other
    keys raise ValueError, except the spectral scheme's settings and ``boundary`` (the Rollout's own
    ``boundary=`` says where the walls are); a value that is not a positive number
    raises ValueError; so does anything else, e.g. a string ``"eps=1.5"`` or an object with none of
    these attributes). Entries that are absent or None are left out."""
    if isinstance(physics, Mapping):
        unknown = sorted(str(k) for k in physics if k not in _PHYSICS_KEYS and k not in _IGNORED_KEYS)
        if unknown:
            raise ValueError(
                f"physics has unknown entries {', '.join(unknown)}; expected any of {', '.join(_PHYSICS_KEYS)}"
            )
        stated = {k: physics[k] for k in _PHYSICS_KEYS if physics.get(k) is not None}
    elif isinstance(physics, (str, bytes, int, float)) or not any(hasattr(physics, k) for k in _PHYSICS_KEYS):
        raise ValueError(
            f"physics must be a ch_numba.CHParams, a mapping or an object with any of {', '.join(_PHYSICS_KEYS)}; "
            f"got {type(physics).__name__} {str(physics)[:40]!r}"
        )
    else:
        stated = {k: getattr(physics, k) for k in _PHYSICS_KEYS if getattr(physics, k, None) is not None}
    for k, v in stated.items():
        if _number(v) is None or float(v) <= 0:
            raise ValueError(f"physics {k}={v!r} is not a positive number")
    return {k: float(v) for k, v in stated.items()}


def physics_mismatches(meta: Mapping, stated: Mapping) -> list[tuple[str, float, float]]:
    """The physics check, written once: where ``stated`` (floats, any of :func:`stated_physics`'s keys)
    differs from a model's ``ch3d`` metadata ``meta`` by more than :data:`PHYSICS_RTOL` (relative).

    Compared: epsilon, mobility, W, dx as stated; then time: ``time_per_step`` when stated, else
    dt · steps_per_frame when both are stated, else dt and/or steps_per_frame alone. The model's
    time per step is steps_per_frame · dt of its metadata; an entry the metadata lacks (or holds as
    no finite number) is not compared. Returns (key, stated value, trained value) per difference,
    in that order (empty: consistent).
    """
    stated = dict(stated)
    model = {k: _number(meta.get(k)) for k in ("epsilon", "mobility", "W", "dx", "dt", "steps_per_frame")}
    model["time_per_step"] = float(meta["steps_per_frame"]) * float(meta["dt"])
    if "time_per_step" in stated:
        compare = ["time_per_step"]
    elif "dt" in stated and "steps_per_frame" in stated:
        stated["time_per_step"] = stated["dt"] * stated["steps_per_frame"]
        compare = ["time_per_step"]
    else:
        compare = [k for k in ("dt", "steps_per_frame") if k in stated]
    compare = [k for k in ("epsilon", "mobility", "W", "dx") if k in stated] + compare
    return [
        (k, stated[k], model[k])
        for k in compare
        if model[k] is not None and not math.isclose(stated[k], model[k], rel_tol=PHYSICS_RTOL)
    ]
