"""Every preset rule on hand-computed tiny cases; the differences between presets show here."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from maskrefine.metrics import PRESETS, Evaluator, ScorePreset, get_preset, score_image

F_HALF = 1.3 * 0.5 / (0.3 * 0.5 + 1.0)  # F(β²=0.3) with p = 0.5, r = 1


def test_registry_default_and_frozen():
    assert set(PRESETS) == {"tokencut", "move", "selfmask", "found", "paper_repo", "pysod"}
    assert get_preset(None).name == "tokencut"
    assert get_preset(PRESETS["move"]) is PRESETS["move"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRESETS["tokencut"].beta_sq = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="`preset` must be one of 'tokencut'"):
        get_preset("tokencutt")
    with pytest.raises(TypeError, match="`preset` must be a preset name"):
        get_preset(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_perfect_prediction_scores_one(name):
    g = np.zeros((40, 40), np.uint8)
    g[10:30, 5:25] = 255
    if name == "paper_repo":
        g = np.zeros((400, 500), np.uint8)
        g[100:300, 150:350] = 255
    ev = Evaluator(name)
    ev.step(g.copy(), g)
    s = ev.summary()
    assert s["acc"] == 1.0
    assert s["iou"] == pytest.approx(1.0, abs=1e-6)
    if name == "paper_repo":
        # the geometry makes the GT soft: F uses GT != 0, so a soft copy of the GT is not perfect there
        return
    assert s["max_fbeta"] == pytest.approx(1.0, abs=1e-6)
    assert s["mae"] == pytest.approx(0.0, abs=1e-12)
    assert s["s_measure"] == pytest.approx(1.0, abs=1e-9)
    assert s["weighted_fbeta"] == pytest.approx(1.0, abs=1e-9)
    n = g.size
    assert s["max_e_measure"] == pytest.approx(n / (n - 1), abs=1e-12)  # E's (N - 1) denominator


def test_thresholds_per_preset():
    assert PRESETS["tokencut"].thresholds.size == 255
    assert PRESETS["tokencut"].thresholds[1] == pytest.approx(1 / 255)
    assert PRESETS["move"].thresholds.size == 256
    assert PRESETS["move"].thresholds[1] == pytest.approx(1 / 256)
    assert PRESETS["selfmask"].thresholds.size == 255
    assert PRESETS["pysod"].thresholds.tolist() == list(range(256))


def test_gt_binarisation_differs_between_presets():
    # GT values 0, 100, 128, 200; prediction: everything foreground.
    gt = np.array([[0, 100, 128, 200]], np.uint8)
    pred = np.full((1, 4), 255, np.uint8)
    acc = {name: score_image(pred, gt, name)[0]["acc"] for name in ("tokencut", "move", "selfmask", "pysod")}
    # tokencut / selfmask: GT > 0 (3 fg); move: GT / 255 > 0.5, i.e. >= 128 (2 fg); pysod: GT > 128 (1 fg)
    assert acc == {"tokencut": 0.75, "move": 0.5, "selfmask": 0.75, "pysod": 0.25}


def test_threshold_sets_and_operators_one_value():
    # Two pixels of value 1/255 on GT foreground (one pixel is refused: the E-measure divides by n - 1):
    # passes k/255 (>) only for k = 0, k/256 (>) for k = 0, 1; pysod: q = 1 passes t = 0, 1 with >=.
    pred = np.array([[1, 1]], np.uint8)
    gt = np.array([[255, 255]], np.uint8)
    counts = {}
    for name in ("tokencut", "move", "pysod"):
        row, curves = score_image(pred, gt, name)
        counts[name] = int(np.count_nonzero(curves["fbeta"] == 1.0))
    assert counts == {"tokencut": 1, "move": 2, "pysod": 2}


def test_mean_fbeta_two_pixels_hand_computed():
    pred = np.array([[100, 200]], np.uint8)
    gt = np.array([[0, 255]], np.uint8)
    # tokencut: k < 100 → both predicted (F_HALF), 100 <= k < 200 → F = 1,
    # k >= 200 (55 values) → nothing predicted: p := 1, r = 0, F = 0
    assert score_image(pred, gt, "tokencut")[0]["mean_fbeta"] == pytest.approx((100 * F_HALF + 100) / 255)
    # move: 100/255 > k/256 for k <= 100 (101 values), 200/255 > k/256 for k <= 200
    assert score_image(pred, gt, "move")[0]["mean_fbeta"] == pytest.approx((101 * F_HALF + 100) / 256)
    # pysod: min-max normalisation → codes 0 and 255; only t = 0 takes both pixels
    assert score_image(pred, gt, "pysod")[0]["mean_fbeta"] == pytest.approx((F_HALF + 255) / 256)
    # pysod MAE on the normalised map is 0; on the raw probability it is (100 + 55) / 255 / 2
    assert score_image(pred, gt, "pysod")[0]["mae"] == 0.0
    assert score_image(pred, gt, "tokencut")[0]["mae"] == pytest.approx((100 + 55) / 255 / 2)


def test_selfmask_beta_compat_switch():
    pred = np.array([[255, 255]], np.uint8)
    gt = np.array([[0, 255]], np.uint8)  # p = 0.5, r = 1 at every threshold
    sm = PRESETS["selfmask"]
    assert sm.effective_beta_sq == pytest.approx(0.09)
    f_bug = score_image(pred, gt, sm)[0]["max_fbeta"]
    f_fix = score_image(pred, gt, sm.replace(selfmask_bug_compat=False))[0]["max_fbeta"]
    assert f_bug == pytest.approx(1.09 * 0.5 / (0.09 * 0.5 + 1 + 1e-7), rel=1e-6)
    assert f_fix == pytest.approx(1.3 * 0.5 / (0.3 * 0.5 + 1 + 1e-7), rel=1e-6)
    assert score_image(pred, gt, sm.replace(selfmask_bug_compat=False, beta_sq=1.0))[0]["max_fbeta"] == (
        pytest.approx(2 * 0.5 / 1.5, rel=1e-6)
    )


def _two_images():
    # Image A is best at low thresholds, image B at high thresholds.
    a_pred = np.array([[60, 60, 0, 0]], np.uint8)
    a_gt = np.array([[255, 255, 0, 0]], np.uint8)
    b_pred = np.array([[250, 30, 30, 30]], np.uint8)
    b_gt = np.array([[255, 0, 0, 0]], np.uint8)
    return [(a_pred, a_gt), (b_pred, b_gt)]


def test_aggregation_mean_then_max_vs_max_then_mean():
    pairs = _two_images()
    tc = PRESETS["tokencut"]
    ev1 = Evaluator(tc)
    ev2 = Evaluator(tc.replace(aggregation="max_then_mean"))
    for p, g in pairs:
        ev1.step(p, g)
        ev2.step(p, g)
    # per-image max: both images reach F = 1 (A for k < 60, B for 30 <= k < 250)
    assert ev2.summary()["max_fbeta"] == pytest.approx(1.0)
    # mean over images first: the curves overlap at F = 1 only for 30 <= k < 60
    assert ev1.summary()["max_fbeta"] == pytest.approx(1.0)
    pairs[1] = (np.array([[250, 70, 70, 70]], np.uint8), pairs[1][1])  # B now perfect only for 70 <= k < 250
    ev1 = Evaluator(tc)
    ev2 = Evaluator(tc.replace(aggregation="max_then_mean"))
    for p, g in pairs:
        ev1.step(p, g)
        ev2.step(p, g)
    b_low = 1.3 * 0.25 / (0.3 * 0.25 + 1)  # B for k < 60: all 4 predicted, p = 1/4, r = 1
    a_high = 0.0  # A for k >= 60: nothing predicted, p := 1, r = 0
    expected = max((1.0 + b_low) / 2, (a_high + 1.0) / 2)  # k < 60 vs 70 <= k < 250 (60..69: A 0, B b_low)
    assert ev1.summary()["max_fbeta"] == pytest.approx(expected)
    assert ev2.summary()["max_fbeta"] == pytest.approx(1.0)
    assert PRESETS["selfmask"].aggregation == "max_then_mean"


def test_empty_masks_rules():
    empty = np.zeros((2, 2), np.uint8)
    # both empty: tokencut p := 1, r := 1 → F = 1, IoU NaN (propagates into the mean)
    row = score_image(empty, empty, "tokencut")[0]
    assert row["max_fbeta"] == 1.0 and math.isnan(row["iou"]) and row["empty_gt"] and row["empty_pred"]
    ev = Evaluator("tokencut")
    ev.step(empty, empty)
    ev.step(np.full((2, 2), 255, np.uint8), np.full((2, 2), 255, np.uint8))
    assert math.isnan(ev.summary()["iou"])
    assert ev.summary()["empty_gt"] == 1 and ev.summary()["empty_pred"] == 1
    # pysod: p = 0, r = 0 → F = 0; IoU 0 (FmeasureV2's undefined entries treated as 0)
    row = score_image(empty, empty, "pysod")[0]
    assert row["max_fbeta"] == 0.0 and row["iou"] == 0.0
    # selfmask: eps 1e-7 → F = 0, IoU 0
    row = score_image(empty, empty, "selfmask")[0]
    assert row["max_fbeta"] == 0.0 and row["iou"] == 0.0
    # move: IoU eps 1e-8 → 0
    assert score_image(empty, empty, "move")[0]["iou"] == 0.0
    # paper_repo: nanmean skips the empty union
    pr = PRESETS["paper_repo"].replace(geometry="gt")
    ev = Evaluator(pr)
    ev.step(empty, empty)
    ev.step(np.array([[255, 255], [0, 0]], np.uint8), np.array([[255, 0], [0, 0]], np.uint8))
    assert ev.summary()["iou"] == pytest.approx(0.5)
    # empty prediction, non-empty GT: tokencut p := 1, r = 0 → F = 0
    assert score_image(empty, np.full((2, 2), 255, np.uint8), "tokencut")[0]["max_fbeta"] == 0.0


def test_paper_repo_two_gt_rules():
    pr = PRESETS["paper_repo"].replace(geometry="gt")
    gt = np.array([[0.0, 0.3, 0.6, 1.0]])  # soft GT as after bilinear resizing
    pred = np.ones((1, 4))
    row, curves = score_image(pred, gt, pr)
    assert row["acc"] == 0.5  # Acc/IoU: GT > 0.5 → 2 foreground pixels
    assert row["iou"] == 0.5
    assert curves["precision"][0] == pytest.approx(0.75)  # F: GT != 0 → 3 foreground pixels
    assert row["max_fbeta"] == pytest.approx(1.3 * 0.75 / (0.3 * 0.75 + 1))


def test_paper_repo_takes_a_320_prediction_as_the_crop_also_for_a_320_gt():
    # was: taken as "at the GT size" and resized to 335 and cropped again, unlike the reference
    from maskrefine.metrics.evaluator import paper_repo_geometry

    gen = np.random.default_rng(3)
    gt = np.zeros((320, 320), np.uint8)
    gt[60:250, 90:300] = 255
    pred = (gen.random((320, 320)) * 255).astype(np.uint8)
    pred[70:240, 100:290] = 240
    row = score_image(pred, gt, "paper_repo")[0]
    gt_crop = paper_repo_geometry(gt)
    assert row == score_image(pred, gt_crop, PRESETS["paper_repo"].replace(geometry="gt"))[0]
    twice = score_image(paper_repo_geometry(pred), gt_crop, PRESETS["paper_repo"].replace(geometry="gt"))[0]
    assert row["iou"] != twice["iou"]  # the old rule


def test_paper_repo_geometry_crops_gt_and_pred():
    gt = np.zeros((400, 600), np.uint8)
    gt[100:300, 200:400] = 255
    row = score_image(gt.copy(), gt, "paper_repo")[0]
    assert (row["height"], row["width"]) == (320, 320)
    row = score_image(np.zeros((320, 320), np.float32), gt, "paper_repo")[0]
    assert (row["height"], row["width"]) == (320, 320)
    with pytest.raises(ValueError, match=r"`pred` must be 320x320 \(the crop\) or the GT size"):
        score_image(np.zeros((100, 100), np.uint8), gt, "paper_repo")


def test_resize_prediction_never_gt():
    gt = np.zeros((4, 4), np.uint8)
    gt[:, 2:] = 255
    binary = np.array([[0, 255], [0, 255]], np.uint8)
    row = score_image(binary, gt, "tokencut")[0]  # auto → nearest for a binary map: exact
    assert (row["height"], row["width"]) == (4, 4)
    assert row["acc"] == 1.0 and row["mae"] == 0.0
    soft = np.array([[0, 200], [0, 255]], np.uint8)
    r_auto = score_image(soft, gt, "tokencut")[0]  # soft → bilinear: values in between appear
    r_near = score_image(soft, gt, PRESETS["tokencut"].replace(resize="nearest"))[0]
    assert r_auto["mae"] != r_near["mae"]
    assert r_near["mae"] == pytest.approx((4 * 55 / 255) / 16)  # a 2x2 block of 200 on GT foreground


def test_custom_preset_validation():
    with pytest.raises(ValueError, match="`threshold_op`"):
        ScorePreset(name="x", threshold_op="<")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`aggregation`"):
        ScorePreset(name="x", aggregation="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`beta_sq` must be > 0"):
        ScorePreset(name="x", beta_sq=0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16])
def test_move_scores_a_float_map_alike_at_any_resolution(dtype):
    # a low-resolution float map was rounded to 8 bits before Pillow's resize (0.5 -> 128 > 0.5: all
    # foreground), while at the GT size it was compared as is (0.5: empty): Acc 0.25 against 0.75
    gt = np.zeros((160, 160), np.uint8)
    gt[40:120, 40:120] = 255
    scale = 65535 if dtype == np.uint16 else 1

    def as_dtype(a):
        return np.rint(a * scale).astype(dtype) if dtype == np.uint16 else a.astype(dtype)

    half = 32768 / 65535 if dtype == np.uint16 else 0.5
    full = score_image(as_dtype(np.full((160, 160), half)), gt, "move", weighted_f=False)[0]
    low = score_image(as_dtype(np.full((10, 10), half)), gt, "move", weighted_f=False)[0]
    for key in ("acc", "iou", "max_fbeta", "mae"):
        assert low[key] == pytest.approx(full[key], abs=1e-7), key
    # a varying float map is resized as a Pillow "F" image, not through 8-bit codes
    ramp = np.linspace(0.2, 0.8, 100, dtype=np.float32).reshape(10, 10)
    row = score_image(ramp, gt, "move", weighted_f=False)[0]
    from maskrefine.metrics.resize import pil_bilinear

    expected = score_image(np.clip(pil_bilinear(ramp, (160, 160)), 0, 1), gt, "move", weighted_f=False)[0]
    assert row["acc"] == expected["acc"] and row["max_fbeta"] == expected["max_fbeta"]
