"""apply_folder when its output folder is re-pointed at the masks folder during the run (audit s12-crash #1).

The output folder is checked (not an input folder) once, at the start; the writes used to look
``out/<name>`` up by path again, so a ``--out`` symlink re-pointed at the masks folder (or the folder
renamed and a symlink to the masks put in its place) made ``--overwrite`` replace the input masks. The
swap here happens from inside the job, right after its first file is written, so it does not depend on
timing; with worker processes, the first worker to finish a file does it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

import maskrefine.pipeline.apply as apply_job
import maskrefine.pipeline.workers as workers
from maskrefine.pipeline import apply_folder

STEMS = [f"{index:02d}" for index in range(8)]


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _swap_after_first_file(monkeypatch: pytest.MonkeyPatch, swap, once: Path) -> None:
    """Run ``swap()`` once, right after the job's first file is written (in whichever process wrote it)."""
    original = apply_job._apply_one

    def one(task):
        outcome = original(task)
        try:
            os.mkdir(once)  # atomic: exactly one call, in one process, swaps
        except FileExistsError:
            return outcome
        swap()
        return outcome

    monkeypatch.setattr(apply_job, "_apply_one", one)


def _swap_scene(tmp_path: Path, how: str, seed: int):
    """Inputs, an --out, the swap that re-points it at the masks folder, and where the outputs must land."""
    rng = np.random.default_rng(seed)
    masks, images = tmp_path / "masks", tmp_path / "images"
    masks.mkdir()
    images.mkdir()
    for stem in STEMS:
        cv2.imwrite(str(images / f"{stem}.png"), rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))
        cv2.imwrite(str(masks / f"{stem}.png"), rng.integers(0, 256, (12, 16), dtype=np.uint8))
    real = tmp_path / "runs" / "xyz"
    real.mkdir(parents=True)
    if how == "link re-pointed":  # out -> runs/xyz, then out -> masks (ln -sfn masks out)
        out = tmp_path / "out"
        out.symlink_to(real, target_is_directory=True)

        def swap() -> None:
            (tmp_path / "out.new").symlink_to(masks, target_is_directory=True)
            os.replace(tmp_path / "out.new", out)

        written_to = real
    else:  # mv runs/xyz runs/xyz.old; ln -s masks runs/xyz
        out = real
        written_to = real.with_name("xyz.old")

        def swap() -> None:
            real.rename(written_to)
            real.symlink_to(masks, target_is_directory=True)

    return masks, images, out, swap, written_to


@pytest.mark.parametrize("how", ["link re-pointed", "folder replaced by a link"])
@pytest.mark.parametrize("jobs", ["1", "2 processes", "2 threads"])
def test_apply_overwrite_never_writes_into_the_folder_out_is_re_pointed_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str, jobs: str
) -> None:
    masks, images, out, swap, written_to = _swap_scene(tmp_path, how, seed=5)
    before = {"masks": _hashes(masks), "images": _hashes(images)}
    _swap_after_first_file(monkeypatch, swap, tmp_path / "swapped")
    if jobs == "2 threads":  # where fork is unavailable
        monkeypatch.setattr(workers, "_FORK_SAFE", False)
    report = apply_folder(masks, images, out, method="identity", overwrite=True, jobs=int(jobs[0]))

    assert (tmp_path / "swapped").is_dir()  # the swap happened during the run
    assert {"masks": _hashes(masks), "images": _hashes(images)} == before  # inputs untouched, nothing added
    # every file went into the folder that was checked and opened (it still exists: the job holds it)
    assert report.ok, [outcome.error for outcome in report.outcomes if outcome.error]
    assert sorted(p.name for p in written_to.iterdir()) == [f"{stem}.png" for stem in STEMS]


@pytest.mark.parametrize("how", ["link re-pointed", "folder replaced by a link"])
def test_a_report_inside_a_re_pointed_out_is_not_written_into_the_input_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    # --report out/run.json was written by path at the end of the run: after the swap, into the masks folder
    from maskrefine.errors import ReportNotWrittenError

    masks, images, out, swap, _ = _swap_scene(tmp_path, how, seed=6)
    before = _hashes(masks)
    _swap_after_first_file(monkeypatch, swap, tmp_path / "swapped")
    with pytest.raises(ReportNotWrittenError, match="changed during the run") as info:
        report_path = out / "run.json"
        apply_folder(masks, images, out, method="identity", overwrite=True, jobs=1, report_path=report_path)
    assert _hashes(masks) == before  # no run.json added to the masks folder
    assert info.value.report.ok and len(info.value.report.outcomes) == len(STEMS)
