#!/usr/bin/env bash
# Prepare the wheel folder that benchmarks/device_check.sh --wheels DIR installs on an offline CUDA machine.
#
#     bash benchmarks/device_wheels.sh [DIR] [--python 3.12] [--platform manylinux_2_28_x86_64] [--no-ort]
#
# What the image lacks, by comparing pyproject.toml's [project] dependencies with the image of issue 24
# (numpy 2.5, torch + CUDA 13 with its nvidia-* CUDA and cuDNN wheels, CuPy, numba + numba-cuda,
# onnxruntime CPU, scipy): perlin-noise; and the small pure-Python or common ones an image may also lack
# (tqdm, trimesh, h5py), all without dependencies; onnxruntime-gpu for the ORT step (~255 MB, no
# dependencies: it uses torch's CUDA 13 libraries; --no-ort leaves it out). The device check installs
# only what does not import there. DIR (default device_wheels) should be an untracked folder of the
# working tree, which the device tool copies with it: never commit it. The wheels are for the image's
# Python (--python, default 3.12) and platform.
set -euo pipefail
DIR=device_wheels
PYV=3.12
PLATFORM=manylinux_2_28_x86_64
ORT=1
while (($#)); do
    case $1 in
    --python) PYV=$2; shift 2 ;;
    --platform) PLATFORM=$2; shift 2 ;;
    --no-ort) ORT=0; shift ;;
    -*) echo "device_wheels.sh: unknown option $1" >&2; exit 2 ;;
    *) DIR=$1; shift ;;
    esac
done
mkdir -p "$DIR"
PIP=(${PYTHON:-python3} -m pip download -q -d "$DIR" --no-deps --only-binary=:all: --python-version "$PYV"
    --implementation cp --platform "$PLATFORM" --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64
    --platform any)
"${PIP[@]}" "perlin-noise>=1.12" "tqdm>=4.60" "trimesh>=4.0" "h5py>=3.8"
((ORT)) && "${PIP[@]}" "onnxruntime-gpu>=1.27"
ls -la "$DIR"
du -sh "$DIR"
