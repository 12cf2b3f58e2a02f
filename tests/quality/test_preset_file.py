"""Preset files: round trip (TOML and JSON), and hostile paths/contents for reading and writing."""

from __future__ import annotations

import json
import os
import tomllib

import pytest

from maskrefine.errors import ConfigError
from maskrefine.quality.grid import Candidate
from maskrefine.quality.preset_file import REFINE_PRESETS, preset_to_toml, read_preset_file, write_preset_file

CANDIDATES = [
    Candidate.make("guided", "color", "bilinear", radius=8, eps=1e-5),
    Candidate.make("fast_guided", "luma", "nearest", radius=16, eps=0.031622776601683794, subsample=2),
    Candidate.make("identity", upsample="nearest"),
    REFINE_PRESETS["paper"],
]


@pytest.mark.parametrize("candidate", CANDIDATES, ids=lambda c: c.label)
@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_round_trip(tmp_path, candidate, suffix):
    path = tmp_path / f"best{suffix}"
    info = {"iou_change": 0.0123, "images": 40, "note": 'quote " and \\ and é'}
    write_preset_file(path, candidate, info=info)
    assert read_preset_file(path) == candidate
    if suffix == ".toml":
        data = tomllib.loads(path.read_text())
        assert data["tune"] == info
    else:
        assert json.loads(path.read_text())["tune"] == info


def test_paper_preset_is_the_papers_setting():
    paper = REFINE_PRESETS["paper"]
    assert (paper.method, paper.guide, paper.param_dict) == ("guided", "mean", {"radius": 9, "eps": 1e-3})


def test_toml_refuses_non_finite_and_odd_values():
    with pytest.raises(ValueError, match="non-finite"):
        preset_to_toml(CANDIDATES[0], {"x": float("nan")})
    with pytest.raises(TypeError, match="list"):
        preset_to_toml(CANDIDATES[0], {"x": [1, 2]})


def test_write_refuses_existing_symlink_fifo_folder_and_empty(tmp_path):
    c = CANDIDATES[0]
    target = tmp_path / "best.toml"
    write_preset_file(target, c)
    with pytest.raises(ConfigError, match="exists; use --overwrite"):
        write_preset_file(target, c)
    write_preset_file(target, c, overwrite=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    link = tmp_path / "link.toml"
    link.symlink_to(victim)
    with pytest.raises(ConfigError, match="symlink"):
        write_preset_file(link, c, overwrite=True)
    assert victim.read_text() == "keep me"
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        write_preset_file(fifo, c, overwrite=True)
    (tmp_path / "dir.toml").mkdir()
    with pytest.raises(ConfigError, match="not a regular file"):
        write_preset_file(tmp_path / "dir.toml", c, overwrite=True)
    with pytest.raises(ConfigError, match="empty"):
        write_preset_file("", c)
    with pytest.raises(ConfigError, match="does not exist"):
        write_preset_file(tmp_path / "no" / "best.toml", c)


def test_read_refuses_hostile_files(tmp_path):
    with pytest.raises(ConfigError, match="empty"):
        read_preset_file("")
    with pytest.raises(ConfigError, match="not found"):
        read_preset_file(tmp_path / "missing.toml")
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        read_preset_file(fifo)  # must not block
    link = tmp_path / "link.toml"
    link.symlink_to(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        read_preset_file(link)
    dangling = tmp_path / "dangling.toml"
    dangling.symlink_to(tmp_path / "gone")
    with pytest.raises(ConfigError, match="not found"):
        read_preset_file(dangling)
    with pytest.raises(ConfigError, match="folder"):
        read_preset_file(tmp_path)
    cases = {
        "empty.toml": b"",
        "huge.toml": b"#" * (65 * 1024),
        "binary.toml": b"\xff\xfe\x00",
        "bad.toml": b"[refine\nmethod = ",
        "bad.json": b"{",
        "norefine.toml": b'[other]\nmethod = "guided"\n',
        "nomethod.toml": b'[refine]\nguide = "color"\n',
        "intmethod.toml": b"[refine]\nmethod = 3\n",
        "unknown.toml": b'[refine]\nmethod = "magic"\n',
        "auto.toml": b'[refine]\nmethod = "auto"\n',
        "badparam.toml": b'[refine]\nmethod = "guided"\n[refine.params]\nradius = "big"\n',
        "extraparam.toml": b'[refine]\nmethod = "guided"\n[refine.params]\nsigma = 3\n',
        "badguide.toml": b'[refine]\nmethod = "guided"\nguide = "rgb"\n',
        "list.json": b"[1, 2]",
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ConfigError, match=name.replace(".", r"\.")):
            read_preset_file(path)


def test_read_follows_a_symlink_to_a_regular_file(tmp_path):
    real = tmp_path / "real.toml"
    write_preset_file(real, CANDIDATES[0])
    link = tmp_path / "link.toml"
    link.symlink_to(real)
    assert read_preset_file(link) == CANDIDATES[0]


@pytest.mark.parametrize("flag", ["no", "false", 1, None])
def test_overwrite_must_be_a_bool(tmp_path, flag):
    # write_preset_file(path, c, overwrite="no") replaced the existing file: "no" is truthy
    path = tmp_path / "best.toml"
    path.write_text("# someone's preset\n")
    with pytest.raises(ConfigError, match="`overwrite` must be True or False"):
        write_preset_file(path, Candidate("identity"), overwrite=flag)
    assert path.read_text() == "# someone's preset\n"


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_an_info_value_that_cannot_be_written_is_named_in_both_formats(tmp_path, suffix):
    # JSON raised json's bare "Object of type set is not JSON serializable", naming no key
    with pytest.raises(TypeError, match="tune.a: cannot write a value of type set"):
        write_preset_file(tmp_path / f"best{suffix}", Candidate("identity"), info={"a": {1}})
    assert not (tmp_path / f"best{suffix}").exists()
