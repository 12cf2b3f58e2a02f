"""Numba kernels of the fast bilateral solver (Barron & Poole 2016) as specified in PROTOCOL §4.1.

No validation and no I/O. The grid is stored as ``pixel_vertex`` (int32 per pixel: the index of its
vertex, i.e. the splat matrix S) and ``neighbors`` (int32 (V, 10): the vertices at -1 and +1 along each
of the 5 grid axes, -1 when absent). Vertices are found with :mod:`maskrefine.filters._hashgrid`, which
compares whole coordinate tuples, so there are no hash collisions for any image size. Vectors on the
grid are float64; the conjugate gradient loop is SciPy's ``cg`` step for step (same stopping rule
``||r|| < rtol·||b||`` on the recursively updated residual), so results match a SciPy solve to rounding.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from maskrefine.filters._hashgrid import find, find_or_insert, grow, new_table

__all__ = ["build_grid", "splat", "blur", "bistochastize", "pcg_solve", "slice_to"]

GRID_DIMS = 5
# centre weight 2·D of the [1 2 1]^D blur (PROTOCOL §4.1)
_CENTER = 2.0 * GRID_DIMS


@njit(cache=True, nogil=True, inline="always")
def _to_255(value):
    """A [0, 1] sample as a 0..255 level; within 1e-3 of an integer level it *is* that level, so 8-bit
    images reproduce the reference's integer grid coordinates exactly."""
    v = np.float64(value) * 255.0
    r = np.floor(v + 0.5)
    if abs(v - r) < 1e-3:
        return r
    return v


@njit(cache=True, nogil=True)
def build_grid(image, sigma_spatial, sigma_luma, sigma_chroma):
    """Grid of an (H, W, 3) RGB image in [0, 1]. Returns ``(pixel_vertex, neighbors)``.

    Coordinates per pixel, truncated to int as in the reference: (x/σ_s, y/σ_s, Y/σ_l, U/σ_c, V/σ_c)
    with Y, U, V from the 0..255 image (U and V offset by 128, so all coordinates are >= 0)."""
    height, width = image.shape[0], image.shape[1]
    pixel_vertex = np.empty(height * width, np.int32)
    slots, keys = new_table(4096, GRID_DIMS)
    count = 0
    key = np.empty(GRID_DIMS, np.int32)
    last = np.full(GRID_DIMS, -1, np.int32)
    last_index = -1
    for y in range(height):
        cy = np.int32(y / sigma_spatial)
        for x in range(width):
            r = _to_255(image[y, x, 0])
            g = _to_255(image[y, x, 1])
            b = _to_255(image[y, x, 2])
            luma = 0.299 * r + 0.587 * g + 0.114 * b
            chroma_u = -0.168736 * r - 0.331264 * g + 0.5 * b + 128.0
            chroma_v = 0.5 * r - 0.418688 * g - 0.081312 * b + 128.0
            key[0] = np.int32(x / sigma_spatial)
            key[1] = cy
            key[2] = np.int32(luma / sigma_luma)
            key[3] = np.int32(chroma_u / sigma_chroma)
            key[4] = np.int32(chroma_v / sigma_chroma)
            same = last_index >= 0
            for i in range(GRID_DIMS):
                if key[i] != last[i]:
                    same = False
            if not same:
                if count == keys.shape[0]:
                    slots, keys = grow(slots, keys, count)
                last_index, count = find_or_insert(slots, keys, count, key)
                last[:] = key
            pixel_vertex[y * width + x] = last_index
    neighbors = np.empty((count, 2 * GRID_DIMS), np.int32)
    probe = np.empty(GRID_DIMS, np.int32)
    for v in range(count):
        for d in range(GRID_DIMS):
            for side in range(2):
                probe[:] = keys[v]
                probe[d] += 2 * side - 1
                neighbors[v, 2 * d + side] = find(slots, keys, probe)
    return pixel_vertex, neighbors


@njit(cache=True, nogil=True)
def splat(pixel_vertex, values, n_vertices):
    """S·values: per-vertex sums of a per-pixel float vector (float64)."""
    out = np.zeros(n_vertices, np.float64)
    for p in range(pixel_vertex.shape[0]):
        out[pixel_vertex[p]] += values[p]
    return out


