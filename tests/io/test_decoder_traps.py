"""Files OpenCV decodes differently from the other readers are refused, not read as other values.

Found by an audit of the readers against Pillow and ``cv2.imread``: an animated PNG whose still image is
not its first animation frame (``cv2.imdecode`` returns the frame; Pillow and ``cv2.imread`` the still
image), and an RGBA TIFF with transparency (OpenCV multiplies the colours by the alpha).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from maskrefine.errors import InputError
from maskrefine.io import read_image, read_mask

Image = pytest.importorskip("PIL.Image", reason="Pillow (a scikit-image dependency) is not installed")


def _box_and_stripe() -> tuple[np.ndarray, np.ndarray]:
    box = np.zeros((24, 32), np.uint8)
    box[6:18, 8:24] = 255
    stripe = np.zeros((24, 32), np.uint8)
    stripe[:, :4] = 255
    return box, stripe


def test_an_animated_png_is_refused(tmp_path: Path) -> None:
    # the still image is the box; the animation (two stripes) does not include it: a prediction equal
    # to its GT scored IoU 0.125 under pysod and move
    box, stripe = _box_and_stripe()
    path = tmp_path / "apng.png"
    frames = [Image.fromarray(stripe), Image.fromarray(255 - stripe)]
    Image.fromarray(box).save(path, save_all=True, append_images=frames, default_image=True)
    assert np.array_equal(np.asarray(Image.open(path).convert("L")), box)  # what other readers return
    for read in (read_mask, read_image):
        with pytest.raises(InputError, match=r"apng.png: animated PNG \(APNG\): OpenCV decodes its first"):
            read(path)
    still = tmp_path / "still.png"
    Image.fromarray(box).save(still)
    assert np.array_equal(read_mask(still) > 0.5, box > 0)


@pytest.mark.parametrize("alpha", [0, 128])
def test_a_translucent_rgba_tiff_is_refused(tmp_path: Path, alpha: int) -> None:
    # read as gray * alpha / 255 (max 128, or an all-zero mask at alpha 0), and photos up to 155 codes off
    gray = (np.arange(24 * 32).reshape(24, 32) * 255 // (24 * 32 - 1)).astype(np.uint8)
    path = tmp_path / "rgba.tif"
    Image.fromarray(np.dstack([gray] * 3 + [np.full_like(gray, alpha)]), "RGBA").save(path)
    for read in (read_mask, read_image):
        with pytest.raises(InputError, match="rgba.tif: RGBA TIFF with transparency: OpenCV's TIFF decoder"):
            read(path)


def test_an_opaque_rgba_tiff_is_read_as_stored(tmp_path: Path) -> None:
    gray = (np.arange(24 * 32).reshape(24, 32) * 255 // (24 * 32 - 1)).astype(np.uint8)
    path = tmp_path / "opaque.tif"
    Image.fromarray(np.dstack([gray] * 3 + [np.full_like(gray, 255)]), "RGBA").save(path)
    np.testing.assert_array_equal(np.rint(read_mask(path) * 255).astype(np.uint8), gray)
    np.testing.assert_array_equal(np.rint(read_image(path)[:, :, 0] * 255).astype(np.uint8), gray)


def _gray_tiff_4bit(path: Path, values: np.ndarray) -> None:
    """An uncompressed 4-bit gray TIFF (one strip), written field by field."""
    h, w = values.shape
    padded = np.zeros((h, w + w % 2), np.uint8)
    padded[:, :w] = values
    pixels = (padded[:, 0::2] << 4 | padded[:, 1::2]).tobytes()
    # tag, type (3 SHORT, 4 LONG), value; the strip follows header 8, count 2, 9 entries, next-IFD 4
    entries = [
        (256, 4, w),
        (257, 4, h),
        (258, 3, 4),
        (259, 3, 1),
        (262, 3, 1),
        (273, 4, 8 + 2 + 9 * 12 + 4),
        (277, 3, 1),
        (278, 4, h),
        (279, 4, len(pixels)),
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        ifd += struct.pack("<HHI", tag, kind, 1) + (
            struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        )
    path.write_bytes(b"II*\0" + struct.pack("<I", 8) + ifd + b"\0\0\0\0" + pixels)


def test_a_tiff_opencv_cannot_decode_says_so(tmp_path: Path) -> None:
    # a 4-bit gray TIFF (Pillow reads it) was "not an image or truncated"
    path = tmp_path / "gray4.tif"
    values = np.arange(24 * 32).reshape(24, 32) % 16
    _gray_tiff_4bit(path, values)
    assert np.array_equal(np.asarray(Image.open(path)), values * 17)  # a valid file: Pillow reads it
    with pytest.raises(
        InputError, match=r"gray4.tif: cannot decode this TIFF \(.*\): truncated, or a layout"
    ):
        read_mask(path)
