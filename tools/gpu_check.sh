#!/usr/bin/env bash
# gpu_check.sh: the one script to run on a GPU machine (H100/H200, sm_90): builds egcam with
# CUDA (Release, sm_90 only) into build-gpu, runs the CUDA parity tests (and the CPU tests),
# runs compute-sanitizer memcheck on a short subset, then the benchmarks, then checks the Python
# module on the GPU, and records one JSON line per step in $OUT/gpu_check.jsonl. A failing step is
# recorded and the script goes on; it is meant to finish within about 8 minutes.
#
# Usage (from the repository root):
#   tools/gpu_check.sh [SHARED_DIR]
# SHARED_DIR (or the environment variable EGC_SHARED_DIR) is where the shared models and
# data are, when they were carried to the machine; without it the tests that need them skip.
# OUT (default ./out) receives: gpu_check.jsonl (one line per step), gpu_check.log (all
# output), cuda_tests.json and cpu_tests.json (GoogleTest reports), the benchmarks' JSON
# lines, and summary.md (tools/gpu_summary.py: failed steps, tests, goals, throughput tables,
# also printed at the end).
# Environment knobs: QUICK=1 (the essentials of the goals in one 10-minute call: see below),
# DONE=1 (what the open issues' done-when asks, in one 10-minute call: see below), PINNED=1
# (page-locked inputs for the forward and explanation benchmarks and their peers),
# COMPILE_MODELS (architectures whose torch.compile fp16 forward is timed), SKIP_NAIVE=1,
# ROWS_VARIANTS (the Expected Grad-CAM pass-size variants),
# DEADLINE (seconds: no step starts later and none runs past it, so a call
# with a time limit gets its results back; e.g. DEADLINE=540 under a 600 s limit), JOBS
# (build parallelism, default all cores), BUILD_DIR (default build-gpu),
# SKIP_CPU_TESTS=1, SKIP_SANITIZER=1, SKIP_TESTS=1 (no test steps: benchmarks only),
# SKIP_BENCH=1 (no benchmark steps), TV_MODELS (torchvision exports to benchmark, default
# "vgg16 resnet50 alexnet"), EXPLAIN_MODELS (default "resnet50 vgg16 alexnet"), SKIP_PEERS=1
# (no PyTorch explanation peers), STUDY=1 (after the checks, the evaluation study of
# docs/RESULTS.md on the GPU: tools/study.sh with PROFILE=gpu into ./study-gpu, packed with
# its throughput lines into $OUT/study.tgz; STUDY_STAGES and STUDY_TIME_SCALE pass on as
# STAGES and TIME_SCALE, STUDY_SECONDS bounds it, STUDY_CHOSEN sets the Expected Grad-CAM
# entry of stages 2-5 when stage 1 is not run), SKIP_GOALS=1 (none of the side-by-side runs of
# the goals: page-locked inputs on both sides, torch.compile's forward, the fp16 fusion and
# input-padding variants, Expected Grad-CAM with larger passes, the Nsight Systems kernel
# profile (PROFILE=0 skips that one alone), VGG16 fp32 with and without the data-sized
# workspace (VGG_WS=0 skips that one alone), about 7 minutes in all).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
# QUICK=1: the goals' essentials within one 10-minute call: ResNet-50 only (TV_MODELS and
# EXPLAIN_MODELS; VGG16 only in the last step, the fp32 workspace comparison, if time is
# left), no CPU tests, no compute-sanitizer, DEADLINE 540 s (each can still be set
# otherwise).
if [ "${QUICK:-0}" = 1 ]; then
    : "${SKIP_CPU_TESTS:=1}" "${SKIP_SANITIZER:=1}" "${TV_MODELS:=resnet50}"
    : "${EXPLAIN_MODELS:=resnet50}" "${DEADLINE:=540}"
    export SKIP_CPU_TESTS SKIP_SANITIZER TV_MODELS EXPLAIN_MODELS DEADLINE
fi
# DONE=1: what the open issues' done-when asks, within one 10-minute call: every CUDA test,
# the torchvision parity of VGG16, ResNet-50 and AlexNet, their forward at batch 256 in fp32
# and mixed next to PyTorch's eager forward and its torch.compile fp16 forward (inputs
# page-locked on both sides), Grad-CAM (batch 64) and Expected Grad-CAM (S = 32, 32 images)
# of the three next to the PyTorch peers (pinned where the peer has it); no CPU tests, no
# compute-sanitizer, none of the goal variants, no naive peer; DEADLINE 540 s (each can still
# be set otherwise).
if [ "${DONE:-0}" = 1 ]; then
    : "${SKIP_CPU_TESTS:=1}" "${SKIP_SANITIZER:=1}" "${SKIP_GOALS:=1}" "${DEADLINE:=540}"
    : "${PINNED:=1}" "${COMPILE_MODELS:=vgg16 resnet50 alexnet}" "${SKIP_NAIVE:=1}"
    export SKIP_CPU_TESTS SKIP_SANITIZER SKIP_GOALS DEADLINE PINNED COMPILE_MODELS SKIP_NAIVE
fi
# PINNED=1: the forward and explanation benchmarks and their peers read page-locked inputs.
PIN=""
[ "${PINNED:-0}" = 1 ] && PIN="--pinned"
source "$ROOT/tools/gpu_common.sh"
out_init gpu_check.log gpu_check.jsonl
SHARED="${1:-${EGC_SHARED_DIR:-}}"
# absolute, as the steps below link to its files from temporary folders
[ -n "$SHARED" ] && [ -d "$SHARED" ] && SHARED="$(cd "$SHARED" && pwd)"
BUILD_DIR="${BUILD_DIR:-build-gpu}"
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 8)}"
FAILED=0

