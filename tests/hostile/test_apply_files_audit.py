"""Audit of `apply`'s file reading (shared with `score`): encodings and names that were mishandled.

* an RGB (or gray) PNG with a ``tRNS`` colour key is a file without an alpha channel: its transparency
  is ignored like a palette's, not taken for an RGBA alpha channel;
* the scale mark of a maskrefine PNG re-saved at another bit depth (a tool that keeps text chunks) is
  stale: the file is read by the detection rules, not refused for an option the user never passed;
* a mask that fits its image turned upright by its EXIF orientation but not as stored (or the other way
  round with ``--apply-exif``) is refused with the reason and the option that fixes it;
* a file name with a newline still gives one ``error:`` line per failed file.

Each CLI case runs in the harness tree of ``conftest.py``: no traceback, the exit code, the file named,
nothing changed outside the outputs.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from maskrefine.io import read_mask_file
from maskrefine.io.imageio import encode_mask

Image = pytest.importorskip("PIL.Image", reason="Pillow (the dev extra) writes the EXIF files")

OUT = ["refined"]
HostileTree = Any  # tests/hostile/conftest.py


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(pixels: np.ndarray, color_type: int, extra: bytes = b"") -> bytes:
    """A non-interlaced PNG of ``pixels`` (H, W[, C]) uint8/uint16 with ``extra`` chunks before IDAT."""
    depth = 16 if pixels.dtype == np.uint16 else 8
    height, width = pixels.shape[:2]
    stored = pixels.astype(">u2") if depth == 16 else pixels
    raw = b"".join(b"\x00" + row.tobytes() for row in stored)
    header = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + extra
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


# ------------------------------------------------------------------------------- tRNS colour keys
@pytest.mark.parametrize("sixteen", [False, True], ids=["8-bit", "16-bit"])
def test_rgb_mask_with_a_colour_key_is_read_as_gray(tmp_path: Path, sixteen: bool) -> None:
    soft = (np.arange(6 * 8).reshape(6, 8) * 5).astype(np.uint8)
    values = soft.astype(np.uint16) * 257 if sixteen else soft
    key = struct.pack(">HHH", 0, 0, 0)  # black is transparent
    path = tmp_path / "mask.png"
    path.write_bytes(_png(np.dstack([values] * 3), 2, _chunk(b"tRNS", key)))
    read = read_mask_file(path)
    assert read.encoding == "gray saved as RGB"
    np.testing.assert_array_equal(read.pixels, values)


def test_apply_reads_an_rgb_colour_key_mask(hostile: HostileTree) -> None:
    mask = cv2.imread(str(hostile.path("masks/0002.png")), cv2.IMREAD_UNCHANGED)
    key = _chunk(b"tRNS", struct.pack(">HHH", 0, 0, 0))
    hostile.path("masks/0002.png").write_bytes(_png(np.dstack([mask] * 3), 2, key))
    result = hostile.run(*hostile.apply_args(), exit=0, out=OUT)
    assert "gray saved as RGB (1 file)" in result.stderr
    assert "RGBA" not in result.output


# ------------------------------------------------------------------------------- stale scale marks
def _resaved(marked: bytes, pixels: np.ndarray) -> bytes:
    """``pixels`` as a PNG carrying the text chunks of the maskrefine PNG ``marked`` (a tool kept them)."""
    ok, encoded = cv2.imencode(".png", pixels)
    assert ok
    data = encoded.tobytes()
    start, end = marked.index(b"tEXt") - 4, marked.index(b"IDAT") - 4
    return data[:33] + marked[start:end] + data[33:]


@pytest.mark.parametrize(("mark", "dtype", "top"), [("png8", np.uint16, 65535), ("png16", np.uint8, 255)])
def test_a_scale_mark_of_another_bit_depth_is_ignored(
    tmp_path: Path, mark: str, dtype: type, top: int
) -> None:
    mask = np.zeros((8, 8))
    mask[2:5, 2:5] = 1.0
    path = tmp_path / "mask.png"
    path.write_bytes(_resaved(encode_mask(mask, mark), (mask * top).astype(dtype)))
    read = read_mask_file(path)
    assert read.pixels.dtype == dtype and read.encoding == "plain"
    np.testing.assert_array_equal(read.to_unit(), mask)


def test_apply_reads_a_resaved_output_as_input(hostile: HostileTree) -> None:
    mask = cv2.imread(str(hostile.path("masks/0001.png")), cv2.IMREAD_UNCHANGED)
    marked = encode_mask(mask / 255.0, "png8")
    hostile.path("masks/0001.png").write_bytes(_resaved(marked, mask.astype(np.uint16) * 257))
    result = hostile.run(*hostile.apply_args(), exit=0, out=OUT)
    assert "--mask-scale 255" not in result.output


# ---------------------------------------------------------------------------------------------- EXIF
def _rotated_jpeg_and_masks(hostile: HostileTree) -> tuple[int, int]:
    """``images/0002.jpg`` stored 48x64 with EXIF orientation 6 (shown 64x48); its png removed.

    ``masks/0002.png`` is made for the stored pixels (12x16), ``masks/0003.png`` for the upright image
    (16x12) with ``images/0003.jpg`` rotated the same way. Returns the stored (H, W).
    """
    for stem in ("0002", "0003"):
        image = hostile.path(f"images/{stem}.png")
        stored = Image.open(image).convert("RGB")
        image.unlink()
        exif = stored.getexif()
        exif[0x0112] = 6
        stored.save(hostile.path(f"images/{stem}.jpg"), "JPEG", exif=exif.tobytes(), quality=95)
    upright = cv2.imread(str(hostile.path("masks/0003.png")), cv2.IMREAD_UNCHANGED)
    hostile.write_mask("masks/0003.png", np.ascontiguousarray(np.rot90(upright, -1)))
    return stored.height, stored.width


def test_mask_made_for_the_stored_pixels_under_apply_exif_says_so(hostile: HostileTree) -> None:
    _rotated_jpeg_and_masks(hostile)
    result = hostile.run(
        *hostile.apply_args("refined", "--apply-exif"), exit=1, names=["masks/0002.png"], out=OUT
    )
    line = next(x for x in result.stderr.splitlines() if x.startswith("error: masks/0002.png"))
    assert "EXIF orientation" in line and "drop --apply-exif" in line, line
    assert "48x64" in line and "64x48" in line, line
    assert "0003" not in result.stderr  # the mask made for the upright image fits
    assert hostile.path("refined/0001.png").exists() and hostile.path("refined/0003.png").exists()


def test_mask_made_for_the_upright_image_says_apply_exif(hostile: HostileTree) -> None:
    _rotated_jpeg_and_masks(hostile)
    result = hostile.run(*hostile.apply_args(), exit=1, names=["masks/0003.png"], out=OUT)
    line = next(x for x in result.stderr.splitlines() if x.startswith("error: masks/0003.png"))
    assert "EXIF orientation" in line and "pass --apply-exif" in line, line
    assert "0002" not in result.stderr  # fits the stored pixels, which are read by default
    assert hostile.path("refined/0002.png").exists()


@pytest.mark.parametrize("apply_exif", [True, False], ids=["apply-exif", "as-stored"])
def test_a_turned_tiff_says_the_decoder_turns_it_whatever_the_option(
    hostile: HostileTree, apply_exif: bool
) -> None:
    # the hint said "drop --apply-exif", which cannot help: OpenCV's TIFF decoder applies the tag anyway
    image = hostile.path("images/0002.png")
    stored = Image.open(image).convert("RGB")
    image.unlink()
    exif = stored.getexif()
    exif[0x0112] = 6
    stored.save(hostile.path("images/0002.tif"), "TIFF", exif=exif.tobytes())
    extra = ("--apply-exif",) if apply_exif else ()
    result = hostile.run(*hostile.apply_args("refined", *extra), exit=1, names=["masks/0002.png"], out=OUT)
    line = next(x for x in result.stderr.splitlines() if x.startswith("error: masks/0002.png"))
    assert "OpenCV's TIFF decoder turns it" in line and "whatever --apply-exif" in line, line
    assert "drop --apply-exif" not in line and "pass --apply-exif" not in line, line
    assert f"stored {stored.height}x{stored.width}" in line, line


def test_wrong_size_without_exif_keeps_the_plain_message(hostile: HostileTree) -> None:
    hostile.write_mask("masks/0002.png", np.zeros((20, 10), np.uint8))
    result = hostile.run(*hostile.apply_args(), exit=1, names=["masks/0002.png"], out=OUT)
    assert "aspect ratios differ" in result.stderr and "EXIF" not in result.stderr


# ------------------------------------------------------------------------------------------- names
def test_a_newline_in_a_failed_name_keeps_one_line_per_error(hostile: HostileTree) -> None:
    hostile.write_image("images/a\nb.png", np.zeros((48, 64, 3), np.uint8))
    hostile.path("masks/a\nb.png").write_bytes(b"")
    os.mkfifo(hostile.path("masks/c\nd.png"))
    hostile.write_image("images/c\nd.png", np.zeros((48, 64, 3), np.uint8))
    result = hostile.run(*hostile.apply_args(), exit=1, out=OUT)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "error: masks/a\\nb.png: file is empty (0 bytes)" in errors, result.stderr
    assert any(line.startswith("error: masks/c\\nd.png: is a FIFO") for line in errors), result.stderr
    assert not any(line.startswith(("b.png", "d.png")) for line in result.stderr.splitlines())


def test_a_newline_in_a_failed_name_keeps_one_line_per_error_in_score(hostile: HostileTree) -> None:
    hostile.write_image("gt/a\nb.png", np.zeros((48, 64), np.uint8))
    hostile.path("pred/a\nb.png").write_bytes(b"")
    result = hostile.run(*hostile.score_args(), exit=1)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert any(line.startswith("error: pred/a\\nb.png: ") for line in errors), result.stderr
    assert not any(line.startswith("b.png") for line in result.stderr.splitlines()), result.stderr


def test_c1_controls_and_line_separators_in_names_are_escaped(hostile: HostileTree) -> None:
    # was: U+0085 (next line), U+009B (the terminal's control-sequence introducer) and U+2028 printed raw:
    # str.splitlines() broke the error line in two, and a terminal could be driven by the name
    for name in ("nel\x85x", "csi\x9bx", "ls\u2028x"):
        hostile.write_image(f"images/{name}.png", np.zeros((48, 64, 3), np.uint8))
        hostile.path(f"masks/{name}.png").write_bytes(b"")
    result = hostile.run(*hostile.apply_args(), exit=1, out=OUT)
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    for escaped in ("nel\\x85x", "csi\\x9bx", "ls\\u2028x"):
        assert any(f"masks/{escaped}.png: file is empty" in line for line in errors), result.stderr
    assert not any(ch in result.stderr for ch in "\x85\x9b\u2028")


def test_usage_errors_naming_files_are_one_line(hostile: HostileTree) -> None:
    # was: "Error: 1 output(s) already exist in out (0000\nerror: forged line.png)" printed on two lines
    hostile.write_image("images/0000\nerror: forged line.png", np.zeros((48, 64, 3), np.uint8))
    hostile.write_mask("masks/0000\nerror: forged line.png", np.zeros((48, 64), np.uint8))
    hostile.run(*hostile.apply_args("refined", "--method", "identity"), exit=0, out=OUT)
    result = hostile.run(*hostile.apply_args("refined", "--method", "identity"), exit=2, out=OUT)
    lines = result.stderr.splitlines()
    assert any(line.startswith("Error: ") and "0000\\nerror: forged line.png" in line for line in lines), (
        lines
    )
    assert not any(line.startswith("error: forged") for line in lines), result.stderr


def test_score_baseline_prints_the_names_that_lost_iou_on_one_line(hostile: HostileTree) -> None:
    # was: "images that lost most IoU" printed the stem raw: a newline in it forged a second line
    name = "lost\nx: 1.0000 -> 0.0000"
    gt = np.zeros((48, 64), np.uint8)
    gt[10:30, 10:40] = 255
    hostile.write_mask(f"gt/{name}.png", gt)
    hostile.write_mask(f"pred/{name}.png", np.zeros((48, 64), np.uint8))  # refined: lost everything
    base = hostile.path("base")
    base.mkdir()
    for path in hostile.path("pred").iterdir():
        (base / path.name).write_bytes(path.read_bytes())
    hostile.write_mask(f"base/{name}.png", gt)  # the baseline had it right
    result = hostile.run(*hostile.score_args("--baseline", "base"), exit=0)
    lines = result.stdout.splitlines()
    assert "  lost\\nx: 1.0000 -> 0.0000: 1.0000 -> 0.0000 (-1.0000)" in lines, result.stdout
    assert not any(line.startswith("x: ") for line in lines)
