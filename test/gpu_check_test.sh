#!/usr/bin/env bash
# gpu_check_test.sh: tools/gpu_check.sh run end to end against stand-ins of everything it calls
# (cmake, nvidia-smi, nvcc, compute-sanitizer, nsys, the built binaries, the Python peers), so
# that a run on a GPU machine is not lost to a broken script. For the DONE=1 and QUICK=1
# profiles and the full one it checks: the steps run in the expected order and none fails;
# each tool gets the arguments the published figures need (batch 256, Grad-CAM batch 64,
# Expected Grad-CAM 32 images x 32 samples, fp32 and mixed, page-locked inputs); the
# choice-cache step passes when the stand-in's second run keeps its choices and fails when its
# maps differ; failing CUDA tests run again under each knob; DEADLINE stops every step;
# tools/gpu_summary.py renders the lines; tools/gpu_focus.sh runs what it is asked to. The
# stand-ins measure nothing: the numbers they print are made up and only travel through the
# scripts. Exit 77 (skipped) without python3.
#   test/gpu_check_test.sh SOURCE_DIR
set -uo pipefail
src="$(cd "$1" && pwd)"
command -v python3 >/dev/null || { echo "skip: python3 not installed"; exit 77; }
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
before="$(ls -A "$src")"
failed=0
fail() { echo "FAIL: $*" >&2; failed=1; }

# ---- the stand-ins: every call is logged as "NAME ARGS..." into $T/calls.log ----
mkdir -p "$T/bin" "$T/shared/models" "$T/shared/data/imagenet-sample"
: >"$T/shared/models/mobilenet_v2_imagenet.onnx"
: >"$T/shared/models/resnet20_cifar10.onnx"
for i in 1 2 3; do : >"$T/shared/data/imagenet-sample/img$i.jpg"; done
# stub NAME BODY: an executable NAME in DIR ($STUB_DIR) that logs its call, then runs BODY
stub() {
    {
        echo '#!/usr/bin/env bash'
        echo "echo \"$1 \$*\" >>\"$T/calls.log\""
        printf '%s\n' "$2"
    } >"$STUB_DIR/$1"
    chmod +x "$STUB_DIR/$1"
}
STUB_DIR="$T/bin"
stub cmake '[ "${1:-}" = --version ] && echo "cmake version 4.0.0"; exit 0'
stub nvidia-smi 'echo "Stand-in GPU, 81559 MiB, 580.00"'
stub nvcc 'echo "Cuda compilation tools, release 13.0"; echo "Build stand-in"'
stub compute-sanitizer 'echo "========= ERROR SUMMARY: 0 errors"'
# nsys: "stats ... --output PREFIX" writes PREFIX_cuda_gpu_kern_sum.csv
stub nsys 'if [ "$1" = stats ]; then
    while [ $# -gt 0 ]; do [ "$1" = --output ] && o="$2"; shift; done
    printf "%s\n" "Time (%),Total Time (ns),Instances,Name" "61.5,4000000,53,stand_in_conv_kernel" >"${o}_cuda_gpu_kern_sum.csv"
fi'
# python for the peers (PYTHON): prints made-up lines in the peers' format
stub fakepy 'script="$(basename "$1")"; shift
models=resnet50; prec=""; comp=false
while [ $# -gt 0 ]; do
    case "$1" in
        --models) models="$2"; shift ;;
        --precisions) prec="$2"; shift ;;
        --compile) comp=true ;;
        --modes) prec="$2"; shift ;;
    esac
    shift
done
case "$script" in
    export_torchvision.py) exit 0 ;;
    gpu_python_check.py)
        [ -n "$EGCAM_LIBRARY" ] && [ -f "$EGCAM_LIBRARY" ] || { echo "no EGCAM_LIBRARY" >&2; exit 1; }
        echo "{\"check\": \"python-vs-tool\", \"method\": \"gradcam\", \"precision\": \"fp32\", \"images\": 16, \"bit_identical\": 16, \"ok\": true}" ;;
    torch_forward.py)
        for m in ${models//,/ }; do for p in ${prec:-fp32,fp16}; do for q in ${p//,/ }; do
            echo "{\"bench\": \"forward\", \"backend\": \"pytorch-stand-in\", \"device\": \"Stand-in GPU\", \"model\": \"$m\", \"method\": \"classify\", \"precision\": \"$q\", \"batch\": 256, \"images_per_s\": 1000.0, \"pinned\": true, \"compiled\": $comp}"
        done; done; done ;;
    gradcam_torch.py)
        for m in ${models//,/ }; do
            echo "{\"bench\": \"explain\", \"backend\": \"pytorch-gradcam-stand-in\", \"device\": \"Stand-in GPU\", \"model\": \"$m\", \"method\": \"gradcam\", \"precision\": \"fp32-tf32\", \"batch\": 64, \"samples\": 1, \"images_per_s\": 100.0}"
        done ;;
    egc_expert.py|egc_naive.py)
        for m in ${models//,/ }; do
            echo "{\"bench\": \"explain\", \"backend\": \"pytorch-expert-stand-in\", \"device\": \"Stand-in GPU\", \"model\": \"$m\", \"method\": \"expected-gradcam\", \"precision\": \"fp32-tf32\", \"batch\": 32, \"samples\": 32, \"images_per_s\": 10.0, \"mode\": \"${prec:-naive}\"}"
        done ;;
    *) echo "fakepy: unknown script $script" >&2; exit 1 ;;
