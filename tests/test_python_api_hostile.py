"""Hostile arguments to the folder-level and metrics Python API (callers that bypass click's conversion).

Each test names a call that used to give a silent wrong result, a traceback from deep inside
(numpy/numba/pathlib), a truthy reading of ``"no"``, or read the current folder for an empty path; it
now gets a clear error naming the argument (or the right result).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from maskrefine import (
    CorLocEvaluator,
    Evaluator,
    ScorePreset,
    box_iou,
    boxes_from_mask,
    corloc,
    get_preset,
    read_coco_boxes,
    read_voc_boxes,
    register_refiner,
    score_folder,
    score_image,
)
from maskrefine.errors import ConfigError
from maskrefine.metrics import mask_to_box, read_seed_maps, read_seeds
from maskrefine.refiners import REFINERS, RefinerSpec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _square(n: int = 16) -> np.ndarray:
    g = np.zeros((n, n), np.uint8)
    g[n // 4 : 3 * n // 4, n // 4 : 3 * n // 4] = 255
    return g


def _soft(n: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, n)).astype(np.float32)


# ---------------------------------------------------------------- Evaluator / score_image


@pytest.mark.parametrize("dtype", [">f4", ">f8"])
def test_big_endian_prediction_resized_by_opencv_scores_as_native(dtype: str) -> None:
    # pysod resizes with cv2, which read the big-endian bytes as native numbers: a silently wrong score
    gt, pred = _square(16), _soft(8)
    want = score_image(pred, gt, "pysod")[0]
    got = score_image(pred.astype(dtype), gt, "pysod")[0]
    assert got["mae"] == pytest.approx(want["mae"], abs=1e-6)
    assert got["max_fbeta"] == pytest.approx(want["max_fbeta"], abs=1e-6)


def test_big_endian_uint16_prediction_is_accepted() -> None:
    gt = _square(16)
    pred = (np.random.default_rng(1).random((16, 16)) * 65535).astype(np.uint16)
    assert score_image(pred.astype(">u2"), gt)[0] == score_image(pred, gt)[0]


@pytest.mark.parametrize("dtype", [">f8", "f2", np.longdouble])
def test_float_gt_of_any_float_dtype_scores(dtype: object) -> None:
    # big-endian float GT: numba TypingError; float16 GT: NotImplementedError from numba
    gt = _square(16)
    pred = _soft(16)
    want = score_image(pred, (gt / 255).astype(np.float64))[0]
    got = score_image(pred, (gt / 255).astype(dtype))[0]
    assert got["iou"] == pytest.approx(want["iou"])
    assert got["mae"] == pytest.approx(want["mae"])


def test_big_endian_inputs_are_not_modified() -> None:
    gt = (_square(16) / 255).astype(">f8")
    pred = _soft(8).astype(">f4")
    gt_copy, pred_copy = gt.copy(), pred.copy()
    Evaluator("pysod").step(pred, gt)
    assert gt.dtype.str == ">f8" and np.array_equal(gt, gt_copy)
    assert pred.dtype.str == ">f4" and np.array_equal(pred, pred_copy)


@pytest.mark.parametrize("value", ["no", 0, None, "False"])
def test_weighted_f_must_be_a_bool(value: object) -> None:
    with pytest.raises(TypeError, match="`weighted_f` must be True or False"):
        Evaluator(weighted_f=value)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`weighted_f`"):
        score_image(_square(), _square(), weighted_f=value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "error", "field"),
    [
        ({"n_thresholds": 0}, ValueError, "n_thresholds"),
        ({"threshold_denominator": 0, "threshold_values": "division"}, ValueError, "threshold_denominator"),
        ({"pred_threshold": float("nan")}, ValueError, "pred_threshold"),
        ({"pred_threshold": "0.5"}, TypeError, "pred_threshold"),
        ({"gt_threshold_acc": float("nan")}, ValueError, "gt_threshold_acc"),
        ({"gt_threshold_f": -1.0}, ValueError, "gt_threshold_f"),
        ({"pr_eps": -1.0}, ValueError, "pr_eps"),
        ({"iou_eps": float("nan")}, ValueError, "iou_eps"),
        ({"empty_pred_precision": 2.0}, ValueError, "empty_pred_precision"),
        ({"empty_gt_recall": "x"}, TypeError, "empty_gt_recall"),
        ({"pred_mapping": "PySOD"}, ValueError, "pred_mapping"),
        ({"geometry": "GT"}, ValueError, "geometry"),
        ({"selfmask_bug_compat": "no"}, TypeError, "selfmask_bug_compat"),
        ({"name": 5}, TypeError, "name"),
        ({"name": ""}, TypeError, "name"),
        ({"beta_sq": "0.3"}, TypeError, "beta_sq"),
        ({"beta_sq": float("inf")}, ValueError, "beta_sq"),
    ],
)
def test_score_preset_refuses_bad_fields(changes: dict[str, object], error: type, field: str) -> None:
    with pytest.raises(error, match=f"`{field}`"):
        get_preset("tokencut").replace(**changes)


def test_registered_presets_still_build() -> None:
    for name in ("tokencut", "move", "selfmask", "found", "paper_repo", "pysod"):
        preset = get_preset(name)
        assert ScorePreset(
            **{f: getattr(preset, f) for f in preset.__dataclass_fields__ if f != "_thresholds"}
        )


# ---------------------------------------------------------------- boxes


@pytest.mark.parametrize(
    ("box", "boxes", "argument"),
    [
        (np.array([[0, 0], [2, 2]]), [[0, 0, 2, 2]], "box"),  # was reshaped to one box
        ([0, 0, 2, 2], np.array([[0, 0], [2, 2]]), "boxes"),  # idem
        ([0, 0, 2, 2], [0, 0, 2, 2, 0, 0, 1, 1], "boxes"),  # 8 numbers were read as two boxes
        ([0, 0, 2, 2], [0, 0, 2, 2, 1, 1], "boxes"),  # numpy reshape error
        ([0, 0, 2], [[0, 0, 2, 2]], "box"),
    ],
)
def test_box_iou_refuses_other_shapes(box: object, boxes: object, argument: str) -> None:
    with pytest.raises(ValueError, match=f"`{argument}` must have shape"):
        box_iou(box, boxes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("box", "boxes", "argument", "problem"),
    [
        ([2, 2, 0, 0], [[0, 0, 2, 2]], "box", "inverted"),
        ([0, 0, 2, 2], [[3, 3, -1, -1]], "boxes", "inverted"),
        ([0, 0, np.nan, 2], [[0, 0, 2, 2]], "box", "finite"),
        ([0, 0, 2, 2], [[0, 0, np.inf, 2]], "boxes", "finite"),
        ([0, 0, 1e200, 1e200], [[0, 0, 1, 1]], "box", "finite"),  # overflowed to a NaN IoU
    ],
)
def test_box_iou_refuses_inverted_and_non_finite_boxes(
    box: object, boxes: object, argument: str, problem: str
) -> None:
    with pytest.raises(ValueError, match=f"`{argument}`.*{problem}"):
        box_iou(box, boxes)  # type: ignore[arg-type]


def test_box_iou_ragged_and_eps() -> None:
    with pytest.raises(TypeError, match="`boxes` must be numbers"):
        box_iou([0, 0, 2, 2], [[0, 0, 2, 2], [1, 1]])
    with pytest.raises(ValueError, match="`eps`"):
        box_iou([0, 0, 2, 2], [[0, 0, 2, 2]], eps=-1)  # gave IoU -4
    with pytest.raises(TypeError, match="`eps`"):
        box_iou([0, 0, 2, 2], [[0, 0, 2, 2]], eps="1e-7")  # type: ignore[arg-type]


def test_box_iou_keeps_accepted_forms_and_inputs() -> None:
    box, boxes = np.array([0.0, 0, 2, 2]), np.array([[0.0, 0, 2, 2], [-1, -1, 1, 1]])
    before = (box.copy(), boxes.copy())
    assert box_iou(box, boxes).shape == (2,)
    assert box_iou(box[None], boxes[0]).shape == (1,)  # (1, 4) box and one (4,) box still accepted
    assert box_iou(box, []).shape == (0,)
    assert np.array_equal(box, before[0]) and np.array_equal(boxes, before[1])


def test_boxes_from_mask_refuses_empty_nan_and_out_of_range_float_masks() -> None:
    with pytest.raises(ValueError, match="`gt_mask` must not be empty"):
        boxes_from_mask(np.zeros((0, 0), bool))
    with pytest.raises(ValueError, match="`gt_mask` must have finite values"):
        boxes_from_mask(np.full((4, 4), np.nan))  # was: no box at all
    with pytest.raises(ValueError, match="`gt_mask` must have finite values"):
        boxes_from_mask(_square().astype(np.float64))  # 0..255 as float
    assert boxes_from_mask(np.full((3, 3), 1.0000001)).tolist() == [[0, 0, 3, 3]]  # float32 rounding


@pytest.mark.parametrize(
    ("value", "error"), [("0.5", TypeError), (None, TypeError), (float("nan"), ValueError)]
)
def test_threshold_is_checked(value: object, error: type) -> None:
    m = _square()
    with pytest.raises(error, match="`threshold`"):
        boxes_from_mask(m, threshold=value)  # type: ignore[arg-type]
    with pytest.raises(error, match="`threshold`"):
        CorLocEvaluator(threshold=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [float("nan"), 2, -1, 0])
def test_iou_threshold_is_checked(value: float) -> None:
    with pytest.raises(ValueError, match="`iou_threshold`"):
        CorLocEvaluator(iou_threshold=value)


def test_scale_must_be_finite() -> None:
    with pytest.raises(ValueError, match="`scale`"):
        CorLocEvaluator(scale=float("inf"))
    with pytest.raises(ValueError, match="`scale`"):
        CorLocEvaluator().step(_square(), [[4, 4, 12, 12]], scale=float("inf"))


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"seed": 3}, TypeError, "seed"),
        ({"seed": (3, 3, 3)}, TypeError, "seed"),
        ({"seed": (3.9, 1.9)}, TypeError, "seed"),  # was truncated to (3, 1)
        ({"seed": ("a", "b")}, TypeError, "seed"),
        ({"seed": (True, True)}, TypeError, "seed"),
    ],
)
def test_seed_must_be_a_pair_of_integers(kwargs: dict[str, object], error: type, argument: str) -> None:
    with pytest.raises(error, match=f"`{argument}`"):
        CorLocEvaluator("seed_cc").step(_square(), [[4, 4, 12, 12]], **kwargs)  # type: ignore[arg-type]


def test_seed_with_another_selector_is_refused() -> None:
    with pytest.raises(ValueError, match="`seed` only applies to selector 'seed_cc'"):
        mask_to_box(_square() > 0, "largest_box", seed=(100, 100))


@pytest.mark.parametrize(
    ("image_size", "error"),
    [((0, 0), ValueError), ((-5, -5), ValueError), (8, TypeError), ((np.nan, 1), TypeError)],
)
def test_image_size_is_checked(image_size: object, error: type) -> None:
    # (0, 0) and negative sizes made inverted boxes; NaN was ignored
    with pytest.raises(error, match="`image_size`"):
        CorLocEvaluator().step(_square(), [[4, 4, 12, 12]], image_size=image_size)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("gt_boxes", "error", "problem"),
    [
        ([[4, 4, 12, 12], [1, 1]], TypeError, "must be numbers"),
        ("abc", TypeError, "must be numbers"),
        ([[np.nan, 4, 12, 12]], ValueError, "finite"),  # was a silent miss
        ([[12, 12, 4, 4]], ValueError, "inverted"),  # was a silent miss
    ],
)
def test_corloc_step_gt_boxes(gt_boxes: object, error: type, problem: str) -> None:
    ev = CorLocEvaluator()
    with pytest.raises(error, match=f"`gt_boxes`.*{problem}"):
        ev.step(_square(), gt_boxes)  # type: ignore[arg-type]
    assert len(ev) == 0


def test_corloc_step_empty_mask_is_refused() -> None:
    with pytest.raises(ValueError, match="`mask` must not be empty"):
        CorLocEvaluator().step(np.zeros((0, 0), bool), [[0, 0, 1, 1]])


def test_corloc_dicts_and_sequences_do_not_mix() -> None:
    m = _square() > 0
    with pytest.raises(TypeError, match="`gt_boxes` must be a dict"):
        corloc({"a": m}, [np.array([[4, 4, 12, 12]])])
    with pytest.raises(TypeError, match="`gt_boxes` is a dict"):
        corloc([m], {"a": [[4, 4, 12, 12]]})


def test_corloc_seeds_are_checked() -> None:
    m = _square() > 0
    with pytest.raises(ValueError, match="`seeds` must have one seed per mask"):
        corloc([m, m], [[[4, 4, 12, 12]]] * 2, "seed_cc", seeds=[(8, 8)])
    with pytest.raises(ValueError, match="`seeds` has no entry for mask 'a'"):
        corloc({"a": m}, {"a": [[4, 4, 12, 12]]}, "seed_cc", seeds={})
    with pytest.raises(ValueError, match="`seeds` only apply to selector 'seed_cc'"):
        corloc([m], [[[4, 4, 12, 12]]], seeds=[(0, 0)])
    assert corloc({"a": m}, {"a": [[4, 4, 12, 12]]}, "seed_cc", seeds={"a": (8, 8)}) == 100.0


@pytest.mark.parametrize("masks", [None, "ab", _square()])
def test_corloc_masks_must_be_a_sequence_of_masks(masks: object) -> None:
    with pytest.raises((TypeError, ValueError), match="`masks`"):
        corloc(masks, [[[4, 4, 12, 12]]] * 16)  # type: ignore[arg-type]


def test_corloc_stack_of_masks_is_a_sequence() -> None:
    stack = np.stack([_square() > 0] * 2)
    assert corloc(stack, [[[4, 4, 12, 12]]] * 2) == 100.0


# ---------------------------------------------------------------- annotation / seed readers


@pytest.fixture
def cwd_with_annotations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "a.xml").write_text(
        "<annotation><object><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax>"
        "</bndbox></object></annotation>"
    )
    (tmp_path / "seeds.json").write_text('{"a": 3}')
    np.save(tmp_path / "a.npy", np.eye(3))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("reader", "argument"),
    [
        (read_voc_boxes, "path_or_dir"),
        (read_coco_boxes, "json_path"),
        (read_seeds, "path"),
        (read_seed_maps, "folder"),
    ],
)
def test_readers_refuse_an_empty_path(cwd_with_annotations: Path, reader: object, argument: str) -> None:
    # read_voc_boxes(""), read_seeds("") and read_seed_maps("") read the current folder
    with pytest.raises(ValueError, match=f"`{argument}` is empty"):
        reader("")  # type: ignore[operator]


@pytest.mark.parametrize("value", [None, 5, b"a.xml"])
def test_readers_refuse_non_paths(cwd_with_annotations: Path, value: object) -> None:
    with pytest.raises(TypeError, match="`path_or_dir` must be a str or Path"):
        read_voc_boxes(value)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`json_path` must be a str or Path"):
        read_coco_boxes(value)  # type: ignore[arg-type]


def test_read_voc_boxes_no_hard_must_be_a_bool(cwd_with_annotations: Path) -> None:
    with pytest.raises(TypeError, match="`no_hard` must be True or False"):
        read_voc_boxes("a.xml", no_hard="no")  # type: ignore[arg-type]
    assert read_voc_boxes(".")["a"].tolist() == [[0, 0, 5, 5]]  # "." still means the current folder


# ---------------------------------------------------------------- score_folder


def _score(**kwargs: object) -> object:
    return score_folder(EXAMPLES / "masks", EXAMPLES / "gt", jobs=1, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("preset", [["tokencut"], {"tokencut": 1}])
def test_score_folder_unhashable_preset(preset: object) -> None:
    with pytest.raises(ConfigError, match="preset must be one of"):
        _score(preset=preset)


def test_score_folder_progress_must_be_callable(tmp_path: Path) -> None:
    # was a TypeError after the first pair was scored
    with pytest.raises(ConfigError, match="progress must be a callable"):
        _score(progress=5, json_path=tmp_path / "s.json")
    assert not (tmp_path / "s.json").exists()


def test_score_folder_overwrite_must_be_a_bool() -> None:
    with pytest.raises(ConfigError, match="`overwrite` must be True or False"):
        _score(overwrite="no")


def test_score_folder_numpy_integers(tmp_path: Path) -> None:
    report = _score(
        boxes="masks",
        corloc_selector="largest_cc",
        patch_size=np.int64(16),
        montage_count=np.int64(0),
        json_path=tmp_path / "s.json",
    )
    assert report.config["patch_size"] == 16 and type(report.config["patch_size"]) is int  # type: ignore[attr-defined]
    assert (tmp_path / "s.json").is_file()


# ---------------------------------------------------------------- register_refiner


def _run(image: np.ndarray, mask: np.ndarray, *, guide: str, **params: object) -> np.ndarray:
    return mask


@pytest.mark.parametrize(
    ("spec", "error", "problem"),
    [
        ({"name": "x"}, TypeError, "`spec` must be a RefinerSpec"),
        (RefinerSpec(name=5, summary="s", defaults={}, run=_run), TypeError, "`spec.name`"),  # type: ignore[arg-type]
        (RefinerSpec(name="", summary="s", defaults={}, run=_run), ValueError, "`spec.name`"),
        (RefinerSpec(name="a b", summary="s", defaults={}, run=_run), ValueError, "`spec.name`"),
        (RefinerSpec(name="hostile_run", summary="s", defaults={}, run=None), TypeError, "`spec.run`"),  # type: ignore[arg-type]
        (RefinerSpec(name="hostile_sum", summary=None, defaults={}, run=_run), TypeError, "`spec.summary`"),  # type: ignore[arg-type]
        (
            RefinerSpec(name="hostile_dl", summary="s", defaults=[1, 2], run=_run),
            TypeError,
            "`spec.defaults`",
        ),  # type: ignore[arg-type]
        (
            RefinerSpec(name="hostile_ik", summary="s", defaults={1: 2}, run=_run),
            TypeError,
            "`spec.defaults`",
        ),  # type: ignore[dict-item]
        (
            RefinerSpec(
                name="hostile_ve", summary="s", defaults={}, run=_run, validators={"k": lambda v, n: v}
            ),
            ValueError,
            "not a parameter",
        ),
        (
            RefinerSpec(name="hostile_vn", summary="s", defaults={"k": 1}, run=_run, validators={"k": 5}),  # type: ignore[dict-item]
            TypeError,
            "must be callable",
        ),
        (
            RefinerSpec(name="hostile_nm", summary="s", defaults={}, run=_run, native_mask="no"),  # type: ignore[arg-type]
            TypeError,
            "`spec.native_mask`",
        ),
    ],
)
def test_register_refiner_refuses_bad_specs(spec: object, error: type, problem: str) -> None:
    before = dict(REFINERS)
    with pytest.raises(error, match=problem):
        register_refiner(spec)  # type: ignore[arg-type]
    assert REFINERS == before  # nothing half-registered


def test_register_refiner_refuses_a_default_its_validator_refuses() -> None:
    def non_negative(value: object, name: str) -> object:
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"`{name}` must be >= 0")
        return value

    spec = RefinerSpec(
        name="hostile_bd", summary="s", defaults={"k": -1}, run=_run, validators={"k": non_negative}
    )
    with pytest.raises(ValueError, match="`k` must be >= 0"):
        register_refiner(spec)
    assert "hostile_bd" not in REFINERS


@pytest.mark.parametrize("ending", ["/", "/.", "/.."])
def test_api_file_outputs_ending_like_a_folder_are_refused(tmp_path: Path, ending: str) -> None:
    # `Path("out/")` is `out`: the JSON would have been written as a file named like the folder asked for
    from maskrefine.pipeline.merge import check_merged_output

    target = f"{tmp_path / 'newdir'}{ending}"
    with pytest.raises(ConfigError, match="which names a folder; give a file name"):
        score_folder(EXAMPLES / "masks", EXAMPLES / "gt", jobs=1, json_path=target)
    with pytest.raises(ConfigError, match="which names a folder"):
        check_merged_output(target)
    assert not (tmp_path / "newdir").exists()


def test_a_one_pixel_image_is_refused_not_scored_4_5e15() -> None:
    # PySODMetrics' E-measure divides by (pixels - 1 + eps): 4503599627370496 for one pixel, which
    # also made the dataset summary ~2e15
    from maskrefine.metrics import e_measure, e_measure_from_counts

    for preset in ("tokencut", "pysod", "move", "selfmask"):
        with pytest.raises(ValueError, match="`gt` has 1 pixel; the E-measure"):
            score_image(np.array([[0.7]], np.float32), np.array([[255]], np.uint8), preset)
        with pytest.raises(ValueError, match="`gt` has 1 pixel"):
            Evaluator(preset).step(np.array([[0.7]], np.float32), np.array([[255]], np.uint8))
    with pytest.raises(ValueError, match="undefined for one pixel"):
        e_measure(np.array([[1.0]]), np.array([[True]]), 0.5)
    with pytest.raises(ValueError, match="`n` must be >= 2"):
        e_measure_from_counts(0, 0, 0, 1)
    two = score_image(np.array([[0.7, 0.0]], np.float32), np.array([[255, 0]], np.uint8))[0]
    assert 0.0 <= two["max_e_measure"] <= 2.0


@pytest.mark.parametrize("hidden", [np.nan, 7.0, -1.0])
def test_masked_arrays_are_checked_on_their_data(hidden: float) -> None:
    # min()/max() of a masked array skip the masked values, which the metrics then computed on: a NaN made
    # the dataset's MAE and S-measure NaN, a 7.0 counted as 7 in the MAE
    rng = np.random.default_rng(0)
    pred = rng.random((16, 16)).astype(np.float32)
    gt = np.zeros((16, 16), np.uint8)
    gt[4:12, 4:12] = 255
    pred[0, 0] = hidden
    masked = np.ma.masked_array(pred, mask=pred == pred[0, 0])
    with pytest.raises(ValueError, match="`pred` must have finite values in \\[0, 1\\]"):
        Evaluator().step(masked, gt)
    with pytest.raises(ValueError, match="must have finite values in \\[0, 1\\]"):
        boxes_from_mask(masked)
    gt_masked = np.ma.masked_array(np.where(gt > 0, 1.0, 0.0), mask=np.zeros(gt.shape, bool))
    gt_masked.data[0, 0] = hidden
    gt_masked.mask[0, 0] = True
    with pytest.raises(ValueError, match="`gt` must have finite values"):
        Evaluator().step(rng.random((16, 16)).astype(np.float32), gt_masked)


def test_an_array_given_for_a_choice_is_refused_naming_the_argument() -> None:
    # was numpy's "The truth value of an array with more than one element is ambiguous"
    from maskrefine.filters import guided_filter
    from maskrefine.guide import make_guide
    from maskrefine.refiners import refine

    g = np.random.default_rng(0).random((8, 8)).astype(np.float32)
    rgb = np.zeros((8, 8, 3), np.float32)
    choice = np.array(["reflect", "x"])
    cases = [
        (lambda: guided_filter(g, g, 2, border=choice), "`border` must be one of"),
        (lambda: refine(rgb, g, "guided", guide=choice), "`guide` must be one of"),
        (lambda: make_guide(rgb, choice), "`mode` must be one of"),
        (lambda: box_iou([0, 0, 1, 1], [[0, 0, 1, 1]], dtype=choice), "`dtype` must be 'float64' or"),
        (lambda: boxes_from_mask(g > 0.5, connectivity=np.array([4, 8])), "`connectivity` must be 4 or 8"),
        (lambda: CorLocEvaluator(selector=choice), "selector"),
        (lambda: CorLocEvaluator(iou_dtype=choice), "`iou_dtype` must be"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()


def test_box_iou_of_two_empty_boxes_without_eps_is_nan_without_a_warning() -> None:
    import warnings

    from maskrefine.guide import make_guide

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "invalid value encountered in divide" leaked before
        for dtype in ("float64", "float32"):
            assert np.isnan(box_iou([0, 0, 0, 0], [[0, 0, 0, 0]], eps=0, dtype=dtype)[0])
        # a float64 image beyond the float32 range: "overflow encountered in cast", then "NaN or infinite"
        with pytest.raises(ValueError, match=r"`image` values must lie in \[0, 1\]; found \[1e\+39"):
            make_guide(np.full((2, 2, 3), 1e39))


@pytest.mark.parametrize("scale", [np.float32(16), np.int64(16), 16, 16.0, np.float64(8.5)])
def test_corloc_summary_is_json_for_any_real_scale(scale) -> None:
    import json

    ev = CorLocEvaluator(scale=scale)
    m = np.zeros((4, 4), bool)
    m[1:3, 1:3] = True
    ev.step(m, [[16, 16, 48, 48]])
    summary = json.loads(json.dumps(ev.summary()))  # np.float32 was "not JSON serializable"
    assert summary["corloc_scale"] == float(scale)
    assert type(summary["corloc_scale"]) is (int if isinstance(scale, (int, np.integer)) else float)


def test_zero_d_inputs_are_named_as_such_and_the_crf_takes_rounding_noise() -> None:
    from maskrefine.filters import dense_crf, guided_filter

    with pytest.raises(ValueError, match=r"got shape \(\)"):  # said "got shape (1,)" for a 0-d array
        guided_filter(np.array(0.5), np.array(0.5), 0)
    image = np.random.default_rng(0).random((12, 12, 3)).astype(np.float32)
    prob = np.full((12, 12), 0.5, np.float32)
    prob[0, 0] = np.float32(1.0000001)  # within the tolerance the other refiners and the readers accept
    before = prob.copy()
    out = dense_crf(image, prob)
    assert out.shape == (12, 12) and np.isfinite(out).all()
    np.testing.assert_array_equal(prob, before)
