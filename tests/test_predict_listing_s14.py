"""predict's images folder, listed as apply lists its own; an output folder removed after the last write.

* ``predict`` listed --images by suffix alone (``train.preflight.list_images``): a FIFO, a dangling symlink
  or a folder named ``x.png`` was taken for an image and failed as one (``x.png: is a FIFO (named pipe),
  not a regular file; not read``, a file of the report's ``outcomes``), and a ``.npy`` file (a mask
  suffix) was dropped unseen. The folder is now listed as ``apply`` lists its --images: entries that are
  not regular files are named in the report's ``not_regular`` (never opened; exit 1) and files with another
  image or mask suffix in ``unmatched``, with the reason they are not read.
* The end-of-run check of ``predict`` (its output folder removed after the last write: the outputs went
  with it) had no test.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from maskrefine.pipeline.reports import Unmatched

STEMS = ("a", "b")
#: Why a file of an images folder with a mask suffix is not read (apply's text for its --images).
NOT_READ = "not read: files of this folder are read from .png, .jpg, .jpeg, .bmp, .tif, .tiff, .webp only"


def _not_regular(path: Path, what: str) -> str:
    return f"{path}: is {what}, not a regular file; skipped (never opened)"


def _images(folder: Path, stems=STEMS) -> Path:
    """``folder/<stem>.png``: a bright noisy disc on a dark ground, 48 x 64."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:64]
    disc = (xx - 32) ** 2 + (yy - 24) ** 2 < 16**2
    for stem in stems:
        image = np.clip(40 + 160 * disc[..., None] + rng.normal(0, 8, (48, 64, 3)), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"{stem}.png"), image)
    return folder


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A pixels-backbone checkpoint trained for one step (random weights, a few seconds on a CPU)."""
    pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")
    from maskrefine.train import preset, train

    root = tmp_path_factory.mktemp("predict_listing")
    cfg = preset("tiny", backbone="pixels", head_fine_channels=(8, 8), max_steps=1)
    return train(cfg, _images(root / "images"), root / "run").checkpoint


def _predict(*args, **kwargs):
    from maskrefine.train.predict_job import predict_folder

    return predict_folder(*args, **kwargs)


def _cli(*args: str):
    from maskrefine.cli import main

    return CliRunner().invoke(main, ["predict", *args])


class _FifoWatch:
    """Unblock a reader that opens ``fifo`` (it would hang the test) and remember that one did."""

    def __init__(self, fifo: Path) -> None:
        self.fifo, self.opened, self._done = fifo, False, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.is_set():
            try:  # succeeds only while a reader has it open (ENXIO otherwise)
                fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                time.sleep(0.01)
                continue
            self.opened = True
            os.close(fd)

    def stop(self) -> bool:
        self._done.set()
        self._thread.join()
        return self.opened


# ------------------------------------------------------------------- entries that are not regular files


def _hostile(images: Path, kind: str) -> tuple[Path, str]:
    """Make the entry ``kind`` in ``images``; return its path and what the report says it is."""
    if kind == "fifo":
        path = images / "x.png"
        os.mkfifo(path)
        return path, "a FIFO (named pipe)"
    if kind == "dangling symlink":
        path = images / "y.png"
        path.symlink_to(images.parent / "gone.png")
        return path, "a dangling symlink"
    path = images / "z.png"
    path.mkdir()
    (path / "inner.png").write_bytes((images / "a.png").read_bytes())  # never read either
    return path, "a folder"


@pytest.mark.parametrize("kind", ["fifo", "dangling symlink", "folder"])
def test_an_entry_that_is_not_a_regular_file_is_named_never_opened(ckpt, tmp_path, kind) -> None:
    # was taken for an image: a failed outcome "x.png: is a FIFO (named pipe), not a regular file; not
    # read"; now named as apply names it, in not_regular, and never opened
    images = _images(tmp_path / "images")
    entry, what = _hostile(images, kind)
    watch = _FifoWatch(entry) if kind == "fifo" else None
    out, report_path = tmp_path / "out", tmp_path / "r.json"
    report = _predict(images, ckpt, out, report_path=report_path)
    assert watch is None or not watch.stop(), "predict opened the FIFO"
    assert [failure.message for failure in report.not_regular] == [_not_regular(entry, what)]
    assert not report.ok and report.nothing_processed is None
    assert [(o.stem, o.status) for o in report.outcomes] == [("a", "written"), ("b", "written")]
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    saved = json.loads(report_path.read_text())
    assert saved["ok"] is False and saved["not_regular"] == [
        {"path": str(entry), "problem": f"is {what}, not a regular file; skipped (never opened)"}
    ]


@pytest.mark.parametrize("kind", ["fifo", "dangling symlink", "folder"])
def test_the_cli_names_an_entry_that_is_not_a_regular_file_and_exits_1(ckpt, tmp_path, kind) -> None:
    images = _images(tmp_path / "images")
    entry, what = _hostile(images, kind)
    watch = _FifoWatch(entry) if kind == "fifo" else None
    out = tmp_path / "out"
    result = _cli("--images", str(images), "--checkpoint", str(ckpt), "--out", str(out), "-q")
    assert watch is None or not watch.stop(), "predict opened the FIFO"
    assert result.exit_code == 1, result.output
    assert f"error: {_not_regular(entry, what)}\n" in result.stderr
    assert "written 2, skipped 0, failed 0, unmatched 0, duplicates 0, not regular files 1" in result.stdout
    assert "Traceback" not in result.output
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]


def test_an_entry_sharing_an_image_stem_makes_the_stem_a_duplicate(ckpt, tmp_path) -> None:
    # as apply: which of x.jpg and the FIFO x.png was meant is not known, so neither is used
    images = _images(tmp_path / "images")
    shutil.copyfile(images / "a.png", images / "x.jpg")
    os.mkfifo(images / "x.png")
    report = _predict(images, ckpt, tmp_path / "out")
    assert report.duplicates == {"x": [images / "x.jpg", images / "x.png"]}
    assert [f.message for f in report.not_regular] == [_not_regular(images / "x.png", "a FIFO (named pipe)")]
    assert [o.stem for o in report.outcomes] == ["a", "b"] and not report.ok


# ------------------------------------------------------------------------- files with a mask suffix


def test_a_npy_file_among_the_images_is_listed_as_not_read(ckpt, tmp_path) -> None:
    # was dropped unseen (list_images kept image suffixes only); now listed with the reason, as apply does
    images = _images(tmp_path / "images")
    npy = images / "m.npy"
    np.save(npy, np.zeros((4, 4), np.float32))
    (images / ".hidden.png").write_bytes(b"not an image")  # hidden: left out, as apply leaves it out
    out, report_path = tmp_path / "out", tmp_path / "r.json"
    report = _predict(images, ckpt, out, report_path=report_path)
    assert report.unmatched == [Unmatched(npy, "images", NOT_READ)]
    assert report.ok and report.counts["written"] == 2 and not report.not_regular  # a note, as in apply
    assert json.loads(report_path.read_text())["unmatched"] == [
        {"path": str(npy), "folder": "images", "reason": NOT_READ}
    ]
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]

    result = _cli("--images", str(images), "--checkpoint", str(ckpt), "--out", str(tmp_path / "o2"))
    assert result.exit_code == 0, result.output
    assert (
        f"note: 1 file(s) of --images are not read; not processed:\n  {npy} ({NOT_READ})\n" in result.stderr
    )
    assert "written 2, skipped 0, failed 0, unmatched 1, duplicates 0" in result.stdout
    assert ".hidden" not in result.output


def test_apply_still_says_its_files_have_no_partner(tmp_path) -> None:
    # the header of predict's list above is predict's own; apply's is unchanged
    from maskrefine.cli import main

    masks, images = tmp_path / "masks", _images(tmp_path / "images")
    masks.mkdir()
    for stem in STEMS:
        cv2.imwrite(str(masks / f"{stem}.png"), np.full((48, 64), 255, np.uint8))
    np.save(images / "m.npy", np.zeros((4, 4), np.float32))
    args = ["apply", "--masks", str(masks), "--images", str(images), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(main, [*args, "--method", "identity"])
    assert result.exit_code == 0, result.output
    assert (
        "note: 1 file(s) have no partner in the other folder; not processed:\n"
        f"  {images / 'm.npy'} ({NOT_READ})\n"
    ) in result.stderr


# ------------------------------------------------------------------------------- nothing to predict


def test_an_empty_images_folder_says_nothing_was_processed(ckpt, tmp_path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    (images / ".hidden.png").write_bytes(b"x")
    report = _predict(images, ckpt, tmp_path / "out")
    assert not report.ok and report.nothing_processed == "no input files found"
    result = _cli("--images", str(images), "--checkpoint", str(ckpt), "--out", str(tmp_path / "o2"), "-q")
    assert result.exit_code == 1, result.output
    assert result.stderr == "error: nothing was processed: no input files found\n"


def test_an_images_folder_of_subfolders_says_so(ckpt, tmp_path) -> None:
    images = tmp_path / "images"
    for name in ("cls1", "cls2"):
        _images(images / name)
    expected = (
        f"no input files found: images folder {str(images)!r} holds only subfolders (cls1, cls2), which are "
        "not read; point --images (images_dir) at one of them or flatten the folder"
    )
    report = _predict(images, ckpt, tmp_path / "out")
    assert not report.ok and report.nothing_processed == expected
    result = _cli("--images", str(images), "--checkpoint", str(ckpt), "--out", str(tmp_path / "o2"), "-q")
    assert result.exit_code == 1, result.output
    assert result.stderr == f"error: nothing was processed: {expected}\n"


def test_an_images_folder_holding_only_a_npy_file_names_it(ckpt, tmp_path) -> None:
    # was "no input files found": the .npy file was not seen
    images = tmp_path / "images"
    images.mkdir()
    np.save(images / "m.npy", np.zeros((4, 4), np.float32))
    report = _predict(images, ckpt, tmp_path / "out")
    assert not report.ok and report.nothing_processed is not None
    assert "1 file of the images folder not read" in report.nothing_processed
    # one folder: no "partner in the other folder" (predict has none)
    assert report.nothing_processed.startswith("no image to predict; 1 file of the images folder not read")
    result = _cli("--images", str(images), "--checkpoint", str(ckpt), "--out", str(tmp_path / "o2"))
    assert result.exit_code == 1, result.output
    assert f"  {images / 'm.npy'} ({NOT_READ})\n" in result.stderr


# --------------------------------------------------------- output folder removed after the last write


def _remove_after_writes(monkeypatch, out: Path, writes: int) -> list[str]:
    """Make the ``writes``-th output write remove ``out`` (rm -rf) once it is done; return the names."""
    from maskrefine.io.imageio import OutputFolder

    original, names = OutputFolder.write_mask, []

    def write_mask(self, name, *args, **kwargs):
        written = original(self, name, *args, **kwargs)
        names.append(name)
        if len(names) == writes:
            shutil.rmtree(out)
        return written

    monkeypatch.setattr(OutputFolder, "write_mask", write_mask)
    return names


@pytest.mark.parametrize("save_coarse", [False, True], ids=["fine", "coarse"])
def test_predict_finds_its_output_folder_removed_after_the_last_write(
    ckpt, tmp_path, monkeypatch, save_coarse
) -> None:
    # the only check that sees it: no write failed, and every image was written
    images = _images(tmp_path / "images")
    out = tmp_path / "out"
    report_path = out / "logs" / "r.json"
    names = _remove_after_writes(monkeypatch, out, 4 if save_coarse else 2)
    from maskrefine.errors import OutputFolderRemovedError

    with pytest.raises(OutputFolderRemovedError) as caught:
        _predict(images, ckpt, out, report_path=report_path, save_coarse=save_coarse)
    assert names == (["a.png", "a.png", "b.png", "b.png"] if save_coarse else ["a.png", "b.png"])
    error = caught.value
    assert error.not_processed == 0
    assert str(error) == (
        f"output folder '{out}' was removed during the run, with the outputs written into it; the report "
        f"{report_path} was not written (it was to go in that folder)"
    )
    assert [o.status for o in error.report.outcomes] == ["written", "written"]
    # every file was written, but the outputs went with the folder: the report is not ok
    assert error.report.removed_output_folders == [str(out)] and not error.report.ok
    assert not out.exists()  # never made again, not even for the report
    assert sorted(p.name for p in images.iterdir()) == ["a.png", "b.png"]


def test_predict_writes_a_report_outside_the_output_folder_removed_after_the_last_write(
    ckpt, tmp_path, monkeypatch
) -> None:
    images = _images(tmp_path / "images")
    out, report_path = tmp_path / "out", tmp_path / "r.json"
    _remove_after_writes(monkeypatch, out, 2)
    from maskrefine.errors import OutputFolderRemovedError

    with pytest.raises(OutputFolderRemovedError) as caught:
        _predict(images, ckpt, out, report_path=report_path)
    assert str(caught.value).endswith(
        f"with the outputs written into it; the report {report_path} lists every file"
    )
    data = json.loads(report_path.read_text())
    assert data["counts"]["written"] == 2
    assert data["ok"] is False and data["removed_output_folders"] == [str(out)]
    assert not out.exists()


@pytest.mark.parametrize("save_coarse", [False, True], ids=["fine", "coarse"])
def test_the_predict_cli_says_once_that_its_output_folder_was_removed_after_the_last_write(
    ckpt, tmp_path, monkeypatch, save_coarse
) -> None:
    images = _images(tmp_path / "images")
    out = tmp_path / "out"
    report_path = out / "r.json"
    _remove_after_writes(monkeypatch, out, 4 if save_coarse else 2)
    args = [
        "--images",
        str(images),
        "--checkpoint",
        str(ckpt),
        "--out",
        str(out),
        "--report",
        str(report_path),
    ]
    result = _cli(*args, *(["--save-coarse"] if save_coarse else []), "-q")
    assert result.exit_code == 1, result.output
    assert [line for line in result.output.splitlines() if line] == [
        f"error: output folder '{out}' was removed during the run, with the outputs written into it; the "
        f"report {report_path} was not written (it was to go in that folder)"
    ]
    assert not out.exists()


def test_predict_names_the_coarse_folder_when_only_it_was_removed(ckpt, tmp_path, monkeypatch) -> None:
    # it said "output folder 'out' was removed" while out was still there, and dropped a report in out
    images = _images(tmp_path / "images")
    out = tmp_path / "out"
    report_path = out / "r.json"
    _remove_after_writes(monkeypatch, out / "coarse", 4)
    from maskrefine.errors import OutputFolderRemovedError

    with pytest.raises(OutputFolderRemovedError) as caught:
        _predict(images, ckpt, out, report_path=report_path, save_coarse=True)
    assert str(caught.value) == (
        f"output folder '{out / 'coarse'}' was removed during the run, with the outputs written into it; "
        f"the report {report_path} lists every file"
    )
    data = json.loads(report_path.read_text())
    assert data["counts"]["written"] == 2  # out itself is still there
    assert data["ok"] is False and data["removed_output_folders"] == [str(out / "coarse")]
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "r.json"]


# ------------------------------------------------------------------ one owner of the "not processed" text


def test_apply_and_predict_say_alike_that_a_file_was_not_processed(tmp_path) -> None:
    from maskrefine.pipeline.reports import not_processed_outcome

    out = tmp_path / "out"
    outcome = not_processed_outcome(
        "a", tmp_path / "m.png", tmp_path / "i.png", out / "a.png", out, tmp_path / "i.png"
    )
    assert (
        outcome.status == "failed" and outcome.mask == tmp_path / "m.png" and outcome.output == out / "a.png"
    )
    assert (
        outcome.error
        == f"{tmp_path / 'i.png'}: not processed: the output folder {out} was removed during the run"
    )


# --------------------------------------------------------------- predict resumes with the same settings


def _interrupted_predict(ckpt, tmp_path: Path) -> tuple[Path, Path, Path]:
    images = _images(tmp_path / "images", stems=("a", "b", "c"))
    out, report = tmp_path / "out", tmp_path / "r.json"
    _predict(images, ckpt, out, refine="guided", report_path=report)
    (out / "c.png").unlink()  # as after a kill
    return images, out, report


@pytest.mark.parametrize(
    ("settings", "difference"),
    [
        ({"refine": "none"}, "--refine (refine) is 'none', but the report records 'guided'"),
        ({"polarity": "none"}, "--polarity (polarity) is 'none', but the report records 'border'"),
    ],
)
def test_predict_refuses_to_resume_with_other_settings_than_its_report_records(
    ckpt, tmp_path, settings, difference
):
    from maskrefine.errors import ConfigError

    images, out, report = _interrupted_predict(ckpt, tmp_path)
    kept, report_before = sorted(p.name for p in out.iterdir()), report.read_bytes()
    with pytest.raises(ConfigError) as caught:
        _predict(
            images, ckpt, out, **{"refine": "guided", **settings}, report_path=report, skip_existing=True
        )
    assert str(caught.value).startswith(
        f"--skip-existing: {difference} ({report}); 2 of the 2 outputs already in {out} are older than that "
        "report"
    )
    assert sorted(p.name for p in out.iterdir()) == kept and report.read_bytes() == report_before


def test_predict_in_another_format_keeps_no_output_and_is_not_refused(ckpt, tmp_path):
    # .npy outputs: none of the .png ones is kept, so nothing would be mixed under one name
    images, out, report = _interrupted_predict(ckpt, tmp_path)
    resumed = _predict(images, ckpt, out, refine="guided", fmt="npy", report_path=report, skip_existing=True)
    assert resumed.counts["written"] == 3


def test_predict_resumes_with_the_same_settings_and_a_checkpoint_spelled_another_way(ckpt, tmp_path):
    images, out, report = _interrupted_predict(ckpt, tmp_path)
    (tmp_path / "link.pt").symlink_to(ckpt)
    resumed = _predict(
        images,
        tmp_path / "link.pt",
        out,
        refine="guided",
        report_path=report,
        skip_existing=True,
        device="cpu",
    )
    assert resumed.counts["skipped"] == 2 and resumed.counts["written"] == 1
    assert json.loads(report.read_text())["config"]["checkpoint"] == os.path.abspath(tmp_path / "link.pt")


def test_the_predict_cli_refuses_a_resume_with_another_refine_with_exit_2(ckpt, tmp_path):
    images, out, report = _interrupted_predict(ckpt, tmp_path)
    args = ["--images", str(images), "--checkpoint", str(ckpt), "--out", str(out), "--report", str(report)]
    result = _cli(*args, "--skip-existing", "--refine", "none")
    assert result.exit_code == 2, result.output
    assert "--refine (refine) is 'none', but the report" in result.output and "Traceback" not in result.output
    assert not (out / "c.png").exists()


def test_list_folder_is_the_one_listing_of_an_input_folder(tmp_path):
    # match_folders (apply, score) and predict list a folder through it: files by stem, stems named twice,
    # files with another image or mask suffix (not read), entries that are not regular files (skipped)
    from maskrefine.io.pairs import IMAGE_EXTENSIONS, list_folder, match_folders

    folder = _images(tmp_path / "images", stems=("a", "b", "d"))
    (folder / "b.jpg").write_bytes((folder / "b.png").read_bytes())
    os.mkfifo(folder / "c.png")
    np.save(folder / "m.npy", np.zeros((2, 2), np.float32))
    (folder / ".hidden.png").write_bytes(b"")
    listing = list_folder(folder, IMAGE_EXTENSIONS)
    assert listing.files == {"a": folder / "a.png", "d": folder / "d.png"}
    assert listing.duplicates == {"b": [folder / "b.jpg", folder / "b.png"]}
    assert listing.unread == [folder / "m.npy"]
    assert [(item.path.name, item.reason) for item in listing.skipped] == [("c.png", "a FIFO (named pipe)")]
    pairing = match_folders(folder, folder, IMAGE_EXTENSIONS, IMAGE_EXTENSIONS)
    assert [pair.stem for pair in pairing.pairs] == ["a", "d"] and pairing.unread_first == listing.unread
