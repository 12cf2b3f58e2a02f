"""Smoke run of bench/quality.py on 5 SOD images (skipped without ../shared/data)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.data
def test_bench_quality_smoke(sod_dir, tmp_path):
    out = tmp_path / "quality--smoke.json"
    env = dict(os.environ, MASKREFINE_SHARED_DATA=str(sod_dir.parent), PYTHONPATH=str(REPO_ROOT))
    command = [
        sys.executable,
        str(REPO_ROOT / "bench" / "quality.py"),
        "--images",
        "5",
        "--quick",
        "--jobs",
        "1",
        "--sources",
        "GT",
        "DSS",
        "--json",
        str(out),
        "--cache",
        str(tmp_path / "cache"),
        "--no-plots",
        "--no-others",  # bilateral solver and CRF are slow; the rest of the path is the same
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(out.read_text())
    assert set(data["final"]) == {"binary x8", "binary x16", "soft x8", "soft x16"}
    for block in data["final"].values():
        assert block["n_images"] == 5
        naive_rows = [r for r in block["rows"] if r["candidate"] == block["naive"]]
        assert naive_rows and all(r["change"]["iou"]["change"] == 0 for r in naive_rows)
        for row in block["rows"]:
            iou = row["change"]["iou"]
            assert iou["low"] <= iou["change"] + 1e-12 and iou["change"] <= iou["high"] + 1e-12
            assert iou["wins"] + iou["ties"] + iou["losses"] == iou["n"] == 5
        assert {r["source"] for r in block["rows"]} == {"GT", "DSS", "methods (mean)"}
        assert any(r["candidate"] == "auto" for r in block["rows"])
    tables = (tmp_path / "quality.md").read_text()
    assert "| refiner |" in tables and "binary x16" in tables


@pytest.mark.data
def test_bench_tune_optimism_smoke(sod_dir, tmp_path):
    out = tmp_path / "tune_optimism--smoke.json"
    env = dict(os.environ, MASKREFINE_SHARED_DATA=str(sod_dir.parent), PYTHONPATH=str(REPO_ROOT))
    command = [sys.executable, str(REPO_ROOT / "bench" / "tune_optimism.py"), "--sources", "GT"]
    command += ["--images", "40", "--sizes", "10", "20", "--draws", "30", "--null-draws", "10", "--jobs", "1"]
    command += ["--json", str(out), "--cache", str(tmp_path / "cache")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())["results"]["GT"]
    assert result["settings"] == 50  # the coarse guided grid besides naive bilinear upsampling
    assert [row["subset_size"] for row in result["optimism"]] == [10, 20]
    for row in result["optimism"]:
        assert row["draws"] == 30 and row["mean_reported"] >= 0  # naive (change 0) is always a candidate
        worse = row["share_other_images_worse_than_minus_0_001"]
        assert 0 <= worse <= row["share_other_images_not_better"] <= 1
    assert result["null_30"]["draws"] == 10 and 0 <= result["null_30"]["share_interval_above_0"] <= 1
    assert "subsets of  10" in done.stdout and "overstated by" in done.stdout


@pytest.mark.data
def test_bench_full_size_grids_smoke(sod_dir, tmp_path):
    out = tmp_path / "grids.json"
    env = dict(os.environ, MASKREFINE_SHARED_DATA=str(sod_dir.parent), PYTHONPATH=str(REPO_ROOT))
    command = [sys.executable, str(REPO_ROOT / "bench" / "full_size_grids.py"), "--images", "12"]
    command += ["--jobs", "1", "--json", str(out), "--cache", str(tmp_path / "cache")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(out.read_text())["results"]
    for kind in ("binary", "soft"):
        assert sum(results[kind]["auto_kinds"].values()) == results[kind]["images"] == 12
        assert results[kind]["auto_kinds"].get(f"{kind} x16 (full-size blocks)", 0) >= 10
        iou = results[kind]["comparisons"]["iou"]
        assert iou["n"] == 12 and iou["low"] <= iou["change"] <= iou["high"]
