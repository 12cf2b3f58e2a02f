"""Where `apply --method guided` spends its time per file beyond `--method identity` (diagnostic, no target).

Usage::

    NUMBA_NUM_THREADS=1 .venv/bin/python bench/apply_profile.py [--images 100] [--rounds 3]

In this process, on SOD images with their DSS maps (read once, before timing): CPU time per image of the
per-file work that differs between the two methods (refine, the finiteness check, PNG encoding), then of
each step of the guided one alone: the gray guide, the filter, and the PNG encoding of each method's
output. Prints milliseconds; skips with a reason when the SOD data is absent.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import sod_dir  # noqa: E402

from maskrefine.filters.guided import guided_filter_trusted  # noqa: E402
from maskrefine.guide import guide_from_rgb  # noqa: E402
from maskrefine.io.imageio import encode_mask, read_image, read_mask_file  # noqa: E402
from maskrefine.refiners import REFINERS, refine_unchecked, resize_mask, resolve_params  # noqa: E402


def over_each(step: Callable[[Any], object], items: list[Any]) -> Callable[[], None]:
    """Run ``step`` on each item, keeping no result (kept results would each take fresh memory, page faults
    that ``apply``, which drops each file's arrays, does not pay)."""

    def work() -> None:
        for item in items:
            step(item)

    return work


def per_image_ms(work: Callable[[], None], count: int) -> float:
    """CPU milliseconds per image of ``work`` (which handles ``count`` images)."""
    start = time.process_time()
    work()
    return (time.process_time() - start) / count * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    data = sod_dir()
    if data is None:
        print("skip: SOD data not found (set MASKREFINE_SHARED_DATA or put ../shared/data/sod beside)")
        return 0
    files = sorted((data / "images").glob("*.jpg"))[: args.images]
    pairs = [
        (read_image(path), read_mask_file(data / "predictions" / "DSS" / f"{path.stem}.png").to_unit())
        for path in files
    ]
    params = resolve_params("guided", None)
    settings = {"guided": params, "identity": {}}

    def method(name: str) -> Callable[[], None]:
        def work() -> None:
            for image, mask in pairs:
                out = refine_unchecked(image, mask, REFINERS[name], "mean", settings[name], False)
                np.isfinite(out).all()
                encode_mask(out, "png8")

        return work

    method("guided")(), method("identity")()  # compile and warm up
    for round_ in range(args.rounds):
        guided = per_image_ms(method("guided"), len(pairs))
        identity = per_image_ms(method("identity"), len(pairs))
        print(
            f"round {round_ + 1}: guided {guided:.2f} ms, identity {identity:.2f} ms, "
            f"difference {guided - identity:.2f}"
        )
    guides = [
        (guide_from_rgb(image, "mean"), resize_mask(mask, image.shape[:2], binary_input=False))
        for image, mask in pairs
    ]
    guide_ms = per_image_ms(over_each(lambda pair: guide_from_rgb(pair[0], "mean"), pairs), len(pairs))
    print(f"gray guide {guide_ms:.2f} ms")
    radius, eps = params["radius"], params["eps"]
    filtered = [guided_filter_trusted(guide, mask, radius, eps) for guide, mask in guides]
    filter_ms = per_image_ms(
        lambda: [guided_filter_trusted(g, m, radius, eps) for g, m in guides], len(pairs)
    )
    print(f"filter {filter_ms:.2f} ms")
    identity_out = [
        refine_unchecked(image, mask, REFINERS["identity"], "mean", {}, False) for image, mask in pairs
    ]
    for name, outputs in (("guided", filtered), ("identity", identity_out)):
        encode = per_image_ms(
            lambda outputs=outputs: [encode_mask(out, "png8") for out in outputs], len(pairs)
        )
        print(f"PNG encoding of the {name} output {encode:.2f} ms")
    print(f"{len(pairs)} images, {pairs[0][0].shape[1]}x{pairs[0][0].shape[0]} the first; guided {params}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
