"""Benchmark: maskrefine's `pysod` Evaluator vs PySODMetrics on F + MAE + S + E (same inputs, same run).

Usage::

    python bench/metrics.py [--quick] [--json PATH] [--repeat N]

Suites: 1000 synthetic pairs at 320x320 (noisy soft ellipse vs ellipse GT, seed 0), and the 300 real
pairs of ../shared/data/sod for each bundled method (skipped with a message when the data is absent).
Both sides get the same uint8 arrays held in memory (no I/O timed). maskrefine runs with
``weighted_f=False`` (PySOD's four metrics only). Values are compared after each timed suite.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    default_json,
    ensure_malloc_env,
    metadata,
    print_table,
    save_json,
    sod_dir,
    time_call,
)

KEYS = (
    "max_fbeta",
    "mean_fbeta",
    "adaptive_fbeta",
    "mae",
    "s_measure",
    "max_e_measure",
    "mean_e_measure",
    "adaptive_e_measure",
)


def synthetic_pairs(n: int, size: int = 320, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    pairs = []
    for _ in range(n):
        cy, cx = rng.uniform(0.3 * size, 0.7 * size, 2)
        ay, ax = rng.uniform(0.1 * size, 0.3 * size, 2)
        gt = ((((yy - cy) / ay) ** 2 + ((xx - cx) / ax) ** 2) < 1).astype(np.uint8) * 255
        dy, dx = rng.normal(0, 0.05 * size, 2)
        soft = 255 * np.exp(-(((yy - cy - dy) / ay) ** 2 + ((xx - cx - dx) / ax) ** 2))
        pred = np.clip(soft + rng.normal(0, 25, (size, size)), 0, 255).astype(np.uint8)
        pairs.append((pred, gt))
    return pairs


def sod_pairs(method: str) -> list[tuple[np.ndarray, np.ndarray]] | None:
    import cv2

    root = sod_dir()
    if root is None:
        return None
    pred_dir = root / "predictions" / method
    if not pred_dir.is_dir():
        return None
    pairs = []
    for gt_path in sorted((root / "masks").glob("*.png")):
        pred = cv2.imread(str(pred_dir / gt_path.name), cv2.IMREAD_GRAYSCALE)
        gt = cv2.imread(str(gt_path), cv2.IMREAD_GRAYSCALE)
        if pred is not None and gt is not None:
            pairs.append((pred, gt))
    return pairs


def run_maskrefine(pairs) -> dict[str, float]:
    from maskrefine.metrics import Evaluator

    ev = Evaluator("pysod", weighted_f=False)
    for pred, gt in pairs:
        ev.step(pred, gt)
    s = ev.summary()
    return {k: s[k] for k in KEYS}


def run_pysod(pairs) -> dict[str, float]:
    import py_sod_metrics as psm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fm = psm.Fmeasure()
    mae, sm, em = psm.MAE(), psm.Smeasure(), psm.Emeasure()
    for pred, gt in pairs:
        fm.step(pred, gt)
        mae.step(pred, gt)
        sm.step(pred, gt)
        em.step(pred, gt)
    f = fm.get_results()["fm"]
    e = em.get_results()["em"]
    return {
        "max_fbeta": float(f["curve"].max()),
        "mean_fbeta": float(f["curve"].mean()),
        "adaptive_fbeta": float(f["adp"]),
        "mae": float(mae.get_results()["mae"]),
        "s_measure": float(sm.get_results()["sm"]),
        "max_e_measure": float(e["curve"].max()),
        "mean_e_measure": float(e["curve"].mean()),
        "adaptive_e_measure": float(e["adp"]),
    }


def bench_suite(name: str, pairs, repeat: int, have_pysod: bool) -> dict[str, object]:
    n = len(pairs)
    ours = time_call(lambda: run_maskrefine(pairs), repeat=repeat)
    result: dict[str, object] = {
        "suite": name,
        "pairs": n,
        "maskrefine": {**ours, "pairs_per_s": n / ours["median_s"]},
        "values": run_maskrefine(pairs),
    }
    if have_pysod:
        peer = time_call(lambda: run_pysod(pairs), repeat=repeat)
        ref_values = run_pysod(pairs)
        diff = max(abs(result["values"][k] - ref_values[k]) for k in KEYS)  # type: ignore[index]
        result["pysodmetrics"] = {**peer, "pairs_per_s": n / peer["median_s"]}
        result["pysodmetrics_values"] = ref_values
        result["max_abs_diff"] = diff
        result["equal_1e-6"] = bool(diff <= 1e-6)
        result["speedup"] = peer["median_s"] / ours["median_s"]
    return result


def _dist_version(dist: str) -> str | None:
    """Installed version of a distribution (py_sod_metrics has no ``__version__``)."""
    from importlib import metadata as importlib_metadata

    try:
        return importlib_metadata.version(dist)
    except importlib_metadata.PackageNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    ensure_malloc_env()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="100 synthetic pairs, one real method, 3 repeats"
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="default bench/results/metrics--cpu[-quick].json"
    )
    parser.add_argument("--repeat", type=int, default=None, help="timed runs per case (default 7; quick 3)")
    args = parser.parse_args(argv)
    args.json = args.json or default_json("metrics--cpu", args.quick)
    repeat = args.repeat or (3 if args.quick else 7)
    try:
        import py_sod_metrics  # noqa: F401

        have_pysod = True
    except ImportError:
        print("skip: pysodmetrics not installed (pip install 'maskrefine[bench]'); timing maskrefine only")
        have_pysod = False

    suites = [("synthetic_320", synthetic_pairs(100 if args.quick else 1000))]
    methods = (
        ["DSS"]
        if args.quick
        else ["DSS", "Amulet", "PiCANet", "RBD_frankLeo123", "BSCA_frankLeo123", "GS_frankLeo123"]
    )
    for method in methods:
        pairs = sod_pairs(method)
        if pairs is None:
            print(f"skip: SOD predictions for {method} not found ($MASKREFINE_SHARED_DATA or ../shared/data)")
            continue
        suites.append((f"sod_{method}", pairs))

    results = []
    for name, pairs in suites:
        print(f"running {name} ({len(pairs)} pairs, {repeat} repeats) ...", flush=True)
        results.append(bench_suite(name, pairs, repeat, have_pysod))

    rows = []
    for r in results:
        row = {"suite": r["suite"], "pairs": r["pairs"], "maskrefine pairs/s": r["maskrefine"]["pairs_per_s"]}
        if have_pysod:
            row.update(
                {
                    "pysod pairs/s": r["pysodmetrics"]["pairs_per_s"],
                    "ratio": r["speedup"],
                    "max |diff|": r["max_abs_diff"],
                    "equal(1e-6)": r["equal_1e-6"],
                }
            )
        rows.append(row)
    cols = ["suite", "pairs", "maskrefine pairs/s"]
    if have_pysod:
        cols += ["pysod pairs/s", "ratio", "max |diff|", "equal(1e-6)"]
    print_table(rows, cols)
    payload = {
        "suite": "metrics",
        "description": "F-measure + MAE + S-measure + E-measure (PySOD's four), preset 'pysod', uint8 inputs "
        "in memory; median of repeats after one warm-up (includes numba compilation)",
        "quick": args.quick,
        "metadata": metadata(("py_sod_metrics",)),
        "peer_versions": {"pysodmetrics": _dist_version("pysodmetrics")},
        "results": results,
    }
    path = save_json(payload, args.json)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
