"""Backbone + Sempart head, and the training objective of one batch (docs/training.md §3, §4)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from maskrefine._checks import short_repr
from maskrefine.errors import ConfigError
from maskrefine.train.checkpoint import load_vit, weights_digest
from maskrefine.train.config import MISSING_BACKBONE_CHECKPOINT, TrainConfig, geometry_problem
from maskrefine.train.crops import crop_and_zoom, sample_crop_offsets
from maskrefine.train.losses import (
    coarse_fine_loss,
    crop_consistency_loss,
    crop_target,
    feature_gtv_loss,
    ncut_loss,
    pixel_gtv_loss,
)
from maskrefine.train.sempart import SempartHead
from maskrefine.train.vit import Backbone, PixelBackbone

__all__ = ["SempartModel", "build_backbone", "build_model", "LOSS_TERMS", "objective"]

#: Loss terms in the order they are logged, with the config field holding each weight.
LOSS_TERMS: dict[str, str] = {
    "ncut": "w_ncut",
    "pixel_gtv": "w_pixel_gtv",
    "feature_gtv": "w_feature_gtv",
    "coarse_fine": "w_coarse_fine",
    "crop_ncut": "w_crop_ncut",
    "crop": "w_crop",
}


@dataclass(frozen=True, slots=True)
class ModelOutput:
    """Probabilities (sigmoid of the logits) and the backbone features."""

    coarse: torch.Tensor  # (B, 1, h, w)
    fine: torch.Tensor  # (B, 1, H, W)
    features: torch.Tensor  # (B, D, h, w)


class SempartModel(nn.Module):
    """Frozen backbone + trainable :class:`SempartHead`. ``model(images)`` -> :class:`ModelOutput`.

    The backbone runs without autograd and is never trained; ``model.train()`` only affects the head
    (BatchNorm).

    Parameters
    ----------
    backbone : Backbone
        Feature extractor (a ViT or :class:`~maskrefine.train.vit.PixelBackbone`); its parameters are
        set to ``requires_grad=False``.
    head : SempartHead
        The trainable head.
    """

    def __init__(self, backbone: Backbone, head: SempartHead) -> None:
        super().__init__()
        self.backbone = backbone.requires_grad_(False)
        self.head = head

    def train(self, mode: bool = True) -> SempartModel:
        """Set the head's training mode; the frozen backbone stays in eval mode.

        Parameters
        ----------
        mode : bool, default True
            Training mode of the head (True: BatchNorm uses and updates batch statistics).

        Returns
        -------
        SempartModel
            ``self``.
        """
        self.head.train(mode)
        self.backbone.eval()
        self.training = mode
        return self

    def forward(self, images: torch.Tensor, *, fine_grad: bool = True) -> ModelOutput:
        """Return the coarse and fine probabilities and the features of ImageNet-normalised images.

        The backbone runs without autograd; ``fine_grad`` is passed to :meth:`SempartHead.forward`.

        Parameters
        ----------
        images : torch.Tensor, shape (B, 3, H, W)
            ImageNet-normalised images; H and W multiples of the backbone's stride.
        fine_grad : bool, default True
            False runs the head's fine branch without autograd.

        Returns
        -------
        ModelOutput
            ``coarse`` (B, 1, h, w) and ``fine`` (B, 1, H, W) probabilities in float32, and the backbone
            ``features`` (B, D, h, w).
        """
        with torch.no_grad():
            features = self.backbone(images)
        coarse, fine = self.head(features, images, fine_grad=fine_grad)
        return ModelOutput(coarse.float().sigmoid(), fine.float().sigmoid(), features)


def build_backbone(cfg: TrainConfig) -> tuple[Backbone, dict[str, Any]]:
    """Return the frozen backbone the config names, and a JSON-able description of it."""
    if cfg.backbone == "pixels":
        patch = cfg.patch_size or 8
        try:
            backbone = PixelBackbone(patch)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return backbone.eval(), {"kind": "pixels", "patch_size": patch, "embed_dim": backbone.embed_dim}
    if cfg.backbone_checkpoint is None:
        raise ConfigError(MISSING_BACKBONE_CHECKPOINT)
    vit, report = load_vit(cfg.backbone_checkpoint, arch=cfg.arch, patch_size=cfg.patch_size)
    spec = report.spec
    info = {
        "kind": spec.layout,
        "arch": spec.arch,
        "patch_size": spec.patch_size,
        "embed_dim": spec.embed_dim,
        "depth": spec.depth,
        "num_register_tokens": spec.num_register_tokens,
        "weights_sha256": weights_digest(vit),
        "checkpoint": str(cfg.backbone_checkpoint),
        "wrapper": report.wrapper,
        "ignored_keys": len(report.ignored),
    }
    return vit, info


#: What a head's input depends on: a head fits only the features of a backbone with these values (its
#: shape, and the digest of its weights: :func:`maskrefine.train.checkpoint.weights_digest`).
BACKBONE_IDENTITY = ("kind", "patch_size", "embed_dim", "depth", "num_register_tokens", "weights_sha256")


def backbone_changes(recorded: object, info: dict[str, Any]) -> str | None:
    """``"kind 'dino' -> 'dinov2', ..."`` where ``info`` differs from a checkpoint's backbone record.

    None when they agree on every :data:`BACKBONE_IDENTITY` entry the record holds, or when there is no
    record (a checkpoint of an older maskrefine; one before 2026-12-03 records no weights digest).
    """
    if not isinstance(recorded, dict):
        return None
    differ = [k for k in BACKBONE_IDENTITY if k in recorded and recorded[k] != info.get(k)]
    if not differ:
        return None

    def shown(key: str, value: object) -> str:
        if key == "weights_sha256" and isinstance(value, str):
            return value[:12] + "…"  # a digest's head tells two apart
        return short_repr(value)

    return ", ".join(
        ("weights" if k == "weights_sha256" else k) + f" {shown(k, recorded[k])} -> {shown(k, info.get(k))}"
        for k in differ
    )


def usable_device(name: str, option: str = "--device") -> torch.device:
    """``torch.device(name)`` for a valid device name, refused (ConfigError) where it cannot be used here.

    A CUDA device needs CUDA, and ``cuda:N`` an index below the device count (torch would fail later with
    "invalid device ordinal").
    """
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{option} {name}: no CUDA device is available")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigError(
                f"{option} {name}: this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1})"
            )
    return device


def build_model(cfg: TrainConfig) -> tuple[SempartModel, dict[str, Any]]:
    """Backbone of ``cfg`` + a freshly initialised head (seed the global RNG first for reproducibility).

    Parameters
    ----------
    cfg : TrainConfig
        The settings: backbone (``backbone``, ``backbone_checkpoint``, ``arch``, ``patch_size``) and head
        (``head_*``).

    Returns
    -------
    model : SempartModel
        The frozen backbone and the new head.
    info : dict
        JSON-able description of the backbone (``kind``, ``patch_size``, ``embed_dim``, and for a ViT
        its architecture, depth, register tokens, checkpoint path, wrapper and count of ignored keys).

    Raises
    ------
    ConfigError
        The ``"vit"`` backbone without a checkpoint, a checkpoint that cannot be loaded or does not
        match ``arch`` / ``patch_size``, a patch size the ``"pixels"`` backbone refuses, or an
        ``image_size`` that cannot train with the backbone's stride (:func:`geometry_problem`).
    """
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"`cfg` must be a TrainConfig; got {short_repr(cfg)}")
    backbone, info = build_backbone(cfg)
    problem = geometry_problem(cfg, backbone.stride)  # a ViT's patch size is known only now
    if problem is not None:
        raise ConfigError(problem)
    head = SempartHead(
        backbone.embed_dim,
        cfg.head_hidden,
        backbone.stride,
        depth=cfg.head_depth,
        heads=cfg.head_heads,
        dim_head=cfg.head_dim_head,
        fine_channels=cfg.head_fine_channels,
    )
    return SempartModel(backbone, head), info


def objective(
    model: SempartModel,
    images: torch.Tensor,
    cfg: TrainConfig,
    generator: torch.Generator,
    *,
    teacher_fine_grad: bool = False,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted training loss of one batch and its terms (floats, unweighted).

    Student pass on ``images``: NCut, pixel GTV, feature GTV, coarse-fine consistency. With
    ``cfg.crop_loss``: crops sampled with ``generator`` (:func:`sample_crop_offsets`), the teacher (the same
    network) run on the zoomed image crops, target = guided filter of its fine mask (detached), MSE against
    the zoomed crop of the student's fine mask, plus NCut on the teacher's coarse mask (this term trains
    the head through the teacher pass).

    The teacher's fine branch runs without autograd: its mask only feeds the detached target, so values
    and gradients are the same as the reference's full teacher pass, minus one backward of the fine
    branch. ``teacher_fine_grad=True`` records it anyway (the reference's cost; ``bench/train.py``).

    Parameters
    ----------
    model : SempartModel
        The model being trained.
    images : torch.Tensor, shape (B, 3, H, W)
        ImageNet-normalised batch.
    cfg : TrainConfig
        Loss weights and settings (``w_*``, ``affinity_threshold``, ``gtv_sigma``, ``crop_loss``,
        ``crop_sampler``, ``gf_radius``, ``gf_eps``, ``amp``).
    generator : torch.Generator
        Source of the crop offsets.
    teacher_fine_grad : bool, default False
        Record autograd for the teacher's fine branch too.

    Returns
    -------
    total : torch.Tensor
        Scalar weighted sum of the terms (with autograd).
    terms : dict of str to float
        Unweighted value of each term: ``ncut``, ``pixel_gtv``, ``feature_gtv``, ``coarse_fine`` and,
        with ``cfg.crop_loss``, ``crop_ncut`` and ``crop``.
    """
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if cfg.amp else contextlib.nullcontext()
    with amp:
        out = model(images)
    terms = {
        "ncut": ncut_loss(out.coarse, out.features, cfg.affinity_threshold),
        "pixel_gtv": pixel_gtv_loss(out.fine, images, cfg.gtv_sigma),
        "feature_gtv": feature_gtv_loss(out.coarse, out.features, cfg.affinity_threshold),
        "coarse_fine": coarse_fine_loss(out.coarse, out.fine),
    }
    if cfg.crop_loss:
        height, width = images.shape[-2:]
        offsets = sample_crop_offsets(
            images.shape[0],
            height,
            width,
            sampler=cfg.crop_sampler,
            stride=model.backbone.stride,
            generator=generator,
        )
        crop_images = crop_and_zoom(images, offsets)
        student_crop = crop_and_zoom(out.fine, offsets)
        with amp:
            teacher = model(crop_images, fine_grad=teacher_fine_grad)
        target = crop_target(teacher.fine, crop_images, cfg.gf_radius, cfg.gf_eps)
        terms["crop_ncut"] = ncut_loss(teacher.coarse, teacher.features, cfg.affinity_threshold)
        terms["crop"] = crop_consistency_loss(student_crop, target)
    total = sum(getattr(cfg, LOSS_TERMS[name]) * value for name, value in terms.items())
    return total, {name: float(value.detach()) for name, value in terms.items()}
