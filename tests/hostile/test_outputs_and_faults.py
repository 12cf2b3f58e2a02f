"""Hostile inputs, issue 9 sections 2 (outputs) and 4 (faults and limits): each case runs the real CLI
in a fresh tree (see ``conftest.py``) and checks the exit status, the message and that nothing outside
the allowed outputs changed."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import numpy as np
import pytest

APPLY_IDENTITY = ("--method", "identity")


def _mkfifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


needs_matplotlib = pytest.mark.skipif(not _has_matplotlib(), reason="matplotlib not installed")


# ------------------------------------------------------------------------ outputs that are not files


def test_apply_report_fifo_refused_before_any_work(hostile) -> None:
    _mkfifo(hostile.path("report.fifo"))
    args = hostile.apply_args("refined", "--report", "report.fifo")
    result = hostile.run(*args, exit=2, names=["report file report.fifo"])
    assert "FIFO" in result.stderr and not hostile.path("refined").exists()


def test_apply_report_symlink_refused(hostile) -> None:
    hostile.path("link.json").symlink_to("notes.txt")
    result = hostile.run(*hostile.apply_args("refined", "--report", "link.json"), exit=2, names=["link.json"])
    assert "symbolic link" in result.stderr and not hostile.path("refined").exists()


@pytest.mark.parametrize(
    ("command", "what"),
    [
        (["apply", "--masks", "masks", "--images", "images", "--out", "loop/x"], "output folder loop/x"),
        (
            ["apply", "--masks", "masks", "--images", "images", "--out", "o", "--report", "loop/r.json"],
            "loop",
        ),
        (["score", "--pred", "pred", "--gt", "gt", "--json", "loop/s.json"], "loop/s.json"),
        (["score", "--pred", "pred", "--gt", "gt", "--plot", "loop/plots", "--images", "images"], "loop"),
    ],
)
def test_output_path_through_a_symlink_loop_is_a_usage_error(hostile, command, what) -> None:
    # Path.resolve() raises RuntimeError("Symlink loop ...") on Python 3.11: it was a traceback
    hostile.path("loop").symlink_to("loop")
    result = hostile.run(*command, "--jobs", "1", exit=2, names=[what])
    assert "cannot resolve the path" in result.stderr or "loop" in result.stderr


def test_score_plot_never_replaces_an_input_annotation_file(hostile) -> None:
    pytest.importorskip("matplotlib", reason="--plot needs the plot extra (matplotlib)")
    # a COCO JSON kept in the plot folder under a plot file's name was replaced by the plot
    hostile.path("plots").mkdir()
    coco = '{"images": [{"id": 1, "file_name": "0001.png"}], "annotations": []}'
    hostile.path("plots/pr_curve.png").write_text(coco)
    args = hostile.score_args("--boxes", "coco:plots/pr_curve.png", "--plot", "plots", "--overwrite")
    result = hostile.run(*args, exit=2, names=["plots/pr_curve.png"])
    assert "boxes (coco) file" in result.stderr
    assert hostile.path("plots/pr_curve.png").read_text() == coco


def test_output_folder_below_a_regular_file_is_a_usage_error(hostile) -> None:
    # it was "error: notes.txt/x/<stem>.png: Not a directory" per file, exit 1
    result = hostile.run(*hostile.apply_args("notes.txt/x"), exit=2, names=["notes.txt is not a folder"])
    assert "Not a directory" not in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["apply", "--masks", "masks", "--images", "images", "--out", "o", "--jobs", "1", "--report"],
        ["score", "--pred", "pred", "--gt", "gt", "--jobs", "1", "--json"],
        ["score", "--pred", "pred", "--gt", "gt", "--jobs", "1", "--csv"],
    ],
)
def test_side_file_under_a_dangling_symlink_is_refused_before_any_work(hostile, command) -> None:
    # the job ran to the end, then lost its report: "cannot create its folder (File exists)", exit 1
    hostile.path("dead").symlink_to("nowhere")
    result = hostile.run(
        *command, "dead/r.json", exit=2, names=["dead/r.json", "dead is a dangling symbolic link"]
    )
    assert not hostile.path("o").exists()
    hostile.path("loop").symlink_to("loop")
    hostile.run(*command, "loop/r.json", exit=2, names=["loop/r.json"])
    assert "Traceback" not in result.output


def test_apply_report_device_node_refused(hostile) -> None:
    try:
        os.mknod(hostile.path("null"), stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("cannot create a device node here")
    result = hostile.run(*hostile.apply_args("refined", "--report", "null"), exit=2, names=["null"])
    assert "character device" in result.stderr


@pytest.mark.parametrize("option", ["--json", "--csv"])
def test_score_output_fifo_refused(hostile, option: str) -> None:
    _mkfifo(hostile.path("out.fifo"))
    result = hostile.run(*hostile.score_args(option, "out.fifo"), exit=2, names=["out.fifo"])
    assert "FIFO" in result.stderr


@pytest.mark.parametrize("option", ["--json", "--csv"])
def test_score_output_symlink_refused(hostile, option: str) -> None:
    hostile.path("summary.link").symlink_to("summary.json")
    result = hostile.run(*hostile.score_args(option, "summary.link"), exit=2, names=["summary.link"])
    assert "symbolic link" in result.stderr


@pytest.mark.parametrize(
    "flag", [(), ("--skip-existing",), ("--overwrite",)], ids=["plain", "skip", "overwrite"]
)
def test_apply_folder_named_like_an_output_refused(hostile, flag: tuple[str, ...]) -> None:
    hostile.path("refined/0002.png").mkdir(parents=True)
    result = hostile.run(*hostile.apply_args("refined", *APPLY_IDENTITY, *flag), exit=2, names=["0002.png"])
    assert "folder" in result.stderr


def test_apply_output_symlink_not_replaced_even_with_overwrite(hostile) -> None:
    hostile.path("refined").mkdir()
    hostile.path("refined/0001.png").symlink_to("../notes.txt")
    result = hostile.run(
        *hostile.apply_args("refined", *APPLY_IDENTITY, "--overwrite"), exit=2, names=["0001.png"]
    )
    assert "symbolic link" in result.stderr


def test_apply_output_fifo_not_replaced(hostile) -> None:
    _mkfifo(hostile.path("refined/0003.png"))
    result = hostile.run(
        *hostile.apply_args("refined", *APPLY_IDENTITY, "--overwrite"), exit=2, names=["0003.png"]
    )
    assert "FIFO" in result.stderr


def test_apply_dangling_output_symlink_refused(hostile) -> None:
    hostile.path("refined").mkdir()
    hostile.path("refined/0001.png").symlink_to("../nowhere/x.png")
    hostile.run(*hostile.apply_args("refined", *APPLY_IDENTITY), exit=2, names=["0001.png", "symbolic link"])


# ------------------------------------------------------------------------ empty paths


@pytest.mark.parametrize("option", ["--out", "--report"])
def test_apply_empty_path_is_a_usage_error(hostile, option: str) -> None:
    args = ["apply", "--masks", "masks", "--images", "images", "--overwrite", *APPLY_IDENTITY]
    args += ["--out", "" if option == "--out" else "refined"]
    if option == "--report":
        args += ["--report", ""]
    result = hostile.run(*args, exit=2, names=[option])
    assert "empty" in result.stderr


@pytest.mark.parametrize("option", ["--json", "--csv"])
def test_score_empty_path_is_a_usage_error(hostile, option: str) -> None:
    result = hostile.run(*hostile.score_args(option, ""), exit=2, names=[option])
    assert "empty" in result.stderr


@pytest.mark.parametrize("ending", ["/", "/.", "/.."])
@pytest.mark.parametrize(
    "command",
    [
        ["score", "--pred", "pred", "--gt", "gt", "--jobs", "1", "--json"],
        ["score", "--pred", "pred", "--gt", "gt", "--jobs", "1", "--csv"],
        ["apply", "--masks", "masks", "--images", "images", "--out", "refined", "--jobs", "1", "--report"],
        ["tune", "--masks", "masks", "--images", "images", "--gt", "gt", "--methods", "identity", "--out"],
        ["report", "merge", "summary.json", "--json"],
    ],
    ids=["score-json", "score-csv", "apply-report", "tune-out", "merge-json"],
)
def test_a_file_option_ending_like_a_folder_is_a_usage_error(hostile, command, ending) -> None:
    # was: `--json newdir/` wrote a regular file named newdir and printed the path with its slash
    result = hostile.run(*command, f"newdir{ending}", exit=2, names=[f"newdir{ending}"])
    assert "which names a folder; give a file name" in result.stderr
    assert not hostile.path("newdir").exists()


def test_report_merge_refuses_an_empty_report_argument(hostile) -> None:
    # was: "" read as the current folder (". : not a regular file", exit 1)
    result = hostile.run("report", "merge", "run.json", "", exit=2, names=["REPORTS"])
    assert "the path is empty" in result.stderr


@needs_matplotlib
def test_score_empty_plot_is_a_usage_error(hostile) -> None:
    result = hostile.run(*hostile.score_args("--plot", "", "--images", "images"), exit=2, names=["--plot"])
    assert "empty" in result.stderr


# ------------------------------------------------------------------------ --plot no-clobber


@needs_matplotlib
def test_score_plot_does_not_clobber_existing_plots(hostile) -> None:
    hostile.path("plots").mkdir()
    hostile.path("plots/pr_curve.png").write_bytes(b"a user's plot")
    args = hostile.score_args("--plot", "plots")
    result = hostile.run(*args, exit=2, names=["plots/pr_curve.png", "--overwrite"])
    assert "exist" in result.stderr


@needs_matplotlib
def test_score_plot_overwrite_replaces_plots(hostile) -> None:
    hostile.path("plots").mkdir()
    hostile.path("plots/pr_curve.png").write_bytes(b"old")
    result = hostile.run(*hostile.score_args("--plot", "plots", "--overwrite"), exit=0, out=["plots"])
    assert hostile.path("plots/pr_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert "plots/pr_curve.png" in result.changed


# ------------------------------------------------------------------------ permissions


def test_apply_outputs_follow_the_umask(hostile) -> None:
    hostile.run(
        *hostile.apply_args("refined", *APPLY_IDENTITY, "--report", "rep/run.json"),
        exit=0,
        out=["refined", "rep"],
        prelude="import os; os.umask(0o022)",
    )
    modes = {
        p.name: stat.S_IMODE(p.stat().st_mode)
        for p in [*hostile.path("refined").iterdir(), hostile.path("rep/run.json")]
    }
    assert set(modes.values()) == {0o644}, modes


def test_apply_overwrite_keeps_the_mode_of_replaced_outputs(hostile) -> None:
    hostile.run(
        *hostile.apply_args("refined", *APPLY_IDENTITY),
        exit=0,
        out=["refined"],
        prelude="import os; os.umask(0o022)",
    )
    target = hostile.path("refined/0001.png")
    target.chmod(0o640)
    hostile.run(*hostile.apply_args("refined", *APPLY_IDENTITY, "--overwrite"), exit=0, out=["refined"])
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_score_json_follows_the_umask(hostile) -> None:
    hostile.run(
        *hostile.score_args("--json", "s.json", "--csv", "s.csv"),
        exit=0,
        out=["s.json", "s.csv"],
        prelude="import os; os.umask(0o002)",
    )
    assert stat.S_IMODE(hostile.path("s.json").stat().st_mode) == 0o664
    assert stat.S_IMODE(hostile.path("s.csv").stat().st_mode) == 0o664


# ------------------------------------------------------------------------ concurrent runs

# Another run publishes 0002.png between this run's existence check and its rename: simulated by
# creating it while this run writes its temporary file (os.fsync of the temporary file).
_OTHER_RUN_PUBLISHES = """
import os
_real_fsync = os.fsync
def _fsync(fd):
    _real_fsync(fd)
    name = os.readlink(f"/proc/self/fd/{fd}")
    if os.path.basename(name).startswith(".0002.png."):
        with open(os.path.join(os.path.dirname(name), "0002.png"), "x") as other:
            other.write("the other run's result")
