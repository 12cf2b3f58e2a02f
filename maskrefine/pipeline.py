"""Folder jobs: refine a folder of masks (:func:`apply_folder`) and score a folder of predictions
(:func:`score_folder`).

The pipeline loops and collects; it reads and writes through :mod:`maskrefine.io` and computes through
:mod:`maskrefine.refiners` and :mod:`maskrefine.metrics`. It never prints: every outcome (written,
skipped, failed, unmatched, duplicated) is returned in a report for the caller (the CLI) to show.

Safety rules (both jobs)
------------------------
* Inputs are never modified. An output folder equal to an input folder, inside one, or containing one
  (after resolving symlinks) is refused with :class:`~maskrefine.errors.ConfigError` before anything is
  written; so is any other usage problem (bad shard, unknown method, conflicting flags).
* Outputs are written to a temporary file in the destination folder and renamed into place.
* Existing outputs: with neither ``overwrite`` nor ``skip_existing``, :func:`apply_folder` refuses to
  start (``ConfigError`` naming the first existing outputs) so that a rerun never half-overwrites a
  folder; ``skip_existing=True`` resumes (existing outputs are left alone and reported as skipped);
  ``overwrite=True`` replaces them. Both together is a ``ConfigError``.
* One bad file (empty, truncated, not an image, a mask whose size cannot belong to the image, NaN in an
  ``.npy``) is recorded as a failure naming the file and the problem; the other files are processed and
  the report's ``ok`` is False. An unexpected exception in one file is recorded the same way (with the
  exception type) rather than ending the run.

Parallelism
-----------
``jobs`` files are processed at once, each worker single-threaded (see :func:`apply_folder`); per-file
outcomes are collected in stem order, so reports and outputs do not depend on ``jobs``. Forked worker
processes ignore SIGINT (the parent handles Ctrl-C: it cancels the queued files, lets the running ones
finish and re-raises ``KeyboardInterrupt``) and end by themselves when the parent dies, even by
``kill -9`` (Linux ``PR_SET_PDEATHSIG``, elsewhere a thread polling the parent pid).

Sharding
--------
``shard=(k, n)`` (or the string ``"k/n"``) keeps the stems whose stable hash (SHA-1 of the UTF-8 stem)
modulo ``n`` equals ``k - 1``: **k is 1-based**, ``1 <= k <= n``. The ``n`` shards are disjoint and their
union is the whole folder, on any machine and Python version. Unmatched and duplicated names are
sharded the same way, so each is reported by exactly one shard.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from maskrefine.errors import ConfigError, InputError
from maskrefine.io import (
    IMAGE_EXTENSIONS,
    MASK_EXTENSIONS,
    Pairing,
    match_folders,
    read_image,
    read_mask,
    read_mask_array,
    write_mask,
    write_text_atomic,
)
from maskrefine.refiners import GUIDE_MODES, REFINERS, check_mask_size, refine, resolve_params

__all__ = [
    "apply_folder",
    "score_folder",
    "RunReport",
    "ScoreReport",
    "FileOutcome",
    "Failure",
    "Unmatched",
    "parse_shard",
    "shard_index",
    "OUTPUT_FORMATS",
]

#: Output formats of :func:`apply_folder` and the file suffix each one writes.
OUTPUT_FORMATS: dict[str, str] = {"png8": ".png", "png16": ".png", "npy": ".npy"}

#: Files :func:`score_folder` may write into ``plot_dir``.
PLOT_FILES: tuple[str, str] = ("pr_curve.png", "montage.png")

Progress = Callable[[int, int], None]
Status = Literal["written", "skipped", "failed"]


# --------------------------------------------------------------------------------------------------
# report types


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What happened to one matched stem in :func:`apply_folder`.

    Attributes
    ----------
    stem : str
        File name without suffix, shared by the mask and the image.
    status : {"written", "skipped", "failed"}
        ``skipped`` means the output already existed and ``skip_existing`` was set.
    mask, image, output : Path
        The input mask, the input image and the (intended) output file.
    error : str or None
        For failures: the message, starting with the file it concerns.
    seconds : float
        Wall time spent on this file (0 for skipped files).
    """

    stem: str
    status: Status
    mask: Path
    image: Path
    output: Path
    error: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (paths as strings)."""
        return {
            "stem": self.stem,
            "status": self.status,
            "mask": str(self.mask),
            "image": str(self.image),
            "output": str(self.output),
            "error": self.error,
            "seconds": round(self.seconds, 6),
        }


@dataclass(frozen=True, slots=True)
class Failure:
    """A file that could not be used: its path and the problem (``message`` is ``"path: problem"``)."""

    path: Path
    problem: str

    @property
    def message(self) -> str:
        """``"path: problem"``, as printed by the CLI."""
        return f"{self.path}: {self.problem}"

    def to_dict(self) -> dict[str, str]:
        """JSON-ready dict."""
        return {"path": str(self.path), "problem": self.problem}


@dataclass(frozen=True, slots=True)
class Unmatched:
    """A file whose stem has no partner; ``folder`` names the folder it was found in."""

    path: Path
    folder: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready dict."""
        return {"path": str(self.path), "folder": self.folder}


def _duplicates_dict(duplicates: Mapping[str, Sequence[Path]]) -> dict[str, list[str]]:
    return {stem: [str(p) for p in paths] for stem, paths in sorted(duplicates.items())}


