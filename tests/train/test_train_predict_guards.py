"""predict: inputs and foreign files at output paths are never replaced; malformed checkpoints are named."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")

from _train_helpers import copy_folder, disc_images  # noqa: E402

from maskrefine.errors import ConfigError  # noqa: E402
from maskrefine.train import preset, train  # noqa: E402
from maskrefine.train.checkpoint import weights_digest  # noqa: E402
from maskrefine.train.predict import load_predictor, predict_folder  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def test_report_never_replaces_a_backbone_checkpoint(tmp_path, tiny_vit_file):
    images, _ = disc_images(tmp_path)
    cfg = preset("tiny", backbone_checkpoint=str(tiny_vit_file), head_fine_channels=(8, 8), max_steps=1)
    ckpt = train(cfg, images, tmp_path / "run").checkpoint
    before = tiny_vit_file.read_bytes()
    # the file given with --backbone-checkpoint
    with pytest.raises(ConfigError, match="report file .*tiny_vit.pth is the backbone checkpoint file"):
        predict_folder(
            images, ckpt, tmp_path / "o1", backbone_checkpoint=tiny_vit_file, report_path=tiny_vit_file
        )
    # the file recorded in the run (no --backbone-checkpoint)
    with pytest.raises(ConfigError, match="is the run's backbone checkpoint file"):
        predict_folder(images, ckpt, tmp_path / "o2", report_path=tiny_vit_file)
    assert tiny_vit_file.read_bytes() == before
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_report_equal_to_the_output_folder_is_refused_first(tmp_path, run):
    images, ckpt = run
    with pytest.raises(ConfigError, match="report file .* is also the output folder"):
        predict_folder(images, ckpt, tmp_path / "out", report_path=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_output_appearing_meanwhile_is_never_replaced(tmp_path, run):
    images, ckpt = run
    out = tmp_path / "out"

    def progress(done, total):
        if done == 1:  # another run publishes c.png meanwhile
            (out / "c.png").write_bytes(b"OTHER RUN")

    report = predict_folder(images, ckpt, out, progress=progress)
    assert (out / "c.png").read_bytes() == b"OTHER RUN"
    assert not report.ok and report.counts["failed"] == 1
    assert "c.png: output appeared meanwhile" in report.failures[0].error

    (out / "c.png").unlink()
    for name in ("a.png", "b.png"):
        (out / name).unlink()

    def again(done, total):
        if done == 1:
            (out / "c.png").write_bytes(b"OTHER RUN")

    report = predict_folder(images, ckpt, out, skip_existing=True, progress=again)
    assert (out / "c.png").read_bytes() == b"OTHER RUN"
    assert report.ok and report.counts["written"] == 2 and report.counts["skipped"] == 1


@pytest.mark.parametrize("flag", ["skip_existing", "overwrite"])
@pytest.mark.parametrize("coarse", [False, True])
def test_foreign_things_at_output_paths_are_refused_before_work(tmp_path, run, flag, coarse):
    images, ckpt = run
    out = tmp_path / "out"
    where = out / "coarse" if coarse else out
    where.mkdir(parents=True)
    (where / "a.png").mkdir()
    os.mkfifo(where / "b.png")
    (where / "c.png").symlink_to(tmp_path / "elsewhere.png")
    with pytest.raises(ConfigError, match=r"3 output path\(s\) in .* are not regular files.*folder.*FIFO"):
        predict_folder(images, ckpt, out, save_coarse=True, **{flag: True})
    assert sorted(p.name for p in out.iterdir()) == (["coarse"] if coarse else ["a.png", "b.png", "c.png"])
    assert not (tmp_path / "elsewhere.png").exists()


def test_skip_existing_finishes_a_half_written_stem(tmp_path, run):
    images, ckpt = run
    out = tmp_path / "out"
    assert predict_folder(images, ckpt, out, save_coarse=True).counts["written"] == 3
    (out / "coarse" / "b.png").unlink()  # as left by a kill between the fine and the coarse write
    (out / "b.png").write_bytes(b"KEEP ME")  # an existing output is never replaced
    report = predict_folder(images, ckpt, out, save_coarse=True, skip_existing=True)
    assert report.ok and report.counts["written"] == 1 and report.counts["skipped"] == 2
    assert (out / "coarse" / "b.png").is_file()
    assert (out / "b.png").read_bytes() == b"KEEP ME"


def test_skip_existing_removes_our_stale_temporary_files(tmp_path, run):
    images, ckpt = run
    out = tmp_path / "out"
    assert predict_folder(images, ckpt, out, save_coarse=True).counts["written"] == 3
    (out / "b.png").unlink()
    stale = [out / ".b.png.abcdefgh.tmp", out / "coarse" / ".a.png.abcdefgh.tmp"]
    foreign = out / ".notes.txt.abcdefgh.tmp"  # not one of this run's names: kept
    for path in (*stale, foreign):
        path.write_bytes(b"partial")
        os.utime(path, (0, 0))  # old enough to belong to a killed run
    report = predict_folder(images, ckpt, out, save_coarse=True, skip_existing=True)
    assert report.ok and report.counts["written"] == 1
    assert not any(path.exists() for path in stale) and foreign.exists()


def test_overwrite_refuses_an_input_image_that_is_a_symlink_to_an_output(tmp_path, run):
    images, ckpt = run
    out = tmp_path / "out"
    assert predict_folder(images, ckpt, out).counts["written"] == 3
    linked = tmp_path / "linked"
    linked.mkdir()
    for path in sorted(images.iterdir()):
        (linked / path.name).write_bytes(path.read_bytes())
    victim = sorted(out.glob("*.png"))[0]
    (linked / "z.png").symlink_to(victim)  # an "image" that is one of the outputs
    before = victim.read_bytes()
    with pytest.raises(ConfigError, match="is a symbolic link to the existing output"):
        predict_folder(linked, ckpt, out, overwrite=True)
    assert victim.read_bytes() == before


def _malformed(tmp_path, ckpt, name, change):
    state = copy.deepcopy(torch.load(ckpt, weights_only=True))
    change(state)
    path = tmp_path / f"{name}.pt"
    torch.save(state, path)
    return path


@pytest.mark.parametrize(
    "name, change, problem",
    [
        ("nocfg", lambda s: s.pop("config"), r"entry 'config' \(the training settings\) is missing"),
        ("cfgnone", lambda s: s.update(config=None), "entry 'config' .* is None"),
        ("cfgstr", lambda s: s.update(config="notadict"), "entry 'config' .* is a str, not a table"),
        ("cfgkey", lambda s: s["config"].update(bogus=1), "unknown training setting.*: bogus$"),
        ("nohead", lambda s: s.pop("head"), "entry 'head' .* is missing"),
        ("headstr", lambda s: s.update(head="x"), "entry 'head' .* is a str, not a table of tensors"),
    ],
)
def test_malformed_checkpoints_are_named(tmp_path, run, name, change, problem):
    images, ckpt = run
    bad = _malformed(tmp_path, ckpt, name, change)
    with pytest.raises(ConfigError, match=problem) as info:
        predict_folder(images, bad, tmp_path / "out")
    message = str(info.value)
    assert message.startswith(f"checkpoint {bad}: ") and message.count(str(bad)) == 1
    with pytest.raises(ConfigError, match=problem):
        load_predictor(bad)
    assert not (tmp_path / "out").exists()


def test_cli_prints_no_opencv_lines_for_a_truncated_image(tmp_path, run):
    images, ckpt = run
    folder = copy_folder(images, tmp_path / "images")
    (folder / "t.png").write_bytes((images / "a.png").read_bytes()[:100])
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    args = ["predict", "--images", str(folder), "--checkpoint", str(ckpt), "--out", str(tmp_path / "o")]
    proc = subprocess.run(
        [sys.executable, "-m", "maskrefine.cli", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 1, proc.stderr
    assert "t.png: cannot decode" in proc.stderr
    assert "WARN" not in proc.stderr and "grfmt_png" not in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("images", "error", "problem"),
    [
        # an 8-bit image was clamped to [0, 1] (every pixel above 0 became white), silently
        (lambda im: [(im * 255).astype("uint8")], TypeError, r"`images\[0\]` must be a floating-point array"),
        (lambda im: [im * 255], ValueError, r"`images\[0\]` values must lie in \[0, 1\]"),
        (lambda im: [im, im[..., 0]], ValueError, r"`images\[1\]` must have shape \(H, W, 3\)"),
        (lambda im: [im * float("nan")], ValueError, r"`images\[0\]` contains .* NaN"),
        (lambda im: im, TypeError, r"`images` must be a list .* \(for one image: \[image\]\)"),
    ],
)
def test_predictor_names_a_bad_image(run, images, error, problem) -> None:
    import numpy as np

    predictor = load_predictor(run[1])
    image = np.random.default_rng(0).random((40, 56, 3))
    with pytest.raises(error, match=problem):
        predictor.predict(images(image))


def test_predictor_reads_any_float_layout_alike_and_checks_its_arguments(run) -> None:
    import numpy as np

    predictor = load_predictor(run[1])
    image = np.random.default_rng(0).random((40, 56, 3))
    want = predictor.predict([image.astype(np.float32)])[0].fine
    for variant in (image.astype(">f8"), np.asfortranarray(image), image[::-1].copy()[::-1]):
        np.testing.assert_array_equal(predictor.predict([variant])[0].fine, want)
    model, cfg = predictor.model, predictor.cfg
    with pytest.raises(ConfigError, match="device must be"):
        type(predictor)(model, cfg, device="gpu")
    with pytest.raises(ConfigError, match="polarity must be one of"):
        type(predictor)(model, cfg, polarity="up")
    with pytest.raises(TypeError, match="`model` must be a SempartModel"):
        type(predictor)("model", cfg)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["overwrite", "skip_existing", "save_coarse"])
def test_predict_folder_flags_must_be_bools(run, tmp_path, name) -> None:
    # overwrite="no" was read by truthiness: every existing output replaced
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("keep me")
    with pytest.raises(ConfigError, match=f"`{name}` must be True or False"):
        predict_folder(run[0], run[1], out, **{name: "no"})
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize("save_coarse", [False, True], ids=["output", "coarse-output"])
def test_predict_never_replaces_the_runs_backbone_file(tmp_path, tiny_vit_file, save_coarse):
    # the backbone path recorded in the checkpoint is read after torch loads; it is still never an output
    images, _ = disc_images(tmp_path)
    where = tmp_path / "soft" / ("coarse/b.png" if save_coarse else "a.png")
    where.parent.mkdir(parents=True)
    where.write_bytes(tiny_vit_file.read_bytes())  # a torch file under an output's name
    cfg = preset("tiny", backbone_checkpoint=str(where), head_fine_channels=(8, 8), max_steps=1)
    ckpt = train(cfg, images, tmp_path / "run").checkpoint
    before = where.read_bytes()
    with pytest.raises(ConfigError, match="run's backbone checkpoint .* is also the output of"):
        predict_folder(images, ckpt, tmp_path / "soft", overwrite=True, save_coarse=save_coarse)
    assert where.read_bytes() == before


def test_report_that_maskrefine_did_not_write_is_refused_unless_overwrite(tmp_path, run):
    # was: replaced at the end of the run
    images, ckpt = run
    report = tmp_path / "notes.json"
    report.write_text('{"mine": 1}\n')
    with pytest.raises(
        ConfigError, match="notes.json exists and is not a report or CSV file maskrefine wrote"
    ):
        predict_folder(images, ckpt, tmp_path / "out", report_path=report)
    assert report.read_text() == '{"mine": 1}\n' and not (tmp_path / "out").exists()
    predict_folder(images, ckpt, tmp_path / "out", report_path=report, overwrite=True)
    assert report.read_text().startswith('{\n  "ok"')
    predict_folder(
        images, ckpt, tmp_path / "out", report_path=report, skip_existing=True
    )  # its own: replaced


def test_resume_refuses_a_checkpoint_retrained_in_place(tmp_path, run):
    images, trained = run
    ckpt = tmp_path / "run" / "last.pt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(trained.read_bytes())
    out, report_file = tmp_path / "out", tmp_path / "report.json"
    first = predict_folder(images, ckpt, out, report_path=report_file)
    assert first.ok and first.config["head_sha256"] == weights_digest(load_predictor(ckpt).model.head)
    (out / "c.png").unlink()  # the run was stopped before its last image
    # the same checkpoint file, its weights unchanged: resumes
    again = predict_folder(images, ckpt, out, report_path=report_file, skip_existing=True)
    assert again.ok and again.counts["written"] == 1 and again.counts["skipped"] == 2
    (out / "c.png").unlink()
    kept = {name: (out / name).read_bytes() for name in ("a.png", "b.png")}
    # retrained in place: another seed's weights at the same path
    cfg = preset("tiny", backbone="pixels", head_fine_channels=(8, 8), max_steps=1, seed=7)
    other = train(cfg, images, tmp_path / "r2")
    ckpt.write_bytes(Path(other.checkpoint).read_bytes())
    refused = r"--skip-existing: --checkpoint's head weights \(head_sha256\) is '[0-9a-f]{64}', but the"
    with pytest.raises(ConfigError, match=refused):
        predict_folder(images, ckpt, out, report_path=report_file, skip_existing=True)
    assert not (out / "c.png").exists()
    assert {name: (out / name).read_bytes() for name in kept} == kept


@pytest.mark.parametrize("save_coarse", [False, True])
def test_a_predict_run_that_writes_nothing_leaves_no_folder_of_its_own(tmp_path, run, save_coarse):
    _, ckpt = run
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"not an image")
    report = predict_folder(broken, ckpt, tmp_path / "out", save_coarse=save_coarse)
    assert not report.ok and report.counts["failed"] == 1 and report.counts["written"] == 0
    assert not (tmp_path / "out").exists()
    (tmp_path / "kept").mkdir()  # a folder that was there before the run stays
    predict_folder(broken, ckpt, tmp_path / "kept", save_coarse=save_coarse)
    assert (tmp_path / "kept").is_dir() and not (tmp_path / "kept" / "coarse").exists()


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            RuntimeError(
                "[enforce fail at alloc_cpu.cpp:127] data. DefaultCPUAllocator: not enough memory: you tried "
                "to allocate 38655492100 bytes."
            ),
            "out of memory: torch could not allocate 36.0 GiB for a batch of 1 image(s)",
        ),
        (
            RuntimeError("CUDA out of memory. Tried to allocate 1.50 GiB (GPU 0; 79.1 GiB total capacity)"),
            "out of memory: torch could not allocate 1.50 GiB for a batch of 1 image(s)",
        ),
    ],
)
def test_an_out_of_memory_batch_is_named_in_words(tmp_path, run, monkeypatch, error, expected):
    # was: "cannot predict: RuntimeError: [enforce fail at alloc_cpu.cpp:127] data. DefaultCPUAllocator..."
    from maskrefine.train.predict import Predictor

    images, ckpt = run

    def no_memory(self, batch):
        raise error

    monkeypatch.setattr(Predictor, "predict", no_memory)
    report = predict_folder(images, ckpt, tmp_path / "out")
    failed = [outcome for outcome in report.outcomes if outcome.status == "failed"]
    assert failed and len(failed) == len(report.outcomes)
    for outcome in failed:
        assert expected in outcome.error and "enforce fail" not in outcome.error, outcome.error
        assert "smaller image_size" in outcome.error


def test_other_predict_errors_keep_their_own_words(tmp_path, run, monkeypatch):
    from maskrefine.train.predict import Predictor

    images, ckpt = run

    def broken(self, batch):
        raise RuntimeError("shape mismatch in head")

    monkeypatch.setattr(Predictor, "predict", broken)
    report = predict_folder(images, ckpt, tmp_path / "out")
    assert all("cannot predict: RuntimeError: shape mismatch in head" in o.error for o in report.outcomes)


def test_a_failed_image_of_an_overwrite_run_names_the_earlier_output_it_kept(tmp_path, run):
    images, ckpt = run
    folder = copy_folder(images, tmp_path / "images")
    out = tmp_path / "out"
    assert predict_folder(folder, ckpt, out, save_coarse=True).ok
    earlier = (out / "b.png").read_bytes()
    (folder / "b.png").write_bytes((folder / "b.png").read_bytes()[:100])  # truncated
    report = predict_folder(folder, ckpt, out, save_coarse=True, overwrite=True)
    (failed,) = report.failures
    assert failed.stem == "b" and "cannot decode" in (failed.error or "")
    assert (failed.error or "").endswith(
        f"; the output {out / 'b.png'} of an earlier run was there when this --overwrite run started and "
        "was not replaced"
    )
    assert (out / "b.png").read_bytes() == earlier and (out / "coarse" / "b.png").exists()
    # a fresh folder: nothing to mention
    fresh = predict_folder(folder, ckpt, tmp_path / "fresh", overwrite=True)
    assert "earlier run" not in (fresh.failures[0].error or "")
