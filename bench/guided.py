"""Benchmark: maskrefine's numba guided filter vs cv2.ximgproc, numpy+cv2.boxFilter, kornia, DeepGuidedFilter.

Usage::

    .venv/bin/python bench/guided.py            # full run, writes bench/results/guided--cpu.json
    .venv/bin/python bench/guided.py --quick    # smoke run (small sizes, 3 repeats), no targets
    .venv/bin/python bench/guided.py --json out.json

Inputs: a real SOD photo resized to the case size as guide (channel mean for gray, RGB for colour), and a
coarse mask (its ground truth downsampled 1/16 with INTER_AREA, then upsampled bilinearly) as src;
r = 9, eps = 1e-3, float32 in [0, 1]. cv2's colour path gets the guide scaled to 0..255 and eps·255²
(peer note 1) so that it computes the same filter. maskrefine is timed with a preallocated ``out=``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    RESULTS_DIR,
    ensure_malloc_env,
    metadata,
    print_table,
    save_json,
    sod_dir,
)

RADIUS = 9
EPS = 1e-3
# name -> (size, colour, batch, subsample, target speed-up vs cv2.ximgproc)
CASES = {
    "gray-1024": (1024, False, None, 1, 2.0),
    "gray-4096": (4096, False, None, 1, 2.0),
    "color-1024": (1024, True, None, 1, 3.0),
    "batch64-gray-320": (320, False, 64, 1, 2.0),
    "fast-s4-gray-4096": (4096, False, None, 4, 1.5),
}
QUICK_CASES = {
    "gray-256": (256, False, None, 1, None),
    "color-256": (256, True, None, 1, None),
    "batch8-gray-128": (128, False, 8, 1, None),
    "fast-s4-gray-512": (512, False, None, 4, None),
}
# torch peers are 11-49x slower than cv2 on CPU (peer note 6): not run above this many pixels per call
TORCH_MAX_PIXELS = 1024 * 1024 * 2


def make_inputs(size: int, color: bool, batch: int | None) -> tuple[np.ndarray, np.ndarray, str]:
    """Real photo guide(s) and coarse mask(s) at ``size``² (synthetic fallback when data is absent)."""
    import cv2

    sod = sod_dir()
    n = batch or 1
    guides, srcs = [], []
    if sod is not None:
        images = sorted((sod / "images").glob("*.jpg"))[:n]
        source = (
            f"SOD photos {images[0].name}..{images[-1].name} resized (INTER_CUBIC); "
            "GT /16 INTER_AREA, bilinear up"
        )
        for path in images:
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            rgb = (
                cv2.resize(bgr[:, :, ::-1], (size, size), interpolation=cv2.INTER_CUBIC).astype(np.float32)
                / 255
            )
            gt = (
                cv2.imread(str(sod / "masks" / (path.stem + ".png")), cv2.IMREAD_GRAYSCALE).astype(np.float32)
                / 255
            )
            small = cv2.resize(gt, (max(1, size // 16),) * 2, interpolation=cv2.INTER_AREA)
            srcs.append(cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR))
            guides.append(np.clip(rgb, 0, 1) if color else np.clip(rgb, 0, 1).mean(axis=2))
    else:
        source = "synthetic (shared data absent): noisy ramp guide, ellipse mask /16 then bilinear up"
        print(f"note: SOD data not found ($MASKREFINE_SHARED_DATA or ../shared/data); inputs are {source}")
        rng = np.random.default_rng(0)
        yy, xx = np.mgrid[0:size, 0:size] / size
        for _ in range(n):
            base = 0.5 * (yy + xx) + 0.1 * rng.standard_normal((size, size))
            g = np.clip(np.stack([base, base**2, 1 - base], axis=2) if color else base, 0, 1)
            ell = (((yy - 0.5) / 0.3) ** 2 + ((xx - 0.5) / 0.2) ** 2 < 1).astype(np.float32)
            small = cv2.resize(ell, (size // 16,) * 2, interpolation=cv2.INTER_AREA)
            srcs.append(cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR))
            guides.append(g.astype(np.float32))
    guide = np.ascontiguousarray(np.stack(guides) if batch else guides[0], dtype=np.float32)
    src = np.ascontiguousarray(np.stack(srcs) if batch else srcs[0], dtype=np.float32)
    return guide, src, source


# ------------------------------------------------------------------------------------------ peers
def numpy_boxfilter_gf(guide: np.ndarray, src: np.ndarray, r: int, eps: float) -> np.ndarray:
    """Own baseline: He et al.'s equations with cv2.boxFilter (BORDER_REFLECT), gray or colour guide."""
    import cv2

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), normalize=True, borderType=cv2.BORDER_REFLECT)

    mean_p = box(src)
    if guide.ndim == 2:
        mean_i = box(guide)
        var = box(guide * guide) - mean_i * mean_i
        cov = box(guide * src) - mean_i * mean_p
        a = cov / (var + eps)
        b = mean_p - a * mean_i
        return box(a) * guide + box(b)
    mean_i = box(guide)
    sig = np.empty(guide.shape[:2] + (3, 3), np.float32)
    for c1 in range(3):
        for c2 in range(c1, 3):
            v = box(guide[:, :, c1] * guide[:, :, c2]) - mean_i[:, :, c1] * mean_i[:, :, c2]
            sig[:, :, c1, c2] = v
            sig[:, :, c2, c1] = v
    sig += eps * np.eye(3, dtype=np.float32)
    cov = box(guide * src[:, :, None]) - mean_i * mean_p[:, :, None]
    a = np.linalg.solve(sig, cov[..., None])[..., 0]
    b = mean_p - (a * mean_i).sum(axis=2)
    return (box(a) * guide).sum(axis=2) + box(b)


