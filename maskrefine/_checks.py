"""Boundary validation shared by the public functions.

Each check raises ``TypeError`` or ``ValueError`` with a message that names the argument,
the expectation and what was found. Kernels never call these; public wrappers do.
"""

from __future__ import annotations

import numbers
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

__all__ = [
    "check_gt_prob",
    "check_radius",
    "plain_ndarray",
    "text_or_empty",
    "check_eps",
    "check_subsample",
    "check_choice",
    "as_float_array",
    "check_window_fits",
    "check_unit_interval",
    "unit_interval_problem",
    "UNIT_TOLERANCE",
    "MIN_EPS",
    "short_repr",
    "MAX_LAM",
    "check_float_range",
    "check_int_range",
    "MAX_ABS_VALUE",
    "check_max_abs",
    "check_flag",
    "real_to_float",
    "short_list",
]


def real_to_float(value: numbers.Real) -> float:
    """``float(value)``; an int (or Fraction) beyond the float range is ``±inf`` instead of an OverflowError.

    So the range checks refuse ``10**400`` naming the argument, like ``1e400`` (which parses as inf).
    """
    try:
        return float(value)
    except OverflowError:
        positive: Any = value > 0  # type: ignore[operator]  # Real has no comparison in typeshed
        return float("inf") if positive else float("-inf")


def check_radius(radius: object, name: str = "radius") -> int:
    """Return ``radius`` as an int >= 0, or raise (:func:`check_int_range`)."""
    return check_int_range(radius, name, 0)


#: Smallest ``eps`` of the guided filters. The window variances are differences of float64 sums whose
#: rounding noise is ~1e-16; a smaller eps no longer keeps ``var + eps`` (and the colour 3x3 determinant,
#: ~eps³, which underflows below ~1e-100) away from 0, and the output becomes inf/NaN on flat regions.
MIN_EPS = 1e-12
#: Largest smoothness weight λ of the bilateral solver: the system's conditioning grows with λ, and above
#: ~1e12 its float64 conjugate gradient no longer converges (wrong values, then inf/NaN, then a breakdown).
MAX_LAM = 1e8


def check_eps(eps: object, name: str = "eps") -> float:
    """Return ``eps`` as a finite float >= :data:`MIN_EPS`, or raise."""
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise TypeError(f"`{name}` must be a positive float; got {short_repr(eps)} ({type(eps).__name__})")
    value = real_to_float(eps)
    if not np.isfinite(value) or value <= 0.0:
        raise ValueError(f"`{name}` must be a finite float > 0 (at least {MIN_EPS:g}); got {short_repr(eps)}")
    if value < MIN_EPS:
        raise ValueError(
            f"`{name}` must be >= {MIN_EPS:g} (smaller values are below the rounding noise of the window "
            f"variances and give NaN/inf on flat regions); got {short_repr(eps)}"
        )
    return value


def check_subsample(subsample: object, name: str = "subsample") -> int:
    """Return ``subsample`` as an int >= 1, or raise (:func:`check_int_range`)."""
    return check_int_range(subsample, name, 1)


def is_one_of(value: object, choices: Collection[object]) -> bool:
    """Return ``value in choices`` for a string or integer (not bool) ``value``; False for anything else.

    An array's ``in`` compares element-wise: it raises "ambiguous" for several elements and lets a
    one-element array through, where a choice must be refused.
    """
    if isinstance(value, bool) or not isinstance(value, (str, numbers.Integral)):
        return False
    return value in choices


def check_choice(value: object, choices: tuple[str, ...] | list[str], name: str) -> str:
    """Return ``value`` if it is one of ``choices``, or raise ``ValueError`` listing them."""
    if not isinstance(value, str) or value not in choices:  # an array's `in` would raise "ambiguous"
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be one of {listed}; got {short_repr(value)}")
    return str(value)


def plain_ndarray(value: object) -> Any:
    """Return an ndarray subclass (a masked array, ``np.matrix``) as a plain view of its data; else ``value``.

    What the kernels compute on is the data: a masked array's hidden values (NaN, out of range) must meet
    the same checks as visible ones, not slip past ``min``/``max`` that skip them.
    """
    if isinstance(value, np.ndarray) and type(value) is not np.ndarray:
        return np.asarray(value)
    return value


