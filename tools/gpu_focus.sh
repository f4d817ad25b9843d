#!/usr/bin/env bash
# gpu_focus.sh: a short, focused look at some CUDA tests on a GPU machine (sm_90), for when
# tools/gpu_check.sh found a failure: builds the CUDA test binary into build-gpu, runs the
# tests that FILTER selects REPEAT times as they are, then once under each knob setting given
# (one environment assignment each, e.g. EGC_MERGE_CLEAN=0), then, with FULL=1, the whole
# CUDA suite, then, with SANITIZE (e.g. "initcheck memcheck"), the selected tests under each
# of compute-sanitizer's tools. Everything goes to $OUT/focus.log; one line per run to
# $OUT/focus.jsonl ({"run", "rc", "seconds"}) and to the terminal.
#
# Usage (from the repository root):
#   tools/gpu_focus.sh SHARED_DIR FILTER [NAME=VALUE ...]
# Environment: REPEAT (default 2), FULL=1, SANITIZE, DEADLINE (seconds: no run starts after
# it), OUT (default ./out), BUILD_DIR (default build-gpu). EGC_TEST_CASES (a comma-separated
# list of method cases) and EGC_TEST_PER_MAP=1 (each map's agreement printed) pass on to the
# methods parity tests.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
if [ $# -lt 2 ]; then
    echo "usage: tools/gpu_focus.sh SHARED_DIR FILTER [NAME=VALUE ...]" >&2
    exit 2
fi
SHARED="$(cd "$1" && pwd)" || exit 2
FILTER="$2"
shift 2
source "$ROOT/tools/gpu_common.sh"
out_init focus.log focus.jsonl
BUILD_DIR="${BUILD_DIR:-build-gpu}"

# run NAME LIMIT COMMAND...: one run, its output to the log, a line to focus.jsonl
run() {
    local name="$1" limit="$2"
    shift 2
    if ! limit="$(time_limit "$limit" 5)"; then
        echo "{\"run\": \"$name\", \"rc\": null, \"skipped\": \"deadline\"}" >>"$JSONL"
        return 1
    fi
    local t=$(date +%s)
    echo "=== $name: $*" >>"$LOG"
    timeout --kill-after=5 "$limit" "$@" >>"$LOG" 2>&1
    local rc=$?
    printf '{"run": "%s", "rc": %d, "seconds": %d}\n' "$name" "$rc" "$(($(date +%s) - t))" |
        tee -a "$JSONL"
    return $rc
}

run configure 120 cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DEGC_CUDA=ON -DEGC_CUDA_ARCHS=90 "-DEGC_SHARED_DIR=$SHARED" || exit 1
run build 300 cmake --build "$BUILD_DIR" --target egcam_cuda_tests || exit 1
BIN="$BUILD_DIR/egcam_cuda_tests"

run "as is x${REPEAT:-2}" 120 "$BIN" --gtest_filter="$FILTER" --gtest_repeat="${REPEAT:-2}"
for K in "$@"; do
    run "$K" 60 env "$K" "$BIN" --gtest_filter="$FILTER"
done
[ "${FULL:-0}" = 1 ] && run "full suite" 240 env -u EGC_TEST_CASES -u EGC_TEST_PER_MAP "$BIN" --gtest_brief=1
SAN="$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)"
for T in ${SANITIZE:-}; do
    if [ -z "$SAN" ]; then
        echo "{\"run\": \"$T\", \"rc\": null, \"skipped\": \"no compute-sanitizer\"}" >>"$JSONL"
        break
    fi
    run "sanitizer $T" 120 "$SAN" --tool "$T" --error-exitcode 3 "$BIN" --gtest_filter="$FILTER"
done
# the failures and the per-case lines, for the terminal
grep -E '^=== |^\[  FAILED  \]|Failure$|actual:|pearson|^    map|ERROR SUMMARY|Uninitialized|Invalid' "$LOG" |
    tail -n 150
echo "gpu_focus: $(($(date +%s) - T0)) s; see $LOG"
