"""Provenance: which command and which code wrote an output (stored in data sets, rollouts, checkpoints, models).

:func:`command_line` is the command as the user typed it; :func:`code_version` the package version plus,
in a checkout of the project, its ``git describe`` (:func:`git_describe`). Output files store both (root
attributes ``command`` and ``code_version``); they record *who* wrote a file, not what it holds.

This module imports the standard library only.
"""

from __future__ import annotations

import functools
import shlex
import subprocess
import sys
from pathlib import Path


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
