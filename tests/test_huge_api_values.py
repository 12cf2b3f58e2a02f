"""Huge and extreme values of numeric API arguments: an error naming the argument and its bound, never an
OverflowError / MemoryError from deep inside, nor a silently wrong (inf, NaN, ~0) result."""

from __future__ import annotations

import numpy as np
import pytest

from maskrefine.errors import ConfigError
from maskrefine.metrics import (
    CorLocEvaluator,
    ScorePreset,
    corloc,
    mask_to_box,
    paper_repo_geometry,
    pil_bilinear,
    score_image,
    torch_bilinear,
    torch_nearest,
)
from maskrefine.quality import bootstrap_counts, paired_bootstrap, win_tie_loss
from maskrefine.refiners import refine

HUGE_INT = 10**400  # beyond float range: float() raises OverflowError


def _image_and_mask() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((24, 32, 3)).astype(np.float32), rng.random((24, 32)).astype(np.float32)


@pytest.mark.parametrize(
    "method, param",
    [
        ("guided", "eps"),
        ("bilateral_solver", "lam"),
        ("bilateral_solver", "sigma_spatial"),
        ("crf", "gaussian_compat"),
        ("crf", "gt_prob"),
    ],
)
def test_int_beyond_float_range_names_the_parameter(method: str, param: str) -> None:
    image, mask = _image_and_mask()
    with pytest.raises(ValueError, match=rf"^`{param}` must be a finite .*got 1000.*\.\.\.00$"):
        refine(image, mask, method, **{param: HUGE_INT})


def test_int_beyond_float_range_in_apply_folder_params_is_a_config_error(tmp_path) -> None:
    from maskrefine.pipeline import apply_folder

    (tmp_path / "masks").mkdir()
    (tmp_path / "images").mkdir()
    with pytest.raises(ConfigError, match=r"`eps` must be a finite float > 0"):
        apply_folder(tmp_path / "masks", tmp_path / "images", tmp_path / "out", method="guided",
                     params={"eps": HUGE_INT}, jobs=1)  # fmt: skip
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("field", ["pr_eps", "iou_eps", "beta_sq"])
def test_score_preset_refuses_int_beyond_float_range(field: str) -> None:
    with pytest.raises(ValueError, match=rf"`{field}` must be"):
        ScorePreset(name="x", **{field: HUGE_INT})


def test_selfmask_compat_beta_sq_cannot_overflow_when_squared() -> None:
    # selfmask_bug_compat squares beta_sq: 1e160 ** 2 raised OverflowError while scoring
    with pytest.raises(ValueError, match=r"`beta_sq` must be > 0 and <= 1e\+06; got 1e\+160"):
        ScorePreset(name="x", beta_sq=1e160, selfmask_bug_compat=True)


@pytest.mark.parametrize("field", ["pr_eps", "iou_eps"])
def test_huge_preset_eps_is_refused_not_a_zero_score(field: str) -> None:
    # pr_eps=1e308 scored max F 6.6e-309 and iou_eps=1e308 an IoU of ~1e-305, silently
    with pytest.raises(ValueError, match=rf"`{field}` must be a finite number in \[0, 0.001\]; got 1e\+308"):
        ScorePreset(name="x", **{field: 1e308})
    rng = np.random.default_rng(0)
    gt = rng.random((16, 16)) > 0.5
    scores, _ = score_image(gt.astype(np.float64), gt, ScorePreset(name="x", **{field: 1e-3}))
    assert scores["iou"] > 0.99 and scores["max_fbeta"] > 0.99


@pytest.mark.parametrize("scale", [1e308, 1e7 * 1.5, HUGE_INT])
def test_corloc_scale_beyond_box_coordinates_is_refused(scale: float) -> None:
    # scale=1e308 gave the box [inf, inf, inf, inf] and an IoU of NaN (with overflow warnings)
    mask = np.zeros((10, 10))
    mask[2:5, 3:7] = 1
    pattern = r"`scale` must be a finite number in \(0, 1e\+07\]"
    with pytest.raises(ValueError, match=pattern):
        mask_to_box(mask, scale=scale)
    with pytest.raises(ValueError, match=pattern):
        CorLocEvaluator(scale=scale)
    with pytest.raises(ValueError, match=pattern):
        corloc([mask], [[[3, 2, 7, 5]]], scale=scale)
    assert corloc([mask], [[[24, 16, 56, 40]]], scale=8) == 100.0


@pytest.mark.parametrize("n_resamples", [100_001, 10**13, 10**20])
def test_bootstrap_resamples_are_capped(n_resamples: int) -> None:
    # 1e9 resamples of 50 images asked NumPy for 373 GiB (MemoryError); 1e20 "Maximum allowed dimension"
    # (only sizes beyond any address space here, so that this test is safe on the unfixed code too)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"`n_resamples` must be an integer in \[1, 100000\]"):
        bootstrap_counts(10, n_resamples)
    # an interval needs 40 resamples at 95 %: the range named is the interval's
    with pytest.raises(ValueError, match=r"`n_resamples` must be an integer in \[40, 100000\]"):
        paired_bootstrap(rng.random(50), rng.random(50), n_resamples=n_resamples)


def test_tie_tolerance_beyond_float_range_makes_every_pair_a_tie() -> None:
    rng = np.random.default_rng(0)
    assert win_tie_loss(rng.random(5), rng.random(5), tie_tol=HUGE_INT) == (0, 5, 0)


