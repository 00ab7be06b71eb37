"""The command runner shared by ch_numba, surrogate and export: logging, one-line errors, warnings.

Every ``main(argv=None)`` in the project is wrapped by :func:`run`: expected
failures (bad input, diverged run, unreadable file, a full disk, an output another run holds) end the
program with a single ``error: ...`` line on stderr and exit status 2, without a traceback. Every command's parser is
an :class:`ArgumentParser` (its subcommands' parsers too): a command-line error (an unknown choice, a
missing option, a value of the wrong type) is the one line ``error: <argparse's message> (see --help)``
and exit status 2, not argparse's usage block. A reader
that closes the pipe early (``python -m ch_numba info f.h5 | head -1``) ends it quietly.

Outputs follow one rule in every command: an existing output is refused unless ``--overwrite``
(:func:`ch_numba.files.check_output`), an output another run is writing is refused naming that run
(:mod:`ch_numba.locks`), and a finished output is published by a no-clobber rename
(:func:`ch_numba.files.publish`).

Exit status, the same for every command (:data:`EXIT`): 0 done; 1 verification failed (``export
--verify``); 2 bad input or refused (a bad option, a missing or unreadable file, an existing output, a
running job holding the output, a full disk, a diverged run); 3 internal error (a bug: its traceback,
then one ``error: internal error ...`` line); 130 interrupted by SIGINT (Ctrl-C); 141 the
reader of stdout went away (SIGPIPE); 143 terminated by SIGTERM (``kill``, a batch system's time
limit). SIGINT and SIGTERM end the command alike (:func:`run` turns SIGTERM into an exception): one line
``error: interrupted (SIGINT)...`` or ``error: terminated (SIGTERM)...``, the temporary files of the
unfinished output deleted, its lock released, finished work (checkpoints, parts) kept; a command that
can be resumed says how (:func:`set_resume_hint`).

Logging (:func:`setup_logging`): INFO lines of the project on stderr; ``-v`` adds the project's DEBUG
lines (loggers ``ch_numba``, ``surrogate``, ``export``), not the DEBUG output of the libraries
underneath (Numba's compiler dumps, h5py's converters). Warnings (``warnings.warn``, e.g. the
runtime's TrainingRangeWarning) are one ``warning: ...`` line each; with ``-v`` they keep Python's
format (file and line).

This is the top of ch_numba's layers: the data and physics modules never import it.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import threading
import traceback
import warnings

from .files import NoSpaceError, is_no_space
from .provenance import code_version

EXPECTED_ERRORS = (ValueError, FileNotFoundError, PermissionError, RuntimeError, OSError)

#: the exit status of each outcome, the same for every command (module docstring)
EXIT = {
    "done": 0,
    "verification failed": 1,
    "bad input or refused": 2,
    "interrupted (SIGINT)": 130,
    "internal error (a bug)": 3,
    "stdout closed (SIGPIPE)": 141,
    "terminated (SIGTERM)": 143,
}

#: the project's loggers (their children: ch_numba.dataset, export.runtime, ...); ``-v`` shows their DEBUG lines
PROJECT_LOGGERS = ("ch_numba", "surrogate", "export")

log = logging.getLogger(__name__)

_verbose = [False]  # -v of the running command (the warning format)


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose errors are one line, ``error: <message> (see --help)``, with exit status 2
    (argparse prints its usage block first); ``--help`` prints the full help as before. The parsers of
    ``add_subparsers`` are of this class too (argparse makes them of the parent's class)."""

    def error(self, message: str):
        text = " ".join(str(message).split())  # one line whatever argparse wrote
        self.exit(2, f"error: {text} (see --help)\n")


