"""The mask reader's encodings and overrides, EXIF orientation, header-only size checks and limits,
.npy headers, non-regular files in input folders, and the [0, 1] tolerance of the filters."""

from __future__ import annotations

import io
import os
import re
import signal
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskrefine import guided_filter
from maskrefine.errors import InputError
from maskrefine.io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    MASK_EXTENSIONS,
    PLAIN,
    imageio,
    match_folders,
    read_image,
    read_mask,
    read_mask_array,
    read_mask_file,
)
from maskrefine.io.headers import HeaderError, read_image_header

Image = pytest.importorskip("PIL.Image", reason="Pillow (the dev extra) writes the palette/LA/EXIF files")


def _png(path: Path, array: np.ndarray) -> Path:
    ok, data = cv2.imencode(".png", array)
    assert ok
    path.write_bytes(data.tobytes())
    return path


def _pil(path: Path, image: object, **kwargs: object) -> Path:
    image.save(path, **kwargs)  # type: ignore[attr-defined]
    return path


@pytest.fixture
def no_hang() -> Iterator[None]:
    """Fail (instead of hanging forever) if a test blocks on a FIFO."""

    def timeout(signum: int, frame: object) -> None:
        raise TimeoutError("blocked: a FIFO was opened")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(10)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


GRAY = np.array([[0, 128], [255, 7]], np.uint8)


# ------------------------------------------------------------------------------------------- encodings
def test_plain_8_and_16_bit(tmp_path: Path) -> None:
    m8 = read_mask_file(_png(tmp_path / "a.png", GRAY))
    assert m8.encoding == PLAIN and m8.pixels.dtype == np.uint8
    np.testing.assert_array_equal(m8.pixels, GRAY)
    wide = np.array([[0, 65535], [300, 7]], np.uint16)
    m16 = read_mask_file(_png(tmp_path / "b.png", wide))
    assert m16.encoding == PLAIN and m16.pixels.dtype == np.uint16
    np.testing.assert_array_equal(m16.pixels, wide)
    empty = read_mask_file(_png(tmp_path / "c.png", np.zeros((3, 3), np.uint8)))
    assert empty.encoding == PLAIN and not empty.pixels.any()


def test_stored_bits_name_the_files_sample_depth(tmp_path: Path) -> None:
    # a 1-bit PNG reads as 0/255 like an 8-bit one (plain), but some references' scripts read it as 0/1
    bits1 = _pil(tmp_path / "one.png", Image.fromarray(GRAY > 100).convert("1"))
    read = read_mask_file(bits1)
    assert read.encoding == PLAIN and read.stored_bits == 1
    np.testing.assert_array_equal(read.pixels, np.where(GRAY > 100, 255, 0))
    assert read_mask_file(_png(tmp_path / "a.png", GRAY)).stored_bits == 8
    assert read_mask_file(_png(tmp_path / "b.png", GRAY.astype(np.uint16) * 257)).stored_bits == 16
    assert cv2.imwrite(str(tmp_path / "c.bmp"), GRAY)
    assert read_mask_file(tmp_path / "c.bmp").stored_bits == 8
    np.save(tmp_path / "d.npy", GRAY / 255.0)
    assert read_mask_file(tmp_path / "d.npy").stored_bits is None


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_zero_one_values_become_0_255(tmp_path: Path, dtype: type) -> None:
    binary = np.array([[0, 1], [1, 0]], dtype)
    read = read_mask_file(_png(tmp_path / "m.png", binary))
    assert read.encoding == ("0/1 values" if dtype == np.uint8 else "0/1 values in a 16-bit file")
    assert read.pixels.dtype == np.uint8
    np.testing.assert_array_equal(read.pixels, binary.astype(np.uint8) * 255)
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), binary.astype(np.float32))


def test_16_bit_file_with_8_bit_values(tmp_path: Path) -> None:
    values = np.array([[0, 255], [128, 3]], np.uint16)
    read = read_mask_file(_png(tmp_path / "m.png", values))
    assert read.encoding == "8-bit values in a 16-bit file"
    assert read.pixels.dtype == np.uint8
    np.testing.assert_array_equal(read.pixels, values)
    np.testing.assert_allclose(read_mask(tmp_path / "m.png"), values / 255.0, atol=1e-7)


