"""Helpers of the trainer tests (imported by module name: pytest puts tests/train on sys.path)."""

from __future__ import annotations

import struct
import zlib

import torch

from maskrefine.train import preset
from maskrefine.train.vit import VisionTransformer

#: A head small enough for a test run.
FAST = {"head_fine_channels": (16, 8)}


def tiny_cfg(checkpoint, **changes):
    """The ``tiny`` preset with the ViT of ``checkpoint`` and the :data:`FAST` head, plus ``changes``."""
    return preset("tiny", backbone_checkpoint=str(checkpoint), **{**FAST, **changes})


def tiny_vit(*, layout: str = "dino", patch: int = 8, registers: int = 0, seed: int = 0) -> VisionTransformer:
    """Random ViT of width 64 (1 head), depth 2, position grid 4 (DINO) or 5 (DINOv2)."""
    torch.manual_seed(seed)
    return VisionTransformer(
        patch_size=patch,
        embed_dim=64,
        depth=2,
        num_heads=1,
        pos_grid=4 if layout == "dino" else 5,
        layer_scale=layout == "dinov2",
        num_register_tokens=registers,
    )


SIZES = {"a": (48, 64), "b": (70, 50), "c": (64, 64)}


def disc_images(root, sizes=None):
    """Write ``root/images/<stem>.png`` (a bright noisy disc) and ``root/gt/<stem>.png`` of each size."""
    import cv2
    import numpy as np

    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "gt").mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for stem, (h, w) in (sizes or SIZES).items():
        yy, xx = np.mgrid[0:h, 0:w]
        disc = (xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (min(h, w) / 3) ** 2
        image = np.clip(40 + 160 * disc[..., None] + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8)
        cv2.imwrite(str(root / "images" / f"{stem}.png"), image)
        cv2.imwrite(str(root / "gt" / f"{stem}.png"), disc.astype(np.uint8) * 255)
    return root / "images", root / "gt"


def copy_folder(source, target):
    """Copy the files of folder ``source`` into a new folder ``target``; return ``target``."""
    target.mkdir(parents=True)
    for path in source.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return target


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(height: int, width: int) -> bytes:
    """A PNG whose header claims ``height`` x ``width`` pixels (a few bytes of data)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 100)) + _chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body
