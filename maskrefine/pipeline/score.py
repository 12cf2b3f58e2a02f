""":func:`score_folder`: score a folder of predictions against ground truth (and boxes)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maskrefine._units import to_unit_float
from maskrefine.errors import ConfigError, InputError
from maskrefine.io import IMAGE_EXTENSIONS, MASK_EXTENSIONS, match_folders, read_image, read_mask_array
from maskrefine.pipeline.guards import (
    check_folder,
    check_jobs,
    check_output_file,
    check_output_folder,
    in_shard,
    parse_shard,
)
from maskrefine.pipeline.reports import Failure, Progress, ScoreReport, unmatched_and_duplicates

__all__ = ["score_folder", "parse_box_spec", "check_box_source", "PLOT_FILES"]

#: Files :func:`score_folder` may write into ``plot_dir``.
PLOT_FILES: tuple[str, str] = ("pr_curve.png", "montage.png")


def parse_box_spec(boxes: str | None) -> tuple[str, Path | None] | None:
    """The form of ``boxes``: None, ``("masks", None)``, ``("voc", DIR)`` or ``("coco", FILE)``.

    Raises
    ------
    ConfigError
        Anything but ``"masks"``, ``"voc:DIR"`` or ``"coco:FILE"`` (the paths are not checked here;
        see :func:`check_box_source`).
    """
    if boxes is None:
        return None
    if boxes == "masks":
        return "masks", None
    kind, sep, rest = str(boxes).partition(":")
    if sep and kind in ("voc", "coco") and rest:
        return kind, Path(rest)
    raise ConfigError(f"boxes must be 'masks', 'voc:DIR' or 'coco:FILE'; got {boxes!r}")


def check_box_source(boxes: str | None) -> tuple[str, Path | None] | None:
    """:func:`parse_box_spec`, then check that the VOC folder / COCO file exists."""
    source = parse_box_spec(boxes)
    if source is None or source[1] is None:
        return source
    kind, path = source
    if kind == "voc" and not path.is_dir():
        raise ConfigError(f"boxes {boxes!r}: {path} is not a folder of VOC XML annotations")
    if kind == "coco" and not path.is_file():
        raise ConfigError(f"boxes {boxes!r}: {path} is not a COCO JSON file")
    return source


def _load_boxes(kind: str, path: Path | None) -> dict[str, np.ndarray] | None:
    if kind == "masks":
        return None
    from maskrefine import metrics

    try:
        if kind == "voc":
            return dict(metrics.read_voc_boxes(path))
        return dict(metrics.read_coco_boxes(path))
    except InputError as exc:
        raise ConfigError(f"cannot read ground-truth boxes: {exc}") from None


@dataclass(frozen=True, slots=True)
class _Loaded:
    stem: str
    pred_path: Path
    gt_path: Path
    pred: np.ndarray | None = None
    gt: np.ndarray | None = None
    failure: Failure | None = None


def _gt_for_evaluator(gt: np.ndarray) -> np.ndarray:
    if gt.dtype == np.uint16:  # the evaluator takes uint8 / bool / float GT
        return to_unit_float(gt)
    return gt


def _load_pair(stem: str, pred_path: Path, gt_path: Path) -> _Loaded:
    current = pred_path
    try:
        pred = read_mask_array(pred_path)
        current = gt_path
        gt = _gt_for_evaluator(read_mask_array(gt_path))
    except InputError as exc:
        return _Loaded(stem, pred_path, gt_path, failure=Failure(exc.path, exc.problem))
    except Exception as exc:  # noqa: BLE001 - one file must never end the run
        return _Loaded(
            stem, pred_path, gt_path, failure=Failure(current, f"unexpected {type(exc).__name__}: {exc}")
        )
    return _Loaded(stem, pred_path, gt_path, pred, gt)


def _split_summary(summary: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate scalar entries (for the JSON / table) from array-valued ones (curves, for plots)."""
    scalars: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    for key, value in summary.items():
        if key == "curves" and isinstance(value, Mapping):
            curves.update(value)
        elif (isinstance(value, np.ndarray) and value.ndim > 0) or isinstance(value, (list, tuple)):
            curves[key] = value
        else:
            scalars[key] = value.item() if isinstance(value, np.generic) else value
    return scalars, curves


