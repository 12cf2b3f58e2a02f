"""Optional-dependency behaviour of maskrefine.torch, and make_guide."""

from __future__ import annotations

import subprocess
import sys

import pytest

torch = pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")

from maskrefine.errors import BackendUnavailableError  # noqa: E402
from maskrefine.torch import IMAGENET_MEAN, IMAGENET_STD, make_guide  # noqa: E402


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_maskrefine_does_not_import_torch():
    proc = _run("import maskrefine, sys; assert 'torch' not in sys.modules, 'torch imported'")
    assert proc.returncode == 0, proc.stderr


def test_missing_torch_names_the_extra():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from maskrefine.errors import BackendUnavailableError\n"
        "try:\n"
        "    import maskrefine.torch\n"
        "except BackendUnavailableError as exc:\n"
        "    assert isinstance(exc, ImportError)\n"
        "    print(exc)\n"
        "else:\n"
        "    raise SystemExit('no error')\n"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert "pip install 'torch==2.13.0' 'maskrefine[torch]'" in proc.stdout


def test_backend_error_is_import_error():
    assert issubclass(BackendUnavailableError, ImportError)


def _rgb(seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, 5, 4, generator=gen, dtype=torch.float64)


def _normalise(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


@pytest.mark.parametrize("normalized", [False, True])
def test_make_guide_modes(normalized):
    rgb = _rgb()
    image = _normalise(rgb) if normalized else rgb
    mean = make_guide(image, "mean", normalized=normalized)
    luma = make_guide(image, "luma", normalized=normalized)
    colour = make_guide(image, "colour", normalized=normalized)
    assert mean.shape == (2, 1, 5, 4) and luma.shape == (2, 1, 5, 4) and colour.shape == (2, 3, 5, 4)
    torch.testing.assert_close(mean, rgb.mean(dim=1, keepdim=True))
    torch.testing.assert_close(luma, 0.299 * rgb[:, 0:1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:3])
    torch.testing.assert_close(colour, rgb)
    torch.testing.assert_close(make_guide(image, "color", normalized=normalized), rgb)


def test_make_guide_default_mode_is_mean_and_keeps_dtype():
    image = _rgb().float()
    out = make_guide(image, normalized=False)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, image.mean(dim=1, keepdim=True))


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "match"),
    [
        ((torch.rand(1, 1, 4, 4),), {"normalized": False}, ValueError, r"\(B, 3, H, W\).*got \(1, 1, 4, 4\)"),
        ((torch.zeros(1, 3, 4, 4, dtype=torch.uint8),), {"normalized": False}, TypeError, r"floating point"),
        ((torch.rand(1, 3, 4, 4), "gray"), {"normalized": False}, ValueError, r"`mode` must be one of"),
        ((torch.rand(1, 3, 4, 4),), {"normalized": 1}, TypeError, r"`normalized` must be True or False"),
        (([1.0],), {"normalized": False}, TypeError, r"`image` must be a torch.Tensor"),
    ],
)
def test_make_guide_errors(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        make_guide(*args, **kwargs)


def test_make_guide_requires_normalized_flag():
    with pytest.raises(TypeError, match="normalized"):
        make_guide(torch.rand(1, 3, 4, 4))  # type: ignore[call-arg]


def test_box_mean_and_the_training_path_work_in_a_forked_child():
    # the torch box kernel kept its own process-wide thread pool: a child forked after the parent had
    # used it inherited the pool object without its threads and waited forever for its jobs
    code = (
        "import multiprocessing as mp, torch\n"
        "from maskrefine.torch import box_mean, guided_filter\n"
        "torch.set_num_threads(2)\n"
        "x = torch.rand(4, 1, 64, 64)\n"
        "box_mean(x, 3)\n"
        "def child(_):\n"
        "    torch.set_num_threads(2)\n"
        "    g = torch.rand(2, 1, 48, 48, requires_grad=True)\n"
        "    guided_filter(g, torch.rand(2, 1, 48, 48), radius=2, eps=1e-2).sum().backward()\n"
        "    return float(box_mean(x, 3).sum())\n"
        "with mp.get_context('fork').Pool(1) as pool:\n"
        "    print('child', pool.map_async(child, [0]).get(timeout=60))\n"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("child ")
