"""Named settings of the baseline refiners: the bilateral solver's and the dense CRF's presets.

A module of plain data (no numba, no SciPy): :mod:`maskrefine.refiners` checks preset names against these
tables when it registers the built-in refiners at import, which ``maskrefine --version`` / ``--help`` do
without loading the filters. :mod:`maskrefine.filters.bilateral_solver` and
:mod:`maskrefine.filters.dense_crf` use them and export them under the same names.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["BilateralPreset", "BILATERAL_PRESETS", "CrfPreset", "CRF_PRESETS"]


@dataclass(frozen=True, slots=True)
class BilateralPreset:
    """Grid bandwidths and output of one published use of the solver."""

    sigma_spatial: float
    sigma_luma: float
    sigma_chroma: float
    output: str
    source: str


#: Named settings (docs/filters.md, section 7). ``tokencut`` is the default.
BILATERAL_PRESETS: MappingProxyType[str, BilateralPreset] = MappingProxyType(
    {
        "tokencut": BilateralPreset(
            16.0, 16.0, 8.0, "soft", "TokenCut get_saliency.py / MOVE infer.py: σ 16/16/8, soft output"
        ),
        "paper_repo": BilateralPreset(
            24.0, 4.0, 4.0, "soft", "paper repo get_bf_optimized_masks: function defaults 24/4/4, soft output"
        ),
        "found": BilateralPreset(
            16.0,
            16.0,
            8.0,
            "found",
            "FOUND misc.py: σ 16/16/8, hole-filled largest component, kept only if IoU(input, it) > 0.5",
        ),
        "found_multi": BilateralPreset(
            16.0,
            16.0,
            8.0,
            "found_multi",
            "FOUND misc.py, evaluation mode multi: σ 16/16/8, every hole-filled component but the largest "
            "region, kept only if IoU(input, it) > 0.5",
        ),
    }
)


@dataclass(frozen=True, slots=True)
class CrfPreset:
    """Kernel widths, weights and iterations of one published CRF setting, and how it makes its unaries.

    ``unary_clip``: the probabilities are clipped to ``[low, high]`` before ``-log`` (pydensecrf's
    ``unary_from_softmax``: ``[1e-5, 1]``; SimpleCRF's ``computeUnary``: ``[0.01, 0.99]`` in float32).
    ``binary_gt_prob``: the confidence a 0/1 mask's labels get before that (pydensecrf's
    ``unary_from_labels``, 0.7 in its README example), or None where the clip alone does it (SimpleCRF
    is given one-hot labels: 0.99 / 0.01).
    """

    gaussian_sxy: float
    gaussian_compat: float
    bilateral_sxy: float
    bilateral_srgb: float
    bilateral_compat: float
    iterations: int
    source: str
    unary_clip: tuple[float, float] = (1e-5, 1.0)
    binary_gt_prob: float | None = 0.7


#: Named CRF settings (docs/filters.md; the module docstring of :mod:`maskrefine.filters.dense_crf`).
CRF_PRESETS: MappingProxyType[str, CrfPreset] = MappingProxyType(
    {
        "deeplab": CrfPreset(
            3.0, 3.0, 80.0, 13.0, 10.0, 10, "pydensecrf README example kernels, 10 iterations (DeepLab-style)"
        ),
        "deeplab_v2": CrfPreset(
            1.0,
            3.0,
            67.0,
            3.0,
            4.0,
            10,
            "DeepLab-v2 (ResNet-101) setting as deeplab-pytorch's crf.py, MaskContrast and STEGO copy it: "
            "softmax unaries for every mask, 10 iterations",
            binary_gt_prob=None,
        ),
        "deep_spectral": CrfPreset(
            3.0,
            3.0,
            40.0,
            13.0,
            6.0,
            5,
            "deep-spectral-segmentation object localisation ParamsCRF (SimpleCRF: one-hot labels, "
            "probabilities clipped to [0.01, 0.99])",
            unary_clip=(0.01, 0.99),
            binary_gt_prob=None,
        ),
    }
)
