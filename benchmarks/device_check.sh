#!/usr/bin/env bash
# Device check of the GPU paths on an offline CUDA machine: two commands, each well inside a 15-minute GPU slot.
#
#   bash benchmarks/device_check.sh [--wheels DIR] [--out DIR]          the solver part, ≤ 300 s (DEADLINE)
#   bash benchmarks/device_check.sh --ort [--wheels DIR] [--out DIR]    the onnxruntime-CUDA part, ≤ 200 s
#
# Through the device tool: run(command="bash benchmarks/device_check.sh --wheels device_wheels", timeout_s=360),
# then the same with --ort. The machine has no network: what its image lacks comes as wheels in DIR, made
# here beforehand by `bash benchmarks/device_wheels.sh device_wheels` (an untracked folder: the device tool
# copies it with the working tree; never commit it). The image this was written for (issue 24): numpy 2.5,
# torch + CUDA 13 (its nvidia-* CUDA and cuDNN wheels), CuPy, numba-cuda, onnxruntime (CPU); no
# perlin-noise, no onnxruntime-gpu. Setup installs, from DIR and without network, each dependency of
# pyproject.toml's [project] list that does not import (perlin-noise at least); --ort replaces
# onnxruntime by DIR's onnxruntime-gpu (no dependencies: its CUDA and cuDNN libraries are torch's).
#
# Solver part, steps (each with its own limit inside the deadline; after the smoke test a failing step
# does not stop the others):
#   setup.txt       versions, nvidia-smi, what was installed from DIR
#   smoke.txt       a trivial kernel compiled and launched, then the fused step (float32, 16³) against the CPU;
#                   on failure the script stops here with one line: "device check stopped: ..."
#   pytest_cuda.txt pytest -m cuda on the device (NUMBA_ENABLE_CUDASIM=0): the fused step vs the CPU kernel,
#                   the spectral scheme on CuPy vs the CPU one (float64, 100 steps, ≤ 1e-10)
#   solver_cuda.txt benchmarks/solver.py --cuda-only: B = 16 at 64³; 64³, 128³, 256³; float32/float64; the
#                   fraction of the measured copy bandwidth; per frame of the paper's data set, the device time
#                   (400 steps) and the whole frame (+ copy back, blow-up check, free energy on the host)
#   generate.txt    python -m ch_numba generate end to end on cuda, --batch 16, 16 sequences × 20 frames × 400
#                   steps of 64³ (wall time per frame, start-up included; the file is not brought back)
#   spectral.txt    the spectral scheme on cuda (CuPy): B = 16 at 64³, SBDF2 dt = 1.5, 160 time units, float32
#                   and float64, voxel·time units per second against the CPU explicit kernel
# --ort part:
#   ort_setup.txt   onnxruntime-gpu from DIR in place of onnxruntime; providers; preload_dlls
#   ort_cuda.txt    the shipped model models/crnn.onnx: one step and 10 steps on CUDA vs CPU (max |Δ|; goal
#                   ≤ 1e-5 with TF32 off), ms per step at 32³ and 64³, batch 1 and 4; the runtime's CUDA tests
# summary.txt: exit status and seconds of each step. Everything is written under $OUT (default device_out).
set -u
OUT=device_out
WHEELS=""
PART=solver
while (($#)); do
    case $1 in
    --wheels) WHEELS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --ort) PART=ort; shift ;;
    -h | --help) sed -n '2,/^set -u/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
    *) echo "device_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export NUMBA_ENABLE_CUDASIM=0 CH3D_REAL_CUDA=1
if [[ $PART == ort ]]; then DEADLINE=${DEADLINE:-200}; else DEADLINE=${DEADLINE:-290}; fi
SUMMARY="$OUT/summary.txt"
[[ $PART == ort ]] && SUMMARY="$OUT/summary_ort.txt"
: >"$SUMMARY"

step() { # step NAME LIMIT_SECONDS COMMAND...: run with the smaller of LIMIT and the time left, log to $OUT/NAME
    local name=$1 limit=$2
    shift 2
    local left=$((DEADLINE - SECONDS))
    if ((left < 10)); then
        echo "$name: skipped (deadline)" | tee -a "$SUMMARY"
        return 124
    fi
    ((limit > left)) && limit=$left
    local t0=$SECONDS
    echo "== $name (limit ${limit}s): $*" | tee "$OUT/$name"
    timeout -k 5 "$limit" "$@" >>"$OUT/$name" 2>&1
    local rc=$?
    echo "$name: exit $rc after $((SECONDS - t0)) s$( ((rc == 124)) && echo ' (timed out)')" | tee -a "$SUMMARY"
    return $rc
}

