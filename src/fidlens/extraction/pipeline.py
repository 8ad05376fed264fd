"""The steps users chain together: detector → (cached) features → statistics → FID / KID.

The CLI and the workflow scripts both call these, so a number means the same thing
whichever way it was produced. Any registered detector works (`fidlens.detectors.registry`);
one that reads stored embeddings (``precomputed``) is asked for its arrays instead of images.
torch is imported only where images meet a network, so statistics-only work stays light.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fidlens import __version__
from fidlens.assets.store import cache_dir
from fidlens.core.errors import FidlensError, StatisticsError
from fidlens.data.datasets import DecodeLimits, ImageSource, open_image_source
from fidlens.detectors.base import Detector, DetectorSpec, detector_record
from fidlens.detectors.device import default_workers
from fidlens.detectors.registry import load_detector as load_registered_detector
from fidlens.detectors.registry import reads_images
from fidlens.extraction.npz_inputs import is_statistics_file, npz_kind
from fidlens.generators.sampling import DEFAULT_SAMPLING, Sampling
from fidlens.metrics.comparability import Side, check_comparable, known_convention
from fidlens.metrics.covariance import Covariance
from fidlens.metrics.feature_files import read_feature_file
from fidlens.metrics.frechet import frechet_distance
from fidlens.metrics.kid import kernel_inception_distance
from fidlens.metrics.stats import (
    FeatureCache,
    FeatureSet,
    Statistics,
    feature_cache_key,
    provenance,
)

if TYPE_CHECKING:
    import torch

__all__ = ["ExtractionSettings", "GenerationSettings", "comparison_notes", "compute_features",
           "compute_generated_features", "detector_meta", "extract_features", "fid_between", "is_statistics_file",
           "kid_between", "load_detector", "npz_kind", "resolve_features", "resolve_statistics",
           "statistics_from_features", "statistics_meta"]


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


def load_detector(spec: DetectorSpec | dict | str | os.PathLike | None = None,
                  device: str | torch.device = "auto") -> Detector:
    """The detector SPEC names, from the registry; a plain string or path is Inception weights (the old call)."""
    if spec is None or isinstance(spec, (str, os.PathLike)):
        spec = DetectorSpec("inception", str(spec) if spec not in (None, "") else "default")
    return load_registered_detector(spec, device)


def extract_features(*args: Any, **kwargs: Any) -> dict:
    """`fidlens.detectors.features.extract_features`, imported when first needed (it imports torch)."""
    from fidlens.detectors.features import extract_features as extract

    return extract(*args, **kwargs)


def _cache_identity(detector: Detector) -> str | None:
    """What keys a detector in the feature cache: Inception by its weights' sha256 (keys as before), others by name too."""
    if detector.name == "inception":
        return detector.weights_sha256
    return f"{detector.name}:{detector.weights_name}:{detector.weights_sha256}"


def _feature_meta(detector: Detector, description: dict, source_hash: str) -> dict:
    """Provenance of features made now: the source, the detector (name, weights, sha256, dim, resize), the settings."""
    meta = provenance(description, source_hash, detector.weights_name, detector.weights_sha256)
    meta.update(resize=detector.resize, detector_spec=detector_record(detector))
    return meta


