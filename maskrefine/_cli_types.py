"""click parameter types shared by the command modules (``maskrefine.cli`` and ``maskrefine.cli_train``)."""

from __future__ import annotations

import math
from typing import Any

import click

from maskrefine._checks import short_repr

__all__ = ["FloatRangeEchoed"]


class FloatRangeEchoed(click.FloatRange):
    """``click.FloatRange`` whose refusal shows the text given when it underflows to 0 or overflows to inf.

    ``--eps 1e-400`` is 0.0 to Python: the message was "0.0 is not in the range x>=1e-12".
    """

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as exc:
            if not isinstance(value, str):
                raise
            try:
                number = float(value)
            except ValueError:
                raise exc from None
            digits = value.lower().split("e")[0]
            underflow = number == 0.0 and any(c in "123456789" for c in digits)
            overflow = math.isinf(number) and "inf" not in value.lower()
            if not (underflow or overflow):
                raise
            self.fail(f"{short_repr(value)} reads as {number!r}: {exc.message}", param, ctx)
