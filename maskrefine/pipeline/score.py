""":func:`score_folder`: score a folder of predictions against ground truth (and boxes)."""

from __future__ import annotations

import numbers
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from maskrefine._checks import short_repr, text_or_empty
from maskrefine._units import to_unit_float
from maskrefine.errors import ConfigError, InputError, OutputError
from maskrefine.io import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, MASK_EXTENSIONS, ReadOptions, match_folders
from maskrefine.io.options import PLAIN
from maskrefine.io.pairs import scan_folder
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
    in_shard,
    job_flags,
    parse_shard,
    path_argument,
    resolved_path,
)
from maskrefine.pipeline.reports import (
    Failure,
    Progress,
    ScoreReport,
    count_encodings,
    not_regular_entries,
    unmatched_and_duplicates,
    write_table_and_summary,
)

if TYPE_CHECKING:
    from maskrefine.io.imageio import MaskRead
    from maskrefine.metrics.corloc import Annotations, Selector
    from maskrefine.metrics.presets import CorlocGrid, Dtype, ScorePreset

__all__ = ["score_folder", "parse_box_spec", "check_box_source", "PLOT_FILES"]

#: Files :func:`score_folder` may write into ``plot_dir``.
PLOT_FILES: tuple[str, str] = ("pr_curve.png", "montage.png")


