"""The s13 listing messages for the three-folder commands: ``score --baseline`` and ``tune``.

Names that differ only in Unicode normalisation (they print alike but do not pair), a folder that holds
only subfolders (not read), and the masks in a lossy format: listed, with the advice said once. The
new helpers are imported inside the tests, so that on the code before each test fails on what it checks.
"""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from maskrefine.cli import main

NFC = unicodedata.normalize("NFC", "résumé")  # one code point per accented letter
NFD = unicodedata.normalize("NFD", "résumé")  # a letter and a combining accent, as macOS writes names
TWIN = "whose name differs only in Unicode normalisation (NFC/NFD); rename one"
ADVICE = (
    "masks must be lossless: save or convert them to PNG (float maps to .npy); a JPEG's compression "
    "changes mask values"
)
NOT_READ = "not read: files of this folder are read from .png, .npy only"


def _mask(path: Path, seed: int = 0, shape: tuple[int, int] = (48, 64)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8))


def _coarse(path: Path, seed: int = 0) -> None:
    _mask(path, seed, (6, 8))  # an 8x downscale of the 48x64 images


def _image(path: Path, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), pixels)


def _compare(root: Path, *extra: str):
    args = ["score", "--pred", str(root / "pred"), "--baseline", str(root / "base"), "--gt", str(root / "gt")]
    return CliRunner().invoke(main, [*args, "-j", "1", *extra])


def _tune(root: Path, *extra: str):
    folders = ["--masks", str(root / "masks"), "--images", str(root / "images"), "--gt", str(root / "gt")]
    args = ["tune", *folders, "--out", str(root / "best.toml"), "--methods", "identity", "-j", "1"]
    return CliRunner().invoke(main, [*args, *extra])


def _keeps_names(folder: Path, *names: str) -> None:
    """Skip on a file system that normalises names (then the two forms cannot both be written)."""
    if sorted(os.listdir(folder)) != sorted(names):
        pytest.skip("this file system normalises Unicode file names")


def _compare_scene(root: Path, stems: list[str], jpeg_pred: bool = False) -> None:
    for index, stem in enumerate(stems):
        _mask(root / "pred" / f"{stem}{'.jpg' if jpeg_pred else '.png'}", index)
        _mask(root / "base" / f"{stem}.png", index + 100)
        _mask(root / "gt" / f"{stem}.png", index + 200)


def _tune_scene(root: Path, stems: list[str], jpeg_masks: bool = False) -> None:
    for index, stem in enumerate(stems):
        _coarse(root / "masks" / f"{stem}{'.jpg' if jpeg_masks else '.png'}", index)
        _image(root / "images" / f"{stem}.jpg", index)
        _mask(root / "gt" / f"{stem}.png", index + 200)


# ------------------------------------------------------------------ names that differ only in NFC / NFD


def test_score_baseline_names_predictions_differing_only_in_normalisation(tmp_path: Path) -> None:
    _mask(tmp_path / "pred" / f"{NFD}.png")
    _mask(tmp_path / "base" / f"{NFC}.png", 1)
    _mask(tmp_path / "gt" / f"{NFC}.png", 2)
    _keeps_names(tmp_path / "pred", f"{NFD}.png")
    summary = tmp_path / "paired.json"
    result = _compare(tmp_path, "--json", str(summary))
    assert result.exit_code == 1, result.output
    pred, base, gt = (tmp_path / folder for folder in ("pred", "base", "gt"))
    # was the three paths alone, alike in print
    text = result.stderr
    assert f"{pred / (NFD + '.png')} (baseline has {NFC + '.png'!r} {TWIN})\n" in text
    assert f"{base / (NFC + '.png')} (predictions has {NFD + '.png'!r} {TWIN})\n" in text
    assert f"{gt / (NFC + '.png')} (predictions has {NFD + '.png'!r} {TWIN})\n" in text
    expected = (
        "nothing was scored: no prediction has a baseline mask and a ground-truth mask with the same stem; "
        f"{str(pred / (NFD + '.png'))!r} and {str(base / (NFC + '.png'))!r} do not pair: their names differ "
        "only in Unicode normalisation (NFC/NFD); rename one of them"
    )
    assert f"error: {expected}\n" in text
    assert json.loads(summary.read_text())["error"] == expected
    # the renaming it asks for pairs them
    (pred / f"{NFD}.png").rename(pred / f"{NFC}.png")
    again = _compare(tmp_path)
    assert again.exit_code == 0, again.output
    assert "1 image(s)" in again.stdout


