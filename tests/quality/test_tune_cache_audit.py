"""Second audit of ``maskrefine tune``: a damaged score cache, a cache entry that cannot be written, a
``--report`` at the cache folder, and a run in which every file fails.

* a cache entry of the wrong shape or kind was used as it was: tracebacks (``(3, 1)`` accuracies, a string
  array), an IoU of 7.5 printed and written into the preset, a NaN blamed on the data;
* a folder at an entry's name ended the run with exit 1 and left a temporary file in the cache;
* ``--report <out>.tune-cache`` was refused only after the search, and ``--out`` had been written;
* every file failing was a usage error (exit 2) naming only the first file; ``score`` exits 1 and names
  every file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from quality_cases import write_cases

from maskrefine.cli import main
from maskrefine.errors import NothingScoredError
from maskrefine.quality.tune import tune


def _args(tmp_path: Path, *extra: object) -> list[str]:
    base = ["tune", "--masks", tmp_path / "coarse", "--images", tmp_path / "images", "--gt", tmp_path / "gt"]
    return [str(a) for a in [*base, "--methods", "identity", "-j", "1", "-q", *extra]]


def _entries(cache: Path) -> list[Path]:
    entries = sorted(cache.glob("*.npz"))
    assert entries
    return entries


def _damage(entry: Path, how: str) -> None:
    with np.load(entry) as data:
        arrays = dict(data)
    n = arrays["acc"].shape[0]
    if how == "acc-2d":
        arrays["acc"] = arrays["acc"][:, None]
    elif how == "fbeta-1d":
        arrays["fbeta"] = arrays["fbeta"][:, 0]
    elif how == "fbeta-columns":
        arrays["fbeta"] = arrays["fbeta"][:, :3]
    elif how == "strings":
        arrays["acc"] = np.array(["x"] * n)
    elif how == "complex":
        arrays["iou"] = arrays["iou"].astype(np.complex128)
    elif how == "iou-7.5":
        arrays["iou"][:] = 7.5
    elif how == "acc-nan":
        arrays["acc"][:] = np.nan
    elif how == "empty":
        arrays = {k: np.zeros((0,)) for k in arrays}
    elif how == "short-keys":
        arrays["keys"] = arrays["keys"][:-1]
    np.savez(entry, **arrays)


DAMAGE = [
    "acc-2d",
    "fbeta-1d",
    "fbeta-columns",
    "strings",
    "complex",
    "iou-7.5",
    "acc-nan",
    "empty",
    "short-keys",
]


@pytest.mark.parametrize("how", DAMAGE)
def test_a_damaged_cache_entry_is_recomputed_not_used(tmp_path, how):
    write_cases(tmp_path, 3)
    args = (tmp_path / "coarse", tmp_path / "images", tmp_path / "gt")
    fresh = tune(*args, methods=["identity"], cache_dir=tmp_path / "cache")
    entries = _entries(tmp_path / "cache")
    for entry in entries:
        _damage(entry, how)
    again = tune(*args, methods=["identity"], cache_dir=tmp_path / "cache")
    assert [r.to_dict() for r in again.rows] == [r.to_dict() for r in fresh.rows]
    assert again.n_images == 3 and again.failures == []
    for entry in entries:  # rewritten with the recomputed scores
        with np.load(entry) as data:
            assert data["acc"].shape == (3,) and data["acc"].dtype.kind == "f"


@pytest.mark.parametrize("how", ["iou-7.5", "strings", "acc-2d"])
def test_the_cli_never_prints_or_writes_a_damaged_entry(tmp_path, how):
    write_cases(tmp_path, 3)
    out = tmp_path / "best.toml"
    first = CliRunner().invoke(main, _args(tmp_path, "--out", out))
    assert first.exit_code == 0, first.output
    for entry in _entries(tmp_path / "best.toml.tune-cache"):
        _damage(entry, how)
    again = CliRunner().invoke(main, _args(tmp_path, "--out", out, "--overwrite"))
    assert again.exit_code == 0 and "Traceback" not in again.output
    assert again.stdout == first.stdout
    assert "7.5" not in out.read_text()


def test_an_entry_that_cannot_be_written_leaves_the_scores_uncached(tmp_path):
    write_cases(tmp_path, 3)
    args = (tmp_path / "coarse", tmp_path / "images", tmp_path / "gt")
    fresh = tune(*args, methods=["identity"], cache_dir=tmp_path / "cache")
    entries = _entries(tmp_path / "cache")
    for entry in entries:
        entry.unlink()
        entry.mkdir()  # a folder where the entry goes: os.replace fails
    again = tune(*args, methods=["identity"], cache_dir=tmp_path / "cache")
    assert [r.to_dict() for r in again.rows] == [r.to_dict() for r in fresh.rows]
    assert all(entry.is_dir() and not any(entry.iterdir()) for entry in entries)
    names = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert names == sorted(entry.name for entry in entries)  # no temporary left


def test_report_at_the_cache_folder_is_refused_before_any_work(tmp_path):
    write_cases(tmp_path, 3)
    out = tmp_path / "best.toml"
    cache = tmp_path / "best.toml.tune-cache"
    result = CliRunner().invoke(main, _args(tmp_path, "--out", out, "--report", cache))
    assert result.exit_code == 2, result.output
    assert f"report file {cache} is inside the score cache folder" in result.stderr
    assert not out.exists() and not cache.exists()
    # the cache exists after a run: a report inside it is refused the same way
    assert CliRunner().invoke(main, _args(tmp_path, "--out", out)).exit_code == 0
    inside = cache / "r.json"
    result = CliRunner().invoke(main, _args(tmp_path, "--out", out, "--overwrite", "--report", inside))
    assert result.exit_code == 2 and "is inside the score cache folder" in result.stderr
    assert not inside.exists()


def test_every_file_failing_is_a_file_failure_naming_each_file(tmp_path):
    write_cases(tmp_path, 3)
    for image in sorted((tmp_path / "images").iterdir()):
        image.write_bytes(b"")
    out = tmp_path / "best.toml"
    result = CliRunner().invoke(main, _args(tmp_path, "--out", out))
    assert result.exit_code == 1 and "Traceback" not in result.output
    for stem in ("img00", "img01", "img02"):
        assert f"{stem}.png: file is empty" in result.stderr
    assert "nothing was scored: none of the 3 masks could be scored (each failed); nothing was written" in (
        result.stderr
    )
    assert not out.exists()
    with pytest.raises(NothingScoredError) as info:
        tune(tmp_path / "coarse", tmp_path / "images", tmp_path / "gt", methods=["identity"])
    assert [key for key, _ in info.value.failures] == ["img00", "img01", "img02"]


def test_report_in_a_missing_folder_is_written_there_after_the_run(tmp_path):
    # the README says missing folders above --report are created; tune refused them
    write_cases(tmp_path, 3)
    out = tmp_path / "best.toml"
    report = tmp_path / "reports" / "deep" / "tune.json"
    result = CliRunner().invoke(main, _args(tmp_path, "--out", out, "--report", report))
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text())["rows"]


def test_temporary_files_of_a_killed_run_are_removed_from_the_cache(tmp_path):
    # a run killed while it stored an entry left `.<sha1>.<pid>.tmp.npz` for good (and kept the cache folder
    # from being removed); the next run removes those older than a minute, never another file
    import os
    import time

    write_cases(tmp_path, 4)
    cache = tmp_path / "best.toml.tune-cache"
    cache.mkdir()
    old = cache / f".{'a' * 40}.1234.tmp.npz"
    young = cache / f".{'b' * 40}.99.tmp.npz"
    other = cache / ".notes.tmp.npz"
    for path in (old, young, other):
        path.write_bytes(b"partial")
    an_hour_ago = time.time() - 3600
    for path in (old, other):
        os.utime(path, (an_hour_ago, an_hour_ago))
    result = CliRunner().invoke(main, _args(tmp_path, "--out", tmp_path / "best.toml"))
    assert result.exit_code == 0, result.output
    assert not old.exists() and young.exists() and other.exists()
