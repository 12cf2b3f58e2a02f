"""numba's ``njit`` for maskrefine's kernels, with the on-disk cache only where it can be used.

numba refuses to even define a ``cache=True`` function when no cache folder is writable (``HOME`` not
writable and the package installed read-only: "cannot cache function ...: no locator available"), and a
full cache file system makes the first call of every kernel fail. Neither is a reason to stop: the
kernel is then compiled in memory (slower first call in each process) and a warning is issued once.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numba

__all__ = [
    "njit",
    "njit_inner",
    "skip_blas_probe",
    "kernels_cached",
    "launch_numba_threads",
    "FirstCompileSplit",
    "split_first_compile",
    "skip_first_compile_splits",
]

_warned = False
_threads_launched = False


def launch_numba_threads() -> None:
    """Start numba's threading layer (once per process) without changing torch's thread count.

    numba starts its threading layer on the first ``numba.get_num_threads`` / ``set_num_threads`` call.
    Its OpenMP layer then sets the process's OpenMP thread count to ``NUMBA_NUM_THREADS`` (the CPU count
    by default), and torch, linked to the same OpenMP runtime, reads that as its own: a process that runs
    torch with ``OMP_NUM_THREADS=1`` went on with numba's count after its first numba filter call
    (measured: 1 thread became 2 in the first training step, whose crop target is the numba guided
    filter; the run's losses then differed in the last bits from a run whose first numba call came
    earlier). When torch is loaded, its count is put back right after the launch.
    """
    global _threads_launched
    if _threads_launched:
        return
    torch = sys.modules.get("torch")
    try:
        before = None if torch is None else int(torch.get_num_threads())
    except Exception:  # noqa: BLE001 - a torch that is not (fully) usable: nothing to keep
        before = None
    numba.get_num_threads()  # launches the threading layer
    _threads_launched = True
    if before is not None and torch is not None and torch.get_num_threads() != before:
        torch.set_num_threads(before)


def _warn_once(reason: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        folder = os.environ.get("NUMBA_CACHE_DIR")
        advice = (
            f"NUMBA_CACHE_DIR={folder!r} cannot be used: point it to a writable folder"
            if folder
            else "set NUMBA_CACHE_DIR to a writable folder"
        )
        warnings.warn(
            f"maskrefine: numba cannot cache compiled kernels ({reason}); they are compiled in memory "
            f"instead, in every process ({advice} to cache them)",
            RuntimeWarning,
            stacklevel=3,
        )


def _guard_cache_writes(dispatcher: Any) -> None:
    """Make a failed cache write (disk full, read-only) a warning instead of an error of the call."""
    cache = getattr(dispatcher, "_cache", None)
    save = getattr(cache, "save_overload", None)
    if cache is None or save is None:  # pragma: no cover - another numba version
        return

    def save_overload(sig: Any, data: Any) -> None:
        try:
            save(sig, data)
        except OSError as exc:
            _warn_once(f"writing the cache failed: {exc.strerror or exc}")

    cache.save_overload = save_overload


def kernels_cached() -> bool:
    """Return False once caching failed in this process (no writable cache folder, or a write failed).

    Then every process compiles the kernels it runs for itself: callers that would start fresh worker
    processes (``spawn``) do the work in this process instead of compiling once per worker. Imports the
    guided-filter kernels first, since that is when a missing cache folder is found.
    """
    import maskrefine.filters._numba_kernels  # noqa: F401  - defines the cached kernels

    return not _warned


def njit(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit(**options)``; with ``cache=True``, caching is dropped (one warning) where it fails."""

    def decorate(function: Callable[..., Any]) -> Any:
        if not options.get("cache"):
            return numba.njit(**options)(function)
        try:
            dispatcher = numba.njit(**options)(function)
        except RuntimeError as exc:  # "cannot cache function ...: no locator available for file ..."
            if "cannot cache" not in str(exc):
                raise
            _warn_once("no writable cache folder")
            return numba.njit(**{**options, "cache": False})(function)
        _guard_cache_writes(dispatcher)
        return dispatcher

    return decorate


