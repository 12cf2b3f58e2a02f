"""Messages of the s13 audit about the files of the input folders.

Names that differ only in Unicode normalisation (they print alike but do not pair), a folder that holds
only subfolders (not read), and the advice about masks in a lossy format said once, not once per file.
The new helpers of :mod:`maskrefine.io.pairs` are imported inside the tests, so that on the code before
the audit each test fails on what it checks.
"""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path

import pytest
from _listing_files import write_image as _image
from _listing_files import write_mask as _mask
from click.testing import CliRunner

from maskrefine.cli import main

NFC = unicodedata.normalize("NFC", "résumé")  # one code point per accented letter
NFD = unicodedata.normalize("NFD", "résumé")  # a letter and a combining accent, as macOS writes names
ADVICE = (
    "masks must be lossless: save or convert them to PNG (float maps to .npy); a JPEG's compression "
    "changes mask values"
)


def _apply(masks: Path, images: Path, out: Path, *extra: str):
    args = ["apply", "--masks", str(masks), "--images", str(images), "--out", str(out), "-j", "1", *extra]
    return CliRunner().invoke(main, args)


def _score(pred: Path, gt: Path, *extra: str):
    return CliRunner().invoke(main, ["score", "--pred", str(pred), "--gt", str(gt), "-j", "1", *extra])


def _keeps_names(folder: Path, *names: str) -> None:
    """Skip on a file system that normalises names (then the two forms cannot both be written)."""
    if sorted(os.listdir(folder)) != sorted(names):
        pytest.skip("this file system normalises Unicode file names")


# ------------------------------------------------------------------ names that differ only in NFC / NFD


def _twins(tmp_path: Path) -> tuple[Path, Path]:
    """A mask named in NFC and an image named in NFD, plus a pair that does match."""
    masks, images = tmp_path / "masks", tmp_path / "images"
    _mask(masks / f"{NFC}.png")
    _image(images / f"{NFD}.jpg")
    _keeps_names(masks, f"{NFC}.png")
    _keeps_names(images, f"{NFD}.jpg")
    return masks, images


def test_names_differing_only_in_normalisation_are_still_not_paired_but_named(tmp_path: Path) -> None:
    masks, images = _twins(tmp_path)
    report = tmp_path / "run.json"
    result = _apply(masks, images, tmp_path / "out", "--method", "identity", "--report", str(report))
    assert result.exit_code == 1, result.output  # different names: not paired, as before
    assert "written 0" in result.stdout
    twin_note = "whose name differs only in Unicode normalisation (NFC/NFD); rename one"
    # was "masks/résumé.png (only in masks)" and "images/résumé.jpg (only in images)": alike in print
    text = result.stderr
    assert f"{masks / (NFC + '.png')} (only in masks; images has {NFD + '.jpg'!r} {twin_note})" in text
    assert f"{images / (NFD + '.jpg')} (only in images; masks has {NFC + '.png'!r} {twin_note})" in text
    expected = (
        "nothing was processed: no file has a partner with the same stem in the other folder (1 mask and "
        f"1 image without a partner); {str(masks / (NFC + '.png'))!r} and {str(images / (NFD + '.jpg'))!r} "
        "do not pair: their names differ only in Unicode normalisation (NFC/NFD); rename one of them"
    )
    assert f"error: {expected}\n" in result.stderr
    assert json.loads(report.read_text())["error"] == expected
    # the renaming it asks for pairs them
    (images / f"{NFD}.jpg").rename(images / f"{NFC}.jpg")
    assert _apply(masks, images, tmp_path / "out2", "--method", "identity").exit_code == 0


def test_other_files_without_a_partner_still_get_the_stem_rule(tmp_path: Path) -> None:
    masks, images = _twins(tmp_path)
    for index in range(3):  # masks named <image stem>_mask: the stem hint names the suffix
        _mask(masks / f"x{index}_mask.png", index)
        _image(images / f"x{index}.png", index)
    result = _apply(masks, images, tmp_path / "out")
    assert result.exit_code == 1, result.output
    text = result.stderr
    assert "(4 masks and 4 images without a partner)" in text
    assert "do not pair: their names differ only in Unicode normalisation (NFC/NFD)" in text
    # the twins are left out of the stem hint: 3 of 3 masks carry '_mask', not "3 of the 4"
    assert "all 3 masks without a partner are named <image stem>_mask" in text


