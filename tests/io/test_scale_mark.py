"""PNGs written by maskrefine carry their scale (a tEXt chunk), so faint masks read back as written."""

from __future__ import annotations

import numpy as np
import pytest

from maskrefine.io.headers import png_text, png_text_chunk
from maskrefine.io.imageio import SCALE_KEYWORD, encode_mask, read_mask_file, write_mask


def _faint() -> np.ndarray:
    mask = np.zeros((20, 30), np.float32)
    mask[3:5, 4:9] = 0.003  # 8-bit code 1; 16-bit code 197
    mask[10, 10] = 0.002
    return mask


@pytest.mark.parametrize(("fmt", "step"), [("png8", 255), ("png16", 65535)])
def test_faint_masks_round_trip(tmp_path, fmt, step):
    path = tmp_path / "m.png"
    write_mask(path, _faint(), fmt)
    read = read_mask_file(path)
    # without the mark, "auto" takes an 8-bit file whose largest value is 1 for a 0/1 mask (0.003 -> 1.0)
    # and a 16-bit file whose values stay <= 255 for 8-bit values (0.003 -> 0.77)
    assert read.encoding == "plain"
    assert np.abs(read.to_unit() - _faint()).max() <= 0.5 / step + 1e-7


def test_unmarked_files_keep_the_detection_and_explicit_scales_win(tmp_path):
    import cv2

    zero_one = (_faint() > 0).astype(np.uint8)
    plain = tmp_path / "plain.png"
    assert cv2.imwrite(str(plain), zero_one)
    assert read_mask_file(plain).encoding == "0/1 values" and read_mask_file(plain).to_unit().max() == 1.0
    marked = tmp_path / "marked.png"
    write_mask(marked, _faint(), "png8")
    assert read_mask_file(marked, mask_scale="1").to_unit().max() == 1.0  # the user's scale wins


def test_the_mark_is_a_valid_png_chunk(tmp_path):
    data = encode_mask(_faint(), "png8")
    assert png_text(data, SCALE_KEYWORD) == b"scale=255"
    assert png_text(encode_mask(_faint(), "png16"), SCALE_KEYWORD) == b"scale=65535"
    assert png_text(data, b"other") is None
    assert png_text(b"not a png", SCALE_KEYWORD) is None
    assert png_text(data[:40], SCALE_KEYWORD) in (None, b"scale=255")  # cut short: no exception
    chunk = png_text_chunk(b"k", b"v")
    assert chunk[:4] == (len(b"k\0v")).to_bytes(4, "big") and chunk[4:8] == b"tEXt"
    image = pytest.importorskip("PIL.Image", reason="Pillow (extra `dev`) checks the chunk CRCs")
    path = tmp_path / "m.png"
    path.write_bytes(data)
    with image.open(path) as opened:
        opened.load()  # raises on a bad CRC
        assert opened.text.get("maskrefine") == "scale=255"


def test_an_all_zero_16_bit_mask_is_plain(tmp_path):
    import cv2

    path = tmp_path / "zero16.png"
    assert cv2.imwrite(str(path), np.zeros((4, 5), np.uint16))
    read = read_mask_file(path)
    assert read.encoding == "plain" and read.to_unit().max() == 0.0
