"""Guard the public API: no public name silently removed, and `import maskrefine` stays torch-free."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from _mypy_run import run_mypy

import maskrefine

EXPECTED_TOP_LEVEL = {
    "__version__",
    "MaskrefineError",
    "InputError",
    "ConfigError",
    "BackendUnavailableError",
    "guided_filter",
    "fast_guided_filter",
    "make_guide",
    "REFINERS",
    "RefinerSpec",
    "refine",
    "register_refiner",
    "apply_folder",
    "score_folder",
    "RunReport",
    "ScoreReport",
    "FileOutcome",
    "parse_shard",
    "Evaluator",
    "PRESETS",
    "ScorePreset",
    "get_preset",
    "score_image",
    "CorLocEvaluator",
    "read_voc_boxes",
    "read_coco_boxes",
    "boxes_from_mask",
    "box_iou",
    "corloc",
}


def test_top_level_names_are_exported_and_resolve() -> None:
    missing = EXPECTED_TOP_LEVEL - set(maskrefine.__all__)
    assert not missing, f"public names removed from maskrefine.__all__: {sorted(missing)}"
    for name in maskrefine.__all__:
        assert hasattr(maskrefine, name), name


def test_registries_hold_the_documented_entries() -> None:
    assert {"identity", "guided", "fast_guided"} <= set(maskrefine.REFINERS)
    assert {"tokencut", "move", "selfmask", "paper_repo", "pysod"} <= set(maskrefine.PRESETS)


def test_import_does_not_import_torch_or_matplotlib() -> None:
    code = "import sys, maskrefine; print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_version_matches_package_metadata() -> None:
    from importlib.metadata import version

    assert maskrefine.__version__ == version("maskrefine")


def test_subpackages_are_attributes_after_a_plain_import() -> None:
    # README: `import maskrefine` then `maskrefine.filters.bilateral_solver(...)`; in a fresh interpreter
    # nothing has imported the subpackage yet (it was an AttributeError)
    code = (
        "import sys, maskrefine\n"
        "assert 'maskrefine.filters' not in sys.modules\n"
        "print(maskrefine.filters.bilateral_solver.__name__, maskrefine.metrics.s_measure.__name__,"
        " maskrefine.io.read_mask.__name__, maskrefine.pipeline.apply_folder.__name__,"
        " maskrefine.quality.__name__, 'filters' in dir(maskrefine))\n"
        "try:\n    maskrefine.no_such_name\nexcept AttributeError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [
        "bilateral_solver s_measure read_mask apply_folder maskrefine.quality True",
        "module 'maskrefine' has no attribute 'no_such_name'",
    ]


USER_SCRIPT = """\
import numpy as np
import maskrefine
from maskrefine.metrics import Evaluator, s_measure
from maskrefine.io import read_mask
from maskrefine.quality import paired_bootstrap

evaluator = Evaluator(preset="tokencut")
reveal_type(evaluator)
reveal_type(s_measure(np.zeros((2, 2), np.float32), np.zeros((2, 2), bool)))
reveal_type(maskrefine.filters.bilateral_solver)
reveal_type(paired_bootstrap)
maskrefine.no_such_name
from maskrefine.metrics import s_measur
reveal_type(read_mask("m.png"))
maskrefine.guided_filter([[0.5]], [[0.5]], radius=0)


class Where:
    def __fspath__(self) -> str:
        return "m.png"


read_mask(Where())  # any os.PathLike[str], as at run time
maskrefine.apply_folder(Where(), Where(), Where())
"""


def test_lazy_names_have_their_types_for_mypy(tmp_path: Path) -> None:
    # the lazily imported names were typed `object` (module __getattr__), and any typo passed
    pytest.importorskip("mypy", reason="mypy is in the [dev] extra")
    lines, stdout = run_mypy(tmp_path, USER_SCRIPT, "--strict")
    revealed = [line.split("Revealed type is ")[1] for line in lines if "Revealed type" in line]
    assert revealed[0] == '"maskrefine.metrics.evaluator.Evaluator"', stdout
    assert revealed[1] in ('"float"', '"builtins.float"'), stdout
    assert revealed[2].startswith('"def (image:'), stdout
    assert revealed[3].startswith('"def (') and "object" not in revealed[3], stdout
    # read_mask returns float32 (it said any dtype); the filters refuse lists at run time, and now for mypy
    assert "floating[numpy._typing._nbit_base._32Bit]" in revealed[4], stdout
    errors = [line for line in lines if ": error:" in line]
    assert len(errors) == 4, stdout
    assert all("user.py:15: error:" in line and "guided_filter" in line for line in errors[2:]), stdout
    assert 'user.py:12: error: Module has no attribute "no_such_name"' in errors[0]
    assert "user.py:13: error:" in errors[1] and "s_measur" in errors[1]
