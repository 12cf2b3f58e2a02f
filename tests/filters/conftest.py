"""Backend fixture of the guided-filter equivalence suite and the tolerance table.

Each backend is an adapter ``f(guide_np, src_np, **params) -> np.ndarray`` that follows the NumPy
convention of :func:`maskrefine.filters.guided_filter`: guide (H, W), (H, W, 3), (N, H, W) or
(N, H, W, 3); src (H, W) or (N, H, W); params radius, eps, subsample, border. The torch adapters move
the arrays to (B, C, H, W) tensors, call ``maskrefine.torch.guided_filter`` and move the result back.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from gf_cases import TOLERANCES, tolerance  # noqa: F401 - re-exported for the tests

Adapter = Callable[..., np.ndarray]


def _numba_adapter() -> Adapter:
    from maskrefine.filters import guided_filter

    def run(guide: np.ndarray, src: np.ndarray, **params: object) -> np.ndarray:
        return guided_filter(guide, src, backend="numba", **params)

    return run


def _to_bchw(guide: np.ndarray, src: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NumPy (H,W)/(H,W,3)/(N,H,W)/(N,H,W,3) guide and (H,W)/(N,H,W) src -> (B,C,H,W) arrays."""
    batched = src.ndim == 3
    src_b = src if batched else src[None]
    guide_b = guide if batched else guide[None]
    if guide_b.ndim == 4:  # colour, channels last
        guide_b = np.moveaxis(guide_b, -1, 1)
    else:
        guide_b = guide_b[:, None]
    return np.ascontiguousarray(guide_b), np.ascontiguousarray(src_b[:, None])


def _torch_adapter(device: str) -> Adapter:
    try:
        import torch
    except ImportError:
        pytest.skip("torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")
    try:
        from maskrefine.torch import guided_filter as torch_guided_filter
    except Exception as exc:  # noqa: BLE001 - any import problem is reported as the skip reason
        pytest.skip(f"maskrefine.torch not available: {exc!r}")
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")

    def run(guide: np.ndarray, src: np.ndarray, **params: object) -> np.ndarray:
        guide_b, src_b = _to_bchw(guide, src)
        g = torch.from_numpy(guide_b).to(device)
        s = torch.from_numpy(src_b).to(device)
        radius = params.pop("radius")
        eps = params.pop("eps")
        with torch.no_grad():
            q = torch_guided_filter(g, s, radius, eps, **params)
        q = q.detach().cpu().numpy()[:, 0]
        return q if src.ndim == 3 else q[0]

    return run


BACKEND_NAMES = ("numba", "torch-cpu", "torch-cuda")


@pytest.fixture(params=BACKEND_NAMES)
def backend(request: pytest.FixtureRequest) -> tuple[str, Adapter]:
    """(name, adapter) for each backend; unavailable ones skip with a reason."""
    name = request.param
    if name == "numba":
        return name, _numba_adapter()
    return name, _torch_adapter("cpu" if name == "torch-cpu" else "cuda")
