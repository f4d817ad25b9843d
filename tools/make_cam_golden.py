#!/usr/bin/env python3
"""Makes the CAM golden files of test/golden/cam/ with PyTorch (float64), independently of egcam.

For two images each of resnet20_cifar10 (32x32) and mobilenet_v1_025_128_imagenet (128x128) it
computes, with the ONNX -> torch interpreter of tools/onnx_torch.py and autograd, the raw maps
(layer resolution, relu applied, before any normalisation) of:
  - every single-pass method: gradcam, gradcampp, xgradcam, hirescam, layercam (logit score),
    gradcam with the softmax score;
  - Score-CAM;
  - Expected Grad-CAM with an explicit sample plan (plan_<model>.csv, written here) for every
    aggregation A/B/C and score logit/softmax, with the reference file = the two input images;
    one case with noise (the Philox4x32-10 normals of csrc/core/philox.h, reimplemented here in
    numpy), one with the blur baseline, one with the black baseline, and expected-gradcampp.
The preprocessed inputs are stored (x_<model>.npy) so that preprocessing cannot matter.
cases.txt lists one case per line:
    model input method layer score combine baselines rho plan refs classes output
The test (test/cpu/methods_test.cc, MethodsGolden) reruns every case with egcam and compares
the raw maps within 1e-4 of the map's range.

    /usr/bin/python3 tools/make_cam_golden.py [--shared ../shared] [--out test/golden/cam]
"""

import argparse
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_torch import OnnxTorch  # noqa: E402
from preprocess_ref import preprocess_batch  # noqa: E402

# ---------------------------------------------------------------- Philox (see csrc/core/philox.h)
M32 = np.uint64(0xFFFFFFFF)


