"""Training configuration: a frozen dataclass with the paper's defaults (docs/training.md §5), presets, TOML.

Every field that changes results is recorded in each run's ``config.json`` and in every checkpoint.
Fixes of the reference code are the defaults; each has a switch restoring the reference behaviour
(the ``reference`` preset sets all of them).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from maskrefine._checks import MIN_EPS, real_to_float, short_repr
from maskrefine.errors import ConfigError, parse_problem
from maskrefine.io.options import DEFAULT_MAX_PIXELS

#: Known ViT sizes: name -> (embed_dim, depth, num_heads). Heads are embed_dim // 64 for all of them.
#: Torch-free here, so that a bad ``arch`` is refused with the other settings, before torch loads.
ARCHS: dict[str, tuple[int, int, int]] = {
    "vit_tiny": (192, 12, 3),
    "vit_small": (384, 12, 6),
    "vit_base": (768, 12, 12),
    "vit_large": (1024, 24, 16),
}
#: Values ``arch`` may take: a known size, "auto" (read from the checkpoint) or "custom" (no known size).
ARCH_CHOICES: tuple[str, ...] = ("auto", "custom", *ARCHS)

__all__ = ["TrainConfig", "PRESETS", "preset", "load_toml", "RESULT_FIELDS", "geometry_problem"]

#: Why a run with the ``vit`` backbone and no checkpoint is refused (before torch loads, and by the model).
MISSING_BACKBONE_CHECKPOINT = (
    "the vit backbone needs --backbone-checkpoint FILE (a local DINO/DINOv2 checkpoint)"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainConfig:
    """Sempart + crop-consistency training settings.

    Every field is keyword-only and validated when the config is built (NumPy numbers and strings are
    stored as plain Python values).

    Parameters
    ----------
    image_size : int, default 320
        Side of the random square crop, a multiple of 16 in 1..2048 that the patch size and crop
        settings can train with (see :func:`geometry_problem`).
    resize : int, default 335
        Shorter side the images are resized to before cropping, from ``image_size`` to 4 x
        ``image_size``.
    brightness : float, default 0.4
        Colour jitter strength (>= 0).
    contrast : float, default 0.4
        Colour jitter strength (>= 0).
    saturation : float, default 0.2
        Colour jitter strength (>= 0).
    hue : float, default 0.1
        Colour jitter strength, in [0, 0.5].
    jitter_p : float, default 0.8
        Probability of the colour jitter, in [0, 1].
    grayscale_p : float, default 0.2
        Probability of turning an image gray, in [0, 1].
    flip_p : float, default 0.5
        Probability of a horizontal flip, in [0, 1].
    last_batch : {"drop_single", "keep"}, default "drop_single"
        ``"drop_single"``: drop a final batch of one image when ``batch_size`` > 1 (its BatchNorm
        statistics are degenerate); ``"keep"``: keep it (reference).
    backbone : {"vit", "pixels"}, default "vit"
        ``"vit"`` (needs ``backbone_checkpoint``, a local DINO/DINOv2 file) or ``"pixels"`` (weight-free
        colour/position features).
    backbone_checkpoint : str, optional
        Path of the ViT checkpoint; only for ``backbone="vit"``, not empty.
    arch : str, optional
        ViT architecture, checked against the checkpoint when set.
    patch_size : int, optional
        ViT patch size (>= 1), checked against the checkpoint when set; the head stride of the
        ``"pixels"`` backbone (8 when None).
    head_hidden : int, default 64
        Width of the head (1..4096).
    head_depth : int, default 2
        Token transformer layers of the head (1..64).
    head_heads : int, default 2
        Attention heads (1..64).
    head_dim_head : int, default 64
        Width of each attention head (1..1024).
    head_fine_channels : (int, int), default (192, 128)
        Stage widths of the fine branch (each 1..4096).
    affinity_threshold : float, default 0.4
        Cosine threshold of the NCut affinity, in [-1, 1).
    gtv_sigma : float, default 1.0
        Bandwidth of the graph total variation losses (> 0).
    w_ncut : float, default 1.0
        Weight of the NCut loss (0 to 1e6).
    w_pixel_gtv : float, default 1.0
        Weight of the pixel GTV loss (0 to 1e6).
    w_feature_gtv : float, default 1.0
        Weight of the feature GTV loss (0 to 1e6).
    w_coarse_fine : float, default 1.0
        Weight of the coarse-fine consistency loss (0 to 1e6).
    w_crop_ncut : float, default 0.01
        Weight of the NCut loss on the crops (0 to 1e6).
    w_crop : float, default 0.01
        Weight of the crop-consistency loss (0 to 1e6).
    crop_loss : bool, default True
        Train with the crop-consistency loss.
    crop_sampler : {"uniform", "reference"}, default "uniform"
        How the crop offsets are drawn.
    gf_radius : int, default 9
        Radius of the guided filter of the crop target (>= 0).
    gf_eps : float, default 1e-3
        ε of that guided filter, at least 1e-12.
    lr : float, default 1e-4
        AdamW learning rate, at least 1e-12.
    betas : (float, float), default (0.9, 0.99)
        AdamW betas, each in [0, 1).
    weight_decay : float, default 0.0
        AdamW weight decay (>= 0, with ``lr * weight_decay < 1``).
    batch_size : int, default 8
        Images per step (1..4096).
    epochs : int, default 30
        Passes over the images (>= 1).
    seed : int, default 0
        Seed of the run, in [0, 2**63).
    bn_mode : {"eval", "batch_stats"}, default "eval"
        Stored for ``predict``: BatchNorm with its running statistics, or (reference) the statistics of
        the test batch.
    polarity : {"border", "batch_mean", "none"}, default "border"
        Stored for ``predict``: ``"border"`` flips an image's mask when the mean of the fine mask on the
        image border exceeds 0.5 (objects rarely fill the border); ``"batch_mean"`` (reference) flips
        the whole batch when its mean exceeds 0.5; ``"none"`` never flips.
    device : str, default "cpu"
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    amp : bool, default False
        bf16 autocast; CUDA only.
    num_workers : int, default 0
        Data loader worker processes (0..64).
    checkpoint_every : int, default 0
        Steps between checkpoints (>= 0; 0 = at epoch ends only).
    log_every : int, default 1
        Steps between log lines (>= 1).
    max_steps : int, optional
        Stop after this many steps (>= 1; not a result setting).
    keep_best_on_val : bool, default False
        Also save ``best_val.pt``, the checkpoint with the best validation IoU (needs validation data).
    max_pixels : int or None, default :data:`~maskrefine.io.options.DEFAULT_MAX_PIXELS` (100 MP)
        Largest pixel count of a training or validation image, read from its header before decoding
        (>= 1; None: no limit; not a result setting). A larger training image is refused before the run
        starts; a larger validation file is left out of the validation and named.

    Raises
    ------
    ConfigError
        A field of the wrong type or out of range, or inconsistent fields (e.g. ``resize`` below
        ``image_size``, a ``backbone_checkpoint`` without ``backbone="vit"``, ``amp`` on the CPU).
    """

    # data
    image_size: int = 320
    resize: int = 335
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    flip_p: float = 0.5
    last_batch: Literal["drop_single", "keep"] = "drop_single"
    # backbone
    backbone: Literal["vit", "pixels"] = "vit"
    backbone_checkpoint: str | None = None
    arch: str | None = None
    patch_size: int | None = None
    # head
    head_hidden: int = 64
    head_depth: int = 2
    head_heads: int = 2
    head_dim_head: int = 64
    head_fine_channels: tuple[int, int] = (192, 128)
    # losses
    affinity_threshold: float = 0.4
    gtv_sigma: float = 1.0
    w_ncut: float = 1.0
    w_pixel_gtv: float = 1.0
    w_feature_gtv: float = 1.0
    w_coarse_fine: float = 1.0
    w_crop_ncut: float = 0.01
    w_crop: float = 0.01
    crop_loss: bool = True
    crop_sampler: Literal["uniform", "reference"] = "uniform"
    gf_radius: int = 9
    gf_eps: float = 1e-3
    # optimisation
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    batch_size: int = 8
    epochs: int = 30
    seed: int = 0
    # prediction
    bn_mode: Literal["eval", "batch_stats"] = "eval"
    polarity: Literal["border", "batch_mean", "none"] = "border"
    # run
    device: str = "cpu"
    amp: bool = False
    num_workers: int = 0
    checkpoint_every: int = 0
    log_every: int = 1
    max_steps: int | None = None
    keep_best_on_val: bool = False
    max_pixels: int | None = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        """Validate the settings; raise ConfigError on a bad value.

        Numpy numbers and strings are stored as plain Python ones: a checkpoint holding numpy scalars
        would not load with ``weights_only=True``.
        """
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            plain = _plain(value)
            if plain is not value:
                object.__setattr__(self, f.name, plain)  # frozen dataclass: only here, before checking
        _check(self)

    def replace(self, **changes: Any) -> TrainConfig:
        """Return a copy with ``changes`` (validated; unknown names raise ConfigError).

        Parameters
        ----------
        **changes
            New values of settings, by field name.

        Returns
        -------
        TrainConfig
            A new, validated config; ``self`` is unchanged.

        Raises
        ------
        ConfigError
            An unknown setting name, or a value the constructor refuses.
        """
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigError(f"unknown training setting(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON/TOML-able; ``betas`` as a list).

        Returns
        -------
        dict
            Every setting by name; ``betas`` and ``head_fine_channels`` as lists.
        """
        out = dataclasses.asdict(self)
        out["betas"] = list(self.betas)
        out["head_fine_channels"] = list(self.head_fine_channels)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, source: str = "config") -> TrainConfig:
        """Build from a mapping of field names (ConfigError naming unknown keys and wrong types).

        Parameters
        ----------
        values : mapping of str to object
            Settings by field name (e.g. :meth:`to_dict`'s output or a TOML table); lists given for
            ``betas`` and ``head_fine_channels`` are turned into tuples. Missing settings keep their
            defaults.
        source : str, default "config"
            Where the values come from, named in the error messages (e.g. a file name).

        Returns
        -------
        TrainConfig
            The validated config.

        Raises
        ------
        ConfigError
            ``values`` is not a mapping, holds an unknown key, or a value the constructor refuses.
        """
        if not isinstance(values, Mapping):
            raise ConfigError(
                f"{source}: expected a table (dict) of training settings; got {type(values).__name__}"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"{source}: unknown training setting(s): {', '.join(unknown)}")
        values = dict(values)
        for key in ("betas", "head_fine_channels"):
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        return cls(**values)


