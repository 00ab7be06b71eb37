"""``python -m surrogate {train,...}``: thin command-line front end of the surrogate.

Each subcommand is one entry of :data:`COMMANDS`: a help line, a function that adds its
arguments to an argparse sub-parser, and a function ``run(args, command)`` that builds the
configuration and calls the library. Adding a subcommand = adding an entry. Errors on bad input
are one line on stderr with exit status 2 (``ch_numba.cli_common.run``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Callable, NamedTuple

from ch_numba import cli_common

log = logging.getLogger("surrogate")

EXAMPLES = """examples:
  python -m surrogate train data.h5 --out runs/crnn --epochs 100
  python -m surrogate train data.h5 --out runs/crnn --epochs 200 --resume      # continue a stopped run
  python -m surrogate train data.h5 --out runs/ablation --no-conservative --mass-penalty 1e-3
  torchrun --nproc_per_node 4 -m surrogate train data.h5 --out runs/ddp --batch 4   # data parallel
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
    from .train import AMP_CHOICES, TrainConfig

    d = TrainConfig(data="", out="")
    p.add_argument("data", type=Path, help="ch3d data set (.h5) from `python -m ch_numba generate`")
    p.add_argument("--out", type=Path, required=True, help="run folder: last.pt, best.pt, log.csv, tensorboard/")
    p.add_argument("--epochs", type=int, default=d.epochs, help="total epochs (default %(default)s)")
    p.add_argument("--batch", type=int, default=d.batch, help="sequences per batch and process (default %(default)s)")
    p.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate (default %(default)s)")
    p.add_argument(
        "--ramp", type=int, default=d.ramp, help="curriculum epochs R of teacher forcing (default %(default)s; 0: none)"
    )
    p.add_argument(
        "--conservative",
        action=argparse.BooleanOptionalAction,
        default=d.conservative,
        help="flux head + divergence (mass conserved; default) or the sigmoid ablation",
    )
    p.add_argument("--hidden", type=int, default=d.hidden, help="hidden channels (default %(default)s)")
    p.add_argument("--kernel", type=int, default=d.kernel, help="convolution kernel size (default %(default)s)")
    p.add_argument(
        "--downscale",
        type=int,
        default=d.downscale,
        help="nearest downsampling factor of the stored grid (default %(default)s: 64^3 -> 32^3)",
    )
    p.add_argument(
        "--seq-len",
        type=parse_seq_len,
        default=(d.min_len, d.max_len),
        metavar="N|MIN:MAX",
        help="training sub-sequence length in frames, fixed or a range drawn per batch "
        "(default 2: i.e. from 2 frames to all stored frames)",
    )
    p.add_argument("--no-augment", dest="augment", action="store_false", help="no cube symmetries / phase swap")
    p.add_argument(
        "--mass-penalty",
        type=float,
        default=d.mass_penalty,
        help="weight of the mass-change penalty, non-conservative model only (default %(default)s)",
    )
    p.add_argument(
        "--device", default=d.device, help="auto (cuda if available), cpu, cuda, cuda:N (default %(default)s)"
    )
    p.add_argument(
        "--amp",
        choices=AMP_CHOICES,
        default=d.amp,
        help="mixed precision on CUDA (default %(default)s: bf16 where supported)",
    )
    p.add_argument(
        "--seed", type=int, default=d.seed, help="seed of the weights and the sampling (default %(default)s)"
    )
    p.add_argument("--workers", type=int, default=d.workers, help="data-loader processes (default %(default)s)")
    p.add_argument(
        "--threads",
        type=int,
        default=d.threads,
        help="torch CPU threads (default: torch's choice; on a loaded machine 1 can be several times faster)",
    )
    p.add_argument("--resume", action="store_true", help="continue OUT/last.pt up to --epochs")
    p.add_argument(
        "--best-from", type=int, default=d.best_from, help="first epoch that may become best.pt (default %(default)s)"
    )
    p.add_argument("--no-tensorboard", dest="tensorboard", action="store_false", help="CSV log only")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="tqdm progress bar (default: on a terminal)",
    )


def run_train(a: argparse.Namespace, command: str) -> int:
    from .train import TrainConfig, train

    min_len, max_len = a.seq_len
    config = TrainConfig(
        data=a.data,
        out=a.out,
        epochs=a.epochs,
        batch=a.batch,
        lr=a.lr,
        ramp=a.ramp,
        conservative=a.conservative,
        hidden=a.hidden,
        kernel=a.kernel,
        downscale=a.downscale,
        min_len=min_len,
        max_len=max_len,
        augment=a.augment,
        mass_penalty=a.mass_penalty,
        device=a.device,
        amp=a.amp,
        seed=a.seed,
        workers=a.workers,
        threads=a.threads,
        resume=a.resume,
        best_from=a.best_from,
        tensorboard=a.tensorboard,
        progress=a.progress,
    )
    train(config, command=command)
    return 0


#: subcommand → (help, add_arguments(parser), run(args, command_line)).
COMMANDS: dict[str, Command] = {
    "train": Command(
        "train the CRNN on a data set (curriculum, checkpoints, --resume, torchrun)", add_train_arguments, run_train
    ),
}


# --------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m surrogate",
        description="Conservative ConvGRU surrogate of 3D Cahn-Hilliard flow: train, evaluate, roll out.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.help[:1].upper() + cmd.help[1:] + ".")
        cmd.add_arguments(p)
    return parser


def _main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    cli_common.setup_logging(a.verbose)
    command = cli_common.command_line("python -m surrogate", argv)
    return COMMANDS[a.command].run(a, command) or 0


def main(argv=None) -> int:
    return cli_common.run(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
