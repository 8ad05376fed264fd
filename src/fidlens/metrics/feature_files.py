"""Per-image feature arrays from a user's ``.npz``: fidlens feature files and plain arrays.

KID needs features, not statistics, and ``fid`` can fit statistics to features with the
covariance convention the user asks for. A fidlens feature file (``pool3`` + ``meta``, as
`FeatureSet.save` writes it) keeps its provenance; a plain array (``features``, ``feats``,
``pool3``, ``arr_0``, or the only 2-D array, as ``np.savez`` users write them) has no
recorded detector. A statistics file (``mu``/``sigma`` only) is refused with the reason.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from fidlens.core.errors import StatisticsError
from fidlens.metrics.frechet import MAX_DIM
from fidlens.core.npzread import Member, inspect_npz, read_members
from fidlens.metrics.stats import MAX_FEATURE_BYTES, FeatureSet

__all__ = ["FEATURE_KEYS", "has_features", "read_feature_file"]

FEATURE_KEYS = ("pool3", "features", "feats", "arr_0")


def _feature_member(members: dict[str, Member]) -> Member | None:
    for key in FEATURE_KEYS:
        if key in members:
            return members[key]
    two_d = [m for m in members.values() if len(m.shape) == 2 and m.dtype.kind in "fiu" and m.name != "sigma"]
    return two_d[0] if len(two_d) == 1 else None


def has_features(members: dict[str, Member]) -> bool:
    """Whether an archive (from `inspect_npz`) holds a per-image feature array."""
    return _feature_member(members) is not None


def _check_layout(path: Path, member: Member) -> None:
    if member.dtype.kind not in "fiu":
        raise StatisticsError(f"{path}: features '{member.name}' must be real numbers, got dtype {member.dtype}")
    if len(member.shape) != 2:
        raise StatisticsError(f"{path}: features '{member.name}' must be 2-D (N, d), got shape {member.shape}")
    n, d = member.shape
    if not 1 <= d <= MAX_DIM:
        raise StatisticsError(f"{path}: features '{member.name}' have d={d}; fidlens accepts 1 to {MAX_DIM}")
    if n < 2:
        raise StatisticsError(f"{path}: features '{member.name}' hold {n} sample(s); at least 2 are needed")


def read_feature_file(path: str | os.PathLike, max_images: int | None = None) -> FeatureSet:
    """Features (N, d) from a ``.npz``, with provenance when it is a fidlens feature file.

    MAX_IMAGES keeps the first rows, as ``--max-images`` keeps the first images of a folder.
    """
    path = Path(path)
    members = inspect_npz(path, "feature")
    member = _feature_member(members)
    if member is None:
        if "mu" in members and "sigma" in members:
            raise StatisticsError(
                f"{path} is a statistics file (mu/sigma only), not per-image features, which KID (and new "
                "statistics) need; give the image folder or ZIP, or a feature .npz"
            )
        raise StatisticsError(
            f"{path} has no feature array (looked for {', '.join(FEATURE_KEYS)} or a single 2-D array; "
            f"it holds: {', '.join(members)})"
        )
    _check_layout(path, member)
    if member.name == "pool3" and "meta" in members:
        try:
            features = FeatureSet.load(path)
        except (json.JSONDecodeError, TypeError, AttributeError) as exc:
            raise StatisticsError(f"{path}: damaged feature metadata ({exc})") from None
    else:
        array = read_members(path, [member], "feature", max_bytes=MAX_FEATURE_BYTES)[member.name]
        meta = {"num_images": int(array.shape[0]), "source": {"kind": "feature file", "path": str(path)}}
        features = FeatureSet(pool3=array, meta=meta)
    if not np.isfinite(features.pool3).all():
        raise StatisticsError(f"{path}: features contain NaN or infinite values")
    if max_images is not None and max_images < len(features.pool3):
        meta = dict(features.meta, num_images=max_images)
        features = FeatureSet(pool3=features.pool3[:max_images], meta=meta)
    return features
