"""Time stepping front end: backends, input checks, blow-up detection, batches.

:class:`Stepper` holds the state of one run, or of a batch of independent runs, on one backend
(on the GPU for ``cuda``: only :meth:`Stepper.get` copies it back), so a data-set generator can
advance frame by frame without round trips. :func:`evolve` is the one-call API.

Shapes (the solver's convention). A state is one field φ of shape (X, Y, Z), or a batch of B ≥ 1
independent fields (B, X, Y, Z) on the same grid, with the same parameters and time step: the
batch axis first, no channel axis. Every member evolves exactly as its own unbatched run would
(bitwise on ``cpu`` and ``numpy``: the same kernel runs on each member in turn; on ``cuda`` one
launch per step covers the whole batch, each voxel computed by the same expression). The network
side (surrogate, export) uses (N, 1, X, Y, Z) at its own, coarser, resolution: a solver batch
``phi`` (B, X, Y, Z) is the network batch ``downsample(phi)[:, None]``, and a network output
``out`` (N, 1, x, y, z) goes back as ``out[:, 0]``.

Backends: ``numpy`` (reference.py, tests only), ``cpu`` (kernels_cpu, fused prange kernel), ``cuda``
(kernels_cuda), ``auto`` (cuda when a real GPU is usable, else cpu).

Schemes (``CHParams.scheme``): ``explicit`` runs on every backend; ``spectral`` (the
semi-implicit Fourier-spectral integrator of spectral.py: scipy.fft + Numba passes) on
``cpu``, and ``auto`` picks ``cpu`` for it; a spectral batch runs its members one after the
other (one SpectralIntegrator each). On ``cuda`` the spectral scheme runs the whole batch at once
through CuPy and cuFFT (spectral_xp.py; needs CuPy).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from . import reference
from .params import CHParams
from .physics import check_dtype, coefficients

log = logging.getLogger(__name__)

BACKENDS = ("numpy", "cpu", "cuda", "auto")
#: the one range of φ the project treats as physical (φ ∈ [0, 1] plus a margin for overshoot): outside it
#: the solver reports a blow-up (or, at step 0, an initial condition outside the range), and the surrogate
#: rollouts (export.rollout, docs/probe_stability.py, docs/reproduce.py) count the field as unphysical
PHYSICAL_RANGE = (-0.5, 1.5)
CHECK_EVERY = 500  # evolve() checks for blow-up at least this often (steps)


class BlowUpError(RuntimeError):
    """The explicit scheme diverged (NaN/Inf, or φ left PHYSICAL_RANGE), or, at step 0, the state it was
    given is outside that range (an initial condition outside the physical φ ∈ [0, 1]: not a blow-up,
    and said so).

    Attributes: ``step`` (steps since the state was set), ``value`` (the offending φ), ``where``
    (the name given to the run, with ``member m`` for a batch), ``member`` (index in the batch, or
    None for an unbatched run).
    """

    def __init__(self, step: int, value: float, where: str = "", member: int | None = None):
        self.step, self.value, self.where, self.member = step, value, where, member
        lo, hi = PHYSICAL_RANGE
        prefix = f"{where}: " if where else ""
        if step == 0:
            text = (
                f"{prefix}the initial condition is outside the physical range: it has phi = {value:g} "
                f"(phi is in [0, 1]; the solver accepts [{lo}, {hi}])"
            )
        else:
            text = (
                f"{prefix}simulation blew up at step {step}: phi reached {value:g} "
                f"(allowed [{lo}, {hi}], finite); reduce dt or check the initial condition"
            )
        super().__init__(text)


SPECTRAL_BACKENDS = ("cpu", "cuda")  # cuda: spectral_xp on CuPy (the gpu extra's cupy)


def resolve_backend(backend: str, scheme: str = "explicit") -> str:
    """Map ``auto`` to ``cuda`` or ``cpu`` (``cpu`` for the spectral scheme); validate the name."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if scheme == "spectral":
        if backend == "auto":
            log.debug("backend auto: the spectral scheme -> cpu")
            return "cpu"
        if backend not in SPECTRAL_BACKENDS:
            raise ValueError(f"the spectral scheme runs on the {'/'.join(SPECTRAL_BACKENDS)} backend, not {backend!r}")
        return backend
    if backend not in ("auto", "cuda"):
        return backend
    try:
        from .kernels_cuda import gpu_available, is_simulator
    except ImportError:  # numba-cuda not installed
        if backend == "cuda":
            raise ValueError(
                "backend 'cuda' needs the numba-cuda package (pip install numba-cuda); use backend cpu or auto"
            ) from None
        log.debug("backend auto: numba-cuda is not installed -> cpu")
        return "cpu"
    if backend == "cuda":
        if not (is_simulator() or gpu_available()):
            raise ValueError("backend 'cuda' needs a usable CUDA GPU and driver (none found); use backend cpu or auto")
        return "cuda"
    chosen = "cuda" if gpu_available() else "cpu"
    log.debug("backend auto: %s -> %s", "a usable CUDA GPU" if chosen == "cuda" else "no usable CUDA GPU", chosen)
    return chosen


