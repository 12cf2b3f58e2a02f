"""Numba kernels of the fast bilateral solver (Barron & Poole 2016) as defined in docs/filters.md §7.

No validation and no I/O. The grid is stored as ``pixel_vertex`` (int32 per pixel: the index of its
vertex, i.e. the splat matrix S) and ``neighbors`` (int32 (V, 10): the vertices at -1 and +1 along each
of the 5 grid axes; an absent neighbour is V, a sentinel entry that vectors to be blurred carry as a
trailing 0, so the blur has no branch). Vertices are found with :mod:`maskrefine.filters._hashgrid`, which
compares whole coordinate tuples, so there are no hash collisions for any image size. Vectors on the
grid are float64; the conjugate gradient loop is SciPy's ``cg`` step for step (same stopping rule
``||r|| < rtol·||b||`` on the recursively updated residual), so results match a SciPy solve to rounding.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from maskrefine._jit import njit
from maskrefine.filters._hashgrid import find, find_or_insert, grow, new_table

__all__ = [
    "build_grid",
    "splat",
    "splat_constant",
    "blur",
    "bistochastize",
    "pcg_solve",
    "slice_to",
]

I32: TypeAlias = npt.NDArray[np.int32]
F64: TypeAlias = npt.NDArray[np.float64]

GRID_DIMS = 5
# centre weight 2·D of the [1 2 1]^D blur (docs/filters.md, section 7)
_CENTER = 2.0 * GRID_DIMS


@njit(cache=True, nogil=True)
def build_grid(cells: npt.NDArray[np.int32], sigma_spatial: float) -> tuple[I32, I32]:
    """Grid of an image given as its (H, W, 3) int32 colour cells. Returns ``(pixel_vertex, neighbors)``.

    A pixel's vertex is (x/σ_s, y/σ_s) truncated to int as in the reference, then its three colour cells
    (``⌊Y/σ_l⌋, ⌊U/σ_c⌋, ⌊V/σ_c⌋``, all >= 0: U and V carry the +128 offset).
    """
    height, width = cells.shape[0], cells.shape[1]
    pixel_vertex = np.empty(height * width, np.int32)
    slots, keys = new_table(4096, GRID_DIMS)
    count = 0
    key = np.empty(GRID_DIMS, np.int32)
    last = np.full(GRID_DIMS, -1, np.int32)
    last_index = -1
    for y in range(height):
        cy = np.int32(y / sigma_spatial)
        for x in range(width):
            key[0] = np.int32(x / sigma_spatial)
            key[1] = cy
            key[2] = cells[y, x, 0]
            key[3] = cells[y, x, 1]
            key[4] = cells[y, x, 2]
            same = last_index >= 0
            for i in range(GRID_DIMS):
                if key[i] != last[i]:
                    same = False
            if not same and y > 0:  # second chance: the vertex of the pixel above
                above = pixel_vertex[(y - 1) * width + x]
                same = True
                for i in range(GRID_DIMS):
                    if keys[above, i] != key[i]:
                        same = False
                if same:
                    last_index = above
                    last[:] = key
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
                found = find(slots, keys, probe)
                neighbors[v, 2 * d + side] = found if found >= 0 else count  # absent: the zero sentinel
    return pixel_vertex, neighbors


@njit(cache=True, nogil=True)
def splat(pixel_vertex: I32, values: npt.NDArray[np.floating[Any]], n_vertices: int) -> F64:
    """S·values: per-vertex sums of a per-pixel float vector (float64)."""
    out = np.zeros(n_vertices, np.float64)
    for p in range(pixel_vertex.shape[0]):
        out[pixel_vertex[p]] += values[p]
    return out


@njit(cache=True, nogil=True)
def splat_constant(pixel_vertex: I32, value: float, n_vertices: int) -> F64:
    """S·(value·1): per-vertex pixel counts times ``value``."""
    out = np.zeros(n_vertices, np.float64)
    for p in range(pixel_vertex.shape[0]):
        out[pixel_vertex[p]] += 1.0
    if value != 1.0:
        for v in range(n_vertices):
            out[v] *= value
    return out


@njit(cache=True, nogil=True)
def blur(neighbors: I32, x: F64, out: F64) -> F64:
    """Compute B·x with B = 2D·I + sum of the -1/+1 neighbours along each axis ([1 2 1] per axis).

    ``x`` has V + 1 entries, the last one 0 (the sentinel); ``out`` gets the first V.
    """
    for v in range(neighbors.shape[0]):
        acc = _CENTER * x[v]
        for k in range(2 * GRID_DIMS):
            acc += x[neighbors[v, k]]
        out[v] = acc
    return out


@njit(cache=True, nogil=True)
def bistochastize(neighbors: I32, m: F64, iterations: int) -> tuple[F64, F64]:
    """Return ``(n, m_hat)``: n <- sqrt(n·m / B n) repeated, then m_hat = n·B n (docs/filters.md, section 7).

    ``n`` has V + 1 entries (trailing sentinel 0).
    """
    nv = m.shape[0]
    n = np.ones(nv + 1, np.float64)
    n[nv] = 0.0
    bn = np.empty(nv, np.float64)
    for _ in range(iterations):
        blur(neighbors, n, bn)
        for v in range(nv):
            n[v] = np.sqrt(n[v] * m[v] / bn[v])
    blur(neighbors, n, bn)
    m_hat = n[:nv] * bn
    return n, m_hat


@njit(cache=True, nogil=True)
def pcg_solve(
    neighbors: I32,
    lam: float,
    n: F64,
    m_hat: F64,
    w: F64,
    b: F64,
    diag_min: float,
    max_iter: int,
    rtol: float,
) -> tuple[F64, int]:
    """Solve A y = b, A = λ(D_m − D_n B D_n) + diag(w), by Jacobi-preconditioned CG.

    Starts from y0 = b / w (0 where w = 0) and follows SciPy ``cg(A, b, x0, M, maxiter, rtol)`` step for
    step (stop when ||r|| < rtol·||b|| at the top of an iteration; r updated recursively), with the vector
    loops fused. Returns ``(y, iterations)``.
    """
    nv = b.shape[0]
    y = np.empty(nv, np.float64)
    inv_diag = np.empty(nv, np.float64)
    a_self = np.empty(nv, np.float64)  # A x = a_self ⊙ x − λ n ⊙ B(n ⊙ x), a_self = λ m_hat + w
    b_norm2 = 0.0
    for v in range(nv):
        y[v] = b[v] / w[v] if w[v] > 0.0 else 0.0
        a_self[v] = lam * m_hat[v] + w[v]
        inv_diag[v] = 1.0 / max(a_self[v] - lam * _CENTER * n[v] * n[v], diag_min)
        b_norm2 += b[v] * b[v]
    if b_norm2 == 0.0:
        return np.zeros(nv, np.float64), 0
    atol = rtol * np.sqrt(b_norm2)
    scaled = np.empty(nv + 1, np.float64)  # n ⊙ (vector to multiply), with the sentinel 0
    scaled[nv] = 0.0
    r = np.empty(nv, np.float64)
    p = np.empty(nv, np.float64)
    q = np.empty(nv, np.float64)
    # r = b − A y0
    for v in range(nv):
        scaled[v] = n[v] * y[v]
    for v in range(nv):
        acc = _CENTER * scaled[v]
        for k in range(2 * GRID_DIMS):
            acc += scaled[neighbors[v, k]]
        r[v] = b[v] - (a_self[v] * y[v] - lam * n[v] * acc)
    rho_prev = 1.0
    for it in range(max_iter):
        r_norm2 = 0.0
        rho = 0.0
        for v in range(nv):
            r_norm2 += r[v] * r[v]
            rho += r[v] * (inv_diag[v] * r[v])
        if np.sqrt(r_norm2) < atol:
            return y, it
        beta = rho / rho_prev if it > 0 else 0.0
        for v in range(nv):
            z = inv_diag[v] * r[v]
            p[v] = p[v] * beta + z if it > 0 else z
            scaled[v] = n[v] * p[v]
        p_q = 0.0
        for v in range(nv):
            acc = _CENTER * scaled[v]
            for k in range(2 * GRID_DIMS):
                acc += scaled[neighbors[v, k]]
            q[v] = a_self[v] * p[v] - lam * n[v] * acc
            p_q += p[v] * q[v]
        if not p_q > 0.0:  # breakdown (A is positive definite in exact arithmetic): keep the iterate
            return y, it
        alpha = rho / p_q
        for v in range(nv):
            y[v] += alpha * p[v]
            r[v] -= alpha * q[v]
        rho_prev = rho
    return y, max_iter


@njit(cache=True, nogil=True)
def slice_to(pixel_vertex: I32, y: F64, out: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Out (flat, per pixel) = Sᵀ y."""
    for p in range(pixel_vertex.shape[0]):
        out[p] = y[pixel_vertex[p]]
    return out