#: Settings allowed to differ on --resume: they do not change what a run computes (``device`` changes
#: the rounding of some kernels on CUDA, not the computation; docs/training.md).
RUN_FIELDS = (
    "device",
    "num_workers",
    "checkpoint_every",
    "log_every",
    "max_steps",
    "epochs",
    "keep_best_on_val",
    "max_pixels",
)
RESULT_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in RUN_FIELDS)

_HINTS = typing.get_type_hints(TrainConfig)


def _plain(value: Any) -> Any:
    """Return a numpy-like number or string as the plain Python value (tuples element-wise); else value."""
    if isinstance(value, tuple):
        items = tuple(_plain(v) for v in value)
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if isinstance(value, bool) or type(value) in (int, float, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


def _type_ok(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin is Literal:  # by type first: a 0-d array's `in` compares element-wise and passes
        return any(type(value) is type(arg) and value == arg for arg in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is tuple:
        args = typing.get_args(hint)
        return (
            isinstance(value, tuple)
            and len(value) == len(args)
            and all(_type_ok(v, a) for v, a in zip(value, args, strict=True))
        )
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    return True


def is_device_name(text: object) -> bool:
    """Whether ``text`` is a device maskrefine trains and predicts on: ``cpu``, ``cuda`` or ``cuda:N``."""
    return isinstance(text, str) and (
        text in ("cpu", "cuda") or re.fullmatch(r"cuda:[0-9]{1,4}", text) is not None
    )


def _check(cfg: TrainConfig) -> None:
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        hint = _HINTS[f.name]
        if not _type_ok(value, hint):
            raise ConfigError(
                f"training setting {f.name}: expected {_describe(hint)}; got {short_repr(value)}"
            )
        if hint is float and not math.isfinite(real_to_float(value)):  # NaN/inf pass every range check
            raise ConfigError(f"training setting {f.name} must be a finite number; got {short_repr(value)}")
    positive = (
        "image_size",
        "resize",
        "batch_size",
        "epochs",
        "head_hidden",
        "head_depth",
        "head_heads",
        "head_dim_head",
        "log_every",
    )
    for name in positive:
        if getattr(cfg, name) < 1:
            raise ConfigError(f"training setting {name} must be >= 1; got {getattr(cfg, name)}")
    for name, largest in MAX_SIZES.items():  # beyond these a run only exhausts memory or processes
        values = getattr(cfg, name)
        if (max(values) if isinstance(values, tuple) else values) > largest:
            raise ConfigError(f"training setting {name} must be <= {largest}; got {short_repr(values)}")
    for name in ("num_workers", "checkpoint_every", "gf_radius", "seed"):
        if getattr(cfg, name) < 0:
            raise ConfigError(f"training setting {name} must be >= 0; got {getattr(cfg, name)}")
    if cfg.seed >= MAX_SEED:  # torch generators take 64-bit seeds (the crop generator's is seed + 1)
        raise ConfigError(f"training setting seed must be < 2**63; got {cfg.seed}")
    if cfg.max_steps is not None and cfg.max_steps < 1:
        raise ConfigError(f"training setting max_steps must be >= 1; got {cfg.max_steps}")
    if cfg.max_pixels is not None and cfg.max_pixels < 1:
        raise ConfigError(
            f"training setting max_pixels must be >= 1 (or None for no limit); got {cfg.max_pixels}"
        )
    if cfg.image_size % 16:
        raise ConfigError(
            "image_size must be a multiple of 16 (the crop loss's crops of image_size/2 must lie on the "
            f"patch grid; checked with --no-crop-loss too); got {short_repr(cfg.image_size)}"
        )
    if cfg.resize < cfg.image_size:
        raise ConfigError(
            f"resize ({cfg.resize}) must be >= image_size ({cfg.image_size}): images are resized to a "
            "shorter side of resize, then cropped to image_size; raise resize (--resize, or `resize` in "
            "the --config file)"
        )
    for name in ("jitter_p", "grayscale_p", "flip_p"):
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            raise ConfigError(
                f"training setting {name} must be a probability in [0, 1]; got {getattr(cfg, name)}"
            )
    for name in ("lr", "gf_eps", "gtv_sigma"):
        if not getattr(cfg, name) > 0:
            raise ConfigError(f"training setting {name} must be > 0; got {getattr(cfg, name)}")
    if cfg.gf_eps < MIN_EPS:  # the guided filter of the crop loss and of predict refuses it (mid-run before)
        raise ConfigError(
            f"training setting gf_eps must be >= {MIN_EPS:g} (the guided filter's smallest eps); "
            f"got {short_repr(cfg.gf_eps)}"
        )
    if cfg.gtv_sigma < MIN_GTV_SIGMA:
        raise ConfigError(
            f"training setting gtv_sigma must be >= {MIN_GTV_SIGMA:.3g} (the smallest normal float32: the "
            f"loss divides float32 values by it); got {short_repr(cfg.gtv_sigma)}"
        )
    if cfg.lr > MAX_LR:  # from ~1e38 Adam's step no longer fits float32 and torch raised mid-step
        raise ConfigError(
            f"training setting lr must be <= {MAX_LR:g} (a larger step diverges at once; from about 1e38 "
            f"it does not fit the optimizer's float32 arithmetic); got {short_repr(cfg.lr)}"
        )
    if cfg.lr < MIN_LR:
        raise ConfigError(
            f"training setting lr must be >= {MIN_LR:g} (a smaller step leaves the float32 weights "
            f"unchanged: the run would only burn time); got {short_repr(cfg.lr)}"
        )
    for name in (
        *LOSS_WEIGHTS,
        "weight_decay",
        "brightness",
        "contrast",
        "saturation",
        "hue",
    ):
        if getattr(cfg, name) < 0:
            raise ConfigError(f"training setting {name} must be >= 0; got {getattr(cfg, name)}")
    for name in LOSS_WEIGHTS:  # 1e300 made the first step's loss inf, reported as a learning-rate problem
        if getattr(cfg, name) > MAX_LOSS_WEIGHT:
            raise ConfigError(
                f"training setting {name} must be <= {MAX_LOSS_WEIGHT:g} (a loss weight; the defaults are "
                "0.01 and 1, and larger ones overflow the float32 loss); "
                f"got {short_repr(getattr(cfg, name))}"
            )
    if cfg.lr * cfg.weight_decay >= 1.0:  # AdamW scales every weight by 1 - lr * weight_decay per step
        raise ConfigError(
            f"training setting weight_decay must be below 1 / lr = {1.0 / cfg.lr:g} (AdamW multiplies every "
            "weight by 1 - lr * weight_decay at each step, which would be <= 0: the weights would be zeroed "
            f"or flip sign and grow); got {short_repr(cfg.weight_decay)}"
        )
    if not -1.0 <= cfg.affinity_threshold < 1.0:
        raise ConfigError(
            "training setting affinity_threshold must lie in [-1, 1) (a cosine threshold: outside it every "
            f"affinity is the same and the NCut ignores the features); got {cfg.affinity_threshold}"
        )
    if cfg.hue > 0.5:
        raise ConfigError(f"training setting hue must be in [0, 0.5]; got {cfg.hue}")
    if min(cfg.head_fine_channels) < 1:
        raise ConfigError(f"head_fine_channels must be >= 1; got {cfg.head_fine_channels}")
    if not all(0 <= b < 1 for b in cfg.betas):
        raise ConfigError(f"training setting betas must lie in [0, 1); got {cfg.betas}")
    if cfg.backbone_checkpoint is not None and cfg.backbone != "vit":  # silently unused before
        raise ConfigError(
            "backbone_checkpoint: only the 'vit' backbone loads weights, and the backbone is "
            f"{cfg.backbone!r}; drop the checkpoint (--backbone-checkpoint)"
        )
    if cfg.backbone_checkpoint == "":
        raise ConfigError("backbone_checkpoint: empty path; give the path of a local checkpoint file")
    if not is_device_name(cfg.device):
        raise ConfigError(f"device (--device) must be 'cpu', 'cuda' or 'cuda:N'; got {cfg.device!r}")
    if cfg.amp and not cfg.device.startswith("cuda"):
        raise ConfigError("amp (bf16 autocast) needs a CUDA device; use --device cuda or drop --amp")
    if cfg.patch_size is not None and cfg.patch_size < 1:
        raise ConfigError(f"patch_size must be >= 1; got {cfg.patch_size}")
    if cfg.arch is not None and cfg.arch not in ARCH_CHOICES:
        raise ConfigError(f"arch must be one of {', '.join(ARCH_CHOICES)}; got {short_repr(cfg.arch)}")
    # the head stride: a ViT's is known once its checkpoint is loaded (build_model checks it then)
    stride = (cfg.patch_size or 8) if cfg.backbone == "pixels" else None
    problem = geometry_problem(cfg, stride)
    if problem is not None:
        raise ConfigError(problem)
    if cfg.resize > MAX_RESIZE_FACTOR * cfg.image_size:
        raise ConfigError(
            f"resize ({cfg.resize}) must be at most {MAX_RESIZE_FACTOR} x image_size "
            f"({MAX_RESIZE_FACTOR * cfg.image_size}): larger values upscale every image for crops of a "
            "small part of it (--resize, or `resize` in the --config file)"
        )


#: The reference crop sampler draws ``randint(g // 4, 3 * (g // 4))`` on a g-patch grid: g must be >= 4.
REFERENCE_SAMPLER_MIN_GRID = 4
#: ``resize`` may be at most this many times ``image_size``.
MAX_RESIZE_FACTOR = 4
#: ``seed`` must be below this (torch generators take 64-bit seeds).
MAX_SEED = 2**63
#: Smallest learning rate accepted. AdamW moves a weight by about ``lr`` per step, and a float32 weight
#: of magnitude 0.01 only changes by at least 6e-10: far below that, no weight moves at all.
MIN_LR = 1e-12
#: Largest learning rate (see _check): usual rates are below 1.
MAX_LR = 1e6
#: The weights of the loss terms, and the largest accepted (the defaults are 0.01 and 1).
LOSS_WEIGHTS = ("w_ncut", "w_pixel_gtv", "w_feature_gtv", "w_coarse_fine", "w_crop_ncut", "w_crop")
MAX_LOSS_WEIGHT = 1e6
#: Smallest ``gtv_sigma``: the smallest normal float32. The pixel GTV loss divides float32 squared colour
#: differences by it; a smaller value becomes 0 in float32 and the loss NaN at the first step.
MIN_GTV_SIGMA = 1.1754943508222875e-38
#: Largest sizes accepted. ``image_size``: the NCut affinity holds (image_size/stride)⁴ values per image,
#: about 1 GB at 2048 px with a ViT/16 (16 GB with a ViT/8); ``num_workers``: each is a process.
MAX_SIZES: dict[str, int] = {
    "image_size": 2048,
    "batch_size": 4096,
    "num_workers": 64,
    "head_hidden": 4096,
    "head_depth": 64,
    "head_heads": 64,
    "head_dim_head": 1024,
    "head_fine_channels": 4096,
}


def geometry_problem(cfg: TrainConfig, stride: int | None) -> str | None:
    """Say why ``cfg.image_size`` cannot train with head stride ``stride`` (the patch size), or return None.

    Training needs a feature grid of at least 2x2 patches (the feature GTV loss pads it by reflection);
    with the crop loss, the teacher target (``image_size`` px) at least as large as the guided filter's
    ``2 gf_radius + 1`` window; the ``"uniform"`` sampler needs ``image_size/2`` to be a multiple of the
    stride (so that crops reach the bottom/right edge and student cells map onto 2x2 teacher cells), the
    ``"reference"`` sampler a grid of at least 4x4 patches.

    Parameters
    ----------
    cfg : TrainConfig
    stride : int or None
        The head stride (the patch size if a power of two, else 8); None when not known yet (a ViT,
        before its checkpoint is loaded): only the checks that do not depend on it are made.

    Returns
    -------
    str or None
        The problem, naming image_size and how to fix it, or None.
    """
    size = cfg.image_size
    if stride is not None:
        if size % stride:
            return f"image_size {size} must be a multiple of the head stride (patch size) {stride}"
        if size < 2 * stride:
            return (
                f"image_size {size} is too small for patch size {stride}: the feature grid must be at "
                f"least 2x2 patches; use image_size >= {2 * stride}"
            )
    if not cfg.crop_loss:
        return None
    window = 2 * cfg.gf_radius + 1
    if size < window:
        return (
            f"image_size {size} is too small for the crop loss: its {size}-px teacher target must be at "
            f"least the guided filter's {window}-px window (gf_radius {cfg.gf_radius}); use a larger "
            "image_size, a smaller gf_radius or --no-crop-loss"
        )
    if cfg.crop_sampler == "reference" and stride is not None and size // stride < REFERENCE_SAMPLER_MIN_GRID:
        return (
            f"image_size {size} is too small for the reference crop sampler with patch size {stride}: it "
            f"draws offsets on a grid of at least {REFERENCE_SAMPLER_MIN_GRID}x{REFERENCE_SAMPLER_MIN_GRID} "
            f"patches; use image_size >= {REFERENCE_SAMPLER_MIN_GRID * stride} or crop_sampler 'uniform'"
        )
    if cfg.crop_sampler == "uniform" and stride is not None and size % (2 * stride):
        below, above = size // (2 * stride) * 2 * stride, (size // (2 * stride) + 1) * 2 * stride
        return (
            f"image_size {size} does not suit the uniform crop sampler with patch size {stride}: "
            f"image_size/2 must be a multiple of {stride} so that crops reach the image's bottom and right "
            f"edges; use a multiple of {2 * stride} (e.g. {below} or {above}) or --no-crop-loss"
        )
    return None


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    if hint is type(None):
        return "none"
    if origin is tuple:
        return "a pair of " + ("integers" if typing.get_args(hint)[0] is int else "numbers")
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


#: Named starting points: ``paper`` (docs/training.md §5), ``reference`` (paper + every reference switch),
#: ``tiny`` (64 px, 2 images per batch, 1 epoch: tests and CPU demos).
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "reference": {
        "crop_sampler": "reference",
        "bn_mode": "batch_stats",
        "polarity": "batch_mean",
        "last_batch": "keep",
    },
    "tiny": {"image_size": 64, "resize": 72, "batch_size": 2, "epochs": 1},
}


def preset(name: str, **changes: Any) -> TrainConfig:
    """Return the preset ``name`` (a key of :data:`PRESETS`) with ``changes`` applied.

    Parameters
    ----------
    name : str
        A key of :data:`PRESETS`.
    **changes
        Settings overriding the preset's, by field name.

    Returns
    -------
    TrainConfig
        The validated config.

    Raises
    ------
    ConfigError
        An unknown preset name, an unknown setting, or a value :class:`TrainConfig` refuses.
    """
    if not isinstance(name, str) or name not in PRESETS:
        raise ConfigError(f"preset must be one of {', '.join(PRESETS)}; got {short_repr(name)}")
    return TrainConfig.from_dict({**PRESETS[name], **changes}, source=f"preset {name}")


def load_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML config file and return its raw mapping (validated when the config is built).

    Top-level keys are :class:`TrainConfig` fields; an optional ``preset`` key names the starting preset.

    Parameters
    ----------
    path : str or path-like
        The TOML file.

    Returns
    -------
    dict
        The file's top-level keys and values as parsed; the values are not checked yet. A relative
        ``backbone_checkpoint`` path is taken relative to the file's folder (returned joined to it).

    Raises
    ------
    ConfigError
        Naming the file: an empty path, a missing or unreadable file, one that is not a regular file
        (e.g. a folder or FIFO), invalid TOML, a table (only top-level keys are supported), or a key that
        is neither a setting nor ``preset``.
    """
    from maskrefine.pipeline.guards import path_argument  # late: OpenCV, imported only when needed

    if isinstance(path, str) and path == "":
        raise ConfigError("config file: empty path")
    file = path_argument(path, "config file")  # a str or Path: not None, bytes, ...
    from maskrefine.io.files import not_regular_reason

    reason = not_regular_reason(file)  # "not found", "a dangling symlink", "a symlink loop", "a folder"...
    if reason == "not found":
        raise ConfigError(f"config file {file}: file not found")
    if reason is not None:
        raise ConfigError(f"config file {file}: is not a regular file ({reason})")
    try:
        with open(file, "rb") as handle:
            data = tomllib.load(handle)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {file}: cannot read ({exc})") from None
    except (ValueError, RecursionError) as exc:  # see parse_problem
        raise ConfigError(f"config file {file}: invalid TOML ({parse_problem(exc)})") from None
    nested = [k for k, v in data.items() if isinstance(v, dict)]
    if nested:
        raise ConfigError(f"config file {file}: tables are not supported ([{nested[0]}]); use top-level keys")
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(TrainConfig)} - {"preset"})
    if unknown:  # named here, with the file; later it would read as a problem of the preset
        raise ConfigError(f"config file {file}: unknown training setting(s): {', '.join(unknown)}")
    backbone = data.get("backbone_checkpoint")
    if isinstance(backbone, str) and backbone and not _URL.match(backbone) and not os.path.isabs(backbone):
        # as a path written in the file: the file can be used from any folder (an empty path or a URL
        # stays as it is, refused when the config is built or the file is checked)
        data["backbone_checkpoint"] = str(file.parent / backbone)
    return data


#: A URL's scheme (``https://``): never a relative path to resolve (and refused as a backbone file).
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
