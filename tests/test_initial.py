"""Initial conditions: Perlin equals the perlin-noise package, periodicity, analytic volumes, files, errors."""

import math

import h5py
import numpy as np
import pytest
import trimesh
from perlin_noise import PerlinNoise

from ch_numba import initial

PACKAGE_ATOL = 1e-9  # vectorised Perlin vs the package's pure-Python noise()
VOLUME_RTOL = 0.03  # voxelised mesh / sphere volume vs the analytic volume at ~48³


def package_noise(shape, frequency, seed):
    """The specification: the package's own noise() at every voxel (slow, small grids only)."""
    p = PerlinNoise(octaves=frequency, seed=seed)
    nx, ny, nz = shape
    return np.array(
        [
            [[p.noise([i / nx, j / ny, k / nz], tile_sizes=[1, 1, 1]) for k in range(nz)] for j in range(ny)]
            for i in range(nx)
        ]
    )


# --------------------------------------------------------------------------- Perlin noise


@pytest.mark.parametrize("frequency", [1, 2, 3, 4, 11])
@pytest.mark.parametrize("seed", [7, 123456])
def test_perlin_noise_equals_package(frequency, seed):
    shape = (5, 6, 7)
    n = initial.perlin_noise(shape, frequency, seed)
    assert n.dtype == np.float64 and n.shape == shape
    np.testing.assert_allclose(n, package_noise(shape, frequency, seed), rtol=0, atol=PACKAGE_ATOL)


def test_summed_frequencies_equal_sum_of_package_noises():
    shape = (4, 6, 5)
    expected = package_noise(shape, 2, 9) + package_noise(shape, 3, 9)
    np.testing.assert_allclose(initial.perlin_noise(shape, [2, 3], 9), expected, rtol=0, atol=PACKAGE_ATOL)
    np.testing.assert_allclose(initial.perlin_noise(shape, np.array([3, 2]), 9), expected, rtol=0, atol=PACKAGE_ATOL)


def test_perlin_64_matches_package_at_random_voxels():
    shape = (64, 64, 64)
    n = initial.perlin_noise(shape, 4, 7)  # ~30 ms; the package itself takes ~7 s (timed in no test)
    p = PerlinNoise(octaves=4, seed=7)
    for i, j, k in np.random.default_rng(0).integers(0, 64, size=(50, 3)):
        assert n[i, j, k] == pytest.approx(p.noise([i / 64, j / 64, k / 64], tile_sizes=[1, 1, 1]), abs=PACKAGE_ATOL)
    assert 0.1 < np.abs(n).max() < 1.0 and abs(n.mean()) < 0.05


def test_perlin_grid_samples_one_fixed_periodic_function():
    """The grid samples a fixed function of u = (i/X, j/Y, k/Z) ∈ [0, 1)³ (so a finer grid at the same
    frequency refines it, and the correlation length in voxels is N/f) ..."""
    coarse = initial.perlin_noise((6, 8, 10), 3, 11)
    fine = initial.perlin_noise((12, 16, 20), 3, 11)
    np.testing.assert_array_equal(fine[::2, ::2, ::2], coarse)
    # ... which is periodic with period 1 in u: the package's value one period further is the same.
    p = PerlinNoise(octaves=3, seed=11)
    assert p.noise([1 + 2 / 6, 2 + 3 / 8, 1 + 7 / 10], tile_sizes=[1, 1, 1]) == pytest.approx(
        coarse[2, 3, 7], abs=PACKAGE_ATOL
    )


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_perlin_is_smooth_across_the_periodic_boundary(axis):
    """First and second differences across the wrap (N−1 → 0) are no larger than inside the box;
    untiled noise (the package without tile_sizes) fails this."""
    n = np.moveaxis(initial.perlin_noise((40, 40, 40), 3, 5), axis, 0)
    wrapped = np.concatenate([n, n[:2]], axis=0)  # planes ..., N-1, 0, 1
    d1, d2 = np.diff(wrapped, 1, axis=0), np.diff(wrapped, 2, axis=0)
    assert np.abs(d1[39]).max() <= np.abs(d1[:39]).max()
    assert np.abs(d2[38:]).max() <= np.abs(d2[:38]).max()
    # control: without tiling the noise jumps at the box edge
    p = PerlinNoise(octaves=3, seed=5)
    line = np.array([p.noise([i / 40, 0.3, 0.6]) for i in range(41)])  # u = 0 .. 1 inclusive
    assert abs(line[40] - line[0]) > 2 * np.abs(np.diff(line[:40])).max()


