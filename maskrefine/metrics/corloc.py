"""CorLoc for single-object discovery (docs/corloc.md): mask → box, GT boxes from VOC / COCO / masks.

Boxes are ``(x1, y1, x2, y2)`` in continuous 0-based half-open pixel coordinates (float64). A pixel
mask's component spanning columns ``xmin..xmax`` and rows ``ymin..ymax`` gives
``(xmin, ymin, xmax + 1, ymax + 1)``, times ``scale`` for token-resolution masks.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple, cast

import numpy as np
import numpy.typing as npt

from maskrefine._checks import (
    check_choice,
    check_flag,
    check_float_range,
    check_row_name,
    is_one_of,
    plain_ndarray,
    real_to_float,
    short_repr,
    unit_interval_problem,
)
from maskrefine.errors import InputError, parse_problem
from maskrefine.io.files import open_regular, read_exactly


def _ndimage() -> Any:
    """scipy.ndimage, imported on first use (keeps ``maskrefine --help`` light)."""
    from scipy import ndimage

    return ndimage


__all__ = [
    "SELECTORS",
    "box_iou",
    "mask_to_box",
    "boxes_from_mask",
    "read_voc_boxes",
    "read_coco_boxes",
    "read_seeds",
    "read_seed_maps",
    "CorLocEvaluator",
    "corloc",
]

SELECTORS = ("largest_box", "largest_cc", "seed_cc")
Selector = Literal["largest_box", "largest_cc", "seed_cc"]


def _scale(scale: object) -> float:
    """``scale`` (pixels per mask cell) as a float in (0, :data:`MAX_COORDINATE`], or raise.

    A larger scale puts every box beyond the coordinates a box may have (near 1e308 it overflows to
    ``inf`` and the IoU to NaN).
    """
    real = isinstance(scale, numbers.Real) and not isinstance(scale, bool)
    value = real_to_float(cast(numbers.Real, scale)) if real else math.nan  # a huge int: inf
    if not (math.isfinite(value) and 0 < value <= MAX_COORDINATE):
        raise ValueError(
            f"`scale` must be a finite number in (0, {MAX_COORDINATE:g}]; got {short_repr(scale)}"
        )
    return value


def _pair(value: object, name: str, *, low: int) -> tuple[int, int]:
    """``value`` as two integers >= ``low`` (a seed (row, col) or an image size (H, W)), or raise."""
    if not isinstance(value, (tuple, list, np.ndarray)) or len(value) != 2:
        raise TypeError(f"`{name}` must be a pair of integers; got {short_repr(value)}")
    out = []
    for v in value:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
            raise TypeError(f"`{name}` must be a pair of integers; got {short_repr(value)}")
        if v < low:
            raise ValueError(f"`{name}` values must be >= {low}; got {short_repr(value)}")
        out.append(int(v))
    return out[0], out[1]


def _structure(connectivity: int) -> np.ndarray:
    if not isinstance(connectivity, numbers.Integral) or isinstance(connectivity, bool):  # an array's == is
        raise ValueError(f"`connectivity` must be 4 or 8; got {short_repr(connectivity)}")  # elementwise
    if connectivity == 4:
        return _ndimage().generate_binary_structure(2, 1)
    if connectivity == 8:
        return np.ones((3, 3), bool)
    raise ValueError(f"`connectivity` must be 4 or 8; got {short_repr(connectivity)}")


def _threshold(threshold: object) -> float:
    """``threshold`` (binarisation of float masks, ``>``) as a float in [0, 1], or raise."""
    return check_float_range(threshold, "threshold", 0.0, 1.0)


def _binary(mask: object, name: str, threshold: object) -> np.ndarray:
    thr = _threshold(threshold)
    mask = plain_ndarray(mask)  # a masked array's hidden values are checked too: they are computed on
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"`{name}` must be a NumPy array (H, W); got {type(mask).__name__}")
    if mask.ndim != 2:
        raise ValueError(f"`{name}` must be 2-D (H, W); got shape {mask.shape}")
    if mask.size == 0:
        raise ValueError(f"`{name}` must not be empty; got shape {mask.shape}")
    if mask.dtype == np.bool_:
        return mask
    if mask.dtype == np.uint8:
        return mask > thr * 255
    if np.issubdtype(mask.dtype, np.floating):
        problem = unit_interval_problem(float(mask.min()), float(mask.max()))
        if problem is not None:
            raise ValueError(
                f"`{name}` must have finite values in [0, 1] when floating; {problem}. "
                "Pass 8-bit masks as uint8 (0..255)."
            )
        return mask > thr
    if np.issubdtype(mask.dtype, np.integer):  # a label map: nonzero is foreground
        return mask != 0
    raise TypeError(
        f"`{name}` must be bool, uint8 (0..255), float in [0, 1] or another integer type (nonzero is "
        f"foreground); got dtype {mask.dtype}"
    )


def _boxes(value: object, name: str, *, single: bool = False) -> npt.NDArray[np.float64]:
    """``value`` as float64 boxes (K, 4) (``single``: one box, shape (4,)), or raise naming ``name``.

    Refused: anything that is not real numbers (complex, str), another shape (no silent reshaping: 8
    numbers are not two boxes), NaN/inf or a coordinate beyond ±:data:`MAX_COORDINATE`, an inverted box
    (x2 < x1 or y2 < y1). A (K, 4) argument may also be one box of shape (4,), or empty.
    """
    try:
        given = np.asarray(value)
        if given.dtype.kind not in "biufO":  # complex would lose its imaginary part with only a warning
            raise TypeError(f"dtype {given.dtype} is not real numbers")
        arr = given.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"`{name}` must be numbers (x1, y1, x2, y2){'' if single else ' per box'}; got "
            f"{short_repr(value)} ({type(exc).__name__}: {exc})"
        ) from None
    if single:
        if arr.shape == (1, 4):
            arr = arr.reshape(4)
        if arr.shape != (4,):
            raise ValueError(f"`{name}` must have shape (4,): (x1, y1, x2, y2); got {short_repr(value)}")
    elif arr.size == 0:
        arr = arr.reshape(0, 4)
    elif arr.shape == (4,):
        arr = arr.reshape(1, 4)
    elif arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"`{name}` must have shape (K, 4); got shape {arr.shape}")
    if arr.size:
        if not np.isfinite(arr).all() or float(np.abs(arr).max()) > MAX_COORDINATE:
            raise ValueError(
                f"`{name}` must hold finite pixel coordinates within ±{MAX_COORDINATE:g}; got "
                f"{short_repr(arr.tolist())}"
            )
        flat = arr.reshape(-1, 4)
        inverted = (flat[:, 2] < flat[:, 0]) | (flat[:, 3] < flat[:, 1])
        if inverted.any():
            bad = flat[int(np.argmax(inverted))].tolist()
            raise ValueError(f"`{name}` holds an inverted box {bad} (need x1 <= x2 and y1 <= y2)")
    return arr


#: The ``eps`` of TokenCut's ``bbox_iou`` (from YOLOv5): :func:`box_iou`'s default, and CorLoc's.
BOX_IOU_EPS = 1e-7


def _check_iou_dtype(value: object, name: str) -> None:
    """Refuse (ValueError) an IoU arithmetic other than ``"float64"`` or ``"float32"``, naming ``name``."""
    if not isinstance(value, str) or value not in ("float64", "float32"):  # an array's `in` is "ambiguous"
        raise ValueError(f"`{name}` must be 'float64' or 'float32'; got {short_repr(value)}")


def box_iou(
    box: npt.ArrayLike,
    boxes: npt.ArrayLike,
    eps: float = BOX_IOU_EPS,
    dtype: Literal["float64", "float32"] = "float64",
) -> npt.NDArray[np.float64]:
    """IoU of one box with K boxes, exactly as TokenCut's ``bbox_iou`` (from YOLOv5).

    Parameters
    ----------
    box : array_like, shape (4,)
        ``(x1, y1, x2, y2)``.
    boxes : array_like, shape (K, 4)
    eps : float
        ``union = w1 (h1 + eps) + w2 (h2 + eps) - inter + eps``; no "+1" pixel convention.
    dtype : {"float64", "float32"}
        ``"float32"``: TokenCut's and FOUND's arithmetic on integer boxes held as torch integer tensors —
        widths, heights and the intersection are exact, every operation involving ``eps`` and the final
        division are float32, in the reference's order. There an IoU of exactly 1/2 stays 0.5 (a hit at
        ``>= 0.5``), while float64 gives 0.49999999.

    Returns
    -------
    ndarray of float64, shape (K,)
        NaN where the union is 0 (two empty boxes, only with ``eps=0``: 0 / 0, as in the reference).

    Raises
    ------
    TypeError, ValueError
        ``box`` not of shape (4,) or ``boxes`` not of shape (K, 4) (one box of shape (4,) is also
        accepted), a coordinate that is not a finite number within ±1e7, an inverted box (x2 < x1 or
        y2 < y1), ``eps`` not a finite number in [0, 1], an unknown ``dtype``.

    Examples
    --------
    >>> np.round(box_iou([0, 0, 2, 2], [[1, 0, 3, 2], [0, 0, 2, 2]]), 6)
    array([0.333333, 1.      ])
    >>> float(box_iou([0, 0, 20, 10], [[0, 0, 10, 10]], dtype="float32")[0])
    0.5
    """
    _check_iou_dtype(dtype, "dtype")
    eps = check_float_range(eps, "eps", 0.0, 1.0)
    b1 = _boxes(box, "box", single=True)
    b2 = _boxes(boxes, "boxes")
    return _box_iou(b1, b2, eps, dtype)


def _box_iou(
    b1: npt.NDArray[np.float64], b2: npt.NDArray[np.float64], eps: float, dtype: str
) -> npt.NDArray[np.float64]:
    """:func:`box_iou` on checked boxes (4,) and (K, 4)."""
    iw = np.clip(np.minimum(b1[2], b2[:, 2]) - np.maximum(b1[0], b2[:, 0]), 0, None)
    ih = np.clip(np.minimum(b1[3], b2[:, 3]) - np.maximum(b1[1], b2[:, 1]), 0, None)
    inter = iw * ih
    if dtype == "float32":
        f = np.float32
        e = f(eps)
        w1_32, h1_32 = f(b1[2] - b1[0]), f(b1[3] - b1[1]) + e
        w2_32, h2_32 = (b2[:, 2] - b2[:, 0]).astype(f), (b2[:, 3] - b2[:, 1]).astype(f) + e
        union_32 = ((w1_32 * h1_32 + w2_32 * h2_32) - inter.astype(f)) + e
        with np.errstate(invalid="ignore"):  # 0 / 0 = NaN: two empty boxes with eps = 0, as the reference
            return (inter.astype(f) / union_32).astype(np.float64)
    w1, h1 = b1[2] - b1[0], b1[3] - b1[1] + eps
    w2, h2 = b2[:, 2] - b2[:, 0], b2[:, 3] - b2[:, 1] + eps
    union = w1 * h1 + w2 * h2 - inter + eps
    with np.errstate(invalid="ignore"):
        return inter / union


def _component_boxes(labels: np.ndarray, n: int) -> np.ndarray:
    """(n, 4) pixel boxes (xmin, ymin, xmax + 1, ymax + 1) of labels 1..n."""
    out = np.zeros((n, 4), np.float64)
    for i, sl in enumerate(_ndimage().find_objects(labels, max_label=n)):
        if sl is not None:
            out[i] = (sl[1].start, sl[0].start, sl[1].stop, sl[0].stop)
    return out


def mask_to_box(
    mask: np.ndarray,
    selector: Selector = "largest_box",
    *,
    connectivity: int = 8,
    scale: float = 1,
    seed: tuple[int, int] | None = None,
    image_size: tuple[int, int] | None = None,
    threshold: float = 0.5,
) -> np.ndarray | None:
    """Box of one connected component of a mask, or ``None`` when there is no foreground.

    Under ``"seed_cc"`` there is always a box: the seed's region, as TokenCut's and LOST's
    ``detect_box`` take it -- a seed cell on background (label 0) gives the box of *every* background
    cell, an all-background mask the whole grid (those methods never make either, their seed lies in
    their mask by construction, but a refined mask can lose it).

    Parameters
    ----------
    mask : ndarray, shape (h, w)
        bool, uint8 (> 127.5) or float (> ``threshold``); at token or pixel resolution.
    selector : {"largest_box", "largest_cc", "seed_cc"}
        Component with the largest bounding-box area (the paper, App. B.2; ties → lowest label), the
        largest pixel count (FOUND, Deep Spectral), or the one containing ``seed`` (TokenCut, LOST).
    connectivity : {4, 8}
    scale : float
        Pixels per mask cell (the patch size for token masks; 1 for pixel masks).
    seed : (row, col), optional
        In mask cells; required by ``"seed_cc"``. A seed on background gives the background's box.
    image_size : (H, W), optional
        Clip x2 to W and y2 to H after scaling (TokenCut/LOST).
    threshold : float
        Binarisation of float masks.

    Returns
    -------
    ndarray of float64, shape (4,), or None

    Examples
    --------
    >>> m = np.zeros((4, 6), bool); m[0, 0] = True; m[1:3, 2:6] = True
    >>> mask_to_box(m)
    array([2., 1., 6., 3.])
    >>> mask_to_box(m, "seed_cc", connectivity=4, seed=(3, 0))  # on background: TokenCut's box
    array([0., 0., 6., 4.])
    """
    return _mask_box(mask, selector, connectivity, scale, seed, image_size, threshold)[0]


def _mask_box(
    mask: np.ndarray,
    selector: object,
    connectivity: int,
    scale: float,
    seed: tuple[int, int] | None,
    image_size: tuple[int, int] | None,
    threshold: float,
) -> tuple[np.ndarray | None, bool]:
    """:func:`mask_to_box`, and whether the box is a foreground component's (False: none, or background)."""
    if not is_one_of(selector, SELECTORS):
        raise ValueError(
            f"`selector` must be one of {', '.join(map(repr, SELECTORS))}; got {short_repr(selector)}"
        )
    scale = _scale(scale)
    structure = _structure(connectivity)
    if seed is not None:
        if selector != "seed_cc":
            raise ValueError(
                f"`seed` only applies to selector 'seed_cc'; got seed {short_repr(seed)} with {selector!r}"
            )
        seed = _pair(seed, "seed", low=0)
    if image_size is not None:
        image_size = _pair(image_size, "image_size", low=1)
    if selector == "seed_cc" and seed is None:
        raise ValueError("`seed` (row, col) is required by selector 'seed_cc'; got None")
    fg = _binary(mask, "mask", threshold)
    if seed is not None and not (0 <= seed[0] < fg.shape[0] and 0 <= seed[1] < fg.shape[1]):
        raise ValueError(f"`seed` must lie inside the mask of shape {fg.shape}; got {short_repr(seed)}")
    labels, n = _ndimage().label(fg, structure=structure)
    if seed is not None:  # seed_cc: the seed's region, background (label 0) included, as detect_box
        label = int(labels[seed[0], seed[1]])
        region = (labels == label).astype(np.int32)  # one label 1: the region holds the seed
        return _scaled_box(_component_boxes(region, 1)[0], scale, image_size), label != 0
    if n == 0:
        return None, False
    boxes = _component_boxes(labels, n)
    if selector == "largest_box":
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        pick = int(np.argmax(areas))
    else:
        pick = int(np.argmax(np.bincount(labels.ravel(), minlength=n + 1)[1:]))
    return _scaled_box(boxes[pick], scale, image_size), True


