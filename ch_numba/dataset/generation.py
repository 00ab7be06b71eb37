"""Generating a data set: its configuration (:class:`DatasetConfig`: sizes, seeds, the IC law), the batched
driver that advances many sequences in one solver batch, the progress report, and :func:`generate`, which
writes each sequence through the sequence writer into the parts folder and merges it.

Batches: ``generate`` advances up to ``batch`` sequences together in one solver batch
(B, X, Y, Z) (``--batch``; 1 on the CPU, 16 on CUDA by default); a sequence whose burn-in is
shorter simply starts storing frames earlier, and a finished sequence's member takes the next
sequence. Each member evolves exactly as its own run, so the data do not depend on the batch,
and a rerun may use another batch size.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import operator
import sys
import time
from pathlib import Path

import numpy as np

from ..files import check_output
from ..options import check_seed, grid_shape, grid_text, option, parse_size
from ..params import IC_MEAN_CLIP, CHParams
from ..physics import SUPPORTED_DTYPES  # IC_MEAN_CLIP defined once, stdlib-only (the runtime reads it)
from ..solver import Stepper, check_memory, memory_needed, resolve_backend
from .layout import STORAGES, storage_options
from .pipeline import pipeline_memory
from .recipe import _claim_recipe, run_params
from .shards import (
    MERGE_LOCK,
    PartsLock,
    _running_jobs,
    merge,
    parse_shard,
    part_path,
    part_problem,
    parts_dir,
    shard_lock,
)
from .writer import SequenceFile

log = logging.getLogger("ch_numba.dataset")


BURN_IN_LAWS = ("uniform", "log")
#: the solver's state types (:data:`ch_numba.physics.SUPPORTED_DTYPES`) by name
STATE_DTYPES = tuple(d.name for d in SUPPORTED_DTYPES)


@dataclasses.dataclass(frozen=True)
class DatasetConfig:
    """Everything that determines a generated data set's contents.

    Sequence i uses the IC seed and parameters drawn from
    ``np.random.default_rng([seed, i])``: φ̄ ~ N(ic_mean, ic_mean_sd) with ic_mean in (0, 1) and
    ic_mean_sd ≥ 0, each draw clipped to :data:`IC_MEAN_CLIP` = [0.3, 0.7] (inside the spinodal
    region, where a Perlin IC decomposes; :meth:`clipped_share` is the expected share of clipped
    draws, which ``generate`` reports), the Perlin frequency uniformly from
    `frequencies` (correlation length size/f), a burn-in of 0..burn_in_frames frames: uniform
    (``burn_in_law="uniform"``) or log-uniform (``"log"``: b = ⌊(K + 1)^u⌋ − 1, u ~ U[0, 1), so
    every decade of coarsening time, early and late, gets the same share of sequences).
    """

    sequences: int = option(required=True, help="number of sequences")
    frames: int = option(50, "stored frames per sequence (default %(default)s)")
    steps_per_frame: int = option(400, "solver steps between frames (default %(default)s)")
    size: int = option(
        64,
        "grid edge L (default %(default)s), or X,Y,Z for a box that is not a cube",
        type=parse_size,
        metavar="N|X,Y,Z",
    )
    burn_in_frames: int = option(0, "each sequence first runs 0..K frames that are not stored (default %(default)s)")
    burn_in_law: str = option(
        "uniform",
        "law of the burn-in length: uniform on 0..K, or log-uniform (as many sequences per decade of "
        "coarsening time, to cover late states; default %(default)s)",
        choices=BURN_IN_LAWS,
    )
    val_fraction: float = option(0.3, "fraction of validation sequences (default %(default)s)")
    seed: int = option(0, "master seed (default %(default)s)")
    frequencies: tuple = (2, 3, 4)  # --frequencies "2,3,4" (ch_numba.cli: its comma list parsed there)
    ic_mean: float = option(
        0.5,
        f"mean of the normal law of φ̄, in (0, 1) (default %(default)s); each draw is clipped to "
        f"[{IC_MEAN_CLIP[0]}, {IC_MEAN_CLIP[1]}], the spinodal region (a warning says how many are)",
    )
    ic_mean_sd: float = option(0.05, "sd of the normal law of φ̄, >= 0 (default %(default)s)")
    amplitude: float = option(0.1, "Perlin amplitude A (default %(default)s)")
    dtype: str = option("float32", "state type (default %(default)s)", choices=STATE_DTYPES)
    storage: str = option(
        "lzf",
        "how phi is stored: none/lzf/gzip are lossless (lzf default, ~80%% of raw size), "
        "scaleoffset (4 decimals) and float16 are lossy (~35%%)",
        choices=STORAGES,
    )

    def __post_init__(self):
        def need(cond, msg):
            if not cond:
                raise ValueError(msg)

        need(self.sequences >= 1, f"--sequences must be >= 1, got {self.sequences}")
        need(self.frames >= 1, f"--frames must be >= 1, got {self.frames}")
        need(self.steps_per_frame >= 1, f"--steps-per-frame must be >= 1, got {self.steps_per_frame}")
        if not isinstance(self.size, int):  # X,Y,Z: three ints; equal edges are the cube N (its config unchanged)
            try:
                shape = tuple(operator.index(n) for n in self.size)
            except TypeError:
                raise ValueError(f"--size must be a grid edge N or three edges X,Y,Z, got {self.size!r}") from None
            need(len(shape) == 3, f"--size must be a grid edge N or three edges X,Y,Z, got {self.size!r}")
            object.__setattr__(self, "size", shape[0] if len(set(shape)) == 1 else shape)
        need(min(self.shape) >= 4, f"--size must be >= 4 along every axis, got {self.size}")
        need(self.burn_in_frames >= 0, f"--burn-in-frames must be >= 0, got {self.burn_in_frames}")
        need(
            self.burn_in_law in BURN_IN_LAWS,
            f"--burn-in-law must be one of {', '.join(BURN_IN_LAWS)}, got {self.burn_in_law!r}",
        )
        need(0.0 <= self.val_fraction < 1.0, f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        check_seed(self.seed)
        need(
            len(self.frequencies) > 0 and all(int(f) >= 1 for f in self.frequencies),
            f"frequencies must be positive integers, got {self.frequencies}",
        )
        need(0.0 < self.amplitude <= 0.5, f"--amplitude must be in (0, 0.5], got {self.amplitude}")
        need(0.0 < self.ic_mean < 1.0, f"--ic-mean must be in (0, 1) (phi is in [0, 1]), got {self.ic_mean}")
        need(0.0 <= self.ic_mean_sd < math.inf, f"--ic-mean-sd must be a number >= 0, got {self.ic_mean_sd}")
        need(self.dtype in STATE_DTYPES, f"--dtype must be float32 or float64, got {self.dtype}")
        storage_options(self.storage)

    @property
    def shape(self) -> tuple:
        return grid_shape(self.size)

    def val_indices(self) -> np.ndarray:
        """Sorted indices of the validation sequences: round(val_fraction·S) of them, seeded."""
        n_val = int(round(self.val_fraction * self.sequences))
        perm = np.random.default_rng([self.seed, 2**31]).permutation(self.sequences)
        return np.sort(perm[:n_val])

    def clipped_share(self) -> float:
        """Expected share of the sequences whose drawn φ̄ is clipped to :data:`IC_MEAN_CLIP` (0 to 1)."""
        lo, hi = IC_MEAN_CLIP
        if self.ic_mean_sd == 0:
            return 0.0 if lo <= self.ic_mean <= hi else 1.0

        def below(x):  # P(N(ic_mean, ic_mean_sd) < x)
            return 0.5 * (1.0 + math.erf((x - self.ic_mean) / (self.ic_mean_sd * math.sqrt(2.0))))

        return below(lo) + 1.0 - below(hi)

    def sequence_spec(self, i: int) -> dict:
        """IC parameters and burn-in of sequence i (depends only on (seed, i))."""
        rng = np.random.default_rng([self.seed, i])
        ic_seed = int(rng.integers(1, 2**31 - 1))
        mean = float(np.clip(rng.normal(self.ic_mean, self.ic_mean_sd), *IC_MEAN_CLIP))
        frequency = int(self.frequencies[int(rng.integers(len(self.frequencies)))])
        if self.burn_in_law == "log":
            burn_in = min(int((self.burn_in_frames + 1) ** rng.random()) - 1, self.burn_in_frames)
        else:
            burn_in = int(rng.integers(0, self.burn_in_frames + 1))
        ic = {"kind": "perlin", "seed": ic_seed, "frequency": frequency, "mean": mean, "amplitude": self.amplitude}
        return {"seed": ic_seed, "ic": ic, "burn_in": burn_in}

    def to_json(self) -> str:
        d = dataclasses.asdict(self)
        if d["burn_in_law"] == "uniform":  # the default: data sets made before the option keep their config
            del d["burn_in_law"]
        return json.dumps(d, sort_keys=True)


def parts_recipe(config: DatasetConfig, params: CHParams) -> dict:
    """What a data set's parts must share, as ``OUT.h5.parts/config.json`` holds it: ``config`` (the
    DatasetConfig: sizes, seeds, IC law, dtype, storage) and ``params`` (:func:`run_params`: the physics,
    the scheme and its settings). Throughput options (backend, --batch, --threads) are not part of it:
    they do not change the data (the backend is recorded per sequence)."""
    return json.loads(
        json.dumps({"config": json.loads(config.to_json()), "params": run_params(params)}, sort_keys=True)
    )


def _prepare_parts(out, config: DatasetConfig, params: CHParams) -> tuple[Path, dict]:
    """Create OUT.h5.parts/config.json, or check that an existing one holds the same
    :func:`parts_recipe` (ValueError naming the differing keys); returns (parts folder, recipe)."""
    parts = parts_dir(out)
    recipe = parts_recipe(config, params)
    _claim_recipe(parts, recipe)
    return parts, recipe


DEFAULT_BATCH = {"numpy": 1, "cpu": 1, "cuda": 16}


def default_batch(backend: str) -> int:
    """Sequences advanced together by ``generate`` on a (resolved) backend: 1 on the CPU (the fused kernel
    already uses every core on one 64³ grid), 16 on CUDA (one 64³ grid cannot fill a GPU)."""
    return DEFAULT_BATCH.get(backend, 1)


def _run_batched(
    todo,
    config: DatasetConfig,
    params: CHParams,
    backend: str,
    batch: int,
    open_file,
    on_frame=None,
    on_done=None,
    writers: int = 1,
) -> None:
    """Simulate the sequences ``todo`` (indices) in a batch of ``batch`` members; each through its own file.

    A member slot holds one sequence at a time: it is loaded with the sequence's IC, and its frame
    counter k starts at −burn_in. The whole batch advances steps_per_frame steps at a time; after
    each advance every counter grows by one, a burn-in state (k < 0) is checked for blow-up, frame
    k ≥ 0 goes to the sequence's file (``open_file(i, spec)`` → :class:`SequenceFile`), and after
    frame F−1 the file is committed (``on_done(i)``) and the slot takes the next sequence of
    ``todo``. A slot left without a sequence holds the uniform field φ̄ = ic_mean, which the scheme
    keeps exactly (its Laplacian is 0). Each member evolves exactly as alone (solver.Stepper), so
    sequence i depends only on (seed, i), whatever the batch. At most ``batch`` states and open
    files are held; a blow-up raises BlowUpError naming the sequence, and the open files are
    deleted.

    The checks and the writing of each frame run in :mod:`~ch_numba.dataset.pipeline`'s writer: with
    ``writers=1`` a thread that overlaps the next frame's steps, with ``writers=0`` this thread (the
    same operations in the same order; the files are the same bitwise).
    """
    from .. import initial
    from .pipeline import Writer, snapshot_source, threads_allowed

    todo = list(todo)
    n = max(1, min(batch, len(todo)))
    if not todo:
        return
    stepper = Stepper((n, *config.shape), params, backend, config.dtype)
    if writers and not threads_allowed():
        log.debug("numba's workqueue threading layer is not thread-safe: writing in the solver's thread")
        writers = 0
    queue = iter(todo)
    slots = [None] * n  # per member: [sequence index, k] or None
    names = [""] * n

    def fill(m, ops):
        """Load member m with the next sequence (its file opened by the writer); returns its IC as stored."""
        i = next(queue, None)
        if i is None:
            slots[m] = None
            stepper.set(np.full(config.shape, config.ic_mean, config.dtype), member=m)
            return None
        spec = config.sequence_spec(i)
        ic = spec["ic"]
        phi0 = initial.perlin(
            config.shape,
            frequency=ic["frequency"],
            seed=ic["seed"],
            mean=ic["mean"],
            amplitude=ic["amplitude"],
            boundary=params.boundary,
        )
        stepper.set(phi0, member=m)
        names[m] = f"sequence {i}"
        slots[m] = [i, -spec["burn_in"]]
        ops.append(("open", i, spec))
        return np.ascontiguousarray(phi0, dtype=stepper.dtype)  # the member's state, as Stepper.set keeps it

    def visit(m, ops, ic=None):
        """The ops of member m's current state: its snapshot's member m, or ``ic`` when just loaded."""
        fresh = ic is not None
        while slots[m] is not None:
            i, k = slots[m]
            if k < 0:
                if not fresh:  # blow-up check of a burn-in frame
                    ops.append(("frame", i, k, names[m], int(stepper.member_steps[m]), m, None))
                return
            ops.append(("frame", i, k, names[m], int(stepper.member_steps[m]), m, ic if fresh else None))
            if k < config.frames - 1:
                return
            ops.append(("commit", i))
            ic = fill(m, ops)
            fresh = True

    writer = Writer(open_file, on_frame, on_done, writers)
    source = None
    try:
        for m in range(n):
            ops = []
            try:
                ic = fill(m, ops)
                if ic is not None:
                    visit(m, ops, ic)
            finally:
                writer.submit(None, ops)
        source = snapshot_source(stepper, params, writers)
        while any(s is not None for s in slots):
            stepper.advance(config.steps_per_frame)
            snapshot = source.take(writer.wait)
            ops = []
            try:
                for m in range(n):
                    if slots[m] is not None:
                        slots[m][1] += 1
                        visit(m, ops)
            finally:  # what was done before an error is still written: a finished sequence is committed
                writer.submit(snapshot, ops)
        writer.close()
    except BaseException:
        writer.abort(drain=True)  # the frames handed over are written, then the open files deleted
        raise
    finally:
        if source is not None:
            source.close()


#: seconds between two progress lines of ``generate`` without a terminal (a batch job's log)
PROGRESS_INTERVAL = 60.0


def _hms(seconds: float) -> str:
    """Seconds as h:mm:ss."""
    seconds = int(round(max(seconds, 0.0)))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """Progress of ``generate`` over ``total`` sequences: a tqdm bar on a terminal, else log lines.

    ``bar``: True draws the bar; False writes lines; None (default) draws the bar when stderr is a
    terminal and writes lines otherwise (a Slurm or nohup log). A line is written when a sequence
    is finished, at most one per ``interval`` seconds (:data:`PROGRESS_INTERVAL`; the first and the
    last sequence always get one)::

        data.h5: 3/20 sequences (15 %), 0:02:10 elapsed, ETA 0:12:17, 0.843 Gvox-updates/s

    ETA = elapsed · (total − done) / done; the rate is voxel updates (grid points × solver steps of
    the stored frames, burn-in not counted) per second of wall time. ``clock`` gives seconds.
    """

    def __init__(
        self,
        total: int,
        name: str,
        vox_per_frame: float,
        bar: bool | None = None,
        interval: float | None = None,
        clock=time.perf_counter,
    ):
        from tqdm import tqdm

        self.total, self.name, self.vox_per_frame = total, name, vox_per_frame
        self.interval = PROGRESS_INTERVAL if interval is None else interval
        self.clock = clock
        self.done = self.frames = 0
        self.start = self.last_line = clock()
        use_bar = bool(getattr(sys.stderr, "isatty", lambda: False)()) if bar is None else bool(bar)
        self.bar = tqdm(total=total, unit="seq", dynamic_ncols=True, desc=name) if use_bar else None

    def rate(self, now: float) -> float:
        """Voxel updates per second so far."""
        return self.frames * self.vox_per_frame / max(now - self.start, 1e-9)

    def frame(self) -> None:
        """One stored frame computed."""
        self.frames += 1
        if self.bar is not None:
            self.bar.set_postfix_str(f"{self.rate(self.clock()) / 1e9:.2f} Gvox-updates/s", refresh=False)

    def sequence(self) -> None:
        """One sequence finished."""
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
            return
        now = self.clock()
        if self.done in (1, self.total) or now - self.last_line >= self.interval:
            self.last_line = now
            elapsed = now - self.start
            log.info(
                "%s: %d/%d sequences (%.0f %%), %s elapsed, ETA %s, %.3g Gvox-updates/s",
                self.name,
                self.done,
                self.total,
                100.0 * self.done / self.total,
                _hms(elapsed),
                _hms(elapsed * (self.total - self.done) / self.done),
                self.rate(now) / 1e9,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def generate(
    out,
    config: DatasetConfig,
    params: CHParams | None = None,
    backend: str = "auto",
    shard: str | None = None,
    command: str = "",
    keep_parts: bool = False,
    progress: bool | None = None,
    batch: int | None = None,
    overwrite: bool = False,
    writers: int = 1,
):
    """Generate the data set `out` (or one shard of its parts).

    Without `shard`, all sequences are generated and merged into `out` (an existing `out` is
    refused unless `overwrite`); with `shard="i/n"` only sequences i, i+n, ... are written to
    OUT.h5.parts/ and the caller runs :func:`merge` when all shards are done. The parts folder's
    config.json (:func:`parts_recipe`) must match the arguments (physics, scheme, sizes, seeds;
    not backend, batch or threads), and so must every finished part found there; a mismatch is
    refused naming the differing keys. A finished part that cannot be read (truncated, corrupt:
    :func:`part_problem`) is named in a warning, deleted and made again. While it runs the shard is
    locked (:class:`PartsLock`): the same shard started again, here or on another machine, stops
    with one line naming this run. `batch` sequences are advanced together (:func:`_run_batched`;
    default :func:`default_batch` of the backend); the data do not depend on it. `writers`: 1 (default)
    checks, compresses and writes each frame in a writer thread while the solver computes the next
    (:mod:`~ch_numba.dataset.pipeline`), 0 in the solver's thread; the data do not depend on it either.
    `progress`: see :class:`Progress`. Returns `out` when merged, else the parts folder.
    """
    params = params or CHParams()
    out = Path(out)
    k, n = parse_shard(shard)
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1):
        raise ValueError(f"--batch must be an integer >= 1, got {batch!r}")
    if shard is None:
        check_output(out, overwrite)
    if not out.parent.exists():
        raise ValueError(f"folder {out.parent} does not exist")
    backend = resolve_backend(backend, params.scheme)
    batch = int(batch) if batch is not None else default_batch(backend)
    if writers not in (0, 1) or isinstance(writers, bool):
        raise ValueError(f"writers must be 0 or 1, got {writers!r}")
    members = max(1, min(batch, len(range(k, config.sequences, n))))
    check_memory(
        memory_needed((members, *config.shape), config.dtype)
        + pipeline_memory(members, config.shape, config.dtype, backend, writers),
        f"a batch of {members} sequence(s) at {grid_text(config.size)}",
    )
    parts, recipe = _prepare_parts(out, config, params)
    with shard_lock(parts, k, n, command) as lock:
        merging = _running_jobs(parts, MERGE_LOCK)
        if merging:
            raise ValueError(f"{out} is being merged ({PartsLock.describe(merging[0][1])}); wait for it to finish")
        log.info(
            "generating %s: %d sequences x %d frames x %d steps at %s, backend %s, batch %d%s",
            out,
            config.sequences,
            config.frames,
            config.steps_per_frame,
            grid_text(config.size) + ("" if params.periodic else f" (boundary {','.join(params.boundary)})"),
            backend,
            batch,
            f", shard {k}/{n}" if shard else "",
        )
        clipped = config.clipped_share()
        if clipped > 0.01:
            log.warning(
                "warning: about %.0f%% of the sequences draw a mean phi outside [%g, %g] (--ic-mean %g, "
                "--ic-mean-sd %g), which is clipped to that window",
                100 * clipped,
                *IC_MEAN_CLIP,
                config.ic_mean,
                config.ic_mean_sd,
            )
        val = set(config.val_indices().tolist())
        mine = [i for i in range(k, config.sequences, n)]
        for i in mine:
            path = part_path(parts, i)
            problem = part_problem(path, config.frames, recipe) if path.exists() else None
            if problem is not None:
                log.warning("warning: %s is unreadable (%s); making sequence %d again", path, problem, i)
                path.unlink()
        todo = [i for i in mine if not part_path(parts, i).exists()]
        if len(todo) < len(mine):
            log.info("resuming: %d of %d sequences already done", len(mine) - len(todo), len(mine))
        report = Progress(len(todo), out.name, float(np.prod(config.shape)) * config.steps_per_frame, progress)

        def open_file(i, spec):
            return SequenceFile(
                part_path(parts, i),
                params,
                frames=config.frames,
                steps_per_frame=config.steps_per_frame,
                shape=config.shape,
                backend=backend,
                dtype=config.dtype,
                storage=config.storage,
                seed=spec["seed"],
                ic=spec["ic"],
                burn_in=spec["burn_in"],
                split="val" if i in val else "train",
                command=command,
                config_json=config.to_json(),
            )

        try:
            _run_batched(
                todo, config, params, backend, batch, open_file, report.frame, lambda i: report.sequence(), writers
            )
        finally:
            report.close()
        if shard is not None:
            log.info(
                "shard %d/%d done: %d sequences in %s; run `python -m ch_numba merge %s` when all shards finished",
                k,
                n,
                len(mine),
                parts,
                out,
            )
            return parts
        return merge(out, keep_parts=keep_parts, overwrite=overwrite, command=command, _own_lock=lock)
