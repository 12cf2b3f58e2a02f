"""Differentiable guided filter on (B, C, H, W) tensors, CPU and CUDA.

Same equations, parameter names and conventions as :func:`maskrefine.filters.guided_filter` and the float64
oracle :mod:`maskrefine.filters.reference` (docs/filters.md): truncated-window box means divided by the true
pixel count (default) or OpenCV ``BORDER_REFLECT`` borders, gray or 3-channel colour guide, fast variant
with nearest subsampling at phase 0, radius ``r // s`` and bilinear (``align_corners=False``) upsampling
of the mean coefficients.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Literal, cast

import torch
import torch.nn.functional as F
from torch import nn

from maskrefine._checks import (
    check_eps,
    check_radius,
    check_subsample,
    check_window_fits,
    is_one_of,
    short_repr,
)
from maskrefine.filters.guided import FLOAT64_COEFFICIENTS_BELOW_EPS
from maskrefine.torch import _box
from maskrefine.torch._box import box_mean_planes, box_means

__all__ = ["guided_filter", "GuidedFilter", "box_mean", "NUMBA_FORWARD"]

#: Run inference-only CPU float32 calls through the fused NumPy/numba kernels of
#: :func:`maskrefine.filters.guided_filter` (see :func:`guided_filter`, "Which code path runs"). Tests set
#: it to False to force the autograd (torch) path.
NUMBA_FORWARD = True

Border = Literal["truncated", "reflect"]
_BORDERS = ("truncated", "reflect")
_HALF = (torch.float16, torch.bfloat16)


def _check_border(border: object) -> Border:
    if not is_one_of(border, _BORDERS):
        raise ValueError(
            f"`border` must be one of {', '.join(map(repr, _BORDERS))}; got {short_repr(border)}"
        )
    return cast(Border, str(border))  # one of _BORDERS, checked above


def _check_tensor(x: object, name: str, layout: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor of shape {layout}; got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(
            f"`{name}` must be 4-D {layout}; got shape {tuple(x.shape)} ({x.ndim}-D). "
            f"Add the missing axes, e.g. `{name}[None, None]` for a single (H, W) image."
        )
    if not x.is_floating_point():
        raise TypeError(
            f"`{name}` must be a floating-point tensor (float16/bfloat16/float32/float64) with values in "
            f"[0, 1]; got dtype {x.dtype}. Convert it first, e.g. `{name}.float() / 255` for 8-bit data."
        )
    return x


def _compute_dtype(*dtypes: torch.dtype) -> torch.dtype:
    dtype = dtypes[0]
    for other in dtypes[1:]:
        dtype = torch.promote_types(dtype, other)
    return torch.float32 if dtype in _HALF else dtype


def _check_eps(eps: object, batch: int, dtype: torch.dtype, device: torch.device) -> float | torch.Tensor:
    """Return eps as a float, or as a (B, 1, 1, 1) tensor in ``dtype`` on ``device``."""
    if isinstance(eps, torch.Tensor):
        # Shape/dtype only: checking eps > 0 on the values would synchronise with the device.
        if not eps.is_floating_point():
            raise TypeError(f"`eps` tensor must be floating point; got dtype {eps.dtype}")
        if eps.ndim == 0:
            return eps.to(device=device, dtype=dtype).reshape(1, 1, 1, 1)
        if tuple(eps.shape) != (batch,):
            raise ValueError(
                f"`eps` tensor must have shape ({batch},) (one value per image) or be 0-D; "
                f"got shape {tuple(eps.shape)}"
            )
        return eps.to(device=device, dtype=dtype).reshape(batch, 1, 1, 1)
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise TypeError(f"`eps` must be a positive float or a ({batch},) tensor; got {type(eps).__name__}")
    return check_eps(eps)  # the NumPy API's rule: finite, >= MIN_EPS


def _validate(
    guide: object, src: object, radius: object, eps: object, subsample: object, border: object
) -> tuple[torch.Tensor, torch.Tensor, int, float | torch.Tensor, int, Border, torch.dtype]:
    guide = _check_tensor(guide, "guide", "(B, 1, H, W) or (B, 3, H, W)")
    src = _check_tensor(src, "src", "(B, C, H, W)")
    radius = check_radius(radius)
    subsample = check_subsample(subsample)
    border = _check_border(border)
    if guide.shape[1] not in (1, 3):
        raise ValueError(
            f"`guide` must have 1 (gray) or 3 (colour) channels; got {guide.shape[1]} in shape "
            f"{tuple(guide.shape)}. Use `make_guide(image, mode='mean')` for a gray guide."
        )
    if guide.shape[0] != src.shape[0]:
        raise ValueError(
            f"`guide` and `src` must have the same batch size; got {guide.shape[0]} and {src.shape[0]}"
        )
    if guide.shape[-2:] != src.shape[-2:]:
        raise ValueError(
            f"`guide` and `src` must have the same height and width; got {tuple(guide.shape[-2:])} and "
            f"{tuple(src.shape[-2:])}. Resize the mask to the image size first."
        )
    if src.shape[1] < 1 or src.shape[0] < 1:
        raise ValueError(f"`src` must have at least one image and one channel; got shape {tuple(src.shape)}")
    if guide.device != src.device:
        raise ValueError(f"`guide` and `src` must be on the same device; got {guide.device} and {src.device}")
    height, width = src.shape[-2:]
    check_window_fits(height, width, radius, subsample)
    dtype = _compute_dtype(guide.dtype, src.dtype)
    eps = _check_eps(eps, src.shape[0], dtype, src.device)
    if (
        dtype == torch.float32
        and isinstance(eps, float)
        and eps < FLOAT64_COEFFICIENTS_BELOW_EPS
        and src.device.type != "mps"  # no float64 there
    ):
        # On flat guide regions the float32 moments' rounding noise (~1e-9) is far above ε and would be
        # divided by it (errors up to 1e5 at ε = 1e-10 on a two-colour guide): compute in float64, as the
        # numba kernels keep their coefficients in float64 below this ε. A tensor ε is not inspected (its
        # values would synchronise with the device).
        dtype = torch.float64
    return guide, src, radius, eps, subsample, border, dtype


def _at_least(x: torch.Tensor, eps: float | torch.Tensor) -> torch.Tensor:
    """Return ``max(x, eps)`` elementwise; ``eps`` a float or a (B, 1, 1, 1) tensor of x's dtype."""
    if isinstance(eps, torch.Tensor):
        return torch.maximum(x, eps)
    return x.clamp(min=min(eps, torch.finfo(x.dtype).max))  # clamp refuses a bound beyond the dtype


