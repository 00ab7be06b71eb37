"""``python -m surrogate {train,evaluate,rollout}``: thin command-line front end of the surrogate.

Each subcommand is one entry of :data:`COMMANDS`: a help line, a function that adds its
arguments to an argparse sub-parser, and a function ``run(args, command)`` that builds the
configuration and calls the library. Adding a subcommand = adding an entry. Errors on bad input
are one line on stderr with exit status 2 (``ch_numba.cli_runner.run``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Callable, NamedTuple

from ch_numba import cli_runner, provenance
from ch_numba.options import check_threads, parse_indices, parse_range  # noqa: F401  (parse_*: their old home)

log = logging.getLogger("surrogate")

EXAMPLES = """examples:
  python -m surrogate train data.h5 --out runs/crnn --epochs 100
  python -m surrogate train data.h5 --out runs/crnn --epochs 200 --resume      # continue a stopped run
  python -m surrogate train data.h5 --out runs/ablation --no-conservative --mass-penalty 1e-3
  python -m surrogate train data.h5 --out runs/eq --equivariant --init-from models/crnn_paper.pt   # projected
  torchrun --nproc_per_node 4 -m surrogate train data.h5 --out runs/ddp --batch 4   # data parallel
  python -m surrogate train data.h5 --out runs/fast --equivariant --amp bf16 --bptt 10   # CPU: bf16, cut backprop
  python -m surrogate evaluate runs/crnn/best.pt data.h5 --out eval/crnn                 # val split, all frames
  python -m surrogate evaluate model.onnx data.h5 --out eval/onnx --max-sequences 20     # no PyTorch needed
  python -m surrogate evaluate runs/crnn/best.pt data.h5 --out eval/s035 --sequences 0,3,5 --fit-range 20:200
  python -m surrogate rollout runs/crnn/best.pt --ic perlin --size 64 --steps 1000 --every 10 --out run.h5
  python -m surrogate train film.h5 --out runs/film --equivariant --init-from models/crnn64.pt   # walls: the data's
  python -m surrogate rollout runs/film/best.pt --ic perlin --size 64,64,32 --boundary periodic,periodic,neumann \
      --steps 1000 --every 10 --out film_run.h5
