"""Whether a process still runs, for the tests that kill a parent and check its children end (Linux)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not yet reaped, does not). Reads /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def survivors_after(pids: Iterable[int], seconds: float) -> list[int]:
    """Wait up to ``seconds`` for every process of ``pids`` to end; kill and return those still running.

    Killed so that a failing test leaves nothing behind.
    """
    pids = list(pids)
    deadline = time.monotonic() + seconds
    while any(map(process_alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.01)
    survivors = [pid for pid in pids if process_alive(pid)]
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    return survivors
