"""``python -m export CHECKPOINT OUT.onnx [--graph dense|factorised] [--opset N] [--pad-mode P] [--verify ...]``.

Writes one recurrent step of the checkpoint's CRNN as ONNX (export/onnx_export.py); ``--graph factorised``
writes a cube-equivariant model's k³ convolutions as fixed orbit stencils and a 1×1 channel product
(export/factorised.py; the default is export.options.DEFAULT_EQUIVARIANT_GRAPH, dense for now). With
``--verify``: onnx.checker, then onnxruntime (on ``--verify-providers``, default cpu; the provider
actually used is printed) against PyTorch for one step and a long rollout at two grid sizes;
prints the max differences (and, for the rollout, the model's own round-off sensitivity: float64 vs
float32 PyTorch, and the bound derived from it) and exits with status 1 when one is above tolerance.
The rollout passes within max(--rollout-atol, --sensitivity-factor x sensitivity + 1e-6), so an
under-trained model that amplifies round-off is not failed for it (onnx_export.verify). The file is
verified under a temporary name and renamed only when it passed: a failed check leaves OUT.onnx
as it was. An existing OUT.onnx is refused unless ``--overwrite``. Needs PyTorch, onnx and
onnxscript (``pip install 'ch3d[train,export]'``); without them: a one-line error saying so.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ch_numba import cli_runner, files, provenance
from ch_numba.locks import output_lock

from . import options as ex

log = logging.getLogger("export")

EXAMPLES = """examples:
  python -m export runs/best.pt models/crnn.onnx --verify
  python -m export runs/best.pt crnn_wrap.onnx --pad-mode wrap --opset 20
  python -m export models/crnn.pt crnn_dense.onnx --graph dense --verify
  python -m export.rollout models/crnn.onnx --ic perlin --size 64 --steps 1000 --every 10 --out run.h5