def test_perlin_noise_determinism_and_seeds():
    a = initial.perlin_noise((10, 10, 10), 2, 3)
    np.testing.assert_array_equal(a, initial.perlin_noise((10, 10, 10), 2, np.int64(3)))
    assert np.abs(a - initial.perlin_noise((10, 10, 10), 2, 4)).max() > 0.05


def test_perlin_field_scaling_range_and_mean():
    n = initial.perlin_noise((24, 24, 24), 3, 4)
    a = initial.perlin((24, 24, 24), frequency=3, seed=4, mean=0.45, amplitude=0.1)
    assert a.dtype == np.float32 and a.shape == (24, 24, 24)
    np.testing.assert_allclose(a, 0.45 + 0.1 * n / np.abs(n).max(), atol=1e-7)
    assert np.abs(a - 0.45).max() == pytest.approx(0.1, abs=1e-6)
    assert abs(a.mean() - 0.45) < 0.02
    np.testing.assert_array_equal(a, initial.perlin((24, 24, 24), frequency=3, seed=4, mean=0.45, amplitude=0.1))
    assert np.abs(a - initial.perlin((24, 24, 24), frequency=3, seed=5, mean=0.45, amplitude=0.1)).max() > 0.02
    clipped = initial.perlin((16, 16, 16), frequency=2, seed=4, mean=0.9, amplitude=0.5)
    assert clipped.max() == 1.0 and clipped.min() >= 0.4 - 1e-6


# --------------------------------------------------------------------------- other fields


def test_random_is_uncorrelated_uniform_noise():
    r = initial.random((32, 32, 32), seed=3, mean=0.5, amplitude=0.1)
    assert r.dtype == np.float32 and np.abs(r - 0.5).max() <= 0.1 + 1e-7
    assert r.mean() == pytest.approx(0.5, abs=0.002)
    assert r.var() == pytest.approx(0.1**2 / 3, rel=0.03)  # variance of U(-A, A)
    neighbours = np.corrcoef(r[:-1].ravel(), r[1:].ravel())[0, 1]
    assert abs(neighbours) < 0.03
    smooth = initial.perlin((32, 32, 32), frequency=4, seed=3)  # why Perlin: correlated over N/f voxels
    assert np.corrcoef(smooth[:-1].ravel(), smooth[1:].ravel())[0, 1] > 0.9
    np.testing.assert_array_equal(r, initial.random((32, 32, 32), seed=3, mean=0.5, amplitude=0.1))
    assert not np.array_equal(r, initial.random((32, 32, 32), seed=4, mean=0.5, amplitude=0.1))


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_slice_perturbs_only_the_central_plane(axis):
    shape = (12, 14, 16)
    s = initial.slice(shape, seed=3, mean=0.4, amplitude=0.05, axis=axis, frequency=3)
    centre = shape[axis] // 2
    plane = np.take(s, centre, axis=axis)
    assert np.all(np.delete(s, centre, axis=axis) == np.float32(0.4))
    n = np.take(initial.perlin_noise(shape, 3, 3), centre, axis=axis)
    np.testing.assert_allclose(plane, 0.4 + 0.05 * n / np.abs(n).max(), atol=1e-7)


def test_sphere_volumes_and_periodic_centre():
    s = initial.sphere((40, 40, 40), radius=10)
    assert set(np.unique(s)) == {0.0, 1.0}
    assert s.sum() == pytest.approx(4 / 3 * math.pi * 10**3, rel=0.01)
    assert s[20, 20, 20] == 1 and s[20, 20, 31] == 0 and s[20, 20, 29] == 1
    smooth = initial.sphere((40, 40, 40), radius=10, width=1.5)
    # Fermi profile ½(1 − tanh((r−R)/w)): the Sommerfeld expansion is exact for ∫r²: 4π(R³/3 + π²w²R/12)
    assert smooth.sum() == pytest.approx(4 * math.pi * (10**3 / 3 + math.pi**2 * 1.5**2 * 10 / 12), rel=1e-3)
    # periodic distance: a sphere centred on a box corner is the centred one rolled by N/2
    corner = initial.sphere((40, 40, 40), radius=10, center=(0, 0, 0), width=1.5)
    np.testing.assert_allclose(corner, np.roll(smooth, (-20, -20, -20), axis=(0, 1, 2)), atol=1e-6)
    inverted = initial.sphere((20, 20, 20), inside=0.2, outside=0.8)
    assert inverted[10, 10, 10] == np.float32(0.2) and inverted[0, 0, 0] == np.float32(0.8)
    np.testing.assert_array_equal(initial.sphere((20, 24, 28)), initial.sphere((20, 24, 28), 5, (10, 12, 14)))


