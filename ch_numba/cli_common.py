"""Shared CLI plumbing for ch_numba, surrogate and export: logging, one-line errors, provenance.

Every ``main(argv=None)`` in the project is wrapped by :func:`run`: expected
failures (bad input, diverged run, unreadable file) end the program with a
single ``error: ...`` line on stderr and exit status 2, without a traceback. A reader
that closes the pipe early (``python -m ch_numba info f.h5 | head -1``) ends it quietly.

Outputs follow one rule in every command: an existing output is refused unless ``--overwrite``
(:func:`check_output`).

Logging (:func:`setup_logging`): INFO lines of the project on stderr; ``-v`` adds the project's DEBUG
lines (loggers ``ch_numba``, ``surrogate``, ``export``), not the DEBUG output of the libraries
underneath (Numba's compiler dumps, h5py's converters). Warnings (``warnings.warn``, e.g. the
runtime's TrainingRangeWarning) are one ``warning: ...`` line each; with ``-v`` they keep Python's
format (file and line).

The initial-condition arguments of ``simulate`` and of the two rollout commands are one definition
(:func:`add_ic_arguments`, :func:`ic_options`).
"""

from __future__ import annotations

import functools
import logging
import os
import shlex
import subprocess
import sys
import warnings
from pathlib import Path

EXPECTED_ERRORS = (ValueError, FileNotFoundError, PermissionError, RuntimeError, OSError)

#: the project's loggers (their children: ch_numba.dataset, export.runtime, ...); ``-v`` shows their DEBUG lines
PROJECT_LOGGERS = ("ch_numba", "surrogate", "export")

_verbose = [False]  # -v of the running command (the warning format)


def setup_logging(verbose: bool = False) -> None:
    """INFO and above on stderr, one message per line; ``verbose``: the project's DEBUG lines too (only the
    project's: the libraries' loggers stay at INFO, so Numba's compiler dumps are not shown)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for name in PROJECT_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.NOTSET)
    _verbose[0] = bool(verbose)
    if verbose:
        logging.getLogger("ch_numba.cli_common").debug(
            "ch3d %s, Python %s (%s)", code_version(), sys.version.split()[0], sys.executable
        )


def _log_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` of the commands: one ``warning: ...`` log line (Python's format with -v)."""
    if _verbose[0]:
        text = warnings.formatwarning(message, category, filename, lineno, line).rstrip()
    else:
        text = str(message).strip().splitlines()[0] if str(message).strip() else category.__name__
        text = text if text.startswith("warning") else f"warning: {text}"
    logging.getLogger("ch_numba.cli_common").warning("%s", text)


def command_line(prog: str, argv) -> str:
    """The command as the user typed it (stored in output files for provenance)."""
    args = sys.argv[1:] if argv is None else list(argv)
    return " ".join([prog, *map(shlex.quote, map(str, args))])


def git_describe() -> str | None:
    """``git describe --always --dirty`` of the checkout this package runs from, or None.

    None when git is missing or fails, or when the package is not in a checkout of its own (an
    installed copy inside some other repository must not report that repository's commit).
    """
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():  # a folder, or a file in a worktree
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Version of the code that runs: ``"0.1.0+git.<git describe --always --dirty>"``, or ``"0.1.0"``.

    The git part is there when the package runs from a checkout of its own repository and git is
    installed (``-dirty`` marks uncommitted changes); an installed copy gives the package version
    alone, even inside some other repository. Computed once per process.
    """
    from . import __version__

    describe = git_describe()
    return f"{__version__}+git.{describe}" if describe else __version__


# --------------------------------------------------------------------------- initial-condition arguments

#: the IC kinds read from a file (``--ic-file``); the others are made from --seed, --mean, --amplitude, --frequency
FILE_IC_KINDS = ("mesh", "npy", "h5")


def add_ic_arguments(g, size_default, size_help: str) -> None:
    """The initial-condition arguments of ``simulate`` and of the rollout commands (``--size`` differs:
    its default and help are the caller's)."""
    from .initial import KINDS

    g.add_argument("--ic", choices=KINDS, default="perlin", help="initial condition (default %(default)s)")
    g.add_argument("--ic-file", type=Path, help="file for --ic mesh (STL/OBJ/PLY), npy (.npy) or h5 (a data set)")
    g.add_argument("--ic-sequence", type=int, default=0, help="--ic h5: sequence to start from (default 0)")
    g.add_argument("--ic-frame", type=int, default=0, help="--ic h5: frame to start from (default 0)")
    g.add_argument("--size", type=int, default=size_default, help=size_help)
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


# --------------------------------------------------------------------------- outputs and inputs


def check_output(path, overwrite: bool = False) -> Path:
    """Refuse (ValueError, one line) an output ``path`` that exists, unless ``overwrite``; a folder where
    a file is to be written is refused either way. Returns ``path`` as a Path."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give the name of the file to write")
    if path.exists() and not overwrite:
        raise ValueError(f"{path} already exists; remove it, choose another name or pass --overwrite")
    return path


def check_input_file(path, what: str = "file") -> Path:
    """``path`` as a Path if it is a file; ValueError naming ``what`` (e.g. "IC file") if it is missing
    ("WHAT PATH not found") or a folder ("WHAT PATH is a folder, not a file")."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder, not a file")
    if not path.is_file():
        raise ValueError(f"{what} {path} not found")
    return path


def available_memory() -> int | None:
    """Bytes of memory this process may still use: the smaller of /proc/meminfo's MemAvailable and the
    cgroup (v2) limit where they exist, else the physical memory, else None (unknown)."""
    found = []
    try:
        with open("/proc/meminfo") as fh:
            found += [int(line.split()[1]) * 1024 for line in fh if line.startswith("MemAvailable:")]
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            found.append(int(limit))
    except OSError:
        pass
    if not found:
        try:
            found.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
        except (AttributeError, ValueError, OSError):
            return None
    return min(found)


def check_memory(needed: int, what: str) -> None:
    """ValueError (one line) naming the memory ``what`` needs if ``needed`` bytes exceed
    :func:`available_memory` (checked before allocating; nothing happens when it is unknown)."""
    have = available_memory()
    if have is not None and needed > have:
        raise ValueError(
            f"{what} needs at least {needed / 2**30:,.1f} GiB of memory, but {have / 2**30:,.1f} GiB "
            f"are available; use a smaller grid"
        )


def _quiet_stdout() -> None:
    """Point stdout at /dev/null: the reader is gone, and the interpreter's final flush must not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def run(main_body, argv=None) -> int:
    """Call ``main_body(argv)``; turn expected exceptions into one line and exit code 2.

    A closed pipe on stdout (the reader stopped, e.g. ``| head -1``) ends quietly with status 141
    (128 + SIGPIPE, what a shell reports for a program killed by it), without a message.
    """
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _log_warning
            code = main_body(argv) or 0
        sys.stdout.flush()  # a closed pipe shows here, not at the interpreter's exit
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return 141
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except EXPECTED_ERRORS as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 2
