"""Locks: the one mechanism by which a command claims an output, and the leftovers of runs that died.

Every command that writes an output holds a :class:`Lock` while it runs: ``simulate`` (its output and
resume folder), ``python -m export.rollout`` and ``python -m surrogate rollout``, ``surrogate train``
(its ``--out`` folder), ``python -m export``, ``surrogate evaluate``, ``render`` (each its output), and
``generate`` / ``merge`` (the parts folder: one lock per shard, ``merge.lock``). The lock of an output
``PATH`` is the file ``PATH.lock`` beside it (:func:`output_lock`).

A lock is a file created with O_CREAT | O_EXCL, which is atomic on local file systems, NFS (v3 and
later) and Lustre, where fcntl/flock locks are unreliable or absent; it holds JSON ``{"pid", "host",
"started", "command", "token"}``. A second process wanting the same lock stops with one line naming
the holder (:class:`LockedError`, a ValueError: exit status 2). The lock is deleted when its job ends,
also after an error, Ctrl-C or SIGTERM (:mod:`ch_numba.cli_runner` turns SIGTERM into an exception).

Stale locks: a job killed with SIGKILL, or whose machine died, leaves its lock behind. A lock of this
host whose pid no longer runs is stale: it is taken over, with a warning. The pid of another host's
lock cannot be checked from here, so that lock is refused with a message naming its host and pid and
saying to delete the file once that job is known to be gone.

Leftover temporary files (:func:`remove_stale_temps`): outputs are written under
``NAME.tmpPID.HOST`` (:func:`ch_numba.files.tmp_path`) and renamed when complete; a run killed by
SIGKILL (or a power cut) leaves that file. Once its lock is held, a command deletes the temporary
files of its output made by processes of this host that no longer run.

Standard library only.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import socket
import time
import uuid
from pathlib import Path

log = logging.getLogger("ch_numba.locks")

__all__ = ["Lock", "LockedError", "lock_path", "output_lock", "pid_gone", "remove_stale_temps"]


class LockedError(ValueError):
    """Another job holds the lock (one line naming it; a ValueError, so the commands exit with status 2)."""


def pid_gone(pid, host: str | None = None) -> bool:
    """True if ``pid`` is a process of this host (``host`` None or this host's name) that no longer runs."""
    if host is not None and host != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (OSError, ValueError, TypeError, OverflowError):  # alive under another user, or odd
        return False
    return False


def _tmp_owner(name: str, stem: str | None = None) -> tuple[int, str] | None:
    """(pid, host) of a temporary name ``[.]STEM.tmpPID.HOST`` (:func:`ch_numba.files.tmp_path`), else None."""
    m = re.fullmatch(r"\.?(?P<stem>.+)\.tmp(?P<pid>\d+)\.(?P<host>[^/]+)", name)
    if m is None or (stem is not None and m["stem"] != stem):
        return None
    return int(m["pid"]), m["host"]


def remove_stale_temps(folder, stem: str | None = None) -> list[Path]:
    """Delete the temporary files (or folders) in ``folder`` left by dead processes of this host: names
    ``[.]STEM.tmpPID.HOST`` (any stem when ``stem`` is None) whose pid no longer runs. Returns them."""
    folder = Path(folder)
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for path in entries:
        owner = _tmp_owner(path.name, stem)
        if owner is None or owner[0] == os.getpid() or not pid_gone(*owner):
            continue
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue
        removed.append(path)
    if removed:
        log.info(
            "removed %d temporary file(s) of a run that was killed (%s%s)",
            len(removed),
            removed[0],
            ", ..." if len(removed) > 1 else "",
        )
    return removed


class Lock:
    """An exclusive claim of one job on an output (or a parts folder's job), shared by many processes on
    many machines (module docstring). ``path`` is the lock file; ``what`` names the job in the refusal
    ("simulate into o.h5"); ``output``: the output it guards, whose stale temporary files are deleted
    once the lock is held (:func:`remove_stale_temps`)."""

    def __init__(self, path, what: str, command: str = "", output=None):
        self.path = Path(path)
        self.what = what
        self.output = None if output is None else Path(output)
        self.info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": command,
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "token": uuid.uuid4().hex,
        }
        self.held = False

    @staticmethod
    def read(path) -> dict | None:
        """The JSON a lock file holds, or None if it is gone or unreadable (e.g. still being written)."""
        try:
            info = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    @staticmethod
    def is_stale(info: dict | None) -> bool:
        """True if ``info`` is a lock of this host whose process is no longer running."""
        if not info or info.get("host") != socket.gethostname():
            return False
        return pid_gone(info.get("pid"))

    @staticmethod
    def describe(info: dict | None) -> str:
        if not info:
            return "a process whose lock file is unreadable"
        return f"pid {info.get('pid')} on host {info.get('host')}, started {info.get('started')}"

    def _cannot_create(self, exc: OSError) -> ValueError:
        folder = self.path.parent
        target = self.output if self.output is not None else folder
        if isinstance(exc, FileNotFoundError):
            return ValueError(f"folder {folder} does not exist (for {target})")
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return ValueError(f"no space left on the device of {target}: folder {folder} is full ({exc.strerror})")
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return ValueError(f"cannot write {target}: folder {folder} is not writable ({exc.strerror})")
        return ValueError(f"cannot write {target}: {exc.strerror or exc} (folder {folder})")

    def acquire(self) -> Lock:
        """Create the lock file; :class:`LockedError` (one line) naming the holder if another job holds it."""
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                info = self.read(self.path)
                if self.is_stale(info) and self._remove_stale(info):
                    log.warning(
                        "warning: took over the stale lock %s (%s is no longer running)", self.path, self.describe(info)
                    )
                    continue
                raise LockedError(
                    f"{self.what} is already running ({self.describe(info)}); if that job is gone, delete {self.path}"
                ) from None
            except OSError as exc:
                raise self._cannot_create(exc) from None
            try:
                with os.fdopen(fd, "w") as fh:
                    json.dump(self.info, fh)
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError as exc:  # e.g. a full disk: no half-written lock stays behind
                self.path.unlink(missing_ok=True)
                raise self._cannot_create(exc) from None
            self.held = True
            if self.output is not None:
                remove_stale_temps(self.output.parent, self.output.name)
            return self
        raise LockedError(f"could not take the lock {self.path} (other jobs keep taking it)")

    def _remove_stale(self, info: dict) -> bool:
        """Remove the lock file if it still holds ``info`` (renamed aside first, so that a lock another
        process took meanwhile is put back rather than deleted); True if the name is free now."""
        aside = self.path.with_name(f".{self.path.name}.stale.tmp{os.getpid()}.{socket.gethostname()}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return True
        try:
            if self.read(aside) == info:
                return True
            try:  # a fresh lock: put it back
                os.link(aside, self.path)
            except OSError:
                pass
            return False
        finally:
            aside.unlink(missing_ok=True)

    def release(self) -> None:
        """Delete the lock file if it is still this job's (nothing happens if its folder is gone)."""
        if self.held and (self.read(self.path) or {}).get("token") == self.info["token"]:
            self.path.unlink(missing_ok=True)
        self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def lock_path(output) -> Path:
    """``PATH.lock``: the lock file of the output ``PATH`` (a file or a folder), beside it."""
    output = Path(output)
    if not output.name:  # "." or "..": the folder's own name
        output = output.resolve()
    return output.with_name(output.name + ".lock")


def output_lock(output, what: str, command: str = "") -> Lock:
    """The :class:`Lock` of a command writing ``output`` (``what``: the job, e.g. "simulate into o.h5").
    Its folder must exist (else one line saying so)."""
    output = Path(output) if Path(output).name else Path(output).resolve()
    return Lock(lock_path(output), what, command, output=output)
