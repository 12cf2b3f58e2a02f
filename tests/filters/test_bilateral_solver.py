"""Fast bilateral solver: equivalence with the SciPy oracle, solver properties, presets, bad input."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest

from maskrefine.filters import _bilateral_kernels as kernels
from maskrefine.filters import reference_bilateral as ref
from maskrefine.filters.bilateral_solver import (
    BILATERAL_PRESETS,
    bilateral_solver,
    colour_cells,
    found_binary,
    reference_yuv,
)


def _scene(h: int = 48, w: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    inside = ((yy - h / 2) / (h / 3)) ** 2 + ((xx - w / 2) / (w / 3)) ** 2 < 1
    image = np.where(inside[..., None], [0.8, 0.3, 0.2], [0.2, 0.5, 0.7]) + rng.normal(0, 0.03, (h, w, 3))
    image = np.round(np.clip(image, 0, 1) * 255) / 255
    target = np.clip(inside + rng.normal(0, 0.3, (h, w)), 0, 1)
    return image.astype(np.float32), target.astype(np.float32)


def _sod_pairs(sod_dir, count: int):
    names = sorted(p.stem for p in (sod_dir / "images").glob("*.jpg"))[:count]
    for name in names:
        image = cv2.imread(str(sod_dir / "images" / f"{name}.jpg"), cv2.IMREAD_COLOR)[:, :, ::-1]
        image = cv2.resize(image, (320, 320), interpolation=cv2.INTER_AREA)
        pred = cv2.imread(str(sod_dir / "predictions" / "Amulet" / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
        pred = cv2.resize(pred, (320, 320), interpolation=cv2.INTER_LINEAR)
        yield name, image, pred.astype(np.float64) / 255


@pytest.mark.data
@pytest.mark.parametrize("preset", ["tokencut", "paper_repo"])
def test_matches_scipy_oracle_on_sod_images(sod_dir, preset):
    p = BILATERAL_PRESETS[preset]
    worst = 0.0
    for _, image, pred in _sod_pairs(sod_dir, 5):
        fast = bilateral_solver(image.astype(np.float32) / 255, pred, preset=preset)
        oracle = ref.solve(
            image.astype(np.float64),
            pred,
            sigma_spatial=p.sigma_spatial,
            sigma_luma=p.sigma_luma,
            sigma_chroma=p.sigma_chroma,
        )
        worst = max(worst, float(np.abs(fast - oracle).max()))
    assert worst <= 1e-4


def _large_scene() -> tuple[np.ndarray, np.ndarray]:
    """4500x3000: flat grey background (so grid cells at x/16 = 255 and x/16 = 0 share colours) and a
    shaded coloured ellipse."""
    h, w = 3000, 4500
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    inside = ((xx - 2600) / 1500) ** 2 + ((yy - 1500) / 1000) ** 2 < 1
    image = np.full((h, w, 3), 128 / 255, np.float32)
    shade = np.round(255 * (0.5 + 0.4 * np.sin(xx / 300))) / 255
    image[inside] = np.stack([shade, 1 - shade, np.full_like(shade, 0.2)], -1)[inside]
    image = np.round(image * 255) / 255
    return image.astype(np.float32), inside.astype(np.float32)


@pytest.mark.slow
def test_large_image_where_base255_hash_collides():
    image, target = _large_scene()
    coords = ref.grid_coordinates(np.round(image.astype(np.float64) * 255), 16.0, 16.0, 8.0)
    exact = np.unique(np.ravel_multi_index(tuple(coords.T), tuple(coords.max(axis=0) + 1))).size
    hashed = np.unique(ref.base255_keys(coords)).size
    assert coords[:, 0].max() >= 255
    assert hashed < exact  # the published hash merges distinct vertices here
    del coords
    _, neighbors = kernels.build_grid(colour_cells(image, 16.0, 8.0), 16.0)
    assert neighbors.shape[0] == exact  # ours keeps every vertex
    fast = bilateral_solver(image, target)
    oracle = ref.solve(np.round(image.astype(np.float64) * 255), target)
    assert np.abs(fast - oracle).max() <= 1e-4


def test_matches_oracle_with_confidence_map_and_overrides():
    image, target = _scene()
    conf = np.ones(target.shape)
    conf[10:30, 10:30] = 0.0
    fast = bilateral_solver(
        image, target, confidence=conf, sigma_spatial=5, sigma_luma=10, sigma_chroma=6, lam=32
    )
    oracle = ref.solve(
        np.round(image.astype(np.float64) * 255),
        target,
        conf,
        sigma_spatial=5,
        sigma_luma=10,
        sigma_chroma=6,
        lam=32,
    )
    assert np.abs(fast - oracle).max() <= 1e-5


def test_constant_target_gives_constant_output():
    image, _ = _scene()
    out = bilateral_solver(image, np.full(image.shape[:2], 0.37))
    np.testing.assert_allclose(out, 0.37, atol=1e-5)


def test_zero_confidence_region_is_filled_from_the_rest():
    image = np.full((40, 40, 3), 0.5, np.float32)  # flat image: the whole grid is connected
    target = np.zeros((40, 40))
    target[:, 20:] = 1.0
    conf = np.ones((40, 40))
    conf[:, 20:] = 0.0  # the right half is unknown ...
    out = bilateral_solver(image, target, confidence=conf, sigma_spatial=8, cg_iterations=200)
    assert np.isfinite(out).all()
    assert np.abs(out).max() < 1e-3  # ... and filled from the known left half (all 0)


def test_exact_solution_lies_in_unit_interval_and_solve_is_linear():
    image, target = _scene()
    exact = bilateral_solver(image, target, cg_iterations=2000, cg_tol=1e-12)
    assert exact.min() >= -1e-6 and exact.max() <= 1 + 1e-6
    default = bilateral_solver(image, target)
    assert default.min() >= -0.01 and default.max() <= 1.01  # truncated CG: near [0, 1]
    scaled = bilateral_solver(image, target * 255.0)
    np.testing.assert_allclose(scaled / 255.0, default, atol=1e-5)


def test_found_output_is_binary_and_gated_by_iou():
    image, target = _scene()
    out = bilateral_solver(image, target, preset="found")
    assert set(np.unique(out)) <= {0.0, 1.0}
    # gate: a solver output unrelated to the input mask is rejected, the input is returned
    soft = np.zeros((20, 20))
    soft[2:6, 2:6] = 1
    given = np.zeros((20, 20), bool)
    given[10:18, 10:18] = True
    np.testing.assert_array_equal(found_binary(soft, given), given.astype(np.float32))
    # accepted: hole filled, small blob dropped (largest component kept)
    soft = np.zeros((20, 20))
    soft[2:14, 2:14] = 1
    soft[6, 6] = 0
    soft[17:19, 17:19] = 1
    kept = found_binary(soft, soft > 0.5)
    expected = np.zeros((20, 20), np.float32)
    expected[2:14, 2:14] = 1
    np.testing.assert_array_equal(kept, expected)


def _found_postprocess(soft, input_mask, get_all_cc):
    """FOUND's steps after the solve (bilateral_solver.py + misc.apply_bilateral_solver), as written there:
    per-label counts by a loop, `argsort`, all labels but the largest (multi) or the second largest
    (single, all ones without a label), then the IoU gate on the masks binarised at 0.5."""
    from scipy import ndimage

    binary = ndimage.binary_fill_holes(soft > 0.5)
    labeled, count = ndimage.label(binary)
    order = np.argsort([np.sum(labeled == i) for i in range(count + 1)])
    if get_all_cc:
        out = (labeled[None] == order[::-1][1:, None, None]).astype(int).sum(0)
    else:
        try:
            out = labeled == order[-2]
        except IndexError:
            out = np.ones(soft.shape, bool)
    m1, m2 = input_mask > 0.5, out > 0.5
    union = np.sum(m1 | m2)
    iou = np.sum(m1 & m2) / union if union else np.nan
    return out.astype(np.float32) if iou > 0.5 else input_mask.astype(np.float32)


def test_found_multi_keeps_every_object_as_found_does():
    # FOUND's default evaluation mode ("multi") keeps every component but the largest region; only its
    # single-object mode was provided
    soft = np.zeros((30, 30))
    soft[2:12, 2:12] = 1  # 100 px
    soft[16:26, 18:26] = 1  # 80 px
    soft[5, 5] = 0  # a hole, filled
    given = soft > 0.5
    multi = found_binary(soft, given, all_components=True)
    single = found_binary(soft, given)
    np.testing.assert_array_equal(multi, _found_postprocess(soft, given, True))
    np.testing.assert_array_equal(single, _found_postprocess(soft, given, False))
    assert multi.sum() == 180 and single.sum() == 100  # single mode drops the second object
    # no component: multi gives zeros (the gate then returns the input), single all ones
    empty = np.zeros((30, 30))
    for given in (np.zeros((30, 30), bool), np.ones((30, 30), bool), soft > 0.5):
        for cc in (True, False):
            np.testing.assert_array_equal(
                found_binary(empty, given, all_components=cc), _found_postprocess(empty, given, cc)
            )
    # a foreground larger than the background: multi keeps the background (and the rest), as FOUND
    big = np.ones((30, 30))
    big[0:4, :] = 0
    big[10:12, 10:12] = 0  # a hole inside: filled
    for given in (big > 0.5, big < 0.5):
        for cc in (True, False):
            np.testing.assert_array_equal(
                found_binary(big, given, all_components=cc), _found_postprocess(big, given, cc)
            )
    rng = np.random.default_rng(3)
    for _ in range(40):  # random blobs, ties in size included
        soft = (rng.random((24, 24)) < rng.uniform(0.2, 0.7)).astype(np.float64)
        given = rng.random((24, 24)) < 0.5 if rng.random() < 0.3 else soft > 0.5
        for cc in (True, False):
            np.testing.assert_array_equal(
                found_binary(soft, given, all_components=cc), _found_postprocess(soft, given, cc)
            )
    with pytest.raises(TypeError, match="`all_components` must be True or False"):
        found_binary(soft, given, all_components="yes")


def test_found_multi_preset_runs_the_multi_mode():
    image, target = _scene()
    out = bilateral_solver(image, target, preset="found_multi")
    assert set(np.unique(out)) <= {0.0, 1.0}
    np.testing.assert_array_equal(out, bilateral_solver(image, target, preset="found", output="found_multi"))


def test_inputs_are_not_modified():
    image, target = _scene()
    image_copy, target_copy = image.copy(), target.copy()
    bilateral_solver(image, target, preset="found")
    np.testing.assert_array_equal(image, image_copy)
    np.testing.assert_array_equal(target, target_copy)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"preset": "tokencat"}, ValueError, "preset"),
        ({"preset": 3}, ValueError, "preset"),
        ({"sigma_spatial": -1.0}, ValueError, "sigma_spatial"),
        ({"sigma_luma": 0.0}, ValueError, "sigma_luma"),
        ({"sigma_chroma": float("nan")}, ValueError, "sigma_chroma"),
        ({"sigma_spatial": float("inf")}, ValueError, "sigma_spatial"),
        ({"sigma_spatial": "16"}, TypeError, "sigma_spatial"),
        ({"lam": -1.0}, ValueError, "lam"),
        ({"lam": 1e20}, ValueError, r"`lam` must be a finite number in \[0, 1e\+08\]"),
        ({"cg_iterations": 2.5}, TypeError, "cg_iterations"),
        ({"cg_iterations": 10**9}, ValueError, "cg_iterations"),
        ({"confidence": -0.5}, ValueError, "confidence"),
        ({"confidence": "high"}, TypeError, "confidence"),
        ({"confidence": True}, TypeError, "confidence"),
        ({"confidence": np.ones((3, 3))}, ValueError, "confidence"),
        ({"confidence": np.full((8, 8), -1.0)}, ValueError, "confidence"),
        ({"confidence": np.array(float("nan"))}, ValueError, "confidence"),
        ({"output": "hard"}, ValueError, "output"),
    ],
)
def test_bad_parameters_are_refused(kwargs, error, match):
    image, target = _scene(8, 8)
    with pytest.raises(error, match=match):
        bilateral_solver(image, target, **kwargs)


def test_largest_lam_still_solves_and_a_one_pixel_image_keeps_its_target():
    # lam 1e13..1e17 gave wrong values, 1e20 a ZeroDivisionError in the kernel: capped at MAX_LAM = 1e8
    from maskrefine import refine
    from maskrefine._checks import MAX_LAM

    image, target = _scene(30, 40)
    out = bilateral_solver(image, target, lam=MAX_LAM)
    assert np.isfinite(out).all() and 0.0 <= out.min() and out.max() <= 1.0
    one = bilateral_solver(image[:1, :1], target[:1, :1], lam=MAX_LAM)
    assert one[0, 0] == pytest.approx(float(target[0, 0]), abs=1e-6)
    with pytest.raises(ValueError, match="lam"):
        refine(image, target, "bilateral_solver", lam=1e20)


def test_huge_sigmas_give_one_vertex_and_the_mean():
    image, target = _scene()
    out = bilateral_solver(image, target, sigma_spatial=1e12, sigma_luma=1e12, sigma_chroma=1e12)
    np.testing.assert_allclose(out, target.mean(), atol=1e-5)


def test_bad_arrays_are_refused():
    image, target = _scene(8, 8)
    with pytest.raises(ValueError, match="image"):
        bilateral_solver(image * 255, target)
    with pytest.raises(ValueError, match="target"):
        bilateral_solver(image, target[:4])
    with pytest.raises(TypeError, match="image"):
        bilateral_solver((image * 255).astype(np.uint8), target)
    with pytest.raises(ValueError, match="target"):
        bilateral_solver(image, np.full((8, 8), np.nan))


def _tokencut_coordinates(rgb255: np.ndarray, s_s: float, s_l: float, s_c: float) -> np.ndarray:
    """Grid coordinates as TokenCut's ``BilateralGrid`` makes them: one tensordot for YUV, then truncation."""
    matrix = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
    yuv = np.tensordot(rgb255, matrix, ([2], [1])) + np.array([0, 128, 128])
    ys, xs = np.mgrid[: rgb255.shape[0], : rgb255.shape[1]]
    cols = [(xs / s_s), (ys / s_s), yuv[..., 0] / s_l, yuv[..., 1] / s_c, yuv[..., 2] / s_c]
    return np.stack([c.astype(int) for c in cols], -1).reshape(-1, 5)


