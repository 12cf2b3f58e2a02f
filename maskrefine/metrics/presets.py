"""Score presets: the field's saliency-evaluation conventions as frozen dataclasses (PROTOCOL §1.3, §1.4).

Each preset fixes every choice that changes a number: how the ground truth is binarised, where the
prediction is thresholded for Acc/IoU, the threshold set (and ``>`` vs ``>=``) of the F/E curves, the
aggregation order (mean over images then max over thresholds, or per-image max then mean), the rules for
empty masks, and how a prediction of another size is brought onto the ground truth's grid.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = ["ScorePreset", "PRESETS", "DEFAULT_PRESET", "get_preset"]

Aggregation = Literal["mean_then_max", "max_then_mean"]
ResizeMode = Literal["auto", "bilinear", "nearest"]
EmptyUnion = Literal["nan", "skip", "zero"]
PredMapping = Literal["raw", "pysod"]
Geometry = Literal["gt", "paper_repo"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ScorePreset:
    """One evaluation convention.

    Parameters
    ----------
    name : str
        Registry key.
    description : str
        One line naming the reference code.
    gt_threshold_acc : float
        Ground-truth pixels with value ``> gt_threshold_acc`` (on the 0..255 scale; a float GT in [0, 1]
        is multiplied by 255 first, a bool GT counts as 0/255) are foreground for Acc and IoU.
    gt_threshold_f : float
        Same, for the F-measure, precision/recall curves, MAE, S-measure, E-measure and weighted F.
    pred_mapping : {"raw", "pysod"}
        ``"raw"``: the prediction is used as a probability (uint8 / 255, uint16 / 65535, float as is).
        ``"pysod"``: the map is brought to 8 bits (float: ``round(255 * p)``; uint16: ``round(v / 257)``),
        divided by 255 and min-max normalised per image when max != min (PySODMetrics' ``prepare_data``).
    pred_threshold : float
        A pixel is predicted foreground for Acc/IoU when its (mapped) value is ``> pred_threshold``.
    n_thresholds : int
        Size of the curve's threshold set. ``threshold_denominator`` gives the values.
    threshold_denominator : int
        Thresholds are ``k / threshold_denominator`` for k = 0 .. n_thresholds - 1 (255: TokenCut's
        ``arange(0, 1, 1/255)``; 256: MOVE's ``arange(0, 1, 1/256)``). They are computed as a division, not
        as ``k * (1/255)`` like ``arange``, so an 8-bit prediction v (value v/255) passes threshold k
        exactly when v > k; ``k * (1/255)`` is one ulp below ``k/255`` for 24 of the 255 values, which
        would let v = k pass with ``>``. For ``pred_mapping="pysod"`` the curve instead uses the 8-bit
        code ``q = uint8(255 * p)`` with ``q >= t`` for t = 0 .. 255.
    threshold_op : {">", ">="}
        Comparison of the prediction with a curve threshold.
    aggregation : {"mean_then_max", "max_then_mean"}
        ``max_fbeta`` = max over thresholds of the image-averaged F curve, or the mean over images of
        each image's best F (SelfMask/FOUND).
    beta_sq : float
        β² of the F-measure (0.3 everywhere in the field).
    selfmask_bug_compat : bool
        SelfMask squares ``beta_square`` once more, so its effective β² is ``beta_sq ** 2`` (0.09).
    empty_pred_precision, empty_gt_recall : float or None
        Precision when nothing is predicted / recall when the GT is empty. ``None``: use the plain ratio
        with ``pr_eps`` in the denominator (0/eps = 0), or 0 when ``pr_eps`` is 0 (PySOD).
    pr_eps : float
        Added to the denominators of precision, recall and F (SelfMask: 1e-7). With 0, F is 0 where its
        numerator is 0.
    iou_eps : float
        Added to the IoU denominator (MOVE 1e-8, SelfMask 1e-7).
    iou_empty_union : {"nan", "skip", "zero"}
        IoU of an image whose prediction and GT are both empty when ``iou_eps`` is 0: NaN that propagates
        into the mean (TokenCut), NaN skipped by the mean (paper repo's ``nanmean``), or 0 (PySOD).
    resize : {"auto", "bilinear", "nearest"}
        How a prediction of another size is resized to the GT size (the GT never is). ``"auto"``: nearest
        for a binary map (two values at most), bilinear otherwise. Bilinear is OpenCV ``INTER_LINEAR``.
    geometry : {"gt", "paper_repo"}
        ``"gt"``: score at the GT's own resolution. ``"paper_repo"``: shorter side → 335 (PIL bilinear,
        the GT becomes soft), centre crop 320×320, for the GT and for a prediction given at the GT size;
        a prediction already 320×320 is used as is.
    """

    name: str
    description: str = ""
    gt_threshold_acc: float = 0.0
    gt_threshold_f: float = 0.0
    pred_mapping: PredMapping = "raw"
    pred_threshold: float = 0.5
    n_thresholds: int = 255
    threshold_denominator: int = 255
    threshold_op: Literal[">", ">="] = ">"
    aggregation: Aggregation = "mean_then_max"
    beta_sq: float = 0.3
    selfmask_bug_compat: bool = False
    empty_pred_precision: float | None = 1.0
    empty_gt_recall: float | None = 1.0
    pr_eps: float = 0.0
    iou_eps: float = 0.0
    iou_empty_union: EmptyUnion = "nan"
    resize: ResizeMode = "auto"
    geometry: Geometry = "gt"
    _thresholds: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.pred_mapping == "pysod":
            thr = np.arange(256, dtype=np.float64)
            op = ">="
            if self.threshold_op != ">=" or self.n_thresholds != 256:
                raise ValueError("pred_mapping='pysod' needs n_thresholds=256 and threshold_op='>='")
        else:
            thr = np.arange(self.n_thresholds, dtype=np.float64) / float(self.threshold_denominator)
            op = self.threshold_op
        if op not in (">", ">="):
            raise ValueError(f"`threshold_op` must be '>' or '>='; got {op!r}")
        if self.aggregation not in ("mean_then_max", "max_then_mean"):
            raise ValueError(
                f"`aggregation` must be 'mean_then_max' or 'max_then_mean'; got {self.aggregation!r}"
            )
        if self.resize not in ("auto", "bilinear", "nearest"):
            raise ValueError(f"`resize` must be 'auto', 'bilinear' or 'nearest'; got {self.resize!r}")
        if self.iou_empty_union not in ("nan", "skip", "zero"):
            raise ValueError(
                f"`iou_empty_union` must be 'nan', 'skip' or 'zero'; got {self.iou_empty_union!r}"
            )
        if not self.beta_sq > 0:
            raise ValueError(f"`beta_sq` must be > 0; got {self.beta_sq!r}")
        thr.setflags(write=False)
        object.__setattr__(self, "_thresholds", thr)

    @property
    def effective_beta_sq(self) -> float:
        """β² actually used: ``beta_sq ** 2`` with ``selfmask_bug_compat``, else ``beta_sq``."""
        return self.beta_sq**2 if self.selfmask_bug_compat else self.beta_sq

    @property
    def thresholds(self) -> np.ndarray:
        """Curve thresholds, ascending, on the prediction's [0, 1] scale (PySOD: 8-bit codes 0..255)."""
        return self._thresholds

    def replace(self, **changes: object) -> ScorePreset:
        """Return a copy with ``changes`` applied (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)


_TOKENCUT = ScorePreset(
    name="tokencut",
    description="TokenCut metric.py: GT>0, pred>0.5, 255 thresholds k/255 with '>', mean-then-max, "
    "p:=1 / r:=1 on empty masks, IoU NaN on an empty union",
    gt_threshold_acc=0.0,
    gt_threshold_f=0.0,
    iou_empty_union="nan",
    resize="auto",
)

PRESETS: dict[str, ScorePreset] = {
    "tokencut": _TOKENCUT,
    "move": ScorePreset(
        name="move",
        description="MOVE segmentation_eval.py: GT/255>0.5, 256 thresholds k/256 with '>', mean-then-max, "
        "IoU eps 1e-8, prediction bilinear-resized",
        gt_threshold_acc=127.5,
        gt_threshold_f=127.5,
        n_thresholds=256,
        threshold_denominator=256,
        iou_eps=1e-8,
        iou_empty_union="zero",
        resize="bilinear",
    ),
    "selfmask": ScorePreset(
        name="selfmask",
        description="SelfMask metrics/*.py: GT>0, 255 thresholds with '>', per-image max then mean, "
        "eps 1e-7, effective beta^2 0.09 (selfmask_bug_compat)",
        gt_threshold_acc=0.0,
        gt_threshold_f=0.0,
        aggregation="max_then_mean",
        selfmask_bug_compat=True,
        empty_pred_precision=None,
        empty_gt_recall=None,
        pr_eps=1e-7,
        iou_eps=1e-7,
        iou_empty_union="zero",
        resize="bilinear",
    ),
    "paper_repo": ScorePreset(
        name="paper_repo",
        description="segmentation-tricks token_metric.py my_Fmax: 335 resize + 320 centre crop, bilinear GT, "
        "GT>0.5 for Acc/IoU, GT!=0 for F, IoU nanmean",
        gt_threshold_acc=127.5,
        gt_threshold_f=0.0,
        iou_empty_union="skip",
        resize="bilinear",
        geometry="paper_repo",
    ),
    "pysod": ScorePreset(
        name="pysod",
        description="PySODMetrics 1.6: GT>128, min-max normalised pred, 256 thresholds on uint8 codes "
        "with '>=', mean-then-max, empty pred/GT -> p/r 0",
        gt_threshold_acc=128.0,
        gt_threshold_f=128.0,
        pred_mapping="pysod",
        n_thresholds=256,
        threshold_denominator=1,
        threshold_op=">=",
        empty_pred_precision=None,
        empty_gt_recall=None,
        iou_empty_union="zero",
        resize="bilinear",
    ),
}

DEFAULT_PRESET = "tokencut"


def get_preset(preset: str | ScorePreset | None = None) -> ScorePreset:
    """Return a registered preset by name (or pass a :class:`ScorePreset` through).

    Parameters
    ----------
    preset : str or ScorePreset or None
        Name in :data:`PRESETS`; ``None`` gives the default ``"tokencut"``.

    Returns
    -------
    ScorePreset

    Raises
    ------
    ValueError
        Unknown name (the message lists the registered ones).
    TypeError
        Neither a string nor a ScorePreset.

    Examples
    --------
    >>> get_preset("selfmask").effective_beta_sq
    0.09
    """
    if preset is None:
        return PRESETS[DEFAULT_PRESET]
    if isinstance(preset, ScorePreset):
        return preset
    if not isinstance(preset, str):
        raise TypeError(f"`preset` must be a preset name or a ScorePreset; got {type(preset).__name__}")
    if preset not in PRESETS:
        listed = ", ".join(repr(k) for k in PRESETS)
        raise ValueError(f"`preset` must be one of {listed}; got {preset!r}")
    return PRESETS[preset]
