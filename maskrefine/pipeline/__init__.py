"""Folder jobs: refine a folder of masks and score a folder of predictions.

:func:`apply_folder` refines, :func:`score_folder` scores.

The jobs loop and collect; they read and write through :mod:`maskrefine.io` and compute through
:mod:`maskrefine.refiners` and :mod:`maskrefine.metrics`. They never print: every outcome is returned in
a report for the caller (the CLI) to show.

Modules
-------
``reports``
    :class:`RunReport`, :class:`ScoreReport` and their per-file entries; JSON and CSV.
``guards``
    Checks made before any work: input folders, output paths (the one place they are vetted), shards,
    ``jobs``.
``workers``
    The process pool: signals, parent death, warm-up; knows nothing of refining or scoring.
``apply``, ``score``
    The two jobs.
"""

from __future__ import annotations

import sys
import types

from maskrefine.pipeline import apply, guards, reports, score, workers
from maskrefine.pipeline.apply import OUTPUT_FORMATS, apply_folder
from maskrefine.pipeline.guards import parse_shard, shard_index
from maskrefine.pipeline.merge import MergedRunReport, merge_run_reports, read_run_report
from maskrefine.pipeline.reports import Failure, FileOutcome, RunReport, ScoreReport, Unmatched
from maskrefine.pipeline.score import PLOT_FILES, score_folder

# Names of the former single-module ``maskrefine.pipeline`` that code (and tests) patch; see _Package.
refine = apply.refine
_FORK_SAFE = workers._FORK_SAFE
_exit_with_parent = workers._exit_with_parent
_init_worker = workers._init_worker

__all__ = [
    "apply_folder",
    "score_folder",
    "RunReport",
    "ScoreReport",
    "FileOutcome",
    "Failure",
    "Unmatched",
    "parse_shard",
    "shard_index",
    "OUTPUT_FORMATS",
    "PLOT_FILES",
    "merge_run_reports",
    "read_run_report",
    "MergedRunReport",
]

_SUBMODULES = (apply, guards, reports, score, workers)


class _Package(types.ModuleType):
    """Module class of ``maskrefine.pipeline``: assignments also reach the submodules.

    ``maskrefine.pipeline`` used to be one module: assigning one of its names here (e.g.
    ``monkeypatch.setattr(maskrefine.pipeline, "refine", fake)``) also assigns it in the submodules
    that use that name, so such code keeps working after the split.
    """

    def __setattr__(self, name: str, value: object) -> None:
        for module in _SUBMODULES:
            if name in vars(module):
                setattr(module, name, value)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
