"""predict: full-size masks in every format, coarse masks apply accepts, polarity, BN modes, refusals."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")

import cv2  # noqa: E402
from _train_helpers import SIZES, disc_images  # noqa: E402

from maskrefine.errors import ConfigError  # noqa: E402
from maskrefine.io import read_mask  # noqa: E402
from maskrefine.refiners import check_mask_size  # noqa: E402
from maskrefine.train import preset, train  # noqa: E402
from maskrefine.train.predict import apply_polarity, load_predictor, predict_folder  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Synthetic images of different sizes and a pixels-backbone checkpoint trained for 2 steps."""
    root = tmp_path_factory.mktemp("predict")
    images, _ = disc_images(root)
    cfg = preset("tiny", backbone="pixels", head_fine_channels=(8, 8), max_steps=2)
    train(cfg, images, root / "run")
    return images, root / "run" / "last.pt"


@pytest.mark.parametrize("fmt", ["png8", "png16", "npy"])
def test_masks_have_each_image_size(tmp_path, trained, fmt):
    images, ckpt = trained
    report = predict_folder(images, ckpt, tmp_path / "out", fmt=fmt, save_coarse=True)
    assert report.ok and report.counts["written"] == 3
    suffix = ".npy" if fmt == "npy" else ".png"
    for stem, (h, w) in SIZES.items():
        fine = read_mask(tmp_path / "out" / f"{stem}{suffix}")
        assert fine.shape == (h, w) and 0.0 <= fine.min() <= fine.max() <= 1.0
        coarse = read_mask(tmp_path / "out" / "coarse" / f"{stem}{suffix}")
        assert check_mask_size(coarse.shape, (h, w)) is None  # `apply` accepts it
        assert coarse.shape[0] < h
    if fmt == "png16":
        assert cv2.imread(str(tmp_path / "out" / "a.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16


def test_refine_and_bn_modes_change_the_output(trained):
    images, ckpt = trained
    image = np.random.default_rng(1).random((48, 64, 3), dtype=np.float32)
    plain = load_predictor(ckpt, refine="none").predict([image])[0].fine
    guided = load_predictor(ckpt, refine="guided").predict([image])[0].fine
    assert load_predictor(ckpt).refine == "guided"  # auto: the checkpoint was trained with the crop loss
    assert not np.allclose(plain, guided)
    batch = load_predictor(ckpt, refine="none", bn_mode="batch_stats")
    assert batch.batch_size == 2
    stats = batch.predict([image, image[::-1].copy()])[0].fine
    assert stats.shape == (48, 64) and not np.allclose(stats, plain)


def test_polarity_rules():
    fine = torch.zeros(2, 1, 8, 8)
    fine[0] = 1.0
    fine[0, 0, 2:6, 2:6] = 0.0  # inverted: background 1 on the border
    fine[1, 0, 2:6, 2:6] = 1.0  # right way round
    assert apply_polarity(fine, "border").tolist() == [True, False]
    assert apply_polarity(fine, "batch_mean").tolist() == [False, False]  # batch mean 0.5: nobody flips
    assert apply_polarity(fine + 0.3, "batch_mean").tolist() == [True, True]
    assert apply_polarity(fine, "none").tolist() == [False, False]
    with pytest.raises(ValueError, match="polarity"):
        apply_polarity(fine, "corners")


def test_refusals(tmp_path, trained):
    images, ckpt = trained
    with pytest.raises(ConfigError, match="empty path"):
        predict_folder(images, ckpt, "")
    with pytest.raises(ConfigError, match="inside"):
        predict_folder(images, ckpt, images / "out")
    with pytest.raises(ConfigError, match="not a maskrefine training checkpoint"):
        bogus = tmp_path / "state.pt"
        torch.save({"cls_token": torch.zeros(1)}, bogus)
        predict_folder(images, bogus, tmp_path / "o1")
    predict_folder(images, ckpt, tmp_path / "o2")
    with pytest.raises(ConfigError, match="3 output.*already exist"):
        predict_folder(images, ckpt, tmp_path / "o2")
    assert predict_folder(images, ckpt, tmp_path / "o2", skip_existing=True).counts["skipped"] == 3
    with pytest.raises(ConfigError, match="refine must be one of"):
        predict_folder(images, ckpt, tmp_path / "o3", refine="bilateral")
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o3").exists()


def test_an_empty_images_folder_is_not_a_success(tmp_path, trained):
    # `maskrefine predict` on an empty folder exited 0 ("written 0")
    from click.testing import CliRunner

    from maskrefine.cli import main

    _, ckpt = trained
    empty = tmp_path / "empty"
    empty.mkdir()
    report = predict_folder(empty, ckpt, tmp_path / "out")
    assert not report.ok and report.nothing_processed == "no input files found"
    assert report.to_dict()["error"] == "nothing was processed: no input files found"
    args = ["predict", "--images", str(empty), "--checkpoint", str(ckpt), "--out", str(tmp_path / "o2"), "-q"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "error: nothing was processed: no input files found" in result.stderr


def test_bad_image_is_reported_and_others_written(tmp_path, trained):
    images, ckpt = trained
    folder = tmp_path / "images"
    folder.mkdir()
    for stem in SIZES:
        (folder / f"{stem}.png").write_bytes((images / f"{stem}.png").read_bytes())
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    report = predict_folder(folder, ckpt, tmp_path / "out")
    assert not report.ok and report.counts == {**report.counts, "written": 3, "failed": 1}
    assert "broken.jpg" in report.failures[0].error


def test_validation_is_only_logged_unless_asked(tmp_path, trained):
    import json

    images, _ = trained
    gt = images.parent / "gt"
    cfg = preset("tiny", backbone="pixels", head_fine_channels=(8, 8), epochs=2)
    train(cfg, images, tmp_path / "run", val_images=images, val_gt=gt)
    epochs = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    epochs = [r for r in epochs if r["event"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert all(r["val"]["images"] == 3 and 0.0 <= r["val"]["iou"] <= 1.0 for r in epochs)
    assert not (tmp_path / "run" / "best_val.pt").exists()  # no model selection by default
    train(cfg.replace(keep_best_on_val=True), images, tmp_path / "best", val_images=images, val_gt=gt)
    assert (tmp_path / "best" / "best_val.pt").is_file() and (tmp_path / "best" / "last.pt").is_file()
    with pytest.raises(ConfigError, match="needs --val-images"):
        train(cfg.replace(keep_best_on_val=True), images, tmp_path / "nobest")


@pytest.mark.parametrize(
    ("value", "shown"), [(1, "must be a path"), (b"x.pth", "str or Path"), ("a\0b", "NUL")]
)
def test_backbone_checkpoint_of_the_wrong_kind_is_a_usage_error(trained, tmp_path, value, shown):
    # a bare Path(value) raised TypeError / ValueError("embedded null byte") from inside
    images, ckpt = trained
    with pytest.raises(ConfigError, match=shown):
        predict_folder(images, ckpt, tmp_path / "out", backbone_checkpoint=value)
    assert not (tmp_path / "out").exists()


def test_train_says_when_keep_best_on_val_has_no_best_checkpoint_yet(tmp_path):
    # --max-steps stopped before the first validated epoch: exit 0 with no best_val.pt and no word
    from click.testing import CliRunner

    from maskrefine.cli import main

    sizes = {f"s{i}": (48, 64) for i in range(5)}
    images, gt = disc_images(tmp_path, sizes)  # 5 images, batch 2: 2 steps per epoch (the last dropped)
    base = ["train", "--images", str(images), "--preset", "tiny", "--backbone", "pixels"]
    base += ["--keep-best-on-val", "--val-images", str(images), "--val-gt", str(gt)]
    result = CliRunner().invoke(main, [*base, "--out", str(tmp_path / "r1"), "--max-steps", "1"])
    assert result.exit_code == 0, result.output
    assert "note: no best_val.pt yet: no epoch was completed and validated" in result.stderr
    assert not (tmp_path / "r1" / "best_val.pt").exists()
    result = CliRunner().invoke(main, [*base, "--out", str(tmp_path / "r2")])
    assert result.exit_code == 0, result.output
    assert "no best_val.pt" not in result.stderr and (tmp_path / "r2" / "best_val.pt").is_file()
