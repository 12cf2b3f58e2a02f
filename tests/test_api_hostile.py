"""Hostile values at the public array API: refine, the guided filters (NumPy, torch), the baselines, guides.

Each case is a problem found by an audit of the API (a silent wrong result, a result that depended on the
memory layout or byte order of an input, an alias of the caller's array, a misleading message) that failed
before its fix. The layouts that were already handled are covered as regressions at the end.
"""

from __future__ import annotations

import numpy as np
import pytest

from maskrefine import make_guide, refine
from maskrefine.filters import bilateral_solver, dense_crf, guided_filter

RNG_SEED = 20240611


def _image_mask(height: int = 30, width: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(RNG_SEED)
    return rng.random((height, width, 3)).astype(np.float32), rng.random((height, width)).astype(np.float32)


def _variants(x: np.ndarray) -> dict[str, np.ndarray]:
    """The same values as ``x`` in layouts and byte orders a caller may hand over."""
    readonly = x.copy()
    readonly.flags.writeable = False
    flipped = np.ascontiguousarray(x[::-1])[::-1]  # negative strides, same values
    return {
        "fortran": np.asfortranarray(x),
        "negative-strided": flipped,
        "strided": np.repeat(x, 2, axis=1)[:, ::2],
        "read-only": readonly,
        "big-endian": x.astype(x.dtype.newbyteorder(">")),
    }


# ---------------------------------------------------------------------------------------------- guided
@pytest.mark.parametrize("backend", ["numba", "reference"])
@pytest.mark.parametrize("which", ["guide", "src"])
def test_guided_filter_big_endian_float64_is_not_rounded_to_float32(backend: str, which: str) -> None:
    # '>f8' is not "in (np.float32, np.float64)": it was cast to float32 before the float64 sums
    rng = np.random.default_rng(RNG_SEED)
    guide, src = rng.random((40, 50)), rng.random((40, 50))  # values float32 cannot hold exactly
    expected = guided_filter(guide, src, 4, 1e-4, backend=backend)
    args = {"guide": guide, "src": src}
    args[which] = args[which].astype(">f8")
    np.testing.assert_array_equal(
        guided_filter(args["guide"], args["src"], 4, 1e-4, backend=backend), expected
    )


def test_guided_filter_long_double_keeps_float64_precision() -> None:
    rng = np.random.default_rng(RNG_SEED)
    guide, src = rng.random((40, 50)), rng.random((40, 50))
    np.testing.assert_array_equal(
        guided_filter(guide.astype(np.longdouble), src.astype(np.longdouble), 4, 1e-4),
        guided_filter(guide, src, 4, 1e-4),
    )


@pytest.mark.parametrize("dtype", ["<f8", ">f8", "<f4"])
@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_guided_filter_refuses_src_too_large_for_the_float32_result(dtype: str, backend: str) -> None:
    # 1e300 gave an all-NaN result (native) or "contains 0 NaN or infinite value(s)" (big-endian)
    guide, src = _image_mask()[1], _image_mask()[1]
    big = (src.astype(np.float64) * (1e300 if dtype != "<f4" else 1e38)).astype(dtype)
    with pytest.raises(ValueError, match=r"`src` values must lie within ±1e\+30"):
        guided_filter(guide, big, 3, 1e-3, backend=backend)
    # the largest accepted magnitude still gives a finite result (|a| <= std(p) / (2 sqrt(eps)))
    edge = np.where(src > 0.5, 1e30, -1e30)
    assert np.isfinite(guided_filter(guide, edge, 3, 1e-12, backend=backend)).all()


# ---------------------------------------------------------------------------------------------- guides
@pytest.mark.parametrize("mode", ["mean", "luma", "color"])
@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_make_guide_reads_the_data_of_a_masked_array(mode: str, dtype: type) -> None:
    # masked arithmetic kept the unscaled data at masked pixels: a uint8 guide held values up to 254
    image = _image_mask()[0]
    if dtype is np.uint8:
        image = (image * 255).astype(np.uint8)
    masked = np.ma.masked_array(image, mask=image > image.mean())
    out = make_guide(masked, mode)
    assert type(out) is np.ndarray
    np.testing.assert_array_equal(out, make_guide(image, mode))


@pytest.mark.parametrize("writeable", [True, False])
def test_make_guide_color_returns_a_new_array(writeable: bool) -> None:
    # a float32 C-contiguous image came back as itself: writing the guide wrote the caller's image
    image = _image_mask()[0]
    image.flags.writeable = writeable
    kept = image.copy()
    guide = make_guide(image, "color")
    assert not np.shares_memory(guide, image)
    assert guide.flags.writeable and guide.flags.c_contiguous and guide.dtype == np.float32
    guide[...] = 0.0
    np.testing.assert_array_equal(image, kept)


# ---------------------------------------------------------------------------------------------- refine
@pytest.mark.parametrize("value", ["no", "False", 0, 1, None, np.array([True])])
def test_refine_binary_input_must_be_a_bool(value: object) -> None:
    # bool("no") is True: a string or number silently switched to nearest-neighbour resizing
    image, mask = _image_mask()
    with pytest.raises(TypeError, match=r"`binary_input` must be True or False; got "):
        refine(image, mask[:5, :6], "identity", binary_input=value)


def test_refine_binary_input_accepts_numpy_bool() -> None:
    image, mask = _image_mask()
    expected = refine(image, mask[:5, :6], "identity", binary_input=True)
    np.testing.assert_array_equal(
        refine(image, mask[:5, :6], "identity", binary_input=np.bool_(True)), expected
    )


def test_refine_crf_accepts_the_mask_tolerance_refine_documents() -> None:
    # refine() accepted 1.0000001 (UNIT_TOLERANCE), then dense_crf refused it naming `prob`
    image, mask = _image_mask()
    nudged = mask.copy()
    nudged[0, 0], nudged[0, 1] = np.float32(1.0000001), np.float32(-1e-7)
    clipped = np.clip(nudged, 0.0, 1.0)
    for params in ({}, {"output": "prob"}):
        out = refine(image, nudged, "crf", **params)
        np.testing.assert_array_equal(out, refine(image, clipped, "crf", **params))
    # dense_crf takes the same tolerance (it refused 1.0000001 while refine accepted it), clipped
    np.testing.assert_array_equal(dense_crf(image, nudged), dense_crf(image, clipped))
    with pytest.raises(ValueError, match=r"`mask` values must lie in \[0, 1\]"):  # beyond the tolerance
        refine(image, mask * 1.01 + 0.01, "crf")


# -------------------------------------------------------------------------------------- bilateral solver
def test_bilateral_solver_big_endian_float16_image_is_snapped_like_float16() -> None:
    # '>f2' != np.float16: the image took the float32 snap tolerance (1e-3), leaving float16 levels unsnapped
    rng = np.random.default_rng(RNG_SEED)
    levels = rng.integers(0, 256, (32, 48)) / 255.0  # gray: Y = level, U = V = 128, on grid-cell edges
    image16 = np.repeat(levels[..., None], 3, axis=2).astype(np.float16)
    mask = rng.random((32, 48)).astype(np.float32)
    expected = bilateral_solver(image16, mask)
    np.testing.assert_array_equal(bilateral_solver(image16.astype(">f2"), mask), expected)


@pytest.mark.parametrize("value", [True, None, "0.9", [0.9]])
def test_bilateral_solver_confidence_of_the_wrong_type_is_named(value: object) -> None:
    # was "`confidence` must be a NumPy array", though a float is the usual (and default) value
    image, mask = _image_mask()
    with pytest.raises(TypeError, match=r"`confidence` must be a float >= 0 or a float array of shape"):
        bilateral_solver(image, mask, confidence=value)


@pytest.mark.parametrize("dtype", ["<f8", ">f8"])
def test_bilateral_solver_refuses_target_too_large_for_the_float32_result(dtype: str) -> None:
    # 1e300 gave an all-inf result
    image, mask = _image_mask()
    with pytest.raises(ValueError, match=r"`target` values must lie within ±1e\+30"):
        bilateral_solver(image, (mask.astype(np.float64) * 1e300).astype(dtype))


# ---------------------------------------------------------------------------------------------- torch
def test_torch_autograd_path_does_not_depend_on_the_memory_layout() -> None:
    torch = pytest.importorskip(
        "torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'"
    )
    from maskrefine.torch import guided_filter as torch_guided_filter

    gen = torch.Generator().manual_seed(RNG_SEED)
    guide = torch.rand(2, 3, 120, 160, generator=gen)
    src = torch.rand(2, 2, 120, 160, generator=gen)
    layouts = {
        "channels_last": (
            guide.to(memory_format=torch.channels_last),
            src.to(memory_format=torch.channels_last),
        ),
        "transposed": (guide.mT.contiguous().mT, src.mT.contiguous().mT),
    }
    for subsample in (1, 2):
        # requires_grad selects the autograd path; the per-image guide mean summed in memory order
        expected = torch_guided_filter(guide.requires_grad_(), src, 5, 1e-3, subsample=subsample)
        for name, (g, s) in layouts.items():
            got = torch_guided_filter(g.detach().requires_grad_(), s, 5, 1e-3, subsample=subsample)
            assert torch.equal(got, expected), (name, subsample, (got - expected).abs().max().item())
        guide = guide.detach()


# ------------------------------------------------------------------- regressions: layouts already handled
@pytest.mark.parametrize("method", ["identity", "guided", "fast_guided", "bilateral_solver", "crf"])
def test_refine_layouts_give_bit_identical_results_and_leave_inputs_alone(method: str) -> None:
    image, mask = _image_mask()
    params = {"radius": 4} if "guided" in method else {}
    expected = refine(image, mask, method, **params)
    image_variants, mask_variants = _variants(image), _variants(mask)
    for name in image_variants:
        img, msk = image_variants[name], mask_variants[name]
        img_before, msk_before = img.copy(), msk.copy()
        out = refine(img, msk, method, **params)
        assert out.dtype == np.float32 and out.shape == mask.shape, name
        np.testing.assert_array_equal(out, expected, err_msg=name)
        np.testing.assert_array_equal(img, img_before, err_msg=name)
        np.testing.assert_array_equal(msk, msk_before, err_msg=name)


@pytest.mark.parametrize("color", [False, True])
@pytest.mark.parametrize("subsample", [1, 4])
def test_guided_filter_layouts_give_bit_identical_results(color: bool, subsample: int) -> None:
    image, src = _image_mask(48, 56)
    guide = image if color else make_guide(image)
    expected = guided_filter(guide, src, 8, 1e-3, subsample=subsample)
    for (name, g), s in zip(_variants(guide).items(), _variants(src).values(), strict=True):
        np.testing.assert_array_equal(
            guided_filter(g, s, 8, 1e-3, subsample=subsample), expected, err_msg=name
        )


@pytest.mark.parametrize("function", [bilateral_solver, dense_crf])
def test_baselines_layouts_give_bit_identical_results(function) -> None:
    image, mask = _image_mask()
    expected = function(image, mask)
    for (name, img), msk in zip(_variants(image).items(), _variants(mask).values(), strict=True):
        np.testing.assert_array_equal(function(img, msk), expected, err_msg=name)


@pytest.mark.parametrize("mode", ["mean", "luma", "color"])
def test_make_guide_layouts_give_bit_identical_results(mode: str) -> None:
    image = _image_mask()[0]
    expected = make_guide(image, mode)
    for name, img in _variants(image).items():
        np.testing.assert_array_equal(make_guide(img, mode), expected, err_msg=name)
