"""Sempart losses (docs/training.md §3) and the multi-scale crop-consistency target (§4).

All functions take **probabilities** (sigmoid of the logits), not logits, and return a 0-D tensor.
Affinities built from the frozen features and the image carry no gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from maskrefine.torch import guided_filter, make_guide

__all__ = [
    "CLAMP",
    "key_affinity",
    "ncut_loss",
    "pixel_gtv_loss",
    "feature_gtv_loss",
    "coarse_fine_loss",
    "crop_target",
    "crop_consistency_loss",
]

#: Masks are clamped to [CLAMP, 1 - CLAMP] in NCut and in the crop target, as in the reference.
CLAMP = 1e-6
_LOW = 1e-6  # affinity of dissimilar pairs


def key_affinity(features: torch.Tensor, threshold: float = 0.4) -> torch.Tensor:
    """Thresholded cosine affinity ``W_ij = 1 if cos(k_i, k_j) > threshold else 1e-6`` (diagonal included).

    features (B, D, h, w) -> W (B, N, N) with N = h*w, float32, no gradient.
    """
    with torch.no_grad():
        k = F.normalize(features.flatten(2).float(), dim=1)
        cos = k.transpose(1, 2) @ k
        return torch.where(cos > threshold, 1.0, _LOW)


def ncut_loss(coarse: torch.Tensor, features: torch.Tensor, threshold: float = 0.4) -> torch.Tensor:
    """Soft normalised cut of the coarse mask ``s`` (B, 1, h, w) on the key affinity of ``features``.

    ``cut = sᵀW(1−s)``, ``A = sᵀW1``, ``B = (1−s)ᵀW1``; per image ``cut/max(A, 1e-6) + cut/max(B, 1e-6)``,
    mean over the batch; ``s`` is clamped to [1e-6, 1 − 1e-6] first. 0 for a perfect split of two blocks
    that do not touch, 1 for a constant ``s = 0.5``.
    """
    w = key_affinity(features, threshold)
    s = coarse.flatten(1).float().clamp(CLAMP, 1 - CLAMP)
    ws = torch.bmm(w, s.unsqueeze(2)).squeeze(2)  # W s  (W symmetric)
    degree = w.sum(dim=2)  # W 1
    cut = (ws * (1 - s)).sum(dim=1)
    assoc_a = (s * degree).sum(dim=1)
    assoc_b = ((1 - s) * degree).sum(dim=1)
    return (cut / assoc_a.clamp_min(1e-6) + cut / assoc_b.clamp_min(1e-6)).mean()


def _neighbour_diffs(x: torch.Tensor) -> torch.Tensor:
    """X (B, C, H, W) -> x(p) − x(q) for the 8 neighbours q, reflect padding: (B, 8, C, H, W)."""
    _, _, height, width = x.shape
    pad = F.pad(x, (1, 1, 1, 1), mode="reflect")
    shifts = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    return torch.stack(
        [x - pad[..., 1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width] for dy, dx in shifts], 1
    )


def pixel_gtv_loss(fine: torch.Tensor, image: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Image-weighted total variation of the fine mask.

    Mean over B×8×H×W of ``exp(−Σ_c (I_c(p) − I_c(q))² / σ) · (m(p) − m(q))²`` over the 8 neighbours q
    of each pixel p (reflect padding).
    """
    with torch.no_grad():
        weight = torch.exp(-_neighbour_diffs(image.float()).pow(2).sum(dim=2) / sigma)
    return (weight * _neighbour_diffs(fine.float())[:, :, 0].pow(2)).mean()


def feature_gtv_loss(coarse: torch.Tensor, features: torch.Tensor, threshold: float = 0.4) -> torch.Tensor:
    """Feature-weighted total variation of the coarse mask.

    Weight 1 where the cosine of neighbouring features exceeds ``threshold``, else 1e-6; mean over
    B×8×h×w of weight·(s(p) − s(q))².
    """
    with torch.no_grad():
        k = F.normalize(features.float(), dim=1)
        _, _, height, width = k.shape
        pad = F.pad(k, (1, 1, 1, 1), mode="reflect")
        shifts = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
        cos = torch.stack(
            [(k * pad[..., 1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]).sum(1) for dy, dx in shifts], 1
        )
        weight = torch.where(cos > threshold, 1.0, _LOW)
    return (weight * _neighbour_diffs(coarse.float())[:, :, 0].pow(2)).mean()


def coarse_fine_loss(coarse: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
    """Mean of ``(s − down(m))²``, down = bilinear resize of the fine mask to the coarse grid.

    The resize uses ``align_corners=False`` and no antialias. Gradients reach both branches.
    """
    down = F.interpolate(fine.float(), size=coarse.shape[-2:], mode="bilinear", align_corners=False)
    return (coarse.float() - down).pow(2).mean()


def crop_target(
    teacher_fine: torch.Tensor, crop_image: torch.Tensor, radius: int = 9, eps: float = 1e-3
) -> torch.Tensor:
    """Teacher target of §6: the teacher's fine mask guided-filtered on the zoomed crop, **detached**.

    The guide is the gray mean of the un-normalised crop (r 9, ε 1e-3); the result is clamped to
    [1e-6, 1 − 1e-6].

    The reference standardises the mask before filtering and undoes it after; the filter is affine in the
    mask, so that round trip changes nothing (docs/filters.md, section 2) and is left out.
    """
    with torch.no_grad():
        guide = make_guide(crop_image.detach().float(), "mean", normalized=True)
        refined = guided_filter(guide, teacher_fine.detach().float(), radius, eps)
        return refined.clamp(CLAMP, 1 - CLAMP)


def crop_consistency_loss(student_crop: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE between the zoomed crop of the student's fine mask and the (detached) teacher target."""
    return (student_crop.float() - target.detach()).pow(2).mean()
