"""predict when its output folder is replaced by a symlink to the images folder during the run.

The outputs used to be written by path: ``out/<stem>.png`` then named the input image ``<stem>.png``,
which ``--overwrite`` replaced (audit s12-crash #1, the apply case; predict wrote the same way).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")

from _train_helpers import disc_images  # noqa: E402

from maskrefine.train import preset, train  # noqa: E402
from maskrefine.train.predict import predict_folder  # noqa: E402


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("save_coarse", [False, True])
def test_predict_overwrite_never_writes_into_the_folder_out_is_re_pointed_to(tmp_path, save_coarse) -> None:
    images, _ = disc_images(tmp_path)
    ckpt = train(
        preset("tiny", backbone="pixels", head_fine_channels=(8, 8), max_steps=1), images, tmp_path / "run"
    ).checkpoint
    before = _hashes(images)
    out, moved = tmp_path / "out", tmp_path / "out.old"
    names = sorted(before)

    def progress(done: int, total: int) -> None:
        if done == 1:  # mv out out.old; ln -s images out
            out.rename(moved)
            out.symlink_to(images, target_is_directory=True)

    report = predict_folder(images, ckpt, out, overwrite=True, save_coarse=save_coarse, progress=progress)
    assert os.path.islink(out)  # the swap happened during the run
    assert _hashes(images) == before  # no input replaced, nothing added (no coarse/ either)
    assert report.ok, [outcome.error for outcome in report.outcomes if outcome.error]
    assert sorted(p.name for p in moved.iterdir() if p.is_file()) == names  # all in the folder opened
    if save_coarse:
        assert sorted(p.name for p in (moved / "coarse").iterdir()) == names
