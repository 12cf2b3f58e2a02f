"""Writes through an opened output folder (:class:`OutputFolder`) and the writers' clean-up on failure.

An output folder re-pointed during a run (renamed, a symlink swapped to another folder) must never lead a
write into the new target; a failing clean-up must never replace the error that made it clean up.
"""

from __future__ import annotations

import errno
import os
import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from maskrefine.errors import OutputError, OutputExistsError
from maskrefine.io.imageio import OutputFolder, read_mask, write_bytes_atomic

KNOWN = b"input mask, never to be replaced"


def _swap_for_link(folder: Path, target: Path) -> Path:
    """Rename ``folder`` away and put a symlink to ``target`` at its path; return where it went."""
    moved = folder.with_name(folder.name + ".moved")
    folder.rename(moved)
    folder.symlink_to(target, target_is_directory=True)
    return moved


@pytest.fixture
def swapped(tmp_path: Path) -> Iterator[tuple[OutputFolder, Path, Path]]:
    """An OutputFolder opened on out/, then out/ renamed to out.moved/ and out -> inputs/ (holding x.png)."""
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "x.png").write_bytes(KNOWN)
    out = tmp_path / "out"
    out.mkdir()
    folder = OutputFolder(out)
    moved = _swap_for_link(out, inputs)
    yield folder, moved, inputs
    folder.close()


@pytest.mark.parametrize("overwrite", [True, False])
def test_a_write_through_the_opened_folder_never_follows_its_path_to_the_new_target(
    swapped, overwrite
) -> None:
    # was: every write looked out/<name> up by path again, so a swapped symlink led `apply --overwrite`
    # into the masks folder and replaced the input masks (audit s12-crash, finding 1)
    folder, moved, inputs = swapped
    written = folder.write_bytes("x.png", b"refined", overwrite=overwrite)
    assert (inputs / "x.png").read_bytes() == KNOWN
    assert sorted(p.name for p in inputs.iterdir()) == ["x.png"]  # no temp file there either
    assert (moved / "x.png").read_bytes() == b"refined"  # in the folder that was opened (and checked)
    assert sorted(p.name for p in moved.iterdir()) == ["x.png"]
    assert written == folder.path / "x.png"  # named by the path the job was given


def test_a_mask_written_through_the_opened_folder_lands_there(swapped) -> None:
    folder, moved, inputs = swapped
    folder.write_mask("x.png", np.full((3, 4), 0.5), "png8", overwrite=True)
    assert (inputs / "x.png").read_bytes() == KNOWN
    assert read_mask(moved / "x.png").shape == (3, 4)


def test_the_opened_folder_still_refuses_an_existing_output_and_a_symlink_at_an_output(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"old")
    (tmp_path / "elsewhere.png").write_bytes(b"keep")
    (out / "link.png").symlink_to(tmp_path / "elsewhere.png")
    with OutputFolder(out) as folder:
        with pytest.raises(OutputExistsError, match="a.png: output exists"):
            folder.write_bytes("a.png", b"new", overwrite=False)
        with pytest.raises(OutputError, match="link.png: exists and is a symbolic link"):
            folder.write_bytes("link.png", b"new", overwrite=True)
        with pytest.raises(ValueError, match="not a plain file name"):
            folder.write_bytes("../escape.png", b"new", overwrite=True)
    assert (out / "a.png").read_bytes() == b"old"
    assert (tmp_path / "elsewhere.png").read_bytes() == b"keep"
    assert not (tmp_path / "escape.png").exists()


def test_a_subfolder_is_opened_inside_the_opened_folder_and_never_through_a_symlink(tmp_path: Path) -> None:
    out, other = tmp_path / "out", tmp_path / "other"
    out.mkdir()
    other.mkdir()
    with OutputFolder(out) as folder:
        moved = _swap_for_link(out, other)
        with folder.subfolder("coarse", create=True) as coarse:  # made in the opened folder
            coarse.write_bytes("c.png", b"coarse", overwrite=False)
        assert (moved / "coarse" / "c.png").read_bytes() == b"coarse"
        assert not any(other.iterdir())
        (moved / "link").symlink_to(other, target_is_directory=True)
        with pytest.raises(OutputError, match="link: cannot open the output folder"):
            folder.subfolder("link")


def test_a_pickled_folder_reopens_only_the_same_folder(tmp_path: Path) -> None:
    # a spawned worker gets the folder pickled: it must open the folder the parent checked, or stop
    out, inputs = tmp_path / "out", tmp_path / "inputs"
    out.mkdir()
    inputs.mkdir()
    with OutputFolder(out) as folder:
        state = pickle.dumps(folder)
        with pickle.loads(state) as copy:
            copy.write_bytes("a.png", b"a", overwrite=False)
        assert (out / "a.png").read_bytes() == b"a"
        _swap_for_link(out, inputs)
        with pytest.raises(OutputError, match="out: is no longer the output folder"):
            pickle.loads(state)
        with pytest.raises(OutputError, match="out: changed while the job was starting"):
            folder.check_at_path()
    assert not any(inputs.iterdir())


def _failing(name: str, code: int = errno.EACCES):
    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code), str(args[0]) if args else name)

    return fail


@pytest.mark.parametrize("overwrite", [True, False])
@pytest.mark.parametrize("through_folder", [False, True])
def test_a_failing_clean_up_does_not_replace_the_write_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overwrite: bool, through_folder: bool
) -> None:
    # was: the clean-up's os.unlink(temp) raised too (the folder had become unwritable) and its
    # PermissionError, naming the temp file, replaced the OutputError naming the output: the report said
    # "unexpected PermissionError: ... '.a.png.qg76f9dl.tmp'" (audit s12-crash, finding 4)
    target = tmp_path / "a.png"
    monkeypatch.setattr(os, "replace", _failing("replace"))  # publishing with overwrite
    monkeypatch.setattr(os, "link", _failing("link", errno.EIO))  # publishing without
    monkeypatch.setattr(os, "unlink", _failing("unlink"))  # the clean-up of the temp file
    with pytest.raises(OutputError) as caught:
        if through_folder:
            with OutputFolder(tmp_path) as folder:
                folder.write_bytes("a.png", b"new", overwrite=overwrite)
        else:
            write_bytes_atomic(target, b"new", overwrite=overwrite)
    assert type(caught.value) is OutputError
    assert caught.value.path == target
    assert str(caught.value).startswith(f"{target}: cannot write (")
    assert not target.exists()


def test_a_closed_folder_refuses_to_write_instead_of_writing_by_path(tmp_path: Path) -> None:
    folder = OutputFolder(tmp_path)
    folder.close()
    folder.close()
    with pytest.raises(OutputError, match="a.png: cannot"):
        folder.write_bytes("a.png", b"a", overwrite=True)
    assert not any(tmp_path.iterdir())
