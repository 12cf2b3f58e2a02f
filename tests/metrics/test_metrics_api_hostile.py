"""Hostile inputs to the public metrics helpers (resampling rules, Evaluator.add_scored, CorLoc boxes)."""

from __future__ import annotations

import numpy as np
import pytest

from maskrefine.metrics import (
    Evaluator,
    boxes_from_mask,
    get_preset,
    mask_to_box,
    pil_bilinear,
    prediction_stride,
    score_image,
    torch_bilinear,
    torch_nearest,
)

RESAMPLERS = [pil_bilinear, torch_bilinear, torch_nearest]


@pytest.mark.parametrize("resample", RESAMPLERS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0, 0)])
def test_resamplers_refuse_an_empty_grid(resample, shape: tuple[int, int]) -> None:
    # torch_bilinear read outside the array (clamped index -1 in an unchecked kernel) and returned
    # garbage for (0, 5); the others raised IndexError or returned zeros
    with pytest.raises(ValueError, match=r"`array` must have shape \(h, w\) with h, w >= 1"):
        resample(np.zeros(shape, np.float32), (4, 6))


@pytest.mark.parametrize("resample", RESAMPLERS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    ("array", "error", "message"),
    [
        (np.zeros(5, np.float32), ValueError, "got shape (5,)"),
        (np.zeros((2, 2, 3), np.float32), ValueError, "got shape (2, 2, 3)"),
        ([[0.5, 0.2]], TypeError, "got list"),
        (None, TypeError, "got NoneType"),
        ("mask.png", TypeError, "got str"),
    ],
)
def test_resamplers_name_array_when_it_is_not_a_2d_array(resample, array, error, message: str) -> None:
    with pytest.raises(error, match="`array`") as info:
        resample(array, (4, 6))
    assert message in str(info.value)


@pytest.mark.parametrize("resample", [pil_bilinear, torch_bilinear], ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", [np.complex64, object, "U3"])
def test_bilinear_resamplers_refuse_values_they_cannot_interpolate(resample, dtype) -> None:
    with pytest.raises(TypeError, match="`array` must hold real numbers"):
        resample(np.zeros((3, 3), dtype=dtype), (4, 6))


def test_resamplers_still_take_what_they_documented() -> None:
    grid = np.arange(12, dtype=np.float32).reshape(3, 4) / 12
    assert torch_bilinear(grid, (6, 8)).shape == (6, 8)
    assert pil_bilinear((grid * 255).astype(np.uint8), (6, 8)).dtype == np.uint8
    assert torch_nearest(grid > 0.5, (6, 8)).dtype == np.bool_  # any dtype: values are copied
    assert torch_bilinear(np.ma.masked_array(grid), (6, 8)).shape == (6, 8)


@pytest.mark.parametrize(
    ("pred_hw", "gt_hw", "name"), [(None, (16, 16), "pred_hw"), ((2, 2), "16x16", "gt_hw")]
)
def test_prediction_stride_names_a_bad_size(pred_hw, gt_hw, name: str) -> None:
    with pytest.raises(ValueError, match=f"`{name}` must be two integers"):
        prediction_stride(pred_hw, gt_hw)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"empty_gt": "yes"}, "empty_gt"),
        ({"empty_pred": 1}, "empty_pred"),
        ({"weighted_fbeta": "0.5"}, "weighted_fbeta"),
    ],
)
def test_add_scored_refuses_a_bad_row_and_keeps_the_evaluator_usable(change: dict, key: str) -> None:
    # the row was accepted and summary() then raised TypeError for good
    rng = np.random.default_rng(0)
    row, curves = score_image(rng.random((16, 16)), rng.random((16, 16)) > 0.5, "tokencut")
    evaluator = Evaluator("tokencut")
    with pytest.raises(TypeError, match=f"`row\\['{key}'\\]`"):
        evaluator.add_scored({**row, **change}, curves)
    evaluator.add_scored(row, curves)
    assert evaluator.summary()["count"] == 1


def test_integer_label_maps_count_negative_labels_as_foreground() -> None:
    # "another integer type (nonzero is foreground)": -1 labels gave no box
    labels = np.zeros((4, 4), np.int8)
    labels[1:3, 1:3] = -1
    np.testing.assert_array_equal(boxes_from_mask(labels), [[1.0, 1.0, 3.0, 3.0]])
    np.testing.assert_array_equal(mask_to_box(labels), [1.0, 1.0, 3.0, 3.0])


@pytest.mark.parametrize(
    "call",
    [
        lambda: mask_to_box(np.ones((3, 3), bool), np.array(["largest_box", "largest_cc"])),
        lambda: mask_to_box(np.ones((3, 3), bool), np.array(["largest_cc"])),
        lambda: get_preset("tokencut").replace(resize=np.array(["auto", "nearest"])),
        lambda: get_preset("tokencut").replace(resize=np.array(["nearest"])),
        lambda: get_preset("tokencut").replace(corloc_connectivity=np.array([8])),
        lambda: get_preset("tokencut").replace(threshold_op=np.array([">"])),
        lambda: get_preset("tokencut").replace(iou_empty_union=np.array(["zero"])),
    ],
)
def test_choices_given_as_arrays_are_refused_by_name(call) -> None:
    # numpy's "truth value ... is ambiguous" (no argument named), or a one-element array let through
    with pytest.raises(
        ValueError, match=r"must be one of|must be '>' or '>='|must be 'nan', 'skip' or 'zero'"
    ):
        call()


def test_refine_names_the_image_when_it_is_smaller_than_the_window() -> None:
    import maskrefine

    with pytest.raises(ValueError, match=r"^the image must be at least the window size 2\*radius\+1 = 19"):
        maskrefine.refine(np.zeros((10, 12, 3), np.float32), np.zeros((10, 12), np.float32), "guided")
