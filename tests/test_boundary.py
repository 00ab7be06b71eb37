"""No-flux walls (issue 27): CHParams(boundary=...), the solver on every backend, the spectral scheme, free
energy, ICs, files and commands.

The specification is the mirror equivalence: a box of N voxels with walls along an axis evolves exactly as
the periodic box of 2N voxels holding ``concatenate([phi, phi[::-1]])`` along it, restricted to the first N
(any mix of axes). Explicit scheme: ≤ 1e-14 in float64 over 300 steps; spectral: ≤ 1e-12 over 40 steps.
"""

import argparse
import itertools

import h5py
import numpy as np
import pytest

import ch_numba
from ch_numba import initial, reference
from ch_numba.dataset import DatasetConfig, generate, open_dataset
from ch_numba.params import CHParams, parse_boundary
from ch_numba.spectral import SpectralIntegrator, laplacian_symbol

P, N = "periodic", "neumann"
ALL_MIXES = list(itertools.product((P, N), repeat=3))
WALL_MIXES = [m for m in ALL_MIXES if N in m]
SHAPE = (6, 5, 7)  # odd and even edges


def field(shape, dtype=np.float64, seed=1):
    rng = np.random.default_rng(seed)
    return (0.5 + 0.1 * rng.uniform(-1, 1, shape)).astype(dtype)


def mirrored(phi, boundary):
    """The periodic box of 2N along every wall axis holding phi and its mirror image (last three axes)."""
    for axis, b in zip((-3, -2, -1), boundary):
        if b == N:
            phi = np.concatenate([phi, np.flip(phi, axis)], axis=axis)
    return phi


def restrict(big, shape):
    return big[..., : shape[-3], : shape[-2], : shape[-1]]


# --------------------------------------------------------------------------- parameters and bad input


def test_boundary_normalised_and_carried_by_metadata():
    assert CHParams().boundary == (P, P, P) and CHParams().periodic
    assert CHParams(boundary=N).boundary == (N, N, N)
    film = CHParams(boundary=[P, P, N])
    assert film.boundary == (P, P, N) and film.neumann_axes == (False, False, True)
    assert CHParams(boundary="periodic,periodic,neumann") == film
    assert "boundary" not in CHParams().as_dict()  # periodic runs describe themselves as before
    assert film.as_dict()["boundary"] == "periodic,periodic,neumann"
    assert CHParams.from_metadata(film.as_dict()) == film
    assert CHParams.from_metadata({"boundary": b"neumann,periodic,neumann"}).boundary == (N, P, N)
    spectral = CHParams(scheme="spectral", dt=0.5, boundary=(N, P, P))
    assert CHParams.from_metadata(spectral.as_dict()) == spectral
    assert "boundary neumann,periodic,periodic" in spectral.describe()


@pytest.mark.parametrize(
    "value, match",
    [
        ("wall", "unknown boundary 'wall'"),
        ((P, N), "one entry per axis"),
        ("periodic,neumann", "one entry per axis"),
        ((P, P, P, P), "one entry per axis"),
        ((P, P, "dirichlet"), "unknown boundary 'dirichlet'"),
        (3, "boundary must be"),
    ],
)
def test_bad_boundary_one_line(value, match):
    with pytest.raises(ValueError, match=match) as e:
        CHParams(boundary=value)
    assert "\n" not in str(e.value)


# --------------------------------------------------------------------------- the explicit scheme


@pytest.mark.parametrize("boundary", WALL_MIXES)
def test_reference_equals_mirrored_periodic_box(boundary):
    """numpy reference, every mix of axes, 300 float64 steps: the restriction of the mirrored periodic run."""
    phi0 = field(SHAPE)
    got = reference.evolve(phi0, 300, CHParams(boundary=boundary))
    want = restrict(reference.evolve(mirrored(phi0, boundary), 300, CHParams()), SHAPE)
    assert np.abs(got - want).max() <= 1e-14
    assert np.abs(got - phi0).max() > 1e-3  # it did evolve
    assert abs(got.mean() - phi0.mean()) < 1e-15  # mass: no flux through the walls


