#!/usr/bin/env bash
# fuzz.sh BUILD_DIR SECONDS: runs every libFuzzer target of a -DEGC_FUZZ=ON build for
# SECONDS each on a seed corpus made from the shared models and images (in a temp folder).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$1"
secs="${2:-60}"
shared="${EGC_SHARED_DIR:-$here/../shared}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/onnx" "$tmp/image"
cp "$shared"/models/resnet20_cifar10.onnx "$shared"/models/mobilenet_v1_025_128_imagenet.onnx "$tmp/onnx/" 2>/dev/null || true
# and the small lowering cases (every operator and lowering path, refused ones too)
cp "$here"/test/data/lower/*.onnx "$tmp/onnx/"
# but not the one that fills the folding budget on purpose (256 MiB of constants per run)
rm -f "$tmp/onnx/fold_budget.onnx"
# Image seeds: small files of every decoder path (JPEG baseline/progressive/CMYK, PNG colour
# types, BMP variants) and a few real CIFAR-10 JPEGs.
cp "$here"/test/golden/preprocess/decode/* "$tmp/image/"
cifar=("$shared"/data/cifar10-test/cat/*.jpg)
for f in "${cifar[@]:0:8}"; do
  if [ -f "$f" ]; then cp "$f" "$tmp/image/"; fi
done
for f in "$build"/fuzz_*; do
  [ -x "$f" ] || continue
  name="$(basename "$f")"
  case "$name" in
    fuzz_onnx | fuzz_lower) corpus="$tmp/onnx" ;;
    fuzz_image) corpus="$tmp/image" ;;
    *) corpus="$tmp/$name"; mkdir -p "$corpus" ;;
  esac
  echo "fuzz: $name for ${secs}s"
  "$f" -max_total_time="$secs" -rss_limit_mb=4096 -print_final_stats=1 \
    "$corpus" 2>&1 | tail -n 12
done
