#!/usr/bin/env bash
# deps.sh: installs the Debian packages egcam builds and tests with (run as root, or with
# sudo available). Used by tools/setup.sh, .ci/run and docker/Dockerfile.
set -euo pipefail
pkgs=(cmake ninja-build gcc g++ clang make pkg-config
      libjpeg-dev libpng-dev libopenblas-dev libgtest-dev libonnx-testdata)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
