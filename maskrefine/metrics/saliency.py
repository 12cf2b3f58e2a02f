"""Saliency metrics as pure functions of counts or of arrays (docs/evaluation.md).

Count-based functions accept scalars or arrays (one entry per threshold) and never loop in Python.
Array-based functions (:func:`mae`, :func:`s_measure`, :func:`e_measure`, :func:`weighted_fbeta`) take a
float prediction in [0, 1] and a bool GT of the same shape and follow PySODMetrics' formulas.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import cv2
import numpy as np
import numpy.typing as npt
from scipy import ndimage

__all__ = [
    "EPS",
    "precision_recall",
    "fbeta",
    "iou_from_counts",
    "accuracy_from_counts",
    "e_measure_from_counts",
    "ssim_from_moments",
    "s_object_score",
    "mae",
    "s_measure",
    "e_measure",
    "weighted_fbeta",
]

EPS = float(np.spacing(1))

#: A pixel count, or an array of counts (one per threshold or block); NumPy integer scalars included.
_Count: TypeAlias = "np.ndarray | int | np.integer[Any]"
#: A block moment: an array over blocks or one scalar.
_Moment: TypeAlias = "npt.NDArray[np.float64] | float | np.integer[Any]"


def _ratio(num: _Count, den: _Count, empty: float | None, eps: float) -> npt.NDArray[np.float64]:
    num = np.asarray(num, np.float64)
    den = np.asarray(den, np.float64)
    if empty is None and eps > 0:
        return num / (den + eps)
    out = np.zeros(np.broadcast(num, den).shape, np.float64)
    np.divide(num, den, out=out, where=den > 0)
    if empty is not None:
        out = np.where(den > 0, out, float(empty))
    return out


def precision_recall(
    tp: _Count,
    n_pred: _Count,
    n_gt: _Count,
    *,
    empty_pred_precision: float | None = None,
    empty_gt_recall: float | None = None,
    eps: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Precision ``tp / n_pred`` and recall ``tp / n_gt`` with an explicit empty-mask rule.

    Parameters
    ----------
    tp, n_pred, n_gt : int or ndarray
        True positives, predicted positives, GT positives (broadcastable).
    empty_pred_precision, empty_gt_recall : float or None
        Value when the denominator is 0 (TokenCut: 1). ``None`` with ``eps = 0``: 0 (PySOD).
    eps : float
        With ``None`` rules, added to the denominators (SelfMask: 1e-7).

    Returns
    -------
    precision, recall : ndarray of float64

    Examples
    --------
    >>> precision_recall(0, 0, 5, empty_pred_precision=1.0)
    (array(1.), array(0.))
    """
    p = _ratio(tp, n_pred, empty_pred_precision, eps)
    r = _ratio(tp, n_gt, empty_gt_recall, eps)
    return p, r


def fbeta(precision: np.ndarray, recall: np.ndarray, beta_sq: float = 0.3, eps: float = 0.0) -> np.ndarray:
    """F-measure ``(1 + β²) p r / (β² p + r + eps)``; 0 where the numerator is 0.

    Parameters
    ----------
    precision, recall : ndarray
    beta_sq : float
        β² (0.3 in saliency detection).
    eps : float
        Added to the denominator (SelfMask 1e-7).

    Returns
    -------
    ndarray of float64

    Examples
    --------
    >>> float(fbeta(np.array(0.5), np.array(0.5), beta_sq=1.0))
    0.5
    """
    p = np.asarray(precision, np.float64)
    r = np.asarray(recall, np.float64)
    num = (1.0 + beta_sq) * p * r
    den = beta_sq * p + r + eps
    out = np.zeros(np.broadcast(num, den).shape, np.float64)
    np.divide(num, den, out=out, where=num != 0)
    return out


