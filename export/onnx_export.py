"""Export one recurrent step of a trained CRNN to ONNX, and check it against PyTorch.

The graph is ``(phi, h1, h2) -> (phi_next, h1_next, h2_next)`` of :meth:`surrogate.CRNN.step`
(signature and metadata in :mod:`export.runtime.spec`); the loop lives in numpy (:mod:`export.runtime`).

Exporter: ``torch.onnx.export(..., dynamo=True)`` (torch.export + onnxscript), the supported
path; the TorchScript exporter is deprecated. Three things matter:

* The example batch is 2 and the example grid 6×7×8: torch.export specialises a dimension whose
  example size is 1, and equal example sizes invite it to tie axes together. Batch and the three
  spatial axes are declared dynamic.
* h1 and h2 are distinct example tensors. Passing one tensor object for both makes the exporter
  merge them into one graph input, and rollouts then diverge from step 2 on.
* Circular padding. The exporter writes ``aten.pad(mode="circular")`` as ``Pad(mode="wrap")``,
  which needs opset ≥ 19 and is not run by every runtime: onnxruntime's CUDA provider registered
  Pad only up to opset 18 until 2026 (microsoft/onnxruntime#26393, fixed by #27708; an opset-19
  Pad then falls back to the CPU, with device copies around each of the 7 pads of a step), and
  the OpenVINO and TVM ONNX front ends rejected ``wrap``.
  By default (``pad_mode="slice"``) each circularly padded Conv3d is therefore exported as
  Slice + Concat (wrap-around copies of the ``k // 2`` border planes along x, y, z) followed by an
  unpadded Conv — opset-1 operators that every runtime and provider runs, numerically the same
  values as the circular pad. ``pad_mode="wrap"`` keeps the single Pad node (0–5 % faster on
  onnxruntime's CPU provider, measured in benchmarks/runtime.py). The divergence layer's
  ``torch.roll`` becomes Slice + Concat either way.

A cube-equivariant CRNN (``equivariant=True``, :mod:`surrogate.equivariant`) can be exported as the
factorised graph of ``export.factorised`` (``graph="factorised"``): every k³ convolution as its
fixed orbit stencils (a grouped Conv) and a 1×1 channel product (2.3× fewer multiply-adds per step).
``graph="dense"`` (the default, ``export.options.DEFAULT_EQUIVARIANT_GRAPH``) exports it through
:meth:`surrogate.CRNN.to_plain`: its kernels, tied to the 48 cube symmetries, are materialised into
the plain model's constant Conv weights (the flux conv's bias as zeros), so the graph and the cost
per step are those of the plain model. The signature and the runtime are the same either way; the
metadata's ``exported.graph`` says which. The metadata records ``"equivariant": true`` and
``param_count`` = the free parameters (7,010 for H = 10, k = 3).

Besides the factorised graph, no algebraic rewrite of the network is made. The two 1×1
convolutions of the toFlux head are separated by tanh, so they cannot be folded exactly; in a
gate, x_r + h_r adds 1×1 convolutions of two different tensors, which merge into one only over a
50-channel Concat (more multiply-adds and memory traffic, not fewer). The 3×3×3 convolutions carry
~90 % of the 29k multiply-adds per voxel of the dense graph. onnxruntime fuses Conv + Tanh itself
(``FusedConv``).

Verification (:func:`verify`): ``onnx.checker`` (full check), then onnxruntime against PyTorch
for one step from random φ and distinct random hidden states (strict), and for a free-running rollout
(hidden states from zero) at several grid sizes, batch 2, held to the fixed tolerance or, for a model
that amplifies round-off, to a multiple of its own float64-vs-float32 sensitivity.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import math
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ch_numba import files, provenance
from surrogate.card import DEFAULT_DOWNSCALE, DEFAULT_STEPS_PER_FRAME, build_card  # noqa: F401  (names kept here)
from surrogate.cells import PointwiseConv3d

from . import factorised
from .options import (  # noqa: F401  (names kept here; stdlib-only home so that --help needs no torch)
    DEFAULT_OPSET,
    MIN_WRAP_OPSET,
    PAD_MODES,
    ROLLOUT_ATOL,
    SENSITIVITY_ATOL,
    SENSITIVITY_FACTOR,
    STEP_ATOL,
    VERIFY_GRIDS,
    VERIFY_STEPS,
    check_tolerance,
    max_opset,
)
from .runtime import spec

log = logging.getLogger(__name__)

__all__ = ["export_checkpoint", "export_model", "build_metadata", "verify", "DEFAULT_OPSET", "PAD_MODES"]

EXAMPLE_BATCH = 2
EXAMPLE_GRID = (6, 7, 8)


# ------------------------------------------------------------------------------ graph rewrite
class _Step(nn.Module):
    """``forward(phi, h1, h2[, walls]) = model.step(phi, h1, h2, walls)``: the unit that is exported.

    With ``walls`` the graph is one ``If`` on "any wall": its else branch is the periodic step exactly as
    exported before walls existed (Slice + Concat padding, no selection), its then branch the step that
    picks each ghost plane with ``Where`` (surrogate/boundary.py). One graph with the selection always on
    cost periodic runs 7–8 % (49 ``Where`` nodes on ghost planes, slow along z; benchmarks/walls_graph.py,
    2026-12-08, 2-core Xeon); the ``If`` costs them nothing measurable."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, phi, h1, h2, walls=None):
        if walls is None:
            return self.model.step(phi, h1, h2)

        def with_walls(phi, h1, h2, walls):
            return self.model.step(phi, h1, h2, walls)

        def periodic(phi, h1, h2, walls):  # no walls: padding as Slice + Concat, the periodic graph of old
            return self.model.step(phi, h1, h2, (False, False, False))

        return torch.cond(walls.any(), with_walls, periodic, (phi, h1, h2, walls))


