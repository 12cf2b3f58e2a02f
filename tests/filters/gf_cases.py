"""Seeded inputs shared by the filter tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Max absolute error against the float64 oracle, keyed by (backend, dtype of the inputs).
#: numba accumulates in float64 (~1e-7 observed); torch backends may use float32 cumsums (peer note 7 in
#: bench/README.md).
TOLERANCES: dict[tuple[str, str], float] = {
    ("numba", "float32"): 1e-5,
    ("numba", "float64"): 1e-5,
    ("torch-cpu", "float32"): 2e-5,
    ("torch-cuda", "float32"): 2e-5,
}


def tolerance(backend: str, dtype: np.dtype | str = "float32") -> float:
    """Tolerance of ``backend`` for inputs of ``dtype`` (see :data:`TOLERANCES`)."""
    return TOLERANCES[(backend, np.dtype(dtype).name)]


def random_case(
    seed: int, h: int, w: int, *, color: bool = False, batch: int | None = None, dtype: str = "float32"
) -> tuple[np.ndarray, np.ndarray]:
    """A smooth-ish random guide (noise + gradient) and a soft mask correlated with it."""
    rng = np.random.default_rng(seed)
    lead = () if batch is None else (batch,)
    yy, xx = np.mgrid[0:h, 0:w]
    ramp = (yy / max(h - 1, 1) + xx / max(w - 1, 1)) / 2
    guide = 0.5 * rng.random(lead + (h, w) + ((3,) if color else ())) + 0.5 * (
        ramp[..., None] if color else ramp
    )
    base = guide.mean(axis=-1) if color else guide
    src = np.clip(base + 0.3 * rng.standard_normal(lead + (h, w)), 0, 1)
    src = (src > 0.5).astype(np.float64) * 0.8 + 0.2 * rng.random(lead + (h, w))
    return guide.astype(dtype), src.astype(dtype)


def sod_crop(sod_dir: Path, index: int, h: int, w: int, *, color: bool) -> tuple[np.ndarray, np.ndarray]:
    """A crop of a real SOD image (RGB in [0, 1]) with a predicted saliency map of one method as src."""
    import cv2

    images = sorted((sod_dir / "images").glob("*.jpg"))
    image_path = images[index % len(images)]
    method_dirs = sorted(p for p in (sod_dir / "predictions").iterdir() if p.is_dir())
    pred_path = method_dirs[index % len(method_dirs)] / (image_path.stem + ".png")
    if not pred_path.exists():
        pred_path = sod_dir / "masks" / (image_path.stem + ".png")
    bgr = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    pred = cv2.imread(str(pred_path), cv2.IMREAD_GRAYSCALE)
    rgb = bgr[:, :, ::-1].astype(np.float32) / 255
    pred = (
        cv2.resize(pred, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        / 255
    )
    y0 = (rgb.shape[0] - h) // 2
    x0 = (rgb.shape[1] - w) // 2
    rgb = np.ascontiguousarray(rgb[y0 : y0 + h, x0 : x0 + w])
    pred = np.ascontiguousarray(pred[y0 : y0 + h, x0 : x0 + w])
    guide = rgb if color else np.ascontiguousarray(rgb.mean(axis=2))
    return guide, pred
