#!/usr/bin/env python3
"""PyTorch CPU peer: classification throughput (images/s) of MobileNet v2 at 224x224, fp32.

Two implementations, each at every batch size given:
  torchvision  torchvision.models.mobilenet_v2() with random weights (eager PyTorch, BN unfolded)
  onnx_torch   the shared models/mobilenet_v2_imagenet.onnx run by tools/onnx_torch.py in float32
Both run in eval mode under torch.inference_mode with torch.set_num_threads(--threads). Inputs are
random tensors already in memory (no decoding or preprocessing is timed). After --warmup untimed
runs, --repeats forward passes are timed one by one; median and minimum are reported.

Prints one JSON line per configuration: bench, backend, device, model, impl, method, precision,
batch, median_ms, min_ms, images_per_s, threads, repeats, torch, peak_rss_mib, git_sha,
loadavg_1m_before (the 1-minute load average before the configuration: other processes on the
cores make CPU timings unreliable).

Run (from the repository root; the shared directory defaults to ../shared):
    /usr/bin/python3 benchmarks/peers/classify_cpu_torch.py [--threads N] [--batch 1,16]
        [--repeats 20] [--warmup 3] [--impl torchvision,onnx_torch] [--shared DIR]
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch
import torchvision

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))


def cpu_name():
    """CPU model name from /proc/cpuinfo (platform.processor() where that is missing)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def git_sha():
    try:
        return subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def build(impl, shared):
    """Returns (model name, callable taking x [B,3,224,224] float32)."""
    if impl == "torchvision":
        torch.manual_seed(0)
        return "mobilenet_v2", torchvision.models.mobilenet_v2().eval()
    if impl == "onnx_torch":
        from onnx_torch import OnnxTorch
        path = os.path.join(shared, "models", "mobilenet_v2_imagenet.onnx")
        return "mobilenet_v2_imagenet", OnnxTorch(path, dtype=torch.float32).eval()
    raise ValueError(f"unknown --impl '{impl}'")


def time_model(fn, batch, warmup, repeats):
    """Median and minimum milliseconds of fn(x) over repeats, after warmup calls."""
    x = torch.randn(batch, 3, 224, 224)
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            fn(x)
        for _ in range(repeats):
            t0 = time.perf_counter()
            y = fn(x)
            times.append((time.perf_counter() - t0) * 1e3)
            assert y.shape == (batch, 1000), y.shape
    return statistics.median(times), min(times)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batch", default="1,16", help="comma-separated batch sizes")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--impl", default="torchvision,onnx_torch")
    ap.add_argument("--shared", default=os.environ.get(
        "EGC_SHARED_DIR", os.path.join(os.path.dirname(REPO), "shared")))
    args = ap.parse_args(argv)
    if args.threads < 1 or args.repeats < 1 or args.warmup < 0:
        ap.error("--threads and --repeats must be >= 1, --warmup >= 0")
    torch.set_num_threads(args.threads)
    device, sha = cpu_name(), git_sha()
    for impl in args.impl.split(","):
        model, fn = build(impl, args.shared)
        for batch in (int(b) for b in args.batch.split(",")):
            load = os.getloadavg()[0]  # other processes competing for the cores skew CPU timings
            med, mn = time_model(fn, batch, args.warmup, args.repeats)
            print(json.dumps({
                "bench": "classify_cpu_torch", "backend": "torch-cpu", "device": device,
                "model": model, "impl": impl, "method": "classify", "precision": "fp32",
                "batch": batch, "median_ms": round(med, 3), "min_ms": round(mn, 3),
                "images_per_s": round(batch * 1e3 / med, 2), "threads": torch.get_num_threads(),
                "repeats": args.repeats, "torch": torch.__version__,
                "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "git_sha": sha, "loadavg_1m_before": round(load, 2),
            }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