@njit(cache=True, nogil=True)
def splat_constant(pixel_vertex, value, n_vertices):
    """S·(value·1): per-vertex pixel counts times ``value``."""
    out = np.zeros(n_vertices, np.float64)
    for p in range(pixel_vertex.shape[0]):
        out[pixel_vertex[p]] += 1.0
    if value != 1.0:
        for v in range(n_vertices):
            out[v] *= value
    return out


@njit(cache=True, nogil=True)
def blur(neighbors, x, out):
    """B·x with B = 2D·I + sum of the -1/+1 neighbours along each axis ([1 2 1] per axis)."""
    for v in range(x.shape[0]):
        acc = _CENTER * x[v]
        for k in range(2 * GRID_DIMS):
            u = neighbors[v, k]
            if u >= 0:
                acc += x[u]
        out[v] = acc
    return out


@njit(cache=True, nogil=True)
def bistochastize(neighbors, m, iterations):
    """``(n, m_hat)``: n <- sqrt(n·m / B n) repeated, then m_hat = n·B n (PROTOCOL §4.1)."""
    nv = m.shape[0]
    n = np.ones(nv, np.float64)
    bn = np.empty(nv, np.float64)
    for _ in range(iterations):
        blur(neighbors, n, bn)
        for v in range(nv):
            n[v] = np.sqrt(n[v] * m[v] / bn[v])
    blur(neighbors, n, bn)
    m_hat = n * bn
    return n, m_hat


@njit(cache=True, nogil=True)
def _apply_a(neighbors, lam, n, m_hat, w, x, scratch, blurred, out):
    """out = (λ(D_m − D_n B D_n) + diag(w)) x."""
    nv = x.shape[0]
    for v in range(nv):
        scratch[v] = n[v] * x[v]
    blur(neighbors, scratch, blurred)
    for v in range(nv):
        out[v] = lam * (m_hat[v] * x[v] - n[v] * blurred[v]) + w[v] * x[v]


@njit(cache=True, nogil=True, inline="always")
def _dot(a, b):
    """Plain loop: a BLAS dot call costs milliseconds here when its threads compete for the cores."""
    acc = 0.0
    for i in range(a.shape[0]):
        acc += a[i] * b[i]
    return acc


@njit(cache=True, nogil=True)
def pcg_solve(neighbors, lam, n, m_hat, w, b, diag_min, max_iter, rtol):
    """Jacobi-preconditioned CG for (λ(D_m − D_n B D_n) + diag(w)) y = b from y0 = b / w (0 where w = 0),
    SciPy ``cg(A, b, x0, M, maxiter, rtol)`` step for step. Returns ``(y, iterations)``."""
    nv = b.shape[0]
    y = np.empty(nv, np.float64)
    inv_diag = np.empty(nv, np.float64)
    for v in range(nv):
        y[v] = b[v] / w[v] if w[v] > 0.0 else 0.0
        a_vv = lam * (m_hat[v] - _CENTER * n[v] * n[v]) + w[v]
        inv_diag[v] = 1.0 / max(a_vv, diag_min)
    b_norm = np.sqrt(_dot(b, b))
    if b_norm == 0.0:
        return np.zeros(nv, np.float64), 0
    atol = rtol * b_norm
    scratch = np.empty(nv, np.float64)
    blurred = np.empty(nv, np.float64)
    q = np.empty(nv, np.float64)
    r = np.empty(nv, np.float64)
    _apply_a(neighbors, lam, n, m_hat, w, y, scratch, blurred, q)
    for v in range(nv):
        r[v] = b[v] - q[v]
    z = np.empty(nv, np.float64)
    p = np.empty(nv, np.float64)
    rho_prev = 1.0
    for it in range(max_iter):
        if np.sqrt(_dot(r, r)) < atol:
            return y, it
        for v in range(nv):
            z[v] = inv_diag[v] * r[v]
        rho = _dot(r, z)
        if it > 0:
            beta = rho / rho_prev
            for v in range(nv):
                p[v] = p[v] * beta + z[v]
        else:
            p[:] = z
        _apply_a(neighbors, lam, n, m_hat, w, p, scratch, blurred, q)
        alpha = rho / _dot(p, q)
        for v in range(nv):
            y[v] += alpha * p[v]
            r[v] -= alpha * q[v]
        rho_prev = rho
    return y, max_iter


@njit(cache=True, nogil=True)
def slice_to(pixel_vertex, y, out):
    """out (flat, per pixel) = Sᵀ y."""
    for p in range(pixel_vertex.shape[0]):
        out[p] = y[pixel_vertex[p]]
    return out
