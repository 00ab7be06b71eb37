"""The HDF5 layout of a ch3d data set of Cahn-Hilliard evolutions (the schema every writer and reader follows).

Layout (one file, readable by plain h5py/xarray; S sequences, F frames, grid X×Y×Z)::

    /                 attrs: format="ch3d-dataset", format_version, epsilon, mobility, W,
                             dx, dt, scheme ("explicit"/"spectral"; absent in files written before
                             the option: explicit), for spectral runs also stabilization, symbol,
                             order (CHParams.as_dict) and fft (the FFT library and version),
                             boundary ("X,Y,Z" names, e.g. "periodic,periodic,neumann"; only for a
                             box with no-flux walls, whose format_version is then 2; absent:
                             periodic, format_version 1),
                             steps_per_frame, frames, shape, dtype
                             (state type of the run), storage, backend, package_version, command,
                             config (JSON); a merged file: command = the merge's (``merge`` or
                             the unsharded ``generate``), part_commands = JSON list of the
                             distinct commands that wrote its parts (the shards')
    phi               (S, F, X, Y, Z) float32 (or float16 with storage="float16"),
                      chunked one frame per chunk, filter per `storage`
    seed              (S,)  int64   per-sequence IC seed (derived from (master seed, i))
    ic                (S,)  str     JSON of the IC parameters of each sequence
    burn_in           (S,)  int64   frames simulated before frame 0 and not stored
    split             (S,)  str     "train" or "val"
    backend           (S,)  str     backend that computed each sequence
    phi_mean          (S, F) float64  mass (mean φ) of each stored frame
    free_energy       (S, F) float64  free energy per volume of each stored frame
    time              (F,)  float64   time of frame f from the sequence's frame 0 (f·steps·dt)
    t0                (S,)  float64   time of frame 0 since the IC (burn_in·steps·dt)
    sequence, frame   (S,), (F,) int64  0 .. S−1, 0 .. F−1     } HDF5 dimension scales of the
    x, y, z           (X,), (Y,), (Z,) float64  i·dx           } axes above (create_layout)

The dimensions are named with HDF5 dimension scales (``sequence``, ``frame``, ``x``, ``y``,
``z``; ``time`` a coordinate along ``frame``), so ``xarray.open_dataset(path, engine="h5netcdf")``
shows them; files written before the scales (same format version) read the same here.

Frame 0 is the state after the burn-in (the IC itself when burn_in = 0); frame f
follows after f·steps_per_frame steps. phi_mean and free_energy are computed from
the state before any lossy storage.

This module is the schema: the constants of the format, the storage options, the root attributes and the
one writer of the empty layout (:func:`create_layout`, :func:`set_sequence`); writing the frames is
:mod:`ch_numba.dataset.writer`'s, reading them :mod:`ch_numba.dataset.reader`'s.
"""

from __future__ import annotations

import json

import h5py
import numpy as np

from ..params import CHParams

FORMAT = "ch3d-dataset"
#: the newest format version this package reads and writes: 2 = a box with no-flux walls on some axis (root
#: attribute ``boundary``), so that readers of version 1 refuse such a file instead of taking it for periodic
FORMAT_VERSION = 2
#: the version written for periodic boxes (unchanged from before walls existed: such files stay bit for bit
#: the same)
PERIODIC_FORMAT_VERSION = 1
STORAGES = ("none", "lzf", "gzip", "scaleoffset", "float16")
SPLITS = ("train", "val")
_STR = h5py.string_dtype()


def storage_options(storage: str, scaleoffset_digits: int = 4) -> dict:
    """h5py create_dataset keywords for a storage choice.

    none: raw float32; lzf / gzip: lossless (float32 fields of a phase-field run
    shrink only to ~75-80 %); scaleoffset: lossy, values kept to `scaleoffset_digits`
    decimals (~2.6× smaller); float16: lossy, relative error ≤ 4.9e-4 (~3× smaller).
    """
    if storage == "none":
        return {"dtype": np.float32}
    if storage == "lzf":
        return {"dtype": np.float32, "compression": "lzf", "shuffle": True}
    if storage == "gzip":
        return {"dtype": np.float32, "compression": "gzip", "compression_opts": 4, "shuffle": True}
    if storage == "scaleoffset":
        return {
            "dtype": np.float32,
            "scaleoffset": int(scaleoffset_digits),
            "compression": "gzip",
            "compression_opts": 1,
            "shuffle": True,
        }
    if storage == "float16":
        return {"dtype": np.float16, "compression": "gzip", "compression_opts": 1, "shuffle": True}
    raise ValueError(f"unknown storage {storage!r}; choose one of {', '.join(STORAGES)}")


#: the arrays every data set holds (older files may lack the others: burn_in, t0, ic); the reader and the
#: check of a finished part require them
REQUIRED = ("phi", "seed", "split", "phi_mean", "free_energy", "time")


def root_attrs(
    params: CHParams,
    frames: int,
    steps_per_frame: int,
    shape,
    dtype: str,
    storage: str,
    backend: str,
    command: str,
    config_json: str,
) -> dict:
    """The root attributes of the layout (module docstring); also used by the surrogate's rollout files."""
    from .. import __version__

    return {
        "format": FORMAT,
        "format_version": PERIODIC_FORMAT_VERSION if params.periodic else FORMAT_VERSION,
        **params.as_dict(),
        "scheme": params.scheme,
        "steps_per_frame": steps_per_frame,
        "frames": frames,
        "shape": np.asarray(shape, dtype=np.int64),
        "dtype": dtype,
        "storage": storage,
        "backend": backend,
        "package_version": __version__,
        "command": command,
        "config": config_json,
    }


