"""Sempart segmentation head on frozen patch features (docs/training.md §2).

``SempartHead(384, hidden=64, stride=8)`` has 748,165 parameters, as the paper repository's
``segmenterNetRGB(384, 1, 64, patch_size=8)``:

1. 1x1 conv D -> 64; 2. a 2-layer pre-norm token transformer (2 heads of 64, qkv without bias, MLP 64-64,
no position embedding); 3. coarse branch: 1x1 conv 64 -> 1 on the token grid; 4. fine branch: log2(stride)
stages of bilinear x2 upsampling, concatenation of the normalised RGB image at that scale and conv3x3 + BN +
LeakyReLU(0.01) (192, 128, 128, … channels; the last stage has a second conv 128 -> 128); 5. the full-size
RGB concatenated again and a 1x1 conv -> fine logits. The fine branch starts from the transformer output.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from maskrefine._checks import check_int_range, short_repr

__all__ = ["SempartHead", "SempartOutput"]


class _TokenAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.scale = dim_head**-0.5
        self.norm = nn.LayerNorm(dim)
        self.to_qkv = nn.Linear(dim, inner * 3, bias=False)
        self.to_out = nn.Linear(inner, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = self.to_qkv(self.norm(x)).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.to_out((attn @ v).transpose(1, 2).reshape(b, n, -1))


class _TokenMlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.norm(x))


def _conv_bn(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.01)]


class SempartOutput(tuple):
    """``(coarse_logits (B,1,h,w), fine_logits (B,1,H,W))``."""

    __slots__ = ()

    @property
    def coarse(self) -> torch.Tensor:
        """Coarse logits on the feature grid, shape (B, 1, h, w)."""
        return self[0]

    @property
    def fine(self) -> torch.Tensor:
        """Fine logits at the image size, shape (B, 1, H, W)."""
        return self[1]


class SempartHead(nn.Module):
    """Coarse + fine Sempart head.

    Forward: ``head(features (B, D, h, w), image (B, 3, h*stride, w*stride))`` ->
    :class:`SempartOutput` of logits. The image is ImageNet-normalised.

    Parameters
    ----------
    in_dim : int
        Feature width D of the backbone (384 for ViT-S).
    hidden : int, default 64
        Width of the 1x1 projection of the features and of the token transformer.
    stride : int, default 8
        Pixels per feature cell; a power of two >= 2 (log2(stride) upsampling stages).
    depth : int, default 2
        Number of token transformer layers.
    heads : int, default 2
        Attention heads per layer.
    dim_head : int, default 64
        Width of each attention head.
    fine_channels : (int, int), default (192, 128)
        Width of the first upsampling stage and of the later ones (the reference's values; smaller
        widths make CPU demos fast).

    Raises
    ------
    TypeError, ValueError
        A size that is not an integer in [1, 65536] (``stride``: a power of two in [2, 1024]), or
        ``fine_channels`` not two of them.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: int = 64,
        stride: int = 8,
        *,
        depth: int = 2,
        heads: int = 2,
        dim_head: int = 64,
        fine_channels: tuple[int, int] = (192, 128),
    ) -> None:
        super().__init__()
        sizes = {"in_dim": in_dim, "hidden": hidden, "depth": depth, "heads": heads, "dim_head": dim_head}
        for name, value in sizes.items():
            check_int_range(value, name, 1, 1 << 16)
        check_int_range(stride, "stride", 2, 1 << 10)
        if stride & (stride - 1):
            raise ValueError(f"stride must be a power of two >= 2; got {stride}")
        if not isinstance(fine_channels, tuple | list) or len(fine_channels) != 2:
            raise TypeError(f"`fine_channels` must be two channel counts; got {short_repr(fine_channels)}")
        for value in fine_channels:
            check_int_range(value, "fine_channels", 1, 1 << 16)
        self.stride = stride
        self.proj = nn.Conv2d(in_dim, hidden, 1)
        self.layers = nn.ModuleList(
            nn.ModuleList((_TokenAttention(hidden, heads, dim_head), _TokenMlp(hidden, hidden)))
            for _ in range(depth)
        )
        self.coarse = nn.Conv2d(hidden, 1, 1)
        n_stages = stride.bit_length() - 1
        stages = []
        c_in = hidden
        for i in range(n_stages):
            c_out = fine_channels[0] if i == 0 else fine_channels[1]
            layers = _conv_bn(c_in + 3, c_out)
            if i == n_stages - 1:
                layers += _conv_bn(c_out, c_out)
            stages.append(nn.Sequential(*layers))
            c_in = c_out
        self.stages = nn.ModuleList(stages)
        self.fine = nn.Conv2d(c_in + 3, 1, 1)

    def forward(
        self, features: torch.Tensor, image: torch.Tensor, *, fine_grad: bool = True
    ) -> SempartOutput:
        """Coarse and fine logits for features (B, D, h, w) and the normalised image (B, 3, H, W).

        Parameters
        ----------
        features : torch.Tensor, shape (B, D, h, w)
            Patch features of the backbone.
        image : torch.Tensor, shape (B, 3, h*stride, w*stride)
            The ImageNet-normalised image.
        fine_grad : bool, default True
            False runs the fine branch without autograd (the crop-loss teacher: its fine mask only feeds
            a detached target, so this changes no value and no gradient, and saves a backward).

        Returns
        -------
        SempartOutput
            ``(coarse, fine)``: coarse logits (B, 1, h, w) and fine logits (B, 1, H, W).

        Raises
        ------
        ValueError
            The image size is not the feature grid times the stride.
        """
        b, _, h, w = features.shape
        if image.shape[-2:] != (h * self.stride, w * self.stride):
            raise ValueError(
                f"image size {tuple(image.shape[-2:])} must be the feature grid {(h, w)} times the stride "
                f"{self.stride}"
            )
        x = self.proj(features).flatten(2).transpose(1, 2)
        for layer in self.layers:
            attn, mlp = cast(nn.ModuleList, layer)  # (attention, MLP) pairs, see __init__
            x = x + attn(x)
            x = x + mlp(x)
        x = x.transpose(1, 2).reshape(b, -1, h, w)
        coarse = self.coarse(x)
        with torch.set_grad_enabled(fine_grad and torch.is_grad_enabled()):
            fine = self._fine(x, image, h, w)
        return SempartOutput((coarse, fine))

    def _fine(self, x: torch.Tensor, image: torch.Tensor, h: int, w: int) -> torch.Tensor:
        y = x
        for i, stage in enumerate(self.stages):
            scale = 2 ** (i + 1)
            y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
            rgb = image if scale == self.stride else _resize(image, (h * scale, w * scale))
            y = stage(torch.cat((y, rgb), dim=1))
        return self.fine(torch.cat((y, image), dim=1))


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