def score_folder(
    pred_dir: str | Path,
    gt_dir: str | Path,
    *,
    preset: str = "tokencut",
    boxes: str | None = None,
    csv_path: str | Path | None = None,
    json_path: str | Path | None = None,
    plot_dir: str | Path | None = None,
    images_dir: str | Path | None = None,
    before_dir: str | Path | None = None,
    montage_count: int = 4,
    shard: tuple[int, int] | str | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
) -> ScoreReport:
    """Score the predictions of ``pred_dir`` against the ground truth of ``gt_dir``.

    Parameters
    ----------
    pred_dir : path-like
        Predicted masks (``.png`` 8/16-bit, ``.npy`` float in [0, 1]); read without rescaling
        (:func:`maskrefine.io.read_mask_array`) so 8-bit maps reach the evaluator unchanged. A
        prediction of another size than its GT is resized by the preset (never the GT).
    gt_dir : path-like
        Ground-truth masks, paired with the predictions by file stem.
    preset : str
        A key of :data:`maskrefine.metrics.PRESETS` (default ``"tokencut"``).
    boxes : {"masks", "voc:DIR", "coco:FILE"}, optional
        Also compute CorLoc on the predictions (default :class:`maskrefine.metrics.CorLocEvaluator`:
        largest box, 8-connectivity, prediction resized bilinearly to the GT size and binarised at 0.5),
        with GT boxes from the connected components of the GT masks, from VOC XML files, or from a COCO
        JSON file. A prediction whose stem has no annotation there is a failure (and is not scored).
    csv_path, json_path : path-like, optional
        Write the per-image CSV and the summary JSON (:meth:`ScoreReport.to_dict`) atomically.
    plot_dir : path-like, optional
        Write ``pr_curve.png`` and, when ``images_dir`` is given, ``montage.png`` (image | mask before,
        from ``before_dir`` if given | prediction | GT for the ``montage_count`` worst and best images by
        IoU). Needs matplotlib (``pip install 'maskrefine[plot]'``).
    images_dir, before_dir : path-like, optional
        Images and unrefined masks for the montage, found by stem (a missing one leaves its panel empty).
    montage_count : int
        Number of worst and of best images in the montage.
    shard : (int, int) or str, optional
        Score only shard k of n (1-based k; see :mod:`maskrefine.pipeline.guards`).
    jobs : int, optional
        Threads reading files (None: one per core). The metrics are accumulated in stem order, so the
        result does not depend on ``jobs``.
    progress : callable, optional
        ``progress(done, total)`` after each pair.

    Returns
    -------
    ScoreReport
        Summary, per-image rows, failures, unmatched and duplicated names.

    Raises
    ------
    ConfigError
        Missing folders, unknown preset, bad ``boxes``/``shard``/``jobs``, an output path that is an input
        file (the COCO JSON) or lies inside an input folder (VOC annotations included), or two outputs on
        the same path; raised before any work.
    BackendUnavailableError
        ``plot_dir`` without matplotlib (raised before any work).
    """
    start = time.perf_counter()
    from maskrefine import metrics

    pred_path = check_folder(pred_dir, "predictions")
    gt_path = check_folder(gt_dir, "ground-truth")
    inputs: dict[str, Path] = {"predictions": pred_path, "ground-truth": gt_path}
    if images_dir is not None:
        inputs["images"] = check_folder(images_dir, "images")
    if before_dir is not None:
        inputs["before"] = check_folder(before_dir, "before-masks")
    if preset not in metrics.PRESETS:
        raise ConfigError(f"preset must be one of {', '.join(metrics.PRESETS)}; got {preset!r}")
    box_source = check_box_source(boxes)
    workers = check_jobs(jobs)
    shard_kn = parse_shard(shard)
    if isinstance(montage_count, bool) or not isinstance(montage_count, int) or montage_count < 0:
        raise ConfigError(f"montage_count must be an integer >= 0; got {montage_count!r}")
    box_folders: dict[str, Path] = {}  # inputs too: never write into / over the GT boxes
    box_files: dict[str, Path] = {}
    if box_source is not None and box_source[1] is not None:
        (box_folders if box_source[0] == "voc" else box_files)[f"boxes ({box_source[0]})"] = box_source[1]
    plot_path = Path(plot_dir) if plot_dir is not None else None
    taken: dict[str, Path] = {}
    if plot_path is not None:
        taken["plot folder"] = plot_path.resolve()
        taken.update({f"plot {name}": (plot_path / name).resolve() for name in PLOT_FILES})
    for what, target in (("CSV file", csv_path), ("JSON file", json_path)):
        if target is not None:
            taken[what] = check_output_file(Path(target), what, {**inputs, **box_folders}, box_files, taken)
    if plot_path is not None:
        from maskrefine.plots import require_matplotlib

        require_matplotlib()
        check_output_folder(plot_path, {**inputs, **box_folders})
    gt_boxes = _load_boxes(*box_source) if box_source else None

    pairing = match_folders(pred_path, gt_path, MASK_EXTENSIONS, MASK_EXTENSIONS)
    unmatched, duplicates = unmatched_and_duplicates(pairing, "predictions", "gt", shard_kn)
    pairs = [pair for pair in pairing.pairs if in_shard(pair.stem, shard_kn)]
    total = len(pairs)

    evaluator = metrics.Evaluator(preset=preset)
    corloc = metrics.CorLocEvaluator() if box_source else None
    failures: list[Failure] = []
    scored: dict[str, tuple[Path, Path]] = {}

    def load(pair: Any) -> _Loaded:
        return _load_pair(pair.stem, pair.first, pair.second)

    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 and total > 1 else None
    loaded_iter: Iterable[_Loaded] = (
        _bounded_map(pool, load, pairs, 4 * workers) if pool else map(load, pairs)
    )
    try:
        for done, item in enumerate(loaded_iter, start=1):
            if item.failure is not None:
                failures.append(item.failure)
            else:
                failure = _score_one(item, evaluator, corloc, gt_boxes, box_source)
                if failure is not None:
                    failures.append(failure)
                else:
                    scored[item.stem] = (item.pred_path, item.gt_path)
            if progress is not None:
                progress(done, total)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    rows = [dict(row) for row in evaluator.per_image()]
    summary, _ = _split_summary(evaluator.summary())
    curves = dict(evaluator.curves()) if scored else {}
    if corloc is not None:
        summary.update(_corloc_summary(corloc, rows))

    config = {
        "pred_dir": str(pred_path),
        "gt_dir": str(gt_path),
        "preset": preset,
        "boxes": boxes,
        "jobs": workers,
        "shard": f"{shard_kn[0]}/{shard_kn[1]}" if shard_kn else None,
    }
    report = ScoreReport(
        summary=summary,
        rows=rows,
        failures=failures,
        unmatched=unmatched,
        duplicates=duplicates,
        curves=curves,
        config=config,
    )
    if plot_path is not None:
        report.plots = _write_plots(report, plot_path, scored, images_dir, before_dir, montage_count)
    report.elapsed = time.perf_counter() - start
    if csv_path is not None:
        report.write_csv(csv_path)
    if json_path is not None:
        report.write_json(json_path)
    return report


