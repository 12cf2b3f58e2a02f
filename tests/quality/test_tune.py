"""maskrefine tune (library): the constructed case's best refiner wins; deterministic; resumable; warnings."""

from __future__ import annotations

import pytest
from quality_cases import write_cases

from maskrefine.errors import ConfigError
from maskrefine.quality.tune import parse_budget, tune


@pytest.fixture(scope="module")
def six(tmp_path_factory):
    folder = tmp_path_factory.mktemp("six")
    write_cases(folder, 6)
    return folder


def test_tune_picks_the_colour_guide_on_a_colour_only_edge(six, tmp_path):
    report = tune(
        six / "coarse", six / "images", six / "gt", methods=["guided"], cache_dir=tmp_path / "cache"
    )
    winner = report.winner
    assert winner.method == "guided" and winner.guide == "color", winner.label
    best = report.rows[0].change["iou"]
    assert best.low > 0 and best.wins == 6
    # the mean guide cannot see the edge: its best row is clearly below the winner
    best_mean = next(r for r in report.rows if r.candidate.guide == "mean" and r.candidate.method == "guided")
    assert best_mean.change["iou"].change < best.change / 2
    assert report.binary and report.naive.upsample == "nearest"
    assert report.n_images == 6 and not report.truncated
    assert any("only 6 images" in w for w in report.warnings)
    assert [r.change["iou"].change for r in report.rows] == sorted(
        (r.change["iou"].change for r in report.rows), reverse=True
    )


def test_tune_is_deterministic_and_resumes_from_its_cache(six, tmp_path, monkeypatch):
    first = tune(six / "coarse", six / "images", six / "gt", methods=["guided"], cache_dir=tmp_path / "c")
    import maskrefine.quality.tune as tune_module

    calls = []
    real = tune_module.evaluate

    def counting(candidates, items, **kwargs):
        calls.append(len(candidates))
        return real(candidates, items, **kwargs)

    monkeypatch.setattr(tune_module, "evaluate", counting)
    second = tune(six / "coarse", six / "images", six / "gt", methods=["guided"], cache_dir=tmp_path / "c")
    assert calls == [1]  # only the item keys are re-read (naive), every candidate came from the cache
    assert [r.to_dict() for r in second.rows] == [r.to_dict() for r in first.rows]


def test_budget_cuts_the_search_short(six):
    report = tune(six / "coarse", six / "images", six / "gt", methods=["guided"], budget_s=1e-6)
    assert report.truncated and any("budget" in w for w in report.warnings)
    assert 0 < report.scored < 20


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"methods": ["nope"]}, "unknown method"),
        ({"methods": ["auto"]}, "unknown method"),
        ({"budget_s": 0}, "budget"),
        ({"budget_s": "5m"}, "budget"),
    ],
)
def test_bad_settings(six, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        tune(six / "coarse", six / "images", six / "gt", **kwargs)


def test_missing_and_empty_folders(six, tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        tune(tmp_path / "nope", six / "images", six / "gt")
    with pytest.raises(ConfigError, match="empty"):
        tune("", six / "images", six / "gt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no mask"):
        tune(tmp_path / "empty", six / "images", six / "gt")


@pytest.mark.parametrize(("text", "seconds"), [("90", 90.0), ("90s", 90.0), ("5m", 300.0), ("1.5h", 5400.0)])
def test_parse_budget(text, seconds):
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["", None])
def test_parse_budget_none(text):
    assert parse_budget(text) is None


@pytest.mark.parametrize("text", ["abc", "-5m", "0", "infm", "nan", "5x", 5])
def test_parse_budget_refuses(text):
    with pytest.raises(ConfigError, match="budget"):
        parse_budget(text)
