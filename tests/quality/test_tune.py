"""maskrefine tune (library): the constructed case's best refiner wins; deterministic; resumable; warnings."""

from __future__ import annotations

import pytest
from quality_cases import write_cases

from maskrefine.errors import ConfigError, NothingScoredError
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


def _count_evaluations(monkeypatch) -> list[int]:
    """Make tune's ``evaluate`` record how many candidates each call scores; return that list."""
    import maskrefine.quality.tune as tune_module

    calls: list[int] = []
    real = tune_module.evaluate

    def counting(candidates, items, **kwargs):
        calls.append(len(candidates))
        return real(candidates, items, **kwargs)

    monkeypatch.setattr(tune_module, "evaluate", counting)
    return calls


def test_tune_is_deterministic_and_resumes_from_its_cache(six, tmp_path, monkeypatch):
    first = tune(six / "coarse", six / "images", six / "gt", methods=["guided"], cache_dir=tmp_path / "c")
    calls = _count_evaluations(monkeypatch)
    second = tune(six / "coarse", six / "images", six / "gt", methods=["guided"], cache_dir=tmp_path / "c")
    assert calls == []  # every candidate, naive included, came from the cache with the keys it covers
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
    with pytest.raises(NothingScoredError, match="no mask"):
        tune(tmp_path / "empty", six / "images", six / "gt")


@pytest.mark.parametrize(("text", "seconds"), [("90", 90.0), ("90s", 90.0), ("5m", 300.0), ("1.5h", 5400.0)])
def test_parse_budget(text, seconds):
    assert parse_budget(text) == seconds


def test_parse_budget_none():
    assert parse_budget(None) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "budget is empty"), ("\u0661\u0662s", "ASCII digits"), ("\uff19\uff10", "ASCII digits")],
)
def test_parse_budget_refuses_empty_text_and_other_digits(text, message):
    # "" was read as "no budget", Arabic-Indic and full-width digits as numbers
    with pytest.raises(ConfigError, match=message):
        parse_budget(text)


@pytest.mark.parametrize("text", ["abc", "-5m", "0", "infm", "nan", "5x", 5])
def test_parse_budget_refuses(text):
    with pytest.raises(ConfigError, match="budget"):
        parse_budget(text)


