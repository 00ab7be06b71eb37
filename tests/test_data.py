"""Training data: lazy sub-sequence reads equal the file's frames (downscaled, transformed by the cube
symmetries and φ → 1 − φ of tests/test_symmetry.py); seeded sampling; the split is respected."""

import pickle

import h5py
import numpy as np
import pytest
import torch

import ch_numba
from export.runtime.resample import downsample
from surrogate.data import SequenceDataset, SubSequence, SubSequenceSampler, validation_batches
from surrogate.symmetry import SYMMETRIES

EXACT = dict(rtol=0, atol=0)


def file_frames(path, i, a, b):
    with h5py.File(path, "r") as f:
        return f["phi"][i, a:b].astype(np.float32)


# -- reading ------------------------------------------------------------------------------------
def test_sample_equals_file_frames_downscaled_and_transformed(data_file):
    ds = SequenceDataset(data_file, "train", downscale=2)
    assert ds._ds is None  # nothing opened by the constructor
    seq = int(ds.indices[1])
    raw = file_frames(data_file, seq, 2, 7)  # frames 2..6 of the stored 16³ grid
    key = SubSequence(seq, 2, 5, symmetry=29, dual=True)
    sample = ds[key]
    assert sample.shape == (5, 1, 8, 8, 8) and sample.dtype == torch.float32
    perm, m = SYMMETRIES[29]
    want = raw[:, ::2, ::2, ::2].transpose(0, *(1 + np.array(perm)))
    for j in range(3):
        if m >> j & 1:
            want = np.flip(want, 1 + j)
    np.testing.assert_allclose(sample[:, 0].numpy(), 1 - want, **EXACT)
    # plain key: the nearest-downscaled frames, equal to export.runtime.resample.downsample
    plain = ds[SubSequence(seq, 2, 5)][:, 0].numpy()
    np.testing.assert_array_equal(plain, downsample(raw, 2))
    np.testing.assert_array_equal(plain, raw[:, ::2, ::2, ::2])
    # downscale 1: the stored frames themselves
    np.testing.assert_array_equal(
        SequenceDataset(data_file, "train", 1)[SubSequence(seq, 0, 8)][:, 0].numpy(), file_frames(data_file, seq, 0, 8)
    )


def test_reads_only_the_chosen_frames(data_file, monkeypatch):
    ds = SequenceDataset(data_file, "train", downscale=2)
    frames = ds._data().phi
    keys = []
    orig = type(frames).__getitem__
    monkeypatch.setattr(type(frames), "__getitem__", lambda self, key: keys.append(key) or orig(self, key))
    seq = int(ds.indices[0])
    ds[SubSequence(seq, 3, 4, 5, False)]
    assert keys == [(seq, slice(3, 7))]


def test_handle_is_per_process_and_the_dataset_pickles(data_file):
    ds = SequenceDataset(data_file, "val", downscale=2)
    first = ds[0]
    assert ds._ds is not None
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._ds is None
    torch.testing.assert_close(clone[0], first, **EXACT)
    ds.close()
    assert ds._ds is None
    torch.testing.assert_close(ds[0], first, **EXACT)  # reopens on demand


def test_workers_give_the_same_batches(data_file):
    ds = SequenceDataset(data_file, "train", downscale=2)
    sampler = SubSequenceSampler(ds.indices, ds.n_frames, 2, 3, 6, seed=4)
    sampler.set_epoch(1)
    serial = list(torch.utils.data.DataLoader(ds, batch_sampler=sampler, num_workers=0))
    parallel = list(torch.utils.data.DataLoader(ds, batch_sampler=sampler, num_workers=2))
    assert len(serial) == len(parallel) == 2
    for a, b in zip(serial, parallel):
        assert a.shape[0] == 2 and a.shape[2:] == (1, 8, 8, 8)
        torch.testing.assert_close(a, b, **EXACT)


# -- split ----------------------------------------------------------------------------------------
def test_split_comes_from_the_file_and_is_enforced(data_file):
    with ch_numba.open_dataset(data_file) as f:
        split = f.split
    train, val = SequenceDataset(data_file, "train"), SequenceDataset(data_file, "val")
    np.testing.assert_array_equal(train.indices, np.flatnonzero(split == "train"))
    np.testing.assert_array_equal(val.indices, np.flatnonzero(split == "val"))
    assert len(train) == 4 and len(val) == 2 and set(train.indices).isdisjoint(val.indices)
    with pytest.raises(ValueError, match="not in the 'train' split"):
        train[SubSequence(int(val.indices[0]), 0, 2)]
    # validation items: whole sequence from frame 0, untransformed
    for k in range(len(val)):
        np.testing.assert_array_equal(
            val[k][:, 0].numpy(), file_frames(data_file, int(val.indices[k]), 0, 8)[:, ::2, ::2, ::2]
        )
    sampler = SubSequenceSampler(train.indices, train.n_frames, 3, 2, 8, seed=0)
    for e in range(5):
        for batch in sampler.plan(e):
            assert {k.sequence for k in batch} <= set(train.indices.tolist())


