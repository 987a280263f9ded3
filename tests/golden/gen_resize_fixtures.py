#!/usr/bin/env python3
"""Fixtures for the bicubic resize before FID (docs/spec.md §3.5).

The reference resizes generated 384 px images to 256 px with PyTorch's
`F.interpolate(x, size, mode="bicubic", align_corners=False)` (no anti-aliasing) on the float
image in [-1, 1], then converts to uint8 with trunc(clamp(127.5·x + 128, 0, 255)). This script
computes that with torch itself for small random images and writes, to tests/fixtures/resize/:
  * {name}.input.npy   float32 [C, H, W]
  * {name}.output.npy  float32 [C, h, w]   (the interpolated floats)
  * {name}.uint8.npy   uint8   [h, w, C]   (after the uint8 conversion, NHWC as in the .npz)
Cases: 12×12 → 8×8 (the 384 → 256 ratio), 9×7 → 4×3 (odd sizes, border taps), 6×5 → 9×11
(up-scaling, negative source coordinates).

Generated with PyPI torch 2.15.0 (CPU) in a scratch venv; numpy. Rerun from the repository root:
    /tmp/torchvenv/bin/python tests/golden/gen_resize_fixtures.py
"""

import os

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "fixtures", "resize"))

CASES = [("rgb_12x12_to_8x8", 3, 12, 12, 8, 8), ("gray_9x7_to_4x3", 1, 9, 7, 4, 3),
         ("rgb_6x5_to_9x11", 3, 6, 5, 9, 11)]


def main():
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    for name, c, h, w, oh, ow in CASES:
        x = torch.rand((1, c, h, w), generator=gen, dtype=torch.float32) * 2.2 - 1.1
        y = F.interpolate(x, size=(oh, ow), mode="bicubic", align_corners=False)
        u8 = torch.clamp(127.5 * y + 128.0, 0, 255).to(torch.uint8)  # trunc toward zero
        np.save(os.path.join(OUT, f"{name}.input.npy"), x[0].numpy())
        np.save(os.path.join(OUT, f"{name}.output.npy"), y[0].numpy())
        np.save(os.path.join(OUT, f"{name}.uint8.npy"), u8[0].permute(1, 2, 0).contiguous().numpy())
        print(name, tuple(y.shape))


if __name__ == "__main__":
    main()