def check_field(phi, name: str = "phi0") -> np.ndarray:
    """Validate a finite float32/float64 field (X, Y, Z) or batch (B, X, Y, Z), B ≥ 1; returns it as ndarray."""
    phi = np.asarray(phi)
    if phi.ndim not in (3, 4):
        raise ValueError(f"expected {name} of shape (X, Y, Z) or (B, X, Y, Z), got {phi.shape}")
    check_grid(phi.shape, name)
    check_dtype(phi.dtype)
    if not np.all(np.isfinite(phi)):
        raise ValueError(f"{name} contains NaN or Inf values")
    return phi


def check_grid(shape, name: str = "phi0") -> tuple:
    """Validate a state shape (X, Y, Z) or (B, X, Y, Z): B ≥ 1, each spatial axis ≥ 3; returns it as a tuple."""
    shape = tuple(int(n) for n in shape)
    if len(shape) not in (3, 4):
        raise ValueError(f"expected {name} of shape (X, Y, Z) or (B, X, Y, Z), got {shape}")
    if len(shape) == 4 and shape[0] < 1:
        raise ValueError(f"{name} is a batch of {shape[0]} members; a batch needs at least 1")
    if min(shape[-3:]) < 3:
        raise ValueError(f"{name} needs at least 3 voxels along each axis, got {shape}")
    return shape


def memory_needed(shape, dtype=np.float32) -> int:
    """A lower bound of the host memory (bytes) a run on ``shape`` ((X, Y, Z) or (B, X, Y, Z)) needs: the two
    states of the explicit scheme (the spectral scheme holds more) and one initial condition being made (its
    float64 noise and float32 field). Commands check it before allocating (:func:`check_memory`)."""
    shape = tuple(int(n) for n in shape)
    voxels = int(np.prod(shape[-3:], dtype=np.float64))
    batch = shape[0] if len(shape) == 4 else 1
    return 2 * batch * voxels * np.dtype(dtype).itemsize + voxels * (8 + 4)


def available_memory() -> int | None:
    """Bytes of memory this process may still use: the smaller of /proc/meminfo's MemAvailable and the
    cgroup (v2) limit where they exist, else the physical memory, else None (unknown)."""
    found = []
    try:
        with open("/proc/meminfo") as fh:
            found += [int(line.split()[1]) * 1024 for line in fh if line.startswith("MemAvailable:")]
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            found.append(int(limit))
    except OSError:
        pass
    if not found:
        try:
            found.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
        except (AttributeError, ValueError, OSError):
            return None
    return min(found)


def check_memory(needed: int, what: str) -> None:
    """ValueError (one line) naming the memory ``what`` needs if ``needed`` bytes exceed
    :func:`available_memory` (checked before allocating; nothing happens when it is unknown)."""
    have = available_memory()
    if have is not None and needed > have:
        raise ValueError(
            f"{what} needs at least {needed / 2**30:,.1f} GiB of memory, but {have / 2**30:,.1f} GiB "
            f"are available; use a smaller grid"
        )


def blowup_value(phi: np.ndarray) -> float | None:
    """The offending value if phi is non-finite or outside PHYSICAL_RANGE, else None."""
    lo, hi = float(np.min(phi)), float(np.max(phi))
    if not np.isfinite(lo) or not np.isfinite(hi):
        bad = phi[~np.isfinite(phi)]
        return float(bad.flat[0]) if bad.size else float("nan")
    if lo < PHYSICAL_RANGE[0]:
        return lo
    if hi > PHYSICAL_RANGE[1]:
        return hi
    return None


