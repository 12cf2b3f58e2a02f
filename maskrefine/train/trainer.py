"""The Sempart + crop-consistency trainer.

Phases in DINO's order: run folder, data, model, optimiser, resume, loop, log.
A run folder holds ``config.json`` (resolved config, git SHA, versions, backbone), ``log.jsonl`` (one JSON
line per step and per epoch), ``last.pt`` (the final checkpoint: head, optimiser, step, config, RNG states;
written atomically) and, only with ``keep_best_on_val``, ``best_val.pt``. ``--resume`` continues from
``last.pt`` and gives the same losses as an uninterrupted run on the CPU (on CUDA, up to the rounding of
non-deterministic kernels; docs/training.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import platform
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np
import torch

from maskrefine import __version__
from maskrefine._checks import short_repr
from maskrefine._signals import StopRequest, stops_deferred
from maskrefine.errors import ConfigError, InputError
from maskrefine.io.imageio import remove_stale_temps, write_bytes_atomic, write_text_atomic
from maskrefine.train.checkpoint import safe_torch_load
from maskrefine.train.config import RESULT_FIELDS, TrainConfig
from maskrefine.train.data import Augment, ImageFolder
from maskrefine.train.model import (
    LOSS_TERMS,
    SempartModel,
    backbone_changes,
    build_model,
    objective,
    usable_device,
)
from maskrefine.train.preflight import Progress, TrainingRun, validation_pairs

__all__ = [
    "train",
    "train_checked",
    "TrainResult",
    "epoch_batches",
    "save_checkpoint",
    "load_checkpoint",
    "CHECKPOINT_FORMAT",
]

CHECKPOINT_FORMAT = "maskrefine-sempart-1"


@dataclass(slots=True)
class TrainResult:
    """Where a run ended: global step, epochs completed, the checkpoint written, per-step losses run here.

    Parameters
    ----------
    run_dir : Path
        The run folder.
    step : int
        Global step reached (counting the steps of a resumed run's earlier part).
    epoch : int
        Epochs completed.
    checkpoint : Path
        The last checkpoint written (``run_dir/last.pt``).
    losses : list of float, default []
        Total loss of each step run by this call.
    best_val : float, optional
        Best validation IoU, kept only with ``keep_best_on_val`` (carried over from the checkpoint of a
        resumed run).
    val_failures : list of str, default []
        Validation files that could not be used, each with its problem.
    train_failures : list of str, default []
        Training images that could not be decoded in this call (e.g. truncated after a valid header),
        each with its problem: they were left out of their batches; the other images trained.
    """

    run_dir: Path
    step: int
    epoch: int
    checkpoint: Path
    losses: list[float] = field(default_factory=list)
    best_val: float | None = None
    val_failures: list[str] = field(default_factory=list)
    train_failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """False when a training or validation file could not be used.

        Each one is named in :attr:`train_failures` or :attr:`val_failures`.
        """
        return not self.val_failures and not self.train_failures


# ------------------------------------------------------------------------------------------ run folder


def _git_sha() -> str | None:
    """Commit of the maskrefine checkout this module runs from, or None (an installed copy).

    Only when git tracks this very file: an installed package inside some other repository (a venv in the
    user's project) must not record that project's commit as maskrefine's.
    """
    here = Path(__file__).resolve()

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", *args], cwd=here.parent, capture_output=True, text=True, timeout=5, check=False
        )

    try:
        if git("ls-files", "--error-unmatch", here.name).returncode != 0:
            return None
        out = git("rev-parse", "HEAD")
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def _versions() -> dict[str, str]:
    import numba

    return {
        "maskrefine": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "numba": numba.__version__,
    }


def _check_resume_outputs(run_dir: Path, step: int, keep_best: bool) -> None:
    """Refuse (ConfigError) a symlink, FIFO or folder where a resumed run writes one of its files."""
    from maskrefine.pipeline.guards import check_writable_target

    names = ["log.jsonl", f"config.resume-{step}.json"] + (["best_val.pt"] if keep_best else [])
    for name in names:
        check_writable_target(run_dir / name, "--resume: run file")


def _logged_epoch(log_text: str, epoch: int) -> bool:
    """Whether ``log.jsonl``'s text holds the summary line of ``epoch``."""
    for line in log_text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("event") == "epoch" and record.get("epoch") == epoch:
            return True
    return False


def _read_log(path: Path, upto_step: int) -> str:
    """Lines of ``log.jsonl`` up to ``upto_step`` (what the checkpoint covers)."""
    if not path.is_file():
        return ""
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict):  # a damaged or hand-edited line: dropped, like unparsable ones
            continue
        step = record.get("step", 0)
        if isinstance(step, (int, float)) and not isinstance(step, bool) and step <= upto_step:
            kept.append(line)
    return "".join(line + "\n" for line in kept)


# ------------------------------------------------------------------------------------------ data


class _FailuresAsData(torch.utils.data.Dataset):
    """The training images for a DataLoader: ``(image, index, problem)``, a file's InputError returned.

    torch re-raises an exception of a worker process by calling its class with one message; InputError
    takes a path and a problem, so with ``num_workers`` >= 1 a bad file came out as a RuntimeError with
    the worker's traceback. Returned as data (``problem`` is ``""`` for a good file, its image then
    zeros), the trainer handles the file's problem itself, the same for any ``num_workers``.
    """

    def __init__(self, images: ImageFolder) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, str]:
        try:
            image, index = self.images[index]
        except InputError as exc:
            size = self.images.image_size
            return torch.zeros(3, size, size), index, exc.problem
        return image, index, ""


