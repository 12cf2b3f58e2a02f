"""Paired statistics: bootstrap against hand-computed cases, wins/ties/losses, comparison records."""

from __future__ import annotations

import math

import numpy as np
import pytest

from maskrefine.quality.stats import (
    bootstrap_counts,
    compare_paired,
    paired_bootstrap,
    win_tie_loss,
)


def test_bootstrap_counts_rows_sum_to_n_and_are_seeded():
    counts = bootstrap_counts(7, 50, seed=3)
    assert counts.shape == (50, 7)
    assert (counts.sum(axis=1) == 7).all()
    np.testing.assert_array_equal(counts, bootstrap_counts(7, 50, seed=3))
    assert not np.array_equal(counts, bootstrap_counts(7, 50, seed=4))


def test_constant_change_gives_a_degenerate_interval():
    assert paired_bootstrap([0.9, 0.8, 0.7], [0.6, 0.5, 0.4]) == pytest.approx((0.3, 0.3, 0.3))


def test_bootstrap_matches_hand_computed_case():
    # Changes d = [0, 0, 0, 4]. A resample's mean change is K, the number of times image 4 is drawn:
    # K ~ Binomial(4, 1/4): P(0)=.316, P(1)=.422, P(2)=.211, P(3)=.047, P(4)=.004.
    # P(K <= 2) = .949 < .975 <= P(K <= 3) = .996, so the 97.5 % percentile is 3; P(K = 0) > .025, so the
    # 2.5 % percentile is 0. The whole-sample change is 1.
    change, low, high = paired_bootstrap([0, 0, 0, 4.0], [0, 0, 0, 0.0], n_resamples=20000, seed=1)
    assert (change, low, high) == (1.0, 0.0, 3.0)
    counts = bootstrap_counts(4, 20000, seed=1)
    k = counts[:, 3]
    expected = [0.316, 0.422, 0.211, 0.047, 0.004]
    observed = [np.mean(k == i) for i in range(5)]
    np.testing.assert_allclose(observed, expected, atol=0.01)


def test_bootstrap_is_deterministic_and_depends_on_seed():
    rng = np.random.default_rng(0)
    a, b = rng.random(40), rng.random(40)
    assert paired_bootstrap(a, b, seed=5) == paired_bootstrap(a, b, seed=5)
    assert paired_bootstrap(a, b, seed=5) != paired_bootstrap(a, b, seed=6)


def test_interval_narrower_for_paired_than_unpaired_noise():
    rng = np.random.default_rng(1)
    base = rng.random(200)
    cand = base + 0.01 + rng.normal(0, 0.001, 200)
    change, low, high = paired_bootstrap(cand, base)
    assert 0.0 < low < change < high
    assert high - low < 0.001


def test_max_of_mean_statistic_uses_the_mean_curve():
    # two images, two thresholds: mean curves are [.5, .5] and [.75, .25] -> max .5 vs .75
    cand = np.array([[1.0, 0.0], [0.5, 0.5]])
    base = np.array([[0.5, 0.5], [0.5, 0.5]])
    change, low, high = paired_bootstrap(cand, base, statistic="max_of_mean", n_resamples=4000)
    assert change == pytest.approx(0.25)
    # resamples: both images -> +.25; image 1 twice -> +.5; image 2 twice -> 0
    assert low == pytest.approx(0.0) and high == pytest.approx(0.5)


