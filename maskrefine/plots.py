"""Figures for ``score``: a precision-recall curve and a montage of the worst and best images.

Needs matplotlib (the ``[plot]`` extra); :func:`require_matplotlib` raises
:class:`~maskrefine.errors.BackendUnavailableError` naming the extra when it is missing. Figures are drawn
with the non-interactive Agg canvas (no display needed, the global pyplot state is not touched) and written
atomically as PNG. The functions take arrays; reading files is the pipeline's job.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from maskrefine._units import to_unit_float
from maskrefine.errors import BackendUnavailableError, install_hint
from maskrefine.io.imageio import write_bytes_atomic

__all__ = [
    "require_matplotlib",
    "MontageEntry",
    "montage_panel",
    "plot_pr_curve",
    "plot_montage",
    "find_pr_curve",
]

_INSTALL_HINT = install_hint("plot")


def _literal(text: str | None) -> str | None:
    r"""``text`` shown as typed: ``$`` escaped, so that matplotlib never reads a file name as math text.

    A stem such as ``price$\notacommand$x`` made matplotlib raise while drawing (and ``score`` lost its
    CSV and JSON to the traceback).
    """
    return None if text is None else text.replace("$", r"\$")


def require_matplotlib() -> None:
    """Raise :class:`BackendUnavailableError` if matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise BackendUnavailableError(
            f"plots need matplotlib, which is not installed: {_INSTALL_HINT}"
        ) from None


def _new_figure(width: float, height: float) -> Any:
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


