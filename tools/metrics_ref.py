#!/usr/bin/env python3
"""Makes the metric golden files of test/golden/metrics/ with numpy and PyTorch (float64),
implementing METRICS.md independently of egcam.

Cases, on four CIFAR-10 test images through resnet20_cifar10 (the shared model), with
synthetic maps (smooth bumps quantised to 1/8 so that the ranking has ties):
  - deletion and insertion curves and AUCs, 16 pixels per step (64 steps), class = top-1;
  - infidelity, patch protocol with 4x4 and 5x5 patches (the last row/column clipped),
    black = the normalised value of a black pixel under the cifar preset;
  - infidelity, Gaussian variant with optimal scaling: 8 samples, sigma 0.1, seed 7, the
    Philox4x32-10 normals of csrc/core/philox.h (key seed ^ EGC_METRIC_KEY_GAUSS);
  - Gini sparseness and entropy complexity;
  - pointing game (strict and with a 3-pixel tolerance), energy pointing game and relevance
    rank accuracy against hand-made rectangle masks;
  - the 2x2 grid of the four images and the quadrant shares of the maps;
  - YOLO boxes rasterised for an image of 500x375 under the tf and torchvision presets at
    112x112.
The inputs (x.npy) and maps (maps.npy) are stored so that preprocessing cannot matter.
The test is test/cpu/metrics_test.cc (MetricsGolden): AUCs and scores within 1e-4.

    /usr/bin/python3 tools/metrics_ref.py [--shared ../shared] [--out test/golden/metrics]
"""

import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_cam_golden import image_id, normals  # noqa: E402
from onnx_torch import OnnxTorch  # noqa: E402
from preprocess_ref import preprocess_batch  # noqa: E402

KEY_GAUSS = 0x6761757373696E66
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def logits_of(model, x):
    with torch.no_grad():
        return model(torch.from_numpy(np.asarray(x, np.float32)).double()).numpy()


def softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def ranking(m):
    """Pixel indices by decreasing value, ties by ascending index."""
    return np.argsort(-m.reshape(-1).astype(np.float64), kind="stable")


def blur(x):
    t = np.arange(11) - 5
    k = np.exp(-(t * t) / 50.0)
    k = k / k.sum()
    k2 = torch.from_numpy(np.outer(k, k))[None, None].repeat(3, 1, 1, 1)
    return F.conv2d(torch.from_numpy(x.astype(np.float64))[None], k2, padding=5,
                    groups=3)[0].numpy().astype(np.float32)


def curve(model, x, m, c, step, kind):
    C, H, W = x.shape
    hw = H * W
    T = -(-hw // step)
    order = ranking(m)
    start = x.copy() if kind == "deletion" else blur(x)
    rows = []
    for t in range(T + 1):
        k = min(t * step, hw)
        z = start.reshape(C, hw).copy()
        idx = order[:k]
        if kind == "deletion":
            z[:, idx] = 0.0
        else:
            z[:, idx] = x.reshape(C, hw)[:, idx]
        rows.append(z.reshape(C, H, W))
    p = softmax(logits_of(model, np.stack(rows)))[:, c]
    auc = (p.sum() - p[0] / 2 - p[-1] / 2) / (len(p) - 1)
    return p, auc


def infidelity_patch(model, x, m, c, patch, black):
    C, H, W = x.shape
    f0 = logits_of(model, x[None])[0, c]
    xp = x.copy()
    rows, sums = [], []
    for py in range(0, H, patch):
        for px in range(0, W, patch):
            xp[:, py:py + patch, px:px + patch] = black[:, None, None]
            rows.append(xp.copy())
            I = x.astype(np.float64) - xp.astype(np.float64)
            sums.append((m[None].astype(np.float64) * I).sum())
    f = logits_of(model, np.stack(rows))[:, c]
    df = f0 - f
    return float(np.mean((df - np.array(sums)) ** 2))


def infidelity_gauss(model, x, m, c, samples, sigma, seed):
    C, H, W = x.shape
    f0 = logits_of(model, x[None])[0, c]
    iid = image_id(x)
    rows, sums = [], []
    for s in range(samples):
        nrm = normals(seed ^ KEY_GAUSS, iid, s, C * H * W).reshape(C, H, W)
        I = (np.float32(sigma) * nrm).astype(np.float32)
        rows.append((x - I).astype(np.float32))
        sums.append((m[None].astype(np.float64) * I.astype(np.float64)).sum())
    df = f0 - logits_of(model, np.stack(rows))[:, c]
    s = np.array(sums)
    beta = (s * df).mean() / (s * s).mean()
    return float(((beta * s - df) ** 2).mean()), float(beta)


def gini(m):
    a = np.sort(np.abs(m.reshape(-1).astype(np.float64)) + 1e-7)
    n = a.size
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * a).sum() / (n * a.sum()))


