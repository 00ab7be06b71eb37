"""Roll out an exported CRNN step with onnxruntime: numpy in, numpy out, no PyTorch.

The model (see :mod:`export.runtime.spec`) is one step ``(φ_n, h1, h2) -> (φ_{n+1}, h1', h2')``;
:class:`Rollout` keeps the hidden states h1, h2 (N, H, X, Y, Z) between steps, zero at the start
(or after :meth:`Rollout.reset`), exactly like :meth:`surrogate.CRNN.rollout`. One step is one
saved frame of the ground truth, i.e. ``time_per_step = steps_per_frame · dt`` of physical time.

Arrays are at the network's resolution: the ground-truth grid sampled every ``downscale``-th
voxel (:meth:`Rollout.downscale`, nearest); :meth:`Rollout.upscale` repeats voxels back to the
full grid. Shapes in and out are (X, Y, Z) or (N, 1, X, Y, Z); the batch shares nothing but the
weights. A solver batch (B, X, Y, Z) (ch_numba.solver: batch axis first, no channel axis) enters
as ``downscale(phi)[:, None]`` and an output goes back as ``out[:, 0]``.

State on the device: the six state tensors (φ, h1, h2 and their successors) are onnxruntime
``OrtValue`` buffers on the provider's device, bound with ``session.io_binding()``; each step
binds the current buffers as inputs and the other three as outputs, runs, and swaps them. On
CUDA nothing crosses the PCIe bus during a free-running rollout except the frames asked for
(every ``every``-th step); on CPU the same code avoids any allocation per step.

Providers, CUDA options, logging and CPU tuning: :mod:`export.runtime.providers`. The guards
against inputs outside the training data (:class:`~export.runtime.TrainingRangeWarning`): :mod:`export.runtime.guards`.

Refused with a one-line ValueError: a file that onnxruntime cannot read, a model without the
inputs phi, h1, h2 / outputs phi_next, h1_next, h2_next, a model without valid ``ch3d`` metadata,
and grids smaller than the kernel along an axis (a periodic k³ stencil on fewer than k voxels
wraps the grid onto itself: nothing the network was trained on).
"""

from __future__ import annotations

import json
import logging
import warnings

import numpy as np
import onnxruntime as ort

from ch_numba.params import boundary_text, parse_boundary, wall_axes  # stdlib only

from . import spec
from .guards import (
    MEAN_RANGE_SDS,
    TrainingRangeWarning,
    mean_range_problem,
    physics_mismatches,
    stated_physics,
    training_mean_range,
)
from .models import model_path
from .providers import create_session, session_device
from .runner_base import RunnerBase

__all__ = ["Rollout", "read_metadata"]

log = logging.getLogger(__name__)

_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16}


def read_metadata(session, path="model") -> dict:
    """The parsed ``ch3d`` metadata of a session's model; ValueError if missing or invalid."""
    raw = session.get_modelmeta().custom_metadata_map.get(spec.METADATA_KEY)
    if raw is None:
        raise ValueError(
            f"{path} has no '{spec.METADATA_KEY}' metadata (not written by `python -m export`?); "
            f"it lacks the physics (dt, steps per frame) and the downscale factor a rollout needs"
        )
    try:
        meta = json.loads(raw)
    except ValueError:
        raise ValueError(f"{path}: the '{spec.METADATA_KEY}' metadata is not valid JSON") from None
    return spec.check_metadata(meta, path)


