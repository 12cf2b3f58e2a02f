"""Resampling rules of the reference evaluators, in NumPy (no Pillow, no torch at run time).

A prediction smaller than its ground truth is brought onto the GT grid the way the evaluator a preset
reproduces would do it:

- :func:`pil_bilinear` — Pillow's ``Image.resize(size, Image.BILINEAR)`` (MOVE resizes the 8-bit "L" map;
  the paper repository's ``Resize(335)`` of 8-bit and float images). Pillow's convolution resampler: a
  triangle filter whose support grows with the down-scale factor, coefficients normalised per output
  pixel, horizontal pass then vertical pass; 8-bit images use 22-bit fixed-point coefficients and round
  after each pass, float ("F") images accumulate in double and store float32 after each pass.
- :func:`torch_bilinear` — ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`` in
  float32 (SelfMask, FOUND), optionally as "upsample by the stride, then crop" (their ``scale_factor``
  followed by ``[..., :h, :w]``).
- :func:`torch_nearest` — ``interpolate(mode="nearest")`` (TokenCut's token mask).
- :func:`prediction_stride` — which sizes are accepted at all: the GT size, or a uniform integer
  down-scale (a patch grid, rounded either way).

All functions are pure computations on validated arrays (the bilinear combination runs in a numba
kernel); tests compare them with Pillow and torch when those are installed.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import numpy.typing as npt

from maskrefine._checks import plain_ndarray, short_repr
from maskrefine.metrics import _kernels

__all__ = ["MAX_STRIDE", "prediction_stride", "pil_bilinear", "torch_bilinear", "torch_nearest"]

#: Largest accepted down-scale factor of a prediction (patch sizes are 8, 14, 16; SelfMask predicts at 1/4).
MAX_STRIDE = 32
_PREFERRED = (16, 8, 14, 4, 32)
_PIL_PRECISION_BITS = 32 - 8 - 2


def prediction_stride(pred_hw: tuple[int, int], gt_hw: tuple[int, int]) -> int | None:
    """Integer down-scale factor of a prediction relative to its GT, or None when there is none.

    A prediction of size ``(h, w)`` belongs to a GT of size ``(H, W)`` when it has the same size (stride
    1) or when one integer stride ``s`` in 2..:data:`MAX_STRIDE` gives ``h`` in ``{floor(H/s), ceil(H/s)}``
    and ``w`` in ``{floor(W/s), ceil(W/s)}`` (a patch grid rounded either way), at least 2×2. Several
    strides can fit a small image; the usual patch sizes 16, 8, 14, 4, 32 are preferred in that order,
    then the smallest.

    Parameters
    ----------
    pred_hw, gt_hw : tuple of int
        ``(height, width)``.

    Returns
    -------
    int or None

    Examples
    --------
    >>> prediction_stride((13, 19), (200, 300))
    16
    >>> prediction_stride((300, 200), (200, 300)) is None
    True
    """
    h, w = _size_pair(pred_hw, "pred_hw")
    big_h, big_w = _size_pair(gt_hw, "gt_hw")
    if (h, w) == (big_h, big_w):
        return 1
    if h < 2 or w < 2:  # a grid one cell wide carries no shape: a 1x1 map is not a patch grid
        return None
    fits = [
        s
        for s in range(2, MAX_STRIDE + 1)
        if h in (big_h // s, -(-big_h // s)) and w in (big_w // s, -(-big_w // s))
    ]
    if not fits:
        return None
    preferred = [s for s in _PREFERRED if s in fits]
    return preferred[0] if preferred else fits[0]


def _pil_coefficients(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's ``precompute_coeffs`` for the bilinear filter: (out, k) source indices and float weights."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    centers = (np.arange(out_size, dtype=np.float64) + 0.5) * scale
    # Pillow truncates towards zero and clamps at 0; floor gives the same result after the clamp.
    xmin = np.maximum(np.floor(centers - support + 0.5).astype(np.int64), 0)
    xmax = np.minimum(np.floor(centers + support + 0.5).astype(np.int64), in_size) - xmin
    taps = np.arange(ksize, dtype=np.int64)
    x = (taps[None, :] + xmin[:, None] - centers[:, None] + 0.5) * (1.0 / filterscale)
    weights = np.clip(1.0 - np.abs(x), 0.0, None)
    weights[taps[None, :] >= xmax[:, None]] = 0.0
    total = weights.sum(axis=1, keepdims=True)
    np.divide(weights, total, out=weights, where=total != 0.0)
    index = np.minimum(xmin[:, None] + taps[None, :], in_size - 1)
    return index, weights


def _pil_pass_8bit(img: np.ndarray, index: np.ndarray, weights: np.ndarray, axis: int) -> np.ndarray:
    fixed = np.where(
        weights < 0,
        np.trunc(-0.5 + weights * (1 << _PIL_PRECISION_BITS)),
        np.trunc(0.5 + weights * (1 << _PIL_PRECISION_BITS)),
    ).astype(np.int64)
    src = np.ascontiguousarray(img if axis == 1 else img.T)
    out = np.empty((src.shape[0], index.shape[0]), np.uint8)
    _kernels.pil_rows_8bit(src, np.ascontiguousarray(index), fixed, _PIL_PRECISION_BITS, out)
    return out if axis == 1 else np.ascontiguousarray(out.T)


def _pil_pass_float(img: np.ndarray, index: np.ndarray, weights: np.ndarray, axis: int) -> np.ndarray:
    acc = np.zeros((img.shape[0], index.shape[0]) if axis == 1 else (index.shape[0], img.shape[1]))
    src = img.astype(np.float64)
    for t in range(index.shape[1]):
        if axis == 1:
            acc += src[:, index[:, t]] * weights[None, :, t]
        else:
            acc += src[index[:, t], :] * weights[:, t, None]
    return acc.astype(np.float32)


#: Most pixels a resize may produce (8 GiB of float32; the helpers also hold float64 temporaries).
MAX_RESIZE_PIXELS = 2**31
#: Largest ``stride`` of :func:`torch_bilinear` / :func:`torch_nearest`: the up-sampled axis has
#: ``h * stride`` entries before the crop (``stride=10**6`` built 12e6-entry axes to crop 48 of them).
MAX_RESIZE_STRIDE = 1024


def _size_pair(value: object, name: str, minimum: int = 0) -> tuple[int, int]:
    """``value`` as ``(H, W)``, two integers >= ``minimum``, or raise ``ValueError`` naming ``name``."""
    if not (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and int(v) >= minimum for v in value
        )
    ):
        raise ValueError(f"`{name}` must be two integers (H, W) >= {minimum}; got {short_repr(value)}")
    return int(value[0]), int(value[1])


def _output_size(size_hw: object, stride: object = None) -> tuple[int, int]:
    """``size_hw`` as two ints >= 1 of at most :data:`MAX_RESIZE_PIXELS` pixels, or raise.

    ``stride`` must be None or an int in 1..:data:`MAX_RESIZE_STRIDE`; the ValueError names the argument.
    """
    out_h, out_w = _size_pair(size_hw, "size_hw", minimum=1)
    if out_h * out_w > MAX_RESIZE_PIXELS:
        raise ValueError(
            f"`size_hw` must be at most {MAX_RESIZE_PIXELS} pixels; got {short_repr((out_h, out_w))}"
        )
    if stride is not None and (
        isinstance(stride, bool)
        or not isinstance(stride, numbers.Integral)
        or not 1 <= int(stride) <= MAX_RESIZE_STRIDE
    ):
        raise ValueError(
            f"`stride` must be None or an integer in [1, {MAX_RESIZE_STRIDE}]; got {short_repr(stride)}"
        )
    return out_h, out_w


def _input_grid(array: object, *, interpolated: bool) -> np.ndarray:
    """``array`` as a plain 2-D ndarray with h, w >= 1, or raise naming ``array``.

    ``interpolated``: the values are combined (bilinear), so they must be real numbers (bool, integer or
    float); nearest resampling only copies them and takes any dtype.
    """
    array = plain_ndarray(array)
    if not isinstance(array, np.ndarray):
        raise TypeError(f"`array` must be a NumPy array of shape (h, w); got {type(array).__name__}")
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"`array` must have shape (h, w) with h, w >= 1; got shape {array.shape}")
    kind = array.dtype.kind
    if interpolated and kind not in "biuf":
        raise TypeError(f"`array` must hold real numbers (bool, integer or float); got dtype {array.dtype}")
    return array


def pil_bilinear(array: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Pillow's ``Image.resize((W, H), Image.BILINEAR)`` of an "L" (uint8) or "F" (float32) image.

    Parameters
    ----------
    array : ndarray, shape (h, w)
        uint8 (Pillow mode "L") or float32 (mode "F"; other floats are cast to float32 first).
    size_hw : tuple of int
        Output ``(H, W)``.

    Returns
    -------
    ndarray, shape (H, W)
        uint8 for uint8 input, float32 otherwise; a new array.

    Notes
    -----
    Pillow skips the horizontal pass when the width does not change and the vertical pass when the
    height does not change; so does this function.
    """
    out_h, out_w = _output_size(size_hw)
    array = _input_grid(array, interpolated=True)
    eight_bit = array.dtype == np.uint8
    img = array if eight_bit else array.astype(np.float32)
    run = _pil_pass_8bit if eight_bit else _pil_pass_float
    if img.shape[1] != out_w:
        img = run(img, *_pil_coefficients(img.shape[1], out_w), axis=1)
    if img.shape[0] != out_h:
        img = run(img, *_pil_coefficients(img.shape[0], out_h), axis=0)
    return np.array(img, copy=True) if img is array else img


