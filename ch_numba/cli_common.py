"""Shared CLI plumbing for ch_numba, surrogate and export: logging, one-line errors, provenance.

Every ``main(argv=None)`` in the project is wrapped by :func:`run`: expected
failures (bad input, diverged run, unreadable file) end the program with a
single ``error: ...`` line on stderr and exit status 2, without a traceback.
"""

from __future__ import annotations

import functools
import logging
import shlex
import subprocess
import sys
from pathlib import Path

EXPECTED_ERRORS = (ValueError, FileNotFoundError, PermissionError, RuntimeError, OSError)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s", stream=sys.stderr)


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
        out = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty"], capture_output=True,
                             text=True, timeout=10)
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


def run(main_body, argv=None) -> int:
    """Call ``main_body(argv)``; turn expected exceptions into one line and exit code 2."""
    try:
        return main_body(argv) or 0
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except EXPECTED_ERRORS as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 2
