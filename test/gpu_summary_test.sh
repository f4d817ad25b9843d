#!/usr/bin/env bash
# gpu_summary_test.sh: tools/gpu_summary.py on a recorded GPU run (benchmarks/results/) and on
# a made-up gpu_check folder: the goal lines, the forward and explanation tables, the failed
# steps and test names, the Python module's checks, and exit code 2 for a missing path. Exit 77 (skipped) without python3.
#   test/gpu_summary_test.sh SOURCE_DIR
set -uo pipefail
src="$1"
command -v python3 >/dev/null || { echo "skip: python3 not installed"; exit 77; }
tool="$src/tools/gpu_summary.py"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=0
has() { grep -qF -- "$1" "$work/out" || { echo "FAIL: summary lacks: $1" >&2; failed=1; }; }

python3 "$tool" "$src/benchmarks/results/h100-2026-11-26b.jsonl" >"$work/out" || failed=1
has "best 397 images/s (128 rows per pass, 1.91 GiB, defaults); goal 800 in at most 3 GiB"
has "Grad-CAM, 64 images: best 3,474 images/s (ordinary memory); goal 25,000."
has "| resnet50 | egcam | mixed | 256 |  | 8,076 | 3.16 |  |"
has "| resnet50 | pytorch-2.11.0+cu130 | fp16-autocast-nhwc | 256 |  | 6,213 | 1.52 |  |"
has "| resnet50 | expected-gradcam | mixed | 32 | 3.2 | 2.6 | 7.8 | 1.4 | 61.3 |"

python3 "$tool" "$src/benchmarks/results/h200-2026-11-27.jsonl" >"$work/out" || failed=1
has "## The issues' tables (cuda:0 (NVIDIA H200 (sm_90, 139.8 GiB)))"
has "| resnet50 | 7,031 (3.54 GiB) | 18,546 (1.71 GiB) | 6,887 (2.76 GiB) | 12,413 (1.52 GiB) | 18,824 (1.14 GiB) |"
has "| resnet50 | Grad-CAM, batch 64 | 4,943 (1.12 GiB) | 9,293 (0.83 GiB) | pytorch-grad-cam style: fp32 1,871 (5.40 GiB); fp16 2,417 (3.06 GiB) |"
has "| resnet50 | Expected Grad-CAM, S = 32, batch 32 | 207 (2.31 GiB, 128 rows) | 514 (2.41 GiB, 256 rows) | expert eager fp32 205 (1.60 GiB); eager fp16 363 (0.94 GiB); compiled fp16 540 (0.74 GiB); naive 68 (83.47 GiB) |"
has "This card: \`torch.compile\` ResNet-50 fp16 forward 18,824 images/s, 0.75 of the 25,262 of PERFORMANCE.md's H200; the goals scaled by that: Expected Grad-CAM 596, Grad-CAM 18,629 images/s."
has "The compiled expert Expected Grad-CAM peer here: 540 images/s (0.70 of its 769 there)."

mkdir -p "$work/run"
cat >"$work/run/gpu_check.jsonl" <<'JSON'
{"step": "cuda_tests", "status": "fail", "rc": 1, "seconds": 80, "tail": "x\n[  FAILED  ] 1 test"}
{"step": "cuda_tests_summary", "status": "info", "rc": 0, "seconds": 0, "summary": {"tests": 90, "failures": 1, "skipped": 3, "failed": ["CudaX.Y"]}}
{"step": "memcheck", "status": "skipped", "rc": 0, "seconds": 0, "reason": "SKIP_SANITIZER=1"}
{"step": "total", "status": "fail", "rc": 1, "seconds": 500, "failed_steps": 1}
JSON
echo 'not json' >>"$work/run/gpu_check.jsonl"
cat >"$work/run/bench.jsonl" <<'JSON'
{"bench": "forward", "backend": "cuda", "device": "cuda:0 (X)", "model": "resnet50.onnx", "precision": "mixed", "batch": 256, "images_per_s": 19000.0, "peak_device_bytes": 2147483648, "setup_ms": 250.0, "first_ms": 1500.0, "cuda_env": "EGC_CUDA_GRAPH_API=1"}
JSON
cat >"$work/run/python_check.jsonl" <<'JSON'
{"check": "python-gpu-vs-cpu", "method": "expected-gradcam", "precision": "mixed", "device": "cuda:0 (X)", "images": 16, "min_pearson": 0.9987, "max_abs": 0.012, "same_classes": true, "ok": true}
{"check": "python-vs-tool", "method": "gradcam", "precision": "fp32", "images": 16, "bit_identical": 15, "ok": false}
JSON
python3 "$tool" "$work/run" >"$work/out" || failed=1
has "Total: 500 s, 1 failing step(s)."
has "cuda_tests: 90 tests, 1 failures, 3 skipped: CudaX.Y"
has "**cuda_tests fail** (rc 1, 80 s): \`[  FAILED  ] 1 test\`"
has "skipped: memcheck (SKIP_SANITIZER=1)"
has "| resnet50 | egcam | mixed | 256 | EGC_CUDA_GRAPH_API=1 | 19,000 | 2.00 | 1.75 |"
has "| expected-gradcam | mixed | GPU vs CPU | min Pearson 0.9987, max abs diff 0.012, classes same | ok |"
has "| gradcam | fp32 | module vs egcam explain | 15 of 16 maps bit-identical | **FAIL** |"
if grep -qF "**total" "$work/out"; then echo "FAIL: the total line listed as a failing step" >&2; failed=1; fi

python3 "$tool" "$work/none" >/dev/null 2>"$work/err"
[ $? -eq 2 ] || { echo "FAIL: missing path: expected exit 2" >&2; failed=1; }
grep -qF "no such file or folder" "$work/err" || { echo "FAIL: missing path: no message" >&2; failed=1; }
[ $failed -eq 0 ] && echo "gpu_summary: ok"
exit $failed
