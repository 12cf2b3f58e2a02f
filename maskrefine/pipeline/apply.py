""":func:`apply_folder`: refine a folder of masks with their images as guides."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast, get_args

import numpy as np

from maskrefine._checks import short_repr
from maskrefine.auto import AUTO_RULE_TEXT, auto_settings, decide
from maskrefine.errors import ConfigError, InputError, OutputError, OutputExistsError
from maskrefine.guide import GUIDE_MODES
from maskrefine.io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    MASK_EXTENSIONS,
    ReadOptions,
    match_folders,
    read_image,
    write_bytes_atomic,
)
from maskrefine.io.imageio import (
    MASK_SUFFIXES,
    MaskFormat,
    OutputFolder,
    encode_mask,
    read_image_file_header,
)
from maskrefine.pipeline.guards import (
    REPLACE_HOW,
    RESUME_HOW,
    check_folder,
    check_inputs_are_not_outputs,
    check_jobs,
    check_not_an_output,
    check_output_file,
    check_output_folder,
    check_output_targets,
    check_progress,
    check_report_replaceable,
    file_path_argument,
    in_shard,
    is_within,
    job_flags,
    open_output_folder,
    parse_shard,
    path_argument,
    remove_empty_folder,
    resolved_path,
)
from maskrefine.pipeline.merge import check_resume_settings
from maskrefine.pipeline.reports import (
    Failure,
    FileOutcome,
    Progress,
    RunReport,
    Status,
    Unmatched,
    describe_unexpected,
    earlier_output_kept,
    not_processed_outcome,
    not_regular_entries,
    stop_for_removed_output_folder,
    unmatched_and_duplicates,
    write_run_report,
)
from maskrefine.pipeline.workers import run_tasks
from maskrefine.refiners import (
    REFINERS,
    check_mask_size,
    refine,
    refine_unchecked,
    resolve_params,
    unused_guide_problem,
)

__all__ = ["apply_folder", "OUTPUT_FORMATS"]

#: Output formats of :func:`apply_folder` and the file suffix each one writes (owned by :mod:`maskrefine.io`).
OUTPUT_FORMATS: Mapping[str, str] = MASK_SUFFIXES


@dataclass(slots=True)
class _ApplyJob:
    """The settings every file of one job shares: one object, which each :class:`_ApplyTask` refers to."""

    method: str
    params: dict[str, Any]
    guide: str
    binary_input: bool
    fmt: MaskFormat
    overwrite: bool
    skip_existing: bool = False
    read: ReadOptions = ReadOptions()
    #: The job's opened output folder, which the outputs are written through, set once it is open (None:
    #: by path, e.g. a job built by hand); see :class:`~maskrefine.io.imageio.OutputFolder`.
    folder: OutputFolder | None = None


@dataclass(frozen=True, slots=True)
class _ApplyTask:
    """One pair of the job: its stem, files and output; the settings are the job's.

    A job may hold a million of these: only what differs per file is here (the paths are those of the
    pairing, and of the file's outcome).
    """

    stem: str
    mask: Path
    image: Path
    output: Path
    job: _ApplyJob


def _apply_one(task: _ApplyTask) -> FileOutcome:
    """Read, refine and write one pair; every problem becomes a failed outcome (never raises)."""
    start = time.perf_counter()
    job = task.job

    def failed(message: str) -> FileOutcome:
        return FileOutcome(
            task.stem, "failed", task.mask, task.image, task.output, message, time.perf_counter() - start
        )

    current = task.image
    decision = None
    try:
        image, image_encoding = job.read.image_encoded(task.image)
        current = task.mask
        mask_read = job.read.mask(task.mask)
        mask = mask_read.to_unit()
        problem = check_mask_size(mask.shape, image.shape[:2])
        if problem is not None:
            raise InputError(
                task.mask,
                f"{problem} (image {task.image.name}){_orientation_hint(task, mask.shape, image.shape[:2])}",
            )
        decided = None
        if job.method == "auto":  # decided once: recorded per file in the report, and applied as it is
            decided = decide(mask, image.shape[:2])
            decision = decided.to_dict()
        # the job validated method, guide and params once; the readers return finite [0, 1] float32
        refined = refine_unchecked(
            image, mask, REFINERS[job.method], job.guide, job.params, job.binary_input, decision=decided
        )
        if not np.isfinite(refined).all():  # never publish NaN/inf (e.g. a setting at its numeric limit)
            raise InputError(task.mask, "refined mask has NaN/inf values; nothing written")
        current = task.output
        # write_mask without its checks: refine_unchecked made an (H, W) float32 mask clipped to [0, 1],
        # checked finite just above (write_mask would scan it twice more per file)
        encoded = encode_mask(refined, job.fmt)
        if job.folder is None:
            write_bytes_atomic(task.output, encoded, overwrite=job.overwrite)
        else:  # through the folder opened and checked at the start, whatever its path points to now
            job.folder.write_bytes(task.output.name, encoded, overwrite=job.overwrite)
    except OutputExistsError as exc:  # another run published it meanwhile: never replaced
        if job.skip_existing:
            return FileOutcome(task.stem, "skipped", task.mask, task.image, task.output)
        return failed(
            f"{exc.path}: output appeared meanwhile (another run writing to the same folder?); "
            "kept it, not replaced"
        )
    except (InputError, OutputError) as exc:
        return failed(str(exc))
    except ValueError as exc:  # e.g. an image smaller than the filter window
        return failed(f"{current}: cannot refine: {exc}")
    except Exception as exc:  # noqa: BLE001 - one file must never end the run
        return failed(describe_unexpected(current, exc))
    return FileOutcome(
        task.stem,
        "written",
        task.mask,
        task.image,
        task.output,
        None,
        time.perf_counter() - start,
        encoding=mask_read.encoding,
        image_encoding=image_encoding,
        decision=decision,
    )


def _orientation_hint(task: _ApplyTask, mask_hw: tuple[int, ...], used: tuple[int, ...]) -> str:
    """Why a mask that does not fit its image (read as ``used``, H x W) may fit it turned, or ``""``.

    Called only for a refused mask. When the image's EXIF orientation swaps its height and width, and
    the mask fits the image in the orientation not used (upright with ``--apply-exif``, or as stored),
    the text names both sizes and the option to change. Without ``--apply-exif`` this decodes the image
    once more (a refused file only).
    """
    size = (int(mask_hw[0]), int(mask_hw[1]))
    try:
        header = read_image_file_header(task.image)
        if header.format == "tiff":  # OpenCV's TIFF decoder applies the orientation tag whatever the option
            stored = (header.height, header.width)
            if stored == tuple(used) or check_mask_size(size, stored) is not None:
                return ""
            return (
                f"; the image is stored {stored[0]}x{stored[1]}, which the mask fits, and OpenCV's TIFF "
                f"decoder turns it to {used[0]}x{used[1]} by its orientation tag whatever --apply-exif: "
                "save the image as PNG or JPEG to use its stored pixels"
            )
        read = task.job.read
        if read.apply_exif:
            other = (header.height, header.width)  # as stored
        else:
            other = read_image(task.image, apply_exif=True, max_pixels=read.max_pixels).shape[:2]
    except InputError:  # pragma: no cover - it was just read
        return ""
    if tuple(other) == tuple(used) or check_mask_size(size, (int(other[0]), int(other[1]))) is not None:
        return ""
    if not task.job.read.apply_exif:
        return (
            f"; its EXIF orientation turns the image to {other[0]}x{other[1]}, which the mask fits: "
            "pass --apply-exif (apply_exif=True) if the masks were made for the upright images"
        )
    return (
        f"; the image is stored {other[0]}x{other[1]} and turned to {used[0]}x{used[1]} by its EXIF "
        "orientation, and the mask fits the stored pixels: drop --apply-exif (apply_exif) if "
        "the masks were made for the images as stored"
    )


def _crashed(task: _ApplyTask, problem: str) -> FileOutcome:
    """Return the outcome of a task whose worker died or raised (``problem`` says which)."""
    return FileOutcome(task.stem, "failed", task.mask, task.image, task.output, f"{task.mask}: {problem}")


#: Distinct values :class:`_Keeper` shares at most (auto decisions and encodings); others are kept as is.
_MAX_SHARED = 4096
_STATUSES: dict[str, Status] = {status: status for status in get_args(Status)}


def _frozen(value: Any) -> Any:
    """Return a hashable key of a JSON-ready value, equal only for values written alike.

    ``True``, ``1`` and ``1.0`` are equal in Python but not in JSON, nor are ``0.0`` and ``-0.0``.
    """
    if isinstance(value, dict):
        return ("{}", tuple((key, _frozen(item)) for key, item in value.items()))
    if isinstance(value, (list, tuple)):
        return ("[]", tuple(_frozen(item) for item in value))
    if isinstance(value, float):
        return (float, repr(value))
    return (type(value), value)


class _Keeper:
    """What a job keeps of each file's outcome (``keep`` of :func:`~maskrefine.pipeline.workers.run_tasks`).

    A job may hold a million outcomes until its report is written. Each kept outcome shares the task's
    stem and paths (an outcome from a worker process arrives with copies of its own), and one object per
    distinct auto decision and encoding (most files share the same few): a few hundred bytes per file
    instead of a few kilobytes. The values are equal to the outcome's, so the report is the same.
    """

    __slots__ = ("_shared",)

    def __init__(self) -> None:
        self._shared: dict[Any, Any] = {}

    def _share(self, value: Any) -> Any:
        if value is None:
            return None
        key = _frozen(value)
        found = self._shared.get(key)
        if found is not None:
            return found
        if len(self._shared) < _MAX_SHARED:
            self._shared[key] = value
        return value

    def __call__(self, task: _ApplyTask, outcome: FileOutcome) -> FileOutcome:
        """Return ``outcome`` (of ``task``) with the task's stem and paths and shared values."""
        if not isinstance(outcome, FileOutcome):  # pragma: no cover - a per-file function replaced in a test
            return outcome
        return FileOutcome(
            task.stem,
            _STATUSES.get(outcome.status, outcome.status),
            task.mask,
            task.image,
            task.output,
            outcome.error,
            outcome.seconds,
            encoding=self._share(outcome.encoding),
            decision=self._share(outcome.decision),
            image_encoding=self._share(outcome.image_encoding),
        )


class _Removal:
    """``stop_when`` of a job: True once the output folder is found removed (asked after a failed file).

    ``found``: it was; ``lost``: the files failed since (their writes could not succeed), to which the
    job adds those not started.
    """

    __slots__ = ("folder", "found", "lost")

    def __init__(self, folder: OutputFolder) -> None:
        self.folder = folder
        self.found = False
        self.lost = 0

    def __call__(self, outcome: FileOutcome) -> bool:
        """Return True when the run must stop (the output folder is gone)."""
        if isinstance(outcome, FileOutcome) and outcome.status == "failed":
            if self.found or self.folder.removed():
                self.found = True
                self.lost += 1
        return self.found


def _warm_up(method: str, params: Mapping[str, Any], guide: str) -> None:
    """Compile the method's kernels on a tiny synthetic image (errors are left to the real files).

    numba compiles per argument type, not value, so a radius of 2 and a subsample of 2 compile the same
    code as the real ones: the image stays a few kB whatever the parameters.
    """
    small = {key: min(value, 2) if key in ("radius", "subsample") else value for key, value in params.items()}
    size = 2 * 2 + 2 * 2 + 9
    rng = np.random.default_rng(0)
    image = rng.random((size, size + 3, 3), dtype=np.float32)
    mask = rng.random((size, size + 3), dtype=np.float32)
    # `auto` decides per file (on this full-size mask it would pick identity): warm up what it can pick
    settings = (
        [(m, g, {"radius": 2}) for m, g in auto_settings()] if method == "auto" else [(method, guide, small)]
    )
    for setting_method, setting_guide, setting_params in settings:
        try:
            refine(image, mask, setting_method, guide=setting_guide, **setting_params)
        except Exception:  # noqa: BLE001 - warm-up only
            pass


def apply_folder(
    masks_dir: str | os.PathLike[str],
    images_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    method: str = "guided",
    params: Mapping[str, Any] | None = None,
    guide: str = "mean",
    binary_input: bool = False,
    fmt: str = "png8",
    overwrite: bool = False,
    skip_existing: bool = False,
    jobs: int | None = None,
    shard: tuple[int, int] | str | None = None,
    progress: Progress | None = None,
    report_path: str | os.PathLike[str] | None = None,
    mask_scale: str | int = "auto",
    apply_exif: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    input_files: Mapping[str, str | os.PathLike[str]] | None = None,
) -> RunReport:
    """Refine every mask of ``masks_dir`` with its image from ``images_dir`` and write it to ``out_dir``.

    Safety: inputs are never modified; ``out_dir`` equal to, inside, or containing an input folder (after
    resolving symlinks) is refused before anything is written, as is any other usage problem, an empty
    path, and an output path holding anything but a regular file (folder, symlink, FIFO, device).
    ``out_dir`` is then opened once and every output is written through that open folder: if its path
    is renamed or re-pointed during the run (a symlink swapped to another folder), nothing is written
    into the new target. If the folder is removed during the run (deleted, or deleted and made anew), the
    job stops at the first file that cannot be written for that: ``OutputFolderRemovedError``, and the
    folder is never made again.
    Outputs are written to a temporary file in ``out_dir`` and published atomically; without
    ``overwrite`` they never replace a file (one published meanwhile by another run is kept and the
    stem reported as failed, or skipped with ``skip_existing``). One bad file (empty, truncated,
    not an image, a mask whose size cannot belong to the image, NaN in an ``.npy``) is recorded as a
    failure naming the file and the problem; the other files are processed and the report's ``ok`` is
    False. An unexpected exception in one file is recorded the same way (with the exception type).

    Parameters
    ----------
    masks_dir : path-like
        Masks (``.png`` 8- or 16-bit, ``.npy`` float/bool in [0, 1]) of any size that is a uniform
        downscale of the image: full size, 1/8 or 1/16 patch grids, ... (rule:
        :func:`maskrefine.refiners.check_mask_size`).
    images_dir : path-like
        Images (png, jpg, jpeg, bmp, tif, tiff, webp) paired with the masks by file stem.
    out_dir : path-like
        Output folder (created if missing); receives ``<stem>.png`` (``png8``/``png16``) or
        ``<stem>.npy``. It must not be, contain, or lie inside an input folder. An empty string is
        refused; note that ``pathlib.Path("")`` is ``Path(".")`` (the current folder) before this
        function sees it, and ``Path("x/.")`` is ``Path("x")``: pass strings to have such paths refused.
    method : str, default "guided"
        A key of :data:`maskrefine.refiners.REFINERS`; ``"auto"`` decides per mask
        (:mod:`maskrefine.auto`) and records its decision in each outcome (``decision``).
    params : mapping, optional
        Method parameters overriding its defaults (``None`` values are ignored).
    guide : {"mean", "luma", "color"}, default "mean"
        Guide built from the image (:func:`maskrefine.guide.make_guide`).
    binary_input : bool, default False
        Masks are hard: resize them with nearest-neighbour instead of bilinear interpolation.
    fmt : {"png8", "png16", "npy"}, default "png8"
        Output format.
    overwrite : bool, default False
        Replace existing outputs.
    skip_existing : bool, default False
        Leave existing outputs alone and report them as skipped (resume an interrupted run); stale
        temporary files of this job's outputs (:func:`maskrefine.io.imageio.remove_stale_temps`) are
        removed first. With neither flag, existing outputs make the job refuse to start (``ConfigError``
        naming the first ones) so that a rerun never half-overwrites a folder. With ``report_path``, a
        resume whose settings differ from those the existing report records for ``out_dir``
        (:func:`~maskrefine.pipeline.merge.check_resume_settings`) is refused too.
    jobs : int, optional
        Files processed at once (None: one per available core); each worker runs OpenCV and numba
        single-threaded, so ``jobs`` is the number of cores used. ``jobs=1`` runs in this process;
        otherwise forked worker processes (Linux) inherit the kernels compiled once here, or a thread
        pool where ``fork`` is unavailable (see :mod:`maskrefine.pipeline.workers`). Outputs are
        byte-identical for any value.
    shard : (int, int) or str, optional
        ``(k, n)`` or ``"k/n"``, **1-based** k: process only the stems of shard k of n (stable SHA-1
        hash of the stem). Unmatched and duplicated names are sharded the same way.
    progress : callable, optional
        ``progress(done, total)``, called after each file (skipped files count as done at once).
    report_path : path-like, optional
        Write the report (:meth:`RunReport.write_json`) there at the end. Checked with the other
        settings: it must not be (inside) an input folder, the output folder, one of the outputs, or
        one of ``input_files``; an existing file there is replaced only when it is a report or CSV
        maskrefine wrote, or empty (:func:`~maskrefine.pipeline.guards.check_report_replaceable`), or
        with ``overwrite``.
    mask_scale : {"auto", "255", "1", "65535"}, default "auto"
        How integer mask values are scaled (:func:`maskrefine.io.read_mask_file`): ``"auto"`` detects
        0/1 masks and 16-bit files holding 8-bit values. Each written file's ``encoding`` is reported.
    apply_exif : bool, default False
        Turn images upright by their EXIF orientation (False: as stored, as the references read them).
    max_pixels : int or None, default :data:`maskrefine.io.DEFAULT_MAX_PIXELS`
        Refuse (per file, from its header, before decoding) an image or mask with more pixels (None: no
        limit).
    input_files : mapping of str to path-like, optional
        Other files the job reads, by name (e.g. ``{"preset file": "best.toml"}`` from
        ``apply --preset-file``): refused as the report path or as one of the outputs, so that no
        output replaces them.

    Returns
    -------
    RunReport
        Per-file outcomes, unmatched names, duplicates and timing; ``report.ok`` is False if any file
        failed.

    Raises
    ------
    ConfigError
        Before anything is written: missing input folder, unsafe ``out_dir`` or ``report_path``,
        unknown method / guide / format / parameter, invalid ``jobs``, ``shard``, ``mask_scale`` or
        ``max_pixels``, ``overwrite`` with ``skip_existing``, existing outputs without either flag, or
        ``skip_existing`` with other settings than ``report_path`` records for ``out_dir``.
    OutputFolderRemovedError
        ``out_dir`` was removed during the run: no further file was started, and the files without an
        output failed, saying why (``exc.report``, also written to ``report_path`` unless it lies in
        ``out_dir``; ``exc.not_processed`` counts them).
    ReportNotWrittenError
        The files were processed, but the report could not be written at ``report_path``
        (``exc.report`` holds the outcomes).
    """
    start = time.perf_counter()
    started = time.time()
    masks_path = check_folder(masks_dir, "masks")
    images_path = check_folder(images_dir, "images")
    out_path = path_argument(out_dir, "output folder")
    input_folders = {"masks": masks_path, "images": images_path}
    check_output_folder(out_path, input_folders)
    if input_files is not None and not isinstance(input_files, Mapping):
        raise ConfigError(f"input_files must be a mapping of name to path; got {type(input_files).__name__}")
    read_files = {name: path_argument(path, name) for name, path in (input_files or {}).items()}
    report_file = None
    if report_path is not None:
        report_file = file_path_argument(report_path, "report file")
        check_output_file(
            report_file,
            "report file",
            input_folders,
            input_files=read_files,
            taken={"output folder": resolved_path(out_path, "output folder")},
        )
    overwrite, skip_existing, binary_input = job_flags(
        overwrite=overwrite, skip_existing=skip_existing, binary_input=binary_input
    )
    if report_file is not None:
        check_report_replaceable(
            report_file, "report file", overwrite=overwrite, how=RESUME_HOW if skip_existing else REPLACE_HOW
        )
    for value, name, choices in (
        (fmt, "fmt", OUTPUT_FORMATS),
        (guide, "guide", GUIDE_MODES),
        (method, "method", REFINERS),
    ):
        if not isinstance(value, str) or value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {short_repr(value)}")
    if params is not None and not isinstance(params, Mapping):
        raise ConfigError(f"params must be a mapping of parameter name to value; got {type(params).__name__}")
    if method == "auto" and (guide != "mean" or binary_input):  # ignored silently before
        given = f"guide {guide!r}" if guide != "mean" else "binary_input=True"
        raise ConfigError(
            f"{given}: method 'auto' picks its own guide and upsampling per mask kind; name the method "
            "they apply to (e.g. method='guided')"
        )
    guide_problem = unused_guide_problem(method, guide)
    if guide_problem is not None:
        raise ConfigError(f"guide {guide_problem}")
    check_progress(progress)
    try:
        resolved = resolve_params(method, params)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    try:
        read = ReadOptions.checked(mask_scale, apply_exif, max_pixels)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    workers = check_jobs(jobs)
    shard_kn = parse_shard(shard)

    job = _ApplyJob(
        method=method,
        params=resolved,
        guide=guide,
        binary_input=bool(binary_input),
        fmt=cast(MaskFormat, fmt),  # checked against OUTPUT_FORMATS above
        overwrite=bool(overwrite),
        skip_existing=bool(skip_existing),
        read=read,
    )
    plan = _plan(job, masks_path, images_path, out_path, shard_kn, report_file, read_files)
    # folders as absolute paths: shards run from other working folders stay comparable
    config = {
        "masks_dir": os.path.abspath(masks_path),
        "images_dir": os.path.abspath(images_path),
        "out_dir": os.path.abspath(out_path),
        "method": method,
        "params": resolved,
        "guide": None if method == "auto" else guide,  # auto picks one per file (its "auto" entry)
        "binary_input": bool(binary_input),
        "fmt": fmt,
        "overwrite": bool(overwrite),
        "skip_existing": bool(skip_existing),
        "jobs": workers,
        "shard": f"{shard_kn[0]}/{shard_kn[1]}" if shard_kn else None,
        "folder_pairs": plan.folder_pairs,  # in every shard: an empty shard of a full job is no error
        "mask_scale": read.mask_scale,
        "apply_exif": read.apply_exif,
        "max_pixels": read.max_pixels,
        **({"auto_rule": AUTO_RULE_TEXT} if method == "auto" else {}),
    }
    if skip_existing and report_file is not None and report_file.exists():
        kept = (task.output for task, existed in zip(plan.tasks, plan.existed, strict=True) if existed)
        check_resume_settings(report_file, config, out_path, kept)  # before any output is written
    # a report in the output folder is not written if that folder is removed during the run: the folder is
    # never made again (found now: the folder's path may lead elsewhere by then)
    report_in_out_dir = report_file is not None and is_within(
        resolved_path(report_file, "report file"), resolved_path(out_path, "output folder")
    )
    made_out_dir = not os.path.lexists(out_path)
    out_path.mkdir(parents=True, exist_ok=True)
    with open_output_folder(out_path, input_folders) as out_folder:
        job.folder = out_folder
        outcomes, not_processed = _run(job, plan, out_folder, workers, progress)
    job.folder = None
    if made_out_dir and not any(outcome.status == "written" for outcome in outcomes):
        remove_empty_folder(out_path)  # a run that wrote nothing leaves no folder of its own behind
    report = RunReport(
        outcomes=outcomes,
        unmatched=plan.unmatched,
        duplicates=plan.duplicates,
        elapsed=time.perf_counter() - start,
        config=config,
        not_regular=plan.not_regular,
        started=started,
    )
    del plan  # its tasks: a job may hold a million files, and the outcomes keep what the report needs
    if not_processed is not None:  # the output folder was removed: the run stopped there
        stop_for_removed_output_folder(
            report,
            out_path,
            not_processed,
            report_file,
            report_in_out_dir=report_in_out_dir,
            overwrite=overwrite,
            input_folders=input_folders,
        )
    if report_file is not None:
        write_run_report(report, report_file, overwrite=overwrite, input_folders=input_folders)
    return report


@dataclass(slots=True)
class _Plan:
    """The files of a job, checked: what :func:`apply_folder` runs and reports besides the outcomes."""

    tasks: list[_ApplyTask]
    #: 1 for each task whose output existed at the start, else 0: kept (skipped) with ``skip_existing``,
    #: replaced with ``overwrite`` (the job refuses to start on existing outputs without either flag).
    existed: bytearray
    unmatched: list[Unmatched]
    duplicates: dict[str, list[Path]]
    not_regular: list[Failure]
    #: Pairs of the two folders in every shard.
    folder_pairs: int


def _plan(
    job: _ApplyJob,
    masks_path: Path,
    images_path: Path,
    out_path: Path,
    shard_kn: tuple[int, int] | None,
    report_file: Path | None,
    read_files: Mapping[str, Path],
) -> _Plan:
    """Pair the folders and check the outputs (ConfigError before anything is written).

    The pairing, and the names of every shard's outputs, are dropped on return: each task keeps the
    paths it needs, shared with its outcome.
    """
    pairing = match_folders(masks_path, images_path, MASK_EXTENSIONS, IMAGE_EXTENSIONS)
    unmatched, duplicates = unmatched_and_duplicates(pairing, "masks", "images", shard_kn)
    not_regular = not_regular_entries(pairing, shard_kn)
    suffix = OUTPUT_FORMATS[job.fmt]
    tasks = [
        _ApplyTask(pair.stem, pair.first, pair.second, out_path / f"{pair.stem}{suffix}", job)
        for pair in pairing.pairs
        if in_shard(pair.stem, shard_kn)
    ]
    # every shard's outputs: a report named like another shard's output would be replaced by it (or
    # replace it), and the shards' union would no longer be the full run
    if report_file is not None or read_files:
        output_names = {f"{pair.stem}{suffix}" for pair in pairing.pairs}
        if report_file is not None:
            check_not_an_output(report_file, "report file", out_path, output_names)
        for name, file in read_files.items():
            check_not_an_output(file, name, out_path, output_names)
    # by name: hashing a Path caches its parts' hash in it, for every task
    existing_names = {path.name for path in check_output_targets([task.output for task in tasks], out_path)}
    existing = [task for task in tasks if task.output.name in existing_names]
    if job.overwrite:  # an input that is a symlink to an output (in any shard) would be replaced
        every_input = (path for pair in pairing.pairs for path in (pair.first, pair.second))
        check_inputs_are_not_outputs(every_input, [task.output for task in existing])
    if existing and not (job.overwrite or job.skip_existing):
        names = ", ".join(task.output.name for task in existing[:3]) + (", ..." if len(existing) > 3 else "")
        raise ConfigError(
            f"{len(existing)} output(s) already exist in {out_path} ({names}); "
            "use --overwrite (overwrite=True) to replace them or --skip-existing (skip_existing=True) "
            "to keep them and resume"
        )
    existed = bytearray(len(tasks))  # one byte per file: a set of the stems would take about 100
    if existing:
        for index, task in enumerate(tasks):
            existed[index] = task.output.name in existing_names
    return _Plan(
        tasks,
        existed,
        unmatched,
        duplicates,
        not_regular,
        len(pairing.pairs),
    )


def _run(
    job: _ApplyJob, plan: _Plan, out_folder: OutputFolder, workers: int, progress: Progress | None
) -> tuple[list[FileOutcome], int | None]:
    """Process the plan's files through ``out_folder``; return every file's outcome, in order.

    And None, or the number of files not processed because the output folder was removed during the run
    (found after a file failed): no further file is started then, and those not started fail, saying why.
    """
    tasks, resume = plan.tasks, job.skip_existing  # resume: the outputs that existed are kept
    if resume:  # our own temporary files left by a killed run
        out_folder.remove_stale_temps({task.output.name for task in tasks})
    todo = [task for task, existed in zip(tasks, plan.existed, strict=True) if not (resume and existed)]
    if progress is not None and len(todo) < len(tasks):
        progress(len(tasks) - len(todo), len(tasks))
    removal = _Removal(out_folder)
    results = run_tasks(  # forked workers inherit the folder's descriptor
        _apply_one,
        todo,
        jobs=workers,
        warm_up=functools.partial(_warm_up, job.method, job.params, job.guide),
        on_crash=_crashed,
        progress=progress,
        done_before=len(tasks) - len(todo),
        total=len(tasks),
        keep=_Keeper(),
        stop_when=removal,
    )
    done = iter(results)
    outcomes = []
    for task, existed in zip(tasks, plan.existed, strict=True):
        if resume and existed:
            outcomes.append(FileOutcome(task.stem, "skipped", task.mask, task.image, task.output))
            continue
        outcome = next(done)
        if outcome is None:  # not started: the output folder was removed
            removal.lost += 1
            outcome = not_processed_outcome(
                task.stem, task.mask, task.image, task.output, out_folder.path, task.mask
            )
        elif existed:  # overwrite, and it failed: the earlier output is still there, said in its error
            outcome = earlier_output_kept(outcome)
        outcomes.append(outcome)
    if not removal.found and out_folder.removed():  # after the last write (or every file skipped)
        removal.found = True
    return outcomes, removal.lost if removal.found else None
