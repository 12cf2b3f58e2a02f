"""Torch guided filter: audit findings of 2026-12-01 (second pass), one test per finding."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")

from maskrefine.torch import box_mean, guided_filter  # noqa: E402


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
@pytest.mark.parametrize("border", ["truncated", "reflect"])
@pytest.mark.parametrize("shape", [(0, 3, 3), (2, 0, 4, 5), (0, 1, 1)])
def test_box_mean_of_no_planes_is_empty(device, cpu_impl, dtype, border, shape):
    # the numba kernel's thread split got no job and indexed an empty list (IndexError)
    x = torch.zeros(shape, dtype=dtype, device=device)
    out = box_mean(x, 1, border)
    assert out.shape == x.shape and out.dtype == dtype and out.device == x.device


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("subsample", [1, 2])
@pytest.mark.parametrize("eps", [1e-10, 1e-12])
def test_gray_image_as_colour_guide_with_small_eps(
    device, cpu_impl, dtype, subsample, eps, make_inputs, oracle
):
    """A gray photo given as an RGB guide (3 equal channels): Σ is singular, Σ + εU has pivots ε. Computed
    in float32 the pivots lost ε to rounding and became 0: 0/0, every output pixel NaN (eps <= 1e-10); the
    numba CPU inference path (float64 cofactor inverse, before it became LDLᵀ) was 0.1-0.2 off."""
    guide, src = make_inputs(41, 2, 1, 1, 40, 36)
    rgb = torch.from_numpy(np.repeat(guide, 3, axis=1)).to(dtype)
    mask = torch.from_numpy(src).to(dtype)
    # the oracle on the values the filter sees (inputs rounded to dtype), with the RGB guide
    want = oracle(rgb.double().numpy(), mask.double().numpy(), 3, eps, subsample=subsample)
    got = guided_filter(rgb.to(device), mask.to(device), 3, eps, subsample=subsample)
    assert got.dtype == dtype
    assert torch.isfinite(got).all()
    atol = {torch.float64: 1e-8, torch.float32: 1e-5, torch.float16: 1e-3, torch.bfloat16: 5e-3}[dtype]
    np.testing.assert_allclose(got.cpu().double().numpy(), want, rtol=0, atol=atol)


class _CudaDeterminismAlerts(torch.utils._python_dispatch.TorchDispatchMode):
    """On CPU, raise as CUDA does under ``torch.use_deterministic_algorithms(True)`` for the ops of this
    filter that have no deterministic CUDA kernel (torch's docstring of use_deterministic_algorithms)."""

    OPS = ("aten::cumsum", "aten::upsample_bilinear2d_backward")

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if (
            torch.are_deterministic_algorithms_enabled()
            and func.overloadpacket._qualified_op_name in self.OPS
        ):
            raise RuntimeError(f"{func} does not have a deterministic implementation (CUDA)")
        return func(*args, **(kwargs or {}))


@pytest.fixture
def deterministic(device, box_sums, monkeypatch):
    """torch.use_deterministic_algorithms(True) for the test, on the CUDA code path (both window sums);
    on CPU the CUDA refusals are emulated."""
    from contextlib import nullcontext

    from maskrefine.torch import guided as guided_mod

    monkeypatch.setattr(guided_mod, "NUMBA_FORWARD", False)
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        with _CudaDeterminismAlerts() if device == "cpu" else nullcontext():
            yield
    finally:
        torch.use_deterministic_algorithms(before)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("guide_channels", [1, 3])
@pytest.mark.parametrize("subsample", [1, 2])
@pytest.mark.parametrize("border", ["truncated", "reflect"])
def test_runs_under_deterministic_algorithms(
    device, dtype, guide_channels, subsample, border, make_inputs, oracle, deterministic
):
    """The CUDA path used torch.cumsum (forward) and F.interpolate's bilinear backward (subsample > 1), both
    refused on CUDA under torch.use_deterministic_algorithms(True): RuntimeError from inside torch."""
    guide, src = make_inputs(42, 2, guide_channels, 2, 29, 26)
    g = torch.from_numpy(guide).to(dtype).to(device).requires_grad_(True)
    s = torch.from_numpy(src).to(dtype).to(device).requires_grad_(True)
    out = guided_filter(g, s, 4, 1e-2, subsample=subsample, border=border)
    want = oracle(guide, src, 4, 1e-2, subsample=subsample, border=border)
    atol = 1e-10 if dtype == torch.float64 else 2e-5
    np.testing.assert_allclose(out.detach().cpu().double().numpy(), want, rtol=0, atol=atol)
    out.square().sum().backward()
    first = (g.grad.clone(), s.grad.clone())
    g.grad = s.grad = None
    guided_filter(g, s, 4, 1e-2, subsample=subsample, border=border).square().sum().backward()
    assert torch.equal(g.grad, first[0]) and torch.equal(s.grad, first[1])
    assert torch.equal(box_mean(s.detach(), 3, border), box_mean(s.detach(), 3, border))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
@pytest.mark.parametrize("border", ["truncated", "reflect"])
@pytest.mark.parametrize("radius", [10**6, 2**62, 10**30])
def test_box_mean_huge_radius(device, cpu_impl, dtype, border, radius):
    """A window much larger than the image: truncated is the plane mean; reflect tends to it (the
    reflected image is periodic). It raised OverflowError (int too big to convert) from torch, or for
    reflect allocated a (H+2r)x(W+2r) padded plane (10**6: 4e12 values)."""
    x = torch.from_numpy(np.random.default_rng(43).random((2, 4, 5))).to(dtype).to(device)
    out = box_mean(x, radius, border)
    assert out.shape == x.shape and out.dtype == dtype
    want = x.double().mean(dim=(-2, -1), keepdim=True).expand_as(x)
    # reflect: the window holds q whole periods and < 1 period more, so it is within ~2·n/k of the mean
    atol = {torch.float64: 1e-12, torch.float32: 1e-6, torch.float16: 1e-3}[dtype]
    atol = max(atol, 20.0 / radius) if border == "reflect" else atol
    torch.testing.assert_close(out.double(), want, rtol=0, atol=atol)


@pytest.mark.parametrize("border", ["truncated", "reflect"])
@pytest.mark.parametrize(
    ("height", "width", "radius"), [(4, 5, 4), (4, 5, 5), (3, 7, 11), (1, 6, 40), (6, 1, 13)]
)
def test_box_mean_windows_beyond_the_image_match_reference(device, cpu_impl, border, height, width, radius):
    from maskrefine.filters import reference

    x = np.random.default_rng(44).random((2, height, width))
    want = np.stack([reference.box_mean(plane, radius, border) for plane in x])
    t = torch.from_numpy(x).to(device).requires_grad_(True)
    got = box_mean(t, radius, border)
    np.testing.assert_allclose(got.detach().cpu().numpy(), want, rtol=0, atol=1e-12)
    # the box mean is symmetric in truncated mode only; check the gradient against the dense Jacobian
    assert torch.autograd.gradcheck(lambda v: box_mean(v, radius, border), (t,), fast_mode=True)


@pytest.mark.parametrize("border", ["truncated", "reflect"])
def test_box_mean_of_no_planes_backward(device, cpu_impl, border):
    x = torch.zeros((0, 4, 4), dtype=torch.float64, device=device, requires_grad=True)
    box_mean(x, 2, border).sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


def test_reflect_windows_beyond_the_short_side_keep_float32_precision(device, cpu_impl):
    """r >= min(H, W) in reflect mode sums per axis (no (H+2r)x(W+2r) padding): tiled sums along the long
    axis too, not a cumulative sum whose float32 error grows with the length."""
    from maskrefine.filters import reference

    x = np.random.default_rng(45).random((4, 4096))
    got = box_mean(torch.from_numpy(x).float().to(device), 5, "reflect").cpu().double().numpy()
    assert np.abs(got - reference.box_mean(x, 5, "reflect")).max() <= 1e-6


@pytest.mark.parametrize("subsample", [1, 2])
@pytest.mark.parametrize("border", ["truncated", "reflect"])
def test_gradcheck_colour_eps_tensor(cpu_impl, subsample, border, make_inputs):
    """Gradients w.r.t. guide, src and a per-image eps through the clamped LDLᵀ pivots (colour guide)."""
    guide, src = make_inputs(46, 2, 3, 1, 8, 7)
    g = torch.from_numpy(guide).requires_grad_(True)
    s = torch.from_numpy(src).requires_grad_(True)
    eps = torch.tensor([1e-2, 3e-2], dtype=torch.float64, requires_grad=True)

    def fn(g_, s_, e_):
        return guided_filter(g_, s_, 2, e_, subsample=subsample, border=border)

    assert torch.autograd.gradcheck(fn, (g, s, eps), eps=1e-6, atol=1e-6, fast_mode=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64])
