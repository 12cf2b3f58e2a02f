"""Brute-force O(N²) mean-field of the two-label dense CRF, written for reading (tests only).

Same model and update as :mod:`maskrefine.filters.dense_crf`, with explicit kernel matrices:
K_ij = exp(-|f_i - f_j|² / 2) over all pairs (i = j included, as in densecrf's lattice filtering),
symmetric normalisation D^{-1/2} K D^{-1/2} with D = K·1, Potts messages added to the logits of the
label they agree with, softmax over labels.
"""

from __future__ import annotations

import numpy as np

from maskrefine.filters.dense_crf import _bilateral_features, _positions, _unary_difference


def gaussian_kernel(features: np.ndarray) -> np.ndarray:
    f = np.asarray(features, dtype=np.float64)
    sq = ((f[:, None, :] - f[None, :, :]) ** 2).sum(-1)
    return np.exp(-0.5 * sq)


def normalised(kernel: np.ndarray) -> np.ndarray:
    norm = 1.0 / np.sqrt(kernel @ np.ones(kernel.shape[0]) + 1e-20)
    return norm[:, None] * kernel * norm[None, :]


def kernels_of(image: np.ndarray, g_sxy=3.0, b_sxy=80.0, b_srgb=13.0) -> tuple[np.ndarray, np.ndarray]:
    h, w = image.shape[:2]
    return gaussian_kernel(_positions(h, w, g_sxy)), gaussian_kernel(
        _bilateral_features(image, b_sxy, b_srgb)
    )


def mean_field(
    unary: np.ndarray, kernels: list[np.ndarray], weights: list[float], iterations: int
) -> np.ndarray:
    """``unary`` (N, 2) energies; returns Q (N, 2) after ``iterations`` parallel updates."""
    logits = -unary
    q = np.exp(logits - logits.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    mats = [normalised(k) for k in kernels]
    for _ in range(iterations):
        logits = -unary.copy()
        for mat, w in zip(mats, weights, strict=True):
            logits += w * (mat @ q)
        q = np.exp(logits - logits.max(1, keepdims=True))
        q /= q.sum(1, keepdims=True)
    return q


def unary_of(prob: np.ndarray, gt_prob=None) -> np.ndarray:
    diff = _unary_difference(prob, gt_prob)  # U1 - U0; only the difference matters
    return np.stack([np.zeros_like(diff), diff], axis=1)


def free_energy(q: np.ndarray, unary: np.ndarray, kernels: list[np.ndarray], weights: list[float]) -> float:
    """Mean-field free energy E_Q[E] - H(Q) of the model (symmetric kernels)."""
    q = np.asarray(q, dtype=np.float64)
    pair = sum(w * np.sum(q * (normalised(k) @ q)) for k, w in zip(kernels, weights, strict=True))
    entropy = -np.sum(q * np.log(np.clip(q, 1e-300, None)))
    return float(np.sum(q * unary) - 0.5 * pair - entropy)