def _scaled_box(pixel_box: np.ndarray, scale: float, image_size: tuple[int, int] | None) -> np.ndarray:
    """Scale a box in mask cells to pixels and clip it to ``image_size`` (TokenCut/LOST)."""
    box = pixel_box * float(scale)
    if image_size is not None:
        box[2] = min(box[2], float(image_size[1]))
        box[3] = min(box[3], float(image_size[0]))
    return box


def boxes_from_mask(gt_mask: np.ndarray, *, connectivity: int = 8, threshold: float = 0.5) -> np.ndarray:
    """One box per connected component of a GT mask (bool, uint8, float, other integers), (K, 4), label order.

    Parameters
    ----------
    gt_mask : ndarray, shape (H, W)
        GT mask: bool, uint8 (foreground ``> 255 · threshold``: a 0/1 uint8 array has none; pass
        bool), float in [0, 1] (foreground
        ``> threshold``; values within 1e-6 of the range are accepted) or another integer type (a label
        map: nonzero is foreground).
    connectivity : {4, 8}, default 8
        Pixel connectivity of the components.
    threshold : float, default 0.5
        Binarisation threshold in [0, 1] of uint8 and float masks.

    Returns
    -------
    ndarray of float64, shape (K, 4)
        Pixel boxes ``(xmin, ymin, xmax + 1, ymax + 1)``, one per component in label order (scanning
        rows top to bottom); (0, 4) for a mask without foreground.

    Raises
    ------
    TypeError
        ``gt_mask`` is not a NumPy array or has an unsupported dtype; ``threshold`` is not a number.
    ValueError
        ``gt_mask`` not 2-D or empty; float values NaN/inf or outside [0, 1]; ``connectivity`` not 4 or
        8; ``threshold`` outside [0, 1].

    Examples
    --------
    >>> g = np.zeros((5, 5), np.uint8); g[0, 0] = 255; g[2:4, 1:5] = 255
    >>> boxes_from_mask(g)
    array([[0., 0., 1., 1.],
           [1., 2., 5., 4.]])
    """
    fg = _binary(gt_mask, "gt_mask", threshold)
    labels, n = _ndimage().label(fg, structure=_structure(connectivity))
    return _component_boxes(labels, n)


