"""A first run compiles a kernel's helpers on two cores (maskrefine._jit.split_first_compile).

Every scenario runs in a fresh process with its own ``NUMBA_CACHE_DIR``: what is tested is a first run.
The mechanism is tested on a tiny kernel written to ``tmp_path`` (quick to compile); the guided filter's
splits are tested for what can go wrong there: a helper signature that differs from the one the kernel
calls it with (the kernel would then compile that helper again, and the split would gain nothing).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from _processes import process_alive, survivors_after

TINY_MODULE = """
from numba import types

from maskrefine._jit import FirstCompileSplit, njit, njit_inner


@njit_inner(cache=True)
def helper_here(x):
    return x + 1.0


@njit_inner(cache=True)
def helper_there(x):
    return x * 2.0


@njit(cache=True)
def kernel(x):
    return helper_here(x) + helper_there(x)


FIRST_COMPILE_SPLITS = {
    "tiny": FirstCompileSplit(
        kernel=kernel,
        here=((helper_here, (types.float64,)),),
        elsewhere=((helper_there, (types.float64,)),),
    )
}
"""

# Runs one scenario of the tiny split and prints what happened as JSON. The scenario may patch the
# module before the split: `j` is maskrefine._jit, `started` collects the processes the split started.
SCENARIO = """
import json, subprocess, sys, time

import maskrefine._jit as j
from numba.core import event

import tiny_kernels

started = []
real_popen = subprocess.Popen


def recording_popen(*args, **kwargs):
    process = real_popen(*args, **kwargs)
    started.append(process)
    return process


subprocess.Popen = recording_popen
{patch}
t0 = time.monotonic()
first = j.split_first_compile("tiny_kernels", "tiny")
split_s = time.monotonic() - t0
again = j.split_first_compile("tiny_kernels", "tiny")
with event.install_recorder("numba:compile") as recorder:
    value = tiny_kernels.kernel(1.5)
compiled = sorted({{e.data["dispatcher"].py_func.__name__ for _, e in recorder.buffer if e.is_start}})
print(json.dumps({{
    "first": first, "again": again, "value": value, "compiled": compiled, "split_s": split_s,
    "started": len(started), "alive": [p.poll() is None for p in started],
}}))
"""


def _env(module_folder: Path, cache: Path) -> dict[str, str]:
    """This environment, with its own numba cache and the tiny module importable (also by the child)."""
    path = os.pathsep.join([str(module_folder), *filter(None, [os.environ.get("PYTHONPATH")])])
    return {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": path}


def _python(code: str, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    """Run ``python -P -c code args...`` (dedented); assert it succeeds and return its stdout, stripped."""
    proc = subprocess.run(
        [sys.executable, "-P", "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def _tiny_module(folder: Path) -> None:
    module = folder / "tiny_kernels.py"
    if not module.exists():  # written once: numba's cache index records the source
        module.write_text(TINY_MODULE)


def _scenario(tmp_path: Path, patch: str = "", cache: Path | None = None, cwd: Path | None = None) -> dict:
    _tiny_module(tmp_path)
    code = SCENARIO.format(patch=textwrap.dedent(patch))
    out = _python(code, env=_env(tmp_path, cache or tmp_path / "cache"), cwd=cwd or tmp_path)
    return json.loads(out.splitlines()[-1])


def _index_files(cache: Path, name: str) -> list[Path]:
    return list(cache.rglob(f"tiny_kernels.{name}-*.nbi"))


def _two_cpus() -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("the split needs two CPUs available to the process; this one has one")


def test_a_first_run_compiles_the_other_share_in_a_second_process(tmp_path: Path) -> None:
    _two_cpus()
    result = _scenario(tmp_path)
    assert result["first"] is True and result["started"] == 1 and result["alive"] == [False]
    assert result["again"] is False  # considered once per process
    assert result["value"] == 5.5
    # the kernel's compile found both helpers: the one compiled here, the one from the second process
    assert result["compiled"] == ["kernel"]
    cache = tmp_path / "cache"
    assert _index_files(cache, "helper_there") and _index_files(cache, "kernel")
    # the second process wrote only its own share; this one wrote the kernel and its share
    assert _index_files(cache, "helper_here")


def test_the_second_process_does_not_import_modules_from_the_current_folder(tmp_path: Path) -> None:
    _two_cpus()
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "numba.py").write_text("raise ImportError('numba.py of the current folder imported')\n")
    result = _scenario(tmp_path, cwd=folder)
    assert result["first"] is True and result["compiled"] == ["kernel"]


def test_a_later_run_finds_the_kernel_cached_and_starts_nothing(tmp_path: Path) -> None:
    _two_cpus()
    assert _scenario(tmp_path)["first"] is True
    result = _scenario(tmp_path)
    assert result == {**result, "first": False, "started": 0, "compiled": [], "value": 5.5}


def test_an_index_left_by_another_version_of_the_source_counts_as_a_first_run(tmp_path: Path) -> None:
    _two_cpus()
    assert _scenario(tmp_path)["first"] is True
    source = tmp_path / "tiny_kernels.py"
    source.write_text(TINY_MODULE + "# another version of the file (numba stamps the source's contents)\n")
    result = _scenario(tmp_path)
    assert result["first"] is True and result["compiled"] == ["kernel"]


@pytest.mark.parametrize(
    ("case", "patch"),
    [
        ("one CPU", "j._usable_cpus = lambda: 1"),
        ("cache unusable", "j._warned = True"),
        ("splits turned off (a pool worker)", "j.skip_first_compile_splits()"),
    ],
)
def test_no_second_process_where_it_cannot_help(tmp_path: Path, case: str, patch: str) -> None:
    result = _scenario(tmp_path, patch)
    assert result["first"] is False and result["started"] == 0, case
    assert result["compiled"] == ["helper_here", "helper_there", "kernel"], case
    assert result["value"] == 5.5


def test_a_second_process_that_cannot_start_changes_only_the_time(tmp_path: Path) -> None:
    result = _scenario(
        tmp_path, "import sys; sys.executable = str(__import__('pathlib').Path('/nonexistent/python'))"
    )
    assert result["first"] is False and result["started"] == 0
    # this process compiled its share first, then the kernel compiled the other helper itself
    assert result["compiled"] == ["helper_there", "kernel"]
    assert result["value"] == 5.5


def test_a_second_process_that_fails_changes_only_the_time(tmp_path: Path) -> None:
    _two_cpus()
    patch = """
    def failing_start(module, key):
        return real_popen([sys.executable, "-c", "import sys; sys.exit(3)"])
    j._start_second_compile = failing_start
    """
    result = _scenario(tmp_path, patch)
    assert result["first"] is False
    assert result["compiled"] == ["helper_there", "kernel"] and result["value"] == 5.5


def test_a_late_second_process_is_stopped(tmp_path: Path) -> None:
    _two_cpus()
    patch = """
    j.SECOND_PROCESS_WAIT_S = 0.2
    def sleeping_start(module, key):
        return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    j._start_second_compile = sleeping_start
    """
    result = _scenario(tmp_path, patch)
    assert result["first"] is False and result["started"] == 1
    assert result["alive"] == [False]  # killed and reaped, not left running
    assert result["split_s"] < 30
    assert result["compiled"] == ["helper_there", "kernel"] and result["value"] == 5.5


# ------------------------------------------------------------------------------- the guided filter
GUIDED_PROBE = """
import json, sys

