"""Merge the JSON run reports of ``apply`` shards (``--shard K/N --report ...``) into one summary.

An array job (Slurm, Dask, Ray) ends with one report per shard; :func:`merge_run_reports` reads them,
checks that they belong to one job (same folders and settings, disjoint stems) and returns one
:class:`MergedRunReport`: the union of the per-file outcomes, unmatched files and duplicates, the summed
counts, and which shards of ``1..N`` are missing.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast, get_args

from maskrefine._checks import short_repr
from maskrefine.baseline_presets import BILATERAL_PRESETS, CRF_PRESETS
from maskrefine.errors import ConfigError, InputError, parse_problem
from maskrefine.io.files import not_regular_reason
from maskrefine.pipeline.guards import (
    REPORT_PREFIX_BYTES,
    check_not_an_output,
    check_output_file,
    check_parent_is_folder,
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
    FileOutcome,
    RunReport,
    Status,
    Unmatched,
    report_file,
    write_json_report,
)

__all__ = [
    "MergedRunReport",
    "OUTPUT_SETTING_KEYS",
    "PREDICT_SETTING_KEYS",
    "check_merged_output",
    "check_resume_settings",
    "merge_run_reports",
    "read_run_report",
    "recorded_config",
]

#: The job's folders (and ``predict``'s checkpoint), which a shard or a resumed run may spell another
#: way (see _same_setting).
_PATH_KEYS = frozenset({"masks_dir", "images_dir", "out_dir", "checkpoint"})
#: The settings of ``apply`` besides its folders that decide what an output file holds.
_OUTPUT_PARAMETERS = (
    "method",
    "params",
    "guide",
    "binary_input",
    "fmt",
    "mask_scale",
    "apply_exif",
    "auto_rule",
)
#: The settings that decide what an output file of ``apply`` holds: a run resumed with ``--skip-existing``
#: must have those of the run its report records (``jobs``, ``shard``, ``max_pixels``, ``overwrite`` may
#: differ: a file refused for its size can be resumed with a larger ``--max-pixels``).
OUTPUT_SETTING_KEYS = ("masks_dir", "images_dir", *_OUTPUT_PARAMETERS)
#: The same for ``predict``: the images, the checkpoint (its path, and the digest of the head weights it
#: holds, so that a checkpoint retrained in place is seen) and the settings applied to its predictions
#: (``device``, ``save_coarse`` and ``max_pixels`` may differ).
PREDICT_SETTING_KEYS = (
    "images_dir",
    "checkpoint",
    "head_sha256",
    "fmt",
    "refine",
    "bn_mode",
    "polarity",
    "apply_exif",
)
#: Settings that must agree across the shards of one job: its folders, those that decide an output, and
#: the size limit (shards refusing different files would not add up to one job).
_JOB_KEYS = ("masks_dir", "images_dir", "out_dir", *_OUTPUT_PARAMETERS, "max_pixels")
_STATUSES: tuple[Status, ...] = get_args(Status)
# Refuse absurdly large report files instead of reading them into memory (a shard of 1e6 files is ~300 MB).
_MAX_REPORT_BYTES = 2**31
#: Largest time (seconds, or seconds since the epoch for ``started_s``) read from a report: about 31,700
#: years. Larger values are not times, and their sums overflow to inf (not JSON) in the merged report.
MAX_SECONDS = 1e12


def _fail(path: Path, problem: str) -> InputError:
    return InputError(path, problem)


def _check_report_fields(report: RunReport) -> None:
    """Refuse (TypeError) a RunReport built by hand with fields of the wrong kind (before any is read)."""
    kinds: tuple[tuple[str, type, type | None], ...] = (
        ("config", Mapping, None),
        ("outcomes", list, FileOutcome),
        ("unmatched", list, Unmatched),
        ("duplicates", Mapping, None),
        ("not_regular", list, Failure),
    )
    for name, container, element in kinds:
        value = getattr(report, name)
        if not isinstance(value, container) or (
            element is not None and not all(isinstance(item, element) for item in cast("list[Any]", value))
        ):
            expected = f"a {container.__name__}" + (f" of {element.__name__}" if element is not None else "")
            raise TypeError(f"`{name}` must be {expected}; got {short_repr(value)}")


class MergeStopped(InputError):
    """The merge stopped at one report; ``unreadable`` also names the report files skipped before it.

    With ``skip_unreadable`` a report file that cannot be read is skipped and named. When the merge then
    stops (another file is not a shard of the same job, nothing was readable, ...) those names must not
    be lost with it.
    """

    def __init__(self, cause: InputError, unreadable: list[str]) -> None:
        super().__init__(cause.path, cause.problem)
        self.unreadable = unreadable


def read_run_report(path: str | os.PathLike[str]) -> RunReport:
    """Read one JSON run report written by ``apply --report`` (or :meth:`RunReport.write_json`).

    Parameters
    ----------
    path : str or Path
        A regular JSON file.

    Returns
    -------
    RunReport
        The report, with the per-file outcomes, unmatched files, duplicates, elapsed time and config.

    Raises
    ------
    InputError
        The file is missing, not a regular file, unreadable, not JSON, or not a run report; the message
        names the file and the problem.
    ConfigError
        ``path`` is empty or not a path.
    """
    if not isinstance(path, (str, Path)) or str(path) == "":
        raise ConfigError(f"a report path must be a non-empty path; got {short_repr(path)}")
    file = path_argument(path, "report path")  # a NUL character is refused, not "no such report file"
    try:
        reason = not_regular_reason(file)  # "not found", "a dangling symlink", "a symlink loop", ...
        if reason is not None:
            missing = {
                "not found": "no such report file",
                "a dangling symlink": "no such report file (a dangling symlink)",
            }
            raise _fail(file, missing.get(reason, f"not a regular file ({reason})"))
        if file.stat().st_size > _MAX_REPORT_BYTES:
            raise _fail(file, f"report file larger than {_MAX_REPORT_BYTES} bytes")
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(file, f"cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise _fail(file, "not a UTF-8 JSON file") from None
    if not text.strip():
        raise _fail(file, "file is empty" if not text else "file holds only whitespace")
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        # "Unterminated string starting at" ends with "at" itself: say where separately
        raise _fail(file, f"not valid JSON ({exc.msg.removesuffix(' at')}; line {exc.lineno})") from None
    except _NonFinite as exc:
        raise _fail(file, f"not valid JSON ({exc} is not a JSON number)") from None
    except RecursionError:
        raise _fail(file, "not valid JSON for a report (nested too deeply)") from None
    except ValueError as exc:  # an integer of more digits than Python converts (sys.get_int_max_str_digits)
        raise _fail(file, f"not valid JSON for a report ({parse_problem(exc)})") from None
    return _report_from_dict(file, data)


class _NonFinite(ValueError):
    """``NaN`` / ``Infinity`` in a JSON text (Python's ``json`` accepts them; JSON does not)."""


def _refuse_constant(name: str) -> None:
    raise _NonFinite(name)


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string; got {type(value).__name__}")
    return value


def _named(value: object, what: str) -> str:
    """Return a file's stem or path as recorded, refused (ValueError) when empty: apply records none so."""
    if _text(value, what) == "":
        raise ValueError(f"{what} is empty")
    return cast("str", value)


class _UnknownStatus(ValueError):
    """A file status other than written, skipped, failed."""


def _status(value: object) -> Status:
    text = _text(value, "'status'")
    for status in _STATUSES:
        if text == status:
            return status
    raise _UnknownStatus(short_repr(text))


def _seconds(value: object, what: str) -> float:
    """``value`` as seconds, a number in [0, :data:`MAX_SECONDS`]; else a ValueError naming ``what``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 <= value <= MAX_SECONDS  # NaN fails too; a huge int is compared exactly, never converted
    ):
        raise ValueError(
            f"{what} must be a finite number in [0, {MAX_SECONDS:g}]; got {short_repr(value, 40)}"
        )
    return float(value)


def _list_of_paths(value: object, what: str) -> list[object]:
    """``value`` itself when it is a list (its items are checked by the caller); else a TypeError."""
    if not isinstance(value, list):
        raise TypeError(f"{what} must be a list of paths; got {type(value).__name__}")
    return value


def _path_list(value: object, what: str) -> list[Path]:
    return [Path(_text(p, what)) for p in _list_of_paths(value, what)]


def _report_from_dict(file: Path, data: object) -> RunReport:
    if isinstance(data, Mapping) and "files" not in data and "preset" in data and "count" in data:
        raise _fail(
            file,
            "a `score` summary, not an apply run report: score summaries of shards cannot be merged "
            "exactly (max F needs every image's curve); run `maskrefine score` once over all the files, "
            "or concatenate the shards' --csv tables",
        )
    if not isinstance(data, Mapping) or not all(k in data for k in ("files", "config", "counts")):
        raise _fail(file, "not an apply run report (needs 'files', 'config' and 'counts')")
    files, config = data["files"], data["config"]
    if not isinstance(files, list) or not isinstance(config, Mapping):
        raise _fail(file, "not an apply run report ('files' must be a list, 'config' an object)")
    if "checkpoint" in config and "masks_dir" not in config:
        raise _fail(
            file,
            "a `predict` report, not an apply run report: `report merge` merges the reports of the shards "
            "of one `apply` job, and predict runs are not sharded",
        )
    try:
        outcomes = [
            FileOutcome(
                stem=_named(item["stem"], "'stem'"),
                status=_status(item["status"]),
                mask=Path(_text(item["mask"], "'mask'")),
                image=Path(_text(item["image"], "'image'")),
                output=Path(_named(item["output"], "'output'")),
                error=None if item.get("error") is None else _text(item["error"], "'error'"),
                seconds=_seconds(item.get("seconds", 0.0), "'seconds'"),
                encoding=None if item.get("encoding") is None else _text(item["encoding"], "'encoding'"),
                image_encoding=(
                    None
                    if item.get("image_encoding") is None
                    else _text(item["image_encoding"], "'image_encoding'")
                ),
                decision=dict(item["auto"]) if isinstance(item.get("auto"), Mapping) else None,
            )
            for item in files
        ]
        for outcome in outcomes:  # apply writes an error for a failed file, and only for one
            if (outcome.status == "failed") != (outcome.error is not None):
                raise ValueError(
                    f"file {outcome.stem!r} has status {outcome.status!r} "
                    + ("but no 'error'" if outcome.error is None else f"and an 'error' ({outcome.error})")
                )
        not_regular = [
            Failure(Path(_text(f["path"], "'path'")), _text(f["problem"], "'problem'"))
            for f in data.get("not_regular", [])
        ]
        unmatched = [
            Unmatched(
                Path(_text(u["path"], "'path'")),
                _text(u["folder"], "'folder'"),
                _text(u.get("reason", ""), "'reason'"),
            )
            for u in data.get("unmatched", [])
        ]
        duplicates_data = data.get("duplicates", {})
        if not isinstance(duplicates_data, Mapping):
            raise TypeError(f"'duplicates' must be an object; got {type(duplicates_data).__name__}")
        duplicates = {str(s): _path_list(ps, "'duplicates'") for s, ps in duplicates_data.items()}
        elapsed = _seconds(data.get("elapsed_s", 0.0), "'elapsed_s'")
        started = data.get("started_s")
        started = None if started is None else _seconds(started, "'started_s'")
        removed = [  # absent in the reports of earlier versions
            _named(folder, "'removed_output_folders'")
            for folder in _list_of_paths(data.get("removed_output_folders", []), "'removed_output_folders'")
        ]
    except _UnknownStatus as exc:
        raise _fail(file, f"unknown file status {exc} (expected one of {', '.join(_STATUSES)})") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail(file, f"malformed run report entry ({type(exc).__name__}: {exc})") from None
    # folder_notes=[]: a report read back never lists the folders its config names (they may be others now)
    return RunReport(
        outcomes, unmatched, duplicates, elapsed, dict(config), not_regular, started, [], removed
    )


def check_merged_output(path: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]] = ()) -> Path:
    """Return ``path`` as the destination of a merged report, or refuse it before anything is written.

    Parameters
    ----------
    path : str or Path
        Where the merged JSON will go: a new file, or an existing regular file (replaced atomically by
        :meth:`MergedRunReport.write_json` when it is a report maskrefine wrote, or blank).
    inputs : iterable of str or Path
        The report files being merged; the destination must not be one of them.

    Raises
    ------
    ConfigError
        ``path`` is empty, is one of ``inputs``, or exists as anything but a regular file (a folder,
        a symlink, a FIFO or device), which would be replaced or written through.
    """
    if not isinstance(path, (str, Path)):
        raise ConfigError(f"the merged report path must be a non-empty path; got {short_repr(path)}")
    target = file_path_argument(path, "merged report")
    if target.is_symlink() or (target.exists() and not target.is_file()):
        kind = (
            "a symlink"
            if target.is_symlink()
            else "a folder"
            if target.is_dir()
            else "a FIFO, socket or device (not a regular file)"
        )
        raise ConfigError(f"{target}: refusing to write the merged report over {kind}")
    check_parent_is_folder(target, "merged report")
    resolved = resolved_path(target, "merged report")
    for item in inputs:
        if resolved_path(Path(item), "report") == resolved:
            raise ConfigError(f"{target}: the merged report would overwrite one of the reports to merge")
    return target


@dataclass(slots=True)
class MergedRunReport:
    """Union of the run reports of one sharded ``apply`` job.

    Parameters
    ----------
    report : RunReport
        All shards' outcomes (sorted by stem), unmatched files and duplicates; ``elapsed`` as
        ``elapsed_rule`` says; ``config`` the shared settings with ``shard`` set to ``None``.
    sources : list of Path
        The report files, in the order given.
    shards : list of str or None
        Each source's ``K/N`` (``None`` for an unsharded run).
    missing_shards : list of int
        The ``K`` in ``1..N`` with no report (empty when every shard is present or runs were unsharded).
    shard_count : int or None
        N of the sharded reports (None when no report was sharded).
    elapsed_sum : float
        Sum of the shards' wall times (the work done, when shards ran one after another).
    unreadable : list of str, default []
        ``"path: problem"`` for each report file that could not be read (``skip_unreadable=True``).
    elapsed_rule : {"span", "sum"}, default "span"
        How ``report.elapsed`` (and so ``masks_per_s``) was made: ``"span"``, from the first shard's
        start to the last shard's end (every report has ``started_s``), the job's wall time whether the
        shards ran at once or one after another; ``"sum"``, the shards' summed times (a report without a
        start time), which makes ``masks_per_s`` a rate per shard-second.
    """

    report: RunReport
    sources: list[Path]
    shards: list[str | None]
    missing_shards: list[int]
    shard_count: int | None
    elapsed_sum: float
    unreadable: list[str] = field(default_factory=list)
    elapsed_rule: str = "span"

    @property
    def ok(self) -> bool:
        """True when the merged report is ok, no shard is missing and every report file was read.

        The merged report is not ok when a file failed or a shard's output folder was removed (see
        :attr:`RunReport.ok`).
        """
        return self.report.ok and not self.missing_shards and not self.unreadable

    def to_dict(self) -> dict[str, Any]:
        """Return the merged report in the single-run JSON layout, with the merge's own keys.

        Returns
        -------
        dict
            :meth:`RunReport.to_dict` of ``report`` plus the keys ``sources``, ``shards``,
            ``missing_shards``, ``unreadable``, ``elapsed_sum_s`` and ``elapsed_rule``; ``ok`` also
            requires every shard and every report file.
        """
        data = self.report.to_dict()
        data["ok"] = self.ok
        data["sources"] = [str(p) for p in self.sources]
        data["shards"] = list(self.shards)
        data["missing_shards"] = list(self.missing_shards)
        data["unreadable"] = list(self.unreadable)
        data["elapsed_sum_s"] = round(self.elapsed_sum, 6)
        data["elapsed_rule"] = self.elapsed_rule
        return data

    def write_json(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` as indented JSON to ``path`` atomically (parent folders created).

        ``path`` is first checked by :func:`check_merged_output` (and the merged sources may not be
        overwritten).

        Parameters
        ----------
        path : str or Path
            The JSON file to write: a new file, or an existing report maskrefine wrote or a blank file
            (replaced atomically; :func:`~maskrefine.pipeline.guards.check_report_replaceable`).

        Returns
        -------
        Path
            The path written.

        Raises
        ------
        ConfigError
            As :func:`check_merged_output`: an empty path, one of :attr:`sources`, or a path holding
            anything but a regular file; also (:func:`check_not_the_jobs_files`) a path inside the job's
            masks or images folder, or named like one of its outputs in its output folder; an existing
            file that is not a report maskrefine wrote.
        OutputError
            Writing failed; the message names the path.
        """
        target = check_merged_output(path, self.sources)
        check_not_the_jobs_files(target, self.report)
        return write_json_report(report_file(target, "merged report"), self.to_dict())


