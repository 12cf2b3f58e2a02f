"""The public saliency functions check their arguments (hostile values are refused, naming the argument).

The evaluator calls the unchecked ``_`` versions; on valid input both give the same numbers.
"""

from __future__ import annotations

import numpy as np
import pytest

from maskrefine.metrics import saliency as S

HUGE = 10**5000  # beyond Python's int -> str digit limit: a message must not try to print it


def _pair() -> tuple[np.ndarray, np.ndarray]:
    gt = np.zeros((8, 8), bool)
    gt[2:6, 2:6] = True
    pred = np.clip(gt + np.linspace(-0.2, 0.2, 64).reshape(8, 8), 0, 1)
    return pred, gt


PRED, GT = _pair()

REFUSED = [
    # (call, error type, fragment of the message)
    (lambda: S.s_measure(PRED, GT, alpha=2), ValueError, "`alpha`"),
    (lambda: S.s_measure(PRED, GT, alpha=float("nan")), ValueError, "`alpha`"),
    (lambda: S.s_measure(PRED, GT, alpha="0.5"), TypeError, "`alpha`"),
    (lambda: S.s_measure(PRED * 2, GT), ValueError, "`pred` values must lie in [0, 1]"),
    (lambda: S.mae(PRED - 1, GT), ValueError, "`pred` values must lie in [0, 1]"),
    (lambda: S.mae(np.full((8, 8), np.nan), GT), ValueError, "NaN or infinite"),
    (lambda: S.mae(np.full((8, 8), np.inf), GT), ValueError, "NaN or infinite"),
    (lambda: S.weighted_fbeta(np.zeros((0, 3)), np.zeros((0, 3), bool)), ValueError, "at least one pixel"),
    (lambda: S.e_measure(PRED, GT, "a"), TypeError, "`threshold`"),
    (lambda: S.e_measure(PRED, GT, 1.5), ValueError, "`threshold`"),
    (lambda: S.e_measure(PRED, GT, float("inf")), ValueError, "`threshold`"),
    (lambda: S.weighted_fbeta(PRED, GT, beta_sq=-1), ValueError, "`beta_sq`"),
    (lambda: S.weighted_fbeta(PRED, GT, beta_sq=0), ValueError, "`beta_sq` must be > 0"),
    (lambda: S.weighted_fbeta(PRED, GT, beta_sq=HUGE), ValueError, "`beta_sq`"),
    (lambda: S.precision_recall(5, 3, 6), ValueError, "`tp` must be <= `n_pred`"),
    (lambda: S.precision_recall(5, 6, 3), ValueError, "`tp` must be <= `n_gt`"),
    (lambda: S.precision_recall(-1, 3, 6), ValueError, "`tp`"),
    (lambda: S.precision_recall(1.5, 3, 6), ValueError, "whole numbers"),
    (lambda: S.precision_recall(1, np.array([3.0, np.nan]), 6), ValueError, "`n_pred`"),
    (lambda: S.precision_recall(HUGE, 3, 6), ValueError, "`tp`"),
    (lambda: S.precision_recall(2**53 + 2, 2**53 + 2, 2**53 + 2), ValueError, "2**53"),
    (lambda: S.precision_recall("3", 3, 6), TypeError, "`tp`"),
    (lambda: S.precision_recall(True, 3, 6), TypeError, "`tp`"),
    (lambda: S.precision_recall(None, 3, 6), TypeError, "`tp`"),
    (lambda: S.precision_recall([1, 2], [3, 4, 5], 6), ValueError, "broadcastable"),
    (lambda: S.precision_recall(1, 3, 6, eps=-1e-9), ValueError, "`eps`"),
    (lambda: S.precision_recall(1, 3, 6, eps=1e300), ValueError, "`eps`"),
    (lambda: S.precision_recall(1, 3, 6, empty_pred_precision=2), ValueError, "`empty_pred_precision`"),
    (lambda: S.precision_recall(1, 3, 6, empty_gt_recall="1"), TypeError, "`empty_gt_recall`"),
    (lambda: S.fbeta(2.0, 0.5), ValueError, "`precision`"),
    (lambda: S.fbeta(0.5, np.array([0.5, np.nan])), ValueError, "`recall`"),
    (lambda: S.fbeta(np.array([0.5, 0.5]), np.array([0.5, 0.5, 0.5])), ValueError, "broadcastable"),
    (lambda: S.fbeta(0.5, 0.5, beta_sq=0), ValueError, "`beta_sq`"),
    (lambda: S.fbeta(0.5, 0.5, beta_sq=float("inf")), ValueError, "`beta_sq`"),
    (lambda: S.fbeta(np.array([1, 0]), 0.5), TypeError, "`precision`"),
    (lambda: S.iou_from_counts(1, 2, 2, dtype=np.int32), ValueError, "`dtype`"),
    (lambda: S.iou_from_counts(1, 2, 2, dtype=None), ValueError, "`dtype`"),
    (lambda: S.iou_from_counts(1, 2, 2, empty_union="x"), TypeError, "`empty_union`"),
    (lambda: S.iou_from_counts(1, 2, 2, empty_union=5), ValueError, "`empty_union`"),
    (lambda: S.iou_from_counts(3, 2, 2), ValueError, "`tp` must be <= `n_pred`"),
    (lambda: S.accuracy_from_counts(1, 2, 2, 0), ValueError, "`n`"),
    (lambda: S.accuracy_from_counts(1, 2, 2, 4.0), TypeError, "`n`"),
    (lambda: S.accuracy_from_counts(1, 2, 2, HUGE), ValueError, "`n`"),
    (lambda: S.accuracy_from_counts(1, 5, 2, 4), ValueError, "`n_pred` must be <= `n`"),
    (lambda: S.accuracy_from_counts(1, 3, 3, 4), ValueError, "false positives"),
    (lambda: S.e_measure_from_counts(1, 2, 2.0, 4), TypeError, "`n_gt`"),
    (lambda: S.e_measure_from_counts(1, 2, 5, 4), ValueError, "`n_gt` must be <= `n`"),
    (lambda: S.e_measure_from_counts(1, 2, -1, 4), ValueError, "`n_gt`"),
    (lambda: S.e_measure_from_counts(np.array([1, 3]), np.array([2, 2]), 2, 4), ValueError, "`tp`"),
]


