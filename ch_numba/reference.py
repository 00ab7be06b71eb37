"""NumPy reference implementation: the executable specification of the scheme.

Slow (np.roll everywhere) and used by the tests and benchmarks only. Every
backend must reproduce :func:`step` to round-off.

    lap(a)[i,j,k] = (a[i±1,j,k] + a[i,j±1,k] + a[i,j,k±1] - 6 a[i,j,k]) / dx²
    mu            = 2W phi (1 - phi) (1 - 2 phi) - eps² lap(phi)
    phi_next      = phi + dt M lap(mu)

Arrays are (X, Y, Z), float32 or float64; the arithmetic is done in the array's
dtype (as the kernels do). laplacian, fprime, chemical_potential, step and evolve also take a
batch (B, X, Y, Z): the stencil acts on the last three axes, each member on its own.

Boundaries (``CHParams.boundary``, per axis): periodic (np.roll), or no-flux walls on a cell-centred
grid, the wall half a cell outside the first and last voxel: the neighbour across the wall is the
mirror ghost (a[−1] = a[0], a[N] = a[N−1]), for φ and for μ, so ∂φ/∂n = ∂μ/∂n = 0 and no mass
crosses the wall. A box of N voxels with walls along an axis then evolves exactly as the periodic
box of 2N voxels holding ``concatenate([phi, phi[::-1]])`` along it, restricted to its first N.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .params import CHParams


def neighbours(a: np.ndarray, axis: int, wall: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(a[i−1], a[i+1]) along ``axis``: periodic, or with mirror ghosts at walls (``wall=True``)."""
    if not wall:
        return np.roll(a, 1, axis), np.roll(a, -1, axis)
    n = a.shape[axis]
    index = np.arange(n)
    return np.take(a, np.maximum(index - 1, 0), axis), np.take(a, np.minimum(index + 1, n - 1), axis)


def laplacian(a: np.ndarray, dx: float = 1.0, walls=(False, False, False)) -> np.ndarray:
    """7-point Laplacian over the last three axes of an (..., X, Y, Z) array, in a's dtype; periodic, or
    with mirror ghosts on the axes where ``walls`` (x, y, z) is True (module docstring)."""
    t = a.dtype.type
    out = -t(6) * a
    for axis, wall in zip((-3, -2, -1), walls):
        minus, plus = neighbours(a, axis, wall)
        out += minus + plus
    return out * t(1.0 / dx**2)


def fprime(phi: np.ndarray, W: float) -> np.ndarray:
    """Derivative of the double well f = W φ²(1−φ)²: f'(φ) = 2W φ (1−φ)(1−2φ)."""
    t = phi.dtype.type
    return t(2 * W) * phi * (t(1) - phi) * (t(1) - t(2) * phi)


def chemical_potential(phi: np.ndarray, p: CHParams) -> np.ndarray:
    """μ = f'(φ) − ε² ∇²φ."""
    t = phi.dtype.type
    return fprime(phi, p.W) - t(p.epsilon**2) * laplacian(phi, p.dx, p.neumann_axes)


def step(phi: np.ndarray, p: CHParams) -> np.ndarray:
    """One forward-Euler step: φ + dt M ∇²μ (new array, same dtype)."""
    t = phi.dtype.type
    return phi + t(p.dt * p.mobility) * laplacian(chemical_potential(phi, p), p.dx, p.neumann_axes)


def evolve(phi0: np.ndarray, steps: int, p: CHParams) -> np.ndarray:
    """`steps` forward-Euler steps from phi0 (not modified)."""
    phi = np.array(phi0, copy=True)
    for _ in range(steps):
        phi = step(phi, p)
    return phi


def free_energy(phi: np.ndarray, p: CHParams) -> float:
    """Free energy per unit volume in float64, |∇φ|² from forward differences (periodic; across a wall the
    mirror ghost gives a zero difference: no gradient energy at the wall).

    F/V = mean( W φ²(1−φ)² + (ε²/2) Σ_a ((φ[i+e_a] − φ[i]) / dx)² )
    """
    phi = np.asarray(phi, dtype=np.float64)
    bulk = p.W * phi**2 * (1.0 - phi) ** 2
    grad2 = sum((neighbours(phi, a, w)[1] - phi) ** 2 for a, w in zip(range(3), p.neumann_axes)) / p.dx**2
    return float(np.mean(bulk + 0.5 * p.epsilon**2 * grad2))


def spectral_evolve(phi0: np.ndarray, steps: int, p: CHParams) -> np.ndarray:
    """`steps` steps of the semi-implicit spectral scheme (``p.scheme == "spectral"``), in float64 numpy.

    Written from the scheme's equations (ch_numba.spectral) with ``np.fft``, independently of the
    production integrator: symbol λ of the 7-point stencil (``p.symbol="stencil"``) or −|k|²;
    order 1: (1 + dt M (ε²λ² − Sλ)) φ̂' = (1 − dt M S λ) φ̂ + dt M λ f̂'(φ);
    order 2 (SBDF2, first step order 1): (3/2 + dt M (ε²λ² − Sλ)) φ̂' = 2φ̂ − ½φ̂_old
    + dt M λ (2f̂' − f̂'_old) − dt M S λ (2φ̂ − φ̂_old). Returns φ (X, Y, Z) float64.

    Walls (``p.boundary``): the run is that of the periodic box doubled along each wall axis, holding the
    field and its mirror image (``concatenate([phi, phi[::-1]])``), restricted to the first N voxels — the
    definition the production integrator's cosine transforms are tested against.
    """
    phi = np.asarray(phi0, dtype=np.float64)
    if not p.periodic:
        n = phi.shape
        for axis, wall in enumerate(p.neumann_axes):
            if wall:
                phi = np.concatenate([phi, np.flip(phi, axis)], axis=axis)
        out = spectral_evolve(phi, steps, dataclasses.replace(p, boundary="periodic"))
        return out[: n[0], : n[1], : n[2]]
    shape = phi.shape
    k = [2 * np.pi * np.fft.fftfreq(n, p.dx) for n in shape]
    kx, ky, kz = np.meshgrid(*k, indexing="ij")
    if p.symbol == "stencil":
        lam = -(2 / p.dx**2) * ((1 - np.cos(kx * p.dx)) + (1 - np.cos(ky * p.dx)) + (1 - np.cos(kz * p.dx)))
    else:
        lam = -(kx**2 + ky**2 + kz**2)
    dtm, s, e2 = p.dt * p.mobility, p.S, p.epsilon**2
    ph = np.fft.fftn(phi)
    old = None
    for _ in range(steps):
        g = np.fft.fftn(fprime(phi, p.W))
        if p.order == 1 or old is None:
            new = ((1 - dtm * s * lam) * ph + dtm * lam * g) / (1 + dtm * (e2 * lam**2 - s * lam))
        else:
            ph_old, g_old = old
            rhs = 2 * ph - 0.5 * ph_old + dtm * lam * (2 * g - g_old) - dtm * s * lam * (2 * ph - ph_old)
            new = rhs / (1.5 + dtm * (e2 * lam**2 - s * lam))
        old = (ph, g)
        ph = new
        phi = np.real(np.fft.ifftn(ph))
    return phi
