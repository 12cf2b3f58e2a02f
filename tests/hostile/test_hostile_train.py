"""Hostile inputs for `maskrefine train` and `maskrefine predict` (the [torch] extra)."""

from __future__ import annotations

import json
import os
import re

import pytest

torch = pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")

TRAIN_TINY = ["--preset", "tiny", "--backbone", "pixels", "--max-steps", "1"]


@pytest.fixture
def run_tree(hostile):
    """The hostile tree plus run/last.pt: a pixels-backbone head trained for one step on its images."""
    from maskrefine.train import preset, train

    train(
        preset("tiny", backbone="pixels", head_fine_channels=(8, 8), max_steps=1),
        hostile.path("images"),
        hostile.path("run"),
    )
    return hostile


def predict_args(out="soft", *extra):
    return ["predict", "--images", "images", "--checkpoint", "run/last.pt", "--out", out, *extra]


@pytest.mark.slow
def test_train_then_predict(hostile):
    trained = hostile.run("train", "--images", "images", "--out", "run", *TRAIN_TINY, exit=0, out=["run"])
    # "(0 epochs)" read as if no epoch had started; the count is of complete epochs
    assert re.search(r"trained 1 step \(\d+ complete epochs?\)", trained.stdout)
    for name in ("config.json", "log.jsonl", "last.pt"):
        assert hostile.path(f"run/{name}").is_file()
    result = hostile.run(*predict_args("soft", "--save-coarse"), exit=0, out=["soft"])
    assert {"soft/0001.png", "soft/coarse/0001.png"} <= result.changed
    # a second run refuses to replace the outputs
    hostile.run(*predict_args("soft"), exit=2, names=["--overwrite"])


@pytest.mark.parametrize(
    "args, names",
    [
        (["--backbone-checkpoint", ""], ["empty path"]),
        (["--backbone-checkpoint", "missing.pth"], ["missing.pth", "file not found"]),
        (["--backbone-checkpoint", "notes.txt"], ["notes.txt", "cannot read as a torch checkpoint"]),
        (["--backbone-checkpoint", "https://example.org/dino.pth"], ["never downloads"]),
        (["--epochs", "many"], ["--epochs"]),
        (["--batch-size", "0"], ["--batch-size"]),
        (["--amp"], ["CUDA"]),
        (["--device", "tpu"], ["--device", "tpu"]),
        (["--resize", ""], ["--resize"]),
        (["--resize", "big"], ["--resize", "big"]),
        (["--resize", "0"], ["--resize"]),
        (["--resize", "9" * 40], ["resize (" + "9" * 40 + ")", "at most 4 x image_size"]),
        (["--resize", "300"], ["resize (300) must be >= image_size (320)", "--resize"]),
        (["--image-size", "384"], ["resize (335) must be >= image_size (384)", "--resize"]),
        ([*TRAIN_TINY, "--image-size", "16"], ["image_size 16", "19-px window"]),
        ([*TRAIN_TINY, "--lr", "1e-320"], ["lr must be >= 1e-12", "float32 weights unchanged"]),
        ([*TRAIN_TINY, "--lr", "1e38"], ["lr must be <= 1e+06", "diverges at once"]),  # was a traceback
        ([*TRAIN_TINY, "--image-size", "16", "--no-crop-loss"], ["resize (72)", "4 x image_size (64)"]),
    ],
)
def test_train_bad_options(hostile, args, names):
    hostile.run("train", "--images", "images", "--out", "run", *args, exit=2, names=names)
    assert not hostile.path("run").exists()


def test_train_resize_option(hostile):
    args = ["--image-size", "80", "--resize", "96"]
    hostile.run("train", "--images", "images", "--out", "run", *TRAIN_TINY, *args, exit=0, out=["run"])
    config = json.loads(hostile.path("run/config.json").read_text())["config"]
    assert (config["image_size"], config["resize"]) == (80, 96)


