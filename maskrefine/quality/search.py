"""The search space and the coarse-to-fine search shared by ``bench/quality.py`` and ``maskrefine tune``.

* :func:`coarse_grid`: identity (both upsamplings for binary masks) and the guided filter over the mean
  and colour guides, radius 2 ... 32 in octaves (which contains the radius tied to the patch size, p/2,
  p and 2p, for p = 8 and 16) and eps 1e-5 ... 1e-1 in decades; other registered refiners at their
  defaults.
* :func:`neighbours`: the fine grid around a candidate: radius x/÷ sqrt 2, eps x/÷ sqrt 10, and, around a
  guided-filter setting, the fast guided filter (subsample 2 and 4) at the same setting and the luma
  guide in place of the mean guide (a colour-guide setting has no gray alternative to try).
* :func:`rank`: order candidates by their mean IoU change against naive upsampling, averaged over
  groups (e.g. the benchmark's sources), leaving out any that makes a group worse.
* :class:`ScoreCache`: per-candidate scores on disk, keyed by the candidate and the exact input files
  (name, size and SHA-1 of the content), so an interrupted search resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import re
import stat
import time
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maskrefine._checks import short_repr
from maskrefine.quality.grid import Candidate, Item, Scores
from maskrefine.refiners import REFINERS

__all__ = [
    "RADII",
    "EPSILONS",
    "COARSE_GUIDES",
    "GUIDED_FAMILY",
    "upsamplings",
    "coarse_grid",
    "neighbours",
    "RankedCandidate",
    "rank",
    "unique_by_label",
    "ScoreCache",
    "scoring_key",
]

RADII: tuple[int, ...] = (2, 4, 8, 16, 32)
EPSILONS: tuple[float, ...] = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
COARSE_GUIDES: tuple[str, ...] = ("mean", "color")
#: Methods searched over radius and eps (others run at their defaults).
GUIDED_FAMILY: tuple[str, ...] = ("guided", "fast_guided")
_NOT_SEARCHED = ("auto",)


def upsamplings(binary: bool) -> tuple[str, ...]:
    """Upsamplings worth trying: nearest and bilinear for binary masks, bilinear for soft ones."""
    return ("nearest", "bilinear") if binary else ("bilinear",)


def searchable_methods() -> tuple[str, ...]:
    """Return the registered refiners a search may use (all but ``auto``)."""
    return tuple(name for name in REFINERS if name not in _NOT_SEARCHED)


def coarse_grid(
    binary: bool,
    *,
    methods: Sequence[str] | None = None,
    guides: Sequence[str] = COARSE_GUIDES,
    radii: Sequence[int] = RADII,
    epsilons: Sequence[float] = EPSILONS,
) -> list[Candidate]:
    """Return the coarse grid for binary or soft masks (see the module notes).

    Parameters
    ----------
    binary : bool
        Binary masks (also try nearest upsampling).
    methods : sequence of str, optional
        Refiners to include (default: every registered one but ``auto``); ``identity`` is always in.
        ``fast_guided`` joins the grid only in the fine stage (it approximates ``guided``).

    Raises
    ------
    ValueError
        An unknown or unsearchable method.
    """
    chosen = searchable_methods() if methods is None else tuple(methods)
    for name in chosen:
        if name not in searchable_methods():
            raise ValueError(
                f"method {short_repr(name)} cannot be searched; choose from {', '.join(searchable_methods())}"
            )
    grid = [Candidate.make("identity", upsample=u) for u in upsamplings(binary)]
    for up in upsamplings(binary):
        if "guided" in chosen or ("fast_guided" in chosen and "guided" not in chosen):
            method = "guided" if "guided" in chosen else "fast_guided"
            for guide in guides:
                for radius in radii:
                    for eps in epsilons:
                        grid.append(Candidate.make(method, guide, up, radius=radius, eps=eps))
        for name in chosen:
            if name in GUIDED_FAMILY or name == "identity":
                continue
            try:
                grid.append(Candidate.make(name, "color", up))
            except (TypeError, ValueError):  # pragma: no cover - a refiner without a colour guide
                grid.append(Candidate.make(name, "mean", up))
    return list(dict.fromkeys(grid))


def unique_by_label(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Drop candidates whose label repeats an earlier one, keeping the first; order is kept.

    Labels can repeat for settings that are equal but for the last bit (e.g. eps 1e-2 x sqrt 10 and
    1e-1 / sqrt 10).
    """
    seen: dict[str, Candidate] = {}
    for candidate in candidates:
        seen.setdefault(candidate.label, candidate)
    return list(seen.values())