#: Largest accepted annotation file (a VOC XML is a few kB; COCO train2014 instances is ~330 MB).
MAX_ANNOTATION_BYTES = 2 * 1024**3
#: Largest accepted box coordinate (pixels); beyond it a value is a typo or an overflow, not an image.
MAX_COORDINATE = 1e7


def _path(value: object, name: str) -> Path:
    """``value`` (str or path-like) as a Path; an empty path is refused, not read as the current folder."""
    if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"`{name}` must be a str or Path; got {type(value).__name__}")
    text = os.fspath(value)
    if not isinstance(text, str):
        raise TypeError(f"`{name}` must be a str or Path; got a path-like of {type(text).__name__}")
    if text == "":
        raise ValueError(f"`{name}` is empty; give a path ('.' for the current folder)")
    return Path(text)


def _read_regular(path: Path, what: str) -> bytes:
    """Bytes of a regular file (FIFOs, devices, folders and dangling symlinks are refused, named as such).

    Opened without blocking and checked again once open (:func:`~maskrefine.io.files.open_regular`), so
    a FIFO swapped in after the check cannot hang the run.
    """
    try:
        fd, size = open_regular(path)
    except InputError as exc:
        raise InputError(path, f"cannot read {what}: {exc.problem.removesuffix('; not read')}") from None
    try:
        if size > MAX_ANNOTATION_BYTES:
            raise InputError(path, f"{what} is {size} bytes, more than the {MAX_ANNOTATION_BYTES} accepted")
        return read_exactly(fd, 0, size, path)
    finally:
        os.close(fd)


