"""Edge-aware mask filters: the guided filter, the fast bilateral solver and the two-label dense CRF.

The guided filter has numba kernels and a float64 NumPy reference, the fast bilateral solver numba
kernels and a SciPy oracle, and the dense CRF a numba permutohedral lattice.
"""

from __future__ import annotations

from maskrefine.filters import reference
from maskrefine.filters.bilateral_solver import BILATERAL_PRESETS, bilateral_solver
from maskrefine.filters.dense_crf import CRF_PRESETS, dense_crf
from maskrefine.filters.guided import BACKENDS, BORDERS, fast_guided_filter, guided_filter

__all__ = [
    "guided_filter",
    "fast_guided_filter",
    "bilateral_solver",
    "dense_crf",
    "BILATERAL_PRESETS",
    "CRF_PRESETS",
    "reference",
    "BORDERS",
    "BACKENDS",
]
