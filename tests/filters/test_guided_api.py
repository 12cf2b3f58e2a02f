"""Public NumPy API: shapes, dtypes, errors (type and message), out=, properties, golden cv2 cases."""

from __future__ import annotations

import numpy as np
import pytest
from gf_cases import random_case

from maskrefine.filters import fast_guided_filter, guided_filter, reference
from maskrefine.guide import make_guide


def test_smoke_defaults() -> None:
    guide, src = random_case(0, 40, 50)
    q = guided_filter(guide, src)
    assert q.shape == (40, 50) and q.dtype == np.float32
    np.testing.assert_allclose(q, reference.guided_filter(guide, src, 9, 1e-3), atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_dtypes_return_float32(dtype) -> None:
    guide, src = random_case(1, 30, 31, color=True)
    guide, src = guide.astype(dtype), src.astype(dtype)
    q = guided_filter(guide, src, 4, 1e-3)
    assert q.dtype == np.float32
    np.testing.assert_allclose(q, reference.guided_filter(guide, src, 4, 1e-3), rtol=0, atol=1e-5)


def test_non_contiguous_inputs() -> None:
    guide, src = random_case(2, 60, 80)
    g, s = guide[:, ::2], src[:, ::2]
    assert not g.flags.c_contiguous
    q = guided_filter(g, s, 3, 1e-3)
    np.testing.assert_allclose(q, reference.guided_filter(g, s, 3, 1e-3), rtol=0, atol=1e-5)


@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_ndarray_subclasses_are_filtered_as_plain_arrays(backend) -> None:
    # np.matrix reached the numba finiteness kernel as 2-D ("TypingError: max(uint32, array(...))")
    guide, src = random_case(4, 24, 26)
    want = guided_filter(guide, src, 3, 1e-3, backend=backend)
    got = guided_filter(np.matrix(guide), np.matrix(src), 3, 1e-3, backend=backend)
    assert type(got) is np.ndarray and np.array_equal(got, want)
    masked = np.ma.masked_array(src, mask=np.zeros_like(src, bool))
    assert np.array_equal(guided_filter(guide, masked, 3, 1e-3, backend=backend), want)


def test_backend_reference_matches_numba() -> None:
    guide, src = random_case(3, 33, 35, color=True, batch=2)
    a = guided_filter(guide, src, 5, 1e-3, subsample=2, border="reflect", backend="reference")
    b = guided_filter(guide, src, 5, 1e-3, subsample=2, border="reflect", backend="numba")
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def test_fast_guided_filter_is_subsample_4() -> None:
    guide, src = random_case(4, 64, 64)
    np.testing.assert_array_equal(fast_guided_filter(guide, src), guided_filter(guide, src, subsample=4))


@pytest.mark.parametrize("batch", [None, 3])
def test_out_is_filled_and_returned(batch) -> None:
    guide, src = random_case(5, 40, 42, batch=batch)
    out = np.full(src.shape, np.nan, dtype=np.float32)
    q = guided_filter(guide, src, 4, 1e-3, out=out)
    assert q is out
    np.testing.assert_array_equal(out, guided_filter(guide, src, 4, 1e-3))


@pytest.mark.parametrize("color", [False, True])
def test_does_not_modify_input(color) -> None:
    guide, src = random_case(6, 40, 45, color=color, batch=2)
    g0, s0 = guide.copy(), src.copy()
    guided_filter(guide, src, 5, 1e-3)
    guided_filter(guide, src, 5, 1e-3, subsample=2, border="reflect")
    np.testing.assert_array_equal(guide, g0)
    np.testing.assert_array_equal(src, s0)


# ------------------------------------------------------------------------------------------ properties
@pytest.mark.parametrize("color", [False, True])
@pytest.mark.parametrize("subsample", [1, 3])
@pytest.mark.parametrize("alpha,beta", [(2.0, -0.5), (-1.0, 1.0), (0.25, 0.1)])
def test_affine_in_src(color, subsample, alpha, beta) -> None:
    guide, src = random_case(7, 48, 51, color=color)
    base = guided_filter(guide, src, 6, 1e-3, subsample=subsample).astype(np.float64)
    moved = guided_filter(guide, (alpha * src.astype(np.float64) + beta), 6, 1e-3, subsample=subsample)
    np.testing.assert_allclose(moved, alpha * base + beta, rtol=0, atol=1e-5)


@pytest.mark.parametrize("color", [False, True])
@pytest.mark.parametrize("border", ["truncated", "reflect"])
def test_constant_in_constant_out(color, border) -> None:
    guide, _ = random_case(8, 40, 40, color=color)
    src = np.full((40, 40), 0.375, dtype=np.float32)
    np.testing.assert_allclose(guided_filter(guide, src, 5, 1e-3, border=border), 0.375, rtol=0, atol=1e-6)


def test_large_eps_is_box_of_box() -> None:
    guide, src = random_case(9, 40, 44)
    q = guided_filter(guide, src, 4, 1e8)
    expected = reference.box_mean(reference.box_mean(src, 4), 4)
    np.testing.assert_allclose(q, expected, rtol=0, atol=1e-5)


def test_flip_equivariance() -> None:
    guide, src = random_case(10, 41, 47, color=True)
    q = guided_filter(guide, src, 5, 1e-3)
    qf = guided_filter(guide[:, ::-1], src[:, ::-1], 5, 1e-3)
    np.testing.assert_allclose(qf, q[:, ::-1], rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------------ golden cv2
@pytest.mark.parametrize("color", [False, True])
@pytest.mark.parametrize("shape,r,eps", [((32, 40), 4, 1e-3), ((64, 48), 9, 1e-2), ((25, 30), 2, 1e-4)])
def test_matches_cv2_ximgproc_reflect(color, shape, r, eps) -> None:
    """Golden cases: ``cv2.ximgproc.guidedFilter`` is BORDER_REFLECT with (2r+1)² normalisation.

    Its colour path is only right with a 0..255 guide and eps·255² (bench/README.md peer note 1)::

        cv2.ximgproc.guidedFilter(guide * 255, src, r, eps * 255**2)
    """
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2, "ximgproc"):
        pytest.skip("cv2.ximgproc missing: pip install opencv-contrib-python-headless (see bench/README.md)")
    guide, src = random_case(11, *shape, color=color)
    if color:
        expected = cv2.ximgproc.guidedFilter(guide * np.float32(255), src, r, eps * 255.0**2)
    else:
        expected = cv2.ximgproc.guidedFilter(guide, src, r, eps)
    got = guided_filter(guide, src, r, eps, border="reflect")
    # cv2 computes in float32 without compensation: its own error vs the float64 oracle reaches 2.3e-5 on
    # the gray eps=1e-4 case (ours: 4e-8), so the golden tolerance is 5e-5.
    np.testing.assert_allclose(got, expected, rtol=0, atol=5e-5)


# ------------------------------------------------------------------------------------------ errors
def _ok():
    return random_case(13, 30, 30)


@pytest.mark.parametrize(
    "kwargs,exc,message",
    [
        ({"radius": -1}, ValueError, "`radius` must be an integer >= 0; got -1"),
        ({"radius": 2.5}, TypeError, "`radius` must be an integer >= 0; got 2.5 (float)"),
        ({"radius": True}, TypeError, "`radius` must be an integer >= 0; got True (bool)"),
        ({"eps": 0.0}, ValueError, "`eps` must be a finite float > 0 (at least 1e-12); got 0.0"),
        ({"eps": -1e-3}, ValueError, "`eps` must be a finite float > 0"),
        ({"eps": float("nan")}, ValueError, "`eps` must be a finite float > 0"),
        ({"eps": "1e-3"}, TypeError, "`eps` must be a positive float"),
        ({"subsample": 0}, ValueError, "`subsample` must be an integer >= 1; got 0"),
        ({"subsample": 2.0}, TypeError, "`subsample` must be an integer >= 1"),
        (
            {"border": "constant"},
            ValueError,
            "`border` must be one of 'truncated', 'reflect'; got 'constant'",
        ),
        ({"backend": "cuda"}, ValueError, "`backend` must be one of 'numba', 'reference'; got 'cuda'"),
        ({"radius": 15}, ValueError, "at least the window size 2*radius+1 = 31 in H and W; got H=30, W=30"),
        ({"radius": 14, "subsample": 7}, ValueError, "with subsample=7 the low-resolution images are 4x4"),
    ],
)
def test_errors_parameters(kwargs, exc, message) -> None:
    guide, src = _ok()
    with pytest.raises(exc) as info:
        guided_filter(guide, src, **{"radius": 2, "eps": 1e-3, **kwargs})
    assert message in str(info.value)


def test_errors_inputs() -> None:
    guide, src = _ok()
    with pytest.raises(TypeError, match=r"`src` must be a floating-point array .* got dtype uint8"):
        guided_filter(guide, (src * 255).astype(np.uint8), 2)
    with pytest.raises(TypeError, match=r"`guide` must be a floating-point array .* got dtype bool"):
        guided_filter(guide > 0.5, src, 2)
    with pytest.raises(TypeError, match=r"`guide` must be a NumPy array; got list"):
        guided_filter([[0.0]], src, 2)
    bad = src.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match=r"`src` contains 1 NaN or infinite value\(s\)"):
        guided_filter(guide, bad, 2)
    bad_g = guide.copy()
    bad_g[0, 0] = np.inf
    with pytest.raises(ValueError, match=r"`guide` contains 1 NaN or infinite"):
        guided_filter(bad_g, src, 2)
    with pytest.raises(
        ValueError, match=r"`src` must be 2-D \(H, W\) or 3-D \(N, H, W\); got shape \(1, 1, 30, 30\)"
    ):
        guided_filter(guide, src[None, None], 2)
    with pytest.raises(
        ValueError, match=r"`guide` and `src` must have the same \(H, W\); got guide \(30, 29\)"
    ):
        guided_filter(guide[:, :29], src, 2)
    with pytest.raises(
        ValueError, match=r"`guide` must have shape \(H, W\) or \(H, W, 3\) .* got shape \(30, 30, 4\)"
    ):
        guided_filter(np.zeros((30, 30, 4), np.float32), src, 2)
    with pytest.raises(ValueError, match=r"\(N, H, W\) or \(N, H, W, 3\) .* got shape \(30, 30\)"):
        guided_filter(guide, src[None], 2)
    with pytest.raises(ValueError, match=r"same \(N, H, W\); got guide \(2, 30, 30\) and src \(3, 30, 30\)"):
        guided_filter(np.stack([guide] * 2), np.stack([src] * 3), 2)


