"""Saliency metrics as pure functions of counts or of arrays (docs/evaluation.md).

Count-based functions accept scalars or arrays (one entry per threshold) and never loop in Python.
Every public function checks its arguments (counts are whole numbers in [0, 2**53] that fit one image,
maps are finite and in [0, 1], β², eps, α and thresholds within their ranges) and raises ``TypeError`` or
``ValueError`` naming the argument; the evaluator calls the unchecked ``_`` versions on inputs it
validated itself. Array-based functions (:func:`mae`, :func:`s_measure`, :func:`e_measure`,
:func:`weighted_fbeta`) take a float prediction in [0, 1] and a bool GT of the same shape and follow
PySODMetrics' formulas.
"""

from __future__ import annotations

import numbers
from typing import Any, TypeAlias

import cv2
import numpy as np
import numpy.typing as npt
from scipy import ndimage

from maskrefine._checks import (
    as_float_array,
    check_float_range,
    check_unit_interval,
    plain_ndarray,
    real_to_float,
    short_repr,
)
from maskrefine.metrics.presets import MAX_PRESET_EPS, check_beta_sq

__all__ = [
    "EPS",
    "SELFMASK_S_EPS",
    "precision_recall",
    "fbeta",
    "iou_from_counts",
    "accuracy_from_counts",
    "e_measure_from_counts",
    "MAX_COUNT",
    "mae",
    "s_measure",
    "e_measure",
    "weighted_fbeta",
]

EPS = float(np.spacing(1))
#: The S-measure's guard in SelfMask's ``SMeasure`` (FOUND reuses it): ``beta + 1e-20`` in the region
#: score, ``N - 1 + 1e-20`` and ``... + σ + 1e-20`` in the object score, where PySOD adds :data:`EPS`.
#: With sparse GT blocks beta is ~1e-17, so 2.2e-16 would pull a perfect block's score towards 0.
SELFMASK_S_EPS = 1e-20

#: A pixel count, or an array of counts (one per threshold or block); NumPy integer scalars included.
_Count: TypeAlias = "np.ndarray | int | np.integer[Any]"
#: A block moment: an array over blocks or one scalar.
_Moment: TypeAlias = "npt.NDArray[np.float64] | float | np.integer[Any]"

#: Largest pixel count the count-based functions accept: the formulas run in float64, exact to 2**53.
MAX_COUNT = 2**53


# --------------------------------------------------------------------------------------------------
# argument checks of the public functions (the evaluator calls the unchecked ``_`` versions)


def _counts(value: object, name: str) -> npt.NDArray[np.float64]:
    """``value`` (a count or an array of counts) as float64, or raise naming ``name``.

    A count is a whole number in [0, :data:`MAX_COUNT`]; bool, text and objects are refused.
    """
    if isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_):
        if not 0 <= int(value) <= MAX_COUNT:  # also an int too large for NumPy
            raise ValueError(f"`{name}` must be a pixel count in [0, 2**53]; got {short_repr(value)}")
        return np.asarray(float(value))
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):  # a ragged list
        array = np.asarray(None)
    if array.dtype.kind not in "iuf":
        raise TypeError(
            f"`{name}` must be a pixel count (an integer >= 0) or an array of counts; "
            f"got {short_repr(value)} ({type(value).__name__})"
        )
    counts = array.astype(np.float64)
    if counts.size and not (
        np.isfinite(counts).all()
        and counts.min() >= 0
        and counts.max() <= MAX_COUNT
        and bool(np.all(counts == np.floor(counts)))
    ):
        raise ValueError(
            f"`{name}` must hold pixel counts (whole numbers in [0, 2**53]); found values in "
            f"[{counts.min():.7g}, {counts.max():.7g}]"
            + ("" if np.isfinite(counts).all() else " and NaN/inf")
        )
    return counts


