"""Full-size soft masks from a trained Sempart head (the fine branch, docs/training.md §6).

Geometry: with ``bn_mode="eval"`` (default) each image is resized (bilinear, antialiased) so that its
shorter side is the training ``image_size`` and both sides are multiples of the head stride, predicted
alone, and the fine mask is resized back to the image size (bilinear). With ``bn_mode="batch_stats"``
(reference) BatchNorm uses the statistics of the current batch, as the paper repository evaluates: images
are then resized to ``image_size x image_size`` and predicted in batches of ``batch_size``.

Polarity (every loss is symmetric in s <-> 1 - s): ``"border"`` flips a mask whose mean over the image's
border pixels exceeds 0.5; ``"batch_mean"`` flips a whole batch whose mean exceeds 0.5 (reference);
``"none"`` keeps the network's output. Refinement (``refine="guided"``): the paper's guided filter (r 9,
ε 1e-3, channel-mean guide) on the fine mask at network resolution, after the polarity flip; it is skipped
when the network input is smaller than the filter's window (``2 gf_radius + 1`` = 19 px) in either
dimension (only with an ``image_size`` below 19, or a network input side of one stride in eval mode);
``"auto"`` means guided for a checkpoint trained with the crop loss (the paper's Crop + GF method), none
otherwise.

Size cap: in eval mode an image of extreme aspect ratio gives a long network input (a 1x1000 image would
become 320x320000 px); an input of more than ``MAX_INPUT_FACTOR`` (8) x ``image_size``² pixels (an aspect
ratio above about 8:1) is refused for that image (ValueError naming the sizes; ``predict_folder`` reports
the file as failed and goes on) instead of running out of memory.

Prediction never changes the model: the train/eval modes it finds are restored, and with batch statistics
BatchNorm's running statistics are put back after the forward pass.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F

from maskrefine._checks import as_rgb_unit_image, short_repr
from maskrefine.errors import ConfigError
from maskrefine.torch import guided_filter, make_guide
from maskrefine.train.config import TrainConfig
from maskrefine.train.data import normalize
from maskrefine.train.model import ModelOutput, SempartModel
from maskrefine.train.predict_job import (
    REFINE_MODES,
    RefineMode,
    check_device_name,
    check_refine,
    predict_folder,
)

__all__ = [
    "MAX_INPUT_FACTOR",
    "Prediction",
    "Predictor",
    "REFINE_MODES",
    "apply_polarity",
    "load_predictor",
    "predict_folder",
]

#: A network input may have at most this many times ``image_size``² pixels (eval mode).
MAX_INPUT_FACTOR = 8


@dataclass(frozen=True, slots=True)
class Prediction:
    """Soft masks of one image, float32 in [0, 1].

    ``fine`` (H, W) is at the image size. ``coarse`` (h, w) is the head's grid when that is a uniform
    downscale of the image no larger than it (eval mode, images at least as large as the network input);
    otherwise (batch statistics, whose grid is square, or a small image upscaled for the network) the grid
    resized bilinearly to the image's aspect ratio at the grid's resolution along the shorter side, never
    larger than the image. Either way ``maskrefine apply`` accepts it with its image.

    Parameters
    ----------
    fine : ndarray of float32, shape (H, W)
        Fine mask at the image size.
    coarse : ndarray of float32, shape (h, w)
        Coarse mask on the head's grid (see above).
    flipped : bool
        Whether the polarity rule flipped the masks (foreground and background swapped).
    """

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
    raise ValueError(f"polarity must be one of border, batch_mean, none; got {short_repr(rule)}")


class Predictor:
    """Predict masks with a :class:`SempartModel` and its :class:`TrainConfig`.

    Parameters
    ----------
    model, cfg
        The network (moved to ``device``) and the settings it was trained with.
    device : str or torch.device
    refine : {"auto", "guided", "none"}
        ``"guided"`` is skipped (silently) for a network input smaller than ``2 cfg.gf_radius + 1`` px in
        either dimension.
    bn_mode, polarity : optional
        Override ``cfg.bn_mode`` / ``cfg.polarity``.
    """

    def __init__(
        self,
        model: SempartModel,
        cfg: TrainConfig,
        *,
        device: str | torch.device = "cpu",
        refine: RefineMode = "auto",
        bn_mode: str | None = None,
        polarity: str | None = None,
    ) -> None:
        refine = check_refine(refine)
        if not isinstance(model, SempartModel):
            raise TypeError(f"`model` must be a SempartModel (build_model); got {type(model).__name__}")
        if not isinstance(cfg, TrainConfig):
            raise TypeError(f"`cfg` must be a TrainConfig (preset, load_predictor); got {type(cfg).__name__}")
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError):
            raise ConfigError(f"device must be 'cpu', 'cuda' or 'cuda:N'; got {short_repr(device)}") from None
        self.model = model.to(self.device)
        self.cfg = cfg
        self.refine = ("guided" if cfg.crop_loss else "none") if refine == "auto" else refine
        # None means the run's setting; "" or False is refused below, not read as None
        self.bn_mode = cfg.bn_mode if bn_mode is None else bn_mode
        self.polarity = cfg.polarity if polarity is None else polarity
        if self.bn_mode not in ("eval", "batch_stats"):
            raise ConfigError(f"bn_mode must be 'eval' or 'batch_stats'; got {short_repr(self.bn_mode)}")
        try:
            apply_polarity(torch.zeros(1, 1, 2, 2), self.polarity)  # validates the name
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    @property
    def batch_size(self) -> int:
        """Images per forward pass: 1 in eval mode, ``cfg.batch_size`` with batch statistics."""
        return 1 if self.bn_mode == "eval" else self.cfg.batch_size

    def _input_size(self, height: int, width: int) -> tuple[int, int]:
        size, stride = self.cfg.image_size, self.model.backbone.stride
        if self.bn_mode == "batch_stats":
            return size, size
        scale = size / min(height, width)
        return (
            max(stride, round(height * scale / stride) * stride),
            max(stride, round(width * scale / stride) * stride),
        )

    def input_problem(self, height: int, width: int) -> str | None:
        """Say why an image of ``height`` x ``width`` cannot be predicted (a network input over the cap).

        Parameters
        ----------
        height : int
            Image height in pixels.
        width : int
            Image width in pixels.

        Returns
        -------
        str or None
            The problem, when the network input for that size would have more than
            8 x ``image_size²`` pixels (an aspect ratio above about 8:1); None when the image can be
            predicted.
        """
        net_h, net_w = self._input_size(height, width)
        cap = MAX_INPUT_FACTOR * self.cfg.image_size**2
        if net_h * net_w <= cap:
            return None
        return (
            f"the {height}x{width} image (HxW) would need a {net_h}x{net_w} network input, more than "
            f"{MAX_INPUT_FACTOR} x image_size² = {cap} pixels (aspect ratio above about "
            f"{MAX_INPUT_FACTOR}:1); crop or pad it"
        )

    @torch.no_grad()
    def predict(self, images: list[np.ndarray]) -> list[Prediction]:
        """Masks of RGB float images (H, W, 3) in [0, 1] (one batch; see :attr:`batch_size`).

        ``images`` is a list of arrays (any float dtype, byte order or layout; read as float32). The
        model's state (train/eval modes, BatchNorm running statistics) is the same afterwards.

        Parameters
        ----------
        images : list of ndarray of float, each shape (H, W, 3)
            RGB images in [0, 1] (a sequence, not one array), predicted as one batch; they must resize to
            the same network input size.

        Returns
        -------
        list of Prediction
            One per image, in order; an empty list for no image.

        Raises
        ------
        TypeError
            ``images`` not a list of arrays; an image that is not float (an 8-bit image: divide by 255).
        ValueError
            An image not (H, W, 3), with NaN/inf or values outside [0, 1] (each named ``images[i]``);
            images that resize to different network input sizes, or a network input over the cap
            (:meth:`input_problem`).
        """
        if isinstance(images, np.ndarray) or not isinstance(images, Sequence):
            raise TypeError(
                f"`images` must be a list of (H, W, 3) float arrays; got {type(images).__name__} "
                "(for one image: [image])"
            )
        if not images:
            return []
        images = [
            np.ascontiguousarray(as_rgb_unit_image(im, f"images[{i}]"), dtype=np.float32)
            for i, im in enumerate(images)
        ]
        sizes = {self._input_size(*im.shape[:2]) for im in images}
        if len(sizes) != 1:
            raise ValueError("images of one call must resize to the same network input size")
        for im in images:
            problem = self.input_problem(*im.shape[:2])
            if problem is not None:
                raise ValueError(problem)
        ((net_h, net_w),) = sizes
        tensors = []
        for im in images:
            x = torch.from_numpy(np.ascontiguousarray(im.transpose(2, 0, 1)))[None].to(self.device)
            x = F.interpolate(x, size=(net_h, net_w), mode="bilinear", align_corners=False, antialias=True)
            tensors.append(normalize(x.clamp(0, 1)[0]))
        batch = torch.stack(tensors)
        out = self._forward(batch)
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
                    coarse=_coarse_for(coarse[i : i + 1], im.shape[:2]),
                    flipped=bool(flip[i]),
                )
            )
        return results

    def _forward(self, batch: torch.Tensor) -> ModelOutput:
        """Run the model on ``batch``; its modes and BatchNorm statistics are restored afterwards."""
        modes = [(module, module.training) for module in self.model.modules()]
        # batch statistics: BatchNorm in training mode also updates its running statistics; keep them
        saved = [(b, b.clone()) for b in self.model.head.buffers()] if self.bn_mode == "batch_stats" else []
        try:
            self.model.eval()
            if self.bn_mode == "batch_stats":
                self.model.head.train()  # BatchNorm normalises with the batch statistics (reference)
            if self.cfg.amp and self.device.type == "cuda":
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    return self.model(batch)
            return self.model(batch)
        finally:
            for buffer, value in saved:
                buffer.copy_(value)
            for module, mode in modes:
                module.training = mode


def _coarse_for(coarse: torch.Tensor, image_hw: tuple[int, ...]) -> np.ndarray:
    """Return the coarse mask (1, 1, h, w) as a uniform downscale of the image, never larger than it."""
    from maskrefine.refiners import check_mask_size

    h, w = coarse.shape[-2:]
    height, width = int(image_hw[0]), int(image_hw[1])
    if check_mask_size((h, w), (height, width)) is not None:
        k = min(1.0, min(h, w) / min(height, width))  # the grid's resolution along the shorter side
        size = (max(1, round(height * k)), max(1, round(width * k)))
        coarse = F.interpolate(coarse, size=size, mode="bilinear", align_corners=False, antialias=True)
    return coarse[0, 0].clamp(0, 1).cpu().numpy().astype(np.float32)


# ------------------------------------------------------------------------------------------ folders


def load_predictor(
    checkpoint: str | os.PathLike[str],
    *,
    device: str = "cpu",
    refine: RefineMode = "auto",
    backbone_checkpoint: str | os.PathLike[str] | None = None,
    bn_mode: str | None = None,
    polarity: str | None = None,
) -> Predictor:
    """Build a :class:`Predictor` from a training checkpoint (``RUN_DIR/last.pt``).

    The checkpoint is loaded with ``weights_only=True``. The backbone comes from the path recorded at
    training time unless ``backbone_checkpoint`` is given; either must have the layout, patch size, width,
    depth and register count recorded in the checkpoint. Raises ConfigError naming the file on any
    problem.
    """
    check_device_name(device)
    check_usable_device(device)
    state = load_state(checkpoint)
    return predictor_from_state(
        state,
        checkpoint,
        device=device,
        refine=refine,
        backbone_checkpoint=backbone_checkpoint,
        bn_mode=bn_mode,
        polarity=polarity,
    )


def check_usable_device(device: str) -> None:
    """Refuse (ConfigError) a CUDA device this torch cannot use.

    The name itself is checked by :func:`maskrefine.train.predict_job.check_device_name`.
    """
    from maskrefine.train.model import usable_device

    usable_device(device)


def load_state(checkpoint: str | os.PathLike[str]) -> dict[str, object]:
    """Return the checkpoint's entries, their structure checked (ConfigError naming the file otherwise)."""
    from maskrefine.train.trainer import load_checkpoint

    if isinstance(checkpoint, str) and checkpoint == "":
        raise ConfigError("--checkpoint: empty path; give RUN_DIR/last.pt")
    return load_checkpoint(checkpoint)


