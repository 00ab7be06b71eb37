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
    np.testing.assert_allclose(phi, ch_numba.evolve(phi0, 2 * STEPS, p, backend="numpy" if SIM else "cpu"),
                               atol=1e-12)


def test_launch_config_covers_grid():
    grid, block = cuda_mod.launch_config((33, 7, 65))
    bz, by, bx = block
    assert grid[0] * bz >= 65 and grid[1] * by >= 7 and grid[2] * bx >= 33
    assert (grid[0] - 1) * bz < 65 and (grid[1] - 1) * by < 7 and (grid[2] - 1) * bx < 33
    grid, block = cuda_mod.launch_config((3, 33, 7, 65))
    assert grid[2] * bx >= 3 * 33 and (grid[2] - 1) * bx < 3 * 33


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