def test_pixels_on_a_cell_edge_land_in_the_reference_cell():
    # RGB (33, 57, 41): Y is exactly 48 (= 3 cells of 16) by tensordot but 47.999... left to right, and grey
    # 188 is 187.99999999999997 by tensordot; the old left-to-right formula put such pixels in other cells
    rng = np.random.default_rng(3)
    rgb255 = rng.integers(0, 256, (40, 60, 3)).astype(np.uint8)
    rgb255[::3, ::4] = (33, 57, 41)
    rgb255[1::5, 2::3] = (188, 188, 188)
    coords = _tokencut_coordinates(rgb255, 16.0, 16.0, 8.0)
    keys = np.ravel_multi_index(tuple(coords.T), tuple(coords.max(axis=0) + 1))
    _, expected = np.unique(keys, return_inverse=True)  # TokenCut's pixel -> vertex partition
    pixel_vertex, _ = kernels.build_grid(colour_cells(rgb255 / 255.0, 16.0, 8.0), 16.0)
    # the same partition of pixels into vertices (vertex numbering differs)
    pairs = set(zip(expected.tolist(), pixel_vertex.tolist(), strict=True))
    assert len(pairs) == len(set(expected.tolist())) == len(set(pixel_vertex.tolist()))
    # and the oracle's coordinates are TokenCut's
    np.testing.assert_array_equal(ref.grid_coordinates(rgb255, 16.0, 16.0, 8.0), coords)


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, bool])
def test_integer_confidence_is_refused_with_a_confidence_hint(dtype):
    # the message was the generic "values in [0, 1] ... /255", wrong for a confidence (any value >= 0)
    image, target = _scene(16, 16)
    with pytest.raises(TypeError, match=r"`confidence` must be a floating-point array of values") as info:
        bilateral_solver(image, target, confidence=np.ones(target.shape, dtype))
    assert "/ 255" not in str(info.value)


