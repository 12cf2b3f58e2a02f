"""Trainer: learning on real images, exact resume, the run folder, refusals."""

from __future__ import annotations

import json
import shutil

import pytest

torch = pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")

from _train_helpers import tiny_cfg  # noqa: E402

from maskrefine.errors import ConfigError  # noqa: E402
from maskrefine.train import build_model, load_checkpoint, objective, preset, train  # noqa: E402
from maskrefine.train.data import Augment, ImageFolder  # noqa: E402
from maskrefine.train.trainer import epoch_batches  # noqa: E402


def test_few_steps_decrease_the_loss_on_a_fixed_batch(sod_images, tiny_vit_file):
    cfg = tiny_cfg(tiny_vit_file, lr=1e-3, batch_size=4)
    torch.manual_seed(0)
    model, _ = build_model(cfg)
    model.train()
    ds = ImageFolder(sod_images, image_size=64, resize=72, augment=Augment(), seed=0)
    batch = torch.stack([ds[i][0] for i in range(4)])
    optimizer = torch.optim.AdamW(model.head.parameters(), lr=cfg.lr, betas=cfg.betas)
    losses = []
    for _ in range(10):
        loss, terms = objective(model, batch, cfg, torch.Generator().manual_seed(0))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        assert set(terms) == {"ncut", "pixel_gtv", "feature_gtv", "coarse_fine", "crop_ncut", "crop"}
    # the random tiny ViT's keys are nearly all alike (NCut ~ 1 whatever the mask): the other terms fall
    assert losses[-1] < 0.985 * losses[0], losses
    assert min(losses[5:]) < min(losses[:5]), losses
    assert not any(p.grad is not None for p in model.backbone.parameters())  # frozen


def test_resume_equals_continuous(tmp_path, sod_images, tiny_vit_file):
    cfg = tiny_cfg(tiny_vit_file, epochs=2, batch_size=3, checkpoint_every=2)
    full = train(cfg, sod_images, tmp_path / "full")
    assert full.step == 6 and len(full.losses) == 6  # 8 images / 3 = 3 batches (last has 2) x 2 epochs
    first = train(cfg.replace(max_steps=4), sod_images, tmp_path / "split")
    assert first.step == 4 and first.epoch == 1
    second = train(cfg, sod_images, tmp_path / "split", resume=True)
    assert second.step == 6
    assert first.losses + second.losses == full.losses  # bit-identical, crop loss included
    a, b = load_checkpoint(tmp_path / "full" / "last.pt"), load_checkpoint(tmp_path / "split" / "last.pt")
    for key in a["head"]:
        assert torch.equal(a["head"][key], b["head"][key]), key
    # the resumed log has each step once, in order
    steps = [
        json.loads(line)["step"]
        for line in (tmp_path / "split" / "log.jsonl").read_text().splitlines()
        if json.loads(line)["event"] == "step"
    ]
    assert steps == [1, 2, 3, 4, 5, 6]

    # the epoch summaries too: epoch 2 was resumed after its first step, and still counts all 3 steps
    def epochs(run):
        lines = (tmp_path / run / "log.jsonl").read_text().splitlines()
        return [
            {k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in lines
            if json.loads(line)["event"] == "epoch"
        ]

    assert epochs("split") == epochs("full") and [e["steps"] for e in epochs("full")] == [3, 3]


def test_a_run_stopped_before_its_first_checkpoint_resumes(tmp_path, sod_images, tiny_vit_file):
    # Ctrl-C during the first step left config.json and log.jsonl but no last.pt: neither --resume
    # ("last.pt not found") nor a plain rerun ("run folder is not empty") could go on
    cfg = tiny_cfg(tiny_vit_file, epochs=1, batch_size=3, checkpoint_every=0)
    full = train(cfg, sod_images, tmp_path / "full")

    def stop(record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, sod_images, tmp_path / "stopped", progress=stop)
    assert load_checkpoint(tmp_path / "stopped" / "last.pt")["step"] == 0
    again = train(cfg, sod_images, tmp_path / "stopped", resume=True)
    assert again.losses == full.losses  # from step 0: the same run


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_stop_signal_keeps_every_finished_step(tmp_path, sod_images, tiny_vit_file, signame):
    # Ctrl-C, or SIGTERM from a scheduler (the CLI makes it raise Terminated), used to cut a step anywhere
    # and lose every step since the last checkpoint (checkpoint_every 0: the last epoch end). Now the
    # step in progress finishes, last.pt is written at that step, then the stop is raised.
    import os
    import signal

    from maskrefine import _signals

    cfg = tiny_cfg(tiny_vit_file, epochs=2, batch_size=3, checkpoint_every=0)
    full = train(cfg, sod_images, tmp_path / "full")
    signum = getattr(signal, signame)
    previous = signal.getsignal(signal.SIGTERM)

    def stop_at_step_2(record):
        if record["step"] == 2:
            os.kill(os.getpid(), signum)  # only sets the flag: this step is still recorded

    try:
        _signals.raise_on_sigterm()
        expected = _signals.Terminated if signame == "SIGTERM" else KeyboardInterrupt
        with pytest.raises(expected) as raised:
            train(cfg, sod_images, tmp_path / "stopped", progress=stop_at_step_2)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert type(raised.value) is expected
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored after the run
    assert load_checkpoint(tmp_path / "stopped" / "last.pt")["step"] == 2  # not 0
    again = train(cfg, sod_images, tmp_path / "stopped", resume=True)
    assert again.step == full.step and again.losses == full.losses[2:]


def test_run_folder_contents(tmp_path, sod_images, tiny_vit_file):
    seen = []
    result = train(tiny_cfg(tiny_vit_file, max_steps=2), sod_images, tmp_path / "run", progress=seen.append)
    run = tmp_path / "run"
    header = json.loads((run / "config.json").read_text())
    assert header["config"]["backbone_checkpoint"] == str(tiny_vit_file)
    assert header["config"]["crop_sampler"] == "uniform" and "git_sha" in header
    assert header["versions"]["torch"] == torch.__version__ and header["n_images"] == 8
    assert header["backbone"]["kind"] == "dino" and header["backbone"]["patch_size"] == 8
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["event"] for r in records] == ["step", "step"]
    assert records[0]["loss"] == pytest.approx(result.losses[0]) and records[0]["it_s"] > 0
    assert [r["step"] for r in seen] == [1, 2]
    state = load_checkpoint(run / "last.pt")
    assert {"head", "optimizer", "step", "config", "rng", "backbone"} <= set(state)
    assert state["step"] == 2 and state["config"]["seed"] == 0


