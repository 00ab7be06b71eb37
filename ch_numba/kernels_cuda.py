"""CUDA kernels (numba-cuda): the same scheme as kernels_cpu, in two passes.

    mu_kernel:     mu  = f'(φ) − (ε²/dx²) stencil(φ)
    update_kernel: out = φ + (dt M/dx²) stencil(μ)

One thread per voxel; threadIdx.x runs along z (the contiguous axis of a C-order
(X, Y, Z) array) so loads are coalesced. Periodic neighbours by comparison, not
modulo. The local formulas are physics.local_ops, shared with the CPU kernels.

Importing this module needs the ``numba-cuda`` package (extra ``cuda``). Without a
GPU, set ``NUMBA_ENABLE_CUDASIM=1`` before numba is imported to run the kernels in
Numba's simulator (slow: small grids only).
"""

from __future__ import annotations

import functools

import numba
from numba import cuda

from .physics import local_ops

BLOCK = (32, 4, 2)  # threads along (z, y, x)


def is_simulator() -> bool:
    return bool(numba.config.ENABLE_CUDASIM)


def gpu_available() -> bool:
    """True when a real CUDA device is usable (never true under the simulator)."""
    if is_simulator():
        return False
    try:
        return bool(cuda.is_available())
    except Exception:  # driver present but broken: treat as no GPU
        return False


@functools.lru_cache(maxsize=None)
def kernels(dtype):
    """(mu_kernel, update_kernel) for one state dtype; arrays (B, X, Y, Z), blockIdx.z spans B·X."""
    ops = local_ops(dtype)
    fprime, stencil = ops.fprime, ops.stencil

    @cuda.jit
    def mu_kernel(phi, mu, two_w, eps2_dx2):
        z = cuda.threadIdx.x + cuda.blockIdx.x * cuda.blockDim.x
        y = cuda.threadIdx.y + cuda.blockIdx.y * cuda.blockDim.y
        bx = cuda.threadIdx.z + cuda.blockIdx.z * cuda.blockDim.z
        nb, nx, ny, nz = phi.shape
        if bx >= nb * nx or y >= ny or z >= nz:
            return
        b = bx // nx
        x = bx - b * nx
        xm = x - 1 if x > 0 else nx - 1
        xp = x + 1 if x < nx - 1 else 0
        ym = y - 1 if y > 0 else ny - 1
        yp = y + 1 if y < ny - 1 else 0
        zm = z - 1 if z > 0 else nz - 1
        zp = z + 1 if z < nz - 1 else 0
        c = phi[b, x, y, z]
        mu[b, x, y, z] = fprime(c, two_w) - eps2_dx2 * stencil(
            c, phi[b, xm, y, z], phi[b, xp, y, z], phi[b, x, ym, z], phi[b, x, yp, z], phi[b, x, y, zm],
            phi[b, x, y, zp]
        )

    @cuda.jit
    def update_kernel(phi, mu, out, dtm_dx2):
        z = cuda.threadIdx.x + cuda.blockIdx.x * cuda.blockDim.x
        y = cuda.threadIdx.y + cuda.blockIdx.y * cuda.blockDim.y
        bx = cuda.threadIdx.z + cuda.blockIdx.z * cuda.blockDim.z
        nb, nx, ny, nz = phi.shape
        if bx >= nb * nx or y >= ny or z >= nz:
            return
        b = bx // nx
        x = bx - b * nx
        xm = x - 1 if x > 0 else nx - 1
        xp = x + 1 if x < nx - 1 else 0
        ym = y - 1 if y > 0 else ny - 1
        yp = y + 1 if y < ny - 1 else 0
        zm = z - 1 if z > 0 else nz - 1
        zp = z + 1 if z < nz - 1 else 0
        c = mu[b, x, y, z]
        out[b, x, y, z] = phi[b, x, y, z] + dtm_dx2 * stencil(
            c, mu[b, xm, y, z], mu[b, xp, y, z], mu[b, x, ym, z], mu[b, x, yp, z], mu[b, x, y, zm], mu[b, x, y, zp]
        )

    return mu_kernel, update_kernel


def launch_config(shape, block=BLOCK):
    """(grid, block) covering a (B, X, Y, Z) or (X, Y, Z) array with threads (z, y, B·X)."""
    nb, nx, ny, nz = (1, *shape) if len(shape) == 3 else shape
    bz, by, bx = block
    grid = ((nz + bz - 1) // bz, (ny + by - 1) // by, (nb * nx + bx - 1) // bx)
    return grid, block


class BatchStepper:
    """The state of a batch (B, X, Y, Z) on the device and its steps (used by solver.Stepper)."""

    def __init__(self, shape, dtype, coef):
        self.shape = tuple(shape)
        self.coef = coef
        self._mu_kernel, self._update_kernel = kernels(dtype)
        self._grid, self._block = launch_config(self.shape)
        self._a = cuda.device_array(self.shape, dtype)
        self._b = cuda.device_array(self.shape, dtype)
        self._mu = cuda.device_array(self.shape, dtype)

    def set(self, phi, member=None) -> None:
        """Copy phi (n, X, Y, Z) to the device: the whole batch, or member `member` (n = 1)."""
        if member is None:
            self._a.copy_to_device(phi)
        else:
            self._a[member].copy_to_device(phi[0])

    def get(self, member=None):
        """Host copy (n, X, Y, Z) of the whole batch, or of member `member` (n = 1)."""
        if member is None:
            return self._a.copy_to_host()
        return self._a[member].copy_to_host()[None]

    def advance(self, steps: int) -> None:
        two_w, eps2_dx2, dtm_dx2 = self.coef
        g, b = self._grid, self._block
        for _ in range(steps):
            self._mu_kernel[g, b](self._a, self._mu, two_w, eps2_dx2)
            self._update_kernel[g, b](self._a, self._mu, self._b, dtm_dx2)
            self._a, self._b = self._b, self._a
