#!/usr/bin/env python3
"""egc_expert.py: Expected Grad-CAM written by someone who knows where the time goes, the
expert peer of bench_explain's expected-gradcam line. The model is split at the target layer
(cam_common.split): the trunk runs under torch.inference_mode (no activations kept, no
autograd), autograd runs through the head only (the target activation is cloned into a leaf
that requires grad), and the B*S sample points go through in chunks of `rows` rows. Same
definition as egc_naive.py (black baseline, alpha ~ U(0,1), noise rho = 0.15, softmax of the
clean top-1 class, aggregation A) and the same post-processing. One JSON line per (model,
mode), written as soon as it is measured.

usage: egc_expert.py [--models resnet50,vgg16,alexnet] [--batch 32] [--samples 32]
                     [--rows 128] [--size 224] [--repeats 3] [--warmup 1]
                     [--modes eager-fp32,eager-fp16,compile-fp16] [--device cuda]

Modes: eager-fp32 (TF32 allowed, NCHW), eager-fp16 (torch.autocast(float16), model and input
channels_last), compile-fp16 (eager-fp16 with trunk and head through torch.compile; the
warm-up runs include the compilation, whose time is reported as compile_s; a line with
"error" when torch.compile is missing or fails). One timed run: host batch to the device,
the clean pass, the sampled passes, maps to the host.
"""
import argparse
import sys
import time

import torch

import cam_common as cc


def run(name, mode, batch, s, rows, size, repeats, warmup, dev):
    m = cc.build(name).to(dev)
    fp16 = mode != "eager-fp32"
    if fp16:
        m = m.to(memory_format=torch.channels_last)
    trunk, head = cc.split(name, m)
    if mode == "compile-fp16":
        if not hasattr(torch, "compile"):
            raise RuntimeError("torch.compile is not available in torch " + torch.__version__)
        trunk, head = torch.compile(trunk), torch.compile(head)
    x_host = cc.host_images(batch, size)
    gen = torch.Generator(device=dev)

    def once():
        gen.manual_seed(0)
        x = x_host.to(dev)
        if fp16:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), cc.autocast(dev, fp16):
            Ax = trunk(x)
            c = head(Ax).argmax(1)
            Ax = Ax.float()
        cs = c.repeat_interleave(s)
        wsum = torch.zeros(batch, Ax.shape[1], device=dev)
        for r0 in range(0, batch * s, rows):
            r1 = min(batch * s, r0 + rows)
            # the chunk's sample points (the images of rows r0..r1-1)
            i0, i1 = r0 // s, (r1 - 1) // s + 1
            z = cc.sample_points(x[i0:i1], s, 0.15, gen)[r0 - i0 * s:r1 - i0 * s]
            if fp16:
                z = z.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode(), cc.autocast(dev, fp16):
                a = trunk(z)
            a = a.clone().requires_grad_(True)
            with cc.autocast(dev, fp16):
                out = head(a)
            y = torch.softmax(out.float(), 1).gather(1, cs[r0:r1, None]).sum()
            (g,) = torch.autograd.grad(y, a)
            img = torch.arange(r0, r1, device=dev) // s
            wsum.index_add_(0, img, g.float().mean((2, 3)))
        with torch.no_grad():
            maps = cc.finalize(wsum / s, Ax, (size, size))
        return maps.cpu()

    t0 = time.perf_counter()
    once()  # first call: compiles in compile mode
    first = time.perf_counter() - t0
    times = cc.timed(once, repeats, max(0, warmup - 1), dev)
    return times, first


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(cc.MODELS))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--rows", type=int, default=128)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--modes", default="eager-fp32,eager-fp16")
    ap.add_argument("--device", default="cuda")
    a = ap.parse_args()
    dev = torch.device(a.device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            print("egc_expert.py: no CUDA device", file=sys.stderr)
            return 1
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cuda.matmul.allow_tf32 = True
    rc = 0
    prec = {"eager-fp32": "fp32-tf32", "eager-fp16": "fp16-autocast-nhwc",
            "compile-fp16": "fp16-autocast-nhwc-compile"}
    for name in a.models.split(","):
        for mode in a.modes.split(","):
            if mode not in prec:
                print("egc_expert.py: unknown mode " + mode, file=sys.stderr)
                return 2
            try:
                times, first = run(name, mode, a.batch, a.samples, a.rows, a.size, a.repeats,
                                   a.warmup, dev)
                extra = {"rows_per_pass": a.rows, "mode": mode}
                if mode == "compile-fp16":
                    extra["compile_s"] = round(first, 1)
                cc.emit("pytorch-expert", dev, name, "expected-gradcam", prec[mode], a.batch,
                        a.samples, times, extra)
            except Exception as e:
                cc.emit_error("pytorch-expert", dev, name, "expected-gradcam", prec[mode], a.batch,
                              a.samples, e)
                rc = 3
            if dev.type == "cuda":
                torch.cuda.empty_cache()
    return rc


if __name__ == "__main__":
    sys.exit(main())
