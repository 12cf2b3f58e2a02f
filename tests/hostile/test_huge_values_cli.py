"""Huge numbers that reach the CLI through files (preset files, train configs) and through data (a very
elongated mask under the paper_repo geometry): a one-line error naming the file or value, exit 2 for a
usage problem, nothing written, no traceback, no memory blow-up."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

DIGITS_400 = "1" + "0" * 400  # beyond float range: float() raised OverflowError
DIGITS_5000 = "1" + "0" * 5000  # beyond Python's int-conversion limit: the parsers raised ValueError

PRESET_TOML = (
    '[refine]\nmethod = "guided"\nguide = "color"\nupsample = "bilinear"\n\n[refine.params]\n{param}\n'
)


@pytest.mark.parametrize(
    "name, text, problem",
    [
        ("big_eps.toml", PRESET_TOML.format(param=f"eps = {DIGITS_400}\nradius = 11"),
         "`eps` must be a finite float > 0"),
        ("big_eps.json", '{"refine": {"method": "guided", "params": {"eps": ' + DIGITS_400 + "}}}",
         "`eps` must be a finite float > 0"),
        ("big_lam.toml", '[refine]\nmethod = "bilateral_solver"\n[refine.params]\nlam = ' + DIGITS_400 + "\n",
         "`lam` must be a finite number in [0, 1e+08]"),
        ("big_radius.json", '{"refine": {"method": "guided", "params": {"radius": ' + DIGITS_5000 + "}}}",
         "not valid JSON (Exceeds the limit (4300 digits)"),
        ("big_radius.toml", PRESET_TOML.format(param=f"radius = {DIGITS_5000}"),
         "not valid TOML (Exceeds the limit (4300 digits)"),
    ],
)  # fmt: skip
def test_huge_number_in_a_preset_file_is_a_usage_error(hostile, name: str, text: str, problem: str) -> None:
    hostile.path(name).write_text(text, encoding="utf-8")
    result = hostile.run(
        "apply", "--masks", "masks", "--images", "images", "--out", "refined", "--jobs", "1",
        "--preset-file", name, exit=2, names=[name],
    )  # fmt: skip
    assert problem in result.stderr, result.stderr
    assert len(result.stderr) < 1000  # the value is shortened, not echoed digit by digit


@pytest.mark.parametrize(
    "line, problem",
    [
        (f"lr = {DIGITS_400}", "training setting lr must be a finite number"),
        (f"gf_eps = {DIGITS_400}", "training setting gf_eps must be a finite number"),
        (f"batch_size = {DIGITS_5000}", "invalid TOML (Exceeds the limit (4300 digits)"),
    ],
)
def test_huge_number_in_a_train_config_is_a_usage_error(hostile, line: str, problem: str) -> None:
    pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")
    hostile.path("cfg.toml").write_text(line + "\n", encoding="utf-8")
    result = hostile.run(
        "train", "--images", "images", "--out", "run", "--backbone", "pixels", "--preset", "tiny",
        "--max-steps", "1", "-q", "--config", "cfg.toml", exit=2,
        names=["cfg.toml"] if "TOML" in problem else [],
    )  # fmt: skip
    assert problem in result.stderr and len(result.stderr) < 1000, result.stderr


def test_elongated_mask_under_paper_repo_geometry_is_a_named_failure(hostile) -> None:
    # the shorter side goes to 335 px and the longer in proportion: a 2x400000 mask became 335x67e6
    # pixels (tens of GB, a MemoryError under a limit, else the machine swaps); now refused per file
    band = np.zeros((2, 400_000), np.uint8)
    band[:, 1000:200_000] = 255
    hostile.write_mask("gt/long.png", band)
    hostile.write_mask("pred/long.png", band)
    prelude = """
import resource
resource.setrlimit(resource.RLIMIT_AS, (3 * 1024**3, 3 * 1024**3))  # the old resize fails here, not swaps
"""
    result = hostile.run(
        *hostile.score_args("--preset", "paper_repo"),
        exit=1,
        names=["long.png"],
        prelude=prelude,
        timeout=300,
    )
    assert "MemoryError" not in result.stderr, result.stderr
    assert "more than 1e+08 pixels" in result.stderr, result.stderr
    assert cv2.imread(str(hostile.path("gt/long.png")), cv2.IMREAD_UNCHANGED).shape == (2, 400_000)