json_escape() {
    python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))' 2>/dev/null ||
        sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e ':a;N;$!ba;s/\n/\\n/g' -e 's/.*/"&"/'
}

# record NAME STATUS RC SECONDS [EXTRA-JSON-FIELDS]
record() {
    local extra="${5:-}"
    [ -n "$extra" ] && extra=", $extra"
    printf '{"step": "%s", "status": "%s", "rc": %s, "seconds": %s%s}\n' "$1" "$2" "$3" "$4" \
        "$extra" >>"$JSONL"
    printf '=== step %s: %s (rc %s, %ss)\n' "$1" "$2" "$3" "$4" | tee -a "$LOG"
}

# step NAME TIMEOUT_S COMMAND...: runs the command with a time limit, output to the log;
# records ok / fail / timeout with the last lines of output on failure.
step() {
    local name="$1" limit="$2"
    shift 2
    # DEADLINE (seconds from the start): no step starts after it, and none runs past it
    if ! limit="$(time_limit "$limit" 10)"; then
        record "$name" skipped 0 0 "\"reason\": \"DEADLINE ${DEADLINE}s reached\""
        return 1
    fi
    echo "=== running $name: $*" >>"$LOG"
    local t=$(date +%s) tmp
    tmp="$(mktemp)"
    timeout --signal=TERM --kill-after=10 "$limit" "$@" >"$tmp" 2>&1
    local rc=$?
    cat "$tmp" >>"$LOG"
    local status=ok
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        status=timeout
    elif [ $rc -ne 0 ]; then
        status=fail
    fi
    local extra=""
    if [ "$status" != ok ]; then
        FAILED=$((FAILED + 1))
        extra="\"tail\": $(tail -n 25 "$tmp" | json_escape)"
    fi
    rm -f "$tmp"
    record "$name" "$status" "$rc" "$(($(date +%s) - t))" "$extra"
    return $rc
}

skip() { record "$1" skipped 0 0 "\"reason\": \"$2\""; }

# ---- machine ----
step machine 30 bash -c 'nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nvcc --version | tail -n 2; cmake --version | head -n 1; gcc --version | head -n 1'

# ---- configure and build (sm_90 only) ----
CFG=(-S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEGC_CUDA=ON -DEGC_CUDA_ARCHS=90)
[ -n "$SHARED" ] && CFG+=("-DEGC_SHARED_DIR=$(cd "$SHARED" && pwd)")
# The test binaries first (what the checks below need), then everything else (the tool,
# benchmarks), so that a broken tool does not hide the test results.
BUILT=0
if step configure 120 cmake "${CFG[@]}"; then
    TARGETS=(--target egcam_cuda_tests)
    [ "${SKIP_CPU_TESTS:-0}" != 1 ] && TARGETS+=(egcam_tests)
    if step build_tests 300 cmake --build "$BUILD_DIR" -j "$JOBS" "${TARGETS[@]}"; then BUILT=1; fi
    step build_all 200 cmake --build "$BUILD_DIR" -j "$JOBS"
else
    skip build_tests "configure failed"
fi

summarize() { # summarize REPORT.json: one line "tests N failures F skipped S"
    python3 - "$1" <<'EOF' 2>/dev/null
import json, sys
r = json.load(open(sys.argv[1]))
tests = fails = skipped = 0
failed = []
for s in r.get("testsuites", []):
    for t in s.get("testsuite", []):
        tests += 1
        if t.get("failures"):
            fails += 1
            failed.append(s["name"] + "." + t["name"])
        elif t.get("result") == "SKIPPED" or t.get("status") == "NOTRUN":
            skipped += 1
print(json.dumps({"tests": tests, "failures": fails, "skipped": skipped, "failed": failed[:30]}))
EOF
}

# ---- tests ----
if [ "${SKIP_TESTS:-0}" = 1 ]; then
    skip cuda_tests "SKIP_TESTS=1"
elif [ $BUILT -eq 1 ] && [ -x "$BUILD_DIR/egcam_cuda_tests" ]; then
    step cuda_tests 240 "$BUILD_DIR/egcam_cuda_tests" --gtest_output="json:$OUT/cuda_tests.json"
    S="$(summarize "$OUT/cuda_tests.json")"
    [ -n "$S" ] && { record cuda_tests_summary info 0 0 "\"summary\": $S"; echo "CUDA tests: $S"; }
    # Failing tests again, once under each knob that turns one newer path off, so that one
    # call says which path a failure lies in: one JSON line per knob with the tests that
    # still fail under it (cuda_tests_knob).
    FT="$(python3 -c 'import json,sys; print(":".join(json.loads(sys.argv[1]).get("failed", [])))' "${S:-{\}}" 2>/dev/null)"
    if [ -n "$FT" ]; then
        for K in EGC_CUDA_WS_DATA=0 EGC_CUDA_PAD_C=8 EGC_CUDA_HALF_FUSED=0 EGC_CUDA_FUSE=0; do
            step "cuda_tests_$K" 60 env "$K" "$BUILD_DIR/egcam_cuda_tests" --gtest_filter="$FT" \
                --gtest_output="json:$OUT/knob.json"
            KS="$(summarize "$OUT/knob.json")"
            rm -f "$OUT/knob.json"
            [ -n "$KS" ] && { record cuda_tests_knob info 0 0 "\"knob\": \"$K\", \"summary\": $KS"; echo "under $K: $KS"; }
        done
    fi
