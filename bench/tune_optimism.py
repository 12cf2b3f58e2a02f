"""How optimistic is the gain ``maskrefine tune`` reports for its winner? Measured on SOD by resampling.

``tune`` picks the best setting on a small labelled subset and reports its mean IoU change against naive
upsampling *on that same subset*, so the figure is biased upwards (the winner is partly the luckiest
setting). This script measures by how much, for the search ``tune`` runs first (its coarse grid):

1. Coarse soft x16 masks of each source (the GT and saliency maps area-averaged onto the 1/16 grid, as
   ``bench/quality.py`` and :func:`maskrefine.quality.write_coarse_folder` make them) are refined by every
   setting of ``coarse_grid(binary=False, methods=...)`` on all images, once, and scored with the
   ``tokencut`` preset (per-image IoU at 0.5), exactly as ``tune`` scores them.
2. **Optimism**: for each subset size k, ``--draws`` random subsets of k images (seed 0). The winner is the
   setting with the best mean IoU change on the subset (naive upsampling, change 0, is a candidate, as in
   ``tune``). Its change on the subset ("reported") is set against its change on the images outside the
   subset ("other images"). Printed per source: the means of both over the draws, the overstatement
   ``(reported - other) / reported`` of those means, the share of draws naive upsampling won, the share
   in which a refinement setting won and gained nothing or lost on the other images, and the share in
   which it lost more than 0.001 IoU there.
3. **A winner that truly does nothing**: every setting's per-image changes are centred at its mean over
   all images, so that no setting helps on the population, while the settings stay as correlated with
   each other as the real ones are. For ``--null-draws`` subsets of 30 images, the share whose winner's
   95 % paired-bootstrap interval (``tune``'s: seed 0, 2000 resamples) lies above 0, i.e. the share of
   subsets on which ``tune`` would give no warning for a setting that does nothing.

Only the coarse stage is simulated; ``tune`` then also tries the neighbours of the 3 best settings on the
same subset, which can only add optimism. Scores are cached under ``--cache`` (a rerun is fast).

Usage::

    python bench/tune_optimism.py [--sources DSS Amulet GT] [--sizes 20 30 50] [--draws 2000]
                                  [--null-draws 300] [--jobs 2] [--cache DIR] [--json PATH] [--quick]

Skips with a printed message (exit 0) when the SOD data is absent.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from _common import REPO_ROOT, default_json, metadata, save_json, sod_dir  # noqa: E402
from quality import score  # noqa: E402  # the cached scorer of bench/quality.py

from maskrefine.quality import Item, naive_candidate, write_coarse_folder  # noqa: E402
from maskrefine.quality.search import coarse_grid  # noqa: E402
from maskrefine.quality.stats import paired_bootstrap  # noqa: E402

PATCH = 16


def iou_changes(sod: Path, source: str, stems: list[str], methods: Sequence[str], cache: Path, jobs: int):
    """Per-image IoU change against naive upsampling of every non-naive coarse setting: (labels, (C, n))."""
    src = sod / "masks" if source == "GT" else sod / "predictions" / source
    folder = cache / "coarse" / source / f"p{PATCH}-soft"
    write_coarse_folder(src, folder, PATCH, binary=False, stems=stems)
    images = {p.stem: p for p in (sod / "images").iterdir() if p.suffix.lower() in (".jpg", ".png")}
    items = [
        Item(stem, images[stem], folder / f"{stem}.png", sod / "masks" / f"{stem}.png") for stem in stems
    ]
    candidates = coarse_grid(False, methods=methods)
    scores = score(candidates, items, cache, jobs)
    naive = naive_candidate(False)
    others = [c for c in candidates if c != naive]
    base = scores[naive].iou
    return [c.label for c in others], np.stack([scores[c].iou - base for c in others])


def winner(changes: np.ndarray, idx: np.ndarray) -> tuple[int, float]:
    """Index of the best setting on ``idx`` (-1: naive) and its mean change there."""
    means = np.nanmean(changes[:, idx], axis=1)
    best = int(np.argmax(means))
    return (best, float(means[best])) if means[best] > 0 else (-1, 0.0)


def optimism(changes: np.ndarray, k: int, draws: int, rng: np.random.Generator) -> dict:
    n = changes.shape[1]
    reported, other = np.empty(draws), np.empty(draws)
    naive_won = np.zeros(draws, bool)
    for d in range(draws):
        perm = rng.permutation(n)
        idx, rest = perm[:k], perm[k:]
        best, reported[d] = winner(changes, idx)
        naive_won[d] = best < 0
        other[d] = float(np.nanmean(changes[best, rest])) if best >= 0 else 0.0
    mean_reported, mean_other = float(reported.mean()), float(other.mean())
    return {
        "subset_size": k,
        "draws": draws,
        "mean_reported": mean_reported,
        "mean_other_images": mean_other,
        "overstatement": (mean_reported - mean_other) / mean_reported if mean_reported > 0 else None,
        "share_other_images_not_better": float(np.mean(other <= 0)),
        "share_naive_won": float(np.mean(naive_won)),
        "share_setting_won_and_not_better_on_other_images": float(np.mean(~naive_won & (other <= 0))),
        "share_other_images_worse_than_minus_0_001": float(np.mean(other < -0.001)),
    }


def null_warning_rate(changes: np.ndarray, k: int, draws: int, rng: np.random.Generator) -> dict:
    centred = changes - np.nanmean(changes, axis=1, keepdims=True)
    above = 0
    for _ in range(draws):
        idx = rng.permutation(changes.shape[1])[:k]
        best, _ = winner(centred, idx)
        if best < 0:
            continue
        _, low, _ = paired_bootstrap(centred[best, idx], np.zeros(k))
        above += low > 0
    return {"subset_size": k, "draws": draws, "share_interval_above_0": above / draws}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", nargs="+", default=["DSS", "Amulet", "GT"])
    parser.add_argument("--methods", nargs="+", default=["guided"], help="tune's --methods (default guided)")
    parser.add_argument("--sizes", nargs="+", type=int, default=[20, 30, 50])
    parser.add_argument("--draws", type=int, default=None, help="default 2000 (--quick: 200)")
    parser.add_argument("--null-draws", type=int, default=None, help="default 300 (--quick: 50)")
    parser.add_argument("--images", type=int, default=None, help="default 300 (--quick: 60)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=REPO_ROOT / "bench" / ".cache" / "quality")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--quick", action="store_true", help="60 images, 200 draws, 50 null draws (unless given)"
    )
    args = parser.parse_args(argv)
    sod = sod_dir()
    if sod is None:
        print("skipped: SOD data not found (set MASKREFINE_SHARED_DATA or put it at ../shared/data)")
        return 0
    # --quick sets the sizes not given: an explicit --images/--draws/--null-draws is kept
    defaults = {"images": 60, "draws": 200, "null_draws": 50} if args.quick else {}
    defaults = {"images": 300, "draws": 2000, "null_draws": 300, **defaults}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    stems = sorted(p.stem for p in (sod / "masks").glob("*.png"))[: args.images]
    started = time.perf_counter()
    results = {}
    for source in args.sources:
        labels, changes = iou_changes(sod, source, stems, args.methods, args.cache, args.jobs)
        rng = np.random.default_rng(0)
        rows = [optimism(changes, k, args.draws, rng) for k in args.sizes if k < len(stems)]
        null = null_warning_rate(changes, 30, args.null_draws, rng) if len(stems) > 30 else None
        results[source] = {"settings": len(labels), "optimism": rows, "null_30": null}
        print(f"{source}: {len(labels)} settings besides naive, {len(stems)} images")
        for row in rows:
            over = row["overstatement"]
            print(
                f"  subsets of {row['subset_size']:3d}: reported {row['mean_reported']:+.4f}, other images "
                f"{row['mean_other_images']:+.4f} (overstated by {over:.0%}); naive won "
                f"{row['share_naive_won']:.0%} of draws; a setting won and did not help the other images "
                f"in {row['share_setting_won_and_not_better_on_other_images']:.0%}, made them worse than "
                f"-0.001 in {row['share_other_images_worse_than_minus_0_001']:.0%}"
                if over is not None
                else f"  subsets of {row['subset_size']}: no setting beat naive"
            )
        if null is not None:
            share = null["share_interval_above_0"]
            print(f"  no setting helps (centred): winner's interval above 0 in {share:.0%}")
    out = args.json or default_json("tune_optimism--cpu", args.quick)
    payload = {
        "meta": metadata(),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "results": results,
        "runtime_s": time.perf_counter() - started,
    }
    save_json(payload, out)
    print(f"wrote {out} ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
