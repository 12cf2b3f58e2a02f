"""Dense CRF: lattice mean-field vs brute-force O(N²) mean-field, energy, symmetry, pydensecrf golden."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from crf_bruteforce import free_energy, kernels_of, mean_field, unary_of

from maskrefine.filters import _lattice_kernels as kernels
from maskrefine.filters.dense_crf import _bilateral_features, _positions, dense_crf

SETTINGS = [(3.0, 80.0, 13.0), (1.5, 5.0, 20.0), (3.0, 10.0, 30.0)]


def _tiny(seed: int = 0, h: int = 12, w: int = 14):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    inside = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (min(h, w) / 3) ** 2
    image = np.where(inside[..., None], [0.8, 0.3, 0.2], [0.2, 0.5, 0.7]) + rng.normal(0, 0.05, (h, w, 3))
    image = (np.round(np.clip(image, 0, 1) * 255) / 255).astype(np.float32)
    prob = np.clip(inside * 0.6 + 0.2 + rng.normal(0, 0.25, (h, w)), 0, 1)
    return image, prob


def _lattice_matrix(features: np.ndarray) -> np.ndarray:
    """The lattice filter as an explicit N x N matrix (column i = filtered unit vector i)."""
    offsets, weights, neighbors = kernels.build_lattice(features)
    n = features.shape[0]
    matrix = np.zeros((n, n))
    unit = np.zeros(n)
    out = np.empty(n)
    grid_a = np.empty(neighbors.shape[1])
    grid_b = np.empty(neighbors.shape[1])
    for i in range(n):
        unit[:] = 0.0
        unit[i] = 1.0
        kernels.lattice_filter(offsets, weights, neighbors, unit, out, grid_a, grid_b)
        matrix[:, i] = out
    return matrix


@pytest.mark.parametrize(("g_sxy", "b_sxy", "b_srgb"), SETTINGS)
def test_mean_field_equals_brute_force_with_the_lattice_kernel(g_sxy, b_sxy, b_srgb):
    """Inference itself is exact: with the lattice's own kernel matrices the O(N²) update agrees."""
    image, prob = _tiny()
    h, w = prob.shape
    mats = [
        _lattice_matrix(_positions(h, w, g_sxy)),
        _lattice_matrix(_bilateral_features(image, b_sxy, b_srgb)),
    ]
    slow = mean_field(unary_of(prob), mats, [3.0, 10.0], 10)[:, 1].reshape(h, w)
    fast = dense_crf(
        image, prob, gaussian_sxy=g_sxy, bilateral_sxy=b_sxy, bilateral_srgb=b_srgb, iterations=10
    )
    assert np.abs(fast - slow).max() < 1e-6