@pytest.mark.parametrize(
    ("name", "content", "names"),
    [
        ("cfg.toml", "epochs = 'ten'\n", ["epochs", "expected an integer"]),
        ("nope.toml", None, ["nope.toml", "file not found"]),
        # a typo in the file was reported as "preset paper: unknown training setting(s): epoch"
        ("typo.toml", "epoch = 10\n", ["config file", "typo.toml", "unknown training setting(s): epoch"]),
        # a bad value in the file was reported without naming the file
        ("neg.toml", "lr = -1\n", ["config file neg.toml", "lr must be > 0"]),
        ("text.toml", "lr = 'x'\n", ["config file text.toml", "lr: expected a number"]),
        ("size.toml", "image_size = 100\n", ["config file size.toml", "multiple of 16"]),
        ("preset.toml", "preset = 'nosuch'\n", ["config file preset.toml", "preset must be one of"]),
        ("huge.toml", f"batch_size = {'9' * 4000}\n", ["config file huge.toml", "batch_size must be <="]),
        ("eps.toml", "gf_eps = 1e-20\n", ["config file eps.toml", "gf_eps must be >= 1e-12"]),
        # a huge loss weight or weight decay created the run folder, then failed at step 1 blaming the lr
        ("w.toml", "w_crop = 1e300\n", ["config file w.toml", "w_crop must be <= 1e+06", "loss weight"]),
        ("wd.toml", "weight_decay = 1e300\n", ["config file wd.toml", "weight_decay must be below 1 / lr"]),
        ("wd4.toml", "weight_decay = 1e4\n", ["config file wd4.toml", "1 / lr = 10000", "<= 0"]),
    ],
)
def test_train_bad_config_file(hostile, name, content, names):
    if content is not None:
        hostile.path(name).write_text(content)
    hostile.run("train", "--images", "images", "--out", "run", "--config", name, exit=2, names=names)
    assert not hostile.path("run").exists()


def test_train_config_file_blamed_only_for_its_own_values(hostile):
    hostile.path("cfg.toml").write_text("lr = -1\nimage_size = 64\n")
    # the option overrides the file's bad value: accepted
    hostile.run(
        "train",
        "--images",
        "images",
        "--out",
        "run",
        "--config",
        "cfg.toml",
        *TRAIN_TINY,
        "--lr",
        "0.01",
        exit=0,
        out=["run"],
    )
    config = json.loads(hostile.path("run/config.json").read_text())["config"]
    assert (config["lr"], config["image_size"]) == (0.01, 64)
    # refused by the options alone: the file is not named
    hostile.path("ok.toml").write_text("epochs = 1\n")
    result = hostile.run(
        "train",
        "--images",
        "images",
        "--out",
        "run2",
        "--config",
        "ok.toml",
        "--image-size",
        "384",
        exit=2,
        names=["resize (335) must be >= image_size (384)"],
    )
    assert "ok.toml" not in result.stderr


@pytest.mark.parametrize("kind", ["fifo", "symlink", "file", "empty", "dot"])
def test_train_bad_out(hostile, kind):
    out = {"fifo": "fifo", "symlink": "link", "file": "notes.txt", "empty": "", "dot": "."}[kind]
    if kind == "fifo":
        os.mkfifo(hostile.path("fifo"))
    if kind == "symlink":
        hostile.path("elsewhere").mkdir()
        os.symlink("elsewhere", hostile.path("link"))
    hostile.run("train", "--images", "images", "--out", out, *TRAIN_TINY, exit=2)


@pytest.mark.parametrize("kind", ["empty", "fifo", "symlink_to_images", "symlink_elsewhere", "inside_images"])
def test_predict_bad_out(run_tree, kind):
    out = {
        "empty": "",
        "fifo": "fifo",
        "symlink_to_images": "link",
        "symlink_elsewhere": "link2",
        "inside_images": "images/pred",
    }[kind]
    if kind == "fifo":
        os.mkfifo(run_tree.path("fifo"))
    if kind == "symlink_to_images":
        os.symlink("images", run_tree.path("link"))
    if kind == "symlink_elsewhere":
        run_tree.path("elsewhere").mkdir()
        os.symlink("elsewhere", run_tree.path("link2"))
    names = {
        "empty": ["empty"],
        "fifo": ["fifo", "not a folder"],
        "symlink_to_images": ["link"],
        "symlink_elsewhere": ["link2", "symbolic link"],
        "inside_images": ["images"],
    }[kind]
    run_tree.run(*predict_args(out), exit=2, names=names)