def test_reference_mirror_ghosts_by_hand():
    """The Laplacian with walls at voxel 0 and N−1 of a 1D profile: the mirror ghost, written out."""
    a = np.zeros((5, 3, 3))
    a[:, :, :] = np.arange(5.0)[:, None, None] ** 2
    lap = reference.laplacian(a, walls=(True, False, False))
    np.testing.assert_array_equal(lap[:, 0, 0], [1 - 0, 0 + 4 - 2, 1 + 9 - 8, 4 + 16 - 18, 9 - 16])


@pytest.mark.parametrize("boundary", [(N, N, N), (P, P, N)])
def test_cpu_kernel_equals_mirrored_periodic_box(boundary):
    phi0 = field(SHAPE)
    got = ch_numba.evolve(phi0, 300, CHParams(boundary=boundary), backend="cpu")
    want = restrict(ch_numba.evolve(mirrored(phi0, boundary), 300, CHParams(), backend="cpu"), SHAPE)
    assert np.abs(got - want).max() <= 1e-14
    np.testing.assert_allclose(got, reference.evolve(phi0, 300, CHParams(boundary=boundary)), rtol=0, atol=1e-14)
    assert abs(got.mean() - phi0.mean()) < 1e-15


def test_cpu_kernel_walls_on_blocked_planes_and_batches():
    """A wide plane is cut into blocks of rows (halo rows recomputed at walls), and a batch's members are
    independent: both against the reference with mirror ghosts."""
    from ch_numba.kernels_cpu import block_rows

    p = CHParams(boundary=N)
    shape = (3, 12, 1100)
    assert block_rows(shape, 8) < shape[1]
    phi0 = field(shape)
    np.testing.assert_allclose(
        ch_numba.evolve(phi0, 5, p, backend="cpu"), reference.evolve(phi0, 5, p), rtol=0, atol=1e-14
    )
    batch = np.stack([field(SHAPE, seed=s) for s in (1, 2)])
    got = ch_numba.evolve(batch, 20, p, backend="cpu")
    for m in range(2):
        np.testing.assert_array_equal(got[m], ch_numba.evolve(batch[m], 20, p, backend="cpu"))


def test_cpu_kernel_walls_bitwise_across_threads_and_two_pass():
    """As for periodic boxes: the fused kernel with walls is bitwise independent of the chunking (threads) and
    equals the two-pass kernel bitwise (the x axis cut into 1, 2 or 7 chunks, one per thread)."""
    from ch_numba.kernels_cpu import kernels, ring_buffer
    from ch_numba.physics import coefficients

    walls = (True, True, True)
    fused, two_pass, _ = kernels(np.float64, walls)
    coef = coefficients(CHParams(boundary=N), np.float64)
    phi = field((7, 6, 5))
    out = {}
    for chunks in (1, 2, 7):
        out[chunks] = np.empty_like(phi)
        fused(phi, out[chunks], ring_buffer(phi.shape, np.float64, chunks), *coef)
    plain = np.empty_like(phi)
    two_pass(phi, plain, np.empty_like(phi), *coef)
    for chunks in (2, 7):
        np.testing.assert_array_equal(out[chunks], out[1])
    np.testing.assert_array_equal(plain, out[1])
    np.testing.assert_allclose(out[1], reference.step(phi, CHParams(boundary=N)), rtol=0, atol=1e-15)


@pytest.mark.cuda
@pytest.mark.parametrize("boundary, sim_steps", [((N, N, N), 20), pytest.param((N, P, N), 300, marks=pytest.mark.slow)])
def test_cuda_kernel_equals_mirrored_periodic_box(boundary, sim_steps):
    """Simulator: a tiny grid, 20 steps (~15 s), or the specification's 300 steps (slow: ~2 minutes); a real
    GPU: a bigger grid, 300 steps."""
    cuda_mod = pytest.importorskip("ch_numba.kernels_cuda", reason="numba-cuda not installed")
    sim = cuda_mod.is_simulator()
    if not sim and not cuda_mod.gpu_available():
        pytest.skip("no CUDA device and simulator disabled")
    shape, steps = ((3, 4, 3), sim_steps) if sim else ((40, 33, 48), 300)
    phi0 = field(shape)
    got = ch_numba.evolve(phi0, steps, CHParams(boundary=boundary), backend="cuda")
    want = restrict(ch_numba.evolve(mirrored(phi0, boundary), steps, CHParams(), backend="cuda"), shape)
    assert np.abs(got - want).max() <= 1e-14
    ref = ch_numba.evolve(phi0, steps, CHParams(boundary=boundary), backend="numpy" if sim else "cpu")
    assert np.abs(got - ref).max() <= 1e-12
    assert abs(got.mean() - phi0.mean()) < 1e-14


