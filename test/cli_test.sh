#!/usr/bin/env bash
# cli_test.sh EGCAM SHARED_DIR WORK_DIR: end-to-end checks of the egcam command line on the
# shared models and images: help texts, explain outputs (maps, overlays, manifest, gallery),
# overlay placement on the original photo, and the documented exit codes and error messages
# for user mistakes. Registered with ctest (label cpu).
set -uo pipefail
egcam="$1"
shared="$2"
work="$3"
rm -rf "$work"
mkdir -p "$work"
passed=0
failed=0

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
# expect RC DESCRIPTION -- COMMAND...: runs the command (stderr to $work/err), checks its
# exit code.
expect() {
  local want="$1" what="$2"
  shift 3
  "$@" >"$work/out" 2>"$work/err"
  local got=$?
  if [ "$got" -eq "$want" ]; then ok; else bad "$what: exit $got, expected $want"; sed 's/^/  | /' "$work/err" >&2; fi
  # Under ASan/UBSan builds a report can hide behind an expected non-zero exit code.
  if grep -q "Sanitizer\|runtime error:" "$work/err"; then bad "$what: sanitizer report"; sed 's/^/  | /' "$work/err" >&2; fi
}
# err_has TEXT DESCRIPTION: the last command's stderr contains TEXT.
err_has() { if grep -qF -- "$1" "$work/err"; then ok; else bad "$2: stderr lacks '$1'"; sed 's/^/  | /' "$work/err" >&2; fi; }
file_ok() { if [ -s "$1" ]; then ok; else bad "missing or empty: $1"; fi; }
no_file() { if [ ! -e "$1" ]; then ok; else bad "should not exist: $1"; fi; }
# Width and height of a PNG (from its IHDR) and of a BMP (from its header).
png_size() { echo "$(od -An -tu1 -j16 -N8 "$1" | awk '{print $1*16777216+$2*65536+$3*256+$4 "x" $5*16777216+$6*65536+$7*256+$8}')"; }
bmp_size() { od -An -td4 -j18 -N8 "$1" | awk '{h=$2<0?-$2:$2; print $1 "x" h}'; }

resnet="$shared/models/resnet20_cifar10.onnx"
mnv1="$shared/models/mobilenet_v1_025_128_imagenet.onnx"
cats="$work/cats"
mkdir -p "$cats"
for f in $(ls "$shared/data/cifar10-test/cat" | sort | head -3); do cp "$shared/data/cifar10-test/cat/$f" "$cats/"; done
stems=$(ls "$cats" | sed 's/\.[^.]*$//')

# ---- help texts: complete, with examples and exit codes ----
expect 0 "egcam --help" -- "$egcam" --help
grep -q "exit codes" "$work/out" && ok || bad "egcam --help lacks the exit codes"
for cmd in info classify explain "refs build" check; do
  # shellcheck disable=SC2086
  expect 0 "egcam $cmd --help" -- "$egcam" $cmd --help
  grep -q "example" "$work/out" && ok || bad "egcam $cmd --help has no example"
  grep -q "exit codes" "$work/out" && ok || bad "egcam $cmd --help lacks the exit codes"
  grep -q -- "--quiet" "$work/out" && ok || bad "egcam $cmd --help lacks --quiet"
done
expect 2 "no command" -- "$egcam"
expect 2 "unknown command" -- "$egcam" frobnicate

# ---- explain: two methods, overlays, gallery ----
out="$work/explain"
expect 0 "explain with a gallery" -- "$egcam" explain --model "$resnet" \
  --method gradcam,gradcampp --gallery -q --out "$out" "$cats"
for m in gradcam gradcampp; do
  for s in $stems; do
    file_ok "$out/$m/$s.npy"
    file_ok "$out/$m/${s}_overlay.png"
    [ "$(png_size "$out/$m/${s}_overlay.png")" = "32x32" ] && ok || bad "$m/$s overlay is not 32x32"
  done
done
file_ok "$out/index.html"
[ "$(wc -l < "$out/manifest.jsonl")" -eq 6 ] && ok || bad "manifest should have 6 lines"
[ "$(grep -c '"status": "ok"' "$out/manifest.jsonl")" -eq 6 ] && ok || bad "manifest: not all ok"
[ "$(grep -c '"overlay": ' "$out/manifest.jsonl")" -eq 6 ] && ok || bad "manifest: overlay paths"
# The gallery: a header row plus one row per input, every linked file present.
[ "$(grep -o '<tr>' "$out/index.html" | wc -l)" -eq 4 ] && ok || bad "gallery: expected 4 rows"
head -1 "$out/index.html" | grep -q '<!DOCTYPE html>' && ok || bad "gallery: no doctype"
if grep -q 'http' "$out/index.html"; then bad "gallery refers to remote resources"; else ok; fi
for f in $(grep -o 'src="[^"]*"' "$out/index.html" | sed 's/src="//; s/"$//' | sort -u); do
  file_ok "$out/$f"
