"""Coarse-mask maker: area averages on the patch grid, soft and binary, written as 8-bit PNGs."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from maskrefine.errors import ConfigError, OutputError
from maskrefine.quality.coarse import coarse_shape, make_coarse_mask, write_coarse_folder


@pytest.mark.parametrize(
    ("hw", "patch", "expected"),
    [((321, 481), 8, (40, 60)), ((321, 481), 16, (20, 30)), ((5, 5), 16, (1, 1)), ((64, 32), 1, (64, 32))],
)
def test_coarse_shape(hw, patch, expected):
    assert coarse_shape(*hw, patch) == expected


def test_soft_is_the_patch_mean_rounded_to_8_bits():
    full = np.zeros((16, 32), np.uint8)
    full[:, :3] = 255  # 3 of 16 columns of the first patch: 3/16 = .1875 -> code 48 (47.8)
    full[:8, 16:] = 255  # half of the second patch: .5 -> 128 (127.5 rounds to even 128)
    out = make_coarse_mask(full, 16, binary=False)
    assert out.dtype == np.uint8 and out.shape == (1, 2)
    assert out.tolist() == [[48, 128]]


def test_binary_thresholds_strictly_above_half():
    full = np.zeros((16, 32), np.float32)
    full[:8, :16] = 1.0  # exactly .5 -> background
    full[:9, 16:] = 1.0  # .5625 -> foreground
    assert make_coarse_mask(full, 16, binary=True).tolist() == [[0, 255]]


@pytest.mark.parametrize("dtype", [np.bool_, np.uint8, np.uint16, np.float32, np.float64])
def test_dtypes_give_the_same_binary_grid(dtype):
    rng = np.random.default_rng(0)
    base = rng.random((64, 48)) > 0.4
    scale = {np.bool_: 1, np.uint8: 255, np.uint16: 65535}.get(dtype, 1.0)
    full = (base * scale).astype(dtype)
    np.testing.assert_array_equal(
        make_coarse_mask(full, 8, binary=True), make_coarse_mask(base, 8, binary=True)
    )


def test_full_is_not_modified():
    full = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    copy = full.copy()
    make_coarse_mask(full, 8, binary=False)
    np.testing.assert_array_equal(full, copy)


@pytest.mark.parametrize(
    ("full", "patch", "error"),
    [
        (np.zeros((4, 4), np.int32), 2, TypeError),
        (np.zeros((4, 4, 1), np.uint8), 2, ValueError),
        (np.full((4, 4), 1.5), 2, ValueError),
        (np.full((4, 4), np.nan), 2, ValueError),
        (np.zeros((4, 4), np.uint8), 0, ValueError),
        (np.zeros((4, 4), np.uint8), 2.0, ValueError),
        ([[0, 1]], 2, TypeError),
    ],
)
def test_bad_input(full, patch, error):
    with pytest.raises(error):
        make_coarse_mask(full, patch, binary=False)


def test_write_coarse_folder_writes_patch_resolution_pngs(tmp_path):
    src = tmp_path / "gt"
    src.mkdir()
    full = np.zeros((64, 96), np.uint8)
    full[10:50, 20:70] = 255
    cv2.imwrite(str(src / "a.png"), full)
    cv2.imwrite(str(src / "b.png"), full[::-1])
    out = tmp_path / "coarse"
    written = write_coarse_folder(src, out, 16, binary=False, stems=["a"])
    assert [p.name for p in written] == ["a.png"]
    read = cv2.imread(str(out / "a.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(read, make_coarse_mask(full, 16, binary=False))
    assert read.shape == (4, 6)
    with pytest.raises(ConfigError, match="source folder"):
        write_coarse_folder(src, src, 16, binary=False)
    with pytest.raises(ConfigError, match="does not exist"):
        write_coarse_folder(tmp_path / "missing", out, 16, binary=False)


@pytest.mark.parametrize(
    "case", ["empty_src", "empty_out", "inside_src", "around_src", "out_is_file", "long_out"]
)
def test_write_coarse_folder_refuses_unsafe_paths(tmp_path, monkeypatch, case):
    """An empty path was the current folder, an output inside the source (or a file) got through."""
    src = tmp_path / "gt"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), np.zeros((32, 32), np.uint8))
    monkeypatch.chdir(src)  # an empty path must not mean this folder
    before = sorted(p.name for p in src.iterdir())
    src_arg, out_arg = src, tmp_path / "coarse"
    if case == "empty_src":
        src_arg = ""
    elif case == "empty_out":
        out_arg = ""
    elif case == "inside_src":
        out_arg = src / "coarse"
    elif case == "around_src":
        src_arg = tmp_path / "gt"
        out_arg = tmp_path
    elif case == "out_is_file":
        out_arg = tmp_path / "file"
        out_arg.write_text("keep")
    else:
        out_arg = tmp_path / ("c" * 300)
    with pytest.raises(ConfigError):
        write_coarse_folder(src_arg, out_arg, 16, binary=False)
    assert sorted(p.name for p in src.iterdir()) == before
    assert not (tmp_path / "coarse").exists()
    if case == "out_is_file":
        assert out_arg.read_text() == "keep"


def test_write_coarse_folder_never_writes_through_a_symlink(tmp_path):
    src = tmp_path / "gt"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), np.zeros((32, 32), np.uint8))
    out = tmp_path / "coarse"
    out.mkdir()
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"not ours")
    (out / "a.png").symlink_to(victim)
    with pytest.raises(OutputError):
        write_coarse_folder(src, out, 16, binary=False)  # skip_existing: a link is not a cached output
    assert victim.read_bytes() == b"not ours" and (out / "a.png").is_symlink()


def test_flags_and_sizes_are_checked_not_read_by_truthiness(tmp_path):
    full = np.zeros((32, 32), np.uint8)
    full[:, :12] = 255
    # "no" was truthy: a binary mask came back for binary="no"
    with pytest.raises(TypeError, match="`binary` must be True or False; got 'no'"):
        make_coarse_mask(full, 16, binary="no")
    for height, width, error in [("a", 5, TypeError), (10**400, 5, ValueError), (-320, 5, ValueError)]:
        with pytest.raises(error, match="`height`"):
            coarse_shape(height, width, 16)
    with pytest.raises(ValueError, match="`width`"):
        coarse_shape(5, 0, 16)
    src = tmp_path / "full"
    src.mkdir()
    cv2.imwrite(str(src / "img1.png"), full)
    out = tmp_path / "coarse"
    # a str of stems was read as a set of its letters: nothing matched, [] came back
    with pytest.raises(TypeError, match="`stems` must be an iterable of str"):
        write_coarse_folder(src, out, 16, binary=False, stems="img1")
    with pytest.raises(TypeError, match="`stems` must hold str file stems; got 5"):
        write_coarse_folder(src, out, 16, binary=False, stems=[5])
    with pytest.raises(TypeError, match="`skip_existing` must be True or False"):
        write_coarse_folder(src, out, 16, binary=False, skip_existing="no")
    with pytest.raises(ValueError, match="`patch` must be an integer >= 1"):
        write_coarse_folder(src, out, 0, binary=False)
    assert not out.exists()  # every setting is checked before the folder is made
    assert write_coarse_folder(src, out, 16, binary=False, stems=["img1"]) == [out / "img1.png"]