def _bounded_map(pool: Executor, function: Callable[[Any], Any], items: Sequence[Any], ahead: int):
    """``pool.map`` in order, with at most ``ahead`` items loaded but not yet consumed (bounded memory)."""
    from collections import deque

    pending: deque[Future[Any]] = deque()
    iterator = iter(items)
    for item in iterator:
        pending.append(pool.submit(function, item))
        if len(pending) >= ahead:
            break
    while pending:
        result = pending.popleft().result()
        for item in iterator:
            pending.append(pool.submit(function, item))
            break
        yield result


def _score_one(
    item: _Loaded,
    evaluator: Any,
    corloc: Any,
    gt_boxes: Mapping[str, np.ndarray] | None,
    box_source: tuple[str, Path | None] | None,
) -> Failure | None:
    """Feed one loaded pair to the evaluators; return a Failure instead of raising.

    All or nothing: an image is either added to both evaluators (saliency and, with boxes, CorLoc) or
    to neither and reported as a failure, so ``count`` and ``corloc_count`` never include a failed
    file. The CorLoc step is therefore rehearsed first on a scratch evaluator with the same settings
    (its inputs, the GT boxes and the resized prediction, computed beforehand); only then are the real
    evaluators stepped: saliency (the one that may still refuse the pair) and, last, CorLoc, whose
    identical rehearsal already succeeded. Each evaluator's ``step`` records nothing when it raises.
    """
    assert item.pred is not None and item.gt is not None
    from maskrefine import metrics

    corloc_args: tuple[np.ndarray, np.ndarray] | None = None
    if corloc is not None and box_source is not None:
        if gt_boxes is not None and item.stem not in gt_boxes:
            return Failure(item.pred_path, f"no ground-truth boxes for {item.stem!r} in {box_source[1]}")
        try:
            boxes_here = metrics.boxes_from_mask(item.gt) if gt_boxes is None else gt_boxes[item.stem]
            corloc_args = (_corloc_mask(item.pred, item.gt.shape), boxes_here)
            _corloc_rehearsal(corloc).step(*corloc_args, name=item.stem, image_size=item.gt.shape)
        except Exception as exc:  # noqa: BLE001
            return Failure(item.pred_path, f"CorLoc failed: {type(exc).__name__}: {exc}")
    try:
        evaluator.step(item.pred, item.gt, name=item.stem)
    except InputError as exc:
        return Failure(exc.path, exc.problem)
    except ValueError as exc:
        return Failure(item.pred_path, f"cannot score against {item.gt_path.name}: {exc}")
    except Exception as exc:  # noqa: BLE001
        return Failure(item.pred_path, f"unexpected {type(exc).__name__}: {exc}")
    if corloc_args is not None:
        corloc.step(*corloc_args, name=item.stem, image_size=item.gt.shape)
    return None


