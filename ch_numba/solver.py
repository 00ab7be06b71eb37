"""Time stepping front end: backends, input checks, blow-up detection.

:class:`Stepper` holds the state of one run on one backend (on the GPU for
``cuda``: only :meth:`Stepper.get` copies it back), so a data-set generator can
advance frame by frame without round trips. :func:`evolve` is the one-call API.

Backends: ``numpy`` (reference.py, tests only), ``cpu`` (kernels_cpu, fused
prange kernel), ``cuda`` (kernels_cuda), ``auto`` (cuda when a real GPU is
usable, else cpu).

Schemes (``CHParams.scheme``): ``explicit`` runs on every backend; ``spectral`` (the
semi-implicit Fourier-spectral integrator of spectral.py: scipy.fft + Numba passes) on
``cpu``, and ``auto`` picks ``cpu`` for it.
"""

from __future__ import annotations

import logging

import numpy as np

from . import reference
from .params import CHParams
from .physics import check_dtype, coefficients

log = logging.getLogger(__name__)

BACKENDS = ("numpy", "cpu", "cuda", "auto")
BLOWUP_RANGE = (-0.5, 1.5)
CHECK_EVERY = 500  # evolve() checks for blow-up at least this often (steps)


class BlowUpError(RuntimeError):
    """The explicit scheme diverged (NaN/Inf, or φ left BLOWUP_RANGE)."""

    def __init__(self, step: int, value: float, where: str = ""):
        self.step, self.value, self.where = step, value, where
        lo, hi = BLOWUP_RANGE
        prefix = f"{where}: " if where else ""
        super().__init__(
            f"{prefix}simulation blew up at step {step}: phi reached {value:g} "
            f"(allowed [{lo}, {hi}], finite); reduce dt or check the initial condition"
        )


SPECTRAL_BACKENDS = ("cpu",)