@pytest.mark.parametrize(("g_sxy", "b_sxy", "b_srgb"), SETTINGS)
def test_close_to_brute_force_with_exact_gaussians(g_sxy, b_sxy, b_srgb):
    """Against exact Gaussian kernels the lattice approximation (normalised kernels differ by up to
    0.03 here) moves Q by at most 0.06 after one iteration and 1e-3 once converged; labels agree."""
    image, prob = _tiny()
    h, w = prob.shape
    exact = list(kernels_of(image, g_sxy, b_sxy, b_srgb))
    for iterations, tol in ((1, 0.06), (10, 1e-3)):
        slow = mean_field(unary_of(prob), exact, [3.0, 10.0], iterations)[:, 1].reshape(h, w)
        fast = dense_crf(
            image, prob, gaussian_sxy=g_sxy, bilateral_sxy=b_sxy, bilateral_srgb=b_srgb, iterations=iterations
        )
        assert np.abs(fast - slow).max() < tol
        np.testing.assert_array_equal(fast > 0.5, slow > 0.5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_free_energy_decreases_over_iterations(seed):
    image, prob = _tiny(seed)
    unary = unary_of(prob)
    exact = list(kernels_of(image))
    energies = []
    for iterations in range(6):
        q = dense_crf(image, prob, iterations=iterations).reshape(-1).astype(np.float64)
        energies.append(free_energy(np.stack([1 - q, q], axis=1), unary, exact, [3.0, 10.0]))
    assert energies[-1] < energies[0] - 1.0
    assert all(b <= a + 1e-3 for a, b in zip(energies[:-1], energies[1:], strict=True))


@pytest.mark.parametrize("gt_prob", [None, 0.8])
def test_label_swap_symmetry(gt_prob):
    image, prob = _tiny()
    q = dense_crf(image, prob, gt_prob=gt_prob)
    swapped = dense_crf(image, 1.0 - prob, gt_prob=gt_prob)
    np.testing.assert_allclose(q + swapped, 1.0, atol=1e-6)
    binary = (prob > 0.5).astype(np.float64)
    np.testing.assert_allclose(dense_crf(image, binary) + dense_crf(image, 1 - binary), 1.0, atol=1e-6)


def test_binary_mask_gets_gt_prob_confidence():
    image, prob = _tiny()
    binary = (prob > 0.5).astype(np.float64)
    q0 = dense_crf(image, binary, iterations=0)
    np.testing.assert_allclose(q0, np.where(binary > 0, 0.7, 0.3), atol=1e-6)
    np.testing.assert_allclose(
        dense_crf(image, binary, iterations=0, gt_prob=0.9), np.where(binary > 0, 0.9, 0.1), atol=1e-6
    )


def test_constant_probability_and_no_pairwise():
    image, _ = _tiny()
    q = dense_crf(image, np.full((12, 14), 0.3), gaussian_compat=0, bilateral_compat=0)
    np.testing.assert_allclose(q, 0.3, atol=1e-6)


def test_inputs_not_modified():
    image, prob = _tiny()
    copies = image.copy(), prob.copy()
    dense_crf(image, prob)
    np.testing.assert_array_equal(image, copies[0])
    np.testing.assert_array_equal(prob, copies[1])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"preset": "densecrf"}, ValueError, "preset"),
        ({"bilateral_sxy": -3.0}, ValueError, "bilateral_sxy"),
        ({"bilateral_srgb": float("inf")}, ValueError, "bilateral_srgb"),
        ({"gaussian_sxy": "3"}, TypeError, "gaussian_sxy"),
        ({"bilateral_compat": -1.0}, ValueError, "bilateral_compat"),
        ({"iterations": -1}, ValueError, "iterations"),
        ({"iterations": 10**6}, ValueError, "iterations"),
        ({"iterations": 2.0}, TypeError, "iterations"),
        ({"gt_prob": 1.0}, ValueError, "gt_prob"),
        ({"gt_prob": 1.5}, ValueError, "gt_prob"),
        # a confidence of 0.5 ignored the mask (empty output) and below 0.5 inverted it, silently
        ({"gt_prob": 0.5}, ValueError, "gt_prob` must lie above 0.5 and below 1"),
        ({"gt_prob": 0.3}, ValueError, "gt_prob"),
        ({"gt_prob": 1e-6}, ValueError, "gt_prob"),
    ],
)
def test_bad_parameters(kwargs, error, match):
    image, prob = _tiny()
    with pytest.raises(error, match=match):
        dense_crf(image, prob, **kwargs)


def test_bad_arrays():
    image, prob = _tiny()
    with pytest.raises(ValueError, match="prob"):
        dense_crf(image, prob * 255)
    with pytest.raises(ValueError, match="prob"):
        dense_crf(image, prob[:3])
    with pytest.raises(TypeError, match="image"):
        dense_crf((image * 255).astype(np.uint8), prob)


