"""Real compilation of every CUDA kernel without a GPU (issue 24 items 1 and 2).

The suite runs CUDA in Numba's simulator (conftest sets NUMBA_ENABLE_CUDASIM), which compiles nothing.
Here a child process without that variable compiles each kernel of ``kernels_cuda.KERNELS`` for sm_80
and sm_90, float32 and float64, through numba-cuda's ``compile_ptx`` (NVVM) and ``ptxas -v`` from the
compiler wheels of the ``test`` extra, once per module (~20 s), and the tests read its report.
"""

import json
import os
import sys

import numpy as np
import pytest
from conftest import ROOT, run_python

pytest.importorskip("numba_cuda", reason="numba-cuda not installed")
sys.path.insert(0, str(ROOT / "benchmarks"))
import sass_count  # noqa: E402

from ch_numba import gpu_compile  # noqa: E402

CCS = [(8, 0), (9, 0)]
DTYPES = ["float32", "float64"]

CHILD = """
import json, sys
from ch_numba import gpu_compile
reason = gpu_compile.missing_compilers()
if reason:
    print(json.dumps({"skip": reason}))
    sys.exit(0)
import numpy as np
from ch_numba import kernels_cuda
sys.path.insert(0, "benchmarks")
import sass_count
out = {"numpy": np.__version__, "reports": []}
for name in kernels_cuda.KERNELS:
    for dtype in ("float32", "float64"):
        for cc in ((8, 0), (9, 0)):
            r = kernels_cuda.compile_report(dtype, cc=cc, kernel=name)
            item = {k: r[k] for k in ("registers", "shared_bytes", "spill_bytes", "block", "occupancy", "limited_by")}
            item.update(kernel=name, dtype=dtype, cc=list(cc), entry=".entry" in r["ptx"],
                        target=("sm_%d%d" % cc) in r["ptx"])
            if name.startswith("step") and dtype == "float32" and cc == (9, 0) and gpu_compile.find_tool("nvdisasm"):
                item["sass"] = sass_count.count(gpu_compile.disassemble(r["cubin"]))
            out["reports"].append(item)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def compiled():
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    r = run_python(CHILD, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    if "skip" in result:
        pytest.skip(result["skip"])
    return result


def _reports(compiled, **match):
    return [r for r in compiled["reports"] if all(r[k] == v for k, v in match.items())]


@pytest.mark.parametrize("cc", CCS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_kernel_compiles_within_64_registers_without_spills(compiled, dtype, cc):
    from ch_numba import kernels_cuda

    reports = _reports(compiled, dtype=dtype, cc=list(cc))
    assert sorted(r["kernel"] for r in reports) == sorted(kernels_cuda.KERNELS)
    for r in reports:
        assert r["entry"] and r["target"], r
        assert 0 < r["registers"] <= 64, r
        assert r["spill_bytes"] == 0, r
        if r["kernel"].startswith("step"):
            assert r["block"] == [*kernels_cuda.TILE, 1]


def test_walls_variants_are_registered():
    """The step with no-flux walls (issue 27) is compiled here too: walls on every axis, and on z only; each
    entry's kernel loads with the mirror functions along its wall axes and the periodic ones elsewhere."""
    import inspect

    from ch_numba import kernels_cuda as kc

    expected = {"step": (False,) * 3, "step_walls_xyz": (True,) * 3, "step_walls_z": (False, False, True)}
    assert set(expected) <= set(kc.KERNELS)
    for name, walls in expected.items():
        func, *_ = kc.KERNELS[name](np.float32, kc.TILE)
        ghosts = inspect.getclosurevars(func).nonlocals
        for axis, wall in zip("xyz", walls):
            assert ghosts[f"ghost_{axis}"] is (kc._mirror_jit if wall else kc._periodic_jit), (name, axis)
        assert ghosts["ghost_up"] is (kc._mirror_up_jit if walls[0] else kc._periodic_up_jit), name


def test_step_occupancy_from_its_registers_and_shared_memory(compiled):
    """At the launch block the step (periodic or with walls) keeps ≥ 6 of 8 possible blocks resident on an
    H100 SM (≥ 75 %), and the figure is the occupancy function applied to what ptxas reported."""
    for r in [r for r in compiled["reports"] if r["kernel"].startswith("step") and r["cc"] == [9, 0]]:
        threads = int(np.prod(r["block"]))
        want = gpu_compile.occupancy(r["registers"], r["shared_bytes"], threads, (9, 0))["occupancy"]
        assert r["occupancy"] == want >= 0.75, r
        # static shared memory: 4 φ planes (TY+4)(TZ+4) and 4 μ planes (TY+2)(TZ+2) of the state dtype
        item = np.dtype(r["dtype"]).itemsize
        assert r["shared_bytes"] == 4 * (12 * 36 + 10 * 34) * item


