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
import argparse
import glob
import os
import subprocess
import tempfile

import numpy as np

from study_util import first_files, unit


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("egcam")
    p.add_argument("model")
    p.add_argument("folder")
    p.add_argument("--preset", default=None)
    p.add_argument("--ref", type=int, default=256)
    p.add_argument("--samples-list", default="4,8,16,32")
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--work", default=None)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="egc_alpha_")
    inputs = first_files(args.folder, args.limit, work)

    def run(S, seed, alpha, tag):
        out = os.path.join(work, tag)
        if not os.path.exists(os.path.join(out, "manifest.jsonl")):
            cmd = [args.egcam, "explain", "--model", args.model, "--method", "expected-gradcam",
                   "--samples", str(S), "--seed", str(seed), "--alpha", alpha, "--save", "npy",
                   "-q", "--device", args.device, "--batch", "64", "--out", out, inputs]
            if args.preset:
                cmd += ["--preset", args.preset]
            subprocess.run(cmd, check=True)
        return {os.path.basename(f): np.load(f)
                for f in glob.glob(os.path.join(out, "**", "*.npy"), recursive=True)}

    ref = run(args.ref, 99, "uniform", "ref")
    print("reference: %d maps, %d samples, uniform alphas" % (len(ref), args.ref))
    print("| S | alphas | mean | p90 | max |\n|---|---|---|---|---|")
    for S in [int(v) for v in args.samples_list.split(",")]:
        for alpha, seeds in (("uniform", (1, 2)), ("stratified", (1, 2)), ("grid", (1,))):
            d = []
            for seed in seeds:
                m = run(S, seed, alpha, "%s_S%d_s%d" % (alpha, S, seed))
                d += [float(np.linalg.norm(unit(m[k]) - unit(ref[k]))) for k in ref]
            d = np.array(d)
            print("| %d | %s | %.4f | %.4f | %.4f |" % (S, alpha, d.mean(), np.percentile(d, 90),
                                                       d.max()), flush=True)


if __name__ == "__main__":
    main()
