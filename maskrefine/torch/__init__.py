"""Differentiable guided filter for torch tensors (CPU and CUDA): the ``torch`` extra.

``import maskrefine`` never imports torch; importing this subpackage without torch raises
:class:`maskrefine.errors.BackendUnavailableError` naming the extra.
"""

from __future__ import annotations

from maskrefine.errors import BackendUnavailableError, install_hint

try:
    import torch  # noqa: F401
except ImportError as exc:  # torch missing (or blocked)
    raise BackendUnavailableError(
        f"maskrefine.torch needs PyTorch, which is not installed: {install_hint('torch')}"
    ) from exc

from maskrefine.torch.guide import IMAGENET_MEAN, IMAGENET_STD, LUMA601, make_guide  # noqa: E402
from maskrefine.torch.guided import GuidedFilter, box_mean, guided_filter  # noqa: E402

__all__ = [
    "guided_filter",
    "GuidedFilter",
    "box_mean",
    "make_guide",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LUMA601",
]
