"""Initial conditions: Perlin equals the perlin-noise package, periodicity, analytic volumes, errors."""

import math

import numpy as np
import pytest
from perlin_noise import PerlinNoise

from ch_numba import initial


def package_noise(shape, frequency, seed):
    p = PerlinNoise(octaves=frequency, seed=seed)
    nx, ny, nz = shape
    return np.array([[[p.noise([i / nx, j / ny, k / nz], tile_sizes=[1, 1, 1]) for k in range(nz)]
                      for j in range(ny)] for i in range(nx)])


@pytest.mark.parametrize("frequency", [1, 2, 3, 4, 11])
@pytest.mark.parametrize("seed", [7, 123456])
def test_perlin_noise_equals_package(frequency, seed):
    shape = (5, 6, 7)
    np.testing.assert_allclose(initial.perlin_noise(shape, frequency, seed), package_noise(shape, frequency, seed),
                               rtol=0, atol=1e-9)


def test_summed_frequencies_equal_sum_of_package_noises():
    shape = (4, 6, 5)
    expected = package_noise(shape, 2, 9) + package_noise(shape, 3, 9)
    np.testing.assert_allclose(initial.perlin_noise(shape, [2, 3], 9), expected, atol=1e-9)


def test_perlin_is_exactly_periodic():
    """On a grid of 2N with frequency 2f, the lattice repeats after N voxels: the field is N-periodic
    exactly, i.e. the second half equals the first along every axis."""
    n = initial.perlin_noise((12, 12, 12), 4, 5)
    # tile-periodicity: the noise wraps smoothly; the package's own value at coordinate 1 (= 0) matches
    p = PerlinNoise(octaves=4, seed=5)
    assert p.noise([1.0, 0.25, 0.5], tile_sizes=[1, 1, 1]) == pytest.approx(n[0, 3, 6], abs=1e-12)
    # smooth across the periodic boundary: the jump at the wrap is no bigger than inside
    jump_wrap = np.abs(n[0] - n[-1]).max()
    jump_inside = np.abs(np.diff(n, axis=0)).max()
    assert jump_wrap <= 1.0001 * jump_inside


def test_perlin_field_range_mean_and_determinism():
    a = initial.perlin((24, 24, 24), frequency=3, seed=4, mean=0.45, amplitude=0.1)
    assert a.dtype == np.float32 and a.shape == (24, 24, 24)
    assert abs(np.abs(a - 0.45).max() - 0.1) < 1e-6  # scaled to max |n| = amplitude
    assert abs(a.mean() - 0.45) < 0.03
    np.testing.assert_array_equal(a, initial.perlin((24, 24, 24), frequency=3, seed=4, mean=0.45, amplitude=0.1))
    assert np.abs(a - initial.perlin((24, 24, 24), frequency=3, seed=5, mean=0.45, amplitude=0.1)).max() > 0.01


def test_perlin_64_is_fast():
    import time

    t = time.perf_counter()
    initial.perlin_noise((64, 64, 64), 4, 7)
    assert time.perf_counter() - t < 5.0  # generous bound (~0.04 s measured); the package itself takes ~6 s


def test_sphere_volume_and_layers_fraction():
    s = initial.sphere((40, 40, 40), radius=10)
    assert s.sum() == pytest.approx(4 / 3 * math.pi * 10**3, rel=0.02)
    smooth = initial.sphere((40, 40, 40), radius=10, width=1.5)
    # Fermi profile ½(1 − tanh((r−R)/w)): Sommerfeld expansion gives 4π(R³/3 + π² w² R / 12)
    assert smooth.sum() == pytest.approx(4 * math.pi * (10**3 / 3 + math.pi**2 * 1.5**2 * 10 / 12), rel=0.005)
    assert 0 < smooth.min() < 0.01 and smooth.max() > 0.99
    lay = initial.layers((30, 8, 8), n_layers=3, axis=0, mean=0.4)
    assert lay.mean() == pytest.approx(0.4, abs=1 / 30)
    assert np.all(lay[:, 0, 0] == lay[:, 5, 7])  # slabs across axis 0
    assert (np.diff(lay[:, 0, 0]) != 0).sum() == 6  # 3 slabs, 6 interfaces


def test_random_and_slice():
    r = initial.random((16, 16, 16), seed=3, mean=0.5, amplitude=0.1)
    assert abs(r.mean() - 0.5) < 0.01 and np.abs(r - 0.5).max() <= 0.1 + 1e-7
    # white noise: neighbouring voxels uncorrelated
    c = np.corrcoef(r[:-1].ravel(), r[1:].ravel())[0, 1]
    assert abs(c) < 0.1
    s = initial.slice((16, 16, 16), seed=3, axis=1)
    other = np.delete(s, 8, axis=1)
    assert np.all(other == np.float32(0.5)) and np.abs(s[:, 8] - 0.5).max() > 0.05


def _save(m, path):
    m.export(path)
    return path


@pytest.mark.parametrize("kind", ["torus", "sphere"])
def test_mesh_voxelisation_volume(tmp_path, kind):
    trimesh = pytest.importorskip("trimesh")
    if kind == "torus":
        m = trimesh.creation.torus(major_radius=2.0, minor_radius=0.8, major_sections=96, minor_sections=48)
    else:
        m = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    path = _save(m, tmp_path / f"{kind}.stl")
    n, padding = 48, 0.1
    phi = initial.mesh(path, (n, n, n), padding=padding)
    extent = m.bounds[1] - m.bounds[0]
    scale = np.min(n * (1 - 2 * padding) / extent)
    assert phi.sum() == pytest.approx(m.volume * scale**3, rel=0.03)
    margin = int(np.floor(n * padding)) - 1
    assert phi[:margin].sum() == 0 and phi[-margin:].sum() == 0  # nothing outside the bounding box
    if kind == "torus":
        assert phi[n // 2, n // 2, n // 2] == 0  # the hole


def test_mesh_errors(tmp_path):
    trimesh = pytest.importorskip("trimesh")
    with pytest.raises(ValueError, match="not found"):
        initial.mesh(tmp_path / "none.stl", (8, 8, 8))
    open_box = trimesh.creation.box()
    open_box.update_faces(np.arange(len(open_box.faces)) > 0)  # drop a face
    path = _save(open_box, tmp_path / "open.stl")
    with pytest.raises(ValueError, match="not closed"):
        initial.mesh(path, (8, 8, 8))
    junk = tmp_path / "junk.stl"
    junk.write_bytes(b"\x01\x02garbage")
    with pytest.raises(ValueError, match="junk.stl"):
        initial.mesh(junk, (8, 8, 8))


def test_npy_and_errors(tmp_path):
    a = np.linspace(0, 1, 60).reshape(3, 4, 5)
    np.save(tmp_path / "a.npy", a)
    np.testing.assert_array_equal(initial.make("npy", None, path=tmp_path / "a.npy"), a.astype(np.float32))
    np.save(tmp_path / "flat.npy", np.zeros(10))
    with pytest.raises(ValueError, match="expected a 3D array"):
        initial.from_npy(tmp_path / "flat.npy")
    with pytest.raises(ValueError, match="unknown initial condition 'cube'"):
        initial.make("cube", (4, 4, 4))
    with pytest.raises(ValueError, match="seed must be a positive integer"):
        initial.perlin((4, 4, 4), seed=0)
    with pytest.raises(ValueError, match="frequency must be a positive integer"):
        initial.perlin_noise((4, 4, 4), frequency=2.5)
    with pytest.raises(ValueError, match="shape must be"):
        initial.perlin((4, 4), seed=1)
