#!/usr/bin/env bash
# deps.sh: installs the Debian/Ubuntu packages egcam builds and tests with (run as root, or
# with sudo available). Used by tools/setup.sh, .ci/run and docker/Dockerfile, on Debian 12
# and Ubuntu 24.04. Optional packages are installed where the distribution has them and
# skipped otherwise: libonnx-testdata (the ONNX operator tests; the conformance suite skips
# without it).
set -euo pipefail
required=(cmake ninja-build gcc g++ clang make pkg-config
          libjpeg-dev libpng-dev libopenblas-dev libgtest-dev libxml2-utils python3-numpy)
optional=(libonnx-testdata)
missing=()
for p in "${required[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
missing_opt=()
for p in "${optional[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing_opt+=("$p")
done
if [ ${#missing[@]} -eq 0 ] && [ ${#missing_opt[@]} -eq 0 ]; then
  echo "deps: all packages present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "deps: missing packages ${missing[*]} ${missing_opt[*]}: run as root or install sudo" >&2
    exit 1
  fi
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
for p in "${missing_opt[@]}"; do
  if apt-cache show "$p" >/dev/null 2>&1; then
    missing+=("$p")
  else
    echo "deps: optional package $p is not available here; skipped"
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
