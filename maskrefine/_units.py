"""The one place integer pixel codes become floats in [0, 1]: uint8 / 255, uint16 / 65535."""

from __future__ import annotations

import numpy as np

__all__ = ["UNIT_SCALES", "to_unit_float"]

#: Full-scale code of each integer mask/image dtype: a value ``v`` of that dtype means ``v / scale``.
UNIT_SCALES: dict[np.dtype, float] = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def to_unit_float(array: np.ndarray) -> np.ndarray:
    """``array`` as float32 in [0, 1]: uint8 × (1/255), uint16 × (1/65535), anything else cast as is.

    The factor is the float32 reciprocal, so every caller gets bit-identical values.
    """
    scale = UNIT_SCALES.get(array.dtype)
    if scale is None:
        return array.astype(np.float32, copy=False)
    return array.astype(np.float32) * np.float32(1.0 / scale)
