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
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .atomic import atomic_path
from .errors import StatisticsError
from .frechet import mean_and_covariance

COVARIANCE_CONVENTIONS = ("unbiased", "population")
_FEATURE_FORMAT = 1


def _save_npz(path: str | os.PathLike, arrays: dict[str, Any]) -> None:
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)


def _load_npz(path: str | os.PathLike, what: str) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise StatisticsError(f"{what} file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise StatisticsError(f"{path} is not a readable {what} file ({exc}); delete it to recompute") from exc


def _meta_array(value: Any) -> np.ndarray:
    """Metadata as a 0-d array np.load can read without pickles: numbers stay numbers, the rest text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return np.array(value)
    if isinstance(value, (dict, list)):
        return np.array(json.dumps(value))
    return np.array(str(value))


@dataclass
class FeatureSet:
    """Features of one image set with what is needed to trust them later."""

    pool3: np.ndarray
    meta: dict[str, Any]
    logits: np.ndarray | None = None

    def save(self, path: str | os.PathLike) -> None:
        arrays: dict[str, Any] = {"pool3": self.pool3.astype(np.float32), "meta": np.array(json.dumps(self.meta))}
        if self.logits is not None:
            arrays["logits"] = self.logits.astype(np.float32)
        _save_npz(path, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureSet:
        data = _load_npz(path, "feature")
        if "pool3" not in data or "meta" not in data:
            raise StatisticsError(f"{path} is not a fidlens feature file (no 'pool3'/'meta' arrays)")
        meta = json.loads(str(data["meta"]))
        pool3 = data["pool3"]
        if pool3.ndim != 2 or pool3.shape[0] != meta.get("num_images"):
            raise StatisticsError(f"{path} is damaged: {pool3.shape} features for {meta.get('num_images')} images")
        return cls(pool3=pool3, meta=meta, logits=data.get("logits"))


@dataclass
class Statistics:
    """FID statistics (float64) and their provenance."""

    mu: np.ndarray
    sigma: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_features(cls, features: np.ndarray, *, covariance: str = "unbiased", meta: dict | None = None) -> Statistics:
        if covariance not in COVARIANCE_CONVENTIONS:
            raise StatisticsError(f"covariance must be one of {COVARIANCE_CONVENTIONS}, not '{covariance}'")
        mu, sigma = mean_and_covariance(features, unbiased=covariance == "unbiased")
        info = dict(meta or {})
        info.update(num_images=int(features.shape[0]), covariance=covariance)
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
        data = _load_npz(path, "statistics")
        if "mu" not in data or "sigma" not in data:
            raise StatisticsError(f"{path} has no 'mu'/'sigma' arrays; is it a statistics file?")
        mu, sigma = data.pop("mu").astype(np.float64), data.pop("sigma").astype(np.float64)
        if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
            raise StatisticsError(f"{path}: mu {mu.shape} and sigma {sigma.shape} do not fit together")
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
    payload = json.dumps(
        {"source": source_hash, "detector": detector_sha256, "logits": want_logits, "format": _FEATURE_FORMAT},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


class FeatureCache:
    """A directory of feature files named by :func:`feature_cache_key`."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path_for(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def get(self, key: str) -> FeatureSet | None:
        path = self.path_for(key)
        if not path.is_file():
            return None
        try:
            return FeatureSet.load(path)
        except StatisticsError:
            path.unlink(missing_ok=True)  # a damaged entry is recomputed, not trusted
            return None

    def put(self, key: str, features: FeatureSet) -> Path:
        path = self.path_for(key)
        features.save(path)
        return path


def provenance(source_description: dict, source_hash: str, detector_name: str, detector_sha256: str | None) -> dict:
    return {
        "source": source_description,
        "source_hash": source_hash,
        "detector": detector_name,
        "detector_sha256": detector_sha256,
        "fidlens_version": __version__,
    }