done

# ---- overlays over the original photo keep its size; --save npy writes no overlay ----
photo="$shared/data/photos/bird.bmp"
out2="$work/original"
expect 0 "explain --overlay-on original" -- "$egcam" explain --model "$mnv1" --preset tf \
  --method gradcam --overlay-on original --colormap viridis --overlay-alpha 0.7 -q \
  --out "$out2" "$photo"
[ "$(png_size "$out2/bird_overlay.png")" = "$(bmp_size "$photo")" ] && ok \
  || bad "original overlay $(png_size "$out2/bird_overlay.png") != photo $(bmp_size "$photo")"
out3="$work/npyonly"
expect 0 "explain --save npy" -- "$egcam" explain --model "$resnet" --method gradcam \
  --save npy --overlay-format jpg -q --out "$out3" "$cats"
for s in $stems; do file_ok "$out3/$s.npy"; no_file "$out3/${s}_overlay.png"; no_file "$out3/${s}_overlay.jpg"; done
if grep -q '"overlay"' "$out3/manifest.jsonl"; then bad "--save npy manifest has overlays"; else ok; fi
# a preset of your own: ImageNet's mean and std written out give the same maps as cifar; the
# manifest records its canonical form; a bad one is a usage error naming the key
custom="cifar:mean=0.485,0.456,0.406:std=0.229,0.224,0.225"
expect 0 "explain with a preset of your own" -- "$egcam" explain --model "$resnet" --method gradcam \
  --preset "$custom" --save npy -q --out "$work/custom_preset" "$cats"
for s in $stems; do cmp -s "$work/custom_preset/$s.npy" "$out3/$s.npy" && ok || bad "$s.npy differs with $custom"; done
grep -qF "\"preset\": \"cifar:mean=0.485000014,0.456,0.405999988:std=0.229000002,0.224000007,0.224999994\"" "$work/custom_preset/manifest.jsonl" && ok || bad "custom preset manifest: $(head -c 400 "$work/custom_preset/manifest.jsonl")"
expect 0 "explain with a BGR preset" -- "$egcam" explain --model "$resnet" --method gradcam \
  --preset "cifar:bgr" --save npy -q --out "$work/bgr_preset" "$cats"
n_same=0; for s in $stems; do cmp -s "$work/bgr_preset/$s.npy" "$out3/$s.npy" && n_same=$((n_same + 1)); done
[ "$n_same" -eq 0 ] && ok || bad "BGR preset: $n_same maps as with RGB"
expect 2 "a preset of your own with a bad key" -- "$egcam" classify --model "$resnet" --preset "cifar:scale=2" "$cats"
err_has "'scale=2' is not mean=.., std=.. or bgr" "a preset of your own with a bad key"
out4="$work/jpg"
expect 0 "explain --overlay-format jpg" -- "$egcam" explain --model "$resnet" --method gradcam \
  --save overlay --overlay-format jpg -q --out "$out4" "$cats"
for s in $stems; do
  file_ok "$out4/${s}_overlay.jpg"
  no_file "$out4/$s.npy"
  [ "$(od -An -tx1 -N2 "$out4/${s}_overlay.jpg" | tr -d ' ')" = "ffd8" ] && ok || bad "$s: not a JPEG"
done

# ---- BLAS kernels: egcam info names them; where OpenBLAS falls back to its SSE3 kernels on a
# CPU with AVX2 and FMA, egcam runs with better ones (EGC_BLAS_AUTO=0 keeps the fallback) ----
expect 0 "egcam info" -- "$egcam" info
grep -q "OpenBLAS [A-Za-z0-9]* kernels" "$work/out" && ok || bad "egcam info names no BLAS kernels: $(cat "$work/out")"
auto_core=$(sed -n 's/.*OpenBLAS \([A-Za-z0-9]*\) kernels.*/\1/p' "$work/out" | head -n 1)
EGC_BLAS_AUTO=0 "$egcam" info >"$work/out" 2>"$work/err"
plain_core=$(sed -n 's/.*OpenBLAS \([A-Za-z0-9]*\) kernels.*/\1/p' "$work/out" | head -n 1)
if [ -z "${OPENBLAS_CORETYPE:-}" ] && [ "$plain_core" = Prescott ] && grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
  [ "$auto_core" = SkylakeX ] || [ "$auto_core" = Haswell ] && ok || bad "fallback kernels not replaced: $auto_core"
