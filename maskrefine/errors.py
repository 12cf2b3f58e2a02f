"""Exception hierarchy of maskrefine.

Every class also subclasses the matching builtin so generic handlers keep working.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "MAX_LISTED",
    "MaskrefineError",
    "InputError",
    "BackendUnavailableError",
    "ConfigError",
    "NothingScoredError",
    "OutputError",
    "OutputExistsError",
    "OutputFolderRemovedError",
    "ReportNotWrittenError",
]

#: Files (unmatched, failed, refused) a command names one per line before "... and N more": the same
#: number everywhere (apply, score, predict, train).
MAX_LISTED = 10


class MaskrefineError(Exception):
    """Base class of every error raised by maskrefine."""


class InputError(MaskrefineError, ValueError):
    """A file given to a folder job cannot be used.

    The message always starts with the path, then the problem, e.g.
    ``masks/0001.png: cannot decode image (file is 0 bytes)``.

    Parameters
    ----------
    path : str or Path
        The file; kept as :class:`~pathlib.Path` in the ``path`` attribute.
    problem : str
        What is wrong with it; kept in the ``problem`` attribute.
    """

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class NothingScoredError(MaskrefineError):
    """Every file of a scoring job failed, or none could be paired.

    ``failures`` holds each ``(key, problem)``; ``unmatched`` the files left without a partner (each with
    ``path``, ``folder`` and ``reason``, as :class:`maskrefine.pipeline.reports.Unmatched`), when no file
    could be paired.
    """

    def __init__(
        self, message: str, failures: list[tuple[str, str]], *, unmatched: Sequence[object] = ()
    ) -> None:
        self.failures = failures
        self.unmatched = list(unmatched)
        super().__init__(message)


class BackendUnavailableError(MaskrefineError, ImportError):
    """An optional dependency (torch, matplotlib, a peer) is not installed."""


def install_hint(extra: str) -> str:
    """Return how to install the optional extra ``extra``: into an installed package, or in a clone.

    Parameters
    ----------
    extra : str
        Name of the extra in ``pyproject.toml`` (``"torch"``, ``"plot"``, ...).

    Returns
    -------
    str
        The pip commands, e.g. ``pip install 'maskrefine[plot]' (in a clone: pip install -e '.[plot]')``;
        torch is pinned to the version the project is tested with.
    """
    if extra == "torch":
        return (
            "pip install 'torch==2.13.0' 'maskrefine[torch]' "
            "(in a clone: pip install 'torch==2.13.0' -e '.[torch]'; torch pinned)"
        )
    return f"pip install 'maskrefine[{extra}]' (in a clone: pip install -e '.[{extra}]')"


def parse_problem(exc: ValueError | RecursionError) -> str:
    """Why a JSON or TOML text could not be parsed, as a short phrase for an error message.

    ``exc`` is the parser's error (``TOMLDecodeError`` / ``JSONDecodeError``), the bare ValueError of an
    integer with more digits than Python converts (``sys.get_int_max_str_digits``; its hint after ";" is
    dropped), or the RecursionError of arrays nested too deeply.
    """
    return "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(";")[0]


class ConfigError(MaskrefineError, ValueError):
    """A job was configured wrongly (a usage error): unsafe output folder, conflicting options, bad shard.

    The CLI maps it to exit code 2; nothing has been written when it is raised.
    """


class OutputError(MaskrefineError, OSError):
    """An output file could not be written (no space, no permission, not a regular file...).

    The message starts with the path, then the problem, e.g. ``out/0001.png: cannot write (No space left
    on device)``. Nothing partial is left at the path.
    """

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")

    def __str__(self) -> str:
        """Return the message: the path, then the problem."""
        return f"{self.path}: {self.problem}"

    def __reduce__(self) -> tuple[type, tuple[Path, str]]:
        """Pickle as ``(path, problem)`` (e.g. to pass the error back from a worker process)."""
        return type(self), (self.path, self.problem)


class ReportNotWrittenError(OutputError):
    """A folder job ran, but its ``--report`` JSON could not be written; ``report`` holds the outcomes.

    The job's outputs are published (or failed) as ``report`` says; only the report file is missing.
    """

    def __init__(self, path: str | os.PathLike[str], problem: str, report: object = None) -> None:
        super().__init__(path, problem)
        self.report = report

    def __reduce__(self) -> tuple[type, tuple[Path, str]]:
        """Pickle as ``(path, problem)`` (the report stays behind)."""
        return type(self), (self.path, self.problem)


class OutputExistsError(OutputError):
    """A no-clobber write found the output already there (e.g. written meanwhile by another run)."""


class OutputFolderRemovedError(OutputError):
    """A folder job's output folder was removed (deleted, or replaced by another) during the run.

    The job stopped at the first file that could not be written because of it (or found it gone at its
    end, after its last write): no further file is started, no output goes anywhere else, and the folder
    is never made again. The outputs written into it went with it. ``report`` holds every file's outcome
    (those not started failed, saying why); ``not_processed`` counts the files that failed once it was
    gone or were not started (0 when it was removed after the last write); ``note`` tells what became of
    the job's ``--report`` file, if it had one.

    Parameters
    ----------
    path : str or Path
        The output folder.
    not_processed : int
        Files not written once the folder was gone (failed, or not started).
    report : object, optional
        The job's report (:class:`~maskrefine.pipeline.RunReport`).
    note : str, default ""
        Appended to the message after ``"; "`` when not empty (e.g. where the report was written).
    """

    def __init__(
        self, path: str | os.PathLike[str], not_processed: int, report: object = None, note: str = ""
    ) -> None:
        problem = "was removed during the run, with the outputs written into it"
        if not_processed:
            problem += f"; {not_processed} file{'s were' if not_processed != 1 else ' was'} not written"
        super().__init__(path, problem + (f"; {note}" if note else ""))
        self.not_processed = not_processed
        self.report = report
        self.note = note

    def __str__(self) -> str:
        """Return ``output folder 'out' was removed during the run, ...; N files were not written``."""
        return f"output folder '{self.path}' {self.problem}"

    def __reduce__(self) -> tuple[type, tuple[Path, int, None, str]]:  # type: ignore[override]
        """Pickle as ``(path, not_processed, None, note)`` (the report stays behind)."""
        return type(self), (self.path, self.not_processed, None, self.note)
