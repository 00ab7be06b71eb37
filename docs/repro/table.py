"""The seeds and sizes of every experiment of docs/reproduce.py, in one frozen table.

Each experiment reads its numbers from ``ctx.sizes.<experiment>`` (:class:`repro.context.Context`,
default :data:`SIZES`): frames, sequences, steps, seeds of the initial conditions, grids. A shorter
run (the tests) passes another table, e.g.
``SIZES.replace(long=Long(steps=40, every=10))``; nothing else changes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """``check``: the fixed rollout the tests recompute (Perlin IC, network steps, F and mass every ``every``)."""

    seed: int = 99
    steps: int = 100
    every: int = 10


@dataclass(frozen=True)
class Heldout:
    """``heldout``: Perlin ICs whose seeds were never used in training, frames from the noise."""

    sequences: int = 20
    frames: int = 50
    seed: int = 90210


@dataclass(frozen=True)
class Large:
    """``large``: a ``box``x larger box (each side), longer sequences."""

    sequences: int = 8
    frames: int = 100
    seed: int = 4711
    box: int = 2  # times the training grid


@dataclass(frozen=True)
class Torus:
    """``torus``: one run from the torus IC."""

    frames: int = 200


@dataclass(frozen=True)
class Slice:
    """``slice``: one run from the central-slice IC."""

    frames: int = 500
    seed: int = 3


@dataclass(frozen=True)
class Ensemble:
    """``ensemble``: Perlin evolutions (their number is the ``--ensemble`` option), fit from frame ``fit_from``."""

    frames: int = 200
    seed: int = 1234
    fit_from: int = 50  # coarsening: after the phase separation (frame 50) to the end


@dataclass(frozen=True)
class Long:
    """``long``: network steps, between checks, stationarity tail; the Perlin IC's seed."""

    steps: int = 50_000
    every: int = 100
    tail: int = 10_000
    seed: int = 2024


@dataclass(frozen=True)
class Coarsening:
    """``coarsening``: ICs (seeds ``seed`` + s), frames each in a ``box``x box, the fit from frame ``fit_from``."""

    sequences: int = 20
    frames: int = 400
    fit_from: int = 50  # fit from frame 50 to the end
    seed: int = 5000
    box: int = 2  # times the training grid


@dataclass(frozen=True)
class Ablation:
    """``ablation``: float32 steps, mass checked every ``every``, from the Perlin ICs (frequency, seed, mean)."""

    steps: int = 10_000
    every: int = 10
    ics: tuple = ((2, 501, 0.5), (3, 502, 0.45), (4, 503, 0.55))


@dataclass(frozen=True)
class Cost:
    """``cost``: the network grids timed and the seed of their Perlin IC."""

    grids: tuple = (16, 24, 32, 48, 64)
    seed: int = 5


@dataclass(frozen=True)
class Architecture:
    """``architecture``: the Perlin ICs of docs/probe_stability.py, their free steps, the checks'
    spacing and stationarity tail, the flat-layer probe's steps, and the interleaved step timing
    (grids, repeats, steps per repeat, the IC's seed)."""

    seeds: tuple = (2024, 7, 99)
    steps: int = 50_000
    every: int = 250
    tail: int = 10_000
    layer_steps: int = 5_000
    cost_grids: tuple = (16, 32)
    cost_reps: int = 7
    cost_steps: int = 100
    cost_seed: int = 5


@dataclass(frozen=True)
class Walls:
    """``walls``: the held-out sets are ``heldout``'s (with walls); the long run's network steps and Perlin seed."""

    steps: int = 10_000
    seed: int = 2024


@dataclass(frozen=True)
class Sizes:
    """The table: one entry per experiment."""

    check: Check = Check()
    heldout: Heldout = Heldout()
    large: Large = Large()
    torus: Torus = Torus()
    slice: Slice = Slice()
    ensemble: Ensemble = Ensemble()
    long: Long = Long()
    coarsening: Coarsening = Coarsening()
    ablation: Ablation = Ablation()
    cost: Cost = Cost()
    architecture: Architecture = Architecture()
    walls: Walls = Walls()

    def replace(self, **changes) -> Sizes:
        """A copy with some experiments' entries replaced (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)


#: the sizes of the report (docs/REPRODUCTION.md)
SIZES = Sizes()
