"""Tests of maskrefine.io: pairing, readers (with their error messages) and atomic writers."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskrefine.errors import ConfigError, InputError
from maskrefine.io import (
    IMAGE_EXTENSIONS,
    MASK_EXTENSIONS,
    match_folders,
    read_image,
    read_image_size,
    read_mask,
    read_mask_array,
    write_mask,
    write_text_atomic,
)
from maskrefine.io.imageio import write_bytes_atomic


def _png(path: Path, array: np.ndarray) -> Path:
    ok, data = cv2.imencode(".png", array)
    assert ok
    path.write_bytes(data.tobytes())
    return path


def test_match_folders_checks_its_arguments(tmp_path: Path) -> None:
    folder = tmp_path / "a"
    folder.mkdir()
    (folder / "x.png").write_bytes(b"")
    # a str of one suffix was read as its characters, a suffix without the dot matched nothing: both
    # gave an empty pairing silently
    with pytest.raises(TypeError, match="`first_extensions` must be a tuple of suffixes"):
        match_folders(folder, folder, ".png", (".png",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`second_extensions` must hold suffixes with the dot.*'png'"):
        match_folders(folder, folder, (".png",), ("png",))
    with pytest.raises(ConfigError, match="first folder .*missing does not exist"):
        match_folders(tmp_path / "missing", folder, (".png",), (".png",))
    with pytest.raises(ConfigError, match="second folder is empty"):
        match_folders(folder, "", (".png",), (".png",))
    assert [p.stem for p in match_folders(folder, folder, (".png",), (".png",)).pairs] == ["x"]


def test_match_folders_pairs_unmatched_and_duplicates(tmp_path: Path) -> None:
    masks, images = tmp_path / "m", tmp_path / "i"
    masks.mkdir()
    images.mkdir()
    for stem in ("a", "b", "c", "only_mask"):
        _png(masks / f"{stem}.png", np.zeros((4, 4), np.uint8))
    np.save(masks / "dup.npy", np.zeros((4, 4), np.float32))
    _png(masks / "dup.png", np.zeros((4, 4), np.uint8))
    for stem in ("a", "b", "dup", "only_image"):
        _png(images / f"{stem}.png", np.zeros((4, 4, 3), np.uint8))
    _png(images / "c.JPG", np.zeros((4, 4, 3), np.uint8))  # suffix case is ignored... but content is PNG
    (images / ".hidden.png").write_bytes(b"")
    (images / "notes.txt").write_text("not an image")

    pairing = match_folders(masks, images, MASK_EXTENSIONS, IMAGE_EXTENSIONS)

    assert [p.stem for p in pairing.pairs] == ["a", "b", "c"]
    assert pairing.pairs[2].second.name == "c.JPG"
    assert [p.name for p in pairing.only_first] == ["only_mask.png"]
    assert [p.name for p in pairing.only_second] == ["only_image.png"]
    assert sorted(p.name for p in pairing.duplicates["dup"]) == ["dup.npy", "dup.png"]


def test_match_folders_names_files_of_a_kind_the_folder_is_not_read_from(tmp_path: Path) -> None:
    # a JPEG mask was dropped unseen: its image was reported "only in images", as if the mask were missing
    masks, images = tmp_path / "m", tmp_path / "i"
    masks.mkdir()
    images.mkdir()
    _png(masks / "a.png", np.zeros((4, 4), np.uint8))
    _png(masks / "b.jpg", np.zeros((4, 4), np.uint8))
    _png(masks / "c.TIF", np.zeros((4, 4), np.uint8))
    (masks / "notes.txt").write_text("not an image")  # not an image or mask suffix: not named
    for stem in ("a", "b", "c", "d"):
        _png(images / f"{stem}.png", np.zeros((4, 4, 3), np.uint8))
    np.save(images / "e.npy", np.zeros((4, 4), np.float32))  # images are never read from .npy

    pairing = match_folders(masks, images, MASK_EXTENSIONS, IMAGE_EXTENSIONS)

    assert [p.stem for p in pairing.pairs] == ["a"]
    assert [p.name for p in pairing.unread_first] == ["b.jpg", "c.TIF"]
    assert [p.name for p in pairing.unread_second] == ["e.npy"]
    assert [p.name for p in pairing.only_second] == ["d.png"]  # b and c: their unread mask is the problem
    assert pairing.first_extensions == MASK_EXTENSIONS


def test_read_image_is_rgb_float(tmp_path: Path) -> None:
    bgr = np.zeros((3, 5, 3), np.uint8)
    bgr[..., 0] = 255  # blue in OpenCV's order
    image = read_image(_png(tmp_path / "x.png", bgr))
    assert image.dtype == np.float32 and image.shape == (3, 5, 3)
    np.testing.assert_array_equal(image[0, 0], [0.0, 0.0, 1.0])


def test_read_image_gray_is_repeated(tmp_path: Path) -> None:
    image = read_image(_png(tmp_path / "g.png", np.full((2, 3), 51, np.uint8)))
    assert image.shape == (2, 3, 3)
    np.testing.assert_allclose(image, 0.2, atol=1e-7)


@pytest.mark.parametrize(
    ("high", "scale"), [(0, 65535), (1, 65535), (2, 255), (255, 255), (256, 65535), (65535, 65535)]
)
def test_read_image_16_bit_holding_8_bit_values(tmp_path: Path, high: int, scale: int) -> None:
    # largest value 2..255: an 8-bit image saved at 16 bits, read as v/255 (the masks' rule); else v/65535
    values = (np.arange(2 * 3 * 3).reshape(2, 3, 3) * high // 17).astype(np.uint16)
    assert values.max() == high
    image = read_image(_png(tmp_path / "x.png", values[:, :, ::-1]))
    expected = values.astype(np.float32) / np.float32(scale)
    np.testing.assert_array_equal(image, expected)
    if scale == 255:  # bit-identical to the same values stored at 8 bits
        np.testing.assert_array_equal(
            image, read_image(_png(tmp_path / "x8.png", values[:, :, ::-1].astype(np.uint8)))
        )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "file is empty (0 bytes)"),
        (b"hello, not a picture", "cannot decode as an image"),
    ],
)
def test_read_errors_name_file_and_problem(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    for reader in (read_image, read_mask):
        with pytest.raises(InputError) as info:
            reader(path)
        assert str(path) in str(info.value) and problem in str(info.value)
        assert info.value.path == path


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "uint32", "int16", "int8"])
@pytest.mark.parametrize("channels", [1, 3])
def test_tiff_of_other_pixel_types_is_an_input_error_naming_the_type(
    tmp_path: Path, dtype: str, channels: int
) -> None:
    # a TIFF can hold float, signed or 32-bit pixels: a named refusal for images and masks alike, where
    # images of most of these types used to fail inside cv2.cvtColor with an OpenCV error text
    path = tmp_path / f"x_{dtype}.tiff"
    shape = (12, 16, 3) if channels == 3 else (12, 16)
    assert cv2.imwrite(str(path), (np.arange(np.prod(shape)) % 100).reshape(shape).astype(dtype))
    before = path.read_bytes()
    for read in (read_image, read_mask):
        with pytest.raises(
            InputError, match=rf"x_{dtype}\.tiff: unsupported pixel type {dtype} \(expected 8- or 16-bit\)"
        ):
            read(path)
    assert path.read_bytes() == before


def test_truncated_png_is_an_input_error(tmp_path: Path) -> None:
    good = _png(tmp_path / "good.png", (np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64))
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:60])
    with pytest.raises(InputError, match="truncated.png: cannot decode"):
        read_mask(truncated)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        read_mask(tmp_path / "nope.png")


def test_read_mask_bit_depths(tmp_path: Path) -> None:
    m8 = read_mask(_png(tmp_path / "m8.png", np.array([[0, 255, 51]], np.uint8)))
    np.testing.assert_allclose(m8, [[0.0, 1.0, 0.2]], atol=1e-7)
    m16 = read_mask(_png(tmp_path / "m16.png", np.array([[0, 65535, 13107]], np.uint16)))
    np.testing.assert_allclose(m16, [[0.0, 1.0, 0.2]], atol=1e-7)
    assert read_mask_array(tmp_path / "m16.png").dtype == np.uint16


def test_read_mask_rgb_with_equal_channels_ok_else_error(tmp_path: Path) -> None:
    gray = np.array([[0, 128], [255, 7]], np.uint8)
    same = read_mask_array(_png(tmp_path / "same.png", np.dstack([gray, gray, gray])))
    np.testing.assert_array_equal(same, gray)
    differing = np.dstack([gray, gray, 255 - gray])
    with pytest.raises(InputError, match="differing colour channels"):
        read_mask(_png(tmp_path / "diff.png", differing))


@pytest.mark.parametrize(
    ("array", "problem"),
    [
        (np.full((4, 4), np.nan, np.float32), "all NaN"),
        (np.array([[0.5, np.nan]], np.float64), "1 NaN/inf"),
        (np.zeros((4, 4), np.int64), "bool or float"),
        (np.zeros((2, 4, 4), np.float32), "2-D"),
        (np.array([[0.0, 1.5]], np.float32), "[0, 1]"),
        (np.full((4, 4), 0.5, np.longdouble), "float16, float32 or float64"),
    ],
)
def test_npy_mask_errors(tmp_path: Path, array: np.ndarray, problem: str) -> None:
    path = tmp_path / "m.npy"
    np.save(path, array)
    with pytest.raises(InputError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        read_mask(path)


def test_npy_mask_squeeze_and_bool(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.full((1, 3, 2), 0.25, np.float64))
    np.save(tmp_path / "b.npy", np.array([[True, False]]))
    a, b = read_mask(tmp_path / "a.npy"), read_mask(tmp_path / "b.npy")
    assert a.shape == (3, 2) and a.dtype == np.float32 and float(a[0, 0]) == 0.25
    np.testing.assert_array_equal(b, [[1.0, 0.0]])


@pytest.mark.parametrize(
    ("fmt", "suffix", "tol"),
    [("png8", ".png", 0.5 / 255), ("png16", ".png", 0.5 / 65535), ("npy", ".npy", 0.0)],
)
def test_write_mask_round_trip(
    tmp_path: Path, rng: np.random.Generator, fmt: str, suffix: str, tol: float
) -> None:
    mask = rng.random((17, 23)).astype(np.float32)
    path = write_mask(tmp_path / f"out{suffix}", mask, fmt)  # type: ignore[arg-type]
    assert np.abs(read_mask(path) - mask).max() <= tol + 1e-7
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind


def test_write_mask_refuses_out_of_range_and_clips_rounding_noise(tmp_path: Path) -> None:
    # was clipped silently: a 0..255 float mask was written all white
    with pytest.raises(ValueError, match="`mask` must have values in \\[0, 1\\]|`mask`"):
        write_mask(tmp_path / "o.png", np.array([[-0.2, 1.3]], np.float32))
    assert not (tmp_path / "o.png").exists()
    path = write_mask(tmp_path / "o.png", np.array([[-1e-7, 1.0000005]], np.float32))
    np.testing.assert_array_equal(read_mask_array(path), [[0, 255]])


@pytest.mark.parametrize(
    ("mask", "error", "message"),
    [
        (np.array([[0, 1, 128, 255]], np.uint8), TypeError, "floating-point array"),
        (np.array([[True, False]]), TypeError, "floating-point array"),
        (np.array([[0.5, np.nan]]), ValueError, "NaN or infinite"),
        (np.array([[0.5, 0.2]], np.complex128), TypeError, "floating-point array"),
        (np.array(0.5), ValueError, "non-empty 2-D"),
        (np.zeros((0, 4)), ValueError, "non-empty 2-D"),
        (np.zeros(4), ValueError, "non-empty 2-D"),
        (np.zeros((2, 2, 3)), ValueError, "non-empty 2-D"),
        (None, TypeError, "`mask`"),
        ("abc", TypeError, "`mask`"),
    ],
)
@pytest.mark.parametrize("fmt", ["png8", "npy"])
def test_write_mask_refuses_what_it_cannot_write_faithfully(
    tmp_path: Path, mask, error, message, fmt
) -> None:
    # was: uint8 nonzero written as foreground, NaN written as 0 (and an .npy its own reader refuses),
    # cv2 errors and numpy type errors leaking
    with pytest.raises(error, match=message):
        write_mask(tmp_path / "o.x", mask, fmt)
    assert not (tmp_path / "o.x").exists()


@pytest.mark.parametrize("flag", ["no", "false", 0, None])
def test_io_flags_must_be_bools(tmp_path: Path, flag) -> None:
    # overwrite="no" replaced the file (truthiness); apply_exif="no" was taken as True
    target = tmp_path / "keep.txt"
    target.write_text("keep")
    with pytest.raises(TypeError, match="overwrite"):
        write_mask(target, np.zeros((2, 2)), overwrite=flag)
    with pytest.raises(TypeError, match="overwrite"):
        write_bytes_atomic(target, b"x", overwrite=flag)
    assert target.read_text() == "keep"
    image = tmp_path / "i.png"
    cv2.imwrite(str(image), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(TypeError, match="apply_exif"):
        read_image(image, apply_exif=flag)


def test_atomic_writers_refuse_the_wrong_payload_type(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="`text` must be a str; got bytes"):
        write_text_atomic(tmp_path / "t.txt", b"x")
    with pytest.raises(TypeError, match="`data` must be bytes; got str"):
        write_bytes_atomic(tmp_path / "t.bin", "x")
    assert not any(tmp_path.iterdir())


def test_atomic_write_failure_leaves_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "report.json"
    write_text_atomic(target, "old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_text_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_output_names_up_to_the_name_limit_are_written_and_their_temps_cleaned(tmp_path: Path) -> None:
    # ".<name>.<8>.tmp" would exceed 255 bytes: the temporary name uses a hash of the output name
    import os

    from maskrefine.io.imageio import remove_stale_temps, write_bytes_atomic

    for name in ("a" * 251 + ".png", "é" * 125 + ".png"):  # 255 bytes, ASCII and UTF-8
        assert len(os.fsencode(name)) <= 255
        target = tmp_path / name
        write_bytes_atomic(target, b"mask", overwrite=False)
        assert target.read_bytes() == b"mask"
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    # a stale temporary file of such an output (left by a killed run) is recognised and removed
    stale = tmp_path / (".~" + "0" * 40 + ".abcdefgh.tmp")
    stale.write_bytes(b"old")
    os.utime(stale, (0, 0))
    assert remove_stale_temps(tmp_path, {"a" * 251 + ".png"}) == []  # another name's hash: kept
    from maskrefine.io.imageio import _temp_target

    mine = tmp_path / f".{_temp_target('a' * 251 + '.png')}.abcdefgh.tmp"
    mine.write_bytes(b"old")
    os.utime(mine, (0, 0))
    assert remove_stale_temps(tmp_path, {"a" * 251 + ".png"}) == [mine] and stale.exists()


def test_read_image_size_reads_only_the_header(tmp_path: Path) -> None:
    import cv2

    from maskrefine.errors import InputError
    from maskrefine.io import read_image_size

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((7, 11, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "b.jpg"), np.zeros((5, 9, 3), np.uint8))
    assert read_image_size(tmp_path / "a.png") == (7, 11)
    assert read_image_size(str(tmp_path / "b.jpg")) == (5, 9)
    data = (tmp_path / "a.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[:40])  # header intact, pixels cut off: still sized
    assert read_image_size(tmp_path / "cut.png") == (7, 11)
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(InputError, match="junk.png: cannot decode as an image"):
        read_image_size(tmp_path / "junk.png")
    with pytest.raises(InputError, match="missing.png"):
        read_image_size(tmp_path / "missing.png")


@pytest.mark.parametrize(("fmt", "scale", "dtype"), [("png8", 255, np.uint8), ("png16", 65535, np.uint16)])
def test_png_codes_are_the_exact_rounding(fmt, scale, dtype) -> None:
    """The codes were rint of a float32 product, which can round onto the other side of a half code: png16
    errors reached 0.502/65535 (docs: at most 0.5/65535), and 5 in 10**6 png8 codes were off by one."""
    from maskrefine.io.imageio import encode_mask

    values = np.random.default_rng(3).random(200_000).astype(np.float32)
    exact = np.rint(values.astype(np.float64) * scale)
    float32_product = np.rint(values * np.float32(scale))
    assert (exact != float32_product).any()  # the case exists in this sample
    mask = values.reshape(400, 500)
    codes = cv2.imdecode(np.frombuffer(encode_mask(mask, fmt), np.uint8), cv2.IMREAD_UNCHANGED)
    assert codes.dtype == dtype and np.array_equal(codes.ravel(), exact)
    assert np.abs(codes.ravel() / scale - values.astype(np.float64)).max() <= 0.5 / scale


def test_stale_temp_cleanup_matches_whole_names_newlines_included(tmp_path: Path) -> None:
    # `$` matched before a final newline: a user's ".a.png.abcdefgh.tmp\n" was deleted as a temp file,
    # while the real temp of an output named "new\nline.png" (`.` did not match the newline) was kept
    import time

    from maskrefine.io.imageio import remove_stale_temps

    users = tmp_path / ".a.png.abcdefgh.tmp\n"
    ours = tmp_path / ".new\nline.png.abcdefgh.tmp"
    for path in (users, ours):
        path.write_bytes(b"x")
        old = time.time() - 3600
        os.utime(path, (old, old))
    removed = remove_stale_temps(tmp_path, {"a.png", "new\nline.png"})
    assert removed == [ours]
    assert users.exists() and not ours.exists()


def test_write_mask_clips_values_within_the_tolerance_in_npy_too(tmp_path: Path) -> None:
    # the npy branch wrote 1.0000005 and -5e-07 as they were, where png8/png16 (and docs/masks.md) clip
    mask = np.array([[1.0000005, -5e-07], [0.25, 1.0]], dtype=np.float64)
    before = mask.copy()
    write_mask(tmp_path / "m.npy", mask, "npy")
    stored = np.load(tmp_path / "m.npy")
    assert stored.dtype == np.float32
    np.testing.assert_array_equal(stored, np.array([[1.0, 0.0], [0.25, 1.0]], np.float32))
    np.testing.assert_array_equal(mask, before)  # the caller's array is not modified


@pytest.mark.parametrize(
    ("value", "error", "pattern"),
    [
        (None, TypeError, r"`path` must be a path \(str or os.PathLike\); got None"),
        (3, TypeError, r"`path` must be a path"),
        (b"m.png", TypeError, r"`path` must be a str or os.PathLike path; got bytes"),
        ("", ValueError, r"`path` is empty"),  # was Path("") = the current folder
    ],
)
def test_io_functions_name_a_bad_path_argument(value: object, error: type, pattern: str) -> None:
    mask = np.zeros((4, 4), np.float32)
    for call in (
        lambda: read_mask(value),
        lambda: read_image(value),
        lambda: read_image_size(value),
        lambda: read_mask_array(value),
        lambda: write_mask(value, mask),
        lambda: write_bytes_atomic(value, b"x"),
        lambda: write_text_atomic(value, "x"),
    ):
        with pytest.raises(error, match=pattern):
            call()
