"""Fast bilateral solver (Barron & Poole, ECCV 2016) as used by TokenCut, MOVE, FOUND and the paper repo.

The algorithm is the one of the field's ``bilateral_solver.py`` (docs/filters.md §7): a 5-D (x, y, Y, U, V)
grid built from the 0..255 image, a [1 2 1] blur per grid axis, 10 bistochastisation iterations and a
Jacobi-preconditioned conjugate gradient solve (25 iterations, relative tolerance 1e-5, λ = 256,
preconditioner diagonal clamped at 1e-5) with confidence 0.999 everywhere. YUV is computed with the
reference's own ``np.tensordot`` (:func:`reference_yuv`, :func:`colour_cells`), so pixels on a grid
cell's edge land in the same cell. Two differences, both where the published code fails rather than
where it computes a number:

* grid vertices are found by comparing whole coordinate tuples (:mod:`maskrefine.filters._hashgrid`)
  instead of a base-255 hash, which aliases distinct vertices once a coordinate reaches 254 (the +1
  neighbour of x = 254 is x = 255, which hashes like x = 0 of the next y: images wider or taller than
  254·σ_s = 4064 px at σ_s = 16);
* a vertex whose pixels all have confidence 0 starts the solve at 0 instead of 0/0 = NaN.

The float64 SciPy oracle is :mod:`maskrefine.filters.reference_bilateral`.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import numpy.typing as npt

from maskrefine._checks import (
    MAX_ABS_VALUE,
    MAX_LAM,
    as_float_array,
    as_rgb_unit_image,
    check_choice,
    check_flag,
    check_float_range,
    check_int_range,
    check_max_abs,
)
from maskrefine.baseline_presets import BILATERAL_PRESETS, BilateralPreset
from maskrefine.filters import _bilateral_kernels as kernels

__all__ = ["BilateralPreset", "BILATERAL_PRESETS", "OUTPUTS", "bilateral_solver", "found_binary"]

#: What :func:`bilateral_solver` returns: the solver's soft output, or FOUND's post-processing.
OUTPUTS: tuple[str, ...] = ("soft", "found", "found_multi")


_MIN_SIGMA = 1e-3
#: Largest ``lam / max(confidence)``: the solution depends only on this ratio, and the float64 conjugate
#: gradient stops converging near 1e12 (as for ``lam`` itself, ``maskrefine._checks.MAX_LAM``).
MAX_SMOOTHNESS_RATIO = 1e10
#: Smallest positive ``max(confidence)``: below it ``||S(c·t)||²`` underflows (the solve returned zeros).
MIN_CONFIDENCE = 1e-30

#: The reference code's RGB → YUV matrix (rows Y, U, V; docs/filters.md §7) and the offset added after it.
RGB_TO_YUV = np.array(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float64
)
YUV_OFFSET = np.array([0.0, 128.0, 128.0], np.float64)
#: A 0..255 sample within this of an integer level is that level (8-bit images decoded to [0, 1] floats).
_SNAP = 1e-3
#: The same for float16 images, which store k/255 only to within half a float16 step (up to 0.062 levels).
_SNAP_FLOAT16 = 0.07


def _is_float16(dtype: np.dtype) -> bool:
    """Half precision in either byte order (``np.dtype(">f2") == np.float16`` is False)."""
    return dtype.kind == "f" and dtype.itemsize == 2


#: Values per block of rows in :func:`reference_yuv` and :func:`colour_cells` (float64 temporaries of
#: 2 MiB each).
_ROW_BLOCK_VALUES = 2**18


def _row_blocks(height: int, width: int) -> list[tuple[int, int]]:
    """``(first, end)`` rows of the blocks :func:`reference_yuv` and :func:`colour_cells` convert in turn.

    No block is a single pixel unless the image is: NumPy multiplies a (1, 3) array by the matrix as a
    vector (BLAS gemv), which rounds some sums otherwise than the matrix product (gemm) of the
    reference's one call over the whole image; a last block of one pixel (a one-pixel-wide image) joins
    the block before it.
    """
    step = max(1 if width > 1 else 2, _ROW_BLOCK_VALUES // max(1, 3 * width))
    blocks = [(start, min(start + step, height)) for start in range(0, height, step)]
    if len(blocks) > 1 and (blocks[-1][1] - blocks[-1][0]) * width == 1:
        blocks[-2:] = [(blocks[-2][0], height)]
    return blocks


def _yuv_of_rows(rgb_rows: np.ndarray, snap: float) -> npt.NDArray[np.float64]:
    """(h, W, 3) float64 Y, U, V of a block of rows of an RGB image in [0, 1] (see :func:`reference_yuv`)."""
    # the reference's floor/where/tensordot, in place: the scaled rows, snapped to 8-bit levels, then YUV
    scaled = np.multiply(rgb_rows, 255.0, dtype=np.float64)
    levels = scaled + 0.5
    np.floor(levels, out=levels)
    off = np.subtract(scaled, levels)
    np.abs(off, out=off)
    np.copyto(scaled, levels, where=off < snap)
    yuv = np.tensordot(scaled, RGB_TO_YUV, ([2], [1]))
    yuv += YUV_OFFSET
    return yuv


def reference_yuv(rgb: np.ndarray) -> npt.NDArray[np.float64]:
    """(H, W, 3) float64 Y, U, V of an RGB image in [0, 1], computed as the reference code does.

    The image is taken as ``255·rgb`` with values within 1e-3 of an 8-bit level snapped to it (0.07 for a
    float16 image, which holds k/255 only to within half a float16 step), then converted with
    ``np.tensordot``, as the field's ``bilateral_solver.py`` (``rgb2yuv``) does: BLAS rounds some sums
    differently from a left-to-right formula, and a pixel whose Y, U or V falls on a grid cell's edge (e.g.
    RGB (33, 57, 41), Y = 48) lands in the reference's cell only with the same call. Same NumPy and BLAS
    as the reference, same cells. The reference makes one call over the whole image; this converts blocks
    of rows, one call each (less memory): each value is the same, since the matrix product computes every
    pixel's three sums alone and in the same order whatever the number of rows (checked bit for bit
    against one call, over OpenBLAS's CPU kernels, by the tests), provided that no block is a single
    pixel (:func:`_row_blocks`).
    """
    snap = _SNAP_FLOAT16 if _is_float16(np.asarray(rgb).dtype) else _SNAP
    height, width = rgb.shape[0], rgb.shape[1]
    yuv = np.empty((height, width, 3), np.float64)
    for start, end in _row_blocks(height, width):
        yuv[start:end] = _yuv_of_rows(rgb[start:end], snap)
    return yuv


def colour_cells(rgb: np.ndarray, sigma_luma: float, sigma_chroma: float) -> npt.NDArray[np.int32]:
    """(H, W, 3) int32 grid cells ``(⌊Y/σ_l⌋, ⌊U/σ_c⌋, ⌊V/σ_c⌋)`` of each pixel (docs/filters.md, §7).

    The Y, U, V of :func:`reference_yuv`, bit for bit, divided and truncated as the reference does, but
    converted in blocks of rows: 12 bytes per pixel instead of the 24 of a float64 YUV image (and the 24 of
    the scaled image the reference also holds). Y, U and V are >= 0 for an image in [0, 1], so truncation
    is the floor.
    """
    snap = _SNAP_FLOAT16 if _is_float16(np.asarray(rgb).dtype) else _SNAP
    height, width = rgb.shape[0], rgb.shape[1]
    cells = np.empty((height, width, 3), np.int32)
    for start, end in _row_blocks(height, width):
        yuv = _yuv_of_rows(rgb[start:end], snap)
        yuv[..., 0] /= sigma_luma
        yuv[..., 1:] /= sigma_chroma
        cells[start:end] = yuv  # truncated towards 0, as the reference's astype(int)
    return cells


def bilateral_solver(
    image: npt.NDArray[Any],
    target: npt.NDArray[Any],
    *,
    preset: str = "tokencut",
    sigma_spatial: float | None = None,
    sigma_luma: float | None = None,
    sigma_chroma: float | None = None,
    lam: float = 256.0,
    confidence: float | npt.NDArray[Any] = 0.999,
    cg_iterations: int = 25,
    cg_tol: float = 1e-5,
    bistochastic_iterations: int = 10,
    diag_min: float = 1e-5,
    output: str | None = None,
) -> npt.NDArray[np.float32]:
    """Fast bilateral solver of ``target`` with ``image`` as reference (docs/filters.md, section 7).

    Parameters
    ----------
    image : ndarray of float, shape (H, W, 3)
        RGB reference image in [0, 1]. It is used as ``255·image`` (values within 1e-3 of an 8-bit level
        are snapped to it, so images decoded from 8-bit files give the reference code's grid exactly) and
        converted to YUV as the reference code does (:func:`reference_yuv`).
    target : ndarray of float, shape (H, W)
        Values to smooth, e.g. a soft or binary mask in [0, 1]. The solve is linear in the target.
    preset : {"tokencut", "paper_repo", "found", "found_multi"}, default "tokencut"
        Default σ's and output (see :data:`BILATERAL_PRESETS`): ``tokencut`` σ 16/16/8 soft (TokenCut,
        MOVE), ``paper_repo`` σ 24/4/4 soft (the paper's repository), ``found`` σ 16/16/8 solved on
        ``target > 0.5`` with FOUND's binary post-processing (:func:`found_binary`, single-object mode),
        ``found_multi`` the same with FOUND's multi-object mode (every component but the largest region).
    sigma_spatial, sigma_luma, sigma_chroma : float, optional
        Grid cell sizes in pixels and in 0..255 Y / U,V units (>= 0.001); ``None`` takes the preset's.
    lam : float, default 256
        Smoothness weight λ in [0, 1e8] (beyond 1e8 the system is too ill-conditioned for the float64
        conjugate gradient).
    confidence : float or ndarray of float, shape (H, W), default 0.999
        Per-pixel confidence c >= 0 of the target (a scalar for all pixels, as in the reference code).
        Its largest value must be 0 (no data: the output is 0) or lie in
        [max(lam / 1e10, 1e-30), 1e30]: only ``lam / c`` matters, beyond 1e10 the conjugate gradient no
        longer converges, and outside that range the float64 sums overflow or underflow.
    cg_iterations : int, default 25
        Maximum conjugate gradient iterations (0..10000).
    cg_tol : float, default 1e-5
        CG stops once ``||residual|| < cg_tol·||S(c·t)||`` (SciPy ``rtol``).
    bistochastic_iterations : int, default 10
        Bistochastisation iterations (0..1000).
    diag_min : float, default 1e-5
        Lower clamp of the Jacobi preconditioner's diagonal, in [2.2e-308, 1e30] (above ~1e150 the
        preconditioned step underflows and the solve would silently stop at its starting point).
    output : {"soft", "found", "found_multi"}, optional
        Overrides the preset's output. ``"found"`` solves on the binary ``target > 0.5`` (as FOUND, which
        refines its thresholded mask), then applies :func:`found_binary` to the float64 solution;
        ``"found_multi"`` does the same with ``all_components=True``.

    Returns
    -------
    ndarray of float32, shape (H, W)
        The soft solver output (not clipped: it can leave [0, 1] by the CG residual), or for
        ``output="found"``/``"found_multi"`` a 0/1 mask. Inputs are not modified.

    Raises
    ------
    ValueError, TypeError
        Bad shapes, non-finite values, target values beyond ±1e30 (the float32 result would overflow),
        a confidence out of range (see ``confidence``), an unknown preset or output, or a parameter out
        of range.
    """
    preset = check_choice(preset, tuple(BILATERAL_PRESETS), "preset")
    chosen = BILATERAL_PRESETS[preset]
    sigma_s = check_float_range(
        chosen.sigma_spatial if sigma_spatial is None else sigma_spatial, "sigma_spatial", _MIN_SIGMA
    )
    sigma_l = check_float_range(
        chosen.sigma_luma if sigma_luma is None else sigma_luma, "sigma_luma", _MIN_SIGMA
    )
    sigma_c = check_float_range(
        chosen.sigma_chroma if sigma_chroma is None else sigma_chroma, "sigma_chroma", _MIN_SIGMA
    )
    lam = check_float_range(lam, "lam", 0.0, MAX_LAM)
    cg_iterations = check_int_range(cg_iterations, "cg_iterations", 0, 10_000)
    cg_tol = check_float_range(cg_tol, "cg_tol", 0.0)
    bistochastic_iterations = check_int_range(bistochastic_iterations, "bistochastic_iterations", 0, 1000)
    diag_min = check_float_range(diag_min, "diag_min", float(np.finfo(np.float64).tiny), MAX_ABS_VALUE)
    output = check_choice(chosen.output if output is None else output, OUTPUTS, "output")
    rgb, values, conf = _check_arrays(image, target, confidence, lam)
    height, width = values.shape
    for name, extent in (
        ("sigma_spatial", max(height, width) / sigma_s),
        ("sigma_luma", 256.0 / sigma_l),
        ("sigma_chroma", 256.0 / sigma_c),
    ):
        if extent >= 2**30:
            raise ValueError(f"`{name}` is too small for a {height}x{width} image (grid extent {extent:.3g})")

    pixel_vertex, neighbors = kernels.build_grid(colour_cells(rgb, sigma_l, sigma_c), sigma_s)
    n_vertices = neighbors.shape[0]
    input_mask = values > 0.5 if output != "soft" else None
    # FOUND solves on its binary mask (the one it gates against), whatever soft map it came from
    flat_target = values.reshape(-1) if input_mask is None else input_mask.reshape(-1).astype(np.float32)
    counts = kernels.splat_constant(pixel_vertex, 1.0, n_vertices)
    if isinstance(conf, float):
        weights = counts * conf
        rhs = kernels.splat(pixel_vertex, flat_target, n_vertices) * conf
    else:
        flat_conf = conf.reshape(-1)
        weights = kernels.splat(pixel_vertex, flat_conf, n_vertices)
        rhs = kernels.splat(pixel_vertex, flat_conf.astype(np.float64) * flat_target, n_vertices)
    n, m_hat = kernels.bistochastize(neighbors, counts, bistochastic_iterations)
    y, _ = kernels.pcg_solve(neighbors, lam, n, m_hat, weights, rhs, diag_min, cg_iterations, cg_tol)
    if input_mask is not None:  # thresholded in float64, as FOUND does (a float32 cast can round onto 0.5)
        solution = y[pixel_vertex].reshape(height, width)
        return found_binary(solution, input_mask, all_components=output == "found_multi")
    return kernels.slice_to(pixel_vertex, y, np.empty(height * width, np.float32)).reshape(height, width)


def found_binary(
    soft: np.ndarray, input_mask: np.ndarray, *, all_components: bool = False
) -> npt.NDArray[np.float32]:
    """FOUND's use of the solver output (``misc.py`` + TokenCut's ``bilateral_solver_output``).

    ``binary = fill_holes(soft > 0.5)``; its connected components (4-connectivity) are labelled and
    ranked by pixel count, counting the background label 0 (ties in the order of NumPy's default
    ``argsort``, as in the published code). FOUND's single-object mode keeps the label with the *second
    largest* count -- the largest foreground component whenever the background is the largest region
    (when the foreground component outgrows the background, that code keeps the background; so does
    this); without any component the result is all ones. Its multi-object mode (``all_components``,
    FOUND's ``get_all_cc``) keeps every label but the one with the largest count -- every component
    when the background is the largest region; without any component the result is all zeros. The
    result replaces ``input_mask`` only if their IoU exceeds 0.5; otherwise ``input_mask`` is returned.

    Parameters
    ----------
    soft : ndarray of float, shape (H, W)
        Soft solver output.
    input_mask : ndarray of bool, shape (H, W)
        The binary mask that was refined.
    all_components : bool, default False
        FOUND's multi-object mode instead of its single-object mode.

    Returns
    -------
    ndarray of float32, shape (H, W), values 0 or 1

    Raises
    ------
    TypeError, ValueError
        ``soft`` not a finite float array of shape (H, W), ``input_mask`` not a bool array of that shape.
    """
    from scipy import ndimage  # on first use: importing maskrefine.filters must not cost SciPy's 0.25 s

    all_components = check_flag(all_components, "all_components")
    soft = as_float_array(soft, "soft")
    if soft.ndim != 2:
        raise ValueError(f"`soft` must have shape (H, W); got {soft.shape}")
    if not isinstance(input_mask, np.ndarray) or input_mask.dtype != np.bool_:
        got = type(input_mask).__name__
        if isinstance(input_mask, np.ndarray):
            got = f"dtype {input_mask.dtype}"
        raise TypeError(f"`input_mask` must be a bool array (e.g. `mask > 0.5`); got {got}")
    if input_mask.shape != soft.shape:
        raise ValueError(f"`input_mask` must have the shape of `soft` {soft.shape}; got {input_mask.shape}")
    filled = ndimage.binary_fill_holes(soft > 0.5)
    labeled, n_objects = ndimage.label(filled)
    sizes = np.bincount(labeled.ravel(), minlength=n_objects + 1)
    if all_components:
        binary = labeled != np.argsort(sizes)[-1]
    elif n_objects == 0:
        binary = np.ones(soft.shape, dtype=bool)
    else:
        binary = labeled == np.argsort(sizes)[-2]
    inter = np.count_nonzero(binary & input_mask)
    union = np.count_nonzero(binary | input_mask)
    iou = inter / union if union else 0.0
    chosen = binary if iou > 0.5 else input_mask
    return chosen.astype(np.float32)


def _check_arrays(
    image: object, target: object, confidence: object, lam: float
) -> tuple[np.ndarray, np.ndarray, Any]:
    rgb = as_rgb_unit_image(image)
    values = as_float_array(target, "target")
    if values.shape != rgb.shape[:2]:
        raise ValueError(f"`target` must have the image's shape {rgb.shape[:2]}; got {values.shape}")
    check_max_abs(values, "target")
    if isinstance(confidence, numbers.Real) and not isinstance(confidence, bool):
        conf: Any = check_float_range(confidence, "confidence", 0.0)
        largest = conf
    else:
        expected = f"a float >= 0 or a float array of shape {values.shape}"  # a float is the usual value
        conf = as_float_array(confidence, "confidence", unit=False, expected=expected)
        if conf.ndim == 0:
            conf = largest = check_float_range(float(conf), "confidence", 0.0)
        elif conf.shape != values.shape:
            raise ValueError(f"`confidence` must have the target's shape {values.shape}; got {conf.shape}")
        elif float(conf.min()) < 0.0:
            raise ValueError("`confidence` values must be >= 0")
        else:
            conf = np.ascontiguousarray(conf, dtype=np.float64)
            largest = float(conf.max()) if conf.size else 0.0
    _check_confidence_scale(largest, lam)
    # float32 targets are splatted as they are (sums in float64): no image-sized float64 copy
    target_dtype = values.dtype if values.dtype in (np.float32, np.float64) else np.float64
    # the image is only read by colour_cells, which snaps a float16 image (either byte order) with its
    # own tolerance
    rgb_dtype = np.float16 if _is_float16(rgb.dtype) else np.float32
    return np.ascontiguousarray(rgb, dtype=rgb_dtype), np.ascontiguousarray(values, dtype=target_dtype), conf


def _check_confidence_scale(largest: float, lam: float) -> None:
    """Refuse a largest confidence the solve cannot handle (0 means "no data" and is accepted).

    Above :data:`MAX_ABS_VALUE` the splatted ``S·c`` and ``S·(c·t)`` overflow (inf/NaN output). The
    solution depends only on ``lam / confidence``: beyond :data:`MAX_SMOOTHNESS_RATIO` the conjugate
    gradient no longer converges (an all-ones target gave values up to 1760 at 2.6e16), and below
    :data:`MIN_CONFIDENCE` ``||S(c·t)||²`` underflows to 0 and the output is all zeros.
    """
    if largest > MAX_ABS_VALUE:
        raise ValueError(f"`confidence` values must be <= {MAX_ABS_VALUE:g}; found {largest:.7g}")
    smallest = max(lam / MAX_SMOOTHNESS_RATIO, MIN_CONFIDENCE)
    if 0.0 < largest < smallest:
        raise ValueError(
            f"`confidence` is too small: its largest value {largest:.7g} must be 0 or >= {smallest:g} "
            f"(lam / {MAX_SMOOTHNESS_RATIO:g} with lam = {lam:g}, and at least {MIN_CONFIDENCE:g}); the "
            f"solve weighs smoothness lam / confidence times the data, and beyond {MAX_SMOOTHNESS_RATIO:g} "
            f"the conjugate gradient no longer converges. Scale `lam` down with the confidence."
        )
