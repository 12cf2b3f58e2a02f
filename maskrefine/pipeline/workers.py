"""Run a function over tasks in worker processes (or threads): the pool, signals and parent death.

Knows nothing of refining or scoring: :func:`run_tasks` takes the per-task function, a warm-up callable
and a callable that turns a crashed task into a result.

* ``jobs`` tasks run at once, each worker single-threaded (OpenCV and the guided filter's band threads,
  whose count is ``numba.get_num_threads()``); results come back in task order, so they do not depend
  on ``jobs``.
* Forked worker processes ignore SIGINT: the parent handles Ctrl-C (it cancels the queued tasks, lets the
  running ones finish and re-raises ``KeyboardInterrupt``).
* Workers end by themselves when the parent dies, even by ``kill -9`` (Linux ``PR_SET_PDEATHSIG``,
  elsewhere a thread polling the parent pid).
* Where ``fork`` is unavailable a thread pool is used; the numba kernels release the GIL, so filtering
  still runs in parallel there.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = ["run_tasks", "set_threads", "restore_threads", "PARENT_POLL_S"]

T = TypeVar("T")
R = TypeVar("R")

#: Seconds between two checks of the fallback parent watcher (platforms without ``prctl``).
PARENT_POLL_S = 0.5
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

#: Whether worker processes may be forked: None decides from the platform (``fork`` available);
#: False forces the thread pool (tests use it to cover that path).
_FORK_SAFE: bool | None = None


def set_threads(count: int) -> tuple[int | None, int | None]:
    """Set OpenCV's and numba's thread counts (best effort); return the previous values.

    numba's count is the number of threads :mod:`maskrefine.filters.guided` splits one image over.
    """
    previous_cv2 = previous_numba = None
    try:
        import cv2

        previous_cv2 = cv2.getNumThreads()
        cv2.setNumThreads(count)
    except Exception:  # noqa: BLE001  # pragma: no cover - best effort
        pass
    try:
        import numba

        previous_numba = numba.get_num_threads()
        numba.set_num_threads(max(1, min(count, numba.config.NUMBA_NUM_THREADS)))
    except Exception:  # noqa: BLE001  # pragma: no cover - best effort
        pass
    return previous_cv2, previous_numba


def restore_threads(previous: tuple[int | None, int | None]) -> None:
    """Undo :func:`set_threads`."""
    previous_cv2, previous_numba = previous
    if previous_cv2 is not None:
        import cv2

        cv2.setNumThreads(previous_cv2)
    if previous_numba is not None:
        import numba

        numba.set_num_threads(previous_numba)


def _init_worker(parent_pid: int | None = None) -> None:
    """Process-pool initializer (runs in each forked worker before its first task).

    * SIGINT is ignored: Ctrl-C reaches the whole process group, but only the parent acts on it (it
      cancels the queued tasks and waits for the running ones), so workers print no
      ``KeyboardInterrupt`` traceback. The parent forks with SIGINT blocked (:func:`_sigint_blocked`), so
      no Ctrl-C can hit a worker before this runs; a SIGINT already pending here is discarded.
    * The worker ends when the parent ``parent_pid`` dies, even by ``kill -9``
      (:func:`_exit_with_parent`); otherwise it would wait for work forever.
    * One thread per worker, so ``jobs`` processes use ``jobs`` cores.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    if parent_pid is not None:
        _exit_with_parent(parent_pid)
    set_threads(1)


def _set_parent_death_signal(sig: int) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies; False where unavailable.

    The kernel ties this to the parent *thread* that forked us: :func:`run_tasks` forks the workers from
    the thread that runs the job and shuts the pool down before returning, so that thread outlives them.
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


def _exit_with_parent(parent_pid: int) -> None:
    """Make this (worker) process end by itself when the parent ``parent_pid`` dies.

    Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``. Elsewhere (or if that fails): a daemon thread that
    polls ``os.getppid()`` every :data:`PARENT_POLL_S` seconds. Either way, a parent that died before
    this ran is caught by the ``getppid`` check below.
    """
    armed = _set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent_pid:
        os._exit(1)  # the parent is already gone: nobody will ever collect our results
    if not armed:
        threading.Thread(
            target=_watch_parent, args=(parent_pid,), name="maskrefine-parent-watch", daemon=True
        ).start()


@contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Block SIGINT in the calling thread (where supported) while worker processes are forked.

    A Ctrl-C that arrives meanwhile stays pending and is delivered to the parent when the block is
    lifted; the forked children inherit the block and lift it only after ignoring SIGINT.
    """
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - Windows
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _fork_is_safe() -> bool:
    """True when worker processes may be forked: the platform has ``fork`` (and :data:`_FORK_SAFE` is
    not False). The numba kernels are serial (``nogil``, no ``prange``), so numba's threading layer is
    never used by a worker and needs no guard."""
    if _FORK_SAFE is False:
        return False
    return "fork" in multiprocessing.get_all_start_methods()


def _init_thread() -> None:
    """Thread-pool initializer: numba's thread count is per thread."""
    try:
        import numba

        numba.set_num_threads(1)
    except Exception:  # noqa: BLE001  # pragma: no cover - best effort
        pass


def _make_executor(workers: int, warm_up: Callable[[], None]) -> Executor:
    """The worker pool.

    Forked processes when :func:`_fork_is_safe`; ``warm_up`` runs once here first (single-threaded), so
    the workers inherit whatever it compiled. Otherwise a thread pool.
    """
    if _fork_is_safe():
        previous = set_threads(1)
        try:
            warm_up()
        finally:
            restore_threads(previous)
        return ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_init_worker,
            initargs=(os.getpid(),),
        )
    return ThreadPoolExecutor(max_workers=workers, initializer=_init_thread)


def run_tasks(
    function: Callable[[T], R],
    tasks: Sequence[T],
    *,
    jobs: int,
    warm_up: Callable[[], None],
    on_crash: Callable[[T, BaseException], R],
    progress: Callable[[int, int], None] | None = None,
    done_before: int = 0,
    total: int | None = None,
) -> list[R]:
    """Run ``function`` over ``tasks`` (in this process, or in ``jobs`` workers); results in task order.

    Parameters
    ----------
    function : callable
        ``function(task) -> result``; should not raise (a raised exception goes to ``on_crash``).
    tasks : sequence
        Picklable tasks (they are sent to forked workers).
    jobs : int
        Workers; ``jobs <= 1`` (or a single task) runs everything in this process.
    warm_up : callable
        Called once before forking (e.g. to compile kernels the workers then inherit); must not raise.
    on_crash : callable
        ``on_crash(task, exc) -> result`` for a task whose worker raised or died.
    progress : callable, optional
        ``progress(done, total)`` after each task, counting from ``done_before``.
    done_before, total : int
        Offset and total passed to ``progress`` (``total`` defaults to ``done_before + len(tasks)``).

    Each worker, including this process when ``jobs == 1``, runs OpenCV and numba single-threaded, so
    ``jobs`` is the number of cores used and the results do not depend on it.
    """
    total = done_before + len(tasks) if total is None else total
    results: list[Any] = [None] * len(tasks)
    done = done_before
    if jobs <= 1 or len(tasks) <= 1:
        previous = set_threads(1)
        try:
            for index, task in enumerate(tasks):
                results[index] = function(task)
                done += 1
                if progress is not None:
                    progress(done, total)
        finally:
            restore_threads(previous)
        return results
    workers = min(jobs, len(tasks))
    executor = _make_executor(workers, warm_up)
    previous_threads = set_threads(1) if isinstance(executor, ThreadPoolExecutor) else None
    finished = False
    try:
        futures: dict[Future[R], int] = {}
        with _sigint_blocked():  # the first submit forks the workers (see _init_worker)
            futures[executor.submit(function, tasks[0])] = 0
        for index, task in enumerate(tasks[1:], start=1):
            futures[executor.submit(function, task)] = index
        for future in as_completed(futures):
            index = futures[future]
            try:
                results[index] = future.result()
            except Exception as exc:  # noqa: BLE001 - a dead worker (BrokenProcessPool), a pickling error
                results[index] = on_crash(tasks[index], exc)
            done += 1
            if progress is not None:
                progress(done, total)
        finished = True
    finally:
        # on an interrupt (Ctrl-C) drop the queued tasks instead of finishing them
        executor.shutdown(wait=True, cancel_futures=not finished)
        if previous_threads is not None:
            restore_threads(previous_threads)
    return results
