"""Command-line options declared once, in the fields of the configuration dataclasses.

A configuration field that is also a command-line option says so in its metadata, with its help, and
its flag, choices, metavar or argparse action where the defaults below do not fit::

    @dataclasses.dataclass(frozen=True)
    class TrainConfig:
        epochs: int = option(100, "total epochs (default %(default)s)")
        amp: str = option("auto", "mixed precision (default %(default)s)", choices=AMP_CHOICES)
        equivariant: bool = option(False, "cube-equivariant kernels", action="bool")   # --equivariant/--no-equivariant
        augment: bool = option(True, "no cube symmetries", action="store_false")      # --no-augment

:func:`add_options` adds one argparse option per such field — flag ``--field-name`` (``--no-field-name``
for ``store_false``), type from the annotation (``int``, ``float``, ``str``, optionally ``| None``),
default from the field — and :func:`from_args` builds the dataclass from the parsed namespace, so
adding an option is one edit: the field. Options whose command-line form differs from the field
(one flag filling two fields, another default on the command line) stay written by hand beside the
generated ones and are passed to :func:`from_args` as keywords.

Standard library only: every command of the three packages builds its parser from here without
importing numba, torch or onnxruntime.
"""

from __future__ import annotations

import argparse
import dataclasses
import operator
from collections.abc import Iterable
from typing import Any, Callable

__all__ = [
    "option",
    "add_options",
    "from_args",
    "option_fields",
    "parse_indices",
    "parse_range",
    "parse_size",
    "grid_shape",
    "SEED_MAX",
    "check_seed",
]

#: the metadata key of a command-line option
KEY = "cli"
#: argparse actions a boolean option may use: "bool" = --x/--no-x (BooleanOptionalAction)
BOOL_ACTIONS = ("store_true", "store_false", "bool")
_TYPES = {"int": int, "float": float, "str": str}
#: the largest seed a command takes: the data sets store seeds as int64 (numpy's generators take any int >= 0)
SEED_MAX = 2**63 - 1


@dataclasses.dataclass(frozen=True)
class Option:
    """How a field appears on the command line (see the module docstring)."""

    help: str
    flag: str | None = None
    type: Callable[[str], Any] | None = None
    choices: tuple | None = None
    metavar: str | None = None
    action: str | None = None
    group: str | None = None
    positional: bool = False
    required: bool = False


def option(default=dataclasses.MISSING, help: str = "", **cli) -> Any:
    """A dataclass field with default ``default`` (none: a required field) that is also a command-line
    option (keywords: the :class:`Option` fields: flag, type, choices, metavar, action, group, positional,
    required)."""
    if cli.get("action") not in (None, *BOOL_ACTIONS):
        raise ValueError(f"action must be one of {BOOL_ACTIONS}, got {cli['action']!r}")
    if "choices" in cli and cli["choices"] is not None:
        cli["choices"] = tuple(cli["choices"])
    return dataclasses.field(default=default, metadata={KEY: Option(help=help, **cli)})


def option_fields(cls) -> list[dataclasses.Field]:
    """The fields of dataclass ``cls`` that are command-line options, in declaration order."""
    return [f for f in dataclasses.fields(cls) if KEY in f.metadata]


def _value_type(f: dataclasses.Field) -> Callable[[str], Any]:
    """The parser of a field's values from its annotation (``int``, ``float``, ``str``, ``X | None``)."""
    annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    name = annotation.replace(" ", "").removesuffix("|None").removeprefix("None|")
    if name not in _TYPES:
        raise TypeError(f"field {f.name}: give option(type=...) for the annotation {f.type!r}")
    return _TYPES[name]


def flag_of(f: dataclasses.Field) -> str:
    """The option's flag: given, else ``--name-with-dashes`` (``--no-...`` for ``store_false``)."""
    opt: Option = f.metadata[KEY]
    if opt.flag:
        return opt.flag
    name = f.name.replace("_", "-")
    return f"--no-{name}" if opt.action == "store_false" else f"--{name}"


