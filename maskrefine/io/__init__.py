"""File I/O: folder pairing, image/mask reading, atomic writing. No maths here."""

from maskrefine._lazy import lazy_attributes
from maskrefine.io.pairs import IMAGE_EXTENSIONS, MASK_EXTENSIONS, Pair, Pairing, match_folders

# imageio needs OpenCV: imported on first use (see maskrefine._lazy).
_SOURCES = {
    "read_image": "maskrefine.io.imageio",
    "read_mask": "maskrefine.io.imageio",
    "read_mask_array": "maskrefine.io.imageio",
    "write_bytes_atomic": "maskrefine.io.imageio",
    "write_mask": "maskrefine.io.imageio",
    "write_text_atomic": "maskrefine.io.imageio",
}

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

__getattr__, __dir__ = lazy_attributes(__name__, _SOURCES, globals())
