"""The torch-free runtime: run an exported CRNN step with numpy and onnxruntime only.

    from export.runtime import Rollout, TrainingRangeWarning       # numpy + onnxruntime only
    r = Rollout("model.onnx", providers="auto", threads=None, physics=None)
    for phi in r.rollout(r.downscale(phi0), steps=1000, every=100): ...

The layer between the solver (``ch_numba``) and the PyTorch side (``surrogate``, the exporter):

:mod:`export.runtime.spec`
    the contract between the exporter and the runtime: the step's signature and the ``ch3d``
    metadata schema (standard library only).
:mod:`export.runtime.resample`
    the nearest down/upsampling between the ground-truth grid and the network's (numpy only).
:mod:`export.runtime.runner_base`
    what the two runners of a step share (:class:`RunnerBase`: :class:`Rollout` here and
    ``surrogate.runner.TorchRunner``): metadata-derived properties and input checks (numpy only).
:mod:`export.runtime.guards`
    what a model was trained on and the checks of a caller's input against it: the training range
    of mean φ, the one physics-mismatch check, :class:`TrainingRangeWarning` (standard library and
    the stdlib-only ``ch_numba.params``).
:mod:`export.runtime.providers`
    the onnxruntime session: execution providers, session options, the device.
:mod:`export.runtime.session`
    :class:`Rollout`: an exported step in an onnxruntime session, hidden states kept on the device.
:mod:`export.runtime.models`
    the shipped models by name: :func:`model_path` (``Rollout("crnn64")``), :func:`list_models`,
    :func:`model_card` (metadata + a short card; the files are installed as the package ``ch3d_models``).
:mod:`export.runtime.halo`
    domain decomposition: :func:`step_halo`, one stateless step of a subdomain with ghost layers, and
    :func:`ghosted`, a periodic block with ghosts (numpy only; the session is the caller's Rollout).

Imports: the standard library, numpy, onnxruntime and these modules only (and ``ch_numba.params``,
which imports the standard library only) — not ``surrogate``, torch, nor the solver's numba, scipy,
h5py, matplotlib (tests/test_runtime.py checks it). The names below are imported on first use
(PEP 562), so :mod:`export.runtime.guards` (used by ``surrogate.evaluate``) and the other numpy-only
modules import without onnxruntime; ``from export.runtime import Rollout`` works as before.
"""

import importlib

__all__ = [
    "Rollout",
    "PROVIDERS",
    "cpu_cores",
    "cuda_provider_options",
    "session_options",
    "read_metadata",
    "TrainingRangeWarning",
    "training_mean_range",
    "IC_MEAN_CLIP",
    "MEAN_RANGE_SDS",
    "PHYSICS_RTOL",
    "list_models",
    "model_card",
    "model_path",
]

#: name -> the module of this package that defines it (imported on first use)
_LAZY = {
    "Rollout": ".session",
    "read_metadata": ".session",
    "PROVIDERS": ".spec",
    "cpu_cores": ".providers",
    "cuda_provider_options": ".providers",
    "session_options": ".providers",
    "session_device": ".providers",
    "TrainingRangeWarning": ".guards",
    "training_mean_range": ".guards",
    "mean_range_problem": ".guards",
    "physics_mismatches": ".guards",
    "stated_physics": ".guards",
    "IC_MEAN_CLIP": ".guards",
    "MEAN_RANGE_SDS": ".guards",
    "PHYSICS_RTOL": ".guards",
    "RunnerBase": ".runner_base",
    "check_threads": ".runner_base",
    "check_counts": ".runner_base",
    "downsample": ".resample",
    "upsample": ".resample",
    "step_halo": ".halo",
    "ghosted": ".halo",
    "halo_cells": ".spec",
    "list_models": ".models",
    "model_card": ".models",
    "model_path": ".models",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'export.runtime' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
