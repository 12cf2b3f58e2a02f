"""One suite, every backend (numba, torch-cpu, torch-cuda) against the float64 oracle.

The ``backend`` fixture (conftest.py) yields ``(name, adapter)``; adapters follow the NumPy convention.
Tolerances come from ``gf_cases.TOLERANCES``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from gf_cases import random_case, sod_crop, tolerance

from maskrefine.filters import reference


@dataclass(frozen=True)
class Case:
    id: str
    h: int
    w: int
    radius: int = 9
    eps: float = 1e-3
    color: bool = False
    subsample: int = 1
    border: str = "truncated"
    batch: int | None = None
    kind: str = "random"  # random | constant_guide | constant_src | sod
    seed: int = 0


CASES = [
    Case("gray-64x80", 64, 80),
    Case("color-64x80", 64, 80, color=True),
    Case("gray-odd-37x53-r4", 37, 53, radius=4, seed=1),
    Case("color-odd-41x29-r3", 41, 29, radius=3, color=True, seed=2),
    Case("gray-r0", 20, 24, radius=0, seed=3),
    Case("gray-radius-at-size-19x19", 19, 19, radius=9, seed=4),
    Case("color-radius-at-size-21x25", 21, 25, radius=10, color=True, seed=5),
    Case("gray-reflect", 50, 61, radius=6, border="reflect", seed=6),
    Case("color-reflect", 47, 52, radius=5, color=True, border="reflect", seed=7),
    Case("gray-reflect-at-size", 19, 23, radius=9, border="reflect", seed=8),
    Case("gray-eps-1e-1", 40, 40, radius=5, eps=1e-1, seed=9),
    Case("color-eps-1e-5", 40, 44, radius=5, eps=1e-5, color=True, seed=10),
    Case("gray-s2", 64, 72, subsample=2, seed=11),
    Case("gray-s3-odd", 67, 71, subsample=3, seed=12),
    Case("gray-s4", 96, 100, subsample=4, seed=13),
    Case("color-s2", 64, 70, subsample=2, color=True, seed=14),
    Case("color-s4-reflect", 96, 84, subsample=4, color=True, border="reflect", seed=15),
    Case("gray-s3-reflect", 75, 63, subsample=3, border="reflect", seed=16),
    Case("gray-batch-5", 40, 48, radius=5, batch=5, seed=17),
    Case("color-batch-3", 33, 41, radius=4, color=True, batch=3, seed=18),
    Case("gray-batch-s2", 48, 40, radius=6, subsample=2, batch=4, seed=19),
    Case(
        "color-batch-s3-reflect",
        45,
        51,
        radius=6,
        subsample=3,
        color=True,
        border="reflect",
        batch=2,
        seed=20,
    ),
    Case("gray-constant-guide", 40, 40, radius=5, kind="constant_guide", seed=21),
    Case("color-constant-guide", 40, 40, radius=5, color=True, kind="constant_guide", seed=22),
    Case("gray-constant-src", 40, 40, radius=5, kind="constant_src", seed=23),
    Case("color-constant-src", 40, 40, radius=5, color=True, kind="constant_src", seed=24),
    # rows of 1024 / 512 float64 are a multiple of 4 KiB: the colour kernel's scratch rows are padded
    Case("color-width-1024", 24, 1024, radius=7, color=True, seed=25),
    Case("color-reflect-width-512", 30, 512, radius=9, color=True, border="reflect", seed=26),
    Case("color-s2-width-1024", 24, 1024, radius=6, color=True, subsample=2, seed=27),
    Case("gray-sod-crop", 161, 203, kind="sod", seed=0),
    Case("color-sod-crop", 160, 200, color=True, kind="sod", seed=1),
    Case(
        "color-sod-crop-reflect-s2", 121, 150, color=True, kind="sod", border="reflect", subsample=2, seed=2
    ),
    Case("gray-sod-crop-s4", 200, 160, kind="sod", subsample=4, seed=3),
]


def _inputs(case: Case, request: pytest.FixtureRequest) -> tuple[np.ndarray, np.ndarray]:
    if case.kind == "sod":
        sod_dir = request.getfixturevalue("sod_dir")
        return sod_crop(sod_dir, case.seed, case.h, case.w, color=case.color)
    guide, src = random_case(case.seed, case.h, case.w, color=case.color, batch=case.batch)
    if case.kind == "constant_guide":
        guide = np.full_like(guide, 0.4)
    elif case.kind == "constant_src":
        src = np.full_like(src, 0.7)
    return guide, src


def _oracle(guide: np.ndarray, src: np.ndarray, case: Case) -> np.ndarray:
    params = dict(subsample=case.subsample, border=case.border)
    if src.ndim == 2:
        return reference.guided_filter(guide, src, case.radius, case.eps, **params)
    return np.stack(
        [
            reference.guided_filter(g, s, case.radius, case.eps, **params)
            for g, s in zip(guide, src, strict=True)
        ]
    )


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_matches_reference(backend, case: Case, request: pytest.FixtureRequest) -> None:
    name, run = backend
    guide, src = _inputs(case, request)
    guide_before, src_before = guide.copy(), src.copy()
    got = run(guide, src, radius=case.radius, eps=case.eps, subsample=case.subsample, border=case.border)
    expected = _oracle(guide, src, case)
    assert got.shape == src.shape
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=tolerance(name, src.dtype))
    if case.kind == "constant_src":
        np.testing.assert_allclose(got, 0.7, rtol=0, atol=tolerance(name, src.dtype))
    np.testing.assert_array_equal(guide, guide_before)
    np.testing.assert_array_equal(src, src_before)


def test_batch_equals_loop(backend) -> None:
    name, run = backend
    guide, src = random_case(30, 45, 52, color=True, batch=4)
    batched = run(guide, src, radius=7, eps=1e-3, subsample=1, border="truncated")
    looped = np.stack(
        [
            run(g, s, radius=7, eps=1e-3, subsample=1, border="truncated")
            for g, s in zip(guide, src, strict=True)
        ]
    )
    np.testing.assert_allclose(batched, looped, rtol=0, atol=tolerance(name) / 10)


@pytest.mark.parametrize("color", [False, True], ids=["gray", "color"])
def test_precision_4096(backend, color: bool) -> None:
    """Max error vs the float64 oracle at 4096² (bench/README.md peer note 7: float32 cumsum reaches 4.5e-5).

    The oracle runs on row strips (top, middle, bottom) of the full-size inputs; a strip's output rows
    are exact once they are 2r rows away from the strip's cut edges, so those rows are compared.
    """
    name, run = backend
    size, radius = 4096, 9
    rng = np.random.default_rng(4096)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    shape = (size, size, 3) if color else (size, size)
    guide = 0.7 * rng.random(shape, dtype=np.float32)
    guide += 0.3 * (((yy + xx) / 2)[..., None] if color else (yy + xx) / 2)
    src = (rng.random((size, size), dtype=np.float32) > 0.5).astype(np.float32) * 0.9 + 0.05
    got = run(guide, src, radius=radius, eps=1e-3, subsample=1, border="truncated")
    margin = 2 * radius
    worst = 0.0
    for y0, y1 in [(0, 48), (size // 2 - 24, size // 2 + 24), (size - 48, size)]:
        a, b = max(0, y0 - margin), min(size, y1 + margin)
        expected = reference.guided_filter(guide[a:b], src[a:b], radius, 1e-3)
        worst = max(worst, float(np.abs(got[y0:y1] - expected[y0 - a : y1 - a]).max()))
    assert worst <= tolerance(name), f"{name}: max error {worst:.3g} at 4096²"


@pytest.mark.parametrize("eps", [1e-8, 1e-10, 1e-12, 1e200])
@pytest.mark.parametrize("subsample", [1, 2])
def test_gray_image_as_colour_guide_is_solved_stably(eps: float, subsample: int) -> None:
    # three equal channels make Σ singular and Σ + εU's pivots ε: the numba kernels' former cofactor
    # inverse was 0.11 off the oracle at eps 1e-10 (its determinant cancelled) and NaN at eps 1e200
    # (determinant ~ eps**3 overflowed); the LDLᵀ solve stays at rounding level
    from maskrefine.filters import fast_guided_filter, guided_filter

    rng = np.random.default_rng(3)
    gray = rng.random((40, 48), dtype=np.float32)
    guide = np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    src = rng.random((40, 48), dtype=np.float32)
    if subsample == 1:
        out = guided_filter(guide, src, 3, eps)
        expected = reference.guided_filter(guide.astype(np.float64), src.astype(np.float64), 3, eps)
    else:
        out = fast_guided_filter(guide, src, 4, eps, subsample=subsample)
        expected = reference.guided_filter(
            guide.astype(np.float64), src.astype(np.float64), 4, eps, subsample=subsample
        )
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, expected, atol=1e-6)


@pytest.mark.parametrize("length", [1, 7, 8, 9, 64, 128, 500, 512, 1024, 1042, 4096])
@pytest.mark.parametrize("itemsize", [4, 8])
def test_colour_scratch_rows_are_an_odd_number_of_cache_lines(length: int, itemsize: int) -> None:
    from maskrefine.filters.guided import _row_stride

    stride = _row_stride(length, itemsize)
    assert length <= stride < length + 2 * 64 // itemsize
    assert stride * itemsize % 64 == 0
    assert (stride * itemsize // 64) % 2 == 1


@pytest.mark.parametrize("eps", [1e-12, 1e-8, 1e-6])
@pytest.mark.parametrize("color", [False, True])
@pytest.mark.parametrize("subsample", [1, 4])
@pytest.mark.parametrize("batch", [False, True])
def test_numba_coefficients_keep_their_digits_at_tiny_eps(
    eps: float, color: bool, subsample: int, batch: bool
) -> None:
    # a guide step whose window variance is about eps makes |a| ~ 1/sqrt(eps): the numba kernels kept a
    # and b in float32 between the passes and were 3.9e-4 (1.6e-3 fast variant) off the oracle at eps
    # 1e-12 and 3e-6 (9e-6) at 1e-8; below 1e-6 they now keep them in float64
    from maskrefine.filters import fast_guided_filter

    rng = np.random.default_rng(11)
    worst = 0.0
    for step in (1e-6, 1e-4):
        gray = np.full((96, 128), 0.5, dtype=np.float32)
        gray[:, 64:] += np.float32(step)
        gray += rng.random(gray.shape, dtype=np.float32) * np.float32(step / 10)
        guide = np.ascontiguousarray(np.stack([gray, 1 - gray, gray / 2 + 0.2], axis=-1)) if color else gray
        src = rng.random((96, 128), dtype=np.float32)
        for radius in (2, 8) if subsample == 1 else (8,):
            guides, srcs = (guide[None].repeat(2, 0), src[None].repeat(2, 0)) if batch else (guide, src)
            got = fast_guided_filter(guides, srcs, radius, eps, subsample=subsample)
            expected = reference.guided_filter(
                guide.astype(np.float64), src.astype(np.float64), radius, eps, subsample=subsample
            )
            for image in got if batch else [got]:
                worst = max(worst, float(np.abs(image - expected).max()))
    # float64 running sums still cancel at eps 1e-12 (2.2e-6 measured); float32 output rounding elsewhere
    assert worst <= (1e-5 if eps < 1e-10 else 2e-7), f"max error {worst:.3g}"


def test_coefficient_dtype_switches_to_float64_below_1e_minus_6() -> None:
    from maskrefine.filters.guided import FLOAT64_COEFFICIENTS_BELOW_EPS, _coef_dtype

    assert FLOAT64_COEFFICIENTS_BELOW_EPS == 1e-6
    assert _coef_dtype(1e-6) is np.float32
    assert _coef_dtype(9.99e-7) is np.float64
    assert _coef_dtype(1e-3) is np.float32