def test_rgb_with_equal_channels_is_gray(tmp_path: Path) -> None:
    read = read_mask_file(_png(tmp_path / "m.png", np.dstack([GRAY, GRAY, GRAY])))
    assert read.encoding == "gray saved as RGB"
    np.testing.assert_array_equal(read.pixels, GRAY)


def test_rgba_mask_in_alpha_with_constant_colour(tmp_path: Path) -> None:
    colour = np.full((2, 2), 40, np.uint8)
    bgra = np.dstack([colour, colour + 1, colour + 2, GRAY])  # constant (not gray) colour, varying alpha
    read = read_mask_file(_png(tmp_path / "m.png", bgra))
    assert read.encoding == "alpha channel of RGBA"
    np.testing.assert_array_equal(read.pixels, GRAY)


def test_rgba_alpha_equal_to_gray_colour_and_opaque_gray(tmp_path: Path) -> None:
    same = read_mask_file(_png(tmp_path / "same.png", np.dstack([GRAY, GRAY, GRAY, GRAY])))
    assert same.encoding == "alpha channel of RGBA"
    np.testing.assert_array_equal(same.pixels, GRAY)
    opaque = np.full_like(GRAY, 255)
    read = read_mask_file(_png(tmp_path / "opaque.png", np.dstack([GRAY, GRAY, GRAY, opaque])))
    assert read.encoding == "gray saved as RGBA"
    np.testing.assert_array_equal(read.pixels, GRAY)


def test_rgba_with_varying_colour_and_alpha_is_refused(tmp_path: Path) -> None:
    path = _png(tmp_path / "ambiguous.png", np.dstack([GRAY, 255 - GRAY, GRAY, GRAY[::-1]]))
    with pytest.raises(InputError, match="cannot tell which one holds the mask") as info:
        read_mask(path)
    assert info.value.path == path and "ambiguous.png" in str(info.value)


def test_gray_alpha_png(tmp_path: Path) -> None:
    la = np.dstack([np.full((2, 2), 9, np.uint8), GRAY])
    read = read_mask_file(_pil(tmp_path / "la.png", Image.fromarray(la, "LA")))
    assert read.encoding == "alpha channel of gray+alpha"
    np.testing.assert_array_equal(read.pixels, GRAY)
    opaque = np.dstack([GRAY, np.full((2, 2), 255, np.uint8)])
    read = read_mask_file(_pil(tmp_path / "opaque.png", Image.fromarray(opaque, "LA")))
    assert read.encoding == "gray in a gray+alpha file"
    np.testing.assert_array_equal(read.pixels, GRAY)
    both = np.dstack([GRAY, GRAY[::-1]])
    with pytest.raises(InputError, match="gray\\+alpha mask whose colour and alpha channels both vary"):
        read_mask(_pil(tmp_path / "both.png", Image.fromarray(both, "LA")))


def _palette_png(path: Path, indices: np.ndarray, palette: list[int]) -> Path:
    image = Image.fromarray(indices.astype(np.uint8), "P")
    image.putpalette(palette + [0] * (768 - len(palette)))
    return _pil(path, image)


def test_palette_of_grays_gives_the_gray_values(tmp_path: Path) -> None:
    path = _palette_png(
        tmp_path / "p.png", np.array([[0, 1], [2, 1]]), [0, 0, 0, 200, 200, 200, 255, 255, 255]
    )
    read = read_mask_file(path)
    assert read.encoding == "palette of grays"
    np.testing.assert_array_equal(read.pixels, [[0, 200], [255, 200]])


def test_palette_of_black_and_one_colour_is_zero_one(tmp_path: Path) -> None:
    # the VOC palette: index 0 black, index 1 dark red
    path = _palette_png(tmp_path / "voc.png", np.array([[0, 1], [1, 0]]), [0, 0, 0, 128, 0, 0])
    read = read_mask_file(path)
    assert read.encoding == "palette of two colours (black 0, other 1)"
    np.testing.assert_array_equal(read.pixels, [[0, 255], [255, 0]])
    # an explicit scale reads the same (the colour was read as 1/255 under 255 once; 0/1 was refused,
    # naming values up to 255 that the file does not hold: its colours are not numbers)
    for scale in ("255", "1"):
        np.testing.assert_array_equal(read_mask_file(path, mask_scale=scale).pixels, [[0, 255], [255, 0]])
    with pytest.raises(InputError, match="needs a 16-bit file"):
        read_mask_file(path, mask_scale="65535")


