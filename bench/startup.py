"""Benchmark: start-up cost of the ``maskrefine`` command and of the first ``apply``.

Usage::

    python bench/startup.py                 # -> bench/results/startup--cpu.json
    python bench/startup.py --repeat 3 --json /tmp/startup.json

What is measured (each a fresh ``python -m maskrefine`` process, the console command's entry point; wall
time, median of ``--repeat``):

Python bytecode: maskrefine's modules are byte-compiled first (``compileall``, as ``pip install`` does for
an installed package) and ``PYTHONDONTWRITEBYTECODE`` is removed from the children's environment, so no
run times compiling Python source (about 0.2 s for maskrefine's modules on a 2-core machine), only numba.

* ``--version`` and ``--help``, and which heavy modules (numba, cv2, torch, scipy, skimage) they import;
* with each, the CPU time (user + system) of the child, less sensitive to other jobs than wall time;
* the first ``apply`` on the bundled examples (10 pairs) **cold**: ``NUMBA_CACHE_DIR`` set to a fresh empty
  folder, so every kernel it needs is compiled; then **warm**: the same cache folder again (kernels loaded
  from the on-disk cache). ``--jobs 1``, so no worker process is timed. Variants: ``default`` is the
  README's command (``--method auto``, which picks the guide per mask kind: colour for the examples),
  ``guided-mean`` / ``guided-color`` the guided filter with that guide;
* for the cold run of each variant, the numba functions compiled (name, signature count, seconds), from
  numba's compile events in a separate process that runs the same command: it tells which kernels a first
  run compiles and why (one entry per distinct argument-type signature). On two CPUs or more, a first run
  compiles part of the guided filter's helpers in a second process (``maskrefine._jit.split_first_compile``):
  those are not listed; the probe records each split (kernel, whether the second process finished, and the
  seconds from its start to the end of the wait, which include this process's own share);
* the same cold run **in one process** (the split turned off in the child: ``_usable_cpus`` patched to 1,
  nothing else changed), alternating with the split runs: the gain of the split, measured in the same run.

Targets (issue 14): ``--version`` / ``--help`` <= 0.3 s, first ``apply`` cold <= 4 s, warm <= 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO_ROOT, RESULTS_DIR, metadata, print_table, save_json  # noqa: E402

EXAMPLES = REPO_ROOT / "examples"
HEAVY = ("numba", "cv2", "torch", "scipy", "skimage")
TARGETS = {"--version": 0.3, "--help": 0.3, "apply cold": 4.0, "apply warm": 1.0}

# Run in a child: which heavy modules does a CLI call import? (exit code of the CLI is ignored)
_IMPORTS_PROBE = """
import sys, runpy
sys.argv = ["maskrefine", {flag!r}]
try:
    runpy.run_module("maskrefine", run_name="__main__")
except SystemExit:
    pass
print("HEAVY=" + ",".join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)
"""

# Run in a child with a fresh NUMBA_CACHE_DIR: the CLI command of a timed row, in-process, with the numba
# functions it compiles listed through numba's compile events (nested: a kernel's seconds include its
# helpers'; compile_s sums the outermost compiles only).
_COMPILE_PROBE = """
import json, runpy, sys, time
from collections import defaultdict
from numba.core import event

compiled = defaultdict(lambda: {{"signatures": 0, "seconds": 0.0}})
depth = [0]
top_level = [0.0]

class Listener(event.Listener):
    def on_start(self, ev):
        ev.data["t0"] = time.perf_counter()
        depth[0] += 1
    def on_end(self, ev):
        depth[0] -= 1
        seconds = time.perf_counter() - ev.data["t0"]
        d = compiled[ev.data["dispatcher"].py_func.__qualname__]
        d["signatures"] += 1
        d["seconds"] += seconds
        if depth[0] == 0:
            top_level[0] += seconds

event.register("numba:compile", Listener())
import maskrefine._jit as jit
splits = {{}}
real_split = jit.split_first_compile
def timed_split(module, key):
    t = time.perf_counter()
    finished = real_split(module, key)
    if key not in splits:
        splits[key] = {{"second_process_finished": finished, "seconds": time.perf_counter() - t}}
    return finished
jit.split_first_compile = timed_split
sys.argv = {argv!r}
t0 = time.perf_counter()
try:
    runpy.run_module("maskrefine", run_name="__main__")
except SystemExit:
    pass
