"""CUDA reductions of a batch (numba-cuda): per member, what ``generate`` checks and stores of every frame —
the blow-up check (min, max, count of non-finite values), the mass (mean φ) and the free energy — computed
on the device where the state lives, so a frame needs no host pass over the field before it is written.

Kernel (:func:`stats_kernel`): one block of ``threads`` threads per (x plane, member), grid (X, B). Each
thread walks the plane's voxels with a stride of ``threads`` and accumulates in float64: Σφ, the free
energy density W φ²(1−φ)² + (ε²/2dx²) Σ_a (φ[i+e_a] − φ[i])² (forward differences, periodic; across a
no-flux wall, flags ``wx, wy, wz``, the last voxel's forward neighbour is its mirror ghost, itself: the
expression of :func:`ch_numba.kernels_cpu.free_energy`), min and max of the finite values and the number
of non-finite ones; a tree reduction in shared memory gives the plane's partial sums in
``out[b, x, :]`` = (Σφ, Σ energy density, min, max, non-finite count). No atomics: the order of every
addition is fixed, so the result is reproducible run to run. :func:`finish` adds the X partials of each
member on the host (float64, a fixed order) into mass and free energy per unit volume.

Precision: float64 accumulation of ≤ ~10⁷ terms per member; against the CPU's (numpy's pairwise mean;
the CPU kernel's per-plane float64 sums) the difference is round-off of float64 (tested ≤ 1e-12
relative, in the simulator). The CPU backend keeps its own functions (files written there are
unchanged bitwise).

Importing this module needs the ``numba-cuda`` package (extra ``cuda``); the simulator runs it
(``NUMBA_ENABLE_CUDASIM=1``) on tiny grids.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import cuda, float64

#: threads of a block on a GPU (a power of two); in the simulator far fewer (every thread is a Python thread)
THREADS = 256
SIM_THREADS = 8
#: the columns of the partial sums, ``out[b, x, :]``
FIELDS = ("sum", "energy", "min", "max", "nonfinite")


def default_threads() -> int:
    from .kernels_cuda import is_simulator

    return SIM_THREADS if is_simulator() else THREADS


def _signature(dtype) -> str:
    name = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64"}[np.dtype(dtype)]
    return f"void({name}[:, :, :, ::1], float64, float64, float64[:, :, ::1], int32, int32, int32)"


def _plane_stats(threads: int):
    """The kernel's Python function for blocks of ``threads`` threads (a power of two), not yet compiled."""
    if threads < 1 or threads & (threads - 1):
        raise ValueError(f"threads must be a power of two, got {threads}")
    nt = int(threads)

    def plane_stats(phi, W, half_eps2_dx2, out, wx, wy, wz):
        s_sum = cuda.shared.array(nt, float64)
        s_en = cuda.shared.array(nt, float64)
        s_lo = cuda.shared.array(nt, float64)
        s_hi = cuda.shared.array(nt, float64)
        s_bad = cuda.shared.array(nt, float64)
        x, b, t = cuda.blockIdx.x, cuda.blockIdx.y, cuda.threadIdx.x
        nx, ny, nz = phi.shape[1], phi.shape[2], phi.shape[3]
        xp = x + 1 if x < nx - 1 else (x if wx else 0)
        acc, en, bad = 0.0, 0.0, 0.0
        lo, hi = math.inf, -math.inf
        i = t
        while i < ny * nz:
            y = i // nz
            z = i - y * nz
            yp = y + 1 if y < ny - 1 else (y if wy else 0)
            zp = z + 1 if z < nz - 1 else (z if wz else 0)
            c = float64(phi[b, x, y, z])
            gx = float64(phi[b, xp, y, z]) - c
            gy = float64(phi[b, x, yp, z]) - c
            gz = float64(phi[b, x, y, zp]) - c
            acc += c
            en += W * c * c * (1.0 - c) * (1.0 - c) + half_eps2_dx2 * (gx * gx + gy * gy + gz * gz)
            if math.isfinite(c):
                lo = min(lo, c)
                hi = max(hi, c)
            else:
                bad += 1.0
            i += nt
        s_sum[t], s_en[t], s_lo[t], s_hi[t], s_bad[t] = acc, en, lo, hi, bad
        cuda.syncthreads()
        half = nt // 2
        while half > 0:
            if t < half:
                s_sum[t] += s_sum[t + half]
                s_en[t] += s_en[t + half]
                s_lo[t] = min(s_lo[t], s_lo[t + half])
                s_hi[t] = max(s_hi[t], s_hi[t + half])
                s_bad[t] += s_bad[t + half]
            cuda.syncthreads()
            half //= 2
        if t == 0:
            out[b, x, 0] = s_sum[0]
            out[b, x, 1] = s_en[0]
            out[b, x, 2] = s_lo[0]
            out[b, x, 3] = s_hi[0]
            out[b, x, 4] = s_bad[0]

    return plane_stats


@functools.lru_cache(maxsize=None)
def stats_kernel(dtype, threads: int = THREADS):
    """The reduction kernel for one state dtype:
    ``kernel[(X, B), threads, stream](phi, W, half_eps2_dx2, out, wx, wy, wz)`` with phi (B, X, Y, Z) C-contiguous on the device, out (B, X, 5) float64 (:data:`FIELDS`) and wx, wy, wz
    1 on the axes with no-flux walls (``params.neumann_axes``), else 0."""
    return cuda.jit(_signature(dtype))(_plane_stats(threads))


def compile_ptx(dtype, cc=(9, 0), threads: int = THREADS) -> str:
    """PTX of the reduction kernel for compute capability ``cc`` (NVVM only: no GPU, no driver needed)."""
    ptx, _ = cuda.compile_ptx(_plane_stats(threads), _signature(dtype), cc=tuple(cc))
    return ptx


def launch_stats(phi, params, out, stream=0, threads: int | None = None) -> None:
    """Enqueue the reduction of the device batch phi (B, X, Y, Z) into the device array out (B, X, 5)."""
    threads = threads or default_threads()
    nb, nx = phi.shape[0], phi.shape[1]
    kernel = stats_kernel(phi.dtype, threads)
    wx, wy, wz = (int(bool(w)) for w in getattr(params, "neumann_axes", (False, False, False)))
    kernel[(nx, nb), threads, stream](phi, float(params.W), 0.5 * params.epsilon**2 / params.dx**2, out, wx, wy, wz)


def finish(partials: np.ndarray, voxels: int) -> dict:
    """Per-member results from the host copy of the partial sums (B, X, 5): ``mass`` and ``energy`` (B,)
    float64 per unit volume, ``min`` and ``max`` (B,) of the finite values, ``nonfinite`` (B,) int64."""
    p = np.asarray(partials, dtype=np.float64)
    return {
        "mass": np.sum(p[:, :, 0], axis=1) / voxels,
        "energy": np.sum(p[:, :, 1], axis=1) / voxels,
        "min": np.min(p[:, :, 2], axis=1),
        "max": np.max(p[:, :, 3], axis=1),
        "nonfinite": np.sum(p[:, :, 4], axis=1).astype(np.int64),
    }
