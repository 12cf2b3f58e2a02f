"""The float64 oracle against brute-force loops over windows (arrays <= 16x16)."""

from __future__ import annotations

import numpy as np
import pytest

from maskrefine.filters import reference


def _window(x: np.ndarray, i: int, j: int, r: int, border: str) -> np.ndarray:
    """Pixels of the (2r+1)² window around (i, j): cut at the border, or OpenCV BORDER_REFLECT."""
    h, w = x.shape[:2]
    if border == "truncated":
        return x[max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1].reshape(-1, *x.shape[2:])

    def refl(k: int, n: int) -> int:
        while k < 0 or k >= n:  # fedcba|abcdefgh|hgfedcb, repeated for large r
            k = -k - 1 if k < 0 else 2 * n - 1 - k
        return k

    rows = [refl(k, h) for k in range(i - r, i + r + 1)]
    cols = [refl(k, w) for k in range(j - r, j + r + 1)]
    return x[np.ix_(rows, cols)].reshape(-1, *x.shape[2:])


def _brute_coefficients(guide, src, r, eps, border):
    h, w = src.shape
    color = guide.ndim == 3
    a = np.zeros((h, w, 3)) if color else np.zeros((h, w))
    b = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            gi = _window(guide, i, j, r, border)
            pi = _window(src, i, j, r, border)
            if color:
                mu = gi.mean(axis=0)
                sigma = (gi - mu).T @ (gi - mu) / len(gi)  # population covariance
                cov = ((gi - mu) * (pi - pi.mean())[:, None]).mean(axis=0)
                a[i, j] = np.linalg.inv(sigma + eps * np.eye(3)) @ cov
                b[i, j] = pi.mean() - a[i, j] @ mu
            else:
                a[i, j] = ((gi - gi.mean()) * (pi - pi.mean())).mean() / (gi.var() + eps)
                b[i, j] = pi.mean() - a[i, j] * gi.mean()
    return a, b


def _brute_box(x, r, border):
    h, w = x.shape[:2]
    out = np.zeros(x.shape)
    for i in range(h):
        for j in range(w):
            win = _window(x, i, j, r, border)
            out[i, j] = win.sum(axis=0) / (len(win) if border == "truncated" else (2 * r + 1) ** 2)
    return out


def _brute_gf(guide, src, r, eps, border):
    a, b = _brute_coefficients(guide, src, r, eps, border)
    ma, mb = _brute_box(a, r, border), _brute_box(b, r, border)
    return (ma * guide).sum(axis=2) + mb if guide.ndim == 3 else ma * guide + mb


@pytest.mark.parametrize("border", ["truncated", "reflect"])
@pytest.mark.parametrize("shape,r", [((16, 16), 3), ((9, 13), 4), ((5, 7), 6), ((12, 10, 3), 2), ((1, 1), 2)])
def test_box_mean_matches_brute_force(rng, shape, r, border) -> None:
    x = rng.random(shape)
    np.testing.assert_allclose(reference.box_mean(x, r, border), _brute_box(x, r, border), rtol=0, atol=1e-12)


def test_box_mean_truncated_counts() -> None:
    ones = np.ones((30, 30))
    # counts 100 at a corner, 190 on an edge, 361 inside (r = 9): the sum of ones is the count
    counts = reference._window_sum_truncated(ones, 9)
    assert (counts[0, 0], counts[0, 15], counts[15, 15]) == (100.0, 190.0, 361.0)
    np.testing.assert_allclose(reference.box_mean(ones, 9), 1.0)


