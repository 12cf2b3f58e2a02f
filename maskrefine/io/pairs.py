"""Pair the files of two folders by file stem, and say why files did not pair (:func:`unpaired_hints`).

Only regular files are paired (a symlink to a regular file counts as one: datasets are often linked);
anything else with a wanted suffix (a folder named ``x.png``, a FIFO, a device, a dangling symlink, a
symlink loop) is listed in :attr:`Pairing.skipped` with what it is, and never opened.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from maskrefine._checks import short_repr
from maskrefine.io.files import not_regular_reason

__all__ = [
    "IMAGE_EXTENSIONS",
    "MASK_EXTENSIONS",
    "FolderListing",
    "list_folder",
    "Pair",
    "Pairing",
    "Skipped",
    "match_folders",
    "list_files",
    "scan_folder",
    "MASK_SUFFIXES",
    "MASK_FORMATS",
]

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
MASK_EXTENSIONS: tuple[str, ...] = (".png", ".npy")


@dataclass(frozen=True, slots=True)
class Pair:
    """One matched stem: ``first`` from the first folder, ``second`` from the second.

    Parameters
    ----------
    stem : str
        The file stem (name without its suffix) the two files share.
    first : Path
        The file of the first folder.
    second : Path
        The file of the second folder.
    """

    stem: str
    first: Path
    second: Path


@dataclass(frozen=True, slots=True)
class Skipped:
    """An entry of an input folder that has a wanted suffix but is not a regular file (never opened).

    Parameters
    ----------
    path : Path
        The entry.
    reason : str
        What it is, e.g. ``"a FIFO (named pipe)"``, ``"a dangling symlink"``, ``"a folder"``.
    """

    path: Path
    reason: str  # what it is, e.g. "a FIFO (named pipe)", "a dangling symlink", "a folder"


@dataclass(frozen=True, slots=True)
class Pairing:
    """Result of :func:`match_folders`.

    Parameters
    ----------
    pairs : list of Pair
        Stems present exactly once in both folders, sorted by stem.
    only_first : list of Path, optional
        Files of the first folder whose stem has no partner in the second (default: empty).
    only_second : list of Path, optional
        Files of the second folder whose stem has no partner in the first (default: empty).
    duplicates : dict of str to list of Path, optional
        Stems that occur more than once in one folder (e.g. ``a.png`` and ``a.jpg``); these are
        excluded from ``pairs`` because the right partner is ambiguous (default: empty).
    skipped : list of Skipped, optional
        Entries of either folder with a wanted suffix that are not regular files; their stems' partners
        are not reported in ``only_first`` / ``only_second`` (the skipped entry is the problem) (default:
        empty).
    unread_first, unread_second : list of Path, optional
        Entries of each folder with an image or mask suffix (:data:`IMAGE_EXTENSIONS`,
        :data:`MASK_EXTENSIONS`) that this folder's files are not read from, e.g. ``x.jpg`` among masks
        read from ``.png`` and ``.npy`` only: named so that such a file is not dropped unseen; their
        stems' partners are not reported in ``only_first`` / ``only_second`` (default: empty).
    first_extensions, second_extensions : tuple of str, optional
        The suffixes each folder's files were read from (default: empty).
    """

    pairs: list[Pair]
    only_first: list[Path] = field(default_factory=list)
    only_second: list[Path] = field(default_factory=list)
    duplicates: dict[str, list[Path]] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)
    unread_first: list[Path] = field(default_factory=list)
    unread_second: list[Path] = field(default_factory=list)
    first_extensions: tuple[str, ...] = ()
    second_extensions: tuple[str, ...] = ()


def scan_folder(
    folder: str | os.PathLike[str], extensions: tuple[str, ...]
) -> tuple[list[Path], list[Skipped]]:
    """List the non-hidden entries directly in ``folder`` whose suffix (any case) is in ``extensions``.

    They are split into regular files (symlinks to regular files included) and skipped entries, both
    sorted. Nothing is opened.
    """
    folder = Path(folder)
    wanted = {e.lower() for e in extensions}
    files: list[Path] = []
    skipped: list[Skipped] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            path = Path(entry.path)
            if entry.name.startswith(".") or path.suffix.lower() not in wanted:
                continue
            reason = not_regular_reason(path)
            if reason is None:
                files.append(path)
            else:
                skipped.append(Skipped(path, reason))
    return sorted(files), sorted(skipped, key=lambda item: item.path)


def list_files(folder: str | os.PathLike[str], extensions: tuple[str, ...]) -> list[Path]:
    """Regular, non-hidden files directly in ``folder`` whose suffix (any case) is in ``extensions``."""
    return scan_folder(folder, extensions)[0]


def _by_stem(files: list[Path], skipped: list[Skipped]) -> tuple[dict[str, Path], dict[str, list[Path]]]:
    """Regular files by stem, and the stems named more than once in the folder.

    A skipped entry (a FIFO, folder or broken link) that shares its stem with a regular file makes the
    stem a duplicate too: which of the two was meant is not known, so neither is used.
    """
    seen: dict[str, list[Path]] = {}
    for path in files:
        seen.setdefault(path.stem, []).append(path)
    for item in skipped:
        if item.path.stem in seen:
            seen[item.path.stem] = sorted([*seen[item.path.stem], item.path])
    unique = {stem: paths[0] for stem, paths in seen.items() if len(paths) == 1}
    duplicated = {stem: paths for stem, paths in seen.items() if len(paths) > 1}
    return unique, duplicated


@dataclass(frozen=True)
class FolderListing:
    """One input folder as :func:`list_folder` lists it (nothing opened).

    Attributes
    ----------
    files : dict of str to Path
        The regular files (a symlink to one included) with a wanted suffix, by stem; each stem named
        once in the folder.
    duplicates : dict of str to list of Path
        Stems named more than once (``a.png`` and ``a.jpg``, or a file and an entry of ``skipped``):
        neither is used.
    unread : list of Path
        Files with another image or mask suffix (:data:`IMAGE_EXTENSIONS`, :data:`MASK_EXTENSIONS`),
        which are not read, sorted.
    skipped : list of Skipped
        Entries with a wanted suffix that are not regular files (a folder, FIFO, dangling symlink...).
    """

    files: dict[str, Path]
    duplicates: dict[str, list[Path]]
    unread: list[Path]
    skipped: list[Skipped]


def list_folder(folder: str | os.PathLike[str], extensions: tuple[str, ...]) -> FolderListing:
    """List the entries directly in ``folder`` (hidden ones left out) for a job that reads ``extensions``.

    Each folder of :func:`match_folders` is listed so, and ``predict``'s images folder on its own.

    Parameters
    ----------
    folder : path-like
        The folder (checked to be one by the caller).
    extensions : tuple of str
        The suffixes its files are read from, with the dot, any case.

    Returns
    -------
    FolderListing
        Its files by stem, the stems named twice, the files not read and the entries skipped.
    """
    files, skipped, unread = _scan_with_unread(Path(folder), extensions)
    unique, duplicated = _by_stem(files, skipped)
    return FolderListing(unique, duplicated, unread, skipped)


def _check_extensions(extensions: object, name: str) -> None:
    if not isinstance(extensions, tuple | list):
        raise TypeError(
            f"`{name}` must be a tuple of suffixes such as ('.png',); got {short_repr(extensions)}"
        )
    for suffix in extensions:
        if not isinstance(suffix, str) or len(suffix) < 2 or not suffix.startswith("."):
            raise ValueError(
                f"`{name}` must hold suffixes with the dot, such as '.png'; got {short_repr(suffix)}"
            )


def match_folders(
    first_dir: str | os.PathLike[str],
    second_dir: str | os.PathLike[str],
    first_extensions: tuple[str, ...],
    second_extensions: tuple[str, ...],
) -> Pairing:
    """Match the files of two folders by stem.

    Parameters
    ----------
    first_dir, second_dir : path-like
        Folders to read (not recursive). Hidden files are ignored.
    first_extensions, second_extensions : tuple of str
        Accepted suffixes, with the dot, compared case-insensitively.

    Returns
    -------
    Pairing
        Matched pairs plus what could not be matched or was skipped; nothing here raises for one file.

    Raises
    ------
    ConfigError
        A folder that is empty (``""``), missing or not a folder.
    TypeError, ValueError
        Extensions that are not a tuple or list of str each starting with a dot (a str ``".png"`` would be
        read as its characters and match nothing).
    """
    from maskrefine.pipeline.guards import check_folder

    first_dir = check_folder(first_dir, "first")
    second_dir = check_folder(second_dir, "second")
    _check_extensions(first_extensions, "first_extensions")
    _check_extensions(second_extensions, "second_extensions")
    first_listing = list_folder(first_dir, first_extensions)
    second_listing = list_folder(second_dir, second_extensions)
    first, second = first_listing.files, second_listing.files
    unread_first, unread_second = first_listing.unread, second_listing.unread
    skipped = first_listing.skipped + second_listing.skipped
    skipped_stems = {item.path.stem for item in skipped}
    duplicates = {**first_listing.duplicates}
    for stem, paths in second_listing.duplicates.items():
        duplicates.setdefault(stem, []).extend(paths)
    pairs = [
        Pair(stem, first[stem], second[stem])
        for stem in sorted(first.keys() & second.keys())
        if stem not in duplicates
    ]
    # a partner of an unread file is not "alone": the unread file, named with its reason, is the problem
    alone_first = duplicates.keys() | skipped_stems | {p.stem for p in unread_second}
    alone_second = duplicates.keys() | skipped_stems | {p.stem for p in unread_first}
    only_first = sorted(p for s, p in first.items() if s not in second and s not in alone_first)
    only_second = sorted(p for s, p in second.items() if s not in first and s not in alone_second)
    return Pairing(
        pairs=pairs,
        only_first=only_first,
        only_second=only_second,
        duplicates=duplicates,
        skipped=skipped,
        unread_first=unread_first,
        unread_second=unread_second,
        first_extensions=tuple(first_extensions),
        second_extensions=tuple(second_extensions),
    )


def _scan_with_unread(
    folder: Path, extensions: tuple[str, ...]
) -> tuple[list[Path], list[Skipped], list[Path]]:
    """:func:`scan_folder` for ``extensions``, plus the entries with another image or mask suffix.

    One listing of the folder: its files and skipped entries with a wanted suffix, and the unread
    entries (see :class:`Pairing`), each sorted.
    """
    wanted = {e.lower() for e in extensions}
    files, skipped = scan_folder(folder, (*extensions, *IMAGE_EXTENSIONS, *MASK_EXTENSIONS))
    unread = [p for p in files if p.suffix.lower() not in wanted]
    unread += [item.path for item in skipped if item.path.suffix.lower() not in wanted]
    return (
        [p for p in files if p.suffix.lower() in wanted],
        [item for item in skipped if item.path.suffix.lower() in wanted],
        sorted(unread),
    )


#: What to do with the files of a folder of masks that are not read (another format); the end of their
#: :func:`unread_reason`, which a listing of many such files says once (:func:`split_advice`).
LOSSLESS_ADVICE = (
    "masks must be lossless: save or convert them to PNG (float maps to .npy); a JPEG's compression "
    "changes mask values"
)


def unread_reason(extensions: tuple[str, ...]) -> str:
    """Say why a file of :attr:`Pairing.unread_first` / ``unread_second`` was left out, for a report.

    For a folder of masks (read from :data:`MASK_EXTENSIONS`), also what to do (:data:`LOSSLESS_ADVICE`):
    masks must be stored losslessly, and a JPEG's compression changes their values. Each file's reason
    holds the whole text, so that one entry of a JSON report explains itself.
    """
    text = f"not read: files of this folder are read from {', '.join(extensions)} only"
    if set(extensions) == set(MASK_EXTENSIONS):
        text += f"; {LOSSLESS_ADVICE}"
    return text


def split_advice(reason: str) -> tuple[str, str | None]:
    """Split an :func:`unread_reason` into why the file was not read and the advice it ends with.

    A listing of several such files prints each one's reason without the advice, and the advice once.

    Parameters
    ----------
    reason : str
        A reason of an unmatched file (also one read back from a JSON report).

    Returns
    -------
    tuple of (str, str or None)
        ``reason`` without ``"; "`` and :data:`LOSSLESS_ADVICE` at its end, and that advice; ``reason``
        itself and None when it does not end with the advice.
    """
    ending = f"; {LOSSLESS_ADVICE}"
    if reason.endswith(ending) and len(reason) > len(ending):
        return reason[: -len(ending)], LOSSLESS_ADVICE
    return reason, None


def normalisation_twins(first: Iterable[Path], second: Iterable[Path]) -> list[tuple[Path, Path]]:
    """Files of ``first`` and ``second`` whose stems differ but are equal in Unicode NFC form, paired.

    ``résumé`` can be written with one code point per accented letter (NFC, as most tools write names)
    or with a letter and a combining accent (NFD, as macOS writes them): the two names print alike but
    are different names, and :func:`match_folders` does not pair them (it compares names as they are).
    This finds such files among the files left without a partner, so that a message can say why.

    Parameters
    ----------
    first, second : iterable of Path
        The files without a partner of each folder.

    Returns
    -------
    list of tuple of (Path, Path)
        ``(file of first, file of second)`` for each such pair, in the order of ``first``; a file is in one
        pair at most. Empty when no two stems differ only in their normalisation.
    """
    waiting: dict[str, list[Path]] = {}
    for path in sorted(second):
        waiting.setdefault(unicodedata.normalize("NFC", path.stem), []).append(path)
    twins: list[tuple[Path, Path]] = []
    for path in first:
        candidates = waiting.get(unicodedata.normalize("NFC", path.stem), [])
        twin = next((other for other in candidates if other.stem != path.stem), None)
        if twin is not None:
            candidates.remove(twin)
            twins.append((path, twin))
    return twins


def twins_across(
    alone: Mapping[str, Sequence[Path]], through: str | None = None
) -> list[tuple[Path, str, Path, str]]:
    """:func:`normalisation_twins` between the files without a partner of each two folders.

    Parameters
    ----------
    alone : mapping of str to sequence of Path
        The files without a partner of each folder, by the folder's role (e.g. ``"masks"``).
    through : str, optional
        The role of the folder that each other one is paired with (three folders: ``score --baseline``
        pairs --pred with --baseline and with --gt, never --baseline with --gt): only it is compared with
        the others. None (default): every two folders are compared.

    Returns
    -------
    list of tuple of (Path, str, Path, str)
        ``(file, its role, twin, the twin's role)`` for each pair, folders in the order of ``alone``.
    """
    roles = list(alone)
    found: list[tuple[Path, str, Path, str]] = []
    for index, first in enumerate(roles):
        for second in roles[index + 1 :]:
            if through is None or through in (first, second):
                twins = normalisation_twins(alone[first], alone[second])
                found += [(one, first, other, second) for one, other in twins]
    return found


#: How two names that print alike differ, in messages.
_NORMALISATION = "only in Unicode normalisation (NFC/NFD)"


def twin_note(twin: Path, folder: str) -> str:
    """``"images has 'résumé.jpg' whose name differs only in Unicode normalisation (NFC/NFD); rename one"``.

    Said of a file without a partner, after ``only in <its folder>`` (alone when three folders are
    paired), for a twin found by :func:`normalisation_twins`.

    Parameters
    ----------
    twin : Path
        The other folder's file whose name differs only in its normalisation.
    folder : str
        That folder, by role (e.g. ``"images"``, ``"gt"``).

    Returns
    -------
    str
        The note.
    """
    return f"{folder} has {twin.name!r} whose name differs {_NORMALISATION}; rename one"


def normalisation_hint(twins: Sequence[tuple[Path, Path]]) -> str | None:
    """Say that files are not paired because their names differ only in Unicode normalisation.

    For the "nothing was processed" messages, next to the counts of files without a partner.

    Parameters
    ----------
    twins : sequence of tuple of (Path, Path)
        The pairs found by :func:`normalisation_twins`.

    Returns
    -------
    str or None
        The hint, naming the first pair; None when ``twins`` is empty.
    """
    if not twins:
        return None
    first, second = twins[0]
    if len(twins) == 1:
        return (
            f"{str(first)!r} and {str(second)!r} do not pair: their names differ {_NORMALISATION}; "
            "rename one of them"
        )
    return (
        f"{len(twins)} names differ from a name of the other folder {_NORMALISATION}, so those files do "
        f"not pair (e.g. {str(first)!r} and {str(second)!r}); rename one file of each such pair"
    )


#: Subfolders named by :func:`subfolder_note`; the others are counted.
_SUBFOLDERS_NAMED = 3


def subfolder_note(folder: str | os.PathLike[str] | None, role: str, option: str) -> str | None:
    """Say that ``folder`` holds subfolders, which are not read, and no image or mask file.

    For the "nothing was processed" messages: a folder laid out per class (``masks/cls1/x.png``) gives no
    input file, since only the entries directly in a folder are read. The folder is listed on each call
    (nothing is opened): the jobs call this once, when they build their report (:func:`subfolder_notes`).

    Parameters
    ----------
    folder : path-like or None
        The input folder; None when the report does not name it.
    role : str
        The folder's role, e.g. ``"masks"``, ``"predictions"``.
    option : str
        The option (and parameter) that names the folder, e.g. ``"--masks (masks_dir)"``.

    Returns
    -------
    str or None
        E.g. ``"masks folder 'a' holds only subfolders (cls1, cls2), which are not read; point --masks
        (masks_dir) at one of them or flatten the folder"``; None when ``folder`` is None, cannot be
        listed, holds a file with an image or mask suffix (:data:`IMAGE_EXTENSIONS`,
        :data:`MASK_EXTENSIONS`) or holds no subfolder. Hidden entries are not counted.
    """
    if folder is None:
        return None
    readable = {e.lower() for e in (*IMAGE_EXTENSIONS, *MASK_EXTENSIONS)}
    subfolders: list[str] = []
    others = 0
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if Path(entry.name).suffix.lower() in readable:
                    return None
                if entry.is_dir():
                    subfolders.append(entry.name)
                else:
                    others += 1
    except (OSError, TypeError, ValueError):  # gone since it was paired, or not a path (made by hand)
        return None
    if not subfolders:
        return None
    subfolders.sort()
    named = ", ".join(subfolders[:_SUBFOLDERS_NAMED])
    if len(subfolders) > _SUBFOLDERS_NAMED:
        named += f" and {len(subfolders) - _SUBFOLDERS_NAMED} more"
    holds = "holds only subfolders" if not others else "holds no image or mask file but subfolders"
    return (
        f"{role} folder {os.fspath(folder)!r} {holds} ({named}), which are not read; point {option} at one "
        "of them or flatten the folder"
    )


class _Unpaired(Protocol):
    """A file listed without a partner (:class:`maskrefine.pipeline.reports.Unmatched`)."""

    @property
    def path(self) -> Path: ...

    @property
    def folder(self) -> str: ...

    @property
    def reason(self) -> str: ...


def subfolder_notes(
    files: Iterable[_Unpaired], folders: Sequence[tuple[str | os.PathLike[str] | None, str, str]]
) -> list[str]:
    """List the input folders that hold subfolders and no image or mask file, for a report.

    :func:`subfolder_note` of each folder of ``folders`` that no file of ``files`` is in: such a file has
    an image or mask suffix, so its folder holds one (and the note is never said of a folder whose file
    the same report lists). The jobs call this once, when they build their report, and keep the notes
    in it: each folder is listed on disk then, and the message made from the notes is the same each
    time it is made.

    Parameters
    ----------
    files : iterable of Unmatched
        The files without a partner, each with its folder's role.
    folders : sequence of tuple of (path-like or None, str, str)
        Each input folder (None when unknown), its role and its option, e.g.
        ``(path, "masks", "--masks (masks_dir)")``.

    Returns
    -------
    list of str
        The notes, in the order of ``folders``; empty when no folder holds only subfolders.
    """
    listed = {item.folder for item in files}
    notes = [subfolder_note(folder, role, option) for folder, role, option in folders if role not in listed]
    return [note for note in notes if note]


#: One file and several files of each folder role of the reports, in messages.
_ROLE_NOUNS: dict[str, tuple[str, str]] = {
    "masks": ("mask", "masks"),
    "images": ("image", "images"),
    "predictions": ("prediction", "predictions"),
    "gt": ("ground-truth mask", "ground-truth masks"),
}


def _nouns(role: str) -> tuple[str, str]:
    return _ROLE_NOUNS.get(role, (f"file of {role}", f"files of {role}"))


def counted_files(n: int, role: str) -> str:
    """``"20 masks"``, ``"1 ground-truth mask"``: ``n`` files of the folder of ``role``, for a message.

    Parameters
    ----------
    n : int
        How many files.
    role : str
        Their folder's role (``"masks"``, ``"images"``, ``"predictions"``, ``"gt"``; another role ``r``
        gives ``"files of r"``).

    Returns
    -------
    str
        The count and the noun, singular for 1.
    """
    return f"{n} {_nouns(role)[0 if n == 1 else 1]}"


def stem_hint(unmatched: Sequence[_Unpaired], roles: tuple[str, str]) -> str | None:
    """Say that stems must be equal, when both folders of ``roles`` have files without a partner.

    Names the suffix (or prefix) that over half of one folder's stems add to the other folder's stems,
    e.g. every mask named ``<image stem>_mask``, and how to rename them; None when a folder has no file
    without a partner (then unequal stems are not the problem). Files not read (with a reason) are not
    counted.

    Parameters
    ----------
    unmatched : sequence of Unmatched
        The files without a partner of the two folders.
    roles : tuple of (str, str)
        The two folders' roles, e.g. ``("masks", "images")``.

    Returns
    -------
    str or None
        E.g. ``"mask file stems must equal image stems: all 3 masks without a partner are named <image
        stem>_mask; rename them without '_mask' (e.g. a_mask.png to a.png)"``.
    """
    alone = [[item.path for item in unmatched if item.folder == role and not item.reason] for role in roles]
    if not alone[0] or not alone[1]:
        return None
    rule = f"{_nouns(roles[0])[0]} file stems must equal {_nouns(roles[1])[0]} stems"
    shorter_stems = [{path.stem for path in alone[1]}, {path.stem for path in alone[0]}]
    for side in (0, 1):
        longer = alone[side]
        found = _common_affix([path.stem for path in longer], shorter_stems[side])
        if found is None:
            continue
        kind, text, example = found
        other = f"<{_nouns(roles[1 - side])[0]} stem>"
        pattern = f"{other}{text}" if kind == "suffix" else f"{text}{other}"
        bare = example[: -len(text)] if kind == "suffix" else example[len(text) :]
        suffix = next(path.suffix for path in longer if path.stem == example)
        carrying = sum(1 for path in longer if _strip_affix(path.stem, kind, text) in shorter_stems[side])
        if len(longer) == 1:
            who = f"the {counted_files(1, roles[side])} without a partner is"
        else:
            share = "all" if carrying == len(longer) else f"{carrying} of the"
            who = f"{share} {counted_files(len(longer), roles[side])} without a partner are"
        return (
            f"{rule}: {who} named {pattern}; rename them without {text!r} "
            f"(e.g. {example}{suffix} to {bare}{suffix})"
        )
    return (
        f"{rule}: e.g. {alone[0][0].name} pairs with no {_nouns(roles[1])[0]}; rename the files so that "
        "their stems match"
    )


#: :func:`_common_affix` looks at this many stems at most: a hint needs no more.
_AFFIX_SAMPLE = 1000


def _common_affix(longer: Sequence[str], shorter: set[str]) -> tuple[str, str, str] | None:
    """``("suffix", "_mask", "100075_mask")``: the affix most of ``longer`` add to a ``shorter`` stem.

    Each stem of ``longer`` votes once for each affix it could carry (``a_b_mask`` with ``a`` and
    ``a_b`` in ``shorter``: ``_b_mask`` and ``_mask``); the affix with most votes is returned, with a
    stem that carries it, when over half of them do; else None. Only the first :data:`_AFFIX_SAMPLE`
    stems are looked at. An affix of digits only is not one: masks ``1``-``100`` and images ``101``-``200``
    would give "rename 110 to 10", pairing image 110 with mask 10.
    """
    sample = longer[:_AFFIX_SAMPLE]
    votes: dict[tuple[str, str], list[str]] = {}
    for stem in sample:
        found: set[tuple[str, str]] = set()
        for cut in range(1, len(stem)):
            if stem[:cut] in shorter:
                found.add(("suffix", stem[cut:]))
            if stem[cut:] in shorter:
                found.add(("prefix", stem[:cut]))
        for affix in found:
            if not affix[1].isdigit():
                votes.setdefault(affix, []).append(stem)
    if not votes:
        return None
    (kind, text), stems = max(votes.items(), key=lambda item: (len(item[1]), item[0][0] == "suffix"))
    if len(stems) * 2 <= len(sample):
        return None
    return kind, text, stems[0]


def _strip_affix(stem: str, kind: str, text: str) -> str | None:
    """``stem`` without the prefix or suffix ``text``; None when it does not carry it."""
    if kind == "suffix":
        return stem[: -len(text)] if stem.endswith(text) and len(stem) > len(text) else None
    return stem[len(text) :] if stem.startswith(text) and len(stem) > len(text) else None


def unpaired_hints(
    files: Iterable[_Unpaired],
    roles: Sequence[str],
    folder_notes: Sequence[str] = (),
    through: str | None = None,
) -> list[str]:
    """List what a "nothing was processed" or "nothing was scored" message adds about the input files.

    The one source of these hints for every job (``apply``, ``predict``, ``score``, ``score
    --baseline``, ``tune``), each only when it applies, in this order:

    * the files of each folder not read, counted with why (:func:`unread_reason`, without the
      :data:`LOSSLESS_ADVICE` that the listing gives once);
    * ``folder_notes``, the folders that hold only subfolders (:func:`subfolder_notes`, listed when the
      job ended; this function reads nothing from disk);
    * files whose names differ only in Unicode normalisation (:func:`normalisation_hint`), looked for
      between the folders that are paired (:func:`twins_across`); a file is named in one pair at most;
    * with two folders, :func:`stem_hint` for the other files without a partner. With three, a file of
      ``through`` is listed without saying which other folder lacks its partner, so no rule about the
      stems of two folders can be drawn from the list.

    Parameters
    ----------
    files : iterable of Unmatched
        The files without a partner, each with its folder's role and, for a file not read, the reason.
    roles : sequence of str
        The input folders' roles, e.g. ``("masks", "images")``; for two, in the order the stem rule
        names them.
    folder_notes : sequence of str, optional
        The notes of :func:`subfolder_notes` (default: none).
    through : str, optional
        The role of the folder the others are paired with (three folders; see :func:`twins_across`).

    Returns
    -------
    list of str
        The hints, e.g. ``"3 files of the predictions folder not read: files of this folder are read
        from .png, .npy only"``.
    """
    files = list(files)
    alone: dict[str, list[Path]] = {role: [] for role in roles}
    unread: dict[tuple[str, str], int] = {}
    for item in files:
        if item.reason:
            key = (item.folder, split_advice(item.reason)[0])
            unread[key] = unread.get(key, 0) + 1
        elif isinstance(item.path, Path) and item.folder in alone:
            alone[item.folder].append(item.path)
    hints: list[str | None] = [
        f"{n} file{'s' if n != 1 else ''} of the {role} folder {reason}"
        for (role, reason), n in unread.items()
    ]
    hints += folder_notes
    twins: list[tuple[Path, Path]] = []
    named: set[Path] = set()
    for one, _, other, _ in twins_across(alone, through):
        if one not in named and other not in named:
            twins.append((one, other))
            named |= {one, other}
    hints.append(normalisation_hint(twins))
    if len(roles) == 2:  # the twins are named already: the rule is drawn from the other files
        others = [item for item in files if isinstance(item.path, Path) and item.path not in named]
        hints.append(stem_hint(others, (roles[0], roles[1])))
    return [hint for hint in hints if hint]


#: Mask output formats and the file suffix each one is written with (:mod:`maskrefine.io.imageio`).
MASK_SUFFIXES: dict[str, str] = {"png8": ".png", "png16": ".png", "npy": ".npy"}
MASK_FORMATS: tuple[str, ...] = tuple(MASK_SUFFIXES)
