#!/usr/bin/env bash
# Find onnxruntime's C/C++ headers and shared library for native/ (ch3d_embed), vendoring nothing.
#
#   tools/ort_headers.sh [BUILD_DIR]        (default build/ort)
#
# Prints two lines for make/sh, on success (exit 0):
#   ORT_INCLUDE_DIR=<folder with onnxruntime_c_api.h>
#   ORT_LIB=<path of libonnxruntime.so.1.*>
#
# Headers, first found:
#   1. $ORT_INCLUDE_DIR (a folder holding onnxruntime_c_api.h);
#   2. BUILD_DIR/include, fetched before by this script;
#   3. Debian 13 (trixie)'s package libonnxruntime-dev (onnxruntime 1.21, C API version 21), fetched with
#      a PRIVATE apt configuration in BUILD_DIR/apt (its own sources list naming trixie, lists, cache and
#      an empty dpkg status: the system's sources and packages are not touched), `apt-get download`, then
#      `dpkg -x` into BUILD_DIR/deb: nothing is installed. The archive's address is the one the system's
#      apt already uses for Debian (or $ORT_DEBIAN_MIRROR), checked with the system's Debian keyring.
# Library, first found:
#   1. $ORT_LIB (a file);
#   2. the onnxruntime wheel of $PYTHON (default python3): onnxruntime/capi/libonnxruntime.so.1.*
#      (the C API only grows: the 1.21 headers work with the wheel's newer library).
# Neither reachable: one line on stderr saying what to set, exit 2.
set -euo pipefail

BUILD_DIR=${1:-build/ort}
PYTHON=${PYTHON:-python3}
say() { echo "ort_headers.sh: $*" >&2; }
refuse() {
  echo "ort_headers.sh: $*" >&2
  exit 2
}

# ------------------------------------------------------------------------- the library
lib=${ORT_LIB:-}
if [[ -n $lib ]]; then
  [[ -f $lib ]] || refuse "ORT_LIB=$lib is not a file; set it to a libonnxruntime.so.1.* (onnxruntime >= 1.21)"
else
  lib=$("$PYTHON" - <<'EOF' 2>/dev/null || true
import glob, os
import importlib.util
spec = importlib.util.find_spec("onnxruntime")
if spec and spec.submodule_search_locations:
    hits = sorted(glob.glob(os.path.join(list(spec.submodule_search_locations)[0], "capi", "libonnxruntime.so.1.*")))
    print(hits[-1] if hits else "")
EOF
)
  [[ -n $lib ]] || refuse "no onnxruntime library: $PYTHON has no onnxruntime wheel with capi/libonnxruntime.so.1.*; pip install 'onnxruntime>=1.21' or set ORT_LIB to a libonnxruntime.so.1.*"
fi

# ------------------------------------------------------------------------- the headers
inc=${ORT_INCLUDE_DIR:-}
if [[ -n $inc ]]; then
  [[ -f $inc/onnxruntime_c_api.h ]] || refuse "ORT_INCLUDE_DIR=$inc has no onnxruntime_c_api.h"
elif [[ -f $BUILD_DIR/include/onnxruntime_c_api.h ]]; then
  inc=$BUILD_DIR/include
else
  mkdir -p "$BUILD_DIR"
  BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
  no_headers="no onnxruntime headers: set ORT_INCLUDE_DIR to a folder with onnxruntime_c_api.h (onnxruntime >= 1.21), or make Debian's archive reachable for apt-get (trixie's libonnxruntime-dev)"
  command -v apt-get >/dev/null && command -v dpkg >/dev/null || refuse "$no_headers (no apt-get/dpkg here)"
  mirror=${ORT_DEBIAN_MIRROR:-}
  if [[ -z $mirror ]]; then  # the Debian archive the system's apt already uses
    mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' |
      grep -E '/debian/?$' | head -n1 || true)
    [[ -n $mirror ]] || mirror=$(awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^(http|https|file):/) print $i}' \
      /etc/apt/sources.list 2>/dev/null | grep -E '/debian/?$' | head -n1 || true)
  fi
  [[ -n $mirror ]] || refuse "$no_headers (no Debian archive in the system's apt sources; set ORT_DEBIAN_MIRROR)"
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  [[ -f $keyring ]] || refuse "$no_headers (no $keyring)"
  apt=$BUILD_DIR/apt
  rm -rf "$apt"
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/etc/parts" "$apt/deb"
  : >"$apt/status"
  echo "deb [signed-by=$keyring] ${mirror%/} trixie main" >"$apt/etc/sources.list"
  opts=(-q -o "Dir::Etc::SourceList=$apt/etc/sources.list" -o "Dir::Etc::SourceParts=$apt/etc/parts"
    -o "Dir::State::Lists=$apt/lists" -o "Dir::State::Status=$apt/status" -o "Dir::Cache=$apt/cache"
    -o Debug::NoLocking=1 -o Acquire::Languages=none -o APT::Sandbox::User=root)
  say "fetching onnxruntime's headers from Debian trixie's libonnxruntime-dev (private apt lists in $apt; nothing installed)"
  apt-get "${opts[@]}" update >"$apt/update.log" 2>&1 || refuse "$no_headers (apt-get update of trixie failed: $(grep -m1 -E '^(E|W):' "$apt/update.log" || tail -n1 "$apt/update.log"))"
  (cd "$apt/deb" && apt-get "${opts[@]}" download libonnxruntime-dev >"$apt/download.log" 2>&1) ||
    refuse "$no_headers (apt-get download libonnxruntime-dev failed: $(grep -m1 -E '^E:' "$apt/download.log" || tail -n1 "$apt/download.log"))"
  deb=$(ls "$apt"/deb/libonnxruntime-dev_*.deb | head -n1)
  dpkg -x "$deb" "$apt/x"
  [[ -f $apt/x/usr/include/onnxruntime/onnxruntime_c_api.h ]] || refuse "$no_headers ($deb holds no onnxruntime_c_api.h)"
  rm -rf "$BUILD_DIR/include"
  cp -r "$apt/x/usr/include/onnxruntime" "$BUILD_DIR/include"
  basename "$deb" >"$BUILD_DIR/include/FROM_DEBIAN_PACKAGE"
  rm -rf "$apt/lists" "$apt/cache" "$apt/x"  # ~20 MB of package lists
  inc=$BUILD_DIR/include
fi

api=$(sed -n 's/^#define ORT_API_VERSION \([0-9]*\).*/\1/p' "$inc/onnxruntime_c_api.h")
[[ -n $api && $api -ge 21 ]] || refuse "$inc/onnxruntime_c_api.h has C API version ${api:-?}; ch3d_embed needs >= 21 (onnxruntime >= 1.21)"
echo "ORT_INCLUDE_DIR=$(cd "$inc" && pwd)"
echo "ORT_LIB=$(cd "$(dirname "$lib")" && pwd)/$(basename "$lib")"
