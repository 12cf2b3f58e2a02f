"""Findings of the trainer audit: large seeds, training folders with entries that cannot be read."""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")

from _train_helpers import disc_images  # noqa: E402

from maskrefine.errors import ConfigError  # noqa: E402
from maskrefine.train import preset, train  # noqa: E402
from maskrefine.train.data import item_generator  # noqa: E402
from maskrefine.train.trainer import epoch_batches  # noqa: E402


@pytest.mark.parametrize("seed", [123_456_789, 2**63 - 1])
def test_large_seeds_train(tmp_path, seed):
    # a seed above about 1.8e7 overflowed the 64-bit item seed: ValueError (a traceback) at the first batch
    images, _ = disc_images(tmp_path)
    cfg = preset("tiny", backbone="pixels", crop_loss=False, seed=seed, max_steps=1)
    result = train(cfg, images, tmp_path / "run")
    assert result.step == 1 and len(result.losses) == 1


def test_item_and_epoch_seeds_of_small_seeds_are_unchanged():
    # runs made before the fix (seeds whose item seed fits in 64 bits) draw the same numbers
    g = torch.Generator().manual_seed((7 * 1_000_003 + 2) * 1_000_003 + 5)
    assert torch.equal(torch.rand(4, generator=item_generator(7, 2, 5)), torch.rand(4, generator=g))
    order = torch.randperm(10, generator=torch.Generator().manual_seed(7 * 100_003 + 2)).tolist()
    assert sum(epoch_batches(10, 3, 7, 2, "keep"), []) == order


def _bad_training_folder(tmp_path):
    images, _ = disc_images(tmp_path)
    os.mkfifo(images / "fifo.png")
    (images / "folder.png").mkdir()
    (images / "empty.jpg").write_bytes(b"")
    return images


def test_unreadable_training_images_are_refused_before_anything_is_written(tmp_path):
    # before: the run started, wrote config.json and last.pt, and ended with InputError at the first
    # batch holding such a file (hours into a run, and --resume met the same file again)
    images = _bad_training_folder(tmp_path)
    cfg = preset("tiny", backbone="pixels", crop_loss=False)
    with pytest.raises(ConfigError) as info:
        train(cfg, images, tmp_path / "run")
    message = str(info.value)
    assert message.startswith(f"training images ({images}): 3 problem(s): ")
    for name in ("fifo.png", "folder.png", "empty.jpg"):
        assert name in message
    assert not (tmp_path / "run").exists()


