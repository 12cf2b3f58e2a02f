"""``maskrefine score --baseline``: did refinement help on *these* images? A paired, per-image answer.

:func:`compare_folders` scores the refined masks (``pred_dir``) and the unrefined ones (``baseline_dir``)
against the same ground truth, pairs them by file stem, and reports per metric the mean change with a
paired bootstrap 95 % interval, wins/ties/losses, and the images that lost most IoU. Metrics: Acc and IoU
(mean over images), max F-beta (as the preset aggregates it: the max of the image-averaged F curve, or
the mean of each image's max under ``selfmask``/``found``), MAE and S-measure (means; lower MAE is
better). When every pair is defined, each side's value is the one ``maskrefine score`` prints for that
folder (the preset's float32 sums included); the change's interval is a float64 bootstrap. A prediction
of another size than its GT is resized by the preset's rule, as ``maskrefine score`` does, so coarse
baselines can be compared with refined masks.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from maskrefine._checks import check_int_range, short_repr
from maskrefine.errors import ConfigError, InputError
from maskrefine.io import DEFAULT_MAX_PIXELS, MASK_EXTENSIONS
from maskrefine.io.imageio import ReadOptions, write_text_atomic
from maskrefine.io.pairs import Pairing, match_folders, subfolder_notes, unpaired_hints, unread_reason
from maskrefine.metrics import PRESETS, get_preset
from maskrefine.metrics.evaluator import Evaluator, score_image
from maskrefine.pipeline.guards import (
    REPLACE_HOW,
    check_folder,
    check_jobs,
    check_output_file,
    check_output_folder,
    check_output_targets,
    check_progress,
    check_report_replaceable,
    file_path_argument,
    job_flags,
    path_argument,
    resolved_path,
)
from maskrefine.pipeline.reports import (
    Unmatched,
    duplicates_in,
    not_regular_in,
    report_file,
    write_json_report,
    write_table_and_summary,
)
from maskrefine.quality.grid import max_fbeta_statistic
from maskrefine.quality.preset_file import check_replaceable
from maskrefine.quality.stats import (
    DEFAULT_CONFIDENCE,
    MIN_IMAGES,
    PairedComparison,
    Statistic,
    check_resamples,
    compare_paired,
    images_were,
)

__all__ = ["PAIRED_METRICS", "PairedScoreReport", "compare_folders", "SCATTER_FILE"]

#: metric -> (statistic, higher is better)
PAIRED_METRICS: dict[str, tuple[Statistic, bool]] = {
    "acc": ("mean", True),
    "iou": ("mean", True),
    "max_fbeta": ("max_of_mean", True),
    "mae": ("mean", False),
    "s_measure": ("mean", True),
}
#: File written into the plot folder.
SCATTER_FILE = "paired_iou.png"
#: The input folders of a paired report: (key of its ``config``, role, option); the others are paired
#: with the first.
_FOLDERS = (
    ("pred_dir", "predictions", "--pred (pred_dir)"),
    ("baseline_dir", "baseline", "--baseline (baseline_dir)"),
    ("gt_dir", "gt", "--gt (gt_dir)"),
)


@dataclass(slots=True)
class PairedScoreReport:
    """Result of :func:`compare_folders`.

    Attributes
    ----------
    comparisons : dict of str to PairedComparison
        Per metric (see :data:`PAIRED_METRICS`), refined vs baseline.
    rows : list of dict
        Per image: ``stem`` and ``<metric>_baseline``, ``<metric>_refined``, ``<metric>_change``.
    worst : list of dict
        The images that lost most IoU (at most ``worst`` of them, only those that lost).
    failures : list of (path, problem)
        Files that could not be scored (the stem is then left out on both sides).
    unmatched : list of str
        Files without a partner in one of the other two folders.
    unmatched_files : list of Unmatched
        The files listed when some lack a partner, each with its folder (``"predictions"``,
        ``"baseline"``, ``"gt"``): the files not read first (another format, e.g. a JPEG mask; with the
        reason, as ``score`` lists them), then those of ``unmatched``.
    duplicates : dict of str to list of str
        Stems with several files in one folder (e.g. ``a.png`` and ``a.npy``), left out as ``score``
        leaves them out.
    folder_notes : list of str or None
        What :attr:`nothing_scored` says of the input folders that hold only subfolders
        (:func:`~maskrefine.io.pairs.subfolder_notes`). None (default): made when the report is built, as
        :func:`compare_folders` does when it ends, from ``config``'s ``pred_dir``, ``baseline_dir`` and
        ``gt_dir`` (listed then, when nothing was compared, and never again).
    """

    comparisons: dict[str, PairedComparison] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    worst: list[dict[str, Any]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    duplicates: dict[str, list[str]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0
    plots: list[Path] = field(default_factory=list)
    unmatched_files: list[Unmatched] = field(default_factory=list)
    folder_notes: list[str] | None = None

    def __post_init__(self) -> None:
        """Make :attr:`folder_notes` when not given (the input folders are listed now, once)."""
        if self.folder_notes is None:
            self.folder_notes = []
            if not self.rows and not self.failures and isinstance(self.config, Mapping):
                folders = [(self.config.get(key), role, option) for key, role, option in _FOLDERS]
                self.folder_notes = subfolder_notes(self.unmatched_files, folders)

    @property
    def nothing_scored(self) -> str | None:
        """Why no image was compared, or None when at least one was."""
        if self.rows:
            return None
        if self.failures:
            return f"every pair failed ({len(self.failures)} failure(s))"
        roles = [role for _, role, _ in _FOLDERS]
        hints = unpaired_hints(self.unmatched_files, roles, self.folder_notes or (), through=roles[0])
        if self.unmatched or self.unmatched_files:
            return "no prediction has a baseline mask and a ground-truth mask with the same stem" + "".join(
                f"; {hint}" for hint in hints
            )
        return "no masks found in the three folders" + (f": {'; '.join(hints)}" if hints else "")

    @property
    def warnings(self) -> list[str]:
        """Why the comparison should not be trusted as it stands (empty when nothing is wrong).

        Fewer than :data:`maskrefine.quality.stats.MIN_IMAGES` compared images: a bootstrap interval
        from so few pairs is too narrow (with 2 images a change of 0 is called better or worse about half
        of the time).
        """
        if 0 < len(self.rows) < MIN_IMAGES:
            return [
                f"only {images_were(len(self.rows))} compared: intervals and verdicts from fewer than "
                f"{MIN_IMAGES} images are unreliable (they often call a change that is not there)"
            ]
        return []

    @property
    def ok(self) -> bool:
        """True when no file failed and at least one image was compared."""
        return not self.failures and self.nothing_scored is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN as null); ``error`` says why when nothing was compared."""
        nothing = self.nothing_scored
        return _jsonable(
            {
                **({"error": f"nothing was scored: {nothing}"} if nothing is not None else {}),
                "comparisons": {k: v.to_dict() for k, v in self.comparisons.items()},
                "worst": self.worst,
                "count": len(self.rows),
                "ok": self.ok,
                "warnings": self.warnings,
                "failed": [{"path": p, "problem": m} for p, m in self.failures],
                "unmatched": self.unmatched,
                "not_read": [item.to_dict() for item in self.unmatched_files if item.reason],
                "duplicates": self.duplicates,
                "config": self.config,
                "elapsed_s": round(self.elapsed, 6),
                "plots": [str(p) for p in self.plots],
            }
        )

    def write_json(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` as JSON atomically (parent folders created, as ``score --json``).

        Raises ``ConfigError`` for a path that is empty, not a path, holds a NUL or ends with a separator,
        and ``OutputError`` (naming the path) when a parent folder cannot be created or writing fails.
        """
        return write_json_report(report_file(path, "JSON path"), self.to_dict())

    def write_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write the per-image rows as CSV atomically (folders created; raises as :meth:`write_json`)."""
        from maskrefine.pipeline.reports import rows_to_csv

        return write_text_atomic(report_file(path, "CSV path"), rows_to_csv(self.rows) if self.rows else "")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def unmatched_of_three(
    with_second: Pairing,
    with_third: Pairing,
    roles: tuple[str, str, str],
    matched: set[str],
    duplicates: Mapping[str, Sequence[Path]],
) -> list[Unmatched]:
    """List the files of three folders paired through the first one that are left out.

    ``with_second`` and ``with_third`` pair the first folder with each other one; ``matched`` holds the
    stems with a file in all three folders. First the files not read (another format, with the reason),
    then the files without a partner: a file of the second or third folder without one in the first, and
    a file of the first without one in the second or third. A partner of a file not read is not listed
    (the file not read is the problem), nor a duplicated stem's files (named with the duplicates). Used
    by ``score --baseline`` and ``tune``.
    """
    not_read: dict[Path, Unmatched] = {}
    for pairing, second in ((with_second, roles[1]), (with_third, roles[2])):
        for paths, role, extensions in (
            (pairing.unread_first, roles[0], pairing.first_extensions),
            (pairing.unread_second, second, pairing.second_extensions),
        ):
            for path in paths:
                not_read.setdefault(path, Unmatched(path, role, unread_reason(extensions)))
    # a partner of a file not read: match_folders leaves it out of only_first / only_second, and so here
    unread_elsewhere = {item.path.stem for item in not_read.values() if item.folder != roles[0]}
    alone: dict[Path, str] = {}
    for pairing, second in ((with_second, roles[1]), (with_third, roles[2])):
        alone.update({path: roles[0] for path in pairing.only_first})
        alone.update({path: second for path in pairing.only_second})
        alone.update(
            {
                pair.first: roles[0]
                for pair in pairing.pairs
                if pair.stem not in matched and pair.stem not in unread_elsewhere
            }
        )
    unread = sorted(not_read.values(), key=lambda item: str(item.path))
    return unread + [
        Unmatched(path, role)
        for path, role in sorted(alone.items(), key=lambda item: str(item[0]))
        if path.stem not in duplicates
    ]


def _score(
    path: Path, gt: np.ndarray, preset: Any, read: ReadOptions
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    return score_image(read.mask(path).pixels, gt, preset, weighted_f=False)


def compare_folders(
    pred_dir: str | os.PathLike[str],
    baseline_dir: str | os.PathLike[str],
    gt_dir: str | os.PathLike[str],
    *,
    preset: str = "tokencut",
    n_resamples: int = 2000,
    seed: int = 0,
    worst: int = 5,
    csv_path: str | os.PathLike[str] | None = None,
    json_path: str | os.PathLike[str] | None = None,
    plot_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    mask_scale: str | int = "auto",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    overwrite: bool = False,
    jobs: int | None = None,
) -> PairedScoreReport:
    """Score ``pred_dir`` and ``baseline_dir`` against ``gt_dir`` and compare them image by image.

    Parameters
    ----------
    pred_dir, baseline_dir, gt_dir : path-like
        Refined masks, the masks before refinement, and the ground truth, paired by file stem.
    preset : str
        Score preset (see :data:`maskrefine.metrics.PRESETS`).
    n_resamples, seed : int
        Bootstrap settings (deterministic for a given seed). The intervals are 95 % ones, so
        ``n_resamples`` is at least 40 (each tail then holds at least one resample; see
        :func:`~maskrefine.quality.stats.min_resamples`) and at most
        :data:`~maskrefine.quality.stats.MAX_RESAMPLES`.
    worst : int
        How many of the images that lost most IoU to list.
    csv_path, json_path : path-like, optional
        Per-image rows (CSV) and the report (JSON), written atomically. An existing file there is
        replaced when it is a report or CSV maskrefine wrote, or empty, or with ``overwrite``.
    plot_dir : path-like, optional
        Write ``paired_iou.png`` there: per-image IoU before (x) and after (y). Needs matplotlib. An
        existing ``paired_iou.png`` is replaced only with ``overwrite``.
    progress : callable, optional
        ``progress(done, total)`` after each image.
    mask_scale : {"auto", "255", "1", "65535"}
        How the three folders' mask values are read (see :func:`maskrefine.io.read_mask_file`), as in
        :func:`maskrefine.score_folder`.
    max_pixels : int or None
        Largest accepted mask, checked from the file header before decoding (None: no limit).
    overwrite : bool, default False
        Replace an existing ``paired_iou.png`` in ``plot_dir``.
    jobs : int, optional
        Checked as ``score``'s (an integer in 1..1024, or None), so that a command line valid for
        ``score`` stays valid with ``--baseline``; the comparison itself runs in this process.

    Returns
    -------
    PairedScoreReport

    Raises
    ------
    ConfigError
        Missing folders, unknown preset, bad ``worst``, ``jobs``, ``n_resamples`` (not an integer in
        [40, 100000]), ``seed``, ``progress`` (not callable) or ``overwrite`` (not a bool), unsafe output
        paths (inside an input folder, two outputs on one path, a folder, a name ending in a separator),
        raised before any work.
    BackendUnavailableError
        ``plot_dir`` without matplotlib.
    """
    start = time.perf_counter()
    pred = check_folder(pred_dir, "predictions")
    base = check_folder(baseline_dir, "baseline")
    gts = check_folder(gt_dir, "ground-truth")
    inputs = {"predictions": pred, "baseline": base, "ground-truth": gts}
    if not isinstance(preset, str) or preset not in PRESETS:
        raise ConfigError(f"preset must be one of {', '.join(PRESETS)}; got {short_repr(preset)}")
    if isinstance(worst, bool) or not isinstance(worst, int) or worst < 0:
        raise ConfigError(f"worst must be an integer >= 0; got {short_repr(worst)}")
    check_jobs(jobs)
    check_progress(progress)
    (overwrite,) = job_flags(overwrite=overwrite)
    try:  # before any image is read, not after all of them are scored
        check_resamples(n_resamples, DEFAULT_CONFIDENCE)
        check_int_range(seed, "seed", 0)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    try:
        read = ReadOptions.checked(mask_scale, False, max_pixels)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    taken: dict[str, Path] = {}
    if plot_dir is not None:
        plot_file = path_argument(plot_dir, "plot folder") / SCATTER_FILE
        taken["plot file"] = resolved_path(plot_file, "plot file")
    for what, target in (("CSV file", csv_path), ("JSON file", json_path)):
        if target is not None:
            check_replaceable(target, what)
            target_path = file_path_argument(target, what)
            taken[what] = check_output_file(target_path, what, inputs, taken=taken)
            check_report_replaceable(target_path, what, overwrite=overwrite, how=REPLACE_HOW)
    if plot_dir is not None:
        from maskrefine.plots import require_matplotlib

        require_matplotlib()
        check_output_folder(Path(plot_dir), inputs)
        if check_output_targets([plot_file], Path(plot_dir)) and not overwrite:
            raise ConfigError(
                f"plot file {plot_file} already exists; use --overwrite to replace it or choose another "
                "--plot folder"
            )
    p = get_preset(preset)

    with_base = match_folders(pred, base, MASK_EXTENSIONS, MASK_EXTENSIONS)
    with_gt = match_folders(pred, gts, MASK_EXTENSIONS, MASK_EXTENSIONS)
    gt_by_stem = {pair.stem: pair.second for pair in with_gt.pairs}
    triples = [
        (pair.stem, pair.first, pair.second, gt_by_stem[pair.stem])
        for pair in with_base.pairs
        if pair.stem in gt_by_stem
    ]
    # FIFOs, folders, dangling links named like masks: named and skipped, as in score_folder
    failures = [(str(f.path), f.problem) for f in not_regular_in(with_base, with_gt)]
    duplicates = duplicates_in(with_base, with_gt)  # several files of one stem in a folder: left out
    unmatched_files = unmatched_of_three(
        with_base, with_gt, ("predictions", "baseline", "gt"), {t[0] for t in triples}, duplicates
    )
    stems: list[str] = []
    after: dict[str, list[float]] = {m: [] for m in PAIRED_METRICS}
    before: dict[str, list[float]] = {m: [] for m in PAIRED_METRICS}
    curves_after: list[np.ndarray] = []
    curves_before: list[np.ndarray] = []
    # what `maskrefine score` prints for each side: the point estimates when every pair is defined
    summary_after, summary_before = Evaluator(p, weighted_f=False), Evaluator(p, weighted_f=False)
    for done, (stem, pred_path, base_path, gt_path) in enumerate(triples, start=1):
        current = gt_path
        try:
            gt = read.mask(gt_path).pixels
            current = pred_path
            row_a, curves_a = _score(pred_path, gt, p, read)
            current = base_path
            row_b, curves_b = _score(base_path, gt, p, read)
        except InputError as exc:
            failures.append((str(exc.path), exc.problem))
        except (TypeError, ValueError) as exc:
            failures.append((str(current), f"cannot score: {exc}"))
        else:
            stems.append(stem)
            for metric in PAIRED_METRICS:  # max_fbeta: each image's own best F
                after[metric].append(row_a[metric])
                before[metric].append(row_b[metric])
            curves_after.append(curves_a["fbeta"])
            curves_before.append(curves_b["fbeta"])
            summary_after.add_scored(row_a, curves_a, stem)
            summary_before.add_scored(row_b, curves_b, stem)
        if progress is not None:
            progress(done, len(triples))

    comparisons = {}
    if stems:
        scored_after, scored_before = summary_after.summary(), summary_before.summary()
        for metric, (statistic, higher) in PAIRED_METRICS.items():
            if metric == "max_fbeta":
                statistic = max_fbeta_statistic(p)
            a = np.array(curves_after) if statistic == "max_of_mean" else np.array(after[metric])
            b = np.array(curves_before) if statistic == "max_of_mean" else np.array(before[metric])
            comparison = compare_paired(
                a,
                b,
                metric=metric,
                statistic=statistic,
                n_resamples=n_resamples,
                confidence=DEFAULT_CONFIDENCE,
                seed=seed,
                higher_is_better=higher,
            )
            if comparison.n == len(stems):  # every pair defined: the values `score` prints for each side
                comparison = comparison.with_dataset_values(scored_before[metric], scored_after[metric])
            comparisons[metric] = comparison
    rows = []
    for i, stem in enumerate(stems):
        row: dict[str, Any] = {"stem": stem}
        for metric in PAIRED_METRICS:
            row[f"{metric}_baseline"] = before[metric][i]
            row[f"{metric}_refined"] = after[metric][i]
            row[f"{metric}_change"] = after[metric][i] - before[metric][i]
        rows.append(row)
    losers = sorted(
        (r for r in rows if math.isfinite(r["iou_change"]) and r["iou_change"] < 0),
        key=lambda r: r["iou_change"],
    )
    worst_rows = [
        {
            "stem": r["stem"],
            "iou_baseline": r["iou_baseline"],
            "iou_refined": r["iou_refined"],
            "iou_change": r["iou_change"],
        }
        for r in losers[:worst]
    ]
    report = PairedScoreReport(
        comparisons=comparisons,
        rows=rows,
        worst=worst_rows,
        failures=failures,
        unmatched=[str(item.path) for item in unmatched_files if not item.reason],
        unmatched_files=unmatched_files,
        duplicates={stem: [str(path) for path in paths] for stem, paths in duplicates.items()},
        config={
            "pred_dir": str(pred),
            "baseline_dir": str(base),
            "gt_dir": str(gts),
            "preset": preset,
            "n_resamples": n_resamples,
            "seed": seed,
        },
    )
    if plot_dir is not None and rows:
        from maskrefine.quality.figures import plot_paired_scatter

        folder = Path(plot_dir)
        folder.mkdir(parents=True, exist_ok=True)
        report.plots.append(
            plot_paired_scatter(
                np.array(before["iou"]),
                np.array(after["iou"]),
                folder / SCATTER_FILE,
                title=f"per-image IoU ({preset}), {len(rows)} images",
            )
        )
    report.elapsed = time.perf_counter() - start
    write_table_and_summary(report, csv_path, json_path, overwrite=overwrite)
    return report
