"""study_util.py: what the sample-count studies (adaptive_study.py, alpha_study.py) share:
their common arguments, the `egcam explain` run and the distances of unit-norm maps."""
import argparse
import glob
import os
import subprocess
import tempfile

import numpy as np


def unit(a):
    """a scaled to unit L2 norm (a itself when it is all zeros)."""
    n = np.linalg.norm(a)
    return a / n if n > 0 else a


def first_files(folder, limit, work):
    """folder itself when limit <= 0, else a folder under work holding links to the first
    `limit` files of folder (sorted by name)."""
    if limit <= 0:
        return folder
    sub = os.path.join(work, "inputs")
    os.makedirs(sub, exist_ok=True)
    for f in sorted(os.listdir(folder))[:limit]:
        dst = os.path.join(sub, f)
        if not os.path.lexists(dst):
            os.symlink(os.path.abspath(os.path.join(folder, f)), dst)
    return sub


def study_parser(doc, ref):
    """An argument parser with the arguments every study takes: EGCAM MODEL FOLDER, --preset,
    --ref (samples of the reference run, default ref), --device, --work, --limit."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("egcam")
    p.add_argument("model")
    p.add_argument("folder")
    p.add_argument("--preset", default=None)
    p.add_argument("--ref", type=int, default=ref)
    p.add_argument("--device", default="cpu")
    p.add_argument("--work", default=None)
    p.add_argument("--limit", type=int, default=0)
    return p


def prepare(args, prefix):
    """The work folder (--work, or a new temporary one) and the inputs (--limit applied)."""
    work = args.work or tempfile.mkdtemp(prefix=prefix)
    return work, first_files(args.folder, args.limit, work)


def explain_maps(args, inputs, out, extra, reuse=False):
    """Runs `egcam explain --method expected-gradcam` with the options extra on inputs into
    out (not again when reuse and out holds a manifest) and returns its maps by file name."""
    if not (reuse and os.path.exists(os.path.join(out, "manifest.jsonl"))):
        cmd = [args.egcam, "explain", "--model", args.model, "--method", "expected-gradcam",
               "--save", "npy", "-q", "--device", args.device, "--out", out] + extra + [inputs]
        if args.preset:
            cmd += ["--preset", args.preset]
        subprocess.run(cmd, check=True)
    return {os.path.basename(f): np.load(f)
            for f in glob.glob(os.path.join(out, "**", "*.npy"), recursive=True)}


def distances(maps, ref):
    """The L2 distance of each map's unit-norm version to its reference's."""
    return [float(np.linalg.norm(unit(maps[k]) - unit(ref[k]))) for k in ref]
