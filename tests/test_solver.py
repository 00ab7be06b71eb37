"""Solver: numpy reference vs numba cpu, analytic cases, invariants, input checks."""

import numpy as np
import pytest

import ch_numba
from ch_numba import reference
from ch_numba.params import CHParams
from ch_numba.solver import BlowUpError, Stepper

# named tolerances (absolute, for φ ~ O(1))
ROUNDOFF_F64 = 1e-12
ROUNDOFF_F32 = 2e-5


def smooth_field(shape, seed=0, mean=0.5, amp=0.1, dtype=np.float32):
    """Band-limited random field (independent of ch_numba.initial)."""
    rng = np.random.default_rng(seed)
    k2 = sum(np.meshgrid(*[np.fft.fftfreq(n) ** 2 for n in shape], indexing="ij"))
    noise = np.real(np.fft.ifftn(np.fft.fftn(rng.standard_normal(shape)) * np.exp(-k2 * 60)))
    return (mean + amp * noise / np.abs(noise).max()).astype(dtype)


def unchecked_params(**kw):
    """CHParams bypassing validation (to run above the stability bound on purpose)."""
    p = CHParams()
    for k, v in kw.items():
        object.__setattr__(p, k, v)
    return p


def test_stable_dt_formula():
    p = CHParams(epsilon=3.0, dt=1e-3)
    assert p.stable_dt() == pytest.approx(2 / (9 * 144 + 2 * 12), rel=1e-15)  # ≈ 1.515e-3
    assert CHParams(epsilon=1.5, dx=1.0, dt=1e-3).stable_dt() == pytest.approx(2 / (2.25 * 144 + 24))


def test_dt_above_bound_refused_naming_bound():
    with pytest.raises(ValueError, match=r"stability bound dt < 0\.001515"):
        CHParams(dt=2e-3)
    with pytest.raises(ValueError, match="epsilon"):
        CHParams(epsilon=-1.0)
    with pytest.raises(ValueError, match="dt"):
        CHParams(dt=float("nan"))


@pytest.mark.parametrize("factor, grows", [(0.95, False), (1.1, True)])
def test_stability_bound_is_sharp_for_checkerboard(factor, grows):
    """The checkerboard mode around φ = 0 (where f'' = 2W is largest) decays just below the bound, explodes above."""
    bound = CHParams().stable_dt()
    p = unchecked_params(dt=factor * bound)
    idx = np.indices((8, 8, 8)).sum(axis=0)
    phi0 = (1e-3 * (-1.0) ** idx).astype(np.float64)
    if grows:
        with pytest.raises(BlowUpError, match=r"blew up at step \d+"):
            ch_numba.evolve(phi0, 400, p, backend="cpu", check_every=20)
    else:
        phi = ch_numba.evolve(phi0, 400, p, backend="cpu")
        assert np.abs(phi).max() < 1e-3


@pytest.mark.parametrize("k", [1, 2, 5])
def test_laplacian_of_sine_is_discrete_eigenvalue(k):
    n, dx = 32, 0.5
    x = np.arange(n) * dx
    L = n * dx
    a = np.sin(2 * np.pi * k * x / L)[:, None, None] * np.cos(2 * np.pi * x / L)[None, :, None] * np.ones((1, 1, 4))
    lam = -(2 - 2 * np.cos(2 * np.pi * k / n)) / dx**2 - (2 - 2 * np.cos(2 * np.pi / n)) / dx**2
    np.testing.assert_allclose(reference.laplacian(a, dx), lam * a, atol=1e-12)
    # second-order convergence to the continuum eigenvalue -(2πk/L)² - (2π/L)²
    cont = -((2 * np.pi * k / L) ** 2) - (2 * np.pi / L) ** 2
    assert abs(lam - cont) / abs(cont) < ((2 * np.pi * k / n) ** 2) / 12 * 1.01


