"""The spectral scheme for a whole batch on an array library: CuPy + cuFFT on the GPU, numpy + scipy.fft here.

The same scheme as :mod:`ch_numba.spectral` (its symbol λ and its update coefficients,
:func:`~ch_numba.spectral.update_coefficients`; the equations are in that module's docstring), written
once with array operations that numpy and CuPy both have, for a batch (B, X, Y, Z) of independent
members: one batched real FFT over the three grid axes per step, f'(φ) and the Fourier-space update as
whole-array expressions in the same order of operations as the Numba passes. ``library="cupy"`` runs it
on the GPU (``cupy`` and ``cupyx.scipy.fft``, the ``gpu`` extra's CuPy); ``library="numpy"`` runs the very
same code on the CPU with ``scipy.fft``, which is how it is tested without a GPU (equal to the CPU
integrator to round-off). The CPU backend keeps :class:`ch_numba.spectral.SpectralIntegrator` (fused
Numba passes, pyFFTW): this module does not make it slower.

No-flux walls (``CHParams.boundary``, issue 27): as in :mod:`ch_numba.spectral`, the orthonormal DCT-II
(``dctn``, which ``scipy.fft`` and ``cupyx.scipy.fft`` both have) along the wall axes, then the real FFT
over the periodic ones, with the symbol of :func:`~ch_numba.spectral.laplacian_symbol` for those walls;
the free energy has no gradient term across a wall. A periodic box runs exactly the code it ran before.

The state stays on the device between frames: :meth:`BatchSpectralIntegrator.get` copies members back,
:meth:`free_energy` computes F of each member on the device (float64 accumulation, the formula of
``ch_numba.reference.free_energy``). Each member keeps its own SBDF2 history: a member set anew takes
an order-1 step first, as the CPU integrator does.
"""

from __future__ import annotations

import numpy as np

from .params import CHParams
from .physics import check_dtype
from .spectral import laplacian_symbol, update_coefficients

LIBRARIES = ("numpy", "cupy")


def array_library(name: str):
    """(array module, FFT module) of ``"numpy"`` (numpy, scipy.fft) or ``"cupy"`` (cupy, cupyx.scipy.fft)."""
    if name == "numpy":
        import scipy.fft

        return np, scipy.fft
    if name == "cupy":
        try:
            import cupy
            import cupyx.scipy.fft
        except ImportError as e:
            raise ValueError(f"the spectral scheme on cuda needs CuPy (pip install cupy-cuda13x): {e}") from None
        return cupy, cupyx.scipy.fft
    raise ValueError(f"array library must be one of {LIBRARIES}, got {name!r}")


