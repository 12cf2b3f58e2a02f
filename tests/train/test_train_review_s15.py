"""Review s15 (findings 1, 2, 8, 9): what `train` and `predict` say about their inputs is true and whole."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")

from _train_helpers import disc_images, png_claiming  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from maskrefine.cli import MAX_LISTED, main  # noqa: E402
from maskrefine.errors import ConfigError, InputError  # noqa: E402
from maskrefine.train import load_toml, preset, train  # noqa: E402
from maskrefine.train.checkpoint import _first_sentence, safe_torch_load  # noqa: E402
from maskrefine.train.preflight import MAX_LISTED as TRAIN_MAX_LISTED  # noqa: E402
from maskrefine.train.preflight import FileProblems  # noqa: E402
from maskrefine.train.trainer import epoch_batches  # noqa: E402

CFG = {"backbone": "pixels", "head_fine_channels": (8, 8)}
TINY = ["--preset", "tiny", "--backbone", "pixels", "--max-steps", "1", "-q"]


def tiny(**changes):
    return preset("tiny", **{**CFG, **changes})


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


# ------------------------------------------------------------------ finding 1: batches left with one image


def test_batches_left_with_one_decodable_image_are_named_as_the_reason_nothing_trained(tmp_path):
    # was: "nothing was trained: no batch held an image that could be decoded", while a.png and c.png
    # decode: each batch was left with one of them, and a batch of one is dropped (BatchNorm)
    images, _ = disc_images(tmp_path)
    bad = images / "b.png"
    bad.write_bytes(bad.read_bytes()[:200])  # header intact, data cut
    # a seed whose only batch of the epoch holds b.png (image 1 of the sorted a, b, c)
    seed = next(s for s in range(100) if 1 in epoch_batches(3, 2, s, 0, "drop_single")[0])
    assert epoch_batches(3, 2, seed, 0, "drop_single")[0] != [0, 2]
    with pytest.raises(InputError) as info:
        train(tiny(batch_size=2, epochs=1, seed=seed), images, tmp_path / "run")
    message = str(info.value)
    assert message.startswith(f"{bad}: cannot decode")
    assert "every batch was left with at most one image that could be decoded (batch size 2)" in message
    assert (
        "a batch of one is dropped (BatchNorm needs two); add images or use --batch-size 1 (batch_size=1)"
        in message
    )
    assert "no batch held an image that could be decoded" not in message
    assert not (tmp_path / "run").exists()
    # the advice holds: with --batch-size 1 the two good images train
    result = train(tiny(batch_size=1, epochs=1, seed=seed), images, tmp_path / "run1")
    assert result.step == 2 and len(result.train_failures) == 1


def test_the_cli_gives_the_batch_of_one_reason_for_two_images_one_undecodable(tmp_path):
    images, _ = disc_images(tmp_path, {"a": (48, 64), "b": (64, 64)})
    (images / "b.png").write_bytes((images / "b.png").read_bytes()[:200])
    result = invoke("train", "--images", str(images), "--out", str(tmp_path / "run"), *TINY)
    assert result.exit_code == 1, result.output
    assert "b.png: cannot decode" in result.output
    assert "every batch was left with at most one image that could be decoded" in result.output
    assert "use --batch-size 1" in result.output


def test_no_decodable_image_keeps_the_old_reason(tmp_path):
    images, _ = disc_images(tmp_path)
    for path in images.iterdir():
        path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(InputError) as info:
        train(tiny(batch_size=2, epochs=2), images, tmp_path / "run")
    message = str(info.value)
    assert "nothing was trained: no batch held an image that could be decoded" in message
    assert "(2 other training image(s) failed too)" in message
    assert "batch of one" not in message and "--batch-size 1" not in message


# ---------------------------------------------------------------- finding 2: every bad training file named


def _hostile_training_folder(root: Path) -> tuple[Path, list[str]]:
    images, _ = disc_images(root)
    (images / "dang.png").symlink_to(root / "nowhere.png")
    (images / "dir.jpg").mkdir()
    (images / "empty.png").write_bytes(b"")
    os.mkfifo(images / "fifo.jpg")
    (images / "linkfifo.png").symlink_to("fifo.jpg")
    (images / "huge.png").write_bytes(png_claiming(30000, 30000))
    expected = {
        "dang.png": "is a dangling symlink",
        "dir.jpg": "is a folder",
        "empty.png": "file is empty",
        "fifo.jpg": "is a FIFO (named pipe), not a regular file",
        "linkfifo.png": "is a FIFO (named pipe), not a regular file",
        "huge.png": "image is 30000x30000 (HxW) = 900,000,000 pixels (900.0 MP), more than the limit of "
        "100,000,000 pixels (max_pixels, --max-pixels); not read",
    }
    return images, [f"{images / name}: {problem}" for name, problem in expected.items()]


def test_every_bad_training_file_is_named(tmp_path):
    # was: "5 problem(s): dang.png ...; dir.jpg ...; empty.png ...; and 2 more": the FIFO and the link
    # to it were never named, so each fix-and-rerun showed three more
    images, expected = _hostile_training_folder(tmp_path)
    with pytest.raises(FileProblems) as info:
        train(tiny(), images, tmp_path / "run")
    message = str(info.value)
    assert message.startswith(f"training images ({images}): 6 problem(s): ")
    for problem in expected:
        assert problem in message
    assert "; and " not in message  # no "and N more"
    assert isinstance(info.value, ConfigError) and not (tmp_path / "run").exists()


def test_the_cli_lists_every_bad_training_file_one_per_line(tmp_path):
    images, expected = _hostile_training_folder(tmp_path)
    result = invoke("train", "--images", str(images), "--out", str(tmp_path / "run"), *TINY)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == f"Error: training images ({images}): 6 problem(s):"
    assert len(lines) == 7
    for line, problem in zip(lines[1:], sorted(expected), strict=True):
        assert line.startswith(f"  {problem}"), (line, problem)
    assert not (tmp_path / "run").exists()


def test_the_listing_stops_at_max_listed_and_counts_the_rest(tmp_path):
    assert TRAIN_MAX_LISTED == MAX_LISTED  # as many as apply and predict list
    images, _ = disc_images(tmp_path)
    names = [f"empty{i:02d}.png" for i in range(MAX_LISTED + 2)]
    for name in names:
        (images / name).write_bytes(b"")
    with pytest.raises(FileProblems) as info:
        train(tiny(), images, tmp_path / "run")
    message = str(info.value)
    assert f"{MAX_LISTED + 2} problem(s)" in message and message.endswith("; and 2 more")
    assert all(name in message for name in names[:MAX_LISTED]) and names[-1] not in message
    lines = info.value.lines()
    assert len(lines) == MAX_LISTED + 2 and lines[-1] == "... and 2 more"
    result = invoke("train", "--images", str(images), "--out", str(tmp_path / "run"), *TINY)
    assert result.exit_code == 2 and result.output.rstrip().endswith("  ... and 2 more"), result.output


def test_every_bad_validation_file_is_named(tmp_path):
    images, gt = disc_images(tmp_path / "data")
    val, val_gt = disc_images(tmp_path / "val")
    extra = ["x1.png", "x2.png", "x3.png", "x4.png"]
    for name in extra:  # an image without its ground truth
        (val / name).write_bytes((val / "a.png").read_bytes())
    with pytest.raises(FileProblems) as info:
        train(tiny(), images, tmp_path / "run", val_images=val, val_gt=val_gt)
    message = str(info.value)
    assert "4 problem(s)" in message and all(name in message for name in extra), message


# ------------------------------------------------------------------- finding 8: values of a --config file


def test_a_config_files_device_is_blamed_on_the_file(tmp_path, monkeypatch):
    # was: "training setting device cuda: no CUDA device is available", the file not named
    images, _ = disc_images(tmp_path)
    config = tmp_path / "c5.toml"
    config.write_text('device = "cuda"\n')
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = invoke(
        "train", "--images", str(images), "--out", str(tmp_path / "r1"), "--config", str(config), *TINY
    )
    assert result.exit_code == 2, result.output
    assert f"Error: config file {config}: device cuda: no CUDA device is available" in result.output
    # the option, when given, is named as typed (and wins over the file)
    args = ["--images", str(images), "--out", str(tmp_path / "r2"), "--config", str(config), *TINY]
    result = invoke("train", *args, "--device", "cuda:0")
    assert result.exit_code == 2 and "Error: --device cuda:0: no CUDA device is available" in result.output
    result = invoke("train", *args, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "r1").exists()


@pytest.mark.parametrize("kind", ["missing", "fifo", "folder"])
def test_a_config_files_backbone_checkpoint_is_blamed_on_the_file(tmp_path, kind):
    images, _ = disc_images(tmp_path)
    folder = tmp_path / "cfgd"
    folder.mkdir()
    if kind == "fifo":
        os.mkfifo(folder / "bb.pth")
    elif kind == "folder":
        (folder / "bb.pth").mkdir()
    config = folder / "c.toml"
    config.write_text('backbone_checkpoint = "bb.pth"\n')
    args = ["--images", str(images), "--out", str(tmp_path / "run"), "--config", str(config)]
    result = invoke("train", *args, "--preset", "tiny", "--max-steps", "1", "-q")
    assert result.exit_code == 2, result.output
    problem = {"missing": "file not found", "fifo": "is not a regular file", "folder": "is a folder"}[kind]
    expected = f"Error: config file {config}: backbone checkpoint {folder / 'bb.pth'}: {problem}"
    assert result.output.startswith(expected), result.output
    assert not (tmp_path / "run").exists()


def test_a_relative_backbone_checkpoint_in_a_config_file_is_found_beside_the_file(
    tmp_path, tiny_vit_file, monkeypatch
):
    # was: taken relative to the current folder ("backbone checkpoint tiny_vit.pth: file not found")
    images, _ = disc_images(tmp_path / "data")
    folder = tmp_path / "cfgd"
    folder.mkdir()
    (folder / "vit.pth").write_bytes(tiny_vit_file.read_bytes())
    (folder / "rel.toml").write_text('backbone_checkpoint = "vit.pth"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    args = ["--images", str(images), "--config", "../cfgd/rel.toml", "--preset", "tiny", "--max-steps", "1"]
    result = invoke("train", *args, "--out", "run", "-q")
    assert result.exit_code == 0, result.output
    saved = json.loads((elsewhere / "run" / "config.json").read_text())
    assert (folder / "vit.pth").samefile(_backbone_of(saved))
    # --backbone-checkpoint on the command line stays relative to the current folder
    result = invoke("train", *args, "--backbone-checkpoint", "vit.pth", "--out", "run2", "-q")
    assert result.exit_code == 2 and "Error: backbone checkpoint vit.pth: file not found" in result.output
    assert "config file" not in result.output


def _backbone_of(saved: dict) -> str:
    """The backbone path recorded in a run's config.json (under its settings)."""
    found = [v for k, v in _items(saved) if k == "backbone_checkpoint"]
    assert len(found) == 1, saved
    return found[0]


