"""Files: one atomic-write helper, one JSON sanitiser and the output/input checks, for every package of the project.

Atomic writes (:func:`atomic_path`, :func:`atomic_write`, and :func:`tmp_path` + :func:`commit` for a
file kept open across calls). Every output the project writes goes through them: data sets, their
parts and the merged file, ``simulate``'s checkpoints, rollout files, training checkpoints and
``log.csv``, ONNX models, evaluation JSON and plots, pictures and ``.vti`` files. One policy:

1. the complete file is written under a temporary name in the target's folder, unique to the process
   and the machine (``NAME.tmpPID.HOST``, with a leading dot when ``hidden``): shards on several
   machines may share one folder on NFS or Lustre, where their pids can coincide;
2. the file is flushed and fsynced (its data are on disk before its name is);
3. it is renamed over the target (``os.replace``, atomic on POSIX file systems).

A failure or an interrupt on the way deletes the temporary file and leaves the target as it was, so
a reader never finds a half-written file under the target's name.

JSON (:func:`json_safe`): metadata, evaluation results and checkpoint provenance hold numpy scalars
and arrays, bytes from HDF5 attributes, paths, and NaN; :func:`json_safe` turns them into strict JSON
(NaN and ±inf as None).

Checks (:func:`check_output`, :func:`check_input_file`): outputs follow one rule in every command, an
existing output is refused unless ``--overwrite``; a missing input file, or a folder given as one, is
one line naming it.

This module imports numpy and the standard library only.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
from pathlib import Path

import numpy as np

__all__ = ["tmp_path", "commit", "atomic_path", "atomic_write", "json_safe", "check_output", "check_input_file"]


def tmp_path(path, hidden: bool = False) -> Path:
    """A temporary name next to ``path`` unique to this process on this machine (``NAME.tmpPID.HOST``;
    ``.NAME.tmpPID.HOST`` when ``hidden``)."""
    path = Path(path)
    return path.with_name(f"{'.' if hidden else ''}{path.name}.tmp{os.getpid()}.{socket.gethostname()}")


def commit(tmp, path) -> Path:
    """fsync the finished temporary file ``tmp`` and rename it over ``path``."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return Path(path)


@contextlib.contextmanager
def atomic_path(path, hidden: bool = False):
    """Context manager for writers that take a file name (h5py, ``onnx.save``): yields the temporary
    path (:func:`tmp_path`) to write; when the block ends normally the file is fsynced and renamed over
    ``path`` (:func:`commit`); if it raises, the temporary file is deleted and ``path`` is left as it was.
    Checks run inside the block (e.g. on the written file) decide whether ``path`` is replaced."""
    path = Path(path)
    tmp = tmp_path(path, hidden)
    try:
        yield tmp
        commit(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path, write, hidden: bool = False) -> Path:
    """Call ``write(binary file object)`` on a temporary file next to ``path``, then fsync it and rename
    it over ``path`` (:func:`atomic_path`). Returns ``path`` as a Path."""
    with atomic_path(path, hidden) as tmp:
        with open(tmp, "wb") as fh:
            write(fh)
    return Path(path)


def json_safe(value):
    """A copy of ``value`` that ``json.dumps(..., allow_nan=False)`` writes: dict keys as str, tuples and
    arrays (numpy's, or anything with ``tolist``, e.g. a torch tensor) as lists, numpy scalars as Python
    numbers, NaN and ±inf as None, bytes decoded, paths and other objects as their ``str``."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode(errors="replace")
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.ndarray) or hasattr(value, "tolist"):
        return json_safe(value.tolist())
    return str(value)


def check_output(path, overwrite: bool = False) -> Path:
    """Refuse (ValueError, one line) an output ``path`` that exists, unless ``overwrite``; a folder where
    a file is to be written is refused either way. Returns ``path`` as a Path."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give the name of the file to write")
    if path.exists() and not overwrite:
        raise ValueError(f"{path} already exists; remove it, choose another name or pass --overwrite")
    return path


def check_input_file(path, what: str = "file") -> Path:
    """``path`` as a Path if it is a file; ValueError naming ``what`` (e.g. "IC file") if it is missing
    ("WHAT PATH not found") or a folder ("WHAT PATH is a folder, not a file")."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder, not a file")
    if not path.is_file():
        raise ValueError(f"{what} {path} not found")
    return path
