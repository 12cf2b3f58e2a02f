"""``merge_run_reports`` / ``maskrefine report merge``: shard reports of one apply job -> one summary."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from maskrefine.cli import main
from maskrefine.errors import ConfigError, InputError
from maskrefine.pipeline import apply_folder, merge_run_reports, read_run_report
from maskrefine.pipeline.merge import MergeStopped

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
N_SHARDS = 3


@pytest.fixture(scope="module")
def sharded(tmp_path_factory) -> dict[str, object]:
    """The examples refined once in one run and once as 3 shards (one report each)."""
    root = tmp_path_factory.mktemp("merge")
    single = apply_folder(EXAMPLES / "masks", EXAMPLES / "images", root / "single", jobs=1)
    reports = []
    for k in range(1, N_SHARDS + 1):
        path = root / "reports" / f"{k}.json"
        apply_folder(
            EXAMPLES / "masks", EXAMPLES / "images", root / "sharded", shard=(k, N_SHARDS), jobs=1,
            report_path=path,
        )  # fmt: skip
        reports.append(path)
    return {"root": root, "single": single, "reports": reports}


def test_merge_equals_single_run(sharded) -> None:
    merged = merge_run_reports(sharded["reports"])
    single = sharded["single"]
    assert merged.ok and merged.missing_shards == [] and merged.shard_count == N_SHARDS
    assert merged.report.counts == single.counts
    assert [o.stem for o in merged.report.outcomes] == [o.stem for o in single.outcomes]
    assert {o.status for o in merged.report.outcomes} == {"written"}
    assert sorted(merged.shards) == [f"{k}/{N_SHARDS}" for k in range(1, N_SHARDS + 1)]
    assert merged.report.config["shard"] is None and merged.report.config["method"] == "guided"
    # the fixture ran the shards one after another: the job's span covers them all
    assert merged.elapsed_rule == "span" and merged.report.elapsed >= merged.elapsed_sum - 1e-5 > 0
    data = merged.to_dict()
    assert data["ok"] is True and data["counts"]["written"] == len(single.outcomes)


def test_missing_shard_is_not_ok(sharded) -> None:
    merged = merge_run_reports(sharded["reports"][:2])
    assert not merged.ok and merged.missing_shards == [3]
    assert merged.report.counts["written"] < sharded["single"].counts["written"]


def test_same_report_twice_or_other_job_is_refused(sharded, tmp_path) -> None:
    first = sharded["reports"][0]
    # the same file twice was "shard 1/3 is also reported by" itself, and nothing was merged
    with pytest.raises(ConfigError, match=r"report file .*1.json' is given twice$"):
        merge_run_reports([first, first])
    other_spelling = f"{first.parent}/./{first.name}"
    with pytest.raises(ConfigError, match=r"is given twice \(also as '.*reports/1.json'\)"):
        merge_run_reports([first, *sharded["reports"][1:], other_spelling])
    result = CliRunner().invoke(main, ["report", "merge", str(first), other_spelling])
    assert result.exit_code == 2 and "given twice" in result.stderr and "also as" not in result.stderr
    copy = tmp_path / "copy.json"
    copy.write_bytes(first.read_bytes())  # another file with the same shard: still a conflict
    with pytest.raises(InputError, match=r"shard 1/3 is also reported by"):
        merge_run_reports([first, copy])
    data = json.loads(first.read_text())
    data["config"]["guide"] = "color"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"other\.json: not a shard of the same job .* guide is 'color'"):
        merge_run_reports([sharded["reports"][1], other])
    data = json.loads(first.read_text())
    data["config"]["shard"] = "2/3"  # same stems as shard 1 under another shard number
    clash = tmp_path / "clash.json"
    clash.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"clash\.json: shard 2/3 is also reported by|stem .* also reported"):
        merge_run_reports([sharded["reports"][1], clash])


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "file is empty"),
        (b"{not json", "not valid JSON"),
        (b'{"files": [], "x": "cut', "not valid JSON (Unterminated string starting; line 1)"),  # "at at"
        (b"[1, 2]", "not an apply run report"),
        (b'{"files": [{"stem": "a"}], "config": {}, "counts": {}}', "malformed run report entry"),
        (b"\xff\xfe\x00", "not a UTF-8 JSON file"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"files": [], "config": {}, "counts": {}, "elapsed_s": NaN}', "NaN is not a JSON number"),
        (b'{"files": [], "config": {}, "counts": {}, "elapsed_s": -Infinity}', "-Infinity is not a JSON"),
        (b'{"files": [], "config": {}, "counts": {}, "elapsed_s": 1e400}', "'elapsed_s' must be a finite"),
        (b'{"files": [], "config": {}, "counts": {}, "elapsed_s": "3"}', "'elapsed_s' must be a finite"),
        (b'{"files": [], "config": {}, "counts": {}, "duplicates": {"a": "xy"}}', "must be a list of paths"),
        (b'{"files": [], "config": {}, "counts": {}, "duplicates": []}', "'duplicates' must be an object"),
        (
            b'{"files": [{"stem": "a", "status": "written", "mask": "m", "image": "i", "output": "o", '
            b'"error": "m: cannot decode"}], "config": {}, "counts": {}}',
            "file 'a' has status 'written' and an 'error' (m: cannot decode)",
        ),
        (
            b'{"files": [{"stem": "a", "status": "failed", "mask": "m", "image": "i", "output": "o"}], '
            b'"config": {}, "counts": {}}',
            "file 'a' has status 'failed' but no 'error'",
        ),
        (
            b'{"files": [{"stem": "a", "status": ["written"], "mask": "m", "image": "i", "output": "o"}],'
            b' "config": {}, "counts": {}}',
            "'status' must be a string",
        ),
        (
            b'{"files": [{"stem": 3, "status": "written", "mask": "m", "image": "i", "output": "o"}],'
            b' "config": {}, "counts": {}}',
            "'stem' must be a string",
        ),
        (
            b'{"files": [{"stem": "a", "status": "written", "mask": "m", "image": "i", "output": "o",'
            b' "seconds": 1e999}], "config": {}, "counts": {}}',
            "'seconds' must be a finite",
        ),
        (
            b'{"files": [], "config": {"shard": "1/10000000000"}, "counts": {}}',
            None,  # read fine; refused when merged (N too large)
        ),
        (
            b'{"files": [], "config": {}, "counts": {}, "removed_output_folders": "out"}',
            "'removed_output_folders' must be a list of paths; got str",
        ),
        (
            b'{"files": [], "config": {}, "counts": {}, "removed_output_folders": [3]}',
            "'removed_output_folders' must be a string; got int",
        ),
        (
            b'{"files": [], "config": {}, "counts": {}, "removed_output_folders": [""]}',
            "'removed_output_folders' is empty",
        ),
    ],
)
def test_bad_report_files_are_named(tmp_path, content, problem) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    if problem is None:
        read_run_report(path)
        with pytest.raises(
            InputError, match=r"bad\.json: bad shard in config: shard count N must be at most"
        ):
            merge_run_reports([path])
        return
    with pytest.raises(InputError, match=rf"bad\.json: .*{re.escape(problem)}"):
        read_run_report(path)
    # the CLI names the file and goes on; never a traceback
    result = CliRunner().invoke(main, ["report", "merge", str(path)])
    assert result.exit_code == 1 and f"{path}: " in result.stderr and "Traceback" not in result.output


def test_merged_time_is_the_jobs_wall_span_not_the_longest_shard(sharded, tmp_path) -> None:
    # shards run one after another: masks/s must not be written / longest shard (3x too high here)
    reports = []
    for k, start in ((1, 1000.0), (2, 1010.0), (3, 1020.0)):
        data = json.loads(sharded["reports"][k - 1].read_text())
        data["started_s"], data["elapsed_s"] = start, 4.0
        path = tmp_path / f"{k}.json"
        path.write_text(json.dumps(data))
        reports.append(path)
    merged = merge_run_reports(reports)
    assert merged.elapsed_rule == "span" and merged.report.elapsed == pytest.approx(24.0)
    written = merged.report.counts["written"]
    assert merged.report.masks_per_s == pytest.approx(written / 24.0)
    assert merged.to_dict()["started_s"] == 1000.0 and merged.to_dict()["elapsed_sum_s"] == 12.0
    # shards run at once: the span is one shard's time
    for path in reports:
        data = json.loads(path.read_text())
        data["started_s"] = 1000.0
        path.write_text(json.dumps(data))
    assert merge_run_reports(reports).report.elapsed == pytest.approx(4.0)
    # a report without a start time (older maskrefine): summed, and said so
    data = json.loads(reports[0].read_text())
    del data["started_s"]
    reports[0].write_text(json.dumps(data))
    merged = merge_run_reports(reports)
    assert merged.elapsed_rule == "sum" and merged.report.elapsed == pytest.approx(12.0)
    result = CliRunner().invoke(main, ["report", "merge", *map(str, reports)])
    assert "summed over shards" in result.stderr


def test_a_fresh_report_records_its_start_time(sharded) -> None:
    data = json.loads(sharded["reports"][0].read_text())
    assert isinstance(data["started_s"], float) and data["started_s"] > 1.7e9


def test_settings_that_differ_between_shards_are_refused(sharded, tmp_path) -> None:
    first = json.loads(sharded["reports"][0].read_text())
    assert "max_pixels" in first["config"]  # (auto_rule is recorded by --method auto runs)
    for key, value in (("max_pixels", 200_000), ("auto_rule", "another rule")):
        data = json.loads(sharded["reports"][1].read_text())
        data["config"][key] = value
        other = tmp_path / f"{key}.json"
        other.write_text(json.dumps(data))
        with pytest.raises(InputError, match=rf"not a shard of the same job .* {key} is"):
            merge_run_reports([sharded["reports"][0], other])


def test_shards_that_saw_different_folders_are_refused(tmp_path) -> None:
    # audit 2026-12-03: a pair added after shard 1 ran, whose stem falls in shard 1, was never refined,
    # and the merge said "written 10" with exit 0
    masks, images = tmp_path / "masks", tmp_path / "images"
    shutil.copytree(EXAMPLES / "masks", masks)
    shutil.copytree(EXAMPLES / "images", images)
    reports = [tmp_path / "1.json", tmp_path / "2.json"]
    apply_folder(masks, images, tmp_path / "out", shard=(1, 2), jobs=1, report_path=reports[0])
    stem = next(p.stem for p in masks.iterdir())
    shutil.copyfile(masks / f"{stem}.png", masks / "added.png")
    shutil.copyfile(next(images.glob(f"{stem}.*")), images / "added.jpg")
    apply_folder(masks, images, tmp_path / "out", shard=(2, 2), jobs=1, report_path=reports[1])
    with pytest.raises(
        InputError, match=r"2\.json: the folders changed between the shards' runs: this shard saw 11 pairs"
    ):
        merge_run_reports(reports)
    result = CliRunner().invoke(main, ["report", "merge", *map(str, reports)])
    assert result.exit_code != 0 and "folders changed" in result.output


def test_merged_unmatched_files_are_in_one_runs_order(tmp_path) -> None:
    # the merge listed the images' unmatched files before the masks', unlike one run's report
    masks, images = tmp_path / "masks", tmp_path / "images"
    shutil.copytree(EXAMPLES / "masks", masks)
    shutil.copytree(EXAMPLES / "images", images)
    for k in range(4):
        shutil.copyfile(next(masks.iterdir()), masks / f"lonely{k}.png")
        shutil.copyfile(next(images.iterdir()), images / f"alone{k}.jpg")
    for k in range(2):  # files of a kind their folder is not read from: listed first in one run
        shutil.copyfile(next(images.iterdir()), masks / f"unread{k}.jpg")
        (images / f"raw{k}.npy").write_bytes(b"")
    single = apply_folder(masks, images, tmp_path / "one", jobs=1, report_path=tmp_path / "one.json")
    reports = [tmp_path / f"{k}.json" for k in (1, 2)]
    for k, path in enumerate(reports, start=1):
        apply_folder(masks, images, tmp_path / "one", shard=(k, 2), jobs=1, report_path=path, overwrite=True)
    one = json.loads((tmp_path / "one.json").read_text())["unmatched"]
    out = tmp_path / "merged.json"
    result = CliRunner().invoke(main, ["report", "merge", *map(str, reports), "--json", str(out)])
    assert result.exit_code == 0, result.output  # unmatched files are reported, not failures
    assert json.loads(out.read_text())["unmatched"] == one and len(one) == 12 and single.unmatched
    assert [u.get("reason", "") != "" for u in one] == [True] * 4 + [False] * 8


def test_many_missing_shards_are_counted_not_all_listed(sharded, tmp_path) -> None:
    data = json.loads(sharded["reports"][0].read_text())
    data["config"]["shard"] = "1/1000000"
    data["files"] = []  # shard 1/3's stems are not shard 1/1000000's
    wide = tmp_path / "wide.json"
    wide.write_text(json.dumps(data))
    merged = merge_run_reports([wide])
    assert len(merged.missing_shards) == 999_999
    result = CliRunner().invoke(main, ["report", "merge", str(wide)])
    assert result.exit_code == 1 and "2/1000000, 3/1000000" in result.stderr
    assert "and 999979 more" in result.stderr and len(result.stderr) < 2000


def test_many_merged_shards_are_counted_not_all_listed(sharded, tmp_path) -> None:
    # 3,000 shard reports printed every shard on one stdout line (about 32 KB)
    data = json.loads(sharded["reports"][0].read_text())
    data["files"], data["config"]["folder_pairs"] = [], 0  # 30 empty shards of empty folders
    paths = []
    for k in range(1, 31):
        data["config"]["shard"] = f"{k}/30"
        path = tmp_path / f"r{k}.json"
        path.write_text(json.dumps(data))
        paths.append(str(path))
    result = CliRunner().invoke(main, ["report", "merge", *paths])
    line = next(x for x in result.stdout.splitlines() if x.startswith("merged 30 report(s)"))
    assert "1/30, 2/30" in line and "20/30 and 10 more" in line and "21/30" not in line, line


def test_hostile_paths(tmp_path) -> None:
    with pytest.raises(ConfigError, match="non-empty path"):
        read_run_report("")
    with pytest.raises(ConfigError, match="non-empty path"):
        read_run_report(3)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="no such report file"):
        read_run_report(tmp_path / "absent.json")
    with pytest.raises(InputError, match="not a regular file"):
        read_run_report(tmp_path)
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="fifo.json: not a regular file"):  # never blocks on open
        read_run_report(fifo)
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "nowhere.json")
    with pytest.raises(InputError, match=r"no such report file \(a dangling symlink\)"):
        read_run_report(dangling)
    loop = tmp_path / "loop.json"
    loop.symlink_to(loop)  # was "no such report file"
    with pytest.raises(InputError, match=r"loop.json: not a regular file \(a symlink loop\)"):
        read_run_report(loop)
    spaces = tmp_path / "spaces.json"
    spaces.write_text("   \n")  # was "file is empty"
    with pytest.raises(InputError, match="spaces.json: file holds only whitespace"):
        read_run_report(spaces)
    with pytest.raises(ConfigError, match="no run reports"):
        merge_run_reports([])
    with pytest.raises(ConfigError, match="expected a path or a RunReport"):
        merge_run_reports([{"files": []}])  # type: ignore[list-item]


def test_cli_merge(sharded, tmp_path) -> None:
    runner = CliRunner()
    out = tmp_path / "merged.json"
    inputs = [str(p) for p in sharded["reports"]]
    before = {p: Path(p).read_bytes() for p in inputs}
    result = runner.invoke(main, ["report", "merge", *inputs, "--json", str(out)])
    assert result.exit_code == 0, result.output
    n = sharded["single"].counts["written"]
    assert f"written {n}, skipped 0, failed 0" in result.stdout
    assert "merged 3 report(s), shards: 1/3, 2/3, 3/3" in result.stdout
    data = json.loads(out.read_text())
    assert data["ok"] is True and data["counts"]["written"] == n and data["missing_shards"] == []
    assert {p: Path(p).read_bytes() for p in inputs} == before  # inputs untouched


def test_a_shard_whose_output_folder_was_removed_makes_the_merge_not_ok(sharded, tmp_path) -> None:
    # its outputs counted "written" went with the folder; the shard's run ended with an error
    data = json.loads(sharded["reports"][1].read_text())
    assert data["removed_output_folders"] == []  # a run that kept its folder
    gone = str(sharded["root"] / "sharded")
    data["removed_output_folders"] = [gone]
    paths = [sharded["reports"][0], tmp_path / "2.json", sharded["reports"][2]]
    paths[1].write_text(json.dumps(data))
    merged = merge_run_reports(paths)
    assert not merged.ok and merged.report.removed_output_folders == [gone]
    assert merged.report.counts == sharded["single"].counts  # the files as the shards recorded them
    out = tmp_path / "merged.json"
    result = CliRunner().invoke(main, ["report", "merge", *map(str, paths), "--json", str(out), "-q"])
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [
        f"error: output folder '{gone}' was removed during the run, with the outputs written into it"
    ]
    merged_json = json.loads(out.read_text())
    assert merged_json["ok"] is False and merged_json["removed_output_folders"] == [gone]
    # a report of an earlier version, without the key, reads as a run that kept its folder
    del data["removed_output_folders"]
    paths[1].write_text(json.dumps(data))
    assert read_run_report(paths[1]).removed_output_folders == [] and merge_run_reports(paths).ok


def test_cli_merge_missing_and_unreadable(sharded, tmp_path) -> None:
    runner = CliRunner()
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    result = runner.invoke(main, ["report", "merge", str(sharded["reports"][0]), str(empty)])
    assert result.exit_code == 1
    assert f"error: {empty}: file is empty" in result.stderr
    assert "error: no report for shard(s) 2/3, 3/3" in result.stderr
    assert "Traceback" not in result.output


def test_cli_merge_usage_errors(sharded, tmp_path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["report", "merge"])
    assert result.exit_code == 2 and "Missing argument" in result.stderr
    first = str(sharded["reports"][0])
    copy = tmp_path / "copy.json"
    shutil.copy(first, copy)
    result = runner.invoke(main, ["report", "merge", str(copy), "--json", str(copy)])
    assert result.exit_code == 2 and "would overwrite one of the reports to merge" in result.stderr
    assert copy.read_bytes() == Path(first).read_bytes()
    result = runner.invoke(main, ["report", "merge", first, first])
    assert result.exit_code == 2 and "is given twice" in result.stderr, result.output
    result = runner.invoke(main, ["report", "merge", str(tmp_path / "none.json")])
    assert result.exit_code == 1 and "none.json: no such report file" in result.stderr


def test_cli_merge_refuses_unsafe_json_paths(sharded, tmp_path) -> None:
    runner = CliRunner()
    first = str(sharded["reports"][0])
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    link = tmp_path / "link.json"
    link.symlink_to(victim)
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.json"
    folder.mkdir()
    for target, problem in ((link, "over a symlink"), (fifo, "not a regular file"), (folder, "")):
        result = runner.invoke(main, ["report", "merge", first, "--json", str(target)])
        assert result.exit_code == 2, (target, result.output)
        assert problem in result.stderr and "Traceback" not in result.output
    assert victim.read_text() == "keep me" and link.is_symlink() and folder.is_dir()
    result = runner.invoke(main, ["report", "merge", first, "--json", ""])
    assert result.exit_code == 2 and "empty" in result.stderr
    plain = tmp_path / "plain.txt"
    plain.write_text("a file")
    result = runner.invoke(main, ["report", "merge", first, "--json", str(plain / "merged.json")])
    assert result.exit_code == 2 and "plain.txt is not a folder" in result.stderr
    assert "written" not in result.stdout  # refused before anything is read or printed
    assert plain.read_text() == "a file"
    assert not list(tmp_path.glob("*.tmp*"))


def test_merge_keeps_each_files_image_encoding(tmp_path) -> None:
    """The merged report had image_encoding null on every file and lost the image encodings' counts."""
    import cv2

    images = tmp_path / "images"
    images.mkdir()
    for i, path in enumerate(sorted((EXAMPLES / "images").glob("*.jpg"))):
        pixels = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if i % 2:  # half of them: 8-bit values in a 16-bit PNG
            cv2.imwrite(str(images / f"{path.stem}.png"), pixels.astype("uint16"))
        else:
            shutil.copy(path, images / path.name)
    single = apply_folder(EXAMPLES / "masks", images, tmp_path / "single", jobs=1, method="identity")
    reports = []
    for k in (1, 2):
        reports.append(tmp_path / f"{k}.json")
        apply_folder(
            EXAMPLES / "masks", images, tmp_path / "sharded", shard=(k, 2), jobs=1, method="identity",
            report_path=reports[-1],
        )  # fmt: skip
    merged = merge_run_reports(reports).report
    assert {o.stem: o.image_encoding for o in merged.outcomes} == {
        o.stem: o.image_encoding for o in single.outcomes
    }
    assert merged.encodings == single.encodings
    assert sum(v for k, v in single.encodings.items() if k.startswith("images: ")) == 5