@pytest.mark.slow
def test_predict_bad_checkpoints(run_tree, tmp_path):
    marker = run_tree.path("pwned")
    evil = (
        "import os, torch\n"
        "class R:\n"
        f"    def __reduce__(self): return (os.system, ('touch {marker}',))\n"
        "torch.save({'format': 'maskrefine-sempart-1', 'x': R()}, 'evil.pt')\n"
    )
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", evil], cwd=run_tree.root, check=True)
    run_tree.path("empty.pt").touch()
    os.mkfifo(run_tree.path("fifo.pt"))
    cases = [
        ("evil.pt", ["evil.pt", "refused", "pickled"]),
        ("empty.pt", ["empty.pt", "empty"]),
        ("fifo.pt", ["fifo.pt", "not a regular file"]),
        ("missing.pt", ["missing.pt", "file not found"]),
        ("", ["empty path"]),
        ("notes.txt", ["notes.txt"]),
    ]
    for checkpoint, names in cases:
        run_tree.run(
            "predict", "--images", "images", "--checkpoint", checkpoint, "--out", "soft", exit=2, names=names
        )
    assert not marker.exists()
    assert not run_tree.path("soft").exists()


def test_predict_bad_image_and_wrong_types(run_tree):
    run_tree.path("images/0009.png").write_bytes(b"")
    result = run_tree.run(*predict_args("soft"), exit=1, names=["0009.png"], out=["soft"])
    assert {"soft/0001.png", "soft/0002.png", "soft/0003.png"} <= result.changed
    run_tree.run(*predict_args("pred2", "--format", "jpeg"), exit=2, names=["--format"])
    run_tree.run(*predict_args("pred2", "--refine", "bilateral"), exit=2, names=["--refine"])
    run_tree.run(*predict_args("pred2", "--device", "quantum"), exit=2, names=["--device"])


@pytest.mark.parametrize("report", ["", "newdir/", "newdir/."])
def test_predict_report_must_name_a_file(run_tree, report):
    # "newdir/" was written as a file named newdir
    result = run_tree.run(*predict_args("soft", "--report", report), exit=2, names=["--report"])
    assert ("empty" if not report else "which names a folder") in result.stderr
    assert not run_tree.path("newdir").exists() and not run_tree.path("soft").exists()


@pytest.mark.parametrize("record", ["config.json", "log.jsonl"])
def test_predict_report_never_replaces_the_training_runs_records(run_tree, record):
    # `predict --report run/config.json` replaced the run's settings and git SHA with a predict report
    result = run_tree.run(*predict_args("soft", "--report", f"run/{record}"), exit=2, names=[f"run/{record}"])
    assert f"training run's {record}" in result.stderr and not run_tree.path("soft").exists()
    run_tree.run(
        *predict_args("soft", "--report", "run/predict.json"), exit=0, out=["soft", "run/predict.json"]
    )


def test_predict_dangling_symlinks_at_its_side_paths_are_refused_up_front(run_tree):
    # --report under a dangling link: predicted every image, then "cannot create its folder (File exists)";
    # OUT/coarse a dangling link with --save-coarse: "OUT/coarse: File exists", exit 1
    run_tree.path("dead").symlink_to("nowhere")
    run_tree.run(
        *predict_args("soft", "--report", "dead/r.json"), exit=2, names=["dead is a dangling symbolic link"]
    )
    assert not run_tree.path("soft").exists()
    run_tree.path("soft2").mkdir()
    run_tree.path("soft2/coarse").symlink_to("/nonexistent-maskrefine")
    run_tree.run(*predict_args("soft2", "--save-coarse"), exit=2, names=["soft2/coarse is a symbolic link"])


@pytest.mark.parametrize("save_coarse", [False, True], ids=["output", "coarse-output"])
def test_predict_never_replaces_its_own_checkpoint(run_tree, save_coarse):
    # was: with --overwrite, a checkpoint lying at an output path was replaced by a mask (exit 0)
    where = "soft/coarse/0002.png" if save_coarse else "soft/0001.png"
    run_tree.path(where).parent.mkdir(parents=True)
    run_tree.path(where).write_bytes(run_tree.path("run/last.pt").read_bytes())
    before = run_tree.path(where).read_bytes()
    extra = ["--overwrite", *(["--save-coarse"] if save_coarse else [])]
    result = run_tree.run(
        "predict", "--images", "images", "--checkpoint", where, "--out", "soft", *extra, exit=2, names=[where]
    )
    assert "is also the output of" in result.stderr
    assert run_tree.path(where).read_bytes() == before


@pytest.mark.slow
def test_a_backbone_checkpoint_for_the_pixels_backbone_is_refused(run_tree):
    # was: accepted and silently unused (train and predict), an empty path or a garbage file included
    names = ["only the 'vit' backbone loads weights", "'pixels'"]
    run_tree.run(
        "train",
        "--images",
        "images",
        "--out",
        "run2",
        *TRAIN_TINY,
        "--backbone-checkpoint",
        "notes.txt",
        exit=2,
        names=names,
    )
    run_tree.run(*predict_args("soft", "--backbone-checkpoint", "notes.txt"), exit=2, names=names)
    run_tree.run(*predict_args("soft", "--backbone-checkpoint", ""), exit=2, names=["empty path"])
    assert not run_tree.path("run2").exists() and not run_tree.path("soft").exists()