else
  [ "$auto_core" = "$plain_core" ] && ok || bad "kernels changed without a fallback: $plain_core -> $auto_core"
fi

# ---- --samples-tol: adaptive counts recorded per input; bad values are usage errors ----
out_ad="$work/adaptive"
expect 0 "explain --samples-tol" -- "$egcam" explain --model "$resnet" --method expected-gradcam \
  --samples 24 --samples-tol 2 --samples-round 4 --save npy -q --out "$out_ad" "$cats"
# a tolerance of 2 is met by every step: each input stops after three rounds of 4
[ "$(grep -c '"samples": 12, "samples_max": 24, "samples_tol": 2, "samples_round": 4' "$out_ad/manifest.jsonl")" = 3 ] \
  && ok || bad "--samples-tol manifest: $(head -c 600 "$out_ad/manifest.jsonl")"
expect 2 "--samples-tol negative" -- "$egcam" explain --model "$resnet" --method expected-gradcam \
  --samples-tol -1 --out "$work/adbad" "$cats"
err_has "samples-tol" "--samples-tol negative"
expect 2 "--samples-tol with stratified alphas" -- "$egcam" explain --model "$resnet" \
  --method expected-gradcam --samples-tol 0.05 --alpha stratified --out "$work/adbad" "$cats"
err_has "--alpha uniform" "--samples-tol with stratified alphas"
expect 0 "--samples-tol with grid alphas for a method that draws nothing" -- "$egcam" explain \
  --model "$resnet" --method gradcam --samples-tol 0.05 --alpha grid --save npy -q \
  --out "$work/adgrid" "$cats"
expect 2 "sweep: --samples-tol with stratified alphas" -- "$egcam" sweep --model "$resnet" \
  --methods 'expected-gradcam:alpha=stratified:samples-tol=0.05' --metrics sparseness \
  --out "$work/swbad" "$cats"
err_has "needs --alpha uniform" "sweep: --samples-tol with stratified alphas"

# ---- --alpha stratified: recorded in the manifest ----
expect 0 "explain --alpha stratified" -- "$egcam" explain --model "$resnet" \
  --method expected-gradcam --samples 8 --alpha stratified --save npy -q --out "$work/strat" "$cats"
[ "$(grep -c '"alpha": "stratified"' "$work/strat/manifest.jsonl")" = 3 ] && ok \
  || bad "--alpha stratified manifest: $(head -c 400 "$work/strat/manifest.jsonl")"
expect 2 "bad --alpha" -- "$egcam" explain --model "$resnet" --method expected-gradcam \
  --alpha sobol --out "$work/strat2" "$cats"
err_has "stratified" "bad --alpha lists the choices"

# ---- --max-memory: a batch that does not fit runs in smaller passes, same maps ----
out5="$work/capped"
expect 0 "explain --max-memory" -- "$egcam" explain --model "$resnet" --method gradcam \
  --save npy --batch 32 --max-memory 3Mi -v --out "$out5" "$cats"
err_has "split into passes of" "explain --max-memory --verbose"
for s in $stems; do cmp -s "$out5/$s.npy" "$out3/$s.npy" && ok || bad "$s.npy differs under --max-memory"; done
expect 0 "classify --max-memory" -- "$egcam" classify --model "$resnet" --batch 16 \
  --max-memory 1.4MiB -v -q --top 1 "$cats"
err_has "batch 3 split into passes of" "classify --max-memory --verbose"
expect 2 "bad --max-memory" -- "$egcam" explain --model "$resnet" --method gradcam --max-memory 2Q --out "$work/e" "$cats"
err_has "--max-memory '2Q'" "bad --max-memory"
expect 2 "bad --max-memory (classify)" -- "$egcam" classify --model "$resnet" --max-memory -1G "$cats"
expect 2 "bad --max-memory (sweep)" -- "$egcam" sweep --model "$resnet" --methods gradcam --metrics complexity --max-memory 0 --out "$work/e" "$cats"
expect 3 "--max-memory too small" -- "$egcam" classify --model "$resnet" --max-memory 100K "$cats"
err_has "memory cap" "--max-memory too small"