def test_a_float16_image_of_8bit_levels_gives_the_8bit_grid():
    # float16 holds k/255 only to within half a float16 step (up to 0.06 levels): the 1e-3 snap missed it,
    # and the grid (so the output) differed from the same image in float32
    image, target = _scene()
    expected = bilateral_solver(image, target)
    np.testing.assert_array_equal(bilateral_solver(image.astype(np.float16), target), expected)


@pytest.mark.parametrize("as_array", [False, True])
def test_huge_confidence_is_refused_instead_of_overflowing(as_array):
    # confidence 1e307 on a flat image: S·c overflowed to inf and the output was NaN (inf with a 1e30 target)
    image = np.full((64, 64, 3), 0.5, np.float32)
    target = np.full((64, 64), 0.5)
    conf = np.full(target.shape, 1e307) if as_array else 1e307
    with pytest.raises(ValueError, match=r"`confidence` .*1e\+30"):
        bilateral_solver(image, target, confidence=conf)
    # the largest accepted confidence still gives the target's value
    big = np.full(target.shape, 1e30) if as_array else 1e30
    out = bilateral_solver(image, np.full((64, 64), 1e30), confidence=big)
    np.testing.assert_allclose(out, 1e30, rtol=1e-6)


@pytest.mark.parametrize(("conf", "lam"), [(1e-14, 256.0), (1e-200, 256.0), (1e-200, 0.0)])
def test_confidence_too_small_for_lam_is_refused(conf, lam):
    # an all-ones target gave values up to 1760 (confidence 1e-14: lam / confidence = 2.6e16, beyond the
    # conditioning the conjugate gradient handles) and all zeros (1e-200: ||S(c·t)||² underflowed to 0)
    image, _ = _scene()
    ones = np.ones(image.shape[:2])
    with pytest.raises(ValueError, match=r"`confidence` is too small"):
        bilateral_solver(image, ones, confidence=conf, lam=lam)
    with pytest.raises(ValueError, match=r"`confidence` is too small"):
        bilateral_solver(image, ones, confidence=np.full(ones.shape, conf), lam=lam)


