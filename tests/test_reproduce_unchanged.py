"""docs/reproduce.py records the same numbers after its restructuring into docs/repro/ (issue 23, item 6:
"a cached run writes the same JSON").

``tests/golden/reproduce/`` holds what the one-file docs/reproduce.py of commit 96a384d wrote
(``tests/golden/reproduce/make.py`` says how): the check, long and coarsening experiments on tiny
sizes (the long and coarsening ones shortened as in tests/test_shipped_model.py) with their
summary.md, and the report's tables built from the committed docs/results/. The test reruns the same
script with the current code — twice, the second run reusing the cached ground truth — and compares
every JSON value apart from the timings (``seconds*``); the report's tables, built from fixed JSON
files, are compared as text. onnxruntime's float32 convolutions may round differently on another CPU,
so floats are compared to a relative 1e-5 (on the CPU that wrote the golden files they are equal)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "reproduce"
MAKE = GOLDEN / "make.py"
EXPERIMENTS = ("check", "long", "coarsening")
RTOL, ATOL = 1e-5, 1e-12


def _reproduce():
    spec = importlib.util.spec_from_file_location("reproduce_unchanged", ROOT / "docs" / "reproduce.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _same(new, old, where="") -> None:
    """``new`` equals ``old`` (JSON values): keys, types and lengths exactly, floats to RTOL."""
    if isinstance(old, dict):
        assert isinstance(new, dict), where
        keys = {k for k in old if not k.startswith("seconds")}
        assert {k for k in new if not k.startswith("seconds")} == keys, where
        for k in keys:
            _same(new[k], old[k], f"{where}.{k}")
    elif isinstance(old, list):
        assert isinstance(new, list) and len(new) == len(old), where
        for i, (a, b) in enumerate(zip(new, old)):
            _same(a, b, f"{where}[{i}]")
    elif isinstance(old, float) and not isinstance(new, bool) and isinstance(new, (int, float)):
        assert math.isclose(new, old, rel_tol=RTOL, abs_tol=ATOL) or (math.isnan(new) and math.isnan(old)), (
            where,
            new,
            old,
        )
    else:
        assert new == old and type(new) is type(old), (where, new, old)


@pytest.fixture(scope="module")
def reruns(tmp_path_factory):
    """The golden script run with the current docs/reproduce.py: a fresh run, then one reusing its cache."""
    out = tmp_path_factory.mktemp("reproduce")
    runs = []
    for k in range(2):
        subprocess.run(
            [sys.executable, str(MAKE), str(ROOT / "docs" / "reproduce.py"), str(out)],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        runs.append(out / f"run{k}")
        shutil.copytree(out / "results", runs[-1])
    return runs


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_a_run_writes_the_same_json(reruns, name):
    old = json.loads((GOLDEN / "results" / f"{name}.json").read_text())
    for run in reruns:
        _same(json.loads((run / f"{name}.json").read_text()), old, f"{run.name}/{name}")


def test_the_second_run_reuses_the_cached_ground_truth(reruns):
    first, second = (json.loads((run / "long.json").read_text()) for run in reruns)
    assert first["seconds_solver"] is not None and second["seconds_solver"] is None


def test_the_report_tables_are_built_as_before(tmp_path):
    """summary.md from the golden JSON files (fixed inputs: the text is compared exactly)."""
    for name in EXPERIMENTS:
        shutil.copyfile(GOLDEN / "results" / f"{name}.json", tmp_path / f"{name}.json")
    path = _reproduce().write_summary(tmp_path)
    assert path.read_text() == (GOLDEN / "results" / "summary.md").read_text()


@pytest.mark.parametrize("scale", ["", "paper"])
def test_the_report_tables_of_the_committed_results_are_built_as_before(scale):
    """Every table of the report (held-out, ensemble, ablation, cost, architecture, ...) from the
    committed docs/results/; skipped once those results are rewritten (rerun make.py then)."""
    results = ROOT / "docs" / "results" / scale
    expected = {}
    for line in (GOLDEN / "inputs.sha256").read_text().splitlines():
        digest, rel = line.split("  ", 1)
        expected[rel] = digest
    present = {
        str(p.relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest()
        for s in ("", "paper")
        for p in sorted((ROOT / "docs" / "results" / s).glob("*.json"))
    }
    if present != expected:
        pytest.skip("docs/results/*.json changed since tests/golden/reproduce/ was made")
    golden = GOLDEN / ("summary_of_results_paper.md" if scale else "summary_of_results.md")
    assert "\n".join(_reproduce().summary_lines(results)) + "\n" == golden.read_text()