def entropy(m):
    a = np.abs(m.reshape(-1).astype(np.float64))
    p = a / a.sum()
    return float(-(p * np.log(p + 1e-12)).sum())


def pointing(m, mask, tol):
    H, W = m.shape
    a = int(np.argmax(m.reshape(-1)))
    ay, ax = divmod(a, W)
    if mask[ay, ax]:
        return 1.0
    if tol <= 0:
        return 0.0
    yy, xx = np.nonzero(mask)
    return float(((yy - ay) ** 2 + (xx - ax) ** 2 <= tol * tol).any())


def energy(m, mask):
    return float(m[mask > 0].astype(np.float64).sum() / m.astype(np.float64).sum())


def rank_acc(m, mask):
    K = int((mask > 0).sum())
    top = ranking(m)[:K]
    return float((mask.reshape(-1)[top] > 0).sum() / K)


def bilinear_resize(a, h, w):
    """Half-pixel-centre bilinear resize without antialiasing (align_corners=False)."""
    t = torch.from_numpy(a.astype(np.float64))[None]
    return F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)[0].numpy()


def grid(x4):
    C, H, W = x4.shape[1:]
    h0, w0 = H // 2, W // 2
    out = np.zeros((C, H, W), np.float64)
    for q in range(4):
        qy, qx = divmod(q, 2)
        qh, qw = (H - h0 if qy else h0), (W - w0 if qx else w0)
        oy, ox = (h0 if qy else 0), (w0 if qx else 0)
        out[:, oy:oy + qh, ox:ox + qw] = bilinear_resize(x4[q], qh, qw)
    return out.astype(np.float32)


def grid_share(m, q):
    H, W = m.shape
    h0, w0 = H // 2, W // 2
    qy, qx = divmod(q, 2)
    pos = np.where(m > 0, m, 0).astype(np.float64)
    quad = pos[h0:, :] if qy else pos[:h0, :]
    quad = quad[:, w0:] if qx else quad[:, :w0]
    return float(quad.sum() / pos.sum())


def box_affine(preset, iw, ih, S):
    """Original pixel coordinates -> model-input coordinates, as the presets crop/resize."""
    if preset == "tf":
        bh = int((ih - ih * 0.875) / 2)
        bw = int((iw - iw * 0.875) / 2)
        sx, sy = S / (iw - 2 * bw), S / (ih - 2 * bh)
        return sx, -bw * sx, sy, -bh * sy
    R = int(round(S * 256 / 224))
    short, long_ = min(iw, ih), max(iw, ih)
    nl = int(R * long_ / short)
    rw, rh = (R, nl) if iw <= ih else (nl, R)
    top, left = int(round((rh - S) / 2)), int(round((rw - S) / 2))
    return rw / iw, -left, rh / ih, -top


def box_mask(boxes, preset, iw, ih, S):
    sx, ox, sy, oy = box_affine(preset, iw, ih, S)
    mask = np.zeros((S, S), np.float32)
    cy, cx = np.mgrid[0:S, 0:S] + 0.5
    for (_, bcx, bcy, bw, bh) in boxes:
        x0, x1 = (bcx - bw / 2) * iw * sx + ox, (bcx + bw / 2) * iw * sx + ox
        y0, y1 = (bcy - bh / 2) * ih * sy + oy, (bcy + bh / 2) * ih * sy + oy
        mask[(cx >= x0) & (cx < x1) & (cy >= y0) & (cy < y1)] = 1
    return mask


