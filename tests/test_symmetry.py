"""The 48 symmetries of the cube (surrogate.symmetry): the explicit index definition, distinct
images, the group O_h (closure, identity, inverses, associativity, the rotation subgroup), commuting
with the periodic Laplacian, numpy and torch alike; the shape-preserving subset; φ → 1 − φ."""

import itertools

import numpy as np
import pytest
import torch

from surrogate import data, symmetry
from surrogate.symmetry import (
    N_SYMMETRIES,
    SYMMETRIES,
    compose_symmetries,
    cube_symmetry,
    dual,
    inverse_symmetry,
    shape_preserving_symmetries,
)


def generic(shape=(5, 5, 5), seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def periodic_laplacian(a):
    return sum(np.roll(a, s, axis=ax) for ax in (-3, -2, -1) for s in (1, -1)) - 6 * a


# -- symmetries of the cube -------------------------------------------------------------------
def test_identity_and_explicit_definition():
    x = generic((2, 4, 4, 4))
    np.testing.assert_array_equal(cube_symmetry(x, 0), x)
    # index 8 p + m: output axis j = input axis perm[j], then flip axis j if bit j of m
    for s, (perm, m) in enumerate(SYMMETRIES):
        want = np.transpose(x, (0, 1 + perm[0], 1 + perm[1], 1 + perm[2]))
        for j in range(3):
            if m >> j & 1:
                want = want[(slice(None),) * (1 + j) + (slice(None, None, -1),)]
        np.testing.assert_array_equal(cube_symmetry(x, s), want)
    # e.g. index 1 = flip of X only; index 8 = permutation (0, 2, 1): swap Y and Z
    np.testing.assert_array_equal(cube_symmetry(x, 1), x[:, ::-1])
    np.testing.assert_array_equal(cube_symmetry(x, 8), x.transpose(0, 1, 3, 2))


def test_the_48_are_distinct():
    x = generic()
    images = [cube_symmetry(x, s) for s in range(N_SYMMETRIES)]
    assert N_SYMMETRIES == 48
    for a, b in itertools.combinations(range(48), 2):
        assert not np.array_equal(images[a], images[b]), (a, b)
    # they only move voxels: same multiset of values
    for img in images:
        np.testing.assert_array_equal(np.sort(img.ravel()), np.sort(x.ravel()))


def test_the_48_form_a_group():
    x = generic()
    images = {cube_symmetry(x, s).tobytes(): s for s in range(48)}
    table = np.empty((48, 48), int)
    for a in range(48):
        for b in range(48):
            c = np.ascontiguousarray(cube_symmetry(cube_symmetry(x, a), b)).tobytes()
            assert c in images, f"composition of {a} then {b} is not one of the 48 (not closed)"
            table[a, b] = images[c]
            assert compose_symmetries(a, b) == table[a, b]
    # identity, inverses (every row and column a permutation: Latin square), associativity on a sample
    assert (table[0] == np.arange(48)).all() and (table[:, 0] == np.arange(48)).all()
    for a in range(48):
        assert sorted(table[a]) == list(range(48)) and sorted(table[:, a]) == list(range(48))
        assert table[a, inverse_symmetry(a)] == 0 and table[inverse_symmetry(a), a] == 0
        np.testing.assert_array_equal(cube_symmetry(cube_symmetry(x, a), inverse_symmetry(a)), x)
    rng = np.random.default_rng(3)
    for a, b, c in rng.integers(0, 48, size=(200, 3)):
        assert table[table[a, b], c] == table[a, table[b, c]]
    # 24 proper rotations (det = +1): a subgroup of index 2 (the rotation group O)
    det = [np.linalg.det(np.eye(3)[list(p)]) * (-1) ** bin(m).count("1") for p, m in SYMMETRIES]
    rot = [s for s in range(48) if det[s] > 0]
    assert len(rot) == 24
    assert all(table[a, b] in rot for a in rot for b in rot)


def test_symmetries_commute_with_the_periodic_laplacian():
    # every index maps a Cahn-Hilliard solution on the periodic grid to a solution
    x = generic((6, 6, 6), seed=5)
    for s in range(48):
        np.testing.assert_allclose(
            cube_symmetry(periodic_laplacian(x), s), periodic_laplacian(cube_symmetry(x, s)), rtol=1e-12, atol=1e-12
        )


def test_torch_and_numpy_agree():
    x = generic((3, 4, 4, 4))
    t = torch.from_numpy(x)
    for s in range(48):
        np.testing.assert_array_equal(cube_symmetry(t, s).numpy(), cube_symmetry(x, s))


def test_shape_preserving_subset_for_non_cubic_grids():
    assert shape_preserving_symmetries((8, 8, 8)) == tuple(range(48))
    assert len(shape_preserving_symmetries((4, 4, 6))) == 16  # identity and X<->Y swap, × 8 flips
    assert len(shape_preserving_symmetries((3, 4, 5))) == 8  # flips only
    with pytest.raises(ValueError, match="symmetry index"):
        cube_symmetry(generic(), 48)


def test_dual_is_the_phase_swap_involution():
    x = np.random.default_rng(1).random((4, 4, 4))
    np.testing.assert_array_equal(dual(x), 1 - x)
    np.testing.assert_allclose(dual(dual(x)), x, rtol=0, atol=1e-15)
    assert np.isclose(dual(x).mean(), 1 - x.mean())


def test_the_data_module_re_exports_the_group():
    # older imports (from surrogate.data import cube_symmetry, ...) get the same objects
    for name in symmetry.__all__:
        assert getattr(data, name) is getattr(symmetry, name), name
