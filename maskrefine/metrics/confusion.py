"""Confusion counts: at one threshold, or at all thresholds at once from cumulative histograms.

The curve counts never loop over thresholds in Python: each pixel gets a *level* (how many thresholds
it passes), a histogram of levels is taken per GT class, and reversed cumulative sums give, for every
threshold at once, the number of predicted-foreground pixels in the GT foreground (TP) and in total.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from maskrefine._checks import check_choice, check_int_range, plain_ndarray, short_repr

__all__ = ["confusion_counts", "threshold_levels", "curve_counts", "MAX_THRESHOLDS"]

#: Most thresholds a curve may have (a preset's ``n_thresholds``, :func:`curve_counts`'s K): the
#: references use 255 or 256; each threshold costs two int64 counts per histogram.
MAX_THRESHOLDS = 1 << 20


def _as_2d(array: object, name: str) -> np.ndarray:
    array = plain_ndarray(array)  # a masked array: its data is what is counted
    if not isinstance(array, np.ndarray):
        raise TypeError(f"`{name}` must be a NumPy array; got {type(array).__name__}")
    if array.ndim != 2:
        raise ValueError(f"`{name}` must be 2-D (H, W); got shape {array.shape}")
    return array


def _as_mask(array: object, name: str) -> np.ndarray:
    """``array`` as a 2-D bool map; other dtypes are refused (NaN or 0.1 would count as foreground)."""
    mask = _as_2d(array, name)
    if mask.dtype != np.bool_:
        raise TypeError(f"`{name}` must be a bool array (foreground = True); got dtype {mask.dtype}")
    return mask


def confusion_counts(pred_fg: np.ndarray, gt_fg: np.ndarray) -> dict[str, int]:
    """TP, FP, FN, TN of two binary maps.

    Parameters
    ----------
    pred_fg, gt_fg : ndarray of bool, shape (H, W)
        Predicted and true foreground.

    Returns
    -------
    dict
        ``{"tp", "fp", "fn", "tn"}`` as Python ints.

    Examples
    --------
    >>> confusion_counts(np.array([[1, 1, 0]], bool), np.array([[1, 0, 0]], bool))
    {'tp': 1, 'fp': 1, 'fn': 0, 'tn': 1}
    """
    pred_fg = _as_mask(pred_fg, "pred_fg")
    gt_fg = _as_mask(gt_fg, "gt_fg")
    if pred_fg.shape != gt_fg.shape:
        raise ValueError(
            f"`pred_fg` and `gt_fg` must have the same shape; got {pred_fg.shape} and {gt_fg.shape}"
        )
    n_pred = int(np.count_nonzero(pred_fg))
    n_gt = int(np.count_nonzero(gt_fg))
    tp = int(np.count_nonzero(pred_fg & gt_fg))
    return {"tp": tp, "fp": n_pred - tp, "fn": n_gt - tp, "tn": pred_fg.size - n_pred - n_gt + tp}


def threshold_levels(values: np.ndarray, thresholds: np.ndarray, op: Literal[">", ">="] = ">") -> np.ndarray:
    """Count the thresholds each value passes: pixel i is foreground at threshold k iff ``k < level[i]``.

    Parameters
    ----------
    values : ndarray of float
        Prediction values.
    thresholds : ndarray of float, shape (K,)
        Ascending thresholds.
    op : {">", ">="}
        ``value > t`` or ``value >= t``.

    Returns
    -------
    ndarray of int64, same shape as ``values``, values in 0..K.

    Raises
    ------
    TypeError, ValueError
        Values or thresholds that are not finite real numbers, thresholds that are not 1-D and
        ascending, an ``op`` other than ``">"`` and ``">="``.
    """
    op_name = check_choice(op, (">", ">="), "op")
    x = _finite_reals(values, "values")
    t = _finite_reals(thresholds, "thresholds")
    if t.ndim != 1 or t.size == 0 or (t.size > 1 and bool(np.any(np.diff(t) < 0))):
        raise ValueError(f"`thresholds` must be a non-empty ascending 1-D array; got shape {t.shape}")
    side: Literal["left", "right"] = "left" if op_name == ">" else "right"
    return np.searchsorted(t, x, side=side)


def _finite_reals(array: object, name: str) -> np.ndarray:
    """``array`` as float64 when it holds finite real numbers (not bool, not complex), else raise."""
    values = plain_ndarray(array)
    try:
        values = np.asarray(values)
    except (TypeError, ValueError) as exc:  # ragged nesting
        raise TypeError(f"`{name}` must be an array of real numbers; got {short_repr(array)}") from exc
    if values.dtype == np.bool_ or not (
        np.issubdtype(values.dtype, np.integer) or np.issubdtype(values.dtype, np.floating)
    ):
        raise TypeError(f"`{name}` must hold real numbers; got dtype {values.dtype}")
    values = values.astype(np.float64, copy=False)
    if not np.isfinite(values).all():
        raise ValueError(f"`{name}` must be finite; it holds NaN or infinite values")
    return values


def curve_counts(levels: np.ndarray, gt_fg: np.ndarray, n_thresholds: int) -> tuple[np.ndarray, np.ndarray]:
    """TP and predicted-positive counts at every threshold from one histogram per GT class.

    Parameters
    ----------
    levels : ndarray of int, shape (H, W)
        Output of :func:`threshold_levels` (0..n_thresholds).
    gt_fg : ndarray of bool, shape (H, W)
        True foreground.
    n_thresholds : int
        K, in [1, :data:`MAX_THRESHOLDS`].

    Returns
    -------
    tp, n_pred : ndarray of int64, shape (K,)
        Counts of ``pred passes threshold k`` inside the GT foreground and overall.

    Examples
    --------
    >>> lv = threshold_levels(np.array([[0.2, 0.6, 0.9]]), np.array([0.0, 0.5]))
    >>> curve_counts(lv, np.array([[False, True, True]]), 2)
    (array([2, 2]), array([3, 2]))
    """
    levels = _as_2d(levels, "levels")
    gt_fg = _as_mask(gt_fg, "gt_fg")
    n = check_int_range(n_thresholds, "n_thresholds", 1, MAX_THRESHOLDS)
    if gt_fg.shape != levels.shape:
        raise ValueError(
            f"`levels` and `gt_fg` must have the same shape; got {levels.shape} and {gt_fg.shape}"
        )
    if not np.issubdtype(levels.dtype, np.integer) or levels.dtype == np.bool_:
        raise TypeError(f"`levels` must be integers (threshold_levels' output); got dtype {levels.dtype}")
    if levels.size and (int(levels.min()) < 0 or int(levels.max()) > n):
        raise ValueError(
            f"`levels` must lie in 0..n_thresholds = {n}; found [{int(levels.min())}, {int(levels.max())}]"
        )
    k1 = n + 1
    hist = np.bincount(
        (levels.ravel().astype(np.int64) + k1 * gt_fg.ravel().astype(np.int64)), minlength=2 * k1
    ).reshape(2, k1)
    # count(level > k) = reversed cumulative sum, dropping level 0
    above = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1][:, 1:]
    return above[1], above[0] + above[1]
