"""Crop sampling for the multi-scale crop-consistency loss (docs/training.md §4).

A crop is ``H/2 x W/2`` pixels at a per-image top-left offset ``(row, col)``, zoomed x2 (bilinear,
``align_corners=False``) back to ``H x W``. The same window is cut from the normalised image (the teacher's
input) and from the student's fine mask, so the student crop and the teacher's prediction cover the same
region pixel for pixel.

Samplers
--------
``"uniform"`` (default)
    Row and column offsets uniform over ``{0, s, 2s, …}`` up to ``H/2`` (resp. ``W/2``) with ``s`` the head
    stride. When ``H/2`` and ``W/2`` are multiples of ``s`` (training's config validation requires it), every
    position of the crop on the patch grid is possible, crops reach the bottom and right edges, and
    student cells map onto 2x2 teacher cells.
``"reference"``
    The paper repository's effective behaviour (a list-repeat bug): token offsets drawn in 10..29 are used
    as *pixel* offsets; the row is then clamped to ``[H/4, 3H/4]`` — ``H/4`` whenever ``H >= 116`` (80 px
    at 320), 10..29 clamped up to ``H/4`` below that (16..29 at 64) — and the column is 10..29 px. Crops
    fit only when ``H, W >= 58``; smaller images are refused.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from maskrefine._checks import short_repr
from maskrefine.train.config import REFERENCE_SAMPLER_MIN

__all__ = ["CROP_SAMPLERS", "sample_crop_offsets", "crop_and_zoom"]

CROP_SAMPLERS = ("uniform", "reference")


def sample_crop_offsets(
    batch: int,
    height: int,
    width: int,
    *,
    sampler: str = "uniform",
    stride: int = 8,
    generator: torch.Generator,
) -> torch.Tensor:
    """Top-left pixel offsets (B, 2) int64 ``(row, col)`` of the ``H/2 x W/2`` crops.

    Parameters
    ----------
    batch, height, width : int
        Batch size and image size (H and W even; both >= 58 for the reference sampler).
    sampler : {"uniform", "reference"}
    stride : int
        Offset step of the uniform sampler (the head's stride).
    generator : torch.Generator
        Source of randomness (CPU); its state is part of a training checkpoint.
    """
    if sampler not in CROP_SAMPLERS:
        raise ValueError(f"crop sampler must be one of {', '.join(CROP_SAMPLERS)}; got {short_repr(sampler)}")
    if height % 2 or width % 2:
        raise ValueError(f"image size must be even for H/2 x W/2 crops; got {height}x{width}")
    if sampler == "uniform":
        rows = torch.randint(0, height // 2 // stride + 1, (batch,), generator=generator) * stride
        cols = torch.randint(0, width // 2 // stride + 1, (batch,), generator=generator) * stride
    else:
        if min(height, width) < REFERENCE_SAMPLER_MIN:  # offsets reach 29 px: an H/2 x W/2 crop may not fit
            raise ValueError(
                f"the reference crop sampler needs H, W >= {REFERENCE_SAMPLER_MIN} px; got {height}x{width}"
            )
        tokens = torch.randint(10, 30, (2, batch), generator=generator)
        rows = tokens[0].clamp(height // 4, 3 * height // 4)
        cols = tokens[1]
    return torch.stack((rows, cols), dim=1)


def crop_and_zoom(x: torch.Tensor, offsets: torch.Tensor, zoom: int = 2) -> torch.Tensor:
    """Cut ``H/zoom x W/zoom`` windows at ``offsets`` (B, 2) from x (B, C, H, W); zoom them back to H x W.

    Zooming is bilinear (``align_corners=False``). Differentiable in x.

    Raises
    ------
    ValueError
        ``offsets`` not (B, 2), or a window not inside the image (it would be cut short and zoomed by more).
    """
    batch, _, height, width = x.shape
    h, w = height // zoom, width // zoom
    if tuple(offsets.shape) != (batch, 2):
        raise ValueError(
            f"offsets must have shape ({batch}, 2) (row, col per image); got {tuple(offsets.shape)}"
        )
    rows, cols = offsets[:, 0], offsets[:, 1]
    if bool((rows < 0).any() or (rows > height - h).any() or (cols < 0).any() or (cols > width - w).any()):
        raise ValueError(
            f"offsets must place the {h}x{w} windows inside the {height}x{width} image "
            f"(rows 0..{height - h}, cols 0..{width - w}); got {offsets.tolist()}"
        )
    crops = torch.stack([x[i, :, r : r + h, c : c + w] for i, (r, c) in enumerate(offsets.tolist())])
    return F.interpolate(crops, size=(height, width), mode="bilinear", align_corners=False)
