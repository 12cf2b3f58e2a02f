"""The ``selfmask`` and ``found`` presets' S-measure against a float64 transcription of SelfMask's formula.

SelfMask's ``SMeasure`` (FOUND reuses it) guards its divisions with 1e-20 where PySOD adds
``np.spacing(1)`` (2.2e-16). On a GT block with a few foreground pixels the region score's denominator
is ~1e-17, so PySOD's guard pulled SelfMask's score of a perfect mask of a small object from ~1 to 0.89.
"""

from __future__ import annotations

import numpy as np
import pytest

from maskrefine.metrics import score_image


def _selfmask_s_measure(pred: np.ndarray, gt: np.ndarray, alpha: float = 0.5) -> float:
    """SelfMask's S-measure in float64: centroid split without +1, sample std, 1e-20 guards."""
    y = gt.mean()
    if y == 0:
        return float(1.0 - pred.mean())
    if y == 1:
        return float(pred.mean())

    def object_score(values: np.ndarray) -> float:
        mean = values.mean()
        return 2.0 * mean / (mean * mean + 1.0 + values.std(ddof=1) + 1e-20)

    s_object = y * object_score(pred[gt]) + (1 - y) * object_score(1.0 - pred[~gt])
    rows, cols = np.nonzero(gt)
    cy, cx = int(np.round(rows.mean())), int(np.round(cols.mean()))
    h, w = gt.shape
    s_region = 0.0
    for r0, r1, c0, c1 in ((0, cy, 0, cx), (0, cy, cx, w), (cy, h, 0, cx), (cy, h, cx, w)):
        p, g = pred[r0:r1, c0:c1], gt[r0:r1, c0:c1].astype(np.float64)
        n = p.size
        x, m = p.mean(), g.mean()
        sx2 = ((p - x) ** 2).sum() / (n - 1 + 1e-20)
        sy2 = ((g - m) ** 2).sum() / (n - 1 + 1e-20)
        sxy = ((p - x) * (g - m)).sum() / (n - 1 + 1e-20)
        a, b = 4 * x * m * sxy, (x * x + m * m) * (sx2 + sy2)
        q = a / (b + 1e-20) if a != 0 else (1.0 if b == 0 else 0.0)
        s_region += q * n / (h * w)
    return max(0.0, alpha * s_object + (1 - alpha) * s_region)


def _cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    cases = []
    big = np.zeros((1000, 1000), np.uint8)
    big[500, 500:502] = 255  # a 2-pixel object: PySOD's guard gave 0.9878 here, SelfMask ~1
    cases.append(("perfect-2px-1000", big, big.copy()))
    for i, (h, w, side) in enumerate([(300, 400, 4), (600, 800, 10), (480, 640, 30), (1080, 1920, 20)]):
        gt = np.zeros((h, w), np.uint8)
        top, left = h // 3, w // 3
        gt[top : top + side, left : left + side] = 255
        shifted = np.roll(gt, 2, axis=1)  # a binary prediction two pixels off
        cases.append((f"shifted-{i}", shifted, gt))
        soft = (rng.random((h, w)) * 0.05 * 255).astype(np.uint8) | gt  # faint noise on a good mask
        cases.append((f"soft-{i}", soft, gt))
    return cases


@pytest.mark.parametrize("preset", ["selfmask", "found"])
@pytest.mark.parametrize(("name", "pred", "gt"), _cases(), ids=[c[0] for c in _cases()])
def test_s_measure_follows_selfmask(preset: str, name: str, pred: np.ndarray, gt: np.ndarray) -> None:
    got = score_image(pred, gt, preset, weighted_f=False)[0]["s_measure"]
    values = (pred.astype(np.float32) / np.float32(255.0)).astype(np.float64)  # SelfMask's float32 map
    want = _selfmask_s_measure(values, gt > (0 if preset == "selfmask" else 127))
    assert got == pytest.approx(want, abs=1e-9), name


def test_pysod_keeps_its_own_guard() -> None:
    gt = np.zeros((1000, 1000), np.uint8)
    gt[500, 500:502] = 255
    # PySODMetrics' Smeasure of this perfect mask is 0.8833 (its 2.2e-16 guard dominates): unchanged
    row = score_image(gt, gt.copy(), "pysod", weighted_f=False)[0]
    assert row["s_measure"] == pytest.approx(0.88327, abs=1e-5)
