"""train's size limit: the setting ``max_pixels`` / ``--max-pixels`` (training and validation images)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")

from _train_helpers import disc_images  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from maskrefine.cli import main  # noqa: E402
from maskrefine.errors import ConfigError  # noqa: E402
from maskrefine.train import train  # noqa: E402
from maskrefine.train.config import RESULT_FIELDS, RUN_FIELDS, TrainConfig, preset  # noqa: E402

# disc_images' sizes: a 48x64 = 3072, b 70x50 = 3500, c 64x64 = 4096 pixels


def tiny(**changes):
    return preset("tiny", **{"backbone": "pixels", "head_fine_channels": (8, 8), **changes})


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (0, r"max_pixels must be >= 1 \(or None for no limit\); got 0"),
        (-5, "max_pixels must be >= 1"),
        ("100", r"training setting max_pixels: expected .*; got '100'"),
        (1.5, "training setting max_pixels: expected"),
        (True, "training setting max_pixels: expected"),
    ],
)
def test_bad_max_pixels_is_a_config_error(value, problem):
    with pytest.raises(ConfigError, match=problem):
        TrainConfig(max_pixels=value)


def test_max_pixels_default_none_and_huge_values():
    assert TrainConfig().max_pixels == 100_000_000
    assert TrainConfig(max_pixels=None).max_pixels is None
    assert TrainConfig(max_pixels=10**30).max_pixels == 10**30
    # not a result setting: a resumed run may raise it to take a larger image
    assert "max_pixels" in RUN_FIELDS and "max_pixels" not in RESULT_FIELDS
    assert TrainConfig.from_dict({"max_pixels": 5000}).max_pixels == 5000


def test_a_training_image_over_the_limit_is_refused_before_anything_is_written(tmp_path):
    images, _ = disc_images(tmp_path)
    with pytest.raises(ConfigError) as caught:
        train(tiny(max_steps=1, max_pixels=3500), images, tmp_path / "run")
    message = str(caught.value)
    assert "c.png: image is 64x64 (HxW) = 4096 pixels, more than the limit of 3,500 pixels" in message
    assert "(max_pixels, --max-pixels)" in message and "a.png" not in message and "b.png" not in message
    assert not (tmp_path / "run").exists()
    # at the limit, and without one: trained
    assert train(tiny(max_steps=1, max_pixels=4096), images, tmp_path / "at").step == 1
    assert train(tiny(max_steps=1, max_pixels=None), images, tmp_path / "none").step == 1


def test_a_validation_image_over_the_limit_is_left_out_and_named(tmp_path):
    images, gt = disc_images(tmp_path)
    # the training images pass at 4096; validation reads c.png's 64x64 ground truth first
    cfg = tiny(max_steps=1, epochs=1, max_pixels=4095)
    small = tmp_path / "small"
    small.mkdir()
    for stem in ("a", "b"):
        (small / f"{stem}.png").write_bytes((images / f"{stem}.png").read_bytes())
    result = train(cfg, small, tmp_path / "run", val_images=images, val_gt=gt)
    assert len(result.val_failures) == 1
    assert "c.png: image is 64x64 (HxW) = 4096 pixels, more than the limit of 4095" in result.val_failures[0]
    epoch = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()][-1]
    assert epoch["event"] == "epoch" and len(epoch["val"]["failed"]) == 1


def test_resume_may_change_max_pixels(tmp_path):
    images, _ = disc_images(tmp_path)
    train(tiny(max_steps=1, epochs=3, batch_size=2, max_pixels=5000), images, tmp_path / "run")
    resumed = train(tiny(max_steps=2, epochs=3, batch_size=2), images, tmp_path / "run", resume=True)
    assert resumed.step == 2


def _train_cli(images, out, *extra, steps=1):
    args = ["train", "--images", str(images), "--preset", "tiny", "--backbone", "pixels", "--epochs", "3"]
    return CliRunner().invoke(main, [*args, "--max-steps", str(steps), "--out", str(out), "-q", *extra])


# "\udcff5": the bytes b"\xff5" (not UTF-8) as Python passes them in argv; "١٢": 12 in Arabic-Indic digits
@pytest.mark.parametrize("value", ["0", "-5", "lots", "", "1e3", "3.5", "\udcff5", "\u0661\u0662", "1_000"])
def test_cli_bad_max_pixels_is_a_usage_error(tmp_path, value):
    images, _ = disc_images(tmp_path)
    result = _train_cli(images, tmp_path / "run", "--max-pixels", value)
    assert result.exit_code == 2 and "--max-pixels" in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


def test_cli_max_pixels(tmp_path):
    images, _ = disc_images(tmp_path)
    refused = _train_cli(images, tmp_path / "run", "--max-pixels", "3500")
    assert refused.exit_code == 2 and "c.png: image is 64x64" in refused.output, refused.output
    assert not (tmp_path / "run").exists()
    huge = _train_cli(images, tmp_path / "run", "--max-pixels", str(10**30))
    assert huge.exit_code == 0, huge.output
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["config"]["max_pixels"]
    assert recorded == 10**30
    # and its last.pt (loaded with weights_only=True) resumes
    resumed = _train_cli(images, tmp_path / "run", "--max-pixels", str(10**30), "--resume", steps=2)
    assert resumed.exit_code == 0, resumed.output
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["step"] == 2