def test_shards_are_compared_by_folder_not_by_the_text_typed(tmp_path, monkeypatch) -> None:
    # was: two datasets each run from their own folder as "--masks masks --images images --out out"
    # merged as one job, while shards of one job given once relative and once absolute paths were refused.
    # The long folder name: the message cut paths over 80 characters in the middle ('.../b/...s', not
    # '.../a/...s'), hiding the part that differs
    tmp_path = tmp_path / ("long_folder_name_" * 6)
    for name in ("a", "b"):
        shutil.copytree(EXAMPLES / "masks", tmp_path / name / "masks")
        shutil.copytree(EXAMPLES / "images", tmp_path / name / "images")
    monkeypatch.chdir(tmp_path / "a")
    apply_folder("masks", "images", "out", shard=(1, 2), jobs=1, report_path=tmp_path / "a1.json")
    apply_folder(
        tmp_path / "a" / "masks", tmp_path / "a" / "images", tmp_path / "a" / "out", shard=(2, 2), jobs=1,
        report_path=tmp_path / "a2.json",
    )  # fmt: skip
    merged = merge_run_reports([tmp_path / "a1.json", tmp_path / "a2.json"])
    assert merged.ok and merged.report.config["masks_dir"] == str(tmp_path / "a" / "masks")
    monkeypatch.chdir(tmp_path / "b")
    apply_folder("masks", "images", "out", shard=(2, 2), jobs=1, report_path=tmp_path / "b2.json")
    with pytest.raises(InputError, match=r"b2\.json: not a shard of the same job .* is '.*/b/masks', not '"):
        merge_run_reports([tmp_path / "a1.json", tmp_path / "b2.json"])