def test_layers_fraction_and_geometry():
    lay = initial.layers((30, 8, 8), n_layers=3, axis=0, mean=0.4)
    assert lay.mean() == pytest.approx(0.4, abs=1e-7)  # 3 slabs of exactly 4 of 10 voxels
    np.testing.assert_array_equal(lay[:, 0, 0], np.tile([0, 0, 0, 1, 1, 1, 1, 0, 0, 0], 3))
    assert np.all(lay == lay[:, :1, :1])  # constant in the planes normal to the axis
    smooth = initial.slab((8, 60, 8), n_layers=2, axis=1, mean=0.4, width=1.0)
    assert smooth.mean() == pytest.approx(0.4, abs=1e-4)  # tanh profile is antisymmetric about ½
    assert np.all(smooth == smooth[:1, :, :1])
    assert initial.slab is initial.layers


# --------------------------------------------------------------------------- meshes


def _inside_torus(shape, major, minor, padding):
    """Analytic signed distance (grid units) to the torus, placed in the box as mesh() documents it."""
    n = np.array(shape, float)
    scale = np.min(n * (1 - 2 * padding) / np.array([2 * (major + minor), 2 * (major + minor), 2 * minor]))
    x, y, z = np.meshgrid(*[(np.arange(k) + 0.5 - k / 2) / scale for k in shape], indexing="ij")
    return (np.hypot(np.hypot(x, y) - major, z) - minor) * scale, scale


def test_mesh_torus_matches_analytic_torus(tmp_path):
    major, minor, n, padding = 2.0, 0.8, 48, 0.1
    m = trimesh.creation.torus(major_radius=major, minor_radius=minor, major_sections=96, minor_sections=48)
    m.export(tmp_path / "torus.stl")
    phi = initial.mesh(tmp_path / "torus.stl", (n, n, n), padding=padding)
    distance, scale = _inside_torus((n, n, n), major, minor, padding)
    assert phi.dtype == np.float32 and set(np.unique(phi)) == {0.0, 1.0}
    assert phi.sum() == pytest.approx(2 * math.pi**2 * major * minor**2 * scale**3, rel=VOLUME_RTOL)
    # voxel by voxel: only centres within 0.1 voxel of the surface may disagree (polygon chords < 0.02)
    far = np.abs(distance) > 0.1
    np.testing.assert_array_equal(phi[far], (distance[far] < 0).astype(np.float32))
    assert phi[n // 2, n // 2, n // 2] == 0  # the hole


@pytest.mark.parametrize("suffix", ["stl", "obj", "ply"])
def test_mesh_sphere_volume_and_bounding_box(tmp_path, suffix):
    m = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    m.export(tmp_path / f"ball.{suffix}")
    shape, padding = (40, 48, 56), 0.1
    phi = initial.mesh(tmp_path / f"ball.{suffix}", shape, padding=padding, inside=0.9, outside=0.1)
    radius = 40 * (1 - 2 * padding) / 2  # the smallest box edge sets the scale
    inside = phi == np.float32(0.9)
    assert np.all(inside | (phi == np.float32(0.1)))
    assert inside.sum() == pytest.approx(4 / 3 * math.pi * radius**3, rel=VOLUME_RTOL)
    # nothing outside the bounding box [N/2 − R, N/2 + R] on any axis
    for axis, k in enumerate(shape):
        centres = np.arange(k) + 0.5
        outside_box = (centres < k / 2 - radius) | (centres > k / 2 + radius)
        assert not inside.take(np.nonzero(outside_box)[0], axis=axis).any()
    np.testing.assert_array_equal(inside, initial.sphere(shape, radius=radius * 0.999) > 0.5)  # up to the rim
    # the icosphere is inscribed: every voxel of the analytic ball shrunk by a chord is inside
    assert np.all(inside[initial.sphere(shape, radius=radius * 0.99) > 0.5])


def test_mesh_rays_through_edges_and_vertices(tmp_path):
    """A cube mapped to [2, 18]³ in a 20³ box: its face diagonals pass exactly through column centres
    (i + ½, i + ½); the jittered rays still count each crossing once: exactly 16³ voxels."""
    trimesh.creation.box(extents=(1, 1, 1)).export(tmp_path / "cube.stl")
    phi = initial.mesh(tmp_path / "cube.stl", (20, 20, 20), padding=0.1)
    expected = np.zeros((20, 20, 20), np.float32)
    expected[2:18, 2:18, 2:18] = 1
    np.testing.assert_array_equal(phi, expected)


def test_mesh_errors(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        initial.mesh(tmp_path / "none.stl", (8, 8, 8))
    open_box = trimesh.creation.box()
    open_box.update_faces(np.arange(len(open_box.faces)) > 0)  # drop a face
    open_box.export(tmp_path / "open.stl")
    with pytest.raises(ValueError, match="not watertight"):
        initial.mesh(tmp_path / "open.stl", (8, 8, 8))
    for name in ("junk.stl", "junk.ply"):
        (tmp_path / name).write_bytes(b"\x01\x02garbage")
        with pytest.raises(ValueError, match=f"cannot read mesh .*{name}") as info:
            initial.mesh(tmp_path / name, (8, 8, 8))
        assert "\n" not in str(info.value)
    trimesh.creation.box().export(tmp_path / "cube.stl")
    with pytest.raises(ValueError, match="padding"):
        initial.mesh(tmp_path / "cube.stl", (8, 8, 8), padding=0.5)


# --------------------------------------------------------------------------- user arrays


def test_npy(tmp_path):
    a = np.linspace(0, 1, 60).reshape(3, 4, 5)
    np.save(tmp_path / "a.npy", a)
    loaded = initial.from_npy(tmp_path / "a.npy")
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, a.astype(np.float32))
    np.save(tmp_path / "flat.npy", np.zeros(10))
    with pytest.raises(ValueError, match="expected a 3D array"):
        initial.from_npy(tmp_path / "flat.npy")
    for shape in [(0, 0, 0), (0, 4, 4)]:
        np.save(tmp_path / "empty.npy", np.zeros(shape))
        with pytest.raises(ValueError, match=r"the array is empty \(shape \(0,") as e:
            initial.from_npy(tmp_path / "empty.npy")
        assert "zero-size" not in str(e.value)
    np.save(tmp_path / "nan.npy", np.full((2, 2, 2), np.nan))
    with pytest.raises(ValueError, match="NaN"):
        initial.from_npy(tmp_path / "nan.npy")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match="cannot read .* it has no NumPy header") as e:
        initial.from_npy(tmp_path / "junk.npy")
    assert "pickle" not in str(e.value)  # numpy's own message blames pickled data
    np.savez(tmp_path / "two.npz", a=np.zeros((2, 2, 2)), b=np.ones(2))
    with pytest.raises(ValueError, match="archive of several arrays"):
        initial.from_npy(tmp_path / "two.npz")
    with pytest.raises(ValueError, match="not found"):
        initial.from_npy(tmp_path / "none.npy")
    with pytest.raises(ValueError, match="is a folder, not a file"):
        initial.from_npy(tmp_path)


