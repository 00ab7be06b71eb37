"""The onnxruntime session of an exported step: execution providers, session options, the device.

Providers: ``"auto"`` uses CUDA when this onnxruntime has the provider and it starts (the session
is asked with ``session.get_providers()``, not ``get_available_providers()``, which only lists
what the wheel was built with), else the CPU, saying so in one log line. ``"cpu"`` / ``"cuda"``
force one (``"cuda"`` raises if CUDA cannot be used). A list is passed to onnxruntime as is,
``(name, options)`` pairs included, except for the CUDA options below.

CUDA options (:func:`cuda_provider_options`). TF32 is off (``use_tf32=0``): the CUDA execution
provider allows it by default, and on Ampere/Hopper GPUs its convolutions then round their inputs
to a 10-bit mantissa (~1e-3 relative), far above the float32 round-off the exported model is
verified to; ``Rollout(..., tf32=True)`` allows it (faster, less accurate), and a ``use_tf32`` the
caller put in a provider list is kept. The state buffers of IOBinding are allocated on the device
the session runs on: the ``device_id`` of the CUDA provider options (read back from the session),
not device 0.

CUDA libraries (issue 24 item 5). onnxruntime-gpu's CUDA provider needs cuBLAS, cuRAND, cudart and
cuDNN of its build's CUDA major, and its library has no RUNPATH to find them in the ``nvidia-*`` wheels
(the ``gpu`` extra installs them: ``onnxruntime-gpu[cuda,cudnn]``). Before the first session that may
use CUDA, ``prepare_cuda`` calls ``onnxruntime.preload_dlls()`` where this onnxruntime has it and is
a CUDA build (once per process; what it prints goes to the debug log, not to stdout), which loads them
from those wheels. A PyTorch already imported into the process with another CUDA major (its
``torch.version.cuda``; torch is never imported here) has put its own CUDA and cuDNN libraries in the
process (cuDNN keeps one soname across CUDA majors), so the CUDA provider may then fail: the error of
``providers="cuda"``, or the fallback line of ``"auto"``, names both versions (``cuda_mismatch``).

Logging: the sessions log warnings and above only, through their own ``SessionOptions.
log_severity_level``; onnxruntime's global (default-logger) severity belongs to the host application
and is never changed (so a build without usable CUDA libraries may print its own messages about
them once, besides our one line).

CPU tuning (measured in benchmarks/runtime.py): graph optimisation ORT_ENABLE_ALL (Conv + Tanh
fused), intra-op threads = the cores this process may use, one inter-op thread, sequential.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
from pathlib import Path

import onnxruntime as ort

from .runner_base import check_threads
from .spec import PROVIDERS

log = logging.getLogger(__name__)

__all__ = [
    "PROVIDERS",
    "cpu_cores",
    "session_options",
    "cuda_provider_options",
    "create_session",
    "session_device",
    "cuda_mismatch",
    "prepare_cuda",
]

_CUDA = "CUDAExecutionProvider"
_CPU = "CPUExecutionProvider"

#: the oldest onnxruntime the runtime takes (pyproject's ``export`` extra); the C API (native/) needs 1.21
MIN_ONNXRUNTIME = (1, 18)


def check_onnxruntime(version: str | None = None) -> None:
    """Raise a one-line ValueError if onnxruntime (``version``, default the installed one) is older than
    :data:`MIN_ONNXRUNTIME` (one row of docs/embedding.md's table of bad inputs, as the C API's
    CH3D_ERR_ORT_TOO_OLD)."""
    version = ort.__version__ if version is None else version
    m = re.match(r"(\d+)\.(\d+)", version)
    if m and tuple(map(int, m.groups())) < MIN_ONNXRUNTIME:
        need = ".".join(map(str, MIN_ONNXRUNTIME))
        raise ValueError(
            f"onnxruntime {version} is too old: ch3d needs onnxruntime >= {need}; pip install -U onnxruntime"
        )


def cpu_cores() -> int:
    """Cores this process may run on (the affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """Session options tuned for this model on CPU: ORT_ENABLE_ALL, ``threads`` intra-op threads
    (default: :func:`cpu_cores`), one inter-op thread, sequential execution, warnings only."""
    check_threads(threads)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads or cpu_cores()
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    return so


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def cuda_provider_options(device_id: int = 0, tf32: bool = False) -> dict:
    """Options of the CUDA execution provider for our sessions: ``device_id``, ``use_tf32`` (0 unless ``tf32``)."""
    return {"device_id": int(device_id), "use_tf32": int(bool(tf32))}


def _requested_providers(providers, tf32: bool = False):
    """(provider list for onnxruntime, whether CUDA is required, whether CUDA is tried).

    Every CUDA entry gets ``use_tf32`` (from ``tf32``) unless its options already set it.
    """
    if isinstance(providers, (list, tuple)):
        names = [p[0] if isinstance(p, tuple) else p for p in providers]
        if not names or not all(isinstance(n, str) for n in names):
            raise ValueError(
                f"providers must be one of {PROVIDERS} or a list of onnxruntime provider names, got {providers!r}"
            )
        requested = []
        for p in providers:
            name, options = (p[0], dict(p[1]) if len(p) > 1 and p[1] else {}) if isinstance(p, tuple) else (p, {})
            if name == _CUDA:
                options.setdefault("use_tf32", int(bool(tf32)))
            requested.append((name, options) if options else name)
        return requested, False, _CUDA in names
    if providers not in PROVIDERS:
        raise ValueError(f"providers must be one of {', '.join(PROVIDERS)}, got {providers!r}")
    available = ort.get_available_providers()
    if providers == "cpu":
        return [_CPU], False, False
    if providers == "cuda" and _CUDA not in available:
        raise ValueError(
            f"providers='cuda' but this onnxruntime has no CUDA provider (it has {', '.join(available)});"
            f" install onnxruntime-gpu, or use 'auto' or 'cpu'"
        )
    if _CUDA in available:
        return [(_CUDA, cuda_provider_options(0, tf32)), _CPU], providers == "cuda", True
    return [_CPU], False, False


def _cuda_major(version) -> int | None:
    """12 from "12.8", None from "", None or garbage."""
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return None


def cuda_mismatch(module=None, modules=None) -> str | None:
    """None, or a sentence naming the CUDA majors when an already imported torch and this onnxruntime differ.

    module : the onnxruntime module (default: the imported one; its ``cuda_version``, "" for CPU builds).
    modules : where to look for torch (default ``sys.modules``; torch is never imported here).
    """
    module = ort if module is None else module
    modules = sys.modules if modules is None else modules
    torch = modules.get("torch")
    torch_cuda = getattr(getattr(torch, "version", None), "cuda", None) if torch is not None else None
    ort_cuda = getattr(module, "cuda_version", "") or ""
    t, o = _cuda_major(torch_cuda), _cuda_major(ort_cuda)
    if t is None or o is None or t == o:
        return None
    return (
        f"PyTorch {getattr(torch, '__version__', '?')} (CUDA {torch_cuda}), imported first, put CUDA {t} and its "
        f"cuDNN in this process, but onnxruntime {getattr(module, '__version__', '?')} is built for CUDA {ort_cuda}: "
        f"install both for one CUDA major (docs/gpu.md, 'Install'), or create the session before importing torch"
    )


_preloaded: list = []  # what prepare_cuda did, once per process


def prepare_cuda(module=None) -> str:
    """Before a session that may use CUDA: ``module.preload_dlls()`` once per process where it exists and
    ``module`` (default: onnxruntime) is a CUDA build. Returns what happened, in a few words (also logged
    at debug level, with what preload_dlls printed)."""
    module = ort if module is None else module
    if _preloaded:
        return _preloaded[0]
    preload = getattr(module, "preload_dlls", None)
    if preload is None:
        note = "onnxruntime has no preload_dlls (older than 1.21): CUDA libraries from the default search path"
    elif _cuda_major(getattr(module, "cuda_version", "")) is None:
        note = "onnxruntime is not a CUDA build: nothing to preload"
    else:
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                preload(cuda=True, cudnn=True)
            note = "preloaded the CUDA and cuDNN libraries"
        except Exception as exc:  # a broken install: the session's own error will say more
            note = f"preload_dlls failed ({_first_line(exc)})"
        text = printed.getvalue().strip()
        if text:
            note += ": " + " | ".join(text.splitlines())[:500]
    log.debug("onnxruntime: %s", note)
    _preloaded.append(note)
    return note


def create_session(path: Path, providers, threads, tf32: bool = False):
    """An InferenceSession on the requested providers (:mod:`export.runtime.providers`); falls back to the CPU for
    "auto"."""
    check_onnxruntime()
    requested, need_cuda, try_cuda = _requested_providers(providers, tf32)
    options = session_options(threads)
    mismatch = None
    if try_cuda:
        prepare_cuda()
        mismatch = cuda_mismatch()
    why = f"; {mismatch}" if mismatch else ""
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=requested)
    except Exception as exc:  # onnxruntime raises its own exception types (InvalidProtobuf, Fail, ...)
        if not try_cuda:
            raise ValueError(f"{path} is not a readable ONNX model ({_first_line(exc)})") from None
        try:  # on the CPU alone: tells a CUDA failure from an unreadable file
            session = ort.InferenceSession(str(path), sess_options=options, providers=[_CPU])
        except Exception as exc2:
            raise ValueError(f"{path} is not a readable ONNX model ({_first_line(exc2)})") from None
        if need_cuda:
            raise ValueError(
                f"providers='cuda' but the CUDA provider did not start ({_first_line(exc)}){why}; use "
                f"providers='cpu' or 'auto'"
            ) from None
    used = session.get_providers()
    if not try_cuda and providers == "auto":
        log.debug("onnxruntime: this build has no CUDA provider; running on CPU")
    if try_cuda and _CUDA not in used:
        if need_cuda:
            raise ValueError(
                "providers='cuda' but the CUDA provider did not start (no GPU, or CUDA/cuDNN libraries "
                f"missing){why}; use providers='cpu' or 'auto'"
            )
        log.info(
            "onnxruntime: CUDA provider not usable here (no GPU or CUDA libraries missing%s); running on CPU",
            f"; {mismatch}" if mismatch else "",
        )
    elif mismatch and _CUDA in used:
        log.warning("onnxruntime: %s", mismatch)
    return session


def session_device(session) -> tuple[str, int]:
    """(device, device id) where a session's first provider keeps its tensors: ("cuda", the CUDA provider's
    ``device_id``) or ("cpu", 0)."""
    if session.get_providers()[0] != _CUDA:
        return "cpu", 0
    options = session.get_provider_options().get(_CUDA, {})
    return "cuda", int(options.get("device_id", 0))
