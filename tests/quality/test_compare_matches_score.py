"""``score --baseline`` prints, for each side, the numbers ``score`` prints for that folder.

Before, max F was always the max of the image-averaged curve (the ``selfmask``/``found`` presets take
the mean of each image's max: 0.9159 was printed where ``score`` said 0.9271), and the means were float64
where those presets sum in float32.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from maskrefine.metrics import PRESETS
from maskrefine.pipeline import apply_folder, score_folder
from maskrefine.quality.compare import PAIRED_METRICS, compare_folders

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def refined(naive_examples) -> Path:
    return naive_examples


@pytest.fixture(scope="module")
def nearest(tmp_path_factory) -> Path:
    """A second full-size folder (nearest upsampling): ``paper_repo`` takes full-size predictions only."""
    out = tmp_path_factory.mktemp("compare") / "nearest"
    apply_folder(EXAMPLES / "masks", EXAMPLES / "images", out, method="identity", binary_input=True, jobs=1)
    return out


@pytest.mark.parametrize("preset", list(PRESETS))
def test_each_side_is_what_score_prints(refined, nearest, preset) -> None:
    baseline = nearest if preset == "paper_repo" else EXAMPLES / "masks"  # coarse, resized per preset
    report = compare_folders(refined, baseline, EXAMPLES / "gt", preset=preset, n_resamples=50)
    after = score_folder(refined, EXAMPLES / "gt", preset=preset, jobs=1).summary
    before = score_folder(baseline, EXAMPLES / "gt", preset=preset, jobs=1).summary
    for metric in PAIRED_METRICS:
        comparison = report.comparisons[metric]
        assert comparison.n == 10
        assert comparison.candidate == after[metric], metric
        assert comparison.baseline == before[metric], metric
        assert comparison.change == after[metric] - before[metric]
        assert comparison.low <= comparison.high


def test_selfmask_max_f_is_the_mean_of_the_per_image_max(refined) -> None:
    report = compare_folders(refined, EXAMPLES / "masks", EXAMPLES / "gt", preset="selfmask", n_resamples=50)
    per_image = [row["max_fbeta_refined"] for row in report.rows]
    assert report.comparisons["max_fbeta"].candidate == pytest.approx(
        sum(per_image) / len(per_image), abs=1e-6
    )
