"""Audit of ``maskrefine tune`` and ``maskrefine report merge``: regressions for the problems it found.

* a tune winner with preset-valued parameters (bilateral solver, CRF) could not be written as TOML;
* the score cache was keyed by (path, size, mtime): a file replaced by another of the same size and
  modification time (``cp -p``, ``rsync -a``, coarse mtime clocks) reused stale scores;
* a rerun served from the cache forgot the files that failed (exit 0, nothing named);
* every IoU undefined (all GT empty): the ranking depended on the input order and a preset was written;
* a ``score`` summary given to ``report merge`` was only "not an apply run report".
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from quality_cases import write_cases

from maskrefine.cli import main
from maskrefine.errors import ConfigError, InputError
from maskrefine.io.imageio import png8_codes, read_image, read_mask
from maskrefine.pipeline import merge_run_reports, read_run_report
from maskrefine.quality.grid import Candidate, Item, Scores, naive_candidate
from maskrefine.quality.preset_file import preset_to_toml, read_preset_file, write_preset_file
from maskrefine.quality.search import ScoreCache, rank
from maskrefine.quality.stats import paired_bootstrap
from maskrefine.quality.tune import tune

PRESET_VALUED = [
    Candidate.make("bilateral_solver", "color", "bilinear"),
    Candidate.make("bilateral_solver", "color", "nearest", preset="paper_repo", lam=128.0),
    Candidate.make("crf", "color", "nearest"),
    Candidate.make("crf", "color", "bilinear", preset="deep_spectral", iterations=3),
]


@pytest.mark.parametrize("candidate", PRESET_VALUED, ids=lambda c: c.label)
def test_a_winner_with_preset_valued_parameters_is_written_as_toml(tmp_path, candidate):
    # was: TypeError "params.sigma_chroma: cannot write a value of type NoneType to TOML" after the search
    text = preset_to_toml(candidate, {"images": 3})
    assert "None" not in text and "null" not in text
    path = tmp_path / "best.toml"
    write_preset_file(path, candidate)
    assert read_preset_file(path) == candidate
    params = tomllib.loads(path.read_text())["refine"]["params"]
    assert all(value is not None for value in params.values())


def test_a_bilateral_solver_preset_file_runs_in_apply_as_the_candidate(tmp_path):
    items = write_cases(tmp_path / "data", 2)
    candidate = PRESET_VALUED[0]
    preset = tmp_path / "best.toml"
    write_preset_file(preset, candidate)
    _assert_apply_gives(tmp_path, preset, candidate, items)


def test_the_tuned_preset_gives_in_apply_what_tune_scored(tmp_path):
    items = write_cases(tmp_path / "data", 3)
    data = tmp_path / "data"
    preset = tmp_path / "best.toml"
    tune_args = ["tune", "--masks", data / "coarse", "--images", data / "images", "--gt", data / "gt"]
    tune_args += ["--out", preset, "--methods", "guided", "--methods", "fast_guided", "-j", "1", "-q"]
    result = CliRunner().invoke(main, [str(a) for a in tune_args])
    assert result.exit_code == 0, result.output
    winner = read_preset_file(preset)
    assert winner.method != "identity"
    _assert_apply_gives(tmp_path, preset, winner, items)


def _assert_apply_gives(tmp_path, preset, candidate, items) -> None:
    """``apply --preset-file preset`` over ``tmp_path/data`` writes what ``candidate`` computes."""
    data, out = tmp_path / "data", tmp_path / "out"
    args = ["apply", "--masks", data / "coarse", "--images", data / "images", "--out", out]
    result = CliRunner().invoke(main, [str(a) for a in [*args, "--preset-file", preset, "-q", "-j", "1"]])
    assert result.exit_code == 0, result.output
    for item in items:
        expected = png8_codes(candidate.run(read_image(item.image), read_mask(item.mask)))
        written = cv2.imread(str(out / f"{item.key}.png"), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(written, expected)


def _same_size_same_mtime(path: Path, content: bytes) -> None:
    """Replace ``path``'s bytes by ``content`` (same length) and give it back its modification time."""
    st = os.stat(path)
    assert len(content) == st.st_size
    path.write_bytes(content)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(path).st_mtime_ns == st.st_mtime_ns


