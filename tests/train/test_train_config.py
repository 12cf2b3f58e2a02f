"""TrainConfig: paper defaults, presets, TOML files, refusals."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")

from maskrefine.errors import ConfigError  # noqa: E402
from maskrefine.train.config import TrainConfig, load_toml, preset  # noqa: E402


def test_paper_defaults():
    cfg = TrainConfig()
    assert (cfg.lr, cfg.betas, cfg.weight_decay, cfg.batch_size, cfg.epochs) == (
        1e-4,
        (0.9, 0.99),
        0.0,
        8,
        30,
    )
    assert (cfg.resize, cfg.image_size, cfg.jitter_p, cfg.grayscale_p, cfg.flip_p) == (
        335,
        320,
        0.8,
        0.2,
        0.5,
    )
    assert (cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue) == (0.4, 0.4, 0.2, 0.1)
    weights = (cfg.w_ncut, cfg.w_pixel_gtv, cfg.w_feature_gtv, cfg.w_coarse_fine, cfg.w_crop_ncut, cfg.w_crop)
    assert weights == (1, 1, 1, 1, 0.01, 0.01)
    assert (cfg.gf_radius, cfg.gf_eps, cfg.affinity_threshold) == (9, 1e-3, 0.4)
    # fixes by default
    assert (cfg.crop_sampler, cfg.bn_mode, cfg.polarity, cfg.last_batch) == (
        "uniform",
        "eval",
        "border",
        "drop_single",
    )


def test_presets():
    ref = preset("reference")
    assert (ref.crop_sampler, ref.bn_mode, ref.polarity, ref.last_batch) == (
        "reference",
        "batch_stats",
        "batch_mean",
        "keep",
    )
    tiny = preset("tiny", epochs=3)
    assert tiny.image_size == 64 and tiny.epochs == 3
    with pytest.raises(ConfigError, match="preset must be one of"):
        preset("huge")


def test_round_trip_dict():
    cfg = preset("tiny", crop_loss=False)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_toml(tmp_path):
    path = tmp_path / "cfg.toml"
    path.write_text('epochs = 5\nbetas = [0.8, 0.9]\ncrop_sampler = "reference"\n')
    cfg = TrainConfig.from_dict(load_toml(path))
    assert cfg.epochs == 5 and cfg.betas == (0.8, 0.9) and cfg.crop_sampler == "reference"


@pytest.mark.parametrize(
    "text, message",
    [
        ("epochs = 'five'\n", "epochs: expected an integer"),
        ("epochs = 0\n", "epochs must be >= 1"),
        ("crop_sampler = 'random'\n", "crop_sampler: expected one of 'uniform', 'reference'"),
        ("batch = 8\n", "unknown training setting"),
        ("lr = -1.0\n", "lr must be > 0"),
        ("amp = true\n", "amp .* needs a CUDA device"),
        ("image_size = 100\n", "multiple of 16"),
        ("crop_loss = 1\n", "crop_loss: expected true/false"),
    ],
)
def test_bad_values(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(load_toml(path), source=str(path))


def test_bad_files(tmp_path):
    import os

    with pytest.raises(ConfigError, match="file not found"):
        load_toml(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="empty path"):
        load_toml("")
    (tmp_path / "broken.toml").write_text("epochs = = 3")
    with pytest.raises(ConfigError, match=r"broken\.toml: invalid TOML"):
        load_toml(tmp_path / "broken.toml")
    os.mkfifo(tmp_path / "fifo.toml")
    with pytest.raises(ConfigError, match="not a regular file"):
        load_toml(tmp_path / "fifo.toml")
