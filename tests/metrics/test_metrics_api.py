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
