"""maskrefine._jit: kernel-only helpers and the CLI's skipped BLAS probe."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from maskrefine._jit import njit, njit_inner


@njit_inner(error_model="numpy")
def _scaled_sum(x, factor):
    total = 0.0
    for v in x:
        total += v
    return total * factor


@njit(error_model="numpy")
def _caller(x):
    return _scaled_sum(x, 2.0)


def test_inner_helper_runs_inside_a_kernel() -> None:
    x = np.arange(5, dtype=np.float64)
    assert _caller(x) == 20.0


def test_inner_helper_has_no_python_entry_point() -> None:
    _caller(np.ones(2))  # compiles the helper for float64 arrays
    with pytest.raises(TypeError, match="_scaled_sum is a helper of maskrefine.s numba kernels"):
        _scaled_sum(np.ones(2), 2.0)


def _run(code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_skip_blas_probe_leaves_scipy_linalg_unimported_and_importable() -> None:
    pytest.importorskip("scipy.linalg", reason="SciPy is a runtime dependency")
    out = _run(
        """
        import sys
        from maskrefine._jit import skip_blas_probe
        skip_blas_probe()
        import numba.np.arraymath as am
        print("linalg" in [m.split(".")[1] for m in sys.modules if m.startswith("scipy.")], am._HAVE_BLAS)
        import scipy.linalg
        print(float(scipy.linalg.det([[2.0, 0.0], [0.0, 3.0]])))
        """
    )
    assert out.splitlines() == ["False False", "6.0"]


def test_skip_blas_probe_is_a_no_op_once_scipy_linalg_is_imported() -> None:
    out = _run(
        """
        import scipy.linalg
        from maskrefine._jit import skip_blas_probe
        skip_blas_probe()
        import numba.np.arraymath as am
        print(am._HAVE_BLAS)
        """
    )
    assert out == "True"


def test_cli_apply_does_not_import_scipy_linalg(tmp_path: Path) -> None:
    examples = Path(__file__).resolve().parents[1] / "examples"
    out_dir = tmp_path / "out"
    out = _run(
        f"""
        import runpy, sys
        sys.argv = ["maskrefine", "apply", "--masks", {str(examples / "masks")!r},
                    "--images", {str(examples / "images")!r}, "--out", {str(out_dir)!r},
                    "--jobs", "1", "--quiet"]
        try:
            runpy.run_module("maskrefine.cli", run_name="__main__")
        except SystemExit as exc:
            print("exit", exc.code)
        print("scipy.linalg" in sys.modules)
        """
    )
    assert out.splitlines() == ["exit 0", "False"]
    assert len(list(out_dir.iterdir())) == len(list((examples / "masks").iterdir()))
