"""train: validation files checked up front and per file, run files never written through, CLI settings."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from _train_helpers import copy_folder, disc_images  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from maskrefine.cli import main  # noqa: E402
from maskrefine.errors import ConfigError  # noqa: E402
from maskrefine.train import load_checkpoint, preset, train  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CFG = {"backbone": "pixels", "head_fine_channels": (8, 8)}


def tiny(**changes):
    return preset("tiny", **{**CFG, **changes})


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    return env


# ------------------------------------------------------------------------------------------ validation


def test_validation_pairs_are_checked_before_any_work(tmp_path):
    images, gt = disc_images(tmp_path)
    other = copy_folder(gt, tmp_path / "other")
    cv2.imwrite(str(other / "b.png"), np.zeros((10, 10), np.uint8))  # another size
    # the sizes were W x H without saying so; every other size message says HxW
    with pytest.raises(
        ConfigError, match=r"other/b.png: ground truth is 10x10 but its image b.png is 70x50 \(HxW"
    ):
        train(tiny(epochs=1), images, tmp_path / "r1", val_images=images, val_gt=other)
    (other / "b.png").unlink()
    with pytest.raises(ConfigError, match="b.png: no ground truth of that stem"):
        train(tiny(epochs=1), images, tmp_path / "r2", val_images=images, val_gt=other)
    (other / "b.png").write_bytes(b"not an image at all")
    with pytest.raises(ConfigError, match="b.png: cannot decode as an image: not a PNG"):
        train(tiny(epochs=1), images, tmp_path / "r3", val_images=images, val_gt=other)
    assert not any((tmp_path / name).exists() for name in ("r1", "r2", "r3"))


def test_a_transposed_ground_truth_is_refused_unless_a_tiff_may_rotate(tmp_path):
    # a 50x70 PNG ground truth for a 70x50 PNG image passed the up-front check (only a TIFF's orientation
    # tag can swap the sizes at reading) and ended the run at its first validation
    from maskrefine.train.preflight import validation_pairs

    images, gt = disc_images(tmp_path)
    swapped = copy_folder(gt, tmp_path / "swapped")
    cv2.imwrite(str(swapped / "b.png"), np.zeros((50, 70), np.uint8))  # its image is 70x50 (HxW)
    with pytest.raises(
        ConfigError, match=r"swapped/b.png: ground truth is 50x70 but its image b.png is 70x50"
    ):
        validation_pairs(images, swapped)
    tiff_images = copy_folder(images, tmp_path / "tiff_images")
    (tiff_images / "b.png").unlink()
    assert cv2.imwrite(str(tiff_images / "b.tif"), np.zeros((50, 70, 3), np.uint8))
    assert len(validation_pairs(tiff_images, gt)) == len(list(images.iterdir()))  # gt b.png is 70x50


def test_a_bad_validation_file_is_reported_and_the_run_goes_on(tmp_path):
    images, gt = disc_images(tmp_path)
    broken = copy_folder(gt, tmp_path / "broken")
    (broken / "b.png").write_bytes((gt / "b.png").read_bytes()[:120])  # header fine, data truncated
    result = train(tiny(epochs=2), images, tmp_path / "run", val_images=images, val_gt=broken)
    assert result.epoch == 2 and not result.ok
    assert len(result.val_failures) == 1 and "broken/b.png: cannot decode" in result.val_failures[0]
    epochs = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    vals = [r["val"] for r in epochs if r["event"] == "epoch"]
    assert [v["images"] for v in vals] == [2, 2] and all(len(v["failed"]) == 1 for v in vals)
    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 2


def test_last_checkpoint_is_saved_before_validating(tmp_path, monkeypatch):
    from maskrefine.train import trainer

    images, gt = disc_images(tmp_path)

    def crash(*args, **kwargs):
        raise RuntimeError("validation crashed")

    monkeypatch.setattr(trainer, "validate", crash)
    with pytest.raises(RuntimeError, match="validation crashed"):
        train(tiny(epochs=3), images, tmp_path / "run", val_images=images, val_gt=gt)
    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 1  # the epoch is kept


def test_cli_bad_validation_file_exits_1_without_opencv_lines(tmp_path):
    images, gt = disc_images(tmp_path)
    broken = copy_folder(gt, tmp_path / "broken")
    (broken / "b.png").write_bytes((gt / "b.png").read_bytes()[:120])
    args = ["train", "--images", str(images), "--preset", "tiny", "--backbone", "pixels", "--epochs", "1"]
    args += ["--out", str(tmp_path / "run"), "--val-images", str(images), "--val-gt", str(broken), "-q"]
    proc = subprocess.run(
        [sys.executable, "-m", "maskrefine.cli", *args],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    assert "error: " in proc.stderr and "b.png: cannot decode" in proc.stderr
    assert "WARN" not in proc.stderr and "grfmt_png" not in proc.stderr, proc.stderr
    assert (tmp_path / "run" / "last.pt").is_file()


def test_out_inside_a_validation_folder_is_refused(tmp_path):
    images, gt = disc_images(tmp_path)
    val_images = copy_folder(images, tmp_path / "val_images")
    with pytest.raises(ConfigError, match="inside.* the validation ground truth folder"):
        train(tiny(max_steps=1), images, gt / "run", val_images=images, val_gt=gt)
    with pytest.raises(ConfigError, match="inside.* the validation images folder"):
        train(tiny(max_steps=1), images, val_images / "run", val_images=val_images, val_gt=gt)
    assert not (gt / "run").exists() and not (val_images / "run").exists()


# ------------------------------------------------------------------------------------------ resume


@pytest.fixture
def stopped_run(tmp_path):
    images, gt = disc_images(tmp_path)
    train(tiny(max_steps=1, epochs=5), images, tmp_path / "run")
    return images, gt, tmp_path / "run"


@pytest.mark.parametrize("name", ["last.pt", "log.jsonl", "config.resume-1.json", "best_val.pt"])
@pytest.mark.parametrize("kind", ["symlink", "fifo", "folder"])
def test_resume_refuses_foreign_run_files_before_any_work(stopped_run, name, kind):
    images, gt, run = stopped_run
    path = run / name
    if path.exists():
        path.rename(run.parent / "moved")
    if kind == "symlink":
        path.symlink_to(run.parent / "moved")
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    log = (run / "log.jsonl").read_bytes() if name != "log.jsonl" else None
    cfg = tiny(max_steps=3, epochs=5, keep_best_on_val=True)
    with pytest.raises(ConfigError, match=f"{name}"):
        train(cfg, images, run, resume=True, val_images=images, val_gt=gt)
    if log is not None:
        assert (run / "log.jsonl").read_bytes() == log  # nothing trained, nothing written
    assert not (run / "config.resume-1.json").is_file()


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda s: s.pop("optimizer"), "entry 'optimizer' is missing"),
        (lambda s: s.update(step="x"), "entry 'step' is 'x'"),
        (lambda s: s.update(rng=None), "entry 'rng' is None"),
        (lambda s: s["rng"].update(torch=torch.zeros(3)), "cannot restore the run's state"),
        (lambda s: s.update(config="notadict"), "entry 'config' .* is a str"),
        (lambda s: s.update(pending_summary={"event": "step"}), "entry 'pending_summary' is"),
        (lambda s: s.update(pending_summary=[1]), "entry 'pending_summary' is"),
    ],
)
def test_resume_names_a_malformed_checkpoint(stopped_run, change, problem):
    images, _, run = stopped_run
    state = copy.deepcopy(torch.load(run / "last.pt", weights_only=True))
    change(state)
    torch.save(state, run / "last.pt")
    log = (run / "log.jsonl").read_bytes()
    with pytest.raises(ConfigError, match=problem):
        train(tiny(max_steps=3, epochs=5), images, run, resume=True)
    assert (run / "log.jsonl").read_bytes() == log


def test_resume_gives_torchs_head_error_on_one_line(stopped_run):
    images, _, run = stopped_run
    state = torch.load(run / "last.pt", weights_only=True)
    state["head"].pop(next(iter(state["head"])))  # torch: "Missing key(s) in state_dict: ..." over lines
    torch.save(state, run / "last.pt")
    with pytest.raises(ConfigError, match="cannot restore the run's state") as info:
        train(tiny(max_steps=3, epochs=5), images, run, resume=True)
    assert "\n" not in str(info.value) and "\t" not in str(info.value)


def test_resume_refuses_another_backbone_than_the_runs(stopped_run):
    # was: resumed, trained the head on the new backbone's features and rewrote the record predict checks
    images, _, run = stopped_run
    state = torch.load(run / "last.pt", weights_only=True)
    record = dict(state["backbone"])
    state["backbone"] = {**record, "embed_dim": 999}
    torch.save(state, run / "last.pt")
    before = (run / "last.pt").read_bytes()
    with pytest.raises(ConfigError, match=r"--resume: the backbone .* \(embed_dim 999 -> "):
        train(tiny(max_steps=3, epochs=5), images, run, resume=True)
    assert (run / "last.pt").read_bytes() == before


def test_resume_drops_log_lines_that_are_not_records(stopped_run):
    # was: AttributeError ('list' object has no attribute 'get') with a traceback
    images, _, run = stopped_run
    with open(run / "log.jsonl", "a") as log:
        log.write('[]\n"text"\n{"step": "x"}\n')
    train(tiny(max_steps=2, epochs=5), images, run, resume=True)
    lines = (run / "log.jsonl").read_text().splitlines()
    assert all(isinstance(json.loads(line), dict) for line in lines)
    assert load_checkpoint(run / "last.pt")["step"] == 2


def test_resume_without_a_first_checkpoint_says_how_to_go_on(stopped_run):
    # a run killed before its first checkpoint: the plain rerun asks for --resume, which must not ask back
    images, _, run = stopped_run
    (run / "last.pt").unlink()
    new_run = r"start a new run \(without --resume\) in another --out, or empty this"
    with pytest.raises(ConfigError, match=r"not found .*" + new_run):
        train(tiny(max_steps=3, epochs=5), images, run, resume=True)


def test_a_checkpoint_with_a_negative_batch_norm_variance_is_refused(stopped_run):
    # was: loaded, and predict then failed on every image with NaN masks naming the outputs
    _, _, run = stopped_run
    state = torch.load(run / "last.pt", weights_only=True)
    key = next(k for k in state["head"] if k.endswith("running_var"))
    state["head"][key] = -state["head"][key].abs() - 1
    torch.save(state, run / "bad.pt")
    with pytest.raises(ConfigError, match=f"negative batch-norm variances \\({key}"):
        load_checkpoint(run / "bad.pt")


def _epoch_lines(run: Path) -> list[dict]:
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records if r["event"] == "epoch"]


@pytest.mark.parametrize("keep_best", [False, True])
def test_a_run_killed_while_validating_writes_that_epochs_line_on_resume(tmp_path, monkeypatch, keep_best):
    # the epoch's summary line is written after validation: a kill there lost the line for good
    import maskrefine.train.trainer as trainer

    images, gt = disc_images(tmp_path)
    cfg = tiny(epochs=3, keep_best_on_val=keep_best)
    full = train(cfg, images, tmp_path / "full", val_images=images, val_gt=gt)
    real_validate = trainer.validate
    calls = []

    def killed_on_the_second_call(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_validate(*args, **kwargs)

    monkeypatch.setattr(trainer, "validate", killed_on_the_second_call)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, images, tmp_path / "run", val_images=images, val_gt=gt)
    monkeypatch.setattr(trainer, "validate", real_validate)
    assert [e["epoch"] for e in _epoch_lines(tmp_path / "run")] == [1]  # epoch 2's line is missing
    resumed = train(cfg, images, tmp_path / "run", resume=True, val_images=images, val_gt=gt)
    assert resumed.step == full.step and resumed.best_val == full.best_val
    assert _epoch_lines(tmp_path / "run") == _epoch_lines(tmp_path / "full")
    # resumed again after the end: nothing is validated or written twice
    log = (tmp_path / "run" / "log.jsonl").read_text()
    train(cfg, images, tmp_path / "run", resume=True, val_images=images, val_gt=gt)
    assert (tmp_path / "run" / "log.jsonl").read_text() == log


# ------------------------------------------------------------------------------------------ CLI settings


def test_cli_preset_in_config_file_and_option(tmp_path):
    images, _ = disc_images(tmp_path)
    (tmp_path / "c.toml").write_text('preset = "tiny"\n')
    args = ["train", "--images", str(images), "--config", str(tmp_path / "c.toml"), "--preset", "tiny"]
    args += ["--backbone", "pixels", "--max-steps", "1", "--out", str(tmp_path / "run"), "-q"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    (tmp_path / "bad.toml").write_text("preset = 3\n")
    args[4] = str(tmp_path / "bad.toml")
    args[-2] = str(tmp_path / "run2")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "bad.toml: preset must be a string" in result.output


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"resume": "no"}, "`resume` must be True or False"),
        # a non-callable progress failed with TypeError after the first step (run folder written)
        ({"progress": 5}, r"progress must be a callable progress\(record\) or None; got int"),
        ({}, None),
    ],
)
def test_train_arguments_of_the_wrong_type_are_named(tmp_path, kwargs, problem) -> None:
    # resume="no" was read by truthiness (a resume); a dict for cfg failed deep inside with AttributeError
    images, _ = disc_images(tmp_path / "data")
    cfg = tiny() if problem else {"lr": 1e-4}
    with pytest.raises(ConfigError, match=problem or "cfg must be a TrainConfig"):
        train(cfg, images, tmp_path / "run", **kwargs)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("num_workers", "batch_size"), [(0, 3), (1, 3), (0, 1)])
def test_an_undecodable_training_image_is_left_out_and_named_with_any_num_workers(
    tmp_path, num_workers, batch_size
):
    # was: the run stopped at the first batch holding the file (InputError), mid-epoch, and --resume met
    # the same file again; with num_workers >= 1, before that, torch's RuntimeError and a traceback
    images, _ = disc_images(tmp_path)
    bad = images / "b.png"
    bad.write_bytes(bad.read_bytes()[:200])  # header intact, data cut
    cfg = tiny(epochs=2, batch_size=batch_size, num_workers=num_workers)
    result = train(cfg, images, tmp_path / "run")
    assert not result.ok and result.val_failures == []
    assert len(result.train_failures) == 1  # once, though both epochs drew it
    assert result.train_failures[0].startswith(f"{bad}: cannot decode"), result.train_failures
    # the other images trained: one step per batch that kept an image (b.png alone is passed over)
    assert result.step == (2 if batch_size == 3 else 4) and result.epoch == 2
    assert len(result.losses) == result.step and all(np.isfinite(result.losses))
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    skipped = [r for r in records if r["event"] == "skipped_image"]
    assert len(skipped) == 1 and skipped[0]["file"] == str(bad) and "cannot decode" in skipped[0]["problem"]
    assert [r["steps"] for r in records if r["event"] == "epoch"] == [result.step // 2] * 2
    assert load_checkpoint(tmp_path / "run" / "last.pt")["step"] == result.step


def test_a_batch_without_the_undecodable_image_trains_as_before(tmp_path):
    # the file is left out of its batch only: a run whose batches never draw it is the same run
    images, _ = disc_images(tmp_path)
    clean = train(tiny(epochs=1, batch_size=3), images, tmp_path / "clean")
    bad = images / "b.png"
    bad.write_bytes(bad.read_bytes()[:200])
    broken = train(tiny(epochs=1, batch_size=3), images, tmp_path / "broken")
    assert broken.train_failures and broken.step == clean.step == 1
    assert broken.losses != clean.losses  # its batch trained on two images, not three


@pytest.mark.parametrize("last_batch", ["drop_single", "keep"])
def test_a_batch_left_with_one_image_follows_the_last_batch_rule(tmp_path, last_batch):
    # was: a batch left with one image by a skipped file was trained under drop_single, the setting that
    # never trains a batch of one (BatchNorm statistics of one image)
    from maskrefine.train.trainer import epoch_batches

    sizes = {stem: (48, 64) for stem in "abcde"}
    images, _ = disc_images(tmp_path, sizes)
    bad = images / "b.png"
    bad.write_bytes(bad.read_bytes()[:200])
    cfg = tiny(epochs=3, batch_size=2, last_batch=last_batch)
    result = train(cfg, images, tmp_path / "run")
    smallest = 2 if last_batch == "drop_single" else 1
    expected = sum(
        len([i for i in batch if i != 1]) >= smallest  # b.png is image 1 of the sorted five
        for epoch in range(3)
        for batch in epoch_batches(5, 2, cfg.seed, epoch, last_batch)
    )
    assert result.step == expected and len(result.train_failures) == 1


def test_a_run_that_could_decode_no_image_leaves_no_file_behind(tmp_path):
    # was: best_val.pt stayed (the clean-up removed last.pt, log.jsonl and config.json only), and the
    # rerun on fixed data was refused: "run folder ... is not empty"
    from maskrefine.errors import InputError

    images, gt = disc_images(tmp_path / "data")
    val = copy_folder(images, tmp_path / "val")
    for path in images.iterdir():
        path.write_bytes(path.read_bytes()[:200])
    cfg = tiny(epochs=1, batch_size=3, keep_best_on_val=True)
    with pytest.raises(InputError, match="nothing was trained"):
        train(cfg, images, tmp_path / "run", val_images=val, val_gt=gt)
    assert not (tmp_path / "run").exists()


def test_cli_names_an_undecodable_training_image_and_exits_1_with_its_checkpoint(tmp_path):
    images, _ = disc_images(tmp_path)
    (images / "b.png").write_bytes((images / "b.png").read_bytes()[:200])
    run = tmp_path / "run"
    args = ["train", "--images", str(images), "--preset", "tiny", "--backbone", "pixels", "--batch-size", "3"]

    def train_cli(*more):
        command = [sys.executable, "-m", "maskrefine.cli", *args, *more, "--out", str(run), "-q"]
        return subprocess.run(command, env=cli_env(), capture_output=True, text=True, timeout=300)

    proc = train_cli("--epochs", "1")
    assert proc.returncode == 1, proc.stderr
    assert f"error: {images / 'b.png'}: cannot decode" in proc.stderr
    assert "(left out of training)" in proc.stderr and "Traceback" not in proc.stderr
    assert "trained 1 step (1 complete epoch)" in proc.stdout
    # the image list is unchanged, so the run resumes (here: one more epoch)
    proc = train_cli("--epochs", "2", "--resume")
    assert proc.returncode == 1 and "(left out of training)" in proc.stderr, proc.stderr
    assert "trained 1 step, to step 2 (2 complete epochs)" in proc.stdout
    # resumed again with the same --epochs: the run has ended, nothing trains (said "trained 2 steps")
    proc = train_cli("--epochs", "2", "--resume")
    assert "nothing to train: the run had already reached step 2 (2 complete epochs)" in proc.stdout
    assert "raise --epochs or --max-steps" in proc.stdout and "trained" not in proc.stdout


def test_resume_removes_the_temporary_files_a_killed_write_left(stopped_run):
    # was: every kill during a checkpoint write left a .last.pt.<random>.tmp for good
    images, _, run = stopped_run
    stale = run / ".last.pt.abcd1234.tmp"
    stale.write_bytes(b"half a checkpoint")
    young = run / ".best_val.pt.wxyz5678.tmp"  # may belong to a process still writing: kept
    young.write_bytes(b"x")
    foreign = run / ".notes.txt.abcd1234.tmp"  # not a file of a run: kept
    foreign.write_bytes(b"x")
    old = os.stat(stale).st_mtime - 3600
    os.utime(stale, (old, old))
    os.utime(foreign, (old, old))
    train(tiny(max_steps=2, epochs=5), images, run, resume=True)
    assert not stale.exists() and young.exists() and foreign.exists()


def test_a_cuda_device_that_cannot_be_used_is_refused_before_any_work(tmp_path, monkeypatch):
    # was: "--device cuda:3" on a 1-GPU machine failed at model.to() with torch's "invalid device ordinal"
    from maskrefine.train.model import usable_device

    images, _ = disc_images(tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    # the setting may come from a --config file: "--device" blamed an option that was not given
    with pytest.raises(ConfigError, match="^training setting device cuda: no CUDA device is available"):
        train(tiny(device="cuda"), images, tmp_path / "r1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(
        ConfigError,
        match=r"training setting device cuda:3: this machine has 1 CUDA device\(s\) \(cuda:0..cuda:0\)",
    ):
        train(tiny(device="cuda:3"), images, tmp_path / "r2")
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()
    assert usable_device("cuda:0") == torch.device("cuda:0")  # an index below the count is accepted
    assert usable_device("cpu") == torch.device("cpu")


def test_checkpoints_hold_no_cuda_generator_state_and_old_ones_still_resume(stopped_run):
    # the CUDA generators' states (one per visible GPU) made --resume fail on a machine with fewer GPUs;
    # training draws no CUDA random numbers, so they are neither saved nor restored
    images, _, run = stopped_run
    state = torch.load(run / "last.pt", weights_only=True)
    assert set(state["rng"]) == {"torch", "crop"}
    state["rng"]["cuda"] = [torch.zeros(16, dtype=torch.uint8)] * 8  # as an 8-GPU run saved it
    torch.save(state, run / "last.pt")
    train(tiny(max_steps=2, epochs=5), images, run, resume=True)
    assert load_checkpoint(run / "last.pt")["step"] == 2


def test_resuming_a_finished_run_leaves_its_checkpoint_alone(tmp_path):
    images, _ = disc_images(tmp_path)
    cfg = tiny(max_steps=2, batch_size=2, epochs=5)  # one step per epoch (a batch of one is dropped)
    first = train(cfg, images, tmp_path / "run")
    last = tmp_path / "run" / "last.pt"
    before = (last.read_bytes(), os.stat(last).st_mtime_ns)
    again = train(cfg, images, tmp_path / "run", resume=True)  # max_steps reached: nothing to train
    assert (again.step, again.epoch, again.losses) == (first.step, first.epoch, [])
    assert (last.read_bytes(), os.stat(last).st_mtime_ns) == before
    # a resume that trains does write it
    more = train(cfg.replace(max_steps=3), images, tmp_path / "run", resume=True)
    assert first.step == 2 and more.step == 3 and load_checkpoint(last)["step"] == 3
