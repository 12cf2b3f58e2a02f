"""The Python scoring path the README shows gives the numbers ``maskrefine score`` prints."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from maskrefine._units import to_unit_float
from maskrefine.io import read_mask, read_mask_file
from maskrefine.metrics import PRESETS, Evaluator
from maskrefine.pipeline import apply_folder, score_folder

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_codes_become_correctly_rounded_float32_quotients(dtype) -> None:
    """uint8 v -> float32(v / 255) as torch and NumPy divide; the product with float32(1/255) used before
    was one float32 step off for 126 of the 256 codes (code 254 then passed a '>' threshold at 254/255)."""
    codes = np.arange(np.iinfo(dtype).max + 1, dtype=dtype)
    scale = np.float32(np.iinfo(dtype).max)
    exact = (codes.astype(np.float64) / float(scale)).astype(np.float32)  # correctly rounded quotient
    assert np.array_equal(to_unit_float(codes), exact)
    assert np.array_equal(to_unit_float(codes), codes.astype(np.float32) / scale)


@pytest.fixture(scope="module")
def refined(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("api") / "refined"
    apply_folder(EXAMPLES / "masks", EXAMPLES / "images", out, method="identity", jobs=1)
    return out


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize("preset", list(PRESETS))
def test_evaluator_on_stored_codes_equals_score(refined, preset) -> None:
    evaluator = Evaluator(preset)
    for path in sorted(refined.glob("*.png")):
        gt = read_mask_file(EXAMPLES / "gt" / path.name).pixels
        evaluator.step(read_mask_file(path).pixels, gt, name=path.stem)
    api = evaluator.summary()
    cli = score_folder(refined, EXAMPLES / "gt", preset=preset, jobs=1).summary
    for key, value in cli.items():
        if isinstance(value, float):
            assert _same(api[key], value), key


@pytest.mark.parametrize("preset", ["move", "selfmask", "found", "pysod"])
def test_evaluator_on_read_mask_floats_is_within_float64_rounding(refined, preset) -> None:
    """Before the division fix, read_mask floats gave SelfMask's max F 0.8680 for one image the CLI scores
    0.9709 (code 254 one float32 step below the threshold 254/255)."""
    evaluator = Evaluator(preset)
    for path in sorted(refined.glob("*.png")):
        evaluator.step(read_mask(path), read_mask(EXAMPLES / "gt" / path.name), name=path.stem)
    api = evaluator.summary()
    cli = score_folder(refined, EXAMPLES / "gt", preset=preset, jobs=1).summary
    for key, value in cli.items():
        if isinstance(value, float):
            assert api[key] == pytest.approx(value, rel=1e-12, abs=1e-12, nan_ok=True), key


def _scored(preset: str = "tokencut", weighted_f: bool = True):
    from maskrefine.metrics import score_image

    pred = read_mask_file(EXAMPLES / "masks" / "35010.png").pixels
    gt = read_mask_file(EXAMPLES / "gt" / "35010.png").pixels
    return score_image(pred, gt, preset, weighted_f=weighted_f)


def test_add_scored_equals_step() -> None:
    from maskrefine.metrics import score_image

    stepped, added = Evaluator("selfmask"), Evaluator("selfmask")
    for path in sorted((EXAMPLES / "masks").glob("*.png")):
        pred, gt = read_mask_file(path).pixels, read_mask_file(EXAMPLES / "gt" / path.name).pixels
        stepped.step(pred, gt, name=path.stem)
        added.add_scored(*score_image(pred, gt, "selfmask"), name=path.stem)
    assert added.per_image() == stepped.per_image()
    assert added.summary() == stepped.summary()


@pytest.mark.parametrize(
    ("change", "error", "fragment"),
    [
        (lambda row, curves: ("not a row", curves), TypeError, "`row` must be the row dict"),
        (lambda row, curves: ({k: v for k, v in row.items() if k != "iou"}, curves), ValueError, "lacks iou"),
        (lambda row, curves: ({**row, "mae": "0.1"}, curves), TypeError, "`row['mae']` must be a number"),
        (lambda row, curves: ({**row, "acc": True}, curves), TypeError, "`row['acc']`"),
        (lambda row, curves: ({**row, "weighted_fbeta": None}, curves), ValueError, "no weighted_fbeta"),
        (lambda row, curves: (row, None), ValueError, "`curves` must be the dict"),
        (
            lambda row, curves: (row, {**curves, "extra": curves["fbeta"]}),
            ValueError,
            "`curves` must be the dict",
        ),
        (lambda row, curves: (row, {**curves, "fbeta": curves["fbeta"][:-1]}), ValueError, "shape (255,)"),
        (lambda row, curves: (row, {**curves, "fbeta": 0.5}), ValueError, "`curves['fbeta']`"),
        (
            lambda row, curves: (row, {**curves, "recall": curves["recall"].astype(int)}),
            ValueError,
            "float array",
        ),
    ],
)
def test_add_scored_refuses_what_score_image_does_not_make(change, error, fragment) -> None:
    evaluator = Evaluator("tokencut")
    row, curves = change(*_scored())
    with pytest.raises(error, match=re.escape(fragment)):
        evaluator.add_scored(row, curves)
    assert len(evaluator) == 0  # nothing accumulated


def test_add_scored_refuses_another_presets_curves() -> None:
    evaluator = Evaluator("pysod")  # 256 thresholds; tokencut's curves have 255
    with pytest.raises(ValueError, match=r"shape \(256,\)"):
        evaluator.add_scored(*_scored("tokencut"))
