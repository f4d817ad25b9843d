#!/usr/bin/env bash
# setup.sh: the first command of a new user. Installs the build dependencies (Debian/Ubuntu
# packages, tools/deps.sh), builds egcam (tools/build.sh), and explains the bundled example:
# the shared MobileNetV2 on the photos in ../shared/data/photos with Grad-CAM and Expected
# Grad-CAM, writing maps, overlays and an HTML gallery to out/example/ (about a minute on
# two cores). EGC_SHARED_DIR overrides where the shared models and images are.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shared="${EGC_SHARED_DIR:-$here/../shared}"
shared="$(cd "$shared" 2>/dev/null && pwd || echo "$shared")"
model="$shared/models/mobilenet_v2_imagenet.onnx"
photos="$shared/data/photos"
for need in "$model" "$photos"; do
  if [ ! -e "$need" ]; then
    echo "setup: $need is missing: put the shared models and data beside the checkout" \
         "(../shared) or set EGC_SHARED_DIR" >&2
    exit 2
  fi
done

echo "== installing build dependencies (tools/deps.sh)"
bash "$here/tools/deps.sh"
echo "== building (tools/build.sh)"
bash "$here/tools/build.sh" "$here/build"

out="$here/out/example"
rm -rf "$out"
echo "== egcam explain: $(basename "$model") on $photos"
# Softmax scores: with MobileNetV2's GAP + linear head the logit's gradient is the same at
# every sample, so Expected Grad-CAM (aggregation A) would equal Grad-CAM on logits.
"$here/build/egcam" explain --model "$model" --preset tf \
  --method gradcam,expected-gradcam --samples 16 --score softmax \
  --gallery --out "$out" "$photos"
echo
echo "maps:     $out/<method>/<image>.npy (float32 224x224 in [0,1])"
echo "overlays: $out/<method>/<image>_overlay.png"
echo "manifest: $out/manifest.jsonl"
echo "gallery:  $out/index.html   (open it in a browser)"
py=""
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import numpy' 2>/dev/null; then py="$p"; break; fi
done
if [ -n "$py" ]; then
  echo "python:   PYTHONPATH=$here/python $py -c 'import egcam'   (docs/PYTHON.md)"
else
  echo "python:   the module (python/egcam, docs/PYTHON.md) needs NumPy: apt-get install python3-numpy"
fi