def graph_nodes(graph):
    """Every node of an ONNX graph, those of its subgraphs (the ``If`` branches of the walls switch) included."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.g.node:
                yield from graph_nodes(attr.g)
            for g in attr.graphs:
                yield from graph_nodes(g)


def _walls_with_default(proto) -> None:
    """Give the graph input ``walls`` a default (an initializer of the same name: all False, periodic), which
    makes it optional in onnxruntime (an "overridable initializer"): callers that feed phi, h1, h2 only run
    the periodic box as before."""
    from onnx import numpy_helper

    proto.graph.initializer.append(numpy_helper.from_array(np.zeros(3, dtype=bool), spec.WALLS_INPUT))


# ------------------------------------------------------------------------------ metadata
# (the model card, surrogate.card.build_card, plus the exporter's "exported" section)


def _git_commit() -> str | None:
    """``git describe`` of the exporting checkout, or None (:func:`ch_numba.provenance.git_describe`)."""
    return provenance.git_describe()


def _exporter_version() -> str:
    """'VERSION+git.DESCRIBE' of the exporting code (the form training checkpoints record), or 'VERSION'."""
    import ch_numba

    commit = _git_commit()
    return ch_numba.__version__ + (f"+git.{commit}" if commit else "")


def build_metadata(
    ckpt: dict,
    *,
    opset: int = DEFAULT_OPSET,
    pad_mode: str = "slice",
    checkpoint_name: str | None = None,
    graph: str | None = None,
) -> dict:
    """The ``ch3d`` metadata (schema in :mod:`export.runtime.spec`) of a loaded checkpoint.

    ``ckpt`` is :func:`surrogate.load_checkpoint`'s dict. The training data's root attributes are
    read from ``ckpt["dataset"]["attrs"]`` (what ``python -m surrogate train`` stores, with the data
    set's path and sizes) or ``ckpt["dataset_attrs"]``. Entries the checkpoint lacks (physics,
    ``downscale``) get the paper's defaults and are listed in ``assumed``; provenance the
    checkpoint lacks is None (all of this is the model card, :func:`surrogate.card.build_card`; the
    exporter adds the "exported" section: exporter, opset, padding, graph (``graph``, resolved as
    :func:`export.factorised.check_graph`), torch and ch3d versions, git commit, checkpoint file
    name), except the code version: without one in the checkpoint,
    ``train.code_version`` is ``"exported by ch3d VERSION+git.DESCRIBE"`` (the exporting code's
    version and ``git describe --always --dirty`` where available) and ``train.code_version_source``
    is ``"exporter"`` instead of ``"checkpoint"``.
    """
    import ch_numba

    metadata = build_card(ckpt)
    train = metadata["train"]
    if train["code_version"] is None:  # checkpoints of older trainings: record what exported them, marked as such
        train["code_version"] = f"exported by ch3d {_exporter_version()}"
        train["code_version_source"] = "exporter"
        log.info("checkpoint records no code version; recorded the exporter's: %s", train["code_version"])
    metadata["exported"] = {
        "exporter": "torch.onnx.export(dynamo=True)",
        "opset": int(opset),
        "padding": "Slice+Concat" if pad_mode == "slice" else "Pad(mode=wrap)",
        "torch": torch.__version__,
        "ch3d_version": ch_numba.__version__,
        "git_commit": _git_commit(),
        "checkpoint": checkpoint_name,
    }
    metadata["exported"]["graph"] = factorised.check_graph(graph, bool(metadata.get("equivariant")), pad_mode)
    # Slice + Concat padding takes the optional walls input (export_model); Pad(mode=wrap) is periodic only
    metadata["boundaries"] = "periodic,neumann" if pad_mode == "slice" else "periodic"
    return metadata


# ------------------------------------------------------------------------------ export
def _check_options(opset, pad_mode):
    if pad_mode not in PAD_MODES:
        raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
    top = max_opset()
    if (
        isinstance(opset, bool)
        or not isinstance(opset, int)
        or opset < DEFAULT_OPSET
        or (top is not None and opset > top)
    ):
        raise ValueError(
            f"opset must be an integer in {DEFAULT_OPSET}..{top if top is not None else ''} (the dynamo "
            f"exporter's lowest .. the installed onnx package's newest), got {opset!r}"
        )
    if pad_mode == "wrap" and opset < MIN_WRAP_OPSET:
        raise ValueError(f"pad_mode 'wrap' writes Pad(mode='wrap'), which needs opset >= {MIN_WRAP_OPSET}, got {opset}")


def _atomic_save(model_proto, out: Path, check=None, overwrite: bool = True) -> None:
    """Save to a temporary file next to ``out``, call ``check(temporary path)`` (if given), then fsync and
    rename over ``out`` (:func:`ch_numba.files.atomic_path`); an exception (from ``check`` too) leaves
    ``out`` as it was; ``overwrite=False``: never over a file published meanwhile (no-clobber)."""
    import onnx

    folder = out.parent if str(out.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    with files.atomic_path(out, hidden=True, overwrite=overwrite) as tmp:
        onnx.save(model_proto, str(tmp))
        if check is not None:
            check(tmp)


def export_model(
    model: nn.Module,
    out,
    metadata: dict,
    *,
    opset: int = DEFAULT_OPSET,
    pad_mode: str = "slice",
    check=None,
    overwrite: bool = True,
    graph: str | None = None,
) -> Path:
    """Write one step of ``model`` (a CRNN) to ``out`` as ONNX with ``metadata`` under key ``ch3d``.

    ``graph``: "dense" writes every k³ convolution with its materialised kernel (an equivariant model
    as its :meth:`~surrogate.CRNN.to_plain` twin, same step); "factorised" (equivariant models only)
    the orbit stencils and a 1×1 channel product (``export.factorised``); None: the default of
    :func:`export.factorised.check_graph`. The metadata's ``exported.graph`` records it.
    The file is written atomically: to a temporary file in ``out``'s folder, on which ``check(path)``
    (e.g. :func:`verify`, raising on a mismatch) is called before it replaces ``out``; a failure
    leaves a previous ``out`` in place. Raises ValueError for bad options or metadata the runtime would
    refuse (``export.runtime.spec.check_metadata``, before anything is written), ImportError if onnx or
    onnxscript is missing, RuntimeError if the exported graph lacks the expected signature.
    """
    _check_options(opset, pad_mode)
    graph = factorised.check_graph(graph, bool(getattr(model, "equivariant", False)), pad_mode)
    out = Path(out)
    if isinstance(metadata, dict) and isinstance(metadata.get("exported"), dict):
        metadata = {**metadata, "exported": {**metadata["exported"], "graph": graph}}
    card = json.dumps(metadata, sort_keys=True)
    try:  # the runtime's own check, on the text it will read: nothing is written that it would refuse
        spec.check_metadata(json.loads(card), str(out))
    except ValueError as exc:
        raise ValueError(f"{exc}; not written (the runtime would refuse it)") from None
    try:
        import onnx
        import onnxscript  # noqa: F401  (the dynamo exporter needs it)
    except ImportError as exc:
        raise ImportError(f"ONNX export needs onnx and onnxscript ({exc}); pip install 'ch3d[export]'") from None
    if graph == "factorised":
        model = factorised.factorised_copy(model)  # orbit stencils + channel products (export/factorised.py)
    elif getattr(model, "equivariant", False):
        model = model.to_plain()  # materialised kernels: plain constant weights, the plain model's graph
    body = copy.deepcopy(model).float().eval()
    body.set_boundary(None)  # the boundary is the graph's input (walls), not the model's
    hidden = int(model.hidden)
    g = torch.Generator().manual_seed(0)
    n, grid = EXAMPLE_BATCH, EXAMPLE_GRID
    phi = torch.rand((n, 1, *grid), generator=g)
    h1 = torch.rand((n, hidden, *grid), generator=g)  # distinct tensors: one object would become one input
    h2 = torch.rand((n, hidden, *grid), generator=g)
    # Slice + Concat padding takes the walls input (an If: periodic branch, walls branch); Pad(wrap) is periodic only
    walls = pad_mode == "slice"
    args = (phi, h1, h2, torch.tensor([False, True, False])) if walls else (phi, h1, h2)
    names = list(spec.INPUTS) + ([spec.WALLS_INPUT] if walls else [])
    batch = torch.export.Dim("batch", min=1)
    x, y, z = (torch.export.Dim(a, min=1) for a in ("x", "y", "z"))
    dims = {0: batch, 2: x, 3: y, 4: z}
    noisy = ("torch.onnx", "torch.export", "torch._export", "onnxscript", "onnx_ir")
    quiet = [logging.getLogger(name) for name in noisy]
    levels = [lg.level for lg in quiet]
    # the exporter's optimiser prints a line per folded constant: keep stdout for the caller
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        for lg in quiet:
            lg.setLevel(logging.ERROR)
        # 1×1 convolutions as Conv nodes (their matrix-product form is for training; is_in_onnx_export() does not
        # reach into the branches of torch.cond)
        as_matmul, PointwiseConv3d.as_matmul = PointwiseConv3d.as_matmul, False
        try:
            with torch.no_grad():
                program = torch.onnx.export(
                    _Step(body),
                    args,
                    dynamo=True,
                    opset_version=opset,
                    input_names=names,
                    output_names=list(spec.OUTPUTS),
                    dynamic_shapes={"phi": dims, "h1": dims, "h2": dims, **({"walls": None} if walls else {})},
                    verbose=False,
                )
            raw = Path(tmp) / "step.onnx"
            program.save(str(raw))
        finally:
            PointwiseConv3d.as_matmul = as_matmul
            for lg, level in zip(quiet, levels):
                lg.setLevel(level)
        proto = onnx.load(str(raw))
    inputs = [i.name for i in proto.graph.input]
    outputs = [o.name for o in proto.graph.output]
    if inputs != names or outputs != list(spec.OUTPUTS):
        raise RuntimeError(
            f"exported graph has inputs {inputs} and outputs {outputs}, expected {names} and {list(spec.OUTPUTS)}"
        )
    if walls:
        _walls_with_default(proto)
    written = {o.domain: o.version for o in proto.opset_import}.get("", 0)
    if written != opset:
        raise RuntimeError(f"the exporter wrote opset {written}, not the requested {opset}; choose another --opset")
    pads = [nd for nd in graph_nodes(proto.graph) if nd.op_type == "Pad"]
    if pad_mode == "slice" and pads:
        raise RuntimeError(f"exported graph still has {len(pads)} Pad nodes despite pad_mode='slice'")
    for node in graph_nodes(proto.graph):  # per-node provenance of the exporter: stack traces with local paths
        del node.metadata_props[:]
        node.doc_string = ""
    proto.graph.name = "ch3d_crnn_step"
    proto.doc_string = (
        "ch3d CRNN: one recurrent step (phi, h1, h2) -> (phi_next, h1_next, h2_next) of 3D "
        "Cahn-Hilliard flow; metadata_props['ch3d'] holds the physics and provenance (JSON)."
    )
    proto.model_version = spec.FORMAT_VERSION
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = spec.METADATA_KEY, card
    _atomic_save(proto, out, check, overwrite)
    log.info(
        "wrote %s (%s graph, %d nodes, opset %d, %s circular padding, %d parameters)",
        out,
        graph,
        sum(1 for _ in graph_nodes(proto.graph)),
        opset,
        "Slice+Concat" if pad_mode == "slice" else "Pad(wrap)",
        metadata.get("param_count", -1),
    )
    return out


def export_checkpoint(
    checkpoint,
    out,
    *,
    opset: int = DEFAULT_OPSET,
    pad_mode: str = "slice",
    check=None,
    overwrite: bool = True,
    graph: str | None = None,
) -> dict:
    """Load a checkpoint and export it (see ``export.onnx_export.export_model``); returns the written metadata.

    ``check(path, model)``, if given, is called on the temporary file before it replaces ``out``, with
    the checkpoint's model (``python -m export --verify`` passes :func:`verify` and its report);
    an exception it raises leaves ``out`` as it was. The one export path: the command calls this.
    """
    from surrogate import load_checkpoint

    _check_options(opset, pad_mode)
    ckpt = load_checkpoint(checkpoint)
    model = ckpt["model"]
    graph = factorised.check_graph(graph, bool(getattr(model, "equivariant", False)), pad_mode)
    metadata = build_metadata(ckpt, opset=opset, pad_mode=pad_mode, checkpoint_name=Path(checkpoint).name, graph=graph)
    on_file = None if check is None else (lambda path: check(path, model))
    export_model(model, out, metadata, opset=opset, pad_mode=pad_mode, check=on_file, overwrite=overwrite, graph=graph)
    return metadata


# ------------------------------------------------------------------------------ verification
def _check_grids(grids):
    out = []
    for grid in grids:
        grid = tuple(int(n) for n in grid)
        if len(grid) != 3:
            raise ValueError(f"verification grids must be (X, Y, Z), got {grid}")
        out.append(grid)
    return out


def verify(
    onnx_path,
    model: nn.Module,
    *,
    grids=VERIFY_GRIDS,
    steps: int = VERIFY_STEPS,
    batch: int = 2,
    seed: int = 1,
    threads: int | None = None,
    step_atol: float = STEP_ATOL,
    rollout_atol: float = ROLLOUT_ATOL,
    providers="cpu",
    tf32: bool = False,
    sensitivity_factor: float = SENSITIVITY_FACTOR,
) -> list[dict]:
    """Check an exported step against the PyTorch ``model`` it came from.

    1. ``onnx.checker.check_model(full_check=True)``.
    2. For each grid (X, Y, Z): one step from random φ ∈ [0, 1] and distinct random hidden states
       ∈ [−1, 1] (``max |ORT − PyTorch|`` over φ, h1, h2 ≤ ``step_atol``, strict), and a free-running
       rollout of ``steps`` steps from periodic Perlin fields, hidden states from zero, through
       :class:`export.runtime.Rollout`, compared with the float32 PyTorch rollout over all frames.
       Batch ``batch`` (≥ 2 checks that the batch axis is dynamic).

    The rollout rule. A model that amplifies round-off (an under-trained one) makes two correct float32
    implementations drift apart over a rollout, so a fixed tolerance alone would fail a correct graph. The
    model's own round-off *sensitivity* is measured on the same IC and steps: ``max |PyTorch float64 rollout −
    PyTorch float32 rollout|``. The rollout passes when ``max |ORT − PyTorch float32|`` ≤
    ``max(rollout_atol, sensitivity_factor × sensitivity + 1e-6)`` (defaults 1e-4 and 4): the fixed
    tolerance stays the floor (a non-conservative model accumulates onnxruntime's per-step difference
    about linearly, beyond 4 × its float64 sensitivity yet far below 1e-4), the relative bound covers the
    amplifying models. ``sensitivity_factor=0`` skips the float64 rollout and keeps the fixed ``rollout_atol``
    alone. A wrong graph still fails: the step check is strict, and its rollout drifts
    far beyond the model's sensitivity. The shipped models meet 1e-4 by themselves (tests/test_export.py).

    onnxruntime runs on ``providers`` (``Rollout``'s: "cpu" default, "auto", "cuda" or a list;
    ``tf32`` as there). Returns one dict per grid: grid, batch, steps, provider (the execution
    provider the session actually used, e.g. "CUDAExecutionProvider"), step_max_diff,
    rollout_max_diff (ORT vs PyTorch float32), rollout_sensitivity (float64 vs float32 PyTorch; None
    with ``sensitivity_factor=0``), rollout_bound (``sensitivity_factor × sensitivity + 1e-6``, None
    likewise), rollout_tolerance (the bound the rollout was held to: the larger of ``rollout_atol`` and
    rollout_bound), ok. Raises ValueError for bad arguments or a provider that cannot start; does not
    raise for a failed comparison (see ``ok``).
    """
    import onnx

    from ch_numba import initial

    from .runtime import Rollout

    grids = _check_grids(grids)
    for name, value in (
        ("step_atol", step_atol),
        ("rollout_atol", rollout_atol),
        ("sensitivity_factor", sensitivity_factor),
    ):
        check_tolerance(name, value)
    factor = sensitivity_factor
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not (0 <= factor < math.inf):
        raise ValueError(f"sensitivity_factor must be a finite number >= 0, got {factor!r}")
    onnx.checker.check_model(str(onnx_path), full_check=True)
    runner = Rollout(onnx_path, providers=providers, threads=threads, tf32=tf32)
    model = copy.deepcopy(model).float().eval()
    model64 = copy.deepcopy(model).double().eval() if sensitivity_factor > 0 else None
    hidden = int(model.hidden)
    rng = np.random.default_rng(seed)
    report = []
    for grid in grids:
        phi = rng.random((batch, 1, *grid), dtype=np.float32)
        h1 = rng.uniform(-1, 1, (batch, hidden, *grid)).astype(np.float32)
        h2 = rng.uniform(-1, 1, (batch, hidden, *grid)).astype(np.float32)
        feed = dict(zip(spec.INPUTS, (phi, h1, h2)))
        got = runner.session.run(list(spec.OUTPUTS), feed)  # plain run: inputs from the host, on the session's device
        with torch.no_grad():
            want = model.step(*(torch.from_numpy(a) for a in (phi, h1, h2)))
        step_diff = max(float(np.max(np.abs(g - w.numpy()))) for g, w in zip(got, want))
        phi0 = np.stack(
            [initial.perlin(grid, frequency=2, seed=seed + i, mean=0.5, amplitude=0.1) for i in range(batch)]
        )[:, None]
        frames = np.stack(list(runner.rollout(phi0, steps)), axis=1) if steps else np.zeros((batch, 0))
        with torch.no_grad():
            ref = model.rollout(torch.from_numpy(phi0), steps).numpy()
        roll_diff = float(np.max(np.abs(frames - ref))) if steps else 0.0
        sensitivity = bound = None
        tolerance = float(rollout_atol)
        if model64 is not None:
            if steps:
                with torch.no_grad():
                    ref64 = model64.rollout(torch.from_numpy(phi0.astype(np.float64)), steps).numpy()
                sensitivity = float(np.max(np.abs(ref64 - ref)))
            else:
                sensitivity = 0.0
            bound = sensitivity_factor * sensitivity + SENSITIVITY_ATOL
            if math.isfinite(bound):
                tolerance = max(tolerance, bound)
        ok = step_diff <= step_atol and roll_diff <= tolerance and math.isfinite(step_diff + roll_diff)
        report.append(
            {
                "grid": grid,
                "batch": batch,
                "steps": steps,
                "provider": runner.providers[0],
                "step_max_diff": step_diff,
                "rollout_max_diff": roll_diff,
                "rollout_sensitivity": sensitivity,
                "rollout_bound": bound,
                "rollout_tolerance": tolerance,
                "ok": ok,
            }
        )
    return report
