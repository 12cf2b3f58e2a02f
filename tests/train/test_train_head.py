"""Sempart head: parameter count, shapes, the no-grad teacher fine branch."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")

from maskrefine.train.sempart import SempartHead  # noqa: E402


def test_parameter_count_matches_reference():
    # PROTOCOL §5.2: segmenterNetRGB(384, 1, 64, patch_size=8) has 748,165 parameters.
    assert sum(p.numel() for p in SempartHead(384, 64, 8).parameters()) == 748_165


@pytest.mark.parametrize("stride, grid", [(8, 5), (16, 3), (2, 4)])
def test_shapes(stride, grid):
    head = SempartHead(32, 16, stride)
    out = head(torch.randn(2, 32, grid, grid + 1), torch.randn(2, 3, grid * stride, (grid + 1) * stride))
    assert out.coarse.shape == (2, 1, grid, grid + 1)
    assert out.fine.shape == (2, 1, grid * stride, (grid + 1) * stride)


def test_errors():
    with pytest.raises(ValueError, match="power of two"):
        SempartHead(32, stride=14)
    with pytest.raises(ValueError, match="stride"):
        SempartHead(32)(torch.randn(1, 32, 4, 4), torch.randn(1, 3, 31, 32))


def test_fine_without_grad_same_values():
    torch.manual_seed(0)
    head = SempartHead(16, 8, 8).eval()
    feats, image = torch.randn(1, 16, 3, 3), torch.randn(1, 3, 24, 24)
    a = head(feats, image)
    b = head(feats, image, fine_grad=False)
    assert torch.equal(a.fine, b.fine) and torch.equal(a.coarse, b.coarse)
    assert a.fine.requires_grad and not b.fine.requires_grad and b.coarse.requires_grad


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"in_dim": "a"}, TypeError, "`in_dim` must be an integer"),  # a string-formatting TypeError before
        ({"in_dim": 0}, ValueError, "`in_dim` must be an integer in"),  # accepted, zero-element weights
        ({"hidden": 2.5}, TypeError, "`hidden` must be an integer"),
        ({"depth": 0}, ValueError, "`depth`"),
        ({"stride": "8"}, TypeError, "`stride` must be an integer"),
        ({"fine_channels": 8}, TypeError, "`fine_channels` must be two channel counts"),
        ({"fine_channels": (8, 0)}, ValueError, "`fine_channels`"),
    ],
)
def test_sizes_are_checked(kwargs, error, pattern):
    settings = {"in_dim": 32, "hidden": 16, "stride": 8, **kwargs}
    in_dim, hidden, stride = settings.pop("in_dim"), settings.pop("hidden"), settings.pop("stride")
    with pytest.raises(error, match=pattern):
        SempartHead(in_dim, hidden, stride, **settings)


def test_model_and_backbone_builders_check_their_arguments():
    from maskrefine.train.model import build_model
    from maskrefine.train.vit import PixelBackbone, vit_from_arch

    with pytest.raises(TypeError, match="`cfg` must be a TrainConfig; got None"):  # AttributeError before
        build_model(None)
    with pytest.raises(ValueError, match="`patch_size` must be an integer in"):  # ZeroDivisionError before
        vit_from_arch("vit_tiny", 0)
    with pytest.raises(TypeError, match="`patch_size` must be an integer"):
        vit_from_arch("vit_tiny", "8")
    with pytest.raises(ValueError, match="`num_register_tokens`"):
        vit_from_arch("vit_tiny", 16, num_register_tokens=-1)
    with pytest.raises(ValueError, match="`position_weight` must be a finite number"):  # NaN was accepted
        PixelBackbone(position_weight=float("nan"))
    with pytest.raises(TypeError, match="`patch_size` must be an integer"):
        PixelBackbone(patch_size=8.0)
    assert vit_from_arch("vit_tiny", 16).patch_embed.proj.kernel_size == (16, 16)