def build_peers(guide, src, color, batch, subsample) -> dict[str, Callable[[], object] | str]:
    """name -> zero-argument callable, or a string saying why the peer is skipped."""
    peers: dict[str, Callable[[], object] | str] = {}
    try:
        import cv2

        if not hasattr(cv2, "ximgproc"):
            raise ImportError("cv2.ximgproc missing (install opencv-contrib-python-headless, see README)")
        g_cv = guide * np.float32(255) if color else guide
        e_cv = EPS * 255.0**2 if color else EPS
        scale = 1.0 / subsample
        # with scale < 1 OpenCV applies the radius at the low resolution: r // s there is our fast
        # variant's window (r = 9 at scale 1/4 would be a 36-pixel radius at full resolution)
        r_cv = RADIUS // subsample
        if batch:
            peers["cv2.ximgproc (loop)"] = lambda: [
                cv2.ximgproc.guidedFilter(g_cv[i], src[i], r_cv, e_cv, scale=scale) for i in range(len(src))
            ]
        else:
            peers["cv2.ximgproc"] = lambda: cv2.ximgproc.guidedFilter(g_cv, src, r_cv, e_cv, scale=scale)
    except ImportError as exc:
        peers["cv2.ximgproc"] = f"skipped: {exc}"
    if subsample == 1:
        if batch:
            peers["numpy+cv2.boxFilter (loop)"] = lambda: [
                numpy_boxfilter_gf(guide[i], src[i], RADIUS, EPS) for i in range(len(src))
            ]
        else:
            peers["numpy+cv2.boxFilter"] = lambda: numpy_boxfilter_gf(guide, src, RADIUS, EPS)
    pixels = src.size
    try:
        import torch

        too_big = pixels > TORCH_MAX_PIXELS
        g_t = torch.from_numpy(guide if batch else guide[None])
        g_t = g_t.permute(0, 3, 1, 2).contiguous() if color else g_t[:, None].contiguous()
        s_t = torch.from_numpy(src if batch else src[None])[:, None].contiguous()
        try:
            import kornia.filters

            if too_big:
                peers["kornia guided_blur"] = (
                    f"skipped: {pixels} px per call is too slow on CPU (peer note 6)"
                )
            else:
                k = 2 * RADIUS + 1
                peers["kornia guided_blur"] = lambda: kornia.filters.guided_blur(
                    g_t, s_t, k, EPS, border_type="reflect", subsample=subsample
                )
        except ImportError as exc:
            peers["kornia guided_blur"] = f"skipped: {exc}"
        try:
            from guided_filter_pytorch.guided_filter import GuidedFilter

            if color:
                peers["DeepGuidedFilter"] = (
                    "skipped: no colour-covariance path (3-ch guide + 1-ch src asserts)"
                )
            elif subsample != 1:
                peers["DeepGuidedFilter"] = "skipped: its fast variant takes a caller-made low-res pair"
            elif too_big:
                peers["DeepGuidedFilter"] = f"skipped: {pixels} px per call is too slow on CPU"
            else:
                dgf = GuidedFilter(RADIUS, EPS)
                peers["DeepGuidedFilter"] = lambda: dgf(g_t, s_t)
        except ImportError as exc:
            peers["DeepGuidedFilter"] = f"skipped: {exc}"
    except ImportError:
        peers["kornia guided_blur"] = "skipped: torch not installed"
        peers["DeepGuidedFilter"] = "skipped: torch not installed"
    return peers


def time_interleaved(impls: dict[str, Callable[[], object]], *, repeat: int) -> dict[str, dict[str, float]]:
    """Warm-up (twice, JIT included), then ``repeat`` rounds that time every implementation once each.

    Same statistics as ``_common.time_call`` (median/min/max of wall time), plus the median process CPU
    time (all threads; less sensitive to other jobs on the 2 shared cores). The implementations
    alternate, so a change of machine load during the case hits every peer alike.
    """
    for fn in impls.values():
        fn()
        fn()
    samples: dict[str, list[float]] = {k: [] for k in impls}
    cpu: dict[str, list[float]] = {k: [] for k in impls}
    for _ in range(repeat):
        for key, fn in impls.items():
            start_cpu = time.process_time()
            start = time.perf_counter()
            fn()
            samples[key].append(time.perf_counter() - start)
            cpu[key].append(time.process_time() - start_cpu)
    return {k: {**_stats(v), "cpu_median_s": _stats(cpu[k])["median_s"]} for k, v in samples.items()}


