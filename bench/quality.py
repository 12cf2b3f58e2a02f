"""Does refinement make masks better? Every registered refiner against naive upsampling, on SOD.

Inputs (made once, cached as PNGs under ``--cache``): the SOD ground truth and the six bundled methods'
saliency maps, each area-averaged onto the x8 and x16 patch grid as a soft map and as a binary map
(threshold 0.5), stored as 8-bit PNGs at patch resolution exactly as a ViT method would save them
(:func:`maskrefine.quality.make_coarse_mask`). Every refiner then upsamples and refines them as
``maskrefine apply`` does; outputs are quantised as the 8-bit PNG ``apply`` writes and scored with the
``tokencut`` preset (Acc and IoU at 0.5, max F-beta of the image-averaged F curve).

An input *kind* is (soft | binary) x (patch 8 | 16). The baseline of a kind is naive upsampling:
bilinear for soft masks, nearest for binary ones. Every result is the change against that baseline on the
same images, with a paired bootstrap 95 % interval over images (seed 0, 2000 resamples) and per-image
wins / ties / losses (tie: |change| <= 0.001).

Search (coarse to fine, selection on the *tuning* images only = the first 100 stems):

1. coarse grid on every other tuning image (50): identity (nearest, bilinear), guided filter with the
   mean and colour guides, radius 2, 4, 8, 16, 32 (this includes the radius tied to the patch size:
   p/2, p, 2p for p = 8 and 16), eps 1e-5 ... 1e-1 in decades; binary masks with both upsamplings;
2. fine grid on all 100 tuning images around the 3 best of each kind (radius x/÷ sqrt 2, eps x/÷ sqrt 10,
   the luma guide, the fast guided filter with subsample 2 and 4);
3. final evaluation on all images (300) of: naive, the other upsampling, the paper's setting (mean guide,
   r 9, eps 1e-3), the best setting of each family (method x guide) from stage 2 and ``auto`` (maskrefine's
   default); "held-out" figures use only the 200 images not used for selection. Any other registered
   refiner (bilateral solver, CRF) runs at its defaults on the tuning images only (they are slow; rows
   marked "first 100 images"; ``--no-others`` skips them).

A candidate's selection score is the mean over the seven sources (GT + six methods) of its mean IoU
change; a candidate that makes any source worse on the tuning images (mean change < -0.001) is not
selected.

Outputs: ``--json`` (default ``bench/results/quality--cpu.json``), and next to it, named after the part
of its name before ``--``: ``quality.md`` (tables), ``quality_gain.png`` (IoU change per kind x refiner
with intervals) and ``quality_montage.png`` (images that gain and lose most under ``auto``); a quick run's
``quality-quick.*``.

Usage::

    python bench/quality.py [--jobs 2] [--images 300] [--quick] [--cache DIR] [--json PATH] [--no-plots]

Skips with a printed message (exit 0) when ../shared/data is absent. The machine may be shared: the
runtime printed at the end is wall time under whatever load there was.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from _common import REPO_ROOT, default_json, metadata, save_json, sod_dir  # noqa: E402

from maskrefine.quality import (  # noqa: E402
    Candidate,
    Item,
    Scores,
    compare_to,
    evaluate,
    naive_candidate,
    write_coarse_folder,
)
from maskrefine.quality.search import (  # noqa: E402
    ScoreCache,
    coarse_grid,
    neighbours,
    rank,
    searchable_methods,
    unique_by_label,
    upsamplings,
)
from maskrefine.refiners import REFINERS  # noqa: E402

METHODS = ("Amulet", "BSCA_frankLeo123", "DSS", "GS_frankLeo123", "PiCANet", "RBD_frankLeo123")
SOURCES = ("GT", *METHODS)
PATCHES = (8, 16)
TUNING_IMAGES = 100
WORSE_LIMIT = -0.001  # a tuning-set mean IoU change below this on any source disqualifies a candidate
PAPER = {"method": "guided", "guide": "mean", "radius": 9, "eps": 1e-3}
BUILTIN = {"identity", "guided", "fast_guided", "auto"}


def find_sod() -> Path | None:
    """The SOD folder with images and the bundled methods' predictions, or None."""
    sod = sod_dir()
    return sod if sod is not None and (sod / "predictions").is_dir() else None