else
    skip cuda_tests "not built"
fi

if [ "${SKIP_CPU_TESTS:-0}" != 1 ] && [ "${SKIP_TESTS:-0}" != 1 ] && [ -x "$BUILD_DIR/egcam_tests" ]; then
    step cpu_tests 150 "$BUILD_DIR/egcam_tests" --gtest_output="json:$OUT/cpu_tests.json"
    S="$(summarize "$OUT/cpu_tests.json")"
    [ -n "$S" ] && { record cpu_tests_summary info 0 0 "\"summary\": $S"; echo "CPU tests: $S"; }
else
    skip cpu_tests "disabled or not built"
fi

# ---- compute-sanitizer memcheck on a short subset ----
SAN="$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)"
if [ "${SKIP_SANITIZER:-0}" = 1 ] || [ "${SKIP_TESTS:-0}" = 1 ]; then
    skip memcheck "SKIP_SANITIZER=1 or SKIP_TESTS=1"
elif [ -z "$SAN" ]; then
    skip memcheck "compute-sanitizer not found"
elif [ $BUILT -ne 1 ]; then
    skip memcheck "not built"
else
    step memcheck 150 "$SAN" --tool memcheck --error-exitcode 3 --leak-check no \
        "$BUILD_DIR/egcam_cuda_tests" \
        --gtest_filter='CudaMetricEntries.RankIsTheCpuOrderExactly:CudaMetricEntries.SelectRowsAreBitExact:CudaMetricEntries.GaussRowsMatchTheCpu:CudaMethodsResNet20.PinnedInputsGiveTheSameMaps:CudaParity.ConvAsymmetricPadStride2:CudaParity.ConvDepthwiseStride2:CudaParity.MaxPool*:CudaParity.AvgPoolCeilMode:CudaParity.PadModes:CudaParity.SubBothBroadcast:CudaParity.MatMulCrossBroadcast:CudaParity.Softmax:CudaParity.GemmTransABAlphaBeta:CudaMethodsEntries.*:CudaParity.ConvMixedSymmetricPadBias:CudaF16.*'
fi

# ---- device listing ----
if [ -x "$BUILD_DIR/egcam" ]; then
    step info 30 "$BUILD_DIR/egcam" info
else
    skip info "the egcam tool was not built"
fi

# ---- the choice cache across processes: egcam explain (MobileNetV2, mixed, Grad-CAM and
# Expected Grad-CAM, 8 ImageNet samples) twice with an empty cache folder of its own: the first
# run writes cuda_choices.bin, the second takes its choices from it (classify's EGC_VERBOSE=1
# plan says "choice kept") and writes the same .npy maps bit for bit. ----
if [ -x "$BUILD_DIR/egcam" ] && [ -n "$SHARED" ] && [ -d "$SHARED/data/imagenet-sample" ]; then
    step choice_cache 90 bash -c '
        set -e
        t="$(mktemp -d)"; trap "rm -rf \"$t\"" EXIT
        mkdir "$t/in"; for f in $(ls "$2/data/imagenet-sample" | head -n 8); do ln -s "$2/data/imagenet-sample/$f" "$t/in/$f"; done
        for k in 1 2; do
            env -u EGC_CUDA_HALF_FUSED -u EGC_CUDA_CACHE -u EGC_CUDA_MEMO EGC_CACHE_DIR="$t/cache" EGC_VERBOSE=1 \
                "$1" classify --model "$2/models/mobilenet_v2_imagenet.onnx" \
                --preset tf --device cuda --precision mixed --batch 8 --json "$t/in" >"$t/cls$k" 2>"$t/log$k" \
                || { echo "classify run $k failed"; tail -n 30 "$t/log$k"; exit 1; }
            env -u EGC_CUDA_HALF_FUSED -u EGC_CUDA_CACHE -u EGC_CUDA_MEMO EGC_CACHE_DIR="$t/cache" "$1" explain --model "$2/models/mobilenet_v2_imagenet.onnx" \
                --preset tf --method gradcam,expected-gradcam --samples 8 --device cuda --precision mixed \
                --batch 8 --save npy -q --out "$t/out$k" "$t/in"
        done
        [ -s "$t/cache/cuda_choices.bin" ] || { echo "no choice was cached"; exit 1; }
        echo "cache: $(stat -c %s "$t/cache/cuda_choices.bin") bytes after the two runs"
        grep -q "choice kept" "$t/log2" || { echo "run 2 did not take the cached choices"; tail -n 20 "$t/log2"; exit 1; }
        diff -r "$t/out1" "$t/out2" --exclude=manifest.jsonl >/dev/null || { echo "run 2 maps differ from run 1"; exit 1; }
        echo "run 2 took the cached choices and gave the same maps bit for bit"' _ "$BUILD_DIR/egcam" "$SHARED"
fi

