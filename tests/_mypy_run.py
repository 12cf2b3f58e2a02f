"""Run mypy on a user's script against this checkout of maskrefine (for the typing tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import maskrefine


def run_mypy(tmp_path: Path, source: str, *flags: str) -> tuple[list[str], str]:
    """Check ``source`` saved as ``tmp_path/user.py``; return its ``user.py:`` lines and mypy's output."""
    script = tmp_path / "user.py"
    script.write_text(source, encoding="utf-8")
    root = Path(maskrefine.__file__).resolve().parent.parent
    env = {**os.environ, "MYPYPATH": str(root)}
    command = [sys.executable, "-m", "mypy", *flags, "--follow-imports=silent", "--no-incremental"]
    out = subprocess.run(
        [*command, "--cache-dir", str(tmp_path / "cache"), str(script)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    return [line for line in out.stdout.splitlines() if line.startswith("user.py:")], out.stdout
