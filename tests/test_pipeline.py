"""Tests of maskrefine.pipeline at library level: apply_folder and score_folder (the CLI has its own)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from _processes import process_alive, survivors_after

from maskrefine.errors import ConfigError, InputError
from maskrefine.io import read_mask, read_mask_array
from maskrefine.pipeline import (
    RunReport,
    ScoreReport,
    apply_folder,
    parse_shard,
    score_folder,
    shard_index,
)

H, W = 64, 80


def _object(rng: np.random.Generator, h: int = H, w: int = W) -> tuple[np.ndarray, np.ndarray]:
    """An 8-bit BGR image with a bright rectangle and its 0/1 float mask."""
    y0, x0 = rng.integers(4, h // 3), rng.integers(4, w // 3)
    y1, x1 = y0 + rng.integers(h // 4, h // 2), x0 + rng.integers(w // 4, w // 2)
    full = np.zeros((h, w), np.float32)
    full[y0:y1, x0:x1] = 1.0
    image = (40 + 160 * full[:, :, None] + rng.normal(0, 6, (h, w, 3))).clip(0, 255).astype(np.uint8)
    return image, full


def _coarse(full: np.ndarray, factor: int) -> np.ndarray:
    h, w = full.shape
    return cv2.resize(full, (w // factor, h // factor), interpolation=cv2.INTER_AREA)


def _png8(path: Path, mask: np.ndarray) -> None:
    cv2.imwrite(str(path), np.rint(mask * 255).astype(np.uint8))


@pytest.fixture
def dataset(tmp_path: Path) -> dict[str, Path]:
    """images/ (jpg and png), masks/ at full, 1/8 and 1/16 size in png8, png16 and npy, gt/ (png8)."""
    rng = np.random.default_rng(7)
    images, masks, gt = tmp_path / "images", tmp_path / "masks", tmp_path / "gt"
    for folder in (images, masks, gt):
        folder.mkdir()
    kinds = ["full_png8", "eighth_png8", "sixteenth_png8", "eighth_png16", "eighth_npy", "full_npy"]
    for index, kind in enumerate(kinds):
        stem = f"{index:02d}_{kind}"
        image, full = _object(rng)
        cv2.imwrite(str(images / f"{stem}{'.jpg' if index % 2 else '.png'}"), image)
        _png8(gt / f"{stem}.png", full)
        factor = {"full": 1, "eighth": 8, "sixteenth": 16}[kind.split("_")[0]]
        soft = _coarse(full, factor)
        if kind.endswith("png8"):
            _png8(masks / f"{stem}.png", soft)
        elif kind.endswith("png16"):
            cv2.imwrite(str(masks / f"{stem}.png"), np.rint(soft * 65535).astype(np.uint16))
        else:
            np.save(masks / f"{stem}.npy", soft.astype(np.float32))
    return {"root": tmp_path, "images": images, "masks": masks, "gt": gt}


def _hashes(*folders: Path) -> dict[str, str]:
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for folder in folders
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def _add_bad_files(dataset: dict[str, Path]) -> dict[str, str]:
    """Bad masks next to good images; returns stem -> expected problem fragment."""
    images, masks = dataset["images"], dataset["masks"]
    rng = np.random.default_rng(3)
    problems = {
        "bad_empty": "file is empty (0 bytes)",
        "bad_truncated": "cannot decode as an image",
        "bad_text": "cannot decode as an image",
        "bad_nan": "mask array is all NaN/inf",
        "bad_aspect": "not a uniform downscale",
        "bad_larger": "larger than the image",
    }
    for stem in problems:
        image, _ = _object(rng)
        cv2.imwrite(str(images / f"{stem}.png"), image)
    (masks / "bad_empty.png").write_bytes(b"")
    ok, encoded = cv2.imencode(".png", np.full((H, W), 200, np.uint8))
    (masks / "bad_truncated.png").write_bytes(encoded.tobytes()[:40])
    (masks / "bad_text.png").write_text("not an image at all\n")
    np.save(masks / "bad_nan.npy", np.full((H // 8, W // 8), np.nan, np.float32))
    _png8(masks / "bad_aspect.png", np.zeros((W // 8, H // 8), np.float32))  # transposed
    _png8(masks / "bad_larger.png", np.zeros((2 * H, 2 * W), np.float32))
    # a bad image with a good mask
    (images / "bad_image.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    _png8(masks / "bad_image.png", np.zeros((H // 8, W // 8), np.float32))
    problems["bad_image"] = "cannot decode as an image"
    return problems


# ------------------------------------------------------------------------------------ apply_folder


@pytest.mark.parametrize("method", ["identity", "guided", "fast_guided"])
def test_apply_writes_every_mask_at_image_size(dataset: dict[str, Path], tmp_path: Path, method: str) -> None:
    out = tmp_path / "out" / "nested"  # created, parents included
    report = apply_folder(dataset["masks"], dataset["images"], out, method=method, jobs=1)
    assert isinstance(report, RunReport)
    assert report.ok and report.counts == {
        "written": 6,
        "skipped": 0,
        "failed": 0,
        "unmatched": 0,
        "duplicates": 0,
    }
    for outcome in report.outcomes:
        assert outcome.status == "written" and outcome.output == out / f"{outcome.stem}.png"
        written = read_mask_array(outcome.output)
        assert written.dtype == np.uint8 and written.shape == (H, W)
        # the refined mask still overlaps its object
        gt = read_mask(dataset["gt"] / f"{outcome.stem}.png") > 0.5
        assert written[gt].mean() > written[~gt].mean() + 60
    assert report.masks_per_s > 0 and report.elapsed > 0


def test_apply_matches_refine_on_arrays(dataset: dict[str, Path], tmp_path: Path) -> None:
    from maskrefine.io import read_image
    from maskrefine.refiners import refine

    report = apply_folder(
        dataset["masks"],
        dataset["images"],
        tmp_path / "o",
        fmt="npy",
        jobs=1,
        params={"radius": 4, "eps": 1e-2},
    )
    for outcome in report.outcomes:
        expected = refine(read_image(outcome.image), read_mask(outcome.mask), "guided", radius=4, eps=1e-2)
        np.testing.assert_array_equal(np.load(outcome.output), expected)


@pytest.mark.parametrize(
    ("fmt", "dtype", "suffix"),
    [("png8", np.uint8, ".png"), ("png16", np.uint16, ".png"), ("npy", np.float32, ".npy")],
)
def test_apply_output_formats(
    dataset: dict[str, Path], tmp_path: Path, fmt: str, dtype: type, suffix: str
) -> None:
    report = apply_folder(dataset["masks"], dataset["images"], tmp_path / fmt, fmt=fmt, jobs=1)
    assert report.ok
    reference = apply_folder(dataset["masks"], dataset["images"], tmp_path / "ref", fmt="npy", jobs=1)
    for outcome, ref in zip(report.outcomes, reference.outcomes, strict=True):
        assert outcome.output.suffix == suffix
        array = read_mask_array(outcome.output)
        assert array.dtype == dtype
        scale = {np.uint8: 1 / 255, np.uint16: 1 / 65535, np.float32: 0.0}[dtype]
        np.testing.assert_allclose(read_mask(outcome.output), np.load(ref.output), atol=scale / 2 + 1e-6)


def test_apply_binary_input_uses_nearest(dataset: dict[str, Path], tmp_path: Path) -> None:
    masks = tmp_path / "hard"
    masks.mkdir()
    hard = np.zeros((H // 8, W // 8), np.float32)
    hard[2:5, 3:7] = 1.0
    stem = sorted(p.stem for p in dataset["images"].iterdir())[0]
    _png8(masks / f"{stem}.png", hard)
    report = apply_folder(
        masks, dataset["images"], tmp_path / "o", method="identity", binary_input=True, jobs=1
    )
    assert report.ok and report.counts["written"] == 1 and report.counts["unmatched"] == 5
    out = read_mask_array(report.outcomes[0].output)
    np.testing.assert_array_equal(out, np.kron(hard, np.ones((8, 8))).astype(np.uint8) * 255)


def test_apply_bad_files_recorded_others_written(dataset: dict[str, Path], tmp_path: Path) -> None:
    problems = _add_bad_files(dataset)
    report = apply_folder(dataset["masks"], dataset["images"], tmp_path / "o", jobs=1)
    assert not report.ok
    assert report.counts["written"] == 6 and report.counts["failed"] == len(problems)
    failed = {o.stem: o for o in report.outcomes if o.status == "failed"}
    assert set(failed) == set(problems)
    for stem, fragment in problems.items():
        error = failed[stem].error
        assert error is not None and fragment in error, (stem, error)
        assert stem in error.split(":")[0]  # the message starts with the file it concerns
        assert not failed[stem].output.exists()
    assert "Traceback" not in json.dumps(report.to_dict())
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == sorted(
        f"{o.stem}.png" for o in report.outcomes if o.status == "written"
    )


def test_apply_unexpected_exception_recorded(dataset: dict[str, Path], tmp_path: Path, monkeypatch) -> None:
    import maskrefine.pipeline as pipeline

    real = pipeline.apply.refine_unchecked  # the per-file entry of apply_folder

    def flaky(image, mask, *args, **kwargs):
        if image.shape[1] == W and float(mask.mean()) == 0.0:
            raise RuntimeError("boom")
        return real(image, mask, *args, **kwargs)

    monkeypatch.setattr(pipeline.apply, "refine_unchecked", flaky)
    _png8(dataset["masks"] / "zero.png", np.zeros((H, W), np.float32))
    cv2.imwrite(str(dataset["images"] / "zero.png"), np.zeros((H, W, 3), np.uint8))
    report = apply_folder(dataset["masks"], dataset["images"], tmp_path / "o", jobs=1)
    assert report.counts["failed"] == 1 and report.counts["written"] == 6
    assert "unexpected RuntimeError: boom" in report.failures[0].error


def test_apply_image_smaller_than_window_is_a_failure(dataset: dict[str, Path], tmp_path: Path) -> None:
    cv2.imwrite(str(dataset["images"] / "tiny.png"), np.zeros((8, 8, 3), np.uint8))
    _png8(dataset["masks"] / "tiny.png", np.zeros((8, 8), np.float32))
    report = apply_folder(dataset["masks"], dataset["images"], tmp_path / "o", jobs=1)
    (failure,) = report.failures
    assert failure.stem == "tiny" and "cannot refine" in failure.error and "radius" in failure.error


def test_apply_reports_unmatched_and_duplicates(dataset: dict[str, Path], tmp_path: Path) -> None:
    _png8(dataset["masks"] / "no_image.png", np.zeros((8, 10), np.float32))
    cv2.imwrite(str(dataset["images"] / "no_mask.png"), np.zeros((H, W, 3), np.uint8))
    cv2.imwrite(str(dataset["images"] / "dup.png"), np.zeros((H, W, 3), np.uint8))
    cv2.imwrite(str(dataset["images"] / "dup.jpg"), np.zeros((H, W, 3), np.uint8))
    _png8(dataset["masks"] / "dup.png", np.zeros((8, 10), np.float32))
    report = apply_folder(dataset["masks"], dataset["images"], tmp_path / "o", jobs=1)
    assert report.ok  # unmatched / duplicated names are reported, not failures
    assert {(u.path.name, u.folder) for u in report.unmatched} == {
        ("no_image.png", "masks"),
        ("no_mask.png", "images"),
    }
    assert {p.name for p in report.duplicates["dup"]} == {"dup.png", "dup.jpg"}  # the images folder's
    assert report.counts["unmatched"] == 2 and report.counts["duplicates"] == 1
    assert not (tmp_path / "o" / "dup.png").exists()


@pytest.mark.parametrize("pool", ["auto", "threads"])
def test_apply_outputs_identical_for_any_jobs(
    dataset: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pool: str
) -> None:
    import maskrefine.pipeline as pipeline

    if pool == "threads":  # the fallback used when forking is unsafe
        monkeypatch.setattr(pipeline, "_FORK_SAFE", False)
    _add_bad_files(dataset)
    runs = {}
    for jobs in (1, 2, 3):
        out = tmp_path / f"jobs{jobs}"
        report = apply_folder(dataset["masks"], dataset["images"], out, jobs=jobs)
        runs[jobs] = (report, _hashes(out))
    for jobs in (2, 3):
        assert [(o.stem, o.status, o.error) for o in runs[jobs][0].outcomes] == [
            (o.stem, o.status, o.error) for o in runs[1][0].outcomes
        ]
        assert {Path(k).name: v for k, v in runs[jobs][1].items()} == {
            Path(k).name: v for k, v in runs[1][1].items()
        }
        assert runs[jobs][0].config["jobs"] == jobs


def test_apply_progress(dataset: dict[str, Path], tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    apply_folder(
        dataset["masks"],
        dataset["images"],
        tmp_path / "o",
        jobs=1,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(i, 6) for i in range(1, 7)]
    calls.clear()
    first = sorted(dataset["masks"].iterdir())[0].stem
    (tmp_path / "o" / f"{first}.png").unlink()
    apply_folder(
        dataset["masks"],
        dataset["images"],
        tmp_path / "o",
        jobs=2,
        skip_existing=True,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(5, 6), (6, 6)]


def test_apply_existing_outputs(dataset: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "o"
    first = apply_folder(dataset["masks"], dataset["images"], out, method="identity", jobs=1)
    assert first.counts["written"] == 6
    stems = [o.stem for o in first.outcomes]
    # mark one output so that we can tell whether it was replaced
    marked = out / f"{stems[0]}.png"
    _png8(marked, np.zeros((H, W), np.float32))
    before = _hashes(out)
    with pytest.raises(ConfigError, match=r"6 output\(s\) already exist.*--overwrite.*--skip-existing"):
        apply_folder(dataset["masks"], dataset["images"], out, method="identity", jobs=1)
    assert _hashes(out) == before

    (out / f"{stems[1]}.png").unlink()  # an interrupted run: resume
    resumed = apply_folder(
        dataset["masks"], dataset["images"], out, method="identity", skip_existing=True, jobs=1
    )
    assert resumed.counts == {"written": 1, "skipped": 5, "failed": 0, "unmatched": 0, "duplicates": 0}
    assert [o.stem for o in resumed.outcomes if o.status == "written"] == [stems[1]]
    assert _hashes(out)[str(marked)] == before[str(marked)]  # skipped outputs untouched

    replaced = apply_folder(
        dataset["masks"], dataset["images"], out, method="identity", overwrite=True, jobs=1
    )
    assert replaced.counts["written"] == 6
    assert _hashes(out)[str(marked)] != before[str(marked)]

    with pytest.raises(ConfigError, match="overwrite and skip_existing exclude each other"):
        apply_folder(dataset["masks"], dataset["images"], out, overwrite=True, skip_existing=True)


@pytest.mark.parametrize("where", ["masks", "images", "masks/sub", "root_contains_inputs", "symlink"])
def test_apply_refuses_output_in_input(dataset: dict[str, Path], where: str) -> None:
    root = dataset["root"]
    if where == "root_contains_inputs":
        out = root
    elif where == "symlink":
        out = root / "link"
        os.symlink(dataset["masks"], out)
    else:
        out = root / where
    before = _hashes(dataset["masks"], dataset["images"])
    with pytest.raises(ConfigError, match="output folder|inside the output folder"):
        apply_folder(dataset["masks"], dataset["images"], out, overwrite=True)
    assert _hashes(dataset["masks"], dataset["images"]) == before
    assert not (root / "masks" / "sub").exists()


def test_apply_never_modifies_inputs(dataset: dict[str, Path], tmp_path: Path) -> None:
    _add_bad_files(dataset)
    before = _hashes(dataset["masks"], dataset["images"])
    stat_before = {p: p.stat().st_mtime_ns for p in dataset["masks"].iterdir()}
    apply_folder(dataset["masks"], dataset["images"], tmp_path / "o", jobs=2)
    apply_folder(dataset["masks"], dataset["images"], tmp_path / "o", jobs=1, overwrite=True, fmt="png16")
    assert _hashes(dataset["masks"], dataset["images"]) == before
    assert {p: p.stat().st_mtime_ns for p in dataset["masks"].iterdir()} == stat_before
    assert not [p for p in (tmp_path / "o").iterdir() if p.name.startswith(".")]  # no temp files left


def test_apply_overwrite_refuses_an_input_that_is_a_symlink_to_an_output(
    dataset: dict[str, Path], tmp_path: Path
) -> None:
    # masks/<stem>.png -> out/<other>.png: publishing <other>.png would replace the input's content
    masks = tmp_path / "linked_masks"
    masks.mkdir()
    out = tmp_path / "linked_out"
    apply_folder(dataset["masks"], dataset["images"], out, jobs=1)
    outputs = sorted(out.iterdir())
    sources = sorted(dataset["masks"].iterdir())
    (masks / sources[0].name).symlink_to(outputs[1])
    for source in sources[1:]:
        (masks / source.name).write_bytes(source.read_bytes())
    before = {p.name: p.read_bytes() for p in outputs}
    with pytest.raises(ConfigError, match=r"is a symbolic link to the existing output .*refusing to modify"):
        apply_folder(masks, dataset["images"], out, jobs=1, overwrite=True)
    assert {p.name: p.read_bytes() for p in sorted(out.iterdir())} == before
    # without --overwrite nothing is replaced anyway: resuming is allowed
    report = apply_folder(masks, dataset["images"], out, jobs=1, skip_existing=True)
    assert report.counts["written"] == 0 and {p.name: p.read_bytes() for p in sorted(out.iterdir())} == before


def test_apply_never_publishes_a_non_finite_mask(
    dataset: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from maskrefine.pipeline import apply as apply_module

    def nan_refine(image, mask, *args, **kwargs):
        return np.full(image.shape[:2], np.nan, np.float32)

    monkeypatch.setattr(apply_module, "refine_unchecked", nan_refine)
    report = apply_folder(dataset["masks"], dataset["images"], tmp_path / "o", jobs=1, fmt="npy")
    assert report.counts["written"] == 0 and report.counts["failed"] == len(report.outcomes) > 0
    assert all("refined mask has NaN/inf values" in (o.error or "") for o in report.outcomes)
    assert not (tmp_path / "o").exists()  # nothing written: the folder the run made is removed again


def test_a_run_that_writes_nothing_leaves_no_folder_of_its_own(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    report = apply_folder(empty, empty, tmp_path / "new" / "out", jobs=1)
    assert report.outcomes == [] and not (tmp_path / "new" / "out").exists()
    # a folder that was there before the run stays, empty or not
    (tmp_path / "mine").mkdir()
    apply_folder(empty, empty, tmp_path / "mine", jobs=1)
    assert (tmp_path / "mine").is_dir()
    # a report inside the output folder is still written (its folder made for it)
    apply_folder(empty, empty, tmp_path / "o2", jobs=1, report_path=tmp_path / "o2" / "r.json")
    assert [p.name for p in (tmp_path / "o2").iterdir()] == ["r.json"]


def test_apply_config_errors(dataset: dict[str, Path], tmp_path: Path) -> None:
    args = (dataset["masks"], dataset["images"], tmp_path / "o")
    cases = [
        ({"method": "median"}, "method must be one of identity, guided, fast_guided"),
        ({"params": {"radius": 3, "sigma": 2}}, "does not accept parameter.*sigma"),
        ({"params": {"eps": -1.0}}, "`eps` must be a finite float > 0"),
        ({"params": {"eps": 1e-100}}, "`eps` must be >= 1e-12"),
        ({"fmt": "jpg"}, "fmt must be one of png8, png16, npy"),
        ({"guide": "gray"}, "guide must be one of mean, luma, color"),
        ({"jobs": 0}, "jobs must be an integer >= 1"),
        ({"shard": "0/2"}, "1 <= k <= n"),
        ({"shard": (3, 2)}, "1 <= k <= n"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ConfigError, match=message):
            apply_folder(*args, **kwargs)
    assert not (tmp_path / "o").exists()  # nothing written
    with pytest.raises(ConfigError, match="does not exist"):
        apply_folder(tmp_path / "missing", dataset["images"], tmp_path / "o")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a folder"):
        apply_folder(dataset["masks"], dataset["images"], tmp_path / "file")


def test_apply_params_none_means_default(dataset: dict[str, Path], tmp_path: Path) -> None:
    report = apply_folder(
        dataset["masks"],
        dataset["images"],
        tmp_path / "o",
        method="fast_guided",
        params={"radius": None, "eps": None, "subsample": 2},
        jobs=1,
    )
    assert report.config["params"] == {"radius": 9, "eps": 1e-3, "subsample": 2}


# ------------------------------------------------------------------------------------ shards


def test_parse_shard() -> None:
    assert parse_shard(None) is None
    assert parse_shard("2/4") == (2, 4)
    assert parse_shard((1, 1)) == (1, 1)
    for bad in ("0/4", "5/4", "a/b", "1/0", "1-4", (1, 2, 3), (True, 2), 3):
        with pytest.raises(ConfigError):
            parse_shard(bad)


def test_shard_index_is_stable() -> None:
    # sha1("a") = 86f7e437faa5a7fce15d1ddcb9eaeaea377667b8 -> first 8 bytes as a big-endian integer
    assert shard_index("a", 7) == int("86f7e437faa5a7fc", 16) % 7 + 1
    assert {shard_index(f"img{i}", 3) for i in range(100)} == {1, 2, 3}


@pytest.mark.parametrize(
    ("stem", "n", "error", "pattern"),
    [
        ("a", 0, ValueError, "`n` must be an integer in"),  # was ZeroDivisionError
        ("a", True, TypeError, "`n` must be an integer"),  # was accepted as 1
        ("a", 10**30, ValueError, "`n` must be an integer in"),
        ("a", "3", TypeError, "`n` must be an integer"),
        (5, 2, TypeError, "`stem` must be a str"),  # was AttributeError
        (b"a", 2, TypeError, "`stem` must be a str"),
    ],
)
def test_shard_index_checks_its_arguments(stem: object, n: object, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        shard_index(stem, n)  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [1, 2, 3])
def test_shards_partition_the_folder(dataset: dict[str, Path], tmp_path: Path, n: int) -> None:
    _png8(dataset["masks"] / "lonely.png", np.zeros((8, 10), np.float32))
    seen: list[str] = []
    unmatched: list[str] = []
    for k in range(1, n + 1):
        report = apply_folder(
            dataset["masks"],
            dataset["images"],
            tmp_path / f"o{n}",
            method="identity",
            shard=f"{k}/{n}",
            jobs=1,
        )
        seen += [o.stem for o in report.outcomes]
        unmatched += [u.path.stem for u in report.unmatched]
        assert report.config["shard"] == f"{k}/{n}"
    assert sorted(seen) == sorted(p.stem for p in dataset["masks"].iterdir() if p.stem != "lonely")
    assert len(seen) == len(set(seen)) and unmatched == ["lonely"]
    assert len(list((tmp_path / f"o{n}").iterdir())) == 6


# ------------------------------------------------------------------------------------ run report


def test_run_report_json(dataset: dict[str, Path], tmp_path: Path) -> None:
    problems = _add_bad_files(dataset)
    _png8(dataset["masks"] / "lonely.png", np.zeros((8, 10), np.float32))
    report = apply_folder(
        dataset["masks"],
        dataset["images"],
        tmp_path / "o",
        method="fast_guided",
        params={"subsample": 2},
        fmt="png16",
        jobs=1,
    )
    path = report.write_json(tmp_path / "run.json")
    data = json.loads(path.read_text())
    assert data["ok"] is False
    assert data["counts"] == {
        "written": 6,
        "skipped": 0,
        "failed": len(problems),
        "unmatched": 1,
        "duplicates": 0,
    }
    assert data["config"]["method"] == "fast_guided" and data["config"]["fmt"] == "png16"
    assert data["config"]["params"] == {"radius": 9, "eps": 1e-3, "subsample": 2}
    assert data["masks_per_s"] > 0 and data["elapsed_s"] > 0
    files = {f["stem"]: f for f in data["files"]}
    assert files["bad_empty"]["status"] == "failed" and "file is empty" in files["bad_empty"]["error"]
    assert files["00_full_png8"]["status"] == "written" and files["00_full_png8"]["error"] is None
    keys = {"stem", "status", "mask", "image", "output", "error", "seconds", "encoding", "image_encoding"}
    assert set(files["00_full_png8"]) == keys and files["00_full_png8"]["encoding"] == "plain"
    assert files["00_full_png8"]["image_encoding"] == "plain"
    assert data["unmatched"] == [{"path": str(dataset["masks"] / "lonely.png"), "folder": "masks"}]
    assert data["duplicates"] == {}


# ------------------------------------------------------------------------------------ real data


@pytest.mark.data
def test_real_data_smoke(sod_dir: Path, tmp_path: Path) -> None:
    stems = sorted(p.stem for p in (sod_dir / "images").iterdir())[:4]
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    method_dir = sorted(p for p in (sod_dir / "predictions").iterdir() if p.is_dir())[0]
    for stem in stems:
        (images / f"{stem}.jpg").symlink_to((sod_dir / "images" / f"{stem}.jpg").resolve())
        (masks / f"{stem}.png").symlink_to((method_dir / f"{stem}.png").resolve())
    report = apply_folder(masks, images, tmp_path / "refined", jobs=2)
    assert report.ok and report.counts["written"] == 4
    for outcome in report.outcomes:
        assert read_mask_array(outcome.output).shape == cv2.imread(str(outcome.image)).shape[:2]


# ------------------------------------------------------------------------------------ score_folder


def _predictions(dataset: dict[str, Path], tmp_path: Path) -> Path:
    """Refined predictions (png8) of the dataset, written by apply_folder."""
    out = tmp_path / "pred"
    assert apply_folder(dataset["masks"], dataset["images"], out, method="identity", jobs=1).ok
    return out


def test_score_summary_equals_evaluator(dataset: dict[str, Path], tmp_path: Path) -> None:
    from maskrefine.metrics import Evaluator

    pred = _predictions(dataset, tmp_path)
    np.save(pred / "extra_npy.npy", np.linspace(0, 1, H * W, dtype=np.float32).reshape(H, W))
    _png8(dataset["gt"] / "extra_npy.png", np.eye(H, W, dtype=np.float32))
    report = score_folder(pred, dataset["gt"], jobs=2)
    assert isinstance(report, ScoreReport) and report.ok
    evaluator = Evaluator(preset="tokencut")
    for path in sorted(pred.iterdir()):
        evaluator.step(
            read_mask_array(path), read_mask_array(dataset["gt"] / f"{path.stem}.png"), name=path.stem
        )
    expected = evaluator.summary()
    assert report.summary == expected
    assert report.rows == evaluator.per_image()
    assert report.summary["count"] == 7 and report.summary["preset"] == "tokencut"
    np.testing.assert_array_equal(report.curves["precision"], evaluator.curves()["precision"])
    # the same for another preset, and for any number of jobs
    again = score_folder(pred, dataset["gt"], preset="move", jobs=1)
    assert again.summary["preset"] == "move" and again.summary != report.summary
    assert score_folder(pred, dataset["gt"], preset="move", jobs=3).summary == again.summary


def test_score_bad_files_and_unmatched(dataset: dict[str, Path], tmp_path: Path) -> None:
    pred = _predictions(dataset, tmp_path)
    (pred / "bad_empty.png").write_bytes(b"")
    _png8(dataset["gt"] / "bad_empty.png", np.zeros((H, W), np.float32))
    np.save(pred / "bad_nan.npy", np.full((H, W), np.nan, np.float32))
    _png8(dataset["gt"] / "bad_nan.png", np.zeros((H, W), np.float32))
    _png8(pred / "bad_gt.png", np.zeros((H, W), np.float32))
    (dataset["gt"] / "bad_gt.png").write_text("not a png")
    _png8(pred / "no_gt.png", np.zeros((H, W), np.float32))
    report = score_folder(pred, dataset["gt"], jobs=2)
    assert not report.ok and report.summary["count"] == 6
    problems = {f.path.name: f.problem for f in report.failures}
    assert problems.keys() == {"bad_empty.png", "bad_nan.npy", "bad_gt.png"}
    assert "file is empty" in problems["bad_empty.png"]
    assert "all NaN" in problems["bad_nan.npy"]
    assert "cannot decode" in problems["bad_gt.png"]
    assert [(u.path.name, u.folder) for u in report.unmatched] == [("no_gt.png", "predictions")]
    data = report.to_dict()
    assert data["ok"] is False and len(data["failed"]) == 3
    assert data["unmatched"] == [{"path": str(pred / "no_gt.png"), "folder": "predictions"}]


def test_score_writes_csv_and_json(dataset: dict[str, Path], tmp_path: Path) -> None:
    import csv

    pred = _predictions(dataset, tmp_path)
    (tmp_path / "t").mkdir()
    report = score_folder(
        pred,
        dataset["gt"],
        csv_path=tmp_path / "t" / "per_image.csv",
        json_path=tmp_path / "summary.json",
        boxes="masks",
        corloc_selector="largest_box",
        jobs=1,
    )
    data = json.loads((tmp_path / "summary.json").read_text())
    for key in (
        "acc",
        "iou",
        "max_fbeta",
        "mean_fbeta",
        "adaptive_fbeta",
        "mae",
        "s_measure",
        "max_e_measure",
        "weighted_fbeta",
        "preset",
        "count",
        "empty_gt",
        "empty_pred",
        "corloc",
        "failed",
        "unmatched",
        "duplicates",
        "ok",
    ):
        assert key in data, key
    assert data["count"] == 6 and data["corloc_count"] == 6 and data["failed"] == []
    assert data["acc"] == pytest.approx(report.summary["acc"])
    rows = list(csv.DictReader((tmp_path / "t" / "per_image.csv").open()))
    assert [r["name"] for r in rows] == [r["name"] for r in report.rows]
    assert float(rows[0]["iou"]) == pytest.approx(report.rows[0]["iou"])
    assert rows[0]["corloc_correct"] in ("True", "False")


def test_score_corloc_from_masks(dataset: dict[str, Path], tmp_path: Path) -> None:
    from maskrefine.metrics import CorLocEvaluator, boxes_from_mask

    # the GT itself as prediction: every box is found
    pred = tmp_path / "pred"
    pred.mkdir()
    for path in dataset["gt"].iterdir():
        (pred / path.name).write_bytes(path.read_bytes())
    report = score_folder(pred, dataset["gt"], boxes="masks", preset="pysod", jobs=1)
    assert report.summary["corloc"] == 100.0 and report.summary["corloc_count"] == 6
    # a coarse prediction: same as CorLocEvaluator fed the prediction resized to the GT
    coarse = tmp_path / "coarse"
    coarse.mkdir()
    evaluator = CorLocEvaluator()
    for path in sorted(dataset["gt"].iterdir()):
        gt = read_mask_array(path)
        small = cv2.resize(gt, (W // 8, H // 8), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(coarse / path.name), small)
        up = cv2.resize(small.astype(np.float32) / 255, (W, H), interpolation=cv2.INTER_LINEAR)
        evaluator.step(up, boxes_from_mask(gt), name=path.stem, image_size=gt.shape)
    report = score_folder(coarse, dataset["gt"], boxes="masks", preset="pysod", jobs=1)
    assert report.summary["corloc"] == evaluator.summary()["corloc"]


def test_score_voc_boxes(dataset: dict[str, Path], tmp_path: Path) -> None:
    pred = _predictions(dataset, tmp_path)
    voc = tmp_path / "Annotations"
    voc.mkdir()
    stems = sorted(p.stem for p in pred.iterdir())
    for stem in stems[:-1]:  # the last stem has no annotation: a failure naming it
        gt = read_mask_array(dataset["gt"] / f"{stem}.png") > 127
        ys, xs = np.nonzero(gt)
        (voc / f"{stem}.xml").write_text(
            "<annotation><object><name>x</name><bndbox>"
            f"<xmin>{xs.min() + 1}</xmin><ymin>{ys.min() + 1}</ymin>"
            f"<xmax>{xs.max() + 1}</xmax><ymax>{ys.max() + 1}</ymax>"
            "</bndbox></object></annotation>"
        )
    report = score_folder(pred, dataset["gt"], boxes=f"voc:{voc}", corloc_selector="largest_box", jobs=1)
    assert report.summary["corloc_count"] == 5
    (failure,) = report.failures
    assert stems[-1] in failure.problem and "no ground-truth boxes" in failure.problem


def test_score_voc_one_bad_annotation_fails_its_image_only(dataset: dict[str, Path], tmp_path: Path) -> None:
    # one malformed XML (or a FIFO named *.xml) stopped the whole run, exit 2, nothing scored
    from maskrefine.metrics.corloc import voc_annotations

    pred = _predictions(dataset, tmp_path)
    voc = tmp_path / "Annotations"
    voc.mkdir()
    stems = sorted(p.stem for p in pred.iterdir())
    for stem in stems[2:]:
        (voc / f"{stem}.xml").write_text(
            "<annotation><object><name>x</name><bndbox><xmin>3</xmin><ymin>4</ymin><xmax>20</xmax>"
            "<ymax>30</ymax></bndbox></object></annotation>"
        )
    (voc / f"{stems[0]}.xml").write_text(
        "<annotation><object><bndbox><xmin>a</xmin></bndbox></object></annotation>"
    )
    os.mkfifo(voc / f"{stems[1]}.xml")
    report = score_folder(pred, dataset["gt"], boxes=f"voc:{voc}", corloc_selector="largest_box", jobs=1)
    assert report.summary["corloc_count"] == len(stems) - 2 and report.summary["count"] == len(stems) - 2
    problems = sorted((f.path.name, f.problem) for f in report.failures)
    assert [name for name, _ in problems] == [f"{stems[0]}.xml", f"{stems[1]}.xml"]
    assert "not a number" in problems[0][1] and "not a regular file" in problems[1][1]
    assert not report.ok
    with pytest.raises(InputError, match="not a number"):  # the one-call reader still stops at the first
        voc_annotations(voc)


@pytest.mark.parametrize("kind", ["voc", "coco"])
def test_score_refuses_a_gt_mask_of_another_size_than_its_annotation(
    dataset: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    """Boxes are in the annotated image's pixel frame: a GT mask of another size would misplace them."""
    pred = _predictions(dataset, tmp_path)
    stems = sorted(p.stem for p in pred.iterdir())
    wrong = stems[0]  # its annotation claims a twice-as-large image; the others declare the true size
    sizes = {stem: (2 * H, 2 * W) if stem == wrong else (H, W) for stem in stems}
    box = (3, 4, 20, 30)
    if kind == "voc":
        source = tmp_path / "Annotations"
        source.mkdir()
        for stem, (h, w) in sizes.items():
            (source / f"{stem}.xml").write_text(
                f"<annotation><size><width>{w}</width><height>{h}</height></size><object><name>x</name>"
                f"<bndbox><xmin>{box[0] + 1}</xmin><ymin>{box[1] + 1}</ymin><xmax>{box[2]}</xmax>"
                f"<ymax>{box[3]}</ymax></bndbox></object></annotation>"
            )
    else:
        source = tmp_path / "instances.json"
        images = [
            {"id": i, "file_name": f"{stem}.jpg", "height": h, "width": w}
            for i, (stem, (h, w)) in enumerate(sizes.items())
        ]
        annotations = [
            {"image_id": i, "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]], "iscrowd": 0}
            for i in range(len(stems))
        ]
        source.write_text(json.dumps({"images": images, "annotations": annotations}))
    report = score_folder(
        pred, dataset["gt"], boxes=f"{kind}:{source}", corloc_selector="largest_box", jobs=1
    )
    (failure,) = report.failures
    assert failure.path == dataset["gt"] / f"{wrong}.png"
    assert f"is for a {2 * W}x{2 * H} image, but this GT mask is {W}x{H}" in failure.problem
    assert report.summary["count"] == report.summary["corloc_count"] == len(stems) - 1
    assert wrong not in [row["name"] for row in report.rows]


def test_score_config_errors(dataset: dict[str, Path], tmp_path: Path) -> None:
    pred = _predictions(dataset, tmp_path)
    with pytest.raises(ConfigError, match="preset must be one of"):
        score_folder(pred, dataset["gt"], preset="nope")
    with pytest.raises(ConfigError, match="boxes must be 'masks', 'voc:DIR' or 'coco:FILE'"):
        score_folder(pred, dataset["gt"], boxes="yolo:x")
    with pytest.raises(ConfigError, match=r"is not a COCO JSON file \(nothing is there\)"):
        score_folder(pred, dataset["gt"], boxes=f"coco:{tmp_path / 'missing.json'}")
    with pytest.raises(ConfigError, match="inside the ground-truth folder"):
        score_folder(pred, dataset["gt"], csv_path=dataset["gt"] / "scores.csv")
    with pytest.raises(ConfigError, match="does not exist"):
        score_folder(tmp_path / "missing", dataset["gt"])
    assert not (dataset["gt"] / "scores.csv").exists()


def test_score_shards_partition(dataset: dict[str, Path], tmp_path: Path) -> None:
    pred = _predictions(dataset, tmp_path)
    names: list[str] = []
    for k in (1, 2, 3):
        names += [row["name"] for row in score_folder(pred, dataset["gt"], shard=(k, 3), jobs=1).rows]
    assert sorted(names) == sorted(p.stem for p in pred.iterdir())


@pytest.mark.data
def test_real_data_score_smoke(sod_dir: Path, tmp_path: Path) -> None:
    from maskrefine.metrics import Evaluator

    stems = sorted(p.stem for p in (sod_dir / "images").iterdir())[:5]
    method_dir = sorted(p for p in (sod_dir / "predictions").iterdir() if p.is_dir())[0]
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    evaluator = Evaluator()
    for stem in stems:
        (pred / f"{stem}.png").symlink_to((method_dir / f"{stem}.png").resolve())
        (gt / f"{stem}.png").symlink_to((sod_dir / "masks" / f"{stem}.png").resolve())
        evaluator.step(read_mask_array(pred / f"{stem}.png"), read_mask_array(gt / f"{stem}.png"), name=stem)
    report = score_folder(pred, gt, boxes="masks", corloc_selector="largest_box", jobs=2)
    assert report.ok and report.summary["count"] == 5
    assert {k: v for k, v in report.summary.items() if not k.startswith("corloc")} == evaluator.summary()
    assert 0.0 <= report.summary["corloc"] <= 100.0


def test_score_empty_folder_json_has_nulls(dataset: dict[str, Path], tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    report = score_folder(empty, dataset["gt"], json_path=tmp_path / "out" / "s.json", jobs=1)
    data = json.loads((tmp_path / "out" / "s.json").read_text())
    # nothing scored is not a success (issue 9): ok is false and the JSON says why
    assert not report.ok and data["ok"] is False and "nothing was scored" in data["error"]
    assert data["count"] == 0 and data["iou"] is None and data["acc"] is None
    assert len(data["unmatched"]) == 6 and {u["folder"] for u in data["unmatched"]} == {"gt"}


# ------------------------------------------------------------------------------ report/CSV/JSON paths


def _files_and_dirs(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize(
    ("where", "match"),
    [
        ("masks/run.json", "inside the masks folder"),
        ("images/00_full_png8.png", "inside the images folder"),  # an existing input file
        ("link_to_input", "inside the masks folder"),  # a symlink to an input file
        ("out/01_eighth_png8.png", "also the output of '01_eighth_png8'"),
        ("out", "also the output folder"),
    ],
)
def test_apply_refuses_report_over_inputs_or_outputs(
    dataset: dict[str, Path], where: str, match: str
) -> None:
    root = dataset["root"]
    if where == "link_to_input":
        os.symlink(dataset["masks"] / "00_full_png8.png", root / where)
    before = _hashes(dataset["masks"], dataset["images"])
    listing = _files_and_dirs(root)
    with pytest.raises(ConfigError, match=match):
        apply_folder(
            dataset["masks"], dataset["images"], root / "out", method="identity", report_path=root / where
        )
    assert _hashes(dataset["masks"], dataset["images"]) == before
    assert _files_and_dirs(root) == listing  # nothing written, not even the output folder


def test_apply_writes_report(dataset: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = apply_folder(
        dataset["masks"], dataset["images"], out, method="identity", jobs=1, report_path=out / "run.json"
    )
    assert json.loads((out / "run.json").read_text()) == report.to_dict()


def test_score_refuses_outputs_over_inputs_or_each_other(dataset: dict[str, Path], tmp_path: Path) -> None:
    pred = _predictions(dataset, tmp_path)
    coco = tmp_path / "boxes.json"
    coco.write_text('{"images": [], "annotations": [], "categories": []}')
    voc = tmp_path / "Annotations"
    voc.mkdir()
    (tmp_path / "coco_link.json").symlink_to(coco)
    os.link(coco, tmp_path / "coco_hardlink.json")
    protected = _hashes(pred, dataset["gt"], voc, tmp_path)
    cases = [
        ({"csv_path": pred / "00_full_png8.png"}, "CSV file .* inside the predictions folder"),
        ({"json_path": dataset["gt"] / "sub" / "s.json"}, "JSON file .* inside the ground-truth folder"),
        ({"boxes": f"coco:{coco}", "csv_path": coco}, r"CSV file .* is the boxes \(coco\) file"),
        ({"boxes": f"coco:{coco}", "json_path": tmp_path / "coco_link.json"}, r"is the boxes \(coco\) file"),
        (
            {"boxes": f"coco:{coco}", "json_path": tmp_path / "coco_hardlink.json"},
            r"is the boxes \(coco\) file",
        ),
        ({"boxes": f"voc:{voc}", "json_path": voc / "s.json"}, r"inside the boxes \(voc\) folder"),
        ({"csv_path": tmp_path / "s.txt", "json_path": tmp_path / "s.txt"}, "JSON file .* also the CSV file"),
        ({"plot_dir": tmp_path / "plots", "csv_path": tmp_path / "plots" / "pr_curve.png"}, "also the plot"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ConfigError, match=match):
            score_folder(pred, dataset["gt"], jobs=1, **kwargs)
    assert _hashes(pred, dataset["gt"], voc, tmp_path) == protected
    assert not (tmp_path / "s.txt").exists() and not (tmp_path / "plots").exists()


# ------------------------------------------------------------------------ scoring is all or nothing


@pytest.mark.parametrize("failing", ["corloc", "saliency"])
def test_score_file_is_counted_by_both_evaluators_or_neither(
    dataset: dict[str, Path], tmp_path: Path, monkeypatch, failing: str
) -> None:
    from maskrefine import metrics

    pred = _predictions(dataset, tmp_path)
    victim = "02_sixteenth_png8"
    target = metrics.CorLocEvaluator if failing == "corloc" else metrics.Evaluator
    original = target.step

    def step(self, *args, name=None, **kwargs):
        if name == victim:
            raise RuntimeError("boom")
        return original(self, *args, name=name, **kwargs)

    monkeypatch.setattr(target, "step", step)
    report = score_folder(pred, dataset["gt"], boxes="masks", preset="pysod", jobs=1)
    (failure,) = report.failures
    assert failure.path.stem == victim and "boom" in failure.problem
    names = sorted(p.stem for p in pred.iterdir() if p.stem != victim)
    assert sorted(row["name"] for row in report.rows) == names  # the failed file is in no row
    assert report.summary["count"] == report.summary["corloc_count"] == len(names) == 5
    assert all("corloc_correct" in row for row in report.rows)


# ------------------------------------------------------------------------------- worker processes


def _run_in_child(body, timeout: float = 20.0) -> int:
    """Fork; run ``body()`` in the child (its return value is the exit code); return the child's status."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 70
        try:
            code = body()
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("child did not finish")


needs_fork = pytest.mark.skipif(
    not hasattr(os, "fork") or not sys.platform.startswith("linux"), reason="forks and reads /proc (Linux)"
)


@needs_fork
def test_worker_initializer_ignores_sigint() -> None:
    from maskrefine import pipeline

    def body() -> int:
        pipeline._init_worker(os.getppid())
        os.kill(os.getpid(), signal.SIGINT)  # would raise KeyboardInterrupt with Python's default handler
        time.sleep(0.05)
        return 0

    assert _run_in_child(body) == 0


_CTRL_C_AFTER_A_RECEIVE = """
import os, signal, sys, time
from maskrefine.pipeline import workers

class DeliversCtrlC:
    # the parent's end of a worker pipe; a Ctrl-C arrives right after the second result was read
    received = 0
    def __init__(self, conn):
        self._conn = conn
    def recv(self):
        value = self._conn.recv()
        DeliversCtrlC.received += 1
        if DeliversCtrlC.received == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return value
    def __getattr__(self, name):
        return getattr(self._conn, name)

start_worker = workers._start_worker
def start(*args):
    worker = start_worker(*args)
    worker.conn = DeliversCtrlC(worker.conn)
    return worker
workers._start_worker = start

def slow_double(task):
    time.sleep(0.05)
    return 2 * task

done = []
try:
    workers._run_in_processes(
        slow_double, list(range(40)), 2, lambda task, problem: None, lambda: done.append(1)
    )
except KeyboardInterrupt:
    restored = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    print("interrupted", len(done), restored)
    sys.exit(130)
print("finished", len(done))
"""


@needs_fork
def test_ctrl_c_right_after_a_result_is_read_does_not_hang() -> None:
    """A Ctrl-C between reading a worker's result and recording it used to lose that result: the parent
    then waited forever for it (seen once in CI as a run that did not stop after SIGINT)."""
    import subprocess

    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CTRL_C_AFTER_A_RECEIVE], capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the pool hung after Ctrl-C")
    assert proc.returncode == 130, proc.stdout + proc.stderr
    word, done, restored = proc.stdout.split()
    assert word == "interrupted"
    assert int(done) < 40  # the queued tasks were not started
    assert restored == "True"  # Python's own SIGINT handler is back after the run
    assert "Traceback" not in proc.stderr


@needs_fork
@pytest.mark.parametrize("use_prctl", [True, False], ids=["prctl", "polling-fallback"])
def test_worker_exits_when_its_parent_is_killed(monkeypatch, use_prctl: bool) -> None:
    from maskrefine import _parent_death, pipeline

    if not use_prctl:
        monkeypatch.setattr(_parent_death, "set_parent_death_signal", lambda sig: False)
        monkeypatch.setattr(_parent_death, "PARENT_POLL_S", 0.02)
    read_end, write_end = os.pipe()
    middle = os.fork()
    if middle == 0:  # pragma: no cover - child: a "parent" with one "worker", then idle until killed
        try:
            os.close(read_end)
            worker = os.fork()
            if worker == 0:
                pipeline._exit_with_parent(os.getppid())
                os.write(write_end, b"ready")
                time.sleep(30)  # an idle worker waiting for work
                os._exit(0)
            os.write(write_end, f"{worker:>10d}".encode())
            time.sleep(30)
        finally:
            os._exit(0)
    os.close(write_end)
    data = b""
    while len(data) < 15:
        chunk = os.read(read_end, 64)
        assert chunk, "the test processes did not start"
        data += chunk
    os.close(read_end)
    worker = int(data.replace(b"ready", b"").decode())
    assert process_alive(worker)
    os.kill(middle, signal.SIGKILL)  # kill -9 of the parent only
    os.waitpid(middle, 0)
    assert not survivors_after([worker], 5), "the worker outlived its parent"


@pytest.mark.parametrize(
    ("method", "params", "guide", "compiled", "not_compiled"),
    [
        # auto picks per file; on the synthetic full-size warm-up mask it would pick identity and compile
        # nothing, leaving every forked worker to compile the colour kernel on its own
        ("auto", {}, "mean", "color_rows", "gray_rows"),
        ("guided", {"radius": 9, "eps": 1e-3}, "mean", "gray_rows", "color_rows"),
    ],
)
def test_warm_up_compiles_the_kernels_the_files_will_use(
    method: str, params: dict[str, object], guide: str, compiled: str, not_compiled: str
) -> None:
    import subprocess

    code = (
        "from maskrefine.pipeline.apply import _warm_up\n"
        "from maskrefine.filters import _numba_kernels as k\n"
        f"_warm_up({method!r}, {params!r}, {guide!r})\n"
        f"print(len(k.{compiled}.signatures), len(k.{not_compiled}.signatures))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "0"]


def test_score_with_gt_in_another_format_says_which_files_are_read(
    dataset: dict[str, Path], tmp_path: Path
) -> None:
    # a GT folder of .bmp masks gave "no prediction has a ground-truth mask with the same stem" and no more
    import cv2

    gt = tmp_path / "gt_bmp"
    gt.mkdir()
    for path in sorted(dataset["gt"].glob("*.png")):
        assert cv2.imwrite(str(gt / f"{path.stem}.bmp"), cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
    report = score_folder(dataset["masks"], gt, jobs=1)
    assert not report.ok
    assert str(report.nothing_scored).startswith("no prediction has a ground-truth mask that is read; ")
    assert "files of the gt folder not read: files of this folder are read from .png, .npy only" in str(
        report.nothing_scored
    )
