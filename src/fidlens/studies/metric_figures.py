"""A picture of the two per-set tables (fid_ci.csv, prdc.csv) for the README: error bars and PRDC bars.

Why a figure: the README shows one image per method; the tables themselves stay the record
(this draws only what they hold, read back from the CSV files).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

__all__ = ["draw_ci_and_prdc"]


def _rows(path: str | os.PathLike) -> list[dict[str, str]]:
    with Path(path).open(newline="") as handle:
        return list(csv.DictReader(handle))


def draw_ci_and_prdc(fid_ci_csv: str | os.PathLike, prdc_csv: str | os.PathLike):
    """Left: FID per set with its bootstrap interval; right: precision, recall, density, coverage per set."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    ci, pr = _rows(fid_ci_csv), _rows(prdc_csv)
    fig = Figure(figsize=(10.5, 3.9))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.5]})
    fid = np.array([float(r["fid"]) for r in ci])
    low = np.array([float(r["fid_low"]) for r in ci])
    high = np.array([float(r["fid_high"]) for r in ci])
    y = np.arange(len(ci))
    left.errorbar(fid, y, xerr=[fid - low, high - fid], fmt="o", color="C0", capsize=4)
    for yi, (f, lo, hi) in enumerate(zip(fid, low, high)):
        left.annotate(f"{f:.1f} [{lo:.1f}, {hi:.1f}]", (f, yi), textcoords="offset points", xytext=(0, 7),
                      ha="center", fontsize=7)
    left.set_yticks(y, [r["set"] for r in ci], fontsize=8)
    left.set_ylim(-0.6, len(ci) - 0.4)
    left.invert_yaxis()
    first = ci[0]
    left.set_xlabel(f"FID with {100 * float(first['level']):.0f} % {first['interval']} bootstrap interval "
                    f"(B = {first['resamples']})", fontsize=8)
    left.grid(axis="x", alpha=0.3)
    metrics = ("precision", "recall", "density", "coverage")
    width = 0.8 / len(metrics)
    x = np.arange(len(pr))
    for k, metric in enumerate(metrics):
        values = [float(r[metric]) for r in pr]
        bars = right.bar(x + (k - 1.5) * width, values, width, label=metric, color=f"C{k}")
        right.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=6, rotation=90, padding=2)
    right.set_xticks(x, [r["set"] for r in pr], fontsize=8)
    right.set_ylim(0, max(1.05, max(float(r["density"]) for r in pr) * 1.1))
    right.legend(fontsize=7, ncol=4, loc="upper right")
    space = pr[0]["feature_space"]
    right.set_title(f"k = {pr[0]['k_precision_recall']} / {pr[0]['k_density_coverage']}, {space}: not comparable "
                    "with published (VGG16/DINOv2) values", fontsize=8)
    left.set_title(f"error bars ({ci[0]['feature_space']})", fontsize=8)
    fig.tight_layout()
    return fig