# ---- check: logits against a reference, the gradient against finite differences ----
lower="$(cd "$(dirname "$0")" && pwd)/data/lower"
expect 0 "check resnet20" -- "$egcam" check --model "$resnet"
grep -q "^gradient .*tolerance 0.01 on the median: ok$" "$work/out" && ok || bad "check: $(cat "$work/out")"
grep -qx "check passed" "$work/out" && ok || bad "check resnet20 verdict"
# PyTorch's logits of a small Swin transformer for its inputs: equal; another model's: not
expect 0 "check against PyTorch's logits" -- "$egcam" check --model "$lower/swin_tiny.onnx" --logits "$lower/swin_tiny_out.npy" "$lower/swin_tiny_in.npy"
grep -q "^reference .*: ok$" "$work/out" && ok || bad "check --logits: $(cat "$work/out")"
expect 1 "check against wrong logits" -- "$egcam" check --model "$lower/swin_tiny.onnx" --logits "$lower/deit_tiny_out.npy" "$lower/swin_tiny_in.npy"
grep -q "^reference .*worst at .*swin_tiny_in.npy.*FAILED$" "$work/out" && ok || bad "check wrong --logits: $(cat "$work/out")"
grep -qx "check FAILED" "$work/out" && ok || bad "check wrong --logits verdict"
expect 0 "check --json" -- "$egcam" check --json --model "$lower/swin_tiny.onnx" --logits "$lower/swin_tiny_out.npy" "$lower/swin_tiny_in.npy"
grep -q '"reference": {.*"ok": true}.*"gradient": {"checked": true, .*"ok": true}, "ok": true}$' "$work/out" && ok || bad "check --json: $(cat "$work/out")"
# a layer that a residual connection goes around (a transformer's norm1, DeiT's `auto`): checked
# with the paths around it held fixed, and said so; its block's output
expect 0 "check a bypassed layer" -- "$egcam" check --model "$lower/deit_tiny.onnx"
grep -q "^gradient .*: ok$" "$work/out" && ok || bad "check bypassed: $(cat "$work/out")"
grep -q "a residual connection goes around this layer" "$work/out" && ok || bad "check bypassed: no note"
expect 0 "check its block's output" -- "$egcam" check --model "$lower/deit_tiny.onnx" --layer blocks.1
grep -q "^gradient .*: ok$" "$work/out" && ok || bad "check blocks.1: $(cat "$work/out")"
grep -q "a residual connection goes around" "$work/out" && bad "check blocks.1: a note on a layer every path passes" || ok
# a model whose input is channels last ([N,H,W,3], a Keras export): PyTorch's logits for the
# images given channels first or channels last, and the same maps from both
expect 0 "info on a channels-last input" -- "$egcam" info "$lower/keras_nhwc.onnx"
grep -q "^input   \[N,3,8,8\] (the file's input is channels last, \[N,8,8,3\]" "$work/out" && ok || bad "info channels-last input: $(head -3 "$work/out")"
for x in keras_nhwc_in keras_nhwc_in_last; do
  expect 0 "check a channels-last input ($x)" -- "$egcam" check --model "$lower/keras_nhwc.onnx" --logits "$lower/keras_nhwc_out.npy" "$lower/$x.npy"
  grep -qx "check passed" "$work/out" && ok || bad "check $x: $(cat "$work/out")"
  expect 0 "explain a channels-last input ($x)" -- "$egcam" explain -q --model "$lower/keras_nhwc.onnx" --method gradcam --save npy --out "$work/nhwc_$x" "$lower/$x.npy"
done
for i in 0 1 2; do
  file_ok "$work/nhwc_keras_nhwc_in/keras_nhwc_in_$i.npy"
  cmp -s "$work/nhwc_keras_nhwc_in/keras_nhwc_in_$i.npy" "$work/nhwc_keras_nhwc_in_last/keras_nhwc_in_last_$i.npy" && ok || bad "channels-last tensor $i: another map"
done
# reference images channels first or channels last: the same Expected Grad-CAM maps
for x in keras_nhwc_in keras_nhwc_in_last; do
  expect 0 "reference images from $x" -- "$egcam" explain -q --model "$lower/keras_nhwc.onnx" --method expected-gradcam --samples 4 --baselines "$lower/$x.npy" --save npy --out "$work/nhwc_refs_$x" "$lower/keras_nhwc_in.npy"
done
for i in 0 1 2; do
  file_ok "$work/nhwc_refs_keras_nhwc_in/keras_nhwc_in_$i.npy"
  cmp -s "$work/nhwc_refs_keras_nhwc_in/keras_nhwc_in_$i.npy" "$work/nhwc_refs_keras_nhwc_in_last/keras_nhwc_in_$i.npy" && ok || bad "channels-last reference file: another map for image $i"