@pytest.mark.slow
@pytest.mark.data
def test_golden_against_pydensecrf(sod_dir):
    dcrf = pytest.importorskip("pydensecrf.densecrf", reason="pydensecrf2 not installed (extra `crf-peer`)")
    from pydensecrf.utils import unary_from_softmax

    names = sorted(p.stem for p in (sod_dir / "images").glob("*.jpg"))[:30]
    ious, q_diffs = [], []
    for name in names:
        image8 = np.ascontiguousarray(cv2.imread(str(sod_dir / "images" / f"{name}.jpg"))[:, :, ::-1])
        pred = cv2.imread(str(sod_dir / "predictions" / "Amulet" / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
        pred = cv2.resize(pred, image8.shape[1::-1]).astype(np.float64) / 255
        h, w = pred.shape
        crf = dcrf.DenseCRF2D(w, h, 2)
        probs = np.stack([1 - pred, pred]).reshape(2, -1)
        crf.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(probs)))
        crf.addPairwiseGaussian(sxy=3, compat=3)
        crf.addPairwiseBilateral(sxy=80, srgb=13, rgbim=image8, compat=10)
        q_peer = np.asarray(crf.inference(10))[1].reshape(h, w)
        q_ours = dense_crf(image8.astype(np.float32) / 255, pred)
        q_diffs.append(float(np.abs(q_peer - q_ours).max()))
        peer, ours = q_peer > 0.5, q_ours > 0.5
        union = np.count_nonzero(peer | ours)
        ious.append(np.count_nonzero(peer & ours) / union if union else 1.0)
    # measured 2026-12-01: median 5.1e-6, max 9.0e-3 (3 of 30 above 1e-4), min IoU 0.99996
    assert float(np.median(q_diffs)) <= 2e-5, sorted(q_diffs)
    assert min(ious) >= 0.999, f"min IoU {min(ious):.5f}"


def test_threaded_chunks_give_the_serial_result(monkeypatch):
    import importlib

    module = importlib.import_module("maskrefine.filters.dense_crf")

    image, prob = _tiny(h=40, w=50)
    serial = dense_crf(image, prob)
    monkeypatch.setattr(module, "_MIN_POINTS_PER_THREAD", 100)
    monkeypatch.setattr(module, "_num_threads", lambda: 3)
    np.testing.assert_allclose(dense_crf(image, prob), serial, atol=1e-6)


def test_unaries_are_pydensecrfs_unary_from_softmax():
    # -log(clip(p, 1e-5, 1)) in float32 (the upper clip used to be 1 - 1e-5, and float64)
    from maskrefine.filters.dense_crf import _unary_difference

    p = np.array([1.0, 0.3, 0.0, 1e-7, 0.5])
    expected = [
        float(np.float32(-np.log(max(v, 1e-5)))) - float(np.float32(-np.log(max(1 - v, 1e-5)))) for v in p
    ]
    assert _unary_difference(p, None).tolist() == expected
    assert _unary_difference(np.array([1.0]), None)[0] == float(np.float32(-np.log(0.7))) - float(
        np.float32(-np.log(0.3))
    )  # an all-binary mask: unary_from_labels with gt_prob 0.7


def test_deep_spectral_unaries_are_simplecrfs_compute_unary():
    # SimpleCRF (deep-spectral-segmentation's CRF): each probability as float32, clipped to [0.01, 0.99],
    # -log; a one-hot (0/1) mask gets 0.99 / 0.01 from the clip alone (no gt_prob). Was pydensecrf's 1e-5
    # clip with gt_prob 0.7, which moved 6 to 18 labels of 9600 against deep-spectral's output.
    from maskrefine.baseline_presets import CRF_PRESETS
    from maskrefine.filters.dense_crf import _unary_difference

    preset = CRF_PRESETS["deep_spectral"]
    p = np.array([1.0, 0.0, 0.999, 0.3, 0.005])

    def u(v):
        return float(
            np.float32(-np.log(np.float64(np.clip(np.float32(v), np.float32(0.01), np.float32(0.99)))))
        )

    expected = [u(v) - u(1.0 - v) for v in p]
    assert _unary_difference(p, None, preset).tolist() == expected
    binary = _unary_difference(np.array([1.0, 0.0]), None, preset)
    assert binary[0] == u(1.0) - u(0.0) and binary[1] == -binary[0]  # 0.99 vs 0.01, not 0.7 vs 0.3
    image, prob = _tiny()
    soft = dense_crf(image, prob, preset="deep_spectral")
    assert not np.array_equal(soft, dense_crf(image, prob, preset="deep_spectral", gt_prob=0.7))


