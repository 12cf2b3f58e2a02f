"""Checks made before a folder job does any work: folders, output paths, shards and ``jobs``.

This is the one place output paths are vetted. Every check raises
:class:`~maskrefine.errors.ConfigError` naming the argument or path and the problem.

Sharding
--------
``shard=(k, n)`` (or the string ``"k/n"``) keeps the stems whose stable hash (SHA-1 of the UTF-8 stem)
modulo ``n`` equals ``k - 1``: **k is 1-based**, ``1 <= k <= n``. The ``n`` shards are disjoint and their
union is the whole folder, on any machine and Python version.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np

from maskrefine._checks import check_flag, check_int_range, short_repr
from maskrefine.errors import ConfigError, OutputError
from maskrefine.io.imageio import OutputFolder, file_kind

__all__ = [
    "path_argument",
    "check_writable_target",
    "check_output_targets",
    "parse_shard",
    "shard_index",
    "in_shard",
    "check_jobs",
    "check_folder",
    "check_output_folder",
    "check_output_file",
    "remove_empty_folder",
    "check_parent_is_folder",
    "check_inputs_are_not_outputs",
    "is_within",
    "resolved_path",
    "MAX_SHARDS",
]


def path_argument(value: str | os.PathLike[str], what: str) -> Path:
    """``value`` as a Path; an empty string is refused (it would silently mean the current folder).

    A ``pathlib.Path`` cannot carry an empty path (``Path("") == Path(".")``) or a trailing ``/.``: those
    are only seen, and refused, when given as strings (as the CLI passes them).

    Raises
    ------
    ConfigError
        ``value`` is empty, not a path, contains a NUL character, or is longer than the file system
        allows (the kernel's ``ENAMETOOLONG`` for one ``lstat``; a missing path is the caller's concern).
    """
    try:
        text = os.fspath(value)
    except TypeError:
        raise ConfigError(f"{what} must be a path; got {short_repr(value)}") from None
    if isinstance(text, bytes):
        raise ConfigError(f"{what} must be a str or Path; got bytes {short_repr(value)} (decode it first)")
    if text == "":
        raise ConfigError(f"{what} is empty; give a path ('.' for the current folder)")
    try:
        os.lstat(text)
    except OSError as exc:  # missing is fine here (the callers say what they need); too long is not
        if exc.errno == errno.ENAMETOOLONG:
            raise ConfigError(
                f"{what} {short_repr(text)}: the path is longer than the file system allows "
                f"({len(os.fsencode(text))} bytes; a name has at most 255 bytes on most file systems)"
            ) from None
    except ValueError:  # an embedded NUL byte
        raise ConfigError(f"{what} {short_repr(text)}: a path cannot contain a NUL character") from None
    return Path(text)


def file_path_argument(value: str | os.PathLike[str], what: str) -> Path:
    """:func:`path_argument` for a file to write: the path must end with a file name.

    ``out/`` or ``out/.`` names a folder, but ``Path`` drops the trailing part, so the file would be
    written as ``out`` (a file where the user asked for a folder, and messages naming a path that does
    not exist).

    Raises
    ------
    ConfigError
        As :func:`path_argument`, and for a path that ends with a separator, ``.`` or ``..``.
    """
    if isinstance(value, str) and value == "":
        raise ConfigError(f"{what} is empty; give a file name")
    path = path_argument(value, what)
    text = os.fspath(value)
    if os.path.basename(text) in ("", ".", ".."):
        raise ConfigError(
            f"{what} {short_repr(text)}: ends with a separator, '.' or '..', which names a folder; "
            "give a file name"
        )
    return path


def job_flags(**flags: object) -> list[bool]:
    """Return the boolean options of a job in order; a non-bool is a ConfigError naming the option.

    ``overwrite`` together with ``skip_existing`` is refused too. (Truthiness would read ``"no"`` as
    True: for ``overwrite``, replace every output.)
    """
    try:
        values = {name: check_flag(value, name) for name, value in flags.items()}
    except TypeError as exc:
        raise ConfigError(str(exc)) from None
    if values.get("overwrite") and values.get("skip_existing"):
        raise ConfigError("overwrite and skip_existing exclude each other; choose one")
    return list(values.values())


def check_progress(progress: object) -> None:
    """Refuse a ``progress`` that is neither None nor callable (before any work, not after a file)."""
    if progress is not None and not callable(progress):
        raise ConfigError(
            f"progress must be a callable progress(done, total) or None; got {type(progress).__name__}"
        )


def check_writable_target(path: Path, what: str) -> bool:
    """Refuse an output path where something other than a regular file exists; True if a file exists.

    Symlinks are refused too (maskrefine never writes through a symlink nor replaces one): the message
    asks for the real path.

    Raises
    ------
    ConfigError
        Naming ``what``, the path and what is there (folder, symbolic link, FIFO, device, ...).
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot check it ({exc.strerror or exc})") from None
    if stat.S_ISREG(info.st_mode):
        return True
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{what} {path} is a folder")
    if stat.S_ISLNK(info.st_mode):
        raise ConfigError(
            f"{what} {path} is a symbolic link; maskrefine never writes through or replaces a symlink: "
            "give the real path"
        )
    raise ConfigError(
        f"{what} {path} exists and is a {file_kind(info.st_mode)}, not a regular file; refusing to replace it"
    )


