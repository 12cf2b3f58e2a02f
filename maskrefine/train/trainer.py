"""The Sempart + crop-consistency trainer.

Phases in DINO's order: run folder, data, model, optimiser, resume, loop, log.
A run folder holds ``config.json`` (resolved config, git SHA, versions, backbone), ``log.jsonl`` (one JSON
line per step and per epoch), ``last.pt`` (the final checkpoint: head, optimiser, step, config, RNG states;
written atomically) and, only with ``keep_best_on_val``, ``best_val.pt``. ``--resume`` continues from
``last.pt`` and gives the same losses as an uninterrupted run.
"""

from __future__ import annotations

import io
import json
import math
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from maskrefine import __version__
from maskrefine.errors import ConfigError
from maskrefine.io.imageio import write_bytes_atomic, write_text_atomic
from maskrefine.train.checkpoint import check_checkpoint_path, safe_torch_load
from maskrefine.train.config import RESULT_FIELDS, TrainConfig
from maskrefine.train.data import Augment, ImageFolder, list_images
from maskrefine.train.model import LOSS_TERMS, SempartModel, build_model, objective

__all__ = ["train", "TrainResult", "epoch_batches", "save_checkpoint", "load_checkpoint", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "maskrefine-sempart-1"
Progress = Callable[[dict[str, Any]], None]


@dataclass(slots=True)
class TrainResult:
    """Where a run ended: global step, epochs completed, the checkpoint written, per-step losses run here."""

    run_dir: Path
    step: int
    epoch: int
    checkpoint: Path
    losses: list[float] = field(default_factory=list)
    best_val: float | None = None


# ------------------------------------------------------------------------------------------ run folder


def _git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _versions() -> dict[str, str]:
    import numba

    return {
        "maskrefine": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "numba": numba.__version__,
    }


def _check_run_dir(run_dir: Path, images_dir: Path, resume: bool) -> None:
    from maskrefine.pipeline.guards import check_output_folder

    if run_dir.is_symlink():
        raise ConfigError(f"run folder {run_dir} is a symbolic link; give the real folder")
    check_output_folder(run_dir, {"images": images_dir})
    if resume:
        if not (run_dir / "last.pt").is_file():
            raise ConfigError(f"--resume: {run_dir / 'last.pt'} not found; start a run without --resume")
    elif run_dir.exists() and any(run_dir.iterdir()):
        raise ConfigError(
            f"run folder {run_dir} is not empty; use --resume to continue that run, or another --out"
        )


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
        if record.get("step", 0) <= upto_step:
            kept.append(line)
    return "".join(line + "\n" for line in kept)


# ------------------------------------------------------------------------------------------ data


def epoch_batches(n_images: int, batch_size: int, seed: int, epoch: int, last_batch: str) -> list[list[int]]:
    """Shuffled index batches of one epoch (a generator seeded by (seed, epoch)).

    A final batch of one image is dropped unless ``last_batch == "keep"``.
    """
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(n_images, generator=g).tolist()
    batches = [order[i : i + batch_size] for i in range(0, n_images, batch_size)]
    if last_batch == "drop_single" and batches and len(batches[-1]) == 1:
        batches.pop()
    return batches


# ------------------------------------------------------------------------------------------ checkpoints


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """``torch.save`` to memory, then an atomic write (a crash leaves the previous checkpoint intact)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return write_bytes_atomic(path, buffer.getvalue())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a training checkpoint with ``weights_only=True``; ConfigError naming the file otherwise."""
    state = safe_torch_load(path, "checkpoint")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(
            f"checkpoint {path}: not a maskrefine training checkpoint (expected format {CHECKPOINT_FORMAT}); "
            "pass RUN_DIR/last.pt written by `maskrefine train`"
        )
    return state


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
) -> dict[str, Any]:
    rng: dict[str, torch.Tensor | list[torch.Tensor]] = {
        "torch": torch.get_rng_state(),
        "crop": crop_gen.get_state(),
    }
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
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
        "maskrefine": __version__,
    }


# ------------------------------------------------------------------------------------------ train


