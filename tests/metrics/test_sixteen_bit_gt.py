"""16-bit GT: v / 65535 on the 0..255 scale, compared with each preset's GT threshold exactly.

A 16-bit GT was turned into float32 v / 65535 before the comparison, and float32 rounding put v = 32896
(exactly 128 on the 0..255 scale) above `GT > 128` (preset `pysod`): an empty GT scored as a full one.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from maskrefine.cli import main
from maskrefine.metrics import PRESETS, score_image
from maskrefine.metrics.evaluator import gt_foreground, paper_repo_geometry

ALL_CODES = np.arange(65536, dtype=np.uint16).reshape(256, 256)


@pytest.mark.parametrize(
    "threshold", sorted({float(PRESETS[p].gt_threshold_f) for p in PRESETS} | {0.0, 127.5})
)
def test_every_16_bit_code_is_foreground_exactly_when_its_value_exceeds_the_threshold(
    threshold: float,
) -> None:
    expected = np.array([Fraction(int(v) * 255, 65535) > Fraction(threshold) for v in range(65536)])
    got = gt_foreground(ALL_CODES, threshold).ravel()
    np.testing.assert_array_equal(got, expected)


def _square(value: int) -> np.ndarray:
    gt = np.zeros((24, 24), np.uint16)
    gt[6:18, 6:18] = value
    gt[0, 0] = 300  # keeps the file a plain 16-bit one (values above 255)
    return gt


def test_a_16_bit_gt_at_exactly_128_is_background_under_pysod() -> None:
    pred = np.zeros((24, 24), np.uint8)
    pred[6:18, 6:18] = 200
    row_16, _ = score_image(pred, _square(128 * 257), "pysod")
    gt_8 = (_square(128 * 257) // 257).astype(np.uint8)  # the same values on the 8-bit scale: 128 and 1
    row_8, _ = score_image(pred, gt_8, "pysod")
    assert row_16["empty_gt"] and row_8["empty_gt"]
    assert row_16 == row_8
    above, _ = score_image(pred, _square(128 * 257 + 1), "pysod")
    assert not above["empty_gt"] and above["iou"] == 1.0


def _score_one_pair(folder: Path, pred: np.ndarray, gt: np.ndarray, preset: str) -> dict:
    """``maskrefine score --json`` of one pair written as PNG files under ``folder``: the summary."""
    (folder / "pred").mkdir(parents=True)
    (folder / "gt").mkdir()
    cv2.imwrite(str(folder / "pred" / "a.png"), pred)
    cv2.imwrite(str(folder / "gt" / "a.png"), gt)
    report = folder / "summary.json"
    args = ["score", "--pred", folder / "pred", "--gt", folder / "gt", "--json", report]
    result = CliRunner().invoke(main, [*map(str, args), "--preset", preset, "-j", "1", "-q"])
    assert result.exit_code == 0, result.output
    return json.loads(report.read_text())


def test_score_reads_a_16_bit_gt_file_exactly(tmp_path: Path) -> None:
    pred = np.zeros((24, 24), np.uint8)
    pred[6:18, 6:18] = 200
    pred[0, 0] = 10
    gt_16 = _square(128 * 257)
    gts = {"16": gt_16, "8": (gt_16 // 257).astype(np.uint8)}
    summaries = {name: _score_one_pair(tmp_path / name, pred, gt, "pysod") for name, gt in gts.items()}
    assert summaries["16"]["empty_gt"] == 1
    assert summaries["16"]["iou"] == 0.0 and summaries["16"]["max_fbeta"] == 0.0
    for key in ("acc", "iou", "max_fbeta", "mae", "s_measure", "max_e_measure", "weighted_fbeta"):
        assert summaries["16"][key] == summaries["8"][key], key


@pytest.mark.parametrize("preset", ["paper_repo"])
def test_a_16_bit_prediction_under_paper_repo_scores_as_its_8_bit_twin(preset: str) -> None:
    # paper_repo_geometry resized a uint16 map as raw 0..65535 floats: MAE came out near -30000; then as
    # float32 v / 65535, which differed from the 8-bit map's resize (rounded to codes) in the last digits
    rng = np.random.default_rng(5)
    gt = np.zeros((400, 500), np.uint8)
    gt[100:300, 120:420] = 255
    pred_8 = (rng.random((400, 500)) * 255).astype(np.uint8)
    row_8, _ = score_image(pred_8, gt, preset)
    row_16, _ = score_image(pred_8.astype(np.uint16) * 257, gt, preset)
    assert row_16 == row_8
    out = paper_repo_geometry(pred_8.astype(np.uint16) * 257)
    assert out.dtype == np.uint8 and np.array_equal(out, paper_repo_geometry(pred_8))
    # a 16-bit map that is not 8-bit codes on the 16-bit scale is resized as float32 v / 65535
    graded = pred_8.astype(np.uint16) * 257 + 1
    out = paper_repo_geometry(graded)
    assert out.dtype == np.float32 and 0.0 <= out.min() and out.max() <= 1.0
    row_graded, _ = score_image(graded, gt, preset)
    assert row_graded["mae"] == pytest.approx(row_8["mae"], abs=1e-3)


def test_a_0_65535_gt_under_paper_repo_scores_as_its_0_255_file(tmp_path: Path) -> None:
    # the paper repo reads the GT with convert('L'), which turns a 0/65535 file into exactly the 0/255
    # map; maskrefine resized it as float32 instead, and IoU moved in the 4th digit (an audit's repro)
    yy, xx = np.mgrid[:60, :80]
    gt_8 = (((yy - 30) ** 2 + (xx - 40) ** 2) < 400).astype(np.uint8) * 255
    noise = np.random.default_rng(5).normal(0, 0.3, gt_8.shape)
    pred = np.rint(np.clip(cv2.GaussianBlur(gt_8 / 255.0, (0, 0), 3) + noise, 0, 1) * 255).astype(np.uint8)
    gts = {"8": gt_8, "16": gt_8.astype(np.uint16) * 257}
    summaries = {name: _score_one_pair(tmp_path / name, pred, gt, "paper_repo") for name, gt in gts.items()}
    for key in ("acc", "iou", "max_fbeta", "mae", "s_measure"):
        assert summaries["16"][key] == summaries["8"][key], key
    assert summaries["16"]["reference_reads_otherwise"] == summaries["8"]["reference_reads_otherwise"]


def test_a_graded_16_bit_gt_under_paper_repo_is_noted(tmp_path: Path) -> None:
    # the paper repo's convert('L') clips graded 16-bit values at 255: score says so
    (tmp_path / "pred").mkdir()
    (tmp_path / "gt").mkdir()
    pred = np.zeros((40, 40), np.uint8)
    pred[10:30, 10:30] = 200
    gt = np.zeros((40, 40), np.uint16)
    gt[10:30, 10:30] = 40000
    cv2.imwrite(str(tmp_path / "pred" / "a.png"), pred)
    cv2.imwrite(str(tmp_path / "gt" / "a.png"), gt)
    args = ["score", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--json", tmp_path / "s.json"]
    result = CliRunner().invoke(main, [*map(str, args), "--preset", "paper_repo", "-j", "1"])
    assert result.exit_code == 0, result.output
    assert "convert('L') clips the values at 255" in result.output
    noted = json.loads((tmp_path / "s.json").read_text())["reference_reads_otherwise"]
    assert noted and "paper repo" in json.dumps(noted)


def test_paper_repo_geometry_refuses_other_integer_types() -> None:
    with pytest.raises(TypeError, match="uint8, uint16, bool or float"):
        paper_repo_geometry(np.zeros((400, 400), np.int32))


def test_paper_repo_geometry_checks_float_values_and_types() -> None:
    # floats at 255 or NaN came back resized (255.0, NaN) though the docstring says [0, 1]
    with pytest.raises(ValueError, match=r"`array` must have finite values in \[0, 1\]"):
        paper_repo_geometry(np.full((400, 400), 255.0))
    with pytest.raises(ValueError, match=r"`array` must have finite values in \[0, 1\]"):
        paper_repo_geometry(np.full((400, 400), np.nan, np.float32))
    for value in ("x", None, [[0.5]]):
        with pytest.raises(TypeError, match="`array` must be a NumPy array"):
            paper_repo_geometry(value)  # type: ignore[arg-type]
    half = np.full((400, 400), 0.25)
    assert np.array_equal(paper_repo_geometry(half.astype(">f8")), paper_repo_geometry(half))