def test_the_random_and_slice_kinds_leave_the_builtins_alone():
    """``initial.random`` and ``initial.slice`` are public names of IC kinds, served without module globals of
    those names (inside ch_numba/initial/, ``slice`` is the builtin)."""
    assert "slice" not in vars(initial) and "random" not in vars(initial)
    assert initial.slice is initial.perturbed_plane and initial.random is initial.white_noise
    from ch_numba.initial import random as kind_random
    from ch_numba.initial import slice as kind_slice

    shape = (6, 7, 8)
    np.testing.assert_array_equal(kind_slice(shape, seed=2, axis=1), initial.make("slice", shape, seed=2, axis=1))
    np.testing.assert_array_equal(kind_random(shape, seed=2), initial.make("random", shape, seed=2))
    assert {"random", "slice"} <= set(dir(initial))


def test_from_dataset(tmp_path):
    from ch_numba.dataset import DatasetConfig, generate, open_dataset

    path = tmp_path / "d.h5"
    config = DatasetConfig(sequences=2, frames=3, steps_per_frame=1, size=4, val_fraction=0.5, seed=1, frequencies=(2,))
    generate(path, config, backend="numpy", progress=False)
    with open_dataset(path) as ds:
        phi = ds.phi[:]
    np.testing.assert_array_equal(initial.from_dataset(path, sequence=1, frame=2), phi[1, 2])
    np.testing.assert_array_equal(initial.from_dataset(path, sequence=-1, frame=-1), phi[1, 2])
    np.testing.assert_array_equal(initial.make("h5", None, path=path, frame=1), phi[0, 1])
    with pytest.raises(ValueError, match="frame 3 out of range"):
        initial.from_dataset(path, frame=3)
    with pytest.raises(ValueError, match="sequence 2 out of range"):
        initial.from_dataset(path, sequence=2)
    (tmp_path / "junk.h5").write_bytes(b"junk")
    with pytest.raises(ValueError, match="junk.h5 is not a readable HDF5 file"):
        initial.from_dataset(tmp_path / "junk.h5")
    with pytest.raises(ValueError, match="not found"):
        initial.from_dataset(tmp_path / "none.h5")


