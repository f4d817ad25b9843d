#!/usr/bin/env python3
"""Makes the golden files for the preprocessing presets (test/golden/preprocess/).

For a handful of shared images (JPEG 4:2:0, 4:2:2, 4:4:4 and grayscale, 24-bit and 8-bit
palette BMP, a 32x32 CIFAR JPEG) it writes, with PIL and torchvision.transforms:

  <name>_<preset>_<size>.npy   uint8 [size, size, 3]: the RGB image the model sees after the
                               geometric step of the preset (crop + PIL bilinear resize)
  decode/*.png, decode/*.jpg    small files in the colour types and bit depths a decoder must
                               handle (PNG gray 1/4/8-bit, gray+alpha, palette 4/8-bit with
                               transparency, RGB 8/16-bit, RGBA; CMYK and progressive JPEG;
                               BMP palette 1/4/8-bit, 16/24/32-bit, bit fields, top-down,
                               OS/2 and V4/V5 headers)
  index.json                   the list of those files; float samples of the normalised
                               tensors (torchvision's ToTensor + Normalize, and (p-128)/128 for
                               tf); the CRC-32 of PIL's decoded RGB pixels (convert("RGB")) of
                               every shared ImageNet sample and photo and of decode/* (one
                               entry per line)

Presets, as in csrc/io/preprocess.c:
  tf           tf.image.central_crop(0.875) (starts int((h - h*0.875)/2), int((w - w*0.875)/2)),
               then Image.resize((S, S), BILINEAR)
  torchvision  transforms.Resize(round(S*256/224)) then transforms.CenterCrop(S)
  cifar        Image.resize((S, S), BILINEAR) unless the image is already S x S

Run from anywhere with the system Python (PIL, numpy, torch, torchvision):
    /usr/bin/python3 tools/gen_preprocess_golden.py [--data DIR] [--out DIR]
DIR defaults: the shared data folder next to the repository, and test/golden/preprocess.
"""

import argparse
import glob
import json
import os
import struct
import sys
import zlib

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image

try:
    BILINEAR = Image.Resampling.BILINEAR
except AttributeError:  # Pillow < 9.1
    BILINEAR = Image.BILINEAR

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

# (short name, path under the data folder)
IMAGES = [
    ("frog", "imagenet-sample/n01644900_tailed_frog.JPEG"),      # 4:2:0, 430x299
    ("minivan", "imagenet-sample/n03770679_minivan.JPEG"),       # 4:2:2, 640x480
    ("projectile", "imagenet-sample/n04008634_projectile.JPEG"), # grayscale, 334x500
    ("hopper", "photos/grace_hopper.bmp"),                       # 24-bit BMP, 512x600
    ("mnist", "photos/mnist_nine.bmp"),                          # 8-bit palette BMP, 28x28
    ("cifar_cat", "cifar10-test/cat/0000.jpg"),                  # 32x32
    ("coco9", "coco128/images/000000000009.jpg"),                # 4:4:4, 640x480
]
PRESETS = ("tf", "torchvision", "cifar")
# (name, preset, size) beyond every image x preset at 128
EXTRA = [("frog", "tf", 224), ("frog", "torchvision", 224), ("cifar_cat", "cifar", 32)]
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def load_rgb(path):
    with Image.open(path) as im:
        return im.convert("RGB")


def geometry(img, preset, size):
    """The PIL RGB image of size x size that the model sees."""
    w, h = img.size
    if preset == "tf":
        bh = int((h - h * 0.875) / 2)
        bw = int((w - w * 0.875) / 2)
        return img.crop((bw, bh, w - bw, h - bh)).resize((size, size), BILINEAR)
    if preset == "torchvision":
        r = round(size * 256 / 224)
        resized = T.Resize(r, interpolation=T.InterpolationMode.BILINEAR)(img)
        return T.CenterCrop(size)(resized)
    if preset == "cifar":
        return img if img.size == (size, size) else img.resize((size, size), BILINEAR)
    raise ValueError(preset)


