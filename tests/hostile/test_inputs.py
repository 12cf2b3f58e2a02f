"""Hostile inputs, the reading side: mask encodings, --mask-scale, EXIF, --max-pixels, non-regular files
in input folders and out-of-range / truncated .npy masks. Each case runs the real CLI in a fresh tree
(see ``conftest.py``): no traceback, the exit code, the file named, nothing changed outside the outputs.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image", reason="Pillow (the dev extra) writes the palette/EXIF files")

OUT = ["refined"]
STEMS = ("0001", "0002", "0003")  # the harness tree's stems
HostileTree = Any  # tests/hostile/conftest.py


def _read(hostile: HostileTree, rel: str) -> np.ndarray:
    array = cv2.imread(str(hostile.path(rel)), cv2.IMREAD_UNCHANGED)
    assert array is not None, rel
    return array


def _masks01(hostile: HostileTree) -> dict[str, np.ndarray]:
    """Replace every mask by its 0/1 version (what ``mask.astype(uint8)`` writes); return the 0/1 arrays."""
    binary = {}
    for stem in STEMS:
        binary[stem] = (_read(hostile, f"masks/{stem}.png") > 127).astype(np.uint8)
        hostile.write_mask(f"masks/{stem}.png", binary[stem])
    return binary


def _foreground_contrast(hostile: HostileTree, stem: str, binary: np.ndarray) -> float:
    """Mean refined value inside the (upsampled) mask minus outside, in [0, 1] units."""
    refined = _read(hostile, f"refined/{stem}.png").astype(np.float64) / 255
    inside = cv2.resize(binary, refined.shape[::-1], interpolation=cv2.INTER_NEAREST).astype(bool)
    return float(refined[inside].mean() - refined[~inside].mean())


def _encoding_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if "mask encodings detected" in line]


def _score_json(hostile: HostileTree, *extra: str) -> dict:
    hostile.run(*hostile.score_args("--json", "results/summary.json", *extra), exit=0, out=["results"])
    return json.loads(hostile.path("results/summary.json").read_text())


# ------------------------------------------------------------------------------------------ encodings
def test_apply_reads_0_1_masks_and_says_so_once(hostile: HostileTree) -> None:
    binary = _masks01(hostile)
    result = hostile.run(*hostile.apply_args(), exit=0, out=OUT)
    for stem in STEMS:
        assert _foreground_contrast(hostile, stem, binary[stem]) > 0.5
    lines = _encoding_lines(result.output)
    assert len(lines) == 1 and "0/1 values (3 files)" in lines[0], result.output


def test_apply_reads_16_bit_masks_holding_8_bit_values(hostile: HostileTree) -> None:
    binary = {}
    for stem in STEMS:
        mask = _read(hostile, f"masks/{stem}.png")
        binary[stem] = (mask > 127).astype(np.uint8)
        hostile.write_mask(f"masks/{stem}.png", mask.astype(np.uint16))
    result = hostile.run(*hostile.apply_args(), exit=0, out=OUT)
    assert all(_foreground_contrast(hostile, stem, binary[stem]) > 0.5 for stem in STEMS)
    assert "8-bit values in a 16-bit file (3 files)" in result.output


def test_apply_reads_16_bit_images_holding_8_bit_values_as_8_bit_and_says_so(hostile: HostileTree) -> None:
    # an 8-bit photo saved at 16 bits was read as v/65535 (a guide in [0, 0.004]: the filter only blurred)
    hostile.run(*hostile.apply_args("plain", "--method", "guided"), exit=0, out=["plain"])
    rgb = _read(hostile, "images/0002.png")[:, :, ::-1]
    hostile.write_image("images/0002.png", rgb.astype(np.uint16))
    result = hostile.run(*hostile.apply_args("sixteen", "--method", "guided"), exit=0, out=["sixteen"])
    for stem in STEMS:
        assert (
            hostile.path(f"sixteen/{stem}.png").read_bytes() == hostile.path(f"plain/{stem}.png").read_bytes()
        )
    assert "note: image encodings detected: 8-bit values in a 16-bit file (1 file)" in result.output
    assert not _encoding_lines(result.output)  # not counted as a mask encoding


def test_apply_reads_the_alpha_channel_of_rgba_masks(hostile: HostileTree) -> None:
    binary = {}
    for stem in STEMS:
        mask = _read(hostile, f"masks/{stem}.png")
        binary[stem] = (mask > 127).astype(np.uint8)
        black = np.zeros_like(mask)
        hostile.write_mask(f"masks/{stem}.png", np.dstack([black, black, black, mask]))
    result = hostile.run(*hostile.apply_args(), exit=0, out=OUT)
    assert all(_foreground_contrast(hostile, stem, binary[stem]) > 0.5 for stem in STEMS)
    assert "alpha channel of RGBA (3 files)" in result.output


def test_apply_refuses_rgba_whose_colour_and_alpha_both_vary(hostile: HostileTree) -> None:
    mask = _read(hostile, "masks/0002.png")
    hostile.write_mask("masks/0002.png", np.dstack([mask, 255 - mask, mask, mask[::-1]]))
    result = hostile.run(*hostile.apply_args(), exit=1, names=["masks/0002.png"], out=OUT)
    assert "cannot tell which one holds the mask" in result.stderr
    assert sorted(p.name for p in hostile.path("refined").iterdir()) == ["0001.png", "0003.png"]


def _palette(hostile: HostileTree, rel: str, indices: np.ndarray, palette: list[int]) -> None:
    image = Image.fromarray(indices.astype(np.uint8), "P")
    image.putpalette(palette + [0] * (768 - len(palette)))
    image.save(hostile.path(rel))


def test_apply_reads_a_two_colour_palette_mask_as_0_1(hostile: HostileTree) -> None:
    binary = (_read(hostile, "masks/0001.png") > 127).astype(np.uint8)
    _palette(hostile, "masks/0001.png", binary, [0, 0, 0, 128, 0, 0])  # the VOC palette's first two
    result = hostile.run(*hostile.apply_args(), exit=0, out=OUT)
    assert _foreground_contrast(hostile, "0001", binary) > 0.5
    assert "palette of two colours" in result.output


def test_apply_refuses_a_palette_label_map(hostile: HostileTree) -> None:
    labels = (_read(hostile, "masks/0003.png") // 100).astype(np.uint8)  # 0, 1, 2
    _palette(hostile, "masks/0003.png", labels, [0, 0, 0, 128, 0, 0, 0, 128, 0])
    result = hostile.run(*hostile.apply_args(), exit=1, names=["masks/0003.png"], out=OUT)
    assert "a label map, not a mask" in result.stderr


@pytest.mark.parametrize("cut", ["mid-chunk", "no-iend"])
def test_truncated_pngs_are_named_by_maskrefine_alone(hostile: HostileTree, cut: str) -> None:
    # libpng printed "libpng error: PNG input buffer is incomplete" on stderr next to our own line
    for rel in ("images/0001.png", "masks/0002.png"):
        data = hostile.path(rel).read_bytes()
        hostile.path(rel).write_bytes(data[: len(data) // 2] if cut == "mid-chunk" else data[:-12])
    result = hostile.run(
        *hostile.apply_args("refined", "--jobs", "2"), exit=1, names=["0001.png", "0002.png"], out=OUT
    )
    assert result.stderr.count("truncated PNG") == 2, result.stderr
    assert "libpng" not in result.output and "WARN" not in result.output, result.output


def test_score_reads_0_1_ground_truth_under_move(hostile: HostileTree) -> None:
    for stem in STEMS:
        hostile.write_mask(f"gt/{stem}.png", (_read(hostile, f"gt/{stem}.png") > 127).astype(np.uint8))
    summary = _score_json(hostile, "--preset", "move")
    assert summary["count"] == 3 and summary["iou"] > 0.7, summary
    assert summary["encodings"] == {"gt: 0/1 values": 3}


def test_score_reads_0_1_predictions(hostile: HostileTree) -> None:
    plain = _score_json(hostile)
    for stem in STEMS:
        hostile.write_mask(f"pred/{stem}.png", (_read(hostile, f"pred/{stem}.png") > 127).astype(np.uint8))
    hostile.path("results/summary.json").unlink()
    binary = _score_json(hostile)
    assert binary["iou"] > 0.7 and abs(binary["iou"] - plain["iou"]) < 0.1, (plain, binary)
    assert binary["encodings"] == {"predictions: 0/1 values": 3}


def test_score_reads_16_bit_predictions_holding_8_bit_values(hostile: HostileTree) -> None:
    plain = _score_json(hostile)
    for stem in STEMS:
        hostile.write_mask(f"pred/{stem}.png", _read(hostile, f"pred/{stem}.png").astype(np.uint16))
    hostile.path("results/summary.json").unlink()
    wide = _score_json(hostile)
    assert wide["iou"] == plain["iou"] and wide["mae"] == plain["mae"]


# ----------------------------------------------------------------------------------------- --mask-scale
def test_mask_scale_255_keeps_0_1_masks_dim(hostile: HostileTree) -> None:
    _masks01(hostile)
    result = hostile.run(*hostile.apply_args("refined", "--mask-scale", "255"), exit=0, out=OUT)
    assert _read(hostile, "refined/0001.png").max() <= 2
    assert not _encoding_lines(result.output)


def test_mask_scale_1_refuses_0_255_masks_naming_each(hostile: HostileTree) -> None:
    names = [f"masks/{stem}.png" for stem in STEMS]
    result = hostile.run(*hostile.apply_args("refined", "--mask-scale", "1"), exit=1, names=names, out=OUT)
    assert "values must be 0 or 1; found values up to 255" in result.stderr


def test_mask_scale_1_in_score_applies_to_gt_too(hostile: HostileTree) -> None:
    result = hostile.run(*hostile.score_args("--mask-scale", "1"), exit=1, names=["pred/0001.png"])
    assert "values must be 0 or 1" in result.stderr


@pytest.mark.parametrize(("command", "value"), [("apply", "256"), ("score", "256"), ("apply", "")])
def test_bad_mask_scale_is_a_usage_error(hostile: HostileTree, command: str, value: str) -> None:
    args = hostile.apply_args() if command == "apply" else hostile.score_args()
    result = hostile.run(*args, "--mask-scale", value, exit=2, names=["--mask-scale"], out=OUT)
    assert "'auto'" in result.stderr and "'65535'" in result.stderr


# ----------------------------------------------------------------------------------------------- EXIF
def _exif_rotated_jpeg(hostile: HostileTree, stem: str) -> None:
    """Store images/<stem> as a JPEG whose pixels are rotated 90 degrees, tagged to display upright."""
    shown = _read(hostile, f"images/{stem}.png")[:, :, ::-1]  # RGB, 48x64 as displayed
    hostile.path(f"images/{stem}.png").unlink()
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(shown)))  # 64x48 as stored
    exif = stored.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    stored.save(hostile.path(f"images/{stem}.jpg"), "JPEG", exif=exif.tobytes(), quality=95)


def test_apply_exif_turns_images_upright(hostile: HostileTree) -> None:
    _exif_rotated_jpeg(hostile, "0002")
    hostile.run(*hostile.apply_args("refined", "--apply-exif"), exit=0, out=OUT)
    assert _read(hostile, "refined/0002.png").shape == (48, 64)
    binary = (_read(hostile, "masks/0002.png") > 127).astype(np.uint8)
    assert _foreground_contrast(hostile, "0002", binary) > 0.3


@pytest.mark.parametrize("flag", [[], ["--ignore-exif"]])
def test_images_are_read_as_stored_by_default(hostile: HostileTree, flag: list[str]) -> None:
    """As the references read them (PIL ignores the tag); ``--ignore-exif`` is kept as the default."""
    _exif_rotated_jpeg(hostile, "0002")
    result = hostile.run(*hostile.apply_args("refined", *flag), exit=1, names=["masks/0002.png"], out=OUT)
    assert "0002.jpg" in result.stderr and "--apply-exif" in result.stderr
    assert sorted(p.name for p in hostile.path("refined").iterdir()) == ["0001.png", "0003.png"]


# --------------------------------------------------------------------------------------- --max-pixels
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_png_claiming_30000_squared_is_refused_before_decoding(hostile: HostileTree) -> None:
    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 9000))
    hostile.path("masks/0001.png").write_bytes(bomb + _chunk(b"IEND", b""))
    result = hostile.run(*hostile.apply_args(), exit=1, names=["masks/0001.png", "--max-pixels"], out=OUT)
    expected = "30000x30000 (HxW) = 900,000,000 pixels (900.0 MP), more than the limit of 100000000 pixels"
    assert expected in result.stderr


def test_max_pixels_limit_names_each_image(hostile: HostileTree) -> None:
    names = [f"images/{stem}.png" for stem in STEMS]
    result = hostile.run(*hostile.apply_args("refined", "--max-pixels", "3000"), exit=1, names=names, out=OUT)
    assert "48x64 (HxW) = 3072 pixels, more than the limit of 3000 pixels" in result.stderr
    hostile.run(*hostile.apply_args("fine", "--max-pixels", "3072"), exit=0, out=["fine"])


@pytest.mark.parametrize("value", ["0", "-5", "lots", ""])
def test_bad_max_pixels_is_a_usage_error(hostile: HostileTree, value: str) -> None:
    result = hostile.run(*hostile.score_args("--max-pixels", value), exit=2, names=["--max-pixels"])
    assert "No such option" not in result.stderr


def test_huge_max_pixels_is_accepted(hostile: HostileTree) -> None:
    hostile.run(*hostile.apply_args("refined", "--max-pixels", str(10**30)), exit=0, out=OUT)


def test_4_gib_non_image_is_refused_without_reading_it(hostile: HostileTree, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"  # outside the tree: the harness hashes every regular file in it
    with open(big, "wb") as handle:
        handle.truncate(4 << 30)  # sparse
    hostile.path("images/0002.png").unlink()
    hostile.path("images/0002.png").symlink_to(big)
    result = hostile.run(*hostile.apply_args(), exit=1, names=["images/0002.png"], out=OUT, timeout=30)
    assert "not a PNG, JPEG, BMP, TIFF or WebP file" in result.stderr


# ----------------------------------------------------------------------------------- non-regular files
@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: os.mkfifo(p), "a FIFO (named pipe)"),
        (lambda p: p.symlink_to(p.parent / "gone.png"), "a dangling symlink"),
        (lambda p: p.symlink_to(p), "a symlink loop"),
        (lambda p: p.mkdir(), "a folder"),
    ],
    ids=["fifo", "dangling", "loop", "folder"],
)
def test_non_regular_mask_is_named_not_unmatched(hostile: HostileTree, make, reason: str) -> None:
    hostile.path("masks/0002.png").unlink()
    make(hostile.path("masks/0002.png"))
    result = hostile.run(*hostile.apply_args(), exit=1, names=["masks/0002.png", reason], out=OUT, timeout=60)
    assert "only in" not in result.output and "images/0002.png" not in result.output
    assert sorted(p.name for p in hostile.path("refined").iterdir()) == ["0001.png", "0003.png"]


def test_fifo_gt_in_score_is_named_and_never_hangs(hostile: HostileTree) -> None:
    hostile.path("gt/0003.png").unlink()
    os.mkfifo(hostile.path("gt/0003.png"))
    result = hostile.run(*hostile.score_args(), exit=1, names=["gt/0003.png", "a FIFO"], timeout=60)
    # the summary line counts it (it said nothing of it, as if every file had been scored)
    assert "failed 0, unmatched 0, duplicates 0, not regular files 1" in result.stdout
    assert "only in" not in result.output


def test_symlink_to_a_regular_mask_is_followed(hostile: HostileTree, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.png"
    elsewhere.write_bytes(hostile.path("masks/0002.png").read_bytes())
    hostile.path("masks/0002.png").unlink()
    hostile.path("masks/0002.png").symlink_to(elsewhere)
    hostile.run(*hostile.apply_args(), exit=0, out=OUT)
    assert len(list(hostile.path("refined").iterdir())) == 3


# ------------------------------------------------------------------------------------------ .npy masks
def _npy_mask(hostile: HostileTree, stem: str, scale: float) -> bytes:
    hostile.path(f"masks/{stem}.png").unlink()
    mask = _read(hostile, f"gt/{stem}.png")[::4, ::4].astype(np.float32) / 255 * scale
    np.save(hostile.path(f"masks/{stem}.npy"), mask)
    return hostile.path(f"masks/{stem}.npy").read_bytes()


def test_npy_mask_with_float_rounding_error_is_accepted(hostile: HostileTree) -> None:
    _npy_mask(hostile, "0001", np.float32(1.0000001))
    hostile.run(*hostile.apply_args(), exit=0, out=OUT)


def test_npy_mask_out_of_range_says_how_far(hostile: HostileTree) -> None:
    _npy_mask(hostile, "0001", 1.5)
    result = hostile.run(*hostile.apply_args(), exit=1, names=["masks/0001.npy"], out=OUT)
    assert "the maximum is 0.5 above 1" in result.stderr


def test_truncated_npy_mask_is_named_as_truncated(hostile: HostileTree) -> None:
    data = _npy_mask(hostile, "0001", 1.0)
    hostile.path("masks/0001.npy").write_bytes(data[:100])
    hostile.path("masks/0003.png").unlink()
    hostile.path("masks/0003.npy").write_bytes(data[:-7])
    result = hostile.run(*hostile.apply_args(), exit=1, names=["masks/0001.npy", "masks/0003.npy"], out=OUT)
    assert "the header is truncated or malformed" in result.stderr
    assert "truncated .npy file: its header promises a (12, 16) float32 array" in result.stderr
    assert "ast." not in result.stderr
