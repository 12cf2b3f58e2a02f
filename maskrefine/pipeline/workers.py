"""Run a function over tasks in worker processes (or threads): the pool, signals and parent death.

Knows nothing of refining or scoring: :func:`run_tasks` takes the per-task function, a warm-up callable
and a callable that turns a crashed task into a result.

* ``jobs`` tasks run at once, each worker single-threaded (OpenCV and the guided filter's band threads,
  whose count is ``numba.get_num_threads()``); results come back in task order, so they do not depend
  on ``jobs``.
* Forked worker processes ignore SIGINT and SIGTERM: the parent handles Ctrl-C (it cancels the queued
  tasks, lets the running ones finish and re-raises ``KeyboardInterrupt``), and SIGTERM the same way
  where the CLI made it raise :class:`maskrefine._signals.Terminated` (a scheduler signals every
  process of the job; a worker killed mid-file would be reported as a crash).
* Workers end by themselves when the parent dies, even by ``kill -9``
  (:func:`maskrefine._parent_death.exit_with_parent`).
* Where ``fork`` is unavailable a thread pool is used; the numba kernels release the GIL, so filtering
  still runs in parallel there.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

from maskrefine._parent_death import exit_with_parent as _exit_with_parent
from maskrefine._signals import STOP_SIGNALS, StopRequest, stops_deferred

__all__ = ["run_tasks", "set_threads", "restore_threads"]

T = TypeVar("T")
R = TypeVar("R")


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

        from maskrefine._jit import launch_numba_threads

        launch_numba_threads()  # the first call: keeps torch's thread count as it was
        previous_numba = numba.get_num_threads()
        # numba.config defines its NUMBA_* settings through globals() at import: unknown to type checkers
        limit = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
        numba.set_num_threads(max(1, min(count, limit)))
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

    * SIGINT and SIGTERM are ignored: Ctrl-C reaches the whole process group (and a scheduler's SIGTERM
      every process of the job), but only the parent acts on it (it cancels the queued tasks and waits
      for the running ones), so workers print no ``KeyboardInterrupt`` traceback and finish their file.
      The parent forks with both blocked (:func:`_stop_signals_blocked`), so none can hit a worker
      before this runs; one already pending here is discarded. (The parent ends a stuck worker with
      SIGKILL, and a worker ends with its parent.)
    * The worker ends when the parent ``parent_pid`` dies, even by ``kill -9``
      (:func:`_exit_with_parent`); otherwise it would wait for work forever.
    * One thread per worker, so ``jobs`` processes use ``jobs`` cores.
    """
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, set(STOP_SIGNALS))
    if parent_pid is not None:
        _exit_with_parent(parent_pid)
    set_threads(1)


@contextmanager
def _stop_signals_blocked() -> Iterator[None]:
    """Block SIGINT and SIGTERM in the calling thread (where supported) while workers are forked.

    A signal that arrives meanwhile stays pending and is delivered to the parent when the block is
    lifted; the forked children inherit the block and lift it only after ignoring both.
    """
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - Windows
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, set(STOP_SIGNALS))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _fork_is_safe() -> bool:
    """Return True when worker processes may be forked.

    That is when the platform has ``fork`` (and :data:`_FORK_SAFE` is not False). The numba kernels are
    serial (``nogil``, no ``prange``), so numba's threading layer is never used by a worker and needs no
    guard.
    """
    if _FORK_SAFE is False:
        return False
    return "fork" in multiprocessing.get_all_start_methods()


def _init_thread() -> None:
    """Thread-pool initializer: numba's thread count is per thread."""
    try:
        import numba

        from maskrefine._jit import launch_numba_threads

        launch_numba_threads()
        numba.set_num_threads(1)
    except Exception:  # noqa: BLE001  # pragma: no cover - best effort
        pass


def _warm_up_safely(warm_up: Callable[[], None]) -> None:
    """Run ``warm_up`` single-threaded; a failure is left to the real tasks to report."""
    previous = set_threads(1)
    try:
        warm_up()
    except Exception:  # noqa: BLE001 - warm-up only: the real tasks report their own errors
        pass
    finally:
        restore_threads(previous)