@pytest.mark.parametrize("boundary", [(N, N, N), (N, P, N)])
def test_free_energy_equals_mirrored_box_and_decreases(boundary):
    p = CHParams(boundary=boundary)
    phi = field(SHAPE)
    big = mirrored(phi, boundary)
    f = ch_numba.free_energy(phi, p)
    assert f == pytest.approx(ch_numba.free_energy(big, CHParams()), rel=1e-14, abs=0)
    assert f == pytest.approx(reference.free_energy(phi, p), rel=1e-14, abs=0)
    assert f < ch_numba.free_energy(phi, CHParams())  # no gradient energy across the walls
    later = ch_numba.evolve(phi, 300, p, backend="numpy")
    assert reference.free_energy(later, p) < reference.free_energy(phi, p)


# --------------------------------------------------------------------------- the spectral scheme


@pytest.mark.parametrize("symbol", ["stencil", "exact"])
def test_dct_symbol_is_the_mirrored_box_eigenvalue(symbol):
    """Walls on x: λ(m) of the DCT-II index m equals the 2N-periodic box's symbol at k = 2πm/(2N dx); for the
    stencil it is the eigenvalue of the Laplacian with mirror ghosts on the DCT-II basis vector."""
    n, dx = 6, 0.7
    lam = laplacian_symbol((n, 3, 3), dx, symbol, walls=(True, False, False))[:, 0, 0]
    periodic = laplacian_symbol((2 * n, 3, 3), dx, symbol)[:n, 0, 0]
    np.testing.assert_allclose(lam, periodic, rtol=1e-14, atol=1e-14)
    if symbol == "stencil":
        np.testing.assert_allclose(lam, -(4 / dx**2) * np.sin(np.pi * np.arange(n) / (2 * n)) ** 2, rtol=1e-14)
        i = np.arange(n) + 0.5
        for m in range(n):
            v = np.broadcast_to(np.cos(np.pi * m * i / n)[:, None, None], (n, 3, 3)).copy()
            lv = reference.laplacian(v, dx, walls=(True, False, False))
            np.testing.assert_allclose(lv, lam[m] * v, atol=1e-12)
    else:
        np.testing.assert_allclose(lam, -((np.pi * np.arange(n) / (n * dx)) ** 2), rtol=1e-14)


@pytest.mark.parametrize("boundary", [(N, N, N), (P, P, N), (N, P, P), (P, N, N)])
@pytest.mark.parametrize("symbol, order", [("stencil", 2), ("exact", 1)])
def test_spectral_equals_mirrored_periodic_box(boundary, symbol, order):
    p = CHParams(scheme="spectral", dt=0.5, symbol=symbol, order=order, boundary=boundary)
    phi0 = field(SHAPE)
    si = SpectralIntegrator(SHAPE, p, np.float64, fft="scipy")
    si.set(phi0)
    si.advance(40)
    big = mirrored(phi0, boundary)
    sb = SpectralIntegrator(big.shape, CHParams(scheme="spectral", dt=0.5, symbol=symbol, order=order), np.float64)
    sb.set(big)
    sb.advance(40)
    assert np.abs(si.phi - restrict(sb.phi, SHAPE)).max() <= 1e-12
    assert np.abs(si.phi - reference.spectral_evolve(phi0, 40, p)).max() <= 1e-12
    assert abs(si.phi.mean() - phi0.mean()) < 1e-14
    assert np.abs(si.phi - phi0).max() > 1e-3


