"""Float64 SciPy oracle of the fast bilateral solver, written from docs/filters.md §7 for reading, not speed.

:func:`maskrefine.filters.bilateral_solver` is tested against :func:`solve`. The steps are the ones of
the field's ``bilateral_solver.py`` with sparse matrices: splat matrix S (pixels -> vertices), blur
B = 2D·I + Σ_d (shift by -1 + shift by +1 along axis d), bistochastisation, and SciPy's Jacobi-
preconditioned ``cg``. Vertices are the distinct coordinate rows, keyed exactly by
``np.ravel_multi_index`` (which refuses a key space larger than int64 instead of wrapping).
:func:`base255_keys` is the published code's hash, kept only to show where it collides.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import cg

__all__ = ["grid_coordinates", "base255_keys", "solve"]


def grid_coordinates(
    rgb255: np.ndarray, sigma_spatial: float, sigma_luma: float, sigma_chroma: float
) -> np.ndarray:
    """(H·W, 5) int64 grid coordinates (x/σ_s, y/σ_s, Y/σ_l, U/σ_c, V/σ_c), truncated, of 0..255 RGB."""
    rgb = np.asarray(rgb255, dtype=np.float64)
    # one tensordot over the whole image, as the reference's rgb2yuv: its BLAS rounding decides the cell of
    # a pixel on a cell edge
    weights = [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]
    yuv = np.tensordot(rgb, np.array(weights), ([2], [1])) + np.array([0.0, 128.0, 128.0])
    luma, chroma_u, chroma_v = yuv[..., 0], yuv[..., 1], yuv[..., 2]
    ys, xs = np.mgrid[: rgb.shape[0], : rgb.shape[1]]
    coords = np.stack(
        [
            (xs / sigma_spatial).astype(np.int64),
            (ys / sigma_spatial).astype(np.int64),
            (luma / sigma_luma).astype(np.int64),
            (chroma_u / sigma_chroma).astype(np.int64),
            (chroma_v / sigma_chroma).astype(np.int64),
        ],
        axis=-1,
    )
    return coords.reshape(-1, 5)


def base255_keys(coords: np.ndarray) -> np.ndarray:
    """Return the TokenCut-family hash ``coords · 255**arange(5)``.

    It is exact only while every coordinate is < 255.
    """
    return np.asarray(coords, dtype=np.float64) @ (255.0 ** np.arange(coords.shape[1]))


def solve(
    rgb255: np.ndarray,
    target: np.ndarray,
    confidence: np.ndarray | float = 0.999,
    *,
    sigma_spatial: float = 16.0,
    sigma_luma: float = 16.0,
    sigma_chroma: float = 8.0,
    lam: float = 256.0,
    cg_iterations: int = 25,
    cg_tol: float = 1e-5,
    bistochastic_iterations: int = 10,
    diag_min: float = 1e-5,
) -> np.ndarray:
    """Soft solver output (float64, shape of ``target``) for a 0..255 RGB reference image."""
    target = np.asarray(target, dtype=np.float64)
    t = target.reshape(-1)
    c = np.broadcast_to(np.asarray(confidence, dtype=np.float64), target.shape).reshape(-1)
    coords = grid_coordinates(rgb255, sigma_spatial, sigma_luma, sigma_chroma)
    n_pixels, dims = coords.shape

    # vertices = distinct coordinate rows; exact integer keys (room for the -1/+1 neighbours)
    extent = coords.max(axis=0) + 3
    keys = np.ravel_multi_index(tuple((coords + 1).T), tuple(extent))
    vertex_keys, pixel_vertex = np.unique(keys, return_inverse=True)
    n_vertices = vertex_keys.size
    splat_matrix = sparse.csr_matrix(
        (np.ones(n_pixels), (pixel_vertex.ravel(), np.arange(n_pixels))), shape=(n_vertices, n_pixels)
    )

    vertex_coords = np.stack(np.unravel_index(vertex_keys, tuple(extent)), axis=-1)
    blur_matrix = 2.0 * dims * sparse.identity(n_vertices, format="csr")
    for d in range(dims):
        for offset in (-1, 1):
            shifted = vertex_coords.copy()
            shifted[:, d] += offset
            neighbour_keys = np.ravel_multi_index(tuple(shifted.T), tuple(extent))
            where = np.clip(np.searchsorted(vertex_keys, neighbour_keys), 0, n_vertices - 1)
            present = np.flatnonzero(vertex_keys[where] == neighbour_keys)
            blur_matrix = blur_matrix + sparse.csr_matrix(
                (np.ones(present.size), (present, where[present])), shape=(n_vertices, n_vertices)
            )

    # bistochastisation
    m = splat_matrix @ np.ones(n_pixels)
    n = np.ones(n_vertices)
    for _ in range(bistochastic_iterations):
        n = np.sqrt(n * m / (blur_matrix @ n))
    m = n * (blur_matrix @ n)
    d_n = sparse.diags(n)
    a_smooth = sparse.diags(m) - d_n @ blur_matrix @ d_n

    # solve (λ A_smooth + diag(S c)) y = S (c t), Jacobi preconditioner, start at S(c t) / S(c)
    w = splat_matrix @ c
    b = splat_matrix @ (c * t)
    a = (lam * a_smooth + sparse.diags(w)).tocsr()
    preconditioner = sparse.diags(1.0 / np.maximum(a.diagonal(), diag_min))
    y0 = np.divide(b, w, out=np.zeros_like(b), where=w > 0)
    y, _ = cg(a, b, x0=y0, M=preconditioner, maxiter=cg_iterations, rtol=cg_tol)
    return (splat_matrix.T @ y).reshape(target.shape)
