"""CPU kernels: ``numba.njit(parallel=True)`` forward-Euler steps (see physics.py).

    mu       = f'(φ) − (ε²/dx²) L(φ)
    φ_next   = φ + (dt M/dx²) L(μ),     L(a) = ((a[x−1] + a[x+1]) + (a[y−1] + a[y+1])) + (a[z−1] + a[z+1]) − 6a

(periodic in x, y, z, or with no-flux walls on some axes; L is physics.stencil, the 7-point
dx²·Laplacian, with the same order of additions).

Walls (``CHParams.boundary``). :func:`kernels` is specialised at compile time for the axes with
walls: there the neighbour across the wall is the mirror ghost (index −1 → 0, N → N−1, for φ and
μ alike) instead of the wrapped one — a different inlined index function per axis (x and y) and
another end-of-row rule of the z pairs, chosen when the kernels are built. The periodic kernels are
built from the same source with the periodic choices, so they compile to the same code as before
(and are cached under the same key).

Vectorisation. A (Y, Z) plane is contiguous, so every pass runs as one flat loop over
whole rows of a plane (``rows × Z`` elements, indices from 0, unit stride), which LLVM
turns into packed AVX-512/AVX2 code without a scalar remainder per row. The flat index
j has its x and y neighbours at the same j in another plane or at j ± Z; its z
neighbours j ± 1 are wrong at the two ends of each row, so the z pair a[z−1] + a[z+1]
is summed first in a separate flat loop (:func:`zpairs`), and a short second loop sets
the two wrapped ends of each row. L(a) takes that pair sum as its last term, which is the
same floating-point sum as physics.stencil. The rows y = 0 and Y−1 use the wrapped row
as a view, not modulo arithmetic.

Fused scheme (the production kernel, :func:`fused_step`): the x axis is cut into one
contiguous chunk of planes per thread. A thread walks its planes in order and keeps μ
for three consecutive x planes in a ring of three slabs, so for output plane x it
computes μ on plane x+1 only (plus planes x0−1 and x0 once at the chunk start). φ is
read from memory about once and φ_next written once per step: 2 × itemsize bytes per
voxel, against ≥ 5 × itemsize for the two-pass scheme (write μ, read φ and μ again).
Wide planes are cut into blocks of rows (:func:`block_rows`) so that the μ slabs and φ
planes of a thread stay in its L2 cache; each slab has one halo row above and below
(recomputed at block edges, copied when a block is the whole plane). Within a block the
work goes in strips of a few KiB (:data:`STRIP_BYTES`): μ on the strip of plane x+1,
then the update of the same strip of plane x, so the strip's data are still in L1.

Determinism: each voxel's arithmetic is the same expression whatever the chunking,
blocking or vector/scalar path (no fastmath: IEEE operations in a fixed order), so the
result is bitwise independent of the thread count and equals :func:`two_pass_step`
bitwise. :func:`fused_steps` runs many steps in one call (no Python dispatch per step).
Every kernel releases the GIL (``nogil=True``): a thread of the caller's process (``generate``'s
writer thread, :mod:`ch_numba.dataset.pipeline`) runs while the kernel steps.
The compiled kernels are cached on disk (physics.kernel_jit), so only a process's first
use after an install or a change of this file compiles them.

Arrays: φ, φ_next are C-contiguous (X, Y, Z) float32/float64, every axis ≥ 3. Packed
loads are fastest on 64-byte aligned rows: :func:`aligned_empty` allocates such arrays
(numpy's own are usually 16 bytes off), :func:`fused_steps` steps unaligned ones in aligned
copies, and the ring buffer is always aligned.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from numba import prange

from .physics import kernel_jit, local_ops

# Bytes of one μ slab (rows × Z × itemsize) above which a plane is cut into blocks of
# rows: three slabs plus the φ rows a thread reads then stay within its L2 cache.
RING_BYTES = 96 * 1024
# Bytes of the rows processed together inside a block (kept in the L1 cache) ...
STRIP_BYTES = 4096
# ... or, when a plane has at least STREAM_PLANE_BYTES (its φ rows then stream from L3/DRAM
# rather than from L2), longer strips, which measured ~10 % faster at 256³ and slower below.
STREAM_PLANE_BYTES = 256 * 1024
STREAM_STRIP_BYTES = 16384
ALIGN = 64  # bytes: one cache line, one AVX-512 vector
ALIGN_MIN_STEPS = 16  # fused_steps copies unaligned states into aligned ones from this many steps


def block_rows(shape, itemsize: int) -> int:
    """Rows per y-block: the whole plane when it is small, else enough to fill RING_BYTES per slab."""
    ny, nz = shape[1], shape[2]
    rows = max(8, RING_BYTES // (nz * itemsize) - 2)
    return min(ny, rows)


def aligned_empty(shape, dtype) -> np.ndarray:
    """Uninitialised C-contiguous array whose data start on a 64-byte boundary."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape, dtype=np.int64))
    raw = np.empty(n * dtype.itemsize + ALIGN, dtype=np.uint8)
    start = (-raw.ctypes.data) % ALIGN
    return raw[start : start + n * dtype.itemsize].view(dtype).reshape(shape)


