"""Pair the files of two folders by file stem."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "IMAGE_EXTENSIONS",
    "MASK_EXTENSIONS",
    "MASK_SUFFIXES",
    "MASK_FORMATS",
    "Pair",
    "Pairing",
    "match_folders",
    "list_files",
]

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
MASK_EXTENSIONS: tuple[str, ...] = (".png", ".npy")


@dataclass(frozen=True, slots=True)
class Pair:
    """One matched stem: ``first`` from the first folder, ``second`` from the second."""

    stem: str
    first: Path
    second: Path


@dataclass(frozen=True, slots=True)
class Pairing:
    """Result of :func:`match_folders`.

    Attributes
    ----------
    pairs : list of Pair
        Stems present exactly once in both folders, sorted by stem.
    only_first, only_second : list of Path
        Files whose stem has no partner in the other folder.
    duplicates : dict of str to list of Path
        Stems that occur more than once in one folder (e.g. ``a.png`` and ``a.jpg``); these are
        excluded from ``pairs`` because the right partner is ambiguous.
    """

    pairs: list[Pair]
    only_first: list[Path] = field(default_factory=list)
    only_second: list[Path] = field(default_factory=list)
    duplicates: dict[str, list[Path]] = field(default_factory=dict)


def list_files(folder: str | Path, extensions: tuple[str, ...]) -> list[Path]:
    """Regular, non-hidden files directly in ``folder`` whose suffix (any case) is in ``extensions``."""
    folder = Path(folder)
    wanted = {e.lower() for e in extensions}
    return sorted(
        p
        for p in folder.iterdir()
        if not p.name.startswith(".") and p.suffix.lower() in wanted and p.is_file()
    )


def _by_stem(files: list[Path]) -> tuple[dict[str, Path], dict[str, list[Path]]]:
    seen: dict[str, list[Path]] = {}
    for path in files:
        seen.setdefault(path.stem, []).append(path)
    unique = {stem: paths[0] for stem, paths in seen.items() if len(paths) == 1}
    duplicated = {stem: paths for stem, paths in seen.items() if len(paths) > 1}
    return unique, duplicated


def match_folders(
    first_dir: str | Path,
    second_dir: str | Path,
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
        Matched pairs plus what could not be matched; nothing here raises for an unmatched file.
    """
    first, first_dups = _by_stem(list_files(first_dir, first_extensions))
    second, second_dups = _by_stem(list_files(second_dir, second_extensions))
    duplicates = {**first_dups}
    for stem, paths in second_dups.items():
        duplicates.setdefault(stem, []).extend(paths)
    pairs = [
        Pair(stem, first[stem], second[stem])
        for stem in sorted(first.keys() & second.keys())
        if stem not in duplicates
    ]
    only_first = sorted(p for s, p in first.items() if s not in second and s not in duplicates)
    only_second = sorted(p for s, p in second.items() if s not in first and s not in duplicates)
    return Pairing(pairs=pairs, only_first=only_first, only_second=only_second, duplicates=duplicates)


#: Mask output formats and the file suffix each one is written with (:mod:`maskrefine.io.imageio`).
MASK_SUFFIXES: dict[str, str] = {"png8": ".png", "png16": ".png", "npy": ".npy"}
MASK_FORMATS: tuple[str, ...] = tuple(MASK_SUFFIXES)
