"""The reading options of the folder jobs and their checks.

No OpenCV here: the CLI imports this for its option defaults without loading the readers.
"""

from __future__ import annotations

import numbers

from maskrefine._checks import short_repr

__all__ = ["DEFAULT_MAX_PIXELS", "MASK_SCALES", "PLAIN", "check_mask_scale", "check_max_pixels"]

#: Default of ``max_pixels`` (``--max-pixels``): 100 megapixels. A file whose header claims more is
#: refused before it is decoded (decoding 100 MP of RGB float32 already takes 1.2 GB).
DEFAULT_MAX_PIXELS = 100_000_000
#: Values of ``mask_scale`` (``--mask-scale``): what value of an integer mask file means "foreground".
MASK_SCALES: tuple[str, ...] = ("auto", "255", "1", "65535")
#: The encoding of a mask file stored the plain way (gray 8- or 16-bit PNG using its range, float .npy).
PLAIN = "plain"
#: The encoding of a 16-bit file whose largest value is 2..255: read as 8-bit (v/255), masks and images alike.
EIGHT_BIT_IN_16 = "8-bit values in a 16-bit file"


def check_max_pixels(max_pixels: object) -> int | None:
    """Return ``max_pixels`` as an int >= 1, or None (no limit); raise ``ValueError``/``TypeError``."""
    if max_pixels is None:
        return None
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, numbers.Integral):
        raise TypeError(f"`max_pixels` must be a positive integer or None; got {short_repr(max_pixels)}")
    if max_pixels < 1:
        raise ValueError(f"`max_pixels` must be >= 1 (or None for no limit); got {short_repr(max_pixels)}")
    return int(max_pixels)


def check_mask_scale(mask_scale: object) -> str:
    """Return ``mask_scale`` as one of :data:`MASK_SCALES` (integers 255, 1, 65535 accepted), or raise.

    Any integer type is accepted (``np.int64(255)`` as ``255``), bools are not.
    """
    text: str | None = None
    if isinstance(mask_scale, str):
        text = mask_scale
    elif isinstance(mask_scale, numbers.Integral) and not isinstance(mask_scale, bool):  # np.bool_ isn't
        value = int(mask_scale)
        if 0 <= value <= 65535:
            text = str(value)  # bounded: str() of an int beyond Python's digit limit raises
    if text not in MASK_SCALES:
        raise ValueError(
            f"`mask_scale` must be one of {', '.join(MASK_SCALES)}; got {short_repr(mask_scale)}"
        )
    return text