def test_smallest_accepted_confidence_keeps_a_constant_target():
    image, target = _scene()
    ones = np.ones(target.shape)
    for lam in (256.0, 1e8):
        out = bilateral_solver(image, ones, confidence=lam / 1e10, lam=lam)
        np.testing.assert_allclose(out, 1.0, atol=1e-5)
    # confidence 0 everywhere is still accepted (no data: the output is 0)
    np.testing.assert_array_equal(bilateral_solver(image, target, confidence=0.0), 0.0)


def test_found_binary_refuses_bad_masks_with_a_named_error():
    # a float 0/1 mask raised numpy's "ufunc 'bitwise_and' not supported", a mask of another shape a
    # broadcasting error, and a 0/255 uint8 mask was returned as 255.0 values instead of a 0/1 mask
    soft = np.zeros((6, 6))
    soft[1:5, 1:5] = 1.0
    with pytest.raises(TypeError, match="`input_mask` must be a bool array"):
        found_binary(soft, (soft > 0.5).astype(np.float32))
    with pytest.raises(TypeError, match="`input_mask` must be a bool array"):
        found_binary(soft, np.zeros((6, 6), np.uint8))
    with pytest.raises(ValueError, match=r"`input_mask` must have the shape of `soft` \(6, 6\)"):
        found_binary(soft, np.ones((5, 6), bool))
    with pytest.raises(ValueError, match="`soft` must have shape"):
        found_binary(soft[None], np.ones((1, 6, 6), bool))
    with pytest.raises(ValueError, match="soft"):
        found_binary(np.full((6, 6), np.nan), soft > 0.5)
    np.testing.assert_array_equal(found_binary(soft, soft > 0.5), soft.astype(np.float32))


