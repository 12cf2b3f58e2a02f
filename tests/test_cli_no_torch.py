"""`maskrefine --help` and the train/predict command definitions never import torch."""

from __future__ import annotations

import json
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


def test_bad_paths_of_train_and_predict_are_refused_before_torch_is_imported(tmp_path):
    """A bad folder, image or output path costs no torch import: each is refused (exit 2) without it."""
    import os

    import cv2
    import numpy as np
    import pytest

    pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(images / name), np.full((32, 48, 3), 90, np.uint8))
    one = tmp_path / "one"
    one.mkdir()
    cv2.imwrite(str(one / "a.png"), np.full((32, 48, 3), 90, np.uint8))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.txt").write_text("someone's file\n")
    ckpt = tmp_path / "last.pt"
    ckpt.write_bytes(b"not read: every path check comes first")
    os.mkfifo(tmp_path / "fifo.pt")
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "a.png").write_bytes(b"an earlier output")
    (tmp_path / "report-dir").mkdir()
    train = ["train", "--images", str(images)]
    predict = ["predict", "--images", str(images), "--checkpoint", str(ckpt)]
    cases = [
        (train + ["--out", str(images / "run")], "inside"),
        (train + ["--out", str(tmp_path / "busy")], "not empty"),
        (["train", "--images", str(one), "--out", str(tmp_path / "r1")], "at least 2 images"),
        (train + ["--out", str(tmp_path / "r2")], "needs --backbone-checkpoint"),
        (predict + ["--out", str(images / "out")], "inside"),
        (predict + ["--out", str(tmp_path / "done")], "already exist"),
        (predict + ["--out", str(tmp_path / "o1"), "--report", str(tmp_path / "report-dir")], "report"),
        (predict[:-1] + [str(tmp_path / "fifo.pt"), "--out", str(tmp_path / "o2")], "not a regular file"),
        (predict[:-1] + [str(tmp_path / "nope.pt"), "--out", str(tmp_path / "o3")], "not found"),
        # the backbone file's path too (was checked only after torch's import, seconds later)
        (
            predict + ["--out", str(tmp_path / "o4"), "--backbone-checkpoint", str(tmp_path / "nope.pth")],
            "not found",
        ),
        (
            predict + ["--out", str(tmp_path / "o5"), "--backbone-checkpoint", str(tmp_path / "done")],
            "is a folder",
        ),
        (
            predict + ["--out", str(tmp_path / "o6"), "--backbone-checkpoint", str(tmp_path / "fifo.pt")],
            "--backbone-checkpoint " + str(tmp_path / "fifo.pt") + ": is not a regular file",
        ),
    ]
    code = (
        "import json, sys\n"
        "from click.testing import CliRunner\n"
        "from maskrefine.cli import main\n"
        "for args in json.loads(sys.argv[1]):\n"
        "    result = CliRunner().invoke(main, args)\n"
        "    print(json.dumps([result.exit_code, 'torch' in sys.modules, result.output]))\n"
    )
    argv = json.dumps([args for args, _ in cases])
    out = subprocess.run(
        [sys.executable, "-c", code, argv], capture_output=True, text=True, check=True, timeout=120
    )
    results = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(results) == len(cases), out.stdout + out.stderr
    for (args, expected), (code_, torch_loaded, output) in zip(cases, results, strict=True):
        assert code_ == 2 and not torch_loaded, (args, code_, torch_loaded, output)
        assert expected in output and "Traceback" not in output, (args, output)


def test_a_torch_that_cannot_be_imported_is_named_with_its_error(tmp_path):
    """An installed but broken torch (a missing shared library): BackendUnavailableError with the cause.

    The API (a lazy name of maskrefine.train) and `maskrefine train` / `predict` (exit 2, one message,
    no traceback) say why torch cannot be imported, after their torch-free checks passed.
    """
    import cv2
    import numpy as np

    fake = tmp_path / "site" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "raise ImportError('libtorch_cpu.so: cannot open shared object file: No such file or directory')\n"
    )
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(images / name), np.full((32, 48, 3), 90, np.uint8))
    (tmp_path / "last.pt").write_bytes(b"never read: torch cannot load")
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(tmp_path / 'site')!r})\n"
        "from click.testing import CliRunner\n"
        "from maskrefine.errors import BackendUnavailableError\n"
        "try:\n"
        "    from maskrefine.train import train\n"
        "except BackendUnavailableError as exc:\n"
        "    print('api:', exc)\n"
        "from maskrefine.cli import main\n"
        "for args in (sys.argv[1:5], sys.argv[5:]):\n"
        "    result = CliRunner().invoke(main, args)\n"
        "    print(result.exit_code, result.output.strip().replace(chr(10), ' | '))\n"
    )
    argv = ["train", f"--images={images}", f"--out={tmp_path / 'run'}", "--backbone=pixels"]  # sys.argv[1:5]
    argv += ["predict", f"--images={images}", f"--checkpoint={tmp_path / 'last.pt'}"]
    argv += [f"--out={tmp_path / 'o'}"]
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
    lines = out.stdout.splitlines()
    assert len(lines) == 3, out.stdout + out.stderr
    cause = "installed but cannot be imported (ImportError: libtorch_cpu.so: cannot open shared object file"
    assert lines[0].startswith("api: ") and cause in lines[0], lines[0]
    for line in lines[1:]:
        assert line.startswith("2 ") and cause in line and "Traceback" not in line, line
        assert "pip install 'torch==2.13.0'" in line, line
