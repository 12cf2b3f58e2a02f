"""Refiners: turn a coarse mask into a refined one with the image as guide.

:data:`REFINERS` is the registry every choice is read from (the CLI's ``--method`` choices, its ``--help``
text and the parametrised tests), so registering a :class:`RefinerSpec` adds a method everywhere.
:func:`refine` is the array-level entry point: validate, bring the mask to the image size, filter, clip.

Mask resize rule (used by :func:`refine` and by :func:`maskrefine.pipeline.apply_folder`)
----------------------------------------------------------------------------------------
A mask of shape ``(h, w)`` is resized to the image's ``(H, W)`` with OpenCV: ``cv2.INTER_LINEAR``
(bilinear, pixel centres aligned, i.e. PyTorch's ``align_corners=False``) for soft masks, and
``cv2.INTER_NEAREST`` when ``binary_input=True`` (a hard mask stays hard; the guided filter then does
the smoothing). A mask that already has the image size is used as is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt

from maskrefine._checks import (
    MAX_LAM,
    as_float_array,
    check_choice,
    check_eps,
    check_flag,
    check_float_range,
    check_gt_prob,
    check_int_range,
    check_radius,
    check_subsample,
    check_unit_interval,
    short_repr,
)
from maskrefine.baseline_presets import BILATERAL_PRESETS, CRF_PRESETS
from maskrefine.guide import GUIDE_MODES  # re-exported: the guide modes accepted by refine()

if TYPE_CHECKING:
    from maskrefine.auto import AutoDecision

__all__ = [
    "RefinerSpec",
    "REFINERS",
    "GUIDE_MODES",
    "register_refiner",
    "resolve_params",
    "refine",
    "resize_mask",
    "check_mask_size",
]


RefineFn = Callable[..., np.ndarray]


@dataclass(frozen=True, slots=True, kw_only=True)
class RefinerSpec:
    """A registered refinement method.

    Parameters
    ----------
    name : str
        Registry key (the CLI's ``--method`` value).
    summary : str
        One line shown in ``--help``.
    defaults : Mapping of str to object
        Accepted parameters and their default values; any other parameter is refused.
    run : callable
        ``run(image, mask, *, guide, **params) -> ndarray``. ``image`` is (H, W, 3) float32 in [0, 1],
        ``mask`` is (H, W) float32 in [0, 1] already at the image size, ``guide`` the guide mode and
        ``params`` the validated, complete parameter set. Returns an (H, W) float array (clipped by
        :func:`refine`).
    validators : Mapping of str to callable, default {}
        Optional per-parameter checks ``check(value, name) -> value`` (raise ``TypeError``/``ValueError``).
    native_mask : bool, default False
        ``run`` receives the mask at its own (native) size and resizes it itself (``auto`` does, to see
        the patch size).
    uses_guide : bool, default True
        ``run`` filters with the ``guide`` mode it is given (False: it reads the RGB image its own way, or
        not at all, so choosing a guide is a mistake the CLI refuses).
    """

    name: str
    summary: str
    defaults: Mapping[str, Any]
    run: RefineFn
    validators: Mapping[str, Callable[[Any, str], Any]] = field(default_factory=dict)
    native_mask: bool = False
    uses_guide: bool = True


REFINERS: dict[str, RefinerSpec] = {}


def register_refiner(spec: RefinerSpec) -> RefinerSpec:
    """Add ``spec`` to :data:`REFINERS` (its name must be new) and return it.

    Each default is checked by its own validator here (one that refuses its default would fail every
    call). The built-in refiners' validators import neither numba nor the filters, so this check costs
    ``maskrefine --version`` nothing.

    Parameters
    ----------
    spec : RefinerSpec
        The method to register; its ``name`` becomes the key in :data:`REFINERS`.

    Returns
    -------
    RefinerSpec
        The registered spec: a copy of ``spec`` whose ``defaults`` and ``validators`` are read-only copies
        of the mappings given (later changes to those do not reach the registry), and whose
        ``native_mask`` and ``uses_guide`` are plain bools.

    Raises
    ------
    TypeError
        ``spec`` is not a :class:`RefinerSpec`, or one of its fields has the wrong type (``name`` and
        ``summary`` strings, ``run`` callable, ``defaults`` / ``validators`` mappings with string keys,
        each validator callable, ``native_mask`` and ``uses_guide`` bools).
    ValueError
        The name is empty, has surrounding or inner whitespace, or is taken; a validator names a
        parameter that is not in ``defaults``; a default value its validator refuses (whatever that
        validator raises propagates).
    """
    if not isinstance(spec, RefinerSpec):
        raise TypeError(f"`spec` must be a RefinerSpec; got {type(spec).__name__}")
    name = spec.name
    if not isinstance(name, str):
        raise TypeError(f"`spec.name` must be a string; got {type(name).__name__}")
    if not name or name != name.strip() or any(ch.isspace() for ch in name) or not name.isprintable():
        raise ValueError(f"`spec.name` must be a non-empty name without spaces; got {short_repr(name)}")
    if name in REFINERS:
        raise ValueError(f"a refiner named {short_repr(name)} is already registered")
    if not isinstance(spec.summary, str):
        raise TypeError(f"`spec.summary` must be a string; got {type(spec.summary).__name__}")
    if not callable(spec.run):
        raise TypeError(f"`spec.run` must be callable; got {type(spec.run).__name__}")
    for field_name in ("defaults", "validators"):
        table = getattr(spec, field_name)
        if not isinstance(table, Mapping) or not all(isinstance(key, str) for key in table):
            raise TypeError(
                f"`spec.{field_name}` must be a mapping with string keys; got {short_repr(table)}"
            )
    defaults = dict(spec.defaults)
    validators = dict(spec.validators)
    for key, check in validators.items():
        if key not in defaults:
            raise ValueError(
                f"`spec.validators` checks {short_repr(key)}, which is not a parameter in `spec.defaults`"
            )
        if not callable(check):
            raise TypeError(
                f"`spec.validators[{short_repr(key)}]` must be callable; got {type(check).__name__}"
            )
        check(defaults[key], key)  # a default its own validator refuses would fail every call
    native_mask = check_flag(spec.native_mask, "spec.native_mask")
    uses_guide = check_flag(spec.uses_guide, "spec.uses_guide")
    REFINERS[name] = RefinerSpec(
        name=name,
        summary=spec.summary,
        defaults=MappingProxyType(defaults),
        run=spec.run,
        validators=MappingProxyType(validators),
        native_mask=native_mask,
        uses_guide=uses_guide,
    )
    return REFINERS[name]


def _check_method(method: object) -> RefinerSpec:
    if not isinstance(method, str) or method not in REFINERS:
        listed = ", ".join(repr(name) for name in REFINERS)
        raise ValueError(f"`method` must be one of {listed}; got {short_repr(method)}")
    return REFINERS[method]


def resolve_params(method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the complete, validated parameter set of ``method`` (defaults overridden by ``params``).

    Parameters
    ----------
    method : str
        A key of :data:`REFINERS`.
    params : mapping, optional
        Parameters to override; ``None`` values are ignored (they mean "use the default").

    Returns
    -------
    dict
        Every parameter of the method with its value.

    Raises
    ------
    ValueError
        Unknown method or parameter (the message lists the choices), or an invalid value.
    TypeError
        A parameter of the wrong type.
    """
    spec = _check_method(method)
    given = {key: value for key, value in (params or {}).items() if value is not None}
    unknown = [key for key in given if key not in spec.defaults]
    if unknown:
        # names in backticks: the CLI shows them as the options typed (`sigma_luma` -> --sigma-luma)
        accepted = ", ".join(f"`{key}`" for key in spec.defaults) or "none"
        named = ", ".join(
            f"`{key}`"
            if isinstance(key, str) and key.isidentifier() and len(key) <= 40
            else short_repr(key, 40)
            for key in unknown[:5]
        )
        raise ValueError(
            f"refiner {method!r} does not accept parameter(s) {named}{', ...' if len(unknown) > 5 else ''}; "
            f"accepted: {accepted}"
        )
    resolved = {**spec.defaults, **given}
    for key, check in spec.validators.items():
        resolved[key] = check(resolved[key], key)
    return resolved


def check_mask_size(mask_hw: tuple[int, int], image_hw: tuple[int, int]) -> str | None:
    """Say why a mask of size ``mask_hw`` cannot belong to an image of size ``image_hw``, or return None.

    The rule used by :func:`maskrefine.pipeline.apply_folder`: the mask must not be larger than the image
    in either dimension, and it must be a (possibly rounded) uniform downscale of it, i.e. there is a
    stride ``s >= 1`` with ``|h - H/s| <= 1`` and ``|w - W/s| <= 1``. This accepts full-size masks and
    patch-grid masks (1/8, 1/16, ..., rounded up or down) and refuses masks of another aspect ratio,
    which usually mean the mask was paired with the wrong image.

    Parameters
    ----------
    mask_hw, image_hw : tuple of int
        ``(height, width)`` of the mask and of the image.

    Returns
    -------
    str or None
        The problem, or ``None`` when the size is acceptable.
    """
    h, w = int(mask_hw[0]), int(mask_hw[1])
    big_h, big_w = int(image_hw[0]), int(image_hw[1])
    if h > big_h or w > big_w:
        return f"mask is larger than the image ({h}x{w} > {big_h}x{big_w}, HxW)"
    # |h - H/s| <= 1  <=>  H/(h+1) <= s <= H/(h-1)   (no upper bound when h <= 1)
    low = max(1.0, big_h / (h + 1), big_w / (w + 1))
    high = min(big_h / (h - 1) if h > 1 else math.inf, big_w / (w - 1) if w > 1 else math.inf)
    if low > high * (1 + 1e-9):
        return (
            f"mask size {h}x{w} is not a uniform downscale of the image size {big_h}x{big_w} (HxW); "
            "the aspect ratios differ: is it paired with the right image?"
        )
    return None


def resize_mask(
    mask: npt.NDArray[np.floating],
    size_hw: tuple[int, int],
    *,
    binary_input: bool = False,
    place_grid: bool = True,
) -> npt.NDArray[np.float32]:
    """Bring a (h, w) mask to ``size_hw`` by the module's rule (bilinear, or nearest for binary masks).

    A patch grid of the image — ``h`` in ``{⌊H/s⌋, ⌈H/s⌉}`` and ``w`` in ``{⌊W/s⌋, ⌈W/s⌉}`` for one
    integer stride ``s`` (:func:`maskrefine.metrics.resize.prediction_stride`) — is placed on the image
    as ViT methods make it: each cell covers ``s×s`` pixels from the top-left corner. The grid is
    upsampled by exactly ``s`` and cropped to ``(H, W)`` (a ``⌈H/s⌉`` grid of a padded image), or
    extended by repeating its last row / column (a ``⌊H/s⌋`` grid of a cropped image). Stretching a
    21×31 grid onto a 321×481 image instead would misplace the far edge by 14 px. Any other size (and
    every size with ``place_grid=False``) is resized to ``(H, W)`` directly.

    Parameters
    ----------
    mask : ndarray of float, shape (h, w)
        Mask in [0, 1] (float values within :data:`maskrefine._checks.UNIT_TOLERANCE` of the range pass
        unchanged), finite, with h, w >= 1. Any floating dtype; integer, bool and complex arrays are
        refused, as by :func:`refine` (an 8-bit mask's scale is ambiguous: divide it by 255 first). An
        ndarray subclass is read as its plain data.
    size_hw : tuple of int
        Target ``(H, W)``: a tuple or list of two integers (Python or NumPy, not bool) >= 1, of at most
        :data:`maskrefine.metrics.resize.MAX_RESIZE_PIXELS` pixels and sides below ``2**31`` (the rule
        of the package's other resizes).
    binary_input : bool
        Use nearest-neighbour interpolation (keeps a hard mask hard) instead of bilinear. ``True`` or
        ``False`` (a NumPy bool too).
    place_grid : bool
        Place patch grids cell by cell (default); False stretches every size onto ``(H, W)`` (the rule of
        ``score``'s pixel-grid CorLoc boxes). ``True`` or ``False`` (a NumPy bool too).

    Returns
    -------
    ndarray of float32, shape (H, W)
        A new array (never a view of ``mask``); ``mask`` is not modified.

    Raises
    ------
    TypeError
        ``mask`` is not a floating-point array; ``binary_input`` or ``place_grid`` is not a bool.
    ValueError
        ``mask`` is not 2-D, has no pixel, or holds NaN, inf or values outside [0, 1]; ``size_hw`` is
        not two integers >= 1 within the limits above.

    Examples
    --------
    >>> import numpy as np
    >>> resize_mask(np.array([[0.0, 1.0]]), (1, 4)).tolist()
    [[0.0, 0.25, 0.75, 1.0]]
    """
    from maskrefine.metrics.resize import _output_size
    from maskrefine.quality.coarse import _MAX_SIDE

    soft = _check_mask(mask)
    height, width = _output_size(size_hw)
    for side in (height, width):  # dsize is a C int pair for OpenCV
        check_int_range(side, "size_hw", 1, _MAX_SIDE)
    binary_input = check_flag(binary_input, "binary_input")
    place_grid = check_flag(place_grid, "place_grid")
    return resize_mask_unchecked(soft, (height, width), binary_input=binary_input, place_grid=place_grid)


def resize_mask_unchecked(
    mask: npt.NDArray[np.floating],
    size_hw: tuple[int, int],
    *,
    binary_input: bool = False,
    place_grid: bool = True,
) -> npt.NDArray[np.float32]:
    """:func:`resize_mask` without its checks, for callers whose mask and size are already valid.

    The caller guarantees what :func:`resize_mask` would check: ``mask`` a finite float (h, w) array in
    [0, 1] with h, w >= 1 (e.g. checked by :func:`refine`, or read by :func:`maskrefine.io.read_mask`),
    ``size_hw`` two ints >= 1 and both flags bools. Used on ``apply``'s per-file path.
    """
    from maskrefine.metrics.resize import prediction_stride

    height, width = int(size_hw[0]), int(size_hw[1])
    src = np.ascontiguousarray(mask, dtype=np.float32)
    if src.shape == (height, width):
        return src.copy()
    import cv2

    interpolation = cv2.INTER_NEAREST if binary_input else cv2.INTER_LINEAR
    stride = prediction_stride((src.shape[0], src.shape[1]), (height, width)) if place_grid else None
    if stride is None:
        # cv2's stubs type the result as a generic MatLike; resizing a float32 array gives float32
        return cast(npt.NDArray[np.float32], cv2.resize(src, (width, height), interpolation=interpolation))
    grid_h, grid_w = src.shape[0] * stride, src.shape[1] * stride
    up = cast(npt.NDArray[np.float32], cv2.resize(src, (grid_w, grid_h), interpolation=interpolation))
    up = up[:height, :width]
    if up.shape != (height, width):
        up = np.pad(up, ((0, height - up.shape[0]), (0, width - up.shape[1])), mode="edge")
    return np.ascontiguousarray(up)


def _check_image(image: object) -> np.ndarray:
    array = as_float_array(image, "image")
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"`image` must have shape (H, W, 3) (RGB, channels last); got shape {array.shape}")
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"`image` must have at least one pixel; got shape {array.shape}")
    check_unit_interval(array, "image", hint=". Divide 8-bit images by 255.")
    return np.ascontiguousarray(array, dtype=np.float32)


