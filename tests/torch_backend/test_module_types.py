"""`GuidedFilter()(guide, src)` is typed for mypy (nn.Module.__call__ is typed Any)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")
pytest.importorskip("mypy", reason="mypy is in the [dev] extra")

import maskrefine  # noqa: E402

SCRIPT = """
import torch
from maskrefine.torch import GuidedFilter

out = GuidedFilter(2, 1e-3)(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))
reveal_type(out)
GuidedFilter(2, 1e-3)(torch.rand(1, 1, 8, 8), "mask")
"""


@pytest.mark.slow  # mypy reads torch's stubs: about 30 s
def test_calling_the_module_is_typed(tmp_path: Path) -> None:
    script = tmp_path / "user.py"
    script.write_text(SCRIPT, encoding="utf-8")
    root = Path(maskrefine.__file__).resolve().parent.parent
    env = {**os.environ, "MYPYPATH": str(root)}
    command = [sys.executable, "-m", "mypy", "--follow-imports=silent", "--no-incremental"]
    out = subprocess.run(
        [*command, "--cache-dir", str(tmp_path / "cache"), str(script)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("user.py:")]
    assert any('Revealed type is "torch._tensor.Tensor"' in line for line in lines), out.stdout
    errors = [line for line in lines if ": error:" in line]
    assert len(errors) == 1 and "user.py:7:" in errors[0] and 'expected "Tensor"' in errors[0], out.stdout
