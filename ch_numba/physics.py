"""Local formulas of the scheme, written once for the CPU and the CUDA kernels.

Both kernel modules call these ``@njit`` functions (Numba compiles them for the
CPU and, called from a ``cuda.jit`` kernel, as device functions):

    fprime(φ)            = 2W φ (1 − φ)(1 − 2φ)                  (f' of the double well)
    stencil(c, 6 nbrs)   = Σ neighbours − 6 c                     (dx² × 7-point Laplacian)
    mu                   = f'(φ) − (ε²/dx²) stencil(φ)
    phi_next             = φ + (dt M / dx²) stencil(μ)

The numeric literals are closed over as scalars of the state dtype, so float32
states are computed in float32 throughout (no silent promotion to float64).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
from numba import njit

from .params import CHParams

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Coefficients(NamedTuple):
    """Scheme coefficients as scalars of the state dtype."""

    two_w: np.floating  # 2W
    eps2_dx2: np.floating  # ε² / dx²
    dtm_dx2: np.floating  # dt M / dx²


def coefficients(p: CHParams, dtype) -> Coefficients:
    t = np.dtype(dtype).type
    return Coefficients(t(2.0 * p.W), t(p.epsilon**2 / p.dx**2), t(p.dt * p.mobility / p.dx**2))


class LocalOps(NamedTuple):
    fprime: object
    stencil: object


@functools.lru_cache(maxsize=None)
def local_ops(dtype) -> LocalOps:
    """The njit local formulas for one state dtype (float32 or float64)."""
    t = np.dtype(dtype).type
    one, two, six = t(1), t(2), t(6)

    @njit(inline="always")
    def fprime(phi, two_w):
        return two_w * phi * (one - phi) * (one - two * phi)

    @njit(inline="always")
    def stencil(c, xm, xp, ym, yp, zm, zp):
        return ((xm + xp) + (ym + yp)) + (zm + zp) - six * c

    return LocalOps(fprime, stencil)


def check_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in SUPPORTED_DTYPES:
        raise ValueError(f"state dtype must be float32 or float64, got {dtype}")
    return dtype
