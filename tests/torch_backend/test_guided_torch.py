"""Torch guided filter: oracle agreement, autograd, dtypes, layouts, errors, precision at 4096²."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")

from maskrefine.filters import reference  # noqa: E402
from maskrefine.torch import GuidedFilter, _box, box_mean, guided_filter  # noqa: E402

# ---------------------------------------------------------------------------------------------- oracle


@pytest.mark.parametrize("guide_channels", [1, 3])
@pytest.mark.parametrize("subsample", [1, 2, 3])
@pytest.mark.parametrize("border", ["truncated", "reflect"])
@pytest.mark.parametrize(("height", "width", "radius"), [(37, 29, 4), (21, 23, 9), (5, 7, 0)])
def test_matches_reference_float64(
    device, cpu_impl, guide_channels, subsample, border, height, width, radius, make_inputs, oracle
):
    guide, src = make_inputs(1, 2, guide_channels, 2, height, width)
    want = oracle(guide, src, radius, 1e-2, subsample=subsample, border=border)
    got = guided_filter(
        torch.from_numpy(guide).to(device),
        torch.from_numpy(src).to(device),
        radius,
        1e-2,
        subsample=subsample,
        border=border,
    )
    assert got.dtype == torch.float64 and got.device.type == device
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=0, atol=1e-10)


@pytest.mark.parametrize("guide_channels", [1, 3])
def test_matches_reference_float32(device, cpu_impl, guide_channels, make_inputs, oracle):
    guide, src = make_inputs(2, 2, guide_channels, 1, 64, 48)
    want = oracle(guide, src, 9, 1e-3)
    got = guided_filter(torch.from_numpy(guide).float().to(device), torch.from_numpy(src).float().to(device))
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.cpu().double().numpy(), want, rtol=0, atol=2e-5)


@pytest.mark.parametrize("border", ["truncated", "reflect"])
@pytest.mark.parametrize(("height", "width", "radius"), [(20, 17, 3), (4, 6, 9), (1, 1, 2)])
def test_box_mean_matches_reference(device, cpu_impl, border, height, width, radius):
    x = np.random.default_rng(3).random((2, 3, height, width))
    want = np.array([[reference.box_mean(x[b, c], radius, border) for c in range(3)] for b in range(2)])
    got = box_mean(torch.from_numpy(x).to(device), radius, border)
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("border", ["truncated", "reflect"])
@pytest.mark.parametrize(
    ("shape", "error", "match"),
    [
        ((5, 0), ValueError, r"H, W >= 1; got \(5, 0\)"),
        ((2, 0, 5), ValueError, r"H, W >= 1; got \(2, 0, 5\)"),
        ((7,), ValueError, r"\(\.\.\., H, W\)"),
    ],
)
def test_box_mean_refuses_empty_planes(device, cpu_impl, border, shape, error, match):
    # an empty plane reached torch's reshape / a modulo by zero ("RuntimeError: ZeroDivisionError")
    with pytest.raises(error, match=match):
        box_mean(torch.zeros(shape, device=device), 2, border)
    with pytest.raises(TypeError, match="floating tensor"):
        box_mean(torch.zeros((3, 3), dtype=torch.int64, device=device), 1, border)


def test_constant_src_is_unchanged(device, cpu_impl, make_inputs):
    guide, _ = make_inputs(4, 2, 3, 1, 30, 30)
    src = torch.full((2, 1, 30, 30), 0.7, dtype=torch.float64, device=device)
    out = guided_filter(torch.from_numpy(guide).to(device), src, 5, 1e-3, subsample=2)
    np.testing.assert_allclose(out.cpu().numpy(), 0.7, rtol=0, atol=1e-12)


# -------------------------------------------------------------------------------------------- autograd


@pytest.mark.parametrize("guide_channels", [1, 3])
@pytest.mark.parametrize("subsample", [1, 2])
@pytest.mark.parametrize("border", ["truncated", "reflect"])
def test_gradcheck(cpu_impl, guide_channels, subsample, border, make_inputs):
    """Fast-mode gradcheck (random projections of the Jacobian) w.r.t. guide and src."""
    guide, src = make_inputs(5, 2, guide_channels, 2, 8, 7)
    g = torch.from_numpy(guide).requires_grad_(True)
    s = torch.from_numpy(src).requires_grad_(True)

    def fn(g_, s_):
        return guided_filter(g_, s_, 2, 1e-2, subsample=subsample, border=border)

    assert torch.autograd.gradcheck(fn, (g, s), eps=1e-6, atol=1e-6, fast_mode=True)


@pytest.mark.parametrize("guide_channels", [1, 3])
@pytest.mark.parametrize("subsample", [1, 2])
def test_gradcheck_full_jacobian(guide_channels, subsample, make_inputs):
    """Full (slow-mode) Jacobian comparison on a tiny image, w.r.t. guide and src."""
    guide, src = make_inputs(21, 1, guide_channels, 2, 6, 6)
    g = torch.from_numpy(guide).requires_grad_(True)
    s = torch.from_numpy(src).requires_grad_(True)

    def fn(g_, s_):
        return guided_filter(g_, s_, 2, 1e-2, subsample=subsample)

    assert torch.autograd.gradcheck(fn, (g, s), eps=1e-6, atol=1e-6)


def test_gradgradcheck_gray(cpu_impl, make_inputs):
    guide, src = make_inputs(6, 1, 1, 1, 7, 6)
    g = torch.from_numpy(guide).requires_grad_(True)
    s = torch.from_numpy(src).requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda a, b: guided_filter(a, b, 2, 1e-2), (g, s), fast_mode=True)


def test_gradcheck_eps_tensor(cpu_impl, make_inputs):
    guide, src = make_inputs(7, 2, 1, 1, 7, 7)
    eps = torch.tensor([1e-2, 3e-2], dtype=torch.float64, requires_grad=True)
    g, s = torch.from_numpy(guide), torch.from_numpy(src)
    assert torch.autograd.gradcheck(lambda e: guided_filter(g, s, 2, e), (eps,))


def test_backward_runs_on_device(device, make_inputs):
    guide, src = make_inputs(8, 2, 3, 1, 40, 40)
    g = torch.from_numpy(guide).float().to(device).requires_grad_(True)
    s = torch.from_numpy(src).float().to(device).requires_grad_(True)
    guided_filter(g, s, 9, 1e-3).sum().backward()
    assert g.grad is not None and s.grad is not None
    assert torch.isfinite(g.grad).all() and torch.isfinite(s.grad).all()


# ----------------------------------------------------------------------------------- API properties


def test_module_matches_function(device, make_inputs):
    guide, src = make_inputs(9, 2, 3, 2, 33, 31)
    g, s = torch.from_numpy(guide).to(device), torch.from_numpy(src).to(device)
    module = GuidedFilter(4, 1e-2, subsample=2, border="reflect")
    assert "radius=4" in repr(module)
    torch.testing.assert_close(module(g, s), guided_filter(g, s, 4, 1e-2, subsample=2, border="reflect"))


@pytest.mark.parametrize("guide_channels", [1, 3])
def test_non_contiguous_inputs(device, guide_channels, make_inputs):
    guide, src = make_inputs(10, 2, guide_channels, 2, 24, 20)
    g, s = torch.from_numpy(guide).float().to(device), torch.from_numpy(src).float().to(device)
    want = guided_filter(g, s, 3, 1e-2)
    g_cl = g.contiguous(memory_format=torch.channels_last)
    s_cl = s.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(guided_filter(g_cl, s_cl, 3, 1e-2), want, rtol=0, atol=1e-6)
    # transposed views: filtering the transposed images gives the transposed result
    got_t = guided_filter(g.transpose(-1, -2), s.transpose(-1, -2), 3, 1e-2)
    assert not g.transpose(-1, -2).is_contiguous()
    torch.testing.assert_close(got_t.transpose(-1, -2), want, rtol=0, atol=1e-6)


def test_does_not_modify_input(device, make_inputs):
    guide, src = make_inputs(11, 1, 1, 1, 20, 20)
    g, s = torch.from_numpy(guide).to(device), torch.from_numpy(src).to(device)
    g0, s0 = g.clone(), s.clone()
    guided_filter(g, s, 3, 1e-3, subsample=2)
    assert torch.equal(g, g0) and torch.equal(s, s0)


@pytest.mark.parametrize("guide_channels", [1, 3])
def test_batch_equals_loop(device, guide_channels, make_inputs):
    guide, src = make_inputs(12, 3, guide_channels, 2, 26, 22)
    g, s = torch.from_numpy(guide).to(device), torch.from_numpy(src).to(device)
    batch = guided_filter(g, s, 4, 1e-3)
    loop = torch.cat([guided_filter(g[i : i + 1], s[i : i + 1], 4, 1e-3) for i in range(3)])
    torch.testing.assert_close(batch, loop, rtol=0, atol=1e-12)


def test_per_image_eps_equals_separate_calls(device, make_inputs):
    guide, src = make_inputs(13, 3, 3, 1, 25, 25)
    g, s = torch.from_numpy(guide).to(device), torch.from_numpy(src).to(device)
    eps = torch.tensor([1e-3, 1e-2, 1e-1], dtype=torch.float64)
    batch = guided_filter(g, s, 3, eps)
    for i, e in enumerate([1e-3, 1e-2, 1e-1]):
        torch.testing.assert_close(batch[i : i + 1], guided_filter(g[i : i + 1], s[i : i + 1], 3, e))
    # 0-D tensor eps behaves as the float
    torch.testing.assert_close(guided_filter(g, s, 3, torch.tensor(1e-2)), guided_filter(g, s, 3, 1e-2))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("guide_channels", [1, 3])
def test_half_dtypes_close_to_float32(device, dtype, guide_channels, make_inputs):
    guide, src = make_inputs(14, 2, guide_channels, 1, 40, 36)
    g, s = torch.from_numpy(guide).float().to(device), torch.from_numpy(src).float().to(device)
    want = guided_filter(g, s, 9, 1e-3)
    got = guided_filter(g.to(dtype), s.to(dtype), 9, 1e-3)
    assert got.dtype == dtype
    # the inputs themselves are rounded to dtype (bfloat16: 8 bits), then the result is rounded again
    atol = 2e-2 if dtype == torch.bfloat16 else 3e-3
    torch.testing.assert_close(got.float(), want, rtol=0, atol=atol)


def test_mixed_dtypes_return_src_dtype(device, make_inputs, oracle):
    guide, src = make_inputs(15, 1, 1, 1, 20, 20)
    g = torch.from_numpy(guide).to(device)
    s = torch.from_numpy(src).float().to(device)
    out = guided_filter(g, s, 3, 1e-3)
    assert out.dtype == torch.float32
    np.testing.assert_allclose(
        out.cpu().double().numpy(), oracle(guide, s.cpu().double().numpy(), 3, 1e-3), atol=1e-6
    )


def test_cpu_equals_cuda(make_inputs):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    guide, src = make_inputs(17, 2, 3, 2, 300, 260)
    for dtype, atol in ((torch.float64, 1e-10), (torch.float32, 2e-5)):
        g, s = torch.from_numpy(guide).to(dtype), torch.from_numpy(src).to(dtype)
        for subsample in (1, 4):
            cpu = guided_filter(g, s, 9, 1e-3, subsample=subsample)
            cuda = guided_filter(g.cuda(), s.cuda(), 9, 1e-3, subsample=subsample).cpu()
            torch.testing.assert_close(cuda, cpu, rtol=0, atol=atol)


# ------------------------------------------------------------------------------------------- errors


def _ok(*shape):
    return torch.rand(*shape)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"guide": _ok(8, 8)}, ValueError, r"`guide` must be 4-D .*got shape \(8, 8\)"),
        ({"src": _ok(1, 8, 8)}, ValueError, r"`src` must be 4-D .*got shape \(1, 8, 8\)"),
        ({"guide": _ok(1, 2, 8, 8)}, ValueError, r"must have 1 \(gray\) or 3 \(colour\) channels; got 2"),
        ({"guide": _ok(2, 1, 8, 8)}, ValueError, r"same batch size; got 2 and 1"),
        ({"src": _ok(1, 1, 8, 9)}, ValueError, r"same height and width; got \(8, 8\) and \(8, 9\)"),
        ({"guide": np.zeros((1, 1, 8, 8))}, TypeError, r"`guide` must be a torch.Tensor.*got ndarray"),
        ({"src": _ok(1, 1, 8, 8).to(torch.uint8)}, TypeError, r"`src` must be a floating.*torch.uint8"),
        ({"guide": _ok(1, 1, 8, 8).to(torch.bool)}, TypeError, r"`guide` must be a floating.*bool"),
        ({"src": _ok(1, 1, 8, 8).to(torch.int64)}, TypeError, r"`src` must be a floating.*int64"),
        ({"radius": -1}, ValueError, r"`radius` must be an integer >= 0; got -1"),
        ({"radius": 2.5}, TypeError, r"`radius` must be an integer >= 0; got 2.5 \(float\)"),
        ({"radius": True}, TypeError, r"`radius` must be an integer >= 0; got True \(bool\)"),
        ({"eps": 0.0}, ValueError, r"`eps` must be a finite float > 0 \(at least 1e-12\); got 0.0"),
        ({"eps": -1e-3}, ValueError, r"`eps` must be a finite float > 0"),
        ({"eps": float("nan")}, ValueError, r"`eps` must be a finite float > 0"),
        ({"eps": "0.1"}, TypeError, r"`eps` must be a positive float"),
        ({"eps": torch.ones(3)}, ValueError, r"`eps` tensor must have shape \(1,\).*got shape \(3,\)"),
        ({"eps": torch.ones(1, dtype=torch.int32)}, TypeError, r"`eps` tensor must be floating point"),
        ({"subsample": 0}, ValueError, r"`subsample` must be an integer >= 1; got 0"),
        ({"radius": 4}, ValueError, r"window size 2\*radius\+1 = 9 in H and W; got H=8, W=8"),
        ({"radius": 3, "subsample": 3}, ValueError, r"with subsample=3 the low-resolution images are 2x2"),
        ({"border": "reflect101"}, ValueError, r"`border` must be one of 'truncated', 'reflect'; got 'refl"),
    ],
)
def test_errors(kwargs, exc, match):
    args = {"guide": _ok(1, 1, 8, 8), "src": _ok(1, 1, 8, 8), "radius": 2, "eps": 1e-3}
    args.update(kwargs)
    extra = {k: args.pop(k) for k in ("subsample", "border") if k in args}
    with pytest.raises(exc, match=match):
        guided_filter(args["guide"], args["src"], args["radius"], args["eps"], **extra)


def test_module_errors_at_construction():
    with pytest.raises(ValueError, match="`radius` must be an integer >= 0"):
        GuidedFilter(-1)
    with pytest.raises(ValueError, match="`border` must be one of"):
        GuidedFilter(2, border="zero")


# ---------------------------------------------------------------------------------------- precision


def _patches_oracle(guide, src, radius, eps, size, boxes):
    """Oracle on sub-images: output at distance >= 2r from a cut edge equals the full-image oracle."""
    m = 2 * radius
    out = {}
    for y0, x0 in boxes:
        ya, xa = max(y0 - m, 0), max(x0 - m, 0)
        yb, xb = min(y0 + size + m, src.shape[0]), min(x0 + size + m, src.shape[1])
        g = guide[ya:yb, xa:xb]
        full = reference.guided_filter(g, src[ya:yb, xa:xb], radius, eps)
        out[(y0, x0)] = full[y0 - ya : y0 - ya + size, x0 - xa : x0 - xa + size]
    return out


def _photo_like(n, channels, seed):
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.random((1, channels, n // 32, n // 32)))
    guide = torch.nn.functional.interpolate(coarse, size=(n, n), mode="bilinear", align_corners=False)[0]
    guide = np.clip(guide.numpy() + 0.05 * rng.standard_normal((channels, n, n)), 0, 1)
    yy, xx = np.mgrid[0:n, 0:n] / n
    src = ((xx - 0.5) ** 2 / 0.1 + (yy - 0.5) ** 2 / 0.05 < 1).astype(np.float64)
    src = np.clip(src + 0.2 * rng.standard_normal((n, n)), 0, 1)
    return guide, src


@pytest.mark.parametrize("guide_channels", [1, 3])
def test_float32_precision_4096(guide_channels, monkeypatch):
    """bench/README.md peer note 7: float32 cumsum filters reach 4.5e-5 (gray) / 1.4e-4 (colour) at 4096²."""
    monkeypatch.setattr(_box, "CPU_IMPL", "numba")
    n, size = 4096, 192
    guide, src = _photo_like(n, guide_channels, 18)
    got = guided_filter(torch.from_numpy(guide)[None].float(), torch.from_numpy(src)[None, None].float())
    got = got[0, 0].double().numpy()
    g = guide[0] if guide_channels == 1 else np.moveaxis(guide, 0, -1)
    boxes = [(0, 0), (n - size, n - size), (n // 2, n // 3), (0, n - size), (n - size, 0)]
    worst = 0.0
    for (y0, x0), want in _patches_oracle(g, src, 9, 1e-3, size, boxes).items():
        worst = max(worst, float(np.abs(got[y0 : y0 + size, x0 : x0 + size] - want).max()))
    assert worst <= 1e-5, worst


@pytest.mark.parametrize(("radius", "subsample"), [(0, 1), (1, 1), (1, 2), (3, 4), (8, 4)])
def test_float32_precision_small_windows_torch_path(device, radius, subsample, box_sums, make_inputs, oracle):
    """The torch window sums' error scales with the window (pooled: a sum of 2r+1 values; tiled: tiles of
    2r+1 px, where tiles of >= 64 px gave ~1e-5 even at r = 0, and 1.9e-3 for the fast filter with
    r // s = 0)."""
    rng = np.random.default_rng(23)
    x = torch.from_numpy(rng.random((1, 1, 37, 53))).float().to(device)
    if radius == 0:
        assert torch.equal(box_mean(x, 0), x)  # a window of one pixel is the pixel
    want = reference.box_mean(x[0, 0].cpu().double().numpy(), radius)
    assert np.abs(box_mean(x, radius)[0, 0].cpu().double().numpy() - want).max() <= 1e-6
    guide, src = make_inputs(24, 1, 1, 1, 64, 96)
    got = guided_filter(
        torch.from_numpy(guide).float().to(device),
        torch.from_numpy(src).float().to(device),
        radius,
        1e-3,
        subsample=subsample,
    )
    want = oracle(guide, src, radius, 1e-3, subsample=subsample)
    assert np.abs(got.cpu().double().numpy() - want).max() <= 2e-5