@dataclass(slots=True)
class RunReport:
    """Result of :func:`apply_folder`.

    Attributes
    ----------
    outcomes : list of FileOutcome
        One per matched stem, in stem order.
    unmatched : list of Unmatched
        Masks without an image (``folder="masks"``) and images without a mask (``folder="images"``).
    duplicates : dict of str to list of Path
        Stems present more than once in a folder (e.g. ``a.png`` and ``a.jpg``); not processed.
    elapsed : float
        Wall time of the whole job in seconds.
    config : dict
        The job's settings (method, params, guide, fmt, jobs, shard, folders), for the JSON report.
    """

    outcomes: list[FileOutcome] = field(default_factory=list)
    unmatched: list[Unmatched] = field(default_factory=list)
    duplicates: dict[str, list[Path]] = field(default_factory=dict)
    elapsed: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)

    def _count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def counts(self) -> dict[str, int]:
        """Number of ``written``, ``skipped``, ``failed``, ``unmatched`` and ``duplicates`` entries."""
        return {
            "written": self._count("written"),
            "skipped": self._count("skipped"),
            "failed": self._count("failed"),
            "unmatched": len(self.unmatched),
            "duplicates": len(self.duplicates),
        }

    @property
    def failures(self) -> list[FileOutcome]:
        """The failed outcomes."""
        return [outcome for outcome in self.outcomes if outcome.status == "failed"]

    @property
    def masks_per_s(self) -> float:
        """Written masks per second of wall time (0 when nothing was written)."""
        written = self._count("written")
        return written / self.elapsed if written and self.elapsed > 0 else 0.0

    @property
    def ok(self) -> bool:
        """True when no file failed (unmatched and duplicated names are reported but are not failures)."""
        return self._count("failed") == 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ok, counts, masks_per_s, elapsed_s, config, files, unmatched, duplicates."""
        return {
            "ok": self.ok,
            "counts": self.counts,
            "masks_per_s": round(self.masks_per_s, 3),
            "elapsed_s": round(self.elapsed, 6),
            "config": self.config,
            "files": [outcome.to_dict() for outcome in self.outcomes],
            "unmatched": [item.to_dict() for item in self.unmatched],
            "duplicates": _duplicates_dict(self.duplicates),
        }

    def write_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as indented JSON to ``path`` atomically (parent folders created)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return write_text_atomic(path, json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")


@dataclass(slots=True)
class ScoreReport:
    """Result of :func:`score_folder`.

    Attributes
    ----------
    summary : dict
        The evaluator's summary (snake_case metric names, ``preset``, ``count``, ``empty_gt``,
        ``empty_pred``) plus ``corloc`` (and ``corloc_count``) when boxes were given. Curves are kept out
        of it (see ``curves``).
    rows : list of dict
        Per-image values, one row per scored stem.
    failures : list of Failure
        Files that could not be scored.
    unmatched : list of Unmatched
        Predictions without GT (``folder="predictions"``) and GT without prediction (``folder="gt"``).
    duplicates : dict of str to list of Path
        Ambiguous stems, not scored.
    curves : dict
        Array-valued entries of the evaluator's summary (e.g. precision/recall curves), for plots.
    elapsed : float
        Wall time in seconds.
    plots : list of Path
        Figures written (when ``plot_dir`` was given).
    config : dict
        The job's settings.
    """

    summary: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    unmatched: list[Unmatched] = field(default_factory=list)
    duplicates: dict[str, list[Path]] = field(default_factory=dict)
    curves: dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0
    plots: list[Path] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no file failed."""
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        """The summary JSON: the summary's keys at top level, plus ``ok``, ``failed``, ``unmatched``,
        ``duplicates``, ``elapsed_s``, ``config`` and ``plots``."""
        out = {key: _jsonable(value) for key, value in self.summary.items()}
        out.update(
            {
                "ok": self.ok,
                "failed": [failure.to_dict() for failure in self.failures],
                "unmatched": [item.to_dict() for item in self.unmatched],
                "duplicates": _duplicates_dict(self.duplicates),
                "elapsed_s": round(self.elapsed, 6),
                "config": self.config,
                "plots": [str(path) for path in self.plots],
            }
        )
        return out

    def write_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as indented JSON to ``path`` atomically (NaN written as null)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return write_text_atomic(path, json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")

    def write_csv(self, path: str | Path) -> Path:
        """Write the per-image rows as CSV to ``path`` atomically (NaN written as ``nan``)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return write_text_atomic(path, _rows_to_csv(self.rows))


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def _rows_to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    import csv
    import io

    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _csv_cell(row.get(key)) for key in columns})
    return buffer.getvalue()


def _csv_cell(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    if value is None:
        return ""
    return value


# --------------------------------------------------------------------------------------------------
# validation helpers


def parse_shard(shard: object) -> tuple[int, int] | None:
    """Return ``shard`` as ``(k, n)`` with ``1 <= k <= n`` (1-based), or None for no sharding.

    Accepts None, a ``(k, n)`` pair or the string ``"k/n"``.

    Raises
    ------
    ConfigError
        Anything else, e.g. ``"0/4"``, ``"5/4"``, ``"a/b"``.
    """
    if shard is None:
        return None
    pair: tuple[object, ...]
    if isinstance(shard, str):
        parts = shard.split("/")
        if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
            raise ConfigError(f"shard must look like K/N with 1 <= K <= N (e.g. 1/4); got {shard!r}")
        pair = (int(parts[0]), int(parts[1]))
    elif isinstance(shard, (tuple, list)) and len(shard) == 2:
        pair = tuple(shard)
    else:
        raise ConfigError(f"shard must be a (k, n) pair or a 'k/n' string; got {shard!r}")
    k, n = pair
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in (k, n)):
        raise ConfigError(f"shard values must be integers; got {shard!r}")
    k, n = int(k), int(n)  # type: ignore[arg-type]
    if n < 1 or not 1 <= k <= n:
        raise ConfigError(f"shard k/n needs 1 <= k <= n (k is 1-based); got {k}/{n}")
    return k, n


def shard_index(stem: str, n: int) -> int:
    """The 1-based shard (of ``n``) that ``stem`` belongs to: ``sha1(stem) mod n + 1``."""
    digest = hashlib.sha1(stem.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % n + 1


def _in_shard(stem: str, shard: tuple[int, int] | None) -> bool:
    return shard is None or shard_index(stem, shard[1]) == shard[0]


def _check_jobs(jobs: object) -> int:
    if jobs is None:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover - not Linux
            return max(1, os.cpu_count() or 1)
    if isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or jobs < 1:
        raise ConfigError(f"jobs must be an integer >= 1 (or None for all cores); got {jobs!r}")
    return int(jobs)


def _check_folder(path: str | Path, what: str) -> Path:
    folder = Path(path)
    if not folder.exists():
        raise ConfigError(f"{what} folder {folder} does not exist")
    if not folder.is_dir():
        raise ConfigError(f"{what} {folder} is not a folder")
    return folder


def _is_within(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def _check_output_folder(out_dir: Path, inputs: Mapping[str, Path]) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"output {out_dir} exists and is not a folder")
    resolved_out = out_dir.resolve()
    for what, folder in inputs.items():
        resolved_in = folder.resolve()
        if _is_within(resolved_out, resolved_in):
            raise ConfigError(
                f"output folder {out_dir} is (inside) the {what} folder {folder}; "
                "choose a separate output folder so that inputs are never overwritten"
            )
        if _is_within(resolved_in, resolved_out):
            raise ConfigError(
                f"the {what} folder {folder} is inside the output folder {out_dir}; "
                "choose a separate output folder"
            )


def _check_output_file(
    path: Path,
    what: str,
    inputs: Mapping[str, Path],
    input_files: Mapping[str, Path] | None = None,
    taken: Mapping[str, Path] | None = None,
) -> Path:
    """Refuse (ConfigError) an output file that would replace an input or another output.

    ``inputs`` are folders the file must not be (inside); ``input_files`` single input files it must
    not be (also through a symlink or hard link); ``taken`` the other output files of the job, resolved.
    Returns the resolved path.
    """
    resolved = path.resolve()
    for name, folder in inputs.items():
        if folder is not None and _is_within(resolved, folder.resolve()):
            raise ConfigError(f"{what} {path} is inside the {name} folder {folder}; write it elsewhere")
    for name, file in (input_files or {}).items():
        if resolved == file.resolve() or _same_file(path, file):
            raise ConfigError(f"{what} {path} is the {name} file {file}; write it elsewhere")
    for name, other in (taken or {}).items():
        if resolved == other:
            raise ConfigError(f"{what} {path} is also the {name}; give each output its own path")
    if path.exists() and path.is_dir():
        raise ConfigError(f"{what} {path} is a folder")
    return resolved


def _same_file(first: Path, second: Path) -> bool:
    try:
        return first.exists() and second.exists() and os.path.samefile(first, second)
    except OSError:  # pragma: no cover - vanished meanwhile
        return False


def _unmatched(
    pairing: Pairing, first: str, second: str, shard: tuple[int, int] | None
) -> tuple[list[Unmatched], dict[str, list[Path]]]:
    unmatched = [Unmatched(p, first) for p in pairing.only_first if _in_shard(p.stem, shard)]
    unmatched += [Unmatched(p, second) for p in pairing.only_second if _in_shard(p.stem, shard)]
    duplicates = {s: list(ps) for s, ps in sorted(pairing.duplicates.items()) if _in_shard(s, shard)}
    return unmatched, duplicates


# --------------------------------------------------------------------------------------------------
# apply_folder


@dataclass(frozen=True, slots=True)
class _ApplyTask:
    stem: str
    mask: Path
    image: Path
    output: Path
    method: str
    params: dict[str, Any]
    guide: str
    binary_input: bool
    fmt: str
    overwrite: bool


def _describe_unexpected(path: Path, exc: BaseException) -> str:
    text = str(exc).strip() or "(no message)"
    return f"{path}: unexpected {type(exc).__name__}: {text}"


def _apply_one(task: _ApplyTask) -> FileOutcome:
    """Read, refine and write one pair; every problem becomes a failed outcome (never raises)."""
    start = time.perf_counter()

    def failed(message: str) -> FileOutcome:
        return FileOutcome(
            task.stem, "failed", task.mask, task.image, task.output, message, time.perf_counter() - start
        )

    current = task.image
    try:
        image = read_image(task.image)
        current = task.mask
        mask = read_mask(task.mask)
        problem = check_mask_size(mask.shape, image.shape[:2])
        if problem is not None:
            raise InputError(task.mask, f"{problem} (image {task.image.name})")
        refined = refine(
            image, mask, task.method, guide=task.guide, binary_input=task.binary_input, **task.params
        )
        current = task.output
        if not task.overwrite and task.output.exists():
            raise InputError(task.output, "output exists (use --overwrite or --skip-existing)")
        write_mask(task.output, refined, task.fmt)  # type: ignore[arg-type]
    except InputError as exc:
        return failed(str(exc))
    except ValueError as exc:  # e.g. an image smaller than the filter window
        return failed(f"{current}: cannot refine: {exc}")
    except Exception as exc:  # noqa: BLE001 - one file must never end the run
        return failed(_describe_unexpected(current, exc))
    return FileOutcome(
        task.stem, "written", task.mask, task.image, task.output, None, time.perf_counter() - start
    )


def _set_threads(count: int) -> tuple[int | None, int | None]:
    """Set OpenCV's and numba's thread counts (best effort); return the previous values."""
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


def _restore_threads(previous: tuple[int | None, int | None]) -> None:
    previous_cv2, previous_numba = previous
    if previous_cv2 is not None:
        import cv2

        cv2.setNumThreads(previous_cv2)
    if previous_numba is not None:
        import numba

        numba.set_num_threads(previous_numba)


def _warm_up(method: str, params: Mapping[str, Any], guide: str) -> None:
    """Compile the method's kernels on a tiny synthetic image (errors are left to the real files)."""
    radius = int(params.get("radius", 1) or 1)
    subsample = int(params.get("subsample", 1) or 1)
    size = 2 * radius + 2 * subsample + 9
    rng = np.random.default_rng(0)
    image = rng.random((size, size + 3, 3), dtype=np.float32)
    mask = rng.random((size, size + 3), dtype=np.float32)
    try:
        refine(image, mask, method, guide=guide, **params)
    except Exception:  # noqa: BLE001 - warm-up only
        pass


def _init_worker(parent_pid: int | None = None) -> None:
    """Process-pool initializer (runs in each forked worker before its first file).

    * SIGINT is ignored: Ctrl-C reaches the whole process group, but only the parent acts on it (it
      cancels the queued files and waits for the running ones), so workers print no
      ``KeyboardInterrupt`` traceback. The parent forks with SIGINT blocked (:func:`_sigint_blocked`), so
      no Ctrl-C can hit a worker before this runs; a SIGINT already pending here is discarded.
    * The worker ends when the parent ``parent_pid`` dies, even by ``kill -9``
      (:func:`_exit_with_parent`); otherwise it would wait for work forever.
    * One thread per worker, so ``jobs`` processes use ``jobs`` cores (numba first: a forked child must
      not run numba's OpenMP layer multi-threaded, it can hang).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    if parent_pid is not None:
        _exit_with_parent(parent_pid)
    _set_threads(1)


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
#: Seconds between two checks of the fallback parent watcher (platforms without ``prctl``).
PARENT_POLL_S = 0.5


def _set_parent_death_signal(sig: int) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies; False where unavailable.

    The kernel ties this to the parent *thread* that forked us: :func:`_run_tasks` forks the workers from
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


def _numba_pool_started() -> bool:
    """Whether numba's threading layer has been started in this process."""
    try:
        from numba.np.ufunc import parallel

        return bool(getattr(parallel, "_is_initialized", True))
    except Exception:  # noqa: BLE001  # pragma: no cover
        return True


_FORK_SAFE: bool | None = None


def _fork_is_safe() -> bool:
    """True when worker processes may be forked: the platform has ``fork`` and numba's threading layer
    was not started in this process before maskrefine first needed it (from then on maskrefine only runs
    numba single-threaded here, and workers do the same)."""
    global _FORK_SAFE
    if "fork" not in multiprocessing.get_all_start_methods():
        return False  # pragma: no cover - macOS / Windows
    if _FORK_SAFE is None:
        _FORK_SAFE = not _numba_pool_started()
    return _FORK_SAFE


def _init_thread() -> None:
    """Thread-pool initializer: numba's thread count is per thread."""
    try:
        import numba

        numba.set_num_threads(1)
    except Exception:  # noqa: BLE001  # pragma: no cover - best effort
        pass


def _make_executor(workers: int, warm_up: tuple[str, Mapping[str, Any], str]) -> Executor:
    """The worker pool.

    Forked processes when :func:`_fork_is_safe` (the case of a fresh ``maskrefine apply``); the kernels
    are compiled once here first (single-threaded) and inherited by the workers. Otherwise a thread
    pool: always safe and needs no ``__main__`` guard, but the numba kernels hold the GIL, so only
    reading, resizing and encoding run in parallel.
    """
    if _fork_is_safe():
        previous = _set_threads(1)
        try:
            _warm_up(*warm_up)
        finally:
            _restore_threads(previous)
        return ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_init_worker,
            initargs=(os.getpid(),),
        )
    return ThreadPoolExecutor(max_workers=workers, initializer=_init_thread)


