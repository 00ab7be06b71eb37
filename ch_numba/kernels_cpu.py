"""CPU kernels: ``numba.njit(parallel=True)`` forward-Euler steps (see physics.py).

Fused scheme (the production kernel, :func:`fused_step`): the x axis is cut into
one contiguous chunk of planes per thread. A thread walks its planes in order and
keeps μ for three consecutive x-planes in a ring buffer, so for output plane x it
computes μ on plane x+1 only (plus planes x0−1, x0 once at the chunk start). φ is
read from memory about once and φ_next written once per step: ~8 bytes/voxel in
float32 instead of ~20 for the two-pass scheme. Wide planes are walked in blocks of
rows (block_rows) so that a thread's μ and φ slabs stay in its L2 cache; the rows at
a block's edge cost one extra μ row each. Each voxel's arithmetic is the same
whatever the chunking or blocking, so the result is bitwise independent of the
thread count. :func:`fused_steps` runs many steps in one call (no Python dispatch
per step).

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


# Rows of μ kept per ring slot: the three μ slabs plus the five φ slabs a thread touches
# should stay in its L2 cache (~1 MiB here), so wide planes are cut into blocks of rows.
RING_BYTES = 96 * 1024


def block_rows(shape, itemsize: int) -> int:
    """Rows per y-block: the whole plane when it is small, else enough to fit RING_BYTES per slab."""
    ny, nz = shape[1], shape[2]
    rows = max(8, RING_BYTES // (nz * itemsize) - 2)
    return min(ny, rows)


@functools.lru_cache(maxsize=None)
def kernels(dtype):
    """Build (fused_step, two_pass_step, fused_steps) for one state dtype."""
    ops = local_ops(dtype)
    fprime, stencil = ops.fprime, ops.stencil

    @njit(inline="always")
    def mu_row(c, a_xm, a_xp, a_ym, a_yp, o, two_w, eps2_dx2):
        """o = f'(c) − (ε²/dx²) stencil(c) along one z row (rows of the 4 neighbours given)."""
        nz = c.shape[0]
        o[0] = fprime(c[0], two_w) - eps2_dx2 * stencil(c[0], a_xm[0], a_xp[0], a_ym[0], a_yp[0], c[nz - 1], c[1])
        for z in range(1, nz - 1):
            o[z] = fprime(c[z], two_w) - eps2_dx2 * stencil(
                c[z], a_xm[z], a_xp[z], a_ym[z], a_yp[z], c[z - 1], c[z + 1]
            )
        o[nz - 1] = fprime(c[nz - 1], two_w) - eps2_dx2 * stencil(
            c[nz - 1], a_xm[nz - 1], a_xp[nz - 1], a_ym[nz - 1], a_yp[nz - 1], c[nz - 2], c[0]
        )

    @njit(inline="always")
    def update_row(p, c, a_xm, a_xp, a_ym, a_yp, o, dtm_dx2):
        """o = p + (dt M/dx²) stencil(c) along one z row, c = μ row, a_* its neighbour rows."""
        nz = c.shape[0]
        o[0] = p[0] + dtm_dx2 * stencil(c[0], a_xm[0], a_xp[0], a_ym[0], a_yp[0], c[nz - 1], c[1])
        for z in range(1, nz - 1):
            o[z] = p[z] + dtm_dx2 * stencil(c[z], a_xm[z], a_xp[z], a_ym[z], a_yp[z], c[z - 1], c[z + 1])
        o[nz - 1] = p[nz - 1] + dtm_dx2 * stencil(
            c[nz - 1], a_xm[nz - 1], a_xp[nz - 1], a_ym[nz - 1], a_yp[nz - 1], c[nz - 2], c[0]
        )

    @njit(inline="always")
    def wrap(i, n):
        return i + n if i < 0 else (i - n if i >= n else i)

    @njit(inline="always")
    def mu_slab(phi, x, y0, rows, out, two_w, eps2_dx2):
        """μ on plane x for rows y0−1 .. y0+rows (periodic) into out[0 .. rows+1]."""
        nx, ny = phi.shape[0], phi.shape[1]
        xm, xp = wrap(x - 1, nx), wrap(x + 1, nx)
        for r in range(rows + 2):
            y = wrap(y0 - 1 + r, ny)
            mu_row(phi[x, y], phi[xm, y], phi[xp, y], phi[x, wrap(y - 1, ny)], phi[x, wrap(y + 1, ny)], out[r],
                   two_w, eps2_dx2)

    @njit(parallel=True)
    def fused_step(phi, out, ring, two_w, eps2_dx2, dtm_dx2):
        """out = one step from phi; ring is scratch (chunks, 3, rows + 2, Z) from ring_buffer()."""
        nx, ny = phi.shape[0], phi.shape[1]
        nchunks, by = ring.shape[0], ring.shape[2] - 2
        for t in prange(nchunks):
            x0 = (t * nx) // nchunks
            x1 = ((t + 1) * nx) // nchunks
            buf = ring[t]
            for y0 in range(0, ny, by):
                rows = min(by, ny - y0)
                # ring slot of plane x is (x − x0 + 1) % 3: x0−1 → 0, x0 → 1, x0+1 → 2, ...
                mu_slab(phi, wrap(x0 - 1, nx), y0, rows, buf[0], two_w, eps2_dx2)
                mu_slab(phi, x0, y0, rows, buf[1], two_w, eps2_dx2)
                for x in range(x0, x1):
                    s = x - x0 + 1
                    mu_slab(phi, wrap(x + 1, nx), y0, rows, buf[(s + 1) % 3], two_w, eps2_dx2)
                    m, c, p = buf[(s - 1) % 3], buf[s % 3], buf[(s + 1) % 3]
                    for r in range(1, rows + 1):
                        y = y0 + r - 1
                        update_row(phi[x, y], c[r], m[r], p[r], c[r - 1], c[r + 1], out[x, y], dtm_dx2)

    @njit(parallel=True)
    def two_pass_step(phi, out, mu, two_w, eps2_dx2, dtm_dx2):
        """out = one step from phi; mu is scratch of phi's shape (the plain scheme, for benchmarks)."""
        nx, ny = phi.shape[0], phi.shape[1]
        for x in prange(nx):
            xm, xp = wrap(x - 1, nx), wrap(x + 1, nx)
            for y in range(ny):
                mu_row(phi[x, y], phi[xm, y], phi[xp, y], phi[x, wrap(y - 1, ny)], phi[x, wrap(y + 1, ny)], mu[x, y],
                       two_w, eps2_dx2)
        for x in prange(nx):
            xm, xp = wrap(x - 1, nx), wrap(x + 1, nx)
            for y in range(ny):
                update_row(phi[x, y], mu[x, y], mu[xm, y], mu[xp, y], mu[x, wrap(y - 1, ny)], mu[x, wrap(y + 1, ny)],
                           out[x, y], dtm_dx2)

    @njit
    def fused_steps(a, b, ring, nsteps, two_w, eps2_dx2, dtm_dx2):
        """nsteps steps alternating between a and b (no Python call per step).

        The result is in a when nsteps is even, in b when it is odd.
        """
        for s in range(nsteps):
            if s % 2 == 0:
                fused_step(a, b, ring, two_w, eps2_dx2, dtm_dx2)
            else:
                fused_step(b, a, ring, two_w, eps2_dx2, dtm_dx2)

    return fused_step, two_pass_step, fused_steps


def ring_buffer(shape, dtype, chunks: int | None = None) -> np.ndarray:
    """Scratch for fused_step: (chunks, 3, rows + 2, Z); chunks defaults to the thread count."""
    dtype = np.dtype(dtype)
    nx = shape[0]
    chunks = chunks or numba.get_num_threads()
    chunks = max(1, min(chunks, nx))
    return np.empty((chunks, 3, block_rows(shape, dtype.itemsize) + 2, shape[2]), dtype=dtype)


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