def predictor_from_state(
    state: dict[str, object],
    checkpoint: str | os.PathLike[str],
    *,
    device: str,
    refine: RefineMode,
    backbone_checkpoint: str | os.PathLike[str] | None,
    bn_mode: str | None,
    polarity: str | None,
) -> Predictor:
    from maskrefine.train.model import backbone_changes, build_model

    # load_checkpoint checked the settings and that the head is a table of tensors
    cfg = TrainConfig.from_dict(cast("dict[str, object]", state["config"]), source=f"checkpoint {checkpoint}")
    changes: dict[str, object] = {"device": str(device), "amp": cfg.amp and str(device).startswith("cuda")}
    if backbone_checkpoint is not None:
        changes["backbone_checkpoint"] = str(backbone_checkpoint)
    cfg = cfg.replace(**changes)
    try:
        model, info = build_model(cfg)
    except ConfigError as exc:
        if backbone_checkpoint is not None or cfg.backbone != "vit":
            raise
        raise ConfigError(
            f"{exc} (the backbone recorded in checkpoint {checkpoint}; give its file with "
            "--backbone-checkpoint / backbone_checkpoint)"
        ) from None
    details = backbone_changes(state.get("backbone"), info)  # a head fits only its backbone's features
    if details is not None:
        raise ConfigError(
            f"checkpoint {checkpoint}: the backbone {cfg.backbone_checkpoint} is not the backbone the head "
            f"was trained on ({details}); pass the run's backbone with --backbone-checkpoint"
        )
    try:
        model.head.load_state_dict(cast("dict[str, torch.Tensor]", state["head"]))
    except (RuntimeError, KeyError) as exc:
        raise ConfigError(
            f"checkpoint {checkpoint}: the head weights do not fit the backbone "
            f"({' '.join(str(exc).split())[:300]})"  # torch's message spans lines and tabs: one line
        ) from None
    return Predictor(model, cfg, device=device, refine=refine, bn_mode=bn_mode, polarity=polarity)