def test_shards_reaching_the_folders_through_a_symlink_are_one_job(tmp_path) -> None:
    # the folders compared as text: a shard run through a symlink (another mount path on a cluster) was
    # refused as "not a shard of the same job" though it read and wrote the same folders
    real = tmp_path / "real"
    shutil.copytree(EXAMPLES / "masks", real / "masks")
    shutil.copytree(EXAMPLES / "images", real / "images")
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    apply_folder(
        real / "masks", real / "images", real / "out", shard=(1, 2), jobs=1, report_path=tmp_path / "1.json"
    )
    apply_folder(
        link / "masks", link / "images", link / "out", shard=(2, 2), jobs=1, report_path=tmp_path / "2.json"
    )
    merged = merge_run_reports([tmp_path / "1.json", tmp_path / "2.json"])
    assert (
        merged.ok and merged.missing_shards == [] and merged.report.config["masks_dir"] == str(real / "masks")
    )
    assert merged.report.counts["written"] == len(list((EXAMPLES / "masks").iterdir()))
    # a folder that is gone cannot be shown to be the same: the spellings must then agree
    link.unlink()
    with pytest.raises(
        InputError, match=r"2\.json: not a shard of the same job .* masks_dir is '.*/link/masks'"
    ):
        merge_run_reports([tmp_path / "1.json", tmp_path / "2.json"])