import numpy as np
import maskrefine._jit as j
from maskrefine.filters import _first_compile, _numba_kernels as kernels
from maskrefine.filters.guided import guided_filter

j._usable_cpus = lambda: 1  # no split: the kernel compiles its helpers and records their signatures
color = sys.argv[1] == "color"
rng = np.random.default_rng(0)
guide = rng.random((40, 52, 3) if color else (40, 52), dtype=np.float32)
src = rng.random((40, 52), dtype=np.float32)
for eps in (1e-3, 1e-8):  # float32 and float64 coefficient rings
    guided_filter(guide, src, radius=3, eps=eps)
used = {
    name: sorted(str(s) for s in d.signatures)
    for name, d in vars(kernels).items()
    if name.startswith("_") and getattr(d, "signatures", None)
}
planned = {}
for ring in ("float32", "float64"):
    split = _first_compile.FIRST_COMPILE_SPLITS[_first_compile.split_key(color, ring)]
    assert split.kernel is (kernels.color_rows if color else kernels.gray_rows)
    for helper, signature in split.here + split.elsewhere:
        planned.setdefault(helper.py_func.__name__, set()).add(str(tuple(signature)))
print(json.dumps({"used": used, "planned": {k: sorted(v) for k, v in planned.items()}}))
"""


@pytest.mark.parametrize("guide", ["gray", "color"])
def test_guided_filter_splits_list_every_helper_with_the_signature_the_kernel_uses(
    tmp_path: Path, guide: str
) -> None:
    out = _python(GUIDED_PROBE, guide, env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")})
    result = json.loads(out.splitlines()[-1])
    assert result["planned"] == result["used"]


def test_guided_filter_first_run_splits_and_gives_the_cached_runs_result(tmp_path: Path) -> None:
    _two_cpus()
    code = """
    import sys
    import numpy as np
    import maskrefine._jit as j
    from maskrefine.filters.guided import guided_filter
    calls = []
    real = j.split_first_compile
    def recording(module, key):
        calls.append((key, real(module, key)))
        return calls[-1][1]
    j.split_first_compile = recording
    rng = np.random.default_rng(1)
    guide, src = rng.random((33, 47, 3), dtype=np.float32), rng.random((33, 47), dtype=np.float32)
    out = guided_filter(guide, src, 4, 1e-3)
    np.save(sys.argv[1], out)
    print(calls)
    """
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    runs = [_python(code, str(tmp_path / f"out{i}.npy"), env=env) for i in (1, 2)]
    assert runs[0] == "[('color-float32', True)]"
    assert runs[1] == "[('color-float32', False)]"  # found in the cache
    first, cached = np.load(tmp_path / "out1.npy"), np.load(tmp_path / "out2.npy")
    np.testing.assert_array_equal(first, cached)
    from maskrefine.filters.reference import guided_filter as guided_filter_reference

    rng = np.random.default_rng(1)
    guide, src = rng.random((33, 47, 3), dtype=np.float32), rng.random((33, 47), dtype=np.float32)
    np.testing.assert_allclose(first, guided_filter_reference(guide, src, 4, 1e-3), atol=1e-5)


def test_an_interrupted_first_process_stops_the_second(tmp_path: Path) -> None:
    _tiny_module(tmp_path)
    code = """
    import subprocess, sys
    import maskrefine._jit as j
    started = []
    def sleeping_start(module, key):
        started.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]))
        return started[-1]
    def interrupted(helpers):
        raise KeyboardInterrupt
    j._usable_cpus = lambda: 2
    j._start_second_compile = sleeping_start
    j._compile_helpers = interrupted
    try:
        j.split_first_compile("tiny_kernels", "tiny")
    except KeyboardInterrupt:
        print("interrupted", [p.poll() is None for p in started])
    """
    assert _python(code, env=_env(tmp_path, tmp_path / "cache")) == "interrupted [False]"


def test_scoring_pool_workers_compile_without_a_second_process() -> None:
    # a cold cache makes every spawned worker of maskrefine.quality.grid compile at once: they already
    # use the CPUs, so none starts a second compile process
    code = """
    import maskrefine._jit as j
    from maskrefine.quality import grid
    before = j._no_splits
    grid._init_worker([], "any")
    print(before, j._no_splits)
    """
    assert _python(code) == "False True"


def test_the_second_process_ends_without_the_collectors_walks_over_numba(tmp_path: Path) -> None:
    # the first process waits for the second one's end: its exit took 0.16-0.19 s after the colour split's
    # compile, 0.02-0.03 s without the garbage collections over numba's objects at interpreter shutdown;
    # its helpers must be in the cache all the same
    _tiny_module(tmp_path)
    code = """
    import atexit, gc
    atexit.register(lambda: print(gc.get_freeze_count() > 0))  # runs at the process's end
    import maskrefine._jit as j
    j._compile_split_elsewhere("tiny_kernels", "tiny")
    """
    assert _python(code, env=_env(tmp_path, tmp_path / "cache")) == "True"
    assert _index_files(tmp_path / "cache", "helper_there")
    assert not _index_files(tmp_path / "cache", "helper_here")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")
def test_a_first_process_killed_by_sigkill_takes_the_second_with_it(tmp_path: Path) -> None:
    # The second process is the real one (maskrefine._jit._start_second_compile); the module it imports
    # sleeps there (only there: that process has arguments), standing for a long compile.
    (tmp_path / "sleepy_kernels.py").write_text(
        TINY_MODULE + "\nimport sys, time\n\nif len(sys.argv) > 1:  # imported by the second process\n"
        "    time.sleep(60)\n"
    )
    code = """
    import subprocess, sys
    import maskrefine._jit as j
    real_popen = subprocess.Popen
    def recording_popen(*args, **kwargs):
        process = real_popen(*args, **kwargs)
        print(process.pid, flush=True)
        return process
    subprocess.Popen = recording_popen
    j._usable_cpus = lambda: 2
    j.split_first_compile("sleepy_kernels", "tiny")  # waits for the second process (30 s)
    """
    with subprocess.Popen(  # leaving the block closes the pipe and reaps the first process
        [sys.executable, "-P", "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(tmp_path, tmp_path / "cache"),
    ) as first:
        try:
            line = first.stdout.readline() if first.stdout else ""
            assert line.strip().isdigit(), "the first process started no second process"
            second = int(line)
            assert process_alive(second)
            time.sleep(1.0)  # let it tie itself to the first process and import the module (then it sleeps)
            assert process_alive(second), "the second process ended before the first was killed"
        finally:
            first.kill()  # kill -9
    assert not survivors_after([second], 10), "the second compile process outlived the first one"
