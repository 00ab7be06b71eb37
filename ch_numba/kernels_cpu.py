"""CPU kernels: ``numba.njit(parallel=True)`` forward-Euler steps (see physics.py).

Fused scheme (the production kernel, :func:`fused_step`): the x axis is cut into
one contiguous chunk of planes per thread. A thread walks its planes in order and
keeps μ for three consecutive x-planes in a ring buffer, so for output plane x it
computes μ on plane x+1 only (plus planes x0−1, x0 once at the chunk start). φ is
read from memory about once and φ_next written once per step: ~8 bytes/voxel in
float32 instead of ~20 for the two-pass scheme. Each voxel's arithmetic is the same
whatever the chunking, so the result is bitwise independent of the thread count.

:func:`two_pass_step` (μ pass, then φ pass) is the plain scheme, kept as the
benchmark's baseline; it gives bitwise the same result as the fused kernel.

Periodic neighbours are found without modulo in the inner loop: the first and
last z voxels are peeled off, the middle of a row is a contiguous, vectorisable loop.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from numba import njit, prange

from .physics import local_ops


@functools.lru_cache(maxsize=None)
def kernels(dtype):
    """Build (fused_step, two_pass_step) for one state dtype."""
    ops = local_ops(dtype)
    fprime, stencil = ops.fprime, ops.stencil

    @njit(inline="always")
    def mu_plane(phi, x, xm, xp, out, two_w, eps2_dx2):
        """μ on plane x of phi (X, Y, Z) into out (Y, Z)."""
        ny, nz = phi.shape[1], phi.shape[2]
        for y in range(ny):
            ym = y - 1 if y > 0 else ny - 1
            yp = y + 1 if y < ny - 1 else 0
            c = phi[x, y]
            a_xm, a_xp, a_ym, a_yp = phi[xm, y], phi[xp, y], phi[x, ym], phi[x, yp]
            o = out[y]
            o[0] = fprime(c[0], two_w) - eps2_dx2 * stencil(
                c[0], a_xm[0], a_xp[0], a_ym[0], a_yp[0], c[nz - 1], c[1]
            )
            for z in range(1, nz - 1):
                o[z] = fprime(c[z], two_w) - eps2_dx2 * stencil(
                    c[z], a_xm[z], a_xp[z], a_ym[z], a_yp[z], c[z - 1], c[z + 1]
                )
            o[nz - 1] = fprime(c[nz - 1], two_w) - eps2_dx2 * stencil(
                c[nz - 1], a_xm[nz - 1], a_xp[nz - 1], a_ym[nz - 1], a_yp[nz - 1], c[nz - 2], c[0]
            )

    @njit(inline="always")
    def update_plane(phi, x, mu_m, mu_c, mu_p, out, dtm_dx2):
        """out[x] = φ[x] + (dt M/dx²) stencil(μ) with μ planes x−1, x, x+1 given (Y, Z)."""
        ny, nz = phi.shape[1], phi.shape[2]
        for y in range(ny):
            ym = y - 1 if y > 0 else ny - 1
            yp = y + 1 if y < ny - 1 else 0
            c = mu_c[y]
            a_xm, a_xp, a_ym, a_yp = mu_m[y], mu_p[y], mu_c[ym], mu_c[yp]
            p = phi[x, y]
            o = out[x, y]
            o[0] = p[0] + dtm_dx2 * stencil(c[0], a_xm[0], a_xp[0], a_ym[0], a_yp[0], c[nz - 1], c[1])
            for z in range(1, nz - 1):
                o[z] = p[z] + dtm_dx2 * stencil(
                    c[z], a_xm[z], a_xp[z], a_ym[z], a_yp[z], c[z - 1], c[z + 1]
                )
            o[nz - 1] = p[nz - 1] + dtm_dx2 * stencil(
                c[nz - 1], a_xm[nz - 1], a_xp[nz - 1], a_ym[nz - 1], a_yp[nz - 1], c[nz - 2], c[0]
            )

    @njit(parallel=True, cache=False)
    def fused_step(phi, out, ring, two_w, eps2_dx2, dtm_dx2):
        """out = one step from phi; ring is scratch of shape (chunks, 3, Y, Z)."""
        nx = phi.shape[0]
        nchunks = ring.shape[0]
        for t in prange(nchunks):
            x0 = (t * nx) // nchunks
            x1 = ((t + 1) * nx) // nchunks
            buf = ring[t]
            # ring slot of plane x is (x - x0 + 1) % 3: x0-1 -> 0, x0 -> 1, x0+1 -> 2, ...
            xa = x0 - 1 if x0 > 0 else nx - 1
            mu_plane(phi, xa, xa - 1 if xa > 0 else nx - 1, x0, buf[0], two_w, eps2_dx2)
            mu_plane(phi, x0, xa, x0 + 1 if x0 < nx - 1 else 0, buf[1], two_w, eps2_dx2)
            for x in range(x0, x1):
                xn = x + 1 if x < nx - 1 else 0
                xnn = xn + 1 if xn < nx - 1 else 0
                s = x - x0 + 1
                mu_plane(phi, xn, x, xnn, buf[(s + 1) % 3], two_w, eps2_dx2)
                update_plane(phi, x, buf[(s - 1) % 3], buf[s % 3], buf[(s + 1) % 3], out, dtm_dx2)

    @njit(parallel=True, cache=False)
    def two_pass_step(phi, out, mu, two_w, eps2_dx2, dtm_dx2):
        """out = one step from phi; mu is scratch of phi's shape."""
        nx = phi.shape[0]
        for x in prange(nx):
            mu_plane(phi, x, x - 1 if x > 0 else nx - 1, x + 1 if x < nx - 1 else 0, mu[x], two_w, eps2_dx2)
        for x in prange(nx):
            update_plane(
                phi, x, mu[x - 1 if x > 0 else nx - 1], mu[x], mu[x + 1 if x < nx - 1 else 0], out, dtm_dx2
            )

    return fused_step, two_pass_step


