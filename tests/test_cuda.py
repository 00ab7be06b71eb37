"""CUDA kernels vs the numpy reference: Numba's simulator here, the real device on a GPU machine."""

import numpy as np
import pytest

import ch_numba
from ch_numba.params import CHParams

cuda_mod = pytest.importorskip("ch_numba.kernels_cuda", reason="numba-cuda not installed")
pytestmark = pytest.mark.cuda

SIM = cuda_mod.is_simulator()
if not SIM and not cuda_mod.gpu_available():
    pytest.skip("no CUDA device and simulator disabled", allow_module_level=True)

# Simulator: tiny grids (each thread is Python). Real GPU: bigger grids, more steps.
SHAPE = (6, 5, 7) if SIM else (48, 40, 56)
STEPS = 3 if SIM else 500


def field(shape, dtype, seed=1):
    rng = np.random.default_rng(seed)
    return (0.5 + 0.1 * rng.uniform(-1, 1, shape)).astype(dtype)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_cuda_matches_reference_and_cpu(dtype, tol):
    p = CHParams()
    phi0 = field(SHAPE, dtype)
    ref_backend = "numpy" if SIM else "cpu"
    ref = ch_numba.evolve(phi0, STEPS, p, backend=ref_backend)
    got = ch_numba.evolve(phi0, STEPS, p, backend="cuda")
    assert got.dtype == dtype
    assert np.abs(got - ref).max() < tol
    assert np.abs(got - phi0).max() > 100 * tol


def test_cuda_conserves_mass_and_keeps_state_on_device():
    p = CHParams()
    st = ch_numba.Stepper(SHAPE, p, "cuda", np.float64)
    phi0 = field(SHAPE, np.float64, seed=2)
    st.set(phi0)
    st.advance(STEPS)
    st.advance(STEPS)
    phi = st.get()
    assert st.steps_done == 2 * STEPS
    assert abs(phi.mean() - phi0.mean()) < 1e-14
    np.testing.assert_allclose(phi, ch_numba.evolve(phi0, 2 * STEPS, p, backend="numpy" if SIM else "cpu"), atol=1e-12)


