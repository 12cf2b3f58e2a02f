"""Refine and score the bundled examples from Python (the same steps as the two CLI commands).

Run from anywhere, on any machine with maskrefine installed::

    python examples/python_api.py

It reads examples/{images,masks,gt}/ and writes examples/out/ (git-ignored).
"""

from __future__ import annotations

from pathlib import Path

from maskrefine.io import read_image, read_mask
from maskrefine.metrics import Evaluator
from maskrefine.pipeline import apply_folder, score_folder
from maskrefine.refiners import refine

HERE = Path(__file__).resolve().parent
IMAGES, MASKS, GT = HERE / "images", HERE / "masks", HERE / "gt"
OUT = HERE / "out"


def arrays_demo(stem: str = "35010") -> None:
    """Array level: refine one coarse 1/16 mask with its image, score it against the GT."""
    image = read_image(IMAGES / f"{stem}.jpg")  # (H, W, 3) float32 RGB in [0, 1]
    coarse = read_mask(MASKS / f"{stem}.png")  # (ceil(H/16), ceil(W/16)) float32 in [0, 1]
    gt = read_mask(GT / f"{stem}.png")  # (H, W) float32 in {0, 1}
    print(f"{stem}: image {image.shape}, coarse mask {coarse.shape}")
    for method in ("identity", "guided"):
        refined = refine(image, coarse, method)  # resize to (H, W), then filter (guided: radius 9, eps 1e-3)
        evaluator = Evaluator(preset="tokencut")
        row = evaluator.step(refined, gt, name=stem)
        print(f"  {method:<9} iou {row['iou']:.4f}  mae {row['mae']:.4f}")


def folders_demo() -> None:
    """Folder level: what `maskrefine apply` and `maskrefine score` do."""
    summaries = {}
    for method in ("identity", "guided"):
        out = OUT / method
        run = apply_folder(MASKS, IMAGES, out, method=method, overwrite=True)
        print(
            f"{method}: written {run.counts['written']}, failed {run.counts['failed']} "
            f"({run.masks_per_s:.1f} masks/s)"
        )
        report = score_folder(out, GT, preset="tokencut", json_path=OUT / f"{method}-summary.json")
        summaries[method] = report.summary
    print(f"\n{'metric':<12}{'identity':>10}{'guided':>10}")
    for metric in ("max_fbeta", "iou", "mae", "s_measure"):
        print(f"{metric:<12}{summaries['identity'][metric]:>10.4f}{summaries['guided'][metric]:>10.4f}")


if __name__ == "__main__":
    arrays_demo()
    folders_demo()