def _coordinate(value: object, path: Path, where: str) -> float:
    """Return ``value`` as a finite box coordinate within ±MAX_COORDINATE, else raise an InputError.

    The error names the file and the field (``where``).
    """
    try:
        number = float(value)  # type: ignore[arg-type]  # any parsed JSON/XML value; float() decides
    except (TypeError, ValueError, OverflowError):
        raise InputError(path, f"bad box coordinate {where}: {short_repr(value)} is not a number") from None
    if not math.isfinite(number) or abs(number) > MAX_COORDINATE:
        raise InputError(
            path, f"bad box coordinate {where}: {short_repr(value)} is not a finite pixel coordinate"
        )
    return number


def _declared_size(height: object, width: object) -> tuple[int, int] | None:
    """``(height, width)`` an annotation declares for its image, or None when it gives no usable one.

    Only positive integers (``375``, ``"375"``, ``375.0``) up to :data:`MAX_COORDINATE` count: the
    references read boxes without looking at these fields, so a missing or odd one is not an error.
    """
    sizes = []
    for value in (height, width):
        if isinstance(value, bool):
            return None
        try:
            number = float(value.strip() if isinstance(value, str) else value)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            return None
        if not (1 <= number <= MAX_COORDINATE) or number != int(number):
            return None
        sizes.append(int(number))
    return sizes[0], sizes[1]


def _voc_file(path: Path, no_hard: bool) -> tuple[np.ndarray | None, tuple[int, int] | None]:
    data = _read_regular(path, "VOC XML")
    try:
        root = ET.fromstring(data)
    except (ET.ParseError, RecursionError, ValueError, LookupError) as exc:  # LookupError: unknown encoding
        raise InputError(path, f"cannot parse VOC XML ({type(exc).__name__}: {exc})") from None
    if root.tag.startswith("{"):  # "{ns}annotation": findall("object") would find no object
        raise InputError(
            path, f"the root element {short_repr(root.tag)} is in an XML namespace; VOC annotations use none"
        )
    boxes = []
    for obj in root.findall("object"):  # children of <annotation> only, as torchvision's VOC parser reads
        if len(obj) == 0:  # an empty <object/> holds nothing: the references skip it
            continue
        if no_hard:  # the references drop an object flagged exactly "1"
            flags = [obj.findtext(tag, "0").strip() for tag in ("difficult", "truncated")]
            if "1" in flags:
                continue
        bb = obj.find("bndbox")
        if bb is None:
            raise InputError(path, "object without <bndbox>")
        xmin, ymin, xmax, ymax = (
            int(_coordinate(bb.findtext(t), path, f"<{t}>")) for t in ("xmin", "ymin", "xmax", "ymax")
        )
        if xmin > xmax or ymin > ymax:
            raise InputError(
                path, f"inverted box: xmin={xmin} xmax={xmax} ymin={ymin} ymax={ymax} (need min <= max)"
            )
        boxes.append((xmin - 1, ymin - 1, xmax, ymax))  # 1-based inclusive → 0-based half-open
    size = _declared_size(root.findtext("size/height"), root.findtext("size/width"))
    if no_hard and not boxes:
        return None, size
    return np.asarray(boxes, np.float64).reshape(-1, 4), size