@pytest.mark.parametrize("shape", [(4096, 96), (96, 4096)])
def test_float32_precision_long_axis_torch_path(device, shape, box_sums, make_inputs, oracle):
    """The torch window sums (the CUDA path, pooled and tiled) keep float32 precision along a 4096-px
    axis."""
    rng = np.random.default_rng(19)
    x = rng.random((1, 1) + shape)
    want = reference.box_mean(x[0, 0], 9)
    got = box_mean(torch.from_numpy(x).float().to(device), 9)[0, 0].cpu().double().numpy()
    assert np.abs(got - want).max() <= 1e-6
    guide, src = make_inputs(20, 1, 1, 1, *shape)
    got = guided_filter(torch.from_numpy(guide).float().to(device), torch.from_numpy(src).float().to(device))
    assert np.abs(got.cpu().double().numpy() - oracle(guide, src, 9, 1e-3)).max() <= 1e-5


# ------------------------------------------------------------------ audit fixes (2026-12-01)


@pytest.mark.parametrize("where", ["guide", "src"])
def test_a_nan_does_not_reach_pixels_far_from_it(where):
    # the guide was shifted by its whole-image mean: one NaN in the guide made every output pixel NaN
    guide, src = torch.rand(1, 1, 64, 64), torch.rand(1, 1, 64, 64)
    (guide if where == "guide" else src)[0, 0, 60, 60] = float("nan")
    for requires_grad in (False, True):  # the fast path falls back to the torch path on NaN; autograd path
        g = guide.clone().requires_grad_(requires_grad)
        out = guided_filter(g, src, radius=2, eps=1e-2)
        assert torch.isnan(out[0, 0, 58:63, 58:63]).all()
        assert torch.isfinite(out[0, 0, :40, :40]).all()


