"""Two-label fully connected CRF (Krähenbühl & Koltun, NIPS 2011) for refining a foreground mask.

Energy: unary ``U_l(i) = -log(clip(p_l(i), ε, 1))`` with p_1 = mask, p_0 = 1 - mask, ε = 1e-5,
rounded to float32 (pydensecrf's ``unary_from_softmax``; the ``deep_spectral`` preset clips to
[0.01, 0.99]), plus two Potts pairwise terms with Gaussian kernels: an appearance-free one on positions
(x, y)/``gaussian_sxy`` with weight ``gaussian_compat``, and a bilateral one on (x, y)/``bilateral_sxy``
and 0..255 RGB/``bilateral_srgb`` with weight ``bilateral_compat``. Inference is densecrf's parallel
mean-field update (``DenseCRF::inference``): symmetric kernel normalisation D^{-1/2} K D^{-1/2},
message passing through a permutohedral lattice (:mod:`maskrefine.filters._lattice_kernels`, numba; no
C++ build), starting from the unary softmax.

Binary masks (only 0 and 1 values): the probabilities are first squashed to ``gt_prob`` for the given
label and ``1 - gt_prob`` for the other, i.e. ``p <- (1 - gt_prob) + (2 gt_prob - 1) p``, which gives
the unaries of pydensecrf's ``unary_from_labels(labels, 2, gt_prob, zero_unsure=False)``; without it a
0/1 mask would have unaries of 0 and 11.5 and the pairwise terms could hardly move it. The default 0.7 is
the value of pydensecrf's README example.

Defaults (:data:`CRF_PRESETS`): ``deeplab`` holds the kernels of pydensecrf's README example (Gaussian sxy
3, compat 3; bilateral sxy 80, srgb 13, compat 10), run for 10 iterations (the README example runs 5).
``deeplab_v2`` is DeepLab-v2's ResNet-101 setting as deeplab-pytorch's ``crf.py`` holds it and
MaskContrast and STEGO copy it (Gaussian sxy 1, compat 3; bilateral sxy 67, srgb 3, compat 4; 10
iterations; ``unary_from_softmax`` for every mask, no ``gt_prob`` step). ``deep_spectral`` is the setting of
deep-spectral-segmentation's object localisation code (``ParamsCRF`` for SimpleCRF's
``denseCRF.densecrf``: w1 6, alpha 40, beta 13, w2 3, gamma 3, 5 iterations), with SimpleCRF's unaries:
each label probability clipped to [0.01, 0.99] in float32 (a 0/1 mask's labels thus get 0.99, no
``gt_prob``). SimpleCRF returns the MAP labels, i.e. ``Q > 0.5`` of what :func:`dense_crf` returns.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from maskrefine._checks import (
    as_float_array,
    as_rgb_unit_image,
    check_choice,
    check_float_range,
    check_gt_prob,
    check_int_range,
    check_unit_interval,
)
from maskrefine.baseline_presets import CRF_PRESETS, CrfPreset
from maskrefine.filters import _lattice_kernels as kernels
from maskrefine.filters.guided import _num_threads, _run_parallel, _split  # the filters' one thread pool

__all__ = ["CrfPreset", "CRF_PRESETS", "dense_crf"]


def _unary_difference(
    prob: np.ndarray, gt_prob: float | None, preset: CrfPreset = CRF_PRESETS["deeplab"]
) -> npt.NDArray[np.float64]:
    """U_1 − U_0 per pixel (flat float64) for a foreground probability map (see the module docstring).

    The preset's ``binary_gt_prob`` (when ``gt_prob`` is None and the map is 0/1) and ``unary_clip``.
    """
    p = np.asarray(prob, dtype=np.float64).reshape(-1)
    if gt_prob is None and preset.binary_gt_prob is not None and np.all((p == 0.0) | (p == 1.0)):
        gt_prob = preset.binary_gt_prob
    if gt_prob is not None:
        p = (1.0 - gt_prob) + (2.0 * gt_prob - 1.0) * p
    low, high = preset.unary_clip
    if high < 1.0:  # SimpleCRF's computeUnary: each probability as float32, clipped to float32 bounds
        fg = np.clip(p.astype(np.float32), np.float32(low), np.float32(high)).astype(np.float64)
        bg = np.clip((1.0 - p).astype(np.float32), np.float32(low), np.float32(high)).astype(np.float64)
    else:  # pydensecrf's unary_from_softmax / unary_from_labels: -log(clip(prob, ε, 1))
        fg, bg = np.clip(p, low, high), np.clip(1.0 - p, low, high)
    u_fg = (-np.log(fg)).astype(np.float32)  # stored as float32 by both
    u_bg = (-np.log(bg)).astype(np.float32)
    return u_fg.astype(np.float64) - u_bg


def dense_crf(
    image: npt.NDArray[Any],
    prob: npt.NDArray[Any],
    *,
    preset: str = "deeplab",
    gaussian_sxy: float | None = None,
    gaussian_compat: float | None = None,
    bilateral_sxy: float | None = None,
    bilateral_srgb: float | None = None,
    bilateral_compat: float | None = None,
    iterations: int | None = None,
    gt_prob: float | None = None,
) -> npt.NDArray[np.float32]:
    """Foreground marginals of a two-label dense CRF over ``image`` with unaries from ``prob``.

    Parameters
    ----------
    image : ndarray of float, shape (H, W, 3)
        RGB image in [0, 1] (used as 0..255 in the bilateral kernel, as pydensecrf's uint8 input).
    prob : ndarray of float, shape (H, W)
        Foreground probability (soft mask) in [0, 1]; a 0/1 mask gets the ``gt_prob`` confidence.
    preset : {"deeplab", "deeplab_v2", "deep_spectral"}, default "deeplab"
        Default kernel settings (:data:`CRF_PRESETS`); each of the following parameters left at None
        takes the preset's value.
    gaussian_sxy : float, optional
        Spatial standard deviation of the Gaussian (position-only) kernel in pixels (>= 0.01).
    gaussian_compat : float, optional
        Potts weight of the Gaussian kernel (>= 0; 0 leaves that kernel out).
    bilateral_sxy : float, optional
        Spatial standard deviation of the bilateral kernel in pixels (>= 0.01).
    bilateral_srgb : float, optional
        Colour standard deviation of the bilateral kernel in 0..255 units (>= 0.01).
    bilateral_compat : float, optional
        Potts weight of the bilateral kernel (>= 0; 0 leaves that kernel out).
    iterations : int, optional
        Mean-field iterations (0..1000).
    gt_prob : float, optional
        Confidence in (0.5, 1) of the given labels (0.5 would make the unaries uniform and below it the
        labels invert): applied to binary masks (the preset's
        ``binary_gt_prob``: 0.7 under ``deeplab``; none under ``deeplab_v2`` or ``deep_spectral``, whose clip
        gives 0/1 labels 0.99) or, when given, to any mask as ``p <- (1 - gt_prob) + (2 gt_prob - 1) p``.

    Returns
    -------
    ndarray of float32, shape (H, W)
        Q(foreground) per pixel; the labelling is ``Q > 0.5``. With both Potts weights 0 or 0 iterations
        it is the softmax of the unaries.

    Raises
    ------
    TypeError
        ``image`` or ``prob`` not a float array, a non-number kernel setting or ``gt_prob``, a
        non-integer ``iterations``.
    ValueError
        An unknown preset; a kernel setting, ``iterations`` or ``gt_prob`` out of range (``gt_prob`` 0.5 or
        1 included); ``image`` not of shape (H, W, 3); ``prob`` not of the image's (H, W) shape; NaN/inf;
        ``image`` or ``prob`` values outside [0, 1] by more than 1e-6.
    """
    preset = check_choice(preset, tuple(CRF_PRESETS), "preset")
    chosen = CRF_PRESETS[preset]

    def pick(value: float | None, default: float, name: str, low: float) -> float:
        return check_float_range(default if value is None else value, name, low)

    g_sxy = pick(gaussian_sxy, chosen.gaussian_sxy, "gaussian_sxy", 0.01)
    g_w = pick(gaussian_compat, chosen.gaussian_compat, "gaussian_compat", 0.0)
    b_sxy = pick(bilateral_sxy, chosen.bilateral_sxy, "bilateral_sxy", 0.01)
    b_srgb = pick(bilateral_srgb, chosen.bilateral_srgb, "bilateral_srgb", 0.01)
    b_w = pick(bilateral_compat, chosen.bilateral_compat, "bilateral_compat", 0.0)
    n_iter = check_int_range(chosen.iterations if iterations is None else iterations, "iterations", 0, 1000)
    if gt_prob is not None:
        gt_prob = check_gt_prob(gt_prob, "gt_prob")
    rgb = as_rgb_unit_image(image)
    p = as_float_array(prob, "prob")
    if p.shape != rgb.shape[:2]:
        raise ValueError(f"`prob` must have the image's shape {rgb.shape[:2]}; got {p.shape}")
    check_unit_interval(p, "prob")  # within UNIT_TOLERANCE, as the other refiners and the readers accept
    p = np.clip(p, 0.0, 1.0)  # a new array: log(1 - p) needs p <= 1 exactly

    height, width = p.shape
    udiff = _unary_difference(p, gt_prob, chosen)
    jobs, weights = [], []
    if g_w > 0.0:
        jobs.append(lambda: _positions(height, width, g_sxy))
        weights.append(g_w)
    if b_w > 0.0:
        jobs.append(lambda: _bilateral_features(rgb, b_sxy, b_srgb))
        weights.append(b_w)
    if not jobs or n_iter == 0:
        return (1.0 / (1.0 + np.exp(udiff))).astype(np.float32).reshape(height, width)
    lattices = _build_lattices(jobs)
    q1 = _mean_field(udiff, tuple(lattices), np.asarray(weights, np.float64), n_iter)
    return q1.astype(np.float32).reshape(height, width)


# Points per thread below which the work stays in the calling thread.
_MIN_POINTS_PER_THREAD = 150_000


def _build_lattices(jobs: list) -> list:
    """Build the kernels' lattices, concurrently when there are several (the builds release the GIL)."""
    built: list = [None] * len(jobs)

    def task(index: int) -> None:
        built[index] = kernels.build_lattice(jobs[index]())

    if len(jobs) > 1 and _num_threads() > 1:
        _run_parallel([partial(task, i) for i in range(len(jobs))])
    else:
        for i in range(len(jobs)):
            task(i)
    return built


def _mean_field(udiff: np.ndarray, lattices: tuple, compat: np.ndarray, iterations: int) -> np.ndarray:
    """Run densecrf's mean-field for two labels, the points split over threads.

    Each thread splats into its own grids, which are summed before the (small) blur.
    """
    n_points = udiff.shape[0]
    n_kernels = len(lattices)
    chunks = _split(n_points, min(_num_threads(), max(1, n_points // _MIN_POINTS_PER_THREAD)))
    size = max(lat[2].shape[1] for lat in lattices)
    private = np.zeros((len(chunks), n_kernels, size))
    scratch = np.empty(size)
    filtered = np.empty(n_points)

    def filter_all(kk: int, values: np.ndarray, out: np.ndarray) -> None:
        offsets, weights, neighbors = lattices[kk]
        m = neighbors.shape[1]
        private[:, kk, :m] = 0.0
        _run_parallel(
            [
                partial(kernels.splat_points, offsets, weights, values, lo, hi, private[c, kk, :m])
                for c, (lo, hi) in enumerate(chunks)
            ]
        )
        grid = private[:, kk, :m].sum(axis=0)
        kernels.blur_grid(neighbors, grid, scratch[:m])
        _run_parallel(
            [partial(kernels.slice_points, offsets, weights, grid, lo, hi, out) for lo, hi in chunks]
        )

    norms = np.empty((n_kernels, n_points))
    constant = np.empty((n_kernels, n_points))
    for kk in range(n_kernels):
        filter_all(kk, np.ones(n_points), filtered)
        np.reciprocal(np.sqrt(filtered + 1e-20), out=norms[kk])
        filter_all(kk, norms[kk], filtered)
        np.multiply(norms[kk], filtered, out=constant[kk])

    q1 = 1.0 / (1.0 + np.exp(udiff))
    private[:] = 0.0
    for kk in range(n_kernels):
        offsets, weights, _ = lattices[kk]
        scaled = norms[kk] * q1
        _run_parallel(
            [
                partial(kernels.splat_points, offsets, weights, scaled, lo, hi, private[c, kk])
                for c, (lo, hi) in enumerate(chunks)
            ]
        )
    blurred = np.empty((n_kernels, size))
    alphas = np.array([1.0 / (1.0 + 2.0 ** -(lat[0].shape[1] - 1)) for lat in lattices])
    for it in range(iterations):
        for kk in range(n_kernels):
            m = lattices[kk][2].shape[1]
            blurred[kk, :m] = private[:, kk, :m].sum(axis=0)
            kernels.blur_grid(lattices[kk][2], blurred[kk, :m], scratch[:m])
        private[:] = 0.0
        splat_next = it < iterations - 1
        _run_parallel(
            [
                partial(
                    kernels.update_points,
                    lo,
                    hi,
                    udiff,
                    lattices,
                    compat,
                    alphas,
                    norms,
                    constant,
                    blurred,
                    q1,
                    private[c],
                    splat_next,
                )
                for c, (lo, hi) in enumerate(chunks)
            ]
        )
    return q1


def _positions(height: int, width: int, sxy: float) -> np.ndarray:
    ys, xs = np.mgrid[:height, :width]
    return np.stack([xs.ravel() / sxy, ys.ravel() / sxy], axis=-1).astype(np.float32)


def _bilateral_features(rgb: np.ndarray, sxy: float, srgb: float) -> np.ndarray:
    height, width = rgb.shape[:2]
    feats = np.empty((height * width, 5), np.float32)
    ys, xs = np.mgrid[:height, :width]
    feats[:, 0] = xs.ravel() / sxy
    feats[:, 1] = ys.ravel() / sxy
    feats[:, 2:] = np.rint(rgb.reshape(-1, 3).astype(np.float64) * 255.0) / srgb
    return feats
