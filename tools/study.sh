#!/usr/bin/env bash
# study.sh: the evaluation study of docs/RESULTS.md: egcam sweep runs on the shared models and
# images, written under OUT (default ./study). Two profiles (PROFILE=cpu|gpu, default cpu):
#   cpu: subsets sized for a 2-core CPU (8-24 images, 8-step curves, 56x56 infidelity patches,
#        8 samples per sampled method), about half an hour;
#   gpu: the shared sets in full (250 ImageNet samples, the coco128 images, the 1000 CIFAR-10
#        test images) with 28-step curves, 32x32 infidelity patches and 16 samples, on
#        DEVICE (default cuda), each sweep under a time limit (TIME_SCALE multiplies them).
# The sweeps:
#   1 egc/      Expected Grad-CAM settings on MobileNetV2: aggregation A/B/C x logit/softmax at
#               rho 0.15, and rho in {0, 0.1, 0.2, 0.3} for softmax B and C, next to Grad-CAM;
#               the setting is chosen by tools/study_tables.py choose: lowest Gaussian
#               infidelity with optimal scaling, settings within 2 paired standard errors of
#               it tied, ties broken by insertion, then deletion (docs/RESULTS.md says why
#               the unscaled patch infidelity is not the primary score)
#   2 methods/  every method but Score-CAM on MobileNetV2 with fidelity, robustness (a reduced
#               sample count), complexity and the grid pointing game
#   3 scorecam/ (gpu) Score-CAM on the first 64 ImageNet samples with fidelity and complexity
#   4 coco/     localisation on coco128 (images with a mappable class; the rest are listed as
#               skipped)
#   5 cifar/    ResNet-56 on CIFAR-10 test images, every method
# A sweep that fails (or records failed inputs) is reported and the study goes on.
# Every sweep runs with --resume: an interrupted study continues where it stopped, and a sweep
# cut by its time limit says so in its report. BATCH overrides the rows per pass; STAGES
# (default "1 2 3 4 5") picks sweeps; stages 2-5 read the choice of stage 1 from
# OUT/egc/chosen.txt. At the end one JSON line per
# sweep (rows, seconds, rows/s, images) goes to OUT/throughput.jsonl.
# Usage: [PROFILE=gpu] [DEVICE=cuda] tools/study.sh [EGCAM_BINARY] [OUT] [SHARED_DIR]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
egcam="${1:-$here/build/egcam}"
out="${2:-study}"
shared="${3:-$here/../shared}"
profile="${PROFILE:-cpu}"
stages=" ${STAGES:-1 2 3 4 5} "
mkdir -p "$out"
mv2="$shared/models/mobilenet_v2_imagenet.onnx"
r56="$shared/models/resnet56_cifar10.onnx"
imnet="$shared/data/imagenet-sample"
PY="${PYTHON:-python3}"
[ -x /usr/bin/python3 ] && [ -z "${PYTHON:-}" ] && PY=/usr/bin/python3
t0=$(date +%s)

