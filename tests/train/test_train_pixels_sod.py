"""End to end on real images: the weight-free ``pixels`` backbone, trained a few hundred steps on 16 SOD
images (crop loss on), predicts masks whose IoU beats a centred box (half the height and width)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")

from maskrefine.io import read_image, read_mask  # noqa: E402
from maskrefine.train import preset, train  # noqa: E402
from maskrefine.train.predict import load_predictor  # noqa: E402

STEPS = 200


def _iou(pred: np.ndarray, gt: np.ndarray) -> float:
    union = np.logical_or(pred, gt).sum()
    return float(np.logical_and(pred, gt).sum() / union) if union else 1.0


@pytest.mark.slow
@pytest.mark.data
def test_pixels_backbone_beats_a_centred_box(tmp_path, sod_dir):
    images = tmp_path / "images"
    images.mkdir()
    files = sorted((sod_dir / "images").iterdir())[:16]
    for file in files:
        (images / file.name).symlink_to(file.resolve())
    cfg = preset(
        "paper",
        backbone="pixels",
        image_size=64,
        resize=68,
        batch_size=8,
        epochs=STEPS // 2,
        lr=1e-3,
        head_fine_channels=(16, 16),
    )
    result = train(cfg, images, tmp_path / "run")
    assert result.step == STEPS and result.losses[-1] < 0.5 * result.losses[0]
    predictor = load_predictor(tmp_path / "run" / "last.pt", refine="none")
    learned, box = [], []
    for file in files:
        gt = read_mask(sod_dir / "masks" / f"{file.stem}.png") > 0.5
        pred = predictor.predict([read_image(file)])[0].fine > 0.5
        learned.append(_iou(pred, gt))
        h, w = gt.shape
        centre = np.zeros_like(gt)
        centre[h // 4 : h - h // 4, w // 4 : w - w // 4] = True
        box.append(_iou(centre, gt))
    figures = {"iou_pixels_backbone": float(np.mean(learned)), "iou_centred_box": float(np.mean(box))}
    print(json.dumps(figures))
    assert figures["iou_pixels_backbone"] > figures["iou_centred_box"], figures