def test_tune_names_files_differing_only_in_normalisation_when_nothing_pairs(tmp_path: Path) -> None:
    _coarse(tmp_path / "masks" / f"{NFD}.png")
    _image(tmp_path / "images" / f"{NFC}.jpg")
    _mask(tmp_path / "gt" / f"{NFC}.png")
    _keeps_names(tmp_path / "masks", f"{NFD}.png")
    masks, images = tmp_path / "masks", tmp_path / "images"
    result = _tune(tmp_path)
    assert result.exit_code == 1, result.output
    text = result.stderr
    # was the error alone: no list of the files without a partner, no word of their names
    assert "note: 3 file(s) lack a partner in --masks, --images or --gt; not used:" in text
    assert f"{images / (NFC + '.jpg')} (masks has {NFD + '.png'!r} {TWIN})\n" in text
    assert f"{tmp_path / 'gt' / (NFC + '.png')} (masks has {NFD + '.png'!r} {TWIN})\n" in text
    assert (
        f"; {str(masks / (NFD + '.png'))!r} and {str(images / (NFC + '.jpg'))!r} do not pair: their names "
        "differ only in Unicode normalisation (NFC/NFD); rename one of them; nothing was written\n"
    ) in text
    assert text.index("lack a partner") < text.index("error: nothing was scored")
    assert not (tmp_path / "best.toml").exists()
    quiet = _tune(tmp_path, "-q")  # -q: the error says it all the same, without the list
    assert "lack a partner" not in quiet.stderr and "do not pair" in quiet.stderr


def test_tune_lists_twins_beside_the_images_it_used(tmp_path: Path) -> None:
    _tune_scene(tmp_path, ["a", "b", "c"])
    _coarse(tmp_path / "masks" / f"{NFC}.png", 7)
    _image(tmp_path / "images" / f"{NFD}.jpg", 7)
    _mask(tmp_path / "gt" / f"{NFC}.png", 7)
    _keeps_names(tmp_path / "images", *[f"{stem}.jpg" for stem in ("a", "b", "c", NFD)])
    result = _tune(tmp_path)
    assert result.exit_code == 0, result.output
    assert "settings on 3 images" in result.stdout
    assert "note: 2 file(s) lack a partner in --masks, --images or --gt; not used:" in result.stderr
    images = tmp_path / "images"
    assert f"{images / (NFD + '.jpg')} (masks has {NFC + '.png'!r} {TWIN})\n" in result.stderr
    assert f"{tmp_path / 'masks' / (NFC + '.png')} (images has {NFD + '.jpg'!r} {TWIN})\n" in result.stderr


def test_twins_are_looked_for_only_between_folders_that_pair() -> None:
    from maskrefine.io.pairs import twins_across, unpaired_hints
    from maskrefine.pipeline.reports import Unmatched

    pred, base, gt = Path(f"p/{NFD}.png"), Path(f"b/{NFC}.png"), Path(f"g/{NFD}.png")
    alone = {"predictions": [], "baseline": [base], "gt": [gt]}
    # --baseline and --gt never pair with each other: no twins without the prediction
    assert twins_across(alone, through="predictions") == []
    assert twins_across(alone) == [(base, "baseline", gt, "gt")]
    alone["predictions"] = [pred]
    assert twins_across(alone, through="predictions") == [(pred, "predictions", base, "baseline")]
    files = [Unmatched(pred, "predictions"), Unmatched(base, "baseline"), Unmatched(gt, "gt")]
    roles = ["predictions", "baseline", "gt"]
    hints = unpaired_hints(files, roles, through="predictions")
    assert hints == [
        f"{str(pred)!r} and {str(base)!r} do not pair: their names differ only in Unicode normalisation "
        "(NFC/NFD); rename one of them"
    ]
    assert unpaired_hints([Unmatched(gt, "gt")], roles, through="predictions") == []


# --------------------------------------------------------------------- a folder that holds only subfolders


def test_score_baseline_names_a_predictions_folder_of_subfolders(tmp_path: Path) -> None:
    _compare_scene(tmp_path, ["x0", "x1"])
    pred = tmp_path / "pred"
    for index, name in enumerate(("x0.png", "x1.png")):  # per class: pred/cls1/x0.png, pred/cls2/x1.png
        (pred / f"cls{index + 1}").mkdir()
        (pred / name).rename(pred / f"cls{index + 1}" / name)
    summary = tmp_path / "paired.json"
    result = _compare(tmp_path, "-q", "--json", str(summary))
    assert result.exit_code == 1, result.output
    expected = (
        "nothing was scored: no prediction has a baseline mask and a ground-truth mask with the same stem; "
        f"predictions folder {str(pred)!r} holds only subfolders (cls1, cls2), which are not read; point "
        "--pred (pred_dir) at one of them or flatten the folder"
    )
    assert f"error: {expected}\n" in result.stderr  # was the first clause alone
    assert json.loads(summary.read_text())["error"] == expected


def test_score_baseline_names_each_folder_of_subfolders(tmp_path: Path) -> None:
    for folder in ("pred", "base", "gt"):
        _mask(tmp_path / folder / "train" / "x0.png")
    result = _compare(tmp_path, "-q")
    assert result.exit_code == 1, result.output
    roots = {folder: str(tmp_path / folder) for folder in ("pred", "base", "gt")}
    assert (
        "error: nothing was scored: no masks found in the three folders: predictions folder "
        f"{roots['pred']!r} holds only subfolders (train), which are not read; point --pred (pred_dir) at "
        f"one of them or flatten the folder; baseline folder {roots['base']!r} holds only subfolders "
        "(train), which are not read; point --baseline (baseline_dir) at one of them or flatten the "
        f"folder; gt folder {roots['gt']!r} holds only subfolders (train), which are not read; point --gt "
        "(gt_dir) at one"
    ) in result.stderr


