"""The saliency metrics give the same float for any memory layout of the same values."""

from __future__ import annotations

import numpy as np
import pytest

from maskrefine.metrics import mae, s_measure, weighted_fbeta


@pytest.mark.parametrize("metric", [mae, s_measure, weighted_fbeta])
@pytest.mark.parametrize("layout", ["fortran", "reversed", "transposed_twice"])
def test_layout_does_not_change_the_float(metric, layout) -> None:
    # NumPy sums in memory order: a Fortran-order pair gave an S-measure 1 ulp away from the C-order one
    rng = np.random.default_rng(0)
    pred, gt = rng.random((40, 50)), rng.random((40, 50)) > 0.5
    if layout == "fortran":
        p, g = np.asfortranarray(pred), np.asfortranarray(gt)
    elif layout == "reversed":
        p, g = pred[::-1, ::-1].copy()[::-1, ::-1], gt[::-1, ::-1].copy()[::-1, ::-1]
    else:
        p, g = pred.T.copy().T, gt.T.copy().T
    assert metric(p, g) == metric(pred, gt)
