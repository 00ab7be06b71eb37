"""CPU kernels (ch_numba.kernels_cpu) against the numpy reference, and their determinism.

Tier 1 of the numerical tests: on tiny periodic grids of odd, non-cubic shapes the fused
kernel equals reference.step to round-off (named tolerances below), equals the two-pass
kernel bitwise, and gives bitwise the same result for any thread count, any number of
chunks of the ring buffer and any y-blocking; a periodic shift of the input shifts the
output bitwise (every voxel runs the same arithmetic, wherever it sits).
"""

import numba
import numpy as np
import pytest

from ch_numba import reference
from ch_numba.kernels_cpu import ALIGN_MIN_STEPS, aligned_empty, block_rows, kernels, ring_buffer
from ch_numba.params import CHParams
from ch_numba.physics import coefficients

# max |kernel − reference| after one step of a field 0.5 ± 0.1 (a few ulp of |φ| ≈ 0.5)
ATOL_ONE_STEP = {np.float32: 1e-6, np.float64: 1e-14}
# after STEPS steps (round-off accumulates, the scheme is stable)
STEPS = 5
ATOL_STEPS = {np.float32: 5e-6, np.float64: 5e-14}

SHAPES = [(7, 5, 9), (3, 4, 3), (5, 3, 17), (4, 11, 6)]
DTYPES = [np.float32, np.float64]
PARAMS = CHParams()


def field(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (0.5 + 0.1 * rng.uniform(-1, 1, size=shape)).astype(dtype)


def fused(phi, chunks=None):
    step = kernels(phi.dtype)[0]
    out = np.full_like(phi, np.nan)
    step(phi, out, ring_buffer(phi.shape, phi.dtype, chunks), *coefficients(PARAMS, phi.dtype))
    return out


def two_pass(phi):
    step = kernels(phi.dtype)[1]
    out = np.full_like(phi, np.nan)
    step(phi, out, np.empty_like(phi), *coefficients(PARAMS, phi.dtype))
    return out


@pytest.fixture
def threads():
    """Restores numba's thread count after a test that changes it."""
    before = numba.get_num_threads()
    yield min(2, numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(before)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_fused_matches_reference(shape, dtype):
    phi = field(shape, dtype)
    out = fused(phi)
    assert out.dtype == dtype
    ref = reference.step(phi, PARAMS)
    np.testing.assert_allclose(out, ref, rtol=0, atol=ATOL_ONE_STEP[dtype])
    # the step does something: the update is far above the tolerance
    assert np.max(np.abs(out.astype(np.float64) - phi)) > 100 * ATOL_ONE_STEP[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_fused_equals_two_pass_bitwise(shape, dtype):
    phi = field(shape, dtype, seed=1)
    np.testing.assert_array_equal(fused(phi), two_pass(phi))


@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_steps_matches_reference(dtype):
    phi = field((7, 5, 9), dtype, seed=2)
    steps = kernels(dtype)[2]
    a, b = phi.copy(), np.empty_like(phi)
    steps(a, b, ring_buffer(phi.shape, dtype), STEPS, *coefficients(PARAMS, dtype))
    result = b if STEPS % 2 else a  # odd step count: the result is in b
    np.testing.assert_allclose(result, reference.evolve(phi, STEPS, PARAMS), rtol=0, atol=ATOL_STEPS[dtype])


def misaligned(a):
    """A copy of a whose data start 1 element past a 64-byte boundary."""
    buf = aligned_empty(a.size + 1, a.dtype)
    out = buf[1:].reshape(a.shape)
    out[...] = a
    assert out.ctypes.data % 64 != 0
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nsteps", [ALIGN_MIN_STEPS, ALIGN_MIN_STEPS + 1])
def test_fused_steps_unaligned_states(nsteps, dtype):
    """Unaligned states are stepped in aligned copies: same bits, both arrays as without the copies."""
    phi = field((7, 5, 9), dtype, seed=7)
    steps = kernels(dtype)[2]
    coef = coefficients(PARAMS, dtype)
    runs = []
    for make in (lambda x: aligned_empty(x.shape, x.dtype), misaligned):
        a, b = make(phi), make(phi)
        a[...] = phi
        steps(a, b, ring_buffer(phi.shape, dtype), nsteps, *coef)
        runs.append((a.copy(), b.copy()))
    np.testing.assert_array_equal(runs[1][0], runs[0][0])
    np.testing.assert_array_equal(runs[1][1], runs[0][1])
    # one step by hand from the state before the last one gives the final one
    before, after = (runs[0][1], runs[0][0]) if nsteps % 2 == 0 else (runs[0][0], runs[0][1])
    np.testing.assert_array_equal(fused(before), after)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7, 5, 9), (9, 4, 3)])