def check_output_targets(paths: Iterable[Path], where: Path) -> list[Path]:
    """Return the regular files among ``paths`` (outputs about to be written into ``where``).

    Raises
    ------
    ConfigError
        When any of them exists and is not a regular file (a folder named ``x.png``, a symlink, a FIFO),
        naming up to three.
    """
    existing: list[Path] = []
    refused: list[str] = []
    for path in paths:
        try:
            if check_writable_target(path, "output"):
                existing.append(path)
        except ConfigError as exc:
            try:
                kind = file_kind(os.lstat(path).st_mode)
            except OSError:  # the path cannot even be checked: that error says why
                raise exc from None
            refused.append(f"{path.name} ({kind})")
    if refused:
        listed = ", ".join(refused[:3]) + (", ..." if len(refused) > 3 else "")
        raise ConfigError(
            f"{len(refused)} output path(s) in {where} exist and are not regular files: {listed}; "
            "maskrefine replaces only regular files: remove them or choose another output folder"
        )
    return existing


#: Largest shard count N accepted (a job split further has shards of no file; a merge lists missing ones).
MAX_SHARDS = 1_000_000


def parse_shard(shard: object) -> tuple[int, int] | None:
    """Return ``shard`` as ``(k, n)`` with ``1 <= k <= n <=`` :data:`MAX_SHARDS` (1-based), or None.

    Accepts None, a ``(k, n)`` pair or the string ``"k/n"`` (surrounding spaces allowed).

    Parameters
    ----------
    shard : (int, int) or str or None
        None (no sharding), a tuple or list ``(k, n)`` of two integers (Python or NumPy, not bool), or
        a string ``"k/n"`` of ASCII digits; k is 1-based.

    Returns
    -------
    (int, int) or None
        ``(k, n)`` as Python ints, or None when ``shard`` is None.

    Raises
    ------
    ConfigError
        Anything else, e.g. ``"0/4"``, ``"5/4"``, ``"a/b"``, ``"1/2000000"``.
    """
    if shard is None:
        return None
    pair: tuple[object, ...]
    if isinstance(shard, str):
        parts = shard.split("/")
        if len(parts) != 2 or not all(_is_ascii_number(part.strip()) for part in parts):
            raise ConfigError(
                f"shard must look like K/N with 1 <= K <= N (e.g. 1/4); got {short_repr(shard, 60)}"
            )
        if any(len(part.strip().lstrip("0")) > len(str(MAX_SHARDS)) for part in parts):
            raise ConfigError(f"shard count N must be at most {MAX_SHARDS}; got {short_repr(shard, 60)}")
        pair = (int(parts[0]), int(parts[1]))
    elif isinstance(shard, (tuple, list)) and len(shard) == 2:
        pair = tuple(shard)
    else:
        raise ConfigError(f"shard must be a (k, n) pair or a 'k/n' string; got {short_repr(shard, 60)}")
    first, second = pair
    if not (_is_integer(first) and _is_integer(second)):
        raise ConfigError(f"shard values must be integers; got {short_repr(shard, 60)}")
    k, n = int(first), int(second)
    if n < 1 or not 1 <= k <= n:
        raise ConfigError(f"shard k/n needs 1 <= k <= n (k is 1-based); got {short_repr(shard, 60)}")
    if n > MAX_SHARDS:
        raise ConfigError(f"shard count N must be at most {MAX_SHARDS}; got {short_repr(shard, 60)}")
    return k, n