done
expect 2 "a reference file that fits no layout" -- "$egcam" explain -q --model "$resnet" --method expected-gradcam --baselines "$lower/keras_nhwc_in_last.npy" --out "$work/nhwc_bad" "$cats"
err_has "or channels last, (R,32,32,3)" "a reference file that fits no layout"
# a model ending in a Softmax: its input is taken as the logits; a reference of probabilities
# (the file's output) is compared through that Softmax, one of logits as it is
expect 0 "info on a final Softmax" -- "$egcam" info "$lower/keras_softmax.onnx"
grep -q "^classes 4 (the file's output is a Softmax: egcam takes its input as the logits)" "$work/out" && ok || bad "info final Softmax: $(head -4 "$work/out")"
expect 0 "check probabilities" -- "$egcam" check --model "$lower/keras_softmax.onnx" --logits "$lower/keras_softmax_out.npy" "$lower/keras_softmax_in.npy"
grep -q "^reference .*(probabilities: the logits through the model's final Softmax).*: ok$" "$work/out" && ok || bad "check probabilities: $(cat "$work/out")"
expect 0 "check logits of a Softmax model" -- "$egcam" check --model "$lower/keras_softmax.onnx" --logits "$lower/keras_softmax_logits.npy" "$lower/keras_softmax_in.npy"
grep -q "^reference .*keras_softmax_logits.npy: max .*: ok$" "$work/out" && ok || bad "check logits: $(cat "$work/out")"
# a model ending in a LogSoftmax (PyTorch's MNIST example): the same with log-probabilities;
# log-probabilities of other inputs fail and name the worst element
expect 0 "info on a final LogSoftmax" -- "$egcam" info "$lower/mnist_logsoftmax.onnx"
grep -q "^classes 10 (the file's output is a LogSoftmax: egcam takes its input as the logits)" "$work/out" && ok || bad "info final LogSoftmax: $(head -4 "$work/out")"
grep -q "^passes" "$work/out" && bad "a final LogSoftmax made the model run one image per pass" || ok
expect 0 "check log-probabilities" -- "$egcam" check --model "$lower/mnist_logsoftmax.onnx" --logits "$lower/mnist_logsoftmax_out.npy" "$lower/mnist_logsoftmax_in.npy"
grep -q "^reference .*(log-probabilities: the logits through the model's final LogSoftmax).*: ok$" "$work/out" && ok || bad "check log-probabilities: $(cat "$work/out")"
expect 0 "check a LogSoftmax model against probabilities" -- "$egcam" check --model "$lower/mnist_logsoftmax.onnx" --logits "$lower/mnist_logsoftmax_probs.npy" "$lower/mnist_logsoftmax_in.npy"
grep -q "^reference .*(probabilities: the logits through a Softmax).*: ok$" "$work/out" && ok || bad "check probabilities of a LogSoftmax model: $(cat "$work/out")"
expect 1 "check log-probabilities of other inputs" -- "$egcam" check --model "$lower/mnist_logsoftmax.onnx" --logits "$lower/mnist_logsoftmax_out.npy" "$lower/gray_cnn_in.npy"
grep -q "^reference .*(log-probabilities: the logits through the model's final LogSoftmax): max |diff| .*, worst at .*gray_cnn_in.npy\[[0-2]\] class [0-9].*FAILED$" "$work/out" && ok || bad "check wrong reference: $(cat "$work/out")"
expect 0 "explain a LogSoftmax model" -- "$egcam" explain -q --model "$lower/mnist_logsoftmax.onnx" --preset "cifar:mean=0.1307:std=0.3081" --method gradcam,expected-gradcam --samples 4 --score softmax --out "$work/mnist_ls" "$lower/mnist_logsoftmax_in.npy"
# a model exported with dynamic H and W axes: refused with how to give the size; with
# --input-size it runs (check against PyTorch's logits, explain, info); a fixed size differs
dyn="$lower/dynamic_hw.onnx"
expect 3 "a dynamic-size model without --input-size" -- "$egcam" classify --model "$dyn" "$lower/dynamic_hw_in.npy"
err_has "give the image size the model runs at: --input-size HxW" "a dynamic-size model without --input-size"
expect 0 "check a dynamic-size model at 24x16" -- "$egcam" check --model "$dyn" --input-size 24x16 --logits "$lower/dynamic_hw_b_out.npy" "$lower/dynamic_hw_b_in.npy"
grep -q "^reference .*: ok$" "$work/out" && ok || bad "check dynamic: $(cat "$work/out")"
expect 0 "info at --input-size" -- "$egcam" info --input-size 24x16 "$dyn"
grep -q "^input   \[N,3,24,16\]" "$work/out" && ok || bad "info dynamic: $(head -3 "$work/out")"
expect 0 "explain a dynamic-size model" -- "$egcam" explain -q --model "$dyn" --input-size 20x20 --method gradcam,expected-gradcam --samples 4 --out "$work/dyn" "$lower/dynamic_hw_in.npy"
file_ok "$work/dyn/expected-gradcam/dynamic_hw_in_2.npy"
grep -q '"input_size": \[20, 20\]' "$work/dyn/manifest.jsonl" && ok || bad "explain dynamic: no input_size in the manifest"
expect 3 "--input-size against a fixed size" -- "$egcam" classify --model "$lower/resize_modes.onnx" --input-size 12x10 "$lower/resize_modes_in.npy"
err_has "its width is fixed at 12, not the 10 given" "--input-size against a fixed size"
expect 2 "a malformed --input-size" -- "$egcam" explain --model "$dyn" --input-size 20 --method gradcam --out "$work/dyn2" "$lower/dynamic_hw_in.npy"
err_has "--input-size '20' must be HxW" "a malformed --input-size"
# a quantized model (QDQ): info says so; PyTorch's logits; the finite-difference gradient
# reported, not judged
expect 0 "info on a quantized model" -- "$egcam" info "$lower/qdq_cnn.onnx"
grep -q "^quantized 3 QuantizeLinear / DequantizeLinear pairs on activations" "$work/out" && ok || bad "info quantized: $(head -6 "$work/out")"
expect 0 "check a quantized model" -- "$egcam" check --model "$lower/qdq_cnn.onnx" --logits "$lower/qdq_cnn_out.npy" "$lower/qdq_cnn_in.npy"
grep -q "not checked: the layers after this one quantize" "$work/out" && grep -q "^check passed (the gradient not checked)" "$work/out" && ok || bad "check quantized: $(cat "$work/out")"
expect 0 "check a quantized model (json)" -- "$egcam" check --json --model "$lower/qdq_ort.onnx" --logits "$lower/qdq_ort_out.npy" "$lower/qdq_ort_in.npy"
grep -q '"gradient": {"checked": false, "reason": "quantized"' "$work/out" && ok || bad "check quantized json: $(cat "$work/out")"
expect 0 "explain a quantized model" -- "$egcam" explain -q --model "$lower/qdq_cnn.onnx" --method gradcam,expected-gradcam --samples 4 --out "$work/qdq" "$lower/qdq_cnn_in.npy"
file_ok "$work/qdq/expected-gradcam/qdq_cnn_in_2.npy"
# a model of gray images: the maps from the images (made gray as Pillow's convert("L")) are
# those from PIL's and torchvision's tensors of them; a sweep and a reference set run on it
gray="$lower/gray_cnn.onnx"; mnist="cifar:mean=0.1307:std=0.3081"
gcats="$work/gcats"; mkdir -p "$gcats"
for k in 0 1 2; do cp "$shared/data/cifar10-test/cat/000$k.jpg" "$gcats/"; done
expect 0 "explain a gray model (images)" -- "$egcam" explain -q --model "$gray" --preset "$mnist" --method gradcam,expected-gradcam,scorecam --samples 8 --out "$work/gray_img" "$gcats"
expect 0 "explain a gray model (tensors)" -- "$egcam" explain -q --model "$gray" --preset "$mnist" --method gradcam,expected-gradcam,scorecam --samples 8 --out "$work/gray_npy" "$lower/gray_cnn_in.npy"
for m in gradcam expected-gradcam scorecam; do
  for k in 0 1 2; do
    file_ok "$work/gray_img/$m/000${k}_overlay.png"
    cmp -s "$work/gray_img/$m/000$k.npy" "$work/gray_npy/$m/gray_cnn_in_$k.npy" && ok || bad "gray $m map $k: images and tensors differ"
  done
