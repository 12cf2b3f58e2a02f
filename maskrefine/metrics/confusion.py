"""Confusion counts: at one threshold, or at all thresholds at once from cumulative histograms.

The curve counts never loop over thresholds in Python: each pixel gets a *level* (how many thresholds
it passes), a histogram of levels is taken per GT class, and reversed cumulative sums give, for every
threshold at once, the number of predicted-foreground pixels in the GT foreground (TP) and in total.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = ["confusion_counts", "threshold_levels", "curve_counts"]


def _as_2d(array: object, name: str) -> np.ndarray:
    if not isinstance(array, np.ndarray):
        raise TypeError(f"`{name}` must be a NumPy array; got {type(array).__name__}")
    if array.ndim != 2:
        raise ValueError(f"`{name}` must be 2-D (H, W); got shape {array.shape}")
    return array


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
    pred_fg = _as_2d(pred_fg, "pred_fg").astype(bool, copy=False)
    gt_fg = _as_2d(gt_fg, "gt_fg").astype(bool, copy=False)
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
    """
    side: Literal["left", "right"] = "left" if op == ">" else "right"
    return np.searchsorted(np.asarray(thresholds, np.float64), np.asarray(values, np.float64), side=side)


def curve_counts(levels: np.ndarray, gt_fg: np.ndarray, n_thresholds: int) -> tuple[np.ndarray, np.ndarray]:
    """TP and predicted-positive counts at every threshold from one histogram per GT class.

    Parameters
    ----------
    levels : ndarray of int, shape (H, W)
        Output of :func:`threshold_levels` (0..n_thresholds).
    gt_fg : ndarray of bool, shape (H, W)
        True foreground.
    n_thresholds : int
        K.

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
    k1 = int(n_thresholds) + 1
    hist = np.bincount(
        (levels.ravel().astype(np.int64) + k1 * gt_fg.ravel().astype(np.int64)), minlength=2 * k1
    ).reshape(2, k1)
    # count(level > k) = reversed cumulative sum, dropping level 0
    above = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1][:, 1:]
    return above[1], above[0] + above[1]
