"""Report types of the folder jobs (:class:`RunReport`, :class:`ScoreReport`) and their JSON / CSV forms.

The jobs never print: every outcome (written, skipped, failed, unmatched, duplicated) is returned in one
of these reports for the caller (the CLI) to show or save.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn, Protocol

import numpy as np

from maskrefine.errors import ConfigError, OutputError, OutputFolderRemovedError, ReportNotWrittenError
from maskrefine.io import PLAIN, Pairing, write_text_atomic
from maskrefine.io.imageio import write_text_chunks_atomic
from maskrefine.io.pairs import (
    Skipped,
    counted_files,
    list_folder,
    subfolder_notes,
    unpaired_hints,
    unread_reason,
)
from maskrefine.pipeline.guards import (
    check_output_file,
    check_report_still_replaceable,
    file_path_argument,
    in_shard,
)

__all__ = [
    "FileOutcome",
    "Failure",
    "Unmatched",
    "RunReport",
    "ScoreReport",
    "Progress",
    "Status",
    "describe_unexpected",
    "unmatched_and_duplicates",
    "not_regular_entries",
    "not_regular_in",
    "count_encodings",
    "write_run_report",
    "write_json_report",
    "StreamedArray",
    "json_report_chunks",
    "stop_for_removed_output_folder",
    "not_processed_outcome",
    "earlier_output_kept",
    "list_input_folder",
]

#: ``progress(done, total)``, called by the jobs after each file.
Progress = Callable[[int, int], None]
Status = Literal["written", "skipped", "failed"]


def describe_unexpected(path: Path, exc: BaseException) -> str:
    """``"<path>: unexpected <Type>: <message>"`` for an exception no check anticipated."""
    text = str(exc).strip() or "(no message)"
    return f"{path}: unexpected {type(exc).__name__}: {text}"


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What happened to one matched stem in :func:`~maskrefine.pipeline.apply_folder`.

    Parameters
    ----------
    stem : str
        File name without suffix, shared by the mask and the image.
    status : {"written", "skipped", "failed"}
        ``skipped`` means the output already existed and ``skip_existing`` was set.
    mask, image, output : Path
        The input mask, the input image and the (intended) output file.
    error : str or None, optional
        For failures: the message, starting with the file it concerns.
    seconds : float, default 0.0
        Wall time spent on this file (0 for skipped files).
    encoding : str or None, optional
        For written files: how the mask was encoded (:attr:`maskrefine.io.MaskRead.encoding`).
    decision : dict or None, optional
        With ``method="auto"``: what auto saw and applied (:meth:`maskrefine.auto.AutoDecision.to_dict`).
        The outcomes of one job share one dict per distinct decision (a million files hold a few): read
        it, or copy it before changing it (``to_dict`` returns it as it is).
    image_encoding : str or None, optional
        For written files: how the image was encoded (``"plain"``, or ``"8-bit values in a 16-bit file"``:
        a 16-bit image whose largest value is 2..255, read as v/255).
    """

    stem: str
    status: Status
    mask: Path
    image: Path
    output: Path
    error: str | None = None
    seconds: float = 0.0
    encoding: str | None = None
    decision: dict[str, Any] | None = None
    image_encoding: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (paths as strings).

        Returns
        -------
        dict
            ``stem, status, mask, image, output, error, seconds`` (rounded to 6 decimals), ``encoding``,
            ``image_encoding``, and ``auto`` (the ``decision``) when there is a decision.
        """
        return {
            "stem": self.stem,
            "status": self.status,
            "mask": str(self.mask),
            "image": str(self.image),
            "output": str(self.output),
            "error": self.error,
            "seconds": round(self.seconds, 6),
            "encoding": self.encoding,
            "image_encoding": self.image_encoding,
            **({"auto": self.decision} if self.decision is not None else {}),
        }


@dataclass(frozen=True, slots=True)
class Failure:
    """A file that could not be used: its path and the problem (``message`` is ``"path: problem"``).

    Parameters
    ----------
    path : Path
        The file.
    problem : str
        What is wrong with it.
    """

    path: Path
    problem: str

    @property
    def message(self) -> str:
        """``"path: problem"``, as printed by the CLI."""
        return f"{self.path}: {self.problem}"

    def to_dict(self) -> dict[str, str]:
        """JSON-ready dict.

        Returns
        -------
        dict of str to str
            ``{"path": str(path), "problem": problem}``.
        """
        return {"path": str(self.path), "problem": self.problem}


@dataclass(frozen=True, slots=True)
class Unmatched:
    """A file whose stem has no partner; ``folder`` names the folder it was found in.

    Parameters
    ----------
    path : Path
        The file.
    folder : str
        The folder it was found in, by role (e.g. ``"masks"``, ``"images"``, ``"predictions"``, ``"gt"``).
    reason : str, default ""
        Why it has no partner when that is not simply a missing file: e.g. a JPEG among masks, which are
        not read from JPEG files.
    """

    path: Path
    folder: str
    reason: str = ""

    def to_dict(self) -> dict[str, str]:
        """JSON-ready dict.

        Returns
        -------
        dict of str to str
            ``{"path": str(path), "folder": folder}``, plus ``"reason"`` when there is one.
        """
        out = {"path": str(self.path), "folder": self.folder}
        if self.reason:
            out["reason"] = self.reason
        return out


def unmatched_and_duplicates(
    pairing: Pairing, first: str, second: str, shard: tuple[int, int] | None
) -> tuple[list[Unmatched], dict[str, list[Path]]]:
    """Return the unmatched files (labelled ``first`` / ``second``) and duplicated stems of ``shard``."""
    unmatched: list[Unmatched] = []
    for unread, role, extensions in (  # first: the files a user most needs to see
        (pairing.unread_first, first, pairing.first_extensions),
        (pairing.unread_second, second, pairing.second_extensions),
    ):
        reason = unread_reason(extensions)
        unmatched += [Unmatched(p, role, reason) for p in unread if in_shard(p.stem, shard)]
    unmatched += [Unmatched(p, first) for p in pairing.only_first if in_shard(p.stem, shard)]
    unmatched += [Unmatched(p, second) for p in pairing.only_second if in_shard(p.stem, shard)]
    duplicates = {s: list(ps) for s, ps in sorted(pairing.duplicates.items()) if in_shard(s, shard)}
    return unmatched, duplicates


def unpaired_counts(unmatched: Sequence[Unmatched], roles: tuple[str, str], duplicates: int) -> str:
    """``"20 masks and 20 images without a partner"``: the files left out, per folder of ``roles``.

    Then the ``duplicates`` stems; each part only when it counts a file, so the text may be empty. For
    the "nothing was processed" messages, before :func:`~maskrefine.io.pairs.unpaired_hints` (which
    counts the files not read, with why).
    """
    alone = [sum(1 for item in unmatched if item.folder == role and not item.reason) for role in roles]
    parts = []
    if any(alone):
        parts.append(
            f"{counted_files(alone[0], roles[0])} and {counted_files(alone[1], roles[1])} without a partner"
        )
    if duplicates:
        parts.append(f"{duplicates} duplicated stem{'s' if duplicates != 1 else ''}")
    return ", ".join(parts)


def _not_regular(item: Skipped) -> Failure:
    """Return the failure of an input entry that is not a regular file (never opened)."""
    return Failure(item.path, f"is {item.reason}, not a regular file; skipped (never opened)")


def not_regular_entries(pairing: Pairing, shard: tuple[int, int] | None) -> list[Failure]:
    """Return the entries of the input folders that are not regular files (in ``shard``), as failures."""
    return [_not_regular(item) for item in pairing.skipped if in_shard(item.path.stem, shard)]


def list_input_folder(
    folder: Path, role: str, extensions: tuple[str, ...]
) -> tuple[dict[str, Path], dict[str, list[Path]], list[Unmatched], list[Failure]]:
    """List a folder read on its own (``predict --images``) as :func:`~maskrefine.io.match_folders` does.

    Each of the two folders of ``match_folders`` (``apply``'s --masks and --images) is listed so: only
    the entries directly in ``folder``, hidden ones left out; nothing is opened.

    Parameters
    ----------
    folder : Path
        The input folder (checked to be one).
    role : str
        Its role in the report (e.g. ``"images"``): the ``folder`` of its :class:`Unmatched` entries.
    extensions : tuple of str
        The suffixes its files are read from, with the dot, any case.

    Returns
    -------
    files : dict of str to Path
        The regular files (symlinks to one included) by stem, each stem named once in the folder.
    duplicates : dict of str to list of Path
        Stems named more than once (``a.png`` and ``a.jpg``, or a file and an entry of ``not_regular``),
        sorted by stem: neither is used.
    unmatched : list of Unmatched
        Entries with another image or mask suffix, which are not read (the reason says why).
    not_regular : list of Failure
        Entries with a wanted suffix that are not regular files (a folder, FIFO, dangling symlink...).
    """
    listing = list_folder(folder, extensions)
    reason = unread_reason(extensions)
    return (
        listing.files,
        {stem: listing.duplicates[stem] for stem in sorted(listing.duplicates)},
        [Unmatched(path, role, reason) for path in listing.unread],
        [_not_regular(item) for item in listing.skipped],
    )


def duplicates_in(*pairings: Pairing) -> dict[str, list[Path]]:
    """Return the duplicated stems of several pairings that share a folder: each stem once, its files once."""
    found: dict[str, dict[str, Path]] = {}
    for pairing in pairings:
        for stem, paths in pairing.duplicates.items():
            found.setdefault(stem, {}).update((str(path), path) for path in paths)
    return {stem: [files[key] for key in sorted(files)] for stem, files in sorted(found.items())}


def not_regular_in(*pairings: Pairing) -> list[Failure]:
    """:func:`not_regular_entries` of several pairings that share a folder, each entry once, by path."""
    found = {str(f.path): f for pairing in pairings for f in not_regular_entries(pairing, None)}
    return [found[key] for key in sorted(found)]


#: Prefix of the image encodings among :attr:`RunReport.encodings` (the mask encodings have none).
IMAGE_ENCODING_PREFIX = "images: "


def count_encodings(encodings: Sequence[str | None], prefix: str = "") -> dict[str, int]:
    """``{prefix + encoding: count}`` of the non-plain encodings, in order of first appearance."""
    counts: dict[str, int] = {}
    for encoding in encodings:
        if encoding is not None and encoding != PLAIN:
            counts[prefix + encoding] = counts.get(prefix + encoding, 0) + 1
    return counts


def _duplicates_dict(duplicates: Mapping[str, Sequence[Path]]) -> dict[str, list[str]]:
    return {stem: [str(p) for p in paths] for stem, paths in sorted(duplicates.items())}


def report_file(path: str | os.PathLike[str], what: str) -> Path:
    """Check ``path`` as a report file to write and create its parent folders; return it as a Path.

    Raises
    ------
    ConfigError
        Not a path, empty, with a NUL character, or ending like a folder (``out/``: it would be written as
        a file named ``out``).
    OutputError
        A parent folder cannot be created (a file in the way, no permission); the message names the path.
    """
    checked = file_path_argument(path, what)
    try:
        checked.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(checked, f"cannot create its folder ({exc.strerror or exc})") from exc
    return checked


@dataclass(frozen=True, slots=True)
class StreamedArray:
    """A JSON array of a report whose items are made one at a time as the file is written.

    A value of the ``data`` given to :func:`write_json_report` (e.g. a run report's ``files``: a million
    files' entries, as dicts and as text, would take gigabytes at once). ``items()`` returns a fresh
    iterable of the JSON-ready items each time it is called.
    """

    items: Callable[[], Iterable[Any]]


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=2, allow_nan=False)


def json_report_chunks(data: Mapping[str, Any]) -> Iterator[str]:
    """Yield the text of ``json.dumps(data, indent=2, allow_nan=False)`` plus a newline, piece by piece.

    The pieces join to exactly that text, with each :class:`StreamedArray` value written as the JSON
    array of its items: one piece per top-level value, and one per item of a streamed array (each item
    as ``json.dumps`` would indent it there). ``data``'s keys must be strings.

    Parameters
    ----------
    data : mapping of str to JSON-ready values
        The report, with :class:`StreamedArray` values allowed at its top level.

    Yields
    ------
    str
        The pieces of the text, in order.

    Raises
    ------
    ValueError
        A value holds NaN or an infinity (raised when the piece holding it is made).
    TypeError
        A key is not a string, or a value has no JSON form.
    """
    opener = "{\n  "
    for key, value in data.items():
        if not isinstance(key, str):
            raise TypeError(f"report keys must be strings; got {type(key).__name__}")
        yield f"{opener}{_dumps(key)}: "
        opener = ",\n  "
        if not isinstance(value, StreamedArray):
            yield _dumps(value).replace("\n", "\n  ")  # a newline in JSON text is indentation only
            continue
        before = "[\n    "
        for item in value.items():
            yield before + _dumps(item).replace("\n", "\n    ")
            before = ",\n    "
        yield "[]" if before == "[\n    " else "\n  ]"
    yield "{}\n" if opener == "{\n  " else "\n}\n"


def write_json_report(path: Path, data: Mapping[str, Any]) -> Path:
    """Write ``data`` as a JSON report file: indented, UTF-8, newline-terminated, published atomically.

    The shared writer of the reports' ``write_json`` methods (run, score, merged and paired reports).
    The text is ``json.dumps(data, indent=2, allow_nan=False)`` plus a newline. Without a
    :class:`StreamedArray` in ``data`` the whole text is encoded first, so nothing is written for data
    JSON cannot hold; with one (a run report's ``files``), the text is made and written piece by piece
    (:func:`json_report_chunks`: the same bytes, never held whole), and data JSON cannot hold stops the
    write before anything is published. The text goes to a temporary file in the same folder, moved
    over ``path`` (:func:`~maskrefine.io.write_text_atomic` with its default ``overwrite=True``): a
    reader, or a crash at any moment, sees no file, the previous file or the complete new one, never a
    partial file. There is no no-clobber mode: an existing regular file is
    replaced (it keeps its permissions); anything else at ``path`` (a symlink, a folder, a FIFO) is
    refused and left alone. Callers that must not replace a file check ``path`` before calling (as
    :func:`~maskrefine.pipeline.merge.check_merged_output` does for the merged report's sources, and the
    jobs do with :func:`~maskrefine.pipeline.guards.check_report_replaceable` for a file maskrefine did
    not write).

    Parameters
    ----------
    path : Path
        The JSON file, already checked and with its parent folders created by :func:`report_file` (not
        checked again here).
    data : mapping
        JSON-ready data (a report's ``to_dict()``): str, int, float, bool, None, lists and mappings,
        and at its top level :class:`StreamedArray` values. NaN and infinities are refused rather than
        written as the non-JSON tokens ``NaN`` and ``Infinity``: a caller turns them into None first (as
        :meth:`ScoreReport.to_dict` does).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        ``data`` holds NaN or an infinity (nothing is written).
    TypeError
        ``data`` holds a value JSON has no form for (a Path, an ndarray, a set; nothing is written).
    OutputError
        ``path`` is not a regular file, or writing failed (no space, no permission); the message names
        the path and no temporary file is left behind.
    """
    if any(isinstance(value, StreamedArray) for value in data.values()):
        return write_text_chunks_atomic(path, json_report_chunks(data))
    return write_text_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


#: The input folders of a run report and of a score report: (key of its ``config``, role, option).
_RUN_FOLDERS = (
    ("masks_dir", "masks", "--masks (masks_dir)"),
    ("images_dir", "images", "--images (images_dir)"),
)
_SCORE_FOLDERS = (("pred_dir", "predictions", "--pred (pred_dir)"), ("gt_dir", "gt", "--gt (gt_dir)"))


def _folder_notes(config: object, unmatched: object, folders: Sequence[tuple[str, str, str]]) -> list[str]:
    """:func:`~maskrefine.io.pairs.subfolder_notes` of the ``folders`` a report's ``config`` names.

    No note for a report made by hand whose ``config`` or ``unmatched`` is not of its kind (merging such a
    report names the field); each folder is listed on disk.
    """
    if not isinstance(config, Mapping) or not isinstance(unmatched, list):
        return []
    if not all(isinstance(item, Unmatched) for item in unmatched):
        return []
    return subfolder_notes(unmatched, [(config.get(key), role, option) for key, role, option in folders])


@dataclass(slots=True)
class RunReport:
    """Result of :func:`~maskrefine.pipeline.apply_folder`.

    Parameters
    ----------
    outcomes : list of FileOutcome, default []
        One per matched stem, in stem order.
    unmatched : list of Unmatched, default []
        Masks without an image (``folder="masks"``) and images without a mask (``folder="images"``).
    duplicates : dict of str to list of Path, default {}
        Stems present more than once in a folder (e.g. ``a.png`` and ``a.jpg``); not processed.
    elapsed : float, default 0.0
        Wall time of the whole job in seconds.
    config : dict, default {}
        The job's settings (method, params, guide, fmt, jobs, shard, folders), for the JSON report.
    not_regular : list of Failure, default []
        Entries of the input folders that are not regular files (FIFO, folder, dangling symlink...);
        never opened, and they make ``ok`` False.
    started : float or None, optional
        When the job started (seconds since the epoch, UTC), so that merged shard reports can give the
        wall time from the first start to the last end; None when unknown.
    folder_notes : list of str or None, optional
        What :attr:`nothing_processed` says of the input folders that hold only subfolders
        (:func:`~maskrefine.io.pairs.subfolder_notes`). None (default): made when the report is built, as
        the job does when it ends, from ``config``'s ``masks_dir`` and ``images_dir`` (listed then, when
        nothing was processed, and never again: the message is the same each time it is made). A
        report read back from JSON is given ``[]``: the folders a file names are not listed.
    removed_output_folders : list of str, default []
        The output folders removed during the run (:func:`stop_for_removed_output_folder`): the outputs
        counted ``written`` went with them, and ``ok`` is False. A merged report lists each shard's.
    """

    outcomes: list[FileOutcome] = field(default_factory=list)
    unmatched: list[Unmatched] = field(default_factory=list)
    duplicates: dict[str, list[Path]] = field(default_factory=dict)
    elapsed: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)
    not_regular: list[Failure] = field(default_factory=list)
    started: float | None = None
    folder_notes: list[str] | None = None
    removed_output_folders: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Make :attr:`folder_notes` when not given (the input folders are listed now, once)."""
        if self.folder_notes is None:
            made = isinstance(self.config, Mapping) and self._processed_nothing()
            self.folder_notes = _folder_notes(self.config, self.unmatched, _RUN_FOLDERS) if made else []

    def _processed_nothing(self) -> bool:
        """Whether :attr:`nothing_processed` has something to say (see there)."""
        if self.outcomes or self.not_regular:
            return False
        # an empty shard: the folders' pairs all fell in other shards
        return not (self.config.get("shard") and self.config.get("folder_pairs"))

    def _count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def counts(self) -> dict[str, int]:
        """Number of ``written``, ``skipped``, ``failed``, ``unmatched`` and ``duplicates`` entries."""
        return {
            "written": self._count("written"),
            "skipped": self._count("skipped"),
            "failed": self._count("failed"),
            "unmatched": len(self.unmatched),
            "duplicates": len(self.duplicates),
        }

    @property
    def encodings(self) -> dict[str, int]:
        """Count of each non-plain encoding among the written files (e.g. ``{"0/1 values": 3}``).

        Mask encodings are named as they are; image encodings start with ``"images: "``.
        """
        return {
            **count_encodings([outcome.encoding for outcome in self.outcomes]),
            **count_encodings([outcome.image_encoding for outcome in self.outcomes], IMAGE_ENCODING_PREFIX),
        }

    @property
    def failures(self) -> list[FileOutcome]:
        """The failed outcomes."""
        return [outcome for outcome in self.outcomes if outcome.status == "failed"]

    @property
    def masks_per_s(self) -> float:
        """Written masks per second of wall time (0 when nothing was written)."""
        written = self._count("written")
        return written / self.elapsed if written and self.elapsed > 0 else 0.0

    @property
    def nothing_processed(self) -> str | None:
        """Why no file was processed (written, skipped or failed), or None when one was.

        An empty input folder, or one whose files all lack a partner (a mistyped ``--images``), would
        otherwise look like a successful run. An empty shard of folders that hold pairs (``config``'s
        ``folder_pairs``: more shards than files) is not an error.
        """
        if not self._processed_nothing():
            return None
        shard = self.config.get("shard")
        where = f" in shard {shard}" if shard else ""
        roles = (_RUN_FOLDERS[0][1], _RUN_FOLDERS[1][1])
        hints = unpaired_hints(self.unmatched, roles, self.folder_notes or ())
        if self.unmatched or self.duplicates:
            counted = unpaired_counts(self.unmatched, roles, len(self.duplicates))
            # predict reads one folder (no masks_dir): its files pair with nothing
            one_folder = "images_dir" in self.config and "masks_dir" not in self.config
            opening = (
                f"no image{where} to predict"
                if one_folder
                else f"no file{where} has a partner with the same stem in the other folder"
            )
            return opening + (f" ({counted})" if counted else "") + "".join(f"; {hint}" for hint in hints)
        return f"no input files found{where}" + (f": {'; '.join(hints)}" if hints else "")

    @property
    def ok(self) -> bool:
        """True when no file failed, no input entry was irregular and no output folder was removed.

        The output folder must still be there at the end (:attr:`removed_output_folders`), and a file
        must have been processed: unmatched and duplicated names are reported but are not failures,
        unless no file was processed at all (:attr:`nothing_processed`).
        """
        return (
            self._count("failed") == 0
            and not self.not_regular
            and self.nothing_processed is None
            and not self.removed_output_folders
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ok, counts, masks_per_s, elapsed_s, started_s, config, files, unmatched, ...

        Returns
        -------
        dict
            ``error`` (only when nothing was processed), ``ok``, ``counts``, ``masks_per_s`` (rounded to
            3 decimals), ``elapsed_s`` and ``started_s`` (rounded to 6 decimals; ``started_s`` None when
            unknown), ``config``, ``files`` (each :meth:`FileOutcome.to_dict`), ``unmatched``,
            ``duplicates`` (paths as strings), ``not_regular``, ``encodings`` and
            ``removed_output_folders``.
        """
        return self._dict([outcome.to_dict() for outcome in self.outcomes])

    def _dict(self, files: list[dict[str, Any]] | StreamedArray) -> dict[str, Any]:
        """:meth:`to_dict` with ``files`` as its ``files`` entry (a list, or streamed when written)."""
        nothing = self.nothing_processed
        return {
            **({"error": f"nothing was processed: {nothing}"} if nothing is not None else {}),
            "ok": self.ok,
            "counts": self.counts,
            "masks_per_s": round(self.masks_per_s, 3),
            "elapsed_s": round(self.elapsed, 6),
            "started_s": None if self.started is None else round(self.started, 6),
            "config": self.config,
            "files": files,
            "unmatched": [item.to_dict() for item in self.unmatched],
            "duplicates": _duplicates_dict(self.duplicates),
            "not_regular": [item.to_dict() for item in self.not_regular],
            "encodings": self.encodings,
            "removed_output_folders": list(self.removed_output_folders),
        }

    def write_json(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` as indented JSON to ``path`` atomically (parent folders created).

        The files' entries are made one at a time as they are written (:class:`StreamedArray`): a report
        of a million files is never held whole, as dicts or as text.

        Parameters
        ----------
        path : path-like
            The JSON file to write (an existing file is replaced).

        Returns
        -------
        Path
            The path written.

        Raises
        ------
        ConfigError
            A ``path`` that is not a path, is empty, holds a NUL character or ends with a separator (it
            would name a folder).
        OutputError
            The path is not a regular file, or writing failed; the message names the path.
        """
        files = StreamedArray(lambda: (outcome.to_dict() for outcome in self.outcomes))
        return write_json_report(report_file(path, "report path"), self._dict(files))


class _TableAndSummary(Protocol):
    """A report with a per-image table and a summary: :class:`ScoreReport`, a paired comparison's."""

    def write_csv(self, path: str | os.PathLike[str]) -> Path: ...

    def write_json(self, path: str | os.PathLike[str]) -> Path: ...


def write_table_and_summary(
    report: _TableAndSummary,
    csv_path: str | os.PathLike[str] | None,
    json_path: str | os.PathLike[str] | None,
    *,
    overwrite: bool,
) -> None:
    """Write a scoring job's ``--csv`` and ``--json`` files at its end (each one when asked for).

    Without ``overwrite``, a file that appeared at either path during the run and is not a report
    maskrefine wrote is left alone: :class:`~maskrefine.errors.OutputError` naming it, before either file
    is written (:func:`~maskrefine.pipeline.guards.check_report_still_replaceable`).
    """
    for target in (csv_path, json_path):
        if target is not None:
            check_report_still_replaceable(Path(target), overwrite=overwrite)
    if csv_path is not None:
        report.write_csv(csv_path)
    if json_path is not None:
        report.write_json(json_path)


def write_run_report(
    report: RunReport,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = True,
    input_folders: Mapping[str, Path] | None = None,
) -> None:
    """Write ``report`` as JSON to ``path``; a failure raises :class:`ReportNotWrittenError` with it.

    The job's files are done by then: the caller still gets the outcomes (``exc.report``) to report.
    Without ``overwrite``, a file that appeared at ``path`` during the run and is not a report maskrefine
    wrote is not replaced (:func:`~maskrefine.pipeline.guards.check_report_still_replaceable`). A path
    that now leads into one of ``input_folders`` (a folder above it re-pointed during the run) is not
    written either.
    """
    try:
        if input_folders is not None:
            try:
                check_output_file(Path(path), "report file", input_folders)
            except ConfigError as exc:
                problem = f"a folder above it changed during the run: {exc}; not written"
                raise OutputError(Path(path), problem) from None
        check_report_still_replaceable(Path(path), overwrite=overwrite)
        report.write_json(path)
    except OSError as exc:  # OutputError included (no space, not a regular file, ...)
        if isinstance(exc, OutputError):
            raise ReportNotWrittenError(exc.path, exc.problem, report) from None
        raise ReportNotWrittenError(path, f"cannot write ({exc.strerror or exc})", report) from None


def stop_for_removed_output_folder(
    report: RunReport,
    out_dir: Path,
    not_processed: int,
    report_path: Path | None,
    *,
    report_in_out_dir: bool,
    overwrite: bool,
    input_folders: Mapping[str, Path] | None = None,
) -> NoReturn:
    """End a job whose output folder ``out_dir`` was removed during the run: write its report, then raise.

    The report records the folder (:attr:`RunReport.removed_output_folders`), which makes it not ``ok``.

    The report is written as :func:`write_run_report` does, unless it lies in ``out_dir``
    (``report_in_out_dir``, found when the job started): the folder is never made again, and a new folder
    at its path is not the job's. The error's message says what became of the report.

    Parameters
    ----------
    report : RunReport
        The job's report, every file's outcome in it.
    out_dir : Path
        The output folder that was removed.
    not_processed : int
        Files not written once it was gone (failed, or not started).
    report_path : Path or None
        The job's ``--report`` file, if any.
    report_in_out_dir : bool
        Whether ``report_path`` lay in ``out_dir`` when the job started.
    overwrite : bool
        The job's ``overwrite`` (see :func:`write_run_report`).
    input_folders : mapping of str to Path, optional
        The job's input folders (see :func:`write_run_report`).

    Raises
    ------
    OutputFolderRemovedError
        Always, with ``report`` and the count of files ``not_processed``.
    """
    # the outputs counted "written" went with the folder: the report says so, and is not ok
    report.removed_output_folders = [str(out_dir)]
    note = ""
    if report_path is not None and report_in_out_dir:
        note = f"the report {report_path} was not written (it was to go in that folder)"
    elif report_path is not None:
        try:
            write_run_report(report, report_path, overwrite=overwrite, input_folders=input_folders)
        except ReportNotWrittenError as exc:
            note = f"the report was not written: {exc}"
        else:
            note = f"the report {report_path} lists every file"
    raise OutputFolderRemovedError(out_dir, not_processed, report, note)


def earlier_output_kept(outcome: FileOutcome) -> FileOutcome:
    """Return a failed outcome of an ``overwrite`` run whose output existed at the start, saying so.

    The run could not replace that output (the file failed), so the output folder still holds an earlier
    run's output under this stem, next to this run's: the error says which file, so that it is not taken
    for this run's result. Any other outcome is returned as it is.
    """
    if outcome.status != "failed":
        return outcome
    note = (
        f"; the output {outcome.output} of an earlier run was there when this --overwrite run started and "
        "was not replaced"
    )
    return dataclasses.replace(outcome, error=f"{outcome.error}{note}")


def not_processed_outcome(
    stem: str, mask: Path, image: Path, output: Path, out_dir: Path, named: Path
) -> FileOutcome:
    """Return the failed outcome of a file not processed: its output folder was removed during the run.

    For the report of :func:`stop_for_removed_output_folder`.

    Parameters
    ----------
    stem, mask, image, output
        The file's outcome fields (see :class:`FileOutcome`).
    out_dir : Path
        The output folder that was removed, as the job was given it.
    named : Path
        The input file the message starts with (``apply``: the mask; ``predict``: the image).

    Returns
    -------
    FileOutcome
        Failed, its error ``"<named>: not processed: the output folder <out_dir> was removed during the
        run"``.
    """
    problem = f"not processed: the output folder {out_dir} was removed during the run"
    return FileOutcome(stem, "failed", mask, image, output, f"{named}: {problem}")


@dataclass(slots=True)
class ScoreReport:
    """Result of :func:`~maskrefine.pipeline.score_folder`.

    Parameters
    ----------
    summary : dict, default {}
        The evaluator's summary (snake_case metric names, ``preset``, ``count``, ``empty_gt``,
        ``empty_pred``; see :data:`maskrefine.metrics.evaluator.SUMMARY_METRICS`) plus, when boxes were
        given, the CorLoc keys: ``corloc``, ``corloc_count``, ``corloc_correct``, ``corloc_empty_gt``,
        ``corloc_empty_mask`` and the rule (``corloc_selector``, ``corloc_connectivity``, ``corloc_grid``,
        ``corloc_iou_dtype``, ``corloc_iou_threshold``, ``corloc_patch_size``; see docs/corloc.md).
        Curves are kept out of it (see ``curves``).
    rows : list of dict, default []
        Per-image values, one row per scored stem.
    failures : list of Failure, default []
        Files that could not be scored.
    unmatched : list of Unmatched, default []
        Predictions without GT (``folder="predictions"``) and GT without prediction (``folder="gt"``).
    duplicates : dict of str to list of Path, default {}
        Ambiguous stems, not scored.
    curves : dict, default {}
        Array-valued entries of the evaluator's summary (e.g. precision/recall curves), for plots.
    elapsed : float, default 0.0
        Wall time in seconds.
    plots : list of Path, default []
        Figures written (when ``plot_dir`` was given).
    config : dict, default {}
        The job's settings.
    not_regular : list of Failure, default []
        Entries of the input folders that are not regular files; never opened, they make ``ok`` False.
    encodings : dict of str to int, default {}
        Count of each non-plain mask encoding among the scored pairs, keyed ``"predictions: <encoding>"``
        or ``"gt: <encoding>"``.
    columns : list of str, default []
        The CSV's columns, in order, also when no image was scored (the header of an empty shard's
        table); keys of ``rows`` not listed are appended.
    reference_reads_otherwise : dict of str to int, default {}
        Scored files the preset's reference script would read otherwise than maskrefine decodes them
        (:data:`maskrefine.metrics.presets.REFERENCE_READS_OTHERWISE`), counted by ``"role: what the
        script does"``.
    folder_notes : list of str or None, optional
        What :attr:`nothing_scored` says of the input folders that hold only subfolders
        (:func:`~maskrefine.io.pairs.subfolder_notes`). None (default): made when the report is built, as
        the job does when it ends, from ``config``'s ``pred_dir`` and ``gt_dir`` (listed then, when
        nothing was scored, and never again: the message is the same each time it is made).
    """

    summary: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    unmatched: list[Unmatched] = field(default_factory=list)
    duplicates: dict[str, list[Path]] = field(default_factory=dict)
    curves: dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0
    plots: list[Path] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    not_regular: list[Failure] = field(default_factory=list)
    encodings: dict[str, int] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)
    reference_reads_otherwise: dict[str, int] = field(default_factory=dict)
    folder_notes: list[str] | None = None

    def __post_init__(self) -> None:
        """Make :attr:`folder_notes` when not given (the input folders are listed now, once)."""
        if self.folder_notes is None:
            made = isinstance(self.config, Mapping) and self._says_why_nothing_scored()
            self.folder_notes = _folder_notes(self.config, self.unmatched, _SCORE_FOLDERS) if made else []

    def _says_why_nothing_scored(self) -> bool:
        """Whether :attr:`nothing_scored` says why no pair was found (not that every pair failed)."""
        if self.rows or self.failures or self.not_regular:
            return False
        # an empty shard: the folders' pairs all fell in other shards
        return not (self.config.get("shard") and self.config.get("folder_pairs"))

    @property
    def nothing_scored(self) -> str | None:
        """Why no image was scored, or None when at least one was.

        An empty shard of folders that hold pairs (``config``'s ``folder_pairs``: more shards than pairs)
        is not an error, as for ``apply``.
        """
        if self.rows:
            return None
        if self.failures or self.not_regular:
            return f"every pair failed ({len(self.failures) + len(self.not_regular)} failure(s))"
        if not self._says_why_nothing_scored():
            return None
        roles = (_SCORE_FOLDERS[0][1], _SCORE_FOLDERS[1][1])
        hints = unpaired_hints(self.unmatched, roles, self.folder_notes or ())
        read_from = "masks are read from .png and .npy files only"
        if self.unmatched or self.duplicates:
            where = f" in shard {self.config.get('shard')}" if self.config.get("shard") else ""
            added = "".join(f"; {hint}" for hint in hints)
            if not self.duplicates and all(item.folder != "predictions" for item in self.unmatched):
                gt_alone = sum(1 for item in self.unmatched if not item.reason)  # those not read: a hint
                if gt_alone < len(self.unmatched):  # a prediction whose GT is not read is not listed
                    return f"no prediction{where} has a ground-truth mask that is read{added}"
                has = f"the ground-truth folder has {gt_alone} mask(s)"
                return f"no prediction found{where} ({has}; {read_from}){added}"
            counted = unpaired_counts(self.unmatched, roles, len(self.duplicates))
            # a file not read: its hint says which suffixes its folder is read from
            said = [counted, "" if any(item.reason for item in self.unmatched) else read_from]
            parts = "; ".join(part for part in said if part)
            return f"no prediction{where} has a ground-truth mask with the same stem" + (
                f" ({parts}){added}" if parts else added
            )
        shard = self.config.get("shard")
        return (
            "no masks found"
            + (f" in shard {shard}" if shard else " in the two folders")
            + (f": {'; '.join(hints)}" if hints else "")
        )

    @property
    def ok(self) -> bool:
        """True when the run succeeded.

        That is, no file failed, every input entry was a regular file and at least one image was scored.
        """
        return not self.failures and not self.not_regular and self.nothing_scored is None

    def to_dict(self) -> dict[str, Any]:
        """Return the summary JSON: the summary's keys at top level, plus the run's own keys.

        Returns
        -------
        dict
            The summary's keys (NumPy values as Python values, NaN and inf as None), then ``ok``,
            ``failed``, ``unmatched``, ``duplicates``, ``elapsed_s``, ``config``, ``plots``,
            ``not_regular``, ``encodings``, ``reference_reads_otherwise`` and, when nothing was
            scored, ``error``.
        """
        out = {key: _jsonable(value) for key, value in self.summary.items()}
        if self.nothing_scored is not None:
            out["error"] = f"nothing was scored: {self.nothing_scored}"
        out.update(
            {
                "ok": self.ok,
                "failed": [failure.to_dict() for failure in self.failures],
                "unmatched": [item.to_dict() for item in self.unmatched],
                "duplicates": _duplicates_dict(self.duplicates),
                "elapsed_s": round(self.elapsed, 6),
                "config": self.config,
                "plots": [str(path) for path in self.plots],
                "not_regular": [item.to_dict() for item in self.not_regular],
                "encodings": dict(self.encodings),
                "reference_reads_otherwise": dict(self.reference_reads_otherwise),
            }
        )
        return out

    def write_json(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` as indented JSON to ``path`` atomically (NaN written as null).

        Parent folders are created.

        Parameters
        ----------
        path : path-like
            The JSON file to write (an existing file is replaced).

        Returns
        -------
        Path
            The path written.

        Raises
        ------
        ConfigError
            A ``path`` that is not a path, is empty, holds a NUL character or ends with a separator (it
            would name a folder).
        OutputError
            The path is not a regular file, a parent folder cannot be created, or writing failed; the
            message names the path.
        """
        return write_json_report(report_file(path, "JSON path"), self.to_dict())

    def write_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write the per-image rows as CSV to ``path`` atomically.

        NaN is written as ``nan``; file names that are not valid UTF-8 are written back as their original
        bytes. Parent folders are created.

        Parameters
        ----------
        path : path-like
            The CSV file to write (an existing file is replaced).

        Returns
        -------
        Path
            The path written.

        Raises
        ------
        ConfigError
            A ``path`` that is not a path, is empty, holds a NUL character or ends with a separator (it
            would name a folder).
        OutputError
            The path is not a regular file, a parent folder cannot be created, or writing failed; the
            message names the path.
        """
        return write_text_atomic(report_file(path, "CSV path"), rows_to_csv(self.rows, self.columns))


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def rows_to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] = ()) -> str:
    """Per-image rows as CSV text, floats as repr, NaN as ``nan``.

    The columns are ``columns`` then the other keys of the rows in first-seen order; the header is
    written even when there is no row (an empty line when there is no column either).
    """
    import csv
    import io

    columns = list(columns)
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    # csv quotes only the line terminator's characters: a name holding "\r" would split its row for
    # every reader, so such a row is written with every cell quoted
    quoted = csv.DictWriter(
        buffer, fieldnames=columns, lineterminator="\n", extrasaction="ignore", quoting=csv.QUOTE_ALL
    )
    writer.writeheader()
    for row in rows:
        cells = {key: _csv_cell(row.get(key)) for key in columns}
        has_cr = any(isinstance(cell, str) and "\r" in cell for cell in cells.values())
        (quoted if has_cr else writer).writerow(cells)
    return buffer.getvalue()


def _csv_cell(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    if value is None:
        return ""
    return value