def test_tune_names_a_masks_folder_of_subfolders(tmp_path: Path) -> None:
    _tune_scene(tmp_path, ["x0", "x1"])
    masks = tmp_path / "masks"
    (masks / "cls1").mkdir()
    for name in ("x0.png", "x1.png"):
        (masks / name).rename(masks / "cls1" / name)
    result = _tune(tmp_path, "-q")
    assert result.exit_code == 1, result.output
    assert (
        f"and a ground truth in {tmp_path / 'gt'}; masks folder {str(masks)!r} holds only subfolders (cls1), "
        "which are not read; point --masks (masks_dir) at one of them or flatten the folder; nothing was "
        "written\n"
    ) in result.stderr
    assert "Traceback" not in result.output


# --------------------------------------------------------------- masks in a lossy format: listed, advice once


def test_score_baseline_lists_jpeg_predictions_with_the_advice_once(tmp_path: Path) -> None:
    _compare_scene(tmp_path, [f"m{index:02d}" for index in range(12)], jpeg_pred=True)
    summary = tmp_path / "paired.json"
    result = _compare(tmp_path, "--json", str(summary))
    assert result.exit_code == 1, result.output
    text = result.stderr
    pred = tmp_path / "pred"
    # was "no masks found in the three folders", and not a word of the 12 JPEG files
    assert "note: 12 file(s) lack a partner in --pred, --baseline or --gt; not scored:" in text
    assert f"{pred / 'm00.jpg'} ({NOT_READ})\n" in text
    assert text.count("masks must be lossless") == 1
    assert f"note: 12 file(s) not read: {ADVICE}\n" in text
    assert text.index("... and 2 more") < text.index("masks must be lossless")
    assert "base/m00.png" not in text  # a partner of a file not read is not listed
    expected = (
        "nothing was scored: no prediction has a baseline mask and a ground-truth mask with the same stem; "
        f"12 files of the predictions folder {NOT_READ}"
    )
    assert f"error: {expected}\n" in text
    data = json.loads(summary.read_text())
    assert data["error"] == expected and data["unmatched"] == []
    assert len(data["not_read"]) == 12  # each entry says why and what to do
    assert data["not_read"][0] == {
        "path": str(pred / "m00.jpg"),
        "folder": "predictions",
        "reason": f"{NOT_READ}; {ADVICE}",
    }


def test_score_baseline_lists_a_jpeg_prediction_beside_the_images_it_compared(tmp_path: Path) -> None:
    _compare_scene(tmp_path, ["a", "b", "c"])
    _mask(tmp_path / "pred" / "d.jpg")
    _mask(tmp_path / "base" / "d.png")
    _mask(tmp_path / "gt" / "d.png")
    result = _compare(tmp_path)
    assert result.exit_code == 0, result.output
    assert "3 image(s)" in result.stdout
    assert f"{tmp_path / 'pred' / 'd.jpg'} ({NOT_READ})\n" in result.stderr  # was silently left out
    assert f"note: 1 file(s) not read: {ADVICE}\n" in result.stderr


def test_tune_lists_jpeg_masks_with_the_advice_once(tmp_path: Path) -> None:
    _tune_scene(tmp_path, [f"m{index:02d}" for index in range(12)], jpeg_masks=True)
    result = _tune(tmp_path)
    assert result.exit_code == 1, result.output
    text = result.stderr
    masks = tmp_path / "masks"
    assert "note: 12 file(s) lack a partner in --masks, --images or --gt; not used:" in text
    assert f"{masks / 'm00.jpg'} ({NOT_READ})\n" in text
    assert text.count("masks must be lossless") == 1
    assert f"note: 12 file(s) not read: {ADVICE}\n" in text
    assert f"a ground truth in {tmp_path / 'gt'}; 12 files of the masks folder {NOT_READ}; nothing" in text


def test_tune_report_holds_the_masks_not_read(tmp_path: Path) -> None:
    _tune_scene(tmp_path, ["a", "b", "c"])
    _coarse(tmp_path / "masks" / "d.jpg")
    _image(tmp_path / "images" / "d.jpg")
    _mask(tmp_path / "gt" / "d.png")
    report = tmp_path / "tune.json"
    result = _tune(tmp_path, "--report", str(report))
    assert result.exit_code == 0, result.output
    assert f"{tmp_path / 'masks' / 'd.jpg'} ({NOT_READ})\n" in result.stderr  # was silently left out
    assert f"note: 1 file(s) not read: {ADVICE}\n" in result.stderr
    data = json.loads(report.read_text())
    assert data["unmatched"] == []  # its image and GT are not called unmatched
    assert data["not_read"] == [
        {"path": str(tmp_path / "masks" / "d.jpg"), "folder": "masks", "reason": f"{NOT_READ}; {ADVICE}"}
    ]
