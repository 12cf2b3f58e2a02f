"""Console entry point of ``maskrefine``: a Ctrl-C while the CLI's modules import also exits 130.

The command module imports NumPy and maskrefine's own modules at start-up; an interrupt there would end
in a ``KeyboardInterrupt`` traceback. This module imports nothing heavy itself.
"""

from __future__ import annotations

import sys

__all__ = ["main"]

EXIT_INTERRUPTED = 130


def main() -> None:
    """Import and run :func:`maskrefine.cli.main` (the ``maskrefine`` command)."""
    try:
        from maskrefine.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(EXIT_INTERRUPTED)
    cli_main(prog_name="maskrefine")
