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
* **a patch grid saved at full size**: a mask of the image's size that is constant on every ``s x s``
  block from the top-left corner, for ``s`` in :data:`BLOCK_STRIDES` (the largest that fits), and not
  constant overall, is a grid nearest-upsampled by ``s`` (TokenCut and others save their masks that way).
  Its kind is patch ``s``, and ``auto`` refines its grid (one pixel per block) as it refines a saved grid:
  the output is the one the grid itself would get.

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
    "block_stride",
    "detect_kind",
    "decide",
    "auto_settings",
]


#: Strides tried, largest first, on a full-size mask for blocks of a nearest-upsampled patch grid (the ViT
#: patch sizes; a mask constant on 16-blocks is also constant on 8-blocks, so the largest is the grid's).
BLOCK_STRIDES: tuple[int, ...] = (32, 16, 14, 8)


@dataclass(frozen=True, slots=True)
class MaskKind:
    """What :func:`detect_kind` sees: the patch size (1 = full resolution) and binary or soft.

    ``blocks`` is True for a full-size mask made of ``patch x patch`` blocks (a grid saved nearest-upsampled).
    """

    patch: int
    binary: bool
    blocks: bool = False

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
    MaskKind(patch=16, binary=True, blocks=False)
    >>> detect_kind(np.zeros((21, 31), np.uint8), (321, 481))  # a padded ViT/16 grid: ceil(321 / 16)
    MaskKind(patch=16, binary=True, blocks=False)
    >>> grid = np.eye(21, 31, dtype=np.uint8)  # the same grid saved at full size: 16x16 blocks
    >>> detect_kind(grid.repeat(16, 0).repeat(16, 1)[:321, :481], (321, 481))
    MaskKind(patch=16, binary=True, blocks=True)
    """
    h, w = int(mask.shape[0]), int(mask.shape[1])
    if h < 1 or w < 1:
        raise ValueError(f"`mask` must have at least one pixel; got shape {mask.shape}")
    from maskrefine.metrics.resize import prediction_stride

    binary = bool(np.unique(mask).size <= 2)
    if (h, w) == (int(image_hw[0]), int(image_hw[1])):
        stride = block_stride(mask)
        if stride is not None:
            return MaskKind(patch=stride, binary=binary, blocks=True)
    patch = prediction_stride((h, w), (int(image_hw[0]), int(image_hw[1])))
    if patch is None:
        ratio = (Fraction(int(image_hw[0]), h) + Fraction(int(image_hw[1]), w)) / 2  # exact: halves go up
        patch = max(1, _round_half_up(ratio))
    return MaskKind(patch=patch, binary=binary)


def block_stride(mask: np.ndarray) -> int | None:
    """Return the largest ``s`` of :data:`BLOCK_STRIDES` for which ``mask`` is constant on ``s x s`` blocks.

    Blocks start at the top-left corner (the last row and column of blocks may be cut short). None when no
    stride fits, when the mask is constant (any stride would fit) or when it is smaller than two blocks
    across in both directions.

    Examples
    --------
    >>> block_stride(np.kron(np.eye(3), np.ones((8, 8))))
    8
    >>> block_stride(np.eye(24)) is None
    True
    """
    # a row (column) index where the mask changes from the previous one must start a block
    rows = np.flatnonzero((mask[1:] != mask[:-1]).any(axis=1)) + 1
    cols = np.flatnonzero((mask[:, 1:] != mask[:, :-1]).any(axis=0)) + 1
    if rows.size == 0 and cols.size == 0:
        return None
    for stride in BLOCK_STRIDES:
        if max(mask.shape) < 2 * stride:
            continue
        if not (rows % stride).any() and not (cols % stride).any():
            return stride
    return None


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
    from maskrefine.refiners import REFINERS, resize_mask

    decision = decide(mask, image.shape[:2])
    if decision.kind.blocks:  # refine the grid it was upsampled from (one pixel per block), as if saved
        mask = mask[:: decision.kind.patch, :: decision.kind.patch]
    resized = resize_mask(mask, image.shape[:2], binary_input=decision.upsample == "nearest")
    return REFINERS[decision.method].run(image, resized, guide=decision.guide, **decision.params)