def test_score_names_predictions_and_gt_differing_only_in_normalisation(tmp_path: Path) -> None:
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    _mask(pred / f"{NFD}.png")
    _mask(gt / f"{NFC}.png")
    _keeps_names(pred, f"{NFD}.png")
    summary = tmp_path / "summary.json"
    result = _score(pred, gt, "--json", str(summary))
    assert result.exit_code == 1, result.output
    assert (
        f"{pred / (NFD + '.png')} (only in predictions; gt has {NFC + '.png'!r} whose name differs only in "
        "Unicode normalisation (NFC/NFD); rename one)"
    ) in result.stderr
    expected = (
        f"{str(pred / (NFD + '.png'))!r} and {str(gt / (NFC + '.png'))!r} do not pair: their names differ "
        "only in Unicode normalisation (NFC/NFD); rename one of them"
    )
    assert expected in result.stderr
    assert expected in json.loads(summary.read_text())["error"]


def test_normalisation_twins_pairs_each_file_once() -> None:
    from maskrefine.io.pairs import normalisation_hint, normalisation_twins

    first = [Path(f"m/{NFC}.png"), Path("m/plain.png"), Path(f"m/{NFC}_2.png")]
    second = [Path(f"i/{NFD}.jpg"), Path("i/other.jpg"), Path(f"i/{NFD}_2.jpg"), Path(f"i/{NFC}.jpg")]
    twins = normalisation_twins(first, second)
    assert twins == [(first[0], second[0]), (first[2], second[2])]  # the same name in NFC is no twin
    assert normalisation_twins([Path("a.png")], [Path("b.png")]) == []
    assert normalisation_hint([]) is None
    hint = normalisation_hint(twins)
    assert hint is not None and hint.startswith("2 names differ from a name of the other folder only")
    assert f"(e.g. 'm/{NFC}.png' and 'i/{NFD}.jpg')" in hint


# --------------------------------------------------------------------- a folder that holds only subfolders


def _per_class(folder: Path, classes: tuple[str, ...] = ("cls1", "cls2")) -> None:
    for index, name in enumerate(classes):
        _mask(folder / name / f"x{index}.png", index)


def test_apply_on_a_folder_of_subfolders_says_they_are_not_read(tmp_path: Path) -> None:
    masks, images = tmp_path / "a", tmp_path / "b"
    _per_class(masks)
    images.mkdir()
    report = tmp_path / "run.json"
    result = _apply(masks, images, tmp_path / "out", "--report", str(report))
    assert result.exit_code == 1, result.output
    expected = (
        f"nothing was processed: no input files found: masks folder {str(masks)!r} holds only subfolders "
        "(cls1, cls2), which are not read; point --masks (masks_dir) at one of them or flatten the folder"
    )
    assert f"error: {expected}\n" in result.stderr  # was "no input files found", nothing more
    assert json.loads(report.read_text())["error"] == expected
    assert "Traceback" not in result.output


