#!/usr/bin/env python3
"""alpha_study.py: how close Expected Grad-CAM's maps come to a long run's, per sample count,
with uniform, stratified and grid interpolation coefficients (--alpha).

Runs `egcam explain --method expected-gradcam` (the method's defaults otherwise: black
baseline, no noise, combine B, softmax) on a folder of images: once with --samples REF
(uniform alphas, seed 99: the reference), then for each S of --samples-list with
--alpha uniform and stratified (seeds 1 and 2: two independent estimates) and grid (seed 1:
it draws nothing). Prints per S and scheme the L2 distance of the unit-norm maps to the
reference's, as mean, 90th percentile and maximum over the images and seeds. Needs numpy.

usage: tools/alpha_study.py EGCAM MODEL FOLDER [--preset P] [--ref 256]
                            [--samples-list 4,8,16,32] [--limit N] [--work DIR] [--device D]
--limit N: only the first N files of FOLDER (sorted by name).
"""
import os

import numpy as np

from study_util import distances, explain_maps, prepare, study_parser


def main():
    p = study_parser(__doc__, 256)
    p.add_argument("--samples-list", default="4,8,16,32")
    args = p.parse_args()
    work, inputs = prepare(args, "egc_alpha_")

    def run(S, seed, alpha, tag):
        return explain_maps(args, inputs, os.path.join(work, tag),
                            ["--samples", str(S), "--seed", str(seed), "--alpha", alpha,
                             "--batch", "64"], reuse=True)

    ref = run(args.ref, 99, "uniform", "ref")
    print("reference: %d maps, %d samples, uniform alphas" % (len(ref), args.ref))
    print("| S | alphas | mean | p90 | max |\n|---|---|---|---|---|")
    for S in [int(v) for v in args.samples_list.split(",")]:
        for alpha, seeds in (("uniform", (1, 2)), ("stratified", (1, 2)), ("grid", (1,))):
            d = []
            for seed in seeds:
                d += distances(run(S, seed, alpha, "%s_S%d_s%d" % (alpha, S, seed)), ref)
            d = np.array(d)
            print("| %d | %s | %.4f | %.4f | %.4f |" % (S, alpha, d.mean(), np.percentile(d, 90),
                                                       d.max()), flush=True)


if __name__ == "__main__":
    main()
