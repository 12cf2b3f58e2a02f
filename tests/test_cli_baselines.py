"""`maskrefine apply --method bilateral_solver|crf` and their options: results, usage errors, no data loss."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from test_cli import make_dataset, tree_hash  # noqa: I001 - sibling test helpers (rootdir on sys.path)

import maskrefine
from maskrefine.cli import main


def _run(*args: str):
    return CliRunner().invoke(main, ["apply", *args], catch_exceptions=False)


def _read_float(path: Path) -> np.ndarray:
    return np.load(path)


@pytest.mark.parametrize(
    ("method", "extra", "params"),
    [
        ("bilateral_solver", [], {}),
        (
            "bilateral_solver",
            ["--preset", "paper_repo", "--lam", "128"],
            {"preset": "paper_repo", "lam": 128.0},
        ),
        ("bilateral_solver", ["--preset", "found"], {"preset": "found"}),
        (
            "bilateral_solver",
            ["--sigma-spatial", "8", "--sigma-luma", "1e9"],
            {"sigma_spatial": 8.0, "sigma_luma": 1e9},
        ),
        ("crf", [], {}),
        (
            "crf",
            ["--preset", "deep_spectral", "--crf-output", "prob", "--iterations", "3", "--gt-prob", "0.8"],
            {"preset": "deep_spectral", "output": "prob", "iterations": 3, "gt_prob": 0.8},
        ),
        (
            "crf",
            [
                "--bilateral-sxy",
                "20",
                "--bilateral-srgb",
                "5",
                "--gaussian-sxy",
                "1",
                "--gaussian-compat",
                "0",
                "--bilateral-compat",
                "4",
            ],
            {
                "bilateral_sxy": 20.0,
                "bilateral_srgb": 5.0,
                "gaussian_sxy": 1.0,
                "gaussian_compat": 0.0,
                "bilateral_compat": 4.0,
            },
        ),
    ],
)
def test_apply_writes_what_refine_returns(tmp_path, method, extra, params):
    masks, images = make_dataset(tmp_path, ("a", "b"))
    before = tree_hash(masks, images)
    out = tmp_path / "out"
    result = _run(
        "--masks",
        str(masks),
        "--images",
        str(images),
        "--out",
        str(out),
        "--method",
        method,
        "--format",
        "npy",
        "-j",
        "1",
        "-q",
        *extra,
    )
    assert result.exit_code == 0, result.output
    assert tree_hash(masks, images) == before
    for stem in ("a", "b"):
        image = cv2.imread(str(images / f"{stem}.png"))[:, :, ::-1].astype(np.float32) / 255
        mask = cv2.imread(str(masks / f"{stem}.png"), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
        expected = maskrefine.refine(image, mask, method, **params)
        np.testing.assert_allclose(
            _read_float(out / f"{stem}.npy"), expected, atol=1e-5
        )  # 8-bit decode to float may differ in the last bit


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "bilateral_solver", "--preset", "tokencat"], "preset"),
        (["--method", "bilateral_solver", "--preset", ""], "preset"),
        (["--method", "crf", "--preset", "tokencut"], "preset"),
        (["--method", "bilateral_solver", "--sigma-spatial", "-16"], "--sigma-spatial"),
        (["--method", "bilateral_solver", "--sigma-chroma", "inf"], "--sigma-chroma"),
        (["--method", "bilateral_solver", "--sigma-luma", "abc"], "sigma-luma"),
        (["--method", "bilateral_solver", "--lam", "nan"], "lam"),
        (["--method", "crf", "--iterations", "-1"], "iterations"),
        (["--method", "crf", "--iterations", "1e9"], "iterations"),
        (["--method", "crf", "--gt-prob", "1"], "--gt-prob"),
        (["--method", "crf", "--gt-prob", "0.5"], "--gt-prob must lie above 0.5"),
        (["--method", "crf", "--gt-prob", "0.2"], "--gt-prob"),
        (["--method", "crf", "--crf-output", "mask"], "crf-output"),
        (["--method", "guided", "--sigma-spatial", "16"], "--method guided does not take --sigma-spatial"),
        (["--method", "crf", "--radius", "3"], "--method crf does not take --radius"),
    ],
)
def test_bad_options_are_usage_errors_and_nothing_is_written(tmp_path, args, message):
    masks, images = make_dataset(tmp_path, ("a",))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["apply", "--masks", str(masks), "--images", str(images), "--out", str(out), *args]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.skipif(sys.platform == "win32", reason="FIFOs and symlinks are POSIX")
@pytest.mark.parametrize("method", ["bilateral_solver", "crf"])
def test_fifo_and_symlink_outputs_are_not_written_through(tmp_path, method):
    masks, images = make_dataset(tmp_path, ("a", "b"))
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / "a.png")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (out / "b.png").symlink_to(victim)
    args = ("--masks", str(masks), "--images", str(images), "--out", str(out), "--method", method, "-j", "1")
    result = _run(*args)
    assert result.exit_code == 2  # existing outputs: refused before any work
    assert "a.png" in result.output and "b.png" in result.output
    assert stat.S_ISFIFO(os.lstat(out / "a.png").st_mode) and (out / "b.png").is_symlink()
    result = _run(*args, "--overwrite", "-q")
    assert result.exit_code == 2  # not regular files we own: refused even with --overwrite ...
    assert "a.png" in result.output or "b.png" in result.output
    assert stat.S_ISFIFO(os.lstat(out / "a.png").st_mode) and (out / "b.png").is_symlink()
    assert victim.read_text() == "keep me"  # ... and never written through
