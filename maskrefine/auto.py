"""``method="auto"``: look at each mask, then refine it by the rule chosen for its kind on the SOD benchmark.

Kind of a mask
--------------
* **patch size** ``p``: how many image pixels one mask pixel covers. An ``h x w`` mask of an ``H x W`` image
  is a patch grid of stride ``s`` when ``h`` is ``floor(H/s)`` or ``ceil(H/s)`` and ``w`` likewise (a ViT
  grid of a cropped or a padded image: 20x30 or 21x31 for 321x481 at ViT/16), the rule ``score`` uses
  (:func:`maskrefine.metrics.resize.prediction_stride`, which prefers 16, 8, 14, 4, 32 where several fit);
  any other size gets ``round((H / h + W / w) / 2)`` (halves rounded up, as everywhere in this table). 1 is
  full resolution;
* **binary** when the mask holds at most two distinct values (e.g. 0 and 255), else **soft**.
* **a patch grid saved at full size** (:func:`block_grid`): a mask of the image's size that is not constant
  and changes only on the cell edges of a grid of stride ``s`` in :data:`BLOCK_STRIDES` (the largest that
  fits) is that grid nearest-upsampled. Either ``s x s`` cells from the top-left corner (the grid repeated
  ``s`` times), or the ``⌊H/s⌋`` or ``⌈H/s⌉`` by ``⌊W/s⌋`` or ``⌈W/s⌉`` grid stretched onto the image by a
  nearest-neighbour resize (TokenCut's saliency masks: ``F.interpolate(..., size=(H, W), mode="nearest")``
  of the grid of an image resized to a multiple of ``s``), each edge within one pixel of ``k·H/rows``, one
  change per edge, and at least 6 edges in all (fewer, e.g. a box, could fall on such a grid by chance).
  Its kind is patch ``s``; ``auto`` takes the grid back (the value at each cell's centre) and refines it as
  a saved grid, placed as it was found (from the corner, or stretched).

Rule
----
:data:`AUTO_RULES` maps (binary or soft) and a range of patch sizes to a refiner setting; the radius is
tied to the patch size (``radius = round(radius_per_patch * p)``, clamped to what the image holds), so the
rule carries over to patch sizes the benchmark did not measure (e.g. 14). Where no refiner improved a kind
on the benchmark, the rule is naive upsampling (``identity``), and it says so. :data:`AUTO_RULE_TEXT` is
the same table in words (``maskrefine apply --help`` prints it); :func:`decide` returns the decision for
one mask, which ``--report`` records per file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

__all__ = [
    "MaskKind",
    "AutoRule",
    "AutoDecision",
    "AUTO_RULES",
    "AUTO_RULE_TEXT",
    "BLOCK_STRIDES",
    "BlockGrid",
    "block_grid",
    "detect_kind",
    "decide",
    "auto_settings",
]


#: Strides tried, largest first, on a full-size mask for blocks of a nearest-upsampled patch grid (the ViT
#: patch sizes; a mask constant on 16-blocks is also constant on 8-blocks, so the largest is the grid's).
#: Not 32: a 16-grid whose edges all fall on every other cell edge would be taken for a 32-grid and
#: filtered with twice the radius, and ViT/32 grids are rare in this field. Such a 16-grid of 8-pixel
#: patches (an 8-grid whose edges all fall on 16-pixel edges) is still taken for a 16-grid.
BLOCK_STRIDES: tuple[int, ...] = (16, 14, 8)


#: A stretched grid is accepted from this many cell edges (row and column changes together) on: fewer,
#: e.g. the 4 edges of a box, fall within a pixel of some grid's edges too often by chance.
MIN_STRETCHED_EDGES = 6


@dataclass(frozen=True, slots=True)
class BlockGrid:
    """A full-size mask found to be a patch grid upsampled by nearest neighbour (:func:`block_grid`).

    ``stride`` is the patch size, ``shape`` the grid's (rows, columns); ``stretched`` False: cells of
    ``stride x stride`` pixels from the top-left corner; True: the grid resized onto the image (cells of
    ``H / rows x W / columns`` pixels).
    """

    stride: int
    shape: tuple[int, int]
    stretched: bool

    def grid_of(self, mask: np.ndarray) -> np.ndarray:
        """Return the grid: the value at each cell's centre (a copy)."""
        if not self.stretched:
            return np.array(mask[:: self.stride, :: self.stride])
        height, width = mask.shape[:2]
        rows = np.minimum((np.arange(self.shape[0]) * 2 + 1) * height // (2 * self.shape[0]), height - 1)
        cols = np.minimum((np.arange(self.shape[1]) * 2 + 1) * width // (2 * self.shape[1]), width - 1)
        return np.array(mask[np.ix_(rows, cols)])


@dataclass(frozen=True, slots=True)
class MaskKind:
    """What :func:`detect_kind` sees: the patch size (1 = full resolution) and binary or soft.

    ``grid`` is set for a full-size mask that is a patch grid upsampled by nearest neighbour.
    """

    patch: int
    binary: bool
    grid: BlockGrid | None = None

    @property
    def blocks(self) -> bool:
        """Whether the mask is a full-size upsampled patch grid."""
        return self.grid is not None

    @property
    def name(self) -> str:
        """e.g. ``"binary x16"``, or ``"binary x16 (full-size blocks)"``."""
        blocks = " (full-size blocks)" if self.blocks else ""
        return f"{'binary' if self.binary else 'soft'} x{self.patch}{blocks}"


@dataclass(frozen=True, slots=True)
class AutoRule:
    """One row of the auto table: masks of this kind get this setting.

    ``radius_per_patch`` times the patch size gives the radius (at least ``min_radius``); ``method`` is
    ``"identity"`` where nothing beat naive upsampling.
    """

    binary: bool
    min_patch: int
    max_patch: int | None
    method: str
    guide: str = "mean"
    upsample: str = "bilinear"
    radius_per_patch: float = 0.0
    min_radius: int = 1
    eps: float = 0.0
    evidence: str = ""

    def matches(self, kind: MaskKind) -> bool:
        """Return True when ``kind`` falls in this row."""
        upper = self.max_patch is None or kind.patch <= self.max_patch
        return kind.binary == self.binary and self.min_patch <= kind.patch and upper

    def describe(self) -> str:
        """Describe the row in words."""
        span = f"x{self.min_patch}+" if self.max_patch is None else f"x{self.min_patch}-x{self.max_patch}"
        what = f"{'binary' if self.binary else 'soft'} {span}"
        if self.method == "identity":
            return f"{what}: naive {self.upsample} upsampling ({self.evidence or 'no refiner helped'})"
        radius = f"radius {self.radius_per_patch:g} x patch (>= {self.min_radius})"
        setting = f"{self.method} {self.guide} guide, {radius}, eps {self.eps:g}"
        return f"{what}: {setting}, {self.upsample} upsampling"


#: The rule, chosen on the first 100 SOD images of bench/quality.py (stage 2; see README "Default
#: refinement: auto" for the table on all 300). Radius = 0.7 x patch gives the best radius found at x8 (6)
#: and x16 (11); soft masks improve only at x16 (radius 0.375 x patch = 6).
AUTO_RULES: tuple[AutoRule, ...] = (
    AutoRule(True, 1, 3, "identity", upsample="nearest", evidence="full-resolution masks were not measured"),
    AutoRule(
        False, 1, 3, "identity", upsample="bilinear", evidence="full-resolution masks were not measured"
    ),
    AutoRule(True, 4, 11, "guided", "color", "bilinear", radius_per_patch=0.7, min_radius=2, eps=1e-4),
    AutoRule(True, 12, None, "guided", "color", "nearest", radius_per_patch=0.7, min_radius=2, eps=1e-4),
    AutoRule(
        False,
        4,
        11,
        "identity",
        upsample="bilinear",
        evidence="the best refiner gained only +0.001 IoU on SOD soft x8 masks",
    ),
    AutoRule(False, 12, None, "guided", "color", "bilinear", radius_per_patch=0.375, min_radius=2, eps=1e-5),
)

AUTO_RULE_TEXT = "; ".join(rule.describe() for rule in AUTO_RULES)


def auto_settings() -> list[tuple[str, str]]:
    """Return the distinct ``(method, guide)`` that ``auto`` can apply, other than ``identity``.

    A folder job compiles their kernels once before it forks its workers (``auto`` picks per file, so the
    job cannot know in advance which of them its files need).

    Examples
    --------
    >>> auto_settings()
    [('guided', 'color')]
    """
    settings: list[tuple[str, str]] = []
    for rule in AUTO_RULES:
        if rule.method != "identity" and (rule.method, rule.guide) not in settings:
            settings.append((rule.method, rule.guide))
    return settings


@dataclass(frozen=True, slots=True)
class AutoDecision:
    """What ``auto`` did to one mask: its kind, the rule applied, and the resulting refiner setting."""

    kind: MaskKind
    method: str
    guide: str
    upsample: str
    params: dict[str, Any]
    rule: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (for ``--report``)."""
        return {
            "kind": self.kind.name,
            "patch": self.kind.patch,
            "binary": self.kind.binary,
            "full_size_blocks": self.kind.blocks,
            **(
                {
                    "block_grid": list(self.kind.grid.shape),
                    "block_placement": "stretched" if self.kind.grid.stretched else "corner",
                }
                if self.kind.grid is not None
                else {}
            ),
            "method": self.method,
            "guide": self.guide,
            "upsample": self.upsample,
            "params": dict(self.params),
            "rule": self.rule,
        }


def detect_kind(mask: np.ndarray, image_hw: tuple[int, int]) -> MaskKind:
    """Patch size and binary/soft of ``mask`` (h, w) belonging to an image of size ``image_hw``.

    Parameters
    ----------
    mask : ndarray, shape (h, w)
        The mask as read (any numeric dtype; only its size and distinct values matter).
    image_hw : tuple of int
        ``(H, W)`` of the image.

    Returns
    -------
    MaskKind

    Examples
    --------
    >>> detect_kind(np.zeros((20, 30), np.uint8), (321, 481))
    MaskKind(patch=16, binary=True, grid=None)
    >>> detect_kind(np.zeros((21, 31), np.uint8), (321, 481))  # a padded ViT/16 grid: ceil(321 / 16)
    MaskKind(patch=16, binary=True, grid=None)
    >>> grid = np.eye(21, 31, dtype=np.uint8)  # the same grid saved at full size: 16x16 blocks
    >>> detect_kind(grid.repeat(16, 0).repeat(16, 1)[:321, :481], (321, 481)).grid
    BlockGrid(stride=16, shape=(21, 31), stretched=False)
    """
    h, w = int(mask.shape[0]), int(mask.shape[1])
    if h < 1 or w < 1:
        raise ValueError(f"`mask` must have at least one pixel; got shape {mask.shape}")
    from maskrefine.metrics.resize import prediction_stride

    binary = bool(np.unique(mask).size <= 2)
    if (h, w) == (int(image_hw[0]), int(image_hw[1])):
        found = block_grid(mask)
        if found is not None:
            return MaskKind(patch=found.stride, binary=binary, grid=found)
    patch = prediction_stride((h, w), (int(image_hw[0]), int(image_hw[1])))
    if patch is None:
        ratio = (Fraction(int(image_hw[0]), h) + Fraction(int(image_hw[1]), w)) / 2  # exact: halves go up
        patch = max(1, _round_half_up(ratio))
    return MaskKind(patch=patch, binary=binary)


def block_grid(mask: np.ndarray) -> BlockGrid | None:
    """Return the patch grid a full-size ``mask`` was nearest-upsampled from, or None (see the module notes).

    Strides of :data:`BLOCK_STRIDES` are tried largest first (a mask made of 16-pixel cells is also made of
    8-pixel ones); for each, cells from the corner, then the grid stretched onto the mask. None for a
    constant mask (any grid would do) or one smaller than two cells across in both directions.

    Examples
    --------
    >>> block_grid(np.kron(np.eye(3), np.ones((8, 8))))
    BlockGrid(stride=8, shape=(3, 3), stretched=False)
    >>> grid = np.random.default_rng(0).random((20, 30)) > 0.5  # TokenCut: the grid resized to 321x481
    >>> block_grid(grid[np.arange(321) * 20 // 321][:, np.arange(481) * 30 // 481])
    BlockGrid(stride=16, shape=(20, 30), stretched=True)
    >>> block_grid(np.eye(24)) is None
    True
    """
    height, width = int(mask.shape[0]), int(mask.shape[1])
    # the indices where a row (column) differs from the previous one: the cell edges the mask shows
    rows = np.flatnonzero((mask[1:] != mask[:-1]).any(axis=1)) + 1
    cols = np.flatnonzero((mask[:, 1:] != mask[:, :-1]).any(axis=0)) + 1
    if rows.size == 0 and cols.size == 0:
        return None
    for stride in BLOCK_STRIDES:
        if max(height, width) < 2 * stride:
            continue
        if not (rows % stride).any() and not (cols % stride).any():
            return BlockGrid(stride, (-(-height // stride), -(-width // stride)), False)
        if rows.size + cols.size < MIN_STRETCHED_EDGES:
            continue
        for grid_rows in _grid_sizes(height, stride):
            if not _on_cell_edges(rows, height, grid_rows):
                continue
            for grid_cols in _grid_sizes(width, stride):
                if _on_cell_edges(cols, width, grid_cols):
                    return BlockGrid(stride, (grid_rows, grid_cols), True)
    return None


def _grid_sizes(size: int, stride: int) -> list[int]:
    """``⌊size/stride⌋`` and ``⌈size/stride⌉`` (at least 1): the grid sizes a ViT of that stride gives."""
    return sorted({max(1, size // stride), max(1, -(-size // stride))})


def _on_cell_edges(changes: np.ndarray, size: int, cells: int) -> bool:
    """Whether every change lies within one pixel of a different inner edge ``k·size/cells`` of the cells.

    A nearest-neighbour resize puts edge ``k`` at ``⌈k·size/cells⌉`` (``floor(dst·in/out)``, as torch and
    OpenCV) or within half a pixel of ``k·size/cells`` (sampling at pixel centres, as PIL).
    """
    if changes.size == 0:
        return True
    if cells < 2:
        return False
    edge = np.rint(changes * cells / size)
    close = np.abs(changes - edge * size / cells) <= 1.0
    inner = (edge >= 1) & (edge <= cells - 1)
    return bool(close.all() and inner.all() and np.unique(edge).size == edge.size)


def _round_half_up(value: Fraction) -> int:
    """``value`` rounded to the nearest integer, halves up (4.5 -> 5; Python's ``round`` gives 4).

    Exact (a fraction): in floats 0.7 x 45 is 31.499999999999996, which rounded to 31, not 32.
    """
    return math.floor(value + Fraction(1, 2))


def decide(mask: np.ndarray, image_hw: tuple[int, int]) -> AutoDecision:
    """Return the refiner setting ``auto`` applies to ``mask`` (see :data:`AUTO_RULES`).

    The radius is clamped so that the filter window ``2r + 1`` fits the image.
    """
    kind = detect_kind(mask, image_hw)
    rule = next(rule for rule in AUTO_RULES if rule.matches(kind))
    if rule.method == "identity":
        return AutoDecision(kind, "identity", "mean", rule.upsample, {}, rule.describe())
    radius = max(rule.min_radius, _round_half_up(Fraction(repr(rule.radius_per_patch)) * kind.patch))
    radius = max(0, min(radius, (min(int(image_hw[0]), int(image_hw[1])) - 1) // 2))
    params = {"radius": radius, "eps": rule.eps}
    return AutoDecision(kind, rule.method, rule.guide, rule.upsample, params, rule.describe())


def run_auto(image: np.ndarray, mask: np.ndarray, *, guide: str) -> np.ndarray:
    """Refine ``mask`` as the registered ``run`` of the ``auto`` refiner.

    ``mask`` arrives at its native size (``native_mask``).
    """
    return refine_decided(image, mask, decide(mask, image.shape[:2]))


def refine_decided(image: np.ndarray, mask: np.ndarray, decision: AutoDecision) -> np.ndarray:
    """Refine ``mask`` by ``decision``, the one :func:`decide` made for it: :func:`run_auto` without deciding.

    A folder job decides once per file, records the decision in its report and refines by it (through
    :func:`maskrefine.refiners.refine_unchecked`), instead of deciding a second time here: the kind
    detection sorts the mask's values, about as long as refining an identity file.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3)
        The image, float32 in [0, 1].
    mask : ndarray, shape (h, w)
        The mask at its native size, float in [0, 1].
    decision : AutoDecision
        ``decide(mask, image.shape[:2])``.

    Returns
    -------
    ndarray, shape (H, W)
        The refined mask (not yet clipped).
    """
    from maskrefine.refiners import REFINERS, resize_mask_unchecked

    place_grid = True
    if decision.kind.grid is not None:  # refine the grid it was upsampled from, placed as it was found
        mask = decision.kind.grid.grid_of(mask)
        place_grid = not decision.kind.grid.stretched
    nearest = decision.upsample == "nearest"
    resized = resize_mask_unchecked(mask, image.shape[:2], binary_input=nearest, place_grid=place_grid)
    return REFINERS[decision.method].run(image, resized, guide=decision.guide, **decision.params)
