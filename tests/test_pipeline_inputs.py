"""apply_folder / score_folder with the reading options: mask_scale, apply_exif, max_pixels, the per-file
encoding and its counts, and input entries that are not regular files (library level; the CLI cases are
in tests/hostile/test_inputs.py)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskrefine.errors import ConfigError
from maskrefine.pipeline import apply_folder, score_folder

H, W = 40, 48


@pytest.fixture
def folders(tmp_path: Path) -> dict[str, Path]:
    """images/ a, b, c; masks/ 1/4-size 0/1 masks (a, b) and a plain 8-bit one (c); gt/ 0/1; pred/ 0..255."""
    paths = {name: tmp_path / name for name in ("images", "masks", "gt", "pred")}
    for path in paths.values():
        path.mkdir()
    yy, xx = np.mgrid[0:H, 0:W]
    for index, stem in enumerate("abc"):
        disc = ((yy - H / 2) ** 2 + (xx - W / 2 - 3 * index) ** 2 < 150).astype(np.uint8)
        cv2.imwrite(str(paths["images"] / f"{stem}.png"), np.dstack([40 + 160 * disc] * 3).astype(np.uint8))
        small = cv2.resize(disc, (W // 4, H // 4), interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(str(paths["masks"] / f"{stem}.png"), small if stem != "c" else small * 255)
        cv2.imwrite(str(paths["gt"] / f"{stem}.png"), disc)
        cv2.imwrite(str(paths["pred"] / f"{stem}.png"), disc * 250)
    return paths


def test_apply_reports_each_encoding_and_counts_them(folders: dict[str, Path], tmp_path: Path) -> None:
    report = apply_folder(folders["masks"], folders["images"], tmp_path / "out", method="identity", jobs=1)
    assert report.ok
    assert {o.stem: o.encoding for o in report.outcomes} == {
        "a": "0/1 values",
        "b": "0/1 values",
        "c": "plain",
    }
    assert report.encodings == {"0/1 values": 2}
    data = report.to_dict()
    assert data["encodings"] == {"0/1 values": 2} and data["not_regular"] == []
    assert data["config"]["mask_scale"] == "auto" and data["config"]["max_pixels"] == 100_000_000
    refined = cv2.imread(str(tmp_path / "out" / "a.png"), cv2.IMREAD_UNCHANGED)
    assert refined.max() == 255  # the 0/1 mask was read as a full-strength mask


def test_apply_mask_scale_255_keeps_0_1_values(folders: dict[str, Path], tmp_path: Path) -> None:
    report = apply_folder(
        folders["masks"], folders["images"], tmp_path / "out", method="identity", jobs=1, mask_scale=255
    )
    assert report.ok and report.encodings == {}
    assert cv2.imread(str(tmp_path / "out" / "a.png"), cv2.IMREAD_UNCHANGED).max() == 1


def test_apply_max_pixels_fails_each_file(folders: dict[str, Path], tmp_path: Path) -> None:
    report = apply_folder(
        folders["masks"], folders["images"], tmp_path / "out", method="identity", jobs=1, max_pixels=H * W - 1
    )
    assert not report.ok and report.counts["failed"] == 3
    assert all("more than the limit of 1919 pixels" in (o.error or "") for o in report.outcomes)


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"mask_scale": "0/1"}, "`mask_scale` must be one of"),
        ({"max_pixels": 0}, "`max_pixels` must be >= 1"),
        ({"max_pixels": "100"}, "`max_pixels` must be a positive integer or None"),
        ({"apply_exif": "no"}, r"`apply_exif` must be True or False; got 'no' \(str\)"),  # was True
    ],
)
def test_bad_reading_options_are_config_errors_before_any_work(
    folders: dict[str, Path], tmp_path: Path, kwargs: dict[str, object], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        apply_folder(folders["masks"], folders["images"], tmp_path / "out", jobs=1, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=problem):
        score_folder(folders["pred"], folders["gt"], jobs=1, **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


def test_score_reads_0_1_gt_and_counts_encodings(folders: dict[str, Path]) -> None:
    report = score_folder(folders["pred"], folders["gt"], preset="move", jobs=1)
    assert report.ok and report.summary["count"] == 3
    assert report.summary["iou"] == pytest.approx(1.0)
    assert report.encodings == {"gt: 0/1 values": 3}
    assert report.to_dict()["encodings"] == {"gt: 0/1 values": 3}


@pytest.fixture
def no_hang() -> Iterator[None]:
    """Fail instead of blocking forever if a FIFO gets opened."""

    def timeout(signum: int, frame: object) -> None:
        raise TimeoutError("blocked: a FIFO was opened")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(60)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_non_regular_entries_fail_the_run_and_are_never_opened(
    folders: dict[str, Path], tmp_path: Path, no_hang: None
) -> None:
    os.unlink(folders["gt"] / "b.png")
    os.mkfifo(folders["gt"] / "b.png")
    (folders["pred"] / "d.png").symlink_to(folders["pred"] / "missing.png")
    report = score_folder(folders["pred"], folders["gt"], jobs=1)  # would block forever on opening the FIFO
    assert not report.ok and report.failures == [] and report.summary["count"] == 2
    assert {(f.path.name, f.problem.split(",")[0]) for f in report.not_regular} == {
        ("b.png", "is a FIFO (named pipe)"),
        ("d.png", "is a dangling symlink"),
    }
    assert report.unmatched == []  # pred/b.png is not "only in predictions"
    assert [item["path"] for item in report.to_dict()["not_regular"]] == [
        str(folders["pred"] / "d.png"),
        str(folders["gt"] / "b.png"),
    ]


@pytest.mark.parametrize("name", ["overwrite", "skip_existing", "binary_input"])
@pytest.mark.parametrize("value", ["no", "false", 0, 1, None])
def test_apply_flags_must_be_bools(
    folders: dict[str, Path], tmp_path: Path, name: str, value: object
) -> None:
    # read by truthiness, overwrite="no" meant: replace every existing output
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"keep me")
    with pytest.raises(ConfigError, match=f"`{name}` must be True or False"):
        apply_folder(folders["masks"], folders["images"], out, jobs=1, **{name: value})  # type: ignore[arg-type]
    assert (out / "a.png").read_bytes() == b"keep me" and [p.name for p in out.iterdir()] == ["a.png"]
    report = apply_folder(folders["masks"], folders["images"], out, jobs=1, overwrite=np.bool_(True))
    assert report.ok  # a NumPy bool is a bool


@pytest.mark.parametrize("kind", ["dangling symlink", "fifo", "folder"])
def test_an_entry_that_is_not_a_file_still_makes_its_stem_a_duplicate(
    folders: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    # masks/a.png a broken link (or FIFO, folder) beside masks/a.npy: a.npy was refined and written as
    # out/a.png, where two regular files with one stem are a duplicate and neither is used
    np.save(folders["masks"] / "a.npy", np.ones((H // 4, W // 4), np.float32))
    (folders["masks"] / "a.png").unlink()
    entry = folders["masks"] / "a.png"
    if kind == "dangling symlink":
        entry.symlink_to(tmp_path / "nowhere.png")
    elif kind == "fifo":
        os.mkfifo(entry)
    else:
        entry.mkdir()
    out = tmp_path / "out"
    report = apply_folder(folders["masks"], folders["images"], out, method="identity", jobs=1)
    assert not report.ok
    assert sorted(report.duplicates) == ["a"]
    assert sorted(map(Path, report.duplicates["a"])) == [folders["masks"] / "a.npy", entry]
    assert [item.path for item in report.not_regular] == [entry]
    assert {o.stem for o in report.outcomes} == {"b", "c"}
    assert sorted(p.name for p in out.iterdir()) == ["b.png", "c.png"]
