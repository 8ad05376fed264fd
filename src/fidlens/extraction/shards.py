"""Shards of one feature set merged back into the set: its features file and statistics.

Why: one Snakemake job per shard spreads a 70,000-image dataset or a 250,000-image generated pool
over many GPUs. The merge must leave nothing downstream able to tell: the features file has the
unsharded file's rows, logits and metadata, and the statistics come from the shards' float64
moments (`fidlens.metrics.moments`), equal to the one-shot statistics within ~1e-15 relative.
No torch here: the merge is a data job.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fidlens.core.errors import StatisticsError
from fidlens.data.datasets import DecodeLimits, open_image_source
from fidlens.extraction.pipeline import statistics_meta
from fidlens.metrics.covariance import Covariance
from fidlens.metrics.moments import Moments
from fidlens.metrics.stats import FeatureSet, Statistics

__all__ = ["check_shards", "generated_set_meta", "image_set_meta", "merge_features", "statistics_from_moments"]

# What every shard of one set must share (else they were not made by the same detector and settings).
_SHARED = ("detector", "detector_sha256", "fidlens_version", "gpu_precision", "resize", "detector_spec")


def check_shards(shards: Sequence[FeatureSet], moments: Sequence[Moments], num_images: int) -> None:
    """Refuse shards that do not tile [0, num_images) in order, disagree on the detector, or do not match their moments."""
    if not shards:
        raise StatisticsError("no shards to merge")
    if len(moments) != len(shards):
        raise StatisticsError(f"{len(shards)} shard feature files but {len(moments)} moments files")
    expected = 0
    first = shards[0].meta
    for i, (shard, part) in enumerate(zip(shards, moments)):
        rows = shard.meta.get("shard") or {}
        start, stop = rows.get("start"), rows.get("stop")
        if start != expected or stop is None or stop - start != shard.features.shape[0]:
            raise StatisticsError(f"shard {i} covers images [{start}, {stop}) with {shard.features.shape[0]} rows; "
                                  f"expected rows from {expected} on")
        if part.count != shard.features.shape[0]:
            raise StatisticsError(f"shard {i}: moments of {part.count} images beside {shard.features.shape[0]} features")
        for key in _SHARED:
            if shard.meta.get(key) != first.get(key):
                raise StatisticsError(f"shard {i} differs from shard 0 in {key}: {shard.meta.get(key)!r} "
                                      f"vs {first.get(key)!r}")
        if (shard.logits is None) != (shards[0].logits is None):
            raise StatisticsError(f"shard {i} {'lacks' if shard.logits is None else 'has'} logits, shard 0 does not")
        expected = stop
    if expected != num_images:
        raise StatisticsError(f"the shards cover {expected} images but the set has {num_images}; "
                              "the set changed since the plan counted it: run snakemake again")


def _without_shard(meta: Mapping[str, Any], **values: Any) -> dict[str, Any]:
    """Shard 0's metadata with the whole set's VALUES in place (key order kept: the file reads as unsharded)."""
    merged = {key: value for key, value in meta.items() if key != "shard"}
    for key, value in values.items():
        if key not in merged:
            raise StatisticsError(f"shard metadata has no '{key}'")
        merged[key] = value
    return merged


def image_set_meta(path: str | os.PathLike, shard_meta: Mapping[str, Any], *, max_images: int | None = None,
                   limits: DecodeLimits | None = None) -> tuple[dict[str, Any], int]:
    """(metadata of the whole image set as an unsharded extraction records it, its image count).

    Reads every selected image's bytes once for the content hash: the same pass the unsharded
    job makes before extraction, without decoding.
    """
    source = open_image_source(path, max_images=max_images, limits=limits)
    description = source.describe()
    made_by = (shard_meta.get("source") or {}).get("made_by")
    if made_by is not None:  # a built ZIP's recipe, which compute_features records for the set and each shard alike
        description["made_by"] = made_by
    meta = _without_shard(shard_meta, source=description, source_hash=source.content_hash(),
                          num_images=len(source), names_head=source.names[:3])
    return meta, len(source)


def generated_set_meta(shard_meta: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """(metadata of the whole generated set, its image count), from any shard's record of the set."""
    rows = shard_meta.get("shard") or {}
    if "set_source_hash" not in rows:
        raise StatisticsError("a generated shard must record its set's source hash (meta shard.set_source_hash)")
    count = int(shard_meta["source"]["num_images"])
    return _without_shard(shard_meta, source_hash=rows["set_source_hash"], num_images=count), count


def merge_features(shards: Sequence[FeatureSet], set_meta: Mapping[str, Any]) -> FeatureSet:
    """The shards' rows (and logits) in order, under the whole set's metadata."""
    features = np.concatenate([shard.features for shard in shards])
    logits = None if shards[0].logits is None else np.concatenate([shard.logits for shard in shards])
    return FeatureSet(features=features, meta=dict(set_meta), logits=logits)


def statistics_from_moments(moments: Sequence[Moments], set_meta: Mapping[str, Any],
                            covariance: Covariance | str = Covariance.UNBIASED) -> Statistics:
    """FID statistics of the set from its shards' merged moments, with the metadata
    `fidlens.extraction.pipeline.statistics_from_features` would give the merged features."""
    convention = Covariance.parse(covariance)
    merged = Moments.merge_all(moments)
    mu, sigma = merged.mean_and_covariance(convention)
    meta = statistics_meta(set_meta)
    meta.update(num_images=merged.count, covariance=convention.value)
    return Statistics(mu=mu, sigma=sigma, meta=meta)
