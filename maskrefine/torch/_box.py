"""Precise, differentiable box sums/means on (B, C, H, W) tensors (kernels of :mod:`maskrefine.torch`).

Two implementations of one primitive, the *separably scaled window sum*::

    out[i, j] = post_h[i] * post_w[j] * sum_{|u - i| <= r, |v - j| <= r} pre_h[u] * pre_w[v] * x[u, v]

with the window cut at the image border (zero outside). The truncated box **mean** is this primitive with
``post = 1 / count`` (the true number of pixels in the cut window is separable: ``n_h[i] * n_w[j]``). The
operator is the transpose of itself with ``pre`` and ``post`` swapped (the window is symmetric), which is
the backward pass of :class:`_ScaledBoxSum`; backward calls the same Function, so double backward works.

* ``"numba"`` (CPU, float32/float64): running sums with float64 accumulators, one pass per axis; planes
  are split over ``torch.get_num_threads()`` Python threads (the kernel releases the GIL). Error does not
  grow with image size.
* ``"torch"`` (any device, used on CUDA): on a GPU, windows of up to :data:`POOL_MAX_WINDOW` px are
  summed directly, one axis at a time, by ``avg_pool2d`` with a divisor of 1 (each output a sum of 2r+1
  values, accumulated in float32 for float32 data; two kernels per call). Otherwise tiled prefix sums:
  each axis is cut into tiles of ``L = 2r+1`` pixels; prefix sums restart at every tile and a window
  spans at most two tiles, so every window sum is a difference of two partial sums of at most ``2L``
  values. Either way the float32 error of a plain cumulative sum (which grows with the image size) never
  appears. Only plain tensor ops: no host-device synchronisation.

Kernels never validate; :mod:`maskrefine.torch.guided` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["box_means", "box_mean_planes", "scaled_box_sum", "CPU_IMPL"]

#: Implementation used for CPU float32/float64 tensors: ``"numba"`` (default, when numba imports) or
#: ``"torch"``. CUDA (and half/other CPU dtypes) always use ``"torch"``. Tests switch this.
CPU_IMPL = "numba"

#: Widest window (2r+1 px) that the torch implementation sums directly by pooling (O(r) per pixel) on a
#: GPU; wider ones go through tiled prefix sums (O(1) per pixel). 0 turns pooling off (bench/guided_torch.py).
POOL_MAX_WINDOW = 129
#: Pool on the CPU too. Off: torch's CPU ``avg_pool2d`` took 2.5x the time of the tiled prefix sums
#: (r = 9, 4 x 1024², 2 threads); tests switch it on to check the pooled sums without a GPU.
POOL_ON_CPU = False

try:  # numba is a core dependency of maskrefine, but keep the torch path usable without it
    import numpy as np
    import numpy.typing as npt

    from maskrefine._jit import njit

    @njit(nogil=True, cache=True)
    def _nb_scaled_box_sum(  # pragma: no cover - jitted
        x: npt.NDArray[np.floating[Any]],
        out: npt.NDArray[np.floating[Any]],
        r: int,
        pre_h: npt.NDArray[np.float64],
        pre_w: npt.NDArray[np.float64],
        post_h: npt.NDArray[np.float64],
        post_w: npt.NDArray[np.float64],
    ) -> None:
        """Window sums of x (N, H, W) into out, both contiguous; 1-D float64 scales; float64 sums.

        Per plane: horizontal pass = vectorised differences ``x[j+r] - x[j-r-1]`` then a running sum per
        row; vertical pass = running sum over rows, vectorised across the row. Serial and GIL-free:
        :func:`_numba_scaled_box_sum` runs chunks of planes in Python threads, which (unlike a second
        OpenMP pool next to torch's) do not spin-wait against torch's intra-op threads.
        """
        n_planes, height, width = x.shape
        rw = min(r, width - 1)
        k = 2 * rw + 1
        tmp = np.empty((height, width), dtype=np.float64)
        row = np.zeros(width + k, dtype=np.float64)  # row[rw + 1 + j] = x[j]; zeros around
        acc = np.empty(width, dtype=np.float64)
        for n in range(n_planes):
            for i in range(height):
                for j in range(width):
                    row[rw + 1 + j] = x[n, i, j] * pre_w[j]
                s = 0.0
                for j in range(1, k):
                    s += row[j]
                for j in range(width):
                    tmp[i, j] = row[j + k] - row[j]
                for j in range(width):
                    s += tmp[i, j]
                    tmp[i, j] = s
            for j in range(width):
                acc[j] = 0.0
            for i in range(min(r, height)):
                ph = pre_h[i]
                for j in range(width):
                    acc[j] += tmp[i, j] * ph
            for i in range(height):
                hi = i + r
                lo = i - r - 1
                if hi < height:
                    ph = pre_h[hi]
                    for j in range(width):
                        acc[j] += tmp[hi, j] * ph
                if lo >= 0:
                    ph = pre_h[lo]
                    for j in range(width):
                        acc[j] -= tmp[lo, j] * ph
                ph = post_h[i]
                for j in range(width):
                    out[n, i, j] = acc[j] * ph * post_w[j]

    _HAVE_NUMBA = True
except ImportError:  # pragma: no cover - numba missing
    _HAVE_NUMBA = False


def _prefix_sums(x: torch.Tensor) -> torch.Tensor:
    """Inclusive prefix sums along the last axis.

    ``torch.cumsum`` has no deterministic CUDA kernel: under ``torch.use_deterministic_algorithms(True)``
    it raises on CUDA. In that mode the sums are a Hillis-Steele scan instead (ceil(log2 n) shifted
    additions, plain tensor ops, deterministic; same precision for the short tiles used here).
    """
    if not torch.are_deterministic_algorithms_enabled():
        return x.cumsum(-1)
    n, shift = x.shape[-1], 1
    while shift < n:
        x = x + F.pad(x[..., :-shift], (shift, 0))
        shift *= 2
    return x


def _sum_last_axis(x: torch.Tensor, r: int) -> torch.Tensor:
    """Window sums ``sum_{|v-j|<=r} x[..., v]`` along the last axis (zero outside), by tiled prefix sums."""
    n = x.shape[-1]
    r = min(r, n - 1)
    k = 2 * r + 1
    tile = k  # the smallest tile a window spans at most two of: the fewest values per partial sum
    n_tiles = -(-n // tile)
    # xp[m] = x[m - r]; output j needs xp[j .. j + 2r]; one spare tile on the right.
    xp = F.pad(x, (r, (n_tiles + 1) * tile - n - r))
    tiles = xp.unflatten(-1, (n_tiles + 1, tile))
    c = _prefix_sums(tiles)  # inclusive prefix within each tile
    # E[t] = [0, c[t], total[t] + c[t+1]] (length 2L+1): prefix sums relative to the start of tile t.
    zero = torch.zeros_like(c[..., :-1, :1])
    ext = torch.cat((zero, c[..., :-1, :], c[..., 1:, :] + c[..., :-1, -1:]), dim=-1)
    sums = ext[..., k : k + tile] - ext[..., :tile]
    return sums.flatten(-2)[..., :n]


def _window_sums(x: torch.Tensor, r: int) -> torch.Tensor:
    """Window sums of radius r over the last two axes of ``(..., H, W)`` (zero outside), any device.

    On a GPU (and on the CPU with :data:`POOL_ON_CPU`), windows of at most :data:`POOL_MAX_WINDOW` px
    are summed directly, one axis at a time, by ``avg_pool2d`` with a divisor of 1: each output a sum of
    2r+1 values, two kernel launches in all. Otherwise, and for wider windows, the tiled prefix sums of
    :func:`_sum_last_axis`, whose cost does not grow with r.
    """
    height, width = x.shape[-2:]
    rh, rw = min(r, height - 1), min(r, width - 1)
    pool = POOL_ON_CPU or x.device.type != "cpu"
    if pool and 2 * max(rh, rw) + 1 <= POOL_MAX_WINDOW and x.numel() > 0:
        planes = x.reshape(-1, 1, height, width)
        y = F.avg_pool2d(planes, (1, 2 * rw + 1), stride=1, padding=(0, rw), divisor_override=1)
        y = F.avg_pool2d(y, (2 * rh + 1, 1), stride=1, padding=(rh, 0), divisor_override=1)
        return y.reshape(x.shape)
    y = _sum_last_axis(x, r)
    return _sum_last_axis(y.transpose(-1, -2), r).transpose(-1, -2)


def _torch_scaled_box_sum(
    x: torch.Tensor,
    r: int,
    pre_h: torch.Tensor | None,
    pre_w: torch.Tensor | None,
    post_h: torch.Tensor | None,
    post_w: torch.Tensor | None,
) -> torch.Tensor:
    """Scaled window sums of one tensor (:func:`_window_sums`); scales come in (h, w) pairs or not at all."""
    if pre_h is not None and pre_w is not None:
        x = x * (pre_h[:, None] * pre_w[None, :])
    y = _window_sums(x, r)
    if post_h is not None and post_w is not None:
        y = y * (post_h[:, None] * post_w[None, :])
    return y.contiguous()


def _use_numba(x: torch.Tensor) -> bool:
    return (
        _HAVE_NUMBA
        and CPU_IMPL == "numba"
        and x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.float64)
    )


def _numba_scaled_box_sums(
    xs: Sequence[torch.Tensor],
    r: int,
    pre_h: torch.Tensor | None,
    pre_w: torch.Tensor | None,
    post_h: torch.Tensor | None,
    post_w: torch.Tensor | None,
) -> list[torch.Tensor]:
    """Run the numba kernel on several tensors of one (H, W); planes split over Python threads."""
    height, width = xs[0].shape[-2:]

    def arr(v: torch.Tensor | None, size: int) -> npt.NDArray[np.float64]:
        if v is None:
            return np.ones(size, dtype=np.float64)
        return v.detach().to(torch.float64).numpy()

    scales = (arr(pre_h, height), arr(pre_w, width), arr(post_h, height), arr(post_w, width))
    n_threads = max(1, torch.get_num_threads())
    outs: list[torch.Tensor] = []
    jobs: list[tuple[npt.NDArray[np.floating[Any]], npt.NDArray[np.floating[Any]]]] = []
    for x in xs:
        x = x.detach().contiguous()
        flat = x.reshape(-1, height, width)
        out = torch.empty_like(flat)
        outs.append(out.reshape(x.shape))
        x_np, out_np = flat.numpy(), out.numpy()
        n_planes = x_np.shape[0]
        parts = max(1, min(n_planes, -(-n_threads // len(xs))))
        bounds = [n_planes * t // parts for t in range(parts + 1)]
        jobs += [(x_np[a:b], out_np[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
    if n_threads == 1 or len(jobs) <= 1:  # no job at all for tensors without planes, e.g. (0, H, W)
        for x_np, out_np in jobs:
            _nb_scaled_box_sum(x_np, out_np, int(r), *scales)
    else:
        from maskrefine.filters.guided import _run_parallel  # the filters' one pool, safe after fork()

        def share(part: int) -> None:
            for x_np, out_np in jobs[part::n_threads]:
                _nb_scaled_box_sum(x_np, out_np, int(r), *scales)

        _run_parallel([partial(share, part) for part in range(min(n_threads, len(jobs)))])
    return outs


class _ScaledBoxSum(torch.autograd.Function):
    """Autograd wrapper over several tensors: forward ``post ∘ S ∘ pre``, backward ``pre ∘ S ∘ post``."""

    @staticmethod
    def forward(
        ctx: Any,
        r: int,
        pre_h: torch.Tensor | None,
        pre_w: torch.Tensor | None,
        post_h: torch.Tensor | None,
        post_w: torch.Tensor | None,
        *xs: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        """Return ``post ∘ S ∘ pre`` of each tensor in ``xs``; keep ``r`` and the scales for backward."""
        ctx.r = r
        ctx.scales = (pre_h, pre_w, post_h, post_w)
        if all(_use_numba(x) for x in xs):
            outs = _numba_scaled_box_sums(xs, r, pre_h, pre_w, post_h, post_w)
        else:
            outs = [_torch_scaled_box_sum(x, r, pre_h, pre_w, post_h, post_w) for x in xs]
        return tuple(outs)

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        """Return the gradients ``pre ∘ S ∘ post`` of ``xs`` (None for ``r`` and the four scales)."""
        pre_h, pre_w, post_h, post_w = ctx.scales
        grads_in = _ScaledBoxSum.apply(ctx.r, post_h, post_w, pre_h, pre_w, *grads)
        return (None, None, None, None, None, *grads_in)


def scaled_box_sum(
    *xs: torch.Tensor,
    r: int,
    pre_h: torch.Tensor | None = None,
    pre_w: torch.Tensor | None = None,
    post_h: torch.Tensor | None = None,
    post_w: torch.Tensor | None = None,
) -> tuple[torch.Tensor, ...]:
    """Differentiable separably scaled window sums of each tensor in ``xs`` (see module docstring)."""
    return _ScaledBoxSum.apply(r, pre_h, pre_w, post_h, post_w, *xs)


def _inverse_counts(n: int, r: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    idx = torch.arange(n, device=device)
    count = torch.clamp(idx + r, max=n - 1) - torch.clamp(idx - r, min=0) + 1
    return 1.0 / count.to(dtype)


def _reflect_index(n: int, r: int, device: torch.device) -> torch.Tensor:
    """Return the indices of OpenCV BORDER_REFLECT padding by r (repeated reflection when r >= n)."""
    u = torch.arange(-r, n + r, device=device) % (2 * n)
    return torch.where(u < n, u, 2 * n - 1 - u)


def _reflect_axis_mean(x: torch.Tensor, radius: int, dim: int) -> torch.Tensor:
    """Mean over the window of radius r along ``dim`` of the BORDER_REFLECT extension of ``x``, any r.

    The extension has period 2n (n = x.shape[dim]) and the sum of a period P is twice the axis total.
    With 2r+1 = 2nq + 2r'+1 (0 <= r' < n) a window holds q periods plus the window of radius r' around
    i + nq, which is i for an even q and, by the mirror symmetry, n-1-i for an odd q. Tiled window sums
    (differentiable tensor ops), O(n) memory per axis whatever r; used when r >= min(H, W) only.
    """
    n = x.shape[dim]
    k = 2 * radius + 1
    q, rem = divmod(k, 2 * n)
    r = (rem - 1) // 2
    xp = x.movedim(dim, -1).index_select(-1, _reflect_index(n, r, x.device))
    part = _sum_last_axis(xp, r)[..., r : r + n]
    if q % 2:
        part = part.flip(-1)
    total = x.movedim(dim, -1).sum(-1, keepdim=True)
    # Python floats: q and k may be far beyond int64 (and k*k beyond float32).
    return (part * (1.0 / k) + total * (2 * q / k)).movedim(-1, dim)


def box_means(xs: tuple[torch.Tensor, ...], radius: int, border: str) -> tuple[torch.Tensor, ...]:
    """Box means over the last two axes of floating tensors ``(..., H, W)`` of one size (one autograd node).

    ``border="truncated"``: window cut at the border, divided by the true pixel count.
    ``border="reflect"``: OpenCV ``BORDER_REFLECT`` padding, divided by ``(2r+1)**2``.
    """
    x0 = xs[0]
    height, width = x0.shape[-2:]
    if border == "truncated":
        # A window reaching past both ends of an axis is that axis: a larger radius changes nothing (and a
        # huge Python int no longer reaches torch, which cannot hold it).
        radius = min(radius, max(height, width))
        inv_h = _inverse_counts(height, radius, x0.dtype, x0.device)
        inv_w = _inverse_counts(width, radius, x0.dtype, x0.device)
        return scaled_box_sum(*xs, r=radius, post_h=inv_h, post_w=inv_w)
    if radius >= min(height, width):  # repeated reflection: per axis, without a (H+2r)x(W+2r) padding
        return tuple(_reflect_axis_mean(_reflect_axis_mean(x, radius, -1), radius, -2) for x in xs)
    k = 2 * radius + 1
    rows = _reflect_index(height, radius, x0.device)
    cols = _reflect_index(width, radius, x0.device)
    padded = [x.index_select(-2, rows).index_select(-1, cols) for x in xs]
    sums = scaled_box_sum(*padded, r=radius)
    return tuple(y[..., radius : radius + height, radius : radius + width] * (1.0 / (k * k)) for y in sums)


def box_mean_planes(x: torch.Tensor, radius: int, border: str) -> torch.Tensor:
    """Box mean of one tensor; see :func:`box_means`."""
    return box_means((x,), radius, border)[0]
