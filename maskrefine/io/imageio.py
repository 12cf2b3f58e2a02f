"""Read images and masks, write masks atomically. No maths beyond scaling to [0, 1].

Every problem with a file raises :class:`maskrefine.errors.InputError` naming the file and the problem.
"""

from __future__ import annotations

import errno
import hashlib
import io
import math
import os
import re
import secrets
import stat
import sys
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import numpy.typing as npt

from maskrefine._checks import (
    as_float_array,
    check_flag,
    check_unit_interval,
    real_to_float,
    short_repr,
    unit_interval_problem,
)
from maskrefine._units import UNIT_SCALES, to_unit_float
from maskrefine.errors import InputError, OutputError, OutputExistsError
from maskrefine.io.files import file_kind, file_path, open_regular, read_exactly
from maskrefine.io.headers import (
    HeaderError,
    ImageHeader,
    png_is_animated,
    png_text,
    png_text_chunk,
    png_truncation,
    read_image_header,
)
from maskrefine.io.options import (
    DEFAULT_MAX_PIXELS,
    EIGHT_BIT_IN_16,
    MASK_SCALES,
    PLAIN,
    check_mask_scale,
    check_max_pixels,
)
from maskrefine.io.pairs import MASK_FORMATS, MASK_SUFFIXES

__all__ = [
    "read_image",
    "read_image_size",
    "read_mask",
    "read_mask_array",
    "read_mask_file",
    "MaskRead",
    "ReadOptions",
    "MASK_SCALES",
    "DEFAULT_MAX_PIXELS",
    "PLAIN",
    "check_mask_scale",
    "check_max_pixels",
    "write_mask",
    "write_bytes_atomic",
    "OutputFolder",
    "write_text_atomic",
    "write_text_chunks_atomic",
    "MASK_FORMATS",
    "MASK_SUFFIXES",
    "encode_mask",
    "png8_codes",
    "file_kind",
    "TEMP_FILE",
    "remove_stale_temps",
]

MaskFormat = Literal["png8", "png16", "npy"]


#: An image file never needs more bytes than this per pixel (uncompressed 16-bit RGBA) plus a margin for
#: metadata; a larger file is refused before it is read.
_MAX_BYTES_PER_PIXEL = 8
_FILE_MARGIN = 64 << 20
#: Largest .npy header read (NumPy itself refuses headers over 10,000 bytes by default).
_NPY_HEADER_MAX = 1 << 16


@dataclass(frozen=True, slots=True)
class MaskRead:
    """A mask as read by :func:`read_mask_file`.

    Parameters
    ----------
    pixels : ndarray, shape (H, W)
        uint8 (255 = foreground), uint16 (65535 = foreground) or float in [0, 1] (``.npy``: float16,
        float32 or float64 as stored; bool as float32).
    encoding : str, default :data:`PLAIN`
        :data:`PLAIN`, or what was detected, e.g. ``"0/1 values"``, ``"8-bit values in a 16-bit file"``,
        ``"alpha channel of RGBA"``; several are joined by ``", "``.
    stored_bits : int or None, default None
        Bits per sample as stored in the file: a PNG's bit depth (1, 2, 4, 8 or 16), else 16 or 8 by the
        decoded type; None for a ``.npy``. A 1-bit PNG is read as 0/255 like an 8-bit one, but some
        evaluation scripts read it otherwise (docs/evaluation.md, "Files").
    """

    pixels: np.ndarray
    encoding: str = PLAIN
    stored_bits: int | None = None

    def to_unit(self) -> npt.NDArray[np.float32]:
        """Return the mask as float32 in [0, 1] (uint8 / 255, uint16 / 65535, float as is).

        Returns
        -------
        ndarray of float32, shape (H, W)
            The mask on the [0, 1] scale.
        """
        return to_unit_float(self.pixels)


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """How the folder jobs read their inputs: ``mask_scale``, ``apply_exif`` and ``max_pixels``.

    They mean what they mean in :func:`read_mask_file` and :func:`read_image`. Build it with
    :meth:`checked` (validates once): the constructor itself checks nothing.

    Parameters
    ----------
    mask_scale : {"auto", "255", "1", "65535"}, default "auto"
        The value that means foreground in an integer mask file (see :func:`read_mask_file`).
    apply_exif : bool, default False
        Turn images upright by their EXIF orientation (see :func:`read_image`).
    max_pixels : int or None, default :data:`DEFAULT_MAX_PIXELS` (100 MP)
        Refuse, from the header and before decoding, an image or mask with more pixels (None: no limit).
    """

    mask_scale: str = "auto"
    apply_exif: bool = False
    max_pixels: int | None = DEFAULT_MAX_PIXELS

    @classmethod
    def checked(
        cls, mask_scale: object = "auto", apply_exif: object = False, max_pixels: object = DEFAULT_MAX_PIXELS
    ) -> ReadOptions:
        """Return validated options; raise ``ValueError`` / ``TypeError`` naming the bad argument.

        Parameters
        ----------
        mask_scale : {"auto", "255", "1", "65535"} or int, default "auto"
            The value that means foreground in an integer mask file; an integer 255, 1 or 65535 is read
            as its string.
        apply_exif : bool, default False
            Turn images upright by their EXIF orientation; a Python or NumPy bool.
        max_pixels : int or None, default :data:`DEFAULT_MAX_PIXELS` (100 MP)
            Largest pixel count of a file, an integer >= 1 (None: no limit).

        Returns
        -------
        ReadOptions
            The options, ``mask_scale`` as a string and ``max_pixels`` as an int or None.

        Raises
        ------
        TypeError
            ``apply_exif`` is not a bool; ``max_pixels`` is not an integer or None.
        ValueError
            An unknown ``mask_scale``; ``max_pixels`` < 1.
        """
        return cls(
            check_mask_scale(mask_scale), check_flag(apply_exif, "apply_exif"), check_max_pixels(max_pixels)
        )

    def image(self, path: str | os.PathLike[str]) -> np.ndarray:
        """Read an image with :func:`read_image` and these options.

        Parameters
        ----------
        path : path-like
            The image file.

        Returns
        -------
        ndarray of float32, shape (H, W, 3)
            RGB values in [0, 1].

        Raises
        ------
        InputError
            Naming the file, as :func:`read_image`.
        """
        return read_image(path, apply_exif=self.apply_exif, max_pixels=self.max_pixels)

    def image_encoded(self, path: str | os.PathLike[str]) -> tuple[np.ndarray, str]:
        """Read an image with :func:`read_image_encoded` and these options.

        Parameters
        ----------
        path : path-like
            The image file.

        Returns
        -------
        image : ndarray of float32, shape (H, W, 3)
            RGB values in [0, 1].
        encoding : str
            How the file was encoded: :data:`PLAIN`, or ``"8-bit values in a 16-bit file"``.

        Raises
        ------
        InputError
            Naming the file, as :func:`read_image`.
        """
        return read_image_encoded(path, apply_exif=self.apply_exif, max_pixels=self.max_pixels)

    def mask(self, path: str | os.PathLike[str]) -> MaskRead:
        """Read a mask with :func:`read_mask_file` and these options.

        Parameters
        ----------
        path : path-like
            The mask file (an image or a ``.npy``).

        Returns
        -------
        MaskRead
            The pixels as stored and the encoding detected.

        Raises
        ------
        InputError
            Naming the file, as :func:`read_mask_file`.
        """
        return read_mask_file(path, mask_scale=self.mask_scale, max_pixels=self.max_pixels)