def neighbours(candidate: Candidate, *, methods: Sequence[str] | None = None) -> list[Candidate]:
    """Fine-grid settings around a guided-family ``candidate`` (empty for other methods; see the module)."""
    if candidate.method not in GUIDED_FAMILY:
        return []
    chosen = searchable_methods() if methods is None else tuple(methods)
    p = candidate.param_dict
    r, eps = p["radius"], p["eps"]
    radii = sorted({max(1, int(round(r / math.sqrt(2)))), r, int(round(r * math.sqrt(2)))})
    out = []
    for radius in radii:
        for e in (eps / math.sqrt(10), eps, eps * math.sqrt(10)):
            if (radius, e) != (r, eps):
                extra = {k: v for k, v in p.items() if k not in ("radius", "eps")}
                out.append(
                    Candidate.make(
                        candidate.method, candidate.guide, candidate.upsample, radius=radius, eps=e, **extra
                    )
                )
    if candidate.method == "guided":
        if candidate.guide == "mean":
            out.append(Candidate.make("guided", "luma", candidate.upsample, radius=r, eps=eps))
        if "fast_guided" in chosen:
            for sub in (2, 4):
                out.append(
                    Candidate.make(
                        "fast_guided", candidate.guide, candidate.upsample, radius=r, eps=eps, subsample=sub
                    )
                )
    return [c for c in unique_by_label(out) if c.label != candidate.label]


@dataclass(frozen=True, slots=True)
class RankedCandidate:
    """A candidate with its mean IoU change over groups and the worst group's change."""

    candidate: Candidate
    mean_change: float
    worst_change: float


def _iou_change(scores: Scores, base: Scores) -> float:
    keep = np.isfinite(scores.iou) & np.isfinite(base.iou)
    return float(np.mean(scores.iou[keep] - base.iou[keep])) if keep.any() else math.nan


def rank(
    by_group: Mapping[str, Mapping[Candidate, Scores]],
    candidates: Iterable[Candidate],
    naive: Candidate,
    *,
    worse_limit: float | None = -0.001,
) -> list[RankedCandidate]:
    """Rank candidates by mean IoU change against ``naive``, averaged over groups; best first.

    Parameters
    ----------
    by_group : mapping of group -> (candidate -> Scores)
        Scores per group (one group for a user's folder; the benchmark's sources).
    candidates : iterable of Candidate
    naive : Candidate
        The baseline (its change is 0; it is ranked too).
    worse_limit : float or None
        Leave out candidates whose change on some group is below this (None: keep all).

    Returns
    -------
    list of RankedCandidate
        Ties broken by ``naive`` first, then by label, so the order is deterministic. A candidate whose
        change is undefined (NaN: no image where both IoUs are defined) comes last.
    """
    rows = []
    for candidate in dict.fromkeys(candidates):
        changes = [_iou_change(group[candidate], group[naive]) for group in by_group.values()]
        rows.append(RankedCandidate(candidate, float(np.mean(changes)), float(np.min(changes))))
    if worse_limit is not None:
        rows = [row for row in rows if row.worst_change >= worse_limit or row.candidate == naive]
    # naive first among equals: a setting must beat it, not tie with it, to be ranked above it
    # NaN sorts last: a NaN in the key would make the order depend on the order of ``candidates``
    return sorted(
        rows,
        key=lambda row: (
            math.isnan(row.mean_change),
            -row.mean_change if not math.isnan(row.mean_change) else 0.0,
            row.candidate != naive,
            row.candidate.label,
        ),
    )


