"""Losses of PROTOCOL §5.3 and §6 on inputs whose values are known."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")

from maskrefine.torch import guided_filter, make_guide  # noqa: E402
from maskrefine.train import losses  # noqa: E402


def two_blocks(h: int = 4, w: int = 6):
    """Keys of two orthogonal blocks (left half, right half) and the matching indicator mask."""
    feats = torch.zeros(1, 3, h, w)
    feats[0, 0, :, : w // 2] = 1.0
    feats[0, 1, :, w // 2 :] = 1.0
    mask = torch.zeros(1, 1, h, w)
    mask[..., : w // 2] = 1.0
    return feats, mask


def test_ncut_perfect_split_is_zero_and_constant_half_is_one():
    feats, mask = two_blocks()
    # cut = Σ_{i∈A, j∈B} 1e-6 (+ clamp terms): ~1e-6 relative to the associations, so ~0.
    assert float(losses.ncut_loss(mask, feats)) == pytest.approx(0.0, abs=1e-5)
    assert float(losses.ncut_loss(1 - mask, feats)) == pytest.approx(0.0, abs=1e-5)
    assert float(losses.ncut_loss(torch.full_like(mask, 0.5), feats)) == pytest.approx(1.0, abs=1e-6)
    # a wrong split (top/bottom) cuts every row: cut/A + cut/B = 1 exactly here
    wrong = torch.zeros_like(mask)
    wrong[..., :2, :] = 1.0
    assert float(losses.ncut_loss(wrong, feats)) == pytest.approx(1.0, abs=1e-4)


def test_ncut_matches_dense_formula():
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(2, 5, 3, 4, generator=gen)
    s = torch.rand(2, 1, 3, 4, generator=gen)
    k = torch.nn.functional.normalize(feats.flatten(2).double(), dim=1)
    expected = []
    for b in range(2):
        w = torch.where(k[b].T @ k[b] > 0.4, 1.0, 1e-6).double()
        sb = s[b].flatten().double().clamp(1e-6, 1 - 1e-6)
        cut = sb @ w @ (1 - sb)
        expected.append(cut / max(sb @ w.sum(1), 1e-6) + cut / max((1 - sb) @ w.sum(1), 1e-6))
    assert float(losses.ncut_loss(s, feats)) == pytest.approx(float(sum(expected) / 2), rel=1e-5)


def test_gtv_of_constant_mask_is_zero():
    image = torch.rand(2, 3, 8, 8)
    assert float(losses.pixel_gtv_loss(torch.full((2, 1, 8, 8), 0.3), image)) == 0.0
    assert float(losses.feature_gtv_loss(torch.full((2, 1, 4, 4), 0.7), torch.rand(2, 5, 4, 4))) == 0.0


def test_pixel_gtv_matches_loop():
    gen = torch.Generator().manual_seed(1)
    image, mask = torch.rand(1, 3, 4, 5, generator=gen), torch.rand(1, 1, 4, 5, generator=gen)
    img, m = image[0].double().numpy(), mask[0, 0].double().numpy()
    pad_i = np.pad(img, ((0, 0), (1, 1), (1, 1)), mode="reflect")
    pad_m = np.pad(m, 1, mode="reflect")
    total = 0.0
    for y, x, (dy, dx) in itertools.product(
        range(4), range(5), [(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)]
    ):
        if (dy, dx) == (0, 0):
            continue
        w = np.exp(-((img[:, y, x] - pad_i[:, y + 1 + dy, x + 1 + dx]) ** 2).sum() / 1.0)
        total += w * (m[y, x] - pad_m[y + 1 + dy, x + 1 + dx]) ** 2
    assert float(losses.pixel_gtv_loss(mask, image)) == pytest.approx(total / (8 * 4 * 5), rel=1e-5)


def test_feature_gtv_only_counts_similar_neighbours():
    feats, mask = two_blocks()
    # the mask changes exactly at the block boundary, where the features differ: weight 1e-6
    assert float(losses.feature_gtv_loss(mask, feats)) < 1e-6
    # a mask that changes inside a block is penalised
    inside = torch.zeros_like(mask)
    inside[..., :1] = 1.0
    assert float(losses.feature_gtv_loss(inside, feats)) > 1e-2


def test_coarse_fine_consistency():
    fine = torch.rand(2, 1, 16, 16)
    down = torch.nn.functional.interpolate(fine, size=(2, 2), mode="bilinear", align_corners=False)
    assert float(losses.coarse_fine_loss(down, fine)) == pytest.approx(0.0, abs=1e-12)
    assert float(losses.coarse_fine_loss(down + 0.1, fine)) == pytest.approx(0.01, rel=1e-5)
    # bilinear /8 without antialias = mean of the 2x2 pixels at offsets 3-4 of each 8x8 patch (PROTOCOL §5.3)
    big = torch.rand(1, 1, 16, 16)
    expected = big[..., 3:5, 3:5].mean()
    coarse = torch.nn.functional.interpolate(big, size=(2, 2), mode="bilinear", align_corners=False)
    assert float(coarse[0, 0, 0, 0]) == pytest.approx(float(expected), rel=1e-6)


def test_crop_consistency_of_identical_masks_is_zero():
    m = torch.rand(2, 1, 8, 8)
    assert float(losses.crop_consistency_loss(m, m)) == 0.0


def test_crop_target_is_the_clamped_guided_filter_and_carries_no_gradient():
    gen = torch.Generator().manual_seed(2)
    image = torch.randn(2, 3, 32, 32, generator=gen)
    teacher = torch.rand(2, 1, 32, 32, generator=gen).requires_grad_(True)
    target = losses.crop_target(teacher, image, 9, 1e-3)
    assert not target.requires_grad
    expected = guided_filter(make_guide(image, "mean", normalized=True), teacher.detach(), 9, 1e-3)
    torch.testing.assert_close(target, expected.clamp(1e-6, 1 - 1e-6))
    assert float(target.min()) >= 1e-6 and float(target.max()) <= 1 - 1e-6
    student = torch.rand(2, 1, 32, 32, generator=gen).requires_grad_(True)
    losses.crop_consistency_loss(student, target).backward()
    assert teacher.grad is None  # stop-gradient: nothing reaches the teacher's mask
    assert student.grad is not None and float(student.grad.abs().sum()) > 0