# ---- egcam check on the GPU: logits and target-layer gradients against the CPU, and the
# finite-difference check, fp32 and mixed, on ResNet-20 and a small Swin transformer ----
if [ -x "$BUILD_DIR/egcam" ] && [ -n "$SHARED" ] && [ -f "$SHARED/models/resnet20_cifar10.onnx" ]; then
    step egcam_check 60 bash -c '
        set -e
        for p in fp32 mixed; do
            "$1" check --device cuda --precision "$p" --json --model "$2/models/resnet20_cifar10.onnx"
            "$1" check --device cuda --precision "$p" --json --model test/data/lower/swin_tiny.onnx \
                --logits test/data/lower/swin_tiny_out.npy --rtol 2e-2 --atol 2e-2 test/data/lower/swin_tiny_in.npy
        done' _ "$BUILD_DIR/egcam" "$SHARED"
fi

# ---- benchmarks ----
# ===================== BENCHMARKS: the lead adds benchmark commands here =====================
# Each one as:   step bench_<name> <timeout_s> <command> [args...]
# e.g.           step bench_forward 120 "$BUILD_DIR/bench_forward" --backend cuda --out "$OUT/bench.jsonl"
# (keep the whole script under ~8 minutes; results should go to $OUT as JSON lines)
# ============================================================================================

# Torchvision architectures (random weights, benchmarks/peers/export_torchvision.py): their
# parity against PyTorch (CudaModelTorchvision, needs EGC_TV_DIR), then forward throughput at
# batch 256 of egcam (bench_forward) and of PyTorch (benchmarks/peers/torch_forward.py), all
# JSON lines into $OUT/bench.jsonl. Knobs: PYTHON (default python3), BENCH_BATCH (256),
# BENCH_REPEATS (5).
PY="${PYTHON:-python3}"
TV_DIR="$BUILD_DIR/tv"
BENCH="$OUT/bench.jsonl"
BB="${BENCH_BATCH:-256}"
BR="${BENCH_REPEATS:-5}"
: >"$BENCH"
TV_OK=0
# the architectures asked for (TV_MODELS and EXPLAIN_MODELS; all three by default)
TV_WANT="$(echo ${TV_MODELS:-vgg16 resnet50 alexnet} ${EXPLAIN_MODELS:-vgg16 resnet50 alexnet} | tr ' ' '\n' | sort -u | tr '\n' ' ')"
TV_HAVE=1
for M in $TV_WANT; do [ -f "$TV_DIR/$M.onnx" ] || TV_HAVE=0; done
if [ $TV_HAVE -eq 1 ]; then
    TV_OK=1
    record export_torchvision cached 0 0
elif step export_torchvision 150 "$PY" benchmarks/peers/export_torchvision.py "$TV_DIR" \
    --models "$(echo $TV_WANT | tr ' ' ',')"; then TV_OK=1; fi
if [ "${SKIP_TESTS:-0}" = 1 ]; then
    skip tv_parity "SKIP_TESTS=1"
elif [ $TV_OK -eq 1 ] && [ -x "$BUILD_DIR/egcam_cuda_tests" ]; then
    step tv_parity 150 env EGC_TV_DIR="$(cd "$TV_DIR" && pwd)" "$BUILD_DIR/egcam_cuda_tests" \
        --gtest_filter='CudaModelTorchvision*' --gtest_output="json:$OUT/tv_parity.json"
    S="$(summarize "$OUT/tv_parity.json")"
    [ -n "$S" ] && record tv_parity_summary info 0 0 "\"summary\": $S"
else
    skip tv_parity "no exports or no test binary"
fi
BENCH_MODELS=()
if [ $TV_OK -eq 1 ]; then
    for M in ${TV_MODELS:-vgg16 resnet50 alexnet}; do BENCH_MODELS+=("$TV_DIR/$M.onnx"); done
fi
[ -n "$SHARED" ] && [ -z "${TV_MODELS:-}" ] && [ -f "$SHARED/models/mobilenet_v2_imagenet.onnx" ] &&
    BENCH_MODELS+=("$SHARED/models/mobilenet_v2_imagenet.onnx")
# One step per (model, precision): fp32 (TF32 allowed) and mixed (fp16 NHWC tensor-core
# trunk); EGC_VERBOSE=1 puts each layer's precision/layout/algorithm and the CUDA-graph state
# into the log (stderr), the JSON lines go to bench.jsonl. BENCH_PRECISIONS overrides the list.
if [ "${SKIP_BENCH:-0}" = 1 ]; then
    skip benchmarks "SKIP_BENCH=1"
else
PEER_MODELS="$(echo ${EXPLAIN_MODELS:-resnet50 vgg16 alexnet} | tr ' ' ',')"
PEER_TV="$(echo ${TV_MODELS:-vgg16 resnet50 alexnet} | tr ' ' ',')"
export PEER_MODELS PEER_TV
BP="${BENCH_PRECISIONS:-fp32 mixed}"
if [ -x "$BUILD_DIR/bench_forward" ]; then
    for M in "${BENCH_MODELS[@]}"; do
        for P in $BP; do
            step "bench_forward_$(basename "$M" .onnx)_$P" 90 bash -c \
                'set -o pipefail; EGC_VERBOSE=1 "$1" --model "$2" --device cuda --batch "$3" --repeats "$4" --warmup 2 --precision "$6" $7 | tee -a "$5"' \
                _ "$BUILD_DIR/bench_forward" "$M" "$BB" "$BR" "$BENCH" "$P" "$PIN"
        done
    done
else
    skip bench_forward "bench_forward was not built"
