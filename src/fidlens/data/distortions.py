"""Graded image disturbances of the original FID paper's study (Heusel et al., 2017).

FID should rise monotonically as images get worse; these give the worse images.
Each takes and returns uint8 arrays (H×W or H×W×C) and is deterministic given the rng.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter


def gaussian_blur(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma`` pixels."""
    if sigma <= 0:
        return image.copy()
    return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius=sigma)))


def gaussian_noise(image: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """Additive Gaussian noise with standard deviation ``std`` grey levels, clipped to [0, 255]."""
    noisy = image.astype(np.float64) + rng.normal(0.0, std, size=image.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def occlusion(image: np.ndarray, area: float, rng: np.random.Generator) -> np.ndarray:
    """A black rectangle covering ``area`` (0–1) of the image, at a random position."""
    if not 0 <= area <= 1:
        raise ValueError(f"occlusion area must be in [0, 1], got {area}")
    out = image.copy()
    h, w = image.shape[:2]
    aspect = rng.uniform(0.5, 2.0)
    rh = round(min(h, np.sqrt(area * h * w * aspect)))
    rw = round(min(w, area * h * w / max(rh, 1)))
    top = int(rng.integers(0, h - rh + 1))
    left = int(rng.integers(0, w - rw + 1))
    out[top : top + rh, left : left + rw] = 0
    return out


DISTORTIONS: dict[str, Callable[[np.ndarray, float, np.random.Generator], np.ndarray]] = {
    "blur": gaussian_blur,
    "noise": gaussian_noise,
    "occlusion": occlusion,
}
UNITS = {"blur": "σ (pixels)", "noise": "σ (grey levels)", "occlusion": "area fraction"}


def distort(image: np.ndarray, kind: str, strength: float, rng: np.random.Generator) -> np.ndarray:
    if kind not in DISTORTIONS:
        raise ValueError(f"unknown distortion '{kind}'; choose from {sorted(DISTORTIONS)}")
    return DISTORTIONS[kind](image, float(strength), rng)
