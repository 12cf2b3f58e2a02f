"""Evidence that refinement helps: coarse-mask maker, paired statistics, candidate scoring and tuning."""

from __future__ import annotations

from maskrefine.quality.coarse import coarse_shape, make_coarse_mask, write_coarse_folder
from maskrefine.quality.grid import (
    QUALITY_METRICS,
    Candidate,
    EvaluationResult,
    Item,
    Scores,
    compare_to,
    evaluate,
    naive_candidate,
)
from maskrefine.quality.stats import (
    PairedComparison,
    bootstrap_counts,
    compare_paired,
    paired_bootstrap,
    win_tie_loss,
)

__all__ = [
    "coarse_shape",
    "make_coarse_mask",
    "write_coarse_folder",
    "Candidate",
    "naive_candidate",
    "Item",
    "Scores",
    "EvaluationResult",
    "evaluate",
    "compare_to",
    "QUALITY_METRICS",
    "PairedComparison",
    "bootstrap_counts",
    "paired_bootstrap",
    "win_tie_loss",
    "compare_paired",
]