def _with_detector_record(features: FeatureSet, detector: Detector) -> FeatureSet:
    """A cache hit written before detectors were recorded gets the record of the detector its key names."""
    if "detector_spec" not in features.meta:
        features.meta.update(resize=detector.resize, detector_spec=detector_record(detector))
    return features


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
    detector: Detector,
    *,
    max_images: int | None = None,
    subset_seed: int | None = None,
    want_logits: bool = False,
    settings: ExtractionSettings | None = None,
    limits: DecodeLimits | None = None,
    shard: tuple[int, int] | None = None,
) -> FeatureSet:
    """Features of an image folder or ZIP, served from the content-keyed cache when possible.

    `limits` bounds what each image may cost (default: ``settings.limits``, else
    `DecodeLimits.from_env()`). A detector that reads stored embeddings returns those.
    ``shard=(start, stop)`` computes only images [start, stop) of the selection (one job of a
    sharded extraction; its own cache entry, `meta["shard"]` says which rows).
    """
    settings = settings or ExtractionSettings()
    if not getattr(detector, "reads_images", True):
        if subset_seed is not None:
            raise FidlensError(f"the {detector.name} detector reads stored embeddings; they cannot be subsampled by seed")
        return detector.read(path, max_images=max_images)
    if want_logits and not detector.has_logits:
        from fidlens.detectors.inception import no_logits_message

        raise StatisticsError(no_logits_message(detector.weights_name) if detector.name == "inception"
                              else f"the {detector.name} detector has no logits")
    if str(path).lower().endswith(".npy"):
        raise FidlensError(f"{path} is an array file, not images; for embeddings computed elsewhere use "
                           "--detector precomputed")
    if limits is None:
        limits = settings.limits
    source = open_image_source(path, max_images=max_images, subset_seed=subset_seed, limits=limits)
    if shard is not None:
        source = narrowed_source(source, *shard)
    source_hash = source.content_hash()
    key = feature_cache_key(source_hash, _cache_identity(detector), want_logits=want_logits)

    def extract() -> FeatureSet:
        arrays = extract_features(
            source,
            detector,
            batch_size=settings.batch_size,
            workers=default_workers(detector.device) if settings.workers is None else settings.workers,
            device=detector.device,
            want_logits=want_logits,
            progress=settings.progress,
        )
        meta = _feature_meta(detector, source.describe(), source_hash)
        meta.update(num_images=len(source), names_head=source.names[:3])
        if shard is not None:
            meta["shard"] = {"start": shard[0], "stop": shard[1]}
        return FeatureSet(features=arrays["features"], meta=meta, logits=arrays.get("logits"))

    features = _with_detector_record(_cached_features(settings, key, extract), detector)
    if str(path).lower().endswith(".zip"):  # how the ZIP was made (its recipe), read now: a cache hit carries it too
        from fidlens.data.zipbuild import read_zip_metadata

        made = read_zip_metadata(path)
        if made is not None:
            features.meta.setdefault("source", {})["made_by"] = made
    return features


def narrowed_source(source: ImageSource, start: int, stop: int) -> ImageSource:
    """Images [start, stop) of SOURCE's selection, as a source of their own (`ImageSource.shard`)."""
    return source.shard(start, stop)


def statistics_from_features(features: FeatureSet, covariance: Covariance | str = Covariance.UNBIASED) -> Statistics:
    """Statistics of a feature set, carrying what is needed to compare them later.

    The detector, its sha256, the covariance convention and the resize convention go into
    the metadata, so that `fid_between` can refuse to compare unlike statistics.
    """
    return Statistics.from_features(features.features, covariance=covariance, meta=statistics_meta(features.meta))


def statistics_meta(feature_meta: Mapping[str, Any]) -> dict:
    """The provenance statistics carry from their features' metadata (one place: merged shards use it too)."""
    keys = ("source_hash", "detector", "detector_sha256", "fidlens_version", "gpu_precision")
    meta = {k: feature_meta[k] for k in keys if k in feature_meta}
    meta["source"] = feature_meta.get("source", {})
    resize = known_convention(feature_meta, "resize")
    if resize is not None:
        meta["resize"] = resize
    return meta


def detector_meta(detector: Detector) -> dict:
    """The metadata a side computed now with DETECTOR will carry (for checks before extraction)."""
    return {"detector": detector.weights_name, "detector_sha256": detector.weights_sha256,
            "fidlens_version": __version__, "resize": detector.resize}


def _embedding_reader(detector_factory) -> Detector | None:
    """The detector itself when the factory names one that reads stored embeddings (built now: it is cheap)."""
    spec = getattr(detector_factory, "spec", None)
    if spec is None or reads_images(spec):
        return None
    return detector_factory()


