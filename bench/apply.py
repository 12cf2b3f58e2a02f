"""Benchmark of ``apply_folder`` (the ``maskrefine apply`` command) on real-size SOD pairs.

Builds N pairs (default 1000) in a temporary folder (never in the repository): the 300 SOD images
(481x321 / 321x481 JPEG) cycled, each cycle with a different coarse mask made from one of the bundled
saliency predictions (PiCANet, DSS, Amulet, RBD, BSCA, GS in turn), averaged over 16x16 patches on even
cycles and 8x8 patches on odd ones (patch grid ceil(H/p) x ceil(W/p), like an unsupervised ViT's output).

Measured (masks per second of wall time, end to end through ``apply_folder``):

* ``io``: a dedicated read + resize + PNG encode + atomic write loop (no filtering, no pipeline),
  in this process: the floor for any method;
* ``identity``: the pipeline with no filtering (read, resize, clip, write), jobs=1 and jobs=2;
* ``guided``: the pipeline with the guided filter (radius 9, eps 1e-3, mean guide), jobs=1 and jobs=2.

Targets: ``guided`` costs at most 25 % more time than ``identity`` at the same jobs, and jobs=2 is at
least 1.7x faster than jobs=1. Each configuration is warmed up on a few pairs first (numba JIT compiled
in this process, so the forked workers inherit it); then, given the cost of a 1000-file run, 3 rounds
(not 7, unlike the other suites): one run of every configuration per round, round-robin with the order
reversed every other round, so that a drift of machine speed hits all configurations alike. Reported: the
median per configuration with min and max, and the ``paired_*`` ratios, the median over rounds of each
round's ratio (runs adjacent in time).

Usage::

    python bench/apply.py [--json bench/results/apply--cpu.json] [--quick] [--pairs N] [--repeat R]

Skips with a printed message (exit 0) when ../shared/data is absent.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    default_json,
    ensure_malloc_env,
    metadata,
    print_table,
    save_json,
    sod_dir,
)

PREDICTIONS = ("PiCANet", "DSS", "Amulet", "RBD_frankLeo123", "BSCA_frankLeo123", "GS_frankLeo123")
GUIDED_COST_TARGET = 1.25  # guided time / identity time, same jobs
JOBS_SPEEDUP_TARGET = 1.7  # jobs=1 time / jobs=2 time


def find_shared() -> Path | None:
    """The shared data folder (holding ``sod/images`` and ``sod/predictions``), or None."""
    sod = sod_dir()
    return sod.parent if sod is not None and (sod / "predictions").is_dir() else None


def patch_mean(saliency, patch: int):
    import numpy as np

    h, w = saliency.shape
    gh, gw = -(-h // patch), -(-w // patch)
    padded = np.full((gh * patch, gw * patch), np.nan, dtype=np.float64)
    padded[:h, :w] = saliency
    return np.nanmean(padded.reshape(gh, patch, gw, patch), axis=(1, 3))


def build_pairs(sod: Path, root: Path, count: int) -> tuple[Path, Path, dict[str, object]]:
    """Write ``count`` (image, coarse mask) pairs under ``root``; return the folders and a description."""
    import cv2
    import numpy as np

    images_dir, masks_dir = root / "images", root / "masks"
    images_dir.mkdir()
    masks_dir.mkdir()
    stems = sorted(p.stem for p in (sod / "images").glob("*.jpg"))
    methods = [m for m in PREDICTIONS if (sod / "predictions" / m).is_dir()]
    if not stems or not methods:
        raise SystemExit(f"no SOD images or predictions under {sod}")
    for i in range(count):
        stem = stems[i % len(stems)]
        cycle = i // len(stems)
        method = methods[cycle % len(methods)]
        patch = 16 if cycle % 2 == 0 else 8
        name = f"{i:05d}"
        shutil.copyfile(sod / "images" / f"{stem}.jpg", images_dir / f"{name}.jpg")
        saliency = cv2.imread(str(sod / "predictions" / method / f"{stem}.png"), cv2.IMREAD_GRAYSCALE)
        coarse = np.rint(patch_mean(saliency.astype(np.float64), patch)).astype(np.uint8)
        assert cv2.imwrite(str(masks_dir / f"{name}.png"), coarse)
    description = {
        "pairs": count,
        "images": f"SOD {len(stems)} JPEGs (481x321 / 321x481) cycled",
        "masks": f"patch-mean of {', '.join(methods)} predictions (one per cycle), patch 16 / 8 alternating",
    }
    return masks_dir, images_dir, description


def io_loop(masks_dir: Path, images_dir: Path, out_dir: Path) -> None:
    """Read + resize + encode + atomic write, nothing else: the cost floor of any method."""
    import cv2

    from maskrefine.io import read_image, read_mask, write_mask

    out_dir.mkdir(exist_ok=True)
    for mask_path in sorted(masks_dir.iterdir()):
        image = read_image(images_dir / f"{mask_path.stem}.jpg")
        mask = read_mask(mask_path)
        full = cv2.resize(mask, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
        write_mask(out_dir / f"{mask_path.stem}.png", full)


def main(argv: list[str] | None = None) -> int:
    ensure_malloc_env()
    parser = argparse.ArgumentParser(description="Benchmark maskrefine apply (apply_folder) on SOD pairs.")
    parser.add_argument(
        "--json", default=None, help="output JSON path (default bench/results/apply--cpu[-quick].json)"
    )
    parser.add_argument("--quick", action="store_true", help="100 pairs, 1 repeat (a smoke run)")
    parser.add_argument(
        "--pairs", type=int, default=None, help="number of pairs (default 1000; 100 with --quick)"
    )
    parser.add_argument("--repeat", type=int, default=None, help="timed runs per configuration (default 3)")
    args = parser.parse_args(argv)
    args.json = args.json or str(default_json("apply--cpu", args.quick))
    pairs = args.pairs or (100 if args.quick else 1000)
    repeat = args.repeat or (1 if args.quick else 3)

    shared = find_shared()
    if shared is None:
        print("SKIP bench/apply.py: shared data not found (../shared/data/sod; set MASKREFINE_SHARED_DATA)")
        return 0

    from maskrefine.pipeline import apply_folder

    load_start = os.getloadavg()
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="maskrefine-bench-apply-") as tmp:
        root = Path(tmp)
        print(f"building {pairs} pairs in {root} ...", flush=True)
        masks_dir, images_dir, inputs = build_pairs(shared / "sod", root, pairs)

        # Warm-up on a few pairs: numba compiles in this process, so forked workers inherit the kernels.
        warm_masks, warm_images = root / "warm_masks", root / "warm_images"
        warm_masks.mkdir()
        warm_images.mkdir()
        for path in sorted(masks_dir.iterdir())[:8]:
            shutil.copyfile(path, warm_masks / path.name)
            shutil.copyfile(images_dir / f"{path.stem}.jpg", warm_images / f"{path.stem}.jpg")

        # Configurations: (name, method, jobs, warm-up, run). They are timed round-robin (one run of each per
        # round, the order reversed every other round), so a change of machine speed during the benchmark
        # hits all of them alike; ratios are also given per round (adjacent runs) and their median taken.
        out = root / "out"
        configs: list[tuple[str, str | None, int, Callable[[], None], Callable[[], None]]] = [
            (
                "io",
                None,
                1,
                lambda: io_loop(warm_masks, warm_images, root / "warm_out"),
                lambda: io_loop(masks_dir, images_dir, out),
            )
        ]
        for method in ("identity", "guided"):
            for jobs in (1, 2):

                def warm(method: str = method, jobs: int = jobs) -> None:
                    apply_folder(
                        warm_masks, warm_images, root / "warm_out", method=method, jobs=jobs, overwrite=True
                    )

                def run(method: str = method, jobs: int = jobs) -> None:
                    report = apply_folder(
                        masks_dir, images_dir, out, method=method, jobs=jobs, overwrite=True
                    )
                    if not report.ok or report.counts["written"] != pairs:
                        raise SystemExit(f"bench run failed: {report.counts}")

                configs.append((method, method, jobs, warm, run))
        for _, _, _, warm_fn, _ in configs:
            warm_fn()
        wall: dict[tuple[str, int], list[float]] = {(c[0], c[2]): [] for c in configs}
        cpu: dict[tuple[str, int], list[float]] = {(c[0], c[2]): [] for c in configs}
        for round_index in range(repeat):
            order = configs if round_index % 2 == 0 else configs[::-1]
            for name, _, jobs, _, run_fn in order:
                before = os.times()
                start = time.perf_counter()
                run_fn()
                wall[(name, jobs)].append(time.perf_counter() - start)
                after = os.times()  # children: the pool's workers, joined when the run ends
                cpu[(name, jobs)].append(
                    (after.user - before.user)
                    + (after.system - before.system)
                    + (after.children_user - before.children_user)
                    + (after.children_system - before.children_system)
                )
            print(
                f"  round {round_index + 1}/{repeat}: "
                + ", ".join(f"{n} j{j} {wall[(n, j)][-1]:.2f} s" for n, _, j, _, _ in configs),
                flush=True,
            )
        for name, method, jobs, _, _ in configs:
            samples = wall[(name, jobs)]
            results.append(
                {
                    "name": name,
                    "method": method,
                    "jobs": jobs,
                    "pairs": pairs,
                    "median_s": round(statistics.median(samples), 4),
                    "min_s": round(min(samples), 4),
                    "max_s": round(max(samples), 4),
                    "repeat": len(samples),
                    "samples_s": [round(x, 4) for x in samples],
                    "masks_per_s": round(pairs / statistics.median(samples), 2),
                    "cpu_s": round(statistics.median(cpu[(name, jobs)]), 4),
                }
            )

    by = {(r["name"], r["jobs"]): float(r["median_s"]) for r in results}
    ratios = {
        "guided_over_identity_jobs1": by[("guided", 1)] / by[("identity", 1)],
        "guided_over_identity_jobs2": by[("guided", 2)] / by[("identity", 2)],
        "identity_over_io_jobs1": by[("identity", 1)] / by[("io", 1)],
        "speedup_jobs2_identity": by[("identity", 1)] / by[("identity", 2)],
        "speedup_jobs2_guided": by[("guided", 1)] / by[("guided", 2)],
    }

    # The same ratios round by round (runs adjacent in time), then their median: robust to a machine whose
    # speed drifts during the benchmark.
    def per_round(num: tuple[str, int], den: tuple[str, int]) -> float:
        return statistics.median(a / b for a, b in zip(wall[num], wall[den], strict=True))

    ratios["paired_guided_over_identity_jobs1"] = per_round(("guided", 1), ("identity", 1))
    ratios["paired_guided_over_identity_jobs2"] = per_round(("guided", 2), ("identity", 2))
    ratios["paired_speedup_jobs2_guided"] = per_round(("guided", 1), ("guided", 2))
    # CPU seconds (this process + its workers) barely depend on other load on a shared machine, so the
    # method-cost ratio is also given in CPU time; the jobs speed-up can only be judged in wall time.
    cpu_by = {(r["name"], r["jobs"]): float(r["cpu_s"]) for r in results}
    ratios["cpu_guided_over_identity_jobs1"] = cpu_by[("guided", 1)] / cpu_by[("identity", 1)]
    ratios["cpu_guided_over_identity_jobs2"] = cpu_by[("guided", 2)] / cpu_by[("identity", 2)]
    targets = []
    cost_keys = (
        "guided_over_identity_jobs1",
        "guided_over_identity_jobs2",
        "paired_guided_over_identity_jobs1",
        "paired_guided_over_identity_jobs2",
        "cpu_guided_over_identity_jobs1",
    )
    for key in cost_keys:
        targets.append(
            {
                "name": key,
                "value": ratios[key],
                "target": f"<= {GUIDED_COST_TARGET}",
                "hit": ratios[key] <= GUIDED_COST_TARGET,
            }
        )
    for key in ("speedup_jobs2_identity", "speedup_jobs2_guided", "paired_speedup_jobs2_guided"):
        targets.append(
            {
                "name": key,
                "value": ratios[key],
                "target": f">= {JOBS_SPEEDUP_TARGET}",
                "hit": ratios[key] >= JOBS_SPEEDUP_TARGET,
            }
        )

    for row in results:
        row["vs_io"] = round(float(row["median_s"]) / by[("io", 1)], 3)
    print()
    print_table(
        results, ["name", "jobs", "pairs", "median_s", "min_s", "max_s", "masks_per_s", "cpu_s", "vs_io"]
    )
    print()
    print_table([{**t, "value": round(t["value"], 3)} for t in targets], ["name", "value", "target", "hit"])
    if args.quick or pairs != 1000 or repeat != 3:
        print(f"note: {pairs} pairs, {repeat} round(s): not the measured setting (1000 pairs, 3 rounds)")

    payload = {
        "suite": "apply",
        "metadata": metadata(),
        "method": {
            "timer": f"1 warm-up on 8 pairs per configuration, then {repeat} rounds, each one full run "
            "of every configuration (order reversed every other round); median per configuration "
            "(min/max and samples kept), paired_* ratios = median over rounds of the per-round ratio; "
            "cpu_s = median user+sys seconds of this process and its pool workers",
            "params": "guided: radius 9, eps 1e-3, guide mean; output png8; overwrite=True into one folder",
            "pairs_root": "tempfile.TemporaryDirectory (never the repository)",
        },
        "inputs": inputs,
        # The machine may be shared: the 1-minute load average before and after says how busy it was.
        "loadavg_1m": {"start": round(load_start[0], 2), "end": round(os.getloadavg()[0], 2)},
        "results": results,
        "ratios": {k: round(v, 4) for k, v in ratios.items()},
        "targets": [{**t, "value": round(t["value"], 4)} for t in targets],
    }
    path = save_json(payload, args.json)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
