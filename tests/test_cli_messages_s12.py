"""Messages of the s12 audits: each says what went wrong and what to do.

Stems that do not pair (counted per folder, with the renaming that makes them pair), masks in a lossy
format, ``--preset paper --binary-input``, options a --method does not take, the Ctrl-C message when
--report (or score's --csv/--json) was given, and help texts (metavars, defaults, --skip-existing).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from maskrefine import _signals
from maskrefine.cli import main
from maskrefine.io.pairs import IMAGE_EXTENSIONS, MASK_EXTENSIONS, unread_reason
from maskrefine.pipeline import apply_folder
from maskrefine.pipeline.reports import Unmatched
from maskrefine.refiners import REFINERS

STEMS = ("100075", "100080", "101085", "102061")


def _dataset(root: Path, mask_name: str = "{}.png", mask_ext_write: str = ".png") -> tuple[Path, Path]:
    """64x48 images and 8x6 masks; ``mask_name`` formats each mask's file name from its image stem."""
    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for stem in STEMS:
        assert cv2.imwrite(str(images / f"{stem}.png"), rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
        assert cv2.imwrite(str(masks / mask_name.format(stem)), rng.integers(0, 256, (6, 8), dtype=np.uint8))
    return masks, images


def _one_line(text: str) -> str:
    """The output with click's help wrapping undone."""
    return re.sub(r"\s+", " ", text)


def _apply(masks: Path, images: Path, out: Path, *extra: str):
    args = ["apply", "--masks", str(masks), "--images", str(images), "--out", str(out), "-j", "1", *extra]
    return CliRunner().invoke(main, args)


# ---------------------------------------------------------------------- stems that do not pair (user 5)


def test_nothing_processed_counts_each_folder_and_names_the_mask_suffix(tmp_path: Path) -> None:
    # was "(8 unmatched, 0 duplicated stem(s))": the 4 images counted with the 4 masks, and no way out
    masks, images = _dataset(tmp_path, "{}_mask.png")
    report = tmp_path / "run.json"
    result = _apply(masks, images, tmp_path / "out", "--report", str(report))
    assert result.exit_code == 1, result.output
    expected = (
        "nothing was processed: no file has a partner with the same stem in the other folder "
        "(4 masks and 4 images without a partner); mask file stems must equal image stems: all 4 masks "
        "without a partner are named <image stem>_mask; rename them without '_mask' "
        "(e.g. 100075_mask.png to 100075.png)"
    )
    assert f"error: {expected}\n" in result.stderr
    assert json.loads(report.read_text())["error"] == expected  # the JSON report says the same
    # the renaming it suggests works
    for path in masks.iterdir():
        path.rename(path.with_name(path.name.replace("_mask", "")))
    assert _apply(masks, images, tmp_path / "out2", "--method", "identity").exit_code == 0


def test_nothing_processed_without_a_common_suffix_still_says_stems_must_match(tmp_path: Path) -> None:
    masks, images = _dataset(tmp_path, "x{}.png")
    for index, path in enumerate(sorted(masks.iterdir())):  # no common prefix either
        path.rename(masks / f"m{index}.png")
    result = _apply(masks, images, tmp_path / "out")
    assert result.exit_code == 1
    assert (
        "(4 masks and 4 images without a partner); mask file stems must equal image stems: e.g. m0.png "
        "pairs with no image; rename the files so that their stems match"
    ) in result.stderr


def _unmatched(masks: list[str], images: list[str]) -> list[Unmatched]:
    return [Unmatched(Path(f"m/{name}"), "masks") for name in masks] + [
        Unmatched(Path(f"i/{name}"), "images") for name in images
    ]


def test_stem_hint_names_a_prefix_a_suffix_of_images_and_a_majority() -> None:
    from maskrefine.io.pairs import stem_hint
    from maskrefine.pipeline.reports import unpaired_counts

    roles = ("masks", "images")
    prefixed = _unmatched(["gt_a.png", "gt_b.png", "gt_c.png"], ["a.jpg", "b.jpg", "c.jpg"])
    assert "all 3 masks without a partner are named gt_<image stem>; rename them without 'gt_' " in str(
        stem_hint(prefixed, roles)
    )
    # the images carry the suffix; most (not all) of them
    images_suffixed = _unmatched(["a.png", "b.png", "c.png"], ["a_rgb.jpg", "b_rgb.jpg", "zz.jpg"])
    hint = str(stem_hint(images_suffixed, roles))
    assert "2 of the 3 images without a partner are named <mask stem>_rgb" in hint
    assert "(e.g. a_rgb.jpg to a.jpg)" in hint
    # one folder without unpaired files: stems are not the problem, no hint
    assert stem_hint(_unmatched([], ["a.jpg"]), roles) is None
    counts = unpaired_counts(
        [*_unmatched(["a.png"], []), Unmatched(Path("m/b.jpg"), "masks", "not read")], roles, 2
    )
    # the file not read is counted by the hints, with why (s14)
    assert counts == "1 mask and 0 images without a partner, 2 duplicated stems"


def test_score_nothing_scored_counts_each_folder_and_names_the_suffix(tmp_path: Path) -> None:
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    for stem in STEMS:
        mask = np.full((6, 8), 255, np.uint8)
        assert cv2.imwrite(str(pred / f"{stem}_pred.png"), mask)
        assert cv2.imwrite(str(gt / f"{stem}.png"), mask)
    result = CliRunner().invoke(main, ["score", "--pred", str(pred), "--gt", str(gt), "-q", "-j", "1"])
    assert result.exit_code == 1
    assert (
        "(4 predictions and 4 ground-truth masks without a partner; masks are read from .png and .npy "
        "files only); prediction file stems must equal ground-truth mask stems: all 4 predictions without "
        "a partner are named <ground-truth mask stem>_pred; rename them without '_pred'"
    ) in result.stderr


# ------------------------------------------------------------------------------ JPEG masks (user 9)


def test_jpeg_masks_are_named_with_what_to_do(tmp_path: Path) -> None:
    masks, images = _dataset(tmp_path, "{}.jpg")
    result = _apply(masks, images, tmp_path / "out")
    assert result.exit_code == 1
    # s14: counted with why, as score --baseline and tune do (was "(4 files of the masks folder not read)")
    assert (
        "other folder; 4 files of the masks folder not read: files of this folder are read from .png, .npy "
        "only\n"
    ) in result.stderr
    # the advice is said once after the list (s13), not on each file's line
    assert "100075.jpg (not read: files of this folder are read from .png, .npy only)\n" in result.stderr
    assert (
        "note: 4 file(s) not read: masks must be lossless: save or convert them to PNG (float maps to "
        ".npy); a JPEG's compression changes mask values"
    ) in result.stderr


def test_unread_reason_lists_each_folder_kinds_extensions() -> None:
    assert unread_reason(MASK_EXTENSIONS).startswith(
        "not read: files of this folder are read from .png, .npy only; "
    )
    for_images = unread_reason(IMAGE_EXTENSIONS)
    assert (
        for_images
        == "not read: files of this folder are read from .png, .jpg, .jpeg, .bmp, .tif, .tiff, .webp only"
    )


# ----------------------------------------------------------------- --preset paper --binary-input (user 6)


def test_preset_with_binary_input_gives_the_equivalent_options(tmp_path: Path) -> None:
    masks, images = _dataset(tmp_path)
    result = _apply(masks, images, tmp_path / "out", "--preset", "paper", "--binary-input")
    assert result.exit_code == 2
    assert (
        "drop --binary-input. For --preset paper with nearest upsampling (binary masks), give its options "
        "instead: --method guided --radius 9 --eps 0.001 --binary-input."
    ) in _one_line(result.output)
    result = _apply(masks, images, tmp_path / "out", "--preset", "paper", "--radius", "4")
    assert (
        "To change a setting of --preset paper, give its options instead: "
        "--method guided --radius 9 --eps 0.001." in _one_line(result.output)
    )
    # the options named are the preset: same output files, byte for byte
    assert _apply(masks, images, tmp_path / "preset", "--preset", "paper").exit_code == 0
    spelled = ["--method", "guided", "--radius", "9", "--eps", "0.001"]
    assert _apply(masks, images, tmp_path / "spelled", *spelled).exit_code == 0
    for stem in STEMS:
        name = f"{stem}.png"
        assert (tmp_path / "preset" / name).read_bytes() == (tmp_path / "spelled" / name).read_bytes()


# --------------------------------------------------------------- options a --method takes (user 7)

#: A value click accepts for each option (the library's checks are not reached: apply_folder is stubbed).
_VALUES = {
    "--radius": "3",
    "--eps": "0.01",
    "--subsample": "2",
    "--guide": "luma",
    "--sigma-spatial": "8",
    "--sigma-luma": "8",
    "--sigma-chroma": "4",
    "--lam": "128",
    "--iterations": "3",
    "--gt-prob": "0.8",
    "--gaussian-sxy": "2",
    "--gaussian-compat": "2",
    "--bilateral-sxy": "50",
    "--bilateral-srgb": "10",
    "--bilateral-compat": "5",
    "--crf-output": "prob",
}
_PRESETS = {"bilateral_solver": "tokencut", "crf": "deeplab"}


def _with_value(option: str, method: str) -> list[str]:
    if option == "--binary-input":
        return [option]
    return [option, _PRESETS[method] if option == "--preset" else _VALUES[option]]


@pytest.fixture
def stopped_apply(monkeypatch: pytest.MonkeyPatch):
    """``apply_folder`` replaced by a Ctrl-C: a run that gets there passed every check of the CLI."""
    import maskrefine.pipeline

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(maskrefine.pipeline, "apply_folder", interrupted)


def test_guided_and_identity_name_every_option_they_take(tmp_path: Path) -> None:
    masks, images = _dataset(tmp_path)
    result = _apply(masks, images, tmp_path / "out", "--method", "guided", "--subsample", "2")
    assert result.exit_code == 2
    # was "refiner 'guided' does not accept parameter(s) --subsample; accepted: --radius, --eps"
    assert (
        "Error: --method guided does not take --subsample; its options: "
        "--radius, --eps, --guide, --binary-input." in result.output
    )
    assert "apply [OPTIONS]" in result.output  # a usage error like the others
    result = _apply(masks, images, tmp_path / "out", "--method", "identity", "--iterations", "3")
    assert "--method identity does not take --iterations; its options: --binary-input." in result.output
    result = _apply(masks, images, tmp_path / "out", "--method", "guided", "--preset", "tokencut")
    assert "--method guided does not take --preset; its options:" in result.output


@pytest.mark.parametrize("method", [name for name in REFINERS if name != "auto"])
def test_the_options_listed_for_a_method_are_the_ones_it_takes(
    tmp_path: Path, stopped_apply, method: str
) -> None:
    masks, images = _dataset(tmp_path)
    wrong = "--lam" if method != "bilateral_solver" else "--radius"
    result = _apply(masks, images, tmp_path / "out", "--method", method, *_with_value(wrong, method))
    assert result.exit_code == 2, result.output
    listed = re.search(rf"--method {method} does not take {wrong}; its options: (.*)\.", result.output)
    assert listed is not None, result.output
    options = listed[1].split(", ")
    for option in options:  # each one listed gets past the CLI's checks (to the stubbed job)
        result = _apply(masks, images, tmp_path / "out", "--method", method, *_with_value(option, method))
        assert result.exit_code == 130, (option, result.output)
    for option in set(_VALUES) - set(options):  # and each one not listed is refused
        result = _apply(masks, images, tmp_path / "out", "--method", method, *_with_value(option, method))
        assert result.exit_code == 2, (option, result.output)
    assert set(options) >= {f"--{name.replace('_', '-')}" for name in REFINERS[method].defaults} - {
        "--output"
    }


# ------------------------------------------------------------ Ctrl-C with --report (crash 3)


@pytest.mark.parametrize(
    ("stop", "code", "why"),
    [(KeyboardInterrupt, 130, "interrupted"), (_signals.Terminated, 143, "terminated (SIGTERM)")],
)
def test_interrupted_apply_says_the_report_was_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop: type[BaseException], code: int, why: str
) -> None:
    import maskrefine.pipeline

    def stopped(*args: object, **kwargs: object) -> None:
        raise stop

    monkeypatch.setattr(maskrefine.pipeline, "apply_folder", stopped)
    masks, images = _dataset(tmp_path)
    report = tmp_path / "run.json"
    report.write_text("{}")  # an earlier run's
    result = _apply(masks, images, tmp_path / "out", "--method", "identity", "--report", str(report))
    assert result.exit_code == code
    assert result.stderr == (
        f"{why}: outputs already written are complete; rerun with --skip-existing to resume; {report} was "
        "not written (any file there is from an earlier run)\n"
    )
    result = _apply(masks, images, tmp_path / "out", "--method", "identity")
    assert (
        result.stderr
        == f"{why}: outputs already written are complete; rerun with --skip-existing to resume\n"
    )
    # a stopped --overwrite run: --skip-existing would keep the earlier outputs it had not replaced yet
    result = _apply(masks, images, tmp_path / "out", "--overwrite", "--report", str(report))
    assert result.exit_code == code
    assert result.stderr == (
        f"{why}: outputs already written are complete, but outputs of an earlier run that this --overwrite "
        "run had not replaced yet are still there: rerun with --overwrite to redo every file "
        f"(--skip-existing would keep them, mixing the two runs' outputs); {report} was not written (any "
        "file there is from an earlier run)\n"
    )


