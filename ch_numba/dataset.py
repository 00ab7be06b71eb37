"""HDF5 data sets of Cahn-Hilliard evolutions: layout, crash-safe generation, lazy reader.

Layout (one file, readable by plain h5py/xarray; S sequences, F frames, grid X×Y×Z)::

    /                 attrs: format="ch3d-dataset", format_version, epsilon, mobility, W,
                             dx, dt, scheme ("explicit"/"spectral"; absent in files written before
                             the option: explicit), for spectral runs also stabilization, symbol,
                             order (CHParams.as_dict) and fft (the FFT library and version),
                             steps_per_frame, frames, shape, dtype
                             (state type of the run), storage, backend, package_version, command,
                             config (JSON); a merged file: command = the merge's (``merge`` or
                             the unsharded ``generate``), part_commands = JSON list of the
                             distinct commands that wrote its parts (the shards')
    phi               (S, F, X, Y, Z) float32 (or float16 with storage="float16"),
                      chunked one frame per chunk, filter per `storage`
    seed              (S,)  int64   per-sequence IC seed (derived from (master seed, i))
    ic                (S,)  str     JSON of the IC parameters of each sequence
    burn_in           (S,)  int64   frames simulated before frame 0 and not stored
    split             (S,)  str     "train" or "val"
    backend           (S,)  str     backend that computed each sequence
    phi_mean          (S, F) float64  mass (mean φ) of each stored frame
    free_energy       (S, F) float64  free energy per volume of each stored frame
    time              (F,)  float64   time of frame f from the sequence's frame 0 (f·steps·dt)
    t0                (S,)  float64   time of frame 0 since the IC (burn_in·steps·dt)
    sequence, frame   (S,), (F,) int64  0 .. S−1, 0 .. F−1     } HDF5 dimension scales of the
    x, y, z           (X,), (Y,), (Z,) float64  i·dx           } axes above (create_layout)

The dimensions are named with HDF5 dimension scales (``sequence``, ``frame``, ``x``, ``y``,
``z``; ``time`` a coordinate along ``frame``), so ``xarray.open_dataset(path, engine="h5netcdf")``
shows them; files written before the scales (same format version) read the same here.

Frame 0 is the state after the burn-in (the IC itself when burn_in = 0); frame f
follows after f·steps_per_frame steps. phi_mean and free_energy are computed from
the state before any lossy storage.

Crash safety: every sequence is first written completely to its own file in
``OUT.h5.parts/`` (same layout with S = 1) under a temporary name, then renamed; a
rerun with the same arguments skips finished sequences; :func:`merge` assembles the
final file under a temporary name and renames it. Sequence i depends only on
(master seed, i), so any set of shards gives the data of one process.

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
import os
import shutil
import socket
import sys
import time
import uuid
from pathlib import Path

import h5py
import numpy as np

from . import files
from .params import CHParams
from .solver import Stepper, free_energy

log = logging.getLogger(__name__)

FORMAT = "ch3d-dataset"
FORMAT_VERSION = 1
STORAGES = ("none", "lzf", "gzip", "scaleoffset", "float16")
SPLITS = ("train", "val")
_STR = h5py.string_dtype()


def storage_options(storage: str, scaleoffset_digits: int = 4) -> dict:
    """h5py create_dataset keywords for a storage choice.

    none: raw float32; lzf / gzip: lossless (float32 fields of a phase-field run
    shrink only to ~75-80 %); scaleoffset: lossy, values kept to `scaleoffset_digits`
    decimals (~2.6× smaller); float16: lossy, relative error ≤ 4.9e-4 (~3× smaller).
    """
    if storage == "none":
        return {"dtype": np.float32}
    if storage == "lzf":
        return {"dtype": np.float32, "compression": "lzf", "shuffle": True}
    if storage == "gzip":
        return {"dtype": np.float32, "compression": "gzip", "compression_opts": 4, "shuffle": True}
    if storage == "scaleoffset":
        return {
            "dtype": np.float32,
            "scaleoffset": int(scaleoffset_digits),
            "compression": "gzip",
            "compression_opts": 1,
            "shuffle": True,
        }
    if storage == "float16":
        return {"dtype": np.float16, "compression": "gzip", "compression_opts": 1, "shuffle": True}
    raise ValueError(f"unknown storage {storage!r}; choose one of {', '.join(STORAGES)}")


# --------------------------------------------------------------------------- configuration


BURN_IN_LAWS = ("uniform", "log")
from .params import IC_MEAN_CLIP  # noqa: E402  (defined once, stdlib-only: the runtime reads it)


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

    sequences: int
    frames: int = 50
    steps_per_frame: int = 400
    size: int = 64
    burn_in_frames: int = 0
    burn_in_law: str = "uniform"
    val_fraction: float = 0.3
    seed: int = 0
    frequencies: tuple = (2, 3, 4)
    ic_mean: float = 0.5
    ic_mean_sd: float = 0.05
    amplitude: float = 0.1
    dtype: str = "float32"
    storage: str = "lzf"

    def __post_init__(self):
        def need(cond, msg):
            if not cond:
                raise ValueError(msg)

        need(self.sequences >= 1, f"--sequences must be >= 1, got {self.sequences}")
        need(self.frames >= 1, f"--frames must be >= 1, got {self.frames}")
        need(self.steps_per_frame >= 1, f"--steps-per-frame must be >= 1, got {self.steps_per_frame}")
        need(self.size >= 4, f"--size must be >= 4, got {self.size}")
        need(self.burn_in_frames >= 0, f"--burn-in-frames must be >= 0, got {self.burn_in_frames}")
        need(
            self.burn_in_law in BURN_IN_LAWS,
            f"--burn-in-law must be one of {', '.join(BURN_IN_LAWS)}, got {self.burn_in_law!r}",
        )
        need(0.0 <= self.val_fraction < 1.0, f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        need(self.seed >= 0, f"--seed must be >= 0, got {self.seed}")
        need(
            len(self.frequencies) > 0 and all(int(f) >= 1 for f in self.frequencies),
            f"frequencies must be positive integers, got {self.frequencies}",
        )
        need(0.0 < self.amplitude <= 0.5, f"--amplitude must be in (0, 0.5], got {self.amplitude}")
        need(0.0 < self.ic_mean < 1.0, f"--ic-mean must be in (0, 1) (phi is in [0, 1]), got {self.ic_mean}")
        need(0.0 <= self.ic_mean_sd < math.inf, f"--ic-mean-sd must be a number >= 0, got {self.ic_mean_sd}")
        need(self.dtype in ("float32", "float64"), f"--dtype must be float32 or float64, got {self.dtype}")
        storage_options(self.storage)

    @property
    def shape(self) -> tuple:
        return (self.size,) * 3

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


# --------------------------------------------------------------------------- writing


def run_sequence(
    phi0,
    params: CHParams,
    frames: int,
    steps_per_frame: int,
    burn_in: int = 0,
    backend: str = "cpu",
    dtype="float32",
    where: str = "",
    on_frame=None,
):
    """Simulate one sequence; yields (frame index, φ (X,Y,Z) state dtype) for the stored frames.

    The burn-in frames are simulated and dropped. Raises BlowUpError (naming `where`,
    the step and the value) if the run diverges; each yielded frame has been checked.
    """
    stepper = Stepper(np.shape(phi0), params, backend, dtype)
    stepper.set(phi0)
    for _ in range(burn_in):
        stepper.advance(steps_per_frame)
        stepper.get(where)  # blow-up check
    for f in range(frames):
        if f > 0:
            stepper.advance(steps_per_frame)
        yield f, stepper.get(where)
        if on_frame is not None:
            on_frame()


def run_params(params: CHParams) -> dict:
    """What a resumed run or a shard must share with the run it continues: ``params.as_dict()`` and,
    for the spectral scheme, the FFT library (pyfftw and scipy agree to round-off, not bitwise)."""
    d = params.as_dict()
    if params.scheme == "spectral":
        from .spectral import fft_library

        d["fft"] = fft_library()
    return d


def root_attrs(
    params: CHParams,
    frames: int,
    steps_per_frame: int,
    shape,
    dtype: str,
    storage: str,
    backend: str,
    command: str,
    config_json: str,
) -> dict:
    """The root attributes of the layout (module docstring); also used by the surrogate's rollout files."""
    from . import __version__

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **params.as_dict(),
        "scheme": params.scheme,
        "steps_per_frame": steps_per_frame,
        "frames": frames,
        "shape": np.asarray(shape, dtype=np.int64),
        "dtype": dtype,
        "storage": storage,
        "backend": backend,
        "package_version": __version__,
        "command": command,
        "config": config_json,
    }


