"""The exporter's option values and ``--verify`` tolerances (stdlib only, onnx looked up on demand).

Their home is here, not in :mod:`export.onnx_export`, so that ``python -m export --help`` prints its
defaults without PyTorch (only the export itself needs it); :mod:`export.onnx_export` re-exports them.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_OPSET",
    "MIN_WRAP_OPSET",
    "PAD_MODES",
    "GRAPHS",
    "DEFAULT_EQUIVARIANT_GRAPH",
    "STEP_ATOL",
    "ROLLOUT_ATOL",
    "SENSITIVITY_FACTOR",
    "SENSITIVITY_ATOL",
    "VERIFY_GRIDS",
    "VERIFY_STEPS",
    "max_opset",
    "check_tolerance",
]

DEFAULT_OPSET = 18  # the lowest the dynamo exporter writes natively; onnxruntime ≥ 1.14 runs it
MIN_WRAP_OPSET = 19  # Pad(mode="wrap")
PAD_MODES = ("slice", "wrap")
# the graph of the step (export/factorised.py): "dense" writes every k³ convolution with its materialised
# kernel; "factorised" (cube-equivariant models only) writes the orbit stencils and a 1×1 channel product
GRAPHS = ("dense", "factorised")
# the default graph of an equivariant model (a plain model is always dense): to be the faster one at 32³,
# 2 threads, batch 1 on onnxruntime's CPU provider (benchmarks/export_graph.py). Measured 2026-12-07 on a shared
# 2-core machine (others used 86 % of the CPUs) the factorised graph was 1.09x (0.86-1.23x) as fast there: not
# shown faster, so dense stays the default until a run on an idle machine shows it (benchmarks/RESULTS.md)
DEFAULT_EQUIVARIANT_GRAPH = "dense"

# float32 ORT vs PyTorch: the two sum the convolutions in different orders (relative ~1e-7 per op).
STEP_ATOL = 1e-5  # one step, |φ| and |h| of order 1
# a free-running rollout, where round-off differences are carried along. Measured (torch 2.13, onnxruntime
# 1.32, CPU) with the default grids: the shipped models over 100 steps max|diff| 3.6e-6 (crnn) and 2.1e-5
# (crnn_ablation), over 500 steps at 16³ 1.0e-5 and 1.9e-5; 1e-4 leaves a factor 5. A model that
# amplifies round-off (under-trained, random weights: |φ| grows, the difference ~3x every 25 steps) can
# differ by more without anything being wrong with the graph; the rollout therefore also passes within
# SENSITIVITY_FACTOR × the model's own round-off sensitivity + SENSITIVITY_ATOL (see verify).
ROLLOUT_ATOL = 1e-4
# the sensitivity: max |float64 PyTorch rollout − float32 PyTorch rollout| over the same steps and IC. Measured
# with the default grids: 2.5e-6 (crnn, ORT differs by 3.6e-6), 2.9e-6 (crnn_ablation, ORT 2.1e-5: its
# non-conservative φ accumulates onnxruntime's per-step difference of ~3e-7 about linearly, so the fixed
# ROLLOUT_ATOL stays the floor); the 5-epoch model of docs/usage.md: ORT 9.0e-4 at 16³, sensitivity 6.1e-4
# (bound 2.4e-3).
SENSITIVITY_FACTOR = 4.0
SENSITIVITY_ATOL = 1e-6
VERIFY_GRIDS = ((16, 16, 16), (12, 8, 10))
VERIFY_STEPS = 100


def max_opset() -> int | None:
    """The newest opset this installation writes: the installed onnx package's (``onnx.defs.onnx_opset_version()``),
    or None without onnx. Above it the exporter silently writes opset 18 instead (measured: torch 2.13 with
    onnx 1.23, whose newest is 28, wrote ``--opset 29`` as 18), so the exporter refuses it."""
    try:
        import onnx
    except ImportError:
        return None
    return int(onnx.defs.onnx_opset_version())


def check_tolerance(flag: str, value: float) -> float:
    """``value`` if it is a finite number >= 0, else ValueError (one line naming ``flag``): a negative
    tolerance can never be met, so ``--verify`` would report a "verification failed" that is the option's fault."""
    if not 0 <= value < float("inf"):
        raise ValueError(f"{flag} must be a finite number >= 0, got {value:g}")
    return value
