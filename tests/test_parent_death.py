"""maskrefine._parent_death: a child process ends with its parent (the kill -9 cases are tested where it
is used: the worker pool in test_pipeline.py, the compile split in test_first_compile.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from maskrefine import _parent_death


def test_a_child_whose_parent_is_already_gone_exits_at_once() -> None:
    # the pid given is not this process's parent: as if the parent had died before the call
    code = "import os, sys; from maskrefine._parent_death import exit_with_parent; "
    code += "exit_with_parent(os.getppid() + 1000000); print('went on')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and proc.stdout == "", proc.stderr


def test_a_child_whose_parent_lives_goes_on() -> None:
    code = "import os; from maskrefine._parent_death import exit_with_parent; "
    code += f"exit_with_parent({os.getpid()}); print('went on')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stdout == "went on\n", proc.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux-only")
def test_the_death_signal_is_armed_on_linux() -> None:
    code = "from maskrefine._parent_death import set_parent_death_signal; import signal; "
    code += "print(set_parent_death_signal(signal.SIGKILL))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.stdout == "True\n", proc.stderr


def test_elsewhere_the_death_signal_reports_it_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert _parent_death.set_parent_death_signal(9) is False
