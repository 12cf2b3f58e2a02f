"""Image-folder dataset and the training augmentation of docs/training.md §5, in torch (no torchvision).

Per image: resize the shorter side to ``resize`` (bilinear, antialiased like PIL), with probability
``jitter_p`` colour jitter (brightness, contrast, saturation, hue factors in random order), grayscale with
probability ``grayscale_p``, ImageNet normalisation, a random ``image_size`` square crop and a horizontal
flip with probability ``flip_p``. Randomness comes from a generator seeded by (seed, epoch, index), so an
item is the same whatever worker loads it and after a resume.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from maskrefine.io.imageio import read_image
from maskrefine.io.options import DEFAULT_MAX_PIXELS
from maskrefine.torch import IMAGENET_MEAN, IMAGENET_STD
from maskrefine.train.preflight import list_images

__all__ = [
    "Augment",
    "list_images",
    "ImageFolder",
    "resize_shorter",
    "colour_jitter",
    "to_grayscale",
    "normalize",
    "item_generator",
]

_GRAY = (0.299, 0.587, 0.114)


@dataclass(frozen=True, slots=True)
class Augment:
    """Augmentation settings (defaults: docs/training.md §5)."""

    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    flip_p: float = 0.5


def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """CPU generator for one item of one epoch (independent of workers and resumes).

    The seed is taken modulo 2**64 (torch's seed range), so any ``seed`` works; smaller values are unchanged.
    """
    g = torch.Generator()
    g.manual_seed(((seed * 1_000_003 + epoch) * 1_000_003 + index) % 2**64)
    return g


def resize_shorter(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (3, H, W) so that the shorter side is ``size`` (bilinear, antialiased).

    The longer side follows ``torchvision.transforms.Resize(size)``'s rule, ``int(size * long / short)``
    (truncated, not rounded), as in the paper repository's pipeline and the ``paper_repo`` score preset.
    """
    height, width = image.shape[-2:]
    if height <= width:
        new = (size, int(size * width / height))
    else:
        new = (int(size * height / width), size)
    return F.interpolate(image[None], size=new, mode="bilinear", align_corners=False, antialias=True)[0]


def to_grayscale(image: torch.Tensor) -> torch.Tensor:
    """(3, H, W) in [0, 1] -> Rec.601 gray repeated to 3 channels."""
    gray = _GRAY[0] * image[0] + _GRAY[1] * image[1] + _GRAY[2] * image[2]
    return gray.expand(3, -1, -1).clone()


def _rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    r, g, b = rgb
    maxc, _ = rgb.max(0)
    minc, _ = rgb.min(0)
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    h = torch.where(
        maxc == r, ((g - b) / safe) % 6, torch.where(maxc == g, (b - r) / safe + 2, (r - g) / safe + 4)
    )
    h = torch.where(delta > 0, h / 6, torch.zeros_like(h))
    s = torch.where(
        maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)), torch.zeros_like(maxc)
    )
    return torch.stack((h, s, maxc))


def _hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    h, s, v = hsv
    k = torch.stack([(n + h * 6) % 6 for n in (5.0, 3.0, 1.0)])
    return v - v * s * (torch.minimum(k, 4 - k).clamp(0, 1))


def colour_jitter(image: torch.Tensor, aug: Augment, generator: torch.Generator) -> torch.Tensor:
    """Brightness, contrast, saturation and hue jitter of (3, H, W) in [0, 1], in a random order."""

    def uniform(low: float, high: float) -> float:
        return float(low + (high - low) * torch.rand((), generator=generator))

    order = torch.randperm(4, generator=generator).tolist()
    factors = (
        uniform(max(0.0, 1 - aug.brightness), 1 + aug.brightness),
        uniform(max(0.0, 1 - aug.contrast), 1 + aug.contrast),
        uniform(max(0.0, 1 - aug.saturation), 1 + aug.saturation),
        uniform(-aug.hue, aug.hue),
    )
    for op in order:
        f = factors[op]
        if op == 0:
            image = (image * f).clamp(0, 1)
        elif op == 1:
            mean = to_grayscale(image)[0].mean()
            image = (f * image + (1 - f) * mean).clamp(0, 1)
        elif op == 2:
            image = (f * image + (1 - f) * to_grayscale(image)).clamp(0, 1)
        elif f != 0.0:
            hsv = _rgb_to_hsv(image)
            hsv = torch.stack(((hsv[0] + f) % 1.0, hsv[1], hsv[2]))
            image = _hsv_to_rgb(hsv).clamp(0, 1)
    return image


def normalize(image: torch.Tensor) -> torch.Tensor:
    """ImageNet normalisation of (..., 3, H, W) in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=image.dtype, device=image.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=image.dtype, device=image.device).view(3, 1, 1)
    return (image - mean) / std


class ImageFolder(torch.utils.data.Dataset):
    """Training images of a folder, augmented as docs/training.md §5 says.

    An item is ``(normalised image (3, S, S) float32, index)``. Unreadable files raise
    :class:`maskrefine.errors.InputError` naming the file.

    Parameters
    ----------
    root : path-like
        Folder of images (png, jpg, jpeg, bmp, tif, tiff, webp); not read when ``files`` is given.
    image_size : int
        Crop side S (e.g. 320).
    resize : int
        Shorter side the image is resized to before cropping (e.g. 335).
    augment : Augment
        The augmentation settings.
    seed : int
        Together with :attr:`epoch` and the index, seeds each item's augmentation.
    files : iterable of path-like, optional
        The image files to use, in this order, instead of the images listed in ``root``.
    max_pixels : int or None, default :data:`~maskrefine.io.options.DEFAULT_MAX_PIXELS`
        An image whose header claims more pixels is not decoded (InputError); None: no limit.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        image_size: int,
        resize: int,
        augment: Augment,
        seed: int,
        files: Iterable[str | os.PathLike[str]] | None = None,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.files = list(files) if files is not None else list_images(root)
        self.max_pixels = max_pixels
        self.image_size = image_size
        self.resize = resize
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        """Return the number of images."""
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        """Return ``(image (3, S, S) float32, index)``: read, augmented, normalised, randomly cropped.

        The augmentation is seeded by :attr:`seed`, :attr:`epoch` and ``index``.
        """
        g = item_generator(self.seed, self.epoch, index)
        image = torch.from_numpy(
            np.ascontiguousarray(read_image(self.files[index], max_pixels=self.max_pixels).transpose(2, 0, 1))
        )
        image = resize_shorter(image, self.resize).clamp(0, 1)
        aug = self.augment
        if torch.rand((), generator=g) < aug.jitter_p:
            image = colour_jitter(image, aug, g)
        if torch.rand((), generator=g) < aug.grayscale_p:
            image = to_grayscale(image)
        image = normalize(image)
        height, width = image.shape[-2:]
        top = int(torch.randint(0, height - self.image_size + 1, (), generator=g))
        left = int(torch.randint(0, width - self.image_size + 1, (), generator=g))
        image = image[:, top : top + self.image_size, left : left + self.image_size]
        if torch.rand((), generator=g) < aug.flip_p:
            image = image.flip(-1)
        return image.contiguous(), index