def test_both_folders_of_subfolders_are_named_and_long_lists_counted(tmp_path: Path) -> None:
    masks, images = tmp_path / "a", tmp_path / "b"
    _per_class(masks, ("c1", "c2", "c3", "c4", "c5"))
    (images / "train").mkdir(parents=True)
    (images / ".cache").mkdir()  # hidden: not named
    result = _apply(masks, images, tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert (
        f"masks folder {str(masks)!r} holds only subfolders (c1, c2, c3 and 2 more), which are not read; "
        f"point --masks (masks_dir) at one of them or flatten the folder; images folder {str(images)!r} "
        "holds only subfolders (train), which are not read; point --images (images_dir) at one of them"
    ) in result.stderr


def test_subfolders_are_named_when_the_other_folder_has_files(tmp_path: Path) -> None:
    masks, images = tmp_path / "a", tmp_path / "b"
    _per_class(masks)
    _image(images / "x0.png")
    (masks / "notes.txt").write_text("per-class masks\n")  # not an image or mask file
    result = _apply(masks, images, tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert (
        "(0 masks and 1 image without a partner); masks folder "
        f"{str(masks)!r} holds no image or mask file but subfolders (cls1, cls2), which are not read"
    ) in result.stderr


def test_score_on_folders_of_subfolders_says_they_are_not_read(tmp_path: Path) -> None:
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    _per_class(pred)
    _per_class(gt)
    result = _score(pred, gt, "-q")
    assert result.exit_code == 1, result.output
    assert (
        f"error: nothing was scored: no masks found in the two folders: predictions folder {str(pred)!r} "
        "holds only subfolders (cls1, cls2), which are not read; point --pred (pred_dir) at one of them or "
        f"flatten the folder; gt folder {str(gt)!r} holds only subfolders (cls1, cls2)"
    ) in result.stderr
    _mask(gt / "x0.png")  # GT here, predictions in subfolders: "no prediction found" says why
    result = _score(pred, gt, "-q")
    assert result.exit_code == 1, result.output
    assert (
        "masks are read from .png and .npy files only); predictions folder "
        f"{str(pred)!r} holds only subfolders (cls1, cls2), which are not read"
    ) in result.stderr


def test_subfolder_note_only_when_no_file_is_there(tmp_path: Path) -> None:
    from maskrefine.io.pairs import subfolder_note

    folder = tmp_path / "f"
    (folder / "sub").mkdir(parents=True)
    assert subfolder_note(folder, "masks", "--masks") is not None
    (folder / "a.JPG").write_bytes(b"x")  # an image or mask suffix (even one not read): no note
    assert subfolder_note(folder, "masks", "--masks") is None
    empty = tmp_path / "empty"
    empty.mkdir()
    assert subfolder_note(empty, "masks", "--masks") is None  # an empty folder has no subfolder to name
    assert subfolder_note(tmp_path / "gone", "masks", "--masks") is None
    assert subfolder_note(None, "masks", "--masks") is None


def test_an_empty_folder_still_says_no_input_files_found(tmp_path: Path) -> None:
    masks, images = tmp_path / "a", tmp_path / "b"
    masks.mkdir()
    images.mkdir()
    result = _apply(masks, images, tmp_path / "out")
    assert result.exit_code == 1
    assert "error: nothing was processed: no input files found\n" in result.stderr


# ---------------------------------------------------------------- the lossless advice, once per listing


def _jpeg_masks(tmp_path: Path, count: int = 12) -> tuple[Path, Path]:
    masks, images = tmp_path / "masks", tmp_path / "images"
    for index in range(count):
        _mask(masks / f"m{index:02d}.jpg", index)
        _image(images / f"m{index:02d}.png", index)
    return masks, images


def test_jpeg_masks_get_the_lossless_advice_once(tmp_path: Path) -> None:
    masks, images = _jpeg_masks(tmp_path)
    report = tmp_path / "run.json"
    result = _apply(masks, images, tmp_path / "out", "--report", str(report))
    assert result.exit_code == 1, result.output
    text = result.stderr
    assert text.count("masks must be lossless") == 1  # was once per listed file (10 of them)
    assert f"{masks / 'm00.jpg'} (not read: files of this folder are read from .png, .npy only)\n" in text
    assert f"note: 12 file(s) not read: {ADVICE}\n" in text
    # the listing (10 lines and "... and 2 more") comes first, the advice after it
    assert text.index("... and 2 more") < text.index("masks must be lossless")
    # each entry of the JSON report still says why and what to do
    unmatched = json.loads(report.read_text())["unmatched"]
    assert len(unmatched) == 12
    assert all(item["reason"].endswith(f"only; {ADVICE}") for item in unmatched)


def test_score_gives_the_lossless_advice_once(tmp_path: Path) -> None:
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    for index in range(3):
        _mask(pred / f"m{index}.jpg", index)
        _mask(gt / f"m{index}.png", index)
    result = _score(pred, gt)
    assert result.exit_code == 1, result.output
    assert result.stderr.count("masks must be lossless") == 1
    assert f"note: 3 file(s) not read: {ADVICE}\n" in result.stderr


def test_split_advice_takes_the_advice_off_a_reason() -> None:
    from maskrefine.io.pairs import IMAGE_EXTENSIONS, MASK_EXTENSIONS, split_advice, unread_reason

    reason = unread_reason(MASK_EXTENSIONS)
    assert reason.endswith(ADVICE)  # the whole text, for one entry of a report
    assert split_advice(reason) == ("not read: files of this folder are read from .png, .npy only", ADVICE)
    assert split_advice(unread_reason(IMAGE_EXTENSIONS)) == (unread_reason(IMAGE_EXTENSIONS), None)
    assert split_advice("") == ("", None)
