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
        # were accepted here and ended in torch's "Invalid device string" traceback at the start of training
        ("device = 'cuda:x'\n", r"device \(--device\) must be 'cpu', 'cuda' or 'cuda:N'; got 'cuda:x'"),
        ("device = 'cuda:-1'\n", "must be 'cpu', 'cuda' or 'cuda:N'"),
        ("device = 'cuda: 0'\n", "must be 'cpu', 'cuda' or 'cuda:N'"),
        ("device = 'cuda:0:1'\n", "must be 'cpu', 'cuda' or 'cuda:N'"),
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
    (tmp_path / "loop.toml").symlink_to(tmp_path / "loop.toml")  # was "file not found"
    with pytest.raises(ConfigError, match=r"loop\.toml: is not a regular file \(a symlink loop\)"):
        load_toml(tmp_path / "loop.toml")
    (tmp_path / "dangling.toml").symlink_to(tmp_path / "nowhere.toml")
    with pytest.raises(ConfigError, match=r"dangling\.toml: is not a regular file \(a dangling symlink\)"):
        load_toml(tmp_path / "dangling.toml")
    with pytest.raises(ConfigError, match="empty path"):
        load_toml("")
    (tmp_path / "broken.toml").write_text("epochs = = 3")
    with pytest.raises(ConfigError, match=r"broken\.toml: invalid TOML"):
        load_toml(tmp_path / "broken.toml")
    os.mkfifo(tmp_path / "fifo.toml")
    with pytest.raises(ConfigError, match="not a regular file"):
        load_toml(tmp_path / "fifo.toml")


@pytest.mark.parametrize(
    "name, value",
    [
        ("lr", float("inf")),
        ("w_ncut", float("nan")),
        ("w_crop", float("inf")),
        ("gf_eps", float("inf")),
        ("gtv_sigma", float("inf")),
        ("weight_decay", float("nan")),
        ("brightness", float("nan")),
        ("contrast", float("inf")),
        ("hue", float("nan")),
        ("affinity_threshold", float("nan")),
        ("affinity_threshold", float("-inf")),
    ],
)
def test_non_finite_numbers_are_refused(name, value):
    # accepted before: lr=inf trained a head of inf/NaN weights and exited 0; NaN weights or jitter
    # strengths ended the run with "loss is nan", gf_eps=inf with a ValueError mid-run
    with pytest.raises(ConfigError, match=rf"training setting {name} must be a finite number; got"):
        preset("tiny", **{name: value})


@pytest.mark.parametrize(
    "name, value",
    [
        ("image_size", 10**12),
        ("image_size", 2064),
        ("batch_size", 10**9),
        ("num_workers", 100_000),
        ("head_hidden", 10**7),
        ("head_depth", 10**6),
        ("head_heads", 1000),
        ("head_dim_head", 10**5),
        ("head_fine_channels", (192, 10**6)),
    ],
)
def test_huge_sizes_are_refused(name, value):
    # before: accepted, then the run exhausted memory (the NCut affinity grows as image_size**4) or,
    # for num_workers, tried to start that many data-loader processes
    changes = {name: value, "resize": value} if name == "image_size" else {name: value}
    with pytest.raises(ConfigError, match=rf"training setting {name} must be <= \d+; got"):
        preset("tiny", **changes)


def test_the_largest_sizes_are_accepted():
    from maskrefine.train.config import MAX_SIZES

    cfg = preset(
        "tiny", **{**MAX_SIZES, "resize": MAX_SIZES["image_size"], "head_fine_channels": (4096, 4096)}
    )
    assert cfg.image_size == 2048 and cfg.num_workers == 64


def test_non_finite_numbers_in_a_toml_file_are_refused(tmp_path):
    path = tmp_path / "nan.toml"
    path.write_text("w_crop = nan\n")  # valid TOML
    with pytest.raises(ConfigError, match="w_crop must be a finite number"):
        TrainConfig.from_dict(load_toml(path), source=str(path))


@pytest.mark.parametrize("value", [1.5, -1.01])
def test_affinity_threshold_outside_the_cosine_range_is_refused(value):
    # a threshold outside [-1, 1] makes every affinity the same (1e-6 or 1): the NCut ignores the features
    with pytest.raises(ConfigError, match=r"affinity_threshold must lie in \[-1, 1\)"):
        preset("tiny", affinity_threshold=value)


