#!/usr/bin/env python3
"""gradcam_torch.py: plain PyTorch Grad-CAM, the peer of bench_explain's Grad-CAM line: a
forward hook keeps the target activation and a tensor hook its gradient, the whole model
runs under autograd, the top-1 logits of the batch are summed and backpropagated, then
w = mean_ij g, L = relu(sum_k w_k A_k), min-max, bilinear upsampling to the input size,
min-max. One JSON line per (model, precision) with bench_explain.c's keys.

usage: gradcam_torch.py [--models resnet50,vgg16,alexnet] [--batch 64] [--size 224]
                        [--repeats 5] [--warmup 2] [--precisions fp32,fp16] [--device cuda]
                        [--pinned]

Random-weight torchvision models (torch.manual_seed(0)), eval mode. fp32: TF32 allowed for
convolutions and matmuls, NCHW; fp16: torch.autocast(float16), model and input channels_last.
One timed run: the host batch to the device, forward, backward, maps, the maps back to the
host (device synchronised before and after). peak_device_bytes is
torch.cuda.max_memory_allocated() over the timed runs. --pinned: the host batch is in
page-locked memory (Tensor.pin_memory()), the peer of bench_explain --pinned; the line gets
"pinned": true.
"""
import argparse
import sys

import torch

import cam_common as cc


def run(name, precision, batch, size, repeats, warmup, dev, pinned=False):
    m = cc.build(name).to(dev)
    fp16 = precision == "fp16"
    if fp16:
        m = m.to(memory_format=torch.channels_last)
    store = {}

    def fwd_hook(_mod, _inp, out):
        store["A"] = out
        out.register_hook(lambda g: store.__setitem__("G", g))

    h = cc.target_module(name, m).register_forward_hook(fwd_hook)
    x_host = cc.host_images(batch, size)
    if pinned:
        x_host = x_host.pin_memory()

    def once():
        x = x_host.to(dev)
        if fp16:
            x = x.contiguous(memory_format=torch.channels_last)
        with cc.autocast(dev, fp16):
            logits = m(x)
        c = logits.argmax(1)
        logits.float().gather(1, c[:, None]).sum().backward()
        A = cc.to_image(name, store["A"].detach().float())
        G = cc.to_image(name, store["G"].float())
        with torch.no_grad():
            maps = cc.finalize(G.mean((2, 3)), A, (size, size))
        m.zero_grad(set_to_none=True)
        return maps.cpu()

    try:
        times = cc.timed(once, repeats, warmup, dev)
    finally:
        h.remove()
    cc.emit("pytorch-gradcam", dev, name, "gradcam",
            "fp32-tf32" if precision == "fp32" else "fp16-autocast-nhwc", batch, 1, times,
            extra={"pinned": pinned})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(cc.MODELS))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--precisions", default="fp32")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--pinned", action="store_true")
    a = ap.parse_args()
    dev = torch.device(a.device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            print("gradcam_torch.py: no CUDA device", file=sys.stderr)
            return 1
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cuda.matmul.allow_tf32 = True
    rc = 0
    for name in a.models.split(","):
        for p in a.precisions.split(","):
            try:
                run(name, p, a.batch, a.size, a.repeats, a.warmup, dev, a.pinned)
            except Exception as e:  # record and go on (e.g. out of memory)
                cc.emit_error("pytorch-gradcam", dev, name, "gradcam", p, a.batch, 1, e)
                rc = 3
            if dev.type == "cuda":
                torch.cuda.empty_cache()
    return rc


if __name__ == "__main__":
    sys.exit(main())
