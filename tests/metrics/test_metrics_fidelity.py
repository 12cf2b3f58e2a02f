"""Each preset reproduces its reference evaluator before the metric: resizing, dtypes, GT rules (issue 10).

Pillow and torch are the pip-installable references of the resampling rules; tests that need them skip
with a reason when they are absent. The SelfMask/FOUND metric rules are checked against a small float32
torch transcription of their definitions (PROTOCOL §1.2, §9.1), written here from the formulas.
"""

from __future__ import annotations

import numpy as np
import pytest

from maskrefine.metrics import PRESETS, Evaluator, score_image
from maskrefine.metrics.presets import GT_EQUALS_255
from maskrefine.metrics.resize import pil_bilinear, prediction_stride, torch_bilinear, torch_nearest

# --------------------------------------------------------------------------------------------- sizes


@pytest.mark.parametrize(
    ("pred_hw", "gt_hw", "stride"),
    [
        ((200, 300), (200, 300), 1),
        ((13, 19), (200, 300), 16),  # ceil
        ((12, 18), (200, 300), 16),  # floor
        ((25, 38), (200, 300), 8),
        ((100, 150), (200, 300), 2),
        ((300, 200), (200, 300), None),  # transposed
        ((1, 1), (200, 300), None),
        ((400, 600), (200, 300), None),  # larger
        ((13, 30), (200, 300), None),  # other aspect ratio
    ],
)
def test_prediction_stride(pred_hw, gt_hw, stride):
    assert prediction_stride(pred_hw, gt_hw) == stride


@pytest.mark.parametrize("preset", sorted(set(PRESETS) - {"paper_repo"}))
@pytest.mark.parametrize("shape", [(30, 20), (1, 1), (20, 31)])
def test_transposed_or_tiny_prediction_is_refused(preset, shape):
    gt = np.zeros((20, 30), np.uint8)
    gt[5:15, 5:20] = 255
    pred = np.full(shape, 200, np.uint8)
    with pytest.raises(
        ValueError, match=r"`pred` of size .* neither the GT size 20x30 .* uniform down-scale"
    ):
        score_image(pred, gt, preset)


# ------------------------------------------------------------------------------------------ resizing


def _pil():
    return pytest.importorskip("PIL.Image", reason="Pillow not installed: it is the reference of 'move'")


def _torch():
    return pytest.importorskip(
        "torch", reason="torch not installed: it is the reference of 'selfmask'/'found'"
    )


@pytest.mark.parametrize(
    ("src", "dst"),
    [((13, 19), (200, 300)), ((21, 31), (333, 500)), ((400, 300), (335, 251)), ((7, 5), (7, 90))],
)
def test_pil_bilinear_equals_pillow(rng, src, dst):
    image = _pil()
    a = rng.integers(0, 256, src, dtype=np.uint8)
    ref = np.asarray(image.fromarray(a, mode="L").resize(dst[::-1], image.BILINEAR))
    np.testing.assert_array_equal(pil_bilinear(a, dst), ref)
    f = rng.random(src, dtype=np.float32)
    ref_f = np.asarray(image.fromarray(f, mode="F").resize(dst[::-1], image.BILINEAR))
    np.testing.assert_array_equal(pil_bilinear(f, dst), ref_f)


