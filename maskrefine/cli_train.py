"""``maskrefine train`` and ``maskrefine predict`` (the ``[torch]`` extra).

Registered on the ``maskrefine`` group by :mod:`maskrefine.cli`. Nothing here imports torch at import
time: ``maskrefine --help`` stays torch-free; the commands import :mod:`maskrefine.train` when they run
and report a missing torch as a usage error (exit 2). Same exit codes as ``apply``.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, ParamSpec, TypeVar

import click

from maskrefine._cli_types import (
    FloatRangeEchoed,
    IntRangeAscii,
    OptionsOnce,
    mask_output_options,
    reading_options,
)

__all__ = ["train_cmd", "predict_cmd"]

_in_dir = click.Path(exists=True, file_okay=False, dir_okay=True, path_type=Path)
# Output and checkpoint paths stay plain text: Path("") would silently become "." (the current folder)
# and Path("https://host/x.pth") would lose a slash; the library vets them and names the problem.
_path = str

_P = ParamSpec("_P")
_T = TypeVar("_T")


def _cli() -> ModuleType:
    from maskrefine import cli  # late: maskrefine.cli imports this module to register the commands

    return cli


class _StepLine:
    r"""``epoch 2/30 step 140/1319 loss 0.5321 3.21 it/s`` on one ``\r`` line (terminal only)."""

    def __init__(self, enabled: bool, epochs: int) -> None:
        self.enabled = enabled
        self.epochs = epochs
        self.shown = False
        self.last = 0.0

    def __call__(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last < 0.2 and record["batch"] < record["steps_per_epoch"]:
            return
        self.last = now
        sys.stderr.write(
            f"\repoch {record['epoch']}/{self.epochs} step {record['batch']}/{record['steps_per_epoch']} "
            f"loss {record['loss']:.4f}  {record['it_s']:.2f} it/s   "
        )
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            self.shown = False


@click.command("train", cls=OptionsOnce)
@click.option(
    "--images",
    "images_dir",
    required=True,
    type=_path,  # checked by the library, which says what is there instead of a folder (a FIFO, a link...)
    metavar="DIRECTORY",
    help="Folder of training images.",
)
@click.option(
    "--backbone-checkpoint",
    type=_path,
    default=None,
    metavar="FILE",
    help="Local DINO/DINOv2 ViT checkpoint (e.g. dino_deitsmall8_pretrain.pth); never downloaded.",
)
@click.option(
    "--out",
    "run_dir",
    required=True,
    type=_path,
    metavar="DIRECTORY",
    help="Run folder (config, log, checkpoints).",
)
@click.option(
    "--config",
    "config_file",
    type=_path,
    metavar="FILE",
    default=None,
    help="TOML file of TrainConfig settings (top-level keys; an optional `preset` key picks the start). "
    "A relative backbone_checkpoint in it is relative to the file's folder.",
)
@click.option(
    "--preset",
    type=click.Choice(["paper", "reference", "tiny"]),
    default=None,
    help="Starting settings; the defaults below are paper's. [default: paper]",
)
@click.option(
    "--backbone",
    type=click.Choice(["vit", "pixels"]),
    default=None,
    help="vit: the checkpoint's ViT; pixels: colour/position features, no checkpoint (demos). [default: vit]",
)
@click.option("--crop-loss/--no-crop-loss", default=None, help="Multi-scale crop consistency. [default: on]")
@click.option(
    "--crop-sampler",
    type=click.Choice(["uniform", "reference"]),
    default=None,
    help="Crop positions: uniform over the image, or the paper repository's. [default: uniform]",
)
@click.option("--epochs", type=IntRangeAscii(min=1), default=None, help="Passes over the data. [default: 30]")
@click.option("--batch-size", type=IntRangeAscii(min=1), default=None, help="Images per step. [default: 8]")
@click.option(
    "--image-size",
    type=IntRangeAscii(min=16),
    default=None,
    help="Side of the square training crop; sizes that cannot train are refused. [default: 320]",
)
@click.option(
    "--resize",
    type=IntRangeAscii(min=1),
    default=None,
    help="Shorter side images are resized to before the random crop; image size to 4 x image size. "
    "[default: 335]",
)
@click.option(
    "--lr",
    type=FloatRangeEchoed(min=0, min_open=True),
    default=None,
    help="AdamW learning rate, 1e-12 to 1e6. [default: 1e-4]",
)
@click.option(
    "--seed", type=IntRangeAscii(min=0), default=None, help="Seed of all random draws. [default: 0]"
)
@click.option("--device", default=None, help="cpu, cuda or cuda:N. [default: cpu]")
@click.option("--amp", is_flag=True, default=None, help="bf16 autocast (CUDA only).")
@click.option(
    "--num-workers",
    type=IntRangeAscii(min=0),
    default=None,
    help="Data loader processes; 0 loads in the training process. [default: 0]",
)
@click.option(
    "--max-steps",
    type=IntRangeAscii(min=1),
    default=None,
    help="Stop after this many steps. [default: none: every step of --epochs]",
)
@click.option(
    "--max-pixels",
    type=IntRangeAscii(min=1),
    default=None,
    help="Refuse a training or validation image with more pixels (read from the file header, before "
    "decoding). [default: 100000000]",
)
@click.option(
    "--checkpoint-every",
    type=IntRangeAscii(min=0),
    default=None,
    help="Steps between checkpoints; 0 = at the end of each epoch only. [default: 0]",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the run in --out from its last.pt; give the same options (config.json is not read).",
)
@click.option("--val-images", type=_in_dir, default=None, help="Validation images (metrics are only logged).")
@click.option("--val-gt", type=_in_dir, default=None, help="Validation ground truth, paired by stem.")
@click.option("--keep-best-on-val", is_flag=True, default=None, help="Also keep best_val.pt (opt-in).")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
def train_cmd(
    images_dir: str,
    backbone_checkpoint: str | None,
    run_dir: str,
    config_file: str | None,
    preset: str | None,
    resume: bool,
    val_images: Path | None,
    val_gt: Path | None,
    quiet: bool,
    **options: Any,
) -> None:
    """Train the Sempart head (+ crop-consistency loss) on a frozen ViT; write the run to --out.

    Settings: the preset (paper by default), then the --config TOML file, then these options. The run
    folder gets config.json (settings, git SHA, versions), log.jsonl (a JSON line per step and epoch) and
    last.pt (head, optimiser, step, settings, RNG states), written atomically.
    """
    cli = _cli()
    cli._start_job(numba_kernels=False)  # OpenCV's own log lines off: a bad image is reported by us
    with cli._library_errors():
        from maskrefine._checks import short_repr
        from maskrefine.errors import ConfigError

        if run_dir == "":  # never the current folder
            raise ConfigError("--out: empty path; give a run folder")
        from maskrefine.train import config as config_mod  # torch-free: bad settings fail before torch loads

        file_values: dict[str, Any] = {}
        if config_file is not None:
            file_values = config_mod.load_toml(config_file)
        file_preset = file_values.pop("preset", None)  # always removed: it is not a training setting
        if file_preset is not None and not isinstance(file_preset, str):
            raise ConfigError(
                f"config file {config_file}: preset must be a string; got {short_repr(file_preset)}"
            )
        name = preset or file_preset or "paper"
        option_values = {key: value for key, value in options.items() if value is not None}
        if backbone_checkpoint is not None:
            if backbone_checkpoint == "":
                raise ConfigError("--backbone-checkpoint: empty path; give a local checkpoint file")
            option_values["backbone_checkpoint"] = backbone_checkpoint
        cfg = _training_config(config_mod, name, preset or "paper", file_values, option_values, config_file)
        from maskrefine.train.preflight import FileProblems, check_checkpoint_path, check_training_run

        from_file = {key for key in file_values if key not in option_values}
        if "backbone_checkpoint" in from_file and cfg.backbone == "vit":  # checked before the folders, as
            with _blamed_on(config_file):  # the file's other values
                check_checkpoint_path(cfg.backbone_checkpoint)
        line = _StepLine(sys.stderr.isatty() and not quiet, cfg.epochs)
        try:
            try:  # torch-free too: folders, images
                run = check_training_run(
                    cfg,
                    images_dir,
                    run_dir,
                    resume=resume,
                    val_images=val_images,
                    val_gt=val_gt,
                    progress=line,
                )
            except FileProblems as exc:  # one line per file, as apply and predict list theirs
                lines = exc.lines()
                cli._err(cli._one_line(f"Error: {lines[0]}"))
                for problem in lines[1:]:
                    cli._err(f"  {cli._one_line(problem)}")
                sys.exit(cli.EXIT_USAGE)
            from maskrefine.train import require_torch

            require_torch()  # seconds; a broken torch is a message, not a traceback
            from maskrefine.train.model import usable_device
            from maskrefine.train.trainer import train_checked

            if "device" in from_file:  # as for its other values, a device the machine lacks names the file
                with _blamed_on(config_file):
                    usable_device(cfg.device, option="device")
            elif "device" in option_values:  # named as typed (the library says "training setting device")
                usable_device(cfg.device, option="--device")

            result = _train_or_stop(Path(run_dir) / "last.pt", train_checked, run)
        finally:
            line.close()
    for problem in result.train_failures:
        click.echo(f"error: {_cli()._one_line(problem)} (left out of training)", err=True)
    for problem in result.val_failures:
        click.echo(f"error: {_cli()._one_line(problem)}", err=True)
    if cfg.keep_best_on_val and not (result.run_dir / "best_val.pt").is_file():
        # validation runs at the end of an epoch: a run stopped before one has no best checkpoint yet
        click.echo("note: no best_val.pt yet: no epoch was completed and validated", err=True)
    epochs = _counted(result.epoch, "complete epoch")
    if not resume:
        click.echo(f"trained {_counted(result.step, 'step')} ({epochs}); checkpoint {result.checkpoint}")
    elif result.losses:  # the steps this call ran, then where the run stands
        click.echo(
            f"trained {_counted(len(result.losses), 'step')}, to step {result.step} ({epochs}); "
            f"checkpoint {result.checkpoint}"
        )
    else:  # said "trained N steps" for a run that had already ended
        click.echo(
            f"nothing to train: the run had already reached step {result.step} ({epochs}); raise --epochs "
            f"or --max-steps to train on; checkpoint {result.checkpoint}"
        )
    sys.exit(0 if result.ok else 1)


def _counted(count: int, noun: str) -> str:
    """``"1 step"``, ``"2 steps"``: ``count`` and ``noun``, plural unless the count is 1."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _training_config(
    config_mod: ModuleType,
    name: str,
    name_without_file: str,
    file_values: dict[str, Any],
    option_values: dict[str, Any],
    config_file: str | None,
) -> Any:
    """Return the preset ``name`` with the --config file's values, then the options' (refusals name the file).

    ``name_without_file`` is the preset the options alone would pick (``name`` may come from the file).
    When the settings are refused and that preset with the options alone is accepted, the file (its
    preset or its values, alone or with an option) is the problem: the message then starts with the file,
    as for its other problems.
    """
    from maskrefine.errors import ConfigError

    try:
        return config_mod.preset(name, **{**file_values, **option_values})
    except ConfigError as exc:
        if not file_values and name == name_without_file:
            raise
        try:
            config_mod.preset(name_without_file, **option_values)
        except ConfigError:
            raise exc from None  # the preset and the options alone are refused: their message
        raise ConfigError(f"config file {config_file}: {exc}") from None