esac'
# the export stand-in needs to write the models: a wrapper that does, then calls fakepy
mv "$T/bin/fakepy" "$T/bin/fakepy.real"
cat >"$T/bin/fakepy" <<EOF
#!/usr/bin/env bash
if [ "\$(basename "\$1")" = export_torchvision.py ]; then
    d="\$2"; mkdir -p "\$d"
    m="\$(printf '%s\n' "\$@" | sed -n '/^--models\$/{n;p}')"
    for x in \${m//,/ }; do : >"\$d/\$x.onnx"; done
fi
exec "$T/bin/fakepy.real" "\$@"
EOF
chmod +x "$T/bin/fakepy"

# the built binaries (BUILD_DIR): made by the test, as the cmake stand-in builds nothing
make_build() {
    local B="$1"
    mkdir -p "$B"
    STUB_DIR="$B"
    # egcam_cuda_tests: a GoogleTest JSON report; with STUB_FAIL set, one test fails unless
    # EGC_CUDA_HALF_FUSED=0 (a knob that "fixes" it)
    stub egcam_cuda_tests 'out=""
for a in "$@"; do case "$a" in --gtest_output=json:*) out="${a#--gtest_output=json:}" ;; esac; done
fail=0
[ -n "${STUB_FAIL:-}" ] && [ "${EGC_CUDA_HALF_FUSED:-}" != 0 ] && fail=1
if [ -n "$out" ]; then
    if [ $fail = 1 ]; then f="\"failures\": [{\"failure\": \"stand-in\"}]"; else f="\"result\": \"COMPLETED\""; fi
    echo "{\"testsuites\": [{\"name\": \"CudaMethodsResNet20\", \"testsuite\": [{\"name\": \"MergedCleanRowsGiveTheSeparatePassMaps\", $f}, {\"name\": \"Other\", \"result\": \"SKIPPED\"}]}]}" >"$out"
fi
exit $fail'
    stub egcam_tests 'for a in "$@"; do case "$a" in --gtest_output=json:*)
    echo "{\"testsuites\": [{\"name\": \"Cpu\", \"testsuite\": [{\"name\": \"T\", \"result\": \"COMPLETED\"}]}]}" >"${a#--gtest_output=json:}" ;; esac; done'
    # egcam: info; classify keeps its "choices" in $EGC_CACHE_DIR/cuda_choices.bin and says
    # "choice kept" (EGC_VERBOSE) once the file exists; explain writes a map per input (with
    # STUB_MAPS_DIFFER, a different one each run) and a manifest line each; check passes
    stub egcam 'cmd="$1"; shift
case "$cmd" in
    info) echo "cuda:0  Stand-in GPU" ;;
    classify)
        if [ -s "$EGC_CACHE_DIR/cuda_choices.bin" ]; then echo "conv 1: choice kept" >&2
        else mkdir -p "$EGC_CACHE_DIR" && echo choices >"$EGC_CACHE_DIR/cuda_choices.bin"; fi
        echo "{\"class\": 1}" ;;
    explain)
        out=""; ins=()
        while [ $# -gt 0 ]; do
            case "$1" in
                --out) out="$2"; shift ;;
                --model|--preset|--method|--samples|--samples-tol|--device|--precision|--batch|--save) shift ;;
                -*) ;;
                *) ins+=("$1") ;;
            esac
            shift
        done
        mkdir -p "$out" || exit 3
        for d in "${ins[@]}"; do for f in "$d"/*; do
            s="$(basename "$f" .jpg)"
            echo "map ${STUB_MAPS_DIFFER:+$RANDOM}" >"$out/$s.npy"
            echo "{\"input\": \"$f\", \"samples\": 32}" >>"$out/manifest.jsonl"
        done; done ;;
    check) echo "{\"ok\": true}" ;;
    *) exit 2 ;;
esac'
    stub bench_forward 'm=""; p=fp32; pin=false
while [ $# -gt 0 ]; do
    case "$1" in --model) m="$(basename "$2")"; shift ;; --precision) p="$2"; shift ;; --pinned) pin=true ;; esac
    shift
done
for q in ${p//,/ }; do
    echo "{\"bench\": \"forward\", \"backend\": \"cuda\", \"device\": \"cuda:0 (Stand-in GPU)\", \"model\": \"$m\", \"method\": \"classify\", \"precision\": \"$q\", \"pinned\": $pin, \"batch\": 256, \"images_per_s\": 2000.0, \"peak_device_bytes\": 1073741824, \"setup_ms\": 100.0, \"first_ms\": 200.0, \"cuda_env\": \"\"}"
done'
    stub bench_explain 'm=""; p=fp32; meths=""; rows=0; eb=32; gb=64
while [ $# -gt 0 ]; do
    case "$1" in
        --model) m="$(basename "$2")"; shift ;; --precision) p="$2"; shift ;;
        --methods) meths="$2"; shift ;; --rows) rows="$2"; shift ;;
        --expected-batch) eb="$2"; shift ;; --gradcam-batch) gb="$2"; shift ;;
    esac
    shift
done
for me in ${meths//,/ }; do for q in ${p//,/ }; do
    b=$gb; s=1; r=$gb; [ "$me" = expected-gradcam ] && { b=$eb; s=32; r=$rows; }
    echo "{\"bench\": \"explain\", \"backend\": \"cuda\", \"device\": \"cuda:0 (Stand-in GPU)\", \"model\": \"$m\", \"method\": \"$me\", \"precision\": \"$q\", \"batch\": $b, \"samples\": $s, \"images_per_s\": 50.0, \"peak_device_bytes\": 1073741824, \"rows_per_pass\": $r, \"setup_ms\": 100.0, \"first_ms\": 300.0, \"cuda_env\": \"\"}"
done; done'
    : >"$B/libegcam.so"
    STUB_DIR="$T/bin"
}

# run_check NAME [VAR=VALUE ...]: tools/gpu_check.sh with the stand-ins, output in $T/NAME
run_check() {
    local name="$1"
    shift
    make_build "$T/$name/build"
    : >"$T/calls.log"
    env PATH="$T/bin:$PATH" OUT="$T/$name/out" BUILD_DIR="$T/$name/build" PYTHON="$T/bin/fakepy" \
        JOBS=1 "$@" bash "$src/tools/gpu_check.sh" "$T/shared" >"$T/$name/stdout" 2>&1 ||
        fail "$name: gpu_check.sh exited $?"
    cp "$T/calls.log" "$T/$name/calls.log"
}
# steps NAME: the step names of a run, in order, one line
steps() { python3 -c 'import json,sys; print(" ".join(json.loads(l)["step"] for l in open(sys.argv[1])))' "$T/$1/out/gpu_check.jsonl"; }
# status NAME STEP: that step's status
status() { python3 -c 'import json,sys; print(" ".join(d["status"] for d in map(json.loads, open(sys.argv[1])) if d["step"] == sys.argv[2]))' "$T/$1/out/gpu_check.jsonl" "$2"; }
# no_failures NAME [STEP...]: no step failed or timed out but the STEPs given
no_failures() {
    local name="$1" bad
    shift
    bad="$(python3 -c 'import json,sys; print(" ".join(d["step"] for d in map(json.loads, open(sys.argv[1])) if d["status"] in ("fail", "timeout") and d["step"] not in sys.argv[2:] + ["total"]))' "$T/$name/out/gpu_check.jsonl" "$@")"
    [ -z "$bad" ] || fail "$name: failing steps: $bad ($(grep -F '"fail"' "$T/$name/out/gpu_check.jsonl" | head -c 600))"
}
# called NAME TOOL PATTERN: some call of TOOL had arguments matching the extended regex
called() { grep -qE "^$2 .*$3" "$T/$1/calls.log" || fail "$1: no call of $2 matching: $3"; }
has() { grep -qF -- "$2" "$T/$1/out/summary.md" || fail "$1: summary lacks: $2"; }

# ---- DONE=1: what the open issues' done-when asks ----
run_check done DONE=1
want="machine configure build_tests build_all cuda_tests cuda_tests_summary cpu_tests memcheck info choice_cache egcam_check export_torchvision tv_parity tv_parity_summary"
for m in vgg16 resnet50 alexnet mobilenet_v2_imagenet; do want+=" bench_forward_${m}_fp32 bench_forward_${m}_mixed"; done
want+=" bench_torch bench_explain_resnet50 bench_explain_vgg16 bench_explain_alexnet bench_explain_rows bench_gradcam_torch bench_egc_expert bench_torch_compiled_all bench_egc_expert_compile python_module total"
got="$(steps done)"
[ "$got" = "$want" ] || fail "done: steps
  got:  $got
  want: $want"
no_failures done
[ "$(status done total)" = ok ] || fail "done: total is not ok"
[ "$(status done cpu_tests)" = skipped ] || fail "done: cpu tests not skipped"
called done egcam_cuda_tests '--gtest_output=json:.*/cuda_tests.json'
called done egcam_cuda_tests "--gtest_filter=CudaModelTorchvision\\*"
called done fakepy 'export_torchvision.py .* --models (alexnet|resnet50|vgg16),(alexnet|resnet50|vgg16),(alexnet|resnet50|vgg16)'
for m in vgg16 resnet50 alexnet; do
    for p in fp32 mixed; do called done bench_forward "--model .*/$m.onnx --device cuda --batch 256 .*--precision $p --pinned"; done
    called done bench_explain "--model .*/$m.onnx --device cuda --methods gradcam,expected-gradcam --gradcam-batch 64 --expected-batch 32 --samples 32 --rows 128 --precision fp32,mixed .*--pinned"
