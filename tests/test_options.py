"""Command-line options generated from the configuration dataclasses (ch_numba.options): flags, types,
defaults, choices and actions come from the fields, and parsing the defaults rebuilds the default
configuration."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from ch_numba.options import add_options, from_args, option, option_fields
from ch_numba.params import CHParams
from surrogate.config import TrainConfig


@dataclasses.dataclass(frozen=True)
class Toy:
    path: str = option(positional=True, type=Path, help="input")
    out: str = option(type=Path, required=True, help="output")
    count: int = option(3, "how many (default %(default)s)")
    rate: float | None = option(None, "a rate", metavar="R", group="numbers")
    mode: str = option("a", "the mode", choices=("a", "b"))
    fancy: bool = option(False, "fancy", action="bool")
    quiet: bool = option(False, "quiet", action="store_true")
    check: bool = option(True, "skip the check", action="store_false")
    hidden_field: int = 7  # not an option


def _parser(cls) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(exit_on_error=False)
    add_options(p, cls)
    return p


def test_flags_types_and_actions_come_from_the_fields():
    p = _parser(Toy)
    a = p.parse_args(["in.h5", "--out", "o", "--count", "5", "--rate", "0.5", "--mode", "b", "--no-fancy"])
    assert (a.path, a.out, a.count, a.rate, a.mode, a.fancy, a.quiet, a.check) == (
        Path("in.h5"),
        Path("o"),
        5,
        0.5,
        "b",
        False,
        False,
        True,
    )
    a = p.parse_args(["in.h5", "--out", "o", "--fancy", "--quiet", "--no-check"])
    assert (a.count, a.rate, a.mode, a.fancy, a.quiet, a.check) == (3, None, "a", True, True, False)
    assert not hasattr(a, "hidden_field")
    assert [f.name for f in option_fields(Toy)] == ["path", "out", "count", "rate", "mode", "fancy", "quiet", "check"]
    assert "numbers" in [g.title for g in p._action_groups]
    for bad in (["in.h5"], ["in.h5", "--out", "o", "--mode", "c"], ["in.h5", "--out", "o", "--count", "x"]):
        with pytest.raises((argparse.ArgumentError, SystemExit)):
            p.parse_args(bad)


def test_from_args_builds_the_dataclass_and_given_values_win():
    a = _parser(Toy).parse_args(["in.h5", "--out", "o", "--count", "5"])
    toy = from_args(Toy, a, hidden_field=9, count=6)
    assert toy == Toy(path=Path("in.h5"), out=Path("o"), count=6, hidden_field=9)


def test_bad_declarations_are_refused():
    with pytest.raises(ValueError, match="action must be one of"):
        option(1, "x", action="count")

    @dataclasses.dataclass
    class Odd:
        shape: tuple = option((1, 2), "a tuple")

    with pytest.raises(TypeError, match="give option\\(type=...\\)"):
        add_options(argparse.ArgumentParser(), Odd)


def test_physics_options_rebuild_the_default_parameters_and_any_given_ones():
    p = _parser(CHParams)
    assert from_args(CHParams, p.parse_args([])) == CHParams()
    given = ["--epsilon", "1.5", "--dt", "0.05", "--scheme", "spectral", "--order", "1", "--stabilization", "2"]
    assert from_args(CHParams, p.parse_args(given)) == CHParams(
        epsilon=1.5, dt=0.05, scheme="spectral", order=1, stabilization=2.0
    )


def test_train_options_rebuild_the_default_configuration():
    from surrogate.cli import build_parser

    a = build_parser().parse_args(["train", "d.h5", "--out", "r"])
    min_len, max_len = a.seq_len
    config = from_args(TrainConfig, a, min_len=min_len, max_len=max_len, threads=a.threads or 0)
    assert config == TrainConfig(data="d.h5", out="r")


def test_generate_options_rebuild_the_default_data_set_configuration():
    from ch_numba.cli import _params, build_parser
    from ch_numba.dataset import DatasetConfig

    a = build_parser().parse_args(["generate", "g.h5", "--sequences", "3"])
    assert from_args(DatasetConfig, a, frequencies=(2, 3, 4)) == DatasetConfig(sequences=3)
    assert _params(a) == CHParams()
    a = build_parser().parse_args(["simulate", "s.h5", "--frames", "7", "--storage", "float16"])
    assert (a.frames, a.steps_per_frame, a.dtype, a.storage) == (7, 400, "float32", "float16")
    assert not hasattr(a, "sequences")  # simulate takes the run's options only


def test_evaluate_options_rebuild_the_default_evaluation():
    from surrogate.cli import build_parser
    from surrogate.evaluate import EvalConfig

    a = build_parser().parse_args(["evaluate", "m.onnx", "d.h5", "--out", "e"])
    assert from_args(EvalConfig, a) == EvalConfig(model="m.onnx", data="d.h5", out="e")
    a = build_parser().parse_args(
        ["evaluate", "m.onnx", "d.h5", "--out", "e", "--sequences", "0-2,5", "--fit-range", "5:"]
    )
    assert (from_args(EvalConfig, a).sequences, from_args(EvalConfig, a).fit_range) == ((0, 1, 2, 5), (5.0, None))


def test_rollout_options_rebuild_the_default_rollout_configuration(tmp_path):
    from export.rollout import RolloutConfig, build_parser, config_from_args

    a = build_parser().parse_args(["m.onnx", "--out", str(tmp_path / "r.h5")])
    assert config_from_args(a) == RolloutConfig(model="m.onnx", ic={})
    assert (RolloutConfig.steps, RolloutConfig.every, RolloutConfig.storage) == (100, 1, "lzf")
