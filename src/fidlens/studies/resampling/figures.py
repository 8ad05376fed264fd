"""Pictures of a resampling run: metric curves, the class histogram, and image grids by weight.

The curves' numbers are the run's ``log.csv``; each image grid gets a CSV beside it saying which
candidate sits in which tile, with its set, weight, probability and weight rank.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fidlens.core.atomic import atomic_path
from fidlens.core.rawdata import write_csv
from fidlens.studies.resampling.control import CLIP_SPACE, ControlSpace
from fidlens.studies.resampling.inputs import RunInputs
from fidlens.studies.resampling.optimizer import draw_indices


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    _pyplot().close(fig)


METRICS = [("fid", "FID"), ("clip_fid", "CLIP-FID"), ("kid_x1000", "KID × 1000")]


def metrics_of(control: ControlSpace = CLIP_SPACE) -> list[tuple[str, str]]:
    """METRICS with the control space's column and title in the place of CLIP-FID."""
    return [(control.column, control.title) if key == "clip_fid" else (key, label) for key, label in METRICS]


def plotted_metrics(rows: list[dict], control: ControlSpace = CLIP_SPACE) -> list[tuple[str, str]]:
    """The metrics with at least one number after the baseline (the control's FID is NaN when not computed)."""
    evaluated = rows[1:]
    return [(key, label) for key, label in metrics_of(control)
            if any(key in r and not np.isnan(float(r[key])) for r in evaluated)]


def pool_floor(inputs, ref=None) -> tuple[str, float, int] | None:
    """(set, FID, images) of the pool's best single image set against the reals, all its images.

    For the demo's pool (the clean comparison faces mixed with distorted ones) that is the clean
    set: the FID a perfect pick of whole sets would reach. None for a pool without sets.
    """
    import warnings

    from fidlens.metrics.frechet import ReferenceStatistics, mean_and_covariance

    groups = inputs.candidates.groups
    if groups is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few images per set: FID is still exact, the warning is noise here
        ref = ref or ReferenceStatistics(*mean_and_covariance(inputs.reals.pool3))  # REF: the same, if at hand
        scores = [(str(g), ref.fid_of_features(inputs.candidates.pool3[groups == g]), int((groups == g).sum()))
                  for g in np.unique(groups)]
    return min(scores, key=lambda item: item[1])


