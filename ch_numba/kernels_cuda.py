"""CUDA kernel (numba-cuda): the scheme of kernels_cpu fused into one launch per step for a whole batch.

    μ        = f'(φ) − (ε²/dx²) L(φ)
    φ_next   = φ + (dt M/dx²) L(μ),     L(a) = ((a[x−1] + a[x+1]) + (a[y−1] + a[y+1])) + (a[z−1] + a[z+1]) − 6a

(periodic in x, y, z, or with no-flux walls on some axes; f' and L are physics.local_ops, the same
expressions, in the same order, as the CPU kernel). Walls (``CHParams.boundary``) are a compile-time
specialisation (:func:`fused_kernel`'s ``walls``; :data:`KERNELS` holds two of them for the compile
checks): the φ planes and tiles are loaded with mirror indices (−1 → 0, −2 → 1, N → N−1, N+1 → N−2: the
periodic box of 2N holding the field and its mirror image) along the wall axes instead of wrapped ones
(:func:`_mirror`, :func:`_mirror_up`); nothing else differs, and the periodic kernel's PTX is the same
as before walls existed. Arrays are C-contiguous (B, X, Y, Z) float32/float64 on the device: the batch
axis first (solver.py), every member independent.

Fused step (:func:`fused_kernel`). A thread block of TZ × TY threads (threadIdx.x along z, the
contiguous axis, so loads are coalesced) owns one (TZ, TY) tile of the (z, y) plane of one member
and marches along x over a chunk of planes (2.5D blocking, like the CPU kernel's ring of planes).
Shared memory holds a ring of four φ planes of the tile with a halo of 2, (TY+4) × (TZ+4) each,
and a ring of four μ planes with a halo of 1, (TY+2) × (TZ+2). For output plane x the block
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

Instructions (issue 24; ``benchmarks/sass_count.py`` counts them, ``benchmarks/RESULTS.md`` has the
figures). The kernel takes the flat (B·X·Y·Z) views of the states and the sizes as uint32; every
index is unsigned (Numba adds a negative-index wraparound to signed ones), 32-bit within a member
(the member's 64-bit offset is added once). Each thread computes once, before the march, the in-plane
offset of each φ element it loads (the periodic or mirror images: the boundary condition lives there
and in the index of each plane, nowhere else) and the tile offset of each μ element it computes; the
shared tiles are flat. Both rings have period 4 and the march is unrolled by 4, so every ring slot
is a constant and a shared access is one register plus an immediate. Launch bounds (TILE threads,
LAUNCH_MIN_BLOCKS blocks per SM) make ptxas keep ≤ 32 registers: 8 resident blocks of 256 threads,
all 64 warps of an H100 SM. :func:`compile_report` compiles any kernel of :data:`KERNELS` for a
compute capability without a GPU (NVVM and ptxas from pip wheels, :mod:`ch_numba.gpu_compile`).

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

from .gpu_compile import apply_numpy_shim

apply_numpy_shim()  # numpy >= 2.5 and numba-cuda 0.30 (NVIDIA/numba-cuda#907): before numba-cuda types anything
from numba import cuda  # noqa: E402

from .physics import local_ops  # noqa: E402

TILE = (32, 8)  # threads of a block along (z, y) on a GPU: 256 threads, 25 KiB of shared memory in float64
SIM_TILE = (8, 8)  # at most, in the simulator (every thread is a Python thread: the fewer blocks the better)
TARGET_BLOCKS = 1024  # ~8 resident blocks on each of an H100/H200's 132 SMs (LAUNCH_MIN_BLOCKS)
MIN_CHUNK = 8  # planes per block along x, at least
LAUNCH_MIN_BLOCKS = 8  # launch bounds: 8 resident blocks of TILE per SM (64 warps), so ptxas keeps ≤ 32 registers


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


def _periodic(i, n):
    """The periodic image in [0, n) of index i (any sign): the boundary condition of the tile loads.

    Called once per block (each thread's in-plane offsets, the first planes), never per voxel. Along an
    axis with walls (Neumann) :func:`_mirror` and :func:`_mirror_up` replace this function and
    :func:`_periodic_up`, at compile time (the kernel factory's ``ghost_*`` and ``ghost_up``)."""
    return i % n


def _periodic_up(i, n):
    """The periodic image of a plane index 0 ≤ i < 2n (the planes a block loads after its first four:
    i ≤ X + 1, and every axis has ≥ 3 voxels): one comparison, no division; once per plane."""
    return i - n if i >= n else i


#: device-side versions of :func:`_periodic` and :func:`_periodic_up`: an ``njit(inline="always")`` function
#: is inlined into the kernel's IR, so ``compile_ptx`` needs no current device (a ``cuda.jit(device=True)``
#: function, or an ``njit`` one not inlined, is compiled for the current device's compute capability: no
#: GPU, no compile)
_periodic_jit = numba.njit(inline="always")(_periodic)
_periodic_up_jit = numba.njit(inline="always")(_periodic_up)

NO_WALLS = (False, False, False)  # (x, y, z): no axis with walls, a periodic box


def _mirror(i, n):
    """The mirror image in [0, n) of index i across a no-flux wall half a cell outside the box, for
    −n ≤ i < 2n: −1 → 0, −2 → 1, n → n−1, n+1 → n−2 (the periodic box of 2n holding the field and its
    mirror image). Larger i come only from tiles wider than the grid, whose elements no voxel inside
    reads (every axis has ≥ 3 voxels, so i ≤ n + 1 < 2n for those that are read): any valid index, 0.
    The tile loads' boundary condition along a wall axis, like :func:`_periodic` (once per block).

    Branch-free, in 32 bits (2n − 1 fits: a member's X·Y·Z < 2³² with every axis ≥ 3, so n < 2³⁰):
    max(i, −1 − i) folds the low wall, the min the high one, the last max the indices beyond 2n. (The
    same in int64 with branches made ptxas spill a register at the 32 of the launch bounds in some
    variants.)"""
    t = numba.int32(i)
    j = max(t, numba.int32(-1) - t)
    return max(min(j, numba.int32(n + n - 1) - j), numba.int32(0))


_U1 = np.uint32(1)


def _mirror_up(i, n):
    """The mirror image of a plane index 0 ≤ i < 2n (unsigned; the planes a block loads after its first
    four: i ≤ X + 1 < 2X, every axis having ≥ 3 voxels): n → n−1, n+1 → n−2; once per plane."""
    return (n + n - _U1) - i if i >= n else i


_mirror_jit = numba.njit(inline="always")(_mirror)
_mirror_up_jit = numba.njit(inline="always")(_mirror_up)


def _walls(walls) -> tuple:
    """``walls`` as the (x, y, z) tuple of bools the kernel factories are cached by."""
    walls = tuple(bool(w) for w in walls)
    if len(walls) != 3:
        raise ValueError(f"walls: one bool per axis (x, y, z), got {walls}")
    return walls


@functools.lru_cache(maxsize=None)
def _step_source(dtype, tile=TILE, walls=NO_WALLS):
    """(python function, signature, launch bounds) of the fused step for one state dtype, tile (TZ, TY) and
    ``walls`` (x, y, z): True on the axes with no-flux walls (mirror indices), all False for a periodic box.

    ``step(phi, out, two_w, eps2_dx2, dtm_dx2, nx, ny, nz, chunk)``: phi, out are the flat (B·X·Y·Z)
    views of the C-contiguous (B, X, Y, Z) states; nx, ny, nz, chunk are uint32 (module docstring,
    "Instructions"). The boundary condition is ``ghost_x``, ``ghost_y``, ``ghost_z`` (:func:`_periodic`,
    or :func:`_mirror` along a wall axis: the per-thread offsets computed before the march, the first
    four planes) and ``ghost_up`` (:func:`_periodic_up` or :func:`_mirror_up`: the index of each later
    plane), nothing else: the periodic kernel is the same code as before walls existed.
    """
    dtype = np.dtype(dtype)
    walls = _walls(walls)
    nbt = numba.from_dtype(dtype)
    tz, ty = (int(v) for v in tile)
    u32 = numba.uint32
    pz, py = tz + 4, ty + 4  # φ tile with a halo of 2
    mz, my = tz + 2, ty + 2  # μ tile with a halo of 1
    psize, msize = py * pz, my * mz
    p_ring, m_ring = 4 * psize, 4 * msize
    nthreads = tz * ty
    n_load, n_load_all = -(-psize // nthreads), psize // nthreads  # φ elements per thread: at most, all threads
    n_mu, n_mu_all = -(-msize // nthreads), msize // nthreads  # μ elements per thread
    ops = local_ops(dtype)
    fprime, stencil = ops.fprime, ops.stencil
    # the boundary condition per axis, chosen at compile time
    ghost_x, ghost_y, ghost_z = (_mirror_jit if w else _periodic_jit for w in walls)
    ghost_up = _mirror_up_jit if walls[0] else _periodic_up_jit
    name = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64"}[dtype]
    signature = f"void({name}[::1], {name}[::1], {name}, {name}, {name}, uint32, uint32, uint32, uint32)"
    # constants as uint32 so that index arithmetic stays unsigned
    TZ, PZ, PZ2, PSIZE, MZ, MZ2, MSIZE, NT = (
        np.uint32(v) for v in (tz, pz, 2 * pz, psize, mz, 2 * mz, msize, nthreads)
    )
    ONE, TWO, THREE, FOUR = (np.uint32(v) for v in (1, 2, 3, 4))

    # inlined into the kernel's IR (see _periodic_jit); plain Python in the simulator, whose arrays
    # compiled functions cannot take
    inline = (lambda f: f) if is_simulator() else numba.njit(inline="always")

    S0, S1, S2, S3 = (np.uint32(j * psize) for j in range(4))  # φ ring slots (flat offsets)
    T0, T1, T2, T3 = (np.uint32(j * msize) for j in range(4))  # μ ring slots

    @inline
    def load(P, p, phi, lbase, gidx, tid):
        """φ plane lbase into the ring slot at p (each thread its n_load elements: gidx, their plane-0 index)."""
        for k in range(n_load):
            i = u32(tid + k * NT)
            if k < n_load_all or i < PSIZE:
                P[p + i] = phi[gidx[k] + lbase]

    @inline
    def mu(M, m, P, pm, pc, pp, corner, tid, two_w, eps2_dx2):
        """μ into the ring slot at m from the φ planes at pm, pc, pp (x−1, x, x+1)."""
        for k in range(n_mu):
            j = u32(tid + k * NT)
            if k < n_mu_all or j < MSIZE:
                a = corner[k]
                c = P[pc + a + PZ + ONE]
                M[m + j] = fprime(c, two_w) - eps2_dx2 * stencil(
                    c,
                    P[pm + a + PZ + ONE],
                    P[pp + a + PZ + ONE],
                    P[pc + a + ONE],
                    P[pc + a + PZ2 + ONE],
                    P[pc + a + PZ],
                    P[pc + a + PZ + TWO],
                )

    @inline
    def update(out, o, M, mm, mc, mp, mown, P, pc, pown, dtm_dx2):
        """out[o] = φ + (dt M/dx²) L(μ) of this thread's voxel: φ in slot pc, μ in mm, mc, mp (x−1, x, x+1)."""
        c = M[mc + mown + MZ + ONE]
        out[o] = P[pc + pown] + dtm_dx2 * stencil(
            c,
            M[mm + mown + MZ + ONE],
            M[mp + mown + MZ + ONE],
            M[mc + mown + ONE],
            M[mc + mown + MZ2 + ONE],
            M[mc + mown + MZ],
            M[mc + mown + MZ + TWO],
        )

    def step(phi, out, two_w, eps2_dx2, dtm_dx2, nx, ny, nz, chunk):
        P = cuda.shared.array(p_ring, nbt)  # ring of 4 φ planes (TY+4)(TZ+4), flat
        M = cuda.shared.array(m_ring, nbt)  # ring of 4 μ planes (TY+2)(TZ+2), flat
        lz, ly = u32(cuda.threadIdx.x), u32(cuda.threadIdx.y)
        tid = u32(ly * TZ + lz)
        z0, y0 = u32(cuda.blockIdx.x * tz), u32(cuda.blockIdx.y * ty)
        nchunks = u32((nx + chunk - ONE) // chunk)
        bz = u32(cuda.blockIdx.z)
        b = u32(bz // nchunks)
        x0 = u32((bz - b * nchunks) * chunk)
        nplanes = u32(min(chunk, nx - x0))
        nyz = u32(ny * nz)
        nxyz = u32(nx * nyz)
        member = numba.uint64(b) * numba.uint64(nxyz)  # 64-bit: B·X·Y·Z may exceed 2³²; offsets in it are 32-bit
        # Per thread, once: the index on plane 0 of each φ element it loads (the boundary condition
        # enters here and in the plane indices below, through ghost_* and ghost_up, nowhere else), and the
        # corner (y−1, z−1) in the φ tile of each μ element it computes.
        gidx = cuda.local.array(n_load, numba.uint64)
        for k in range(n_load):
            i = u32(tid + k * NT)
            jy = i // pz
            jz = i - jy * pz
            gy = ghost_y(numba.int64(y0) + numba.int64(jy) - 2, numba.int64(ny))
            gz = ghost_z(numba.int64(z0) + numba.int64(jz) - 2, numba.int64(nz))
            gidx[k] = member + u32(gy * nz + gz)
        corner = cuda.local.array(n_mu, numba.uint32)
        for k in range(n_mu):
            j = u32(tid + k * NT)
            jy = j // mz
            corner[k] = u32(jy * pz + (j - jy * mz))
        inside = u32(y0 + ly) < ny and u32(z0 + lz) < nz
        pown = u32((ly + TWO) * PZ + lz + TWO)  # this thread's voxel in the φ tile
        mown = u32(ly * MZ + lz)  # the corner (y−1, z−1) of its μ neighbourhood in the μ tile
        oidx = member + u32((y0 + ly) * nz + (z0 + lz))  # its voxel on plane 0 (when inside)
        obase = u32(x0 * nyz)  # the plane to store next
        # Rings of 4: φ plane x0−2+j in slot j % 4, μ plane x0−1+j in slot j % 4. At output plane x0+r
        # the block loads φ x+2 into the slot of φ x−2 and writes μ x+1 into that of μ x−3: their last
        # readers ran before the previous plane's barriers (φ x−1 is still read by slower threads'
        # update of x−1, hence 4 φ slots; 4 μ slots make both rings' period 4, so the march below is
        # unrolled by 4 with every slot offset a constant).
        for j in range(4):  # prologue: φ x0−2 .. x0+1; μ on x0−1, x0
            lbase = u32(ghost_x(numba.int64(x0) + j - 2, numba.int64(nx)) * nyz)
            load(P, u32(j * psize), phi, lbase, gidx, tid)
        cuda.syncthreads()
        mu(M, T0, P, S0, S1, S2, corner, tid, two_w, eps2_dx2)
        mu(M, T1, P, S1, S2, S3, corner, tid, two_w, eps2_dx2)
        cuda.syncthreads()
        xl = u32(x0 + TWO)  # the next plane to load, before its periodic image (output plane xl − 2)
        xend = u32(x0 + nplanes + TWO)
        while xl < xend:
            # r = 0 .. 3: output plane x = xl − 2 (xl counts up); φ x+2 → S[r], μ x+1 → T[(r+2) % 4]
            load(P, S0, phi, u32(ghost_up(xl, nx) * nyz), gidx, tid)
            xl = u32(xl + ONE)
            cuda.syncthreads()
            mu(M, T2, P, S2, S3, S0, corner, tid, two_w, eps2_dx2)
            cuda.syncthreads()
            if inside:
                update(out, oidx + obase, M, T0, T1, T2, mown, P, S2, pown, dtm_dx2)
            obase = u32(obase + nyz)
            if xl < xend:
                load(P, S1, phi, u32(ghost_up(xl, nx) * nyz), gidx, tid)
                xl = u32(xl + ONE)
                cuda.syncthreads()
                mu(M, T3, P, S3, S0, S1, corner, tid, two_w, eps2_dx2)
                cuda.syncthreads()
                if inside:
                    update(out, oidx + obase, M, T1, T2, T3, mown, P, S3, pown, dtm_dx2)
                obase = u32(obase + nyz)
            if xl < xend:
                load(P, S2, phi, u32(ghost_up(xl, nx) * nyz), gidx, tid)
                xl = u32(xl + ONE)
                cuda.syncthreads()
                mu(M, T0, P, S0, S1, S2, corner, tid, two_w, eps2_dx2)
                cuda.syncthreads()
                if inside:
                    update(out, oidx + obase, M, T2, T3, T0, mown, P, S0, pown, dtm_dx2)
                obase = u32(obase + nyz)
            if xl < xend:
                load(P, S3, phi, u32(ghost_up(xl, nx) * nyz), gidx, tid)
                xl = u32(xl + ONE)
                cuda.syncthreads()
                mu(M, T1, P, S1, S2, S3, corner, tid, two_w, eps2_dx2)
                cuda.syncthreads()
                if inside:
                    update(out, oidx + obase, M, T3, T0, T1, mown, P, S1, pown, dtm_dx2)
                obase = u32(obase + nyz)

    return step, signature, (nthreads, LAUNCH_MIN_BLOCKS)


#: the kernels the package launches, by name: factory(dtype, tile) -> (python function, signature, launch
#: bounds[, block]) — block, the launch block, where it is not (*tile, 1). compile_report and the
#: compilation tests (tests/test_cuda_compile.py) go through every entry: register each new kernel here.
#: The step with walls is one kernel per (x, y, z) combination; two stand for them here: walls on every
#: axis (every ghost function mirrored) and on z only (a film; both kinds in one kernel).
KERNELS = {
    "step": _step_source,
    "step_walls_xyz": functools.partial(_step_source, walls=(True, True, True)),
    "step_walls_z": functools.partial(_step_source, walls=(False, False, True)),
}


def fused_kernel(dtype, tile=TILE, walls=NO_WALLS):
    """The fused step kernel for one state dtype, tile (TZ, TY) and ``walls`` (x, y, z: True on the axes
    with no-flux walls, mirror indices; module docstring), compiled for its explicit signature.

    ``kernel[grid, block](phi, out, two_w, eps2_dx2, dtm_dx2, nx, ny, nz, chunk)``: out = one step from
    phi, both the flat (B·X·Y·Z) views of C-contiguous (B, X, Y, Z) device arrays (not the same array);
    block = (TZ, TY, 1), grid and chunk from :func:`launch_plan`; nx, ny, nz, chunk as uint32.
    """
    return _fused_kernel(np.dtype(dtype), tuple(int(v) for v in tile), _walls(walls))


@functools.lru_cache(maxsize=None)
def _fused_kernel(dtype, tile, walls):
    func, signature, bounds = _step_source(dtype, tile, walls)
    if is_simulator():  # the simulator's jit takes no launch bounds
        return cuda.jit(signature)(func)
    try:
        return cuda.jit(signature, launch_bounds=bounds)(func)
    except TypeError:  # a numba-cuda older than its launch_bounds option: a register cap instead
        return cuda.jit(signature, max_registers=65536 // (bounds[0] * bounds[1]))(func)


def compile_report(dtype, cc=(9, 0), kernel: str = "step", tile=TILE) -> dict:
    """Compile a kernel for compute capability `cc` without a GPU and report its resources.

    PTX from numba-cuda's ``compile_ptx`` (NVVM), assembled by ``ptxas -v`` (both from the compiler
    wheels of the ``test`` extra; :mod:`ch_numba.gpu_compile`). Returns a dict: ``ptx`` (text),
    ``registers`` (per thread), ``shared_bytes`` (static, per block), ``spill_bytes`` (stores + loads),
    ``block`` (the launch block: (TZ, TY, 1) for the step), ``occupancy`` (resident warps / 64 per SM at that block,
    from the registers and shared memory: :func:`ch_numba.gpu_compile.occupancy`), and ``cubin``,
    ``blocks_per_sm``, ``limited_by``, ``cc``, ``ptxas`` (its verbose text). Not in the simulator.
    """
    from . import gpu_compile

    if is_simulator():
        raise RuntimeError("compile_report needs the real numba-cuda target (NUMBA_ENABLE_CUDASIM is set)")
    reason = gpu_compile.missing_compilers()
    if reason:
        raise RuntimeError(reason)
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; one of {sorted(KERNELS)}")
    tile = tuple(int(v) for v in tile)
    func, signature, bounds, *rest = KERNELS[kernel](np.dtype(dtype), tile)
    block = tuple(rest[0]) if rest else (*tile, 1)
    cc = tuple(int(v) for v in cc)
    ptx, _ = cuda.compile_ptx(func, signature, cc=cc, launch_bounds=bounds)
    cubin, info = gpu_compile.assemble(ptx, cc)
    occ = gpu_compile.occupancy(info["registers"], info["shared_bytes"], int(np.prod(block)), cc)
    return {
        "ptx": ptx,
        "registers": info["registers"],
        "shared_bytes": info["shared_bytes"],
        "spill_bytes": info["spill_bytes"],
        "block": block,
        "occupancy": occ["occupancy"],
        "blocks_per_sm": occ["blocks_per_sm"],
        "limited_by": occ["limited_by"],
        "cc": cc,
        "cubin": cubin,
        "ptxas": info["ptxas"],
    }


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
    the whole batch (``launch(phi, out, two_w, eps2_dx2, dtm_dx2, nx, ny, nz, chunk)`` on the
    flat views of the two state buffers). ``walls`` (x, y, z): the axes with no-flux walls
    (``CHParams.neumann_axes``), the kernel's compile-time variant.
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
        kernel = fused_kernel(self.dtype, tile, walls)
        if is_simulator():  # kernel[grid, block] is `kernel` itself there, shared by every stepper
            self.launch = functools.partial(_configure_and_launch, kernel, grid, block)
        else:
            self.launch = kernel[grid, block]
        self._a = cuda.device_array(self.shape, self.dtype)
        self._b = cuda.device_array(self.shape, self.dtype)
        nb, nx, ny, nz = self.shape
        self._flat = (self._a.reshape(nb * nx * ny * nz), self._b.reshape(nb * nx * ny * nz))  # views, no copies
        u = np.uint32
        self._args = (*self.coef, u(nx), u(ny), u(nz), u(self.chunk))

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
        launch, args = self.launch, self._args
        a, b = self._flat
        for _ in range(steps):
            launch(a, b, *args)
            a, b = b, a
        if steps % 2:
            self._a, self._b = self._b, self._a
            self._flat = self._flat[::-1]


def _configure_and_launch(kernel, grid, block, *args) -> None:
    kernel[grid, block](*args)
