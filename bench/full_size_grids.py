"""Masks saved at full size as a nearest-upsampled patch grid (TokenCut's saliency masks): does ``auto`` help?

TokenCut resizes the image to a multiple of the patch size (``round(H/16)·16``), cuts the grid on the tokens
and saves it resized back to the image with ``F.interpolate(size=(H, W), mode="nearest")``: a full-size
mask whose cells are ``H/round(H/16)`` pixels tall. This script makes such masks from the SOD ground truth
(the GT resized to the token grid's image size, each 16×16 patch averaged: soft; thresholded at 0.5:
binary), writes them as 8-bit PNGs, refines them with ``maskrefine apply`` (default ``auto``) and compares
the refined masks with the masks as given (what ``auto`` wrote before it recognised such grids) under the
``tokencut`` preset, with paired bootstrap 95 % intervals. It also counts the masks ``auto`` took for a
grid (the report's ``auto.kind``).

Usage::

    python bench/full_size_grids.py [--jobs 2] [--images 300] [--cache DIR] [--json PATH]

Skips with a printed message (exit 0) when the SOD data is absent.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from _common import REPO_ROOT, default_json, metadata, save_json, sod_dir  # noqa: E402

from maskrefine.pipeline import apply_folder  # noqa: E402
from maskrefine.quality.compare import compare_folders  # noqa: E402

PATCH = 16


def tokencut_style(gt: np.ndarray, binary: bool) -> np.ndarray:
    """The GT as TokenCut would save a perfect token mask: the grid resized back to the image (nearest)."""
    height, width = gt.shape
    rows, cols = max(1, round(height / PATCH)), max(1, round(width / PATCH))
    resized = cv2.resize(gt, (cols * PATCH, rows * PATCH), interpolation=cv2.INTER_LINEAR)
    grid = cv2.resize(resized, (cols, rows), interpolation=cv2.INTER_AREA)
    if binary:
        grid = (grid > 0.5).astype(np.float32)
    return grid[np.ix_(np.arange(height) * rows // height, np.arange(width) * cols // width)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--cache", type=Path, default=REPO_ROOT / "bench" / ".cache" / "full_size_grids")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    sod = sod_dir()
    if sod is None:
        print("skipped: SOD data not found (set MASKREFINE_SHARED_DATA or put it at ../shared/data)")
        return 0
    started = time.perf_counter()
    gt_files = sorted((sod / "masks").glob("*.png"))[: args.images]
    results = {}
    for kind in ("binary", "soft"):
        masks = args.cache / f"{kind}-masks"
        refined = args.cache / f"{kind}-auto"
        masks.mkdir(parents=True, exist_ok=True)
        for path in gt_files:
            gt = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
            mask = tokencut_style(gt, kind == "binary")
            cv2.imwrite(str(masks / path.name), np.rint(mask * 255).astype(np.uint8))
        report = apply_folder(masks, sod / "images", refined, method="auto", jobs=args.jobs, overwrite=True)
        kinds = Counter(str(outcome.decision["kind"]) for outcome in report.outcomes if outcome.decision)
        paired = compare_folders(refined, masks, sod / "masks", preset="tokencut")
        rows = {name: c.to_dict() for name, c in paired.comparisons.items()}
        results[kind] = {"auto_kinds": dict(kinds), "images": len(gt_files), "comparisons": rows}
        print(f"{kind}: auto saw {dict(kinds)}")
        for name in ("iou", "max_fbeta", "mae", "s_measure"):
            if name in paired.comparisons:
                c = paired.comparisons[name]
                print(
                    f"  {name:10s} as given {c.baseline:.4f} -> auto {c.candidate:.4f}: {c.change:+.4f} "
                    f"[{c.low:+.4f}, {c.high:+.4f}]  W/T/L {c.wins}/{c.ties}/{c.losses}"
                )
    out = args.json or default_json("full_size_grids--cpu", False)
    payload = {"meta": metadata(), "results": results, "runtime_s": time.perf_counter() - started}
    save_json(payload, out)
    print(f"wrote {out} ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
