"""The generation pipeline: a frame of the whole batch leaves the solver once, and its checks, compression
and HDF5 writing run in a writer thread while the solver computes the next frame.

Per frame ``generate``'s driver (:func:`ch_numba.dataset.generation._run_batched`) takes a
:class:`Snapshot` of the batch (:func:`snapshot_source`) and hands it with the frame's work — the
:data:`ops <Writer.submit>` open, frame and commit — to a :class:`Writer`:

- ``cpu`` (and ``numpy``, spectral): the snapshot is a host copy of the batch; the writer checks each
  member for blow-up (:func:`ch_numba.solver.blowup_value`), and :meth:`SequenceFile.add` computes the
  mass (numpy) and the free energy (the Numba kernel, on one thread inside the writer): the same
  functions on the same arrays as before, so the files are bitwise those of the serial driver.
- ``cuda``: the blow-up check, mass and free energy of the whole batch are reduced on the device
  (:mod:`ch_numba.kernels_cuda_stats`, float64 accumulation), and the batch and its partial sums are
  copied to pinned host buffers asynchronously on a stream, one copy of the batch per frame; the writer
  waits for the copy's event. The buffers come from a pool of ``depth + 1``, given back when written.

The writer (``writers=1``, the default) is a thread fed by a bounded queue of ``depth`` frames: the
solver runs at most that far ahead of the writing, and the held memory is bounded. The CPU kernels
release the GIL (``nogil``), so the writer's compression (LZF inside HDF5, which serialises the writes
of one process) overlaps the stepping. ``writers=0`` runs the same ops in the solver's thread, in the
same order (the reference the tests compare with). The writer's ops run strictly in order, so a
sequence is committed only after all its frames are written.

Errors: a failure in the writer (a blow-up found by its check, a full disk, ...) is raised again, the
same exception, in the solver's thread at its next hand-over, which stops the run; the writer deletes
the temporary files of the sequences it had open and keeps the sequences it finished (their parts are
committed). An error in the solver's thread (or an interrupt) lets the writer write the frames already
handed over (at most ``depth``, so a sequence finished before the error is committed), then stops it and
deletes the open temporary files (:meth:`Writer.abort`).
"""

from __future__ import annotations

import logging
import queue
import threading

import numpy as np

from ..solver import PHYSICAL_RANGE, BlowUpError, blowup_value

log = logging.getLogger("ch_numba.dataset")

#: frames the solver may run ahead of the writer (the queue's bound)
DEPTH = 2
#: seconds between two looks at the writer's state while the solver's thread waits on it
POLL = 0.05


def pipeline_memory(batch: int, grid, dtype, backend: str, writers: int, depth: int = DEPTH) -> int:
    """Bytes the pipeline holds beyond the solver's state: the snapshots of the batch in flight
    (``depth`` queued, one being written, one being taken; one with ``writers=0``)."""
    frames = depth + 2 if writers else 1
    return frames * batch * int(np.prod(grid, dtype=np.int64)) * np.dtype(dtype).itemsize


def threads_allowed() -> bool:
    """Whether a writer thread may run Numba's parallel kernels (the free energy) while the solver runs its
    own: not with Numba's ``workqueue`` threading layer, which is not thread-safe (``generate`` then writes
    in the solver's thread, ``writers=0``). The ``omp`` and ``tbb`` layers are."""
    import numba

    from ..solver import free_energy

    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run in this process yet: run one, which picks the layer
        free_energy(np.full((3, 3, 3), 0.5, np.float32))
        layer = numba.threading_layer()
    return layer != "workqueue"


