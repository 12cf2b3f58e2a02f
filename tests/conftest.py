"""Shared fixtures: seeded RNG and the location of ../shared/data (skip with a reason when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the tests marked ``slow`` first (in their collected order), then the rest as collected.

    Under xdist the longest tests then start on different workers at the beginning instead of one of them
    (the 2-minute SOD training test, collected among the last) running alone at the end.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: False (slow) first


def _find_shared_data() -> Path | None:
    env = os.environ.get("MASKREFINE_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates += [REPO_ROOT.parent / "shared" / "data", REPO_ROOT / "shared" / "data"]
    for candidate in candidates:
        if (candidate / "sod" / "images").is_dir():
            return candidate
    return None


SHARED_DATA = _find_shared_data()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def sod_dir() -> Path:
    """The SOD folder of ../shared/data (images/, masks/, predictions/<method>/)."""
    if SHARED_DATA is None:
        pytest.skip(
            f"shared data not found at {REPO_ROOT.parent / 'shared' / 'data'} (set MASKREFINE_SHARED_DATA)"
        )
    return SHARED_DATA / "sod"
