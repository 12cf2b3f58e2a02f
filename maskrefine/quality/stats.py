"""Paired statistics over images: bootstrap intervals, wins/ties/losses, one comparison record.

Every comparison here is *paired*: the candidate and the baseline were scored on the same images, and the
images are the unit that is resampled. The bootstrap draws, for each resample, how often each image is
taken (a multinomial count vector), so a statistic that is a mean over images is a matrix product and a
"mean curve, then max" statistic (the max F-beta of the tokencut preset) is one too. The draws come from
``numpy.random.default_rng(seed)``: the same inputs and seed give the same interval on any machine.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from maskrefine._checks import check_choice, check_flag, check_int_range, real_to_float, short_repr

__all__ = [
    "Statistic",
    "STATISTICS",
    "PairedComparison",
    "bootstrap_counts",
    "paired_bootstrap",
    "win_tie_loss",
    "compare_paired",
]

Statistic = Literal["mean", "max_of_mean"]
#: ``mean``: mean over images of a per-image value (n,). ``max_of_mean``: max over thresholds of the
#: image-averaged curve (n, K), as the tokencut preset's max F-beta.
STATISTICS: tuple[str, ...] = ("mean", "max_of_mean")


#: Most bootstrap resamples: the count table holds ``n_resamples x n`` int64 (2000 by default; 1e9
#: resamples of 50 images asked for 373 GiB).
MAX_RESAMPLES = 100_000
#: Below this many paired images a bootstrap interval is not trusted (``tune`` and ``score --baseline``
#: warn): with 2, 3, 5 and 10 images a change of exactly 0 was called better or worse 52, 28, 19 and 9 %
#: of the time at a nominal 5 % (300 simulated comparisons each); from 20 images on, 5 %.
MIN_IMAGES = 20


def images_were(count: int) -> str:
    """``"1 image was"`` / ``"N images were"``: the subject of the small-sample warnings."""
    return "1 image was" if count == 1 else f"{count} images were"


#: Coverage of the intervals unless asked otherwise (``score --baseline`` always uses it): its
#: :func:`min_resamples` is 40.
DEFAULT_CONFIDENCE = 0.95


def _check_confidence(confidence: object) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real):
        raise TypeError(f"`confidence` must be a number in (0, 1); got {short_repr(confidence)}")
    value = real_to_float(confidence)  # an int or Fraction beyond float range: inf, outside (0, 1) as well
    if not 0 < value < 1:
        raise ValueError(f"`confidence` must be a number in (0, 1); got {short_repr(confidence)}")
    return value


def min_resamples(confidence: float) -> int:
    """Fewest bootstrap resamples whose percentile interval at ``confidence`` means anything.

    Each tail of the interval, a fraction ``(1 - confidence) / 2`` of the resampled changes, must hold at
    least one resample: ``n_resamples * (1 - confidence) / 2 >= 1``. With fewer, an end of the interval is
    read from the most extreme resample (or interpolated towards it) instead of from the spread of the
    resampled changes; one resample gives ``low == high``, an interval of zero width whatever the data.

    Parameters
    ----------
    confidence : float
        Coverage of the interval, in (0, 1) (not checked here).

    Returns
    -------
    int
        ``ceil(2 / (1 - confidence))`` for the confidence as written (its shortest decimal form, as
        ``repr`` shows it), in exact decimal arithmetic: binary rounding would add one where the bound is
        met exactly (0.9 is stored as 0.90000000000000002, whose tails hold 0.99999999999999978 of 20
        resamples). 40 at 0.95, 20 at 0.9, 200 at 0.99, 20000 at 0.9999.

    Examples
    --------
    >>> min_resamples(0.95), min_resamples(0.9), min_resamples(0.99)
    (40, 20, 200)
    """
    return math.ceil(2 / (1 - Decimal(repr(float(confidence)))))


def check_resamples(n_resamples: object, confidence: float) -> int:
    """Return ``n_resamples`` as an int in ``[min_resamples(confidence), MAX_RESAMPLES]``, or raise.

    Parameters
    ----------
    n_resamples : int
        Bootstrap resamples asked for (any integer type but bool).
    confidence : float
        The coverage of the interval they feed, already checked to lie in (0, 1).

    Returns
    -------
    int
        ``n_resamples``.

    Raises
    ------
    TypeError
        ``n_resamples`` is not an integer (a bool, a float such as ``40.0``, a string).
    ValueError
        ``n_resamples`` is below :func:`min_resamples` (a tail of the interval would hold no resample)
        or above :data:`MAX_RESAMPLES` (the table of draws would not fit in memory); or ``confidence`` is
        so close to 1 that no count up to :data:`MAX_RESAMPLES` is enough.
    """
    minimum = min_resamples(confidence)
    why = (
        "each tail of the percentile interval must hold at least one resample: "
        "n_resamples * (1 - confidence) / 2 >= 1"
    )
    if minimum > MAX_RESAMPLES:
        largest = 1.0 - 2.0 / MAX_RESAMPLES
        raise ValueError(
            f"`confidence` {confidence!r} needs `n_resamples` >= {minimum} ({why}), more than the "
            f"{MAX_RESAMPLES} allowed; use a `confidence` of at most {largest:g}"
        )
    try:
        return check_int_range(n_resamples, "n_resamples", minimum, MAX_RESAMPLES)
    except ValueError:
        if int(n_resamples) >= minimum:  # type: ignore[call-overload]  # an integer, checked above
            raise  # above MAX_RESAMPLES
        raise ValueError(
            f"`n_resamples` must be at least {minimum} for confidence {confidence!r} ({why}); "
            f"got {short_repr(int(n_resamples))}"  # type: ignore[call-overload]
        ) from None


def bootstrap_counts(n: int, n_resamples: int = 2000, seed: int = 0) -> npt.NDArray[np.int64]:
    """How often each of ``n`` images is drawn in each bootstrap resample.

    Parameters
    ----------
    n : int
        Number of images (>= 1).
    n_resamples : int
        Number of resamples, 1..:data:`MAX_RESAMPLES`. A table of counts is not an interval, so one row
        is allowed; an interval computed from it needs :func:`min_resamples` rows (as
        :func:`paired_bootstrap` requires).
    seed : int
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    ndarray of int64, shape (n_resamples, n)
        Row ``b`` counts how often each image occurs in resample ``b``; every row sums to ``n``.

    Raises
    ------
    TypeError, ValueError
        An argument that is not an integer in range, or a table of more than
        :data:`MAX_COUNT_CELLS` counts (:func:`paired_bootstrap` streams its draws instead).
    """
    n = check_int_range(n, "n", 1)
    n_resamples = check_int_range(n_resamples, "n_resamples", 1, MAX_RESAMPLES)
    seed = check_int_range(seed, "seed", 0)
    if n * n_resamples > MAX_COUNT_CELLS:
        raise ValueError(
            f"`n` x `n_resamples` = {short_repr(n, 30)} x {n_resamples} counts is more than the "
            f"{MAX_COUNT_CELLS} (2 GiB of int64) one table may hold; paired_bootstrap streams its draws"
        )
    return np.concatenate(list(_count_chunks(n, n_resamples, seed)))


#: Most draw counts :func:`bootstrap_counts` returns in one table (2 GiB of int64).
MAX_COUNT_CELLS = 1 << 28
#: Largest (resamples x images) block of draw counts held at once: 8 MB of int64.
_CHUNK_CELLS = 1 << 20


def _count_chunks(n: int, n_resamples: int, seed: int) -> Iterator[npt.NDArray[np.int64]]:
    """Yield the rows of :func:`bootstrap_counts` in blocks of at most :data:`_CHUNK_CELLS` cells.

    The generator draws row after row, so the blocks are the rows of one ``size=n_resamples`` draw (the
    same numbers whatever the block size); memory stays bounded for any ``n``.
    """
    rng = np.random.default_rng(seed)
    probabilities = np.full(n, 1.0 / n)
    rows = max(1, _CHUNK_CELLS // n)
    for start in range(0, n_resamples, rows):
        yield rng.multinomial(n, probabilities, size=min(rows, n_resamples - start)).astype(
            np.int64, copy=False
        )


#: Largest per-image score magnitude accepted: means of larger values can overflow float64.
MAX_SCORE_MAGNITUDE = 1e300


def _as_scores(values: object, name: str) -> np.ndarray:
    """Per-image scores as float64: numbers or bools (a per-image hit), NaN for "no score", never inf."""
    try:
        array = np.asarray(values)
    except ValueError:  # a ragged nesting: NumPy's message does not say which argument
        raise ValueError(
            f"`{name}` must be one (n,) or (n, K) array of numbers; got a ragged nesting {short_repr(values)}"
        ) from None
    if array.dtype.kind not in "biuf":  # text "0.5" would be parsed, None made NaN: refuse both
        raise TypeError(f"`{name}` must hold numbers (per-image scores); got dtype {array.dtype}")
    array = array.astype(np.float64)
    if np.isinf(array).any():  # no metric is infinite: an inf is a bug upstream, not a missing score
        where = tuple(int(i) for i in np.argwhere(np.isinf(array))[0])
        raise ValueError(f"`{name}` has an infinite value at index {where}; use NaN for a missing score")
    huge = np.abs(array) > MAX_SCORE_MAGNITUDE
    if huge.any():  # sums of such values overflow to inf and the interval to NaN, silently
        where = tuple(int(i) for i in np.argwhere(huge)[0])
        raise ValueError(
            f"`{name}` has a value of magnitude above {MAX_SCORE_MAGNITUDE:.0e} at index {where} "
            f"({array[where]!r}); no per-image score is that large"
        )
    return array


def _as_values(values: object, name: str, statistic: str) -> np.ndarray:
    array = _as_scores(values, name)
    want = 1 if statistic == "mean" else 2
    if array.ndim != want or (want == 2 and array.shape[1] == 0):
        shape = "(n,)" if want == 1 else "(n, K) with K >= 1"
        raise ValueError(f"`{name}` must have shape {shape} for statistic {statistic!r}; got {array.shape}")
    return array


def _statistic(values: np.ndarray, statistic: str, counts: np.ndarray | None = None) -> Any:
    """Compute the statistic of the whole sample (counts None) or of each resample (counts (B, n))."""
    n = values.shape[0]
    if counts is None:
        mean = values.mean(axis=0)
    else:
        mean = (counts @ values) / n  # (B,) or (B, K)
    return mean if statistic == "mean" else mean.max(axis=-1)


def _paired_valid(candidate: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """Images where both values are finite (a NaN IoU of an empty union drops the pair)."""
    axes = tuple(range(1, candidate.ndim))
    return np.isfinite(candidate).all(axis=axes) & np.isfinite(baseline).all(axis=axes)


def paired_bootstrap(
    candidate: npt.ArrayLike,
    baseline: npt.ArrayLike,
    *,
    statistic: Statistic = "mean",
    n_resamples: int = 2000,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Change of a statistic from ``baseline`` to ``candidate`` with a paired percentile bootstrap interval.

    Parameters
    ----------
    candidate, baseline : array_like, shape (n,) or (n, K)
        Per-image values of the same ``n`` images in the same order; (n, K) per-image curves for
        ``statistic="max_of_mean"``. Numbers or bools (a per-image hit); an image with a NaN on
        either side is dropped (pairs); an infinite value, or one above 1e300 in magnitude
        (:data:`MAX_SCORE_MAGNITUDE`), is refused.
    statistic : {"mean", "max_of_mean"}
        ``mean`` over images, or the max over K of the image-averaged curve.
    n_resamples : int
        Bootstrap resamples (images drawn with replacement, the same draw for both sides), from
        :func:`min_resamples` of ``confidence`` (40 at 0.95: each tail of the interval holds at least one
        resample) to :data:`MAX_RESAMPLES`.
    confidence : float
        Coverage of the interval (0.95: the 2.5 % and 97.5 % percentiles of the resampled changes,
        NumPy's default linear interpolation).
    seed : int
        Seed of the draws; the result is a deterministic function of the inputs and the seed.

    Returns
    -------
    change, low, high : float
        ``statistic(candidate) - statistic(baseline)`` on the whole sample and the interval's ends.
        NaN for all three when no pair is left.

    Raises
    ------
    ValueError
        Different shapes, a shape that does not fit ``statistic`` (an (n, 0) curve included), an
        infinite or huge score, or settings out of range (``n_resamples`` below :func:`min_resamples` of
        ``confidence`` included).
    TypeError
        Scores that are not numbers (text, objects); ``n_resamples`` or ``seed`` not an integer,
        ``confidence`` not a number.

    Examples
    --------
    >>> paired_bootstrap([1.0, 1.0, 1.0], [0.5, 0.5, 0.5])
    (0.5, 0.5, 0.5)
    """
    a, b, n_resamples, confidence, seed = _checked(
        candidate, baseline, statistic, n_resamples, confidence, seed
    )
    if a.shape[0] == 0:
        return math.nan, math.nan, math.nan
    return _bootstrap(a, b, statistic, n_resamples, confidence, seed)


