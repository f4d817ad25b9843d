#!/usr/bin/env bash
# build.sh [BUILD_DIR] [extra cmake args...]: configures and builds egcam (Release, warnings
# as errors). CUDA is built when nvcc and cuDNN are found (EGC_CUDA=AUTO). The one build
# script shared by tools/setup.sh, tools/test.sh, .ci/run and docker/Dockerfile.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$here/build}"
shift || true
if [ -z "${CUDACXX:-}" ] && ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S "$here" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DEGC_WERROR=ON "$@"
cmake --build "$build" -j"$(nproc)"
