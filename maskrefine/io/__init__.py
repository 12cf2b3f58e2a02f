"""File I/O: folder pairing, image/mask reading, atomic writing. No maths here."""

from maskrefine.io.imageio import (
    MaskRead,
    ReadOptions,
    read_image,
    read_mask,
    read_mask_array,
    read_mask_file,
    write_bytes_atomic,
    write_mask,
    write_text_atomic,
)
from maskrefine.io.options import DEFAULT_MAX_PIXELS, MASK_SCALES, PLAIN
from maskrefine.io.pairs import IMAGE_EXTENSIONS, MASK_EXTENSIONS, Pair, Pairing, Skipped, match_folders

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "MASK_EXTENSIONS",
    "MASK_SCALES",
    "PLAIN",
    "MaskRead",
    "ReadOptions",
    "Pair",
    "Pairing",
    "Skipped",
    "match_folders",
    "read_image",
    "read_mask",
    "read_mask_array",
    "read_mask_file",
    "write_mask",
    "write_bytes_atomic",
    "write_text_atomic",
]
