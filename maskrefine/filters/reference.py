"""Float64 NumPy oracle of the guided filter, written for reading, not for speed.

Every fast path of maskrefine (numba, torch CPU/CUDA) is tested against this module, and this module is
itself tested against a brute-force loop over windows on tiny arrays. It is public as
``guided_filter(..., backend="reference")``.

Conventions (docs/filters.md):

* Box mean, ``border="truncated"`` (default, the paper's cumsum box filter): the (2r+1)² window is cut at
  the image border and divided by the number of pixels actually inside it (r = 9: 100 at a corner,
  190 on an edge, 361 inside).
* Box mean, ``border="reflect"``: OpenCV ``BORDER_REFLECT`` padding (``fedcba|abcdefgh|hgfedcb``, the edge
  pixel is repeated) and division by (2r+1)²; this is what ``cv2.ximgproc.guidedFilter`` uses.
* Fast variant (He & Sun 2015), ``subsample=s > 1``: with ``h = H // s`` and ``w = W // s``, the low-res
  inputs are ``I[0:h*s:s, 0:w*s:s]`` and ``p[0:h*s:s, 0:w*s:s]`` (nearest, phase 0: low-res pixel (i, j) is
  full-res pixel (i*s, j*s); this is what ``torch.nn.functional.interpolate(scale_factor=1/s,
  mode="nearest")`` picks); the radius is ``r // s``; the box means ā, b̄ of the coefficients are computed
  at low resolution, upsampled bilinearly to (H, W) with ``align_corners=False`` semantics
  (``F.interpolate(size=(H, W), mode="bilinear")`` / ``cv2.resize(..., INTER_LINEAR)``), and
  ``q = ā↑·I + b̄↑`` with the full-resolution guide.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from maskrefine._checks import short_repr

__all__ = ["box_mean", "guided_filter", "upsample_bilinear"]

Border = Literal["truncated", "reflect"]


def box_mean(x: np.ndarray, radius: int, border: Border = "truncated") -> np.ndarray:
    """Mean of ``x`` over the (2r+1)×(2r+1) window around each pixel, in float64.

    Parameters
    ----------
    x : ndarray, shape (H, W) or (H, W, C)
        Values to average; trailing channels are averaged independently.
    radius : int
        Window radius r >= 0.
    border : {"truncated", "reflect"}
        ``"truncated"``: window cut at the border, divided by the true pixel count.
        ``"reflect"``: OpenCV ``BORDER_REFLECT`` padding, divided by (2r+1)².

    Returns
    -------
    ndarray of float64, same shape as ``x``.
    """
    x = np.asarray(x, dtype=np.float64)
    if border == "truncated":
        total = _window_sum_truncated(x, radius)
        ones = np.ones(x.shape[:2], dtype=np.float64)
        count = _window_sum_truncated(ones, radius)
        if x.ndim == 3:
            count = count[:, :, None]
        return total / count
    if border == "reflect":
        pad = [(radius, radius), (radius, radius)] + [(0, 0)] * (x.ndim - 2)
        # numpy "symmetric" == OpenCV BORDER_REFLECT (edge pixel repeated), also when r exceeds the size.
        padded = np.pad(x, pad, mode="symmetric")
        k = 2 * radius + 1
        return _window_sums(padded, k) / float(k * k)
    raise ValueError(f"`border` must be 'truncated' or 'reflect'; got {short_repr(border)}")


def _window_sums(padded: np.ndarray, k: int) -> np.ndarray:
    """Return the sum over every k×k window of ``padded``: (H + k - 1, W + k - 1[, C]) -> (H, W[, C]).

    Each window's values are added directly, one axis at a time, never as a difference of a summed-area
    table: such a difference carries the rounding of the image-wide sum (~1e-11 on a 200×300 image),
    which a variance divided by a small eps turns into a spurious slope (a one-pixel window's variance
    came out 1e-11 instead of 0, and the fast variant's output 17 instead of 1 at eps 1e-12).
    """
    columns = sliding_window_view(padded, k, axis=0).sum(axis=-1)
    return sliding_window_view(columns, k, axis=1).sum(axis=-1)


def _window_sum_truncated(x: np.ndarray, radius: int) -> np.ndarray:
    """Sum over the window [i-r, i+r] × [j-r, j+r] intersected with the image (zeros outside add nothing)."""
    pad = [(radius, radius), (radius, radius)] + [(0, 0)] * (x.ndim - 2)
    return _window_sums(np.pad(np.asarray(x, dtype=np.float64), pad), 2 * radius + 1)


def upsample_bilinear(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of ``x`` (h, w[, C]) to (height, width) with ``align_corners=False`` semantics.

    Source coordinate of output pixel ``i``: ``(i + 0.5) * h / height - 0.5``, clamped below at 0;
    neighbours ``floor`` and ``min(floor + 1, h - 1)`` (as in ``torch.nn.functional.interpolate``).
    """
    x = np.asarray(x, dtype=np.float64)
    h, w = x.shape[:2]

    def axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
        src = np.maximum(src, 0.0)
        i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, src - i0

    y0, y1, ly = axis(h, height)
    x0, x1, lx = axis(w, width)
    if x.ndim == 3:
        ly = ly[:, None, None]
        lx = lx[None, :, None]
    else:
        ly = ly[:, None]
        lx = lx[None, :]
    top = x[y0][:, x0] * (1 - lx) + x[y0][:, x1] * lx
    bottom = x[y1][:, x0] * (1 - lx) + x[y1][:, x1] * lx
    return top * (1 - ly) + bottom * ly


def _coefficients(
    guide: np.ndarray, src: np.ndarray, radius: int, eps: float, border: Border
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel linear coefficients (a, b) of the guided filter (He et al., TPAMI 2013, eq. 5-6)."""
    mean_p = box_mean(src, radius, border)
    if guide.ndim == 2:
        mean_i = box_mean(guide, radius, border)
        var_i = box_mean(guide * guide, radius, border) - mean_i * mean_i
        cov_ip = box_mean(guide * src, radius, border) - mean_i * mean_p
        a = cov_ip / (var_i + eps)
        b = mean_p - a * mean_i
        return a, b
    # Colour guide: 3x3 covariance Σ per pixel, a = (Σ + εU)⁻¹ cov(I, p), b = p̄ − aᵀμ.
    mean_i = box_mean(guide, radius, border)  # (H, W, 3)
    h, w = src.shape
    sigma = np.empty((h, w, 3, 3), dtype=np.float64)
    for c1 in range(3):
        for c2 in range(3):
            sigma[:, :, c1, c2] = (
                box_mean(guide[:, :, c1] * guide[:, :, c2], radius, border)
                - mean_i[:, :, c1] * mean_i[:, :, c2]
            )
    sigma += eps * np.eye(3)
    cov_ip = box_mean(guide * src[:, :, None], radius, border) - mean_i * mean_p[:, :, None]
    a = np.linalg.solve(sigma, cov_ip[..., None])[..., 0]  # (H, W, 3)
    b = mean_p - np.sum(a * mean_i, axis=2)
    return a, b


def guided_filter(
    guide: np.ndarray,
    src: np.ndarray,
    radius: int,
    eps: float,
    *,
    subsample: int = 1,
    border: Border = "truncated",
) -> np.ndarray:
    """Compute the reference guided filter in float64 (gray or colour guide, optional fast variant).

    Parameters
    ----------
    guide : ndarray, shape (H, W) or (H, W, 3)
        Guide image, float in [0, 1] (any real dtype; computed in float64).
    src : ndarray, shape (H, W)
        Image to filter (e.g. a soft mask), float.
    radius : int
        Window radius r (window (2r+1)²). With ``subsample=s`` the low-res radius is ``r // s``.
    eps : float
        Regularisation ε > 0, relative to [0, 1] intensities.
    subsample : int, default 1
        Fast-variant factor s (see the module docstring for the exact sampling); 1 = exact filter.
    border : {"truncated", "reflect"}, default "truncated"
        Box-mean border handling (see :func:`box_mean`).

    Returns
    -------
    ndarray of float64, shape (H, W)

    Notes
    -----
    No size or value validation is done here beyond shapes; the public
    :func:`maskrefine.filters.guided_filter` validates. Truncated borders work at any size; reflect
    works at any size too (repeated reflection), unlike the fast backends.
    """
    guide = np.asarray(guide, dtype=np.float64)
    src = np.asarray(src, dtype=np.float64)
    if src.ndim != 2 or guide.shape[:2] != src.shape or guide.ndim not in (2, 3):
        raise ValueError(
            f"expected guide (H, W) or (H, W, 3) and src (H, W); got {guide.shape} and {src.shape}"
        )
    if guide.ndim == 3 and guide.shape[2] != 3:
        raise ValueError(f"colour guide must have 3 channels; got {guide.shape}")
    height, width = src.shape
    s = int(subsample)
    if s == 1:
        a, b = _coefficients(guide, src, radius, eps, border)
        mean_a = box_mean(a, radius, border)
        mean_b = box_mean(b, radius, border)
    else:
        h, w = height // s, width // s
        guide_lo = guide[0 : h * s : s, 0 : w * s : s]
        src_lo = src[0 : h * s : s, 0 : w * s : s]
        r_lo = radius // s
        a, b = _coefficients(guide_lo, src_lo, r_lo, eps, border)
        mean_a = upsample_bilinear(box_mean(a, r_lo, border), height, width)
        mean_b = upsample_bilinear(box_mean(b, r_lo, border), height, width)
    if guide.ndim == 2:
        return mean_a * guide + mean_b
    return np.sum(mean_a * guide, axis=2) + mean_b