wall = time.perf_counter() - t0
report = {{"wall_s": wall, "compile_s": top_level[0], "functions": compiled, "splits": splits}}
print("COMPILED=" + json.dumps(report), file=sys.stderr)
"""

#: Timed ``apply`` variants: name -> extra CLI arguments.
VARIANTS = {
    "default": [],
    "guided-mean": ["--method", "guided", "--guide", "mean"],
    "guided-color": ["--method", "guided", "--guide", "color"],
}


def _env(cache_dir: str | None) -> dict[str, str]:
    env = dict(os.environ)
    # A user's Python writes bytecode; some sandboxes and CI images set this, and then every run of a
    # source checkout compiles maskrefine's ~50 modules again (~0.2 s): not what a user's first run pays.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    return env


_CPU: dict[str, list[float]] = {}  # CPU seconds (user + system) of each timed child, by label


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(
    cmd: list[str], env: dict[str, str], label: str = ""
) -> tuple[float, subprocess.CompletedProcess[str]]:
    cpu0 = _child_cpu()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    _CPU.setdefault(label, []).append(_child_cpu() - cpu0)
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return elapsed, proc


def _stats(samples: list[float]) -> dict[str, object]:
    return {
        "median_s": statistics.median(samples),
        "min_s": min(samples),
        "max_s": max(samples),
        "samples": samples,
    }


def _apply_args(out: Path, variant: str) -> list[str]:
    return [
        "apply",
        "--masks",
        str(EXAMPLES / "masks"),
        "--images",
        str(EXAMPLES / "images"),
        "--out",
        str(out),
        *VARIANTS[variant],
        "--jobs",
        "1",
        "--quiet",
    ]


def _apply_cmd(out: Path, variant: str, one_process: bool = False) -> list[str]:
    if not one_process:
        return [sys.executable, "-m", "maskrefine", *_apply_args(out, variant)]
    return [sys.executable, "-c", _ONE_PROCESS, *_apply_args(out, variant)]


# The CLI with the first-compile split turned off (as on a one-CPU machine); nothing else differs.
_ONE_PROCESS = (
    "import runpy, sys; import maskrefine._jit as jit; jit._usable_cpus = lambda: 1; "
    "sys.argv = ['maskrefine', *sys.argv[1:]]; runpy.run_module('maskrefine', run_name='__main__')"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (median reported)")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "startup--cpu.json")
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=list(VARIANTS),
        default=list(VARIANTS),
        help="apply variants to time (default: all)",
    )
    parser.add_argument("--note", default="", help="what else ran on the machine (stored in the JSON)")
    args = parser.parse_args(argv)

    load_at_start = os.getloadavg()
    # maskrefine's bytecode, written as `pip install` writes it for an installed package (an editable
    # install writes it at the first import): neither the cold nor the warm run times compiling Python.
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(REPO_ROOT / "maskrefine")], env=_env(None), check=True
    )
    rows: list[dict[str, object]] = []
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="maskrefine-startup-") as tmp_name:
        tmp = Path(tmp_name)
        warm_cache = str(tmp / "warm-cache")
        # CLI flags: the numba cache does not matter (nothing should be compiled or even imported)
        for flag in ("--version", "--help"):
            samples = [
                _timed([sys.executable, "-m", "maskrefine", flag], _env(warm_cache), flag)[0]
                for _ in range(args.repeat)
            ]
            probe = subprocess.run(
                [sys.executable, "-c", _IMPORTS_PROBE.format(flag=flag, heavy=HEAVY)],
                env=_env(warm_cache),
                capture_output=True,
                text=True,
                check=False,
            )
            heavy = next((ln[6:] for ln in probe.stderr.splitlines() if ln.startswith("HEAVY=")), "?")
            results[flag] = {
                **_stats(samples),
                "cpu_median_s": statistics.median(_CPU[flag]),
                "heavy_imports": heavy.split(",") if heavy else [],
            }
            rows.append(
                {
                    "what": flag,
                    "median_s": results[flag]["median_s"],
                    "cpu_s": results[flag]["cpu_median_s"],
                    "target_s": TARGETS[flag],
                    "met": results[flag]["median_s"] <= TARGETS[flag],
                    "note": f"imports: {heavy or 'none'}",
                }
            )
        for variant in args.variants:
            cold, warm, cold_one = [], [], []
            for i in range(args.repeat):
                cache = str(tmp / f"cold-cache-{variant}-{i}")  # fresh folder: every kernel compiled
                cold_cmd = _apply_cmd(tmp / f"out-cold-{variant}-{i}", variant)
                cold.append(_timed(cold_cmd, _env(cache), f"{variant} cold")[0])
                warm_cmd = _apply_cmd(tmp / f"out-warm-{variant}-{i}", variant)
                warm.append(_timed(warm_cmd, _env(cache), f"{variant} warm")[0])
                one_cmd = _apply_cmd(tmp / f"out-one-{variant}-{i}", variant, one_process=True)
                one_cache = str(tmp / f"one-cache-{variant}-{i}")
                cold_one.append(_timed(one_cmd, _env(one_cache), f"{variant} cold one process")[0])
            probe_out = tmp / f"out-probe-{variant}"
            probe = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    _COMPILE_PROBE.format(argv=["maskrefine", *_apply_args(probe_out, variant)]),
                ],
                env=_env(str(tmp / f"probe-cache-{variant}")),
                capture_output=True,
                text=True,
                check=False,
            )
            line = next((ln[9:] for ln in probe.stderr.splitlines() if ln.startswith("COMPILED=")), None)
            if line is None:
                raise SystemExit(f"compile probe failed:\n{probe.stderr[-3000:]}")
            compiled = json.loads(line)
            functions = dict(sorted(compiled["functions"].items(), key=lambda kv: -kv[1]["seconds"]))
            results[f"apply {variant}"] = {
                "cold": {**_stats(cold), "cpu_median_s": statistics.median(_CPU[f"{variant} cold"])},
                "warm": {**_stats(warm), "cpu_median_s": statistics.median(_CPU[f"{variant} warm"])},
                "compiled": functions,
                "compile_probe_wall_s": compiled["wall_s"],
                "compile_probe_compile_s": compiled["compile_s"],
                "compile_probe_splits": compiled["splits"],
                "cold_one_process": {
                    **_stats(cold_one),
                    "cpu_median_s": statistics.median(_CPU[f"{variant} cold one process"]),
                },
            }
            n_sig = sum(v["signatures"] for v in functions.values())
            multi = [k for k, v in functions.items() if v["signatures"] > 1]
            split_notes = "".join(
                f"; split {key}: {info['seconds']:.2f} s, second process "
                + ("finished" if info["second_process_finished"] else "not used")
                for key, info in compiled["splits"].items()
            )
            compile_note = (
                f"{len(functions)} functions / {n_sig} signatures compiled here, "
                f"{compiled['compile_s']:.2f} s of {compiled['wall_s']:.2f} s in the probe{split_notes}"
                + (f"; >1 signature: {', '.join(multi)}" if multi else "")
            )
            ratio = statistics.median(cold) / statistics.median(cold_one)
            one_note = f"split off; split/one-process ratio {ratio:.2f}"
            for what, samples, target, note in (
                ("cold", cold, "apply cold", compile_note),
                ("cold one process", cold_one, "apply cold", one_note),
                ("warm", warm, "apply warm", "kernels from the on-disk cache"),
            ):
                rows.append(
                    {
                        "what": f"apply {variant} {what}",
                        "median_s": statistics.median(samples),
                        "cpu_s": statistics.median(_CPU[f"{variant} {what}"]),
                        "target_s": TARGETS[target],
                        "met": statistics.median(samples) <= TARGETS[target],
                        "note": note,
                    }
                )

    print_table(rows, ["what", "median_s", "cpu_s", "target_s", "met", "note"])
    print("(targets are judged on the wall-time median; cpu_s = user + system seconds of the process,")
    print(" less sensitive to other jobs on a shared machine. Compile seconds below nest: a kernel's")
    print(" figure includes the helpers it calls that were compiled for it.)")
    for variant in args.variants:
        functions = results[f"apply {variant}"]["compiled"]
        top = list(functions.items())[:8]
        print(f"\ncompiled by a cold `apply` {variant} (top 8 of {len(functions)} by seconds):")
        for name, info in top:
            print(f"  {name:<28} {info['signatures']} sig  {info['seconds']:.2f} s")
    payload = {
        "meta": metadata(),
        "machine_note": args.note,
        "load_average_at_start": load_at_start,
        "bytecode": "maskrefine's modules byte-compiled before timing (compileall, as pip install does); "
        "PYTHONDONTWRITEBYTECODE removed from the children's environment",
        "parent_PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE"),
        "variants": {name: VARIANTS[name] for name in args.variants},
        "repeat": args.repeat,
        "targets_s": TARGETS,
        "rows": rows,
        "results": results,
    }
    print(f"\nwrote {save_json(payload, args.json)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