def _is_integer(value: object) -> TypeGuard[int | np.integer[Any]]:
    """Return True for an ``int`` or NumPy integer that is not a ``bool``."""
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))


def _is_ascii_number(text: str) -> bool:
    """Only 0-9 (``str.isdigit`` also accepts "²" and other digits ``int`` refuses)."""
    return text.isascii() and text.isdigit()


def shard_index(stem: str, n: int) -> int:
    """Return the 1-based shard (of ``n``) that ``stem`` belongs to: ``sha1(stem) mod n + 1``.

    The stem is hashed as UTF-8; a name that is not valid UTF-8 (decoded by :func:`os.fsdecode`) as its
    original bytes.

    Parameters
    ----------
    stem : str
        The file stem.
    n : int
        The number of shards, in [1, :data:`MAX_SHARDS`].

    Returns
    -------
    int
        The shard, in 1..n: the first 8 bytes of the SHA-1 digest as a big-endian integer, mod n, plus 1.

    Raises
    ------
    TypeError, ValueError
        ``stem`` is not a str, or ``n`` not an integer in range (bool included).
    """
    if not isinstance(stem, str):
        raise TypeError(f"`stem` must be a str (a file stem); got {short_repr(stem)}")
    return _shard_of(stem, check_int_range(n, "n", 1, MAX_SHARDS))