def kind_name(binary: bool, patch: int) -> str:
    return f"{'binary' if binary else 'soft'} x{patch}"


KINDS = [(binary, patch) for binary in (True, False) for patch in PATCHES]


# --------------------------------------------------------------------------------------------------
# inputs


def build_inputs(sod: Path, stems: list[str], cache: Path, sources: Sequence[str]) -> dict:
    """Coarse PNGs per (source, kind); returns {(binary, patch): {source: [Item]}}."""
    images = {p.stem: p for p in (sod / "images").iterdir() if p.suffix.lower() in (".jpg", ".png")}
    out: dict = {}
    for binary, patch in KINDS:
        per_source = {}
        for source in sources:
            src = sod / "masks" if source == "GT" else sod / "predictions" / source
            folder = cache / "coarse" / source / f"p{patch}-{'binary' if binary else 'soft'}"
            write_coarse_folder(src, folder, patch, binary=binary, stems=stems)
            per_source[source] = [
                Item(f"{source}/{stem}", images[stem], folder / f"{stem}.png", sod / "masks" / f"{stem}.png")
                for stem in stems
            ]
        out[(binary, patch)] = per_source
    return out


# --------------------------------------------------------------------------------------------------
# scoring with an on-disk cache (a rerun reuses every candidate x item set already scored)


def score(
    candidates: Sequence[Candidate], items: Sequence[Item], cache: Path, jobs: int
) -> dict[Candidate, Scores]:
    store = ScoreCache(cache / "scores")
    fingerprint = ScoreCache.fingerprint(items)
    out: dict[Candidate, Scores] = {}
    todo = []
    for candidate in dict.fromkeys(candidates):
        hit = None if candidate.method == "auto" else store.get(candidate, fingerprint)
        if hit is not None:
            out[candidate] = hit
        else:
            todo.append(candidate)
    if todo:
        result = evaluate(todo, items, jobs=jobs)
        if result.failures:
            raise SystemExit(f"failed items: {result.failures[:3]}")
        for candidate, scores in result.scores.items():
            if candidate.method != "auto":  # auto's rule may change between runs
                store.put(candidate, fingerprint, scores)
            out[candidate] = scores
    return out


def score_kind(candidates, per_source, stems_index, cache, jobs) -> dict[str, dict[Candidate, Scores]]:
    """Score candidates on the chosen stems of every source; {source: {candidate: Scores}}."""
    items = [item for source in per_source for item in (per_source[source][i] for i in stems_index)]
    scores = score(candidates, items, cache, jobs)
    n = len(stems_index)
    out = {}
    for s, source in enumerate(per_source):
        out[source] = {c: sc.subset(np.arange(s * n, (s + 1) * n)) for c, sc in scores.items()}
    return out


def mean_of_methods(by_source: dict[str, dict[Candidate, Scores]], candidate: Candidate) -> Scores | None:
    """Per image, the mean over the six methods' scores (paired by image)."""
    parts = [by_source[m][candidate] for m in METHODS if m in by_source]
    if not parts:
        return None
    return Scores(
        np.mean([p.acc for p in parts], axis=0),
        np.mean([p.iou for p in parts], axis=0),
        np.mean([p.fbeta for p in parts], axis=0).astype(np.float32),
    )


BENCH_METHODS = ("identity", "guided", "fast_guided")


def bench_grid(binary: bool, quick: bool) -> list[Candidate]:
    if quick:
        return coarse_grid(
            binary, methods=("guided",), guides=("color",), radii=(4, 16), epsilons=(1e-3, 1e-1)
        )
    return coarse_grid(binary, methods=("guided",))


def ranked_dict(row) -> dict:
    return {
        "candidate": row.candidate.label,
        "spec": row.candidate.to_dict(),
        "mean_iou_change": row.mean_change,
        "min_source_iou_change": row.worst_change,
        "eligible": row.worst_change >= WORSE_LIMIT,
    }