def _worker_main(
    conn: Connection, function: Callable[[Any], Any], tasks: Sequence[Any], parent_pid: int, stop: Any
) -> None:
    """Loop of one forked worker: receive a task index, send back ``(index, status, result_or_problem)``.

    ``function`` and ``tasks`` were inherited through ``fork`` (nothing is pickled but indices and
    results). ``status`` is True (a result), False (a problem) or None (not started: ``stop`` was set by
    the parent after Ctrl-C). ``None`` or a closed pipe ends the loop.
    """
    _init_worker(parent_pid)
    while True:
        try:
            index = conn.recv()
        except (EOFError, OSError):
            break
        if index is None:
            break
        if stop.value:
            conn.send((index, None, None))
            continue
        try:
            payload = (index, True, function(tasks[index]))
        except BaseException as exc:  # noqa: BLE001 - reported for this task, the worker goes on
            payload = (index, False, f"unexpected {type(exc).__name__}: {str(exc).strip() or '(no message)'}")
        try:
            conn.send(payload)
        except Exception as exc:  # noqa: BLE001 - e.g. an unpicklable result
            conn.send((index, False, f"cannot return the result ({type(exc).__name__}: {exc})"))


#: Tasks sent to a worker ahead of its results: it never waits for the parent between two tasks (on a
#: loaded machine the parent may not be scheduled at once).
_AHEAD = 2


@dataclass
class _Worker:
    """One forked worker process, its end of the pipe and the tasks sent to it.

    The tasks are kept oldest (the one it is processing) first.
    """

    process: Any
    conn: Connection
    assigned: deque[int] = field(default_factory=deque)


def _start_worker(function: Callable[[Any], Any], tasks: Sequence[Any], stop: Any) -> _Worker:
    context = multiprocessing.get_context("fork")
    parent_end, child_end = context.Pipe(duplex=True)
    process = context.Process(
        target=_worker_main,
        args=(child_end, function, tasks, os.getpid(), stop),
        name="maskrefine-worker",
        daemon=True,
    )
    with _stop_signals_blocked():  # the child ignores them before unblocking them (see _init_worker)
        process.start()
    child_end.close()
    return _Worker(process, parent_end)


