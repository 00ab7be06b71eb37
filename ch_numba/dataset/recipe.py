"""Recipes: what a resumed run or a data set's shards must share with the run they continue, held as JSON in
the folder's ``config.json`` and checked before any work (a mismatch is refused naming the differing keys).

``simulate``'s resume folder (``OUT.h5.resume/``) and ``generate``'s parts folder (``OUT.h5.parts/``) use
the same check (:func:`_claim_recipe`); ``config.json`` is created exclusively (:func:`_create_new`), so of
several processes starting together exactly one writes it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path

from .. import files
from ..params import CHParams


def run_params(params: CHParams) -> dict:
    """What a resumed run or a shard must share with the run it continues: ``params.as_dict()`` and,
    for the spectral scheme, the FFT library (pyfftw and scipy agree to round-off, not bitwise)."""
    d = params.as_dict()
    if params.scheme == "spectral":
        from ..spectral import fft_library

        d["fft"] = fft_library()
    return d


def _differing_keys(old, new) -> list[str]:
    """Leaf keys whose values differ between two (nested) JSON dicts, sorted."""
    keys = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += _differing_keys(a, b)
        elif a != b:
            keys.append(k)
    return sorted(set(keys))


def _check_recipe(folder: Path, cfg: Path, recipe: dict) -> bool:
    """True if ``cfg`` exists and holds ``recipe`` (its JSON form); ValueError naming what differs
    if it holds another; False if there is none."""
    if not cfg.exists():
        return False
    try:
        old = json.loads(cfg.read_text())
    except ValueError:
        raise ValueError(f"{cfg} is corrupt; delete the folder {folder} to start over") from None
    if old != recipe:
        raise ValueError(
            f"{folder} was started with different arguments ({', '.join(_differing_keys(old, recipe))}); "
            f"rerun with the same arguments or delete that folder"
        )
    return True


def _claim_recipe(folder: Path, recipe: dict) -> bool:
    """Make ``folder/config.json`` hold ``recipe`` (its JSON form), or check the one there: True if it was
    there (and holds ``recipe``), False if this call wrote it; ValueError naming the differing keys if it
    holds another (:func:`_check_recipe`).

    The file is created exclusively (:func:`_create_new`), so of several processes starting together
    (shards) exactly one writes it and the others check what it wrote.
    """
    cfg = folder / "config.json"
    recipe = json.loads(json.dumps(recipe, sort_keys=True))  # the JSON form, as it is compared later
    if _check_recipe(folder, cfg, recipe):
        return True
    made = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a read-only or foreign folder: one line naming what could not be made
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise ValueError(
                f"cannot write {folder}: folder {folder.parent} is not writable ({exc.strerror})"
            ) from None
        raise
    try:
        if _create_new(cfg, json.dumps(recipe, indent=1, sort_keys=True).encode()):
            return False
    except BaseException:
        if made:  # e.g. a full disk: no empty folder is left behind
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    return _check_recipe(folder, cfg, recipe)  # another process wrote it meanwhile


def _create_new(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` if no file is there, atomically: a complete temporary file is hard-linked to
    the name (``link`` fails if the name exists, also on NFS), so a reader never sees a partial file and
    of two writers one wins. True if written, False if ``path`` existed. Where hard links are not
    supported, the name is created with O_CREAT | O_EXCL and written (exclusive, not atomic)."""
    tmp = files.tmp_path(path, hidden=True)
    try:
        return _link_new(tmp, path, data)
    except OSError as exc:
        if files.is_no_space(exc):
            raise files.no_space_error(path, needed=len(data), exc=exc) from None
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def _link_new(tmp: Path, path: Path, data: bytes) -> bool:
    """:func:`_create_new` with its temporary file ``tmp``."""
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError:  # no hard links on this file system
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return True