def test_box_mean_reflect_matches_cv2(rng) -> None:
    cv2 = pytest.importorskip("cv2")
    x = rng.random((15, 16)).astype(np.float32)
    expected = cv2.boxFilter(x, -1, (7, 7), normalize=True, borderType=cv2.BORDER_REFLECT)
    np.testing.assert_allclose(reference.box_mean(x, 3, "reflect"), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("border", ["truncated", "reflect"])
@pytest.mark.parametrize(
    "shape,r,eps",
    [
        ((16, 16), 3, 1e-3),
        ((11, 14), 5, 1e-2),
        ((7, 9), 2, 1e-4),
        ((16, 12, 3), 3, 1e-3),
        ((9, 10, 3), 4, 1e-2),
    ],
)
def test_guided_filter_matches_brute_force(rng, shape, r, eps, border) -> None:
    guide = rng.random(shape)
    src = rng.random(shape[:2])
    got = reference.guided_filter(guide, src, r, eps, border=border)
    np.testing.assert_allclose(got, _brute_gf(guide, src, r, eps, border), rtol=0, atol=1e-10)


@pytest.mark.parametrize("color", [False, True])
@pytest.mark.parametrize("s,shape", [(2, (16, 16)), (3, (16, 14)), (4, (16, 15))])
def test_fast_variant_matches_brute_force(rng, s, shape, color) -> None:
    r, eps = 5, 1e-3
    guide = rng.random(shape + ((3,) if color else ()))
    src = rng.random(shape)
    h, w = shape[0] // s, shape[1] // s
    # nearest subsampling, phase 0: low-res pixel (i, j) is full-res pixel (i*s, j*s)
    g_lo = np.array([[guide[i * s, j * s] for j in range(w)] for i in range(h)])
    p_lo = np.array([[src[i * s, j * s] for j in range(w)] for i in range(h)])
    a, b = _brute_coefficients(g_lo, p_lo, r // s, eps, "truncated")
    ma, mb = _brute_box(a, r // s, "truncated"), _brute_box(b, r // s, "truncated")
    ma_up = reference.upsample_bilinear(ma, *shape)
    mb_up = reference.upsample_bilinear(mb, *shape)
    expected = (ma_up * guide).sum(axis=2) + mb_up if color else ma_up * guide + mb_up
    got = reference.guided_filter(guide, src, r, eps, subsample=s)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("shape_in,shape_out", [((4, 5), (16, 15)), ((7, 3), (29, 13)), ((5, 5), (5, 5))])
def test_upsample_bilinear_matches_cv2_resize(rng, shape_in, shape_out) -> None:
    cv2 = pytest.importorskip("cv2")
    x = rng.random(shape_in)
    expected = cv2.resize(x, (shape_out[1], shape_out[0]), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(reference.upsample_bilinear(x, *shape_out), expected, rtol=0, atol=1e-6)


def test_upsample_bilinear_matches_torch_interpolate(rng) -> None:
    torch = pytest.importorskip(
        "torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'"
    )
    x = rng.random((6, 7))
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(x)[None, None], size=(23, 26), mode="bilinear", align_corners=False
    )[0, 0].numpy()
    np.testing.assert_allclose(reference.upsample_bilinear(x, 23, 26), expected, rtol=0, atol=1e-12)


def test_nearest_subsampling_matches_torch_interpolate(rng) -> None:
    """Phase-0 sampling [0::s][:H//s] is what F.interpolate(scale_factor=1/s, mode='nearest') picks."""
    torch = pytest.importorskip(
        "torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'"
    )
    x = rng.random((23, 17))
    for s in (2, 3, 4):
        lo = torch.nn.functional.interpolate(
            torch.from_numpy(x)[None, None], scale_factor=1 / s, mode="nearest"
        )
        np.testing.assert_array_equal(lo[0, 0].numpy(), x[: 23 // s * s : s, : 17 // s * s : s])


def test_returns_float64(rng) -> None:
    q = reference.guided_filter(rng.random((10, 10)).astype(np.float32), rng.random((10, 10)), 2, 1e-3)
    assert q.dtype == np.float64


@pytest.mark.parametrize("color", [False, True])
@pytest.mark.parametrize("eps", [1e-12, 1e-10])
def test_one_pixel_windows_have_zero_variance_at_tiny_eps(color, eps) -> None:
    """r // s == 0: every low-res window is one pixel, so a = 0 and q is the upsampled p (docs/filters.md).

    The box sums were differences of a summed-area table, whose rounding (~1e-11 here) divided by eps
    gave outputs from -17 to 1.6 at eps 1e-12 (colour).
    """
    gen = np.random.default_rng(5)
    guide = gen.random((200, 300, 3) if color else (200, 300)).astype(np.float32)
    src = gen.random((200, 300)).astype(np.float32)
    out = reference.guided_filter(guide, src, radius=1, eps=eps, subsample=2)
    expected = reference.upsample_bilinear(src[0::2, 0::2].astype(np.float64), 200, 300)
    assert np.abs(out - expected).max() < 1e-9


def test_flat_guide_regions_stay_exact_at_tiny_eps() -> None:
    gen = np.random.default_rng(6)
    guide = np.full((60, 80), 0.3, np.float32)
    guide[:, 40:] = 0.7
    src = gen.random((60, 80)).astype(np.float32)
    out = reference.guided_filter(guide, src, radius=2, eps=1e-12)
    np.testing.assert_allclose(out, _brute_gf(guide, src, 2, 1e-12, "truncated"), atol=1e-9)