def iou_from_counts(
    tp: _Count,
    n_pred: _Count,
    n_gt: _Count,
    *,
    eps: float = 0.0,
    empty_union: float = np.nan,
    dtype: type[np.floating] = np.float64,
) -> np.ndarray:
    """IoU ``tp / (n_pred + n_gt - tp + eps)``; ``empty_union`` where the union is 0 and ``eps`` is 0.

    With ``dtype=np.float32`` the counts, ``eps`` and the division are float32, as in a torch evaluator
    that divides float32 count tensors (TokenCut, MOVE); the result is returned as float64.

    Examples
    --------
    >>> float(iou_from_counts(2, 3, 3))
    0.5
    """
    tp64 = np.asarray(tp, np.float64)
    union = (np.asarray(n_pred, np.float64) + np.asarray(n_gt, np.float64) - tp64).astype(dtype)
    tp = tp64.astype(dtype)
    if eps > 0:
        return np.asarray(tp / (union + dtype(eps)), np.float64)
    out = np.full(np.broadcast(tp, union).shape, empty_union, dtype)
    np.divide(tp, union, out=out, where=union > 0)
    return out.astype(np.float64)


def accuracy_from_counts(
    tp: _Count, n_pred: _Count, n_gt: _Count, n: int, *, dtype: type[np.floating] = np.float64
) -> np.ndarray:
    """Pixel accuracy ``(tp + tn) / n`` with ``tn = n - n_pred - n_gt + tp``.

    With ``dtype=np.float32`` the count of agreeing pixels is divided by ``n`` in float32 (the mean of a
    float32 0/1 tensor, TokenCut and MOVE); the result is returned as float64.

    Examples
    --------
    >>> float(accuracy_from_counts(1, 2, 1, 4))
    0.75
    """
    tp = np.asarray(tp, np.float64)
    agree = 2.0 * tp + n - np.asarray(n_pred, np.float64) - np.asarray(n_gt, np.float64)
    return np.asarray(agree.astype(dtype) / dtype(n), np.float64)


def e_measure_from_counts(tp: _Count, n_pred: _Count, n_gt: int, n: int) -> np.ndarray:
    """Enhanced-alignment measure (Fan et al. 2018) of binarised maps from their counts.

    For binary maps the alignment term takes only four values (one per TP/FP/FN/TN cell), so the
    pixel sum is four products of a count with a closed-form value: ξ = 2ab / (a² + b² + eps) with
    a, b the demeaned prediction / GT values of the cell, φ = (ξ + 1)² / 4, E = Σφ / (n - 1 + eps).
    Empty GT: E = #predicted background / (n - 1 + eps); full GT: #predicted foreground / (n - 1 + eps).

    Parameters
    ----------
    tp, n_pred : int or ndarray
        Per threshold.
    n_gt, n : int
        GT foreground count and pixel count.

    Returns
    -------
    ndarray of float64

    Examples
    --------
    >>> round(float(e_measure_from_counts(2, 2, 2, 4)), 6)
    1.333333
    """
    tp = np.asarray(tp, np.float64)
    pp = np.asarray(n_pred, np.float64)
    denom = n - 1 + EPS
    if n_gt == 0:
        return (n - pp) / denom
    if n_gt == n:
        return pp / denom
    fp = pp - tp
    fn = n_gt - tp
    tn = (n - pp) - fn
    mp = pp / n
    mg = n_gt / n
    total = np.zeros(np.broadcast(tp, pp).shape, np.float64)
    for count, a, b in ((tp, 1.0 - mp, 1.0 - mg), (fp, 1.0 - mp, -mg), (fn, -mp, 1.0 - mg), (tn, -mp, -mg)):
        align = 2.0 * (a * b) / (a**2 + b**2 + EPS)
        total = total + (align + 1.0) ** 2 / 4.0 * count
    return total / denom


