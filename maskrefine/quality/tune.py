"""``maskrefine tune``: find the best refiner setting for *your* masks on a small labelled subset.

:func:`tune` pairs coarse masks, images and ground truth by file stem, then searches coarse to fine
(:mod:`maskrefine.quality.search`): the coarse grid, then the neighbours of the three best settings. Every
candidate is compared with naive upsampling (nearest for binary masks, bilinear for soft ones) on the same
images: mean change of IoU with a paired bootstrap 95 % interval, wins/ties/losses. The ranking is by the
mean IoU change; the winner is the first row (naive upsampling itself when nothing beats it).

* Deterministic: the grid, the order and the bootstrap seed are fixed; ``jobs`` does not change results.
* Resumable: scores are cached per candidate in ``cache_dir``; a rerun after an interruption only scores
  what is missing.
* ``budget_s``: once the wall time passes it, no further batch of candidates is started (the report says
  the search was cut short; the rows scored so far are ranked).
* A warning is raised in the report when the subset is too small for its differences to mean much: the
  winner's interval reaches 0 (it overlaps the naive row), or fewer than 20 images were scored.
* The winner's change and interval come from the same images it was picked on: optimistic (on SOD soft
  x16 masks, 17-29 % too high on average with 20 images, and on some subsets the winner is worse than
  naive upsampling on the other images; ``bench/tune_optimism.py``); confirm it on other images
  (``maskrefine score --baseline``).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from maskrefine._checks import check_int_range, check_window_fits, short_list, short_repr
from maskrefine.errors import ConfigError, InputError, NothingScoredError
from maskrefine.io import IMAGE_EXTENSIONS, MASK_EXTENSIONS
from maskrefine.io.imageio import read_image_size, read_mask_array
from maskrefine.io.pairs import match_folders, subfolder_notes, unpaired_hints
from maskrefine.metrics import PRESETS, get_preset
from maskrefine.pipeline.guards import (
    check_folder,
    check_jobs,
    check_output_folder,
    file_path_argument,
    path_argument,
)
from maskrefine.pipeline.reports import Unmatched, duplicates_in, not_regular_in
from maskrefine.pipeline.reports import report_file as with_its_folders
from maskrefine.quality.compare import unmatched_of_three
from maskrefine.quality.grid import Candidate, Item, Scores, compare_to, evaluate, naive_candidate
from maskrefine.quality.search import (
    ScoreCache,
    coarse_grid,
    neighbours,
    rank,
    searchable_methods,
    unique_by_label,
)
from maskrefine.quality.stats import MIN_IMAGES, PairedComparison, images_were

__all__ = ["TuneRow", "TuneReport", "tune", "tune_to_file", "parse_budget", "MIN_IMAGES"]

_BATCH = 12


@dataclass(frozen=True, slots=True)
class TuneRow:
    """One ranked candidate: its setting, dataset values and paired changes against naive upsampling."""

    candidate: Candidate
    summary: dict[str, float]
    change: dict[str, PairedComparison]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "candidate": self.candidate.label,
            "spec": self.candidate.to_dict(),
            "summary": {k: (v if math.isfinite(v) else None) for k, v in self.summary.items()},
            "change": {k: v.to_dict() for k, v in self.change.items()},
        }


@dataclass(slots=True)
class TuneReport:
    """Result of :func:`tune`: ranked rows (best first), the winner, warnings and bookkeeping.

    ``unmatched`` names the files without a partner in one of the other two folders; ``unmatched_files``
    the files listed, each with its folder (``"masks"``, ``"images"``, ``"gt"``): the files not read first
    (another format, e.g. a JPEG mask; with the reason), then those of ``unmatched``.
    """

    rows: list[TuneRow]
    naive: Candidate
    binary: bool
    n_images: int
    scored: int
    truncated: bool
    warnings: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    duplicates: dict[str, list[str]] = field(default_factory=dict)
    elapsed: float = 0.0
    unmatched_files: list[Unmatched] = field(default_factory=list)

    @property
    def winner(self) -> Candidate:
        """The best candidate (naive upsampling when nothing beat it)."""
        return self.rows[0].candidate if self.rows else self.naive

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "winner": self.winner.to_dict(),
            "winner_label": self.winner.label,
            "naive": self.naive.label,
            "binary": self.binary,
            "n_images": self.n_images,
            "candidates_scored": self.scored,
            "truncated_by_budget": self.truncated,
            "warnings": list(self.warnings),
            "failures": [{"item": k, "problem": p} for k, p in self.failures],
            "unmatched": list(self.unmatched),
            "not_read": [item.to_dict() for item in self.unmatched_files if item.reason],
            "duplicates": {stem: list(paths) for stem, paths in self.duplicates.items()},
            "elapsed_s": round(self.elapsed, 3),
            "rows": [row.to_dict() for row in self.rows],
        }


def _triples(
    masks_dir: Path, images_dir: Path, gt_dir: Path
) -> tuple[list[Item], list[Unmatched], list[tuple[str, str]], dict[str, list[Path]]]:
    """Return the items with a mask, an image and a GT, and what was left out.

    Also: the files without a partner or not read (an image or a GT without a mask too), the entries
    that are not files, and the stems with several files in one folder (left out, as ``apply`` and
    ``score`` leave them out).
    """
    with_images = match_folders(masks_dir, images_dir, MASK_EXTENSIONS, IMAGE_EXTENSIONS)
    with_gt = match_folders(masks_dir, gt_dir, MASK_EXTENSIONS, MASK_EXTENSIONS)
    not_files = [(str(f.path), f"{f.path}: {f.problem}") for f in not_regular_in(with_images, with_gt)]
    duplicates = duplicates_in(with_images, with_gt)
    gt_by_stem = {pair.stem: pair.second for pair in with_gt.pairs}
    items = [
        Item(pair.stem, pair.second, pair.first, gt_by_stem[pair.stem])
        for pair in with_images.pairs
        if pair.stem in gt_by_stem
    ]
    matched = {item.key for item in items}
    unmatched = unmatched_of_three(with_images, with_gt, ("masks", "images", "gt"), matched, duplicates)
    return items, unmatched, not_files, duplicates


def _image_sizes(items: Sequence[Item]) -> set[tuple[int, int]]:
    """Return the distinct (height, width) of the items' images, from their headers (unreadable: skipped)."""
    sizes = set()
    for item in items:
        try:
            sizes.add(read_image_size(item.image))
        except InputError:
            continue  # named when the item is scored
    return sizes


