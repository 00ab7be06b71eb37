"""Deprecated alias of the old CLI helpers: use ch_numba.cli_runner, ch_numba.files, ch_numba.provenance, ch_numba.solver and ch_numba.initial."""  # noqa: E501

from __future__ import annotations

from .cli_runner import EXPECTED_ERRORS, PROJECT_LOGGERS, run, setup_logging
from .files import check_input_file, check_output
from .initial.arguments import FILE_IC_KINDS, add_ic_arguments, ic_options, ic_options_from_args
from .provenance import code_version, command_line, git_describe
from .solver import available_memory, check_memory

__all__ = [
    "EXPECTED_ERRORS",
    "PROJECT_LOGGERS",
    "setup_logging",
    "run",
    "command_line",
    "git_describe",
    "code_version",
    "FILE_IC_KINDS",
    "add_ic_arguments",
    "ic_options",
    "ic_options_from_args",
    "check_output",
    "check_input_file",
    "available_memory",
    "check_memory",
]
