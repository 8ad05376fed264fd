"""The steps users chain together: detector → (cached) features → statistics → FID / KID.

The CLI and the workflow scripts both call these, so a number means the same thing
whichever way it was produced.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .assets import cache_dir, resolve_inception_weights
from .datasets import open_image_source
from .errors import StatisticsError
from .features import default_workers, extract_features, pick_device
from .frechet import frechet_distance
from .inception import FidInceptionV3
from .inception_weights import load_inception, no_logits_message
from .kid import kernel_inception_distance
from .stats import FeatureCache, FeatureSet, Statistics, feature_cache_key, provenance


@dataclass
class ExtractionSettings:
    """How to run the detector; defaults suit a laptop CPU and a workstation GPU alike."""

    batch_size: int = 64
    workers: int | None = None
    device: str = "auto"
    progress: bool = True
    cache: str | os.PathLike | None = None  # None: $FIDLENS_HOME/features; "" disables caching

    def cache_root(self) -> Path | None:
        if self.cache == "":
            return None
        return Path(self.cache) if self.cache is not None else cache_dir() / "features"


def load_detector(weights: str | os.PathLike | None = None, device: str | torch.device = "auto") -> FidInceptionV3:
    """The FID Inception network from ``weights`` (``default`` = the offline default_1.pt)."""
    resolved = resolve_inception_weights(weights)
    return load_inception(resolved, device=pick_device(device) if isinstance(device, str) else device)


def _cached_features(settings: ExtractionSettings, key: str, compute: Callable[[], FeatureSet]) -> FeatureSet:
    """Serve ``key`` from the feature cache, or compute and store it (no cache when disabled)."""
    root = settings.cache_root()
    cache = FeatureCache(root) if root is not None else None
    if cache is not None and (hit := cache.get(key)) is not None:
        return hit
    features = compute()
    if cache is not None:
        cache.put(key, features)
    return features


def compute_features(
    path: str | os.PathLike,
    detector: FidInceptionV3,
    *,
    max_images: int | None = None,
    subset_seed: int | None = None,
    want_logits: bool = False,
    settings: ExtractionSettings | None = None,
) -> FeatureSet:
    """Features of an image folder or ZIP, served from the content-keyed cache when possible."""
    settings = settings or ExtractionSettings()
    if want_logits and not detector.has_logits:
        raise StatisticsError(no_logits_message(detector.weights_name))
    source = open_image_source(path, max_images=max_images, subset_seed=subset_seed)
    source_hash = source.content_hash()
    key = feature_cache_key(source_hash, detector.weights_sha256, want_logits=want_logits)

    def extract() -> FeatureSet:
        arrays = extract_features(
            source,
            detector,
            batch_size=settings.batch_size,
            workers=default_workers() if settings.workers is None else settings.workers,
            device=next(detector.parameters()).device,
            want_logits=want_logits,
            progress=settings.progress,
        )
        meta = provenance(source.describe(), source_hash, detector.weights_name, detector.weights_sha256)
        meta.update(num_images=len(source), names_head=source.names[:3])
        return FeatureSet(pool3=arrays["pool3"], meta=meta, logits=arrays.get("logits"))

    return _cached_features(settings, key, extract)


def statistics_from_features(features: FeatureSet, covariance: str = "unbiased") -> Statistics:
    meta = {k: features.meta[k] for k in ("source_hash", "detector", "detector_sha256", "fidlens_version") if k in features.meta}
    meta["source"] = features.meta.get("source", {})
    return Statistics.from_features(features.pool3, covariance=covariance, meta=meta)


def is_statistics_file(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(".npz") and Path(path).is_file()


def resolve_statistics(
    spec: str | os.PathLike,
    detector_factory,
    *,
    covariance: str = "unbiased",
    max_images: int | None = None,
    settings: ExtractionSettings | None = None,
) -> Statistics:
    """A statistics ``.npz`` as it is, or a folder / ZIP turned into statistics."""
    if is_statistics_file(spec):
        return Statistics.load(spec)
    features = compute_features(spec, detector_factory(), max_images=max_images, settings=settings)
    return statistics_from_features(features, covariance)


def fid_between(a: Statistics, b: Statistics) -> float:
    """FID of two statistics, refusing to mix feature spaces or silently mixed conventions."""
    if a.mu.shape != b.mu.shape:
        raise StatisticsError(f"feature dimensions differ: {a.mu.shape[0]} vs {b.mu.shape[0]}")
    return frechet_distance(a.mu, a.sigma, b.mu, b.sigma)


def kid_between(a: FeatureSet, b: FeatureSet, *, num_subsets: int = 100, max_subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    return kernel_inception_distance(a.pool3, b.pool3, num_subsets=num_subsets, max_subset_size=max_subset_size, seed=seed)


@dataclass
class GenerationSettings:
    """Which generated set: N images from one latent RandomState, with the sampling options."""

    num_images: int
    latent_seed: int = 0
    truncation_psi: float = 1.0
    truncation_cutoff: int | None = None
    noise_mode: str = "const"
    class_idx: int | None = None

    def sampling_kwargs(self) -> dict:
        return {"truncation_psi": self.truncation_psi, "truncation_cutoff": self.truncation_cutoff,
                "noise_mode": self.noise_mode, "class_idx": self.class_idx}


def compute_generated_features(
    generator_path: str | os.PathLike,
    detector: FidInceptionV3,
    generation: GenerationSettings,
    *,
    which: str = "G_ema",
    settings: ExtractionSettings | None = None,
) -> FeatureSet:
    """Features of a generated set, cached by (generator file, sampling settings, detector)."""
    import json

    from .assets import file_sha256
    from .generate import generated_features
    from .generators.load import load_generator

    settings = settings or ExtractionSettings()
    content = json.dumps({"generator": file_sha256(generator_path), "which": which, **vars(generation)}, sort_keys=True)
    source_hash = hashlib.sha256(content.encode()).hexdigest()
    key = feature_cache_key(source_hash, detector.weights_sha256, want_logits=detector.has_logits)

    def generate_and_extract() -> FeatureSet:
        G = load_generator(generator_path, which=which).to(next(detector.parameters()).device)
        arrays = generated_features(G, detector, generation.num_images, generation.latent_seed,
                                    batch_size=settings.batch_size, progress=settings.progress,
                                    want_logits=detector.has_logits, **generation.sampling_kwargs())
        description = {"kind": "generated", "generator": G.label, "path": str(generator_path), **vars(generation)}
        meta = provenance(description, source_hash, detector.weights_name, detector.weights_sha256)
        meta["num_images"] = generation.num_images
        return FeatureSet(pool3=arrays["pool3"], meta=meta, logits=arrays.get("logits"))

    return _cached_features(settings, key, generate_and_extract)