@contextmanager
def _missing_glyphs_drawn_as_boxes() -> Iterator[None]:
    """Silence matplotlib's "Glyph N (...) missing from font(s)" warnings (one per character and call).

    A file name in a script the bundled font lacks (CJK, control characters) is drawn with a box for each
    such character; the warnings, printed with matplotlib's install path, told the user nothing more.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
        yield


def _tight_layout(figure: Any) -> None:
    with _missing_glyphs_drawn_as_boxes():
        figure.tight_layout()


def _save(figure: Any, path: str | os.PathLike[str], overwrite: bool) -> Path:
    buffer = io.BytesIO()
    with _missing_glyphs_drawn_as_boxes():
        figure.savefig(buffer, format="png")
    return write_bytes_atomic(path, buffer.getvalue(), overwrite=overwrite)


_PRECISION_KEYS = ("precision", "precision_curve", "pr_precision", "precisions")
_RECALL_KEYS = ("recall", "recall_curve", "pr_recall", "recalls")


def find_pr_curve(curves: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """Find the (precision, recall) curve arrays in an evaluator summary, or return None.

    Looks for the keys ``precision``/``recall`` (also ``*_curve`` variants), at top level or under a
    ``curves`` mapping.
    """
    sources: list[Mapping[str, Any]] = [curves]
    nested = curves.get("curves")
    if isinstance(nested, Mapping):
        sources.insert(0, nested)
    for source in sources:
        precision = next((source[k] for k in _PRECISION_KEYS if k in source), None)
        recall = next((source[k] for k in _RECALL_KEYS if k in source), None)
        if precision is not None and recall is not None:
            p = np.asarray(precision, dtype=np.float64).ravel()
            r = np.asarray(recall, dtype=np.float64).ravel()
            if p.size and p.size == r.size:
                return p, r
    return None


def plot_pr_curve(
    precision: np.ndarray,
    recall: np.ndarray,
    path: str | os.PathLike[str],
    *,
    title: str = "",
    label: str = "",
    overwrite: bool = True,
    note: str = "",
) -> Path:
    """Draw a precision-recall curve (image-averaged, one point per threshold) to a PNG file.

    Parameters
    ----------
    precision, recall : ndarray of float, shape (T,)
        Mean precision and recall at each of the T thresholds.
    path : path-like
        PNG file to write (atomically).
    title, label : str
        Figure title and legend label.
    overwrite : bool
        Replace an existing file (default); False raises :class:`~maskrefine.errors.OutputExistsError`.
    note : str
        Text written across the axes (e.g. why the curve is degenerate).

    Returns
    -------
    Path
        ``path``.
    """
    p = np.asarray(precision, dtype=np.float64).ravel()
    r = np.asarray(recall, dtype=np.float64).ravel()
    if p.shape != r.shape or p.size == 0:
        raise ValueError(f"precision and recall must have equal, non-zero length; got {p.shape}, {r.shape}")
    figure = _new_figure(5.0, 4.5)
    axes = figure.add_subplot(1, 1, 1)
    axes.plot(r, p, lw=1.5, label=_literal(label) or None)
    if note:
        axes.text(0.5, 0.5, _literal(note), ha="center", va="center", fontsize=9, transform=axes.transAxes)
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.set_xlim(0.0, 1.0)
    axes.set_ylim(0.0, 1.02)
    axes.grid(True, alpha=0.3)
    if title:
        axes.set_title(_literal(title))
    if label:
        axes.legend(loc="lower left")
    _tight_layout(figure)
    return _save(figure, path, overwrite)


@dataclass(frozen=True, slots=True)
class MontageEntry:
    """One montage row: the image, the mask before refinement (optional), the prediction and the GT.

    Arrays: ``image`` (H, W, 3) float in [0, 1]; masks (h, w) of any numeric type (shown in gray,
    scaled by their dtype: 255 for uint8, 65535 for uint16, 1 for float/bool).
    """

    stem: str
    score: float
    image: np.ndarray | None
    prediction: np.ndarray
    gt: np.ndarray
    before: np.ndarray | None = None
    label: str = ""


#: Longest side, in pixels, of a montage panel as ``score`` keeps it (a panel is drawn ~240 px wide).
MONTAGE_PANEL_SIDE = 512


def montage_panel(array: np.ndarray) -> npt.NDArray[np.float32]:
    """Return an image or mask as float32 in [0, 1], area-averaged to :data:`MONTAGE_PANEL_SIDE` at most.

    ``score --plot`` keeps its montage rows until the figure is drawn: at full size, eight rows of 4096²
    images took gigabytes.

    Examples
    --------
    >>> montage_panel(np.full((2048, 1024), 255, np.uint8)).shape
    (512, 256)
    >>> montage_panel(np.ones((100, 60, 3), np.float32)).shape
    (100, 60, 3)
    """
    unit = to_unit_float(np.asarray(array))
    height, width = unit.shape[:2]
    scale = MONTAGE_PANEL_SIDE / max(height, width)
    if scale >= 1:
        return unit
    import cv2

    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cast(npt.NDArray[np.float32], cv2.resize(unit, size, interpolation=cv2.INTER_AREA))


def plot_montage(
    entries: Sequence[MontageEntry], path: str | os.PathLike[str], *, title: str = "", overwrite: bool = True
) -> Path:
    """Draw one row per entry: image | mask before (if any entry has one) | prediction | GT.

    Parameters
    ----------
    entries : sequence of MontageEntry
        Rows, top to bottom (e.g. the worst then the best images by IoU).
    path : path-like
        PNG file to write (atomically).
    title : str
        Figure title.
    overwrite : bool
        As for :func:`plot_pr_curve`.

    Returns
    -------
    Path
        ``path``.
    """
    if not entries:
        raise ValueError("plot_montage needs at least one entry")
    with_image = any(e.image is not None for e in entries)
    with_before = any(e.before is not None for e in entries)
    columns = ["image"] * with_image + ["before"] * with_before + ["prediction", "ground truth"]
    figure = _new_figure(2.4 * len(columns), 2.2 * len(entries) + (0.4 if title else 0.0))
    for row, entry in enumerate(entries):
        panels: list[np.ndarray | None] = []
        if with_image:
            panels.append(entry.image)
        if with_before:
            panels.append(None if entry.before is None else to_unit_float(entry.before))
        panels += [to_unit_float(entry.prediction), to_unit_float(entry.gt)]
        for col, (name, panel) in enumerate(zip(columns, panels, strict=True)):
            axes = figure.add_subplot(len(entries), len(columns), row * len(columns) + col + 1)
            axes.set_xticks([])
            axes.set_yticks([])
            if panel is not None:
                if panel.ndim == 3:
                    axes.imshow(np.clip(panel, 0.0, 1.0))
                else:
                    axes.imshow(panel, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            if row == 0:
                axes.set_title(name, fontsize=9)
            if col == 0:
                score = "nan" if not np.isfinite(entry.score) else f"{entry.score:.3f}"
                text = f"{entry.stem}\n{entry.label} IoU {score}".replace("  ", " ")
                axes.set_ylabel(_literal(text.strip()), fontsize=8)
    if title:
        figure.suptitle(_literal(title))
    _tight_layout(figure)
    return _save(figure, path, overwrite)