def test_bitwise_independent_of_threads_and_chunks(shape, dtype, threads):
    phi = field(shape, dtype, seed=3)
    results = []
    for n_threads in sorted({1, threads}):
        numba.set_num_threads(n_threads)
        for chunks in (None, 1, 2, 3, shape[0]):
            results.append(fused(phi, chunks))
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_y_blocks_wide_planes(dtype):
    """Planes wider than the L2 budget are cut into blocks of rows: same result bitwise."""
    shape = (4, 37, 2048)
    assert block_rows(shape, np.dtype(dtype).itemsize) < shape[1]  # several blocks, the last one short
    phi = field(shape, dtype, seed=4)
    out = fused(phi, chunks=2)
    np.testing.assert_array_equal(out, two_pass(phi))
    np.testing.assert_allclose(out, reference.step(phi, PARAMS), rtol=0, atol=ATOL_ONE_STEP[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_periodic_shift_equivariance_bitwise(dtype):
    phi = field((6, 5, 7), dtype, seed=5)
    out = fused(phi)
    for shift in [(1, 0, 0), (0, 2, 0), (0, 0, 3), (5, 4, 6)]:
        shifted = np.ascontiguousarray(np.roll(phi, shift, axis=(0, 1, 2)))
        np.testing.assert_array_equal(fused(shifted), np.roll(out, shift, axis=(0, 1, 2)))


def test_mass_conserved_to_round_off():
    phi = field((7, 5, 9), np.float64, seed=6)
    assert abs(fused(phi).mean() - phi.mean()) < 1e-15


def test_aligned_empty_and_ring_buffer():
    for dtype in DTYPES:
        a = aligned_empty((5, 6, 7), dtype)
        assert a.shape == (5, 6, 7) and a.dtype == dtype and a.flags.c_contiguous
        assert a.ctypes.data % 64 == 0
        ring = ring_buffer((5, 6, 7), dtype, chunks=3)
        assert ring.shape[:2] == (3, 5) and ring.ctypes.data % 64 == 0
    assert ring_buffer((3, 6, 7), np.float32, chunks=8).shape[0] == 3  # never more chunks than planes
    with pytest.raises(ValueError, match="every axis >= 3"):
        ring_buffer((5, 2, 7), np.float32)
    step = kernels(np.float32)[0]
    phi = field((5, 6, 64), np.float32)
    with pytest.raises(ValueError, match="ring buffer too small"):
        step(phi, np.empty_like(phi), ring_buffer((5, 6, 7), np.float32), *coefficients(PARAMS, np.float32))


def test_kernels_release_the_gil():
    """Every CPU kernel is compiled with nogil (a writer thread overlaps them, dataset.pipeline), and while
    fused_steps runs in another thread this thread keeps running Python (gaps far below the kernel's time)."""
    import threading
    import time

    from ch_numba.kernels_cpu import _plane_energy

    for k in (*kernels(np.float32), _plane_energy):
        assert k.targetoptions.get("nogil") is True, k
    phi = field((24, 24, 24), np.float32)
    fused_steps = kernels(np.float32)[2]
    ring, coef = ring_buffer(phi.shape, phi.dtype, 1), coefficients(PARAMS, np.float32)
    a, b = phi.copy(), np.empty_like(phi)
    fused_steps(a, b, ring, 2, *coef)  # compiled or loaded before timing
    t0 = time.perf_counter()
    fused_steps(a, b, ring, 200, *coef)
    steps = max(200, int(200 * 0.6 / max(time.perf_counter() - t0, 1e-6)))  # about 0.6 s of stepping
    worker = threading.Thread(target=fused_steps, args=(a, b, ring, steps, *coef))
    start = last = time.perf_counter()
    gap = 0.0  # the longest time this thread did not run Python (kept, not every tick: a slow, loaded machine
    worker.start()  # ran this loop for 30 s once, and a list of ticks grew to 21 GB)
    while worker.is_alive():
        now = time.perf_counter()
        gap, last = max(gap, now - last), now
    worker.join()
    took = last - start
    assert took > 0.02 and gap < 0.5 * took, (took, gap)