def read_image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """Return ``(height, width)`` of an image file (PNG, JPEG, BMP, TIFF, WebP) from its header alone.

    The size as stored (before any EXIF rotation). Nothing is decoded.

    Parameters
    ----------
    path : path-like
        The image file; its type is recognised by its content, not its name.

    Returns
    -------
    (int, int)
        ``(height, width)`` in pixels.

    Raises
    ------
    InputError
        Naming the file: not a readable regular file, or no valid image header.
    """
    header = read_image_file_header(path)
    return header.height, header.width


def read_image_file_header(path: str | os.PathLike[str]) -> ImageHeader:
    """Return what an image file's header says (format, stored size), as :func:`read_image_size` reads it.

    Raises
    ------
    InputError
        Naming the file: not a readable regular file, or no valid image header.
    """
    path = file_path(path)
    fd, size = open_regular(path)
    try:
        return _header_of(fd, size, path)
    finally:
        os.close(fd)


def pixel_count_text(count: Any) -> str:  # a Python int, possibly beyond float range (a hostile header)
    """Return a pixel count for a message: the exact count, with megapixels from 0.1 MP up.

    Exact, so that a count just over a limit does not read as the limit (100,010,000 is "100.0 MP"); a
    hostile header's count of more than 15 digits only in megapixels.
    """
    if count < 100_000:
        return f"{count} pixels"
    megapixels = f"{real_to_float(count) / 1e6:.1f} MP"
    return f"{count:,} pixels ({megapixels})" if count < 10**15 else megapixels


def _header_of(fd: int, size: int, path: Path) -> ImageHeader:
    try:
        return read_image_header(lambda offset, count: os.pread(fd, count, offset))
    except HeaderError as exc:
        raise InputError(path, f"cannot decode as an image: {exc} ({size} bytes)") from None
    except OSError as exc:
        raise InputError(path, f"cannot read file ({exc.strerror or exc})") from None


def _read_image_file(path: Path, max_pixels: int | None) -> tuple[bytes, ImageHeader]:
    """Read an image file's bytes and header, its type, size and pixel count checked from the header first."""
    fd, size = open_regular(path)
    try:
        header = _header_of(fd, size, path)
        if max_pixels is not None:
            if header.pixels > max_pixels:
                raise InputError(
                    path,
                    f"image is {header.height}x{header.width} (HxW) = {pixel_count_text(header.pixels)}, "
                    f"more than the limit of {max_pixels} pixels (max_pixels; --max-pixels in apply, score "
                    "and predict); not decoded",
                )
            cap = _MAX_BYTES_PER_PIXEL * max_pixels + _FILE_MARGIN
            if size > cap:
                raise InputError(
                    path,
                    f"file is {size} bytes, more than an image within the limit of {max_pixels} pixels "
                    f"can need ({cap} bytes; max_pixels, --max-pixels in apply, score and predict); not read",
                )
        return read_exactly(fd, 0, size, path), header
    finally:
        os.close(fd)


def _decode_or_none(data: bytes, flags: int) -> np.ndarray | None:
    try:
        return cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except cv2.error:
        return None


def _decode(path: Path, data: bytes, flags: int) -> np.ndarray:
    truncated = png_truncation(data)
    if truncated is not None:
        raise InputError(path, f"cannot decode as an image: {truncated} ({len(data)} bytes)")
    if png_is_animated(data):
        raise InputError(
            path,
            "animated PNG (APNG): OpenCV decodes its first animation frame, which need not be the still "
            "image other readers (libpng, Pillow) return; save the mask or image as a plain PNG",
        )
    decoded = _decode_or_none(data, flags)
    if decoded is None:
        tiff = data[:4] in (b"II*\0", b"MM\0*")
        # OpenCV cannot convert e.g. a one-channel float TIFF to colour: say why. Only a TIFF: decoding
        # another format again would print its decoder's complaint (libpng's line) a second time
        if tiff and flags != cv2.IMREAD_UNCHANGED:
            as_stored = _decode_or_none(data, cv2.IMREAD_UNCHANGED)
            if as_stored is not None:
                _check_unit_dtype(as_stored, path)
        if tiff:
            raise InputError(
                path,
                f"cannot decode this TIFF ({len(data)} bytes): truncated, or a layout OpenCV does not read "
                "(e.g. 2- or 4-bit samples); convert it to PNG",
            )
        raise InputError(path, f"cannot decode as an image ({len(data)} bytes; not an image or truncated)")
    if decoded.size == 0:
        raise InputError(path, "decoded image has no pixels")
    return decoded


def _refuse_translucent_tiff(path: Path, header: ImageHeader, decoded: np.ndarray, *, image: bool) -> None:
    """Refuse an RGBA TIFF whose colours OpenCV's TIFF decoder multiplied by a translucent alpha.

    An image: any translucent pixel. A mask: a constant translucent alpha (the colour then holds the mask,
    scaled down; a mask held in a varying alpha is read from the alpha, which is not scaled).
    """
    if header.format != "tiff" or decoded.ndim != 3 or decoded.shape[2] != 4:
        return
    alpha = decoded[:, :, 3]
    opaque = np.iinfo(decoded.dtype).max if decoded.dtype.kind == "u" else 1.0
    translucent = (alpha != opaque).any() if image else alpha.flat[0] != opaque and _constant(alpha)
    if translucent:
        raise InputError(
            path,
            "RGBA TIFF with transparency: OpenCV's TIFF decoder multiplies the colours by the alpha, "
            "which other readers (Pillow) do not; save it as PNG, or without the alpha channel",
        )


def _check_unit_dtype(array: np.ndarray, path: Path) -> None:
    """Refuse pixel types other than 8- and 16-bit unsigned (TIFF may hold float, signed or 32-bit ones)."""
    if array.dtype not in UNIT_SCALES:
        raise InputError(path, f"unsupported pixel type {array.dtype} (expected 8- or 16-bit)")


def _unit_scale(array: np.ndarray, path: Path) -> np.ndarray:
    _check_unit_dtype(array, path)
    return to_unit_float(array)


