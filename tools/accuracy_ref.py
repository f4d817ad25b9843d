#!/usr/bin/env python3
"""Reference top-1 accuracy of the shared models, image by image, with tools/onnx_torch.py.

ImageNet models (tf preset) run on all 250 files of data/imagenet-sample: sorted by name, the k-th
file is class 4k (one image per class 0, 4, 8, ...); the script checks that the name in each file
name is one of the names of class 4k in models/imagenet_classes.txt. CIFAR-10 models (cifar
preset) run on the 1000 images of data/cifar10-test/<class>/ (sorted), the label being the class's
line in models/cifar10_classes.txt. Logits are computed in float64.

Writes test/golden/models/accuracy.json: per model the preset, input size, top1, count, and per
image the file (relative to the shared directory), label, predicted class and the margin between
the two largest logits (so a float32 engine can be compared image by image, allowing near ties).

Regenerate (from the repository root; the shared directory defaults to ../shared):
    /usr/bin/python3 tools/accuracy_ref.py [--shared DIR] [--out test/golden/models/accuracy.json]
"""

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_torch import OnnxTorch  # noqa: E402
from preprocess_ref import preprocess_batch  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# model stem -> (dataset, preset, input size)
MODELS = {
    "mobilenet_v1_025_128_imagenet": ("imagenet", "tf", 128),
    "mobilenet_v2_imagenet": ("imagenet", "tf", 224),
    "resnet20_cifar10": ("cifar10", "cifar", 32),
    "resnet56_cifar10": ("cifar10", "cifar", 32),
}


def default_shared():
    """The shared directory: $EGC_SHARED_DIR, else <repo>/../shared."""
    return os.environ.get("EGC_SHARED_DIR", os.path.join(os.path.dirname(REPO), "shared"))


def imagenet_sample(shared):
    """[(relative path, label)] of data/imagenet-sample, label = 4 * (sorted position)."""
    folder = os.path.join(shared, "data", "imagenet-sample")
    classes = open(os.path.join(shared, "models", "imagenet_classes.txt")).read().splitlines()
    files = sorted(f for f in os.listdir(folder) if f.lower().endswith((".jpeg", ".jpg", ".png")))
    out = []
    for k, f in enumerate(files):
        label = 4 * k
        name = f.split("_", 1)[1].rsplit(".", 1)[0].replace("_", " ").lower()
        names = [s.strip().lower() for s in classes[label].split(",")]
        if name not in names:
            raise ValueError(f"{f}: expected class {label} ({classes[label]})")
        out.append((f"data/imagenet-sample/{f}", label))
    return out


def cifar10_test(shared):
    """[(relative path, label)] of data/cifar10-test, label = line of the class folder."""
    classes = open(os.path.join(shared, "models", "cifar10_classes.txt")).read().split()
    out = []
    for label, c in enumerate(classes):
        folder = os.path.join(shared, "data", "cifar10-test", c)
        for f in sorted(os.listdir(folder)):
            out.append((f"data/cifar10-test/{c}/{f}", label))
    return out


def dataset(shared, name):
    return imagenet_sample(shared) if name == "imagenet" else cifar10_test(shared)


def evaluate(shared, stem, batch=25, dtype=torch.float64):
    """Runs one model over its dataset; returns the accuracy.json entry."""
    ds_name, preset, size = MODELS[stem]
    items = dataset(shared, ds_name)
    model = OnnxTorch(os.path.join(shared, "models", stem + ".onnx"), dtype=dtype)
    preds, margins = [], []
    with torch.no_grad():
        for i in range(0, len(items), batch):
            paths = [os.path.join(shared, p) for p, _ in items[i:i + batch]]
            logits = model(torch.from_numpy(preprocess_batch(paths, preset, size)))
            top2 = torch.topk(logits, 2, dim=1)
            preds += top2.indices[:, 0].tolist()
            margins += (top2.values[:, 0] - top2.values[:, 1]).tolist()
    labels = [lab for _, lab in items]
    correct = int(sum(p == lab for p, lab in zip(preds, labels)))
    return {
        "dataset": ds_name, "preset": preset, "input_size": size,
        "top1": correct / len(items), "correct": correct, "count": len(items),
        "files": [p for p, _ in items], "labels": labels, "predicted": preds,
        "margin": [round(m, 6) for m in margins],
    }


def _format(result):
    """JSON text with one line per key and each list on a single line."""
    lines = ["{"]
    top = [(k, v) for k, v in result.items() if k != "models"]
    for k, v in top:
        lines.append(f"  {json.dumps(k)}: {json.dumps(v)},")
    lines.append('  "models": {')
    stems = list(result["models"])
    for i, stem in enumerate(stems):
        entry = result["models"][stem]
        lines.append(f"    {json.dumps(stem)}: {{")
        keys = list(entry)
        for j, k in enumerate(keys):
            comma = "," if j + 1 < len(keys) else ""
            lines.append(f"      {json.dumps(k)}: {json.dumps(entry[k])}{comma}")
        lines.append("    }" + ("," if i + 1 < len(stems) else ""))
    lines += ["  }", "}", ""]
    text = "\n".join(lines)
    assert json.loads(text) == json.loads(json.dumps(result))
    return text


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=default_shared())
    ap.add_argument("--out", default=os.path.join(REPO, "test", "golden", "models", "accuracy.json"))
    ap.add_argument("--models", nargs="*", default=list(MODELS))
    args = ap.parse_args(argv)
    result = {"torch_version": torch.__version__, "compute_dtype": "float64",
              "command": "/usr/bin/python3 tools/accuracy_ref.py", "models": {}}
    for stem in args.models:
        t0 = time.time()
        entry = evaluate(args.shared, stem)
        result["models"][stem] = entry
        print(f"{stem}: top-1 {entry['top1'] * 100:.1f}% ({entry['correct']}/{entry['count']}), "
              f"{time.time() - t0:.0f} s", flush=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(_format(result))
    print("wrote", os.path.relpath(args.out, REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
