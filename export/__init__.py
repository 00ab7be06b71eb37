"""export: ONNX export of one CRNN step, and PyTorch-free rollouts with onnxruntime.

    python -m export model.pt model.onnx --verify          # export (needs torch, onnx, onnxscript)
    python -m export.rollout model.onnx --ic perlin --size 64 --steps 10000 --every 100 --out run.h5

    from export.runtime import Rollout                      # numpy + onnxruntime only
    r = Rollout("model.onnx")
    for phi in r.rollout(r.downscale(phi0), steps=1000, every=100): ...

Layers (bottom to top; no import climbs): ``ch_numba`` (the solver) -> :mod:`export.runtime` (the
torch-free runtime, a subpackage: ``spec`` the step's signature and metadata schema, ``resample``
the nearest down/upsampling, ``runner_base`` what ``Rollout`` and ``surrogate.runner.TorchRunner``
share, ``guards`` the training range and the one physics check, ``providers`` and ``session`` the
onnxruntime session, class ``Rollout``) and :mod:`export.rollout` (the rollout command, no torch)
-> ``surrogate`` (torch: the model, training, evaluation, the model card ``surrogate.card``) -> the
exporter, :mod:`export.onnx_export` and ``python -m export`` (torch -> ONNX; adds its "exported"
section to the card). :mod:`export.spec`, :mod:`export.resample` and :mod:`export.runner_base` are
deprecated aliases of their ``export.runtime`` homes.
This file must never import torch: the names below are imported on first use.

Embedding: ``export.runtime`` imports numpy and onnxruntime and nothing else of this project or its
dependencies (but the stdlib-only ``ch_numba.params``): not ``surrogate``, torch, nor the solver's
numba, scipy, h5py, matplotlib (tests/test_runtime.py checks it). The package's base install still
brings the solver's dependencies; a host code that only runs
exported models can install ``pip install numpy onnxruntime`` and then ``pip install --no-deps .``
in a checkout (``export.rollout``, the CLI that writes data-set files, needs the base install).
"""

import importlib

__all__ = ["Rollout", "export_checkpoint", "verify"]

_LAZY = {"Rollout": ".runtime", "export_checkpoint": ".onnx_export", "verify": ".onnx_export"}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'export' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
