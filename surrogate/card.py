"""The model card: what a trained CRNN checkpoint is, as the ``ch3d`` metadata (schema in :mod:`export.runtime.spec`).

:func:`build_card` reads a loaded checkpoint (:func:`surrogate.load_checkpoint`) into the JSON object
every runner of the model carries as ``metadata``: the architecture, the training data's physics and
grid, the downscale factor, the training's provenance. The PyTorch runner
(:class:`surrogate.runner.TorchRunner`) uses it as it is; the exporter (:mod:`export.onnx_export`)
adds only its "exported" section (and stands its own version in for a code version the checkpoint
lacks) and writes it into the ONNX file, where :class:`export.runtime.Rollout` reads it back.

This module imports no torch itself (the checkpoint's model is already loaded).
"""

from __future__ import annotations

import logging

import numpy as np

import ch_numba
from ch_numba import files
from export.runtime import spec

log = logging.getLogger(__name__)

__all__ = ["build_card", "DEFAULT_DOWNSCALE", "DEFAULT_STEPS_PER_FRAME"]

#: the paper's values, assumed (and listed in the card's ``assumed``) for a checkpoint that lacks them
DEFAULT_DOWNSCALE = 2
DEFAULT_STEPS_PER_FRAME = 400

# (JSON-safe copies of checkpoint entries: ch_numba.files.json_safe, the project's one sanitiser)


def _first(sources, *keys):
    for source in sources:
        for key in keys:
            if isinstance(source, dict) and source.get(key) is not None:
                return source[key]
    return None


def build_card(ckpt: dict) -> dict:
    """The ``ch3d`` metadata (schema in :mod:`export.runtime.spec`) of a loaded checkpoint, without the
    exporter's "exported" section.

    ``ckpt`` is :func:`surrogate.load_checkpoint`'s dict. The training data's root attributes are
    read from ``ckpt["dataset"]["attrs"]`` (what ``python -m surrogate train`` stores, with the data
    set's path and sizes) or ``ckpt["dataset_attrs"]``. Entries the checkpoint lacks (physics,
    ``downscale``) get the paper's defaults and are listed in ``assumed`` (with one warning);
    provenance the checkpoint lacks is None: ``train.code_version`` and ``train.code_version_source``
    too when the checkpoint records no code version (else the version and ``"checkpoint"``).
    ``train.boundary``: the training data's boundary ("X,Y,Z"), only when it had no-flux walls.
    """
    model = ckpt["model"]
    config = dict(model.config)
    dataset = ckpt.get("dataset")
    info = files.json_safe(dataset) if isinstance(dataset, dict) else {}
    attrs = files.json_safe(ckpt.get("dataset_attrs") or info.get("attrs") or {})
    train_config = files.json_safe(ckpt.get("train_config") or {})
    if not isinstance(attrs, dict):
        attrs = {}
    if not isinstance(train_config, dict):
        train_config = {"value": train_config}
    assumed = []
    assumed += [key for key in ("epsilon", "mobility", "W", "dx", "dt") if attrs.get(key) is None]
    # the training data's physics and scheme, one definition (CHParams.as_dict: ε, M, W, dx, dt and, for
    # data made with the spectral scheme, scheme/stabilization/symbol/order); missing entries take the defaults
    physics = ch_numba.CHParams.from_metadata(attrs).as_dict()
    # the training data's boundary goes to train.boundary (only with walls), not beside the physics: a top-level
    # "boundary" would read as the box the model steps, which is the runner's (boundary=), not the card's
    train_boundary = physics.pop("boundary", None)
    steps_per_frame = attrs.get("steps_per_frame")
    if steps_per_frame is None:
        assumed.append("steps_per_frame")
        steps_per_frame = DEFAULT_STEPS_PER_FRAME
    stride = _first([ckpt, train_config], "stride")
    stride = (
        int(stride) if isinstance(stride, (int, np.integer)) and not isinstance(stride, bool) and stride >= 1 else 1
    )
    downscale = _first([ckpt, train_config], "downscale")
    if downscale is None:
        assumed.append("downscale")
        downscale = DEFAULT_DOWNSCALE
    shape = attrs.get("shape")
    train_shape = [int(n) for n in shape] if isinstance(shape, list) and len(shape) == 3 else None
    if train_shape is None and isinstance(attrs.get("size"), int):
        train_shape = [attrs["size"]] * 3
    train_grid = None
    if train_shape is not None:
        train_grid = train_shape[0] if len(set(train_shape)) == 1 else train_shape
    epoch = ckpt.get("epoch")
    code_version = files.json_safe(_first([ckpt, train_config], "code_version"))
    code_version_source = "checkpoint" if code_version is not None else None
    metadata = {
        "format": spec.FORMAT,
        "format_version": spec.FORMAT_VERSION,
        **{k: files.json_safe(v) for k, v in config.items()},
        "equivariant": bool(config.get("equivariant", False)),
        "param_count": int(model.param_count()),  # the free parameters of an equivariant model
        "downscale": int(downscale),
        **physics,
        # per NETWORK step (the runtime's unit): stride stored frames of steps_per_frame solver steps each
        "stride": stride,
        "steps_per_frame": stride * int(steps_per_frame),
        "time_per_step": stride * float(steps_per_frame) * physics["dt"],
        "network_dx": int(downscale) * physics["dx"],
        "train_grid": train_grid,
        "train_shape": train_shape,
        "min_grid": int(config.get("kernel", 3)),
        "dtype": "float32",
        "phi_convention": spec.PHI_CONVENTION,
        "inputs": {
            "phi": "(N, 1, X, Y, Z)",
            "h1": f"(N, {config['hidden']}, X, Y, Z)",
            "h2": f"(N, {config['hidden']}, X, Y, Z)",
        },
        "outputs": {
            "phi_next": "(N, 1, X, Y, Z)",
            "h1_next": f"(N, {config['hidden']}, X, Y, Z)",
            "h2_next": f"(N, {config['hidden']}, X, Y, Z)",
        },
        "assumed": assumed,
        "train": {
            "dataset": files.json_safe(info.get("path") or _first([train_config], "data")),
            "dataset_sequences": {
                "train": len(info["train"]) if isinstance(info.get("train"), list) else None,
                "val": len(info["val"]) if isinstance(info.get("val"), list) else None,
                "frames": info.get("n_frames"),
            },
            "epoch": int(epoch) if isinstance(epoch, (int, np.integer)) and epoch >= 0 else None,
            "epochs": files.json_safe(_first([ckpt, train_config], "epochs")),
            "best_epoch": files.json_safe(ckpt.get("best_epoch")),
            "best_val_loss": files.json_safe(_first([ckpt, train_config], "best_val_loss")),
            "code_version": code_version,
            "code_version_source": code_version_source,
            "command": files.json_safe(ckpt.get("command")),
            "torch": files.json_safe(ckpt.get("torch_version")),
            "train_config": train_config or None,
            "dataset_attrs": attrs or None,
        },
    }
    if train_boundary is not None:  # "X,Y,Z" of a training set with walls; absent: periodic (as the data sets)
        metadata["train"]["boundary"] = train_boundary
    metadata["halo"] = spec.halo_cells(metadata)  # ghost layers of a subdomain step (issue 29)
    if assumed:
        log.warning(
            "checkpoint lacks %s; assumed the paper's defaults (recorded in the metadata's 'assumed')",
            ", ".join(assumed),
        )
    return metadata
