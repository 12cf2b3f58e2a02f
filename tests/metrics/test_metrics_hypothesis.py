"""Property tests drawn by hypothesis (dev extra); skipped with a reason in the light install."""

from __future__ import annotations

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis not installed: pip install -e '.[dev]'")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from maskrefine.metrics import fbeta, iou_from_counts, precision_recall  # noqa: E402


@given(tp=st.integers(0, 50), fp=st.integers(0, 50), fn=st.integers(0, 50))
@settings(max_examples=200, deadline=None)
def test_iou_equals_f1_over_two_minus_f1(tp, fp, fn):
    p, r = precision_recall(tp, tp + fp, tp + fn)
    f1 = float(fbeta(p, r, beta_sq=1.0))
    iou = float(iou_from_counts(tp, tp + fp, tp + fn, empty_union=0.0))
    assert iou == pytest.approx(f1 / (2 - f1), abs=1e-12)
