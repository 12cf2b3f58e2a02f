"""The public surface of maskrefine.metrics: every name in __all__ exists; key names never disappear."""

from __future__ import annotations

import maskrefine.metrics as metrics

REQUIRED = {
    "Evaluator",
    "PRESETS",
    "ScorePreset",
    "get_preset",
    "CorLocEvaluator",
    "read_voc_boxes",
    "read_coco_boxes",
    "boxes_from_mask",
    "box_iou",
    "corloc",
    "mask_to_box",
    "score_image",
    "fbeta",
    "mae",
    "s_measure",
    "e_measure",
    "weighted_fbeta",
    "confusion_counts",
    "curve_counts",
    "threshold_levels",
}


def test_all_names_exist_and_required_are_public():
    for name in metrics.__all__:
        assert hasattr(metrics, name), name
    assert REQUIRED <= set(metrics.__all__)


def test_import_does_not_pull_torch():
    import subprocess
    import sys

    code = "import sys, maskrefine.metrics; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_row_columns_are_the_keys_of_every_presets_rows():
    # the CSV header of an empty shard comes from row_columns: it must be what a scored row holds
    import numpy as np

    gt = np.zeros((12, 16), np.uint8)
    gt[3:9, 4:12] = 255
    pred = np.zeros((12, 16), np.uint8)
    pred[4:10, 5:11] = 200
    for name in sorted(metrics.PRESETS):
        evaluator = metrics.Evaluator(preset=name)
        assert evaluator.row_columns()[0] == "name"
        row = evaluator.step(pred, gt, name="a")
        assert tuple(row) == evaluator.row_columns(), name
        assert tuple(evaluator.per_image()[0]) == evaluator.row_columns(), name
