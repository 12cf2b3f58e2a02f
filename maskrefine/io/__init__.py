"""File I/O: folder pairing, image/mask reading, atomic writing. No maths here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from maskrefine._lazy import lazy_attributes
from maskrefine.io.options import DEFAULT_MAX_PIXELS, MASK_SCALES, PLAIN
from maskrefine.io.pairs import IMAGE_EXTENSIONS, MASK_EXTENSIONS, Pair, Pairing, Skipped, match_folders

if TYPE_CHECKING:
    # For type checkers only: at run time these names are imported on first use (below).
    from maskrefine.io.imageio import (
        MaskRead,
        ReadOptions,
        read_image,
        read_image_size,
        read_mask,
        read_mask_array,
        read_mask_file,
        write_bytes_atomic,
        write_mask,
        write_text_atomic,
    )

# imageio needs OpenCV: imported on first use (see maskrefine._lazy).
_SOURCES = {
    "MaskRead": "maskrefine.io.imageio",
    "ReadOptions": "maskrefine.io.imageio",
    "read_image": "maskrefine.io.imageio",
    "read_image_size": "maskrefine.io.imageio",
    "read_mask": "maskrefine.io.imageio",
    "read_mask_array": "maskrefine.io.imageio",
    "read_mask_file": "maskrefine.io.imageio",
    "write_bytes_atomic": "maskrefine.io.imageio",
    "write_mask": "maskrefine.io.imageio",
    "write_text_atomic": "maskrefine.io.imageio",
}

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
    "read_image_size",
    "read_mask",
    "read_mask_array",
    "read_mask_file",
    "write_mask",
    "write_bytes_atomic",
    "write_text_atomic",
]

if not TYPE_CHECKING:  # a type checker sees the imports above, and flags any other name as missing
    __getattr__, __dir__ = lazy_attributes(__name__, _SOURCES, globals())
