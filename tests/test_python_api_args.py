"""Python callers bypass click: arguments of the wrong type get a named error, not a deep traceback.

Each case failed before its fix with an error from inside pathlib, dict lookup or a later call
("unhashable type", "'str' object has no attribute 'items'", a string iterated character by character),
or was read by truthiness.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from maskrefine.errors import ConfigError
from maskrefine.pipeline import apply_folder, merge_run_reports

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"method": ["guided"]}, r"method must be one of .*; got \['guided'\]"),
        ({"fmt": ["png8"]}, r"fmt must be one of"),
        ({"guide": None}, r"guide must be one of"),
        ({"method": "guided", "params": "radius=3"}, r"params must be a mapping .*; got str"),
        ({"input_files": ["a.toml"]}, r"input_files must be a mapping"),
        ({"progress": 5}, r"progress must be a callable"),
    ],
)
def test_apply_folder_names_arguments_of_the_wrong_type(tmp_path, kwargs, problem) -> None:
    with pytest.raises(ConfigError, match=problem):
        apply_folder(EXAMPLES / "masks", EXAMPLES / "images", tmp_path / "out", jobs=1, **kwargs)
    assert not (tmp_path / "out").exists()  # refused before anything was written


@pytest.mark.parametrize("where", ["masks", "out"])
def test_bytes_paths_are_named(tmp_path, where) -> None:
    masks = b"masks" if where == "masks" else EXAMPLES / "masks"
    out = str(tmp_path / "out").encode() if where == "out" else tmp_path / "out"
    with pytest.raises(ConfigError, match="must be a str or Path; got bytes"):
        apply_folder(masks, EXAMPLES / "images", out, jobs=1)


def test_merge_run_reports_wants_a_list(tmp_path) -> None:
    report = tmp_path / "r.json"
    report.write_text("{}")
    for value in (str(report), report):  # a path string was iterated character by character
        with pytest.raises(ConfigError, match=r"reports must be a list .* \(for one report: \[report\]\)"):
            merge_run_reports(value)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="`skip_unreadable` must be True or False"):
        merge_run_reports([report], skip_unreadable="no")  # type: ignore[arg-type]


def test_train_arguments_of_the_wrong_type_are_named(tmp_path) -> None:
    pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")
    from maskrefine.train import load_toml, preset, train
    from maskrefine.train.predict import predict_folder

    with pytest.raises(ConfigError, match="preset must be one of"):
        preset(["tiny"])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="config file must be a path; got None"):
        load_toml(None)  # type: ignore[arg-type]
    cfg = preset("tiny", backbone="pixels")
    with pytest.raises(ConfigError, match="images folder: empty path"):
        train(cfg, "", tmp_path / "run")
    with pytest.raises(ConfigError, match="run folder must be a path; got None"):
        train(cfg, EXAMPLES / "images", None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="images folder must be a str or Path; got bytes"):
        train(cfg, b"images", tmp_path / "run")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="--out must be a path; got None"):
        predict_folder(EXAMPLES / "images", tmp_path / "last.pt", None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="progress must be a callable"):
        predict_folder(EXAMPLES / "images", tmp_path / "last.pt", tmp_path / "p", progress=5)  # type: ignore[arg-type]
    assert not (tmp_path / "run").exists() and not (tmp_path / "p").exists()


LONG_NAME = "a" * 5000  # one path component far beyond NAME_MAX (255 bytes)


@pytest.mark.parametrize(
    ("where", "what"),
    [
        ("masks", "masks folder"),
        ("images", "images folder"),
        ("out", "output folder"),
        ("out_deep", "output folder"),
        ("report", "report file"),
        ("nul", "masks folder"),
    ],
)
def test_impossible_paths_are_usage_errors(tmp_path, where, what) -> None:
    """A path too long for the file system (or with a NUL) was an OSError carrying the whole path."""
    paths = {"masks": EXAMPLES / "masks", "images": EXAMPLES / "images", "out": tmp_path / "out"}
    report = None
    if where in ("masks", "images"):
        paths[where] = tmp_path / LONG_NAME
    elif where == "out":
        paths["out"] = tmp_path / ("b" * 300)
    elif where == "out_deep":
        paths["out"] = tmp_path / LONG_NAME / "out"
    elif where == "report":
        report = tmp_path / (LONG_NAME + ".json")
    else:
        paths["masks"] = str(EXAMPLES / "masks") + "\x00"
    with pytest.raises(ConfigError) as info:
        apply_folder(paths["masks"], paths["images"], paths["out"], report_path=report, jobs=1)
    message = str(info.value)
    assert message.startswith(what) and len(message) < 300
    assert "longer than the file system allows" in message or "NUL" in message
    assert not (tmp_path / "out").exists()


def test_impossible_paths_in_score_and_tune(tmp_path) -> None:
    from maskrefine.pipeline import score_folder
    from maskrefine.quality.tune import tune

    with pytest.raises(ConfigError, match="^predictions folder .*longer than the file system allows"):
        score_folder(tmp_path / LONG_NAME, EXAMPLES / "gt")
    with pytest.raises(ConfigError, match="^ground-truth folder .*longer than the file system allows"):
        score_folder(EXAMPLES / "masks", tmp_path / LONG_NAME)
    with pytest.raises(ConfigError, match="longer than the file system allows"):
        tune(EXAMPLES / "masks", EXAMPLES / "images", tmp_path / LONG_NAME)


@pytest.mark.parametrize("writer", ["score_json", "score_csv", "paired_json", "paired_csv"])
def test_report_writers_check_their_path(writer: str, tmp_path: Path) -> None:
    # ScoreReport / PairedScoreReport wrote `out/` as a file named `out`, and a parent folder that could
    # not be made (a file in the way) escaped as a bare OSError
    from maskrefine.errors import ConfigError, OutputError
    from maskrefine.pipeline.reports import ScoreReport
    from maskrefine.quality.compare import PairedScoreReport

    report = ScoreReport() if writer.startswith("score") else PairedScoreReport()
    write = report.write_json if writer.endswith("json") else report.write_csv
    with pytest.raises(ConfigError, match="ends with a separator"):
        write(str(tmp_path / "out") + os.sep)
    assert not (tmp_path / "out").exists()
    (tmp_path / "blocker").write_text("keep")
    with pytest.raises(OutputError, match="cannot create its folder") as info:
        write(tmp_path / "blocker" / "sub" / "r.json")
    assert info.value.path == tmp_path / "blocker" / "sub" / "r.json"
    assert (tmp_path / "blocker").read_text() == "keep"
    written = write(tmp_path / "new" / "deeper" / "r.out")
    assert written == tmp_path / "new" / "deeper" / "r.out" and written.is_file()