def test_errors_out() -> None:
    guide, src = _ok()
    with pytest.raises(TypeError, match="`out` must have dtype float32; got float64"):
        guided_filter(guide, src, 2, out=np.empty((30, 30)))
    with pytest.raises(ValueError, match=r"`out` must have the shape of `src` \(30, 30\); got \(30, 31\)"):
        guided_filter(guide, src, 2, out=np.empty((30, 31), np.float32))
    with pytest.raises(ValueError, match="writeable C-contiguous"):
        guided_filter(guide, src, 2, out=np.empty((30, 60), np.float32)[:, ::2])
    with pytest.raises(ValueError, match="must not overlap"):
        guided_filter(guide, src, 2, out=src)
    with pytest.raises(TypeError, match="`out` must be a NumPy float32 array or None; got list"):
        guided_filter(guide, src, 2, out=[])


def test_out_may_not_overlap_an_input_that_was_converted() -> None:
    # the check compared `out` with the converted copies only, so an input that had to be copied (strided,
    # float16) was overwritten by the result
    guide, src = _ok()
    big = np.zeros((30, 60), np.float32)
    big[:, ::2] = src
    strided = big[:, ::2]
    out_view = big.reshape(-1)[: 30 * 30].reshape(30, 30)
    before = big.copy()
    with pytest.raises(ValueError, match="must not overlap"):
        guided_filter(guide, strided, 2, out=out_view)
    raw = np.zeros(30 * 30 * 4, np.uint8)
    half_guide = raw[: 30 * 30 * 2].view(np.float16).reshape(30, 30)
    half_guide[...] = guide
    with pytest.raises(ValueError, match="must not overlap"):
        guided_filter(half_guide, src, 2, out=raw.view(np.float32).reshape(30, 30))
    assert np.array_equal(big, before) and np.array_equal(half_guide, guide.astype(np.float16))


