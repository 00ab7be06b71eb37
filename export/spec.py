"""Deprecated alias of :mod:`export.runtime.spec` (its new home since issue 23; import from there).

The contract between the ONNX export and the runtime: names, shapes and metadata of one step
(standard library only).
"""

from .runtime.spec import (  # noqa: F401
    DYNAMIC_AXES,
    FORMAT,
    FORMAT_VERSION,
    INPUTS,
    METADATA_KEY,
    OUTPUTS,
    PHI_CONVENTION,
    REQUIRED_METADATA,
    WALLS_INPUT,
)
