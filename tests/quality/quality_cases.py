"""Constructed cases for the quality tests: an ellipse whose edge only the colour guide can see."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from maskrefine.quality.coarse import make_coarse_mask
from maskrefine.quality.grid import Item

# Same RGB mean (100) inside and outside: the mean/luma-free edge is visible to the colour guide only.
FG_RGB = (200, 60, 40)
BG_RGB = (40, 60, 200)


def write_case(
    folder: Path, stem: str, rng: np.random.Generator, *, patch: int = 8, binary: bool = True
) -> Item:
    """Write images/<stem>.png, gt/<stem>.png, coarse/<stem>.png under ``folder``; return the Item."""
    h, w = 96, 128
    yy, xx = np.mgrid[:h, :w]
    cy, cx = rng.integers(35, 61), rng.integers(45, 83)
    ay, ax = rng.integers(18, 28), rng.integers(25, 38)
    gt = np.where((yy - cy) ** 2 / ay**2 + (xx - cx) ** 2 / ax**2 < 1, 255, 0).astype(np.uint8)
    rgb = np.where(gt[..., None] > 0, FG_RGB, BG_RGB).astype(np.int16)
    rgb = np.clip(rgb + rng.integers(-6, 7, rgb.shape), 0, 255).astype(np.uint8)
    for sub in ("images", "gt", "coarse"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / "images" / f"{stem}.png"), rgb[..., ::-1])
    cv2.imwrite(str(folder / "gt" / f"{stem}.png"), gt)
    cv2.imwrite(str(folder / "coarse" / f"{stem}.png"), make_coarse_mask(gt, patch, binary=binary))
    return Item(
        stem,
        folder / "images" / f"{stem}.png",
        folder / "coarse" / f"{stem}.png",
        folder / "gt" / f"{stem}.png",
    )


def write_cases(folder: Path, count: int, seed: int = 0, **kwargs) -> list[Item]:
    rng = np.random.default_rng(seed)
    return [write_case(folder, f"img{i:02d}", rng, **kwargs) for i in range(count)]