def test_huge_diag_min_is_refused_instead_of_skipping_the_solve():
    # diag_min 1e200: the preconditioned p·Ap underflowed to 0, the breakdown guard kept the starting point
    # (per-vertex means, 0.57 away from the solve) without a word; SciPy's cg gives NaN there
    image, target = _scene()
    with pytest.raises(ValueError, match=r"`diag_min` must be a finite number in \[.*, 1e\+30\]"):
        bilateral_solver(image, target, diag_min=1e200)
    # the largest accepted clamp (a constant preconditioner: plain CG) still solves like the oracle
    fast = bilateral_solver(image, target, diag_min=1e30)
    oracle = ref.solve(np.round(image.astype(np.float64) * 255), target, diag_min=1e30)
    assert np.abs(fast - oracle).max() <= 1e-5
    assert np.abs(fast - bilateral_solver(image, target, cg_iterations=0)).max() > 0.1  # it did iterate


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ([0.9], r"`confidence` must be a float >= 0 or a float array of shape \(8, 8\); got list"),
        ("0.9", r"`confidence` must be a float >= 0 or a float array of shape \(8, 8\); got str"),
        (None, r"`confidence` must be a float >= 0 or a float array of shape \(8, 8\); got NoneType"),
        (np.ones((8, 8), np.int64), r"`confidence` must be a floating-point array of values >= 0; got dtype"),
        (np.True_, r"`confidence` must be a floating-point array of values >= 0; got dtype bool"),
    ],
)
def test_confidence_type_messages(value, match):
    # the non-array-like wording is now derived from as_float_array's refusal instead of repeating its test
    image, target = _scene(8, 8)
    with pytest.raises(TypeError, match=match):
        bilateral_solver(image, target, confidence=value)


