"""The bilateral solver and the dense CRF through the registry and maskrefine.refine (issue 11)."""

from __future__ import annotations

import numpy as np
import pytest

import maskrefine
from maskrefine.filters.bilateral_solver import bilateral_solver
from maskrefine.filters.dense_crf import dense_crf
from maskrefine.refiners import REFINERS, resolve_params


def _pair(h: int = 40, w: int = 48):
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:h, :w]
    inside = ((yy - h / 2) / 12) ** 2 + ((xx - w / 2) / 15) ** 2 < 1
    image = np.where(inside[..., None], [0.9, 0.2, 0.1], [0.1, 0.4, 0.8]) + rng.normal(0, 0.02, (h, w, 3))
    image = np.clip(image, 0, 1).astype(np.float32)
    mask = np.clip(inside + rng.normal(0, 0.3, (h, w)), 0, 1).astype(np.float32)
    return image, mask


def test_registered_with_presets():
    assert {"bilateral_solver", "crf"} <= set(REFINERS)
    assert REFINERS["bilateral_solver"].defaults["preset"] == "tokencut"
    assert REFINERS["crf"].defaults["preset"] == "deeplab"


@pytest.mark.parametrize("preset", ["tokencut", "paper_repo", "found"])
def test_refine_bilateral_solver_equals_the_filter(preset):
    image, mask = _pair()
    out = maskrefine.refine(image, mask, "bilateral_solver", preset=preset)
    expected = np.clip(bilateral_solver(image, mask, preset=preset), 0, 1)
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.float32 and out.shape == mask.shape


def test_refine_bilateral_solver_override_and_low_res_mask():
    image, mask = _pair()
    out = maskrefine.refine(image, mask[::4, ::4], "bilateral_solver", sigma_spatial=8, lam=64)
    assert out.shape == mask.shape
    assert not np.array_equal(out, maskrefine.refine(image, mask[::4, ::4], "bilateral_solver"))


def test_refine_crf_label_and_prob():
    image, mask = _pair()
    label = maskrefine.refine(image, mask, "crf")
    prob = maskrefine.refine(image, mask, "crf", output="prob", iterations=5)
    assert set(np.unique(label)) <= {0.0, 1.0}
    np.testing.assert_array_equal(label, (dense_crf(image, mask) > 0.5).astype(np.float32))
    np.testing.assert_allclose(prob, dense_crf(image, mask, iterations=5))
    assert maskrefine.refine(image, mask, "crf", preset="deep_spectral").shape == mask.shape


@pytest.mark.parametrize(
    ("method", "params", "error", "match"),
    [
        ("bilateral_solver", {"preset": "tokencutt"}, ValueError, "preset"),
        ("bilateral_solver", {"preset": ["tokencut"]}, ValueError, "preset"),
        ("bilateral_solver", {"sigma_spatial": -16}, ValueError, "sigma_spatial"),
        ("bilateral_solver", {"sigma_luma": 1e400}, ValueError, "sigma_luma"),
        ("bilateral_solver", {"sigma_chroma": "8"}, TypeError, "sigma_chroma"),
        ("bilateral_solver", {"lam": float("nan")}, ValueError, "lam"),
        ("bilateral_solver", {"confidence": 0.5}, ValueError, "does not accept"),
        ("crf", {"preset": "pydensecrf"}, ValueError, "preset"),
        ("crf", {"iterations": -5}, ValueError, "iterations"),
        ("crf", {"iterations": "10"}, TypeError, "iterations"),
        ("crf", {"gt_prob": 2}, ValueError, "gt_prob"),
        ("crf", {"bilateral_srgb": 0}, ValueError, "bilateral_srgb"),
        ("crf", {"output": "mask"}, ValueError, "output"),
    ],
)
def test_hostile_parameters(method, params, error, match):
    with pytest.raises(error, match=match):
        resolve_params(method, params)
    image, mask = _pair(8, 8)
    with pytest.raises(error, match=match):
        maskrefine.refine(image, mask, method, **params)
