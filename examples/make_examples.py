"""Build examples/{images,masks,gt} from the shared SOD data (run once by a maintainer; never in CI).

For each chosen SOD image ``<stem>``:

* ``images/<stem>.jpg`` — the SOD/BSDS300 image, copied byte for byte;
* ``gt/<stem>.png``     — the SOD ground-truth mask, copied byte for byte;
* ``masks/<stem>.png``  — a coarse *patch-resolution* soft mask: the PiCANet saliency map averaged over
  16×16 pixel patches, i.e. a grid of ⌈H/16⌉ × ⌈W/16⌉ values (the last row / column of patches averages
  only the pixels that exist), stored as an 8-bit gray PNG. This imitates the output of an unsupervised
  ViT-S/16 method (one value per patch token); refinement must bring it back to pixel resolution.

Usage::

    python examples/make_examples.py [--shared PATH/TO/shared/data]

It exits with a message (status 0) when the shared data is absent.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np

EXAMPLES = Path(__file__).resolve().parent
REPO_ROOT = EXAMPLES.parent
PATCH = 16
PREDICTION_METHOD = "PiCANet"
# Upright (never rotated in the shared copy), varied subjects: animals, a flower, a plant, a fish.
STEMS = (
    "100075",  # bears by a river
    "106020",  # penguin on pebbles
    "108082",  # tiger
    "113044",  # mare and foal
    "12003",  # starfish
    "124084",  # red flowers
    "210088",  # clownfish in an anemone
    "35010",  # butterfly on white flowers
    "353013",  # bonsai tree
    "41004",  # elk in a field
)


def patch_mean(saliency: np.ndarray, patch: int = PATCH) -> np.ndarray:
    """Mean of ``saliency`` (H, W) over patch×patch blocks → (⌈H/patch⌉, ⌈W/patch⌉), truncated at edges."""
    h, w = saliency.shape
    gh, gw = -(-h // patch), -(-w // patch)
    padded = np.full((gh * patch, gw * patch), np.nan, dtype=np.float64)
    padded[:h, :w] = saliency
    blocks = padded.reshape(gh, patch, gw, patch)
    return np.nanmean(blocks, axis=(1, 3))


def find_shared(explicit: str | None) -> Path | None:
    candidates = [Path(explicit)] if explicit else []
    if os.environ.get("MASKREFINE_SHARED_DATA"):
        candidates.append(Path(os.environ["MASKREFINE_SHARED_DATA"]))
    candidates += [REPO_ROOT.parent / "shared" / "data", REPO_ROOT / "shared" / "data"]
    for candidate in candidates:
        if (candidate / "sod" / "images").is_dir():
            return candidate
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", help="path to shared/data (default: ../shared/data next to the repo)")
    args = parser.parse_args(argv)
    shared = find_shared(args.shared)
    if shared is None:
        print("shared data not found (looked for ../shared/data/sod/images); nothing to do")
        return 0
    sod = shared / "sod"
    for sub in ("images", "masks", "gt"):
        (EXAMPLES / sub).mkdir(exist_ok=True)
    for stem in STEMS:
        shutil.copyfile(sod / "images" / f"{stem}.jpg", EXAMPLES / "images" / f"{stem}.jpg")
        shutil.copyfile(sod / "masks" / f"{stem}.png", EXAMPLES / "gt" / f"{stem}.png")
        saliency = cv2.imread(
            str(sod / "predictions" / PREDICTION_METHOD / f"{stem}.png"), cv2.IMREAD_GRAYSCALE
        )
        if saliency is None:
            print(f"cannot read the {PREDICTION_METHOD} prediction of {stem}", file=sys.stderr)
            return 1
        coarse = patch_mean(saliency.astype(np.float64))
        ok = cv2.imwrite(str(EXAMPLES / "masks" / f"{stem}.png"), np.rint(coarse).astype(np.uint8))
        if not ok:
            print(f"cannot write the mask of {stem}", file=sys.stderr)
            return 1
        (h, w), (gh, gw) = saliency.shape, coarse.shape
        print(f"{stem}: image {w}x{h} -> mask {gw}x{gh}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