def test_a_blank_name_is_a_name_not_an_empty_path(run_tree):
    # " " was refused as "--out: empty path" by predict and train while apply wrote to a folder " "
    result = run_tree.run(*predict_args(" "), exit=0, out=[" "])
    assert " /0001.png" in result.changed


@pytest.mark.slow
def test_a_run_that_fails_before_its_first_step_leaves_nothing_behind(hostile):
    # was: config.json, log.jsonl and a step-0 last.pt stayed; the rerun after removing the bad image was
    # refused ("not empty; use --resume"), and --resume refused the changed image list. A run with no
    # image that can be decoded trains nothing (one bad image among good ones is left out: next test)
    originals = {}
    for path in sorted(hostile.path("images").glob("*.png")):
        originals[path] = path.read_bytes()
        path.write_bytes(originals[path][: len(originals[path]) // 2])  # valid header, truncated data
    args = ["train", "--images", "images", "--out", "run", *TRAIN_TINY, "--batch-size", "3"]
    names = [".png: cannot decode", "nothing was trained", "(2 other training image(s) failed too)"]
    hostile.run(*args, exit=1, names=names)
    assert not hostile.path("run").exists()
    hostile.path("run").mkdir()  # an empty folder given by the user stays
    hostile.run(*args, exit=1, names=["nothing was trained"], out=["run"])
    assert hostile.path("run").is_dir() and not any(hostile.path("run").iterdir())
    for path, data in originals.items():
        path.write_bytes(data)
    hostile.run(*args, exit=0, out=["run"])
    assert hostile.path("run/last.pt").is_file()


@pytest.mark.slow
def test_one_undecodable_image_is_left_out_and_the_run_keeps_its_checkpoint(hostile):
    data = hostile.path("images/0001.png").read_bytes()
    hostile.path("images/0004.png").write_bytes(data[: len(data) // 2])  # valid header, truncated data
    args = ["train", "--images", "images", "--out", "run", *TRAIN_TINY, "--batch-size", "4"]
    hostile.run(*args, exit=1, names=["0004.png", "(left out of training)"], out=["run"])
    assert hostile.path("run/last.pt").is_file()


def test_predict_messages_read_as_one_line_and_name_folders_once(run_tree):
    state = torch.load(run_tree.path("run/last.pt"), weights_only=True)
    key = next(k for k, v in state["head"].items() if v.ndim >= 2)
    state["head"][key] = torch.zeros(3, 2)  # a head that does not fit the backbone
    torch.save(state, run_tree.path("badhead.pt"))
    result = run_tree.run(
        "predict",
        "--images",
        "images",
        "--checkpoint",
        "badhead.pt",
        "--out",
        "soft",
        exit=2,
        names=["badhead.pt", "the head weights do not fit the backbone"],
    )
    line = next(x for x in result.stderr.splitlines() if "do not fit" in x)
    assert "\t" not in line and ")" in line  # torch's multi-line message folded into this line
    run_tree.path("soft/coarse").mkdir(parents=True)
    result = run_tree.run(*predict_args("soft", "--save-coarse", "--report", "soft/coarse/r.json"), exit=2)
    assert "inside the coarse folder soft/coarse" in result.stderr  # was "coarse folder folder"


@pytest.mark.parametrize(("signal_name", "code"), [("SIGTERM", 143), ("SIGINT", 130)])
def test_predict_stopped_by_a_signal_finishes_the_image_in_progress(run_tree, signal_name, code):
    # the stop raised mid-image and dropped the image being predicted; now it is predicted and written,
    # no further image is read, and the exit code says which signal stopped the run
    prelude = (
        "import os, signal\n"
        "from maskrefine.train.predict import Predictor\n"
        "original = Predictor.predict\n"
        "def predict(self, images):\n"
        f"    os.kill(os.getpid(), signal.{signal_name})  # arrives while this image is in progress\n"
        "    return original(self, images)\n"
        "Predictor.predict = predict\n"
    )
    result = run_tree.run(*predict_args("soft"), exit=code, out=["soft"], prelude=prelude)
    assert "--skip-existing" in result.stderr
    assert sorted(p for p in result.changed if p.startswith("soft/")) == ["soft/0001.png"]
