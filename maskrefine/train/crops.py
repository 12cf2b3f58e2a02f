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
    The paper repository's effective behaviour (a list-repeat bug): token offsets drawn uniformly in
    ``[g/4, 3·(g/4))`` on the ``g = size // stride`` patch grid (integer divisions; ``randint(g // 4,
    3 * (g // 4))`` per axis) are used as *pixel* offsets; the row is then clamped to
    ``[(H/2)/2, 3·((H/2)/2)]`` — ``H/4`` at the usual sizes (80 px at 320) — and the column is the token
    value (10..29 px at 320 with patch 8, 5..14 with patch 16). The grid needs ``g >= 4`` per axis.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from maskrefine._checks import short_repr
from maskrefine.train.config import REFERENCE_SAMPLER_MIN_GRID

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
        Batch size and image size (H and W even; for the reference sampler at least 4 strides).
    sampler : {"uniform", "reference"}
    stride : int
        The head's stride (patch size): the offset step of the uniform sampler, the patch grid of the
        reference sampler.
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
        grid_h, grid_w = height // stride, width // stride
        if min(grid_h, grid_w) < REFERENCE_SAMPLER_MIN_GRID:  # randint(g // 4, 3 * (g // 4)) is empty
            raise ValueError(
                f"the reference crop sampler needs a patch grid of at least {REFERENCE_SAMPLER_MIN_GRID}x"
                f"{REFERENCE_SAMPLER_MIN_GRID}; got {grid_h}x{grid_w} ({height}x{width} px, stride {stride})"
            )
        tokens_h = torch.randint(grid_h // 4, 3 * (grid_h // 4), (batch,), generator=generator)
        tokens_w = torch.randint(grid_w // 4, 3 * (grid_w // 4), (batch,), generator=generator)
        quarter = height // 2 // 2
        rows = tokens_h.clamp(quarter, 3 * quarter)
        cols = tokens_w
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
