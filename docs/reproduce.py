"""Regenerate every number and figure of docs/REPRODUCTION.md from the shipped models.

    python docs/reproduce.py                       # all experiments (~25 min on 2 CPU cores)
    python docs/reproduce.py --only long,ablation  # some of them
    python docs/reproduce.py --list                # what each experiment is

Ground truth is made with the documented commands (``python -m ch_numba generate|simulate``)
with the physics stored in the model's metadata (ε, M, W, dt, steps per frame), and compared
with ``python -m surrogate evaluate`` (RMSE, δ, F(t), mass, power law). The experiments that
need more than one model or other time sampling (long rollout, ablation, cost) are computed
here with ``export.runtime.Rollout`` (onnxruntime, no PyTorch) and ``surrogate.metrics``.

Output: ``docs/figures/<experiment>_*.png``, ``docs/results/<experiment>.json`` and
``docs/results/summary.md`` (the table of the report). Intermediate data (HDF5, a few GB at
most) go to ``--work`` (default ``/tmp/ch3d-reproduce``) and are reused when present.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
if str(ROOT / "docs") not in sys.path:  # the experiments (docs/repro/), also when this file is loaded by path
    sys.path.insert(1, str(ROOT / "docs"))

# The experiments live in docs/repro/ (one module per family, the table of seeds and sizes, the
# report); main() runs them, and the names the tests read from this script (tests/test_shipped_model.py,
# tests/test_metrics.py, tests/test_reproduce_unchanged.py) stay reachable here.
from repro import EXPERIMENTS, table  # noqa: E402,F401  (table: the seeds and sizes, e.g. table.Long)
from repro.common import params_of, save_json  # noqa: E402,F401
from repro.context import Context  # noqa: E402
from repro.long_time import exp_coarsening, exp_long  # noqa: E402,F401
from repro.report import summary_lines, write_summary  # noqa: E402,F401
from repro.schemes import SPECTRAL_DT_EPS3  # noqa: E402,F401
from repro.short import check_rollout  # noqa: E402,F401
from repro.table import SIZES  # noqa: E402  (main() runs SIZES: a test may set a shorter table)

from surrogate.metrics import change_up_to_translation, layered_fraction  # noqa: E402,F401  (one definition)

#: where the figures and results go; ``--scale NAME`` appends NAME (a test may point them elsewhere)
FIGURES = ROOT / "docs" / "figures"
RESULTS = ROOT / "docs" / "results"


def experiment_list(ap: argparse.ArgumentParser, text: str, option: str) -> list[str]:
    """The experiment names of a comma-separated option; an unknown name is a usage error."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = sorted(set(names) - set(EXPERIMENTS))
    if unknown:
        ap.error(f"{option}: unknown experiment(s) {', '.join(unknown)}; choose from {', '.join(EXPERIMENTS)}")
    return names


def main(argv=None) -> int:
    epilog = "experiments:\n" + "\n".join(f"  {k:9s} {f.__doc__.splitlines()[0]}" for k, f in EXPERIMENTS.items())
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--model",
        type=Path,
        default=ROOT / "models" / "crnn.onnx",
        help="the exported model (.onnx) the report is about (default: %(default)s)",
    )
    ap.add_argument(
        "--ablation",
        type=Path,
        default=ROOT / "models" / "crnn_ablation.onnx",
        help="the non-conservative model for `heldout` and `ablation`; skipped if the file is "
        "missing (default: %(default)s)",
    )
    ap.add_argument(
        "--other",
        type=Path,
        default=ROOT / "models" / "crnn_paper.onnx",
        help="the other architecture, for `architecture` (default: %(default)s)",
    )
    ap.add_argument(
        "--work",
        type=Path,
        default=Path("/tmp/ch3d-reproduce"),
        help="folder for the intermediate data (HDF5 ground truth, evaluations; a few GB at most), "
        "reused when present; with --scale NAME its subfolder NAME (default: %(default)s)",
    )
    ap.add_argument(
        "--only",
        default=",".join(EXPERIMENTS),
        help="comma-separated experiments to run, e.g. heldout,long (default: all; --list names them)",
    )
    ap.add_argument(
        "--scale",
        default=None,
        metavar="NAME",
        help="write to docs/results/NAME/ and docs/figures/NAME/ instead of docs/results/ and "
        "docs/figures/: one report section per scale, e.g. --scale paper --model models/crnn64.onnx",
    )
    ap.add_argument(
        "--spectral-truth",
        default="",
        metavar="EXPERIMENTS",
        help="comma-separated experiments whose ground truth is the spectral scheme (SBDF2 at matched "
        "accuracy, F within 0.2 %% of the explicit kernel's) instead of the training data's scheme; "
        "for the paper scale, where 3,000 explicit steps per frame make long runs cost hours "
        "(default: none)",
    )
    ap.add_argument(
        "--ensemble",
        type=int,
        default=100,
        metavar="N",
        help="sequences of the `ensemble` experiment (default: %(default)s; 200 frames each, float32: "
        "100 take 1.3 GB at a 32³ grid, 21 GB at 64³)",
    )
    ap.add_argument("--list", action="store_true", help="list the experiments (this help) and exit")
    a = ap.parse_args(argv)
    if a.scale is not None:
        if not a.scale or "/" in a.scale or a.scale.startswith("."):
            ap.error(f"--scale must be a plain folder name, got {a.scale!r}")
        global FIGURES, RESULTS
        FIGURES, RESULTS = FIGURES / a.scale, RESULTS / a.scale
    if a.list:
        ap.print_help()
        return 0
    FIGURES.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    names = experiment_list(ap, a.only, "--only")
    spectral = experiment_list(ap, a.spectral_truth, "--spectral-truth")
    if a.ensemble < 2:
        ap.error(f"--ensemble must be at least 2, got {a.ensemble}")
    work = a.work / a.scale if a.scale else a.work  # one cache per scale: same file names, other physics
    work.mkdir(parents=True, exist_ok=True)
    ctx = Context(
        a.model,
        a.ablation if a.ablation.exists() else None,
        work,
        a.other if a.other.exists() else None,
        spectral=spectral,
        ensemble=a.ensemble,
        figures=FIGURES,
        sizes=SIZES,
    )
    for name in names:
        t0 = time.perf_counter()
        print(f"== {name}: {EXPERIMENTS[name].__doc__.splitlines()[0]}", flush=True)
        try:
            res = EXPERIMENTS[name](ctx)
        except subprocess.CalledProcessError as exc:
            print(f"error: {name}: command failed with status {exc.returncode}", file=sys.stderr)
            return 1
        res["seconds"] = time.perf_counter() - t0
        save_json(RESULTS, name, res)
        print(f"== {name} done in {res['seconds']:.0f} s -> {RESULTS / (name + '.json')}", flush=True)
    print(f"tables: {write_summary(RESULTS)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
