"""The ``>>>`` examples in maskrefine's docstrings run, and print what they say they print.

Each module of the package is one test case. A module that needs an optional extra (torch for
``maskrefine.torch`` / ``maskrefine.train``, matplotlib for the plots) skips with a reason where the extra
is absent; every other import failure is a failure.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil

import numpy as np
import pytest

import maskrefine

OPTIONAL_EXTRAS = {
    "torch": "torch",
    "matplotlib": "plot",
    "kornia": "bench",
    "dask": "distributed",
    "distributed": "distributed",
    "ray": "ray",
}


def _modules_with_examples() -> list[str]:
    """Modules whose source holds a ``>>>`` prompt, found without importing them (torch may be absent)."""
    names = []
    for info in pkgutil.walk_packages(maskrefine.__path__, prefix="maskrefine."):
        spec = importlib.util.find_spec(info.name)
        if spec is not None and spec.origin and ">>>" in open(spec.origin, encoding="utf-8").read():
            names.append(info.name)
    return sorted(names)


MODULE_NAMES = _modules_with_examples()


def _import_or_skip(name: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing in OPTIONAL_EXTRAS:
            pytest.skip(f"{name} needs {missing}: pip install -e '.[{OPTIONAL_EXTRAS[missing]}]'")
        raise


def _examples(module) -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    return [test for test in finder.find(module, module.__name__) if test.examples]


@pytest.mark.parametrize("module_name", MODULE_NAMES)
def test_docstring_examples_run(module_name):
    module = _import_or_skip(module_name)
    tests = _examples(module)
    assert tests, f"{module_name} has '>>>' in its source but doctest finds no examples in it"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    with np.printoptions(legacy=False):
        for test in tests:
            runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} of {results.attempted} examples in {module_name} failed"


def test_public_api_has_examples():
    """The core NumPy API shows its use: these functions each carry at least one runnable example."""
    documented = {
        "maskrefine.filters.guided": ["guided_filter", "fast_guided_filter"],
        "maskrefine.refiners": ["refine"],
        "maskrefine.metrics.evaluator": ["Evaluator"],
    }
    for module_name, names in documented.items():
        module = importlib.import_module(module_name)
        found = {test.name.rsplit(".", 1)[-1] for test in _examples(module)}
        missing = [name for name in names if name not in found]
        assert not missing, f"{module_name}: no docstring example for {missing}"
