"""numba's ``njit`` for maskrefine's kernels, with the on-disk cache only where it can be used.

numba refuses to even define a ``cache=True`` function when no cache folder is writable (``HOME`` not
writable and the package installed read-only: "cannot cache function ...: no locator available"), and a
full cache file system makes the first call of every kernel fail. Neither is a reason to stop: the
kernel is then compiled in memory (slower first call in each process) and a warning is issued once.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numba

__all__ = ["njit"]

_warned = False


def _warn_once(reason: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(
            f"maskrefine: numba cannot cache compiled kernels ({reason}); they are compiled in memory "
            "instead (set NUMBA_CACHE_DIR to a writable folder to cache them)",
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
