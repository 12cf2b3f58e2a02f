"""``tune`` reports, for a setting, the dataset values ``score`` prints for that setting's outputs.

Before, ``tune`` always took max F as the max of the image-averaged curve (``selfmask``/``found`` take the
mean of each image's own max: 0.9719 where ``score`` said 0.9768), summed in float64 where those presets
sum in float32, and stored the F curves in float32 (max F ~2e-9 off ``score``'s under the other presets).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from maskrefine.metrics import PRESETS
from maskrefine.pipeline import apply_folder, score_folder
from maskrefine.quality.tune import tune

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def naive_outputs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tune") / "naive"
    apply_folder(EXAMPLES / "masks", EXAMPLES / "images", out, method="identity", jobs=1)
    return out


@pytest.mark.parametrize(
    "preset", [p for p in PRESETS if p != "paper_repo"]
)  # paper_repo: full-size GT crops
def test_tune_summary_is_what_score_prints(naive_outputs, preset: str) -> None:
    report = tune(
        EXAMPLES / "masks", EXAMPLES / "images", EXAMPLES / "gt", methods=["identity"], preset=preset, jobs=1
    )
    (row,) = [r for r in report.rows if r.candidate == report.naive]
    scored = score_folder(naive_outputs, EXAMPLES / "gt", preset=preset, jobs=1).summary
    for metric in ("acc", "iou", "max_fbeta"):
        assert row.summary[metric] == scored[metric], metric
    assert row.change["max_fbeta"].candidate == scored["max_fbeta"]


def test_tune_warns_where_iou_is_undefined_on_some_images(tmp_path: Path) -> None:
    import shutil

    import cv2

    masks, images, gt = (tmp_path / name for name in ("masks", "images", "gt"))
    for src, dst in ((EXAMPLES / "masks", masks), (EXAMPLES / "images", images), (EXAMPLES / "gt", gt)):
        shutil.copytree(src, dst)
    image = cv2.imread(str(images / "100075.jpg"))
    cv2.imwrite(str(images / "zz.jpg"), image)
    cv2.imwrite(str(masks / "zz.png"), np.zeros((21, 31), np.uint8))  # GT and mask both empty: IoU 0/0
    cv2.imwrite(str(gt / "zz.png"), np.zeros(image.shape[:2], np.uint8))
    report = tune(masks, images, gt, methods=["identity"], jobs=1)
    assert report.n_images == 11
    (warning,) = [w for w in report.warnings if "IoU is undefined" in w]
    assert "on 1 of 11 images" in warning and "prints nan" in warning