def _small_case(folder, stem="zz_small"):
    """A 40x56 image: the guided filter refuses radii whose window (2r+1) exceeds 40 px."""
    import cv2
    import numpy as np

    gt = np.zeros((40, 56), np.uint8)
    gt[10:30, 15:40] = 255
    cv2.imwrite(str(folder / "images" / f"{stem}.png"), np.dstack([gt, gt // 2, 255 - gt]))
    cv2.imwrite(str(folder / "gt" / f"{stem}.png"), gt)
    cv2.imwrite(str(folder / "coarse" / f"{stem}.png"), gt[::8, ::8])


def test_settings_whose_window_exceeds_the_smallest_image_are_left_out(tmp_path):
    # radius 32 on a 40-px image failed, which dropped that image from one batch of settings only, and
    # ranking arrays of 6 and 7 items crashed with a traceback
    write_cases(tmp_path, 6)
    _small_case(tmp_path)
    report = tune(tmp_path / "coarse", tmp_path / "images", tmp_path / "gt", methods=["guided"])
    assert report.n_images == 7 and not report.failures
    assert all(r.candidate.param_dict.get("radius", 0) <= 19 for r in report.rows)  # 2r+1 <= 40
    assert any("larger than the smallest image (40x56, HxW)" in w for w in report.warnings)


def test_an_item_failing_in_one_batch_leaves_every_candidates_scores(tmp_path, monkeypatch):
    import maskrefine.quality.tune as tune_module

    write_cases(tmp_path, 6)
    real = tune_module.evaluate
    calls = []

    def second_batch_fails_img02(candidates, items, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            items = [item for item in items if item.key != "img02"]
            result = real(candidates, items, **kwargs)
            result.failures.append(("img02", "img02: cannot refine (simulated)"))
            return result
        return real(candidates, items, **kwargs)

    monkeypatch.setattr(tune_module, "evaluate", second_batch_fails_img02)
    report = tune(tmp_path / "coarse", tmp_path / "images", tmp_path / "gt", methods=["guided"])
    assert len(calls) > 2 and report.n_images == 5
    assert [key for key, _ in report.failures] == ["img02"]
    assert all(r.change["iou"].wins + r.change["iou"].ties + r.change["iou"].losses == 5 for r in report.rows)


def test_an_exact_tie_with_naive_upsampling_keeps_naive(tmp_path):
    # every setting ties (GT and masks all foreground): a guided setting sorted first by its label
    import cv2
    import numpy as np

    for sub in ("images", "gt", "coarse"):
        (tmp_path / sub).mkdir()
    rng = np.random.default_rng(0)
    for k in range(3):
        cv2.imwrite(str(tmp_path / "images" / f"{k}.png"), rng.integers(0, 256, (64, 80, 3), dtype=np.uint8))
        cv2.imwrite(str(tmp_path / "gt" / f"{k}.png"), np.full((64, 80), 255, np.uint8))
        cv2.imwrite(str(tmp_path / "coarse" / f"{k}.png"), np.full((8, 10), 255, np.uint8))
    report = tune(tmp_path / "coarse", tmp_path / "images", tmp_path / "gt", methods=["guided"])
    assert report.winner == report.naive
    assert any("no setting beat naive upsampling" in w for w in report.warnings)


def test_the_cache_misses_when_maskrefines_code_changed(six, tmp_path, monkeypatch):
    import maskrefine.quality.search as search

    tune(six / "coarse", six / "images", six / "gt", methods=["identity"], cache_dir=tmp_path / "c")
    calls = _count_evaluations(monkeypatch)
    monkeypatch.setattr(search, "code_fingerprint", lambda: "another version")
    tune(six / "coarse", six / "images", six / "gt", methods=["identity"], cache_dir=tmp_path / "c")
    assert sum(calls) >= 2  # every candidate scored again: no score of the other code was reused


def test_the_code_fingerprint_is_of_the_code_the_process_imported(monkeypatch):
    # read once, at first use: source files edited during a long run (git pull) do not relabel the
    # scores that the running (old) code computes, and the files are not re-hashed for every cache key
    import pathlib

    import maskrefine.quality.search as search

    first = search.code_fingerprint()
    monkeypatch.setattr(pathlib.Path, "read_bytes", lambda self: b"edited while running")
    assert search.code_fingerprint() == first


def test_an_image_and_gt_without_a_mask_are_listed_as_unmatched(tmp_path):
    write_cases(tmp_path, 4)
    (tmp_path / "coarse" / "img03.png").unlink()
    report = tune(tmp_path / "coarse", tmp_path / "images", tmp_path / "gt", methods=["identity"])
    assert report.n_images == 3
    assert {p.rsplit("/", 2)[-2:][0] for p in report.unmatched} == {"images", "gt"}
    assert all(p.endswith("img03.png") for p in report.unmatched)


def test_a_tune_that_scored_nothing_leaves_no_cache_behind(tmp_path):
    # "nothing was scored ...; nothing was written", and yet <out>.tune-cache/ held 51 .npz files
    import shutil
    from pathlib import Path

    from maskrefine.errors import NothingScoredError
    from maskrefine.quality.tune import tune_to_file

    examples = Path(__file__).resolve().parents[2] / "examples"
    masks = tmp_path / "masks"
    masks.mkdir()
    for mask in (examples / "masks").iterdir():
        (masks / mask.name).write_bytes(b"")
    out = tmp_path / "best.toml"
    with pytest.raises(NothingScoredError):
        tune_to_file(masks, examples / "images", examples / "gt", out, methods=["identity", "guided"], jobs=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["masks"]
    # a cache that was there before the run (a resumed one) is kept
    (tmp_path / "best.toml.tune-cache").mkdir()
    with pytest.raises(NothingScoredError):
        tune_to_file(masks, examples / "images", examples / "gt", out, methods=["identity"], jobs=1)
    assert (tmp_path / "best.toml.tune-cache").is_dir()
    shutil.rmtree(tmp_path / "best.toml.tune-cache")


def test_tune_with_nothing_matched_exits_1_as_apply_and_score_do(tmp_path):
    # audit 2026-12-03: it was a usage error (exit 2, click's "Error:"), where apply and score exit 1
    from click.testing import CliRunner

    from maskrefine.cli import main

    for name in ("masks", "images", "gt"):
        (tmp_path / name).mkdir()
    args = ["tune", "--masks", "masks", "--images", "images", "--gt", "gt", "--out", "best.toml", "-q"]
    args = [str(tmp_path / a) if a in ("masks", "images", "gt", "best.toml") else a for a in args]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "error: nothing was scored: no mask in" in result.output and "nothing was written" in result.output
    assert not (tmp_path / "best.toml").exists()


def test_a_one_image_tune_says_its_interval_means_nothing(tmp_path):
    # it printed "only 1 images were scored" and a zero-width interval with a verdict
    write_cases(tmp_path, 1)
    report = tune(
        tmp_path / "coarse", tmp_path / "images", tmp_path / "gt", methods=["identity", "guided"], jobs=1
    )
    assert any("only 1 image was scored" in w and "has no width" in w for w in report.warnings), (
        report.warnings
    )
