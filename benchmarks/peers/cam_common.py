"""cam_common.py: what the PyTorch explanation peers (gradcam_torch.py, egc_naive.py,
egc_expert.py) share: the random-weight torchvision models, their target layers (the layer
egcam's `auto` picks: ResNet-50's last block output, VGG16's and AlexNet's last conv-ReLU
before the final pooling) and their split into a trunk (input -> target activation) and a
head (target activation -> logits), the sample points of Expected Grad-CAM, the shared
post-processing of a CAM (relu, min-max, bilinear upsampling with half-pixel centres,
min-max), timing, and the JSON line with bench_forward.c's / bench_explain.c's keys.
"""
import contextlib
import json
import os
import statistics
import time

import torch
import torch.nn.functional as F
import torchvision

MODELS = ("resnet50", "vgg16", "alexnet")
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def build(name):
    torch.manual_seed(0)
    ctor = getattr(torchvision.models, name)
    try:
        m = ctor(weights=None).eval()
    except TypeError:  # torchvision older than 0.13
        m = ctor(pretrained=False).eval()
    if name.startswith("vit_"):  # torchvision starts the head at zero: no gradient at all
        with torch.no_grad():
            m.heads.head.weight.normal_(0.0, 0.02)
    return m


def to_image(name, t):
    """The target activation as [N,C,h,w]: a vision transformer's tokens [N,1+h*w,C] without
    the class token, the patches laid out as an image (pytorch-grad-cam's reshape_transform);
    a Swin transformer's channels-last [N,h,w,C] transposed; other models' activations as
    they are."""
    if name.startswith("swin_"):
        return t.permute(0, 3, 1, 2)
    if not name.startswith("vit_"):
        return t
    side = int(round((t.shape[1] - 1) ** 0.5))
    return t[:, 1:, :].reshape(t.shape[0], side, side, t.shape[2]).permute(0, 3, 1, 2)


def target_module(name, m):
    """The module whose output is the target activation."""
    if name == "resnet50":
        return m.layer4
    if name == "vgg16":
        return m.features[29]
    if name == "alexnet":
        return m.features[11]
    if name.startswith("vit_"):  # the input of the last attention, as pytorch-grad-cam's users
        return m.encoder.layers[-1].ln_1
    if name.startswith("swin_"):  # the final norm (channels last), egcam's `auto`
        return m.norm
    raise ValueError("unknown model " + name)


def split(name, m):
    """(trunk, head) with head(trunk(x)) == m(x); trunk ends at the target activation."""
    if name == "resnet50":
        trunk = torch.nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool, m.layer1, m.layer2,
                                    m.layer3, m.layer4)
        head = torch.nn.Sequential(m.avgpool, torch.nn.Flatten(1), m.fc)
    elif name in ("vgg16", "alexnet"):
        cut = 30 if name == "vgg16" else 12
        trunk = m.features[:cut]
        head = torch.nn.Sequential(m.features[cut:], m.avgpool, torch.nn.Flatten(1), m.classifier)
    else:
        raise ValueError("unknown model " + name)
    return trunk.eval(), head.eval()


def autocast(dev, fp16):
    """torch.autocast(float16) on dev when fp16, else a context that does nothing."""
    if not fp16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=dev.type, dtype=torch.float16)


def black(dev, dtype=torch.float32):
    """The normalised value of a black image [1,3,1,1] (torchvision preset)."""
    v = [(0.0 - mu) / sd for mu, sd in zip(MEAN, STD)]
    return torch.tensor(v, device=dev, dtype=dtype).view(1, 3, 1, 1)


def sample_points(x, s, rho, gen):
    """z [B*S,3,H,W] (image-major) = x' + a (x - x') + e with x' black, a ~ U(0,1) per sample,
    e ~ N(0, (rho (max x - min x))^2) per image."""
    b = x.shape[0]
    xr = black(x.device, x.dtype)
    xs = x.repeat_interleave(s, dim=0)
    a = torch.rand(b * s, 1, 1, 1, device=x.device, dtype=x.dtype, generator=gen)
    flat = x.reshape(b, -1)
    sigma = (rho * (flat.max(1).values - flat.min(1).values)).repeat_interleave(s)
    e = torch.randn(xs.shape, device=x.device, dtype=x.dtype, generator=gen)
    return xr + a * (xs - xr) + e * sigma.view(-1, 1, 1, 1)


def minmax(L):
    """Per-image (L - min) / (max - min + 1e-7) over all but the first dim."""
    flat = L.reshape(L.shape[0], -1)
    mn = flat.min(1, keepdim=True).values
    mx = flat.max(1, keepdim=True).values
    return ((flat - mn) / (mx - mn + 1e-7)).view_as(L)


def finalize(w, A, size):
    """Final maps [B,H,W] from channel weights w [B,K] and activations A [B,K,h,w]."""
    L = torch.relu((w[:, :, None, None] * A).sum(1, keepdim=True))
    L = F.interpolate(minmax(L), size=size, mode="bilinear", align_corners=False)
    return minmax(L)[:, 0]


def timed(fn, repeats, warmup, dev):
    """Runs fn warmup + repeats times; returns the sorted times of the timed runs (s)."""
    for _ in range(warmup):
        fn()
    sync(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    times = []
    for _ in range(repeats):
        sync(dev)
        t0 = time.perf_counter()
        fn()
        sync(dev)
        times.append(time.perf_counter() - t0)
    return sorted(times)


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def device_name(dev):
    return torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"


def peak_bytes(dev):
    return int(torch.cuda.max_memory_allocated(dev)) if dev.type == "cuda" else 0


def emit(backend, dev, model, method, precision, batch, samples, times, extra=None):
    """Prints one JSON line (bench_explain.c's keys) and flushes."""
    med = statistics.median(times)
    rec = {
        "bench": "explain",
        "backend": backend + "-" + torch.__version__,
        "device": device_name(dev),
        "model": model,
        "method": method,
        "precision": precision,
        "batch": batch,
        "samples": samples,
        "median_ms": round(med * 1e3, 3),
        "min_ms": round(min(times) * 1e3, 3),
        "images_per_s": round(batch / med, 2),
        "peak_device_bytes": peak_bytes(dev),
        "git_sha": os.environ.get("EGC_GIT_SHA", "unknown"),
    }
    rec.update(extra or {})
    print(json.dumps(rec), flush=True)


def emit_error(backend, dev, model, method, precision, batch, samples, err):
    """A JSON line for a configuration that could not run (out of memory, no compiler...)."""
    rec = {"bench": "explain", "backend": backend + "-" + torch.__version__,
           "device": device_name(dev), "model": model, "method": method,
           "precision": precision, "batch": batch, "samples": samples,
           "error": str(err).splitlines()[0][:300] if str(err) else type(err).__name__,
           "git_sha": os.environ.get("EGC_GIT_SHA", "unknown")}
    print(json.dumps(rec), flush=True)


def host_images(batch, size, seed=12345):
    """Deterministic pseudo-random input batch on the host [batch,3,size,size]."""
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def is_oom(e):
    return isinstance(e, RuntimeError) and "out of memory" in str(e)