NO_WALLS = (False, False, False)


def kernels(dtype, walls=NO_WALLS):
    """Build (fused_step, two_pass_step, fused_steps) for one state dtype; ``walls`` (x, y, z): True on
    the axes with no-flux walls (mirror ghosts; module docstring), all False for a periodic box."""
    return _kernels(np.dtype(dtype), tuple(bool(w) for w in walls))


@functools.lru_cache(maxsize=None)
def _kernels(dtype, walls):
    six = dtype.type(6)
    itemsize = dtype.itemsize
    fprime = local_ops(dtype).fprime
    tag = dtype.name if walls == NO_WALLS else f"{dtype.name}-walls{''.join('xyz'[a] for a in range(3) if walls[a])}"
    inline = kernel_jit(tag, inline="always")
    jit = kernel_jit(tag, nogil=True)
    parallel = kernel_jit(tag, parallel=True, nogil=True)

    @inline
    def periodic_index(i, n):
        return i + n if i < 0 else (i - n if i >= n else i)

    @inline
    def mirror_index(i, n):
        """The mirror ghost of a wall half a cell outside the box: −1 → 0, n → n − 1."""
        return 0 if i < 0 else (n - 1 if i >= n else i)

    wrap = mirror_index if walls[0] else periodic_index  # along x (planes)
    wrap_y = mirror_index if walls[1] else periodic_index  # along y (rows of a plane)
    y_wall, z_wall = walls[1], walls[2]

    @inline
    def lap(c, xm, xp, ym, yp, zpair):
        """physics.stencil(c, xm, xp, ym, yp, zm, zp) given zpair = zm + zp."""
        return ((xm + xp) + (ym + yp)) + zpair - six * c

    @jit
    def zpairs(c, n, nz, o):
        """o[j] = c[j−1] + c[j+1] for j < n, periodic (mirrored at walls) within rows of nz (c, o start at a row)."""
        if n > 2:
            lo = c[0 : n - 2]
            hi = c[2:n]
            oo = o[1 : n - 1]
            for j in range(n - 2):
                oo[j] = lo[j] + hi[j]
        for r in range(0, n, nz):
            if z_wall:  # mirror ghosts: c[−1] = c[0], c[nz] = c[nz − 1]
                o[r] = c[r] + c[r + 1]
                o[r + nz - 1] = c[r + nz - 2] + c[r + nz - 1]
            else:
                o[r] = c[r + nz - 1] + c[r + 1]
                o[r + nz - 1] = c[r + nz - 2] + c[r]

    @jit
    def mu_flat(c, a, b, i, im, ip, zs, k, o, n, two_w, eps2_dx2):
        """o[k+j] = μ at c[i+j] for j < n: x neighbours a, b at i+j, y neighbours c at im+j, ip+j, z pair zs[k+j]."""
        cc, xm, xp, ym, yp = c[i : i + n], a[i : i + n], b[i : i + n], c[im : im + n], c[ip : ip + n]
        zz, oo = zs[k : k + n], o[k : k + n]
        for j in range(n):
            oo[j] = fprime(cc[j], two_w) - eps2_dx2 * lap(cc[j], xm[j], xp[j], ym[j], yp[j], zz[j])

    @jit
    def update_flat(ph, g, c, m, q, i, im, ip, zs, k, o, n, dtm_dx2):
        """o[g+j] = ph[g+j] + (dt M/dx²) L(μ) for j < n, μ at c[i+j] (neighbours as in mu_flat)."""
        pp, oo = ph[g : g + n], o[g : g + n]
        cc, xm, xp, ym, yp = c[i : i + n], m[i : i + n], q[i : i + n], c[im : im + n], c[ip : ip + n]
        zz = zs[k : k + n]
        for j in range(n):
            oo[j] = pp[j] + dtm_dx2 * lap(cc[j], xm[j], xp[j], ym[j], yp[j], zz[j])

    @jit
    def mu_rows(phi2, x, ya, yb, ny, nz, zs, o, two_w, eps2_dx2):
        """μ of plane x, rows ya .. yb−1 (0 ≤ ya < yb ≤ ny) into o[0 : (yb−ya)·nz]; zs is scratch.

        phi2 is φ as (X, Y·Z); rows 0 and ny−1 take their wrapped y neighbour row.
        """
        nx = phi2.shape[0]
        c, a, b = phi2[x], phi2[wrap(x - 1, nx)], phi2[wrap(x + 1, nx)]
        s, n = ya * nz, (yb - ya) * nz
        zpairs(c[s : s + n], n, nz, zs)
        lo, hi = max(ya, 1), min(yb, ny - 1)
        if hi > lo:  # rows with both y neighbours inside the plane: one flat loop
            i = lo * nz
            mu_flat(c, a, b, i, i - nz, i + nz, zs, i - s, o, (hi - lo) * nz, two_w, eps2_dx2)
        for y in (0, ny - 1):
            if ya <= y < yb and not lo <= y < hi:
                i = y * nz
                im, ip = wrap_y(y - 1, ny) * nz, wrap_y(y + 1, ny) * nz
                mu_flat(c, a, b, i, im, ip, zs, i - s, o, nz, two_w, eps2_dx2)

    @jit
    def halo_rows(phi2, x, y0, rows, ny, nz, zs, o, two_w, eps2_dx2):
        """Slab rows 0 and rows+1 (plane rows y0−1 and y0+rows) once rows 1 .. rows are done."""
        if rows == ny and y_wall:  # the slab is the whole plane, walls along y: the halo rows mirror rows 0, ny−1
            top, last = o[0:nz], o[nz : 2 * nz]
            bottom, first = o[(ny + 1) * nz : (ny + 2) * nz], o[ny * nz : (ny + 1) * nz]
            for z in range(nz):
                top[z] = last[z]
                bottom[z] = first[z]
        elif rows == ny:  # the slab is the whole plane: its halo rows are copies of rows ny−1 and 0
            top, last = o[0:nz], o[ny * nz : (ny + 1) * nz]
            bottom, first = o[(ny + 1) * nz : (ny + 2) * nz], o[nz : 2 * nz]
            for z in range(nz):
                top[z] = last[z]
                bottom[z] = first[z]
        else:
            ym, yp = wrap_y(y0 - 1, ny), wrap_y(y0 + rows, ny)
            mu_rows(phi2, x, ym, ym + 1, ny, nz, zs, o[0:nz], two_w, eps2_dx2)
            mu_rows(phi2, x, yp, yp + 1, ny, nz, zs, o[(rows + 1) * nz : (rows + 2) * nz], two_w, eps2_dx2)

    @jit
    def slab(phi2, x, y0, rows, sr, ny, nz, zs, o, two_w, eps2_dx2):
        """μ of plane x on rows y0−1 .. y0+rows into slab o (rows 0 .. rows+1), strip by strip."""
        for ya in range(y0, y0 + rows, sr):
            yb = min(ya + sr, y0 + rows)
            r = (ya - y0 + 1) * nz
            mu_rows(phi2, x, ya, yb, ny, nz, zs, o[r : r + (yb - ya) * nz], two_w, eps2_dx2)
        halo_rows(phi2, x, y0, rows, ny, nz, zs, o, two_w, eps2_dx2)

    @parallel
    def fused_step(phi, out, ring, two_w, eps2_dx2, dtm_dx2):
        """out = one step from phi (both (X, Y, Z)); ring is scratch from ring_buffer()."""
        nx, ny, nz = phi.shape
        phi2 = phi.reshape((nx, ny * nz))
        out2 = out.reshape((nx, ny * nz))
        nchunks = ring.shape[0]
        by = ring.shape[2] // nz - 2  # rows per y-block
        if by < 1 or ring.shape[1] < 5:
            raise ValueError("ring buffer too small for this grid: build it with ring_buffer(phi.shape, phi.dtype)")
        strip = STREAM_STRIP_BYTES if ny * nz * itemsize >= STREAM_PLANE_BYTES else STRIP_BYTES
        sr = max(1, min(by, strip // (nz * itemsize)))  # rows per strip
        for t in prange(nchunks):
            x0 = (t * nx) // nchunks
            x1 = ((t + 1) * nx) // nchunks
            buf = ring[t]
            zs, zm = buf[3], buf[4]
            for y0 in range(0, ny, by):
                rows = min(by, ny - y0)
                # ring slot of plane x is (x − x0 + 1) % 3: x0−1 → 0, x0 → 1, x0+1 → 2, ...
                slab(phi2, wrap(x0 - 1, nx), y0, rows, sr, ny, nz, zs, buf[0], two_w, eps2_dx2)
                slab(phi2, x0, y0, rows, sr, ny, nz, zs, buf[1], two_w, eps2_dx2)
                for x in range(x0, x1):
                    s = x - x0 + 1
                    m, c, p = buf[(s - 1) % 3], buf[s % 3], buf[(s + 1) % 3]
                    xp = wrap(x + 1, nx)
                    for ya in range(y0, y0 + rows, sr):
                        yb = min(ya + sr, y0 + rows)
                        r, n = (ya - y0 + 1) * nz, (yb - ya) * nz
                        mu_rows(phi2, xp, ya, yb, ny, nz, zs, p[r : r + n], two_w, eps2_dx2)
                        zpairs(c[r : r + n], n, nz, zm)
                        update_flat(phi2[x], ya * nz, c, m, p, r, r - nz, r + nz, zm, 0, out2[x], n, dtm_dx2)
                    halo_rows(phi2, xp, y0, rows, ny, nz, zs, p, two_w, eps2_dx2)

    @parallel
    def two_pass_step(phi, out, mu, two_w, eps2_dx2, dtm_dx2):
        """out = one step from phi; mu is scratch of phi's shape (μ pass, then φ pass: the plain scheme)."""
        nx, ny, nz = phi.shape
        phi2 = phi.reshape((nx, ny * nz))
        out2 = out.reshape((nx, ny * nz))
        mu2 = mu.reshape((nx, ny * nz))
        n = ny * nz
        for x in prange(nx):
            zs = np.empty(n, dtype=phi.dtype)
            mu_rows(phi2, x, 0, ny, ny, nz, zs, mu2[x], two_w, eps2_dx2)
        for x in prange(nx):
            zs = np.empty(n, dtype=phi.dtype)
            c, m, p = mu2[x], mu2[wrap(x - 1, nx)], mu2[wrap(x + 1, nx)]
            zpairs(c, n, nz, zs)
            update_flat(phi2[x], nz, c, m, p, nz, 0, 2 * nz, zs, nz, out2[x], n - 2 * nz, dtm_dx2)
            for y in (0, ny - 1):
                i = y * nz
                im, ip = wrap_y(y - 1, ny) * nz, wrap_y(y + 1, ny) * nz
                update_flat(phi2[x], i, c, m, p, i, im, ip, zs, i, out2[x], nz, dtm_dx2)

    @jit
    def aligned_like(a):
        """Uninitialised array of a's shape and dtype starting on an ALIGN-byte boundary."""
        raw = np.empty(a.size + ALIGN // itemsize, dtype=a.dtype)
        start = ((-raw.ctypes.data) % ALIGN) // itemsize
        return raw[start : start + a.size].reshape(a.shape)

    @parallel
    def copy(src, dst):
        s, d = src.reshape(src.size), dst.reshape(dst.size)
        for i in prange(s.size):
            d[i] = s[i]

    @jit
    def alternate(a, b, ring, nsteps, two_w, eps2_dx2, dtm_dx2):
        for s in range(nsteps):
            if s % 2 == 0:
                fused_step(a, b, ring, two_w, eps2_dx2, dtm_dx2)
            else:
                fused_step(b, a, ring, two_w, eps2_dx2, dtm_dx2)

    @jit
    def fused_steps(a, b, ring, nsteps, two_w, eps2_dx2, dtm_dx2):
        """nsteps steps alternating between a and b (no Python call per step).

        The result is in a when nsteps is even, in b when it is odd (the other array holds
        the step before). Arrays that do not start on a 64-byte boundary (numpy's usually
        start 16 bytes off) are stepped in aligned copies, copied back at the end, when
        nsteps ≥ ALIGN_MIN_STEPS: the packed loads then never split a cache line, which
        measured ~12 % faster; the result is the same bitwise.
        """
        if nsteps >= ALIGN_MIN_STEPS and (a.ctypes.data % ALIGN != 0 or b.ctypes.data % ALIGN != 0):
            a2, b2 = aligned_like(a), aligned_like(b)
            copy(a, a2)
            alternate(a2, b2, ring, nsteps, two_w, eps2_dx2, dtm_dx2)
            copy(a2, a)
            copy(b2, b)
        else:
            alternate(a, b, ring, nsteps, two_w, eps2_dx2, dtm_dx2)

    return fused_step, two_pass_step, fused_steps


def ring_buffer(shape, dtype, chunks: int | None = None) -> np.ndarray:
    """Scratch for fused_step: (chunks, 5, L), 64-byte aligned; chunks defaults to the thread count.

    Per chunk: three μ slabs of (block rows + 2) × Z and two rows of z-pair sums of the same
    length (rounded up to whole cache lines). The result does not depend on `chunks` (bitwise).
    """
    dtype = np.dtype(dtype)
    if len(shape) != 3 or min(shape) < 3:
        raise ValueError(f"expected a grid shape (X, Y, Z) with every axis >= 3, got {tuple(shape)}")
    chunks = chunks or numba.get_num_threads()
    chunks = max(1, min(int(chunks), shape[0]))
    length = (block_rows(shape, dtype.itemsize) + 2) * shape[2]
    line = ALIGN // dtype.itemsize
    stride = -(-length // line) * line
    if (stride * dtype.itemsize) % 4096 == 0:  # avoid 4 KiB aliasing between the slabs
        stride += line
    return aligned_empty((chunks, 5, stride), dtype)


@kernel_jit(parallel=True, nogil=True)
def _plane_energy(phi, W, half_eps2_dx2, out, wx, wy, wz):
    """out[x] = Σ over plane x of W φ²(1−φ)² + (ε²/2dx²) Σ_a (φ[i+e_a] − φ[i])², float64; across a wall
    (wx, wy, wz: walls along x, y, z) the forward neighbour of the last voxel is its mirror ghost (itself)."""
    nx, ny, nz = phi.shape
    for x in prange(nx):
        xp = x + 1 if x < nx - 1 else (nx - 1 if wx else 0)
        acc = 0.0
        for y in range(ny):
            yp = y + 1 if y < ny - 1 else (ny - 1 if wy else 0)
            for z in range(nz):
                zp = z + 1 if z < nz - 1 else (nz - 1 if wz else 0)
                c = np.float64(phi[x, y, z])
                gx = np.float64(phi[xp, y, z]) - c
                gy = np.float64(phi[x, yp, z]) - c
                gz = np.float64(phi[x, y, zp]) - c
                acc += W * c * c * (1.0 - c) * (1.0 - c) + half_eps2_dx2 * (gx * gx + gy * gy + gz * gz)
        out[x] = acc


def free_energy(phi: np.ndarray, W: float, epsilon: float, dx: float, walls=NO_WALLS) -> float:
    """Free energy per unit volume (float64), summed plane by plane in a fixed order; ``walls`` (x, y, z):
    the axes with no-flux walls (no gradient energy across them: the mirror ghost equals the last voxel)."""
    planes = np.empty(phi.shape[0], dtype=np.float64)
    wx, wy, wz = (bool(w) for w in walls)
    _plane_energy(phi, float(W), 0.5 * epsilon**2 / dx**2, planes, wx, wy, wz)
    return float(np.sum(planes) / phi.size)
