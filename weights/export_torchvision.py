#!/usr/bin/env python3
"""export_torchvision.py: exports a torchvision image classifier with its ImageNet weights
to an ONNX file that egcam loads, and says which target layer and preset to use with it.

usage: export_torchvision.py NAME [--out NAME.onnx] [--weights DEFAULT|IMAGENET1K_V1|...|none]
                             [--size S] [--check EGCAM]

NAME is a torchvision.models constructor: vgg16, resnet50, alexnet, resnet18, densenet121,
mobilenet_v3_large, efficientnet_b0, ... The weights are downloaded by torchvision (this
needs network access once; they are cached in ~/.cache/torch); --weights none exports the
same graph with random weights (for parity or speed tests, offline).

The file is written with the legacy TorchScript exporter (dynamo=False where the installed
torch knows it), opset 13, input "input" [N,3,S,S] with a dynamic batch axis, output
"logits" [N,1000], constants folded and BatchNormalization folded into the convolutions
(eval mode). Afterwards the script lists the graph's operators, flags any that egcam does
not run, and prints the target layer that `egcam explain --layer auto` will pick (the last
4-D activation with spatial size > 1 produced by a compute op: ResNet's last block output,
VGG/AlexNet's last conv ReLU before the final pooling) and the preset (torchvision). With
--check EGCAM it also runs `EGCAM info --json` on the file and compares.

Needs torch, torchvision and onnx (pip install torch torchvision onnx).
"""
import argparse
import inspect
import json
import os
import subprocess
import sys

# Operators egcam runs (csrc/model/lower.c) and those it folds away when their inputs are
# constant (csrc/model/fold.c); Dropout and Identity are aliases.
RUNTIME_OPS = {
    "Conv", "Gemm", "MatMul", "Relu", "Clip", "Sigmoid", "Add", "Sub", "Mul", "Div",
    "MaxPool", "AveragePool", "GlobalAveragePool", "BatchNormalization", "Reshape", "Flatten",
    "Concat", "Slice", "Pad", "Softmax", "Transpose", "Dropout", "Identity",
    "HardSigmoid", "HardSwish", "LeakyRelu", "PRelu",
    "GlobalMaxPool", "ReduceMean", "ReduceMax",  # the Reduce* over the spatial axes only
    "Squeeze", "Unsqueeze",
}
FOLDED_OPS = {
    "Constant", "ConstantOfShape", "Shape", "Size", "Gather", "Unsqueeze", "Squeeze", "Cast",
    "Range", "Where", "Expand", "Pow", "Mod", "Equal", "Less", "Greater", "LessOrEqual",
    "GreaterOrEqual", "Min", "Max", "And", "Or", "Xor", "Neg", "Abs", "Sqrt", "Floor",
}
# What `--layer auto` counts as a compute op (csrc/model/model.c).
COMPUTE_OPS = {"Conv", "Relu", "Clip", "Add", "Mul", "Sigmoid", "BatchNormalization"}


def build(name, weights):
    import torchvision
    ctor = getattr(torchvision.models, name, None)
    if ctor is None or not callable(ctor):
        sys.exit(f"export_torchvision: torchvision.models has no classifier '{name}' "
                 f"(e.g. vgg16, resnet50, alexnet)")
    try:
        m = ctor(weights=None if weights == "none" else weights)
    except TypeError:  # torchvision older than 0.13: pretrained=True/False
        m = ctor(pretrained=weights != "none")
    m.eval()
    return m


def input_size(name, weights, given):
    if given:
        return given
    if weights != "none":
        try:
            import torchvision
            w = torchvision.models.get_model_weights(name)[weights if weights != "DEFAULT"
                                                           else "DEFAULT"]
            crop = w.transforms().crop_size
            return int(crop[0] if isinstance(crop, (list, tuple)) else crop)
        except Exception:  # older torchvision, or weights without transforms
            pass
    return 299 if name.startswith("inception") else 224


def export(m, path, size):
    import torch
    x = torch.zeros(1, 3, size, size)
    kw = dict(opset_version=13, input_names=["input"], output_names=["logits"],
              dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
              do_constant_folding=True)
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kw["dynamo"] = False
    with torch.no_grad():
        torch.onnx.export(m, x, path, **kw)


def auto_layer(path):
    """The tensor `--layer auto` picks, by egcam's rule, from ONNX shape inference."""
    import onnx
    from onnx import shape_inference
    model = shape_inference.infer_shapes(onnx.load(path))
    shapes = {}
    for vi in list(model.graph.value_info) + list(model.graph.output):
        dims = [d.dim_value if d.HasField("dim_value") else -1
                for d in vi.type.tensor_type.shape.dim]
        shapes[vi.name] = dims
    best = None
    for n in model.graph.node:
        if n.op_type not in COMPUTE_OPS or not n.output:
            continue
        s = shapes.get(n.output[0])
        if s and len(s) == 4 and s[2] > 0 and s[3] > 0 and s[2] * s[3] > 1:
            best = (n.output[0], n.op_type, s)
    ops = sorted({n.op_type for n in model.graph.node})
    return best, ops


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("name", help="torchvision.models constructor, e.g. vgg16, resnet50")
    ap.add_argument("--out", help="output file (default NAME.onnx)")
    ap.add_argument("--weights", default="DEFAULT",
                    help="torchvision weights enum name (DEFAULT, IMAGENET1K_V1, ...) or none")
    ap.add_argument("--size", type=int, default=0, help="input side (default: the weights' crop)")
    ap.add_argument("--check", metavar="EGCAM", help="an egcam binary: compare with `egcam info`")
    a = ap.parse_args()
    out = a.out or a.name + ".onnx"
    size = input_size(a.name, a.weights, a.size)

    m = build(a.name, a.weights)
    export(m, out, size)
    best, ops = auto_layer(out)
    unknown = [o for o in ops if o not in RUNTIME_OPS and o not in FOLDED_OPS]
    print(f"{a.name}: wrote {out} ({os.path.getsize(out) / 1e6:.0f} MB), input [N,3,{size},{size}], "
          f"weights {a.weights}")
    print(f"operators: {', '.join(ops)}")
    if unknown:
        print(f"warning: egcam does not run {', '.join(unknown)}; `egcam info {out}` will name "
              f"the node (see weights/README.md)")
    if best:
        name, op, shape = best
        print(f"target layer: {name} ({op}, {shape[1]}x{shape[2]}x{shape[3]}): what "
              f"`--layer auto` picks")
    else:
        print("target layer: none found (no 4-D activation with spatial size > 1): not a CNN?")
    print(f"preset: torchvision (resize the short side to {round(size * 256 / 224)}, centre "
          f"crop {size}, ImageNet mean/std)")
    print(f"next: egcam info {out}")
    print(f"      egcam explain --model {out} --preset torchvision --method gradcam "
          f"--out maps IMAGES...")
    if a.check:
        r = subprocess.run([a.check, "info", "--json", out], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"egcam info failed ({r.returncode}): {r.stderr.strip()}")
            return 1
        picked = [json.loads(l) for l in r.stdout.splitlines() if '"auto": true' in l]
        tensor = picked[0]["tensor"] if picked else None
        same = best is not None and tensor == best[0]
        print(f"egcam info: loads; auto layer {tensor} ({'same' if same else 'DIFFERENT'})")
        return 0 if same else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
