#!/usr/bin/env python3
"""torch_forward.py: PyTorch's forward throughput for the architectures egcam benchmarks,
the peer numbers next to bench_forward's, one JSON line per (model, precision, batch) with
bench_forward.c's keys.

usage: torch_forward.py [--models vgg16,resnet50,alexnet,mobilenet_v2] [--batch 256]
                        [--size 224] [--repeats 10] [--warmup 3] [--precisions fp32,fp16]
                        [--pinned] [--compile]

Random-weight torchvision models (torch.manual_seed(0)), eval mode, under torch.no_grad().
  fp32: fp32 storage, TF32 allowed for convolutions and matmuls (PyTorch's default for cuDNN
        convolutions; matmul TF32 switched on too), NCHW, cudnn.benchmark on.
  fp16: torch.autocast(float16) with the model and input in channels_last.
What one timed run measures is what bench_forward measures: the input batch copied from
host memory to the device, the forward, and the logits copied back to the host, with the
device synchronised before and after (torch.cuda.synchronize). The first `warmup` runs are
discarded; the median and minimum of `repeats` runs are reported. peak_device_bytes is
torch.cuda.max_memory_allocated() over the timed runs (PyTorch's caching allocator).
--pinned: the host batch is page-locked (Tensor.pin_memory()), the peer of bench_forward
--pinned. --compile: the model under torch.compile (default mode; compiled before the warm-up
runs, not timed). Both add their key ("pinned", "compiled") to the line.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torchvision


def build(name):
    torch.manual_seed(0)
    ctor = getattr(torchvision.models, name)
    try:
        return ctor(weights=None).eval()
    except TypeError:  # torchvision older than 0.13
        return ctor(pretrained=False).eval()


def bench(name, precision, batch, size, repeats, warmup, dev, pinned=False, compiled=False):
    m = build(name).to(dev)
    x_host = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(12345))
    if pinned:
        x_host = x_host.pin_memory()
    fp16 = precision == "fp16"
    if fp16:
        m = m.to(memory_format=torch.channels_last)
    if compiled:
        m = torch.compile(m)

    def once():
        with torch.no_grad():
            x = x_host.to(dev, non_blocking=False)
            if fp16:
                x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device_type="cuda", dtype=torch.float16):
                    y = m(x)
            else:
                y = m(x)
            return y.float().cpu()

    for _ in range(warmup):
        once()
    torch.cuda.synchronize(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        once()
        torch.cuda.synchronize(dev)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    rec = {
        "bench": "forward",
        "backend": "pytorch-" + torch.__version__,
        "device": torch.cuda.get_device_name(dev),
        "model": name,
        "method": "classify",
        "precision": "fp32-tf32" if precision == "fp32" else "fp16-autocast-nhwc",
        "batch": batch,
        "samples": 1,
        "median_ms": round(med * 1e3, 3),
        "min_ms": round(min(times) * 1e3, 3),
        "images_per_s": round(batch / med, 1),
        "peak_device_bytes": int(torch.cuda.max_memory_allocated(dev)),
        "pinned": pinned,
        "compiled": compiled,
        "git_sha": os.environ.get("EGC_GIT_SHA", "unknown"),
    }
    del m
    torch.cuda.empty_cache()
    return rec


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="vgg16,resnet50,alexnet,mobilenet_v2")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--precisions", default="fp32,fp16")
    ap.add_argument("--pinned", action="store_true")
    ap.add_argument("--compile", action="store_true")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("torch_forward: no CUDA device visible to PyTorch", file=sys.stderr)
        return 3
    dev = torch.device("cuda:0")
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cuda.matmul.allow_tf32 = True
    rc = 0
    for name in a.models.split(","):
        for prec in a.precisions.split(","):
            try:
                rec = bench(name, prec, a.batch, a.size, a.repeats, a.warmup, dev, a.pinned,
                            a.compile)
                print(json.dumps(rec), flush=True)
            except Exception as e:  # one failing configuration does not stop the others
                print(f"torch_forward: {name} {prec}: {e}", file=sys.stderr, flush=True)
                rc = 1
                torch.cuda.empty_cache()
    return rc


if __name__ == "__main__":
    sys.exit(main())
