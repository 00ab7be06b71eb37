r"""Training data: lazy sub-sequences of a ch3d HDF5 data set, downscaled and augmented.

Reading
-------
:class:`SequenceDataset` never loads the file: it keeps only the path and the metadata, opens
the HDF5 file on first use in each process (DataLoader workers get their own handle; a handle is
never shared across ``fork``) and reads only the frames a sample needs, ``phi[i, a:a + L]``.
The split ("train" / "val") is the one stored in the file.

One sample = one :class:`SubSequence` key ``(sequence, start, length, symmetry, dual, stride)``::

    x = phi[sequence, start : start + (length − 1)·stride + 1 : stride]    (L, X, Y, Z)   from the file
    x = downsample(x, f, boundary)                          f = downscale (64³ → 32³): every f-th voxel along
                                                            periodic axes, block means along wall axes
    x = cube_symmetry(x, symmetry)                          same for all frames
    x = 1 − x   if dual                                     φ → 1 − φ swaps the phases
    sample = torch.from_numpy(x)[:, None]                   (L, 1, X/f, Y/f, Z/f) float32

The key alone determines the sample, so all randomness lives in the sampler. With ``stride`` k > 1
(``train --stride k``: one network step = k stored frames) a sample is L frames k apart, from any
stored start frame; the data set is unchanged.

Batching and randomness
-----------------------
:class:`SubSequenceSampler` is a batch sampler: in epoch e it draws, from a generator seeded by
``(seed, e)`` and identical on every process, a permutation of the split's sequences, cuts it into
global batches of ``batch_size · world_size`` sequences and, for each global batch, ONE length
L ∈ [min_len, max_len] (so batches stack without padding and all ranks make the same number of
steps), then per sequence a start ∈ [0, F − L], a symmetry ∈ [0, 48) and a dual flag. Rank r takes
items r, r + W, … of each global batch. The permutation is padded (repeating its head) to a
multiple of the world size, so every rank gets the same number of batches, as DistributedSampler
does; without DDP nothing is repeated and the last batch may be smaller. An epoch is thus a
pure function of (seed, epoch, data set, options): resuming at an epoch boundary reproduces the
uninterrupted run bit for bit, with any number of workers.

Validation uses plain integer keys: the k-th sequence of the split, all frames from frame 0, no
augmentation (:func:`validation_batches`).

Symmetries of the cube
----------------------
The 48 isometries of the cube, their array action and the phase swap are the group of
:mod:`surrogate.symmetry` (one definition, shared with the equivariant model); this module draws
from it and re-exports its names for older imports. Axis permutations need a cubic grid and the same
boundary on the permuted axes; on other grids and boxes only the symmetries that keep the shape and
each axis's boundary are drawn (``dataset.symmetries``: for a film between z walls, the flips and the
x ↔ y swap).

Boundary
--------
The data set's boundary (``ch_numba.CHParams.boundary`` of its root attributes; periodic for files
written before walls) is ``dataset.boundary``, an (x, y, z) tuple of names. It chooses the downsampling
(:func:`export.runtime.resample.downsample`) and the symmetries drawn; the trainer gives it to the
model (:meth:`surrogate.CRNN.set_boundary`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from export.runtime.resample import downsample  # one definition (numpy only), shared with the runtime

from .symmetry import (  # the group's home; re-exported here for older imports
    N_SYMMETRIES,
    SYMMETRIES,
    compose_symmetries,
    cube_symmetry,
    dual,
    inverse_symmetry,
    shape_preserving_symmetries,
)

__all__ = [
    "N_SYMMETRIES",
    "SYMMETRIES",
    "cube_symmetry",
    "compose_symmetries",
    "inverse_symmetry",
    "dual",
    "downsample",
    "SubSequence",
    "SequenceDataset",
    "SubSequenceSampler",
    "validation_batches",
]


class SubSequence(NamedTuple):
    """Key of one training sample (see the module docstring).

    sequence : index of the sequence in the file (must belong to the dataset's split)
    start, length : ``length`` frames from ``start`` on, ``stride`` apart: start, start + stride, …,
        start + (length − 1)·stride
    symmetry : cube symmetry index in [0, 48)
    dual : apply φ → 1 − φ
    stride : stored frames per network step (default 1)
    """

    sequence: int
    start: int
    length: int
    symmetry: int = 0
    dual: bool = False
    stride: int = 1


class SequenceDataset(torch.utils.data.Dataset):
    """Lazy torch Dataset over one split of a ch3d HDF5 data set.

    Parameters
    ----------
    path : str or Path
        ch3d data set (``python -m ch_numba generate``).
    split : "train" or "val"
    downscale : int ≥ 1
        Downscale factor f of the spatial axes (the grid must be divisible by it; every f-th voxel along
        periodic axes, block means along wall axes).
    stride : int ≥ 1
        Stored frames per network step k (``train --stride``): ``dataset[k]`` holds frames 0, k, 2k, ...

    ``dataset[k]`` (int) is the k-th sequence of the split, frames 0, stride, 2·stride, … (all frames
    for stride 1), untransformed: a tensor (``n_steps_frames``, 1, X/f, Y/f, Z/f).
    ``dataset[SubSequence(...)]`` is that sample: (L, 1, X/f, Y/f, Z/f).
    ``len(dataset)`` is the number of sequences of the split. Attributes: ``indices`` (file
    indices of the split), ``n_frames`` F (stored), ``n_steps_frames`` = (F − 1) // stride + 1 (frames a
    sequence holds at the stride from frame 0), ``shape`` (stored grid), ``grid`` (network grid),
    ``attrs`` (the file's root attributes), ``boundary`` ((x, y, z) names: the data set's boundary),
    ``symmetries`` (the indices that keep the grid's shape and boundary).

    Raises ValueError (one line) for a missing, foreign or corrupt file or a bad option.
    """

    def __init__(self, path, split: str = "train", downscale: int = 2, stride: int = 1):
        from ch_numba import open_dataset

        if isinstance(downscale, bool) or not isinstance(downscale, (int, np.integer)) or downscale < 1:
            raise ValueError(f"downscale must be a positive integer, got {downscale!r}")
        if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
            raise ValueError(f"stride must be a positive integer, got {stride!r}")
        self.path = Path(path)
        self.split = split
        self.downscale = int(downscale)
        self.stride = int(stride)
        with open_dataset(self.path) as ds:
            self.indices = ds.indices(split)
            self.n_sequences = ds.n_sequences
            self.n_frames = ds.n_frames
            self.shape = tuple(int(n) for n in ds.shape)
            self.attrs = dict(ds.attrs)
            self.boundary = tuple(ds.params.boundary)
        self.n_steps_frames = (self.n_frames - 1) // self.stride + 1
        if any(n % self.downscale for n in self.shape):
            raise ValueError(
                f"{self.path}: grid {'x'.join(map(str, self.shape))} is not divisible by --downscale {self.downscale}"
            )
        self.grid = tuple(n // self.downscale for n in self.shape)
        self.symmetries = shape_preserving_symmetries(self.grid, self.boundary)
        self._members = frozenset(int(i) for i in self.indices)
        self._ds = None
        self._pid = None

    # -- lazy file handle, one per process ---------------------------------------------------
    def _data(self):
        if self._ds is None or self._pid != os.getpid():
            from ch_numba import open_dataset

            self._ds = open_dataset(self.path)  # a handle inherited through fork is left alone
            self._pid = os.getpid()
        return self._ds

    def close(self) -> None:
        if self._ds is not None and self._pid == os.getpid():
            self._ds.close()
        self._ds = self._pid = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_ds"] = state["_pid"] = None
        return state

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # -- samples -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.indices)

    def read(self, key) -> np.ndarray:
        """The sample of ``key`` as a float32 array (L, X/f, Y/f, Z/f) (see the class docstring)."""
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            if not -len(self) <= key < len(self):
                raise IndexError(f"{self.split} sequence {key} out of range (the split has {len(self)})")
            key = SubSequence(int(self.indices[key]), 0, self.n_steps_frames, stride=self.stride)
        key = SubSequence(*key)
        k = key.stride
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"stride must be a positive integer, got {k!r}")
        last = key.start + (key.length - 1) * k
        if key.sequence not in self._members:
            raise ValueError(f"sequence {key.sequence} is not in the {self.split!r} split of {self.path}")
        if not (key.length >= 1 and 0 <= key.start and last < self.n_frames):
            raise ValueError(f"frames {key.start}..{last} are outside the stored 0..{self.n_frames - 1}")
        x = self._data().phi[key.sequence, key.start : last + 1 : (k if k > 1 else None)]
        x = downsample(x, self.downscale, self.boundary) if self.downscale > 1 else x
        if key.symmetry:
            x = cube_symmetry(x, key.symmetry)
        if key.dual:
            x = dual(x)
        return np.ascontiguousarray(x, dtype=np.float32)

    def __getitem__(self, key) -> torch.Tensor:
        return torch.from_numpy(self.read(key))[:, None]


class SubSequenceSampler(torch.utils.data.Sampler):
    """Batch sampler of random sub-sequences; one length per batch; seeded by (seed, epoch).

    Parameters
    ----------
    indices : sequence of int
        File indices of the sequences to draw from (``dataset.indices``).
    n_frames : int
        Stored frames F per sequence.
    batch_size : int
        Sequences per batch and process.
    min_len, max_len : int
        Range of the sub-sequence length L in network frames, 2 ≤ min_len ≤ max_len ≤ (F − 1) // stride + 1
        (L − 1 steps).
    seed : int
    augment : bool
        Draw symmetries and dual flags (else all 0 / False).
    symmetries : sequence of int
        Symmetry indices to draw from (default all 48).
    rank, world_size : int
        This process's share of each global batch (DDP).
    stride : int
        Stored frames per network step k: a sub-sequence is frames a, a + k, …, a + (L − 1) k, the start
        a ∈ [0, F − 1 − (L − 1) k] (default 1: L consecutive frames, as before).

    Call :meth:`set_epoch` before each epoch; iterating yields lists of :class:`SubSequence`.
    """

    def __init__(
        self,
        indices,
        n_frames: int,
        batch_size: int,
        min_len: int,
        max_len: int,
        seed: int = 0,
        augment: bool = True,
        symmetries=tuple(range(N_SYMMETRIES)),
        rank: int = 0,
        world_size: int = 1,
        stride: int = 1,
    ):
        self.indices = np.asarray(indices, dtype=np.int64)
        if len(self.indices) == 0:
            raise ValueError("no sequences to sample from")
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size}")
        if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
            raise ValueError(f"stride must be a positive integer, got {stride!r}")
        usable = (n_frames - 1) // stride + 1
        if not 2 <= min_len <= max_len <= usable:
            raise ValueError(
                f"sequence length range [{min_len}, {max_len}] must satisfy 2 <= min <= max <= "
                + (f"stored frames ({n_frames})" if stride == 1 else f"frames at stride {stride} ({usable})")
            )
        self.stride = int(stride)
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} out of range for world size {world_size}")
        self.n_frames, self.batch_size = int(n_frames), int(batch_size)
        self.min_len, self.max_len = int(min_len), int(max_len)
        self.seed, self.augment = int(seed), bool(augment)
        self.symmetries = np.asarray(symmetries, dtype=np.int64)
        self.rank, self.world_size = int(rank), int(world_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def plan(self, epoch: int | None = None) -> list[list[SubSequence]]:
        """All global batches of an epoch (every rank's items), identical on every process."""
        epoch = self.epoch if epoch is None else int(epoch)
        rng = np.random.default_rng([self.seed, epoch])
        order = self.indices[rng.permutation(len(self.indices))]
        n_pad = -len(order) % self.world_size
        order = np.concatenate([order, np.resize(order, n_pad)]) if n_pad else order
        g = self.batch_size * self.world_size
        batches = []
        for b0 in range(0, len(order), g):
            seqs = order[b0 : b0 + g]
            length = int(rng.integers(self.min_len, self.max_len + 1))
            starts = rng.integers(0, self.n_frames - (length - 1) * self.stride, size=len(seqs))
            if self.augment:
                syms = self.symmetries[rng.integers(0, len(self.symmetries), size=len(seqs))]
                duals = rng.integers(0, 2, size=len(seqs)).astype(bool)
            else:
                syms, duals = np.zeros(len(seqs), np.int64), np.zeros(len(seqs), bool)
            batches.append(
                [
                    SubSequence(int(s), int(a), length, int(m), bool(d), self.stride)
                    for s, a, m, d in zip(seqs, starts, syms, duals)
                ]
            )
        return batches

    def __iter__(self):
        for batch in self.plan():
            yield batch[self.rank :: self.world_size]

    def __len__(self) -> int:
        n = len(self.indices) + (-len(self.indices) % self.world_size)
        return math.ceil(n / (self.batch_size * self.world_size))


def validation_batches(n: int, batch_size: int, rank: int = 0, world_size: int = 1) -> list[list[int]]:
    """Positions 0 … n − 1 of the validation split for this rank (rank::world_size), in batches."""
    mine = list(range(rank, n, world_size))
    return [mine[i : i + batch_size] for i in range(0, len(mine), batch_size)]
