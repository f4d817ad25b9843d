#!/usr/bin/env python3
"""study_tables.py: tables of docs/RESULTS.md from an `egcam sweep` rows.csv, and the rule
that chooses the Expected Grad-CAM default (METHODS.md: lowest infidelity, insertion and
deletion as tie-breakers).

  study_tables.py table ROWS.csv [ROWS2.csv ...] [--metrics m1,m2,...] [--strip PREFIX]
                        [--limit-images N] [--images-from ROWS.csv]
      markdown table: one line per method, mean ± std (count) per metric, over the images
      that have a value (rows with status ok); grid-pointing-game rows are per grid quadrant.
      Several rows files are read as one (e.g. the same images swept on two devices);
      --images-from keeps the images (not grids) that file has rows for.
  study_tables.py choose ROWS.csv [--out FILE] [--z 2]
      the rule, over the methods whose name starts with "expected-gradcam":
        1. primary score: infidelity-gaussian (Captum-style, optimal scaling beta; the
           unscaled patch infidelity is dominated by the total mass of the map, see
           docs/RESULTS.md), lower is better;
        2. ties: every setting whose paired mean difference to the lowest is below z paired
           standard errors (z = 2) is tied with it;
        3. among the tied: the highest insertion AUC, then the lowest deletion AUC.
      Prints the table of paired differences and the choice; --out writes the chosen method
      entry to FILE.
  study_tables.py paired ROWS.csv --ref METHOD [--metrics ...] [--strip PREFIX]
      paired differences (method - ref) per metric: mean ± standard error (z).
Only the Python standard library is used.
"""
import argparse
import csv
import math
import sys
from collections import OrderedDict, defaultdict

LOWER_BETTER = {"deletion", "infidelity", "infidelity-gaussian", "max-sensitivity",
                "avg-sensitivity", "complexity"}


def image_set(path):
    with open(path, newline="") as f:
        return {r["image"] for r in csv.DictReader(f) if not r["image"].startswith("grid")}


def load(paths, limit_images=0, only=None):
    """{(method, metric): {image: value}} of the ok rows, methods in file order."""
    vals = defaultdict(dict)
    methods = OrderedDict()
    images = OrderedDict()
    if isinstance(paths, str):
        paths = [paths]
    for path in paths:
      with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if only is not None and r["image"] not in only:
                continue
            if r.get("status", "ok") != "ok":
                continue
            img = r["image"]
            base = img.split("/", 1)[1] if img.startswith("grid") else img
            if limit_images and base not in images and len(images) >= limit_images:
                continue
            images.setdefault(base, None)
            methods.setdefault(r["method"], None)
            try:
                vals[(r["method"], r["metric"])][img] = float(r["value"])
            except ValueError:
                continue
    return vals, list(methods)


