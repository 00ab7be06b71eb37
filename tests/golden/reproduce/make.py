"""Writes the reference outputs of tests/test_reproduce_unchanged.py with a given docs/reproduce.py.

The files here were written by the code *before* the restructuring of issue 23 (docs/reproduce.py of
commit 96a384d, one file of 1,291 lines), from the repository root:

    git show 96a384d:docs/reproduce.py > docs/reproduce_old.py    # beside the new one: same ROOT
    python tests/golden/reproduce/make.py docs/reproduce_old.py tests/golden/reproduce
    rm docs/reproduce_old.py

Rerun only on purpose (a deliberate change of what the report records). The test runs this script with
the current docs/reproduce.py into a temporary folder and compares. It writes into OUTDIR:

* ``results/{check,long,coarsening}.json`` and ``results/summary.md``: ``main(["--only",
  "check,long,coarsening", "--spectral-truth", "long,coarsening", ...])`` with the long and
  coarsening experiments shortened as in tests/test_shipped_model.py (40 network steps checked
  every 10; 1 IC of 8 frames, fit from frame 2);
* always (with ``--summary-only`` nothing else): ``summary_of_results.md``, the report's tables built from the committed
  docs/results/*.json and ``summary_of_results_paper.md`` from docs/results/paper/, with the
  SHA-256 of those inputs in ``inputs.sha256`` (the test skips these if the inputs changed since).
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
LONG = dict(steps=40, every=10, tail=10_000)
COARSENING = dict(sequences=1, frames=8, fit_from=2)
SUMMARIES = {
    "summary_of_results.md": ROOT / "docs" / "results",
    "summary_of_results_paper.md": ROOT / "docs" / "results" / "paper",
}


def load(path: Path):
    spec = importlib.util.spec_from_file_location("reproduce_under_test", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def summary(mod, results: Path) -> str:
    """The report's tables from the JSON files in ``results`` (the old builder read the global RESULTS)."""
    if hasattr(mod, "SIZES"):
        return "\n".join(mod.summary_lines(results)) + "\n"
    mod.RESULTS = results
    return "\n".join(mod.summary_lines()) + "\n"


def inputs_sha256() -> str:
    lines = []
    for results in SUMMARIES.values():
        for path in sorted(results.glob("*.json")):
            lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(ROOT)}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    reproduce, out = Path(argv[0]), Path(argv[1])
    summary_only = "--summary-only" in argv[2:]
    out.mkdir(parents=True, exist_ok=True)
    mod = load(reproduce)
    for name, results in SUMMARIES.items():
        (out / name).write_text(summary(mod, results))
    (out / "inputs.sha256").write_text(inputs_sha256())
    if summary_only:
        return 0
    mod = load(reproduce)  # fresh globals
    mod.RESULTS, mod.FIGURES = out / "results", out / "figures"
    if hasattr(mod, "SIZES"):  # the restructured code: a frozen table of seeds and sizes
        mod.SIZES = mod.SIZES.replace(long=mod.table.Long(**LONG), coarsening=mod.table.Coarsening(**COARSENING))
    else:  # the code before issue 23: module globals
        mod.LONG_STEPS, mod.LONG_EVERY, mod.LONG_TAIL = LONG["steps"], LONG["every"], LONG["tail"]
        mod.COARSENING_SEQUENCES, mod.COARSENING_FRAMES = COARSENING["sequences"], COARSENING["frames"]
        mod.COARSENING_FIT_FROM = COARSENING["fit_from"]
    return mod.main(
        ["--only", "check,long,coarsening", "--spectral-truth", "long,coarsening", "--work", str(out / "work")]
    )


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
