"""``refiners.resize_mask`` validates its arguments; ``resize_mask_unchecked`` keeps today's results."""

from __future__ import annotations

import numpy as np
import pytest

from maskrefine.refiners import resize_mask, resize_mask_unchecked


def _mask(h: int = 4, w: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w)).astype(np.float32)


@pytest.mark.parametrize(
    ("mask", "error", "match"),
    [
        ([[0.0, 1.0]], TypeError, r"^`mask` must be a NumPy array; got list"),
        (None, TypeError, r"^`mask` must be a NumPy array; got NoneType"),
        (np.ones((2, 2), np.uint8), TypeError, r"^`mask` must be a floating-point array .*dtype uint8"),
        (np.ones((2, 2), bool), TypeError, r"^`mask` must be a floating-point array .*dtype bool"),
        (np.ones((2, 2), np.complex128), TypeError, r"^`mask` must be a floating-point array .*complex128"),
        (
            np.zeros((0, 5), np.float32),
            ValueError,
            r"^`mask` must have at least one pixel; got shape \(0, 5\)",
        ),
        (np.zeros((3, 0), np.float32), ValueError, r"^`mask` must have at least one pixel"),
        (
            np.zeros((2, 2, 1, 1), np.float32),
            ValueError,
            r"^`mask` must be 2-D \(h, w\); got shape \(2, 2, 1, 1\)",
        ),
        (np.zeros((2, 2, 1), np.float32), ValueError, r"^`mask` must be 2-D .*Squeeze the channel axis"),
        (np.zeros(5, np.float32), ValueError, r"^`mask` must be 2-D \(h, w\); got shape \(5,\)"),
        (np.float32(0.5), ValueError, r"^`mask` must be 2-D \(h, w\); got shape \(\)"),
        (np.array([[0.5, np.nan]]), ValueError, r"^`mask` contains 1 NaN or infinite value"),
        (np.array([[0.5, np.inf]]), ValueError, r"^`mask` contains 1 NaN or infinite value"),
        (np.array([[0.5, 1.5]]), ValueError, r"^`mask` values must lie in \[0, 1\]; .*0\.5 above 1"),
        (np.array([[-0.25, 0.5]]), ValueError, r"^`mask` values must lie in \[0, 1\]; .*0\.25 below 0"),
    ],
)
def test_bad_mask_is_refused_naming_it(mask: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        resize_mask(mask, (20, 30))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("size_hw", "match"),
    [
        (None, r"got None"),
        ((20,), r"got \(20,\)"),
        ((20, 30, 1), r"got \(20, 30, 1\)"),
        ((0, 20), r"must be two integers \(H, W\) >= 1; got \(0, 20\)"),
        ((20, -1), r"got \(20, -1\)"),
        ((10.5, 5), r"got \(10\.5, 5\)"),
        ((10.0, 5), r"got \(10\.0, 5\)"),
        ((True, 5), r"got \(True, 5\)"),
        ("ab", r"got 'ab'"),
        (np.array([20, 30]), r"got array\(\[20, 30\]\)"),
        ((10**6, 10**6), r"must be at most 2147483648 pixels"),
        ((10**400, 1), r"must be at most 2147483648 pixels"),
    ],
    ids=repr,
)
def test_bad_size_is_refused_naming_it(size_hw: object, match: str) -> None:
    with pytest.raises(ValueError, match=r"^`size_hw` .*" + match):
        resize_mask(_mask(), size_hw)  # type: ignore[arg-type]


@pytest.mark.parametrize("size_hw", [(2**31, 1), (1, 2**31)])
def test_a_side_beyond_a_c_int_is_refused(size_hw: tuple[int, int]) -> None:
    # within the pixel limit, but OpenCV's dsize is a pair of C ints (this raised a raw cv2.error)
    with pytest.raises(
        ValueError, match=r"^`size_hw` must be an integer in \[1, 2147483647\]; got 2147483648"
    ):
        resize_mask(_mask(), size_hw)


