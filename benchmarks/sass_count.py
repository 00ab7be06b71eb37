"""SASS instructions per voxel update of the fused CUDA step (issue 24, item 2): the count, defined once.

    python benchmarks/sass_count.py [--kernel step] [--dtype float32] [--cc 9.0] [--sass FILE] [--json]

No GPU needed: the kernel is compiled by ``ch_numba.kernels_cuda.compile_report`` (NVVM + ptxas from
the compiler wheels of the ``test`` extra) and disassembled with ``nvdisasm`` (wheel
``nvidia-cuda-nvdisasm``). ``--sass FILE`` counts an existing ``nvdisasm -c`` listing instead (how the
figure before the rewrite was taken). ``--kernel`` names an entry of ``kernels_cuda.KERNELS`` (``step``,
the periodic step; ``step_walls_xyz``, ``step_walls_z``: with no-flux walls, issue 27).

The count (sm_90, float32, the launch tile TZ × TY = 32 × 8 unless told otherwise). Every thread of a
block marches along x and produces one voxel per plane; per output plane it runs the φ-load loop
(TY+4)(TZ+4)/(TY·TZ) ≈ 1.69 times, the μ loop (TY+2)(TZ+2)/(TY·TZ) ≈ 1.33 times, the update once. In
the SASS listing:

- the x-march loop is the loop (a backward branch and the code between its target and it) that holds
  the ``BAR.SYNC`` barriers and the global store ``STG`` of the update; ``STG`` counts the output
  planes one trip produces (a compiler unrolling the march would put more than one there);
- each loop nested in it is a φ-load loop when it holds a global load ``LDG``, else a μ loop; one trip
  of it covers as many source iterations as it holds shared stores ``STS`` (an unrolled loop);
  its cost per source iteration is its instructions / that number, and where the compiler made
  several versions of one loop (an unrolled one and a remainder one) the dearest version counts;
- everything else in the x-march loop (the rest) is the per-plane overhead, the update and any φ or μ
  element written outside the loops (a peeled first iteration, or the straight-line elements of a
  fully unrolled loop), counted once per trip, every branch side included (an upper bound: a guarded
  element that only some threads run, such as the second φ element of 176 of 256 threads, counts
  fully). The loops then run what is left of their times per plane: times − elements outside (each
  φ element outside a loop holds one ``LDG``, each μ element one ``STS`` without an ``LDG``).

    per voxel = (Σ_loops cost × (times per plane − elements outside) + rest) / STG per trip

Instructions are the SASS lines with an address (``/*0a50*/``), NOP included.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

_INSN = re.compile(r"^\s*/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;?\s*$")
_LABEL = re.compile(r"^(\.L_x_\d+):")
_BRANCH = re.compile(r"\bBRA(?:\.\S+)?\s+`\((\.L_x_\d+)\)")


def parse(sass: str) -> tuple[list[str], dict[str, int]]:
    """(instructions in order, label → index of the instruction that follows it)."""
    insns, labels = [], {}
    for line in sass.splitlines():
        m = _LABEL.match(line.strip())
        if m:
            labels[m.group(1)] = len(insns)
            continue
        m = _INSN.match(line)
        if m:
            insns.append(m.group(2))
    return insns, labels


def loops(insns: list[str], labels: dict[str, int]) -> list[tuple[int, int]]:
    """Backward branches as (first, last) instruction indices of the loop they close."""
    out = []
    for i, text in enumerate(insns):
        m = _BRANCH.search(text)
        if m and labels.get(m.group(1), i + 1) <= i:
            out.append((labels[m.group(1)], i))
    return out


def _has(insns, lo, hi, opcode: str) -> int:
    rx = re.compile(r"(^|\s)" + opcode + r"(\.|\s|$)")
    return sum(1 for t in insns[lo : hi + 1] if rx.search(t.split(";")[0]))


def count(sass: str, tile=(32, 8)) -> dict:
    """The per-voxel count of a kernel listing (module docstring); a dict with the breakdown."""
    tz, ty = tile
    times = {"load": (ty + 4) * (tz + 4) / (ty * tz), "mu": (ty + 2) * (tz + 2) / (ty * tz)}
    insns, labels = parse(sass)
    all_loops = loops(insns, labels)
    march = [lp for lp in all_loops if _has(insns, *lp, "BAR") and _has(insns, *lp, "STG")]
    if not march:
        raise ValueError("no x-march loop (a loop with BAR.SYNC and STG) in this listing")
    lo, hi = max(march, key=lambda lp: lp[1] - lp[0])  # the outermost one
    inner = [lp for lp in all_loops if lo <= lp[0] and lp[1] <= hi and lp != (lo, hi)]
    # only the outermost inner loops (a loop inside an inner loop is part of it)
    inner = [a for a in inner if not any(b != a and b[0] <= a[0] and a[1] <= b[1] for b in inner)]
    cost = {"load": 0.0, "mu": 0.0}
    versions = {"load": [], "mu": []}
    in_loops = 0
    for a, b in inner:
        kind = "load" if _has(insns, a, b, "LDG") else "mu"
        n = b - a + 1
        per = n / max(1, _has(insns, a, b, "STS"))
        versions[kind].append({"instructions": n, "per_iteration": per})
        cost[kind] = max(cost[kind], per)
        in_loops += n
    planes = max(1, _has(insns, lo, hi, "STG"))
    rest = (hi - lo + 1) - in_loops
    # elements written outside the inner loops (a peeled first iteration, or straight-line code): each
    # φ element has one LDG, the others STS are μ elements; they are in `rest`, the loops run the remainder
    n_ldg = _has(insns, lo, hi, "LDG") - sum(_has(insns, a, b, "LDG") for a, b in inner)
    n_sts = _has(insns, lo, hi, "STS") - sum(_has(insns, a, b, "STS") for a, b in inner)
    straight = {"load": n_ldg / planes, "mu": (n_sts - n_ldg) / planes}
    in_loop = {k: max(0.0, times[k] - straight[k]) if versions[k] else 0.0 for k in times}
    total = (cost["load"] * in_loop["load"] * planes + cost["mu"] * in_loop["mu"] * planes + rest) / planes
    return {
        "per_voxel": total,
        "kernel_instructions": len(insns),
        "march_instructions": hi - lo + 1,
        "load_loop": versions["load"],
        "mu_loop": versions["mu"],
        "times_per_plane": times,
        "rest_per_trip": rest,
        "elements_outside_loops_per_plane": straight,
        "loop_iterations_per_plane": in_loop,
        "planes_per_trip": planes,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernel", default="step", help="an entry of ch_numba.kernels_cuda.KERNELS")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--cc", default="9.0", help="compute capability, e.g. 9.0 (H100) or 8.0 (A100)")
    ap.add_argument("--tile", default="32,8", help="TZ,TY of the block (the launch tile by default)")
    ap.add_argument("--sass", type=Path, help="count this nvdisasm -c listing instead of compiling")
    ap.add_argument("--json", action="store_true", help="print the breakdown as JSON")
    args = ap.parse_args(argv)
    tile = tuple(int(v) for v in args.tile.split(","))
    report = {}
    if args.sass:
        sass = args.sass.read_text()
    else:
        from ch_numba import gpu_compile
        from ch_numba.kernels_cuda import compile_report

        cc = tuple(int(v) for v in args.cc.split("."))
        report = compile_report(args.dtype, cc=cc, kernel=args.kernel, tile=tile)
        sass = gpu_compile.disassemble(report["cubin"])
    result = count(sass, tile)
    if report:
        result.update(
            {k: report[k] for k in ("registers", "shared_bytes", "spill_bytes", "occupancy", "blocks_per_sm")}
        )
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"SASS instructions per voxel update: {result['per_voxel']:.1f}")
        for k, v in result.items():
            if k != "per_voxel":
                print(f"  {k}: {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