def read_voc_boxes(path_or_dir: str | os.PathLike[str], no_hard: bool = False) -> dict[str, np.ndarray]:
    """GT boxes from Pascal VOC XML: every object, ``(xmin - 1, ymin - 1, xmax, ymax)``.

    Parameters
    ----------
    path_or_dir : str or Path
        One ``.xml`` file or a folder of them (e.g. ``VOC2007/Annotations``).
    no_hard : bool
        Drop objects flagged ``difficult`` or ``truncated``; images left with none are omitted
        (LOST's ``VOC_all`` variant). Default keeps everything (TokenCut/LOST default).

    Returns
    -------
    dict
        File stem → float64 array (K, 4).

    Raises
    ------
    InputError
        Missing path, a ``.xml`` entry that is not a regular file, unparsable XML, a namespaced root,
        an object without a box, a coordinate that is not a finite number within ±1e7, an inverted box
        (``xmin > xmax`` or ``ymin > ymax``; the message names the file).
    """
    return voc_annotations(path_or_dir, no_hard).boxes


class Annotations(NamedTuple):
    """GT boxes of an annotation source and the image size each annotation declares.

    ``boxes``: file stem → float64 (K, 4), as :func:`read_voc_boxes` / :func:`read_coco_boxes` return.
    ``sizes``: file stem → ``(height, width)`` from VOC ``<size>`` or COCO ``images[].height/width``,
    for the stems whose annotation gives positive integers there (the others are absent). The boxes
    are in that image's pixel frame: ``maskrefine score`` refuses a file whose GT mask has another size.
    """

    boxes: dict[str, np.ndarray]
    sizes: dict[str, tuple[int, int]]


def voc_annotations(path_or_dir: str | os.PathLike[str], no_hard: bool = False) -> Annotations:
    """:func:`read_voc_boxes` with the image sizes the XML files declare (see :class:`Annotations`)."""
    out, unreadable = voc_annotations_per_file(path_or_dir, no_hard)
    if unreadable:
        raise next(iter(unreadable.values()))
    return out


def voc_annotations_per_file(
    path_or_dir: str | os.PathLike[str], no_hard: bool = False
) -> tuple[Annotations, dict[str, InputError]]:
    """:func:`voc_annotations` that goes on past a bad file: also returns each unreadable file's error.

    For a job that scores every other image and reports those (``maskrefine score --boxes voc:DIR``).

    Returns
    -------
    Annotations
        The files read.
    dict of str to InputError
        File stem → why its XML file could not be read (not a regular file, malformed, a bad box), in
        file-name order.

    Raises
    ------
    InputError
        ``path_or_dir`` does not exist.
    """
    path = _path(path_or_dir, "path_or_dir")
    no_hard = check_flag(no_hard, "no_hard")
    if path.is_dir():
        files = sorted(path.glob("*.xml"))
    elif path.exists():
        files = [path]
    else:
        raise InputError(path, "no such file or folder")
    out = Annotations({}, {})
    unreadable: dict[str, InputError] = {}
    for f in files:
        try:
            boxes, size = _voc_file(f, no_hard)
        except InputError as exc:
            unreadable[f.stem] = exc
            continue
        if boxes is not None:
            out.boxes[f.stem] = boxes
            if size is not None:
                out.sizes[f.stem] = size
    return out, unreadable


