"""Sempart + multi-scale crop-consistency training on a frozen self-supervised ViT (``[torch]`` extra).

``import maskrefine`` never imports this subpackage; importing it without torch raises
:class:`maskrefine.errors.BackendUnavailableError` naming the extra. Layout: :mod:`.vit` (backbones),
:mod:`.checkpoint` (safe checkpoint loading), :mod:`.sempart` (head), :mod:`.losses`, :mod:`.crops`,
:mod:`.data`, :mod:`.config`, :mod:`.model` (backbone + head + objective), :mod:`.trainer`, :mod:`.predict`.
"""

from __future__ import annotations

from maskrefine.errors import BackendUnavailableError, install_hint

try:
    import torch  # noqa: F401
except ImportError as exc:
    raise BackendUnavailableError(
        f"maskrefine.train needs PyTorch, which is not installed: {install_hint('torch')}"
    ) from exc

from maskrefine.train.checkpoint import load_vit  # noqa: E402
from maskrefine.train.config import PRESETS, TrainConfig, load_toml, preset  # noqa: E402
from maskrefine.train.model import SempartModel, build_model, objective  # noqa: E402
from maskrefine.train.predict import Prediction, Predictor  # noqa: E402
from maskrefine.train.sempart import SempartHead  # noqa: E402
from maskrefine.train.trainer import TrainResult, load_checkpoint, train  # noqa: E402
from maskrefine.train.vit import PixelBackbone, VisionTransformer, vit_from_arch  # noqa: E402

__all__ = [
    "TrainConfig",
    "PRESETS",
    "preset",
    "load_toml",
    "train",
    "TrainResult",
    "load_checkpoint",
    "Predictor",
    "Prediction",
    "SempartModel",
    "SempartHead",
    "build_model",
    "objective",
    "VisionTransformer",
    "PixelBackbone",
    "vit_from_arch",
    "load_vit",
]