def read_image(
    path: str | os.PathLike[str], *, apply_exif: bool = False, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> npt.NDArray[np.float32]:
    """Read an image file as RGB float32 in [0, 1], its pixels as stored (EXIF orientation not applied).

    Parameters
    ----------
    path : path-like
        PNG, JPEG, BMP, TIFF or WebP file (recognised by its content); 8- or 16-bit; gray images are
        repeated to 3 channels, an alpha channel is dropped, palette images are expanded. A 16-bit file
        whose largest value is 2..255 holds 8-bit values (an 8-bit image saved at 16 bits) and is read as
        v/255, the rule of the mask readers; other 16-bit files as v/65535.
    apply_exif : bool, default False
        Turn the image upright by its EXIF orientation tag (JPEG, PNG eXIf, WebP), as viewers show it.
        By default the pixels are kept as stored, as the field's reference code reads images
        (``PIL.Image.open(path).convert("RGB")``, which ignores the tag), so a mask a method computed
        from those pixels fits. A TIFF's orientation tag is applied by OpenCV's TIFF decoder either way.
    max_pixels : int or None, default :data:`DEFAULT_MAX_PIXELS` (100 MP)
        Refuse, from the file header and before decoding, an image with more pixels (None: no limit).

    Returns
    -------
    ndarray of float32, shape (H, W, 3)
        RGB (not OpenCV's BGR) values in [0, 1].

    Raises
    ------
    InputError
        If the file is missing, not a regular file, empty, truncated, not an image, of another pixel type
        than 8- or 16-bit unsigned, or over ``max_pixels``.
    """
    return read_image_encoded(path, apply_exif=apply_exif, max_pixels=max_pixels)[0]


def read_image_encoded(
    path: str | os.PathLike[str], *, apply_exif: bool = False, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> tuple[npt.NDArray[np.float32], str]:
    """:func:`read_image`, and how the file was encoded: :data:`PLAIN` or ``EIGHT_BIT_IN_16``."""
    path = file_path(path)
    limit = check_max_pixels(max_pixels)
    data, header = _read_image_file(path, limit)
    if header.format == "tiff" and header.tiff_samples == 4:  # the colour decode hides the alpha
        _refuse_translucent_tiff(path, header, _decode(path, data, cv2.IMREAD_UNCHANGED), image=True)
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH  # not IMREAD_UNCHANGED: that skips the EXIF rotation
    apply_exif = check_flag(apply_exif, "apply_exif")  # "yes" / "no" would read as True
    if not apply_exif:
        flags |= cv2.IMREAD_IGNORE_ORIENTATION
    decoded = _decode(path, data, flags)
    if decoded.ndim != 3 or decoded.shape[2] != 3:  # pragma: no cover - IMREAD_COLOR always gives BGR
        raise InputError(path, f"unexpected decoded shape {decoded.shape}")
    _check_unit_dtype(decoded, path)  # before cvtColor, which fails on e.g. int32 or float64 with a cv2.error
    encoding = PLAIN
    if decoded.dtype == np.uint16 and 1 < int(decoded.max()) <= 255:
        decoded, encoding = decoded.astype(np.uint8), EIGHT_BIT_IN_16
    return np.ascontiguousarray(to_unit_float(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB))), encoding


def read_mask_file(
    path: str | os.PathLike[str],
    *,
    mask_scale: str | int = "auto",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> MaskRead:
    """Read a mask file, recognising its encoding (the one mask reader of ``apply``, ``score``, the API).

    Parameters
    ----------
    path : path-like
        A PNG (or other image) mask, or a ``.npy`` holding a bool or float (H, W) array (a leading or
        trailing axis of length 1 is squeezed) with finite values in [0, 1]; float values at most 1e-6
        outside [0, 1] (float32 rounding) are clipped.
    mask_scale : {"auto", "255", "1", "65535"}, default "auto"
        The value that means foreground in an integer file. ``"auto"``: a file whose maximum is 1 holds
        0/1 values; a 16-bit file whose maximum is at most 255 holds 8-bit values; otherwise 255 for
        8-bit and 65535 for 16-bit files. ``"255"``, ``"1"``, ``"65535"`` force that scale (a file with
        larger values, or an 8-bit file with ``"65535"``, is refused). Not used for ``.npy`` masks.
    max_pixels : int or None, default :data:`DEFAULT_MAX_PIXELS`
        Refuse, from the header and before decoding, a mask with more pixels (None: no limit).

    Returns
    -------
    MaskRead
        ``pixels`` (uint8 on the 0..255 scale, uint16 on the 0..65535 scale, or a ``.npy``'s float16,
        float32 or float64 values in [0, 1]; a bool ``.npy`` as float32) and the
        ``encoding`` detected (:data:`PLAIN` for a gray PNG using its full scale, or a float ``.npy``).

    Notes
    -----
    Channels: a gray PNG is read as is. Colour or alpha channels are resolved as follows, else the file
    is refused, naming it:

    * equal colour channels and a constant (or no) alpha: the gray values (``"gray saved as RGB"``);
    * constant colour channels and a varying alpha: the alpha channel (``"alpha channel of RGBA"``, or
      ``"... of gray+alpha"``); also when the colour channels equal the alpha channel;
    * palette PNGs: a palette of grays gives the gray values (``"palette of grays"``); a palette image
      using exactly two colours, one of them black, gives black = 0 and the other colour = 1
      (``"palette of two colours"``); any other palette image is a label map, not a mask, and is refused.

    Masks are read as stored: no EXIF rotation is applied to them.

    Raises
    ------
    InputError
        Naming the file and the problem. ``ValueError`` / ``TypeError`` for a bad ``mask_scale`` or
        ``max_pixels``.
    """
    path = file_path(path)
    scale = check_mask_scale(mask_scale)
    limit = check_max_pixels(max_pixels)
    if path.suffix.lower() == ".npy":
        return MaskRead(_read_npy_mask(path, limit), PLAIN)
    data, header = _read_image_file(path, limit)
    decoded = _decode(path, data, cv2.IMREAD_UNCHANGED)
    _check_unit_dtype(decoded, path)
    _refuse_translucent_tiff(path, header, decoded, image=False)
    if header.format == "tiff" and header.tiff_samples == 2:
        # OpenCV decodes a gray + alpha TIFF as gray alone: a mask held in its alpha would be lost unseen
        raise InputError(
            path,
            "gray+alpha TIFF: OpenCV's TIFF decoder drops the alpha channel, which may hold the mask; "
            "save the mask as a PNG (gray, or gray+alpha)",
        )
    values, notes = _single_channel(decoded, path, header.png_color_type)
    if scale == "auto" and not notes:
        written = _written_scale(data, values.dtype)
        if written is not None:  # a mask maskrefine wrote: its own scale, whatever its values
            scale = written
    if notes == [TWO_COLOUR_PALETTE] and scale == "1":
        scale = "255"  # its colours already read as 0 and 1 (at full scale): no numbers to rescale
    values, scale_notes = _apply_mask_scale(values, path, scale, palette=header.png_color_type == 3)
    bits = header.png_bit_depth or (16 if decoded.dtype == np.uint16 else 8)
    return MaskRead(np.ascontiguousarray(values), ", ".join(notes + scale_notes) or PLAIN, bits)


def _constant(array: np.ndarray) -> bool:
    return bool((array == array.reshape(-1, *array.shape[2:])[0]).all())


def _equal_channels(colour: np.ndarray) -> bool:
    return np.array_equal(colour[:, :, 0], colour[:, :, 1]) and np.array_equal(
        colour[:, :, 0], colour[:, :, 2]
    )


def _single_channel(
    decoded: np.ndarray, path: Path, png_color_type: int | None
) -> tuple[np.ndarray, list[str]]:
    """Return the mask channel of a decoded (H, W) or (H, W, C) image, with what was detected."""
    if decoded.ndim == 2:
        return decoded, []
    channels = decoded.shape[2]
    if channels not in (3, 4):
        raise InputError(path, f"unsupported number of channels {channels} (expected 1, 3 or 4)")
    if png_color_type in (0, 2) and channels == 4:
        # a gray or RGB PNG has no alpha channel: OpenCV made one from its tRNS colour key (one colour
        # marked transparent), which is ignored like a palette's transparency
        channels = 3
    colour = decoded[:, :, :3]
    if png_color_type == 3:
        return _palette_values(colour, path)
    alpha = decoded[:, :, 3] if channels == 4 else None
    layout = "gray+alpha" if png_color_type == 4 else "RGBA" if channels == 4 else "RGB"
    if alpha is None or _constant(alpha):
        if not _equal_channels(colour):
            raise InputError(
                path, "mask has differing colour channels; expected a single-channel (gray) mask"
            )
        return colour[:, :, 0], [
            "gray in a gray+alpha file" if layout == "gray+alpha" else f"gray saved as {layout}"
        ]
    if _constant(colour) or (_equal_channels(colour) and np.array_equal(colour[:, :, 0], alpha)):
        return alpha, [f"alpha channel of {layout}"]
    raise InputError(
        path,
        f"{layout} mask whose colour and alpha channels both vary: cannot tell which one holds the mask "
        "(use constant colour channels with the mask in alpha, or save a single-channel PNG)",
    )


#: How a palette PNG of black and one other colour is read (black 0, the colour 1, at full scale).
TWO_COLOUR_PALETTE = "palette of two colours (black 0, other 1)"


def _palette_values(colour: np.ndarray, path: Path) -> tuple[np.ndarray, list[str]]:
    """Values of a palette PNG, expanded by OpenCV to BGR (the palette indices are not available)."""
    if _equal_channels(colour):
        return colour[:, :, 0], ["palette of grays"]
    packed = (
        colour[:, :, 0].astype(np.uint32) << 16 | colour[:, :, 1].astype(np.uint32) << 8 | colour[:, :, 2]
    )
    used = np.unique(packed)
    if used.size == 2 and used[0] == 0:
        # foreground at full 8-bit scale: the file holds no numeric values, only "black" and "the colour"
        return (packed != 0).view(np.uint8) * np.uint8(255), [TWO_COLOUR_PALETTE]
    what = "one colour that is not gray" if used.size == 1 else f"{used.size} colours that are not all gray"
    raise InputError(
        path,
        f"palette PNG using {what}: a label map, not a mask "
        "(save the mask as a gray PNG; a palette of grays, or of black and one colour, is accepted)",
    )


#: ``tEXt`` keyword of the scale mark that :func:`encode_mask` puts in the PNGs it writes.
SCALE_KEYWORD = b"maskrefine"
#: The mark's text per PNG format, and the ``mask_scale`` it stands for.
_SCALE_MARKS: dict[str, tuple[bytes, str]] = {
    "png8": (b"scale=255", "255"),
    "png16": (b"scale=65535", "65535"),
}


def _written_scale(data: bytes, dtype: np.dtype) -> str | None:
    """``"255"`` / ``"65535"`` for a PNG written by :func:`encode_mask` (its scale mark), else None.

    A mark that does not fit the file's bit depth (``scale=255`` on a 16-bit file, ``scale=65535`` on an
    8-bit one) is stale: another tool re-saved the file at another depth and kept the text chunk. It is
    ignored (the detection rules apply), instead of refusing the file for a scale the user never chose.
    """
    text = png_text(data, SCALE_KEYWORD)
    for mark, scale in _SCALE_MARKS.values():
        if text == mark and (scale == "65535") == (dtype == np.uint16):
            return scale
    return None


def _apply_mask_scale(
    values: np.ndarray, path: Path, scale: str, *, palette: bool = False
) -> tuple[np.ndarray, list[str]]:
    """Bring uint8/uint16 mask values to the 0..255 (uint8) or 0..65535 (uint16) scale.

    ``palette``: the values are a palette PNG's colours read as grays (its indices are not read), which a
    refusal says.
    """
    high = int(values.max())
    sixteen = values.dtype == np.uint16
    if scale == "auto":
        if high == 1:
            return values.astype(np.uint8) * np.uint8(255), [
                "0/1 values" + (" in a 16-bit file" if sixteen else "")
            ]
        if sixteen and 1 < high <= 255:  # (an all-zero file is empty at any scale: plain)
            return values.astype(np.uint8), [EIGHT_BIT_IN_16]
        return values, []
    if scale == "1":
        if high > 1:
            found = f"palette colours read as grays up to {high}" if palette else f"values up to {high}"
            raise InputError(path, f"with mask scale 1 (--mask-scale 1) values must be 0 or 1; found {found}")
        return values.astype(np.uint8) * np.uint8(255), []
    if scale == "255":
        if high > 255:
            raise InputError(
                path,
                "with mask scale 255 (--mask-scale 255) values must be at most 255; "
                f"found values up to {high}",
            )
        return values.astype(np.uint8), []
    if not sixteen:  # "65535"
        raise InputError(path, "mask scale 65535 (--mask-scale 65535) needs a 16-bit file; this one is 8-bit")
    return values, []


def _read_npy_mask(path: Path, max_pixels: int | None) -> np.ndarray:
    """Read a float (H, W) mask from a .npy file, its header checked before any data is read.

    A float array keeps its type (float16, float32 or float64); a bool array becomes float32.
    """
    fd, size = open_regular(path)
    try:
        head = io.BytesIO(os.pread(fd, min(size, _NPY_HEADER_MAX), 0))
        try:
            version = np.lib.format.read_magic(head)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(head)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(head)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except Exception as exc:  # noqa: BLE001 - NumPy raises several types for a bad header
            detail = str(exc) if isinstance(exc, ValueError) and "ast." not in str(exc) else ""
            raise InputError(
                path,
                "cannot load as a NumPy .npy array: the header is truncated or malformed"
                + (f" ({detail})" if detail else ""),
            ) from None
        data_offset = head.tell()
        if dtype.hasobject or not (dtype == np.bool_ or np.issubdtype(dtype, np.floating)):
            raise InputError(path, f"mask array must be bool or float in [0, 1]; got dtype {dtype}")
        if dtype.itemsize > 8:  # long double: no kernel or reference computes in it
            raise InputError(
                path, f"mask array dtype {dtype} is not supported; save it as float16, float32 or float64"
            )
        if any(not isinstance(d, int) or d < 0 for d in shape):
            raise InputError(path, f"mask array header has an invalid shape {short_repr(shape)}")
        squeezed = shape
        if len(shape) == 3 and 1 in (shape[0], shape[-1]):
            squeezed = shape[1:] if shape[0] == 1 else shape[:-1]
        if len(squeezed) != 2:
            raise InputError(path, f"mask array must be 2-D (H, W); got shape {short_repr(shape)}")
        count = math.prod(shape)  # Python ints: no int64 overflow for a hostile header
        if count == 0:
            raise InputError(path, "mask array is empty")
        if max_pixels is not None and count > max_pixels:
            raise InputError(
                path,
                f"mask array is {short_repr(squeezed[0], 20)}x{short_repr(squeezed[1], 20)} (HxW) = "
                f"{pixel_count_text(count)}, more than the limit of {short_repr(max_pixels, 40)} pixels "
                "(max_pixels; --max-pixels in apply and score); not loaded",
            )
        nbytes = count * dtype.itemsize
        if data_offset + nbytes > size:
            raise InputError(
                path,
                f"truncated .npy file: its header promises a {short_repr(shape)} {dtype} array "
                f"({short_repr(nbytes, 40)} bytes of data) "
                f"but the file holds {size - data_offset} bytes after the header",
            )
        raw = read_exactly(fd, data_offset, nbytes, path)
    finally:
        os.close(fd)
    array = np.frombuffer(raw, dtype=dtype).reshape(squeezed, order="F" if fortran else "C")
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    finite = np.isfinite(array)
    if not finite.any():
        raise InputError(path, "mask array is all NaN/inf")
    if not finite.all():
        raise InputError(path, f"mask array has {int(array.size - finite.sum())} NaN/inf value(s)")
    problem = unit_interval_problem(float(array.min()), float(array.max()))
    if problem is not None:
        raise InputError(path, f"mask values must lie in [0, 1]; {problem}")
    # kept in its own float type (native byte order): a scorer compares the map as its reference would
    return np.clip(array, 0.0, 1.0).astype(array.dtype.newbyteorder("="), copy=False)


def read_mask_array(
    path: str | os.PathLike[str],
    *,
    mask_scale: str | int = "auto",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """:func:`read_mask_file` without the encoding: uint8 (0..255), uint16 (0..65535) or float [0, 1].

    Parameters
    ----------
    path : path-like
        A mask file: a PNG (or other image) or a ``.npy`` (see :func:`read_mask_file`).
    mask_scale : {"auto", "255", "1", "65535"} or int, default "auto"
        The value that means foreground in an integer file (see :func:`read_mask_file`); an integer 255,
        1 or 65535 is read as its string. Not used for ``.npy`` masks.
    max_pixels : int or None, default :data:`DEFAULT_MAX_PIXELS` (100 MP)
        Refuse, from the header and before decoding, a mask with more pixels (None: no limit).

    Returns
    -------
    ndarray, shape (H, W)
        The pixels as stored (:attr:`MaskRead.pixels`): uint8 on the 0..255 scale, uint16 on the
        0..65535 scale, or a ``.npy``'s float values in [0, 1] (a bool ``.npy`` as float32).

    Raises
    ------
    InputError
        As :func:`read_mask_file`: naming the file and the problem.
    ValueError, TypeError
        A bad ``mask_scale`` or ``max_pixels``.
    """
    return read_mask_file(path, mask_scale=mask_scale, max_pixels=max_pixels).pixels


def read_mask(
    path: str | os.PathLike[str],
    *,
    mask_scale: str | int = "auto",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> npt.NDArray[np.float32]:
    """Read a mask file as float32 (H, W) in [0, 1] (encodings and arguments as :func:`read_mask_file`).

    Parameters
    ----------
    path : path-like
        A mask file: a PNG (or other image) or a ``.npy`` (see :func:`read_mask_file`).
    mask_scale : {"auto", "255", "1", "65535"} or int, default "auto"
        The value that means foreground in an integer file (see :func:`read_mask_file`); an integer 255,
        1 or 65535 is read as its string. Not used for ``.npy`` masks.
    max_pixels : int or None, default :data:`DEFAULT_MAX_PIXELS` (100 MP)
        Refuse, from the header and before decoding, a mask with more pixels (None: no limit).

    Returns
    -------
    ndarray of float32, shape (H, W)
        The mask in [0, 1]: uint8 files divided by 255, uint16 files by 65535 (after the scale detection
        of :func:`read_mask_file`), a float ``.npy`` cast to float32.

    Raises
    ------
    InputError
        As :func:`read_mask_file`: naming the file and the problem.
    ValueError, TypeError
        A bad ``mask_scale`` or ``max_pixels``.
    """
    path = file_path(path)
    array = read_mask_array(path, mask_scale=mask_scale, max_pixels=max_pixels)
    if np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float32, copy=False)
    return _unit_scale(array, path)


#: Characters of the random part of a temporary file name (the same alphabet as :mod:`tempfile`).
_TEMP_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"
#: Temporary files are ``.<output name>.<8 random characters>.tmp`` in the output's folder (an output name
#: too long for that, near the 255-byte limit of a file name, appears as ``~`` + its SHA-1, see
#: :func:`_temp_target`).
#: Match it with ``fullmatch``: ``$`` would also match before a final newline, and ``re.DOTALL`` lets a name
#: with a newline in it (a legal file name) match too.
TEMP_FILE = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp", re.DOTALL)
_MAX_NAME_BYTES = 255
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}
_RENAME_NOREPLACE = 1  # <linux/fs.h>
_AT_FDCWD = -100


def _at(path: Path, dir_fd: int | None) -> str | Path:
    """Return what an ``os`` call is given for ``path``: its name within the open folder ``dir_fd``, or it."""
    return path.name if dir_fd is not None else path


def _fd_arg(dir_fd: int | None) -> dict[str, int]:
    """``dir_fd=`` for an ``os`` call on one name: none when writing by path."""
    return {} if dir_fd is None else {"dir_fd": dir_fd}


def _fd_args(dir_fd: int | None) -> dict[str, Any]:
    """``src_dir_fd=`` and ``dst_dir_fd=`` for an ``os`` call on two names in one folder (link, replace)."""
    return {} if dir_fd is None else {"src_dir_fd": dir_fd, "dst_dir_fd": dir_fd}


def _existing_mode(path: Path, dir_fd: int | None = None) -> int | None:
    """Permission bits of the regular file at ``path``, None if nothing is there.

    Raises :class:`OutputError` when something other than a regular file is there (symlinks included):
    a writer never replaces or writes through it. ``dir_fd``: the open folder ``path`` is looked up in.
    """
    try:
        info = os.lstat(_at(path, dir_fd), **_fd_arg(dir_fd))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OutputError(path, f"cannot check the output path ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise OutputError(
            path, f"exists and is a {file_kind(info.st_mode)}, not a regular file; not replaced"
        )
    return stat.S_IMODE(info.st_mode)


def _temp_target(name: str) -> str:
    """``name`` as it appears in its temporary file's name: as is, or ``~<sha1>`` when it is too long."""
    if len(os.fsencode(f".{name}.12345678.tmp")) <= _MAX_NAME_BYTES:
        return name
    return "~" + hashlib.sha1(os.fsencode(name)).hexdigest()


def _create_temp(path: Path, dir_fd: int | None = None) -> tuple[int, Path]:
    """Create ``.<name>.<random>.tmp`` next to ``path`` (mode 0666 minus the umask, like any new file)."""
    target = _temp_target(path.name)
    for _ in range(100):
        suffix = "".join(secrets.choice(_TEMP_CHARS) for _ in range(8))
        temp = path.parent / f".{target}.{suffix}.tmp"
        try:
            fd = os.open(
                _at(temp, dir_fd),
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                0o666,
                **_fd_arg(dir_fd),
            )
        except FileExistsError:  # pragma: no cover - 37**8 names
            continue
        except OSError as exc:
            raise OutputError(
                path, f"cannot create a temporary file in {path.parent} ({exc.strerror or exc})"
            ) from None
        return fd, temp
    raise OutputError(path, "cannot create a temporary file")  # pragma: no cover


def _rename_noreplace(source: Path, target: Path, dir_fd: int | None = None) -> bool | None:
    """Linux ``renameat2(RENAME_NOREPLACE)``: True done, False target exists, None unsupported here."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):  # pragma: no cover - old glibc / musl
        return None
    folder = _AT_FDCWD if dir_fd is None else dir_fd
    result = renameat2(
        folder, os.fsencode(_at(source, dir_fd)), folder, os.fsencode(_at(target, dir_fd)), _RENAME_NOREPLACE
    )
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code == errno.EEXIST:
        return False
    if code in (errno.EINVAL, errno.ENOSYS, *_NO_HARD_LINKS):
        return None
    raise OSError(code, os.strerror(code), str(target))


def _publish_noreplace(temp: Path, path: Path, dir_fd: int | None = None) -> None:
    """Give the finished ``temp`` the name ``path`` unless ``path`` exists (else OutputExistsError).

    Atomic: two writers racing for one name never both succeed, and nobody sees a partial file.
    """
    try:
        os.link(_at(temp, dir_fd), _at(path, dir_fd), **_fd_args(dir_fd))
    except FileExistsError:
        raise OutputExistsError(
            path, "output exists (written meanwhile by another run?); not replaced"
        ) from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        renamed = _rename_noreplace(temp, path, dir_fd)
        if renamed is False:
            raise OutputExistsError(
                path, "output exists (written meanwhile by another run?); not replaced"
            ) from None
        if renamed is None:  # neither hard links nor renameat2: reserve the name, then replace it
            try:
                os.close(
                    os.open(_at(path, dir_fd), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666, **_fd_arg(dir_fd))
                )
            except FileExistsError:
                raise OutputExistsError(
                    path, "output exists (written meanwhile by another run?); not replaced"
                ) from None
            os.replace(_at(temp, dir_fd), _at(path, dir_fd), **_fd_args(dir_fd))
        return
    _remove_temp(temp, dir_fd)  # the output is published: a temp left here is only a stale name


def _remove_temp(temp: Path, dir_fd: int | None) -> None:
    """Remove a temporary file, ignoring any failure (gone already, or the folder became unwritable).

    Called while another error propagates, or after the output was published: a failure here must not
    replace that error (or fail a written file). A temp left behind is removed by a later
    ``--skip-existing`` run (:func:`remove_stale_temps`).
    """
    try:
        os.unlink(_at(temp, dir_fd), **_fd_arg(dir_fd))
    except OSError:
        pass


#: Seconds after which a leftover temporary file is certainly stale (a write takes well under a second).
STALE_TEMP_S = 60.0


def remove_stale_temps(folder: Path, names: set[str], *, older_than: float = STALE_TEMP_S) -> list[Path]:
    """Delete this package's leftover temporary files for the outputs ``names`` in ``folder``.

    Only regular files named exactly ``.<name>.<8 random characters>.tmp`` (see :data:`TEMP_FILE`) with
    ``name`` in ``names`` and last modified more than ``older_than`` seconds ago are removed (a younger
    one may belong to a run still writing). Returns the removed paths.
    """
    return _remove_stale_temps(Path(folder), names, older_than, None)


def _remove_stale_temps(folder: Path, names: set[str], older_than: float, dir_fd: int | None) -> list[Path]:
    """:func:`remove_stale_temps` in ``folder``, reached by path or (``dir_fd``) through an open folder."""
    removed: list[Path] = []
    targets = {_temp_target(name) for name in names}
    limit = time.time() - older_than
    try:
        entries = list(os.scandir(folder if dir_fd is None else dir_fd))
    except FileNotFoundError:
        return removed
    for entry in entries:
        match = TEMP_FILE.fullmatch(entry.name)
        if match is None or match["target"] not in targets:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(info.st_mode) and info.st_mtime < limit:
                os.unlink(entry.name if dir_fd is not None else entry.path, **_fd_arg(dir_fd))
                removed.append(folder / entry.name)
        except FileNotFoundError:  # pragma: no cover - removed meanwhile
            continue
    return removed


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, *, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, published atomically.

    A reader (or a crash at any moment) sees either no file, the previous file, or the complete new file;
    never a partial one. The new file gets the usual permissions (0666 minus the umask); a replaced file
    keeps its permissions. (A job writing many files into one folder uses :class:`OutputFolder`.)

    Parameters
    ----------
    path : path-like
        The output file. If something other than a regular file is there (a symlink, a folder, a FIFO, a
        device), nothing is written and :class:`~maskrefine.errors.OutputError` is raised.
    data : bytes
        The complete contents.
    overwrite : bool, default True
        True: replace an existing regular file (last writer wins, atomically). False: never replace; if
        the file exists (even if it appeared while writing), raise
        :class:`~maskrefine.errors.OutputExistsError` and leave it alone.

    Returns
    -------
    Path
        ``path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    TypeError
        ``data`` is not bytes, bytearray or memoryview; ``overwrite`` is not a bool.
    OutputExistsError
        ``overwrite=False`` and the file exists (a subclass of :class:`~maskrefine.errors.OutputError`).
    OutputError
        The path is not a regular file, or writing failed (no space, no permission, ...): the message
        names the path; the temporary file is removed.
    """
    overwrite = _checked_write_arguments(data, overwrite)
    return _write_atomic(file_path(path), data, overwrite, None)


def _checked_write_arguments(data: object, overwrite: object) -> bool:
    """Refuse (TypeError) ``data`` that is not bytes-like and an ``overwrite`` that is not a bool."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"`data` must be bytes; got {type(data).__name__}")
    return check_flag(overwrite, "overwrite")  # "no" would read as True: replace the file


def _write_atomic(path: Path, data: bytes | Iterable[bytes], overwrite: bool, dir_fd: int | None) -> Path:
    """:func:`write_bytes_atomic` with its arguments checked; ``dir_fd``: the open folder of ``path``.

    With ``dir_fd`` every call names only ``path.name`` within that folder (``path`` is then used in
    messages only); with None, every call goes by ``path``. ``data``: the contents, or an iterable of
    their pieces, written one after the other (an exception raised while one is made removes the
    temporary file and propagates: nothing is published).
    """
    mode = _existing_mode(path, dir_fd)
    if mode is not None and not overwrite:
        raise OutputExistsError(path, "output exists; not replaced")
    fd, temp = _create_temp(path, dir_fd)
    try:
        try:
            with os.fdopen(fd, "wb", buffering=_WRITE_BUFFER) as handle:
                if mode is not None:
                    os.fchmod(handle.fileno(), mode)
                if isinstance(data, (bytes, bytearray, memoryview)):
                    handle.write(data)
                else:
                    for chunk in data:
                        handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            if overwrite:
                # still not a symlink / FIFO / folder (it may have appeared meanwhile)
                _existing_mode(path, dir_fd)
                os.replace(_at(temp, dir_fd), _at(path, dir_fd), **_fd_args(dir_fd))
            else:
                _publish_noreplace(temp, path, dir_fd)
        except OutputError:
            raise
        except OSError as exc:
            raise OutputError(path, f"cannot write ({exc.strerror or exc})") from None
    except BaseException:
        _remove_temp(temp, dir_fd)  # never replaces the error being raised
        raise
    return path


#: Bytes buffered by the atomic writers before a ``write`` call (one call for a mask file).
_WRITE_BUFFER = 1 << 16

#: Whether this platform reaches files through an open folder (``dir_fd``); else :class:`OutputFolder`
#: writes by path.
_HAS_DIR_FD = (
    hasattr(os, "O_DIRECTORY")
    and {os.open, os.stat, os.link, os.rename, os.unlink, os.mkdir} <= os.supports_dir_fd
    and os.scandir in os.supports_fd
)


class OutputFolder:
    """A job's output folder, opened once: every file the job writes there goes through that descriptor.

    The job checks the folder (not an input folder, ...) and opens it; from then on its writes never
    look the folder up by path again. If the path, or a folder above it, is renamed or re-pointed (a
    symlink swapped to another folder, say the masks folder) during the run, the files still land in the
    folder that was opened and checked, and nothing is written into the new target. Where the platform
    has no ``dir_fd`` calls (Windows) it writes by path, as :func:`write_bytes_atomic` does.

    Forked workers inherit the descriptor (``O_CLOEXEC``: closed on ``exec`` only). A pickled copy (a
    spawned worker) opens the folder again by path and raises :class:`~maskrefine.errors.OutputError`
    naming it unless that is the same folder (device and inode) as the one opened here.

    Parameters
    ----------
    path : path-like
        The folder; it must exist. Used in messages, and to open it.
    follow_symlinks : bool, default True
        False: refuse a symlink at ``path`` itself (``O_NOFOLLOW``).

    Raises
    ------
    OutputError
        The folder cannot be opened (missing, not a folder, a symlink with ``follow_symlinks=False``).
    """

    def __init__(self, path: str | os.PathLike[str], *, follow_symlinks: bool = True) -> None:
        self._open(Path(path), follow_symlinks, None)

    def _open(self, path: Path, follow_symlinks: bool, parent_fd: int | None) -> None:
        """Open ``path`` (relative to ``parent_fd`` when given: only its last component is looked up)."""
        self.path = path
        self.follow_symlinks = follow_symlinks
        self.fd: int | None = None
        if not _HAS_DIR_FD:  # pragma: no cover - Windows: writes by path
            info = os.stat(path) if follow_symlinks else os.lstat(path)
            self.identity = (info.st_dev, info.st_ino)
            return
        flags = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
        if not follow_symlinks:
            flags |= os.O_NOFOLLOW
        try:
            if parent_fd is None:
                fd = os.open(path, flags)
            else:
                fd = os.open(path.name, flags, dir_fd=parent_fd)
        except OSError as exc:
            problem = "is a symbolic link" if exc.errno == errno.ELOOP else exc.strerror or str(exc)
            raise OutputError(path, f"cannot open the output folder ({problem}); nothing written") from None
        self.fd = fd
        self._closer = weakref.finalize(self, os.close, fd)
        info = os.fstat(fd)
        self.identity = (info.st_dev, info.st_ino)

    def subfolder(self, name: str, *, create: bool = False) -> OutputFolder:
        """Open the folder ``name`` inside this one (not a symlink), looked up through this descriptor.

        ``create``: make it first if it is missing. OutputError naming it if it cannot be made or opened.
        """
        path = self.path / _plain_name(name)
        if create:
            try:
                os.mkdir(_at(path, self.fd), **_fd_arg(self.fd))
            except FileExistsError:
                pass
            except OSError as exc:
                raise OutputError(path, f"cannot create the folder ({exc.strerror or exc})") from None
        folder = OutputFolder.__new__(OutputFolder)
        folder._open(path, False, self.fd)
        return folder

    def check_at_path(self) -> None:
        """Raise :class:`~maskrefine.errors.OutputError` unless :attr:`path`, looked up now, is this folder.

        A job checks its output folder by path, then opens it: this confirms the folder opened is the
        one checked (same device and inode), that is, the path did not change in between.
        """
        try:
            info = os.stat(self.path) if self.follow_symlinks else os.lstat(self.path)
            same = (info.st_dev, info.st_ino) == self.identity
        except OSError:
            same = False
        if not same:
            raise OutputError(
                self.path, "changed while the job was starting (renamed or re-pointed); nothing written"
            )

    def removed(self) -> bool:
        """Whether the folder opened was removed since: deleted (``rm -rf``), or deleted and made anew.

        Then nothing can be written through it any more (a new folder at :attr:`path` is another one).
        Asked of the descriptor (a removed folder has no link left); False where the platform writes by
        path, and once closed.
        """
        if self.fd is None or self.fd < 0:
            return False
        try:
            return os.fstat(self.fd).st_nlink == 0
        except OSError:  # pragma: no cover - an open descriptor can always be asked
            return False

    def write_bytes(self, name: str, data: bytes, *, overwrite: bool) -> Path:
        """Write ``data`` as the file ``name`` of this folder: :func:`write_bytes_atomic` through the folder.

        Returns the path of the file (:attr:`path` / ``name``), which messages name too.
        """
        overwrite = _checked_write_arguments(data, overwrite)
        return _write_atomic(self.path / _plain_name(name), data, overwrite, self.fd)

    def write_mask(self, name: str, mask: np.ndarray, fmt: MaskFormat = "png8", *, overwrite: bool) -> Path:
        """Write ``mask`` as the file ``name`` of this folder: :func:`write_mask` through the folder."""
        overwrite = check_flag(overwrite, "overwrite")
        path = self.path / _plain_name(name)
        return _write_atomic(path, _mask_file_bytes(path, mask, fmt), overwrite, self.fd)

    def remove_stale_temps(self, names: set[str], *, older_than: float = STALE_TEMP_S) -> list[Path]:
        """:func:`remove_stale_temps` in this folder, through its descriptor."""
        return _remove_stale_temps(self.path, names, older_than, self.fd)

    def close(self) -> None:
        """Close the descriptor (again: nothing). A write after this fails; it never goes by path."""
        if self.fd is not None and self.fd >= 0:
            self._closer()
            self.fd = -1  # EBADF from every later call (None would mean: by path)

    def __enter__(self) -> OutputFolder:
        """Return the folder; the ``with`` block closes it."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the descriptor."""
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the path and the folder's identity (a descriptor means nothing in another process)."""
        return {"path": self.path, "follow_symlinks": self.follow_symlinks, "identity": self.identity}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Open the folder again by path; OutputError naming it unless it is the same folder."""
        self._open(state["path"], state["follow_symlinks"], None)
        if self.identity != state["identity"]:
            self.close()
            raise OutputError(
                self.path,
                "is no longer the output folder the job checked and opened (renamed or re-pointed "
                "during the run); nothing written there",
            )

    def __repr__(self) -> str:
        """Return ``OutputFolder('<path>')``."""
        return f"OutputFolder({os.fspath(self.path)!r})"


def _plain_name(name: str) -> str:
    """``name`` when it names a file in a folder (no separator, not ``.`` or ``..``); else ValueError."""
    if not name or name in (".", "..") or os.sep in name or (os.altsep is not None and os.altsep in name):
        raise ValueError(f"not a plain file name: {short_repr(name)}")
    return name


def write_text_atomic(path: str | os.PathLike[str], text: str, *, overwrite: bool = True) -> Path:
    """Write ``text`` as UTF-8 to ``path``: the text version of :func:`write_bytes_atomic`.

    File names read with :func:`os.fsdecode` that are not valid UTF-8 (lone surrogates) are written as
    their original bytes (``surrogateescape``).

    Parameters
    ----------
    path : path-like
        The output file (see :func:`write_bytes_atomic`).
    text : str
        The complete contents, encoded as UTF-8.
    overwrite : bool, default True
        True: replace an existing regular file. False: never replace one (see :func:`write_bytes_atomic`).

    Returns
    -------
    Path
        ``path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    TypeError
        ``text`` is not a str; ``overwrite`` is not a bool.
    OutputExistsError
        ``overwrite=False`` and the file exists.
    OutputError
        The path is not a regular file, or writing failed; the message names the path.
    """
    if not isinstance(text, str):
        raise TypeError(f"`text` must be a str; got {type(text).__name__}")
    return write_bytes_atomic(path, text.encode("utf-8", "surrogateescape"), overwrite=overwrite)


def write_text_chunks_atomic(
    path: str | os.PathLike[str], chunks: Iterable[str], *, overwrite: bool = True
) -> Path:
    """:func:`write_text_atomic` of ``"".join(chunks)``, never held whole: each piece is written as made.

    A large text (a JSON report of a million files) is streamed into the temporary file, which is
    published only once the last piece is written: a reader, or a crash, sees no file, the previous file
    or the complete new one. An exception raised while a piece is made (e.g. a value JSON cannot hold)
    removes the temporary file and propagates as it is; nothing is published.

    Parameters
    ----------
    path : path-like
        The output file (see :func:`write_bytes_atomic`).
    chunks : iterable of str
        The pieces of the text, in order, each encoded as UTF-8 (``surrogateescape``, as
        :func:`write_text_atomic`).
    overwrite : bool, default True
        True: replace an existing regular file. False: never replace one (see :func:`write_bytes_atomic`).

    Returns
    -------
    Path
        ``path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    OutputExistsError
        ``overwrite=False`` and the file exists.
    OutputError
        The path is not a regular file, or writing failed; the message names the path.
    """
    overwrite = check_flag(overwrite, "overwrite")
    encoded = (chunk.encode("utf-8", "surrogateescape") for chunk in chunks)
    return _write_atomic(file_path(path), encoded, overwrite, None)


def _unit_codes(mask: np.ndarray, dtype: type[np.uint8] | type[np.uint16]) -> np.ndarray:
    """``rint(scale * clip(mask, 0, 1))`` as ``dtype``, ``scale`` its largest code (255 or 65535).

    The product is taken in float64, where it is exact for a float32 mask (a float32 product can round
    onto the other side of a half code). Clipping the product to [0, scale] equals scaling the clipped
    mask; done in place on the one float64 buffer, it is ~10x faster than ``np.clip`` then ``astype``
    (1.7 against 0.17 ms at 481x321).
    """
    scale = float(np.iinfo(dtype).max)
    codes = np.multiply(mask, scale, dtype=np.float64)
    np.clip(codes, 0.0, scale, out=codes)
    np.rint(codes, out=codes)
    return codes.astype(dtype)


def png8_codes(mask: np.ndarray) -> np.ndarray:
    """Return the uint8 codes that an 8-bit PNG of the float mask ``mask`` stores: ``rint(255 * clip)``."""
    return _unit_codes(mask, np.uint8)


def encode_mask(mask: np.ndarray, fmt: MaskFormat = "png8") -> bytes:
    """Encode a float mask in [0, 1] as PNG (8/16-bit, rounded after clipping) or ``.npy`` float32 bytes.

    Values within the [0, 1] tolerance are clipped in every format (a new array: ``mask`` is not modified).
    """
    if fmt == "npy":
        buffer = io.BytesIO()
        unit = np.clip(np.asarray(mask, dtype=np.float32), np.float32(0.0), np.float32(1.0))
        np.save(buffer, np.ascontiguousarray(unit), allow_pickle=False)
        return buffer.getvalue()
    if fmt == "png8":
        pixels = png8_codes(mask)
    elif fmt == "png16":
        pixels = _unit_codes(mask, np.uint16)
    else:
        raise ValueError(f"`fmt` must be one of {', '.join(MASK_FORMATS)}; got {short_repr(fmt)}")
    ok, encoded = cv2.imencode(".png", pixels)
    if not ok:  # pragma: no cover - cv2 only fails here on invalid arrays
        raise ValueError("cv2.imencode failed to encode the mask as PNG")
    data = encoded.tobytes()
    # Mark the file with its scale, so that reading it back never takes a faint mask (largest code 1, or a
    # 16-bit file whose codes stay <= 255) for a 0/1 or 8-bit-valued one: see read_mask_file.
    marker = png_text_chunk(SCALE_KEYWORD, _SCALE_MARKS[fmt][0])
    end_of_ihdr = 8 + 25  # signature, then the IHDR chunk (4 length + 4 type + 13 data + 4 CRC)
    return data[:end_of_ihdr] + marker + data[end_of_ihdr:]


def write_mask(
    path: str | os.PathLike[str], mask: np.ndarray, fmt: MaskFormat = "png8", *, overwrite: bool = True
) -> Path:
    """Write ``mask`` (float, [0, 1]) to ``path`` atomically in format ``fmt`` (png8, png16, npy).

    Parameters
    ----------
    path : path-like
        The output file; written through a temporary file in its folder (:func:`write_bytes_atomic`).
    mask : ndarray of float, shape (H, W)
        Mask in [0, 1]; values at most 1e-6 outside [0, 1] are accepted and clipped (in every format).
    fmt : {"png8", "png16", "npy"}, default "png8"
        ``"png8"`` / ``"png16"``: a gray PNG of ``rint(255 · clip(mask, 0, 1))`` /
        ``rint(65535 · clip(mask, 0, 1))``, marked with its scale so that :func:`read_mask_file` reads it
        back on that scale; ``"npy"``: the mask as float32.
    overwrite : bool, default True
        True: replace an existing regular file. False: never replace one (see :func:`write_bytes_atomic`).

    Returns
    -------
    Path
        ``path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    TypeError
        ``mask`` is not a floating-point array (an 8-bit or bool mask is ambiguous: convert it to [0, 1]
        floats first), ``overwrite`` is not a bool.
    ValueError
        ``mask`` is not 2-D (H, W), is empty, holds NaN or infinite values or values outside [0, 1] by
        more than 1e-6; an unknown ``fmt``; a ``path`` whose suffix is not the format's (``.png`` for
        png8/png16, ``.npy`` for npy; any case): the readers pick the decoder by suffix, so such a file
        could not be read back.
    OutputExistsError
        ``overwrite=False`` and the file exists.
    OutputError
        The path is not a regular file, or writing failed; the message names the path.
    """
    overwrite = check_flag(overwrite, "overwrite")
    encoded = _mask_file_bytes(path, mask, fmt)
    return _write_atomic(file_path(path), encoded, overwrite, None)


def _mask_file_bytes(path: str | os.PathLike[str], mask: np.ndarray, fmt: MaskFormat) -> bytes:
    """Return the bytes :func:`write_mask` writes at ``path`` (``mask`` and ``path``'s suffix checked)."""
    encoded = encode_mask(check_mask_to_write(mask), fmt)  # checks fmt before the path's suffix
    target = file_path(path)
    suffix = MASK_SUFFIXES[fmt]
    if target.suffix.lower() != suffix:
        raise ValueError(
            f"`path` {short_repr(os.fspath(path))}: format {fmt!r} is written as a {suffix} file, but the "
            + (f"name ends in {target.suffix!r}" if target.suffix else "name has no suffix")
            + f"; name it {target.stem + suffix!r} (the readers choose the decoder by suffix)"
        )
    return encoded


def check_mask_to_write(mask: object) -> np.ndarray:
    """Return ``mask`` as a float array if it is a finite (H, W) mask in [0, 1] (within the tolerance)."""
    array = as_float_array(mask, "mask")  # floats only, finite
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"`mask` must be a non-empty 2-D (H, W) array; got shape {array.shape}")
    check_unit_interval(array, "mask")
    return array