def _coefficients(
    guide: torch.Tensor, src: torch.Tensor, radius: int, eps: float | torch.Tensor, border: Border
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (a, b) of He et al. (TPAMI 2013): gray -> a (B,C,h,w); colour -> a (B,3C,h,w) channel-major."""
    if guide.shape[1] == 1:
        mean_i, mean_ii, mean_p, mean_ip = box_means((guide, guide * guide, src, guide * src), radius, border)
        var = torch.addcmul(mean_ii, mean_i, mean_i, value=-1.0).add_(eps)
        cov = torch.addcmul(mean_ip, mean_i, mean_p, value=-1.0)
        a = cov / var
        b = torch.addcmul(mean_p, a, mean_i, value=-1.0)
        return a, b
    i0, i1, i2 = guide[:, 0:1], guide[:, 1:2], guide[:, 2:3]
    products = (i0 * i0, i0 * i1, i0 * i2, i1 * i1, i1 * i2, i2 * i2, src, i0 * src, i1 * src, i2 * src)
    means = box_means((guide, *products), radius, border)
    mu, (e00, e01, e02, e11, e12, e22, mean_p, e0p, e1p, e2p) = means[0], means[1:]
    mu0, mu1, mu2 = mu[:, 0:1], mu[:, 1:2], mu[:, 2:3]
    s00 = torch.addcmul(e00, mu0, mu0, value=-1.0).clamp_(min=0.0).add_(eps)
    s01 = torch.addcmul(e01, mu0, mu1, value=-1.0)
    s02 = torch.addcmul(e02, mu0, mu2, value=-1.0)
    s11 = torch.addcmul(e11, mu1, mu1, value=-1.0).add_(eps)
    s12 = torch.addcmul(e12, mu1, mu2, value=-1.0)
    s22 = torch.addcmul(e22, mu2, mu2, value=-1.0).add_(eps)
    v0 = torch.addcmul(e0p, mu0, mean_p, value=-1.0)
    v1 = torch.addcmul(e1p, mu1, mean_p, value=-1.0)
    v2 = torch.addcmul(e2p, mu2, mean_p, value=-1.0)
    # Solve (Σ + εU) a = v by an LDLᵀ factorisation of the SPD 3x3 matrix. Unlike the cofactor (Cramer)
    # inverse, whose terms cancel for strongly correlated RGB channels (~3e-5 error in float32 on photos),
    # LDLᵀ is backward stable (float32 error at 4096²: see guided_filter's notes).
    # The pivots s00, d1, d2 of Σ + εU are >= ε in exact arithmetic; in float32 rounding can take ε away
    # (ε below the ulp of Σ): a singular Σ, e.g. a gray image given as an RGB guide, then gave pivots of
    # 0 or below, hence 0/0 (NaN on every pixel). Clamping them at ε changes no exact result.
    l10 = s01 / s00
    l20 = s02 / s00
    d1 = _at_least(torch.addcmul(s11, l10, s01, value=-1.0), eps)
    t = torch.addcmul(s12, l20, s01, value=-1.0)
    l21 = t / d1
    d2 = _at_least(s22 - l20 * s02 - l21 * t, eps)
    y1 = torch.addcmul(v1, l10, v0, value=-1.0)
    y2 = v2 - l20 * v0 - l21 * y1
    a2 = y2 / d2
    a1 = torch.addcmul(y1 / d1, l21, a2, value=-1.0)
    a0 = v0 / s00 - l10 * a1 - l20 * a2
    b = mean_p - a0 * mu0 - a1 * mu1 - a2 * mu2
    return torch.cat((a0, a1, a2), dim=1), b


def _lerp_axis(x: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    """Linear resize of axis ``dim`` of ``x`` to ``size`` (``align_corners=False``, as F.interpolate)."""
    n = x.shape[dim]
    pos = (torch.arange(size, dtype=x.dtype, device=x.device) + 0.5) * (n / size) - 0.5
    pos = pos.clamp(min=0.0)
    lo = pos.floor().long().clamp(max=n - 1)
    hi = (lo + 1).clamp(max=n - 1)
    shape = [1] * x.ndim
    shape[dim] = size
    weight = (pos - lo).to(x.dtype).reshape(shape)
    return torch.lerp(x.index_select(dim, lo), x.index_select(dim, hi), weight)


def _upsample_bilinear(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear upsampling of (B, C, h, w) to (height, width), ``align_corners=False``.

    F.interpolate's bilinear backward has no deterministic CUDA kernel (it raises on CUDA under
    ``torch.use_deterministic_algorithms(True)``); in that mode the same interpolation is done per axis with
    ``index_select`` (deterministic backward) and ``lerp``.
    """
    if not torch.are_deterministic_algorithms_enabled():
        return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
    return _lerp_axis(_lerp_axis(x, height, -2), width, -1)


def _numba_forward_applies(guide: torch.Tensor, src: torch.Tensor, eps: float | torch.Tensor) -> bool:
    """Return True when the inference-only numba forward may run (see :func:`guided_filter`)."""
    if not (NUMBA_FORWARD and _box._HAVE_NUMBA and _box.CPU_IMPL == "numba"):
        return False
    if type(guide) is not torch.Tensor or type(src) is not torch.Tensor:  # subclasses, wrappers
        return False
    if src.device.type != "cpu" or src.dtype != torch.float32 or guide.dtype != torch.float32:
        return False
    if isinstance(eps, torch.Tensor) and eps.device.type != "cpu":
        return False
    if torch.is_grad_enabled() and (
        guide.requires_grad or src.requires_grad or (isinstance(eps, torch.Tensor) and eps.requires_grad)
    ):
        return False
    return not torch.compiler.is_compiling()


def _numba_forward(
    guide: torch.Tensor,
    src: torch.Tensor,
    radius: int,
    eps: float | torch.Tensor,
    subsample: int,
    border: Border,
) -> torch.Tensor | None:
    """Forward through :func:`maskrefine.filters.guided_filter` (fused numba kernels, float64 sums).

    (B, C, H, W) src -> (B·C, H, W) planes, the guide repeated per channel: gray (B·C, H, W), colour
    (B·C, H, W, 3) channels-last. Zero-copy for a contiguous single-channel src and gray guide. Returns
    None (the caller then runs the torch path) when the NumPy API refuses the data: NaN/inf in the inputs
    (the torch path propagates them instead of raising) or a tensor eps <= 0.
    """
    from maskrefine.filters import guided_filter as np_guided_filter

    batch, channels, height, width = src.shape
    try:
        src_np = src.detach().contiguous().reshape(batch * channels, height, width).numpy()
        g = guide.detach()
        if guide.shape[1] == 1:
            g = g.expand(batch, channels, height, width).reshape(batch * channels, height, width)
        else:
            g = g.permute(0, 2, 3, 1)[:, None].expand(batch, channels, height, width, 3)
            g = g.reshape(batch * channels, height, width, 3)
        guide_np = g.contiguous().numpy()
    except RuntimeError:  # e.g. tensors under a functorch transform: no NumPy view
        return None
    out = torch.empty((batch * channels, height, width), dtype=torch.float32)
    out_np = out.numpy()
    try:
        if not isinstance(eps, torch.Tensor):
            np_guided_filter(guide_np, src_np, radius, eps, out=out_np, subsample=subsample, border=border)
        else:
            values = eps.detach().reshape(-1).tolist()
            if len(values) == 1 or all(v == values[0] for v in values):
                np_guided_filter(
                    guide_np, src_np, radius, values[0], out=out_np, subsample=subsample, border=border
                )
            else:  # one eps per image: one call per image (its C planes)
                for b, value in enumerate(values):
                    sl = slice(b * channels, (b + 1) * channels)
                    np_guided_filter(
                        guide_np[sl],
                        src_np[sl],
                        radius,
                        value,
                        out=out_np[sl],
                        subsample=subsample,
                        border=border,
                    )
    except ValueError:
        return None
    return out.reshape(batch, channels, height, width)


def guided_filter(
    guide: torch.Tensor,
    src: torch.Tensor,
    radius: int = 9,
    eps: float | torch.Tensor = 1e-3,
    *,
    subsample: int = 1,
    border: Border = "truncated",
) -> torch.Tensor:
    r"""Guided filter (He, Sun, Tang, TPAMI 2013) of ``src`` with ``guide``, differentiable in both.

    Parameters
    ----------
    guide : Tensor, shape (B, 1, H, W) or (B, 3, H, W), floating
        Guide image in [0, 1]: gray (1 channel) or colour (3 channels, full 3x3 covariance).
    src : Tensor, shape (B, C, H, W), floating
        Image(s) to filter, e.g. soft masks; every channel is filtered with the same guide.
    radius : int, default 9
        Window radius r >= 0 (window (2r+1)x(2r+1)). With ``subsample=s`` the low-res radius is ``r // s``.
    eps : float or Tensor of shape () or (B,), default 1e-3
        Regularisation ε relative to [0, 1] intensities: a float of at least 1e-12, or a floating tensor
        (one value for all images, or one per image; its values are not checked, which would synchronise
        with the device). Put a tensor on the device of the inputs: a CPU tensor with CUDA inputs costs a
        blocking host-to-device copy.
    subsample : int, default 1
        Fast guided filter (He & Sun 2015) factor s: the coefficients are computed on
        ``x[..., 0:h*s:s, 0:w*s:s]`` (``h = H // s``) and their box means are upsampled bilinearly
        (``align_corners=False``) to (H, W). 1 = exact filter.
    border : {"truncated", "reflect"}, default "truncated"
        ``"truncated"``: the window is cut at the border and divided by its true pixel count (the paper's
        cumsum filter). ``"reflect"``: OpenCV ``BORDER_REFLECT`` padding, divided by (2r+1)².

    Returns
    -------
    Tensor, shape (B, C, H, W), dtype of ``src``, on ``src``'s device
        ``q = mean(a)·I + mean(b)``. float16/bfloat16 inputs are computed in float32 and cast back.

    Raises
    ------
    TypeError
        ``guide``/``src`` not tensors or not floating point, ``radius``/``subsample`` not integers,
        ``eps`` of the wrong type.
    ValueError
        Not 4-D, guide channels not 1 or 3, batch or H/W mismatch, an empty batch (B = 0) or ``src``
        without channels (C = 0), different devices, ``radius < 0``, ``subsample < 1``, an image
        smaller than the window (as in the NumPy API: H, W >= 2r+1 and, with ``subsample=s``,
        H//s, W//s >= 2(r//s)+1, in both border modes), ``eps`` not finite or below 1e-12 (float) or
        of a wrong shape (tensor), unknown ``border``.

    Notes
    -----
    Gray guide I: ``a = cov(I, p) / (var(I) + ε)``, ``b = p̄ − a·Ī``; colour guide: ``a = (Σ + εU)⁻¹
    cov(I, p)`` (per-pixel LDLᵀ solve of the SPD 3x3 system, backward stable in float32, unlike the
    cofactor inverse whose terms cancel for strongly correlated RGB channels), ``b = p̄ − aᵀĪ``; bars are
    box means. The guide is shifted by its per-image mean before the moments are taken (the filter is
    invariant to this; it reduces cancellation in ``E[I²] − Ī²``), and box sums never use a whole-image
    cumulative sum, so the float32 error does not grow with the image size. Measured against the float64
    oracle at 4096², r = 9, ε = 1e-3 on photo-like images: the numba fast path 3.4e-8 gray / 3.7e-8
    colour; the autograd path with the CPU running-sum box kernel 1.8e-7 / 3.7e-7; with the pooled
    window sums of the CUDA code 7.2e-7 / 1.2e-6, with the tiled prefix sums 7.2e-7 / 1.5e-6. The
    autograd path's float32 error grows as ε shrinks (about 4e-9/ε on photos, 4e-5 at ε = 1e-4; up to
    1.1e-4 seen with colour guides) through the cancellation in ``E[I²] − Ī²``; below a float ε of 1e-6
    it computes in float64 (the result keeps ``src``'s dtype), as the numba kernels do. A tensor ε is not
    inspected: use float64 inputs there.

    **Which code path runs.** Two implementations give the same values within float32 rounding: the fast
    path differs from the float64 result by ~1e-7, the autograd path computed in float32 by up to ~2e-5
    (its window variances are float32 differences; 1.3e-5 seen for radius 4, subsample 5; the tests
    allow 2e-5):

    * *numba fast path* (inference only): when the inputs are float32 CPU tensors, autograd is off or none
      of ``guide``, ``src``, ``eps`` requires grad (``torch.no_grad()``, ``torch.inference_mode()``, or
      plain tensors), the box kernel is ``"numba"`` and :data:`NUMBA_FORWARD` is True, the call goes
      through the fused kernels of :func:`maskrefine.filters.guided_filter` (float64 running sums, one
      pass for the moments and one for the coefficient means; ~3-4x faster than the torch path on CPU).
      ``src`` is viewed as ``B·C`` planes (zero-copy for a contiguous single-channel ``src`` and a gray
      guide; the guide is repeated per ``src`` channel, a colour guide made channels-last); a per-image
      ``eps`` tensor runs one call per image when its values differ. The result is a new contiguous
      tensor that does not require grad. Max difference to the float64 torch path ~1e-7 (≤ 1e-6 tested,
      colour, fast variant and reflect included). If the NumPy API refuses the data (NaN/inf in the
      inputs, a tensor ``eps`` <= 0), the torch path runs instead, so those inputs behave as below.
    * *autograd (torch) path*: everything else — inputs that require grad, float64/half dtypes, CUDA,
      subclasses, ``torch.compile`` tracing. ``torch.func`` transforms (``grad``, ``vmap``, ``jacrev``) and
      forward-mode AD are not supported (the box sums' ``autograd.Function`` has no ``setup_context``
      or ``jvp``; a dual tensor is refused). Box sums by :mod:`maskrefine.torch._box` (numba running
      sums on CPU float32/float64; otherwise window sums by ``avg_pool2d`` on a GPU for windows of up to
      129 px, tiled prefix sums for wider windows and on the CPU), elementwise ops in torch.

    Under ``torch.use_deterministic_algorithms(True)`` the tiled box sums use a scan instead of
    ``torch.cumsum`` and the fast variant's upsampling uses ``index_select`` + ``lerp`` instead of
    ``F.interpolate``: neither has a deterministic CUDA kernel (they raise on CUDA in that mode). Same
    values within rounding.

    Validation uses shapes, dtypes and devices only. Values are **not** checked (no finite-value or
    ``eps > 0`` check on tensors): that would synchronise the host with the device. A NaN/inf in the
    inputs reaches every output pixel whose window reaches it, and with the CPU running-sum kernels (fast
    path and autograd) it can reach the whole output.

    Examples
    --------
    >>> import torch
    >>> from maskrefine.torch import guided_filter
    >>> guide = torch.rand(2, 1, 32, 32)
    >>> mask = torch.rand(2, 1, 32, 32)
    >>> guided_filter(guide, mask, radius=2, eps=1e-2).shape
    torch.Size([2, 1, 32, 32])
    """
    guide, src, radius, eps, s, border, dtype = _validate(guide, src, radius, eps, subsample, border)
    if not torch.compiler.is_compiling() and any(
        isinstance(t, torch.Tensor) and torch.autograd.forward_ad.unpack_dual(t).tangent is not None
        for t in (guide, src, eps)
    ):
        raise NotImplementedError(
            "guided_filter does not support forward-mode AD (a dual tensor was given); use reverse mode"
        )
    if _numba_forward_applies(guide, src, eps):
        out = _numba_forward(guide, src, radius, eps, s, border)
        if out is not None:
            return out
    height, width = src.shape[-2:]
    guide_c = guide.to(dtype)
    src_c = src.to(dtype)
    # Shift the guide by its per-image mean (detached: the output does not depend on the shift); this
    # reduces cancellation in E[I²] − Ī². The mean of the finite values: one NaN/inf must not reach
    # every pixel through the shift. Summed in the standard layout: a reduction follows the memory order,
    # and a channels_last or transposed guide would otherwise get another rounding of the shift, hence a
    # result that differs in the last bits from the same values stored contiguously.
    detached = guide_c.detach().contiguous()
    finite = torch.isfinite(detached)
    total = torch.where(finite, detached, 0).sum(dim=(-2, -1), keepdim=True)
    guide_c = guide_c - total / finite.sum(dim=(-2, -1), keepdim=True).clamp(min=1)
    if s == 1:
        guide_lo, src_lo, r_lo = guide_c, src_c, radius
    else:
        h, w = height // s, width // s
        guide_lo = guide_c[..., 0 : h * s : s, 0 : w * s : s]
        src_lo = src_c[..., 0 : h * s : s, 0 : w * s : s]
        r_lo = radius // s
    a, b = _coefficients(guide_lo, src_lo, r_lo, eps, border)
    mean_a, mean_b = box_means((a, b), r_lo, border)
    if s > 1:
        mean_a = _upsample_bilinear(mean_a, height, width)
        mean_b = _upsample_bilinear(mean_b, height, width)
    if guide.shape[1] == 1:
        q = torch.addcmul(mean_b, mean_a, guide_c)
    else:
        a0, a1, a2 = mean_a.split(src.shape[1], dim=1)
        q = a0 * guide_c[:, 0:1] + a1 * guide_c[:, 1:2] + a2 * guide_c[:, 2:3] + mean_b
    return q.to(src.dtype)


def box_mean(x: torch.Tensor, radius: int, border: Border = "truncated") -> torch.Tensor:
    """Differentiable box mean over the last two axes of a floating tensor ``(..., H, W)``.

    Parameters
    ----------
    x : Tensor, shape (..., H, W), floating
        Values to average; leading axes are independent planes.
    radius : int
        Window radius r >= 0.
    border : {"truncated", "reflect"}, default "truncated"
        As in :func:`guided_filter`.

    Returns
    -------
    Tensor, same shape and dtype as ``x`` (half types computed in float32).

    Raises
    ------
    TypeError
        ``x`` not a floating tensor, ``radius`` not an integer.
    ValueError
        Fewer than 2 axes, an empty plane (H or W = 0), ``radius < 0``, an unknown ``border``.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"`x` must be a torch.Tensor; got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"`x` must be a floating tensor; got {x.dtype}")
    if x.ndim < 2 or x.shape[-1] < 1 or x.shape[-2] < 1:
        raise ValueError(f"`x` must have shape (..., H, W) with H, W >= 1; got {tuple(x.shape)}")
    radius = check_radius(radius)
    border = _check_border(border)
    dtype = _compute_dtype(x.dtype)
    return box_mean_planes(x.to(dtype), radius, border).to(x.dtype)


class GuidedFilter(nn.Module):
    """:func:`guided_filter` as an ``nn.Module`` (no parameters).

    Parameters
    ----------
    radius : int, default 9
    eps : float or Tensor (0-D or (B,)), default 1e-3
    subsample : int, default 1
    border : {"truncated", "reflect"}, default "truncated"
        See :func:`guided_filter`.

    Examples
    --------
    >>> import torch
    >>> from maskrefine.torch import GuidedFilter
    >>> GuidedFilter(radius=2)(torch.rand(1, 3, 16, 16), torch.rand(1, 2, 16, 16)).shape
    torch.Size([1, 2, 16, 16])
    """

    eps: float | torch.Tensor

    def __init__(
        self,
        radius: int = 9,
        eps: float | torch.Tensor = 1e-3,
        *,
        subsample: int = 1,
        border: Border = "truncated",
    ) -> None:
        super().__init__()
        self.radius = check_radius(radius)
        if not isinstance(eps, torch.Tensor):
            check_eps(eps)  # a bad float is named here, not at the first forward call
        elif not eps.is_floating_point():  # a tensor's dtype and rank (not its values: no device sync)
            raise TypeError(f"`eps` tensor must be floating point; got dtype {eps.dtype}")
        elif eps.ndim > 1:
            raise ValueError(
                "`eps` tensor must be 0-D or have shape (B,) (one value per image); "
                f"got shape {tuple(eps.shape)}"
            )
        if isinstance(eps, torch.Tensor) and not isinstance(eps, nn.Parameter):
            # a buffer: moved by .to()/.cuda() with the module (no host-to-device copy per call) and saved
            # in its state_dict; a Parameter registers itself
            self.register_buffer("eps", eps)
        else:
            self.eps = eps
        self.subsample = check_subsample(subsample)
        self.border = _check_border(border)

    def forward(self, guide: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
        """Filter ``src`` (B, C, H, W) with ``guide`` (B, 1|3, H, W).

        Parameters
        ----------
        guide : Tensor, shape (B, 1, H, W) or (B, 3, H, W), floating
            Guide image in [0, 1], gray or colour.
        src : Tensor, shape (B, C, H, W), floating
            Image(s) to filter; every channel with the same guide.

        Returns
        -------
        Tensor, shape (B, C, H, W), dtype of ``src``
            :func:`guided_filter` of ``src`` with this module's settings.

        Raises
        ------
        TypeError, ValueError
            As :func:`guided_filter` (e.g. mismatched shapes, an image smaller than the window, an ``eps``
            tensor whose shape is neither () nor (B,)).
        """
        return guided_filter(guide, src, self.radius, self.eps, subsample=self.subsample, border=self.border)

    if TYPE_CHECKING:  # for type checkers only: nn.Module.__call__ (hooks, then forward) is typed Any

        def __call__(self, guide: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
            """Filter ``src`` with ``guide``: :meth:`forward`, through ``nn.Module``'s hooks."""
            ...

    def extra_repr(self) -> str:
        """Return the settings shown in the module's ``repr``.

        Returns
        -------
        str
            ``"radius=..., eps=..., subsample=..., border='...'"``.
        """
        return f"radius={self.radius}, eps={self.eps}, subsample={self.subsample}, border={self.border!r}"