done
expect 0 "sweep a gray model" -- "$egcam" sweep -q --model "$gray" --preset "$mnist" --methods gradcam,expected-gradcam:samples=4 --metrics deletion,infidelity,max-sensitivity --out "$work/gray_sweep" "$gcats"
[ "$(grep -c ',ok,' "$work/gray_sweep/rows.csv")" -eq 24 ] && ok || bad "gray sweep rows: $(head -5 "$work/gray_sweep/rows.csv")"
grep -q '"input_size": \[1, 28, 28\]' "$work/gray_sweep/summary.json" && ok || bad "gray sweep summary: $(grep input_size "$work/gray_sweep/summary.json")"
expect 0 "reference set of a gray model" -- "$egcam" refs build -q --model "$gray" --preset "$mnist" --out "$work/gray_refs.npy" "$gcats"
expect 0 "explain a gray model with its reference set" -- "$egcam" explain -q --model "$gray" --preset "$mnist" --method expected-gradcam --baselines "$work/gray_refs.npy" --samples 4 --out "$work/gray_refs" "$gcats"
expect 0 "check a gray model against PyTorch" -- "$egcam" check --model "$gray" --preset "$mnist" --logits "$lower/gray_cnn_out.npy" "$gcats"
grep -qx "check passed" "$work/out" && ok || bad "check gray: $(cat "$work/out")"
expect 1 "a tensor that fits no layout" -- "$egcam" explain -q --model "$resnet" --method gradcam --save npy --out "$work/nhwc_bad" "$lower/keras_nhwc_in_last.npy"
err_has "does not fit the model input [N,3,32,32] (or channels last, [N,32,32,3])" "a tensor that fits no layout"
expect 2 "check: reference of the wrong shape" -- "$egcam" check --model "$resnet" --logits "$lower/swin_tiny_out.npy"
err_has "swin_tiny_out.npy" "check: reference of the wrong shape"
expect 2 "check: bad --layer" -- "$egcam" check --model "$resnet" --layer nosuchlayer
err_has "nosuchlayer" "check: bad --layer"
expect 3 "check: missing input" -- "$egcam" check --model "$resnet" "$work/missing.npy"
err_has "missing.npy" "check: missing input"