class Stepper:
    """One Cahn-Hilliard run, or a batch of independent runs: ``set(phi)``, ``advance(steps)``, ``get()``.

    Parameters
    ----------
    shape : tuple of int
        The (X, Y, Z) grid, or (B, X, Y, Z) for a batch of B ≥ 1 runs on that grid.
    params : CHParams
        The physics and the time integrator.
    backend : str
        ``"numpy"``, ``"cpu"`` (default), ``"cuda"`` or ``"auto"``.
    dtype : numpy dtype
        float32 (default) or float64: the state and arithmetic type.

    Attributes
    ----------
    shape : tuple
        As given.
    grid : tuple
        (X, Y, Z).
    batch : int
        B; 1 for an unbatched run.
    batched : bool
        Whether ``shape`` has the batch axis.
    steps_done : int
        Steps since the last ``set`` of the whole state.
    member_steps : ndarray
        (B,) int64: steps since each member was set.
    """

    def __init__(self, shape, params: CHParams, backend: str = "cpu", dtype=np.float32):
        self.shape = check_grid(shape, "shape")
        self.batched = len(self.shape) == 4
        self.grid = self.shape[-3:]
        self.batch = self.shape[0] if self.batched else 1
        self.params = params
        self.dtype = check_dtype(dtype)
        self.backend = resolve_backend(backend, params.scheme)
        self.coef = coefficients(params, self.dtype)
        self.steps_done = 0
        self.member_steps = np.zeros(self.batch, np.int64)
        full = (self.batch, *self.grid)  # the state is always stored with its batch axis
        self._spectral = None
        if params.scheme == "spectral" and self.backend == "cuda":  # the whole batch on the GPU (CuPy)
            from .spectral_xp import BatchSpectralIntegrator

            self._cuda = BatchSpectralIntegrator(full, params, self.dtype, "cupy")
        elif params.scheme == "spectral":
            from .spectral import SpectralIntegrator

            self._spectral = [SpectralIntegrator(self.grid, params, self.dtype) for _ in range(self.batch)]
        elif self.backend == "cpu":
            from .kernels_cpu import aligned_empty, kernels, ring_buffer

            _, _, self._steps = kernels(self.dtype, params.neumann_axes)
            self._scratch = ring_buffer(self.grid, self.dtype)
            self._a = aligned_empty(full, self.dtype)
            self._a[...] = 0
            self._b = aligned_empty(full, self.dtype)
        elif self.backend == "cuda":
            from .kernels_cuda import BatchStepper

            self._cuda = BatchStepper(full, self.dtype, self.coef, walls=params.neumann_axes)
        else:
            self._a = np.zeros(full, self.dtype)

    def _cuda_or_none(self):
        return getattr(self, "_cuda", None)

    def _members(self, member) -> list:
        if member is None:
            return list(range(self.batch))
        if isinstance(member, bool) or not isinstance(member, (int, np.integer)) or not 0 <= member < self.batch:
            raise ValueError(f"member must be an integer in [0, {self.batch}), got {member!r}")
        return [int(member)]

    def set(self, phi, member: int | None = None) -> None:
        """Load the state (``shape``), or with ``member=m`` one member's field (X, Y, Z); converted to the
        stepper's dtype. Resets the step counts of what was loaded."""
        phi = check_field(phi, "phi")
        want = self.shape if member is None else self.grid
        if phi.shape != want:
            raise ValueError(f"expected phi of shape {want}, got {phi.shape}")
        members = self._members(member)
        phi = np.ascontiguousarray(phi, dtype=self.dtype).reshape((len(members), *self.grid))
        if self._spectral is not None:
            for m, field in zip(members, phi):
                self._spectral[m].set(field)
        elif self.backend == "cuda":
            self._cuda.set(phi, None if member is None else members[0])
        else:
            self._a[members[0] : members[-1] + 1] = phi
        self.member_steps[members] = 0
        if member is None:
            self.steps_done = 0

    def advance(self, steps: int) -> None:
        """Run `steps` steps of the scheme on every member (no blow-up check: see :meth:`get`)."""
        if self._spectral is not None:
            for integrator in self._spectral:
                integrator.advance(steps)
        elif self.backend == "cpu":
            for m in range(self.batch):  # each member by the unbatched kernel: bitwise its own run
                self._steps(self._a[m], self._b[m], self._scratch, steps, *self.coef)
            if steps % 2:
                self._a, self._b = self._b, self._a
        elif self.backend == "cuda":
            self._cuda.advance(steps)
        else:
            for _ in range(steps):
                self._a = reference.step(self._a, self.params)
        self.steps_done += steps
        self.member_steps += steps

    def _host(self, members: list) -> np.ndarray:
        """Copy of members' states, (len(members), X, Y, Z)."""
        if self._spectral is not None:
            return np.stack([self._spectral[m].phi for m in members])
        if self.backend == "cuda":
            return self._cuda.get(None if len(members) == self.batch else members[0])
        return self._a[members[0] : members[-1] + 1].copy()

    def get(self, where: str | list = "", member: int | None = None) -> np.ndarray:
        """Copy of the current state (host ndarray of ``shape``), or with ``member=m`` of one member (X, Y, Z).

        Raises BlowUpError if a returned member diverged; ``where`` names the run in its message (a
        str, to which a batch adds ``member m``), or is a list of one name per member, used as is.
        """
        members = self._members(member)
        phi = self._host(members)
        for m, field in zip(members, phi):
            bad = blowup_value(field)
            if bad is not None:
                if isinstance(where, (list, tuple)):
                    name = where[m]
                elif self.batched:
                    name = f"{where}: member {m}" if where else f"member {m}"
                else:
                    name = where
                raise BlowUpError(int(self.member_steps[m]), bad, name, m if self.batched else None)
        return phi[0] if member is not None or not self.batched else phi

    def state(self) -> dict:
        """Everything a bit-identical continuation needs (numpy arrays; for checkpoints): ``steps_done``,
        ``phi`` (``shape``), for a batch ``member_steps`` and, for the spectral scheme, its Fourier state and
        history (per member, stacked along a first axis for a batch)."""
        out = {"steps_done": np.array(self.steps_done)}
        if self.batched:
            out["member_steps"] = self.member_steps.copy()
        if self._spectral is None and hasattr(self._cuda_or_none(), "state"):  # spectral on cuda
            full = self._cuda.state()
            out.update({k: (v if self.batched else v[0]) for k, v in full.items()})
        elif self._spectral is None:
            out["phi"] = self._host(list(range(self.batch))).reshape(self.shape)
        elif not self.batched:
            out.update(self._spectral[0].state())
        else:
            states = [s.state() for s in self._spectral]
            out["phi"] = np.stack([s["phi"] for s in states])
            out["phi_hat"] = np.stack([s["phi_hat"] for s in states])
            out["history"] = np.array([bool(s["history"]) for s in states])
            for key in ("phi_hat_old", "g_hat_old"):
                out[key] = np.stack([s.get(key, np.zeros_like(s["phi_hat"])) for s in states])
        return out

    def load_state(self, state: dict) -> None:
        """Continue from :meth:`state` of a stepper with the same shape, params and dtype."""
        phi = np.asarray(state["phi"])
        if phi.shape != self.shape or phi.dtype != self.dtype:
            raise ValueError(f"saved state {phi.shape} {phi.dtype} does not fit this run ({self.shape} {self.dtype})")
        if self._spectral is None and hasattr(self._cuda_or_none(), "load_state"):  # spectral on cuda
            self._cuda.load_state(
                {
                    k: np.asarray(state[k]).reshape((self.batch, *np.shape(state[k])[-3:]))
                    if k != "history"
                    else np.asarray(state[k]).reshape(self.batch)
                    for k in ("phi", "phi_hat", "history", "phi_hat_old", "g_hat_old")
                }
            )
        elif self._spectral is None:
            self.set(phi)
        elif not self.batched:
            self._spectral[0].load_state(state)
        else:
            for m, integrator in enumerate(self._spectral):
                integrator.load_state(
                    {
                        key: np.asarray(state[key])[m]
                        for key in ("phi", "phi_hat", "history", "phi_hat_old", "g_hat_old")
                    }
                )
        self.steps_done = int(state["steps_done"])
        self.member_steps[:] = np.asarray(state["member_steps"]) if self.batched else self.steps_done