@pytest.mark.parametrize("dtype, tol", [(np.float64, ROUNDOFF_F64), (np.float32, ROUNDOFF_F32)])
@pytest.mark.parametrize("shape", [(12, 10, 14), (3, 5, 4)])
def test_cpu_matches_numpy_reference(dtype, tol, shape):
    p = CHParams()
    phi0 = smooth_field(shape, dtype=dtype)
    ref = ch_numba.evolve(phi0, 30, p, backend="numpy")
    cpu = ch_numba.evolve(phi0, 30, p, backend="cpu")
    assert cpu.dtype == dtype and cpu.shape == shape
    assert np.abs(cpu - ref).max() < tol
    assert np.abs(cpu - phi0).max() > 100 * tol  # it did evolve


def test_evolve_does_not_modify_input_and_zero_steps_copies():
    phi0 = smooth_field((6, 6, 6))
    keep = phi0.copy()
    out = ch_numba.evolve(phi0, 5)
    np.testing.assert_array_equal(phi0, keep)
    zero = ch_numba.evolve(phi0, 0)
    np.testing.assert_array_equal(zero, phi0)
    assert zero is not phi0 and out is not phi0


def test_float32_tracks_float64():
    p = CHParams()
    phi64 = smooth_field((16, 16, 16), dtype=np.float64)
    a = ch_numba.evolve(phi64, 2000, p)
    b = ch_numba.evolve(phi64.astype(np.float32), 2000, p)
    assert np.abs(a - b).max() < 1e-4


def test_equilibrium_tanh_profile_stays_put():
    """φ = ½(1 + tanh(x/(2ℓ))), ℓ = ε/√(2W), is stationary; a too-wide profile is not."""
    p = CHParams()
    n = 64
    ell = p.interface_length
    x = np.arange(n) + 0.5

    def profile(width):
        prof = 0.5 * (np.tanh((x - n / 4) / width) - np.tanh((x - 3 * n / 4) / width))
        return np.broadcast_to(prof[:, None, None], (n, 4, 4)).astype(np.float64).copy()

    def crossing(phi):  # position of the first φ = 0.5 crossing (linear interpolation)
        line = phi[:, 0, 0]
        i = int(np.flatnonzero((line[:-1] < 0.5) & (line[1:] >= 0.5))[0])
        return x[i] + (0.5 - line[i]) / (line[i + 1] - line[i])

    eq = profile(2 * ell)
    after = ch_numba.evolve(eq, 5000, p)
    assert np.abs(after - eq).max() < 5e-3  # discretisation error of the continuum profile only
    assert abs(crossing(after) - crossing(eq)) < 1e-3  # the interface does not move
    wide = profile(4 * ell)
    assert np.abs(ch_numba.evolve(wide, 5000, p) - wide).max() > 10 * np.abs(after - eq).max()


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-14), (np.float32, 2e-7)])
def test_mass_conserved_to_roundoff(dtype, tol):
    phi0 = smooth_field((20, 16, 12), dtype=dtype, mean=0.45, amp=0.3)
    phi = ch_numba.evolve(phi0, 2000, CHParams())
    assert abs(np.mean(phi, dtype=np.float64) - np.mean(phi0, dtype=np.float64)) < tol
    assert np.abs(phi - phi0).max() > 0.05


def test_free_energy_non_increasing():
    p = CHParams()
    st = Stepper((24, 24, 24), p, "cpu", np.float64)
    st.set(smooth_field((24, 24, 24), mean=0.5, amp=0.2, dtype=np.float64))
    energies = [ch_numba.free_energy(st.get(), p)]
    for _ in range(30):
        st.advance(200)
        energies.append(ch_numba.free_energy(st.get(), p))
    assert np.all(np.diff(energies) <= 1e-15)
    assert energies[-1] < 0.95 * energies[0]  # it really evolved