def _stats(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    n = len(samples)
    median = samples[n // 2] if n % 2 else 0.5 * (samples[n // 2 - 1] + samples[n // 2])
    return {"median_s": median, "min_s": samples[0], "max_s": samples[-1], "repeat": n}


def run_case(name: str, spec: tuple, repeat: int) -> tuple[list[dict], dict]:
    from maskrefine.filters import guided_filter

    size, color, batch, subsample, target = spec
    guide, src, source = make_inputs(size, color, batch)
    out = np.empty_like(src)

    def ours() -> object:
        return guided_filter(guide, src, RADIUS, EPS, subsample=subsample, out=out)

    impls: dict[str, Callable[[], object]] = {"maskrefine (numba)": ours}
    skipped = {}
    for peer, fn in build_peers(guide, src, color, batch, subsample).items():
        if isinstance(fn, str):
            print(f"  [{name}] {peer}: {fn}")
            skipped[peer] = fn
        else:
            impls[peer] = fn
    # The speed-up is measured in rounds that alternate maskrefine and its cv2.ximgproc anchor only; the
    # other peers get their own rounds afterwards. (torch's OpenMP workers keep spinning for a while after
    # each kornia/DeepGuidedFilter call: interleaved with them, whichever implementation runs next loses
    # a core on this 2-core machine.)
    anchor_keys = [k for k in impls if k == "maskrefine (numba)" or k.startswith("cv2.ximgproc")]
    timings = time_interleaved({k: impls[k] for k in anchor_keys}, repeat=repeat)
    others = {k: fn for k, fn in impls.items() if k not in anchor_keys}
    if others:
        timings.update(time_interleaved(others, repeat=repeat))
    ours_s = timings["maskrefine (numba)"]["median_s"]
    anchor = next((v["median_s"] for k, v in timings.items() if k.startswith("cv2.ximgproc")), None)
    anchor_cpu = next((v["cpu_median_s"] for k, v in timings.items() if k.startswith("cv2.ximgproc")), None)
    rows = []
    for impl, t in timings.items():
        rows.append(
            {
                "case": name,
                "impl": impl,
                "median_ms": t["median_s"] * 1e3,
                "min_ms": t["min_s"] * 1e3,
                "max_ms": t["max_s"] * 1e3,
                "cpu_ms": t["cpu_median_s"] * 1e3,
                "x_slower_than_maskrefine": t["median_s"] / ours_s,
            }
        )
    speedup = anchor / ours_s if anchor else None
    summary = {
        "case": name,
        "size": size,
        "color": color,
        "batch": batch,
        "subsample": subsample,
        "inputs": source,
        "timings": timings,
        "skipped": skipped,
        "speedup_vs_cv2": speedup,
        "cpu_speedup_vs_cv2": (
            anchor_cpu / timings["maskrefine (numba)"]["cpu_median_s"] if anchor_cpu else None
        ),
        "target": target,
        "target_met": (speedup >= target) if (speedup is not None and target is not None) else None,
    }
    return rows, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="output JSON (default bench/results/guided--cpu.json)"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, 3 repeats: a smoke run")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--cases", nargs="*", default=None, help="subset of case names")
    args = parser.parse_args(argv)
    ensure_malloc_env()
    cases = QUICK_CASES if args.quick else CASES
    if args.cases:
        unknown = sorted(set(args.cases) - set(cases))
        if unknown:
            parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(cases)}")
        cases = {k: v for k, v in cases.items() if k in args.cases}
    repeat = 3 if args.quick else max(7, args.repeat)
    # Everything in one process, interleaved rounds (see time_interleaved); MALLOC_* set by ensure_malloc_env
    all_rows, summaries = [], []
    for name, spec in cases.items():
        print(f"case {name} ...", flush=True)
        rows, summary = run_case(name, spec, repeat)
        all_rows += rows
        summaries.append(summary)
    print()
    print_table(
        all_rows, ["case", "impl", "median_ms", "min_ms", "max_ms", "cpu_ms", "x_slower_than_maskrefine"]
    )
    print()
    print_table(
        [
            {
                "case": s["case"],
                "speedup_vs_cv2": s["speedup_vs_cv2"],
                "cpu_speedup": s["cpu_speedup_vs_cv2"],
                "target": s["target"],
                "met": s["target_met"],
            }
            for s in summaries
        ],
        ["case", "speedup_vs_cv2", "cpu_speedup", "target", "met"],
    )
    default = RESULTS_DIR / ("guided--cpu-quick.json" if args.quick else "guided--cpu.json")
    path = save_json(
        {
            "suite": "guided",
            "quick": args.quick,
            "radius": RADIUS,
            "eps": EPS,
            "dtype": "float32",
            "metadata": metadata(("torch", "kornia", "guided_filter_pytorch")),
            "cases": summaries,
            "rows": all_rows,
        },
        args.json or default,
    )
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