def check_not_the_jobs_files(target: Path, report: RunReport) -> None:
    """Refuse (ConfigError) a merged-report path among the merged job's inputs or outputs.

    As ``apply --report`` refuses its own report there: a path inside the job's masks or images folder
    (``config["masks_dir"]``, ``config["images_dir"]``), or named like one of its outputs in
    ``config["out_dir"]``, which a later ``--skip-existing`` run would take for a finished output.
    Last, an existing file there that is not a report maskrefine wrote (it is someone else's data).
    """
    config = report.config if isinstance(report.config, Mapping) else {}

    def folder(key: str) -> Path | None:
        value = config.get(key)
        return Path(value) if isinstance(value, str) and value else None

    inputs = {
        name: path
        for name, key in (("masks", "masks_dir"), ("images", "images_dir"))
        if (path := folder(key)) is not None
    }
    check_output_file(target, "merged report", inputs)
    out_dir = folder("out_dir")
    if out_dir is not None:
        check_not_an_output(target, "merged report", out_dir, {item.output.name for item in report.outcomes})
    check_report_replaceable(target, "merged report", overwrite=False, how="remove it first")


def merge_run_reports(
    reports: Iterable[str | os.PathLike[str] | RunReport], *, skip_unreadable: bool = False
) -> MergedRunReport:
    """Merge the run reports of the shards of one ``apply`` job into one.

    Parameters
    ----------
    reports : iterable of str, Path or RunReport
        Report files written by ``apply --shard K/N --report FILE`` (or reports returned by
        :func:`~maskrefine.pipeline.apply_folder`), at least one.
    skip_unreadable : bool, default False
        Record a file that cannot be read as a run report in ``unreadable`` (the merged report is then
        not ``ok``) and merge the others, instead of raising.

    Returns
    -------
    MergedRunReport
        The union; its ``ok`` is False when a file failed or a shard of ``1..N`` has no report.

    Raises
    ------
    InputError
        A file cannot be read as a run report (see :func:`read_run_report`; with ``skip_unreadable``,
        only when no file can be read); reports of different jobs (folders, method, parameters, guide
        or format differ, or different N); the same shard or the same stem in two reports.
    ConfigError
        No report given, an item that is neither a path nor a RunReport, or one report file given
        twice (under any spelling).

    Examples
    --------
    >>> from pathlib import Path
    >>> from maskrefine.pipeline import FileOutcome, RunReport, merge_run_reports
    >>> def done(stem):
    ...     paths = Path(f"m/{stem}.png"), Path(f"i/{stem}.jpg"), Path(f"o/{stem}.png")
    ...     return FileOutcome(stem, "written", *paths)
    >>> a = RunReport([done("a")], config={"method": "guided", "shard": "1/2"})
    >>> b = RunReport([done("b")], config={"method": "guided", "shard": "2/2"})
    >>> merged = merge_run_reports([a, b])
    >>> merged.ok, merged.missing_shards, merged.report.counts["written"]
    (True, [], 2)
    """
    if isinstance(reports, str | bytes | os.PathLike | RunReport) or not isinstance(reports, Iterable):
        raise ConfigError(
            f"reports must be a list of report paths or RunReports; got {type(reports).__name__} "
            "(for one report: [report])"
        )
    (skip_unreadable,) = job_flags(skip_unreadable=skip_unreadable)
    items: list[tuple[Path, RunReport]] = []
    unreadable: list[InputError] = []
    given_files: dict[tuple[int, int], Path] = {}  # (device, inode): overlapping globs name a file twice
    for index, item in enumerate(reports):
        if isinstance(item, RunReport):
            try:
                _seconds(item.elapsed, "elapsed")
                if item.started is not None:
                    _seconds(item.started, "started")
                _check_report_fields(item)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"report {index + 1}: {exc}") from None
            items.append((Path(f"<report {index + 1}>"), item))
        elif isinstance(item, (str, Path)):
            _check_given_once(item, given_files)
            try:
                items.append((Path(item), read_run_report(item)))
            except InputError as exc:
                if not skip_unreadable:
                    raise
                unreadable.append(exc)
        else:
            kind = type(item).__name__
            raise ConfigError(f"report {index + 1}: expected a path or a RunReport; got {kind}")
    if not items:
        if unreadable:
            raise MergeStopped(unreadable[0], [str(exc) for exc in unreadable[1:]])
        raise ConfigError("no run reports to merge")
    try:
        return _merge(items, unreadable)
    except InputError as exc:
        if not unreadable:
            raise
        raise MergeStopped(exc, [str(u) for u in unreadable]) from None