def _run_tasks(
    function: Callable[[Any], FileOutcome],
    tasks: Sequence[Any],
    jobs: int,
    progress: Progress | None,
    done_before: int,
    total: int,
    warm_up: tuple[str, Mapping[str, Any], str],
) -> list[FileOutcome]:
    """Run ``function`` over ``tasks`` (in this process, or in ``jobs`` processes); results in task order.

    Each worker, including this process when ``jobs == 1``, runs OpenCV and numba single-threaded, so
    ``jobs`` is the number of cores used and the outputs do not depend on it.
    """
    results: list[FileOutcome | None] = [None] * len(tasks)
    done = done_before
    if jobs <= 1 or len(tasks) <= 1:
        previous = _set_threads(1)
        try:
            for index, task in enumerate(tasks):
                results[index] = function(task)
                done += 1
                if progress is not None:
                    progress(done, total)
        finally:
            _restore_threads(previous)
        return [r for r in results if r is not None]
    workers = min(jobs, len(tasks))
    executor = _make_executor(workers, warm_up)
    previous = _set_threads(1) if isinstance(executor, ThreadPoolExecutor) else None
    finished = False
    try:
        futures: dict[Future[FileOutcome], int] = {}
        with _sigint_blocked():  # the first submit forks the workers (see _init_worker)
            futures[executor.submit(function, tasks[0])] = 0
        for index, task in enumerate(tasks[1:], start=1):
            futures[executor.submit(function, task)] = index
        for future in as_completed(futures):
            index = futures[future]
            try:
                results[index] = future.result()
            except BrokenProcessPool as exc:
                task = tasks[index]
                message = f"{task.mask}: worker process died ({exc or 'killed, out of memory?'})"
                results[index] = FileOutcome(task.stem, "failed", task.mask, task.image, task.output, message)
            except Exception as exc:  # noqa: BLE001 - e.g. a pickling error
                task = tasks[index]
                message = _describe_unexpected(task.mask, exc)
                results[index] = FileOutcome(task.stem, "failed", task.mask, task.image, task.output, message)
            done += 1
            if progress is not None:
                progress(done, total)
        finished = True
    finally:
        # on an interrupt (Ctrl-C) drop the queued files instead of finishing the folder; outputs are
        # atomic, so a rerun with skip_existing resumes cleanly
        executor.shutdown(wait=True, cancel_futures=not finished)
        if previous is not None:
            _restore_threads(previous)
    return [r for r in results if r is not None]


