"""Read images and masks, write masks atomically. No maths beyond scaling to [0, 1].

Every problem with a file raises :class:`maskrefine.errors.InputError` naming the file and the problem.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
import sys
import time
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from maskrefine._units import UNIT_SCALES, to_unit_float
from maskrefine.errors import InputError, OutputError, OutputExistsError
from maskrefine.io.pairs import MASK_FORMATS, MASK_SUFFIXES

__all__ = [
    "read_image",
    "read_mask",
    "read_mask_array",
    "write_mask",
    "write_bytes_atomic",
    "write_text_atomic",
    "MASK_FORMATS",
    "MASK_SUFFIXES",
    "encode_mask",
    "file_kind",
    "TEMP_FILE",
    "remove_stale_temps",
]

MaskFormat = Literal["png8", "png16", "npy"]


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except IsADirectoryError:
        raise InputError(path, "is a folder, not a file") from None
    except OSError as exc:
        raise InputError(path, f"cannot read file ({exc.strerror or exc})") from None
    if not data:
        raise InputError(path, "file is empty (0 bytes)")
    return data


def _decode(path: Path, flags: int) -> np.ndarray:
    data = _read_bytes(path)
    buffer = np.frombuffer(data, dtype=np.uint8)
    try:
        decoded = cv2.imdecode(buffer, flags)
    except cv2.error:
        decoded = None
    if decoded is None:
        raise InputError(path, f"cannot decode as an image ({len(data)} bytes; not an image or truncated)")
    if decoded.size == 0:
        raise InputError(path, "decoded image has no pixels")
    return decoded


def _unit_scale(array: np.ndarray, path: Path) -> np.ndarray:
    if array.dtype not in UNIT_SCALES:
        raise InputError(path, f"unsupported pixel type {array.dtype} (expected 8- or 16-bit)")
    return to_unit_float(array)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB float32 in [0, 1].

    Parameters
    ----------
    path : path-like
        PNG, JPEG, BMP, TIFF or WebP file; 8- or 16-bit; gray images are repeated to 3 channels,
        an alpha channel is dropped.

    Returns
    -------
    ndarray of float32, shape (H, W, 3)
        RGB (not OpenCV's BGR) values in [0, 1].

    Raises
    ------
    InputError
        If the file is missing, empty, truncated or not an image.
    """
    path = Path(path)
    decoded = _decode(path, cv2.IMREAD_UNCHANGED)
    if decoded.ndim == 2:
        decoded = np.repeat(decoded[:, :, None], 3, axis=2)
    elif decoded.shape[2] == 4:
        decoded = cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGB)
    elif decoded.shape[2] == 3:
        decoded = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    else:
        raise InputError(path, f"unsupported number of channels {decoded.shape[2]} (expected 1, 3 or 4)")
    return np.ascontiguousarray(_unit_scale(decoded, path))


def read_mask_array(path: str | Path) -> np.ndarray:
    """Read a mask file without rescaling: uint8 / uint16 for images, float32 for ``.npy``.

    Multi-channel image masks are accepted when their colour channels are equal (a gray mask saved as
    RGB); an alpha channel is ignored. ``.npy`` masks must hold a bool or floating (H, W) array (a
    leading or trailing axis of length 1 is squeezed) with finite values in [0, 1].

    Raises
    ------
    InputError
        If the file cannot be read or decoded, or its contents are not a single-channel mask.
    """
    path = Path(path)
    if path.suffix.lower() == ".npy":
        return _read_npy_mask(path)
    decoded = _decode(path, cv2.IMREAD_UNCHANGED)
    if decoded.ndim == 3:
        colour = decoded[:, :, :3] if decoded.shape[2] >= 3 else decoded[:, :, :1]
        if colour.shape[2] == 3 and not (
            np.array_equal(colour[:, :, 0], colour[:, :, 1])
            and np.array_equal(colour[:, :, 0], colour[:, :, 2])
        ):
            raise InputError(
                path, "mask has differing colour channels; expected a single-channel (gray) mask"
            )
        decoded = np.ascontiguousarray(colour[:, :, 0])
    if decoded.dtype not in (np.uint8, np.uint16):
        raise InputError(path, f"unsupported pixel type {decoded.dtype} (expected 8- or 16-bit)")
    return decoded


