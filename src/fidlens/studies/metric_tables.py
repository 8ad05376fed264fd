"""The workflow's tables of bootstrap intervals (fid_ci.csv) and precision/recall/density/coverage (prdc.csv).

Why here and not in the scripts: the rows are what tests check against the metric modules,
and one job writes one table for every configured set (a job per set would cost more in
start-up than in numpy). Each row names its feature space; the PRDC table also carries the
note that Inception-space values are not comparable with published VGG16/DINOv2 numbers.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from typing import Any

from fidlens.core.atomic import write_text_atomic
from fidlens.core.errors import FidlensError
from fidlens.metrics.bootstrap import bootstrap_fid_sets, bootstrap_kid
from fidlens.metrics.covariance import Covariance
from fidlens.metrics.prdc import prdc
from fidlens.metrics.stats import FeatureSet
from fidlens.studies.attribution_run import feature_space

__all__ = ["fid_ci_rows", "prdc_rows", "rows_csv_text", "write_rows"]


def _space(reference: FeatureSet, features: FeatureSet, label: str) -> str:
    ref, gen = feature_space(reference.meta), feature_space(features.meta)
    if ref != gen:
        raise FidlensError(f"{label}: features from {gen}, the reference's from {ref}: not comparable")
    return gen


def fid_ci_rows(reference: str | os.PathLike, sets: Mapping[str, str | os.PathLike], *, level: float = 0.95,
                resamples: int = 200, seed: int = 0, method: str = "bias-corrected",
                resample_reference: bool = False, covariance: str = "unbiased") -> list[dict[str, Any]]:
    """One row per set: FID and KID×1000 with their bootstrap intervals (the same resamples for both)."""
    ref = FeatureSet.load(reference)
    unbiased = Covariance.parse(covariance).unbiased
    feats = {label: FeatureSet.load(path) for label, path in sets.items()}
    spaces = {label: _space(ref, item, label) for label, item in feats.items()}
    common = {"resample_reference": resample_reference, "resamples": resamples, "level": level, "seed": seed,
              "method": method}
    fids = bootstrap_fid_sets(ref.features, [item.features for item in feats.values()], unbiased=unbiased, **common)
    rows = []
    for (label, item), fid in zip(feats.items(), fids):
        kid = bootstrap_kid(ref.features, item.features, **common)
        rows.append({
            "set": label, "n_images": int(item.features.shape[0]), "n_reference": int(ref.features.shape[0]),
            "fid": fid.estimate, "fid_low": fid.low, "fid_high": fid.high, "fid_bias": fid.bias,
            "fid_percentile_low": fid.percentile_low, "fid_percentile_high": fid.percentile_high,
            "kid_x1000": 1000 * kid.estimate, "kid_low_x1000": 1000 * kid.low, "kid_high_x1000": 1000 * kid.high,
            "level": level, "interval": method, "resamples": resamples, "seed": seed,
            "resampled": "+".join(fid.resampled), "covariance": Covariance.parse(covariance).value,
            "feature_space": spaces[label],
        })
    return rows


def prdc_rows(reference: str | os.PathLike, sets: Mapping[str, str | os.PathLike], *, k_pr: int = 3,
              k_dc: int = 5) -> list[dict[str, Any]]:
    """One row per set: precision, recall (k_pr), density, coverage (k_dc), its feature space and the note."""
    ref = FeatureSet.load(reference)
    rows = []
    for label, path in sets.items():
        feats = FeatureSet.load(path)
        result = prdc(ref.features, feats.features, k_pr=k_pr, k_dc=k_dc, feature_space=_space(ref, feats, label))
        rows.append({"set": label, **{key: value for key, value in result.as_dict().items()}})
    return rows


def rows_csv_text(rows: list[dict[str, Any]]) -> str:
    """CSV with a header from the first row; floats with round-trip precision."""
    if not rows:
        raise FidlensError("no rows to write: the config names no set")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: repr(v) if isinstance(v, float) else v for k, v in row.items()} for row in rows)
    return buffer.getvalue()


def write_rows(rows: list[dict[str, Any]], path: str | os.PathLike) -> None:
    write_text_atomic(path, rows_csv_text(rows))