def epoch_batches(n_images: int, batch_size: int, seed: int, epoch: int, last_batch: str) -> list[list[int]]:
    """Shuffled index batches of one epoch (a generator seeded by (seed, epoch)).

    A final batch of one image is dropped when ``last_batch == "drop_single"`` and ``batch_size > 1``
    (with ``batch_size`` 1 every batch has one image and all are kept). The generator's seed is taken
    modulo 2**64 (torch's seed range).
    """
    g = torch.Generator().manual_seed((seed * 100_003 + epoch) % 2**64)
    order = torch.randperm(n_images, generator=g).tolist()
    batches = [order[i : i + batch_size] for i in range(0, n_images, batch_size)]
    if batches and not _trains_batch_of(len(batches[-1]), batch_size, last_batch):
        batches.pop()
    return batches


def _trains_batch_of(n_images: int, batch_size: int, last_batch: str) -> bool:
    """Whether a batch of ``n_images`` trains: not when empty, nor one image under ``"drop_single"``.

    A batch of one image is trained only when ``batch_size`` is 1 or ``last_batch == "keep"``; the
    rule of the epoch's final batch (:func:`epoch_batches`) and of a batch left with one image when the
    trainer leaves out an undecodable one.
    """
    return n_images > 1 or (n_images == 1 and (batch_size == 1 or last_batch != "drop_single"))


