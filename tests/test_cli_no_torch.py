"""`maskrefine --help` and the train/predict command definitions never import torch."""

from __future__ import annotations

import subprocess
import sys


def test_cli_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from maskrefine.cli import main\n"
        "for args in (['--help'], ['train', '--help'], ['predict', '--help']):\n"
        "    result = CliRunner().invoke(main, args)\n"
        "    assert result.exit_code == 0, result.output\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_train_without_torch_is_a_usage_error(tmp_path):
    """With torch hidden, `maskrefine train` says which extra to install (exit 2), no traceback."""
    (tmp_path / "images").mkdir()
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # import torch -> ImportError\n"
        "from maskrefine.cli import main\n"
        "main(prog_name='maskrefine')\n"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "train",
            "--images",
            str(tmp_path / "images"),
            "--out",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2, out.stderr
    assert "pip install 'torch==2.13.0' 'maskrefine[torch]'" in out.stderr and "Traceback" not in out.stderr
    assert "in a clone: pip install 'torch==2.13.0' -e '.[torch]'" in out.stderr


def test_bad_training_settings_are_refused_before_torch_is_imported(tmp_path):
    """A setting `maskrefine.train.config` refuses costs no torch import (about 4 s on 2 cores)."""
    import pytest

    pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")
    (tmp_path / "images").mkdir()
    (tmp_path / "bad.toml").write_text("lr = -1\n")
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from maskrefine.cli import main\n"
        f"base = ['train', '--images', {str(tmp_path / 'images')!r}, '--out', {str(tmp_path / 'run')!r}]\n"
        "for extra in (['--image-size', '384'], ['--config', sys.argv[1]]):\n"
        "    result = CliRunner().invoke(main, base + extra)\n"
        "    print(result.exit_code, 'torch' in sys.modules, result.output.splitlines()[-1])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "bad.toml")], capture_output=True, text=True, check=True
    )
    lines = out.stdout.splitlines()
    assert lines[0].startswith("2 False ") and "image_size (384)" in lines[0], out.stdout
    assert lines[1].startswith("2 False ") and "bad.toml" in lines[1] and "lr" in lines[1], out.stdout
    import torch  # noqa: F401  (the train package still works once torch is there)

    from maskrefine.train import TrainConfig, train

    assert callable(train) and TrainConfig.__name__ == "TrainConfig"
