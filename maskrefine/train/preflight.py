"""Checks of a training run made before torch loads: settings, folders, images, backbone file.

:func:`check_training_run` validates everything ``train`` needs from the file system (the run folder,
the training and validation images' headers, the backbone checkpoint file) and returns a
:class:`TrainingRun` for :func:`maskrefine.train.trainer.train_checked`. Nothing here imports torch, so
``maskrefine train`` refuses a bad folder or image in well under a second instead of after torch's
import (about 4 s on a 2-core machine). The same holds for :func:`list_images` and
:func:`check_checkpoint_path`, which ``predict`` uses before loading the model.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maskrefine.errors import MAX_LISTED, ConfigError
from maskrefine.io import IMAGE_EXTENSIONS
from maskrefine.io.options import DEFAULT_MAX_PIXELS
from maskrefine.train.config import MISSING_BACKBONE_CHECKPOINT, TrainConfig

if TYPE_CHECKING:
    from maskrefine.io.headers import ImageHeader

__all__ = [
    "MAX_ASPECT_RATIO",
    "MAX_LISTED",
    "FileProblems",
    "TrainingRun",
    "check_checkpoint_path",
    "check_training_images",
    "check_training_run",
    "list_images",
    "validation_pairs",
]

Progress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class TrainingRun:
    """A training run whose settings, folders and files :func:`check_training_run` accepted.

    Parameters
    ----------
    cfg : TrainConfig
        The settings; a ViT backbone file's path made absolute (``predict`` finds it from any folder).
    images_path : Path
        The training images' folder.
    run_path : Path
        The run folder (may not exist yet).
    files : list of Path
        The training images, sorted by name (at least two, every header read).
    resume : bool
        Continue from ``run_path/last.pt``.
    val_images, val_gt : path-like or None
        The validation folders as given (recorded in ``config.json``).
    val_pairs : list of (Path, Path) or None
        The validation image and ground-truth files, paired by stem, headers read.
    progress : callable or None
        Called with each step's record.
    """

    cfg: TrainConfig
    images_path: Path
    run_path: Path
    files: list[Path]
    resume: bool
    val_images: str | os.PathLike[str] | None
    val_gt: str | os.PathLike[str] | None
    val_pairs: list[tuple[Path, Path]] | None
    progress: Progress | None


def check_training_run(
    cfg: TrainConfig,
    images_dir: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    *,
    resume: bool = False,
    val_images: str | os.PathLike[str] | None = None,
    val_gt: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> TrainingRun:
    """Check a training run's arguments and files before any work; see :func:`maskrefine.train.train`.

    Returns
    -------
    TrainingRun

    Raises
    ------
    ConfigError
        Bad settings type, folders or progress callable; no or unreadable training images; an unsafe run
        folder; validation files without a partner or with unreadable headers; a backbone path that is
        empty, a URL or not a regular non-empty file. (What needs torch, the device and the checkpoint's
        contents, is checked by :func:`maskrefine.train.trainer.train_checked`.)
    """
    if not isinstance(cfg, TrainConfig):
        raise ConfigError(f"cfg must be a TrainConfig (maskrefine.train.preset); got {type(cfg).__name__}")
    from maskrefine.pipeline.guards import job_flags, path_argument

    (resume,) = job_flags(resume=resume)
    if progress is not None and not callable(progress):  # before any work, not after the first step
        raise ConfigError(
            f"progress must be a callable progress(record) or None; got {type(progress).__name__}"
        )
    if isinstance(images_dir, str) and images_dir == "":
        raise ConfigError("images folder: empty path")
    images_path = path_argument(images_dir, "images folder")  # a str or Path: not None, bytes, ...
    if not images_path.is_dir():
        raise ConfigError(f"images folder {images_dir!s}: {_not_a_folder(images_path)}")
    if isinstance(run_dir, str) and run_dir == "":
        raise ConfigError("run folder: empty path")
    run_path = path_argument(run_dir, "run folder")
    val_paths = None
    if val_images is not None and val_gt is not None:
        val_paths = (path_argument(val_images, "--val-images"), path_argument(val_gt, "--val-gt"))
    if (val_images is None) != (val_gt is None):
        raise ConfigError("--val-images and --val-gt go together; give both or neither")
    if cfg.keep_best_on_val and val_images is None:
        raise ConfigError("--keep-best-on-val needs --val-images and --val-gt")
    inputs = {"images": images_path}
    if val_paths is not None:
        inputs.update({"validation images": val_paths[0], "validation ground truth": val_paths[1]})
    _check_run_folder(run_path, inputs, resume)
    val_pairs = None if val_paths is None else validation_pairs(*val_paths)
    files = list_images(images_path)
    if len(files) < 2:
        raise ConfigError(f"images folder {images_path}: needs at least 2 images; found {len(files)}")
    check_training_images(images_path, files, cfg.max_pixels)
    if cfg.backbone == "vit" and cfg.backbone_checkpoint is None:
        raise ConfigError(MISSING_BACKBONE_CHECKPOINT)
    if cfg.backbone_checkpoint is not None and cfg.backbone == "vit":
        # an absolute path, so that `predict` finds the backbone from any working directory
        check_checkpoint_path(cfg.backbone_checkpoint)  # URLs, missing files, FIFOs: named, before anything
        cfg = cfg.replace(backbone_checkpoint=str(Path(cfg.backbone_checkpoint).absolute()))
    return TrainingRun(cfg, images_path, run_path, files, resume, val_images, val_gt, val_pairs, progress)


def _not_a_folder(path: Path) -> str:
    """Say what is at ``path`` instead of a folder: "not found", "is a FIFO (named pipe), not a folder"..."""
    from maskrefine.io.files import not_regular_reason

    reason = not_regular_reason(path)  # follows symlinks; None: a regular file
    if reason == "not found" or (reason is not None and reason.startswith("not readable")):
        return reason
    return f"is {reason or 'a file'}, not a folder"


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files (by extension, case-insensitive) directly in ``folder``, sorted by name."""
    folder = Path(folder)
    exts = {e.lower() for e in IMAGE_EXTENSIONS}
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in exts and not p.name.startswith("."))