def _check_mask(mask: object) -> np.ndarray:
    array = as_float_array(mask, "mask")
    if array.ndim != 2:
        squeezable = array.ndim == 3 and 1 in (array.shape[0], array.shape[-1])
        hint = " Squeeze the channel axis." if squeezable else ""
        raise ValueError(f"`mask` must be 2-D (h, w); got shape {array.shape}.{hint}")
    if array.size == 0:
        raise ValueError(f"`mask` must have at least one pixel; got shape {array.shape}")
    check_unit_interval(array, "mask")
    return array


def unused_guide_problem(method: str, guide: str) -> str | None:
    """``"'color' has no effect with method 'crf' (...)"`` for a guide a registered method ignores, else None.

    A method that uses no guide image takes only the default ``"mean"`` (as ``auto``'s decisions and
    canonical candidates record it); any other guide would be ignored silently.
    """
    if REFINERS[method].uses_guide or guide == "mean":
        return None
    return f"{guide!r} has no effect with method {method!r} (it uses no guide image)"


def refine(
    image: npt.NDArray[np.floating],
    mask: npt.NDArray[np.floating],
    method: str = "guided",
    *,
    guide: str | None = None,
    binary_input: bool = False,
    **params: Any,
) -> npt.NDArray[np.float32]:
    """Refine ``mask`` with ``image`` as guide.

    Parameters
    ----------
    image : ndarray of float, shape (H, W, 3)
        RGB image in [0, 1].
    mask : ndarray of float, shape (h, w)
        Soft or binary mask in [0, 1], the image's size or a uniform downscale of it (e.g. a 1/8 or
        1/16 patch grid, rounded up or down; :func:`check_mask_size`, the rule of ``apply``: a mask
        larger than the image or of another aspect ratio is refused, as it was likely paired with the
        wrong image). It is brought to (H, W) by :func:`resize_mask` (a patch grid placed cell by cell
        from the top-left; bilinear, nearest with ``binary_input=True``).
    method : str
        A key of :data:`REFINERS`: ``"identity"`` (resize and clip only), ``"guided"`` (guided filter,
        He et al. 2013) or ``"fast_guided"`` (fast guided filter, He & Sun 2015, ``subsample=4``), or
        any method registered later.
    guide : {"mean", "luma", "color"}, optional
        How the guide is built from the image (:func:`maskrefine.guide.make_guide`); default ``"mean"``,
        the unweighted (R+G+B)/3 of the paper. For a method that uses no guide (``identity``,
        ``bilateral_solver`` and ``crf``, which reads the RGB image) only the default is accepted, as
        ``--guide`` is refused there.
    binary_input : bool
        The mask is hard (0/1): resize it with nearest-neighbour interpolation. ``True`` or ``False``
        (a NumPy bool too); anything else is refused (``bool("no")`` would be True).
    **params
        Method parameters; see ``REFINERS[method].defaults`` (``radius=9``, ``eps=1e-3`` for the guided
        filters, plus ``subsample=4`` for ``fast_guided``).

    Returns
    -------
    ndarray of float32, shape (H, W)
        Refined mask clipped to [0, 1]. The inputs are not modified.

    Raises
    ------
    ValueError
        Unknown method, guide or parameter (the message lists the choices), or bad shapes/values (a
        mask whose size cannot be the image's); a refiner whose result is not (H, W) or not finite
        (named).
    TypeError
        Non-float arrays, parameters of the wrong type, a ``binary_input`` that is not a bool.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((16, 16, 3), np.float32)
    >>> refine(image, np.ones((2, 2), np.float32), "identity").shape
    (16, 16)
    """
    spec = _check_method(method)
    if guide is None:
        guide = "mean"
    else:
        check_choice(guide, GUIDE_MODES, "guide")
        problem = unused_guide_problem(spec.name, guide)
        if problem is not None:
            raise ValueError(f"`guide` {problem}; leave it out")
    binary_input = check_flag(binary_input, "binary_input")
    resolved = resolve_params(method, params)
    rgb, soft = _check_image(image), _check_mask(mask)
    size_problem = check_mask_size(soft.shape, rgb.shape[:2])
    if size_problem is not None:
        raise ValueError(f"`mask`: {size_problem}")
    out = refine_unchecked(rgb, soft, spec, guide, resolved, binary_input)
    if not np.isfinite(out).all():  # e.g. a registered refiner's NaN, or a setting at a numeric limit
        raise ValueError(f"refiner {spec.name!r} returned NaN or infinite values")
    return out


