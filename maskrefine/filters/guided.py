"""Public NumPy API of the guided filter: validate, pick a backend, allocate ``out``, call the kernel."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from maskrefine._checks import (
    as_float_array,
    check_choice,
    check_eps,
    check_max_abs,
    check_radius,
    check_subsample,
    check_unit_interval,
    check_window_fits,
)

__all__ = ["guided_filter", "fast_guided_filter", "BORDERS", "BACKENDS"]

#: Border modes of the box means (see :mod:`maskrefine.filters.reference`).
BORDERS: tuple[str, ...] = ("truncated", "reflect")
#: Backends of :func:`guided_filter`.
BACKENDS: tuple[str, ...] = ("numba", "reference")

# An image is split into row bands only when each band gets at least this many pixels (and 96 rows):
# below that, handing work to a thread costs more than it saves on a loaded 2-core machine.
_MIN_PIXELS_PER_BAND = 300_000
_MIN_ROWS_PER_BAND = 96


def guided_filter(
    guide: npt.NDArray[Any],
    src: npt.NDArray[Any],
    radius: int = 9,
    eps: float = 1e-3,
    *,
    subsample: int = 1,
    border: Literal["truncated", "reflect"] = "truncated",
    out: np.ndarray | None = None,
    backend: Literal["numba", "reference"] = "numba",
) -> npt.NDArray[np.float32]:
    r"""Guided filter (He, Sun & Tang, TPAMI 2013) of ``src`` with ``guide``; gray or colour guide.

    Parameters
    ----------
    guide : ndarray of float, shape (H, W), (H, W, 3), (N, H, W) or (N, H, W, 3)
        Guide image(s) in [0, 1]: gray (e.g. :func:`maskrefine.guide.make_guide`) or RGB colour.
        Batched (leading N) exactly when ``src`` is batched.
    src : ndarray of float, shape (H, W) or (N, H, W)
        Image(s) to filter, e.g. soft masks in [0, 1].
    radius : int, default 9
        Window radius r; the window is (2r+1)×(2r+1). The paper uses 9.
    eps : float, default 1e-3
        Regularisation ε relative to [0, 1] intensities, at least 1e-12 (a smaller ε is below the rounding
        noise of the window variances and gives NaN/inf on flat regions). The paper uses 1e-3.
    subsample : int, default 1
        Fast guided filter (He & Sun 2015) factor s: coefficients computed on the nearest-subsampled
        pixels ``[0::s, 0::s]`` (first ``H // s`` rows, ``W // s`` columns) with radius ``r // s``, their
        box means upsampled bilinearly (``align_corners=False``) and applied to the full-size guide.
        1 is the exact filter.
    border : {"truncated", "reflect"}, default "truncated"
        ``"truncated"``: windows cut at the border, divided by their true pixel count (the paper's
        cumsum box filter). ``"reflect"``: OpenCV ``BORDER_REFLECT`` / (2r+1)², as
        ``cv2.ximgproc.guidedFilter``.
    out : ndarray of float32, shape of ``src``, C-contiguous, optional
        Buffer for the result (reused to avoid an image-sized allocation per call); must not overlap
        the inputs.
    backend : {"numba", "reference"}, default "numba"
        ``"numba"``: cached, GIL-free kernels with float64 running sums (max error vs the oracle
        ~1e-7; 3.3e-8 measured at 4096²), run on ``numba.get_num_threads()`` threads (row bands of
        one image, or ranges of a batch). ``"reference"``: the float64 NumPy oracle
        (:mod:`maskrefine.filters.reference`), slow, for checking.

    Returns
    -------
    ndarray of float32, shape of ``src``
        ``q = ā·I + b̄`` (``out`` itself when given). Not clipped: it may leave [0, 1] slightly.

    Raises
    ------
    TypeError
        Non-array input, integer or bool dtype (convert, e.g. ``x.astype(np.float32) / 255``), non-integer
        radius/subsample, ``out`` not a float32 array.
    ValueError
        Wrong number of dimensions, mismatched shapes, NaN/inf, a guide with values outside [0, 1] (e.g.
        a 0..255 guide, for which ``eps`` would mean something else; values within 1e-6 of the range
        are accepted), ``src`` values beyond ±1e30 (the float32 result would overflow), radius < 0,
        eps < 1e-12, subsample < 1, an unknown border/backend, an image smaller than the window (H and W
        must be >= 2r+1, and with ``subsample=s`` also ``H // s, W // s >= 2 (r // s) + 1``), a bad or
        overlapping ``out``.

    Notes
    -----
    Dtype rules: floating inputs of any precision and byte order are accepted (integers are refused
    because their scale is ambiguous); native float32 and float64 are read as they are (no copy), float16
    is read as float32, wider floats as float64 and big-endian data as the native float of its size (a
    layout or byte order never changes the result); every sum is accumulated in float64; the result is
    always float32. Inputs are never modified.

    Gray guide: ``a = cov(I, p) / (var(I) + ε)``, ``b = p̄ − a·Ī``, ``q = ā·I + b̄``. Colour guide:
    ``a = (Σ + εU)⁻¹ cov(I, p)`` per pixel (LDLᵀ solve of the symmetric 3×3 system), ``b = p̄ − aᵀĪ``,
    ``q = āᵀI + b̄``. The minimum size is the window in both border modes (docs/filters.md requires
    H, W ≥ 2r+1 and the torch backend's cumsum box filter needs it).

    Examples
    --------
    >>> import numpy as np
    >>> from maskrefine.filters import guided_filter
    >>> guide = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    >>> mask = np.full((64, 64), 0.25, dtype=np.float32)
    >>> q = guided_filter(guide, mask, radius=4, eps=1e-3)
    >>> q.dtype, q.shape, bool(np.allclose(q, 0.25, atol=1e-6))
    (dtype('float32'), (64, 64), True)
    """
    radius = check_radius(radius)
    eps = check_eps(eps)
    subsample = check_subsample(subsample)
    border_name = check_choice(border, BORDERS, "border")
    backend_name = check_choice(backend, BACKENDS, "backend")
    guide_arr, src_arr, color = _check_images(guide, src)
    height, width = src_arr.shape[-2:]
    check_window_fits(height, width, radius, subsample)
    out = _check_out(out, src_arr, guide_arr, (guide, src))

    if backend_name == "reference":
        from maskrefine.filters import reference

        if src_arr.ndim == 2:
            out[...] = reference.guided_filter(
                guide_arr, src_arr, radius, eps, subsample=subsample, border=border
            )
        else:
            for n in range(src_arr.shape[0]):
                out[n] = reference.guided_filter(
                    guide_arr[n], src_arr[n], radius, eps, subsample=subsample, border=border
                )
        return out

    _run_numba(guide_arr, src_arr, out, radius, eps, subsample, border_name == "reflect", color)
    return out


def fast_guided_filter(
    guide: npt.NDArray[Any],
    src: npt.NDArray[Any],
    radius: int = 9,
    eps: float = 1e-3,
    *,
    subsample: int = 4,
    border: Literal["truncated", "reflect"] = "truncated",
    out: np.ndarray | None = None,
    backend: Literal["numba", "reference"] = "numba",
) -> npt.NDArray[np.float32]:
    """Fast guided filter (He & Sun 2015): :func:`guided_filter` with ``subsample=4`` by default.

    See :func:`guided_filter` for the sampling convention, the dtype rules and the formulas.

    Parameters
    ----------
    guide : ndarray of float, shape (H, W), (H, W, 3), (N, H, W) or (N, H, W, 3)
        Guide image(s) in [0, 1], gray or RGB colour; batched (leading N) exactly when ``src`` is.
    src : ndarray of float, shape (H, W) or (N, H, W)
        Image(s) to filter, e.g. soft masks in [0, 1].
    radius : int, default 9
        Window radius r at full resolution; the coefficients use radius ``r // subsample``.
    eps : float, default 1e-3
        Regularisation ε relative to [0, 1] intensities, at least 1e-12.
    subsample : int, default 4
        Subsampling factor s >= 1 (1 is the exact filter).
    border : {"truncated", "reflect"}, default "truncated"
        Border mode of the box means (see :func:`guided_filter`).
    out : ndarray of float32, shape of ``src``, C-contiguous, optional
        Buffer for the result; must not overlap the inputs.
    backend : {"numba", "reference"}, default "numba"
        Kernels to run (see :func:`guided_filter`).

    Returns
    -------
    ndarray of float32, shape of ``src``
        The filtered image(s) (``out`` itself when given); not clipped.

    Raises
    ------
    TypeError, ValueError
        As :func:`guided_filter`; in particular an image smaller than the window (H, W >= 2r+1 and
        ``H // s, W // s >= 2 (r // s) + 1``).

    Examples
    --------
    >>> import numpy as np
    >>> from maskrefine.filters import fast_guided_filter
    >>> guide = np.zeros((64, 64), dtype=np.float32)
    >>> guide[:, 32:] = 1.0
    >>> coarse = np.zeros((64, 64), dtype=np.float32)
    >>> coarse[:, 28:] = 1.0  # a mask edge 4 pixels off the image edge
    >>> q = fast_guided_filter(guide, coarse, radius=8, eps=1e-4)
    >>> bool(q[:, :24].max() < 0.5 < q[:, 36:].min())
    True
    """
    return guided_filter(
        guide, src, radius, eps, subsample=subsample, border=border, out=out, backend=backend
    )


def guided_filter_trusted(
    guide: np.ndarray,
    src: np.ndarray,
    radius: int,
    eps: float,
    *,
    subsample: int = 1,
    reflect: bool = False,
    what: str = "`src` images",
) -> npt.NDArray[np.float32]:
    """Apply :func:`guided_filter` (numba backend) for callers that have validated the inputs (internal).

    The caller guarantees float arrays of matching shapes ((H, W) or (H, W, 3) guide, (H, W) src), finite,
    an int radius >= 0, eps > 0 and an int subsample >= 1 (``maskrefine.refiners.refine`` does). No
    NaN/inf scan, no shape diagnosis; only the window size is still checked, because the kernels index
    out of bounds on an image smaller than the window (``what`` names the images in that message).
    """
    height, width = src.shape[-2:]
    check_window_fits(height, width, radius, subsample, what)
    guide_arr = _as_kernel_array(guide)
    src_arr = _as_kernel_array(src)
    out = np.empty(src_arr.shape, dtype=np.float32)
    _run_numba(guide_arr, src_arr, out, radius, eps, subsample, reflect, guide_arr.ndim == src_arr.ndim + 1)
    return out


# -------------------------------------------------------------------------------------------- checks
def _as_kernel_array(x: np.ndarray) -> np.ndarray:
    """Native float32/float64 C-contiguous array (no copy when ``x`` already is one).

    Other floats are converted without losing precision: float16 to float32, wider floats (long double)
    to float64, big-endian ones to the native float of their size. (A big-endian ``>f8`` is *not* in
    ``(np.float32, np.float64)``: comparing dtypes compares byte orders.)
    """
    if x.dtype != np.float32 and x.dtype != np.float64:
        x = x.astype(np.float64 if x.dtype.itemsize >= 8 else np.float32)
    return x if x.flags.c_contiguous else x.copy(order="C")  # ascontiguousarray makes a 0-d array 1-d


def _check_finite(x: np.ndarray, name: str) -> None:
    """NaN/inf check of a kernel array (:func:`_as_kernel_array`) without an image-sized temporary.

    A numba scan; NumPy only to count on failure.
    """
    from maskrefine.filters._numba_kernels import all_finite

    flat = x.reshape(-1)
    if flat.dtype == np.float32:
        ok = all_finite(flat.view(np.uint32), np.uint32(0x7F800000))
    else:
        ok = all_finite(flat.view(np.uint64), np.uint64(0x7FF0000000000000))
    if not ok:
        bad = int(x.size - np.count_nonzero(np.isfinite(x)))
        raise ValueError(f"`{name}` contains {bad} NaN or infinite value(s); all values must be finite")


def _check_images(guide: object, src: object) -> tuple[np.ndarray, np.ndarray, bool]:
    # converted first (no copy for native float32/float64 C-contiguous data): the scans below then read
    # one native array, and the kernels get exactly the values that were checked
    guide_arr = _as_kernel_array(as_float_array(guide, "guide", finite=False))
    src_arr = _as_kernel_array(as_float_array(src, "src", finite=False))
    _check_finite(guide_arr, "guide")
    _check_finite(src_arr, "src")
    check_max_abs(src_arr, "src")
    if guide_arr.size:
        check_unit_interval(
            guide_arr, "guide", hint=". Divide an 8-bit guide by 255 (eps is relative to [0, 1])."
        )
    if src_arr.ndim not in (2, 3):
        raise ValueError(
            f"`src` must be 2-D (H, W) or 3-D (N, H, W); got shape {src_arr.shape}"
            + (
                ". Squeeze the channel axis."
                if src_arr.ndim == 4 and 1 in (src_arr.shape[1], src_arr.shape[-1])
                else ""
            )
        )
    batched = src_arr.ndim == 3
    layout = "(N, H, W) or (N, H, W, 3)" if batched else "(H, W) or (H, W, 3)"
    if guide_arr.ndim == src_arr.ndim:
        color = False
    elif guide_arr.ndim == src_arr.ndim + 1 and guide_arr.shape[-1] == 3:
        color = True
    else:
        raise ValueError(
            f"`guide` must have shape {layout} to go with `src` of shape {src_arr.shape}; "
            f"got shape {guide_arr.shape}"
            + (
                " (a colour guide needs exactly 3 channels, last)"
                if guide_arr.ndim == src_arr.ndim + 1
                else ""
            )
        )
    spatial = guide_arr.shape[: src_arr.ndim]
    if spatial != src_arr.shape:
        raise ValueError(
            f"`guide` and `src` must have the same {'(N, H, W)' if batched else '(H, W)'}; "
            f"got guide {guide_arr.shape} and src {src_arr.shape}"
        )
    return guide_arr, src_arr, color


def _check_out(out: object, src: np.ndarray, guide: np.ndarray, given: tuple[object, object]) -> np.ndarray:
    """``out``, checked (or allocated); ``given`` are the caller's guide and src before any conversion."""
    if out is None:
        return np.empty(src.shape, dtype=np.float32)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"`out` must be a NumPy float32 array or None; got {type(out).__name__}")
    if out.dtype != np.float32:
        raise TypeError(f"`out` must have dtype float32; got {out.dtype}")
    if out.shape != src.shape:
        raise ValueError(f"`out` must have the shape of `src` {src.shape}; got {out.shape}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(
            "`out` must be a writeable C-contiguous array; got a non-contiguous or read-only one"
        )
    # the caller's arrays too: a converted copy is read, but writing `out` would still change an input
    inputs = [src, guide, *(a for a in given if isinstance(a, np.ndarray))]
    if any(np.shares_memory(out, a) for a in inputs):
        raise ValueError("`out` must not overlap `guide` or `src` (the filter reads them while writing out)")
    return out


# ----------------------------------------------------------------------------------------- dispatch
_POOL: ThreadPoolExecutor | None = None
_POOL_PID = -1  # a forked child (e.g. a multiprocessing worker) must not reuse its parent's dead threads
_POOL_LOCK = threading.Lock()


def _num_threads() -> int:
    """Worker count: ``NUMBA_NUM_THREADS`` / ``numba.set_num_threads`` (defaults to the CPU count)."""
    import numba

    from maskrefine._jit import launch_numba_threads

    launch_numba_threads()  # the first call: keeps torch's thread count as it was
    return max(1, int(numba.get_num_threads()))


def _run_parallel(tasks: list[Callable[[], None]]) -> None:
    """Run independent GIL-free kernel calls: the first in this thread, the rest on a shared pool."""
    global _POOL, _POOL_PID
    if len(tasks) == 1:
        tasks[0]()
        return
    with _POOL_LOCK:
        if _POOL is None or _POOL_PID != os.getpid() or _POOL._max_workers < len(tasks) - 1:  # noqa: SLF001
            _POOL_PID = os.getpid()
            _POOL = ThreadPoolExecutor(
                max_workers=max(len(tasks) - 1, _num_threads() - 1), thread_name_prefix="maskrefine-gf"
            )
        pool = _POOL
    futures = [pool.submit(task) for task in tasks[1:]]
    tasks[0]()
    for future in futures:
        future.result()


def _band_count(rows: int, cols: int, threads: int) -> int:
    return max(1, min(threads, rows // _MIN_ROWS_PER_BAND, rows * cols // _MIN_PIXELS_PER_BAND))


def _split(n: int, parts: int) -> list[tuple[int, int]]:
    parts = max(1, min(parts, n))
    return [(i * n // parts, (i + 1) * n // parts) for i in range(parts)]


def _scratch(
    w: int, r: int, color: bool, coef_dtype: type[np.floating[Any]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Row-sized work arrays of one ``gray_rows`` / ``color_rows`` call (see their docstrings).

    Allocated here, not in the kernel: each ``np.empty`` / ``np.zeros`` signature a kernel uses is one more
    numba function to compile on the first run. ``coef_dtype`` is that of the coefficient ring
    (:func:`_coef_dtype`).
    """
    size = np.dtype(coef_dtype).itemsize
    if not color:  # 4 products, 2 coefficients: few planes; padding measured up to 4 % slower here
        return (
            np.empty((4, w + 2 * r)),
            np.empty((2, w + 2 * r)),
            np.empty((4, w)),
            np.empty((2 * r + 3, 2, w), dtype=coef_dtype),
            np.empty(w),
        )
    return (
        np.empty((13, _row_stride(w + 2 * r, 8))),
        np.empty((4, _row_stride(w + 2 * r, 8))),
        np.empty((13, _row_stride(w, 8))),
        np.empty((2 * r + 3, 4, _row_stride(w, size)), dtype=coef_dtype),
        np.empty(w),
    )


#: Below this ε the coefficients a and b are kept in float64 between the two passes (docs/filters.md §5).
FLOAT64_COEFFICIENTS_BELOW_EPS = 1e-6


def _coef_dtype(eps: float) -> type[np.floating[Any]]:
    """Return the coefficients' dtype between the passes: float32, or float64 for ε < 1e-6.

    |a| reaches 1/(4√ε), and float32 keeps it to |a|·2⁻²⁴: measured up to 3.7e-6 against the float64
    oracle at ε = 1e-6 (7.4e-6 fast variant), 3e-6 at 1e-8 and 4e-4 at 1e-12 (docs/filters.md §5).
    float64 rings cost 2–7 % of the filter's time, so they are used only below 1e-6; the first such call
    compiles one more kernel signature.
    """
    return np.float64 if eps < FLOAT64_COEFFICIENTS_BELOW_EPS else np.float32


def _row_stride(length: int, itemsize: int) -> int:
    """Elements per row of a colour scratch plane: ``length`` or more, an odd number of 64-byte lines.

    The colour kernel streams through up to 17 planes at once. Planes a multiple of 4 KiB apart (rows of
    1024 float64 or 1024 float32) fall into the same L1 cache set and evict each other on every pass (8 to
    14 % of the colour filter at 1024², 10 % at 2048²); an odd number of lines puts consecutive planes into
    different sets. The kernels read only the first ``length`` elements of a row.
    """
    per_line = 64 // itemsize
    lines = -(-length // per_line)
    if lines % 2 == 0:
        lines += 1
    return lines * per_line


def _run_numba(
    guide: np.ndarray,
    src: np.ndarray,
    out: np.ndarray,
    radius: int,
    eps: float,
    subsample: int,
    reflect: bool,
    color: bool,
) -> None:
    from maskrefine._jit import split_first_compile
    from maskrefine.filters import _first_compile
    from maskrefine.filters import _numba_kernels as kernels

    threads = _num_threads()
    height, width = src.shape[-2:]
    s = subsample
    h, w, r = height // s, width // s, radius // s
    ncoef = 4 if color else 2
    fast = s > 1
    coef_dtype = _coef_dtype(eps)
    # a first run: the kernel's helpers are compiled on two cores (one more process, then never again)
    split_first_compile(_first_compile.__name__, _first_compile.split_key(color, np.dtype(coef_dtype).name))
    # one scratch set per band or image range (they run concurrently)
    scratch = partial(_scratch, w, r, color, coef_dtype)
    if src.ndim == 3 and src.shape[0] == 1:  # one image in a batch: split it into row bands instead
        guide, src, out = guide[0], src[0], out[0]
    if src.ndim == 2:
        rows = kernels.color_rows if color else kernels.gray_rows
        coef = np.empty((h, w, ncoef) if fast else (0, 0, ncoef), dtype=coef_dtype)
        bands = _split(h, _band_count(h, w, threads))
        _run_parallel(
            [
                partial(rows, guide, src, out, coef, s, h, w, r, eps, reflect, y0, y1, fast, scratch())
                for y0, y1 in bands
            ]
        )
        if fast:
            guide3 = guide if color else guide[:, :, None]
            bands = _split(height, _band_count(height, width, threads))
            _run_parallel([partial(kernels.upsample_rows, guide3, coef, out, y0, y1) for y0, y1 in bands])
        return
    images = kernels.color_images if color else kernels.gray_images
    n = src.shape[0]
    coef = np.empty((n, h, w, ncoef) if fast else (n, 0, 0, ncoef), dtype=coef_dtype)
    chunks = _split(n, threads)
    _run_parallel(
        [
            partial(images, guide, src, out, coef, s, h, w, r, eps, reflect, n0, n1, fast, scratch())
            for n0, n1 in chunks
        ]
    )
    if fast:
        guide4 = guide if color else guide[..., None]
        _run_parallel([partial(kernels.upsample_images, guide4, coef, out, n0, n1) for n0, n1 in chunks])