def test_palette_of_grays_under_scale_one_says_what_it_read(tmp_path: Path) -> None:
    path = _palette_png(tmp_path / "p.png", np.array([[0, 1]]), [0, 0, 0, 255, 255, 255])
    with pytest.raises(InputError, match="must be 0 or 1; found palette colours read as grays up to 255"):
        read_mask_file(path, mask_scale="1")
    path = _palette_png(tmp_path / "dim.png", np.array([[0, 1]]), [0, 0, 0, 1, 1, 1])  # grays 0 and 1
    np.testing.assert_array_equal(read_mask_file(path, mask_scale="1").pixels, [[0, 255]])


def test_palette_label_map_is_refused(tmp_path: Path) -> None:
    path = _palette_png(tmp_path / "labels.png", np.array([[0, 1], [2, 1]]), [0, 0, 0, 128, 0, 0, 0, 128, 0])
    with pytest.raises(InputError, match="labels.png: palette PNG using 3 colours .* a label map"):
        read_mask(path)


# ------------------------------------------------------------------------------------------- overrides
@pytest.mark.parametrize(
    ("values", "dtype", "scale", "expected"),
    [
        ([[0, 1]], np.uint8, "255", [[0, 1]]),  # a dim 8-bit mask, not 0/1
        ([[0, 1]], np.uint8, 255, [[0, 1]]),
        ([[0, 1]], np.uint8, "1", [[0, 255]]),
        ([[0, 1]], np.uint8, 1, [[0, 255]]),
        ([[0, 200]], np.uint16, "255", [[0, 200]]),
        ([[0, 200]], np.uint16, "65535", [[0, 200]]),  # kept 16-bit: 200 / 65535
        ([[0, 1]], np.uint16, 65535, [[0, 1]]),
        ([[0, 1]], np.uint16, "1", [[0, 255]]),
        ([[0, 1]], np.uint8, np.int64(255), [[0, 1]]),  # NumPy integers are integers
        ([[0, 1]], np.uint16, np.uint16(65535), [[0, 1]]),
    ],
)
def test_mask_scale_override(
    tmp_path: Path, values: list[list[int]], dtype: type, scale: object, expected: list[list[int]]
) -> None:
    path = _png(tmp_path / "m.png", np.array(values, dtype))
    read = read_mask_file(path, mask_scale=scale)  # type: ignore[arg-type]
    assert read.encoding == PLAIN
    np.testing.assert_array_equal(read.pixels, expected)
    assert read.pixels.dtype == (np.uint16 if str(scale) == "65535" else np.uint8)


@pytest.mark.parametrize(
    ("values", "dtype", "scale", "problem"),
    [
        ([[0, 2]], np.uint8, "1", "values must be 0 or 1; found values up to 2"),
        ([[0, 300]], np.uint16, "255", "values must be at most 255; found values up to 300"),
        ([[0, 255]], np.uint8, "65535", "needs a 16-bit file; this one is 8-bit"),
    ],
)
def test_mask_scale_override_refuses_values_it_cannot_hold(
    tmp_path: Path, values: list[list[int]], dtype: type, scale: str, problem: str
) -> None:
    path = _png(tmp_path / "m.png", np.array(values, dtype))
    with pytest.raises(InputError, match=problem) as info:
        read_mask(path, mask_scale=scale)
    assert info.value.path == path


@pytest.mark.parametrize(
    "scale", ["", "256", 0, 2.0, True, None, np.bool_(True), np.float64(255), np.int64(256)]
)
def test_bad_mask_scale_is_refused(tmp_path: Path, scale: object) -> None:
    path = _png(tmp_path / "m.png", GRAY)
    with pytest.raises(ValueError, match="`mask_scale` must be one of auto, 255, 1, 65535"):
        read_mask(path, mask_scale=scale)  # type: ignore[arg-type]