def solver_attrs(params: CHParams, *args) -> dict:
    """:func:`root_attrs` of a solver run (``*args`` as there), plus ``fft`` for the spectral scheme."""
    attrs = root_attrs(params, *args)
    if params.scheme == "spectral":
        from ..spectral import fft_library, fft_version

        attrs["fft"] = fft_version(fft_library())
    return attrs


#: the dimension names of the layout, one per axis of ``phi`` (sequence, frame, x, y, z)
DIMS = ("sequence", "frame", "x", "y", "z")
#: dimensions of each array of the layout (by name)
ARRAY_DIMS = {
    "phi": DIMS,
    "seed": DIMS[:1],
    "ic": DIMS[:1],
    "burn_in": DIMS[:1],
    "split": DIMS[:1],
    "backend": DIMS[:1],
    "t0": DIMS[:1],
    "phi_mean": DIMS[:2],
    "free_energy": DIMS[:2],
    "time": DIMS[1:2],
}


def create_layout(f: h5py.File, n_seq: int, frames: int, shape, storage: str, attrs: dict) -> None:
    """Create the layout (module docstring) in the empty open file ``f``: the root attributes ``attrs``
    (:func:`root_attrs`), every array, empty but ``time``, and the dimension scales.

    The one writer of the layout: ``generate``'s parts and its merged file, ``simulate`` and the
    surrogate's rollout files (export/rollout.py) all call it. ``phi`` is (n_seq, frames, *shape),
    one chunk per frame, stored per ``storage``; ``time[f] = f · steps_per_frame · dt``.

    Dimension scales (HDF5's, so that netCDF readers such as ``xarray.open_dataset(path,
    engine="h5netcdf")`` show named dimensions and coordinates): the datasets ``sequence`` (0 .. S−1)
    and ``frame`` (0 .. F−1), int64, and ``x``, ``y``, ``z`` (i · dx, float64, the positions of the
    grid points in the unit of dx) are the scales of :data:`DIMS`, attached to every array's axes as
    :data:`ARRAY_DIMS` lists; ``time`` is an auxiliary coordinate along ``frame`` (the CF attribute
    ``coordinates="time"`` of phi, phi_mean and free_energy). Readers do not need them (files
    written before them read the same).
    """
    shape = tuple(int(n) for n in shape)
    f.attrs.update(attrs)
    f.create_dataset("phi", shape=(n_seq, frames, *shape), chunks=(1, 1, *shape), **storage_options(storage))
    for name in ("seed", "burn_in"):
        f.create_dataset(name, shape=(n_seq,), dtype=np.int64)
    for name in ("ic", "split", "backend"):
        f.create_dataset(name, shape=(n_seq,), dtype=_STR)
    f.create_dataset("t0", shape=(n_seq,), dtype=np.float64)
    f.create_dataset("phi_mean", shape=(n_seq, frames), dtype=np.float64)
    f.create_dataset("free_energy", shape=(n_seq, frames), dtype=np.float64)
    f.create_dataset("time", data=np.arange(frames) * steps_per_frame_dt(attrs))
    dx = float(attrs["dx"])
    scales = {
        "sequence": np.arange(n_seq, dtype=np.int64),
        "frame": np.arange(frames, dtype=np.int64),
        **{axis: np.arange(n, dtype=np.float64) * dx for axis, n in zip(DIMS[2:], shape)},
    }
    meaning = {
        "sequence": "index of the sequence in this file",
        "frame": "index of the stored frame",
        **{axis: f"{axis} of the grid points (index times dx)" for axis in DIMS[2:]},
    }
    for name in DIMS:
        scale = f.create_dataset(name, data=scales[name])
        scale.make_scale(name)
        scale.attrs["long_name"] = meaning[name]
    f["time"].attrs["long_name"] = "time of the frame since the sequence's frame 0 (frame times steps_per_frame dt)"
    for name, dims in ARRAY_DIMS.items():
        for axis, dim in enumerate(dims):
            f[name].dims[axis].attach_scale(f[dim])
    for name in ("phi", "phi_mean", "free_energy"):
        f[name].attrs["coordinates"] = "time"


def set_sequence(
    f: h5py.File, i: int, *, seed: int, ic: dict | None, burn_in: int, split: str, backend: str, t0: float
) -> None:
    """Fill sequence i's per-sequence arrays of a file made by :func:`create_layout` (meanings in the
    module docstring; ``ic`` is stored as sorted JSON)."""
    f["seed"][i] = seed
    f["ic"][i] = json.dumps(ic or {}, sort_keys=True)
    f["burn_in"][i] = burn_in
    f["split"][i] = split
    f["backend"][i] = backend
    f["t0"][i] = t0


def steps_per_frame_dt(attrs) -> float:
    """Time between stored frames: steps_per_frame · dt (root attributes)."""
    return float(attrs["steps_per_frame"]) * float(attrs["dt"])


def discard(f: h5py.File) -> None:
    """Close the h5py file ``f`` (open for writing under a temporary name, which the caller deletes) without
    writing anything more: its file descriptor is first pointed at /dev/null, so the data HDF5 still holds
    (chunk and metadata caches, flushed when a dataset or the file is closed) go nowhere. After a failed
    write (a full disk, a file-size limit) HDF5 would try those writes again on every close and in the
    destructors ("Exception ignored"), and crash at exit; this way nothing of the file fails later. Call
    it before letting go of the file's datasets."""
    import os

    try:
        fd = f.id.get_vfd_handle()
        null = os.open(os.devnull, os.O_RDWR)
        try:
            os.dup2(null, fd)
        finally:
            os.close(null)
    except Exception:  # not a POSIX file driver, or already closed: closed as far as HDF5 can
        pass
    try:
        f.close()
    except Exception:
        pass
