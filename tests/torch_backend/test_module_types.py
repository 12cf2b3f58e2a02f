"""`GuidedFilter()(guide, src)` is typed for mypy (nn.Module.__call__ is typed Any)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")
pytest.importorskip("mypy", reason="mypy is in the [dev] extra")

from _mypy_run import run_mypy  # noqa: E402

SCRIPT = """
import torch
from maskrefine.torch import GuidedFilter

out = GuidedFilter(2, 1e-3)(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))
reveal_type(out)
GuidedFilter(2, 1e-3)(torch.rand(1, 1, 8, 8), "mask")
"""


@pytest.mark.slow  # mypy reads torch's stubs: about 30 s
def test_calling_the_module_is_typed(tmp_path: Path) -> None:
    lines, stdout = run_mypy(tmp_path, SCRIPT)
    assert any('Revealed type is "torch._tensor.Tensor"' in line for line in lines), stdout
    errors = [line for line in lines if ": error:" in line]
    assert len(errors) == 1 and "user.py:7:" in errors[0] and 'expected "Tensor"' in errors[0], stdout