def parse_box_spec(boxes: str | None) -> tuple[str, Path | None] | None:
    """Parse ``boxes``: None, ``("masks", None)``, ``("voc", DIR)`` or ``("coco", FILE)``.

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
    kind, sep, rest = text_or_empty(boxes).partition(":")
    if sep and kind in ("voc", "coco") and rest:
        return kind, Path(rest)
    raise ConfigError(f"boxes must be 'masks', 'voc:DIR' or 'coco:FILE'; got {short_repr(boxes)}")


def check_box_source(boxes: str | None) -> tuple[str, Path | None] | None:
    """:func:`parse_box_spec`, then check that the VOC folder / COCO file exists."""
    source = parse_box_spec(boxes)
    if source is None:
        return source
    kind, path = source
    if path is None:
        return source
    try:
        found = path.is_dir() if kind == "voc" else path.is_file()
    except OSError as exc:  # e.g. a name too long for the file system (is_dir/is_file raise it)
        raise ConfigError(
            f"boxes {short_repr(boxes)}: cannot check the path ({exc.strerror or exc})"
        ) from None
    if not found:
        from maskrefine.io.files import not_regular_reason

        reason = not_regular_reason(path)  # "not found", "a folder", "a dangling symlink", ...
        what = "a folder of VOC XML annotations" if kind == "voc" else "a COCO JSON file"
        there = "nothing is there" if reason == "not found" else f"it is {reason or 'a file'}"
        raise ConfigError(f"boxes {short_repr(boxes)}: {path} is not {what} ({there})")
    return source


def _load_boxes(kind: str, path: Path | None) -> tuple[Annotations | None, dict[str, InputError]]:
    """Read the GT boxes; also return the VOC files that could not be read, by stem (those images fail)."""
    if kind == "masks":
        return None, {}
    assert path is not None  # parse_box_spec gives a path for "voc" and "coco"
    from maskrefine.metrics.corloc import coco_annotations, voc_annotations_per_file

    try:
        if kind == "voc":
            return voc_annotations_per_file(path)
        return coco_annotations(path), {}
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
    pred_encoding: str | None = None
    gt_encoding: str | None = None
    pred_kind: str | None = None
    gt_kind: str | None = None


def _load_pair(stem: str, pred_path: Path, gt_path: Path, read: ReadOptions) -> _Loaded:
    current = pred_path
    try:
        pred_read = read.mask(pred_path)
        current = gt_path
        gt_read = read.mask(gt_path)
        gt = gt_read.pixels  # uint16 too: the evaluator compares 16-bit GT exactly
    except InputError as exc:
        return _Loaded(stem, pred_path, gt_path, failure=Failure(exc.path, exc.problem))
    except Exception as exc:  # noqa: BLE001 - one file must never end the run
        return _Loaded(
            stem, pred_path, gt_path, failure=Failure(current, f"unexpected {type(exc).__name__}: {exc}")
        )
    return _Loaded(
        stem,
        pred_path,
        gt_path,
        pred_read.pixels,
        gt,
        None,
        pred_read.encoding,
        gt_read.encoding,
        _reading_kind(pred_read),
        _reading_kind(gt_read),
    )


def _reading_kind(read: MaskRead) -> str | None:
    """Name the kind of file some references read otherwise (presets.REFERENCE_READS_OTHERWISE)."""
    if read.stored_bits is not None and read.stored_bits < 8 and read.encoding == PLAIN:
        return "low_bit"
    pixels = read.pixels
    if pixels.dtype == np.uint16 and bool(np.any((pixels > 0) & (pixels < 65535))):
        return "graded_16"
    return None


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
    pred_dir: str | os.PathLike[str],
    gt_dir: str | os.PathLike[str],
    *,
    preset: str = "tokencut",
    boxes: str | None = None,
    corloc_selector: str | None = None,
    corloc_connectivity: int | None = None,
    patch_size: int | None = None,
    seeds: str | os.PathLike[str] | None = None,
    csv_path: str | os.PathLike[str] | None = None,
    json_path: str | os.PathLike[str] | None = None,
    plot_dir: str | os.PathLike[str] | None = None,
    images_dir: str | os.PathLike[str] | None = None,
    before_dir: str | os.PathLike[str] | None = None,
    montage_count: int = 4,
    shard: tuple[int, int] | str | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
    overwrite: bool = False,
    mask_scale: str | int = "auto",
    apply_exif: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> ScoreReport:
    """Score the predictions of ``pred_dir`` against the ground truth of ``gt_dir``.

    Parameters
    ----------
    pred_dir : path-like
        Predicted masks (``.png`` 8/16-bit, ``.npy`` float in [0, 1]); read by
        :func:`maskrefine.io.read_mask_file` (0/1 masks, 16-bit files holding 8-bit values, alpha
        masks... are detected; 8-bit maps reach the evaluator unchanged). A
        prediction of another size than its GT is resized by the preset (never the GT).
    gt_dir : path-like
        Ground-truth masks, paired with the predictions by file stem.
    preset : str
        A key of :data:`maskrefine.metrics.PRESETS` (default ``"tokencut"``).
    boxes : {"masks", "voc:DIR", "coco:FILE"}, optional
        Also compute CorLoc on the predictions, binarised at 0.5, with GT boxes from the connected
        components of the GT masks, from VOC XML files, or from a COCO JSON file. A prediction whose stem
        has no annotation there is a failure (and is not scored); an image with no GT box or an empty
        prediction is a miss, counted in ``corloc_empty_gt`` / ``corloc_empty_mask``. The preset sets the
        rule (``ScorePreset.corloc_*``): ``tokencut`` the seed component, 4-connectivity, token grid,
        float32 box IoU; ``found`` the largest component, 4-connectivity, token grid, float32 IoU; the
        others the largest bounding box, 8-connectivity, on the prediction resized bilinearly to the GT
        size. On the token grid a prediction smaller than its GT is used at its own resolution: cell i
        covers pixels i·p .. (i+1)·p of the padded image and boxes are clipped to the image.
    corloc_selector : {"largest_box", "largest_cc", "seed_cc"}, optional
        Override the preset's component rule.
    corloc_connectivity : {4, 8}, optional
        Override the preset's connectivity.
    patch_size : int, optional
        Token size p in pixels for token-grid CorLoc (default: each prediction's integer down-scale
        factor, :func:`maskrefine.metrics.prediction_stride`); a prediction must then be the
        ``ceil`` or ``floor`` grid of its GT for that p, or the GT size (pixel grid).
    seeds : path-like, optional
        Seed patches for ``seed_cc`` (:func:`maskrefine.metrics.read_seeds`: a JSON of stem → flat token
        index, or a folder of seed maps); required by ``seed_cc``. The index is row-major in the
        prediction's own grid; for a prediction at the GT size with ``patch_size`` p it indexes the
        padded ⌈H/p⌉×⌈W/p⌉ token grid and the token's centre pixel is the seed.
    csv_path, json_path : path-like, optional
        Write the per-image CSV and the summary JSON (:meth:`ScoreReport.to_dict`) atomically; an
        existing regular file there is replaced when it is a report or CSV maskrefine wrote, or empty
        (:func:`~maskrefine.pipeline.guards.check_report_replaceable`), or with ``overwrite``; any
        other file, and anything else (symlink, folder, FIFO, device), is refused before any work.
    plot_dir : path-like, optional
        Write ``pr_curve.png`` and, when ``images_dir`` is given, ``montage.png`` (image | mask before,
        from ``before_dir`` if given | prediction | GT for the ``montage_count`` worst and best images by
        IoU). Needs matplotlib (the ``plot`` extra). Existing plot files are kept: the job
        refuses to start unless ``overwrite`` is set.
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
    overwrite : bool
        Replace existing files in ``plot_dir``.
    mask_scale : {"auto", "255", "1", "65535"}
        How integer values of predictions *and* GT are scaled (:func:`maskrefine.io.read_mask_file`);
        the non-plain encodings met are counted in :attr:`ScoreReport.encodings`.
    apply_exif : bool
        Turn the montage images upright by their EXIF orientation (default: as stored).
    max_pixels : int or None
        Refuse (per file, from its header, before decoding) a mask or image with more pixels.

    Returns
    -------
    ScoreReport
        Summary, per-image rows, failures, unmatched and duplicated names.

    Raises
    ------
    ConfigError
        Missing folders, unknown preset, bad ``boxes``/``shard``/``jobs``, bad CorLoc options
        (``seed_cc`` without ``seeds``, CorLoc options without ``boxes``), an output path that is an input
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
    if not isinstance(preset, str) or preset not in metrics.PRESETS:
        raise ConfigError(f"preset must be one of {', '.join(metrics.PRESETS)}; got {short_repr(preset)}")
    box_source = check_box_source(boxes)
    try:
        read = ReadOptions.checked(mask_scale, apply_exif, max_pixels)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    workers = check_jobs(jobs)
    shard_kn = parse_shard(shard)
    if (
        isinstance(montage_count, bool)
        or not isinstance(montage_count, numbers.Integral)
        or montage_count < 0
    ):
        raise ConfigError(f"montage_count must be an integer >= 0; got {short_repr(montage_count)}")
    montage_count = int(montage_count)
    (overwrite,) = job_flags(overwrite=overwrite)
    check_progress(progress)
    box_folders: dict[str, Path] = {}  # inputs too: never write into / over the GT boxes
    box_files: dict[str, Path] = {}
    if box_source is not None and box_source[1] is not None:
        (box_folders if box_source[0] == "voc" else box_files)[f"boxes ({box_source[0]})"] = box_source[1]
    if seeds is not None:
        seeds_path = path_argument(seeds, "seeds")
        (box_folders if seeds_path.is_dir() else box_files)["seeds"] = seeds_path
    plot_path = path_argument(plot_dir, "plot folder") if plot_dir is not None else None
    taken: dict[str, Path] = {}
    if plot_path is not None:
        taken["plot folder"] = resolved_path(plot_path, "plot folder")
        taken.update({f"plot {name}": resolved_path(plot_path / name, "plot file") for name in PLOT_FILES})
    for what, target in (("CSV file", csv_path), ("JSON file", json_path)):
        if target is not None:
            target_path = file_path_argument(target, what)
            taken[what] = check_output_file(target_path, what, {**inputs, **box_folders}, box_files, taken)
            check_report_replaceable(target_path, what, overwrite=overwrite, how=REPLACE_HOW)
    if plot_path is not None:
        from maskrefine.plots import require_matplotlib

        require_matplotlib()
        check_output_folder(plot_path, {**inputs, **box_folders})
        planned = PLOT_FILES if images_dir is not None else PLOT_FILES[:1]
        for name in planned:  # never over an input file kept there (the COCO JSON, the seeds JSON)
            check_output_file(plot_path / name, "plot file", {}, box_files)
        existing = check_output_targets([plot_path / name for name in planned], plot_path)
        if existing and not overwrite:
            raise ConfigError(
                f"plot file(s) already exist: {', '.join(str(p) for p in existing)}; "
                "use --overwrite (overwrite=True) to replace them or choose another --plot folder"
            )
    corloc_rule = _corloc_rule(
        metrics.PRESETS[preset], box_source, corloc_selector, corloc_connectivity, patch_size, seeds
    )
    gt_boxes, unreadable_boxes = _load_boxes(*box_source) if box_source else (None, {})
    seed_index = _load_seeds(seeds) if seeds is not None else None

    pairing = match_folders(pred_path, gt_path, MASK_EXTENSIONS, MASK_EXTENSIONS)
    unmatched, duplicates = unmatched_and_duplicates(pairing, "predictions", "gt", shard_kn)
    not_regular = not_regular_entries(pairing, shard_kn)
    pairs = [pair for pair in pairing.pairs if in_shard(pair.stem, shard_kn)]
    total = len(pairs)

    # from the defining module (OpenCV, numba): that is what metrics.Evaluator lazily resolves to
    from maskrefine.metrics.evaluator import Evaluator

    evaluator = Evaluator(preset=preset)
    corloc = (
        metrics.CorLocEvaluator(
            corloc_rule.selector, corloc_rule.connectivity, iou_dtype=corloc_rule.iou_dtype
        )
        if box_source
        else None
    )
    failures: list[Failure] = []
    scored: dict[str, tuple[Path, Path]] = {}
    encodings: list[tuple[str | None, str | None]] = []
    kinds: list[tuple[str | None, str | None]] = []

    def load(pair: Any) -> _Loaded:
        return _load_pair(pair.stem, pair.first, pair.second, read)

    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 and total > 1 else None
    loaded_iter: Iterable[_Loaded] = (
        _bounded_map(pool, load, pairs, 4 * workers) if pool else map(load, pairs)
    )
    try:
        for done, item in enumerate(loaded_iter, start=1):
            if item.failure is not None:
                failures.append(item.failure)
            else:
                bad_boxes = unreadable_boxes.get(item.stem)
                failure = (
                    Failure(bad_boxes.path, bad_boxes.problem)
                    if bad_boxes is not None
                    else _score_one(item, evaluator, corloc, gt_boxes, box_source, corloc_rule, seed_index)
                )
                if failure is not None:
                    failures.append(failure)
                else:
                    scored[item.stem] = (item.pred_path, item.gt_path)
                    encodings.append((item.pred_encoding, item.gt_encoding))
                    kinds.append((item.pred_kind, item.gt_kind))
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
        del summary["corloc_scale"]  # per image: 1 on the pixel grid, the patch size on the token grid
        summary["corloc_grid"] = corloc_rule.grid
        summary["corloc_patch_size"] = corloc_rule.patch_size

    config = {
        "pred_dir": str(pred_path),
        "gt_dir": str(gt_path),
        "preset": preset,
        "boxes": boxes,
        "corloc_selector": corloc_rule.selector if box_source else None,
        "corloc_connectivity": corloc_rule.connectivity if box_source else None,
        "patch_size": corloc_rule.patch_size,
        "seeds": None if seeds is None else str(seeds),
        "jobs": workers,
        "shard": f"{shard_kn[0]}/{shard_kn[1]}" if shard_kn else None,
        "mask_scale": read.mask_scale,
        "apply_exif": read.apply_exif,
        "max_pixels": read.max_pixels,
        "folder_pairs": len(pairing.pairs),
    }
    columns = [*evaluator.row_columns(), *(("corloc_correct", "corloc_iou") if corloc is not None else ())]
    report = ScoreReport(
        summary=summary,
        rows=rows,
        failures=failures,
        unmatched=unmatched,
        duplicates=duplicates,
        curves=curves,
        config=config,
        not_regular=not_regular,
        encodings={
            **count_encodings([pred for pred, _ in encodings], "predictions: "),
            **count_encodings([gt for _, gt in encodings], "gt: "),
        },
        columns=columns,
        reference_reads_otherwise=_reference_reads_otherwise(preset, kinds),
    )
    if plot_path is not None:
        try:
            report.plots = _write_plots(
                report,
                plot_path,
                scored,
                images_dir,
                before_dir,
                montage_count,
                read,
                overwrite=bool(overwrite),
            )
        except Exception as exc:  # noqa: BLE001 - a figure that cannot be drawn never costs the scores
            report.failures.append(Failure(plot_path, f"plots: unexpected {type(exc).__name__}: {exc}"))
    report.elapsed = time.perf_counter() - start
    write_table_and_summary(report, csv_path, json_path, overwrite=overwrite)
    return report


