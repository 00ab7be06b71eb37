"""Files: one atomic-write helper, one JSON sanitiser and the output/input checks, for every package of the project.

Atomic writes (:func:`atomic_path`, :func:`atomic_write`, and :func:`tmp_path` + :func:`commit` for a
file kept open across calls). Every output the project writes goes through them: data sets, their
parts and the merged file, ``simulate``'s checkpoints, rollout files, training checkpoints and
``log.csv``, ONNX models, evaluation JSON and plots, pictures and ``.vti`` files. One policy:

1. the complete file is written under a temporary name in the target's folder, unique to the process
   and the machine (``NAME.tmpPID.HOST``, with a leading dot when ``hidden``): shards on several
   machines may share one folder on NFS or Lustre, where their pids can coincide;
2. the file is flushed and fsynced (its data are on disk before its name is);
3. it is published under the target's name (:func:`publish`): renamed over it (``os.replace``, atomic on
   POSIX file systems) where replacing is allowed (``--overwrite``, or a file the run owns such as a
   checkpoint), else hard-linked to the name (``os.link``, which fails if the name exists, also on NFS:
   no-clobber), so a second run can never replace a finished output it did not mean to replace.

A failure or an interrupt on the way deletes the temporary file and leaves the target as it was, so
a reader never finds a half-written file under the target's name. A full disk (ENOSPC, a quota, a
file-size limit) is :class:`NoSpaceError`: one line naming the target (not the temporary name), what
was written or is needed, and the free space (:func:`no_space_error`).

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
import errno
import math
import os
import re
import shutil
import socket
from pathlib import Path

import numpy as np

__all__ = [
    "tmp_path",
    "commit",
    "publish",
    "atomic_path",
    "atomic_write",
    "atomic_folder",
    "json_safe",
    "check_output",
    "check_input_file",
    "NoSpaceError",
    "is_no_space",
    "no_space_error",
]

#: errno values of a full disk: no space, a quota, a file-size limit (RLIMIT_FSIZE)
NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class NoSpaceError(OSError):
    """The disk (or a quota, or a file-size limit) is full while an output is written: one line naming
    the output, the space written or needed and the free space (:func:`no_space_error`)."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def is_no_space(exc: BaseException) -> bool:
    """True if ``exc`` is a full disk: an OSError with errno ENOSPC, EDQUOT or EFBIG, or an HDF5 error
    (h5py raises OSError or RuntimeError with the C library's text) that reports one of those errnos."""
    if isinstance(exc, NoSpaceError):
        return True
    if isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS:
        return True
    text = str(exc)
    if isinstance(exc, OSError) and re.search(r"\d+ requested and \d+ written", text):
        return True  # numpy's short write (ndarray.tofile, np.save): the disk filled during it
    return any(f"errno = {code}," in text for code in NO_SPACE_ERRNOS) or "No space left on device" in text


