"""Shared benchmark plumbing: timer, run metadata, JSON output, ratio tables.

Contract (see bench/README.md): warm-up, then the median of N runs with min/max; every peer in
the same process under the same allocator settings; metadata in every JSON.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

# 1/5/15-min load average when this module was imported, i.e. when the script started (after the malloc
# re-exec): whether other jobs shared the cores while the figures were taken
_LOAD_AT_START = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def sod_dir() -> Path | None:
    """The SOD data (``sod/`` with ``images/``): ``$MASKREFINE_SHARED_DATA/sod``, else ``../shared/data/sod``.

    The one rule every bench script follows (the tests read the same variable). None when absent.
    """
    candidates = []
    if os.environ.get("MASKREFINE_SHARED_DATA"):
        candidates.append(Path(os.environ["MASKREFINE_SHARED_DATA"]) / "sod")
    candidates += [REPO_ROOT.parent / "shared" / "data" / "sod", REPO_ROOT / "shared" / "data" / "sod"]
    for candidate in candidates:
        if (candidate / "images").is_dir():
            return candidate
    return None


def default_json(stem: str, quick: bool) -> Path:
    """``bench/results/<stem>.json``, or ``<stem>-quick.json`` for a smoke run.

    A quick run never replaces the full run's JSON that ``bench/README.md`` cites.
    """
    return RESULTS_DIR / f"{stem}{'-quick' if quick else ''}.json"


# peer note 8: small-image timings depend ~2x on glibc's malloc state. Every bench script
# re-executes itself once with these set, so every peer runs under the same allocator settings.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "67108864", "MALLOC_TRIM_THRESHOLD_": "268435456"}


def ensure_malloc_env() -> None:
    """Re-exec the current script with the fixed glibc malloc thresholds if they are not set."""
    if all(os.environ.get(k) == v for k, v in MALLOC_ENV.items()):
        return
    env = dict(os.environ, **MALLOC_ENV)
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def time_call(fn: Callable[[], object], *, repeat: int = 7, warmup: int = 1) -> dict[str, float]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeat`` times; return median/min/max seconds."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    samples.sort()
    n = len(samples)
    median = samples[n // 2] if n % 2 else 0.5 * (samples[n // 2 - 1] + samples[n // 2])
    return {"median_s": median, "min_s": samples[0], "max_s": samples[-1], "repeat": n}


def git_sha() -> str:
    # a copy of the tree without .git (e.g. sent to a GPU machine) names its commit in BENCH_GIT_SHA
    if os.environ.get("BENCH_GIT_SHA"):
        return os.environ["BENCH_GIT_SHA"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=REPO_ROOT, capture_output=True, text=True
        )
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _version(module_name: str) -> str | None:
    try:
        module = __import__(module_name)
    except Exception:  # noqa: BLE001 - a missing or broken peer is simply not reported
        return None
    return str(getattr(module, "__version__", "unknown"))


def metadata(extra_modules: tuple[str, ...] = ()) -> dict[str, object]:
    """Machine, versions, threads and environment of this run."""
    modules = ("numpy", "numba", "scipy", "cv2", "maskrefine", *extra_modules)
    threads = {}
    try:
        import numba

        threads["numba"] = numba.get_num_threads()
    except Exception:  # noqa: BLE001
        pass
    try:
        import cv2

        threads["cv2"] = cv2.getNumThreads()
    except Exception:  # noqa: BLE001
        pass
    if "torch" in sys.modules:
        threads["torch"] = sys.modules["torch"].get_num_threads()
    return {
        "git_sha": git_sha(),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "versions": {m: _version(m) for m in modules},
        "threads": threads,
        "env": {k: os.environ.get(k) for k in (*MALLOC_ENV, "OMP_NUM_THREADS", "NUMBA_NUM_THREADS")},
        # 1/5/15-min load average at the start of the run and when this metadata was taken (its end)
        "load_average": _LOAD_AT_START,
        "load_average_end": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }


def save_json(payload: dict[str, object], path: str | Path) -> Path:
    """Write ``payload`` as indented JSON atomically; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
    return path


def print_table(rows: list[dict[str, object]], columns: list[str]) -> None:
    """Print ``rows`` as a fixed-width text table with the given column order."""
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns} if rows else {}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    print("  ".join("-" * widths[c] for c in columns))
    for row in rows:
        print("  ".join(_fmt(row.get(c)).ljust(widths[c]) for c in columns))


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)