def apply_folder(
    masks_dir: str | Path,
    images_dir: str | Path,
    out_dir: str | Path,
    *,
    method: str = "guided",
    params: Mapping[str, Any] | None = None,
    guide: str = "mean",
    binary_input: bool = False,
    fmt: str = "png8",
    overwrite: bool = False,
    skip_existing: bool = False,
    jobs: int | None = None,
    shard: tuple[int, int] | str | None = None,
    progress: Progress | None = None,
    report_path: str | Path | None = None,
) -> RunReport:
    """Refine every mask of ``masks_dir`` with its image from ``images_dir`` and write it to ``out_dir``.

    Parameters
    ----------
    masks_dir : path-like
        Masks (``.png`` 8- or 16-bit, ``.npy`` float/bool in [0, 1]) of any size that is a uniform
        downscale of the image: full size, 1/8 or 1/16 patch grids, ... (rule:
        :func:`maskrefine.refiners.check_mask_size`).
    images_dir : path-like
        Images (png, jpg, jpeg, bmp, tif, tiff, webp) paired with the masks by file stem.
    out_dir : path-like
        Output folder (created if missing); receives ``<stem>.png`` (``png8``/``png16``) or
        ``<stem>.npy``. It must not be, contain, or lie inside an input folder.
    method : str
        A key of :data:`maskrefine.refiners.REFINERS`.
    params : mapping, optional
        Method parameters overriding its defaults (``None`` values are ignored).
    guide : {"mean", "luma", "color"}
        Guide built from the image.
    binary_input : bool
        Masks are hard: resize them with nearest-neighbour instead of bilinear interpolation.
    fmt : {"png8", "png16", "npy"}
        Output format.
    overwrite : bool
        Replace existing outputs.
    skip_existing : bool
        Leave existing outputs alone and report them as skipped (resume an interrupted run).
    jobs : int, optional
        Files processed at once (None: one per available core); each worker runs OpenCV and numba
        single-threaded, so ``jobs`` is the number of cores used. ``jobs=1`` runs in this process;
        otherwise forked worker processes (Linux) inherit the kernels compiled once here, or, when
        forking is unsafe (numba's threading layer was already started in this process before the first
        folder job, or no ``fork`` on this platform), a thread pool is used (correct, but only the
        I/O and OpenCV parts then run in parallel). Outputs are byte-identical for any value.
    shard : (int, int) or str, optional
        ``(k, n)`` or ``"k/n"``, **1-based** k: process only the stems of shard k of n (stable SHA-1
        hash of the stem).
    progress : callable, optional
        ``progress(done, total)``, called after each file (skipped files count as done at once).
    report_path : path-like, optional
        Write the report (:meth:`RunReport.write_json`) there at the end. Checked with the other
        settings: it must not be (inside) an input folder, the output folder, or one of the outputs.

    Returns
    -------
    RunReport
        Per-file outcomes, unmatched names, duplicates and timing; ``report.ok`` is False if any file
        failed.

    Raises
    ------
    ConfigError
        Before anything is written: missing input folder, unsafe ``out_dir`` or ``report_path``,
        unknown method / guide / format / parameter, invalid ``jobs`` or ``shard``, ``overwrite`` with
        ``skip_existing``, or existing outputs without either flag.
    """
    start = time.perf_counter()
    masks_path = _check_folder(masks_dir, "masks")
    images_path = _check_folder(images_dir, "images")
    out_path = Path(out_dir)
    input_folders = {"masks": masks_path, "images": images_path}
    _check_output_folder(out_path, input_folders)
    report_file = None
    if report_path is not None:
        report_file = Path(report_path)
        _check_output_file(
            report_file, "report file", input_folders, taken={"output folder": out_path.resolve()}
        )
    if overwrite and skip_existing:
        raise ConfigError("overwrite and skip_existing exclude each other; choose one")
    if fmt not in OUTPUT_FORMATS:
        raise ConfigError(f"fmt must be one of {', '.join(OUTPUT_FORMATS)}; got {fmt!r}")
    if guide not in GUIDE_MODES:
        raise ConfigError(f"guide must be one of {', '.join(GUIDE_MODES)}; got {guide!r}")
    if method not in REFINERS:
        raise ConfigError(f"method must be one of {', '.join(REFINERS)}; got {method!r}")
    try:
        resolved = resolve_params(method, params)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    workers = _check_jobs(jobs)
    shard_kn = parse_shard(shard)
    _fork_is_safe()  # decided before this process runs any numba kernel

    pairing = match_folders(masks_path, images_path, MASK_EXTENSIONS, IMAGE_EXTENSIONS)
    unmatched, duplicates = _unmatched(pairing, "masks", "images", shard_kn)
    suffix = OUTPUT_FORMATS[fmt]
    tasks = [
        _ApplyTask(
            stem=pair.stem,
            mask=pair.first,
            image=pair.second,
            output=out_path / f"{pair.stem}{suffix}",
            method=method,
            params=resolved,
            guide=guide,
            binary_input=bool(binary_input),
            fmt=fmt,
            overwrite=bool(overwrite),
        )
        for pair in pairing.pairs
        if _in_shard(pair.stem, shard_kn)
    ]
    if report_file is not None and report_file.resolve().parent == out_path.resolve():
        clash = report_file.resolve().name
        if any(task.output.name == clash for task in tasks):
            raise ConfigError(
                f"report file {report_file} is also the output of {Path(clash).stem!r}; write it elsewhere"
            )
    existing = [task for task in tasks if task.output.exists()]
    if existing and not (overwrite or skip_existing):
        names = ", ".join(task.output.name for task in existing[:3]) + (", ..." if len(existing) > 3 else "")
        raise ConfigError(
            f"{len(existing)} output(s) already exist in {out_path} ({names}); "
            "use --overwrite to replace them or --skip-existing to keep them and resume"
        )
    out_path.mkdir(parents=True, exist_ok=True)

    total = len(tasks)
    skipped = {task.stem for task in existing} if skip_existing else set()
    outcomes: dict[str, FileOutcome] = {
        task.stem: FileOutcome(task.stem, "skipped", task.mask, task.image, task.output)
        for task in tasks
        if task.stem in skipped
    }
    if progress is not None and skipped:
        progress(len(skipped), total)
    todo = [task for task in tasks if task.stem not in skipped]
    warm_up = (method, resolved, guide)
    for outcome in _run_tasks(_apply_one, todo, workers, progress, len(skipped), total, warm_up):
        outcomes[outcome.stem] = outcome

    config = {
        "masks_dir": str(masks_path),
        "images_dir": str(images_path),
        "out_dir": str(out_path),
        "method": method,
        "params": resolved,
        "guide": guide,
        "binary_input": bool(binary_input),
        "fmt": fmt,
        "overwrite": bool(overwrite),
        "skip_existing": bool(skip_existing),
        "jobs": workers,
        "shard": f"{shard_kn[0]}/{shard_kn[1]}" if shard_kn else None,
    }
    report = RunReport(
        outcomes=[outcomes[task.stem] for task in tasks],
        unmatched=unmatched,
        duplicates=duplicates,
        elapsed=time.perf_counter() - start,
        config=config,
    )
    if report_file is not None:
        report.write_json(report_file)
    return report