def _checked(
    candidate: object,
    baseline: object,
    statistic: object,
    n_resamples: object,
    confidence: object,
    seed: object,
) -> tuple[np.ndarray, np.ndarray, int, float, int]:
    """Check the arguments of :func:`paired_bootstrap`; return the finite pairs and the settings.

    The scores come back as float64 arrays of the shape ``statistic`` needs, without the pairs that hold
    a NaN on either side (possibly none left).
    """
    statistic = check_choice(statistic, STATISTICS, "statistic")  # an array's `in` would raise "ambiguous"
    a = _as_values(candidate, "candidate", statistic)
    b = _as_values(baseline, "baseline", statistic)
    if a.shape != b.shape:
        raise ValueError(f"`candidate` and `baseline` must have the same shape; got {a.shape} and {b.shape}")
    level = _check_confidence(confidence)
    count = check_resamples(n_resamples, level)
    start = check_int_range(seed, "seed", 0)
    keep = _paired_valid(a, b)
    return a[keep], b[keep], count, level, start


def _bootstrap(
    a: np.ndarray, b: np.ndarray, statistic: str, n_resamples: int, confidence: float, seed: int
) -> tuple[float, float, float]:
    """:func:`paired_bootstrap` of checked, finite pairs (at least one): nothing is checked here."""
    change = float(_statistic(a, statistic) - _statistic(b, statistic))
    if statistic == "mean":
        differences = a - b
        if np.all(differences == differences[0]):  # every resample is this one value: no interval width,
            same = float(differences[0])  # and float rounding of the means must not put the change
            return same, same, same  # outside its own interval
    parts = []
    for counts in _count_chunks(a.shape[0], n_resamples, seed):  # bounded memory for any number of images
        if statistic == "mean":  # linear: the change of the mean is the mean of the changes
            parts.append(_statistic(a - b, "mean", counts))
        else:
            parts.append(_statistic(a, statistic, counts) - _statistic(b, statistic, counts))
    resampled = np.concatenate(parts)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(resampled, [tail, 1.0 - tail])
    return change, float(low), float(high)