fi
step bench_torch 200 bash -c 'set -o pipefail; "$1" benchmarks/peers/torch_forward.py --models "$4" --batch "$2" --repeats 10 $5 | tee -a "$3"' \
    _ "$PY" "$BB" "$BENCH" "$PEER_TV" "$PIN"
# The forward goal of ResNet-50 side by side: inputs in page-locked memory on both sides, and
# PyTorch's torch.compile fp16 forward (compilation not timed; SKIP_COMPILE=1 skips it).
if [ "${SKIP_GOALS:-0}" != 1 ]; then
if [ $TV_OK -eq 1 ] && [ -x "$BUILD_DIR/bench_forward" ]; then
    step bench_forward_pinned 60 bash -c \
        'set -o pipefail; "$1" --model "$2" --device cuda --batch "$3" --repeats "$4" --warmup 2 --precision fp32,mixed --pinned | tee -a "$5"' \
        _ "$BUILD_DIR/bench_forward" "$TV_DIR/resnet50.onnx" "$BB" "$BR" "$BENCH"
fi
# What the fp16 epilogue fusion (bias + residual Add + Relu in the Conv), the one-call
# cuDNN path, the cuDNN operation graph and the padding of the RGB input to 8 (or 4)
# channels bring: ResNet-50 mixed with the graph path on, with the kernel path forced, with
# all fusion off, and with the input padded to 4 / 8 (unpadded by default).
if [ "${SKIP_GOALS:-0}" != 1 ] && [ $TV_OK -eq 1 ] && [ -x "$BUILD_DIR/bench_forward" ]; then
    step bench_forward_fusion 180 bash -c \
        'set -o pipefail; for e in EGC_CUDA_GRAPH_API=1 EGC_CUDA_HALF_FUSED=0 EGC_CUDA_FUSE=0 EGC_CUDA_PAD_C=4 EGC_CUDA_PAD_C=8; do env "$e" "$1" --model "$2" --device cuda --batch "$3" --repeats "$4" --warmup 2 --precision mixed --pinned | tee -a "$5"; done' \
        _ "$BUILD_DIR/bench_forward" "$TV_DIR/resnet50.onnx" "$BB" "$BR" "$BENCH"
fi
step bench_torch_pinned 60 bash -c 'set -o pipefail; "$1" benchmarks/peers/torch_forward.py --models resnet50 --batch "$2" --repeats 10 --pinned | tee -a "$3"' \
    _ "$PY" "$BB" "$BENCH"
if [ "${SKIP_COMPILE:-0}" != 1 ]; then
    step bench_torch_compiled 150 bash -c 'set -o pipefail; "$1" benchmarks/peers/torch_forward.py --models resnet50 --precisions fp16 --batch "$2" --repeats 10 --pinned --compile | tee -a "$3"' \
        _ "$PY" "$BB" "$BENCH"
else
    skip bench_torch_compiled "SKIP_COMPILE=1"
fi
fi

# Explanation throughput (all into $OUT/bench_explain.jsonl, bench_explain.c's keys): egcam's
# Grad-CAM (batch 64) and Expected Grad-CAM (32 images x S = 32 samples, 128 rows per pass;
# fp32 with TF32, and mixed) on the torchvision exports above, then the PyTorch peers on the
# same architectures (random weights, 224x224): plain Grad-CAM (gradcam_torch.py), naive
# hand-batched Expected Grad-CAM with all B*S samples in one autograd pass (egc_naive.py;
# halves the batch on out-of-memory and says so), and the expert version (egc_expert.py:
# trunk under inference_mode, autograd through the head only, 128-row chunks; eager fp32 and
# eager fp16 channels_last on every model, torch.compile fp16 on ResNet-50 only, in its own
# step with a time limit). Few repeats: the section is meant to take ~150 s. Knobs:
# EXPLAIN_REPEATS (3), SKIP_COMPILE=1.
EB="$OUT/bench_explain.jsonl"
ER="${EXPLAIN_REPEATS:-3}"
: >"$EB"
if [ $TV_OK -eq 1 ] && [ -x "$BUILD_DIR/bench_explain" ]; then
    for M in ${EXPLAIN_MODELS:-resnet50 vgg16 alexnet}; do
        step "bench_explain_$M" 75 bash -c \
            'set -o pipefail; "$1" --model "$2" --device cuda --methods gradcam,expected-gradcam --gradcam-batch 64 --expected-batch 32 --samples 32 --rows 128 --precision fp32,mixed --repeats "$3" --warmup 1 --phases 2 $5 | tee -a "$4"' \
            _ "$BUILD_DIR/bench_explain" "$TV_DIR/$M.onnx" "$ER" "$EB" "$PIN"
    done
    # Expected Grad-CAM, ResNet-50 mixed, the goal's configuration (32 images) against the
    # default line above (128 rows; the 32 clean rows ride in the first sample pass, 9
    # passes): the clean rows in a pass of their own (EGC_MERGE_CLEAN=0, the way before: also
    # 9 passes), 264 and 132 rows (32 x 33 = 1,056 rows fill 4 or 8 passes exactly; fp16
    # activations take 2 bytes per value, so 264 rows may fit the 3 GiB goal), 264 rows with
    # the cuDNN operation-graph path (EGC_CUDA_GRAPH_API=1), 256 rows (5 passes), then 128
    # images per run (a dataset run). Most telling first (a cut step keeps what ran);
    # "cuda_env" tells the variants apart.
    # ROWS_VARIANTS: "IMAGES ROWS ENV|-" items separated by ';' (DONE=1: 264 rows, the
    # separate clean pass, 264 rows with the operation-graph path, whose first_ms says what
    # its first-batch compilation costs).
    RV_ALL="32 264 -;32 264 EGC_CUDA_GRAPH_API=1;32 128 EGC_MERGE_CLEAN=0;32 132 -;32 256 -;128 264 -;128 128 -"
    RV="${ROWS_VARIANTS:-$RV_ALL}"
    [ "${DONE:-0}" = 1 ] && RV="${ROWS_VARIANTS:-32 264 -;32 128 EGC_MERGE_CLEAN=0;32 264 EGC_CUDA_GRAPH_API=1}"
    { [ "${SKIP_GOALS:-0}" != 1 ] || [ "${DONE:-0}" = 1 ]; } && step bench_explain_rows 180 bash -c \
        'set -o pipefail; rc=0; IFS=";" read -ra V <<<"$5"; for a in "${V[@]}"; do read -r nb nr ev <<<"$a"; E=(); [ "$ev" != - ] && E=("$ev"); env "${E[@]}" "$1" --model "$2" --device cuda --methods expected-gradcam --expected-batch "$nb" --samples 32 --rows "$nr" --precision mixed --repeats "$3" --warmup 1 --pinned | tee -a "$4" || { rc=1; echo "FAILED: $a" >&2; }; done; exit $rc' \
        _ "$BUILD_DIR/bench_explain" "$TV_DIR/resnet50.onnx" "$ER" "$EB" "$RV"
    # Grad-CAM is bound by the host: the same runs with the inputs in page-locked memory
    # (egc_host_alloc), next to gradcam_torch.py --pinned below.
    [ "${SKIP_GOALS:-0}" != 1 ] && step bench_explain_pinned 45 bash -c \
        'set -o pipefail; "$1" --model "$2" --device cuda --methods gradcam --gradcam-batch 64 --precision fp32,mixed --repeats "$3" --warmup 1 --phases 2 --pinned | tee -a "$4"' \
        _ "$BUILD_DIR/bench_explain" "$TV_DIR/resnet50.onnx" "$ER" "$EB"
