"""Test setup and the fixtures several test modules share.

CUDA kernels run in Numba's simulator unless a real GPU is present. NUMBA_ENABLE_CUDASIM must be
set before numba is first imported, hence here. Set CH3D_REAL_CUDA=0 to force the simulator on a
GPU machine.

Shared fixtures (torch, numba and the exporter are imported inside them, so that a test module
that needs none of them imports none of them):

``one_torch_thread``  module scope: torch runs on one thread while the module runs; a module asks
                      for it with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
``exported_model``    module scope: (checkpoint, ONNX file) of a random-weight CRNN with training
                      metadata, written once per session into pytest's base temp dir (shared by
                      test_export.py and test_runtime.py).
``dataset_attrs``     the data-set attributes that checkpoint's training metadata carries.
``data_file``         module scope: a tiny data set (test_data.py, test_train.py; test_evaluate.py
                      defines its own).

Shared helper (a plain function, ``from conftest import run_python``): :func:`run_python` runs code in a
fresh interpreter, optionally with torch made unimportable and reporting which heavy modules it
loaded (:func:`heavy_modules`) — the torch-free checks of the runtime, the rollout command and the
ONNX evaluation.
"""

import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
#: prepended to a child's code by ``run_python(..., no_torch=True)``
NO_TORCH = 'import sys\nsys.modules["torch"] = None  # any `import torch` now raises ImportError\n'

if os.environ.get("CH3D_REAL_CUDA", "1" if shutil.which("nvidia-smi") else "0") != "1":
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

DATASET_ATTRS = {
    "format": "ch3d-dataset",
    "epsilon": np.float64(3.0),
    "mobility": np.float64(1.0),
    "W": np.float64(1.0),
    "dx": np.float64(1.0),
    "dt": np.float64(1e-3),
    "steps_per_frame": np.int64(400),
    "shape": np.array([16, 16, 16]),
    "package_version": "0.1.0",
}


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny grids gain nothing from threads, and OpenMP spin-waiting on a loaded 2-core machine
    can slow these tests a hundredfold; subprocesses get --threads 1 too (same numbers)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture()
def dataset_attrs():
    return DATASET_ATTRS


@pytest.fixture(scope="module")
def exported_model(tmp_path_factory):
    """(checkpoint, onnx file) of a random-weight CRNN with training metadata; exported once per session
    (whichever module asks first writes it)."""
    import torch

    from export import onnx_export
    from surrogate import CRNN, save_checkpoint

    folder = tmp_path_factory.getbasetemp() / "ch3d_export_v2"
    ckpt, path = folder / "model.pt", folder / "model.onnx"
    if not path.exists():
        folder.mkdir(exist_ok=True)
        torch.manual_seed(0)
        dataset = {
            "path": "/data/train.h5",
            "n_sequences": 10,
            "n_frames": 50,
            "shape": [16, 16, 16],
            "train": list(range(7)),
            "val": [7, 8, 9],
            "attrs": DATASET_ATTRS,
        }  # as surrogate.train stores
        save_checkpoint(
            CRNN(),
            ckpt,
            epoch=7,
            dataset=dataset,
            downscale=2,
            best_val_loss=1.25e-3,
            best_epoch=6,
            train_config={"data": "/data/train.h5", "epochs": 8, "lr": 1e-4},
            code_version="0.1.0+g1234",
        )
        onnx_export.export_checkpoint(ckpt, path)
    return ckpt, path


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    """6 sequences (4 train, 2 val) × 8 frames of 16³ in the spinodal regime (ε = 1, dt = 0.01: the
    frames change by ~1e-2 rms each), numpy reference backend (~1 s)."""
    import ch_numba
    from ch_numba.dataset import DatasetConfig, generate

    path = tmp_path_factory.mktemp("data") / "tiny.h5"
    generate(
        path,
        DatasetConfig(sequences=6, frames=8, steps_per_frame=100, size=16, val_fraction=0.34, seed=1, frequencies=(2,)),
        ch_numba.CHParams(epsilon=1.0, dt=0.01),
        backend="numpy",
        progress=False,
    )
    return path


def heavy_modules() -> list[str]:
    """What an embedding of the torch-free runtime must not load: ``surrogate``, torch, the solver's
    numba, h5py, scipy, matplotlib, and every module of ``ch_numba`` except the stdlib-only
    :mod:`ch_numba.params` (the generator's clip window of mean φ, which the runtime reads) and
    :mod:`ch_numba.options` (which params' fields declare their options with); the lazy
    ``ch_numba/__init__`` that comes with them loads nothing."""
    import ch_numba

    stdlib_only = ("params", "options")
    solver = sorted(f"ch_numba.{m.name}" for m in pkgutil.iter_modules(ch_numba.__path__) if m.name not in stdlib_only)
    return ["surrogate", "surrogate.metrics", "torch", *solver, "numba", "h5py", "scipy", "matplotlib"]


def run_python(code: str, *args, no_torch: bool = False, report=None, env=None, cwd=ROOT, timeout: float = 300):
    """Run ``python -c code args...`` in a fresh interpreter; returns the CompletedProcess (text output).

    no_torch : make torch unimportable first (:data:`NO_TORCH`: ``sys.modules["torch"] = None``, so any
        ``import torch`` raises ImportError).
    report : module names; the child then prints, last, ``loaded: a,b`` (those of them it imported)
        or ``loaded: none``.
    env : the environment (default: this one with OMP_NUM_THREADS=1 and NUMBA_NUM_THREADS=1; tiny
        grids gain nothing from threads). cwd : the repository root by default, so ``-c`` code
        imports this checkout's packages.
    """
    if no_torch:
        code = NO_TORCH + code
    if report is not None:
        code += f'\nimport sys\nprint("loaded:", ",".join(m for m in {list(report)!r} if m in sys.modules) or "none")\n'
    if env is None:
        env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
    )


#: a small generated data set (3 sequences of 3 frames at 12³; burn-ins 1, 2, 0 frames: members with
#: different burn-ins share a batch) and the arrays two runs of it must agree on bitwise
SMALL_DATASET = dict(sequences=3, frames=3, steps_per_frame=20, size=12, burn_in_frames=2, val_fraction=0.34, seed=5)
DATASET_ARRAYS = ("phi", "seed", "ic", "burn_in", "split", "phi_mean", "free_energy", "time", "t0")


def read_dataset_arrays(path) -> dict:
    """{name: array} of :data:`DATASET_ARRAYS` in the data set at path."""
    import h5py

    with h5py.File(path, "r") as f:
        return {name: f[name][...] for name in DATASET_ARRAYS}


def assert_same_data(a: dict, b: dict) -> None:
    """Two :func:`read_dataset_arrays` results are bitwise equal, array by array."""
    for name in DATASET_ARRAYS:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
