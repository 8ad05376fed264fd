"""Mergeable float64 moments of a feature set: count, mean and centred scatter matrix.

Why: a 70,000-image dataset or a 250,000-image pool is extracted in shards on many GPUs, and
the FID statistics must not depend on how it was cut. Each shard (and each batch inside it)
keeps its own mean and *centred* scatter ``Σ (f - mean)(f - mean)ᵀ``; two parts merge exactly
by the pairwise update of Chan, Golub and LeVeque (1979)::

    n = na + nb,  δ = mean_b - mean_a,
    mean = mean_a + δ · nb / n,   M = M_a + M_b + δ δᵀ · na · nb / n

which avoids the cancellation of ``Σ ffᵀ - n·mean meanᵀ`` (features with large means and small
spread). The covariance follows in either convention (`fidlens.metrics.covariance.Covariance`).
Merged shards agree with the two-pass `fidlens.metrics.frechet.mean_and_covariance` to ~1e-15.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from fidlens.core.atomic import atomic_path
from fidlens.core.errors import StatisticsError
from fidlens.core.npzread import inspect_npz, read_members
from fidlens.metrics.covariance import Covariance
from fidlens.metrics.frechet import FewSamplesWarning

__all__ = ["MOMENTS_FORMAT", "Moments", "relative_difference", "shard_ranges"]

MOMENTS_FORMAT = 1  # the ``format`` array of a moments ``.npz``
_BATCH = 8192  # rows turned into float64 at once (8192 × 2048 × 8 B = 128 MiB)
_MAX_MOMENTS_BYTES = 2 * 2**30  # a 16k-d scatter matrix; anything larger is not a feature space


@dataclass(frozen=True)
class Moments:
    """Count, mean (d,) and centred scatter (d, d) of ``count`` feature rows, all float64."""

    count: int
    mean: np.ndarray
    scatter: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    # --- building ---------------------------------------------------------------------------

    @classmethod
    def of_batch(cls, features: np.ndarray, *, what: str = "features") -> Moments:
        """The moments of one block of rows (N ≥ 1), computed centred in float64."""
        x = np.asarray(features)
        if x.ndim != 2:
            raise StatisticsError(f"{what} must be 2-D (N, d), got shape {x.shape}")
        if x.dtype.kind not in "fiu" or x.dtype == np.bool_:
            raise StatisticsError(f"{what} must hold real numbers, not {x.dtype}")
        n, d = x.shape
        if n == 0:
            raise StatisticsError(f"{what} is empty (0 rows): a shard must hold at least one image")
        if d == 0:
            raise StatisticsError(f"{what} has no feature dimensions (shape {x.shape})")
        block = x.astype(np.float64, copy=False)
        if not np.isfinite(block).all():
            bad = int(np.flatnonzero(~np.isfinite(block).all(axis=1))[0])
            raise StatisticsError(f"{what} contain NaN or infinite values (first in row {bad})")
        mean = block.mean(axis=0)
        centred = block - mean
        return cls(count=n, mean=mean, scatter=centred.T @ centred)

    @classmethod
    def of(cls, features: np.ndarray, *, batch_size: int = _BATCH, what: str = "features") -> Moments:
        """The moments of N × d features, built batch by batch and merged (float32 input stays float32 in memory)."""
        x = np.asarray(features)
        if batch_size < 1:
            raise StatisticsError(f"batch_size must be positive, got {batch_size}")
        if x.ndim != 2:
            raise StatisticsError(f"{what} must be 2-D (N, d), got shape {x.shape}")
        if x.shape[0] == 0:
            raise StatisticsError(f"{what} is empty (0 rows): a shard must hold at least one image")
        parts = []
        for start in range(0, x.shape[0], batch_size):
            rows = f"{what} rows {start}..{min(start + batch_size, x.shape[0]) - 1}"
            parts.append(cls.of_batch(x[start:start + batch_size], what=rows))
        return cls.merge_all(parts)

    # --- merging ----------------------------------------------------------------------------

    def merge(self, other: Moments) -> Moments:
        """The moments of both parts' rows together (exact up to float64 rounding)."""
        if not isinstance(other, Moments):
            raise StatisticsError(f"can only merge moments with moments, not {type(other).__name__}")
        if other.dim != self.dim:
            raise StatisticsError(f"cannot merge moments of different widths: d={self.dim} and d={other.dim}")
        n = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / n)
        scatter = self.scatter + other.scatter + np.outer(delta, delta) * (self.count * other.count / n)
        return Moments(count=n, mean=mean, scatter=scatter)

    @staticmethod
    def merge_all(parts: Iterable[Moments]) -> Moments:
        """Merge many parts pairwise (a balanced tree: rounding grows with log(parts), not parts)."""
        level = list(parts)
        if not level:
            raise StatisticsError("no moments to merge (zero shards)")
        while len(level) > 1:
            merged = [level[i].merge(level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                merged.append(level[-1])
            level = merged
        return level[0]

    # --- statistics -------------------------------------------------------------------------

    def covariance(self, convention: Covariance | str = Covariance.UNBIASED) -> np.ndarray:
        """The covariance (scatter / (N-1) or / N), symmetrised as `mean_and_covariance` does."""
        conv = Covariance.parse(convention)
        divisor = self.count - conv.ddof
        if divisor < 1:
            raise StatisticsError(f"a {conv} covariance needs at least {conv.ddof + 1} images, got {self.count}")
        sigma = self.scatter / divisor
        return 0.5 * (sigma + sigma.T)

    def mean_and_covariance(self, convention: Covariance | str = Covariance.UNBIASED) -> tuple[np.ndarray, np.ndarray]:
        """(mu, sigma) as `fidlens.metrics.frechet.mean_and_covariance` gives them for the same rows."""
        if self.count < 2:
            raise StatisticsError(f"a covariance needs at least 2 images, got {self.count}")
        if self.count < self.dim:
            warnings.warn(f"covariance is singular (N={self.count} < d={self.dim}); FID is defined but biased",
                          FewSamplesWarning, stacklevel=2)
        return self.mean.copy(), self.covariance(convention)

    # --- files ------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """A ``.npz`` of count, mean and scatter (float64), written atomically."""
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, format=np.array(MOMENTS_FORMAT), count=np.array(self.count, dtype=np.int64),
                     mean=self.mean.astype(np.float64), scatter=self.scatter.astype(np.float64))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Moments:
        """A moments file, its headers checked before anything large is read."""
        members = inspect_npz(path, "moments")
        missing = [key for key in ("format", "count", "mean", "scatter") if key not in members]
        if missing:
            raise StatisticsError(f"{path} is not a fidlens moments file (missing {', '.join(missing)})")
        data = read_members(path, [members[k] for k in ("format", "count", "mean", "scatter")], "moments",
                            max_bytes=_MAX_MOMENTS_BYTES)
        if int(data["format"]) != MOMENTS_FORMAT:
            raise StatisticsError(f"{path}: moments format {int(data['format'])}, this fidlens reads {MOMENTS_FORMAT}")
        mean, scatter, count = data["mean"], data["scatter"], int(data["count"])
        d = mean.shape[0] if mean.ndim == 1 else -1
        if d < 1 or scatter.shape != (d, d) or count < 1:
            raise StatisticsError(f"{path} is damaged: count {count}, mean {mean.shape}, scatter {scatter.shape}")
        if not (np.isfinite(mean).all() and np.isfinite(scatter).all()):
            raise StatisticsError(f"{path} holds NaN or infinite moments")
        return cls(count=count, mean=mean.astype(np.float64), scatter=scatter.astype(np.float64))


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """max|a - b| / max|b|: how the shard tests and the SLURM check compare statistics."""
    scale = float(np.max(np.abs(b))) or 1.0
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - b))) / scale


def shard_ranges(num_images: int, shard_size: int) -> Sequence[tuple[int, int]]:
    """[(0, S), (S, 2S), …, (kS, N)]: shard i covers images [i·S, (i+1)·S) of the set's order."""
    if num_images < 1 or shard_size < 1:
        raise StatisticsError(f"cannot shard {num_images} images into shards of {shard_size}")
    return [(start, min(start + shard_size, num_images)) for start in range(0, num_images, shard_size)]