def test_launch_plan_covers_the_batch():
    grid, block, chunk = cuda_mod.launch_plan((3, 33, 7, 65), (32, 8))
    assert block == (32, 8, 1)
    assert grid[0] * 32 >= 65 and (grid[0] - 1) * 32 < 65 and grid[1] * 8 >= 7 and (grid[1] - 1) * 8 < 7
    assert grid[2] == 3 * -(-33 // chunk) and cuda_mod.MIN_CHUNK <= chunk <= 33
    grid, _, chunk = cuda_mod.launch_plan((256, 256, 256), (32, 8))  # one big grid: split along x
    assert grid[0] * grid[1] * grid[2] >= cuda_mod.TARGET_BLOCKS and chunk == 64
    grid, _, chunk = cuda_mod.launch_plan((64, 64, 64, 64), (32, 8))  # a big batch: whole members per block
    assert chunk == 64 and grid == (2, 8, 64)


@pytest.mark.parametrize("tile, chunk", [((2, 2), 1), ((4, 2), 4), ((3, 4), None), ((8, 8), 5), ((16, 12), 2)])
def test_fused_kernel_partial_tiles_and_chunks_match_cpu(tile, chunk):
    """Tiles that do not divide the plane, chunks that do not divide X, halos wider than the tile."""
    from ch_numba.physics import coefficients

    p = CHParams()
    phi0 = np.stack([field(SHAPE, np.float64, seed=s) for s in (5, 6)])
    st = cuda_mod.BatchStepper(phi0.shape, np.float64, coefficients(p, np.float64), tile=tile, chunk=chunk)
    st.set(phi0)
    st.advance(2)
    np.testing.assert_allclose(st.get(), ch_numba.evolve(phi0, 2, p, backend="cpu"), rtol=0, atol=1e-14)


def test_mirror_index_functions():
    """The walls' ghost functions (issue 27): the mirror image across a wall half a cell outside the box for
    −n ≤ i < 2n; beyond 2n (tiles wider than the grid) some valid index; the plane index for 0 ≤ i < 2n."""
    for n in (3, 4, 7):
        for i in range(-n, 2 * n):
            want = -1 - i if i < 0 else (2 * n - 1 - i if i >= n else i)
            assert int(cuda_mod._mirror(i, n)) == int(cuda_mod._mirror_jit(i, n)) == want, (i, n)
        for i in range(2 * n, 2 * n + 40):
            assert 0 <= int(cuda_mod._mirror_jit(i, n)) < n
        u = np.uint32
        for i in range(2 * n):
            want = 2 * n - 1 - i if i >= n else i
            assert int(cuda_mod._mirror_up(u(i), u(n))) == int(cuda_mod._mirror_up_jit(u(i), u(n))) == want


@pytest.mark.parametrize(
    "walls, tile, chunk",
    [((True, True, True), (3, 4), None), ((True, True, True), (16, 12), 2), ((False, False, True), (4, 2), 4)],
)
def test_fused_kernel_with_walls_partial_tiles_and_chunks_match_cpu(walls, tile, chunk):
    """The walls variants (issue 27) against the CPU kernel with the same walls: tiles that do not divide the
    plane, tiles wider than the grid (mirror indices beyond 2n), chunks that do not divide X."""
    from ch_numba.physics import coefficients

    p = CHParams(boundary=tuple("neumann" if w else "periodic" for w in walls))
    assert p.neumann_axes == walls
    phi0 = np.stack([field(SHAPE, np.float64, seed=s) for s in (5, 6)])
    st = cuda_mod.BatchStepper(phi0.shape, np.float64, coefficients(p, np.float64), tile=tile, chunk=chunk, walls=walls)
    st.set(phi0)
    st.advance(2)
    want = ch_numba.evolve(phi0, 2, p, backend="cpu")
    np.testing.assert_allclose(st.get(), want, rtol=0, atol=1e-14)
    assert np.abs(want - ch_numba.evolve(phi0, 2, CHParams(), backend="cpu")).max() > 1e-6  # walls matter here


@pytest.mark.parametrize("steps", [40, pytest.param(500, marks=[pytest.mark.slow] if SIM else [])])
def test_batch_matches_cpu_after_many_steps_float64(steps):
    """B = 2 on a 6×5×4 grid: float64 within 1e-12 of the cpu backend (bitwise in the simulator, which does
    not contract to FMA; a real GPU does, kernels_cuda docstring). 500 steps take ~2 min in the simulator."""
    p = CHParams()
    phi0 = np.stack([field((6, 5, 4), np.float64, seed=s) for s in (7, 8)])
    got = ch_numba.evolve(phi0, steps, p, backend="cuda")
    ref = ch_numba.evolve(phi0, steps, p, backend="cpu")
    assert np.abs(got - ref).max() <= 1e-12
    assert np.abs(got - phi0).max() > 1e-3


def test_one_launch_per_step_for_the_whole_batch():
    """A frame of k steps is k launches of the fused kernel for all B members; get() launches nothing."""
    p = CHParams()
    phi0 = np.stack([field((6, 5, 4), np.float32, seed=s) for s in (1, 2, 3)])
    st = ch_numba.Stepper(phi0.shape, p, "cuda", np.float32)
    calls, launches = [], []
    bound = st._cuda.launch
    if not SIM:  # the configured kernel's own hook: counts what really reaches the driver
        bound.pre_launch_callbacks.append(lambda kernel, config: launches.append(config))

    def counting(*args):
        calls.append(args[0].shape)
        return bound(*args)

    st._cuda.launch = counting
    st.set(phi0)
    for _frame in range(3):
        st.advance(4)
        st.get()
    assert len(calls) == 12 and set(calls) == {(3 * 6 * 5 * 4,)}  # the flat view of the batch
    if not SIM:
        assert len(launches) == 12


def test_cuda_batch_members_match_their_own_runs():
    p = CHParams()
    phi0 = np.stack([field(SHAPE, np.float64, seed=s) for s in (3, 4)])
    got = ch_numba.evolve(phi0, STEPS, p, backend="cuda")
    assert got.shape == phi0.shape
    for m in range(2):
        np.testing.assert_allclose(got[m], ch_numba.evolve(phi0[m], STEPS, p, backend="cuda"), rtol=0, atol=0)
        np.testing.assert_allclose(got[m], ch_numba.evolve(phi0[m], STEPS, p, backend="cpu"), rtol=0, atol=1e-12)
    st = ch_numba.Stepper(phi0.shape, p, "cuda", np.float64)
    st.set(phi0)
    st.set(phi0[0], member=1)
    np.testing.assert_array_equal(st.get(member=1), phi0[0])
    np.testing.assert_array_equal(st.get()[0], phi0[0])
