"""The README's Dask and Ray recipes, run as written (a LocalCluster with 2 workers; ``ray.init(num_cpus=2)``)
over the bundled examples.

The union of the shards' outputs must be byte-identical to a single-process run, and the shards' reports
must merge into one summary equal to that run's counts.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from maskrefine.pipeline import apply_folder, merge_run_reports

pytestmark = pytest.mark.distributed

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
N_SHARDS = 4


# name -> (text that identifies its README block, module it needs, skip reason)
RECIPES = {
    "dask": (
        "from dask.distributed import",
        "distributed",
        "dask[distributed] not installed: pip install -e '.[distributed]'",
    ),
    "ray": ("import ray\n", "ray", "ray not installed: pip install -e '.[ray]'"),
}


def _readme_recipe(marker: str) -> str:
    """The ```python block of the README that contains ``marker`` (exactly one)."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)
    found = [b for b in blocks if marker in b]
    assert len(found) == 1, f"the README must hold exactly one recipe with {marker!r}"
    return found[0]


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_readme_recipe_matches_single_process(tmp_path, name) -> None:
    marker, module, reason = RECIPES[name]
    pytest.importorskip(module, reason=reason)
    recipe = _readme_recipe(marker)
    # the recipe's input folders -> the examples; refined/ and reports/ are relative to the working
    # folder (tmp_path); fewer shards than 16
    for old, new in {
        '"coarse/"': repr(str(EXAMPLES / "masks")),
        '"images/"': repr(str(EXAMPLES / "images")),
        "n = 16": f"n = {N_SHARDS}",
    }.items():
        assert old in recipe, f"README recipe no longer contains {old}"
        recipe = recipe.replace(old, new)
    script = tmp_path / "recipe.py"
    script.write_text(recipe, encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ok" in proc.stdout and "NOT ok" not in proc.stdout, proc.stdout

    # the recipes name method="auto", the CLI's default: the single run is the CLI's `apply`
    single = apply_folder(EXAMPLES / "masks", EXAMPLES / "images", tmp_path / "single", method="auto", jobs=1)
    assert single.ok and single.counts["written"] == 10
    assert _digests(tmp_path / "refined") == _digests(tmp_path / "single")

    reports = sorted((tmp_path / "reports").glob("*.json"))
    assert len(reports) == N_SHARDS
    merged = merge_run_reports(reports)
    assert merged.ok and merged.missing_shards == []
    assert merged.report.counts == single.counts
    assert [o.stem for o in merged.report.outcomes] == [o.stem for o in single.outcomes]