def test_free_energy_kernel_matches_reference_and_analytic():
    p = CHParams(epsilon=2.0)
    phi = smooth_field((9, 11, 7), dtype=np.float32, amp=0.4)
    assert ch_numba.free_energy(phi, p) == pytest.approx(reference.free_energy(phi, p), rel=1e-12)
    # uniform φ: F/V = W φ²(1−φ)² exactly; a single sine: bulk + (ε²/2) mean of forward differences²
    assert ch_numba.free_energy(np.full((4, 4, 4), 0.3), p) == pytest.approx(0.09 * 0.49, rel=1e-14)
    n = 16
    s = 0.1 * np.sin(2 * np.pi * np.arange(n) / n)[:, None, None] * np.ones((1, 2, 2))
    grad = 0.5 * p.epsilon**2 * np.mean((np.roll(s[:, 0, 0], -1) - s[:, 0, 0]) ** 2)
    bulk = np.mean(s[:, 0, 0] ** 2 * (1 - s[:, 0, 0]) ** 2)
    assert ch_numba.free_energy(s, p) == pytest.approx(bulk + grad, rel=1e-13)


# Determinism of the CPU kernel (same input -> same bits, whatever the thread count and chunking) is
# tests/test_kernels_cpu.py::test_bitwise_independent_of_threads_and_chunks; a same-run-twice test here
# would prove less.


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((8, 8)), r"expected phi0 of shape \(X, Y, Z\) or \(B, X, Y, Z\), got \(8, 8\)"),
        (np.zeros((2, 3, 8, 8, 8)), r"expected phi0 of shape \(X, Y, Z\) or \(B, X, Y, Z\), got \(2, 3, 8, 8, 8\)"),
        (np.zeros((0, 8, 8, 8), dtype=np.float32), "batch of 0 members"),
        (np.zeros((4, 2, 8, 8), dtype=np.float32), "at least 3 voxels"),
        (np.zeros((8, 8, 8), dtype=np.int64), "float32 or float64"),
        (np.full((4, 4, 4), np.nan, dtype=np.float32), "NaN"),
        (np.zeros((2, 8, 8), dtype=np.float32), "at least 3 voxels"),
    ],
)
def test_bad_inputs_give_clear_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        ch_numba.evolve(bad, 1)


def test_unknown_backend_and_bad_steps():
    phi = smooth_field((4, 4, 4))
    with pytest.raises(ValueError, match="unknown backend 'gpu'"):
        ch_numba.evolve(phi, 1, backend="gpu")
    with pytest.raises(ValueError, match="non-negative integer"):
        ch_numba.evolve(phi, -1)
    with pytest.raises(ValueError, match="non-negative integer"):
        ch_numba.evolve(phi, 1.5)


def test_auto_backend_never_picks_the_simulator():
    from ch_numba.kernels_cuda import gpu_available, is_simulator
    from ch_numba.solver import resolve_backend

    assert resolve_backend("auto") == ("cuda" if gpu_available() else "cpu")
    if is_simulator():
        assert resolve_backend("auto") == "cpu"
        assert resolve_backend("cuda") == "cuda"  # asked for explicitly: the simulator runs it


def test_cuda_backend_without_a_gpu_is_one_line_error(monkeypatch):
    from ch_numba import kernels_cuda
    from ch_numba.solver import resolve_backend

    monkeypatch.setattr(kernels_cuda, "is_simulator", lambda: False)
    monkeypatch.setattr(kernels_cuda, "gpu_available", lambda: False)
    with pytest.raises(ValueError, match="backend 'cuda' needs a usable CUDA GPU and driver"):
        resolve_backend("cuda")
    assert resolve_backend("auto") == "cpu"


# -- batches (B, X, Y, Z) ---------------------------------------------------------------------------


def batch_field(b, grid, dtype=np.float64):
    return np.stack([smooth_field(grid, seed=s, dtype=dtype) for s in range(b)])


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("b", [1, 3])
def test_batch_members_equal_their_own_runs_bitwise(backend, dtype, b):
    phi0 = batch_field(b, (7, 5, 6), dtype)
    out = ch_numba.evolve(phi0, 23, CHParams(), backend=backend, check_every=10)
    assert out.shape == phi0.shape and out.dtype == dtype
    for m in range(b):
        np.testing.assert_array_equal(out[m], ch_numba.evolve(phi0[m], 23, CHParams(), backend=backend))
    assert np.abs(out - phi0).max() > 1e-4