def test_nan_pairs_are_dropped():
    change, low, high = paired_bootstrap([1.0, math.nan, 0.5], [0.5, 0.2, 0.5])
    assert change == pytest.approx(0.25)
    assert all(math.isnan(v) for v in paired_bootstrap([math.nan], [1.0]))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"statistic": "median"}, ValueError, "statistic"),
        ({"confidence": 1.0}, ValueError, "confidence"),
        ({"confidence": "0.9"}, TypeError, "confidence"),
        ({"n_resamples": 0}, ValueError, "n_resamples"),
        ({"seed": -1}, ValueError, "seed"),
        ({"n_resamples": True}, TypeError, "n_resamples"),
        ({"seed": 1.0}, TypeError, "seed"),
    ],
)
def test_bad_settings_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        paired_bootstrap([1.0, 2.0], [1.0, 2.0], **kwargs)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="same shape"):
        paired_bootstrap([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match=r"\(n, K\)"):
        paired_bootstrap([1.0, 2.0], [1.0, 2.0], statistic="max_of_mean")


def test_win_tie_loss_counts_with_tolerance_and_direction():
    cand = [0.5, 0.5, 0.5, 0.5, math.nan]
    base = [0.4, 0.4995, 0.6, 0.5, 0.1]
    assert win_tie_loss(cand, base, tie_tol=1e-3) == (1, 2, 1)
    assert win_tie_loss(cand, base, tie_tol=1e-3, higher_is_better=False) == (1, 2, 1)
    assert win_tie_loss([0.5], [0.4], higher_is_better=False) == (0, 0, 1)
    with pytest.raises(ValueError, match="tie_tol"):
        win_tie_loss([1.0], [1.0], tie_tol=-1)


def test_compare_paired_record_and_verdict():
    rec = compare_paired([0.9, 0.8, 0.7, 0.9], [0.8, 0.7, 0.6, 0.8], metric="iou")
    assert rec.n == 4 and rec.wins == 4 and rec.losses == 0
    assert rec.baseline == pytest.approx(0.725) and rec.candidate == pytest.approx(0.825)
    assert rec.verdict == "better"
    worse = compare_paired([0.1, 0.2], [0.2, 0.3], metric="iou")
    assert worse.verdict == "worse"
    mae = compare_paired([0.1, 0.2], [0.2, 0.3], metric="mae", higher_is_better=False)
    assert mae.verdict == "better" and mae.wins == 2
    d = rec.to_dict()
    assert d["verdict"] == "better" and d["metric"] == "iou"


@pytest.mark.parametrize("statistic", ["mean", "max_of_mean"])
def test_bootstrap_in_blocks_gives_the_same_interval(statistic, monkeypatch):
    # the draw counts are made in blocks (a full resamples x images table needed 2 x 8 B x 2000 x n: 30 GB
    # at a million images); the blocks are the rows of one draw, so nothing changes
    from maskrefine.quality import stats

    rng = np.random.default_rng(0)
    shape = (97,) if statistic == "mean" else (97, 5)
    cand, base = rng.random(shape), rng.random(shape)
    whole = paired_bootstrap(cand, base, statistic=statistic, n_resamples=300, seed=2)
    counts = bootstrap_counts(97, 300, seed=2)
    if statistic == "mean":
        resampled = (counts @ (cand - base)) / 97
    else:
        resampled = ((counts @ cand) / 97).max(axis=1) - ((counts @ base) / 97).max(axis=1)
    np.testing.assert_allclose(whole[1:], np.quantile(resampled, [0.025, 0.975]), rtol=0, atol=1e-15)
    monkeypatch.setattr(stats, "_CHUNK_CELLS", 97 * 7)  # blocks of 7 resamples, the last one of 6
    blocks = paired_bootstrap(cand, base, statistic=statistic, n_resamples=300, seed=2)
    # the same draws; a block's matrix product may round differently in the last bit
    np.testing.assert_allclose(blocks, whole, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(bootstrap_counts(97, 300, seed=2), counts)


def test_few_images_are_flagged_in_a_paired_report():
    from maskrefine.quality.compare import PairedScoreReport
    from maskrefine.quality.stats import MIN_IMAGES

    assert PairedScoreReport(rows=[{}] * (MIN_IMAGES - 1)).warnings[0].startswith("only 19 images")
    assert PairedScoreReport(rows=[{}] * MIN_IMAGES).warnings == []
    assert PairedScoreReport().warnings == []  # nothing compared: reported as such, not as a small sample


@pytest.mark.parametrize("function", [paired_bootstrap, win_tie_loss])
def test_scores_must_be_numbers(function):
    # text used to be parsed ("0.5" -> 0.5) and None made NaN, so a column read as strings passed unseen
    with pytest.raises(TypeError, match=r"`candidate` must hold numbers.*<U3"):
        function(["0.5", "0.7"], [0.5, 0.5])
    with pytest.raises(TypeError, match=r"`baseline` must hold numbers.*object"):
        function([0.5, 0.7], [0.5, None])


@pytest.mark.parametrize("function", [paired_bootstrap, win_tie_loss, compare_paired])
def test_an_infinite_score_is_refused_not_dropped(function):
    # inf was dropped like a NaN (a missing score); no metric is infinite, so it is a bug upstream
    kwargs = {"metric": "IoU"} if function is compare_paired else {}
    with pytest.raises(ValueError, match=r"`baseline` has an infinite value at index \(1,\)"):
        function([0.5, 0.7, 0.2], [0.5, -math.inf, 0.1], **kwargs)


def test_bool_hits_are_scores():
    # per-image CorLoc hits: the change of the hit rate
    change, low, high = paired_bootstrap([True, True, False, True], [False, True, False, False])
    assert change == pytest.approx(0.5)
    assert win_tie_loss([True, False], [False, False]) == (1, 1, 0)


# --- resample counts: each tail of the percentile interval must hold at least one resample -------------

_PAIR = ([0.9, 0.8, 0.7, 0.6], [0.5, 0.7, 0.6, 0.2])


def _call(function, n_resamples, **kwargs):
    if function is compare_paired:
        kwargs["metric"] = "iou"
    return function(*_PAIR, n_resamples=n_resamples, **kwargs)


@pytest.mark.parametrize("function", [paired_bootstrap, compare_paired])
@pytest.mark.parametrize("n_resamples", [0, 1, 2, 39, -1])
def test_too_few_resamples_for_the_interval_are_refused(function, n_resamples):
    # one resample gave low == high (a zero-width interval) and a "better" verdict on any data
    pattern = (
        r"^`n_resamples` must be at least 40 for confidence 0\.95 \(each tail of the percentile interval "
        r"must hold at least one resample: n_resamples \* \(1 - confidence\) / 2 >= 1\); got "
        rf"{n_resamples}$"
    )
    with pytest.raises(ValueError, match=pattern):
        _call(function, n_resamples)


@pytest.mark.parametrize("function", [paired_bootstrap, compare_paired])
@pytest.mark.parametrize("n_resamples", [40, np.int64(40), 41])
def test_the_smallest_count_for_the_interval_is_accepted(function, n_resamples):
    result = _call(function, n_resamples)
    change, low, high = result if function is paired_bootstrap else (result.change, result.low, result.high)
    assert low <= change <= high and low < high


@pytest.mark.parametrize("function", [paired_bootstrap, compare_paired])
@pytest.mark.parametrize(
    ("n_resamples", "shown"),
    [
        (40.0, r"40\.0 \(float\)"),
        (True, r"True \(bool\)"),
        (False, r"False \(bool\)"),
        ("40", r"'40' \(str\)"),
        (np.float64(40), r".*40.* \(float64\)"),
        (None, r"None \(NoneType\)"),
    ],
)
def test_a_count_that_is_not_an_integer_is_refused(function, n_resamples, shown):
    with pytest.raises(
        TypeError, match=rf"^`n_resamples` must be an integer in \[40, 100000\]; got {shown}$"
    ):
        _call(function, n_resamples)


@pytest.mark.parametrize("function", [paired_bootstrap, compare_paired])
@pytest.mark.parametrize("n_resamples", [100_001, 10**15, 10**400], ids=["100001", "1e15", "1e400"])
def test_a_count_above_the_cap_is_refused(function, n_resamples):
    with pytest.raises(ValueError, match=r"^`n_resamples` must be an integer in \[40, 100000\]; got "):
        _call(function, n_resamples)


@pytest.mark.parametrize("function", [paired_bootstrap, compare_paired])
@pytest.mark.parametrize(("confidence", "minimum"), [(0.9, 20), (0.99, 200), (0.5, 4), (0.8, 10)])
def test_the_minimum_follows_the_confidence(function, confidence, minimum):
    # 0.9 is stored as 0.900000000000000022: computed in binary, 20 resamples missed the bound by 2e-16
    _call(function, minimum, confidence=confidence)
    with pytest.raises(
        ValueError, match=rf"at least {minimum} for confidence {confidence}\b.*; got {minimum - 1}$"
    ):
        _call(function, minimum - 1, confidence=confidence)


def test_min_resamples_values():
    from maskrefine.quality.stats import DEFAULT_CONFIDENCE, MAX_RESAMPLES, min_resamples

    assert min_resamples(DEFAULT_CONFIDENCE) == 40
    table = {0.5: 4, 0.8: 10, 0.9: 20, 0.95: 40, 0.975: 80, 0.99: 200, 0.999: 2000, 0.9999: 20_000}
    assert {c: min_resamples(c) for c in table} == table
    assert min_resamples(0.99998) == MAX_RESAMPLES
    assert min_resamples(np.float32(0.95)) == 40  # 0.949999988: 39.99999 resamples, so 40
    for confidence, minimum in table.items():  # the documented bound, and the count below misses it
        assert minimum * (1 - confidence) / 2 >= 1 - 1e-12
        assert (minimum - 1) * (1 - confidence) / 2 < 1


def test_a_confidence_no_allowed_count_can_reach_is_refused():
    message = (
        r"^`confidence` 0\.99999 needs `n_resamples` >= 200000 \(each tail .*\), more than the 100000 "
        r"allowed; use a `confidence` of at most 0\.99998$"
    )
    with pytest.raises(ValueError, match=message):
        paired_bootstrap(*_PAIR, confidence=0.99999, n_resamples=100_000)
    with pytest.raises(ValueError, match=message):
        compare_paired(*_PAIR, metric="iou", confidence=0.99999)
    change, low, high = paired_bootstrap([1.0, 0.0], [0.5, 0.5], confidence=0.99998, n_resamples=100_000)
    assert (low, high) == (-0.5, 0.5)


def test_bootstrap_counts_keeps_its_lower_bound_of_one():
    # a table of draws is not an interval: one row is a valid table (paired_bootstrap holds the minimum)
    assert bootstrap_counts(5, 1, seed=0).shape == (1, 5)
    with pytest.raises(ValueError, match=r"`n_resamples` must be an integer in \[1, 100000\]; got 0$"):
        bootstrap_counts(5, 0)


def test_compare_to_refuses_too_few_resamples():
    from maskrefine.metrics import get_preset
    from maskrefine.quality.grid import Scores, compare_to

    k = get_preset("tokencut").thresholds.size
    rng = np.random.default_rng(0)
    a, b = (Scores(rng.random(6), rng.random(6), rng.random((6, k))) for _ in range(2))
    assert compare_to(a, b, n_resamples=40)["iou"].n_resamples == 40
    with pytest.raises(
        ValueError, match=r"`n_resamples` must be at least 40 for confidence 0\.95 .*; got 39$"
    ):
        compare_to(a, b, n_resamples=39)
    assert compare_to(a, b, n_resamples=20, confidence=0.9)["acc"].confidence == 0.9
    with pytest.raises(ValueError, match=r"at least 20 for confidence 0\.9 .*; got 19$"):
        compare_to(a, b, n_resamples=19, confidence=0.9)


# --- compare_paired checks its arguments once, before any resampling ---------------------------------


def test_compare_paired_converts_and_checks_the_scores_once(monkeypatch):
    from maskrefine.quality import stats

    seen = []
    original = stats._as_scores

    def counting(values, name):
        seen.append(name)
        return original(values, name)

    monkeypatch.setattr(stats, "_as_scores", counting)
    compare_paired(*_PAIR, metric="iou")
    assert seen == ["candidate", "baseline"]  # were 6: paired_bootstrap, compare_paired, win_tie_loss
    seen.clear()
    paired_bootstrap(*_PAIR)
    assert seen == ["candidate", "baseline"]


def test_compare_paired_refuses_a_bad_tie_tol_before_resampling(monkeypatch):
    from maskrefine.quality import stats

    def no_draws(*args):
        raise AssertionError("resampled before every argument was checked")

    monkeypatch.setattr(stats, "_count_chunks", no_draws)
    for bad in (-1, "0.1", math.nan):
        with pytest.raises(ValueError, match="tie_tol"):
            compare_paired(*_PAIR, metric="iou", tie_tol=bad)


@pytest.mark.parametrize("statistic", ["mean", "max_of_mean"])
def test_compare_paired_matches_its_parts_exactly(statistic):
    rng = np.random.default_rng(3)
    shape = (60,) if statistic == "mean" else (60, 4)
    cand, base = rng.random(shape), rng.random(shape)
    cand[5], base[9] = math.nan, math.nan  # two pairs dropped
    rec = compare_paired(cand, base, metric="m", statistic=statistic, n_resamples=500, seed=7, tie_tol=0.05)
    assert (rec.change, rec.low, rec.high) == paired_bootstrap(
        cand, base, statistic=statistic, n_resamples=500, seed=7
    )
    keep = np.isfinite(cand).all(axis=tuple(range(1, cand.ndim))) & np.isfinite(base).all(
        axis=tuple(range(1, base.ndim))
    )
    per_a = cand[keep] if statistic == "mean" else cand[keep].max(axis=1)
    per_b = base[keep] if statistic == "mean" else base[keep].max(axis=1)
    assert (rec.wins, rec.ties, rec.losses) == win_tie_loss(per_a, per_b, tie_tol=0.05)
    assert rec.n == 58 and (rec.n_resamples, rec.seed, rec.confidence) == (500, 7, 0.95)


@pytest.mark.parametrize("flag", ["no", "false", 0, None, np.array([True])])
def test_higher_is_better_must_be_a_bool(flag: object) -> None:
    # "no" read as True: an error metric that dropped on every image came out "worse", 0 wins, 3 losses
    mae_before, mae_after = [0.3, 0.4, 0.5], [0.1, 0.2, 0.3]
    with pytest.raises(TypeError, match="`higher_is_better` must be True or False"):
        compare_paired(mae_after, mae_before, metric="mae", higher_is_better=flag)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`higher_is_better` must be True or False"):
        win_tie_loss(mae_after, mae_before, higher_is_better=flag)  # type: ignore[arg-type]
    assert win_tie_loss(mae_after, mae_before, higher_is_better=np.bool_(False)) == (3, 0, 0)


def test_statistic_given_as_an_array_or_an_empty_curve_is_named() -> None:
    curves = np.zeros((4, 3))
    with pytest.raises(ValueError, match="`statistic` must be one of"):
        paired_bootstrap(curves, curves, statistic=np.array(["mean", "max_of_mean"]))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`candidate` must have shape \(n, K\) with K >= 1"):
        paired_bootstrap(np.zeros((4, 0)), np.zeros((4, 0)), statistic="max_of_mean")


def test_scores_too_large_to_average_are_refused() -> None:
    # 1e308 + 1e308 overflows: the change came out inf and the interval NaN ("no clear change")
    big = [1e308, 1e308, 1e308]
    with pytest.raises(
        ValueError, match=r"`candidate` has a value of magnitude above 1e\+300 at index \(0,\)"
    ):
        paired_bootstrap(big, [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="`baseline` has a value of magnitude above"):
        win_tie_loss([0.0, 0.0, 0.0], [-1e301, 0.0, 0.0])


def test_count_tables_are_bounded():
    # 1e10 images asked NumPy for 74.5 GiB (MemoryError); 1e30 gave an unnamed "dimension" error
    for n in (10**10, 10**30):
        with pytest.raises(ValueError, match=r"`n` x `n_resamples` = .* counts is more than"):
            bootstrap_counts(n, 1)
    assert bootstrap_counts(1 << 20, 2).shape == (2, 1 << 20)


def test_ragged_scores_name_the_argument():
    with pytest.raises(ValueError, match=r"`candidate` must be one \(n,\) or \(n, K\) array.*ragged"):
        paired_bootstrap([[1, 2], [3]], [[1, 2], [3, 4]], statistic="max_of_mean")
    with pytest.raises(ValueError, match=r"`baseline` must be one"):
        compare_paired([0.5, 0.5], [[0.5], 0.5], metric="iou")


def test_metric_must_be_a_name():
    # None was stored as the metric "None"
    with pytest.raises(TypeError, match=r"`metric` must be a str .*got None"):
        compare_paired([0.5] * 40, [0.5] * 40, metric=None, n_resamples=40)


def test_a_change_of_exactly_the_tolerance_is_a_tie():
    # 0.501 - 0.5 is 0.0010000000000000009 in binary floating point: it was counted a win, though the
    # README promises a tie for |change| <= 0.001
    assert win_tie_loss([0.501], [0.5]) == (0, 1, 0)
    assert win_tie_loss([0.3], [0.301]) == (0, 1, 0)
    assert win_tie_loss([0.126], [0.125]) == (0, 1, 0)
    assert win_tie_loss([0.5011], [0.5]) == (1, 0, 0)  # a real difference beyond the tolerance
    assert win_tie_loss([0.5], [0.5], tie_tol=0) == (0, 1, 0)
    assert win_tie_loss([0.5 + 1e-9], [0.5], tie_tol=0) == (1, 0, 0)


def test_equal_differences_give_the_difference_and_a_zero_width_interval_around_it():
    # was: (0.5999999999999999, 0.6, 0.6): the change 1e-16 outside its own interval (float rounding of
    # mean(a) - mean(b) against the resampled mean(a - b)); 143 of 300 such cases
    rng = np.random.default_rng(3)
    for _ in range(300):
        n, value, difference = int(rng.integers(1, 40)), rng.random(), rng.random() - 0.5
        candidate, baseline = np.full(n, value), np.full(n, value - difference)
        change, low, high = paired_bootstrap(candidate, baseline)
        assert low == change == high == float(candidate[0] - baseline[0])
    assert paired_bootstrap(np.full(12, 0.7), np.full(12, 0.1)) == (0.6, 0.6, 0.6)
