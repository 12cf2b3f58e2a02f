"""Pair the files of two folders by file stem.

Only regular files are paired (a symlink to a regular file counts as one: datasets are often linked);
anything else with a wanted suffix (a folder named ``x.png``, a FIFO, a device, a dangling symlink, a
symlink loop) is listed in :attr:`Pairing.skipped` with what it is, and never opened.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from maskrefine._checks import short_repr
from maskrefine.io.files import not_regular_reason

__all__ = [
    "IMAGE_EXTENSIONS",
    "MASK_EXTENSIONS",
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
    first_files, first_skipped, unread_first = _scan_with_unread(first_dir, first_extensions)
    second_files, second_skipped, unread_second = _scan_with_unread(second_dir, second_extensions)
    skipped = first_skipped + second_skipped
    skipped_stems = {item.path.stem for item in skipped}
    first, first_dups = _by_stem(first_files, first_skipped)
    second, second_dups = _by_stem(second_files, second_skipped)
    duplicates = {**first_dups}
    for stem, paths in second_dups.items():
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


def unread_reason(extensions: tuple[str, ...]) -> str:
    """Say why a file of :attr:`Pairing.unread_first` / ``unread_second`` was left out, for a report.

    For a folder of masks (read from :data:`MASK_EXTENSIONS`), also what to do: masks must be stored
    losslessly, and a JPEG's compression changes their values.
    """
    text = f"not read: files of this folder are read from {', '.join(extensions)} only"
    if set(extensions) == set(MASK_EXTENSIONS):
        text += (
            "; masks must be lossless: save or convert them to PNG (float maps to .npy); a JPEG's "
            "compression changes mask values"
        )
    return text


#: Mask output formats and the file suffix each one is written with (:mod:`maskrefine.io.imageio`).
MASK_SUFFIXES: dict[str, str] = {"png8": ".png", "png16": ".png", "npy": ".npy"}
MASK_FORMATS: tuple[str, ...] = tuple(MASK_SUFFIXES)
