"""Harness of the hostile-inputs suite: every case runs the real CLI in a fresh temp tree and checks that
nothing outside the allowed outputs changed.

Usage (one test = one CLI case)::

    def test_empty_out_is_a_usage_error(hostile):
        result = hostile.run("apply", "--masks", "masks", "--images", "images", "--out", "",
                             exit=2, names=["--out"])
        assert "empty" in result.stderr

``hostile`` (a :class:`HostileTree`) is a fresh folder, also the working directory of the command, with

* ``images/``: ``0001.png`` ... ``0003.png`` (48x64 RGB), ``masks/``: their 1/4-resolution 8-bit masks,
* ``gt/``: full-size 8-bit ground truth, ``pred/``: full-size 8-bit predictions, same stems,
* bystanders in the tree root that a careless tool would clobber: ``0001.png``, ``pr_curve.png``,
  ``montage.png``, ``notes.txt``, ``summary.json`` and ``run.json`` (files a user keeps in the cwd).

``hostile.run(*args, exit, names=(), out=(), prelude=None, env=None, timeout=120)`` runs
``python -m maskrefine.cli *args`` with ``cwd`` = the tree, then asserts

1. no ``Traceback`` on stderr (nor on stdout);
2. the exit status is ``exit``;
3. every string of ``names`` (a file or an option) appears in stdout + stderr;
4. no path of the tree outside ``out`` (paths relative to the tree: files or folders whose whole subtree
   may change) was created, changed (content, mode or file type) or deleted. Inputs and bystanders are
   hashed before and after; FIFOs and symlinks are recorded by type / target, never opened.

and returns a :class:`CliResult` (``code``, ``stdout``, ``stderr``, ``output`` = both,
``changed`` = the set of relative paths that differ anywhere, inside ``out`` included).

``prelude`` is Python source run in the CLI process before ``maskrefine.cli.main()`` (fault injection:
patch ``os.fsync`` to raise ENOSPC, hide a module, ...). ``env`` updates the environment. Helpers:
``hostile.path(rel)``, ``hostile.write_mask(rel, array)``, ``hostile.write_image(rel, array)``,
``hostile.snapshot()`` (the hashes the checks use), ``hostile.apply_args(out="refined", *extra)`` and
``hostile.score_args(*extra)`` for the usual command lines.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
H, W = 48, 64
STEMS = ("0001", "0002", "0003")
BYSTANDERS = {
    "0001.png": b"\x89PNG not really, a user's file\n",
    "pr_curve.png": b"a user's own plot\n",
    "montage.png": b"a user's own montage\n",
    "notes.txt": b"do not touch\n",
    "summary.json": b'{"mine": true}\n',
    "run.json": b'{"mine": true}\n',
}


@dataclass
class CliResult:
    """What one CLI run did."""

    code: int
    stdout: str
    stderr: str
    changed: set[str] = field(default_factory=set)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def _entry_digest(path: Path) -> str:
    info = path.lstat()
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISLNK(info.st_mode):
        return f"link->{os.readlink(path)}"
    if stat.S_ISDIR(info.st_mode):
        return f"dir:{mode:o}"
    if stat.S_ISREG(info.st_mode):
        return f"file:{mode:o}:{hashlib.sha256(path.read_bytes()).hexdigest()}"
    return f"special:{stat.S_IFMT(info.st_mode):o}:{mode:o}"  # FIFO, socket, device: never opened


class HostileTree:
    """A fresh temp tree with inputs and bystanders; see the module docstring."""

    def __init__(self, root: Path) -> None:
        self.root = root
        rng = np.random.default_rng(7)
        yy, xx = np.mgrid[0:H, 0:W]
        for index, stem in enumerate(STEMS):
            disc = ((xx - W / 2 - 4 * index) ** 2 + (yy - H / 2) ** 2 < (H / 3) ** 2).astype(np.float64)
            image = np.clip(40 + 160 * disc[:, :, None] + rng.normal(0, 8, (H, W, 3)), 0, 255)
            self.write_image(f"images/{stem}.png", image.astype(np.uint8))
            small = cv2.resize(disc, (W // 4, H // 4), interpolation=cv2.INTER_AREA)
            self.write_mask(f"masks/{stem}.png", np.rint(small * 255).astype(np.uint8))
            self.write_mask(f"gt/{stem}.png", (disc * 255).astype(np.uint8))
            soft = np.clip(disc * 0.8 + rng.random((H, W)) * 0.2, 0, 1)
            self.write_mask(f"pred/{stem}.png", np.rint(soft * 255).astype(np.uint8))
        for name, data in BYSTANDERS.items():
            (root / name).write_bytes(data)

    # ------------------------------------------------------------------ building
    def path(self, rel: str | os.PathLike[str]) -> Path:
        return self.root / rel

    def write_image(self, rel: str, rgb: np.ndarray) -> Path:
        path = self.path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        bgr = rgb[:, :, ::-1] if rgb.ndim == 3 else rgb
        assert cv2.imwrite(str(path), np.ascontiguousarray(bgr))
        return path

    def write_mask(self, rel: str, mask: np.ndarray) -> Path:
        path = self.path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), mask)
        return path

    @staticmethod
    def apply_args(out: str = "refined", *extra: str) -> list[str]:
        jobs = [] if {"--jobs", "-j"} & set(extra) else ["--jobs", "1"]  # an option may be given once
        return ["apply", "--masks", "masks", "--images", "images", "--out", out, *jobs, *extra]

    @staticmethod
    def score_args(*extra: str) -> list[str]:
        jobs = [] if {"--jobs", "-j"} & set(extra) else ["--jobs", "1"]
        return ["score", "--pred", "pred", "--gt", "gt", *jobs, *extra]

    # ------------------------------------------------------------------ checking
    def snapshot(self) -> dict[str, str]:
        """Relative path -> digest of every entry of the tree (symlinks not followed)."""
        digests: dict[str, str] = {}
        for folder, dirs, files in os.walk(self.root, followlinks=False):
            for name in dirs + files:
                path = Path(folder) / name
                digests[str(path.relative_to(self.root))] = _entry_digest(path)
        return digests

    def run(
        self,
        *args: str,
        exit: int,
        names: Iterable[str] = (),
        out: Sequence[str] = (),
        prelude: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 120,
    ) -> CliResult:
        before = self.snapshot()
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(REPO_ROOT), *filter(None, [environment.get("PYTHONPATH")])]
        )
        environment.update(env or {})
        if prelude is None:
            command = [sys.executable, "-m", "maskrefine.cli", *args]
        else:
            code = f"{prelude}\nfrom maskrefine.cli import main\nmain(prog_name='maskrefine')\n"
            command = [sys.executable, "-c", code, *args]
        proc = subprocess.run(
            command,
            cwd=self.root,
            env=environment,
            capture_output=True,
            text=True,
            errors="backslashreplace",
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        after = self.snapshot()
        changed = {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}
        result = CliResult(proc.returncode, proc.stdout, proc.stderr, changed)
        context = f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        assert "Traceback" not in result.output, context
        assert proc.returncode == exit, context
        for name in names:
            assert name in result.output, (name, context)
        allowed = [Path(p) for p in out]
        outside = sorted(
            key for key in changed if not any(Path(key) == a or a in Path(key).parents for a in allowed)
        )
        assert not outside, (f"changed outside {list(out)}: {outside}", context)
        return result


@pytest.fixture
def hostile(tmp_path: Path) -> HostileTree:
    """A fresh :class:`HostileTree` (see the module docstring)."""
    root = tmp_path / "tree"
    root.mkdir()
    return HostileTree(root)