def _read_npy_mask(path: Path) -> np.ndarray:
    _read_bytes(path)  # uniform messages for missing / empty files
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(path, f"cannot load as a NumPy .npy array ({exc})") from None
    if not isinstance(array, np.ndarray):
        raise InputError(path, "does not hold a single array")
    if array.ndim == 3 and 1 in (array.shape[0], array.shape[-1]):
        array = array.reshape(array.shape[1:] if array.shape[0] == 1 else array.shape[:-1])
    if array.ndim != 2:
        raise InputError(path, f"mask array must be 2-D (H, W); got shape {array.shape}")
    if array.size == 0:
        raise InputError(path, "mask array is empty")
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if not np.issubdtype(array.dtype, np.floating):
        raise InputError(path, f"mask array must be bool or float in [0, 1]; got dtype {array.dtype}")
    finite = np.isfinite(array)
    if not finite.any():
        raise InputError(path, "mask array is all NaN/inf")
    if not finite.all():
        raise InputError(path, f"mask array has {int(array.size - finite.sum())} NaN/inf value(s)")
    low, high = float(array.min()), float(array.max())
    if low < 0.0 or high > 1.0:
        raise InputError(path, f"mask values must lie in [0, 1]; found range [{low:.4g}, {high:.4g}]")
    return array.astype(np.float32, copy=False)


def read_mask(path: str | Path) -> np.ndarray:
    """Read a mask file as float32 (H, W) in [0, 1] (8-bit / 255, 16-bit / 65535, ``.npy`` as stored).

    Raises
    ------
    InputError
        As :func:`read_mask_array`.
    """
    path = Path(path)
    array = read_mask_array(path)
    if array.dtype == np.float32:
        return array
    return _unit_scale(array, path)


#: Characters of the random part of a temporary file name (the same alphabet as :mod:`tempfile`).
_TEMP_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"
#: Temporary files are ``.<output name>.<8 random characters>.tmp`` in the output's folder.
TEMP_FILE = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp$")
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}
_RENAME_NOREPLACE = 1  # <linux/fs.h>
_AT_FDCWD = -100


def file_kind(mode: int) -> str:
    """What a ``st_mode`` is, in words: "regular file", "folder", "symbolic link", "FIFO", ..."""
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


def _existing_mode(path: Path) -> int | None:
    """Permission bits of the regular file at ``path``, None if nothing is there.

    Raises :class:`OutputError` when something other than a regular file is there (symlinks included):
    a writer never replaces or writes through it.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OutputError(path, f"cannot check the output path ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise OutputError(
            path, f"exists and is a {file_kind(info.st_mode)}, not a regular file; not replaced"
        )
    return stat.S_IMODE(info.st_mode)


def _create_temp(path: Path) -> tuple[int, Path]:
    """Create ``.<name>.<random>.tmp`` next to ``path`` (mode 0666 minus the umask, like any new file)."""
    for _ in range(100):
        suffix = "".join(secrets.choice(_TEMP_CHARS) for _ in range(8))
        temp = path.parent / f".{path.name}.{suffix}.tmp"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:  # pragma: no cover - 37**8 names
            continue
        except OSError as exc:
            raise OutputError(
                path, f"cannot create a temporary file in {path.parent} ({exc.strerror or exc})"
            ) from None
        return fd, temp
    raise OutputError(path, "cannot create a temporary file")  # pragma: no cover


def _rename_noreplace(source: Path, target: Path) -> bool | None:
    """Linux ``renameat2(RENAME_NOREPLACE)``: True done, False target exists, None unsupported here."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):  # pragma: no cover - old glibc / musl
        return None
    result = renameat2(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), _RENAME_NOREPLACE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code == errno.EEXIST:
        return False
    if code in (errno.EINVAL, errno.ENOSYS, *_NO_HARD_LINKS):
        return None
    raise OSError(code, os.strerror(code), str(target))


def _publish_noreplace(temp: Path, path: Path) -> None:
    """Give the finished ``temp`` the name ``path`` unless ``path`` exists (atomic: two writers racing
    for one name never both succeed, and nobody sees a partial file). Raises OutputExistsError."""
    try:
        os.link(temp, path)
    except FileExistsError:
        raise OutputExistsError(
            path, "output exists (written meanwhile by another run?); not replaced"
        ) from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        renamed = _rename_noreplace(temp, path)
        if renamed is False:
            raise OutputExistsError(
                path, "output exists (written meanwhile by another run?); not replaced"
            ) from None
        if renamed is None:  # neither hard links nor renameat2: reserve the name, then replace it
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            except FileExistsError:
                raise OutputExistsError(
                    path, "output exists (written meanwhile by another run?); not replaced"
                ) from None
            os.replace(temp, path)
        return
    os.unlink(temp)


