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
from .layout import create_layout, set_sequence, solver_attrs
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
    fills the per-sequence arrays, fsyncs and renames the file to `path`; :meth:`abort` (a no-op after
    commit) deletes the temporary file. An interrupted or diverged run therefore leaves no file at `path`.

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
    ):
        self.path = Path(path)
        self.tmp = files.tmp_path(self.path)
        self.params = params
        self.masses, self.energies = np.empty(frames), np.empty(frames)
        if attrs is None:
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

    def add(self, k: int, phi: np.ndarray, mass: float | None = None, energy: float | None = None) -> None:
        """Frame k (X, Y, Z) of the sequence; its mass and free energy unless given (computed on a device)."""
        self._file["phi"][0, k] = phi
        self.masses[k] = np.mean(phi, dtype=np.float64) if mass is None else mass
        self.energies[k] = free_energy(phi, self.params) if energy is None else energy

    def commit(self) -> Path:
        """Finish the file and rename it to `path` (atomic)."""
        self._file["phi_mean"][0] = self.masses
        self._file["free_energy"][0] = self.energies
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
            files.atomic_write(frame_file, lambda fh: np.save(fh, phi), hidden=True)
            state = stepper.state()
            files.atomic_write(state_file, lambda fh: np.savez(fh, frame=np.array(k), **state), hidden=True)
        yield k, phi
        if on_frame is not None:
            on_frame()
