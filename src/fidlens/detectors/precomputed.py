"""Embeddings computed elsewhere as a detector (the registry's ``precomputed``): FD, KID and PRDC on them.

DINOv2, a face-recognition network or any other encoder can be run by its own code; its
per-image embeddings, saved as a ``.npy`` array (N, d) or a ``.npz`` with an array
``features`` (optionally ``logits``), then go through the same checked statistics, metrics
and studies that need only features. There is no network and no preprocessing here:
`features` on images is refused, and the extraction code calls `read` instead.

``weights`` in the spec is a label naming the feature space (e.g. ``dinov2-vitl14``), recorded
as the detector in metadata. This file plus one line in `fidlens.detectors.registry` is the
whole detector: the template for adding one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from fidlens.core.errors import FidlensError, StatisticsError
from fidlens.detectors.base import DEFAULT_WEIGHTS, DetectorSpec, detector_record
from fidlens.metrics.feature_files import check_feature_layout, read_feature_file
from fidlens.metrics.stats import MAX_FEATURE_BYTES, FeatureSet

__all__ = ["PRECOMPUTED_RESIZE", "PrecomputedEmbeddings", "from_spec"]

# Recorded as the resize convention: the preprocessing happened elsewhere, so such features are
# comparable only with other precomputed ones (never silently with fidlens' Inception features).
PRECOMPUTED_RESIZE = "precomputed"
SUFFIXES = (".npy", ".npz")
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _read_npy(path: Path) -> np.ndarray:
    """A 2-D real array from a ``.npy``, its header checked before anything is allocated; no pickles."""
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version not in _HEADER_READERS:
                raise ValueError(f"unsupported .npy version {version}")
            shape, _, dtype = _HEADER_READERS[version](handle)  # the header only, no data
    except (OSError, ValueError, EOFError) as exc:
        raise StatisticsError(f"{path} is not a readable .npy array ({' '.join(str(exc).split())})") from None
    check_feature_layout(path, "array", tuple(shape), np.dtype(dtype))
    needed = int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize
    if needed > MAX_FEATURE_BYTES:
        raise StatisticsError(f"{path}: the array needs {needed:,} bytes; fidlens reads at most {MAX_FEATURE_BYTES:,}")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise StatisticsError(f"{path} is damaged ({' '.join(str(exc).split())})") from None


class PrecomputedEmbeddings:
    """Reads embedding files; its feature dimension is that of the first file read, and every later one must match."""

    name = "precomputed"
    has_logits = False
    logits_dim = None
    resize = PRECOMPUTED_RESIZE
    weights_sha256 = None
    reads_images = False
    supports_heatmaps = False
    device = None

    def __init__(self, spec: DetectorSpec):
        self.spec = spec
        self.weights_name = spec.weights if spec.weights != DEFAULT_WEIGHTS else "precomputed"
        self.feature_dim: int | None = None
        self._first: str | None = None

    def to(self, device: Any) -> PrecomputedEmbeddings:
        return self

    def features(self, images: Any, *, want_logits: bool = False) -> dict[str, Any]:
        raise FidlensError("the precomputed detector has no network: give .npy or .npz embedding files, not images")

    def read(self, path: str | os.PathLike, *, max_images: int | None = None) -> FeatureSet:
        """The embeddings of PATH (``.npy`` or ``.npz``), checked: 2-D, finite, the same width as the first file."""
        path = Path(path)
        if path.suffix.lower() not in SUFFIXES or not path.is_file():
            what = "a folder" if path.is_dir() else ("missing" if not path.exists() else f"a '{path.suffix}' file")
            raise FidlensError(f"the precomputed detector reads embeddings from .npy or .npz files; {path} is {what} "
                               "(to compute features from images, choose a network detector such as inception)")
        if path.suffix.lower() == ".npz":
            features = read_feature_file(path, max_images=max_images)
        else:
            array = _read_npy(path)
            if not np.isfinite(array).all():
                raise StatisticsError(f"{path}: features contain NaN or infinite values")
            if max_images is not None:
                array = array[:max_images]
            features = FeatureSet(features=array, meta={"num_images": int(array.shape[0])})
        self._check_width(path, features.features.shape[1])
        if "detector" not in features.meta:  # a plain array: say what it is; a fidlens feature file keeps its record
            features.meta.update(source={"kind": "precomputed", "path": str(path)}, detector=self.weights_name,
                                 detector_sha256=None, resize=self.resize, detector_spec=detector_record(self))
        return features

    def _check_width(self, path: Path, width: int) -> None:
        if self.feature_dim is None:
            self.feature_dim, self._first = int(width), str(path)
        elif width != self.feature_dim:
            raise StatisticsError(f"feature dimensions differ: {self._first} has d={self.feature_dim}, {path} has d={width}")


def from_spec(spec: DetectorSpec, device: Any = None) -> PrecomputedEmbeddings:
    """The registry's ``precomputed``; ``spec.weights`` labels the feature space, the device is unused."""
    return PrecomputedEmbeddings(spec)
