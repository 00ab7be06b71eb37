#!/usr/bin/env bash
# Device check of the GPU paths, for a session that is lent a GPU (at most ~9.5 minutes in all).
#
# Run it from the repository root through the device tool, e.g.
#     run(command="bash benchmarks/device_check.sh", timeout_s=600)
# or on any CUDA machine:  OUT=device_out bash benchmarks/device_check.sh
#
# Steps (each with its own time limit inside the overall deadline; a failing step does not stop the others):
#   1. env.txt          GPU (nvidia-smi), Python and package versions, onnxruntime's providers
#   2. pytest_cuda.txt  pytest -m cuda on the device (NUMBA_ENABLE_CUDASIM=0): the fused kernel vs cpu,
#                       batches, one launch per step, 500 steps in float64
#   3. solver_cuda.txt  benchmarks/solver.py --cuda-only: 64³ batched (B = 16) and 64³/128³/256³, float32 and
#                       float64, voxel updates/s and the fraction of the device's measured copy bandwidth; the
#                       paper data set's compute per frame (batch 1 and 16)
#   4. generate.txt     python -m ch_numba generate, end to end on cuda --batch 16: a 32-sequence shard (0/58) of
#                       the paper's 1850 × 50 × 64³ data set written to /tmp (timed; not brought back)
#   5. runtime_gpu.txt  where onnxruntime has the CUDA provider: the ORT CUDA tests (TF32 off) and
#                       benchmarks/runtime.py (ORT CUDA vs PyTorch CUDA at 32³/64³); else why not
#   summary.txt         exit status and seconds of each step
# Everything is written under $OUT (default ./device_out); copy the numbers into benchmarks/RESULTS.md.
set -u
OUT=${OUT:-device_out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export NUMBA_ENABLE_CUDASIM=0 CH3D_REAL_CUDA=1
DEADLINE=${DEADLINE:-570}  # seconds for the whole script
: >"$OUT/summary.txt"

step() {  # step NAME LIMIT_SECONDS COMMAND...: run with the smaller of LIMIT and the time left, log to $OUT/NAME
    local name=$1 limit=$2
    shift 2
    local left=$((DEADLINE - SECONDS))
    if ((left < 20)); then
        echo "$name: skipped (deadline)" | tee -a "$OUT/summary.txt"
        return
    fi
    ((limit > left)) && limit=$left
    local t0=$SECONDS
    echo "== $name (limit ${limit}s): $*" | tee "$OUT/$name"
    timeout -k 10 "$limit" "$@" >>"$OUT/$name" 2>&1
    local rc=$?
    echo "$name: exit $rc after $((SECONDS - t0)) s$( ((rc == 124)) && echo ' (timed out)')" | tee -a "$OUT/summary.txt"
}

step env.txt 60 bash -c "date -u; nvidia-smi; $PY - <<'EOF'
import platform, numpy, numba
print('python', platform.python_version(), 'numpy', numpy.__version__, 'numba', numba.__version__)
for name in ('numba_cuda', 'scipy', 'h5py', 'tqdm', 'torch', 'onnxruntime', 'onnx', 'onnxscript'):
    try:
        m = __import__(name)
        print(name, getattr(m, '__version__', '?'))
    except Exception as e:
        print(name, 'MISSING', type(e).__name__, e)
try:
    import onnxruntime
    print('onnxruntime providers:', onnxruntime.get_available_providers())
except Exception:
    pass
from ch_numba.kernels_cuda import gpu_available, is_simulator
print('numba-cuda sees a GPU:', gpu_available(), '(simulator: %s)' % is_simulator())
EOF"

step pytest_cuda.txt 180 "$PY" -m pytest -m cuda tests/test_cuda.py -q -p no:cacheprovider --durations=5

step solver_cuda.txt 180 "$PY" -m benchmarks.solver --cuda-only --sizes 64 128 256 --cuda-batch 16 \
    --cuda-batch-size 64 --repeats 3

step generate.txt 120 bash -c "rm -rf /tmp/ch3d_dc && mkdir -p /tmp/ch3d_dc && time $PY -m ch_numba \
    generate /tmp/ch3d_dc/paper.h5 --sequences 1850 --frames 50 --steps-per-frame 400 --size 64 --seed 1 \
    --backend cuda --batch 16 --shard 0/58 && ls /tmp/ch3d_dc/paper.h5.parts | wc -l && du -sh /tmp/ch3d_dc"

if "$PY" -c "import onnxruntime as o, sys; sys.exit('CUDAExecutionProvider' not in o.get_available_providers())" \
    2>/dev/null; then
    step runtime_gpu.txt 100 bash -c "$PY -m pytest -m 'gpu or not gpu' tests/test_runtime.py -q -p no:cacheprovider \
        -k 'cuda or provider or verify'; $PY -m benchmarks.runtime --quick --sizes 32 64 --batches 1 4"
else
    echo "runtime_gpu.txt: skipped: this onnxruntime has no CUDA provider (onnxruntime-gpu can be carried as wheels)" \
        | tee -a "$OUT/summary.txt" >"$OUT/runtime_gpu.txt"
fi
echo "total: $SECONDS s" | tee -a "$OUT/summary.txt"
