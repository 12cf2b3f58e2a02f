"""Score presets: the field's saliency-evaluation conventions as frozen dataclasses (docs/evaluation.md).

Each preset fixes every choice that changes a number: how the ground truth is binarised, where the
prediction is thresholded for Acc/IoU, the threshold set (and ``>`` vs ``>=``) of the F/E curves, the
aggregation order (mean over images then max over thresholds, or per-image max then mean), the rules for
empty masks, and how a prediction of another size is brought onto the ground truth's grid.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, TypedDict

import numpy as np
import numpy.typing as npt

from maskrefine._checks import (
    check_flag,
    check_float_range,
    check_int_range,
    is_one_of,
    real_to_float,
    short_repr,
)
from maskrefine.metrics.confusion import MAX_THRESHOLDS

__all__ = ["ScorePreset", "PRESETS", "DEFAULT_PRESET", "GT_EQUALS_255", "get_preset", "check_beta_sq"]

Aggregation = Literal["mean_then_max", "max_then_mean"]
ResizeMode = Literal["auto", "bilinear", "nearest", "pil_bilinear", "torch_bilinear"]
EmptyUnion = Literal["nan", "skip", "zero"]
PredMapping = Literal["raw", "pysod"]
Geometry = Literal["gt", "paper_repo"]
ThresholdValues = Literal["division", "arange"]
Dtype = Literal["float64", "float32"]
CompareDtype = Literal["float64", "float32", "map"]
Rule = Literal["pysod", "selfmask"]
MaeRule = Literal["soft", "binary"]
CorlocGrid = Literal["token", "pixel"]

#: GT threshold that makes ``gt > threshold`` mean "GT == 255" for uint8, bool and [0, 1] float GT (FOUND).
GT_EQUALS_255 = float(np.nextafter(255.0, 0.0))
_RESIZE_MODES = ("auto", "bilinear", "nearest", "pil_bilinear", "torch_bilinear")


#: Largest ``beta_sq`` of a preset (0.3 in the field). ``selfmask_bug_compat`` squares it, and near 1e155
#: that square overflowed (OverflowError while scoring); F with β² this large is already the recall.
MAX_BETA_SQ = 1e6
#: Largest ``pr_eps`` / ``iou_eps`` (the protocols use 1e-8 .. 1e-7). ``pr_eps`` is also added to F's
#: denominator, where precision and recall are <= 1: 1 already caps F near 0.57, and a huge eps silently
#: turns every precision, F and IoU into ~0 (``pr_eps=1e308`` gave max F 6.6e-309).
MAX_PRESET_EPS = 1e-3


def check_beta_sq(beta_sq: object) -> float:
    """Return β² as a float in (0, :data:`MAX_BETA_SQ`], or raise ``TypeError`` / ``ValueError`` naming it."""
    if isinstance(beta_sq, bool) or not isinstance(beta_sq, numbers.Real):
        raise TypeError(f"`beta_sq` must be a real number; got {short_repr(beta_sq)}")
    value = real_to_float(beta_sq)  # a huge int: inf, refused below
    if not (math.isfinite(value) and 0 < value <= MAX_BETA_SQ):
        raise ValueError(f"`beta_sq` must be > 0 and <= {MAX_BETA_SQ:g}; got {short_repr(beta_sq)}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class ScorePreset:
    """One evaluation convention.

    Parameters
    ----------
    name : str
        Registry key.
    description : str, default ""
        One line naming the reference code.
    gt_threshold_acc : float, default 0.0
        Ground-truth pixels with value ``> gt_threshold_acc`` (on the 0..255 scale; a float GT in [0, 1]
        is multiplied by 255 first, a bool GT counts as 0/255) are foreground for Acc and IoU.
    gt_threshold_f : float, default 0.0
        Same, for the F-measure, precision/recall curves, MAE, S-measure, E-measure and weighted F.
    pred_mapping : {"raw", "pysod"}, default "raw"
        ``"raw"``: the prediction is used as a probability (uint8 / 255, uint16 / 65535, float as is).
        ``"pysod"``: the map is brought to 8 bits (float: ``round(255 * p)``; uint16: ``round(v / 257)``),
        divided by 255 and min-max normalised per image when max != min (PySODMetrics' ``prepare_data``).
    pred_threshold : float, default 0.5
        A pixel is predicted foreground for Acc/IoU when its (mapped) value is ``> pred_threshold``.
    n_thresholds : int, default 255
        Size of the curve's threshold set. ``threshold_denominator`` gives the values.
    threshold_denominator : int, default 255
        Thresholds are k / threshold_denominator for k = 0 .. n_thresholds - 1 (255: TokenCut's and
        SelfMask's ``arange(0, 1, 1/255)``; 256: MOVE's ``arange(0, 1, 1/256)``), computed as
        ``threshold_values`` says. For ``pred_mapping="pysod"`` the curve instead uses the 8-bit code
        ``q = uint8(255 * p)`` with ``q >= t`` for t = 0 .. 255.
    threshold_op : {">", ">="}, default ">"
        Comparison of the prediction with a curve threshold.
    aggregation : {"mean_then_max", "max_then_mean"}, default "mean_then_max"
        ``max_fbeta`` = max over thresholds of the image-averaged F curve, or the mean over images of
        each image's best F (SelfMask/FOUND).
    beta_sq : float, default 0.3
        β² of the F-measure (0.3 everywhere in the field).
    selfmask_bug_compat : bool, default False
        SelfMask squares ``beta_square`` once more, so its effective β² is ``beta_sq ** 2`` (0.09).
    empty_pred_precision, empty_gt_recall : float or None, default 1.0
        Precision when nothing is predicted / recall when the GT is empty. ``None``: use the plain ratio
        with ``pr_eps`` in the denominator (0/eps = 0), or 0 when ``pr_eps`` is 0 (PySOD).
    pr_eps : float, default 0.0
        Added to the denominators of precision, recall and F (SelfMask: 1e-7). With 0, F is 0 where its
        numerator is 0.
    iou_eps : float, default 0.0
        Added to the IoU denominator (MOVE 1e-8, SelfMask 1e-7).
    iou_empty_union : {"nan", "skip", "zero"}, default "nan"
        IoU of an image whose prediction and GT are both empty when ``iou_eps`` is 0: NaN that propagates
        into the mean (TokenCut), NaN skipped by the mean (paper repo's ``nanmean``), or 0 (PySOD).
    resize : {"auto", "bilinear", "nearest", "pil_bilinear", "torch_bilinear"}, default "auto"
        How a smaller prediction is brought to the GT size (the GT never is). Only the GT size or a
        uniform integer down-scale is accepted (:func:`maskrefine.metrics.resize.prediction_stride`).
        ``"bilinear"``: OpenCV ``INTER_LINEAR`` on the map's own dtype (PySOD's driver).
        ``"pil_bilinear"``: Pillow ``BILINEAR`` on the 8-bit map (MOVE). ``"torch_bilinear"``: float32
        ``interpolate(bilinear, align_corners=False)`` by the stride, then cropped (SelfMask, FOUND).
        ``"nearest"``: torch ``interpolate(size=(H, W), mode="nearest")``, the token grid stretched
        onto the GT (TokenCut's ``ncut``, also when the grid was rounded up). ``"auto"``: ``"nearest"``
        for a map with two values at most (TokenCut's token mask), ``"torch_bilinear"`` for a soft map
        (TokenCut never resizes a soft map; this is maskrefine's extension).
    geometry : {"gt", "paper_repo"}, default "gt"
        ``"gt"``: score at the GT's own resolution. ``"paper_repo"``: shorter side → 335 (PIL bilinear,
        the GT becomes soft), centre crop 320×320, for the GT and for a prediction given at the GT size;
        a prediction already 320×320 is used as is.
    threshold_values : {"division", "arange"}, default "division"
        ``"division"``: the thresholds are ``k / threshold_denominator``. ``"arange"``:
        ``np.arange(0, 1, 1 / threshold_denominator)`` in float64 (TokenCut), which for 24 of the 255
        values lies one ulp below ``k / 255``, so that an 8-bit value v = k passes ``>`` there.
    compare_dtype : {"float64", "float32", "map"}, default "float64"
        The prediction values and the thresholds are rounded to this dtype before they are compared
        (SelfMask, FOUND, MOVE and the paper repo compare float32 tensors). ``"map"`` (TokenCut, which
        compares the array it is given, ``torch.from_numpy(pred) > split``): the dtype of the map itself
        when it is floating (float16, float32 or float64), float64 for an 8- or 16-bit map (v/255,
        v/65535) or a bool map.
    s_measure_rule, adaptive_rule : {"pysod", "selfmask"}, default "pysod"
        S-measure: PySOD splits the regions at the GT centroid + 1 (MATLAB indexing); SelfMask at the
        rounded centroid itself. Adaptive F: PySOD ``pred >= min(2 mean, 1)``; SelfMask ``pred > 2 mean``
        in float32 with no clip (an all-zero map or a mean above 0.5 predicts nothing).
    mae_rule : {"soft", "binary"}, default "soft"
        ``"binary"`` (FOUND): ``mae`` is the MAE of ``pred > pred_threshold`` and the MAE of the soft map
        is reported as ``soft_mae``.
    ratio_dtype : {"float64", "float32"}, default "float64"
        Type of the per-image accuracy and IoU divisions: ``"float32"`` where the reference divides float32
        count tensors (TokenCut, MOVE: ``torch.mean`` of a float32 0/1 tensor, ``tp.float() / union``).
    accumulate : {"float64", "float32"}, default "float64"
        ``"float32"`` (SelfMask/FOUND's ``AverageMeter`` over float32 values): the per-image acc, IoU,
        max F, adaptive F and MAE are rounded to float32 and summed one by one in float32.
    corloc_selector : {"largest_box", "largest_cc", "seed_cc"}, default "largest_box"
        The preset's CorLoc component selector (:class:`maskrefine.metrics.corloc.CorLocEvaluator`).
    corloc_connectivity : {4, 8}, default 8
        Pixel connectivity of the CorLoc components.
    corloc_grid : {"token", "pixel"}, default "pixel"
        ``"token"``: CorLoc boxes on the prediction's own (token) grid placed on the padded image then
        clipped to it; ``"pixel"``: on the prediction resized to the GT size.
    corloc_iou_dtype : {"float64", "float32"}, default "float64"
        Box IoU in float32 (TokenCut/FOUND's torch ``bbox_iou`` on integer boxes, where IoU exactly 0.5
        is a hit) or float64.

    Raises
    ------
    TypeError
        A field of the wrong type (e.g. an empty or non-string ``name``, a non-bool
        ``selfmask_bug_compat``).
    ValueError
        A field out of range or not among its choices, or ``pred_mapping="pysod"`` without
        ``n_thresholds=256`` and ``threshold_op=">="``.
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
    threshold_values: ThresholdValues = "division"
    compare_dtype: CompareDtype = "float64"
    s_measure_rule: Rule = "pysod"
    adaptive_rule: Rule = "pysod"
    mae_rule: MaeRule = "soft"
    ratio_dtype: Dtype = "float64"
    accumulate: Dtype = "float64"
    corloc_selector: str = "largest_box"
    corloc_connectivity: int = 8
    corloc_grid: CorlocGrid = "pixel"
    corloc_iou_dtype: Dtype = "float64"
    _thresholds: npt.NDArray[np.float64] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Validate the fields and compute the read-only threshold array."""
        self._check_values()
        thr: npt.NDArray[np.float64]
        if self.pred_mapping == "pysod":
            thr = np.arange(256, dtype=np.float64)
            op = ">="
            if self.threshold_op != ">=" or self.n_thresholds != 256:
                raise ValueError("pred_mapping='pysod' needs n_thresholds=256 and threshold_op='>='")
        else:
            if self.threshold_values == "arange":
                thr = np.arange(0.0, 1.0, 1.0 / self.threshold_denominator, dtype=np.float64)[
                    : self.n_thresholds
                ]
            elif self.threshold_values == "division":
                thr = np.arange(self.n_thresholds, dtype=np.float64) / float(self.threshold_denominator)
            else:
                raise ValueError(
                    "`threshold_values` must be 'division' or 'arange'; "
                    f"got {short_repr(self.threshold_values)}"
                )
            if thr.size != self.n_thresholds:
                raise ValueError("`n_thresholds` must not exceed `threshold_denominator` with 'arange'")
            if self.compare_dtype == "float32":
                thr = thr.astype(np.float32).astype(np.float64)
            op = self.threshold_op
        if not is_one_of(op, (">", ">=")):
            raise ValueError(f"`threshold_op` must be '>' or '>='; got {short_repr(op)}")
        if not is_one_of(self.aggregation, ("mean_then_max", "max_then_mean")):
            raise ValueError(
                "`aggregation` must be 'mean_then_max' or 'max_then_mean'; "
                f"got {short_repr(self.aggregation)}"
            )
        if not is_one_of(self.resize, _RESIZE_MODES):
            raise ValueError(
                f"`resize` must be one of {', '.join(map(repr, _RESIZE_MODES))}; "
                f"got {short_repr(self.resize)}"
            )
        thr.setflags(write=False)
        object.__setattr__(self, "_thresholds", thr)

    def _check_values(self) -> None:
        """Refuse fields of the wrong type or out of range (the message names the field)."""
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"`name` must be a non-empty string; got {short_repr(self.name)}")
        if not isinstance(self.description, str):
            raise TypeError(f"`description` must be a string; got {type(self.description).__name__}")
        check_flag(self.selfmask_bug_compat, "selfmask_bug_compat")
        check_float_range(self.gt_threshold_acc, "gt_threshold_acc", 0.0, 255.0)
        check_float_range(self.gt_threshold_f, "gt_threshold_f", 0.0, 255.0)
        check_float_range(self.pred_threshold, "pred_threshold", 0.0, 1.0)
        check_int_range(self.n_thresholds, "n_thresholds", 1, MAX_THRESHOLDS)
        check_int_range(self.threshold_denominator, "threshold_denominator", 1, 1 << 20)
        check_beta_sq(self.beta_sq)
        check_float_range(self.pr_eps, "pr_eps", 0.0, MAX_PRESET_EPS)
        check_float_range(self.iou_eps, "iou_eps", 0.0, MAX_PRESET_EPS)
        for key in ("empty_pred_precision", "empty_gt_recall"):
            value = getattr(self, key)
            if value is not None:
                check_float_range(value, key, 0.0, 1.0)
        for key, allowed in (
            ("pred_mapping", ("raw", "pysod")),
            ("geometry", ("gt", "paper_repo")),
            ("compare_dtype", ("float64", "float32", "map")),
            ("ratio_dtype", ("float64", "float32")),
            ("accumulate", ("float64", "float32")),
            ("s_measure_rule", ("pysod", "selfmask")),
            ("adaptive_rule", ("pysod", "selfmask")),
            ("mae_rule", ("soft", "binary")),
            ("corloc_selector", ("largest_box", "largest_cc", "seed_cc")),
            ("corloc_connectivity", (4, 8)),
            ("corloc_grid", ("token", "pixel")),
            ("corloc_iou_dtype", ("float64", "float32")),
        ):
            value = getattr(self, key)
            if not is_one_of(value, allowed):
                listed = ", ".join(map(repr, allowed))
                raise ValueError(f"`{key}` must be one of {listed}; got {short_repr(value)}")
        if not is_one_of(self.iou_empty_union, ("nan", "skip", "zero")):
            raise ValueError(
                f"`iou_empty_union` must be 'nan', 'skip' or 'zero'; got {short_repr(self.iou_empty_union)}"
            )

    @property
    def effective_beta_sq(self) -> float:
        """β² actually used: ``beta_sq ** 2`` with ``selfmask_bug_compat``, else ``beta_sq``."""
        return self.beta_sq**2 if self.selfmask_bug_compat else self.beta_sq

    @property
    def thresholds(self) -> npt.NDArray[np.float64]:
        """Curve thresholds, ascending, on the prediction's [0, 1] scale (PySOD: 8-bit codes 0..255)."""
        return self._thresholds

    def replace(self, **changes: Any) -> ScorePreset:
        """Return a copy with ``changes`` applied (``dataclasses.replace``).

        The values are validated by the new preset's ``__post_init__``, as for the constructor.

        Parameters
        ----------
        **changes
            New values of fields, by field name (see the class parameters), e.g. ``name="mine"``,
            ``beta_sq=1.0``.

        Returns
        -------
        ScorePreset
            A new preset; ``self`` is unchanged.

        Raises
        ------
        TypeError
            An unknown field name, or a value of the wrong type.
        ValueError
            A value out of range or not among a field's choices, or an inconsistent combination (e.g.
            ``pred_mapping="pysod"`` without ``n_thresholds=256`` and ``threshold_op=">="``).
        """
        return dataclasses.replace(self, **changes)


_TOKENCUT = ScorePreset(
    name="tokencut",
    description="TokenCut metric.py: GT>0, pred>0.5, 255 thresholds np.arange(0, 1, 1/255) with '>' in "
    "the map's own float type (float64 for 8-bit files), mean-then-max, p:=1 / r:=1 on empty masks, "
    "float32 Acc/IoU per image, IoU NaN on an empty union; CorLoc: seed "
    "component, 4-connectivity, token grid",
    gt_threshold_acc=0.0,
    gt_threshold_f=0.0,
    iou_empty_union="nan",
    resize="auto",
    threshold_values="arange",
    compare_dtype="map",
    ratio_dtype="float32",
    corloc_selector="seed_cc",
    corloc_connectivity=4,
    corloc_grid="token",
    corloc_iou_dtype="float32",
)


class _SelfMaskRules(TypedDict):
    """The fields SelfMask's metrics fix, shared by the ``selfmask`` and ``found`` presets."""

    aggregation: Aggregation
    selfmask_bug_compat: bool
    empty_pred_precision: float | None
    empty_gt_recall: float | None
    pr_eps: float
    iou_eps: float
    iou_empty_union: EmptyUnion
    resize: ResizeMode
    compare_dtype: Dtype
    s_measure_rule: Rule
    adaptive_rule: Rule
    accumulate: Dtype


_SELFMASK_RULES: _SelfMaskRules = {
    "aggregation": "max_then_mean",
    "selfmask_bug_compat": True,
    "empty_pred_precision": None,
    "empty_gt_recall": None,
    "pr_eps": 1e-7,
    "iou_eps": 1e-7,
    "iou_empty_union": "zero",
    "resize": "torch_bilinear",
    "compare_dtype": "float32",
    "s_measure_rule": "selfmask",
    "adaptive_rule": "selfmask",
    "accumulate": "float32",
}

PRESETS: dict[str, ScorePreset] = {
    "tokencut": _TOKENCUT,
    "move": ScorePreset(
        name="move",
        description="MOVE segmentation_eval.py: GT/255>0.5, 256 thresholds k/256 with '>', mean-then-max, "
        "IoU eps 1e-8, prediction resized with Pillow bilinear on the 8-bit map",
        gt_threshold_acc=127.5,
        gt_threshold_f=127.5,
        n_thresholds=256,
        threshold_denominator=256,
        iou_eps=1e-8,
        iou_empty_union="zero",
        resize="pil_bilinear",
        compare_dtype="float32",
        ratio_dtype="float32",
    ),
    "selfmask": ScorePreset(
        name="selfmask",
        description="SelfMask metrics/*.py: GT>0, 255 float32 thresholds with '>', per-image max then "
        "mean (float32 sums), eps 1e-7, effective beta^2 0.09 (selfmask_bug_compat), torch bilinear resize",
        gt_threshold_acc=0.0,
        gt_threshold_f=0.0,
        **_SELFMASK_RULES,
    ),
    "found": ScorePreset(
        name="found",
        description="FOUND evaluation/saliency.py (SelfMask's metrics): GT==255, MAE of pred>0.5 (soft MAE "
        "as soft_mae); CorLoc: largest component by token count, 4-connectivity, token grid",
        gt_threshold_acc=GT_EQUALS_255,
        gt_threshold_f=GT_EQUALS_255,
        mae_rule="binary",
        corloc_selector="largest_cc",
        corloc_connectivity=4,
        corloc_grid="token",
        corloc_iou_dtype="float32",
        **_SELFMASK_RULES,
    ),
    "paper_repo": ScorePreset(
        name="paper_repo",
        description="segmentation-tricks token_metric.py my_Fmax: 335 resize + 320 centre crop, bilinear GT, "
        "GT>0.5 for Acc/IoU, GT!=0 for F, 255 thresholds np.arange(0, 1, 1/255) with '>' on the float32 "
        "map, IoU nanmean",
        gt_threshold_acc=127.5,
        gt_threshold_f=0.0,
        iou_empty_union="skip",
        resize="bilinear",
        geometry="paper_repo",
        threshold_values="arange",
        compare_dtype="float32",
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
        raise ValueError(f"`preset` must be one of {listed}; got {short_repr(preset)}")
    return PRESETS[preset]


#: Files a preset's reference script reads otherwise than maskrefine's reader decodes them
#: (docs/evaluation.md, "Files"): preset name -> ((role, file kind, what the script does), ...). Roles:
#: ``"gt"``, ``"predictions"``. Kinds: ``"low_bit"`` (a gray PNG of 1, 2 or 4 bits per sample, which
#: maskrefine reads as 0/255) and ``"graded_16"`` (a 16-bit file with values strictly between 0 and
#: 65535, which maskrefine reads on its own scale). ``score`` counts such files and says so; the numbers
#: it prints are the reference's for the decoded 8-bit-scale map.
REFERENCE_READS_OTHERWISE: MappingProxyType[str, tuple[tuple[str, str, str], ...]] = MappingProxyType(
    {
        "move": (
            (
                "gt",
                "low_bit",
                "1/2/4-bit gray PNG: MOVE's segmentation_eval.py opens it without converting it, reads "
                "0/1 values and finds no foreground",
            ),
            ("gt", "graded_16", "graded 16-bit: MOVE compares the 16-bit values with 128, unscaled"),
            ("predictions", "graded_16", "graded 16-bit: MOVE's convert('L') clips the values at 255"),
        ),
        "found": (
            (
                "gt",
                "graded_16",
                "graded 16-bit: FOUND's convert('L') clips the values at 255, so 255 and above is foreground",
            ),
        ),
        "paper_repo": (
            (
                "gt",
                "graded_16",
                "graded 16-bit: the paper repo's convert('L') clips the values at 255 before its resize",
            ),
        ),
        "pysod": (
            (
                "gt",
                "graded_16",
                "graded 16-bit: cv2.IMREAD_GRAYSCALE keeps v >> 8 (maskrefine: round(v / 257))",
            ),
            (
                "predictions",
                "graded_16",
                "graded 16-bit: cv2.IMREAD_GRAYSCALE keeps v >> 8 (maskrefine: round(v / 257))",
            ),
        ),
    }
)
