"""auto: kind detection on binary / soft / full-resolution masks, the rule table, the registered refiner."""

from __future__ import annotations

import numpy as np
import pytest

from maskrefine import refine
from maskrefine.auto import AUTO_RULE_TEXT, AUTO_RULES, BlockGrid, block_grid, decide, detect_kind
from maskrefine.refiners import REFINERS, resize_mask


@pytest.mark.parametrize(
    ("mask_hw", "image_hw", "patch"),
    [
        ((20, 30), (321, 481), 16),
        ((21, 31), (321, 481), 16),  # ceil grid (padded image): round(15.4) would say 15
        ((21, 30), (321, 481), 16),
        ((38, 57), (600, 900), 16),  # ceil(600 / 16) = 38, ceil(900 / 16) = 57
        ((23, 35), (321, 481), 14),  # ceil grid of ViT/14
        ((25, 35), (321, 481), 13),  # no patch grid fits: rounded mean ratio (12.8, 13.7)
        ((41, 61), (321, 481), 8),
        ((321, 481), (321, 481), 1),
        ((23, 34), (321, 481), 14),
        ((160, 240), (321, 481), 2),
        ((1, 1), (16, 16), 16),
        ((6, 6), (15, 15), 3),  # no grid fits: ratio 2.5, halves rounded up (Python's round gives 2)
        ((10, 10), (35, 35), 4),  # ratio 3.5 (halves to even gives 4 too)
    ],
)
def test_patch_size(mask_hw, image_hw, patch):
    assert detect_kind(np.zeros(mask_hw, np.float32), image_hw).patch == patch


def test_binary_ceil_grid_gets_the_x16_radius():
    # 0.7 x 16 = 11.2 -> 11 (the measured best at x16); as x15 it was round(10.5) = 10
    mask = np.zeros((21, 31), np.uint8)
    mask[5:15, 5:20] = 255
    assert decide(mask, (321, 481)).params["radius"] == 11


@pytest.mark.parametrize(
    ("mask_hw", "image_hw", "binary", "radius"),
    [
        ((26, 40), (321, 481), False, 5),  # soft x12: 0.375 x 12 = 4.5 -> 5 (Python's round gives 4)
        ((26, 40), (321, 481), True, 8),  # binary x12: 0.7 x 12 = 8.4 -> 8
        ((64, 96), (321, 481), True, 4),  # binary x5: 0.7 x 5 = 3.5 -> 4
        ((21, 32), (321, 481), True, 11),  # binary x15: 0.7 x 15 = 10.5 -> 11 (Python's round gives 10)
        # binary x45 (a fallback stride): 0.7 x 45 = 31.5 -> 32; in floats 31.499999999999996 gave 31
        ((20, 20), (900, 900), True, 32),
        ((20, 20), (1700, 1700), True, 60),  # x85: 59.5 -> 60 (59 in floats)
    ],
)
def test_radius_rounds_halves_up(mask_hw, image_hw, binary, radius, rng):
    mask = (rng.random(mask_hw) > 0.5).astype(np.float32) if binary else rng.random(mask_hw, np.float32)
    decision = decide(mask, image_hw)
    assert decision.kind.binary is binary
    assert decision.params["radius"] == radius, decision


@pytest.mark.parametrize(
    ("values", "binary"),
    [((0.0, 1.0), True), ((0, 255), True), ((0.2, 0.7), True), ((0.0,), True), ((0.0, 0.5, 1.0), False)],
)
def test_binary_or_soft(values, binary, rng):
    mask = rng.choice(np.array(values), size=(20, 30))
    assert detect_kind(mask, (320, 480)).binary is binary


def test_every_kind_has_exactly_one_rule():
    for binary in (True, False):
        for patch in range(1, 65):
            matches = [r for r in AUTO_RULES if r.matches(detect_kind_stub(patch, binary))]
            assert len(matches) == 1, (binary, patch)


def detect_kind_stub(patch, binary):
    from maskrefine.auto import MaskKind

    return MaskKind(patch, binary)


def test_full_resolution_masks_are_left_alone(rng):
    image = rng.random((48, 64, 3)).astype(np.float32)
    for mask in (rng.random((48, 64)).astype(np.float32), (rng.random((48, 64)) > 0.5).astype(np.float32)):
        decision = decide(mask, (48, 64))
        assert decision.method == "identity" and decision.kind.patch == 1
        np.testing.assert_array_equal(refine(image, mask, "auto"), mask)