def test_from_dataset_refuses_a_file_that_is_not_a_ch3d_data_set(tmp_path):
    """--ic h5 refuses what `info` and the rollouts refuse, with open_dataset's one line: here an HDF5 file
    holding only a 5-D phi (it used to be read)."""
    from ch_numba.dataset import open_dataset

    phi = np.random.default_rng(1).random((2, 3, 4, 5, 6)).astype(np.float32)
    for name, array in (("plain.h5", "phi"), ("other.h5", "u")):
        with h5py.File(tmp_path / name, "w") as f:
            f.create_dataset(array, data=phi)
        with pytest.raises(ValueError) as refused:
            open_dataset(tmp_path / name)
        assert "is not a ch3d data set (root attribute format=None" in str(refused.value)
        for read in (lambda p: initial.from_dataset(p), lambda p: initial.make("h5", None, path=p)):
            with pytest.raises(ValueError) as exc:
                read(tmp_path / name)
            assert str(exc.value) == str(refused.value)


# --------------------------------------------------------------------------- dispatcher and errors


def test_make_dispatches_to_the_functions(tmp_path):
    shape = (12, 12, 12)
    common = {"mean": 0.45, "amplitude": 0.05, "frequency": 3}  # what the CLI passes to every kind
    np.testing.assert_array_equal(
        initial.make("perlin", shape, seed=5, **common), initial.perlin(shape, 3, 5, 0.45, 0.05)
    )
    np.testing.assert_array_equal(initial.make("random", shape, seed=5, **common), initial.random(shape, 5, 0.45, 0.05))
    np.testing.assert_array_equal(
        initial.make("slice", shape, seed=5, axis=2, **common), initial.slice(shape, 5, 0.45, 0.05, axis=2, frequency=3)
    )
    np.testing.assert_array_equal(initial.make("sphere", shape, **common, radius=3), initial.sphere(shape, 3))
    np.testing.assert_array_equal(initial.make("layers", shape, **common), initial.layers(shape, mean=0.45))
    np.testing.assert_array_equal(initial.make("slab", shape, n_layers=3), initial.layers(shape, 3))
    trimesh.creation.icosphere().export(tmp_path / "ball.stl")
    np.testing.assert_array_equal(
        initial.make("mesh", shape, path=tmp_path / "ball.stl", padding=0.2),
        initial.mesh(tmp_path / "ball.stl", shape, padding=0.2),
    )
    assert set(initial.KINDS) == {"perlin", "sphere", "layers", "slab", "random", "slice", "mesh", "npy", "h5"}


def test_errors():
    with pytest.raises(ValueError, match="unknown initial condition 'cube'; choose one of perlin, sphere"):
        initial.make("cube", (4, 4, 4))
    with pytest.raises(ValueError, match="unknown option.*radii"):
        initial.make("sphere", (4, 4, 4), radii=2)
    with pytest.raises(ValueError, match="needs a file path"):
        initial.make("mesh", (4, 4, 4))
    for seed in (0, -3, 1.5, True, 2**63):
        with pytest.raises(ValueError, match="seed must be a positive integer"):
            initial.perlin((4, 4, 4), seed=seed)
    with pytest.raises(ValueError, match="seed must be a positive integer"):
        initial.random((4, 4, 4), seed=0)
    for frequency in (0, 2.5, [], [2, 0], "4"):
        with pytest.raises(ValueError, match="frequency"):
            initial.perlin_noise((4, 4, 4), frequency=frequency)
    for shape in ((4, 4), (4, 4, 0), (4, 4, 4.5), 4, (4, 4, 4, 4)):
        with pytest.raises(ValueError, match="shape must be"):
            initial.perlin(shape, seed=1)
    with pytest.raises(ValueError, match="mean must be in"):
        initial.perlin((4, 4, 4), mean=1.5)
    with pytest.raises(ValueError, match="axis must be 0, 1 or 2"):
        initial.slice((4, 4, 4), axis=3)
    with pytest.raises(ValueError, match="radius must be > 0"):
        initial.sphere((4, 4, 4), radius=-1)
    with pytest.raises(ValueError, match="width must be > 0"):
        initial.sphere((4, 4, 4), width=0)
    with pytest.raises(ValueError, match="n_layers must be at most"):
        initial.layers((8, 4, 4), n_layers=5)
