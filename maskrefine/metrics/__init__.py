"""Saliency metrics and CorLoc with the field's exact protocols (PROTOCOL §1, §2)."""

from __future__ import annotations

from maskrefine.metrics.confusion import confusion_counts, curve_counts, threshold_levels
from maskrefine.metrics.corloc import (
    SELECTORS,
    CorLocEvaluator,
    box_iou,
    boxes_from_mask,
    corloc,
    mask_to_box,
    read_coco_boxes,
    read_seeds,
    read_voc_boxes,
)
from maskrefine.metrics.evaluator import (
    Evaluator,
    SaliencyEvaluator,
    paper_repo_geometry,
    prepare_pair,
    score_image,
)
from maskrefine.metrics.presets import DEFAULT_PRESET, PRESETS, ScorePreset, get_preset
from maskrefine.metrics.resize import pil_bilinear, prediction_stride, torch_bilinear, torch_nearest
from maskrefine.metrics.saliency import (
    accuracy_from_counts,
    e_measure,
    e_measure_from_counts,
    fbeta,
    iou_from_counts,
    mae,
    precision_recall,
    s_measure,
    weighted_fbeta,
)

__all__ = [
    "Evaluator",
    "SaliencyEvaluator",
    "ScorePreset",
    "PRESETS",
    "DEFAULT_PRESET",
    "get_preset",
    "score_image",
    "prepare_pair",
    "paper_repo_geometry",
    "CorLocEvaluator",
    "SELECTORS",
    "corloc",
    "box_iou",
    "mask_to_box",
    "boxes_from_mask",
    "read_voc_boxes",
    "read_coco_boxes",
    "read_seeds",
    "prediction_stride",
    "pil_bilinear",
    "torch_bilinear",
    "torch_nearest",
    "confusion_counts",
    "threshold_levels",
    "curve_counts",
    "precision_recall",
    "fbeta",
    "iou_from_counts",
    "accuracy_from_counts",
    "e_measure_from_counts",
    "e_measure",
    "mae",
    "s_measure",
    "weighted_fbeta",
]