def _check_at_most(small: np.ndarray, large: np.ndarray, small_name: str, large_name: str) -> None:
    """Raise unless ``small <= large`` wherever the two (broadcast) counts meet."""
    try:
        ok = bool(np.all(small <= large))
    except ValueError:
        raise ValueError(
            f"`{small_name}` and `{large_name}` must have broadcastable shapes; got {small.shape} and "
            f"{large.shape}"
        ) from None
    if not ok:
        raise ValueError(f"`{small_name}` must be <= `{large_name}` (a count of a subset of its pixels)")


def _check_eps(eps: object) -> float:
    return check_float_range(eps, "eps", 0.0, MAX_PRESET_EPS)


def _check_rule(value: object, name: str) -> float | None:
    """Return an empty-mask rule (None, or the value in [0, 1] given to an empty denominator), or raise."""
    return None if value is None else check_float_range(value, name, 0.0, 1.0)


def _check_dtype(dtype: object) -> type[np.floating]:
    """``np.float32`` or ``np.float64`` (a type, a dtype or its name), or raise."""
    try:
        kind = np.dtype(dtype)  # type: ignore[call-overload]  # anything; refused below
    except TypeError:
        kind = None
    if kind is None or dtype is None or kind not in (np.float32, np.float64):
        raise ValueError(f"`dtype` must be np.float32 or np.float64; got {short_repr(dtype)}")
    return np.float32 if kind == np.float32 else np.float64


def _unit_values(value: object, name: str) -> npt.NDArray[np.float64]:
    """``value`` (a number or an array) as float64 in [0, 1], or raise naming ``name``."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):
        return np.asarray(check_float_range(value, name, 0.0, 1.0))
    array = as_float_array(value, name, expected="a float in [0, 1] or a float array")
    if array.size:
        check_unit_interval(array, name)
    return array.astype(np.float64, copy=False)


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
    tp_, n_pred_, n_gt_ = _counts(tp, "tp"), _counts(n_pred, "n_pred"), _counts(n_gt, "n_gt")
    _check_at_most(tp_, n_pred_, "tp", "n_pred")
    _check_at_most(tp_, n_gt_, "tp", "n_gt")
    return _precision_recall(
        tp_,
        n_pred_,
        n_gt_,
        empty_pred_precision=_check_rule(empty_pred_precision, "empty_pred_precision"),
        empty_gt_recall=_check_rule(empty_gt_recall, "empty_gt_recall"),
        eps=_check_eps(eps),
    )


def _precision_recall(
    tp: _Count,
    n_pred: _Count,
    n_gt: _Count,
    *,
    empty_pred_precision: float | None,
    empty_gt_recall: float | None,
    eps: float,
) -> tuple[np.ndarray, np.ndarray]:
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
    p, r = _unit_values(precision, "precision"), _unit_values(recall, "recall")
    try:
        np.broadcast(p, r)
    except ValueError:
        raise ValueError(
            f"`precision` and `recall` must have broadcastable shapes; got {p.shape} and {r.shape}"
        ) from None
    return _fbeta(p, r, check_beta_sq(beta_sq), _check_eps(eps))


def _fbeta(precision: np.ndarray, recall: np.ndarray, beta_sq: float, eps: float) -> np.ndarray:
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

    Parameters
    ----------
    tp : int, float or ndarray
        True positives: pixels predicted foreground that are GT foreground.
    n_pred : int, float or ndarray
        Predicted foreground pixels.
    n_gt : int, float or ndarray
        GT foreground pixels.
        The counts are whole numbers (whole floats accepted) in [0, 2**53] with ``tp <= n_pred`` and
        ``tp <= n_gt``; arrays (one entry per threshold) broadcast together.
    eps : float, default 0.0
        Added to the union, in [0, 1e-3]. With ``eps > 0`` an empty union gives 0 and ``empty_union`` is
        not used.
    empty_union : float, default NaN
        The IoU where the union is 0 (both masks empty) and ``eps`` is 0: NaN or a number in [0, 1].
    dtype : {np.float64, np.float32}, default np.float64
        Precision of the division (a type, a dtype or its name).

    Returns
    -------
    ndarray of float64
        The IoU, of the broadcast shape of the counts (0-d for scalar counts).

    Raises
    ------
    TypeError
        A count that is not a number or an array of numbers; ``empty_union`` or ``eps`` not a number.
    ValueError
        A count that is negative, not whole, NaN/inf or above 2**53; ``tp > n_pred`` or ``tp > n_gt``;
        shapes that do not broadcast; ``eps`` outside [0, 1e-3]; ``empty_union`` neither NaN nor in
        [0, 1]; a ``dtype`` other than float32 or float64.

    Examples
    --------
    >>> float(iou_from_counts(2, 3, 3))
    0.5
    """
    tp_, n_pred_, n_gt_ = _counts(tp, "tp"), _counts(n_pred, "n_pred"), _counts(n_gt, "n_gt")
    _check_at_most(tp_, n_pred_, "tp", "n_pred")
    _check_at_most(tp_, n_gt_, "tp", "n_gt")
    if isinstance(empty_union, bool) or not isinstance(empty_union, numbers.Real):
        raise TypeError(f"`empty_union` must be a number in [0, 1] or NaN; got {short_repr(empty_union)}")
    union_value = real_to_float(empty_union)
    if not (np.isnan(union_value) or 0.0 <= union_value <= 1.0):
        raise ValueError(f"`empty_union` must be NaN or a number in [0, 1]; got {short_repr(empty_union)}")
    return _iou_from_counts(
        tp_, n_pred_, n_gt_, eps=_check_eps(eps), empty_union=union_value, dtype=_check_dtype(dtype)
    )


