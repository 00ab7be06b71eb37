"""Semi-implicit Fourier-spectral integrator of the Cahn-Hilliard equation (``CHParams(scheme="spectral")``).

Equation (periodic box, grid units, constant mobility)::

    ∂φ/∂t = M Δ μ,     μ = f'(φ) − ε² Δφ,     f'(φ) = 2W φ (1 − φ)(1 − 2φ)

In Fourier space Δ is a multiplication by its symbol λ(k) ≤ 0 (:func:`laplacian_symbol`): by
default the 7-point stencil's λ = −(2/dx²) Σ_a (1 − cos(k_a dx)), so the scheme integrates exactly
the semi-discrete system of the explicit kernel (and converges to it as dt → 0); ``symbol="exact"``
takes λ = −|k|². Linear stabilisation with a constant S ≥ 0 (Chen & Shen 1998; Shen & Yang 2010)
treats −ε²Δ² and S·Δ implicitly and f' explicitly:

order 1 (stabilised semi-implicit Euler)::

    (φ^{n+1} − φ^n)/dt = M Δ [ f'(φ^n) + S (φ^{n+1} − φ^n) − ε² Δ φ^{n+1} ]
    φ̂^{n+1} = [ (1 − dt M S λ) φ̂^n + dt M λ f̂'^n ] / (1 − dt M S λ + dt M ε² λ²)

order 2 (SBDF2: BDF2 in time, f' and the stabilisation extrapolated; the first step is order 1)::

    (3φ^{n+1} − 4φ^n + φ^{n−1})/(2dt) = M Δ [ 2f'^n − f'^{n−1} + S (φ^{n+1} − 2φ^n + φ^{n−1}) − ε² Δ φ^{n+1} ]
    φ̂^{n+1} = [ 2φ̂^n − ½φ̂^{n−1} + dt M λ (2f̂'^n − f̂'^{n−1}) − dt M S λ (2φ̂^n − φ̂^{n−1}) ]
              / (3/2 − dt M S λ + dt M ε² λ²)

The k = 0 mode (λ = 0) is left unchanged, so the mass Σφ is conserved exactly in Fourier space
(to the round-off of one inverse FFT in real space, without drift).

No-flux walls (``CHParams.boundary``, per axis). Along an axis with walls (cell-centred grid, the
wall half a cell outside the first and last voxel, mirror ghosts for φ and μ) the transform is the
orthonormal DCT-II (``scipy.fft.dct(type=2, norm="ortho")``) instead of the FFT: its modes
cos(πm(i + ½)/N), m = 0 .. N−1, are the eigenvectors of the stencil with mirror ghosts, with
eigenvalues −(4/dx²) sin²(πm/2N) (``symbol="stencil"``; exactly those of the periodic box of 2N
voxels holding the field and its mirror image) or −(πm/(N dx))² (``symbol="exact"``). Periodic axes
keep the real FFT (the last periodic axis the half-spectrum). The update formulas are the same per
mode; the m = 0 mode of every axis together is again the mean, kept fixed, so mass is conserved.
Runs with walls go through the ``scipy.fft`` interface (pyFFTW's ``interfaces.scipy_fft`` when the
FFT library is pyfftw).

Energy stability (what is proven, and under which assumption). Let F_h(φ) = Σ f(φ) − (ε²/2) φ·Δφ,
the discrete energy whose gradient flow the scheme discretises; with the stencil symbol it is
exactly ``ch_numba.free_energy`` (forward differences), with the exact symbol its spectral twin.
For order 1, if f' is L-Lipschitz on an interval containing every φ^n and φ^{n+1} (L = max |f''|
there), then S ≥ L/2 gives F_h(φ^{n+1}) ≤ F_h(φ^n) for every dt > 0 (Shen & Yang, DCDS-A 28,
2010, Thm 1: the stabilisation absorbs the explicit term's error ½ L |φ^{n+1} − φ^n|²). On [0, 1],
f'' = 2W(1 − 6φ + 6φ²) ∈ [−W, 2W], so L = 2W and the default S = W satisfies it; the scheme has no
maximum principle, so φ staying within [0, 1] (or within the wider range where |f''| ≤ 2S) is an
assumption, checked a posteriori: the runs of the tests and benchmarks stayed within [−0.05, 1.05]
and their F never rose (tested for order 1 at dt up to 50 and order 2 at dt up to 10 at ε = 3).
For order 2 (SBDF2) no unconditional energy law of F_h is claimed: it is energy stable in all our
tests at the step sizes used, and its accuracy is why it is the default (error of F(t) ~ dt²
against ~dt for order 1; benchmarks/RESULTS.md).

Cost per step: one real FFT of f'(φ) and one inverse real FFT, plus two fused Numba passes (f'
in real space, the update in Fourier space). float32 states use single-precision FFTs (half the
cost; the error of F stays far below the scheme's at the step sizes of interest). The FFTs come
from pyFFTW (FFTW 3) when it is installed (``pip install ch3d[fftw]``; one spectral step measured
1.5–2.7× faster than with ``scipy.fft`` at 32³–128³ here, benchmarks/RESULTS.md), else from
``scipy.fft``. scipy.fft uses Numba's thread count; FFTW runs on one thread (its own threads
fought Numba's pool: ~16 ms per step at 32³–64³ on 2 cores). FFTW plans with ``FFTW_ESTIMATE`` (no timing runs),
so a run is reproducible bit for bit on one machine and thread count; the two libraries agree to
round-off, not bitwise, so a resumed run or a shard must use the library it started with (the
data set's ``fft`` attribute records it).
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from numba import prange

from .params import CHParams
from .physics import check_dtype, kernel_jit

__all__ = ["laplacian_symbol", "SpectralIntegrator", "fft_library", "FFT_LIBRARIES"]

FFT_LIBRARIES = ("auto", "pyfftw", "scipy")


def laplacian_symbol(shape, dx: float = 1.0, kind: str = "stencil", walls=(False, False, False)) -> np.ndarray:
    """λ(k) of the Laplacian on the transform grid, float64, λ ≤ 0, λ(0) = 0.

    Periodic box (no ``walls``): the real-FFT grid (X, Y, Z//2 + 1); ``"stencil"``: −(2/dx²) Σ_a (1 −
    cos(k_a dx)) (the 7-point stencil's eigenvalues); ``"exact"``: −Σ_a k_a², with k_a = 2π m / (n_a dx)
    for m = 0, 1, ..., −1 (numpy FFT order). ``walls`` (x, y, z): along a wall axis the DCT-II index
    m = 0 .. n−1 with −(4/dx²) sin²(πm/2n) (stencil) or −(πm/(n dx))² (exact), and the last periodic
    axis (if any) is the half-spectrum one (module docstring).
    """
    if kind not in ("stencil", "exact"):
        raise ValueError(f"unknown Laplacian symbol {kind!r}; choose stencil or exact")
    sizes = [int(n) for n in shape]
    walls = tuple(bool(w) for w in walls)
    periodic = [a for a in range(3) if not walls[a]]
    half = periodic[-1] if periodic else None  # the axis of the real FFT's half spectrum
    parts = []
    for a, n in enumerate(sizes):
        if walls[a]:
            m = np.arange(n)
            if kind == "stencil":
                parts.append(-(4.0 / dx**2) * np.sin(np.pi * m / (2 * n)) ** 2)
            else:
                parts.append(-((np.pi * m / (n * dx)) ** 2))
            continue
        k = 2 * np.pi * (np.fft.rfftfreq(n, dx) if a == half else np.fft.fftfreq(n, dx))
        parts.append(-(2.0 / dx**2) * (1.0 - np.cos(k * dx)) if kind == "stencil" else -(k**2))
    return parts[0][:, None, None] + parts[1][None, :, None] + parts[2][None, None, :]


def update_coefficients(lam: np.ndarray, p: CHParams, order: int) -> tuple[np.ndarray, ...]:
    """Real per-mode coefficients of the update, float64, with the k = 0 mode kept fixed.

    order 1: φ̂' = a φ̂ + c ĝ;  order 2: φ̂' = a φ̂ + b φ̂_old + c ĝ + d ĝ_old (ĝ = FFT of f'(φ)).
    Returns (a, c) or (a, b, c, d).
    """
    dtm = p.dt * p.mobility
    implicit = dtm * p.epsilon**2 * lam**2 - dtm * p.S * lam
    if order == 1:
        den = 1.0 + implicit
        a, c = (1.0 - dtm * p.S * lam) / den, dtm * lam / den
        a.flat[0], c.flat[0] = 1.0, 0.0
        return a, c
    den = 1.5 + implicit
    a = (2.0 - 2.0 * dtm * p.S * lam) / den
    b = (-0.5 + dtm * p.S * lam) / den
    c = 2.0 * dtm * lam / den
    d = -dtm * lam / den
    a.flat[0], b.flat[0], c.flat[0], d.flat[0] = 1.0, 0.0, 0.0, 0.0
    return a, b, c, d


@functools.lru_cache(maxsize=None)
def _kernels(dtype):
    """Fused Numba passes for one state dtype: f'(φ) in real space, the Fourier-space updates."""
    t = np.dtype(dtype).type
    one, two = t(1), t(2)

    # Loops over (x, y, z) with prange on x. (Flat views unpacked in one tuple assignment,
    # ``a_, b_ = a.reshape(-1), b.reshape(-1)``, were measured to give wrong results under
    # parallel=True with numba 0.68; see tests/test_spectral.py.)
    @kernel_jit(np.dtype(dtype).name, parallel=True)
    def fprime(phi, out, two_w):
        nx, ny, nz = phi.shape
        for i in prange(nx):
            for j in range(ny):
                for k in range(nz):
                    v = phi[i, j, k]
                    out[i, j, k] = two_w * v * (one - v) * (one - two * v)

    @kernel_jit(np.dtype(dtype).name, parallel=True)
    def update1(ph, g, a, c):
        nx, ny, nz = ph.shape
        for i in prange(nx):
            for j in range(ny):
                for k in range(nz):
                    ph[i, j, k] = a[i, j, k] * ph[i, j, k] + c[i, j, k] * g[i, j, k]

    @kernel_jit(np.dtype(dtype).name, parallel=True)
    def update2(ph, ph_old, g, g_old, a, b, c, d):
        """φ̂' = a φ̂ + b φ̂_old + c ĝ + d ĝ_old; then φ̂_old ← φ̂, ĝ_old ← ĝ, φ̂ ← φ̂' (in place)."""
        nx, ny, nz = ph.shape
        for i in prange(nx):
            for j in range(ny):
                for k in range(nz):
                    p0 = ph[i, j, k]
                    g0 = g[i, j, k]
                    new = (a[i, j, k] * p0 + b[i, j, k] * ph_old[i, j, k]) + (
                        c[i, j, k] * g0 + d[i, j, k] * g_old[i, j, k]
                    )
                    ph_old[i, j, k] = p0
                    g_old[i, j, k] = g0
                    ph[i, j, k] = new

    return fprime, update1, update2


def fft_library(name: str = "auto") -> str:
    """Resolve ``"auto"`` to ``"pyfftw"`` when it imports, else ``"scipy"``; check the name."""
    if name not in FFT_LIBRARIES:
        raise ValueError(f"unknown FFT library {name!r}; choose one of {', '.join(FFT_LIBRARIES)}")
    if name != "auto":
        return name
    try:
        import pyfftw  # noqa: F401
    except ImportError:
        return "scipy"
    return "pyfftw"


def fft_version(name: str) -> str:
    """``"scipy X"`` or ``"pyfftw X"``: what made a run's transforms (recorded in data sets)."""
    if name == "pyfftw":
        import pyfftw

        return f"pyfftw {pyfftw.__version__}"
    import scipy

    return f"scipy {scipy.__version__}"


class _ScipyFFT:
    """Real 3D FFT pair with ``scipy.fft`` (pocketfft): new arrays each call."""

    def __init__(self, shape, dtype, threads: int):
        import scipy.fft

        self._fft, self.shape, self.threads = scipy.fft, tuple(shape), threads

    def forward(self, a: np.ndarray) -> np.ndarray:
        return self._fft.rfftn(a, workers=self.threads)

    def inverse(self, ah: np.ndarray) -> np.ndarray:
        return self._fft.irfftn(ah, s=self.shape, workers=self.threads)


class _WallTransforms:
    """The transform pair of a box with walls on some axes: orthonormal DCT-II along the wall axes, then the
    real FFT over the periodic ones (the last periodic axis halved); ``module`` is ``scipy.fft`` or pyFFTW's
    ``interfaces.scipy_fft`` (same functions). New arrays each call; all-wall boxes stay real."""

    def __init__(self, shape, dtype, threads: int, walls, module):
        self._fft, self.shape, self.threads = module, tuple(shape), threads
        self._walls = tuple(a for a in range(3) if walls[a])
        self._periodic = tuple(a for a in range(3) if not walls[a])

    def forward(self, a: np.ndarray) -> np.ndarray:
        out = self._fft.dctn(a, type=2, norm="ortho", axes=self._walls, workers=self.threads)
        if self._periodic:
            out = self._fft.rfftn(out, axes=self._periodic, workers=self.threads)
        return out

    def inverse(self, ah: np.ndarray) -> np.ndarray:
        out = ah
        if self._periodic:
            s = [self.shape[a] for a in self._periodic]
            out = self._fft.irfftn(out, s=s, axes=self._periodic, workers=self.threads)
        return self._fft.idctn(out, type=2, norm="ortho", axes=self._walls, workers=self.threads)


class _FFTW:
    """Real 3D FFT pair with pyFFTW on aligned buffers, planned once (``FFTW_ESTIMATE``).

    ``forward`` returns the plan's complex output buffer and ``inverse`` its real output buffer:
    both are valid until the next call (the caller copies what it keeps). FFTW's c2r transform
    overwrites its input, hence the copy into the plan's complex buffer.
    """

    def __init__(self, shape, dtype, threads: int):
        import pyfftw

        cdtype = np.result_type(dtype, np.complex64)
        rshape = (*tuple(shape)[:-1], shape[-1] // 2 + 1)
        self._r = pyfftw.empty_aligned(tuple(shape), dtype=dtype)
        self._c = pyfftw.empty_aligned(rshape, dtype=cdtype)
        kw = dict(axes=(0, 1, 2), threads=threads, flags=("FFTW_ESTIMATE",))
        self._fwd = pyfftw.FFTW(self._r, self._c, **kw)
        self._bwd = pyfftw.FFTW(self._c, self._r, direction="FFTW_BACKWARD", **kw)

    def forward(self, a: np.ndarray) -> np.ndarray:
        if a is not self._r:
            self._r[...] = a
        self._fwd()
        return self._c

    def inverse(self, ah: np.ndarray) -> np.ndarray:
        self._c[...] = ah
        self._bwd()  # normalised by 1/N (pyfftw's default for the inverse)
        return self._r


class SpectralIntegrator:
    """State and steps of the semi-implicit spectral scheme on one (X, Y, Z) grid (periodic, or with walls).

    ``set(phi)`` loads a state (and forgets the SBDF2 history: the next step is order 1),
    ``advance(steps)`` integrates, ``phi`` is the current real-space field (X, Y, Z) in the state
    dtype; :meth:`state` / :meth:`load_state` save and restore everything a bit-identical
    continuation needs (for checkpoints). float32 states use single-precision FFTs.
    """

    def __init__(self, shape, params: CHParams, dtype=np.float32, workers: int | None = None, fft: str = "auto"):
        if params.scheme != "spectral":
            raise ValueError(f"SpectralIntegrator needs CHParams(scheme='spectral'), got scheme={params.scheme!r}")
        self.shape = tuple(int(n) for n in shape)
        if len(self.shape) != 3:
            raise ValueError(f"expected an (X, Y, Z) grid, got {self.shape}")
        self.params = params
        self.dtype = check_dtype(dtype)
        self.fft = fft_library(fft)
        # pyFFTW runs single-threaded unless ``workers`` says otherwise: beside Numba's thread pool
        # (the f' and update passes), FFTW's own threads cost ~16 ms per transform pair at 32³–64³
        # on 2 cores, while one FFTW thread beat scipy.fft on two (benchmarks/RESULTS.md).
        if not params.periodic:  # walls: DCT-II along them (module docstring)
            if self.fft == "pyfftw":
                from pyfftw.interfaces import scipy_fft as module
            else:
                import scipy.fft as module
            threads = workers or (1 if self.fft == "pyfftw" else numba.get_num_threads())
            self._ffts = _WallTransforms(self.shape, self.dtype, threads, params.neumann_axes, module)
        elif self.fft == "pyfftw":
            self._ffts = _FFTW(self.shape, self.dtype, workers or 1)
        else:
            self._ffts = _ScipyFFT(self.shape, self.dtype, workers or numba.get_num_threads())
        lam = laplacian_symbol(self.shape, params.dx, params.symbol, params.neumann_axes)
        t = self.dtype.type
        self._c1 = tuple(np.ascontiguousarray(x, self.dtype) for x in update_coefficients(lam, params, 1))
        self._c2 = tuple(np.ascontiguousarray(x, self.dtype) for x in update_coefficients(lam, params, 2))
        self._two_w = t(2.0 * params.W)
        self._fprime, self._update1, self._update2 = _kernels(self.dtype)
        self.phi = np.zeros(self.shape, self.dtype)
        self._g = np.empty(self.shape, self.dtype)
        self._ph = self._fft(self.phi).copy()
        self._ph_old = np.zeros_like(self._ph)
        self._g_old = np.zeros_like(self._ph)
        self._history = False

    def _fft(self, a: np.ndarray) -> np.ndarray:
        """rfftn of a real (X, Y, Z) field; the result may be a buffer reused by the next call."""
        return self._ffts.forward(a)

    def _ifft(self, ah: np.ndarray) -> np.ndarray:
        """irfftn back to (X, Y, Z); the result may be a buffer reused by the next call."""
        return self._ffts.inverse(ah)

    def set(self, phi: np.ndarray) -> None:
        """Load φ (X, Y, Z); the next step starts a new SBDF2 history (order 1 first)."""
        self.phi = np.ascontiguousarray(phi, dtype=self.dtype).copy()
        self._ph = self._fft(self.phi).copy()
        self._history = False

    def advance(self, steps: int) -> None:
        """``steps`` steps of the scheme (order 1 or 2 as ``params.order``)."""
        for _ in range(int(steps)):
            self._fprime(self.phi, self._g, self._two_w)
            gh = self._fft(self._g)
            if self.params.order == 1:
                self._update1(self._ph, gh, *self._c1)
            elif not self._history:  # SBDF2's first step: order 1, and start the history
                self._ph_old[...] = self._ph
                self._g_old[...] = gh
                self._update1(self._ph, gh, *self._c1)
                self._history = True
            else:
                self._update2(self._ph, self._ph_old, gh, self._g_old, *self._c2)
            np.copyto(self.phi, self._ifft(self._ph))

    def state(self) -> dict:
        """Copies of the arrays that define the continuation: φ, φ̂ (and the SBDF2 history)."""
        out = {"phi": self.phi.copy(), "phi_hat": self._ph.copy(), "history": np.array(self._history)}
        if self._history:
            out.update(phi_hat_old=self._ph_old.copy(), g_hat_old=self._g_old.copy())
        return out

    def load_state(self, state: dict) -> None:
        """Restore :meth:`state` (bit-identical continuation)."""
        ph = np.asarray(state["phi_hat"])
        if ph.shape != self._ph.shape or ph.dtype != self._ph.dtype:
            raise ValueError(
                f"spectral state of shape {ph.shape} {ph.dtype} does not fit this grid/dtype "
                f"({self._ph.shape} {self._ph.dtype})"
            )
        self._ph = ph.copy()
        self._history = bool(state["history"])
        if self._history:
            self._ph_old[...] = state["phi_hat_old"]
            self._g_old[...] = state["g_hat_old"]
        self.phi = np.ascontiguousarray(state["phi"], dtype=self.dtype).copy()
