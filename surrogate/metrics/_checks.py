"""Input checks shared by the metrics: numeric arrays of one frame (X, Y, Z) or frames (T, X, Y, Z)."""

from __future__ import annotations

import numpy as np


def _numeric(a, name: str, ndims: tuple, shape: str) -> np.ndarray:
    """``a`` as an ndarray of a numeric dtype with one of ``ndims`` dimensions (``shape`` names them)."""
    a = np.asarray(a)
    if a.ndim not in ndims:
        raise ValueError(f"expected {name} of shape {shape}, got {a.shape}")
    if not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"expected {name} to be numeric, got dtype {a.dtype}")
    return a


def _field(a, name: str) -> np.ndarray:
    """Array of one frame (X, Y, Z) or frames (T, X, Y, Z)."""
    return _numeric(a, name, (3, 4), "(T, X, Y, Z) or (X, Y, Z)")


def _series(a, name: str) -> np.ndarray:
    """Array of frames (T, X, Y, Z)."""
    return _numeric(a, name, (4,), "(T, X, Y, Z)")


def _pair(pred, true) -> tuple[np.ndarray, np.ndarray]:
    pred, true = _field(pred, "pred"), _field(true, "true")
    if pred.shape != true.shape:
        raise ValueError(f"pred and true must have the same shape, got {pred.shape} and {true.shape}")
    return pred, true


def _per_frame(values: np.ndarray, one_frame: bool):
    return float(values[0]) if one_frame else values
