"""maskrefine: refine segmentation masks with the image as guide, and score them exactly.

``import maskrefine`` never imports torch; the torch path lives in :mod:`maskrefine.torch`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from maskrefine.errors import BackendUnavailableError, InputError, MaskrefineError  # noqa: E402

__all__ = [
    "__version__",
    "MaskrefineError",
    "InputError",
    "BackendUnavailableError",
]