def plot_curves(rows: list[dict], path: str | os.PathLike, *, title: str,
                floor: tuple[str, float, int] | None = None, clip_note: str | None = None,
                published: Mapping[str, Any] | None = None, control: ControlSpace = CLIP_SPACE) -> None:
    """FID, KID×1000 (and the control space's FID, e.g. CLIP-FID, when computed) against iteration.

    ``floor`` (set, FID, images), e.g. from :func:`pool_floor`, is drawn on the FID panel. A metric
    that was not computed gets no panel; the title says so. The plotted numbers are ``log.csv``.
    ``published`` (``iterations`` and per-metric lists, e.g. the release's FID at iterations 1 and
    500) puts hollow marks on the panels of those metrics, so ours can be read against them.
    The control panel's title is ``control.label`` (which detector, which features). The uniform
    baseline is dashed.
    """
    plt = _pyplot()
    shown = plotted_metrics(rows, control)
    missing = [label for key, label in metrics_of(control) if (key, label) not in shown]
    fig, axes = plt.subplots(1, max(1, len(shown)), figsize=(4.6 * max(1, len(shown)) + 0.6, 3.6), squeeze=False)
    baseline, evaluated = rows[0], rows[1:]
    for ax, (key, label) in zip(axes.flat, shown):
        ax.plot([r["iteration"] for r in evaluated], [r[key] for r in evaluated], "o-", ms=3,
                label="resampled draw (min of repeats)")
        ax.axhline(baseline[key], ls="--", color="0.5", lw=1, label="uniform draw (iteration 0)")
        if key == "fid" and floor is not None:
            name, value, count = floor
            ax.axhline(value, ls=":", color="C2", lw=1.5, label=f"{name} set alone (all {count} images): {value:.1f}")
        if published is not None and key in published:
            ax.plot(published["iterations"], published[key], ls="none", marker="o", ms=8, mfc="none", mec="C3",
                    mew=1.5, label=f"published ({published.get('source', 'release')})")
        ax.set_xlabel("SGD iteration")
        ax.set_ylabel(f"{label} against the reals")
        ax.set_title(control.label if key == control.column and control is not CLIP_SPACE else label, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if not shown:
        axes[0, 0].text(0.5, 0.5, "no evaluations yet", ha="center", va="center", transform=axes[0, 0].transAxes)
        axes[0, 0].set_axis_off()
    note = ""
    if missing:
        reason = (clip_note or "").removeprefix(f"{control.title} skipped: ").removeprefix(f"{control.title} skipped")
        why = f" ({reason})" if reason and missing == [control.title] else ""
        note = f"\n{', '.join(missing)} not computed{why}"
    fig.suptitle(title + note, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def plot_class_histogram(real_logits: np.ndarray, drawn_logits: np.ndarray, path: str | os.PathLike,
                         *, title: str, top: int = 25) -> None:
    """Top-1 class frequencies of the resampled set against the reals, for the reals' 25 commonest classes.

    The bars' numbers go to a CSV beside the figure."""
    plt = _pyplot()
    real_top1, drawn_top1 = real_logits.argmax(1), drawn_logits.argmax(1)
    classes, counts = np.unique(real_top1, return_counts=True)
    order = classes[np.argsort(-counts, kind="stable")][:top]
    real_freq = np.array([(real_top1 == c).mean() for c in order])
    drawn_freq = np.array([(drawn_top1 == c).mean() for c in order])
    x = np.arange(len(order))
    fig, ax = plt.subplots(figsize=(10, 3.4))
    ax.bar(x - 0.2, real_freq, 0.4, label="reals")
    ax.bar(x + 0.2, drawn_freq, 0.4, label="resampled")
    ax.set_xticks(x, [f"#{c}" for c in order], rotation=90, fontsize=7)
    ax.set_ylabel("share of Top-1 classes")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    write_csv(Path(path).with_suffix(".csv"),
              [{"class": int(c), "real_share": float(r), "resampled_share": float(d)}
               for c, r, d in zip(order, real_freq, drawn_freq)], ["class", "real_share", "resampled_share"])


def save_image_grid(images: list[np.ndarray], path: str | os.PathLike, *, title: str, cols: int = 8) -> None:
    plt = _pyplot()
    rows = max(1, int(np.ceil(len(images) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols, 1.3 * rows + 0.55), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, image in zip(axes.flat, images):
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)


GRID_COLUMNS = ["tile", "row", "col", "candidate", "set", "weight", "probability", "rank_from_highest"]


def grid_rows(indices: np.ndarray, w: np.ndarray, groups: np.ndarray | None, cols: int = 8) -> list[dict]:
    """Which candidate sits in which tile (row-major), its set, weight w, p = softmax(w) and weight rank."""
    p = np.exp(w - w.max())
    p /= p.sum()
    rank = np.empty(len(w), dtype=int)
    rank[np.argsort(-w, kind="stable")] = np.arange(1, len(w) + 1)
    return [{"tile": t, "row": t // cols, "col": t % cols, "candidate": int(i),
             "set": None if groups is None else str(groups[int(i)]), "weight": float(w[int(i)]),
             "probability": float(p[int(i)]), "rank_from_highest": int(rank[int(i)])}
            for t, i in enumerate(indices)]


def grid_titles(n: int, tenth: int, shown: dict[str, int], draw_size: int) -> dict[str, str]:
    """Grid titles that say how many images each grid shows, of how many, and how they were picked."""
    share = f"{100 * tenth / n:.3g} %"
    return {
        "grid_resampled.png": f"{shown['grid_resampled.png']} of a draw of {draw_size} with p = softmax(w), "
                              "evenly spaced in draw order",
        "grid_lowest.png": f"lowest-weighted {share} ({tenth} of {n} candidates): {shown['grid_lowest.png']} "
                           "shown, evenly spread by rank, lowest first",
        "grid_highest.png": f"highest-weighted {share} ({tenth} of {n} candidates): {shown['grid_highest.png']} "
                            "shown, evenly spread by rank, highest first",
    }


def _spread(indices: np.ndarray, count: int) -> np.ndarray:
    """Up to ``count`` entries evenly spread over ``indices``."""
    if len(indices) <= count:
        return indices
    return indices[np.linspace(0, len(indices) - 1, count).round().astype(int)]


def save_best_figures(inputs: RunInputs, outdir: Path, w: np.ndarray, *, draw_size: int, seed: int) -> None:
    """Class histogram (with logits) and grids of resampled, lowest and highest weighted images, for weights w.

    The resampled grid shows a draw of ``draw_size`` with ``seed``, the draw the run evaluates.
    """
    drawn = draw_indices(torch.as_tensor(w), draw_size, seed)
    if inputs.reals.logits is not None and inputs.candidates.logits is not None:
        plot_class_histogram(inputs.reals.logits, inputs.candidates.logits[drawn], outdir / "class_histogram.png",
                             title=f"Top-1 classes, {inputs.mode.tag}: resampled set vs reals")
    if inputs.candidate_image is None:
        return
    order = np.argsort(w, kind="stable")
    tenth = max(1, len(w) // 10)
    grids = {
        "grid_resampled.png": _spread(drawn, 32),
        "grid_lowest.png": _spread(order[:tenth], 32),
        "grid_highest.png": _spread(order[-tenth:][::-1], 32),
    }
    titles = grid_titles(len(w), tenth, {name: len(indices) for name, indices in grids.items()}, len(drawn))
    for name, indices in grids.items():
        images = [inputs.candidate_image(int(i)) for i in indices]
        save_image_grid(images, outdir / name, title=f"{inputs.mode.tag}: {titles[name]}")
        write_csv((outdir / name).with_suffix(".csv"), grid_rows(indices, np.asarray(w, dtype=np.float64),
                                                                 inputs.candidates.groups), GRID_COLUMNS)
