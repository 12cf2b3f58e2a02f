"""Python API: paths that name a folder, mask sizes refine cannot pair, suffixes and messages (audit s11)."""

from __future__ import annotations

import numpy as np
import pytest

import maskrefine as mr
from maskrefine.guide import make_guide
from maskrefine.io import read_mask, read_mask_file, write_bytes_atomic, write_mask, write_text_atomic
from maskrefine.metrics import read_coco_boxes

IMAGE = np.random.default_rng(0).random((64, 80, 3)).astype(np.float32)
MASK = np.random.default_rng(1).random((64, 80)).astype(np.float32)


# ------------------------------------------------------------------------------------------ refine sizes


@pytest.mark.parametrize(
    ("mask", "problem"),
    [
        (MASK.T, r"mask is larger than the image \(80x64 > 64x80, HxW\)"),  # transposed: was stretched
        (
            MASK[:64, :70],
            r"not a uniform downscale of the image size 64x80 \(HxW\); the aspect ratios differ",
        ),
        (MASK[:20, :79], r"mask size 20x79 is not a uniform downscale"),  # was stretched onto the image
    ],
)
def test_refine_refuses_a_mask_that_cannot_be_the_images(mask, problem):
    with pytest.raises(ValueError, match=problem):
        mr.refine(IMAGE, np.ascontiguousarray(mask))


@pytest.mark.parametrize("shape", [(64, 80), (8, 10), (4, 5), (5, 6), (1, 1)])
def test_refine_keeps_taking_full_size_and_patch_grid_masks(shape):
    out = mr.refine(IMAGE, np.ascontiguousarray(MASK[: shape[0], : shape[1]]), "identity")
    assert out.shape == (64, 80)


# ------------------------------------------------------------------------------------------ folder paths


@pytest.mark.parametrize("ending", ["/", "/.", "/..", "//"])
def test_writers_refuse_a_path_that_names_a_folder_and_keep_the_file(tmp_path, ending):
    # was: Path() dropped the ending and the existing file keep.png was replaced
    keep = tmp_path / "keep.png"
    keep.write_bytes(b"precious")
    for write in (
        lambda p: write_text_atomic(p, "replaced"),
        lambda p: write_bytes_atomic(p, b"replaced"),
        lambda p: write_mask(p, np.zeros((2, 2), np.float32)),
    ):
        with pytest.raises(ValueError, match="ends with a separator, '.' or '..', which names a folder"):
            write(str(keep) + ending)
    assert keep.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.png"]


def test_readers_refuse_a_path_that_names_a_folder(tmp_path):
    path = tmp_path / "m.png"
    write_mask(path, np.zeros((2, 2), np.float32))
    for read in (read_mask, read_mask_file):
        with pytest.raises(ValueError, match="names a folder"):
            read(str(path) + "/")
        assert read(path) is not None


# ------------------------------------------------------------------------------------------ suffixes


@pytest.mark.parametrize(
    ("name", "fmt"), [("a.png", "npy"), ("a.npy", "png8"), ("a.npy", "png16"), ("a", "png8")]
)
def test_write_mask_refuses_a_suffix_its_format_cannot_be_read_back_from(tmp_path, name, fmt):
    # was: written, and then read_mask_file could not decode the package's own file
    with pytest.raises(ValueError, match=f"format '{fmt}' is written as a"):
        write_mask(tmp_path / name, np.zeros((2, 2), np.float32), fmt)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "fmt"), [("a.png", "png8"), ("a.PNG", "png16"), ("a.npy", "npy"), ("a.NPY", "npy")]
)
def test_write_mask_writes_the_formats_suffix_in_any_case(tmp_path, name, fmt):
    mask = np.full((3, 2), 0.5, np.float32)
    write_mask(tmp_path / name, mask, fmt)
    assert read_mask_file(tmp_path / name).pixels.shape == (3, 2)


# ------------------------------------------------------------------------------------------ messages


def test_the_float32_limit_message_shows_the_excess():
    # float32(1e30) is 1.0000000150e30: the message read "must lie within ±1e+30 ...; found [1e+30, 1e+30]"
    guide = np.random.default_rng(0).random((20, 20)).astype(np.float32)
    with pytest.raises(ValueError, match=r"found \[1\.000000015e\+30, 1\.000000015e\+30\]"):
        mr.guided_filter(guide, np.full((20, 20), 1e30, np.float32), 3)


@pytest.mark.parametrize(("dtype", "hint"), [(bool, False), (np.int32, False), (np.uint16, True)])
def test_make_guide_gives_the_16_bit_hint_only_for_16_bit_images(dtype, hint):
    with pytest.raises(TypeError, match="must be float in") as info:
        make_guide(np.zeros((4, 4, 3), dtype))
    assert ("65535" in str(info.value)) is hint


def test_apply_folder_names_its_keyword_arguments_for_existing_outputs(tmp_path):
    from maskrefine.errors import ConfigError

    masks, images = tmp_path / "masks", tmp_path / "images"
    masks.mkdir()
    images.mkdir()
    write_mask(masks / "a.png", MASK)
    write_bytes_atomic(images / "a.png", _png(IMAGE))
    mr.apply_folder(masks, images, tmp_path / "out", method="identity")
    with pytest.raises(ConfigError, match=r"overwrite=True.*skip_existing=True"):
        mr.apply_folder(masks, images, tmp_path / "out", method="identity")


def _png(image: np.ndarray) -> bytes:
    import cv2

    ok, encoded = cv2.imencode(".png", (image[..., ::-1] * 255).astype(np.uint8))
    assert ok
    return encoded.tobytes()


def test_read_coco_boxes_ignores_an_annotation_of_an_image_it_does_not_list(tmp_path):
    # the docstring said InputError; docs/corloc.md and the code ignore it, as pycocotools does
    import json

    path = tmp_path / "c.json"
    images = [{"id": 1, "file_name": "a.jpg"}]
    path.write_text(json.dumps({"images": images, "annotations": [{"image_id": 2, "bbox": [1, 1, 4, 4]}]}))
    boxes = read_coco_boxes(path)
    assert list(boxes) == ["a"] and boxes["a"].shape == (0, 4)
    assert "ignored" in read_coco_boxes.__doc__ and "unknown image" not in read_coco_boxes.__doc__