def setup_logging(verbose: bool = False) -> None:
    """INFO and above on stderr, one message per line; ``verbose``: the project's DEBUG lines too (only the
    project's: the libraries' loggers stay at INFO, so Numba's compiler dumps are not shown)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for name in PROJECT_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.NOTSET)
    _verbose[0] = bool(verbose)
    if verbose:
        log.debug("ch3d %s, Python %s (%s)", code_version(), sys.version.split()[0], sys.executable)


def _log_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` of the commands: one ``warning: ...`` log line (Python's format with -v)."""
    if _verbose[0]:
        text = warnings.formatwarning(message, category, filename, lineno, line).rstrip()
    else:
        text = str(message).strip().splitlines()[0] if str(message).strip() else category.__name__
        text = text if text.startswith("warning") else f"warning: {text}"
    log.warning("%s", text)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null: the reader is gone, and the interpreter's final flush must not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a Slurm time limit, ``scancel``), raised by :func:`run`'s handler: a
    KeyboardInterrupt, so that every ``finally`` and ``except KeyboardInterrupt`` that cleans up after Ctrl-C
    (temporary files, locks, open HDF5 files) does the same for it."""


_hint = [""]  # what the running command says after an interrupt (set_resume_hint)


def set_resume_hint(text) -> None:
    """What the running command adds to its interrupt (or full-disk) line, e.g. "finished sequences are kept:
    rerun the same command to resume" (empty: nothing); a callable is asked when the line is written (it
    returns "" where nothing was kept yet)."""
    _hint[0] = text


def _resume_hint() -> str:
    try:
        return str(_hint[0]() if callable(_hint[0]) else _hint[0])
    except Exception:  # the hint must never hide the error itself
        return ""


def _terminated(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the cleanup short
    raise Terminated


_redelivery: list = []  # the timer of _redeliver_swallowed_signal, while one runs


def _redeliver_swallowed_signal(hook_args, fallback=sys.__unraisablehook__):
    """``sys.unraisablehook`` while a command runs: a SIGINT or SIGTERM whose exception was raised inside a
    callback that cannot propagate it (a ctypes callback of Numba's compiler, a ``__del__``) would be printed
    as "Exception ignored ..." and lost, and the command would run to its end with status 0. The signal is
    sent again instead, a few milliseconds later from a helper thread, so that it interrupts the main
    thread at a Python instruction outside the callback (again, should it land in one). Every other
    unraisable exception goes to ``fallback``."""
    exc = hook_args.exc_value
    if not isinstance(exc, KeyboardInterrupt) or threading.current_thread() is not threading.main_thread():
        fallback(hook_args)
        return
    if any(t.is_alive() for t in _redelivery):
        return  # already on its way
    signum = signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT
    if signum == signal.SIGTERM:
        signal.signal(signal.SIGTERM, _terminated)  # _terminated ignored further SIGTERMs when it raised
    timer = threading.Timer(0.01, os.kill, (os.getpid(), signum))
    timer.daemon = True
    _redelivery[:] = [timer]
    timer.start()


def _stop_redelivery() -> None:
    """The interrupt has reached :func:`run`: no signal sent again may cut its message short."""
    for timer in _redelivery:
        timer.cancel()
        timer.join()
    _redelivery.clear()


def _one_line(e: BaseException) -> str:
    """The first line of an exception's text (of a DataLoader worker's exception, which PyTorch re-raises
    as "Caught ValueError in DataLoader worker ... Original Traceback ...": its own last line); a full disk
    reported by a library as a bare errno (h5py's ``[Errno 28] Can't close file (...)``) becomes ``no space
    left on device (PATH): ...``."""
    text = str(e).strip()
    if text.startswith("Caught ") and "Original Traceback" in text:  # torch's DataLoader worker: the worker's line
        last = text.splitlines()[-1].strip()
        text = last.split(": ", 1)[1] if last.startswith(f"{type(e).__name__}: ") else last
    if is_no_space(e) and not isinstance(e, (NoSpaceError, ValueError)):  # a ValueError's text is the project's
        where = getattr(e, "filename", None)
        if where:  # the output's name, not its temporary one (NAME.tmpPID.HOST)
            where = re.sub(r"(^|/)\.?([^/]+)\.tmp\d+\.[^/]+$", r"\1\2", str(where))
            return f"no space left on device writing {where}"
        return f"no space left on device: {text.splitlines()[0][:200]}"
    return text.splitlines()[0] if text else type(e).__name__


def _interrupt_behind(e: BaseException) -> KeyboardInterrupt | None:
    """The SIGINT/SIGTERM (a KeyboardInterrupt) that ``e`` was raised while handling, if any: a ``finally`` or
    ``__exit__`` that fails while the interrupt unwinds the stack (a half-written zip member, an HDF5 file
    closed mid-write) replaces the interrupt by its own exception, which would otherwise read as a bug."""
    seen = set()
    e = e.__context__
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return e
        seen.add(id(e))
        e = e.__context__
    return None


def _interrupted(e: KeyboardInterrupt, previous) -> int:
    """One line for a SIGINT (130) or SIGTERM (143, :class:`Terminated`), with the resume hint of the command."""
    interrupted_handler = None
    while previous is not None and interrupted_handler is None:
        try:  # signal.signal first delivers a pending signal: a second KeyboardInterrupt here
            interrupted_handler = signal.signal(signal.SIGINT, signal.SIG_IGN)  # drops one sent again
        except KeyboardInterrupt:
            pass
    _stop_redelivery()
    term = isinstance(e, Terminated)
    what = "terminated (SIGTERM)" if term else "interrupted (SIGINT)"
    hint = _resume_hint()
    print(f"error: {what}{'; ' + hint if hint else ''}", file=sys.stderr)
    if interrupted_handler is not None:
        signal.signal(signal.SIGINT, interrupted_handler)
    return EXIT["terminated (SIGTERM)"] if term else EXIT["interrupted (SIGINT)"]


def run(main_body, argv=None) -> int:
    """Call ``main_body(argv)``; turn expected exceptions into one line and exit status 2, SIGINT into one
    line and 130, SIGTERM into one line and 143 (:data:`EXIT`).

    A closed pipe on stdout (the reader stopped, e.g. ``| head -1``) ends quietly with status 141
    (128 + SIGPIPE, what a shell reports for a program killed by it), without a message.
    """
    previous = None
    previous_hook = sys.unraisablehook
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminated)
        sys.unraisablehook = lambda hook_args: _redeliver_swallowed_signal(hook_args, previous_hook)
    _hint[0] = ""
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _log_warning
            code = main_body(argv) or 0
        sys.stdout.flush()  # a closed pipe shows here, not at the interpreter's exit
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return 141
    except KeyboardInterrupt as e:
        return _interrupted(e, previous)
    except Exception as e:
        interrupt = _interrupt_behind(e)
        if interrupt is not None:  # raised by a cleanup while the signal unwound the stack: the signal is the news
            log.debug("while stopping: %s: %s", type(e).__name__, _one_line(e))
            return _interrupted(interrupt, previous)
        if isinstance(e, EXPECTED_ERRORS):
            hint = _resume_hint() if is_no_space(e) else ""  # a full disk: what was kept, how to resume
            hint = f"; {hint}" if hint else ""
            print(f"error: {_one_line(e)}{hint}", file=sys.stderr)
            return 2
        # not an expected outcome: a bug of this project; its traceback, then one line
        traceback.print_exc()
        print(
            f"error: internal error (a bug; please report it with the traceback above): {_one_line(e)}", file=sys.stderr
        )
        return EXIT["internal error (a bug)"]
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
            sys.unraisablehook = previous_hook