def check_checkpoint_path(path: str | os.PathLike[str] | None, what: str = "backbone checkpoint") -> Path:
    """Refuse (ConfigError) an empty path, a URL, a missing file, a folder, a FIFO/device or an empty file."""
    if path is None or (isinstance(path, str) and path == ""):
        raise ConfigError(f"{what}: empty path; give the path of a local checkpoint file")
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError(f"{what}: expected a file path; got {type(path).__name__}")
    text = os.fspath(path)
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text):
        raise ConfigError(
            f"{what} {text}: is a URL; maskrefine never downloads weights. Download the file yourself "
            "and pass its local path"
        )
    file = Path(text)
    try:
        info = file.stat()
    except FileNotFoundError:
        raise ConfigError(f"{what} {file}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{what} {file}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{what} {file}: is a folder, not a checkpoint file")
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{what} {file}: is not a regular file (a FIFO, socket or device?)")
    if info.st_size == 0:
        raise ConfigError(f"{what} {file}: file is empty (0 bytes)")
    return file


def _check_run_folder(run_dir: Path, inputs: dict[str, Path], resume: bool) -> None:
    from maskrefine.pipeline.guards import check_output_folder, check_writable_target

    if run_dir.is_symlink():
        raise ConfigError(f"run folder {run_dir} is a symbolic link; give the real folder")
    check_output_folder(run_dir, inputs)
    if resume:
        # last.pt is read and then replaced: a symlink, FIFO or folder there is refused before any work
        if not check_writable_target(run_dir / "last.pt", "--resume: checkpoint"):
            raise ConfigError(
                f"--resume: {run_dir / 'last.pt'} not found (a run stopped before its first checkpoint "
                "leaves none); start a new run (without --resume)"
                + (" in another --out, or empty this folder first" if run_dir.exists() else "")
            )
    elif run_dir.exists() and any(run_dir.iterdir()):
        raise ConfigError(
            f"run folder {run_dir} is not empty; use --resume to continue that run, or another --out"
        )


def _header(path: Path) -> ImageHeader | None:
    """Return an image file's header (format, stored size); None for a ``.npy`` mask (read later).

    Raises InputError naming the file when it is not a readable regular file or has no valid header.
    """
    from maskrefine.io.imageio import read_image_file_header

    if path.suffix.lower() == ".npy":
        return None
    return read_image_file_header(path)


def _header_size(path: Path) -> tuple[int, int] | None:
    """``(height, width)`` from an image file's header; None for a ``.npy`` mask (as :func:`_header`)."""
    header = _header(path)
    return None if header is None else (header.height, header.width)


#: Longest side / shorter side accepted for a training image (the shorter side is resized to ``resize``:
#: a 2x20000 strip would become 335x3350000 pixels).
MAX_ASPECT_RATIO = 32


