"""The hints of the "nothing was processed/scored" messages (s14): one owner, and made once.

:func:`maskrefine.io.pairs.unpaired_hints` makes them for every job, by one set of rules: the files not
read counted with why, the notes on folders of subfolders only for a folder none of whose files is
listed, twins between the folders that pair, the stem rule for two folders only. The notes on folders
of subfolders are listed on disk once, when the report is built, and kept in it: the message is the
same each time it is made (printed, then written), and reading it lists nothing; a report read back
from JSON never lists the folders it names.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _listing_files import write_image as _image
from _listing_files import write_mask as _mask
from click.testing import CliRunner

from maskrefine.cli import main
from maskrefine.io.pairs import MASK_EXTENSIONS, unread_reason
from maskrefine.pipeline import RunReport, apply_folder, merge_run_reports, read_run_report, score_folder
from maskrefine.pipeline.reports import Unmatched
from maskrefine.quality.compare import PairedScoreReport, compare_folders

NOT_READ = "not read: files of this folder are read from .png, .npy only"


def _subfolders_only(folder: Path) -> None:
    """A per-class folder: masks in cls1/ and cls2/, none directly in it."""
    _mask(folder / "cls1" / "x0.png", 0)
    _mask(folder / "cls2" / "x1.png", 1)


def _note(folder: Path, role: str, option: str) -> str:
    return (
        f"{role} folder {str(folder)!r} holds only subfolders (cls1, cls2), which are not read; point "
        f"{option} at one of them or flatten the folder"
    )


@pytest.fixture
def scandir_calls(monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[str]]:
    """Count the folders listed with ``os.scandir`` from the moment the fixture's function is called."""
    calls: list[str] = []
    real = os.scandir

    def counting(path: Any = ".") -> Any:
        calls.append(os.fspath(path))
        return real(path)

    def start() -> list[str]:
        monkeypatch.setattr(os, "scandir", counting)
        return calls

    return start


# ---------------------------------------------------------------------- one set of rules for every job


def test_two_folders_count_the_files_not_read_with_why_and_keep_the_stem_rule() -> None:
    from maskrefine.io.pairs import unpaired_hints

    files = [
        Unmatched(Path("m/b.jpg"), "masks", unread_reason(MASK_EXTENSIONS)),
        Unmatched(Path("m/a_mask.png"), "masks"),
        Unmatched(Path("i/a.jpg"), "images"),
    ]
    # was: the file not read only counted by the message's "(... 1 file of the masks folder not read)"
    assert unpaired_hints(files, ("masks", "images")) == [
        f"1 file of the masks folder {NOT_READ}",
        "mask file stems must equal image stems: the 1 mask without a partner is named <image stem>_mask; "
        "rename them without '_mask' (e.g. a_mask.png to a.png)",
    ]


def test_three_folders_get_no_stem_rule() -> None:
    from maskrefine.io.pairs import unpaired_hints

    # masks/a.png pairs with images/a.jpg, and has no GT: "a.png pairs with no image" would be false
    files = [Unmatched(Path("m/a.png"), "masks"), Unmatched(Path("i/b.jpg"), "images")]
    assert unpaired_hints(files, ("masks", "images", "gt"), through="masks") == []
    assert unpaired_hints(files, ("masks", "images"))  # two folders: the stem rule


