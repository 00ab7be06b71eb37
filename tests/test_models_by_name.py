"""The shipped models by name (export/runtime/models.py) and as package data of the wheel (pyproject.toml).

- ``Rollout("crnn64")`` is ``Rollout("models/crnn64.onnx")``: the same file, the same step bitwise; an existing
  path always wins over a name; an unknown bare name is refused in one line.
- The cards (models/cards.json) state the physics and the checkpoint of each file's metadata, and quote
  only numbers that models/README.md or docs/REPRODUCTION.md state.
- A wheel built from a copy of the tree holds the four ``.onnx`` files byte for byte and the cards, no
  checkpoint, log or ``wip/``; from the wheel's files alone (not this checkout) ``Rollout("crnn64")``
  and ``python -m export.rollout crnn64`` run.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import run_python

from export.rollout import main as rollout_main
from export.runtime import Rollout, list_models, model_card, model_path
from export.runtime.models import read_file_metadata

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
SHIPPED = ("crnn", "crnn64", "crnn_ablation", "crnn_paper")
#: the card's "emulates" keys, each equal to the metadata's value
PHYSICS = ("epsilon", "mobility", "W", "dx", "train_grid", "downscale", "time_per_step")


def field(n=16, seed=11):
    rng = np.random.default_rng(seed)
    return (0.5 + 0.1 * rng.uniform(-1, 1, (n, n, n))).astype(np.float32)


def unknown_message(name):
    return f"unknown model {name!r}: not a file, and not one of the installed models {', '.join(SHIPPED)}"


# -- names ------------------------------------------------------------------------------------------
def test_the_installed_models_are_the_onnx_files_of_models_and_each_has_a_card():
    cards = json.loads((MODELS / "cards.json").read_text(encoding="utf-8"))
    assert list_models() == SHIPPED == tuple(sorted(p.stem for p in MODELS.glob("*.onnx")))
    assert sorted(k for k in cards if not k.startswith("_")) == list(SHIPPED)


def test_a_name_runs_the_same_file_as_its_path_bitwise():
    by_name, by_path = (Rollout(m, providers="cpu", threads=1) for m in ("crnn64", "models/crnn64.onnx"))
    assert by_name.path.resolve() == (MODELS / "crnn64.onnx").resolve() == model_path("crnn64").resolve()
    phi = field()
    a, b = by_name.step(phi), by_path.step(phi)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, phi)  # a step that did something
    np.testing.assert_array_equal(by_name.step(a), by_path.step(b))  # the hidden states too


def test_an_existing_file_named_like_a_model_wins(tmp_path, monkeypatch):
    shutil.copyfile(MODELS / "crnn_paper.onnx", tmp_path / "crnn64")  # a file called crnn64, another model
    monkeypatch.chdir(tmp_path)
    r = Rollout("crnn64", providers="cpu", threads=1)
    assert r.path == Path("crnn64")
    assert r.metadata["param_count"] == 29183 and r.metadata["epsilon"] == 1.5  # crnn_paper's, not crnn64's


def test_an_unknown_name_is_one_line_and_a_missing_path_keeps_its_message(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for call in (lambda: Rollout("crnn65"), lambda: model_path("crnn65"), lambda: model_card("crnn65")):
        with pytest.raises(ValueError) as err:
            call()
        assert str(err.value) == unknown_message("crnn65")
    for missing in ("crnn64.onnx", "runs/crnn64"):  # a suffix or a folder: a path, not a name
        assert model_path(missing) == Path(missing)
        with pytest.raises(ValueError, match=r"no such model file$"):
            Rollout(missing)
    with pytest.raises(ValueError, match=r"not one of the installed models"):
        model_card("models/crnn64.onnx")  # a card is asked for by name


def test_the_rollout_command_takes_a_name(tmp_path):
    import h5py

    out = tmp_path / "r.h5"
    assert 0 == rollout_main(
        ["crnn64", "--out", str(out), "--size", "16", "--steps", "2", "--every", "1", "--threads", "1"]
    )
    with h5py.File(out, "r") as f:
        assert Path(f.attrs["model"]).resolve() == (MODELS / "crnn64.onnx").resolve()
        np.testing.assert_allclose(f["time"][...].ravel(), [0.0, 3.2, 6.4], rtol=1e-12)  # crnn64's 3.2 per step


def test_evaluate_takes_a_name(tmp_path, monkeypatch):
    """surrogate's loader (evaluate, info) resolves a shipped model's name as Rollout does; an unknown name is the
    runtime's one line, a missing path keeps its own message."""
    from surrogate.loading import load_runner

    monkeypatch.chdir(tmp_path)
    runner, kind = load_runner("crnn", providers="cpu", threads=1)
    assert kind == "onnx" and runner.path.resolve() == (MODELS / "crnn.onnx").resolve()
    phi = field()
    np.testing.assert_array_equal(runner.step(phi), Rollout(MODELS / "crnn.onnx", providers="cpu", threads=1).step(phi))
    with pytest.raises(ValueError) as err:
        load_runner("crnn65")
    assert str(err.value) == unknown_message("crnn65")
    with pytest.raises(ValueError, match=r"crnn65\.onnx: no such model file$"):
        load_runner("crnn65.onnx")