def test_interrupted_score_names_the_csv_and_json_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import maskrefine.pipeline

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(maskrefine.pipeline, "score_folder", interrupted)
    masks, _images = _dataset(tmp_path)
    csv, summary = tmp_path / "rows.csv", tmp_path / "summary.json"
    args = ["score", "--pred", str(masks), "--gt", str(masks), "-q"]
    result = CliRunner().invoke(main, [*args, "--csv", str(csv), "--json", str(summary)])
    assert result.exit_code == 130
    assert result.stderr == (
        f"interrupted: {csv} and {summary} were not written (any file there is from an earlier run); plots "
        "already written are complete and kept\n"
    )
    result = CliRunner().invoke(main, args)
    assert (
        result.stderr
        == "interrupted: no CSV or JSON was written; plots already written are complete and kept\n"
    )


def test_interrupted_predict_says_the_report_was_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch")
    import maskrefine.train.predict_job

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(maskrefine.train.predict_job, "predict_folder", interrupted)
    _masks, images = _dataset(tmp_path)
    report = tmp_path / "predict.json"
    args = ["predict", "--images", str(images), "--checkpoint", "last.pt", "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(main, [*args, "--report", str(report)])
    assert result.exit_code == 130
    assert result.stderr.endswith(f"; {report} was not written (any file there is from an earlier run)\n")


# -------------------------------------------------------------------------- help texts (user 10, crash 2)


def test_apply_help_says_what_masks_and_skip_existing_mean() -> None:
    text = _one_line(CliRunner().invoke(main, ["apply", "--help"]).output)
    # "any resolution" read as if any size were accepted; another aspect ratio is refused
    assert (
        "at any resolution with the image's aspect ratio: a patch grid (e.g. 1/8, 1/16) or full size" in text
    )
    # a resume with other settings kept the other settings' outputs without a word; with --report it is
    # now refused (s14), without one nothing checks
    assert "with --report, a resume is refused when that report records other settings" in text
    assert "Without one, nothing checks: resume with the same settings" in text


def test_predict_help_names_paths_and_the_format_like_apply() -> None:
    text = _one_line(CliRunner().invoke(main, ["predict", "--help"]).output)
    for shown in ("--images DIRECTORY", "--checkpoint FILE", "--out DIRECTORY", "--report FILE"):
        assert shown in text
    assert "TEXT" not in text.replace("--device TEXT", "")
    assert "--format [png8|png16|npy] Output format: 8-bit PNG, 16-bit PNG, or float32 .npy." in text
    assert "with --report, a resume is refused when that report records other settings" in text


def test_train_help_shows_the_config_defaults() -> None:
    text = _one_line(CliRunner().invoke(main, ["train", "--help"]).output)  # no torch needed for --help
    assert "0 loads in the training process. [default: 0]" in text
    assert "0 = at the end of each epoch only. [default: 0]" in text
    assert "[default: none: every step of --epochs]" in text
    assert "--out DIRECTORY" in text and "--config FILE" in text


def test_the_train_help_defaults_are_the_configs() -> None:
    pytest.importorskip("torch", reason="maskrefine.train.config needs torch: pip install 'torch==2.13.0'")
    from maskrefine.train.config import TrainConfig

    defaults = TrainConfig()
    assert defaults.num_workers == 0 and defaults.checkpoint_every == 0 and defaults.max_steps is None


def test_train_summary_counts_in_the_singular(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The summary said "trained 1 steps (1 complete epochs)"."""
    from types import SimpleNamespace

    pytest.importorskip("torch")
    import maskrefine.train
    import maskrefine.train.preflight
    import maskrefine.train.trainer

    run_dir = tmp_path / "run"
    for step, epoch, expected in (
        (1, 1, "trained 1 step (1 complete epoch)"),
        (2, 0, "trained 2 steps (0 complete epochs)"),
    ):
        result_of = SimpleNamespace(
            step=step,
            epoch=epoch,
            checkpoint=run_dir / "last.pt",
            run_dir=run_dir,
            train_failures=[],
            val_failures=[],
            ok=True,
        )
        monkeypatch.setattr(maskrefine.train.preflight, "check_training_run", lambda *a, **k: None)
        monkeypatch.setattr(maskrefine.train, "require_torch", lambda: None)
        monkeypatch.setattr(maskrefine.train.trainer, "train_checked", lambda run, r=result_of: r)
        _masks, images = _dataset(tmp_path / str(step))
        result = CliRunner().invoke(main, ["train", "--images", str(images), "--out", str(run_dir), "-q"])
        assert result.exit_code == 0, result.output
        assert f"{expected}; checkpoint {run_dir / 'last.pt'}" in result.stdout


def test_stem_hint_never_suggests_renaming_by_digits_and_counts_every_file() -> None:
    # masks 1..100 and images 101..200: "rename 110.jpg to 10.jpg" would pair image 110 with mask 10
    from maskrefine.io.pairs import stem_hint

    roles = ("masks", "images")
    numbered = _unmatched([f"{i}.png" for i in range(1, 101)], [f"{i}.jpg" for i in range(101, 201)])
    hint = str(stem_hint(numbered, roles))
    assert "rename them without" not in hint and "rename the files so that their stems match" in hint
    # one file: no "all 1 mask ... are"
    one = str(stem_hint(_unmatched(["a_mask.png"], ["a.jpg"]), roles))
    assert "the 1 mask without a partner is named <image stem>_mask" in one
    # more files than the sample the affix is found on: the count is over all of them
    many = _unmatched([f"{i:05d}_mask.png" for i in range(1500)], [f"{i:05d}.jpg" for i in range(1500)])
    assert "all 1500 masks without a partner are named <image stem>_mask" in str(stem_hint(many, roles))


# ------------------------------------------- --overwrite: earlier outputs not replaced are named
# An --overwrite run leaves an earlier run's output in place when its file fails (nothing is deleted) or when
# it is stopped before reaching that file: the error, and the stop message, say so.


def test_a_failed_file_of_an_overwrite_run_names_the_earlier_output_it_kept(tmp_path: Path) -> None:
    masks, images = _dataset(tmp_path)
    out = tmp_path / "out"
    assert apply_folder(masks, images, out, method="identity", jobs=1).ok
    earlier = {stem: (out / f"{stem}.png").read_bytes() for stem in STEMS}
    (masks / "100080.png").write_bytes(b"garbage")  # fails in the second run
    (out / "101085.png").unlink()  # no earlier output, and fails too
    (masks / "101085.png").write_bytes(b"garbage")
    report = apply_folder(masks, images, out, method="guided", jobs=1, overwrite=True)
    errors = {o.stem: o.error or "" for o in report.failures}
    assert sorted(errors) == ["100080", "101085"]
    kept = f"; the output {out / '100080.png'} of an earlier run was there when this --overwrite run started"
    assert kept in errors["100080"] and errors["100080"].endswith("and was not replaced")
    assert errors["100080"].startswith(f"{masks / '100080.png'}: cannot decode")
    assert "earlier run" not in errors["101085"]  # nothing was there
    assert (out / "100080.png").read_bytes() == earlier["100080"]  # kept, never deleted
    assert (out / "100075.png").read_bytes() != earlier["100075"]  # replaced by the guided output
    assert not (out / "101085.png").exists()


def test_without_overwrite_no_failure_mentions_an_earlier_output(tmp_path: Path) -> None:
    masks, images = _dataset(tmp_path)
    (masks / "100080.png").write_bytes(b"garbage")
    report = apply_folder(masks, images, tmp_path / "out", method="identity", jobs=1)
    assert [o.stem for o in report.failures] == ["100080"]
    assert "earlier run" not in (report.failures[0].error or "")
    # a resumed run skips the outputs it finds, and says nothing of them either
    again = apply_folder(masks, images, tmp_path / "out", method="identity", jobs=1, skip_existing=True)
    assert again.counts["skipped"] == 3 and "earlier run" not in (again.failures[0].error or "")


def test_the_cli_prints_the_kept_earlier_output(tmp_path: Path) -> None:
    masks, images = _dataset(tmp_path)
    out = tmp_path / "out"
    base = ["apply", "--masks", str(masks), "--images", str(images), "--out", str(out), "-j", "1", "-q"]
    assert CliRunner().invoke(main, [*base, "--method", "identity"]).exit_code == 0
    (masks / "100075.png").write_bytes(b"")
    result = CliRunner().invoke(main, [*base, "--method", "guided", "--overwrite"])
    assert result.exit_code == 1
    kept = f"the output {out / '100075.png'} of an earlier run was there when this --overwrite run"
    assert kept in result.stderr


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
