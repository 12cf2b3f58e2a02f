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
