"""Helpers of the trainer tests (imported by module name: pytest puts tests/train on sys.path)."""

from __future__ import annotations

import torch

from maskrefine.train.vit import VisionTransformer


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
