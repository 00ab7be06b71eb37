"""The parts folder of a data set: one finished 1-sequence file per sequence, the locks of the jobs that share
the folder (:class:`PartsLock`: shards on many machines, the merge), and :func:`merge`.

Crash safety: every sequence is first written completely to its own file in
``OUT.h5.parts/`` (same layout with S = 1) under a temporary name, then renamed; a
rerun with the same arguments skips finished sequences; :func:`merge` assembles the
final file under a temporary name and renames it. Sequence i depends only on
(master seed, i), so any set of shards gives the data of one process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from pathlib import Path

import h5py

from .. import files
from ..locks import Lock, remove_stale_temps
from ..params import CHParams
from .layout import REQUIRED, create_layout, discard
from .recipe import _differing_keys

log = logging.getLogger("ch_numba.dataset")


def parts_dir(out) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".parts")


def part_path(parts: Path, i: int) -> Path:
    return parts / f"seq_{i:06d}.h5"


def part_problem(path, frames: int | None = None, recipe: dict | None = None) -> str | None:
    """Why the finished part ``path`` cannot be merged (one line: not HDF5, truncated, incomplete, not
    one sequence of ``frames`` frames), or None if it opens as a complete 1-sequence data set.

    With ``recipe`` (the folder's :func:`parts_recipe`), a readable part made with other arguments
    (another physics, scheme, size, seed, ...) raises ValueError naming the differing keys: it is
    somebody else's data, not damage, so it is neither merged nor silently replaced.
    """
    try:
        with h5py.File(path, "r") as f:
            missing = [name for name in REQUIRED if name not in f]
            if missing:
                return f"incomplete: no {', '.join(missing)}"
            phi = f["phi"]
            if phi.ndim != 5 or phi.shape[0] != 1 or (frames is not None and phi.shape[1] != frames):
                return f"phi has shape {phi.shape}, expected (1, {frames if frames is not None else 'F'}, X, Y, Z)"
            made = _file_recipe(f.attrs) if recipe is not None else None
    except (OSError, KeyError, ValueError) as e:
        text = str(e).strip()
        return text.splitlines()[0][:200] if text else type(e).__name__
    if made is not None and made != recipe:
        raise ValueError(
            f"{path} was made with other arguments than {Path(path).parent / 'config.json'} "
            f"({', '.join(_differing_keys(made, recipe))}); delete it, or the folder, to start over"
        )
    return None


def _file_recipe(attrs) -> dict:
    """The :func:`parts_recipe` a 1-sequence data set (a part) was made with, read from its root attributes."""
    attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in attrs.items()}
    params = CHParams.from_metadata(attrs).as_dict()
    if "fft" in attrs:  # "scipy 1.16.0" -> "scipy", the library as run_params names it
        params["fft"] = str(attrs["fft"]).split()[0]
    return json.loads(json.dumps({"config": json.loads(attrs.get("config", "{}")), "params": params}, sort_keys=True))


class PartsLock(Lock):
    """An exclusive claim of one job on a parts folder that many processes, on many machines, share: the
    project's one lock (:class:`ch_numba.locks.Lock`: an O_EXCL file holding pid, host, start and
    command; stale locks of dead processes of this host taken over; another host's refused naming it).

    ``generate --shard K/N`` holds ``PARTS/shard-K-of-N.lock`` (``shard-0-of-1.lock`` without
    ``--shard``) while it runs, and ``merge`` holds ``PARTS/merge.lock``. A second process wanting the
    same lock stops with one line naming the holder; other shards of the folder run beside it (their
    locks differ). Once the lock is held, the temporary part files of dead processes of this host (a
    shard killed with SIGKILL) are deleted.
    """

    def __init__(self, folder, name: str, what: str, command: str = ""):
        super().__init__(Path(folder) / name, what, command)

    def acquire(self) -> PartsLock:
        super().acquire()
        remove_stale_temps(self.path.parent)
        return self


def shard_lock(parts, k: int, n: int, command: str = "") -> PartsLock:
    """The :class:`PartsLock` of ``generate --shard k/n`` (k = 0, n = 1 without --shard)."""
    what = f"generate --shard {k}/{n} into {parts}" if n > 1 else f"generate into {parts}"
    return PartsLock(parts, f"shard-{k}-of-{n}.lock", what, command)


MERGE_LOCK = "merge.lock"


def _running_jobs(parts: Path, pattern: str, own: PartsLock | None = None) -> list[tuple[Path, dict | None]]:
    """Locks in ``parts`` matching ``pattern`` other than ``own`` and not stale: (file, its JSON)."""
    found = []
    for path in sorted(parts.glob(pattern)):
        if own is not None and path == own.path:
            continue
        info = PartsLock.read(path)
        if info is None and not path.exists():
            continue
        if not PartsLock.is_stale(info):
            found.append((path, info))
    return found


def parse_shard(text: str | None) -> tuple[int, int]:
    """'i/n' → (i, n) with 0 ≤ i < n; None → (0, 1)."""
    if text is None:
        return 0, 1
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"--shard i/n needs 0 <= i < n, got {text!r}")
    return i, n


# --------------------------------------------------------------------------- merging


@contextlib.contextmanager
def new_h5(tmp, needed: int | None = None, name=None):
    """``h5py.File(tmp, "w")`` for a file written under a temporary name: if the block raises, the file is
    closed without writing anything more (:func:`~ch_numba.dataset.layout.discard`) and deleted, so no h5py
    object fails after its file did; a full disk becomes :class:`ch_numba.files.NoSpaceError` naming
    ``name`` (the output; default ``tmp``) and ``needed`` bytes. On success the file is flushed and closed
    (a failure there is handled the same way)."""
    f = h5py.File(tmp, "w")
    try:
        yield f
        f.flush()
        f.close()
    except BaseException as exc:
        discard(f)
        Path(tmp).unlink(missing_ok=True)  # before the free space is measured for the message
        if isinstance(exc, Exception) and files.is_no_space(exc) and not isinstance(exc, files.NoSpaceError):
            raise files.no_space_error(name if name is not None else tmp, needed=needed, exc=exc) from None
        raise


def merge(
    out, keep_parts: bool = False, overwrite: bool = False, command: str = "", _own_lock: PartsLock | None = None
) -> Path:
    """Assemble OUT.h5 from OUT.h5.parts/ (atomically); refuses if a sequence is missing, a part is
    unreadable or made with other arguments than the folder's config.json (naming it), a shard is
    still running (its :class:`PartsLock`; ``_own_lock`` is the calling ``generate``'s own), another
    merge of the folder runs, and an existing OUT.h5 unless `overwrite`.

    The merged file records the merge: its root attribute ``command`` is ``command`` (the ``merge``
    command, or the unsharded ``generate`` that merged its own parts), and ``part_commands`` the JSON
    list of the distinct commands that wrote the parts (the shards'), in the order of the sequences.

    Frames are copied as raw compressed chunks, so the merged data are
    bit-identical to the parts whatever the storage.
    """
    out = Path(out)
    parts = parts_dir(out)
    cfg_file = parts / "config.json"
    if not cfg_file.exists():
        raise ValueError(f"no parts to merge: {cfg_file} not found (run `generate` first)")
    files.check_output(out, overwrite)
    with PartsLock(parts, MERGE_LOCK, f"merge of {parts}"):
        running = _running_jobs(parts, "shard-*.lock", _own_lock)
        if running:
            path, info = running[0]
            raise ValueError(
                f"cannot merge {out}: a shard is still running ({PartsLock.describe(info)}; {path.name}); "
                f"merge when it has finished, or delete {path} if that job is gone"
            )
        files.check_output(out, overwrite)  # again, under the lock
        remove_stale_temps(out.parent, out.name)  # a merged file half-written by a killed merge
        _merge(out, parts, cfg_file, command, overwrite)
        if not keep_parts:
            shutil.rmtree(parts)
    return out


def _merge(out: Path, parts: Path, cfg_file: Path, command: str, overwrite: bool = True) -> None:
    """:func:`merge` once its checks passed and its lock is held."""
    try:
        recipe = json.loads(cfg_file.read_text())
        n_seq = int(recipe["config"]["sequences"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(f"{cfg_file} is corrupt; delete the folder {parts} to start over") from None
    missing = [i for i in range(n_seq) if not part_path(parts, i).exists()]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise ValueError(
            f"cannot merge {out}: {len(missing)} of {n_seq} sequences missing ({shown}); "
            f"finish the shards that write them"
        )
    redo = "; rerun `generate` with the same arguments to make it again"
    for i in range(n_seq):
        try:
            problem = part_problem(part_path(parts, i), int(recipe["config"]["frames"]), recipe)
        except ValueError as e:
            raise ValueError(f"cannot merge {out}: {e}") from None
        if problem is not None:
            raise ValueError(f"cannot merge {out}: part {part_path(parts, i)} is unreadable ({problem}){redo}")
    needed = sum(part_path(parts, i).stat().st_size for i in range(n_seq))
    with files.atomic_path(out, overwrite=overwrite) as tmp, h5py.File(part_path(parts, 0), "r") as first:
        with new_h5(tmp, needed, out) as f:
            attrs = dict(first.attrs)
            frames, shape = int(attrs["frames"]), tuple(int(v) for v in attrs["shape"])
            backends, commands = set(), []
            attrs["command"] = command  # the merge's, not shard 0's
            create_layout(f, n_seq, frames, shape, attrs["storage"], attrs)
            names = ("seed", "ic", "burn_in", "split", "backend", "t0", "phi_mean", "free_energy")
            # held for the whole merge: a write that fails does so here, not in a destructor (a full disk)
            targets, phi = {name: f[name] for name in names}, f["phi"]
            for i in range(n_seq):
                try:
                    with h5py.File(part_path(parts, i), "r") as src:
                        for name in names:
                            targets[name][i] = src[name][0]
                        backends.add(
                            src["backend"][0].decode() if isinstance(src["backend"][0], bytes) else src["backend"][0]
                        )
                        part_command = str(src.attrs.get("command", ""))
                        if part_command not in commands:
                            commands.append(part_command)
                        source = src["phi"]
                        for k in range(frames):
                            mask, chunk = source.id.read_direct_chunk((0, k, 0, 0, 0))
                            phi.id.write_direct_chunk((i, k, 0, 0, 0), chunk, mask)
                        del source
                    f.flush()
                except (OSError, KeyError, ValueError, RuntimeError) as e:  # a part damaged inside (its chunks)
                    if files.is_no_space(e):
                        raise
                    text = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
                    raise ValueError(
                        f"cannot merge {out}: part {part_path(parts, i)} is unreadable ({text}){redo}"
                    ) from None
            f.attrs["backend"] = ",".join(sorted(backends))
            f.attrs["part_commands"] = json.dumps(commands)
    log.info("merged %d sequences into %s", n_seq, out)