@pytest.mark.parametrize(
    ("src", "dst", "stride"),
    [
        ((13, 19), (200, 300), 16),
        ((25, 38), (200, 300), 8),
        ((50, 75), (200, 300), 4),
        ((15, 22), (200, 300), 14),
    ],
)
def test_torch_rules_equal_torch(rng, src, dst, stride):
    torch = _torch()
    f = rng.random(src, dtype=np.float32)
    t = torch.from_numpy(f)[None, None]
    interp = torch.nn.functional.interpolate
    # upsample by the stride, then crop (SelfMask x4, FOUND x patch, TokenCut's token mask)
    ref = interp(t, scale_factor=stride, mode="bilinear", align_corners=False)[0, 0, : dst[0], : dst[1]]
    np.testing.assert_allclose(torch_bilinear(f, dst, stride), ref.numpy(), rtol=0, atol=1e-6)
    ref_n = interp(t, scale_factor=stride, mode="nearest")[0, 0, : dst[0], : dst[1]]
    np.testing.assert_array_equal(torch_nearest(f, dst, stride), ref_n.numpy())
    # straight to the size (a grid rounded down)
    ref2 = interp(t, size=dst, mode="bilinear", align_corners=False)[0, 0]
    np.testing.assert_allclose(torch_bilinear(f, dst), ref2.numpy(), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(torch_nearest(f, dst), interp(t, size=dst, mode="nearest")[0, 0].numpy())


def _sixteenth_pair(rng):
    gt = np.zeros((200, 300), np.uint8)
    gt[40:150, 60:220] = 255
    pred = rng.integers(0, 256, (13, 19), dtype=np.uint8)
    pred[3:9, 4:14] = 250
    return pred, gt


def test_move_resizes_with_pillow(rng):
    image = _pil()
    pred, gt = _sixteenth_pair(rng)
    up = np.asarray(image.fromarray(pred, mode="L").resize((300, 200), image.BILINEAR))
    row, curves = score_image(pred, gt, "move")
    row_ref, curves_ref = score_image(up, gt, "move")
    assert row == row_ref
    np.testing.assert_array_equal(curves["fbeta"], curves_ref["fbeta"])


@pytest.mark.parametrize("preset", ["selfmask", "found"])
def test_selfmask_found_resize_floats_like_torch(rng, preset):
    torch = _torch()
    pred, gt = _sixteenth_pair(rng)
    x = torch.from_numpy(pred.astype(np.float32) / np.float32(255))[None, None]
    up = torch.nn.functional.interpolate(x, scale_factor=16, mode="bilinear", align_corners=False)[
        0, 0, :200, :300
    ]
    row, _ = score_image(pred, gt, preset)
    row_ref, _ = score_image(up.numpy().clip(0, 1), gt, preset)
    for key in ("acc", "iou", "max_fbeta", "mae", "s_measure", "adaptive_fbeta"):
        assert row[key] == pytest.approx(row_ref[key], abs=1e-6), key
    # never via an 8-bit round trip: the opencv uint8 resize of before gives another number
    import cv2

    up8 = cv2.resize(pred, (300, 200), interpolation=cv2.INTER_LINEAR)
    assert score_image(up8, gt, preset)[0]["max_fbeta"] != row["max_fbeta"]


def test_tokencut_resizes_two_valued_maps_nearest_and_soft_maps_bilinear(rng):
    pred, gt = _sixteenth_pair(rng)
    binary = np.where(pred > 128, 255, 0).astype(np.uint8)
    row, _ = score_image(binary, gt, "tokencut")
    # TokenCut: interpolate(size=(H, W), mode="nearest") stretches the 13x19 grid onto 200x300; the
    # source index is floor(i * float32(h / H)) (written here from torch's definition)
    rows = np.floor(np.arange(200, dtype=np.float32) * np.float32(np.float32(13) / np.float32(200)))
    cols = np.floor(np.arange(300, dtype=np.float32) * np.float32(np.float32(19) / np.float32(300)))
    up = binary[rows.astype(int)][:, cols.astype(int)]
    assert row == score_image(up, gt, "tokencut")[0]
    stride_crop = np.repeat(np.repeat(binary, 16, axis=0), 16, axis=1)[:200, :300]
    assert not np.array_equal(up, stride_crop)  # the rule this replaced: a different map here
    soft_row, _ = score_image(pred, gt, "tokencut")
    up_soft = torch_bilinear(pred.astype(np.float32) / np.float32(255), (200, 300), 16)
    assert soft_row == score_image(np.clip(up_soft, 0, 1), gt, "tokencut")[0]


# ---------------------------------------------------------------------------------------- thresholds


def test_tokencut_value_33_passes_threshold_index_33():
    # np.arange(0, 1, 1/255)[33] is one ulp below 33/255: TokenCut's '>' lets 33/255 pass there
    pred = np.full((4, 4), 33, np.uint8)
    gt = np.full((4, 4), 255, np.uint8)
    _, curves = score_image(pred, gt, "tokencut")
    assert np.arange(0, 1, 1 / 255)[33] < 33 / 255
    assert curves["recall"][33] == 1.0 and curves["recall"][34] == 0.0
    # SelfMask's float32 torch.arange(0, 1, 1/255)[33] equals float32(33/255): no pass
    _, curves_sm = score_image(pred, gt, "selfmask")
    assert curves_sm["recall"][33] == 0.0 and curves_sm["recall"][32] == pytest.approx(1.0, abs=1e-6)
    # v = 32 does not sit on such a threshold under either preset
    _, c32 = score_image(np.full((4, 4), 32, np.uint8), gt, "tokencut")
    assert c32["recall"][32] == 0.0


def _square_gt_and_map(dtype, background):
    """GT with a foreground square; a map that is 1 on it, 0 elsewhere, and ``background`` on a block."""
    gt = np.zeros((40, 50), np.uint8)
    gt[10:30, 15:35] = 255
    pred = np.where(gt > 0, 1.0, 0.0).astype(dtype)
    pred[:5, :5] = background
    return pred, gt


def test_tokencut_compares_in_the_maps_own_float_type():
    # TokenCut runs torch.from_numpy(pred) > split: torch casts the float64 split to the map's dtype.
    # float32(254/255) lies above 254/255 but equals float32(threshold 254): it passes only in float64.
    v32 = np.float32(254) / np.float32(255)
    assert float(v32) > np.arange(0, 1, 1 / 255)[254] and v32 == np.float32(np.arange(0, 1, 1 / 255)[254])
    pred32, gt = _square_gt_and_map(np.float32, v32)
    assert score_image(pred32, gt, "tokencut")[0]["max_fbeta"] == 1.0
    pred64 = pred32.astype(np.float64)  # the same values held in float64: the block passes t_254
    assert score_image(pred64, gt, "tokencut")[0]["max_fbeta"] < 1.0
    # float16: the thresholds are rounded to float16 before the comparison
    pred16, _ = _square_gt_and_map(np.float16, np.float16(0.5))
    _, curves = score_image(pred16, gt, "tokencut")
    ref = np.arange(0, 1, 1 / 255).astype(np.float16)
    passes = np.float16(0.5) > ref
    np.testing.assert_array_equal(curves["precision"] < 1.0, passes)


def test_paper_repo_compares_float32_like_my_fmax():
    # token_metric.my_Fmax compares a float32 tensor with np.arange(0, 1, 1/255): a float32 comparison
    from maskrefine.metrics.evaluator import paper_repo_geometry

    gt = np.zeros((400, 500), np.uint8)
    gt[100:300, 150:350] = 255
    seen = paper_repo_geometry(gt)
    pred = np.where(seen > 0, np.float32(1.0), np.float32(0.0)).astype(np.float32)
    pred[:20, :20] = np.float32(254) / np.float32(255)  # background at 8-bit 254, as ToTensor gives it
    row, curves = score_image(pred, gt, "paper_repo")
    assert row["max_fbeta"] == 1.0
    thr = np.arange(0, 1, 1 / 255).astype(np.float32)
    np.testing.assert_array_equal(curves["precision"] < 1.0, pred[:20, :20].max() > thr)
    np.testing.assert_array_equal(PRESETS["paper_repo"].thresholds, thr.astype(np.float64))


@pytest.mark.parametrize("preset", ["tokencut", "move"])
def test_per_image_accuracy_and_iou_are_float32_ratios(preset):
    # torch.mean of a float32 0/1 tensor and tp.float() / union: float32 divisions (TokenCut, MOVE)
    gt = np.zeros((3, 7), np.uint8)
    gt[0, :3] = 255
    pred = np.zeros((3, 7), np.uint8)
    pred[0, :2] = 255
    pred[2, 6] = 255  # 19 of 21 pixels agree; IoU 2/4
    pred[1, 0] = 255  # 18 of 21 agree; IoU 2/5
    row = score_image(pred, gt, preset)[0]
    assert row["acc"] == float(np.float32(18) / np.float32(21)) and row["acc"] != 18 / 21
    assert row["iou"] == float(np.float32(2) / np.float32(5)) and row["iou"] != 2 / 5
    # SelfMask keeps float64 ratios (rounded only for its float32 sums)
    assert score_image(pred, gt, "selfmask")[0]["acc"] == pytest.approx(18 / 21, abs=1e-15)


def test_selfmask_thresholds_are_torch_float32():
    torch = _torch()
    ref = torch.arange(0, 1, 1 / 255).numpy().astype(np.float64)
    np.testing.assert_array_equal(PRESETS["selfmask"].thresholds, ref)
    np.testing.assert_array_equal(PRESETS["tokencut"].thresholds, np.arange(0, 1, 1 / 255))


# ----------------------------------------------------------------------------------------- GT rules


def test_multilevel_gt_selfmask_vs_found():
    gt = np.zeros((10, 10), np.uint8)
    gt[2:5, 2:8] = 255  # 18 pixels at 255
    gt[6:9, 2:8] = 128  # 18 graded pixels
    pred = np.zeros((10, 10), np.uint8)
    pred[2:5, 2:8] = 255
    sm = score_image(pred, gt, "selfmask")[0]
    fd = score_image(pred, gt, "found")[0]
    # FOUND: GT == 255 -> the prediction is perfect; SelfMask: GT > 0 -> recall 1/2
    assert fd["iou"] == pytest.approx(1.0, abs=1e-6) and fd["acc"] == 1.0
    assert sm["iou"] == pytest.approx(0.5, abs=1e-6) and sm["acc"] == pytest.approx(0.82)
    assert fd["max_fbeta"] - sm["max_fbeta"] > 0.07
    assert GT_EQUALS_255 < 255 and np.nextafter(GT_EQUALS_255, 256) == 255
    # float GT: only 1.0 is foreground under FOUND
    gt_f = np.array([[1.0, np.nextafter(1.0, 0.0), 0.0, 0.5]])
    row = score_image(np.array([[1.0, 1.0, 0.0, 0.0]]), gt_f, "found")[0]
    assert row["iou"] == pytest.approx(0.5, abs=1e-6)


def test_found_mae_is_binary_and_soft_mae_is_kept():
    gt = np.zeros((2, 4), np.uint8)
    gt[0] = 255
    pred = np.array([[0.9, 0.6, 0.4, 0.5], [0.0, 0.2, 0.7, 0.1]], np.float32)
    row = score_image(pred, gt, "found")[0]
    # binary pred > 0.5: [[1,1,0,0],[0,0,1,0]] -> 3 wrong pixels of 8
    assert row["mae"] == pytest.approx(3 / 8)
    soft = np.abs(pred.astype(np.float64) - (gt > 0)).mean()
    assert row["soft_mae"] == pytest.approx(soft, abs=1e-7)
    sm = score_image(pred, gt, "selfmask")[0]
    assert sm["mae"] == pytest.approx(soft, abs=1e-7) and "soft_mae" not in sm
    ev = Evaluator("found")
    ev.step(pred, gt)
    assert ev.summary()["soft_mae"] == pytest.approx(soft, abs=1e-7)
    assert Evaluator("found").summary()["soft_mae"] != Evaluator("found").summary()["soft_mae"]  # NaN


# ------------------------------------------------------------------------ SelfMask / FOUND metric rules


def _selfmask_reference(pred: np.ndarray, gt_fg: np.ndarray) -> dict[str, float]:
    """float32 torch transcription of SelfMask's per-image F-max (β² squared), adaptive F and S-measure."""
    torch = _torch()
    p = torch.from_numpy(pred.astype(np.float32))
    g = torch.from_numpy(gt_fg.astype(np.float32))
    eps, b2 = 1e-7, 0.3**2

    def fmeasure(binary):
        tp = torch.logical_and(binary, g.bool()).sum(dim=(-1, -2))
        prec = tp / (binary.sum(dim=(-1, -2)) + eps)
        rec = tp / (g.sum() + eps)
        return ((1 + b2) * prec * rec) / (b2 * prec + rec + eps)

    thr = torch.arange(0, 1, 1 / 255).view(255, 1, 1)
    fmax = fmeasure(p.unsqueeze(0) > thr).max().item()
    fadp = fmeasure(p > 2 * p.mean()).item()

    def ssim(a, b):
        n = a.numel()
        x, y = a.mean(), b.mean()
        sx = ((a - x) ** 2).sum() / (n - 1 + 1e-20)
        sy = ((b - y) ** 2).sum() / (n - 1 + 1e-20)
        sxy = ((a - x) * (b - y)).sum() / (n - 1 + 1e-20)
        al, be = 4 * x * y * sxy, (x * x + y * y) * (sx + sy)
        return al / (be + 1e-20) if al != 0 else (1.0 if be == 0 else 0.0)

    def obj(values):
        return 2.0 * values.mean() / (values.mean() ** 2 + 1.0 + values.std() + 1e-20)

    y = g.mean()
    if y == 0:
        s = 1.0 - p.mean().item()
    elif y == 1:
        s = p.mean().item()
    else:
        o = y * obj(p[g == 1]) + (1 - y) * obj((1 - p)[g == 0])
        h, w = g.shape
        total = g.sum()
        cx = int(torch.round((g.sum(dim=0) * torch.arange(w).float()).sum() / total))
        cy = int(torch.round((g.sum(dim=1) * torch.arange(h).float()).sum() / total))
        w1 = cx * cy / (h * w)
        w2 = (w - cx) * cy / (h * w)
        w3 = cx * (h - cy) / (h * w)
        w4 = 1 - w1 - w2 - w3
        r = (
            w1 * ssim(p[:cy, :cx], g[:cy, :cx])
            + w2 * ssim(p[:cy, cx:], g[:cy, cx:])
            + w3 * ssim(p[cy:, :cx], g[cy:, :cx])
            + w4 * ssim(p[cy:, cx:], g[cy:, cx:])
        )
        s = max(float(0.5 * o + 0.5 * r), 0.0)
    return {"max_fbeta": fmax, "adaptive_fbeta": fadp, "s_measure": float(s)}


def test_selfmask_rules_equal_float32_transcription(rng):
    for _ in range(20):
        h, w = rng.integers(8, 40, 2)
        gt = np.zeros((h, w), np.uint8)
        r0, c0 = rng.integers(1, h // 2), rng.integers(1, w // 2)
        gt[r0 : r0 + rng.integers(2, h // 2), c0 : c0 + rng.integers(2, w // 2)] = 255
        pred = np.clip(rng.normal(0.3, 0.3, (h, w)) + 0.4 * (gt > 0), 0, 1).astype(np.float32)
        row = score_image(pred, gt, "selfmask")[0]
        ref = _selfmask_reference(pred, gt > 0)
        for key, value in ref.items():
            assert row[key] == pytest.approx(value, abs=1e-6), key


def test_selfmask_s_measure_centroid_differs_from_pysod():
    # a GT whose centroid (row 2, col 2) splits differently with and without MATLAB's +1
    gt = np.zeros((6, 6), np.uint8)
    gt[1:4, 1:4] = 255
    pred = np.zeros((6, 6), np.float32)
    pred[1:4, 1:3] = 1.0
    sm = score_image(pred, gt, "selfmask")[0]["s_measure"]
    assert sm == pytest.approx(_selfmask_reference(pred, gt > 0)["s_measure"], abs=1e-6)
    assert (
        abs(sm - score_image(pred, gt, PRESETS["selfmask"].replace(s_measure_rule="pysod"))[0]["s_measure"])
        > 1e-3
    )


def test_selfmask_adaptive_f_is_strict_and_unclipped():
    gt = np.zeros((4, 4), np.uint8)
    gt[:2] = 255
    zero = np.zeros((4, 4), np.uint8)
    # all-zero map: SelfMask predicts nothing (> 0), PySOD everything (>= 0)
    assert score_image(zero, gt, "selfmask")[0]["adaptive_fbeta"] == 0.0
    assert score_image(zero, gt, "pysod")[0]["adaptive_fbeta"] > 0.0
    # mean above 0.5: 2·mean > 1 predicts nothing under SelfMask (no clip)
    bright = np.full((4, 4), 200, np.uint8)
    assert score_image(bright, gt, "selfmask")[0]["adaptive_fbeta"] == 0.0
    # exactly at 2·mean: strict '>' excludes it (mean 0.25 -> threshold 0.5, value 0.5 not passing)
    half = np.zeros((4, 4), np.float32)
    half[:2] = 0.5
    assert score_image(half, gt, "selfmask")[0]["adaptive_fbeta"] == 0.0
    assert score_image(half, gt, "pysod")[0]["adaptive_fbeta"] > 0.9


def test_selfmask_sums_in_float32(rng):
    ev = Evaluator("selfmask", weighted_f=False)
    for i in range(300):
        gt = np.zeros((9, 9), np.uint8)
        gt[2:7, 1 + i % 3 : 6] = 255
        ev.step(rng.random((9, 9)).astype(np.float32), gt, name=str(i))
    rows = ev.per_image()
    s = ev.summary()
    for key in ("acc", "iou", "max_fbeta", "adaptive_fbeta", "mae"):
        total = np.float32(0)
        for r in rows:
            total = np.float32(total + np.float32(r[key]))
        assert s[key] == float(total / np.float32(len(rows))), key
        assert s[key] == pytest.approx(np.mean([r[key] for r in rows]), abs=1e-6)
    assert s["s_measure"] == np.mean([r["s_measure"] for r in rows])


# ----------------------------------------------------------------------------- golden on real data


@pytest.mark.data
def test_sixteenth_maps_of_real_predictions_resize_like_the_references(sod_dir):
    """Real saliency maps at 1/16 (TokenCut-style token grids): each preset's resize equals its reference."""
    image = _pil()
    torch = _torch()
    import cv2

    names = sorted(p.name for p in (sod_dir / "masks").glob("*.png"))[:: max(1, 300 // 25)]
    pred_dir = sod_dir / "predictions" / "PiCANet"
    if not pred_dir.is_dir():
        pytest.skip(f"no predictions at {pred_dir}")
    ev = {k: Evaluator(k, weighted_f=False) for k in ("move", "selfmask", "found")}
    ref = {k: Evaluator(k, weighted_f=False) for k in ("move", "selfmask", "found")}
    for name in names:
        gt = cv2.imread(str(sod_dir / "masks" / name), cv2.IMREAD_GRAYSCALE)
        full = cv2.imread(str(pred_dir / name), cv2.IMREAD_GRAYSCALE)
        h, w = gt.shape
        small = cv2.resize(full, (-(-w // 16), -(-h // 16)), interpolation=cv2.INTER_AREA)
        up_pil = np.asarray(image.fromarray(small, mode="L").resize((w, h), image.BILINEAR))
        x = torch.from_numpy(small.astype(np.float32) / np.float32(255))[None, None]
        up_t = torch.nn.functional.interpolate(x, scale_factor=16, mode="bilinear", align_corners=False)
        up_t = up_t[0, 0, :h, :w].numpy().clip(0, 1)
        for key, up in (("move", up_pil), ("selfmask", up_t), ("found", up_t)):
            ev[key].step(small, gt, name=name)
            ref[key].step(up, gt, name=name)
    for key in ev:
        a, b = ev[key].summary(), ref[key].summary()
        for metric in ("acc", "iou", "max_fbeta", "mean_fbeta", "adaptive_fbeta", "mae", "s_measure"):
            assert a[metric] == pytest.approx(b[metric], abs=1e-6), (key, metric)


@pytest.mark.parametrize("shape", [(400, 300), (300, 451), (335, 335)])
def test_paper_repo_geometry_equals_pillow(rng, shape):
    from maskrefine.metrics import paper_repo_geometry

    image = _pil()
    h, w = shape
    nh, nw = (335, int(335 * w / h)) if h <= w else (int(335 * h / w), 335)
    top, left = int(round((nh - 320) / 2.0)), int(round((nw - 320) / 2.0))
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    ref = np.asarray(image.fromarray(a, mode="L").resize((nw, nh), image.BILINEAR))[
        top : top + 320, left : left + 320
    ]
    np.testing.assert_array_equal(paper_repo_geometry(a), ref)
    f = rng.random(shape, dtype=np.float32)
    ref_f = np.asarray(image.fromarray(f, mode="F").resize((nw, nh), image.BILINEAR))
    np.testing.assert_array_equal(paper_repo_geometry(f), ref_f[top : top + 320, left : left + 320])


# ------------------------------------------------- end-to-end transcriptions of TokenCut's and MOVE's scripts


def _tokencut_like_reference(pairs, thresholds, gt_rule, iou_eps):
    """Transcription of the TokenCut/MOVE evaluation loop (PROTOCOL §1.2): per-image IoU and accuracy at
    > 0.5, precision/recall per threshold (``pred > t`` in the map's dtype; empty -> 1) as float32 ratios,
    F in float32, mean over images then max. Counts per threshold come from a sorted copy of the map."""
    precisions, recalls, ious, accs = [], [], [], []
    f32 = np.float32
    for pred, gt in pairs:
        g = gt_rule(gt)
        pb = pred > 0.5
        ious.append(float(f32(np.count_nonzero(pb & g)) / f32(np.count_nonzero(pb | g) + iou_eps)))
        accs.append(float(np.mean(pb == g, dtype=np.float32)))
        thr = np.asarray(thresholds, pred.dtype)
        all_sorted, fg_sorted = np.sort(pred.ravel()), np.sort(pred[g])
        area = all_sorted.size - np.searchsorted(all_sorted, thr, side="right")
        tp = fg_sorted.size - np.searchsorted(fg_sorted, thr, side="right")
        with np.errstate(invalid="ignore", divide="ignore"):
            pr = np.where(area == 0, f32(1), tp.astype(f32) / area.astype(f32))
            rc = np.where(fg_sorted.size == 0, f32(1), tp.astype(f32) / f32(fg_sorted.size))
        precisions.append(pr.astype(f32))
        recalls.append(rc.astype(f32))
    pt, rt = np.array(precisions, f32), np.array(recalls, f32)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = (f32(1.3) * pt * rt) / (f32(0.3) * pt + rt)
    f[f != f] = 0.0
    return {
        "max_fbeta": float(f.mean(axis=0, dtype=f32).max()),
        "iou": float(np.mean(ious)),
        "acc": float(np.mean(accs)),
        "precision_curve": pt.astype(np.float64).mean(axis=0),
    }


def _real_pairs(sod_dir, method, count):
    import cv2

    pred_dir = sod_dir / "predictions" / method
    if not pred_dir.is_dir():
        pytest.skip(f"no predictions at {pred_dir}")
    names = sorted(p.name for p in (sod_dir / "masks").glob("*.png"))
    names = names[:: max(1, len(names) // count)][:count]
    out = []
    for name in names:
        gt = cv2.imread(str(sod_dir / "masks" / name), cv2.IMREAD_GRAYSCALE)
        pred = cv2.imread(str(pred_dir / name), cv2.IMREAD_GRAYSCALE)
        out.append((name, pred, gt))
    return out


@pytest.mark.data
def test_tokencut_preset_equals_transcription_on_real_maps(sod_dir):
    pairs = _real_pairs(sod_dir, "PiCANet", 40)
    ev = Evaluator("tokencut", weighted_f=False)
    for name, pred, gt in pairs:
        ev.step(pred, gt, name=name)
    s = ev.summary()
    float_pairs = [(pred / 255.0, gt) for _, pred, gt in pairs]
    ref = _tokencut_like_reference(float_pairs, np.arange(0.0, 1.0, 1.0 / 255), lambda g: g > 0, 0.0)
    for key in ("max_fbeta", "iou", "acc"):
        assert s[key] == pytest.approx(ref[key], abs=1e-6), key
    curve = ev.curves()["precision"]
    np.testing.assert_allclose(curve, ref["precision_curve"], rtol=0, atol=1e-6)
    # k/255 thresholds (the rule before) give another precision curve on the same 8-bit maps
    exact = _tokencut_like_reference(float_pairs, np.arange(255) / 255.0, lambda g: g > 0, 0.0)
    assert np.abs(exact["precision_curve"] - ref["precision_curve"]).max() > 1e-5


@pytest.mark.data
def test_move_preset_equals_transcription_on_sixteenth_maps(sod_dir):
    import cv2

    image = _pil()
    pairs = _real_pairs(sod_dir, "PiCANet", 25)
    ev = Evaluator("move", weighted_f=False)
    float_pairs = []
    for name, pred, gt in pairs:
        h, w = gt.shape
        small = cv2.resize(pred, (-(-w // 16), -(-h // 16)), interpolation=cv2.INTER_AREA)
        ev.step(small, gt, name=name)
        up = np.asarray(image.fromarray(small, mode="L").resize((w, h), image.BILINEAR))
        float_pairs.append((up.astype(np.float32) / np.float32(255), gt))
    ref = _tokencut_like_reference(
        float_pairs, np.arange(0.0, 1.0, 1.0 / 256), lambda g: g.astype(np.float32) / 255 > 0.5, 1e-8
    )
    s = ev.summary()
    for key in ("max_fbeta", "iou", "acc"):
        assert s[key] == pytest.approx(ref[key], abs=1e-6), key


@pytest.mark.parametrize("preset", sorted(set(PRESETS) - {"pysod"}))
def test_level_histogram_equals_a_binary_search(rng, preset):
    from maskrefine.metrics import _kernels

    p = PRESETS[preset]
    thr = p.thresholds
    x = np.concatenate(
        [
            rng.random(5000),
            thr,
            np.nextafter(thr, 2.0),
            np.nextafter(thr, -1.0).clip(0, 1),
            np.arange(256) / 255.0,
            (np.arange(256, dtype=np.float32) / np.float32(255)).astype(np.float64),
            [0.0, 1.0],
        ]
    )
    gcls = (rng.random(x.size) < 0.4).astype(np.uint8) * np.uint8(3)  # class bits: F (1) and Acc (2)
    side = "left" if p.threshold_op == ">" else "right"
    levels = np.searchsorted(thr, x, side=side)
    k = thr.size
    expected = np.zeros((2, k + 1), np.int64)
    np.add.at(expected, ((gcls & 1).astype(np.int64), levels), 1)
    got = _kernels.level_histogram(
        x[None, :],
        gcls[None, :],
        np.append(thr, np.inf),
        float(p.threshold_denominator),
        p.threshold_op == ">",
        np.zeros((2, k + 1), np.int64),
    )
    np.testing.assert_array_equal(got, expected)


@pytest.mark.filterwarnings("ignore:std\\(\\)")
def test_selfmask_s_measure_of_a_single_pixel_gt_is_nan_like_torch(rng):
    gt = np.zeros((8, 8), np.uint8)
    gt[3, 4] = 255
    pred = rng.random((8, 8)).astype(np.float32)
    row = score_image(pred, gt, "selfmask")[0]
    assert np.isnan(row["s_measure"]) and np.isnan(_selfmask_reference(pred, gt > 0)["s_measure"])
    assert np.isfinite(score_image(pred, gt, "pysod")[0]["s_measure"])  # PySOD: std of one pixel is 0
    assert np.isnan(score_image(pred, 255 - gt, "found")[0]["s_measure"])


@pytest.mark.parametrize("grid, size", [((6, 6), (44, 44)), ((5, 7), (44, 52)), ((13, 19), (200, 300))])
def test_tokencut_stretches_a_token_mask_as_torch_does(grid, size):
    """TokenCut's ncut: F.interpolate(mask, size=(H, W), mode="nearest"), for grids rounded up or down."""
    torch = pytest.importorskip("torch", reason="torch is the reference of the nearest stretch")
    gen = np.random.default_rng(sum(grid) + sum(size))
    tokens = (gen.random(grid) > 0.5).astype(np.uint8) * 255
    gt = (gen.random(size) > 0.5).astype(np.uint8) * 255
    stretched = torch.nn.functional.interpolate(
        torch.from_numpy(tokens.astype(np.float64) / 255)[None, None], size=size, mode="nearest"
    )[0, 0].numpy()
    np.testing.assert_array_equal(torch_nearest(tokens, size), (stretched * 255).astype(np.uint8))
    assert (
        score_image(tokens, gt, "tokencut")[0]
        == score_image((stretched * 255).astype(np.uint8), gt, "tokencut")[0]
    )
