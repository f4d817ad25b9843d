#!/usr/bin/env bash
# setup.sh: the first command of a new user. Installs the build dependencies (Debian
# packages), builds egcam, and runs it on the bundled example: the shared MobileNetV2 on
# the photos in ../shared/data/photos. Results go to out/example/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shared="${EGC_SHARED_DIR:-$here/../shared}"
bash "$here/tools/deps.sh"
bash "$here/tools/build.sh" "$here/build"
out="$here/out/example"
mkdir -p "$out"
model="$shared/models/mobilenet_v2_imagenet.onnx"
echo "== egcam classify: $model on $shared/data/photos"
"$here/build/egcam" classify --model "$model" --preset tf --top 3 --json \
  "$shared/data/photos" > "$out/classify.jsonl"
"$here/build/egcam" classify --model "$model" --preset tf --top 1 -q "$shared/data/photos"
echo "results: $out/classify.jsonl"
