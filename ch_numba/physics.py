"""Local formulas of the scheme, written once for the CPU and the CUDA kernels.

Both kernel modules call these ``@njit`` functions (Numba compiles them for the
CPU and, called from a ``cuda.jit`` kernel, as device functions):

    fprime(φ)            = 2W φ (1 − φ)(1 − 2φ)                  (f' of the double well)
    stencil(c, 6 nbrs)   = Σ neighbours − 6 c                     (dx² × 7-point Laplacian)
    mu                   = f'(φ) − (ε²/dx²) stencil(φ)
    phi_next             = φ + (dt M / dx²) stencil(μ)

The numeric literals are closed over as scalars of the state dtype, so float32
states are computed in float32 throughout (no silent promotion to float64).

Compiled code is cached on disk (:func:`kernel_jit`, Numba's ``cache=True``): a new process loads
the CPU kernels instead of compiling them again.
"""

from __future__ import annotations

import functools
import logging
import uuid
from typing import NamedTuple

import numpy as np
from numba import njit

from .params import CHParams

log = logging.getLogger(__name__)
_warned_no_cache = []  # one warning per process when Numba finds no writable cache folder


def kernel_jit(tag: str = "", **options):
    """Decorator: ``numba.njit(**options)`` whose machine code Numba caches on disk (``cache=True``).

    A new process then loads a kernel instead of compiling it (the explicit CPU kernels: ~12 s of
    compilation against ~0.9 s loaded, spectral ~4.7 s against ~0.3 s, measured on a busy 2-core
    machine). Numba's cache folder is ``NUMBA_CACHE_DIR`` if set, else ``__pycache__`` beside the
    module, else the user's cache folder (``~/.cache/numba``); where none is writable the function
    is compiled in every process as before, and one warning per process says so (nothing fails).
    ``inline="always"`` functions are compiled into their callers and are not cached themselves.
    The cached code is the same as a fresh compilation's (no fastmath: results are bitwise equal).

    ``tag`` names the specialisation of a function built inside a factory (the state dtype). Numba
    keys the cached code of such a closure by a pickle of the values it closes over; a dispatcher
    among them pickles with a UUID drawn anew in every process, so every process would miss the
    cache. Each dispatcher made here gets instead a UUID derived from its module, qualified name and
    ``tag``: distinct per function and dtype, equal across processes. (A change of a closed-over
    function still changes the key: its code is part of the pickle.)
    """
    cache = options.get("inline") != "always"

    def decorate(func):
        try:
            disp = njit(cache=cache, **options)(func)
        except RuntimeError as e:  # "cannot cache function ...: no locator available" (no writable folder)
            if not _warned_no_cache:
                _warned_no_cache.append(True)
                log.warning(
                    "warning: Numba finds no writable cache folder (%s); the kernels are compiled in every "
                    "run (set NUMBA_CACHE_DIR to a writable folder to keep them)",
                    e,
                )
            disp = njit(**options)(func)
        name = f"ch3d:{func.__module__}.{func.__qualname__}:{tag}"
        try:
            disp._set_uuid(str(uuid.uuid5(uuid.NAMESPACE_URL, name)))
        except (AttributeError, AssertionError):  # another Numba: the cache may miss, the results are the same
            pass
        return disp

    return decorate


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

    @kernel_jit(t.__name__, inline="always")
    def fprime(phi, two_w):
        return two_w * phi * (one - phi) * (one - two * phi)

    @kernel_jit(t.__name__, inline="always")
    def stencil(c, xm, xp, ym, yp, zm, zp):
        return ((xm + xp) + (ym + yp)) + (zm + zp) - six * c

    return LocalOps(fprime, stencil)


def check_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in SUPPORTED_DTYPES:
        raise ValueError(f"state dtype must be float32 or float64, got {dtype}")
    return dtype
