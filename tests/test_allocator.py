"""maskrefine._allocator: the CLI's fixed glibc malloc thresholds (fewer page faults per file)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from maskrefine import _allocator, cli
from maskrefine.io import write_mask

GLIBC = _allocator._is_glibc()

# One "file" of a job: a few image-sized arrays allocated, combined and freed, as apply does per file.
_FAULTS = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    from maskrefine._allocator import pin_malloc_thresholds

    if sys.argv[1] == "pin":
        assert pin_malloc_thresholds() is True
    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    def one_file():
        image = np.ones(600_000, np.float32)
        codes = np.ones(300_000, np.float64)
        mask = np.ones(150_000, np.float32)
        out = image + 1
        scaled = codes * 2
        del image, codes, mask, out, scaled
    one_file()
    before = faults()
    for _ in range(50):
        one_file()
    print(faults() - before)
    """
)


def _faults(mode: str, env: dict[str, str] | None = None) -> int:
    base = {
        k: v for k, v in os.environ.items() if k not in _allocator._USER_SETTINGS and k != "GLIBC_TUNABLES"
    }
    done = subprocess.run(
        [sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, env={**base, **(env or {})}
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


@pytest.mark.skipif(not GLIBC, reason="malloc thresholds are a glibc setting; this C library is not glibc")
def test_pinned_thresholds_reuse_freed_buffers() -> None:
    # measured: ~120 000 page faults for 50 "files" with glibc's own thresholds, 0 pinned
    unpinned = _faults("none")
    pinned = _faults("pin")
    assert unpinned > 10_000
    assert pinned < unpinned // 20


@pytest.mark.skipif(not GLIBC, reason="malloc thresholds are a glibc setting; this C library is not glibc")
def test_a_users_malloc_setting_is_kept() -> None:
    code = "from maskrefine._allocator import pin_malloc_thresholds as p; print(p())"
    for env in (
        {"MALLOC_TRIM_THRESHOLD_": "131072"},
        {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=131072"},
    ):
        base = {k: v for k, v in os.environ.items() if k not in _allocator._USER_SETTINGS}
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env={**base, **env}
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "False", env


def test_other_c_libraries_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_allocator, "_pinned", False)
    monkeypatch.setattr(_allocator, "_is_glibc", lambda: False)
    for name in _allocator._USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    assert _allocator.pin_malloc_thresholds() is False


def test_is_glibc_tolerates_an_unknown_confstr_name(monkeypatch: pytest.MonkeyPatch) -> None:
    def unknown(name: str) -> str:
        raise ValueError("unrecognized configuration name")

    monkeypatch.setattr(os, "confstr", unknown)
    assert _allocator._is_glibc() is False
    monkeypatch.setattr(os, "confstr", lambda name: None)  # known name, no value
    assert _allocator._is_glibc() is False


@pytest.mark.parametrize("command", ["apply", "score"])
def test_job_commands_pin_the_thresholds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(_allocator, "pin_malloc_thresholds", lambda: calls.append(command) or True)
    masks, images = tmp_path / "masks", tmp_path / "images"
    masks.mkdir()
    images.mkdir()
    write_mask(masks / "a.png", np.full((8, 8), 0.5, np.float32))
    write_mask(images / "a.png", np.full((16, 16), 0.25, np.float32))
    if command == "apply":
        args = ["apply", "--masks", str(masks), "--images", str(images), "--out", str(tmp_path / "out")]
        args += ["--method", "identity", "-q"]
    else:
        args = ["score", "--pred", str(masks), "--gt", str(masks)]
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 0, result.output
    assert calls == [command]


def test_help_and_version_do_not_touch_the_allocator(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    monkeypatch.setattr(_allocator, "pin_malloc_thresholds", lambda: calls.append(True) or True)
    for args in (["--help"], ["--version"], ["apply", "--help"]):
        assert CliRunner().invoke(cli.main, args).exit_code == 0
    assert calls == []