def normalise(sized, preset):
    """float32 [3, S, S] as the Python pipelines compute it."""
    if preset == "tf":
        p = np.asarray(sized, dtype=np.uint8).astype(np.float32)
        return ((p - np.float32(128)) / np.float32(128)).transpose(2, 0, 1)
    t = T.Normalize(MEAN, STD)(T.ToTensor()(sized))
    return t.numpy()


def write_png(path, w, h, color_type, depth, rows, plte=None, trns=None):
    """A plain non-interlaced PNG from packed rows (bytes), written without PIL so that every
    colour type and bit depth can be made."""
    def chunk(tag, data):
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)
    out = b"\x89PNG\r\n\x1a\n"
    out += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0))
    if plte is not None:
        out += chunk(b"PLTE", bytes(plte))
    if trns is not None:
        out += chunk(b"tRNS", bytes(trns))
    out += chunk(b"IDAT", zlib.compress(b"".join(b"\x00" + r for r in rows), 9))
    out += chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(out)


def pack4(values):
    """Row of 4-bit values -> bytes, high nibble first."""
    v = list(values) + ([0] if len(values) % 2 else [])
    return bytes((v[i] << 4) | v[i + 1] for i in range(0, len(v), 2))


def make_decode_files(src, out_dir):
    """Small files of every kind from a crop of a real photo; returns their names."""
    os.makedirs(out_dir, exist_ok=True)
    for old in glob.glob(os.path.join(out_dir, "*")):
        os.remove(old)
    rgb = src.crop((150, 100, 187, 129))  # 37 x 29: odd sizes
    w, h = rgb.size
    a = np.asarray(rgb, dtype=np.uint8)
    gray = np.asarray(rgb.convert("L"), dtype=np.uint8)
    rng = np.random.default_rng(7)
    alpha = rng.integers(0, 256, size=(h, w), dtype=np.uint8)
    names = []

    def add(name):
        names.append(name)
        return os.path.join(out_dir, name)

    rgb.save(add("rgb8.png"))
    Image.fromarray(np.dstack([a, alpha]), "RGBA").save(add("rgba8.png"))
    Image.fromarray(np.dstack([gray, alpha]), "LA").save(add("la8.png"))
    Image.fromarray(gray, "L").save(add("gray8.png"))
    write_png(add("gray1.png"), w, h, 0, 1,
              [np.packbits(r > 127).tobytes() for r in gray])
    write_png(add("gray4.png"), w, h, 0, 4, [pack4(r >> 4) for r in gray])
    noise = rng.integers(0, 2, size=a.shape) * (a < 255)
    rgb16 = (a.astype(np.uint32) * 257 + noise).astype(">u2")
    write_png(add("rgb16.png"), w, h, 2, 16, [r.tobytes() for r in rgb16])
    pal = rgb.quantize(colors=200)
    plte = pal.getpalette()[:3 * 200]
    idx = np.asarray(pal, dtype=np.uint8)
    write_png(add("pal8_trns.png"), w, h, 3, 8, [r.tobytes() for r in idx], plte=plte,
              trns=[(i * 37) % 256 for i in range(150)])
    pal16 = rgb.quantize(colors=16)
    write_png(add("pal4.png"), w, h, 3, 4, [pack4(r) for r in np.asarray(pal16, np.uint8)],
              plte=pal16.getpalette()[:48])
    rgb.convert("CMYK").save(add("cmyk.jpg"), quality=90)
    rgb.save(add("progressive.jpg"), quality=90, progressive=True)
    rgb.save(add("q50_420.jpg"), quality=50, subsampling=2)

    # BMP: palette 1/4/8-bit, 16/24/32-bit, bit fields, top-down, OS/2 and V4/V5 headers.
    small = src.crop((200, 120, 221, 133))  # 21 x 13
    sw, sh = small.size
    s8 = np.asarray(small, dtype=np.uint8).astype(np.uint32)
    r, g, b = s8[..., 0], s8[..., 1], s8[..., 2]
    p2, p16, p200 = small.quantize(colors=2), small.quantize(colors=16), small.quantize(colors=200)
    i2, i16, i200 = (np.asarray(q, dtype=np.uint8) for q in (p2, p16, p200))

    def pal_of(q, n):
        v = q.getpalette()[:3 * n]
        return [tuple(v[3 * i:3 * i + 3]) for i in range(n)]

    def le(arr, nbytes):
        return [b"".join(int(v).to_bytes(nbytes, "little") for v in row) for row in arr]

    bmps = [
        ("pal1.bmp", dict(bpp=1, rows=[np.packbits(row).tobytes() for row in i2],
                          palette=pal_of(p2, 2))),
        ("pal4.bmp", dict(bpp=4, rows=[pack4(row) for row in i16], palette=pal_of(p16, 16),
                          clr_used=16)),
        ("pal8_topdown.bmp", dict(bpp=8, rows=[row.tobytes() for row in i200],
                                  palette=pal_of(p200, 200), clr_used=200, top_down=True)),
        ("pal8_os2.bmp", dict(bpp=8, rows=[row.tobytes() for row in i16], dib=12,
                              palette=pal_of(p16, 16) + [(0, 0, 0)] * 240, pal_entry=3)),
        ("rgb24.bmp", dict(bpp=24, rows=le(b | (g << 8) | (r << 16), 3))),
        ("rgb24_topdown_v5.bmp", dict(bpp=24, rows=le(b | (g << 8) | (r << 16), 3), dib=124,
                                      top_down=True)),
        ("rgb24_os2.bmp", dict(bpp=24, rows=le(b | (g << 8) | (r << 16), 3), dib=12)),
        ("rgb32.bmp", dict(bpp=32, rows=le(b | (g << 8) | (r << 16) | (0x5A << 24), 4))),
        ("bgra32_v4.bmp", dict(bpp=32, rows=le(b | (g << 8) | (r << 16) | (0x80 << 24), 4),
                               dib=108, comp=3,
                               masks=(0xFF0000, 0xFF00, 0xFF, 0xFF000000))),
        ("bgrx32_fields.bmp", dict(bpp=32, rows=le(b | (g << 8) | (r << 16), 4), comp=3,
                                   masks=(0xFF0000, 0xFF00, 0xFF))),
        ("rgb565.bmp", dict(bpp=16, rows=le(((r >> 3) << 11) | ((g >> 2) << 5) | (b >> 3), 2),
                            comp=3, masks=(0xF800, 0x7E0, 0x1F))),
        ("rgb555.bmp", dict(bpp=16, rows=le(((r >> 3) << 10) | ((g >> 3) << 5) | (b >> 3), 2))),
    ]
    for name, spec in bmps:
        write_bmp(os.path.join(out_dir, name), sw, sh, **spec)
        try:
            load_rgb(os.path.join(out_dir, name))
            names.append(name)
        except Exception as e:  # keep only what PIL can read as the reference
            print(f"PIL cannot read {name} ({e}); left out")
            os.remove(os.path.join(out_dir, name))
    return names