def win_tie_loss(
    candidate: npt.ArrayLike, baseline: npt.ArrayLike, *, tie_tol: float = 1e-3, higher_is_better: bool = True
) -> tuple[int, int, int]:
    """Count images where the candidate is better, within ``tie_tol`` of, or worse than the baseline.

    Parameters
    ----------
    candidate, baseline : array_like, shape (n,)
        Per-image values (numbers or bools), paired by position; pairs with a NaN are not counted.
    tie_tol : float
        ``|candidate - baseline| <= tie_tol`` is a tie, up to :data:`TIE_SLACK` of float rounding (0.501 -
        0.5 is 0.0010000000000000009 in binary floating point: a tie at the default 1e-3).
    higher_is_better : bool
        False for errors such as MAE.

    Returns
    -------
    wins, ties, losses : int

    Raises
    ------
    ValueError
        Shapes that are not 1-D and equal, an infinite or huge value, ``tie_tol`` not a number >= 0.
    TypeError
        Values that are not numbers (text, objects); ``higher_is_better`` not a bool.
    """
    a = _as_scores(candidate, "candidate")
    b = _as_scores(baseline, "baseline")
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"`candidate` and `baseline` must be 1-D of equal length; got {a.shape}, {b.shape}")
    return _win_tie_loss(a, b, _check_tie_tol(tie_tol), check_flag(higher_is_better, "higher_is_better"))