# --------------------------------------------------------------------------------------------------
# score_folder


def _parse_boxes(boxes: str | None) -> tuple[str, Path | None] | None:
    if boxes is None:
        return None
    if boxes == "masks":
        return "masks", None
    kind, sep, rest = str(boxes).partition(":")
    if sep and kind in ("voc", "coco") and rest:
        path = Path(rest)
        if kind == "voc" and not path.is_dir():
            raise ConfigError(f"boxes {boxes!r}: {path} is not a folder of VOC XML annotations")
        if kind == "coco" and not path.is_file():
            raise ConfigError(f"boxes {boxes!r}: {path} is not a COCO JSON file")
        return kind, path
    raise ConfigError(f"boxes must be 'masks', 'voc:DIR' or 'coco:FILE'; got {boxes!r}")


def _load_boxes(kind: str, path: Path | None) -> dict[str, np.ndarray] | None:
    if kind == "masks":
        return None
    from maskrefine import metrics

    try:
        if kind == "voc":
            return dict(metrics.read_voc_boxes(path))
        return dict(metrics.read_coco_boxes(path))
    except InputError as exc:
        raise ConfigError(f"cannot read ground-truth boxes: {exc}") from None


@dataclass(frozen=True, slots=True)
class _Loaded:
    stem: str
    pred_path: Path
    gt_path: Path
    pred: np.ndarray | None = None
    gt: np.ndarray | None = None
    failure: Failure | None = None


