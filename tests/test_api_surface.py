"""Guard the public API: no public name silently removed, and `import maskrefine` stays torch-free."""

from __future__ import annotations

import subprocess
import sys

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
