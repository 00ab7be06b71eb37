"""The data-set layout explains itself: HDF5 dimension scales name the axes (sequence, frame, x, y, z;
time a coordinate of frame) in every file that carries the layout (generate's parts and merged file,
simulate, the surrogate's rollouts), so netCDF readers (xarray + h5netcdf) show them; files written
before the scales read as before."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from ch_numba import cli
from ch_numba.dataset import DIMS, DatasetConfig, generate, merge, open_dataset, part_path, parts_dir
from ch_numba.params import CHParams

SMALL = dict(sequences=3, frames=3, steps_per_frame=10, size=6, burn_in_frames=1, val_fraction=0.34, seed=3)
ARRAYS = ("phi", "seed", "ic", "burn_in", "split", "backend", "phi_mean", "free_energy", "time", "t0")
PARAMS = CHParams(dx=2.0, dt=0.01)  # dx ≠ 1: the x, y, z coordinates are i·dx


def _read(path):
    with h5py.File(path, "r") as f:
        return {name: f[name][...] for name in ARRAYS}


def _scales(path):
    """{array: (dimension names of its axes)} read with plain h5py."""
    with h5py.File(path, "r") as f:
        return {name: tuple(f[name].dims[a][0].name.lstrip("/") for a in range(f[name].ndim)) for name in ARRAYS}


def _assert_self_explaining(path, n_seq, frames, shape, dx):
    """Named dimensions and coordinate values, with h5py and (where installed) with xarray."""
    expected = {
        "phi": DIMS,
        "phi_mean": DIMS[:2],
        "free_energy": DIMS[:2],
        "time": ("frame",),
        **{name: ("sequence",) for name in ("seed", "ic", "burn_in", "split", "backend", "t0")},
    }
    assert _scales(path) == expected
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    data = _read(path)
    with xr.open_dataset(path, engine="h5netcdf") as ds:  # no phony_dims= needed
        assert ds["phi"].dims == ("sequence", "frame", "x", "y", "z")
        assert dict(ds.sizes) == {"sequence": n_seq, "frame": frames, "x": shape[0], "y": shape[1], "z": shape[2]}
        assert {"sequence", "frame", "x", "y", "z", "time"} <= set(ds.coords)
        assert "time" not in ds.data_vars and ds["time"].dims == ("frame",)
        np.testing.assert_array_equal(ds["sequence"], np.arange(n_seq))
        np.testing.assert_array_equal(ds["frame"], np.arange(frames))
        for axis, n in zip("xyz", shape):
            np.testing.assert_array_equal(ds[axis], np.arange(n) * dx)
        np.testing.assert_array_equal(ds["time"], data["time"])
        np.testing.assert_array_equal(ds["phi"].values, data["phi"])
        np.testing.assert_array_equal(ds["free_energy"].values, data["free_energy"])
        assert ds["free_energy"].dims == ("sequence", "frame") and ds["t0"].dims == ("sequence",)
        assert list(ds["split"].values) == [s.decode() for s in data["split"]]
        assert ds.attrs["format"] == "ch3d-dataset" and ds.attrs["dx"] == dx


def test_generated_parts_and_merged_file_name_their_dimensions(tmp_path):
    out = tmp_path / "d.h5"
    cfg = DatasetConfig(**SMALL)
    for k in (0, 1):
        generate(out, cfg, PARAMS, backend="cpu", shard=f"{k}/2", progress=False)
    _assert_self_explaining(part_path(parts_dir(out), 1), 1, 3, (6, 6, 6), 2.0)
    merge(out)
    _assert_self_explaining(out, 3, 3, (6, 6, 6), 2.0)
    with open_dataset(out) as ds:
        np.testing.assert_allclose(ds.time, [0.0, 0.1, 0.2], rtol=1e-15)  # 10 steps x dt 0.01


def test_simulate_writes_the_same_layout(tmp_path):
    out = tmp_path / "run.h5"
    assert (
        cli.main(
            [
                "simulate",
                str(out),
                "--size",
                "6",
                "--frames",
                "2",
                "--steps-per-frame",
                "5",
                "--dx",
                "2",
                "--dt",
                "0.01",
                "--backend",
                "cpu",
            ]
        )
        == 0
    )
    _assert_self_explaining(out, 1, 2, (6, 6, 6), 2.0)


class _Shift:
    """A fake surrogate runner (export.runtime.Rollout's interface): each network step rolls φ by one cell
    along x; downscale factor 2 (every 2nd voxel)."""

    factor, kernel, backend, path = 2, 3, "fake", Path("shift.onnx")
    metadata = {"epsilon": 1.5, "mobility": 1.0, "W": 1.0, "dx": 1.0, "dt": 4e-3, "steps_per_frame": 200}

    def downscale(self, phi):
        return np.ascontiguousarray(phi[::2, ::2, ::2])

    def upscale(self, phi):
        return np.repeat(np.repeat(np.repeat(phi, 2, 0), 2, 1), 2, 2)

    def rollout(self, phi0, steps, every=1):
        phi = np.asarray(phi0, np.float32)
        for step in range(1, steps + 1):
            phi = np.roll(phi, 1, axis=0)
            if step % every == 0:
                yield phi


def test_rollout_files_use_the_same_layout_writer(tmp_path):
    from export.rollout import RolloutConfig, write_rollout

    rng = np.random.default_rng(0)
    phi0 = (0.5 + 0.1 * rng.standard_normal((8, 10, 12))).astype(np.float32)
    out = write_rollout(
        _Shift(),
        phi0,
        tmp_path / "r.h5",
        RolloutConfig(model="shift.onnx", ic={"kind": "test"}, steps=4, every=2),
        progress=False,
    )
    _assert_self_explaining(out, 1, 3, (4, 5, 6), 2.0)  # network grid: dx_stored = 2 dx
    with open_dataset(out) as ds:
        np.testing.assert_array_equal(ds.phi[0, 1], np.roll(phi0[::2, ::2, ::2], 2, axis=0))
        np.testing.assert_allclose(ds.time, [0.0, 1.6, 3.2], rtol=1e-12)  # 2 x 200 steps x 4e-3 per frame
        assert ds.seed[0] == 0 and ds.split[0] == "val" and ds.ic[0] == {"kind": "test"} and ds.t0[0] == 0.0


def _strip_scales(src, dst):
    """A copy of a data set as written before the dimension scales: the same arrays and root attributes only."""
    with h5py.File(src, "r") as f, h5py.File(dst, "w") as g:
        g.attrs.update(f.attrs)
        for name in ARRAYS:
            f.copy(f[name], g, name=name, without_attrs=True)  # same storage filters, no scale references


def test_files_and_parts_without_scales_still_read_and_merge(tmp_path):
    ref = tmp_path / "ref.h5"
    cfg = DatasetConfig(**SMALL)
    generate(ref, cfg, PARAMS, backend="cpu", progress=False, keep_parts=True)
    old = tmp_path / "old.h5"
    _strip_scales(ref, old)
    with h5py.File(old, "r") as f:
        assert "x" not in f and not f["phi"].dims[0].keys()
    with open_dataset(old) as a, open_dataset(ref) as b:
        np.testing.assert_array_equal(a.phi[:], b.phi[:])
        np.testing.assert_array_equal(a.time, b.time)
        assert a.params == b.params == PARAMS
    # parts written before the scales merge into a file that has them, with the same data
    parts = parts_dir(ref)
    for i in range(3):
        _strip_scales(part_path(parts, i), tmp_path / "p.h5")
        (tmp_path / "p.h5").replace(part_path(parts, i))
    again = tmp_path / "again.h5"
    parts.rename(parts_dir(again))
    merge(again)
    for name, value in _read(again).items():
        np.testing.assert_array_equal(value, _read(ref)[name], err_msg=name)
    assert _scales(again)["phi"] == DIMS