# ---- user mistakes: exit codes and messages that name the culprit ----
head -c 4000 "$resnet" > "$work/truncated.onnx"
echo "not an image" > "$work/broken.jpg"
expect 3 "missing model" -- "$egcam" explain --model "$work/nope.onnx" --method gradcam --out "$work/e" "$cats"
err_has "nope.onnx" "missing model"
expect 3 "corrupt model" -- "$egcam" explain --model "$work/truncated.onnx" --method gradcam --out "$work/e" "$cats"
err_has "truncated.onnx" "corrupt model"
expect 3 "corrupt model (info)" -- "$egcam" info "$work/truncated.onnx"
expect 3 "corrupt model (classify)" -- "$egcam" classify --model "$work/truncated.onnx" "$cats"
expect 2 "unknown method" -- "$egcam" explain --model "$resnet" --method gradcan --out "$work/e" "$cats"
err_has "gradcan" "unknown method"
expect 2 "bad --layer" -- "$egcam" explain --model "$resnet" --method gradcam --layer nosuchlayer --out "$work/e" "$cats"
err_has "nosuchlayer" "bad --layer"
err_has "egcam info" "bad --layer"
# a module path of the PyTorch export: the module's output; egcam info lists the modules
expect 0 "--layer module" -- "$egcam" explain --model "$resnet" --method gradcam --layer layer2 -q --save npy --out "$work/emod" "$cats"
grep -q '"layer": "/layer2/layer2.2/Relu_1_output_0"' "$work/emod/manifest.jsonl" && ok || bad "--layer layer2: $(head -c 300 "$work/emod/manifest.jsonl")"
expect 0 "info modules" -- "$egcam" info "$resnet"
grep -q "^modules of this PyTorch export that --layer takes by name .*: conv1, layer1, layer2, layer3$" "$work/out" && ok || bad "egcam info lists no modules: $(tail -n 5 "$work/out")"
expect 1 "missing input" -- "$egcam" explain --model "$resnet" --method gradcam -q --out "$work/e1" "$work/missing.jpg" "$cats"
err_has "missing.jpg" "missing input"
grep -q '"status": "error"' "$work/e1/manifest.jsonl" && ok || bad "missing input not in the manifest"
[ "$(grep -c '"status": "ok"' "$work/e1/manifest.jsonl")" -eq 3 ] && ok || bad "the other inputs were not explained"
expect 1 "unreadable image" -- "$egcam" explain --model "$resnet" --method gradcam -q --out "$work/e2" "$work/broken.jpg"
err_has "broken.jpg" "unreadable image"
expect 1 "unreadable image (classify)" -- "$egcam" classify --model "$resnet" -q "$work/broken.jpg"
# a batch that holds unreadable inputs among good ones (the inputs load in parallel): the good
# ones explained as alone, overlays written; the manifest has the batch's load failures, then
# its maps, each in input order, and the messages come in input order
mix="$work/mix"
mkdir -p "$mix"
k=0
for s in $stems; do k=$((k + 1)); cp "$cats/$s".* "$mix/${k}b_$s.jpg"; cp "$work/broken.jpg" "$mix/${k}a_broken.jpg"; done
expect 1 "batch with unreadable inputs" -- "$egcam" explain --model "$resnet" --method gradcam --batch 8 -q --out "$work/e3" "$mix"
got=$(sed 's/.*"input": "[^"]*\/\([^"/]*\)".*"status": "\([a-z]*\)".*/\1 \2/' "$work/e3/manifest.jsonl" | tr '\n' ' ')
want=""
k=0
for s in $stems; do k=$((k + 1)); want="$want${k}a_broken.jpg error "; done
k=0
for s in $stems; do k=$((k + 1)); want="$want${k}b_$s.jpg ok "; done
[ "$got" = "$want" ] && ok || bad "manifest order: got '$got', want '$want'"
[ "$(grep -c 'broken.jpg' "$work/err")" -eq 3 ] && ok || bad "expected 3 messages about the broken inputs"
grep 'broken.jpg' "$work/err" | sed 's/.*\/\([0-9]a_broken.jpg\).*/\1/' | tr '\n' ' ' | grep -qx '1a_broken.jpg 2a_broken.jpg 3a_broken.jpg ' && ok || bad "messages not in input order"
k=0
for s in $stems; do
  k=$((k + 1))
  cmp -s "$work/e3/${k}b_$s.npy" "$out3/$s.npy" && ok || bad "${k}b_$s.npy differs from the map of $s alone"
  file_ok "$work/e3/${k}b_${s}_overlay.png"