def read_coco_boxes(json_path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """GT boxes from a COCO instances JSON: ``iscrowd`` skipped, ``(x, y, x + w, y + h)`` rounded.

    Every image of the file is a key (file-name stem); an image with no non-crowd box maps to an
    empty (0, 4) array, which CorLoc scores as a miss and counts.

    Parameters
    ----------
    json_path : str or Path
        The COCO instances JSON file (``images`` and ``annotations`` lists; at most 2 GiB).

    Returns
    -------
    dict of str to ndarray of float64, shape (K, 4)
        File-name stem → boxes ``(x, y, x + w, y + h)``, each coordinate rounded to an integer, in the
        order of the annotations.

    Raises
    ------
    TypeError
        ``json_path`` is not a str or path-like.
    ValueError
        ``json_path`` is empty.
    InputError
        Not a regular file, unreadable, malformed or too deeply nested JSON, a missing field, image ids
        that are not integers, two images with one file stem, a bbox that is not four finite numbers
        within ±1e7 or has a negative width or height (the message names the file and the problem).
        An annotation of an image the file does not list is ignored, as pycocotools never asks for it.
    """
    return coco_annotations(json_path).boxes


def coco_annotations(json_path: str | os.PathLike[str]) -> Annotations:
    """:func:`read_coco_boxes` with the image sizes the JSON declares (see :class:`Annotations`)."""
    path = _path(json_path, "json_path")
    raw = _read_regular(path, "COCO JSON")
    try:
        data = json.loads(raw)
    except RecursionError:
        raise InputError(path, "cannot read COCO JSON (nested too deeply)") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise InputError(path, f"cannot read COCO JSON ({parse_problem(exc)})") from None

    def bad(problem: str) -> InputError:
        return InputError(path, f"not a COCO instances file: {problem}")

    if not isinstance(data, dict):
        raise bad(f"the top level is a {type(data).__name__}, not an object")
    images, annotations = data.get("images"), data.get("annotations")
    if not isinstance(images, list) or not isinstance(annotations, list):
        raise bad("'images' and 'annotations' must be lists")
    stems: dict[int, str] = {}
    seen: dict[str, int] = {}
    sizes: dict[str, tuple[int, int]] = {}
    for i, img in enumerate(images):
        if not isinstance(img, dict):
            raise bad(f"images[{i}] is not an object")
        image_id, file_name = img.get("id"), img.get("file_name")
        if isinstance(image_id, bool) or not isinstance(image_id, int):
            raise bad(f"images[{i}].id must be an integer; got {short_repr(image_id)}")
        if not isinstance(file_name, str) or not file_name:
            raise bad(f"images[{i}].file_name must be a non-empty string; got {short_repr(file_name)}")
        stem = Path(file_name).stem
        if image_id in stems:
            raise bad(f"image id {short_repr(image_id)} is listed twice")
        if stem in seen:
            raise bad(
                f"images {short_repr(seen[stem])} and {short_repr(image_id)} share the file stem "
                f"{short_repr(stem)}"
            )
        stems[image_id] = stem
        seen[stem] = image_id
        size = _declared_size(img.get("height"), img.get("width"))
        if size is not None:
            sizes[stem] = size
    per: dict[int, list[tuple[int, int, int, int]]] = {k: [] for k in stems}
    annotation_ids: dict[object, int] = {}
    for i, ann in enumerate(annotations):
        if not isinstance(ann, dict):
            raise bad(f"annotations[{i}] is not an object")
        ann_id = ann.get("id")
        if ann_id is not None and not isinstance(ann_id, list | dict):
            if ann_id in annotation_ids:  # pycocotools indexes by id: the last one would stand for both
                raise bad(
                    f"annotations[{annotation_ids[ann_id]}] and [{i}] share the id {short_repr(ann_id)}; "
                    "pycocotools, which the references load COCO with, keeps only the last of them"
                )
            annotation_ids[ann_id] = i
        image_id = ann.get("image_id")
        if isinstance(image_id, bool) or not isinstance(image_id, int):
            raise bad(f"annotations[{i}].image_id must be an integer; got {short_repr(image_id)}")
        if image_id not in per:  # e.g. `images` cut down to a split: pycocotools never asks for it
            continue
        crowd = ann.get("iscrowd", 0)
        if not isinstance(crowd, int | float):  # bools are ints
            raise bad(f"annotations[{i}].iscrowd must be a number; got {short_repr(crowd)}")
        if crowd == 1:  # the references skip crowd regions (`iscrowd == 1`; true and 1.0 included)
            continue
        bbox = ann.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise bad(f"annotations[{i}].bbox must be a list of 4 numbers; got {short_repr(bbox)}")
        where = f"annotations[{i}].bbox"
        x, y, w, h = (
            _coordinate(v, path, where)
            if isinstance(v, (int, float)) and not isinstance(v, bool)
            else math.nan
            for v in bbox
        )
        if math.isnan(x + y + w + h):
            raise bad(f"{where} must hold numbers; got {short_repr(bbox)}")
        if w < 0 or h < 0:
            raise bad(f"{where} has a negative width or height; got {short_repr(bbox)}")
        per[image_id].append((round(x), round(y), round(x + w), round(y + h)))
    return Annotations({stems[k]: np.asarray(v, np.float64).reshape(-1, 4) for k, v in per.items()}, sizes)


def read_seeds(path: str | os.PathLike[str]) -> dict[str, int]:
    """Seed patches for the ``"seed_cc"`` selector, as flat (row-major) token indices per file stem.

    Parameters
    ----------
    path : str or Path
        A JSON object ``{"stem": index, ...}`` (TokenCut's ``seed``: the index of the seed patch in the
        flattened token grid), or a folder of seed maps — one ``.png`` or ``.npy`` per stem at the token
        grid's size whose largest value marks the seed (the first one in row-major order).

    Returns
    -------
    dict
        Stem → flat index (int >= 0). Whether the index lies inside each prediction's grid is checked
        when the image is scored.

    Raises
    ------
    InputError
        Unreadable file or folder, malformed JSON, an index that is not a non-negative integer, an
        unreadable seed map (the message names the file).
    """
    path = _path(path, "path")
    if path.is_dir():
        return {stem: index for stem, (index, _shape) in read_seed_maps(path).items()}
    raw = _read_regular(path, "seed JSON")
    try:
        data = json.loads(raw)
    except RecursionError:
        raise InputError(path, "cannot read seed JSON (nested too deeply)") from None
    except ValueError as exc:
        raise InputError(path, f"cannot read seed JSON ({parse_problem(exc)})") from None
    if not isinstance(data, dict):
        raise InputError(
            path, f"seed JSON must be an object of stem -> token index; got a {type(data).__name__}"
        )
    for stem, index in data.items():
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise InputError(
                path,
                f"seed of {short_repr(stem)} must be a token index (integer >= 0); got {short_repr(index)}",
            )
    return dict(data)


def read_seed_maps(
    folder: str | os.PathLike[str], errors: dict[str, InputError] | None = None
) -> dict[str, tuple[int, tuple[int, int]]]:
    """Seed maps of a folder: stem → (flat index of the first maximum, the map's (height, width)).

    One ``.png`` or ``.npy`` per stem (other files are ignored); :func:`read_seeds` without the shapes,
    which a caller needs to check that each map has its prediction's grid size.

    Parameters
    ----------
    folder : str or Path
        The folder of seed maps.
    errors : dict, optional
        Where to collect the bad maps (stem → :class:`~maskrefine.errors.InputError`) instead of raising
        on the first one; a stem with an error is left out of the result. A caller that scores many
        images can then fail only the images whose seed map is bad.

    Raises
    ------
    InputError
        The folder cannot be listed; without ``errors``, also an entry that is not a regular file, an
        unreadable or empty map, two maps for one stem.

    Returns
    -------
    dict of str to (int, (int, int))
        Stem → (flat row-major index of the map's first maximum, the map's (height, width)).

    Raises
    ------
    TypeError
        ``folder`` is not a str or path-like.
    ValueError
        ``folder`` is empty.
    """
    from maskrefine.io.imageio import read_mask  # OpenCV: imported on first use

    folder = _path(folder, "folder")
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise InputError(folder, f"cannot list the seed-map folder ({exc.strerror or exc})") from None
    out: dict[str, tuple[int, tuple[int, int]]] = {}
    bad: dict[str, InputError] = {}
    for f in entries:
        if f.suffix.lower() not in (".png", ".npy"):
            continue
        try:
            if f.stem in out or f.stem in bad:
                raise InputError(f, f"two seed maps for the stem {f.stem!r}")
            if not f.is_file():
                raise InputError(f, "not a regular file; cannot read the seed map")
            seed_map = np.asarray(read_mask(f))
            if seed_map.ndim != 2 or seed_map.size == 0:
                raise InputError(f, f"a seed map must be a non-empty 2-D map; got shape {seed_map.shape}")
        except InputError as exc:
            if errors is None:
                raise
            out.pop(f.stem, None)
            bad[f.stem] = exc
            continue
        out[f.stem] = (int(np.argmax(seed_map)), (int(seed_map.shape[0]), int(seed_map.shape[1])))
    if errors is not None:
        errors.update(bad)
    return out


class CorLocEvaluator:
    """Accumulate CorLoc: a hit when the predicted box has IoU ≥ ``iou_threshold`` with any GT box.

    Parameters
    ----------
    selector : {"largest_box", "largest_cc", "seed_cc"}, default "largest_box"
        Component whose box is scored (see :func:`mask_to_box`); ``"largest_box"`` is the paper's.
    connectivity : {4, 8}, default 8
        Pixel connectivity of the components.
    scale : float, default 1
        Pixels per mask cell (patch size for token masks), in (0, 1e7].
    threshold : float, default 0.5
        Binarisation of float masks (``>``; uint8 masks: ``> 255 · threshold``, so a 0/1 uint8 array
        is empty: pass bool), in [0, 1].
    iou_threshold : float, default 0.5
        Smallest IoU of a hit, in (0, 1]; 0.5 in the field.
    iou_dtype : {"float64", "float32"}, default "float64"
        Arithmetic of :func:`box_iou` (TokenCut and FOUND: float32).

    Raises
    ------
    TypeError
        A non-number ``threshold`` or ``iou_threshold``.
    ValueError
        An unknown ``selector`` or ``iou_dtype``, ``connectivity`` not 4 or 8, ``scale``, ``threshold``
        or ``iou_threshold`` out of range.

    Examples
    --------
    >>> ev = CorLocEvaluator()
    >>> m = np.zeros((4, 4), bool); m[1:3, 1:3] = True
    >>> ev.step(m, np.array([[1, 1, 3, 3]]), name="a")["correct"]
    True
    >>> ev.summary()["corloc"]
    100.0
    """

    def __init__(
        self,
        selector: Selector = "largest_box",
        connectivity: int = 8,
        scale: float = 1,
        *,
        threshold: float = 0.5,
        iou_threshold: float = 0.5,
        iou_dtype: Literal["float64", "float32"] = "float64",
    ) -> None:
        _check_iou_dtype(iou_dtype, "iou_dtype")
        check_choice(selector, SELECTORS, "selector")
        _structure(connectivity)
        checked_scale = _scale(scale)
        self.selector: Selector = selector
        self.connectivity: int = int(connectivity)
        # reported by the summary: an integer stays an integer (16, not 16.0), as a plain Python number
        # (a NumPy scalar is not JSON)
        self.scale: float = int(scale) if isinstance(scale, numbers.Integral) else checked_scale
        self.threshold: float = _threshold(threshold)
        self.iou_threshold: float = check_float_range(iou_threshold, "iou_threshold", 0.0, 1.0)
        if not self.iou_threshold > 0:
            raise ValueError(f"`iou_threshold` must be in (0, 1]; got {iou_threshold!r}")
        self.iou_dtype: Literal["float64", "float32"] = iou_dtype
        self._rows: list[dict[str, Any]] = []

    def __len__(self) -> int:
        """Return the number of images scored so far."""
        return len(self._rows)

    def step(
        self,
        mask: np.ndarray,
        gt_boxes: npt.ArrayLike,
        name: str | None = None,
        seed: tuple[int, int] | None = None,
        image_size: tuple[int, int] | None = None,
        scale: float | None = None,
    ) -> dict[str, Any]:
        """Score one image.

        Parameters
        ----------
        mask : ndarray, shape (h, w)
            Predicted mask (bool, uint8 or float), token or pixel resolution.
        gt_boxes : array_like, shape (K, 4)
            GT boxes in pixels; K = 0 is scored as a miss and counted in ``empty_gt``.
        name : str, optional
            Name of the image in the rows (default: its index, counted from 0).
        seed : (row, col), optional
            Seed cell for ``"seed_cc"``.
        image_size : (H, W), optional
            Clip the scaled box to the image.
        scale : float, optional
            Pixels per mask cell for this image (default: the evaluator's ``scale``). A token grid of
            patch size p is placed on the padded image (cell i covers pixels i·p .. (i+1)·p) and the
            box is clipped to ``image_size``, as TokenCut and FOUND do.

        Returns
        -------
        dict
            ``name, correct, iou (best), box (list or None), n_gt, empty_gt, empty_mask``.
        """
        check_row_name(name)
        gt = _boxes(gt_boxes, "gt_boxes")
        if gt.shape == (1, 4) and np.ndim(gt_boxes) == 1:
            raise ValueError("`gt_boxes` must have shape (K, 4); got (4,): wrap one box in a list")
        box, from_foreground = _mask_box(
            mask,
            self.selector,
            self.connectivity,
            self.scale if scale is None else scale,
            seed,
            image_size,
            self.threshold,
        )
        best = (
            float(_box_iou(box, gt, BOX_IOU_EPS, self.iou_dtype).max())
            if (box is not None and len(gt))
            else 0.0
        )
        row = {
            "name": str(len(self._rows)) if name is None else name,
            "correct": bool(box is not None and len(gt) > 0 and best >= self.iou_threshold),
            "iou": best,
            "box": None if box is None else [float(v) for v in box],
            "n_gt": int(len(gt)),
            "empty_gt": len(gt) == 0,
            "empty_mask": not from_foreground,
        }
        self._rows.append(row)
        return row

    def per_image(self) -> list[dict[str, Any]]:
        """One dict per image (see :meth:`step`).

        Returns
        -------
        list of dict
            A new dict per image, in the order scored, with the keys :meth:`step` returns.
        """
        return [dict(r) for r in self._rows]

    def summary(self) -> dict[str, Any]:
        """Plain dict whose keys all start with ``corloc`` so it merges into a saliency summary.

        Returns
        -------
        dict
                ``corloc`` (percent of evaluated images; NaN when none), ``corloc_count``, ``corloc_correct``,
            ``corloc_empty_gt`` (images without a GT box, scored as misses), ``corloc_empty_mask`` (no
            foreground component boxed: no foreground, a miss, or a ``seed_cc`` seed on background, whose
            box is then the background's, as TokenCut's), and the settings
            ``corloc_selector``, ``corloc_connectivity``, ``corloc_scale``, ``corloc_iou_threshold``,
            ``corloc_iou_dtype``.
        """
        n = len(self._rows)
        hits = sum(r["correct"] for r in self._rows)
        return {
            "corloc": 100.0 * hits / n if n else float("nan"),
            "corloc_count": n,
            "corloc_correct": int(hits),
            "corloc_empty_gt": int(sum(r["empty_gt"] for r in self._rows)),
            "corloc_empty_mask": int(sum(r["empty_mask"] for r in self._rows)),
            "corloc_selector": self.selector,
            "corloc_connectivity": self.connectivity,
            "corloc_scale": self.scale,
            "corloc_iou_threshold": self.iou_threshold,
            "corloc_iou_dtype": self.iou_dtype,
        }


def corloc(
    masks: dict[str, np.ndarray] | Iterable[np.ndarray],
    gt_boxes: Mapping[str, npt.ArrayLike] | Iterable[npt.ArrayLike],
    selector: Selector = "largest_box",
    **kwargs: Any,
) -> float:
    """CorLoc (percent) of a sequence of masks against GT boxes.

    Parameters
    ----------
    masks : iterable of ndarray, or dict name → ndarray
    gt_boxes : iterable of (K, 4) arrays, or dict name → array (same keys as ``masks``)
    selector : {"largest_box", "largest_cc", "seed_cc"}
    **kwargs
        ``connectivity``, ``scale``, ``threshold``, ``iou_threshold``; ``seeds`` (sequence or dict) for
        ``"seed_cc"``.

    Returns
    -------
    float
    """
    seeds = kwargs.pop("seeds", None)
    ev = CorLocEvaluator(selector, **kwargs)
    if seeds is not None and ev.selector != "seed_cc":
        raise ValueError(f"`seeds` only apply to selector 'seed_cc'; got selector {ev.selector!r}")
    if isinstance(masks, Mapping):
        # a dict of masks comes with a dict of boxes (documented); a missing key is reported below
        if not isinstance(gt_boxes, Mapping):
            raise TypeError(
                f"`gt_boxes` must be a dict name -> boxes when `masks` is; got {type(gt_boxes).__name__}"
            )
        if seeds is not None and not isinstance(seeds, Mapping):
            raise TypeError(
                f"`seeds` must be a dict name -> (row, col) when `masks` is; got {type(seeds).__name__}"
            )
        for key in masks:
            if key not in gt_boxes:
                raise ValueError(f"`gt_boxes` has no entry for mask {short_repr(key)}")
            if seeds is not None and key not in seeds:
                raise ValueError(f"`seeds` has no entry for mask {short_repr(key)}")
        for key, m in masks.items():
            ev.step(m, gt_boxes[key], name=key, seed=None if seeds is None else seeds[key])
    else:
        for value, name in ((masks, "masks"), (gt_boxes, "gt_boxes"), (seeds, "seeds")):
            if value is None and name == "seeds":
                continue
            if isinstance(value, Mapping):
                raise TypeError(f"`{name}` is a dict but `masks` is not: give both as dicts or as sequences")
            if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
                raise TypeError(f"`{name}` must be a sequence or a dict; got {type(value).__name__}")
        if isinstance(masks, np.ndarray) and masks.ndim != 3:
            raise ValueError(
                f"`masks` as one array must be a stack of shape (N, H, W); got shape {masks.shape}"
            )
        mask_list = list(masks)
        boxes = list(gt_boxes)
        seed_list = None if seeds is None else list(seeds)
        if len(mask_list) != len(boxes):
            raise ValueError(
                f"`masks` and `gt_boxes` must have the same length; got {len(mask_list)} and {len(boxes)}"
            )
        if seed_list is not None and len(seed_list) != len(mask_list):
            raise ValueError(
                f"`seeds` must have one seed per mask; got {len(seed_list)} for {len(mask_list)} masks"
            )
        for i, (m, b) in enumerate(zip(mask_list, boxes, strict=True)):
            ev.step(m, b, seed=None if seed_list is None else seed_list[i])
    return float(ev.summary()["corloc"])