def test_the_cache_key_follows_file_contents_not_mtime(tmp_path):
    mask = tmp_path / "m.npy"
    np.save(mask, np.zeros((4, 4), np.uint8))
    items = [Item("m", mask, mask, mask)]
    before = ScoreCache.fingerprint(items)
    buffer = tmp_path / "other.npy"
    np.save(buffer, np.full((4, 4), 255, np.uint8))
    _same_size_same_mtime(mask, buffer.read_bytes())
    assert ScoreCache.fingerprint(items) != before
    os.utime(mask, ns=(1, 1))  # only the time changed: the same content hits the cache
    after = ScoreCache.fingerprint(items)
    os.utime(mask)
    assert ScoreCache.fingerprint(items) == after


def test_tune_rescores_a_gt_replaced_with_the_same_size_and_mtime(tmp_path):
    write_cases(tmp_path, 3)
    gt = tmp_path / "gt_npy"
    gt.mkdir()
    for path in sorted((tmp_path / "gt").iterdir()):
        np.save(gt / f"{path.stem}.npy", cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 127)
    args = (tmp_path / "coarse", tmp_path / "images", gt)
    first = tune(*args, methods=["identity"], cache_dir=tmp_path / "cache")
    target = gt / "img01.npy"
    buffer = tmp_path / "inverted.npy"
    np.save(buffer, ~np.load(target))  # the GT of another object, same size on disk
    _same_size_same_mtime(target, buffer.read_bytes())
    fresh = tune(*args, methods=["identity"])
    cached = tune(*args, methods=["identity"], cache_dir=tmp_path / "cache")
    assert fresh.rows[0].summary != first.rows[0].summary
    assert [r.to_dict() for r in cached.rows] == [r.to_dict() for r in fresh.rows]


def test_a_rerun_from_the_cache_still_names_the_files_that_failed(tmp_path):
    write_cases(tmp_path, 4)
    (tmp_path / "coarse" / "img01.png").write_bytes(b"garbage")
    args = (tmp_path / "coarse", tmp_path / "images", tmp_path / "gt")
    first = tune(*args, methods=["identity"], cache_dir=tmp_path / "cache")
    again = tune(*args, methods=["identity"], cache_dir=tmp_path / "cache")
    assert [k for k, _ in first.failures] == ["img01"] and first.n_images == 3
    assert again.failures == first.failures and again.n_images == 3


def test_the_cli_exit_code_is_the_same_when_resumed_from_the_cache(tmp_path):
    write_cases(tmp_path, 4)
    (tmp_path / "coarse" / "img01.png").write_bytes(b"garbage")
    base = ["tune", "--masks", tmp_path / "coarse", "--images", tmp_path / "images", "--gt"]
    base += [tmp_path / "gt", "--out", tmp_path / "best.toml", "--methods", "identity", "-j", "1", "-q"]
    codes = []
    for extra in ([], ["--overwrite"]):
        result = CliRunner().invoke(main, [str(a) for a in [*base, *extra]])
        assert "img01.png: cannot decode" in result.stderr and "Traceback" not in result.output
        codes.append(result.exit_code)
    assert codes == [1, 1]


def _scores(iou: list[float]) -> Scores:
    values = np.asarray(iou, np.float64)
    return Scores(np.zeros(values.size), values, np.zeros((values.size, 3), np.float32))


def test_rank_puts_undefined_changes_last_whatever_the_input_order():
    naive = naive_candidate(True)
    good, undefined, zero = (
        Candidate.make("guided", "mean", "nearest", radius=r, eps=1e-3) for r in (2, 3, 4)
    )
    scores = {
        naive: _scores([0.5, 0.5]),
        good: _scores([0.7, 0.6]),
        undefined: _scores([math.nan, math.nan]),
        zero: _scores([0.5, 0.5]),
    }
    orders = [[naive, good, undefined, zero], [undefined, zero, good, naive]]
    for order in orders:
        ranked = rank({"data": scores}, order, naive, worse_limit=None)
        assert [r.candidate for r in ranked] == [good, naive, zero, undefined]


def test_tune_refuses_when_iou_is_undefined_on_every_image(tmp_path):
    write_cases(tmp_path, 3)
    for path in (tmp_path / "gt").iterdir():
        cv2.imwrite(str(path), np.zeros((96, 128), np.uint8))
    for path in (tmp_path / "coarse").iterdir():
        cv2.imwrite(str(path), np.zeros((12, 16), np.uint8))
    with pytest.raises(ConfigError, match="IoU .* undefined on all 3 images"):
        tune(tmp_path / "coarse", tmp_path / "images", tmp_path / "gt", methods=["identity"])
    out = tmp_path / "best.toml"
    args = ["tune", "--masks", tmp_path / "coarse", "--images", tmp_path / "images", "--gt", tmp_path / "gt"]
    result = CliRunner().invoke(main, [str(a) for a in [*args, "--out", out, "--methods", "identity", "-q"]])
    assert result.exit_code == 2 and "undefined" in result.stderr and "Traceback" not in result.output
    assert not out.exists()


