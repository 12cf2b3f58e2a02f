"""Command-line interface: ``maskrefine apply`` and ``maskrefine score``.

A thin layer over :mod:`maskrefine.pipeline` (DESIGN §1.2, §2 habit 4): it parses options, calls the
library, prints the report and picks the exit code. It does no maths and no validation beyond parsing.

Exit codes
----------
0
    Success. Unmatched files are reported, not fatal.
1
    At least one file failed; each failure is printed as ``error: <path>: <problem>`` on stderr, then a
    one-screen summary.
2
    Usage error: click's own, :class:`~maskrefine.errors.ConfigError` (unsafe output folder, conflicting
    options, bad shard) or :class:`~maskrefine.errors.BackendUnavailableError` (optional dependency missing).
130
    Interrupted (Ctrl-C). Outputs already written are complete; rerun with ``--skip-existing`` to resume
    (a run with ``--overwrite``: rerun with ``--overwrite``).
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, cast

import click

from maskrefine import __version__
from maskrefine._checks import MIN_EPS, short_repr
from maskrefine._cli_types import (
    FloatRangeEchoed,
    IntRangeAscii,
    OptionsOnce,
    mask_output_options,
    reading_options,
)
from maskrefine._entry import PROG_NAME, VERSION_MESSAGE, _stdout_fails
from maskrefine.auto import AUTO_RULE_TEXT
from maskrefine.errors import (
    MAX_LISTED,
    BackendUnavailableError,
    ConfigError,
    MaskrefineError,
    NothingScoredError,
    OutputFolderRemovedError,
    ReportNotWrittenError,
)
from maskrefine.metrics.presets import PRESETS
from maskrefine.refiners import GUIDE_MODES, REFINERS

__all__ = ["main", "parse_shard"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


# --------------------------------------------------------------------------------------------- helpers


def _summary_of(spec: object) -> str:
    """First line of a registry entry's summary (attribute ``summary`` or its docstring)."""
    text = getattr(spec, "summary", None) or getattr(spec, "description", None) or ""
    if not text and isinstance(spec, dict):
        text = spec.get("summary", "")
    return str(text).strip().splitlines()[0] if str(text).strip() else ""


def _choices_help(registry: Mapping[str, object], intro: str) -> str:
    # One paragraph per entry: click wraps each one to the terminal width.
    lines = [intro]
    for name, spec in registry.items():
        summary = _summary_of(spec)
        lines.append(f"{name}: {summary}" if summary else name)
    return "\n\n".join(lines)


def _defaults_help(param: str) -> str:
    """``[default: guided 9, fast_guided 9]``: each method's own default, read from the registry."""
    pairs = [f"{name} {spec.defaults[param]:g}" for name, spec in REFINERS.items() if param in spec.defaults]
    return f"[default: {', '.join(pairs)}]" if pairs else ""