def test_npy_is_plain_and_ignores_mask_scale(tmp_path: Path) -> None:
    np.save(tmp_path / "m.npy", np.array([[0.0, 0.25]], np.float32))
    read = read_mask_file(tmp_path / "m.npy", mask_scale="1")
    assert read.encoding == PLAIN and read.pixels.dtype == np.float32
    np.testing.assert_array_equal(read.pixels, [[0.0, 0.25]])


# ------------------------------------------------------------------------------------------------ EXIF
def _exif_jpeg(path: Path, orientation: int) -> np.ndarray:
    """A 20x40 JPEG whose stored left half is white, tagged with ``orientation``; returns the stored RGB."""
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = 255
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(path, "JPEG", exif=exif.tobytes(), quality=100)
    return stored


def test_apply_exif_turns_the_image_upright(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    _exif_jpeg(path, 6)  # 6: rotate 90 degrees clockwise to display
    upright = read_image(path, apply_exif=True)
    assert upright.shape == (40, 20, 3)
    # the stored left half (white) is the displayed top half
    assert upright[:18].min() > 0.9 and upright[22:].max() < 0.1
    # what PIL shows after ImageOps.exif_transpose (viewers show the same)
    from PIL import ImageOps

    shown = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"), np.float32) / 255
    assert np.abs(upright - shown).max() < 0.05


@pytest.mark.parametrize("orientation", [2, 3, 6, 8])
def test_images_are_read_as_stored_by_default(tmp_path: Path, orientation: int) -> None:
    """What the references read: ``PIL.Image.open(p).convert("RGB")`` does not apply the tag."""
    path = tmp_path / "photo.jpg"
    stored_codes = _exif_jpeg(path, orientation)
    stored = read_image(path)
    assert stored.shape == (20, 40, 3)
    assert stored[:, :18].min() > 0.9 and stored[:, 22:].max() < 0.1
    pil = np.asarray(Image.open(path).convert("RGB"), np.float32) / 255
    assert pil.shape == stored.shape and np.abs(pil - stored).max() < 0.05
    assert np.abs(stored * 255 - stored_codes).max() < 12  # JPEG quality 100: close to what was stored
    assert np.array_equal(read_image(path, apply_exif=False), stored)


def test_exif_orientation_1_and_untagged_are_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    _exif_jpeg(path, 1)
    assert read_image(path).shape == (20, 40, 3)


# ------------------------------------------------------------------------------ headers and max_pixels
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose IHDR claims width x height (8-bit gray): a decompression bomb's header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


@pytest.fixture
def no_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("cv2.imdecode was called")

    monkeypatch.setattr(imageio.cv2, "imdecode", refuse)


@pytest.mark.parametrize("reader", [read_image, read_mask])
def test_png_claiming_30000_squared_is_refused_from_its_header(
    tmp_path: Path, no_decode: None, reader
) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_claiming(30000, 30000))
    with pytest.raises(InputError) as info:
        reader(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert (
        "30000x30000 (HxW) = 900,000,000 pixels (900.0 MP)" in message
        and f"limit of {DEFAULT_MAX_PIXELS} pixels" in message
    )
    assert "--max-pixels" in message and "not decoded" in message


@pytest.mark.parametrize(
    ("ext", "params"),
    [(".png", []), (".jpg", []), (".bmp", []), (".tif", []), (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80])],
)
def test_max_pixels_from_each_format_header(tmp_path: Path, ext: str, params: list[int]) -> None:
    path = tmp_path / f"img{ext}"
    ok, data = cv2.imencode(ext, np.full((23, 37, 3), 99, np.uint8), params)
    path.write_bytes(data.tobytes())
    assert read_image(path, max_pixels=23 * 37).shape == (23, 37, 3)
    assert read_image(path, max_pixels=None).shape == (23, 37, 3)
    with pytest.raises(InputError, match=r"23x37 \(HxW\) = 851 pixels, more than the limit of 850 pixels"):
        read_image(path, max_pixels=850)


@pytest.mark.parametrize(
    ("fmt", "kwargs"),
    [
        ("WEBP", {"lossless": True}),  # VP8L
        ("WEBP", {"quality": 80}),  # VP8
        ("TIFF", {"big_tiff": True}),
        ("JPEG", {"progressive": True}),
        ("BMP", {}),
    ],
)
def test_header_parser_matches_pillow(fmt: str, kwargs: dict[str, object]) -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((23, 37, 3), np.uint8)).save(buffer, fmt, **kwargs)
    data = buffer.getvalue()
    header = read_image_header(lambda offset, count: data[offset : offset + count])
    assert (header.width, header.height) == (37, 23)


