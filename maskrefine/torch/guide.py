"""Guide images for the torch guided filter, from [0, 1] or ImageNet-normalised RGB tensors."""

from __future__ import annotations

from typing import Literal

import torch

from maskrefine._checks import is_one_of, short_repr
from maskrefine.guide import GUIDE_MODES, LUMA601

__all__ = ["make_guide", "IMAGENET_MEAN", "IMAGENET_STD", "LUMA601"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_MODES = (*GUIDE_MODES, "colour")  # "colour": British spelling of "color"


def make_guide(
    image: torch.Tensor, mode: Literal["mean", "luma", "colour", "color"] = "mean", *, normalized: bool
) -> torch.Tensor:
    """Guide for :func:`maskrefine.torch.guided_filter` from an RGB batch.

    Parameters
    ----------
    image : Tensor, shape (B, 3, H, W), floating
        RGB images, either in [0, 1] (``normalized=False``) or ImageNet-normalised
        ``(x - mean) / std`` with mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)
        (``normalized=True``; un-normalised first).
    mode : {"mean", "luma", "colour"}, default "mean"
        ``"mean"``: plain channel mean (R+G+B)/3 — what the paper's code uses (docs/filters.md, section 2);
        ``"luma"``: Rec.601 0.299 R + 0.587 G + 0.114 B; ``"colour"`` (or ``"color"``): the 3 channels.
    normalized : bool, keyword-only, required
        Whether ``image`` is ImageNet-normalised. No default on purpose: guessing wrong silently gives a
        guide outside [0, 1] and a different ``eps`` scale.

    Returns
    -------
    Tensor, shape (B, 1, H, W) (mean, luma) or (B, 3, H, W) (colour), dtype and device of ``image``,
    values in [0, 1] for valid inputs (not clamped). Differentiable.

    Examples
    --------
    >>> import torch
    >>> make_guide(torch.full((1, 3, 2, 2), 0.5), "luma", normalized=False).flatten().tolist()
    [0.5, 0.5, 0.5, 0.5]
    """
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"`image` must be a torch.Tensor of shape (B, 3, H, W); got {type(image).__name__}")
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"`image` must have shape (B, 3, H, W) (RGB); got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise TypeError(
            f"`image` must be floating point; got dtype {image.dtype}. "
            "Use `image.float() / 255` for 8-bit data."
        )
    if not is_one_of(mode, _MODES):
        raise ValueError(f"`mode` must be one of 'mean', 'luma', 'color' ('colour'); got {short_repr(mode)}")
    if not isinstance(normalized, bool):
        raise TypeError(f"`normalized` must be True or False; got {short_repr(normalized)}")
    # Python-scalar arithmetic only: no small constant tensors copied to the device (no host-device sync).
    channels = [image[:, c : c + 1] for c in range(3)]
    if normalized:
        channels = [
            ch * std + mean for ch, std, mean in zip(channels, IMAGENET_STD, IMAGENET_MEAN, strict=True)
        ]
    if mode == "mean":
        return (channels[0] + channels[1] + channels[2]) / 3.0
    if mode == "luma":
        return LUMA601[0] * channels[0] + LUMA601[1] * channels[1] + LUMA601[2] * channels[2]
    return torch.cat(channels, dim=1)
