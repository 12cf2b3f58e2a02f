"""Which helpers of the guided-filter kernels a first run compiles in a second process.

Used through :func:`maskrefine._jit.split_first_compile`: on a first run (the kernel in neither this
process nor the on-disk cache, two CPUs or more), the helpers listed ``elsewhere`` are compiled by a second
process while this one compiles those listed ``here``; the kernel's own compile then finds all of them.
The signatures are those the kernel calls its helpers with (the wrapper in :mod:`maskrefine.filters.guided`
passes float32 images and scratch rows, and a float32 or float64 coefficient ring); a test compiles each
split's helpers and checks that the kernel's compile then compiles no helper again. The shares are
balanced on measured compile times: ``here`` starts at once, ``elsewhere`` only once the second process
has imported numba, and the kernel itself, the largest single compile, comes here last.
"""

from __future__ import annotations

from numba import types

from maskrefine._jit import FirstCompileSplit
from maskrefine.filters import _numba_kernels as kernels

__all__ = ["FIRST_COMPILE_SPLITS", "split_key"]

_I64 = types.int64
_F64 = types.float64
_BOOL = types.boolean
_F32_1D = types.float32[::1]
_F32_2D = types.float32[:, ::1]
_F32_3D = types.float32[:, :, ::1]
_F64_1D = types.float64[::1]
_F64_2D = types.float64[:, ::1]

#: (helper dispatcher, argument types) pairs, in compile order.
_Helpers = tuple[tuple[object, tuple[object, ...]], ...]


def _ring_types(ring: types.Float) -> tuple[types.Array, types.Array, types.Array]:
    """One slot (2-D), one row (1-D) and the whole ring (3-D) of coefficients of dtype ``ring``."""
    slot, row, rows = (types.Array(ring, ndim, "C") for ndim in (2, 1, 3))
    return slot, row, rows


def _first_here(slot: types.Array) -> _Helpers:
    """Return the helpers both kernels call first (compiled in this process, which starts at once)."""
    return (
        (kernels._refl, (_I64, _I64)),
        (kernels._inv_count_row, (_I64, _I64, _I64, _BOOL)),
        (kernels._reset, (_F64_2D, _F64_2D, slot, _F64_1D, _I64, _I64, _BOOL)),
        (kernels._pad_row, (_F64_2D, _I64, _I64, _BOOL)),
        (kernels._sliding_rows, (_I64, _I64, _I64, _BOOL)),
    )


_HSUMS = (_F64_2D, _I64, _I64, _F64_2D)
_ROWS_ADD = (_I64, _I64, _I64, _I64, _F64, _F64_2D)  # after (I, p)
_ADVANCE = (_F64_2D, _I64, _I64, _I64, _I64, _I64, _BOOL)  # after (I, p)
_RING_UPDATE = (_I64, _I64, _I64, _I64, _F64_2D)  # after the ring


def _build(color: bool, ring: types.Float) -> FirstCompileSplit:
    slot, row, rows = _ring_types(ring)
    here: _Helpers
    elsewhere: _Helpers
    if color:
        here = (
            (kernels._color_rows_add, (_F32_3D, _F32_2D, *_ROWS_ADD)),
            (kernels._advance_color, (_F32_3D, _F32_2D, *_ADVANCE)),
            (kernels._color_out_row, (_F64_2D, _I64, _I64, _F64_1D, _F64, _F32_2D, _F32_1D)),
        )
        elsewhere = (
            (kernels._color_math, (*(_F64_1D,) * 14, _F64, _F64, _I64, row, row, row, row)),
            (kernels._hsums5, _HSUMS),
            (kernels._hsums4, _HSUMS),
            (kernels._color_coeffs_row, (_F64_2D, _F64_2D, _F64_1D, _F64, _F64, _I64, _I64, rows, _I64)),
        )
    else:
        here = (
            (kernels._gray_rows_add, (_F32_2D, _F32_2D, *_ROWS_ADD)),
            (kernels._advance_gray, (_F32_2D, _F32_2D, *_ADVANCE)),
        )
        elsewhere = (
            (kernels._hsums4, _HSUMS),
            (kernels._gray_coeffs_row, (_F64_2D, _F64_2D, _F64_1D, _F64, _F64, _I64, _I64, row, row)),
            (kernels._hsums2, _HSUMS),
            (kernels._gray_out_row, (_F64_2D, _I64, _I64, _F64_1D, _F64, _F32_1D, _F32_1D)),
        )
    return FirstCompileSplit(
        kernel=kernels.color_rows if color else kernels.gray_rows,
        here=(*_first_here(slot), *here, (kernels._ring_update, (rows, *_RING_UPDATE))),
        elsewhere=elsewhere,
    )


def split_key(color: bool, ring_dtype_name: str) -> str:
    """Key of the split for the colour (or gray) kernel with a ring of ``ring_dtype_name``."""
    return f"{'color' if color else 'gray'}-{ring_dtype_name}"


#: The splits by :func:`split_key`: one per kernel and coefficient-ring dtype.
FIRST_COMPILE_SPLITS: dict[str, FirstCompileSplit] = {
    split_key(color, str(ring)): _build(color, ring)
    for color in (False, True)
    for ring in (types.float32, types.float64)
}