def solver_attrs(params: CHParams, *args) -> dict:
    """:func:`root_attrs` of a solver run (``*args`` as there), plus ``fft`` for the spectral scheme."""
    attrs = root_attrs(params, *args)
    if params.scheme == "spectral":
        from .spectral import fft_library, fft_version

        attrs["fft"] = fft_version(fft_library())
    return attrs


#: the dimension names of the layout, one per axis of ``phi`` (sequence, frame, x, y, z)
DIMS = ("sequence", "frame", "x", "y", "z")
#: dimensions of each array of the layout (by name)
ARRAY_DIMS = {
    "phi": DIMS,
    "seed": DIMS[:1],
    "ic": DIMS[:1],
    "burn_in": DIMS[:1],
    "split": DIMS[:1],
    "backend": DIMS[:1],
    "t0": DIMS[:1],
    "phi_mean": DIMS[:2],
    "free_energy": DIMS[:2],
    "time": DIMS[1:2],
}


def create_layout(f: h5py.File, n_seq: int, frames: int, shape, storage: str, attrs: dict) -> None:
    """Create the layout (module docstring) in the empty open file ``f``: the root attributes ``attrs``
    (:func:`root_attrs`), every array, empty but ``time``, and the dimension scales.

    The one writer of the layout: ``generate``'s parts and its merged file, ``simulate`` and the
    surrogate's rollout files (export/rollout.py) all call it. ``phi`` is (n_seq, frames, *shape),
    one chunk per frame, stored per ``storage``; ``time[f] = f · steps_per_frame · dt``.

    Dimension scales (HDF5's, so that netCDF readers such as ``xarray.open_dataset(path,
    engine="h5netcdf")`` show named dimensions and coordinates): the datasets ``sequence`` (0 .. S−1)
    and ``frame`` (0 .. F−1), int64, and ``x``, ``y``, ``z`` (i · dx, float64, the positions of the
    grid points in the unit of dx) are the scales of :data:`DIMS`, attached to every array's axes as
    :data:`ARRAY_DIMS` lists; ``time`` is an auxiliary coordinate along ``frame`` (the CF attribute
    ``coordinates="time"`` of phi, phi_mean and free_energy). Readers do not need them (files
    written before them read the same).
    """
    shape = tuple(int(n) for n in shape)
    f.attrs.update(attrs)
    f.create_dataset("phi", shape=(n_seq, frames, *shape), chunks=(1, 1, *shape), **storage_options(storage))
    for name in ("seed", "burn_in"):
        f.create_dataset(name, shape=(n_seq,), dtype=np.int64)
    for name in ("ic", "split", "backend"):
        f.create_dataset(name, shape=(n_seq,), dtype=_STR)
    f.create_dataset("t0", shape=(n_seq,), dtype=np.float64)
    f.create_dataset("phi_mean", shape=(n_seq, frames), dtype=np.float64)
    f.create_dataset("free_energy", shape=(n_seq, frames), dtype=np.float64)
    f.create_dataset("time", data=np.arange(frames) * steps_per_frame_dt(attrs))
    dx = float(attrs["dx"])
    scales = {
        "sequence": np.arange(n_seq, dtype=np.int64),
        "frame": np.arange(frames, dtype=np.int64),
        **{axis: np.arange(n, dtype=np.float64) * dx for axis, n in zip(DIMS[2:], shape)},
    }
    meaning = {
        "sequence": "index of the sequence in this file",
        "frame": "index of the stored frame",
        **{axis: f"{axis} of the grid points (index times dx)" for axis in DIMS[2:]},
    }
    for name in DIMS:
        scale = f.create_dataset(name, data=scales[name])
        scale.make_scale(name)
        scale.attrs["long_name"] = meaning[name]
    f["time"].attrs["long_name"] = "time of the frame since the sequence's frame 0 (frame times steps_per_frame dt)"
    for name, dims in ARRAY_DIMS.items():
        for axis, dim in enumerate(dims):
            f[name].dims[axis].attach_scale(f[dim])
    for name in ("phi", "phi_mean", "free_energy"):
        f[name].attrs["coordinates"] = "time"


