"""Benchmark: the CLI's fixed malloc thresholds against glibc's own, on real-size SOD files.

Usage::

    python bench/allocator.py                # 1000 pairs, 3 rounds -> bench/results/allocator--cpu.json
    python bench/allocator.py --quick        # 100 pairs, 1 round (a smoke run)

Every job command of ``maskrefine`` (``apply``, ``score``, ``tune``, ``train``, ``predict``) fixes
glibc's mmap and trim thresholds at start (:mod:`maskrefine._allocator`). This script runs the real
command in a child process (``python -m maskrefine``; children are reaped with ``os.wait4``, so each row
has its own CPU time, minor page faults and peak RSS) in two variants:

* ``pinned``: the command as shipped;
* ``glibc``: the same command with the pinning turned off (glibc's default, dynamic thresholds).

Neither child inherits any ``MALLOC_*`` or ``GLIBC_TUNABLES`` setting (unlike the other bench scripts,
this one does not re-execute itself with fixed thresholds: they are what it measures). Commands: ``apply``
with ``--method identity``, the default ``auto`` and ``--method guided`` (``--jobs 1``; guided also at
``--jobs 2``) on N pairs built as in ``bench/apply.py``, and ``score`` (default preset) of the bundled DSS
predictions against the 300 SOD ground truths. One untimed run of each command first (numba's on-disk
cache filled), then rounds in which every (command, variant) runs once, the order reversed every other
round. Reported: median wall, CPU, page faults and peak RSS per row, and the ratio glibc / pinned.

Skips with a printed message (exit 0) when ../shared/data is absent.
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

from _common import default_json, metadata, print_table, save_json, sod_dir  # noqa: E402

# The child: the console command, optionally with the pinning turned off before it runs.
_CHILD = """
import sys
if sys.argv[1] == "glibc":
    import maskrefine._allocator as allocator
    allocator.pin_malloc_thresholds = lambda: False
sys.argv = ["maskrefine", *sys.argv[2:]]
from maskrefine._entry import main
main()
"""
VARIANTS = ("pinned", "glibc")


def _child_env() -> dict[str, str]:
    drop = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")
    return {k: v for k, v in os.environ.items() if k not in drop}


def run_child(variant: str, args: list[str], out: Path | None) -> dict[str, float]:
    """Run one command; return wall s, CPU s, minor faults and peak RSS (MiB) of the child."""
    if out is not None:
        shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, variant, *args],
        env=_child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    stderr = child.stderr.read() if child.stderr is not None else b""
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{variant} {' '.join(args)} failed ({child.returncode}): {stderr.decode()[-2000:]}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "sys_s": usage.ru_stime,
        "minor_faults": float(usage.ru_minflt),
        "max_rss_mib": usage.ru_maxrss / 1024.0,  # Linux reports KiB
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CLI with fixed malloc thresholds vs glibc's own.")
    parser.add_argument(
        "--json", default=None, help="output JSON (default bench/results/allocator--cpu.json)"
    )
    parser.add_argument("--quick", action="store_true", help="100 pairs, 1 round (a smoke run)")
    parser.add_argument(
        "--pairs", type=int, default=None, help="apply pairs (default 1000; 100 with --quick)"
    )
    parser.add_argument("--repeat", type=int, default=None, help="rounds (default 3; 1 with --quick)")
    args = parser.parse_args(argv)
    json_path = args.json or str(default_json("allocator--cpu", args.quick))
    pairs = args.pairs or (100 if args.quick else 1000)
    repeat = args.repeat or (1 if args.quick else 3)
    sod = sod_dir()
    if sod is None or not (sod / "predictions" / "DSS").is_dir() or not (sod / "masks").is_dir():
        print(
            "SKIP bench/allocator.py: shared data not found (../shared/data/sod; set MASKREFINE_SHARED_DATA)"
        )
        return 0
    from apply import build_pairs

    with tempfile.TemporaryDirectory(prefix="maskrefine-bench-allocator-") as tmp:
        root = Path(tmp)
        print(f"building {pairs} pairs in {root} ...", flush=True)
        masks_dir, images_dir, inputs = build_pairs(sod, root, pairs)
        out = root / "out"
        apply = ["apply", "--masks", str(masks_dir), "--images", str(images_dir), "--out", str(out), "-q"]
        commands: list[tuple[str, list[str], Path | None]] = [
            ("apply identity j1", [*apply, "--method", "identity", "--jobs", "1"], out),
            ("apply auto j1", [*apply, "--jobs", "1"], out),
            ("apply guided j1", [*apply, "--method", "guided", "--jobs", "1"], out),
            ("apply guided j2", [*apply, "--method", "guided", "--jobs", "2"], out),
            (
                "score DSS",
                ["score", "--pred", str(sod / "predictions" / "DSS"), "--gt", str(sod / "masks")],
                None,
            ),
        ]
        for _name, command, target in commands:  # fills numba's cache: no row times a compile
            run_child("pinned", command, target)
        samples: dict[tuple[str, str], list[dict[str, float]]] = {
            (name, v): [] for name, _, _ in commands for v in VARIANTS
        }
        runs = [(name, command, target, v) for name, command, target in commands for v in VARIANTS]
        for index in range(repeat):
            for name, command, target, variant in runs if index % 2 == 0 else runs[::-1]:
                samples[(name, variant)].append(run_child(variant, command, target))
            print(f"  round {index + 1}/{repeat} done", flush=True)

    rows = []
    for name, _, _ in commands:
        for variant in VARIANTS:
            got = samples[(name, variant)]
            rows.append(
                {
                    "command": name,
                    "variant": variant,
                    "median_wall_s": round(statistics.median(s["wall_s"] for s in got), 3),
                    "min_wall_s": round(min(s["wall_s"] for s in got), 3),
                    "max_wall_s": round(max(s["wall_s"] for s in got), 3),
                    "median_cpu_s": round(statistics.median(s["cpu_s"] for s in got), 3),
                    "median_sys_s": round(statistics.median(s["sys_s"] for s in got), 3),
                    "median_minor_faults": int(statistics.median(s["minor_faults"] for s in got)),
                    "median_max_rss_mib": round(statistics.median(s["max_rss_mib"] for s in got), 1),
                }
            )
    by = {(r["command"], r["variant"]): r for r in rows}
    ratios = [
        {
            "command": name,
            "wall_glibc_over_pinned": round(
                float(by[(name, "glibc")]["median_wall_s"]) / float(by[(name, "pinned")]["median_wall_s"]), 3
            ),
            "cpu_glibc_over_pinned": round(
                float(by[(name, "glibc")]["median_cpu_s"]) / float(by[(name, "pinned")]["median_cpu_s"]), 3
            ),
            "rss_pinned_minus_glibc_mib": round(
                float(by[(name, "pinned")]["median_max_rss_mib"])
                - float(by[(name, "glibc")]["median_max_rss_mib"]),
                1,
            ),
        }
        for name, _, _ in commands
    ]
    print()
    print_table(rows, list(rows[0]))
    print()
    print_table(ratios, list(ratios[0]))
    payload = {
        "suite": "allocator",
        "metadata": metadata(),
        "inputs": {**inputs, "score": "SOD DSS predictions vs 300 GT masks", "rounds": repeat},
        "results": rows,
        "ratios": ratios,
    }
    print(f"\nwrote {save_json(payload, json_path)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