# ------------------------------------------------------------------------------------------ checkpoints


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """``torch.save`` to memory, then an atomic write (a crash leaves the previous checkpoint intact)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return write_bytes_atomic(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike[str], *, resume: bool = False) -> dict[str, Any]:
    """Read a training checkpoint with ``weights_only=True`` and check its structure.

    Always checked: the format tag, ``config`` (a table of valid :class:`TrainConfig` settings) and
    ``head`` (a table of tensors, all finite). With ``resume`` also what ``--resume`` restores:
    ``optimizer``, ``step``, ``epoch``, ``next_batch``, ``rng`` and ``best_val``.

    Parameters
    ----------
    path : str or Path
        The checkpoint file (e.g. ``RUN_DIR/last.pt`` written by ``maskrefine train``).
    resume : bool, default False
        Also check the entries ``--resume`` restores.

    Returns
    -------
    dict
        The checkpoint's contents as loaded (on the CPU).

    Raises
    ------
    ConfigError
        Naming the file and what is wrong (unreadable, not a training checkpoint, a missing or malformed
        entry, an unknown or invalid setting).
    """
    state = safe_torch_load(path, "checkpoint")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(
            f"checkpoint {path}: not a maskrefine training checkpoint (expected format {CHECKPOINT_FORMAT}); "
            "pass RUN_DIR/last.pt written by `maskrefine train`"
        )
    problem = _checkpoint_problem(state, resume)
    if problem is not None:
        raise ConfigError(f"checkpoint {path}: {problem}")
    return state


def _is_table(value: object, values: type | tuple[type, ...] = object) -> TypeGuard[dict[str, Any]]:
    """Return whether ``value`` is a dict with string keys whose values are instances of ``values``."""
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, values) for k, v in value.items()
    )


def _kind(state: dict[str, Any], key: str) -> str:
    if key not in state:
        return "missing"
    return "None" if state[key] is None else f"a {type(state[key]).__name__}"


def _checkpoint_problem(state: dict[str, Any], resume: bool) -> str | None:
    """Return what is wrong with the entries of a training checkpoint (None when nothing is)."""
    config = state.get("config")
    if not _is_table(config):
        return f"entry 'config' (the training settings) is {_kind(state, 'config')}, not a table of settings"
    try:
        TrainConfig.from_dict(config, source="entry 'config'")
    except (ConfigError, TypeError, ValueError) as exc:
        return str(exc)
    head = state.get("head")
    if not _is_table(head, torch.Tensor) or not head:
        return f"entry 'head' (the head weights) is {_kind(state, 'head')}, not a table of tensors"
    broken = [k for k, v in head.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if broken:  # a diverged or damaged head would give masks of garbage
        return f"entry 'head' holds NaN or infinite values ({', '.join(broken[:3])})"
    negative = [
        k
        for k, v in head.items()
        if k.endswith("running_var") and v.is_floating_point() and bool((v < 0).any())
    ]
    if negative:  # a variance below 0 makes batch norm's output NaN for every image
        return f"entry 'head' holds negative batch-norm variances ({', '.join(negative[:3])})"
    if not resume:
        return None
    optimizer = state.get("optimizer")
    if not _is_table(optimizer) or not {"state", "param_groups"} <= set(optimizer):
        return f"entry 'optimizer' is {_kind(state, 'optimizer')}, not an optimizer state"
    for key in ("step", "epoch", "next_batch"):
        value = state.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"entry {key!r} is {short_repr(value)}; expected an integer >= 0"
    rng = state.get("rng")
    if not _is_table(rng) or not all(isinstance(rng.get(k), torch.Tensor) for k in ("torch", "crop")):
        return f"entry 'rng' is {_kind(state, 'rng')}, not the random generator states"
    best = state.get("best_val")
    if best is not None and (isinstance(best, bool) or not isinstance(best, (int, float))):
        return f"entry 'best_val' is {short_repr(best)}; expected a number or None"
    pending = state.get("pending_summary")  # absent in checkpoints of maskrefine before 2026-12-02
    if pending is not None and not (
        _is_table(pending)
        and pending.get("event") == "epoch"
        and isinstance(pending.get("epoch"), int)
        and not isinstance(pending.get("epoch"), bool)
    ):
        return f"entry 'pending_summary' is {short_repr(pending)}; expected an epoch record or None"
    return None


def _state(
    model: SempartModel,
    optimizer: torch.optim.Optimizer,
    cfg: TrainConfig,
    backbone: dict[str, Any],
    step: int,
    epoch: int,
    next_batch: int,
    crop_gen: torch.Generator,
    best_val: float | None,
    epoch_sums: dict[str, float],
    epoch_steps: int,
    pending_summary: dict[str, Any] | None = None,
    images: dict[str, Any] | None = None,
) -> dict[str, Any]:
    rng: dict[str, torch.Tensor] = {
        "torch": torch.get_rng_state(),
        "crop": crop_gen.get_state(),
    }
    return {
        "format": CHECKPOINT_FORMAT,
        "head": model.head.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "epoch": epoch,
        "next_batch": next_batch,
        "config": cfg.to_dict(),
        "backbone": backbone,
        "rng": rng,
        "best_val": best_val,
        # the running sums of the epoch in progress, so that a resumed epoch's summary covers all its steps
        "epoch_sums": {"sums": dict(epoch_sums), "steps": epoch_steps},
        # the summary of the epoch just ended, until its log line is written (validation runs in between):
        # a run killed while validating writes that line when it is resumed
        "pending_summary": pending_summary,
        # which training images (count and names): --resume refuses another list
        "images": images,
        "maskrefine": __version__,
    }


# ------------------------------------------------------------------------------------------ train


def train(
    cfg: TrainConfig,
    images_dir: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    *,
    resume: bool = False,
    val_images: str | os.PathLike[str] | None = None,
    val_gt: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Train the Sempart head on the images of ``images_dir``; write the run to ``run_dir``.

    Parameters
    ----------
    cfg : TrainConfig
    images_dir : path-like
        Training images (no labels).
    run_dir : path-like
        Run folder (created; must be empty unless ``resume``; never inside ``images_dir``).
    resume : bool
        Continue from ``run_dir/last.pt``. The result settings (:data:`RESULT_FIELDS`) must equal the
        checkpoint's; ``epochs``, ``max_steps``, ``device`` … may change.
    val_images, val_gt : path-like, optional
        Validation images and ground-truth masks (paired by stem): mean IoU at 0.5 and MAE are **logged**
        after each epoch. They choose nothing unless ``cfg.keep_best_on_val`` (then also ``best_val.pt``);
        ``last.pt`` is always the last step (saved before validating). Every file is paired and its header
        read before training; a file that still cannot be used (e.g. truncated) is left out of the
        metrics and named in :attr:`TrainResult.val_failures` (``ok`` is then False).
    progress : callable, optional
        Called with each step's record (dict with epoch, step, steps_per_epoch, loss, it_s, ...).

    Returns
    -------
    TrainResult

    Raises
    ------
    ConfigError
        Before training: bad folders, no images, unsafe run folder (also a symlink, FIFO or folder where
        a resumed run writes), checkpoint problems, a resume whose settings or training images (names,
        count) differ, a training image that is not a regular file, has no valid header or is over the
        pixel limit, validation files without a partner, with an unreadable header or a size that cannot
        be their image's.

    Notes
    -----
    A training image that still cannot be decoded (e.g. truncated after a valid header) does not stop
    the run: it is left out of each batch that draws it (a batch left empty, or with one image under
    ``last_batch="drop_single"``, is passed over), logged in ``log.jsonl`` (``"event": "skipped_image"``,
    once per call) and named in :attr:`TrainResult.train_failures`
    (``ok`` is then False). A new run in which no batch kept enough images that could be decoded (none,
    or one under ``"drop_single"``) trained nothing: it raises :class:`maskrefine.errors.InputError`
    naming the first such file and which of the two happened, and its files are removed.
    """
    from maskrefine.train.preflight import check_training_run

    return train_checked(
        check_training_run(
            cfg, images_dir, run_dir, resume=resume, val_images=val_images, val_gt=val_gt, progress=progress
        )
    )