def set_sequence(
    f: h5py.File, i: int, *, seed: int, ic: dict | None, burn_in: int, split: str, backend: str, t0: float
) -> None:
    """Fill sequence i's per-sequence arrays of a file made by :func:`create_layout` (meanings in the
    module docstring; ``ic`` is stored as sorted JSON)."""
    f["seed"][i] = seed
    f["ic"][i] = json.dumps(ic or {}, sort_keys=True)
    f["burn_in"][i] = burn_in
    f["split"][i] = split
    f["backend"][i] = backend
    f["t0"][i] = t0


def steps_per_frame_dt(attrs) -> float:
    """Time between stored frames: steps_per_frame · dt (root attributes)."""
    return float(attrs["steps_per_frame"]) * float(attrs["dt"])


class SequenceFile:
    """One sequence streamed into a temporary 1-sequence data set next to `path` (the layout above).

    :meth:`add` writes frame k (φ, its mass and free energy, computed from the state before any
    lossy storage); :meth:`commit` fills the per-sequence arrays, fsyncs and renames the file to
    `path`; :meth:`abort` (a no-op after commit) deletes the temporary file. An interrupted or
    diverged run therefore leaves no file at `path`.
    """

    def __init__(
        self,
        path,
        params: CHParams,
        *,
        frames: int,
        steps_per_frame: int,
        shape,
        backend: str,
        dtype: str = "float32",
        storage: str = "lzf",
        seed: int = 0,
        ic: dict | None = None,
        burn_in: int = 0,
        split: str = "train",
        command: str = "",
        config_json: str = "{}",
    ):
        self.path = Path(path)
        self.tmp = files.tmp_path(self.path)
        self.params = params
        self._masses, self._energies = np.empty(frames), np.empty(frames)
        attrs = solver_attrs(
            params, frames, steps_per_frame, tuple(shape), dtype, storage, backend, command, config_json
        )
        self._file = h5py.File(self.tmp, "w")
        try:
            create_layout(self._file, 1, frames, tuple(shape), storage, attrs)
            set_sequence(
                self._file,
                0,
                seed=seed,
                ic=ic,
                burn_in=burn_in,
                split=split,
                backend=backend,
                t0=burn_in * steps_per_frame * params.dt,
            )
        except BaseException:
            self.abort()
            raise

    def add(self, k: int, phi: np.ndarray) -> None:
        """Frame k (X, Y, Z) of the sequence."""
        self._file["phi"][0, k] = phi
        self._masses[k] = np.mean(phi, dtype=np.float64)
        self._energies[k] = free_energy(phi, self.params)

    def commit(self) -> Path:
        """Finish the file and rename it to `path` (atomic)."""
        self._file["phi_mean"][0] = self._masses
        self._file["free_energy"][0] = self._energies
        self._file.close()
        self._file = None
        files.commit(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Close and delete the temporary file (nothing happens after :meth:`commit`)."""
        if self._file is not None:
            try:
                self._file.close()
            finally:
                self._file = None
        if self.tmp.exists():
            self.tmp.unlink()


def write_sequence_file(
    path,
    phi0,
    params: CHParams,
    *,
    frames: int,
    steps_per_frame: int,
    burn_in: int = 0,
    backend: str = "cpu",
    dtype: str = "float32",
    storage: str = "lzf",
    seed: int = 0,
    ic: dict | None = None,
    split: str = "train",
    command: str = "",
    config_json: str = "{}",
    where: str = "",
    on_frame=None,
    resume_dir=None,
) -> Path:
    """Simulate one sequence and write it atomically as a 1-sequence data set at `path`.

    Frames stream to a temporary file next to `path` (:class:`SequenceFile`), which is renamed
    only when the run finished: an interrupted or diverged run leaves no file at `path`.

    With ``resume_dir`` (a folder; ``simulate`` uses ``OUT.h5.resume/``) the run also checkpoints
    there after every frame — the frame as ``frame_NNNNNN.npy`` and the solver state
    (``Stepper.state``) as ``state.npz``, each written atomically — and a rerun with the same
    arguments continues from the last checkpoint instead of from φ0; the result is bit-identical
    to an uninterrupted run. The folder must hold ``config.json`` (see :func:`prepare_resume_dir`)
    and is removed once `path` is written.
    """
    from .solver import resolve_backend

    path = Path(path)
    backend = resolve_backend(backend, params.scheme)
    if resume_dir is None:
        source = run_sequence(phi0, params, frames, steps_per_frame, burn_in, backend, dtype, where, on_frame)
    else:
        source = _resumable_sequence(
            Path(resume_dir), phi0, params, frames, steps_per_frame, burn_in, backend, dtype, where, on_frame
        )
    out = SequenceFile(
        path,
        params,
        frames=frames,
        steps_per_frame=steps_per_frame,
        shape=np.shape(phi0),
        backend=backend,
        dtype=dtype,
        storage=storage,
        seed=seed,
        ic=ic,
        burn_in=burn_in,
        split=split,
        command=command,
        config_json=config_json,
    )
    try:
        for k, phi in source:
            out.add(k, phi)
        out.commit()
    finally:
        out.abort()
    if resume_dir is not None:
        shutil.rmtree(resume_dir, ignore_errors=True)
    return path


# --------------------------------------------------------------------------- resumable single runs


def resume_dir_of(out) -> Path:
    """``OUT.h5.resume/``: the checkpoint folder of ``simulate OUT.h5``."""
    out = Path(out)
    return out.with_name(out.name + ".resume")


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


def prepare_resume_dir(folder, recipe: dict) -> bool:
    """Create ``folder/config.json`` holding ``recipe``, or check an existing one; True if resuming.

    A folder started with a different recipe is refused with a one-line error naming what differs.
    """
    folder = Path(folder)
    return _claim_recipe(folder, recipe) and (folder / "state.npz").exists()


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
    folder.mkdir(parents=True, exist_ok=True)
    if _create_new(cfg, json.dumps(recipe, indent=1, sort_keys=True).encode()):
        return False
    return _check_recipe(folder, cfg, recipe)  # another process wrote it meanwhile


def _create_new(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` if no file is there, atomically: a complete temporary file is hard-linked to
    the name (``link`` fails if the name exists, also on NFS), so a reader never sees a partial file and
    of two writers one wins. True if written, False if ``path`` existed. Where hard links are not
    supported, the name is created with O_CREAT | O_EXCL and written (exclusive, not atomic)."""
    tmp = files.tmp_path(path, hidden=True)
    try:
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
    finally:
        if tmp.exists():
            tmp.unlink()


def _resumable_sequence(
    folder: Path,
    phi0,
    params: CHParams,
    frames: int,
    steps_per_frame: int,
    burn_in: int,
    backend: str,
    dtype,
    where: str,
    on_frame,
):
    """:func:`run_sequence` with a checkpoint per frame in ``folder`` (frames already there are read back)."""
    if burn_in:
        raise ValueError("resumable runs take no burn-in")
    stepper = Stepper(np.shape(phi0), params, backend, dtype)
    state_file = folder / "state.npz"
    done = -1
    if state_file.exists():
        try:
            with np.load(state_file) as z:
                saved = {k: z[k] for k in z.files}
            done = int(saved.pop("frame"))
            stepper.load_state(saved)
        except (OSError, ValueError, KeyError) as e:
            raise ValueError(f"{state_file} is unreadable ({e}); delete the folder {folder} to start over") from None
        log.info("resuming from frame %d of %d (%s)", done, frames, folder)
    else:
        stepper.set(phi0)
    for k in range(frames):
        frame_file = folder / f"frame_{k:06d}.npy"
        if k <= done:
            phi = np.load(frame_file)
        else:
            if k > 0:
                stepper.advance(steps_per_frame)
            phi = stepper.get(where)
            files.atomic_write(frame_file, lambda fh: np.save(fh, phi), hidden=True)
            state = stepper.state()
            files.atomic_write(state_file, lambda fh: np.savez(fh, frame=np.array(k), **state), hidden=True)
        yield k, phi
        if on_frame is not None:
            on_frame()


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


def parts_recipe(config: DatasetConfig, params: CHParams) -> dict:
    """What a data set's parts must share, as ``OUT.h5.parts/config.json`` holds it: ``config`` (the
    DatasetConfig: sizes, seeds, IC law, dtype, storage) and ``params`` (:func:`run_params`: the physics,
    the scheme and its settings). Throughput options (backend, --batch, --threads) are not part of it:
    they do not change the data (the backend is recorded per sequence)."""
    return json.loads(
        json.dumps({"config": json.loads(config.to_json()), "params": run_params(params)}, sort_keys=True)
    )


def _file_recipe(attrs) -> dict:
    """The :func:`parts_recipe` a 1-sequence data set (a part) was made with, read from its root attributes."""
    attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in attrs.items()}
    params = CHParams.from_metadata(attrs).as_dict()
    if "fft" in attrs:  # "scipy 1.16.0" -> "scipy", the library as run_params names it
        params["fft"] = str(attrs["fft"]).split()[0]
    return json.loads(json.dumps({"config": json.loads(attrs.get("config", "{}")), "params": params}, sort_keys=True))