def as_float_array(
    array: object, name: str, *, finite: bool = True, unit: bool = True, expected: str = "a NumPy array"
) -> np.ndarray:
    """Return ``array`` as a floating NumPy array (no copy when it already is one), or raise.

    Integer and bool arrays are refused (their scale is ambiguous: 0..1 or 0..255?);
    NaN and inf are refused when ``finite`` is true. An ndarray subclass (``np.matrix``, a masked array)
    is viewed as a plain ndarray (its data; no copy), which is what the kernels compute on. ``unit``:
    the values are meant to lie in [0, 1] (the refusal then suggests ``/ 255``); False for weights,
    whose values are only >= 0. ``expected``: what the refusal of something that is not array-like says
    the argument must be (e.g. "a float >= 0 or a float array" where a scalar is also accepted).
    """
    array = plain_ndarray(array)
    if not isinstance(array, np.ndarray):
        if hasattr(array, "__array__") and not hasattr(array, "detach"):
            array = np.asarray(array)
        else:
            raise TypeError(f"`{name}` must be {expected}; got {type(array).__name__}")
    if not np.issubdtype(array.dtype, np.floating):
        if not unit:
            raise TypeError(
                f"`{name}` must be a floating-point array of values >= 0; got dtype {array.dtype}. "
                f"Convert it first, e.g. `{name}.astype(np.float64)`."
            )
        raise TypeError(
            f"`{name}` must be a floating-point array with values in [0, 1]; got dtype {array.dtype}. "
            f"Convert it first, e.g. `{name}.astype(np.float32) / 255` for 8-bit data."
        )
    if finite and array.size and not np.isfinite(array).all():
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"`{name}` contains {bad} NaN or infinite value(s); all values must be finite")
    return array


def check_window_fits(
    height: int, width: int, radius: int, subsample: int = 1, what: str = "`src` images"
) -> None:
    """Raise ``ValueError`` unless (H, W) holds the filter window.

    The window fits when H, W >= 2r+1 and, for the fast variant (``subsample`` s > 1), also
    H//s, W//s >= 2(r//s)+1. Shared by the NumPy and torch guided filters. ``what`` names the images in
    the message (the caller's own argument: ``src`` for the filters, the image for a refiner).
    """
    window = 2 * radius + 1
    if height < window or width < window:
        raise ValueError(
            f"{what} must be at least the window size 2*radius+1 = {window} in H and W; "
            f"got H={height}, W={width} with radius={radius}. Use a smaller radius."
        )
    if subsample > 1:
        h, w = height // subsample, width // subsample
        r_lo = radius // subsample
        if h < 2 * r_lo + 1 or w < 2 * r_lo + 1:
            raise ValueError(
                f"with subsample={subsample} the low-resolution images are {h}x{w}, smaller than the "
                f"low-resolution window 2*(radius//subsample)+1 = {2 * r_lo + 1}; got H={height}, "
                f"W={width}. Use a smaller subsample."
            )


#: Float values may leave [0, 1] by at most this much (float32 rounding, e.g. 1.0000001) and still count
#: as in range; readers clip them, the filters tolerate them (their outputs are clipped or unaffected).
UNIT_TOLERANCE = 1e-6


def unit_interval_problem(low: float, high: float, tolerance: float = UNIT_TOLERANCE) -> str | None:
    """Describe how far ``[low, high]`` leaves [0, 1] (beyond ``tolerance``), or None when it does not.

    E.g. ``"found [0, 1.5]: the maximum is 0.5 above 1"``; NaN counts as out of range.
    """
    too_low = not low >= -tolerance
    too_high = not high <= 1.0 + tolerance
    if not (too_low or too_high):
        return None
    parts = []
    if too_low:
        parts.append(f"the minimum is {-low:.3g} below 0")
    if too_high:
        parts.append(f"the maximum is {high - 1.0:.3g} above 1")
    return (
        f"found [{low:.7g}, {high:.7g}]: {' and '.join(parts)} "
        f"(values within {tolerance:g} of the range are accepted)"
    )


def check_unit_interval(array: np.ndarray, name: str, hint: str = "") -> None:
    """Raise ``ValueError`` unless the values lie in [0, 1] up to :data:`UNIT_TOLERANCE`.

    The message says how far out the values are, followed by the optional ``hint``.
    """
    problem = unit_interval_problem(float(array.min()), float(array.max()))
    if problem is not None:
        raise ValueError(f"`{name}` values must lie in [0, 1]; {problem}{hint}")


#: Largest magnitude of the values the filters smooth (the guided filter's ``src``, the bilateral solver's
#: ``target``); they are linear in these values and return float32. With the guide in [0, 1] and
#: eps >= :data:`MIN_EPS`, the guided filter's slope is at most std(p) / (2 sqrt(eps)) = 5e5 * |p|, kept
#: in float32 by the kernels: 1e30 keeps it (5e35) and the result below float32's 3.4e38, instead of
#: inf/NaN.
MAX_ABS_VALUE = 1e30


