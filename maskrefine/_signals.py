"""SIGTERM as a polite stop: the CLI turns it into :class:`Terminated`, a ``KeyboardInterrupt``.

A batch scheduler ends a job with SIGTERM (Slurm at the time limit, on ``scancel`` and on preemption,
then SIGKILL after a grace period). By default Python dies on the spot, mid-file, with no summary. The
``maskrefine`` command instead raises :class:`Terminated`, so every job stops the way it stops on
Ctrl-C (no new file is started, the files in progress are finished, outputs already written are
complete) and the command exits with :data:`EXIT_TERMINATED` (128 + 15) instead of 130.

Only the CLI installs the handler (:func:`raise_on_sigterm`); importing maskrefine as a library changes
no signal handling. Code that must not be cut at an arbitrary point (the worker pool's bookkeeping, a
training step) runs under :func:`stops_deferred`, which turns the first stop signal into a flag it
checks at safe points. This module imports nothing heavy.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Terminated",
    "EXIT_TERMINATED",
    "STOP_SIGNALS",
    "StopRequest",
    "raise_on_sigterm",
    "sigterm_raises",
    "stop_exception",
    "stops_deferred",
]

#: Exit status after SIGTERM (the shell's convention for a process ended by signal 15).
EXIT_TERMINATED = 128 + signal.SIGTERM
#: The signals that ask a job to stop: Ctrl-C, and a scheduler's SIGTERM.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


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


@dataclass
class StopRequest:
    """A stop asked for by a signal, to act on at a safe point.

    ``signum`` is the first stop signal (None: none yet); ``on_request`` runs once, when it comes.
    """

    on_request: Callable[[], None] | None = None
    signum: int | None = None

    @property
    def requested(self) -> bool:
        """Tell whether a stop was asked for."""
        return self.signum is not None

    def set(self, signum: int = signal.SIGINT) -> None:
        """Record a stop by ``signum`` (the first one counts)."""
        if self.signum is None:
            self.signum = signum
            if self.on_request is not None:
                self.on_request()

    def set_from(self, exc: KeyboardInterrupt) -> None:
        """Record the stop an exception stands for (:class:`Terminated`: SIGTERM, else SIGINT)."""
        self.set(signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)

    def exception(self) -> KeyboardInterrupt:
        """Return what to raise for this stop once the safe point is reached."""
        return stop_exception(self.signum if self.signum is not None else signal.SIGINT)


@contextmanager
def stops_deferred(request: StopRequest) -> Iterator[StopRequest]:
    """While the block runs, the first Ctrl-C (or SIGTERM) only sets ``request``; a second one raises.

    A ``KeyboardInterrupt`` raised at an arbitrary point can lose work (a worker's result read from its
    pipe but not yet recorded; a training step half applied); the block checks ``request.requested`` at
    safe points instead. Installed only in the main thread, for SIGINT only over Python's default handler
    and for SIGTERM only where :func:`raise_on_sigterm` made it raise (an ignored or custom handler is
    left alone: the block's own ``except KeyboardInterrupt`` then does the job, with a small window).
    """
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    ours = [signal.SIGINT] if signal.getsignal(signal.SIGINT) is signal.default_int_handler else []
    if sigterm_raises():
        ours.append(signal.SIGTERM)

    def on_stop(signum: int, frame: object) -> None:
        if request.requested:
            raise stop_exception(signum)
        request.set(signum)

    previous = {signum: signal.signal(signum, on_stop) for signum in ours}
    try:
        yield request
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