def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Random123 philox4x32-10 on arrays of uint64 holding 32-bit words."""
    c = [np.asarray(v, dtype=np.uint64) & M32 for v in (c0, c1, c2, c3)]
    k0 = np.uint64(k0) & M32
    k1 = np.uint64(k1) & M32
    for r in range(10):
        if r:
            k0 = (k0 + np.uint64(0x9E3779B9)) & M32
            k1 = (k1 + np.uint64(0xBB67AE85)) & M32
        p0 = np.uint64(0xD2511F53) * c[0]
        p1 = np.uint64(0xCD9E8D57) * c[2]
        c = [((p1 >> np.uint64(32)) ^ c[1] ^ k0) & M32, p1 & M32,
             ((p0 >> np.uint64(32)) ^ c[3] ^ k1) & M32, p0 & M32]
    return c


def normals(seed, image_id, sample_id, n):
    """The first n standard normals of key (seed, image_id, sample_id), as float32."""
    nb = (n + 3) // 4
    blocks = np.arange(1, nb + 1, dtype=np.uint64)
    w = philox4x32_10(blocks, np.full(nb, sample_id, np.uint64),
                      np.full(nb, image_id & 0xFFFFFFFF, np.uint64),
                      np.full(nb, image_id >> 32, np.uint64), seed & 0xFFFFFFFF, seed >> 32)
    out = np.empty((nb, 4), np.float32)
    for a, b, j in ((w[0], w[1], 0), (w[2], w[3], 2)):
        u1 = ((a >> np.uint64(8)).astype(np.float64) + 1.0) / 16777216.0
        u2 = (b >> np.uint64(8)).astype(np.float64) / 16777216.0
        rad = np.sqrt(-2.0 * np.log(u1))
        out[:, j] = (rad * np.cos(2 * np.pi * u2)).astype(np.float32)
        out[:, j + 1] = (rad * np.sin(2 * np.pi * u2)).astype(np.float32)
    return out.reshape(-1)[:n]


def _id_mix(z):
    """SplitMix64 finaliser over uint64 arrays or scalars (modulo 2^64)."""
    z = np.asarray(z, dtype=np.uint64)
    z = z ^ (z >> np.uint64(30))
    z = z * np.uint64(0xbf58476d1ce4e5b9)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(0x94d049bb133111eb)
    return z ^ (z >> np.uint64(31))


def image_id(x):
    """The image id of csrc/core/philox.h: mix(sum_j mix((j << 32 | bits_j) + g) + (n+1) g)."""
    u = np.ascontiguousarray(x, dtype="<f4").reshape(-1).view("<u4").astype(np.uint64)
    n = u.size
    g = np.uint64(0x9e3779b97f4a7c15)
    with np.errstate(over="ignore"):
        j = np.arange(n, dtype=np.uint64) & np.uint64(0xFFFFFFFF)
        words = _id_mix(((j << np.uint64(32)) | u) + g)
        total = np.add.reduce(words, dtype=np.uint64) if n else np.uint64(0)
        return int(_id_mix(total + np.uint64(n + 1) * g))


# ---------------------------------------------------------------- model helpers
class Ref:
    def __init__(self, path):
        self.m = OnnxTorch(path, dtype=torch.float64)
        # Target layer: the input of the pooling node before the classifier head.
        # Data movement between them (the ResNets' zero Pad) is skipped.
        pools = [n for n in self.m.nodes if n.op_type in ("GlobalAveragePool", "AveragePool")]
        producer = {o: n for n in self.m.nodes for o in n.output}
        name = pools[-1].input[0]
        while producer[name].op_type in ("Pad", "Identity", "Reshape", "Flatten"):
            name = producer[name].input[0]
        self.layer = name

    def logits(self, x):
        with torch.no_grad():
            return self.m(torch.from_numpy(np.asarray(x, np.float32)).double())

    def grad_act(self, x, classes, score):
        """g = dy_c/dA and A at the target layer for rows x[n] with classes[n]."""
        out, cap = self.m(torch.from_numpy(np.asarray(x, np.float32)).double(),
                          capture=[self.layer])
        A = cap[self.layer]
        idx = torch.arange(len(classes))
        c = torch.tensor(classes)
        y = out[idx, c] if score == "logit" else torch.softmax(out, dim=1)[idx, c]
        g = torch.autograd.grad(y.sum(), A)[0]
        return g.detach().numpy(), A.detach().numpy()


def relu(v):
    return np.maximum(v, 0.0)


def gradcam(g, a):
    return relu(np.einsum("k,kij->ij", g.mean(axis=(1, 2)), a))


def gradcampp(g, a):
    g2 = g ** 2
    g3 = g2 * g
    sa = a.sum(axis=(1, 2))
    al = g2 / (2 * g2 + sa[:, None, None] * g3 + 1e-6)
    al = np.where(g != 0, al, 0)
    w = (relu(g) * al).sum(axis=(1, 2))
    return relu(np.einsum("k,kij->ij", w, a))


def xgradcam(g, a):
    w = (g * a / (a.sum(axis=(1, 2))[:, None, None] + 1e-7)).sum(axis=(1, 2))
    return relu(np.einsum("k,kij->ij", w, a))


def hirescam(g, a):
    return relu((g * a).sum(axis=0))


def layercam(g, a):
    return relu((relu(g) * a).sum(axis=0))


SINGLE = {"gradcam": gradcam, "gradcampp": gradcampp, "xgradcam": xgradcam,
          "hirescam": hirescam, "layercam": layercam}


def scorecam(ref, x, cls, a):
    """Score-CAM of one image: a [K,h,w] -> map [h,w]."""
    H, W = x.shape[1:]
    up = F.interpolate(torch.from_numpy(a)[None], size=(H, W), mode="bilinear",
                       align_corners=False)[0].numpy()
    mn = up.reshape(len(a), -1).min(axis=1)[:, None, None]
    mx = up.reshape(len(a), -1).max(axis=1)[:, None, None]
    masks = (up - mn) / (mx - mn + 1e-8)
    s = []
    for k0 in range(0, len(a), 64):
        z = x[None].astype(np.float64) * masks[k0:k0 + 64, None]
        s.append(torch.softmax(ref.logits(z), dim=1)[:, cls].numpy())
    s = np.concatenate(s)
    w = np.exp(s - s.max())
    w /= w.sum()
    return relu(np.einsum("k,kij->ij", w, a))


def blur(x):
    """The blur baseline: 11x11 Gaussian (sigma 5), depthwise, zero padding, float32."""
    t = np.arange(11) - 5
    k = np.exp(-(t * t) / 50.0)
    k = (k / k.sum()).astype(np.float32)
    k2 = torch.from_numpy(np.outer(k, k)).float()[None, None].repeat(3, 1, 1, 1)
    return F.conv2d(torch.from_numpy(x)[None].float(), k2, padding=5, groups=3)[0].numpy()


def black(preset, H, W):
    if preset == "tf":
        return np.full((3, H, W), -1.0, np.float32)
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    return np.broadcast_to(((np.float32(0) - mean) / std)[:, None, None], (3, H, W)).astype(
        np.float32)


def expected(ref, x, cls, score, combine, baselines, rho, plan, refs, preset):
    """Expected Grad-CAM of one image x [3,H,W] with the explicit plan rows (b, alpha, seed)."""
    n = x.size
    xid = image_id(x)
    sigma = np.float32(rho) * (np.float32(x.max()) - np.float32(x.min()))
    zs, xrs = [], []
    for s, (b, a, ns) in enumerate(plan):
        if baselines == "file":
            xr = refs[b]
        elif baselines == "blur":
            xr = blur(x)
        elif baselines == "black":
            xr = black(preset, *x.shape[1:])
        else:
            xr = x
        a = np.float32(a)
        d = (x - xr).astype(np.float32)
        z = (xr + a * d).astype(np.float32)
        if rho > 0:
            z = (z + sigma * normals(ns, xid, s, n).reshape(x.shape)).astype(np.float32)
        zs.append(z)
        xrs.append(xr)
    G, Az = ref.grad_act(np.stack(zs), [cls] * len(zs), score)
    _, Ax = ref.grad_act(x[None], [cls], score)
    Ax = Ax[0]
    if combine == "A":
        return G.mean(axis=0), Ax
    if combine == "B":
        _, Ar = ref.grad_act(np.stack(xrs), [cls] * len(xrs), score)
        phi = ((Ax[None] - Ar) * G).mean(axis=0)
        return phi, Ax
    return np.mean([gradcam(G[s], Az[s]) for s in range(len(zs))], axis=0), None


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=os.path.join(here, "..", "..", "shared"))
    ap.add_argument("--out", default=os.path.join(here, "..", "test", "golden", "cam"))
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    models = [
        ("resnet20_cifar10.onnx", "cifar", 32,
         ["cifar10-test/cat/0000.jpg", "cifar10-test/ship/0001.jpg"]),
        ("mobilenet_v1_025_128_imagenet.onnx", "tf", 128,
         ["photos/parrot.jpg", "imagenet-sample/n01514859_hen.JPEG"]),
    ]
    lines = ["# model input method layer score combine baselines rho plan refs classes output"]
    plan = [(0, 0.25, 0), (1, 0.5, 11), (0, 0.875, 12), (1, 0.0, 0x9E3779B97F4A7C15)]
    plan1 = [(0, a, s) for _, a, s in plan]  # for the single-image sets (blur, black)
    for mname, preset, size, imgs in models:
        tag = mname.split("_")[0]
        ref = Ref(os.path.join(args.shared, "models", mname))
        x = preprocess_batch([os.path.join(args.shared, "data", p) for p in imgs], preset, size)
        x = np.ascontiguousarray(x, np.float32)
        xin = f"x_{tag}.npy"
        np.save(os.path.join(args.out, xin), x)
        planf, plan1f = f"plan_{tag}.csv", f"plan1_{tag}.csv"
        for name, rows in ((planf, plan), (plan1f, plan1)):
            with open(os.path.join(args.out, name), "w") as f:
                f.write("# sample plan of the golden cases: one row per sample\n")
                f.write("baseline,alpha,noise_seed\n")
                for b, a, s in rows:
                    f.write(f"{b},{a},{s}\n")
        classes = ref.logits(x).argmax(dim=1).tolist()
        cls_s = ",".join(str(c) for c in classes)
        g_logit, A = ref.grad_act(x, classes, "logit")
        g_soft, _ = ref.grad_act(x, classes, "softmax")

        def emit(method, score, combine, baselines, rho, planname, maps, suffix):
            out = f"{tag}_{method}_{suffix}.npy"
            np.save(os.path.join(args.out, out), np.stack(maps).astype(np.float32))
            refs = xin if baselines == "file" else "-"
            lines.append(f"{mname} {xin} {method} {ref.layer} {score} {combine} {baselines} "
                         f"{rho} {planname} {refs} {cls_s} {out}")
            for i, m in enumerate(maps):
                if not m.max() > 0:
                    print(f"warning: {out} image {i} is all zero", file=sys.stderr)

        for method, fn in SINGLE.items():
            emit(method, "logit", "A", "black", 0, "-",
                 [fn(g_logit[i], A[i]) for i in range(len(x))], "logit")
        emit("gradcam", "softmax", "A", "black", 0, "-",
             [gradcam(g_soft[i], A[i]) for i in range(len(x))], "softmax")
        emit("scorecam", "softmax", "A", "black", 0, "-",
             [scorecam(ref, x[i], classes[i], A[i]) for i in range(len(x))], "softmax")

        def exp_maps(method, score, combine, baselines, rho):
            rows, name = (plan, planf) if baselines == "file" else (plan1, plan1f)
            maps = []
            for i in range(len(x)):
                v, Ax = expected(ref, x[i], classes[i], score, combine, baselines, rho, rows, x,
                                 preset)
                if combine == "C":
                    maps.append(v)
                elif combine == "B":
                    maps.append(gradcam(v, Ax))
                else:
                    maps.append(SINGLE[method.replace("expected-", "")](v, Ax))
            emit(method, score, combine, baselines, rho, name, maps,
                 f"{score}_{combine}_{baselines}_rho{rho}")

        for combine in ("A", "B", "C"):
            for score in ("logit", "softmax"):
                exp_maps("expected-gradcam", score, combine, "file", 0)
        exp_maps("expected-gradcam", "softmax", "B", "file", 0.1)
        exp_maps("expected-gradcam", "softmax", "C", "blur", 0)
        exp_maps("expected-gradcam", "logit", "B", "black", 0)
        exp_maps("expected-gradcampp", "softmax", "A", "file", 0)
        print(f"{mname}: layer {ref.layer}, classes {classes}", file=sys.stderr)
    with open(os.path.join(args.out, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {len(lines) - 1} cases to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