else
    skip bench_explain "no torchvision exports or bench_explain not built"
fi
if [ "${SKIP_PEERS:-0}" = 1 ]; then
    skip bench_peers "SKIP_PEERS=1"
else
step bench_gradcam_torch 150 bash -c 'set -o pipefail; "$1" benchmarks/peers/gradcam_torch.py --models "$PEER_MODELS" --precisions fp32,fp16 --batch 64 --repeats "$2" --warmup 1 $4 | tee -a "$3"' \
    _ "$PY" "$ER" "$EB" "$PIN"
[ "${SKIP_GOALS:-0}" != 1 ] && step bench_gradcam_torch_pinned 45 bash -c 'set -o pipefail; "$1" benchmarks/peers/gradcam_torch.py --models resnet50 --precisions fp32,fp16 --batch 64 --repeats "$2" --warmup 1 --pinned | tee -a "$3"' \
    _ "$PY" "$ER" "$EB"
[ "${SKIP_NAIVE:-0}" != 1 ] && step bench_egc_naive 75 bash -c 'set -o pipefail; "$1" benchmarks/peers/egc_naive.py --models "$PEER_MODELS" --batch 32 --samples 32 --repeats 2 --warmup 1 | tee -a "$2"' \
    _ "$PY" "$EB"
step bench_egc_expert 120 bash -c 'set -o pipefail; "$1" benchmarks/peers/egc_expert.py --models "$PEER_MODELS" --batch 32 --samples 32 --rows 128 --modes eager-fp32,eager-fp16 --repeats "$2" --warmup 1 | tee -a "$3"' \
    _ "$PY" "$ER" "$EB"
# torch.compile's fp16 forward of each architecture in COMPILE_MODELS (DONE=1: all three;
# compilation not timed), the forward goal's reference, inputs page-locked
if [ "${SKIP_COMPILE:-0}" != 1 ] && [ -n "${COMPILE_MODELS:-}" ]; then
    step bench_torch_compiled_all 240 bash -c 'set -o pipefail; "$1" benchmarks/peers/torch_forward.py --models "$4" --precisions fp16 --batch "$2" --repeats 10 --pinned --compile | tee -a "$3"' \
        _ "$PY" "$BB" "$BENCH" "$(echo $COMPILE_MODELS | tr ' ' ',')"
fi
if [ "${SKIP_COMPILE:-0}" != 1 ]; then
    step bench_egc_expert_compile 120 bash -c 'set -o pipefail; "$1" benchmarks/peers/egc_expert.py --models resnet50 --batch 32 --samples 32 --rows 128 --modes compile-fp16 --repeats "$2" --warmup 1 | tee -a "$3"' \
        _ "$PY" "$ER" "$EB"
else
    skip bench_egc_expert_compile "SKIP_COMPILE=1"
fi
fi

fi