def ring_buffer(shape, dtype, chunks: int | None = None) -> np.ndarray:
    """Scratch for :func:`fused_step`: (chunks, 3, Y, Z); chunks defaults to the thread count."""
    nx = shape[0]
    chunks = chunks or numba.get_num_threads()
    chunks = max(1, min(chunks, nx))
    return np.empty((chunks, 3, shape[1], shape[2]), dtype=dtype)


@njit(parallel=True, cache=True)
def _plane_energy(phi, W, half_eps2_dx2, out):
    """out[x] = Σ over plane x of W φ²(1−φ)² + (ε²/2dx²) Σ_a (φ[i+e_a] − φ[i])², float64."""
    nx, ny, nz = phi.shape
    for x in prange(nx):
        xp = x + 1 if x < nx - 1 else 0
        acc = 0.0
        for y in range(ny):
            yp = y + 1 if y < ny - 1 else 0
            for z in range(nz):
                zp = z + 1 if z < nz - 1 else 0
                c = np.float64(phi[x, y, z])
                gx = np.float64(phi[xp, y, z]) - c
                gy = np.float64(phi[x, yp, z]) - c
                gz = np.float64(phi[x, y, zp]) - c
                acc += W * c * c * (1.0 - c) * (1.0 - c) + half_eps2_dx2 * (gx * gx + gy * gy + gz * gz)
        out[x] = acc


def free_energy(phi: np.ndarray, W: float, epsilon: float, dx: float) -> float:
    """Free energy per unit volume (float64), summed plane by plane in a fixed order."""
    planes = np.empty(phi.shape[0], dtype=np.float64)
    _plane_energy(phi, float(W), 0.5 * epsilon**2 / dx**2, planes)
    return float(np.sum(planes) / phi.size)
