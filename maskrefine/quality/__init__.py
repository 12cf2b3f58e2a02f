"""Evidence that refinement helps: coarse-mask maker, paired statistics, candidate scoring and tuning.

The public names are imported on first use (see :mod:`maskrefine._lazy`): ``maskrefine apply`` reads
preset files through :mod:`maskrefine.quality.preset_file` and must not pay for the scorer and the
candidate engine it does not use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from maskrefine._lazy import lazy_attributes

if TYPE_CHECKING:
    # For type checkers only: at run time these names are imported on first use (below).
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

_SOURCES = {
    **dict.fromkeys(("coarse_shape", "make_coarse_mask", "write_coarse_folder"), "maskrefine.quality.coarse"),
    **dict.fromkeys(
        (
            "QUALITY_METRICS",
            "Candidate",
            "EvaluationResult",
            "Item",
            "Scores",
            "compare_to",
            "evaluate",
            "naive_candidate",
        ),
        "maskrefine.quality.grid",
    ),
    **dict.fromkeys(
        ("PairedComparison", "bootstrap_counts", "compare_paired", "paired_bootstrap", "win_tie_loss"),
        "maskrefine.quality.stats",
    ),
}

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

if not TYPE_CHECKING:  # a type checker sees the imports above, and flags any other name as missing
    __getattr__, __dir__ = lazy_attributes(__name__, _SOURCES, globals())
