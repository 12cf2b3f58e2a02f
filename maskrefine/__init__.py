"""maskrefine: refine segmentation masks with the image as guide, and score them exactly.

The NumPy-side public API lives here; ``import maskrefine`` never imports torch (the differentiable torch
filter is :mod:`maskrefine.torch`, installed with the ``[torch]`` extra).
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

# Public names -> the module that defines them. Resolved on first access (PEP 562), so that
# `import maskrefine` (and the CLI's --version / --help) imports neither numba, OpenCV nor SciPy.
_LAZY: dict[str, str] = {
    "MaskrefineError": "maskrefine.errors",
    "InputError": "maskrefine.errors",
    "ConfigError": "maskrefine.errors",
    "BackendUnavailableError": "maskrefine.errors",
    "guided_filter": "maskrefine.filters",
    "fast_guided_filter": "maskrefine.filters",
    "make_guide": "maskrefine.guide",
    "REFINERS": "maskrefine.refiners",
    "RefinerSpec": "maskrefine.refiners",
    "refine": "maskrefine.refiners",
    "register_refiner": "maskrefine.refiners",
    "apply_folder": "maskrefine.pipeline",
    "score_folder": "maskrefine.pipeline",
    "RunReport": "maskrefine.pipeline",
    "ScoreReport": "maskrefine.pipeline",
    "FileOutcome": "maskrefine.pipeline",
    "parse_shard": "maskrefine.pipeline",
    "Evaluator": "maskrefine.metrics",
    "PRESETS": "maskrefine.metrics",
    "ScorePreset": "maskrefine.metrics",
    "get_preset": "maskrefine.metrics",
    "score_image": "maskrefine.metrics",
    "CorLocEvaluator": "maskrefine.metrics",
    "read_voc_boxes": "maskrefine.metrics",
    "read_coco_boxes": "maskrefine.metrics",
    "boxes_from_mask": "maskrefine.metrics",
    "box_iou": "maskrefine.metrics",
    "corloc": "maskrefine.metrics",
}

if TYPE_CHECKING:  # static analysers see the eager imports
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


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'maskrefine' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
