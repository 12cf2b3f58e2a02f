"""Small input files for the listing-message tests (shared by several test modules)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_mask(path: Path, seed: int = 0) -> None:
    """A random 6 x 8 8-bit mask at ``path`` (folders made as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 256, (6, 8), dtype=np.uint8))


def write_image(path: Path, seed: int = 0) -> None:
    """A random 48 x 64 RGB image at ``path`` (folders made as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), pixels)