# ---- where the forward's time goes: ResNet-50 mixed and VGG16 fp32 at b256 under Nsight
# Systems (when nsys is installed), the 30 kernels that take the most GPU time, one JSON line
# {"bench": "kernel-profile"} each in bench.jsonl. Part of SKIP_GOALS; PROFILE=0 skips it. ----
NSYS="$(command -v nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -n 1)"
if [ "${SKIP_GOALS:-0}" != 1 ] && [ "${PROFILE:-1}" != 0 ] && [ -n "$NSYS" ] && [ $TV_OK -eq 1 ] &&
    [ -x "$BUILD_DIR/bench_forward" ]; then
    # ResNet-50 mixed (the goal's precision) and VGG16 fp32 (the forward furthest behind PyTorch)
    for cfg in "resnet50 mixed" "vgg16 fp32"; do
        read -r PM PP <<<"$cfg"
        [ -f "$TV_DIR/$PM.onnx" ] || continue
        step "kernel_profile_${PM}_$PP" 120 bash -c '
        set -o pipefail
        rm -f "$5".nsys-rep "$5".sqlite
        "$1" profile -o "$5" --force-overwrite true --trace cuda "$2" --model "$3" --device cuda \
            --batch 256 --repeats 5 --warmup 2 --precision "$6" --pinned >/dev/null || exit 1
        "$1" stats --report cuda_gpu_kern_sum --format csv --output "$5" "$5".nsys-rep >/dev/null || exit 1
        python3 - "$5"_cuda_gpu_kern_sum.csv "$3" "$6" <<PY | tee -a "$4"
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
tot = sum(float(r.get("Total Time (ns)", 0) or 0) for r in rows)
top = [{"pct": round(float(r.get("Time (%)", 0) or 0), 2), "ms": round(float(r.get("Total Time (ns)", 0) or 0) / 1e6, 3),
        "calls": int(float(r.get("Instances", 0) or 0)), "kernel": r.get("Name", "")[:160]} for r in rows[:30]]
print(json.dumps({"bench": "kernel-profile", "model": sys.argv[2].split("/")[-1], "precision": sys.argv[3],
                  "batch": 256, "total_gpu_ms": round(tot / 1e6, 3), "kernels": top}))
PY
        rm -f "$5".nsys-rep "$5".sqlite "$5"_*.csv' _ "$NSYS" "$BUILD_DIR/bench_forward" \
            "$TV_DIR/$PM.onnx" "$BENCH" "$BUILD_DIR/tmp-prof" "$PP"
    done
elif [ -z "$NSYS" ]; then
    skip kernel_profile "nsys not found"
fi

# ---- the command line end to end: egcam explain on the 250 ImageNet samples (decode,
# explain on the GPU, .npy and overlay writing), with the batch pipeline off and on; one JSON
# line each into $OUT/bench_cli.jsonl (wall seconds, images/s). Part of SKIP_GOALS. ----
if [ "${SKIP_GOALS:-0}" != 1 ] && [ "${SKIP_BENCH:-0}" != 1 ] && [ -x "$BUILD_DIR/egcam" ] &&
    [ -n "$SHARED" ] && [ -d "$SHARED/data/imagenet-sample" ]; then
    : >"$OUT/bench_cli.jsonl"
    step bench_cli_explain 180 bash -c '
        n=$(ls "$2/data/imagenet-sample" | wc -l)
        for p in 0 1; do
            rm -rf "$4/cli-explain"
            t0=$(date +%s.%N)
            EGC_PIPELINE=$p "$1" explain --model "$2/models/mobilenet_v2_imagenet.onnx" --preset tf \
                --method gradcam --device cuda --precision mixed --batch 64 -q \
                --out "$4/cli-explain" "$2/data/imagenet-sample" || exit 1
            t1=$(date +%s.%N)
            python3 -c "import json,sys; s=float(sys.argv[2])-float(sys.argv[1]); print(json.dumps({\"bench\": \"cli-explain\", \"model\": \"mobilenet_v2_imagenet.onnx\", \"method\": \"gradcam\", \"precision\": \"mixed\", \"batch\": 64, \"pipeline\": int(sys.argv[3]), \"images\": int(sys.argv[4]), \"seconds\": round(s, 3), \"images_per_s\": round(int(sys.argv[4]) / s, 1)}))" "$t0" "$t1" "$p" "$n" | tee -a "$3"
        done
        # Expected Grad-CAM on the real images: 32 samples fixed, then at most 64 with
        # --samples-tol 0.05 (the line adds the mean sample count from the manifest)
        for tol in 0 0.05; do
            rm -rf "$4/cli-explain"
            S=32; [ "$tol" != 0 ] && S=64
            t0=$(date +%s.%N)
            "$1" explain --model "$2/models/mobilenet_v2_imagenet.onnx" --preset tf \
                --method expected-gradcam --samples $S --samples-tol $tol --device cuda \
                --precision mixed --batch 256 --save npy -q \
                --out "$4/cli-explain" "$2/data/imagenet-sample" || exit 1
            t1=$(date +%s.%N)
            python3 -c "import json,sys; s=float(sys.argv[2])-float(sys.argv[1]); c=[json.loads(l).get(\"samples\", 0) for l in open(sys.argv[5])]; print(json.dumps({\"bench\": \"cli-explain\", \"model\": \"mobilenet_v2_imagenet.onnx\", \"method\": \"expected-gradcam\", \"precision\": \"mixed\", \"batch\": 256, \"samples_max\": int(sys.argv[3]), \"samples_tol\": float(sys.argv[6]), \"mean_samples\": round(sum(c) / max(1, len(c)), 2), \"images\": int(sys.argv[4]), \"seconds\": round(s, 3), \"images_per_s\": round(int(sys.argv[4]) / s, 1)}))" "$t0" "$t1" "$S" "$n" "$4/cli-explain/manifest.jsonl" "$tol" | tee -a "$3"
        done
        rm -rf "$4/cli-explain"' _ "$BUILD_DIR/egcam" "$SHARED" "$OUT/bench_cli.jsonl" "$BUILD_DIR/tmp"