def test_auto_applies_its_decision(rng):
    image = rng.random((96, 128, 3)).astype(np.float32)
    for mask in ((rng.random((6, 8)) > 0.5).astype(np.float32), rng.random((12, 16)).astype(np.float32)):
        decision = decide(mask, image.shape[:2])
        expected = refine(
            image,
            mask,
            decision.method,
            guide=decision.guide,
            binary_input=decision.upsample == "nearest",
            **decision.params,
        )
        np.testing.assert_array_equal(refine(image, mask, "auto"), expected)
        assert decision.to_dict()["kind"] == decision.kind.name
        if decision.method != "identity":
            assert decision.params["radius"] >= 1


def test_radius_is_clamped_to_the_image(rng):
    mask = (rng.random((1, 2)) > 0.5).astype(np.float32)
    decision = decide(mask, (20, 40))
    if decision.method != "identity":
        assert 2 * decision.params["radius"] + 1 <= 20
    refine(rng.random((20, 40, 3)).astype(np.float32), mask, "auto")


def test_auto_is_registered_with_its_rule_text():
    spec = REFINERS["auto"]
    assert spec.native_mask and spec.defaults == {}
    assert "binary" in AUTO_RULE_TEXT and "soft" in AUTO_RULE_TEXT
    # the resize helper used by auto is the module's rule
    assert resize_mask(np.ones((2, 2), np.float32), (4, 4)).shape == (4, 4)


def blocks_of(grid, stride, image_hw):
    """``grid`` nearest-upsampled by ``stride`` from the corner, cut or edge-extended to the image."""
    up = grid.repeat(stride, 0).repeat(stride, 1)[: image_hw[0], : image_hw[1]]
    return np.pad(up, ((0, image_hw[0] - up.shape[0]), (0, image_hw[1] - up.shape[1])), mode="edge")


@pytest.mark.parametrize("stride", [8, 14, 16])
@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("rounding", [np.ceil, np.floor])
def test_full_size_block_masks_are_refined_as_their_grid(stride, binary, rounding, rng):
    # TokenCut and others save the patch grid nearest-upsampled to the image: that mask is refined as the
    # grid would be (it used to be taken for a full-resolution mask and left alone)
    image_hw = (321, 481)
    grid_hw = (int(rounding(image_hw[0] / stride)), int(rounding(image_hw[1] / stride)))
    grid = rng.random(grid_hw).astype(np.float32)
    grid = (grid > 0.5).astype(np.float32) if binary else np.round(grid * 255) / 255
    mask = blocks_of(grid, stride, image_hw)
    kind = detect_kind(mask, image_hw)
    assert (kind.patch, kind.binary, kind.blocks) == (stride, binary, True)
    assert kind.name == f"{'binary' if binary else 'soft'} x{stride} (full-size blocks)"
    decision = decide(mask, image_hw)
    assert decision.to_dict()["full_size_blocks"] is True
    image = rng.random((*image_hw, 3)).astype(np.float32)
    refined = refine(image, mask, "auto")
    if decision.method != "identity":
        assert np.abs(refined - mask).max() > 0.05
    ceil_grid = mask[::stride, ::stride]  # the grid as a padded-image ViT saves it
    np.testing.assert_array_equal(refined, refine(image, ceil_grid, "auto"))


@pytest.mark.parametrize(
    "make",
    [
        lambda g: np.roll(blocks_of(g, 16, (321, 481)), 1, axis=0),  # blocks not from the corner
        lambda g: np.ones((321, 481), np.float32),  # constant: any stride would fit
        lambda g: blocks_of(g, 16, (321, 481)) * (1 - 0.5 * (np.arange(481) == 100)),  # one odd column
    ],
    ids=["shifted", "constant", "one_column_off"],
)
def test_masks_that_are_not_corner_blocks_stay_full_resolution(make, rng):
    mask = make((rng.random((21, 31)) > 0.5).astype(np.float32)).astype(np.float32)
    kind = detect_kind(mask, (321, 481))
    assert kind.patch == 1 and not kind.blocks


def test_block_detection_needs_two_blocks_and_the_image_size():
    small = np.kron(np.eye(2), np.ones((7, 7)))  # 14x14: one 8-block across, 14-blocks only one
    assert block_grid(small) is None
    grid_of_blocks = np.kron(np.eye(2), np.ones((16, 16)))  # 32x32 of 16-blocks; 32 needs 64 pixels
    assert block_grid(grid_of_blocks) == BlockGrid(16, (2, 2), stretched=False)
    # a block mask of another size than the image is a mask of that size (read by its size, not blocks)
    assert detect_kind(grid_of_blocks, (64, 64)).blocks is False