@contextlib.contextmanager
def _blamed_on(config_file: str | None) -> Iterator[None]:
    """Prefix a ConfigError's message with ``config file FILE: `` (a value read from the --config file)."""
    from maskrefine.errors import ConfigError

    try:
        yield
    except ConfigError as exc:
        raise ConfigError(f"config file {config_file}: {exc}") from None


def _train_or_stop(checkpoint: Path, train: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Run ``train``; Ctrl-C, SIGTERM and a diverging loss become messages and exit codes, not tracebacks.

    ``checkpoint``: the run's ``last.pt``; the stop message says to resume only when it was written.
    """
    try:
        return train(*args, **kwargs)
    except KeyboardInterrupt as exc:
        from maskrefine.cli import _stopped  # late, like _cli()

        click.echo(err=True)
        if checkpoint.is_file():
            _stopped(exc, "rerun the same command with --resume to continue from last.pt")
        run_dir = checkpoint.parent
        if run_dir.is_dir() and any(run_dir.iterdir()):
            _stopped(
                exc,
                f"no checkpoint was written yet ({checkpoint.name} does not exist): empty {run_dir} or "
                "choose another --out, and rerun without --resume",
            )
        _stopped(exc, "no checkpoint was written yet: rerun the same command (without --resume)")
    except FloatingPointError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


@click.command("predict", cls=OptionsOnce)
@click.option(
    "--images", "images_dir", required=True, type=_path, metavar="DIRECTORY", help="Folder of images."
)
@click.option(
    "--checkpoint",
    required=True,
    type=_path,
    metavar="FILE",
    help="RUN_DIR/last.pt written by `maskrefine train`.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=_path,
    metavar="DIRECTORY",
    help="Output folder for the soft masks (created if needed).",
)
@click.option(
    "--refine",
    type=click.Choice(["auto", "guided", "none"]),
    default="auto",
    show_default=True,
    help="The run's guided filter (gf_radius, gf_eps; r 9, eps 1e-3 by default) on the fine mask; "
    "auto = guided for a crop-loss checkpoint.",
)
@click.option("--save-coarse", is_flag=True, help="Also write the patch-grid coarse masks to --out/coarse.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option(
    "--backbone-checkpoint",
    type=_path,
    metavar="FILE",
    default=None,
    help="Override the backbone file of the run.",
)
@click.option(
    "--bn-mode", type=click.Choice(["eval", "batch_stats"]), default=None, help="[default: the run's]"
)
@click.option(
    "--polarity",
    type=click.Choice(["border", "batch_mean", "none"]),
    default=None,
    help="[default: the run's]",
)
@mask_output_options
@reading_options("apply_exif", "max_pixels")
@click.option(
    "--report", "report_path", type=_path, metavar="FILE", default=None, help="Write the JSON report there."
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary unless a file failed.")
def predict_cmd(
    images_dir: str,
    checkpoint: str,
    out_dir: str,
    refine: str,
    fmt: str,
    save_coarse: bool,
    device: str,
    backbone_checkpoint: str | None,
    bn_mode: str | None,
    polarity: str | None,
    overwrite: bool,
    skip_existing: bool,
    apply_exif: bool,
    max_pixels: int,
    report_path: str | None,
    quiet: bool,
) -> None:
    """Write a full-size soft mask (fine branch) for every image in --images to --out.

    Same rules as apply: outputs are written atomically, existing ones need --overwrite or
    --skip-existing, a bad image is reported (exit 1) and the others are still written.
    """
    cli = _cli()
    if overwrite and skip_existing:
        raise click.UsageError("--overwrite and --skip-existing are mutually exclusive; pick one.")
    cli._start_job(numba_kernels=False)  # OpenCV's log off: a bad image is reported in the summary
    progress = cli._make_progress("predict", quiet)
    with cli._library_errors(progress, interrupted=cli._resumable(report_path, overwrite)):
        from maskrefine.train.predict_job import predict_folder  # checks paths before torch loads

        report, unwritten = cli._keep_outcomes(
            predict_folder,
            images_dir,
            checkpoint,
            out_dir,
            fmt=fmt,
            refine=refine,
            save_coarse=save_coarse,
            device=device,
            backbone_checkpoint=backbone_checkpoint,
            bn_mode=bn_mode,
            polarity=polarity,
            overwrite=overwrite,
            skip_existing=skip_existing,
            progress=progress,
            report_path=report_path,
            apply_exif=apply_exif,
            max_pixels=max_pixels,
        )
    progress.close()
    # predict reads one folder: its unmatched files are those of --images not read (another format)
    sys.exit(cli._finish_with_report(report, unwritten, quiet, "of --images are not read"))