def _shard_of(stem: str, n: int) -> int:
    """:func:`shard_index` of a checked ``stem`` and ``n``."""
    digest = hashlib.sha1(stem.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % n + 1


def in_shard(stem: str, shard: tuple[int, int] | None) -> bool:
    """Whether ``stem`` belongs to ``shard`` (always True without sharding)."""
    return shard is None or _shard_of(stem, shard[1]) == shard[0]


#: Most worker processes a job may start: each is a process (a huge ``--jobs`` on a large folder would
#: start one per file and exhaust memory and process slots).
MAX_JOBS = 1024


def check_jobs(jobs: object) -> int:
    """``jobs`` as an int in 1..:data:`MAX_JOBS`; None means one per available core."""
    if jobs is None:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover - not Linux
            return max(1, os.cpu_count() or 1)
    if isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or jobs < 1:
        raise ConfigError(f"jobs must be an integer >= 1 (or None for all cores); got {short_repr(jobs)}")
    if jobs > MAX_JOBS:
        raise ConfigError(f"jobs must be <= {MAX_JOBS} (each is a process); got {short_repr(jobs)}")
    return int(jobs)


def check_folder(path: str | os.PathLike[str], what: str) -> Path:
    """Return ``path`` as an existing input folder, or raise (``what`` names it in the message)."""
    folder = path_argument(path, f"{what} folder")
    if not folder.exists():
        raise ConfigError(f"{what} folder {folder} does not exist")
    if not folder.is_dir():
        raise ConfigError(f"{what} {folder} is not a folder")
    return folder


def resolved_path(path: Path, what: str = "path") -> Path:
    """``path.resolve()``; a symlink loop (or an unreadable link) is a ConfigError naming ``what``."""
    try:
        return path.resolve()
    except (RuntimeError, OSError) as exc:  # Python 3.11 raises RuntimeError("Symlink loop from ...")
        raise ConfigError(f"{what} {path}: cannot resolve the path ({exc})") from None


def is_within(child: Path, parent: Path) -> bool:
    """``child`` is ``parent`` or lies below it (both already resolved).

    Compares the paths, and also the folders themselves (device and inode) of ``parent`` and of
    ``child`` and its existing ancestors: a second path to one folder that resolving symlinks does not
    reveal (a bind mount, an NFS or autofs alias) counts as the same folder.
    """
    if child == parent or parent in child.parents:
        return True
    try:
        target = os.stat(parent)
    except OSError:
        return False
    for folder in (child, *child.parents):
        try:
            info = os.stat(folder)
        except OSError:  # not created yet (an output folder) or unreadable: its ancestors still count
            continue
        if (info.st_dev, info.st_ino) == (target.st_dev, target.st_ino):
            return True
    return False


def check_parent_is_folder(path: Path, what: str) -> None:
    """Refuse (ConfigError) ``path`` when its nearest existing ancestor is not a folder.

    That is a file, a FIFO, or a symlink that leads nowhere (dangling, or a loop): creating the folders
    below it would fail only when the file is written, after the job's work.
    """
    for parent in path.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                kind = _dead_link_kind(parent) if parent.is_symlink() else None
                problem = f"{parent} is {kind}" if kind else f"{parent} is not a folder"
                raise ConfigError(f"{what} {path}: cannot be created there, {problem}")
            return


def _dead_link_kind(link: Path) -> str | None:
    """Say how a symlink leads nowhere ("a dangling symbolic link", "a symbolic link loop"), else None."""
    try:
        os.stat(link)
    except OSError as exc:
        return "a symbolic link loop" if exc.errno == errno.ELOOP else "a dangling symbolic link"
    return None


def check_output_folder(out_dir: Path, inputs: Mapping[str, Path]) -> None:
    """Refuse an output folder that is not a folder, or is, lies inside or contains an input folder."""
    check_parent_is_folder(out_dir, "output folder")
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"output {out_dir} exists and is not a folder")
    if out_dir.is_symlink() and not out_dir.exists():
        kind = _dead_link_kind(out_dir) or "a dangling symbolic link"  # or it vanished meanwhile
        raise ConfigError(f"output folder {out_dir} is {kind}")
    resolved_out = resolved_path(out_dir, "output folder")
    for what, folder in inputs.items():
        resolved_in = resolved_path(folder, f"{what} folder")
        if is_within(resolved_out, resolved_in):
            raise ConfigError(
                f"output folder {out_dir} is (inside) the {what} folder {folder}; "
                "choose a separate output folder so that inputs are never overwritten"
            )
        if is_within(resolved_in, resolved_out):
            raise ConfigError(
                f"the {what} folder {folder} is inside the output folder {out_dir}; "
                "choose a separate output folder"
            )


