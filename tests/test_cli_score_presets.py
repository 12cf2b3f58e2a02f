"""`maskrefine score`: per-preset CorLoc rules, overrides, size checks, hostile options (issue 10)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from maskrefine.cli import main
from maskrefine.metrics import CorLocEvaluator

H, W, P = 200, 300, 16
GH, GW = -(-H // P), -(-W // P)  # 13 x 19 token grid on the padded 208 x 304 image


def _hashes(*folders: Path) -> dict[str, str]:
    out = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def invoke(args: list[object], *inputs: Path):
    """Run the CLI; no traceback, inputs untouched."""
    before = _hashes(*inputs)
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)
    assert _hashes(*inputs) == before, "an input file was modified"
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def token_data(tmp_path: Path) -> dict[str, Path]:
    """GT masks 200x300 and 13x19 token-grid predictions whose objects touch the last token row/column."""
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    seeds = {}
    for i in range(4):
        truth = np.zeros((H, W), np.uint8)
        truth[150 + 4 * i : 200, 220:300] = 255
        tokens = np.zeros((GH, GW), np.uint8)
        tokens[9 + (i % 2) : 13, 14:19] = 255  # main object, down to the padded edge
        tokens[1:3, 1 : 3 + i] = 255  # a second component
        assert cv2.imwrite(str(gt / f"{i}.png"), truth)
        assert cv2.imwrite(str(pred / f"{i}.png"), tokens)
        seeds[str(i)] = 11 * GW + 16  # inside the main object
    (tmp_path / "seeds.json").write_text(json.dumps(seeds))
    return {"pred": pred, "gt": gt, "seeds": tmp_path / "seeds.json", "root": tmp_path}


def _reference_corloc(d: dict[str, Path], selector: str, seeds: dict | None) -> float:
    ev = CorLocEvaluator(selector, 4, P, iou_dtype="float32")
    for path in sorted(d["pred"].iterdir()):
        tokens = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        truth = cv2.imread(str(d["gt"] / path.name), cv2.IMREAD_GRAYSCALE)
        ys, xs = np.nonzero(truth)
        box = [[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]]
        seed = None if seeds is None else divmod(seeds[path.stem], GW)
        ev.step(tokens, box, name=path.stem, seed=seed, image_size=truth.shape)
    return ev.summary()["corloc"]


def test_tokencut_needs_seeds_then_uses_them_on_the_padded_token_grid(token_data, tmp_path):
    d = token_data
    base = ["score", "--pred", d["pred"], "--gt", d["gt"], "--boxes", "masks"]
    result = invoke(base, d["pred"], d["gt"])
    assert result.exit_code == 2 and "needs the seed patches" in result.output
    assert "pass --seeds (" in result.output and "another --corloc-selector" in result.output
    out = tmp_path / "s.json"
    result = invoke([*base, "--seeds", d["seeds"], "--json", out], d["pred"], d["gt"])
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    seeds = json.loads(d["seeds"].read_text())
    assert summary["corloc"] == _reference_corloc(d, "seed_cc", seeds) == 100.0
    assert summary["corloc_selector"] == "seed_cc" and summary["corloc_connectivity"] == 4
    assert summary["corloc_grid"] == "token" and summary["corloc_iou_dtype"] == "float32"


def test_found_uses_largest_component_on_the_token_grid(token_data, tmp_path):
    d = token_data
    out = tmp_path / "s.json"
    args = [
        "score",
        "--pred",
        d["pred"],
        "--gt",
        d["gt"],
        "--boxes",
        "masks",
        "--preset",
        "found",
        "--json",
        out,
    ]
    result = invoke(args, d["pred"], d["gt"])
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    assert summary["corloc"] == _reference_corloc(d, "largest_cc", None)
    assert summary["corloc_selector"] == "largest_cc" and summary["corloc_grid"] == "token"
    # the old rule (stretch the 13x19 grid onto 200x300, largest box, 8-connectivity) differs here
    pysod_args = [*args[:-4], "--preset", "pysod", "--json", tmp_path / "p.json"]  # each option once
    stretched = invoke(pysod_args, d["pred"], d["gt"])
    assert stretched.exit_code == 0
    assert json.loads((tmp_path / "p.json").read_text())["corloc_grid"] == "pixel"


def test_overrides_and_patch_size(token_data, tmp_path):
    d = token_data
    out = tmp_path / "s.json"
    args = ["score", "--pred", d["pred"], "--gt", d["gt"], "--boxes", "masks", "--json", out]
    args += ["--corloc-selector", "largest_box", "--corloc-connectivity", "8", "--patch-size", "16"]
    result = invoke(args, d["pred"], d["gt"])
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    assert summary["corloc_selector"] == "largest_box" and summary["corloc_connectivity"] == 8
    assert summary["corloc_patch_size"] == 16
    # a patch size that does not fit the grid: per-file CorLoc errors naming the files, exit 1
    args[-1] = "8"
    result = invoke(args, d["pred"], d["gt"])
    assert result.exit_code == 1
    assert "not the token grid of patch size 8" in result.output and "0.png" in result.output


def test_seed_errors_are_per_file(token_data, tmp_path):
    d = token_data
    seeds = tmp_path / "few.json"
    seeds.write_text(json.dumps({"0": 11 * GW + 16, "1": GH * GW}))
    args = ["score", "--pred", d["pred"], "--gt", d["gt"], "--boxes", "masks", "--seeds", seeds]
    result = invoke(args, d["pred"], d["gt"])
    assert result.exit_code == 1
    assert "seed index 247 of '1' lies outside the 13x19 grid" in result.output
    assert "no seed for '2'" in result.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--patch-size", "0"], "--patch-size"),
        (["--patch-size", "100000"], "--patch-size"),
        (["--patch-size", "abc"], "--patch-size"),
        (["--corloc-connectivity", "6"], "--corloc-connectivity"),
        (["--corloc-selector", "biggest"], "--corloc-selector"),
        (["--seeds", ""], "must not be empty"),
        (["--seeds", "/no/such/seeds.json"], "no such file or folder"),
        (
            ["--corloc-selector", "largest_cc", "--seeds", "SEEDS"],
            "--seeds only apply to --corloc-selector 'seed_cc'",
        ),
    ],
)
def test_hostile_corloc_options_are_usage_errors(token_data, extra, message):
    d = token_data
    extra = [str(d["seeds"]) if e == "SEEDS" else e for e in extra]
    result = invoke(
        ["score", "--pred", d["pred"], "--gt", d["gt"], "--boxes", "masks", *extra], d["pred"], d["gt"]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_corloc_options_without_boxes_are_usage_errors(token_data):
    d = token_data
    result = invoke(["score", "--pred", d["pred"], "--gt", d["gt"], "--patch-size", "16"], d["pred"], d["gt"])
    # the message named the API's keywords (patch_size, boxes), which `score --help` does not list
    assert result.exit_code == 2
    assert "--patch-size only applies to CorLoc: pass --boxes as well" in result.output


def test_seeds_fifo_and_bad_json_are_usage_errors_naming_the_file(token_data, tmp_path):
    d = token_data
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    base = ["score", "--pred", d["pred"], "--gt", d["gt"], "--boxes", "masks", "--seeds"]
    result = invoke([*base, fifo], d["pred"], d["gt"])
    refused = "fifo.json: cannot read seed JSON: is a FIFO (named pipe), not a regular file"
    assert result.exit_code == 2 and refused in result.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"0": 1.5}')
    result = invoke([*base, bad], d["pred"], d["gt"])
    assert result.exit_code == 2 and "bad.json" in result.output and "token index" in result.output


@pytest.mark.parametrize("shape", [(W, H), (1, 1)])
def test_transposed_or_1x1_prediction_is_a_per_file_error(token_data, shape):
    d = token_data
    cv2.imwrite(str(d["pred"] / "0.png"), np.full(shape, 255, np.uint8))
    result = invoke(["score", "--pred", d["pred"], "--gt", d["gt"], "--preset", "move"], d["pred"], d["gt"])
    assert result.exit_code == 1
    assert "0.png" in result.output and "uniform down-scale" in result.output
    assert "count" in result.output  # the other three were scored


@pytest.mark.parametrize(
    ("name", "content", "flag"),
    [
        (
            "0.xml",
            "<annotation><object><bndbox><xmin>1e999</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax>"
            "</bndbox></object></annotation>",
            "voc",
        ),
        (
            "coco.json",
            '{"images": [{"id": 0, "file_name": "0.jpg"}], '
            '"annotations": [{"image_id": 0, "bbox": [1e999, 0, 1, 1]}]}',
            "coco",
        ),
        (
            "coco.json",
            '{"images": [{"id": 0, "file_name": "0.jpg"}, {"id": "1", "file_name": "1.jpg"}], '
            '"annotations": []}',
            "coco",
        ),
        ("coco.json", "[" * 50000 + "]" * 50000, "coco"),
    ],
)
def test_hostile_box_files_are_usage_errors_naming_the_file(token_data, tmp_path, name, content, flag):
    d = token_data
    folder = tmp_path / "ann"
    folder.mkdir()
    (folder / name).write_text(content)
    spec = f"voc:{folder}" if flag == "voc" else f"coco:{folder / name}"
    args = ["score", "--pred", d["pred"], "--gt", d["gt"], "--boxes", spec, "--corloc-selector", "largest_cc"]
    result = invoke(args, d["pred"], d["gt"], folder)
    # a COCO file is one input for every image: a usage error; a bad VOC file fails its own image only
    assert result.exit_code == (1 if flag == "voc" else 2), result.output
    assert name in result.output


def test_seed_token_index_on_full_size_predictions_with_patch_size(token_data, tmp_path):
    d = token_data
    full = tmp_path / "full"
    full.mkdir()
    for path in sorted(d["pred"].iterdir()):
        tokens = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        up = np.repeat(np.repeat(tokens, P, axis=0), P, axis=1)[:H, :W]
        cv2.imwrite(str(full / path.name), up)
    out = tmp_path / "s.json"
    base = [
        "score",
        "--pred",
        full,
        "--gt",
        d["gt"],
        "--boxes",
        "masks",
        "--seeds",
        d["seeds"],
        "--json",
        out,
    ]
    # token seeds with --patch-size: the token's centre pixel seeds the component -> same hits as on the grid
    result = invoke([*base, "--patch-size", "16"], full, d["gt"])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["corloc"] == 100.0
    # without --patch-size the index means a pixel of the full-size map: pixel 11*19+16 is background
    result = invoke(base, full, d["gt"])
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    assert summary["corloc"] == 0.0 and summary["corloc_empty_mask"] == 4


def test_one_bad_seed_map_fails_only_its_own_image(token_data, tmp_path):
    # a bad map used to fail the whole run (exit 2), even for the images whose maps were fine
    d = token_data
    maps = tmp_path / "maps"
    maps.mkdir()
    for i in range(4):
        seed = np.zeros((GH, GW), np.uint8)
        seed[11, 16] = 255
        assert cv2.imwrite(str(maps / f"{i}.png"), seed)
    (maps / "2.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    os.unlink(maps / "3.png")
    os.mkfifo(maps / "3.png")
    out = tmp_path / "s.json"
    args = ["score", "--pred", d["pred"], "--gt", d["gt"], "--boxes", "masks", "--seeds", maps, "--json", out]
    result = invoke(args, d["pred"], d["gt"], maps)
    assert result.exit_code == 1, result.output
    assert "bad seed map" in result.output and "2.png" in result.output
    assert "3.png: not a regular file" in result.output
    summary = json.loads(out.read_text())
    assert summary["count"] == 2  # images 0 and 1 were scored, with CorLoc
    assert summary["corloc"] == 100.0