def test_seed_beyond_64_bits_is_refused():
    with pytest.raises(ConfigError, match=r"seed must be < 2\*\*63"):
        preset("tiny", seed=2**63)


@pytest.mark.parametrize("values", [None, 5, ["lr"], "lr"])
def test_from_dict_needs_a_mapping(values):
    # before: TypeError "'NoneType' object is not iterable", or "unknown training setting(s): l, r"
    with pytest.raises(ConfigError, match=r"config: expected a table \(dict\) of training settings; got"):
        TrainConfig.from_dict(values)


@pytest.mark.parametrize(
    "name, value, message",
    [
        # the guided filter of the crop loss (and of predict) refuses eps < 1e-12: before, the run
        # started and stopped at the first crop-loss step with the filter's ValueError
        ("gf_eps", 1e-13, r"gf_eps must be >= 1e-12 \(the guided filter's smallest eps\); got 1e-13"),
        ("gf_eps", 5e-324, r"gf_eps must be >= 1e-12"),
        # a subnormal learning rate trained for hours and changed no weight
        ("lr", 1e-320, r"lr must be >= 1e-12 \(a smaller step leaves the float32 weights unchanged"),
        ("lr", 9.99e-13, r"lr must be >= 1e-12"),
        # from ~1e38 torch's Adam raised mid-step ("value cannot be converted to type float without
        # overflow"): a traceback
        ("lr", 1e38, r"lr must be <= 1e\+06 \(a larger step diverges at once"),
        ("lr", 1e300, r"lr must be <= 1e\+06"),
        ("lr", 1.0000001e6, r"lr must be <= 1e\+06"),
    ],
)
def test_settings_below_what_the_run_can_use_are_refused(name, value, message):
    with pytest.raises(ConfigError, match=message):
        preset("tiny", **{name: value})


def test_smallest_accepted_gf_eps_and_lr():
    cfg = preset("tiny", gf_eps=1e-12, lr=1e-12)
    assert (cfg.gf_eps, cfg.lr) == (1e-12, 1e-12)
    assert preset("tiny", lr=1e6).lr == 1e6


def test_cuda_device_with_an_index_is_accepted():
    assert TrainConfig.from_dict({"device": "cuda:1"}).device == "cuda:1"


@pytest.mark.parametrize("name", ["polarity", "bn_mode", "crop_sampler", "last_batch", "backbone"])
def test_a_0d_array_for_a_choice_setting_is_refused_when_the_config_is_built(name: str) -> None:
    # np.array("border") passed the `in Literal[...]` check element-wise and was stored as an array;
    # train() then died in json.dumps with a traceback, after loading torch and building the model
    import numpy as np

    value = getattr(TrainConfig(), name)
    with pytest.raises(ConfigError, match=rf"training setting {name}: expected one of .*; got array\("):
        preset("tiny", **{name: np.array(value)})
    assert getattr(preset("tiny", **{name: np.str_(value)}), name) == value  # NumPy strings still convert


def test_a_gtv_sigma_that_float32_cannot_hold_is_refused() -> None:
    # 1e-320 is > 0 in float64 and 0 in float32: the first step's loss was NaN ("lower --lr")
    with pytest.raises(ConfigError, match=r"gtv_sigma must be >= 1.18e-38 .*; got 1e-320"):
        preset("tiny", gtv_sigma=1e-320)
    assert preset("tiny", gtv_sigma=1e-30).gtv_sigma == 1e-30


def test_an_unknown_arch_is_refused_with_the_other_settings():
    # accepted with the pixels backbone, and with a ViT refused only after torch loaded, without naming
    # the config file
    from maskrefine.train.config import ARCH_CHOICES

    with pytest.raises(ConfigError, match=r"arch must be one of auto, custom, vit_tiny, .*; got 'nonsense'"):
        preset("tiny", backbone="pixels", arch="nonsense")
    for arch in ARCH_CHOICES:
        assert preset("tiny", backbone="pixels", arch=arch).arch == arch