def test_found_output_solves_on_the_thresholded_mask_in_float64(monkeypatch):
    # FOUND refines its binary mask (sigmoid > 0.5) and thresholds the float64 solution. maskrefine solved
    # on the soft map it was given: here the soft background (0.49, with 10 % at 0.95) averaged above 0.5,
    # the whole image came out foreground, the IoU gate failed, and the unrefined mask was returned.
    import sys

    rng = np.random.default_rng(0)
    image = np.empty((64, 64, 3), np.float32)
    image[:] = (0.2, 0.3, 0.4)
    image[20:44, 20:44] = (0.9, 0.8, 0.1)
    target = np.full((64, 64), 0.49, np.float32)
    target[rng.random((64, 64)) < 0.1] = 0.95
    target[20:44, 20:44] = 0.95
    square = np.zeros((64, 64), np.float32)
    square[20:44, 20:44] = 1.0
    out = bilateral_solver(image, target, preset="found")
    np.testing.assert_array_equal(out, square)
    np.testing.assert_array_equal(
        out, bilateral_solver(image, (target > 0.5).astype(np.float32), preset="found")
    )
    module = sys.modules["maskrefine.filters.bilateral_solver"]
    seen = []
    monkeypatch.setattr(module, "found_binary", lambda soft, mask, **_: seen.append(soft.dtype) or square)
    bilateral_solver(image, target, preset="found")
    assert seen == [np.float64]


def _yuv_as_written(rgb, snap):
    import sys

    bs_module = sys.modules["maskrefine.filters.bilateral_solver"]
    scaled = np.asarray(rgb, np.float64) * 255.0
    levels = np.floor(scaled + 0.5)
    snapped = np.where(np.abs(scaled - levels) < snap, levels, scaled)
    return np.tensordot(snapped, bs_module.RGB_TO_YUV, ([2], [1])) + bs_module.YUV_OFFSET


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_reference_yuv_is_the_formula_bit_for_bit_in_a_third_of_the_memory(dtype, monkeypatch):
    # in place since 2026-12-03: the solver's peak was ~107 bytes per pixel (2000², measured), 59 after
    import tracemalloc

    from maskrefine.filters.bilateral_solver import _SNAP, _SNAP_FLOAT16

    rng = np.random.default_rng(5)
    levels = rng.integers(0, 256, (300, 400, 3)) / 255.0
    rgb = (levels + rng.normal(0, 2e-3, levels.shape) * (rng.random(levels.shape) < 0.5)).astype(dtype)
    snap = _SNAP_FLOAT16 if dtype == np.float16 else _SNAP
    want = _yuv_as_written(rgb, snap)
    # blocks of 4 rows: the block temporaries stay small next to this 300x400 test image (the default
    # blocks, 2 MiB each, are small next to the images the limit is for)
    monkeypatch.setattr(sys.modules["maskrefine.filters.bilateral_solver"], "_ROW_BLOCK_VALUES", 4 * 400 * 3)
    tracemalloc.start()
    got = reference_yuv(rgb)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert got.tobytes() == want.tobytes()
    # the formula as written peaked at about 120 bytes per pixel, the in-place version at ~73; with the
    # snap in blocks of rows, the scaled image and the YUV (24 bytes per pixel each) are what is left
    assert peak / (300 * 400) < 56


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_reference_yuv_snaps_the_same_in_blocks_of_rows(dtype, monkeypatch):
    # the snap to 8-bit levels runs in blocks of rows (peak memory); blocks of 1, 2 and 7 rows, and one
    # block, give the YUV of the formula as written
    bs = sys.modules["maskrefine.filters.bilateral_solver"]
    rng = np.random.default_rng(3)
    levels = rng.integers(0, 256, (23, 17, 3)) / 255.0
    rgb = (levels + rng.normal(0, 5e-4, levels.shape) * (rng.random(levels.shape) < 0.5)).astype(dtype)
    want = _yuv_as_written(rgb, bs._SNAP_FLOAT16 if dtype == np.float16 else bs._SNAP)
    for values in (17 * 3, 2 * 17 * 3, 7 * 17 * 3, 2**18):
        monkeypatch.setattr(bs, "_ROW_BLOCK_VALUES", values)
        assert bs.reference_yuv(rgb).tobytes() == want.tobytes()


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize(("sigma_luma", "sigma_chroma"), [(16.0, 8.0), (4.0, 4.0), (3.7, 0.9)])
def test_colour_cells_are_the_reference_cells_in_any_blocks_of_rows(
    dtype, sigma_luma, sigma_chroma, monkeypatch
):
    # the solver's grid is built from colour_cells (int32, in blocks of rows) instead of a whole float64
    # YUV image: the cells must be those of the reference's one whole-image tensordot, truncated, bit for
    # bit, including pixels whose Y lies exactly on a cell edge ((33, 57, 41): Y = 48 by tensordot)
    bs = sys.modules["maskrefine.filters.bilateral_solver"]
    rng = np.random.default_rng(11)
    h, w = 37, 29
    levels = rng.integers(0, 256, (h, w, 3)) / 255.0
    levels[::3, ::4] = np.array([33, 57, 41]) / 255.0
    levels[1::5, 2::3] = 188 / 255.0
    rgb = (levels + rng.normal(0, 5e-4, levels.shape) * (rng.random(levels.shape) < 0.3)).astype(dtype)
    yuv = _yuv_as_written(rgb, bs._SNAP_FLOAT16 if dtype == np.float16 else bs._SNAP)
    want = np.stack([yuv[..., 0] / sigma_luma, yuv[..., 1] / sigma_chroma, yuv[..., 2] / sigma_chroma], -1)
    want = want.astype(int)  # the reference's truncation
    for values in (w * 3, 2 * w * 3, 7 * w * 3, 2**18):
        monkeypatch.setattr(bs, "_ROW_BLOCK_VALUES", values)
        got = colour_cells(rgb, sigma_luma, sigma_chroma)
        assert got.dtype == np.int32 and got.shape == (h, w, 3)
        np.testing.assert_array_equal(got, want)