done
called done bench_explain '--methods expected-gradcam --expected-batch 32 --samples 32 --rows 264 --precision mixed .*--pinned'
[ "$(grep -c '^bench_explain .*--rows 264' "$T/done/calls.log")" = 2 ] || fail "done: expected two 264-row variants"
called done fakepy 'torch_forward.py --models vgg16,resnet50,alexnet --batch 256 --repeats 10 --pinned'
called done fakepy 'torch_forward.py --models vgg16,resnet50,alexnet --precisions fp16 --batch 256 --repeats 10 --pinned --compile'
called done fakepy 'gradcam_torch.py --models resnet50,vgg16,alexnet --precisions fp32,fp16 --batch 64 .*--pinned'
called done fakepy 'egc_expert.py --models resnet50,vgg16,alexnet --batch 32 --samples 32 --rows 128 --modes eager-fp32,eager-fp16'
called done fakepy 'egc_expert.py --models resnet50 --batch 32 --samples 32 --rows 128 --modes compile-fp16'
called done egcam 'classify .*--device cuda --precision mixed'
[ "$(grep -c '^egcam explain' "$T/done/calls.log")" = 2 ] || fail "done: the choice cache step should explain twice"
[ "$(grep -c '^egcam check --device cuda --precision \(fp32\|mixed\) --json' "$T/done/calls.log")" = 4 ] ||
    fail "done: egcam check should run 4 times (2 models, fp32 and mixed)"
