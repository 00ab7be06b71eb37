"""The contract between the ONNX export and the runtime: names, shapes and metadata of one step.

An exported model is ONE recurrent step of :class:`surrogate.CRNN` (no loop inside)::

    inputs   phi       (N, 1, X, Y, Z)   float32   φ_n, the field at the network's resolution
             h1        (N, H, X, Y, Z)   float32   hidden state of cell 1 (zeros at the start)
             h2        (N, H, X, Y, Z)   float32   hidden state of cell 2 (zeros at the start)
    outputs  phi_next  (N, 1, X, Y, Z)             φ_{n+1}, one saved frame later
             h1_next, h2_next (N, H, X, Y, Z)      the hidden states to feed to the next step

    optional walls     (3,)             bool      the axes (x, y, z) with no-flux walls; an input with a
                                                default (an initializer of the same name: all False,
                                                periodic), so callers that do not feed it run the
                                                periodic box as before; absent in files exported before
                                                walls (periodic only) and with ``--pad-mode wrap``

N, X, Y, Z are dynamic (named ``batch``, ``x``, ``y``, ``z`` in the graph); H is fixed (10).
On a wall axis the step pads with the half-sample mirror and mirrors the flux's normal component with
its sign changed (surrogate/boundary.py): no mass crosses a wall.

The model's ``metadata_props`` hold the key ``METADATA_KEY`` (``"ch3d"``) whose value is
a JSON object; ``REQUIRED_METADATA`` are the entries the runtime needs. The full schema
(format_version 1)::

    format, format_version        "ch3d-onnx-step", 1
    conservative, hidden, kernel  architecture (CRNN config); param_count (trainable parameters)
    equivariant                   true: kernels tied to the 48 cube symmetries (the step commutes with
                                  them exactly; param_count counts the free taps; the graph is the
                                  dense or the factorised one, exported.graph); false or absent
                                  (files exported before the option): unconstrained
    downscale                     the network sees every downscale-th voxel of the ground-truth grid
    epsilon, mobility, W, dx, dt  solver parameters of the training data (dx of the ground-truth grid)
    scheme, stabilization,        only for training data made with the spectral scheme (CHParams.as_dict;
    symbol, order                 absent: explicit); CHParams.from_metadata rebuilds the solver's params
    steps_per_frame               solver steps per network step (= per saved frame of a rollout with every 1);
                                  stride × the training data's steps per stored frame
    stride                        stored frames of the training data per network step (``train --stride``;
                                  absent in files exported before the option: 1). The data set's own
                                  steps_per_frame is train.dataset_attrs.steps_per_frame
    time_per_step                 physical time of one network step = steps_per_frame · dt
    network_dx                    grid spacing the network works at = downscale · dx
    train_grid, train_shape       ground-truth grid edge / shape of the training data (None if unknown)
    min_grid                      smallest spatial size per axis the runtime accepts (= kernel)
    halo                          ghost layers (network cells) one step needs on a subdomain:
                                  5·(kernel//2), +1 for a conservative model (:func:`halo_cells`;
                                  absent in files exported before it: computed from kernel, conservative)
    phi_convention                text: φ ∈ [0, 1], the two phases, mass = mean φ
    inputs, outputs               the signature above, as text
    assumed                       metadata keys filled with defaults (the checkpoint lacked them)
    train                         provenance: dataset (path), dataset_sequences, epoch (0-based, last
                                  finished), epochs, best_epoch, best_val_loss, code_version,
                                  code_version_source ("checkpoint"; "exporter" when the checkpoint
                                  lacked it and code_version is "exported by ch3d V+git.D"), command,
                                  torch, train_config, dataset_attrs (root attributes of the data set),
                                  boundary (the training data's "X,Y,Z", only when it had no-flux walls;
                                  absent: periodic; the box a runner steps is its own ``boundary=``)
    boundaries                    "periodic" (the graph pads circularly only) or "periodic,neumann" (it
                                  takes the optional ``walls`` input); absent in older files: periodic
    exported                      exporter, opset, padding, graph ("dense": materialised k³ kernels;
                                  "factorised": orbit stencils + 1×1 channel product, export/factorised.py;
                                  absent in older files: dense), torch/onnx/ch3d versions, git commit,
                                  checkpoint file name

This module imports nothing beyond the standard library, so the runtime can use it without torch.
"""

