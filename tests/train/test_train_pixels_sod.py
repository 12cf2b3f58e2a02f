"""End to end on real images: the weight-free ``pixels`` backbone, trained a few hundred steps on 16 SOD
images (crop loss on), predicts masks whose IoU beats a centred box (half the height and width).

Averaged over three seeds: one 200-step run lands anywhere in 0.35-0.42 mean IoU (against the box's 0.368),
and which seed is the low one depends on the CPU's floating-point kernels (seed 0 beat the box on one
machine and lost on an AMD Zen 3 with identical code). The mean of three was 0.392 there.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")

from maskrefine.io import read_image, read_mask  # noqa: E402
from maskrefine.train import preset, train  # noqa: E402
from maskrefine.train.predict import load_predictor  # noqa: E402

STEPS = 200
SEEDS = (0, 1, 2)


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
    gts = [read_mask(sod_dir / "masks" / f"{file.stem}.png") > 0.5 for file in files]
    box = []
    for gt in gts:
        h, w = gt.shape
        centre = np.zeros_like(gt)
        centre[h // 4 : h - h // 4, w // 4 : w - w // 4] = True
        box.append(_iou(centre, gt))
    learned = []
    for seed in SEEDS:
        cfg = preset(
            "paper",
            backbone="pixels",
            image_size=64,
            resize=68,
            batch_size=8,
            epochs=STEPS // 2,
            lr=1e-3,
            head_fine_channels=(16, 16),
            seed=seed,
        )
        result = train(cfg, images, tmp_path / f"run{seed}")
        assert result.step == STEPS and result.losses[-1] < 0.5 * result.losses[0]
        predictor = load_predictor(tmp_path / f"run{seed}" / "last.pt", refine="none")
        ious = [
            _iou(predictor.predict([read_image(file)])[0].fine > 0.5, gt)
            for file, gt in zip(files, gts, strict=True)
        ]
        learned.append(float(np.mean(ious)))
    figures = {"iou_pixels_backbone_per_seed": learned, "iou_centred_box": float(np.mean(box))}
    print(json.dumps(figures))
    assert float(np.mean(learned)) > figures["iou_centred_box"], figures