def family(candidate: Candidate) -> str:
    if candidate.method == "identity":
        return f"identity [{candidate.upsample}]"
    return f"{candidate.method} {candidate.guide}"


def other_refiners(binary: bool) -> list[Candidate]:
    """Refiners registered beyond the built-in ones (e.g. bilateral solver, CRF), at their defaults."""
    out = []
    for name in searchable_methods():
        if name in BUILTIN:
            continue
        for up in upsamplings(binary):
            try:
                out.append(Candidate.make(name, "color", up))
            except (TypeError, ValueError):
                pass
    return out


# --------------------------------------------------------------------------------------------------
# report


def comparison_rows(by_source, candidates, naive, held_out_index=None) -> list[dict]:
    rows = []
    groups = list(by_source) + ["methods (mean)"]
    for candidate in candidates:
        for group in groups:
            if group == "methods (mean)":
                cand, base = mean_of_methods(by_source, candidate), mean_of_methods(by_source, naive)
                if cand is None:
                    continue
            else:
                cand, base = by_source[group][candidate], by_source[group][naive]
            row = {"candidate": candidate.label, "spec": candidate.to_dict(), "source": group}
            row["baseline"] = base.summary()
            row["refined"] = cand.summary()
            row["change"] = {m: c.to_dict() for m, c in compare_to(cand, base).items()}
            if held_out_index is not None and len(held_out_index):
                held = compare_to(cand.subset(held_out_index), base.subset(held_out_index))
                row["held_out_change"] = {m: c.to_dict() for m, c in held.items()}
            rows.append(row)
    return rows


def fmt_change(change: dict) -> str:
    if change["change"] is None:
        return "n/a"
    mark = "**" if change["verdict"] == "better" else ("*" if change["verdict"] == "worse" else "")
    return f"{mark}{change['change']:+.4f}{mark} [{change['low']:+.4f}, {change['high']:+.4f}]"


def _row(block: dict, label_start: str, source: str) -> dict | None:
    return next(
        (r for r in block["rows"] if r["candidate"].startswith(label_start) and r["source"] == source), None
    )