def _death_problem(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"worker died (signal {-exitcode}) while processing it (killed, e.g. out of memory?)"
    return f"worker died (exit status {exitcode}) while processing it"


def _stop_workers(workers: Sequence[_Worker]) -> None:
    """Ask idle workers to end, wait a little, then kill whatever is left."""
    for worker in workers:
        try:
            worker.conn.send(None)
        except (OSError, ValueError):
            pass
    deadline = time.monotonic() + 5.0
    for worker in workers:
        worker.process.join(max(0.0, deadline - time.monotonic()))
        if worker.process.is_alive():  # pragma: no cover - a stuck worker
            worker.process.kill()
            worker.process.join()
        worker.conn.close()


def _kept_as_is(task: Any, result: R) -> tuple[R, bool]:
    """``settle`` of :func:`run_tasks` without ``keep`` and ``stop_when``: the result as is, never a stop."""
    return result, False


def _run_in_processes(
    function: Callable[[T], R],
    tasks: Sequence[T],
    workers_wanted: int,
    on_crash: Callable[[T, str], R],
    step: Callable[[], None],
    settle: Callable[[T, R], tuple[R, bool]] | None = None,
) -> list[R | None]:
    """Run ``tasks`` on a forked pool: one pipe per worker, so a worker that dies is known with its task.

    Each worker holds at most :data:`_AHEAD` tasks and processes them in order, so when it dies the
    oldest is the one it was processing: only that task fails (``on_crash(task, "worker died (signal
    N) while processing it ...")``), the others go back to the queue, a new worker replaces the dead one
    and the run goes on. Ctrl-C: no new task is started, the running ones finish, then
    ``KeyboardInterrupt`` is raised (a second Ctrl-C stops waiting; see
    :func:`maskrefine._signals.stops_deferred`); likewise SIGTERM, which then raises
    :class:`maskrefine._signals.Terminated`. ``settle(task, result)`` returns what to keep of each
    result and whether to stop (see :func:`run_tasks`); after a stop no new task is started either, and
    the run ends when the running ones are done (the tasks not started stay None).
    """
    settle = _kept_as_is if settle is None else settle
    results: list[Any] = [None] * len(tasks)
    queue = deque(range(len(tasks)))
    pool: list[_Worker] = []
    stop = multiprocessing.get_context("fork").RawValue("b", 0)
    state = StopRequest(on_request=lambda: setattr(stop, "value", 1))  # workers: "not started" from then
    halted = False  # settle asked to stop: no new task, the running ones finish

    def store(index: int, value: Any) -> None:
        nonlocal halted
        results[index], halt = settle(tasks[index], value)
        if halt and not halted:
            halted = True
            stop.value = 1  # the tasks sent ahead come back "not started"
        step()

    def feed(worker: _Worker, ahead: int = _AHEAD) -> None:
        """Top ``worker`` up to ``ahead`` tasks; a worker found dead meanwhile is replaced."""
        for _ in range(3 * _AHEAD):
            if not queue or state.requested or halted or len(worker.assigned) >= ahead:
                return
            index = queue.popleft()
            try:
                worker.conn.send(index)
            except (OSError, ValueError):  # it died between two tasks: put back what it had not done
                queue.appendleft(index)
                queue.extendleft(reversed(worker.assigned))
                _discard(worker)
                pool.remove(worker)
                worker = _start_worker(function, tasks, stop)
                pool.append(worker)
                continue
            worker.assigned.append(index)
        if queue and not state.requested and not halted and not worker.assigned:  # pragma: no cover
            raise RuntimeError("worker processes die as soon as they start")

    def collect(worker: _Worker) -> None:
        """Handle a worker whose pipe or process became ready: results, or its death."""
        received = False
        try:
            while worker.conn.poll():
                index, status, value = worker.conn.recv()
                worker.assigned.remove(index)
                received = True
                if status is None:  # not started after Ctrl-C (or once settle asked to stop)
                    continue
                store(index, value if status else on_crash(tasks[index], value))
        except (EOFError, OSError):
            pass
        if received and worker.process.is_alive():
            feed(worker)
            return
        worker.process.join(5.0)
        if worker.process.is_alive():  # pragma: no cover - pipe closed by a process still running
            return
        _discard(worker)
        pool.remove(worker)
        if worker.assigned:
            crashed = worker.assigned.popleft()  # the one it was processing
            store(crashed, on_crash(tasks[crashed], _death_problem(worker.process.exitcode)))
            queue.extendleft(reversed(worker.assigned))  # not started: run them elsewhere
        if queue and not state.requested and not halted:  # replace the dead worker and go on
            pool.append(_start_worker(function, tasks, stop))
            feed(pool[-1])

    try:
        with stops_deferred(state):
            for _ in range(workers_wanted):
                pool.append(_start_worker(function, tasks, stop))
            for ahead in range(1, _AHEAD + 1):  # one task each first, then the ones ahead
                for worker in list(pool):
                    feed(worker, ahead)
            while any(worker.assigned for worker in pool):
                try:
                    busy = [worker for worker in pool if worker.assigned]
                    ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
                    for worker in busy:
                        if worker.conn in ready or worker.process.sentinel in ready:
                            collect(worker)
                except KeyboardInterrupt as exc:  # a second stop, or the first where no handler was installed
                    if state.requested:
                        raise
                    state.set_from(exc)  # let the running tasks finish, start no new one
    finally:
        _stop_workers(pool)
    if state.requested:
        raise state.exception()
    return results


def _discard(worker: _Worker) -> None:
    """Reap a dead (or dying) worker and close its pipe."""
    worker.process.join(1.0)
    if worker.process.is_alive():  # pragma: no cover
        worker.process.kill()
        worker.process.join()
    worker.conn.close()


def _run_in_threads(
    function: Callable[[T], R],
    tasks: Sequence[T],
    workers: int,
    on_crash: Callable[[T, str], R],
    step: Callable[[], None],
    settle: Callable[[T, R], tuple[R, bool]] | None = None,
) -> list[R | None]:
    """Fallback where ``fork`` is unavailable: a thread pool (the kernels release the GIL).

    After ``settle`` asks to stop, the tasks not started are cancelled (and stay None).
    """
    settle = _kept_as_is if settle is None else settle
    results: list[Any] = [None] * len(tasks)
    executor = ThreadPoolExecutor(max_workers=workers, initializer=_init_thread)
    previous = set_threads(1)
    finished = False
    try:
        futures = {executor.submit(function, task): index for index, task in enumerate(tasks)}
        for future in as_completed(futures):
            if future.cancelled():
                continue
            index = futures[future]
            try:
                value = future.result()
            except Exception as exc:  # noqa: BLE001
                value = on_crash(tasks[index], f"unexpected {type(exc).__name__}: {exc}")
            results[index], halt = settle(tasks[index], value)
            step()
            if halt:
                for other in futures:
                    other.cancel()  # those not started; the running ones finish
        finished = True
    finally:
        # on an interrupt (Ctrl-C) drop the queued tasks instead of finishing them
        executor.shutdown(wait=True, cancel_futures=not finished)
        restore_threads(previous)
    return results


def run_tasks(
    function: Callable[[T], R],
    tasks: Sequence[T],
    *,
    jobs: int,
    warm_up: Callable[[], None],
    on_crash: Callable[[T, str], R],
    progress: Callable[[int, int], None] | None = None,
    done_before: int = 0,
    total: int | None = None,
    keep: Callable[[T, R], R] | None = None,
    stop_when: Callable[[R], bool] | None = None,
) -> list[R | None]:
    """Run ``function`` over ``tasks`` (in this process, or in ``jobs`` workers); results in task order.

    Parameters
    ----------
    function : callable
        ``function(task) -> result``; should not raise (a raised exception goes to ``on_crash``).
    tasks : sequence
        The tasks; forked workers inherit them (only indices and results cross the pipe).
    jobs : int
        Workers; ``jobs <= 1`` (or a single task) runs everything in this process.
    warm_up : callable
        Called once before forking (e.g. to compile kernels the workers then inherit); its errors are
        ignored.
    on_crash : callable
        ``on_crash(task, problem) -> result`` for a task whose worker raised (``"unexpected
        <Type>: <message>"``) or died (``"worker died (signal 9) while processing it ..."``). Only the
        task a dead worker was processing fails; the worker is replaced and the others go on.
    progress : callable, optional
        ``progress(done, total)`` after each task, counting from ``done_before``.
    done_before, total : int
        Offset and total passed to ``progress`` (``total`` defaults to ``done_before + len(tasks)``).
    keep : callable, optional
        ``keep(task, result) -> result``: what to keep of each result (``on_crash``'s included), called
        in this process as the result arrives, e.g. a compact copy that shares the task's objects (a
        result from a worker is an unpickled copy). Default: the result.
    stop_when : callable, optional
        ``stop_when(kept) -> bool``, called in this process after each result is kept: True starts no
        further task; the running ones finish, and the tasks not started are None in the list returned.

    Returns
    -------
    list
        One result per task, in task order (None for a task not started after ``stop_when``).

    Each worker, including this process when ``jobs == 1``, runs OpenCV and numba single-threaded, so
    ``jobs`` is the number of cores used and the results do not depend on it.
    """
    total = done_before + len(tasks) if total is None else total
    done = done_before

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    def settle(task: T, result: R) -> tuple[R, bool]:
        kept = result if keep is None else keep(task, result)
        return kept, stop_when is not None and stop_when(kept)

    if jobs <= 1 or len(tasks) <= 1:
        results: list[Any] = [None] * len(tasks)
        previous = set_threads(1)
        state = StopRequest()
        try:
            with stops_deferred(state):  # Ctrl-C / SIGTERM: the file in progress is finished first
                for index, task in enumerate(tasks):
                    if state.requested:
                        break
                    results[index], halt = settle(task, function(task))
                    step()
                    if halt:
                        break
        finally:
            restore_threads(previous)
        if state.requested:
            raise state.exception()
        return results
    workers = min(jobs, len(tasks))
    if _fork_is_safe():
        _warm_up_safely(warm_up)
        return _run_in_processes(function, tasks, workers, on_crash, step, settle)
    return _run_in_threads(function, tasks, workers, on_crash, step, settle)
