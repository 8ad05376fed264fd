"""Feature-cache entries: exact round trip, sealed by a checksum, safe under concurrent use."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

from fidlens.core.errors import StatisticsError
from fidlens.core.feature_cache import FeatureCacheWarning
from fidlens.extraction.pipeline import ExtractionSettings, _cached_features
from fidlens.metrics.stats import FeatureCache, FeatureSet


def features(seed: int, rows: int = 6, logits: bool = True) -> FeatureSet:
    rng = np.random.default_rng(seed)
    return FeatureSet(pool3=rng.normal(size=(rows, 2048)).astype(np.float32),
                      meta={"num_images": rows, "source_hash": f"s{seed}", "names_head": ["a.png"]},
                      logits=rng.normal(size=(rows, 1008)).astype(np.float32) if logits else None)


def test_round_trip_is_exact_and_silent(tmp_path):
    cache = FeatureCache(tmp_path)
    stored = features(1)
    cache.put("k1", stored)
    cache.put("k2", features(2, logits=False))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got, other = cache.get("k1"), cache.get("k2")
    np.testing.assert_array_equal(got.pool3, stored.pool3)
    np.testing.assert_array_equal(got.logits, stored.logits)
    assert got.meta == stored.meta and other.logits is None
    assert cache.get("absent") is None
    assert FeatureCache(tmp_path / "missing" / "dir").get("k1") is None


def test_non_finite_features_are_not_cached(tmp_path):
    bad = features(3)
    bad.pool3[2, 7] = np.inf
    with pytest.raises(StatisticsError, match="non-finite"):
        FeatureCache(tmp_path).put("k", bad)
    assert not list(tmp_path.iterdir())


def test_concurrent_writers_and_readers_never_see_a_damaged_entry(tmp_path):
    cache = FeatureCache(tmp_path)
    versions = [features(seed, rows=4) for seed in range(4)]
    cache.put("shared", versions[0])
    problems: list[str] = []

    def write(k: int) -> None:
        for _ in range(15):
            cache.put("shared", versions[k])

    def read() -> None:
        for _ in range(30):
            got = cache.get("shared")
            if got is None or not any(np.array_equal(got.pool3, v.pool3) for v in versions):
                problems.append("a reader got a miss or a mixed entry")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
        threads += [threading.Thread(target=read) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not problems and not [w for w in caught if issubclass(w.category, FeatureCacheWarning)]
    assert not (tmp_path / "quarantine").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.npz"]  # no temp file left


def test_an_unwritable_cache_costs_only_the_caching(tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    computed = features(5)
    settings = ExtractionSettings(progress=False, cache=blocker)
    with pytest.warns(FeatureCacheWarning, match=r"could not store features in the cache at .*cache"):
        got = _cached_features(settings, "k", lambda: computed)
    assert got is computed and blocker.read_text().startswith("a file")
