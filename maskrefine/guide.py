"""Build the guide image of the guided filter from an RGB image."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from maskrefine._checks import check_choice, check_unit_interval, plain_ndarray
from maskrefine._units import to_unit_float

__all__ = ["make_guide", "GUIDE_MODES", "LUMA601"]

#: Guide modes of :func:`make_guide`.
GUIDE_MODES: tuple[str, ...] = ("mean", "luma", "color")
#: Rec.601 luma weights (R, G, B).
LUMA601: tuple[float, float, float] = (0.299, 0.587, 0.114)


def make_guide(
    image: npt.NDArray[Any], mode: Literal["mean", "luma", "color"] = "mean"
) -> npt.NDArray[np.float32]:
    """Guide for :func:`maskrefine.filters.guided_filter` from an RGB image.

    Parameters
    ----------
    image : ndarray, shape (..., H, W, 3)
        RGB image(s) (channel order R, G, B), float in [0, 1] or uint8 (divided by 255).
        Any leading batch axes are kept.
    mode : {"mean", "luma", "color"}, default "mean"
        ``"mean"``: the paper's unweighted channel mean (R + G + B) / 3 (docs/filters.md, section 2);
        ``"luma"``: Rec.601 luma 0.299 R + 0.587 G + 0.114 B; ``"color"``: the RGB image itself.

    Returns
    -------
    ndarray of float32, C-contiguous
        Shape (..., H, W) for ``"mean"`` and ``"luma"``, (..., H, W, 3) for ``"color"``. Always a new
        array (also for ``"color"`` with a float32 image): ``image`` is not modified and never aliased.
        An ndarray subclass (a masked array, ``np.matrix``) is read as its plain data, as
        :func:`maskrefine.filters.guided_filter` reads it.

    Raises
    ------
    TypeError
        ``image`` is not an array, or has an integer dtype other than uint8, or bool.
    ValueError
        Unknown ``mode``; last axis not 3; NaN/inf; float values outside [0, 1] by more than 1e-6
        (e.g. 0..255 data given as float).

    Examples
    --------
    >>> import numpy as np
    >>> rgb = np.array([[[255, 0, 0]]], dtype=np.uint8)
    >>> float(make_guide(rgb, "mean")[0, 0]), round(float(make_guide(rgb, "luma")[0, 0]), 3)
    (0.3333333432674408, 0.299)
    """
    mode_name = check_choice(mode, GUIDE_MODES, "mode")
    # a masked array's arithmetic keeps the unscaled data at masked pixels: compute on the data
    image = plain_ndarray(image)
    if not isinstance(image, np.ndarray):
        if hasattr(image, "__array__") and not hasattr(image, "detach"):
            image = np.asarray(image)
        else:
            raise TypeError(f"`image` must be a NumPy array; got {type(image).__name__}")
    if image.ndim < 3 or image.shape[-1] != 3:
        raise ValueError(
            f"`image` must have shape (..., H, W, 3) (RGB, channels last); got shape {image.shape}"
        )
    if image.dtype == np.uint8:
        rgb = to_unit_float(image)
    elif np.issubdtype(image.dtype, np.floating):
        if image.size and not np.isfinite(image).all():
            raise ValueError("`image` contains NaN or infinite values; all values must be finite")
        if image.size:  # checked before the float32 cast: 1e39 would become inf there
            check_unit_interval(
                image, "image", " (float images must be in [0, 1]; for 0..255 data use image / 255)"
            )
        rgb = image.astype(np.float32, copy=False)
    else:
        hint = ", e.g. `image.astype(np.float32) / 65535`" if image.dtype == np.uint16 else ""
        raise TypeError(
            f"`image` must be float in [0, 1] or uint8; got dtype {image.dtype}. Convert it first{hint}."
        )
    guide = guide_from_rgb(rgb, mode_name)
    if np.may_share_memory(guide, image):  # "color" of a float32 C-contiguous image: the image itself
        guide = guide.copy()
    return guide


def guide_from_rgb(rgb: np.ndarray, mode: str) -> npt.NDArray[np.float32]:
    """Compute the guide of :func:`make_guide` without its checks.

    For callers that already validated ``rgb`` (float32, (..., H, W, 3), finite, in [0, 1]) and ``mode``.
    For ``"color"`` the result is ``rgb`` itself when it is C-contiguous (no copy: the caller only reads it).
    """
    if mode == "color":
        return np.ascontiguousarray(rgb, dtype=np.float32)
    if mode == "mean":
        guide = (rgb[..., 0] + rgb[..., 1] + rgb[..., 2]) / np.float32(3.0)
    else:
        w = np.asarray(LUMA601, dtype=np.float32)
        guide = rgb[..., 0] * w[0] + rgb[..., 1] * w[1] + rgb[..., 2] * w[2]
    return np.ascontiguousarray(guide, dtype=np.float32)
