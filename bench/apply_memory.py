"""Benchmark: memory of the ``maskrefine apply`` process per file (audit s13).

Builds N tiny pairs (a 32x32 PNG mask and a 32x32 PNG image, named ``000000.png``...) in a temporary
folder (never in the repository), then runs ``maskrefine apply --method auto --report r.json -q`` on them
in a fresh child process for each N and ``--jobs``. The child runs the command's entry point in-process
and prints its own peak resident set size at exit (``getrusage(RUSAGE_SELF).ru_maxrss``): the process the
user started, not its forked workers (each a separate process with its own figure). With ``--skip`` a
second run over the full output folder (``--skip-existing``: every file skipped) is measured too.

Reported per ``--jobs`` (and run kind): the peak RSS at each N and the **bytes per file**, the slope
between the smallest and the largest N (what one more file costs the process: its task, its outcome, its
share of the report; the fixed cost of imports and compiled kernels cancels out). Each RSS is the median
of ``--repeat`` runs.

Target: under 2 KiB per processed file (it was 6-8 KiB: every outcome with its own copy of auto's
decision, and the whole report held as dicts, JSON text and bytes at once; 1M files took 6-8 GiB).

Usage::

    python bench/apply_memory.py                      # N = 2000, 20000; jobs 1 and 2; with --skip
    python bench/apply_memory.py --quick              # N = 500, 5000, jobs 1 (smoke)
    python bench/apply_memory.py --n 1000 50000 --jobs 1 --no-report --json /tmp/m.json

The tiny pairs take ~1 ms each (reading, auto's decision: identity, writing): 20000 files are ~30 s per
run on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO_ROOT, default_json, ensure_malloc_env, metadata, print_table, save_json  # noqa: E402

TARGET_BYTES_PER_FILE = 2048  # a processed file, with --report

# The child: `maskrefine ...` in this process, then its own peak RSS (KiB on Linux) on stderr.
_PROBE = """
import atexit, resource, sys
atexit.register(
    lambda: print("MAXRSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
)
sys.argv = ["maskrefine", *sys.argv[1:]]
from maskrefine._entry import main
main()
"""


def make_pairs(root: Path, n: int) -> tuple[Path, Path]:
    """``root/masks`` and ``root/images``: ``n`` pairs of 32x32 PNG files (one random mask and image)."""
    import cv2
    import numpy as np

    masks, images = root / "masks", root / "images"
    masks.mkdir(parents=True)
    images.mkdir()
    rng = np.random.default_rng(0)
    mask = cv2.imencode(".png", rng.integers(0, 256, (32, 32), dtype=np.uint8))[1].tobytes()
    image = cv2.imencode(".png", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))[1].tobytes()
    for index in range(n):
        (masks / f"{index:06d}.png").write_bytes(mask)
        (images / f"{index:06d}.png").write_bytes(image)
    return masks, images


def peak_rss_kib(args: list[str]) -> tuple[int, float]:
    """Run ``maskrefine *args`` in a child; return its own peak RSS (KiB) and the wall time (s)."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    lines = [line for line in proc.stderr.splitlines() if line.startswith("MAXRSS_KB ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"maskrefine {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return int(lines[-1].split()[1]), wall


def main(argv: list[str] | None = None) -> int:
    ensure_malloc_env()
    parser = argparse.ArgumentParser(description="Peak RSS per file of maskrefine apply on tiny pairs.")
    parser.add_argument("--n", type=int, nargs="+", help="file counts (default 2000 20000; quick 500 5000)")
    parser.add_argument("--jobs", type=int, nargs="+", help="--jobs values (default 1 2; quick 1)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement (median)")
    parser.add_argument("--no-report", action="store_true", help="run without --report")
    parser.add_argument("--skip", action=argparse.BooleanOptionalAction, default=None,
                        help="also measure a --skip-existing rerun (default: yes; quick: no)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="smoke run: N = 500, 5000, jobs 1")
    parser.add_argument(
        "--json", default=None, help="output JSON (default bench/results/apply_memory--cpu.json)"
    )
    args = parser.parse_args(argv)
    counts = sorted(set(args.n or ([500, 5000] if args.quick else [2000, 20000])))
    jobs_values = args.jobs or ([1] if args.quick else [1, 2])
    skip = (not args.quick) if args.skip is None else args.skip
    if len(counts) < 2:
        parser.error("--n needs two counts at least (the slope between the smallest and the largest)")
    measured = (
        counts == [2000, 20000] and jobs_values == [1, 2] and not args.no_report and args.repeat == 1 and skip
    )
    json_path = args.json or default_json("apply_memory--cpu", quick=not measured)

    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="maskrefine-apply-memory-") as tmp:
        for n in counts:
            masks, images = make_pairs(Path(tmp) / f"pairs{n}", n)
            for jobs in jobs_values:
                out, report = Path(tmp) / f"out{n}-{jobs}", Path(tmp) / f"r{n}-{jobs}.json"
                command = ["apply", "--masks", str(masks), "--images", str(images), "--out", str(out)]
                command += ["--method", "auto", "--jobs", str(jobs), "-q"]
                command += [] if args.no_report else ["--report", str(report)]
                kinds = [("processed", [])] + ([("skipped", ["--skip-existing"])] if skip else [])
                for kind, flags in kinds:
                    samples = []
                    for _ in range(args.repeat):
                        if kind == "processed":
                            shutil.rmtree(out, ignore_errors=True)  # every file processed
                        samples.append(peak_rss_kib([*command, *flags]))
                        rss, wall = samples[-1]
                        print(f"  N={n} jobs={jobs} {kind}: {rss / 1024:.1f} MiB, {wall:.1f} s")
                    rows.append(
                        {
                            "kind": kind,
                            "jobs": jobs,
                            "n": n,
                            "peak_rss_mib": round(statistics.median(s[0] for s in samples) / 1024, 2),
                            "wall_s": round(statistics.median(s[1] for s in samples), 2),
                        }
                    )
    slopes = []
    for kind in dict.fromkeys(str(row["kind"]) for row in rows):
        for jobs in jobs_values:
            mine = {
                row["n"]: float(row["peak_rss_mib"])
                for row in rows
                if row["kind"] == kind and row["jobs"] == jobs
            }
            low, high = counts[0], counts[-1]
            per_file = (mine[high] - mine[low]) * 1024 * 1024 / (high - low)
            slopes.append(
                {"kind": kind, "jobs": jobs, "n": f"{low}-{high}", "bytes_per_file": round(per_file)}
            )
    targets = [
        {
            "name": f"processed file, jobs {s['jobs']}" + ("" if args.no_report else ", --report"),
            "value": s["bytes_per_file"],
            "target": f"< {TARGET_BYTES_PER_FILE}",
            "hit": int(s["bytes_per_file"]) < TARGET_BYTES_PER_FILE,
        }
        for s in slopes
        if s["kind"] == "processed"
    ]
    print()
    print_table(rows, ["kind", "jobs", "n", "peak_rss_mib", "wall_s"])
    print()
    print_table(slopes, ["kind", "jobs", "n", "bytes_per_file"])
    print()
    print_table(targets, ["name", "value", "target", "hit"])
    if not measured:
        print("note: not the measured setting (N 2000 and 20000, jobs 1 and 2, --report, --skip, 1 run)")
    payload = {
        "suite": "apply_memory",
        "metadata": metadata(),
        "method": {
            "measure": "peak RSS of the maskrefine process itself (getrusage RUSAGE_SELF ru_maxrss at exit), "
            "not of its forked workers; one fresh child per N, --jobs and run kind",
            "command": "maskrefine apply --method auto -q"
            + ("" if args.no_report else " --report r.json")
            + " (processed: into an empty --out; skipped: --skip-existing over the full --out)",
            "bytes_per_file": "(peak RSS at the largest N - at the smallest N) / (difference of N)",
            "inputs": "N pairs of 32x32 PNG files (one random mask and image, the same bytes for each "
            "stem), in a tempfile.TemporaryDirectory",
            "repeat": args.repeat,
        },
        "results": rows,
        "bytes_per_file": slopes,
        "targets": targets,
    }
    path = save_json(payload, json_path)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