def blob_grid(rng, shape):
    """A binary grid with a few smooth blobs (what a saliency method's patch mask looks like)."""
    import cv2

    noise = rng.random((max(2, shape[0] // 3), max(2, shape[1] // 3))).astype(np.float32)
    return cv2.resize(noise, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR) > 0.5


def torch_nearest(grid, image_hw):
    """``F.interpolate(grid, size=image_hw, mode="nearest")``: source index ``floor(dst * in / out)``."""
    rows = np.arange(image_hw[0]) * grid.shape[0] // image_hw[0]
    cols = np.arange(image_hw[1]) * grid.shape[1] // image_hw[1]
    return grid[np.ix_(rows, cols)]


def pil_nearest(grid, image_hw):
    """PIL's ``resize(..., NEAREST)``: sampled at pixel centres, ``floor((dst + 0.5) * in / out)``."""
    rows = (np.arange(image_hw[0]) * 2 + 1) * grid.shape[0] // (2 * image_hw[0])
    cols = (np.arange(image_hw[1]) * 2 + 1) * grid.shape[1] // (2 * image_hw[1])
    return grid[np.ix_(rows, cols)]


@pytest.mark.parametrize("upsample", [torch_nearest, pil_nearest], ids=["torch", "pil"])
@pytest.mark.parametrize(
    ("image_hw", "stride"), [((321, 481), 16), ((300, 450), 8), ((333, 500), 14), ((700, 517), 16)]
)
def test_a_grid_stretched_onto_the_image_is_found_and_refined_as_that_grid(upsample, image_hw, stride, rng):
    # TokenCut's saliency masks: the grid of an image resized to a multiple of the patch size, resized back
    # to the image with F.interpolate(mode="nearest"): cells of 16.05 px at 321 rows, not 16
    grid_hw = (round(image_hw[0] / stride), round(image_hw[1] / stride))
    grid = blob_grid(rng, grid_hw).astype(np.float32)
    mask = upsample(grid, image_hw)
    found = block_grid(mask)
    assert found == BlockGrid(stride, grid_hw, stretched=True)
    np.testing.assert_array_equal(found.grid_of(mask), grid)
    decision = decide(mask, image_hw)
    assert decision.kind.patch == stride and decision.kind.blocks
    assert decision.to_dict()["block_placement"] == "stretched"
    assert decision.to_dict()["block_grid"] == list(grid_hw)
    image = rng.random((*image_hw, 3)).astype(np.float32)
    expected = refine(
        image,
        resize_mask(grid, image_hw, binary_input=decision.upsample == "nearest", place_grid=False),
        decision.method,
        guide=decision.guide,
        **decision.params,
    )
    refined = refine(image, mask, "auto")
    np.testing.assert_array_equal(refined, expected)
    assert np.abs(refined - mask).max() > 0.05  # refined, not passed through


def test_stretched_grids_need_enough_edges_to_be_told_from_chance(rng):
    # a box's 4 edges can fall within a pixel of some grid's edges by chance: not taken for a grid
    box = np.zeros((321, 481), np.float32)
    box[33:97, 49:161] = 1  # 33 = 2 x 16.05 + 1, 49 = 3 x 16.03 + 1: on the stretched grid's edges
    assert block_grid(box) is None
    box[200:265, 300:400] = 1  # 8 edges, not all near cell edges
    assert block_grid(box) is None


@pytest.mark.data
@pytest.mark.parametrize("source", ["masks", "predictions/DSS"])
def test_no_full_resolution_sod_map_is_taken_for_a_grid(source, sod_dir):
    import cv2

    files = sorted((sod_dir / source).glob("*.png"))[:60]
    assert files
    for path in files:
        assert block_grid(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)) is None, path


def test_a_16_grid_with_edges_on_every_other_cell_edge_stays_a_16_grid(rng):
    # with 32 among the strides, this grid's blocks were taken for 32-pixel cells: radius 22, half the grid
    grid = np.zeros((21, 31), np.float32)
    grid[2:6, 4:10] = 1
    mask = grid.repeat(16, 0).repeat(16, 1)[:321, :481]
    assert block_grid(mask) == BlockGrid(16, (21, 31), stretched=False)
    image = rng.random((321, 481, 3)).astype(np.float32)
    np.testing.assert_array_equal(refine(image, mask, "auto"), refine(image, grid, "auto"))
