#!/usr/bin/env python3
"""export_torchvision.py: exports torchvision's VGG16, ResNet-50 and AlexNet with random
weights (the graphs of the published Grad-CAM evaluations) to ONNX, plus a small PyTorch
reference for each, for the CUDA/CPU parity tests and the forward benchmarks.

usage: export_torchvision.py OUT_DIR [--models vgg16,resnet50,alexnet] [--size 224]

For each model NAME it writes into OUT_DIR:
  NAME.onnx         opset 13, input "input" [N,3,224,224] with a dynamic batch axis,
                    output "logits" [N,1000]; the legacy TorchScript exporter
                    (dynamo=False where the installed torch knows it)
  NAME_input.npy    4 fixed random inputs [4,3,224,224] float32 (numpy seed 1234)
  NAME_logits.npy   PyTorch's logits for them [4,1000] float32, computed in fp32 on the CPU
                    with TF32 disabled (cuDNN and matmul TF32 switched off as well)
Weights are torchvision's random initialisation after torch.manual_seed(0), in eval mode
(Dropout is the identity; the exporter folds ResNet-50's BatchNormalization into the Convs). Needs torch,
torchvision, onnx and numpy; no network.
"""
import argparse
import inspect
import os
import sys

import numpy as np
import torch
import torchvision


def build(name):
    torch.manual_seed(0)
    ctor = getattr(torchvision.models, name)
    try:
        m = ctor(weights=None)
    except TypeError:  # torchvision older than 0.13
        m = ctor(pretrained=False)
    m.eval()
    if name.startswith("vit_"):  # as cam_common.build: a random head (torchvision's is zero)
        with torch.no_grad():
            m.heads.head.weight.normal_(0.0, 0.02)
    return m


def export(m, path, size):
    x = torch.zeros(1, 3, size, size)
    kw = dict(opset_version=13, input_names=["input"], output_names=["logits"],
              dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
              do_constant_folding=True)
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kw["dynamo"] = False
    if isinstance(m, torchvision.models.VisionTransformer):
        # with gradients off, eval-mode attention takes torch's fused fast path, which the
        # exporter cannot write; with them on it exports the attention op by op
        torch.onnx.export(m, x, path, **kw)
        return
    with torch.no_grad():
        torch.onnx.export(m, x, path, **kw)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--models", default="vgg16,resnet50,alexnet")
    ap.add_argument("--size", type=int, default=224)
    a = ap.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    for name in a.models.split(","):
        m = build(name)
        path = os.path.join(a.out_dir, name + ".onnx")
        export(m, path, a.size)
        import onnx
        ops = sorted({n.op_type for n in onnx.load(path, load_external_data=False).graph.node})
        x = np.random.RandomState(1234).standard_normal((4, 3, a.size, a.size)).astype(np.float32)
        with torch.no_grad():
            y = m(torch.from_numpy(x)).float().numpy()
        np.save(os.path.join(a.out_dir, name + "_input.npy"), x)
        np.save(os.path.join(a.out_dir, name + "_logits.npy"), y)
        print(f"{name}: {path} ({os.path.getsize(path) / 1e6:.0f} MB), ops {','.join(ops)}, "
              f"logit range [{y.min():.3f}, {y.max():.3f}]", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