done
# the pipelined loop (the default with CUDA: files of one batch written and the next batch
# loaded while the explainers run) gives the same files, manifest and messages as the serial one
expect 1 "pipelined batches" -- env EGC_PIPELINE=1 "$egcam" explain --model "$resnet" --method gradcam,gradcampp --batch 2 --gallery -q --out "$work/e4" "$mix"
sed "s#$work/e4##g" "$work/err" > "$work/err4"
expect 1 "serial batches" -- env EGC_PIPELINE=0 "$egcam" explain --model "$resnet" --method gradcam,gradcampp --batch 2 --gallery -q --out "$work/e5" "$mix"
sed "s#$work/e5##g" "$work/err" > "$work/err5"
cmp -s "$work/err4" "$work/err5" && ok || bad "pipelined messages differ"
diff <(sed "s#$work/e4##g" "$work/e4/manifest.jsonl") <(sed "s#$work/e5##g" "$work/e5/manifest.jsonl") >/dev/null && ok || bad "pipelined manifest differs"
diff <(sed "s#$work/e4##g" "$work/e4/index.html") <(sed "s#$work/e5##g" "$work/e5/index.html") >/dev/null && ok || bad "pipelined gallery differs"
n_files=0
for f in $(cd "$work/e5" && find . -type f ! -name manifest.jsonl ! -name index.html); do
  n_files=$((n_files + 1))
  cmp -s "$work/e4/$f" "$work/e5/$f" && ok || bad "pipelined $f differs"
done
[ "$n_files" -ge 12 ] && ok || bad "pipelined run wrote only $n_files files"
expect 2 "unknown option" -- "$egcam" explain --model "$resnet" --method gradcam --bogus --out "$work/e" "$cats"
err_has "--bogus" "unknown option"
expect 2 "missing value" -- "$egcam" explain --model "$resnet" --method gradcam --out
err_has "--out" "missing value"
expect 2 "gallery without overlays" -- "$egcam" explain --model "$resnet" --method gradcam --save npy --gallery --out "$work/e" "$cats"
expect 2 "bad --overlay-alpha" -- "$egcam" explain --model "$resnet" --method gradcam --overlay-alpha 2 --out "$work/e" "$cats"
err_has "--overlay-alpha" "bad --overlay-alpha"
expect 2 "bad --colormap" -- "$egcam" explain --model "$resnet" --method gradcam --colormap hot --out "$work/e" "$cats"
expect 2 "bad --top" -- "$egcam" classify --model "$resnet" --top zero "$cats"
expect 2 "unknown device name" -- "$egcam" classify --model "$resnet" --device tpu "$cats"
"$egcam" info > "$work/devices" 2>&1
if grep -q "cuda *unavailable" "$work/devices"; then
  expect 3 "--device cuda without a GPU" -- "$egcam" explain --model "$resnet" --method gradcam --device cuda --out "$work/e" "$cats"
  err_has "cuda" "--device cuda without a GPU"
  expect 3 "--device cuda without a GPU (classify)" -- "$egcam" classify --model "$resnet" --device cuda "$cats"
  expect 3 "--device cuda without a GPU (check)" -- "$egcam" check --model "$resnet" --device cuda
fi

echo "cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