def _gt_for_evaluator(gt: np.ndarray) -> np.ndarray:
    if gt.dtype == np.uint16:  # the evaluator takes uint8 / bool / float GT
        return gt.astype(np.float32) * np.float32(1.0 / 65535.0)
    return gt


def _load_pair(stem: str, pred_path: Path, gt_path: Path) -> _Loaded:
    current = pred_path
    try:
        pred = read_mask_array(pred_path)
        current = gt_path
        gt = _gt_for_evaluator(read_mask_array(gt_path))
    except InputError as exc:
        return _Loaded(stem, pred_path, gt_path, failure=Failure(exc.path, exc.problem))
    except Exception as exc:  # noqa: BLE001 - one file must never end the run
        return _Loaded(
            stem, pred_path, gt_path, failure=Failure(current, f"unexpected {type(exc).__name__}: {exc}")
        )
    return _Loaded(stem, pred_path, gt_path, pred, gt)


def _split_summary(summary: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate scalar entries (for the JSON / table) from array-valued ones (curves, for plots)."""
    scalars: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    for key, value in summary.items():
        if key == "curves" and isinstance(value, Mapping):
            curves.update(value)
        elif (isinstance(value, np.ndarray) and value.ndim > 0) or isinstance(value, (list, tuple)):
            curves[key] = value
        else:
            scalars[key] = value.item() if isinstance(value, np.generic) else value
    return scalars, curves


def score_folder(
    pred_dir: str | Path,
    gt_dir: str | Path,
    *,
    preset: str = "tokencut",
    boxes: str | None = None,
    csv_path: str | Path | None = None,
    json_path: str | Path | None = None,
    plot_dir: str | Path | None = None,
    images_dir: str | Path | None = None,
    before_dir: str | Path | None = None,
    montage_count: int = 4,
    shard: tuple[int, int] | str | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
) -> ScoreReport:
    """Score the predictions of ``pred_dir`` against the ground truth of ``gt_dir``.

    Parameters
    ----------
    pred_dir : path-like
        Predicted masks (``.png`` 8/16-bit, ``.npy`` float in [0, 1]); read without rescaling
        (:func:`maskrefine.io.read_mask_array`) so 8-bit maps reach the evaluator unchanged. A
        prediction of another size than its GT is resized by the preset (never the GT).
    gt_dir : path-like
        Ground-truth masks, paired with the predictions by file stem.
    preset : str
        A key of :data:`maskrefine.metrics.PRESETS` (default ``"tokencut"``).
    boxes : {"masks", "voc:DIR", "coco:FILE"}, optional
        Also compute CorLoc on the predictions (default :class:`maskrefine.metrics.CorLocEvaluator`:
        largest box, 8-connectivity, prediction resized bilinearly to the GT size and binarised at 0.5),
        with GT boxes from the connected components of the GT masks, from VOC XML files, or from a COCO
        JSON file. A prediction whose stem has no annotation there is a failure (and is not scored).
    csv_path, json_path : path-like, optional
        Write the per-image CSV and the summary JSON (:meth:`ScoreReport.to_dict`) atomically.
    plot_dir : path-like, optional
        Write ``pr_curve.png`` and, when ``images_dir`` is given, ``montage.png`` (image | mask before,
        from ``before_dir`` if given | prediction | GT for the ``montage_count`` worst and best images by
        IoU). Needs matplotlib (``pip install 'maskrefine[plot]'``).
    images_dir, before_dir : path-like, optional
        Images and unrefined masks for the montage, found by stem (a missing one leaves its panel empty).
    montage_count : int
        Number of worst and of best images in the montage.
    shard : (int, int) or str, optional
        Score only shard k of n (1-based k; see the module notes).
    jobs : int, optional
        Threads reading files (None: one per core). The metrics are accumulated in stem order, so the
        result does not depend on ``jobs``.
    progress : callable, optional
        ``progress(done, total)`` after each pair.

    Returns
    -------
    ScoreReport
        Summary, per-image rows, failures, unmatched and duplicated names.

    Raises
    ------
    ConfigError
        Missing folders, unknown preset, bad ``boxes``/``shard``/``jobs``, an output path that is an input
        file (the COCO JSON) or lies inside an input folder (VOC annotations included), or two outputs on
        the same path; raised before any work.
    BackendUnavailableError
        ``plot_dir`` without matplotlib (raised before any work).
    """
    start = time.perf_counter()
    from maskrefine import metrics

    pred_path = _check_folder(pred_dir, "predictions")
    gt_path = _check_folder(gt_dir, "ground-truth")
    inputs: dict[str, Path] = {"predictions": pred_path, "ground-truth": gt_path}
    if images_dir is not None:
        inputs["images"] = _check_folder(images_dir, "images")
    if before_dir is not None:
        inputs["before"] = _check_folder(before_dir, "before-masks")
    if preset not in metrics.PRESETS:
        raise ConfigError(f"preset must be one of {', '.join(metrics.PRESETS)}; got {preset!r}")
    box_source = _parse_boxes(boxes)
    workers = _check_jobs(jobs)
    shard_kn = parse_shard(shard)
    if isinstance(montage_count, bool) or not isinstance(montage_count, int) or montage_count < 0:
        raise ConfigError(f"montage_count must be an integer >= 0; got {montage_count!r}")
    box_folders: dict[str, Path] = {}  # inputs too: never write into / over the GT boxes
    box_files: dict[str, Path] = {}
    if box_source is not None and box_source[1] is not None:
        (box_folders if box_source[0] == "voc" else box_files)[f"boxes ({box_source[0]})"] = box_source[1]
    plot_path = Path(plot_dir) if plot_dir is not None else None
    taken: dict[str, Path] = {}
    if plot_path is not None:
        taken["plot folder"] = plot_path.resolve()
        taken.update({f"plot {name}": (plot_path / name).resolve() for name in PLOT_FILES})
    for what, target in (("CSV file", csv_path), ("JSON file", json_path)):
        if target is not None:
            taken[what] = _check_output_file(Path(target), what, {**inputs, **box_folders}, box_files, taken)
    if plot_path is not None:
        from maskrefine.plots import require_matplotlib

        require_matplotlib()
        _check_output_folder(plot_path, {**inputs, **box_folders})
    gt_boxes = _load_boxes(*box_source) if box_source else None

    pairing = match_folders(pred_path, gt_path, MASK_EXTENSIONS, MASK_EXTENSIONS)
    unmatched, duplicates = _unmatched(pairing, "predictions", "gt", shard_kn)
    pairs = [pair for pair in pairing.pairs if _in_shard(pair.stem, shard_kn)]
    total = len(pairs)

    evaluator = metrics.Evaluator(preset=preset)
    corloc = metrics.CorLocEvaluator() if box_source else None
    failures: list[Failure] = []
    scored: dict[str, tuple[Path, Path]] = {}

    def load(pair: Any) -> _Loaded:
        return _load_pair(pair.stem, pair.first, pair.second)

    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 and total > 1 else None
    loaded_iter: Iterable[_Loaded] = (
        _bounded_map(pool, load, pairs, 4 * workers) if pool else map(load, pairs)
    )
    try:
        for done, item in enumerate(loaded_iter, start=1):
            if item.failure is not None:
                failures.append(item.failure)
            else:
                failure = _score_one(item, evaluator, corloc, gt_boxes, box_source)
                if failure is not None:
                    failures.append(failure)
                else:
                    scored[item.stem] = (item.pred_path, item.gt_path)
            if progress is not None:
                progress(done, total)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    rows = [dict(row) for row in evaluator.per_image()]
    summary, _ = _split_summary(evaluator.summary())
    curves = dict(evaluator.curves()) if scored else {}
    if corloc is not None:
        summary.update(_corloc_summary(corloc, rows))

    config = {
        "pred_dir": str(pred_path),
        "gt_dir": str(gt_path),
        "preset": preset,
        "boxes": boxes,
        "jobs": workers,
        "shard": f"{shard_kn[0]}/{shard_kn[1]}" if shard_kn else None,
    }
    report = ScoreReport(
        summary=summary,
        rows=rows,
        failures=failures,
        unmatched=unmatched,
        duplicates=duplicates,
        curves=curves,
        config=config,
    )
    if plot_path is not None:
        report.plots = _write_plots(report, plot_path, scored, images_dir, before_dir, montage_count)
    report.elapsed = time.perf_counter() - start
    if csv_path is not None:
        report.write_csv(csv_path)
    if json_path is not None:
        report.write_json(json_path)
    return report


def _bounded_map(pool: Executor, function: Callable[[Any], Any], items: Sequence[Any], ahead: int):
    """``pool.map`` in order, with at most ``ahead`` items loaded but not yet consumed (bounded memory)."""
    from collections import deque

    pending: deque[Future[Any]] = deque()
    iterator = iter(items)
    for item in iterator:
        pending.append(pool.submit(function, item))
        if len(pending) >= ahead:
            break
    while pending:
        result = pending.popleft().result()
        for item in iterator:
            pending.append(pool.submit(function, item))
            break
        yield result


def _score_one(
    item: _Loaded,
    evaluator: Any,
    corloc: Any,
    gt_boxes: Mapping[str, np.ndarray] | None,
    box_source: tuple[str, Path | None] | None,
) -> Failure | None:
    """Feed one loaded pair to the evaluators; return a Failure instead of raising.

    All or nothing: an image is either added to both evaluators (saliency and, with boxes, CorLoc) or
    to neither and reported as a failure, so ``count`` and ``corloc_count`` never include a failed
    file. The CorLoc step is therefore rehearsed first on a scratch evaluator with the same settings
    (its inputs, the GT boxes and the resized prediction, computed beforehand); only then are the real
    evaluators stepped: saliency (the one that may still refuse the pair) and, last, CorLoc, whose
    identical rehearsal already succeeded. Each evaluator's ``step`` records nothing when it raises.
    """
    assert item.pred is not None and item.gt is not None
    from maskrefine import metrics

    corloc_args: tuple[np.ndarray, np.ndarray] | None = None
    if corloc is not None and box_source is not None:
        if gt_boxes is not None and item.stem not in gt_boxes:
            return Failure(item.pred_path, f"no ground-truth boxes for {item.stem!r} in {box_source[1]}")
        try:
            boxes_here = metrics.boxes_from_mask(item.gt) if gt_boxes is None else gt_boxes[item.stem]
            corloc_args = (_corloc_mask(item.pred, item.gt.shape), boxes_here)
            _corloc_rehearsal(corloc).step(*corloc_args, name=item.stem, image_size=item.gt.shape)
        except Exception as exc:  # noqa: BLE001
            return Failure(item.pred_path, f"CorLoc failed: {type(exc).__name__}: {exc}")
    try:
        evaluator.step(item.pred, item.gt, name=item.stem)
    except InputError as exc:
        return Failure(exc.path, exc.problem)
    except ValueError as exc:
        return Failure(item.pred_path, f"cannot score against {item.gt_path.name}: {exc}")
    except Exception as exc:  # noqa: BLE001
        return Failure(item.pred_path, f"unexpected {type(exc).__name__}: {exc}")
    if corloc_args is not None:
        corloc.step(*corloc_args, name=item.stem, image_size=item.gt.shape)
    return None


def _corloc_rehearsal(corloc: Any) -> Any:
    """A fresh, empty evaluator of the same class and settings as ``corloc`` (for a trial step)."""
    return type(corloc)(
        corloc.selector,
        corloc.connectivity,
        corloc.scale,
        threshold=corloc.threshold,
        iou_threshold=corloc.iou_threshold,
    )


def _corloc_mask(pred: np.ndarray, gt_hw: tuple[int, ...]) -> np.ndarray:
    """The prediction as float [0, 1] at the GT size (bilinear, the refiners' rule) for box extraction."""
    from maskrefine.refiners import resize_mask

    if pred.dtype == np.uint8:
        unit = pred.astype(np.float32) * np.float32(1.0 / 255.0)
    elif pred.dtype == np.uint16:
        unit = pred.astype(np.float32) * np.float32(1.0 / 65535.0)
    else:
        unit = pred.astype(np.float32, copy=False)
    return resize_mask(unit, (int(gt_hw[0]), int(gt_hw[1])))


def _corloc_summary(corloc: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """CorLoc summary keys (all ``corloc*``) and ``corloc_correct`` / ``corloc_iou`` columns in ``rows``."""
    by_name = {row["name"]: row for row in corloc.per_image()}
    for row in rows:
        extra = by_name.get(row.get("name"))
        if extra is not None:
            row["corloc_correct"] = extra["correct"]
            row["corloc_iou"] = extra["iou"]
    return dict(corloc.summary())


def _find_by_stem(folder: Path | None, stem: str, extensions: tuple[str, ...]) -> Path | None:
    if folder is None:
        return None
    for ext in extensions:
        for candidate in (folder / f"{stem}{ext}", folder / f"{stem}{ext.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def _write_plots(
    report: ScoreReport,
    plot_dir: Path,
    scored: Mapping[str, tuple[Path, Path]],
    images_dir: str | Path | None,
    before_dir: str | Path | None,
    count: int,
) -> list[Path]:
    from maskrefine import plots

    plot_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    title = f"{Path(str(report.config.get('pred_dir', ''))).name} ({report.summary.get('preset', '')})"
    curve = plots.find_pr_curve(report.curves)
    if curve is not None:
        written.append(plots.plot_pr_curve(curve[0], curve[1], plot_dir / PLOT_FILES[0], title=title))
    if images_dir is None or count == 0 or not report.rows:
        return written
    name_key = "name"
    ranked = [
        (float(row["iou"]), str(row[name_key]))
        for row in report.rows
        if row.get(name_key) in scored and row.get("iou") is not None and np.isfinite(float(row["iou"]))
    ]
    ranked.sort()
    worst = ranked[:count]
    best = [item for item in ranked[::-1][:count] if item not in worst]
    entries: list[plots.MontageEntry] = []
    images_path = Path(images_dir)
    before_path = Path(before_dir) if before_dir is not None else None
    for label, group in (("worst", worst), ("best", best)):
        for iou, stem in group:
            pred_file, gt_file = scored[stem]
            image_file = _find_by_stem(images_path, stem, IMAGE_EXTENSIONS)
            before_file = _find_by_stem(before_path, stem, MASK_EXTENSIONS)
            try:
                image = read_image(image_file) if image_file is not None else None
                before = read_mask_array(before_file) if before_file is not None else None
                entries.append(
                    plots.MontageEntry(
                        stem=stem,
                        score=iou,
                        image=image,
                        prediction=read_mask_array(pred_file),
                        gt=read_mask_array(gt_file),
                        before=before,
                        label=label,
                    )
                )
            except InputError as exc:
                report.failures.append(Failure(exc.path, f"montage: {exc.problem}"))
    if entries:
        written.append(plots.plot_montage(entries, plot_dir / PLOT_FILES[1], title=title))
    return written