def headline_table(final: dict) -> str:
    """One row per kind: naive IoU, the paper's and auto's IoU change (GT and methods), W/T/L."""
    averaged = {r["source"] for block in final.values() for r in block["rows"]} & set(METHODS)
    lines = [
        "| input kind | naive IoU (GT) | paper GF ΔIoU (GT, same upsampling) "
        "| **auto** ΔIoU (GT) [95 % CI] | W/T/L (GT) "
        f"| **auto** ΔIoU, methods (mean of {len(averaged)}) [95 % CI] "
        "| methods where auto is significantly worse |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, block in final.items():
        naive = _row(block, block["naive"], "GT")
        paper_up = "nearest" if kind.startswith("binary") else "bilinear"  # the naive row's upsampling
        paper = _row(block, f"guided mean r=9 eps=1e-3 [{paper_up}]", "GT")
        auto_gt = _row(block, "auto", "GT")
        auto_m = _row(block, "auto", "methods (mean)")
        if naive is None or auto_gt is None or auto_m is None:
            continue
        worse = [
            m
            for m in METHODS
            if (r := _row(block, "auto", m)) is not None and r["change"]["iou"]["verdict"] == "worse"
        ]
        c = auto_gt["change"]["iou"]
        lines.append(
            f"| {kind} | {naive['baseline']['iou']:.4f} | "
            f"{fmt_change(paper['change']['iou']) if paper else '-'} | {fmt_change(c)} | "
            f"{c['wins']}/{c['ties']}/{c['losses']} | {fmt_change(auto_m['change']['iou'])} | "
            f"{', '.join(worse) or 'none'} |"
        )
    return "\n".join(lines)


def markdown_tables(final: dict) -> str:
    lines = ["### Headline: auto vs naive upsampling (IoU, tokencut preset)", "", headline_table(final), ""]
    for kind, block in final.items():
        lines.append(f"### {kind} (naive: {block['naive']}; {block['n_images']} images)")
        lines.append("")
        lines.append("IoU change vs naive upsampling, paired bootstrap 95 % interval; W/T/L per image.")
        lines.append("")
        groups = ["GT", "methods (mean)"]
        lines.append("| refiner | " + " | ".join(f"{g}: ΔIoU [95 % CI] | W/T/L" for g in groups) + " |")
        lines.append("|---|" + "---|---|" * len(groups))
        labels = list(dict.fromkeys(row["candidate"] for row in block["rows"]))
        for label in labels:
            cells = []
            for g in groups:
                row = next((r for r in block["rows"] if r["candidate"] == label and r["source"] == g), None)
                if row is None:
                    cells += ["-", "-"]
                    continue
                c = row["change"]["iou"]
                cells += [fmt_change(c), f"{c['wins']}/{c['ties']}/{c['losses']}"]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
        lines.append("Per method (IoU change [95 % CI]; `*`: significantly worse, `**`: better):")
        lines.append("")
        lines.append("| refiner | " + " | ".join(METHODS) + " |")
        lines.append("|---|" + "---|" * len(METHODS))
        for label in labels:
            cells = []
            for m in METHODS:
                row = next((r for r in block["rows"] if r["candidate"] == label and r["source"] == m), None)
                cells.append("-" if row is None else fmt_change(row["change"]["iou"]))
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot_gain(final: dict, path: Path) -> None:
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    colours = colormaps["tab20"]
    groups = ["GT", "methods (mean)"]
    figure = Figure(figsize=(12, 4.8), dpi=100)
    FigureCanvasAgg(figure)
    for g_index, group in enumerate(groups):
        axes = figure.add_subplot(1, 2, g_index + 1)
        kinds = list(final)
        labels = sorted({row["candidate"] for block in final.values() for row in block["rows"]})
        labels = [label for label in labels if "identity" not in label or "bilinear" in label]
        width = 0.8 / max(1, len(labels))
        for j, label in enumerate(labels):
            xs, ys, lo, hi = [], [], [], []
            for k, kind in enumerate(kinds):
                row = next(
                    (r for r in final[kind]["rows"] if r["candidate"] == label and r["source"] == group), None
                )
                if row is None or row["change"]["iou"]["change"] is None:
                    continue
                c = row["change"]["iou"]
                xs.append(k - 0.4 + (j + 0.5) * width)
                ys.append(c["change"])
                lo.append(c["change"] - c["low"])
                hi.append(c["high"] - c["change"])
            if xs:
                colour = colours(j % 20)
                axes.errorbar(xs, ys, yerr=[lo, hi], fmt="o", ms=3, capsize=2, label=label, color=colour)
        axes.axhline(0.0, color="k", lw=0.8)
        axes.set_xticks(range(len(kinds)))
        axes.set_xticklabels(kinds)
        axes.set_ylabel("IoU change vs naive upsampling")
        axes.set_title(f"{group}: mean IoU change, 95 % CI")
        axes.grid(True, axis="y", alpha=0.3)
        if g_index == 1:
            axes.legend(fontsize=6, loc="best")
    figure.tight_layout()
    figure.savefig(path)


def plot_montage(final_scores, per_kind_inputs, auto_like: dict, path: Path) -> None:
    """Images (any method, any kind) whose IoU gains / loses most under the auto candidate."""
    from maskrefine.io import read_image, read_mask, read_mask_array
    from maskrefine.plots import MontageEntry
    from maskrefine.plots import plot_montage as draw

    changes = []
    for kind, candidate in auto_like.items():
        binary, patch = kind
        naive = naive_candidate(binary)
        for source, by_c in final_scores[kind].items():
            after = by_c[candidate].iou
            d = after - by_c[naive].iou
            for i, value in enumerate(d):
                if np.isfinite(value) and abs(value) > 1e-9:  # kinds left at naive upsampling change nothing
                    changes.append((float(value), kind, source, i, float(after[i])))
    changes.sort(key=lambda t: t[0])
    if not changes:
        print("montage: auto changed no image; no montage written")
        return
    picks = changes[-3:][::-1] + [c for c in changes[:3] if c[0] < 0]
    entries = []
    for value, kind, source, i, iou_after in picks:
        item = per_kind_inputs[kind][source][i]
        image = read_image(item.image)
        mask = read_mask(item.mask)
        before = naive_candidate(kind[0]).run(image, mask)
        after = auto_like[kind].run(image, mask)
        label = f"{source} {kind_name(*kind)} ΔIoU {value:+.3f}"
        entries.append(
            MontageEntry(
                item.key.split("/")[-1], iou_after, image, after, read_mask_array(item.gt), before, label
            )
        )
    draw(entries, path, title="auto vs naive upsampling: 3 largest gains, 3 largest losses")


# --------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--images", type=int, default=300, help="number of SOD images (sorted stems)")
    parser.add_argument("--tuning", type=int, default=TUNING_IMAGES, help="first N stems used for selection")
    parser.add_argument("--sources", nargs="+", default=list(SOURCES), choices=list(SOURCES))
    parser.add_argument("--quick", action="store_true", help="tiny grid (smoke test)")
    parser.add_argument("--cache", type=Path, default=REPO_ROOT / "bench" / ".cache" / "quality")
    parser.add_argument(
        "--json", type=Path, default=None, help="default bench/results/quality--cpu[-quick].json"
    )
    parser.add_argument("--markdown", type=Path, default=None, help="tables (default: next to --json)")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument(
        "--no-others",
        dest="others",
        action="store_false",
        help="skip refiners outside the guided family (bilateral solver, CRF: slow, run on tuning images)",
    )
    args = parser.parse_args(argv)
    args.json = args.json or default_json("quality--cpu", args.quick)
    start = time.perf_counter()

    sod = find_sod()
    if sod is None:
        print("skip: ../shared/data/sod not found (set MASKREFINE_SHARED_DATA)")
        return 0
    stems = sorted(p.stem for p in (sod / "masks").glob("*.png"))[: args.images]
    n_tune = min(args.tuning, len(stems))
    coarse_index = list(range(0, n_tune, 2))
    tune_index = list(range(n_tune))
    held_out = np.arange(n_tune, len(stems))
    inputs = build_inputs(sod, stems, args.cache, args.sources)
    print(
        f"inputs ready: {len(stems)} images x {len(args.sources)} sources x {len(KINDS)} kinds "
        f"({time.perf_counter() - start:.0f} s)",
        flush=True,
    )

    stages: dict = {}
    final: dict = {}
    final_scores: dict = {}
    auto_like: dict = {}
    has_auto = "auto" in REFINERS
    for binary, patch in KINDS:
        kind = (binary, patch)
        name = kind_name(binary, patch)
        naive = naive_candidate(binary)
        per_source = inputs[kind]
        # stage 1
        grid = bench_grid(binary, args.quick)
        s1 = score_kind(grid, per_source, coarse_index, args.cache, args.jobs)
        ranked1 = rank(s1, grid, naive, worse_limit=WORSE_LIMIT)
        print(
            f"[{name}] stage 1: {len(grid)} candidates on {len(coarse_index)} images "
            f"({time.perf_counter() - start:.0f} s); "
            f"best {ranked1[0].candidate.label} {ranked1[0].mean_change:+.4f}",
            flush=True,
        )
        # stage 2
        top = [r.candidate for r in ranked1 if r.candidate.method != "identity"][: 1 if args.quick else 3]
        fine_methods = ("guided",) if args.quick else ("guided", "fast_guided")
        fine = [naive, *top, *(n for c in top for n in neighbours(c, methods=fine_methods))]
        fine = unique_by_label(fine + [c for c in grid if c.method == "identity"])
        s2 = score_kind(fine, per_source, tune_index, args.cache, args.jobs)
        ranked2 = rank(s2, fine, naive, worse_limit=WORSE_LIMIT)
        print(
            f"[{name}] stage 2: {len(fine)} candidates on {len(tune_index)} images "
            f"({time.perf_counter() - start:.0f} s); "
            f"best {ranked2[0].candidate.label} {ranked2[0].mean_change:+.4f}",
            flush=True,
        )
        # best of each family, on stage 2 where present, else stage 1
        best_by_family: dict[str, Candidate] = {}
        for r in ranked2 + ranked1:
            best_by_family.setdefault(family(r.candidate), r.candidate)
        # stage 3
        paper_ups = upsamplings(binary)
        paper = [
            Candidate.make("guided", PAPER["guide"], u, radius=PAPER["radius"], eps=PAPER["eps"])
            for u in paper_ups
        ]
        identities = [Candidate.make("identity", upsample=u) for u in upsamplings(binary)]
        finalists = list(dict.fromkeys([naive, *identities, *paper, *best_by_family.values()]))
        if has_auto:
            finalists.append(Candidate.make("auto"))
        s3 = score_kind(finalists, per_source, list(range(len(stems))), args.cache, args.jobs)
        # other registered refiners (bilateral solver, CRF, ...) at their defaults: slow, so on the tuning
        # images only, compared with naive upsampling on those same images
        others = other_refiners(binary) if args.others else []
        other_rows = []
        if others:
            s_other = score_kind([naive, *others], per_source, tune_index, args.cache, args.jobs)
            for row in comparison_rows(s_other, others, naive):
                row["candidate"] += f" (first {len(tune_index)} images)"
                row["n_images"] = len(tune_index)
                other_rows.append(row)
        final_scores[kind] = s3
        auto_like[kind] = Candidate.make("auto") if has_auto else ranked2[0].candidate
        final[name] = {
            "naive": naive.label,
            "n_images": len(stems),
            "n_tuning_images": n_tune,
            "best_tuned": ranked2[0].candidate.to_dict(),
            "best_tuned_label": ranked2[0].candidate.label,
            "rows": comparison_rows(s3, finalists, naive, held_out) + other_rows,
        }
        stages[name] = {
            "stage1": [ranked_dict(r) for r in rank(s1, grid, naive, worse_limit=None)],
            "stage2": [ranked_dict(r) for r in rank(s2, fine, naive, worse_limit=None)],
        }
        print(
            f"[{name}] stage 3: {len(finalists)} candidates on {len(stems)} images "
            f"({time.perf_counter() - start:.0f} s)",
            flush=True,
        )

    elapsed = time.perf_counter() - start
    import resource

    cpu_s = sum(
        getattr(resource.getrusage(who), field)
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        for field in ("ru_utime", "ru_stime")
    )
    payload = {
        "suite": "quality",
        "meta": metadata(),
        "settings": {
            "images": len(stems),
            "tuning_images": n_tune,
            "sources": list(args.sources),
            "patches": list(PATCHES),
            "quick": args.quick,
            "jobs": args.jobs,
            "preset": "tokencut",
            "bootstrap": {"n_resamples": 2000, "confidence": 0.95, "seed": 0, "tie_tol": 1e-3},
            "worse_limit": WORSE_LIMIT,
            "auto_registered": has_auto,
        },
        "elapsed_s": round(elapsed, 1),
        "cpu_s": round(cpu_s, 1),
        "load_average_at_end": list(os.getloadavg()),
        "final": final,
        "search": stages,
    }
    save_json(payload, args.json)
    md = markdown_tables(final)
    # quality--cpu.json -> quality.md; a quick run's quality--cpu-quick.json -> quality-quick.md (never the
    # full run's tables and plots)
    quick_suffix = "-quick" if args.json.stem.endswith("-quick") else ""
    md_path = args.markdown or args.json.with_name(args.json.stem.split("--")[0] + quick_suffix + ".md")
    md_path.write_text(md + "\n")
    print(md)
    if not args.no_plots:
        try:
            figure_dir = args.json.parent
            plot_gain(final, figure_dir / f"{md_path.stem}_gain.png")
            plot_montage(final_scores, inputs, auto_like, figure_dir / f"{md_path.stem}_montage.png")
        except ImportError as exc:
            print(f"skip plots: {exc}")
    print(
        f"wrote {args.json} and {md_path}; total {elapsed:.0f} s wall, {cpu_s:.0f} s CPU "
        f"(cpu/2 = {cpu_s / 2:.0f} s: the wall time on 2 idle cores); load average {os.getloadavg()[0]:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
