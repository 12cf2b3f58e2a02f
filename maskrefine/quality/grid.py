"""Score refiner settings ("candidates") on coarse masks with ground truth.

This is the engine of ``bench/quality.py`` and ``maskrefine tune``.
A :class:`Candidate` is one refiner with one guide, one parameter set and one upsampling rule. Its
output is quantised as the 8-bit PNG ``maskrefine apply`` would write, then scored with a score preset
(default ``tokencut``: Acc and IoU at 0.5, max F-beta from the image-averaged F curve).
:func:`evaluate` loads each (image, coarse mask, GT) triple once and runs every candidate on it, in
``jobs`` processes; results come back in item order whatever ``jobs`` is, so they are deterministic.
:func:`compare_to` turns two candidates' scores into paired comparisons (:mod:`maskrefine.quality.stats`).
"""

from __future__ import annotations

import math
import multiprocessing
import signal
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from maskrefine._checks import short_repr
from maskrefine._jit import kernels_cached, skip_first_compile_splits
from maskrefine.errors import InputError
from maskrefine.io.imageio import png8_codes, read_image, read_mask, read_mask_array
from maskrefine.metrics import ScorePreset, get_preset
from maskrefine.pipeline.guards import check_jobs
from maskrefine.quality.stats import PairedComparison, Statistic, compare_paired
from maskrefine.refiners import GUIDE_MODES, REFINERS, check_mask_size, refine, resolve_params

__all__ = [
    "UPSAMPLINGS",
    "Candidate",
    "naive_candidate",
    "Item",
    "Scores",
    "EvaluationResult",
    "evaluate",
    "compare_to",
    "QUALITY_METRICS",
]

#: How a coarse mask is brought to the image size before the refiner runs (see ``refiners.resize_mask``).
UPSAMPLINGS: tuple[str, ...] = ("bilinear", "nearest")
#: Metrics compared by :func:`compare_to`: name -> statistic (see ``stats.paired_bootstrap``); max F's is
#: that of ``mean_then_max`` presets, :func:`compare_to` takes the preset's own (:func:`max_fbeta_statistic`).
QUALITY_METRICS: dict[str, Statistic] = {"acc": "mean", "iou": "mean", "max_fbeta": "max_of_mean"}


