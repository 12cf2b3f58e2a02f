"""Hostile arguments to the folder-job API (tune, compare_folders, predict_folder, run reports).

Each was found by an audit: a raw TypeError/ValueError from inside, a check made only after the work,
or a cache written into an input folder.
"""

from __future__ import annotations

import inspect
import os
import shutil
from pathlib import Path

import pytest

from maskrefine.errors import ConfigError
from maskrefine.pipeline import RunReport, merge_run_reports, read_run_report
from maskrefine.quality.compare import compare_folders
from maskrefine.quality.tune import tune, tune_to_file

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def three(tmp_path: Path) -> Path:
    """masks/, images/, gt/ with three example pairs."""
    for sub in ("m", "i", "g"):
        (tmp_path / sub).mkdir()
    for mask in sorted((EXAMPLES / "masks").iterdir())[:3]:
        shutil.copy(mask, tmp_path / "m")
        shutil.copy(EXAMPLES / "images" / f"{mask.stem}.jpg", tmp_path / "i")
        shutil.copy(EXAMPLES / "gt" / mask.name, tmp_path / "g")
    return tmp_path


def _entries(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


@pytest.mark.parametrize("cache", ["m", "", "m/sub"])
def test_tune_never_writes_its_cache_into_an_input_folder_or_the_cwd(three, monkeypatch, cache) -> None:
    # a cache_dir of the masks folder got 72 .npz files there; "" meant the current folder
    monkeypatch.chdir(three)
    before = {sub: _entries(three / sub) for sub in ("m", "i", "g")}
    cwd = _entries(three)
    with pytest.raises(ConfigError, match="cache_dir|folder"):
        tune(three / "m", three / "i", three / "g", methods=["identity"], jobs=1, cache_dir=cache)
    assert {sub: _entries(three / sub) for sub in ("m", "i", "g")} == before
    assert _entries(three) == cwd


@pytest.mark.parametrize(
    ("kwargs", "shown"),
    [
        ({"seed": -1}, "`seed` must be an integer >= 0"),
        ({"seed": "0"}, "`seed` must be an integer >= 0"),
        ({"preset": "bogus"}, "preset must be one of"),
        ({"preset": ["tokencut"]}, "preset must be one of"),
        ({"preset": None}, "preset must be one of"),
        ({"progress": 1}, "progress must be a callable"),
        ({"methods": 1}, "methods must be a list of method names"),
        ({"methods": "guided"}, "methods must be a list of method names"),
        ({"cache_dir": 1}, "cache_dir must be a path"),
        ({"cache_dir": "a\0b"}, "NUL"),
    ],
)
def test_tune_checks_every_setting_before_any_work(three, kwargs, shown) -> None:
    # seed=-1 was refused after every candidate was scored; preset=None ran the whole search and then
    # failed writing the TOML; progress=1 and methods=1 were raw TypeErrors
    calls = []

    def scoring(*args, **kw):  # pragma: no cover - must not be reached
        calls.append(1)
        raise AssertionError("scored before the settings were checked")

    import maskrefine.quality.tune as tune_module

    original = tune_module.evaluate
    tune_module.evaluate = scoring
    try:
        args = {"methods": ["identity"], "jobs": 1, **kwargs}
        with pytest.raises(ConfigError, match=shown):
            tune(three / "m", three / "i", three / "g", **args)
        out = three / "best.toml"
        accepted = inspect.signature(tune_to_file).parameters
        if all(key in accepted for key in kwargs):  # seed and cache_dir are tune's own
            with pytest.raises(ConfigError, match=shown):
                tune_to_file(three / "m", three / "i", three / "g", out, **args)
    finally:
        tune_module.evaluate = original
    assert not calls
    assert _entries(three) == ["g", "i", "m"]  # no preset file, no cache left


def test_compare_folders_reads_overwrite_as_a_flag_and_checks_progress_and_preset(three) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib not installed: pip install -e '.[plot]'")
    plot = three / "plots"
    compare_folders(three / "g", three / "m", three / "g", n_resamples=40, plot_dir=plot)
    stamp = (plot / "paired_iou.png").stat().st_mtime_ns
    for bad in ("no", 1):  # "no" replaced the plot (truthy)
        with pytest.raises(ConfigError, match="overwrite"):
            compare_folders(
                three / "g", three / "m", three / "g", n_resamples=40, plot_dir=plot, overwrite=bad
            )
    assert (plot / "paired_iou.png").stat().st_mtime_ns == stamp
    with pytest.raises(ConfigError, match="progress must be a callable"):
        compare_folders(three / "g", three / "m", three / "g", n_resamples=40, progress=1)
    with pytest.raises(ConfigError, match="preset must be one of"):
        compare_folders(three / "g", three / "m", three / "g", n_resamples=40, preset=["tokencut"])


def test_compare_folders_creates_the_folders_of_its_csv_and_json(three) -> None:
    # the CSV was published, then the JSON failed: "cannot create a temporary file in .../new/sub"
    csv, json_path = three / "out" / "rows.csv", three / "new" / "sub" / "report.json"
    compare_folders(three / "g", three / "m", three / "g", n_resamples=40, csv_path=csv, json_path=json_path)
    assert csv.is_file() and json_path.is_file()
    with pytest.raises(ConfigError, match="ends with a separator"):
        compare_folders(
            three / "g", three / "m", three / "g", n_resamples=40, json_path=str(three / "x") + "/"
        )


@pytest.mark.parametrize(
    ("kwargs", "shown"),
    [
        ({"config": None}, "`config` must be a Mapping"),
        ({"config": []}, "`config` must be a Mapping"),
        ({"outcomes": [1]}, "`outcomes` must be a list of FileOutcome"),
        ({"outcomes": None}, "`outcomes` must be a list"),
        ({"duplicates": None}, "`duplicates` must be a Mapping"),
        ({"unmatched": None}, "`unmatched` must be a list"),
    ],
)
def test_merging_a_hand_made_report_with_wrong_fields_names_it(kwargs, shown) -> None:
    with pytest.raises(ConfigError, match=f"report 1: {shown}"):
        merge_run_reports([RunReport(**kwargs)])


@pytest.mark.parametrize(
    ("path", "shown"), [(1, "must be a path"), (None, "must be a path"), ("a\0b.json", "NUL"), ("", "empty")]
)
def test_run_report_write_json_refuses_what_is_not_a_file_path(tmp_path, path, shown) -> None:
    with pytest.raises(ConfigError, match=shown):
        RunReport(config={"method": "guided"}).write_json(path)


def test_reading_a_report_path_with_a_nul_is_a_usage_error() -> None:
    # was InputError "a\x00b.json: no such report file", the raw NUL in the message
    with pytest.raises(ConfigError, match="NUL"):
        read_run_report("a\0b.json")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "auto", "guide": "color"}, "guide 'color': method 'auto' picks its own guide"),
        ({"method": "auto", "binary_input": True}, "binary_input=True: method 'auto' picks its own"),
        ({"method": "crf", "guide": "luma"}, "guide 'luma' has no effect with method 'crf'"),
        ({"method": "identity", "guide": "color"}, "guide 'color' has no effect with method 'identity'"),
    ],
)
def test_apply_folder_refuses_settings_its_method_ignores(tmp_path, kwargs, match):
    # audit 2026-12-03: these were ignored silently, where the CLI refuses --guide / --binary-input
    from maskrefine.errors import ConfigError
    from maskrefine.pipeline import apply_folder

    examples = Path(__file__).resolve().parents[1] / "examples"
    with pytest.raises(ConfigError, match=match):
        apply_folder(examples / "masks", examples / "images", tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()