def test_header_parser_vp8x_and_refusals() -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((23, 37, 4), np.uint8), "RGBA").save(buffer, "WEBP")
    data = buffer.getvalue()
    assert data[12:16] == b"VP8X"
    header = read_image_header(lambda offset, count: data[offset : offset + count])
    assert (header.width, header.height) == (37, 23)
    for bad, problem in [
        (b"GIF89a" + b"\x00" * 40, "not a PNG, JPEG, BMP, TIFF or WebP file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "truncated PNG header"),
        (b"\xff\xd8\xff\xd9", "JPEG without a frame header"),
    ]:
        with pytest.raises(HeaderError, match=problem):
            read_image_header(lambda offset, count, bad=bad: bad[offset : offset + count])


def test_bad_max_pixels(tmp_path: Path) -> None:
    path = _png(tmp_path / "m.png", GRAY)
    with pytest.raises(ValueError, match="`max_pixels` must be >= 1"):
        read_mask(path, max_pixels=0)
    with pytest.raises(TypeError, match="`max_pixels` must be a positive integer or None"):
        read_image(path, max_pixels=1.5)  # type: ignore[arg-type]


def test_4_gib_non_image_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []
    real_pread = os.pread

    def counting_pread(fd: int, count: int, offset: int) -> bytes:
        reads.append(count)
        return real_pread(fd, count, offset)

    monkeypatch.setattr(os, "pread", counting_pread)
    path = tmp_path / "huge.png"
    with open(path, "wb") as handle:
        handle.truncate(4 << 30)  # sparse: takes no disk space
    for reader in (read_mask, read_image):
        with pytest.raises(InputError, match="huge.png: cannot decode as an image: not a PNG, JPEG"):
            reader(path)
    assert sum(reads) < 1 << 16


def test_4_gib_file_behind_a_small_png_header_is_not_read(tmp_path: Path, no_decode: None) -> None:
    path = tmp_path / "padded.png"
    path.write_bytes(_png_claiming(10, 10))
    with open(path, "r+b") as handle:
        handle.truncate(4 << 30)
    with pytest.raises(
        InputError, match=r"padded.png: file is 4294967296 bytes, more than an image .* not read"
    ):
        read_image(path)


# ------------------------------------------------------------------------------------------------- npy
def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize("keep", [5, 40, 100, 127])
def test_truncated_npy_header_says_so(tmp_path: Path, keep: int) -> None:
    path = tmp_path / "cut.npy"
    path.write_bytes(_npy_bytes(np.zeros((4, 4), np.float32))[:keep])
    with pytest.raises(
        InputError, match="cut.npy: cannot load as a NumPy .npy array: the header is truncated"
    ) as e:
        read_mask(path)
    assert "ast." not in str(e.value) and "object at 0x" not in str(e.value)


def test_truncated_npy_data_says_how_much(tmp_path: Path) -> None:
    path = tmp_path / "cut.npy"
    data = _npy_bytes(np.zeros((4, 4), np.float32))
    path.write_bytes(data[:-10])
    with pytest.raises(
        InputError,
        match=r"truncated .npy file: its header promises a \(4, 4\) float32 array "
        r"\(64 bytes of data\) but the file holds 54 bytes",
    ):
        read_mask(path)


def test_npy_header_claiming_a_huge_array_is_refused_before_loading(tmp_path: Path) -> None:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (30000, 30000)}
    )
    path = tmp_path / "bomb.npy"
    path.write_bytes(header.getvalue() + b"\x00" * 64)
    with pytest.raises(
        InputError,
        match=r"bomb.npy: mask array is 30000x30000 \(HxW\) = 900,000,000 pixels \(900.0 MP\), more than",
    ):
        read_mask(path)


