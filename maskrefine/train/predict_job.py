"""``predict`` on a folder: the job's checks, run before torch loads, and its loop (docs/training.md §6).

:func:`predict_folder` checks every path and option first, without torch (about 4 s to import on a
2-core machine): a bad ``--out``, ``--report`` or format is refused at once. Then it loads the checkpoint
and the model (:mod:`maskrefine.train.predict`) and writes one soft mask per image.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

from maskrefine._checks import short_repr
from maskrefine.errors import ConfigError
from maskrefine.io.options import DEFAULT_MAX_PIXELS
from maskrefine.train.preflight import check_checkpoint_path

if TYPE_CHECKING:
    import numpy as np

    from maskrefine.io.imageio import MaskFormat, OutputFolder
    from maskrefine.pipeline import RunReport
    from maskrefine.train.predict import Prediction

__all__ = ["REFINE_MODES", "RefineMode", "check_refine", "check_device_name", "predict_folder"]

RefineMode = Literal["auto", "guided", "none"]
REFINE_MODES = ("auto", "guided", "none")


def check_refine(refine: object) -> RefineMode:
    """Return ``refine`` when it is one of :data:`REFINE_MODES`; ConfigError naming it otherwise."""
    if refine not in REFINE_MODES:
        raise ConfigError(f"refine must be one of {', '.join(REFINE_MODES)}; got {short_repr(refine)}")
    return cast(RefineMode, refine)  # one of REFINE_MODES, checked above


def check_device_name(device: object) -> None:
    """Refuse (ConfigError) a device that is not ``cpu``, ``cuda`` or ``cuda:N``.

    Whether it is usable needs torch: :func:`maskrefine.train.predict.check_usable_device`.
    """
    from maskrefine.train.config import is_device_name

    if not is_device_name(device):
        raise ConfigError(f"--device must be cpu, cuda or cuda:N; got {short_repr(device)}")


def check_input_file_not_replaced(
    file: str, what: str, out_dirs: list[Path], names: set[str], report_file: Path | None
) -> None:
    """Refuse (ConfigError) an input file (read from the checkpoint) that an output would replace.

    ``out_dirs`` are the folders the job writes ``names`` to; ``report_file`` the report, if any.
    """
    from maskrefine.pipeline.guards import check_not_an_output, refuse_input_file

    for out_dir in out_dirs:
        check_not_an_output(Path(file), what, out_dir, names)
    if report_file is not None:
        refuse_input_file(report_file, "report file", {what: Path(file)})


#: What ``maskrefine train`` keeps in its run folder besides the checkpoints' own names (``*.pt``).
_RUN_RECORDS = ("config.json", "log.jsonl", "config.resume-*.json", "*.pt")


def _run_records(run_dir: Path) -> dict[str, Path]:
    """List the training run's records next to the checkpoint, which a predict report must not replace."""
    try:
        return {
            f"training run's {path.name}": path
            for pattern in _RUN_RECORDS
            for path in sorted(run_dir.glob(pattern))
            if path.is_file()
        }
    except OSError:  # an unlistable folder: the checkpoint itself is still protected
        return {}


