"""Input checks shared by the initial conditions: shapes, seeds, axes, levels, frequencies (one-line ValueErrors)."""

from __future__ import annotations

import operator

import numpy as np

from ..options import SEED_MAX


def _positive_int(value, what: str) -> int:
    """`value` as a Python int ≥ 1, or a ValueError naming `what`."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{what} must be a positive integer, got {value!r}") from None
    if value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return value


def _shape3(shape) -> tuple[int, int, int]:
    """(X, Y, Z) as three Python ints ≥ 1."""
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(f"shape must be (X, Y, Z), got {shape!r}") from None
    if len(dims) != 3:
        raise ValueError(f"shape must be three positive integers (X, Y, Z), got {shape!r}")
    try:
        return tuple(_positive_int(n, "shape") for n in dims)
    except ValueError:
        raise ValueError(f"shape must be three positive integers (X, Y, Z), got {shape!r}") from None


def _check_seed(seed) -> int:
    """A seed in 1..SEED_MAX: perlin-noise treats 0 as "random", and the data sets store seeds as int64."""
    try:
        value = _positive_int(seed, "seed")
        if value > SEED_MAX:
            raise ValueError
        return value
    except ValueError:
        raise ValueError(
            f"seed must be a positive integer <= {SEED_MAX} (perlin-noise treats 0 as 'random'), got {seed!r}"
        ) from None


def _check_axis(axis) -> int:
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)) or axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis!r}")
    return int(axis)


def _check_level(mean, amplitude) -> tuple[float, float]:
    mean, amplitude = float(mean), float(amplitude)
    if not 0.0 <= mean <= 1.0:
        raise ValueError(f"mean must be in [0, 1], got {mean}")
    if not 0.0 <= amplitude <= 1.0:
        raise ValueError(f"amplitude must be in [0, 1], got {amplitude}")
    return mean, amplitude


def _frequencies(frequency) -> list[int]:
    """An int, or a non-empty sequence of ints, as a list of positive ints."""
    values = list(frequency) if isinstance(frequency, (list, tuple, np.ndarray)) else [frequency]
    if len(values) == 0:
        raise ValueError("frequency list is empty")
    try:
        return [_positive_int(f, "frequency") for f in values]
    except ValueError:
        raise ValueError(
            f"frequency must be a positive integer (lattice cells per side) or a list of them, got {frequency!r}"
        ) from None