def _fits(candidate: Candidate, sizes: set[tuple[int, int]]) -> bool:
    """Whether the candidate's filter window fits every image size.

    A setting that cannot run on some image cannot be the preset for this data, and would drop that
    image from every candidate's scores.
    """
    params = candidate.param_dict
    if "radius" not in params:
        return True
    try:
        for height, width in sizes:
            check_window_fits(height, width, int(params["radius"]), int(params.get("subsample", 1)))
    except ValueError:
        return False
    return True


def _masks_are_binary(items: Sequence[Item]) -> bool:
    """Binary when most masks hold at most two distinct values (unreadable masks are skipped here)."""
    votes = []
    for item in items:
        try:
            votes.append(np.unique(read_mask_array(item.mask)).size <= 2)
        except Exception:  # noqa: BLE001 - evaluate() reports the file
            continue
    return bool(votes) and sum(votes) * 2 > len(votes)


def tune(
    masks_dir: str | os.PathLike[str],
    images_dir: str | os.PathLike[str],
    gt_dir: str | os.PathLike[str],
    *,
    methods: Sequence[str] | None = None,
    budget_s: float | None = None,
    jobs: int | None = 1,
    cache_dir: str | os.PathLike[str] | None = None,
    preset: str = "tokencut",
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> TuneReport:
    """Search refiner settings for the masks of ``masks_dir`` (see the module notes).

    Parameters
    ----------
    masks_dir, images_dir, gt_dir : path-like
        Coarse masks (any size that is a uniform downscale of the image), images and ground truth,
        paired by file stem; stems missing from a folder are listed in ``unmatched``.
    methods : sequence of str, optional
        Refiners to search (default: all registered but ``auto``); ``identity`` is always included.
    budget_s : float, optional
        Wall-time budget in seconds (checked between batches of candidates).
    jobs : int, optional
        Worker processes (None: one per core).
    cache_dir : path-like, optional
        Where scores are cached for resuming (default: no cache).
    preset : str
        Score preset.
    seed : int
        Bootstrap seed.
    progress : callable, optional
        ``progress(message)`` after each batch.

    Returns
    -------
    TuneReport

    Raises
    ------
    ConfigError
        Missing folders, unknown method, bad budget (and see below).
    NothingScoredError
        No matched triple (``failures`` empty; its ``unmatched`` lists the files without a partner or not
        read, and the message says why when a folder holds only subfolders or names differ only in
        Unicode normalisation), or every matched triple failed (its ``failures`` name each file and
        problem): a data problem, exit 1 in the CLI as for ``apply`` and ``score``.

    ``ConfigError`` also covers a bad ``jobs``, ``methods``, ``preset``, ``seed``, ``progress`` or
    ``cache_dir`` (empty, not a folder, or in or around an input folder); all are checked before any work.
    """
    start = time.perf_counter()
    masks = check_folder(masks_dir, "masks")
    images = check_folder(images_dir, "images")
    gts = check_folder(gt_dir, "ground-truth")
    # every setting up front, before any image is read or scored (a rerun served from the cache
    # evaluates nothing, and must refuse them all the same)
    jobs = check_jobs(jobs)
    if budget_s is not None and (
        isinstance(budget_s, bool) or not isinstance(budget_s, (int, float)) or not budget_s > 0
    ):
        raise ConfigError(f"budget must be a positive number of seconds; got {short_repr(budget_s)}")
    if methods is not None:
        if isinstance(methods, str) or not isinstance(methods, Sequence):
            raise ConfigError(f"methods must be a list of method names or None; got {short_repr(methods)}")
        unknown = [m for m in methods if not isinstance(m, str) or m not in searchable_methods()]
        if unknown:
            raise ConfigError(
                f"unknown method(s) {short_list(unknown)}; choose from {', '.join(searchable_methods())}"
            )
    if not isinstance(preset, str) or preset not in PRESETS:
        raise ConfigError(f"preset must be one of {', '.join(PRESETS)}; got {short_repr(preset)}")
    try:
        check_int_range(seed, "seed", 0)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    if progress is not None and not callable(progress):
        raise ConfigError(
            f"progress must be a callable progress(message) or None; got {type(progress).__name__}"
        )
    if cache_dir is not None:  # written: never an input folder (nor inside one), never "" for "."
        cache_dir = path_argument(cache_dir, "cache_dir")
        if cache_dir.is_symlink() or (cache_dir.exists() and not cache_dir.is_dir()):
            raise ConfigError(
                f"cache folder {cache_dir} exists and is not a folder (or is a symlink); remove it"
            )
        check_output_folder(cache_dir, {"masks": masks, "images": images, "ground-truth": gts})
    items, unmatched, not_files, duplicates = _triples(masks, images, gts)
    if not items:
        folders = [
            (masks, "masks", "--masks (masks_dir)"),
            (images, "images", "--images (images_dir)"),
            (gts, "gt", "--gt (gt_dir)"),
        ]
        notes = subfolder_notes(unmatched, folders)  # listed once, for the message raised now
        hints = unpaired_hints(unmatched, [role for _, role, _ in folders], notes, through="masks")
        raise NothingScoredError(
            f"no mask in {masks} has both an image in {images} and a ground truth in {gts}"
            + "".join(f"; {hint}" for hint in hints),
            [],
            unmatched=unmatched,
        )
    binary = _masks_are_binary(items)
    naive = naive_candidate(binary)
    cache = ScoreCache(cache_dir, preset) if cache_dir is not None else None
    if cache is not None:  # left by a run killed while it stored an entry
        cache.remove_stale_temps()
    fingerprint = ScoreCache.fingerprint(items) if cache is not None else ""  # reads every file
    scores: dict[Candidate, Scores] = {}
    failures: list[tuple[str, str]] = []
    keys: list[str] | None = None
    truncated = False

    def out_of_time() -> bool:
        return budget_s is not None and time.perf_counter() - start > budget_s

    def adopt(candidate: Candidate, value: Scores, value_keys: Sequence[str]) -> None:
        """Keep ``value``, every candidate's scores restricted to the items scored for all (paired).

        An item that failed for one batch's settings leaves every candidate's scores.
        """
        nonlocal keys
        present = set(value_keys)
        if keys is None:
            keys = list(value_keys)
        elif not present.issuperset(keys):
            common = [k for k in keys if k in present]
            position = {k: i for i, k in enumerate(keys)}
            for known in list(scores):
                scores[known] = scores[known].subset([position[k] for k in common])
            keys = common
        position = {k: i for i, k in enumerate(value_keys)}
        scores[candidate] = value.subset([position[k] for k in keys])

    def record_failures(found: Sequence[tuple[str, str]]) -> None:
        known = {key for key, _ in failures}
        failures.extend(f for f in found if f[0] not in known)

    def run(candidates: Sequence[Candidate], stage: str) -> None:
        nonlocal truncated
        todo = [c for c in dict.fromkeys(candidates) if c not in scores]
        for begin in range(0, len(todo), _BATCH):
            if scores and out_of_time():
                truncated = True
                return
            batch = todo[begin : begin + _BATCH]
            missing = []
            for candidate in batch:
                hit = cache.get_entry(candidate, fingerprint) if cache is not None else None
                if hit is not None and hit[1] is not None and len(hit[1]) == len(hit[0].acc):
                    adopt(candidate, hit[0], hit[1])
                    record_failures(hit[2])  # a rerun from the cache names the same failed files
                else:
                    missing.append(candidate)
            if missing or keys is None:
                result = evaluate(missing or [naive], items, preset=preset, jobs=jobs)
                record_failures(result.failures)
                for candidate, value in result.scores.items():
                    if cache is not None:
                        cache.put(candidate, fingerprint, value, result.keys, result.failures)
                    adopt(candidate, value, result.keys)
            if progress is not None:
                progress(f"{stage}: {min(begin + _BATCH, len(todo))}/{len(todo)} candidates")

    sizes = _image_sizes(items)
    full_grid = coarse_grid(binary, methods=methods)
    grid = [naive, *(c for c in full_grid if _fits(c, sizes))]
    run(grid, "coarse grid")
    if not keys:
        raise NothingScoredError(f"none of the {len(items)} masks could be scored (each failed)", failures)
    if not np.isfinite(scores[naive].iou).any():
        # IoU is 0/0 where the GT and the mask are both empty: nothing could be ranked (any order would
        # be arbitrary), and a preset chosen that way must not be written
        raise ConfigError(
            f"the IoU of naive upsampling is undefined on all {len(keys)} images (ground truth and mask "
            "both empty): no setting can be ranked; use images whose ground truth has a foreground"
        )
    ranked = rank({"data": scores}, [c for c in grid if c in scores], naive, worse_limit=None)
    top = [row.candidate for row in ranked if row.candidate.method != "identity"][:3]
    if not truncated:
        known = {c.label for c in scores}
        fine = [
            n for c in top for n in neighbours(c, methods=methods) if n.label not in known and _fits(n, sizes)
        ]
        run(unique_by_label(fine), "fine grid")
    ranked = rank({"data": scores}, list(scores), naive, worse_limit=None)
    rows = []
    for row in ranked:
        rows.append(
            TuneRow(
                row.candidate,
                scores[row.candidate].summary(preset),
                compare_to(scores[row.candidate], scores[naive], preset=preset, seed=seed),
            )
        )
    report = TuneReport(
        rows=rows,
        naive=naive,
        binary=binary,
        n_images=len(keys),
        scored=len(scores),
        truncated=truncated,
        failures=not_files + list(failures),  # FIFOs, folders, dangling links: named, never opened
        unmatched=[str(item.path) for item in unmatched if not item.reason],
        duplicates={stem: [str(path) for path in paths] for stem, paths in duplicates.items()},
        unmatched_files=unmatched,
    )
    best = rows[0]
    iou = best.change["iou"]
    if best.candidate == naive:
        report.warnings.append(
            "no setting beat naive upsampling on these images; the preset keeps naive upsampling"
        )
    elif not (iou.low > 0):
        report.warnings.append(
            f"the winner's IoU interval [{iou.low:+.4f}, {iou.high:+.4f}] reaches 0 "
            "(overlaps naive upsampling): "
            f"the subset of {len(keys)} images is too small, or the gain too small, to be sure it helps"
        )
    if len(grid) < len(full_grid) + 1:
        smallest = min(sizes, key=min)
        report.warnings.append(
            f"{len(full_grid) + 1 - len(grid)} settings of the grid were left out: their filter window is "
            f"larger than the smallest image ({smallest[0]}x{smallest[1]}, HxW)"
        )
    undefined = int(np.count_nonzero(~np.isfinite(scores[best.candidate].iou)))
    if undefined and get_preset(preset).iou_empty_union == "nan":
        report.warnings.append(
            f"the winner's IoU is undefined on {undefined} of {len(keys)} images (ground truth and mask both "
            f"empty): its IoU here is the mean over the other {len(keys) - undefined}, where `score --preset "
            f"{preset}` prints nan for the dataset"
        )
    if len(keys) < MIN_IMAGES:
        report.warnings.append(
            f"only {images_were(len(keys))} scored; use at least {MIN_IMAGES} for a reliable choice"
            + ("; with one image the interval has no width and means nothing" if len(keys) == 1 else "")
        )
    if truncated:
        report.warnings.append(f"the budget of {budget_s:g} s ran out: {len(scores)} candidates were scored")
    report.elapsed = time.perf_counter() - start
    return report


def parse_budget(text: object) -> float | None:
    """``"90"``, ``"90s"``, ``"5m"``, ``"1h"`` -> seconds; ``None`` -> None (no budget).

    Raises
    ------
    ConfigError
        Anything else (an empty text, digits other than ASCII), or a budget that is not positive and
        finite.
    """
    if text is None:
        return None
    if not isinstance(text, str):
        raise ConfigError(f"budget must be text such as '90s', '5m' or '1h'; got {short_repr(text)}")
    if text == "":  # a value lost in a script: never silently "no budget"
        raise ConfigError("budget is empty; give a time such as '90s', '5m' or '1h', or leave it out")
    if not text.isascii():  # float() reads other scripts' digits ('١٢' is 12)
        raise ConfigError(f"budget must be written with ASCII digits; got {short_repr(text)}")
    value = text.strip().lower()
    scale = {"s": 1.0, "m": 60.0, "h": 3600.0}.get(value[-1:], None)
    number = value[:-1] if scale else value
    try:
        seconds = float(number) * (scale or 1.0)
    except ValueError:
        raise ConfigError(
            f"budget must be a number of seconds or '5m' / '1h' style; got {short_repr(text)}"
        ) from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"budget must be positive and finite; got {short_repr(text)}")
    return seconds