tl() { # tl SECONDS: the --time-limit option of a gpu sweep (none on the cpu profile)
  if [ "$profile" = gpu ]; then
    echo "--time-limit $("$PY" -c "import sys; print(round(float(sys.argv[1]) * float(sys.argv[2])))" "$1" "${TIME_SCALE:-1}")"
  fi
}
case "$profile" in
  cpu)
    run=(--device "${DEVICE:-cpu}" --batch "${BATCH:-32}" --resume -q)
    mv2opt=(--preset tf --steps 8 --infid-patch 56 --infid-samples 8)
    S=8; n_in=8; n_coco=24; sens=2
    cifar=()
    for d in "$shared"/data/cifar10-test/*/; do
      while IFS= read -r f; do cifar+=("$f"); done < <(ls "$d" | sort | head -1 | sed "s|^|$d|")
    done
    cifaropt=(--steps 8 --infid-patch 8 --infid-samples 8)
    ;;
  gpu)
    run=(--device "${DEVICE:-cuda}" --batch "${BATCH:-64}" --resume -q)
    mv2opt=(--preset tf --steps 28 --infid-patch 32 --infid-samples 16)
    S=16; n_in=250; n_coco=128; sens=8
    mapfile -t cifar < <(find "$shared/data/cifar10-test" -type f \( -name '*.jpg' -o -name '*.png' \) | sort)
    cifaropt=(--infid-patch 4 --infid-samples 16)
    ;;
  *) echo "study.sh: PROFILE must be cpu or gpu (got '$profile')" >&2; exit 2 ;;
esac

if [[ "$stages" == *" 1 "* ]]; then
  echo "== 1 Expected Grad-CAM settings ($n_in ImageNet images, $S samples)"
  egc="expected-gradcam:samples=$S"
  cfgs="$egc:combine=A:score=logit,$egc:combine=B:score=logit,$egc:combine=C:score=logit"
  cfgs="$cfgs,$egc:combine=A:score=softmax,$egc:combine=B:score=softmax,$egc:combine=C:score=softmax"
  for c in B C; do
    for r in 0 0.1 0.2 0.3; do
      cfgs="$cfgs,$egc:combine=$c:score=softmax:noise=$r"
    done
  done
  # shellcheck disable=SC2046
  "$egcam" sweep --model "$mv2" "${mv2opt[@]}" "${run[@]}" $(tl 150) --methods "gradcam,$cfgs" \
    --metrics infidelity,infidelity-gaussian,deletion,insertion --limit "$n_in" --gallery 2 \
    --out "$out/egc" "$imnet" || echo "sweep egc: exit $?"
  "$PY" "$here/tools/study_tables.py" choose "$out/egc/rows.csv" --out "$out/egc/chosen.txt" \
    || echo "no choice made"
fi
best=$(cat "$out/egc/chosen.txt" 2>/dev/null || echo "expected-gradcam:samples=$S")
methods="gradcam,gradcampp,xgradcam,hirescam,layercam,smooth-gradcam:samples=$S,integrated-gradcam:samples=$S,$best"

if [[ "$stages" == *" 2 "* ]]; then
  echo "== 2 all methods on MobileNetV2 ($n_in ImageNet images)"
  # shellcheck disable=SC2046
  "$egcam" sweep --model "$mv2" "${mv2opt[@]}" "${run[@]}" $(tl 130) --methods "$methods" \
    --metrics fidelity,robustness,sparseness,complexity,grid-pointing-game --sens-samples "$sens" \
    --limit "$n_in" --out "$out/methods" "$imnet" || echo "sweep methods: exit $?"
fi

if [[ "$stages" == *" 3 "* ]] && [ "$profile" = gpu ]; then
  echo "== 3 Score-CAM on MobileNetV2 (64 ImageNet images)"
  # shellcheck disable=SC2046
  "$egcam" sweep --model "$mv2" "${mv2opt[@]}" "${run[@]}" $(tl 40) --methods gradcam,scorecam \
    --metrics fidelity,sparseness,complexity --limit 64 --gallery 2 --out "$out/scorecam" "$imnet" \
    || echo "sweep scorecam: exit $?"
fi

if [[ "$stages" == *" 4 "* ]]; then
  echo "== 4 COCO localisation (first $n_coco coco128 images)"
  extra=""
  [ "$profile" = gpu ] && extra=",scorecam"
  # shellcheck disable=SC2046
  "$egcam" sweep --model "$mv2" --preset tf "${run[@]}" $(tl 60) --methods "$methods$extra" \
    --metrics localisation --boxes "$shared/data/coco128/labels" \
    --class-map "$here/data/coco_to_imagenet.txt" --limit "$n_coco" --out "$out/coco" \
    "$shared/data/coco128/images" || echo "sweep coco: exit $?"
fi

if [[ "$stages" == *" 5 "* ]]; then
  echo "== 5 ResNet-56 on CIFAR-10 (${#cifar[@]} inputs)"
  rob=""
  [ "$profile" = gpu ] && rob=",robustness --sens-samples $sens"
  # shellcheck disable=SC2046,SC2086
  "$egcam" sweep --model "$r56" --preset cifar "${cifaropt[@]}" "${run[@]}" $(tl 90) \
    --methods "gradcam,gradcampp,xgradcam,hirescam,layercam,scorecam,smooth-gradcam:samples=$S,integrated-gradcam:samples=$S,$best" \
    --metrics fidelity,sparseness,complexity,grid-pointing-game$rob --out "$out/cifar" "${cifar[@]}" \
    || echo "sweep cifar: exit $?"
fi

"$PY" - "$out" "$profile" <<'PY' || true
import json, os, sys
out, profile = sys.argv[1], sys.argv[2]
with open(os.path.join(out, "throughput.jsonl"), "w") as f:
    for name in ["egc", "methods", "scorecam", "coco", "cifar"]:
        p = os.path.join(out, name, "summary.json")
        if not os.path.exists(p):
            continue
        d = json.load(open(p))
        r = d.get("run", {})
        line = {"sweep": name, "profile": profile, "device": d.get("device"),
                "rows": r.get("rows_written"), "seconds": r.get("seconds"),
                "rows_per_s": r.get("rows_per_s"), "images": r.get("images"),
                "images_not_started": r.get("images_not_started"),
                "evaluation_forwards": r.get("evaluation_forwards")}
        f.write(json.dumps(line) + "\n")
        print(json.dumps(line))
PY
echo "study done in $(( $(date +%s) - t0 )) s"