# -- cards ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SHIPPED)
def test_the_card_states_the_files_physics_and_checkpoint(name):
    meta, text = model_card(name)
    assert meta == read_file_metadata(MODELS / f"{name}.onnx")
    card = json.loads((MODELS / "cards.json").read_text(encoding="utf-8"))[name]
    stale = f"models/cards.json[{name!r}] describes another model than models/{name}.onnx: update the card"
    for key in PHYSICS:
        assert card["emulates"][key] == meta[key], f"{stale} ({key})"
    for key in ("best_epoch", "best_val_loss"):  # the card describes this checkpoint, not an earlier one
        assert card["train"][key] == meta["train"][key], f"{stale} and its numbers ({key})"
    assert f"eps = {meta['epsilon']:g}," in text and f"one step = {meta['time_per_step']:g} time units" in text
    assert f"trained on {meta['train_grid']}^3 boxes" in text and f"downsampled x{meta['downscale']}" in text


def test_the_cards_quote_only_numbers_of_the_model_card_and_the_report():
    sources = (MODELS / "README.md").read_text(encoding="utf-8") + (ROOT / "docs" / "REPRODUCTION.md").read_text(
        encoding="utf-8"
    )
    cards = json.loads((MODELS / "cards.json").read_text(encoding="utf-8"))
    for name in SHIPPED:
        for part in ("accuracy", "limits", "step"):
            for number in re.findall(r"\d+\.\d+(?:e-?\d+)?", cards[name][part]):
                quoted = number in sources
                assert quoted, f"{name} {part}: {number} is in neither models/README.md nor REPRODUCTION.md"
        assert cards[name]["command"].startswith("python docs/reproduce.py ")


# -- packaging --------------------------------------------------------------------------------------
def test_pyproject_lists_every_package_and_the_models():
    tomllib = pytest.importorskip("tomllib")
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    found = [
        ".".join(p.parent.relative_to(ROOT).parts)
        for pkg in ("ch_numba", "export", "surrogate")
        for p in (ROOT / pkg).rglob("__init__.py")
    ]
    assert sorted(conf["packages"]) == sorted([*found, "ch3d_models"])
    assert conf["package-dir"] == {"ch3d_models": "models"}
    assert conf["package-data"] == {"ch3d_models": ["*.onnx", "cards.json"]}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built (no network, no isolation) from a copy of this tree: the checkout stays untouched."""
    if importlib.util.find_spec("pip") is None or importlib.util.find_spec("setuptools") is None:
        pytest.skip("needs pip and setuptools to build the wheel")
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copyfile(ROOT / name, src / name)
    for name in ("ch_numba", "export", "surrogate", "models"):  # models/ with its .pt, logs and wip/
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", str(src)]
    done = subprocess.run([*cmd, "-w", str(out)], capture_output=True, text=True, timeout=300, cwd=out)
    assert done.returncode == 0, done.stderr[-2000:]
    (path,) = out.glob("ch3d-*.whl")
    return path


def test_the_wheel_holds_the_four_models_byte_for_byte_and_no_checkpoint(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        data = {n: z.read(n) for n in names if n.startswith("ch3d_models/")}
    assert sorted(data) == sorted(
        ["ch3d_models/__init__.py", "ch3d_models/cards.json", *(f"ch3d_models/{m}.onnx" for m in SHIPPED)]
    )
    for m in SHIPPED:
        assert _sha(data[f"ch3d_models/{m}.onnx"]) == _sha((MODELS / f"{m}.onnx").read_bytes()), m
    assert not [n for n in names if n.endswith((".pt", ".csv", ".md")) or "wip" in n]
    code = sorted(
        str(p.relative_to(ROOT)) for pkg in ("ch_numba", "export", "surrogate") for p in (ROOT / pkg).rglob("*.py")
    )
    assert set(code) <= set(names)  # and the code, all of it


def test_the_wheel_alone_runs_a_model_by_name(wheel, tmp_path):
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)  # a pure-Python wheel's install: its files on sys.path
    code = (
        "import json, export; from export.runtime import Rollout, model_card\n"
        "r = Rollout('crnn64', providers='cpu', threads=1); meta, text = model_card('crnn64')\n"
        "print(json.dumps([r.path.as_posix(), export.__file__, meta['train_grid'], text.split(':')[0]]))\n"
        "from export.rollout import main\n"
        "main(['crnn64', '--out', 'r.h5', '--size', '16', '--steps', '1', '--every', '1', '--threads', '1'])\n"
    )
    env = dict(os.environ, PYTHONPATH=str(site), OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    done = run_python(code, env=env, cwd=elsewhere)
    assert done.returncode == 0, done.stderr[-2000:]
    path, export_file, grid, first = json.loads(done.stdout.splitlines()[0])
    assert path == (site / "ch3d_models" / "crnn64.onnx").as_posix() and export_file.startswith(str(site))
    assert (grid, first) == (64, "crnn64")
    assert (elsewhere / "r.h5").is_file()
