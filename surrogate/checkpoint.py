"""Checkpoints of a :class:`~surrogate.model.CRNN`: atomic save, validated load.

A checkpoint file is ``torch.save`` of the dict::

    {"format": "ch3d-crnn-checkpoint", "format_version": 1,
     "model_state": model.state_dict(), "config": model.config, **meta}

``meta`` is free (epoch, optimiser state, RNG states, losses, training config, ...) and comes
back untouched. It may hold tensors, numbers, strings, lists/tuples/dicts of them and numpy
arrays/scalars (e.g. ``np.random.get_state()``); files are read with ``weights_only=True`` plus
numpy's array types, so loading never runs arbitrary pickled code.

The write goes to a temporary file in the target folder, is flushed to disk and then moved
over the target with ``os.replace`` (``ch_numba.files.atomic_write``, the project's one atomic
write): a crash mid-save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ch_numba.files import atomic_write

from .model import CRNN

__all__ = ["save_checkpoint", "load_checkpoint", "FORMAT", "FORMAT_VERSION"]

FORMAT = "ch3d-crnn-checkpoint"
FORMAT_VERSION = 1
_RESERVED = ("format", "format_version", "model_state", "config", "model")


def save_checkpoint(model: CRNN, path: str | os.PathLike, **meta) -> Path:
    """Write ``model`` (state and config) and ``meta`` to ``path`` atomically; returns the path.

    Raises ValueError for a model without a ``config`` or a meta key that the format reserves.
    """
    if not isinstance(model, torch.nn.Module) or not isinstance(getattr(model, "config", None), dict):
        raise ValueError(f"expected a CRNN model with a config, got {type(model).__name__}")
    clash = sorted(set(meta) & set(_RESERVED))
    if clash:
        raise ValueError(f"checkpoint meta may not use the reserved keys {clash}")
    path = Path(path)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": dict(model.config),
        **meta,
    }
    folder = path.parent if str(path.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda f: torch.save(payload, f), hidden=True)


def _numpy_safe_globals() -> list:
    """Globals that numpy arrays/scalars pickle to: data only, safe for weights_only loading."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    found = [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        found += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    return found


def _refusal(exc: BaseException) -> str:
    """One line on why ``torch.load`` refused a file. Never PyTorch's own advice to retry with
    ``weights_only=False``, which would run whatever code the file's pickle holds."""
    text = str(exc).strip()
    if "weights_only" in text or "Weights only load failed" in text:
        return "it holds Python objects other than tensors and plain data, which are not loaded"
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Returns
    -------
    dict
        Everything stored (``model_state``, ``config`` and all meta, untouched) plus
        ``model``: a CRNN built from ``config`` with the weights loaded, in eval mode, and
        ``epoch``: the stored epoch or -1.

    Raises
    ------
    ValueError
        One line, for a missing file, a folder or a file that is not such a checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"checkpoint {path} is a folder, not a file")
    if not path.is_file():
        raise ValueError(f"checkpoint not found: {path}")
    with open(path, "rb") as fh:
        head = fh.read(2)
    if head != b"PK" and head[:1] != b"\x80":  # torch.save writes a zip file (a pickle in the legacy format)
        raise ValueError(f"not a ch3d checkpoint: {path} (not a file written by torch.save)")
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # the unpickler raises many kinds on foreign bytes
        raise ValueError(f"not a ch3d checkpoint: {path} ({_refusal(exc)})") from None
    if not isinstance(data, dict) or "model_state" not in data or "config" not in data:
        raise ValueError(f"not a ch3d checkpoint: {path} (no model_state/config)")
    if data.get("format", FORMAT) != FORMAT:
        raise ValueError(f"not a ch3d checkpoint: {path} (format {data.get('format')!r})")
    config = data["config"]
    if not isinstance(config, dict):
        raise ValueError(f"not a ch3d checkpoint: {path} (config is {type(config).__name__}, not a dict)")
    try:
        model = CRNN(**config)
        model.load_state_dict(data["model_state"])
    except (TypeError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ValueError(f"checkpoint {path} does not fit CRNN{config}: {first[:200]}") from None
    model.to(map_location if isinstance(map_location, (str, torch.device)) else "cpu")
    model.eval()
    out = dict(data)
    out["model"] = model
    out["epoch"] = data.get("epoch", -1)
    return out
