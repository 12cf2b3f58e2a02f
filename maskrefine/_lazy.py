"""Lazy package attributes (PEP 562): a public name's submodule is imported on first access.

A package lists which submodule defines each public name. This keeps ``import maskrefine`` and
``maskrefine --version`` free of numba, OpenCV and torch until a name that needs them is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_attributes(
    package: str, sources: Mapping[str, str], namespace: dict[str, object]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """Return ``(__getattr__, __dir__)`` for ``package``.

    ``sources`` maps a public name to the (absolute) module defining it; the value is imported on first
    access and cached in ``namespace``.
    """

    def __getattr__(name: str) -> object:
        module = sources.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(sources))

    return __getattr__, __dir__