def evolve(
    phi0, steps: int, params: CHParams | None = None, backend: str = "cpu", check_every: int = CHECK_EVERY
) -> np.ndarray:
    """Advance phi0 by `steps` steps; returns a new array of phi0's shape and dtype.

    phi0 is one field (X, Y, Z) or a batch (B, X, Y, Z) of independent fields (:mod:`ch_numba.solver`),
    float32 or float64. Raises ValueError on bad input and BlowUpError (naming the step, the value
    and, for a batch, the member) if the run diverges; blow-up is checked every `check_every`
    steps and at the end.
    """
    params = params or CHParams()
    phi0 = check_field(phi0)
    if not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    stepper = Stepper(phi0.shape, params, backend, phi0.dtype)
    stepper.set(phi0)
    done = 0
    phi = stepper.get()
    while done < steps:
        n = min(check_every, steps - done)
        stepper.advance(n)
        done += n
        phi = stepper.get()
    return phi


def free_energy(phi, params: CHParams | None = None):
    """Free energy per unit volume (float64): mean of :math:`W φ^2(1−φ)^2 + (ε^2/2) |∇φ|^2`, forward differences
    (none across a no-flux wall of ``params.boundary``: its mirror ghost equals the last voxel).

    phi (X, Y, Z) gives a float; a batch (B, X, Y, Z) gives an ndarray (B,) float64, member m's
    entry equal to ``free_energy(phi[m])``.
    """
    from .kernels_cpu import free_energy as _fe

    params = params or CHParams()
    phi = np.asarray(phi)
    if phi.ndim not in (3, 4):
        raise ValueError(f"expected phi of shape (X, Y, Z) or (B, X, Y, Z), got {phi.shape}")
    walls = params.neumann_axes
    if phi.ndim == 4:
        return np.array([_fe(np.ascontiguousarray(f), params.W, params.epsilon, params.dx, walls) for f in phi])
    return _fe(np.ascontiguousarray(phi), params.W, params.epsilon, params.dx, walls)