def _items(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from _items(item)


def test_load_toml_joins_only_relative_backbone_paths_to_the_files_folder(tmp_path):
    folder = tmp_path / "cfg"
    folder.mkdir()
    cases = {
        "vit.pth": str(folder / "vit.pth"),
        "sub/vit.pth": str(folder / "sub" / "vit.pth"),
        "/abs/vit.pth": "/abs/vit.pth",
        "https://example.org/vit.pth": "https://example.org/vit.pth",  # refused later as a URL
        "": "",  # refused later as an empty path, naming the file
    }
    for written, expected in cases.items():
        (folder / "c.toml").write_text(f"backbone_checkpoint = {json.dumps(written)}\n")
        assert load_toml(folder / "c.toml")["backbone_checkpoint"] == expected
    (folder / "c.toml").write_text("backbone_checkpoint = 3\n")
    assert load_toml(folder / "c.toml")["backbone_checkpoint"] == 3  # not a path: refused when built


def test_the_config_help_says_where_relative_paths_are_found():
    result = invoke("train", "--help")
    assert "relative backbone_checkpoint in it is relative to the file's folder" in " ".join(
        result.output.split()
    )


# ------------------------------------------------------------------------------ finding 9: smaller wording


@pytest.mark.parametrize("kind", ["fifo", "dangling", "file", "missing"])
def test_train_says_what_its_images_argument_is_instead_of_a_folder(tmp_path, kind):
    # was: "images folder imgfifo: not found or not a folder" for a FIFO; Click's "Directory ... does not
    # exist" for a dangling symlink
    path = tmp_path / "imgs"
    expected = {
        "fifo": "is a FIFO (named pipe), not a folder",
        "dangling": "is a dangling symlink, not a folder",
        "file": "is a file, not a folder",
        "missing": "not found",
    }[kind]
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dangling":
        path.symlink_to(tmp_path / "nowhere")
    elif kind == "file":
        path.write_bytes(b"x")
    result = invoke("train", "--images", str(path), "--out", str(tmp_path / "run"), *TINY)
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"Error: images folder {path}: {expected}"


def test_a_truncated_backbone_checkpoint_is_named_in_whole_sentences(tmp_path, tiny_vit_file):
    # was: torch's message cut at 200 characters: "... your checkpoint file is)"
    cut = tmp_path / "cut.pth"
    data = tiny_vit_file.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError) as info:
        safe_torch_load(cut)
    message = str(info.value)
    assert message.startswith(
        f"backbone checkpoint {cut}: cannot read as a torch checkpoint (truncated, damaged"
    )
    assert message.endswith("failed reading zip archive: failed finding central directory)"), message
    assert "If you are seeing" not in message


def test_first_sentence_cuts_at_a_sentence_or_a_word():
    assert (
        _first_sentence("zip failed: v1.2 file. If you see this, it is broken. More.")
        == "zip failed: v1.2 file"
    )
    assert _first_sentence("one line only.") == "one line only"
    assert _first_sentence("first line\nsecond line") == "first line"
    long = _first_sentence("word " * 100)
    assert long.endswith("word...") and len(long) <= 203
    assert _first_sentence("x" * 300) == "x" * 200 + "..."
