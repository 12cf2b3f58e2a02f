"""CLI tests in real subprocesses (``python -m maskrefine.cli`` and the ``maskrefine`` console script).

What CliRunner cannot show: exit statuses and stderr of a real process, no traceback on the real stderr,
the progress line on a real terminal (pty) and its absence on a pipe, and what ``kill -9`` in the middle of
a run leaves behind.

Interrupted runs. Outputs are written to a hidden temporary file in the output folder
(``.<name>.<random>.tmp``) and renamed into place, so after ``kill -9`` every file with a final name is
complete. SIGKILL gives the process no chance to clean up, so at most one temporary file per worker may be
left behind. We accept that: they are hidden, never carry an output's name, are ignored by folder pairing
and by ``--skip-existing``, and can be deleted with ``rm out/.*.tmp``. The rerun with ``--skip-existing``
completes the set. With ``-j 2`` the forked pool workers end by themselves when the parent dies, even by
``kill -9`` of the parent alone (they hold at most the file they were writing), and they ignore Ctrl-C:
the parent alone handles it, cancels the queued files and exits 130 without a traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from _processes import process_alive, survivors_after

CLI = [sys.executable, "-m", "maskrefine.cli"]
H, W = 48, 64
TMP_NAME = re.compile(r"^\..+\.tmp$")


def run_cli(*args: object, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *(str(a) for a in args)], capture_output=True, text=True, timeout=timeout, **kwargs
    )


def tree_hash(*folders: Path) -> dict[str, str]:
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for folder in folders
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def make_pairs(root: Path, count: int, h: int = H, w: int = W, stem_fmt: str = "{:04d}") -> tuple[Path, Path]:
    """``count`` pairs; one encoded image and one encoded mask are reused (fast to build)."""
    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    disc = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (min(h, w) / 3) ** 2).astype(np.float64)
    pixels = np.clip(disc[:, :, None] * 180 + 40 + rng.normal(0, 10, (h, w, 3)), 0, 255).astype(np.uint8)
    ok, image_bytes = cv2.imencode(".jpg", pixels)
    assert ok
    mask = cv2.resize(disc, (max(1, w // 8), max(1, h // 8)), interpolation=cv2.INTER_AREA)
    ok, mask_bytes = cv2.imencode(".png", np.rint(mask * 255).astype(np.uint8))
    assert ok
    for i in range(count):
        stem = stem_fmt.format(i)
        (images / f"{stem}.jpg").write_bytes(image_bytes.tobytes())
        (masks / f"{stem}.png").write_bytes(mask_bytes.tobytes())
    return masks, images


def assert_no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr


def final_outputs(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if not p.name.startswith("."))


def assert_complete_png(path: Path, shape: tuple[int, int]) -> None:
    data = path.read_bytes()
    assert data.endswith(b"IEND\xaeB`\x82"), f"{path} is not a complete PNG"
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert pixels is not None and pixels.shape == shape


# --------------------------------------------------------------------------------------------- exit codes


def test_exit_codes_and_messages(tmp_path: Path) -> None:
    masks, images = make_pairs(tmp_path, 5)
    (masks / "0002.png").write_bytes(b"")  # bad file
    np.save(masks / "0003.npy", np.full((H // 8, W // 8), np.nan, np.float32))  # duplicate stem 0003
    (images / "9999.jpg").write_bytes((images / "0000.jpg").read_bytes())  # unmatched image
    inputs = tree_hash(masks, images)
    out = tmp_path / "out"

    proc = run_cli(
        "apply", "--masks", masks, "--images", images, "--out", out, "--method", "identity", "-j", "2"
    )
    assert_no_traceback(proc)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "0002.png" in errors[0] and "empty" in errors[0]
    assert "9999.jpg" in proc.stderr and "0003.npy" in proc.stderr
    assert "written 3, skipped 0, failed 1, unmatched 1, duplicates 1" in proc.stdout
    assert [p.name for p in final_outputs(out)] == ["0000.png", "0001.png", "0004.png"]
    assert tree_hash(masks, images) == inputs

    # A usage problem found by the library (ConfigError): exit 2, no traceback, nothing written.
    proc = run_cli(
        "apply", "--masks", masks, "--images", images, "--out", masks / "sub", "--method", "identity"
    )
    assert_no_traceback(proc)
    assert proc.returncode == 2 and "masks" in proc.stderr and not (masks / "sub").exists()

    # click's own usage error.
    proc = run_cli("apply", "--masks", masks, "--images", images, "--out", out, "--shard", "5/4")
    assert_no_traceback(proc)
    assert proc.returncode == 2 and "--shard" in proc.stderr and "5/4" in proc.stderr
    assert tree_hash(masks, images) == inputs


def test_report_paths_over_inputs_exit_2_before_writing(tmp_path: Path) -> None:
    masks, images = make_pairs(tmp_path, 3)
    inputs = tree_hash(masks, images)
    out = tmp_path / "out"
    apply = ["apply", "--masks", masks, "--images", images, "--out", out, "--method", "identity"]
    for report in (masks / "0000.png", images / "run.json"):  # an input file; inside an input folder
        proc = run_cli(*apply, "--report", report)
        assert_no_traceback(proc)
        assert proc.returncode == 2 and "report file" in proc.stderr, proc.stderr
        assert not out.exists() and tree_hash(masks, images) == inputs
    proc = run_cli("score", "--pred", masks, "--gt", masks, "--csv", masks / "0001.png")
    assert_no_traceback(proc)
    assert proc.returncode == 2 and "CSV file" in proc.stderr, proc.stderr
    proc = run_cli("score", "--pred", masks, "--gt", masks, "--json", masks / "sub" / "s.json")
    assert_no_traceback(proc)
    assert proc.returncode == 2 and "JSON file" in proc.stderr, proc.stderr
    assert tree_hash(masks, images) == inputs and not (masks / "sub").exists()


def test_unmatched_only_is_success(tmp_path: Path) -> None:
    masks, images = make_pairs(tmp_path, 3)
    (masks / "lonely.png").write_bytes((masks / "0000.png").read_bytes())
    proc = run_cli(
        "apply", "--masks", masks, "--images", images, "--out", tmp_path / "o", "--method", "identity"
    )
    assert_no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert "lonely.png" in proc.stderr and "unmatched 1" in proc.stdout


def test_console_script_version() -> None:
    script = Path(sys.executable).with_name("maskrefine")
    if not script.exists():
        script_path = shutil.which("maskrefine")
        if script_path is None:
            pytest.skip("the `maskrefine` console script is not installed (pip install -e .)")
        script = Path(script_path)
    proc = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("maskrefine ")


# --------------------------------------------------------------------------------------------- progress


def test_no_progress_on_a_pipe(tmp_path: Path) -> None:
    masks, images = make_pairs(tmp_path, 6)
    proc = run_cli(
        "apply", "--masks", masks, "--images", images, "--out", tmp_path / "o", "--method", "identity"
    )
    assert proc.returncode == 0
    assert "\r" not in proc.stderr and "[#" not in proc.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pty test written for Linux")
def test_progress_on_a_terminal_and_quiet(tmp_path: Path) -> None:
    import pty

    masks, images = make_pairs(tmp_path, 6)
    seen = {}
    for quiet in (False, True):
        master, slave = pty.openpty()
        out = tmp_path / f"o{quiet}"
        args = ["apply", "--masks", masks, "--images", images, "--out", out, "--method", "identity"]
        args += ["--quiet"] if quiet else []
        proc = subprocess.Popen([*CLI, *map(str, args)], stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO once the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(master)
        assert proc.wait(timeout=120) == 0
        seen[quiet] = b"".join(chunks).decode(errors="replace")
    assert "\r" in seen[False] and "6/6" in seen[False]
    assert "\r" not in seen[True] and "6/6" not in seen[True]


# --------------------------------------------------------------------------------------------- kill -9


def _start_and_wait_for(args: list[object], out: Path, at_least: int, total: int) -> subprocess.Popen[bytes]:
    # Own session, so that the whole job (the CLI and its pool workers) can be signalled as a group.
    proc = subprocess.Popen(
        [*CLI, *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if out.exists() and len(final_outputs(out)) >= at_least:
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.002)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    pytest.fail(
        f"the run ended or stalled before {at_least} of {total} outputs existed: {proc.stderr.read()!r}"
    )


def _wait_until_still(folder: Path, quiet_s: float = 0.5, limit_s: float = 30.0) -> None:
    """Wait until the listing of ``folder`` has not changed for ``quiet_s`` seconds."""
    deadline = time.monotonic() + limit_s
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        now = sorted(p.name for p in folder.iterdir())
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.05)


def _signal_and_wait(
    proc: subprocess.Popen[bytes], signum: int, *, group: bool, timeout: float = 60
) -> tuple[int, str]:
    """Send ``signum`` to the CLI (``group``: to its whole process group, as a terminal or a scheduler
    does); return its exit code and stderr once it ended (fail the test if it does not)."""
    if group:
        os.killpg(proc.pid, signum)
    else:
        proc.send_signal(signum)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:  # pragma: no cover - failure path
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"the run did not stop after {signal.Signals(signum).name}")
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    return code, stderr


@pytest.mark.parametrize("jobs", [1, 2])
def test_kill_9_leaves_no_partial_output_and_resume_finishes(tmp_path: Path, jobs: int) -> None:
    total, h, w = 150, 480, 640  # real-size frames so that the run is still going when it is killed
    masks, images = make_pairs(tmp_path, total, h=h, w=w)
    inputs = tree_hash(masks, images)
    out = tmp_path / "out"
    args = ["apply", "--masks", masks, "--images", images, "--out", out, "--method", "identity", "-j", jobs]

    proc = _start_and_wait_for(args, out, at_least=5, total=total)
    # kill -9 of the whole job (what a scheduler or `timeout -s KILL` does); the parent alone: see
    # test_workers_end_when_only_the_parent_is_killed
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    proc.stderr.close()
    _wait_until_still(out)  # with -j 2, forked workers may finish the task they hold after the parent dies

    done = final_outputs(out)
    if len(done) == total:
        pytest.skip("the machine finished all files before SIGKILL arrived; nothing to resume")
    assert 5 <= len(done) < total
    for path in done:  # every file with a final name is complete
        assert path.suffix == ".png" and not TMP_NAME.match(path.name)
        assert_complete_png(path, (h, w))
    leftovers = [p for p in out.iterdir() if p.name.startswith(".")]
    assert all(TMP_NAME.match(p.name) for p in leftovers), leftovers
    assert len(leftovers) <= jobs  # at most the file each worker was writing

    resumed = run_cli(*args, "--skip-existing", "--quiet", timeout=300)
    assert_no_traceback(resumed)
    assert resumed.returncode == 0, resumed.stderr
    finished = final_outputs(out)
    assert [p.stem for p in finished] == [f"{i:04d}" for i in range(total)]
    for path in finished:
        assert_complete_png(path, (h, w))
    assert tree_hash(masks, images) == inputs


def test_ctrl_c_exits_130_without_traceback(tmp_path: Path) -> None:
    total = 150
    masks, images = make_pairs(tmp_path, total, h=480, w=640)
    out = tmp_path / "out"
    args = ["apply", "--masks", masks, "--images", images, "--out", out, "--method", "identity", "-j", "1"]
    proc = _start_and_wait_for(args, out, at_least=3, total=total)
    proc.send_signal(signal.SIGINT)  # -j 1: no workers, the CLI process alone
    code = proc.wait(timeout=60)
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    if code == 0:
        pytest.skip("the run finished before SIGINT arrived")
    assert code == 130, stderr
    assert "Traceback" not in stderr and "--skip-existing" in stderr
    for path in final_outputs(out):
        assert_complete_png(path, (480, 640))


# --------------------------------------------------------------------------------------------- workers


def _children(pid: int) -> list[int]:
    """Live (non-zombie) processes whose parent is ``pid``, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.append(int(entry))
    return found


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and relies on fork")


