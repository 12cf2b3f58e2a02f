"""Saliency metrics and CorLoc with the field's exact protocols (docs/evaluation.md, docs/corloc.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from maskrefine._lazy import lazy_attributes
from maskrefine.metrics.confusion import confusion_counts, curve_counts, threshold_levels
from maskrefine.metrics.corloc import (
    SELECTORS,
    CorLocEvaluator,
    box_iou,
    boxes_from_mask,
    corloc,
    mask_to_box,
    read_coco_boxes,
    read_seed_maps,
    read_seeds,
    read_voc_boxes,
)
from maskrefine.metrics.presets import DEFAULT_PRESET, PRESETS, ScorePreset, get_preset

if TYPE_CHECKING:
    # For type checkers only: at run time these names are imported on first use (below).
    from maskrefine.metrics.evaluator import (
        Evaluator,
        SaliencyEvaluator,
        paper_repo_geometry,
        prepare_pair,
        score_image,
    )
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

# evaluator, saliency and resize need OpenCV and numba: imported on first use (see maskrefine._lazy).
_SOURCES = {
    "Evaluator": "maskrefine.metrics.evaluator",
    "SaliencyEvaluator": "maskrefine.metrics.evaluator",
    "paper_repo_geometry": "maskrefine.metrics.evaluator",
    "prepare_pair": "maskrefine.metrics.evaluator",
    "score_image": "maskrefine.metrics.evaluator",
    "accuracy_from_counts": "maskrefine.metrics.saliency",
    "e_measure": "maskrefine.metrics.saliency",
    "e_measure_from_counts": "maskrefine.metrics.saliency",
    "fbeta": "maskrefine.metrics.saliency",
    "iou_from_counts": "maskrefine.metrics.saliency",
    "mae": "maskrefine.metrics.saliency",
    "precision_recall": "maskrefine.metrics.saliency",
    "s_measure": "maskrefine.metrics.saliency",
    "weighted_fbeta": "maskrefine.metrics.saliency",
    "pil_bilinear": "maskrefine.metrics.resize",
    "prediction_stride": "maskrefine.metrics.resize",
    "torch_bilinear": "maskrefine.metrics.resize",
    "torch_nearest": "maskrefine.metrics.resize",
}

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
    "read_seed_maps",
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

if not TYPE_CHECKING:  # a type checker sees the imports above, and flags any other name as missing
    __getattr__, __dir__ = lazy_attributes(__name__, _SOURCES, globals())
