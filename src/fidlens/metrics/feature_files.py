"""Per-image feature arrays from a user's ``.npz``: fidlens feature files and plain arrays.

KID needs features, not statistics, and ``fid`` can fit statistics to features with the
covariance convention the user asks for. A fidlens feature file (``features`` + ``meta``, as
`FeatureSet.save` writes it; ``pool3`` + ``meta`` before the detector registry) keeps its
provenance; a plain array (``features``, ``pool3``, ``feats``, ``arr_0``, or the only 2-D
array, as ``np.savez`` users write them, with ``logits`` beside it if any) has no recorded
detector. A statistics file (``mu``/``sigma`` only) is refused with the reason.
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

__all__ = ["FEATURE_KEYS", "check_feature_layout", "has_features", "read_feature_file"]

FEATURE_KEYS = ("features", "pool3", "feats", "arr_0")
FIDLENS_FEATURE_KEYS = ("features", "pool3")  # with 'meta': a file FeatureSet.save wrote (pool3: before the rename)


def _feature_member(members: dict[str, Member]) -> Member | None:
    for key in FEATURE_KEYS:
        if key in members:
            return members[key]
    two_d = [m for m in members.values()
             if len(m.shape) == 2 and m.dtype.kind in "fiu" and m.name not in ("sigma", "logits")]
    return two_d[0] if len(two_d) == 1 else None


def has_features(members: dict[str, Member]) -> bool:
    """Whether an archive (from `inspect_npz`) holds a per-image feature array."""
    return _feature_member(members) is not None


def check_feature_layout(path: str | os.PathLike, name: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Refuse, from the header alone, an array that cannot be per-image features (N ≥ 2 rows of 1..MAX_DIM reals)."""
    if dtype.kind not in "fiu":
        raise StatisticsError(f"{path}: features '{name}' must be real numbers, got dtype {dtype}")
    if len(shape) != 2:
        raise StatisticsError(f"{path}: features '{name}' must be 2-D (N, d), got shape {shape}")
    n, d = shape
    if not 1 <= d <= MAX_DIM:
        raise StatisticsError(f"{path}: features '{name}' have d={d}; fidlens accepts 1 to {MAX_DIM}")
    if n < 2:
        raise StatisticsError(f"{path}: features '{name}' hold {n} sample(s); at least 2 are needed")


def _check_layout(path: Path, member: Member) -> None:
    check_feature_layout(path, member.name, member.shape, member.dtype)


def _plain_logits(path: Path, members: dict[str, Member], rows: int) -> np.ndarray | None:
    """A plain archive's ``logits`` array, when it has one row per feature row."""
    member = members.get("logits")
    if member is None:
        return None
    if member.dtype.kind not in "fiu" or len(member.shape) != 2 or member.shape[0] != rows:
        raise StatisticsError(f"{path}: 'logits' must be a real (N, k) array with one row per feature row "
                              f"({rows}), got shape {member.shape} and dtype {member.dtype}")
    logits = read_members(path, [member], "feature", max_bytes=MAX_FEATURE_BYTES)["logits"]
    if not np.isfinite(logits).all():
        raise StatisticsError(f"{path}: logits contain NaN or infinite values")
    return logits


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
    if member.name in FIDLENS_FEATURE_KEYS and "meta" in members:
        try:
            features = FeatureSet.load(path)
        except (json.JSONDecodeError, TypeError, AttributeError) as exc:
            raise StatisticsError(f"{path}: damaged feature metadata ({exc})") from None
    else:
        array = read_members(path, [member], "feature", max_bytes=MAX_FEATURE_BYTES)[member.name]
        meta = {"num_images": int(array.shape[0]), "source": {"kind": "feature file", "path": str(path)}}
        features = FeatureSet(features=array, meta=meta, logits=_plain_logits(path, members, int(array.shape[0])))
    if not np.isfinite(features.features).all():
        raise StatisticsError(f"{path}: features contain NaN or infinite values")
    if max_images is not None and max_images < len(features.features):
        meta = dict(features.meta, num_images=max_images)
        logits = features.logits[:max_images] if features.logits is not None else None
        features = FeatureSet(features=features.features[:max_images], meta=meta, logits=logits)
    return features
