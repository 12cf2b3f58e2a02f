"""SIGTERM as a polite stop: the CLI turns it into :class:`Terminated`, a ``KeyboardInterrupt``.

A batch scheduler ends a job with SIGTERM (Slurm at the time limit, on ``scancel`` and on preemption,
then SIGKILL after a grace period). By default Python dies on the spot, mid-file, with no summary. The
``maskrefine`` command instead raises :class:`Terminated`, so every job stops the way it stops on
Ctrl-C (no new file is started, the files in progress are finished, outputs already written are
complete) and the command exits with :data:`EXIT_TERMINATED` (128 + 15) instead of 130.

Only the CLI installs the handler (:func:`raise_on_sigterm`); importing maskrefine as a library changes
no signal handling. This module imports nothing heavy.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

__all__ = ["Terminated", "EXIT_TERMINATED", "raise_on_sigterm", "sigterm_raises", "stop_exception"]

#: Exit status after SIGTERM (the shell's convention for a process ended by signal 15).
EXIT_TERMINATED = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived; handled wherever Ctrl-C's ``KeyboardInterrupt`` is."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated


def raise_on_sigterm() -> None:
    """From now on, SIGTERM raises :class:`Terminated` in the main thread of this process.

    Does nothing outside the main thread or where SIGTERM is not at its default (an embedding program or
    a test harness that set its own handler, or ignores it, keeps it).
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_terminated)


def sigterm_raises() -> bool:
    """Tell whether SIGTERM's handler is the one :func:`raise_on_sigterm` installs."""
    return signal.getsignal(signal.SIGTERM) is _raise_terminated


def stop_exception(signum: int) -> KeyboardInterrupt:
    """Return what a stop by ``signum`` raises: :class:`Terminated` (SIGTERM) or ``KeyboardInterrupt``."""
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