def scoring_key(preset: str) -> str:
    """Identify how scores were computed: the preset (all its fields) and its threshold values.

    A change of the scoring rules (e.g. a preset's thresholds) thus never reuses stale cached scores.
    """
    from maskrefine.metrics import get_preset

    p = get_preset(preset)
    digest = hashlib.sha1(repr(p).encode())
    digest.update(np.ascontiguousarray(p.thresholds, dtype=np.float64).tobytes())
    return f"{p.name}:{digest.hexdigest()}"


@functools.cache
def code_fingerprint() -> str:
    """SHA-1 of maskrefine's own source files: scores cached by another version of the code are misses.

    A refiner, a resize rule or a metric can change between versions without any input changing (e.g.
    patch grids placed cell by cell instead of stretched); a cache keyed only by inputs and settings
    would then mix old scores with new ones. Computed once per process, at first use: the code a process
    runs is the code it imported, even if the files change (``git pull``) while a long ``tune`` runs.
    """
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha1()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


class ScoreCache:
    """Scores of candidates on item sets, stored as ``.npz`` files in ``folder`` (created on first write).

    The key is the candidate, the scoring (the preset's name and thresholds, see :func:`scoring_key`),
    maskrefine's code (:func:`code_fingerprint`) and, for every item, its key and the name (not the
    folder), size and content (SHA-1) of its image, mask and GT; changing any input file (even to one of
    the same size and modification time), the scoring rules or the code misses the cache, while touching,
    moving or naming a file by another path does not.
    Each entry also records the keys of the items it scored and the items that failed with their
    problems, so a rerun served from the cache reports the same failures. Writes are atomic.
    """

    def __init__(self, folder: str | os.PathLike[str], preset: str = "tokencut") -> None:
        from maskrefine.metrics import get_preset

        self.folder = Path(folder)
        self.scoring = scoring_key(preset)
        self.thresholds = len(get_preset(preset).thresholds)  # columns of every cached F-beta curve

    @staticmethod
    def fingerprint(items: Sequence[Item]) -> str:
        """SHA-1 over the items' keys and files (name, size, SHA-1 of the content).

        The content, not the modification time: a file replaced by another of the same size keeps its
        time under ``cp -p``, ``rsync -a`` or ``tar x``, or on a file system with a coarse clock. The file
        name, not its folder: the same files given by a relative or absolute path, or moved, are the same
        inputs (the path as typed made a rerun from another folder recompute everything).
        """
        digest = hashlib.sha1()
        for item in items:
            parts = [item.key]
            for path in (item.image, item.mask, item.gt):
                parts += [Path(path).name, *_file_digest(path)]
            digest.update(json.dumps(parts).encode())
        return digest.hexdigest()

    def remove(self) -> None:
        """Delete the cache's own files (``<sha1>.npz``, temporary files), then the folder if it is empty."""
        self.remove_stale_temps(older_than=0.0)
        for entry in list(self.folder.glob("*.npz")):
            if re.fullmatch(r"[0-9a-f]{40}\.npz", entry.name) and entry.is_file() and not entry.is_symlink():
                entry.unlink(missing_ok=True)
        try:
            self.folder.rmdir()
        except OSError:  # not empty (a file that is not ours), or gone already
            pass

    def remove_stale_temps(self, *, older_than: float = 60.0) -> list[Path]:
        """Delete temporary files of :meth:`put` (``.<sha1>.<pid>.tmp.npz``) older than ``older_than`` s.

        A run killed while it stored an entry leaves one; a younger one may belong to a run still writing.
        Returns the removed paths.
        """
        removed = []
        limit = time.time() - older_than
        for entry in list(self.folder.glob(".*.tmp.npz")):
            if not re.fullmatch(r"\.[0-9a-f]{40}\.[0-9]+\.tmp\.npz", entry.name):
                continue
            with contextlib.suppress(OSError):
                info = entry.lstat()
                if stat.S_ISREG(info.st_mode) and info.st_mtime <= limit:
                    entry.unlink()
                    removed.append(entry)
        return removed

    def _path(self, candidate: Candidate, fingerprint: str) -> Path:
        key = json.dumps([candidate.to_dict(), fingerprint, self.scoring, code_fingerprint()], sort_keys=True)
        return self.folder / (hashlib.sha1(key.encode()).hexdigest() + ".npz")

    def get(self, candidate: Candidate, fingerprint: str) -> Scores | None:
        """Return the cached scores, or None (also for an unreadable cache file)."""
        entry = self.get_entry(candidate, fingerprint)
        return None if entry is None else entry[0]

    def get_entry(
        self, candidate: Candidate, fingerprint: str
    ) -> tuple[Scores, list[str] | None, list[tuple[str, str]]] | None:
        """Return the cached scores, the keys they cover and the ``(key, problem)`` of the failed items.

        None for a miss, and for an entry that is unreadable or not what :meth:`put` writes (arrays of
        another kind, shape or length, scores outside [0, 1]): such an entry is recomputed, never used.
        """
        path = self._path(candidate, fingerprint)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                keys = [str(k) for k in data["keys"]] if "keys" in data.files else None
                failed = []
                if "failed_keys" in data.files:
                    failed = [
                        (str(k), str(p))
                        for k, p in zip(data["failed_keys"], data["failed_problems"], strict=True)
                    ]
                scores = Scores(data["acc"], data["iou"], data["fbeta"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # truncated or garbage
            return None
        if not self._well_formed(scores, keys):
            return None
        return scores, keys, failed

    def _well_formed(self, scores: Scores, keys: list[str] | None) -> bool:
        """Whether cached scores are what :meth:`put` stores: float (n,), (n,), (n, thresholds) in [0, 1].

        IoU may be NaN (an image whose GT and mask are both empty); nothing else may.
        """
        acc, iou, fbeta = scores.acc, scores.iou, scores.fbeta
        n = acc.shape[0] if acc.ndim == 1 else -1
        if (
            any(a.dtype.kind != "f" for a in (acc, iou, fbeta))
            or n < 0
            or iou.shape != (n,)
            or fbeta.shape != (n, self.thresholds)
            or (keys is not None and len(keys) != n)
        ):
            return False
        with np.errstate(invalid="ignore"):
            in_range = [bool(((a >= 0) & (a <= 1)).all()) for a in (acc, fbeta, iou[~np.isnan(iou)])]
        return all(in_range)

    def put(
        self,
        candidate: Candidate,
        fingerprint: str,
        scores: Scores,
        keys: Sequence[str] | None = None,
        failures: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Store ``scores`` (and the keys of the items they cover, and the failed items) atomically."""
        path = self._path(candidate, fingerprint)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        arrays = {"acc": scores.acc, "iou": scores.iou, "fbeta": scores.fbeta}
        if keys is not None:
            arrays["keys"] = np.asarray(list(keys), dtype=str)
        if failures:
            arrays["failed_keys"] = np.asarray([k for k, _ in failures], dtype=str)
            arrays["failed_problems"] = np.asarray([p for _, p in failures], dtype=str)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            np.savez(tmp, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as allow_pickle
            os.replace(tmp, path)
        except OSError:  # e.g. a folder at the entry's name, a full disk, a folder that cannot be made:
            # the scores just go uncached
            with contextlib.suppress(OSError):
                tmp.unlink()


def _file_digest(path: Path) -> list[str]:
    """``[size, sha1]`` of a file's bytes, or ``["missing"]`` when it cannot be read."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # never opened: a FIFO would block
            return ["not a regular file"]
        with open(path, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha1")
            return [str(os.fstat(handle.fileno()).st_size), digest.hexdigest()]
    except OSError:
        return ["missing"]