def _reference_reads_otherwise(preset: str, kinds: Sequence[tuple[str | None, str | None]]) -> dict[str, int]:
    """Count the scored files the preset's reference script would read otherwise, by what it does."""
    from maskrefine.metrics.presets import REFERENCE_READS_OTHERWISE

    counts: dict[str, int] = {}
    for role, kind, what in REFERENCE_READS_OTHERWISE.get(preset, ()):
        n = sum(1 for pred_kind, gt_kind in kinds if (gt_kind if role == "gt" else pred_kind) == kind)
        if n:
            counts[f"{role}: {what}"] = n
    return counts


def _bounded_map(
    pool: Executor, function: Callable[[Any], Any], items: Sequence[Any], ahead: int
) -> Iterator[Any]:
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
    gt_boxes: Annotations | None,
    box_source: tuple[str, Path | None] | None,
    rule: _CorlocRule,
    seed_index: _Seeds | None,
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

    corloc_args: dict[str, Any] | None = None
    if corloc is not None and box_source is not None:
        if gt_boxes is not None and item.stem not in gt_boxes.boxes:
            return Failure(item.pred_path, f"no ground-truth boxes for {item.stem!r} in {box_source[1]}")
        declared = gt_boxes.sizes.get(item.stem) if gt_boxes is not None else None
        if declared is not None and declared != item.gt.shape[:2]:
            return Failure(
                item.gt_path,
                f"CorLoc: the {box_source[0].upper()} annotation of {item.stem!r} is for a "
                f"{declared[1]}x{declared[0]} image, but this GT mask is "
                f"{item.gt.shape[1]}x{item.gt.shape[0]} (width x height): its boxes would be compared "
                "in another pixel frame",
            )
        try:
            if gt_boxes is None:
                from maskrefine.metrics.evaluator import gt_foreground

                boxes_here = metrics.boxes_from_mask(
                    gt_foreground(item.gt, rule.gt_threshold), connectivity=rule.connectivity
                )
            else:
                boxes_here = gt_boxes.boxes[item.stem]
            corloc_args = _corloc_inputs(item, rule, seed_index)
            corloc_args.update(gt_boxes=boxes_here, name=item.stem, image_size=item.gt.shape)
            _corloc_rehearsal(corloc).step(**corloc_args)
        except _CorlocInputError as exc:
            return Failure(item.pred_path, f"CorLoc: {exc}")
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
        corloc.step(**corloc_args)
    return None


