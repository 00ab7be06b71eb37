"""Reading data sets: :func:`open_dataset` opens a ch3d data set lazily (:class:`Dataset`; frames are read
on indexing), and :func:`read_frame` reads one frame of ``phi`` (an initial condition taken from a data set)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from ..files import check_input_file
from ..params import CHParams
from .layout import FORMAT, FORMAT_VERSION, REQUIRED, SPLITS

#: the root attributes without which a data set's physics is unknown (CHParams would take its defaults)
PHYSICS_ATTRS = ("epsilon", "mobility", "W", "dx", "dt", "steps_per_frame")


class _Frames:
    """Lazy float32 view of the `phi` dataset: indexing reads only what is asked. A frame that cannot be
    read (a damaged chunk: HDF5's "filter returned failure during read") is ValueError naming the file,
    the sequence and the frame (:meth:`read`)."""

    def __init__(self, dset, path=None):
        self._dset = dset
        self.path = path
        self.shape = dset.shape
        self.dtype = np.dtype(np.float32)
        self.ndim = dset.ndim

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, key):
        return np.asarray(self.read(key), dtype=np.float32)

    def read(self, key):
        """``phi[key]`` as stored; ValueError naming the first unreadable (sequence, frame) of ``key``."""
        try:
            return self._dset[key]
        except (OSError, RuntimeError) as exc:
            raise self._unreadable(key, exc) from None

    def _unreadable(self, key, exc) -> ValueError:
        text = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        s_count, f_count = self.shape[:2]
        parts = key if isinstance(key, tuple) else (key,)
        try:
            head = tuple(k for k in parts[:2] if k is not Ellipsis) if Ellipsis not in parts[:1] else ()
            chosen = np.atleast_1d(np.arange(s_count * f_count).reshape(s_count, f_count)[head]).ravel()
        except (IndexError, TypeError, ValueError):
            chosen = np.arange(s_count * f_count)
        for flat in chosen:
            s, f = divmod(int(flat), f_count)
            try:
                self._dset[s, f]
            except (OSError, RuntimeError):
                return ValueError(
                    f"{self.path}: sequence {s} frame {f} is unreadable ({text}); the file is damaged: make it "
                    "again, or leave that sequence out"
                )
        return ValueError(f"{self.path}: phi{list(parts)} is unreadable ({text}); the file is damaged")


class Dataset:
    """A ch3d data set opened for lazy reading (use as a context manager).

    Attributes: ``phi`` (lazy, (S, F, X, Y, Z) float32 on indexing), ``attrs`` (dict of
    the root attributes), ``params`` (CHParams), ``split`` (S,) str, ``seed``,
    ``burn_in``, ``phi_mean``, ``free_energy``, ``time``, ``t0`` (numpy arrays), ``ic``
    (list of dicts).
    """

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.exists():
            raise ValueError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise ValueError(f"{self.path} is a folder, not a data set file")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError:
            raise ValueError(f"{self.path} is not a readable HDF5 file (corrupt or truncated?)") from None
        try:
            self._check()
        except Exception:
            self._file.close()
            raise

    def _check(self):
        f = self._file
        fmt = f.attrs.get("format")
        if isinstance(fmt, bytes):
            fmt = fmt.decode()
        if fmt != FORMAT:
            raise ValueError(f"{self.path} is not a ch3d data set (root attribute format={fmt!r}, expected {FORMAT!r})")
        if int(f.attrs.get("format_version", -1)) > FORMAT_VERSION:
            raise ValueError(
                f"{self.path} has format version {f.attrs['format_version']}, newer than this "
                f"package reads ({FORMAT_VERSION}); upgrade ch3d"
            )
        missing = [name for name in REQUIRED if name not in f]
        if missing:
            raise ValueError(f"{self.path} is an incomplete ch3d data set (missing {', '.join(missing)})")
        unknown = [name for name in PHYSICS_ATTRS if name not in f.attrs]
        if unknown:  # the defaults would stand in silently, and a later check would blame the wrong number
            raise ValueError(
                f"{self.path} is a damaged ch3d data set: no root attribute {', '.join(unknown)}, so its physics "
                "is unknown"
            )
        try:
            self.attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            self.params = CHParams.from_metadata(self.attrs)
            self.phi = _Frames(f["phi"], self.path)
            self.split = f["split"].asstr()[...]
            self.seed = f["seed"][...]
            self.burn_in = f["burn_in"][...] if "burn_in" in f else np.zeros(len(self.seed), np.int64)
            self.phi_mean = f["phi_mean"][...]
            self.free_energy = f["free_energy"][...]
            self.time = f["time"][...]
            self.t0 = f["t0"][...] if "t0" in f else np.zeros(len(self.seed))
            self.ic = [json.loads(s) for s in f["ic"].asstr()[...]] if "ic" in f else [{}] * len(self.seed)
        except (KeyError, OSError, ValueError) as e:
            raise ValueError(f"{self.path} is a damaged ch3d data set ({e})") from None

    def first_non_finite(self, sequences=None) -> tuple[int, int, str] | None:
        """(sequence, frame, "nan"/"inf") of the first frame of ``phi`` holding a non-finite value among
        ``sequences`` (default: all), or None. The frames whose stored mean or free energy is not finite are
        looked at first (cheap: those arrays are in memory), then every frame, one at a time."""
        chosen = range(self.n_sequences) if sequences is None else [int(i) for i in sequences]
        suspects = [
            (i, f)
            for i in chosen
            for f in np.flatnonzero(~np.isfinite(self.phi_mean[i]) | ~np.isfinite(self.free_energy[i]))
        ]
        frames = suspects + [(i, f) for i in chosen for f in range(self.n_frames)]
        for i, f in frames:
            phi = self.phi[i, int(f)]
            if not np.all(np.isfinite(phi)):
                return i, int(f), "nan" if np.isnan(phi).any() else "inf"
        return None

    @property
    def n_sequences(self) -> int:
        return self.phi.shape[0]

    @property
    def n_frames(self) -> int:
        return self.phi.shape[1]

    @property
    def shape(self) -> tuple:
        return tuple(self.phi.shape[2:])

    def indices(self, split: str) -> np.ndarray:
        """Indices of the sequences of one split ("train" or "val")."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return np.flatnonzero(self.split == split)

    def sequence(self, i: int) -> np.ndarray:
        """All frames of sequence i: (F, X, Y, Z) float32."""
        return self.phi[i]

    def summary(self) -> str:
        a = self.attrs
        n_val = int(np.sum(self.split == "val"))
        split = f"{self.n_sequences - n_val} train, {n_val} val"
        if self.n_sequences == 1 and "generate" not in str(a.get("command", "")).split():
            # simulate and export.rollout store their one run as "val" (the layout needs a split): it is no split
            split = "a single run, no train/val split"
        fe = self.free_energy
        drift = np.max(np.abs(self.phi_mean - self.phi_mean[:, :1])) if self.phi_mean.size else 0.0
        lines = [
            f"{self.path}: {FORMAT} v{a.get('format_version')} (ch3d {a.get('package_version')})",
            f"  sequences {self.n_sequences} ({split}), frames {self.n_frames}, grid {'x'.join(map(str, self.shape))}",
            f"  physics: {self.params.describe()}, {a['steps_per_frame']} steps/frame",
            f"  storage {a.get('storage')} ({self.phi._dset.dtype}), state dtype {a.get('dtype')},"
            f" backend {a.get('backend')}",
            f"  free energy/volume: first frame {np.mean(fe[:, 0]):.5g}, last frame {np.mean(fe[:, -1]):.5g}"
            f" (mean over sequences); max mass drift {drift:.3g}",
            f"  command: {a.get('command', '')}",
        ]
        return "\n".join(lines)

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_dataset(path) -> Dataset:
    """Open a ch3d HDF5 data set lazily; ValueError with one line for a foreign or corrupt file."""
    return Dataset(path)


def read_frame(path, sequence: int = 0, frame: int = 0) -> np.ndarray:
    """Frame ``frame`` of sequence ``sequence`` of the ``phi`` array (S, F, X, Y, Z) of a ch3d data set, as stored
    (X, Y, Z): the initial condition ``--ic h5`` (:func:`ch_numba.initial.from_dataset`).

    The file is opened by :func:`open_dataset`, so it is refused exactly as ``info`` and the rollouts refuse
    it (a foreign HDF5 file, one holding only ``phi``, a damaged or newer data set: the same one line); only
    the one frame of ``phi`` is read. Negative indices count from the end, as in Python. ValueError (one
    line) for a missing or unreadable file, a file that is not a ch3d data set, or an index out of range.
    """
    path = check_input_file(path, "data set")
    for name, value in (("sequence", sequence), ("frame", frame)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    with open_dataset(path) as ds:
        s, n = ds.n_sequences, ds.n_frames
        if not -s <= sequence < s:
            raise ValueError(f"{path}: sequence {sequence} out of range (the file has {s})")
        if not -n <= frame < n:
            raise ValueError(f"{path}: frame {frame} out of range (sequences have {n})")
        return ds.phi.read((int(sequence) % s, int(frame) % n))
