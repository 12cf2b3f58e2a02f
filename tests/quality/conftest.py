"""Fixtures shared by the quality tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from maskrefine.pipeline import apply_folder

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="session")
def naive_examples(tmp_path_factory) -> Path:
    """The bundled examples refined with ``--method identity`` (naive bilinear upsampling), once."""
    out = tmp_path_factory.mktemp("naive") / "refined"
    apply_folder(EXAMPLES / "masks", EXAMPLES / "images", out, method="identity", jobs=1)
    return out