def _fma32(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Compute ``a * b + c`` of float32 arrays rounded once to float32, as a fused multiply-add.

    The product is exact in float64; the float64 sum can round twice, which changes a result in rare
    ties only.
    """
    return (a.astype(np.float64) * b + c).astype(np.float32)


def _axis_plan(in_size: int, out_size: int, stride: int | None) -> tuple[int, np.float32]:
    """Length of the interpolated axis and torch's float32 scale (input / output pixel size)."""
    if stride is not None and in_size * stride >= out_size:
        return in_size * stride, np.float32(1.0 / stride)
    return out_size, np.float32(np.float32(in_size) / np.float32(out_size))


def _torch_linear_axis(
    in_size: int, n_out: int, scale: np.float32
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    dst = np.arange(n_out, dtype=np.float32) + np.float32(0.5)
    src = _fma32(np.full_like(dst, scale), dst, np.full_like(dst, -0.5))
    src = np.maximum(src, np.float32(0.0))
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    lam1 = np.clip(src - i0.astype(np.float32), np.float32(0.0), np.float32(1.0)).astype(np.float32)
    lam0 = (np.float32(1.0) - lam1).astype(np.float32)
    i1 = i0 + (i0 < in_size - 1)
    return i0, i1, lam0, lam1


def torch_bilinear(array: np.ndarray, size_hw: tuple[int, int], stride: int | None = None) -> np.ndarray:
    """``F.interpolate(x, mode="bilinear", align_corners=False)`` in float32, then a crop to ``size_hw``.

    Parameters
    ----------
    array : ndarray, shape (h, w)
        Values (cast to float32).
    size_hw : tuple of int
        Output ``(H, W)``.
    stride : int, optional
        Up-sample each axis with ``scale_factor=stride`` and crop to ``(H, W)`` (SelfMask's ×4 and
        FOUND's ×patch followed by ``[..., :H, :W]``) where ``h * stride >= H``; an axis whose grid is
        too short for that (rounded down) is interpolated straight to its output size.

    Returns
    -------
    ndarray of float32, shape (H, W)

    Notes
    -----
    Per axis: source coordinate ``max(scale (i + 0.5) - 0.5, 0)``, lower index clamped to the last
    pixel, weights ``1 - λ`` and ``λ``; combined as ``(x00 w0 + x01 w1) h0 + (x10 w0 + x11 w1) h1`` in
    float32, torch's order, with fused multiply-adds: within one float32 ulp of torch 2.13's CPU output,
    not bit for bit (torch's vectorised and scalar loops round differently; CUDA differs again).
    """
    out_h, out_w = _output_size(size_hw, stride)
    x = _input_grid(array, interpolated=True).astype(np.float32, copy=False)
    in_h, in_w = x.shape
    n_h, scale_h = _axis_plan(in_h, out_h, stride)
    n_w, scale_w = _axis_plan(in_w, out_w, stride)
    r0, r1, h0, h1 = (np.ascontiguousarray(a[:out_h]) for a in _torch_linear_axis(in_h, n_h, scale_h))
    c0, c1, w0, w1 = (np.ascontiguousarray(a[:out_w]) for a in _torch_linear_axis(in_w, n_w, scale_w))
    out = np.empty((out_h, out_w), np.float32)
    return _kernels.bilinear_fma32(np.ascontiguousarray(x), r0, r1, h0, h1, c0, c1, w0, w1, out)


def _torch_nearest_axis(in_size: int, n_out: int, scale: np.float32) -> np.ndarray:
    dst = np.arange(n_out, dtype=np.int64)
    if n_out == in_size:
        return dst
    if n_out == 2 * in_size:
        return dst >> 1
    return np.minimum(np.floor(dst.astype(np.float32) * scale).astype(np.int64), in_size - 1)


def torch_nearest(array: np.ndarray, size_hw: tuple[int, int], stride: int | None = None) -> np.ndarray:
    """``F.interpolate(x, mode="nearest")`` (source index ``floor(i * scale)``), then a crop to ``size_hw``.

    Parameters
    ----------
    array : ndarray, shape (h, w)
        Any dtype; values are copied, never interpolated.
    size_hw : tuple of int
        Output ``(H, W)``.
    stride : int, optional
        As in :func:`torch_bilinear` (up-sample by the stride on the padded grid, then crop).

    Returns
    -------
    ndarray, shape (H, W), same dtype as ``array``
    """
    out_h, out_w = _output_size(size_hw, stride)
    array = _input_grid(array, interpolated=False)
    in_h, in_w = array.shape
    n_h, scale_h = _axis_plan(in_h, out_h, stride)
    n_w, scale_w = _axis_plan(in_w, out_w, stride)
    rows = _torch_nearest_axis(in_h, n_h, scale_h)[:out_h]
    cols = _torch_nearest_axis(in_w, n_w, scale_w)[:out_w]
    return array[rows][:, cols]