@pytest.mark.parametrize("seed", [0, 1])
def test_deep_spectral_labels_match_a_simplecrf_emulation_with_pydensecrf(seed):
    dcrf = pytest.importorskip(
        "pydensecrf.densecrf", reason="pydensecrf (a bench peer) is the reference here"
    )
    gen = np.random.default_rng(seed)
    h, w = 40, 60
    yy, xx = np.mgrid[:h, :w]
    disc = ((yy - 20) ** 2 + (xx - 30) ** 2 < 150).astype(np.float64)
    prob = np.clip(disc * 0.8 + 0.1 + gen.normal(0, 0.15, (h, w)), 0, 1)
    prob[5:12, 5:12] = np.where(gen.random((7, 7)) < 0.5, 0.999, 0.001)  # confident noise the clip decides
    image = np.clip(disc[..., None] * 0.6 + 0.2 + gen.normal(0, 0.05, (h, w, 3)), 0, 1)
    rgb = np.rint(image * 255).astype(np.uint8)
    probs = np.stack([1 - prob, prob]).astype(np.float32)
    unary = -np.log(np.clip(probs, np.float32(0.01), np.float32(0.99)).astype(np.float64))
    crf = dcrf.DenseCRF2D(w, h, 2)
    crf.setUnaryEnergy(np.ascontiguousarray(unary.astype(np.float32).reshape(2, -1)))
    crf.addPairwiseBilateral(sxy=40, srgb=13, rgbim=np.ascontiguousarray(rgb), compat=6)
    crf.addPairwiseGaussian(sxy=3, compat=3)
    reference = np.argmax(np.array(crf.inference(5)).reshape(2, h, w), axis=0) == 1
    ours = dense_crf(rgb / 255.0, prob, preset="deep_spectral") > 0.5
    assert np.count_nonzero(ours != reference) == 0


def test_out_of_range_prob_is_named_with_its_value():
    image, prob = _tiny()
    prob = prob.astype(np.float64)
    prob[0, 0] = 1.00001  # beyond the 1e-6 tolerance that every [0, 1] input gets
    with pytest.raises(ValueError, match=r"found \[.*, 1\.00001\]"):  # was "found [0, 1]"
        dense_crf(image, prob)


@pytest.mark.parametrize("binary", [False, True])
def test_deeplab_v2_preset_matches_the_copied_deeplab_v2_crf_with_pydensecrf(binary):
    # deeplab-pytorch's crf.py (as MaskContrast and STEGO copy it): unary_from_softmax of every mask,
    # Gaussian sxy 1 compat 3, bilateral sxy 67 srgb 3 compat 4, 10 iterations
    dcrf = pytest.importorskip(
        "pydensecrf.densecrf", reason="pydensecrf (a bench peer) is the reference here"
    )
    from pydensecrf.utils import unary_from_softmax

    gen = np.random.default_rng(7)
    h, w = 48, 64
    yy, xx = np.mgrid[:h, :w]
    disc = ((yy - 24) ** 2 + (xx - 30) ** 2 < 200).astype(np.float64)
    prob = np.clip(disc * 0.7 + 0.15 + gen.normal(0, 0.2, (h, w)), 0, 1)
    if binary:
        prob = (prob > 0.5).astype(np.float64)
    image = np.clip(disc[..., None] * 0.5 + 0.25 + gen.normal(0, 0.03, (h, w, 3)), 0, 1)
    rgb = np.ascontiguousarray(np.rint(image * 255).astype(np.uint8))
    crf = dcrf.DenseCRF2D(w, h, 2)
    crf.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(np.stack([1 - prob, prob]))))
    crf.addPairwiseGaussian(sxy=1, compat=3)
    crf.addPairwiseBilateral(sxy=67, srgb=3, rgbim=rgb, compat=4)
    q_peer = np.asarray(crf.inference(10))[1].reshape(h, w)
    q_ours = dense_crf(rgb / 255.0, prob, preset="deeplab_v2")
    assert float(np.abs(q_ours - q_peer).max()) < 1e-3
    assert np.count_nonzero((q_ours > 0.5) != (q_peer > 0.5)) == 0