os.fsync = _fsync
"""


def test_concurrent_run_result_is_never_replaced(hostile) -> None:
    result = hostile.run(
        *hostile.apply_args("refined", *APPLY_IDENTITY),
        exit=1,
        names=["0002.png"],
        out=["refined"],
        prelude=_OTHER_RUN_PUBLISHES,
    )
    assert hostile.path("refined/0002.png").read_text() == "the other run's result"
    assert "meanwhile" in result.stderr
    assert sorted(p.name for p in hostile.path("refined").iterdir()) == ["0001.png", "0002.png", "0003.png"]


def test_concurrent_run_result_counts_as_existing_when_resuming(hostile) -> None:
    result = hostile.run(
        *hostile.apply_args("refined", *APPLY_IDENTITY, "--skip-existing"),
        exit=0,
        out=["refined"],
        prelude=_OTHER_RUN_PUBLISHES,
    )
    assert hostile.path("refined/0002.png").read_text() == "the other run's result"
    assert "skipped 1" in result.stdout


def test_two_real_concurrent_runs_never_mix(hostile) -> None:
    """Two processes racing into one folder: every output is complete and from exactly one of them."""
    import subprocess
    import sys

    from tests.hostile.conftest import REPO_ROOT  # noqa: F401  (import path check only)

    for index in range(40):
        stem = f"x{index:03d}"
        hostile.write_image(f"images/{stem}.png", np.full((48, 64, 3), 100, np.uint8))
        hostile.write_mask(f"masks/{stem}.png", np.full((12, 16), 60 + index, np.uint8))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "maskrefine.cli", *hostile.apply_args("refined", *APPLY_IDENTITY, *extra)],
            cwd=hostile.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for extra in ((), ("--binary-input",))
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    for (_, stderr), proc in zip(outputs, procs, strict=True):
        assert "Traceback" not in stderr
        assert proc.returncode in (0, 1, 2), stderr
    written = [
        int(line.split()[1].rstrip(","))
        for stdout, _ in outputs
        for line in stdout.splitlines()
        if line.startswith("written")
    ]
    assert sum(written) == len(list(hostile.path("refined").glob("*.png"))) == 43


# ------------------------------------------------------------------------ resume


def test_resume_removes_only_our_stale_temp_files(hostile) -> None:
    out = hostile.path("refined")
    out.mkdir()
    ours = out / ".0001.png.abcd1234.tmp"
    young = out / ".0002.png.abcd1234.tmp"
    foreign = [out / ".notes.txt.abcd1234.tmp", out / ".0001.png.short.tmp", out / "0001.png.abcd1234.tmp"]
    for path in (ours, young, *foreign):
        path.write_bytes(b"partial")
    old = time.time() - 3600
    for path in (ours, *foreign):
        os.utime(path, (old, old))
    result = hostile.run(
        *hostile.apply_args("refined", *APPLY_IDENTITY, "--skip-existing"), exit=0, out=["refined"]
    )
    assert not ours.exists()
    assert young.exists() and all(path.exists() for path in foreign)
    assert "written 3" in result.stdout


def test_resume_treats_only_regular_files_as_done(hostile) -> None:
    _mkfifo(hostile.path("refined/0001.png"))
    hostile.run(
        *hostile.apply_args("refined", *APPLY_IDENTITY, "--skip-existing"), exit=2, names=["0001.png", "FIFO"]
    )


# ------------------------------------------------------------------------ write errors name the path

_DISK_FULL_FOR_REPORT = """
import errno, os
_real_fsync = os.fsync
def _fsync(fd):
    if ".run.json." in os.readlink(f"/proc/self/fd/{fd}"):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    _real_fsync(fd)