def test_cli_names_unreadable_training_images_one_per_line(tmp_path):
    from click.testing import CliRunner

    from maskrefine.cli import main

    images = _bad_training_folder(tmp_path)
    args = ["train", "--images", str(images), "--out", str(tmp_path / "run"), "--preset", "tiny"]
    result = CliRunner().invoke(main, [*args, "--backbone", "pixels", "-q"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()  # was one line: "...; and N more" past the third (s15)
    assert lines[0] == f"Error: training images ({images}): 3 problem(s):" and len(lines) == 4
    for line, name in zip(lines[1:], ("empty.jpg", "fifo.png", "folder.png"), strict=True):
        assert line.startswith(f"  {images / name}: ")
    assert not (tmp_path / "run").exists()


# (--num-workers is tested on TrainConfig only: code without its cap would start 100000 processes here)
@pytest.mark.parametrize("option, value", [("--image-size", "1000000000000"), ("--batch-size", "99999")])
def test_cli_refuses_huge_sizes_before_anything_is_written(tmp_path, option, value):
    from click.testing import CliRunner

    from maskrefine.cli import main

    images, _ = disc_images(tmp_path)
    args = [
        "train",
        "--images",
        str(images),
        "--out",
        str(tmp_path / "run"),
        "--preset",
        "tiny",
        option,
        value,
    ]
    result = CliRunner().invoke(main, [*args, "--backbone", "pixels", "-q"])
    assert result.exit_code == 2, result.output
    assert "must be <=" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("kwargs", [{"bn_mode": ""}, {"bn_mode": 0}, {"polarity": ""}, {"polarity": False}])
def test_predictor_refuses_empty_or_false_modes(kwargs):
    # before: "" / 0 / False silently meant "the checkpoint's setting"
    from maskrefine.train.model import build_model
    from maskrefine.train.predict import Predictor

    cfg = preset("tiny", backbone="pixels")
    model, _ = build_model(cfg)
    name = next(iter(kwargs))
    with pytest.raises(ConfigError, match=rf"{name}.*; got {kwargs[name]!r}"):
        Predictor(model, cfg, **kwargs)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_checkpoint_with_non_finite_head_weights_is_refused(tmp_path, bad):
    # before: predict wrote a mask per image from NaN weights (NaN cast to 8 bits, a RuntimeWarning),
    # exit code of the other files' outcome
    from maskrefine.train.predict import load_predictor, predict_folder

    images, _ = disc_images(tmp_path)
    result = train(preset("tiny", backbone="pixels", max_steps=1), images, tmp_path / "run")
    state = torch.load(result.checkpoint, weights_only=True)
    key = next(k for k, v in state["head"].items() if v.is_floating_point())
    state["head"][key] = state["head"][key].clone()
    state["head"][key].view(-1)[0] = bad
    broken = tmp_path / "broken.pt"
    torch.save(state, broken)
    message = rf"checkpoint {broken}: entry 'head' holds NaN or infinite values \({key}\)"
    with pytest.raises(ConfigError, match=message):
        load_predictor(broken)
    with pytest.raises(ConfigError, match=message):
        predict_folder(images, broken, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_backbone_checkpoint_with_non_finite_weights_is_refused(tmp_path):
    # before: loaded; training stopped at step 1 with "loss is nan ...; lower --lr or check the data"
    # and predict wrote masks computed from NaN features
    from _train_helpers import tiny_vit

    from maskrefine.train.checkpoint import load_vit

    state = tiny_vit().state_dict()
    state["blocks.1.attn.qkv.weight"][0, 0] = float("nan")
    path = tmp_path / "nan_vit.pth"
    torch.save(state, path)
    with pytest.raises(ConfigError, match=rf"{path}: key 'blocks.1.attn.qkv.weight' holds NaN or infinite"):
        load_vit(path)


def test_predict_refuses_a_backbone_of_another_shape_than_the_runs(tmp_path):
    # before: a head trained on a DINO ViT/8 loaded on a DINOv2 ViT/14 of the same width (both give the
    # head a stride of 8) and predicted masks from features it never saw, silently
    from _train_helpers import tiny_vit

    from maskrefine.train.predict import load_predictor

    images, _ = disc_images(tmp_path)
    torch.save(tiny_vit().state_dict(), tmp_path / "dino8.pth")
    torch.save(tiny_vit(layout="dinov2", patch=14).state_dict(), tmp_path / "dinov2_14.pth")
    cfg = preset("tiny", backbone_checkpoint=str(tmp_path / "dino8.pth"), head_fine_channels=(16, 8))
    result = train(cfg.replace(max_steps=1), images, tmp_path / "run")
    load_predictor(result.checkpoint)  # the run's own backbone
    load_predictor(result.checkpoint, backbone_checkpoint=tmp_path / "dino8.pth")
    with pytest.raises(ConfigError, match=r"kind 'dino' -> 'dinov2', patch_size 8 -> 14") as info:
        load_predictor(result.checkpoint, backbone_checkpoint=tmp_path / "dinov2_14.pth")
    assert str(result.checkpoint) in str(info.value) and "dinov2_14.pth" in str(info.value)


def test_a_backbone_of_the_same_shape_with_other_weights_is_refused(tmp_path):
    # before: only the shape was compared, so a head trained on one ViT/8 predicted (and resumed training)
    # from the features of another ViT/8 of the same width and depth, silently
    from _train_helpers import tiny_vit

    from maskrefine.train.predict import load_predictor

    images, _ = disc_images(tmp_path)
    torch.save(tiny_vit(seed=0).state_dict(), tmp_path / "vit_a.pth")
    torch.save(tiny_vit(seed=1).state_dict(), tmp_path / "vit_b.pth")
    # the same weights under a DINO training wrapper and prefix: the same backbone
    wrapped = {"teacher": {f"module.backbone.{k}": v for k, v in tiny_vit(seed=0).state_dict().items()}}
    torch.save(wrapped, tmp_path / "vit_a_wrapped.pth")
    cfg = preset("tiny", backbone_checkpoint=str(tmp_path / "vit_a.pth"), head_fine_channels=(16, 8))
    result = train(cfg.replace(max_steps=1), images, tmp_path / "run")
    load_predictor(result.checkpoint, backbone_checkpoint=tmp_path / "vit_a_wrapped.pth")
    with pytest.raises(
        ConfigError, match=r"is not the backbone the head was trained on \(weights [0-9a-f]{12}… -> "
    ):
        load_predictor(result.checkpoint, backbone_checkpoint=tmp_path / "vit_b.pth")
    torch.save(tiny_vit(seed=1).state_dict(), tmp_path / "vit_a.pth")  # other weights at the run's path
    with pytest.raises(
        ConfigError, match=r"--resume: .*vit_a\.pth is not the backbone the run was trained on \(weights "
    ):
        train(cfg.replace(max_steps=2), images, tmp_path / "run", resume=True)


def _png_header(width, height):
    """A PNG whose header claims width x height (8-bit RGB); no pixel data."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def test_a_training_image_over_the_pixel_limit_is_refused_before_anything_is_written(tmp_path):
    # before: read_image refused it (100 MP limit) only when its batch came, mid-run
    images, _ = disc_images(tmp_path)
    (images / "huge.png").write_bytes(_png_header(20_000, 10_000))
    # the counts formatted as predict's (s15): "200,000,000 pixels (200.0 MP)", not "200000000 pixels"
    limit = r"huge\.png: .*200,000,000 pixels \(200\.0 MP\), more than the limit of 100,000,000 pixels \(max_"
    with pytest.raises(ConfigError, match=limit):
        train(preset("tiny", backbone="pixels"), images, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_training_image_of_an_extreme_aspect_ratio_is_refused_before_anything_is_written(tmp_path):
    # before: a 2x20000 strip (117 kB) was resized to 72x720000 under the tiny preset: 4 GB of memory
    images, _ = disc_images(tmp_path)
    (images / "strip.png").write_bytes(_png_header(20_000, 2))
    (images / "fine.png").write_bytes(_png_header(320, 10))  # 32:1 is still accepted
    with pytest.raises(
        ConfigError, match=r"strip\.png: image is 2x20000 \(HxW\), an aspect ratio above 32:1"
    ) as info:
        train(preset("tiny", backbone="pixels"), images, tmp_path / "run")
    assert "fine.png" not in str(info.value)
    assert not (tmp_path / "run").exists()


def test_numpy_scalars_in_the_config_give_a_loadable_checkpoint(tmp_path):
    # before: np.float64 (a float subclass) was accepted and pickled into last.pt, which then neither
    # predict nor --resume could load ("refused: it holds pickled Python objects"); np.int64 and
    # np.float32 were refused although the rest of the API takes numpy numbers
    import numpy as np

    from maskrefine.train import load_checkpoint

    images, _ = disc_images(tmp_path)
    cfg = preset(
        "tiny",
        backbone="pixels",
        lr=np.float64(1e-3),
        w_crop=np.float32(0.5),
        max_steps=np.int64(1),
        betas=(np.float32(0.5), np.float64(0.99)),
        crop_sampler=np.str_("reference"),
    )
    values = [cfg.lr, cfg.w_crop, cfg.max_steps, *cfg.betas, cfg.crop_sampler]
    assert [type(v) for v in values] == [float, float, int, float, float, str]
    assert (cfg.w_crop, cfg.max_steps, cfg.betas) == (0.5, 1, (0.5, 0.99))
    result = train(cfg, images, tmp_path / "run")
    assert load_checkpoint(result.checkpoint, resume=True)["config"]["lr"] == 1e-3


@pytest.mark.parametrize("change", ["add", "remove", "rename"])
def test_resume_refuses_a_changed_set_of_training_images(tmp_path, change):
    # before: the epoch's batches were drawn over the new file list and the run went on silently, no
    # longer the run it resumes (with fewer images, a saved batch index past the end skipped the epoch)
    import shutil

    images, _ = disc_images(tmp_path, {"a": (64, 64), "b": (64, 64), "c": (64, 64), "d": (64, 64)})
    cfg = preset("tiny", backbone="pixels", crop_loss=False, epochs=2)
    train(cfg.replace(max_steps=1), images, tmp_path / "run")
    if change == "add":
        shutil.copy(images / "a.png", images / "e.png")
    elif change == "remove":
        (images / "d.png").unlink()
    else:
        (images / "d.png").rename(images / "x.png")
    with pytest.raises(ConfigError, match=r"--resume: the training images differ from the run's"):
        train(cfg, images, tmp_path / "run", resume=True)


def test_a_missing_recorded_backbone_names_the_run_and_the_override(tmp_path):
    # before: only "backbone checkpoint <path>: file not found", a path the user never typed
    from _train_helpers import tiny_vit

    from maskrefine.train.predict import load_predictor

    images, _ = disc_images(tmp_path)
    torch.save(tiny_vit().state_dict(), tmp_path / "dino8.pth")
    cfg = preset("tiny", backbone_checkpoint=str(tmp_path / "dino8.pth"), head_fine_channels=(16, 8))
    result = train(cfg.replace(max_steps=1), images, tmp_path / "run")
    (tmp_path / "dino8.pth").rename(tmp_path / "moved.pth")
    with pytest.raises(ConfigError) as info:
        load_predictor(result.checkpoint)
    message = str(info.value)
    assert "dino8.pth: file not found" in message
    assert f"the backbone recorded in checkpoint {result.checkpoint}" in message
    assert "--backbone-checkpoint" in message
    load_predictor(result.checkpoint, backbone_checkpoint=tmp_path / "moved.pth")


def test_a_head_that_diverges_at_the_last_step_is_not_saved(tmp_path, monkeypatch):
    # the loss is checked at every step but computed before the update: an update that overflows the
    # weights at the last step was saved as last.pt with exit 0 (predict and --resume then refused it)
    from maskrefine.train.trainer import load_checkpoint

    images, _ = disc_images(tmp_path)
    original = torch.optim.AdamW.step
    calls = []

    def step(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 2:
            with torch.no_grad():
                self.param_groups[0]["params"][0].fill_(float("inf"))
        return out

    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    cfg = preset(
        "tiny", backbone="pixels", crop_loss=False, batch_size=1, epochs=5, max_steps=2, checkpoint_every=1
    )
    with pytest.raises(FloatingPointError, match="head weights became NaN or infinite at step 2"):
        train(cfg, images, tmp_path / "run")
    assert load_checkpoint(tmp_path / "run" / "last.pt", resume=True)["step"] == 1  # the last good one


def _malformed(state: dict, change: str) -> dict:
    if change == "fc1 0-d":
        state["blocks.0.mlp.fc1.weight"] = torch.tensor(1.0)
    elif change == "registers 1-d":
        state["register_tokens"] = torch.zeros(4)
    elif change == "patch 0":
        state["patch_embed.proj.weight"] = torch.zeros(64, 3, 0, 0)
    elif change == "width 129":
        from maskrefine.train.checkpoint import BackboneSpec

        spec = BackboneSpec(
            embed_dim=129, depth=1, num_heads=1, patch_size=8, pos_grid=4, mlp_ratio=4.0,
            layer_scale=False, num_register_tokens=0,
        )  # fmt: skip
        state = spec.build().state_dict()
    return state


@pytest.mark.parametrize(
    "change, problem",
    [
        ("fc1 0-d", r"key 'blocks.0.mlp.fc1.weight' has shape \(\); expected \(hidden, 64\)"),
        ("registers 1-d", r"key 'register_tokens' has shape \(4,\); expected \(1, R, 64\)"),
        ("patch 0", r"key 'patch_embed.proj.weight' has shape \(64, 3, 0, 0\); expected \(D, 3, p, p\)"),
        (
            "width 129",
            "key .patch_embed.proj.weight. gives a width of 129, not a multiple of its 2 attention heads",
        ),
    ],
)
def test_a_malformed_backbone_checkpoint_is_named_not_a_traceback(tmp_path, change, problem):
    # IndexError (0-d fc1, 1-D register tokens), ZeroDivisionError (patch 0) or ValueError (width 129)
    # came out of the shape inference as a traceback with exit 1
    from _train_helpers import tiny_vit

    from maskrefine.train.checkpoint import load_vit

    path = tmp_path / "vit.pth"
    torch.save(_malformed(tiny_vit().state_dict(), change), path)
    with pytest.raises(ConfigError, match=rf"{path}: {problem}"):
        load_vit(path)


@pytest.mark.parametrize("written", ["nothing", "folder", "checkpoint"])
def test_a_stopped_run_says_to_resume_only_when_a_checkpoint_exists(tmp_path, monkeypatch, written):
    # stopped before its first checkpoint, the run said "rerun ... with --resume", which then refused
    from click.testing import CliRunner

    import maskrefine.train.trainer as trainer
    from maskrefine.cli import main

    images, _ = disc_images(tmp_path)
    run = tmp_path / "run"

    def stop(*args, **kwargs):
        if written != "nothing":
            run.mkdir()
            (run / ("last.pt" if written == "checkpoint" else "config.json")).write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "train_checked", stop)
    args = ["train", "--images", str(images), "--out", str(run), "--preset", "tiny", "--backbone", "pixels"]
    result = CliRunner().invoke(main, [*args, "-q"])
    assert result.exit_code == 130, result.output
    expected = {
        "nothing": "interrupted: no checkpoint was written yet: rerun the same command (without --resume)",
        "folder": f"interrupted: no checkpoint was written yet (last.pt does not exist): empty {run} or",
        "checkpoint": "interrupted: rerun the same command with --resume to continue from last.pt",
    }[written]
    assert expected in result.output


def test_resume_accepts_the_runs_backbone_at_another_path(tmp_path):
    # before: the backbone's path was compared as a setting, so a copy of the same weights (another
    # machine, mount or a symlink) was refused though the docs call it the same backbone
    import shutil

    from _train_helpers import tiny_vit

    from maskrefine.train.trainer import load_checkpoint

    images, _ = disc_images(tmp_path)
    torch.save(tiny_vit(seed=0).state_dict(), tmp_path / "vit_a.pth")
    cfg = preset("tiny", backbone_checkpoint=str(tmp_path / "vit_a.pth"), head_fine_channels=(16, 8))
    train(cfg.replace(max_steps=1), images, tmp_path / "run")
    shutil.copyfile(tmp_path / "vit_a.pth", tmp_path / "copy.pth")
    copied = cfg.replace(backbone_checkpoint=str(tmp_path / "copy.pth"), max_steps=2)
    resumed = train(copied, images, tmp_path / "run", resume=True)
    assert resumed.checkpoint == tmp_path / "run" / "last.pt"
    assert load_checkpoint(resumed.checkpoint)["config"]["backbone_checkpoint"] == str(tmp_path / "copy.pth")
    torch.save(tiny_vit(seed=1).state_dict(), tmp_path / "other.pth")  # another path and other weights
    with pytest.raises(
        ConfigError, match=r"--resume: .*other\.pth is not the backbone the run was trained on"
    ):
        train(
            cfg.replace(backbone_checkpoint=str(tmp_path / "other.pth"), max_steps=3),
            images,
            tmp_path / "run",
            resume=True,
        )
