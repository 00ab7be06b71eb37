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
    """(mu_kernel, update_kernel) for one state dtype."""
    ops = local_ops(dtype)
    fprime, stencil = ops.fprime, ops.stencil

    @cuda.jit
    def mu_kernel(phi, mu, two_w, eps2_dx2):
        z = cuda.threadIdx.x + cuda.blockIdx.x * cuda.blockDim.x
        y = cuda.threadIdx.y + cuda.blockIdx.y * cuda.blockDim.y
        x = cuda.threadIdx.z + cuda.blockIdx.z * cuda.blockDim.z
        nx, ny, nz = phi.shape
        if x >= nx or y >= ny or z >= nz:
            return
        xm = x - 1 if x > 0 else nx - 1
        xp = x + 1 if x < nx - 1 else 0
        ym = y - 1 if y > 0 else ny - 1
        yp = y + 1 if y < ny - 1 else 0
        zm = z - 1 if z > 0 else nz - 1
        zp = z + 1 if z < nz - 1 else 0
        c = phi[x, y, z]
        mu[x, y, z] = fprime(c, two_w) - eps2_dx2 * stencil(
            c, phi[xm, y, z], phi[xp, y, z], phi[x, ym, z], phi[x, yp, z], phi[x, y, zm], phi[x, y, zp]
        )

    @cuda.jit
    def update_kernel(phi, mu, out, dtm_dx2):
        z = cuda.threadIdx.x + cuda.blockIdx.x * cuda.blockDim.x
        y = cuda.threadIdx.y + cuda.blockIdx.y * cuda.blockDim.y
        x = cuda.threadIdx.z + cuda.blockIdx.z * cuda.blockDim.z
        nx, ny, nz = phi.shape
        if x >= nx or y >= ny or z >= nz:
            return
        xm = x - 1 if x > 0 else nx - 1
        xp = x + 1 if x < nx - 1 else 0
        ym = y - 1 if y > 0 else ny - 1
        yp = y + 1 if y < ny - 1 else 0
        zm = z - 1 if z > 0 else nz - 1
        zp = z + 1 if z < nz - 1 else 0
        c = mu[x, y, z]
        out[x, y, z] = phi[x, y, z] + dtm_dx2 * stencil(
            c, mu[xm, y, z], mu[xp, y, z], mu[x, ym, z], mu[x, yp, z], mu[x, y, zm], mu[x, y, zp]
        )

    return mu_kernel, update_kernel


def launch_config(shape, block=BLOCK):
    """(grid, block) covering an (X, Y, Z) array with threads (z, y, x)."""
    nx, ny, nz = shape
    bz, by, bx = block
    grid = ((nz + bz - 1) // bz, (ny + by - 1) // by, (nx + bx - 1) // bx)
    return grid, block