grep -q '^compute-sanitizer' "$T/done/calls.log" && fail "done: memcheck ran although DONE=1 leaves it out"
[ "$(wc -l <"$T/done/out/bench.jsonl")" -ge 14 ] || fail "done: bench.jsonl holds too few lines"
[ -s "$T/done/out/bench_explain.jsonl" ] || fail "done: no bench_explain.jsonl"
called done fakepy ".*tools/gpu_python_check.py $T/shared .*/egcam$"
grep -q '"check": "python-vs-tool"' "$T/done/out/python_check.jsonl" 2>/dev/null || fail "done: no python_check.jsonl"
has done "## Python module"
has done "| resnet50 | egcam | mixed | 256 |"
has done "expected-gradcam"
grep -q "gpu_check: 0 failing step(s)" "$T/done/stdout" || fail "done: the last line does not say 0 failing steps"
# ---- QUICK=1: the goals' essentials (ResNet-50 only; the side-by-side variants, profile,
# command line and VGG16 workspace steps) ----
run_check quick QUICK=1
got="$(steps quick)"
for s in cuda_tests tv_parity bench_forward_resnet50_fp32 bench_forward_resnet50_mixed bench_forward_pinned \
    bench_forward_fusion bench_torch_pinned bench_torch_compiled bench_explain_resnet50 bench_explain_rows \
    bench_explain_pinned bench_gradcam_torch_pinned bench_egc_naive kernel_profile_resnet50_mixed \
    bench_cli_explain export_vgg16 bench_forward_vgg16_ws total; do
    case " $got " in *" $s "*) ;; *) fail "quick: no step $s in: $got" ;; esac
