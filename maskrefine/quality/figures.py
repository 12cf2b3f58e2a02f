"""Figures of the quality tools (matplotlib, the ``[plot]`` extra): the paired before/after scatter."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from maskrefine.io.imageio import write_bytes_atomic
from maskrefine.plots import require_matplotlib

__all__ = ["plot_paired_scatter"]


def plot_paired_scatter(
    before: np.ndarray, after: np.ndarray, path: str | os.PathLike[str], *, title: str = ""
) -> Path:
    """Per-image value before (x) against after (y) with the diagonal; points above it improved.

    Parameters
    ----------
    before, after : ndarray, shape (n,)
        Paired per-image values (non-finite pairs are not drawn).
    path : path-like
        PNG written atomically.
    title : str
        Figure title.

    Returns
    -------
    Path
    """
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    x = np.asarray(before, dtype=np.float64)
    y = np.asarray(after, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"`before` and `after` must be 1-D of equal length; got {x.shape}, {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    figure = Figure(figsize=(5.0, 5.0), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    better = y > x
    axes.scatter(x[better], y[better], s=10, c="tab:green", label=f"better ({int(better.sum())})")
    axes.scatter(x[~better], y[~better], s=10, c="tab:red", label=f"same or worse ({int((~better).sum())})")
    low = float(min(x.min(), y.min())) if x.size else 0.0
    axes.plot([low, 1.0], [low, 1.0], color="k", lw=0.8)
    axes.set_xlabel("IoU before (baseline)")
    axes.set_ylabel("IoU after (refined)")
    axes.set_aspect("equal")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower right")
    if title:
        axes.set_title(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return write_bytes_atomic(path, buffer.getvalue())
