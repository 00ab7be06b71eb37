"""The network grid (export.runtime.grid): the ground-truth grid divided by the downscale factor, refused in one
line when the factor does not divide it or when an axis ends up smaller than the kernel; the one
definition behind evaluate, the rollout command and ``surrogate train``."""

import pytest

from export.runtime.grid import check_kernel, downscaled_grid, grid_text, network_grid


def test_the_network_grid_is_the_grid_over_the_factor():
    assert grid_text((16, 16, 32)) == "16x16x32"
    assert network_grid((16, 16, 32), 2, 3) == (8, 8, 16)
    assert network_grid((3, 3, 3), 1, 3) == (3, 3, 3)  # exactly the kernel is enough
    assert downscaled_grid((9, 6, 3), 3) == (3, 2, 1)
    assert check_kernel((9, 9, 9), 2, 3) == (4, 4, 4)  # floor: divisibility is downscaled_grid's


def test_a_grid_the_factor_does_not_divide_is_refused():
    with pytest.raises(ValueError) as exc:
        network_grid((9, 9, 9), 2, 3, what="the data set's grid", prefix="grid mismatch: ")
    assert str(exc.value) == (
        "grid mismatch: the data set's grid 9x9x9 is not divisible by the model's downscale factor 2"
    )


def test_a_network_grid_below_the_kernel_is_refused():
    with pytest.raises(ValueError) as exc:
        network_grid((4, 8, 8), 2, 3, what="the ground-truth grid")
    assert str(exc.value) == (
        "downscaling by 2 turns the ground-truth grid 4x8x8 into 2x4x4, smaller than the model's kernel 3 "
        "along an axis; use a grid of at least 6 per side"
    )
    with pytest.raises(ValueError) as exc:
        check_kernel((16, 16, 16), 8, 3, source="d.h5", cause="--downscale 8", remedy="use --downscale <= 5")
    assert str(exc.value) == (
        "--downscale 8 turns the grid 16x16x16 of d.h5 into 2x2x2, smaller than the model's kernel 3 along an "
        "axis; use --downscale <= 5"
    )
    with pytest.raises(ValueError) as exc:
        check_kernel((2, 8, 8), 1, 3)  # nothing downscaled
    assert str(exc.value) == (
        "the grid 2x8x8 is smaller than the model's kernel 3 along an axis; use a grid of at least 3 per side"
    )
