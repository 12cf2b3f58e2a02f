"""Edge-aware mask filters: the guided filter (numba kernels + float64 NumPy reference)."""

from __future__ import annotations

from maskrefine.filters import reference
from maskrefine.filters.guided import BACKENDS, BORDERS, fast_guided_filter, guided_filter

__all__ = ["guided_filter", "fast_guided_filter", "reference", "BORDERS", "BACKENDS"]
