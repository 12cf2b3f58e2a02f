"""Search space, ranking and the score cache shared by bench/quality.py and tune."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from maskrefine.quality.grid import Candidate, Item, Scores, naive_candidate
from maskrefine.quality.search import (
    ScoreCache,
    coarse_grid,
    neighbours,
    rank,
    scoring_key,
    unique_by_label,
)


def test_coarse_grid_contents():
    binary = coarse_grid(True, methods=("guided",))
    soft = coarse_grid(False, methods=("guided",))
    assert len(binary) == 2 + 2 * 2 * 5 * 5 and len(soft) == 1 + 2 * 5 * 5
    radii = {c.param_dict["radius"] for c in soft if c.method == "guided"}
    assert {4, 8, 16, 32} <= radii  # p/2, p, 2p for p = 8 and 16
    assert {c.upsample for c in soft} == {"bilinear"}
    with pytest.raises(ValueError, match="cannot be searched"):
        coarse_grid(True, methods=("auto",))


def test_neighbours_are_unique_and_exclude_the_centre():
    centre = Candidate.make("guided", "mean", radius=8, eps=1e-3)
    around = neighbours(centre, methods=("guided", "fast_guided"))
    labels = [c.label for c in around]
    assert len(labels) == len(set(labels)) and centre.label not in labels
    assert {c.param_dict["radius"] for c in around if c.method == "guided"} == {6, 8, 11}
    assert any(c.guide == "luma" for c in around) and any(c.method == "fast_guided" for c in around)
    assert neighbours(Candidate.make("identity")) == []


def test_unique_by_label_keeps_the_first():
    a = Candidate.make("guided", radius=4, eps=0.01 * 10**0.5)
    b = Candidate.make("guided", radius=4, eps=0.1 / 10**0.5)
    assert a.label == b.label
    assert unique_by_label([a, b]) == [a]


def _scores(iou):
    iou = np.asarray(iou, float)
    return Scores(iou, iou, np.zeros((iou.size, 3), np.float32))


def test_rank_orders_by_mean_change_and_drops_candidates_that_hurt_a_group():
    naive = naive_candidate(False)
    good = Candidate.make("guided", radius=2)
    hurts = Candidate.make("guided", radius=4)
    groups = {
        "a": {naive: _scores([0.5, 0.5]), good: _scores([0.6, 0.6]), hurts: _scores([0.9, 0.9])},
        "b": {naive: _scores([0.5, 0.5]), good: _scores([0.55, 0.55]), hurts: _scores([0.4, 0.4])},
    }
    ranked = rank(groups, [naive, good, hurts], naive)
    assert [r.candidate for r in ranked] == [good, naive]
    assert ranked[0].mean_change == pytest.approx(0.075) and ranked[0].worst_change == pytest.approx(0.05)
    assert [r.candidate for r in rank(groups, [naive, good, hurts], naive, worse_limit=None)][0] == hurts


def test_score_cache_round_trip_and_keys(tmp_path):
    (tmp_path / "m.png").write_bytes(b"x")
    items = [Item("k", tmp_path / "m.png", tmp_path / "m.png", tmp_path / "m.png")]
    fingerprint = ScoreCache.fingerprint(items)
    cache = ScoreCache(tmp_path / "cache")
    candidate = Candidate.make("guided")
    assert cache.get(candidate, fingerprint) is None
    curves = np.zeros((1, cache.thresholds), np.float32)  # one F-beta per threshold of the preset
    cache.put(candidate, fingerprint, Scores(np.array([0.5]), np.array([0.25]), curves))
    np.testing.assert_array_equal(cache.get(candidate, fingerprint).iou, [0.25])
    assert ScoreCache(tmp_path / "cache", "move").get(candidate, fingerprint) is None  # other scoring rules
    assert cache.get(Candidate.make("guided", radius=3), fingerprint) is None
    (tmp_path / "m.png").write_bytes(b"changed")
    assert cache.get(candidate, ScoreCache.fingerprint(items)) is None  # the input file changed
    assert scoring_key("tokencut") != scoring_key("move")


def test_the_cache_key_does_not_depend_on_how_the_folder_is_named(tmp_path, monkeypatch):
    # audit 2026-12-03: the key held the paths as typed, so rerunning `tune` with absolute paths, from
    # another folder, or after moving the data recomputed every setting
    data = tmp_path / "data"
    data.mkdir()
    for name in ("i.png", "m.png", "g.png"):
        (data / name).write_bytes(name.encode())
    absolute = [Item("k", data / "i.png", data / "m.png", data / "g.png")]
    monkeypatch.chdir(tmp_path)
    relative = [Item("k", Path("data/i.png"), Path("data/m.png"), Path("data/g.png"))]
    moved = tmp_path / "elsewhere"
    data.rename(moved)
    relocated = [Item("k", moved / "i.png", moved / "m.png", moved / "g.png")]
    moved.rename(data)
    key = ScoreCache.fingerprint(absolute)
    assert ScoreCache.fingerprint(relative) == key
    moved_back = tmp_path / "elsewhere"
    data.rename(moved_back)
    assert ScoreCache.fingerprint(relocated) == key
    (moved_back / "m.png").write_bytes(b"other")
    assert ScoreCache.fingerprint(relocated) != key  # the content still counts
