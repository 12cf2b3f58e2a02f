"""Properties without an oracle, pure count functions, input validation, the float path vs the 8-bit path."""

from __future__ import annotations

import numpy as np
import pytest

from maskrefine.metrics import (
    PRESETS,
    Evaluator,
    accuracy_from_counts,
    confusion_counts,
    curve_counts,
    e_measure,
    e_measure_from_counts,
    fbeta,
    iou_from_counts,
    mae,
    precision_recall,
    s_measure,
    score_image,
    threshold_levels,
    weighted_fbeta,
)

PERMUTATION_KEYS = (
    "acc",
    "iou",
    "max_fbeta",
    "mean_fbeta",
    "adaptive_fbeta",
    "mae",
    "max_e_measure",
    "mean_e_measure",
    "adaptive_e_measure",
)


def _soft_pair(rng, h=24, w=31):
    gt = np.zeros((h, w), np.uint8)
    gt[5:17, 8:25] = 255
    pred = np.clip(gt * 0.7 + rng.normal(0, 60, (h, w)), 0, 255).astype(np.uint8)
    return pred, gt


@pytest.mark.parametrize("preset", ["tokencut", "move", "selfmask"])
def test_iou_f1_relation_through_evaluator(rng, preset):
    pred, gt = _soft_pair(rng)
    p = PRESETS[preset].replace(beta_sq=1.0, selfmask_bug_compat=False, pr_eps=0.0, iou_eps=0.0)
    row = score_image(pred, gt, p)[0]
    fg = pred / 255.0 > 0.5
    c = confusion_counts(fg, gt > p.gt_threshold_acc)
    f1 = float(fbeta(*precision_recall(c["tp"], c["tp"] + c["fp"], c["tp"] + c["fn"]), beta_sq=1.0))
    assert row["iou"] == pytest.approx(f1 / (2 - f1), abs=1e-12)


@pytest.mark.parametrize("preset", ["tokencut", "move", "selfmask", "pysod"])
def test_joint_pixel_permutation_invariance(rng, preset):
    pred, gt = _soft_pair(rng)
    perm = rng.permutation(pred.size)
    pred2 = pred.ravel()[perm].reshape(pred.shape)
    gt2 = gt.ravel()[perm].reshape(gt.shape)
    a = score_image(pred, gt, preset, weighted_f=False)[0]
    b = score_image(pred2, gt2, preset, weighted_f=False)[0]
    for key in PERMUTATION_KEYS:
        assert b[key] == pytest.approx(a[key], abs=1e-12), key


def test_count_functions_by_hand():
    assert confusion_counts(np.array([[1, 1, 0, 0]], bool), np.array([[1, 0, 1, 0]], bool)) == {
        "tp": 1,
        "fp": 1,
        "fn": 1,
        "tn": 1,
    }
    assert float(accuracy_from_counts(1, 2, 2, 4)) == 0.5
    assert float(iou_from_counts(1, 2, 2)) == pytest.approx(1 / 3)
    p, r = precision_recall(  # an empty GT: no true positive is possible
        np.array([0, 0]), np.array([0, 4]), 0, empty_pred_precision=1.0, empty_gt_recall=1.0
    )
    assert p.tolist() == [1.0, 0.0] and r.tolist() == [1.0, 1.0]
    p, r = precision_recall(0, 0, 0)
    assert float(p) == 0.0 and float(r) == 0.0
    p, r = precision_recall(3, 4, 6, eps=1e-7)
    assert float(p) == pytest.approx(3 / (4 + 1e-7)) and float(r) == pytest.approx(3 / (6 + 1e-7))
    assert float(fbeta(np.array(1.0), np.array(0.5), beta_sq=0.3)) == pytest.approx(1.3 * 0.5 / (0.3 + 0.5))
    assert float(fbeta(np.array(0.0), np.array(0.0))) == 0.0


def test_curve_counts_match_a_threshold_loop(rng):
    x = rng.random((17, 13))
    g = rng.random((17, 13)) > 0.6
    thr = np.arange(255) / 255
    for op in (">", ">="):
        tp, pp = curve_counts(threshold_levels(x, thr, op), g, thr.size)
        for k in (0, 1, 77, 128, 254):
            b = x > thr[k] if op == ">" else x >= thr[k]
            assert tp[k] == np.count_nonzero(b & g) and pp[k] == np.count_nonzero(b)


