"""Golden values: the `pysod` preset equals PySODMetrics 1.6.x to 1e-6 on the same 8-bit inputs.

Real data: every bundled method of ../shared/data/sod, subsampled to 50 evenly spaced images per method
(300 pairs in all) to keep the suite fast; `bench/metrics.py` compares all 300 images per method.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from maskrefine.metrics import Evaluator

psm = pytest.importorskip("py_sod_metrics", reason="pysodmetrics not installed: pip install -e '.[bench]'")
cv2 = pytest.importorskip("cv2")

METHODS = ("DSS", "Amulet", "PiCANet", "RBD_frankLeo123", "BSCA_frankLeo123", "GS_frankLeo123")
PER_METHOD = 50
TOL = 1e-6


class _Reference:
    def __init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.fm = psm.Fmeasure()
        self.mae = psm.MAE()
        self.sm = psm.Smeasure()
        self.em = psm.Emeasure()
        self.wfm = psm.WeightedFmeasure()
        self.iou = psm.FmeasureV2(
            metric_handlers={"iou": psm.IOUHandler(with_dynamic=False, with_adaptive=False, with_binary=True)}
        )

    def step(self, pred, gt):
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for m in (self.fm, self.mae, self.sm, self.em, self.wfm, self.iou):
                m.step(pred, gt)


def _compare(pairs):
    ref = _Reference()
    ev = Evaluator("pysod")
    for name, pred, gt in pairs:
        ref.step(pred, gt)
        ev.step(pred, gt, name=name)
    s = ev.summary()
    c = ev.curves()
    fm = ref.fm.get_results()
    em = ref.em.get_results()["em"]
    expected = {
        "max_fbeta": fm["fm"]["curve"].max(),
        "mean_fbeta": fm["fm"]["curve"].mean(),
        "adaptive_fbeta": fm["fm"]["adp"],
        "mae": ref.mae.get_results()["mae"],
        "s_measure": ref.sm.get_results()["sm"],
        "max_e_measure": em["curve"].max(),
        "mean_e_measure": em["curve"].mean(),
        "adaptive_e_measure": em["adp"],
        "weighted_fbeta": ref.wfm.get_results()["wfm"],
    }
    for key, value in expected.items():
        assert s[key] == pytest.approx(float(value), abs=TOL, nan_ok=True), key
    # curves: PySOD's index 0 is threshold 255, ours is ascending
    np.testing.assert_allclose(c["fbeta"][::-1], fm["fm"]["curve"], atol=TOL)
    np.testing.assert_allclose(c["precision"][::-1], fm["pr"]["p"], atol=TOL)
    np.testing.assert_allclose(c["recall"][::-1], fm["pr"]["r"], atol=TOL)
    np.testing.assert_allclose(c["e_measure"][::-1], em["curve"], atol=TOL)
    rows = ev.per_image()
    np.testing.assert_allclose([r["s_measure"] for r in rows], ref.sm.sms, atol=TOL)
    np.testing.assert_allclose([r["mae"] for r in rows], ref.mae.maes, atol=TOL)
    np.testing.assert_allclose([r["weighted_fbeta"] for r in rows], ref.wfm.weighted_fms, atol=TOL)
    np.testing.assert_allclose([r["adaptive_fbeta"] for r in rows], ref.fm.adaptive_fms, atol=TOL)
    np.testing.assert_allclose([r["adaptive_e_measure"] for r in rows], ref.em.adaptive_ems, atol=TOL)
    # binary IoU at pred > 0.5 (FmeasureV2 leaves 0/0 entries undefined: treat them as 0)
    ious = np.array(ref.iou._metric_handlers["iou"].binary_results, dtype=np.float64).ravel()
    union_empty = [r["iou"] == 0.0 and r["empty_pred"] and r["empty_gt"] for r in rows]
    ious[np.array(union_empty, bool)] = 0.0
    np.testing.assert_allclose([r["iou"] for r in rows], ious, atol=TOL)


@pytest.mark.data
@pytest.mark.parametrize("method", METHODS)
def test_matches_pysodmetrics_on_real_predictions(sod_dir, method):
    pred_dir = sod_dir / "predictions" / method
    if not pred_dir.is_dir():
        pytest.skip(f"no predictions for {method} at {pred_dir}")
    names = sorted(p.name for p in (sod_dir / "masks").glob("*.png"))
    idx = np.linspace(0, len(names) - 1, min(PER_METHOD, len(names))).round().astype(int)
    pairs = []
    for i in idx:
        gt = cv2.imread(str(sod_dir / "masks" / names[i]), cv2.IMREAD_GRAYSCALE)
        pred = cv2.imread(str(pred_dir / names[i]), cv2.IMREAD_GRAYSCALE)
        assert gt is not None and pred is not None
        pairs.append((names[i], pred, gt))
    _compare(pairs)


def test_matches_pysodmetrics_on_edge_cases(rng):
    """Empty GT, full GT, constant predictions, all-zero predictions, tiny and odd-sized images."""
    h, w = 23, 37
    soft = np.clip(rng.normal(120, 70, (h, w)), 0, 255).astype(np.uint8)
    gt = np.zeros((h, w), np.uint8)
    gt[4:15, 9:30] = 255
    gt_soft = np.zeros((h, w), np.uint8)
    gt_soft[4:15, 9:30] = 128  # exactly 128: background under GT > 128
    gt_soft[6:12, 12:20] = 129
    corner = np.zeros((h, w), np.uint8)
    corner[-1, -1] = 255  # centroid on the last row/column: an empty S-measure block, NaN in both
    cases = [
        ("soft", soft, gt),
        ("empty_gt", soft, np.zeros((h, w), np.uint8)),
        ("full_gt", soft, np.full((h, w), 255, np.uint8)),
        ("const_pred", np.full((h, w), 77, np.uint8), gt),
        ("zero_pred", np.zeros((h, w), np.uint8), gt),
        ("binary_pred", gt.copy(), gt),
        ("gt_128", soft, gt_soft),
        ("one_pixel_gt", soft, corner),
        ("tiny", soft[:3, :2].copy(), gt[4:7, 9:11].copy()),
    ]
    _compare(cases)


def _flat_block_cases():
    """Constant maps (and maps constant on whole S-measure blocks) against small GT objects.

    PySOD's region score of a block whose prediction is one constant and whose GT is uniform is 1 or 0
    depending on whether ``np.mean`` of the block returns the constant exactly; about half of these
    shapes hit the 0 case (maskrefine gave 1 for all of them before).
    """
    cases = []
    for h in (5, 8, 11, 23):
        for w in (13, 17, 21, 37):
            gt = np.zeros((h, w), np.uint8)
            gt[h - 2, w - 3] = 255
            gt_box = np.zeros((h, w), np.uint8)
            gt_box[h // 2 :, w // 2 :] = 255
            for c in (1, 3, 77, 200):
                cases.append((f"flat{h}x{w}v{c}", np.full((h, w), c, np.uint8), gt))
                three = np.full((h, w), c, np.uint8)
                three[h - 1, w - 1] = 255
                three[h - 2, 0] = 0
                cases.append((f"three{h}x{w}v{c}", three, gt_box))
    return cases


def test_s_measure_of_constant_blocks_matches_pysodmetrics():
    cases = _flat_block_cases()
    ref = psm.Smeasure()
    ev = Evaluator("pysod", weighted_f=False)
    for name, pred, gt in cases:
        with np.errstate(all="ignore"):
            ref.step(pred, gt)
        ev.step(pred, gt, name=name)
    got = np.array([r["s_measure"] for r in ev.per_image()])
    want = np.array(ref.sms, np.float64)
    bad = [c[0] for c, g, r in zip(cases, got, want, strict=True) if abs(g - r) > TOL]
    assert not bad, f"{len(bad)} of {len(cases)} differ, e.g. {bad[:5]}"
    assert ev.summary()["s_measure"] == pytest.approx(float(ref.get_results()["sm"]), abs=TOL)


@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_s_measure_rule_pysod_on_constant_maps_of_either_type(dtype):
    """The S-measure of the other presets follows PySOD's formula for 8-bit and float maps alike.

    A constant map is not min-max normalised by PySOD, so ``tokencut`` (raw v / 255) sees the same values.
    """
    ref = psm.Smeasure()
    ev = Evaluator("tokencut", weighted_f=False)
    for name, pred, gt in _flat_block_cases():
        if name.startswith("flat"):
            with np.errstate(all="ignore"):
                ref.step(pred, gt)
            ev.step(pred if dtype == np.uint8 else pred / 255.0, gt, name=name)
    np.testing.assert_allclose([r["s_measure"] for r in ev.per_image()], ref.sms, rtol=0, atol=TOL)


@pytest.mark.parametrize("value", [7, 33, 97, 128, 200])
def test_adaptive_threshold_ties_follow_pysods_own_mean(value):
    """2·mean equal to a pixel value: PySOD's pairwise NumPy mean decides '>=', not a histogram sum."""
    mismatches = []
    for count in (1, 2, 3, 5, 10):
        n = 2 * (count + 255)
        flat = np.concatenate([np.full(count, value), np.full(value, 255), np.zeros(n - count - value)])
        pred = flat.astype(np.uint8).reshape(2, n // 2)
        gt = np.zeros(pred.shape, np.uint8)
        gt[:, : pred.shape[1] // 3] = 255
        with warnings.catch_warnings():  # PySOD 1.6 announces Fmeasure's removal; it is the reference here
            warnings.simplefilter("ignore", UserWarning)
            fm, em = psm.Fmeasure(), psm.Emeasure()
        fm.step(pred=pred, gt=gt)
        em.step(pred=pred, gt=gt)
        ours = Evaluator("pysod")
        ours.step(pred, gt)
        got = ours.summary()
        for key, ref in (
            ("adaptive_fbeta", fm.get_results()["fm"]["adp"]),
            ("adaptive_e_measure", em.get_results()["em"]["adp"]),
        ):
            if abs(got[key] - float(ref)) > 1e-9:
                mismatches.append((count, key, got[key], float(ref)))
    assert mismatches == []