#: Keys that each JSON report maskrefine writes holds at its top level: run, predict and merged reports;
#: ``score --json``; ``score --baseline --json`` (paired comparisons); ``tune --report``. With
#: :data:`OUR_CSV_HEADERS`, what :func:`check_report_replaceable` recognises as a file maskrefine wrote.
OUR_JSON_SIGNATURES = (
    frozenset({"ok", "counts", "files"}),
    frozenset({"preset", "count"}),
    frozenset({"comparisons", "count", "ok"}),
    frozenset({"winner", "winner_label", "naive"}),
)
#: How the per-image CSV files maskrefine writes begin: ``score --csv`` rows, and the paired rows of
#: ``score --baseline --csv``.
OUR_CSV_HEADERS = (b"name,height,width,", b"stem,acc_baseline,")
#: A JSON file larger than this is not parsed whole to recognise it: its first :data:`REPORT_PREFIX_BYTES`
#: are read instead, for the top-level keys our writer puts there (an ``apply`` report of ~100,000 files
#: passes 64 MiB).
REPORT_READ_LIMIT = 64 * 2**20
#: How much of a larger JSON file is read to find its top-level keys.
REPORT_PREFIX_BYTES = 2**20
#: A top-level key as maskrefine's JSON writer lays it out (``json.dumps(..., indent=2)``): two spaces
#: at the start of a line.
_TOP_LEVEL_KEY = re.compile(rb'\n  "((?:[^"\\]|\\.)*)": ')
#: A file holding nothing: whitespace, or an empty JSON object or list (matched, not split into its words:
#: a report of 100,000 files would make millions of them).
_NOTHING = re.compile(rb"\s*(?:\{\s*\}|\[\s*\])?\s*")
#: The ``how`` of :func:`check_report_replaceable` for the jobs that take ``--overwrite``.
REPLACE_HOW = "use --overwrite (overwrite=True) to replace it"
#: The ``how`` for such a job resumed with ``--skip-existing``, which ``--overwrite`` cannot join.
RESUME_HOW = "remove it (--skip-existing cannot be combined with --overwrite)"


def _begins_as_our_report(prefix: bytes) -> bool:
    """Whether the first bytes of a (large) JSON file hold the top-level keys of one of our reports.

    Only maskrefine's own layout is recognised (``{`` then keys indented by two spaces, one per line), so a
    large JSON file written by another tool is taken as someone else's, as before.
    """
    if not prefix.startswith(b'{\n  "'):
        return False
    keys = {match.decode("utf-8", "replace") for match in _TOP_LEVEL_KEY.findall(prefix)}
    return any(signature <= keys for signature in OUR_JSON_SIGNATURES)


def _written_by_maskrefine(data: bytes) -> bool:
    """Whether a file holding ``data`` is a report or CSV maskrefine writes, or holds nothing."""
    if data.startswith(OUR_CSV_HEADERS):
        return True
    if _NOTHING.fullmatch(data):  # blank, or an empty JSON object or list: nothing to lose (a CSV of no
        return True  # rows and no columns is one newline)
    try:
        value = json.loads(data, object_pairs_hook=_KeysOnly())
    except (ValueError, RecursionError):  # not JSON (UnicodeDecodeError is a ValueError)
        return False
    return isinstance(value, frozenset) and any(keys <= value for keys in OUR_JSON_SIGNATURES)


class _KeysOnly:
    """``object_pairs_hook`` that keeps only each JSON object's keys, one frozenset per distinct key set.

    A report of 100,000 files (up to :data:`REPORT_READ_LIMIT`) parsed into dicts would take about ten
    times its size; its objects' values are dropped as they are read instead: only the top-level keys
    matter, and the file entries share a few key sets.
    """

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[frozenset[str], frozenset[str]] = {}

    def __call__(self, pairs: list[tuple[str, object]]) -> frozenset[str]:
        """Return the (shared) set of the object's keys."""
        keys = frozenset(key for key, _ in pairs)
        return self._seen.setdefault(keys, keys)