def test_epoch_batches():
    batches = epoch_batches(9, 4, 0, 0, "drop_single")
    assert [len(b) for b in batches] == [4, 4]  # 9 = 4 + 4 + 1: the batch of one is dropped
    assert [len(b) for b in epoch_batches(9, 4, 0, 0, "keep")] == [4, 4, 1]
    assert epoch_batches(9, 4, 0, 1, "keep") != epoch_batches(9, 4, 0, 0, "keep")
    assert sorted(sum(epoch_batches(10, 4, 3, 2, "keep"), [])) == list(range(10))


def test_refusals(tmp_path, sod_images, tiny_vit_file):
    cfg = tiny_cfg(tiny_vit_file, max_steps=1)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("keep me")
    with pytest.raises(ConfigError, match="not empty; use --resume"):
        train(cfg, sod_images, busy)
    assert (busy / "x").read_text() == "keep me"
    with pytest.raises(ConfigError, match="last.pt not found"):
        train(cfg, sod_images, tmp_path / "fresh", resume=True)
    with pytest.raises(ConfigError, match="inside"):
        train(cfg, sod_images, sod_images / "run")
    with pytest.raises(ConfigError, match="needs --backbone-checkpoint"):
        train(preset("tiny"), sod_images, tmp_path / "nockpt")
    with pytest.raises(ConfigError, match="go together"):
        train(cfg, sod_images, tmp_path / "val", val_images=sod_images)
    train(cfg, sod_images, tmp_path / "run")
    with pytest.raises(ConfigError, match="settings differ.*lr"):
        train(cfg.replace(lr=1.0), sod_images, tmp_path / "run", resume=True)
    (tmp_path / "one").mkdir()
    with pytest.raises(ConfigError, match="at least 2 images"):
        train(cfg, tmp_path / "one", tmp_path / "run2")


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_sha_is_only_maskrefine_s_own(tmp_path, monkeypatch) -> None:
    # an installed maskrefine inside another repository (a venv in the user's project) recorded that
    # project's commit as its git_sha
    import subprocess

    from maskrefine.train import trainer

    repo = tmp_path / "userproj"
    package = repo / ".venv" / "site-packages" / "maskrefine" / "train"
    package.mkdir(parents=True)
    (package / "trainer.py").write_text("# installed copy\n")
    git = ["git", "-C", str(repo), "-c", "user.email=a@b", "-c", "user.name=u"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "user's project"], check=True)
    monkeypatch.setattr(trainer, "__file__", str(package / "trainer.py"))
    assert trainer._git_sha() is None
    subprocess.run([*git, "add", "-f", str(package / "trainer.py")], check=True)  # a checkout: tracked
    subprocess.run([*git, "commit", "-q", "-m", "tracked"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert trainer._git_sha() == head