def parse_shard(value: str | None) -> tuple[int, int] | None:
    """Parse ``"K/N"`` (1-based: ``1/4`` … ``4/4``) into ``(K, N)``; ``None`` stays ``None``.

    The rule is the library's (:func:`maskrefine.pipeline.parse_shard`).

    Raises
    ------
    click.BadParameter
        If the text is not two integers separated by ``/``, or not ``1 <= K <= N``.
    """
    from maskrefine.pipeline.guards import parse_shard as library_parse_shard

    try:
        return library_parse_shard(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


def _shard_callback(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    return parse_shard(value)


def _err(message: str) -> None:
    click.echo(message, err=True)


#: Control characters (C0, DEL, C1) and the Unicode line and paragraph separators, escaped (``\n``,
#: ``\x1b``, ``\x85``, ``\u2028``): a file name holding a newline must not split its ``error:`` line (one
#: line per file, for grep), nor an escape sequence reach the terminal. ``str.splitlines`` breaks at
#: U+0085 and U+2028 too.
_CONTROL_ESCAPES = {
    code: {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(chr(code), f"\\x{code:02x}")
    for code in (*range(0x20), *range(0x7F, 0xA0))
} | {0x2028: "\\u2028", 0x2029: "\\u2029"}


def _one_line(text: str) -> str:
    r"""``text`` with its control characters escaped (``a\nb.png``), so that it prints as one line."""
    return text.translate(_CONTROL_ESCAPES)


class _Progress:
    r"""A single ``\r`` status line on stderr, shown only on a terminal and without ``--quiet``.

    The pipeline may call it from worker threads, so updates are serialised and throttled (10 per second).
    """

    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled
        self._lock = threading.Lock()
        self._start = time.perf_counter()
        self._last = 0.0
        self._shown = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        with self._lock:
            if done < total and now - self._last < 0.1:
                return
            self._last = now
            elapsed = max(now - self._start, 1e-9)
            percent = 100.0 * done / total if total else 100.0
            width = 30
            filled = int(width * done / total) if total else width
            bar = "#" * filled + "-" * (width - filled)
            line = f"\r{self.label} [{bar}] {done}/{total} {percent:5.1f}%  {done / elapsed:6.1f}/s"
            sys.stderr.write(line)
            sys.stderr.flush()
            self._shown = True

    def close(self) -> None:
        if self._shown:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self._shown = False


def _make_progress(label: str, quiet: bool) -> _Progress:
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    return _Progress(label, enabled=tty and not quiet)


def _quiet_opencv() -> None:
    """Silence OpenCV's own ``[ WARN:0@...]`` / ``[ERROR:...]`` lines: every bad file is reported by us."""
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")  # read when OpenCV first logs (workers inherit it)
    cv2 = sys.modules.get("cv2")
    if cv2 is None:
        return
    logging = getattr(getattr(cv2, "utils", None), "logging", None)  # OpenCV >= 4.13
    if logging is not None:
        logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    elif callable(getattr(cv2, "setLogLevel", None)):  # older OpenCV: the same setting, level 0 = silent
        cv2.setLogLevel(0)


def _start_job(*, numba_kernels: bool = True) -> None:
    """Set up this process for a job over files (our own error lines, malloc thresholds, no BLAS probe).

    Fixed malloc thresholds spare each file the page faults of fresh image buffers (see
    :mod:`maskrefine._allocator`); ``numba_kernels`` spares numba's BLAS probe (an import of
    ``scipy.linalg``, see :mod:`maskrefine._jit`) in a process that loads maskrefine's kernels.
    """
    from maskrefine._allocator import pin_malloc_thresholds

    _quiet_opencv()
    pin_malloc_thresholds()
    if numba_kernels:
        from maskrefine._jit import skip_blas_probe

        skip_blas_probe()


@contextmanager
def _library_errors(
    progress: _Progress | None = None, *, interrupted: str = "nothing was written"
) -> Iterator[None]:
    """Turn library exceptions into messages and exit codes; never show a traceback for them.

    ``interrupted``: what the Ctrl-C message says was kept (:func:`_resumable` for the folder jobs).
    """
    try:
        yield
    except (ConfigError, BackendUnavailableError) as exc:
        _close(progress)
        _err(_one_line(f"Error: {exc}"))  # its text may hold input file names
        sys.exit(EXIT_USAGE)
    except MaskrefineError as exc:
        _close(progress)
        _err(f"error: {_one_line(str(exc))}")
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt as exc:
        _close(progress)
        _stopped(exc, interrupted)
    except OSError as exc:  # e.g. the output folder cannot be created, or stdout is on a full disk
        if progress is not None:
            progress.close()
        if not getattr(exc, "filename", None) and _stdout_fails():
            _err(_one_line(f"error: cannot write to standard output ({exc.strerror or exc})"))
            sys.exit(EXIT_FAILED)
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        _err(_one_line(f"error: {where}{exc.strerror or exc}"))
        sys.exit(EXIT_FAILED)
    finally:
        _close(progress)


#: Ctrl-C message of the jobs that publish outputs one by one and have ``--skip-existing``.
_RESUMABLE = "outputs already written are complete; rerun with --skip-existing to resume"


#: The same for a run with ``--overwrite``: the outputs of an earlier run that it had not reached yet are
#: still there, and ``--skip-existing`` would keep them next to this run's.
_REDO_OVERWRITE = (
    "outputs already written are complete, but outputs of an earlier run that this --overwrite run had not "
    "replaced yet are still there: rerun with --overwrite to redo every file (--skip-existing would keep "
    "them, mixing the two runs' outputs)"
)


def _resumable(report_path: Path | str | None, overwrite: bool = False) -> str:
    """Return the Ctrl-C message of ``apply`` and ``predict``: how to finish the run, and ``--report``'s."""
    how = _REDO_OVERWRITE if overwrite else _RESUMABLE
    unwritten = _not_written(report_path)
    return f"{how}; {unwritten}" if unwritten else how


def _score_interrupted(csv_path: Path | None, json_path: Path | None) -> str:
    """Ctrl-C message of ``score``: plots are written as they are made, the CSV and JSON at the end."""
    unwritten = _not_written(csv_path, json_path) or "no CSV or JSON was written"
    return f"{unwritten}; plots already written are complete and kept"


def _not_written(*paths: Path | str | None) -> str | None:
    """``"run.json was not written (...)"`` for the report files ``paths`` given; None when none was.

    An interrupted job writes its reports only at the end: a file already at such a path is from an
    earlier run, and would look current unless the message says so.
    """
    given = [str(path) for path in paths if path is not None]
    if not given:
        return None
    verb = "was" if len(given) == 1 else "were"
    return f"{' and '.join(given)} {verb} not written (any file there is from an earlier run)"


def _close(progress: _Progress | None) -> None:
    if progress is not None:
        progress.close()


def _unmatched_lines(
    report: object, *, files: Sequence[object] | None = None, through: str | None = None
) -> tuple[list[str], list[str]]:
    """``path (only in <folder>)`` or ``path (<reason>)`` for each unmatched file of a report, and notes.

    A file whose name differs from one of another folder only in its Unicode normalisation (they print
    alike) names that file. The advice that ends the reason of each mask not read (another format) is
    left out of its line and given once, in the notes (``"14 file(s) not read: masks must be ..."``).
    ``files`` lists these instead of the report's ``unmatched``. ``through``: three folders paired through
    the one of this role (``score --baseline``, ``tune``); a file without a partner is then listed by its
    path (it may have one in another folder), and twins are looked for between that folder and the others.
    """
    from maskrefine.io.pairs import split_advice, twin_note, twins_across

    items = list(files if files is not None else getattr(report, "unmatched", None) or [])
    alone: dict[str, list[Path]] = {}
    for item in items:
        folder, path = getattr(item, "folder", None), getattr(item, "path", item)
        if folder and not getattr(item, "reason", "") and isinstance(path, Path):
            alone.setdefault(folder, []).append(path)
    twins: dict[Path, tuple[Path, str]] = {}
    for one, first, other, second in twins_across(alone, through):
        twins.setdefault(one, (other, second))
        twins.setdefault(other, (one, first))
    lines = []
    advised: dict[str, int] = {}
    for item in items:
        path, folder = getattr(item, "path", item), getattr(item, "folder", None)
        reason, advice = split_advice(getattr(item, "reason", ""))
        if advice is not None:
            advised[advice] = advised.get(advice, 0) + 1
        where = f"only in {folder}" if folder and through is None else ""
        if reason:
            lines.append(f"{path} ({reason})")
        elif folder and path in twins:
            note = twin_note(*twins[path])
            lines.append(f"{path} ({where}; {note})" if where else f"{path} ({note})")
        else:
            lines.append(f"{path} ({where})" if where else str(path))
    notes = [f"{n} file(s) not read: {advice}" for advice, n in advised.items()]
    return lines, notes


def _print_three_folder_unmatched(
    files: Sequence[object], through: str, options: str, fate: str, full_list: str
) -> None:
    """List the files of ``score --baseline`` or ``tune`` without a partner (:func:`_unmatched_lines`).

    ``files``: each with its folder's role and, when it was not read, the reason; ``through``: the role of
    the folder the others are paired with; ``options``: the folders' options, for the header.
    """
    lines, advice = _unmatched_lines(None, files=files, through=through)
    if lines:
        _err(f"note: {len(lines)} file(s) lack a partner in {options}; {fate}:")
        _print_limited("  ", lines, full_list)
        for line in advice:
            _err(f"note: {_one_line(line)}")


def _duplicate_lines(report: object) -> list[str]:
    duplicates = getattr(report, "duplicates", None) or {}
    return [f"{stem}: {', '.join(str(p) for p in paths)}" for stem, paths in duplicates.items()]


def _failure_lines(report: object) -> list[str]:
    """``<path>: <problem>`` for each failed file of a RunReport (outcomes) or ScoreReport (failures)."""
    lines = []
    for failure in getattr(report, "failures", None) or []:
        text = getattr(failure, "error", None) or getattr(failure, "message", None) or str(failure)
        lines.append(str(text))
    return lines


def _print_input_notes(report: Any) -> None:
    """Entries that are not regular files (as errors) and one line counting the non-plain encodings."""
    for failure in report.not_regular:
        _err(f"error: {_one_line(failure.message)}")
    from maskrefine.pipeline.reports import IMAGE_ENCODING_PREFIX as prefix

    masks = {name: n for name, n in report.encodings.items() if not name.startswith(prefix)}
    images = {name[len(prefix) :]: n for name, n in report.encodings.items() if name.startswith(prefix)}
    if masks:
        _err(f"note: mask encodings detected: {_counted(masks)}; see --mask-scale to override")
    if images:
        _err(f"note: image encodings detected: {_counted(images)}; read as 8-bit images")


def _counted(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name} ({n} file{'s' if n > 1 else ''})" for name, n in counts.items())


def _print_limited(prefix: str, lines: Sequence[str], full_list: str) -> None:
    """Print at most MAX_LISTED ``lines``; ``full_list`` names the option whose file lists them all."""
    for line in lines[:MAX_LISTED]:
        _err(f"{prefix}{_one_line(line)}")
    if len(lines) > MAX_LISTED:
        _err(f"{prefix}... and {len(lines) - MAX_LISTED} more (all of them in the {full_list} file)")


# --------------------------------------------------------------------------------------------- group


def _stopped(exc: KeyboardInterrupt, kept: str | None = None) -> NoReturn:
    """Say why the command stopped (Ctrl-C or SIGTERM) and what was ``kept``; exit 130 or 143."""
    from maskrefine._signals import EXIT_TERMINATED, Terminated

    why, code = (
        ("terminated (SIGTERM)", EXIT_TERMINATED)
        if isinstance(exc, Terminated)
        else ("interrupted", EXIT_INTERRUPTED)
    )
    _err(_one_line(f"{why}: {kept}") if kept else why)  # ``kept`` may name a --report path
    sys.exit(code)


class _Commands(click.Group):
    """The command group; Ctrl-C anywhere outside a job's own handler also exits 130, in one line.

    click would turn a ``KeyboardInterrupt`` raised while a command imports its modules (or prints its
    summary) into "Aborted!" and exit code 1. SIGTERM (a scheduler ending the job) raises
    :class:`maskrefine._signals.Terminated` from here on, so it stops a job the same clean way and exits
    143.
    """

    command_class = OptionsOnce  # the commands refuse a repeated option (click keeps the last value)
    group_class = type  # subgroups (``report``) are _Commands too: their commands as well

    def invoke(self, ctx: click.Context) -> Any:
        from maskrefine._signals import raise_on_sigterm

        raise_on_sigterm()
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            _stopped(exc)


@click.group(
    cls=_Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(__version__, "--version", prog_name=PROG_NAME, message=VERSION_MESSAGE)
def main() -> None:
    """Refine segmentation masks with the image as guide (guided filter), and score them.

    \b
    maskrefine apply --masks coarse/ --images images/ --out refined/
    maskrefine score --pred refined/ --gt gt/ --json summary.json

    Exit codes: 0 success (unmatched files are reported, not fatal), 1 some file failed,
    2 usage error, 130 Ctrl-C, 143 SIGTERM (both stop after the files in progress).
    """  # noqa: D301 - "\b" is click's no-rewrap marker (a backspace); a raw docstring would disable it


# --------------------------------------------------------------------------------------------- apply


class _NonEmptyPath(click.Path):
    """``click.Path`` that refuses an empty value (it would silently mean the current folder).

    For a file (``dir_okay=False``), also a value ending with a separator, ``.`` or ``..`` (a folder).
    """

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from maskrefine.pipeline.guards import file_path_argument, path_argument

        try:
            (path_argument if self.dir_okay else file_path_argument)(value, "the path")
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)
        return super().convert(value, param, ctx)


_path_dir = _NonEmptyPath(file_okay=False, dir_okay=True, path_type=Path)
_path_file = _NonEmptyPath(dir_okay=False, path_type=Path)
_input_dir = click.Path(exists=True, file_okay=False, dir_okay=True, path_type=Path)


# Options of the bilateral solver and the dense CRF: (flag, registry parameter, type, help). Values are
# checked by the registry (one owner), so a bad one is a usage error naming the parameter.
_METHOD_OPTIONS: tuple[tuple[str, str, Any, str], ...] = (
    (
        "--preset",
        "preset",
        str,
        "bilateral_solver: tokencut (σ 16/16/8, default), paper_repo (24/4/4), found "
        "(binary, IoU-gated, largest object), found_multi (every object); crf: deeplab (default), "
        "deeplab_v2, deep_spectral. Without --method: "
        "paper = the paper's guided filter (mean guide, radius 9, eps 1e-3), instead of auto.",
    ),
    (
        "--sigma-spatial",
        "sigma_spatial",
        float,
        "bilateral_solver grid cell in pixels, >= 0.001. [default: from --preset]",
    ),
    (
        "--sigma-luma",
        "sigma_luma",
        float,
        "bilateral_solver luma cell (0..255 units), >= 0.001. [default: from --preset]",
    ),
    (
        "--sigma-chroma",
        "sigma_chroma",
        float,
        "bilateral_solver chroma cell (0..255), >= 0.001. [default: from --preset]",
    ),
    ("--lam", "lam", float, "bilateral_solver smoothness λ, in [0, 1e8]. [default: 256]"),
    (
        "--iterations",
        "iterations",
        int,
        "crf mean-field iterations, 0 to 1000. [default: from --preset (deeplab 10)]",
    ),
    (
        "--gt-prob",
        "gt_prob",
        float,
        "crf confidence in the mask's labels, in (0.5, 1 - 1e-6]; given, it applies to soft masks too "
        "(p -> 1 - g + (2g - 1) p). [default: preset, binary masks only]",
    ),
    ("--gaussian-sxy", "gaussian_sxy", float, "crf Gaussian kernel width in pixels. [default: deeplab 3]"),
    ("--gaussian-compat", "gaussian_compat", float, "crf Gaussian kernel weight. [default: deeplab 3]"),
    (
        "--bilateral-sxy",
        "bilateral_sxy",
        float,
        "crf bilateral kernel width in pixels. [default: deeplab 80]",
    ),
    (
        "--bilateral-srgb",
        "bilateral_srgb",
        float,
        "crf bilateral colour width (0..255). [default: deeplab 13]",
    ),
    ("--bilateral-compat", "bilateral_compat", float, "crf bilateral kernel weight. [default: deeplab 10]"),
    (
        "--crf-output",
        "output",
        click.Choice(["label", "prob"]),
        "crf: 0/1 labelling or Q(foreground). [default: label]",
    ),
)


def _method_options(command: Any) -> Any:
    # ASCII digits only for the numbers (int() and float() read "١٢" as 12); ranges are the refiners'
    ascii_number = {int: IntRangeAscii(), float: FloatRangeEchoed()}
    for flag, name, kind, text in reversed(_METHOD_OPTIONS):
        kind = ascii_number.get(kind, kind)
        command = click.option(flag, name, type=kind, default=None, help=text)(command)
    return command


@main.command("apply")
@click.option(
    "--masks",
    "masks_dir",
    required=True,
    type=_input_dir,
    help="Folder of coarse masks (.png 8/16-bit or .npy float in [0, 1]), at any resolution with the "
    "image's aspect ratio: a patch grid (e.g. 1/8, 1/16) or full size.",
)
@click.option(
    "--images",
    "images_dir",
    required=True,
    type=_input_dir,
    help="Folder of guide images, matched to masks by file stem.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=_path_dir,
    help="Output folder (created if needed); must not be or lie inside an input folder.",
)
@click.option(
    "--method",
    type=click.Choice(list(REFINERS)),
    default="auto",
    show_default=True,
    help=_choices_help(REFINERS, "Refinement method:") + f"\n\nThe auto rule: {AUTO_RULE_TEXT}.",
)
@click.option(
    "--preset-file",
    type=str,  # not click.Path: an empty value must be refused, not read as "."
    default=None,
    help="A setting written by `maskrefine tune` (TOML, or JSON) instead of --method/--guide/--radius/--eps.",
)
@click.option(
    "--radius",
    type=IntRangeAscii(min=0),
    default=None,
    help=f"Filter window radius in image pixels (window 2r+1), at most 10000. {_defaults_help('radius')}",
)
@click.option(
    "--eps",
    type=FloatRangeEchoed(min=MIN_EPS),
    default=None,
    help=f"Regularisation eps >= 1e-12 (guide scaled to [0, 1]). {_defaults_help('eps')}",
)
@click.option(
    "--subsample",
    type=IntRangeAscii(min=1),
    default=None,
    help=f"Subsampling factor of the fast guided filter, at most 1024. {_defaults_help('subsample')}",
)
@_method_options
@click.option(
    "--guide",
    type=click.Choice(GUIDE_MODES),
    default="mean",
    help=(
        "How the image becomes the guide: channel mean (gray), luma, or full colour. "
        "[default: mean, for --method guided/fast_guided; auto picks its own]"
    ),
)
@click.option(
    "--binary-input",
    is_flag=True,
    help="The masks are hard (0/1): upsample them with nearest-neighbour instead of bilinear.",
)
@mask_output_options
@click.option(
    "--jobs", "-j", type=IntRangeAscii(min=1), default=None, help="Parallel workers. [default: all cores]"
)
@click.option(
    "--shard",
    callback=_shard_callback,
    metavar="K/N",
    default=None,
    help="Process only shard K of N (1-based, e.g. 2/4); the N shards cover every pair once.",
)
@click.option(
    "--report",
    "report_path",
    type=_path_file,
    default=None,
    help="Write the run report (per-file outcomes, counts, timing) as JSON.",
)
@reading_options("mask_scale", "apply_exif", "max_pixels")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary unless a file failed.")
@click.pass_context
def apply_cmd(
    ctx: click.Context,
    masks_dir: Path,
    images_dir: Path,
    out_dir: Path,
    method: str,
    preset_file: str | None,
    radius: int | None,
    eps: float | None,
    subsample: int | None,
    guide: str,
    binary_input: bool,
    fmt: str,
    overwrite: bool,
    skip_existing: bool,
    jobs: int | None,
    shard: tuple[int, int] | None,
    report_path: Path | None,
    mask_scale: str,
    apply_exif: bool,
    max_pixels: int,
    quiet: bool,
    **method_params: Any,
) -> None:
    """Refine every mask in --masks with its image in --images; write them to --out.

    Files are matched by stem (masks/0001.png ↔ images/0001.jpg). A mask may have any size that is a
    uniform downscale of its image (full size, or a 1/8 or 1/16 patch grid, rounded either way); it is
    resized to the image and then filtered. With a --method other than auto the resize is bilinear
    (nearest with --binary-input); under auto its kind decides (nearest for binary masks of patch 12 and
    up, and soft masks of patch 4-11 and full-resolution masks are only resized; a full-size mask that is
    a nearest-upsampled patch grid is refined as that grid).

    Each output is written to a temporary file in --out and renamed into place, so an interrupted run
    never leaves a partial output; rerun with --skip-existing to finish (an --overwrite run: rerun with
    --overwrite, as --skip-existing would keep the earlier outputs it had not replaced yet). A bad file is
    reported and the run goes on (exit code 1 at the end).

    The default, --method auto, looks at each mask (patch size from its size relative to the image;
    binary or soft) and applies the setting chosen for that kind on the SOD quality benchmark (README:
    "Default refinement"); --report records the decision per file.
    """
    from maskrefine.pipeline import apply_folder
    from maskrefine.quality.preset_file import REFINE_PRESETS, read_preset_file  # lazy: --help stays light

    if overwrite and skip_existing:
        raise click.UsageError("--overwrite and --skip-existing are mutually exclusive; pick one.")
    # --preset is shared with the bilateral solver / CRF presets; a refine preset (paper) replaces the method
    preset = method_params.get("preset")
    if preset in REFINE_PRESETS:
        method_params["preset"] = None
    else:
        preset = None
    given = [
        _option_name(name)
        for name in ("method", "guide", "radius", "eps", "subsample", "binary_input")
        if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
    ] + [_option_name(name) for name, value in method_params.items() if value is not None]
    if preset is not None and preset_file is not None:
        raise click.UsageError("--preset and --preset-file exclude each other; pick one.")
    if (preset is not None or preset_file is not None) and given:
        spelled = "" if preset is None else " " + _preset_hint(preset, REFINE_PRESETS[preset], given)
        raise click.UsageError(
            f"--preset/--preset-file set the method and its parameters; drop {', '.join(given)}.{spelled}"
        )
    if method == "auto" and binary_input:
        raise click.UsageError(
            "--binary-input has no effect with --method auto, which detects binary masks itself."
        )
    guide_given = ctx.get_parameter_source("guide") is not click.core.ParameterSource.DEFAULT
    if method == "auto" and guide_given:
        raise click.UsageError(
            "--guide has no effect with --method auto, which picks the guide per mask kind; "
            "use --method guided (or fast_guided) to choose the guide."
        )
    if method != "auto" and guide_given and method in REFINERS and not REFINERS[method].uses_guide:
        raise click.UsageError(
            f"--guide has no effect with --method {method}: it does not filter with a guide image; "
            "drop --guide."
        )
    tuned = [
        option for option in given if option not in ("--method", "--guide", "--binary-input", "--preset")
    ]
    if method == "auto" and tuned:
        raise click.UsageError(
            f"{', '.join(tuned)}: --method auto (the default) picks its own setting per mask kind; "
            "name the method these apply to, e.g. --method guided --radius 9 --eps 1e-3."
        )
    if method != "auto" and method in REFINERS:
        usable = _options_of(method)
        unusable = [option for option in given if option not in (*usable, "--method")]
        if unusable:
            raise click.UsageError(
                f"--method {method} does not take {', '.join(unusable)}; its options: "
                f"{', '.join(usable) or 'none'}."
            )
    named = method_params.get("preset")
    if method == "auto" and named is not None:
        raise click.UsageError(
            f"--preset {short_repr(named)}: without --method, --preset takes a refine preset "
            f"({', '.join(REFINE_PRESETS)}); bilateral_solver and crf presets need their --method."
        )
    params = {k: v for k, v in (("radius", radius), ("eps", eps), ("subsample", subsample)) if v is not None}
    _start_job()
    params.update({k: v for k, v in method_params.items() if v is not None})
    if preset is not None or preset_file is not None:
        with _library_errors():
            if preset is not None:
                chosen = REFINE_PRESETS[preset]
            else:  # then --preset-file was given (the condition above)
                chosen = read_preset_file(cast(str, preset_file))
        method, guide, params = chosen.method, chosen.guide, chosen.param_dict
        binary_input = chosen.upsample == "nearest"
    progress = _make_progress("apply", quiet)
    with _library_errors(progress, interrupted=_resumable(report_path, overwrite)), _parameters_as_options():
        report, unwritten = _keep_outcomes(
            apply_folder,
            masks_dir,
            images_dir,
            out_dir,
            method=method,
            params=params or None,
            guide=guide,
            binary_input=binary_input,
            fmt=fmt,
            overwrite=overwrite,
            skip_existing=skip_existing,
            jobs=jobs,
            shard=shard,
            progress=progress,
            report_path=report_path,  # checked before any work, written at the end
            mask_scale=mask_scale,
            apply_exif=apply_exif,
            max_pixels=max_pixels,
            input_files={"preset file": preset_file} if preset_file is not None else None,
        )
    progress.close()
    sys.exit(_finish_with_report(report, unwritten, quiet))


@contextmanager
def _parameters_as_options() -> Iterator[None]:
    """Name the library's parameters (`radius`, `sigma_spatial`) as the options the user typed.

    The library checks a job's parameters once, before any work, and raises :class:`ConfigError` naming
    them in backticks; on the command line they are ``--radius``, ``--sigma-spatial``.
    """
    try:
        yield
    except ConfigError as exc:
        message = re.sub(r"`(\w+)`", lambda m: _option_name(m[1]), str(exc))
        raise ConfigError(message) from None


def _options_of(method: str) -> list[str]:
    """Return the options that apply with ``--method method``, read from the registry.

    Its parameters, ``--guide`` when it filters with a guide image, and ``--binary-input`` when its
    masks are resized for it (not ``auto``'s, which resizes each mask by its own rule).
    """
    spec = REFINERS[method]
    options = [_option_name(name) for name in spec.defaults]
    if spec.uses_guide and not spec.native_mask:
        options.append("--guide")
    if not spec.native_mask:
        options.append("--binary-input")
    return options


def _preset_hint(name: str, chosen: Any, given: Sequence[str]) -> str:
    """How to change a setting of ``--preset name``: the options it stands for, to give instead of it."""
    spelled = [f"--method {chosen.method}"]
    if chosen.guide != "mean":  # --guide's default
        spelled.append(f"--guide {chosen.guide}")
    params = chosen.param_dict
    order = list(REFINERS[chosen.method].defaults)  # the registry's order: --radius before --eps
    for key in sorted(params, key=order.index):
        value = params[key]
        if value is not None:  # None: left to the method's own preset
            spelled.append(
                f"{_option_name(key)} {value:g}"
                if isinstance(value, float)
                else f"{_option_name(key)} {value}"
            )
    if chosen.upsample == "nearest":
        spelled.append("--binary-input")
    if "--binary-input" in given and chosen.upsample != "nearest":
        return (
            f"For --preset {name} with nearest upsampling (binary masks), give its options instead: "
            f"{' '.join(spelled)} --binary-input."
        )
    return f"To change a setting of --preset {name}, give its options instead: {' '.join(spelled)}."


def _option_name(parameter: str) -> str:
    """Return the command-line option of a library parameter (``output`` -> ``--crf-output``)."""
    for flag, name, _kind, _text in _METHOD_OPTIONS:
        if name == parameter:
            return flag
    return "--" + parameter.replace("_", "-")


#: What :func:`_finish_apply` says of unmatched files by default (two folders paired by stem).
_NO_PARTNER = "have no partner in the other folder"


def _keep_outcomes(job: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, str | None]:
    """Run a folder job; when only its ``--report`` could not be written, keep the outcomes to print."""
    try:
        return job(*args, **kwargs), None
    except ReportNotWrittenError as exc:
        return exc.report, str(exc)


def _finish_with_report(
    report: Any, unwritten: str | None, quiet: bool, unmatched_files: str = _NO_PARTNER
) -> int:
    """:func:`_finish_apply`, then the report file's own write error (exit 1) if there was one."""
    code = _finish_apply(report, quiet, unmatched_files)
    if unwritten is not None:
        _err(f"error: {unwritten} (the report was not written; the files above are as listed)")
        return EXIT_FAILED
    return code


def _finish_apply(report: Any, quiet: bool, unmatched_files: str = _NO_PARTNER) -> int:
    """Print a RunReport's failures, notes and summary line; return the exit status.

    ``unmatched_files`` says what the report's unmatched files are, after their count.
    """
    failures = _failure_lines(report)
    for line in failures:  # every failure, one line each: scripts can grep these
        _err(f"error: {_one_line(line)}")
    if report.nothing_processed is not None:  # an empty or mistyped folder is not a success
        _err(_one_line(f"error: nothing was processed: {report.nothing_processed}"))
    for folder in report.removed_output_folders:  # a merged shard's (a run of its own raised instead)
        _err(_one_line(f"error: {OutputFolderRemovedError(folder, 0)}"))
    _print_input_notes(report)
    if quiet and report.ok:
        return EXIT_OK
    duplicates = _duplicate_lines(report)
    unmatched, advice = _unmatched_lines(report)
    if duplicates:
        _err(f"warning: {len(duplicates)} stem(s) with several files in one folder; not processed:")
        _print_limited("  ", duplicates, "--report")
    if unmatched:
        _err(f"note: {len(unmatched)} file(s) {unmatched_files}; not processed:")
        _print_limited("  ", unmatched, "--report")
        for line in advice:
            _err(f"note: {_one_line(line)}")
    counts = report.counts
    click.echo(
        f"written {counts['written']}, skipped {counts['skipped']}, failed {counts['failed']}, "
        f"unmatched {counts['unmatched']}, duplicates {counts['duplicates']}"
        + (f", not regular files {len(report.not_regular)}" if report.not_regular else "")
        + f" in {report.elapsed:.2f} s ({report.masks_per_s:.1f} masks/s)"
    )
    return EXIT_OK if report.ok else EXIT_FAILED


# --------------------------------------------------------------------------------------------- score


def _parse_boxes(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Check the form ``voc:DIR`` | ``coco:FILE`` | ``masks``; the library checks that the path exists."""
    from maskrefine.pipeline.score import parse_box_spec

    try:
        parse_box_spec(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _nonempty_path(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Return ``value``, refusing an empty path (it would mean the current folder) as a usage error."""
    if value is not None and not value.strip():
        raise click.BadParameter("must not be empty")
    return value


def _format_value(value: object) -> str | None:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, str):
        return value
    return None  # curves, nested tables: in the JSON, not on screen


def _summary_rows(summary: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows.extend(_summary_rows(value, prefix=f"{name}."))
            continue
        text = _format_value(value)
        if text is not None:
            rows.append((name, text))
    return rows


@main.command("score")
@click.option("--pred", "pred_dir", required=True, type=_input_dir, help="Folder of predicted masks.")
@click.option("--gt", "gt_dir", required=True, type=_input_dir, help="Folder of ground-truth masks.")
@click.option(
    "--preset",
    type=click.Choice(list(PRESETS)),
    default="tokencut" if "tokencut" in PRESETS else None,
    show_default=True,
    help=_choices_help(PRESETS, "Scoring protocol:"),
)
@click.option(
    "--csv",
    "csv_path",
    type=_path_file,
    default=None,
    help="Write the per-image table as CSV.",
)
@click.option(
    "--json",
    "json_path",
    type=_path_file,
    default=None,
    help="Write the summary as JSON.",
)
@click.option(
    "--boxes",
    callback=_parse_boxes,
    metavar="voc:DIR|coco:FILE|masks",
    default=None,
    help="Also score CorLoc against boxes from VOC XML, a COCO JSON, or boxes of the GT masks.",
)
@click.option(
    "--corloc-selector",
    type=click.Choice(["largest_box", "largest_cc", "seed_cc"]),
    default=None,
    help="CorLoc component rule. [default: tokencut seed_cc, found largest_cc, others largest_box]",
)
@click.option(
    "--corloc-connectivity",
    type=click.Choice(["4", "8"]),
    default=None,
    help="CorLoc connectivity. [default: the preset's: 4 for tokencut/found, else 8]",
)
@click.option(
    "--patch-size",
    type=IntRangeAscii(min=1, max=256),
    default=None,
    help="CorLoc on the token grid of this patch size (boxes on the padded image, clipped). "
    "[default: each prediction's down-scale factor under tokencut/found]",
)
@click.option(
    "--seeds",
    callback=_nonempty_path,
    metavar="FILE.json|DIR",
    default=None,
    help="Seed patches for --corloc-selector seed_cc: JSON of stem -> flat token index, or seed maps.",
)
@click.option(
    "--plot",
    "plot_dir",
    type=_path_dir,
    default=None,
    help="Write curves and montages here (needs matplotlib: the [plot] extra).",
)
@click.option("--images", "images_dir", type=_input_dir, default=None, help="Images for the montages.")
@click.option(
    "--before",
    "before_dir",
    type=_input_dir,
    default=None,
    help="Unrefined masks, shown next to --pred in the montages.",
)
@click.option(
    "--shard",
    callback=_shard_callback,
    metavar="K/N",
    default=None,
    help="Score only shard K of N (1-based).",
)
@click.option(
    "--jobs", "-j", type=IntRangeAscii(min=1), default=None, help="Parallel workers. [default: all cores]"
)
@click.option(
    "--baseline",
    "baseline_dir",
    type=_input_dir,
    default=None,
    help="Masks before refinement: compare --pred with them image by image (mean change per metric with "
    "a paired bootstrap 95% interval, wins/ties/losses, the images that lost most IoU, at most 5). --csv, "
    "--json and --plot then hold the comparison.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace existing plot files in --plot, and a --json / --csv file maskrefine did not write.",
)
@reading_options("mask_scale", "apply_exif", "max_pixels")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def score_cmd(
    pred_dir: Path,
    gt_dir: Path,
    preset: str,
    csv_path: Path | None,
    json_path: Path | None,
    boxes: Any,
    corloc_selector: str | None,
    corloc_connectivity: str | None,
    patch_size: int | None,
    seeds: str | None,
    plot_dir: Path | None,
    images_dir: Path | None,
    before_dir: Path | None,
    shard: tuple[int, int] | None,
    jobs: int | None,
    baseline_dir: Path | None,
    overwrite: bool,
    mask_scale: str,
    apply_exif: bool,
    max_pixels: int,
    quiet: bool,
) -> None:
    """Score the masks in --pred against --gt (matched by stem) and print the summary."""
    from maskrefine.pipeline import score_folder

    if baseline_dir is not None:
        unsupported = [
            n
            for n, v in (
                ("--boxes", boxes),
                ("--images", images_dir),
                ("--before", before_dir),
                ("--shard", shard),
                ("--seeds", seeds),
                ("--patch-size", patch_size),
                ("--corloc-selector", corloc_selector),
                ("--corloc-connectivity", corloc_connectivity),
                ("--apply-exif", True if apply_exif else None),
            )
            if v is not None
        ]
        if unsupported:
            raise click.UsageError(f"{', '.join(unsupported)} cannot be combined with --baseline.")
        sys.exit(
            _score_paired(
                pred_dir,
                baseline_dir,
                gt_dir,
                preset,
                csv_path,
                json_path,
                plot_dir,
                quiet,
                mask_scale=mask_scale,
                max_pixels=max_pixels,
                overwrite=overwrite,
                jobs=jobs,
            )
        )
    if plot_dir is None and (images_dir is not None or before_dir is not None):
        raise click.UsageError("--images and --before only apply to the montages of --plot; add --plot DIR.")
    _start_job()
    progress = _make_progress("score", quiet)
    interrupted = _score_interrupted(csv_path, json_path)
    with _library_errors(progress, interrupted=interrupted), _parameters_as_options():
        report = score_folder(
            pred_dir,
            gt_dir,
            preset=preset,
            boxes=boxes,
            corloc_selector=corloc_selector,
            corloc_connectivity=None if corloc_connectivity is None else int(corloc_connectivity),
            patch_size=patch_size,
            seeds=seeds,
            csv_path=csv_path,
            json_path=json_path,
            plot_dir=plot_dir,
            images_dir=images_dir,
            before_dir=before_dir,
            shard=shard,
            jobs=jobs,
            progress=progress,
            overwrite=overwrite,
            mask_scale=mask_scale,
            apply_exif=apply_exif,
            max_pixels=max_pixels,
        )
    progress.close()
    sys.exit(_finish_score(report, preset, quiet, plotted=plot_dir is not None))


def _finish_score(report: Any, preset: str, quiet: bool, *, plotted: bool) -> int:
    failures = _failure_lines(report)
    for line in failures:
        _err(f"error: {_one_line(line)}")
    _print_input_notes(report)
    if report.reference_reads_otherwise:
        _err(
            f"note: {preset}'s reference script reads some of these files otherwise; the numbers below are "
            "its numbers for the masks as maskrefine decodes them (save 8-bit PNGs to match the script; "
            f'see the docs, evaluation.md, "Files"): {_counted(report.reference_reads_otherwise)}'
        )
    unmatched, advice = _unmatched_lines(report)
    duplicates = _duplicate_lines(report)
    if not quiet:
        if duplicates:
            _err(f"warning: {len(duplicates)} stem(s) with several files in one folder; not scored:")
            _print_limited("  ", duplicates, "--json")
        if unmatched:
            _err(f"note: {len(unmatched)} file(s) have no partner in the other folder; not scored:")
            _print_limited("  ", unmatched, "--json")
            for line in advice:
                _err(f"note: {_one_line(line)}")
    summary = {k: v for k, v in (report.summary or {}).items() if k != "preset"}
    # nothing scored: no table of NaN over 0 images before the error that says so
    rows = _summary_rows(summary) if report.nothing_scored is None else []
    click.echo(f"preset: {preset}")
    if rows:
        width = max(len(name) for name, _ in rows)
        click.echo(f"{'metric'.ljust(width)}  value")
        click.echo(f"{'-' * width}  {'-' * 6}")
        for name, text in rows:
            click.echo(f"{name.ljust(width)}  {text}")
    if failures or unmatched or duplicates or report.not_regular:
        click.echo(
            f"failed {len(failures)}, unmatched {len(unmatched)}, duplicates {len(duplicates)}"
            + (f", not regular files {len(report.not_regular)}" if report.not_regular else "")
        )
    if report.nothing_scored is not None:
        _err(_one_line(f"error: nothing was scored: {report.nothing_scored}"))
    elif not report.rows and not quiet:  # an empty shard of a job whose other shards hold the pairs
        _err(
            f"note: none of the folders' {report.config.get('folder_pairs')} pair(s) fell in shard "
            f"{report.config.get('shard')}; nothing to score here"
            + (", and no plot to draw" if plotted else "")
        )
    return EXIT_OK if report.ok else EXIT_FAILED


def _score_paired(
    pred_dir: Path,
    baseline_dir: Path,
    gt_dir: Path,
    preset: str,
    csv_path: Path | None,
    json_path: Path | None,
    plot_dir: Path | None,
    quiet: bool,
    *,
    mask_scale: str,
    max_pixels: int,
    overwrite: bool,
    jobs: int | None,
) -> int:
    from maskrefine.quality.compare import compare_folders

    progress = _make_progress("score", quiet)
    with _library_errors(progress, interrupted=_score_interrupted(csv_path, json_path)):
        report = compare_folders(
            pred_dir,
            baseline_dir,
            gt_dir,
            preset=preset,
            csv_path=csv_path,
            json_path=json_path,
            plot_dir=plot_dir,
            progress=progress,
            mask_scale=mask_scale,
            max_pixels=max_pixels,
            overwrite=overwrite,
            jobs=jobs,
        )
    progress.close()
    for path, problem in report.failures:
        _err(_one_line(f"error: {path}: {problem}"))
    duplicates = _duplicate_lines(report)
    if duplicates and not quiet:
        _err(f"warning: {len(duplicates)} stem(s) with several files in one folder; not scored:")
        _print_limited("  ", duplicates, "--json")
    if not quiet:
        options = "--pred, --baseline or --gt"
        _print_three_folder_unmatched(report.unmatched_files, "predictions", options, "not scored", "--json")
    if report.nothing_scored is not None:
        _err(_one_line(f"error: nothing was scored: {report.nothing_scored}"))
    if report.comparisons:  # no table of no rows after "nothing was scored"
        click.echo(
            f"preset: {preset}; {len(report.rows)} image(s); --pred vs --baseline (change = pred - baseline)"
        )
        header = f"{'metric':<10} {'baseline':>8} {'refined':>8} {'change':>8}  {'95% interval':<19}"
        click.echo(f"{header}  W/T/L  verdict")
    for metric, c in report.comparisons.items():
        click.echo(
            f"{metric:<10} {c.baseline:8.4f} {c.candidate:8.4f} {c.change:+8.4f}  "
            f"[{c.low:+.4f}, {c.high:+.4f}]  {c.wins}/{c.ties}/{c.losses}  {c.verdict}"
        )
    for warning in report.warnings:
        _err(f"warning: {warning}")
    for metric, c in report.comparisons.items():
        if c.n < len(report.rows):  # not the numbers `score` prints for each side (e.g. a NaN mean)
            click.echo(
                f"note: {metric} is compared on the {c.n} of {len(report.rows)} images where it is defined "
                "on both sides (e.g. IoU of an empty GT and an empty mask); `score` prints each side's value "
                "over all images"
            )
    unmatched = len(report.unmatched_files)
    if report.failures or unmatched or duplicates:  # also under -q, as plain `score` says it
        click.echo(f"failed {len(report.failures)}, unmatched {unmatched}, duplicates {len(duplicates)}")
    if report.worst:
        click.echo("images that lost most IoU:")
        for row in report.worst:
            click.echo(
                f"  {_one_line(str(row['stem']))}: {row['iou_baseline']:.4f} -> {row['iou_refined']:.4f} "
                f"({row['iou_change']:+.4f})"
            )
    return EXIT_OK if report.ok else EXIT_FAILED


# --------------------------------------------------------------------------------------------- tune


@main.command("tune")
@click.option(
    "--masks", "masks_dir", required=True, type=_input_dir, help="Coarse masks of a labelled subset."
)
@click.option(
    "--images", "images_dir", required=True, type=_input_dir, help="Their images (matched by stem)."
)
@click.option("--gt", "gt_dir", required=True, type=_input_dir, help="Their ground-truth masks.")
@click.option(
    "--out",
    "out_path",
    required=True,
    type=str,  # not click.Path: an empty value must be refused, not read as "."
    help="Preset file to write (TOML; JSON if it ends in .json), for `maskrefine apply --preset-file`.",
)
@click.option(
    "--methods",
    multiple=True,
    type=click.Choice([name for name in REFINERS if name != "auto"]),
    help="Refiners to search (repeat the option; default: all). identity is always included.",
)
@click.option(
    "--budget", default=None, metavar="TIME", help="Wall-time budget, e.g. 90s, 5m, 1h. [default: none]"
)
@click.option(
    "--preset",
    type=click.Choice(list(PRESETS)),
    default="tokencut" if "tokencut" in PRESETS else None,
    show_default=True,
    help="Scoring protocol.",
)
@click.option(
    "--jobs", "-j", type=IntRangeAscii(min=1), default=None, help="Parallel workers. [default: all cores]"
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an existing --out file, and a --report file that is not a maskrefine report.",
)
@click.option(
    "--report",
    "report_path",
    type=_path_file,
    default=None,
    help="Also write the ranked table (every candidate, intervals) as JSON.",
)
@click.option("--quiet", "-q", is_flag=True, help="Only the winner and warnings.")
def tune_cmd(
    masks_dir: Path,
    images_dir: Path,
    gt_dir: Path,
    out_path: str,
    methods: tuple[str, ...],
    budget: str | None,
    preset: str,
    jobs: int | None,
    overwrite: bool,
    report_path: Path | None,
    quiet: bool,
) -> None:
    """Find the refiner setting that works best on a labelled subset of your data (20-200 images).

    Searches coarse to fine (the benchmark's grid, then around the 3 best), ranks every setting by its
    mean IoU change against naive upsampling (paired bootstrap 95% interval, wins/ties/losses), prints the
    table and writes the winner to --out. Deterministic; scores are cached in <out>.tune-cache/ so an
    interrupted run resumes. Warns when the subset is too small for the differences to be trusted.

    The winner's change is measured on the images it was chosen on, so it is optimistic (on SOD soft x16
    masks, 17-29 % too high on average with 20 images, 6-15 % with 50, and on some subsets the winner is
    worse than naive upsampling on other images): confirm it on other images with
    `maskrefine score --baseline`.
    """
    _start_job()
    from maskrefine.quality.tune import tune_to_file

    with _library_errors(
        interrupted="the scores computed so far are kept in <out>.tune-cache; rerun the same command "
        "(with --overwrite if --out was written) to resume"
    ):
        try:
            report = tune_to_file(
                masks_dir,
                images_dir,
                gt_dir,
                out_path,
                methods=methods or None,
                budget=budget,
                jobs=jobs,
                preset=preset,
                overwrite=overwrite,
                report_path=report_path,
                progress=None if quiet else (lambda message: _err(f"tune: {message}")),
            )
        except NothingScoredError as exc:  # file failures, as `score` reports them: each named, exit 1
            for _key, problem in exc.failures:
                _err(f"error: {_one_line(problem)}")
            if not quiet:  # no triple: the files without a partner, as after a run
                options = "--masks, --images or --gt"
                _print_three_folder_unmatched(exc.unmatched, "masks", options, "not used", "--report")
            _err(_one_line(f"error: nothing was scored: {exc}; nothing was written"))
            sys.exit(EXIT_FAILED)
    rows = report.rows if not quiet else report.rows[:1]
    click.echo(f"{len(report.rows)} settings on {report.n_images} images; IoU change vs {report.naive.label}")
    click.echo(f"{'#':>3}  {'IoU':>7}  {'change':>8}  {'95% interval':<19}  {'W/T/L':<9}  setting")
    for i, row in enumerate(rows[:15], start=1):
        c = row.change["iou"]
        click.echo(
            f"{i:>3}  {row.summary['iou']:7.4f}  {c.change:+8.4f}  [{c.low:+.4f}, {c.high:+.4f}]  "
            f"{f'{c.wins}/{c.ties}/{c.losses}':<9}  {row.candidate.label}"
        )
    for warning in report.warnings:
        _err(f"warning: {warning}")
    for _key, problem in report.failures:
        _err(f"error: {_one_line(problem)}")
    duplicates = _duplicate_lines(report)
    if duplicates:  # a warning: kept with -q ("only the winner and warnings")
        _err(f"warning: {len(duplicates)} stem(s) with several files in one folder; not used:")
        _print_limited("  ", duplicates, "--report")
    if not quiet:
        options = "--masks, --images or --gt"
        _print_three_folder_unmatched(report.unmatched_files, "masks", options, "not used", "--report")
    click.echo(_one_line(f"wrote {out_path}: {report.winner.label}"))
    sys.exit(EXIT_OK if not report.failures else EXIT_FAILED)


# -------------------------------------------------------------------------------------------- report


@main.group("report")
def report_group() -> None:
    """Work with the JSON reports written by `apply --report`."""


@report_group.command("merge")
@click.argument("reports", nargs=-1, required=True, type=_NonEmptyPath(path_type=Path))
@click.option(
    "--json",
    "json_path",
    type=_path_file,
    default=None,
    help="Write the merged report (same layout as one run's report) as JSON.",
)
@click.option("--quiet", "-q", is_flag=True, help="Print only errors (and the summary when not ok).")
def report_merge_cmd(reports: tuple[Path, ...], json_path: Path | None, quiet: bool) -> None:
    """Merge the run reports of the shards of one job (`apply --shard K/N --report FILE`).

    \b
    maskrefine report merge reports/*.json --json merged.json

    Exit code 1 when a file failed in some shard, a shard's output folder was removed during its run,
    a shard of 1..N has no report, or a report file cannot be read (it is named; the others are merged).
    """  # noqa: D301 - "\b" is click's no-rewrap marker (a backspace); a raw docstring would disable it
    from maskrefine.pipeline.merge import MergeStopped, check_merged_output, merge_run_reports

    with _library_errors():
        if json_path is not None:
            check_merged_output(json_path, reports)  # refused before anything is read or written
        try:
            merged = merge_run_reports(reports, skip_unreadable=True)
        except MergeStopped as exc:  # the files skipped before the stop are named too
            for line in exc.unreadable:
                _err(_one_line(f"error: {line}"))
            raise
        if json_path is not None:  # first: a summary that cannot be printed must not lose the merge
            merged.write_json(json_path)
        for line in merged.unreadable:
            _err(f"error: {_one_line(line)}")
        code = _finish_apply(merged.report, quiet and merged.ok)
        if merged.elapsed_rule == "sum" and not quiet:
            _err(
                "note: a report has no start time (older maskrefine): time and masks/s are summed over shards"
            )
        if merged.missing_shards:
            shown = merged.missing_shards[:_MAX_LISTED_SHARDS]
            missing = ", ".join(f"{k}/{merged.shard_count}" for k in shown)
            more = len(merged.missing_shards) - len(shown)
            _err(f"error: no report for shard(s) {missing}" + (f" and {more} more" if more else ""))
        if not quiet or not merged.ok:
            click.echo(f"merged {len(merged.sources)} report(s), shards: {_shard_list(merged.shards)}")
    sys.exit(EXIT_OK if merged.ok and code == EXIT_OK else EXIT_FAILED)


#: Shards named by ``report merge`` on one line (all of them are in ``--json``).
_MAX_LISTED_SHARDS = 20


def _shard_list(shards: Sequence[str | None]) -> str:
    """List the merged shards in order, at most :data:`_MAX_LISTED_SHARDS` of them, then how many more."""
    ordered = sorted((s or "all" for s in shards), key=lambda s: (len(s), s))
    listed = ", ".join(ordered[:_MAX_LISTED_SHARDS])
    more = len(ordered) - _MAX_LISTED_SHARDS
    return listed + (f" and {more} more" if more > 0 else "")


# train / predict: the [torch] extra; torch is imported only when they run
from maskrefine.cli_train import predict_cmd, train_cmd  # noqa: E402

main.add_command(train_cmd)
main.add_command(predict_cmd)

if __name__ == "__main__":  # python -m maskrefine.cli: the console entry point's handling too
    from maskrefine._entry import main as entry_main

    entry_main()
