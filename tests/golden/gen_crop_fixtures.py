#!/usr/bin/env python3
"""Fixtures for the ADM centre crop and ten-crop (docs/spec.md §5.1), computed with Pillow.

Written from the spec's description of the reference pipeline (not copied from it):
  centre crop to `size`: while min side >= 2*size: resize(floor halves, BOX);
  then resize(round(side * size / min side), BICUBIC); crop the centre at (side - size) // 2.
  ten-crop(size): TL, TR, BL, BR, centre (offset round((side - size) / 2)) of the image, then of
  its horizontal mirror.
Run with Debian's python3 (python3-pil, python3-numpy):  /usr/bin/python3 tests/golden/gen_crop_fixtures.py
Writes tests/fixtures/crop/*.npy (uint8, HWC).
"""
import os

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "crop")


def centre_crop(img, size):
    while min(img.size) >= 2 * size:
        img = img.resize(tuple(x // 2 for x in img.size), resample=Image.BOX)
    scale = size / min(img.size)
    img = img.resize(tuple(round(x * scale) for x in img.size), resample=Image.BICUBIC)
    a = np.array(img)
    top = (a.shape[0] - size) // 2
    left = (a.shape[1] - size) // 2
    return a[top:top + size, left:left + size]


def ten_crop(a, size):
    side = a.shape[0]
    far = side - size
    c = int(round(far / 2.0))
    offs = [(0, 0), (far, 0), (0, far), (far, far), (c, c)]  # (left, top)
    out = []
    for im in (a, a[:, ::-1]):
        for left, top in offs:
            out.append(im[top:top + size, left:left + size])
    return np.stack(out)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20261129)
    cases = {
        # name: (height, width, channels, crop size)
        "rgb_90x70": (70, 90, 3, 32),     # one BOX halving, then bicubic down-scale
        "gray_20x24": (24, 20, 1, 32),    # bicubic up-scale (image smaller than the crop)
        "rgb_300x200": (200, 300, 3, 40),  # two BOX halvings, then bicubic
        "gray_33x33": (33, 33, 1, 32),    # near-identity down-scale
    }
    for name, (h, w, c, size) in cases.items():
        # Smooth structure plus noise so both filters matter.
        y, x = np.mgrid[0:h, 0:w]
        base = 127 + 100 * np.sin(x / 5.0) * np.cos(y / 7.0)
        chans = [np.clip(base + rng.normal(0, 30, (h, w)) + 20 * k, 0, 255) for k in range(c)]
        a = np.stack(chans, -1).astype(np.uint8)
        img = Image.fromarray(a[..., 0] if c == 1 else a, "L" if c == 1 else "RGB")
        np.save(os.path.join(OUT, f"{name}.input.npy"), a)
        crop = centre_crop(img, size)
        if crop.ndim == 2:
            crop = crop[..., None]
        np.save(os.path.join(OUT, f"{name}.crop{size}.npy"), crop)
    # Ten-crop of the 40 px centre crop of rgb_300x200 to 32 px (crop range 1.25).
    a = np.load(os.path.join(OUT, "rgb_300x200.crop40.npy"))
    np.save(os.path.join(OUT, "rgb_300x200.tencrop32.npy"), ten_crop(a, 32))


if __name__ == "__main__":
    main()