os.fsync = _fsync
"""


def test_no_space_for_the_report_names_the_report(hostile) -> None:
    result = hostile.run(
        *hostile.apply_args("refined", *APPLY_IDENTITY, "--report", "rep/run.json"),
        exit=1,
        names=["rep/run.json", "No space left on device"],
        out=["refined", "rep"],
        prelude=_DISK_FULL_FOR_REPORT,
    )
    assert not hostile.path("rep/run.json").exists() and list(hostile.path("rep").iterdir()) == []
    assert len(list(hostile.path("refined").iterdir())) == 3
    assert result.stderr.count("No space left on device") == 1


def test_no_space_for_an_output_names_it(hostile) -> None:
    prelude = _DISK_FULL_FOR_REPORT.replace(".run.json.", ".0002.png.")
    result = hostile.run(
        *hostile.apply_args("refined", *APPLY_IDENTITY),
        exit=1,
        names=["refined/0002.png: cannot write (No space left on device)"],
        out=["refined"],
        prelude=prelude,
    )
    assert sorted(p.name for p in hostile.path("refined").iterdir()) == ["0001.png", "0003.png"]
    assert "written 2" in result.stdout


def test_score_json_reports_ok_false_when_a_plot_cannot_be_written(hostile) -> None:
    pytest.importorskip("matplotlib")
    prelude = _DISK_FULL_FOR_REPORT.replace(".run.json.", ".pr_curve.png.")
    hostile.run(
        *hostile.score_args("--plot", "plots", "--json", "s.json"),
        exit=1,
        names=["pr_curve.png"],
        out=["plots", "s.json"],
        prelude=prelude,
    )
    summary = json.loads(hostile.path("s.json").read_text())
    assert summary["ok"] is False and summary["count"] == 3


# ------------------------------------------------------------------------ a killed worker

_KILL_WORKER_ON_0005 = """
import os, pathlib, signal
_parent = os.getpid()
_real_open = os.open
def _open(path, *args, **kwargs):  # the readers open input files with os.open (maskrefine.io.files)
    target = pathlib.Path(os.fsdecode(path))
    if target.name == "0005.png" and target.parent.name == "masks" and os.getpid() != _parent:
        os.kill(os.getpid(), signal.SIGKILL)  # what the OOM killer does to one worker
    return _real_open(path, *args, **kwargs)
