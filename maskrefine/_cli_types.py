"""click parameter types and options shared by the command modules (``maskrefine.cli``, ``cli_train``)."""

from __future__ import annotations

import math
from typing import Any

import click

from maskrefine._checks import short_repr
from maskrefine.io.options import DEFAULT_MAX_PIXELS, MASK_SCALES
from maskrefine.io.pairs import MASK_FORMATS

__all__ = ["FloatRangeEchoed", "IntRangeAscii", "OptionsOnce", "mask_output_options", "reading_options"]


class OptionsOnce(click.Command):
    """A command whose options may each be given once (click silently keeps the last of repeated values).

    ``--masks a --masks b`` ran on ``b`` alone, ``--out a --out b`` wrote ``b``: a pasted-over command line
    did something other than it reads. Options declared ``multiple`` or ``count`` may repeat.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not ctx.resilient_parsing:  # shell completion parses partial lines
            _opts, _rest, order = self.make_parser(ctx).parse_args(args=list(args))
            seen: set[str | None] = set()
            for param in order:
                if not isinstance(param, click.Option) or param.multiple or param.count:
                    continue
                if param.name in seen:
                    spelled = " / ".join([*param.opts, *param.secondary_opts])
                    raise click.UsageError(f"{spelled} is given more than once; give it once.", ctx)
                seen.add(param.name)
        return super().parse_args(ctx, args)


class _AsciiDigits(click.ParamType):
    """Refuse a number written with other digits than ASCII 0-9, digit-group underscores or spaces.

    Python's ``int`` and ``float`` read ``"١٢"`` (Arabic-Indic digits) as 12, ``"1_0"`` as 10 and
    ``" 5"`` as 5: values the user may not have meant, and which ``--shard`` and ``tune --budget``
    already refuse.
    """

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.isascii():
            self.fail(f"{short_repr(value)} is not a number written with ASCII digits (0-9)", param, ctx)
        if isinstance(value, str) and ("_" in value or value != value.strip()):
            self.fail(f"{short_repr(value)}: write the number without underscores or spaces", param, ctx)
        return super().convert(value, param, ctx)


class _Unbounded(click.types._NumberRangeBase):
    """Show no range in ``--help`` when neither bound is set (click's text is ``[x<=None]``)."""

    def _describe_range(self) -> str:
        if self.min is None and self.max is None:
            return ""
        return super()._describe_range()


class IntRangeAscii(_AsciiDigits, _Unbounded, click.IntRange):
    """``click.IntRange`` that takes ASCII digits only (see :class:`_AsciiDigits`)."""

    name = "integer"  # click's refusal reads "'12x' is not a valid integer." (not "integer range")


class FloatRangeEchoed(_AsciiDigits, _Unbounded, click.FloatRange):
    """``click.FloatRange`` whose refusal shows the text given when it underflows to 0 or overflows to inf.

    ``--eps 1e-400`` is 0.0 to Python: the message was "0.0 is not in the range x>=1e-12". ASCII digits
    only (see :class:`_AsciiDigits`).
    """

    name = "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            number = super().convert(value, param, ctx)
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
        if isinstance(value, str) and math.isinf(number) and "inf" not in value.lower():
            # accepted by an open-ended range, then refused downstream as "got inf": say what was typed
            self.fail(f"{short_repr(value)} reads as {number!r}; give a finite number", param, ctx)
        return number


def mask_output_options(command: Any) -> Any:
    """``--format``, ``--overwrite`` and ``--skip-existing``: the options of the jobs that write masks.

    Shared by ``apply`` and ``predict``.
    """
    options = [
        click.option(
            "--format",
            "fmt",
            type=click.Choice(list(MASK_FORMATS)),
            default="png8",
            show_default=True,
            help="Output format: 8-bit PNG, 16-bit PNG, or float32 .npy.",
        ),
        click.option(
            "--overwrite",
            is_flag=True,
            help="Replace existing outputs, and a --report file that is not a maskrefine report.",
        ),
        click.option(
            "--skip-existing",
            is_flag=True,
            help="Keep existing outputs and do the rest (resume a run). Outputs are skipped by file name; "
            "with --report, a resume is refused when that report records other settings for outputs it "
            "may have made. Without one, nothing checks: resume with the same settings. To finish a stopped "
            "--overwrite run, rerun with --overwrite instead (this would keep the outputs it had not "
            "replaced yet).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


#: How the jobs read their files: ``--mask-scale`` (apply, score), ``--apply-exif/--ignore-exif`` and
#: ``--max-pixels`` (apply, score, predict), as keyword arguments of ``click.option``.
_READING_OPTIONS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "mask_scale": (
        ("--mask-scale",),
        {
            "type": click.Choice(MASK_SCALES),
            "default": "auto",
            "show_default": True,
            "help": "Value meaning foreground in integer mask files; auto detects 0/1 masks and 16-bit "
            "files holding 8-bit values (see the README).",
        },
    ),
    "apply_exif": (
        ("--apply-exif/--ignore-exif",),
        {
            "default": False,
            "help": "Turn images upright by their EXIF orientation, or read them as stored (the default, "
            "as the references' PIL code reads them; --ignore-exif is kept for old scripts).",
        },
    ),
    "max_pixels": (
        ("--max-pixels",),
        {
            "type": IntRangeAscii(min=1),
            "default": DEFAULT_MAX_PIXELS,
            "show_default": True,
            "help": "Refuse an input file with more pixels (read from the file header, before decoding).",
        },
    ),
}


def reading_options(*names: str) -> Any:
    """Return a decorator adding the reading options ``names`` (keys of ``_READING_OPTIONS``), in order."""

    def add(command: Any) -> Any:
        for name in reversed(names):
            declarations, settings = _READING_OPTIONS[name]
            command = click.option(*declarations, **settings)(command)
        return command

    return add
