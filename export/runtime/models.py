"""The shipped models by name: ``Rollout("crnn64")``, ``python -m export.rollout crnn64 ...``.

    from export.runtime import list_models, model_card, model_path
    list_models()                       # ('crnn', 'crnn64', 'crnn_ablation', 'crnn_paper')
    meta, text = model_card("crnn64")   # the ch3d metadata and a short card: physics, accuracy, limits
    model_path("crnn64")                # .../models/crnn64.onnx (a checkout) or .../ch3d_models/crnn64.onnx

The ``.onnx`` files of the repository's ``models/`` folder are installed with the package as the package
``ch3d_models`` (pyproject.toml: ``package-dir``; the wheel holds the ``*.onnx`` files and ``cards.json``,
not the PyTorch checkpoints). The folder used is the one beside the code that runs: a checkout's
``models/`` (the code runs from a checkout, editable install or ``PYTHONPATH``), else the installed
``ch3d_models``.

Names (:func:`model_path`): an existing path always wins; a bare name — no suffix, no folder, not an
existing file — is an installed model's name, and an unknown one is refused in one line; anything else
(``run/m.onnx`` that does not exist) is returned as it is, for the caller's "no such model file".

The card (``cards.json``, one entry per model) states what the model emulates (physics, training grid,
time per step) and which checkpoint it describes; tests/test_models_by_name.py compares both with each
file's metadata, so a re-trained model cannot ship under an old card. Its numbers are quoted from the
full card, ``models/README.md``, and ``docs/REPRODUCTION.md``, with the command that made each.

Imports: the standard library, onnxruntime (reading a card's metadata) and :mod:`export.runtime` only.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from . import spec
from .providers import create_session

__all__ = ["list_models", "model_card", "model_path", "models_dir"]

#: the installed package that holds the models (its folder is the repository's ``models/``)
PACKAGE = "ch3d_models"
#: the cards of the shipped models, in ``models_dir()``
CARDS = "cards.json"

#: the folder holding the ``export`` package: a checkout's root, or site-packages
_ROOT = Path(__file__).resolve().parents[2]


def models_dir() -> Path | None:
    """The folder of the shipped models: a checkout's ``models/``, else the installed ``ch3d_models``; None
    if neither exists (a copy of the code without its models)."""
    if (_ROOT / "pyproject.toml").is_file() and (_ROOT / "models" / CARDS).is_file():
        return _ROOT / "models"
    found = importlib.util.find_spec(PACKAGE)  # a top-level name: found without importing it
    if found is not None and found.submodule_search_locations:
        return Path(next(iter(found.submodule_search_locations)))
    return None


def list_models() -> tuple[str, ...]:
    """The names of the installed models (the ``.onnx`` files of ``models_dir``), sorted."""
    folder = models_dir()
    return tuple(sorted(p.stem for p in folder.glob("*.onnx"))) if folder is not None else ()


def _unknown(name: str) -> ValueError:
    names = list_models()
    known = f"one of the installed models {', '.join(names)}" if names else "an installed model (none found)"
    return ValueError(f"unknown model {name!r}: not a file, and not {known}")


def _bare(text: str) -> bool:
    return bool(text) and "/" not in text and "\\" not in text and not Path(text).suffix and text not in (".", "..")


def model_path(name_or_path) -> Path:
    """The model file that ``name_or_path`` names (:mod:`export.runtime.models`): an existing path as it is, a bare name
    as the installed model's file; ValueError (one line) for a bare name that is neither."""
    path = Path(name_or_path)
    if path.exists() or not _bare(str(name_or_path)):
        return path
    if str(name_or_path) in list_models():
        return models_dir() / f"{name_or_path}.onnx"
    raise _unknown(str(name_or_path))


def _cards() -> dict:
    folder = models_dir()
    if folder is None or not (folder / CARDS).is_file():
        return {}
    return json.loads((folder / CARDS).read_text(encoding="utf-8"))


def read_file_metadata(path) -> dict:
    """The ``ch3d`` metadata of an ONNX file, read in a one-thread CPU session (:func:`read_metadata` of
    :mod:`export.runtime.session`, which imports this module, reads it from a running session)."""
    session = create_session(Path(path), "cpu", 1)
    raw = session.get_modelmeta().custom_metadata_map.get(spec.METADATA_KEY)
    if raw is None:
        raise ValueError(f"{path} has no '{spec.METADATA_KEY}' metadata (not written by `python -m export`?)")
    try:
        return spec.check_metadata(json.loads(raw), path)
    except json.JSONDecodeError:
        raise ValueError(f"{path}: the '{spec.METADATA_KEY}' metadata is not valid JSON") from None


def card_text(name: str, card: dict) -> str:
    """A card's short text: what the model is, what it emulates, its accuracy and the command, its limits."""
    e = card["emulates"]
    net = e["train_grid"] // e["downscale"]
    return "\n".join(
        [
            f"{name}: {card['about']}.",
            f"Emulates: the 3D Cahn-Hilliard equation dphi/dt = M lap(f'(phi) - eps^2 lap phi), "
            f"f = W phi^2 (1-phi)^2, periodic box; eps = {e['epsilon']:g}, M = {e['mobility']:g}, W = {e['W']:g}, "
            f"dx = {e['dx']:g}; trained on {e['train_grid']}^3 boxes, run on the grid downsampled x{e['downscale']} "
            f"({net}^3 for those; any box divisible by {e['downscale']}); one step = "
            f"{e['time_per_step']:g} time units ({card['step']}).",
            f"Accuracy: {card['accuracy']}",
            f"Made by: {card['command']}",
            f"Limits: {card['limits']}",
            "Full card: models/README.md in the repository.",
        ]
    )


def model_card(name: str) -> tuple[dict, str]:
    """An installed model's ``ch3d`` metadata and its short card text (:mod:`export.runtime.models`); ValueError (one
    line) for a name that is not an installed model."""
    if not _bare(str(name)) or str(name) not in list_models():
        raise _unknown(str(name))
    card = _cards().get(str(name))
    if card is None:
        raise ValueError(f"installed model {name!r} has no card in {models_dir() / CARDS}")
    return read_file_metadata(models_dir() / f"{name}.onnx"), card_text(str(name), card)
