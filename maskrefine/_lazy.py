"""Lazy package attributes (PEP 562): a public name's submodule is imported on first access.

A package lists which submodule defines each public name. This keeps ``import maskrefine`` and
``maskrefine --version`` free of numba, OpenCV and torch until a name that needs them is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection, Mapping


def lazy_attributes(
    package: str,
    sources: Mapping[str, str],
    namespace: dict[str, object],
    submodules: Collection[str] = (),
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """Return ``(__getattr__, __dir__)`` for ``package``.

    ``sources`` maps a public name to the (absolute) module defining it; the value is imported on first
    access and cached in ``namespace``. ``submodules`` names subpackages of ``package`` that are imported
    on first access as attributes (``package.name``), as an explicit ``import package.name`` would.
    """

    def __getattr__(name: str) -> object:
        if name in submodules:
            return importlib.import_module(f"{package}.{name}")  # the import sets the attribute too
        module = sources.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(sources) | set(submodules))

    return __getattr__, __dir__