def test_spectral_walls_float32_pyfftw_and_explicit_limit():
    """float32 states stay float32; pyFFTW's scipy interface gives the scipy result to round-off; a small
    dt with the stencil symbol approaches the explicit scheme with walls (the same semi-discrete system)."""
    pytest.importorskip("pyfftw")
    boundary = (P, P, N)
    p = CHParams(scheme="spectral", dt=0.5, boundary=boundary)
    phi0 = field(SHAPE)
    runs = {}
    for fft in ("scipy", "pyfftw"):
        si = SpectralIntegrator(SHAPE, p, np.float64, fft=fft)
        si.set(phi0)
        si.advance(10)
        runs[fft] = si.phi
    assert np.abs(runs["scipy"] - runs["pyfftw"]).max() < 1e-13
    out = ch_numba.evolve(phi0.astype(np.float32), 10, p)
    assert out.dtype == np.float32 and np.abs(out - runs["scipy"]).max() < 1e-5
    fine = CHParams(scheme="spectral", dt=1e-3, order=2, boundary=boundary)
    explicit = reference.evolve(phi0, 200, CHParams(boundary=boundary))
    spectral = ch_numba.evolve(phi0, 200, fine)
    change = np.abs(explicit - phi0).max()
    assert np.abs(spectral - explicit).max() < 1e-3 * change  # forward Euler's own O(dt) error dominates
    assert np.abs(ch_numba.evolve(phi0, 200, CHParams(scheme="spectral", dt=1e-3)) - explicit).max() > 1e-2 * change


@pytest.mark.parametrize("boundary", [N, (P, N, P)])
def test_spectral_walls_checkpoint_continues_bitwise(boundary):
    """state()/load_state() with walls (an all-wall box keeps a real cosine spectrum)."""
    p = CHParams(scheme="spectral", dt=0.5, boundary=boundary)
    a = ch_numba.Stepper(SHAPE, p, "cpu", np.float64)
    a.set(field(SHAPE))
    a.advance(5)
    saved = a.state()
    a.advance(5)
    b = ch_numba.Stepper(SHAPE, p, "cpu", np.float64)
    b.load_state(saved)
    b.advance(5)
    np.testing.assert_array_equal(a.get(), b.get())


# --------------------------------------------------------------------------- initial conditions


@pytest.mark.parametrize("kind", [k for k in initial.KINDS if k not in ("mesh", "npy", "h5")])
def test_every_generated_ic_kind_on_wall_axes(kind):
    shape = (12, 10, 8)
    a = initial.make(kind, shape, seed=3, boundary=(P, P, N))
    assert a.shape == shape and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    np.testing.assert_array_equal(a, initial.make(kind, shape, seed=3, boundary=(P, P, N)))  # seeded
    periodic = initial.make(kind, shape, seed=3)
    if kind in ("perlin", "slice"):  # the noise is not periodic along z (a centred sphere: test below)
        assert not np.array_equal(a, periodic)
    if kind in ("random", "layers", "slab"):  # no periodicity assumed: the same field
        np.testing.assert_array_equal(a, periodic)


def test_perlin_not_periodic_along_walls_only():
    from ch_numba.initial.noise import _noise_at

    shape, f = (16, 16, 16), 4
    n = initial.perlin_noise(shape, f, 5, boundary=(P, P, N))
    ix, iy, iz = (np.arange(k) for k in shape)
    # periodic axes: the noise one period further is the same
    np.testing.assert_allclose(_noise_at(shape, [f], 5, ix + 16, iy, iz, walls=(False, False, True)), n, atol=1e-12)
    # along the wall axis the lattice is not wrapped: the seam z = 15 → 0 is no closer than a random pair,
    # while neighbours inside are (correlation length 16/4 = 4 voxels)
    inside = np.abs(np.diff(n, axis=2)).mean()
    seam = np.abs(n[:, :, -1] - n[:, :, 0]).mean()
    assert seam > 2 * inside
    periodic = initial.perlin_noise(shape, f, 5)
    assert np.abs(periodic[:, :, -1] - periodic[:, :, 0]).mean() < 1.5 * np.abs(np.diff(periodic, axis=2)).mean()
    assert np.abs(n).max() < 1.5


def test_sphere_at_a_wall_is_not_wrapped():
    a = initial.sphere((16, 16, 16), radius=4, center=(8, 8, 0), boundary=(P, P, N))
    b = initial.sphere((16, 16, 16), radius=4, center=(8, 8, 0))
    assert a[8, 8, 0] == 1 and a[8, 8, 15] == 0 and b[8, 8, 15] == 1


# --------------------------------------------------------------------------- files and commands