def test_bad_inputs(data_file, tmp_path):
    with pytest.raises(ValueError, match="not divisible by --downscale 3"):
        SequenceDataset(data_file, "train", downscale=3)
    with pytest.raises(ValueError, match="split must be one of"):
        SequenceDataset(data_file, "test")
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ValueError, match="not a ch3d data set"):
        SequenceDataset(foreign)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all")
    with pytest.raises(ValueError, match="not a readable HDF5"):
        SequenceDataset(junk)
    ds = SequenceDataset(data_file)
    with pytest.raises(ValueError, match="outside the stored"):
        ds[SubSequence(int(ds.indices[0]), 5, 4)]


# -- sampling -----------------------------------------------------------------------------------
def test_sampler_is_seeded_and_in_range():
    idx = np.array([0, 2, 3, 5, 7, 8, 9])
    s = SubSequenceSampler(idx, 10, batch_size=3, min_len=3, max_len=6, seed=11)
    plan = s.plan(4)
    assert plan == SubSequenceSampler(idx, 10, 3, 3, 6, seed=11).plan(4)  # same (seed, epoch): same epoch
    assert plan != s.plan(5) and plan != SubSequenceSampler(idx, 10, 3, 3, 6, seed=12).plan(4)
    assert [len(b) for b in plan] == [3, 3, 1] and len(s) == 3
    assert sorted(k.sequence for b in plan for k in b) == idx.tolist()  # each sequence once per epoch
    for batch in plan:
        assert len({k.length for k in batch}) == 1  # one length per batch: stacks without padding
        for k in batch:
            assert 3 <= k.length <= 6 and 0 <= k.start <= 10 - k.length
            assert 0 <= k.symmetry < 48 and isinstance(k.dual, bool)
    s.set_epoch(4)
    assert list(s) == plan
    # lengths, symmetries and duals all occur over many epochs; no augmentation: all zero
    many = [k for e in range(60) for b in s.plan(e) for k in b]
    assert {k.length for k in many} == {3, 4, 5, 6}
    assert len({k.symmetry for k in many}) > 40 and {k.dual for k in many} == {False, True}
    plain = SubSequenceSampler(idx, 10, 3, 4, 4, seed=11, augment=False)
    assert all(k.symmetry == 0 and not k.dual and k.length == 4 for b in plain.plan(0) for k in b)


def test_sampler_shards_global_batches_over_ranks():
    idx = np.arange(7)
    single = SubSequenceSampler(idx, 10, batch_size=4, min_len=2, max_len=9, seed=2, world_size=1)
    ranks = [
        SubSequenceSampler(idx, 10, batch_size=2, min_len=2, max_len=9, seed=2, rank=r, world_size=2) for r in range(2)
    ]
    for r in ranks:
        r.set_epoch(3)
    shares = [list(r) for r in ranks]
    assert len(shares[0]) == len(shares[1]) == len(ranks[0]) == 2  # same number of steps on every rank
    plan = ranks[0].plan(3)
    for g, (a, b) in enumerate(zip(*shares)):
        assert len(a) == len(b) and sorted(a + b) == sorted(plan[g])
        assert {k.length for k in a + b} == {plan[g][0].length}
    # 7 sequences padded to 8 (one repeated), like DistributedSampler
    seen = [k.sequence for share in shares for b in share for k in b]
    assert len(seen) == 8 and set(seen) == set(range(7))
    # with world size 1 and batch 4 the same global batches (up to the padding) are drawn
    assert [k.sequence for b in single.plan(3) for k in b] == [k.sequence for b in plan for k in b][:7]
    with pytest.raises(ValueError, match="2 <= min <= max"):
        SubSequenceSampler(idx, 10, 2, 1, 5)
    with pytest.raises(ValueError, match="2 <= min <= max"):
        SubSequenceSampler(idx, 10, 2, 4, 11)


def test_validation_batches_cover_each_sequence_once():
    assert validation_batches(5, 2) == [[0, 1], [2, 3], [4]]
    parts = [validation_batches(5, 2, r, 2) for r in range(2)]
    assert parts == [[[0, 2], [4]], [[1, 3]]]
    assert validation_batches(1, 4, 1, 2) == []