def predict_folder(
    images_dir: str | os.PathLike[str],
    checkpoint: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    fmt: str = "png8",
    refine: str = "auto",
    save_coarse: bool = False,
    device: str = "cpu",
    backbone_checkpoint: str | os.PathLike[str] | None = None,
    bn_mode: str | None = None,
    polarity: str | None = None,
    overwrite: bool = False,
    skip_existing: bool = False,
    progress: Callable[[int, int], None] | None = None,
    report_path: str | os.PathLike[str] | None = None,
    apply_exif: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> RunReport:
    """Predict a soft mask for every image of ``images_dir`` and write it to ``out_dir``.

    Outputs are ``out_dir/<stem>.png`` (``png8``/``png16``) or ``.npy`` (float32), at each image's size,
    in [0, 1]; with ``save_coarse`` also ``out_dir/coarse/<stem>.<ext>`` at the head's grid resolution (a
    uniform downscale of the image, never larger than it, so ``maskrefine apply`` accepts it; see
    :class:`Prediction`). An image whose network input would exceed the size cap (an aspect ratio above
    about 8:1, see the module's notes) is reported as failed, naming both sizes.

    The rules of ``apply`` hold: the output folder must not be, contain or lie inside the images folder, and
    must not be a symbolic link; a folder, symlink or FIFO at an output path is refused; existing outputs
    need ``overwrite`` or ``skip_existing`` (a stem is skipped only when all its outputs exist: the missing
    ones are written, the others kept); without ``overwrite`` no file is replaced, not even one that appears
    during the run (another run's output: reported as failed, or skipped with ``skip_existing``); each file
    is written to a temporary file and renamed; an unreadable image is reported and the others are still
    written. The report must not be an input (the checkpoint, the backbone files) nor the output folder.

    ``images_dir`` is listed as ``apply`` lists its images folder: only the entries directly in it, hidden
    ones left out; an entry with an image suffix that is not a regular file (a FIFO, a dangling symlink, a
    folder named ``x.png``) is never opened and is named in ``report.not_regular`` (``report.ok`` is
    False); a file with a mask suffix (``.npy``) is named in ``report.unmatched``, with why it is not read;
    a stem named twice (``a.png`` and ``a.jpg``) is in ``report.duplicates`` and not predicted.

    Images are read as ``apply`` reads them (:func:`maskrefine.io.imageio.read_image`): ``apply_exif``
    (default False: the pixels as stored, as the field's reference code and ``maskrefine train`` read
    them) turns each image upright by its EXIF orientation first, and an image whose header claims more
    than ``max_pixels`` pixels (default 100 MP; None: no limit) is reported as failed without being
    decoded.

    Returns
    -------
    maskrefine.pipeline.RunReport
        One :class:`~maskrefine.pipeline.FileOutcome` per image (its ``mask`` field holds the checkpoint,
        predict has no input mask); ``report.ok`` is False when an image failed.

    Raises
    ------
    ConfigError
        Before anything is written: bad folders or checkpoint, unsafe output, existing outputs, bad options,
        or ``skip_existing`` with other settings than the existing ``report_path`` records for ``out_dir``
        (:func:`~maskrefine.pipeline.merge.check_resume_settings` with
        :data:`~maskrefine.pipeline.merge.PREDICT_SETTING_KEYS`).
    OutputFolderRemovedError
        ``out_dir`` (or its ``coarse`` folder) was removed during the run: no further image was predicted,
        and those without their outputs failed, saying why (``exc.report``, also written to
        ``report_path`` unless it lies in ``out_dir``); the folder is never made again.
    """
    from maskrefine.errors import OutputError, OutputExistsError
    from maskrefine.io.imageio import ReadOptions
    from maskrefine.io.pairs import IMAGE_EXTENSIONS, MASK_FORMATS, MASK_SUFFIXES
    from maskrefine.pipeline import FileOutcome, RunReport
    from maskrefine.pipeline.guards import (
        REPLACE_HOW,
        RESUME_HOW,
        check_folder,
        check_inputs_are_not_outputs,
        check_not_an_output,
        check_output_file,
        check_output_folder,
        check_output_targets,
        check_progress,
        check_report_replaceable,
        file_path_argument,
        is_within,
        job_flags,
        open_output_folder,
        path_argument,
        remove_empty_folder,
        resolved_path,
    )
    from maskrefine.pipeline.merge import PREDICT_SETTING_KEYS, check_resume_settings
    from maskrefine.pipeline.reports import (
        describe_unexpected,
        earlier_output_kept,
        list_input_folder,
        not_processed_outcome,
        stop_for_removed_output_folder,
        write_run_report,
    )

    start = time.perf_counter()
    for value, what, hint in (
        (images_dir, "--images", "give the images folder"),
        (checkpoint, "--checkpoint", "give RUN_DIR/last.pt"),
        (out_dir, "--out", "give an output folder"),
    ):
        if isinstance(value, str) and value == "":  # never the current folder
            raise ConfigError(f"{what}: empty path; {hint}")
    check_progress(progress)
    images_path = check_folder(images_dir, "images")  # a str or Path (path_argument), like the two below
    path_argument(checkpoint, "--checkpoint")
    out_path = path_argument(out_dir, "--out")
    if out_path.is_symlink():
        raise ConfigError(f"output {out_path} is a symbolic link; give the real folder")
    check_output_folder(out_path, {"images": images_path})
    overwrite, skip_existing, save_coarse = job_flags(
        overwrite=overwrite, skip_existing=skip_existing, save_coarse=save_coarse
    )
    if fmt not in MASK_FORMATS:
        raise ConfigError(f"format must be one of {', '.join(MASK_FORMATS)}; got {short_repr(fmt)}")
    mask_format = cast("MaskFormat", fmt)  # one of MASK_FORMATS, checked above
    try:
        read = ReadOptions.checked("auto", apply_exif, max_pixels)  # predict reads no mask
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    refine_mode = check_refine(refine)  # before any work; Predictor checks it again for direct callers
    check_device_name(device)
    check_checkpoint_path(checkpoint, "checkpoint")  # missing, a folder, a FIFO, empty: before torch loads
    # inputs the report must never replace: the checkpoint and the backbone files (given; the run's is
    # read from the checkpoint below)
    input_files = {"checkpoint": Path(checkpoint)}
    if backbone_checkpoint is not None:
        if isinstance(backbone_checkpoint, str) and backbone_checkpoint == "":
            raise ConfigError("--backbone-checkpoint: empty path; give a local checkpoint file")
        input_files["backbone checkpoint"] = path_argument(backbone_checkpoint, "backbone_checkpoint")
        # missing, a folder, a FIFO, empty: before torch loads, as the checkpoint's path
        check_checkpoint_path(input_files["backbone checkpoint"], "--backbone-checkpoint")
    suffix = MASK_SUFFIXES[fmt]
    # listed as apply lists its --images folder: entries that are not regular files, and files with
    # another image or mask suffix (a .npy), are reported, never opened
    by_stem, duplicates, unmatched, not_regular = list_input_folder(images_path, "images", IMAGE_EXTENSIONS)
    jobs = sorted(by_stem.items())
    coarse_dir = out_path / "coarse"
    out_dirs = [out_path, coarse_dir] if save_coarse else [out_path]
    names = {f"{stem}{suffix}" for stem, _ in jobs}
    for name, file in input_files.items():  # an output there would replace the checkpoint itself
        for folder in out_dirs:
            check_not_an_output(file, name, folder, names)
    report_file = None
    if report_path is not None:
        report_file = file_path_argument(report_path, "--report")
        check_output_file(
            report_file,
            "report file",
            {"images": images_path, "coarse": coarse_dir},
            input_files={**input_files, **_run_records(Path(checkpoint).parent)},
            taken={"output folder": out_path.resolve()},
        )
        check_not_an_output(report_file, "report file", out_path, names)
    if save_coarse and coarse_dir.is_symlink():  # also a dangling one, which exists() does not see
        raise ConfigError(f"{coarse_dir} is a symbolic link; --save-coarse writes a real folder there")
    if save_coarse and coarse_dir.exists() and not coarse_dir.is_dir():
        raise ConfigError(f"{coarse_dir} exists and is not a folder")

    def outputs(stem: str) -> list[Path]:
        return [out_path / f"{stem}{suffix}"] + ([coarse_dir / f"{stem}{suffix}"] if save_coarse else [])

    # a folder, symlink or FIFO at an output path is refused here, before the model is loaded
    present = set(check_output_targets([outputs(stem)[0] for stem, _ in jobs], out_path))
    if save_coarse:
        present |= set(check_output_targets([outputs(stem)[1] for stem, _ in jobs], coarse_dir))
    existing = [stem for stem, _ in jobs if any(p in present for p in outputs(stem))]
    if overwrite:  # an input image that is a symlink to an output would be replaced
        check_inputs_are_not_outputs((path for _, path in jobs), present)
    if existing and not (overwrite or skip_existing):
        shown = ", ".join(f"{s}{suffix}" for s in existing[:3]) + (", ..." if len(existing) > 3 else "")
        raise ConfigError(
            f"{len(existing)} output(s) already exist in {out_path} ({shown}); "
            "use --overwrite (overwrite=True) to replace them or --skip-existing (skip_existing=True) "
            "to keep them and resume"
        )
    # everything above is torch-free: a bad path or option is refused before torch's import (seconds)
    from maskrefine.train import require_torch

    require_torch()  # seconds; a broken torch is a BackendUnavailableError saying why
    from maskrefine.train import predict as model_side
    from maskrefine.train.checkpoint import weights_digest

    model_side.check_usable_device(device)
    state = model_side.load_state(checkpoint)
    recorded = cast("dict[str, object]", state["config"]).get("backbone_checkpoint")
    if isinstance(recorded, str) and recorded:  # the run's backbone file: never an output either
        check_input_file_not_replaced(recorded, "run's backbone checkpoint", out_dirs, names, report_file)
    if report_file is not None:  # after the inputs' checks, whose messages say more
        check_report_replaceable(
            report_file, "report file", overwrite=overwrite, how=RESUME_HOW if skip_existing else REPLACE_HOW
        )
    predictor = model_side.predictor_from_state(
        state,
        checkpoint,
        device=device,
        refine=refine_mode,
        backbone_checkpoint=backbone_checkpoint,
        bn_mode=bn_mode,
        polarity=polarity,
    )
    # folders and files as absolute paths, as apply records them
    config = {
        "images_dir": os.path.abspath(images_path),
        "checkpoint": os.path.abspath(checkpoint),
        # the weights, not the file: a checkpoint retrained in place (same path) is another setting
        "head_sha256": weights_digest(predictor.model.head),
        "out_dir": os.path.abspath(out_path),
        "fmt": fmt,
        "refine": predictor.refine,
        "save_coarse": bool(save_coarse),
        "device": str(device),
        "bn_mode": predictor.bn_mode,
        "polarity": predictor.polarity,
        "overwrite": bool(overwrite),
        "skip_existing": bool(skip_existing),
        "apply_exif": read.apply_exif,
        "max_pixels": read.max_pixels,
    }
    if skip_existing and report_file is not None and report_file.exists():  # before any write
        check_resume_settings(report_file, config, out_path, present, PREDICT_SETTING_KEYS)
    # a report in the output folder is not written if that folder is removed during the run (never made
    # again); found now, as the folder's path may lead elsewhere by then
    report_in_out_dir = report_file is not None and is_within(
        resolved_path(report_file, "report file"), resolved_path(out_path, "--out")
    )
    # the folders this run makes (removed again, empty, when it writes nothing): coarse first
    made = [f for f in ([coarse_dir] if save_coarse else []) + [out_path] if not os.path.lexists(f)]
    out_path.mkdir(parents=True, exist_ok=True)
    # every output is written through these open folders, never by path again: a --out renamed or
    # re-pointed during the run (a symlink swapped in) is never followed to another folder
    # --out must not be a symlink (above); checked again once open: the folder opened is the one checked
    folders = [open_output_folder(out_path, {"images": images_path}, follow_symlinks=False)]
    try:
        if save_coarse:
            folders.append(folders[0].subfolder(coarse_dir.name, create=True))
        if skip_existing:  # resume: our own temporary files left by a killed run
            for index, output_folder in enumerate(folders):
                output_folder.remove_stale_temps({outputs(stem)[index].name for stem, _ in jobs})
    except BaseException:
        for output_folder in folders:
            output_folder.close()
        raise

    ckpt = Path(checkpoint)
    outcomes: dict[str, FileOutcome] = {}
    # resume: a stem is done only when all its outputs exist; a half-written one gets the missing ones
    skipped = {s for s in existing if all(p in present for p in outputs(s))} if skip_existing else set()
    for stem in skipped:
        outcomes[stem] = FileOutcome(stem, "skipped", ckpt, by_stem[stem], outputs(stem)[0])
    todo = [(stem, path) for stem, path in jobs if stem not in skipped]
    total, done = len(jobs), len(skipped)
    if progress is not None and done:
        progress(done, total)
    # group consecutive images into batches of the predictor's size (1 unless batch statistics)
    loaded: list[tuple[str, Path, np.ndarray, float]] = []
    # files not processed because an output folder was removed during the run (None: it was not); found
    # after a write failed: no further file is processed then
    lost: int | None = None

    def write_outputs(stem: str, path: Path, pred: Prediction, t0: float) -> FileOutcome:
        """Write the stem's missing outputs; never replace a file unless ``overwrite`` (rules of apply)."""
        target = outputs(stem)
        kept = 0
        for output, output_folder, mask in zip(target, folders, (pred.fine, pred.coarse), strict=False):
            if output in present and not overwrite:  # resume (skip_existing): kept as it is
                kept += 1
                continue
            try:
                output_folder.write_mask(output.name, mask, mask_format, overwrite=overwrite)
            except OutputExistsError as exc:  # another run published it meanwhile: never replaced
                if skip_existing:
                    kept += 1
                    continue
                problem = (
                    f"{exc.path}: output appeared meanwhile (another run writing to the same folder?); "
                    "kept it, not replaced"
                )
            except OutputError as exc:
                problem = str(exc)
            except OSError as exc:
                problem = f"{exc.filename or output}: cannot write: {exc.strerror or exc}"
            except Exception as exc:  # noqa: BLE001 - one file never ends the run
                problem = describe_unexpected(output, exc)
            else:
                continue
            return FileOutcome(stem, "failed", ckpt, path, target[0], problem, time.perf_counter() - t0)
        if kept == len(target):
            return FileOutcome(stem, "skipped", ckpt, path, target[0])
        return FileOutcome(stem, "written", ckpt, path, target[0], None, time.perf_counter() - t0)

    def flush() -> None:
        nonlocal done, lost
        if not loaded:
            return
        groups: dict[tuple[int, int], list] = {}
        for item in loaded:
            problem = predictor.input_problem(*item[2].shape[:2])
            if problem is not None:  # too large for the network: this file fails, the others go on
                stem, path, _, t0 = item
                outcomes[stem] = FileOutcome(
                    stem, "failed", ckpt, path, outputs(stem)[0], f"{path}: cannot predict: {problem}"
                )
                continue
            groups.setdefault(predictor._input_size(*item[2].shape[:2]), []).append(item)
        for items in groups.values():
            try:
                predictions = predictor.predict([item[2] for item in items])
            except Exception as exc:  # noqa: BLE001 - one batch never ends the run
                why = _out_of_memory(exc, len(items)) or f"{type(exc).__name__}: {exc}"
                for stem, path, _, t0 in items:
                    outcomes[stem] = FileOutcome(
                        stem,
                        "failed",
                        ckpt,
                        path,
                        outputs(stem)[0],
                        f"{path}: cannot predict: {why}",
                        time.perf_counter() - t0,
                    )
                continue
            for (stem, path, _, t0), pred in zip(items, predictions, strict=True):
                if lost is not None:  # the output folder is gone: the rest of the batch is not written
                    continue
                outcomes[stem] = write_outputs(stem, path, pred, t0)
                if outcomes[stem].status == "failed" and removed_folder() is not None:
                    lost = 1
        done += len(loaded)
        loaded.clear()
        if progress is not None:
            progress(done, total)

    def removed_folder() -> OutputFolder | None:
        """Return the output folder found removed (--out before its coarse folder), or None."""
        return next((folder for folder in folders if folder.removed()), None)

    gone: OutputFolder | None = None
    from maskrefine._signals import StopRequest, stops_deferred
    from maskrefine.errors import InputError
    from maskrefine.io.imageio import read_image

    # Ctrl-C / SIGTERM: no new image is read; the ones read (a batch in progress) are still predicted and
    # written, then the stop is raised (as apply's files in progress are finished)
    stop = StopRequest()
    try:
        with stops_deferred(stop):
            for stem, path in todo:
                if stop.requested or lost is not None:
                    break
                t0 = time.perf_counter()
                try:
                    image = read_image(path, apply_exif=read.apply_exif, max_pixels=read.max_pixels)
                except InputError as exc:
                    outcomes[stem] = FileOutcome(
                        stem, "failed", ckpt, path, outputs(stem)[0], str(exc), time.perf_counter() - t0
                    )
                    done += 1
                    if progress is not None:
                        progress(done, total)
                    continue
                loaded.append((stem, path, image, t0))
                if len(loaded) >= predictor.batch_size:
                    flush()
            flush()
        if lost is None and removed_folder() is not None:
            lost = 0  # removed after its last write: the outputs went with it
        gone = removed_folder() if lost is not None else None  # asked before the folders are closed
    finally:
        for output_folder in folders:
            output_folder.close()
    if stop.requested:
        raise stop.exception()
    # the folder named: --out, or only its coarse folder (a report in --out is then still written)
    gone_path = out_path if gone is None or gone is folders[0] else coarse_dir
    if lost is not None:  # the files not started, and the rest of the batch in progress
        for stem, path in todo:
            if stem not in outcomes:
                outcomes[stem] = not_processed_outcome(stem, ckpt, path, outputs(stem)[0], gone_path, path)
                lost += 1
    if overwrite and lost is None:  # a failed image's earlier output is still there: said in its error
        for stem, _ in jobs:
            if outputs(stem)[0] in present:
                outcomes[stem] = earlier_output_kept(outcomes[stem])
    if not any(outcome.status == "written" for outcome in outcomes.values()):
        for folder in made:
            remove_empty_folder(folder)  # a run that wrote nothing leaves no folder of its own behind
    report = RunReport(
        outcomes=[outcomes[stem] for stem, _ in jobs],
        unmatched=unmatched,
        duplicates=duplicates,
        elapsed=time.perf_counter() - start,
        config=config,
        not_regular=not_regular,
    )
    if lost is not None:
        stop_for_removed_output_folder(
            report,
            gone_path,
            lost,
            report_file,
            report_in_out_dir=report_in_out_dir and gone_path == out_path,  # never in coarse (checked)
            overwrite=overwrite,
            input_folders={"images": images_path},
        )
    if report_file is not None:
        write_run_report(report, report_file, overwrite=overwrite, input_folders={"images": images_path})
    return report


#: torch's words for an allocation that failed (CPU: "DefaultCPUAllocator: not enough memory: you tried
#: to allocate N bytes"; CUDA: torch.OutOfMemoryError, "CUDA out of memory. Tried to allocate 1.50 GiB").
_ALLOCATION_FAILED = re.compile(r"(?:not enough memory|out of memory)", re.IGNORECASE)
_ALLOCATION_SIZE = re.compile(
    r"tried to allocate (\d+) bytes|tried to allocate ([\d.]+ [KMGT]iB)", re.IGNORECASE
)


def _out_of_memory(exc: BaseException, images: int) -> str | None:
    """Say that a batch of ``images`` ran out of memory, and how much torch asked for; None for other errors.

    torch's own message is an allocator's internal error (``[enforce fail at alloc_cpu.cpp:127] ...``).
    """
    if not isinstance(exc, RuntimeError) or not _ALLOCATION_FAILED.search(str(exc)):
        return None
    found = _ALLOCATION_SIZE.search(str(exc))
    size = ""
    if found is not None:
        size = f" {int(found.group(1)) / 2**30:.1f} GiB" if found.group(1) else f" {found.group(2)}"
    return (
        f"out of memory: torch could not allocate{size or ' the memory'} for a batch of {images} image(s) at "
        "the checkpoint's image_size; predict on a machine (or --device) with more memory, or with a "
        "checkpoint trained at a smaller image_size"
    )