def test_a_merge_that_stops_still_names_every_unreadable_report(sharded, tmp_path) -> None:
    # only the error that stopped the merge was printed; the unreadable files skipped before were lost
    empty, bad = tmp_path / "empty.json", tmp_path / "bad.json"
    empty.write_text("")
    bad.write_text("{\n")
    missing = tmp_path / "missing.json"
    result = CliRunner().invoke(main, ["report", "merge", str(empty), str(bad), str(missing)])
    assert result.exit_code == 1
    for name, problem in (
        (empty, "file is empty"),
        (bad, "not valid JSON"),
        (missing, "no such report file"),
    ):
        assert f"error: {name}: {problem}" in result.output
    other = tmp_path / "other.json"
    apply_folder(EXAMPLES / "masks", EXAMPLES / "images", tmp_path / "elsewhere", jobs=1, report_path=other)
    first = sharded["reports"][0]
    result = CliRunner().invoke(main, ["report", "merge", str(empty), str(first), str(other), str(bad)])
    assert result.exit_code == 1
    assert (
        f"error: {empty}: file is empty" in result.output and f"error: {bad}: not valid JSON" in result.output
    )
    assert "not a shard of the same job" in result.output
    with pytest.raises(MergeStopped) as info:
        merge_run_reports([empty, first, other], skip_unreadable=True)
    assert info.value.unreadable == [f"{empty}: file is empty"]


