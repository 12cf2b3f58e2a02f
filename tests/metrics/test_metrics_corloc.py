"""CorLoc: selectors, connectivity, scale, box IoU (TokenCut's), VOC/COCO parsing built here, mask boxes."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from maskrefine.errors import InputError
from maskrefine.metrics import (
    CorLocEvaluator,
    box_iou,
    boxes_from_mask,
    corloc,
    mask_to_box,
    read_coco_boxes,
    read_voc_boxes,
)


def _two_components():
    # A: 3x3 block (9 px, box 3x3 = 9); B: diagonal line of 4 px (box 4x4 = 16), 8-connected only.
    m = np.zeros((10, 10), bool)
    m[0:3, 0:3] = True
    for i in range(4):
        m[5 + i, 5 + i] = True
    return m


def test_selectors_and_connectivity():
    m = _two_components()
    # largest_box (8-conn): the diagonal's box (16) beats the block's (9)
    assert mask_to_box(m, "largest_box", connectivity=8).tolist() == [5, 5, 9, 9]
    # largest_cc: the block has more pixels
    assert mask_to_box(m, "largest_cc", connectivity=8).tolist() == [0, 0, 3, 3]
    # 4-connectivity splits the diagonal into 4 single pixels: the block wins both ways
    assert mask_to_box(m, "largest_box", connectivity=4).tolist() == [0, 0, 3, 3]
    # seed_cc: the component containing the seed (row, col)
    assert mask_to_box(m, "seed_cc", seed=(6, 6)).tolist() == [5, 5, 9, 9]
    assert mask_to_box(m, "seed_cc", seed=(6, 6), connectivity=4).tolist() == [6, 6, 7, 7]
    # seed on background: TokenCut's detect_box boxes every background cell (here the whole grid)
    assert mask_to_box(m, "seed_cc", seed=(9, 0)).tolist() == [0, 0, 10, 10]
    assert mask_to_box(np.zeros((4, 4), bool)) is None
    with pytest.raises(ValueError, match="`seed`"):
        mask_to_box(m, "seed_cc")
    with pytest.raises(ValueError, match="`connectivity` must be 4 or 8; got 6"):
        mask_to_box(m, connectivity=6)
    with pytest.raises(ValueError, match="`selector` must be one of"):
        mask_to_box(m, "biggest")


def test_token_scale_and_clipping():
    tokens = np.zeros((4, 5), np.float32)
    tokens[1:3, 3:5] = 0.9  # soft mask binarised at 0.5
    tokens[0, 0] = 0.4
    box = mask_to_box(tokens, scale=16, image_size=(60, 75))
    # (xmin, ymin, xmax + 1, ymax + 1) = (3, 1, 5, 3) tokens → ×16 → x2 clipped to W = 75
    assert box.tolist() == [48, 16, 75, 48]


def test_box_iou_tokencut_formula():
    b1 = np.array([0, 0, 10, 10.0])
    b2 = np.array([[5, 0, 15, 10.0], [20, 20, 30, 30], [0, 0, 10, 10]])
    eps = 1e-7
    inter = 50.0
    union = 10 * (10 + eps) + 10 * (10 + eps) - inter + eps
    out = box_iou(b1, b2)
    assert out[0] == pytest.approx(inter / union, rel=1e-12)
    assert out[1] == 0.0
    assert out[2] == pytest.approx(100 / (10 * (10 + eps) * 2 - 100 + eps), rel=1e-12)


VOC = """<annotation><filename>{name}.jpg</filename><size><width>100</width><height>80</height></size>
{objects}</annotation>"""
OBJ = """<object><name>dog</name><truncated>{t}</truncated><difficult>{d}</difficult>
<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"""


def _write_voc(folder, name, objs):
    text = VOC.format(name=name, objects="".join(OBJ.format(**o) for o in objs))
    (folder / f"{name}.xml").write_text(text)


def test_read_voc_boxes(tmp_path):
    _write_voc(
        tmp_path, "a", [dict(t=0, d=0, x1=1, y1=1, x2=50, y2=40), dict(t=1, d=0, x1=10, y1=20, x2=30, y2=35)]
    )
    _write_voc(tmp_path, "b", [dict(t=0, d=1, x1=5, y1=6, x2=7, y2=8)])
    boxes = read_voc_boxes(tmp_path)
    assert sorted(boxes) == ["a", "b"]
    # 1-based inclusive → 0-based half-open: subtract 1 from xmin, ymin only
    assert boxes["a"].tolist() == [[0, 0, 50, 40], [9, 19, 30, 35]]
    assert boxes["b"].tolist() == [[4, 5, 7, 8]]
    hard = read_voc_boxes(tmp_path, no_hard=True)
    assert sorted(hard) == ["a"]  # b had only a difficult object: image skipped
    assert hard["a"].tolist() == [[0, 0, 50, 40]]  # truncated dropped
    assert read_voc_boxes(tmp_path / "a.xml")["a"].shape == (2, 4)


def test_read_voc_errors(tmp_path):
    (tmp_path / "bad.xml").write_text("<annotation><object>")
    with pytest.raises(InputError, match=r"bad.xml: cannot parse VOC XML"):
        read_voc_boxes(tmp_path)
    with pytest.raises(InputError, match="no such file or folder"):
        read_voc_boxes(tmp_path / "missing")
    (tmp_path / "bad.xml").write_text("<annotation><object><name>x</name></object></annotation>")
    with pytest.raises(InputError, match="object without <bndbox>"):
        read_voc_boxes(tmp_path)


def test_read_coco_boxes(tmp_path):
    data = {
        "images": [
            {"id": 1, "file_name": "COCO_train2014_000000000001.jpg"},
            {"id": 2, "file_name": "crowd.jpg"},
        ],
        "annotations": [
            {"image_id": 1, "bbox": [10.4, 20.6, 30.2, 40.5], "iscrowd": 0},
            {"image_id": 1, "bbox": [0, 0, 5, 5], "iscrowd": 1},
            {"image_id": 2, "bbox": [1, 1, 2, 2], "iscrowd": 1},
        ],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    boxes = read_coco_boxes(path)
    assert boxes["COCO_train2014_000000000001"].tolist() == [[10, 21, 41, 61]]  # (x, y, x+w, y+h) rounded
    assert boxes["crowd"].shape == (0, 4)  # only crowd boxes: empty, scored as a miss
    path.write_text(json.dumps({"images": []}))
    with pytest.raises(InputError, match="not a COCO instances file"):
        read_coco_boxes(path)
    path.write_text("{not json")
    with pytest.raises(InputError, match="cannot read COCO JSON"):
        read_coco_boxes(path)


def test_boxes_from_mask():
    g = np.zeros((6, 8), np.uint8)
    g[1:3, 1:4] = 255
    g[4, 6] = 255
    g[3, 4] = 255  # touches the first block diagonally
    assert boxes_from_mask(g).tolist() == [[1, 1, 5, 4], [6, 4, 7, 5]]
    assert boxes_from_mask(g, connectivity=4).tolist() == [[1, 1, 4, 3], [4, 3, 5, 4], [6, 4, 7, 5]]
    assert boxes_from_mask(np.zeros((3, 3), bool)).shape == (0, 4)


def test_corloc_evaluator_counts_misses_and_empty_gt():
    ev = CorLocEvaluator()
    m = np.zeros((10, 10), bool)
    m[2:6, 2:6] = True
    assert ev.step(m, np.array([[2, 2, 6, 6], [0, 0, 1, 1]]), name="hit")["correct"] is True
    r = ev.step(m, np.array([[2, 2, 9, 9]]), name="miss")  # IoU 16/49 < 0.5
    assert r["correct"] is False and r["iou"] == pytest.approx(16 / 49, rel=1e-6)
    r = ev.step(m, np.zeros((0, 4)), name="empty_gt")
    assert r["correct"] is False and r["empty_gt"] is True
    r = ev.step(np.zeros((10, 10), bool), np.array([[0, 0, 5, 5]]), name="empty_mask")
    assert r["correct"] is False and r["empty_mask"] is True
    s = ev.summary()
    assert s["corloc"] == 25.0 and s["corloc_count"] == 4 and s["corloc_correct"] == 1
    assert s["corloc_empty_gt"] == 1 and s["corloc_empty_mask"] == 1
    assert s["corloc_selector"] == "largest_box" and s["corloc_connectivity"] == 8
    assert all(key.startswith("corloc") for key in s)  # merges into a saliency summary without clashes
    assert [row["name"] for row in ev.per_image()] == ["hit", "miss", "empty_gt", "empty_mask"]
    with pytest.raises(ValueError, match=r"`gt_boxes` must have shape \(K, 4\)"):
        ev.step(m, np.zeros((2, 3)))


def test_iou_exactly_half_is_a_miss_because_of_tokencut_eps():
    m = np.zeros((4, 4), bool)
    m[0:2, 0:2] = True  # box (0, 0, 2, 2), area 4
    # GT (0, 0, 2, 4): inter 4, union 2(2 + eps) + 2(4 + eps) - 4 + eps = 8 + 5 eps → IoU just under 0.5
    row = CorLocEvaluator().step(m, [[0, 0, 2, 4]])
    assert row["iou"] == pytest.approx(0.5, abs=1e-7) and row["iou"] < 0.5 and row["correct"] is False
    assert CorLocEvaluator(iou_threshold=0.4999).step(m, [[0, 0, 2, 4]])["correct"] is True


def test_corloc_function_with_dict_and_seeds():
    m = _two_components()
    masks = {"a": m, "b": m}
    gts = {"a": np.array([[5, 5, 9, 9]]), "b": np.array([[0, 0, 3, 3]])}
    assert corloc(masks, gts) == 50.0  # largest box: the diagonal → a hit, b miss
    assert corloc(masks, gts, selector="largest_cc") == 50.0
    assert corloc(masks, gts, selector="seed_cc", seeds={"a": (5, 5), "b": (1, 1)}) == 100.0
    assert corloc([m], [gts["a"]]) == 100.0
    with pytest.raises(ValueError, match="same length"):
        corloc([m], [])


# ------------------------------------------------------------- issue 10: the references' CorLoc arithmetic


def test_iou_exactly_half_is_a_hit_in_tokencut_float32():
    # integer boxes (0, 0, 20, 10) and (0, 0, 10, 10): IoU 1/2; float64 with eps gives 0.49999999
    m = np.zeros((10, 20), bool)
    m[:, :] = True
    gt = [[0, 0, 10, 10]]
    assert CorLocEvaluator().step(m, gt)["correct"] is False
    row = CorLocEvaluator(iou_dtype="float32").step(m, gt)
    assert row["iou"] == 0.5 and row["correct"] is True
    assert CorLocEvaluator(iou_dtype="float32").summary()["corloc_iou_dtype"] == "float32"
    with pytest.raises(ValueError, match="`iou_dtype`"):
        CorLocEvaluator(iou_dtype="float16")


def test_box_iou_float32_equals_torch(rng):
    torch = pytest.importorskip("torch", reason="torch not installed: TokenCut's bbox_iou runs in torch")
    for _ in range(200):
        a = np.sort(rng.integers(0, 400, (2, 2)), axis=0).T.ravel()[[0, 2, 1, 3]]
        a[2:] += 1
        b = np.sort(rng.integers(0, 400, (5, 2, 2)), axis=1).transpose(0, 2, 1).reshape(5, 4)[:, [0, 2, 1, 3]]
        b[:, 2:] += 1
        t1, t2 = torch.from_numpy(a), torch.from_numpy(b)
        inter = (torch.min(t1[2], t2[:, 2]) - torch.max(t1[0], t2[:, 0])).clamp(0) * (
            torch.min(t1[3], t2[:, 3]) - torch.max(t1[1], t2[:, 1])
        ).clamp(0)
        w1, h1 = t1[2] - t1[0], t1[3] - t1[1] + 1e-7
        w2, h2 = t2[:, 2] - t2[:, 0], t2[:, 3] - t2[:, 1] + 1e-7
        ref = inter / (w1 * h1 + w2 * h2 - inter + 1e-7)
        np.testing.assert_array_equal(box_iou(a, b, dtype="float32"), ref.numpy().astype(np.float64))


def test_token_grid_is_placed_on_the_padded_image_then_clipped():
    # a 200x300 image with a 13x19 token mask (patch 16): padded grid 208x304
    m = np.zeros((13, 19), bool)
    m[10:13, 15:19] = True  # touches the last token row and column
    box = mask_to_box(m, "largest_cc", connectivity=4, scale=16, image_size=(200, 300))
    assert box.tolist() == [240.0, 160.0, 300.0, 200.0]
    # stretching the 13x19 grid onto 200x300 instead shifts the box (the bug this rule avoids)
    stretched = [15 * 300 / 19, 10 * 200 / 13]
    assert abs(stretched[0] - box[0]) > 3 and abs(stretched[1] - box[1]) > 3


# ------------------------------------------------------------- hostile annotation files (issue 9)


@pytest.mark.parametrize("value", ["1e999", "-1e999", "nan", "inf", "12x", "", "1e12"])
def test_voc_bad_coordinates_are_input_errors(tmp_path, value):
    (tmp_path / "a.xml").write_text(
        f"<annotation><object><bndbox><xmin>{value}</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax>"
        "</bndbox></object></annotation>"
    )
    with pytest.raises(InputError, match=r"a.xml: bad box coordinate <xmin>"):
        read_voc_boxes(tmp_path)


def test_voc_fifo_and_folder_named_xml_are_refused_without_reading(tmp_path):
    import os

    os.mkfifo(tmp_path / "f.xml")
    with pytest.raises(InputError, match=r"f.xml: cannot read VOC XML: is a FIFO \(named pipe\), not a"):
        read_voc_boxes(tmp_path)
    os.unlink(tmp_path / "f.xml")
    (tmp_path / "d.xml").mkdir()
    with pytest.raises(InputError, match=r"d.xml: cannot read VOC XML: is a folder, not a regular file$"):
        read_voc_boxes(tmp_path)


@pytest.mark.parametrize("encoding", ["foo-bar", "base64", "rot13"])
def test_voc_xml_with_an_unusable_encoding_is_an_input_error(tmp_path, encoding):
    # expat raised LookupError ("unknown encoding"), which escaped as a traceback
    (tmp_path / "odd.xml").write_text(f"<?xml version='1.0' encoding='{encoding}'?><annotation/>")
    with pytest.raises(InputError, match=r"odd\.xml: cannot parse VOC XML"):
        read_voc_boxes(tmp_path)


def test_voc_deeply_nested_xml_is_an_input_error(tmp_path):
    (tmp_path / "deep.xml").write_text("<a>" * 100000 + "</a>" * 100000)
    try:
        boxes = read_voc_boxes(tmp_path)
    except InputError as exc:
        assert "deep.xml" in str(exc)
    else:
        assert boxes["deep"].shape == (0, 4)


def _coco(tmp_path, data) -> object:
    path = tmp_path / "instances.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (
            '{"images": [{"id": 1, "file_name": "a.jpg"}], '
            '"annotations": [{"image_id": 1, "bbox": [1e999, 0, 1, 1]}]}',
            r"bad box coordinate annotations\[0\].bbox",
        ),
        (
            {
                "images": [{"id": 1, "file_name": "a.jpg"}, {"id": "1", "file_name": "b.jpg"}],
                "annotations": [],
            },
            r"images\[1\].id must be an integer",
        ),
        (
            {
                "images": [{"id": 1, "file_name": "a.jpg"}],
                "annotations": [{"image_id": "1", "bbox": [0, 0, 1, 1]}],
            },
            r"annotations\[0\].image_id must be an integer",
        ),
        (
            {
                "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
                "annotations": [
                    {"id": 7, "image_id": 1, "bbox": [0, 0, 1, 1]},
                    {"id": 7, "image_id": 2, "bbox": [5, 5, 1, 1]},
                ],
            },
            r"annotations\[0\] and \[1\] share the id 7; pycocotools",  # img a was scored on b's box
        ),
        (
            {
                "images": [{"id": 1, "file_name": "a.jpg"}],
                "annotations": [{"image_id": 1, "bbox": [0, 0, 1]}],
            },
            "must be a list of 4 numbers",
        ),
        (
            {
                "images": [{"id": 1, "file_name": "a.jpg"}],
                "annotations": [{"image_id": 1, "bbox": [True, 0, 1, 1]}],
            },
            "must hold numbers",
        ),
        (
            {
                "images": [{"id": 1, "file_name": "x/a.jpg"}, {"id": 2, "file_name": "a.png"}],
                "annotations": [],
            },
            "share the file stem 'a'",
        ),
        (
            {
                "images": [{"id": 1, "file_name": "a.jpg"}],
                "annotations": [{"image_id": 1, "bbox": ["0", "0", "16", "16"]}],
            },
            "must hold numbers",  # JSON strings were parsed with float() and scored
        ),
        (
            {
                "images": [{"id": 1, "file_name": "a.jpg"}],
                "annotations": [{"image_id": 1, "bbox": [0, 0, 1, 1], "iscrowd": "1"}],
            },
            r"annotations\[0\].iscrowd must be a number; got '1'",  # was silently not a crowd box
        ),
        (
            '{"images": [{"id": 1, "file_name": "a.jpg"}], '
            '"annotations": [{"image_id": 1, "bbox": [' + "9" * 5000 + ", 0, 1, 1]}]}",
            "cannot read COCO JSON .*digits",  # refused by the JSON reader, never echoed in full
        ),
        ([1, 2], "the top level is a list"),
        ("[" * 100000 + "]" * 100000, "nested too deeply"),
        (b"\xff\xfe\x00garbage".decode("latin-1"), "cannot read COCO JSON"),
    ],
)
def test_coco_hostile_files_are_input_errors(tmp_path, data, match):
    with pytest.raises(InputError, match=match) as info:
        read_coco_boxes(_coco(tmp_path, data))
    assert "instances.json" in str(info.value)


def test_coco_fifo_is_refused_without_reading(tmp_path):
    import os

    os.mkfifo(tmp_path / "c.json")
    with pytest.raises(InputError, match=r"c.json: cannot read COCO JSON: is a FIFO \(named"):
        read_coco_boxes(tmp_path / "c.json")


def test_read_seeds_json_and_maps(tmp_path):
    from maskrefine.metrics import read_seeds

    path = tmp_path / "seeds.json"
    path.write_text(json.dumps({"a": 5, "b": 0}))
    assert read_seeds(path) == {"a": 5, "b": 0}
    for bad in ({"a": -1}, {"a": 1.5}, {"a": True}, {"a": "3"}, [1]):
        path.write_text(json.dumps(bad))
        with pytest.raises(InputError, match="seeds.json"):
            read_seeds(path)
    path.write_text("[" * 100000)
    with pytest.raises(InputError, match="seeds.json"):
        read_seeds(path)
    folder = tmp_path / "maps"
    folder.mkdir()
    seed_map = np.zeros((4, 6), np.float32)
    seed_map[2, 3] = 1.0
    np.save(folder / "img.npy", seed_map)
    assert read_seeds(folder) == {"img": 2 * 6 + 3}


@pytest.mark.parametrize(("x1", "y1", "x2", "y2"), [(10, 5, 9, 8), (3, 9, 8, 8)])
def test_voc_inverted_box_is_an_input_error(tmp_path, x1, y1, x2, y2):
    # was accepted and scored as IoU 0 against every prediction
    _write_voc(tmp_path, "inv", [dict(t=0, d=0, x1=x1, y1=y1, x2=x2, y2=y2)])
    with pytest.raises(InputError, match=r"inv\.xml: inverted box"):
        read_voc_boxes(tmp_path)


def test_voc_one_pixel_box_is_kept(tmp_path):
    _write_voc(tmp_path, "dot", [dict(t=0, d=0, x1=7, y1=4, x2=7, y2=4)])
    assert read_voc_boxes(tmp_path)["dot"].tolist() == [[6, 3, 7, 4]]


def test_voc_namespaced_root_is_an_input_error(tmp_path):
    # iter("object") finds no "{ns}object", so every image had "no GT box" without a word
    (tmp_path / "ns.xml").write_text(
        '<annotation xmlns="http://example.org/voc"><object><bndbox><xmin>1</xmin><ymin>1</ymin>'
        "<xmax>5</xmax><ymax>5</ymax></bndbox></object></annotation>"
    )
    with pytest.raises(InputError, match=r"ns\.xml: the root element .* namespace"):
        read_voc_boxes(tmp_path)


@pytest.mark.parametrize("bbox", [[10, 10, -1, 5], [10, 10, 5, -0.5]])
def test_coco_negative_width_or_height_is_an_input_error(tmp_path, bbox):
    data = {"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 1, "bbox": bbox}]}
    with pytest.raises(InputError, match=r"annotations\[0\]\.bbox has a negative width or height"):
        read_coco_boxes(_coco(tmp_path, data))


def test_read_seed_maps_collects_bad_maps_when_asked(tmp_path):
    import os

    from maskrefine.metrics import read_seed_maps

    good = np.zeros((3, 4), np.float32)
    good[1, 2] = 1
    np.save(tmp_path / "ok.npy", good)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot a png")
    os.mkfifo(tmp_path / "pipe.png")
    np.save(tmp_path / "twice.npy", good)
    np.save(tmp_path / "empty.npy", np.zeros((0, 3), np.float32))
    import cv2

    assert cv2.imwrite(str(tmp_path / "twice.png"), np.zeros((3, 4), np.uint8))
    with pytest.raises(InputError):
        read_seed_maps(tmp_path)  # without `errors`: the first bad map raises
    errors: dict[str, InputError] = {}
    assert read_seed_maps(tmp_path, errors) == {"ok": (6, (3, 4))}
    assert sorted(errors) == ["broken", "empty", "pipe", "twice"]
    assert "not a regular file" in errors["pipe"].problem
    assert "two seed maps" in errors["twice"].problem
    assert errors["broken"].path.name == "broken.png"


def test_annotations_carry_the_declared_image_sizes(tmp_path):
    from maskrefine.metrics.corloc import coco_annotations, voc_annotations

    _write_voc(tmp_path, "a", [dict(t=0, d=0, x1=1, y1=1, x2=50, y2=40)])
    (tmp_path / "nosize.xml").write_text(
        "<annotation><object><name>x</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax>"
        "<ymax>2</ymax></bndbox></object></annotation>"
    )
    (tmp_path / "odd.xml").write_text(
        "<annotation><size><width>0</width><height>abc</height></size><object><name>x</name><bndbox>"
        "<xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object></annotation>"
    )
    voc = voc_annotations(tmp_path)
    assert voc.sizes == {"a": (80, 100)}  # (height, width); missing or unusable sizes are left out
    assert sorted(voc.boxes) == ["a", "nosize", "odd"]
    assert {k: v.tolist() for k, v in voc.boxes.items()} == {
        k: v.tolist() for k, v in read_voc_boxes(tmp_path).items()
    }
    images = [
        {"id": 1, "file_name": "x.jpg", "width": 640, "height": 480},
        {"id": 2, "file_name": "y.jpg"},
        {"id": 3, "file_name": "z.jpg", "width": 2.5, "height": True},
        {"id": 4, "file_name": "w.jpg", "width": 640.0, "height": "480"},
    ]
    path = tmp_path / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": []}))
    coco = coco_annotations(path)
    assert coco.sizes == {"x": (480, 640), "w": (480, 640)}
    assert sorted(coco.boxes) == ["w", "x", "y", "z"]


def test_complex_boxes_are_refused_not_truncated():
    # a complex array lost its imaginary part with only a ComplexWarning and scored a hit
    from maskrefine.metrics import CorLocEvaluator

    with pytest.raises(TypeError, match=r"`box` must be numbers .*complex128 is not real numbers"):
        box_iou(np.array([0, 0, 1 + 5j, 1]), [[0, 0, 1, 1]])
    mask = np.zeros((8, 8), np.uint8)
    mask[1:4, 2:6] = 255
    with pytest.raises(TypeError, match="complex128 is not real numbers"):
        CorLocEvaluator().step(mask, np.array([[2, 1, 5 + 9j, 3]]))
    assert box_iou(np.array([0, 0, 1, 1], object), [[0, 0, 1, 1]])[0] == pytest.approx(1.0, abs=1e-6)


def test_row_names_must_be_text():
    # a list was stored as the row name "[1]"
    from maskrefine.metrics import CorLocEvaluator, Evaluator

    mask = np.zeros((8, 8), np.uint8)
    mask[1:4, 2:6] = 255
    with pytest.raises(TypeError, match=r"`name` must be a str \(the row name\) or None; got \[1\]"):
        CorLocEvaluator().step(mask, [[2, 1, 5, 3]], name=[1])
    with pytest.raises(TypeError, match=r"`name` must be a str \(the row name\) or None; got 3"):
        Evaluator().step(mask, mask, name=3)
    evaluator = Evaluator()
    assert evaluator.step(mask, mask, name="a")["name"] == "a"
    assert evaluator.step(mask, mask)["name"] == "1"


def test_coco_and_voc_are_read_as_the_references_read_them(tmp_path):
    # found by an audit against pycocotools and torchvision's VOC parser
    coco = {
        "images": [{"id": 1, "file_name": "a.jpg"}],
        "annotations": [
            {"id": 1, "image_id": 1, "bbox": [0, 0, 4, 4], "iscrowd": True},  # crowd: skipped (== 1)
            {"id": 2, "image_id": 1, "bbox": [1, 1, 4, 4], "iscrowd": 1.0},  # crowd too
            {"id": 3, "image_id": 1, "bbox": [2, 2, 4, 4], "iscrowd": 2},  # not == 1: kept
            {"id": 4, "image_id": 9, "bbox": [3, 3, 4, 4]},  # image not listed (a split): ignored
        ],
    }
    boxes = read_coco_boxes(_coco(tmp_path, coco))
    assert boxes["a"].tolist() == [[2.0, 2.0, 6.0, 6.0]]
    xml = tmp_path / "voc"
    xml.mkdir()
    (xml / "a.xml").write_text(
        "<annotation><object><name>x</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax>"
        "</bndbox><truncated>2</truncated>"
        "<object><bndbox><xmin>9</xmin><ymin>9</ymin><xmax>20</xmax><ymax>20</ymax></bndbox></object>"
        "</object><object/>"
        "<group><object><bndbox><xmin>30</xmin><ymin>30</ymin><xmax>40</xmax><ymax>40</ymax></bndbox></object>"
        "</group></annotation>"
    )
    # nested and wrapped <object>s were counted (iter), an empty <object/> stopped the run, and
    # no_hard dropped a flag "2" that the references (== "1") keep
    assert read_voc_boxes(xml)["a"].tolist() == [[0.0, 0.0, 5.0, 5.0]]
    assert read_voc_boxes(xml, no_hard=True)["a"].tolist() == [[0.0, 0.0, 5.0, 5.0]]


def _tokencut_detect_box(bipartition, seed_flat, scales, image_size):
    """TokenCut's object_discovery.detect_box as written there (4-connected ndimage.label, the seed's
    label -- background 0 included -- boxed, +1 on the max, scaled, clipped to the image)."""
    from scipy import ndimage

    objects, _ = ndimage.label(bipartition)
    cc = objects[np.unravel_index(seed_flat, bipartition.shape)]
    rows, cols = np.where(objects == cc)
    pred = [
        scales[1] * cols.min(),
        scales[0] * rows.min(),
        scales[1] * (cols.max() + 1),
        scales[0] * (rows.max() + 1),
    ]
    pred[2] = min(pred[2], image_size[1])
    pred[3] = min(pred[3], image_size[0])
    return pred


def test_seed_cc_boxes_what_tokencut_boxes_for_any_seed():
    # a seed on background (a refined mask that lost it) or an empty mask was a miss with no box; TokenCut's
    # code boxes the seed's region whatever its label, so its CorLoc could count a hit there
    from maskrefine.metrics import CorLocEvaluator

    rng = np.random.default_rng(5)
    cases = [np.zeros((7, 9), bool), np.ones((7, 9), bool)]
    cases += [
        rng.random((rng.integers(1, 12), rng.integers(1, 12))) < rng.uniform(0.1, 0.9) for _ in range(60)
    ]
    on_background = 0
    for mask in cases:
        h, w = mask.shape
        image_size = (h * 16 - int(rng.integers(0, 16)), w * 16 - int(rng.integers(0, 16)))
        for seed_flat in range(h * w):
            seed = divmod(seed_flat, w)
            on_background += not mask[seed]
            got = mask_to_box(mask, "seed_cc", connectivity=4, seed=seed, scale=16, image_size=image_size)
            assert got.tolist() == _tokencut_detect_box(mask, seed_flat, (16, 16), image_size), (mask, seed)
    assert on_background > 500
    # the evaluator scores that box, and counts it as not a foreground component's
    ev = CorLocEvaluator("seed_cc", 4, scale=16)
    mask = np.zeros((4, 4), bool)
    mask[0, 0] = True
    row = ev.step(mask, [[0, 0, 64, 64]], seed=(3, 3), image_size=(64, 64))
    assert row["box"] == [0.0, 0.0, 64.0, 64.0] and row["correct"] and row["empty_mask"]
    row = ev.step(mask, [[0, 0, 16, 16]], seed=(0, 0), image_size=(64, 64))
    assert row["box"] == [0.0, 0.0, 16.0, 16.0] and row["correct"] and not row["empty_mask"]
    assert ev.summary()["corloc_empty_mask"] == 1 and ev.summary()["corloc"] == 100.0


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda p: p.symlink_to(p.parent / "nowhere.xml"), "cannot read VOC XML: is a dangling symlink"),
        (lambda p: os.mkfifo(p), "cannot read VOC XML: is a FIFO"),
        (lambda p: p.write_bytes(b""), "cannot read VOC XML: file is empty"),
    ],
    ids=["dangling", "fifo", "empty"],
)
def test_an_annotation_that_is_not_a_regular_file_is_named_as_what_it_is(tmp_path, make, problem):
    path = tmp_path / "a.xml"  # in a folder of annotations, as score --boxes voc:DIR reads them
    make(path)
    with pytest.raises(InputError, match=problem):
        read_voc_boxes(tmp_path)