def _size(nbytes: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if abs(nbytes) < 1000 or unit == "TB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.3g} {unit}"
        nbytes /= 1000.0
    return f"{nbytes} bytes"  # pragma: no cover


def _is_size_limit(exc) -> bool:
    """True if ``exc`` is EFBIG: the process's file-size limit (``ulimit -f``), not the disk."""
    if exc is None:
        return False
    return (isinstance(exc, OSError) and exc.errno == errno.EFBIG) or f"errno = {errno.EFBIG}," in str(exc)


def no_space_error(path, needed: int | None = None, written: int | None = None, exc=None) -> NoSpaceError:
    """The :class:`NoSpaceError` of writing ``path`` (the user's name, not the temporary one): ``needed``,
    the size of the whole output if known (an upper bound for compressed data), else ``written``, what
    had been written when the disk filled; and the space free in its folder now. ``exc``: the error met
    (EFBIG: the file-size limit is named instead of the disk)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        free = f"{_size(shutil.disk_usage(folder).free)} free"
    except OSError:
        free = "free space unknown"
    if needed is not None:
        need = f"it needs up to {_size(needed)}"
    elif written is not None:
        need = f"it needs more than the {_size(written)} written"
    else:
        need = "it needs more space"
    if _is_size_limit(exc):
        limit = resource_limit()
        return NoSpaceError(
            errno.EFBIG,
            f"the file-size limit of this process (ulimit -f: {limit}) stops writing {path} ({need}); nothing "
            "was written there",
        )
    return NoSpaceError(
        errno.ENOSPC, f"no space left on the device of {path} ({need}, {free} in {folder}); nothing was written there"
    )


def resource_limit() -> str:
    """The soft RLIMIT_FSIZE of this process, as text ("unlimited" or a size)."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (ImportError, OSError, ValueError):
        return "unknown"
    return "unlimited" if soft == resource.RLIM_INFINITY else _size(soft)


def tmp_path(path, hidden: bool = False) -> Path:
    """A temporary name next to ``path`` unique to this process on this machine (``NAME.tmpPID.HOST``;
    ``.NAME.tmpPID.HOST`` when ``hidden``)."""
    path = Path(path)
    return path.with_name(f"{'.' if hidden else ''}{path.name}.tmp{os.getpid()}.{socket.gethostname()}")


def publish(tmp, path, overwrite: bool = True) -> Path:
    """Give the finished temporary file ``tmp`` the name ``path`` (same folder), atomically: renamed over
    ``path`` if ``overwrite``, else hard-linked to it (no-clobber: ``os.link`` fails if the name exists)
    and unlinked, so a file another run published meanwhile is never replaced: ValueError (one line)
    instead, ``tmp`` deleted. Where hard links are not supported, the name is checked and the file
    renamed (the caller's :class:`ch_numba.locks.Lock` keeps other runs of the project away)."""
    path = Path(path)
    if overwrite:
        os.replace(tmp, path)
        return path
    try:
        os.link(tmp, path)
    except FileExistsError:
        Path(tmp).unlink(missing_ok=True)
        raise ValueError(
            f"{path} was written by another run while this one ran; it was not replaced (pass --overwrite to "
            "replace it)"
        ) from None
    except OSError:  # no hard links on this file system
        if os.path.lexists(path):
            Path(tmp).unlink(missing_ok=True)
            raise ValueError(
                f"{path} was written by another run while this one ran; it was not replaced (pass --overwrite "
                "to replace it)"
            ) from None
        os.replace(tmp, path)
        return path
    os.unlink(tmp)
    return path


def commit(tmp, path, overwrite: bool = True) -> Path:
    """fsync the finished temporary file ``tmp`` and publish it as ``path`` (:func:`publish`: renamed over
    it, or with ``overwrite=False`` only if no file has that name)."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return publish(tmp, path, overwrite)


@contextlib.contextmanager
def atomic_path(path, hidden: bool = False, overwrite: bool = True):
    """Context manager for writers that take a file name (h5py, ``onnx.save``): yields the temporary
    path (:func:`tmp_path`) to write; when the block ends normally the file is fsynced and published as
    ``path`` (:func:`commit`; ``overwrite=False``: never over an existing file); if it raises, the
    temporary file is deleted and ``path`` is left as it was. Checks run inside the block (e.g. on the
    written file) decide whether ``path`` is replaced. A full disk raises :class:`NoSpaceError` naming
    ``path``."""
    path = Path(path)
    tmp = tmp_path(path, hidden)
    try:
        yield tmp
        commit(tmp, path, overwrite)
    except Exception as exc:
        if is_no_space(exc) and not isinstance(exc, NoSpaceError):
            written = tmp.stat().st_size if tmp.exists() else None
            tmp.unlink(missing_ok=True)
            raise no_space_error(path, written=written, exc=exc) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path, write, hidden: bool = False, overwrite: bool = True) -> Path:
    """Call ``write(binary file object)`` on a temporary file next to ``path``, then fsync it and publish
    it as ``path`` (:func:`atomic_path`). Returns ``path`` as a Path."""
    with atomic_path(path, hidden, overwrite) as tmp:
        with open(tmp, "wb") as fh:
            write(fh)
    return Path(path)


@contextlib.contextmanager
def atomic_folder(out, overwrite: bool = False):
    """Context manager for commands that write several files into the folder ``out`` (``render``, an
    evaluation): yields a temporary folder beside it (``.OUT.tmpPID.HOST``) to write them in; when the
    block ends normally ``out`` is created if needed and each file is published into it
    (:func:`publish`: renamed, no data written, so a full disk cannot stop it half-way; no-clobber unless
    ``overwrite``); if the block raises, the temporary folder is deleted and ``out`` is left as it was:
    none of the files, or all of them. A full disk is :class:`NoSpaceError` naming ``out``."""
    out = Path(out) if Path(out).name else Path(out).resolve()  # "." : the folder's own name
    tmp = tmp_path(out, hidden=True)
    tmp.mkdir()
    try:
        try:
            yield tmp
        except Exception as exc:
            if is_no_space(exc):
                written = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
                shutil.rmtree(tmp, ignore_errors=True)  # before the free space is measured for the message
                raise no_space_error(out, written=written, exc=exc) from None
            raise
        out.mkdir(parents=True, exist_ok=True)
        for path in sorted(tmp.iterdir()):
            publish(path, out / path.name, overwrite)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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