fi

# ---- VGG16 fp32 at batch 256 (2x behind PyTorch on d5bba23): with the fp32 Convs' cuDNN
# workspace capped at 1 GiB (EGC_CUDA_WS_DATA=0, the old behaviour) and as the data allows
# (the default now; "cuda_env" tells them apart), then PyTorch's fp32 forward, all into
# bench.jsonl; EGC_VERBOSE=1 puts
# each Conv's algorithm and workspace into the log. Exports VGG16 when the run has none (into
# a folder of its own first, so that a cut export leaves no half-written model). A run that
# fails fails the step (after the others ran). Part of SKIP_GOALS, also with QUICK (it comes
# last: DEADLINE may leave it out); VGG_WS=0 skips it. ----
if [ "${SKIP_GOALS:-0}" != 1 ] && [ "${SKIP_BENCH:-0}" != 1 ] && [ "${VGG_WS:-1}" != 0 ] &&
    [ -x "$BUILD_DIR/bench_forward" ]; then
    if [ -f "$TV_DIR/vgg16.onnx" ] ||
        { step export_vgg16 120 "$PY" benchmarks/peers/export_torchvision.py "$TV_DIR.vgg16" \
              --models vgg16 && mkdir -p "$TV_DIR" && mv "$TV_DIR.vgg16"/* "$TV_DIR"/; }; then
        step bench_forward_vgg16_ws 150 bash -c '
            set -o pipefail
            rc=0
            for ws in 0 1; do
                EGC_VERBOSE=1 EGC_CUDA_WS_DATA=$ws "$1" --model "$2" --device cuda --batch "$3" \
                    --repeats "$4" --warmup 2 --precision fp32 --pinned | tee -a "$5" ||
                    { rc=1; echo "FAILED: EGC_CUDA_WS_DATA=$ws" >&2; }
            done
            "$6" benchmarks/peers/torch_forward.py --models vgg16 --precisions fp32 --batch "$3" \
                --repeats 10 --pinned | tee -a "$5" || { rc=1; echo "FAILED: PyTorch" >&2; }
            exit $rc' _ "$BUILD_DIR/bench_forward" \
            "$TV_DIR/vgg16.onnx" "$BB" "$BR" "$BENCH" "$PY"
    fi
fi

# ---- the Python module on the GPU (tools/gpu_python_check.py): its CUDA maps, fp32 and mixed,
# against its CPU maps and against egcam explain's on the GPU; JSON lines into
# $OUT/python_check.jsonl. Last but the study: DEADLINE leaves it out before any figure of the
# issues. ----
if [ -f "$BUILD_DIR/libegcam.so" ] && [ -x "$BUILD_DIR/egcam" ] && [ -n "$SHARED" ] &&
    [ -f "$SHARED/models/resnet20_cifar10.onnx" ]; then
    step python_module 90 bash -c 'set -o pipefail; EGCAM_LIBRARY="$1" PYTHONPATH="$2/python" "$3" "$2/tools/gpu_python_check.py" "$4" "$5" | tee "$6"' \
        _ "$BUILD_DIR/libegcam.so" "$ROOT" "${PYTHON:-python3}" "$(cd "$SHARED" && pwd)" "$BUILD_DIR/egcam" "$OUT/python_check.jsonl"
else
    skip python_module "no libegcam.so, egcam tool or shared models"
fi

# ---- the evaluation study (docs/RESULTS.md) ----
# Written under $ROOT/study-gpu (outside $OUT, so that a cut run keeps it) and packed into
# $OUT/study.tgz whatever happens; STUDY_SECONDS (default 300) bounds the whole study, and each
# sweep also has its own --time-limit (tools/study.sh), checked between groups of BATCH images.
if [ "${STUDY:-0}" = 1 ]; then
    if [ -x "$BUILD_DIR/egcam" ] && [ -n "$SHARED" ]; then
        SD="$ROOT/study-gpu"
        mkdir -p "$SD"
        [ -n "${STUDY_CHOSEN:-}" ] && mkdir -p "$SD/egc" && echo "$STUDY_CHOSEN" >"$SD/egc/chosen.txt"
        step study "${STUDY_SECONDS:-300}" env PROFILE=gpu DEVICE=cuda STAGES="${STUDY_STAGES:-1 2 3 4 5}" \
            TIME_SCALE="${STUDY_TIME_SCALE:-1}" bash tools/study.sh "$BUILD_DIR/egcam" "$SD" \
            "$(cd "$SHARED" && pwd)"
        (cd "$ROOT" && tar czf "$OUT/study.tgz" study-gpu)
    else
        skip study "no egcam tool or no SHARED_DIR"
    fi
fi

TOTAL=$(($(date +%s) - T0))
record total "$([ $FAILED -eq 0 ] && echo ok || echo fail)" "$FAILED" "$TOTAL" "\"failed_steps\": $FAILED"
# the tables to read first (tools/gpu_summary.py): failed steps, tests, goals, throughput
python3 "$ROOT/tools/gpu_summary.py" "$OUT" >"$OUT/summary.md" 2>>"$LOG" && cat "$OUT/summary.md"
echo "gpu_check: $FAILED failing step(s) in ${TOTAL}s; see $JSONL and $OUT/summary.md"
exit 0
