"""Feature arrays and FID statistics on disk, keyed by content.

Statistics files are ``.npz`` with ``mu`` and ``sigma`` (float64), the keys pytorch-fid
reads, plus metadata as plain string/int arrays (no pickles): number of images, the
detector's sha256, the covariance convention and the source's content hash.

The feature cache is addressed by a hash of (source content, selection, detector),
so a changed dataset or different weights can never reuse a stale array.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fidlens import __version__
from fidlens.core.atomic import atomic_path
from fidlens.core.errors import StatisticsError
from fidlens.metrics.covariance import Covariance
from fidlens.metrics.frechet import check_statistics, check_statistics_layout, mean_and_covariance
from fidlens.core.npzread import inspect_npz, read_members

# Largest feature array read from a .npz (16 GiB: two million 2048-d float32 features).
MAX_FEATURE_BYTES = 16 * 2**30
_MAX_META_BYTES = 16 * 2**20
_FEATURE_FORMAT = 1


def _save_npz(path: str | os.PathLike, arrays: dict[str, Any]) -> None:
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)


def _load_npz(path: str | os.PathLike, what: str) -> dict[str, np.ndarray]:
    """Every array of a ``.npz``, checked from the headers first (see `fidlens.core.npzread`)."""
    members = inspect_npz(path, what)
    return read_members(path, members.values(), what, max_bytes=MAX_FEATURE_BYTES)


def _meta_array(value: Any) -> np.ndarray:
    """Metadata as a 0-d array np.load can read without pickles: numbers stay numbers, the rest text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return np.array(value)
    if isinstance(value, (dict, list)):
        return np.array(json.dumps(value))
    return np.array(str(value))


