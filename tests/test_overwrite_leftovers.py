"""An ``--overwrite`` run that does not replace every earlier output says so.

Two ways the output folder can end up holding an earlier run's outputs next to this run's: a file that
fails (its earlier output is not replaced, and is kept: nothing is deleted), and a run stopped by Ctrl-C
or SIGTERM before it reached every file. The first is said in that file's error, the second in the stop
message, which must not advise ``--skip-existing`` (that would keep the earlier outputs).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from maskrefine import _signals
from maskrefine.cli import main
from maskrefine.pipeline import apply_folder

STEMS = ("a", "b", "c")


def _dataset(root: Path) -> tuple[Path, Path]:
    """64x48 images and 8x6 masks."""
    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for stem in STEMS:
        assert cv2.imwrite(str(images / f"{stem}.png"), rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
        assert cv2.imwrite(str(masks / f"{stem}.png"), rng.integers(0, 256, (6, 8), dtype=np.uint8))
    return masks, images


def test_a_failed_file_of_an_overwrite_run_names_the_earlier_output_it_kept(tmp_path: Path) -> None:
    masks, images = _dataset(tmp_path)
    out = tmp_path / "out"
    assert apply_folder(masks, images, out, method="identity", jobs=1).ok
    earlier = {stem: (out / f"{stem}.png").read_bytes() for stem in STEMS}
    (masks / "b.png").write_bytes(b"garbage")  # b fails in the second run
    (out / "c.png").unlink()  # c had no earlier output
    (masks / "c.png").write_bytes(b"garbage")
    report = apply_folder(masks, images, out, method="guided", jobs=1, overwrite=True)
    errors = {o.stem: o.error or "" for o in report.failures}
    assert sorted(errors) == ["b", "c"]
    kept = f"; the output {out / 'b.png'} of an earlier run was there when this --overwrite run started"
    assert kept in errors["b"] and errors["b"].endswith("and was not replaced")
    assert errors["b"].startswith(f"{masks / 'b.png'}: cannot decode")
    assert "earlier run" not in errors["c"]  # nothing was there
    assert (out / "b.png").read_bytes() == earlier["b"]  # kept, never deleted
    assert (out / "a.png").read_bytes() != earlier["a"]  # replaced by the guided output
    assert not (out / "c.png").exists()


def test_without_overwrite_no_failure_mentions_an_earlier_output(tmp_path: Path) -> None:
    masks, images = _dataset(tmp_path)
    (masks / "b.png").write_bytes(b"garbage")
    report = apply_folder(masks, images, tmp_path / "out", method="identity", jobs=1)
    assert [o.stem for o in report.failures] == ["b"]
    assert "earlier run" not in (report.failures[0].error or "")
    # a resumed run skips the outputs it finds, and says nothing of them either
    again = apply_folder(masks, images, tmp_path / "out", method="identity", jobs=1, skip_existing=True)
    assert again.counts["skipped"] == 2 and "earlier run" not in (again.failures[0].error or "")


def test_the_cli_prints_the_kept_earlier_output(tmp_path: Path) -> None:
    masks, images = _dataset(tmp_path)
    out = tmp_path / "out"
    base = ["apply", "--masks", str(masks), "--images", str(images), "--out", str(out), "-j", "1", "-q"]
    assert CliRunner().invoke(main, [*base, "--method", "identity"]).exit_code == 0
    (masks / "a.png").write_bytes(b"")
    result = CliRunner().invoke(main, [*base, "--method", "guided", "--overwrite"])
    assert result.exit_code == 1
    kept = f"the output {out / 'a.png'} of an earlier run was there when this --overwrite run"
    assert kept in result.stderr


@pytest.mark.parametrize(
    ("stop", "code", "why"),
    [(KeyboardInterrupt, 130, "interrupted"), (_signals.Terminated, 143, "terminated (SIGTERM)")],
)
def test_a_stopped_overwrite_run_advises_overwrite_not_skip_existing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop: type[BaseException], code: int, why: str
) -> None:
    import maskrefine.pipeline

    def stopped(*args: object, **kwargs: object) -> None:
        raise stop

    monkeypatch.setattr(maskrefine.pipeline, "apply_folder", stopped)
    masks, images = _dataset(tmp_path)
    base = ["apply", "--masks", str(masks), "--images", str(images), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(main, [*base, "--overwrite"])
    assert result.exit_code == code
    assert result.stderr == (
        f"{why}: outputs already written are complete, but outputs of an earlier run that this --overwrite "
        "run had not replaced yet are still there: rerun with --overwrite to redo every file "
        "(--skip-existing would keep them, mixing the two runs' outputs)\n"
    )
    report = tmp_path / "run.json"
    result = CliRunner().invoke(main, [*base, "--overwrite", "--report", str(report)])
    assert result.stderr.endswith(f"; {report} was not written (any file there is from an earlier run)\n")
    # without --overwrite, resuming is right
    result = CliRunner().invoke(main, base)
    resume = "outputs already written are complete; rerun with --skip-existing to resume"
    assert result.stderr == f"{why}: {resume}\n"


def test_a_stopped_overwrite_predict_advises_overwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")
    import maskrefine.train.predict_job

    def stopped(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(maskrefine.train.predict_job, "predict_folder", stopped)
    _, images = _dataset(tmp_path)
    ckpt = tmp_path / "last.pt"
    ckpt.write_bytes(b"x")
    args = ["predict", "--images", str(images), "--checkpoint", str(ckpt), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(main, [*args, "--overwrite"])
    assert result.exit_code == 130 and "rerun with --overwrite to redo every file" in result.stderr
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 130 and "rerun with --skip-existing to resume" in result.stderr
