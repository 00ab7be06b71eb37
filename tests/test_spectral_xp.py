"""The batched spectral integrator on an array library (issue 24 item 4): run here on numpy + scipy.fft,
the same code as on CuPy + cuFFT, against the CPU integrator (ch_numba.spectral) and the reference."""

import numpy as np
import pytest

import ch_numba
from ch_numba import reference, spectral_xp
from ch_numba.params import CHParams
from ch_numba.spectral import SpectralIntegrator


def spectral(**kw):
    return CHParams(**{"epsilon": 1.5, "dt": 0.5, "scheme": "spectral", **kw})


def fields(b, grid, seed=1, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return (0.5 + 0.1 * rng.uniform(-1, 1, (b, *grid))).astype(dtype)


def cpu_members(phi0, steps, p, dtype):
    out = []
    for field in phi0:
        s = SpectralIntegrator(field.shape, p, dtype, fft="scipy")
        s.set(field)
        s.advance(steps)
        out.append(s.phi)
    return np.stack(out)


@pytest.mark.parametrize(
    "boundary", ["neumann", ("periodic", "periodic", "neumann"), ("neumann", "periodic", "neumann")]
)
def test_walls_equal_the_cpu_integrator_and_conserve_mass(boundary):
    """No-flux walls (issue 27): DCT-II along the wall axes, as the CPU integrator; F without gradient energy
    across walls (the reference's)."""
    p = spectral(order=2, boundary=boundary)
    phi0 = fields(2, (10, 9, 8), seed=4)
    st = spectral_xp.BatchSpectralIntegrator(phi0.shape, p, np.float64, library="numpy")
    st.set(phi0)
    st.advance(20)
    got = st.get()
    np.testing.assert_allclose(got, cpu_members(phi0, 20, p, np.float64), rtol=0, atol=1e-12)
    assert np.abs(got - cpu_members(phi0, 20, spectral(order=2), np.float64)).max() > 1e-4  # walls matter
    np.testing.assert_allclose(got.mean(axis=(1, 2, 3)), phi0.mean(axis=(1, 2, 3)), rtol=0, atol=1e-14)
    np.testing.assert_allclose(st.free_energy(), [reference.free_energy(m, p) for m in got], rtol=1e-13)


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-6)])
def test_batch_equals_the_cpu_integrator_per_member(order, dtype, tol):
    p = spectral(order=order)
    phi0 = fields(3, (12, 10, 8), dtype=dtype)
    st = spectral_xp.BatchSpectralIntegrator(phi0.shape, p, dtype, library="numpy")
    st.set(phi0)
    st.advance(30)
    got = st.get()
    assert got.dtype == dtype and got.shape == phi0.shape
    ref = cpu_members(phi0, 30, p, dtype)
    assert np.abs(got - ref).max() <= tol
    assert np.abs(got - phi0).max() > 1e-3  # it moved
    np.testing.assert_allclose(got.mean(axis=(1, 2, 3)), phi0.mean(axis=(1, 2, 3)), rtol=0, atol=10 * tol)
    if dtype == np.float64:  # and the independent numpy reference of the scheme
        np.testing.assert_allclose(got[1], reference.spectral_evolve(phi0[1], 30, p), rtol=0, atol=1e-10)


def test_a_member_set_anew_starts_its_own_history():
    """SBDF2: a member loaded mid-run takes an order-1 step first, the others go on with order 2."""
    p = spectral(order=2)
    phi0, new = fields(3, (8, 9, 10)), fields(1, (8, 9, 10), seed=7)[0]
    st = spectral_xp.BatchSpectralIntegrator(phi0.shape, p, np.float64, library="numpy")
    st.set(phi0)
    st.advance(5)
    st.set(new[None], member=1)
    st.advance(7)
    got = st.get()
    np.testing.assert_allclose(got[[0, 2]], cpu_members(phi0[[0, 2]], 12, p, np.float64), rtol=0, atol=1e-12)
    np.testing.assert_allclose(got[1], cpu_members(new[None], 7, p, np.float64)[0], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(st.get(member=1), got[1:2])


def test_state_round_trip_and_free_energy():
    p = spectral()
    phi0 = fields(2, (8, 8, 8), seed=3)
    a = spectral_xp.BatchSpectralIntegrator(phi0.shape, p, np.float64, library="numpy")
    a.set(phi0)
    a.advance(4)
    b = spectral_xp.BatchSpectralIntegrator(phi0.shape, p, np.float64, library="numpy")
    b.load_state(a.state())
    a.advance(6)
    b.advance(6)
    np.testing.assert_array_equal(a.get(), b.get())
    f = a.free_energy()
    assert f.dtype == np.float64 and f.shape == (2,)
    np.testing.assert_allclose(f, [reference.free_energy(m, p) for m in a.get()], rtol=1e-13)


def test_stepper_on_cuda_drives_the_batch(monkeypatch):
    """solver.Stepper(..., "cuda") with the spectral scheme: the batch integrator (its array library faked
    by numpy here), equal to the cpu backend, checkpoints included."""
    real = spectral_xp.array_library
    monkeypatch.setattr(spectral_xp, "array_library", lambda name: real("numpy"))
    p = spectral()
    phi0 = fields(2, (8, 10, 12), seed=5)
    gpu, cpu = ch_numba.Stepper(phi0.shape, p, "cuda", np.float64), ch_numba.Stepper(phi0.shape, p, "cpu", np.float64)
    assert isinstance(gpu._cuda, spectral_xp.BatchSpectralIntegrator)
    for st in (gpu, cpu):
        st.set(phi0)
        st.advance(3)
    state = gpu.state()
    resumed = ch_numba.Stepper(phi0.shape, p, "cuda", np.float64)
    resumed.load_state(state)
    for st in (gpu, cpu, resumed):
        st.advance(5)
    np.testing.assert_allclose(gpu.get(), cpu.get(), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(resumed.get(), gpu.get())
    np.testing.assert_array_equal(gpu.get(member=1), gpu.get()[1])
    single = ch_numba.Stepper((8, 10, 12), p, "cuda", np.float64)
    single.set(phi0[0])
    single.advance(8)
    np.testing.assert_allclose(single.get(), gpu.get()[0], rtol=0, atol=1e-12)
    s = single.state()
    assert s["phi"].shape == (8, 10, 12)
    again = ch_numba.Stepper((8, 10, 12), p, "cuda", np.float64)
    again.load_state(s)
    np.testing.assert_array_equal(again.get(), single.get())


@pytest.mark.cuda
@pytest.mark.gpu
def test_cupy_equals_the_cpu_scheme_after_100_steps():
    """On a GPU (the device check): CuPy + cuFFT, float64, B = 4 at 32³, 100 steps, within 1e-10 of the CPU."""
    try:
        import cupy

        cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # no CuPy or no device
        pytest.skip(f"CuPy with a GPU needed ({type(e).__name__})")
    p = spectral(dt=1.0)
    phi0 = fields(4, (32, 32, 32), seed=11)
    st = spectral_xp.BatchSpectralIntegrator(phi0.shape, p, np.float64, library="cupy")
    st.set(phi0)
    st.advance(100)
    np.testing.assert_allclose(st.get(), cpu_members(phi0, 100, p, np.float64), rtol=0, atol=1e-10)
