"""The one place integer pixel codes become floats in [0, 1]: uint8 / 255, uint16 / 65535."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["UNIT_SCALES", "to_unit_float"]

#: Full-scale code of each integer mask/image dtype: a value ``v`` of that dtype means ``v / scale``.
UNIT_SCALES: dict[np.dtype, float] = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def to_unit_float(array: np.ndarray) -> npt.NDArray[np.float32]:
    """``array`` as float32 in [0, 1]: uint8 v → v / 255, uint16 v → v / 65535, anything else cast as is.

    A float32 division: each code maps to the correctly rounded quotient, as torch's ``x.float() / 255``
    and NumPy's ``x.astype(np.float32) / 255`` give it (the product with the float32 reciprocal, used
    before, was one float32 step away for half of the 8-bit codes), so every caller gets the same floats
    as the reference evaluators' readers.
    """
    scale = UNIT_SCALES.get(array.dtype)
    if scale is None:
        return array.astype(np.float32, copy=False)
    return array.astype(np.float32) / np.float32(scale)