@dataclass(init=False)
class FeatureSet:
    """Features of one image set (any detector's: ``features``, N × d) with what is needed to trust them later.

    Files hold the arrays ``features`` and ``meta`` (and ``logits``); files written before the
    detector registry call the features ``pool3`` and still load. ``pool3`` stays as a read
    alias (and a constructor keyword) while callers move to ``features``.
    """

    features: np.ndarray
    meta: dict[str, Any]
    logits: np.ndarray | None = None

    def __init__(self, features: np.ndarray | None = None, meta: dict[str, Any] | None = None,
                 logits: np.ndarray | None = None, *, pool3: np.ndarray | None = None):
        if (features is None) == (pool3 is None):
            raise TypeError("FeatureSet takes the feature array once: features=... (pool3=... is its old name)")
        self.features = features if features is not None else pool3
        self.meta = {} if meta is None else meta
        self.logits = logits

    @property
    def pool3(self) -> np.ndarray:
        """The old name of `features` (Inception's pool3 layer), kept for reading."""
        return self.features

    def save(self, path: str | os.PathLike) -> None:
        arrays: dict[str, Any] = {"features": self.features.astype(np.float32), "meta": np.array(json.dumps(self.meta))}
        if self.logits is not None:
            arrays["logits"] = self.logits.astype(np.float32)
        _save_npz(path, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureSet:
        data = _load_npz(path, "feature")
        key = next((k for k in ("features", "pool3") if k in data), None)
        if key is None or "meta" not in data:
            raise StatisticsError(f"{path} is not a fidlens feature file (no 'features'/'meta' arrays)")
        meta = json.loads(str(data["meta"]))
        features = data[key]
        if features.ndim != 2 or features.shape[0] != meta.get("num_images"):
            raise StatisticsError(f"{path} is damaged: {features.shape} features for {meta.get('num_images')} images")
        return cls(features=features, meta=meta, logits=data.get("logits"))


@dataclass
class Statistics:
    """FID statistics (float64) and their provenance."""

    mu: np.ndarray
    sigma: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_features(cls, features: np.ndarray, *, covariance: Covariance | str = Covariance.UNBIASED,
                      meta: dict | None = None) -> Statistics:
        convention = Covariance.parse(covariance)
        mu, sigma = mean_and_covariance(features, unbiased=convention.unbiased)
        info = dict(meta or {})
        info.update(num_images=int(features.shape[0]), covariance=convention.value)  # the plain string, as always
        return cls(mu=mu, sigma=sigma, meta=info)

    @property
    def num_images(self) -> int:
        return int(self.meta.get("num_images", -1))

    def save(self, path: str | os.PathLike) -> None:
        arrays: dict[str, Any] = {"mu": self.mu.astype(np.float64), "sigma": self.sigma.astype(np.float64)}
        arrays.update({key: _meta_array(value) for key, value in self.meta.items()})
        _save_npz(path, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Statistics:
        """Read a statistics ``.npz`` (fidlens or pytorch-fid), refusing anything that is not one.

        Shapes and dtypes are checked from the file's headers before loading (no huge
        allocation, no pickles), then values with `check_statistics` (finite, real,
        symmetric up to rounding). Whether sigma is PSD is checked where FID uses it.
        """
        members = inspect_npz(path, "statistics")
        if "mu" not in members or "sigma" not in members:
            raise StatisticsError(
                f"{path} has no 'mu'/'sigma' arrays; is it a statistics file? (it holds: {', '.join(members)})"
            )
        mu_h, sigma_h = members["mu"], members["sigma"]
        check_statistics_layout(mu_h.shape, mu_h.dtype, sigma_h.shape, sigma_h.dtype, str(path))
        wanted = [mu_h, sigma_h]
        for key, member in members.items():
            if key in ("mu", "sigma"):
                continue
            if member.holds_objects or member.nbytes > _MAX_META_BYTES:
                why = "pickled objects" if member.holds_objects else "too large"
                warnings.warn(f"{path}: ignoring metadata '{key}' ({why})", stacklevel=2)
                continue
            wanted.append(member)
        data = read_members(path, wanted, "statistics")
        check_statistics(data["mu"], data["sigma"], str(path))
        mu, sigma = data.pop("mu").astype(np.float64), data.pop("sigma").astype(np.float64)
        meta: dict[str, Any] = {}
        for key, value in data.items():
            item = value.item() if value.ndim == 0 else value.tolist()
            if isinstance(item, str) and item[:1] in "{[":
                with contextlib.suppress(json.JSONDecodeError):
                    item = json.loads(item)
            meta[key] = item
        meta.setdefault("covariance", "unbiased (assumed: file has no 'covariance' key)")
        return cls(mu=mu, sigma=sigma, meta=meta)


def feature_cache_key(source_hash: str, detector_sha256: str | None, *, want_logits: bool) -> str:
    fields = {"source": source_hash, "detector": detector_sha256, "logits": want_logits, "format": _FEATURE_FORMAT}
    from fidlens.core import precision  # imports torch: only where features are computed, not to read statistics

    if precision.configured()["tf32"]:  # TF32 features never answer an exact run (exact keys stay as they were)
        fields["gpu_precision"] = "tf32"
    payload = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


class FeatureCache:
    """A directory of feature files named by :func:`feature_cache_key`.

    Each entry carries a sha256 of its key, metadata and arrays (`fidlens.core.feature_cache`); an
    entry that fails any check on read is moved to ``quarantine/`` with a `FeatureCacheWarning`
    naming it and the reason, and `get` reports a miss so the features are recomputed.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path_for(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def get(self, key: str) -> FeatureSet | None:
        """The verified features stored under `key`, or None (missing or set aside as damaged)."""
        from fidlens.core.feature_cache import read_verified

        entry = read_verified(self.path_for(key), key)
        if entry is None:
            return None
        features, meta, logits = entry
        return FeatureSet(features=features, meta=meta, logits=logits)

    def put(self, key: str, features: FeatureSet) -> Path:
        """Store `features` under `key`, atomically and with its checksum."""
        from fidlens.core.feature_cache import write_entry

        path = self.path_for(key)
        write_entry(path, key, features.features, features.meta, features.logits)
        return path


def provenance(source_description: dict, source_hash: str, detector_name: str, detector_sha256: str | None) -> dict:
    from fidlens.core import precision

    return {
        "source": source_description,
        "source_hash": source_hash,
        "detector": detector_name,
        "detector_sha256": detector_sha256,
        "fidlens_version": __version__,
        "gpu_precision": precision.configured(),  # TF32 / cuDNN autotuning used on a GPU (fidlens.core.precision)
    }
