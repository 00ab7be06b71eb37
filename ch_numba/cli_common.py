"""Shared CLI plumbing for ch_numba, surrogate and export: logging and one-line errors.

Every ``main(argv=None)`` in the project is wrapped by :func:`run`: expected
failures (bad input, diverged run, unreadable file) end the program with a
single ``error: ...`` line on stderr and exit status 2, without a traceback.
"""

from __future__ import annotations

import logging
import shlex
import sys

EXPECTED_ERRORS = (ValueError, FileNotFoundError, PermissionError, RuntimeError, OSError)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s", stream=sys.stderr)


def command_line(prog: str, argv) -> str:
    """The command as the user typed it (stored in output files for provenance)."""
    args = sys.argv[1:] if argv is None else list(argv)
    return " ".join([prog, *map(shlex.quote, map(str, args))])


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