def test_batched_stepper_set_member_get_member_state_and_free_energy():
    p = CHParams()
    phi0 = batch_field(3, (6, 8, 5))
    st = Stepper(phi0.shape, p, "cpu", np.float64)
    assert (st.batch, st.grid, st.batched) == (3, (6, 8, 5), True)
    st.set(phi0)
    st.advance(7)
    saved = st.state()
    assert saved["phi"].shape == (3, 6, 8, 5)
    st.set(phi0[0], member=1)  # member 1 restarts from member 0's IC
    st.advance(4)
    assert list(st.member_steps) == [11, 4, 11] and st.steps_done == 11
    np.testing.assert_array_equal(st.get(member=1), ch_numba.evolve(phi0[0], 4, p))
    np.testing.assert_array_equal(st.get()[2], ch_numba.evolve(phi0[2], 11, p))
    again = Stepper(phi0.shape, p, "cpu", np.float64)
    again.load_state(saved)
    again.advance(4)
    np.testing.assert_array_equal(again.get()[0], ch_numba.evolve(phi0[0], 11, p))
    assert list(again.member_steps) == [11, 11, 11]
    F = ch_numba.free_energy(st.get(), p)
    assert F.shape == (3,) and F.dtype == np.float64
    assert [F[m] for m in range(3)] == [ch_numba.free_energy(f, p) for f in st.get()]
    with pytest.raises(ValueError, match=r"member must be an integer in \[0, 3\), got 3"):
        st.get(member=3)
    with pytest.raises(ValueError, match=r"expected phi of shape \(6, 8, 5\)"):
        st.set(phi0, member=0)


def test_an_initial_condition_outside_the_range_is_not_reported_as_a_blow_up():
    with pytest.raises(BlowUpError) as e:
        ch_numba.evolve(np.full((6, 6, 6), 2.0, np.float32), 10)
    assert str(e.value) == (
        "the initial condition is outside the physical range: it has phi = 2 (phi is in [0, 1]; "
        "the solver accepts [-0.5, 1.5])"
    )
    assert e.value.step == 0 and "reduce dt" not in str(e.value)


def test_batch_blowup_names_the_member():
    p = unchecked_params(dt=1.3 * CHParams().stable_dt())
    idx = np.indices((6, 6, 6)).sum(axis=0)
    calm = np.full((6, 6, 6), 0.5)
    checker = 0.5 + 1e-3 * (-1.0) ** idx
    phi0 = np.stack([calm, calm, calm, checker])
    with pytest.raises(BlowUpError, match=r"^member 3: simulation blew up at step \d+") as e:
        ch_numba.evolve(phi0, 2000, p, backend="cpu", check_every=50)
    assert e.value.member == 3
    st = Stepper(phi0.shape, p, "cpu", np.float64)
    st.set(phi0)
    st.advance(2000)
    with pytest.raises(BlowUpError, match=r"^run 7: member 3: "):
        st.get("run 7")
    with pytest.raises(BlowUpError, match=r"^sequence 12: simulation"):
        st.get(["a", "b", "c", "sequence 12"])
    assert np.array_equal(st.get(member=0), calm)  # the other members are fine


def test_spectral_batch_members_equal_their_own_runs():
    p = CHParams(scheme="spectral", dt=0.5)
    phi0 = batch_field(2, (8, 6, 4))
    out = ch_numba.evolve(phi0, 6, p)
    for m in range(2):
        np.testing.assert_array_equal(out[m], ch_numba.evolve(phi0[m], 6, p))
    st = Stepper(phi0.shape, p, "cpu", np.float64)
    st.set(phi0)
    st.advance(3)
    st.set(phi0[1], member=0)  # member 0 restarts (its SBDF2 history too), member 1 keeps its history
    saved = st.state()
    assert list(saved["history"]) == [False, True]
    st.advance(3)
    again = Stepper(phi0.shape, p, "cpu", np.float64)
    again.load_state(saved)
    again.advance(3)
    np.testing.assert_array_equal(again.get(), st.get())
    np.testing.assert_array_equal(st.get(member=0), ch_numba.evolve(phi0[1], 3, p))
    np.testing.assert_array_equal(st.get(member=1), out[1])