def check_report_replaceable(path: Path, what: str, *, overwrite: bool, how: str) -> None:
    """Refuse (ConfigError) to replace a regular file at ``path`` that maskrefine did not write.

    A report or CSV file (``--report``, ``--json``, ``--csv``) is replaced when it exists, so that a
    rerun updates it; but a file that is not one of maskrefine's reports (a JSON object holding all the
    keys of one of :data:`OUR_JSON_SIGNATURES`, parsed whole in a file of at most
    :data:`REPORT_READ_LIMIT` bytes, or, in a larger file, found as maskrefine lays them out within its
    first :data:`REPORT_PREFIX_BYTES`; or a CSV whose header begins as one of :data:`OUR_CSV_HEADERS`)
    is someone else's data, replaced only with ``overwrite``. A blank file, or one holding only ``{}`` or
    ``[]``, holds nothing and is replaced. Anything that is not a regular file is left to
    :func:`check_writable_target`.

    Parameters
    ----------
    path : Path
        The output file.
    what : str
        What it is, for the message (``"JSON file"``).
    overwrite : bool
        The job's overwrite flag: replace any regular file.
    how : str
        How the user allows it, for the message (``"use --overwrite (overwrite=True) to replace it"``).
    """
    problem = _replace_problem(path, overwrite)
    if problem is not None:
        raise ConfigError(f"{what} {path} {problem}; not replaced: {how}, or give another path")


def check_report_still_replaceable(path: Path, *, overwrite: bool) -> None:
    """:func:`check_report_replaceable` again, right before the report is written at the end of a run.

    A file that appeared at ``path`` during the run and is not one of maskrefine's is not replaced:
    :class:`~maskrefine.errors.OutputError` naming it (the job's other outputs are written).
    """
    problem = _replace_problem(path, overwrite)
    if problem is not None:
        raise OutputError(path, f"{problem} (it appeared during the run); not replaced")


def _replace_problem(path: Path, overwrite: bool) -> str | None:
    """Say why the regular file at ``path`` is not to be replaced; None when it may be (or is absent)."""
    if overwrite:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:  # missing; a symlink, FIFO... is refused by check_writable_target
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        with os.fdopen(os.dup(fd), "rb") as handle:
            # a CSV's header; a JSON file is read whole up to the limit and parsed (keys only: a report of
            # 100,000 files is not turned into dicts); a larger one by its first MiB, where maskrefine's
            # writer puts the top-level keys. A small file must parse as one of ours: a file that only
            # begins like one (our report's opening, then notes) is someone else's.
            data = handle.read(4096)
            large = info.st_size > REPORT_READ_LIMIT
            if not data.startswith(OUR_CSV_HEADERS):
                # (a small file: its size, not the limit, so that no 64 MiB buffer is allocated for it;
                # one that grew since is cut short, fails to parse and is refused)
                data += handle.read(REPORT_PREFIX_BYTES if large else info.st_size)
    except OSError as exc:
        return f"could not be read to check what it holds ({exc.strerror or exc})"
    finally:
        os.close(fd)
    if data.startswith(OUR_CSV_HEADERS):
        return None
    if _begins_as_our_report(data) if large else _written_by_maskrefine(data):
        return None
    return "exists and is not a report or CSV file maskrefine wrote"


def check_can_write_in(path: Path, what: str) -> None:
    """Refuse (ConfigError) an output file whose existing folder does not take a new file.

    Used before a long run whose result is written at the end. Permissions alone do not tell (root, a
    read-only mount, ``/proc``): an empty temporary file ``.<name>.<random>.probe`` is made next to
    ``path`` and removed at once.
    """
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=path.parent)
    except OSError as exc:
        raise ConfigError(
            f"{what} {path}: cannot write in its folder {path.parent} ({exc.strerror or exc})"
        ) from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def open_output_folder(
    out_path: Path, input_folders: Mapping[str, Path], *, follow_symlinks: bool = True
) -> OutputFolder:
    """Open the output folder that every output of a job is written through, and check it again.

    The writes then never look ``out_path`` up again: if it is re-pointed during the run (a symlink
    swapped to the masks folder, ...), the outputs still go into the folder opened here. Checked again
    once open (it must still be a separate folder, and the one opened), in case ``out_path`` changed
    since the checks at the start; the folder is closed when a check fails.

    Raises
    ------
    ConfigError
        ``out_path`` is now (inside, or contains) an input folder.
    OutputError
        The folder cannot be opened, or ``out_path`` is no longer the folder opened.
    """
    folder = OutputFolder(out_path, follow_symlinks=follow_symlinks)
    try:
        check_output_folder(out_path, input_folders)
        folder.check_at_path()
    except BaseException:
        folder.close()
        raise
    return folder


