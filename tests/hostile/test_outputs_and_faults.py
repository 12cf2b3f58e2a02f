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
