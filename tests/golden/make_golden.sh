#!/usr/bin/env bash
# Writes the reference outputs of tests/test_outputs_unchanged.py: small data sets, a rollout and an
# exported model, made by the code *before* the restructuring of issue 23 (commit 7ea620c). Rerun only
# on purpose (a deliberate change of a file format), from the repository root:
#   bash tests/golden/make_golden.sh [PYTHON [OUTDIR]]
# The test runs it with OUTDIR a temporary folder and compares what it writes with the files here.
set -euo pipefail
PY=${1:-python}
case $PY in */*) PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")" ;; esac  # absolute: one step runs in OUTDIR
G=${2:-tests/golden}
mkdir -p "$G"
rm -f "$G"/*.h5 "$G"/*.onnx
PHYS="--epsilon 1.5 --dt 4e-3 --steps-per-frame 20"
# shellcheck disable=SC2086
$PY -m ch_numba generate $G/generate.h5 --sequences 3 --frames 4 --size 8 $PHYS --seed 5 --burn-in-frames 2 \
    --backend cpu --threads 1
$PY -m ch_numba generate $G/generate_f16.h5 --sequences 2 --frames 3 --size 8 $PHYS --seed 9 --storage float16 \
    --backend cpu --threads 1 --scheme spectral --dt 0.05
$PY -m ch_numba simulate $G/simulate.h5 --ic sphere --size 8 --frames 3 $PHYS --backend cpu --threads 1
(cd "$G" && $PY -m ch_numba simulate simulate_h5ic.h5 --ic h5 --ic-file generate.h5 --ic-sequence 1 --ic-frame 2 \
    --frames 2 $PHYS --backend numpy --dtype float64)  # in OUTDIR: the IC's path is stored
$PY -m export.rollout models/crnn.onnx --ic perlin --size 16 --steps 6 --every 2 --seed 3 --threads 1 \
    --out $G/rollout.h5
$PY -m export.rollout models/crnn.onnx --ic perlin --size 16 --steps 4 --every 2 --seed 3 --threads 1 \
    --full-resolution --out $G/rollout_full.h5
$PY -m export models/crnn.pt $G/crnn_export.onnx
rm -rf "$G"/*.parts