done
case " $got " in *" bench_explain_vgg16 "*) fail "quick: VGG16 explained although QUICK=1 is ResNet-50 only" ;; esac
no_failures quick
[ "$(grep -c '^bench_explain .*--rows' "$T/quick/calls.log")" -ge 3 ] || fail "quick: too few pass-size variants"
grep -q '"bench": "kernel-profile"' "$T/quick/out/bench.jsonl" || fail "quick: no kernel-profile line"
[ "$(grep -c '"bench": "cli-explain"' "$T/quick/out/bench_cli.jsonl" 2>/dev/null)" = 4 ] ||
    fail "quick: expected four cli-explain lines"
[ -d "$T/quick/build/tmp/cli-explain" ] && fail "quick: the command-line step left its output"

# ---- the whole check (no profile): CPU tests and compute-sanitizer too ----
run_check full PROFILE=0 VGG_WS=0 EXPLAIN_MODELS=resnet50 TV_MODELS=resnet50
for s in cpu_tests memcheck; do
    [ "$(status full $s)" = ok ] || fail "full: $s is not ok: $(status full $s)"
done
called full compute-sanitizer "--tool memcheck --error-exitcode 3 --leak-check no .*egcam_cuda_tests --gtest_filter=.*CudaMethodsEntries"
no_failures full cpu_tests

# ---- failures are recorded, the rest goes on: a failing CUDA test (run again under each
# knob), maps that differ between the choice-cache runs ----
run_check broken DONE=1 STUB_FAIL=1 STUB_MAPS_DIFFER=1
[ "$(status broken cuda_tests)" = fail ] || fail "broken: cuda_tests not failed"
[ "$(status broken choice_cache)" = fail ] || fail "broken: choice_cache not failed"
grep -q "run 2 maps differ from run 1" "$T/broken/out/gpu_check.jsonl" || fail "broken: choice_cache gives no reason"
no_failures broken cuda_tests choice_cache "cuda_tests_EGC_CUDA_WS_DATA=0" "cuda_tests_EGC_CUDA_PAD_C=8" \
    "cuda_tests_EGC_CUDA_FUSE=0" tv_parity
python3 - "$T/broken/out/gpu_check.jsonl" <<'EOF' || fail "broken: knob lines"
import json, sys
knobs = {d["knob"]: d["summary"]["failures"] for d in map(json.loads, open(sys.argv[1]))
         if d["step"] == "cuda_tests_knob"}
want = {"EGC_CUDA_WS_DATA=0": 1, "EGC_CUDA_PAD_C=8": 1, "EGC_CUDA_HALF_FUSED=0": 0, "EGC_CUDA_FUSE=0": 1}
if knobs != want:
    sys.exit("knob failures %r, want %r" % (knobs, want))
EOF
[ "$(status broken bench_egc_expert_compile)" = ok ] || fail "broken: the steps after the failures did not run"
[ "$(status broken total)" = fail ] || fail "broken: total not fail"
has broken "CudaMethodsResNet20.MergedCleanRowsGiveTheSeparatePassMaps"

# ---- DEADLINE: no step starts past it ----
run_check past DONE=1 DEADLINE=0
python3 - "$T/past/out/gpu_check.jsonl" <<'EOF' || fail "past: a step ran after DEADLINE"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ran = [d["step"] for d in rows if d["status"] in ("ok", "fail", "timeout") and d["step"] != "total"]
if ran:
    sys.exit("ran after the deadline: %s" % ran)
if not any(d.get("reason", "").startswith("DEADLINE") for d in rows):
    sys.exit("no step says DEADLINE")
EOF

# ---- tools/gpu_focus.sh: the selected tests twice, then once under each knob given ----
make_build "$T/focus/build"
: >"$T/calls.log"
env PATH="$T/bin:$PATH" OUT="$T/focus/out" BUILD_DIR="$T/focus/build" REPEAT=2 \
    bash "$src/tools/gpu_focus.sh" "$T/shared" 'CudaMethods*' EGC_MERGE_CLEAN=0 >"$T/focus.stdout" 2>&1 ||
    fail "focus: gpu_focus.sh exited $?"
python3 - "$T/focus/out/focus.jsonl" <<'EOF' || fail "focus: runs"
import json, sys
runs = [(d["run"], d["rc"]) for d in map(json.loads, open(sys.argv[1]))]
want = [("configure", 0), ("build", 0), ("as is x2", 0), ("EGC_MERGE_CLEAN=0", 0)]
if runs != want:
    sys.exit("runs %r, want %r" % (runs, want))
EOF
grep -qE "^egcam_cuda_tests --gtest_filter=CudaMethods\* --gtest_repeat=2$" "$T/calls.log" ||
    fail "focus: the tests were not run as selected"

[ "$(ls -A "$src")" = "$before" ] || fail "files or folders left beside the sources"
[ $failed -eq 0 ] && echo "gpu_check: ok"
exit $failed