def test_tune_interval_is_the_documented_paired_bootstrap(tmp_path):
    # paired, images resampled (multinomial counts from default_rng(seed)), 2000 draws, 2.5/97.5 % quantiles
    write_cases(tmp_path, 7)
    report = tune(tmp_path / "coarse", tmp_path / "images", tmp_path / "gt", methods=["identity"])
    from maskrefine.quality.grid import evaluate
    from maskrefine.quality.tune import _triples

    items = _triples(tmp_path / "coarse", tmp_path / "images", tmp_path / "gt")[0]
    rows = {r.candidate: r for r in report.rows}
    result = evaluate(list(rows), items)
    base = result.scores[report.naive].iou
    for candidate, row in rows.items():
        d = result.scores[candidate].iou - base
        counts = np.random.default_rng(0).multinomial(d.size, np.full(d.size, 1 / d.size), size=2000)
        resampled = np.array([np.repeat(d, c).mean() for c in counts])
        low, high = np.quantile(resampled, [0.025, 0.975])
        c = row.change["iou"]
        assert c.n == 7 and c.n_resamples == 2000 and c.seed == 0
        assert c.change == pytest.approx(d.mean(), abs=1e-12)
        assert (c.low, c.high) == pytest.approx((low, high), abs=1e-12)
        assert paired_bootstrap(result.scores[candidate].iou, base) == pytest.approx((c.change, low, high))
        wins = int(np.sum(d > 1e-3))
        ties = int(np.sum(np.abs(d) <= 1e-3))
        assert (c.wins, c.ties, c.losses) == (wins, ties, 7 - wins - ties)


def test_report_merge_names_a_score_summary_as_such(tmp_path):
    summary = tmp_path / "scores.json"
    summary.write_text(json.dumps({"preset": "tokencut", "count": 5, "iou": 0.5, "ok": True, "config": {}}))
    with pytest.raises(InputError, match=r"scores\.json: a `score` summary.*cannot be merged"):
        read_run_report(summary)
    result = CliRunner().invoke(main, ["report", "merge", str(summary)])
    assert result.exit_code == 1 and "a `score` summary" in result.stderr
    assert "Traceback" not in result.output
    with pytest.raises(InputError, match="a `score` summary"):
        merge_run_reports([summary])


def test_tune_to_file_overwrite_must_be_a_bool(tmp_path) -> None:
    # overwrite="no" was read by truthiness: the existing preset file replaced
    from maskrefine.errors import ConfigError
    from maskrefine.quality.tune import tune_to_file

    for name in ("masks", "images", "gt"):
        (tmp_path / name).mkdir()
    out = tmp_path / "best.toml"
    out.write_text("keep me")
    with pytest.raises(ConfigError, match="`overwrite` must be True or False"):
        tune_to_file(tmp_path / "masks", tmp_path / "images", tmp_path / "gt", out, overwrite="no")
    assert out.read_text() == "keep me"


@pytest.mark.parametrize("method", ["crf", "bilateral_solver"])
def test_a_method_without_a_guide_is_one_candidate_without_a_guide_label(tmp_path, method):
    # audit 2026-12-03: tune labelled these "crf color ..." and wrote guide = "color" into the preset
    # file, which apply then took silently where `--method crf --guide color` is refused
    made = {Candidate.make(method, guide) for guide in ("mean", "luma", "color")}
    assert len(made) == 1
    (candidate,) = made
    assert candidate.guide == "mean" and "color" not in candidate.label and "mean" not in candidate.label
    write_preset_file(tmp_path / "best.toml", candidate)
    assert tomllib.loads((tmp_path / "best.toml").read_text())["refine"]["guide"] == "mean"


@pytest.mark.parametrize("key", ["radius", "sigma-2", "größe", "半径", "a b", ""])
def test_toml_keys_are_bare_only_when_toml_allows_it(key):
    # str.isalnum accepts non-ASCII letters, which TOML bare keys do not: the file could not be read back
    from maskrefine.quality.preset_file import _toml_key

    assert tomllib.loads(f"{_toml_key(key)} = 1") == {key: 1}