def test_the_json_report_writer_is_public_and_shared(tmp_path) -> None:
    # was the private `_write_json`, imported by merge and compare; no alias is left under the old name
    import math

    from maskrefine.pipeline import merge, reports
    from maskrefine.quality import compare

    assert "write_json_report" in reports.__all__
    for module in (reports, merge, compare):
        assert not hasattr(module, "_write_json"), module.__name__
    assert merge.write_json_report is compare.write_json_report is reports.write_json_report
    path = tmp_path / "r.json"
    assert reports.write_json_report(path, {"a": [1, None]}) == path
    assert path.read_text() == '{\n  "a": [\n    1,\n    null\n  ]\n}\n'
    reports.write_json_report(path, {"b": 2})  # an existing regular file is replaced
    assert json.loads(path.read_text()) == {"b": 2}
    with pytest.raises(ValueError):
        reports.write_json_report(path, {"b": math.nan})  # nothing written: the old file stays
    assert json.loads(path.read_text()) == {"b": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # no temporary file left


def test_the_merged_report_never_lands_on_the_jobs_inputs_or_outputs(tmp_path) -> None:
    # `report merge --json masks/a.png` replaced the job's input mask with JSON (exit 0), and
    # `--json out/a.png` one of its outputs, which `--skip-existing` then took as finished; `apply
    # --report` refuses both
    masks, images, out = tmp_path / "masks", tmp_path / "images", tmp_path / "out"
    shutil.copytree(EXAMPLES / "masks", masks)
    shutil.copytree(EXAMPLES / "images", images)
    reports = [tmp_path / f"r{k}.json" for k in (1, 2)]
    for k, report in enumerate(reports, 1):
        apply_folder(masks, images, out, shard=(k, 2), jobs=1, report_path=report)
    stem = sorted(p.stem for p in masks.iterdir())[0]
    before = {p: p.read_bytes() for folder in (masks, images, out) for p in folder.iterdir()}
    cases = [
        (masks / f"{stem}.png", "inside the masks folder"),
        (masks / "merged.json", "inside the masks folder"),
        (images / "sub" / "merged.json", "inside the images folder"),
        (out / f"{stem}.png", f"is also the output of '{stem}'"),
    ]
    (images / "sub").mkdir()
    for target, message in cases:
        result = CliRunner().invoke(main, ["report", "merge", *map(str, reports), "--json", str(target)])
        assert result.exit_code == 2, (target, result.output)
        assert message in result.output
        with pytest.raises(ConfigError, match=re.escape(message)):
            merge_run_reports(reports).write_json(target)
    after = {p: p.read_bytes() for folder in (masks, images, out) for p in folder.iterdir() if p.is_file()}
    assert after == before
    assert not (images / "sub" / "merged.json").exists() and not (masks / "merged.json").exists()
    # beside the outputs under its own name it is written
    result = CliRunner().invoke(
        main, ["report", "merge", *map(str, reports), "--json", str(out / "merged.json")]
    )
    assert result.exit_code == 0, result.output
    assert json.loads((out / "merged.json").read_text())["counts"]["written"] == len(list(masks.iterdir()))


def test_merge_keeps_why_a_file_was_not_read(tmp_path) -> None:
    # a JPEG among the masks is named with its reason; the merged report keeps the reason
    masks = tmp_path / "masks"
    shutil.copytree(EXAMPLES / "masks", masks)
    first = sorted(masks.iterdir())[0]
    first.rename(first.with_suffix(".jpg"))
    reports = []
    for k in (1, 2):
        path = tmp_path / f"{k}.json"
        apply_folder(masks, EXAMPLES / "images", tmp_path / "out", shard=(k, 2), jobs=1, report_path=path)
        reports.append(path)
    merged = merge_run_reports(reports)
    (unread,) = [u for u in merged.report.unmatched if u.reason]
    assert unread.path.name == first.with_suffix(".jpg").name and unread.folder == "masks"
    assert unread.reason.startswith("not read: files of this folder are read from .png, .npy only; ")
    assert "masks must be lossless: save or convert them to PNG" in unread.reason
    assert not any(u.path.stem == first.stem for u in merged.report.unmatched if not u.reason)
    assert merged.to_dict()["unmatched"][0]["reason"] == unread.reason


def test_a_predict_report_is_named_as_such(tmp_path) -> None:
    report = tmp_path / "predict.json"
    config = {"images_dir": "/i", "checkpoint": "/run/last.pt", "out_dir": "/o", "fmt": "png8"}
    report.write_text(json.dumps({"config": config, "counts": {"written": 0}, "files": []}))
    with pytest.raises(InputError, match=r"predict.json: a `predict` report, not an apply run report"):
        read_run_report(report)
    result = CliRunner().invoke(main, ["report", "merge", str(report)])
    assert result.exit_code != 0 and "a `predict` report" in result.output, result.output


@pytest.mark.parametrize("field", ["stem", "output"])
def test_an_empty_stem_or_output_is_a_malformed_report(sharded, tmp_path, field) -> None:
    data = json.loads(sharded["reports"][0].read_text())
    data["files"][0][field] = ""
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(InputError, match=rf"bad.json: malformed run report entry .*'{field}' is empty"):
        read_run_report(bad)


def test_a_stem_of_another_shard_is_refused(sharded, tmp_path) -> None:
    first, second = (json.loads(path.read_text()) for path in sharded["reports"][:2])
    first["files"].append(second["files"][0])  # moved by hand into shard 1's report
    second["files"] = second["files"][1:]
    paths = [tmp_path / "a.json", tmp_path / "b.json", *sharded["reports"][2:]]
    paths[0].write_text(json.dumps(first))
    paths[1].write_text(json.dumps(second))
    stem = first["files"][-1]["stem"]
    with pytest.raises(InputError, match=rf"a.json: stem '{stem}' is not one of shard 1/3's files"):
        merge_run_reports(paths)


def test_shards_whose_files_do_not_add_up_to_the_folders_pairs_are_refused(sharded, tmp_path) -> None:
    data = json.loads(sharded["reports"][0].read_text())
    assert data["files"] and data["config"]["folder_pairs"] == len(sharded["single"].outcomes)
    data["files"] = []  # a damaged report: its shard's files are gone
    paths = [tmp_path / "r1.json", *sharded["reports"][1:]]
    paths[0].write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"record \d+ file\(s\), but the folders held \d+ pair\(s\)"):
        merge_run_reports(paths)
    result = CliRunner().invoke(main, ["report", "merge", *map(str, paths)])
    assert result.exit_code != 0 and "edited or damaged" in result.output and "Traceback" not in result.output
    assert merge_run_reports(sharded["reports"]).ok  # the reports as written add up
