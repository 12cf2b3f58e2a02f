"""File I/O: folder pairing, image/mask reading, atomic writing. No maths here."""

from maskrefine.io.imageio import (
    read_image,
    read_mask,
    read_mask_array,
    write_bytes_atomic,
    write_mask,
    write_text_atomic,
)
from maskrefine.io.pairs import IMAGE_EXTENSIONS, MASK_EXTENSIONS, Pair, Pairing, match_folders

__all__ = [
    "IMAGE_EXTENSIONS",
    "MASK_EXTENSIONS",
    "Pair",
    "Pairing",
    "match_folders",
    "read_image",
    "read_mask",
    "read_mask_array",
    "write_mask",
    "write_bytes_atomic",
    "write_text_atomic",
]
