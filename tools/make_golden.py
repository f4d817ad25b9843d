#!/usr/bin/env python3
"""Golden files for the shared models: logits, top-1, target-layer activations and gradients.

For each model, 8 images are preprocessed with tools/preprocess_ref.py and run through the
independent interpreter tools/onnx_torch.py in float64 (so the reference itself carries no float32
rounding); results are stored as float32 (.npy, little-endian, C order) in
test/golden/models/<model_stem>/:

  inputs.json  image paths relative to the shared directory, labels, preset, input size, target
               layer tensor name and shape, per-image sum and sum of squares of the float32 input,
               how far a float32 run of the same interpreter lands from the float64 reference,
               torch version and the command
  logits.npy   float32 [N, classes]
  top1.npy     int64   [N]                 argmax of the float64 logits
  act.npy      float32 [N, K, h, w]        A(x_i): the target layer's output
  grad.npy     float32 [N, K, h, w]        d logits[i, top1_i] / d A(x_i)
  input.npy    float32 [N, 3, S, S]        the preprocessed inputs (only where small: CIFAR models)

Images: ImageNet models take data/imagenet-sample sorted by name, every 31st file from the first
(8 files, including the grayscale n04008634_projectile.JPEG); CIFAR-10 models take the first file
of each of the first 8 class folders of data/cifar10-test. The target layer is found from the
graph: the last Relu/Clip before the global pooling (MobileNet v2: 1280x7x7, MobileNet v1:
256x4x4 at 128 px, ResNet-20/56: 64x8x8). If all folders together exceeded 6 MB, MobileNet v2
would keep 6 images.

Regenerate (from the repository root; the shared directory defaults to ../shared):
    /usr/bin/python3 tools/make_golden.py [--shared DIR] [--out test/golden/models]
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_torch import OnnxTorch, find_target_layer  # noqa: E402
from preprocess_ref import preprocess_batch  # noqa: E402
from accuracy_ref import MODELS, default_shared, imagenet_sample, cifar10_test  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMAND = "/usr/bin/python3 tools/make_golden.py"
N_IMAGES = 8
SIZE_LIMIT = 6 * 1024 * 1024
INPUT_NPY_LIMIT = 256 * 1024  # store input.npy only below this size


def pick_images(shared, dataset):
    """The golden images of a dataset: [(relative path, label)], N_IMAGES of them."""
    if dataset == "imagenet":
        return imagenet_sample(shared)[::31][:N_IMAGES]
    firsts = {}
    for path, label in cifar10_test(shared):
        firsts.setdefault(label, (path, label))
    return [firsts[k] for k in sorted(firsts)][:N_IMAGES]


def reference(model, x, target):
    """float64 logits [N,C], top1 [N], A [N,K,h,w] and d logits[i,top1_i]/dA [N,K,h,w]."""
    logits, cap = model(x, capture=[target])
    top1 = logits.argmax(dim=1)
    # Images are independent, so one backward pass of the sum gives every image's gradient.
    sel = logits.gather(1, top1[:, None]).sum()
    grad = torch.autograd.grad(sel, cap[target])[0]
    return logits.detach(), top1, cap[target].detach(), grad


def max_rel(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def golden_bytes(shared, stem, n):
    """Bytes of the .npy payloads that make_model would write with n images (headers excluded)."""
    proto_model = OnnxTorch(os.path.join(shared, "models", stem + ".onnx"))
    _, _, size = MODELS[stem]
    target, _ = find_target_layer(proto_model.proto)
    with torch.no_grad():
        logits, cap = proto_model(torch.zeros(1, 3, size, size), capture=[target])
    per = 2 * cap[target].numel() * 4 + logits.numel() * 4 + 8
    inp = 3 * size * size * 4 * n
    return n * per + (inp if inp <= INPUT_NPY_LIMIT else 0)


def make_model(shared, out_root, stem, n):
    dataset, preset, size = MODELS[stem]
    items = pick_images(shared, dataset)[:n]
    model = OnnxTorch(os.path.join(shared, "models", stem + ".onnx"), dtype=torch.float64)
    target, op = find_target_layer(model.proto)
    x32 = preprocess_batch([os.path.join(shared, p) for p, _ in items], preset, size)
    logits, top1, act, grad = reference(model, torch.from_numpy(x32), target)
    # How far the same computation in float32 lands: a scale for the engine's tolerances.
    m32 = OnnxTorch(os.path.join(shared, "models", stem + ".onnx"), dtype=torch.float32)
    l32, t32, a32, g32 = reference(m32, torch.from_numpy(x32), target)
    fp32_dev = {
        "logits_max_abs": float((l32.double() - logits).abs().max()),
        "act_max_rel": max_rel(a32.double(), act),
        "grad_max_rel": max_rel(g32.double(), grad) if bool((t32 == top1).all()) else None,
        "top1_equal": bool((t32 == top1).all()),
    }
    folder = os.path.join(out_root, stem)
    os.makedirs(folder, exist_ok=True)
    np.save(os.path.join(folder, "logits.npy"), logits.numpy().astype(np.float32))
    np.save(os.path.join(folder, "top1.npy"), top1.numpy().astype(np.int64))
    np.save(os.path.join(folder, "act.npy"), act.numpy().astype(np.float32))
    np.save(os.path.join(folder, "grad.npy"), grad.numpy().astype(np.float32))
    files = ["inputs.json", "logits.npy", "top1.npy", "act.npy", "grad.npy"]
    if x32.nbytes <= INPUT_NPY_LIMIT:
        np.save(os.path.join(folder, "input.npy"), x32)
        files.append("input.npy")
    elif os.path.exists(os.path.join(folder, "input.npy")):
        os.remove(os.path.join(folder, "input.npy"))
    x64 = x32.astype(np.float64)
    info = {
        "model": f"models/{stem}.onnx",
        "images": [p for p, _ in items],
        "labels": [lab for _, lab in items],
        "preset": preset,
        "input_size": size,
        "input_sum": [float(v) for v in x64.sum(axis=(1, 2, 3))],
        "input_sumsq": [float(v) for v in (x64 * x64).sum(axis=(1, 2, 3))],
        "target_layer": target,
        "target_op": op,
        "target_shape": list(act.shape[1:]),
        "num_classes": int(logits.shape[1]),
        "grad_of": "d logits[i, top1[i]] / d target_layer(x_i)",
        "compute_dtype": "float64, stored as float32",
        "fp32_deviation": fp32_dev,
        "files": files,
        "torch_version": torch.__version__,
        "command": COMMAND,
    }
    with open(os.path.join(folder, "inputs.json"), "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    print(f"{stem}: target '{target}' ({op}) {list(act.shape[1:])}, {n} images, "
          f"top1 {top1.tolist()} labels {[lab for _, lab in items]}")
    print(f"  float32 run vs float64: {fp32_dev}")
    return sum(os.path.getsize(os.path.join(folder, f)) for f in files)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=default_shared())
    ap.add_argument("--out", default=os.path.join(REPO, "test", "golden", "models"))
    args = ap.parse_args(argv)
    counts = {stem: N_IMAGES for stem in MODELS}
    if sum(golden_bytes(args.shared, s, n) for s, n in counts.items()) > SIZE_LIMIT:
        counts["mobilenet_v2_imagenet"] = 6
    total = 0
    for stem, n in counts.items():
        total += make_model(args.shared, args.out, stem, n)
    print(f"total {total / 1e6:.2f} MB in {os.path.relpath(args.out, REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
