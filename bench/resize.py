"""Benchmark: the score presets' resize rules vs the libraries they reproduce (same inputs, same run).

Usage::

    python bench/resize.py [--quick] [--json PATH] [--repeat N]

Input: 200 synthetic 8-bit saliency maps at 1/16 of a 400x300 GT (25x19 token grids, seed 0), held in
memory. Rules timed (one call per map, the whole set per timed run):

- ``pil_bilinear`` (preset ``move``) vs Pillow ``Image.resize(BILINEAR)`` on the "L" image;
- ``torch_bilinear`` (``selfmask``, ``found``; float32, up by 16 then cropped) vs
  ``torch.nn.functional.interpolate(scale_factor=16, mode="bilinear", align_corners=False)``;
- ``torch_nearest`` (``tokencut``'s two-valued maps) vs ``interpolate(mode="nearest")``.

Each peer's output is compared with maskrefine's (max |difference|; they are expected to be equal).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import default_json, ensure_malloc_env, metadata, print_table, save_json, time_call  # noqa: E402

H, W, STRIDE = 400, 300, 16


def maps(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    h, w = -(-H // STRIDE), -(-W // STRIDE)
    return [rng.integers(0, 256, (h, w), dtype=np.uint8) for _ in range(n)]


def main(argv: list[str] | None = None) -> int:
    ensure_malloc_env()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="50 maps, 3 repeats")
    parser.add_argument(
        "--json", type=Path, default=None, help="default bench/results/resize--cpu[-quick].json"
    )
    parser.add_argument("--repeat", type=int, default=None)
    args = parser.parse_args(argv)
    args.json = args.json or default_json("resize--cpu", args.quick)
    repeat = args.repeat or (3 if args.quick else 7)
    from maskrefine.metrics.resize import pil_bilinear, torch_bilinear, torch_nearest

    small = maps(50 if args.quick else 200)
    floats = [m.astype(np.float32) / np.float32(255) for m in small]
    binary = [np.where(m > 127, np.float32(1), np.float32(0)) for m in small]
    cases = {
        "pil_bilinear (move)": (lambda: [pil_bilinear(m, (H, W)) for m in small], None),
        "torch_bilinear (selfmask/found)": (
            lambda: [torch_bilinear(f, (H, W), STRIDE) for f in floats],
            None,
        ),
        "torch_nearest (tokencut)": (lambda: [torch_nearest(b, (H, W), STRIDE) for b in binary], None),
    }
    peers: dict[str, object] = {}
    try:
        from PIL import Image

        def pil_peer():
            size = (W, H)
            return [np.asarray(Image.fromarray(m, mode="L").resize(size, Image.BILINEAR)) for m in small]

        peers["pil_bilinear (move)"] = ("Pillow", pil_peer)
    except ImportError:
        print("skip: Pillow not installed")
    try:
        import torch
        import torch.nn.functional as F

        torch.set_num_threads(1)

        def torch_bilinear_peer():
            out = []
            for f in floats:
                t = F.interpolate(torch.from_numpy(f)[None, None], scale_factor=STRIDE, mode="bilinear")
                out.append(t[0, 0, :H, :W].numpy())
            return out

        def torch_nearest_peer():
            out = []
            for b in binary:
                t = F.interpolate(torch.from_numpy(b)[None, None], scale_factor=STRIDE, mode="nearest")
                out.append(t[0, 0, :H, :W].numpy())
            return out

        peers["torch_bilinear (selfmask/found)"] = ("torch", torch_bilinear_peer)
        peers["torch_nearest (tokencut)"] = ("torch", torch_nearest_peer)
    except ImportError:
        print("skip: torch not installed")

    results, rows = [], []
    for name, (ours_fn, _) in cases.items():
        print(f"running {name} ({len(small)} maps, {repeat} repeats) ...", flush=True)
        ours = time_call(ours_fn, repeat=repeat)
        entry: dict[str, object] = {"case": name, "maps": len(small), "maskrefine": ours}
        row: dict[str, object] = {"case": name, "maskrefine ms/map": 1e3 * ours["median_s"] / len(small)}
        if name in peers:
            peer_name, peer_fn = peers[name]  # type: ignore[misc]
            peer = time_call(peer_fn, repeat=repeat)
            diff = max(
                float(np.abs(a.astype(np.float64) - b).max())
                for a, b in zip(ours_fn(), peer_fn(), strict=True)
            )
            entry.update(
                peer=peer_name, peer_timing=peer, max_abs_diff=diff, ratio=peer["median_s"] / ours["median_s"]
            )
            row.update(
                {
                    "peer": peer_name,
                    "peer ms/map": 1e3 * peer["median_s"] / len(small),
                    "peer/ours": peer["median_s"] / ours["median_s"],
                    "max |diff|": diff,
                }
            )
        results.append(entry)
        rows.append(row)
    print_table(rows, ["case", "maskrefine ms/map", "peer", "peer ms/map", "peer/ours", "max |diff|"])
    payload = {
        "suite": "resize",
        "description": f"preset resize rules on 1/{STRIDE} uint8 maps to {H}x{W}, in memory; median of "
        "repeats "
        "after one warm-up (includes numba compilation); torch with 1 thread (load: metadata.load_average)",
        "quick": args.quick,
        "metadata": metadata(("PIL", "torch")),
        "results": results,
    }
    print(f"wrote {save_json(payload, args.json)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
