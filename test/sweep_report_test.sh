#!/usr/bin/env bash
# sweep_report_test.sh: runs a small `egcam sweep` (ResNet-20, six CIFAR-10 images, two
# methods, fidelity + complexity + grid metrics) and checks what it writes: the files exist,
# rows.csv has one row per image, method and metric, report.html is well-formed XML
# (`xmllint --noout`) and parses as HTML with no error other than libxml2's HTML4 parser not
# knowing HTML5/SVG element names, and --resume skips rows already written and completes an
# interrupted run. Exit 77 (skipped) without the shared model or xmllint.
#   test/sweep_report_test.sh EGCAM_BINARY SHARED_DIR
set -euo pipefail
egcam="$1"
shared="$2"
model="$shared/models/resnet20_cifar10.onnx"
if [ ! -f "$model" ] || [ ! -d "$shared/data/cifar10-test/cat" ]; then
  echo "skip: shared model or CIFAR images not found"; exit 77
fi
if ! command -v xmllint >/dev/null; then
  echo "skip: xmllint not installed (Debian package libxml2-utils)"; exit 77
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
imgs=()
for c in cat ship airplane frog truck horse; do
  f=$(ls "$shared/data/cifar10-test/$c" | sort | head -1)
  imgs+=("$shared/data/cifar10-test/$c/$f")
done
run() {
  "$egcam" sweep --model "$model" --methods 'gradcam,expected-gradcam:samples=2:combine=B:score=softmax' \
    --metrics deletion,insertion,infidelity,sparseness,complexity,grid-pointing-game \
    --steps 4 --infid-patch 16 --batch 16 --gallery 2 -q --out "$out/s" "$@" "${imgs[@]}"
}
run
for f in rows.csv curves.csv summary.csv summary.json report.md report.html skipped.csv; do
  [ -s "$out/s/$f" ] || { echo "FAIL: $f missing or empty"; exit 1; }
done
ls "$out/s/overlays"/000_*__gradcam.png >/dev/null
# 6 images x 2 methods x 5 per-image metrics, 4 rows per grid and method, the header.
rows=$(wc -l < "$out/s/rows.csv")
grid=$(grep -c ',grid-pointing-game,' "$out/s/rows.csv" || true)
[ "$grid" -ge 8 ] && [ $((grid % 8)) -eq 0 ] || { echo "FAIL: $grid grid rows"; exit 1; }
[ "$rows" -eq $((6 * 2 * 5 + grid + 1)) ] || { echo "FAIL: rows.csv has $rows lines"; exit 1; }
if grep -q ',error,' "$out/s/rows.csv"; then echo "FAIL: error rows"; grep ',error,' "$out/s/rows.csv"; exit 1; fi
# 6 images x 2 methods x 2 curves x 5 points, plus the header.
curves=$(wc -l < "$out/s/curves.csv")
[ "$curves" -eq $((6 * 2 * 2 * 5 + 1)) ] || { echo "FAIL: curves.csv has $curves lines"; exit 1; }
xmllint --noout "$out/s/report.html"
html_err=$(xmllint --html --noout "$out/s/report.html" 2>&1 | grep 'error' \
  | grep -v -E 'Tag (svg|title|rect|line|polyline|path|text) invalid' || true)
[ -z "$html_err" ] || { echo "FAIL: HTML parser errors:"; echo "$html_err"; exit 1; }
grep -q '<svg' "$out/s/report.html" || { echo "FAIL: no SVG chart in the report"; exit 1; }
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['summary'] and d['options']['curve_steps']==4" "$out/s/summary.json"
# Resume: nothing new to do.
cp "$out/s/rows.csv" "$out/rows.full"
run --resume
cmp -s "$out/s/rows.csv" "$out/rows.full" || { echo "FAIL: --resume rewrote rows"; exit 1; }
# Interrupted run: drop the last 7 rows; --resume writes exactly those again.
head -n $((rows - 7)) "$out/rows.full" > "$out/s/rows.csv"
run --resume
[ "$(wc -l < "$out/s/rows.csv")" -eq "$rows" ] || { echo "FAIL: resume did not complete the rows"; exit 1; }
diff <(sort "$out/rows.full" | cut -d, -f1-3) <(sort "$out/s/rows.csv" | cut -d, -f1-3) >/dev/null \
  || { echo "FAIL: resumed rows differ in (image, method, metric)"; exit 1; }
# --time-limit: no new group after the limit; the report says what was left, --resume ends it.
run --batch 2 --time-limit 0.001 --out "$out/t" 2>/dev/null
python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['run']; assert r['images_not_started'] == 6 and r['images'] == 0, r" "$out/t/summary.json"
grep -q 'Incomplete' "$out/t/report.md" || { echo "FAIL: no time-limit note in report.md"; exit 1; }
xmllint --noout "$out/t/report.html"
run --batch 2 --resume --out "$out/t"
python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['run']; assert r['images_not_started'] == 0 and r['images'] == 6, r" "$out/t/summary.json"
[ "$(wc -l < "$out/t/rows.csv")" -eq "$rows" ] || { echo "FAIL: time-limited run did not resume to completion"; exit 1; }
echo "sweep report: ok"