def _format_number(value: Any, name: str = "eps") -> str:
    """``eps`` on its decade grid in one digit (``1e-3``, ``3e-3``); other floats as ``:g`` (``256``)."""
    if isinstance(value, float):
        if name != "eps":  # one digit would show lam=256 as "3e2" and could merge distinct settings
            return f"{value:g}"
        return f"{value:.0e}".replace("e-0", "e-").replace("e+0", "e")
    return str(value)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One refiner setting: method, guide, complete parameter set and upsampling of the coarse mask.

    Build it with :meth:`make` (validates and completes the parameters); it is hashable and orderable by
    its label, and round-trips through :meth:`to_dict` / :meth:`from_dict`. The constructor itself checks
    nothing.

    Parameters
    ----------
    method : str
        A key of :data:`maskrefine.refiners.REFINERS`.
    guide : {"mean", "luma", "color"}, default "mean"
        Guide mode given to the refiner.
    params : tuple of (str, object) pairs, default ()
        The complete parameter set, sorted by name (as :meth:`make` builds it).
    upsample : {"bilinear", "nearest"}, default "bilinear"
        How the coarse mask is brought to the image size: ``"nearest"`` runs the refiner with
        ``binary_input=True``.
    """

    method: str
    guide: str = "mean"
    params: tuple[tuple[str, Any], ...] = ()
    upsample: str = "bilinear"

    @classmethod
    def make(cls, method: str, guide: str = "mean", upsample: str = "bilinear", **params: Any) -> Candidate:
        """Build a validated candidate; ``params`` override the method's defaults (see ``REFINERS``).

        Parameters
        ----------
        method : str
            A key of :data:`maskrefine.refiners.REFINERS`.
        guide : {"mean", "luma", "color"}, default "mean"
            Guide mode; set to ``"mean"`` for ``identity``, a method without parameters and a method that
            does not use a guide (the bilateral solver and the CRF read the RGB image).
        upsample : {"bilinear", "nearest"}, default "bilinear"
            Upsampling of the coarse mask; set to ``"bilinear"`` for a method that resizes the mask by
            its own rule (``native_mask``).
        **params
            Parameters overriding the method's defaults; None values are ignored.

        Returns
        -------
        Candidate
            The candidate with the complete, validated parameter set sorted by name.

        Raises
        ------
        ValueError, TypeError
            Unknown method, guide, upsampling or parameter, or a bad parameter value.
        """
        if guide not in GUIDE_MODES:
            raise ValueError(f"`guide` must be one of {', '.join(GUIDE_MODES)}; got {short_repr(guide)}")
        if upsample not in UPSAMPLINGS:
            raise ValueError(
                f"`upsample` must be one of {', '.join(UPSAMPLINGS)}; got {short_repr(upsample)}"
            )
        resolved = resolve_params(method, params)
        if not REFINERS[method].defaults or method == "identity" or not REFINERS[method].uses_guide:
            guide = "mean"  # the guide is not used: one canonical candidate (a preset file says "mean")
        if REFINERS[method].native_mask:
            upsample = "bilinear"  # not used either (the refiner resizes by its own rule)
        return cls(method, guide, tuple(sorted(resolved.items())), upsample)

    @property
    def param_dict(self) -> dict[str, Any]:
        """The parameters as a dict."""
        return dict(self.params)

    @property
    def label(self) -> str:
        """Short readable name, e.g. ``guided color r=8 eps=1e-3 [bilinear]``."""
        parts = [self.method]
        spec = REFINERS[self.method]
        if self.method != "identity" and spec.defaults and spec.uses_guide:
            parts.append(self.guide)
        short = {"radius": "r", "subsample": "s"}
        order = {"radius": 0, "eps": 1}
        ordered = sorted(self.params, key=lambda kv: (order.get(kv[0], 2), kv[0]))
        parts += [f"{short.get(k, k)}={_format_number(v, k)}" for k, v in ordered if v is not None]
        if REFINERS[self.method].native_mask:  # it upsamples by its own rule
            return " ".join(parts)
        return " ".join(parts) + f" [{self.upsample}]"

    def to_dict(self) -> dict[str, Any]:
        """JSON/TOML-ready dict.

        Returns
        -------
        dict
            ``method``, ``guide``, ``upsample`` and ``params`` (a dict).
        """
        return {
            "method": self.method,
            "guide": self.guide,
            "upsample": self.upsample,
            "params": dict(self.params),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Candidate:
        """Inverse of :meth:`to_dict` (validated).

        Parameters
        ----------
        data : mapping
            Keys ``method``, ``guide`` (default ``"mean"``), ``upsample`` (default ``"bilinear"``) and
            ``params`` (a mapping, default empty); no other key.

        Returns
        -------
        Candidate
            The candidate :meth:`make` builds from them.

        Raises
        ------
        TypeError
            ``data`` or its ``params`` is not a mapping; a parameter of the wrong type.
        ValueError
            An unknown key; a missing or unknown method; an unknown guide, upsampling or parameter, or a
            bad parameter value.
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"a candidate must be a mapping; got {type(data).__name__}")
        unknown = sorted(set(data) - {"method", "guide", "upsample", "params"})
        if unknown:
            raise ValueError(
                f"unknown candidate key(s) {', '.join(unknown)}; accepted: method, guide, upsample, params"
            )
        params = data.get("params", {})
        if not isinstance(params, Mapping):
            raise TypeError(f"`params` must be a mapping; got {type(params).__name__}")
        return cls.make(
            data.get("method", ""),
            data.get("guide", "mean"),
            data.get("upsample", "bilinear"),
            **dict(params),
        )

    def run(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Refine ``mask`` (any size) with ``image`` (``maskrefine.refiners.refine``); float32 (H, W).

        Parameters
        ----------
        image : ndarray of float, shape (H, W, 3)
            RGB image in [0, 1].
        mask : ndarray of float, shape (h, w)
            Coarse mask in [0, 1]: the image size or a uniform down-scale of it.

        Returns
        -------
        ndarray of float32, shape (H, W)
            The refined mask in [0, 1].

        Raises
        ------
        ValueError, TypeError
            As :func:`maskrefine.refiners.refine`: bad shapes, dtypes or values.
        """
        return refine(
            image,
            mask,
            self.method,
            guide=self.guide,  # "mean" for a method that uses no guide (see make)
            binary_input=self.upsample == "nearest",
            **self.param_dict,
        )


def naive_candidate(binary: bool) -> Candidate:
    """Naive upsampling: identity with nearest (binary masks) or bilinear (soft masks) interpolation.

    Parameters
    ----------
    binary : bool
        The coarse masks are binary: upsample with nearest-neighbour instead of bilinear interpolation.
        Any truthy value counts as True (not checked).

    Returns
    -------
    Candidate
        The ``identity`` candidate with that upsampling.
    """
    return Candidate.make("identity", upsample="nearest" if binary else "bilinear")


@dataclass(frozen=True, slots=True)
class Item:
    """One scored case: the image, the coarse mask to refine and the ground truth, found by ``key``.

    Parameters
    ----------
    key : str
        Name of the case (e.g. the file stem).
    image : Path
        The RGB image file.
    mask : Path
        The coarse mask file to refine.
    gt : Path
        The ground-truth mask file.
    """

    key: str
    image: Path
    mask: Path
    gt: Path


@dataclass(slots=True)
class Scores:
    """Per-item scores of one candidate, in item order.

    Parameters
    ----------
    acc : ndarray of float64, shape (n,)
        Pixel accuracy per item.
    iou : ndarray of float64, shape (n,)
        IoU per item (NaN where undefined).
    fbeta : ndarray of float64, shape (n, K)
        F-beta curves over the preset's K thresholds, as ``score_image`` makes them (float32 storage
        moved the dataset's max F by ~2e-9 from `score`'s).
    """

    acc: np.ndarray
    iou: np.ndarray
    fbeta: np.ndarray

    def check(self, name: str, preset: ScorePreset) -> None:
        """Raise unless these are ``(n,)``, ``(n,)`` and ``(n, K)`` arrays for ``preset``'s K thresholds.

        Parameters
        ----------
        name : str
            What the scores are, for the message (e.g. ``"baseline"``).
        preset : ScorePreset
            Score preset the F-beta curves must follow.

        Raises
        ------
        TypeError
            A field that is not an ndarray.
        ValueError
            Shapes that do not fit one another or the preset's threshold count.
        """
        for field_name in ("acc", "iou", "fbeta"):
            value = getattr(self, field_name)
            if not isinstance(value, np.ndarray):
                raise TypeError(f"{name}.{field_name} must be an ndarray, got {type(value).__name__}")
        n = self.acc.shape[0] if self.acc.ndim == 1 else -1
        k = preset.thresholds.size
        if self.acc.ndim != 1 or self.iou.shape != (n,) or self.fbeta.shape != (n, k):
            raise ValueError(
                f"{name}: scores must have shapes (n,), (n,) and (n, {k}) (F-beta curves over preset "
                f"{preset.name}'s {k} thresholds), got acc {self.acc.shape}, iou {self.iou.shape} and "
                f"fbeta {self.fbeta.shape}"
            )

    def subset(self, index: np.ndarray | Sequence[int]) -> Scores:
        """Scores of the items at ``index``.

        Parameters
        ----------
        index : ndarray or sequence of int
            Item positions (repeats allowed, e.g. a bootstrap resample).

        Returns
        -------
        Scores
            New arrays holding the rows at ``index``, in that order.
        """
        idx = np.asarray(index, dtype=np.int64)
        return Scores(self.acc[idx], self.iou[idx], self.fbeta[idx])

    def summary(self, preset: str | ScorePreset = "tokencut") -> dict[str, float]:
        """Dataset values as ``maskrefine score --preset`` aggregates them.

        Mean Acc and max F follow the preset (max F: max of the mean curve, or mean of each image's max;
        SelfMask/FOUND's float32 running sums). IoU is the mean over the images where it is defined
        (NaN-skipping, so settings can be ranked): where an image's IoU is undefined (GT and mask both
        empty) and the preset keeps NaN, ``score`` prints NaN instead.

        Parameters
        ----------
        preset : str or ScorePreset, default "tokencut"
            Score preset whose aggregation rules apply (:func:`maskrefine.metrics.get_preset`).

        Returns
        -------
        dict of str to float
            ``acc``, ``iou`` and ``max_fbeta``; all NaN when there is no item, ``iou`` NaN when no item
            has a defined IoU.

        Raises
        ------
        ValueError, TypeError
            An unknown preset name, a ``preset`` that is neither a name nor a ScorePreset, or scores
            whose shapes do not fit the preset (:meth:`check`).
        """
        from maskrefine.metrics.evaluator import mean_over_images

        p = get_preset(preset)
        self.check("scores", p)
        n = self.acc.shape[0]
        if n == 0:
            return {"acc": math.nan, "iou": math.nan, "max_fbeta": math.nan}
        f32 = p.accumulate == "float32"
        iou = self.iou[np.isfinite(self.iou)]
        if max_fbeta_statistic(p) == "max_of_mean":
            max_fbeta = float(self.fbeta.astype(np.float64).mean(axis=0).max())
        else:
            max_fbeta = mean_over_images(list(self.fbeta.max(axis=1).astype(np.float64)), f32)
        return {
            "acc": mean_over_images(list(self.acc), f32),
            "iou": mean_over_images(list(iou), f32) if iou.size else math.nan,
            "max_fbeta": max_fbeta,
        }


@dataclass(slots=True)
class EvaluationResult:
    """What :func:`evaluate` returns: the scored item keys, scores per candidate, and failed items.

    Parameters
    ----------
    keys : list of str
        Keys of the items that were scored, in item order.
    scores : dict of Candidate to Scores
        Each candidate's scores, aligned with ``keys``.
    failures : list of (str, str), default []
        ``(key, problem)`` of each item that could not be read or scored.
    """

    keys: list[str]
    scores: dict[Candidate, Scores]
    failures: list[tuple[str, str]] = field(default_factory=list)


def _score_item(item: Item, candidates: Sequence[Candidate], preset_name: str) -> tuple[str, Any]:
    """Run every candidate on one item; ``(key, (acc, iou, fbeta))`` or ``(key, "problem")``."""
    # the scorer's kernels load on first use: `apply --preset` needs Candidate, not the scorer
    from maskrefine.metrics.evaluator import score_image

    try:
        image = read_image(item.image)
        mask = read_mask(item.mask)
        gt = read_mask_array(item.gt)
        problem = check_mask_size(mask.shape, image.shape[:2])
        if problem is not None:
            raise InputError(item.mask, f"{problem} (image {item.image.name})")
        if gt.shape != image.shape[:2]:
            raise InputError(
                item.gt,
                f"ground truth is {gt.shape[0]}x{gt.shape[1]}, image {item.image.name} is "
                f"{image.shape[0]}x{image.shape[1]} (HxW)",
            )
        preset = get_preset(preset_name)
        acc = np.empty(len(candidates))
        iou = np.empty(len(candidates))
        curves = np.empty((len(candidates), preset.thresholds.size), np.float64)
        for i, candidate in enumerate(candidates):
            refined = png8_codes(candidate.run(image, mask))
            row, curve = score_image(refined, gt, preset, weighted_f=False)
            acc[i], iou[i], curves[i] = row["acc"], row["iou"], curve["fbeta"]
    except InputError as exc:
        return item.key, str(exc)
    except ValueError as exc:
        return item.key, f"{item.mask}: cannot refine or score: {exc}"
    return item.key, (acc, iou, curves)


_WORKER_STATE: dict[str, Any] = {}


def _init_worker(candidates: Sequence[Candidate], preset_name: str) -> None:
    import cv2

    # Ctrl-C reaches the whole process group; only the parent acts on it (leaving the pool terminates the
    # workers), so a worker must not die in a KeyboardInterrupt traceback. SIGTERM keeps its default:
    # the pool's terminate() sends it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    cv2.setNumThreads(1)
    try:
        import numba

        numba.set_num_threads(1)
    except Exception:  # noqa: BLE001  # pragma: no cover - best effort
        pass
    skip_first_compile_splits()  # the other workers use the other CPUs: no second compile process each
    _WORKER_STATE["candidates"] = list(candidates)
    _WORKER_STATE["preset"] = preset_name


def _score_item_in_worker(item: Item) -> tuple[str, Any]:
    return _score_item(item, _WORKER_STATE["candidates"], _WORKER_STATE["preset"])


def evaluate(
    candidates: Iterable[Candidate],
    items: Sequence[Item],
    *,
    preset: str = "tokencut",
    jobs: int | None = 1,
    progress: Callable[[int, int], None] | None = None,
) -> EvaluationResult:
    """Score every candidate on every item.

    Parameters
    ----------
    candidates : iterable of Candidate
        Settings to score (duplicates are scored once).
    items : sequence of Item
        Image, coarse mask and GT triples. An item whose files cannot be read or refined is left out
        of *every* candidate's scores (so the scores stay paired) and listed in ``failures``.
    preset : str
        Score preset (see :data:`maskrefine.metrics.PRESETS`).
    jobs : int or None, default 1
        Worker processes (None: one per available core; 1: this process). Workers are started with
        ``spawn`` and run OpenCV and numba single-threaded; results do not depend on ``jobs``. Where numba
        cannot cache compiled kernels (no writable cache folder: a warning says so), the work is done in
        this process: each fresh worker would compile every kernel again (3-4x slower at 2 jobs).
    progress : callable, optional
        ``progress(done, total)`` after each item.

    Returns
    -------
    EvaluationResult

    Raises
    ------
    TypeError
        ``candidates`` or ``items`` not a collection of Candidate / Item (a str is refused, not iterated),
        or a ``progress`` that is not callable.
    ValueError
        An unknown preset or a ``jobs`` out of range.
    """
    if isinstance(candidates, (str, bytes, Candidate)) or not isinstance(candidates, Iterable):
        raise TypeError(f"candidates must be an iterable of Candidate, got {short_repr(candidates)}")
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise TypeError(f"items must be a sequence of Item, got {short_repr(items)}")
    given = list(candidates)
    for position, candidate in enumerate(given):
        if not isinstance(candidate, Candidate):
            raise TypeError(f"candidates[{position}] must be a Candidate, got {short_repr(candidate)}")
    unique = list(dict.fromkeys(given))
    for position, item in enumerate(items):
        if not isinstance(item, Item):
            raise TypeError(f"items[{position}] must be an Item, got {short_repr(item)}")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable or None, got {short_repr(progress)}")
    get_preset(preset)
    workers = check_jobs(jobs)
    total = len(items)
    results: list[tuple[str, Any]] = []
    if workers == 1 or total <= 1 or not kernels_cached():
        for done, item in enumerate(items, start=1):
            results.append(_score_item(item, unique, preset))
            if progress is not None:
                progress(done, total)
    else:
        context = multiprocessing.get_context("spawn")
        with context.Pool(min(workers, total), initializer=_init_worker, initargs=(unique, preset)) as pool:
            chunk = max(1, min(8, total // (4 * workers)))
            for done, result in enumerate(pool.imap(_score_item_in_worker, items, chunksize=chunk), start=1):
                results.append(result)
                if progress is not None:
                    progress(done, total)
    keys = [key for key, value in results if not isinstance(value, str)]
    failures = [(key, value) for key, value in results if isinstance(value, str)]
    good = [value for _, value in results if not isinstance(value, str)]
    k = get_preset(preset).thresholds.size
    scores = {}
    for i, candidate in enumerate(unique):
        scores[candidate] = Scores(
            acc=np.array([v[0][i] for v in good], np.float64),
            iou=np.array([v[1][i] for v in good], np.float64),
            fbeta=np.array([v[2][i] for v in good], np.float64).reshape(len(good), k),
        )
    return EvaluationResult(keys=keys, scores=scores, failures=failures)


def max_fbeta_statistic(preset: ScorePreset) -> Statistic:
    """Return the statistic of the per-image F curves that gives the preset's max F (its aggregation)."""
    return "max_of_mean" if preset.aggregation == "mean_then_max" else "mean"