os.open = _open
"""


def _more_pairs(hostile, count: int) -> None:
    for index in range(4, 4 + count):
        stem = f"{index:04d}"
        hostile.write_image(f"images/{stem}.png", np.full((48, 64, 3), 90 + index, np.uint8))
        hostile.write_mask(f"masks/{stem}.png", np.full((12, 16), 10 * index, np.uint8))


def test_a_killed_worker_fails_only_its_file(hostile) -> None:
    _more_pairs(hostile, 9)  # 12 pairs
    result = hostile.run(
        *hostile.apply_args("refined", *APPLY_IDENTITY, "--jobs", "2", "--report", "rep.json"),
        exit=1,
        names=["masks/0005.png", "worker died (signal 9) while processing"],
        out=["refined", "rep.json"],
        prelude=_KILL_WORKER_ON_0005,
    )
    report = json.loads(hostile.path("rep.json").read_text())
    assert report["counts"] == {"written": 11, "skipped": 0, "failed": 1, "unmatched": 0, "duplicates": 0}
    (failed,) = [entry for entry in report["files"] if entry["status"] == "failed"]
    assert failed["stem"] == "0005"
    assert len(list(hostile.path("refined").iterdir())) == 11
    assert result.stderr.count("worker died") == 1


# ------------------------------------------------------------------------ numba's cache

_NO_CACHE_LOCATOR = """
import numba.core.caching as caching
def _not_writable(self):
    raise PermissionError(13, "Permission denied")
