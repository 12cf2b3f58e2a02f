"""ViT layouts and the safe checkpoint loader: prefixes, wrappers, shapes, refusals."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")

from _train_helpers import tiny_vit  # noqa: E402

from maskrefine.errors import ConfigError  # noqa: E402
from maskrefine.train.checkpoint import load_vit  # noqa: E402
from maskrefine.train.vit import PixelBackbone, vit_from_arch  # noqa: E402


def _features_equal(a, b, size=(48, 64)):
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return torch.equal(a(x), b(x))


def test_bare_state_dict_round_trip(tiny_vit_file):
    model, report = load_vit(tiny_vit_file)
    assert report.spec.embed_dim == 64 and report.spec.depth == 2 and report.spec.patch_size == 8
    assert report.spec.pos_grid == 4 and not report.spec.layer_scale and report.wrapper is None
    assert not any(p.requires_grad for p in model.parameters())
    assert _features_equal(model, tiny_vit())


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: {f"module.{k}": v for k, v in sd.items()},
        lambda sd: {f"backbone.{k}": v for k, v in sd.items()},
        # DINO training checkpoint: teacher/student dicts with module.backbone.* and the projection head
        lambda sd: {
            "teacher": {
                **{f"module.backbone.{k}": v for k, v in sd.items()},
                "module.head.last_layer.weight": torch.ones(3, 3),
            },
            "student": {"module.backbone.cls_token": torch.zeros(1)},
            "epoch": 100,
        },
        lambda sd: {"state_dict": {f"module.{k}": v for k, v in sd.items()}},
    ],
    ids=["module", "backbone", "teacher", "state_dict"],
)
def test_prefixes_and_wrappers(tmp_path, wrap):
    path = tmp_path / "ckpt.pth"
    torch.save(wrap(tiny_vit().state_dict()), path)
    model, report = load_vit(path)
    assert _features_equal(model, tiny_vit())


def test_teacher_wrapper_reports_ignored_head(tmp_path):
    sd = tiny_vit().state_dict()
    torch.save({"teacher": {**sd, "head.mlp.0.weight": torch.ones(2, 2)}}, tmp_path / "t.pth")
    _, report = load_vit(tmp_path / "t.pth")
    assert report.wrapper == "teacher" and report.ignored == ["head.mlp.0.weight"]


@pytest.mark.parametrize("registers", [0, 4])
def test_dinov2_layout_patch14(tmp_path, registers):
    reference = tiny_vit(layout="dinov2", patch=14, registers=registers)
    sd = reference.state_dict()
    assert "blocks.0.ls1.gamma" in sd and "mask_token" in sd
    assert ("register_tokens" in sd) == bool(registers)
    torch.save(sd, tmp_path / "v2.pth")
    model, report = load_vit(tmp_path / "v2.pth")
    assert report.spec.layout == "dinov2" and report.spec.patch_size == 14
    assert report.spec.num_register_tokens == registers
    # patch 14: the token grid is resized to input/8 for the head
    assert model.stride == 8
    x = torch.randn(1, 3, 64, 80)
    with torch.no_grad():
        feats = model(x)
    assert feats.shape == (1, 64, 8, 10)
    assert _features_equal(model, reference)


def test_dinov2_chunked_blocks(tmp_path):
    sd = tiny_vit(layout="dinov2", patch=14).state_dict()
    chunked = {}
    for k, v in sd.items():
        if k.startswith("blocks."):
            i, rest = k.split(".", 2)[1:]
            k = f"blocks.0.{i}.{rest}"
        chunked[k] = v
    torch.save(chunked, tmp_path / "chunked.pth")
    model, _ = load_vit(tmp_path / "chunked.pth")
    assert _features_equal(model, tiny_vit(layout="dinov2", patch=14))


def test_full_vit_small_8_shape(tmp_path):
    """The official ViT-S/8 layout (random weights): arch and patch inferred from the shapes."""
    torch.manual_seed(0)
    reference = vit_from_arch("vit_small", 8)
    keys = set(reference.state_dict())
    assert {
        "cls_token",
        "pos_embed",
        "patch_embed.proj.weight",
        "blocks.11.attn.qkv.bias",
        "norm.weight",
    } <= keys
    assert reference.pos_embed.shape == (1, 1 + 28 * 28, 384)
    path = tmp_path / "dino_deitsmall8_pretrain.pth"
    torch.save(reference.state_dict(), path)
    model, report = load_vit(path, arch="vit_small", patch_size=8)
    assert report.spec.arch == "vit_small" and report.spec.num_heads == 6
    x = torch.randn(1, 3, 320, 320)
    with torch.no_grad():
        feats = model(x)
    assert feats.shape == (1, 384, 40, 40)  # keys of the last block on the 40x40 grid (PROTOCOL §5.1)
    with torch.no_grad():
        # features = k part of the last block's qkv on its normalised input
        tokens = model.tokens(x)
        for block in model.blocks[:-1]:
            tokens = block(tokens)
        qkv = model.blocks[-1].attn.qkv(model.blocks[-1].norm1(tokens))
        keys_ref = qkv[:, 1:, 384:768].transpose(1, 2).reshape(1, 384, 40, 40)
    torch.testing.assert_close(feats, keys_ref)


def test_position_table_interpolation():
    vit = tiny_vit()
    assert vit.interpolate_pos_encoding(4, 4) is vit.pos_embed  # stored grid: unchanged
    table = vit.interpolate_pos_encoding(5, 7)
    assert table.shape == (1, 1 + 35, 64)
    assert torch.equal(table[:, 0], vit.pos_embed[:, 0])
    grid = vit.pos_embed[:, 1:].reshape(1, 4, 4, 64).permute(0, 3, 1, 2)
    expected = torch.nn.functional.interpolate(
        grid, scale_factor=(5.1 / 4, 7.1 / 4), mode="bicubic", align_corners=False
    )
    torch.testing.assert_close(table[:, 1:], expected.permute(0, 2, 3, 1).reshape(1, 35, 64))


def test_layernorm_eps():
    assert all(m.eps == 1e-6 for m in tiny_vit().modules() if isinstance(m, torch.nn.LayerNorm))


# ----------------------------------------------------------------------------------------- refusals


def test_shape_mismatch_names_the_key(tmp_path):
    sd = tiny_vit().state_dict()
    sd["blocks.1.mlp.fc2.weight"] = torch.zeros(64, 100)
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(
        ConfigError,
        match=r"bad\.pth.*'blocks\.1\.mlp\.fc2\.weight' has shape \(64, 100\); expected \(64, 256\)",
    ):
        load_vit(tmp_path / "bad.pth")


def test_missing_and_unexpected_keys_named(tmp_path):
    sd = tiny_vit().state_dict()
    del sd["blocks.1.norm2.bias"]
    sd["blocks.0.extra.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "keys.pth")
    with pytest.raises(
        ConfigError,
        match=r"missing keys: 'blocks\.1\.norm2\.bias'.*unexpected keys: 'blocks\.0\.extra\.weight'",
    ):
        load_vit(tmp_path / "keys.pth")


def test_not_a_vit(tmp_path):
    torch.save({"weight": torch.zeros(3)}, tmp_path / "lin.pth")
    with pytest.raises(ConfigError, match="missing key 'cls_token'"):
        load_vit(tmp_path / "lin.pth")
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(ConfigError, match="expected a state dict"):
        load_vit(tmp_path / "list.pth")


def test_wrapped_and_prefixed_state_dicts_are_explained(tmp_path):
    # the messages were "holds no tensors" or "missing key 'cls_token': not a ViT" alone
    sd = tiny_vit().state_dict()
    torch.save({"student": sd, "epoch": torch.tensor(3)}, tmp_path / "student.pth")
    with pytest.raises(
        ConfigError,
        match=r"student\.pth: holds no ViT tensors at its top level; they are under 'student', and "
        r"maskrefine reads the weights directly or under 'teacher', 'state_dict', 'model'",
    ):
        load_vit(tmp_path / "student.pth")
    torch.save({"state_dict": {"model": sd}}, tmp_path / "nested.pth")
    with pytest.raises(
        ConfigError, match=r"no ViT tensors under its 'state_dict' entry; they are under 'model'"
    ):
        load_vit(tmp_path / "nested.pth")
    torch.save({"state_dict": {"epoch": 1, "lr": 0.1}}, tmp_path / "keys.pth")
    with pytest.raises(
        ConfigError, match=r"no tensors under its 'state_dict' entry; its keys: 'epoch', 'lr'"
    ):
        load_vit(tmp_path / "keys.pth")
    torch.save({f"vit.{k}": v for k, v in sd.items()}, tmp_path / "prefixed.pth")
    with pytest.raises(
        ConfigError, match=r"missing key 'cls_token'.*it has 'vit\.cls_token': a prefix other"
    ):
        load_vit(tmp_path / "prefixed.pth")
    # a ViT at the top level next to other dicts still loads
    torch.save({**sd, "optimizer": {"lr": torch.tensor(0.1)}}, tmp_path / "extra.pth")
    assert load_vit(tmp_path / "extra.pth") is not None


def test_arch_and_patch_mismatch(tiny_vit_file):
    with pytest.raises(ConfigError, match="patch size 8, but patch size 16"):
        load_vit(tiny_vit_file, patch_size=16)
    with pytest.raises(ConfigError, match="arch 'vit_small'"):
        load_vit(tiny_vit_file, arch="vit_small")


class _RunsCode:
    """Unpickling this object would run ``os.system`` — weights_only loading must refuse it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"cls_token": torch.zeros(1, 1, 64), "payload": _RunsCode(marker)}, path)
    with pytest.raises(
        ConfigError, match=r"evil\.pth: refused: it holds pickled Python objects \(posix\.system\)"
    ):
        load_vit(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "kind", ["empty_string", "missing", "folder", "fifo", "empty_file", "url", "garbage"]
)
def test_bad_paths(tmp_path, kind):
    if kind == "empty_string":
        path, message = "", "empty path"
    elif kind == "missing":
        path, message = tmp_path / "nope.pth", r"nope\.pth: file not found"
    elif kind == "folder":
        path, message = tmp_path, "is a folder"
    elif kind == "fifo":
        path = tmp_path / "fifo.pth"
        os.mkfifo(path)
        message = "not a regular file"
    elif kind == "empty_file":
        path = tmp_path / "empty.pth"
        path.touch()
        message = r"empty\.pth: file is empty"
    elif kind == "url":
        path, message = "https://dl.fbaipublicfiles.com/dino/dino_deitsmall8_pretrain.pth", "never downloads"
    else:
        path = tmp_path / "garbage.pth"
        path.write_bytes(b"not a checkpoint at all")
        message = r"garbage\.pth: cannot read as a torch checkpoint"
    with pytest.raises(ConfigError, match=message):
        load_vit(path)


def test_pixel_backbone():
    backbone = PixelBackbone(8)
    feats = backbone(torch.randn(2, 3, 32, 48))
    assert feats.shape == (2, 9, 4, 6)
    torch.testing.assert_close(feats.mean(dim=(2, 3)), torch.zeros(2, 9), atol=1e-5, rtol=0)
    # colour: a red half and a blue half give two feature clusters with negative cosine
    image = torch.zeros(1, 3, 32, 32)
    image[0, 0, :, :16] = 2.0
    image[0, 2, :, 16:] = 2.0
    f = torch.nn.functional.normalize(PixelBackbone(8, position_weight=0.0, centre_weight=0.0)(image), dim=1)
    assert float((f[0, :, 0, 0] * f[0, :, 0, 3]).sum()) < 0 < float((f[0, :, 0, 0] * f[0, :, 3, 1]).sum())
    with pytest.raises(ValueError, match="power-of-two"):
        PixelBackbone(14)