def test_step_sass_instructions_per_voxel(compiled):
    """benchmarks/sass_count.py's count (sm_90, float32, 32 × 8 tile): ≤ 120 per voxel update (it was
    564 before issue 24), no inner loop left in the x-march."""
    for r in [r for r in compiled["reports"] if r["kernel"].startswith("step") and r["dtype"] == "float32"]:
        if r["cc"] != [9, 0]:
            continue
        if "sass" not in r:
            pytest.skip("nvdisasm not found (pip install nvidia-cuda-nvdisasm)")
        assert r["sass"]["per_voxel"] <= 120, r
        assert r["sass"]["load_loop"] == [] and r["sass"]["mu_loop"] == [], r


def test_occupancy_formula():
    """H100 limits: 65536 registers (per warp in units of 256), 228 KiB shared + 1 KiB per block, 32 blocks,
    2048 threads per SM. The kernel before issue 24: 76 registers, 12720 B at 256 threads → 3 blocks."""
    occ = gpu_compile.occupancy
    assert occ(76, 12720, 256) == {
        "blocks_per_sm": 3,
        "warps_per_sm": 24,
        "occupancy": 0.375,
        "limited_by": "registers",
    }
    assert occ(32, 12352, 256)["blocks_per_sm"] == 8 and occ(32, 12352, 256)["occupancy"] == 1.0
    assert occ(64, 0, 256)["blocks_per_sm"] == 4
    big = occ(16, 100 * 1024, 128)  # 2 × 101 KiB fit in 228 KiB, 3 do not
    assert big["blocks_per_sm"] == 2 and big["limited_by"] == "shared memory"
    assert occ(32, 100 * 1024, 128, cc=(8, 0))["blocks_per_sm"] == 1  # A100: 164 KiB
    assert occ(8, 0, 32)["blocks_per_sm"] == 32 and occ(8, 0, 32)["limited_by"] == "blocks"


def test_parse_ptxas():
    text = (
        "ptxas info    : Compiling entry function 'k' for 'sm_90'\n"
        "ptxas info    : Function properties for k\n"
        "    8 bytes stack frame, 12 bytes spill stores, 16 bytes spill loads\n"
        "ptxas info    : Used 76 registers, used 1 barriers, 12720 bytes smem\n"
    )
    got = gpu_compile.parse_ptxas(text)
    assert (got["registers"], got["shared_bytes"], got["spill_bytes"], got["stack_bytes"]) == (76, 12720, 28, 8)


def test_numpy_row_stack_shim(monkeypatch):
    """numpy ≥ 2.5 has no row_stack, which numba-cuda 0.30 types unguarded (NVIDIA/numba-cuda#907): the shim
    restores the alias only where it is missing."""
    if hasattr(np, "row_stack"):
        monkeypatch.delattr(np, "row_stack")
    assert gpu_compile.apply_numpy_shim() is True
    assert np.row_stack is np.vstack
    assert gpu_compile.apply_numpy_shim() is False


SASS = """
        /*0000*/                   S2R R0, SR_TID.X ;
.L_x_0:
        /*0010*/                   LDG.E R2, desc[UR4][R2.64] ;
        /*0020*/                   STS [R1], R2 ;
        /*0030*/              @P0 BRA `(.L_x_0) ;
        /*0040*/                   BAR.SYNC.DEFER_BLOCKING 0x0 ;
.L_x_1:
        /*0050*/                   LDS R4, [R1] ;
        /*0060*/                   STS [R5], R4 ;
        /*0070*/                   LDS R4, [R1+0x4] ;
        /*0080*/                   STS [R5+0x4], R4 ;
        /*0090*/              @P1 BRA `(.L_x_1) ;
        /*00a0*/                   STG.E desc[UR4][R6.64], R4 ;
        /*00b0*/              @P2 BRA `(.L_x_x) ;
"""


def test_sass_count_on_a_listing():
    """The count's rules on a hand-made listing: an x-march loop (BAR, STG) holding a φ-load loop (LDG, 1 STS:
    3 instructions per iteration) and a μ loop unrolled twice (5 instructions, 2 STS: 2.5 per iteration)."""
    listing = SASS.replace("`(.L_x_x)", "`(.L_x_0)")  # the march closes on the first label
    got = sass_count.count(listing, tile=(32, 8))
    t_load, t_mu = 432 / 256, 340 / 256
    rest = 11 - 3 - 5  # the march (its first label to its branch) minus the two inner loops
    assert got["march_instructions"] == 11 and got["rest_per_trip"] == rest
    assert got["per_voxel"] == pytest.approx(3 * t_load + 2.5 * t_mu + rest)
    with pytest.raises(ValueError, match="x-march"):
        sass_count.count(SASS.replace("STG.E", "STS"))
