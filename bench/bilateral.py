"""Benchmark: maskrefine's fast bilateral solver and dense CRF against their peers, in one run.

Usage::

    .venv/bin/python bench/bilateral.py            # full run, writes bench/results/bilateral--cpu.json
    .venv/bin/python bench/bilateral.py --quick    # smoke run (320² only, 3 repeats), no targets
    .venv/bin/python bench/bilateral.py --memory-only  # peak RSS of one 1024² call per method, no timing

Peers:

* bilateral solver: maskrefine's float64 SciPy oracle (:mod:`maskrefine.filters.reference_bilateral`,
  the TokenCut-family algorithm with SciPy sparse matrices and ``cg``), and OpenCV's
  ``cv2.ximgproc.fastBilateralSolverFilter`` from Debian's ``python3-opencv`` (built with Eigen; the PyPI
  wheels are not). That one runs under ``/usr/bin/python3`` in a subprocess and is **timed inside that
  subprocess** (the same median-of-N protocol; its per-call stdout chatter is discarded). Same σ's,
  λ = 256, 25 iterations, tolerance 1e-5, confidence 0.999. OpenCV's solver is not the same algorithm
  (FBS with its own grid and stopping rule), so only its time is compared.
* dense CRF: ``pydensecrf2`` (``pip install pydensecrf2``, imports as ``pydensecrf``) with the same
  unaries and kernels (Gaussian sxy 3 compat 3, bilateral sxy 80 srgb 13 compat 10).
* the guided filter (``maskrefine.refine(..., "guided")``, r = 9, eps 1e-3) as the cost unit of the README.

Inputs: a real SOD photo (``$MASKREFINE_SHARED_DATA`` or ``../shared/data``; else scikit-image's
astronaut) resized to the case size, and a soft mask (its ground truth, or an ellipse, downsampled 1/16
with INTER_AREA and upsampled bilinearly). Wall and CPU time (all threads) are both reported: on the shared
2-core machine the CPU-time ratio is the steadier one. Peak RSS per 1024² call is measured in a fresh
subprocess per method, with fixed 128 KiB glibc mmap/trim thresholds (each array mapped and unmapped on
its own): the kernels are compiled on a small image first, the peak counter is reset
(``/proc/self/clear_refs``), and the resident-set high-water mark of one call is reported above the
baseline after loading the inputs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Single-threaded BLAS for every implementation: the SciPy reference's `cg` calls BLAS dot products on
# short vectors, which cost milliseconds each when OpenBLAS threads compete for the shared cores.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    RESULTS_DIR,
    ensure_malloc_env,
    metadata,
    print_table,
    save_json,
    sod_dir,
)

SYSTEM_PYTHON = "/usr/bin/python3"
PRESETS = {"tokencut": (16.0, 16.0, 8.0), "paper_repo": (24.0, 4.0, 4.0)}
CRF_ARGS = {
    "gaussian_sxy": 3.0,
    "gaussian_compat": 3.0,
    "bilateral_sxy": 80.0,
    "bilateral_srgb": 13.0,
    "bilateral_compat": 10.0,
}
TARGETS = {"bs_vs_scipy": 3.0, "bs_vs_opencv": 1.0, "crf_vs_pydensecrf": 2.0, "rss_vs_guided": 3.0}


def make_inputs(size: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(uint8 RGB image, float32 soft mask in [0, 1], description) at size x size."""
    import cv2

    sod = sod_dir()
    if sod is not None:
        path = sorted((sod / "images").glob("*.jpg"))[0]
        rgb = cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1]
        gt = (
            cv2.imread(str(sod / "masks" / (path.stem + ".png")), cv2.IMREAD_GRAYSCALE).astype(np.float32)
            / 255
        )
        source = f"SOD {path.name} + its GT"
    else:
        from skimage import data

        rgb = data.astronaut()
        yy, xx = np.mgrid[: rgb.shape[0], : rgb.shape[1]]
        gt = ((((yy - 200) / 150) ** 2 + ((xx - 250) / 110) ** 2) < 1).astype(np.float32)
        source = "skimage astronaut + ellipse (shared data absent)"
    image = cv2.resize(np.ascontiguousarray(rgb), (size, size), interpolation=cv2.INTER_AREA)
    low = cv2.resize(gt, (size // 16, size // 16), interpolation=cv2.INTER_AREA)
    mask = np.clip(cv2.resize(low, (size, size), interpolation=cv2.INTER_LINEAR), 0, 1)
    return image, mask.astype(np.float32), source + ", mask = GT /16 (INTER_AREA) then bilinear up"


def timed(fn, repeat: int) -> dict[str, float]:
    """Warm-up once, then ``repeat`` runs: median/min/max wall seconds and median CPU seconds."""
    fn()
    walls, cpus = [], []
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return {
        "median_s": float(np.median(walls)),
        "min_s": min(walls),
        "max_s": max(walls),
        "cpu_median_s": float(np.median(cpus)),
        "repeat": repeat,
    }


_OPENCV_SCRIPT = r"""
import json, sys, time, os
import numpy as np, cv2
guide_path, src_path, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
ss, sl, sc = map(float, sys.argv[4:7])
bgr = np.ascontiguousarray(np.load(guide_path)[:, :, ::-1])
src = np.load(src_path).astype(np.float32)
conf = np.full(src.shape, 0.999, np.float32)
def call():
    return cv2.ximgproc.fastBilateralSolverFilter(bgr, src, conf, sigma_spatial=ss, sigma_luma=sl,
                                                  sigma_chroma=sc, lambda_=256.0, num_iter=25, max_tol=1e-5)
# the C++ code prints to stdout on every call: send fd 1 to /dev/null, report on fd 2
saved = os.dup(1); devnull = os.open(os.devnull, os.O_WRONLY); os.dup2(devnull, 1)
call(); walls = []; cpus = []
for _ in range(repeat):
    c0, w0 = time.process_time(), time.perf_counter(); call()
    walls.append(time.perf_counter() - w0); cpus.append(time.process_time() - c0)
os.dup2(saved, 1)
walls.sort(); cpus.sort()
print(json.dumps({"median_s": walls[len(walls) // 2], "min_s": walls[0], "max_s": walls[-1],
                  "cpu_median_s": cpus[len(cpus) // 2], "repeat": repeat, "cv2": cv2.__version__}))
"""


def opencv_fbs(image: np.ndarray, mask: np.ndarray, sigmas: tuple[float, float, float], repeat: int):
    """Time OpenCV's FBS inside a /usr/bin/python3 subprocess; None (with a reason) when unavailable."""
    if not Path(SYSTEM_PYTHON).exists():
        return None, f"{SYSTEM_PYTHON} absent"
    with tempfile.TemporaryDirectory() as tmp:
        guide, src = Path(tmp) / "guide.npy", Path(tmp) / "src.npy"
        np.save(guide, image)
        np.save(src, mask)
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", ""))
        proc = subprocess.run(
            [SYSTEM_PYTHON, "-c", _OPENCV_SCRIPT, str(guide), str(src), str(repeat), *map(str, sigmas)],
            capture_output=True,
            text=True,
            env=env,
            timeout=900,
        )
    if proc.returncode != 0:
        return None, proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"
    return json.loads(proc.stdout.strip().splitlines()[-1]), None


def pydensecrf_call(image: np.ndarray, mask: np.ndarray, iterations: int):
    import pydensecrf.densecrf as dcrf

    h, w = mask.shape
    probs = np.stack([1.0 - mask, mask]).reshape(2, -1).astype(np.float64)
    unary = np.ascontiguousarray(-np.log(np.clip(probs, 1e-5, 1 - 1e-5)).astype(np.float32))
    rgb = np.ascontiguousarray(image)

    def call():
        crf = dcrf.DenseCRF2D(w, h, 2)
        crf.setUnaryEnergy(unary)
        crf.addPairwiseGaussian(sxy=3, compat=3)
        crf.addPairwiseBilateral(sxy=80, srgb=13, rgbim=rgb, compat=10)
        return np.asarray(crf.inference(iterations))[1].reshape(h, w)

    return call


def method_call(method: str, image: np.ndarray, mask: np.ndarray):
    """A no-argument callable for one maskrefine method on (uint8 image, float mask)."""
    import maskrefine
    from maskrefine.filters import reference_bilateral as ref

    rgb01 = image.astype(np.float32) / 255
    kind, _, arg = method.partition(":")
    if kind == "guided":
        return lambda: maskrefine.refine(rgb01, mask, "guided")
    if kind == "bs":
        return lambda: maskrefine.refine(rgb01, mask, "bilateral_solver", preset=arg)
    if kind == "bs_scipy":
        ss, sl, sc = PRESETS[arg]
        rgb255 = image.astype(np.float64)
        return lambda: ref.solve(rgb255, mask, sigma_spatial=ss, sigma_luma=sl, sigma_chroma=sc)
    if kind == "crf":
        return lambda: maskrefine.refine(rgb01, mask, "crf", iterations=int(arg), output="prob", **CRF_ARGS)
    if kind == "pydensecrf":
        return pydensecrf_call(image, mask, int(arg))
    raise ValueError(method)


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def rss_child(method: str, size: int) -> None:
    """Subprocess mode: peak RSS of one call above the baseline (inputs loaded, kernels compiled)."""
    image, mask, _ = make_inputs(size)
    small_image, small_mask, _ = make_inputs(64)
    method_call(method, small_image, small_mask)()  # compile
    call = method_call(method, image, mask)
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM
    base = _status_kib("VmRSS")
    call()
    peak = _status_kib("VmHWM")
    print(
        json.dumps({"baseline_mib": base / 1024, "peak_mib": peak / 1024, "call_mib": (peak - base) / 1024})
    )


def rss_of(method: str, size: int):
    # Fixed 128 KiB mmap/trim thresholds (no dynamic adjustment): every array is mapped when allocated and
    # unmapped when freed, so the high-water mark above the baseline is what the call itself holds, not
    # what a heap kept from loading the inputs happens to absorb.
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", MALLOC_TRIM_THRESHOLD_="131072")
    proc = subprocess.run(
        [sys.executable, __file__, "--rss-child", method, str(size)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _have(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="320² only, 3 repeats, no RSS: a smoke run")
    parser.add_argument(
        "--memory-only",
        action="store_true",
        help="only the peak RSS of one 1024² call per method (no timing), to bilateral-memory--cpu.json",
    )
    parser.add_argument("--repeat", type=int, default=None, help="timed runs per case (default 7, --quick 3)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--rss-child", nargs=2, metavar=("METHOD", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        rss_child(args.rss_child[0], int(args.rss_child[1]))
        return 0
    ensure_malloc_env()
    sizes = [] if args.memory_only else [320] if args.quick else [320, 1024]
    repeat = args.repeat if args.repeat is not None else 3 if args.quick else 7  # an explicit value wins
    have_crf_peer = _have("pydensecrf.densecrf")
    rows: list[dict[str, object]] = []
    results: dict[str, object] = {}
    source = ""
    for size in sizes:
        image, mask, source = make_inputs(size)
        reps = repeat if size <= 320 else max(3, repeat - 2)
        guided = timed(method_call("guided", image, mask), reps)
        results[f"guided-{size}"] = guided
        rows.append(
            {
                "case": f"guided {size}²",
                "impl": "maskrefine guided (unit)",
                "ms": guided["median_s"] * 1e3,
                "cpu_ms": guided["cpu_median_s"] * 1e3,
            }
        )
        for preset, sigmas in PRESETS.items():
            ours = timed(method_call(f"bs:{preset}", image, mask), reps)
            scipy_ref = timed(method_call(f"bs_scipy:{preset}", image, mask), reps)
            fbs, why = opencv_fbs(image, mask, sigmas, reps)
            case = f"bs {preset} {size}²"
            results[case] = {
                "maskrefine": ours,
                "scipy_reference": scipy_ref,
                "opencv_fbs": fbs,
                "opencv_fbs_skip": why,
            }
            rows.append(
                {
                    "case": case,
                    "impl": "maskrefine",
                    "ms": ours["median_s"] * 1e3,
                    "cpu_ms": ours["cpu_median_s"] * 1e3,
                    "x_guided": ours["median_s"] / guided["median_s"],
                }
            )
            for name, peer in (("SciPy reference", scipy_ref), ("OpenCV FBS (subprocess)", fbs)):
                if peer is None:
                    print(f"skip {name} for {case}: {why}")
                    continue
                rows.append(
                    {
                        "case": case,
                        "impl": name,
                        "ms": peer["median_s"] * 1e3,
                        "cpu_ms": peer["cpu_median_s"] * 1e3,
                        "speedup": peer["median_s"] / ours["median_s"],
                        "cpu_speedup": peer["cpu_median_s"] / ours["cpu_median_s"],
                    }
                )
        for iterations in (5, 10):
            case = f"crf {iterations}it {size}²"
            ours = timed(method_call(f"crf:{iterations}", image, mask), reps)
            peer = (
                timed(method_call(f"pydensecrf:{iterations}", image, mask), reps) if have_crf_peer else None
            )
            results[case] = {"maskrefine": ours, "pydensecrf2": peer}
            rows.append(
                {
                    "case": case,
                    "impl": "maskrefine",
                    "ms": ours["median_s"] * 1e3,
                    "cpu_ms": ours["cpu_median_s"] * 1e3,
                    "x_guided": ours["median_s"] / guided["median_s"],
                }
            )
            if peer is None:
                print(f"skip pydensecrf2 for {case}: not installed (extra `crf-peer`)")
            else:
                rows.append(
                    {
                        "case": case,
                        "impl": "pydensecrf2",
                        "ms": peer["median_s"] * 1e3,
                        "cpu_ms": peer["cpu_median_s"] * 1e3,
                        "speedup": peer["median_s"] / ours["median_s"],
                        "cpu_speedup": peer["cpu_median_s"] / ours["cpu_median_s"],
                    }
                )
    if rows:
        print_table(rows, ["case", "impl", "ms", "cpu_ms", "speedup", "cpu_speedup", "x_guided"])
        print(
            "speedup = peer median wall / maskrefine median wall (same run); cpu_speedup = the same with "
            "CPU time; x_guided = cost in guided-filter calls"
        )

    rss: dict[str, object] = {}
    if not args.quick:
        for method in (
            "guided",
            "bs:tokencut",
            "bs:paper_repo",
            "bs_scipy:tokencut",
            "crf:10",
            *(["pydensecrf:10"] if have_crf_peer else []),
        ):
            rss[method] = rss_of(method, 1024)
            print(f"peak RSS of one 1024² call, {method}: {rss[method]}")
        if rss.get("guided") and rss.get("bs:tokencut"):
            ratio = rss["bs:tokencut"]["call_mib"] / max(rss["guided"]["call_mib"], 1e-9)
            print(f"solver / guided filter, memory of one 1024² call: {ratio:.2f}x (target <= 3x)")
    payload = {
        "benchmark": "bilateral",
        "inputs": source,
        "metadata": metadata(("pydensecrf",)),
        "targets": TARGETS,
        "results": results,
        "peak_rss_1024": rss,
        "rows": rows,
    }
    name = "bilateral-memory--cpu.json" if args.memory_only else "bilateral--cpu.json"
    out = args.json or RESULTS_DIR / ("bilateral--cpu-quick.json" if args.quick else name)
    print(f"wrote {save_json(payload, out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