caching._CacheLocator.ensure_cache_path = _not_writable  # HOME and the package folder read-only
"""

_CACHE_DISK_FULL = """
import errno, os
import numba.core.caching as caching
def _full(self, *args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
caching.IndexDataCacheFile.save = _full
"""


def test_unwritable_numba_cache_still_works_and_warns_once(hostile) -> None:
    # --method guided: the default (auto) may leave these masks at naive upsampling, compiling no kernel
    result = hostile.run(
        *hostile.apply_args("refined", "--method", "guided"),
        exit=0,
        out=["refined"],
        prelude=_NO_CACHE_LOCATOR,
    )
    assert result.stderr.count("numba cannot cache") == 1
    assert "set NUMBA_CACHE_DIR to a writable folder" in result.stderr
    assert len(list(hostile.path("refined").iterdir())) == 3


def test_full_numba_cache_disk_still_works(hostile) -> None:
    cache = hostile.root.parent / "numba-cache"  # a fresh cache: every kernel is compiled and saved
    result = hostile.run(
        *hostile.apply_args("refined", "--jobs", "2", "--method", "guided"),
        exit=0,
        out=["refined"],
        prelude=_CACHE_DISK_FULL,
        env={"NUMBA_CACHE_DIR": str(cache)},
        timeout=300,
    )
    assert result.stderr.count("numba cannot cache") == 1 and "No space left on device" in result.stderr
    # NUMBA_CACHE_DIR is set: the advice names it instead of telling to set it
    assert f"NUMBA_CACHE_DIR={str(cache)!r} cannot be used: point it to a writable folder" in result.stderr
    assert len(list(hostile.path("refined").iterdir())) == 3


_REPORT_HEAVY_MODULES = """
import atexit, sys
atexit.register(lambda: print("loaded:", sorted(m for m in ("numba", "cv2", "torch") if m in sys.modules)))
"""


@pytest.mark.parametrize(
    "args", [["--version"], ["--help"], ["apply", "--help"], ["score", "--help"]], ids=" ".join
)
def test_version_and_help_import_neither_numba_nor_opencv(hostile, args: list[str]) -> None:
    result = hostile.run(*args, exit=0, prelude=_REPORT_HEAVY_MODULES)
    assert "loaded: []" in result.stdout


def test_version_works_with_a_broken_numba_cache(hostile) -> None:
    result = hostile.run("--version", exit=0, prelude=_NO_CACHE_LOCATOR)
    assert "maskrefine" in result.stdout


# ------------------------------------------------------------------------ limits


@pytest.mark.parametrize(
    "extra, name",
    [
        (["--method", "guided", "--radius", "1000000"], "radius"),
        (["--method", "guided", "--radius", "100000000000000000000"], "radius"),
        (["--method", "fast_guided", "--subsample", "100000000000000000000"], "subsample"),
    ],
    ids=["radius-1e6", "radius-1e20", "subsample-1e20"],
)
def test_huge_parameters_are_usage_errors_before_any_work(hostile, extra: list[str], name: str) -> None:
    started = time.monotonic()
    hostile.run(*hostile.apply_args("refined", *extra, "--jobs", "2"), exit=2, names=[name, "<="])
    assert time.monotonic() - started < 60  # no image-sized warm-up
    assert not hostile.path("refined").exists()


@pytest.mark.parametrize("command", ["apply", "score"])
def test_huge_jobs_are_usage_errors_before_any_work(hostile, command: str) -> None:
    # before: accepted; the pool started min(jobs, files) processes, one per file of a large folder
    huge = ("--jobs", "100000")
    args = (
        hostile.apply_args("refined", *huge)
        if command == "apply"
        else hostile.score_args("--csv", "s.csv", *huge)
    )
    hostile.run(*args, exit=2, names=["jobs", "<= 1024"])
    assert not hostile.path("refined").exists() and not hostile.path("s.csv").exists()


def test_tune_refuses_huge_jobs() -> None:
    from maskrefine.quality.grid import evaluate

    with pytest.raises(ValueError, match=r"jobs must be <= 1024"):
        evaluate([], [], jobs=100_000)


def test_warm_up_stays_small_for_the_largest_radius(hostile) -> None:
    # -j 2 forks after a warm-up; with the largest accepted radius it must not build an image sized to it
    prelude = """
import resource
resource.setrlimit(resource.RLIMIT_AS, (3 * 1024**3, 3 * 1024**3))  # a huge warm-up would fail here
"""
    result = hostile.run(
        *hostile.apply_args("refined", "--method", "guided", "--radius", "10000", "--jobs", "2"),
        exit=1,
        names=["0001.png", "window"],
        out=["refined"],
        prelude=prelude,
    )
    assert "MemoryError" not in result.stderr and result.stderr.count("cannot refine") == 3


@pytest.mark.parametrize("shard", ["²/4", "1/٤", "１/2"])
def test_unicode_digits_in_shard_are_a_usage_error(hostile, shard: str) -> None:
    hostile.run(*hostile.apply_args("refined", "--shard", shard), exit=2, names=["--shard"])


@pytest.mark.parametrize("shard", ["1/" + "9" * 5000, "1/1000001", "9" * 30 + "/" + "9" * 31])
def test_huge_shard_count_is_a_usage_error(hostile, shard: str) -> None:
    # a 5000-digit N used to end in Python's int-conversion ValueError (a traceback, exit 1)
    result = hostile.run(*hostile.apply_args("refined", "--shard", shard), exit=2, names=["--shard"])
    assert "at most 1000000" in result.stderr and len(result.stderr) < 1000


# ------------------------------------------------------------------------ names that are not UTF-8


def _non_utf8_copies(hostile, folders: tuple[str, ...]) -> bytes:
    name = b"\xff\xfebad.png"
    for folder in folders:
        data = (hostile.path(folder) / "0001.png").read_bytes()
        with open(os.path.join(os.fsencode(hostile.path(folder)), name), "wb") as handle:
            handle.write(data)
    return name


def test_score_csv_keeps_results_with_non_utf8_names(hostile) -> None:
    name = _non_utf8_copies(hostile, ("pred", "gt"))
    hostile.run(
        *hostile.score_args("--csv", "s.csv", "--json", "s.json", "--shard", "1/1"),
        exit=0,
        out=["s.csv", "s.json"],
    )
    rows = hostile.path("s.csv").read_bytes().splitlines()
    assert len(rows) == 1 + 4 and any(row.startswith(name[:-4] + b",") for row in rows)
    assert json.loads(hostile.path("s.json").read_text())["count"] == 4


@pytest.mark.parametrize("baseline", [False, True])
def test_score_csv_rows_stay_whole_for_names_with_line_breaks(hostile, baseline) -> None:
    # was: a name holding "\r" was written unquoted (csv quotes only the "\n" terminator's characters),
    # so every csv reader split its row in two
    import csv
    import io

    for folder in ("pred", "gt"):
        for name in ("cr\rx.png", "lf\nx.png", "both\r\nx.png"):
            (hostile.path(folder) / name).write_bytes((hostile.path(folder) / "0001.png").read_bytes())
    extra = ("--baseline", str(hostile.path("pred"))) if baseline else ()
    hostile.run(*hostile.score_args("--csv", "s.csv", *extra), exit=0, out=["s.csv"])
    rows = list(csv.reader(io.StringIO(hostile.path("s.csv").read_bytes().decode(), newline="")))
    assert len({len(row) for row in rows}) == 1  # every row has the header's columns
    names = {row[0] for row in rows[1:]}
    assert {"cr\rx", "lf\nx", "both\r\nx"} <= names
    assert len(rows) == 1 + len(names)


def test_apply_report_keeps_results_with_non_utf8_names(hostile) -> None:
    name = _non_utf8_copies(hostile, ("masks", "images"))
    hostile.run(
        *hostile.apply_args("refined", *APPLY_IDENTITY, "--report", "r.json", "--shard", "1/1"),
        exit=0,
        out=["refined", "r.json"],
    )
    assert name in os.listdir(os.fsencode(hostile.path("refined")))
    assert json.loads(hostile.path("r.json").read_text())["counts"]["written"] == 4


# ------------------------------------------------------------------------ messages


def test_score_interrupted_does_not_suggest_skip_existing(hostile) -> None:
    prelude = """
import maskrefine.metrics.evaluator as evaluator
def _interrupted(self, *args, **kwargs):
    raise KeyboardInterrupt
evaluator.Evaluator.step = _interrupted
"""
    result = hostile.run(*hostile.score_args(), exit=130, names=["interrupted"], prelude=prelude)
    assert "--skip-existing" not in result.stderr


def test_opencv_log_lines_are_silenced(hostile) -> None:
    good = hostile.path("masks/0002.png").read_bytes()
    hostile.path("masks/0002.png").write_bytes(good[: len(good) - 20])  # truncated PNG: OpenCV warns
    result = hostile.run(
        *hostile.apply_args("refined", *APPLY_IDENTITY), exit=1, names=["masks/0002.png"], out=["refined"]
    )
    assert "WARN:" not in result.stderr and "[ERROR:" not in result.stderr


@pytest.mark.parametrize("case", ["no-partners", "empty-folders", "all-failed"])
def test_score_with_nothing_scored_exits_1_and_says_why(hostile, case: str) -> None:
    if case == "no-partners":
        for path in hostile.path("gt").iterdir():
            path.rename(path.with_name("other-" + path.name))
    elif case == "empty-folders":
        for folder in ("pred", "gt"):
            for path in hostile.path(folder).iterdir():
                path.unlink()
    else:
        for path in hostile.path("pred").iterdir():
            path.write_bytes(b"not an image")
    result = hostile.run(
        *hostile.score_args("--json", "s.json"), exit=1, names=["nothing was scored"], out=["s.json"]
    )
    summary = json.loads(hostile.path("s.json").read_text())
    assert summary["ok"] is False and summary["count"] == 0 and "nothing was scored" in summary["error"]
    assert "error:" in result.stderr


def test_output_folder_that_is_a_symlink_loop_is_named_as_one(hostile) -> None:
    # was called "a dangling symbolic link"
    os.symlink("loopB", hostile.path("loopA"))
    os.symlink("loopA", hostile.path("loopB"))
    result = hostile.run(*hostile.apply_args("loopA", *APPLY_IDENTITY), exit=2, names=["loopA"])
    assert "is a symbolic link loop" in result.stderr


@needs_matplotlib
def test_score_montage_names_an_image_that_is_not_a_regular_file(hostile) -> None:
    # was: a FIFO among the montage images was taken for a missing image (exit 0, nothing said)
    for stem in ("0001", "0002", "0003"):
        hostile.path(f"pimages/{stem}.png").parent.mkdir(exist_ok=True)
        hostile.path(f"pimages/{stem}.png").write_bytes(hostile.path(f"images/{stem}.png").read_bytes())
    hostile.path("pimages/0002.png").unlink()
    os.mkfifo(hostile.path("pimages/0002.png"))
    result = hostile.run(
        *hostile.score_args("--plot", "plots", "--images", "pimages"),
        exit=1,
        names=["pimages/0002.png", "montage"],
        out=["plots"],
        timeout=60,
    )
    assert "not a regular file" in result.stderr or "FIFO" in result.stderr
    assert hostile.path("plots/montage.png").is_file()  # the other images are still shown


@needs_matplotlib
def test_score_montage_finds_images_as_the_pairing_does(hostile, monkeypatch) -> None:
    """Suffixes in any case (``a.Jpg``) are found; two images for one stem are named, not picked at will."""
    from maskrefine import plots

    shown: dict[str, bool] = {}
    real = plots.plot_montage

    def spy(entries, *args, **kwargs):
        shown.update({entry.stem: entry.image is not None for entry in entries})
        return real(entries, *args, **kwargs)

    monkeypatch.setattr(plots, "plot_montage", spy)
    folder = hostile.path("pimages")
    folder.mkdir()
    image = hostile.path("images/0001.png").read_bytes()
    (folder / "0001.Png").write_bytes(image)  # was: not found (only .png / .PNG were tried)
    (folder / "0002.pNG").write_bytes(hostile.path("images/0002.png").read_bytes())
    (folder / "0003.png").write_bytes(hostile.path("images/0003.png").read_bytes())
    (folder / "0003.bmp").write_bytes(b"BM")  # a second image for 0003: ambiguous
    from maskrefine.pipeline import score_folder

    report = score_folder(
        hostile.path("masks"),
        hostile.path("masks"),
        plot_dir=hostile.path("plots"),
        images_dir=folder,
        montage_count=3,
        jobs=1,
    )
    assert shown == {"0001": True, "0002": True}  # 0003 is left out of the montage and named
    (failure,) = [f for f in report.failures if "0003" in f.problem]
    assert "several image files for '0003' (0003.bmp, 0003.png)" in failure.problem
    assert failure.problem.startswith("montage: ")


@needs_matplotlib
def test_score_plots_show_names_with_dollar_signs_as_typed(hostile) -> None:
    # was: matplotlib read "price$\notacommand$x" as math text and raised: a traceback, and the CSV and
    # JSON were never written
    name = "price$\\notacommand$x"
    for folder in ("pred", "gt", "images"):
        (hostile.path(folder) / f"{name}.png").write_bytes((hostile.path(folder) / "0001.png").read_bytes())
    run_dir = hostile.path("run$\\bad$")  # the pred folder's name is the PR curve's title
    hostile.path("pred").rename(run_dir)
    hostile.run(
        "score",
        "--pred",
        str(run_dir),
        "--gt",
        "gt",
        "--jobs",
        "1",
        "--plot",
        "plots",
        "--images",
        "images",
        "--csv",
        "s.csv",
        "--json",
        "s.json",
        exit=0,
        out=["plots", "s.csv", "s.json"],
    )
    assert hostile.path("plots/pr_curve.png").is_file() and hostile.path("plots/montage.png").is_file()
    assert json.loads(hostile.path("s.json").read_text())["count"] == 4  # 3 stems and the dollar one


def test_literal_escapes_every_dollar_sign() -> None:
    from maskrefine.plots import _literal

    assert _literal("a$b$c") == "a\\$b\\$c" and _literal(None) is None and _literal("plain") == "plain"


# ------------------------------------------------------- a second path to an input folder (bind mount)


@pytest.fixture
def masks_alias(hostile):
    """``alias/``: the masks folder bind-mounted a second time (skips where mounting is not allowed)."""
    import shutil
    import subprocess

    alias = hostile.path("alias")
    alias.mkdir()
    mount = shutil.which("mount")
    if mount is None:
        pytest.skip("no `mount` command: cannot make a second path to a folder")
    done = subprocess.run([mount, "--bind", str(hostile.path("masks")), str(alias)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount here (not root or no CAP_SYS_ADMIN): {done.stderr.decode().strip()}")
    try:
        yield alias
    finally:
        subprocess.run(["umount", str(alias)], check=True)


@pytest.mark.parametrize("out", ["alias", "alias/sub"])
@pytest.mark.parametrize("flag", [(), ("--overwrite",), ("--skip-existing",)])
def test_apply_refuses_an_output_folder_that_is_the_masks_folder_by_another_path(
    hostile, masks_alias, out: str, flag: tuple[str, ...]
) -> None:
    # only symlinks were resolved: with --overwrite the input masks were replaced by refined ones, and
    # --skip-existing took the inputs for finished outputs (exit 0)
    result = hostile.run(*hostile.apply_args(out, *APPLY_IDENTITY, *flag), exit=2, names=[out])
    assert "choose a separate output folder" in result.stderr


@pytest.mark.parametrize("shard", ["1/2", "2/2"])
def test_apply_report_named_like_any_shards_output_is_refused(hostile, shard: str) -> None:
    # only the current shard's outputs were compared: the shard without 0001 wrote its report as
    # refined/0001.png, and the other shard then skipped it as done (the union was not the full run)
    hostile.path("refined").mkdir()
    result = hostile.run(
        *hostile.apply_args("refined", *APPLY_IDENTITY, "--shard", shard, "--report", "refined/0001.png"),
        exit=2,
        names=["refined/0001.png"],
    )
    assert "is also the output of '0001'" in result.stderr


@pytest.mark.parametrize(("signal_name", "code"), [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_stop_signal_with_jobs_1_finishes_the_file_in_progress(hostile, signal_name, code) -> None:
    # -j 1 runs in the CLI process: the stop raised mid-file and dropped the file in progress, where the
    # docs promise it is finished and published as with workers. The signal is sent from inside the
    # second file's work, so the test does not depend on timing.
    prelude = (
        "import os, signal\n"
        "import maskrefine.pipeline.apply as job\n"
        "original, calls = job._apply_one, []\n"
        "def one(task):\n"
        "    calls.append(task)\n"
        "    if len(calls) == 2:\n"
        f"        os.kill(os.getpid(), signal.{signal_name})  # arrives while this file is in progress\n"
        "    return original(task)\n"
        "job._apply_one = one\n"
    )
    result = hostile.run(
        *hostile.apply_args("refined", *APPLY_IDENTITY, "-j", "1"),
        exit=code,
        out=["refined"],
        prelude=prelude,
    )
    assert "--skip-existing" in result.stderr
    assert sorted(p for p in result.changed if p.startswith("refined/")) == [
        "refined/0001.png",
        "refined/0002.png",
    ]