def _check_given_once(item: str | Path, given: dict[tuple[int, int], Path]) -> None:
    """Refuse a report file named a second time (another spelling included); record it in ``given``."""
    try:
        info = os.stat(item)
    except (OSError, ValueError):  # missing, unreadable or a bad name: read_run_report names the problem
        return
    identity = (info.st_dev, info.st_ino)
    if identity in given:
        # the CLI hands over paths, spelled as Path spells them ("./r.json" is "r.json"): no "also as r.json"
        first = str(given[identity])
        also = "" if first == str(item) else f" (also as {short_repr(first, 1024)})"
        raise ConfigError(f"report file {short_repr(str(item), 1024)} is given twice{also}")
    given[identity] = Path(item)


def _show_setting(value: object) -> str:
    """Show a setting in a message: a string (a folder) whole up to 1024 characters, anything else short.

    Folders cut at 80 characters lost the part that differs ('/data/run/b/...s', not '/data/run/a/...s');
    a hostile value (a 4000-digit number) stays short.
    """
    return short_repr(value, 1024 if isinstance(value, str) else 80)


def _same_setting(key: str, value: object, first: object) -> bool:
    """Whether a shard's job setting is the first report's.

    Folders (and files: a checkpoint) are the same when spelled alike or when both are absolute and name
    one existing folder here (one shard reached the data through a symlink or another mount path, as on
    clusters).
    """
    if value == first:
        return True
    if key not in _PATH_KEYS or not isinstance(value, str) or not isinstance(first, str):
        return False
    if not (os.path.isabs(value) and os.path.isabs(first)):
        return False
    try:
        return os.path.samefile(value, first)
    except (OSError, ValueError):  # missing here, unreadable, or a NUL in the text: not shown to be one
        return False


