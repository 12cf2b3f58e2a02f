"""Tests of maskrefine.plots and of score_folder(plot_dir=...)."""

from __future__ import annotations

import builtins
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskrefine.errors import BackendUnavailableError
from maskrefine.pipeline import score_folder

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_shape(path: Path) -> tuple[int, ...]:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None
    return decoded.shape


@pytest.fixture
def hide_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import matplotlib`` fail, as when the [plot] extra is not installed."""
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def _folders(tmp_path: Path, n: int = 5) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    folders = {name: tmp_path / name for name in ("images", "pred", "gt", "before")}
    for folder in folders.values():
        folder.mkdir()
    for i in range(n):
        gt = np.zeros((40, 50), np.uint8)
        gt[5 + i : 25 + i, 10 : 30 + 3 * i] = 255
        noisy = np.clip(gt.astype(np.float32) / 255 + rng.normal(0, 0.1 * (i + 1), gt.shape), 0, 1)
        image = np.stack([gt, 255 - gt, gt // 2], axis=-1)
        cv2.imwrite(str(folders["images"] / f"im{i}.jpg"), image)
        cv2.imwrite(str(folders["gt"] / f"im{i}.png"), gt)
        cv2.imwrite(str(folders["pred"] / f"im{i}.png"), np.rint(noisy * 255).astype(np.uint8))
        cv2.imwrite(
            str(folders["before"] / f"im{i}.png"), cv2.resize(gt, (5, 4), interpolation=cv2.INTER_AREA)
        )
    return folders


def test_require_matplotlib_message(hide_matplotlib: None) -> None:
    from maskrefine.plots import require_matplotlib

    with pytest.raises(
        BackendUnavailableError,
        match=r"pip install 'maskrefine\[plot\]' \(in a clone: pip install -e '\.\[plot\]'\)",
    ):
        require_matplotlib()


def test_score_without_matplotlib_fails_before_work(hide_matplotlib: None, tmp_path: Path) -> None:
    folders = _folders(tmp_path)
    with pytest.raises(BackendUnavailableError, match=r"-e '\.\[plot\]'"):
        score_folder(
            folders["pred"], folders["gt"], plot_dir=tmp_path / "plots", csv_path=tmp_path / "scores.csv"
        )
    assert not (tmp_path / "plots").exists() and not (tmp_path / "scores.csv").exists()


def test_plot_pr_curve_writes_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="plots need matplotlib: pip install -e '.[plot]'")
    from maskrefine.plots import plot_pr_curve

    recall = np.linspace(1, 0, 255)
    path = plot_pr_curve(np.sqrt(1 - recall**2), recall, tmp_path / "pr.png", title="t", label="x")
    assert path == tmp_path / "pr.png" and _png_shape(path)[2] == 3
    with pytest.raises(ValueError, match="equal, non-zero length"):
        plot_pr_curve(np.zeros(3), np.zeros(4), tmp_path / "bad.png")


def test_plot_montage_writes_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="plots need matplotlib: pip install -e '.[plot]'")
    from maskrefine.plots import MontageEntry, plot_montage

    image = np.random.default_rng(0).random((20, 30, 3))
    mask = np.zeros((20, 30), np.uint8)
    entries = [
        MontageEntry("a", 0.1, image, mask, mask.astype(bool), before=mask[::4, ::4], label="worst"),
        MontageEntry("b", float("nan"), None, mask.astype(np.uint16), mask.astype(np.float32)),
    ]
    height, width, _ = _png_shape(plot_montage(entries, tmp_path / "m.png", title="demo"))
    assert width > height / 2  # four columns
    with pytest.raises(ValueError, match="at least one entry"):
        plot_montage([], tmp_path / "empty.png")


def test_score_folder_writes_plots(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="plots need matplotlib: pip install -e '.[plot]'")
    folders = _folders(tmp_path)
    report = score_folder(
        folders["pred"],
        folders["gt"],
        plot_dir=tmp_path / "plots",
        images_dir=folders["images"],
        before_dir=folders["before"],
        montage_count=2,
        jobs=1,
    )
    assert report.ok
    assert report.plots == [tmp_path / "plots" / "pr_curve.png", tmp_path / "plots" / "montage.png"]
    for path in report.plots:
        _png_shape(path)
    # 2 worst + 2 best rows of 2.2 inches at 100 dpi, 4 columns of 2.4 inches
    height, width, _ = _png_shape(report.plots[1])
    assert height >= 4 * 220 and width == 4 * 240
    assert report.to_dict()["plots"] == [str(p) for p in report.plots]


def test_score_folder_pr_curve_only_without_images(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="plots need matplotlib: pip install -e '.[plot]'")
    folders = _folders(tmp_path)
    report = score_folder(folders["pred"], folders["gt"], plot_dir=tmp_path / "plots", jobs=1)
    assert report.plots == [tmp_path / "plots" / "pr_curve.png"]


def test_pr_curve_of_only_empty_ground_truths_says_so(tmp_path: Path, monkeypatch) -> None:
    # every GT empty: the "curve" is the preset's empty-GT convention, one point on the axes' edge, and
    # the figure looked blank with no word of why
    pytest.importorskip("matplotlib", reason="plots need matplotlib: pip install -e '.[plot]'")
    import maskrefine.plots as plots

    folders = _folders(tmp_path)
    notes: list[str] = []
    original = plots.plot_pr_curve

    def spy(*args, **kwargs):
        notes.append(kwargs.get("note", ""))
        return original(*args, **kwargs)

    monkeypatch.setattr(plots, "plot_pr_curve", spy)
    score_folder(folders["pred"], folders["gt"], plot_dir=tmp_path / "plots", jobs=1)
    assert notes == [""]
    for path in folders["gt"].iterdir():
        assert cv2.imwrite(
            str(path), np.zeros(cv2.imread(str(path), cv2.IMREAD_UNCHANGED).shape[:2], np.uint8)
        )
    report = score_folder(folders["pred"], folders["gt"], plot_dir=tmp_path / "plots2", jobs=1)
    assert report.plots == [tmp_path / "plots2" / "pr_curve.png"] and all(r["empty_gt"] for r in report.rows)
    assert notes[1].startswith("every ground-truth mask is empty")
    _png_shape(report.plots[0])


def test_plot_dir_inside_input_refused(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="plots need matplotlib: pip install -e '.[plot]'")
    from maskrefine.errors import ConfigError

    folders = _folders(tmp_path)
    with pytest.raises(ConfigError, match="predictions folder"):
        score_folder(folders["pred"], folders["gt"], plot_dir=folders["pred"] / "plots")


def test_score_images_or_before_without_plot_is_a_usage_error(tmp_path):
    # --before without --plot was ignored without a word
    from click.testing import CliRunner

    from maskrefine.cli import main

    for option in ("--images", "--before"):
        result = CliRunner().invoke(
            main, ["score", "--pred", str(tmp_path), "--gt", str(tmp_path), option, str(tmp_path)]
        )
        assert result.exit_code == 2 and "only apply to the montages of --plot" in result.output


def test_score_keeps_montage_rows_as_small_panels(tmp_path: Path, monkeypatch) -> None:
    # the montage's rows are kept until the figure is drawn: at full size, eight rows of 4096² images took
    # ~5.8 GiB (against 1.5 GiB without --plot); each panel is now at most 512 pixels a side
    pytest.importorskip("matplotlib", reason="plots need matplotlib: pip install -e '.[plot]'")
    from maskrefine import plots

    folders = {name: tmp_path / name for name in ("images", "pred", "gt")}
    for folder in folders.values():
        folder.mkdir()
    for i in range(3):
        gt = np.zeros((1200, 700), np.uint8)
        gt[100 + 50 * i : 900, 100:600] = 255
        cv2.imwrite(str(folders["gt"] / f"{i}.png"), gt)
        cv2.imwrite(str(folders["pred"] / f"{i}.png"), np.roll(gt, 40 * i, axis=0))
        cv2.imwrite(str(folders["images"] / f"{i}.png"), np.stack([gt, gt, 255 - gt], axis=-1))
    kept = []
    drawn = plots.plot_montage

    def keep(entries, path, **kwargs):
        kept.extend(entries)
        return drawn(entries, path, **kwargs)

    monkeypatch.setattr(plots, "plot_montage", keep)
    report = score_folder(
        folders["pred"], folders["gt"], plot_dir=tmp_path / "plots", images_dir=folders["images"], jobs=1
    )
    assert report.ok and len(kept) == 3
    for entry in kept:
        assert entry.image.shape == (512, 299, 3) and entry.prediction.shape == entry.gt.shape == (512, 299)
        assert entry.gt.dtype == np.float32 and 0.0 <= entry.gt.min() and entry.gt.max() <= 1.0
    best = max(kept, key=lambda e: e.score)
    assert best.score == 1.0 and np.array_equal(best.prediction, best.gt)


def test_a_name_the_font_cannot_draw_gives_no_glyph_warnings(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="plots need matplotlib: pip install -e '.[plot]'")
    import warnings

    from maskrefine.plots import MontageEntry, plot_montage, plot_pr_curve

    mask = np.zeros((8, 8), np.uint8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plot_montage([MontageEntry("日本\x07", 0.5, None, mask, mask)], tmp_path / "m.png", title="写真")
        plot_pr_curve(np.ones(3), np.linspace(0, 1, 3), tmp_path / "pr.png", title="写真", label="日本")
    assert not [w for w in caught if "Glyph" in str(w.message)], [str(w.message) for w in caught]
    _png_shape(tmp_path / "m.png")


def test_an_empty_shard_draws_nothing_and_makes_no_plot_folder(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="plots need matplotlib: pip install -e '.[plot]'")
    from click.testing import CliRunner

    from maskrefine.cli import main

    folders = _folders(tmp_path)
    pred, gt = folders["pred"], folders["gt"]
    report = score_folder(pred, gt, plot_dir=tmp_path / "plots", shard=(1, 10**6), jobs=1)
    assert report.plots == [] and not report.rows and not (tmp_path / "plots").exists()
    args = ["score", "--pred", str(pred), "--gt", str(gt), "--plot", str(tmp_path / "p2")]
    result = CliRunner().invoke(main, [*args, "--shard", "1/1000000"])
    assert result.exit_code == 0 and "nothing to score here, and no plot to draw" in result.stderr
    assert not (tmp_path / "p2").exists()


def test_nothing_scored_prints_no_table_of_nan(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from maskrefine.cli import main

    folders = _folders(tmp_path)
    for gt in folders["gt"].iterdir():  # every ground truth unreadable: nothing is scored
        gt.write_bytes(b"not a png")
    result = CliRunner().invoke(main, ["score", "--pred", str(folders["pred"]), "--gt", str(folders["gt"])])
    assert result.exit_code == 1 and "error: nothing was scored" in result.stderr, result.output
    assert "preset: " in result.stdout and "nan" not in result.stdout and "metric" not in result.stdout
