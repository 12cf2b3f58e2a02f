"""CLI tests with click's CliRunner: exit codes, messages that name the file and the problem, no
tracebacks, other files still written, inputs never modified, --overwrite / --skip-existing / --shard,
--report, score.

Synthetic data: 64x48 (W x H) RGB images and 8x6 (1/8 patch-grid) soft masks, so every test is fast.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from maskrefine.cli import main, parse_shard
from maskrefine.metrics.presets import PRESETS
from maskrefine.refiners import REFINERS

H, W = 48, 64  # image size
MH, MW = 6, 8  # mask size (1/8)
STEMS = ("a", "b", "c", "d")


# --------------------------------------------------------------------------------------------- helpers


def write_image(path: Path, seed: int, h: int = H, w: int = W) -> None:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (min(h, w) / 3) ** 2).astype(np.float64) * 180 + 40
    pixels = np.clip(base[:, :, None] + rng.normal(0, 10, (h, w, 3)), 0, 255).astype(np.uint8)
    assert cv2.imwrite(str(path), pixels)


def write_mask(path: Path, seed: int, h: int = MH, w: int = MW) -> None:
    rng = np.random.default_rng(seed)
    assert cv2.imwrite(str(path), rng.integers(0, 256, (h, w), dtype=np.uint8))


def make_dataset(root: Path, stems: tuple[str, ...] = STEMS) -> tuple[Path, Path]:
    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    for i, stem in enumerate(stems):
        write_image(images / f"{stem}.png", seed=i)
        write_mask(masks / f"{stem}.png", seed=100 + i)
    return masks, images


def tree_hash(*folders: Path) -> dict[str, str]:
    """sha256 of every file (and its mode) under ``folders``: proves inputs are byte-identical."""
    digests = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                digests[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest() + oct(path.stat().st_mode)
    return digests


def outputs(out: Path) -> set[str]:
    return {p.name for p in out.iterdir()} if out.exists() else set()


def invoke(args: list[str], *inputs: Path):
    """Run the CLI; check that no traceback is printed and that the ``inputs`` folders are untouched."""
    before = tree_hash(*inputs)
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)
    after = tree_hash(*inputs)
    assert before == after, "an input file was modified"
    # A leaked exception other than SystemExit would be a traceback for the user.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def data(tmp_path: Path) -> tuple[Path, Path, Path]:
    masks, images = make_dataset(tmp_path)
    return masks, images, tmp_path / "out"


def apply_args(masks: Path, images: Path, out: Path, *extra: str) -> list[str]:
    # identity by default: file problems are caught before any filtering, and it is the fastest method;
    # test_apply_smoke_every_method covers the others. An option in ``extra`` replaces the default (an
    # option given twice is a usage error).
    defaults = {"--jobs": "1", "--method": "identity"}
    given = set(extra) | ({"--jobs"} if "-j" in extra else set())
    kept = [item for flag, value in defaults.items() if flag not in given for item in (flag, value)]
    return ["apply", "--masks", masks, "--images", images, "--out", out, *kept, *extra]


def assert_good_outputs(out: Path, stems: set[str], suffix: str = ".png") -> None:
    assert {p.name for p in out.iterdir() if not p.name.startswith(".")} == {s + suffix for s in stems}
    for stem in stems:
        pixels = cv2.imread(str(out / f"{stem}{suffix}"), cv2.IMREAD_UNCHANGED)
        assert pixels is not None and pixels.shape == (H, W)


# --------------------------------------------------------------------------------------------- basics


def test_version() -> None:
    result = invoke(["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("maskrefine ")


def test_help_lists_every_method_with_its_summary() -> None:
    result = invoke(["apply", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for name, spec in REFINERS.items():
        assert name in text
        assert " ".join(spec.summary.split()[:4]) in text


def test_score_help_lists_presets() -> None:
    result = invoke(["score", "--help"])
    assert result.exit_code == 0
    for name in PRESETS:
        assert name in result.output


@pytest.mark.parametrize("method", sorted(REFINERS))
def test_apply_smoke_every_method(data, method: str) -> None:
    masks, images, out = data
    result = invoke(apply_args(masks, images, out, "--method", method), masks, images)
    assert result.exit_code == 0, result.output
    assert_good_outputs(out, set(STEMS))
    assert "written 4" in result.stdout
    assert "failed 0" in result.stdout


@pytest.mark.parametrize("fmt, suffix", [("png16", ".png"), ("npy", ".npy")])
def test_apply_formats(data, fmt: str, suffix: str) -> None:
    masks, images, out = data
    result = invoke(
        apply_args(masks, images, out, "--format", fmt, "--guide", "color", "--method", "guided"),
        masks,
        images,
    )
    assert result.exit_code == 0, result.output
    for stem in STEMS:
        if fmt == "npy":
            array = np.load(out / f"{stem}.npy")
            assert array.dtype == np.float32 and array.shape == (H, W)
        else:
            pixels = cv2.imread(str(out / f"{stem}{suffix}"), cv2.IMREAD_UNCHANGED)
            assert pixels.dtype == np.uint16 and pixels.shape == (H, W)


def test_quiet_prints_nothing_on_success(data) -> None:
    masks, images, out = data
    result = invoke(apply_args(masks, images, out, "--quiet"), masks, images)
    assert result.exit_code == 0
    assert result.output == ""
    assert_good_outputs(out, set(STEMS))


def test_progress_is_silent_when_not_a_tty(data) -> None:
    # CliRunner's stderr is not a terminal: no progress line (no carriage returns) may appear.
    masks, images, out = data
    result = invoke(apply_args(masks, images, out), masks, images)
    assert result.exit_code == 0
    assert "\r" not in result.output


def test_progress_line_on_a_tty(capsys) -> None:
    from maskrefine.cli import _Progress

    progress = _Progress("apply", enabled=True)
    progress(0, 4)
    progress(4, 4)
    progress.close()
    err = capsys.readouterr().err
    assert "\r" in err and "4/4" in err and "100.0%" in err


# --------------------------------------------------------------------------------------------- bad files
# Each case: exit code 1, one "error: <path>: <problem>" line naming the bad file, no traceback,
# and the other files still written.


def _bad_png_bytes() -> bytes:
    ok, encoded = cv2.imencode(".png", np.full((MH, MW), 128, np.uint8))
    assert ok
    return encoded.tobytes()


def _make_bad(kind: str, masks: Path, images: Path) -> tuple[Path, str]:
    """Break stem 'b' in the way ``kind`` says; return the bad path and a fragment of the expected problem."""
    (masks / "b.png").unlink()
    mask_png = masks / "b.png"
    if kind == "empty mask":
        mask_png.write_bytes(b"")
        return mask_png, "empty"
    if kind == "truncated png":
        mask_png.write_bytes(_bad_png_bytes()[:40])
        return mask_png, "cannot decode"
    if kind == "text named png":
        mask_png.write_text("this is not a PNG\n")
        return mask_png, "cannot decode"
    if kind == "image not an image":
        write_mask(mask_png, seed=1)
        (images / "b.png").write_text("definitely not an image")
        return images / "b.png", "cannot decode"
    if kind == "truncated image":
        write_mask(mask_png, seed=1)
        data = (images / "b.png").read_bytes()
        (images / "b.png").write_bytes(data[: len(data) // 3])
        return images / "b.png", "cannot decode"
    npy = masks / "b.npy"
    if kind == "all-NaN npy":
        np.save(npy, np.full((MH, MW), np.nan, np.float32))
        return npy, "NaN"
    if kind == "npy with NaN":
        array = np.full((MH, MW), 0.5, np.float32)
        array[2, 3] = np.nan
        np.save(npy, array)
        return npy, "NaN"
    if kind == "npy of ints":
        np.save(npy, np.ones((MH, MW), np.int64))
        return npy, "int64"
    if kind == "npy 3-D":
        np.save(npy, np.ones((2, MH, MW), np.float32))
        return npy, "2-D"
    if kind == "npy out of range":
        np.save(npy, np.full((MH, MW), 3.0, np.float32))
        return npy, "[0, 1]"
    if kind == "colour mask":
        pixels = np.zeros((MH, MW, 3), np.uint8)
        pixels[:, :, 2] = 255
        assert cv2.imwrite(str(mask_png), pixels)
        return mask_png, "colour channels"
    if kind == "mask bigger than image":
        write_mask(mask_png, seed=1, h=H * 2, w=W * 2)
        return mask_png, "larger than the image"
    if kind == "mask of another aspect":
        write_mask(mask_png, seed=1, h=2, w=MW)  # 2x8 cannot be a uniform downscale of 48x64
        return mask_png, "downscale"
    raise AssertionError(kind)


BAD_FILE_CASES = [
    "empty mask",
    "truncated png",
    "text named png",
    "image not an image",
    "truncated image",
    "all-NaN npy",
    "npy with NaN",
    "npy of ints",
    "npy 3-D",
    "npy out of range",
    "colour mask",
    "mask bigger than image",
    "mask of another aspect",
]


@pytest.mark.parametrize("kind", BAD_FILE_CASES)
def test_bad_file_is_reported_and_others_written(data, kind: str) -> None:
    masks, images, out = data
    bad, problem = _make_bad(kind, masks, images)
    result = invoke(apply_args(masks, images, out), masks, images)
    assert result.exit_code == 1, result.output
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1, result.stderr
    assert bad.name in error_lines[0] and problem in error_lines[0], error_lines
    assert "failed 1" in result.stdout and "written 3" in result.stdout
    assert_good_outputs(out, {"a", "c", "d"})


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="running as root: chmod 000 does not stop root from reading the file",
)
def test_unreadable_file(data) -> None:
    masks, images, out = data
    bad = masks / "b.png"
    bad.chmod(0)
    try:
        result = invoke(apply_args(masks, images, out), images)
    finally:
        bad.chmod(0o644)
    assert result.exit_code == 1
    assert "b.png" in result.stderr and "cannot read" in result.stderr
    assert_good_outputs(out, {"a", "c", "d"})


def test_every_failure_is_listed(data) -> None:
    masks, images, out = data
    (masks / "a.png").write_bytes(b"")
    (masks / "c.png").write_text("nope")
    result = invoke(apply_args(masks, images, out), masks, images)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2
    assert any("a.png" in line for line in errors) and any("c.png" in line for line in errors)
    assert_good_outputs(out, {"b", "d"})


def test_duplicate_stems_are_reported(data) -> None:
    masks, images, out = data
    np.save(masks / "b.npy", np.full((MH, MW), 0.5, np.float32))  # b.png and b.npy: ambiguous
    result = invoke(apply_args(masks, images, out), masks, images)
    assert result.exit_code == 0, result.output  # reported, not a failure
    assert "b.npy" in result.stderr and "b.png" in result.stderr
    assert "several files" in result.stderr and "duplicates 1" in result.stdout
    assert "b.png" not in outputs(out)
    assert_good_outputs(out, {"a", "c", "d"})


def test_unmatched_files_are_reported_not_fatal(data) -> None:
    masks, images, out = data
    write_mask(masks / "lonely_mask.png", seed=7)
    write_image(images / "lonely_image.png", seed=8)
    result = invoke(apply_args(masks, images, out), masks, images)
    assert result.exit_code == 0, result.output
    assert "lonely_mask" in result.stderr and "lonely_image" in result.stderr
    assert "unmatched 2" in result.stdout
    assert_good_outputs(out, set(STEMS))


@pytest.mark.parametrize("quiet", [[], ["-q"]])
def test_nothing_processed_is_an_error(data, tmp_path: Path, quiet: list[str]) -> None:
    # an empty masks folder, or an --images folder matching nothing, exited 0 (silently with -q)
    masks, images, out = data
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke(apply_args(empty, images, out, *quiet), empty, images)
    assert result.exit_code == 1, result.output
    assert "error: nothing was processed: no file has a partner with the same stem" in result.stderr
    # each folder counted on its own (was "4 unmatched, 0 duplicated stem(s)": images counted as masks)
    assert f"(0 masks and {len(STEMS)} images without a partner)" in result.stderr
    result = invoke(apply_args(masks, empty, tmp_path / "out2", *quiet), masks, empty)
    assert result.exit_code == 1 and "nothing was processed" in result.stderr, result.output
    result = invoke(apply_args(empty, empty, tmp_path / "out3", *quiet), empty)
    assert result.exit_code == 1, result.output
    assert "error: nothing was processed: no input files found" in result.stderr
    # an empty shard of folders that hold pairs (more shards than files) is not an error
    from maskrefine.pipeline import shard_index

    used = {shard_index(stem, 64) for stem in STEMS}
    empty_shard = min(set(range(1, 65)) - used)
    shard_args = apply_args(masks, images, tmp_path / "out4", "--shard", f"{empty_shard}/64")
    result = invoke(shard_args, masks, images)
    assert result.exit_code == 0 and "written 0" in result.stdout, result.output
    result = invoke(apply_args(empty, empty, tmp_path / "out5", "--shard", "1/2"), empty)
    assert result.exit_code == 1 and "no input files found in shard 1/2" in result.stderr, result.output
    # a resumed run whose files are all done processed them (skipped): a success
    assert invoke(apply_args(masks, images, out), masks, images).exit_code == 0
    again = invoke(apply_args(masks, images, out, "--skip-existing", *quiet), masks, images)
    assert again.exit_code == 0, again.output


def test_existing_output_needs_overwrite(data) -> None:
    # The library refuses to start (ConfigError, exit 2) rather than half-overwrite a folder.
    masks, images, out = data
    out.mkdir()
    (out / "b.png").write_bytes(b"precious")
    result = invoke(apply_args(masks, images, out), masks, images)
    _usage(result, "b.png", "already exist", "--overwrite", "--skip-existing")
    assert outputs(out) == {"b.png"}
    assert (out / "b.png").read_bytes() == b"precious"


# --------------------------------------------------------------------------------------------- usage errors
# Exit code 2, a message naming the option and the problem, nothing written.


def _usage(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    for fragment in fragments:
        assert fragment in text, (fragment, text)


def test_missing_masks_folder(data) -> None:
    masks, images, out = data
    result = invoke(apply_args(masks.parent / "nope", images, out), images)
    _usage(result, "--masks", "nope", "does not exist")
    assert not out.exists()


def test_out_equal_to_masks_folder(data) -> None:
    masks, images, _ = data
    before = tree_hash(masks)
    result = invoke(apply_args(masks, images, masks), images)
    _usage(result, str(masks.name))
    assert tree_hash(masks) == before


def test_out_inside_images_folder(data) -> None:
    masks, images, _ = data
    out = images / "refined"
    result = invoke(apply_args(masks, images, out), masks)
    _usage(result, "refined")
    assert not out.exists() or not any(out.iterdir())


def test_overwrite_and_skip_existing_conflict(data) -> None:
    masks, images, out = data
    result = invoke(apply_args(masks, images, out, "--overwrite", "--skip-existing"), masks, images)
    _usage(result, "--overwrite", "--skip-existing")
    assert not outputs(out)


@pytest.mark.parametrize("shard", ["3", "0/0", "5/4", "a/b", "1/2/3", "-1/2", "0/3", ""])
def test_bad_shard(data, shard: str) -> None:
    masks, images, out = data
    result = invoke(apply_args(masks, images, out, "--shard", shard), masks, images)
    _usage(result, "--shard")
    assert repr(shard) in result.output or "K/N" in result.output
    assert not outputs(out)


@pytest.mark.parametrize(
    "extra, fragments",
    [
        (["--radius", "-1"], ["--radius", "-1"]),
        (["--eps", "0"], ["--eps", "0"]),
        (["--eps", "-1e-3"], ["--eps"]),
        (["--method", "guided", "--eps", "1e-13"], ["--eps", "1e-13", "1e-12"]),
        (["--radius", "abc"], ["--radius", "abc"]),
        (["--method", "bogus"], ["--method", "bogus"]),
        (["--guide", "purple"], ["--guide", "purple"]),
        (["--format", "jpg"], ["--format", "jpg"]),
        (["--jobs", "0"], ["--jobs", "0"]),
        (["--subsample", "0"], ["--subsample", "0"]),
    ],
)
def test_bad_option_values(data, extra: list[str], fragments: list[str]) -> None:
    masks, images, out = data
    result = invoke(apply_args(masks, images, out, *extra), masks, images)
    _usage(result, *fragments)
    assert not outputs(out)


def test_parameter_the_method_does_not_take(data) -> None:
    masks, images, out = data
    result = invoke(apply_args(masks, images, out, "--radius", "3"), masks, images)
    _usage(result, "identity", "radius")
    assert not outputs(out)


def test_parse_shard() -> None:
    assert parse_shard("1/1") == (1, 1)
    assert parse_shard(" 2/4 ") == (2, 4)
    assert parse_shard(None) is None


# --------------------------------------------------------------------------------------------- resume etc.


def test_overwrite_replaces_outputs(data) -> None:
    masks, images, out = data
    assert invoke(apply_args(masks, images, out, "--method", "identity"), masks, images).exit_code == 0
    first = tree_hash(out)
    result = invoke(
        apply_args(masks, images, out, "--method", "guided", "--radius", "2", "--overwrite"), masks, images
    )
    assert result.exit_code == 0, result.output
    assert "written 4" in result.stdout
    assert tree_hash(out) != first
    assert_good_outputs(out, set(STEMS))


def test_skip_existing_resumes(data) -> None:
    masks, images, out = data
    assert invoke(apply_args(masks, images, out), masks, images).exit_code == 0
    (out / "b.png").unlink()
    (out / "d.png").unlink()
    kept = tree_hash(out)
    result = invoke(apply_args(masks, images, out, "--skip-existing"), masks, images)
    assert result.exit_code == 0, result.output
    assert "written 2" in result.stdout and "skipped 2" in result.stdout
    assert all(tree_hash(out)[k] == v for k, v in kept.items())  # kept files untouched
    assert_good_outputs(out, set(STEMS))


def test_shards_cover_everything_once(tmp_path: Path) -> None:
    stems = tuple(f"s{i:02d}" for i in range(11))
    masks, images = make_dataset(tmp_path, stems)
    seen: list[str] = []
    for k in (1, 2, 3):
        out = tmp_path / f"out{k}"
        result = invoke(apply_args(masks, images, out, "--shard", f"{k}/3"), masks, images)
        assert result.exit_code == 0, result.output
        seen += sorted(outputs(out))
    assert sorted(seen) == sorted(f"{s}.png" for s in stems)  # union is everything, no overlap


def test_report_json(data) -> None:
    masks, images, out = data
    (masks / "c.png").write_bytes(b"")
    report = out.parent / "run.json"
    result = invoke(apply_args(masks, images, out, "--report", report), masks, images)
    assert result.exit_code == 1
    payload = json.loads(report.read_text())
    text = json.dumps(payload)
    assert "c.png" in text and "empty" in text
    assert payload["ok"] is False
    assert payload["counts"] == {"written": 3, "skipped": 0, "failed": 1, "unmatched": 0, "duplicates": 0}
    assert payload["config"]["method"] == "identity" and payload["config"]["jobs"] == 1
    assert payload["masks_per_s"] > 0
    statuses = {o["stem"]: o["status"] for o in payload["files"]}
    assert statuses == {"a": "written", "b": "written", "c": "failed", "d": "written"}


# --------------------------------------------------------------------------------------------- score


@pytest.fixture
def score_data(tmp_path: Path) -> tuple[Path, Path]:
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    rng = np.random.default_rng(3)
    for i in range(4):
        truth = np.zeros((H, W), np.uint8)
        truth[10:30, 15 + i : 40 + i] = 255
        noisy = np.clip(truth.astype(np.float64) * 0.8 + rng.normal(0, 30, (H, W)), 0, 255).astype(np.uint8)
        assert cv2.imwrite(str(gt / f"{i}.png"), truth)
        assert cv2.imwrite(str(pred / f"{i}.png"), noisy)
    return pred, gt


def test_score_prints_summary_and_writes_files(score_data, tmp_path: Path) -> None:
    pred, gt = score_data
    csv_path, json_path = tmp_path / "per_image.csv", tmp_path / "summary.json"
    result = invoke(["score", "--pred", pred, "--gt", gt, "--csv", csv_path, "--json", json_path], pred, gt)
    assert result.exit_code == 0, result.output
    assert "preset: tokencut" in result.stdout
    assert "metric" in result.stdout
    payload = json.loads(json_path.read_text())
    top = {"preset", "count", "ok", "failed", "unmatched", "duplicates", "config", "elapsed_s"}
    assert top <= set(payload), sorted(payload)
    assert {"max_fbeta", "iou", "acc", "mae"} <= set(payload), sorted(payload)
    assert payload["preset"] == "tokencut" and payload["count"] == 4 and payload["ok"] is True
    assert f"{payload['max_fbeta']:.4f}" in result.stdout  # the printed table shows the same values
    lines = csv_path.read_text().splitlines()
    assert len(lines) == 1 + 4


def test_score_empty_shard_succeeds_with_a_csv_header(score_data, tmp_path: Path) -> None:
    # an empty shard of folders that hold pairs exited 1 ("nothing was scored"), unlike apply's, and its
    # CSV was one blank line: concatenating the shards' tables lost the header when shard 1 was empty
    from maskrefine.pipeline import shard_index

    pred, gt = score_data
    stems = [p.stem for p in pred.iterdir()]
    used = {shard_index(stem, 64) for stem in stems}
    empty_shard = min(set(range(1, 65)) - used)
    csv_path = tmp_path / "empty.csv"
    args = ["score", "--pred", pred, "--gt", gt, "--shard", f"{empty_shard}/64", "--csv", csv_path]
    result = invoke(args, pred, gt)
    assert result.exit_code == 0, result.output
    assert f"none of the folders' {len(stems)} pair(s) fell in shard {empty_shard}/64" in result.stderr
    full_csv = tmp_path / "full.csv"
    assert invoke(["score", "--pred", pred, "--gt", gt, "--csv", full_csv], pred, gt).exit_code == 0
    assert csv_path.read_text() == full_csv.read_text().splitlines(keepends=True)[0]
    # an empty folder is still an error, sharded or not
    empty = tmp_path / "nothing"
    empty.mkdir()
    result = invoke(["score", "--pred", empty, "--gt", gt, "--shard", "1/2"], empty, gt)
    assert result.exit_code == 1 and "nothing was scored: no prediction found in shard 1/2" in result.stderr


def test_score_says_when_the_presets_script_would_read_the_files_otherwise(
    score_data, tmp_path: Path
) -> None:
    # MOVE's script reads a 1-bit GT as 0/1 (an empty GT) and clips a graded 16-bit map at 255: maskrefine
    # printed numbers far from the script's without a word
    from PIL import Image

    pred, gt = score_data
    gt1, pred16 = tmp_path / "gt1", tmp_path / "pred16"
    gt1.mkdir()
    pred16.mkdir()
    for path in sorted(gt.iterdir()):
        Image.fromarray(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 127).convert("1").save(gt1 / path.name)
        soft = cv2.imread(str(pred / path.name), cv2.IMREAD_GRAYSCALE).astype(np.uint16) * 257
        assert cv2.imwrite(str(pred16 / path.name), soft)
    json_path = tmp_path / "s.json"
    args = ["score", "--pred", pred16, "--gt", gt1, "--preset", "move", "--json", json_path]
    result = invoke(args, pred16, gt1)
    assert result.exit_code == 0, result.output
    assert "note: move's reference script reads some of these files otherwise" in result.stderr
    counts = json.loads(json_path.read_text())["reference_reads_otherwise"]
    assert sorted(counts.values()) == [4, 4] and any(k.startswith("gt: 1/2/4-bit gray PNG") for k in counts)
    # the same files under tokencut, whose script reads them as maskrefine does: no note
    result = invoke(["score", "--pred", pred16, "--gt", gt1, "--json", json_path], pred16, gt1)
    assert "reference script" not in result.stderr
    assert json.loads(json_path.read_text())["reference_reads_otherwise"] == {}
    # an 8-bit GT and a binary 16-bit map (0 / 65535) read alike: no note under move either
    binary16 = tmp_path / "binary16"
    binary16.mkdir()
    for path in sorted(gt.iterdir()):
        assert cv2.imwrite(
            str(binary16 / path.name), (cv2.imread(str(path), 0) > 127).astype(np.uint16) * 65535
        )
    result = invoke(["score", "--pred", binary16, "--gt", gt, "--preset", "move"], binary16, gt)
    assert result.exit_code == 0 and "reference script" not in result.stderr


def test_score_plot_with_matplotlib(score_data, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib not installed (pip install -e '.[plot]')")
    pred, gt = score_data
    plots = tmp_path / "plots"
    result = invoke(["score", "--pred", pred, "--gt", gt, "--plot", plots, "--quiet"], pred, gt)
    assert result.exit_code == 0, result.output
    assert any(p.suffix == ".png" for p in plots.iterdir())


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_score_every_preset(score_data, preset: str) -> None:
    pred, gt = score_data
    result = invoke(["score", "--pred", pred, "--gt", gt, "--preset", preset, "--quiet"], pred, gt)
    assert result.exit_code == 0, result.output
    assert f"preset: {preset}" in result.stdout


def test_score_bad_prediction_exit_1(score_data) -> None:
    pred, gt = score_data
    (pred / "2.png").write_bytes(b"")
    result = invoke(["score", "--pred", pred, "--gt", gt], pred, gt)
    assert result.exit_code == 1
    assert any(line.startswith("error: ") and "2.png" in line for line in result.stderr.splitlines())


def test_score_unmatched_exit_0(score_data) -> None:
    pred, gt = score_data
    write_mask(pred / "extra.png", seed=1, h=H, w=W)
    result = invoke(["score", "--pred", pred, "--gt", gt], pred, gt)
    assert result.exit_code == 0, result.output
    assert "extra" in result.stderr


@pytest.mark.parametrize(
    "boxes, fragments",
    [
        ("voc", ["--boxes", "voc:DIR"]),
        ("coco:", ["--boxes", "coco:FILE"]),
        ("boxes", ["--boxes", "'boxes'"]),
        ("voc:/definitely/missing", ["boxes", "/definitely/missing", "not a folder"]),
        ("coco:/no/such.json", ["boxes", "/no/such.json", "not a COCO JSON file"]),
    ],
)
def test_score_bad_boxes(score_data, boxes: str, fragments: list[str]) -> None:
    pred, gt = score_data
    result = invoke(["score", "--pred", pred, "--gt", gt, "--boxes", boxes], pred, gt)
    _usage(result, *fragments)


def test_score_unknown_preset(score_data) -> None:
    pred, gt = score_data
    _usage(invoke(["score", "--pred", pred, "--gt", gt, "--preset", "nope"], pred, gt), "--preset", "nope")


def test_plot_without_matplotlib(score_data, tmp_path: Path, monkeypatch) -> None:
    pred, gt = score_data
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    result = invoke(["score", "--pred", pred, "--gt", gt, "--plot", tmp_path / "plots"], pred, gt)
    _usage(result, "matplotlib")


def test_a_report_that_cannot_be_written_does_not_hide_the_files_outcomes(tmp_path, monkeypatch):
    # a full disk: the report's own write error used to be the only line printed (per-file errors and
    # the summary were lost with the report object)
    from maskrefine.errors import OutputError
    from maskrefine.pipeline import reports

    masks, images = make_dataset(tmp_path)
    (masks / "b.png").write_bytes(b"not a png")

    def no_space(self, path):
        raise OutputError(path, "cannot write (No space left on device)")

    monkeypatch.setattr(reports.RunReport, "write_json", no_space)
    result = invoke(
        ["apply", "--masks", masks, "--images", images, "--out", tmp_path / "out", "-j", "1", "--report",
         tmp_path / "run.json"],
        masks, images,
    )  # fmt: skip
    assert result.exit_code == 1
    assert "b.png" in result.stderr and "written 3, skipped 0, failed 1" in result.stdout
    assert "run.json: cannot write (No space left on device) (the report was not written" in result.stderr
    assert outputs(tmp_path / "out") == {"a.png", "c.png", "d.png"}


# --------------------------------------------------------------------------------------------- SIGTERM


@pytest.mark.parametrize(
    ("stop", "code", "words"),
    [("KeyboardInterrupt", 130, "interrupted: rerun"), ("Terminated", 143, "terminated (SIGTERM): rerun")],
)
def test_train_stopped_says_how_to_resume(capsys, tmp_path: Path, stop: str, code: int, words: str) -> None:
    from maskrefine import _signals
    from maskrefine.cli_train import _train_or_stop

    exception = _signals.Terminated if stop == "Terminated" else KeyboardInterrupt

    def train() -> None:
        raise exception

    (tmp_path / "last.pt").write_bytes(b"")  # a checkpoint was written: resuming is possible
    with pytest.raises(SystemExit) as exited:
        _train_or_stop(tmp_path / "last.pt", train)
    assert exited.value.code == code
    err = capsys.readouterr().err
    assert words in err and "--resume to continue from last.pt" in err and "Traceback" not in err


def test_sigterm_handler_only_replaces_the_default(monkeypatch) -> None:
    import signal

    from maskrefine import _signals

    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a harness that ignores SIGTERM keeps doing so
        _signals.raise_on_sigterm()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN and not _signals.sigterm_raises()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _signals.raise_on_sigterm()
        assert _signals.sigterm_raises()
        with pytest.raises(_signals.Terminated):
            os.kill(os.getpid(), signal.SIGTERM)  # the handler runs before the next bytecode
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_apply_help_states_what_auto_does(data) -> None:
    """The help said every mask was resized bilinearly and that --guide defaulted to mean, also under auto."""
    result = CliRunner().invoke(main, ["apply", "--help"], terminal_width=200)
    text = " ".join(result.output.split())
    assert "under auto its kind decides" in text
    assert "[default: mean, for --method guided/fast_guided; auto picks its own]" in text
    assert "x>=1e-12" in text


@pytest.mark.parametrize("command", ["apply", "score"])
def test_long_lists_name_the_file_that_has_them_all(tmp_path, command) -> None:
    """``score`` said "(see --report)", an option it does not have."""
    masks = tmp_path / "masks"
    masks.mkdir()
    for i in range(12):  # no partner for any of them
        cv2.imwrite(str(masks / f"m{i:02d}.png"), np.zeros((8, 8), np.uint8))
    other = tmp_path / "other"
    other.mkdir()
    if command == "apply":
        args = ["apply", "--masks", str(masks), "--images", str(other), "--out", str(tmp_path / "out")]
        where = "--report"
    else:
        args = ["score", "--pred", str(masks), "--gt", str(other)]
        where = "--json"
    result = CliRunner().invoke(main, args)
    assert f"... and 2 more (all of them in the {where} file)" in result.output


def test_score_without_predictions_says_so(tmp_path) -> None:
    pred = tmp_path / "pred"
    pred.mkdir()
    gt = Path(__file__).resolve().parents[1] / "examples" / "gt"
    result = CliRunner().invoke(main, ["score", "--pred", str(pred), "--gt", str(gt)])
    assert result.exit_code == 1
    assert "no prediction found (the ground-truth folder has 10 mask(s)" in result.output


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (
            ["apply", "--method", "guided", "--eps", "1e-400"],
            "'1e-400' reads as 0.0: 0.0 is not in the range",
        ),
        (["apply", "--method", "guided", "--eps", "0"], "0.0 is not in the range x>=1e-12"),
    ],
)
def test_a_number_that_underflows_is_shown_as_typed(tmp_path: Path, args: list[str], shown: str) -> None:
    # the message was "0.0 is not in the range x>=1e-12" for --eps 1e-400: not what the user typed
    examples = Path(__file__).resolve().parents[1] / "examples"
    full = [args[0], "--masks", str(examples / "masks"), "--images", str(examples / "images")]
    full += ["--out", str(tmp_path / "o")]
    result = CliRunner().invoke(main, full + args[1:])
    assert result.exit_code == 2 and shown in result.output
    assert ("reads as" in result.output) == ("1e-400" in args)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        # int() and float() read these Arabic-Indic digits as 12 / 1: the run went ahead with them
        (
            ["--method", "guided", "--radius", "١٢"],
            "'--radius': '١٢' is not a number written with ASCII digits",
        ),
        (["--method", "guided", "--eps", "١"], "'--eps': '١' is not a number written with ASCII digits"),
        (["--method", "bilateral_solver", "--lam", "١٢"], "'--lam': '١٢' is not a number written with ASCII"),
        (["--method", "crf", "--iterations", "٣"], "'--iterations': '٣' is not a number written with ASCII"),
        (["-j", "٢"], "'-j': '٢' is not a number written with ASCII digits"),
        # int() and float() read digit-group underscores and surrounding spaces: 1_0 ran as radius 10
        (
            ["--method", "guided", "--radius", "1_0"],
            "'--radius': '1_0': write the number without underscores",
        ),
        (
            ["--method", "guided", "--eps", " 1e-3"],
            "'--eps': ' 1e-3': write the number without underscores or spaces",
        ),
        (["-j", "1 "], "'-j': '1 ': write the number without"),
        # accepted by the open range, then refused as "got inf" without the text typed
        (["--method", "guided", "--eps", "1e400"], "'--eps': '1e400' reads as inf; give a finite number"),
        (["--method", "bilateral_solver", "--sigma-spatial", "1e999"], "'1e999' reads as inf"),
        # ignored while the report recorded it
        (["--method", "crf", "--guide", "color"], "--guide has no effect with --method crf"),
        (
            ["--method", "bilateral_solver", "--guide", "luma"],
            "--guide has no effect with --method bilateral_solver",
        ),
        (["--method", "identity", "--guide", "color"], "--guide has no effect with --method identity"),
        # the library's parameter names were shown (lam; accepted: radius, eps), then a list without
        # --guide and --binary-input, which guided takes too
        (
            ["--method", "guided", "--lam", "5"],
            "--method guided does not take --lam; its options: --radius, --eps, --guide, --binary-input.",
        ),
    ],
)
def test_apply_refuses_numbers_and_options_it_would_misread_or_ignore(
    tmp_path: Path, args: list[str], shown: str
) -> None:
    examples = Path(__file__).resolve().parents[1] / "examples"
    full = ["apply", "--masks", str(examples / "masks"), "--images", str(examples / "images")]
    result = CliRunner().invoke(main, [*full, "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 2, result.output
    assert shown in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_train_refuses_non_ascii_digits(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")
    examples = Path(__file__).resolve().parents[1] / "examples"
    args = ["train", "--images", str(examples / "images"), "--out", str(tmp_path / "run"), "--epochs", "٣"]
    result = CliRunner().invoke(main, args)
    assert (
        result.exit_code == 2 and "'--epochs': '٣' is not a number written with ASCII digits" in result.output
    )


@pytest.mark.parametrize(
    ("name", "content", "shown"),
    [
        # json kept the last value silently (this ran the CRF); the same preset as TOML was refused
        (
            "dup.json",
            '{"refine": {"method": "guided", "method": "crf"}}',
            "not valid JSON (key 'method' is given twice)",
        ),
        ("nope.toml", '[refine]\nmethod = "nope"\n', "'bilateral_solver', 'crf'; got 'nope'"),
    ],
)
def test_preset_files_with_repeated_keys_or_unknown_methods_are_refused(
    tmp_path: Path, name: str, content: str, shown: str
) -> None:
    examples = Path(__file__).resolve().parents[1] / "examples"
    preset = tmp_path / name
    preset.write_text(content)
    full = ["apply", "--masks", str(examples / "masks"), "--images", str(examples / "images")]
    result = CliRunner().invoke(main, [*full, "--out", str(tmp_path / "o"), "--preset-file", str(preset)])
    assert result.exit_code == 2 and shown in result.output
    assert "'auto'" not in result.output  # a preset cannot name auto: not offered
    assert not (tmp_path / "o").exists()


def test_a_preset_file_path_ending_like_a_folder_is_refused(tmp_path: Path) -> None:
    # `Path("g.toml/")` is g.toml: the file was read although the user named a folder
    examples = Path(__file__).resolve().parents[1] / "examples"
    (tmp_path / "g.toml").write_text('[refine]\nmethod = "guided"\n')
    full = ["apply", "--masks", str(examples / "masks"), "--images", str(examples / "images")]
    args = [*full, "--out", str(tmp_path / "o"), "--preset-file", str(tmp_path / "g.toml") + "/"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "ends with a separator" in result.output
    assert not (tmp_path / "o").exists()


def test_parameter_names_become_the_options_that_exist(tmp_path: Path) -> None:
    # crf's `output` was shown as --output, which does not exist (the option is --crf-output)
    examples = Path(__file__).resolve().parents[1] / "examples"
    full = ["apply", "--masks", str(examples / "masks"), "--images", str(examples / "images")]
    result = CliRunner().invoke(
        main, [*full, "--out", str(tmp_path / "o"), "--method", "crf", "--radius", "3"]
    )
    assert result.exit_code == 2
    assert "its options: --preset, --iterations" in result.output and result.output.rstrip().endswith(
        "--crf-output, --binary-input."
    )
    assert "--output" not in result.output.replace("--crf-output", "")


def test_help_shows_no_empty_range() -> None:
    # the ASCII-digit types without bounds printed "[x<=None]" after every solver and CRF option
    result = CliRunner().invoke(main, ["apply", "--help"])
    assert result.exit_code == 0 and "None]" not in result.output and "[x>=0]" in result.output


@pytest.mark.parametrize("version", ["4.13", "4.11", "neither"])
def test_opencv_logging_is_silenced_on_every_supported_opencv(
    version: str, tmp_path: Path, monkeypatch
) -> None:
    # cv2.utils.logging exists from OpenCV 4.13 only; 4.8-4.12 (all that numpy 1.x users get) have
    # cv2.setLogLevel: `apply` crashed there with AttributeError before reading a file
    import types

    from maskrefine import cli

    calls: list[object] = []
    fake = types.ModuleType("cv2")
    if version == "4.13":
        logging = types.SimpleNamespace(LOG_LEVEL_SILENT=0, setLogLevel=calls.append)
        fake.utils = types.SimpleNamespace(logging=logging)  # type: ignore[attr-defined]
    else:
        fake.utils = types.SimpleNamespace()  # type: ignore[attr-defined]
        if version == "4.11":
            fake.setLogLevel = calls.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cv2", fake)
    cli._quiet_opencv()
    assert calls == ([] if version == "neither" else [0])


@pytest.mark.parametrize("extra", [[], ["--preset", "paper"]])
def test_usage_errors_name_crf_output_as_typed(data, extra: list[str]) -> None:
    # under the default auto method and with --preset, the message named "--output", which does not exist
    masks, images, out = data
    args = [a for a in apply_args(masks, images, out) if a not in ("--method", "identity")]
    result = invoke([*args, *extra, "--crf-output", "prob"], masks, images)
    assert result.exit_code == 2, result.output
    assert "--crf-output" in result.stderr and "--output" not in result.stderr.replace("--crf-output", "")


@pytest.mark.parametrize(
    ("extra", "shown"),
    [
        (["--out", "OTHER"], "--out is given more than once"),  # click kept the last: wrote OTHER only
        (["--method", "guided"], "--method is given more than once"),
        (["--apply-exif", "--ignore-exif"], "--apply-exif / --ignore-exif is given more than once"),
        (["-j", "2"], "--jobs / -j is given more than once"),
    ],
)
def test_an_option_given_twice_is_a_usage_error(data, tmp_path: Path, extra: list[str], shown: str) -> None:
    masks, images, out = data
    extra = [str(tmp_path / "other") if e == "OTHER" else e for e in extra]
    base = ["apply", "--masks", masks, "--images", images, "--out", out, "--method", "identity"]
    result = invoke([*base, "--jobs", "1", *extra], masks, images)
    assert result.exit_code == 2 and shown in result.stderr, result.output
    assert not out.exists() and not (tmp_path / "other").exists()
    merge = invoke(["report", "merge", "a.json", "--json", "x.json", "--json", "y.json"])
    assert merge.exit_code == 2 and "--json is given more than once" in merge.stderr
    train = invoke(["train", "--images", images, "--images", masks, "--out", tmp_path / "run"], masks, images)
    assert train.exit_code == 2 and "--images is given more than once" in train.stderr
    assert not (tmp_path / "run").exists()
