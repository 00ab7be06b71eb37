"""The sequence writer: one simulated sequence streamed into a 1-sequence data set (the layout of
:mod:`ch_numba.dataset.layout`) under a temporary name and renamed when complete (:class:`SequenceFile`,
:func:`write_sequence_file`), optionally resumable from per-frame checkpoints (``simulate``'s
``OUT.h5.resume/``). The one way to write a sequence file: ``generate``'s parts, ``simulate`` and the
surrogate's rollout files (export/rollout.py) all write through :class:`SequenceFile`.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import h5py
import numpy as np

from .. import files
from ..params import CHParams
from ..solver import Stepper, free_energy
from .layout import create_layout, discard, set_sequence, solver_attrs
from .recipe import _claim_recipe

log = logging.getLogger("ch_numba.dataset")


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


class SequenceFile:
    """One sequence streamed into a temporary 1-sequence data set next to `path` (the layout of
    :mod:`ch_numba.dataset.layout`).

    :meth:`add` writes frame k (φ, its mass and free energy, computed from the state before any
    lossy storage; kept in :attr:`masses` and :attr:`energies`, (frames,) float64); :meth:`commit`
    fills the per-sequence arrays, fsyncs and publishes the file as `path` (renamed over it if
    ``overwrite``, else only if no file has that name: :func:`ch_numba.files.publish`); :meth:`abort` (a
    no-op after commit) deletes the temporary file. An interrupted or diverged run therefore leaves no
    file at `path`.

    A full disk: every frame is flushed to the file as it is added, so a write that fails does so in
    :meth:`add` (or :meth:`commit`), not later in a destructor; the file is then emptied (truncated, which
    :meth:`abort` closes it without writing (:func:`~ch_numba.dataset.layout.discard`) and deletes it, and
    :class:`ch_numba.files.NoSpaceError` names `path` and the size of the whole file (no h5py object is
    left to be destroyed after its file failed: no "Exception ignored" tracebacks, no crash at exit).

    The root attributes are ``attrs`` if given (e.g. the surrogate's rollout files: :func:`root_attrs`
    plus their own), else those of a solver run (:func:`solver_attrs` of the arguments, with
    ``command`` and ``config_json``).
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
        attrs: dict | None = None,
        overwrite: bool = True,
    ):
        self.path = Path(path)
        self.tmp = files.tmp_path(self.path)
        self.params = params
        self.overwrite = overwrite
        self.masses, self.energies = np.empty(frames), np.empty(frames)
        # the whole file's size, uncompressed (an upper bound): what a full disk's message says is needed
        self.needed = int(frames * np.prod(shape) * (2 if storage == "float16" else 4) + 64 * 1024)
        if attrs is None:
            attrs = solver_attrs(
                params, frames, steps_per_frame, tuple(shape), dtype, storage, backend, command, config_json
            )
        self._file = self._phi = None
        try:
            self._file = h5py.File(self.tmp, "w")
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
            self._phi = self._file["phi"]
            self._file.flush()
        except BaseException as exc:
            self._fail(exc)
            raise

    def _fail(self, exc: BaseException) -> None:
        """Delete the temporary file after ``exc``; a full disk becomes NoSpaceError naming `path`."""
        self.abort()
        if isinstance(exc, Exception) and files.is_no_space(exc) and not isinstance(exc, files.NoSpaceError):
            raise files.no_space_error(self.path, needed=self.needed, exc=exc) from None

    def add(self, k: int, phi: np.ndarray, mass: float | None = None, energy: float | None = None) -> None:
        """Frame k (X, Y, Z) of the sequence (written to the file at once); its mass and free energy unless
        given (computed on a device)."""
        try:
            self._phi[0, k] = phi
            self._file.flush()
        except BaseException as exc:
            self._fail(exc)
            raise
        self.masses[k] = np.mean(phi, dtype=np.float64) if mass is None else mass
        self.energies[k] = free_energy(phi, self.params) if energy is None else energy

    def commit(self) -> Path:
        """Finish the file and publish it as `path` (atomic; no-clobber unless ``overwrite``)."""
        try:
            means, energies = self._file["phi_mean"], self._file["free_energy"]
            means[0], energies[0] = self.masses, self.energies
            self._file.flush()  # a failure shows here, while the datasets are held (not in their destructors)
            del means, energies
            self._phi = None
            self._file.close()
            self._file = None
            files.commit(self.tmp, self.path, self.overwrite)
        except BaseException as exc:
            self._fail(exc)
            raise
        return self.path

    def abort(self) -> None:
        """Close and delete the temporary file (nothing happens after :meth:`commit`), writing nothing more
        to it (:func:`~ch_numba.dataset.layout.discard`: after a full disk, HDF5's closing writes would fail)."""
        if self._file is not None:
            file, self._file = self._file, None
            discard(file)  # before the dataset is let go: closing it would write its cached data
            self._phi = None
        self.tmp.unlink(missing_ok=True)


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
    overwrite: bool = True,
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
    from ..solver import resolve_backend

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
        overwrite=overwrite,
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


def prepare_resume_dir(folder, recipe: dict) -> bool:
    """Create ``folder/config.json`` holding ``recipe``, or check an existing one; True if resuming.

    A folder started with a different recipe is refused with a one-line error naming what differs.
    """
    folder = Path(folder)
    return _claim_recipe(folder, recipe) and (folder / "state.npz").exists()


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
            files.atomic_write(frame_file, lambda fh, phi=phi: np.save(fh, phi), hidden=True)
            state = stepper.state()
            files.atomic_write(
                state_file, lambda fh, k=k, state=state: np.savez(fh, frame=np.array(k), **state), hidden=True
            )
        yield k, phi
        if on_frame is not None:
            on_frame()