def _corloc_rehearsal(corloc: Any) -> Any:
    """A fresh, empty evaluator of the same class and settings as ``corloc`` (for a trial step)."""
    return type(corloc)(
        corloc.selector,
        corloc.connectivity,
        corloc.scale,
        threshold=corloc.threshold,
        iou_threshold=corloc.iou_threshold,
    )


def _corloc_mask(pred: np.ndarray, gt_hw: tuple[int, ...]) -> np.ndarray:
    """The prediction as float [0, 1] at the GT size (bilinear, the refiners' rule) for box extraction."""
    from maskrefine.refiners import resize_mask

    return resize_mask(to_unit_float(pred), (int(gt_hw[0]), int(gt_hw[1])))


def _corloc_summary(corloc: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """CorLoc summary keys (all ``corloc*``) and ``corloc_correct`` / ``corloc_iou`` columns in ``rows``."""
    by_name = {row["name"]: row for row in corloc.per_image()}
    for row in rows:
        extra = by_name.get(row.get("name"))
        if extra is not None:
            row["corloc_correct"] = extra["correct"]
            row["corloc_iou"] = extra["iou"]
    return dict(corloc.summary())


def _find_by_stem(folder: Path | None, stem: str, extensions: tuple[str, ...]) -> Path | None:
    if folder is None:
        return None
    for ext in extensions:
        for candidate in (folder / f"{stem}{ext}", folder / f"{stem}{ext.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def _write_plots(
    report: ScoreReport,
    plot_dir: Path,
    scored: Mapping[str, tuple[Path, Path]],
    images_dir: str | Path | None,
    before_dir: str | Path | None,
    count: int,
) -> list[Path]:
    from maskrefine import plots

    plot_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    title = f"{Path(str(report.config.get('pred_dir', ''))).name} ({report.summary.get('preset', '')})"
    curve = plots.find_pr_curve(report.curves)
    if curve is not None:
        written.append(plots.plot_pr_curve(curve[0], curve[1], plot_dir / PLOT_FILES[0], title=title))
    if images_dir is None or count == 0 or not report.rows:
        return written
    name_key = "name"
    ranked = [
        (float(row["iou"]), str(row[name_key]))
        for row in report.rows
        if row.get(name_key) in scored and row.get("iou") is not None and np.isfinite(float(row["iou"]))
    ]
    ranked.sort()
    worst = ranked[:count]
    best = [item for item in ranked[::-1][:count] if item not in worst]
    entries: list[plots.MontageEntry] = []
    images_path = Path(images_dir)
    before_path = Path(before_dir) if before_dir is not None else None
    for label, group in (("worst", worst), ("best", best)):
        for iou, stem in group:
            pred_file, gt_file = scored[stem]
            image_file = _find_by_stem(images_path, stem, IMAGE_EXTENSIONS)
            before_file = _find_by_stem(before_path, stem, MASK_EXTENSIONS)
            try:
                image = read_image(image_file) if image_file is not None else None
                before = read_mask_array(before_file) if before_file is not None else None
                entries.append(
                    plots.MontageEntry(
                        stem=stem,
                        score=iou,
                        image=image,
                        prediction=read_mask_array(pred_file),
                        gt=read_mask_array(gt_file),
                        before=before,
                        label=label,
                    )
                )
            except InputError as exc:
                report.failures.append(Failure(exc.path, f"montage: {exc.problem}"))
    if entries:
        written.append(plots.plot_montage(entries, plot_dir / PLOT_FILES[1], title=title))
    return written
