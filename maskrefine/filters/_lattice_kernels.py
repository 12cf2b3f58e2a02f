"""Numba permutohedral lattice (Adams, Baek & Davis 2010) and two-label mean-field of the dense CRF.

No validation, no I/O. The lattice follows the construction used by Krähenbühl & Koltun's densecrf
(elevation of the d-dimensional feature onto the hyperplane of Z^{d+1}, nearest remainder-0 point, rank
sort, barycentric weights, d+1 enclosing vertices; blur [1/2 1 1/2] along each of the d+1 lattice
directions; slice with the same barycentric weights, times 1 / (1 + 2^-d)). Lattice vertices are found
with :mod:`maskrefine.filters._hashgrid` (exact key comparison). Vertex arrays have a leading sentinel
entry 0 that stands for "no neighbour" and always holds 0.

Two labels need one filtered channel per kernel and iteration: with Q0 = 1 − Q1 and a linear filter,
the message of label 0 is the filtered constant minus the message of label 1.
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

from maskrefine._jit import njit
from maskrefine.filters._hashgrid import find, find_or_insert, grow, new_table

__all__ = [
    "build_lattice",
    "lattice_filter",
    "blur_grid",
    "splat_points",
    "slice_points",
    "update_points",
]

I32: TypeAlias = npt.NDArray[np.int32]
F32: TypeAlias = npt.NDArray[np.float32]
F64: TypeAlias = npt.NDArray[np.float64]
#: ``(offsets, weights, blur_neighbors)`` of :func:`build_lattice`.
Lattice: TypeAlias = tuple[I32, F32, I32]


@njit(cache=True, nogil=True)
def build_lattice(features: F32) -> Lattice:
    """Lattice of ``features`` (N, d) float32 (already divided by their standard deviations).

    Returns ``(offsets, weights, blur_neighbors)``: (N, d+1) int32 vertex indices (1-based; 0 = sentinel),
    (N, d+1) float32 barycentric weights, and (d+1, M+1, 2) int32 neighbour indices along each lattice
    direction (1-based; 0 = absent).
    """
    n_points, d = features.shape
    scale = np.empty(d, np.float64)
    inv_std = np.sqrt(2.0 / 3.0) * (d + 1)
    for i in range(d):
        scale[i] = inv_std / np.sqrt((i + 1.0) * (i + 2.0))
    canonical = np.empty((d + 1, d + 1), np.int32)
    for i in range(d + 1):
        for j in range(d + 1 - i):
            canonical[i, j] = i
        for j in range(d + 1 - i, d + 1):
            canonical[i, j] = i - (d + 1)

    offsets = np.empty((n_points, d + 1), np.int32)
    weights = np.empty((n_points, d + 1), np.float32)
    slots, keys = new_table(max(1024, n_points // 8), d)
    count = 0
    elevated = np.empty(d + 1, np.float64)
    rem0 = np.empty(d + 1, np.int32)
    rank = np.empty(d + 1, np.int32)
    resid = np.empty(d + 1, np.float64)
    bary = np.empty(d + 2, np.float64)
    key = np.empty(d, np.int32)
    prev_rem0 = np.zeros(d + 1, np.int32)
    prev_rank = np.zeros(d + 1, np.int32)
    down = 1.0 / (d + 1)
    for k in range(n_points):
        total = 0.0
        for j in range(d, 0, -1):
            cf = features[k, j - 1] * scale[j - 1]
            elevated[j] = total - j * cf
            total += cf
        elevated[0] = total
        remainder_sum = 0
        for i in range(d + 1):
            v = down * elevated[i]
            up = np.ceil(v) * (d + 1)
            lo = np.floor(v) * (d + 1)
            rem0[i] = np.int32(up if up - elevated[i] < elevated[i] - lo else lo)
            remainder_sum += rem0[i]
        remainder_sum //= d + 1
        for i in range(d + 1):
            rank[i] = 0
            resid[i] = elevated[i] - rem0[i]
        for i in range(d):
            for j in range(i + 1, d + 1):
                below = np.int32(resid[i] < resid[j])  # branch-free: the comparisons are unpredictable
                rank[i] += below
                rank[j] += 1 - below
        for i in range(d + 1):
            rank[i] += remainder_sum
            if rank[i] < 0:
                rank[i] += d + 1
                rem0[i] += d + 1
            elif rank[i] > d:
                rank[i] -= d + 1
                rem0[i] -= d + 1
        for i in range(d + 2):
            bary[i] = 0.0
        for i in range(d + 1):
            v = (elevated[i] - rem0[i]) * down
            bary[d - rank[i]] += v
            bary[d - rank[i] + 1] -= v
        bary[0] += 1.0 + bary[d + 1]
        for r in range(d + 1):
            weights[k, r] = bary[r]
        # neighbouring points often lie in the same simplex: reuse its vertices without hashing
        same = k > 0
        for i in range(d + 1):
            if rem0[i] != prev_rem0[i] or rank[i] != prev_rank[i]:
                same = False
                break
        if same:
            for r in range(d + 1):
                offsets[k, r] = offsets[k - 1, r]
            continue
        prev_rem0[:] = rem0
        prev_rank[:] = rank
        for r in range(d + 1):
            for i in range(d):
                key[i] = rem0[i] + canonical[r, rank[i]]
            if count == keys.shape[0]:
                slots, keys = grow(slots, keys, count)
            index, count = find_or_insert(slots, keys, count, key)
            offsets[k, r] = index + 1

    blur_neighbors = np.zeros((d + 1, count + 1, 2), np.int32)
    n1 = np.empty(d, np.int32)
    n2 = np.empty(d, np.int32)
    for j in range(d + 1):
        for v in range(count):
            for i in range(d):
                n1[i] = keys[v, i] - 1
                n2[i] = keys[v, i] + 1
            if j < d:
                n1[j] = keys[v, j] + d
                n2[j] = keys[v, j] - d
            blur_neighbors[j, v + 1, 0] = find(slots, keys, n1) + 1
            blur_neighbors[j, v + 1, 1] = find(slots, keys, n2) + 1
    return offsets, weights, blur_neighbors


@njit(cache=True, nogil=True)
def blur_grid(blur_neighbors: I32, grid: F64, scratch: F64) -> F64:
    """In place: [1/2 1 1/2] along each lattice direction in turn (``scratch`` same size as ``grid``)."""
    src, dst = grid, scratch
    dst[0] = 0.0
    n_vertices = grid.shape[0]
    for j in range(blur_neighbors.shape[0]):
        for v in range(1, n_vertices):
            dst[v] = src[v] + 0.5 * (src[blur_neighbors[j, v, 0]] + src[blur_neighbors[j, v, 1]])
        src, dst = dst, src
    if blur_neighbors.shape[0] % 2 == 1:
        grid[:] = scratch
    return grid


@njit(cache=True, nogil=True)
def splat_points(offsets: I32, weights: F32, values: F64, lo: int, hi: int, grid: F64) -> None:
    """Grid += splat of ``values[lo:hi]`` (barycentric weights)."""
    for k in range(lo, hi):
        x = values[k]
        for r in range(offsets.shape[1]):
            grid[offsets[k, r]] += weights[k, r] * x


@njit(cache=True, nogil=True)
def slice_points(offsets: I32, weights: F32, grid: F64, lo: int, hi: int, out: F64) -> None:
    """out[lo:hi] = slice of ``grid`` times 1 / (1 + 2^-d)."""
    alpha = 1.0 / (1.0 + 2.0 ** (-(offsets.shape[1] - 1)))
    for k in range(lo, hi):
        acc = 0.0
        for r in range(offsets.shape[1]):
            acc += weights[k, r] * grid[offsets[k, r]]
        out[k] = alpha * acc


@njit(cache=True, nogil=True)
def update_points(
    lo: int,
    hi: int,
    unary_diff: F64,
    lattices: tuple[Lattice, ...],
    compat: F64,
    alphas: F64,
    norms: F64,
    constant: F64,
    blurred: F64,
    q1: F64,
    next_grids: F64,
    splat_next: bool,
) -> None:
    """Run one mean-field update of points lo..hi, fused.

    Slices the blurred grids of the current Q1 into the messages, computes the logits
    −(U1 − U0) + Σ_k w_k (2·m1_k − c_k) (m0_k = c_k − m1_k for two labels, c_k the filtered constant),
    sets Q1 = sigmoid and (if ``splat_next``) splats norms_k·Q1 into ``next_grids``. ``alphas`` holds
    each lattice's slice factor 1 / (1 + 2^-d).
    """
    n_kernels = compat.shape[0]
    for i in range(lo, hi):
        logit = -unary_diff[i]
        for kk in range(n_kernels):
            offsets, weights, _ = lattices[kk]
            acc = 0.0
            for r in range(offsets.shape[1]):
                acc += weights[i, r] * blurred[kk, offsets[i, r]]
            logit += compat[kk] * (2.0 * norms[kk, i] * alphas[kk] * acc - constant[kk, i])
        q = 1.0 / (1.0 + np.exp(-logit))
        q1[i] = q
        if splat_next:
            for kk in range(n_kernels):
                offsets, weights, _ = lattices[kk]
                x = norms[kk, i] * q
                for r in range(offsets.shape[1]):
                    next_grids[kk, offsets[i, r]] += weights[i, r] * x


@njit(cache=True, nogil=True)
def lattice_filter(
    offsets: I32, weights: F32, blur_neighbors: I32, values: F64, out: F64, grid: F64, scratch: F64
) -> F64:
    """Write the approximately Gaussian-filtered ``values`` into ``out`` (splat, blur, slice), serially.

    ``grid`` and ``scratch`` are float64 of length M+1.
    """
    grid[:] = 0.0
    splat_points(offsets, weights, values, 0, values.shape[0], grid)
    blur_grid(blur_neighbors, grid, scratch)
    slice_points(offsets, weights, grid, 0, values.shape[0], out)
    return out
