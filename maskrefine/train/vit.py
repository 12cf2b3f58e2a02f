"""Frozen self-supervised ViT backbones (DINO v1 and DINOv2 key layouts) and a weight-free ``pixels`` one.

Every backbone maps a batch of ImageNet-normalised images ``(B, 3, H, W)`` to patch features
``(B, D, h, w)`` on the grid the Sempart head works on (:attr:`Backbone.stride` pixels per cell).

* :class:`VisionTransformer` follows the DINO v1 layout (patch embedding, class token, position table
  interpolated bicubically to the input grid, pre-norm blocks, LayerNorm eps 1e-6) and, with
  ``layer_scale=True`` and optional register tokens, the DINOv2 layout. The features are the **keys of the
  last block** (docs/training.md §1): the k third of that block's qkv projection of its LayerNorm'd
  input, heads concatenated, class and register tokens dropped. Blocks after the last key projection are
  not run.
* **Patch 14 (DINOv2).** The head of docs/training.md §2 upsamples by 2 per stage, so it needs a power-of-two
  stride. For a patch size that is not a power of two the image is resized (bilinear) to the nearest
  multiple of the patch size for the ViT, and the token grid is then resized (bilinear,
  ``align_corners=False``) to ``input / 8`` before the head: the head always sees an 8-pixel grid, as with
  DINO ViT-S/8. Patch 8 and 16 are used as they are (stride 8 and 16).
* :class:`PixelBackbone` needs no weights: per-patch colour mean and standard deviation plus the patch
  position and its distance from the centre, standardised per image. It lets the whole pipeline train on
  a CPU in minutes (tests, demo).
"""

from __future__ import annotations

import math
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from maskrefine._checks import check_float_range, check_int_range, short_repr
from maskrefine.train.config import ARCHS

__all__ = [
    "ARCHS",
    "Backbone",
    "VisionTransformer",
    "PixelBackbone",
    "vit_from_arch",
    "head_stride",
]

#: Most register tokens :func:`vit_from_arch` builds (DINOv2 "with registers" uses 4).
MAX_REGISTER_TOKENS = 1 << 10


def head_stride(patch_size: int) -> int:
    """Grid stride the head works on for a backbone patch size: the patch size if a power of two, else 8."""
    return patch_size if patch_size & (patch_size - 1) == 0 else 8


class Backbone(nn.Module):
    """Interface: ``forward(images) -> features (B, D, H/stride, W/stride)``.

    Attributes: ``embed_dim``, ``stride``, ``patch_size``, ``kind``.
    """

    embed_dim: int
    stride: int
    patch_size: int
    kind: str