@pytest.mark.parametrize(
    "short_side, crop, pattern",
    [
        (10**6, 320, r"`short_side` must be an integer in \[1, 16384\]; got 1000000"),
        (10**12, 320, r"`short_side` must be an integer in \[1, 16384\]"),
        (0, 0, r"`short_side` must be an integer in \[1, 16384\]; got 0"),
        (335, 10**12, r"`crop` must be an integer in \[1, 16384\]"),
        (16384, 320, r"would resize the 48x64 mask to 16384x21845, more than 1e\+08 pixels"),
    ],
)
def test_paper_repo_geometry_sizes_are_bounded(short_side: int, crop: int, pattern: str) -> None:
    # short_side=1e6 asked for 9.7 TiB (MemoryError); 0 raised ZeroDivisionError
    with pytest.raises(ValueError, match=pattern):
        paper_repo_geometry(np.zeros((48, 64), np.float32), short_side, crop)


def test_paper_repo_geometry_refuses_an_empty_mask() -> None:
    with pytest.raises(ValueError, match=r"`array` must be a non-empty 2-D mask; got shape \(0, 64\)"):
        paper_repo_geometry(np.zeros((0, 64), np.float32))
    assert paper_repo_geometry(np.zeros((48, 64), np.float32)).shape == (320, 320)


def test_train_config_refuses_int_beyond_float_range() -> None:
    pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")
    from maskrefine.train import preset

    with pytest.raises(
        ConfigError, match=r"training setting lr must be a finite number; got 1000.*\.\.\.00$"
    ):
        preset("tiny", lr=HUGE_INT)


def test_huge_values_are_shortened_in_messages() -> None:
    # the whole value used to be echoed: a 1 MB preset name, a 400-digit budget
    from maskrefine.metrics import get_preset
    from maskrefine.quality.tune import parse_budget

    with pytest.raises(ValueError, match=r"`preset` must be one of") as caught:
        get_preset("x" * 10**6)
    assert len(str(caught.value)) < 400
    with pytest.raises(ConfigError, match=r"budget must be positive and finite; got '1000") as budget:
        parse_budget("1" + "0" * 400 + "s")
    assert len(str(budget.value)) < 400


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"n_resamples": 10**15}, r"`n_resamples` must be an integer in \[40, 100000\]; got 10{15}$"),
        ({"seed": -1}, r"`seed` must be an integer >= 0; got -1"),
        # a 95 % interval needs 40 resamples (each tail holds one); 1 gave a zero-width interval
        ({"n_resamples": 39}, r"`n_resamples` must be at least 40 for confidence 0\.95 .*; got 39$"),
        ({"n_resamples": 40.0}, r"`n_resamples` must be an integer in \[40, 100000\]; got 40\.0 \(float\)$"),
    ],
)
def test_compare_folders_checks_bootstrap_settings_before_any_work(tmp_path, kwargs, pattern) -> None:
    # were checked only after every image was scored (a ValueError, not a ConfigError); 10**15 resamples
    # is beyond any address space, so that the unfixed code fails at once instead of filling memory
    import cv2

    from maskrefine.quality.compare import compare_folders

    for folder in ("pred", "base", "gt"):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / "a.png"), np.full((8, 8), 255, np.uint8))
    calls: list[tuple[int, int]] = []
    with pytest.raises(ConfigError, match=pattern):
        compare_folders(tmp_path / "pred", tmp_path / "base", tmp_path / "gt",
                        progress=lambda done, total: calls.append((done, total)), **kwargs)  # fmt: skip
    assert calls == []


@pytest.mark.parametrize(
    "call, pattern",
    [
        (
            lambda x: torch_bilinear(x, (48, 64), stride=10**6),
            r"`stride` must be None or an integer in \[1, 1024\]",
        ),
        (lambda x: torch_bilinear(x, (48, 64), stride=10**20), r"`stride` must be None or an integer"),
        (lambda x: torch_nearest(x, (48, 64), stride=-4), r"`stride` must be None or an integer"),
        (lambda x: torch_bilinear(x, (0, 0)), r"`size_hw` must be two integers \(H, W\) >= 1; got \(0, 0\)"),
        (
            lambda x: pil_bilinear(x, (-5, 10)),
            r"`size_hw` must be two integers \(H, W\) >= 1; got \(-5, 10\)",
        ),
        (lambda x: pil_bilinear(x, (10**6, 10**6)), r"`size_hw` must be at most 2147483648 pixels"),
        (lambda x: torch_bilinear(x, (10**20, 10)), r"`size_hw` must be at most 2147483648 pixels"),
    ],
)
def test_resize_sizes_and_strides_are_bounded(call, pattern: str) -> None:
    # stride=1e6 built 12e6-entry axes to crop 48 of them, 1e20 "Maximum allowed size exceeded"; a
    # negative size gave an empty result silently; (1e6, 1e6) asked for 7.3 TiB (MemoryError)
    with pytest.raises(ValueError, match=pattern):
        call(np.random.default_rng(0).random((12, 16)))
    assert torch_bilinear(np.zeros((12, 16)), (48, 64), stride=4).shape == (48, 64)


@pytest.mark.parametrize("n_thresholds", [(1 << 20) + 1, 10**12, 10**20])
def test_curve_counts_threshold_count_is_bounded(n_thresholds: int) -> None:
    # 1e12 asked bincount for 14.6 TiB (MemoryError), 1e20 overflowed a C long
    from maskrefine.metrics.confusion import curve_counts

    with pytest.raises(ValueError, match=r"`n_thresholds` must be an integer in \[1, 1048576\]"):
        curve_counts(np.zeros((2, 2), np.int64), np.zeros((2, 2), bool), n_thresholds)
