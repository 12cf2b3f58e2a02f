"""Numba kernels of the metrics: one pass over the GT, one pass over the prediction. No checks, no I/O."""

from __future__ import annotations

import numpy as np

from maskrefine._jit import njit


@njit(cache=True, nogil=True)
def gt_classes(gt, scale, thr_f, thr_acc, two_rules, out):  # pragma: no cover - compiled
    """Write the GT class of each pixel into ``out`` (uint8); return (n_fg_f, sum_row_f, sum_col_f).

    Class = ``gt*scale > thr_f`` plus, when ``two_rules``, 2 * ``gt*scale > thr_acc``.
    """
    h, w = gt.shape
    n = 0
    sr = 0
    sc = 0
    for i in range(h):
        row_n = 0
        for j in range(w):
            v = gt[i, j] * scale
            c = 1 if v > thr_f else 0
            if two_rules and v > thr_acc:
                c += 2
            out[i, j] = c
            if c & 1:
                row_n += 1
                sc += j
        n += row_n
        sr += row_n * i
    return n, sr, sc


@njit(cache=True, nogil=True)
def quadrant_histogram(codes, gcls, cy, cx, ncls, nlev):  # pragma: no cover - compiled
    """Counts of each code per (quadrant, GT class): shape (4, ncls, nlev).

    Quadrants split at row ``cy`` and column ``cx``: 0 = top-left, 1 = top-right, 2 = bottom-left,
    3 = bottom-right (rows < cy are top, columns < cx are left).
    """
    h, w = codes.shape
    out = np.zeros((4, ncls, nlev), np.int64)
    for i in range(h):
        q = 0 if i < cy else 2
        for j in range(min(cx, w)):
            out[q, gcls[i, j], codes[i, j]] += 1
        for j in range(max(cx, 0), w):
            out[q + 1, gcls[i, j], codes[i, j]] += 1
    return out


@njit(cache=True, nogil=True)
def quadrant_moments(x, gcls, cy, cx, ncls, thr_acc, thr_adp):  # pragma: no cover - compiled
    """Per (quadrant, GT class): [n, sum x, sum x^2, #(x > thr_acc), #(x >= thr_adp)], shape (4, ncls, 5)."""
    h, w = x.shape
    out = np.zeros((4, ncls, 5), np.float64)
    for i in range(h):
        qrow = 0 if i < cy else 2
        for j in range(w):
            q = qrow if j < cx else qrow + 1
            c = gcls[i, j]
            v = x[i, j]
            out[q, c, 0] += 1.0
            out[q, c, 1] += v
            out[q, c, 2] += v * v
            if v > thr_acc:
                out[q, c, 3] += 1.0
            if v >= thr_adp:
                out[q, c, 4] += 1.0
    return out
