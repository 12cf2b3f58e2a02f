"""Candidate scoring engine: validation, round trip, paired results, failures kept out of every candidate."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from maskrefine.quality.coarse import make_coarse_mask
from maskrefine.quality.grid import Candidate, Item, compare_to, evaluate, naive_candidate


def _write_case(folder, stem, rng):
    h, w = 64, 96
    gt = np.zeros((h, w), np.uint8)
    cy, cx = rng.integers(20, 44), rng.integers(30, 66)
    yy, xx = np.mgrid[:h, :w]
    gt[(yy - cy) ** 2 / 300 + (xx - cx) ** 2 / 500 < 1] = 255
    image = np.where(gt[..., None] > 0, [200, 60, 40], [30, 90, 160]).astype(np.uint8)
    image = np.clip(image + rng.integers(-10, 10, image.shape), 0, 255).astype(np.uint8)
    for sub in ("images", "gt", "coarse"):
        (folder / sub).mkdir(exist_ok=True)
    cv2.imwrite(str(folder / "images" / f"{stem}.png"), image)
    cv2.imwrite(str(folder / "gt" / f"{stem}.png"), gt)
    cv2.imwrite(str(folder / "coarse" / f"{stem}.png"), make_coarse_mask(gt, 8, binary=True))
    return Item(
        stem,
        folder / "images" / f"{stem}.png",
        folder / "coarse" / f"{stem}.png",
        folder / "gt" / f"{stem}.png",
    )


def test_candidate_make_validates_and_completes_params():
    c = Candidate.make("guided", "color", radius=4)
    assert c.param_dict == {"radius": 4, "eps": 1e-3}
    assert c.label == "guided color r=4 eps=1e-3 [bilinear]"
    assert Candidate.from_dict(c.to_dict()) == c
    assert Candidate.make("identity", "color") == Candidate.make("identity")  # guide unused
    with pytest.raises(ValueError, match="method"):
        Candidate.make("nope")
    with pytest.raises(ValueError, match="guide"):
        Candidate.make("guided", "rgb")
    with pytest.raises(ValueError, match="upsample"):
        Candidate.make("guided", upsample="cubic")
    with pytest.raises(ValueError, match="does not accept"):
        Candidate.make("identity", radius=3)
    with pytest.raises(TypeError):
        Candidate.make("guided", radius=2.5)
    with pytest.raises(ValueError, match="unknown candidate key"):
        Candidate.from_dict({"method": "guided", "colour": 1})


def test_evaluate_is_paired_deterministic_and_skips_bad_items(tmp_path):
    rng = np.random.default_rng(0)
    items = [_write_case(tmp_path, f"s{i}", rng) for i in range(4)]
    bad = tmp_path / "coarse" / "bad.png"
    bad.write_bytes(b"not a png")
    items.append(Item("bad", items[0].image, bad, items[0].gt))
    naive = naive_candidate(True)
    guided = Candidate.make("guided", "color", radius=4, eps=1e-3)
    one = evaluate([naive, guided, naive], items, jobs=1)
    assert one.keys == ["s0", "s1", "s2", "s3"]
    assert [key for key, _ in one.failures] == ["bad"] and "bad.png" in one.failures[0][1]
    assert set(one.scores) == {naive, guided}
    assert one.scores[naive].iou.shape == (4,) and one.scores[naive].fbeta.shape == (4, 255)
    two = evaluate([naive, guided], items, jobs=2)
    for c in (naive, guided):
        np.testing.assert_array_equal(one.scores[c].iou, two.scores[c].iou)
        np.testing.assert_array_equal(one.scores[c].fbeta, two.scores[c].fbeta)
    # a colour edge and a blocky mask: the colour-guided filter must beat nearest upsampling
    comparison = compare_to(one.scores[guided], one.scores[naive])
    assert comparison["iou"].change > 0 and comparison["iou"].wins == 4
    assert compare_to(one.scores[naive], one.scores[naive])["iou"].change == 0


def test_evaluate_refuses_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="jobs"):
        evaluate([naive_candidate(False)], [], jobs=0)
    with pytest.raises(ValueError, match="preset"):
        evaluate([naive_candidate(False)], [], preset="nope")


def test_labels_show_non_eps_floats_in_full() -> None:
    # lam=256.0 was labelled "lam=3e2": distinct values could share a label (and unique_by_label drop one)
    a = Candidate.make("bilateral_solver", "color", "bilinear", lam=256.0)
    b = Candidate.make("bilateral_solver", "color", "bilinear", lam=300.0)
    assert "lam=256" in a.label and a.label != b.label
    assert "eps=3e-3" in Candidate.make("guided", "mean", "bilinear", radius=4, eps=0.00316).label


def test_evaluate_stays_in_process_when_kernels_cannot_be_cached(tmp_path, monkeypatch):
    # without an on-disk numba cache every spawned worker compiled every kernel again (tune at 2 jobs:
    # 49.6 s against 14.7 s at 1 job); then the work is done in this process
    from maskrefine import _jit
    from maskrefine.quality import grid

    rng = np.random.default_rng(1)
    items = [_write_case(tmp_path, f"s{i}", rng) for i in range(3)]
    candidates = [naive_candidate(True), Candidate.make("guided", "color", radius=4, eps=1e-3)]
    expected = evaluate(candidates, items, jobs=1)

    def no_pool(method):
        raise AssertionError(f"a {method} pool was started")

    monkeypatch.setattr(grid.multiprocessing, "get_context", no_pool)
    monkeypatch.setattr(_jit, "_warned", True)  # caching failed earlier in this process
    assert _jit.kernels_cached() is False
    result = evaluate(candidates, items, jobs=2)
    assert result.keys == expected.keys
    for c in candidates:
        np.testing.assert_array_equal(result.scores[c].fbeta, expected.scores[c].fbeta)
    monkeypatch.setattr(_jit, "_warned", False)
    with pytest.raises(AssertionError, match="a spawn pool was started"):
        evaluate(candidates, items, jobs=2)


def test_tune_workers_leave_ctrl_c_to_the_parent() -> None:
    # Ctrl-C during `tune -j 2` printed KeyboardInterrupt tracebacks from the pool's workers (3 of 8
    # tries); the parent alone acts on it. SIGTERM keeps its default: the pool's terminate() sends it.
    import signal
    import subprocess
    import sys

    code = (
        "import signal\n"
        "from maskrefine.quality.grid import _init_worker\n"
        "_init_worker([], 'tokencut')\n"
        "print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN,"
        " signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split() == ["True", "True"], done.stdout + done.stderr
    assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN  # the test process is untouched


def test_evaluate_refuses_what_is_not_candidates_or_items(tmp_path):
    # a str was iterated character by character and failed with an AttributeError deep inside
    item = Item("a", tmp_path / "a.png", tmp_path / "a_mask.png", tmp_path / "a_gt.png")
    guided = Candidate.make("guided")
    with pytest.raises(TypeError, match=r"candidates must be an iterable of Candidate, got 'guided'"):
        evaluate("guided", [item])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"candidates must be an iterable of Candidate"):
        evaluate(guided, [item])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"candidates\[1\] must be a Candidate, got \{\}"):
        evaluate([guided, {}], [item])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"items must be a sequence of Item, got 'a.png'"):
        evaluate([guided], "a.png")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"items\[0\] must be an Item, got 'a.png'"):
        evaluate([guided], ["a.png"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"progress must be callable or None, got 3"):
        evaluate([guided], [item], progress=3)  # type: ignore[arg-type]


def test_compare_to_checks_the_curves_fit_the_preset():
    from maskrefine.metrics import get_preset
    from maskrefine.quality.grid import Scores

    k = get_preset("tokencut").thresholds.size
    rng = np.random.default_rng(0)
    good = Scores(rng.random(50), rng.random(50), rng.random((50, k)))
    short = Scores(rng.random(50), rng.random(50), rng.random((50, 3)))
    # 3 columns were taken as the preset's curve: a max F over 3 thresholds, printed as tokencut's
    with pytest.raises(ValueError, match=rf"baseline: .*\(n, {k}\).*fbeta \(50, 3\)"):
        compare_to(good, short, n_resamples=40)
    with pytest.raises(ValueError, match=r"scores: .*fbeta \(50, 3\)"):
        short.summary("tokencut")
    ragged = Scores(rng.random(50), rng.random(49), rng.random((50, k)))
    with pytest.raises(ValueError, match=r"candidate: .*iou \(49,\)"):
        compare_to(ragged, good, n_resamples=40)
    with pytest.raises(TypeError, match=r"baseline must be Scores, got \[1, 2\]"):
        compare_to(good, [1, 2], n_resamples=40)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"candidate.acc must be an ndarray, got list"):
        compare_to(Scores([0.5], good.iou, good.fbeta), good, n_resamples=40)  # type: ignore[arg-type]
    assert set(compare_to(good, good, n_resamples=40)) == {"acc", "iou", "max_fbeta"}