def test_npy_object_and_fortran_arrays(tmp_path: Path) -> None:
    np.save(tmp_path / "obj.npy", np.array([[None]], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="must be bool or float"):
        read_mask(tmp_path / "obj.npy")
    fortran = np.asfortranarray(np.linspace(0, 1, 12, dtype=np.float64).reshape(3, 4))
    np.save(tmp_path / "f.npy", fortran)
    np.testing.assert_allclose(read_mask(tmp_path / "f.npy"), fortran, atol=1e-7)


def test_float_error_is_tolerated_and_clipped(tmp_path: Path) -> None:
    np.save(tmp_path / "m.npy", np.array([[-1e-7, 0.5, 1.0000001]], np.float64))
    mask = read_mask(tmp_path / "m.npy")
    assert mask.min() == 0.0 and mask.max() == 1.0


def test_out_of_range_npy_says_how_far(tmp_path: Path) -> None:
    np.save(tmp_path / "m.npy", np.array([[0.0003007, 1.5]], np.float32))
    with pytest.raises(InputError, match=r"found \[0.0003007, 1.5\]: the maximum is 0.5 above 1"):
        read_mask(tmp_path / "m.npy")
    np.save(tmp_path / "n.npy", np.array([[-0.25, 1.0]], np.float32))
    with pytest.raises(InputError, match=r"the minimum is 0.25 below 0 \(values within 1e-06"):
        read_mask(tmp_path / "n.npy")


# ---------------------------------------------------------------------------------- non-regular files
def _odd_entries(folder: Path) -> dict[str, str]:
    """A FIFO, a dangling symlink, a symlink loop and a folder, named like masks; name -> reason."""
    os.mkfifo(folder / "fifo.png")
    (folder / "dangling.png").symlink_to(folder / "missing.png")
    (folder / "loop.png").symlink_to(folder / "loop.png")
    (folder / "folder.png").mkdir()
    return {
        "fifo.png": "a FIFO (named pipe)",
        "dangling.png": "a dangling symlink",
        "loop.png": "a symlink loop",
        "folder.png": "a folder",
    }


def test_readers_refuse_non_regular_files_without_opening_them(tmp_path: Path, no_hang: None) -> None:
    for name, reason in _odd_entries(tmp_path).items():
        for reader in (read_mask, read_image, read_mask_array):
            with pytest.raises(
                InputError, match=re.escape(f"{name}: is {reason}, not a regular file; not read")
            ):
                reader(tmp_path / name)
    os.mkfifo(tmp_path / "fifo.npy")
    with pytest.raises(InputError, match="fifo.npy: is a FIFO"):
        read_mask(tmp_path / "fifo.npy")
    with pytest.raises(InputError, match="null.png: is a character device"):
        (tmp_path / "null.png").symlink_to("/dev/null")
        read_image(tmp_path / "null.png")


def test_match_folders_names_skipped_entries_and_follows_good_symlinks(tmp_path: Path, no_hang: None) -> None:
    masks, images, elsewhere = tmp_path / "m", tmp_path / "i", tmp_path / "elsewhere"
    for folder in (masks, images, elsewhere):
        folder.mkdir()
    reasons = _odd_entries(masks)
    _png(elsewhere / "real.png", GRAY)
    (masks / "linked.png").symlink_to(elsewhere / "real.png")
    for stem in ("fifo", "dangling", "loop", "folder", "linked"):
        _png(images / f"{stem}.png", np.dstack([GRAY] * 3))
    pairing = match_folders(masks, images, MASK_EXTENSIONS, IMAGE_EXTENSIONS)
    assert [p.stem for p in pairing.pairs] == ["linked"]
    assert {item.path.name: item.reason for item in pairing.skipped} == reasons
    assert pairing.only_first == [] and pairing.only_second == []  # not "image only in images"
    assert read_mask_array(pairing.pairs[0].first).tolist() == GRAY.tolist()


# ------------------------------------------------------------------------------------ [0, 1] checks
def test_guided_filter_refuses_a_0_255_guide() -> None:
    guide = np.linspace(0, 255, 32 * 32, dtype=np.float32).reshape(32, 32)
    src = np.full((32, 32), 0.5, np.float32)
    with pytest.raises(
        ValueError,
        match=r"`guide` values must lie in \[0, 1\]; found \[0, 255\]: the maximum "
        r"is 254 above 1 .*Divide an 8-bit guide by 255",
    ):
        guided_filter(guide, src, 2)
    with pytest.raises(ValueError, match="the minimum is 0.5 below 0"):
        guided_filter(guide / 255 - 0.5, src, 2)


def test_guided_filter_tolerates_float_error_in_the_guide() -> None:
    guide = np.linspace(0, 1, 32 * 32, dtype=np.float64).reshape(32, 32)
    src = np.full((32, 32), 0.5, np.float32)
    exact = guided_filter(guide, src, 2)
    nudged = guide.copy()
    nudged[-1, -1] = 1.0000001
    nudged[0, 0] = -1e-7
    np.testing.assert_allclose(guided_filter(nudged, src, 2), exact, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, ">f8"])