def train_checked(run: TrainingRun) -> TrainResult:
    """Train a run that :func:`maskrefine.train.preflight.check_training_run` accepted (see :func:`train`).

    ``maskrefine train`` checks the run first, before torch is imported, then calls this.
    """
    cfg, images_path, run_path, files = run.cfg, run.images_path, run.run_path, run.files
    resume, val_images, val_gt, val_pairs, progress = (
        run.resume,
        run.val_images,
        run.val_gt,
        run.val_pairs,
        run.progress,
    )
    device = usable_device(cfg.device, option="training setting device")  # from --device or a config file
    checkpoint = load_checkpoint(run_path / "last.pt", resume=True) if resume else None
    if checkpoint is not None:
        _check_resume_outputs(run_path, checkpoint["step"], cfg.keep_best_on_val)
        saved = checkpoint["config"]
        # a backbone recorded by its weights is compared by them below (a copy elsewhere is the same
        # backbone); an older checkpoint's, recorded by its path only, by that path
        recorded_backbone = checkpoint.get("backbone")
        by_weights = isinstance(recorded_backbone, dict) and "weights_sha256" in recorded_backbone
        changed = [
            k
            for k in RESULT_FIELDS
            if not (k == "backbone_checkpoint" and by_weights)
            and _norm(saved.get(k)) != _norm(getattr(cfg, k))
        ]
        if changed:
            details = ", ".join(
                f"{k}: {short_repr(saved.get(k))} -> {short_repr(getattr(cfg, k))}" for k in changed[:6]
            )
            raise ConfigError(f"--resume: settings differ from the run's checkpoint ({details})")
        ran_on = checkpoint.get("images")  # absent in checkpoints of maskrefine before 2026-12-02
        if isinstance(ran_on, dict) and ran_on != _images_id(files):
            raise ConfigError(
                f"--resume: the training images differ from the run's ({ran_on.get('count')} files then, "
                f"{len(files)} in {images_path} now, or other names): the epochs would be drawn over "
                "another list; resume with the run's images, or start a new run"
            )

    # ---- model (seeded: the head's initial weights depend only on the seed)
    torch.manual_seed(cfg.seed)
    model, backbone_info = build_model(cfg)
    model.to(device)
    optimizer = torch.optim.AdamW(
        model.head.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay
    )
    crop_gen = torch.Generator().manual_seed(cfg.seed + 1)
    step = epoch = next_batch = 0
    best_val = None
    pending: dict[str, Any] | None = None  # an epoch summary saved in last.pt but not yet in log.jsonl
    sums = dict.fromkeys(("loss", *LOSS_TERMS), 0.0)  # of the epoch in progress
    counted = 0
    if checkpoint is not None:
        backbone_change = backbone_changes(checkpoint.get("backbone"), backbone_info)
        if backbone_change is not None:  # the head would go on learning from another backbone's features
            raise ConfigError(
                f"--resume: the backbone {cfg.backbone_checkpoint} is not the backbone the run was trained "
                f"on ({backbone_change}); resume with the run's backbone file"
            )
        try:
            model.head.load_state_dict(checkpoint["head"])
            optimizer.load_state_dict(checkpoint["optimizer"])
            torch.set_rng_state(checkpoint["rng"]["torch"])
            crop_gen.set_state(checkpoint["rng"]["crop"])
        except (RuntimeError, KeyError, TypeError, ValueError, IndexError) as exc:
            raise ConfigError(
                f"--resume: checkpoint {run_path / 'last.pt'}: cannot restore the run's state "
                f"({type(exc).__name__}: {' '.join(str(exc).split())[:300]})"  # torch's text spans lines
            ) from None
        step, epoch, next_batch = checkpoint["step"], checkpoint["epoch"], checkpoint["next_batch"]
        best_val = checkpoint.get("best_val")
        pending = checkpoint.get("pending_summary")
        partial = checkpoint.get("epoch_sums")  # absent in checkpoints of maskrefine before 2026-12-01
        if next_batch and partial is not None:
            try:
                if set(partial["sums"]) != set(sums) or isinstance(partial["steps"], bool):
                    raise ValueError(f"keys {sorted(partial['sums'])}")
                sums = {key: float(value) for key, value in partial["sums"].items()}
                counted = int(partial["steps"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ConfigError(
                    f"--resume: checkpoint {run_path / 'last.pt'}: entry 'epoch_sums' is malformed ({exc})"
                ) from None

    # ---- log files
    created = not run_path.exists()
    run_path.mkdir(parents=True, exist_ok=True)
    if checkpoint is not None:  # a run killed while writing a file left its temporary copy behind
        remove_stale_temps(run_path, {"last.pt", "best_val.pt", "log.jsonl", "config.json"})
    log_path = run_path / "log.jsonl"
    header = {
        "config": cfg.to_dict(),
        "images_dir": str(images_path),
        "n_images": len(files),
        "backbone": backbone_info,
        "git_sha": _git_sha(),
        "versions": _versions(),
        "val_images": None if val_images is None else str(val_images),
        "val_gt": None if val_gt is None else str(val_gt),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if checkpoint is None:
        write_text_atomic(run_path / "config.json", json.dumps(header, indent=2) + "\n")
        write_text_atomic(log_path, "")
    else:
        kept_log = _read_log(log_path, step)
        write_text_atomic(log_path, kept_log)
        if pending is not None and _logged_epoch(kept_log, pending["epoch"]):
            pending = None  # the line was written after the checkpoint was saved
        write_text_atomic(run_path / f"config.resume-{step}.json", json.dumps(header, indent=2) + "\n")

    # ---- data
    images_id = _images_id(files)
    aug = Augment(
        cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue, cfg.jitter_p, cfg.grayscale_p, cfg.flip_p
    )
    dataset = ImageFolder(
        images_path,
        image_size=cfg.image_size,
        resize=cfg.resize,
        augment=aug,
        seed=cfg.seed,
        files=files,
        max_pixels=cfg.max_pixels,
    )

    def state() -> dict[str, Any]:
        _check_finite_head(model.head, step)  # never saved: the last good last.pt stays for --resume
        return _state(
            model,
            optimizer,
            cfg,
            backbone_info,
            step,
            epoch,
            next_batch,
            crop_gen,
            best_val,
            sums,
            counted,
            pending,
            images_id,
        )

    last = run_path / "last.pt"
    if checkpoint is None:  # step 0: a run stopped before its first checkpoint can still be resumed
        save_checkpoint(last, state())
    # where a resumed run starts: resuming a finished run with the settings its last.pt records trains
    # nothing and leaves that file as it is (a backbone given at another path is recorded)
    resumed_at = (
        None
        if checkpoint is None
        or checkpoint.get("config") != cfg.to_dict()
        or checkpoint.get("backbone") != backbone_info
        else (step, epoch, next_batch, pending is not None)
    )
    losses: list[float] = []
    val_failures: dict[str, None] = {}  # each unusable validation file once, in order
    train_failures: dict[str, InputError] = {}  # each undecodable training image once, in order
    single_batches = 0  # batches passed over because one decodable image was left in them
    with (
        _removed_if_untrained(run_path, created, lambda: step, fresh=checkpoint is None),
        open(log_path, "a", encoding="utf-8") as log,
    ):

        def write(record: dict[str, Any]) -> None:
            log.write(json.dumps(record) + "\n")
            log.flush()

        def finish_epoch(summary: dict[str, Any]) -> None:
            """Validate (when asked) and write the epoch's summary line."""
            nonlocal best_val
            if val_pairs is not None:
                metrics = validate(model, cfg, val_images or "", val_gt or "", device, pairs=val_pairs)
                val_failures.update(dict.fromkeys(metrics["failed"]))
                summary["val"] = metrics
                iou = metrics["iou"]
                if cfg.keep_best_on_val and math.isfinite(iou) and (best_val is None or iou > best_val):
                    best_val = iou
                    save_checkpoint(run_path / "best_val.pt", state())
                    save_checkpoint(last, state())  # records best_val for --resume
            write(summary)

        if pending is not None:  # killed while validating: finish that epoch's line first
            finish_epoch(dict(pending))
            pending = None

        # ---- loop (a resumed run whose max_steps is already reached trains no further step). Ctrl-C or
        # SIGTERM (see maskrefine._signals) is acted on between steps: last.pt is written at the step
        # reached, so --resume loses nothing; a second signal stops at once.
        stopped = cfg.max_steps is not None and step >= cfg.max_steps
        with stops_deferred(StopRequest()) as stop:
            while epoch < cfg.epochs and not stopped:
                batches = epoch_batches(len(files), cfg.batch_size, cfg.seed, epoch, cfg.last_batch)
                dataset.epoch = epoch
                loader = torch.utils.data.DataLoader(
                    _FailuresAsData(dataset),
                    batch_sampler=batches[next_batch:],
                    num_workers=cfg.num_workers,
                    pin_memory=device.type == "cuda",
                )
                model.train()
                if next_batch == 0:  # a new epoch (a resumed one goes on with its sums from last.pt)
                    sums = dict.fromkeys(("loss", *LOSS_TERMS), 0.0)
                    counted = 0
                epoch_start = tick = time.perf_counter()
                for images, indices, problems in loader:
                    # a file read_image could not decode (in whichever process read it) is left out of
                    # its batch, logged once and named in the result; the rest of the batch trains
                    good = [i for i, problem in enumerate(problems) if not problem]
                    for index, problem in zip(indices.tolist(), problems, strict=True):
                        if problem:
                            failure = InputError(dataset.files[index], problem)
                            if str(failure) not in train_failures:
                                train_failures[str(failure)] = failure
                                write(
                                    {
                                        "event": "skipped_image",
                                        "epoch": epoch + 1,
                                        "step": step,
                                        "file": str(dataset.files[index]),
                                        "problem": problem,
                                    }
                                )
                    if not _trains_batch_of(len(good), cfg.batch_size, cfg.last_batch):
                        next_batch += 1  # nothing left to train on, or one image where a batch of one
                        single_batches += len(good) == 1  # is dropped (BatchNorm statistics of one image)
                        continue  # passed over
                    if len(good) < len(problems):
                        images = images[good]
                    images = images.to(device, non_blocking=True)
                    loss, terms = objective(model, images, cfg, crop_gen)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    step += 1
                    next_batch += 1
                    value = float(loss.detach())
                    if not math.isfinite(value):
                        raise FloatingPointError(
                            f"loss is {value} at step {step}; lower --lr or check the data"
                        )
                    losses.append(value)
                    now = time.perf_counter()
                    record = {
                        "event": "step",
                        "epoch": epoch + 1,
                        "step": step,
                        "batch": next_batch,
                        "steps_per_epoch": len(batches),
                        "loss": value,
                        **terms,
                        "lr": optimizer.param_groups[0]["lr"],
                        "it_s": 1.0 / max(now - tick, 1e-9),
                    }
                    tick = now
                    for key in sums:
                        sums[key] += record.get(key, 0.0)
                    counted += 1
                    if step % cfg.log_every == 0:
                        write(record)
                    if progress is not None:
                        progress(record)
                    if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                        save_checkpoint(last, state())
                    if cfg.max_steps is not None and step >= cfg.max_steps:
                        stopped = True
                        break
                    if stop.requested:  # between two steps: keep them all, then stop
                        save_checkpoint(last, state())
                        raise stop.exception()
                if stopped and next_batch < len(batches):
                    break
                epoch += 1
                next_batch = 0
                summary: dict[str, Any] = {
                    "event": "epoch",
                    "epoch": epoch,
                    "step": step,
                    "seconds": time.perf_counter() - epoch_start,
                    "steps": counted,
                    **{f"{k}_mean": (v / counted if counted else None) for k, v in sums.items()},
                }
                pending = summary
                save_checkpoint(last, state())  # before validating: the epoch is kept whatever happens there
                finish_epoch(dict(summary))
                pending = None
                if stop.requested:
                    save_checkpoint(last, state())
                    raise stop.exception()
        if checkpoint is None and step == 0 and train_failures:  # undecodable images left no batch to
            first = next(iter(train_failures.values()))  # train: the run's files are removed (above)
            others = len(train_failures) - 1
            why = (
                f"every batch was left with at most one image that could be decoded (batch size "
                f"{cfg.batch_size}), and a batch of one is dropped (BatchNorm needs two); add images or use "
                "--batch-size 1 (batch_size=1)"
                if single_batches
                else "no batch held an image that could be decoded"
            )
            raise InputError(
                first.path,
                f"{first.problem}; nothing was trained: {why}"
                + (f" ({others} other training image(s) failed too)" if others else ""),
            )
        if resumed_at != (step, epoch, next_batch, False):  # trained, finished an epoch's line, new settings
            save_checkpoint(last, state())
    return TrainResult(
        run_path, step, epoch, last, losses, best_val, list(val_failures), list(train_failures)
    )


@contextlib.contextmanager
def _removed_if_untrained(
    run_path: Path, created: bool, steps: Callable[[], int], *, fresh: bool
) -> Iterator[None]:
    """On an error before the first step of a new run, remove the files the run wrote, and its folder.

    Nothing was trained; a step-0 ``last.pt`` left behind would make the rerun (once the data is fixed,
    e.g. an undecodable image removed) ask for ``--resume``, which then refuses the changed image list.
    The files are this run's own (the folder was empty or new, see
    :func:`maskrefine.train.preflight.check_training_run`). Ctrl-C and
    SIGTERM are not errors: a run stopped at step 0 keeps its state for ``--resume``.
    """
    try:
        yield
    except Exception:
        if fresh and steps() == 0:
            for name in ("last.pt", "best_val.pt", "log.jsonl", "config.json"):
                with contextlib.suppress(OSError):
                    (run_path / name).unlink()
            if created:
                with contextlib.suppress(OSError):
                    run_path.rmdir()
        raise


def _check_finite_head(head: torch.nn.Module, step: int) -> None:
    """Raise FloatingPointError when an update made a head weight NaN or infinite (a diverged run).

    The loss is checked at every step, but it is computed before the step's update: an update that
    overflows shows only in the weights, and the next loss. Checked before every checkpoint, so a
    diverged head is never written (``predict`` and ``--resume`` would refuse it).
    """
    broken = [
        name for name, p in head.state_dict().items() if p.is_floating_point() and not torch.isfinite(p).all()
    ]
    if broken:
        raise FloatingPointError(
            f"head weights became NaN or infinite at step {step} ({', '.join(broken[:3])}); lower --lr or "
            "check the data (last.pt keeps the last checkpoint written before)"
        )


def _images_id(files: list[Path]) -> dict[str, Any]:
    """Count and SHA-1 of the names of the training images (what a resumed run must find again)."""
    names = "\n".join(path.name for path in files)
    return {
        "count": len(files),
        "names_sha1": hashlib.sha1(names.encode("utf-8", "surrogateescape")).hexdigest(),
    }


def _norm(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def validate(
    model: SempartModel,
    cfg: TrainConfig,
    images_dir: str | os.PathLike[str],
    gt_dir: str | os.PathLike[str],
    device: str | torch.device,
    *,
    pairs: list[tuple[Path, Path]] | None = None,
) -> dict[str, Any]:
    """Mean IoU (threshold 0.5) and MAE of the model's masks on a labelled folder.

    The metrics are logged; they never select anything unless ``keep_best_on_val``. ``pairs`` (image,
    ground truth) are those of the two folders unless given. A file that cannot be used (unreadable,
    truncated, a ground truth of another size) is left out and named in ``"failed"``; the others count.
    """
    from maskrefine.errors import InputError
    from maskrefine.io.imageio import read_image, read_mask
    from maskrefine.pipeline.reports import describe_unexpected
    from maskrefine.train.predict import Predictor

    if pairs is None:
        pairs = validation_pairs(Path(images_dir), Path(gt_dir))
    predictor = Predictor(model, cfg, device=device)
    ious, maes, failed = [], [], []
    for image_path, gt_path in pairs:
        current = gt_path
        try:
            gt = read_mask(gt_path, max_pixels=cfg.max_pixels) > 0.5
            current = image_path
            image = read_image(image_path, max_pixels=cfg.max_pixels)
            if gt.shape != image.shape[:2]:
                raise InputError(
                    gt_path,
                    f"ground truth is {gt.shape[0]}x{gt.shape[1]} but its image {image_path.name} is "
                    f"{image.shape[0]}x{image.shape[1]} (HxW); left out of the validation",
                )
            pred = predictor.predict([image])[0].fine
        except InputError as exc:
            failed.append(str(exc))
            continue
        except Exception as exc:  # noqa: BLE001 - one file never ends the run
            failed.append(describe_unexpected(current, exc))
            continue
        binary = pred > 0.5
        union = np.logical_or(binary, gt).sum()
        ious.append(float(np.logical_and(binary, gt).sum() / union) if union else 1.0)
        maes.append(float(np.abs(pred - gt).mean()))
    model.train()
    return {
        "iou": float(np.mean(ious)) if ious else float("nan"),
        "mae": float(np.mean(maes)) if maes else float("nan"),
        "images": len(ious),
        "failed": failed,
    }