def train(
    cfg: TrainConfig,
    images_dir: str | Path,
    run_dir: str | Path,
    *,
    resume: bool = False,
    val_images: str | Path | None = None,
    val_gt: str | Path | None = None,
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
        ``last.pt`` is always the last step.
    progress : callable, optional
        Called with each step's record (dict with epoch, step, steps_per_epoch, loss, it_s, ...).

    Returns
    -------
    TrainResult

    Raises
    ------
    ConfigError
        Before training: bad folders, no images, unsafe run folder, checkpoint problems, a resume whose
        settings differ. :class:`maskrefine.errors.InputError` naming the file for an unreadable image.
    """
    # ---- run folder
    images_path = Path(images_dir)
    if not str(images_dir).strip() or not images_path.is_dir():
        raise ConfigError(f"images folder {images_dir!s}: not found or not a folder")
    run_path = Path(run_dir)
    if not str(run_dir).strip():
        raise ConfigError("run folder: empty path")
    _check_run_dir(run_path, images_path, resume)
    if (val_images is None) != (val_gt is None):
        raise ConfigError("--val-images and --val-gt go together; give both or neither")
    if cfg.keep_best_on_val and val_images is None:
        raise ConfigError("--keep-best-on-val needs --val-images and --val-gt")
    files = list_images(images_path)
    if len(files) < 2:
        raise ConfigError(f"images folder {images_path}: needs at least 2 images; found {len(files)}")
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available")

    if cfg.backbone_checkpoint is not None and cfg.backbone == "vit":
        # an absolute path, so that `predict` finds the backbone from any working directory
        check_checkpoint_path(cfg.backbone_checkpoint)  # URLs, missing files, FIFOs: named, before anything
        cfg = cfg.replace(backbone_checkpoint=str(Path(cfg.backbone_checkpoint).absolute()))
    checkpoint = load_checkpoint(run_path / "last.pt") if resume else None
    if checkpoint is not None:
        saved = checkpoint["config"]
        changed = [k for k in RESULT_FIELDS if _norm(saved.get(k)) != _norm(getattr(cfg, k))]
        if changed:
            details = ", ".join(f"{k}: {saved.get(k)!r} -> {getattr(cfg, k)!r}" for k in changed[:6])
            raise ConfigError(f"--resume: settings differ from the run's checkpoint ({details})")

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
    if checkpoint is not None:
        model.head.load_state_dict(checkpoint["head"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        step, epoch, next_batch = checkpoint["step"], checkpoint["epoch"], checkpoint["next_batch"]
        best_val = checkpoint.get("best_val")
        torch.set_rng_state(checkpoint["rng"]["torch"])
        crop_gen.set_state(checkpoint["rng"]["crop"])
        if "cuda" in checkpoint["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(checkpoint["rng"]["cuda"])

    # ---- log files
    run_path.mkdir(parents=True, exist_ok=True)
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
        write_text_atomic(log_path, _read_log(log_path, step))
        write_text_atomic(run_path / f"config.resume-{step}.json", json.dumps(header, indent=2) + "\n")

    # ---- data
    aug = Augment(
        cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue, cfg.jitter_p, cfg.grayscale_p, cfg.flip_p
    )
    dataset = ImageFolder(
        images_path, image_size=cfg.image_size, resize=cfg.resize, augment=aug, seed=cfg.seed, files=files
    )

    def state() -> dict[str, Any]:
        return _state(model, optimizer, cfg, backbone_info, step, epoch, next_batch, crop_gen, best_val)

    last = run_path / "last.pt"
    losses: list[float] = []
    with open(log_path, "a", encoding="utf-8") as log:

        def write(record: dict[str, Any]) -> None:
            log.write(json.dumps(record) + "\n")
            log.flush()

        # ---- loop
        stopped = False
        while epoch < cfg.epochs and not stopped:
            batches = epoch_batches(len(files), cfg.batch_size, cfg.seed, epoch, cfg.last_batch)
            dataset.epoch = epoch
            loader = torch.utils.data.DataLoader(
                dataset,
                batch_sampler=batches[next_batch:],
                num_workers=cfg.num_workers,
                pin_memory=device.type == "cuda",
            )
            model.train()
            sums = dict.fromkeys(("loss", *LOSS_TERMS), 0.0)
            counted = 0
            epoch_start = tick = time.perf_counter()
            for images, _ in loader:
                images = images.to(device, non_blocking=True)
                loss, terms = objective(model, images, cfg, crop_gen)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                next_batch += 1
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise FloatingPointError(f"loss is {value} at step {step}; lower --lr or check the data")
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
            if val_images is not None and val_gt is not None:  # both or neither (checked above)
                metrics = validate(model, cfg, val_images, val_gt, device)
                summary["val"] = metrics
                if cfg.keep_best_on_val and (best_val is None or metrics["iou"] > best_val):
                    best_val = metrics["iou"]
                    save_checkpoint(run_path / "best_val.pt", state())
            write(summary)
            save_checkpoint(last, state())
        save_checkpoint(last, state())
    return TrainResult(run_path, step, epoch, last, losses, best_val)


def _norm(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def validate(
    model: SempartModel,
    cfg: TrainConfig,
    images_dir: str | Path,
    gt_dir: str | Path,
    device: str | torch.device,
) -> dict[str, float]:
    """Mean IoU (threshold 0.5) and MAE of the model's masks on a labelled folder.

    The metrics are logged; they never select anything unless ``keep_best_on_val``.
    """
    from maskrefine.io import IMAGE_EXTENSIONS, MASK_EXTENSIONS, match_folders
    from maskrefine.io.imageio import read_image, read_mask
    from maskrefine.train.predict import Predictor

    predictor = Predictor(model, cfg, device=device)
    pairing = match_folders(Path(images_dir), Path(gt_dir), IMAGE_EXTENSIONS, MASK_EXTENSIONS)
    ious, maes = [], []
    for pair in pairing.pairs:
        gt = read_mask(pair.second) > 0.5
        pred = predictor.predict([read_image(pair.first)])[0].fine
        binary = pred > 0.5
        union = np.logical_or(binary, gt).sum()
        ious.append(float(np.logical_and(binary, gt).sum() / union) if union else 1.0)
        maes.append(float(np.abs(pred - gt).mean()))
    model.train()
    return {
        "iou": float(np.mean(ious)) if ious else float("nan"),
        "mae": float(np.mean(maes)) if maes else float("nan"),
        "images": len(ious),
    }
