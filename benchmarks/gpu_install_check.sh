#!/usr/bin/env bash
# Does `pip install ".[gpu]"` bring every library onnxruntime-gpu's CUDA provider needs? (issue 24, item 5)
#
# Run by hand from the repository root (no GPU needed; downloads ~2-3 GB of wheels):
#     bash benchmarks/gpu_install_check.sh [VENV_DIR]     (default: a fresh folder under /tmp, removed after)
#
# 1. a fresh venv, `pip install ".[gpu]"` (onnxruntime-gpu[cuda,cudnn], numba-cuda[cu13], onnx, onnxscript);
# 2. in Python: import onnxruntime, onnxruntime.preload_dlls() (what Rollout does before a CUDA session);
# 3. the CUDA provider library (onnxruntime/capi/libonnxruntime_providers_cuda.so): its NEEDED entries
#    (readelf -d), then `ldd` with the folders of every library the process has loaded after the preload:
#    each dependency must resolve except the driver's libcuda.so.1, which only a GPU machine has.
# Prints one line per NEEDED library and a verdict; exit 0 when only libcuda.so.1 (or nothing) is missing.
set -euo pipefail
PYTHON=${PYTHON:-python3}
if [[ $# -ge 1 ]]; then
    VENV=$1
    KEEP=1
else
    VENV=$(mktemp -d /tmp/ch3d_gpu_venv.XXXXXX)
    KEEP=0
fi
cleanup() { ((KEEP)) || rm -rf "$VENV"; }
trap cleanup EXIT
t0=$SECONDS
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q ".[gpu]"
echo "install: $((SECONDS - t0)) s, $(du -sh "$VENV" | cut -f1) in the venv"
"$VENV/bin/pip" list 2>/dev/null | grep -iE '^(onnxruntime|numba|nvidia|cuda)' || true
"$VENV/bin/python" - <<'EOF'
import glob, os, re, subprocess, sys

import onnxruntime as ort

print("onnxruntime", ort.__version__, "built for CUDA", getattr(ort, "cuda_version", "?"))
if hasattr(ort, "preload_dlls"):
    ort.preload_dlls(cuda=True, cudnn=True)
else:
    print("this onnxruntime has no preload_dlls")
capi = os.path.join(os.path.dirname(ort.__file__), "capi")
(provider,) = glob.glob(os.path.join(capi, "libonnxruntime_providers_cuda.so"))
needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", subprocess.run(
    ["readelf", "-d", provider], capture_output=True, text=True, check=True).stdout)
runpath = re.findall(r"\((?:RUNPATH|RPATH)\).*\[(.*)\]", subprocess.run(
    ["readelf", "-d", provider], capture_output=True, text=True).stdout)
print("provider:", provider)
print("RUNPATH:", runpath or "none")
with open("/proc/self/maps") as f:
    loaded = sorted({line.split()[-1] for line in f if ".so" in line.split()[-1]})
dirs = sorted({os.path.dirname(p) for p in loaded} | {capi})
print("loaded by the preload:", ", ".join(sorted({os.path.basename(p) for p in loaded if "/nvidia/" in p})))
env = dict(os.environ, LD_LIBRARY_PATH=":".join(dirs + [os.environ.get("LD_LIBRARY_PATH", "")]))
ldd = subprocess.run(["ldd", provider], capture_output=True, text=True, env=env).stdout
missing = sorted(set(re.findall(r"^\s*(\S+) => not found", ldd, re.M)))
resolved = dict(re.findall(r"^\s*(\S+) => (/\S+)", ldd, re.M))
resolved.update({os.path.basename(p): p for p in re.findall(r"^\s*(/\S+) \(0x", ldd, re.M)})  # the loader
for name in needed:
    print(f"  NEEDED {name:28s} -> {resolved.get(name, 'NOT FOUND')}")
others = [m for m in missing if m != "libcuda.so.1"]
if others:
    print("FAIL: unresolved besides the driver:", ", ".join(others))
    sys.exit(1)
print("OK: every dependency of the CUDA provider resolves" + (
    " except the driver's libcuda.so.1" if "libcuda.so.1" in missing else ""))
EOF
echo "total: $((SECONDS - t0)) s"
