"""The workflow's FID∞ / KID∞ outputs: fid_vs_inverse_n.png, its per-N CSV and its fits as JSON.

Why here: one job fits every configured set against one reference (Chong & Forsyth 2020,
`fidlens.metrics.fid_infinity`) and draws them in one figure, a row per set; the CSV holds
every point (N, 1/N, value, fitted, residual) and the JSON the fits (intercept = FID∞, slope,
R², the N grid and the note when the grid was scaled down for a small set).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping
from typing import Any

from fidlens.core.atomic import atomic_path, write_text_atomic
from fidlens.core.errors import FidlensError
from fidlens.metrics.covariance import Covariance
from fidlens.metrics.fid_infinity import MIN_GRID_SIZE, Extrapolation, fid_infinity
from fidlens.metrics.stats import FeatureSet
from fidlens.studies.attribution_run import feature_space

__all__ = ["draw_sets", "extrapolate_sets", "points_csv_text", "summary_json", "too_small", "write_outputs"]


def extrapolate_sets(reference: str | os.PathLike, sets: Mapping[str, str | os.PathLike], *, points: int = 15,
                     seed: int = 0, covariance: str = "unbiased") -> tuple[dict[str, Extrapolation], str]:
    """FID∞ and KID∞ of each set against the reference's features; and the feature space they share."""
    ref = FeatureSet.load(reference)
    space = feature_space(ref.meta)
    unbiased = Covariance.parse(covariance).unbiased
    results = {}
    for label, path in sets.items():
        feats = FeatureSet.load(path)
        if feature_space(feats.meta) != space:
            raise FidlensError(f"{label}: features from {feature_space(feats.meta)}, the reference's from {space}")
        results[label] = fid_infinity(ref.features, feats.features, points=points, seed=seed, kid=True,
                                      unbiased=unbiased)
    return results, space


def too_small(sets: Mapping[str, str | os.PathLike]) -> dict[str, str]:
    """label → why FID∞ is not computed, for the sets below the smallest grid (say so, rather than fail the run)."""
    skipped = {}
    for label, path in sets.items():
        n = FeatureSet.load(path).features.shape[0]
        if n < 2 * MIN_GRID_SIZE:
            skipped[label] = (f"{label}: {n} images, fewer than the {2 * MIN_GRID_SIZE} FID∞ needs "
                              f"(subsets of {MIN_GRID_SIZE} or more); not extrapolated")
    return skipped


def points_csv_text(results: Mapping[str, Extrapolation]) -> str:
    """set, metric, n, inverse_n, value, fitted, residual: every point of every fit."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["set", "metric", "n", "inverse_n", "value", "fitted", "residual"])
    for label, result in results.items():
        for fit in (result.fid, result.kid):
            if fit is None:
                continue
            for n, value, residual in zip(fit.sizes, fit.values, fit.residuals):
                writer.writerow([label, fit.metric, int(n), repr(1.0 / float(n)), repr(float(value)),
                                 repr(float(value - residual)), repr(float(residual))])
    return buffer.getvalue()


def _plain(value: Any) -> Any:
    """JSON-ready: arrays as lists, NaN (an R² of a flat line) as null."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def summary_json(results: Mapping[str, Extrapolation], *, reference: str, space: str, covariance: str,
                 skipped: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Per set: FID∞, KID∞, the fits (slope, R², residuals, sizes) and any note (e.g. the scaled-down grid)."""
    return {"reference": reference, "feature_space": space, "covariance": covariance, "skipped": dict(skipped or {}),
            "method": "Chong & Forsyth 2020: value at N on seeded random subsets of N generated images (without "
                      "replacement, the reference whole), least squares on 1/N, intercept = value at N = infinity",
            "sets": {label: _plain(result.as_dict()) for label, result in results.items()}}


def draw_sets(results: Mapping[str, Extrapolation], *, space: str, skipped: Mapping[str, str] | None = None):
    """One row per set: FID (and KID × 1000) against 1/N with the fitted line and its intercept."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from fidlens.metrics.fid_infinity import draw_panel

    if not results:
        fig = Figure(figsize=(7.0, 2.0))
        fig.text(0.5, 0.5, "FID∞ not computed:\n" + "\n".join((skipped or {}).values() or ["no set configured"]),
                 ha="center", va="center", fontsize=8, wrap=True)
        return fig
    columns = 2 if any(r.kid is not None for r in results.values()) else 1
    fig = Figure(figsize=(5.2 * columns, 3.6 * len(results) + 0.5))
    axes = fig.subplots(len(results), columns, squeeze=False)
    for row, (label, result) in enumerate(results.items()):
        panels = [(result.fid, 1.0, "")] + ([(result.kid, 1000.0, " × 1000")] if result.kid is not None else [])
        for col, (fit, scale, unit) in enumerate(panels):
            draw_panel(axes[row][col], fit, scale, unit)
            axes[row][col].set_title(f"{label} (N = {result.n_generated})", fontsize=9)
    notes = sorted({note for result in results.values() for note in result.notes} | set((skipped or {}).values()))
    fig.suptitle(f"Bias removed (Chong & Forsyth 2020): value at N vs 1/N, {space}", fontsize=9)
    if notes:
        fig.text(0.5, 0.005, "\n".join(notes), ha="center", va="bottom", fontsize=6, wrap=True)
        fig.tight_layout(rect=(0, 0.03 + 0.015 * len(notes), 1, 1))
    else:
        fig.tight_layout()
    return fig


def write_outputs(results: Mapping[str, Extrapolation], outputs: Mapping[str, str], *, reference: str, space: str,
                  covariance: str, skipped: Mapping[str, str] | None = None) -> None:
    """Figure, CSV and JSON, each written atomically after all three were computed."""
    figure = draw_sets(results, space=space, skipped=skipped)
    text = points_csv_text(results)
    summary = json.dumps(summary_json(results, reference=reference, space=space, covariance=covariance,
                                      skipped=skipped), indent=1, allow_nan=False) + "\n"
    with atomic_path(outputs["figure"]) as tmp:
        figure.savefig(tmp, dpi=110, format="png")
    write_text_atomic(outputs["points"], text)
    write_text_atomic(outputs["fits"], summary)
