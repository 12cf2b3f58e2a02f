"""Torch-only augmentation (PROTOCOL §5.4) and the image-folder dataset."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")

from maskrefine.errors import InputError  # noqa: E402
from maskrefine.train import data  # noqa: E402


def test_hsv_round_trip_and_matches_colorsys():
    rgb = torch.rand(3, 5, 7, generator=torch.Generator().manual_seed(0))
    hsv = data._rgb_to_hsv(rgb)
    for y, x in [(0, 0), (2, 3), (4, 6)]:
        expected = colorsys.rgb_to_hsv(*rgb[:, y, x].tolist())
        assert hsv[:, y, x].tolist() == pytest.approx(expected, abs=1e-5)
    torch.testing.assert_close(data._hsv_to_rgb(hsv), rgb, atol=1e-5, rtol=0)


def test_grayscale_rec601():
    image = torch.rand(3, 4, 4)
    gray = data.to_grayscale(image)
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    torch.testing.assert_close(gray[0], 0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2])


def test_jitter_zero_strength_is_identity_and_seeded():
    image = torch.rand(3, 8, 8)
    none = data.Augment(brightness=0, contrast=0, saturation=0, hue=0)
    torch.testing.assert_close(
        data.colour_jitter(image, none, torch.Generator().manual_seed(0)), image, atol=1e-6, rtol=0
    )
    aug = data.Augment()
    a = data.colour_jitter(image, aug, torch.Generator().manual_seed(3))
    b = data.colour_jitter(image, aug, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.allclose(a, image)
    assert float(a.min()) >= 0 and float(a.max()) <= 1


def test_resize_shorter_side():
    assert data.resize_shorter(torch.rand(3, 100, 150), 335).shape == (3, 335, 502)
    # torchvision's Resize(335) truncates the longer side: int(335 * 400 / 300) = 446 (rounding gave 447)
    assert data.resize_shorter(torch.rand(3, 400, 300), 335).shape == (3, 446, 335)
    assert data.resize_shorter(torch.rand(3, 321, 481), 335).shape == (3, 335, 501)  # 501.96 -> 501


def _write_images(folder, n=3, size=(50, 70)):
    import cv2

    rng = np.random.default_rng(0)
    for i in range(n):
        cv2.imwrite(str(folder / f"im{i}.png"), rng.integers(0, 255, (*size, 3), dtype=np.uint8))


def test_dataset_items_deterministic_per_epoch(tmp_path):
    _write_images(tmp_path)
    (tmp_path / "notes.txt").write_text("not an image")
    ds = data.ImageFolder(tmp_path, image_size=32, resize=40, augment=data.Augment(), seed=7)
    assert len(ds) == 3
    image, index = ds[1]
    assert image.shape == (3, 32, 32) and index == 1 and image.dtype == torch.float32
    assert torch.equal(ds[1][0], image)
    ds.epoch = 1
    assert not torch.equal(ds[1][0], image)
    other = data.ImageFolder(tmp_path, image_size=32, resize=40, augment=data.Augment(), seed=8)
    assert not torch.equal(other[1][0], image)


def test_dataset_names_an_unreadable_file(tmp_path):
    _write_images(tmp_path, n=1)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    ds = data.ImageFolder(tmp_path, image_size=32, resize=40, augment=data.Augment(), seed=0)
    with pytest.raises(InputError, match=r"broken\.jpg"):
        ds[0]