def test_apply_says_why_files_are_not_read_in_the_error_and_the_report(tmp_path: Path) -> None:
    masks, images = tmp_path / "masks", tmp_path / "images"
    for index in range(2):
        _mask(masks / f"m{index}.jpg", index)
        _image(images / f"m{index}.png", index)
    _mask(masks / "alone.png")
    report = tmp_path / "run.json"
    args = ["apply", "--masks", str(masks), "--images", str(images), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(main, [*args, "-j", "1", "--report", str(report)])
    assert result.exit_code == 1, result.output
    expected = (
        "nothing was processed: no file has a partner with the same stem in the other folder (1 mask and 0 "
        f"images without a partner); 2 files of the masks folder {NOT_READ}"
    )
    # was "(1 mask and 0 images without a partner, 2 files of the masks folder not read)"
    assert f"error: {expected}\n" in result.stderr
    assert json.loads(report.read_text())["error"] == expected


def test_score_counts_predictions_not_read_as_score_baseline_does(tmp_path: Path) -> None:
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    for index in range(3):
        _mask(pred / f"m{index}.jpg", index)
        _mask(gt / f"m{index}.png", index)
    report = score_folder(pred, gt, jobs=1)
    # was "(3 files of the predictions folder not read; masks are read from .png and .npy files only)"
    assert report.nothing_scored == (
        "no prediction has a ground-truth mask with the same stem; "
        f"3 files of the predictions folder {NOT_READ}"
    )


def test_score_without_predictions_does_not_call_gt_files_not_read_masks(tmp_path: Path) -> None:
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    _mask(gt / "m0.jpg")
    report = score_folder(pred, gt, jobs=1)
    # was "(the ground-truth folder has 1 mask(s); ...)": a JPEG that is not read
    assert report.nothing_scored == (
        f"no prediction has a ground-truth mask that is read; 1 file of the gt folder {NOT_READ}"
    )


def test_score_with_predictions_whose_ground_truth_is_not_read_does_not_say_none_was_found(tmp_path):
    # a prediction whose GT file is not read is not listed (the unread file is the problem): the error said
    # "no prediction found" with the predictions right there
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    for stem in ("a", "b"):
        _mask(pred / f"{stem}.png")
        _mask(gt / f"{stem}.jpg")
    report = score_folder(pred, gt, jobs=1)
    assert report.nothing_scored == (
        f"no prediction has a ground-truth mask that is read; 2 files of the gt folder {NOT_READ}"
    )


def test_three_folders_name_subfolders_only_of_a_folder_without_a_listed_file(tmp_path: Path) -> None:
    pred, base, gt = tmp_path / "pred", tmp_path / "base", tmp_path / "gt"
    for folder in (pred, base, gt):
        _subfolders_only(folder)
    config = {"pred_dir": str(pred), "baseline_dir": str(base), "gt_dir": str(gt)}
    # a file of --pred is listed (it was there when the folders were paired): --pred holds mask files
    report = PairedScoreReport(unmatched_files=[Unmatched(pred / "x.png", "predictions")], config=config)
    message = str(report.nothing_scored)
    assert "predictions folder" not in message  # was named "holds only subfolders" all the same
    assert _note(base, "baseline", "--baseline (baseline_dir)") in message
    assert _note(gt, "gt", "--gt (gt_dir)") in message


# ------------------------------------------------------------ the folders are listed once, at the job's end


def test_apply_message_is_the_same_after_the_folder_changes(tmp_path: Path, scandir_calls) -> None:
    masks, images = tmp_path / "masks", tmp_path / "images"
    _subfolders_only(masks)
    images.mkdir()
    report = apply_folder(masks, images, tmp_path / "out", method="identity", jobs=1)
    expected = f"no input files found: {_note(masks, 'masks', '--masks (masks_dir)')}"
    assert report.nothing_processed == expected
    shutil.rmtree(masks)  # gone after the run: the message (printed, then written) does not change
    calls = scandir_calls()
    assert report.nothing_processed == expected  # was "no input files found"
    assert report.to_dict()["error"] == f"nothing was processed: {expected}"
    assert report.ok is False
    assert calls == []  # was a listing of both folders at each property read


def test_score_message_is_the_same_after_the_folder_changes(tmp_path: Path, scandir_calls) -> None:
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    _subfolders_only(pred)
    gt.mkdir()
    report = score_folder(pred, gt, jobs=1)
    expected = f"no masks found in the two folders: {_note(pred, 'predictions', '--pred (pred_dir)')}"
    assert report.nothing_scored == expected
    _mask(pred / "x0.png")  # a mask put there since: the report is of the run
    calls = scandir_calls()
    assert report.nothing_scored == expected
    assert report.to_dict()["error"] == f"nothing was scored: {expected}"
    assert report.ok is False
    assert calls == []


def test_compare_message_is_the_same_after_the_folder_changes(tmp_path: Path, scandir_calls) -> None:
    pred, base, gt = tmp_path / "pred", tmp_path / "base", tmp_path / "gt"
    _subfolders_only(pred)
    base.mkdir()
    gt.mkdir()
    report = compare_folders(pred, base, gt, n_resamples=40)
    expected = f"no masks found in the three folders: {_note(pred, 'predictions', '--pred (pred_dir)')}"
    assert report.nothing_scored == expected
    shutil.rmtree(pred)
    calls = scandir_calls()
    assert report.nothing_scored == expected
    assert report.to_dict()["error"] == f"nothing was scored: {expected}"
    assert report.ok is False
    assert calls == []


def test_a_report_built_by_hand_lists_its_folders_when_built(tmp_path: Path, scandir_calls) -> None:
    masks, images = tmp_path / "masks", tmp_path / "images"
    _subfolders_only(masks)
    images.mkdir()
    config = {"masks_dir": str(masks), "images_dir": str(images)}
    report = RunReport(config=config)
    expected = f"no input files found: {_note(masks, 'masks', '--masks (masks_dir)')}"
    shutil.rmtree(masks)
    calls = scandir_calls()
    assert report.nothing_processed == expected  # was "no input files found": listed when read
    assert calls == []
    assert RunReport(config=config, folder_notes=[]).nothing_processed == "no input files found"
    assert calls == []  # notes given: nothing listed


def test_a_report_read_back_never_lists_the_folders_it_names(tmp_path: Path, scandir_calls) -> None:
    masks, images = tmp_path / "masks", tmp_path / "images"
    _subfolders_only(masks)
    images.mkdir()
    path = tmp_path / "run.json"
    run = apply_folder(masks, images, tmp_path / "out", method="identity", jobs=1, report_path=path)
    note = _note(masks, "masks", "--masks (masks_dir)")
    assert json.loads(path.read_text())["error"] == f"nothing was processed: no input files found: {note}"
    calls = scandir_calls()
    read = read_run_report(path)
    # the folder the file names is not listed (it may be another folder by now, or on another machine)
    assert read.nothing_processed == "no input files found"  # was the note, from a listing of the folder
    assert merge_run_reports([path]).report.nothing_processed == "no input files found"
    assert calls == []
    # reports in memory keep the notes their jobs made
    assert merge_run_reports([run]).report.nothing_processed == f"no input files found: {note}"
    assert calls == []


def _run_nothing(tmp_path: Path, job: str) -> Any:
    """Run ``job`` on a first folder of subfolders and empty other folders; return its report."""
    first, second, third = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    _subfolders_only(first)
    second.mkdir()
    third.mkdir()
    if job == "apply":
        return apply_folder(first, second, tmp_path / "out", method="identity", jobs=1)
    if job == "score":
        return score_folder(first, second, jobs=1)
    return compare_folders(first, second, third, n_resamples=40)


@pytest.mark.parametrize("job", ["apply", "score", "score --baseline"])
def test_reading_a_report_lists_no_folder(tmp_path: Path, scandir_calls, job: str) -> None:
    report = _run_nothing(tmp_path, job)
    calls = scandir_calls()
    message = report.nothing_processed if job == "apply" else report.nothing_scored
    assert "holds only subfolders (cls1, cls2)" in str(message)
    assert not report.ok
    assert "holds only subfolders (cls1, cls2)" in report.to_dict()["error"]
    assert calls == []  # was one listing per folder at each of the three reads