@pytest.mark.parametrize("name", ["binary_input", "place_grid"])
@pytest.mark.parametrize("value", [1, 0, "no", None, np.array([True])], ids=repr)
def test_flags_must_be_bools(name: str, value: object) -> None:
    with pytest.raises(TypeError, match=rf"^`{name}` must be True or False; got "):
        resize_mask(_mask(), (20, 30), **{name: value})  # type: ignore[arg-type]


def test_numpy_bools_and_numpy_integers_are_accepted() -> None:
    mask = _mask()
    out = resize_mask(
        mask, (np.int64(8), np.uint16(12)), binary_input=np.bool_(True), place_grid=np.bool_(False)
    )
    assert out.shape == (8, 12) and out.dtype == np.float32
    np.testing.assert_array_equal(
        out, resize_mask_unchecked(mask, (8, 12), binary_input=True, place_grid=False)
    )


@pytest.mark.parametrize(
    ("mask_hw", "size_hw"),
    [
        ((21, 31), (321, 481)),  # a patch grid placed cell by cell (stride 16, rounded up, cropped)
        ((20, 30), (321, 481)),  # rounded down: extended by edge repetition
        ((40, 60), (321, 481)),  # stride 8
        ((100, 150), (321, 481)),  # no integer stride fits: stretched
        ((4, 6), (4, 6)),  # same size: a copy
        ((1, 2), (1, 4)),
        ((7, 3), (35, 15)),
    ],
)
@pytest.mark.parametrize("binary_input", [False, True])
@pytest.mark.parametrize("place_grid", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_valid_input_gives_the_unchecked_result(
    mask_hw: tuple[int, int], size_hw: tuple[int, int], binary_input: bool, place_grid: bool, dtype: type
) -> None:
    mask = _mask(*mask_hw).astype(dtype)
    if binary_input:
        mask = (mask > 0.5).astype(dtype)
    expected = resize_mask_unchecked(mask, size_hw, binary_input=binary_input, place_grid=place_grid)
    out = resize_mask(mask, size_hw, binary_input=binary_input, place_grid=place_grid)
    assert out.shape == size_hw and out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)


def test_patch_grid_is_placed_cell_by_cell() -> None:
    # a known answer, so the comparison above cannot pass with both functions broken alike
    grid = np.arange(21 * 31, dtype=np.float64).reshape(21, 31) / (21 * 31)
    out = resize_mask(grid, (321, 481), binary_input=True)
    rows, cols = np.arange(321) // 16, np.arange(481) // 16
    np.testing.assert_array_equal(out, grid[rows][:, cols].astype(np.float32))


def test_input_is_not_modified_and_the_result_is_new() -> None:
    mask = _mask(8, 8)
    before = mask.copy()
    for size in [(8, 8), (16, 16), (128, 128)]:
        out = resize_mask(mask, size)
        assert not np.shares_memory(out, mask)
        out[...] = 7.0
        np.testing.assert_array_equal(mask, before)


def test_read_only_and_non_contiguous_inputs_work() -> None:
    base = _mask(16, 24)
    read_only = base.copy()
    read_only.flags.writeable = False
    np.testing.assert_array_equal(resize_mask(read_only, (32, 48)), resize_mask_unchecked(base, (32, 48)))
    strided = base[::2, ::2]  # (8, 12), not contiguous
    assert not strided.flags.c_contiguous
    expected = resize_mask_unchecked(np.ascontiguousarray(strided), (128, 192))
    np.testing.assert_array_equal(resize_mask(strided, (128, 192)), expected)
    transposed = base.T  # Fortran order
    np.testing.assert_array_equal(resize_mask(transposed, (24, 16)), transposed.astype(np.float32))


def test_float_rounding_just_outside_the_range_is_accepted() -> None:
    mask = np.array([[1.0 + 5e-7, -5e-7]], np.float64)
    out = resize_mask(mask, (1, 2))
    np.testing.assert_array_equal(out, mask.astype(np.float32))


def test_a_masked_array_is_checked_on_its_hidden_data() -> None:
    data = np.array([[0.5, np.nan]])
    masked = np.ma.masked_invalid(data)
    with pytest.raises(ValueError, match=r"^`mask` contains 1 NaN"):
        resize_mask(masked, (2, 4))