setup() { # versions, the GPU, and pyproject's dependencies that do not import, installed from $WHEELS
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
    "$PY" - "$WHEELS" <<'EOF'
import importlib.metadata as md, platform, re, subprocess, sys, tomllib
wheels = sys.argv[1]
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
missing = []
for req in deps:
    name = re.match(r"[A-Za-z0-9_.-]+", req).group(0)
    try:
        md.version(name)
    except md.PackageNotFoundError:
        missing.append(req)
print("python", platform.python_version(), "- dependencies missing here:", ", ".join(missing) or "none")
for req in missing if wheels else []:  # one at a time: what DIR lacks does not block the others
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--find-links", wheels, req],
                       capture_output=True, text=True)
    print(f"  {req}: " + ("installed from " + wheels if r.returncode == 0 else "NOT in " + wheels))
for name in ("numpy", "numba", "numba_cuda", "perlin_noise", "scipy", "h5py", "torch", "cupy", "onnxruntime"):
    try:
        m = __import__(name)
        print(" ", name, getattr(m, "__version__", "?"))
    except Exception as e:
        print(" ", name, "MISSING", type(e).__name__, e)
EOF
}

if [[ $PART == solver ]]; then
    t0=$SECONDS
    setup >"$OUT/setup.txt" 2>&1
    echo "setup.txt: after $((SECONDS - t0)) s" | tee -a "$SUMMARY"
    step smoke.txt 60 "$PY" - <<'EOF'
import sys, time
t0 = time.time()
def stop(why):
    print(f"device check stopped: {why}")
    sys.exit(3)
try:
    import numpy as np
    from ch_numba import kernels_cuda
    from numba import cuda
except Exception as e:
    stop(f"numba-cuda does not import ({type(e).__name__}: {e})")
if not kernels_cuda.gpu_available():
    stop("numba-cuda sees no GPU (driver or CUDA libraries missing)")
try:
    @cuda.jit("void(float32[::1])")
    def add_one(a):
        i = cuda.grid(1)
        if i < a.shape[0]:
            a[i] += 1
    d = cuda.to_device(np.arange(256, dtype=np.float32))
    add_one[1, 256](d)
    got = d.copy_to_host()
    assert np.array_equal(got, np.arange(256, dtype=np.float32) + 1), "wrong result"
except Exception as e:
    stop(f"a trivial kernel does not compile or run ({type(e).__name__}: {str(e).splitlines()[0][:200]})")
dev = cuda.get_current_device()
print("trivial kernel OK on", getattr(dev, "name", "?"), "cc", getattr(dev, "compute_capability", "?"), f"({time.time() - t0:.1f} s)")
try:
    import ch_numba
    from ch_numba.params import CHParams
    phi = (0.5 + 0.1 * np.random.default_rng(0).uniform(-1, 1, (16, 16, 16))).astype(np.float32)
    got = ch_numba.evolve(phi, 20, CHParams(), backend="cuda")
    ref = ch_numba.evolve(phi, 20, CHParams(), backend="cpu")
    err = float(np.abs(got - ref).max())
except Exception as e:
    stop(f"the fused step does not compile or run ({type(e).__name__}: {str(e).splitlines()[0][:200]})")
print(f"fused step float32 16³, 20 steps: max |cuda − cpu| = {err:.2e} ({time.time() - t0:.1f} s)")
if not err < 1e-5:
    stop(f"the fused step differs from the CPU kernel by {err:.2e}")
EOF
    rc=$?
    if ((rc != 0)); then
        tail -1 "$OUT/smoke.txt"
        echo "total: $SECONDS s" | tee -a "$SUMMARY"
        exit 1
    fi
    step pytest_cuda.txt 90 "$PY" -m pytest -m cuda tests/test_cuda.py tests/test_spectral_xp.py -q \
        -p no:cacheprovider --durations=3
    step solver_cuda.txt 80 "$PY" -m benchmarks.solver --cuda-only --sizes 64 128 256 --cuda-batch 16 \
        --cuda-batch-size 64 --repeats 2
    step generate.txt 50 bash -c "rm -rf /tmp/ch3d_dc && mkdir -p /tmp/ch3d_dc && s=\$(date +%s.%N) && $PY -m ch_numba \
        generate /tmp/ch3d_dc/g.h5 --sequences 16 --frames 20 --steps-per-frame 400 --size 64 --seed 1 \
        --backend cuda --batch 16 && e=\$(date +%s.%N) && $PY -c \"import sys; w = float(sys.argv[2]) - \
        float(sys.argv[1]); print(f'generate: {w:.1f} s wall for 16 sequences x 20 frames = {w / 20 * 1e3:.0f} ms \
        per batch frame ({w / 320 * 1e3:.1f} ms per sequence-frame), start-up and writing included')\" \$s \$e \
        && du -sh /tmp/ch3d_dc"
    step spectral.txt 40 "$PY" - <<'EOF'