#: Float rounding allowed on top of ``tie_tol``: per-image metrics lie in [0, 1], so a difference is
#: rounded by at most a few 1e-16; 1e-12 covers it without moving any other boundary that matters.
TIE_SLACK = 1e-12


def _check_tie_tol(tie_tol: float) -> float:
    if isinstance(tie_tol, bool) or not isinstance(tie_tol, numbers.Real) or not tie_tol >= 0:
        raise ValueError(f"`tie_tol` must be a number >= 0; got {short_repr(tie_tol)}")
    return real_to_float(tie_tol)  # 10**400: inf (every change a tie), not an OverflowError in NumPy


def _win_tie_loss(
    a: np.ndarray, b: np.ndarray, tie_tol: float, higher_is_better: bool
) -> tuple[int, int, int]:
    """:func:`win_tie_loss` of checked float64 arrays of one shape (n,) and a checked ``tie_tol``."""
    keep = np.isfinite(a) & np.isfinite(b)
    diff = (a - b)[keep] * (1.0 if higher_is_better else -1.0)
    bound = tie_tol + TIE_SLACK  # a difference of exactly tie_tol in decimal may round just above it
    ties = int(np.count_nonzero(np.abs(diff) <= bound))
    wins = int(np.count_nonzero(diff > bound))
    return wins, ties, int(diff.size) - wins - ties


