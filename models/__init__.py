"""ch3d's shipped ONNX models, installed as package data: ``import ch3d_models`` after ``pip install ch3d``.

This folder is the package ``ch3d_models`` (pyproject.toml: ``package-dir``); the wheel holds its ``*.onnx``
files and ``cards.json`` (the short model cards) only — not the PyTorch checkpoints, logs or ``wip/``.
Use them by name: ``export.runtime.Rollout("crnn64")``, ``python -m export.rollout crnn64 ...``;
``export.runtime.list_models()``, ``export.runtime.model_card("crnn64")``. The full card: README.md here.
"""
