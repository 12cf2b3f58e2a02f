"""Inference-only CPU float32 fast path (numba kernels of maskrefine.filters) vs the autograd torch path."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")

from maskrefine.torch import guided as guided_mod  # noqa: E402
from maskrefine.torch import guided_filter  # noqa: E402


def _calls(monkeypatch):
    """Patch the numba forward to count its uses; returns the list of call records."""
    calls = []
    real = guided_mod._numba_forward

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(guided_mod, "_numba_forward", spy)
    return calls


def _both(monkeypatch, guide, src, radius, eps, **kw):
    """(numba fast path, torch autograd path) outputs under no_grad."""
    calls = _calls(monkeypatch)
    with torch.no_grad():
        fast = guided_filter(guide, src, radius, eps, **kw)
        assert calls == [True], "the numba fast path did not run"
        monkeypatch.setattr(guided_mod, "NUMBA_FORWARD", False)
        slow = guided_filter(guide, src, radius, eps, **kw)
        assert calls == [True], "NUMBA_FORWARD=False must force the torch path"
    monkeypatch.setattr(guided_mod, "NUMBA_FORWARD", True)
    return fast, slow


CASES = [
    pytest.param(1, 1, {}, id="gray"),
    pytest.param(3, 1, {}, id="colour"),
    pytest.param(1, 3, {}, id="gray-multichannel"),
    pytest.param(3, 2, {}, id="colour-multichannel"),
    pytest.param(1, 1, {"subsample": 2}, id="gray-fast-s2"),
    pytest.param(3, 2, {"subsample": 3}, id="colour-fast-s3-multichannel"),
    pytest.param(1, 1, {"border": "reflect"}, id="gray-reflect"),
    pytest.param(3, 1, {"border": "reflect"}, id="colour-reflect"),
    pytest.param(1, 2, {"subsample": 2, "border": "reflect"}, id="gray-fast-reflect"),
    pytest.param(3, 1, {"subsample": 4, "border": "reflect"}, id="colour-fast-s4-reflect"),
]


@pytest.mark.parametrize("per_image_eps", [False, True], ids=["eps-float", "eps-per-image"])
@pytest.mark.parametrize(("guide_channels", "n_src", "kw"), CASES)
def test_fast_path_equals_autograd_path(
    monkeypatch, make_inputs, oracle, guide_channels, n_src, kw, per_image_eps
):
    guide, src = make_inputs(31, 3, guide_channels, n_src, 53, 47)
    eps = torch.tensor([1e-3, 1e-2, 3e-2]) if per_image_eps else 1e-3
    g, s = torch.from_numpy(guide).float(), torch.from_numpy(src).float()
    fast, slow = _both(monkeypatch, g, s, 6, eps, **kw)
    assert fast.shape == slow.shape == s.shape and fast.dtype == torch.float32
    # The autograd path in float64 (exact to ~1e-13): the fast path is within 1e-6 of it.
    exact = guided_filter(g.double(), s.double(), 6, eps.double() if per_image_eps else eps, **kw)
    np.testing.assert_allclose(fast.double().numpy(), exact.numpy(), rtol=0, atol=1e-6)
    # The float32 autograd path carries its own rounding: with a colour guide and the tiny low-res windows
    # of subsample=3/4 (3x3, 5x5) it reaches ~7e-6 vs float64 (the shared suite allows 2e-5), while the fast
    # path (float64 sums) stays within 1e-6 (checked above).
    atol = 1e-6 if guide_channels == 1 else 2e-5
    np.testing.assert_allclose(fast.numpy(), slow.numpy(), rtol=0, atol=atol)
    eps_list = eps.tolist() if per_image_eps else eps
    want = oracle(guide, src, 6, eps_list, **kw)
    np.testing.assert_allclose(fast.double().numpy(), want, rtol=0, atol=1e-6)


def test_fast_path_runs_without_autograd_only(monkeypatch, make_inputs):
    guide, src = make_inputs(32, 2, 1, 1, 30, 30)
    g, s = torch.from_numpy(guide).float(), torch.from_numpy(src).float()
    calls = _calls(monkeypatch)
    guided_filter(g, s, 3)  # grad mode on, nothing requires grad
    with torch.inference_mode():
        guided_filter(g, s, 3)
    assert calls == [True, True]
    guided_filter(g.requires_grad_(True), s, 3).sum().backward()  # autograd path
    with torch.no_grad():
        guided_filter(g, s, 3)  # requires_grad but autograd disabled: fast path
    guided_filter(g.double(), s.double(), 3)  # float64: torch path (full float64 precision)
    monkeypatch.setattr("maskrefine.torch._box.CPU_IMPL", "torch")
    guided_filter(g.detach(), s, 3)  # CUDA code path on CPU: torch path
    assert calls == [True, True, True]


def test_fast_path_output_is_independent(make_inputs):
    guide, src = make_inputs(33, 2, 3, 2, 30, 30)
    g, s = torch.from_numpy(guide).float(), torch.from_numpy(src).float()
    g0, s0 = g.clone(), s.clone()
    with torch.no_grad():
        out = guided_filter(g, s, 3)
    assert out.requires_grad is False and out.is_contiguous()
    assert not np.shares_memory(out.numpy(), s.numpy()) and not np.shares_memory(out.numpy(), g.numpy())
    assert torch.equal(g, g0) and torch.equal(s, s0)


def test_fast_path_non_contiguous_inputs(monkeypatch, make_inputs):
    guide, src = make_inputs(34, 2, 3, 2, 40, 36)
    g = torch.from_numpy(guide).float().contiguous(memory_format=torch.channels_last)
    s = torch.from_numpy(src).float().transpose(-1, -2).contiguous().transpose(-1, -2)
    fast, slow = _both(monkeypatch, g, s, 4, 1e-2, subsample=2)
    np.testing.assert_allclose(fast.numpy(), slow.numpy(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("bad", ["nan", "eps"])
def test_fast_path_falls_back_on_refused_data(monkeypatch, make_inputs, bad):
    """NaN/inf (torch path propagates, NumPy API raises) or eps <= 0 in a tensor: torch path semantics."""
    guide, src = make_inputs(35, 2, 1, 1, 30, 30)
    g, s = torch.from_numpy(guide).float(), torch.from_numpy(src).float()
    eps = torch.tensor([1e-3, 1e-3])
    if bad == "nan":
        s[0, 0, 3, 4] = float("nan")
    else:
        eps[1] = -1.0
    calls = _calls(monkeypatch)
    with torch.no_grad():
        fast = guided_filter(g, s, 3, eps)
        monkeypatch.setattr(guided_mod, "NUMBA_FORWARD", False)
        slow = guided_filter(g, s, 3, eps)
    assert calls == [False]
    torch.testing.assert_close(fast, slow, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("guide_channels", [1, 3])
def test_gradients_unchanged_when_inputs_require_grad(make_inputs, guide_channels):
    """With inputs requiring grad the autograd path runs: float32 gradients match the float64 ones."""
    guide, src = make_inputs(36, 2, guide_channels, 2, 24, 22)
    grads = {}
    for dtype in (torch.float32, torch.float64):
        g = torch.from_numpy(guide).to(dtype).requires_grad_(True)
        s = torch.from_numpy(src).to(dtype).requires_grad_(True)
        out = guided_filter(g, s, 3, 1e-2, subsample=2)
        assert out.requires_grad
        weight = torch.linspace(-1, 1, out.numel(), dtype=torch.float64).reshape(out.shape).to(dtype)
        (out * weight).sum().backward()
        grads[dtype] = (g.grad.double(), s.grad.double())
    for got, want in zip(grads[torch.float32], grads[torch.float64], strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=2e-4)
