"""Deprecated alias of :mod:`export.runtime.resample` (its new home since issue 23; import from there).

Nearest resampling between the ground-truth grid and the network's grid (numpy only).
"""

from .runtime.resample import __all__, downsample, upsample  # noqa: F401
