"""Hostile values in error messages: shortened, never echoed in full, never failing while being built.

Each case passes (a) an int of 5000 digits (beyond Python's 4300-digit limit for ``str``/``repr``, which
made building the message raise ``ValueError: Exceeds the limit ...`` inside the ``raise``) or (b) a
string of 100000 characters (echoed in full before) to a public or CLI-reachable function, and checks
that the intended error comes back with a short message. The int is built as ``10**5000`` and never
turned into text here.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maskrefine.errors import ConfigError, InputError

HUGE = 10**5000  # 5001 digits: str() and repr() raise ValueError
LONG = "x" * 100_000
#: A 4001-digit int: JSON and TOML readers parse it (below the 4300-digit limit); written as text.
DIGITS_4000 = "1" + "0" * 4000
MAX_MESSAGE = 400


def _check(exc: BaseException, expected: type[BaseException]) -> None:
    message = str(exc)
    assert isinstance(exc, expected), f"{type(exc).__name__}: {message[:200]}"
    assert "Exceeds the limit" not in message, message[:300]
    assert len(message) < MAX_MESSAGE, f"{len(message)} characters: {message[:300]}"


def _folders(tmp_path: Path, *names: str) -> list[Path]:
    out = []
    for name in names:
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        out.append(folder)
    return out


def _mask() -> np.ndarray:
    mask = np.zeros((8, 8), bool)
    mask[2:5, 2:5] = True
    return mask


def _tune(tmp_path: Path, **kwargs: Any) -> object:
    from maskrefine.quality.tune import tune

    masks, images, gts = _folders(tmp_path, "masks", "images", "gt")
    return tune(masks, images, gts, **kwargs)


def _compare(tmp_path: Path, **kwargs: Any) -> object:
    from maskrefine.quality.compare import compare_folders

    pred, base, gts = _folders(tmp_path, "pred", "base", "gt")
    return compare_folders(pred, base, gts, **kwargs)


def _score(tmp_path: Path, **kwargs: Any) -> object:
    from maskrefine.pipeline.score import score_folder

    pred, gts = _folders(tmp_path, "pred", "gt")
    return score_folder(pred, gts, **kwargs)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _read_seeds(tmp_path: Path, text: str) -> object:
    from maskrefine.metrics.corloc import read_seeds

    return read_seeds(_write(tmp_path, "seeds.json", text))


def _read_coco(tmp_path: Path, images: str) -> object:
    from maskrefine.metrics.corloc import read_coco_boxes

    return read_coco_boxes(_write(tmp_path, "coco.json", '{"images": ' + images + ', "annotations": []}'))


def _preset_file(tmp_path: Path, line: str) -> object:
    from maskrefine.quality.preset_file import read_preset_file

    return read_preset_file(_write(tmp_path, "preset.toml", f'[refine]\nmethod = "guided"\n{line}\n'))


def _score_preset(**changes: Any) -> object:
    from maskrefine.metrics import get_preset

    return get_preset("tokencut").replace(pred_mapping="raw", **changes)


def _corloc_dict(key: object) -> object:
    from maskrefine.metrics import corloc

    return corloc({key: _mask()}, {})


def _mask_to_box(*args: Any, **kwargs: Any) -> object:
    from maskrefine.metrics import mask_to_box

    return mask_to_box(_mask(), *args, **kwargs)


def _parse_shard(value: object) -> object:
    from maskrefine.pipeline.guards import parse_shard

    return parse_shard(value)  # type: ignore[arg-type]


def _check_jobs(value: object) -> object:
    from maskrefine.pipeline.guards import check_jobs

    return check_jobs(value)


def _read_report(value: object) -> object:
    from maskrefine.pipeline import read_run_report

    return read_run_report(value)  # type: ignore[arg-type]


def _box_iou(dtype: object) -> object:
    from maskrefine.metrics import box_iou

    return box_iou([0, 0, 2, 2], [[0, 0, 2, 2]], dtype=dtype)  # type: ignore[arg-type]


def _evaluator(**kwargs: Any) -> object:
    from maskrefine.metrics import CorLocEvaluator

    return CorLocEvaluator(**kwargs)


def _coarse(patch: object) -> object:
    from maskrefine.quality.coarse import coarse_shape

    return coarse_shape(10, 10, patch)  # type: ignore[arg-type]


def _candidate(guide: object) -> object:
    from maskrefine.quality.grid import Candidate

    return Candidate.make("guided", guide)  # type: ignore[arg-type]


def _bootstrap(statistic: object) -> object:
    from maskrefine.quality import paired_bootstrap

    return paired_bootstrap([1.0, 0.5], [0.5, 0.5], statistic=statistic)  # type: ignore[arg-type]


def _encode(fmt: object) -> object:
    from maskrefine.io.imageio import encode_mask

    return encode_mask(np.zeros((4, 4), np.float32), fmt)  # type: ignore[arg-type]


def _box_mean(border: object) -> object:
    from maskrefine.filters.reference import box_mean

    return box_mean(np.zeros((4, 4)), 1, border)  # type: ignore[arg-type]


def _guided(**kwargs: Any) -> object:
    from maskrefine.filters import guided_filter

    return guided_filter(np.zeros((8, 8), np.float32), np.zeros((8, 8), np.float32), **kwargs)


Case = Callable[[Path], object]

CASES: list[Any] = [
    # maskrefine.quality.tune: budget_s, methods
    pytest.param(lambda t: _tune(t, budget_s=-HUGE), ConfigError, id="tune-budget_s-int"),
    pytest.param(lambda t: _tune(t, budget_s=LONG), ConfigError, id="tune-budget_s-str"),
    pytest.param(lambda t: _tune(t, methods=[HUGE]), ConfigError, id="tune-methods-int"),
    pytest.param(lambda t: _tune(t, methods=[LONG]), ConfigError, id="tune-methods-str"),
    pytest.param(lambda t: _tune(t, methods=["nope"] * 100_000), ConfigError, id="tune-methods-many"),
    # maskrefine.quality.compare_folders: preset, worst
    pytest.param(lambda t: _compare(t, preset=HUGE), ConfigError, id="compare-preset-int"),
    pytest.param(lambda t: _compare(t, preset=LONG), ConfigError, id="compare-preset-str"),
    pytest.param(lambda t: _compare(t, worst=-HUGE), ConfigError, id="compare-worst-int"),
    pytest.param(lambda t: _compare(t, worst=LONG), ConfigError, id="compare-worst-str"),
    # maskrefine.quality: coarse_shape patch, Candidate guide, paired_bootstrap statistic, preset file
    pytest.param(lambda t: _coarse(-HUGE), ValueError, id="coarse_shape-patch-int"),
    pytest.param(lambda t: _coarse(LONG), ValueError, id="coarse_shape-patch-str"),
    pytest.param(lambda t: _candidate(HUGE), ValueError, id="Candidate.make-guide-int"),
    pytest.param(lambda t: _candidate(LONG), ValueError, id="Candidate.make-guide-str"),
    pytest.param(lambda t: _bootstrap(HUGE), ValueError, id="paired_bootstrap-statistic-int"),
    pytest.param(lambda t: _bootstrap(LONG), ValueError, id="paired_bootstrap-statistic-str"),
    pytest.param(
        lambda t: _preset_file(t, f"guide = {DIGITS_4000}"), ConfigError, id="preset_file-guide-int"
    ),
    pytest.param(
        lambda t: _preset_file(t, f'guide = ["{LONG[:60_000]}"]'), ConfigError, id="preset_file-guide-str"
    ),
    # maskrefine.metrics.corloc: connectivity, selector, seed, dtype, iou_dtype, dict keys
    pytest.param(lambda t: _mask_to_box(connectivity=HUGE), ValueError, id="mask_to_box-connectivity-int"),
    pytest.param(lambda t: _mask_to_box(connectivity=LONG), ValueError, id="mask_to_box-connectivity-str"),
    pytest.param(lambda t: _mask_to_box(HUGE), ValueError, id="mask_to_box-selector-int"),
    pytest.param(lambda t: _mask_to_box(LONG), ValueError, id="mask_to_box-selector-str"),
    pytest.param(lambda t: _mask_to_box(seed=(HUGE, 0)), ValueError, id="mask_to_box-seed-int"),
    pytest.param(lambda t: _mask_to_box(seed=LONG), ValueError, id="mask_to_box-seed-str"),
    pytest.param(lambda t: _mask_to_box("seed_cc", seed=(HUGE, 0)), ValueError, id="mask_to_box-seed_cc-int"),
    pytest.param(lambda t: _box_iou(HUGE), ValueError, id="box_iou-dtype-int"),
    pytest.param(lambda t: _box_iou(LONG), ValueError, id="box_iou-dtype-str"),
    pytest.param(lambda t: _evaluator(iou_dtype=HUGE), ValueError, id="CorLocEvaluator-iou_dtype-int"),
    pytest.param(lambda t: _evaluator(selector=LONG), ValueError, id="CorLocEvaluator-selector-str"),
    pytest.param(lambda t: _evaluator(connectivity=HUGE), ValueError, id="CorLocEvaluator-connectivity-int"),
    pytest.param(lambda t: _corloc_dict(HUGE), ValueError, id="corloc-mask_key-int"),
    pytest.param(lambda t: _corloc_dict(LONG), ValueError, id="corloc-mask_key-str"),
    # maskrefine.metrics.corloc readers: JSON values and keys (a JSON dict key or value is unbounded)
    pytest.param(
        lambda t: _read_seeds(t, '{"a": -' + DIGITS_4000 + "}"), InputError, id="read_seeds-value-int"
    ),
    pytest.param(lambda t: _read_seeds(t, json.dumps({LONG: -1})), InputError, id="read_seeds-key-str"),
    pytest.param(lambda t: _read_seeds(t, json.dumps({"a": LONG})), InputError, id="read_seeds-value-str"),
    pytest.param(
        lambda t: _read_coco(
            t,
            f'[{{"id": {DIGITS_4000}, "file_name": "a.jpg"}}, {{"id": {DIGITS_4000}, "file_name": "b.jpg"}}]',
        ),
        InputError,
        id="read_coco_boxes-id_twice-int",
    ),
    pytest.param(
        lambda t: _read_coco(t, json.dumps([{"id": LONG, "file_name": "a.jpg"}])),
        InputError,
        id="read_coco_boxes-id-str",
    ),
    pytest.param(
        lambda t: _read_coco(
            t, json.dumps([{"id": 1, "file_name": LONG + ".jpg"}, {"id": 2, "file_name": LONG + ".png"}])
        ),
        InputError,
        id="read_coco_boxes-stem-str",
    ),
    # maskrefine.metrics.ScorePreset
    pytest.param(lambda t: _score_preset(threshold_op=HUGE), ValueError, id="ScorePreset-threshold_op-int"),
    pytest.param(lambda t: _score_preset(aggregation=LONG), ValueError, id="ScorePreset-aggregation-str"),
    pytest.param(
        lambda t: _score_preset(iou_empty_union=LONG), ValueError, id="ScorePreset-iou_empty_union-str"
    ),
    # maskrefine.pipeline.guards: shard, jobs
    pytest.param(lambda t: _parse_shard(HUGE), ConfigError, id="parse_shard-int"),
    pytest.param(lambda t: _parse_shard([LONG]), ConfigError, id="parse_shard-list-str"),
    pytest.param(lambda t: _parse_shard((HUGE, 1.5)), ConfigError, id="parse_shard-pair-int"),
    pytest.param(lambda t: _parse_shard((LONG, 1)), ConfigError, id="parse_shard-pair-str"),
    pytest.param(lambda t: _check_jobs(HUGE), ConfigError, id="check_jobs-int"),
    pytest.param(lambda t: _check_jobs(-HUGE), ConfigError, id="check_jobs-negative-int"),
    pytest.param(lambda t: _check_jobs(LONG), ConfigError, id="check_jobs-str"),
    # maskrefine.pipeline.score_folder options (maskrefine score)
    pytest.param(lambda t: _score(t, preset=HUGE), ConfigError, id="score-preset-int"),
    pytest.param(lambda t: _score(t, preset=LONG), ConfigError, id="score-preset-str"),
    pytest.param(lambda t: _score(t, boxes=HUGE), ConfigError, id="score-boxes-int"),
    pytest.param(lambda t: _score(t, boxes=LONG), ConfigError, id="score-boxes-str"),
    pytest.param(lambda t: _score(t, montage_count=-HUGE), ConfigError, id="score-montage_count-int"),
    pytest.param(lambda t: _score(t, montage_count=LONG), ConfigError, id="score-montage_count-str"),
    pytest.param(
        lambda t: _score(t, boxes="masks", corloc_selector=HUGE), ConfigError, id="score-selector-int"
    ),
    pytest.param(
        lambda t: _score(t, boxes="masks", corloc_selector=LONG), ConfigError, id="score-selector-str"
    ),
    pytest.param(
        lambda t: _score(t, boxes="masks", corloc_connectivity=HUGE), ConfigError, id="score-connectivity-int"
    ),
    pytest.param(
        lambda t: _score(t, boxes="masks", corloc_connectivity=LONG), ConfigError, id="score-connectivity-str"
    ),
    pytest.param(
        lambda t: _score(t, boxes="masks", patch_size=-HUGE), ConfigError, id="score-patch_size-int"
    ),
    pytest.param(lambda t: _score(t, boxes="masks", patch_size=LONG), ConfigError, id="score-patch_size-str"),
    pytest.param(lambda t: _score(t, mask_scale=HUGE), ConfigError, id="score-mask_scale-int"),
    pytest.param(lambda t: _score(t, mask_scale=LONG), ConfigError, id="score-mask_scale-str"),
    pytest.param(lambda t: _score(t, max_pixels=-HUGE), ConfigError, id="score-max_pixels-int"),
    pytest.param(lambda t: _score(t, max_pixels=LONG), ConfigError, id="score-max_pixels-str"),
    # maskrefine.pipeline.read_run_report (maskrefine merge)
    pytest.param(lambda t: _read_report(HUGE), ConfigError, id="read_run_report-int"),
    pytest.param(lambda t: _read_report([LONG]), ConfigError, id="read_run_report-str"),
    # maskrefine.io, maskrefine.filters (the shared checks of maskrefine._checks)
    pytest.param(lambda t: _encode(HUGE), ValueError, id="encode_mask-fmt-int"),
    pytest.param(lambda t: _encode(LONG), ValueError, id="encode_mask-fmt-str"),
    pytest.param(lambda t: _box_mean(HUGE), ValueError, id="box_mean-border-int"),
    pytest.param(lambda t: _box_mean(LONG), ValueError, id="box_mean-border-str"),
    pytest.param(lambda t: _guided(radius=[HUGE]), TypeError, id="guided_filter-radius-int"),
    pytest.param(lambda t: _guided(radius=LONG), TypeError, id="guided_filter-radius-str"),
    pytest.param(lambda t: _guided(eps=LONG), TypeError, id="guided_filter-eps-str"),
    pytest.param(lambda t: _guided(subsample=(HUGE,)), TypeError, id="guided_filter-subsample-int"),
]


@pytest.mark.parametrize("call, expected", CASES)
def test_hostile_value_is_shortened(tmp_path: Path, call: Case, expected: type[BaseException]) -> None:
    with pytest.raises(Exception) as info:  # the type is checked by _check, with the message
        call(tmp_path)
    _check(info.value, expected)


def test_read_seeds_int_beyond_the_digit_limit_is_named(tmp_path: Path) -> None:
    """A 5001-digit int in a seed JSON: refused by the JSON reader, reported like the other JSON readers.

    The reason is the reader's (Python's 4300-digit limit) without its hint for Python programmers.
    """
    with pytest.raises(InputError) as info:
        _read_seeds(tmp_path, '{"a": 1' + "0" * 5000 + "}")
    message = str(info.value)
    assert "cannot read seed JSON (Exceeds the limit (4300 digits)" in message
    assert "set_int_max_str_digits" not in message
    assert len(message) < MAX_MESSAGE


def _npy_header(shape: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_2_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return buffer.getvalue()


@pytest.mark.parametrize(
    "shape, max_pixels",
    [
        pytest.param((10**4000, 10**4000), 100_000_000, id="over_max_pixels"),  # OverflowError before
        pytest.param((10**4000, 10**4000), None, id="truncated"),  # 8001-digit byte count: str() raised
        pytest.param((10**4000, 10**4000), HUGE, id="over_huge_max_pixels"),  # str(max_pixels) raised
        pytest.param((10**4000,), 100_000_000, id="not_2d"),  # echoed 4000 digits
        pytest.param((-(10**4000), 2), 100_000_000, id="negative"),  # echoed 4000 digits
    ],
)
def test_npy_header_with_huge_sizes(tmp_path: Path, shape: tuple[int, ...], max_pixels: int | None) -> None:
    """A .npy file whose header claims sizes of thousands of digits: an InputError naming the file, short."""
    from maskrefine.io.imageio import read_mask

    path = tmp_path / "mask.npy"
    path.write_bytes(_npy_header(shape))
    with pytest.raises(Exception) as info:  # the type is checked by _check
        read_mask(path, max_pixels=max_pixels)
    _check(info.value, InputError)
    assert str(path) in str(info.value)


def _torch_cases() -> list[Any]:
    def guided(**kwargs: Any) -> object:
        import torch

        from maskrefine.torch import guided_filter

        return guided_filter(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8), **kwargs)

    def guide(**kwargs: Any) -> object:
        import torch

        from maskrefine.torch import make_guide

        kwargs.setdefault("normalized", True)
        return make_guide(torch.zeros(1, 3, 4, 4), **kwargs)

    def predict(tmp_path: Path, **kwargs: Any) -> object:
        from maskrefine.train.predict import predict_folder

        (images,) = _folders(tmp_path, "images")
        return predict_folder(images, tmp_path / "last.pt", tmp_path / "out", **kwargs)

    def polarity(rule: object) -> object:
        import torch

        from maskrefine.train.predict import apply_polarity

        return apply_polarity(torch.zeros(1, 1, 4, 4), rule)  # type: ignore[arg-type]

    def vit(arch: object, **kwargs: Any) -> object:
        from maskrefine.train.vit import vit_from_arch

        return vit_from_arch(arch, 16, **kwargs)  # type: ignore[arg-type]

    return [
        pytest.param(lambda t: guided(radius=-HUGE), ValueError, id="torch.guided_filter-radius-int"),
        pytest.param(lambda t: guided(radius=LONG), TypeError, id="torch.guided_filter-radius-str"),
        pytest.param(lambda t: guided(border=HUGE), ValueError, id="torch.guided_filter-border-int"),
        pytest.param(lambda t: guided(border=LONG), ValueError, id="torch.guided_filter-border-str"),
        pytest.param(lambda t: guide(mode=HUGE), ValueError, id="make_guide-mode-int"),
        pytest.param(lambda t: guide(mode=LONG), ValueError, id="make_guide-mode-str"),
        pytest.param(lambda t: guide(normalized=[HUGE]), TypeError, id="make_guide-normalized-int"),
        pytest.param(lambda t: guide(normalized=LONG), TypeError, id="make_guide-normalized-str"),
        pytest.param(lambda t: predict(t, fmt=HUGE), ConfigError, id="predict_folder-fmt-int"),
        pytest.param(lambda t: predict(t, fmt=LONG), ConfigError, id="predict_folder-fmt-str"),
        pytest.param(lambda t: predict(t, refine=HUGE), ConfigError, id="predict_folder-refine-int"),
        pytest.param(lambda t: predict(t, refine=LONG), ConfigError, id="predict_folder-refine-str"),
        pytest.param(lambda t: predict(t, device=HUGE), ConfigError, id="predict_folder-device-int"),
        pytest.param(lambda t: predict(t, device=LONG), ConfigError, id="predict_folder-device-str"),
        pytest.param(lambda t: polarity(HUGE), ValueError, id="apply_polarity-rule-int"),
        pytest.param(lambda t: polarity(LONG), ValueError, id="apply_polarity-rule-str"),
        pytest.param(lambda t: vit(HUGE), ValueError, id="vit_from_arch-arch-int"),
        pytest.param(lambda t: vit(LONG), ValueError, id="vit_from_arch-arch-str"),
        pytest.param(lambda t: vit("vit_small", layout=LONG), ValueError, id="vit_from_arch-layout-str"),
    ]


@pytest.mark.parametrize("call, expected", _torch_cases())
def test_hostile_value_is_shortened_torch(tmp_path: Path, call: Case, expected: type[BaseException]) -> None:
    pytest.importorskip("torch", reason="the torch backend and maskrefine.train need PyTorch")
    with pytest.raises(Exception) as info:  # the type is checked by _check
        call(tmp_path)
    _check(info.value, expected)


def test_text_or_empty_reads_any_value_as_text_and_never_raises() -> None:
    from maskrefine._checks import text_or_empty

    assert text_or_empty("voc:boxes") == "voc:boxes"
    assert text_or_empty(12) == "12"
    assert text_or_empty(10**5000) == ""  # str() refuses an int beyond Python's digit limit