def compare_to(
    candidate: Scores,
    baseline: Scores,
    *,
    preset: str | ScorePreset = "tokencut",
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    tie_tol: float = 1e-3,
) -> dict[str, PairedComparison]:
    """Paired comparison of ``candidate`` with ``baseline`` (same items), per :data:`QUALITY_METRICS`.

    Max F follows ``preset``'s aggregation: the max of the mean F curves, or (SelfMask, FOUND) the mean
    of each image's own max. Where a metric is defined on every item, each side's value is the one
    ``score`` prints (:meth:`Scores.summary`); else the bootstrap's mean over the defined pairs.

    Parameters
    ----------
    candidate : Scores
        Scores of the candidate.
    baseline : Scores
        Scores of the baseline on the same items, in the same order.
    preset : str or ScorePreset, default "tokencut"
        Score preset whose aggregation rules apply.
    n_resamples : int, default 2000
        Bootstrap resamples, from :func:`~maskrefine.quality.stats.min_resamples` of ``confidence`` (40
        at 0.95: each tail of the interval holds at least one resample) to 100000.
    confidence : float, default 0.95
        Coverage of the bootstrap interval, in (0, 1).
    seed : int, default 0
        Seed of the bootstrap draws (>= 0).
    tie_tol : float, default 1e-3
        A per-item difference of at most this is a tie.

    Returns
    -------
    dict of str to PairedComparison
        One comparison per metric of :data:`QUALITY_METRICS` (``acc``, ``iou``, ``max_fbeta``).

    Raises
    ------
    ValueError, TypeError
        An unknown preset, scores of different shapes, or a setting out of range or of the wrong type
        (see :func:`~maskrefine.quality.stats.compare_paired`).
    """
    p = get_preset(preset)
    for name, scores in (("candidate", candidate), ("baseline", baseline)):
        if not isinstance(scores, Scores):
            raise TypeError(f"{name} must be Scores, got {short_repr(scores)}")
        scores.check(name, p)
    after, before = candidate.summary(p), baseline.summary(p)
    out = {}
    for metric, statistic in QUALITY_METRICS.items():
        values = getattr(candidate, metric) if metric != "max_fbeta" else candidate.fbeta
        base = getattr(baseline, metric) if metric != "max_fbeta" else baseline.fbeta
        if metric == "max_fbeta":
            statistic = max_fbeta_statistic(p)
            if statistic == "mean":  # each image's own best F
                values, base = values.max(axis=1).astype(np.float64), base.max(axis=1).astype(np.float64)
        comparison = compare_paired(
            values,
            base,
            metric=metric,
            statistic=statistic,
            n_resamples=n_resamples,
            confidence=confidence,
            seed=seed,
            tie_tol=tie_tol,
        )
        if comparison.n == len(candidate.acc):  # every pair defined: each side as `score` prints it
            comparison = comparison.with_dataset_values(before[metric], after[metric])
        out[metric] = comparison
    return out