@linux_only
def test_workers_end_when_only_the_parent_is_killed(tmp_path: Path) -> None:
    total = 150
    masks, images = make_pairs(tmp_path, total, h=480, w=640)
    out = tmp_path / "out"
    args = ["apply", "--masks", masks, "--images", images, "--out", out, "--method", "identity", "-j", 2]
    proc = _start_and_wait_for(args, out, at_least=3, total=total)
    workers = _children(proc.pid)
    try:
        if proc.poll() is not None:
            pytest.skip("the run finished before the workers could be found")
        assert len(workers) == 2, workers
        os.kill(proc.pid, signal.SIGKILL)  # the parent only, not its process group
        assert proc.wait(timeout=60) == -signal.SIGKILL
        assert not survivors_after(workers, 5), "pool workers outlived their parent"
    finally:
        for pid in workers:  # never leave them behind, even when the test fails
            if process_alive(pid):
                os.kill(pid, signal.SIGKILL)
        proc.stderr.close()


@linux_only
@pytest.mark.parametrize(
    ("signum", "jobs", "group"),
    [
        (signal.SIGINT, 2, True),
        (signal.SIGTERM, 1, False),
        (signal.SIGTERM, 2, True),
        (signal.SIGTERM, 2, False),
    ],
)
def test_a_stop_signal_with_workers_finishes_the_files_in_progress(
    tmp_path: Path, signum: int, jobs: int, group: bool
) -> None:
    # Ctrl-C reaches the whole foreground group. SIGTERM is how a scheduler ends a job (Slurm: time
    # limit, scancel, preemption; to every process of the job, hence `group`): it killed the CLI
    # mid-file with no message and left temporary files. Now either stops the same way: the files in
    # progress are finished, the pool is shut down, nothing is half-written and the resume completes.
    name, exit_code = ("SIGTERM", 143) if signum == signal.SIGTERM else ("SIGINT", 130)
    total, h, w = 150, 480, 640
    masks, images = make_pairs(tmp_path, total, h=h, w=w)
    out = tmp_path / "out"
    args = ["apply", "--masks", masks, "--images", images, "--out", out, "--method", "identity", "-j", jobs]
    proc = _start_and_wait_for(args, out, at_least=3, total=total)
    workers = _children(proc.pid)
    code, stderr = _signal_and_wait(proc, signum, group=group)
    if code == 0:
        pytest.skip(f"the run finished before {name} arrived")
    assert code == exit_code, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    said = "terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted"
    assert said in stderr and "--skip-existing" in stderr, stderr
    assert "worker died" not in stderr, stderr  # the workers ignored it and finished their files
    assert not [pid for pid in workers if process_alive(pid)]
    done = final_outputs(out)
    assert 3 <= len(done) < total
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left
    for path in done:
        assert_complete_png(path, (h, w))
    resumed = run_cli(*args, "--skip-existing", "--quiet", timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert [p.stem for p in final_outputs(out)] == [f"{i:04d}" for i in range(total)]


@linux_only
def test_ctrl_c_reaches_an_idle_worker_without_traceback(tmp_path: Path) -> None:
    # One large and one tiny file with -j 2: one worker is busy with the large file while the other,
    # done with the tiny one, waits for work. Before workers ignored SIGINT, the idle one died of
    # KeyboardInterrupt with a traceback and the busy one abandoned its file.
    images, masks, out = tmp_path / "images", tmp_path / "masks", tmp_path / "out"
    images.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(0)
    sizes = {"0000": (2400, 3200), "0001": (H, W)}
    for stem, (h, w) in sizes.items():
        assert cv2.imwrite(str(images / f"{stem}.jpg"), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        assert cv2.imwrite(str(masks / f"{stem}.png"), rng.integers(0, 256, (h // 8, w // 8), dtype=np.uint8))
    args = ["apply", "--masks", masks, "--images", images, "--out", out, "--method", "guided", "-j", 2]
    proc = _start_and_wait_for(args, out, at_least=1, total=2)
    time.sleep(0.05)  # the tiny file's worker is back to waiting for work
    code, stderr = _signal_and_wait(proc, signal.SIGINT, group=True, timeout=120)
    if code == 0:
        pytest.skip("the large file was done before SIGINT arrived")
    assert code == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    # the file in progress was finished, not abandoned
    assert [p.name for p in final_outputs(out)] == ["0000.png", "0001.png"], stderr
    assert_complete_png(out / "0000.png", sizes["0000"])


# --------------------------------------------------------------------------------------------- shards


def test_shards_via_cli_cover_everything_once(tmp_path: Path) -> None:
    masks, images = make_pairs(tmp_path, 17, stem_fmt="img_{}")
    names: list[str] = []
    for k in (1, 2, 3, 4):
        out = tmp_path / f"shard{k}"
        proc = run_cli(
            "apply",
            "--masks",
            masks,
            "--images",
            images,
            "--out",
            out,
            "--shard",
            f"{k}/4",
            "--method",
            "identity",
        )
        assert proc.returncode == 0, proc.stderr
        names += [p.name for p in final_outputs(out)] if out.exists() else []
    assert sorted(names) == sorted(f"img_{i}.png" for i in range(17))
    assert len(names) == len(set(names))


# ------------------------------------------------------------------------------- Ctrl-C at start-up

_INTERRUPT_ON_IMPORT = """
import importlib.abc, os, signal, sys
class _Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == {module!r}:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)  # what a Ctrl-C at that very moment does
        return None
sys.meta_path.insert(0, _Hook())
sys.argv = ["maskrefine", *sys.argv[1:]]
from maskrefine._entry import main
main()
"""


@pytest.mark.parametrize(
    ("module", "command"),
    [
        ("maskrefine.auto", ["apply"]),  # while the CLI module itself imports
        ("maskrefine.pipeline", ["apply"]),  # while a command imports its job (numba, OpenCV)
        ("maskrefine.quality.tune", ["tune"]),
    ],
)
def test_ctrl_c_during_start_up_exits_130_without_traceback(
    tmp_path: Path, module: str, command: list[str]
) -> None:
    # it was a KeyboardInterrupt traceback (killed by SIGINT), or click's "Aborted!" with exit code 1
    masks, images = make_pairs(tmp_path, 2)
    args = ["--masks", masks, "--images", images]
    args += (
        ["--out", tmp_path / "out"] if command == ["apply"] else ["--gt", masks, "--out", tmp_path / "b.toml"]
    )
    code = _INTERRUPT_ON_IMPORT.format(module=module)
    proc = subprocess.run(
        [sys.executable, "-c", code, *command, *(str(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 130, proc.stderr
    assert "Traceback" not in proc.stderr and "Aborted" not in proc.stderr
    assert "interrupted" in proc.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "b.toml").exists()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("args", [["--version"], ["--help"], ["apply", "--help"]])
def test_a_standard_output_that_cannot_be_written_is_one_line_not_a_traceback(args: list[str]) -> None:
    # `maskrefine ... > /dev/full` ended in an OSError traceback (ENOSPC) from click.echo
    code = f"import sys; sys.argv = ['maskrefine', *{args!r}]; from maskrefine._entry import main; main()"
    with open("/dev/full", "wb") as full:
        done = subprocess.run([sys.executable, "-c", code], stdout=full, stderr=subprocess.PIPE, timeout=120)
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    assert stderr == "error: cannot write to standard output (No space left on device)\n"


@pytest.mark.parametrize("args", [["--version"], ["score", "--pred", "p", "--gt", "g"]])
def test_a_closed_standard_output_stops_before_any_work(args: list[str], tmp_path: Path) -> None:
    # `maskrefine score ... >&-`: click printed the scores into nothing and exited 0 (`--version` was a
    # traceback)
    (tmp_path / "p").mkdir()
    (tmp_path / "g").mkdir()
    code = f"import sys; sys.argv = ['maskrefine', *{args!r}]; from maskrefine._entry import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120,
        cwd=tmp_path, preexec_fn=lambda: os.close(1),
    )  # fmt: skip
    stderr = done.stderr.decode()
    assert done.returncode == 1 and "Traceback" not in stderr, stderr
    assert stderr.startswith("error: standard output is closed")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_report_merge_writes_its_json_even_when_stdout_is_full(tmp_path: Path) -> None:
    # the summary was printed first: its ENOSPC ended the command before the merged JSON was written
    masks, images = make_pairs(tmp_path, 4)
    reports = []
    for k in (1, 2):
        report = tmp_path / f"s{k}.json"
        args = ["apply", "--masks", masks, "--images", images, "--out", tmp_path / "out", "--shard", f"{k}/2"]
        assert run_cli(*args, "--report", report, "-q").returncode == 0
        reports.append(report)
    merged = tmp_path / "merged.json"
    code = "import sys; from maskrefine._entry import main; main()"
    argv = ["report", "merge", *map(str, reports), "--json", str(merged)]
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            [sys.executable, "-c", code, *argv], stdout=full, stderr=subprocess.PIPE, timeout=120
        )
    assert done.returncode == 1
    assert "error: cannot write to standard output (No space left on device)" in done.stderr.decode()
    assert json.loads(merged.read_text())["counts"]["written"] == 4


def test_version_is_answered_without_numpy_and_reads_as_the_commands_own() -> None:
    # `maskrefine --version` imported the whole command module, NumPy included (~0.09 s of its 0.25 s);
    # the entry point now answers it alone, and must print exactly what click's --version option prints
    from click.testing import CliRunner

    from maskrefine.cli import main as cli_main

    code = (
        "import sys; sys.argv = ['maskrefine', '--version']\n"
        "from maskrefine._entry import main; main()\n"
        "print(sorted(m for m in ('numpy', 'click', 'numba', 'cv2') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    version_line, loaded = done.stdout.splitlines()
    assert loaded == "[]"
    assert version_line + "\n" == CliRunner().invoke(cli_main, ["--version"], prog_name="maskrefine").output


@pytest.mark.parametrize("command", ["--version", "apply", "usage error"])
def test_the_command_ends_without_the_collectors_walks_over_what_it_loaded(
    command: str, tmp_path: Path
) -> None:
    # the interpreter's shutdown walked the ~120 000 objects an `apply` leaves (numba's above all) in
    # several garbage collections: 0.2 s of a 1 s warm `apply`. The entry point freezes them first, on
    # every way out (a normal end, click's SystemExit, an error), and what the command wrote is complete.
    masks, images = make_pairs(tmp_path, 2)
    args = {
        "--version": ["--version"],
        "apply": ["apply", "--masks", str(masks), "--images", str(images), "--out", str(tmp_path / "out")],
        "usage error": ["apply", "--radius", "many"],
    }[command]
    code = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('frozen:', gc.get_freeze_count() > 0))\n"  # runs after main() ends
        f"sys.argv = ['maskrefine', *{args!r}]\n"
        "from maskrefine._entry import main; main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == (2 if command == "usage error" else 0), done.stderr
    assert done.stdout.splitlines()[-1] == "frozen: True"
    if command == "apply":
        written = sorted((tmp_path / "out").iterdir())
        assert [p.name for p in written] == sorted(p.with_suffix(".png").name for p in masks.iterdir())
        assert all(cv2.imread(str(p), cv2.IMREAD_UNCHANGED) is not None for p in written)


@pytest.mark.parametrize("module", ["maskrefine", "maskrefine.cli"])
def test_python_dash_m_maskrefine_is_the_command(module: str, tmp_path: Path) -> None:
    # `python -m maskrefine` did not exist, and `python -m maskrefine.cli` skipped the entry point's
    # handling (a full stdout gave a traceback)
    out = subprocess.run(
        [sys.executable, "-m", module, "--version"], capture_output=True, text=True, cwd=tmp_path
    )
    assert out.returncode == 0 and out.stdout.startswith("maskrefine"), out
    if os.path.exists("/dev/full"):
        with open("/dev/full", "w") as full:
            bad = subprocess.run(
                [sys.executable, "-m", module, "--version"], stdout=full, stderr=subprocess.PIPE, text=True
            )
        assert bad.returncode == 1 and bad.stderr.startswith("error: cannot write to standard output"), bad


def test_an_undecodable_png_is_decoded_once_so_libpng_complains_once(tmp_path: Path) -> None:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    masks, images = tmp_path / "m", tmp_path / "i"
    masks.mkdir()
    images.mkdir()
    cv2.imwrite(str(masks / "a.png"), np.zeros((H, W), np.uint8))
    # a valid header claiming 900x900 RGB with 50 bytes of pixel data: libpng prints one line per decode
    header = struct.pack(">IIBBBBB", 900, 900, 8, 2, 0, 0, 0)
    short = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 50))
    (images / "a.png").write_bytes(short + chunk(b"IEND", b""))
    result = run_cli("apply", "--masks", masks, "--images", images, "--out", tmp_path / "o", "-j", "1")
    assert result.returncode == 1 and "a.png: cannot decode as an image" in result.stderr, result.stderr
    assert result.stderr.count("libpng error") <= 1, result.stderr
    assert not (tmp_path / "o").exists()