@pytest.mark.parametrize(("call", "error", "fragment"), REFUSED, ids=range(len(REFUSED)))
def test_hostile_arguments_are_refused_naming_the_argument(call, error, fragment) -> None:
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    assert fragment in message
    assert "Exceeds the limit" not in message and len(message) < 400


def test_inputs_are_not_modified() -> None:
    pred, gt = PRED.copy(), GT.copy()
    tp = np.array([1, 2, 3])
    S.s_measure(pred, gt)
    S.weighted_fbeta(pred, gt)
    S.precision_recall(tp, np.array([3, 3, 3]), 6)
    assert np.array_equal(pred, PRED) and np.array_equal(gt, GT) and np.array_equal(tp, [1, 2, 3])


def test_values_at_the_edges_of_the_ranges_are_accepted() -> None:
    assert S.s_measure(PRED, GT, alpha=0) >= 0 and S.s_measure(PRED, GT, alpha=1) >= 0
    assert S.e_measure(PRED, GT, 0.0) > 0 and S.e_measure(PRED, GT, 1.0) > 0
    # float32 rounding just above 1 is tolerated (as the readers and filters tolerate it)
    assert S.mae(np.full((2, 2), 1.0000001, np.float32), np.ones((2, 2), bool)) < 1e-6
    assert float(S.iou_from_counts(0, 0, 0)) != float(S.iou_from_counts(0, 0, 0))  # NaN by default
    assert float(S.iou_from_counts(0, 0, 0, empty_union=1.0)) == 1.0
    assert float(S.iou_from_counts(1, 2, 2, dtype="float32")) == pytest.approx(1 / 3, abs=1e-7)
    assert float(S.accuracy_from_counts(np.uint64(1), np.int8(2), 2, np.int64(4))) == 0.5
    assert float(S.precision_recall(np.float64(2), 4.0, 8)[0]) == 0.5  # whole floats count


@pytest.mark.parametrize("seed", range(5))
def test_checked_and_unchecked_versions_agree(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 1000
    n_gt = int(rng.integers(0, n + 1))
    n_pred = rng.integers(0, n + 1, 256)
    tp = np.minimum(n_pred, rng.integers(0, n_gt + 1, 256))
    tp = np.maximum(tp, n_pred - (n - n_gt))  # false positives fit the background
    p, r = S.precision_recall(tp, n_pred, n_gt, eps=1e-7)
    p0, r0 = S._precision_recall(tp, n_pred, n_gt, empty_pred_precision=None, empty_gt_recall=None, eps=1e-7)
    assert np.array_equal(p, p0) and np.array_equal(r, r0)
    assert np.array_equal(S.fbeta(p, r, 0.3), S._fbeta(p, r, 0.3, 0.0))
    assert np.array_equal(
        S.e_measure_from_counts(tp, n_pred, n_gt, n), S._e_measure_from_counts(tp, n_pred, n_gt, n)
    )
    assert np.array_equal(
        S.iou_from_counts(tp, n_pred, n_gt, dtype=np.float32),
        S._iou_from_counts(tp, n_pred, n_gt, eps=0.0, empty_union=np.nan, dtype=np.float32),
        equal_nan=True,
    )
    assert np.array_equal(
        S.accuracy_from_counts(tp, n_pred, n_gt, n), S._accuracy_from_counts(tp, n_pred, n_gt, n)
    )