def refine_unchecked(
    rgb: np.ndarray,
    soft: np.ndarray,
    spec: RefinerSpec,
    guide: str,
    params: Mapping[str, Any],
    binary_input: bool,
    *,
    decision: AutoDecision | None = None,
) -> npt.NDArray[np.float32]:
    """:func:`refine` without its checks, for a folder job that validated its settings once.

    The caller guarantees what :func:`refine` would check: ``rgb`` float32 (H, W, 3) and ``soft`` float
    (h, w), both finite and in [0, 1] (as :func:`maskrefine.io.read_image` and
    :func:`maskrefine.io.read_mask` return them), ``guide`` one of ``GUIDE_MODES`` and ``params``
    resolved by :func:`resolve_params`. ``decision``: for ``spec`` ``auto`` only, the decision the
    caller already made for this mask (:func:`maskrefine.auto.decide`, which a job records per file):
    applied as it is, not made again (:func:`maskrefine.auto.refine_decided`).
    """
    if decision is not None:
        if spec.name != "auto":
            raise ValueError(f"a decision of auto is applied by the auto refiner only; got {spec.name!r}")
        from maskrefine.auto import refine_decided

        out = refine_decided(rgb, soft, decision)
    elif spec.native_mask:  # e.g. auto: it looks at the mask's own size, then resizes it itself
        out = spec.run(rgb, soft, guide=guide, **params)
    else:
        resized = resize_mask_unchecked(soft, rgb.shape[:2], binary_input=binary_input)
        out = spec.run(rgb, resized, guide=guide, **params)
    if not isinstance(out, np.ndarray) or out.shape != rgb.shape[:2]:
        raise ValueError(
            f"refiner {spec.name!r} returned {_describe_output(out)}, not an (H, W) = {rgb.shape[:2]} array"
        )
    out = np.asarray(out, dtype=np.float32)
    if np.shares_memory(out, soft) or np.shares_memory(out, rgb):  # e.g. a refiner that returns its input
        out = out.copy()  # clipped below: the caller's array is never modified
    np.clip(out, 0.0, 1.0, out=out)
    return out