def ssim_from_moments(
    n: _Moment,
    sum_x: _Moment,
    css_x: _Moment,
    n_fg: _Moment,
    sum_x_fg: _Moment,
) -> npt.NDArray[np.float64]:
    """S-measure region score of one block from its moments (vectorised over blocks).

    Parameters
    ----------
    n : ndarray
        Pixels in the block.
    sum_x : ndarray
        Sum of the prediction.
    css_x : ndarray
        Central sum of squares of the prediction, Σ(x - x̄)².
    n_fg : ndarray
        GT foreground pixels in the block.
    sum_x_fg : ndarray
        Sum of the prediction over the GT foreground of the block.

    Returns
    -------
    ndarray
        ``4 x̄ ȳ σxy / ((x̄² + ȳ²)(σx² + σy²) + eps)``; 1 when numerator and denominator are 0, 0 when
        only the numerator is; NaN for an empty block (as PySODMetrics).
    """
    n = np.asarray(n, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        x = sum_x / n
        y = n_fg / n
        d = n - 1 + EPS
        sx = css_x / d
        sy = (n_fg * (1.0 - y) ** 2 + (n - n_fg) * y**2) / d
        sxy = ((1.0 - y) * (sum_x_fg - n_fg * x) - y * ((sum_x - sum_x_fg) - (n - n_fg) * x)) / d
        alpha = 4.0 * x * y * sxy
        beta = (x**2 + y**2) * (sx + sy)
        score = np.where(alpha != 0, alpha / (beta + EPS), np.where(beta == 0, 1.0, 0.0))
    return np.where(n > 0, score, np.nan)


def s_object_score(n: float, mean: float, css: float) -> float:
    """S-measure object score ``2μ / (μ² + 1 + σ + eps)`` with σ the sample std (ddof 1; 0 for one pixel)."""
    std = np.sqrt(css / (n - 1)) if n > 1 else 0.0
    return 2.0 * mean / (mean**2 + 1.0 + std + EPS)


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(pred, np.ndarray) or not np.issubdtype(pred.dtype, np.floating):
        raise TypeError(f"`pred` must be a float ndarray in [0, 1]; got {getattr(pred, 'dtype', type(pred))}")
    if not isinstance(gt, np.ndarray) or gt.dtype != bool:
        raise TypeError(f"`gt` must be a bool ndarray; got {getattr(gt, 'dtype', type(gt))}")
    if pred.ndim != 2 or pred.shape != gt.shape:
        raise ValueError(f"`pred` and `gt` must be 2-D of the same shape; got {pred.shape} and {gt.shape}")
    return pred.astype(np.float64, copy=False), gt


def mae(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean absolute error between a [0, 1] prediction and a bool GT.

    Examples
    --------
    >>> mae(np.array([[0.0, 0.5]]), np.array([[False, True]]))
    0.25
    """
    pred, gt = _check_pair(pred, gt)
    return float(np.mean(np.abs(pred - gt)))


def s_measure(pred: np.ndarray, gt: np.ndarray, alpha: float = 0.5) -> float:
    """Structure measure (Fan et al. 2017), PySODMetrics' formulation.

    Parameters
    ----------
    pred : ndarray of float, shape (H, W)
        Prediction in [0, 1].
    gt : ndarray of bool, shape (H, W)
    alpha : float
        Weight of the object score.

    Returns
    -------
    float

    Notes
    -----
    mean(G) = 0: 1 - mean(pred); mean(G) = 1: mean(pred); else max(0, α S_object + (1 - α) S_region), the
    region score splitting at the GT centroid (rounded half-to-even, +1 as in MATLAB) into 4 blocks.

    Examples
    --------
    >>> g = np.zeros((4, 4), bool); g[1:3, 1:3] = True
    >>> round(s_measure(g.astype(float), g), 6)
    1.0
    """
    pred, gt = _check_pair(pred, gt)
    h, w = gt.shape
    n = h * w
    n_fg = int(np.count_nonzero(gt))
    if n_fg == 0:
        return float(1.0 - pred.mean())
    if n_fg == n:
        return float(pred.mean())
    y = n_fg / n
    x_fg = pred[gt]
    x_bg = pred[~gt]
    m_fg = x_fg.mean()
    m_bg = 1.0 - x_bg.mean()
    obj = s_object_score(x_fg.size, m_fg, np.sum((x_fg - m_fg) ** 2)) * y + s_object_score(
        x_bg.size, m_bg, np.sum(((1.0 - x_bg) - m_bg) ** 2)
    ) * (1 - y)
    rows, cols = np.nonzero(gt)
    cy = int(np.round(rows.mean())) + 1
    cx = int(np.round(cols.mean())) + 1
    blocks = [
        (slice(0, cy), slice(0, cx)),
        (slice(0, cy), slice(cx, w)),
        (slice(cy, h), slice(0, cx)),
        (slice(cy, h), slice(cx, w)),
    ]
    weights = [cx * cy / n, cy * (w - cx) / n, (h - cy) * cx / n]
    weights.append(1 - sum(weights))
    region = 0.0
    for (rs, cs), wt in zip(blocks, weights, strict=True):
        xb = pred[rs, cs]
        gb = gt[rs, cs]
        nb = xb.size
        sb = xb.sum() if nb else 0.0
        css = np.sum((xb - sb / nb) ** 2) if nb else 0.0
        region += float(ssim_from_moments(nb, sb, css, np.count_nonzero(gb), xb[gb].sum())) * wt
    return float(max(0.0, alpha * obj + (1 - alpha) * region))


def e_measure(pred: np.ndarray, gt: np.ndarray, threshold: float) -> float:
    """E-measure of ``pred >= threshold`` against ``gt`` (see :func:`e_measure_from_counts`).

    Examples
    --------
    >>> g = np.array([[True, False]])
    >>> round(e_measure(g.astype(float), g, 0.5), 6)
    2.0
    """
    pred, gt = _check_pair(pred, gt)
    b = pred >= threshold
    return float(e_measure_from_counts(np.count_nonzero(b & gt), np.count_nonzero(b), int(gt.sum()), gt.size))


def _matlab_gaussian(size: int = 7, sigma: float = 5.0) -> np.ndarray:
    half = (size - 1) / 2.0
    ax = np.arange(-half, half + 1)
    k = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2.0 * sigma * sigma))
    k[k < np.finfo(np.float64).eps * k.max()] = 0.0
    return k / k.sum()


_GAUSS_7_5 = _matlab_gaussian()


def weighted_fbeta(pred: np.ndarray, gt: np.ndarray, beta_sq: float = 1.0) -> float:
    """Weighted F-measure (Margolin et al. 2014), the MATLAB code as PySODMetrics ports it.

    Parameters
    ----------
    pred : ndarray of float, shape (H, W)
        Prediction in [0, 1].
    gt : ndarray of bool, shape (H, W)
    beta_sq : float
        β² (1 in the original).

    Returns
    -------
    float
        0 when the GT is empty.

    Notes
    -----
    E = |pred - G|; for background pixels the error of the nearest foreground pixel (Euclidean distance
    transform) is used; E is smoothed by a 7×7 Gaussian (σ = 5, MATLAB ``fspecial``, zero border), the
    smaller of E and its smoothing is kept inside G; background errors are weighted by
    B = 2 - exp(ln(0.5)/5 · dist); R = 1 - mean(Ew over G), P = TPw / (TPw + FPw + eps).

    Examples
    --------
    >>> g = np.zeros((8, 8), bool); g[2:6, 2:6] = True
    >>> round(weighted_fbeta(g.astype(float), g), 6)
    1.0
    """
    pred, gt = _check_pair(pred, gt)
    if not gt.any():
        return 0.0
    bg = ~gt
    dist, idx = ndimage.distance_transform_edt(bg, return_indices=True)
    err = np.abs(pred - gt)
    err_t = err[idx[0], idx[1]]  # equals err on the foreground (a pixel's nearest foreground is itself)
    ea = cv2.filter2D(err_t, cv2.CV_64F, _GAUSS_7_5, borderType=cv2.BORDER_CONSTANT)
    min_e = np.where(gt & (ea < err), ea, err)
    weights = np.where(bg, 2.0 - np.exp(np.log(0.5) / 5.0 * dist), 1.0)
    ew = min_e * weights
    ew_fg = ew[gt]
    tpw = ew_fg.size - ew_fg.sum()
    fpw = ew[bg].sum()
    r = 1.0 - ew_fg.mean()
    p = tpw / (tpw + fpw + EPS)
    return float((1.0 + beta_sq) * r * p / (r + beta_sq * p + EPS))