def test_the_grid_holds_12_bytes_per_pixel_not_a_float64_yuv_image(monkeypatch):
    # the solver's peak was the scaled image and its YUV, float64 (48 bytes per pixel); the int32 cells
    # converted in blocks of rows hold 12 (bench/bilateral.py measures the solver's whole peak)
    import tracemalloc

    bs = sys.modules["maskrefine.filters.bilateral_solver"]
    monkeypatch.setattr(bs, "_ROW_BLOCK_VALUES", 4 * 400 * 3)
    rgb = (np.random.default_rng(2).integers(0, 256, (300, 400, 3)) / 255.0).astype(np.float32)
    tracemalloc.start()
    cells = colour_cells(rgb, 16.0, 8.0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert cells.nbytes == 12 * 300 * 400
    assert peak / (300 * 400) < 14


@pytest.mark.parametrize(("height", "values"), [(5, 4 * 3), (9, 4 * 3), (2, 3), (1, 3), (7, 3)])
def test_no_block_of_rows_is_a_single_pixel(height, values, monkeypatch):
    # NumPy multiplies a (1, 3) block as a vector (gemv), which rounds (1, 189, 147)'s Y = 128, a cell edge,
    # otherwise than the whole image's matrix product (gemm): a one-pixel last block of a one-pixel-wide
    # image moved that pixel to another cell (the solver's output changed)
    bs = sys.modules["maskrefine.filters.bilateral_solver"]
    monkeypatch.setattr(bs, "_ROW_BLOCK_VALUES", values)
    blocks = bs._row_blocks(height, 1)
    assert blocks[0][0] == 0 and blocks[-1][1] == height
    assert all(end - start >= 2 for start, end in blocks) or height == 1
    rgb = np.tile(np.array([1, 189, 147]) / 255.0, (height, 1, 1)).astype(np.float32)
    want = _yuv_as_written(rgb, bs._SNAP)
    assert bs.reference_yuv(rgb).tobytes() == want.tobytes()
    np.testing.assert_array_equal(colour_cells(rgb, 16.0, 8.0), (want / [16.0, 8.0, 8.0]).astype(int))