#: Where a run report's ``config`` begins, as maskrefine writes reports (indented by two spaces).
_CONFIG_OPENING = '\n  "config": {'


def recorded_config(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Read the ``config`` object of a run report maskrefine wrote at ``path``; None when none is found.

    Only the beginning of the file is read (:data:`~maskrefine.pipeline.guards.REPORT_PREFIX_BYTES`, where
    maskrefine writes ``config``, before the per-file entries), so a report of a million files costs no
    more than a small one. A file laid out otherwise (rewritten by another tool), a ``config`` that is not
    a JSON object, or a file that cannot be read or is not a regular file (opened without blocking, so a
    FIFO put there does not hang the run) gives None: nothing is known of its settings.

    Parameters
    ----------
    path : path-like
        A JSON run report (``apply --report``).

    Returns
    -------
    dict or None
        The settings the run recorded, as JSON values (lists, not tuples).
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except (OSError, ValueError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return None
        head = os.read(descriptor, REPORT_PREFIX_BYTES).decode("ascii", errors="replace")
    except OSError:
        return None
    finally:
        os.close(descriptor)
    at = head.find(_CONFIG_OPENING)
    if at < 0:
        return None
    try:
        config, _ = json.JSONDecoder().raw_decode(head, at + len(_CONFIG_OPENING) - 1)
    except (ValueError, RecursionError):  # cut by the prefix's end, not JSON, or nested too deep
        return None
    return config if isinstance(config, dict) else None


def check_resume_settings(
    report_path: str | os.PathLike[str],
    config: Mapping[str, Any],
    out_dir: str | os.PathLike[str],
    kept: Iterable[str | os.PathLike[str]],
    keys: Sequence[str] = OUTPUT_SETTING_KEYS,
) -> None:
    """Refuse (ConfigError) to resume into ``out_dir`` next to outputs its report made with other settings.

    ``apply --skip-existing`` keeps the outputs already in ``out_dir`` (``kept``); the report at
    ``report_path`` (the one the run will replace) records the settings of the run that last wrote it.
    When it records a run into the same folder with another value of one of ``keys``, and some kept
    output is not newer than the report (so that run may have made it), the folder would end up holding
    outputs of two settings, which no report would say: refused. Not compared: a report of a run into
    another folder, one whose settings cannot be read (:func:`recorded_config`), a setting it does not
    record or records as a relative path (an older version's report), and a report older than every
    kept output (a later run made them, stopped before it wrote its report: nothing tells its settings).

    Parameters
    ----------
    report_path : path-like
        The ``--report`` file, existing.
    config : mapping
        The settings of the run about to start, as its report will record them.
    out_dir : path-like
        The run's output folder.
    kept : iterable of path-like
        The outputs already in ``out_dir`` that the run keeps. Their modification times are read only
        when a setting differs.
    keys : sequence of str, default :data:`OUTPUT_SETTING_KEYS`
        The settings compared (those that decide what an output holds); ``predict`` passes
        :data:`PREDICT_SETTING_KEYS`.
    """
    recorded = recorded_config(report_path)
    if recorded is None or not _same_setting("out_dir", recorded.get("out_dir"), os.path.abspath(out_dir)):
        return
    now = json.loads(json.dumps({key: config.get(key) for key in keys}))
    if "params" in now and "params" in recorded:  # a preset's value spelled out is the preset's value
        now["params"], recorded["params"] = (
            _with_preset_values(now["params"]),
            _with_preset_values(recorded["params"]),
        )
    # the first setting that differs (a method changed changes its parameters too), each part of it
    differences = next(
        (
            found
            for key in keys
            if key in recorded and not _recorded_as_typed(key, recorded[key])
            for found in [_setting_differences(key, now[key], recorded[key])]
            if found
        ),
        None,
    )
    if not differences:
        return
    try:
        written = os.stat(report_path).st_mtime_ns
    except (OSError, ValueError):
        return
    kept = list(kept)
    older = sum(1 for output in kept if _modified_ns(output) <= written)
    if not older:  # every kept output is newer than the report: its run did not make them
        return
    shown = "; ".join(
        f"{_option_of(name)} is {_show_option_value(name, value)}, but the report records "
        f"{_show_option_value(name, before)}"
        for name, value, before in differences
    )
    raise ConfigError(
        f"--skip-existing: {shown} ({report_path}); {older} of the {len(kept)} outputs already in "
        f"{out_dir} are older than that report, so its run may have made them: resuming would mix outputs "
        "of two settings there. Resume with the report's settings if those outputs are its run's, write to "
        "another --out, or use --overwrite to redo every file"
    )


#: The command-line option of each recorded setting whose name is not ``--`` plus the key with dashes
#: (parameters: ``params radius`` is ``--radius``).
_OPTIONS = {
    "masks_dir": "--masks",
    "images_dir": "--images",
    "fmt": "--format",
    "apply_exif": "--apply-exif/--ignore-exif",
    "auto_rule": "auto's rule (this version's --method auto)",
    "head_sha256": "--checkpoint's head weights",
    "params output": "--crf-output",
}


def _option_of(name: str) -> str:
    """``"--format (fmt)"``: the option a recorded setting comes from, and the report's name for it."""
    option = _OPTIONS.get(name) or "--" + name.removeprefix("params ").replace("_", "-")
    return f"{option} ({name})"


def _show_option_value(name: str, value: object) -> str:
    """Show a setting's value as a user gave it: a flag given or not, else as :func:`_show_setting`."""
    if isinstance(value, bool):
        if name == "apply_exif":
            return "--apply-exif" if value else "--ignore-exif"
        return "given" if value else "not given"
    return _show_setting(value)


def _with_preset_values(params: object) -> object:
    """``params`` of a baseline refiner with each unset (None) value that its ``preset`` sets filled in.

    ``--preset tokencut`` and ``--preset tokencut --sigma-luma 16`` make the same outputs: their
    parameters compare equal. Other parameters (e.g. the CRF's ``gt_prob``, which its presets do not set)
    are left as they are.
    """
    if not isinstance(params, dict) or not isinstance(params.get("preset"), str):
        return params
    preset = BILATERAL_PRESETS.get(params["preset"]) or CRF_PRESETS.get(params["preset"])
    if preset is None:
        return params
    return {
        name: getattr(preset, name) if value is None and hasattr(preset, name) else value
        for name, value in params.items()
    }


def _recorded_as_typed(key: str, value: object) -> bool:
    """Whether ``value`` is a path as an older version recorded it (relative): it cannot be compared."""
    return key in _PATH_KEYS and isinstance(value, str) and not os.path.isabs(value)


def _setting_differences(key: str, value: object, before: object) -> list[tuple[str, object, object]]:
    """``(name, value, before)`` of each part of a setting that differs: each key of a mapping on its own."""
    if _same_setting(key, value, before):
        return []
    if isinstance(value, dict) and isinstance(before, dict):
        parts = sorted(set(value) | set(before), key=lambda part: (part not in value, str(part)))
        return [
            (f"{key} {part}", value.get(part), before.get(part))
            for part in parts
            if value.get(part) != before.get(part) or (part in value) != (part in before)
        ]
    return [(key, value, before)]


def _modified_ns(path: str | os.PathLike[str]) -> int:
    """Modification time of ``path`` itself, in ns; a file that cannot be asked counts as new."""
    try:
        return os.lstat(path).st_mtime_ns
    except (OSError, ValueError):
        return 2**63


def _merge(items: list[tuple[Path, RunReport]], unreadable: list[InputError]) -> MergedRunReport:
    """Merge the reports read (``(path, report)``, in order); ``unreadable``: the files skipped."""
    first_path, first = items[0]
    job = {key: first.config.get(key) for key in _JOB_KEYS}
    shards: list[str | None] = []
    seen_shards: dict[str, Path] = {}
    total_n: int | None = None
    by_stem: dict[str, tuple[Path, FileOutcome]] = {}
    unmatched: dict[tuple[str, str], Unmatched] = {}
    duplicates: dict[str, list[Path]] = {}
    not_regular: dict[str, Failure] = {}
    for path, report in items:
        for key in _JOB_KEYS:
            if not _same_setting(key, report.config.get(key), job[key]):
                raise _fail(
                    path,
                    f"not a shard of the same job as {first_path}: {key} is "
                    f"{_show_setting(report.config.get(key))}, not {_show_setting(job[key])}",
                )
        pairs_seen, first_seen = report.config.get("folder_pairs"), first.config.get("folder_pairs")
        if pairs_seen is not None and first_seen is not None and pairs_seen != first_seen:
            # files added or removed between the shards' runs: a pair that fell in a shard that had already
            # run was never processed, though every shard reports success
            raise _fail(
                path,
                f"the folders changed between the shards' runs: this shard saw {_show_setting(pairs_seen)} "
                f"pairs, {first_path} saw {_show_setting(first_seen)}; rerun every shard on the same files",
            )
        shard_text = report.config.get("shard")
        shards.append(shard_text)
        shard_kn: tuple[int, int] | None = None
        if shard_text is not None:
            try:
                parsed = parse_shard(str(shard_text))
            except ConfigError as exc:
                raise _fail(path, f"bad shard in config: {exc}") from None
            assert parsed is not None  # a string never parses to None
            shard_kn = k, n = parsed
            if total_n is not None and n != total_n:
                raise _fail(path, f"shard {k}/{n} does not match the other reports' N = {total_n}")
            total_n = n
            key_kn = f"{k}/{n}"
            if key_kn in seen_shards:
                raise _fail(path, f"shard {key_kn} is also reported by {seen_shards[key_kn]}")
            seen_shards[key_kn] = path
        for outcome in report.outcomes:
            if not in_shard(outcome.stem, shard_kn):
                raise _fail(
                    path,
                    f"stem {short_repr(outcome.stem)} is not one of shard {shard_text}'s files: the report "
                    "was edited or damaged, or another maskrefine version split the shards; rerun that shard",
                )
            if outcome.stem in by_stem:
                raise _fail(
                    path, f"stem {short_repr(outcome.stem)} is also reported by {by_stem[outcome.stem][0]}"
                )
            by_stem[outcome.stem] = (path, outcome)
        for entry in report.unmatched:
            unmatched[(str(entry.path), entry.folder)] = entry
        for stem, paths in report.duplicates.items():
            duplicates[stem] = paths
        for failure in report.not_regular:
            not_regular[str(failure.path)] = failure
    missing: list[int] = []
    if total_n is not None:
        present = {int(s.split("/")[0]) for s in seen_shards}
        missing = [k for k in range(1, total_n + 1) if k not in present]
    pairs = first.config.get("folder_pairs")
    # every pair of the folders has one outcome in its shard's report: all shards present, they add up
    if not missing and type(pairs) is int and len(by_stem) != pairs:
        raise _fail(
            first_path,
            f"the reports record {len(by_stem)} file(s), but the folders held {pairs} pair(s) when the "
            f"shards ran (folder_pairs): a report was edited or damaged; rerun the shards",
        )
    elapsed_sum = sum(report.elapsed for _, report in items)
    starts = [report.started for _, report in items]
    if all(start is not None for start in starts):
        # the job's wall time: first start to last end, whether the shards ran at once or in turn
        first_start = min(s for s in starts if s is not None)
        ends = [(report.started or 0.0) + report.elapsed for _, report in items]
        elapsed, elapsed_rule = max(ends) - first_start, "span"
    else:  # a report without a start time: the shards' summed time (masks/s per shard-second)
        first_start, elapsed, elapsed_rule = None, elapsed_sum, "sum"
    merged = RunReport(
        outcomes=[by_stem[stem][1] for stem in sorted(by_stem)],
        # one run's order (reports.unmatched_and_duplicates): files of a kind their folder is not read
        # from, then the masks' unmatched files, then the images' (masks before images, each by path)
        unmatched=sorted(
            unmatched.values(), key=lambda u: (not u.reason, u.folder != "masks", u.folder, str(u.path))
        ),
        duplicates=dict(sorted(duplicates.items())),
        elapsed=elapsed,
        config={**first.config, "shard": None, "jobs": None},
        not_regular=[not_regular[key] for key in sorted(not_regular)],
        started=first_start,
        # what the reports made when their jobs ended (none read back from a file): the folders are not listed
        folder_notes=list(dict.fromkeys(note for _, report in items for note in report.folder_notes or ())),
        removed_output_folders=list(
            dict.fromkeys(folder for _, report in items for folder in report.removed_output_folders)
        ),
    )
    return MergedRunReport(
        report=merged,
        sources=[path for path, _ in items],
        shards=shards,
        missing_shards=missing,
        shard_count=total_n,
        elapsed_sum=elapsed_sum,
        unreadable=[str(exc) for exc in unreadable],
        elapsed_rule=elapsed_rule,
    )
