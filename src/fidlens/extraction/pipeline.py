"""The steps users chain together: detector → (cached) features → statistics → FID / KID.

The CLI and the workflow scripts both call these, so a number means the same thing
whichever way it was produced.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from fidlens import __version__
from fidlens.assets.store import cache_dir, resolve_inception_weights
from fidlens.metrics.comparability import Side, check_comparable, known_convention
from fidlens.data.datasets import DecodeLimits, open_image_source
from fidlens.core.errors import StatisticsError
from fidlens.metrics.feature_files import has_features, read_feature_file
from fidlens.detectors.features import default_workers, extract_features, pick_device
from fidlens.metrics.frechet import frechet_distance
from fidlens.detectors.inception import FidInceptionV3
from fidlens.detectors.inception_weights import load_inception, no_logits_message
from fidlens.metrics.kid import kernel_inception_distance
from fidlens.core.npzread import inspect_npz
from fidlens.metrics.stats import FeatureCache, FeatureSet, Statistics, feature_cache_key, provenance


@dataclass
class ExtractionSettings:
    """How to run the detector; defaults suit a laptop CPU and a workstation GPU alike."""

    batch_size: int = 64
    workers: int | None = None
    device: str = "auto"
    progress: bool = True
    cache: str | os.PathLike | None = None  # None: $FIDLENS_HOME/features; "" disables caching
    limits: DecodeLimits | None = None  # per-image ceilings; None: DecodeLimits.from_env()

    def cache_root(self) -> Path | None:
        if self.cache == "":
            return None
        return Path(self.cache) if self.cache is not None else cache_dir() / "features"


def load_detector(weights: str | os.PathLike | None = None, device: str | torch.device = "auto") -> FidInceptionV3:
    """The FID Inception network from ``weights`` (``default`` = the offline default_1.pt)."""
    resolved = resolve_inception_weights(weights)
    return load_inception(resolved, device=pick_device(device) if isinstance(device, str) else device)


def _cached_features(settings: ExtractionSettings, key: str, compute: Callable[[], FeatureSet]) -> FeatureSet:
    """Serve ``key`` from the feature cache, or compute and store it (no cache when disabled).

    A damaged entry is set aside with a warning and recomputed (see `fidlens.core.feature_cache`); a
    cache that cannot be written costs only the caching, never the computed features.
    """
    root = settings.cache_root()
    cache = FeatureCache(root) if root is not None else None
    if cache is not None and (hit := cache.get(key)) is not None:
        return hit
    features = compute()
    if cache is not None:
        try:
            cache.put(key, features)
        except (OSError, TypeError, ValueError, StatisticsError) as exc:
            import warnings

            from fidlens.core.feature_cache import FeatureCacheWarning

            reason = " ".join(str(getattr(exc, "strerror", None) or exc).split())
            warnings.warn(f"could not store features in the cache at {cache.path_for(key)} ({reason}); "
                          "continuing without caching them", FeatureCacheWarning, stacklevel=3)
    return features


def compute_features(
    path: str | os.PathLike,
    detector: FidInceptionV3,
    *,
    max_images: int | None = None,
    subset_seed: int | None = None,
    want_logits: bool = False,
    settings: ExtractionSettings | None = None,
    limits: DecodeLimits | None = None,
) -> FeatureSet:
    """Features of an image folder or ZIP, served from the content-keyed cache when possible.

    `limits` bounds what each image may cost (default: ``settings.limits``, else
    `DecodeLimits.from_env()`).
    """
    settings = settings or ExtractionSettings()
    if want_logits and not detector.has_logits:
        raise StatisticsError(no_logits_message(detector.weights_name))
    if limits is None:
        limits = settings.limits
    source = open_image_source(path, max_images=max_images, subset_seed=subset_seed, limits=limits)
    source_hash = source.content_hash()
    key = feature_cache_key(source_hash, detector.weights_sha256, want_logits=want_logits)

    def extract() -> FeatureSet:
        arrays = extract_features(
            source,
            detector,
            batch_size=settings.batch_size,
            workers=default_workers(next(detector.parameters()).device) if settings.workers is None else settings.workers,
            device=next(detector.parameters()).device,
            want_logits=want_logits,
            progress=settings.progress,
        )
        meta = provenance(source.describe(), source_hash, detector.weights_name, detector.weights_sha256)
        meta.update(num_images=len(source), names_head=source.names[:3])
        return FeatureSet(pool3=arrays["pool3"], meta=meta, logits=arrays.get("logits"))

    return _cached_features(settings, key, extract)


def statistics_from_features(features: FeatureSet, covariance: str = "unbiased") -> Statistics:
    """Statistics of a feature set, carrying what is needed to compare them later.

    The detector, its sha256, the covariance convention and the resize convention go into
    the metadata, so that `fid_between` can refuse to compare unlike statistics.
    """
    keys = ("source_hash", "detector", "detector_sha256", "fidlens_version", "gpu_precision")
    meta = {k: features.meta[k] for k in keys if k in features.meta}
    meta["source"] = features.meta.get("source", {})
    resize = known_convention(features.meta, "resize")
    if resize is not None:
        meta["resize"] = resize
    return Statistics.from_features(features.pool3, covariance=covariance, meta=meta)


def is_statistics_file(path: str | os.PathLike) -> bool:
    """Whether PATH names a ``.npz`` (statistics or features) rather than an image folder or ZIP."""
    return str(path).lower().endswith(".npz")


def npz_kind(path: str | os.PathLike) -> str:
    """'statistics' (it has mu or sigma, or no feature array) or 'features', from the headers only."""
    members = inspect_npz(path, "statistics")
    if "mu" in members or "sigma" in members or not has_features(members):
        return "statistics"
    return "features"


def detector_meta(detector: FidInceptionV3) -> dict:
    """The metadata a side computed now with DETECTOR will carry (for checks before extraction)."""
    return {"detector": detector.weights_name, "detector_sha256": detector.weights_sha256,
            "fidlens_version": __version__}


def resolve_statistics(
    spec: str | os.PathLike,
    detector_factory,
    *,
    covariance: str = "unbiased",
    max_images: int | None = None,
    settings: ExtractionSettings | None = None,
) -> Statistics:
    """A statistics ``.npz`` as it is, a feature ``.npz`` or a folder / ZIP turned into statistics.

    A statistics file is validated as it is read (`Statistics.load`); its own covariance
    convention stands (``covariance`` applies to features and images only).
    """
    if is_statistics_file(spec):
        if npz_kind(spec) == "statistics":
            return Statistics.load(spec)
        return statistics_from_features(read_feature_file(spec, max_images=max_images), covariance)
    features = compute_features(spec, detector_factory(), max_images=max_images, settings=settings)
    return statistics_from_features(features, covariance)


def resolve_features(
    spec: str | os.PathLike,
    detector_factory,
    *,
    max_images: int | None = None,
    settings: ExtractionSettings | None = None,
) -> FeatureSet:
    """Features of a feature ``.npz`` or of a folder / ZIP; a statistics file is refused with the reason."""
    if is_statistics_file(spec):
        return read_feature_file(spec, max_images=max_images)
    return compute_features(spec, detector_factory(), max_images=max_images, settings=settings)


def _names(names: tuple[str, str] | None) -> tuple[str, str]:
    return (str(names[0]), str(names[1])) if names is not None else ("set 1", "set 2")


def comparison_notes(
    meta_a: dict, meta_b: dict, *, names: tuple[str, str] | None = None, allow_mismatch: bool = False
) -> list[tuple[type[Warning], str]]:
    """Refuse two sides whose detector, covariance or resize convention differ (see `fidlens.metrics.comparability`).

    Returns the notes to show (unknown detector; a mismatch the user allowed).
    """
    a, b = _names(names)
    return check_comparable(Side(a, meta_a), Side(b, meta_b), allow_mismatch=allow_mismatch)


def _emit(notes: list[tuple[type[Warning], str]]) -> None:
    for category, message in notes:
        warnings.warn(message, category, stacklevel=3)


def fid_between(
    a: Statistics, b: Statistics, *, names: tuple[str, str] | None = None, allow_mismatch: bool = False
) -> float:
    """FID of two statistics, refusing to mix feature spaces or conventions.

    Different detectors, covariance or resize conventions are refused unless
    ``allow_mismatch`` (then warned about); ``names`` label the sides in messages.
    """
    _emit(comparison_notes(a.meta, b.meta, names=names, allow_mismatch=allow_mismatch))
    if a.mu.shape != b.mu.shape:
        na, nb = _names(names)
        raise StatisticsError(f"feature dimensions differ: {na} has d={a.mu.shape[0]}, {nb} has d={b.mu.shape[0]}")
    return frechet_distance(a.mu, a.sigma, b.mu, b.sigma, names=names)


def kid_between(
    a: FeatureSet,
    b: FeatureSet,
    *,
    num_subsets: int = 100,
    max_subset_size: int = 1000,
    seed: int = 0,
    names: tuple[str, str] | None = None,
    allow_mismatch: bool = False,
) -> tuple[float, float]:
    """KID of two feature sets, refusing different detectors or resize conventions (see `fid_between`)."""
    notes = check_comparable(Side(_names(names)[0], a.meta), Side(_names(names)[1], b.meta),
                             allow_mismatch=allow_mismatch, keys=("detector_sha256", "resize"))
    _emit(notes)
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

    from fidlens.assets.store import file_sha256
    from fidlens.generators.generate import generated_features
    from fidlens.generators.load import load_generator

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
