"""The model of an evaluation: a runner chosen by the file's kind, on the data's boundary; the physics check.

:func:`load_runner` gives an :class:`export.runtime.Rollout` for an exported step (.onnx; no torch imported)
or a :class:`surrogate.runner.TorchRunner` for a checkpoint, made for the box's boundary (``boundary=``,
``ch_numba.CHParams.boundary``'s forms; periodic by default). An ONNX graph that pads periodically only
(exported before walls existed) cannot run a box with walls: that is refused in one line (ValueError),
and so is an unknown boundary. :func:`physics_warnings` words the differences between a model's training
physics and a data set's (the runtime's one comparison, :func:`export.runtime.guards.physics_mismatches`).
Used by :mod:`surrogate.evaluate`, which re-exports :func:`load_runner`.
"""

from __future__ import annotations

from pathlib import Path

from ch_numba.params import boundary_text, parse_boundary
from export.runtime.guards import physics_mismatches  # the one physics check (the runtime's too)

__all__ = ["load_runner", "model_kind", "physics_warnings", "trained_boundary"]


def model_kind(path: Path) -> str:
    """ "onnx" or "torch": by the suffix, else by the content (a torch checkpoint is a zip file)."""
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix in (".pt", ".pth"):
        return "torch"
    with open(path, "rb") as fh:
        return "torch" if fh.read(4) == b"PK\x03\x04" else "onnx"


def load_runner(path, *, device: str = "auto", providers: str = "auto", threads: int | None = None, boundary=None):
    """(runner, kind): an :class:`export.runtime.Rollout` for .onnx or a shipped model's name (kind "onnx", no
    torch imported) or a :class:`surrogate.runner.TorchRunner` for a checkpoint (kind "torch"), stepping a box with
    ``boundary`` (None: periodic). ValueError (one line) for a missing file, an unknown boundary or a
    model that cannot run it."""
    path = Path(path)
    if not path.exists():
        try:
            from export.runtime.models import model_path
        except ImportError:  # no onnxruntime: only files
            pass
        else:
            path = model_path(path)  # a shipped model's name ("crnn64", as Rollout takes it); else as it is
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a model file")
    if not path.is_file():
        raise ValueError(f"{path}: no such model file")
    boundary = parse_boundary("periodic" if boundary is None else boundary)  # one line for a bad name first
    kind = model_kind(path)
    if kind == "onnx":
        try:
            from export.runtime import Rollout
        except ImportError as exc:
            raise ValueError(f"evaluating {path} needs onnxruntime ({exc}); pip install 'ch3d[export]'") from None
        return Rollout(path, providers=providers, threads=threads, boundary=boundary), kind
    try:
        from .runner import TorchRunner
    except ImportError as exc:
        raise ValueError(
            f"evaluating the checkpoint {path} needs PyTorch ({exc}); pip install 'ch3d[train]', or "
            f"evaluate an exported .onnx model"
        ) from None
    return TorchRunner(path, device=device, threads=threads, boundary=boundary), kind


def physics_warnings(meta: dict, ds, stride: int = 1) -> list[str]:
    """Differences between the model's training physics and the data set's (the model may still be
    evaluated: a mismatch is reported, not refused); the comparison is the runtime's
    (:func:`export.runtime.guards.physics_mismatches`, relative tolerance ``PHYSICS_RTOL``). The data set's
    time per network step is ``stride`` stored frames. The boundary is not compared: a model runs on the data's
    (the padding follows the box; :func:`trained_boundary` is what it was trained on)."""
    data = {
        "epsilon": ds.params.epsilon,
        "mobility": ds.params.mobility,
        "W": ds.params.W,
        "dx": ds.params.dx,
        "time_per_step": stride * float(ds.attrs["steps_per_frame"]) * ds.params.dt,
    }
    out = []
    for key, want, trained in physics_mismatches(meta, {k: float(v) for k, v in data.items()}):
        what = key
        if key == "time_per_step":
            what = "time per stored frame (steps_per_frame * dt)"
            if stride > 1:
                what = f"time per network step ({stride} stored frames x steps_per_frame * dt)"
        out.append(f"the model was trained with {what} = {trained:g}, the ground truth has {want:g}")
    assumed = meta.get("assumed") or []
    if assumed:
        out.append(f"the model's metadata lacks {', '.join(assumed)} (defaults assumed)")
    return out


def trained_boundary(meta: dict) -> str:
    """The training data's boundary of a model's metadata as "X,Y,Z" (``train.boundary``; absent: periodic)."""
    train = meta.get("train") if isinstance(meta.get("train"), dict) else {}
    try:
        return boundary_text(parse_boundary(train.get("boundary") or "periodic"))
    except ValueError:
        return str(train.get("boundary"))
