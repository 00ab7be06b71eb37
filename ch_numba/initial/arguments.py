"""The initial-condition arguments of the commands: ``simulate`` and the two rollout commands share one
definition (:func:`add_ic_arguments`) and turn the parsed arguments into the options of :func:`make`
(:func:`ic_options`)."""

from __future__ import annotations

from pathlib import Path

from ..options import parse_size
from .kinds import KINDS

#: the IC kinds read from a file (``--ic-file``); the others are made from ``--seed``, ``--mean``, ``--amplitude``,
#: ``--frequency``
FILE_IC_KINDS = ("mesh", "npy", "h5")


def add_ic_arguments(g, size_default, size_help: str, boxes: bool = False) -> None:
    """The initial-condition arguments of ``simulate`` and of the rollout commands (``--size`` differs:
    its default and help are the caller's; ``boxes``: it also takes X,Y,Z, ``ch_numba.options.parse_size``)."""
    g.add_argument("--ic", choices=KINDS, default="perlin", help="initial condition (default %(default)s)")
    g.add_argument("--ic-file", type=Path, help="file for --ic mesh (STL/OBJ/PLY), npy (.npy) or h5 (a data set)")
    g.add_argument("--ic-sequence", type=int, default=0, help="--ic h5: sequence to start from (default 0)")
    g.add_argument("--ic-frame", type=int, default=0, help="--ic h5: frame to start from (default 0)")
    g.add_argument(
        "--size",
        type=parse_size if boxes else int,
        default=size_default,
        help=size_help,
        metavar="N" + ("|X,Y,Z" if boxes else ""),
    )
    g.add_argument("--seed", type=int, default=7, help="IC seed (default %(default)s)")
    g.add_argument(
        "--frequency",
        type=int,
        default=4,
        help="Perlin lattice cells per side (correlation length L/f; default %(default)s)",
    )
    g.add_argument(
        "--mean", type=float, default=0.5, help="mean phi of perlin/random/slice/layers ICs (default %(default)s)"
    )
    g.add_argument(
        "--amplitude",
        type=float,
        default=0.1,
        help="fluctuation amplitude of perlin/random/slice (default %(default)s)",
    )


def ic_options(
    kind: str,
    *,
    mean: float = 0.5,
    amplitude: float = 0.1,
    frequency: int = 4,
    ic_file=None,
    ic_sequence: int = 0,
    ic_frame: int = 0,
) -> dict:
    """The options of :func:`ch_numba.initial.make` that the IC arguments ask for (and that the output files
    record as the IC, with its kind and seed): the file of a file IC (:data:`FILE_IC_KINDS`; for ``h5`` with the
    sequence and frame), else mean, amplitude and frequency. ValueError (one line) if a file IC has no file."""
    if kind in FILE_IC_KINDS:
        if ic_file is None:
            raise ValueError(f"--ic {kind} needs --ic-file")
        options = {"path": str(ic_file)}
        if kind == "h5":
            options.update(sequence=ic_sequence, frame=ic_frame)
        return options
    return {"mean": mean, "amplitude": amplitude, "frequency": frequency}


def ic_options_from_args(a) -> dict:
    """:func:`ic_options` of parsed arguments (:func:`add_ic_arguments`)."""
    return ic_options(
        a.ic,
        mean=a.mean,
        amplitude=a.amplitude,
        frequency=a.frequency,
        ic_file=a.ic_file,
        ic_sequence=a.ic_sequence,
        ic_frame=a.ic_frame,
    )