def add_options(parser: argparse.ArgumentParser, cls, *, only: Iterable[str] | None = None) -> None:
    """Add the options of dataclass ``cls`` to ``parser`` (argument groups by ``Option.group``, created
    once per title in order); ``only``: these field names only."""
    wanted = None if only is None else set(only)
    groups: dict[str | None, Any] = {None: parser}
    for f in option_fields(cls):
        if wanted is not None and f.name not in wanted:
            continue
        opt: Option = f.metadata[KEY]
        if opt.group not in groups:
            groups[opt.group] = parser.add_argument_group(opt.group)
        target = groups[opt.group]
        default = None if f.default is dataclasses.MISSING else f.default
        kw: dict[str, Any] = {"help": opt.help}
        if opt.metavar is not None:
            kw["metavar"] = opt.metavar
        if opt.action in ("store_true", "store_false"):
            kw.update(action=opt.action, dest=f.name)
        elif opt.action == "bool":
            kw.update(action=argparse.BooleanOptionalAction, default=default)
        else:
            kw["type"] = opt.type or _value_type(f)
            if opt.choices is not None:
                kw["choices"] = opt.choices
            if opt.required:
                kw["required"] = True
            elif not opt.positional:
                kw["default"] = default
        if opt.positional:
            target.add_argument(f.name, **kw)
        else:
            target.add_argument(flag_of(f), **kw)


def from_args(cls, args: argparse.Namespace, **given):
    """``cls`` built from the parsed ``args`` (its option fields) and ``given`` (the other fields, or
    options whose command-line form differs; ``given`` wins)."""
    values = {f.name: getattr(args, f.name) for f in option_fields(cls) if hasattr(args, f.name)}
    values.update(given)
    return cls(**values)


# --------------------------------------------------------------------------- value parsers (Option.type)


def parse_indices(text: str) -> tuple[int, ...]:
    """'0,3,5' → (0, 3, 5); ranges 'A-B' (inclusive) are allowed: '0-2,7' → (0, 1, 2, 7)."""
    try:
        out = []
        for part in text.split(","):
            if "-" in part.strip()[1:]:
                lo, hi = part.split("-", 1)
                out.extend(range(int(lo), int(hi) + 1))
            else:
                out.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sequence indices like 0,3,5 or 0-9, got {text!r}") from None
    if not out or min(out) < 0:
        raise argparse.ArgumentTypeError(f"expected non-negative sequence indices, got {text!r}")
    return tuple(out)


def parse_size(text: str) -> int | tuple[int, int, int]:
    """``--size``: 'N' → N (an N³ box) or 'X,Y,Z' → (X, Y, Z) (a box need not be a cube; equal edges give N)."""
    try:
        values = tuple(int(v) for v in str(text).split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a grid edge N or X,Y,Z (integers), got {text!r}") from None
    if len(values) not in (1, 3):
        raise argparse.ArgumentTypeError(f"expected a grid edge N or three edges X,Y,Z, got {text!r}")
    if len(values) == 1 or len(set(values)) == 1:
        return values[0]
    return values


def grid_shape(size) -> tuple[int, int, int]:
    """(X, Y, Z) of a ``--size`` value: an int N (N³) or three ints."""
    if isinstance(size, int):
        return (size,) * 3
    return tuple(int(n) for n in size)


def grid_text(size) -> str:
    """'64^3' for a cube, '64x64x16' otherwise (logs and messages)."""
    shape = grid_shape(size)
    return f"{shape[0]}^3" if len(set(shape)) == 1 else "x".join(map(str, shape))


def parse_range(text: str) -> tuple[float | None, float | None]:
    """'T0:T1' → (T0, T1); either side may be empty (open): '50:' → (50, None)."""
    try:
        lo, hi = text.split(":")
        return (float(lo) if lo.strip() else None), (float(hi) if hi.strip() else None)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected T_MIN:T_MAX (either may be empty), got {text!r}") from None


def check_seed(value, what: str = "--seed", low: int = 0) -> int:
    """``value`` as an int in ``low``..:data:`SEED_MAX` (what a data set's int64 seed holds), else a
    one-line ValueError naming ``what``; the commands call it before they write anything."""
    try:
        if isinstance(value, bool) or type(value).__name__ == "bool_":
            raise TypeError
        number = operator.index(value)
    except TypeError:
        raise ValueError(f"{what} must be an integer in {low}..{SEED_MAX}, got {value!r}") from None
    if not low <= number <= SEED_MAX:
        raise ValueError(f"{what} must be in {low}..{SEED_MAX}, got {number}")
    return number


def check_threads(threads, what: str = "--threads") -> None:
    """``--threads`` of a command: None (the runtime's choice) or >= 1; else a one-line ValueError naming
    ``what``, raised before anything is loaded."""
    if threads is not None and threads < 1:
        raise ValueError(f"{what} must be >= 1, got {threads}")
