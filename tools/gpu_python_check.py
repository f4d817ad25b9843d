#!/usr/bin/env python3
"""gpu_python_check.py: the Python module (python/egcam) on a GPU, a step of tools/gpu_check.sh.

On the CIFAR-10 ResNet-20 and 16 shared CIFAR-10 images, for Grad-CAM and Expected Grad-CAM
(S = 8): the module's CUDA maps (fp32 and mixed) against its CPU maps (Pearson >= 0.99 per map,
as the CUDA parity tests ask of mixed precision; the same classes), and against `egcam explain`
on the same GPU (bit for bit: both run with EGC_CUDA_CONV_FIND=0 and EGC_CUDA_HALF_FUSED=0, so
that neither times its choices); then the deletion, insertion and infidelity scores of the CPU's
Grad-CAM maps by a GPU evaluator against a CPU one (AUCs within 2e-3, infidelity within 1%);
and inputs in egcam.empty_pinned memory (page-locked on the GPU) give the same maps.
Prints one JSON line per comparison; exit 1 when one fails.

usage: gpu_python_check.py SHARED_DIR EGCAM_TOOL
Environment: EGCAM_LIBRARY (the CUDA build's libegcam.so), PYTHONPATH (python/ of the checkout),
DEVICE (default cuda; cpu runs the same comparisons without a GPU, a check of this script).
"""
import glob
import json
import os
import subprocess
import sys
import tempfile

os.environ["EGC_CUDA_CONV_FIND"] = "0"
os.environ["EGC_CUDA_HALF_FUSED"] = "0"
import numpy as np  # noqa: E402

import egcam  # noqa: E402


def main():
    shared, tool = sys.argv[1], sys.argv[2]
    dev = os.environ.get("DEVICE", "cuda")
    model_path = os.path.join(shared, "models", "resnet20_cifar10.onnx")
    paths = []
    for cls in ("cat", "ship", "truck", "bird"):
        paths += sorted(glob.glob(os.path.join(shared, "data", "cifar10-test", cls, "*.jpg")))[:4]
    names = ["%s_%s" % (os.path.basename(os.path.dirname(p)), os.path.basename(p)) for p in paths]
    m = egcam.Model(model_path)
    x = egcam.load_images(paths, m, preset="cifar")
    ok = True
    with tempfile.TemporaryDirectory() as d:
        links = []
        for p, n in zip(paths, names):
            links.append(os.path.join(d, n))
            os.symlink(p, links[-1])
        for meth in ("gradcam", "expected-gradcam"):
            cpu = egcam.Explainer(m, meth, preset="cifar", samples=8).explain(x)
            for prec in ("fp32", "mixed"):
                ex = egcam.Explainer(m, meth, preset="cifar", samples=8, device=dev,
                                     precision=prec, batch=64)
                g = ex.explain(x)
                r = [float(np.corrcoef(a.ravel(), b.ravel())[0, 1]) for a, b in zip(g.maps, cpu.maps)]
                line = {"check": "python-gpu-vs-cpu", "method": meth, "precision": prec,
                        "device": ex.device, "images": len(paths), "min_pearson": round(min(r), 6),
                        "max_abs": float(np.abs(g.maps - cpu.maps).max()),
                        "same_classes": bool(np.array_equal(g.classes, cpu.classes))}
                line["ok"] = line["min_pearson"] >= 0.99 and line["same_classes"]
                ok &= line["ok"]
                print(json.dumps(line), flush=True)
                out = os.path.join(d, "out-%s-%s" % (meth, prec))
                subprocess.run([tool, "explain", "--model", model_path, "--preset", "cifar",
                                "--method", meth, "--samples", "8", "--device", dev,
                                "--precision", prec, "--batch", "64", "--save", "npy", "-q",
                                "--out", out] + links, check=True)
                same = [bool(np.array_equal(np.load(os.path.join(out, os.path.splitext(n)[0] + ".npy")),
                                            g.maps[i])) for i, n in enumerate(names)]
                line = {"check": "python-vs-tool", "method": meth, "precision": prec,
                        "images": len(paths), "bit_identical": sum(same), "ok": all(same)}
                ok &= line["ok"]
                print(json.dumps(line), flush=True)
                ex.close()
        # inputs in page-locked memory: the same maps bit for bit
        buf = egcam.empty_pinned((len(paths),) + m.input_shape, device=dev)
        xp = egcam.load_images(paths, m, preset="cifar", out=buf)
        ex = egcam.Explainer(m, "expected-gradcam", preset="cifar", samples=8, device=dev,
                             precision="mixed", batch=64)
        same = bool(np.array_equal(ex.explain(xp).maps, ex.explain(x).maps))
        line = {"check": "python-pinned", "pinned": egcam.is_pinned(buf), "same_maps": same,
                "ok": same and (egcam.is_pinned(buf) or dev == "cpu")}
        ok &= line["ok"]
        print(json.dumps(line), flush=True)
        ex.close()
        # the metrics that run the model, on the GPU against the CPU, on the CPU's Grad-CAM maps
        maps = egcam.Explainer(m, "gradcam", preset="cifar").explain(x).maps
        cev = egcam.Evaluator(m, preset="cifar")
        gev = egcam.Evaluator(m, preset="cifar", device=dev, batch=64)
        want, got = cev.curves(x, maps), gev.curves(x, maps)
        wi, gi = cev.infidelity(x, maps), gev.infidelity(x, maps)
        line = {"check": "python-metrics-gpu-vs-cpu", "images": len(paths),
                "max_auc_diff": float(max(np.abs(want[k] - got[k]).max()
                                          for k in ("deletion", "insertion"))),
                "max_infidelity_rel_diff": float((np.abs(wi - gi) / np.maximum(np.abs(wi), 1e-6)).max())}
        line["ok"] = line["max_auc_diff"] <= 2e-3 and line["max_infidelity_rel_diff"] <= 1e-2
        ok &= line["ok"]
        print(json.dumps(line), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