class Snapshot:
    """One frame of the batch on the host: :meth:`field` (X, Y, Z) of a member, and :meth:`stats` of a member
    when the backend reduced it (mass, energy, min, max, nonfinite; ``partials`` from the device), else None.
    :meth:`wait` waits for the device's copy (``event``); :meth:`release` gives the buffers back."""

    def __init__(self, phi: np.ndarray, partials=None, voxels: int = 0, event=None, release=None):
        self.phi, self._partials, self._voxels = phi, partials, voxels
        self._event, self._release, self._stats = event, release, None

    def wait(self) -> None:
        if self._event is not None:
            self._event.synchronize()
            self._event = None
        if self._partials is not None and self._stats is None:
            from ..kernels_cuda_stats import finish

            self._stats = finish(self._partials, self._voxels)

    def field(self, m: int) -> np.ndarray:
        return self.phi[m]

    def stats(self, m: int) -> dict | None:
        if self._stats is None:
            return None
        return {k: v[m] for k, v in self._stats.items()}

    def release(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None


class _HostSource:
    """Snapshots of a host-side Stepper (cpu, numpy, spectral): a copy of the batch per frame."""

    def __init__(self, stepper):
        self.stepper = stepper
        self.members = list(range(stepper.batch))

    def take(self, wait) -> Snapshot:
        return Snapshot(self.stepper._host(self.members))

    def close(self) -> None:
        pass


class _CudaSource:
    """Snapshots of a CUDA Stepper: device reductions, then one asynchronous copy of the batch (and one of
    its (B, X, 5) partial sums) into pinned buffers on a stream; ``depth + 2`` buffer pairs in a pool."""

    def __init__(self, stepper, params, buffers: int):
        from numba import cuda

        from ..kernels_cuda_stats import FIELDS

        self.cuda, self.stepper, self.params = cuda, stepper, params
        self.stream = cuda.stream()  # a blocking stream: ordered after the steps on the default stream
        nb, nx = stepper.batch, stepper.grid[0]
        self.voxels = int(np.prod(stepper.grid))
        self.partials = cuda.device_array((nb, nx, len(FIELDS)), np.float64)
        self.pool = queue.Queue()
        for _ in range(buffers):
            self.pool.put(
                (
                    cuda.pinned_array((nb, *stepper.grid), stepper.dtype),
                    cuda.pinned_array((nb, nx, len(FIELDS)), np.float64),
                )
            )

    def take(self, wait) -> Snapshot:
        from ..kernels_cuda_stats import launch_stats

        phi_h, part_h = wait(self.pool)
        state = self.stepper._cuda._a  # the batch after the last step (kernels_cuda.BatchStepper)
        launch_stats(state, self.params, self.partials, self.stream)
        state.copy_to_host(phi_h, stream=self.stream)
        self.partials.copy_to_host(part_h, stream=self.stream)
        event = self.cuda.event()
        event.record(self.stream)
        return Snapshot(phi_h, part_h, self.voxels, event, release=lambda: self.pool.put((phi_h, part_h)))

    def close(self) -> None:
        self.stream.synchronize()


def snapshot_source(stepper, params, writers: int, depth: int = DEPTH):
    """The snapshot maker of a Stepper's backend (see the module docstring)."""
    if stepper.backend == "cuda" and stepper._spectral is None:
        return _CudaSource(stepper, params, depth + 2 if writers else 1)
    return _HostSource(stepper)


class Writer:
    """Runs the frames' ops in order: in a thread fed by a bounded queue (``writers=1``) or in the caller's
    thread (``writers=0``).

    ``submit(snapshot, ops)`` hands over one frame; ``snapshot`` may be None for ops that need none. Ops:

    - ``("open", i, spec)``: ``open_file(i, spec)`` → the sequence file of sequence i;
    - ``("frame", i, k, name, step, m, field)``: check member m's field (``field``, or the snapshot's
      member m when ``field`` is None) for blow-up (:class:`BlowUpError` naming ``name``, at ``step``),
      then, for k ≥ 0, write it as frame k of sequence i and call ``on_frame()``;
    - ``("commit", i)``: commit sequence i's file and call ``on_done(i)``.

    :meth:`close` waits for the writer and raises its error, if any; :meth:`abort` stops it and deletes
    the open temporary files.
    """

    def __init__(self, open_file, on_frame=None, on_done=None, writers: int = 1, depth: int = DEPTH):
        if writers not in (0, 1):
            raise ValueError(f"writers must be 0 (write in the solver's thread) or 1 (a writer thread), got {writers}")
        self.open_file, self.on_frame, self.on_done = open_file, on_frame, on_done
        self.files = {}  # sequence index -> open SequenceFile
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = None
        if writers:
            self._queue = queue.Queue(maxsize=max(1, depth))
            self._thread = threading.Thread(target=self._loop, name="ch3d-writer", daemon=True)
            self._thread.start()

    # ------------------------------------------------------------------ the solver's side

    def wait(self, q: queue.Queue):
        """``q.get()`` from the solver's thread, raising the writer's error instead of waiting forever."""
        while True:
            self.check()
            try:
                return q.get(timeout=POLL)
            except queue.Empty:
                if self._thread is None:
                    raise RuntimeError("internal error: no free snapshot buffer without a writer thread") from None

    def check(self) -> None:
        """Raise the writer's error, if it failed."""
        if self.error is not None:
            raise self.error

    def submit(self, snapshot: Snapshot | None, ops: list) -> None:
        if not ops:
            if snapshot is not None:
                snapshot.release()
            return
        if self._thread is None:
            self._run(snapshot, ops)
            return
        while True:
            self.check()
            if not self._thread.is_alive():
                raise RuntimeError("the writer thread stopped")
            try:
                self._queue.put((snapshot, ops), timeout=POLL)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """Wait for every submitted frame to be written; raises the writer's error."""
        if self._thread is not None:
            while self._thread.is_alive():
                self.check()
                try:
                    self._queue.put(None, timeout=POLL)
                    break
                except queue.Full:
                    continue
            self._thread.join()
        self.check()

    def abort(self, drain: bool = False) -> None:
        """Stop the writer and delete the open files' temporary files. ``drain``: first let it write the
        frames already handed over (at most ``depth``; not when the writer itself failed), so that the
        sequences they finish are committed; else they are dropped."""
        if self._thread is not None:
            if drain:
                while self._thread.is_alive() and self.error is None:
                    try:
                        self._queue.put(None, timeout=POLL)
                        break
                    except queue.Full:
                        continue
                while self._thread.is_alive() and self.error is None:
                    self._thread.join(POLL)
            self._stop.set()
            while self._thread.is_alive():
                try:
                    self._queue.get_nowait()  # make room, so the writer sees the stop
                except queue.Empty:
                    pass
                self._thread.join(POLL)
        self._stop.set()
        self._abort_files()

    # ------------------------------------------------------------------ the writer's side

    def _loop(self) -> None:
        try:
            import numba

            numba.set_num_threads(1)  # this thread's kernels (the free energy): leave the cores to the solver
        except (ImportError, ValueError):
            pass
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=POLL)
            except queue.Empty:
                continue
            if item is None:
                return
            try:
                self._run(*item)
            except BaseException as e:  # raised again in the solver's thread
                self.error = e
                self._abort_files()
                return

    def _run(self, snapshot: Snapshot | None, ops: list) -> None:
        try:
            if snapshot is not None:
                snapshot.wait()
            for op in ops:
                if self._stop.is_set():
                    return
                getattr(self, "_" + op[0])(snapshot, *op[1:])
        finally:
            if snapshot is not None:
                snapshot.release()

    def _open(self, snapshot, i, spec) -> None:
        self.files[i] = self.open_file(i, spec)

    def _frame(self, snapshot, i, k, name, step, m, field) -> None:
        stats = None
        if field is None:
            field, stats = snapshot.field(m), snapshot.stats(m)
        if stats is None:
            bad = blowup_value(field)
        elif stats["nonfinite"] or not (PHYSICAL_RANGE[0] <= stats["min"] and stats["max"] <= PHYSICAL_RANGE[1]):
            bad = blowup_value(field)  # the offending value as the host check reports it
        else:
            bad = None
        if bad is not None:
            raise BlowUpError(int(step), bad, name, m)
        if k < 0:
            return
        if stats is None:
            self.files[i].add(k, field)
        else:
            self.files[i].add(k, field, mass=stats["mass"], energy=stats["energy"])
        if self.on_frame is not None:
            self.on_frame()

    def _commit(self, snapshot, i) -> None:
        self.files.pop(i).commit()
        if self.on_done is not None:
            self.on_done(i)

    def _abort_files(self) -> None:
        files, self.files = self.files, {}
        for f in files.values():
            try:
                f.abort()
            except Exception as e:  # keep deleting the others; the run's error is the one reported
                log.warning("warning: could not delete the temporary file of %s (%s)", getattr(f, "path", "?"), e)
