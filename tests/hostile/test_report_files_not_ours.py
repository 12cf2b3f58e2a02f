"""--report / --json / --csv replace a report maskrefine wrote, never another file (unless --overwrite)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from maskrefine.cli import main
from maskrefine.pipeline.guards import _written_by_maskrefine

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FOREIGN = {
    "notes": b"my results, typed by hand\n",
    "json object": b'{\n  "results": [0.81, 0.79]\n}\n',
    "json list": b"[1, 2, 3]\n",
    "csv": b"method,iou\nours,0.81\n",
    "binary": b"\x89PNG\r\n\x1a\n" + bytes(100),
}
NOT_OURS = "exists and is not a report or CSV file maskrefine wrote; not replaced"


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("small")
    for kind in ("masks", "images", "gt"):
        (root / kind).mkdir()
        for path in sorted((EXAMPLES / kind).iterdir())[:2]:
            shutil.copy(path, root / kind / path.name)
    return {kind: root / kind for kind in ("masks", "images", "gt")}


def _apply(small, tmp_path, *extra):
    out = tmp_path / "refined"
    return [
        "apply", "--masks", str(small["masks"]), "--images", str(small["images"]), "--out", str(out),
        "--method", "identity", "-q", *extra,
    ]  # fmt: skip


def _score(small, *extra):
    return ["score", "--pred", str(small["masks"]), "--gt", str(small["gt"]), "-q", *extra]


def _commands(small, tmp_path, target):
    paired = ("--baseline", str(small["masks"]))
    return {
        "apply --report": _apply(small, tmp_path, "--report", str(target)),
        "score --json": _score(small, "--json", str(target)),
        "score --csv": _score(small, "--csv", str(target)),
        "score --baseline --json": _score(small, *paired, "--json", str(target)),
        "score --baseline --csv": _score(small, *paired, "--csv", str(target)),
    }


COMMANDS = [
    "apply --report",
    "score --json",
    "score --csv",
    "score --baseline --json",
    "score --baseline --csv",
]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("foreign", sorted(FOREIGN))
def test_a_file_maskrefine_did_not_write_is_refused_before_any_work(small, tmp_path, command, foreign):
    # was: replaced at the end of the run (documented), the user's file lost
    target = tmp_path / "results.txt"
    target.write_bytes(FOREIGN[foreign])
    args = _commands(small, tmp_path, target)[command]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert f"{target} {NOT_OURS}: use --overwrite (overwrite=True) to replace it" in result.output
    assert target.read_bytes() == FOREIGN[foreign]
    assert not (tmp_path / "refined").exists()  # apply refused before any work


@pytest.mark.parametrize("command", COMMANDS)
def test_overwrite_replaces_a_file_maskrefine_did_not_write(small, tmp_path, command):
    target = tmp_path / "results.txt"
    target.write_bytes(FOREIGN["notes"])
    args = _commands(small, tmp_path, target)[command]
    result = CliRunner().invoke(main, [*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert _written_by_maskrefine(target.read_bytes())


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("before", ["own", "empty", "blank"])
def test_a_rerun_replaces_its_own_report_and_an_empty_file(small, tmp_path, command, before):
    target = tmp_path / "results.txt"
    args = _commands(small, tmp_path, target)[command]
    if before == "own":
        assert CliRunner().invoke(main, args).exit_code == 0
        first = target.read_bytes()
        assert _written_by_maskrefine(first)
        target.write_bytes(first.replace(b"0", b"1", 3))  # a change: the rerun must write it anew
        if command == "apply --report":
            args = [*args, "--skip-existing"]
    else:
        target.write_bytes(b"" if before == "empty" else b" \n\n")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert _written_by_maskrefine(target.read_bytes()) and target.read_bytes().strip()
    if before == "own":
        assert target.read_bytes() != first.replace(b"0", b"1", 3)


def test_report_merge_refuses_a_file_it_did_not_write(small, tmp_path):
    run = tmp_path / "run.json"
    assert CliRunner().invoke(main, _apply(small, tmp_path, "--report", str(run))).exit_code == 0
    merged = tmp_path / "merged.json"
    merged.write_bytes(FOREIGN["json object"])
    result = CliRunner().invoke(main, ["report", "merge", str(run), "--json", str(merged), "-q"])
    assert result.exit_code == 2, result.output
    assert f"{merged} {NOT_OURS}: remove it first" in result.output
    assert merged.read_bytes() == FOREIGN["json object"]
    merged.write_text(run.read_text())  # a report: replaced
    result = CliRunner().invoke(main, ["report", "merge", str(run), "--json", str(merged), "-q"])
    assert result.exit_code == 0, result.output
    assert "sources" in json.loads(merged.read_text())


def test_the_python_api_refuses_too_and_names_the_keyword(small, tmp_path):
    from maskrefine import apply_folder
    from maskrefine.errors import ConfigError

    target = tmp_path / "run.json"
    target.write_bytes(FOREIGN["notes"])
    with pytest.raises(ConfigError, match=r"overwrite=True"):
        apply_folder(small["masks"], small["images"], tmp_path / "out", method="identity", report_path=target)
    assert target.read_bytes() == FOREIGN["notes"] and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("data", "ours"),
    [
        (b'{\n  "ok": true,\n  "counts": {},\n  "files": []\n}\n', True),  # a run report
        (b'{"error": "x", "ok": false, "counts": {}, "files": []}', True),
        (b'{"preset": "pysod", "count": 3}', True),
        (b'  {\n "winner": {}, "winner_label": "w", "naive": "n"}', True),
        (b'{"error": "x", "comparisons": {}, "count": 0, "ok": false}', True),
        (b"name,height,width,iou\n", True),
        (b"stem,acc_baseline,acc_refined\n", True),
        (b"", True),
        (b"\n", True),
        (b"{}", True),  # holds nothing
        (b" [ ]\n", True),
        # another tool's files, or a report's first key alone (was: any first key ok/preset/..., and any
        # CSV beginning "name,", and only the first 4096 bytes were looked at)
        (b'{"a": 1}', False),
        (b'{\n  "okay": true', False),
        (b'{"OK": 1}', False),
        (b'{"ok": true, "accuracy": 0.9}', False),
        (b'{"error": "x"}\n{"error": "y"}\n', False),  # JSON lines
        (b'{\n  "ok": true,', False),  # cut short: not a report
        (b"name,email\nann,a@b.c\n", False),
        (b"names,iou\n", False),
        (b"Name,iou\n", False),
        (b" " * 5000 + b"my data", False),
        (b"{}" + b" " * 5000 + b"my data", False),
    ],
)
def test_what_counts_as_a_file_maskrefine_wrote(data, ours):
    assert _written_by_maskrefine(data) is ours


def test_every_report_maskrefine_writes_is_recognised_as_its_own(small, tmp_path):
    runner = CliRunner()
    for name, args in _commands(small, tmp_path, tmp_path / "first").items():
        target = tmp_path / name.replace(" ", "_")
        args = [str(target) if a == str(tmp_path / "first") else a for a in args]
        assert runner.invoke(main, [*args, *(["--overwrite"] if "apply" in name else [])]).exit_code == 0
        assert _written_by_maskrefine(target.read_bytes()), name


def test_skip_existing_asks_to_remove_the_file_not_for_overwrite(small, tmp_path):
    target = tmp_path / "run.json"
    target.write_bytes(FOREIGN["notes"])
    result = CliRunner().invoke(main, _apply(small, tmp_path, "--report", str(target), "--skip-existing"))
    assert (
        result.exit_code == 2
        and "remove it (--skip-existing cannot be combined with --overwrite)" in result.output
    )
    assert target.read_bytes() == FOREIGN["notes"]


def test_a_file_that_appears_during_the_run_is_not_replaced(small, tmp_path):
    # was: checked at the start only, and the report written over it at the end
    from maskrefine import apply_folder, score_folder
    from maskrefine.errors import OutputError, ReportNotWrittenError

    report, scores, table = tmp_path / "run.json", tmp_path / "scores.json", tmp_path / "rows.csv"

    def appearing(*paths):
        def progress(*_):
            for path in paths:
                if not path.exists():
                    path.write_bytes(FOREIGN["notes"])

        return progress

    out = tmp_path / "out"

    def refine(**options):
        return apply_folder(
            small["masks"], small["images"], out, method="identity", report_path=report, **options
        )

    with pytest.raises(ReportNotWrittenError, match="appeared during the run"):
        refine(progress=appearing(report))
    assert report.read_bytes() == FOREIGN["notes"] and len(list(out.iterdir())) == 2  # the outputs are done
    with pytest.raises(
        OutputError, match=r"rows\.csv: exists and is not a report .* appeared during the run"
    ):
        score_folder(
            small["masks"], small["gt"], csv_path=table, json_path=scores, progress=appearing(scores, table)
        )
    assert scores.read_bytes() == table.read_bytes() == FOREIGN["notes"]
    # with overwrite, or when the file at the path is a report of ours, it is replaced
    refine(overwrite=True, progress=appearing(report))
    assert _written_by_maskrefine(report.read_bytes())
    refine(skip_existing=True)
    assert _written_by_maskrefine(report.read_bytes())


@pytest.fixture(scope="module")
def ten(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ten")
    for kind in ("masks", "images", "gt"):
        shutil.copytree(EXAMPLES / kind, root / kind)
    return {kind: root / kind for kind in ("masks", "images", "gt")}


@pytest.mark.parametrize("command", COMMANDS)
def test_a_report_over_the_read_limit_is_still_recognised(ten, tmp_path, command, monkeypatch):
    # a report larger than the read limit (an apply report of ~100,000 files passes 64 MiB) is recognised by
    # the top-level keys at its start; it used to be refused as "not a report maskrefine wrote", so a
    # rerun of the same command (--skip-existing: no --overwrite) stopped with exit 2
    from maskrefine.pipeline import guards

    target = tmp_path / "report.out"
    args = _commands(ten, tmp_path, target)[command]
    assert CliRunner().invoke(main, args).exit_code == 0
    monkeypatch.setattr(guards, "REPORT_READ_LIMIT", 16)
    if command == "apply --report":  # the report that grows with the files: more than the first read
        assert target.stat().st_size > 4096
    resume = ["--skip-existing"] if command.startswith("apply") else []
    result = CliRunner().invoke(main, [*args, *resume])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({"ok": True, "counts": {}, "files": []}),  # our keys, another layout (one line)
        json.dumps({"results": [1] * 50, "ok": True}, indent=2),  # our layout, not our keys
        json.dumps([{"ok": True, "counts": {}, "files": []}], indent=2),  # a list
        "my notes\n" * 20,
    ],
    ids=["one_line", "other_keys", "list", "text"],
)
def test_a_large_file_that_is_not_our_report_is_refused(small, tmp_path, text, monkeypatch):
    from maskrefine.pipeline import guards

    monkeypatch.setattr(guards, "REPORT_READ_LIMIT", 16)
    target = tmp_path / "results.json"
    target.write_text(text)
    result = CliRunner().invoke(main, _apply(small, tmp_path, "--report", str(target)))
    assert result.exit_code == 2 and NOT_OURS in result.output
    assert target.read_text() == text
