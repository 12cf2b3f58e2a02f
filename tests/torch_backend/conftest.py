"""Fixtures of the torch tests: device and CPU box-kernel parameters, oracle adapter."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")

from maskrefine.filters import reference  # noqa: E402
from maskrefine.torch import _box  # noqa: E402
from maskrefine.torch import guided as guided_mod  # noqa: E402

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    ),
]


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    """Device under test; CUDA cases skip with 'no CUDA device' when none is present."""
    return request.param


@pytest.fixture(params=["numba", "numba-no-fast-forward", "torch", "torch-tiled"])
def cpu_impl(request, monkeypatch) -> str:
    """CPU implementation: box-sum kernel ('torch' = the CUDA code path run on CPU, window sums by pooling;
    'torch-tiled' = its tiled prefix sums, used for wide windows and on a CPU without numba), and whether
    inference-only float32 calls may take the numba fast path ('numba-no-fast-forward' forces the autograd
    path, which the 'numba' case only reaches with grad-requiring or float64 inputs)."""
    monkeypatch.setattr(_box, "CPU_IMPL", "torch" if request.param.startswith("torch") else "numba")
    monkeypatch.setattr(_box, "POOL_ON_CPU", request.param == "torch")
    monkeypatch.setattr(guided_mod, "NUMBA_FORWARD", request.param == "numba")
    return request.param


@pytest.fixture(params=["pooled", "tiled"])
def box_sums(request, monkeypatch) -> str:
    """The torch window sums (the CUDA code path) on any device: 'pooled' (avg_pool2d, windows of up to
    POOL_MAX_WINDOW px) or 'tiled' (tiled prefix sums, forced by POOL_MAX_WINDOW = 0)."""
    monkeypatch.setattr(_box, "CPU_IMPL", "torch")
    monkeypatch.setattr(_box, "POOL_ON_CPU", True)
    if request.param == "tiled":
        monkeypatch.setattr(_box, "POOL_MAX_WINDOW", 0)
    return request.param


def _oracle(guide: np.ndarray, src: np.ndarray, radius: int, eps, **kw) -> np.ndarray:
    """Float64 reference on (B, 1|3, H, W) guide and (B, C, H, W) src; eps float or per-image list."""
    batch, n_src = src.shape[:2]
    eps_list = np.broadcast_to(np.asarray(eps, dtype=np.float64), (batch,))
    out = np.empty(src.shape, dtype=np.float64)
    for b in range(batch):
        g = guide[b, 0] if guide.shape[1] == 1 else np.moveaxis(guide[b], 0, -1)
        for c in range(n_src):
            out[b, c] = reference.guided_filter(g, src[b, c], radius, float(eps_list[b]), **kw)
    return out


def _make_inputs(seed: int, batch: int, guide_channels: int, n_src: int, height: int, width: int):
    """Seeded guide in [0, 1] with structure plus a soft mask, float64 NumPy arrays."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    base = 0.5 + 0.4 * np.sin(6 * xx + 4 * yy)
    guide = np.clip(base + 0.1 * rng.standard_normal((batch, guide_channels, height, width)), 0, 1)
    src = np.clip(base + 0.3 * rng.standard_normal((batch, n_src, height, width)), 0, 1)
    return guide, src


@pytest.fixture
def oracle():
    """Float64 reference adapter for batched (B, C, H, W) NumPy inputs."""
    return _oracle


@pytest.fixture
def make_inputs():
    """Seeded (guide, src) NumPy float64 pair factory."""
    return _make_inputs
