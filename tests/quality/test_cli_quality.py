"""CLI of the quality tools: apply --method auto / --preset / --preset-file, score --baseline, tune.

Hostile inputs for every new option: empty, wrong type, missing file, FIFO and symlink where a file goes.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from quality_cases import write_cases

from maskrefine.cli import main
from maskrefine.quality.grid import Candidate
from maskrefine.quality.preset_file import write_preset_file


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    write_cases(folder, 6)
    return folder


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert "Traceback" not in result.output
    return result


def apply_args(data, out):
    return ["apply", "--masks", data / "coarse", "--images", data / "images", "--out", out, "-q"]


def test_apply_default_is_auto_and_the_report_records_the_decision(data, tmp_path):
    report = tmp_path / "report.json"
    result = run(*apply_args(data, tmp_path / "out"), "--report", report)
    assert result.exit_code == 0, result.output
    payload = json.loads(report.read_text())
    assert payload["config"]["method"] == "auto" and "binary x4-x11" in payload["config"]["auto_rule"]
    assert payload["config"]["guide"] is None  # was "mean", while auto picked the colour guide per file
    decision = payload["files"][0]["auto"]
    assert decision["kind"] == "binary x8" and decision["binary"] is True and decision["patch"] == 8
    assert "rule" in decision


def test_apply_help_prints_the_auto_rule():
    result = run("apply", "--help")
    assert "The auto rule:" in result.output and "--preset-file" in result.output


def test_apply_preset_paper_and_preset_file(data, tmp_path):
    assert run(*apply_args(data, tmp_path / "paper"), "--preset", "paper").exit_code == 0
    explicit = run(
        *apply_args(data, tmp_path / "explicit"), "--method", "guided", "--radius", "9", "--eps", "1e-3"
    )
    assert explicit.exit_code == 0
    for name in ("img00.png", "img03.png"):
        assert (tmp_path / "paper" / name).read_bytes() == (tmp_path / "explicit" / name).read_bytes()
    preset = tmp_path / "best.toml"
    write_preset_file(preset, Candidate.make("guided", "color", "nearest", radius=4, eps=1e-2))
    assert run(*apply_args(data, tmp_path / "file"), "--preset-file", preset).exit_code == 0
    same = run(
        *apply_args(data, tmp_path / "same"),
        "--method",
        "guided",
        "--guide",
        "color",
        "--radius",
        "4",
        "--eps",
        "1e-2",
        "--binary-input",
    )
    assert same.exit_code == 0
    assert (tmp_path / "file" / "img01.png").read_bytes() == (tmp_path / "same" / "img01.png").read_bytes()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--preset", "paper", "--radius", "3"], "drop --radius"),
        (["--preset", "paper", "--method", "guided"], "drop --method"),
        (["--preset", "nope"], "--preset 'nope': without --method, --preset takes a refine preset (paper)"),
        (["--preset", "tokencut"], "bilateral_solver and crf presets need their --method"),
        (["--guide", "luma"], "--guide has no effect with --method auto"),
        (["--method", "auto", "--guide", "color"], "--guide has no effect with --method auto"),
        (["--preset", "paper", "--preset-file", "x.toml"], "exclude each other"),
        (["--binary-input"], "no effect with --method auto"),
        # was "refiner 'auto' does not accept parameter(s) radius; accepted: none", without the way out
        (["--radius", "3"], "--radius: --method auto (the default) picks its own setting"),
        (["--eps", "1e-4", "--subsample", "2"], "--eps, --subsample: --method auto"),
        (["--lam", "10"], "--lam: --method auto"),
        # the library's names (`preset`, `radius`) were shown instead of the options the user typed
        (
            ["--method", "crf", "--preset", "deeplabb"],
            "--preset must be one of 'deeplab', 'deeplab_v2', 'deep_spectral'",
        ),
        (["--method", "guided", "--radius", "20000"], "--radius must be <= 10000"),
    ],
)
def test_apply_conflicting_options(data, tmp_path, extra, message):
    result = run(*apply_args(data, tmp_path / "out"), *extra)
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "out").exists()


def _hostile_preset_files(tmp_path):
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    link = tmp_path / "link.toml"
    link.symlink_to(fifo)
    (tmp_path / "bad.toml").write_text("[refine\n")
    (tmp_path / "wrongtype.toml").write_text("[refine]\nmethod = 3\n")
    (tmp_path / "badradius.toml").write_text('[refine]\nmethod = "guided"\n[refine.params]\nradius = "9"\n')
    (tmp_path / "empty.toml").write_text("")
    (tmp_path / "folder.toml").mkdir()
    return {
        "": "empty",
        str(tmp_path / "missing.toml"): "not found",
        str(fifo): "not a regular file",
        str(link): "not a regular file",
        str(tmp_path / "bad.toml"): "not valid TOML",
        str(tmp_path / "wrongtype.toml"): "must be a string",
        str(tmp_path / "badradius.toml"): "radius",
        str(tmp_path / "empty.toml"): "empty",
        str(tmp_path / "folder.toml"): "folder",
    }


def test_apply_hostile_preset_files(data, tmp_path):
    for path, message in _hostile_preset_files(tmp_path).items():
        result = run(*apply_args(data, tmp_path / "out"), "--preset-file", path)
        assert result.exit_code == 2, (path, result.output)
        assert message in result.output, (path, result.output)
        assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("with_plot", [False, True], ids=["no-plot", "plot"])
def test_score_baseline_pairs_and_writes_outputs(data, tmp_path, with_plot):
    if with_plot:
        pytest.importorskip("matplotlib", reason="--plot needs the plot extra (matplotlib)")
    refined = tmp_path / "refined"
    assert (
        run(*apply_args(data, refined), "--method", "guided", "--guide", "color", "--radius", "8").exit_code
        == 0
    )
    out_json, out_csv = tmp_path / "cmp.json", tmp_path / "cmp.csv"
    result = run(
        "score",
        "--pred",
        refined,
        "--gt",
        data / "gt",
        "--baseline",
        data / "coarse",
        "--json",
        out_json,
        "--csv",
        out_csv,
        *(("--plot", tmp_path / "plots") if with_plot else ()),
    )
    assert result.exit_code == 0, result.output
    assert "iou" in result.output and "better" in result.output
    payload = json.loads(out_json.read_text())
    iou = payload["comparisons"]["iou"]
    assert payload["count"] == 6 and iou["low"] <= iou["change"] <= iou["high"] and iou["wins"] == 6
    # 6 images: the interval is not to be trusted, and the output and the JSON say so
    assert "warning: only 6 images were compared" in result.output
    assert payload["warnings"] == [
        "only 6 images were compared: intervals and verdicts from fewer than 20 images are unreliable "
        "(they often call a change that is not there)"
    ]
    assert out_csv.read_text().startswith("stem,acc_baseline,acc_refined,acc_change,iou_baseline")
    if with_plot:
        assert (tmp_path / "plots" / "paired_iou.png").stat().st_size > 0


def test_score_baseline_hostile(data, tmp_path):
    base = ["score", "--pred", data / "coarse", "--gt", data / "gt"]
    assert run(*base, "--baseline", tmp_path / "missing").exit_code == 2
    assert run(*base, "--baseline", "").exit_code == 2
    result = run(*base, "--baseline", data / "coarse", "--boxes", "masks")
    assert result.exit_code == 2 and "cannot be combined with --baseline" in result.output
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    result = run(*base, "--baseline", data / "coarse", "--json", fifo)
    assert result.exit_code == 2 and "not a regular file" in result.output
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "victim.csv")
    result = run(*base, "--baseline", data / "coarse", "--csv", link)
    assert result.exit_code == 2 and "symlink" in result.output
    result = run(*base, "--baseline", data / "coarse", "--csv", data / "gt" / "x.csv")
    assert result.exit_code == 2 and "inside the ground-truth folder" in result.output
    bad = tmp_path / "badpred"
    bad.mkdir()
    for name in ("img00.png", "img01.png"):
        (bad / name).write_bytes((data / "coarse" / name).read_bytes())
    (bad / "img02.png").write_bytes(b"not a png")
    result = run("score", "--pred", bad, "--gt", data / "gt", "--baseline", data / "coarse")
    assert result.exit_code == 1 and "img02.png" in result.output and "2 images" in result.output


def test_apply_report_or_outputs_never_replace_the_preset_file(data, tmp_path):
    preset = tmp_path / "best.toml"
    preset.write_text('[refine]\nmethod = "guided"\nguide = "mean"\n[refine.params]\nradius = 4\n')
    before = preset.read_bytes()
    result = run(*apply_args(data, tmp_path / "out"), "--preset-file", preset, "--report", preset)
    assert (
        result.exit_code == 2 and "is the preset file" in result.output and "file file" not in result.output
    )
    # the preset file sitting at an output path (out/img00.png) with --overwrite: refused too
    out = tmp_path / "out2"
    out.mkdir()
    inside = out / "img00.png"
    inside.write_bytes(before)
    result = run(*apply_args(data, out), "--preset-file", inside, "--overwrite")
    assert result.exit_code == 2 and "preset file" in result.output and "img00" in result.output
    assert preset.read_bytes() == before and inside.read_bytes() == before


def test_score_baseline_plot_is_checked_before_any_work(data, tmp_path):
    pytest.importorskip("matplotlib", reason="--plot needs the plot extra (matplotlib)")
    base = ["score", "--pred", data / "coarse", "--gt", data / "gt", "--baseline", data / "coarse"]
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "paired_iou.png").write_bytes(b"mine")
    result = run(*base, "--plot", plots)  # an existing plot is replaced only with --overwrite
    assert result.exit_code == 2 and "already exists; use --overwrite" in result.output
    assert (plots / "paired_iou.png").read_bytes() == b"mine"
    result = run(*base, "--plot", plots, "--overwrite")
    assert result.exit_code == 0, result.output
    assert (plots / "paired_iou.png").read_bytes().startswith(b"\x89PNG")
    link = tmp_path / "p2"
    link.mkdir()
    (link / "paired_iou.png").symlink_to(tmp_path / "victim.png")
    result = run(*base, "--plot", link, "--overwrite")
    assert result.exit_code == 2 and "symbolic link" in result.output
    assert not (tmp_path / "victim.png").exists()
    result = run(*base, "--plot", tmp_path / "p3", "--csv", tmp_path / "p3" / "paired_iou.png")
    assert result.exit_code == 2 and "also the plot file" in result.output


@pytest.mark.parametrize(
    "extra",
    [
        ["--seeds", "no/such.json"],
        ["--patch-size", "16"],
        ["--corloc-selector", "seed_cc"],
        ["--corloc-connectivity", "8"],
        ["--apply-exif"],
    ],
)
def test_score_baseline_refuses_options_it_would_ignore(data, tmp_path, extra):
    result = run(
        "score", "--pred", data / "coarse", "--gt", data / "gt", "--baseline", data / "coarse", *extra
    )
    assert result.exit_code == 2 and "cannot be combined with --baseline" in result.output


def test_score_baseline_names_entries_that_are_not_files(data, tmp_path):
    pred = tmp_path / "pred"
    pred.mkdir()
    for path in sorted((data / "coarse").iterdir()):
        (pred / path.name).write_bytes(path.read_bytes())
    victim = sorted(pred.iterdir())[0]
    victim.unlink()
    os.mkfifo(victim)
    result = run("score", "--pred", pred, "--gt", data / "gt", "--baseline", data / "coarse")
    assert result.exit_code == 1 and f"{victim.name}: is a FIFO" in result.output


def test_score_baseline_with_nothing_scored_fails(data, tmp_path):
    # no common stems, and three empty folders: exit 1, "ok": false and an "error" in --json
    other = tmp_path / "other"
    other.mkdir()
    (other / "zz.png").write_bytes((data / "coarse" / "img00.png").read_bytes())
    empty = [tmp_path / name for name in ("p", "b", "g")]
    for folder in empty:
        folder.mkdir()
    for pred, baseline, gt, why in (
        (other, data / "coarse", data / "gt", "same stem"),
        (*empty, "no masks found"),
    ):
        out_json = tmp_path / f"{pred.name}.json"
        result = run("score", "--pred", pred, "--gt", gt, "--baseline", baseline, "--json", out_json)
        assert result.exit_code == 1, result.output
        assert "error: nothing was scored" in result.output and why in result.output
        payload = json.loads(out_json.read_text())
        assert payload["ok"] is False and payload["count"] == 0 and why in payload["error"]
    # every pair failing: exit 1 and the error says so
    bad = tmp_path / "allbad"
    bad.mkdir()
    (bad / "img00.png").write_bytes(b"not a png")
    out_json = tmp_path / "allbad.json"
    result = run(
        "score", "--pred", bad, "--gt", data / "gt", "--baseline", data / "coarse", "--json", out_json
    )
    assert result.exit_code == 1 and "every pair failed" in json.loads(out_json.read_text())["error"]


def tune_args(data, out, *extra):
    return [
        "tune",
        "--masks",
        data / "coarse",
        "--images",
        data / "images",
        "--gt",
        data / "gt",
        "--out",
        out,
        "--methods",
        "guided",
        *([] if {"-j", "--jobs"} & {str(e) for e in extra} else ["-j", "1"]),  # an option is given once
        *([] if {"-q", "--quiet"} & {str(e) for e in extra} else ["-q"]),
        *extra,
    ]


def test_tune_writes_a_preset_that_apply_accepts(data, tmp_path):
    out = tmp_path / "best.toml"
    report = tmp_path / "tune.json"
    result = run(*tune_args(data, out, "--report", report))
    assert result.exit_code == 0, result.output
    preset = tomllib.loads(out.read_text())
    assert preset["refine"]["method"] == "guided" and preset["refine"]["guide"] == "color"
    # the [tune] record says over how many images, and that they chose the winner (was: `images` only)
    assert preset["tune"]["iou_change_in_sample"] is True
    assert preset["tune"]["iou_change_images"] == preset["tune"]["images"] == 6
    assert "warning: only 6 images" in result.output
    assert json.loads(report.read_text())["winner"]["guide"] == "color"
    assert (tmp_path / "best.toml.tune-cache").is_dir()
    again = run(*tune_args(data, out))
    assert again.exit_code == 2 and "exists; use --overwrite" in again.output
    assert run(*tune_args(data, out, "--overwrite")).exit_code == 0  # resumed from the cache
    assert run(*apply_args(data, tmp_path / "applied"), "--preset-file", out).exit_code == 0
    # damaged cache entries (truncated, empty, garbage) are misses, recomputed: same winner, no traceback
    entries = sorted((tmp_path / "best.toml.tune-cache").glob("*.npz"))
    assert len(entries) >= 3
    entries[0].write_bytes(entries[0].read_bytes()[:40])
    entries[1].write_bytes(b"")
    entries[2].write_bytes(b"PK\x03\x04 not a zip")
    redo = run(*tune_args(data, out, "--overwrite"))
    assert redo.exit_code == 0, redo.output
    assert tomllib.loads(out.read_text()) == preset


def test_tune_names_entries_that_are_not_files_and_unmatched_names(data, tmp_path):
    gt = tmp_path / "gt"
    gt.mkdir()
    names = sorted(p.name for p in (data / "gt").iterdir())
    for name in names[2:]:
        (gt / name).write_bytes((data / "gt" / name).read_bytes())
    os.mkfifo(gt / names[0])  # a FIFO where a GT goes: named, never opened
    args = tune_args(data, tmp_path / "best.toml")
    args[args.index("--gt") + 1] = gt
    result = run(*[a for a in args if a != "-q"])
    assert result.exit_code == 1, result.output
    assert f"{names[0]}: is a FIFO" in result.output
    assert "lack a partner in --masks, --images or --gt" in result.output and names[1] in result.output


def test_tune_cache_path_hazards_are_refused_before_any_work(data, tmp_path):
    out = tmp_path / "best.toml"
    (tmp_path / "best.toml.tune-cache").symlink_to(tmp_path / "nowhere")  # dangling
    result = run(*tune_args(data, out))
    assert result.exit_code == 2 and "tune-cache" in result.output and not out.exists()
    # a masks folder named like the cache: the cache would be written into an input folder
    masks = tmp_path / "o.toml.tune-cache"
    masks.mkdir()
    for path in sorted((data / "coarse").iterdir()):
        (masks / path.name).write_bytes(path.read_bytes())
    args = tune_args(data, tmp_path / "o.toml")
    args[args.index("--masks") + 1] = masks
    result = run(*args)
    assert result.exit_code == 2 and "masks folder" in result.output
    assert sorted(p.suffix for p in masks.iterdir()) == [".png"] * len(list(masks.iterdir()))


def test_tune_hostile_outputs_and_options(data, tmp_path):
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    victim = tmp_path / "victim.toml"
    victim.write_text("keep")
    link = tmp_path / "link.toml"
    link.symlink_to(victim)
    (tmp_path / "dir.toml").mkdir()
    cases = {
        "": "empty",
        str(fifo): "not a regular file",
        str(link): "symlink",
        str(tmp_path / "dir.toml"): "not a regular file",
        str(data / "gt" / "best.toml"): "inside the ground-truth folder",
        str(tmp_path / "no" / "best.toml"): "does not exist",
    }
    for out, message in cases.items():
        result = run(*tune_args(data, out, "--overwrite"))
        assert result.exit_code == 2 and message in result.output, (out, result.output)
    assert victim.read_text() == "keep"
    for budget in ("abc", "-5m", "0", ""):  # "" was taken as no budget
        result = run(*tune_args(data, tmp_path / "b.toml", "--budget", budget))
        assert result.exit_code == 2 and "budget" in result.output, (budget, result.output)
        assert not (tmp_path / "b.toml").exists()
    assert run(*tune_args(data, tmp_path / "c.toml", "--methods", "auto")).exit_code == 2
    result = run(*tune_args(data, tmp_path / "d.toml", "--report", ""))  # was "report file .: exists ..."
    assert result.exit_code == 2 and "empty" in result.output and not (tmp_path / "d.toml").exists()
    missing = [
        "tune",
        "--masks",
        tmp_path / "nope",
        "--images",
        data / "images",
        "--gt",
        data / "gt",
        "--out",
        tmp_path / "d.toml",
    ]
    assert run(*missing).exit_code == 2


def test_score_baseline_reads_masks_with_the_reading_options(data, tmp_path):
    # --max-pixels and --mask-scale apply to --pred, --baseline and --gt, as they do without --baseline
    base = ["score", "--pred", data / "coarse", "--gt", data / "gt", "--baseline", data / "coarse"]
    json_plain, json_scaled = tmp_path / "plain.json", tmp_path / "scaled.json"
    assert run(*base, "--json", json_plain).exit_code == 0
    result = run(*base, "--max-pixels", "5")
    assert result.exit_code == 1 and "img00.png" in result.output and "nothing was scored" in result.output
    # the GT files are 0/255: read as 0..1-valued under --mask-scale 1 they are refused, naming the file
    result = run(*base, "--mask-scale", "1", "--json", json_scaled)
    assert result.exit_code == 1 and "img00.png" in result.output, result.output
    assert json.loads(json_plain.read_text())["count"] == 6
    result = run(*base, "--mask-scale", "nonsense")
    assert result.exit_code == 2


def test_score_baseline_says_when_a_metric_is_compared_on_fewer_images(tmp_path):
    # was: the paired table printed tokencut's IoU over the defined images only (0.8951 where `score`
    # prints nan, one image having an empty GT and an empty mask) without saying so
    for folder in ("pred", "base", "gt"):
        (tmp_path / folder).mkdir()
    disk = np.zeros((40, 60), np.uint8)
    cv2.circle(disk, (30, 20), 12, 255, -1)
    for folder, shift in (("pred", 0), ("base", 3), ("gt", 1)):
        cv2.imwrite(str(tmp_path / folder / "a.png"), np.roll(disk, shift, axis=1))
        cv2.imwrite(str(tmp_path / folder / "z.png"), np.zeros((40, 60), np.uint8))
    args = ["score", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "-j", "1", "-q"]
    plain = run(*args)
    assert plain.exit_code == 0 and re.search(r"^iou\s+nan$", plain.stdout, re.M)
    paired = run(*args, "--baseline", tmp_path / "base")
    assert paired.exit_code == 0, paired.output
    assert "note: iou is compared on the 1 of 2 images where it is defined on both sides" in paired.stdout
    assert "note: acc" not in paired.stdout  # defined everywhere: the numbers `score` prints


def test_tune_replaces_an_existing_report_file_like_the_other_commands(data, tmp_path):
    # "report file r.json: exists; use --overwrite" where the docs say --report, --json and --csv files
    # are replaced (and --overwrite is documented for --out only)
    report = tmp_path / "r.json"
    report.write_text("{}\n")
    result = run(*tune_args(data, tmp_path / "best.toml", "--report", report))
    assert result.exit_code == 0, result.output
    assert "winner" in json.loads(report.read_text())


def test_jobs_is_checked_even_when_tune_is_served_from_its_cache(data, tmp_path):
    out = tmp_path / "best.toml"
    assert run(*tune_args(data, out)).exit_code == 0
    again = run(*tune_args(data, out, "--overwrite", "-j", "5000"))  # every score is cached: was exit 0
    assert again.exit_code == 2 and "jobs must be <= 1024" in again.output


def test_score_baseline_checks_jobs_like_score(data, tmp_path):
    # -j 5000 was neither used nor checked with --baseline (exit 0); -j 1 stays valid
    refined = tmp_path / "refined"
    assert run(*apply_args(data, refined)).exit_code == 0
    args = ["score", "--pred", refined, "--gt", data / "gt", "--baseline", data / "coarse", "-q"]
    result = run(*args, "-j", "5000")
    assert result.exit_code == 2 and "jobs must be <= 1024" in result.output
    assert run(*args, "-j", "2").exit_code == 0


def test_tune_report_that_maskrefine_did_not_write_is_refused_before_the_run(data, tmp_path):
    # was: replaced at the end of the run
    report = tmp_path / "tune.json"
    report.write_text("notes\n")
    result = run(*tune_args(data, tmp_path / "best.toml", "--report", report))
    assert (
        result.exit_code == 2
        and "tune.json exists and is not a report or CSV file maskrefine wrote" in result.output
    )
    assert report.read_text() == "notes\n" and not (tmp_path / "best.toml").exists()


@pytest.mark.skipif(
    not Path("/proc/self").is_dir(), reason="needs Linux /proc (a folder that takes no new file)"
)
def test_tune_out_in_a_folder_that_takes_no_file_is_refused_before_the_run(data, tmp_path):
    # was: a first batch was scored, then "error: /proc/x.toml.tune-cache: No such file or directory", exit 1
    result = run(*tune_args(data, "/proc/x.toml"))
    assert (
        result.exit_code == 2
        and "preset file (--out) /proc/x.toml: cannot write in its folder /proc" in result.output
    )
    result = run(*tune_args(data, tmp_path / "best.toml", "--report", "/proc/r.json"))  # was: after the run
    assert (
        result.exit_code == 2
        and "report file /proc/r.json: cannot write in its folder /proc" in result.output
    )
    assert not (tmp_path / "best.toml").exists() and not (tmp_path / "best.toml.tune-cache").exists()
    (tmp_path / "exist.toml").write_text("")
    result = run(*tune_args(data, tmp_path / "exist.toml" / "x.toml"))  # was: "folder ... does not exist"
    assert result.exit_code == 2 and f"{tmp_path / 'exist.toml'} is not a folder" in result.output


def test_score_baseline_with_nothing_compared_prints_no_empty_table(data, tmp_path):
    # was: "error: nothing was scored ..." and then "preset: ...; 0 images" with a table header and no row
    (tmp_path / "empty").mkdir()
    result = run("score", "--pred", data / "coarse", "--gt", data / "gt", "--baseline", tmp_path / "empty")
    assert result.exit_code == 1 and "error: nothing was scored" in result.output
    assert "0 image" not in result.output and "verdict" not in result.output


def test_apply_refines_full_size_block_masks_as_their_grids(tmp_path, rng):
    # masks saved as TokenCut saves them (the x16 grid nearest-upsampled to the image) give the bytes the
    # grids themselves give, and the report says which kind auto saw
    for sub in ("images", "grids", "blocks"):
        (tmp_path / sub).mkdir()
    for i in range(3):
        image = (rng.random((100, 150, 3)) * 255).astype(np.uint8)
        image[30:70, 40:110] //= 3
        grid = np.zeros((7, 10), np.uint8)
        grid[2:5, 3:7] = 255
        grid[i, i] = 255
        cv2.imwrite(str(tmp_path / "images" / f"{i}.png"), image)
        cv2.imwrite(str(tmp_path / "grids" / f"{i}.png"), grid)
        cv2.imwrite(str(tmp_path / "blocks" / f"{i}.png"), grid.repeat(16, 0).repeat(16, 1)[:100, :150])
    for masks in ("grids", "blocks"):
        args = [
            "--masks",
            tmp_path / masks,
            "--images",
            tmp_path / "images",
            "--out",
            tmp_path / f"out_{masks}",
        ]
        assert run("apply", *args, "-q", "--report", tmp_path / f"{masks}.json").exit_code == 0
    for i in range(3):
        written = (tmp_path / "out_blocks" / f"{i}.png").read_bytes()
        assert written == (tmp_path / "out_grids" / f"{i}.png").read_bytes()
        assert written != (tmp_path / "blocks" / f"{i}.png").read_bytes()
    decision = json.loads((tmp_path / "blocks.json").read_text())["files"][0]["auto"]
    assert decision["kind"] == "binary x16 (full-size blocks)" and decision["full_size_blocks"] is True
    assert decision["method"] == "guided" and decision["patch"] == 16


def test_apply_refines_tokencut_saliency_masks(tmp_path, rng):
    # TokenCut saves the grid of the image resized to a multiple of 16, resized back to the image with
    # F.interpolate(mode="nearest"): cells of 100/7 x 150/9 pixels; they were written back unchanged
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    image = (rng.random((100, 150, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "images" / "a.png"), image)
    grid = np.zeros((6, 9), np.uint8)  # round(100 / 16) x round(150 / 16)
    grid[1:4, 2:6] = 255
    grid[4, 6] = 255
    mask = grid[np.ix_(np.arange(100) * 6 // 100, np.arange(150) * 9 // 150)]
    cv2.imwrite(str(tmp_path / "masks" / "a.png"), mask)
    args = ["--masks", tmp_path / "masks", "--images", tmp_path / "images", "--out", tmp_path / "out"]
    assert run("apply", *args, "-q", "--report", tmp_path / "r.json").exit_code == 0
    decision = json.loads((tmp_path / "r.json").read_text())["files"][0]["auto"]
    assert decision["kind"] == "binary x16 (full-size blocks)" and decision["block_placement"] == "stretched"
    assert decision["block_grid"] == [6, 9] and decision["method"] == "guided"
    assert (tmp_path / "out" / "a.png").read_bytes() != (tmp_path / "masks" / "a.png").read_bytes()


def test_score_baseline_counts_unmatched_files_under_quiet(data, tmp_path):
    # -q hid that predictions and baseline files without a partner were dropped (exit 0, 3 of 6 compared)
    import shutil

    baseline = tmp_path / "baseline"
    baseline.mkdir()
    stems = sorted(path.name for path in (data / "coarse").iterdir())
    for name in stems[:3]:
        shutil.copyfile(data / "coarse" / name, baseline / name)
    shutil.copyfile(data / "coarse" / stems[0], baseline / "other.png")  # a stem with no partner
    args = ["score", "--pred", data / "coarse", "--gt", data / "gt", "--baseline", baseline]
    quiet = run(*args, "-q")
    assert quiet.exit_code == 0, quiet.output
    assert "failed 0, unmatched 4, duplicates 0" in quiet.stdout
    assert "lack a partner" not in quiet.output  # the list itself stays for the default output
    loud = run(*args)
    assert "failed 0, unmatched 4, duplicates 0" in loud.stdout and "lack a partner" in loud.output
    everything = run(
        "score", "--pred", data / "coarse", "--gt", data / "gt", "--baseline", data / "coarse", "-q"
    )
    assert "unmatched" not in everything.output
