"""score_image / Evaluator take the [0, 1] tolerance the mask readers take (float32 rounding)."""

from __future__ import annotations

import numpy as np
import pytest

from maskrefine.metrics import PRESETS, Evaluator, score_image


def _pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    gt = np.zeros((40, 48), np.uint8)
    gt[8:30, 10:40] = 255
    pred = np.clip(rng.random((40, 48)) * 0.3 + (gt > 0) * 0.7, 0, 1).astype(np.float32)
    return pred, gt


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_float_rounding_outside_the_unit_range_scores_as_the_clipped_map(preset: str) -> None:
    # A float32 map computed as a probability can end at 1.0000001 or -1e-7. The file readers clip such
    # values (UNIT_TOLERANCE); score_image refused them, so an array scored differently from its .npy.
    pred, gt = _pair()
    nudged = pred.copy()
    nudged[gt > 0] = np.float32(1.0000001)
    nudged[0, 0] = np.float32(-1e-7)
    before = nudged.copy()
    clipped = np.clip(nudged, 0, 1)
    row, curves = score_image(nudged, gt, preset)
    expected_row, expected_curves = score_image(clipped, gt, preset)
    assert row == expected_row
    assert set(curves) == set(expected_curves)
    for key in curves:
        np.testing.assert_array_equal(curves[key], expected_curves[key])
    np.testing.assert_array_equal(nudged, before)  # the input is not modified
    evaluator = Evaluator(preset)
    evaluator.step(nudged, gt)
    reference = Evaluator(preset)
    reference.step(clipped, gt)
    assert evaluator.summary() == reference.summary()


def test_float_gt_within_the_tolerance_is_accepted_and_beyond_it_refused() -> None:
    pred, gt = _pair()
    soft_gt = (gt > 0).astype(np.float32)
    soft_gt[soft_gt > 0] = np.float32(1.0000001)
    row, _ = score_image(pred, soft_gt, "pysod")
    assert row == score_image(pred, (gt > 0).astype(np.float32), "pysod")[0]
    for name, value in (("pred", 1.00001), ("pred", -0.001), ("gt", 1.5)):
        bad_pred = pred.copy() if name == "pred" else pred
        bad_gt = soft_gt.copy() if name == "gt" else gt
        (bad_pred if name == "pred" else bad_gt)[1, 1] = value
        with pytest.raises(ValueError, match=rf"`{name}` must have finite values in \[0, 1\].*within 1e-06"):
            score_image(bad_pred, bad_gt, "pysod")
    nan_pred = pred.copy()
    nan_pred[2, 2] = np.nan
    with pytest.raises(ValueError, match=r"`pred` must have finite values"):
        score_image(nan_pred, gt, "pysod")
