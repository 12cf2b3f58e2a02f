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
    """Count each code per (quadrant, GT class): shape (4, ncls, nlev).

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


@njit(cache=True, nogil=True)
def bilinear_fma32(x, r0, r1, h0, h1, c0, c1, w0, w1, out):  # pragma: no cover - compiled
    """Torch's float32 bilinear combination ``fma(fma(x00, w0, x01 w1), h0, fma(x10, w0, x11 w1) h1)``.

    ``x`` float32 (h, w); row indices/weights ``r0, r1, h0, h1`` (H,), column ones ``c0, c1, w0, w1`` (W,);
    ``out`` float32 (H, W). A float32 product is formed exactly in float64 and rounded once; a fused
    multiply-add is the float64 sum of an exact product and a float32 addend, rounded once.
    """
    height, width = out.shape
    for i in range(height):
        a = r0[i]
        b = r1[i]
        hh0 = np.float64(h0[i])
        hh1 = np.float64(h1[i])
        for j in range(width):
            ww0 = np.float64(w0[j])
            ww1 = np.float64(w1[j])
            top = np.float32(np.float64(x[a, c0[j]]) * ww0 + np.float32(np.float64(x[a, c1[j]]) * ww1))
            bottom = np.float32(np.float64(x[b, c0[j]]) * ww0 + np.float32(np.float64(x[b, c1[j]]) * ww1))
            out[i, j] = np.float32(np.float64(top) * hh0 + np.float32(np.float64(bottom) * hh1))
    return out


@njit(cache=True, nogil=True)
def level_histogram(x, gcls, thr_ext, den, strict, out):  # pragma: no cover - compiled
    """``out[c, l]`` += 1 for each pixel: c = F class (``gcls & 1``), l = number of thresholds it passes.

    ``thr_ext``: the K ascending thresholds (each within a few ulps of k / ``den``) followed by +inf;
    ``strict``: ``x > t`` (else ``x >= t``). The count lies in ``floor(x den) - 1 .. floor(x den) + 2``,
    so it is found from that lower bound in at most three steps; ``out`` has shape (2, K + 1).
    """
    k = thr_ext.size - 1
    height, width = x.shape
    for i in range(height):
        for j in range(width):
            v = x[i, j]
            c = int(np.floor(v * den)) - 1
            c = 0 if c < 0 else (k if c > k else c)
            for _ in range(3):
                t = thr_ext[c]
                if (v > t) if strict else (v >= t):
                    c += 1
            out[gcls[i, j] & 1, c] += 1
    return out


@njit(cache=True, nogil=True)
def pil_rows_8bit(img, index, fixed, bits, out):  # pragma: no cover - compiled
    """Resample along axis 1 as Pillow's 8-bit pass does (integer coefficients, one rounding per pass).

    ``out[i, o] = clip((2^(bits-1) + Σ_t img[i, index[o, t]] · fixed[o, t]) >> bits, 0, 255)``.
    """
    rows = img.shape[0]
    n_out, taps = index.shape
    half = 1 << (bits - 1)
    for i in range(rows):
        for o in range(n_out):
            acc = half
            for t in range(taps):
                acc += np.int64(img[i, index[o, t]]) * fixed[o, t]
            v = acc >> bits
            out[i, o] = 0 if v < 0 else (255 if v > 255 else v)
    return out
