#!/usr/bin/env python3
"""adaptive_study.py: what adaptive sample counts (--samples-tol) cost and give.

Runs `egcam explain` with expected-gradcam on a folder of images with fixed sample counts and
with --samples-tol, and prints for each setting the mean sample count per image and the L2
distance of its unit-norm maps to those of a long fixed run (the reference, --samples REF),
as mean, 90th percentile and maximum over the images. Needs numpy.

usage: tools/adaptive_study.py EGCAM MODEL FOLDER [--preset P] [--ref 64] [--fixed 16,24,32]
                               [--tol 0.05,0.1] [--max 64] [--round 8] [--device cpu]
                               [--work DIR] [--limit N]
--limit N: only the first N files of FOLDER (sorted by name).
"""
import json
import os
import sys

import numpy as np

from study_util import distances, explain_maps, prepare, study_parser


def main():
    p = study_parser(__doc__, 64)
    p.add_argument("--fixed", default="16,24,32")
    p.add_argument("--tol", default="0.05,0.1")
    p.add_argument("--max", type=int, default=64)
    p.add_argument("--round", type=int, default=8)
    args = p.parse_args()
    work, inputs = prepare(args, "egc_adaptive_")
    settings = [("fixed S=%d" % s, ["--samples", str(s)]) for s in map(int, args.fixed.split(","))]
    settings += [("tol %g (max %d, rounds of %d)" % (t, args.max, args.round),
                  ["--samples", str(args.max), "--samples-tol", str(t), "--samples-round",
                   str(args.round)]) for t in map(float, args.tol.split(","))]
    ref = explain_maps(args, inputs, os.path.join(work, "ref"), ["--samples", str(args.ref)])
    print("| setting | mean samples | distance to S=%d: mean | 90th pct | max |" % args.ref)
    print("|---|---|---|---|---|")
    for k, (name, extra) in enumerate(settings):
        out = os.path.join(work, "s%d" % k)
        d = distances(explain_maps(args, inputs, out, extra), ref)
        n = [json.loads(line)["samples"] for line in open(os.path.join(out, "manifest.jsonl"))]
        print("| %s | %.1f | %.4f | %.4f | %.4f |" % (name, np.mean(n), np.mean(d),
                                                     np.percentile(d, 90), np.max(d)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