def _iou_from_counts(
    tp: _Count, n_pred: _Count, n_gt: _Count, *, eps: float, empty_union: float, dtype: type[np.floating]
) -> np.ndarray:
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

    Parameters
    ----------
    tp : int, float or ndarray
        True positives: pixels predicted foreground that are GT foreground.
    n_pred : int, float or ndarray
        Predicted foreground pixels.
    n_gt : int, float or ndarray
        GT foreground pixels.
        The counts are whole numbers in [0, 2**53]; arrays (one entry per threshold) broadcast together.
    n : int
        Pixels of the image, in [1, 2**53]; the counts must fit it (``tp <= n_pred <= n``,
        ``tp <= n_gt <= n``, ``n_pred - tp <= n - n_gt``).
    dtype : {np.float64, np.float32}, default np.float64
        Precision of the division (a type, a dtype or its name).

    Returns
    -------
    ndarray of float64
        The accuracy, of the broadcast shape of the counts (0-d for scalar counts).

    Raises
    ------
    TypeError
        A count that is not a number or an array of numbers; ``n`` not an integer.
    ValueError
        A count or ``n`` out of range, counts that cannot come from one image of ``n`` pixels, shapes
        that do not broadcast, a ``dtype`` other than float32 or float64.

    Examples
    --------
    >>> float(accuracy_from_counts(1, 2, 1, 4))
    0.75
    """
    tp_, n_pred_, n_gt_ = _counts(tp, "tp"), _counts(n_pred, "n_pred"), _counts(n_gt, "n_gt")
    n_ = _pixel_total(n)
    _check_consistent(tp_, n_pred_, n_gt_, n_)
    return _accuracy_from_counts(tp_, n_pred_, n_gt_, n_, dtype=_check_dtype(dtype))


def _pixel_total(n: object) -> int:
    """``n`` (the pixel count of the image) as an int in [1, :data:`MAX_COUNT`], or raise."""
    if isinstance(n, bool | np.bool_) or not isinstance(n, numbers.Integral):
        raise TypeError(f"`n` must be the image's pixel count (an integer >= 1); got {short_repr(n)}")
    if not 1 <= int(n) <= MAX_COUNT:
        raise ValueError(f"`n` must be a pixel count in [1, 2**53]; got {short_repr(n)}")
    return int(n)


def _check_consistent(tp: np.ndarray, n_pred: np.ndarray, n_gt: np.ndarray, n: int) -> None:
    """Raise unless the counts can come from one image of ``n`` pixels."""
    _check_at_most(tp, n_pred, "tp", "n_pred")
    _check_at_most(tp, n_gt, "tp", "n_gt")
    _check_at_most(n_pred, np.asarray(float(n)), "n_pred", "n")
    _check_at_most(n_gt, np.asarray(float(n)), "n_gt", "n")
    if not bool(np.all(n_pred - tp <= n - n_gt)):
        raise ValueError("`n_pred - tp` (false positives) must be <= `n - n_gt` (the GT background pixels)")


def _accuracy_from_counts(
    tp: _Count, n_pred: _Count, n_gt: _Count, n: int, *, dtype: type[np.floating] = np.float64
) -> np.ndarray:
    tp = np.asarray(tp, np.float64)
    agree = 2.0 * tp + n - np.asarray(n_pred, np.float64) - np.asarray(n_gt, np.float64)
    return np.asarray(agree.astype(dtype) / dtype(n), np.float64)


def e_measure_from_counts(tp: _Count, n_pred: _Count, n_gt: int, n: int) -> np.ndarray:
    """Enhanced-alignment measure (Fan et al. 2018) of binarised maps from their counts.

    For binary maps the alignment term takes only four values (one per TP/FP/FN/TN cell), so the
    pixel sum is four products of a count with a closed-form value: ξ = 2ab / (a² + b² + eps) with
    a, b the demeaned prediction / GT values of the cell, φ = (ξ + 1)² / 4, E = Σφ / (n - 1 + eps).
    Empty GT: E = #predicted background / (n - 1 + eps); full GT: #predicted foreground / (n - 1 + eps).
    A one-pixel image is refused (ValueError): the division makes it ~4.5e15 in PySODMetrics.

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
    if isinstance(n_gt, bool | np.bool_) or not isinstance(n_gt, numbers.Integral):
        raise TypeError(f"`n_gt` must be the GT foreground count (an integer >= 0); got {short_repr(n_gt)}")
    n_ = _pixel_total(n)
    if n_ < 2:
        raise ValueError(_ONE_PIXEL_E)
    tp_, n_pred_, n_gt_ = _counts(tp, "tp"), _counts(n_pred, "n_pred"), _counts(n_gt, "n_gt")
    _check_consistent(tp_, n_pred_, n_gt_, n_)
    return _e_measure_from_counts(tp_, n_pred_, int(n_gt), n_)


