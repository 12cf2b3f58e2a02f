"""Saliency evaluator: one confusion pass per image, every metric derived from its counts.

``Evaluator(preset).step(pred, gt, name=...)`` accumulates; ``per_image()`` gives a row per image,
``summary()`` a plain dict, ``curves()`` the image-averaged precision / recall / F / E curves.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any, Literal

import cv2
import numpy as np
import numpy.typing as npt

from maskrefine._checks import (
    check_flag,
    check_int_range,
    check_row_name,
    plain_ndarray,
    short_repr,
    unit_interval_problem,
)
from maskrefine._units import to_unit_float
from maskrefine.metrics import _kernels
from maskrefine.metrics.presets import ScorePreset, get_preset
from maskrefine.metrics.resize import pil_bilinear, prediction_stride, torch_bilinear, torch_nearest
from maskrefine.metrics.saliency import (  # the unchecked versions: prepare_pair validated the maps
    EPS,
    SELFMASK_S_EPS,
    _accuracy_from_counts,
    _e_measure_from_counts,
    _fbeta,
    _iou_from_counts,
    _precision_recall,
    _s_object_score,
    _ssim_from_moments,
    _weighted_fbeta,
)

__all__ = ["Evaluator", "SaliencyEvaluator", "score_image", "prepare_pair", "paper_repo_geometry"]

#: ``side`` argument of ``np.searchsorted``.
_Side = Literal["left", "right"]

_CODES = np.arange(256, dtype=np.float64)
_RAW_LUT = _CODES / 255
_RAW_LUT32 = (_CODES.astype(np.float32) / np.float32(255)).astype(np.float64)


def _type_name(x: object) -> str:
    return f"dtype {x.dtype}" if isinstance(x, np.ndarray) else type(x).__name__


def _native(array: np.ndarray) -> np.ndarray:
    """``array`` in native byte order: a big-endian map becomes a native copy (the caller's is untouched).

    OpenCV and the numba kernels read the raw bytes as native numbers; NumPy's own arithmetic does not.
    """
    if array.dtype.isnative:
        return array
    return array.astype(array.dtype.newbyteorder("="))


def _unit_floats(values: np.ndarray, name: str, hint: str = "") -> np.ndarray:
    """Return a float map in [0, 1], values within UNIT_TOLERANCE of it clipped (in a copy).

    Float rounding (1.0000001) is clipped as the readers clip it; anything further out, NaN or inf is a
    ValueError naming ``name``.
    """
    lo, hi = float(values.min()), float(values.max())
    problem = unit_interval_problem(lo, hi)
    if problem is not None:
        raise ValueError(f"`{name}` must have finite values in [0, 1] when floating; {problem}{hint}")
    if lo < 0.0 or hi > 1.0:
        return np.clip(values, 0.0, 1.0)
    return values


def _check_pred(pred: object) -> np.ndarray:
    pred = plain_ndarray(pred)  # a masked array's hidden values are checked too: they are computed on
    if not isinstance(pred, np.ndarray):
        raise TypeError(f"`pred` must be a NumPy array (H, W); got {type(pred).__name__}")
    if pred.ndim != 2:
        hint = " Squeeze the channel axis." if pred.ndim == 3 and 1 in (pred.shape[0], pred.shape[-1]) else ""
        raise ValueError(f"`pred` must be 2-D (H, W); got shape {pred.shape}.{hint}")
    if pred.size == 0:
        raise ValueError(f"`pred` must not be empty; got shape {pred.shape}")
    pred = _native(pred)
    if pred.dtype in (np.uint8, np.uint16, np.bool_):
        return pred
    if np.issubdtype(pred.dtype, np.floating):
        return _unit_floats(pred, "pred", ". Pass 8-bit maps as uint8 (0..255).")
    raise TypeError(
        f"`pred` must be uint8 (0..255), uint16 (0..65535) or float in [0, 1]; got {_type_name(pred)}"
    )


def _check_gt(gt: object) -> np.ndarray:
    gt = plain_ndarray(gt)
    if not isinstance(gt, np.ndarray):
        raise TypeError(f"`gt` must be a NumPy array (H, W); got {type(gt).__name__}")
    if gt.ndim != 2:
        raise ValueError(f"`gt` must be 2-D (H, W); got shape {gt.shape}")
    if gt.size == 0:
        raise ValueError(f"`gt` must not be empty; got shape {gt.shape}")
    gt = _native(gt)
    if gt.dtype in (np.uint8, np.uint16, np.bool_):
        return gt
    if np.issubdtype(gt.dtype, np.floating):
        gt = _unit_floats(gt, "gt")
        # the GT kernels take float32 / float64: float16 widens exactly, long double rounds to float64
        if gt.dtype == np.float16:
            return gt.astype(np.float32)
        if gt.dtype not in (np.float32, np.float64):
            return gt.astype(np.float64)
        return gt
    raise TypeError(
        f"`gt` must be uint8 (0..255), uint16 (0..65535), bool or float in [0, 1]; got {_type_name(gt)}"
    )


def _to_uint8(pred: np.ndarray) -> np.ndarray:
    """8-bit codes: uint8 as is; bool → 0/255; uint16 → round(v / 257); float → round(255 p)."""
    if pred.dtype == np.uint8:
        return pred
    if pred.dtype == np.bool_:
        return pred.view(np.uint8) * np.uint8(255)
    if pred.dtype == np.uint16:
        return np.rint(pred / 257.0).astype(np.uint8)
    return np.rint(pred.astype(np.float64) * 255.0).astype(np.uint8)


def _as_float32(pred: np.ndarray) -> np.ndarray:
    """Return the map as the float32 probabilities a torch evaluator holds (uint8 v → float32(v / 255))."""
    if pred.dtype == np.uint8:
        return _RAW_LUT32.astype(np.float32)[pred]
    if pred.dtype == np.bool_:
        return pred.astype(np.float32)
    if pred.dtype == np.uint16:
        return (pred.astype(np.float32) / np.float32(65535)).astype(np.float32)
    return pred.astype(np.float32)


def _resize(pred: np.ndarray, shape: tuple[int, int], mode: str, stride: int) -> np.ndarray:
    """``pred`` brought to ``shape`` by the preset's rule (the size was checked by ``prediction_stride``)."""
    if mode == "auto":
        mode = "nearest" if np.unique(pred).size <= 2 else "torch_bilinear"
    if mode == "nearest":  # TokenCut: interpolate(size=(H, W), mode="nearest"), a stretch of the grid
        return torch_nearest(pred, shape)
    if mode == "torch_bilinear":
        return np.clip(torch_bilinear(_as_float32(pred), shape, stride), 0.0, 1.0)
    if mode == "pil_bilinear":  # MOVE: an 8-bit map as Pillow "L"; a float map as a Pillow "F" image,
        # so that it stays unquantised as at the GT size (rounding it to 8 bits first moved 0.5 over 0.5)
        if pred.dtype in (np.uint8, np.bool_):
            return pil_bilinear(_to_uint8(pred), shape)
        return np.clip(pil_bilinear(_as_float32(pred), shape), 0.0, 1.0)
    src = pred.view(np.uint8) * np.uint8(255) if pred.dtype == np.bool_ else pred
    if src.dtype == np.float16:
        src = src.astype(np.float32)
    out = cv2.resize(src, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    if np.issubdtype(out.dtype, np.floating):
        np.clip(out, 0.0, 1.0, out=out)
    return out


#: Largest ``short_side`` / ``crop`` of :func:`paper_repo_geometry` (the paper's are 335 / 320).
MAX_GEOMETRY_SIDE = 16384
#: Most pixels :func:`paper_repo_geometry` resizes a mask to (the size of a huge ``short_side``, or of a
#: very elongated mask's long side).
MAX_GEOMETRY_PIXELS = 10**8


def paper_repo_geometry(array: np.ndarray, short_side: int = 335, crop: int = 320) -> np.ndarray:
    """Apply the paper repo's test geometry: shorter side → ``short_side`` (PIL bilinear), centre crop.

    Parameters
    ----------
    array : ndarray, shape (H, W)
        uint8 (resized as an 8-bit PIL image, as torchvision does on the loaded PNG), bool (as 0/255),
        uint16 (as float32 v / 65535; a uint16 array whose values are all multiples of 257, such as a
        0/65535 mask, as its 8-bit map v / 257) or float in [0, 1] (resized as a 32-bit float image).
    short_side : int
        Length of the shorter side after resizing.
    crop : int
        Side of the square centre crop.

    Returns
    -------
    ndarray, shape (crop, crop)
        uint8 for uint8/bool input and for uint16 input holding 8-bit codes, float32 (in [0, 1]) otherwise.

    Raises
    ------
    TypeError
        ``array`` is not a NumPy array or of another dtype.
    ValueError
        ``array`` not 2-D or empty, float values NaN/inf or outside [0, 1], sizes out of range, or a
        side shorter than ``crop`` after resizing.

    Notes
    -----
    Size rule of ``torchvision.transforms.Resize(335)``: the long side becomes ``int(335 * long / short)``;
    the crop offset is ``int(round((size - 320) / 2))``. The resampling is Pillow's bilinear
    (:func:`maskrefine.metrics.resize.pil_bilinear`, NumPy; Pillow is not needed).
    """
    short_side = check_int_range(short_side, "short_side", 1, MAX_GEOMETRY_SIDE)
    crop = check_int_range(crop, "crop", 1, MAX_GEOMETRY_SIDE)
    array = plain_ndarray(array)
    if not isinstance(array, np.ndarray):
        raise TypeError(f"`array` must be a NumPy array (H, W); got {type(array).__name__}")
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"`array` must be a non-empty 2-D mask; got shape {array.shape}")
    array = _native(array)
    if np.issubdtype(array.dtype, np.floating):
        array = _unit_floats(array, "array")
    elif array.dtype not in (np.uint8, np.uint16, np.bool_):
        raise TypeError(f"`array` must be uint8, uint16, bool or float in [0, 1]; got {_type_name(array)}")
    return _paper_repo_geometry(array, short_side, crop)


def _paper_repo_geometry(array: np.ndarray, short_side: int = 335, crop: int = 320) -> np.ndarray:
    """:func:`paper_repo_geometry` of a checked, native 2-D mask (uint8, uint16, bool or float in [0, 1])."""
    a = array.view(np.uint8) * np.uint8(255) if array.dtype == np.bool_ else array
    if a.dtype == np.uint16 and not np.any(a % np.uint16(257)):
        # 8-bit codes on the 16-bit scale (a 0/65535 mask): the 8-bit map itself, resized as the 8-bit
        # image the reference reads (its convert('L') gives exactly that map for a 0/65535 file)
        a = (a // np.uint16(257)).astype(np.uint8)
    h, w = a.shape
    if h <= w:
        nh, nw = short_side, int(short_side * w / h)
    else:
        nh, nw = int(short_side * h / w), short_side
    if nh < crop or nw < crop:
        raise ValueError(f"paper_repo geometry needs both sides >= {crop} after resizing; got {(nh, nw)}")
    if nh * nw > MAX_GEOMETRY_PIXELS:
        raise ValueError(
            f"paper_repo geometry would resize the {h}x{w} mask to {nh}x{nw}, more than "
            f"{MAX_GEOMETRY_PIXELS:.0e} pixels (shorter side to {short_side}, the longer in proportion)"
        )
    out = pil_bilinear(a if a.dtype == np.uint8 else to_unit_float(a), (nh, nw))
    top = int(round((nh - crop) / 2.0))
    left = int(round((nw - crop) / 2.0))
    return np.ascontiguousarray(out[top : top + crop, left : left + crop])


def prepare_pair(
    pred: np.ndarray, gt: np.ndarray, preset: str | ScorePreset | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Validate and bring ``pred`` onto the GT grid as ``preset`` says.

    The GT is not resized, except under a preset with the ``"paper_repo"`` geometry, which brings the GT
    (and a ``pred`` of the GT's size) to the paper repository's 320x320 centre crop
    (:func:`paper_repo_geometry`); a 320x320 ``pred`` is taken as that crop already.

    Parameters
    ----------
    pred : ndarray, shape (H', W')
        Prediction: uint8 (0..255), uint16 (0..65535), bool, or float with finite values in [0, 1]. Of
        the GT's size or a uniform down-scale of it (a 1/s patch grid, s = 2..32), which is resized by
        the preset's ``resize`` rule.
    gt : ndarray, shape (H, W)
        Ground truth: uint8 (0..255), uint16 (0..65535), bool, or float with finite values in [0, 1]; at
        least 2 pixels.
    preset : str or ScorePreset, optional
        Evaluation convention (:func:`get_preset`); None is the default ``"tokencut"``.

    Returns
    -------
    pred, gt : ndarray
        Same shape; ``pred`` keeps its dtype family, ``gt`` is uint8, uint16, bool or float.

    Raises
    ------
    TypeError
        ``pred`` or ``gt`` not a NumPy array or of an unsupported dtype; ``preset`` neither a name nor a
        ScorePreset.
    ValueError
        An unknown preset name; ``pred`` or ``gt`` not 2-D or empty, float values NaN/inf or outside
        [0, 1]; a one-pixel GT; a ``pred`` size that is neither the GT's nor a uniform down-scale of it
        (under ``"paper_repo"``: neither 320x320 nor the GT's).
    """
    p = get_preset(preset)
    pred = _check_pred(pred)
    gt = _check_gt(gt)
    if gt.size < 2:  # PySODMetrics divides by (pixels - 1 + eps): 4.5e15 for one pixel
        raise ValueError(
            f"`gt` has {gt.size} pixel; the E-measure (in every row) divides by pixels - 1 and is undefined "
            "for it: score masks of at least 2 pixels"
        )
    if p.geometry == "paper_repo":
        crop = 320
        gt_c = _paper_repo_geometry(gt)
        # the reference's predictions are always the crop: a 320x320 one is used as is, also for a
        # 320x320 GT (which the geometry turns into 335x335 and crops back to 320x320)
        if pred.shape != (crop, crop):
            if pred.shape != gt.shape:
                raise ValueError(
                    f"`pred` must be {crop}x{crop} (the crop) or the GT size {gt.shape} under preset "
                    f"'paper_repo'; got shape {pred.shape}"
                )
            pred = _paper_repo_geometry(pred)
        return pred, gt_c
    if pred.shape != gt.shape:
        stride = prediction_stride(pred.shape, gt.shape)
        if stride is None:
            raise ValueError(
                f"`pred` of size {pred.shape[0]}x{pred.shape[1]} is neither the GT size "
                f"{gt.shape[0]}x{gt.shape[1]} (HxW) nor a uniform down-scale of it (a 1/s patch grid, s = 2.."
                f"32, rounded either way); is it paired with the right GT?"
            )
        pred = _resize(pred, gt.shape, p.resize, stride)
    return pred, gt


class _Image:
    """Per-image intermediate counts (internal)."""

    n: int
    n_fg: int
    tp: npt.NDArray[np.int64]
    pp: npt.NDArray[np.int64]
    acc_tp: int
    acc_pp: int
    acc_g: int
    adp_tp: int
    adp_pp: int
    mae: float
    s: float
    x: npt.NDArray[np.float64] | None
    gf: npt.NDArray[np.bool_] | None

    __slots__ = (
        "n",
        "n_fg",
        "tp",
        "pp",
        "acc_tp",
        "acc_pp",
        "acc_g",
        "adp_tp",
        "adp_pp",
        "mae",
        "s",
        "x",
        "gf",
    )


def _gt_on_255_scale(gt: np.ndarray) -> tuple[np.ndarray, float, float]:
    """GT values, a factor for them and one for a 0..255 threshold: ``gt·f > threshold·g`` is the GT rule.

    A 16-bit value v is compared as ``255·v > threshold·65535``, exact in float64: v / 65535 · 255 in
    float32 puts v = 32896 (exactly 128 on the 0..255 scale) above ``GT > 128``.
    """
    if gt.dtype == np.bool_:
        return gt.view(np.uint8), 255.0, 1.0
    if gt.dtype == np.uint8:
        return gt, 1.0, 1.0
    if gt.dtype == np.uint16:
        return gt, 255.0, 65535.0
    return gt, 255.0, 1.0


def gt_foreground(gt: np.ndarray, threshold: float) -> npt.NDArray[np.bool_]:
    """Return the GT pixels whose value is ``> threshold`` on the 0..255 scale, as the evaluator sees them.

    ``gt`` is a GT as :class:`Evaluator` takes it (uint8 as stored, bool as 0/255, uint16 × 255 / 65535,
    float in [0, 1] × 255);
    ``threshold`` is e.g. a preset's ``gt_threshold_acc``. The same kernel as the scorer's GT classes.
    """
    g, scale, thr_scale = _gt_on_255_scale(gt)
    out = np.empty(gt.shape, np.uint8)
    thr = float(threshold) * thr_scale
    _kernels.gt_classes(g, scale, thr, thr, False, out)
    return out.view(np.bool_)


def _gt_classes(gt: np.ndarray, p: ScorePreset) -> tuple[npt.NDArray[np.uint8], int, int, int, int]:
    two = p.gt_threshold_acc != p.gt_threshold_f
    g, scale, thr_scale = _gt_on_255_scale(gt)
    gcls = np.empty(gt.shape, np.uint8)
    n_fg, sr, sc = _kernels.gt_classes(
        g, scale, float(p.gt_threshold_f) * thr_scale, float(p.gt_threshold_acc) * thr_scale, two, gcls
    )
    return gcls, (4 if two else 2), int(n_fg), sr, sc


def _split_classes(arr: np.ndarray, ncls: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Class axis of size ncls → (by F class, by Acc class), each of size 2 (class = f + 2 * acc)."""
    if ncls == 2:
        return arr, arr
    a = np.moveaxis(arr, axis, 0)
    f = np.stack([a[0] + a[2], a[1] + a[3]])
    acc = np.stack([a[0] + a[1], a[2] + a[3]])
    return np.moveaxis(f, 0, axis), np.moveaxis(acc, 0, axis)


def _analyse(pred: np.ndarray, gt: np.ndarray, p: ScorePreset, want_x: bool) -> _Image:
    """Count what an image's metrics need, in one GT pass and one prediction pass.

    Counts at the Acc threshold, the adaptive threshold and all curve thresholds, plus the moments that
    MAE and the S-measure need.
    """
    h, w = gt.shape
    n = h * w
    gcls, ncls, n_fg, sr, sc = _gt_classes(gt, p)
    if n_fg:
        # PySOD splits at the rounded centroid + 1 (MATLAB indexing), SelfMask at the centroid itself.
        shift = 1 if p.s_measure_rule == "pysod" else 0
        cy = int(np.round(sr / n_fg)) + shift
        cx = int(np.round(sc / n_fg)) + shift
    else:
        cy, cx = int(np.round(h / 2)), int(np.round(w / 2))
    s_eps = SELFMASK_S_EPS if p.s_measure_rule == "selfmask" else EPS  # each reference's S-measure guard
    r = _Image()
    r.n, r.n_fg = n, n_fg
    r.x = None
    r.gf = (gcls & 1).view(bool) if want_x else None
    k = p.thresholds.size
    cmp = _comparison_dtype(p, pred.dtype)
    thresholds = p.thresholds if cmp == np.float64 else p.thresholds.astype(cmp).astype(np.float64)
    codes_path = p.pred_mapping == "pysod" or pred.dtype in (np.uint8, np.bool_)
    if codes_path:
        codes = _to_uint8(pred)
        hist4 = _kernels.quadrant_histogram(codes, gcls, cy, cx, ncls, 256)  # (4, ncls, 256)
        hq, hq_acc = _split_classes(hist4, ncls, 1)  # (4, 2, 256)
        hf = hq.sum(axis=0)  # (2, 256)
        total = hf[0] + hf[1]
        nz = np.flatnonzero(total)
        if p.pred_mapping == "pysod":
            lut = _RAW_LUT
            mn, mx = lut[nz[0]], lut[nz[-1]]
            if mx != mn:
                # codes outside [min, max] hold no pixel; clipping keeps the table monotone
                lut = np.clip((lut - mn) / (mx - mn), 0.0, 1.0)
            levels = (lut * 255).astype(np.uint8).astype(np.int64) + 1  # #{t in 0..255 : t <= q}
        else:
            lut = _RAW_LUT32 if cmp == np.float32 else _RAW_LUT
            levels = np.searchsorted(thresholds, lut, side="left" if p.threshold_op == ">" else "right")
        # Counts of codes >= v, per class: index v in 0..256.
        rev = np.zeros((2, 257), np.int64)
        rev[:, :256] = np.cumsum(hf[:, ::-1], axis=1)[:, ::-1]
        # Curve: level(v) is non-decreasing in v, so {v : level(v) > j} = {v >= first v with level > j}.
        vk = np.searchsorted(levels, np.arange(k), side="right")
        r.tp = rev[1, vk]
        r.pp = rev[0, vk] + r.tp
        # Acc/IoU threshold (strict >) and adaptive threshold (>=) on the mapped values.
        histsum_x = total @ lut
        mean_x = histsum_x / n
        if p.adaptive_rule == "pysod":
            mean_x = _pysod_mean_at_a_tie(mean_x, lut, total, codes)
        thr_adp, adp_side = _adaptive_threshold(mean_x, p)
        v_adp = int(np.searchsorted(lut, thr_adp, side=adp_side))
        r.adp_tp = int(rev[1, v_adp])
        r.adp_pp = int(rev[0, v_adp] + rev[1, v_adp])
        v_acc = int(np.searchsorted(lut, p.pred_threshold, side="right"))
        ha = hq_acc.sum(axis=0)
        acc_fg_above = int(ha[1, v_acc:].sum())
        r.acc_tp = acc_fg_above
        r.acc_pp = int(total[v_acc:].sum())
        r.acc_g = int(ha[1].sum())
        sum_fg = hf[1] @ lut
        sum_bg = hf[0] @ lut
        r.mae = (sum_bg + (n_fg - sum_fg)) / n
        constant = _code_block_constant(hq, lut) if p.s_measure_rule == "pysod" else None
        r.s = _s_measure_codes(hq, hf, lut, n, n_fg, h, w, cy, cx, mean_x, constant, s_eps)
        if want_x:
            r.x = lut[codes]
    else:
        if cmp == np.float32:
            x = _as_float32(pred).astype(np.float64)
        elif pred.dtype == np.uint16:
            x = pred.astype(np.float64) / 65535.0
        else:
            x = pred.astype(np.float64, copy=False)
        mean_x = float(x.mean())
        thr_adp, adp_side = _adaptive_threshold(mean_x, p)
        if adp_side == "right":  # strict '>': the kernel counts '>=', so step to the next float64
            thr_adp = float(np.nextafter(thr_adp, np.inf))
        mom4 = _kernels.quadrant_moments(x, gcls, cy, cx, ncls, float(p.pred_threshold), thr_adp)
        mq, mq_acc = _split_classes(np.moveaxis(mom4, -1, 0), ncls, 2)  # (5, 4, 2)
        mf = mq.sum(axis=1)  # (5, 2)
        ma = mq_acc.sum(axis=1)
        hist = _kernels.level_histogram(
            np.ascontiguousarray(x),
            gcls,
            np.append(thresholds, np.inf),
            float(p.threshold_denominator),
            p.threshold_op == ">",
            np.zeros((2, k + 1), np.int64),
        )
        above = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1][:, 1:]
        r.tp = above[1]
        r.pp = above[0] + above[1]
        r.adp_tp = int(mf[4, 1])
        r.adp_pp = int(mf[4, 0] + mf[4, 1])
        r.acc_tp = int(ma[3, 1])
        r.acc_pp = int(ma[3, 0] + ma[3, 1])
        r.acc_g = int(ma[0, 1])
        r.mae = (mf[1, 0] + (n_fg - mf[1, 1])) / n
        constant = _map_block_constant(x) if p.s_measure_rule == "pysod" else None
        r.s = _s_measure_moments(mq, mf, n, n_fg, h, w, cy, cx, mean_x, constant, s_eps)
        if want_x:
            r.x = x
    if p.s_measure_rule == "selfmask" and 0 < n_fg < n and 1 in (n_fg, n - n_fg):
        # SelfMask's object score uses torch's std (ddof 1), NaN for a single pixel; PySOD uses 0
        r.s = float("nan")
    return r


def _comparison_dtype(p: ScorePreset, pred_dtype: np.dtype) -> type[np.floating]:
    """Return the float type in which a map of ``pred_dtype`` is compared with the thresholds.

    ``compare_dtype="map"`` (TokenCut compares the array it is given): a floating map's own type;
    float64 for an 8- or 16-bit map (v/255, v/65535) and a bool map.
    """
    if p.compare_dtype == "float32":
        return np.float32
    if p.compare_dtype == "map" and pred_dtype in (np.float16, np.float32):
        return np.float16 if pred_dtype == np.float16 else np.float32
    return np.float64


def _pysod_mean_at_a_tie(mean_x: float, lut: np.ndarray, total: np.ndarray, codes: np.ndarray) -> float:
    """PySOD's ``pred.mean()`` when ``2 · mean`` may sit on a value of the map, else ``mean_x``.

    The histogram's dot product and NumPy's pairwise sum of the float64 map round differently (by
    ~1e-16); that decides ``>=`` where a pixel value equals the adaptive threshold. There, the map is
    rebuilt exactly as PySOD holds it (``lut[codes]``: the same float64 values in the same layout) and
    averaged by NumPy as PySOD does; elsewhere the cheaper histogram mean decides nothing.
    """
    threshold = min(2.0 * mean_x, 1.0)
    present = lut[np.flatnonzero(total)]
    if np.abs(present - threshold).min() > 1e-9:
        return mean_x
    return float(lut[codes].mean())


def _adaptive_threshold(mean_x: float, p: ScorePreset) -> tuple[float, _Side]:
    """Return the adaptive threshold and its ``searchsorted`` side.

    PySOD: ``>= min(2 mean, 1)``; SelfMask: ``> 2 mean`` in float32 without a clip.
    """
    if p.adaptive_rule == "selfmask":
        return float(np.float32(2.0) * np.float32(mean_x)), "right"
    return min(2.0 * mean_x, 1.0), "left"


def _s_from_parts(
    obj_fg: float,
    obj_bg: float,
    region_blocks: npt.NDArray[np.float64],
    n: int,
    n_fg: int,
    h: int,
    w: int,
    cy: int,
    cx: int,
) -> float:
    y = n_fg / n
    obj = obj_fg * y + obj_bg * (1 - y)
    w_lt = cx * cy / n
    w_rt = cy * (w - cx) / n
    w_lb = (h - cy) * cx / n
    w_rb = 1 - w_lt - w_rt - w_lb
    s = region_blocks
    region = s[0] * w_lt + s[1] * w_rt + s[2] * w_lb + s[3] * w_rb
    return max(0.0, 0.5 * obj + 0.5 * region) if not math.isnan(region) else float("nan")


def _block_spans(h: int, w: int, cy: int, cx: int) -> tuple[tuple[int, int, int, int], ...]:
    """Rows ``r0:r1`` and columns ``c0:c1`` of the S-measure's four blocks (the kernels' quadrant order)."""
    cy, cx = min(max(cy, 0), h), min(max(cx, 0), w)
    return ((0, cy, 0, cx), (0, cy, cx, w), (cy, h, 0, cx), (cy, h, cx, w))


#: The prediction's value over one S-measure block ``(q, r0, r1, c0, c1)`` when it is constant there,
#: else None; asked only for the blocks whose GT is uniform (see :func:`_pysod_flat_block_scores`).
BlockConstant = Callable[[int, int, int, int, int], float | None]


def _code_block_constant(hq: npt.NDArray[np.int64], lut: npt.NDArray[np.float64]) -> BlockConstant:
    """:data:`BlockConstant` of an 8-bit map, from its per-block code histogram ``hq`` (4, 2, 256)."""
    tot = hq[:, 0] + hq[:, 1]  # (4, 256)

    def constant(q: int, r0: int, r1: int, c0: int, c1: int) -> float | None:
        used = np.flatnonzero(tot[q])
        return float(lut[used[0]]) if used.size == 1 else None

    return constant


def _map_block_constant(x: npt.NDArray[np.float64]) -> BlockConstant:
    """:data:`BlockConstant` of the float map ``x`` (one min/max pass over the block asked about)."""

    def constant(q: int, r0: int, r1: int, c0: int, c1: int) -> float | None:
        block = x[r0:r1, c0:c1]
        return float(block.flat[0]) if block.size and block.min() == block.max() else None

    return constant


def _pysod_flat_block_scores(
    blocks: npt.NDArray[np.float64],
    constant: BlockConstant,
    nq: npt.NDArray[np.float64],
    n_fg_q: npt.NDArray[np.float64],
    h: int,
    w: int,
    cy: int,
    cx: int,
) -> npt.NDArray[np.float64]:
    """PySOD's region score of each block whose prediction is one constant and whose GT is uniform.

    PySOD's ``ssim`` takes ``x = np.mean(block)`` and ``σx = Σ(block − x)² / (N − 1 + eps)`` in float64.
    For a constant block c the mean is not always exactly c (the summation rounds), so σx is 0 or a
    tiny positive number; with a GT block all background or all foreground the numerator is exactly 0
    and the score is 1 when ``(x² + y²) σx == 0`` and 0 otherwise. Exact moments always give 1 (up to
    0.5 on the image's S-measure). This replays NumPy's arithmetic on a block of the same shape and
    strides as PySOD's slice of its C-ordered (H, W) float64 map. ``constant`` gives a block's value
    (asked only for blocks whose GT is uniform); other blocks keep their score.
    """
    out = np.array(blocks, np.float64, copy=True)
    for q, (r0, r1, c0, c1) in enumerate(_block_spans(h, w, cy, cx)):
        if nq[q] == 0 or n_fg_q[q] not in (0, nq[q]):
            continue
        value = constant(q, r0, r1, c0, c1)
        if value is None:
            continue
        block = np.full((r1 - r0, w), value)[:, c0:c1]
        x = np.mean(block)
        sigma_x = np.sum((block - x) ** 2) / (block.size - 1 + EPS)
        y = 1.0 if n_fg_q[q] else 0.0
        out[q] = 1.0 if (x**2 + y**2) * sigma_x == 0 else 0.0
    return out


def _s_measure_codes(
    hq: npt.NDArray[np.int64],
    hf: npt.NDArray[np.int64],
    lut: npt.NDArray[np.float64],
    n: int,
    n_fg: int,
    h: int,
    w: int,
    cy: int,
    cx: int,
    mean_x: float,
    constant: BlockConstant | None = None,
    eps: float = EPS,
) -> float:
    if n_fg == 0:
        return 1.0 - mean_x
    if n_fg == n:
        return mean_x
    n_b = hf.sum(axis=1)  # (2,) bg, fg counts
    m_fg = (hf[1] @ lut) / n_b[1]
    css_fg = hf[1] @ (lut - m_fg) ** 2
    m_bg = 1.0 - (hf[0] @ lut) / n_b[0]
    css_bg = hf[0] @ ((1.0 - lut) - m_bg) ** 2
    obj_fg = _s_object_score(n_b[1], m_fg, css_fg, eps)
    obj_bg = _s_object_score(n_b[0], m_bg, css_bg, eps)
    tot = hq[:, 0] + hq[:, 1]  # (4, 256)
    nq = tot.sum(axis=1).astype(np.float64)
    sq = tot @ lut
    with np.errstate(invalid="ignore", divide="ignore"):
        xbar = sq / nq
    css = np.einsum("qv,qv->q", tot, (lut[None, :] - np.nan_to_num(xbar)[:, None]) ** 2)
    n_fg_q = hq[:, 1].sum(axis=1).astype(np.float64)
    blocks = _ssim_from_moments(nq, sq, css, n_fg_q, hq[:, 1] @ lut, eps)
    if constant is not None:
        blocks = _pysod_flat_block_scores(blocks, constant, nq, n_fg_q, h, w, cy, cx)
    return _s_from_parts(obj_fg, obj_bg, blocks, n, n_fg, h, w, cy, cx)


def _s_measure_moments(
    mq: npt.NDArray[np.float64],
    mf: npt.NDArray[np.float64],
    n: int,
    n_fg: int,
    h: int,
    w: int,
    cy: int,
    cx: int,
    mean_x: float,
    constant: BlockConstant | None = None,
    eps: float = EPS,
) -> float:
    if n_fg == 0:
        return 1.0 - mean_x
    if n_fg == n:
        return mean_x
    # mq: (5, 4, 2) stats [n, Σx, Σx², ...] per quadrant and F class
    nb, sb, s2b = mf[0], mf[1], mf[2]
    m_fg = sb[1] / nb[1]
    m_bg = 1.0 - sb[0] / nb[0]
    obj_fg = _s_object_score(nb[1], m_fg, max(s2b[1] - nb[1] * m_fg**2, 0.0), eps)
    obj_bg = _s_object_score(nb[0], m_bg, max(s2b[0] - nb[0] * (1.0 - m_bg) ** 2, 0.0), eps)
    nq = mq[0].sum(axis=1)
    sq = mq[1].sum(axis=1)
    s2q = mq[2].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        css = np.maximum(s2q - sq**2 / nq, 0.0)
    blocks = _ssim_from_moments(nq, sq, css, mq[0][:, 1], mq[1][:, 1], eps)
    if constant is not None:
        blocks = _pysod_flat_block_scores(blocks, constant, nq, mq[0][:, 1], h, w, cy, cx)
    return _s_from_parts(obj_fg, obj_bg, blocks, n, n_fg, h, w, cy, cx)


def score_image(
    pred: np.ndarray, gt: np.ndarray, preset: str | ScorePreset | None = None, *, weighted_f: bool = True
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Score one prediction against one GT.

    Parameters
    ----------
    pred : ndarray, shape (h, w)
        uint8 (0..255), uint16 (0..65535) or float in [0, 1] (values within 1e-6 of it, float rounding,
        are clipped as the readers clip them); at the GT size or a uniform integer down-scale of it
        (:func:`maskrefine.metrics.resize.prediction_stride`), resized per preset.
    gt : ndarray, shape (H, W)
        uint8 (0..255), uint16 (0..65535), bool or float in [0, 1] (within 1e-6, clipped). A 0/1
        uint8 array is on the 0..255 scale too, as the references hold it (empty): pass bool.
    preset : str or ScorePreset, optional
        Default ``"tokencut"``.
    weighted_f : bool
        Compute the weighted F-measure (the only metric that needs full-image passes beyond the
        histogram; skip it for speed).

    Returns
    -------
    row : dict
        Per-image values (see :meth:`Evaluator.per_image`).
    curves : dict
        ``precision``, ``recall``, ``fbeta``, ``e_measure`` arrays over ``preset.thresholds``.
    """
    p = get_preset(preset)
    weighted_f = check_flag(weighted_f, "weighted_f")
    pred, gt = prepare_pair(pred, gt, p)
    return _score_prepared(pred, gt, p, weighted_f)


def _score_prepared(
    pred: np.ndarray, gt: np.ndarray, p: ScorePreset, weighted_f: bool
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    r = _analyse(pred, gt, p, want_x=weighted_f)
    beta_sq = p.effective_beta_sq
    prec, rec = _precision_recall(
        r.tp,
        r.pp,
        r.n_fg,
        empty_pred_precision=p.empty_pred_precision,
        empty_gt_recall=p.empty_gt_recall,
        eps=p.pr_eps,
    )
    fcurve = _fbeta(prec, rec, beta_sq, p.pr_eps)
    ecurve = _e_measure_from_counts(r.tp, r.pp, r.n_fg, r.n)
    pa, ra = _precision_recall(
        r.adp_tp,
        r.adp_pp,
        r.n_fg,
        empty_pred_precision=p.empty_pred_precision,
        empty_gt_recall=p.empty_gt_recall,
        eps=p.pr_eps,
    )
    # _analyse keeps the map and the GT's F classes exactly when asked to (want_x=weighted_f)
    wfb = float(_weighted_fbeta(r.x, r.gf)) if r.x is not None and r.gf is not None else None
    empty_union = {"nan": np.nan, "skip": np.nan, "zero": 0.0}[p.iou_empty_union]
    binary_mae = p.mae_rule == "binary"
    ratio_dtype = np.float32 if p.ratio_dtype == "float32" else np.float64
    row: dict[str, Any] = {
        "height": int(gt.shape[0]),
        "width": int(gt.shape[1]),
        "acc": float(_accuracy_from_counts(r.acc_tp, r.acc_pp, r.acc_g, r.n, dtype=ratio_dtype)),
        "iou": float(
            _iou_from_counts(
                r.acc_tp, r.acc_pp, r.acc_g, eps=p.iou_eps, empty_union=empty_union, dtype=ratio_dtype
            )
        ),
        "max_fbeta": float(fcurve.max()),
        "mean_fbeta": float(fcurve.mean()),
        "adaptive_fbeta": float(_fbeta(pa, ra, beta_sq, p.pr_eps)),
        # FOUND: MAE of the binarised map (|P xor G| / n), the soft map's MAE kept as soft_mae
        "mae": float((r.acc_pp + r.acc_g - 2 * r.acc_tp) / r.n) if binary_mae else float(r.mae),
        **({"soft_mae": float(r.mae)} if binary_mae else {}),
        "s_measure": float(r.s),
        "max_e_measure": float(ecurve.max()),
        "mean_e_measure": float(ecurve.mean()),
        "adaptive_e_measure": float(_e_measure_from_counts(r.adp_tp, r.adp_pp, r.n_fg, r.n)),
        "weighted_fbeta": wfb,
        "empty_gt": r.n_fg == 0,
        "empty_pred": r.acc_pp == 0,
    }
    return row, {"precision": prec, "recall": rec, "fbeta": fcurve, "e_measure": ecurve}


#: Row keys of :func:`score_image` before and after the MAE key(s), in order (see Evaluator.row_columns).
_ROW_HEAD = ("height", "width", "acc", "iou", "max_fbeta", "mean_fbeta", "adaptive_fbeta")
_ROW_TAIL = (
    "s_measure",
    "max_e_measure",
    "mean_e_measure",
    "adaptive_e_measure",
    "weighted_fbeta",
    "empty_gt",
    "empty_pred",
)

#: Metric keys of :meth:`Evaluator.summary`, in order.
SUMMARY_METRICS = (
    "acc",
    "iou",
    "max_fbeta",
    "mean_fbeta",
    "adaptive_fbeta",
    "mae",
    "s_measure",
    "max_e_measure",
    "mean_e_measure",
    "adaptive_e_measure",
    "weighted_fbeta",
)
#: Summary metrics that are the plain mean of the per-image values.
_MEAN_KEYS = ("acc", "adaptive_fbeta", "mae", "s_measure", "adaptive_e_measure")
#: Numbers every per-image row holds (``soft_mae`` too under ``mae_rule="binary"``; ``weighted_fbeta`` is
#: None when not computed).
_ROW_NUMBERS = tuple(key for key in SUMMARY_METRICS if key != "weighted_fbeta")
#: Per-image values SelfMask / FOUND keep as float32 and sum in float32 (``AverageMeter`` of ``.numpy()``).
_FLOAT32_KEYS = ("acc", "iou", "max_fbeta", "adaptive_fbeta", "mae")


def mean_over_images(values: list[float], float32: bool) -> float:
    """Mean over images: float64, or SelfMask's float32 running sum (one by one) divided by the count."""
    if not float32:
        return float(np.mean(values))
    total = np.cumsum(np.asarray(values, np.float32), dtype=np.float32)[-1]
    return float(total / np.float32(len(values)))


class Evaluator:
    """Accumulate saliency metrics over images, PySODMetrics-style.

    Parameters
    ----------
    preset : str or ScorePreset, optional
        A name from :data:`PRESETS` (default ``"tokencut"``) or a custom :class:`ScorePreset`.
    weighted_f : bool
        Also compute the weighted F-measure (costs a distance transform per image).

    Examples
    --------
    >>> ev = Evaluator("pysod")
    >>> g = np.zeros((8, 8), np.uint8); g[2:6, 2:6] = 255
    >>> row = ev.step(g, g, name="a")
    >>> ev.summary()["max_fbeta"]
    1.0
    """

    def __init__(self, preset: str | ScorePreset | None = None, *, weighted_f: bool = True) -> None:
        self.preset = get_preset(preset)
        self.weighted_f = check_flag(weighted_f, "weighted_f")
        self._rows: list[dict[str, Any]] = []
        k = self.preset.thresholds.size
        self._sums = {key: np.zeros(k) for key in ("precision", "recall", "fbeta", "e_measure")}

    def __len__(self) -> int:
        """Return the number of images scored so far."""
        return len(self._rows)

    def step(self, pred: np.ndarray, gt: np.ndarray, name: str | None = None) -> dict[str, Any]:
        """Score one pair and accumulate it.

        Parameters
        ----------
        pred : ndarray, shape (h, w)
            uint8 (0..255), uint16 (0..65535) or float in [0, 1] (values within 1e-6 of it, float
            rounding, are clipped as the readers clip them), at the GT size or a uniform integer
            down-scale of it (a patch grid); resized to the GT size per preset.
        gt : ndarray, shape (H, W)
            uint8 (0..255), uint16 (0..65535), bool or float in [0, 1] (within 1e-6, clipped). A 0/1
            uint8 array is on the 0..255 scale too, as the references hold it (empty): pass bool.
        name : str, optional
            Row name (default: the running index as a string).

        Returns
        -------
        dict
            The image's row (also kept for :meth:`per_image`).

        Raises
        ------
        TypeError, ValueError
            Bad dtype, shape or value range, or a prediction size that is neither the GT size nor a
            uniform down-scale of it (the message names the argument and the sizes).
        """
        check_row_name(name)  # before scoring: a bad name must not cost a scoring pass
        row, curves = score_image(pred, gt, self.preset, weighted_f=self.weighted_f)
        return self.add_scored(row, curves, name)

    def add_scored(
        self, row: dict[str, Any], curves: dict[str, np.ndarray], name: str | None = None
    ) -> dict[str, Any]:
        """Accumulate a pair already scored by :func:`score_image` with this evaluator's preset.

        For callers that need the per-image curves themselves (``maskrefine score --baseline`` bootstraps
        them) and the dataset summary ``score`` prints, without scoring each pair twice.

        Parameters
        ----------
        row, curves : dict
            What ``score_image(pred, gt, evaluator.preset, weighted_f=evaluator.weighted_f)`` returned.
        name : str, optional
            Row name (default: the running index as a string).

        Returns
        -------
        dict
            The row as kept (``name`` first), as :meth:`step` returns it.

        Raises
        ------
        TypeError, ValueError
            ``row`` or ``curves`` not shaped as :func:`score_image` makes them for this preset (a missing
            value, a curve of another length, no weighted F for an evaluator that reports it).
        """
        check_row_name(name)
        self._check_scored(row, curves)
        row = {"name": str(len(self._rows)) if name is None else name, **row}
        self._rows.append(row)
        for key, arr in curves.items():
            self._sums[key] += arr
        return row

    def _check_scored(self, row: object, curves: object) -> None:
        if not isinstance(row, Mapping):
            raise TypeError(f"`row` must be the row dict score_image returns; got {type(row).__name__}")
        numbers_needed = [*_ROW_NUMBERS, *(("soft_mae",) if self.preset.mae_rule == "binary" else ())]
        missing = [
            key for key in (*numbers_needed, "empty_gt", "empty_pred", "weighted_fbeta") if key not in row
        ]
        if missing:
            raise ValueError(
                f"`row` lacks {', '.join(missing)}: pass the row score_image returns for this evaluator's "
                f"preset ({self.preset.name})"
            )
        for key in numbers_needed:
            if isinstance(row[key], bool) or not isinstance(row[key], numbers.Real):
                raise TypeError(f"`row[{key!r}]` must be a number; got {short_repr(row[key])}")
        for key in ("empty_gt", "empty_pred"):
            if not isinstance(row[key], (bool, np.bool_)):
                raise TypeError(f"`row[{key!r}]` must be a bool; got {short_repr(row[key])}")
        weighted = row["weighted_fbeta"]
        if weighted is not None and (isinstance(weighted, bool) or not isinstance(weighted, numbers.Real)):
            raise TypeError(f"`row['weighted_fbeta']` must be a number or None; got {short_repr(weighted)}")
        if self.weighted_f and row["weighted_fbeta"] is None:
            raise ValueError(
                "`row` has no weighted_fbeta: score with weighted_f=True, as this evaluator does"
            )
        if not isinstance(curves, Mapping) or set(curves) != set(self._sums):
            raise ValueError(f"`curves` must be the dict of {', '.join(self._sums)} that score_image returns")
        k = self.preset.thresholds.size
        for key in self._sums:
            curve = curves[key]
            if not (isinstance(curve, np.ndarray) and curve.dtype.kind == "f" and curve.shape == (k,)):
                raise ValueError(
                    f"`curves[{key!r}]` must be a float array of shape ({k},), one value per threshold of "
                    f"preset {self.preset.name}; got {getattr(curve, 'shape', type(curve).__name__)}"
                )

    def row_columns(self) -> tuple[str, ...]:
        """Return the keys of a :meth:`per_image` row, in order, whether or not an image was added.

        For a table header when nothing was scored (an empty shard).

        Returns
        -------
        tuple of str
            ``name`` followed by :func:`score_image`'s row keys under this evaluator's preset.
        """
        mae = ("mae", "soft_mae") if self.preset.mae_rule == "binary" else ("mae",)
        return ("name", *_ROW_HEAD, *mae, *_ROW_TAIL)

    def per_image(self) -> list[dict[str, Any]]:
        """Return one dict per image.

        Returns
        -------
        list of dict
            One new dict per image, in the order the images were added. Keys: ``name, height, width,
            acc, iou, max_fbeta, mean_fbeta, adaptive_fbeta, mae, s_measure, max_e_measure,
            mean_e_measure, adaptive_e_measure, weighted_fbeta, empty_gt, empty_pred`` (plus ``soft_mae``
            after ``mae`` under ``mae_rule="binary"``).

            ``max_fbeta`` here is the image's own best F over the thresholds. ``iou`` is NaN for an empty
            union under presets with ``iou_empty_union`` "nan"/"skip". ``s_measure`` is NaN when the GT
            centroid falls on the last row or column (an empty region block), exactly as PySODMetrics.
            ``empty_gt``: no GT foreground under the F rule; ``empty_pred``: nothing above
            ``pred_threshold``.
        """
        return [dict(r) for r in self._rows]

    def curves(self) -> dict[str, np.ndarray]:
        """Image-averaged curves for a PR / F-threshold plot.

        Returns
        -------
        dict of ndarray, each shape (K,)
            ``thresholds`` (ascending; [0, 1] values, or the 8-bit codes 0..255 under ``pysod``),
            ``precision``, ``recall``, ``fbeta``, ``e_measure`` (means over images at each threshold).
        """
        count = max(len(self._rows), 1)
        out = {"thresholds": self.preset.thresholds.copy()}
        out.update({k: v / count for k, v in self._sums.items()})
        return out

    def summary(self) -> dict[str, Any]:
        """Dataset-level values as a plain dict (JSON-ready; NaN where undefined).

        Means are over images (IoU with ``nanmean`` under ``iou_empty_union="skip"``; SelfMask's float32
        running sums for acc, IoU, max F, adaptive F and MAE under ``accumulate="float32"``);
        ``max_fbeta`` follows the preset's ``aggregation``; ``max/mean_e_measure`` come from the
        image-averaged curve.
        For the precision-recall curve use :meth:`curves`.

        Returns
        -------
        dict
            Keys: ``preset, count, empty_gt, empty_pred, acc, iou, max_fbeta, mean_fbeta, adaptive_fbeta,
            mae, s_measure, max_e_measure, mean_e_measure, adaptive_e_measure, weighted_fbeta`` (None when
            not computed), ``soft_mae`` (only under ``mae_rule="binary"``), ``beta_sq`` (the effective
            β²). With no image added, every metric is NaN.
        """
        p = self.preset
        rows = self._rows
        n = len(rows)
        out: dict[str, Any] = {
            "preset": p.name,
            "count": n,
            "empty_gt": int(sum(r["empty_gt"] for r in rows)),
            "empty_pred": int(sum(r["empty_pred"] for r in rows)),
        }
        if n == 0:
            out.update(dict.fromkeys(SUMMARY_METRICS, float("nan")))
            if p.mae_rule == "binary":
                out["soft_mae"] = float("nan")
            out["beta_sq"] = p.effective_beta_sq
            return out
        f32 = p.accumulate == "float32"
        curves = self.curves()
        ious = np.array([r["iou"] for r in rows], np.float64)
        if p.iou_empty_union == "skip":
            out_iou = float(np.nanmean(ious)) if np.isfinite(ious).any() else float("nan")
        else:
            out_iou = mean_over_images(list(ious), f32)
        means = {
            key: mean_over_images([r[key] for r in rows], f32 and key in _FLOAT32_KEYS) for key in _MEAN_KEYS
        }
        if p.aggregation == "mean_then_max":
            max_fbeta = float(curves["fbeta"].max())
        else:
            max_fbeta = mean_over_images([r["max_fbeta"] for r in rows], f32)
        out.update(
            acc=means["acc"],
            iou=out_iou,
            max_fbeta=max_fbeta,
            mean_fbeta=float(curves["fbeta"].mean()),
            adaptive_fbeta=means["adaptive_fbeta"],
            mae=means["mae"],
            s_measure=means["s_measure"],
            max_e_measure=float(curves["e_measure"].max()),
            mean_e_measure=float(curves["e_measure"].mean()),
            adaptive_e_measure=means["adaptive_e_measure"],
            weighted_fbeta=float(np.mean([r["weighted_fbeta"] for r in rows])) if self.weighted_f else None,
        )
        if p.mae_rule == "binary":
            out["soft_mae"] = float(np.mean([r["soft_mae"] for r in rows]))
        out["beta_sq"] = p.effective_beta_sq
        return out


SaliencyEvaluator = Evaluator
