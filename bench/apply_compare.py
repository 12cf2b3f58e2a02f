"""Old vs new commit of ``maskrefine apply`` on the same pairs, in the same run (issue 9: the folder job
must be no slower after the trust changes).

Builds N SOD pairs once (as ``bench/apply.py`` does), then runs the real CLI (``python -m maskrefine.cli
apply``, a fresh process each time, into a fresh output folder, so the new no-clobber publishing is the
path measured) with ``PYTHONPATH`` set to each checkout in turn, alternating old and new within each
round so that load changes on the shared machine hit both alike. One untimed run per checkout and
configuration first (numba's on-disk cache then holds both versions' kernels). Reports the median wall
time per checkout and configuration and the ratio new / old (below 1: new is faster), plus CPU seconds
(process + workers), which depend far less on other load.

Usage::

    git worktree add /tmp/old <old-commit>
    python bench/apply_compare.py --old /tmp/old [--new .] [--pairs 200] [--rounds 3] [--json PATH]

Skips with a printed message (exit 0) when ../shared/data is absent.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO_ROOT, RESULTS_DIR, ensure_malloc_env, metadata, print_table, save_json  # noqa: E402
from apply import build_pairs, find_shared  # noqa: E402

CONFIGS = (("guided", 1), ("guided", 2), ("identity", 2))


def git_head(checkout: Path) -> str:
    proc = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "-C", str(checkout), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return proc.stdout.strip() + ("-dirty" if dirty else "")


def run_cli(
    checkout: Path, masks: Path, images: Path, out: Path, method: str, jobs: int
) -> tuple[float, float]:
    """Wall and CPU seconds (children) of one ``maskrefine apply`` into a fresh ``out``."""
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, PYTHONPATH=str(checkout))
    command = [
        sys.executable,
        "-m",
        "maskrefine.cli",
        "apply",
        "--masks",
        str(masks),
        "--images",
        str(images),
        "--out",
        str(out),
        "--method",
        method,
        "--jobs",
        str(jobs),
        "--quiet",
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, text=True, cwd=out.parent)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{checkout}: apply failed ({proc.returncode}): {proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    ensure_malloc_env()
    parser = argparse.ArgumentParser(description="maskrefine apply: old vs new checkout, same run.")
    parser.add_argument("--old", required=True, type=Path, help="checkout of the old commit")
    parser.add_argument("--new", default=REPO_ROOT, type=Path, help="checkout of the new commit (this one)")
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default=str(RESULTS_DIR / "apply-old-vs-new--cpu.json"))
    parser.add_argument(
        "--only", nargs="*", default=None, metavar="METHOD:JOBS", help="configurations (default: all)"
    )
    args = parser.parse_args(argv)
    configs = CONFIGS
    if args.only:
        configs = tuple((item.split(":")[0], int(item.split(":")[1])) for item in args.only)
    shared = find_shared()
    if shared is None:
        print("SKIP bench/apply_compare.py: shared data not found (../shared/data/sod)")
        return 0
    checkouts = {"old": args.old.resolve(), "new": args.new.resolve()}
    heads = {name: git_head(path) for name, path in checkouts.items()}
    load_start = os.getloadavg()
    times: dict[tuple[str, str, int], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="maskrefine-bench-compare-") as tmp:
        root = Path(tmp)
        print(f"building {args.pairs} pairs in {root} ...", flush=True)
        masks, images, inputs = build_pairs(shared / "sod", root, args.pairs)
        out = root / "out"
        for checkout in checkouts.values():  # warm numba's cache for both versions
            for method, jobs in configs:
                run_cli(checkout, masks, images, out, method, jobs)
        for round_index in range(args.rounds):
            order = list(checkouts.items())
            if round_index % 2:
                order.reverse()
            for method, jobs in configs:
                for name, checkout in order:
                    wall, cpu = run_cli(checkout, masks, images, out, method, jobs)
                    times.setdefault((name, method, jobs), []).append((wall, cpu))
                    print(
                        f"  round {round_index + 1} {name:<3} {method:<8} jobs={jobs}"
                        f"  {wall:6.2f} s  cpu {cpu:6.2f} s",
                        flush=True,
                    )
    rows = []
    for method, jobs in configs:
        medians = {}
        for name in checkouts:
            walls = [w for w, _ in times[(name, method, jobs)]]
            cpus = [c for _, c in times[(name, method, jobs)]]
            medians[name] = (statistics.median(walls), statistics.median(cpus))
            rows.append(
                {
                    "checkout": f"{name} ({heads[name]})",
                    "method": method,
                    "jobs": jobs,
                    "pairs": args.pairs,
                    "median_s": round(medians[name][0], 3),
                    "min_s": round(min(walls), 3),
                    "max_s": round(max(walls), 3),
                    "masks_per_s": round(args.pairs / medians[name][0], 1),
                    "cpu_s": round(medians[name][1], 3),
                }
            )
        rows.append(
            {
                "checkout": "ratio new/old",
                "method": method,
                "jobs": jobs,
                "pairs": args.pairs,
                "median_s": round(medians["new"][0] / medians["old"][0], 3),
                "min_s": "",
                "max_s": "",
                "masks_per_s": "",
                "cpu_s": round(medians["new"][1] / medians["old"][1], 3),
            }
        )
    print()
    print_table(
        rows, ["checkout", "method", "jobs", "pairs", "median_s", "min_s", "max_s", "masks_per_s", "cpu_s"]
    )
    payload = {
        "suite": "apply-old-vs-new",
        "metadata": {**metadata(), "load_avg_start": load_start, "load_avg_end": os.getloadavg()},
        "method": {
            "timer": f"CLI subprocess wall time, fresh output folder; 1 untimed warm run per checkout and "
            f"configuration, then {args.rounds} rounds alternating old/new; median",
            "inputs": inputs,
            "checkouts": heads,
        },
        "results": rows,
    }
    save_json(payload, Path(args.json))
    print(f"\nsaved {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