def njit_inner(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """:func:`njit` for a helper that only other kernels call: no Python or C entry point is built.

    Building those wrappers is a share of each helper's first compile (~15 % of compiling the guided
    filter). Without its Python entry point the helper must not be called from Python (numba would jump to
    a wrapper that does not exist and crash the process), so such a call raises :class:`TypeError`.
    """
    plain = njit(no_cpython_wrapper=True, no_cfunc_wrapper=True, **options)

    def decorate(function: Callable[..., Any]) -> Any:
        dispatcher = plain(function)
        dispatcher.__class__ = _kernel_only_class(type(dispatcher))
        return dispatcher

    return decorate


_KERNEL_ONLY: dict[type, type] = {}


def _kernel_only_class(base: type) -> type:
    """Return ``base`` (numba's dispatcher class) with calls from Python refused."""
    if base not in _KERNEL_ONLY:

        def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:
            raise TypeError(
                f"{self.py_func.__qualname__} is a helper of maskrefine's numba kernels and has no Python "
                "entry point; call it from a kernel"
            )

        _KERNEL_ONLY[base] = type(f"KernelOnly{base.__name__}", (base,), {"__call__": __call__})
    return _KERNEL_ONLY[base]


def skip_blas_probe() -> None:
    """Load numba's array functions without the BLAS probe that imports SciPy's ``linalg`` package.

    numba checks at import of ``numba.np.arraymath`` whether BLAS is available, by importing
    ``scipy.linalg`` (0.15-0.3 s, a sixth of a warm ``maskrefine apply``); no maskrefine kernel uses BLAS.
    For processes that run only maskrefine's kernels (the CLI calls this): the probe then finds no BLAS,
    which in this process only makes numba-compiled ``np.correlate`` / ``np.convolve`` use a loop instead
    of BLAS (numba's ``np.dot`` and ``np.linalg`` check again when compiled, and find it). ``scipy.linalg``
    imports normally afterwards. Does nothing when either module is already imported.
    """
    if "numba.np.arraymath" in sys.modules or "scipy.linalg" in sys.modules:
        return
    sys.modules["scipy.linalg"] = None  # type: ignore[assignment]  # None in sys.modules: import raises
    try:
        import numba.np.arraymath  # noqa: F401
    except ImportError:  # pragma: no cover - a numba without this module: nothing to skip
        pass
    finally:
        if "scipy.linalg" in sys.modules and sys.modules["scipy.linalg"] is None:
            del sys.modules["scipy.linalg"]


# ------------------------------------------------------------------------ first compile on two cores
@dataclass(frozen=True)
class FirstCompileSplit:
    """How the first compile of one kernel signature is shared between this process and a second one.

    numba compiles a kernel's helpers one after the other, in one thread (its compiler holds a global
    lock), and a kernel's first compile is most of a cold first run (issue 14: ~4 of ~5 s for the colour
    guided filter). Every helper is a separate cached function, and numba looks in the on-disk cache for
    a helper before compiling it for a caller: so a second process can compile some helpers into the cache
    while this one compiles the others, and the kernel's own compile then finds them all.

    Attributes
    ----------
    kernel : numba dispatcher
        The kernel whose first compile is split (it is then compiled here, with every helper found).
    here, elsewhere : tuple of (numba dispatcher, signature)
        Helpers, each with the exact argument types the kernel calls it with: ``here`` are compiled in
        this process, ``elsewhere`` by the second process, at the same time.
    """

    kernel: Any
    here: tuple[tuple[Any, tuple[Any, ...]], ...]
    elsewhere: tuple[tuple[Any, tuple[Any, ...]], ...]


#: Seconds this process waits for the second one after compiling its own share; then it compiles what is
#: missing itself (the second process is stopped).
SECOND_PROCESS_WAIT_S = 30.0

_split_lock = threading.Lock()
_splits_done: set[tuple[str, str]] = set()
_no_splits = False


def skip_first_compile_splits() -> None:
    """Never split a first compile in this process: compile everything here (e.g. in a pool worker).

    Workers of a process pool already keep the CPUs busy: a second compile process per worker would only
    compete with the other workers (a cold cache makes every spawned worker compile at once).
    """
    global _no_splits
    _no_splits = True


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _kernel_uncached(kernel: Any) -> bool:
    """Tell whether ``kernel`` is compiled neither here nor in the on-disk cache (a first run).

    The cache counts as empty when its index is missing, or was made from another source file (numba
    stamps the index with the source: one left by an earlier version of the package is stale, and
    everything is compiled again). Anything numba does not expose as expected (another numba version,
    ``NUMBA_DISABLE_JIT``, caching off) counts as cached: the split is only an optimisation.
    """
    if getattr(kernel, "overloads", True):
        return False
    cache_file = getattr(getattr(kernel, "_cache", None), "_cache_file", None)
    index_path = getattr(cache_file, "_index_path", None)
    load_index = getattr(cache_file, "_load_index", None)
    if not isinstance(index_path, str) or load_index is None:
        return False
    if not os.path.exists(index_path):
        return True
    try:
        return not load_index()  # {} when stale
    except Exception:  # noqa: BLE001 - an unreadable index: numba will compile anyway, without the split
        return False


def split_first_compile(module: str, key: str) -> bool:
    """Compile the helpers of ``module.FIRST_COMPILE_SPLITS[key]`` on two cores, on a first run.

    Does nothing (and returns False) unless the kernel is neither compiled in this process nor in the
    on-disk cache, the cache is usable, at least two CPUs are available to this process, splits are not
    turned off here (:func:`skip_first_compile_splits`) and this split was not already considered here
    (each split is considered once per process: later calls cost one lookup). Otherwise starts
    ``python -P -c`` (this interpreter, this package, the same environment and so the same
    ``NUMBA_CACHE_DIR``) to compile the ``elsewhere`` helpers, compiles the ``here`` helpers meanwhile,
    then waits for it (at most :data:`SECOND_PROCESS_WAIT_S`). The second process is killed when this one
    is interrupted or stops waiting, and ends with it when it dies, even by ``kill -9``
    (:func:`maskrefine._parent_death.exit_with_parent`). A second process that cannot start, fails
    or is late changes nothing but the time: the kernel's compile then compiles whatever helper it does
    not find. Returns True when the second process ran to a clean exit.
    """
    if _no_splits or (module, key) in _splits_done:  # every call of the filter comes here: kept cheap
        return False
    split = _split_named(module, key)
    with _split_lock:
        if (module, key) in _splits_done:
            return False
        _splits_done.add((module, key))
        if not _kernel_uncached(split.kernel) or _usable_cpus() < 2 or not kernels_cached():
            return False
        if not sys.executable:  # pragma: no cover - an embedded interpreter
            return False
        helper = _start_second_compile(module, key)
        try:
            _compile_helpers(split.here)
        except BaseException:
            if helper is not None:
                _stop(helper)
            raise
        return helper is not None and _wait_or_stop(helper)


def _start_second_compile(module: str, key: str) -> subprocess.Popen[bytes] | None:
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # tied to this process first (before numba is imported): if this one dies, even by kill -9, the second
    # one ends too instead of compiling on for nobody
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from maskrefine._parent_death import exit_with_parent; exit_with_parent(int(sys.argv[4])); "
        "import maskrefine._jit as j; j._compile_split_elsewhere(sys.argv[2], sys.argv[3])"
    )
    try:
        return subprocess.Popen(
            # -P: not the current folder first on sys.path (a numba.py there must not be imported)
            [sys.executable, "-P", "-c", code, package_parent, module, key, str(os.getpid())],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
    except (OSError, ValueError):
        return None


def _wait_or_stop(process: subprocess.Popen[bytes]) -> bool:
    try:
        return process.wait(timeout=SECOND_PROCESS_WAIT_S) == 0
    except subprocess.TimeoutExpired:
        return False
    finally:
        _stop(process)  # late, or this process is being interrupted


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the second process if it still runs (numba writes its cache files atomically)."""
    if process.poll() is None:
        process.kill()
        process.wait()


def _compile_helpers(helpers: Sequence[tuple[Any, tuple[Any, ...]]]) -> None:
    for helper, signature in helpers:
        helper.compile(signature)


def _compile_split_elsewhere(module: str, key: str) -> None:
    """Body of the second process: compile the ``elsewhere`` helpers of one split into the cache.

    The process ends right after, and the first one waits for that end: its shutdown skips the garbage
    collector's walks over numba's objects (:func:`maskrefine._entry.skip_final_collections`). Measured
    for the colour split on a cold cache: the exit took 0.16-0.19 s after the compile without it,
    0.02-0.03 s with it (4 alternating runs). numba has closed and renamed its cache files when
    ``compile`` returns.
    """
    from maskrefine._entry import skip_final_collections

    skip_blas_probe()  # the helpers use no BLAS: the probe would only delay the compile
    _compile_helpers(_split_named(module, key).elsewhere)
    skip_final_collections()


def _split_named(module: str, key: str) -> FirstCompileSplit:
    splits: dict[str, FirstCompileSplit] = importlib.import_module(module).FIRST_COMPILE_SPLITS
    return splits[key]
