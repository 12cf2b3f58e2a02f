"""What kind of file is at a path, and opening only regular files (never a FIFO, a device or a folder).

The one owner of "is this something we may read": folder listing (:mod:`maskrefine.io.pairs`) uses
:func:`not_regular_reason` to name what it skips, the readers (:mod:`maskrefine.io.imageio`) use
:func:`open_regular` so that nothing that is not a regular file is ever opened for reading (a FIFO would
block, a device could be endless).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from maskrefine._checks import short_repr
from maskrefine.errors import InputError

__all__ = ["file_path", "file_kind", "not_regular_reason", "open_regular", "read_exactly"]


def file_path(value: object, name: str = "path") -> Path:
    """``value`` (str or ``os.PathLike``) as a Path; a non-path or an empty string raises, naming ``name``.

    ``Path("")`` is the current folder: an empty path is refused instead of read or written as ``.``.
    A path ending with a separator, ``.`` or ``..`` names a folder, but ``Path`` drops that ending
    (``a.png/`` becomes ``a.png``): it is refused instead of reading or replacing the file ``a.png``.
    """
    try:
        text = os.fspath(value)  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(f"`{name}` must be a path (str or os.PathLike); got {short_repr(value)}") from None
    if not isinstance(text, str):
        raise TypeError(f"`{name}` must be a str or os.PathLike path; got bytes {short_repr(value)}")
    if text == "":
        raise ValueError(f"`{name}` is empty; give a file path")
    if os.path.basename(text) in ("", ".", ".."):
        raise ValueError(
            f"`{name}` {short_repr(text)} ends with a separator, '.' or '..', which names a folder; "
            "give a file path"
        )
    return Path(text)


def file_kind(mode: int) -> str:
    """Describe a ``st_mode`` in words: "regular file", "folder", "symbolic link", "FIFO (named pipe)", ..."""
    for test, name in (
        (stat.S_ISREG, "regular file"),
        (stat.S_ISDIR, "folder"),
        (stat.S_ISLNK, "symbolic link"),
        (stat.S_ISFIFO, "FIFO (named pipe)"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "special file"  # pragma: no cover


def not_regular_reason(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` is not a readable regular file, or None when it is one.

    Symlinks are followed: a symlink to a regular file is a regular file. Otherwise the reason says what
    was found: ``"a dangling symlink"``, ``"a symlink loop"``, ``"a folder"``, ``"a FIFO (named pipe)"``,
    ``"a character device"``, ``"a block device"``, ``"a socket"``, ``"not found"`` or the OS error.
    Nothing is opened.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "a dangling symlink" if os.path.islink(path) else "not found"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symlink loop"
        return f"not readable ({exc.strerror or exc})"
    if stat.S_ISREG(info.st_mode):
        return None
    return f"a {file_kind(info.st_mode)}"


def open_regular(path: Path) -> tuple[int, int]:
    """Open a regular, non-empty file for reading; return ``(fd, size)``. The caller closes ``fd``.

    The type is checked before opening and again on the open descriptor (opened with ``O_NONBLOCK``, so
    a FIFO swapped in between cannot block).

    Raises
    ------
    InputError
        Naming ``path`` and the problem: not found, not a regular file (what it is), unreadable, empty.
    """
    reason = not_regular_reason(path)
    if reason == "not found":
        raise InputError(path, "file not found")
    if reason is not None:
        raise InputError(path, f"is {reason}, not a regular file; not read")
    flags = (
        os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    )
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise InputError(path, f"cannot read file ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(path, f"is a {file_kind(info.st_mode)}, not a regular file; not read")
        if info.st_size == 0:
            raise InputError(path, "file is empty (0 bytes)")
    except BaseException:
        os.close(fd)
        raise
    return fd, int(info.st_size)


def read_exactly(fd: int, offset: int, count: int, path: Path) -> bytes:
    """``count`` bytes from ``offset`` of an open file, or an :class:`InputError` if it ends early."""
    chunks: list[bytes] = []
    done = 0
    try:
        while done < count:
            chunk = os.pread(fd, min(count - done, 1 << 26), offset + done)
            if not chunk:
                break
            chunks.append(chunk)
            done += len(chunk)
    except OSError as exc:
        raise InputError(path, f"cannot read file ({exc.strerror or exc})") from None
    if done < count:
        raise InputError(
            path, f"file ended after {offset + done} bytes while reading (changed or truncated?)"
        )
    return b"".join(chunks)