def test_e_measure_counts_match_pixel_formula(rng):
    x = rng.random((9, 11))
    g = rng.random((9, 11)) > 0.5
    b = x >= 0.4
    bp = b - b.mean()
    gp = g - g.mean()
    align = 2 * bp * gp / (bp**2 + gp**2 + np.spacing(1))
    direct = ((align + 1) ** 2 / 4).sum() / (g.size - 1 + np.spacing(1))
    assert e_measure(x, g, 0.4) == pytest.approx(direct, abs=1e-12)
    assert float(e_measure_from_counts(0, 0, 0, 10)) == pytest.approx(10 / 9)  # empty GT, empty pred


def test_array_functions_perfect_and_errors():
    g = np.zeros((10, 12), bool)
    g[2:7, 3:9] = True
    x = g.astype(np.float64)
    assert mae(x, g) == 0.0
    assert s_measure(x, g) == pytest.approx(1.0)
    assert weighted_fbeta(x, g) == pytest.approx(1.0)
    assert weighted_fbeta(x, np.zeros_like(g)) == 0.0
    with pytest.raises(TypeError, match="`gt` must be a bool ndarray"):
        mae(x, g.astype(np.uint8))
    with pytest.raises(ValueError, match="same shape"):
        s_measure(x, g[:5])


@pytest.mark.parametrize("preset", ["tokencut", "move", "selfmask"])
def test_float_path_equals_8bit_path(rng, preset):
    pred, gt = _soft_pair(rng)
    a = score_image(pred, gt, preset)[0]
    b, cb = score_image(pred.astype(np.float64) / 255.0, gt, preset)
    _, ca = score_image(pred, gt, preset)
    for key, value in a.items():
        if isinstance(value, float):
            assert b[key] == pytest.approx(value, abs=1e-9), key
    np.testing.assert_allclose(cb["fbeta"], ca["fbeta"], atol=1e-12)


def test_uint16_and_bool_inputs(rng):
    pred, gt = _soft_pair(rng)
    a = score_image(pred, gt, "tokencut")[0]
    b = score_image(pred.astype(np.uint16) * 257, gt, "tokencut")[0]
    c = score_image(pred, gt > 0, "tokencut")[0]
    d = score_image(pred, gt / 255.0, "tokencut")[0]
    for key in ("acc", "iou", "max_fbeta", "mae", "s_measure"):
        assert b[key] == pytest.approx(a[key], abs=1e-9)
        assert c[key] == pytest.approx(a[key], abs=1e-12)
        assert d[key] == pytest.approx(a[key], abs=1e-12)
    # pysod quantises float / uint16 predictions to 8 bits first
    e = score_image(pred / 255.0, gt, "pysod")[0]
    f = score_image(pred, gt, "pysod")[0]
    assert e == f


@pytest.mark.parametrize(
    ("pred", "gt", "exc", "match"),
    [
        ([[0.1]], np.zeros((1, 1)), TypeError, r"`pred` must be a NumPy array \(H, W\); got list"),
        (
            np.zeros((2, 2, 3)),
            np.zeros((2, 2)),
            ValueError,
            r"`pred` must be 2-D \(H, W\); got shape \(2, 2, 3\)",
        ),
        (np.zeros((2, 2), np.int32), np.zeros((2, 2)), TypeError, "got dtype int32"),
        (
            np.full((2, 2), 1.5),
            np.zeros((2, 2)),
            ValueError,
            r"finite values in \[0, 1\].*the maximum is 0.5 above 1",
        ),
        (np.full((2, 2), np.nan), np.zeros((2, 2)), ValueError, "finite values"),
        (np.zeros((2, 2)), np.zeros((2, 2), np.int64), TypeError, "`gt` must be uint8"),
        (np.zeros((2, 2)), np.full((2, 2), 255.0), ValueError, r"`gt` must have finite values in \[0, 1\]"),
        (np.zeros((0, 2)), np.zeros((2, 2)), ValueError, "`pred` must not be empty"),
    ],
)
def test_errors_name_the_argument(pred, gt, exc, match):
    with pytest.raises(exc, match=match):
        Evaluator().step(pred, gt)


def test_does_not_modify_input(rng):
    pred, gt = _soft_pair(rng)
    p0, g0 = pred.copy(), gt.copy()
    score_image(pred, gt, "pysod")
    for preset in ("tokencut", "move", "selfmask", "found", "pysod"):
        score_image(pred[:12, :16], gt, preset)  # a 1/2 grid: resized by each preset's rule
    np.testing.assert_array_equal(pred, p0)
    np.testing.assert_array_equal(gt, g0)


