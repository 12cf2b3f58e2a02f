"""Training geometry checks, prediction without side effects, coarse-mask sizes, input cap, resume edges."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")

from _train_helpers import disc_images, tiny_vit  # noqa: E402

from maskrefine.errors import ConfigError  # noqa: E402
from maskrefine.refiners import check_mask_size  # noqa: E402
from maskrefine.train import preset, train  # noqa: E402
from maskrefine.train.crops import sample_crop_offsets  # noqa: E402
from maskrefine.train.model import build_model  # noqa: E402
from maskrefine.train.predict import Predictor, predict_folder  # noqa: E402
from maskrefine.train.trainer import epoch_batches  # noqa: E402

SMALL = {"head_hidden": 16, "head_dim_head": 16, "head_fine_channels": (8, 8)}


def pixels_cfg(**changes):
    return preset("tiny", backbone="pixels", **{**SMALL, **changes})


def state_of(model):
    return {k: v.clone() for k, v in model.state_dict().items()}, [m.training for m in model.modules()]


# ------------------------------------------------------------------------------ 1. no side effects


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("bn_mode", ["batch_stats", "eval"])
def test_prediction_leaves_the_model_state_unchanged(mode, bn_mode):
    cfg = pixels_cfg()
    torch.manual_seed(0)
    model, _ = build_model(cfg)
    model.train(mode == "train")
    weights, modes = state_of(model)
    rng = np.random.default_rng(0)
    images = [rng.random((45, 77, 3), dtype=np.float32) for _ in range(2)]
    Predictor(model, cfg, refine="none", bn_mode=bn_mode).predict(images[:1] if bn_mode == "eval" else images)
    after, after_modes = state_of(model)
    assert after_modes == modes
    assert weights.keys() == after.keys()
    for key, value in weights.items():
        assert torch.equal(value, after[key]), key


def test_validation_does_not_change_a_batch_stats_checkpoint(tmp_path):
    images, gt = disc_images(tmp_path)
    cfg = pixels_cfg(epochs=2, bn_mode="batch_stats")
    plain = train(cfg, images, tmp_path / "plain")
    validated = train(cfg, images, tmp_path / "validated", val_images=images, val_gt=gt)
    a = torch.load(plain.checkpoint, weights_only=True)["head"]
    b = torch.load(validated.checkpoint, weights_only=True)["head"]
    assert a.keys() == b.keys() and any("running_mean" in key for key in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key


# ------------------------------------------------------------------------------ 2-4. image sizes


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"patch_size": 16, "image_size": 16, "resize": 16, "crop_loss": False}, "at least 2x2 patches"),
        ({"image_size": 16, "resize": 16}, "guided filter's 19-px window"),
        (
            {"patch_size": 16, "image_size": 48, "resize": 48, "crop_sampler": "reference"},
            "reference crop sampler with patch size 16: .* at least 4x4 patches; use image_size >= 64",
        ),
        ({"patch_size": 16, "image_size": 48, "resize": 48}, "use a multiple of 32 .e.g. 32 or 64"),
        ({"patch_size": 16, "image_size": 336, "resize": 340}, "multiple of 32"),
        ({"image_size": 320, "resize": 1400}, r"resize \(1400\) must be at most 4 x image_size"),
        ({"image_size": 320, "resize": 300}, r"resize \(300\) must be >= image_size .*--resize"),
    ],
)
def test_image_sizes_that_cannot_train_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        pixels_cfg(**changes)


def test_a_vit_patch_size_read_from_its_checkpoint_is_checked_before_anything_is_written(tmp_path):
    images, _ = disc_images(tmp_path)
    vit = tmp_path / "vit16.pth"
    torch.save(tiny_vit(patch=16).state_dict(), vit)
    cfg = preset("tiny", backbone_checkpoint=str(vit), image_size=48, resize=56, **SMALL)
    with pytest.raises(ConfigError, match="image_size 48 .*patch size 16"):
        train(cfg, images, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "changes",
    [
        {"image_size": 16, "resize": 16, "crop_loss": False},
        {"image_size": 32, "resize": 32},
        {"patch_size": 16, "image_size": 32, "resize": 32},
        {"patch_size": 16, "image_size": 48, "resize": 48, "crop_loss": False},
        {"image_size": 32, "resize": 32, "crop_sampler": "reference"},
    ],
)
def test_the_smallest_accepted_image_sizes_train(tmp_path, changes):
    images, _ = disc_images(tmp_path)
    result = train(pixels_cfg(epochs=2, max_steps=2, **changes), images, tmp_path / "run")
    assert result.step == 2 and all(np.isfinite(result.losses))


def test_the_paper_sizes_stay_valid():
    for patch in (8, 16):
        assert preset("paper", backbone="pixels", patch_size=patch).image_size == 320


def test_reference_sampler_refuses_grids_below_4_patches_whatever_it_draws():
    gen = torch.Generator().manual_seed(0)
    for height, width in ((24, 64), (64, 24), (30, 200)):
        with pytest.raises(ValueError, match="patch grid of at least 4x4"):
            sample_crop_offsets(1, height, width, sampler="reference", generator=gen)
    offsets = sample_crop_offsets(4000, 64, 64, sampler="reference", generator=gen)
    assert set(offsets[:, 0].tolist()) == {16}  # tokens 2..5 clamped up to H/4, as in the repository
    assert set(offsets[:, 1].tolist()) == set(range(2, 6))


# ------------------------------------------------------------------------------ 5-6. predict sizes


@pytest.mark.parametrize(
    "bn_mode, size", [("batch_stats", (45, 77)), ("batch_stats", (300, 120)), ("eval", (4, 5))]
)
def test_coarse_masks_are_accepted_by_apply(bn_mode, size):
    cfg = pixels_cfg()
    torch.manual_seed(0)
    model, _ = build_model(cfg)
    image = np.random.default_rng(0).random((*size, 3), dtype=np.float32)
    (pred,) = Predictor(model, cfg, bn_mode=bn_mode).predict([image])
    assert check_mask_size(pred.coarse.shape, size) is None
    assert pred.coarse.dtype == np.float32 and 0 <= pred.coarse.min() <= pred.coarse.max() <= 1


def test_coarse_masks_keep_the_head_grid_when_apply_accepts_it():
    cfg = pixels_cfg()
    torch.manual_seed(0)
    model, _ = build_model(cfg)
    image = np.random.default_rng(0).random((64, 128, 3), dtype=np.float32)
    (pred,) = Predictor(model, cfg).predict([image])
    assert pred.coarse.shape == (8, 16)


def test_a_network_input_over_the_cap_is_refused(tmp_path):
    cfg = pixels_cfg()
    torch.manual_seed(0)
    model, _ = build_model(cfg)
    with pytest.raises(ValueError, match=r"1x1000 image \(HxW\) would need a 64x64000 network input"):
        Predictor(model, cfg).predict([np.zeros((1, 1000, 3), np.float32)])
    # the folder API reports that file and writes the others
    images, _ = disc_images(tmp_path)
    train(pixels_cfg(max_steps=1), images, tmp_path / "run")  # (train refuses a 50:1 image)
    cv2.imwrite(str(images / "wide.png"), np.full((2, 100, 3), 128, np.uint8))
    report = predict_folder(images, tmp_path / "run" / "last.pt", tmp_path / "out")
    failed = {o.stem: o.error for o in report.outcomes if o.status == "failed"}
    assert list(failed) == ["wide"]
    assert "wide.png" in failed["wide"] and "64x3200 network input" in failed["wide"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png", "c.png"]


# ------------------------------------------------------------------------------ 7-8. trainer edges


def test_resume_with_max_steps_reached_trains_no_further_step(tmp_path):
    images, _ = disc_images(tmp_path)
    cfg = pixels_cfg(epochs=3, max_steps=1)
    train(cfg, images, tmp_path / "run")
    before = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["head"]
    result = train(cfg, images, tmp_path / "run", resume=True)
    assert result.step == 1 and result.losses == []
    after = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["head"]
    assert all(torch.equal(before[key], after[key]) for key in before)


def test_batch_size_one_keeps_every_image():
    batches = epoch_batches(5, 1, 0, 0, "drop_single")
    assert sorted(sum(batches, [])) == list(range(5))
    assert [len(b) for b in epoch_batches(5, 2, 0, 0, "drop_single")] == [2, 2]