def check_max_abs(array: np.ndarray, name: str, limit: float = MAX_ABS_VALUE) -> None:
    """Raise ``ValueError`` unless every value of the finite ``array`` lies in ``[-limit, limit]``."""
    if not array.size:
        return
    low, high = float(array.min()), float(array.max())
    if low < -limit or high > limit:
        raise ValueError(
            f"`{name}` values must lie within ±{limit:g} (the result is float32); "
            f"found [{low:.10g}, {high:.10g}]"
        )


def as_rgb_unit_image(image: object, name: str = "image") -> np.ndarray:
    """Return ``image`` as a finite float array of shape (H, W, 3) with values in [0, 1].

    H, W >= 1 and the values lie in [0, 1] up to :data:`UNIT_TOLERANCE`, or ``ValueError`` naming
    ``name`` is raised.
    """
    rgb = as_float_array(image, name)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError(f"`{name}` must have shape (H, W, 3) with H, W >= 1; got {rgb.shape}")
    check_unit_interval(rgb, name)
    return rgb


def check_float_range(value: object, name: str, low: float, high: float = np.inf) -> float:
    """Return ``value`` as a float in ``[low, high]`` (a finite real number), or raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number; got {short_repr(value)} ({type(value).__name__})")
    result = real_to_float(value)
    if not np.isfinite(result) or result < low or result > high:
        span = f">= {low:g}" if high == np.inf else f"in [{low:g}, {high:g}]"
        raise ValueError(f"`{name}` must be a finite number {span}; got {short_repr(value)}")
    return result


def check_int_range(value: object, name: str, low: int, high: int | None = None) -> int:
    """Return ``value`` as an int in ``[low, high]`` (``>= low`` when ``high`` is None), or raise.

    ``TypeError`` for a value that is not an integer (bool included), ``ValueError`` outside the range.
    """
    span = f">= {low}" if high is None else f"in [{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"`{name}` must be an integer {span}; got {short_repr(value)} ({type(value).__name__})"
        )
    result = int(value)
    if result < low or (high is not None and result > high):
        raise ValueError(f"`{name}` must be an integer {span}; got {short_repr(result)}")
    return result


def check_flag(value: object, name: str) -> bool:
    """Return ``value`` as a bool when it is one (Python or NumPy), else raise ``TypeError``.

    Truthiness would read ``"no"`` or ``"false"`` as True (for ``overwrite``: replace files).
    """
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"`{name}` must be True or False; got {short_repr(value)} ({type(value).__name__})")
    return bool(value)


def check_row_name(name: object) -> None:
    """Raise ``TypeError`` unless an evaluator's row ``name`` is a str or None (a list became "[1]")."""
    if name is not None and not isinstance(name, str):
        raise TypeError(f"`name` must be a str (the row name) or None; got {short_repr(name)}")


def short_list(values: Sequence[object], limit: int = 5) -> str:
    """Return the first ``limit`` values, each via :func:`short_repr`, then how many more (for messages)."""
    shown = ", ".join(short_repr(v) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def text_or_empty(value: object) -> str:
    """``str(value)``, or ``""`` where Python refuses it (an int beyond its digit limit for ``str``).

    For parsers that read an argument as text and refuse what does not parse: the refusal then names the
    value with :func:`short_repr`.
    """
    try:
        return str(value)
    except ValueError:
        return ""


def short_repr(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages about hostile values.

    A value may hold thousands of digits (a 5000-digit shard count or box coordinate), whose ``repr``
    Python even refuses beyond its digit limit: then the type is named instead.
    """
    try:
        text = repr(value)
    except ValueError:  # an int too long for repr (Python's digit limit), possibly inside a tuple
        return f"<{type(value).__name__} too long to show>"
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-2:]}"


def check_gt_prob(value: object, name: str, high: float = 1.0) -> float:
    """Return ``value`` as a label confidence: a float above 0.5 and below 1 (at most ``high`` if < 1).

    At 0.5 both labels get the same unary (the mask is ignored); below, foreground and background swap.
    """
    gt_prob = check_float_range(value, name, 0.5, high)
    if gt_prob == 0.5 or gt_prob == 1.0:
        raise ValueError(
            f"`{name}` must lie above 0.5 and below 1 (a confidence in the mask's labels; 0.5 ignores them "
            f"and lower values swap them); got {gt_prob!r}"
        )
    return gt_prob
