"""Downsampled grey pixels as a feature space (the registry's ``pixels``): an offline control, not a network.

Why: the resampling and pairs papers check FID against a second, independent feature space
(CLIP-FID). CLIP weights are not always at hand (the demo runs offline), and a control must
still be an honest, different space. This one is plain: each image is turned grey (ITU-R 601
luma), area-averaged to S × S pixels and scaled to [0, 1]; the S² values are the feature row.
Fréchet distance on it compares the images' coarse brightness layouts — nothing learned, so
agreement with FID there says the change is visible in the pixels themselves.

``weights`` names the size: ``default`` (16, 256-d) or a whole number from 2 to 64. The
definition is versioned and hashed (``weights_sha256``), so features of two sizes, or of a
later definition, are never compared by mistake.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from fidlens.core.errors import FidlensError
from fidlens.detectors.base import DEFAULT_WEIGHTS, DetectorSpec

__all__ = ["DEFAULT_SIZE", "PixelsDetector", "from_spec", "grey_pixels"]

DEFAULT_SIZE = 16
_DEFINITION = "fidlens-pixels-v1: grey = 0.299 R + 0.587 G + 0.114 B; area average to {s}x{s}; /255"
_LUMA = np.array([0.299, 0.587, 0.114])


def _size(weights: str) -> int:
    if weights == DEFAULT_WEIGHTS:
        return DEFAULT_SIZE
    try:
        size = int(weights)
    except ValueError:
        raise FidlensError(f"the pixels detector's weights name its size (default, or 2..64), not {weights!r}") from None
    if not 2 <= size <= 64:
        raise FidlensError(f"the pixels detector's size must be from 2 to 64, got {size}")
    return size


def grey_pixels(image: np.ndarray, size: int) -> np.ndarray:
    """One uint8 image (C, H, W) with C = 1 or 3 → size² float64 values in [0, 1] (area average, exact)."""
    arr = np.asarray(image, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[0] not in (1, 3):
        raise FidlensError(f"expected an image (C, H, W) with 1 or 3 channels, got shape {arr.shape}")
    grey = arr[0] if arr.shape[0] == 1 else np.tensordot(_LUMA, arr, axes=1)
    h, w = grey.shape
    # area average: each output pixel is the mean over its share of the input, fractional edges weighted
    rows = _area_weights(h, size)
    cols = _area_weights(w, size)
    return (rows @ grey @ cols.T).ravel() / 255.0


def _area_weights(n: int, size: int) -> np.ndarray:
    """(size, n) matrix whose row k averages input pixels [k n/size, (k+1) n/size), partial pixels by overlap."""
    edges = np.arange(size + 1) * (n / size)
    starts = np.arange(n)
    overlap = np.clip(np.minimum(edges[1:, None], starts[None, :] + 1) - np.maximum(edges[:-1, None], starts[None, :]),
                      0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


class PixelsDetector:
    """uint8 images in, downsampled grey pixels out (float32, size² wide). No logits, no spatial map."""

    name = "pixels"
    has_logits = False
    logits_dim = None
    reads_images = True
    supports_heatmaps = False

    def __init__(self, spec: DetectorSpec, device: Any = None):
        self.spec = spec
        self.size = _size(spec.weights)
        self.feature_dim = self.size * self.size
        self.weights_name = f"pixels-grey-{self.size}x{self.size}"
        self.weights_sha256 = hashlib.sha256(_DEFINITION.format(s=self.size).encode()).hexdigest()
        self.resize = f"grey-area-{self.size}x{self.size}"

    @property
    def device(self) -> str:
        """Always the CPU: the arithmetic is numpy float64 (images given on a GPU are copied back)."""
        return "cpu"

    def to(self, device: Any) -> PixelsDetector:
        return self

    def features(self, images: Any, *, want_logits: bool = False) -> dict[str, Any]:
        """``{"features": (N, size²) float32}`` for a uint8 NCHW batch or a list of CHW / 1CHW images."""
        batch = [images[i] for i in range(len(images))]
        rows = []
        for image in batch:
            array = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
            if array.ndim == 4 and array.shape[0] == 1:
                array = array[0]
            rows.append(grey_pixels(array, self.size))
        out = np.stack(rows).astype(np.float32) if rows else np.empty((0, self.feature_dim), np.float32)
        try:
            import torch

            return {"features": torch.from_numpy(out)}
        except ImportError:  # pragma: no cover - torch is a dependency; numpy callers still work
            return {"features": out}


def from_spec(spec: DetectorSpec, device: Any = "cpu") -> PixelsDetector:
    """The registry's ``pixels``: ``spec.weights`` is the side length (``default`` = 16); DEVICE is unused (CPU)."""
    return PixelsDetector(spec, device)