#: Why the E-measure of a one-pixel image is refused (PySODMetrics divides by pixels - 1 + eps: 4.5e15).
_ONE_PIXEL_E = "the E-measure divides by pixels - 1 and is undefined for one pixel; `n` must be >= 2"


def _e_measure_from_counts(tp: _Count, n_pred: _Count, n_gt: int, n: int) -> np.ndarray:
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


def _ssim_from_moments(
    n: _Moment,
    sum_x: _Moment,
    css_x: _Moment,
    n_fg: _Moment,
    sum_x_fg: _Moment,
    eps: float = EPS,
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
    eps : float, default EPS
        The guard added to ``N - 1`` and to the denominator (PySOD :data:`EPS`, SelfMask
        :data:`SELFMASK_S_EPS`).

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
        d = n - 1 + eps
        sx = css_x / d
        sy = (n_fg * (1.0 - y) ** 2 + (n - n_fg) * y**2) / d
        sxy = ((1.0 - y) * (sum_x_fg - n_fg * x) - y * ((sum_x - sum_x_fg) - (n - n_fg) * x)) / d
        alpha = 4.0 * x * y * sxy
        beta = (x**2 + y**2) * (sx + sy)
        score = np.where(alpha != 0, alpha / (beta + eps), np.where(beta == 0, 1.0, 0.0))
    return np.where(n > 0, score, np.nan)


def _s_object_score(n: float, mean: float, css: float, eps: float = EPS) -> float:
    """S-measure object score ``2μ / (μ² + 1 + σ + eps)`` with σ the sample std (ddof 1; 0 for one pixel)."""
    std = np.sqrt(css / (n - 1)) if n > 1 else 0.0
    return 2.0 * mean / (mean**2 + 1.0 + std + eps)


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``pred`` as C-ordered float64 and ``gt`` in C order; raise unless [0, 1] floats, bools, one shape."""
    pred, gt = plain_ndarray(pred), plain_ndarray(gt)  # a masked array's hidden values are computed on
    if not isinstance(pred, np.ndarray) or not np.issubdtype(pred.dtype, np.floating):
        raise TypeError(f"`pred` must be a float ndarray in [0, 1]; got {getattr(pred, 'dtype', type(pred))}")
    if not isinstance(gt, np.ndarray) or gt.dtype != bool:
        raise TypeError(f"`gt` must be a bool ndarray; got {getattr(gt, 'dtype', type(gt))}")
    if pred.ndim != 2 or pred.shape != gt.shape:
        raise ValueError(f"`pred` and `gt` must be 2-D of the same shape; got {pred.shape} and {gt.shape}")
    if pred.size == 0:
        raise ValueError(f"`pred` and `gt` must hold at least one pixel; got shape {pred.shape}")
    pred = as_float_array(pred, "pred")
    check_unit_interval(pred, "pred")
    # C order: NumPy's sums run in memory order, so a Fortran-order pair gave a result 1 ulp apart
    return np.ascontiguousarray(pred, np.float64), np.ascontiguousarray(gt)


def mae(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean absolute error between a [0, 1] prediction and a bool GT.

    Parameters
    ----------
    pred : ndarray of float, shape (H, W)
        Prediction in [0, 1] (values within 1e-6 of the range are accepted), finite.
    gt : ndarray of bool, shape (H, W)
        Ground truth, of the shape of ``pred``.

    Returns
    -------
    float
        ``mean(|pred - gt|)``, computed in float64.

    Raises
    ------
    TypeError
        ``pred`` is not a float ndarray or ``gt`` not a bool ndarray.
    ValueError
        ``pred`` and ``gt`` not 2-D of one shape, or empty; ``pred`` with NaN/inf or values outside
        [0, 1] by more than 1e-6.

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
    alpha = check_float_range(alpha, "alpha", 0.0, 1.0)
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
    obj = _s_object_score(x_fg.size, m_fg, np.sum((x_fg - m_fg) ** 2)) * y + _s_object_score(
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
        region += float(_ssim_from_moments(nb, sb, css, np.count_nonzero(gb), xb[gb].sum())) * wt
    return float(max(0.0, alpha * obj + (1 - alpha) * region))


def e_measure(pred: np.ndarray, gt: np.ndarray, threshold: float) -> float:
    """E-measure of ``pred >= threshold`` against ``gt`` (see :func:`e_measure_from_counts`).

    Parameters
    ----------
    pred : ndarray of float, shape (H, W)
        Prediction in [0, 1] (values within 1e-6 of the range are accepted), finite.
    gt : ndarray of bool, shape (H, W)
        Ground truth, of the shape of ``pred``.
    threshold : float
        Binarisation threshold in [0, 1]: ``pred >= threshold`` is foreground.

    Returns
    -------
    float
        The enhanced-alignment measure of the binarised prediction.

    Raises
    ------
    TypeError
        ``pred`` is not a float ndarray or ``gt`` not a bool ndarray; ``threshold`` is not a number.
    ValueError
        ``pred`` and ``gt`` not 2-D of one shape, or empty; ``pred`` with NaN/inf or values outside
        [0, 1] by more than 1e-6; a one-pixel image (the measure divides by pixels - 1); ``threshold``
        outside [0, 1].

    Examples
    --------
    >>> g = np.array([[True, False]])
    >>> round(e_measure(g.astype(float), g, 0.5), 6)
    2.0
    """
    pred, gt = _check_pair(pred, gt)
    if gt.size < 2:
        raise ValueError(_ONE_PIXEL_E.replace("`n`", "the image"))
    threshold = check_float_range(threshold, "threshold", 0.0, 1.0)
    b = pred >= threshold
    return float(
        _e_measure_from_counts(np.count_nonzero(b & gt), np.count_nonzero(b), int(gt.sum()), gt.size)
    )


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
    return _weighted_fbeta(pred, gt, check_beta_sq(beta_sq))


def _weighted_fbeta(pred: np.ndarray, gt: np.ndarray, beta_sq: float = 1.0) -> float:
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
