"""Full-size soft masks from a trained Sempart head (the fine branch, PROTOCOL §5.5).

Geometry: with ``bn_mode="eval"`` (default) each image is resized (bilinear, antialiased) so that its
shorter side is the training ``image_size`` and both sides are multiples of the head stride, predicted
alone, and the fine mask is resized back to the image size (bilinear). With ``bn_mode="batch_stats"``
(reference) BatchNorm uses the statistics of the current batch, as the paper repository evaluates: images
are then resized to ``image_size x image_size`` and predicted in batches of ``batch_size``.

Polarity (every loss is symmetric in s <-> 1 - s): ``"border"`` flips a mask whose mean over the image's
border pixels exceeds 0.5; ``"batch_mean"`` flips a whole batch whose mean exceeds 0.5 (reference);
``"none"`` keeps the network's output. Refinement (``refine="guided"``): the paper's guided filter (r 9,
ε 1e-3, channel-mean guide) on the fine mask at network resolution, after the polarity flip; ``"auto"``
means guided for a checkpoint trained with the crop loss (the paper's Crop + GF method), none otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from maskrefine.errors import ConfigError
from maskrefine.torch import guided_filter, make_guide
from maskrefine.train.config import TrainConfig
from maskrefine.train.data import normalize
from maskrefine.train.model import SempartModel

__all__ = ["Prediction", "Predictor", "REFINE_MODES", "apply_polarity"]

REFINE_MODES = ("auto", "guided", "none")


@dataclass(frozen=True, slots=True)
class Prediction:
    """Soft masks of one image: ``fine`` (H, W) float32 in [0, 1] at the image size; ``coarse``
    (h, w) float32 on the head's grid (a uniform downscale of the image: ``apply`` accepts it)."""

    fine: np.ndarray
    coarse: np.ndarray
    flipped: bool


def apply_polarity(fine: torch.Tensor, rule: str) -> torch.Tensor:
    """Boolean (B,) flags: which masks of ``fine`` (B, 1, H, W) to flip under ``rule``."""
    if rule == "none":
        return torch.zeros(fine.shape[0], dtype=torch.bool, device=fine.device)
    if rule == "batch_mean":
        return (fine.mean() > 0.5).expand(fine.shape[0])
    if rule == "border":
        border = torch.cat(
            (fine[:, 0, 0, :], fine[:, 0, -1, :], fine[:, 0, 1:-1, 0], fine[:, 0, 1:-1, -1]), dim=1
        )
        return border.mean(dim=1) > 0.5
    raise ValueError(f"polarity must be one of border, batch_mean, none; got {rule!r}")


class Predictor:
    """Predict masks with a :class:`SempartModel` and its :class:`TrainConfig`.

    Parameters
    ----------
    model, cfg
        The network (moved to ``device``) and the settings it was trained with.
    device : str or torch.device
    refine : {"auto", "guided", "none"}
    bn_mode, polarity : optional
        Override ``cfg.bn_mode`` / ``cfg.polarity``.
    """

    def __init__(
        self,
        model: SempartModel,
        cfg: TrainConfig,
        *,
        device: str | torch.device = "cpu",
        refine: Literal["auto", "guided", "none"] = "auto",
        bn_mode: str | None = None,
        polarity: str | None = None,
    ) -> None:
        if refine not in REFINE_MODES:
            raise ConfigError(f"refine must be one of {', '.join(REFINE_MODES)}; got {refine!r}")
        self.model = model.to(device)
        self.cfg = cfg
        self.device = torch.device(device)
        self.refine = ("guided" if cfg.crop_loss else "none") if refine == "auto" else refine
        self.bn_mode = bn_mode or cfg.bn_mode
        self.polarity = polarity or cfg.polarity
        if self.bn_mode not in ("eval", "batch_stats"):
            raise ConfigError(f"bn_mode must be 'eval' or 'batch_stats'; got {self.bn_mode!r}")
        apply_polarity(torch.zeros(1, 1, 2, 2), self.polarity)  # validates the name

    @property
    def batch_size(self) -> int:
        """Images per forward pass: 1 in eval mode, ``cfg.batch_size`` with batch statistics."""
        return 1 if self.bn_mode == "eval" else self.cfg.batch_size

    def _input_size(self, height: int, width: int) -> tuple[int, int]:
        size, stride = self.cfg.image_size, self.model.backbone.stride
        if self.bn_mode == "batch_stats":
            return size, size
        scale = size / min(height, width)
        return (max(stride, round(height * scale / stride) * stride), max(stride, round(width * scale / stride) * stride))

    @torch.no_grad()
    def predict(self, images: list[np.ndarray]) -> list[Prediction]:
        """Masks of RGB float32 images (H, W, 3) in [0, 1] (one batch; see :attr:`batch_size`)."""
        if not images:
            return []
        sizes = {self._input_size(*im.shape[:2]) for im in images}
        if len(sizes) != 1:
            raise ValueError("images of one call must resize to the same network input size")
        (net_h, net_w), = sizes
        tensors = []
        for im in images:
            x = torch.from_numpy(np.ascontiguousarray(im.transpose(2, 0, 1)))[None].to(self.device)
            x = F.interpolate(x, size=(net_h, net_w), mode="bilinear", align_corners=False, antialias=True)
            tensors.append(normalize(x.clamp(0, 1)[0]))
        batch = torch.stack(tensors)
        self.model.eval()
        if self.bn_mode == "batch_stats":
            self.model.head.train()  # BatchNorm normalises with the batch statistics (reference)
        amp = torch.autocast("cuda", dtype=torch.bfloat16) if self.cfg.amp and self.device.type == "cuda" else None
        if amp is not None:
            with amp:
                out = self.model(batch)
        else:
            out = self.model(batch)
        self.model.eval()
        fine, coarse = out.fine.float(), out.coarse.float()
        flip = apply_polarity(fine, self.polarity).view(-1, 1, 1, 1)
        fine = torch.where(flip, 1 - fine, fine)
        coarse = torch.where(flip, 1 - coarse, coarse)
        if self.refine == "guided" and min(net_h, net_w) >= 2 * self.cfg.gf_radius + 1:
            guide = make_guide(batch.float(), "mean", normalized=True)
            fine = guided_filter(guide, fine, self.cfg.gf_radius, self.cfg.gf_eps)
        results = []
        for i, im in enumerate(images):
            full = F.interpolate(fine[i : i + 1], size=im.shape[:2], mode="bilinear", align_corners=False)
            results.append(
                Prediction(
                    fine=full[0, 0].clamp(0, 1).cpu().numpy().astype(np.float32),
                    coarse=coarse[i, 0].clamp(0, 1).cpu().numpy().astype(np.float32),
                    flipped=bool(flip[i]),
                )
            )
        return results
