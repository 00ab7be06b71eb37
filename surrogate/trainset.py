"""The training run's data set: its two splits and their checks, what a checkpoint records of it, resumability.

:func:`open_splits` opens the "train" and "val" splits of ``TrainConfig.data`` lazily
(:class:`surrogate.data.SequenceDataset`) and refuses, in one line, a data set the run cannot use (no such
file, an empty split, too few frames for ``--seq-len`` at ``--stride``). :func:`dataset_info` is what a
checkpoint stores of it (path, sizes, splits, root attributes, ``boundary``), :func:`check_resumable` what a
resumed run must share with its checkpoint, and :func:`check_finite` names the first non-finite frame
when a loss turns NaN.

The boundary: ``SequenceDataset.boundary`` ((x, y, z) names; periodic for files written before walls) is
recorded as ``dataset["boundary"]`` (the text ``"X,Y,Z"``) and checked on resume; the trainer gives it to
the model (:meth:`surrogate.CRNN.set_boundary`) for training and validation.
"""

from __future__ import annotations

from pathlib import Path

from ch_numba.files import json_safe
from ch_numba.params import boundary_text

from .config import TrainConfig
from .data import SequenceDataset

__all__ = ["RESUME_FIXED", "open_splits", "dataset_info", "check_resumable", "check_finite"]

#: TrainConfig fields that a resumed run must share with the checkpoint (they change the numbers).
RESUME_FIXED = (
    "batch",
    "lr",
    "ramp",
    "conservative",
    "hidden",
    "kernel",
    "equivariant",
    "downscale",
    "stride",
    "min_len",
    "max_len",
    "augment",
    "mass_penalty",
    "input_noise",
    "seed",
)


def open_splits(c: TrainConfig) -> tuple[SequenceDataset, SequenceDataset, int]:
    """(train, val, max_len): both splits of ``c.data`` (metadata only; frames are read per batch) and the
    longest sub-sequence in network frames. ValueError (one line) for a data set the run cannot use."""
    if not Path(c.data).exists():
        raise ValueError(f"{c.data}: no such file")
    train_ds = SequenceDataset(c.data, "train", c.downscale, c.stride)
    val_ds = SequenceDataset(c.data, "val", c.downscale, c.stride)
    F_ = train_ds.n_steps_frames  # network frames of a sequence: every stride-th stored frame
    if len(train_ds) == 0:
        raise ValueError(f"{c.data} has no training sequences (split 'train' is empty)")
    if len(val_ds) == 0:
        raise ValueError(f"{c.data} has no validation sequences; generate it with --val-fraction > 0")
    stored = train_ds.n_frames
    at = f", {F_} at --stride {c.stride}" if c.stride > 1 else ""
    if F_ < 2:
        raise ValueError(f"{c.data} is too small: {stored} frame(s) per sequence{at}, training needs at least 2")
    max_len = F_ if c.max_len is None else c.max_len
    if max_len > F_ or c.min_len > F_:
        raise ValueError(
            f"{c.data} is too small for --seq-len {c.min_len}:{max_len}: it stores {stored} frames per sequence{at}"
        )
    return train_ds, val_ds, max_len


def dataset_info(train_ds: SequenceDataset, val_ds: SequenceDataset) -> dict:
    """What a checkpoint records of its training data (``ckpt["dataset"]``)."""
    return {
        "path": str(train_ds.path.resolve()),
        "n_sequences": train_ds.n_sequences,
        "n_frames": train_ds.n_frames,
        "shape": list(train_ds.shape),
        "boundary": boundary_text(train_ds.boundary),
        "train": train_ds.indices.tolist(),
        "val": val_ds.indices.tolist(),
        "attrs": json_safe(dict(train_ds.attrs)),  # numpy scalars/arrays, bytes -> plain data (portable)
    }


def check_resumable(saved: dict, config: TrainConfig, data: dict, path: Path) -> None:
    """ValueError (one line) unless the checkpoint ``saved`` (at ``path``) was trained with the same options
    :data:`RESUME_FIXED` and on the same data (sizes, splits, generator config, boundary) as this run."""
    old = saved.get("train_config")
    if not isinstance(old, dict):
        raise ValueError(f"{path} has no training configuration; it cannot be resumed")
    defaults = TrainConfig(data="", out="")  # options added later than the checkpoint had their default then
    old = {k: old.get(k, getattr(defaults, k)) for k in RESUME_FIXED}
    diff = [k for k in RESUME_FIXED if old[k] != getattr(config, k)]
    if diff:
        shown = ", ".join(f"{k}={old[k]!r} (now {getattr(config, k)!r})" for k in diff)
        raise ValueError(f"cannot resume {path}: it was trained with {shown}; use the same options")
    sd = saved.get("dataset", {})
    same = [sd.get(k) == data[k] for k in ("n_sequences", "n_frames", "shape", "train", "val")]
    same.append(sd.get("attrs", {}).get("config") == data["attrs"].get("config"))
    same.append(sd.get("boundary", boundary_text("periodic")) == data["boundary"])  # older checkpoints: periodic
    if not all(same):
        raise ValueError(f"cannot resume {path}: it was trained on a different data set ({sd.get('path')})")


def check_finite(data, split: str) -> None:
    """ValueError naming the data set, sequence and frame if the ``split`` sequences hold Inf or NaN."""
    from ch_numba import open_dataset

    with open_dataset(data) as ds:
        bad = ds.first_non_finite(ds.indices(split))
    if bad is not None:
        i, f, what = bad
        raise ValueError(
            f"{data}: sequence {i} frame {f} ({split} split) holds non-finite values ({what}); "
            "training needs finite data: make the data set again or leave that sequence out"
        )