"""


class Command(NamedTuple):
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, str], int | None]


# --------------------------------------------------------------------------- train


def parse_seq_len(text: str) -> tuple[int, int | None]:
    """'N' → (N, N); 'A:B' → (A, B); 'A:' → (A, None) (None: all stored frames)."""
    try:
        if ":" in text:
            lo, hi = text.split(":")
            return int(lo), (int(hi) if hi.strip() else None)
        n = int(text)
        return n, n
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or MIN:MAX (frames), got {text!r}") from None


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    from ch_numba.options import add_options

    from .config import TrainConfig  # not .train: building the parser must not import torch

    add_options(p, TrainConfig)
    p.add_argument(
        "--seq-len",
        type=parse_seq_len,
        default=(TrainConfig.min_len, TrainConfig.max_len),
        metavar="N|MIN:MAX",
        help="training sub-sequence length in frames, fixed or a range drawn per batch "
        "(default 2: i.e. from 2 frames to all stored frames)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads, >= 1 (default: torch's choice; on a loaded machine 1 can be several times faster)",
    )


def _check_train_grid(data: Path, downscale: int, kernel: int) -> None:
    """The network's grid (the data set's grid / --downscale) must be at least the kernel along each axis."""
    from ch_numba import open_dataset
    from export.runtime.grid import check_kernel

    if downscale < 1:
        return  # TrainConfig says so
    with open_dataset(data) as ds:
        shape = ds.shape
    side = min(shape)

    def odd(n: int) -> int:  # the largest odd kernel <= n (a kernel is odd)
        return n if n % 2 else n - 1

    if side // kernel >= 1:
        remedy = f"use --downscale <= {side // kernel}"
    elif odd(side // downscale) >= 1:  # even --downscale 1 is too coarse: the kernel is too large
        remedy = f"use --kernel <= {odd(side // downscale)}"
    else:
        remedy = f"use --downscale 1 and --kernel <= {odd(side)}"
    check_kernel(
        shape,
        downscale,
        kernel,
        source=str(data),
        cause=f"--downscale {downscale}" if downscale > 1 else None,
        remedy=remedy,
    )


def run_train(a: argparse.Namespace, command: str) -> int:
    check_threads(a.threads)
    try:
        from .train import TrainConfig, train
    except ImportError as exc:
        raise ValueError(f"`surrogate train` needs PyTorch ({exc}); pip install 'ch3d[train]'") from None
    _check_train_grid(a.data, a.downscale, a.kernel)

    from ch_numba.options import from_args

    min_len, max_len = a.seq_len
    # a.threads None: torch's choice, which TrainConfig calls 0
    config = from_args(TrainConfig, a, min_len=min_len, max_len=max_len, threads=a.threads or 0)
    last = Path(a.out) / "last.pt"
    cli_runner.set_resume_hint(
        lambda: f"the finished epochs are kept in {last}: add --resume to continue" if last.exists() else ""
    )
    train(config, command=command)
    return 0


# --------------------------------------------------------------------------- evaluate


def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    from ch_numba.options import add_options

    from .evaluate import EvalConfig

    add_options(p, EvalConfig)


def run_evaluate(a: argparse.Namespace, command: str) -> int:
    from ch_numba.options import from_args

    from .evaluate import EvalConfig, evaluate

    evaluate(from_args(EvalConfig, a), command=command)
    return 0


# --------------------------------------------------------------------------- rollout


def add_rollout_arguments(p: argparse.ArgumentParser) -> None:
    from export.rollout import add_rollout_arguments as shared

    shared(p, "checkpoint (.pt) written by `python -m surrogate train`")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:N (default %(default)s)")
    p.add_argument("--threads", type=int, help="torch CPU threads, >= 1 (default: torch's choice)")


def run_rollout(a: argparse.Namespace, command: str) -> int:
    from export.rollout import config_from_args, rollout_boundary, run_from_args

    config = config_from_args(a)  # checks the output path and the numbers (--threads too) first
    try:
        from .runner import TorchRunner
    except ImportError as exc:
        raise ValueError(
            f"`surrogate rollout` needs PyTorch ({exc}); for an exported .onnx model use `python -m export.rollout`"
        ) from None
    runner = TorchRunner(a.model, device=a.device, threads=a.threads, boundary=rollout_boundary(a))
    run_from_args(a, runner, config, command)
    return 0


#: subcommand → (help, add_arguments(parser), run(args, command_line)).
COMMANDS: dict[str, Command] = {
    "train": Command(
        "train the CRNN on a data set (curriculum, checkpoints, --resume, torchrun)", add_train_arguments, run_train
    ),
    "evaluate": Command(
        "compare a model's rollouts (.pt or .onnx) with ground truth: RMSE, interface displacement, free energy, "
        "power law, mass; evaluation.json and PNG plots",
        add_evaluate_arguments,
        run_evaluate,
    ),
    "rollout": Command(
        "roll a checkpoint out from an initial condition and write the frames in the data-set layout (as "
        "`python -m export.rollout` does for ONNX)",
        add_rollout_arguments,
        run_rollout,
    ),
}


# --------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = cli_runner.ArgumentParser(
        prog="python -m surrogate",
        description="Conservative ConvGRU surrogate of 3D Cahn-Hilliard flow: train, evaluate, roll out.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=cli_runner.ArgumentParser
    )
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.help[:1].upper() + cmd.help[1:] + ".")
        cmd.add_arguments(p)
    return parser


def _main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    cli_runner.setup_logging(a.verbose)
    command = provenance.command_line("python -m surrogate", argv)
    return COMMANDS[a.command].run(a, command) or 0


def main(argv=None) -> int:
    return cli_runner.run(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
