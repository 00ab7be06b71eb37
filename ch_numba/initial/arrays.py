"""User arrays as initial conditions: an (X, Y, Z) array from a .npy file, or one frame of a ch3d data set."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..files import check_input_file
from ..solver import PHYSICAL_RANGE

log = logging.getLogger("ch_numba.initial")


def _check_array(a, where: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 3:
        raise ValueError(f"{where}: expected a 3D array (X, Y, Z), got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{where}: the array is empty (shape {a.shape}); expected at least one voxel per axis")
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"{where}: expected real numbers, got dtype {a.dtype}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{where}: contains NaN or Inf")
    a = a.astype(np.float32)
    if a.size and (a.min() < 0 or a.max() > 1):
        lo, hi = PHYSICAL_RANGE
        if lo <= a.min() and a.max() <= hi:  # beyond that range the solver refuses it, in one line of its own
            log.warning("%s: values span [%g, %g], outside φ ∈ [0, 1]", where, a.min(), a.max())
    return a


def from_npy(path) -> np.ndarray:
    """A user's (X, Y, Z) array from a .npy file.

    Parameters
    ----------
    path : str or Path
        A .npy file holding a finite 3D array of real numbers.

    Returns
    -------
    phi0 : float32 array (X, Y, Z)
    """
    path = check_input_file(path, "IC file")
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic != b"\x93NUMPY" and magic[:2] != b"PK":  # neither .npy nor a .npz archive (refused below)
        raise ValueError(f"cannot read {path} as a .npy array: it has no NumPy header (write it with numpy.save)")
    try:
        a = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"cannot read {path} as a .npy array: {str(e).splitlines()[0] if str(e) else e!r}") from None
    if not isinstance(a, np.ndarray):
        raise ValueError(f"cannot read {path} as a .npy array: it is an archive of several arrays")
    return _check_array(a, str(path))


def from_dataset(path, sequence: int = 0, frame: int = 0) -> np.ndarray:
    """One frame of a ch3d data set (its ``phi``, of shape (S, F, X, Y, Z)), read by the data-set reader
    (:func:`ch_numba.dataset.read_frame`): a file that ``open_dataset`` refuses (not a ch3d data set,
    damaged, newer) is refused with its one line.

    Parameters
    ----------
    path : str or Path
        A ch3d data set (``python -m ch_numba generate``/``simulate``, or a rollout of either command).
    sequence, frame : int
        Indices; negative ones count from the end, as in Python.

    Returns
    -------
    phi0 : float32 array (X, Y, Z)
    """
    from ..dataset.reader import read_frame  # the data-set reader (h5py is imported on first use)

    path = Path(path)
    a = read_frame(path, sequence, frame)
    return _check_array(a, f"{path} sequence {sequence} frame {frame}")
