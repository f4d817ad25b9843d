#!/usr/bin/env python3
"""Reference image preprocessing presets (PIL / torchvision), matched bit for bit by csrc/io.

Every preset opens the file with PIL and converts it to RGB (grayscale and palette images become
three equal or looked-up channels), and returns a float32 array [3, S, S] (CHW, RGB).

  tf           TensorFlow's central_crop(0.875) then bilinear resize, as the MobileNets expect:
               start_h = int((h - h*0.875) / 2), start_w likewise (= h // 16, w // 16);
               crop rows [start_h, h - start_h) and columns [start_w, w - start_w);
               PIL Image.resize((S, S), BILINEAR) of the cropped image (PIL's resampling, which
               widens the triangle filter by the scale factor when shrinking, and clamps at the
               crop's edges); rounded to uint8 by PIL; x = (p - 128) / 128 in float32.
  torchvision  torchvision.transforms: Resize(R) with R = round(S * 256 / 224) (shorter side to R,
               longer side int(R * long / short), PIL bilinear), CenterCrop(S) (top =
               int(round((h - S) / 2)), left likewise), ToTensor (float32 p / 255), Normalize with
               the ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225) in float32:
               x = (p / 255 - mean) / std.
  cifar        if the image is S x S: no resize; else PIL bilinear resize to (S, S); then ToTensor
               and Normalize with the ImageNet mean/std, as above.

Write the preprocessed tensors of some images to a .npy file [N, 3, S, S] float32:
    /usr/bin/python3 tools/preprocess_ref.py --preset tf --size 224 --out x.npy IMG [IMG ...]
"""

import argparse
import sys

import numpy as np
from PIL import Image
import torch
import torchvision.transforms as T

PRESETS = ("tf", "torchvision", "cifar")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

try:
    _BILINEAR = Image.Resampling.BILINEAR
except AttributeError:  # Pillow < 9.1
    _BILINEAR = Image.BILINEAR


def load_rgb(path):
    """Opens an image with PIL and converts it to 8-bit RGB."""
    with Image.open(path) as im:
        return im.convert("RGB")


def central_crop_box(w, h, fraction=0.875):
    """PIL crop box (left, top, right, bottom) of tf.image.central_crop(fraction)."""
    start_h = int((h - h * fraction) / 2)
    start_w = int((w - w * fraction) / 2)
    return (start_w, start_h, w - start_w, h - start_h)


def _normalize_imagenet(img):
    """PIL RGB image -> float32 [3,H,W]: ToTensor then Normalize(ImageNet mean/std)."""
    t = T.functional.to_tensor(img)
    t = T.functional.normalize(t, IMAGENET_MEAN, IMAGENET_STD)
    return t.numpy().astype(np.float32, copy=False)


def preprocess_pil(img, preset, size):
    """PIL RGB image -> float32 ndarray [3, size, size] for the given preset."""
    if preset == "tf":
        img = img.crop(central_crop_box(*img.size)).resize((size, size), _BILINEAR)
        p = np.asarray(img, dtype=np.uint8).astype(np.float32)
        x = (p - np.float32(128.0)) / np.float32(128.0)
        return np.ascontiguousarray(x.transpose(2, 0, 1))
    if preset == "torchvision":
        r = round(size * 256 / 224)
        img = T.CenterCrop(size)(T.Resize(r, interpolation=T.InterpolationMode.BILINEAR)(img))
        return _normalize_imagenet(img)
    if preset == "cifar":
        if img.size != (size, size):
            img = img.resize((size, size), _BILINEAR)
        return _normalize_imagenet(img)
    raise ValueError(f"unknown preset '{preset}' (expected one of {', '.join(PRESETS)})")


def preprocess(path, preset, size):
    """Image file -> float32 ndarray [3, size, size] for the given preset."""
    return preprocess_pil(load_rgb(path), preset, size)


def preprocess_batch(paths, preset, size):
    """Image files -> float32 ndarray [N, 3, size, size]."""
    return np.stack([preprocess(p, preset, size) for p in paths])


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", choices=PRESETS, required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--out", required=True, help=".npy file to write [N,3,S,S] float32")
    ap.add_argument("images", nargs="+")
    args = ap.parse_args(argv)
    try:
        x = preprocess_batch(args.images, args.preset, args.size)
    except (OSError, ValueError) as e:
        print(f"preprocess_ref: {e}", file=sys.stderr)
        return 1
    np.save(args.out, x)
    print(f"wrote {args.out}: {x.shape} {x.dtype}, min {x.min():.4f} max {x.max():.4f}")
    return 0


if __name__ == "__main__":
    torch.set_num_threads(1)
    sys.exit(main(sys.argv[1:]))