def _corloc_rehearsal(corloc: Any) -> Any:
    """Return a fresh, empty evaluator of the same class and settings as ``corloc`` (for a trial step)."""
    return type(corloc)(
        corloc.selector,
        corloc.connectivity,
        corloc.scale,
        threshold=corloc.threshold,
        iou_threshold=corloc.iou_threshold,
        iou_dtype=corloc.iou_dtype,
    )


@dataclass(frozen=True, slots=True)
class _CorlocRule:
    """The CorLoc rule of one run: the preset's, with the caller's overrides applied."""

    selector: Selector
    connectivity: int
    grid: CorlocGrid
    iou_dtype: Dtype
    patch_size: int | None
    #: the preset's GT rule for Acc/IoU (``GT > threshold`` on the 0..255 scale): GT boxes of ``--boxes
    #: masks`` are the components of the GT foreground the preset's IoU sees
    gt_threshold: float = 0.0


class _CorlocInputError(ValueError):
    """One image cannot be boxed under the rule (reported as that file's failure)."""


#: Largest accepted ``patch_size`` (ViT patches are 8..32 px).
MAX_PATCH_SIZE = 256


def _corloc_rule(
    preset: ScorePreset,
    box_source: tuple[str, Path | None] | None,
    selector: str | None,
    connectivity: int | None,
    patch_size: int | None,
    seeds: str | os.PathLike[str] | None,
) -> _CorlocRule:
    """Validate the CorLoc overrides against the preset's rule (usage errors, before any work)."""
    from maskrefine.metrics import SELECTORS

    given = {
        "corloc_selector": selector,
        "corloc_connectivity": connectivity,
        "patch_size": patch_size,
        "seeds": seeds,
    }
    if box_source is None:
        extra = [name for name, value in given.items() if value is not None]
        if extra:
            named = ", ".join(f"`{name}`" for name in extra)
            verb = "applies" if len(extra) == 1 else "apply"
            raise ConfigError(f"{named} only {verb} to CorLoc: pass `boxes` as well")
    if selector is not None and selector not in SELECTORS:
        raise ConfigError(
            f"`corloc_selector` must be one of {', '.join(SELECTORS)}; got {short_repr(selector)}"
        )
    if connectivity is not None and (isinstance(connectivity, bool) or connectivity not in (4, 8)):
        raise ConfigError(f"`corloc_connectivity` must be 4 or 8; got {short_repr(connectivity)}")
    if patch_size is not None and (
        isinstance(patch_size, bool)
        or not isinstance(patch_size, numbers.Integral)
        or not 1 <= patch_size <= MAX_PATCH_SIZE
    ):
        raise ConfigError(
            f"`patch_size` must be an integer in 1..{MAX_PATCH_SIZE}; got {short_repr(patch_size)}"
        )
    if patch_size is not None:
        patch_size = int(patch_size)
    if seeds is not None and (not str(seeds) or not Path(seeds).exists()):
        raise ConfigError(f"`seeds` {short_repr(str(seeds))}: no such file or folder")
    rule = _CorlocRule(
        # checked against SELECTORS above (an override) or by ScorePreset (the preset's own)
        selector=cast("Selector", selector if selector is not None else preset.corloc_selector),
        connectivity=connectivity if connectivity is not None else preset.corloc_connectivity,
        grid="token" if patch_size is not None else preset.corloc_grid,
        iou_dtype=preset.corloc_iou_dtype,
        patch_size=patch_size,
        gt_threshold=float(preset.gt_threshold_acc),
    )
    if seeds is not None and rule.selector != "seed_cc":
        raise ConfigError(
            f"`seeds` only apply to `corloc_selector` 'seed_cc'; the rule here is {rule.selector!r}"
        )
    if box_source is not None and rule.selector == "seed_cc" and seeds is None:
        raise ConfigError(
            f"CorLoc with the seed component (preset {preset.name!r}: TokenCut's rule) needs the seed "
            "patches: pass `seeds` (a JSON of stem -> token index, or a folder of seed maps), or choose "
            "another `corloc_selector` (largest_cc, largest_box)"
        )
    return rule


