"""Deprecated alias of :mod:`export.runtime.runner_base` (its new home since issue 23; import from there).

What the two runners of a CRNN step share: metadata-derived properties and input checks (numpy only).
"""

from .runtime.runner_base import RunnerBase, __all__, check_threads  # noqa: F401