def test_evaluator_rows_summary_and_curves(rng):
    ev = Evaluator("tokencut")
    pairs = [_soft_pair(rng) for _ in range(3)]
    for i, (p, g) in enumerate(pairs):
        ev.step(p, g, name=f"img{i}")
    rows = ev.per_image()
    assert [r["name"] for r in rows] == ["img0", "img1", "img2"]
    assert {"empty_gt", "empty_pred", "acc", "iou", "weighted_fbeta"} <= set(rows[0])
    s = ev.summary()
    for key in (
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
        "preset",
        "count",
        "empty_gt",
        "empty_pred",
    ):
        assert key in s
    assert s["count"] == 3 and s["preset"] == "tokencut"
    assert s["acc"] == pytest.approx(np.mean([r["acc"] for r in rows]))
    c = ev.curves()
    assert c["thresholds"].shape == c["precision"].shape == c["recall"].shape == (255,)
    assert s["max_fbeta"] == pytest.approx(c["fbeta"].max())
    assert len(ev) == 3
    assert Evaluator().summary()["count"] == 0
    assert Evaluator(weighted_f=False).step(*pairs[0])["weighted_fbeta"] is None


@pytest.mark.parametrize(("preset", "den"), [("tokencut", 255), ("move", 256)])
def test_8bit_values_pass_thresholds_exactly(preset, den):
    # every 8-bit value once; all GT foreground, so precision = 1 wherever something is predicted and
    # recall(k) = #{v : v/255 > k/den} / 256
    pred = np.arange(256, dtype=np.uint8).reshape(16, 16)
    gt = np.full((16, 16), 255, np.uint8)
    _, curves = score_image(pred, gt, preset)
    # TokenCut's float64 np.arange(0, 1, 1/255) lies one ulp below k/255 for 24 values of k, where v = k
    # passes '>'; MOVE's k/256 are exact
    thresholds = np.arange(0.0, 1.0, 1.0 / den)
    expected = np.array([np.count_nonzero(np.arange(256) / 255.0 > t) for t in thresholds]) / 256
    if den == 255:
        assert (
            np.count_nonzero(
                expected != np.array([np.count_nonzero(np.arange(256) > k) for k in range(255)]) / 256
            )
            == 24
        )
    np.testing.assert_array_equal(curves["recall"], expected)
    # the float path gives the same curve
    _, curves_f = score_image(pred / 255.0, gt, preset)
    np.testing.assert_array_equal(curves_f["recall"], expected)


def test_the_confusion_helpers_refuse_what_they_would_miscount():
    # was: NaN counted as foreground at every threshold (or as True), any op other than ">" read as
    # ">=", unsorted thresholds used, float GT truncated to 0, and numpy errors naming no argument
    v = np.array([[0.2, 0.6]])
    t = np.array([0.0, 0.5])
    cases = [
        (lambda: threshold_levels(v, t, op="<"), ValueError, "`op` must be one of"),
        (lambda: threshold_levels(v, t, op=None), ValueError, "`op` must be one of"),
        (lambda: threshold_levels(np.array([[np.nan, 0.5]]), t), ValueError, "`values` must be finite"),
        (lambda: threshold_levels(v, np.array([1.0, 0.0, 0.5])), ValueError, "ascending"),
        (lambda: threshold_levels(v, np.ones((2, 2))), ValueError, "ascending 1-D"),
        (lambda: threshold_levels("abc", t), TypeError, "`values` must hold real numbers"),
        (lambda: curve_counts(threshold_levels(v, t), [[False, True]], 2), TypeError, "`gt_fg`"),
        (lambda: curve_counts(threshold_levels(v, t), np.array([[0.0, 1.0]]), 2), TypeError, "bool array"),
        (lambda: curve_counts(threshold_levels(v, t) - 3, np.array([[False, True]]), 2), ValueError, "0..n"),
        (lambda: curve_counts(threshold_levels(v, t), np.array([[False, True]]), 1), ValueError, "0..n"),
        (lambda: curve_counts(threshold_levels(v, t), np.array([[True]]), 2), ValueError, "same shape"),
        (lambda: curve_counts(v, np.array([[False, True]]), 2), TypeError, "`levels` must be integers"),
        (lambda: confusion_counts(np.full((2, 2), np.nan), np.ones((2, 2), bool)), TypeError, "bool array"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()
    assert threshold_levels(np.array([[0, 128, 255]], np.uint8), np.array([0.0, 127.5])).tolist() == [
        [0, 2, 2]
    ]