@dataclass(frozen=True)
class _Seeds:
    """Seed indices per stem, the size of each seed map, and the stems whose map is bad (a folder of maps).

    A bad map fails only its own image (a per-file error), not the whole run.
    """

    index: Mapping[str, int]
    shapes: Mapping[str, tuple[int, int]]
    errors: Mapping[str, InputError]


def _load_seeds(seeds: str | os.PathLike[str]) -> _Seeds:
    from maskrefine.metrics.corloc import read_seed_maps, read_seeds

    try:
        if Path(seeds).is_dir():
            errors: dict[str, InputError] = {}
            maps = read_seed_maps(seeds, errors)
            return _Seeds({k: v[0] for k, v in maps.items()}, {k: v[1] for k, v in maps.items()}, errors)
        return _Seeds(read_seeds(seeds), {}, {})
    except InputError as exc:
        raise ConfigError(f"cannot read seeds: {exc}") from None


def _corloc_inputs(item: _Loaded, rule: _CorlocRule, seed_index: _Seeds | None) -> dict[str, Any]:
    """``mask``, ``scale`` and ``seed`` of one image for :meth:`CorLocEvaluator.step` under ``rule``."""
    # from the defining module: that is what metrics.prediction_stride lazily resolves to
    from maskrefine.metrics.resize import prediction_stride

    assert item.pred is not None and item.gt is not None
    gt_hw = (int(item.gt.shape[0]), int(item.gt.shape[1]))
    pred_hw = (int(item.pred.shape[0]), int(item.pred.shape[1]))
    if rule.grid == "token":
        if pred_hw == gt_hw:
            scale = 1
        elif rule.patch_size is not None:
            p = rule.patch_size
            if pred_hw[0] not in (gt_hw[0] // p, -(-gt_hw[0] // p)) or pred_hw[1] not in (
                gt_hw[1] // p,
                -(-gt_hw[1] // p),
            ):
                raise _CorlocInputError(
                    f"prediction {pred_hw[0]}x{pred_hw[1]} is not the token grid of patch size {p} for the "
                    f"GT size {gt_hw[0]}x{gt_hw[1]} (HxW)"
                )
            scale = p
        else:
            stride = prediction_stride(pred_hw, gt_hw)
            if stride is None:
                raise _CorlocInputError(
                    f"prediction {pred_hw[0]}x{pred_hw[1]} is not a token grid of the GT size "
                    f"{gt_hw[0]}x{gt_hw[1]} (HxW)"
                )
            scale = stride
        mask = _unit_as_stored(item.pred)
    else:
        scale = 1
        if pred_hw != gt_hw and prediction_stride(pred_hw, gt_hw) is None:
            # e.g. paper_repo's 320x320 centre crop: stretching it onto the image would misplace the box
            raise _CorlocInputError(
                f"prediction {pred_hw[0]}x{pred_hw[1]} is neither the GT size {gt_hw[0]}x{gt_hw[1]} nor a "
                "uniform down-scale of it (HxW); CorLoc boxes need the whole image"
            )
        mask = _corloc_mask(item.pred, gt_hw)
    seed = None
    if rule.selector == "seed_cc":
        assert seed_index is not None
        if item.stem in seed_index.errors:
            bad = seed_index.errors[item.stem]
            raise _CorlocInputError(f"bad seed map {bad.path}: {bad.problem}")
        if item.stem not in seed_index.index:
            raise _CorlocInputError(f"no seed for {item.stem!r} in the seeds")
        index = seed_index.index[item.stem]
        # A full-size prediction with a patch size: the seed is a token of the padded token grid, taken
        # at its centre pixel (clipped to the image). Otherwise it indexes the prediction's own grid; on
        # the pixel grid a smaller prediction was resized to the GT size, and the seed is the GT pixel
        # under the centre of its cell.
        p = rule.patch_size if (pred_hw == gt_hw and rule.patch_size is not None) else 1
        grid_h, grid_w = (-(-pred_hw[0] // p), -(-pred_hw[1] // p))
        map_shape = seed_index.shapes.get(item.stem)
        if map_shape is not None and map_shape != (grid_h, grid_w):
            raise _CorlocInputError(
                f"the seed map of {item.stem!r} is {map_shape[0]}x{map_shape[1]}, but the prediction's grid "
                f"is {grid_h}x{grid_w} (HxW): its maximum would mark another cell"
            )
        if index >= grid_h * grid_w:
            raise _CorlocInputError(
                f"seed index {index} of {item.stem!r} lies outside the {grid_h}x{grid_w} grid"
            )
        row, col = divmod(index, grid_w)
        if mask.shape[:2] == pred_hw:
            seed = (min(row * p + p // 2, mask.shape[0] - 1), min(col * p + p // 2, mask.shape[1] - 1))
        else:
            seed = (
                min(int((row + 0.5) * mask.shape[0] / pred_hw[0]), mask.shape[0] - 1),
                min(int((col + 0.5) * mask.shape[1] / pred_hw[1]), mask.shape[1] - 1),
            )
    return {"mask": mask, "scale": scale, "seed": seed}


def _corloc_mask(pred: np.ndarray, gt_hw: tuple[int, ...]) -> np.ndarray:
    """Resize the prediction, as float [0, 1], to the GT size for box extraction.

    Bilinear, stretched onto the GT (docs/corloc.md, "Pixel grid"), as before ``apply`` began placing patch
    grids cell by cell: CorLoc numbers do not change with that.
    """
    from maskrefine.refiners import resize_mask_unchecked

    if pred.shape == tuple(gt_hw):  # nothing to resize: binarised as stored
        return _unit_as_stored(pred)
    return resize_mask_unchecked(to_unit_float(pred), (int(gt_hw[0]), int(gt_hw[1])), place_grid=False)


def _unit_as_stored(pred: np.ndarray) -> np.ndarray:
    """Return a float map as stored (a float64 0.5 + 1e-9 stays above 0.5), integer codes as v / scale."""
    return pred if pred.dtype.kind == "f" else to_unit_float(pred)


def _corloc_summary(corloc: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """CorLoc summary keys (all ``corloc*``) and ``corloc_correct`` / ``corloc_iou`` columns in ``rows``."""
    by_name = {row["name"]: row for row in corloc.per_image()}
    for row in rows:
        extra = by_name.get(row.get("name"))
        if extra is not None:
            row["corloc_correct"] = extra["correct"]
            row["corloc_iou"] = extra["iou"]
    return dict(corloc.summary())


def _entries_by_stem(folder: Path | None, extensions: tuple[str, ...]) -> dict[str, list[Path]]:
    """Entries of ``folder`` with one of ``extensions`` (any case, as the pairing reads them), by stem.

    Any entry, not only a regular file: a FIFO, folder or dangling symlink there is then refused by the
    reader and named as a montage failure, not silently taken for a missing file. An unlistable folder
    gives an empty index (its images are then left blank; the scores are unaffected).
    """
    if folder is None:
        return {}
    try:
        files, skipped = scan_folder(folder, extensions)
    except OSError:
        return {}
    by_stem: dict[str, list[Path]] = {}
    for path in sorted([*files, *(entry.path for entry in skipped)]):
        by_stem.setdefault(path.stem, []).append(path)
    return by_stem


def _montage_file(by_stem: Mapping[str, list[Path]], stem: str, what: str) -> Path | None:
    """Return the one entry for ``stem``, None when there is none; several raise an InputError."""
    found = by_stem.get(stem, [])
    if len(found) > 1:
        names = ", ".join(path.name for path in found)
        raise InputError(found[0].parent, f"several {what} files for {stem!r} ({names}); none shown")
    return found[0] if found else None


def _write_plots(
    report: ScoreReport,
    plot_dir: Path,
    scored: Mapping[str, tuple[Path, Path]],
    images_dir: str | os.PathLike[str] | None,
    before_dir: str | os.PathLike[str] | None,
    count: int,
    read: ReadOptions,
    *,
    overwrite: bool,
) -> list[Path]:
    from maskrefine import plots

    curve = plots.find_pr_curve(report.curves)
    if curve is None and not report.rows:  # nothing scored (or an empty shard): nothing to draw
        return []
    plot_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    title = f"{Path(str(report.config.get('pred_dir', ''))).name} ({report.summary.get('preset', '')})"
    if curve is not None:
        try:
            path = plot_dir / PLOT_FILES[0]
            note = (
                "every ground-truth mask is empty: no curve;\n"
                "the points drawn are the preset's rule\nfor an empty ground truth"
                if report.rows and all(row.get("empty_gt") for row in report.rows)
                else ""
            )
            written.append(
                plots.plot_pr_curve(curve[0], curve[1], path, title=title, overwrite=overwrite, note=note)
            )
        except OutputError as exc:  # e.g. it appeared meanwhile: the scores are still written
            report.failures.append(Failure(exc.path, exc.problem))
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
    images_by_stem = _entries_by_stem(Path(images_dir), IMAGE_EXTENSIONS)
    before_by_stem = _entries_by_stem(Path(before_dir) if before_dir is not None else None, MASK_EXTENSIONS)
    for label, group in (("worst", worst), ("best", best)):
        for iou, stem in group:
            pred_file, gt_file = scored[stem]
            try:
                image_file = _montage_file(images_by_stem, stem, "image")
                before_file = _montage_file(before_by_stem, stem, "--before")
                # each row is kept until the figure is drawn: as panels of at most 512 pixels a side
                image = plots.montage_panel(read.image(image_file)) if image_file is not None else None
                before = (
                    plots.montage_panel(read.mask(before_file).pixels) if before_file is not None else None
                )
                entries.append(
                    plots.MontageEntry(
                        stem=stem,
                        score=iou,
                        image=image,
                        prediction=plots.montage_panel(read.mask(pred_file).pixels),
                        gt=plots.montage_panel(read.mask(gt_file).pixels),
                        before=before,
                        label=label,
                    )
                )
            except InputError as exc:
                report.failures.append(Failure(exc.path, f"montage: {exc.problem}"))
    if entries:
        try:
            path = plot_dir / PLOT_FILES[1]
            written.append(plots.plot_montage(entries, path, title=title, overwrite=overwrite))
        except OutputError as exc:
            report.failures.append(Failure(exc.path, exc.problem))
    return written