def write_bmp(path, w, h, bpp, rows, dib=40, comp=0, masks=None, palette=None, top_down=False,
              pal_entry=4, clr_used=0):
    """An uncompressed BMP from unpadded rows given top row first."""
    stride = ((w * bpp + 31) // 32) * 4
    rows = [bytes(r) + b"\0" * (stride - len(r)) for r in rows]
    if not top_down:
        rows = rows[::-1]
    data = b"".join(rows)
    extra = b""
    if dib == 12:
        info = struct.pack("<IHHHH", 12, w, h, 1, bpp)
    else:
        info = struct.pack("<IiiHHIIiiII", dib, w, -h if top_down else h, 1, bpp, comp,
                           len(data), 2835, 2835, clr_used, 0)
        m = list(masks or (0, 0, 0)) + [0] * (4 - len(masks or (0, 0, 0)))
        if dib >= 52:
            info += struct.pack("<III", *m[:3])
        if dib >= 56:
            info += struct.pack("<I", m[3])
        if dib >= 108:
            info += struct.pack("<I", 0x73524742)  # 'sRGB'
        info += b"\0" * (dib - len(info))
        if dib == 40 and masks:
            extra = struct.pack("<III", *m[:3])
    pal = b""
    for (pr, pg, pb) in palette or []:
        pal += bytes([pb, pg, pr] + ([0] if pal_entry == 4 else []))
    off = 14 + len(info) + len(extra) + len(pal)
    head = struct.pack("<2sIHHI", b"BM", off + len(data), 0, 0, off)
    with open(path, "wb") as f:
        f.write(head + info + extra + pal + data)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data"))
    ap.add_argument("--out", default=os.path.join(REPO, "test", "golden", "preprocess"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    for old in glob.glob(os.path.join(args.out, "*.npy")):
        os.remove(old)

    rng = np.random.default_rng(1234)
    files, floats = [], []
    jobs = [(n, p, 128) for n, _ in IMAGES for p in PRESETS] + EXTRA
    paths = dict(IMAGES)
    for name, preset, size in jobs:
        img = load_rgb(os.path.join(args.data, paths[name]))
        sized = geometry(img, preset, size)
        a = np.asarray(sized, dtype=np.uint8)
        assert a.shape == (size, size, 3), (name, preset, size, a.shape)
        fname = f"{name}_{preset}_{size}.npy"
        np.save(os.path.join(args.out, fname), np.ascontiguousarray(a))
        files.append({"file": fname, "image": paths[name], "preset": preset, "size": size})
        # A few normalised values at random positions, with the uint8 they come from.
        x = normalise(sized, preset)
        idx = rng.integers(0, [3, size, size], size=(12, 3))
        samples = [[int(c), int(y), int(xx), int(a[y, xx, c]), float(x[c, y, xx])]
                   for c, y, xx in idx]
        floats.append({"file": fname, "preset": preset, "samples": samples})

    decode_dir = os.path.join(args.out, "decode")
    local = make_decode_files(load_rgb(os.path.join(args.data, "photos/grace_hopper.bmp")),
                              decode_dir)

    crcs = []
    for name in local:
        img = load_rgb(os.path.join(decode_dir, name))
        crcs.append({"local": "decode/" + name, "w": img.size[0], "h": img.size[1],
                     "crc32": zlib.crc32(img.tobytes()) & 0xFFFFFFFF})
    for sub in ("imagenet-sample/*", "photos/*.bmp", "photos/*.jpg",
                "coco128/images/000000000086.jpg"):
        for path in sorted(glob.glob(os.path.join(args.data, sub))):
            img = load_rgb(path)
            crcs.append({"image": os.path.relpath(path, args.data), "w": img.size[0],
                         "h": img.size[1], "crc32": zlib.crc32(img.tobytes()) & 0xFFFFFFFF})

    # One record per line, so that simple readers can take the file line by line.
    with open(os.path.join(args.out, "index.json"), "w") as f:
        f.write("{\n")
        f.write('"note": "made by tools/gen_preprocess_golden.py; paths are under the shared '
                'data folder",\n')
        f.write('"golden": [\n')
        f.write(",\n".join(json.dumps(e) for e in files))
        f.write("\n],\n\"float_samples\": [\n")
        f.write(",\n".join(json.dumps(e) for e in floats))
        f.write("\n],\n\"decode_crc32\": [\n")
        f.write(",\n".join(json.dumps(e) for e in crcs))
        f.write("\n]\n}\n")
    total = sum(os.path.getsize(p) for p in glob.glob(os.path.join(args.out, "**"),
                                                       recursive=True) if os.path.isfile(p))
    print(f"wrote {len(files)} golden images, {len(crcs)} decode checksums, {total} bytes "
          f"to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