def synthetic_maps(n, H, W):
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    maps = []
    rng = np.random.default_rng(3)
    for i in range(n):
        cy, cx = rng.uniform(4, H - 4), rng.uniform(4, W - 4)
        m = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (3 + 2 * i) ** 2))
        m += 0.3 * np.exp(-((yy - H + cy) ** 2 + (xx - W + cx) ** 2) / 30.0)
        m = np.round(8 * m / m.max()) / 8  # ties
        maps.append(m)
    return np.stack(maps).astype(np.float32)


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=os.path.join(here, "..", "..", "shared"))
    ap.add_argument("--out", default=os.path.join(here, "..", "test", "golden", "metrics"))
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    model = OnnxTorch(os.path.join(args.shared, "models", "resnet20_cifar10.onnx"),
                      dtype=torch.float64)
    cdir = os.path.join(args.shared, "data", "cifar10-test")
    paths = [os.path.join(cdir, c, sorted(os.listdir(os.path.join(cdir, c)))[0])
             for c in ("cat", "ship", "airplane", "frog")]
    x = preprocess_batch(paths, "cifar", 32).astype(np.float32)
    n, C, H, W = x.shape
    maps = synthetic_maps(n, H, W)
    cls = logits_of(model, x).argmax(axis=1)
    black = ((np.float32(0) - MEAN) / STD).astype(np.float32)
    out = {"x": x, "maps": maps, "classes": cls.astype(np.float32)}
    step = 16
    for kind in ("deletion", "insertion"):
        cur, auc = zip(*[curve(model, x[i], maps[i], cls[i], step, kind) for i in range(n)])
        out[kind + "_curves"] = np.stack(cur)
        out[kind + "_auc"] = np.array(auc)
    for p in (4, 5):
        out["infid_p%d" % p] = np.array([infidelity_patch(model, x[i], maps[i], cls[i], p, black)
                                         for i in range(n)])
    g = [infidelity_gauss(model, x[i], maps[i], cls[i], 8, 0.1, 7) for i in range(n)]
    out["infid_gauss"] = np.array([v[0] for v in g])
    out["infid_beta"] = np.array([v[1] for v in g])
    out["gini"] = np.array([gini(m) for m in maps])
    out["entropy"] = np.array([entropy(m) for m in maps])
    # Rectangles placed from each map's argmax (ay, ax): around it (a hit), starting 2 px to
    # its right (a miss that a 3 px tolerance turns into a hit), far from it (a miss), and a
    # small one around it.
    masks = np.zeros((n, H, W), np.float32)
    for i in range(n):
        ay, ax = divmod(int(np.argmax(maps[i].reshape(-1))), W)
        if i == 0:
            y0, y1, x0, x1 = ay - 5, ay + 6, ax - 6, ax + 4
        elif i == 1:
            y0, y1, x0, x1 = ay - 4, ay + 4, ax + 2, ax + 12
        elif i == 2:
            y0, y1 = (0, 8) if ay >= 16 else (24, 32)
            x0, x1 = (0, 10) if ax >= 16 else (22, 32)
        else:
            y0, y1, x0, x1 = ay - 1, ay + 2, ax - 2, ax + 1
        y0, x0 = max(y0, 0), max(x0, 0)
        masks[i, y0:y1, x0:x1] = 1
    out["masks"] = masks
    out["pointing"] = np.array([pointing(maps[i], masks[i], 0) for i in range(n)])
    out["pointing_tol3"] = np.array([pointing(maps[i], masks[i], 3) for i in range(n)])
    out["energy"] = np.array([energy(maps[i], masks[i]) for i in range(n)])
    out["rank"] = np.array([rank_acc(maps[i], masks[i]) for i in range(n)])
    out["grid"] = grid(x)
    out["grid_share"] = np.array([grid_share(maps[q], q) for q in range(4)])
    boxes = [(16, 0.5, 0.5, 0.4, 0.6), (3, 0.1, 0.9, 0.12, 0.1), (7, 0.95, 0.2, 0.2, 0.3)]
    with open(os.path.join(args.out, "boxes_500x375.txt"), "w") as f:
        for b in boxes:
            f.write("%d %.6f %.6f %.6f %.6f\n" % b)
    boxes = [tuple(float("%.6f" % v) for v in b) for b in boxes]
    out["mask_tf"] = box_mask(boxes, "tf", 500, 375, 112)
    out["mask_torchvision"] = box_mask(boxes, "torchvision", 500, 375, 112)
    for k, v in out.items():
        np.save(os.path.join(args.out, k + ".npy"), np.asarray(v, np.float32))
    print("wrote %d arrays to %s; AUCs deletion %s insertion %s" % (
        len(out), args.out, np.round(out["deletion_auc"], 4), np.round(out["insertion_auc"], 4)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