def tune_to_file(
    masks_dir: str | os.PathLike[str],
    images_dir: str | os.PathLike[str],
    gt_dir: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    methods: Sequence[str] | None = None,
    budget: str | None = None,
    jobs: int | None = None,
    preset: str = "tokencut",
    overwrite: bool = False,
    report_path: str | os.PathLike[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> TuneReport:
    """:func:`tune`, then write the winner to ``out_path`` as a preset file (``maskrefine tune``).

    ``out_path`` and ``report_path`` are checked before any work: not empty, not a symlink, FIFO or
    folder, not inside an input folder, not the same file; ``out_path`` not existing unless
    ``overwrite`` (an existing report file is replaced when maskrefine wrote it, or with ``overwrite``, as
    for the other commands' ``--report``). Scores are
    cached in ``<out_path>.tune-cache/`` (a rerun resumes from it).

    Raises
    ------
    ConfigError
        As :func:`tune`, plus unsafe output paths and a bad ``budget`` text.
    """
    from maskrefine.io.imageio import write_text_atomic
    from maskrefine.pipeline.guards import (
        REPLACE_HOW,
        check_can_write_in,
        check_output_file,
        check_report_replaceable,
        check_report_still_replaceable,
        job_flags,
    )
    from maskrefine.quality.preset_file import check_preset_output, write_preset_file

    (overwrite,) = job_flags(overwrite=overwrite)
    inputs = {
        "masks": check_folder(masks_dir, "masks"),
        "images": check_folder(images_dir, "images"),
        "ground-truth": check_folder(gt_dir, "ground-truth"),
    }
    out = check_preset_output(out_path, "preset file (--out)", overwrite=overwrite)
    taken = {"preset file": check_output_file(out, "preset file (--out)", inputs)}
    cache_dir = out.with_name(out.name + ".tune-cache")
    report_file = None
    if report_path is not None:
        # a single file asked for: an existing regular file is replaced, and missing folders above it are
        # created when it is written (after the run: nothing is made before the checks pass), as for
        # `apply --report`
        report_file = file_path_argument(report_path, "report file")
        if report_file.parent.is_dir():
            report_file = check_preset_output(report_file, "report file", overwrite=True)
        # nor the score cache folder (made by the run) or a file in it
        check_output_file(report_file, "report file", {**inputs, "score cache": cache_dir}, taken=taken)
        check_report_replaceable(report_file, "report file", overwrite=overwrite, how=REPLACE_HOW)
    budget_s = parse_budget(budget)
    check_can_write_in(out, "preset file (--out)")  # before the long run, not when writing its result
    if report_file is not None and report_file.parent.is_dir():  # a missing folder is made at the end
        check_can_write_in(report_file, "report file")
    cache_is_new = not cache_dir.exists()  # tune checks the cache folder and its settings before any work
    try:
        report = tune(
            masks_dir,
            images_dir,
            gt_dir,
            methods=methods,
            budget_s=budget_s,
            jobs=jobs,
            cache_dir=cache_dir,
            preset=preset,
            progress=progress,
        )
    except (NothingScoredError, ConfigError):  # nothing to choose from: a new cache is no use either
        if cache_is_new and isinstance(preset, str) and preset in PRESETS:
            ScoreCache(cache_dir, preset).remove()
        raise
    best = report.rows[0]
    iou = best.change["iou"]
    info = {
        "images": report.n_images,
        "score_preset": preset,
        "iou": best.summary["iou"],
        "iou_change_vs_naive": iou.change,
        "iou_change_low": iou.low,
        "iou_change_high": iou.high,
        # the change and its interval: over the images where IoU is defined on both sides, the same
        # images the winner was chosen on (in-sample: optimistic for new images)
        "iou_change_images": iou.n,
        "iou_change_in_sample": True,
        "naive": report.naive.label,
        "candidates_scored": report.scored,
        "truncated_by_budget": report.truncated,
    }
    info = {k: v for k, v in info.items() if not (isinstance(v, float) and not math.isfinite(v))}
    write_preset_file(out, report.winner, info=info, overwrite=overwrite)
    if report_file is not None:
        import json

        check_report_still_replaceable(report_file, overwrite=overwrite)  # appeared meanwhile: kept
        write_text_atomic(
            with_its_folders(report_file, "report file"),
            json.dumps(report.to_dict(), indent=2, allow_nan=False, default=str) + "\n",
        )
    return report