def _describe_output(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return f"a {type(value).__name__}"


# --------------------------------------------------------------------------------------------------
# built-in refiners


def _run_identity(image: np.ndarray, mask: np.ndarray, *, guide: str) -> np.ndarray:
    return mask


def _run_guided(
    image: np.ndarray, mask: np.ndarray, *, guide: str, radius: int, eps: float, subsample: int = 1
) -> np.ndarray:
    from maskrefine.filters.guided import guided_filter_trusted
    from maskrefine.guide import guide_from_rgb

    # refine() has validated `image` (float32, finite, in [0, 1]), the mask and `guide`, and
    # resolve_params() the parameters: the filter is called without a second scan of the arrays.
    guide_image = guide_from_rgb(image, guide)
    return guided_filter_trusted(guide_image, mask, radius, eps, subsample=subsample, what="the image")


#: Largest radius the guided refiners accept: a 20001-pixel window is larger than any image that is not
#: over 400 megapixels, so anything bigger is a typo (and would only fail file by file).
MAX_RADIUS = 10_000
#: Largest subsample factor of ``fast_guided`` (a 1024x coarser grid leaves a few pixels of any image).
MAX_SUBSAMPLE = 1_024


def _at_most(check: Callable[[Any, str], Any], limit: int) -> Callable[[Any, str], Any]:
    """``check`` followed by an upper bound."""

    def bounded(value: Any, name: str) -> Any:
        checked = check(value, name)
        if checked > limit:
            raise ValueError(f"`{name}` must be <= {limit}; got {short_repr(value)}")
        return checked

    return bounded


_GUIDED_CHECKS: dict[str, Callable[[Any, str], Any]] = {
    "radius": _at_most(check_radius, MAX_RADIUS),
    "eps": check_eps,
}

register_refiner(
    RefinerSpec(
        name="identity",
        summary="no filtering: resize the mask to the image and clip to [0, 1] (a baseline)",
        defaults={},
        run=_run_identity,
        uses_guide=False,
    ),
)
register_refiner(
    RefinerSpec(
        name="guided",
        summary="guided filter (He et al. 2013) with the image as guide; radius=9, eps=1e-3 (the paper's)",
        defaults={"radius": 9, "eps": 1e-3},
        run=_run_guided,
        validators=_GUIDED_CHECKS,
    ),
)
register_refiner(
    RefinerSpec(
        name="fast_guided",
        summary="fast guided filter (He & Sun 2015): coefficients at 1/subsample resolution; subsample=4",
        defaults={"radius": 9, "eps": 1e-3, "subsample": 4},
        run=_run_guided,
        validators={**_GUIDED_CHECKS, "subsample": _at_most(check_subsample, MAX_SUBSAMPLE)},
    ),
)


# --------------------------------------------------------------------------------------------------
# baselines of the field (issue 11): fast bilateral solver and dense CRF; their modules validate again


def _optional(check: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    return lambda value, name: None if value is None else check(value, name)


def _run_bilateral_solver(image: np.ndarray, mask: np.ndarray, *, guide: str, **params: Any) -> np.ndarray:
    from maskrefine.filters.bilateral_solver import bilateral_solver

    return bilateral_solver(image, mask, **params)  # uses the RGB image (YUV grid): `guide` is not used


def _run_crf(image: np.ndarray, mask: np.ndarray, *, guide: str, output: str, **params: Any) -> np.ndarray:
    from maskrefine.filters.dense_crf import dense_crf

    # refine() accepts masks within UNIT_TOLERANCE of [0, 1] (float32 rounding); dense_crf takes [0, 1]
    # exactly, and would refuse such a mask naming its own argument `prob`: clip (a copy) first
    mask = np.clip(mask, 0.0, 1.0)
    prob = dense_crf(image, mask, **params)  # bilateral kernel on RGB: `guide` is not used
    return (prob > 0.5).astype(np.float32) if output == "label" else prob


def _bs_presets(value: Any, name: str) -> str:
    return check_choice(value, tuple(BILATERAL_PRESETS), name)


def _crf_presets(value: Any, name: str) -> str:
    return check_choice(value, tuple(CRF_PRESETS), name)


def _sigma(value: Any, name: str) -> float:
    return check_float_range(value, name, 1e-3)


def _nonneg(value: Any, name: str) -> float:
    return check_float_range(value, name, 0.0)


def _lam(value: Any, name: str) -> float:
    return check_float_range(value, name, 0.0, MAX_LAM)


register_refiner(
    RefinerSpec(
        name="bilateral_solver",
        summary="fast bilateral solver (Barron & Poole 2016); presets tokencut (σ 16/16/8, default), "
        "paper_repo (24/4/4), found (binary, IoU-gated; found_multi keeps every object)",
        defaults={
            "preset": "tokencut",
            "sigma_spatial": None,
            "sigma_luma": None,
            "sigma_chroma": None,
            "lam": 256.0,
        },
        run=_run_bilateral_solver,
        validators={
            "preset": _bs_presets,
            "sigma_spatial": _optional(_sigma),
            "sigma_luma": _optional(_sigma),
            "sigma_chroma": _optional(_sigma),
            "lam": _lam,
        },
        uses_guide=False,
    ),
)
register_refiner(
    RefinerSpec(
        name="crf",
        summary="dense CRF (Krähenbühl & Koltun 2011), 2 labels, mean-field; presets deeplab (default), "
        "deeplab_v2, deep_spectral; output label (0/1) or prob",
        defaults={
            "preset": "deeplab",
            "iterations": None,
            "gt_prob": None,
            "gaussian_sxy": None,
            "gaussian_compat": None,
            "bilateral_sxy": None,
            "bilateral_srgb": None,
            "bilateral_compat": None,
            "output": "label",
        },
        run=_run_crf,
        validators={
            "preset": _crf_presets,
            "iterations": _optional(lambda v, n: check_int_range(v, n, 0, 1000)),
            "gt_prob": _optional(lambda v, n: check_gt_prob(v, n, 1 - 1e-6)),
            "gaussian_sxy": _optional(lambda v, n: check_float_range(v, n, 0.01)),
            "gaussian_compat": _optional(_nonneg),
            "bilateral_sxy": _optional(lambda v, n: check_float_range(v, n, 0.01)),
            "bilateral_srgb": _optional(lambda v, n: check_float_range(v, n, 0.01)),
            "bilateral_compat": _optional(_nonneg),
            "output": lambda v, n: check_choice(v, ("label", "prob"), n),
        },
        uses_guide=False,
    ),
)


def _run_auto(image: np.ndarray, mask: np.ndarray, *, guide: str) -> np.ndarray:
    from maskrefine.auto import run_auto

    return run_auto(image, mask, guide=guide)


register_refiner(
    RefinerSpec(
        name="auto",
        summary="the default: per mask, detect patch size and binary/soft, apply the setting "
        "chosen for that kind on the SOD quality benchmark (maskrefine.auto.AUTO_RULES)",
        defaults={},
        run=_run_auto,
        native_mask=True,
    ),
)