#: Seconds after which a leftover temporary file is certainly stale (a write takes well under a second).
STALE_TEMP_S = 60.0


def remove_stale_temps(folder: Path, names: set[str], *, older_than: float = STALE_TEMP_S) -> list[Path]:
    """Delete this package's leftover temporary files for the outputs ``names`` in ``folder``.

    Only regular files named exactly ``.<name>.<8 random characters>.tmp`` (see :data:`TEMP_FILE`) with
    ``name`` in ``names`` and last modified more than ``older_than`` seconds ago are removed (a younger
    one may belong to a run still writing). Returns the removed paths.
    """
    removed: list[Path] = []
    limit = time.time() - older_than
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return removed
    for entry in entries:
        match = TEMP_FILE.match(entry.name)
        if match is None or match["target"] not in names:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(info.st_mode) and info.st_mtime < limit:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except FileNotFoundError:  # pragma: no cover - removed meanwhile
            continue
    return removed


def write_bytes_atomic(path: str | Path, data: bytes, *, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, published atomically.

    A reader (or a crash at any moment) sees either no file, the previous file, or the complete new file;
    never a partial one. The new file gets the usual permissions (0666 minus the umask); a replaced file
    keeps its permissions.

    Parameters
    ----------
    path : path-like
        The output file. If something other than a regular file is there (a symlink, a folder, a FIFO, a
        device), nothing is written and :class:`~maskrefine.errors.OutputError` is raised.
    data : bytes
        The complete contents.
    overwrite : bool
        True: replace an existing regular file (last writer wins, atomically). False: never replace; if
        the file exists (even if it appeared while writing), raise
        :class:`~maskrefine.errors.OutputExistsError` and leave it alone.

    Raises
    ------
    OutputError
        The path is not a regular file, or writing failed (no space, no permission, ...): the message
        names the path; the temporary file is removed.
    """
    path = Path(path)
    mode = _existing_mode(path)
    if mode is not None and not overwrite:
        raise OutputExistsError(path, "output exists; not replaced")
    fd, temp = _create_temp(path)
    try:
        try:
            with os.fdopen(fd, "wb") as handle:
                if mode is not None:
                    os.fchmod(handle.fileno(), mode)
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if overwrite:
                _existing_mode(path)  # still not a symlink / FIFO / folder (it may have appeared meanwhile)
                os.replace(temp, path)
            else:
                _publish_noreplace(temp, path)
        except OutputError:
            raise
        except OSError as exc:
            raise OutputError(path, f"cannot write ({exc.strerror or exc})") from None
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    return path


def write_text_atomic(path: str | Path, text: str, *, overwrite: bool = True) -> Path:
    """UTF-8 text version of :func:`write_bytes_atomic`. File names read with :func:`os.fsdecode` that are
    not valid UTF-8 (lone surrogates) are written as their original bytes (``surrogateescape``)."""
    return write_bytes_atomic(path, text.encode("utf-8", "surrogateescape"), overwrite=overwrite)


def encode_mask(mask: np.ndarray, fmt: MaskFormat = "png8") -> bytes:
    """Encode a float mask in [0, 1] as PNG (8/16-bit, rounded after clipping) or ``.npy`` float32 bytes."""
    if fmt == "npy":
        import io

        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(mask, dtype=np.float32), allow_pickle=False)
        return buffer.getvalue()
    if fmt == "png8":
        pixels = np.rint(np.clip(mask, 0.0, 1.0) * 255.0).astype(np.uint8)
    elif fmt == "png16":
        pixels = np.rint(np.clip(mask, 0.0, 1.0) * 65535.0).astype(np.uint16)
    else:
        raise ValueError(f"`fmt` must be one of {', '.join(MASK_FORMATS)}; got {fmt!r}")
    ok, encoded = cv2.imencode(".png", pixels)
    if not ok:  # pragma: no cover - cv2 only fails here on invalid arrays
        raise ValueError("cv2.imencode failed to encode the mask as PNG")
    return encoded.tobytes()


def write_mask(
    path: str | Path, mask: np.ndarray, fmt: MaskFormat = "png8", *, overwrite: bool = True
) -> Path:
    """Write ``mask`` (float, [0, 1]) to ``path`` atomically in format ``fmt`` (png8, png16, npy); see
    :func:`write_bytes_atomic` for ``overwrite``."""
    return write_bytes_atomic(path, encode_mask(mask, fmt), overwrite=overwrite)