def remove_empty_folder(path: Path) -> None:
    """Remove the folder at ``path`` if it is empty (a run made it and wrote nothing); else leave it.

    ``rmdir`` removes nothing else: a folder that holds anything (a file another process put there
    meanwhile included), or a symlink put in its place, stays.
    """
    with contextlib.suppress(OSError):
        os.rmdir(path)


def check_output_file(
    path: Path,
    what: str,
    inputs: Mapping[str, Path],
    input_files: Mapping[str, Path] | None = None,
    taken: Mapping[str, Path] | None = None,
) -> Path:
    """Refuse (ConfigError) an output file that would replace an input or another output.

    ``inputs`` are folders the file must not be (inside); ``input_files`` single input files it must
    not be (also through a symlink or hard link); ``taken`` the other output files of the job, resolved.
    Returns the resolved path.
    """
    resolved = resolved_path(path, what)
    for name, folder in inputs.items():
        if folder is not None and is_within(resolved, resolved_path(folder, f"{name} folder")):
            raise ConfigError(f"{what} {path} is inside the {name} folder {folder}; write it elsewhere")
    refuse_input_file(path, what, input_files or {}, resolved)
    for name, other in (taken or {}).items():
        if resolved == other:
            raise ConfigError(f"{what} {path} is also the {name}; give each output its own path")
    check_writable_target(path, what)
    check_parent_is_folder(path, what)  # a dangling link above it failed only at the end of the job
    return resolved


def refuse_input_file(
    path: Path, what: str, input_files: Mapping[str, Path], resolved: Path | None = None
) -> None:
    """Refuse (ConfigError) an output file ``path`` that is one of ``input_files``.

    Also through a symlink or hard link. ``resolved`` is ``path`` resolved, when the caller has it.
    """
    resolved = resolved_path(path, what) if resolved is None else resolved
    for name, file in input_files.items():
        label = name if name.endswith(" file") else f"{name} file"  # not "the preset file file"
        if resolved == resolved_path(file, label) or _same_file(path, file):
            raise ConfigError(f"{what} {path} is the {label} {file}; write it elsewhere")


def check_inputs_are_not_outputs(inputs: Iterable[Path], outputs: Iterable[Path]) -> None:
    """Refuse (ConfigError) an input entry that is a symlink to one of the existing ``outputs``.

    Publishing an output replaces the file its path names, so such an input would change under the run
    (``--overwrite``). Input folders never overlap the output folder (:func:`check_output_folder`), so
    only symlinked entries can lead there; only they are resolved (one ``lstat`` per input).
    """
    targets = {os.path.realpath(path): path for path in outputs}
    if not targets:
        return
    for path in inputs:
        if os.path.islink(path):
            real = os.path.realpath(path)
            if real in targets:
                raise ConfigError(
                    f"input {path} is a symbolic link to the existing output {targets[real]}, which this "
                    "run would replace; refusing to modify an input (copy the input, or write elsewhere)"
                )


def check_not_an_output(path: Path, what: str, out_dir: Path, output_names: set[str]) -> None:
    """Refuse a side file (e.g. the report) that would be one of the job's outputs in ``out_dir``."""
    resolved = resolved_path(path, what)
    if resolved.parent == resolved_path(out_dir, "output folder") and resolved.name in output_names:
        raise ConfigError(
            f"{what} {path} is also the output of {Path(resolved.name).stem!r}; write it elsewhere"
        )


def _same_file(first: Path, second: Path) -> bool:
    try:
        return first.exists() and second.exists() and os.path.samefile(first, second)
    except OSError:  # pragma: no cover - vanished meanwhile
        return False