# ------------------------------------------------------------------------------------------ make_guide
def test_make_guide_modes() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.random((5, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(make_guide(rgb), rgb.mean(axis=2), atol=1e-7)
    np.testing.assert_allclose(make_guide(rgb, "luma"), rgb @ np.array([0.299, 0.587, 0.114]), atol=1e-6)
    color = make_guide(rgb[:, ::-1], "color")
    assert color.dtype == np.float32 and color.flags.c_contiguous
    np.testing.assert_array_equal(color, rgb[:, ::-1])
    assert make_guide(rgb).dtype == np.float32 and make_guide(rgb).shape == (5, 6)


def test_make_guide_uint8_and_batch() -> None:
    rgb = np.array([[[255, 0, 0], [0, 255, 255]]], dtype=np.uint8)
    np.testing.assert_allclose(make_guide(rgb), [[1 / 3, 2 / 3]], atol=1e-7)
    batch = np.zeros((2, 4, 5, 3), np.float32)
    assert make_guide(batch).shape == (2, 4, 5)


def test_make_guide_errors() -> None:
    with pytest.raises(ValueError, match=r"`mode` must be one of 'mean', 'luma', 'color'; got 'gray'"):
        make_guide(np.zeros((4, 4, 3), np.float32), "gray")
    with pytest.raises(ValueError, match=r"shape \(\.\.\., H, W, 3\) .* got shape \(4, 4\)"):
        make_guide(np.zeros((4, 4), np.float32))
    with pytest.raises(TypeError, match="got dtype uint16"):
        make_guide(np.zeros((4, 4, 3), np.uint16))
    with pytest.raises(ValueError, match=r"`image` values must lie in \[0, 1\]; found \[255, 255\]"):
        make_guide(np.full((4, 4, 3), 255.0))
    # the same tolerance as guided_filter's: a guide make_guide accepts is accepted by the filter
    with pytest.raises(ValueError, match="maximum is 0.0005 above 1"):
        make_guide(np.full((4, 4, 3), 1.0005))
    with pytest.raises(ValueError, match="minimum is 0.4 below 0"):
        make_guide(np.full((4, 4, 3), -0.4))
    near = make_guide(np.full((20, 20, 3), 1.0 + 5e-7))
    assert guided_filter(near, np.full((20, 20), 0.5), 2).shape == (20, 20)
    with pytest.raises(ValueError, match="NaN or infinite"):
        make_guide(np.full((4, 4, 3), np.nan))