def test_forward_mode_ad_is_refused_clearly():
    import torch.autograd.forward_ad as fwad

    guide, src = torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16)
    with fwad.dual_level():
        dual = fwad.make_dual(src, torch.ones_like(src))
        with pytest.raises(NotImplementedError, match="forward-mode AD"):  # the fast path dropped the tangent
            guided_filter(guide, dual, radius=2, eps=1e-2)


@pytest.mark.parametrize(("eps", "error"), [(1e-30, ValueError), (-1.0, ValueError), ("a", TypeError)])
def test_eps_rules_match_the_numpy_api_and_the_module_checks_them_when_built(eps, error):
    from maskrefine.torch import GuidedFilter

    guide, src = torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16)
    with pytest.raises(error, match="eps"):
        guided_filter(guide, src, radius=2, eps=eps)
    with pytest.raises(error, match="eps"):
        GuidedFilter(2, eps=eps)  # was accepted, failing only at the first forward call


@pytest.mark.parametrize("border", [np.array(["truncated", "reflect"]), np.array(["reflect"])])
def test_border_given_as_an_array_is_refused_by_name(border: np.ndarray) -> None:
    # a one-element array became the border "['reflect']"; two elements raised numpy's "ambiguous"
    g = torch.rand(1, 1, 16, 16)
    with pytest.raises(ValueError, match="`border` must be one of 'truncated', 'reflect'"):
        guided_filter(g, g, 2, border=border)
    with pytest.raises(ValueError, match="`border` must be one of 'truncated', 'reflect'"):
        GuidedFilter(2, border=border)


@pytest.mark.parametrize("radius", [63, 64, 65, 200])
def test_window_sums_on_both_sides_of_the_pooling_limit(device, box_sums, radius, monkeypatch):
    """Windows of up to POOL_MAX_WINDOW (129) px are pooled, wider ones tiled; both match the oracle, a
    radius beyond the image too."""
    calls = []
    pool = _box.F.avg_pool2d

    def counted(*args, **kwargs):
        calls.append(kwargs.get("padding"))
        return pool(*args, **kwargs)

    monkeypatch.setattr(_box.F, "avg_pool2d", counted)
    rng = np.random.default_rng(radius)
    x = rng.random((2, 1, 150, 140))
    got = box_mean(torch.from_numpy(x).float().to(device), radius).cpu().double().numpy()
    for b in range(2):
        assert np.abs(got[b, 0] - reference.box_mean(x[b, 0], radius)).max() <= 1e-6
    pooled = box_sums == "pooled" and radius <= 64
    assert calls == ([(0, radius), (radius, 0)] if pooled else []), calls