def _prepare_parts(out, config: DatasetConfig, params: CHParams) -> tuple[Path, dict]:
    """Create OUT.h5.parts/config.json, or check that an existing one holds the same
    :func:`parts_recipe` (ValueError naming the differing keys); returns (parts folder, recipe)."""
    parts = parts_dir(out)
    recipe = parts_recipe(config, params)
    _claim_recipe(parts, recipe)
    return parts, recipe


class PartsLock:
    """An exclusive claim of one job on a parts folder that many processes, on many machines, share.

    ``generate --shard K/N`` holds ``PARTS/shard-K-of-N.lock`` (``shard-0-of-1.lock`` without
    ``--shard``) while it runs, and ``merge`` holds ``PARTS/merge.lock``. The lock is a file created
    with O_CREAT | O_EXCL, which is atomic on local file systems and on NFS (v3 and later) and
    Lustre, where fcntl/flock locks are unreliable or absent; it holds JSON ``{"pid", "host",
    "started", "command", "token"}``. A second process wanting the same lock stops with one line
    naming the holder (:meth:`acquire`); other shards of the folder run beside it (their locks differ).
    The lock is deleted when its job ends, also after an error, Ctrl-C or SIGTERM (the ``generate``
    command turns SIGTERM, e.g. a Slurm time limit, into an exception).

    Stale locks: a job killed with SIGKILL, or whose machine died, leaves its lock behind. A lock of
    this host whose pid is no longer running is stale: it is taken over, with a warning. The pid of a
    lock of another host cannot be checked from here, so that lock is refused with a message that
    names its host and pid and says to delete the file once that job is known to be gone.
    """

    def __init__(self, folder, name: str, what: str, command: str = ""):
        self.path = Path(folder) / name
        self.what = what
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
        try:
            os.kill(int(info["pid"]), 0)
        except ProcessLookupError:
            return True
        except (OSError, ValueError, KeyError, TypeError, OverflowError):  # alive under another user, or odd
            return False
        return False

    @staticmethod
    def describe(info: dict | None) -> str:
        if not info:
            return "a process whose lock file is unreadable"
        return f"pid {info.get('pid')} on host {info.get('host')}, started {info.get('started')}"

    def acquire(self) -> PartsLock:
        """Create the lock file; ValueError (one line) naming the holder if another job holds it."""
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
                raise ValueError(
                    f"{self.what} is already running ({self.describe(info)}); if that job is gone, delete {self.path}"
                ) from None
            with os.fdopen(fd, "w") as fh:
                json.dump(self.info, fh)
                fh.flush()
                os.fsync(fh.fileno())
            self.held = True
            return self
        raise ValueError(f"could not take the lock {self.path} (other jobs keep taking it)")

    def _remove_stale(self, info: dict) -> bool:
        """Remove the lock file if it still holds ``info`` (renamed aside first, so that a lock another
        process took meanwhile is put back rather than deleted); True if the name is free now."""
        aside = files.tmp_path(self.path.with_name(self.path.name + ".stale"), hidden=True)
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