def resolve_statistics(
    spec: str | os.PathLike,
    detector_factory,
    *,
    covariance: Covariance | str = Covariance.UNBIASED,
    max_images: int | None = None,
    settings: ExtractionSettings | None = None,
) -> Statistics:
    """A statistics ``.npz`` as it is, a feature ``.npz`` or a folder / ZIP turned into statistics.

    A statistics file is validated as it is read (`Statistics.load`); its own covariance
    convention stands (``covariance`` applies to features and images only).
    """
    if is_statistics_file(spec) and npz_kind(spec) == "statistics":
        return Statistics.load(spec)
    features = resolve_features(spec, detector_factory, max_images=max_images, settings=settings)
    return statistics_from_features(features, covariance)


def resolve_features(
    spec: str | os.PathLike,
    detector_factory,
    *,
    max_images: int | None = None,
    settings: ExtractionSettings | None = None,
) -> FeatureSet:
    """Features of a feature ``.npz`` or of a folder / ZIP; a statistics file is refused with the reason.

    With a detector that reads stored embeddings (``precomputed``), every side is read by it.
    """
    reader = _embedding_reader(detector_factory)
    if reader is not None:
        return reader.read(spec, max_images=max_images)
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
    return kernel_inception_distance(a.features, b.features, num_subsets=num_subsets, max_subset_size=max_subset_size,
                                     seed=seed)


@dataclass(frozen=True)
class GenerationSettings:
    """Which generated set: N images from one latent RandomState, with the sampling options."""

    num_images: int
    latent_seed: int = 0
    sampling: Sampling = DEFAULT_SAMPLING

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> GenerationSettings:
        """From the flat dict the workflow passes (num_images, latent_seed and the sampling keys)."""
        sampling = Sampling.from_mapping(values, ignore=("num_images", "latent_seed"))
        if "num_images" not in values:
            raise FidlensError("a generated set needs num_images")
        return cls(values["num_images"], values.get("latent_seed", 0), sampling)

    def record(self) -> dict[str, Any]:
        """The flat dict recorded in feature metadata and hashed into the cache key (unchanged layout)."""
        return {"num_images": self.num_images, "latent_seed": self.latent_seed, **self.sampling.as_dict()}


def compute_generated_features(
    generator_path: str | os.PathLike,
    detector: Detector,
    generation: GenerationSettings,
    *,
    which: str = "G_ema",
    settings: ExtractionSettings | None = None,
    shard: tuple[int, int] | None = None,
) -> FeatureSet:
    """Features of a generated set, cached by (generator file, sampling settings, detector).

    ``shard=(start, stop)`` generates only images [start, stop) of the set, from the same latent
    stream (`fidlens.generators.generate.latent_rows`), so the shards together are the set image
    for image; `meta["shard"]` keeps the whole set's source hash for the merge.
    """
    import json

    from fidlens.assets.store import file_sha256
    from fidlens.generators.generate import generated_features
    from fidlens.generators.load import load_generator

    settings = settings or ExtractionSettings()
    content = json.dumps({"generator": file_sha256(generator_path), "which": which, **generation.record()},
                         sort_keys=True)
    source_hash = hashlib.sha256(content.encode()).hexdigest()
    set_hash, first, count = source_hash, 0, generation.num_images
    if shard is not None:
        first, stop = shard
        if not 0 <= first < stop <= generation.num_images:
            raise FidlensError(f"shard [{first}, {stop}) lies outside the {generation.num_images} generated images")
        count = stop - first
        source_hash = hashlib.sha256(f"{set_hash}:shard:{first}:{stop}".encode()).hexdigest()
    key = feature_cache_key(source_hash, _cache_identity(detector), want_logits=detector.has_logits)

    def generate_and_extract() -> FeatureSet:
        G = load_generator(generator_path, which=which).to(detector.device)
        arrays = generated_features(G, detector, count, generation.latent_seed, first=first,
                                    batch_size=settings.batch_size, progress=settings.progress,
                                    want_logits=detector.has_logits, sampling=generation.sampling)
        description = {"kind": "generated", "generator": G.label, "path": str(generator_path), **generation.record()}
        meta = _feature_meta(detector, description, source_hash)
        meta["num_images"] = count
        if shard is not None:
            meta["shard"] = {"start": first, "stop": first + count, "set_source_hash": set_hash}
        return FeatureSet(features=arrays["features"], meta=meta, logits=arrays.get("logits"))

    return _with_detector_record(_cached_features(settings, key, generate_and_extract), detector)