def stats(xs):
    xs = [x for x in xs if not math.isnan(x)]
    n = len(xs)
    if not n:
        return float("nan"), float("nan"), 0
    mu = sum(xs) / n
    sd = math.sqrt(sum((x - mu) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
    return mu, sd, n


def fmt(x):
    if math.isnan(x):
        return "–"
    a = abs(x)
    if a != 0 and (a >= 1e4 or a < 1e-3):
        return "%.3g" % x
    return "%.4g" % x if a >= 10 else "%.3f" % x


def paired(vals, m, ref, metric):
    a, b = vals.get((m, metric), {}), vals.get((ref, metric), {})
    d = [a[i] - b[i] for i in a if i in b and not math.isnan(a[i]) and not math.isnan(b[i])]
    mu, sd, n = stats(d)
    se = sd / math.sqrt(n) if n > 1 else float("nan")
    return mu, se, n


def short(m, strip):
    return m[len(strip):] if strip and m.startswith(strip) else m


def cmd_table(a):
    only = image_set(a.images_from) if a.images_from else None
    vals, methods = load([a.rows] + a.more, a.limit_images, only)
    metrics = a.metrics.split(",") if a.metrics else sorted({k[1] for k in vals})
    head = "| method | " + " | ".join(
        "%s %s" % (m, "↓" if m in LOWER_BETTER else "↑") for m in metrics) + " |"
    print(head)
    print("|---" * (len(metrics) + 1) + "|")
    best = {}
    for mt in metrics:
        means = [(stats(vals[(m, mt)].values())[0], m) for m in methods if (m, mt) in vals]
        means = [x for x in means if not math.isnan(x[0])]
        if means:
            best[mt] = (min if mt in LOWER_BETTER else max)(means)[1]
    for m in methods:
        cells = []
        for mt in metrics:
            mu, sd, n = stats(vals.get((m, mt), {}).values())
            c = "%s ± %s (%d)" % (fmt(mu), fmt(sd), n) if n else "–"
            if best.get(mt) == m:
                c = "**" + c + "**"
            cells.append(c)
        print("| `%s` | %s |" % (short(m, a.strip), " | ".join(cells)))


def cmd_paired(a):
    vals, methods = load(a.rows, a.limit_images)
    metrics = a.metrics.split(",") if a.metrics else sorted({k[1] for k in vals})
    print("| method − `%s` | " % short(a.ref, a.strip) + " | ".join(metrics) + " |")
    print("|---" * (len(metrics) + 1) + "|")
    for m in methods:
        if m == a.ref:
            continue
        cells = []
        for mt in metrics:
            mu, se, n = paired(vals, m, a.ref, mt)
            cells.append("%+.4f ± %.4f (z %.1f)" % (mu, se, mu / se) if n > 1 and se > 0
                         else ("%+.4f" % mu if n else "–"))
        print("| `%s` | %s |" % (short(m, a.strip), " | ".join(cells)))


def cmd_choose(a):
    vals, methods = load(a.rows)
    cands = [m for m in methods if m.startswith("expected-gradcam")]
    need = ("infidelity-gaussian", "insertion", "deletion")
    cands = [m for m in cands if all((m, k) in vals for k in need)]
    if not cands:
        print("choose: no expected-gradcam entry with infidelity-gaussian, insertion and "
              "deletion in %s" % a.rows, file=sys.stderr)
        return 1
    mean = {(m, k): stats(vals[(m, k)].values())[0] for m in cands for k in need}
    low = min(cands, key=lambda m: mean[(m, "infidelity-gaussian")])
    tied = []
    print("| setting | infidelity-gaussian − lowest | tied | insertion | deletion |")
    print("|---|---|---|---|---|")
    for m in cands:
        mu, se, n = paired(vals, m, low, "infidelity-gaussian")
        tie = m == low or (n > 1 and se > 0 and mu < a.z * se)
        if tie:
            tied.append(m)
        print("| `%s` | %s | %s | %.4f | %.4f |" % (
            short(m, a.strip), "%+.4g ± %.3g" % (mu, se) if m != low else "0 (lowest)",
            "yes" if tie else "no", mean[(m, "insertion")], mean[(m, "deletion")]))
    best = max(tied, key=lambda m: (mean[(m, "insertion")], -mean[(m, "deletion")]))
    print("\nlowest infidelity-gaussian: %s" % low)
    print("tied within %g paired standard errors: %d of %d" % (a.z, len(tied), len(cands)))
    print("chosen (highest insertion among the tied, then lowest deletion): %s" % best)
    if a.out:
        with open(a.out, "w") as f:
            f.write(best + "\n")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("table", "choose", "paired"):
        s = sub.add_parser(name)
        s.add_argument("rows")
        if name == "table":
            s.add_argument("more", nargs="*")
            s.add_argument("--images-from", default="")
        s.add_argument("--metrics", default="")
        s.add_argument("--strip", default="")
        s.add_argument("--limit-images", type=int, default=0)
        if name == "choose":
            s.add_argument("--out", default="")
            s.add_argument("--z", type=float, default=2.0)
        if name == "paired":
            s.add_argument("--ref", required=True)
    a = p.parse_args()
    return {"table": cmd_table, "choose": cmd_choose, "paired": cmd_paired}[a.cmd](a) or 0


if __name__ == "__main__":
    sys.exit(main())
