"""CUDA kernel (numba-cuda): the scheme of kernels_cpu fused into one launch per step for a whole batch.

    μ        = f'(φ) − (ε²/dx²) L(φ)
    φ_next   = φ + (dt M/dx²) L(μ),     L(a) = ((a[x−1] + a[x+1]) + (a[y−1] + a[y+1])) + (a[z−1] + a[z+1]) − 6a

(periodic in x, y, z, or with no-flux walls on some axes; f' and L are physics.local_ops, the same
expressions, in the same order, as the CPU kernel). Walls (``CHParams.boundary``) are a compile-time
specialisation (:func:`fused_kernel`'s ``walls``): the φ planes and tiles are loaded with mirror
indices (−1 → 0, −2 → 1, N → N−1, N+1 → N−2: the periodic box of 2N holding the field and its mirror
image) along the wall axes instead of wrapped ones; nothing else differs. Arrays are C-contiguous
(B, X, Y, Z) float32/float64 on the device: the batch axis first (solver.py), every member independent.

Fused step (:func:`fused_kernel`). A thread block of TZ × TY threads (threadIdx.x along z, the
contiguous axis, so loads are coalesced) owns one (TZ, TY) tile of the (z, y) plane of one member
and marches along x over a chunk of planes (2.5D blocking, like the CPU kernel's ring of planes).
Shared memory holds a ring of five φ planes of the tile with a halo of 2, (TY+4) × (TZ+4) each,
and a ring of three μ planes with a halo of 1, (TY+2) × (TZ+2). For output plane x the block
loads φ plane x+2 (periodic indices), computes μ on plane x+1 from the three φ planes around it,
and updates plane x from μ on planes x−1, x, x+1: per voxel about (TY+4)(TZ+4)/(TY·TZ) ≈ 1.7 loads
of φ from global memory (the halo rows come from L2), one store of φ_next, and μ computed
(TY+2)(TZ+2)/(TY·TZ) ≈ 1.3 times; two ``syncthreads`` per plane. The DRAM traffic is then the
minimum of 2 × itemsize bytes per voxel and step (φ read once, φ_next written once; μ never
leaves the chip) against ≥ 5 × itemsize for the former two kernels (μ written, then read with φ
again), and one launch per step instead of two. The grid is (Z tiles, Y tiles, B × x-chunks);
:func:`launch_plan` picks the chunk so that the grid has about TARGET_BLOCKS blocks (enough to
fill a large GPU several times) while each chunk stays at least MIN_CHUNK planes long (the 4
extra φ planes and 2 μ planes at a chunk's start are then ≤ 50 % overhead, far less on big grids).

Launch: the kernel is compiled eagerly for explicit signatures (float32 and float64 states) and
:class:`BatchStepper` binds its launch configuration once (``kernel[grid, block]``), so a step is
one call of a pre-configured kernel; the state stays on the device between frames and only
:meth:`BatchStepper.get` copies it back (the per-frame blow-up check, mass and free energy run on
that host copy).

Floating point. On the CPU (no fastmath, LLVM does not contract) every product and sum is rounded
separately. On a real GPU NVVM contracts a·b + c into one fused multiply-add by default (its
``-fma=1``; numba-cuda exposes no switch, fastmath=False does not turn it off), which rounds once:
in f' (1 − 2φ), in L(a) (Σ − 6a), in μ (f' − (ε²/dx²)L) and in the update (φ + (dt M/dx²)L(μ)).
The results then differ from the CPU's by a few ulp per step: tested to ≤ 1e-12 (float64) and
2e-5 (float32) after 500 steps (tests/test_cuda.py). Numba's simulator executes the kernel in
Python, without contraction, and matches the CPU to round-off.

Importing this module needs the ``numba-cuda`` package (extra ``cuda``). Without a GPU, set
``NUMBA_ENABLE_CUDASIM=1`` before numba is imported to run the kernel in Numba's simulator (slow:
tiny grids, one tile per plane: :func:`default_tile`). There a configured kernel ``kernel[grid,
block]`` is the kernel object itself, re-configured by every ``[...]``, so the configuration is
applied at each launch instead of bound once.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from numba import cuda

from .physics import local_ops

TILE = (32, 8)  # threads of a block along (z, y) on a GPU: 256 threads, 25 KiB of shared memory in float64
SIM_TILE = (8, 8)  # at most, in the simulator (every thread is a Python thread: the fewer blocks the better)
TARGET_BLOCKS = 1024  # ~8 resident blocks on each of an H100/H200's 132 SMs
MIN_CHUNK = 8  # planes per block along x, at least


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


def default_tile(shape) -> tuple:
    """TILE on a GPU; in the simulator the whole (z, y) plane of a tiny grid, up to SIM_TILE."""
    if not is_simulator():
        return TILE
    return min(shape[-1], SIM_TILE[0]), min(shape[-2], SIM_TILE[1])


NO_WALLS = (False, False, False)


@functools.lru_cache(maxsize=None)
def fused_kernel(dtype, tile=TILE, walls=NO_WALLS):
    """The fused step kernel for one state dtype and tile (TZ, TY), compiled for its explicit signature;
    ``walls`` (x, y, z): True on the axes with no-flux walls (mirror indices, module docstring).

    ``kernel[grid, block](phi, out, two_w, eps2_dx2, dtm_dx2, chunk)``: out = one step from phi, both
    (B, X, Y, Z) C-contiguous device arrays (not the same array); block = (TZ, TY, 1), grid and chunk
    from :func:`launch_plan`.
    """
    dtype = np.dtype(dtype)
    nbt = numba.from_dtype(dtype)
    tz, ty = (int(v) for v in tile)
    pz, py = tz + 4, ty + 4  # φ tile with a halo of 2
    mz, my = tz + 2, ty + 2  # μ tile with a halo of 1
    nthreads = tz * ty
    ops = local_ops(dtype)
    fprime, stencil = ops.fprime, ops.stencil
    name = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64"}[dtype]
    signature = f"void({name}[:, :, :, ::1], {name}[:, :, :, ::1], {name}, {name}, {name}, int64)"

    @cuda.jit(device=True)
    def wrap(i, n):
        """i − n·⌊i/n⌋ for −n ≤ i < 2n (a comparison, no integer division); larger i, which only tiles wider
        than the grid reach beyond their halo, give 0: their values feed no stored voxel."""
        if i < 0:
            return i + n
        if i >= n:
            i -= n
            return i if i < n else 0
        return i

    @cuda.jit(device=True)
    def mirror(i, n):
        """The index of the mirror image across a wall half a cell outside the box, for −n ≤ i < 2n
        (−1 → 0, −2 → 1, n → n−1, n+1 → n−2); larger i (tiles wider than the grid) give 0, as in wrap."""
        if i < 0:
            return -1 - i
        if i >= n:
            i = 2 * n - 1 - i
            return i if i >= 0 else 0
        return i

    wx, wy, wz = (bool(w) for w in walls)  # compile-time constants of the kernel
    index_y = mirror if wy else wrap
    index_z = mirror if wz else wrap

    @cuda.jit(device=True)
    def load_plane(P, slot, phi, b, x, y0, z0, tid):
        """P[slot] = φ of member b on plane x (periodic or mirrored), rows y0−2 .. y0+TY+1, columns z0−2 .. z0+TZ+1."""
        nx, ny, nz = phi.shape[1], phi.shape[2], phi.shape[3]
        if wx:
            xx = mirror(x, nx)
        else:
            xx = x % nx
        i = tid
        while i < py * pz:
            jy = i // pz
            jz = i - jy * pz
            P[slot, jy, jz] = phi[b, xx, index_y(y0 - 2 + jy, ny), index_z(z0 - 2 + jz, nz)]
            i += nthreads

    @cuda.jit(device=True)
    def mu_plane(M, slot, P, sm, sc, sp, two_w, eps2_dx2, tid):
        """M[slot] = μ on the tile plus a halo of 1 of the plane whose φ is P[sc] (P[sm], P[sp]: x−1, x+1)."""
        i = tid
        while i < my * mz:
            jy = i // mz
            jz = i - jy * mz
            cy, cz = jy + 1, jz + 1
            c = P[sc, cy, cz]
            M[slot, jy, jz] = fprime(c, two_w) - eps2_dx2 * stencil(
                c,
                P[sm, cy, cz],
                P[sp, cy, cz],
                P[sc, cy - 1, cz],
                P[sc, cy + 1, cz],
                P[sc, cy, cz - 1],
                P[sc, cy, cz + 1],
            )
            i += nthreads

    @cuda.jit(signature)
    def step(phi, out, two_w, eps2_dx2, dtm_dx2, chunk):
        P = cuda.shared.array((5, py, pz), nbt)
        M = cuda.shared.array((3, my, mz), nbt)
        nx, ny, nz = phi.shape[1], phi.shape[2], phi.shape[3]
        lz, ly = cuda.threadIdx.x, cuda.threadIdx.y
        tid = ly * tz + lz
        z0 = cuda.blockIdx.x * tz
        y0 = cuda.blockIdx.y * ty
        nchunks = (nx + chunk - 1) // chunk
        b = cuda.blockIdx.z // nchunks
        x0 = (cuda.blockIdx.z - b * nchunks) * chunk
        x1 = min(x0 + chunk, nx)
        y, z = y0 + ly, z0 + lz
        inside = y < ny and z < nz
        # φ plane x lives in slot (x − x0 + 2) % 5, μ plane x in slot (x − x0 + 1) % 3
        for k in range(4):
            load_plane(P, k, phi, b, x0 - 2 + k, y0, z0, tid)
        cuda.syncthreads()
        mu_plane(M, 0, P, 0, 1, 2, two_w, eps2_dx2, tid)  # μ on x0 − 1
        mu_plane(M, 1, P, 1, 2, 3, two_w, eps2_dx2, tid)  # μ on x0
        for x in range(x0, x1):
            r = x - x0
            load_plane(P, (r + 4) % 5, phi, b, x + 2, y0, z0, tid)
            cuda.syncthreads()
            mu_plane(M, (r + 2) % 3, P, (r + 2) % 5, (r + 3) % 5, (r + 4) % 5, two_w, eps2_dx2, tid)  # μ on x + 1
            cuda.syncthreads()
            if inside:
                sm, sc, sp = r % 3, (r + 1) % 3, (r + 2) % 3
                cy, cz = ly + 1, lz + 1
                c = M[sc, cy, cz]
                out[b, x, y, z] = P[(r + 2) % 5, ly + 2, lz + 2] + dtm_dx2 * stencil(
                    c,
                    M[sm, cy, cz],
                    M[sp, cy, cz],
                    M[sc, cy - 1, cz],
                    M[sc, cy + 1, cz],
                    M[sc, cy, cz - 1],
                    M[sc, cy, cz + 1],
                )

    return step


def launch_plan(shape, tile=TILE, target_blocks: int = TARGET_BLOCKS, min_chunk: int = MIN_CHUNK):
    """(grid, block, chunk) of the fused kernel on a (B, X, Y, Z) (or (X, Y, Z)) state.

    block = (TZ, TY, 1); grid = (⌈Z/TZ⌉, ⌈Y/TY⌉, B·⌈X/chunk⌉) with chunk the planes per block: the
    largest of min_chunk and ⌈X / ⌈target_blocks / tiles⌉⌉ (tiles = B·⌈Z/TZ⌉·⌈Y/TY⌉), at most X.
    """
    nb, nx, ny, nz = (1, *shape) if len(shape) == 3 else tuple(shape)
    tz, ty = tile
    gz, gy = -(-nz // tz), -(-ny // ty)
    splits = max(1, -(-target_blocks // (nb * gz * gy)))
    chunk = min(nx, max(min_chunk, -(-nx // splits)))
    return (gz, gy, nb * -(-nx // chunk)), (tz, ty, 1), chunk


class BatchStepper:
    """The state of a batch (B, X, Y, Z) on the device and its steps (used by solver.Stepper).

    ``launch`` is the fused kernel with its launch configuration bound once: one call per step for
    the whole batch (``launch(phi, out, two_w, eps2_dx2, dtm_dx2, chunk)``).
    """

    def __init__(self, shape, dtype, coef, tile=None, chunk: int | None = None, walls=NO_WALLS):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        t = self.dtype.type
        self.coef = tuple(t(c) for c in coef)
        tile = tuple(tile) if tile is not None else default_tile(self.shape)
        grid, block, auto_chunk = launch_plan(self.shape, tile)
        self.chunk = int(chunk) if chunk is not None else auto_chunk
        if chunk is not None:
            grid = (grid[0], grid[1], self.shape[0] * -(-self.shape[1] // self.chunk))
        self.grid, self.block = grid, block
        walls = tuple(bool(w) for w in walls)
        kernel = fused_kernel(self.dtype, tile) if walls == NO_WALLS else fused_kernel(self.dtype, tile, walls)
        if is_simulator():  # kernel[grid, block] is `kernel` itself there, shared by every stepper
            self.launch = functools.partial(_configure_and_launch, kernel, grid, block)
        else:
            self.launch = kernel[grid, block]
        self._a = cuda.device_array(self.shape, self.dtype)
        self._b = cuda.device_array(self.shape, self.dtype)

    def set(self, phi, member=None) -> None:
        """Copy phi (n, X, Y, Z) to the device: the whole batch, or member `member` (n = 1)."""
        if member is None:
            self._a.copy_to_device(phi)
        else:
            self._a[member].copy_to_device(phi[0])

    def get(self, member=None) -> np.ndarray:
        """Host copy (n, X, Y, Z) of the whole batch, or of member `member` (n = 1)."""
        if member is None:
            return self._a.copy_to_host()
        return self._a[member].copy_to_host()[None]

    def advance(self, steps: int) -> None:
        """`steps` steps: one launch each, alternating between the two device buffers."""
        two_w, eps2_dx2, dtm_dx2 = self.coef
        launch, chunk = self.launch, self.chunk
        a, b = self._a, self._b
        for _ in range(steps):
            launch(a, b, two_w, eps2_dx2, dtm_dx2, chunk)
            a, b = b, a
        self._a, self._b = a, b


def _configure_and_launch(kernel, grid, block, *args) -> None:
    kernel[grid, block](*args)
