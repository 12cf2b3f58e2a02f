"""Sempart + multi-scale crop-consistency training on a frozen self-supervised ViT (``[torch]`` extra).

``import maskrefine`` never imports this subpackage; importing it without torch raises
:class:`maskrefine.errors.BackendUnavailableError` naming the extra. Layout: :mod:`.vit` (backbones),
:mod:`.checkpoint` (safe checkpoint loading), :mod:`.sempart` (head), :mod:`.losses`, :mod:`.crops`,
:mod:`.data`, :mod:`.config`, :mod:`.preflight` (a run's folders and images, checked before torch loads),
:mod:`.model` (backbone + head + objective), :mod:`.trainer`, :mod:`.predict` (the model side of prediction),
:mod:`.predict_job` (`predict` on a folder).

torch itself (about 4 s to import on a 2-core machine) is imported on first use of a name that needs it:
:mod:`.config` does not, so ``maskrefine train`` refuses bad settings before loading torch.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import TYPE_CHECKING

from maskrefine._lazy import lazy_attributes
from maskrefine.errors import BackendUnavailableError, install_hint


def _torch_missing() -> bool:
    """Whether ``import torch`` cannot find torch (or torch is blocked: ``sys.modules["torch"] = None``)."""
    if "torch" in sys.modules:
        return sys.modules["torch"] is None
    return importlib.util.find_spec("torch") is None


if _torch_missing():
    raise BackendUnavailableError(
        f"maskrefine.train needs PyTorch, which is not installed: {install_hint('torch')}"
    )

from maskrefine.train.config import PRESETS, TrainConfig, load_toml, preset  # noqa: E402


def require_torch() -> None:
    """Import torch, or raise BackendUnavailableError saying why it cannot be imported.

    The package's import only checks that torch is installed (importing it takes seconds); a torch that
    is installed but broken (a missing shared library, a build for another Python) is reported here, at
    the first use of a name that needs it, with its own error, instead of as a bare ImportError.
    """
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        reason = " ".join(str(exc).split())[:300]  # one line, bounded
        raise BackendUnavailableError(
            "maskrefine.train needs PyTorch, which is installed but cannot be imported "
            f"({type(exc).__name__}: {reason}); reinstall it: {install_hint('torch')}"
        ) from exc


if TYPE_CHECKING:
    # For type checkers only: at run time these names (which import torch) are imported on first use.
    from maskrefine.train.checkpoint import load_vit
    from maskrefine.train.model import SempartModel, build_model, objective
    from maskrefine.train.predict import Prediction, Predictor
    from maskrefine.train.sempart import SempartHead
    from maskrefine.train.trainer import TrainResult, load_checkpoint, train
    from maskrefine.train.vit import PixelBackbone, VisionTransformer, vit_from_arch

_SOURCES = {
    "load_vit": "maskrefine.train.checkpoint",
    "SempartModel": "maskrefine.train.model",
    "build_model": "maskrefine.train.model",
    "objective": "maskrefine.train.model",
    "Prediction": "maskrefine.train.predict",
    "Predictor": "maskrefine.train.predict",
    "SempartHead": "maskrefine.train.sempart",
    "TrainResult": "maskrefine.train.trainer",
    "load_checkpoint": "maskrefine.train.trainer",
    "train": "maskrefine.train.trainer",
    "PixelBackbone": "maskrefine.train.vit",
    "VisionTransformer": "maskrefine.train.vit",
    "vit_from_arch": "maskrefine.train.vit",
}

__all__ = [
    "TrainConfig",
    "PRESETS",
    "preset",
    "load_toml",
    "require_torch",
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

if not TYPE_CHECKING:  # a type checker sees the imports above, and flags any other name as missing
    _lazy_getattr, __dir__ = lazy_attributes(__name__, _SOURCES, globals())

    def __getattr__(name: str) -> object:
        if name in _SOURCES:
            require_torch()
        return _lazy_getattr(name)