class Rollout(RunnerBase):
    """An exported CRNN step, rolled out with onnxruntime; hidden states kept inside.

    Parameters
    ----------
    path : str or Path
        ONNX file written by ``python -m export``.
    providers : "auto" | "cpu" | "cuda" | list
        Execution provider (:mod:`export.runtime.session`); a list is passed to onnxruntime as is.
    threads : int, optional
        Intra-op threads on CPU (default: all cores this process may use).
    tf32 : bool
        Allow TF32 in the CUDA provider (default False: full float32; :mod:`export.runtime.session`).
    physics : ch_numba.CHParams, mapping or object, optional
        The caller's physics (any of epsilon, mobility, W, dx, dt, steps_per_frame, time_per_step),
        checked against the metadata: a difference warns once (:class:`~export.runtime.TrainingRangeWarning`,
        :mod:`export.runtime.session`). Not given: not checked.
    boundary : str or tuple, optional
        The box's boundary: "periodic" (default), "neumann" (no-flux walls on every axis), "X,Y,Z" or
        three names, as ``ch_numba.CHParams.boundary``. On a wall axis the step pads with the half-sample
        mirror and no mass crosses the wall (:mod:`export.runtime.spec`, input ``walls``); a model whose
        graph pads periodically only (exported before walls existed, or with ``--pad-mode wrap``) is
        refused for walls in one line. :meth:`~export.Rollout.downscale` takes block means along wall axes.

    Attributes
    ----------
    metadata : dict
        The model's ``ch3d`` metadata (schema in :mod:`export.runtime.spec`).
    session : onnxruntime.InferenceSession
    device : str
        Where the state lives: ``"cuda"`` or ``"cpu"``.
    device_id : int
        The device the state lives on (the CUDA provider's ``device_id``; 0 on the CPU).
    steps_done : int
        Steps since the last reset; ``steps_done * time_per_step`` is the physical time.
    mean_range : tuple or None
        The training data's range of mean φ (:func:`~export.runtime.training_mean_range`): always a tuple of one or two
        sorted, disjoint intervals (the range and its phase-swap mirror 1 − range, merged when they
        overlap; e.g. ``((0.35, 0.65),)``), so ``any(lo <= m <= hi for lo, hi in r.mean_range)``.
        None: not checked (the metadata carries no generator config; a garbage one is logged as a
        warning when the Rollout is made).
    """

    def __init__(
        self, path, providers="auto", threads: int | None = None, tf32: bool = False, *, physics=None, boundary=None
    ):
        self.path = model_path(path)  # an existing file, or an installed model's name ("crnn64")
        if self.path.is_dir():
            raise ValueError(f"{self.path} is a folder, not a model file")
        if not self.path.is_file():
            raise ValueError(f"{self.path}: no such model file")
        self.session = create_session(self.path, providers, threads, tf32)
        self._check_signature()
        self.metadata = read_metadata(self.session, self.path)
        if self.metadata["hidden"] != self.hidden_channels:
            raise ValueError(
                f"{self.path}: metadata says hidden={self.metadata['hidden']} but the graph's h1 has "
                f"{self.hidden_channels} channels"
            )
        self._set_boundary(boundary)
        self.device, self.device_id = session_device(self.session)
        self._binding = self.session.io_binding()
        self._shape = None  # (N, 1, X, Y, Z) of the running state, None after reset
        self._bufs = None  # [phi, h1, h2] inputs of the next step; self._next: outputs
        self._next = None
        self.steps_done = 0
        self._warned = set()  # kinds of TrainingRangeWarning already given by this instance
        self.mean_range = training_mean_range(self.metadata)
        problem = mean_range_problem(self.metadata)
        if problem:  # not silently: the mean guard is off for this model
            log.warning("%s: the training-range check of mean phi is off: %s", self.path.name, problem)
        if physics is not None:
            self.check_physics(physics, _stacklevel=3)

    # -- guards (module docstring) ---------------------------------------------------------
    def _warn(self, kind: str, message: str, stacklevel: int) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            warnings.warn(
                f"{self.path.name}: {message} (warned once per Rollout)",
                TrainingRangeWarning,
                stacklevel=stacklevel + 1,
            )

    def check_physics(self, physics, *, _stacklevel: int = 2) -> list[str]:
        """Compare the caller's physics with the training data's; warn once if they differ.

        ``physics``: a ``ch_numba.CHParams``, or a mapping or object with any of epsilon, mobility,
        W, dx, dt, steps_per_frame, time_per_step (a mapping's other keys raise ValueError, except the
        spectral scheme's settings). Returns the differences found, as text (empty: consistent).
        """
        differ = [
            f"{k}={stated:g} (trained: {trained:g})"
            for k, stated, trained in physics_mismatches(self.metadata, stated_physics(physics))
        ]
        if differ:
            self._warn(
                "physics",
                f"the stated physics differs from the training data's: {', '.join(differ)}; "
                f"the model emulates only the physics it was trained on (one step = "
                f"{self.time_per_step:g} time units)",
                _stacklevel,
            )
        return differ

    def _check_mean(self, x: np.ndarray) -> None:
        """Warn once if a starting field's mean φ (any batch member) is outside :attr:`mean_range`."""
        if self.mean_range is None or "mean" in self._warned:
            return
        means = x.reshape(x.shape[0], -1).mean(axis=1, dtype=np.float64)
        outside = [(i, m) for i, m in enumerate(means) if not any(lo <= m <= hi for lo, hi in self.mean_range)]
        if outside:
            i, m = outside[0]
            who = f" (batch member {i}; {len(outside)} of {len(means)} outside)" if len(means) > 1 else ""
            ranges = " or ".join(f"[{lo:.3g}, {hi:.3g}]" for lo, hi in self.mean_range)
            self._warn(
                "mean",
                f"the field's mean phi {m:.3g}{who} is outside the training data's range {ranges} "
                f"(ic_mean +- {MEAN_RANGE_SDS:g} ic_mean_sd of its data set); the surrogate is only "
                f"as good as its training distribution",
                4,
            )

    def _set_boundary(self, boundary) -> None:
        """:attr:`boundary` and the ``walls`` input fed to every step (None: the graph's default, periodic)."""
        self.boundary = parse_boundary("periodic" if boundary is None else boundary)
        overridable = {i.name for i in self.session.get_overridable_initializers()}
        self.supports_walls = spec.WALLS_INPUT in overridable
        walls = wall_axes(self.boundary)
        # bound as an OrtValue on the host (bind_cpu_input does not see an input with a default)
        self._walls = ort.OrtValue.ortvalue_from_numpy(np.array(walls, dtype=bool)) if any(walls) else None
        if self._walls is not None and not self.supports_walls:
            raise ValueError(
                f"{self.path} cannot run a box with no-flux walls (boundary {boundary_text(self.boundary)}): its graph "
                f"pads periodically only (exported before walls existed, or with --pad-mode wrap); re-export its "
                f"checkpoint with python -m export"
            )

    # -- signature -------------------------------------------------------------------------
    def _check_signature(self) -> None:
        ins, outs = self.session.get_inputs(), self.session.get_outputs()
        names_in, names_out = [i.name for i in ins], [o.name for o in outs]
        if sorted(names_in) != sorted(spec.INPUTS) or sorted(names_out) != sorted(spec.OUTPUTS):
            raise ValueError(
                f"{self.path} is not a ch3d CRNN step: expected inputs {', '.join(spec.INPUTS)} and "
                f"outputs {', '.join(spec.OUTPUTS)}, got inputs {', '.join(names_in) or 'none'} and "
                f"outputs {', '.join(names_out) or 'none'}"
            )
        by_name = {i.name: i for i in ins}
        types = {i.type for i in ins}
        if len(types) != 1 or next(iter(types)) not in _DTYPES:
            raise ValueError(f"{self.path}: inputs must share one float type, got {sorted(types)}")
        self.dtype = np.dtype(_DTYPES[next(iter(types))])
        for i in ins:
            if len(i.shape) != 5:
                raise ValueError(f"{self.path}: input {i.name} has shape {i.shape}, expected (N, C, X, Y, Z)")
        if by_name["phi"].shape[1] != 1:
            raise ValueError(f"{self.path}: input phi has {by_name['phi'].shape[1]} channels, expected 1")
        h1, h2 = by_name["h1"].shape[1], by_name["h2"].shape[1]
        if not isinstance(h1, int) or h1 != h2:
            raise ValueError(f"{self.path}: inputs h1, h2 have channels {h1!r}, {h2!r}; expected one fixed number")
        self.hidden_channels = h1

    # -- description -----------------------------------------------------------------------
    @property
    def providers(self) -> list:
        """The execution providers the session actually uses, in priority order."""
        return self.session.get_providers()

    @property
    def backend(self) -> str:
        """What computes the steps, as stored in rollout files (``"onnxruntime-cpu"`` or ``"onnxruntime-cuda"``)."""
        return "onnxruntime-" + self.providers[0].replace("ExecutionProvider", "").lower()

    # -- state -----------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the hidden states: the next step or rollout starts from zero."""
        self._shape = self._bufs = self._next = None
        self.steps_done = 0

    def _new_value(self, shape) -> ort.OrtValue:
        return ort.OrtValue.ortvalue_from_shape_and_type(shape, self.dtype, self.device, self.device_id)

    def _start(self, x: np.ndarray) -> None:
        """Allocate the device buffers for x's shape, zero hidden states, load φ = x."""
        self._check_mean(x)
        n, _, *grid = x.shape
        hshape = (n, self.hidden_channels, *grid)
        self._bufs = [self._new_value(x.shape), self._new_value(hshape), self._new_value(hshape)]
        self._next = [self._new_value(x.shape), self._new_value(hshape), self._new_value(hshape)]
        zeros = np.zeros(hshape, self.dtype)
        self._bufs[1].update_inplace(zeros)
        self._bufs[2].update_inplace(zeros)
        self._bufs[0].update_inplace(x)
        self._shape = x.shape
        self.steps_done = 0

    def _load(self, x: np.ndarray) -> None:
        """Load φ = x into a running state of the same shape (hidden states kept)."""
        if x.shape != self._shape:
            raise ValueError(
                f"phi has shape {x.shape} but the running state has {self._shape}; call reset() to "
                f"start a rollout on another grid or batch"
            )
        self._bufs[0].update_inplace(x)

    def _run(self) -> None:
        b = self._binding
        for name, value in zip(spec.INPUTS, self._bufs):
            b.bind_ortvalue_input(name, value)
        for name, value in zip(spec.OUTPUTS, self._next):
            b.bind_ortvalue_output(name, value)
        if self._walls is not None:
            b.bind_ortvalue_input(spec.WALLS_INPUT, self._walls)
        b.synchronize_inputs()
        self.session.run_with_iobinding(b)
        b.synchronize_outputs()
        self._bufs, self._next = self._next, self._bufs
        self.steps_done += 1

    def _fetch(self, squeeze: bool) -> np.ndarray:
        out = self._bufs[0].numpy()  # a host copy on CUDA, a view of the buffer on CPU
        if self.device == "cpu":
            out = out.copy()
        return out[0, 0] if squeeze else out

    # -- the API ---------------------------------------------------------------------------
    def step(self, phi) -> np.ndarray:
        """One network step from φ (one saved frame later); hidden states carried from the last call.

        Parameters
        ----------
        phi : array (X, Y, Z) or (N, 1, X, Y, Z), network resolution, real dtype
            The current field; feeding the previous output gives a free run, feeding ground-truth
            frames warms the hidden states up (teacher forcing).

        Returns
        -------
        array of phi's layout, the model's dtype (float32): φ one step later.
        """
        x, squeeze = self._as_array(phi)
        if self._shape is None:
            self._start(x)
        else:
            self._load(x)
        self._run()
        return self._fetch(squeeze)

    def rollout(self, phi0, steps: int, every: int = 1, reset: bool = True):
        """Free-running rollout of ``steps`` network steps from φ0; a generator of frames.

        Parameters
        ----------
        phi0 : array (X, Y, Z) or (N, 1, X, Y, Z), network resolution
        steps : int ≥ 0, number of network steps (each one saved ground-truth frame)
        every : int ≥ 1, yield the field after steps every, 2·every, ..., steps; ``steps`` must be a
            multiple of ``every`` (ValueError otherwise, as ``--steps``/``--every`` of ``export.rollout``)
        reset : bool
            True (default): hidden states start from zero (as ``CRNN.rollout``). False: continue
            from the current hidden states (e.g. after warming them up with :meth:`step`).

        Yields
        ------
        array of phi0's layout: φ after k·every steps, k = 1 .. steps // every (φ0 itself is not
        yielded). Between yields the state stays on the device. Arguments are checked at call time.
        """
        self._check_counts(steps, every)
        x, squeeze = self._as_array(phi0, "phi0")
        if reset or self._shape is None:
            self._start(x)
        else:
            self._load(x)
        return self._frames(int(steps), int(every), squeeze)

    def _frames(self, steps: int, every: int, squeeze: bool):
        for n in range(1, steps + 1):
            self._run()
            if n % every == 0:
                yield self._fetch(squeeze)

    def step_halo(self, phi, h1, h2, halo: int | None = None):
        """One stateless step of a subdomain with ``halo`` ghost layers (default :attr:`~export.Rollout.halo`) on every
        side: (φ, h1, h2) in, the interiors of (φ′, h1′, h2′) out (:func:`export.runtime.halo.step_halo`,
        domain decomposition). The running state of :meth:`step` / :meth:`rollout` is not touched."""
        from .halo import step_halo

        return step_halo(self, phi, h1, h2, halo)

    def __repr__(self) -> str:
        return self._repr(f"providers={self.providers[0]}")
