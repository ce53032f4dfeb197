#!/usr/bin/env python3
"""The service's selector preprocessing in Python: a selector's `pixel_values` from image files.

    python3 tools/python/preprocess.py selector.json figure.png [more images ...] [--out pixels.npy]

Needs only the standard library, Pillow and numpy. It is NOT run in CI: the project's machines
have no pip and no Pillow. It was checked by hand against the service (README, "Reproducing the
preprocessing in Python", gives the figures).

What it reproduces, step by step (src/modules/selectors/selector-inputs.ts is the service's side):
  1. decode to 8-bit RGB, as `Image.open(f)` reads it: embedded ICC profiles are not applied,
     palette images take their palette colours, greyscale is repeated in R, G and B;
     16-bit greyscale keeps its high byte (Pillow's own convert would clip it at 255);
  2. image.exifOrientation: "ignore" (default) leaves pixels as stored; "apply" is
     `ImageOps.exif_transpose`;
  3. image.alpha: "drop" (default) is `convert('RGB')`, the stored colour of every pixel whatever
     its alpha; "flatten" composites onto image.alphaBackground (default white):
     floor((a * c + (255 - a) * bg) / 255) per channel;
  4. image.resize, with the service's geometry: cover scales so the short side is `size` (the
     other side rounded half up), then crops `size` x `size` at left = (w - size + 1) // 2,
     top = (h - size + 1) // 2; contain scales so the long side is `size` and pastes on black at
     ((size - w) // 2, (size - h) // 2); fill stretches. Each axis is scaled by exactly
     target / source; axes that shrink are resampled with Lanczos-3, then axes that grow with
     bicubic interpolation sampled as libvips does (see `resample`). An image already at its
     target size is not resampled;
  5. scale to [0, 1], subtract image.mean, divide by image.std, channel-first float32 [3, size, size].

Steps 1-3 and 5 are exact. Step 4 is close, not bit-identical (README gives the measured
differences): libvips shrinks by an integer factor with a box filter before its Lanczos pass on
large reductions, where Pillow convolves once.
"""
import argparse
import json
import math
import sys

import numpy as np
from PIL import Image, ImageOps

DEFAULT_ALPHA_BACKGROUND = (255, 255, 255)


def load_rgb(path, image):
    """Steps 1-3: the image as full-size 8-bit RGB, before any resizing."""
    im = Image.open(path)
    if image.get("exifOrientation", "ignore") == "apply":
        im = ImageOps.exif_transpose(im)
    if im.mode in ("I", "I;16", "I;16B", "I;16L"):
        im = Image.fromarray((np.asarray(im).astype(np.uint32) >> 8).astype(np.uint8), "L")
    if image.get("alpha", "drop") == "drop":
        return im.convert("RGB")
    rgba = np.asarray(im.convert("RGBA"), dtype=np.uint32)
    background = np.array(image.get("alphaBackground", DEFAULT_ALPHA_BACKGROUND), dtype=np.uint32)
    alpha = rgba[..., 3:4]
    rgb = (alpha * rgba[..., :3] + (255 - alpha) * background) // 255
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def _round_half_up(x):
    return int(math.floor(x + 0.5))


def resample(im, rw, rh):
    """`im` at rw x rh, as libvips resamples: axes that shrink first, with Lanczos-3; then axes that
    grow, with bicubic (Catmull-Rom) interpolation sampled at x / scale - 0.5 (libvips' convention;
    Pillow's own is (x + 0.5) / scale - 0.5), edges extended by copying."""
    w, h = im.size
    dw, dh = min(rw, w), min(rh, h)
    if (dw, dh) != (w, h):
        im = im.resize((dw, dh), Image.LANCZOS)
    if (dw, dh) != (rw, rh):
        pad = 4
        padded = Image.fromarray(np.pad(np.asarray(im), ((pad, pad), (pad, pad), (0, 0)), mode="edge"))
        x0 = pad - (0.5 * dw / rw if rw > dw else 0)
        y0 = pad - (0.5 * dh / rh if rh > dh else 0)
        im = padded.resize((rw, rh), Image.BICUBIC, box=(x0, y0, x0 + dw, y0 + dh))
    return im


def resize(im, size, mode):
    """Step 4: a `size` x `size` RGB image, as sharp's cover / contain / fill make it."""
    w, h = im.size
    if mode == "fill":
        return resample(im, size, size)
    shrink = min(w / size, h / size) if mode == "cover" else max(w / size, h / size)
    rw, rh = max(1, _round_half_up(w / shrink)), max(1, _round_half_up(h / shrink))
    im = resample(im, rw, rh)
    if mode == "cover":
        left, top = (rw - size + 1) // 2, (rh - size + 1) // 2
        return im.crop((left, top, left + size, top + size))
    if mode == "contain":
        canvas = Image.new("RGB", (size, size), (0, 0, 0))
        canvas.paste(im, ((size - rw) // 2, (size - rh) // 2))
        return canvas
    raise ValueError(f"unknown image.resize {mode!r}")


def pixel_values(path, manifest):
    """One image's row of `pixel_values`: float32 [3, size, size]."""
    image = manifest["image"]
    rgb = resize(load_rgb(path, image), image["size"], image["resize"])
    x = np.asarray(rgb, dtype=np.float64) / 255.0
    x = (x - np.array(image["mean"], dtype=np.float64)) / np.array(image["std"], dtype=np.float64)
    return x.transpose(2, 0, 1).astype(np.float32)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", help="the selector's selector.json")
    parser.add_argument("images", nargs="+")
    parser.add_argument("--out", default="pixel_values.npy", help="where to write the [N, 3, size, size] float32 array")
    parser.add_argument("--compare", help="a .npy of the service's pixel_values for the same images (tools/python/service-pixels.ts)")
    args = parser.parse_args(argv)
    with open(args.manifest, encoding="utf-8") as f:
        manifest = json.load(f)
    batch = np.stack([pixel_values(p, manifest) for p in args.images])
    np.save(args.out, batch)
    print(f"{args.out}: {batch.shape} {batch.dtype}")
    if args.compare:
        service = np.load(args.compare)
        # Differences in 8-bit steps: multiply back by std * 255.
        std = np.array(manifest["image"]["std"], dtype=np.float64).reshape(1, 3, 1, 1)
        steps = np.abs(batch.astype(np.float64) - service.astype(np.float64)) * std * 255
        for path, row in zip(args.images, steps):
            print(f"{path}: max {row.max():.2f}/255, mean {row.mean():.3f}/255, pixels off by more than 1/255: {(row > 1.0 + 1e-3).mean():.2%}")


if __name__ == "__main__":
    main(sys.argv[1:])
