"""Fixtures of the trainer tests: tiny random ViT checkpoints in the official key layouts, a trained run."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")

from _train_helpers import disc_images, tiny_vit  # noqa: E402


@pytest.fixture
def tiny_vit_file(tmp_path: Path) -> Path:
    """A tiny DINO-layout ViT saved as a bare state dict (like dino_deitsmall8_pretrain.pth)."""
    path = tmp_path / "tiny_vit.pth"
    torch.save(tiny_vit().state_dict(), path)
    return path


@pytest.fixture(scope="session")
def sod_images(tmp_path_factory, sod_dir) -> Path:
    """A folder of symlinks to 8 SOD images of ../shared (skips when absent, see ``sod_dir``)."""
    folder = tmp_path_factory.mktemp("sod8")
    for image in sorted((sod_dir / "images").iterdir())[:8]:
        (folder / image.name).symlink_to(image.resolve())
    return folder


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Three synthetic images (:func:`disc_images`) and a pixels-backbone checkpoint trained for one step.

    ``(images folder, last.pt)``; one per test module.
    """
    from maskrefine.train import preset, train

    root = tmp_path_factory.mktemp("run")
    images, _ = disc_images(root)
    train(preset("tiny", backbone="pixels", head_fine_channels=(8, 8), max_steps=1), images, root / "run")
    return images, root / "run" / "last.pt"