import time
import numpy as np
from ch_numba.params import CHParams
from ch_numba.spectral_xp import BatchSpectralIntegrator
import cupy
# issue 24's goal: 64³, B = 16, SBDF2 at a dt with ≤ 0.2 % F error over 160 time units (dt = 1.5: between
# 0.054 % at dt = 1 and 0.21 % at dt = 2, benchmarks/RESULTS.md), against the CPU explicit kernel at 0.7× its
# bound on 2 threads: 3.78 G voxel updates/s × dt 1.06e-3 = 4.0e6 voxel·time units/s (RESULTS.md, 64³ f32)
cpu_rate = 3.78e9 * 1.06e-3
for dtype in (np.float32, np.float64):
    p = CHParams(scheme="spectral", dt=1.5, order=2)
    st = BatchSpectralIntegrator((16, 64, 64, 64), p, dtype, "cupy")
    st.set((0.5 + 0.1 * np.random.default_rng(0).uniform(-1, 1, (16, 64, 64, 64))).astype(dtype))
    st.advance(2)
    cupy.cuda.Device().synchronize()
    steps = int(round(160 / p.dt))
    t0 = time.perf_counter()
    st.advance(steps)
    cupy.cuda.Device().synchronize()
    wall = time.perf_counter() - t0
    rate = 16 * 64**3 * steps * p.dt / wall
    f = st.free_energy()
    print(f"spectral on cuda {np.dtype(dtype).name}, B = 16 at 64³, SBDF2 dt = 1.5, 160 time units: {wall:.2f} s, "
          f"{rate:.3g} voxel·time units/s = {rate / cpu_rate:.0f}× the CPU explicit kernel (goal ≥ 1000×); "
          f"F in [{f.min():.5f}, {f.max():.5f}]")
EOF
else
    step ort_setup.txt 100 bash -c "if ls '$WHEELS'/onnxruntime_gpu-*.whl >/dev/null 2>&1; then \
        $PY -m pip uninstall -y -q onnxruntime onnxruntime-gpu; \
        $PY -m pip install -q --no-index --no-deps '$WHEELS'/onnxruntime_gpu-*.whl; \
        else echo 'no onnxruntime_gpu wheel in --wheels DIR: using the onnxruntime already installed'; fi; \
        $PY -c \"import onnxruntime as o; print('onnxruntime', o.__version__, 'CUDA', getattr(o, 'cuda_version', ''), \
        o.get_available_providers())\""
    step ort_cuda.txt 90 "$PY" - <<'EOF'
import sys, time
try:
    import torch  # same CUDA major as onnxruntime-gpu here: its CUDA and cuDNN libraries serve both
    print("torch", torch.__version__, "CUDA", torch.version.cuda)
except ImportError:
    pass
import numpy as np
import onnxruntime as ort
from export.runtime import Rollout
from export.runtime.providers import prepare_cuda
print("preload:", prepare_cuda())
model = "models/crnn.onnx"
try:
    gpu = Rollout(model, providers="cuda")
except Exception as e:
    print(f"ORT CUDA does not start: {e}")
    sys.exit(3)
cpu = Rollout(model, providers="cpu")
print("providers:", gpu.providers)
rng = np.random.default_rng(0)
for n in (32, 64):
    for b in (1, 4):
        x = (0.5 + 0.1 * rng.uniform(-1, 1, (b, 1, n, n, n))).astype(np.float32)
        gpu.reset()
        cpu.reset()
        one = float(np.abs(gpu.step(x) - cpu.step(x)).max())
        a, c = list(gpu.rollout(x, 10, 10))[-1], list(cpu.rollout(x, 10, 10))[-1]
        many = float(np.abs(a - c).max())
        times = {}
        for name, r in (("cuda", gpu), ("cpu", cpu)):
            r.step(x)
            t0, k = time.perf_counter(), 0
            while time.perf_counter() - t0 < 1.0:
                r.step(x)
                k += 1
            times[name] = (time.perf_counter() - t0) / k * 1e3
        print(f"{n}³ batch {b}: max |cuda − cpu| 1 step {one:.2e}, 10 steps {many:.2e}; ms per step: cuda "
              f"{times['cuda']:.2f}, cpu {times['cpu']:.2f} ({times['cpu'] / times['cuda']:.1f}×)")
EOF
    step ort_tests.txt 80 "$PY" -m pytest -m "gpu or not gpu" tests/test_runtime.py -q -p no:cacheprovider \
        -k "cuda or provider"
fi
echo "total: $SECONDS s" | tee -a "$SUMMARY"