from __future__ import annotations

FORMAT = "ch3d-onnx-step"
FORMAT_VERSION = 1
METADATA_KEY = "ch3d"

INPUTS = ("phi", "h1", "h2")
#: the optional input (with a default) selecting the axes with no-flux walls
WALLS_INPUT = "walls"
OUTPUTS = ("phi_next", "h1_next", "h2_next")
DYNAMIC_AXES = ("batch", "x", "y", "z")

#: the execution providers a runner is asked for ("auto": CUDA where usable, else the CPU)
PROVIDERS = ("auto", "cpu", "cuda")

REQUIRED_METADATA = ("format_version", "conservative", "hidden", "kernel", "downscale", "dt", "steps_per_frame")


def check_metadata(meta, path="model") -> dict:
    """``meta`` (the parsed ``ch3d`` metadata of the model ``path``) if the runtime can run it: a JSON
    object with ``REQUIRED_METADATA``, a format version it reads, positive ``hidden``, ``downscale``
    and ``steps_per_frame``, an odd positive ``kernel``, a positive ``dt``; else a one-line ValueError.
    The one check of the metadata: the runtime applies it on reading, the exporter before writing."""
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: the '{METADATA_KEY}' metadata is not a JSON object")
    missing = [k for k in REQUIRED_METADATA if k not in meta]
    if missing:
        raise ValueError(f"{path}: the '{METADATA_KEY}' metadata lacks {', '.join(missing)}")
    version = meta["format_version"]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path}: metadata format_version {version!r} is newer than this runtime reads "
            f"({FORMAT_VERSION}); upgrade ch3d"
        )

    def positive_int(key, odd=False):
        v = meta[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1 or (odd and v % 2 == 0):
            raise ValueError(f"{path}: metadata {key}={v!r} is not a positive{' odd' if odd else ''} integer")

    positive_int("hidden")
    positive_int("kernel", odd=True)
    positive_int("downscale")
    positive_int("steps_per_frame")
    if "stride" in meta:
        positive_int("stride")
    if isinstance(meta["dt"], bool) or not isinstance(meta["dt"], (int, float)) or not meta["dt"] > 0:
        raise ValueError(f"{path}: metadata dt={meta['dt']!r} is not a positive number")
    return meta


def halo_cells(meta) -> int:
    """Ghost layers (network cells) one step needs around a subdomain: the metadata's ``halo``, or for
    files exported before it, 5·(k//2) + 1 for a conservative model and 5·(k//2) otherwise.

    Reach of one step for k = 2r + 1 (each k-conv reaches r cells; the reset gate r ⊙ h feeds a second
    k-conv inside a cell, so a ConvGRU cell reaches 2r): h1' needs φ, h1 within 2r; h2' needs them
    within 4r and h2 within 2r; the flux head's k-conv adds r (φ, h1: 5r; h2: 3r), the divergence one
    more cell (conservative). The largest, 5r (+1), is the halo: with that many ghost layers all three
    outputs are exact in the interior (tests/test_halo.py checks it by perturbing one voxel)."""
    halo = meta.get("halo")
    if isinstance(halo, int) and not isinstance(halo, bool) and halo >= 0:
        return halo
    return 5 * (int(meta["kernel"]) // 2) + (1 if meta["conservative"] else 0)


PHI_CONVENTION = (
    "phi is the order parameter in [0, 1]: phi = 0 and phi = 1 are the two phases, mean(phi) is the "
    "conserved mass; the network works at the ground-truth grid sampled every `downscale`-th voxel "
    "(nearest, from voxel 0), grid spacing network_dx = downscale * dx, periodic in x, y, z"
)
