"""Read images and masks, write masks atomically. No maths beyond scaling to [0, 1].

Every problem with a file raises :class:`maskrefine.errors.InputError` naming the file and the problem.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from maskrefine._units import UNIT_SCALES, to_unit_float
from maskrefine.errors import InputError

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
]

#: Mask output formats and the file suffix each one is written with.
MASK_SUFFIXES: dict[str, str] = {"png8": ".png", "png16": ".png", "npy": ".npy"}
MASK_FORMATS: tuple[str, ...] = tuple(MASK_SUFFIXES)
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


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and an atomic rename.

    A reader (or a crash at any moment) sees either no file, the previous file, or the complete new file;
    never a partial one. The temporary file is removed if writing fails.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """UTF-8 text version of :func:`write_bytes_atomic`."""
    return write_bytes_atomic(path, text.encode("utf-8"))


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


def write_mask(path: str | Path, mask: np.ndarray, fmt: MaskFormat = "png8") -> Path:
    """Write ``mask`` (float, [0, 1]) to ``path`` atomically in format ``fmt`` (png8, png16, npy)."""
    return write_bytes_atomic(path, encode_mask(mask, fmt))
