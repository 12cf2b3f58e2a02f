"""``report merge`` / ``merge_run_reports`` on reports holding huge numbers: a named error, never a
traceback nor an ``inf`` written into the merged JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from maskrefine.cli import main
from maskrefine.errors import ConfigError, InputError
from maskrefine.pipeline import RunReport, merge_run_reports, read_run_report


def _report(shard: str, **top: object) -> dict[str, object]:
    files = [{"stem": f"s{shard[0]}", "status": "written", "mask": "m", "image": "i", "output": "o"}]
    return {"files": files, "config": {"method": "guided", "shard": shard}, "counts": {}, **top}


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "text, problem",
    [
        # two shards each started at 1e308: their end (start + elapsed) overflows to inf
        (json.dumps(_report("1/2", elapsed_s=1e308, started_s=1e308)),
         "'elapsed_s' must be a finite number in [0, 1e+12]"),
        (json.dumps(_report("1/2", started_s=1.7e308)), "'started_s' must be a finite number in [0, 1e+12]"),
        # a 400-digit integer: math.isfinite raised OverflowError
        ('{"files": [{"stem": "a", "status": "written", "mask": "m", "image": "i", "output": "o", '
         '"seconds": 1' + "0" * 400 + '}], "config": {"shard": "1/2"}, "counts": {}}',
         "'seconds' must be a finite number"),
        # more digits than Python converts: json.loads raised a bare ValueError
        ('{"files": [], "config": {"shard": "1/2"}, "counts": {}, "elapsed_s": 1' + "0" * 5000 + "}",
         "not valid JSON for a report (Exceeds the limit (4300 digits)"),
    ],
    ids=["elapsed_1e308", "started_1.7e308", "seconds_400_digits", "elapsed_5000_digits"],
)  # fmt: skip
def test_huge_times_in_a_report_are_named_not_a_traceback(tmp_path, text, problem) -> None:
    bad = _write(tmp_path / "bad.json", text)
    good = _write(tmp_path / "good.json", json.dumps(_report("2/2", elapsed_s=1.0, started_s=1.0)))
    with pytest.raises(InputError) as caught:
        read_run_report(bad)
    assert "bad.json" in str(caught.value) and problem in str(caught.value)
    out = tmp_path / "merged.json"
    result = CliRunner().invoke(main, ["report", "merge", str(bad), str(good), "--json", str(out)])
    assert isinstance(result.exception, (SystemExit, type(None))), repr(result.exception)  # no traceback
    assert result.exit_code == 1, result.output
    assert f"{bad}: " in result.stderr and problem in result.stderr
    merged = json.loads(out.read_text(encoding="utf-8"), parse_constant=lambda name: pytest.fail(name))
    assert merged["elapsed_s"] == 1.0  # the readable shard only, no inf


def test_huge_time_in_a_run_report_object_is_a_config_error() -> None:
    first = RunReport(config={"method": "guided", "shard": "1/2"}, elapsed=1e308, started=1e308)
    second = RunReport(config={"method": "guided", "shard": "2/2"}, elapsed=1e308, started=1e308)
    with pytest.raises(ConfigError, match=r"report 1: elapsed must be a finite number in \[0, 1e\+12\]"):
        merge_run_reports([first, second])


def test_a_huge_setting_that_differs_is_shown_short(tmp_path) -> None:
    first = _report("1/2")
    second = _report("2/2")
    second["config"]["max_pixels"] = 10**4000  # type: ignore[index]
    paths = [_write(tmp_path / f"{k}.json", json.dumps(r)) for k, r in ((1, first), (2, second))]
    with pytest.raises(InputError, match="max_pixels is 1000") as caught:
        merge_run_reports(paths)
    assert len(str(caught.value)) < 400
