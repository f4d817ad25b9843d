#!/usr/bin/env bash
# study.sh: the CPU evaluation study of docs/RESULTS.md: egcam sweep runs on the shared
# models and images (subsets sized for a 2-core CPU), written under OUT (default ./study):
#   1 egc/      Expected Grad-CAM settings on MobileNetV2: aggregation A/B/C x logit/softmax at
#               rho 0.15, and rho in {0, 0.1, 0.2, 0.3} for softmax B and C; the default is the
#               setting with the lowest infidelity (insertion, then deletion, break ties)
#   2 methods/  every method (Score-CAM excepted: 1280 masked forwards per image) on MobileNetV2
#               with fidelity, robustness (n = 2), complexity and the grid pointing game
#   3 coco/     localisation on the first 24 coco128 images (those with a mappable class)
#   4 cifar/    ResNet-56 on 10 CIFAR-10 test images (the first of each class), every method
# Every sweep runs with --resume: an interrupted study continues where it stopped.
# Usage: tools/study.sh [EGCAM_BINARY] [OUT] [SHARED_DIR]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
egcam="${1:-$here/build/egcam}"
out="${2:-study}"
shared="${3:-$here/../shared}"
mkdir -p "$out"
mv2="$shared/models/mobilenet_v2_imagenet.onnx"
r56="$shared/models/resnet56_cifar10.onnx"
imnet="$shared/data/imagenet-sample"
common=(--preset tf --steps 8 --infid-patch 56 --infid-samples 8 --batch 32 --resume -q)
t0=$(date +%s)

echo "== 1 Expected Grad-CAM settings (8 ImageNet images)"
egc="expected-gradcam:samples=8"
cfgs="$egc:combine=A:score=logit,$egc:combine=B:score=logit,$egc:combine=C:score=logit"
cfgs="$cfgs,$egc:combine=A:score=softmax,$egc:combine=B:score=softmax,$egc:combine=C:score=softmax"
for c in B C; do
  for r in 0 0.1 0.2 0.3; do
    cfgs="$cfgs,$egc:combine=$c:score=softmax:noise=$r"
  done
done
"$egcam" sweep --model "$mv2" "${common[@]}" --methods "gradcam,$cfgs" \
  --metrics infidelity,infidelity-gaussian,deletion,insertion --limit 8 --gallery 2 \
  --out "$out/egc" "$imnet"
best=$(/usr/bin/python3 - "$out/egc/summary.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
m = {}
for r in rows:
    m.setdefault(r["method"], {})[r["metric"]] = float(r["mean"])
cands = [k for k in m if k.startswith("expected-gradcam")]
best = min(cands, key=lambda k: (m[k]["infidelity"], -m[k]["insertion"], m[k]["deletion"]))
print(best)
PY
)
echo "chosen setting: $best" | tee "$out/egc/chosen.txt"

echo "== 2 all methods on MobileNetV2 (8 ImageNet images)"
"$egcam" sweep --model "$mv2" "${common[@]}" \
  --methods "gradcam,gradcampp,xgradcam,hirescam,layercam,smooth-gradcam:samples=8,integrated-gradcam:samples=8,$best" \
  --metrics fidelity,robustness,sparseness,complexity,grid-pointing-game --sens-samples 2 \
  --limit 8 --out "$out/methods" "$imnet"

echo "== 3 COCO localisation (first 24 coco128 images)"
"$egcam" sweep --model "$mv2" --preset tf --batch 32 --resume -q \
  --methods "gradcam,gradcampp,xgradcam,hirescam,layercam,smooth-gradcam:samples=8,integrated-gradcam:samples=8,$best" \
  --metrics localisation --boxes "$shared/data/coco128/labels" \
  --class-map "$here/data/coco_to_imagenet.txt" --limit 24 --out "$out/coco" \
  "$shared/data/coco128/images"

echo "== 4 ResNet-56 on CIFAR-10 (the first test image of each class)"
cifar=()
for d in "$shared"/data/cifar10-test/*/; do
  while IFS= read -r f; do cifar+=("$f"); done < <(ls "$d" | sort | head -1 | sed "s|^|$d|")
done
"$egcam" sweep --model "$r56" --preset cifar --steps 8 --infid-patch 8 --infid-samples 8 \
  --batch 64 --resume -q \
  --methods "gradcam,gradcampp,xgradcam,hirescam,layercam,scorecam,smooth-gradcam:samples=8,integrated-gradcam:samples=8,$best" \
  --metrics fidelity,sparseness,complexity,grid-pointing-game --out "$out/cifar" "${cifar[@]}"
echo "study done in $(( $(date +%s) - t0 )) s"