class BatchSpectralIntegrator:
    """State and steps of the spectral scheme for a batch (B, X, Y, Z) on one array library."""

    def __init__(self, shape, params: CHParams, dtype=np.float32, library: str = "cupy"):
        if params.scheme != "spectral":
            raise ValueError(f"the spectral integrator needs CHParams(scheme='spectral'), got {params.scheme!r}")
        self.shape = tuple(int(n) for n in shape)
        if len(self.shape) != 4:
            raise ValueError(f"expected a (B, X, Y, Z) batch, got {self.shape}")
        self.grid = self.shape[1:]
        self.params = params
        self.dtype = check_dtype(dtype)
        self.library = library
        self.xp, self._fft = array_library(library)
        xp, t = self.xp, self.dtype.type
        walls = params.neumann_axes
        self._wall_axes = tuple(1 + a for a in range(3) if walls[a])  # batch axis first
        self._periodic_axes = tuple(1 + a for a in range(3) if not walls[a])
        lam = laplacian_symbol(self.grid, params.dx, params.symbol, walls)
        self._c1 = tuple(
            xp.asarray(np.ascontiguousarray(c, self.dtype)[None]) for c in update_coefficients(lam, params, 1)
        )
        self._c2 = tuple(
            xp.asarray(np.ascontiguousarray(c, self.dtype)[None]) for c in update_coefficients(lam, params, 2)
        )
        self._two_w, self._one, self._two = t(2.0 * params.W), t(1), t(2)
        self.phi = xp.zeros(self.shape, self.dtype)
        self._ph = self._rfft(self.phi)
        self._ph_old = xp.zeros_like(self._ph)
        self._g_old = xp.zeros_like(self._ph)
        self._history = np.zeros(self.shape[0], bool)  # per member: SBDF2 history started

    def _rfft(self, a):
        if not self._wall_axes:
            return self._fft.rfftn(a, axes=(1, 2, 3))
        out = self._fft.dctn(a, type=2, norm="ortho", axes=self._wall_axes)
        if self._periodic_axes:
            out = self._fft.rfftn(out, axes=self._periodic_axes)
        return out

    def _irfft(self, ah):
        if not self._wall_axes:
            return self._fft.irfftn(ah, s=self.grid, axes=(1, 2, 3)).astype(self.dtype, copy=False)
        out = ah
        if self._periodic_axes:
            s = [self.grid[a - 1] for a in self._periodic_axes]
            out = self._fft.irfftn(out, s=s, axes=self._periodic_axes)
        return self._fft.idctn(out, type=2, norm="ortho", axes=self._wall_axes).astype(self.dtype, copy=False)

    def set(self, phi, member: int | None = None) -> None:
        """Load φ (B, X, Y, Z), or member `member`'s field ((1, X, Y, Z) or (X, Y, Z)); those members start a
        new history. (The interface of ``kernels_cuda.BatchStepper``, which ``solver.Stepper`` drives.)"""
        xp = self.xp
        phi = np.ascontiguousarray(phi, dtype=self.dtype)
        if member is None:
            self.phi = xp.asarray(phi).reshape(self.shape).copy()
            self._ph = self._rfft(self.phi)
            self._history[:] = False
        else:
            self.phi[member] = xp.asarray(phi.reshape(self.grid))
            self._ph[member] = self._rfft(self.phi[member : member + 1])[0]
            self._history[member] = False

    def get(self, member: int | None = None) -> np.ndarray:
        """Host copy (n, X, Y, Z) of the batch, or of member `member` (n = 1)."""
        a = self.phi if member is None else self.phi[member : member + 1]
        return a.get() if hasattr(a, "get") else a.copy()

    def advance(self, steps: int) -> None:
        """``steps`` steps for every member (order 1 or 2 as ``params.order``; order 1 first after a set)."""
        xp, one, two = self.xp, self._one, self._two
        for _ in range(int(steps)):
            v = self.phi
            g = self._two_w * v * (one - v) * (one - two * v)  # f'(φ), in the Numba pass's order
            gh = self._rfft(g)
            ph = self._ph
            if self.params.order == 1:
                a, c = self._c1
                self._ph = a * ph + c * gh
            else:
                a1, c1 = self._c1
                first = a1 * ph + c1 * gh
                if self._history.all():
                    new = None
                else:
                    new = first
                if self._history.any():
                    a, b, c, d = self._c2
                    second = (a * ph + b * self._ph_old) + (c * gh + d * self._g_old)
                    if new is None:
                        new = second
                    else:
                        mask = xp.asarray(self._history).reshape(-1, 1, 1, 1)
                        new = xp.where(mask, second, first)
                self._ph_old, self._g_old = ph, gh
                self._ph = new
                self._history[:] = True
            self.phi = self._irfft(self._ph)

    def free_energy(self) -> np.ndarray:
        """F per unit volume of each member (B,), float64, on the device: mean(W φ²(1−φ)² + (ε²/2)|∇φ|²),
        forward differences (``ch_numba.reference.free_energy``; none across a wall: the mirror ghost
        equals the last voxel)."""
        xp, p = self.xp, self.params
        phi = self.phi.astype(np.float64)
        bulk = p.W * phi**2 * (1.0 - phi) ** 2
        diffs = []
        for axis in (1, 2, 3):
            d = xp.roll(phi, -1, axis) - phi
            if axis in self._wall_axes:
                d[(slice(None),) * axis + (-1,)] = 0.0
            diffs.append(d)
        grad2 = sum(d**2 for d in diffs) / p.dx**2
        f = xp.mean(bulk + 0.5 * p.epsilon**2 * grad2, axis=(1, 2, 3))
        return f.get() if hasattr(f, "get") else np.asarray(f)

    def state(self) -> dict:
        """Host copies of what a bit-identical continuation needs (per member, stacked)."""

        def host(a):
            return a.get() if hasattr(a, "get") else a.copy()

        return {
            "phi": host(self.phi),
            "phi_hat": host(self._ph),
            "history": self._history.copy(),
            "phi_hat_old": host(self._ph_old),
            "g_hat_old": host(self._g_old),
        }

    def load_state(self, state: dict) -> None:
        """Restore :meth:`state`."""
        xp = self.xp
        ph = np.asarray(state["phi_hat"])
        if ph.shape != tuple(self._ph.shape) or ph.dtype != self._ph.dtype:
            raise ValueError(f"spectral state {ph.shape} {ph.dtype} does not fit ({self._ph.shape} {self._ph.dtype})")
        self.phi = xp.asarray(np.ascontiguousarray(state["phi"], self.dtype))
        self._ph = xp.asarray(ph)
        self._history = np.asarray(state["history"], bool).reshape(self.shape[0]).copy()
        self._ph_old = xp.asarray(np.asarray(state["phi_hat_old"], ph.dtype))
        self._g_old = xp.asarray(np.asarray(state["g_hat_old"], ph.dtype))
