"""``apply --skip-existing`` resumes only with the settings its report records for the outputs it keeps.

Before, a run resumed with another ``--method`` (or radius, format, input folders...) kept the first run's
outputs and wrote the rest with the new settings: one folder holding masks of two settings, and a report
that claimed one. The report of the interrupted run (the ``--report`` the resumed run will replace) says
which settings made the outputs already there; a resume that differs in one of them is refused before
anything is written (exit 2), naming the setting, both values and the report.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

import maskrefine.pipeline.merge as merge
from maskrefine.cli import main
from maskrefine.errors import ConfigError
from maskrefine.pipeline import apply_folder

STEMS = [f"{index:02d}" for index in range(5)]


def _pairs(root: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    masks, images = root / "masks", root / "images"
    masks.mkdir(parents=True)
    images.mkdir()
    for stem in STEMS:
        cv2.imwrite(str(images / f"{stem}.png"), rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
        cv2.imwrite(str(masks / f"{stem}.png"), rng.integers(0, 256, (24, 32), dtype=np.uint8))
    return masks, images


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _interrupted_run(tmp_path: Path, *extra: str) -> tuple[Path, Path, Path, Path]:
    """A guided run whose last two outputs are gone (as after a kill), with its report."""
    masks, images = _pairs(tmp_path)
    out, report = tmp_path / "out", tmp_path / "r.json"
    args = [*_apply_args(masks, images, out), "--method", "guided", "--radius", "2"]
    args += ["--report", str(report), *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    for stem in STEMS[-2:]:
        (out / f"{stem}.png").unlink()
    return masks, images, out, report


def _apply_args(masks: Path, images: Path, out: Path) -> list[str]:
    return ["apply", "--masks", str(masks), "--images", str(images), "--out", str(out)]


def _resume(masks: Path, images: Path, out: Path, report: Path, *settings: str):
    args = [*_apply_args(masks, images, out), "--report", str(report), "--skip-existing", *settings]
    return CliRunner().invoke(main, args)


@pytest.mark.parametrize(
    ("settings", "difference"),
    [
        (["--method", "identity"], "--method (method) is 'identity', but the report records 'guided'"),
        (["--method", "guided", "--radius", "3"], "--radius (params radius) is 3, but the report records 2"),
        (
            ["--method", "guided", "--radius", "2", "--guide", "color"],
            "--guide (guide) is 'color', but the report records 'mean'",
        ),
        (
            ["--method", "guided", "--radius", "2", "--binary-input"],
            "--binary-input (binary_input) is given, but the report records not given",
        ),
        ([], "--method (method) is 'auto', but the report records 'guided'"),  # the default method is auto
        # each named by the option typed, not the report's key alone
        (
            ["--method", "guided", "--radius", "2", "--format", "png16"],
            "--format (fmt) is 'png16', but the report records 'png8'",
        ),
        (
            ["--method", "guided", "--radius", "2", "--mask-scale", "255"],
            "--mask-scale (mask_scale) is '255', but the report records 'auto'",
        ),
        (
            ["--method", "guided", "--radius", "2", "--apply-exif"],
            "--apply-exif/--ignore-exif (apply_exif) is --apply-exif, but the report records --ignore-exif",
        ),
    ],
)
def test_a_resume_with_other_settings_is_refused_before_anything_is_written(tmp_path, settings, difference):
    masks, images, out, report = _interrupted_run(tmp_path)
    before, report_before = _tree(out), report.read_bytes()
    result = _resume(masks, images, out, report, *settings)
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert (
        f"--skip-existing: {difference} ({report}); 3 of the 3 outputs already in {out} are older" in message
    )
    assert "mix" in message and "Traceback" not in message
    assert _tree(out) == before  # nothing written, nothing removed
    assert report.read_bytes() == report_before


def test_the_same_settings_resume_and_write_only_the_missing_files(tmp_path):
    masks, images, out, report = _interrupted_run(tmp_path)
    kept = _tree(out)
    result = _resume(masks, images, out, report, "--method", "guided", "--radius", "2")
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["counts"]["skipped"] == 3 and data["counts"]["written"] == 2
    assert {name: body for name, body in _tree(out).items() if name in kept} == kept


@pytest.mark.parametrize("settings", [["--jobs", "2"], ["--max-pixels", "100000"], ["--shard", "1/1"]])
def test_settings_that_do_not_change_an_output_may_differ(tmp_path, settings):
    # a file refused for its size is resumed with a larger --max-pixels; --jobs and --shard split the work
    masks, images, out, report = _interrupted_run(tmp_path)
    result = _resume(masks, images, out, report, "--method", "guided", "--radius", "2", *settings)
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text())["counts"]["written"] == 2


def test_input_folders_spelled_another_way_are_the_same_folders(tmp_path):
    masks, images, out, report = _interrupted_run(tmp_path)
    (tmp_path / "link").symlink_to(masks)
    result = _resume(tmp_path / "link", images, out, report, "--method", "guided", "--radius", "2")
    assert result.exit_code == 0, result.output


def test_other_input_folders_are_refused(tmp_path):
    masks, images, out, report = _interrupted_run(tmp_path)
    other = tmp_path / "other_masks"
    other.mkdir()
    for path in masks.iterdir():
        other.joinpath(path.name).write_bytes(path.read_bytes())
    result = _resume(other, images, out, report, "--method", "guided", "--radius", "2")
    assert result.exit_code == 2 and "--masks (masks_dir) is " in result.output


def test_a_report_of_another_output_folder_says_nothing_of_these_outputs(tmp_path):
    masks, images, out, report = _interrupted_run(tmp_path)
    elsewhere = tmp_path / "out2"
    result = _resume(masks, images, elsewhere, report, "--method", "identity")
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text())["config"]["method"] == "identity"


def test_the_library_raises_config_error_naming_the_setting(tmp_path):
    masks, images, out, report = _interrupted_run(tmp_path)
    refused = r"--skip-existing: --method \(method\) is 'identity', but the report"
    with pytest.raises(ConfigError, match=refused):
        apply_folder(masks, images, out, method="identity", skip_existing=True, report_path=report)
    apply_folder(
        masks, images, out, method="guided", params={"radius": 2}, skip_existing=True, report_path=report
    )


def test_a_report_rewritten_by_another_tool_is_not_compared(tmp_path):
    # laid out otherwise (one line): its settings are not found, so nothing is claimed about them
    masks, images, out, report = _interrupted_run(tmp_path)
    report.write_text(json.dumps(json.loads(report.read_text())))
    assert merge.recorded_config(report) is None
    result = _resume(masks, images, out, report, "--method", "identity")
    assert result.exit_code == 0, result.output


def test_recorded_config_reads_only_the_beginning_of_a_large_report(tmp_path, monkeypatch):
    masks, images, out, report = _interrupted_run(tmp_path)
    text = report.read_text()
    assert merge.recorded_config(report)["params"] == {"radius": 2, "eps": 0.001}
    # a config cut by the end of the prefix read is not guessed at
    cut = text.index('"config"') + 40
    monkeypatch.setattr(merge, "REPORT_PREFIX_BYTES", cut)
    assert merge.recorded_config(report) is None
    # a report of many files (the entries after the config are not read)
    monkeypatch.setattr(merge, "REPORT_PREFIX_BYTES", 4096)
    data = json.loads(text)
    data["files"] = data["files"] * 20_000
    report.write_text(json.dumps(data, indent=2))
    assert report.stat().st_size > 4096 * 100
    assert merge.recorded_config(report)["method"] == "guided"


@pytest.mark.parametrize("kind", ["missing", "folder", "fifo", "empty", "not json", "config not an object"])
def test_recorded_config_of_hostile_files_is_none_without_blocking(tmp_path, kind):
    path = tmp_path / "r.json"
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)  # opened without blocking: no writer, and never read
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "not json":
        path.write_text('{\n  "config": {"method": \n')
    elif kind == "config not an object":
        path.write_text('{\n  "config": ["guided"]\n}\n')
    assert merge.recorded_config(path) is None


def test_a_report_older_than_every_kept_output_does_not_describe_them(tmp_path):
    # a later run stopped (SIGTERM, kill) before it wrote its report: the outputs are its own, and the
    # report's settings say nothing of them; refusing (and advising the report's settings) mixed the folder
    masks, images, out, report = _interrupted_run(tmp_path)
    for output in out.iterdir():
        output.unlink()
    args = [*_apply_args(masks, images, out), "--method", "identity"]
    assert CliRunner().invoke(main, args).exit_code == 0  # a run that never wrote r.json
    (out / f"{STEMS[0]}.png").unlink()
    result = _resume(masks, images, out, report, "--method", "identity")
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["config"]["method"] == "identity" and data["counts"]["skipped"] == len(STEMS) - 1


def test_outputs_older_than_the_report_are_counted_in_the_refusal(tmp_path):
    # 3 outputs of the report's guided run, 2 of a later identity run that wrote no report: resuming the
    # identity run would keep the 3 guided ones
    masks, images, out, report = _interrupted_run(tmp_path)
    args = [*_apply_args(masks, images, out), "--method", "identity"]
    assert CliRunner().invoke(main, [*args, "--skip-existing"]).exit_code == 0
    (out / f"{STEMS[-1]}.png").unlink()
    result = _resume(masks, images, out, report, "--method", "identity")
    assert result.exit_code == 2, result.output
    assert f"3 of the 4 outputs already in {out} are older than that report" in " ".join(
        result.output.split()
    )


def test_a_changed_parameter_is_named_on_its_own(tmp_path):
    # the parameters of the bilateral solver print longer than a message shows: the one that differs is named
    masks, images, out, report = _interrupted_run(tmp_path, "--binary-input")
    settings = ["--method", "guided", "--radius", "2", "--eps", "0.01", "--binary-input"]
    result = _resume(masks, images, out, report, *settings)
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "--skip-existing: --eps (params eps) is 0.01, but the report records 0.001 (" in message
    assert "radius" not in message


def test_a_path_an_older_version_recorded_as_typed_is_not_compared(tmp_path):
    masks, images, out, report = _interrupted_run(tmp_path)
    text = report.read_text()
    report.write_text(text.replace(json.dumps(str(masks)), json.dumps("masks"), 1))
    assert merge.recorded_config(report)["masks_dir"] == "masks"
    result = _resume(masks, images, out, report, "--method", "guided", "--radius", "2")
    assert result.exit_code == 0, result.output


def test_a_config_nested_too_deep_is_not_read(tmp_path):
    path = tmp_path / "r.json"
    path.write_text('{\n  "ok": true,\n  "config": {"a": ' + "[" * 200_000 + "]" * 200_000 + "}\n}\n")
    assert merge.recorded_config(path) is None


def _bilateral_run(tmp_path: Path, *settings: str) -> tuple[Path, Path, Path, Path]:
    masks, images = _pairs(tmp_path)
    out, report = tmp_path / "out", tmp_path / "r.json"
    args = [*_apply_args(masks, images, out), "--method", "bilateral_solver", "--preset", "tokencut"]
    result = CliRunner().invoke(main, [*args, *settings, "--report", str(report)])
    assert result.exit_code == 0, result.output
    (out / f"{STEMS[-1]}.png").unlink()
    return masks, images, out, report


def test_a_presets_own_value_spelled_out_is_the_same_setting(tmp_path):
    # review s14 #7: refused, though the outputs are the same; another value is still refused, by name
    masks, images, out, report = _bilateral_run(tmp_path)
    preset = ["--method", "bilateral_solver", "--preset", "tokencut"]
    other = _resume(masks, images, out, report, *preset, "--sigma-luma", "12")
    assert other.exit_code == 2, other.output
    message = " ".join(other.output.split())
    assert "--sigma-luma (params sigma_luma) is 12.0, but the report records 16.0" in message
    same = _resume(masks, images, out, report, *preset, "--sigma-luma", "16", "--sigma-chroma", "8")
    assert same.exit_code == 0, same.output
    assert json.loads(report.read_text())["counts"]["written"] == 1


def test_a_setting_the_preset_leaves_unset_is_still_compared(tmp_path):
    masks, images, out, report = _bilateral_run(tmp_path, "--sigma-luma", "16")
    result = _resume(masks, images, out, report, "--method", "bilateral_solver", "--preset", "paper_repo")
    message = " ".join(result.output.split())
    assert result.exit_code == 2 and "--preset (params preset) is 'paper_repo'" in message
