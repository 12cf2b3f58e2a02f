"""The trainer and the predictor on a CUDA device: the same numbers as on the CPU, AMP, CLI and resume.

Every test here needs a CUDA device and skips with a reason without one (CI has none; they ran on a lent
GPU machine, see bench/README.md). cuDNN's TF32 convolutions are switched off where values are compared
with the CPU: TF32 keeps 10 mantissa bits, and its error (~1e-3) is not what these tests look for.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")

from _train_helpers import disc_images, tiny_cfg  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from maskrefine.cli import main  # noqa: E402
from maskrefine.train import build_model, load_checkpoint, objective, train  # noqa: E402
from maskrefine.train.predict import load_predictor  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]


@pytest.fixture
def exact_cuda():
    """No TF32 in cuDNN convolutions or matrix products while the test runs."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def _batch(seed: int = 0, size: int = 64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(4, 3, size, size, generator=gen) * 2 - 1


def _loss_and_grads(model, batch, cfg):
    model.zero_grad(set_to_none=True)
    loss, terms = objective(model, batch, cfg, torch.Generator().manual_seed(3))
    loss.backward()
    grads = {name: p.grad.detach().cpu() for name, p in model.head.named_parameters() if p.grad is not None}
    return float(loss.detach()), terms, grads


def test_objective_and_gradients_on_cuda_equal_the_cpu(tiny_vit_file, exact_cuda):
    cfg = tiny_cfg(tiny_vit_file)
    torch.manual_seed(0)
    model, _ = build_model(cfg)
    model.train()
    batch = _batch()
    cpu_loss, cpu_terms, cpu_grads = _loss_and_grads(model, batch, cfg)
    model.to("cuda")
    cuda_loss, cuda_terms, cuda_grads = _loss_and_grads(model, batch.to("cuda"), cfg)
    names = {"ncut", "pixel_gtv", "feature_gtv", "coarse_fine", "crop_ncut", "crop"}
    assert set(cuda_terms) == set(cpu_terms) == names
    for name in cpu_terms:
        assert cuda_terms[name] == pytest.approx(cpu_terms[name], rel=1e-4, abs=1e-6), name
    assert cuda_loss == pytest.approx(cpu_loss, rel=1e-4)
    assert set(cuda_grads) == set(cpu_grads) and cpu_grads
    # relative to the largest gradient of the head: a bias followed by BatchNorm has a gradient of 0 in
    # exact arithmetic (~3e-9 of rounding on either device), which no per-tensor tolerance can compare
    scale = max(float(grad.abs().max()) for grad in cpu_grads.values())
    for name, grad in cpu_grads.items():
        torch.testing.assert_close(cuda_grads[name], grad, rtol=1e-3, atol=1e-5 * scale, msg=name)


def test_bf16_autocast_objective_is_close_to_float32(tiny_vit_file, exact_cuda):
    cfg = tiny_cfg(tiny_vit_file, device="cuda")
    torch.manual_seed(0)
    model, _ = build_model(cfg)
    model.to("cuda").train()
    batch = _batch().to("cuda")
    loss32, _, _ = _loss_and_grads(model, batch, cfg)
    loss16, _, grads16 = _loss_and_grads(model, batch, cfg.replace(amp=True))
    assert math.isfinite(loss16) and all(bool(torch.isfinite(g).all()) for g in grads16.values())
    assert loss16 == pytest.approx(loss32, rel=0.05)  # bf16 keeps 8 mantissa bits


@pytest.mark.parametrize("amp", [False, True], ids=["float32", "bf16-autocast"])
def test_training_on_cuda_learns_and_resumes(tmp_path, tiny_vit_file, amp):
    images, _ = disc_images(tmp_path, {f"img{i}": (64 + 8 * (i % 3), 64) for i in range(6)})
    cfg = tiny_cfg(tiny_vit_file, device="cuda", amp=amp, epochs=3, batch_size=3, lr=1e-3, checkpoint_every=2)
    full = train(cfg, images, tmp_path / "full")
    assert full.step == 6 and len(full.losses) == 6 and all(math.isfinite(x) for x in full.losses)
    assert min(full.losses[3:]) < full.losses[0], full.losses
    state = load_checkpoint(tmp_path / "full" / "last.pt")
    assert state["step"] == 6 and all(t.device.type == "cpu" for t in state["head"].values())
    # stopped after 4 steps and resumed: the same run, up to CUDA's non-deterministic reductions
    first = train(cfg.replace(max_steps=4), images, tmp_path / "split")
    second = train(cfg, images, tmp_path / "split", resume=True)
    assert first.step == 4 and second.step == 6
    np.testing.assert_allclose(first.losses + second.losses, full.losses, rtol=2e-2 if amp else 1e-4)


def test_a_cuda_trained_checkpoint_predicts_the_same_on_cpu_and_cuda(tmp_path, tiny_vit_file, exact_cuda):
    images, _ = disc_images(tmp_path)
    train(tiny_cfg(tiny_vit_file, device="cuda", max_steps=2), images, tmp_path / "run")
    rng = np.random.default_rng(0)
    picture = rng.random((70, 90, 3))
    masks = {}
    for device in ("cpu", "cuda"):
        predictor = load_predictor(tmp_path / "run" / "last.pt", device=device, refine="guided")
        [masks[device]] = predictor.predict([picture])
    assert masks["cuda"].fine.shape == (70, 90) and masks["cuda"].fine.dtype == np.float32
    assert masks["cuda"].flipped == masks["cpu"].flipped
    assert float(np.abs(masks["cuda"].fine - masks["cpu"].fine).max()) < 1e-4
    assert float(np.abs(masks["cuda"].coarse - masks["cpu"].coarse).max()) < 1e-4


def test_cli_train_and_predict_on_cuda(tmp_path, tiny_vit_file):
    images, _ = disc_images(tmp_path)
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["train", "--images", str(images), "--out", str(tmp_path / "run"), "--preset", "tiny"]
        + ["--backbone-checkpoint", str(tiny_vit_file), "--device", "cuda", "--amp", "--max-steps", "2"],
    )
    assert result.exit_code == 0, result.output
    out = tmp_path / "masks"
    result = runner.invoke(
        main,
        ["predict", "--checkpoint", str(tmp_path / "run" / "last.pt"), "--images", str(images)]
        + ["--out", str(out), "--device", "cuda"],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.png"]
