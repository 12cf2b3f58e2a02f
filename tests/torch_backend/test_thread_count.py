"""numba's first filter call must not change torch's thread count (shared OpenMP runtime)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")

_CODE = """
import torch
assert torch.get_num_threads() == 1  # from OMP_NUM_THREADS
from maskrefine.torch import guided_filter
guide = torch.rand(1, 1, 40, 50)
mask = torch.rand(1, 1, 40, 50)
guided_filter(guide, mask, 2, 1e-3)  # on the CPU without autograd: the numba kernels
import numba
print(torch.get_num_threads(), numba.get_num_threads(), numba.threading_layer())
"""


def test_the_first_numba_filter_call_keeps_torchs_thread_count():
    # numba's OpenMP threading layer sets the process's OpenMP thread count to NUMBA_NUM_THREADS when it
    # starts, and torch shares that runtime: a run with OMP_NUM_THREADS=1 went on with 2 threads after the
    # first training step (whose losses then differed in the last bits from a run's that started later).
    env = {**os.environ, "NUMBA_NUM_THREADS": "2", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", _CODE], capture_output=True, text=True, env=env, timeout=120, check=True
    )
    torch_threads, numba_threads, layer = out.stdout.split()
    assert torch_threads == "1", out.stdout  # kept
    assert numba_threads == "2", out.stdout  # numba's own count is its own business
    assert layer in {"omp", "tbb", "workqueue"}
