"""predict's reading options: ``max_pixels`` / ``--max-pixels`` and ``apply_exif`` / ``--apply-exif``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")

from _train_helpers import copy_folder, png_claiming  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from maskrefine.cli import main  # noqa: E402
from maskrefine.errors import ConfigError  # noqa: E402
from maskrefine.io.imageio import read_mask  # noqa: E402
from maskrefine.train.predict import predict_folder  # noqa: E402

# disc_images' sizes: a 48x64 = 3072, b 70x50 = 3500, c 64x64 = 4096 pixels


def test_max_pixels_fails_each_larger_image_and_writes_the_rest(tmp_path, run):
    images, ckpt = run
    report = predict_folder(images, ckpt, tmp_path / "out", max_pixels=3500)
    assert not report.ok and report.counts["written"] == 2 and report.counts["failed"] == 1
    (failed,) = report.failures
    assert failed.stem == "c" and failed.error is not None
    assert "64x64 (HxW) = 4096 pixels, more than the limit of 3500 pixels" in failed.error
    assert "--max-pixels in apply, score and predict" in failed.error
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    assert report.config["max_pixels"] == 3500 and report.config["apply_exif"] is False
    # at the limit exactly: read
    assert predict_folder(images, ckpt, tmp_path / "at", max_pixels=4096).ok


def test_a_png_claiming_900_megapixels_is_refused_without_decoding(tmp_path, run):
    images, ckpt = run
    folder = copy_folder(images, tmp_path / "images")
    (folder / "bomb.png").write_bytes(png_claiming(30000, 30000))
    report = predict_folder(folder, ckpt, tmp_path / "out")  # the default limit, 100 MP
    assert report.counts["written"] == 3 and [o.stem for o in report.failures] == ["bomb"]
    assert "30000x30000 (HxW) = 900,000,000 pixels (900.0 MP), more than the limit of 100000000 pixels" in (
        report.failures[0].error
    )
    # no limit: the file is decoded, and its truncated data is what fails
    unlimited = predict_folder(folder, ckpt, tmp_path / "out2", max_pixels=None)
    assert [o.stem for o in unlimited.failures] == ["bomb"]
    assert "more than the limit" not in unlimited.failures[0].error


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"max_pixels": 0}, "`max_pixels` must be >= 1"),
        ({"max_pixels": -5}, "`max_pixels` must be >= 1"),
        ({"max_pixels": "100"}, "`max_pixels` must be a positive integer or None"),
        ({"max_pixels": 1.5}, "`max_pixels` must be a positive integer or None"),
        ({"max_pixels": True}, "`max_pixels` must be a positive integer or None"),
        ({"apply_exif": "no"}, r"`apply_exif` must be True or False; got 'no' \(str\)"),
        ({"apply_exif": None}, "`apply_exif` must be True or False"),
    ],
)
def test_bad_reading_options_are_refused_before_any_work(tmp_path, run, kwargs, problem):
    images, ckpt = run
    with pytest.raises(ConfigError, match=problem):
        predict_folder(images, ckpt, tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_huge_max_pixels_is_no_limit_in_effect(tmp_path, run):
    images, ckpt = run
    report = predict_folder(images, ckpt, tmp_path / "out", max_pixels=10**30)
    assert report.ok and report.counts["written"] == 3 and report.config["max_pixels"] == 10**30


def _exif_rotated_jpeg(source: Path, target: Path) -> None:
    """Write ``source`` (a PNG) as a JPEG whose pixels are rotated 90°, tagged to display upright."""
    from PIL import Image

    shown = np.asarray(Image.open(source).convert("RGB"))
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(shown)))
    exif = stored.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    stored.save(target, "JPEG", exif=exif.tobytes(), quality=95)


def test_apply_exif_predicts_on_the_upright_image(tmp_path, run):
    images, ckpt = run
    folder = tmp_path / "images"
    folder.mkdir()
    _exif_rotated_jpeg(images / "a.png", folder / "a.jpg")  # 48x64 shown, 64x48 stored
    as_stored = predict_folder(folder, ckpt, tmp_path / "stored")
    upright = predict_folder(folder, ckpt, tmp_path / "upright", apply_exif=True)
    assert as_stored.ok and upright.ok and upright.config["apply_exif"] is True
    assert read_mask(tmp_path / "stored" / "a.png").shape == (64, 48)
    assert read_mask(tmp_path / "upright" / "a.png").shape == (48, 64)


def test_resume_refuses_another_apply_exif_but_not_another_max_pixels(tmp_path, run):
    images, ckpt = run
    out, report_file = tmp_path / "out", tmp_path / "report.json"
    assert predict_folder(images, ckpt, out, report_path=report_file).ok
    (out / "c.png").unlink()  # stopped before its last image
    kept = {name: (out / name).read_bytes() for name in ("a.png", "b.png")}
    refused = r"\(apply_exif\) is --apply-exif, but the report records --ignore-exif"
    with pytest.raises(ConfigError, match=refused):
        predict_folder(images, ckpt, out, report_path=report_file, skip_existing=True, apply_exif=True)
    assert not (out / "c.png").exists() and {n: (out / n).read_bytes() for n in kept} == kept
    # a file refused for its size is resumed with a larger limit
    again = predict_folder(images, ckpt, out, report_path=report_file, skip_existing=True, max_pixels=10**9)
    assert again.ok and again.counts["written"] == 1 and again.counts["skipped"] == 2
    assert json.loads(report_file.read_text())["config"]["max_pixels"] == 10**9


def _predict_cli(images: Path, ckpt: Path, out: Path, *extra: str):
    args = ["predict", "--images", str(images), "--checkpoint", str(ckpt), "--out", str(out), "-q", *extra]
    return CliRunner().invoke(main, args)


# "\udcff5": the bytes b"\xff5" (not UTF-8) as Python passes them in argv; "١٢": 12 in Arabic-Indic digits
@pytest.mark.parametrize("value", ["0", "-5", "lots", "", "1e3", "3.5", "\udcff5", "\u0661\u0662", "1_000"])
def test_cli_bad_max_pixels_is_a_usage_error(tmp_path, run, value):
    images, ckpt = run
    result = _predict_cli(images, ckpt, tmp_path / "out", "--max-pixels", value)
    assert result.exit_code == 2, result.output
    assert "--max-pixels" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_cli_max_pixels_and_apply_exif(tmp_path, run):
    images, ckpt = run
    result = _predict_cli(images, ckpt, tmp_path / "out", "--max-pixels", "3500")
    assert result.exit_code == 1, result.output
    assert "c.png" in result.output and "more than the limit of 3500 pixels" in result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    huge = _predict_cli(images, ckpt, tmp_path / "all", "--max-pixels", str(10**30), "--apply-exif")
    assert huge.exit_code == 0, huge.output
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == ["a.png", "b.png", "c.png"]
    twice = _predict_cli(images, ckpt, tmp_path / "twice", "--max-pixels", "5", "--max-pixels", "10**9")
    assert twice.exit_code == 2 and "--max-pixels" in twice.output