def resolve_backend(backend: str, scheme: str = "explicit") -> str:
    """Map ``auto`` to ``cuda`` or ``cpu`` (``cpu`` for the spectral scheme); validate the name."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if scheme == "spectral":
        if backend == "auto":
            return "cpu"
        if backend not in SPECTRAL_BACKENDS:
            raise ValueError(f"the spectral scheme runs on the {'/'.join(SPECTRAL_BACKENDS)} backend, not {backend!r}")
        return backend
    if backend != "auto":
        return backend
    try:
        from .kernels_cuda import gpu_available
    except ImportError:  # numba-cuda not installed
        return "cpu"
    return "cuda" if gpu_available() else "cpu"


def check_field(phi, name: str = "phi0") -> np.ndarray:
    """Validate an (X, Y, Z) float32/float64 finite array; returns it as ndarray."""
    phi = np.asarray(phi)
    if phi.ndim != 3:
        raise ValueError(f"expected {name} of shape (X, Y, Z), got {phi.shape}")
    if min(phi.shape) < 3:
        raise ValueError(f"{name} needs at least 3 voxels along each axis, got {phi.shape}")
    check_dtype(phi.dtype)
    if not np.all(np.isfinite(phi)):
        raise ValueError(f"{name} contains NaN or Inf values")
    return phi


def blowup_value(phi: np.ndarray) -> float | None:
    """The offending value if phi is non-finite or outside BLOWUP_RANGE, else None."""
    lo, hi = float(np.min(phi)), float(np.max(phi))
    if not np.isfinite(lo) or not np.isfinite(hi):
        bad = phi[~np.isfinite(phi)]
        return float(bad.flat[0]) if bad.size else float("nan")
    if lo < BLOWUP_RANGE[0]:
        return lo
    if hi > BLOWUP_RANGE[1]:
        return hi
    return None


class Stepper:
    """One Cahn-Hilliard run: ``set(phi)``, ``advance(steps)``, ``get()``.

    Parameters
    ----------
    shape : (X, Y, Z) grid.
    params : CHParams.
    backend : "numpy" | "cpu" | "cuda" | "auto".
    dtype : float32 (default) or float64: the state and arithmetic type.
    """

    def __init__(self, shape, params: CHParams, backend: str = "cpu", dtype=np.float32):
        self.shape = tuple(int(n) for n in shape)
        self.params = params
        self.dtype = check_dtype(dtype)
        self.backend = resolve_backend(backend, params.scheme)
        self.coef = coefficients(params, self.dtype)
        self.steps_done = 0
        self._spectral = None
        if params.scheme == "spectral":
            from .spectral import SpectralIntegrator

            self._spectral = SpectralIntegrator(self.shape, params, self.dtype)
        elif self.backend == "cpu":
            from .kernels_cpu import kernels, ring_buffer

            _, _, self._steps = kernels(self.dtype)
            self._scratch = ring_buffer(self.shape, self.dtype)
            self._a = np.zeros(self.shape, self.dtype)
            self._b = np.empty_like(self._a)
        elif self.backend == "cuda":
            from numba import cuda

            from .kernels_cuda import kernels, launch_config

            self._mu_kernel, self._update_kernel = kernels(self.dtype)
            self._grid, self._block = launch_config(self.shape)
            self._a = cuda.device_array(self.shape, self.dtype)
            self._b = cuda.device_array(self.shape, self.dtype)
            self._mu = cuda.device_array(self.shape, self.dtype)
        else:
            self._a = np.zeros(self.shape, self.dtype)

    def set(self, phi) -> None:
        """Load a state (X, Y, Z); converted to the stepper's dtype."""
        phi = check_field(phi, "phi")
        if phi.shape != self.shape:
            raise ValueError(f"expected phi of shape {self.shape}, got {phi.shape}")
        phi = np.ascontiguousarray(phi, dtype=self.dtype)
        if self._spectral is not None:
            self._spectral.set(phi)
        elif self.backend == "cuda":
            self._a.copy_to_device(phi)
        else:
            self._a[...] = phi
        self.steps_done = 0

    def advance(self, steps: int) -> None:
        """Run `steps` steps of the scheme (no blow-up check: see :meth:`get`)."""
        if self._spectral is not None:
            self._spectral.advance(steps)
        elif self.backend == "cpu":
            self._steps(self._a, self._b, self._scratch, steps, *self.coef)
            if steps % 2:
                self._a, self._b = self._b, self._a
        elif self.backend == "cuda":
            two_w, eps2_dx2, dtm_dx2 = self.coef
            g, b = self._grid, self._block
            for _ in range(steps):
                self._mu_kernel[g, b](self._a, self._mu, two_w, eps2_dx2)
                self._update_kernel[g, b](self._a, self._mu, self._b, dtm_dx2)
                self._a, self._b = self._b, self._a
        else:
            for _ in range(steps):
                self._a = reference.step(self._a, self.params)
        self.steps_done += steps

    def get(self, where: str = "") -> np.ndarray:
        """Copy of the current state (host ndarray); raises BlowUpError if it diverged."""
        if self._spectral is not None:
            phi = self._spectral.phi.copy()
        else:
            phi = self._a.copy_to_host() if self.backend == "cuda" else self._a.copy()
        bad = blowup_value(phi)
        if bad is not None:
            raise BlowUpError(self.steps_done, bad, where)
        return phi

    def state(self) -> dict:
        """Everything a bit-identical continuation needs (numpy arrays; for checkpoints):
        ``steps_done``, ``phi`` and, for the spectral scheme, its Fourier state and history."""
        out = {"steps_done": np.array(self.steps_done)}
        if self._spectral is not None:
            out.update(self._spectral.state())
        else:
            out["phi"] = self._a.copy_to_host() if self.backend == "cuda" else self._a.copy()
        return out

    def load_state(self, state: dict) -> None:
        """Continue from :meth:`state` of a stepper with the same shape, params and dtype."""
        phi = np.asarray(state["phi"])
        if phi.shape != self.shape or phi.dtype != self.dtype:
            raise ValueError(f"saved state {phi.shape} {phi.dtype} does not fit this run ({self.shape} {self.dtype})")
        if self._spectral is not None:
            self._spectral.load_state(state)
        else:
            self.set(phi)
        self.steps_done = int(state["steps_done"])


def evolve(
    phi0, steps: int, params: CHParams | None = None, backend: str = "cpu", check_every: int = CHECK_EVERY
) -> np.ndarray:
    """Advance phi0 (X, Y, Z; float32 or float64) by `steps` steps; returns a new array of phi0's dtype.

    Raises ValueError on bad input and BlowUpError (naming the step and value) if
    the run diverges; blow-up is checked every `check_every` steps and at the end.
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


def free_energy(phi, params: CHParams | None = None) -> float:
    """Free energy per unit volume (float64): mean of W φ²(1−φ)² + (ε²/2)|∇φ|², forward differences."""
    from .kernels_cpu import free_energy as _fe

    params = params or CHParams()
    phi = np.asarray(phi)
    if phi.ndim != 3:
        raise ValueError(f"expected phi of shape (X, Y, Z), got {phi.shape}")
    return _fe(np.ascontiguousarray(phi), params.W, params.epsilon, params.dx)
