#!/usr/bin/env python3
"""egc_naive.py: Expected Grad-CAM as one would hand-batch it with autograd, the naive peer
of bench_explain's expected-gradcam line: the B*S sample points of B images (black
baseline, alpha ~ U(0,1), Gaussian noise rho = 0.15) go through the WHOLE model in ONE
autograd pass, with a forward hook keeping the target activation and a tensor hook its
gradient; the score is the softmax probability of each image's top-1 class (from a clean
forward); aggregation A: w = mean over samples and positions of the gradient,
L = relu(sum_k w_k A_k(x)), min-max, bilinear upsampling, min-max. One JSON line per model.

usage: egc_naive.py [--models resnet50,vgg16,alexnet] [--batch 32] [--samples 32]
                    [--size 224] [--repeats 3] [--warmup 1] [--device cuda]

When B*S rows do not fit in device memory the batch is halved until they do; the line then
says so ("batch" is the batch that ran, "requested_batch" the one asked for); a model for
which even one image does not fit gives a line with "error". fp32 with TF32 allowed. One
timed run: host batch to the device, the clean and the sampled passes, maps to the host.
"""
import argparse
import sys

import torch

import cam_common as cc


def run(name, batch, s, size, repeats, warmup, dev):
    m = cc.build(name).to(dev)
    store = {}

    def fwd_hook(_mod, _inp, out):
        store["A"] = out
        if out.requires_grad:
            out.register_hook(lambda g: store.__setitem__("G", g))

    h = cc.target_module(name, m).register_forward_hook(fwd_hook)
    x_host = cc.host_images(batch, size)
    gen = torch.Generator(device=dev)

    def once():
        gen.manual_seed(0)
        x = x_host.to(dev)
        with torch.no_grad():
            c = m(x).argmax(1)
            Ax = store["A"].clone()
        z = cc.sample_points(x, s, 0.15, gen).requires_grad_(False)
        logits = m(z)  # all B*S rows in one autograd pass
        cs = c.repeat_interleave(s)
        torch.softmax(logits, 1).gather(1, cs[:, None]).sum().backward()
        G = store["G"]
        with torch.no_grad():
            w = G.mean((2, 3)).view(batch, s, -1).mean(1)
            maps = cc.finalize(w, Ax, (size, size))
        m.zero_grad(set_to_none=True)
        store.clear()
        return maps.cpu()

    try:
        return cc.timed(once, repeats, warmup, dev)
    finally:
        h.remove()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(cc.MODELS))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cuda")
    a = ap.parse_args()
    dev = torch.device(a.device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            print("egc_naive.py: no CUDA device", file=sys.stderr)
            return 1
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cuda.matmul.allow_tf32 = True
    rc = 0
    for name in a.models.split(","):
        b = a.batch
        while True:
            try:
                times = run(name, b, a.samples, a.size, a.repeats, a.warmup, dev)
                extra = {"rows_per_pass": b * a.samples, "requested_batch": a.batch}
                if b != a.batch:
                    extra["note"] = "out of memory at batch %d: halved until it fit" % a.batch
                cc.emit("pytorch-naive", dev, name, "expected-gradcam", "fp32-tf32", b, a.samples,
                        times, extra)
                break
            except Exception as e:
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
                if cc.is_oom(e) and b > 1:
                    b //= 2
                    continue
                cc.emit_error("pytorch-naive", dev, name, "expected-gradcam", "fp32-tf32", b,
                              a.samples, e)
                rc = 3
                break
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return rc


if __name__ == "__main__":
    sys.exit(main())