def check_training_images(
    folder: Path, files: list[Path], max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> None:
    """Read every training image's header before any work (a bad file would end the run mid-epoch).

    Raises
    ------
    FileProblems
        A :class:`ConfigError` naming (up to :data:`MAX_LISTED`) the entries that are not readable regular
        files, have no valid image header, more than ``max_pixels`` pixels (the setting ``max_pixels``,
        ``--max-pixels``; None: no limit), or an aspect ratio above :data:`MAX_ASPECT_RATIO`.
    """
    from maskrefine.errors import InputError
    from maskrefine.io.imageio import pixel_count_text

    problems = []
    for path in files:
        try:
            size = _header_size(path)
        except InputError as exc:
            problems.append(str(exc))
            continue
        if size is not None and max_pixels is not None and size[0] * size[1] > max_pixels:
            problems.append(
                f"{path}: image is {size[0]}x{size[1]} (HxW) = {pixel_count_text(size[0] * size[1])}, more "
                f"than the limit of {max_pixels:,} pixels (max_pixels, --max-pixels); not read"
            )
        elif size is not None and max(size) > MAX_ASPECT_RATIO * min(size):
            problems.append(  # its shorter side is resized to `resize`: a 2x20000 image would need gigabytes
                f"{path}: image is {size[0]}x{size[1]} (HxW), an aspect ratio above {MAX_ASPECT_RATIO}:1 "
                "(its shorter side is resized to `resize` before cropping)"
            )
    _refuse(f"training images ({folder})", problems)


class FileProblems(ConfigError):
    """Files refused before a training run: ``what`` (e.g. "training images (imgs)") and its problems.

    The message names the first :data:`MAX_LISTED` problems, separated by ``"; "``, and how many more;
    :meth:`lines` gives the same, one line each (``maskrefine train`` prints them so).
    """

    def __init__(self, what: str, problems: list[str]) -> None:
        self.what = what
        self.problems = list(problems)
        shown = self.problems[:MAX_LISTED]
        more = len(self.problems) - len(shown)
        super().__init__(
            f"{what}: {len(self.problems)} problem(s): "
            + "; ".join(shown)
            + (f"; and {more} more" if more else "")
        )

    def lines(self) -> list[str]:
        """Return the heading (``what: N problem(s):``), then a line per problem, up to :data:`MAX_LISTED`."""
        more = len(self.problems) - MAX_LISTED
        return [
            f"{self.what}: {len(self.problems)} problem(s):",
            *self.problems[:MAX_LISTED],
            *([f"... and {more} more"] if more > 0 else []),
        ]


def _refuse(what: str, problems: list[str]) -> None:
    """Raise one :class:`FileProblems` for ``what`` naming its problems (up to :data:`MAX_LISTED`), if any."""
    if problems:
        raise FileProblems(what, problems)


def validation_pairs(images_dir: Path, gt_dir: Path) -> list[tuple[Path, Path]]:
    """Pair the validation folders by stem and check every file's header, before any work.

    Raises
    ------
    ConfigError
        A missing folder, no pair, a file without its partner, a stem found twice, an entry that is not a
        regular file, an unreadable header, or a ground truth whose size cannot be its image's (up to
        :data:`MAX_LISTED` named).
    """
    from maskrefine.errors import InputError
    from maskrefine.io import IMAGE_EXTENSIONS, MASK_EXTENSIONS, match_folders
    from maskrefine.pipeline.guards import check_folder

    check_folder(images_dir, "validation images")
    check_folder(gt_dir, "validation ground truth")
    pairing = match_folders(images_dir, gt_dir, IMAGE_EXTENSIONS, MASK_EXTENSIONS)
    problems = [f"{item.path}: is {item.reason}" for item in pairing.skipped]
    problems += [f"{path}: no ground truth of that stem in {gt_dir}" for path in pairing.only_first]
    problems += [f"{path}: no image of that stem in {images_dir}" for path in pairing.only_second]
    problems += [
        f"{', '.join(map(str, paths))}: one stem, several files" for paths in pairing.duplicates.values()
    ]
    for pair in pairing.pairs:
        try:
            image_header, gt_header = _header(pair.first), _header(pair.second)
        except InputError as exc:
            problems.append(str(exc))
            continue
        if image_header is None or gt_header is None:
            continue
        image = (image_header.height, image_header.width)
        gt = (gt_header.height, gt_header.width)
        # OpenCV's TIFF decoder applies the file's orientation tag, which may swap height and width; the
        # other formats are read as stored
        either_tiff = "tiff" in (image_header.format, gt_header.format)
        if gt != image and not (either_tiff and gt == image[::-1]):
            problems.append(
                f"{pair.second}: ground truth is {gt[0]}x{gt[1]} but its image {pair.first.name} is "
                f"{image[0]}x{image[1]} (HxW)"
            )
    _refuse("validation files (--val-images / --val-gt)", problems)
    if not pairing.pairs:
        raise ConfigError(f"validation folders {images_dir} and {gt_dir}: no image with its ground truth")
    return [(pair.first, pair.second) for pair in pairing.pairs]