@dataclass(frozen=True, slots=True)
class PairedComparison:
    """A candidate against a baseline on the same images, for one metric.

    Built by :func:`compare_paired`; the constructor checks nothing.

    Parameters
    ----------
    metric : str
        Metric name (e.g. ``"iou"``).
    n : int
        Pairs used (images where both sides are finite).
    baseline : float
        The statistic of the baseline over those pairs.
    candidate : float
        The statistic of the candidate over those pairs.
    change : float
        ``candidate - baseline``.
    low, high : float
        Paired bootstrap interval of ``change``.
    wins, ties, losses : int
        Per-image counts (for a curve metric: of each image's own best value).
    confidence : float
        Coverage of the interval.
    n_resamples : int
        Bootstrap resamples of the interval.
    seed : int
        Seed of the bootstrap draws.
    higher_is_better : bool, default True
        Direction of the metric (False for errors such as MAE); the verdict follows it.
    """

    metric: str
    n: int
    baseline: float
    candidate: float
    change: float
    low: float
    high: float
    wins: int
    ties: int
    losses: int
    confidence: float
    n_resamples: int
    seed: int
    higher_is_better: bool = True

    @property
    def verdict(self) -> str:
        """``"better"`` / ``"worse"`` when the interval excludes 0, else ``"no clear change"``.

        A statement about the sign of the change, not its size: a change of 1e-4 on every image (every
        image a tie) is "better" when its interval excludes 0; ``wins``/``losses`` say whether any image
        changed by more than the tie tolerance.
        """
        up, down = ("better", "worse") if self.higher_is_better else ("worse", "better")
        if self.low > 0:
            return up
        if self.high < 0:
            return down
        return "no clear change"

    def with_dataset_values(self, baseline: float, candidate: float) -> PairedComparison:
        """Return this comparison with each side's value as ``score`` prints it (change = their difference).

        For a comparison over every image (``n`` = all of them): the bootstrap's own means are float64,
        where a preset may sum in float32 or take its max F otherwise; the interval is kept.

        Parameters
        ----------
        baseline : float
            The baseline's dataset value.
        candidate : float
            The candidate's dataset value.

        Returns
        -------
        PairedComparison
            A copy with ``baseline``, ``candidate`` and ``change = candidate - baseline`` replaced; the
            interval, counts and settings unchanged.
        """
        return dataclasses.replace(
            self,
            baseline=float(baseline),
            candidate=float(candidate),
            change=float(candidate) - float(baseline),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN as None) including the verdict.

        Returns
        -------
        dict
            Every field by name (non-finite floats as None), plus ``verdict`` (:attr:`verdict`).
        """
        out = {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()
        }
        out["verdict"] = self.verdict
        return out


def compare_paired(
    candidate: npt.ArrayLike,
    baseline: npt.ArrayLike,
    *,
    metric: str,
    statistic: Statistic = "mean",
    n_resamples: int = 2000,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    tie_tol: float = 1e-3,
    higher_is_better: bool = True,
) -> PairedComparison:
    """Paired summary of one metric: both statistics, the change with its interval, wins/ties/losses.

    For ``statistic="max_of_mean"`` the wins/ties/losses compare each image's own max over the curve.

    Parameters
    ----------
    candidate : array_like, shape (n,) or (n, K)
        Per-image values of the candidate; (n, K) per-image curves for ``statistic="max_of_mean"``.
    baseline : array_like, shape of ``candidate``
        Per-image values of the baseline, paired with ``candidate`` by position. Pairs with a
        non-finite value on either side are dropped.
    metric : str
        Name of the metric, stored in the result (e.g. ``"iou"``).
    statistic : {"mean", "max_of_mean"}, default "mean"
        ``mean`` over images, or the max over K of the image-averaged curve (see
        :func:`paired_bootstrap`).
    n_resamples : int, default 2000
        Bootstrap resamples, :func:`min_resamples` of ``confidence`` (40 at 0.95) to
        :data:`MAX_RESAMPLES`.
    confidence : float, default 0.95
        Coverage of the interval, in (0, 1).
    seed : int, default 0
        Seed of the bootstrap draws (>= 0).
    tie_tol : float, default 1e-3
        ``|candidate - baseline| <= tie_tol`` is a tie (see :func:`win_tie_loss`).
    higher_is_better : bool, default True
        Direction of the metric (False for errors such as MAE).

    Returns
    -------
    PairedComparison
        Both statistics over the kept pairs (NaN when none is left), the change and its interval, the
        wins/ties/losses and the settings.

    Raises
    ------
    ValueError
        An unknown ``statistic``; shapes that differ or do not fit ``statistic``; an infinite or huge score;
        ``n_resamples``, ``seed``, ``confidence`` or ``tie_tol`` out of range (a non-number ``tie_tol``
        included).
    TypeError
        Scores that are not numbers; ``n_resamples`` or ``seed`` not an integer, ``confidence`` not a
        number, ``higher_is_better`` not a bool.
    """
    # every argument is checked once, here, before any resampling; the helpers below check nothing
    if not isinstance(metric, str):
        raise TypeError(f"`metric` must be a str (the metric's name); got {short_repr(metric)}")
    a, b, count, level, start = _checked(candidate, baseline, statistic, n_resamples, confidence, seed)
    tolerance = _check_tie_tol(tie_tol)
    higher_is_better = check_flag(higher_is_better, "higher_is_better")
    n = int(a.shape[0])
    if n:
        change, low, high = _bootstrap(a, b, statistic, count, level, start)
    else:
        change = low = high = math.nan
    base = float(_statistic(b, statistic)) if n else math.nan
    cand = float(_statistic(a, statistic)) if n else math.nan
    per_a = a if statistic == "mean" else a.max(axis=1)
    per_b = b if statistic == "mean" else b.max(axis=1)
    wins, ties, losses = _win_tie_loss(per_a, per_b, tolerance, higher_is_better)
    return PairedComparison(
        metric=metric,
        n=n,
        baseline=base,
        candidate=cand,
        change=change,
        low=low,
        high=high,
        wins=wins,
        ties=ties,
        losses=losses,
        confidence=level,
        n_resamples=count,
        seed=start,
        higher_is_better=bool(higher_is_better),
    )
