"""Compiling the CUDA kernels without a GPU: PTX from NVVM, ``ptxas -v`` and ``nvdisasm`` from pip wheels.

:func:`ch_numba.kernels_cuda.compile_report` compiles a kernel with numba-cuda's ``compile_ptx`` (NVVM,
no driver needed) and assembles the PTX with ``ptxas -v`` for one compute capability; this module finds
the tools, runs ``ptxas``, reads its resource usage (registers, shared memory, spills) and computes the
occupancy from it. The tools come from the ``nvidia-nvvm``, ``nvidia-cuda-nvrtc``, ``nvidia-cuda-nvcc``
(ptxas) and ``nvidia-cuda-nvdisasm`` wheels (the ``test`` extra), or from a CUDA toolkit on the PATH.

numpy ≥ 2.5: numba-cuda 0.30.x registers a typing of ``np.row_stack`` without a version guard (numpy
2.5 removed it), so every compilation raised ``AttributeError: module 'numpy' has no attribute
'row_stack'``; upstream NVIDIA/numba-cuda#907 (closed, won't fix: numba-cuda is in maintenance mode;
numba itself guards it since 0.67). :func:`apply_numpy_shim` restores the alias ``np.row_stack =
np.vstack`` (what it was in numpy < 2.5) only where numpy lacks it, before numba-cuda's typing
registry loads; remove it once numba-cuda guards the overload or is replaced.

(The module's name must not contain ``numba.cuda``: numba-cuda's import redirector treats any module
whose name does, such as ``ch_numba.cuda_...``, as part of ``numba.cuda`` and recurses.)
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile

import numpy as np

#: per-SM limits used for the occupancy: registers, shared memory (bytes, incl. the 1 KiB the
#: driver reserves per block), resident blocks, resident threads. sm_90: H100/H200; sm_80: A100.
SM_LIMITS = {
    (8, 0): {"regs": 65536, "smem": 164 * 1024, "blocks": 32, "threads": 2048},
    (9, 0): {"regs": 65536, "smem": 228 * 1024, "blocks": 32, "threads": 2048},
}
SMEM_RESERVED_PER_BLOCK = 1024  # bytes the CUDA driver keeps per resident block (sm_80 and later)
REG_ALLOC_UNIT = 256  # registers are allocated per warp in units of 256 (i.e. per thread in steps of 8)
WARP = 32


def apply_numpy_shim() -> bool:
    """``np.row_stack = np.vstack`` where numpy (≥ 2.5) lacks it (NVIDIA/numba-cuda#907); True if applied."""
    if hasattr(np, "row_stack"):
        return False
    np.row_stack = np.vstack
    return True


@functools.lru_cache(maxsize=None)
def find_tool(name: str) -> str | None:
    """Path of a CUDA binary utility (``ptxas``, ``nvdisasm``): the pip wheels first, then the PATH."""
    try:
        from cuda.pathfinder import find_nvidia_binary_utility

        path = find_nvidia_binary_utility(name)
        if path:
            return str(path)
    except Exception:  # no cuda-pathfinder, or an older one without the function
        pass
    return shutil.which(name)


@functools.lru_cache(maxsize=None)
def missing_compilers() -> str | None:
    """None when PTX can be compiled and assembled here, else why not (which wheel to install)."""
    missing = []
    try:
        from cuda.pathfinder import load_nvidia_dynamic_lib

        for lib, wheel in (("nvvm", "nvidia-nvvm"), ("nvrtc", "nvidia-cuda-nvrtc")):
            try:
                load_nvidia_dynamic_lib(lib)
            except Exception:
                missing.append(f"lib{lib} ({wheel})")
    except ImportError:
        missing.append("cuda-pathfinder (numba-cuda)")
    if find_tool("ptxas") is None:
        missing.append("ptxas (nvidia-cuda-nvcc)")
    if missing:
        return "CUDA compiler not found: " + ", ".join(missing) + ' (pip install ".[test]")'
    return None


_PTXAS_RE = {
    "registers": re.compile(r"Used (\d+) registers"),
    "shared_bytes": re.compile(r"(\d+) bytes smem"),
    "spill_stores": re.compile(r"(\d+) bytes spill stores"),
    "spill_loads": re.compile(r"(\d+) bytes spill loads"),
    "stack_bytes": re.compile(r"(\d+) bytes stack frame"),
}


def parse_ptxas(text: str) -> dict:
    """Resource usage from ``ptxas -v`` output (one entry function)."""
    out = {}
    for key, rx in _PTXAS_RE.items():
        m = rx.search(text)
        out[key] = int(m.group(1)) if m else 0
    out["spill_bytes"] = out["spill_stores"] + out["spill_loads"]
    return out


def assemble(ptx: str, cc=(9, 0)) -> tuple[bytes, dict]:
    """``ptxas -v -arch=sm_XY``: (cubin, resource usage and the verbose text under ``ptxas``)."""
    tool = find_tool("ptxas")
    if tool is None:
        raise RuntimeError(missing_compilers() or "ptxas not found")
    arch = "sm_%d%d" % tuple(cc)
    with tempfile.TemporaryDirectory(prefix="ch3d_ptxas_") as tmp:
        src, dst = os.path.join(tmp, "k.ptx"), os.path.join(tmp, "k.cubin")
        with open(src, "w") as f:
            f.write(ptx)
        r = subprocess.run([tool, "-v", f"-arch={arch}", src, "-o", dst], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"ptxas -arch={arch} failed: {r.stderr.strip()}")
        with open(dst, "rb") as f:
            cubin = f.read()
    info = parse_ptxas(r.stdout + r.stderr)
    info["ptxas"] = (r.stdout + r.stderr).strip()
    return cubin, info


def disassemble(cubin: bytes) -> str:
    """The SASS of a cubin (``nvdisasm -c``, from the ``nvidia-cuda-nvdisasm`` wheel)."""
    tool = find_tool("nvdisasm")
    if tool is None:
        raise RuntimeError("nvdisasm not found (pip install nvidia-cuda-nvdisasm)")
    with tempfile.TemporaryDirectory(prefix="ch3d_nvdisasm_") as tmp:
        path = os.path.join(tmp, "k.cubin")
        with open(path, "wb") as f:
            f.write(cubin)
        r = subprocess.run([tool, "-c", path], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"nvdisasm failed: {r.stderr.strip()}")
    return r.stdout


def occupancy(registers: int, shared_bytes: int, threads: int, cc=(9, 0)) -> dict:
    """Resident blocks per SM and occupancy (resident warps / 64) for a block of `threads` threads.

    Limits (:data:`SM_LIMITS`): registers per SM, allocated per warp in units of 256; shared memory per
    SM with 1 KiB reserved per block; 32 blocks and 2048 threads per SM.
    """
    lim = SM_LIMITS.get(tuple(cc), SM_LIMITS[(9, 0)])
    warps = -(-threads // WARP)
    regs_per_warp = -(-max(registers, 1) * WARP // REG_ALLOC_UNIT) * REG_ALLOC_UNIT
    by_regs = (lim["regs"] // regs_per_warp) // warps
    by_smem = lim["smem"] // (shared_bytes + SMEM_RESERVED_PER_BLOCK)
    by_threads = lim["threads"] // (warps * WARP)
    blocks = min(by_regs, by_smem, by_threads, lim["blocks"])
    limiter = min(
        (("registers", by_regs), ("shared memory", by_smem), ("threads", by_threads), ("blocks", lim["blocks"])),
        key=lambda kv: kv[1],
    )[0]
    return {
        "blocks_per_sm": blocks,
        "warps_per_sm": blocks * warps,
        "occupancy": blocks * warps / (lim["threads"] // WARP),
        "limited_by": limiter,
    }
