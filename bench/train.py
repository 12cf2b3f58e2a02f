"""Training-step cost of the real-size configuration: ViT-S/8 (random init), batch 8, 320x320.

Run ``python bench/train.py [--steps N] [--warmup N] [--batch 8] [--size 320] [--device cpu|cuda] [--amp]
[--json PATH]``. Rows, measured in alternating rounds in one process (a noisy shared machine slows all
rows alike):

* ``plain``: Sempart losses only (one backbone pass);
* ``crop``: + multi-scale crop consistency as maskrefine runs it (second backbone pass on the zoomed crops,
  teacher fine branch without autograd, guided-filter target);
* ``crop, teacher fine with autograd``: the same losses with the teacher's fine branch recorded by
  autograd, as the reference repository runs it (same values and gradients, one more backward).

Each step is ``objective -> backward -> AdamW step`` on a fixed random batch. Reported: seconds per step
(median of ``--steps``), iterations/s, images/s, ratio to ``plain`` (target: crop <= 1.6x), the cost of an
epoch of DUTS-TR (10,553 images = 1,319 steps of 8), and peak memory (CUDA: max allocated per row; CPU:
the process's peak RSS after each row's first step, so later rows include earlier peaks). No assertion on
timings.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import RESULTS_DIR, ensure_malloc_env, metadata, print_table, save_json  # noqa: E402

DUTS_TR_STEPS = 1319  # ceil(10,553 / 8): every batch kept but the final one of a single image
#: The measured configuration (the figures bench/README.md cites); any other writes a "-custom" JSON.
_DEFAULTS = {"steps": 2, "warmup": 1, "batch": 8, "size": 320}


def main() -> None:
    ensure_malloc_env()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for key, value in _DEFAULTS.items():
        parser.add_argument(f"--{key}", type=int, default=value)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    try:
        import torch
    except ImportError:
        print("skip bench/train.py: torch not installed (pip install 'torch==2.13.0' -e '.[torch]')")
        return

    from maskrefine.train.config import preset
    from maskrefine.train.model import SempartModel, objective
    from maskrefine.train.sempart import SempartHead
    from maskrefine.train.vit import vit_from_arch

    device = torch.device(args.device)
    torch.manual_seed(0)
    backbone = vit_from_arch("vit_small", 8).eval()
    head = SempartHead(384, 64, 8)
    model = SempartModel(backbone, head).to(device).train()
    n_params = sum(p.numel() for p in head.parameters())
    images = torch.randn(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(1)).to(
        device
    )
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-4, betas=(0.9, 0.99))
    base = preset(
        "paper",
        image_size=args.size,
        resize=args.size + 15,
        batch_size=args.batch,
        device=args.device,
        amp=args.amp,
    )
    rows = {
        "plain": (base.replace(crop_loss=False), False),
        "crop": (base, False),
        "crop, teacher fine with autograd": (base, True),
    }
    generator = torch.Generator().manual_seed(2)

    def step(cfg, teacher_grad):
        loss, _ = objective(model, images, cfg, generator, teacher_fine_grad=teacher_grad)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    samples = {name: [] for name in rows}
    peaks = {}
    for round_ in range(args.warmup + args.steps):  # alternating rounds; the first `warmup` are not kept
        for name, (cfg, teacher_grad) in rows.items():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            start = time.perf_counter()
            step(cfg, teacher_grad)
            seconds = time.perf_counter() - start
            if round_ == 0:  # CPU: the process peak so far (monotonic), CUDA: this row's own peak
                peaks[name] = (
                    torch.cuda.max_memory_allocated(device) / 2**20
                    if device.type == "cuda"
                    else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                )
            kept = round_ >= args.warmup
            if kept:
                samples[name].append(seconds)
            print(f"round {round_ + 1}: {name}: {seconds:.2f} s{'' if kept else ' (warm-up)'}", flush=True)

    plain = sorted(samples["plain"])[len(samples["plain"]) // 2]
    table = []
    for name, values in samples.items():
        values = sorted(values)
        median = (
            values[len(values) // 2]
            if len(values) % 2
            else 0.5 * (values[len(values) // 2 - 1] + values[len(values) // 2])
        )
        table.append(
            {
                "row": name,
                "s_per_step": median,
                "min_s": values[0],
                "max_s": values[-1],
                "it_per_s": 1 / median,
                "images_per_s": args.batch / median,
                "x_plain": median / plain,
                "duts_tr_epoch_h": median * DUTS_TR_STEPS / 3600,
                "peak_mib": peaks[name],
            }
        )
    plain = table[0]["s_per_step"]
    for row in table:
        row["x_plain"] = row["s_per_step"] / plain
    print(
        f"ViT-S/8 random init, head {n_params:,} parameters, batch {args.batch}, {args.size}x{args.size}, "
        f"{device}{' bf16 autocast' if args.amp else ''}, torch threads {torch.get_num_threads()}"
    )
    print_table(
        table,
        [
            "row",
            "s_per_step",
            "min_s",
            "max_s",
            "it_per_s",
            "images_per_s",
            "x_plain",
            "duts_tr_epoch_h",
            "peak_mib",
        ],
    )
    crop = table[1]["x_plain"]
    # another batch, size or step count gets its own file: never the one bench/README.md cites
    custom = [k for k, v in _DEFAULTS.items() if getattr(args, k) != v]
    print(
        f"crop loss costs {crop:.2f}x a plain step (target <= 1.6x: {'met' if crop <= 1.6 else 'MISSED'}"
        f"{'; not the measured configuration: ' + ', '.join(custom) if custom else ''}); "
        f"the reference-style teacher costs {table[2]['x_plain']:.2f}x"
    )
    payload = {
        "suite": "train",
        "metadata": metadata(("torch",)),
        "settings": vars(args),
        "head_parameters": n_params,
        "rows": table,
    }
    name = f"train--{device.type}{'-amp' if args.amp else ''}{'-custom' if custom else ''}.json"
    path = save_json(payload, args.json or RESULTS_DIR / name)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
