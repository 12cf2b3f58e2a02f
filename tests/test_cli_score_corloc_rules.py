"""`maskrefine score` CorLoc: the pixel grid's seeds, predictions that cannot be boxed, GT boxes from masks
under each preset's GT rule (fixes found while documenting CorLoc, docs/corloc.md)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from maskrefine.cli import main

H, W, P = 200, 300, 16
GH, GW = -(-H // P), -(-W // P)  # a 13 x 19 grid: a 1/16 down-scale of 200 x 300


def run(args: list[object]):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def grid_data(tmp_path: Path) -> dict[str, Path]:
    """GT 200x300 with one object at the bottom right; 13x19 predictions with that object and a second,
    larger-bbox-free component at the top left."""
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    for i in range(3):
        truth = np.zeros((H, W), np.uint8)
        truth[150 + 4 * i : 200, 220:300] = 255
        tokens = np.zeros((GH, GW), np.uint8)
        tokens[9 + (i % 2) : 13, 14:19] = 255
        tokens[1:3, 1:4] = 255
        assert cv2.imwrite(str(gt / f"{i}.png"), truth)
        assert cv2.imwrite(str(pred / f"{i}.png"), tokens)
    seeds = tmp_path / "seeds.json"
    seeds.write_text(json.dumps({str(i): 11 * GW + 16 for i in range(3)}))  # inside the object, pred grid
    return {"pred": pred, "gt": gt, "seeds": seeds}


def test_seed_on_the_pixel_grid_indexes_the_predictions_own_grid(grid_data, tmp_path):
    d = grid_data
    out = tmp_path / "s.json"
    args = ["score", "--pred", d["pred"], "--gt", d["gt"], "--boxes", "masks", "--preset", "pysod"]
    args += ["--corloc-selector", "seed_cc", "--seeds", d["seeds"], "--json", out]
    result = run(args)
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    assert summary["corloc_grid"] == "pixel"
    # read on the 200x300 pixel grid, index 225 would be pixel (1, 25): background, an empty mask
    assert summary["corloc_empty_mask"] == 0
    assert summary["corloc"] == 100.0


def test_seed_outside_the_predictions_grid_is_a_per_file_error(grid_data, tmp_path):
    d = grid_data
    seeds = tmp_path / "far.json"
    seeds.write_text(json.dumps({"0": GH * GW, "1": 0, "2": 0}))  # one past the 13x19 grid
    args = ["score", "--pred", d["pred"], "--gt", d["gt"], "--boxes", "masks", "--preset", "pysod"]
    args += ["--corloc-selector", "seed_cc", "--seeds", seeds]
    result = run(args)
    assert result.exit_code == 1
    assert "outside the 13x19 grid" in result.output and "0.png" in result.output


def test_paper_repo_crop_is_not_stretched_into_a_box(tmp_path):
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    truth = np.zeros((H, W), np.uint8)
    truth[50:150, 100:200] = 255
    crop = np.zeros((320, 320), np.uint8)
    crop[100:220, 100:220] = 255
    assert cv2.imwrite(str(gt / "a.png"), truth) and cv2.imwrite(str(pred / "a.png"), crop)
    plain = run(["score", "--pred", pred, "--gt", gt, "--preset", "paper_repo"])
    assert plain.exit_code == 0, plain.output  # the saliency metrics accept the 320x320 crop
    boxed = run(["score", "--pred", pred, "--gt", gt, "--preset", "paper_repo", "--boxes", "masks"])
    assert boxed.exit_code == 1
    assert "a.png" in boxed.output and "neither the GT size 200x300 nor a uniform down-scale" in boxed.output


@pytest.mark.parametrize(("preset", "expected"), [("tokencut", 100.0), ("found", 0.0), ("pysod", 0.0)])
def test_gt_boxes_from_masks_follow_the_presets_gt_rule(tmp_path, preset, expected):
    # object A stored at 255, object B at 100 (a graded GT); the prediction covers B only
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    truth = np.zeros((H, W), np.uint8)
    truth[10:60, 10:80] = 255
    truth[120:190, 150:290] = 100
    mask = np.zeros((H, W), np.uint8)
    mask[120:190, 150:290] = 255
    assert cv2.imwrite(str(gt / "a.png"), truth) and cv2.imwrite(str(pred / "a.png"), mask)
    out = tmp_path / "s.json"
    args = ["score", "--pred", pred, "--gt", gt, "--boxes", "masks", "--preset", preset]
    args += ["--corloc-selector", "largest_box", "--json", out]
    result = run(args)
    assert result.exit_code == 0, result.output
    # tokencut: GT > 0 makes B an object; found (== 255) and pysod (> 128) do not
    assert json.loads(out.read_text())["corloc"] == expected


def test_a_seed_map_of_another_size_than_the_grid_is_a_per_file_error(grid_data, tmp_path):
    d = grid_data
    maps = tmp_path / "maps"
    maps.mkdir()
    for i in range(3):
        seed = np.zeros((GH, GW) if i else (GH + 1, GW), np.uint8)  # 0: one row too many
        seed[11, 16] = 255
        assert cv2.imwrite(str(maps / f"{i}.png"), seed)
    out = tmp_path / "s.json"
    args = ["score", "--pred", d["pred"], "--gt", d["gt"], "--boxes", "masks", "--seeds", maps, "--json", out]
    result = run(args)  # tokencut: seed_cc on the token grid
    assert result.exit_code == 1
    assert (
        "0.png" in result.output
        and "seed map of '0' is 14x19, but the prediction's grid is 13x19" in result.output
    )
    summary = json.loads(out.read_text())
    assert summary["corloc_count"] == 2 and summary["corloc"] == 100.0


@pytest.mark.parametrize("grid", [True, False])
def test_a_float64_npy_prediction_is_binarised_as_stored(tmp_path, grid):
    # a float64 0.5 + 1e-9 was cast to float32 (0.5) before "> 0.5": the object vanished and the box
    # fell on the other component (CorLoc 0 instead of 100)
    pred, gt, voc = tmp_path / "pred", tmp_path / "gt", tmp_path / "voc"
    for folder in (pred, gt, voc):
        folder.mkdir()
    tokens = np.zeros((4, 4), np.float64)
    tokens[0:2, 0:2] = 0.5 + 1e-9
    tokens[3, 3] = 1.0
    values = tokens if grid else np.kron(tokens, np.ones((16, 16)))
    np.save(pred / "a.npy", values)
    truth = np.zeros((64, 64), np.uint8)
    truth[0:32, 0:32] = 255
    assert cv2.imwrite(str(gt / "a.png"), truth)
    (voc / "a.xml").write_text(
        "<annotation><object><name>p</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>32</xmax><ymax>32</ymax>"
        "</bndbox></object></annotation>"
    )
    out = tmp_path / "s.json"
    args = ["score", "--pred", pred, "--gt", gt, "--preset", "found", "--boxes", f"voc:{voc}", "-j", "1"]
    result = run([*args, *(["--patch-size", "16"] if grid else []), "--json", out])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["corloc"] == 100.0
