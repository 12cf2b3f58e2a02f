"""Read an image file's size from its header, before anything is decoded.

The folder jobs use this to refuse an image that would decode to more than ``max_pixels`` pixels (a
950 KB PNG can claim 30000 x 30000) and a file that is not an image at all, reading only a few bytes at
known offsets. Formats: PNG (IHDR), JPEG (the SOF segment, found by walking the marker segments), BMP
(the DIB header), TIFF and BigTIFF (the first IFD's ImageWidth / ImageLength) and WebP (VP8, VP8L, VP8X).
The format is recognised by its signature, never by the file name.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = [
    "ImageHeader",
    "HeaderError",
    "read_image_header",
    "png_text_chunk",
    "png_text",
    "png_is_animated",
    "SIGNATURE_BYTES",
    "FORMAT_NAMES",
]

#: Bytes at the start of a file that are enough to recognise every supported format.
SIGNATURE_BYTES = 32
#: Human names of the formats, for messages.
FORMAT_NAMES = "PNG, JPEG, BMP, TIFF or WebP"

#: JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic; not DHT/JPG/DAC).
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
#: JPEG markers without a length field.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_MAX_JPEG_SEGMENTS = 10_000
_MAX_TIFF_ENTRIES = 10_000

ReadAt = Callable[[int, int], bytes]


class HeaderError(ValueError):
    """The header is missing, truncated or not of a supported format (the message says which)."""


@dataclass(frozen=True, slots=True)
class ImageHeader:
    """What the header says about an image.

    Attributes
    ----------
    format : str
        ``"png"``, ``"jpeg"``, ``"bmp"``, ``"tiff"`` or ``"webp"``.
    width, height : int
        Size in pixels as stored (before any EXIF rotation; the pixel count is the same).
    png_color_type : int or None
        PNG colour type (0 gray, 2 RGB, 3 palette, 4 gray + alpha, 6 RGBA); None for other formats.
    tiff_samples : int or None
        TIFF SamplesPerPixel of the first image (1 when the tag is absent; 2 is gray + alpha); None for
        other formats.
    png_bit_depth : int or None
        PNG bits per sample (or per palette index): 1, 2, 4, 8 or 16; None for other formats.
    """

    format: str
    width: int
    height: int
    png_color_type: int | None = None
    tiff_samples: int | None = None
    png_bit_depth: int | None = None

    @property
    def pixels(self) -> int:
        """Number of pixels, ``width * height``."""
        return self.width * self.height


def _exact(read_at: ReadAt, offset: int, count: int, what: str) -> bytes:
    data = read_at(offset, count)
    if len(data) < count:
        raise HeaderError(f"truncated {what} header")
    return data


def read_image_header(read_at: ReadAt) -> ImageHeader:
    """Parse the header of an image file.

    Parameters
    ----------
    read_at : callable
        ``read_at(offset, count)`` returns up to ``count`` bytes of the file from ``offset`` (fewer at
        the end of the file), e.g. ``lambda o, n: os.pread(fd, n, o)``.

    Returns
    -------
    ImageHeader

    Raises
    ------
    HeaderError
        If the signature is not one of the supported formats or the header is truncated or invalid.
    """
    head = read_at(0, SIGNATURE_BYTES)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        header = _png(read_at)
    elif head.startswith(b"\xff\xd8"):
        header = _jpeg(read_at)
    elif head.startswith(b"BM"):
        header = _bmp(read_at)
    elif head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        header = _tiff(read_at, head)
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        header = _webp(read_at)
    else:
        raise HeaderError(f"not a {FORMAT_NAMES} file (starts with {head[:8]!r})")
    if header.width <= 0 or header.height <= 0:
        raise HeaderError(
            f"{header.format.upper()} header gives an empty size {header.width}x{header.height}"
        )
    return header


def _png(read_at: ReadAt) -> ImageHeader:
    chunk = _exact(read_at, 8, 18, "PNG")
    length, kind = struct.unpack(">I4s", chunk[:8])
    if kind != b"IHDR" or length != 13:
        raise HeaderError("PNG without an IHDR header chunk")
    width, height, depth, color_type = struct.unpack(">IIBB", chunk[8:18])
    return ImageHeader("png", width, height, png_color_type=color_type, png_bit_depth=depth)


def _jpeg(read_at: ReadAt) -> ImageHeader:
    offset = 2
    for _ in range(_MAX_JPEG_SEGMENTS):
        prefix = _exact(read_at, offset, 2, "JPEG")
        if prefix[0] != 0xFF:
            raise HeaderError(f"JPEG marker expected at byte {offset}")
        marker = prefix[1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        if marker in _JPEG_STANDALONE:
            offset += 2
            continue
        if marker in (0xD9, 0xDA):
            raise HeaderError("JPEG without a frame header before the image data")
        (length,) = struct.unpack(">H", _exact(read_at, offset + 2, 2, "JPEG"))
        if length < 2:
            raise HeaderError(f"JPEG segment with invalid length {length} at byte {offset}")
        if marker in _JPEG_SOF:
            frame = _exact(read_at, offset + 4, 5, "JPEG frame")
            _precision, height, width = struct.unpack(">BHH", frame)
            if height == 0:
                raise HeaderError("JPEG whose height is only given after the image data (DNL)")
            return ImageHeader("jpeg", width, height)
        offset += 2 + length
    raise HeaderError("JPEG with too many segments before the frame header")


def _bmp(read_at: ReadAt) -> ImageHeader:
    dib = _exact(read_at, 14, 4, "BMP")
    (dib_size,) = struct.unpack("<I", dib)
    if dib_size == 12:  # OS/2 BITMAPCOREHEADER
        width, height = struct.unpack("<HH", _exact(read_at, 18, 4, "BMP"))
    elif dib_size >= 40:
        width, height = struct.unpack("<ii", _exact(read_at, 18, 8, "BMP"))
    else:
        raise HeaderError(f"BMP with an unknown header size {dib_size}")
    return ImageHeader("bmp", width, abs(height))


def _tiff(read_at: ReadAt, head: bytes) -> ImageHeader:
    order = "<" if head[:2] == b"II" else ">"
    big = head[2:4] in (b"+\x00", b"\x00+")
    if big:
        (ifd,) = struct.unpack(order + "Q", _exact(read_at, 8, 8, "BigTIFF"))
        count_fmt, entry_size, value_fmt = "Q", 20, "Q"
    else:
        (ifd,) = struct.unpack(order + "I", _exact(read_at, 4, 4, "TIFF"))
        count_fmt, entry_size, value_fmt = "H", 12, "I"
    count_size = struct.calcsize(count_fmt)
    (count,) = struct.unpack(order + count_fmt, _exact(read_at, ifd, count_size, "TIFF directory"))
    if count > _MAX_TIFF_ENTRIES:
        raise HeaderError(f"TIFF directory with {count} entries")
    entries = _exact(read_at, ifd + count_size, count * entry_size, "TIFF directory")
    found: dict[int, int] = {}
    for index in range(count):
        entry = entries[index * entry_size : (index + 1) * entry_size]
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag not in (256, 257, 277):  # ImageWidth, ImageLength, SamplesPerPixel
            continue
        value = entry[4 + struct.calcsize(value_fmt) :]
        if kind == 3:  # SHORT
            (found[tag],) = struct.unpack(order + "H", value[:2])
        elif kind == 4:  # LONG
            (found[tag],) = struct.unpack(order + "I", value[:4])
        elif kind == 16 and big:  # LONG8
            (found[tag],) = struct.unpack(order + "Q", value[:8])
        else:
            raise HeaderError(f"TIFF size tag {tag} of unexpected type {kind}")
    if 256 not in found or 257 not in found:
        raise HeaderError("TIFF without ImageWidth / ImageLength tags")
    return ImageHeader("tiff", found[256], found[257], tiff_samples=found.get(277, 1))


def _webp(read_at: ReadAt) -> ImageHeader:
    chunk = _exact(read_at, 12, 8, "WebP")
    kind = chunk[:4]
    if kind == b"VP8 ":
        frame = _exact(read_at, 20, 10, "WebP VP8")
        if frame[3:6] != b"\x9d\x01\x2a":
            raise HeaderError("WebP VP8 frame without its start code")
        width, height = struct.unpack("<HH", frame[6:10])
        return ImageHeader("webp", width & 0x3FFF, height & 0x3FFF)
    if kind == b"VP8L":
        frame = _exact(read_at, 20, 5, "WebP VP8L")
        if frame[0] != 0x2F:
            raise HeaderError("WebP VP8L frame without its signature")
        (bits,) = struct.unpack("<I", frame[1:5])
        return ImageHeader("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if kind == b"VP8X":
        canvas = _exact(read_at, 24, 6, "WebP VP8X")
        width = int.from_bytes(canvas[0:3], "little") + 1
        height = int.from_bytes(canvas[3:6], "little") + 1
        return ImageHeader("webp", width, height)
    raise HeaderError(f"WebP with an unknown first chunk {kind!r}")


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_text_chunk(keyword: bytes, text: bytes) -> bytes:
    """Return a PNG ``tEXt`` chunk (length, type, keyword + NUL + text, CRC-32) to insert after IHDR."""
    import zlib

    payload = b"tEXt" + keyword + b"\0" + text
    return struct.pack(">I", len(payload) - 4) + payload + struct.pack(">I", zlib.crc32(payload))


def png_truncation(data: bytes) -> str | None:
    """Say how a whole PNG file ``data`` is cut short (a chunk runs past its end, or no IEND), else None.

    Only the chunk headers are walked (no decoding, no CRC): the check lets the reader name a truncated
    PNG itself instead of leaving it to libpng, which prints its own line on stderr. None for non-PNG data.
    """
    if not data.startswith(_PNG_SIGNATURE):
        return None
    for position, length, kind in _png_chunks(data):
        if position + 12 + length > len(data):
            kind_text = kind.decode("latin-1")
            return f"truncated PNG: its {kind_text!r} chunk at byte {position} runs past the end of the file"
        if kind == b"IEND":
            return None
    return "truncated PNG: the file ends before its IEND chunk"


def png_is_animated(data: bytes) -> bool:
    """Whether the PNG file ``data`` is an animated PNG (an ``acTL`` chunk before its image data).

    OpenCV decodes an APNG's first animation frame, which need not be the still image (``IDAT``) that
    libpng, Pillow and ``cv2.imread`` return. Only chunk headers are walked; False for non-PNG data.
    """
    if not data.startswith(_PNG_SIGNATURE):
        return False
    for _position, _length, kind in _png_chunks(data):
        if kind == b"acTL":
            return True
        if kind in (b"IDAT", b"IEND"):
            return False
    return False


def _png_chunks(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """``(offset, data length, type)`` of each chunk header of a PNG file, in order, while one fits."""
    position = len(_PNG_SIGNATURE)
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        yield position, length, kind
        position += 12 + length


def png_text(data: bytes, keyword: bytes) -> bytes | None:
    """Return the text of the first ``tEXt`` chunk named ``keyword`` before the image data, else None.

    ``data`` is a whole PNG file; only chunk headers are walked (no decoding), and a file that is not a
    PNG, or is cut short, simply has no text.
    """
    if not data.startswith(_PNG_SIGNATURE):
        return None
    for position, length, kind in _png_chunks(data):
        if kind in (b"IDAT", b"IEND"):
            return None
        if kind == b"tEXt":
            name, _, text = data[position + 8 : position + 8 + length].partition(b"\0")
            if name == keyword:
                return text
    return None