class _Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, qkv_bias: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        x = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(x)


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _LayerScale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), 1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class _Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, layer_scale: bool) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _Attention(dim, num_heads, qkv_bias)
        self.ls1 = _LayerScale(dim) if layer_scale else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = _Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = _LayerScale(dim) if layer_scale else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class _PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionTransformer(Backbone):
    """ViT in the DINO v1 (``layer_scale=False``) or DINOv2 (``layer_scale=True``) state-dict layout.

    Parameters
    ----------
    patch_size : int
        8, 14 or 16 (any size >= 1 works; non powers of two go through the /8 grid, see the module doc).
    embed_dim, depth, num_heads : int
        Transformer width, number of blocks, attention heads.
    pos_grid : int
        Side of the stored square position table (DINO v1: 224 / patch, i.e. 28 or 14; DINOv2: 37).
    mlp_ratio : float, default 4.0
        Hidden width of each block's MLP, as a multiple of ``embed_dim``.
    layer_scale : bool, default False
        DINOv2 LayerScale (``ls1.gamma``, ``ls2.gamma``) and a ``mask_token`` parameter.
    num_register_tokens : int, default 0
        DINOv2 "with registers" tokens, placed after the class token.

    Raises
    ------
    ValueError
        ``embed_dim`` is not divisible by ``num_heads``.

    Notes
    -----
    The position table is interpolated as DINO does it: bicubic, ``scale_factor = (n + 0.1) / grid``
    (the 0.1 avoids a rounding error in the output size), skipped when the grid already matches.
    """

    def __init__(
        self,
        *,
        patch_size: int,
        embed_dim: int,
        depth: int,
        num_heads: int,
        pos_grid: int,
        mlp_ratio: float = 4.0,
        layer_scale: bool = False,
        num_register_tokens: int = 0,
    ) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.kind = "dinov2" if layer_scale else "dino"
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.stride = head_stride(patch_size)
        self.num_register_tokens = num_register_tokens
        self.patch_embed = _PatchEmbed(patch_size, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + pos_grid * pos_grid, embed_dim))
        if num_register_tokens:
            self.register_tokens = nn.Parameter(torch.zeros(1, num_register_tokens, embed_dim))
        if layer_scale:
            self.mask_token = nn.Parameter(torch.zeros(1, embed_dim))
        self.blocks = nn.ModuleList(
            _Block(embed_dim, num_heads, mlp_ratio, True, layer_scale) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.apply(_init_weights)

    def interpolate_pos_encoding(self, rows: int, cols: int) -> torch.Tensor:
        """Position table for a ``rows x cols`` patch grid, shape (1, 1 + rows*cols, D).

        Parameters
        ----------
        rows : int
            Patch rows of the grid.
        cols : int
            Patch columns of the grid.

        Returns
        -------
        torch.Tensor, shape (1, 1 + rows*cols, D)
            The class token's position, then the stored table interpolated to the grid (bicubic, see the
            class notes); the stored table itself when the grid already matches it.
        """
        pos = self.pos_embed
        grid = int(math.isqrt(pos.shape[1] - 1))
        if rows == grid and cols == grid:
            return pos
        table = pos[:, 1:].reshape(1, grid, grid, -1).permute(0, 3, 1, 2)
        table = F.interpolate(
            table.float(),
            scale_factor=((rows + 0.1) / grid, (cols + 0.1) / grid),
            mode="bicubic",
            align_corners=False,
        ).to(pos.dtype)
        table = table.permute(0, 2, 3, 1).reshape(1, rows * cols, -1)
        return torch.cat((pos[:, :1], table), dim=1)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Input tokens (class, registers, patches) with positions, shape (B, 1 + R + h*w, D).

        Parameters
        ----------
        x : torch.Tensor, shape (B, 3, H, W)
            ImageNet-normalised images; H and W multiples of ``patch_size``.

        Returns
        -------
        torch.Tensor, shape (B, 1 + R + h*w, D)
            The class token, the R register tokens (no position added) and the h*w patch tokens, with
            h = H / patch_size and w = W / patch_size.
        """
        b, _, height, width = x.shape
        rows, cols = height // self.patch_size, width // self.patch_size
        patches = self.patch_embed(x)
        tokens = torch.cat((self.cls_token.expand(b, -1, -1), patches), dim=1)
        tokens = tokens + self.interpolate_pos_encoding(rows, cols)
        if self.num_register_tokens:
            tokens = torch.cat((tokens[:, :1], self.register_tokens.expand(b, -1, -1), tokens[:, 1:]), dim=1)
        return tokens

    def last_keys(self, x: torch.Tensor) -> torch.Tensor:
        """Keys of the last block for the patch tokens, shape (B, h*w, D).

        Parameters
        ----------
        x : torch.Tensor, shape (B, 3, H, W)
            ImageNet-normalised images; H and W multiples of ``patch_size``.

        Returns
        -------
        torch.Tensor, shape (B, h*w, D)
            The key projection of the last block's normalised input, for the patch tokens only (class
            and register tokens dropped).
        """
        tokens = self.tokens(x)
        for block in self.blocks[:-1]:
            tokens = block(tokens)
        last = cast(_Block, self.blocks[-1])  # the ModuleList holds _Block instances only
        keys = F.linear(
            last.norm1(tokens),
            last.attn.qkv.weight[self.embed_dim : 2 * self.embed_dim],
            None if last.attn.qkv.bias is None else last.attn.qkv.bias[self.embed_dim : 2 * self.embed_dim],
        )
        return keys[:, 1 + self.num_register_tokens :]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Key features (B, D, H/stride, W/stride) of ImageNet-normalised images (B, 3, H, W).

        Parameters
        ----------
        images : torch.Tensor, shape (B, 3, H, W)
            ImageNet-normalised images. Sides that are not multiples of ``patch_size`` are first resized
            bilinearly to the nearest multiples.

        Returns
        -------
        torch.Tensor, shape (B, D, H // stride, W // stride)
            Last-block keys of the patch tokens on the head's grid (resized bilinearly when the patch
            grid differs from it).
        """
        b, _, height, width = images.shape
        p = self.patch_size
        x = images
        if height % p or width % p:  # only for patch sizes that are not powers of two (see module doc)
            size = (max(p, round(height / p) * p), max(p, round(width / p) * p))
            x = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
        rows, cols = x.shape[-2] // p, x.shape[-1] // p
        feats = self.last_keys(x).transpose(1, 2).reshape(b, self.embed_dim, rows, cols)
        target = (height // self.stride, width // self.stride)
        if (rows, cols) != target:
            feats = F.interpolate(feats, size=target, mode="bilinear", align_corners=False)
        return feats


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def vit_from_arch(
    arch: str, patch_size: int, *, layout: str = "dino", num_register_tokens: int = 0
) -> VisionTransformer:
    """Randomly initialised ViT of a known size (:data:`ARCHS`) in the DINO or DINOv2 layout.

    ``layout`` is ``"dino"`` or ``"dinov2"``; the position table is 224/patch (DINO) or 518/patch
    (DINOv2) on a side.

    Parameters
    ----------
    arch : {"vit_tiny", "vit_small", "vit_base", "vit_large"}
        Size: width, depth and heads from :data:`ARCHS`.
    patch_size : int
        Patch size in pixels, at most the side of the layout's position table (224 or 518).
    layout : {"dino", "dinov2"}, default "dino"
        State-dict layout; ``"dinov2"`` adds LayerScale and a ``mask_token``.
    num_register_tokens : int, default 0
        DINOv2 "with registers" tokens.

    Returns
    -------
    VisionTransformer
        The new model (training mode, as built by ``nn.Module``).

    Raises
    ------
    ValueError, TypeError
        An unknown ``arch`` or ``layout``; a ``patch_size`` or ``num_register_tokens`` that is not an
        integer in range.
    """
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {', '.join(ARCHS)}; got {short_repr(arch)}")
    if layout not in ("dino", "dinov2"):
        raise ValueError(f"layout must be 'dino' or 'dinov2'; got {short_repr(layout)}")
    side = 518 if layout == "dinov2" else 224
    patch_size = check_int_range(patch_size, "patch_size", 1, side)
    num_register_tokens = check_int_range(num_register_tokens, "num_register_tokens", 0, MAX_REGISTER_TOKENS)
    dim, depth, heads = ARCHS[arch]
    grid = side // patch_size
    return VisionTransformer(
        patch_size=patch_size,
        embed_dim=dim,
        depth=depth,
        num_heads=heads,
        pos_grid=grid,
        layer_scale=layout == "dinov2",
        num_register_tokens=num_register_tokens,
    )


class PixelBackbone(Backbone):
    """Weight-free features of each patch: RGB mean and std, (row, col) position, distance from the centre.

    Each of the 9 channels is standardised over the patches of its image (zero mean, unit variance), so
    the cosine similarity used by the NCut affinity compares colours relative to the image. The (row,
    col) channels are multiplied by ``position_weight``, the centre distance by ``centre_weight`` (a
    centre prior: with it, the NCut of 16 SOD images at 64 px, solved by the Fiedler vector, reaches a
    mean IoU of ~0.39 against ~0.30 without; a centred box of half the height and width gets 0.37).

    Parameters
    ----------
    patch_size : int, default 8
        Power of two (the head's stride).
    position_weight : float, default 0.5
        Factor of the (row, col) position channels.
    centre_weight : float, default 2.0
        Factor of the distance-from-centre channel.

    Raises
    ------
    ValueError
        ``patch_size`` is not a power of two.
    """

    def __init__(self, patch_size: int = 8, position_weight: float = 0.5, centre_weight: float = 2.0) -> None:
        super().__init__()
        patch_size = check_int_range(patch_size, "patch_size", 1, 1 << 10)
        if patch_size & (patch_size - 1):
            raise ValueError(f"the pixels backbone needs a power-of-two patch size; got {patch_size}")
        self.kind = "pixels"
        self.patch_size = self.stride = patch_size
        self.embed_dim = 9
        self.position_weight = check_float_range(position_weight, "position_weight", 0.0)
        self.centre_weight = check_float_range(centre_weight, "centre_weight", 0.0)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Features (B, 9, H/p, W/p) of ImageNet-normalised images (B, 3, H, W).

        Parameters
        ----------
        images : torch.Tensor, shape (B, 3, H, W)
            ImageNet-normalised images.

        Returns
        -------
        torch.Tensor, shape (B, 9, H // p, W // p)
            Per patch: RGB mean (3), RGB std (3), row, column and centre distance, each channel
            standardised over the image's patches and weighted.
        """
        p = self.patch_size
        mean = F.avg_pool2d(images, p)
        std = (F.avg_pool2d(images * images, p) - mean * mean).clamp_min(0).sqrt()
        b, _, rows, cols = mean.shape
        ys = torch.linspace(-1, 1, rows, device=images.device, dtype=images.dtype)
        xs = torch.linspace(-1, 1, cols, device=images.device, dtype=images.dtype)
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        pos = torch.stack((yy, xx, (yy * yy + xx * xx).sqrt())).expand(b, 3, rows, cols)
        feats = torch.cat((mean, std, pos), dim=1)
        centred = feats - feats.mean(dim=(2, 3), keepdim=True)
        scaled = centred / (centred.std(dim=(2, 3), keepdim=True) + 1e-6)
        weights = torch.ones(9, device=images.device, dtype=images.dtype)
        weights[6:8] = self.position_weight
        weights[8] = self.centre_weight
        return scaled * weights.view(1, 9, 1, 1)