"""


def _grid(text: str) -> tuple:
    try:
        grid = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"grid must look like 16x16x16, got {text!r}") from None
    if len(grid) != 3 or min(grid) < 1:
        raise argparse.ArgumentTypeError(f"grid must be three positive sizes like 12x8x10, got {text!r}")
    return grid


class _Mismatch(Exception):
    """--verify found differences above tolerance (the exported file is not kept)."""


def _exporter():
    """:mod:`export.onnx_export`, or a one-line error naming the extras where PyTorch is missing."""
    try:
        from . import onnx_export
    except ImportError as exc:
        raise ValueError(f"`python -m export` needs PyTorch ({exc}); pip install 'ch3d[train,export]'") from None
    return onnx_export


def build_parser() -> argparse.ArgumentParser:
    """The parser and its defaults (:mod:`export.options`, stdlib only): ``--help`` prints without PyTorch."""
    p = cli_runner.ArgumentParser(
        prog="python -m export",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Export one recurrent step (phi, h1, h2) -> (phi_next, h1_next, h2_next) of a trained CRNN "
        "checkpoint to ONNX, with batch and grid axes dynamic and the physics/provenance in the "
        "model's metadata (key 'ch3d').",
    )
    p.add_argument("checkpoint", type=Path, help="checkpoint written by surrogate training (.pt)")
    p.add_argument(
        "out", type=Path, help="output .onnx file (written atomically; refused if it exists, unless --overwrite)"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace OUT if it exists (with --verify: only once the new file passed)",
    )
    p.add_argument(
        "--graph",
        choices=ex.GRAPHS,
        default=None,
        help="dense: every 3x3x3 convolution with its materialised kernel; factorised (cube-equivariant "
        "models only): the fixed orbit stencils per channel (grouped Conv) and a 1x1 channel product, the "
        "same step with 2.3x fewer multiply-adds (default: "
        + (
            "dense"
            if ex.DEFAULT_EQUIVARIANT_GRAPH == "dense"
            else f"{ex.DEFAULT_EQUIVARIANT_GRAPH} for an equivariant model, dense for a plain one"
        )
        + "; recorded in the metadata's exported.graph)",
    )
    p.add_argument(
        "--opset",
        type=int,
        default=ex.DEFAULT_OPSET,
        help=f"ONNX opset, {ex.DEFAULT_OPSET}..{ex.max_opset() or 'the onnx package newest'} (default "
        "%(default)s; >= 19 for --pad-mode wrap)",
    )
    p.add_argument(
        "--pad-mode",
        choices=ex.PAD_MODES,
        default="slice",
        help="circular padding as Slice+Concat (default: runs on every runtime and provider) or as "
        "Pad(mode=wrap) (opset >= 19; onnxruntime's CUDA provider runs it only in recent versions)",
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="check the file: onnx.checker, then onnxruntime vs PyTorch (1 step and a rollout at two grid sizes)",
    )
    p.add_argument(
        "--verify-providers",
        choices=("cpu", "auto", "cuda"),
        default="cpu",
        help="onnxruntime provider of --verify (default %(default)s; cuda: fails unless the CUDA provider "
        "starts; the provider actually used is printed)",
    )
    p.add_argument(
        "--verify-tf32", action="store_true", help="allow TF32 in the CUDA provider during --verify (default off)"
    )
    p.add_argument(
        "--verify-steps", type=int, default=ex.VERIFY_STEPS, help="rollout length of --verify (default %(default)s)"
    )
    p.add_argument(
        "--verify-grids",
        type=_grid,
        nargs="+",
        default=list(ex.VERIFY_GRIDS),
        metavar="XxYxZ",
        help="network-resolution grids of --verify (default: 16x16x16 12x8x10)",
    )
    p.add_argument(
        "--step-atol", type=float, default=ex.STEP_ATOL, help="--verify tolerance of one step (default %(default)g)"
    )
    p.add_argument(
        "--rollout-atol",
        type=float,
        default=ex.ROLLOUT_ATOL,
        help="--verify: the rollout passes when max|ORT - PyTorch float32| <= max(this fixed tolerance, "
        "--sensitivity-factor x sensitivity + 1e-6), where the sensitivity is the model's own round-off "
        "amplification, max|PyTorch float64 - float32| over the same rollout (default %(default)g)",
    )
    p.add_argument(
        "--sensitivity-factor",
        type=float,
        default=ex.SENSITIVITY_FACTOR,
        help="--verify: multiple of the sensitivity the rollout may differ by (default %(default)g; "
        "0: --rollout-atol alone, no float64 rollout)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def _main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    cli_runner.setup_logging(a.verbose)
    if a.verify_steps < 0:
        raise ValueError(f"--verify-steps must be >= 0, got {a.verify_steps}")
    ex.check_tolerance("--step-atol", a.step_atol)
    ex.check_tolerance("--rollout-atol", a.rollout_atol)
    ex.check_tolerance("--sensitivity-factor", a.sensitivity_factor)
    files.check_output(a.out, a.overwrite)
    onnx_export = _exporter()

    def check(tmp: Path, model) -> None:
        """--verify on the temporary file, before it replaces OUT; raises _Mismatch on a failure."""
        report = onnx_export.verify(
            tmp,
            model,
            grids=a.verify_grids,
            steps=a.verify_steps,
            step_atol=a.step_atol,
            rollout_atol=a.rollout_atol,
            sensitivity_factor=a.sensitivity_factor,
            providers=a.verify_providers,
            tf32=a.verify_tf32,
        )
        log.info("onnx.checker: ok")
        log.info("onnxruntime provider used: %s", report[0]["provider"] if report else "none (no grids)")
        log.info(
            "%-12s %5s %6s %16s %18s %12s %12s %12s  %s",
            "grid",
            "batch",
            "steps",
            "max|diff| 1 step",
            "max|diff| rollout",
            "sensitivity",
            "bound",
            "tolerance",
            "",
        )
        for r in report:
            sensitivity, bound = r.get("rollout_sensitivity"), r.get("rollout_bound")
            log.info(
                "%-12s %5d %6d %16.3g %18.3g %12s %12s %12.3g  %s",
                "x".join(map(str, r["grid"])),
                r["batch"],
                r["steps"],
                r["step_max_diff"],
                r["rollout_max_diff"],
                "-" if sensitivity is None else f"{sensitivity:.3g}",
                "-" if bound is None else f"{bound:.3g}",
                r.get("rollout_tolerance", a.rollout_atol),
                "ok" if r["ok"] else "FAILED",
            )
        bad = [r for r in report if not r["ok"]]
        if bad:
            worst = max(bad, key=lambda r: r["rollout_max_diff"])
            sensitivity = worst.get("rollout_sensitivity")
            raise _Mismatch(
                f"verification failed (tolerances {a.step_atol:g} per step, "
                f"{worst.get('rollout_tolerance', a.rollout_atol):.3g} over the rollout = max({a.rollout_atol:g}, "
                f"{a.sensitivity_factor:g} x sensitivity "
                f"{'-' if sensitivity is None else format(sensitivity, '.3g')} + 1e-6); worst grid "
                f"{'x'.join(map(str, worst['grid']))}: {worst['step_max_diff']:.3g} / "
                f"{worst['rollout_max_diff']:.3g}); nothing written"
                + (f", {a.out} left as it was" if a.out.exists() else "")
            )

    (a.out.parent if str(a.out.parent) else Path(".")).mkdir(parents=True, exist_ok=True)  # as the exporter does
    try:  # one export at a time into OUT (ch_numba.locks); published no-clobber unless --overwrite
        with output_lock(a.out, f"an export into {a.out}", provenance.command_line("python -m export", argv)):
            files.check_output(a.out, a.overwrite)
            meta = onnx_export.export_checkpoint(
                a.checkpoint,
                a.out,
                opset=a.opset,
                pad_mode=a.pad_mode,
                check=check if a.verify else None,
                overwrite=a.overwrite,
                graph=a.graph,
            )
    except ImportError as exc:
        raise RuntimeError(str(exc)) from None
    except _Mismatch as exc:
        log.error("error: %s", exc)
        return 1
    trained_on = ((meta or {}).get("train") or {}).get("boundary")
    if trained_on:  # the card's train.boundary: only for training data with walls
        log.info(
            "trained on a box with no-flux walls (boundary %s); the graph steps %s (Rollout(..., boundary=))",
            trained_on,
            "either boundary per axis" if meta.get("boundaries") == "periodic,neumann" else "periodic boxes only",
        )
    if a.verify:
        log.info(
            "verified: onnxruntime matches PyTorch within %g (1 step) and max(%g, %g x the model's round-off "
            "sensitivity + 1e-6) (%d-step rollout)",
            a.step_atol,
            a.rollout_atol,
            a.sensitivity_factor,
            a.verify_steps,
        )
    return 0


def main(argv=None) -> int:
    return cli_runner.run(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