@pytest.mark.parametrize("guide_channels", [1, 3])
@pytest.mark.parametrize("eps", [1e30, 1e300, "tensor"])
def test_huge_eps_gives_the_mean_of_the_mean(device, cpu_impl, dtype, guide_channels, eps, make_inputs):
    """eps -> inf: a -> 0, q = mean(mean(p)). eps beyond the compute dtype's range (float32: 3.4e38) must
    not raise (a float32 clamp refuses a bound of 1e300) nor give NaN (inf/inf, or the numba kernel's old
    cofactor determinant ~eps**3 overflowing float64)."""
    guide, src = make_inputs(47, 2, guide_channels, 2, 20, 18)
    e = torch.tensor([1e30, 1e300], dtype=torch.float64, device=device) if eps == "tensor" else eps
    g, s = torch.from_numpy(guide).to(dtype).to(device), torch.from_numpy(src).to(dtype).to(device)
    got = guided_filter(g, s, 3, e, subsample=2)
    plain = box_mean(box_mean(s[..., ::2, ::2].double(), 1), 1)
    want = torch.nn.functional.interpolate(plain, size=(20, 18), mode="bilinear", align_corners=False)
    atol = {torch.float64: 1e-12, torch.float32: 1e-6, torch.float16: 1e-3}[dtype]
    torch.testing.assert_close(got.double(), want, rtol=0, atol=atol)