def test_simulate_film_and_file_attributes(tmp_path, capsys):
    from ch_numba.cli import main

    out = tmp_path / "film.h5"
    args = ["simulate", str(out), "--size", "8,6,4", "--boundary", "periodic,periodic,neumann"]
    args += ["--frames", "3", "--steps-per-frame", "10", "--backend", "cpu", "--dtype", "float64", "--seed", "4"]
    assert main(args) == 0
    with h5py.File(out, "r") as f:
        assert int(f.attrs["format_version"]) == 2 and f.attrs["boundary"] == "periodic,periodic,neumann"
        assert list(f.attrs["shape"]) == [8, 6, 4] and f["phi"].shape == (1, 3, 8, 6, 4)
    with open_dataset(out) as ds:
        assert ds.params.boundary == (P, P, N)
        p = ds.params
        phi0 = initial.perlin((8, 6, 4), seed=4, boundary=p.boundary).astype(np.float64)
        want = ch_numba.evolve(phi0, 20, p, backend="numpy")
        np.testing.assert_allclose(ds.phi[0, 2], want.astype(np.float32), atol=1e-6)
        assert ds.free_energy[0, 2] == pytest.approx(reference.free_energy(want, p), rel=1e-6)
        assert "boundary periodic,periodic,neumann" in ds.summary()
    plain = tmp_path / "plain.h5"
    assert main(["simulate", str(plain), "--size", "6", "--frames", "1", "--backend", "numpy"]) == 0
    with h5py.File(plain, "r") as f:
        assert int(f.attrs["format_version"]) == 1 and "boundary" not in f.attrs
    # --ic h5 from the film: the same walls, or a one-line refusal
    capsys.readouterr()
    again = ["simulate", str(tmp_path / "b.h5"), "--ic", "h5", "--ic-file", str(out), "--frames", "1"]
    assert main(again) == 2
    assert "give --boundary periodic,periodic,neumann" in capsys.readouterr().err
    assert main([*again, "--boundary", "periodic,periodic,neumann", "--backend", "numpy"]) == 0


@pytest.mark.parametrize(
    "args, match",
    [
        (["--boundary", "wall"], "unknown boundary 'wall'"),
        (["--boundary", "periodic,neumann"], "one entry per axis"),
        (["--size", "8,8"], "grid edge N or three edges"),
        (["--size", "8,x,8"], "grid edge N or X,Y,Z"),
        (["--size", "8,8,2"], "--size must be >= 3"),
    ],
)
def test_bad_command_line_one_line(tmp_path, capsys, args, match):
    from ch_numba.cli import main

    try:
        code = main(["simulate", str(tmp_path / "x.h5"), "--frames", "1", *args])
    except SystemExit as e:  # argparse's own errors
        code = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: ") and match in err[-1]


def test_older_reader_refuses_and_newer_version_refused(tmp_path, monkeypatch):
    from ch_numba.cli import main
    from ch_numba.dataset import reader

    out = tmp_path / "walls.h5"
    assert (
        main(["simulate", str(out), "--size", "5", "--boundary", "neumann", "--frames", "1", "--backend", "numpy"]) == 0
    )
    monkeypatch.setattr(reader, "FORMAT_VERSION", 1)  # a reader from before walls
    with pytest.raises(ValueError, match="format version 2, newer than this package reads"):
        open_dataset(out)
    monkeypatch.undo()
    with h5py.File(out, "a") as f:
        f.attrs["format_version"] = 3
    with pytest.raises(ValueError, match="format version 3"):
        open_dataset(out)


