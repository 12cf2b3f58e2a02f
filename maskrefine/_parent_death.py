"""Child processes that end by themselves when their parent dies, even by ``kill -9``.

Used by the worker processes of :mod:`maskrefine.pipeline.workers` (an orphaned worker would wait for
work forever) and by the second compile process of :func:`maskrefine._jit.split_first_compile` (an
orphaned one would go on compiling for nobody). Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``; elsewhere,
or if that fails, a daemon thread that polls the parent pid. This module imports nothing heavy.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

__all__ = ["PARENT_POLL_S", "exit_with_parent", "set_parent_death_signal"]

#: Seconds between two checks of the fallback parent watcher (platforms without ``prctl``).
PARENT_POLL_S = 0.5
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def set_parent_death_signal(sig: int) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies; False where unavailable.

    The kernel ties this to the parent *thread* that created this process: the creator must outlive it
    (the worker pool forks from the thread that runs the job and shuts the pool down before returning;
    the compile split waits for its second process in the thread that started it).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)) == 0
    except Exception:  # noqa: BLE001 - no libc / no prctl: use the polling fallback
        return False


def _watch_parent(parent_pid: int) -> None:
    """Fallback: end this process as soon as it is re-parented (its parent ``parent_pid`` died)."""
    while True:
        if os.getppid() != parent_pid:
            os._exit(1)
        time.sleep(PARENT_POLL_S)


def exit_with_parent(parent_pid: int) -> None:
    """Make this (child) process end by itself when its parent ``parent_pid`` dies.

    Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``. Elsewhere (or if that fails): a daemon thread that
    polls ``os.getppid()`` every :data:`PARENT_POLL_S` seconds. Either way, a parent that died before
    this ran is caught by the ``getppid`` check below (the process exits with status 1 at once).
    """
    armed = set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent_pid:
        os._exit(1)  # the parent is already gone: nobody will ever use what this process makes
    if not armed:
        threading.Thread(
            target=_watch_parent, args=(parent_pid,), name="maskrefine-parent-watch", daemon=True
        ).start()
