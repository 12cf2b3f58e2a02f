"""maskrefine: refine segmentation masks with the image as guide, and score them exactly.

The NumPy-side public API lives here; ``import maskrefine`` never imports torch (the differentiable torch
filter is :mod:`maskrefine.torch`, installed with the ``[torch]`` extra).
"""

from __future__ import annotations

__version__ = "0.1.0"

from maskrefine.errors import BackendUnavailableError, ConfigError, InputError, MaskrefineError
from maskrefine.filters import fast_guided_filter, guided_filter
from maskrefine.guide import make_guide
from maskrefine.metrics import (
    PRESETS,
    CorLocEvaluator,
    Evaluator,
    ScorePreset,
    box_iou,
    boxes_from_mask,
    corloc,
    get_preset,
    read_coco_boxes,
    read_voc_boxes,
    score_image,
)
from maskrefine.pipeline import (
    FileOutcome,
    RunReport,
    ScoreReport,
    apply_folder,
    parse_shard,
    score_folder,
)
from maskrefine.refiners import REFINERS, RefinerSpec, refine, register_refiner

__all__ = [
    "__version__",
    # errors
    "MaskrefineError",
    "InputError",
    "ConfigError",
    "BackendUnavailableError",
    # filters
    "guided_filter",
    "fast_guided_filter",
    "make_guide",
    # refiners
    "REFINERS",
    "RefinerSpec",
    "refine",
    "register_refiner",
    # folder jobs
    "apply_folder",
    "score_folder",
    "RunReport",
    "ScoreReport",
    "FileOutcome",
    "parse_shard",
    # metrics
    "Evaluator",
    "PRESETS",
    "ScorePreset",
    "get_preset",
    "score_image",
    "CorLocEvaluator",
    "read_voc_boxes",
    "read_coco_boxes",
    "boxes_from_mask",
    "box_iou",
    "corloc",
]