def test_generate_with_walls_resumes_only_with_the_same_boundary(tmp_path):
    cfg = DatasetConfig(sequences=2, frames=2, steps_per_frame=5, size=(8, 6, 4), dtype="float64", storage="none")
    p = CHParams(boundary=(P, P, N))
    out = tmp_path / "d.h5"
    generate(out, cfg, p, backend="cpu", shard="0/2", progress=False)
    with pytest.raises(ValueError, match=r"different arguments \(boundary\)"):
        generate(out, cfg, CHParams(), backend="cpu", shard="1/2", progress=False)
    generate(out, cfg, p, backend="cpu", shard="1/2", progress=False)
    ch_numba.dataset.merge(out)
    with open_dataset(out) as ds:
        assert ds.params == p and ds.shape == (8, 6, 4) and int(ds.attrs["format_version"]) == 2
        spec = cfg.sequence_spec(1)
        ic = spec["ic"]
        phi0 = initial.perlin(
            (8, 6, 4), ic["frequency"], ic["seed"], ic["mean"], ic["amplitude"], boundary=p.boundary
        ).astype(np.float64)
        want = ch_numba.evolve(phi0, 5 * (spec["burn_in"] + 1), p, backend="numpy")
        np.testing.assert_allclose(ds.phi[1, 1], want.astype(np.float32), atol=1e-6)
        np.testing.assert_allclose(ds.phi_mean[1], ds.phi_mean[1, 0], atol=1e-12)


def test_dataset_config_sizes():
    assert DatasetConfig(sequences=1, size=(8, 8, 8)).size == 8  # a cube keeps its config (and data) unchanged
    assert DatasetConfig(sequences=1, size=(8, 6, 4)).shape == (8, 6, 4)
    assert '"size": [8, 6, 4]' in DatasetConfig(sequences=1, size=(8, 6, 4)).to_json()
    with pytest.raises(ValueError, match="--size must be >= 4 along every axis"):
        DatasetConfig(sequences=1, size=(8, 6, 3))
    with pytest.raises(ValueError, match="three edges"):
        DatasetConfig(sequences=1, size=(8, 6))
    from ch_numba.options import parse_size

    assert parse_size("64") == 64 and parse_size("64,64,64") == 64 and parse_size("64,64,16") == (64, 64, 16)
    with pytest.raises(argparse.ArgumentTypeError):
        parse_size("64,16")


def test_runtime_takes_walls_and_refuses_a_contradicting_boundary_in_one_line(tmp_path):
    """The surrogate pads by the boundary: a data set, an IC file or stated physics with walls is taken; an
    explicit --boundary that contradicts the IC data set's is refused in one line."""
    from ch_numba.cli import main
    from export.rollout import dataset_physics, initial_condition, rollout_boundary
    from export.runtime.guards import stated_physics

    out = tmp_path / "walls.h5"
    assert (
        main(["simulate", str(out), "--size", "8", "--boundary", "neumann", "--frames", "1", "--backend", "numpy"]) == 0
    )
    assert dataset_physics(out)["epsilon"] == CHParams().epsilon
    with ch_numba.open_dataset(out) as ds:
        first = ds.phi[0, 0]
    phi0, ic = initial_condition("h5", 8, ic_file=out)
    assert np.array_equal(phi0, first) and ic["kind"] == "h5"
    assert stated_physics(CHParams(boundary=N)) == stated_physics(CHParams())
    assert stated_physics({"epsilon": 3.0, "boundary": "periodic,neumann,periodic"}) == {"epsilon": 3.0}

    def args(boundary):
        return argparse.Namespace(ic="h5", ic_file=out, boundary=boundary)

    assert rollout_boundary(args(None)) == (N, N, N) and rollout_boundary(args("neumann")) == (N, N, N)
    for call in (
        lambda: rollout_boundary(args("periodic")),
        lambda: initial_condition("h5", 8, ic_file=out, boundary=P),
    ):
        with pytest.raises(ValueError, match="contradicts the initial condition's data set") as e:
            call()
        assert "\n" not in str(e.value)
    assert parse_boundary("periodic") == (P, P, P)


def test_repr_names_the_boundary_only_with_walls():
    """A periodic CHParams reads as before walls existed (the report's JSON stores it); with walls the repr
    names them and evaluates back to the same parameters."""
    periodic = CHParams(scheme="spectral", dt=0.4)
    assert "boundary" not in repr(periodic) and eval(repr(periodic)) == periodic
    film = CHParams(boundary="periodic,periodic,neumann")
    assert "boundary=('periodic', 'periodic', 'neumann')" in repr(film) and eval(repr(film)) == film


def test_a_wrong_number_of_axes_quotes_the_value_once():
    with pytest.raises(ValueError) as e:
        parse_boundary("periodic,neumann")
    assert str(e.value) == "boundary needs one entry per axis (x, y, z), got 2: 'periodic,neumann'"
