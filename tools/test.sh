#!/usr/bin/env bash
# test.sh: builds egcam (tools/build.sh) and runs the test suite with ctest. GPU tests
# (label cuda) report as skipped on machines without a GPU.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$here/build}"
bash "$here/tools/build.sh" "$build"
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" "$@"
