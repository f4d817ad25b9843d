#!/usr/bin/env python3
"""compare_methods.py: several saliency methods on a few photos, side by side, with how
faithful each is. Explains every image with each method, measures deletion and insertion
(AUC of the class probability as the most salient pixels are removed / restored: lower
deletion and higher insertion are better), prints a table of the means, and writes one
picture: a row per image, a column per method, each map over the photo.

usage: examples/compare_methods.py MODEL.onnx PRESET OUT.png IMAGE [IMAGE ...]
  [--methods gradcam,gradcampp,expected-gradcam] [--samples 16] [--device cpu|cuda]
e.g. (from the checkout, after tools/setup.sh):
  PYTHONPATH=python python3 examples/compare_methods.py \\
      ../shared/models/resnet20_cifar10.onnx cifar compare.png ../shared/data/cifar10-test/cat/000*.jpg
"""
import argparse
import sys

import numpy as np

import egcam


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("preset", choices=["torchvision", "tf", "cifar"])
    ap.add_argument("out")
    ap.add_argument("images", nargs="+")
    ap.add_argument("--methods", default="gradcam,gradcampp,expected-gradcam")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cell", type=int, default=128, help="pixels per picture in the grid")
    a = ap.parse_args()

    model = egcam.Model(a.model)
    x, bad = egcam.load_images(a.images, model, preset=a.preset, errors="skip")
    for path, msg in bad:
        print("skipped %s: %s" % (path, msg), file=sys.stderr)
    paths = [p for p in a.images if p not in dict(bad)]
    if not paths:
        sys.exit("no image could be read")
    ev = egcam.Evaluator(model, device=a.device, preset=a.preset)
    methods = a.methods.split(",")
    cols = []
    print("%-22s %10s %10s" % ("method", "deletion", "insertion"))
    for m in methods:
        ex = egcam.Explainer(model, m, device=a.device, preset=a.preset, samples=a.samples)
        r = ex.explain(x)
        c = ev.curves(x, r.maps, classes=r.classes)
        print("%-22s %10.4f %10.4f" % (m, c["deletion"].mean(), c["insertion"].mean()))
        cols.append([egcam.overlay(p, r.maps[i], preset=a.preset) for i, p in enumerate(paths)])
    # the grid: nearest-neighbour resize of each overlay to cell x cell, 4-pixel white gaps
    cell, gap = a.cell, 4
    grid = np.full((len(paths) * (cell + gap) + gap, len(methods) * (cell + gap) + gap, 3), 255,
                   dtype=np.uint8)
    for j, col in enumerate(cols):
        for i, pic in enumerate(col):
            yy = np.arange(cell) * pic.shape[0] // cell
            xx = np.arange(cell) * pic.shape[1] // cell
            y0, x0 = gap + i * (cell + gap), gap + j * (cell + gap)
            grid[y0:y0 + cell, x0:x0 + cell] = pic[yy][:, xx]
    egcam.save_image(a.out, grid)
    print("wrote %s: %d images (rows) x %d methods (columns: %s)" % (
        a.out, len(paths), len(methods), ", ".join(methods)))


if __name__ == "__main__":
    main()