DEFAULT_BATCH = {"numpy": 1, "cpu": 1, "cuda": 16}


def default_batch(backend: str) -> int:
    """Sequences advanced together by ``generate`` on a (resolved) backend: 1 on the CPU (the fused kernel
    already uses every core on one 64³ grid), 16 on CUDA (one 64³ grid cannot fill a GPU)."""
    return DEFAULT_BATCH.get(backend, 1)


def _run_batched(
    todo, config: DatasetConfig, params: CHParams, backend: str, batch: int, open_file, on_frame=None, on_done=None
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
    """
    from . import initial

    todo = list(todo)
    n = max(1, min(batch, len(todo)))
    if not todo:
        return
    stepper = Stepper((n, *config.shape), params, backend, config.dtype)
    queue = iter(todo)
    slots = [None] * n  # per member: [sequence index, k, SequenceFile] or None
    names = [""] * n

    def fill(m):
        i = next(queue, None)
        if i is None:
            slots[m] = None
            stepper.set(np.full(config.shape, config.ic_mean, config.dtype), member=m)
            return
        spec = config.sequence_spec(i)
        ic = spec["ic"]
        phi0 = initial.perlin(
            config.shape, frequency=ic["frequency"], seed=ic["seed"], mean=ic["mean"], amplitude=ic["amplitude"]
        )
        stepper.set(phi0, member=m)
        names[m] = f"sequence {i}"
        slots[m] = [i, -spec["burn_in"], None]
        slots[m][2] = open_file(i, spec)

    def visit(m, fresh):
        """Handle member m's current state (fresh: just loaded, no step taken since)."""
        while slots[m] is not None:
            i, k, out = slots[m]
            if k < 0:
                if not fresh:
                    stepper.get(names, member=m)  # blow-up check of a burn-in frame
                return
            out.add(k, stepper.get(names, member=m))
            if on_frame is not None:
                on_frame()
            if k < config.frames - 1:
                return
            out.commit()
            if on_done is not None:
                on_done(i)
            fill(m)
            fresh = True

    try:
        for m in range(n):
            fill(m)
            visit(m, True)
        while any(s is not None for s in slots):
            stepper.advance(config.steps_per_frame)
            for m in range(n):
                if slots[m] is not None:
                    slots[m][1] += 1
                    visit(m, False)
    finally:
        for s in slots:
            if s is not None and s[2] is not None:
                s[2].abort()


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
    default :func:`default_batch` of the backend); the data do not depend on it. `progress`: see
    :class:`Progress`. Returns `out` when merged, else the parts folder.
    """
    from .cli_common import check_memory, check_output
    from .solver import memory_needed, resolve_backend

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
    members = max(1, min(batch, len(range(k, config.sequences, n))))
    check_memory(
        memory_needed((members, *config.shape), config.dtype), f"a batch of {members} sequence(s) at {config.size}^3"
    )
    parts, recipe = _prepare_parts(out, config, params)
    with shard_lock(parts, k, n, command) as lock:
        merging = _running_jobs(parts, MERGE_LOCK)
        if merging:
            raise ValueError(f"{out} is being merged ({PartsLock.describe(merging[0][1])}); wait for it to finish")
        log.info(
            "generating %s: %d sequences x %d frames x %d steps at %d^3, backend %s, batch %d%s",
            out,
            config.sequences,
            config.frames,
            config.steps_per_frame,
            config.size,
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
            _run_batched(todo, config, params, backend, batch, open_file, report.frame, lambda i: report.sequence())
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


# --------------------------------------------------------------------------- merging


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
    from .cli_common import check_output

    out = Path(out)
    parts = parts_dir(out)
    cfg_file = parts / "config.json"
    if not cfg_file.exists():
        raise ValueError(f"no parts to merge: {cfg_file} not found (run `generate` first)")
    check_output(out, overwrite)
    with PartsLock(parts, MERGE_LOCK, f"merge of {parts}"):
        running = _running_jobs(parts, "shard-*.lock", _own_lock)
        if running:
            path, info = running[0]
            raise ValueError(
                f"cannot merge {out}: a shard is still running ({PartsLock.describe(info)}; {path.name}); "
                f"merge when it has finished, or delete {path} if that job is gone"
            )
        _merge(out, parts, cfg_file, command)
        if not keep_parts:
            shutil.rmtree(parts)
    return out


def _merge(out: Path, parts: Path, cfg_file: Path, command: str) -> None:
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
    with files.atomic_path(out) as tmp, h5py.File(part_path(parts, 0), "r") as first:
        with h5py.File(tmp, "w") as f:
            attrs = dict(first.attrs)
            frames, shape = int(attrs["frames"]), tuple(int(v) for v in attrs["shape"])
            backends, commands = set(), []
            attrs["command"] = command  # the merge's, not shard 0's
            create_layout(f, n_seq, frames, shape, attrs["storage"], attrs)
            for i in range(n_seq):
                try:
                    with h5py.File(part_path(parts, i), "r") as src:
                        for name in ("seed", "ic", "burn_in", "split", "backend", "t0", "phi_mean", "free_energy"):
                            f[name][i] = src[name][0]
                        backends.add(
                            src["backend"][0].decode() if isinstance(src["backend"][0], bytes) else src["backend"][0]
                        )
                        part_command = str(src.attrs.get("command", ""))
                        if part_command not in commands:
                            commands.append(part_command)
                        for k in range(frames):
                            mask, chunk = src["phi"].id.read_direct_chunk((0, k, 0, 0, 0))
                            f["phi"].id.write_direct_chunk((i, k, 0, 0, 0), chunk, mask)
                except (OSError, KeyError, ValueError) as e:  # a part damaged inside (its chunks)
                    text = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
                    raise ValueError(
                        f"cannot merge {out}: part {part_path(parts, i)} is unreadable ({text}){redo}"
                    ) from None
            f.attrs["backend"] = ",".join(sorted(backends))
            f.attrs["part_commands"] = json.dumps(commands)
    log.info("merged %d sequences into %s", n_seq, out)


# --------------------------------------------------------------------------- reading


class _Frames:
    """Lazy float32 view of the `phi` dataset: indexing reads only what is asked."""

    def __init__(self, dset):
        self._dset = dset
        self.shape = dset.shape
        self.dtype = np.dtype(np.float32)
        self.ndim = dset.ndim

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, key):
        return np.asarray(self._dset[key], dtype=np.float32)


REQUIRED = ("phi", "seed", "split", "phi_mean", "free_energy", "time")


class Dataset:
    """A ch3d data set opened for lazy reading (use as a context manager).

    Attributes: ``phi`` (lazy, (S, F, X, Y, Z) float32 on indexing), ``attrs`` (dict of
    the root attributes), ``params`` (CHParams), ``split`` (S,) str, ``seed``,
    ``burn_in``, ``phi_mean``, ``free_energy``, ``time``, ``t0`` (numpy arrays), ``ic``
    (list of dicts).
    """

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.exists():
            raise ValueError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise ValueError(f"{self.path} is a folder, not a data set file")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError:
            raise ValueError(f"{self.path} is not a readable HDF5 file (corrupt or truncated?)") from None
        try:
            self._check()
        except Exception:
            self._file.close()
            raise

    def _check(self):
        f = self._file
        fmt = f.attrs.get("format")
        if isinstance(fmt, bytes):
            fmt = fmt.decode()
        if fmt != FORMAT:
            raise ValueError(f"{self.path} is not a ch3d data set (root attribute format={fmt!r}, expected {FORMAT!r})")
        if int(f.attrs.get("format_version", -1)) > FORMAT_VERSION:
            raise ValueError(
                f"{self.path} has format version {f.attrs['format_version']}, newer than this "
                f"package reads ({FORMAT_VERSION}); upgrade ch3d"
            )
        missing = [name for name in REQUIRED if name not in f]
        if missing:
            raise ValueError(f"{self.path} is an incomplete ch3d data set (missing {', '.join(missing)})")
        try:
            self.attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            self.params = CHParams.from_metadata(self.attrs)
            self.phi = _Frames(f["phi"])
            self.split = f["split"].asstr()[...]
            self.seed = f["seed"][...]
            self.burn_in = f["burn_in"][...] if "burn_in" in f else np.zeros(len(self.seed), np.int64)
            self.phi_mean = f["phi_mean"][...]
            self.free_energy = f["free_energy"][...]
            self.time = f["time"][...]
            self.t0 = f["t0"][...] if "t0" in f else np.zeros(len(self.seed))
            self.ic = [json.loads(s) for s in f["ic"].asstr()[...]] if "ic" in f else [{}] * len(self.seed)
        except (KeyError, OSError, ValueError) as e:
            raise ValueError(f"{self.path} is a damaged ch3d data set ({e})") from None

    @property
    def n_sequences(self) -> int:
        return self.phi.shape[0]

    @property
    def n_frames(self) -> int:
        return self.phi.shape[1]

    @property
    def shape(self) -> tuple:
        return tuple(self.phi.shape[2:])

    def indices(self, split: str) -> np.ndarray:
        """Indices of the sequences of one split ("train" or "val")."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return np.flatnonzero(self.split == split)

    def sequence(self, i: int) -> np.ndarray:
        """All frames of sequence i: (F, X, Y, Z) float32."""
        return self.phi[i]

    def summary(self) -> str:
        a = self.attrs
        n_val = int(np.sum(self.split == "val"))
        fe = self.free_energy
        drift = np.max(np.abs(self.phi_mean - self.phi_mean[:, :1])) if self.phi_mean.size else 0.0
        lines = [
            f"{self.path}: {FORMAT} v{a.get('format_version')} (ch3d {a.get('package_version')})",
            f"  sequences {self.n_sequences} ({self.n_sequences - n_val} train, {n_val} val), frames {self.n_frames},"
            f" grid {'x'.join(map(str, self.shape))}",
            f"  physics: {self.params.describe()}, {a['steps_per_frame']} steps/frame",
            f"  storage {a.get('storage')} ({self.phi._dset.dtype}), state dtype {a.get('dtype')},"
            f" backend {a.get('backend')}",
            f"  free energy/volume: first frame {np.mean(fe[:, 0]):.5g}, last frame {np.mean(fe[:, -1]):.5g}"
            f" (mean over sequences); max mass drift {drift:.3g}",
            f"  command: {a.get('command', '')}",
        ]
        return "\n".join(lines)

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_dataset(path) -> Dataset:
    """Open a ch3d HDF5 data set lazily; ValueError with one line for a foreign or corrupt file."""
    return Dataset(path)
