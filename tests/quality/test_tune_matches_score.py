"""``tune`` reports, for a setting, the dataset values ``score`` prints for that setting's outputs.

Before, ``tune`` always took max F as the max of the image-averaged curve (``selfmask``/``found`` take the
mean of each image's own max: 0.9719 where ``score`` said 0.9768), summed in float64 where those presets
sum in float32, and stored the F curves in float32 (max F ~2e-9 off ``score``'s under the other presets).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from maskrefine.metrics import PRESETS
from maskrefine.pipeline import score_folder
from maskrefine.quality.tune import tune

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def naive_outputs(naive_examples) -> Path:
    return naive_examples


@pytest.mark.parametrize(
    "preset", [p for p in PRESETS if p != "paper_repo"]
)  # paper_repo: full-size GT crops
def test_tune_summary_is_what_score_prints(naive_outputs, preset: str) -> None:
    report = tune(
        EXAMPLES / "masks", EXAMPLES / "images", EXAMPLES / "gt", methods=["identity"], preset=preset, jobs=1
    )
    (row,) = [r for r in report.rows if r.candidate == report.naive]
    scored = score_folder(naive_outputs, EXAMPLES / "gt", preset=preset, jobs=1).summary
    for metric in ("acc", "iou", "max_fbeta"):
        assert row.summary[metric] == scored[metric], metric
    assert row.change["max_fbeta"].candidate == scored["max_fbeta"]


def test_tune_warns_where_iou_is_undefined_on_some_images(tmp_path: Path) -> None:
    import shutil

    import cv2

    masks, images, gt = (tmp_path / name for name in ("masks", "images", "gt"))
    for src, dst in ((EXAMPLES / "masks", masks), (EXAMPLES / "images", images), (EXAMPLES / "gt", gt)):
        shutil.copytree(src, dst)
    image = cv2.imread(str(images / "100075.jpg"))
    cv2.imwrite(str(images / "zz.jpg"), image)
    cv2.imwrite(str(masks / "zz.png"), np.zeros((21, 31), np.uint8))  # GT and mask both empty: IoU 0/0
    cv2.imwrite(str(gt / "zz.png"), np.zeros(image.shape[:2], np.uint8))
    report = tune(masks, images, gt, methods=["identity"], jobs=1)
    assert report.n_images == 11
    (warning,) = [w for w in report.warnings if "IoU is undefined" in w]
    assert "on 1 of 11 images" in warning and "prints nan" in warning


def _copy_examples(tmp_path: Path) -> tuple[Path, Path, Path]:
    import shutil

    folders = tuple(tmp_path / name for name in ("masks", "images", "gt"))
    for name, folder in zip(("masks", "images", "gt"), folders, strict=True):
        shutil.copytree(EXAMPLES / name, folder)
    return folders  # type: ignore[return-value]


def test_tune_names_stems_with_several_files_in_one_folder(tmp_path: Path) -> None:
    # 41004 (two masks) was left out without a word; 35010 (two GTs) was called a mask without a partner
    masks, images, gt = _copy_examples(tmp_path)
    np.save(masks / "41004.npy", np.zeros((21, 31), np.float32))
    np.save(gt / "35010.npy", np.zeros((321, 481), np.float32))
    report = tune(masks, images, gt, methods=["identity"], jobs=1)
    assert report.n_images == 8
    assert report.unmatched == []
    assert report.duplicates == {
        "35010": [str(gt / "35010.npy"), str(gt / "35010.png")],
        "41004": [str(masks / "41004.npy"), str(masks / "41004.png")],
    }
    assert report.to_dict()["duplicates"] == report.duplicates


def test_score_baseline_names_duplicates_and_a_gt_without_prediction(tmp_path: Path, naive_outputs) -> None:
    # both were dropped without a word: "9 images", no warning, no `duplicates` in the JSON
    import shutil

    from maskrefine.quality.compare import compare_folders

    pred, gt = tmp_path / "pred", tmp_path / "gt"
    shutil.copytree(naive_outputs, pred)
    shutil.copytree(EXAMPLES / "gt", gt)
    np.save(pred / "35010.npy", np.zeros((321, 481), np.float32))
    shutil.copyfile(gt / "100075.png", gt / "zz_gt_only.png")
    report = compare_folders(pred, EXAMPLES / "masks", gt, n_resamples=40)
    assert len(report.rows) == 9
    assert report.duplicates == {"35010": [str(pred / "35010.npy"), str(pred / "35010.png")]}
    assert report.unmatched == [str(gt / "zz_gt_only.png")]
    assert report.to_dict()["duplicates"] == report.duplicates


def test_tune_prints_the_preset_file_name_escaped(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from maskrefine.cli import main

    out = tmp_path / "a\nb.toml"
    args = ["tune", "--masks", EXAMPLES / "masks", "--images", EXAMPLES / "images", "--gt", EXAMPLES / "gt"]
    result = CliRunner().invoke(main, [*map(str, args), "--methods", "identity", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path}/a\\nb.toml: identity [bilinear]" in result.output
    assert out.exists()


def test_tune_quiet_still_warns_about_duplicated_stems(tmp_path: Path) -> None:
    # -q keeps "only the winner and warnings"; the duplicates warning was dropped
    from click.testing import CliRunner

    from maskrefine.cli import main

    masks, images, gt = _copy_examples(tmp_path)
    np.save(masks / "41004.npy", np.zeros((21, 31), np.float32))
    args = ["tune", "--masks", masks, "--images", images, "--gt", gt, "--out", tmp_path / "b.toml"]
    result = CliRunner().invoke(main, [*map(str, args), "--methods", "identity", "-q"])
    assert result.exit_code == 0, result.output
    assert "warning: 1 stem(s) with several files in one folder; not used:" in result.output
