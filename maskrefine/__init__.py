"""maskrefine: refine segmentation masks with the image as guide, and score them exactly.

The NumPy-side public API lives here; ``import maskrefine`` never imports torch (the differentiable torch
filter is :mod:`maskrefine.torch`, installed with the ``[torch]`` extra).
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING

from maskrefine._lazy import lazy_attributes
from maskrefine.errors import BackendUnavailableError, ConfigError, InputError, MaskrefineError

if TYPE_CHECKING:
    # For type checkers only: at run time these names are imported on first use (below); imported here
    # from the modules that define them.
    from maskrefine import filters as filters
    from maskrefine import io as io
    from maskrefine import metrics as metrics
    from maskrefine import pipeline as pipeline
    from maskrefine import quality as quality
    from maskrefine.filters.guided import fast_guided_filter, guided_filter
    from maskrefine.guide import make_guide
    from maskrefine.metrics.corloc import (
        CorLocEvaluator,
        box_iou,
        boxes_from_mask,
        corloc,
        read_coco_boxes,
        read_voc_boxes,
    )
    from maskrefine.metrics.evaluator import Evaluator, score_image
    from maskrefine.metrics.presets import PRESETS, ScorePreset, get_preset
    from maskrefine.pipeline.apply import apply_folder
    from maskrefine.pipeline.guards import parse_shard
    from maskrefine.pipeline.reports import FileOutcome, RunReport, ScoreReport
    from maskrefine.pipeline.score import score_folder
    from maskrefine.refiners import REFINERS, RefinerSpec, refine, register_refiner

#: Subpackages reachable as attributes after a plain ``import maskrefine`` (``maskrefine.filters.dense_crf``),
#: imported on first access. ``maskrefine.torch`` and ``maskrefine.train`` need torch: import them by name.
SUBPACKAGES: tuple[str, ...] = ("filters", "io", "metrics", "pipeline", "quality")

# Everything but the errors is imported on first use (numba, OpenCV: see maskrefine._lazy).
_SOURCES = {
    "fast_guided_filter": "maskrefine.filters",
    "guided_filter": "maskrefine.filters",
    "make_guide": "maskrefine.guide",
    "REFINERS": "maskrefine.refiners",
    "RefinerSpec": "maskrefine.refiners",
    "refine": "maskrefine.refiners",
    "register_refiner": "maskrefine.refiners",
    "FileOutcome": "maskrefine.pipeline",
    "RunReport": "maskrefine.pipeline",
    "ScoreReport": "maskrefine.pipeline",
    "apply_folder": "maskrefine.pipeline",
    "parse_shard": "maskrefine.pipeline",
    "score_folder": "maskrefine.pipeline",
    "PRESETS": "maskrefine.metrics",
    "CorLocEvaluator": "maskrefine.metrics",
    "Evaluator": "maskrefine.metrics",
    "ScorePreset": "maskrefine.metrics",
    "box_iou": "maskrefine.metrics",
    "boxes_from_mask": "maskrefine.metrics",
    "corloc": "maskrefine.metrics",
    "get_preset": "maskrefine.metrics",
    "read_coco_boxes": "maskrefine.metrics",
    "read_voc_boxes": "maskrefine.metrics",
    "score_image": "maskrefine.metrics",
}

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

if not TYPE_CHECKING:  # a type checker sees the imports above, and flags any other name as missing
    __getattr__, __dir__ = lazy_attributes(__name__, _SOURCES, globals(), submodules=SUBPACKAGES)