def test_npy_float_masks_keep_their_type_for_scoring(tmp_path: Path, dtype: object) -> None:
    # the scorer compares a map in the type its reference would hold (TokenCut: the array's own dtype)
    values = np.array([[0.0, 1 / 3], [254 / 255, 1.0]], dtype=dtype)
    np.save(tmp_path / "m.npy", values)
    read = read_mask_file(tmp_path / "m.npy")
    assert read.pixels.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(read.pixels, values)
    # the filters' reader gives float32
    assert read_mask(tmp_path / "m.npy").dtype == np.float32


def _npy_with_shape(shape_text: str) -> bytes:
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_text + ", }"
    header = header + " " * (63 - len(header) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + b"\0" * 64


@pytest.mark.parametrize(
    ("shape_text", "max_pixels", "problem"),
    [
        ("(-1, 4)", None, r"invalid shape \(-1, 4\)"),
        ("(2, -3)", 100, r"invalid shape \(2, -3\)"),
        # 2**32 x 2**32 overflowed an int64 product to 0 ("mask array is empty") before
        ("(4294967296, 4294967296)", 100, "more than the limit of 100 pixels"),
        ("(4294967296, 4294967296)", None, "truncated .npy file: its header promises"),
    ],
)
def test_npy_header_with_a_hostile_shape_is_named(
    tmp_path: Path, shape_text: str, max_pixels: int | None, problem: str
) -> None:
    path = tmp_path / "h.npy"
    path.write_bytes(_npy_with_shape(shape_text))
    with pytest.raises(InputError, match=problem):
        read_mask_file(path, max_pixels=max_pixels)


@pytest.mark.parametrize("suffix", [".tif", ".png"])
def test_a_gray_alpha_tiff_mask_is_refused_not_read_as_its_gray(tmp_path: Path, suffix: str) -> None:
    # OpenCV decodes a gray+alpha TIFF as its gray channel alone: a mask held in alpha (constant gray)
    # was read as an all-foreground "plain" mask, also through `apply` (typed by content: a .png name too)
    from maskrefine.io import read_mask_file

    alpha = np.zeros((16, 20), np.uint8)
    alpha[4:10, 5:15] = 255
    path = tmp_path / f"la{suffix}"
    Image.fromarray(np.dstack([np.full_like(alpha, 255), alpha]), "LA").save(path, format="TIFF")
    before = path.read_bytes()
    with pytest.raises(InputError, match="gray\\+alpha TIFF: OpenCV's TIFF decoder drops the alpha channel"):
        read_mask_file(path)
    assert path.read_bytes() == before
    # a gray TIFF and an RGBA TIFF (which OpenCV decodes with its alpha) are still read
    Image.fromarray(alpha, "L").save(tmp_path / "gray.tif")
    assert np.array_equal(read_mask_file(tmp_path / "gray.tif").pixels, alpha)
    rgba = np.dstack([np.full_like(alpha, 255)] * 3 + [alpha])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.tif")
    read = read_mask_file(tmp_path / "rgba.tif")
    assert np.array_equal(read.pixels, alpha) and read.encoding == "alpha channel of RGBA"


def test_a_count_just_over_the_pixel_limit_is_given_exactly(tmp_path):
    # "100.0 MP, more than the limit of 100000000 pixels" read as the limit itself
    path = tmp_path / "big.npy"
    header = np.lib.format
    with open(path, "wb") as handle:
        header.write_array_header_1_0(
            handle, {"descr": "<f4", "fortran_order": False, "shape": (10001, 10000)}
        )
    with pytest.raises(
        InputError, match=r"= 100,010,000 pixels \(100.0 MP\), more than the limit of 100000000"
    ):
        read_mask(path)
