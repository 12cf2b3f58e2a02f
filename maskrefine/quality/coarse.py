"""Make patch-resolution masks from full-resolution maps, the way a ViT method produces them.

A ViT with patch size ``p`` predicts one value per ``p x p`` patch. :func:`make_coarse_mask` reproduces
that from any full-resolution map (a ground truth, another method's saliency map): area-average it onto
the patch grid (OpenCV ``INTER_AREA``, in float64), then either keep the soft value or threshold it at
0.5, and quantise it as an 8-bit PNG stores it. :func:`write_coarse_folder` does that for a folder and
writes the PNGs at patch resolution, so ``maskrefine apply`` does the upsampling as it would for a method.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from maskrefine._checks import check_flag, check_int_range, short_repr
from maskrefine.errors import InputError
from maskrefine.io import MASK_EXTENSIONS
from maskrefine.io.imageio import read_mask_array, write_bytes_atomic
from maskrefine.io.pairs import list_files

__all__ = ["coarse_shape", "make_coarse_mask", "write_coarse_folder"]


#: Largest image side :func:`coarse_shape` takes (OpenCV's sizes are C ints).
_MAX_SIDE = 2**31 - 1


def _check_patch(patch: object) -> int:
    if isinstance(patch, bool) or not isinstance(patch, numbers.Integral) or patch < 1:
        raise ValueError(f"`patch` must be an integer >= 1; got {short_repr(patch)}")
    return int(patch)


def coarse_shape(height: int, width: int, patch: int) -> tuple[int, int]:
    """Patch-grid size of an ``height x width`` image: ``round(H / patch) x round(W / patch)``, at least 1.

    Parameters
    ----------
    height : int
        Image height H in pixels, an integer in [1, 2**31 - 1].
    width : int
        Image width W in pixels, an integer in [1, 2**31 - 1].
    patch : int
        Patch size in pixels, an integer >= 1.

    Returns
    -------
    (int, int)
        ``(rows, cols)`` of the grid; each is Python's ``round`` (halves to even) of the side over
        ``patch``, and at least 1.

    Raises
    ------
    TypeError, ValueError
        ``height``, ``width`` or ``patch`` is not an integer in range (bool included).

    Examples
    --------
    >>> coarse_shape(321, 481, 16)
    (20, 30)
    """
    height = check_int_range(height, "height", 1, _MAX_SIDE)
    width = check_int_range(width, "width", 1, _MAX_SIDE)
    patch = _check_patch(patch)
    return max(1, int(round(height / patch))), max(1, int(round(width / patch)))


def _unit_float64(full: np.ndarray) -> np.ndarray:
    if not isinstance(full, np.ndarray):
        raise TypeError(f"`full` must be a NumPy array (H, W); got {type(full).__name__}")
    if full.ndim != 2 or full.size == 0:
        raise ValueError(f"`full` must be a non-empty 2-D array (H, W); got shape {full.shape}")
    if full.dtype == np.bool_:
        return full.astype(np.float64)
    if full.dtype == np.uint8:
        return full.astype(np.float64) / 255.0
    if full.dtype == np.uint16:
        return full.astype(np.float64) / 65535.0
    if np.issubdtype(full.dtype, np.floating):
        values = full.astype(np.float64)
        lo, hi = float(values.min()), float(values.max())
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0.0 or hi > 1.0:
            raise ValueError(f"`full` must have finite values in [0, 1] when floating; got [{lo!r}, {hi!r}]")
        return values
    raise TypeError(f"`full` must be bool, uint8, uint16 or float in [0, 1]; got dtype {full.dtype}")


def make_coarse_mask(full: npt.NDArray, patch: int, *, binary: bool) -> npt.NDArray[np.uint8]:
    """Area-downsample a full-resolution map onto its patch grid, as an 8-bit mask.

    Parameters
    ----------
    full : ndarray, shape (H, W)
        bool, uint8 (0..255), uint16 (0..65535) or float in [0, 1].
    patch : int
        Patch size; the grid is :func:`coarse_shape` ``(H, W, patch)``.
    binary : bool
        Threshold the patch averages: 255 where the average is > 0.5, else 0. Otherwise keep the
        average, rounded to the nearest 8-bit code.

    Returns
    -------
    ndarray of uint8, shape (h, w)
        What a method saving its patch-level mask as an 8-bit PNG would store.

    Examples
    --------
    >>> full = np.zeros((32, 32), np.uint8); full[:, :12] = 255
    >>> make_coarse_mask(full, 16, binary=False).tolist()
    [[191, 0], [191, 0]]
    >>> make_coarse_mask(full, 16, binary=True).tolist()
    [[255, 0], [255, 0]]
    """
    binary = check_flag(binary, "binary")
    values = _unit_float64(full)
    h, w = coarse_shape(values.shape[0], values.shape[1], patch)
    means = cv2.resize(values, (w, h), interpolation=cv2.INTER_AREA)
    np.clip(means, 0.0, 1.0, out=means)
    if binary:
        return np.where(means > 0.5, np.uint8(255), np.uint8(0))
    return np.rint(means * 255.0).astype(np.uint8)


def _check_stems(stems: object) -> set[str]:
    if isinstance(stems, str | bytes) or not isinstance(stems, Iterable):
        raise TypeError(f"`stems` must be an iterable of str (file stems) or None; got {short_repr(stems)}")
    wanted = list(stems)
    for stem in wanted:
        if not isinstance(stem, str):
            raise TypeError(f"`stems` must hold str file stems; got {short_repr(stem)}")
    return set(wanted)


def write_coarse_folder(
    src_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    patch: int,
    *,
    binary: bool,
    stems: Iterable[str] | None = None,
    skip_existing: bool = True,
) -> list[Path]:
    """Write the coarse (patch-resolution) PNG of every mask of ``src_dir`` into ``out_dir``.

    Parameters
    ----------
    src_dir : path-like
        Full-resolution maps (``.png`` 8/16-bit or ``.npy``).
    out_dir : path-like
        Created if missing; receives ``<stem>.png`` (8-bit, patch resolution). Must differ from ``src_dir``.
    patch : int
        Patch size.
    binary : bool
        Binary (threshold 0.5) instead of soft masks.
    stems : iterable of str, optional
        Only these stems (default: all).
    skip_existing : bool
        Keep an existing output (a cache): the output depends only on the input file and the settings.

    Returns
    -------
    list of Path
        The output files, in stem order.

    Raises
    ------
    ConfigError
        An empty or missing source folder; an empty ``out_dir``, one that is a file, or one that is, lies
        inside or contains the source folder.
    OutputError
        An output name taken by something other than a regular file (a symlink, a folder, a FIFO).
    InputError
        A source file that cannot be read (names the file).
    TypeError, ValueError
        A ``patch``, ``binary``, ``skip_existing`` or ``stems`` of the wrong type or out of range (a str
        ``stems`` is refused: it would be read as a set of letters); checked before anything is written.
    """
    from maskrefine.pipeline.guards import check_folder, check_output_folder, path_argument

    src = check_folder(src_dir, "source")
    out = path_argument(out_dir, "output folder")
    check_output_folder(out, {"source": src})  # not a file, not (inside) the source, nor around it
    patch = _check_patch(patch)
    binary = check_flag(binary, "binary")
    skip_existing = check_flag(skip_existing, "skip_existing")
    wanted = None if stems is None else _check_stems(stems)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for path in list_files(src, MASK_EXTENSIONS):
        if wanted is not None and path.stem not in wanted:
            continue
        target = out / f"{path.stem}.png"
        if not (skip_existing and target.is_file() and not target.is_symlink()):  # a link: refused below
            coarse = make_coarse_mask(read_mask_array(path), patch, binary=binary)
            ok, encoded = cv2.imencode(".png", coarse)
            if not ok:  # pragma: no cover - cv2 fails here only on invalid arrays
                raise InputError(path, "cannot encode its coarse mask as PNG")
            write_bytes_atomic(target, encoded.tobytes())
        written.append(target)
    return written
