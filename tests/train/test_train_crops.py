"""Crop geometry of the multi-scale crop-consistency loss (PROTOCOL §6)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="torch not installed: pip install 'torch==2.13.0' -e '.[torch]'")

from maskrefine.train.crops import crop_and_zoom, sample_crop_offsets  # noqa: E402


@pytest.mark.parametrize("sampler", ["uniform", "reference"])
def test_student_crop_equals_teacher_view(sampler):
    """A per-pixel "network" (any affine map of the pixel values) predicts the same mask for the zoomed
    image crop (teacher) as the zoomed crop of its full-image mask (student)."""
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(3, 3, 320, 320, generator=gen)

    def net(x):  # per-pixel affine "prediction"
        return 0.3 * x[:, :1] - 0.2 * x[:, 1:2] + 0.5 * x[:, 2:3] + 0.1

    offsets = sample_crop_offsets(3, 320, 320, sampler=sampler, generator=gen)
    student = crop_and_zoom(net(image), offsets)
    teacher = net(crop_and_zoom(image, offsets))
    torch.testing.assert_close(student, teacher, rtol=0, atol=1e-6)
    # and it is the region itself, zoomed: pixel (2i+0.5) of the zoom interpolates crop pixels i, i+1
    r, c = offsets[0].tolist()
    window = image[0, :, r : r + 160, c : c + 160]
    zoom = torch.nn.functional.interpolate(
        window[None], size=(320, 320), mode="bilinear", align_corners=False
    )
    torch.testing.assert_close(crop_and_zoom(image, offsets)[0], zoom[0])


def test_reference_sampler_reproduces_rows_80_and_columns_10_to_29():
    gen = torch.Generator().manual_seed(1)
    offsets = torch.cat(
        [sample_crop_offsets(8, 320, 320, sampler="reference", generator=gen) for _ in range(200)]
    )
    assert set(offsets[:, 0].tolist()) == {80}
    assert set(offsets[:, 1].tolist()) == set(range(10, 30))


def _repository_offsets(batch, height, width, patch, generator):
    """The paper repository's draws (sempart_largefeat7_try.py) through crop_my_images' list-repeat slip:
    token offsets randint(g // 4, 3 * (g // 4)) on the g = size // patch grid used as pixels, the row
    clamped to [h // 2, 3 * (h // 2)] with h = H // 2."""
    g_h, g_w = height // patch, width // patch
    rows = torch.randint(g_h // 4, 3 * (g_h // 4), (batch,), generator=generator).tolist()
    cols = torch.randint(g_w // 4, 3 * (g_w // 4), (batch,), generator=generator).tolist()
    h = height // 2
    rows = [h // 2 if i < h // 2 else 3 * (h // 2) if i > 3 * (h // 2) else i for i in rows]
    return torch.tensor([rows, cols]).T


@pytest.mark.parametrize(
    ("height", "width", "patch"), [(320, 320, 8), (320, 320, 16), (64, 64, 8), (256, 192, 8), (66, 130, 16)]
)
def test_reference_sampler_scales_with_the_grid_as_the_repository(height, width, patch):
    # the offsets were always 10..29 (the repository's values at 320 px, patch 8 only): 5..14 at patch 16
    for seed in range(20):
        ours = sample_crop_offsets(
            6, height, width, sampler="reference", stride=patch, generator=torch.Generator().manual_seed(seed)
        )
        theirs = _repository_offsets(6, height, width, patch, torch.Generator().manual_seed(seed))
        assert torch.equal(ours, theirs), (seed, ours.tolist(), theirs.tolist())
    gen = torch.Generator().manual_seed(0)
    cols = torch.cat(
        [sample_crop_offsets(8, 320, 320, sampler="reference", stride=16, generator=gen) for _ in range(100)]
    )[:, 1]
    assert set(cols.tolist()) == set(range(5, 15))
    with pytest.raises(ValueError, match="patch grid of at least 4x4; got 3x8"):
        sample_crop_offsets(2, 48, 128, sampler="reference", stride=16, generator=gen)


def test_uniform_sampler_covers_every_aligned_position():
    gen = torch.Generator().manual_seed(2)
    offsets = torch.cat(
        [sample_crop_offsets(8, 320, 320, sampler="uniform", generator=gen) for _ in range(200)]
    )
    expected = set(range(0, 161, 8))
    assert set(offsets[:, 0].tolist()) == expected
    assert set(offsets[:, 1].tolist()) == expected


def test_sampler_is_deterministic_given_the_generator():
    a = sample_crop_offsets(4, 64, 64, generator=torch.Generator().manual_seed(5))
    b = sample_crop_offsets(4, 64, 64, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_errors():
    gen = torch.Generator()
    with pytest.raises(ValueError, match="crop sampler"):
        sample_crop_offsets(1, 64, 64, sampler="random", generator=gen)
    with pytest.raises(ValueError, match="even"):
        sample_crop_offsets(1, 63, 64, generator=gen)
    with pytest.raises(ValueError, match="patch grid of at least 4x4; got 3x3"):
        sample_crop_offsets(64, 24, 24, sampler="reference", generator=gen)
    sample_crop_offsets(64, 32, 32, sampler="reference", generator=gen)  # a 4x4 grid: it fits (was refused)


def test_crop_is_differentiable():
    x = torch.rand(1, 1, 16, 16, requires_grad=True)
    crop_and_zoom(x, torch.tensor([[4, 8]])).sum().backward()
    assert x.grad[0, 0, 4:12, 8:16].abs().sum() > 0 and x.grad[0, 0, :4].abs().sum() == 0


@pytest.mark.parametrize("offsets", [[[9, 0]], [[0, 9]], [[-1, 0]], [[0, 0], [0, 0]], [[0]]])
def test_crop_and_zoom_refuses_windows_outside_the_image(offsets):
    # before: a window past the edge was cut short and zoomed by more than 2 (a silently wrong crop),
    # a negative offset cut from the other side, one offset per image too many was ignored
    with pytest.raises(ValueError, match="offsets"):
        crop_and_zoom(torch.rand(1, 1, 16, 16), torch.tensor(offsets))