@pytest.mark.parametrize(
    ("eps", "error", "match"),
    [
        (torch.ones(2, 1), ValueError, r"`eps` tensor must be 0-D or have shape \(B,\).*got shape \(2, 1\)"),
        (
            torch.ones(2, dtype=torch.int64),
            TypeError,
            r"`eps` tensor must be floating point; got dtype torch.int64",
        ),
        (torch.ones((), dtype=torch.complex64), TypeError, r"`eps` tensor must be floating point"),
    ],
)
def test_module_checks_an_eps_tensor_when_built(eps, error, match):
    from maskrefine.torch import GuidedFilter

    # a float eps was checked at construction, a tensor only at the first forward call
    with pytest.raises(error, match=match):
        GuidedFilter(2, eps=eps)
    module = GuidedFilter(2, eps=torch.tensor([1e-2, 2e-2]))
    assert module(torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8)).shape == (2, 1, 8, 8)


@pytest.mark.parametrize("guide_channels", [1, 3])
def test_float32_precision_2048_autograd_torch_box_sums(device, guide_channels, box_sums, monkeypatch):
    """The float32 autograd filter with the torch window sums (the CUDA code, pooled and tiled) at 2048²:
    within 1e-5 of the float64 oracle (1.1e-6 measured with the tiled sums, colour, eps 1e-4).
    test_float32_precision_4096 runs with the numba inference path on (NUMBA_FORWARD), so it does not
    measure this path."""
    from test_guided_torch import _patches_oracle, _photo_like

    from maskrefine.torch import guided as guided_mod

    monkeypatch.setattr(guided_mod, "NUMBA_FORWARD", False)
    n, size = 2048, 96
    guide, src = _photo_like(n, guide_channels, 48)
    g = guide[0] if guide_channels == 1 else np.moveaxis(guide, 0, -1)
    got = guided_filter(
        torch.from_numpy(guide)[None].float().to(device), torch.from_numpy(src)[None, None].float().to(device)
    )
    got = got[0, 0].cpu().double().numpy()
    boxes = [(0, 0), (n - size, n - size), (n // 2, n // 3)]
    worst = max(
        float(np.abs(got[y : y + size, x : x + size] - want).max())
        for (y, x), want in _patches_oracle(g, src, 9, 1e-3, size, boxes).items()
    )
    assert worst <= 1e-5, worst


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("subsample", [1, 2])
@pytest.mark.parametrize("eps", [1e-8, 1e-10, 1e-12])
def test_small_eps_on_a_flat_two_region_guide_is_computed_in_float64(
    device, cpu_impl, channels, subsample, eps, oracle
):
    # audit 2026-12-03: on the autograd path (training, CUDA) the float32 moments' rounding noise on flat
    # regions was divided by eps: colour errors 3.2e-2 at eps 1e-8 (subsample 2), 1.3e5 at 1e-10 and
    # 9.2e18 at 1e-12; the numba kernels switch to float64 below eps 1e-6, the torch path now does too
    guide = np.zeros((1, channels, 32, 32))
    guide[..., :, :16] = np.array([0.2, 0.5, 0.7][:channels])[:, None, None]
    guide[..., :, 16:] = np.array([0.8, 0.3, 0.1][:channels])[:, None, None]
    src = np.random.default_rng(3).random((1, 1, 32, 32))
    g = torch.tensor(guide, dtype=torch.float32, device=device)
    p = torch.tensor(src, dtype=torch.float32, device=device, requires_grad=True)
    want = oracle(g.double().cpu().numpy(), p.detach().double().cpu().numpy(), 4, eps, subsample=subsample)
    got = guided_filter(g, p, 4, eps, subsample=subsample)
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.detach().cpu().double().numpy(), want, atol=1e-5)
    got.sum().backward()
    assert torch.isfinite(p.grad).all() and p.grad.abs().max() < 10


def test_module_eps_tensor_moves_and_saves_with_the_module():
    # it was a plain attribute: .to()/.cuda() left it behind (a host-to-device copy on every CUDA call)
    # and state_dict() did not hold it
    from maskrefine.torch import GuidedFilter

    module = GuidedFilter(radius=2, eps=torch.tensor([1e-3, 1e-2]))
    assert torch.equal(module.state_dict()["eps"], torch.tensor([1e-3, 1e-2]))
    module = module.to(torch.float64)
    assert module.eps.dtype == torch.float64
    guide, src = torch.rand(2, 1, 16, 16, dtype=torch.float64), torch.rand(2, 1, 16, 16, dtype=torch.float64)
    for i, eps in enumerate((1e-3, 1e-2)):
        torch.testing.assert_close(
            module(guide, src)[i], guided_filter(guide[i : i + 1], src[i : i + 1], 2, eps)[0]
        )
    learned = GuidedFilter(eps=torch.nn.Parameter(torch.tensor(1e-3)))
    assert [name for name, _ in learned.named_parameters()] == ["eps"] and "eps" not in dict(
        learned.named_buffers()
    )
    assert GuidedFilter(eps=1e-3).state_dict() == {}
