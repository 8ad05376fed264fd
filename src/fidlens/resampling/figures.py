"""Pictures of a resampling run: metric curves, the class histogram, and image grids by weight."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..atomic import atomic_path
from .optimizer import draw_indices

if TYPE_CHECKING:
    from .run import ResamplingRun


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    _pyplot().close(fig)


def plot_curves(rows: list[dict], path: str | os.PathLike, *, title: str) -> None:
    """FID, CLIP-FID and KID×1000 against iteration, the uniform baseline as a dashed line."""
    plt = _pyplot()
    metrics = [("fid", "FID"), ("clip_fid", "CLIP-FID"), ("kid_x1000", "KID × 1000")]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    baseline, evaluated = rows[0], rows[1:]
    for ax, (key, label) in zip(axes, metrics):
        values = [r[key] for r in evaluated]
        if not evaluated or all(np.isnan(v) for v in values):
            ax.text(0.5, 0.5, f"{label}\nnot computed" + ("\n(no CLIP weights)" if key == "clip_fid" else ""),
                    ha="center", va="center", transform=ax.transAxes, color="0.4")
            ax.set_axis_off()
            continue
        ax.plot([r["iteration"] for r in evaluated], values, "o-", ms=3)
        ax.axhline(baseline[key], ls="--", color="0.5", lw=1, label="uniform draw")
        ax.set_xlabel("iteration")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def plot_class_histogram(real_logits: np.ndarray, drawn_logits: np.ndarray, path: str | os.PathLike,
                         *, title: str, top: int = 25) -> None:
    """Top-1 class frequencies of the resampled set against the reals, for the reals' 25 commonest classes."""
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


def save_image_grid(images: list[np.ndarray], path: str | os.PathLike, *, title: str, cols: int = 8) -> None:
    plt = _pyplot()
    rows = max(1, int(np.ceil(len(images) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols, 1.3 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, image in zip(axes.flat, images):
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def _spread(indices: np.ndarray, count: int) -> np.ndarray:
    """Up to ``count`` entries evenly spread over ``indices``."""
    if len(indices) <= count:
        return indices
    return indices[np.linspace(0, len(indices) - 1, count).round().astype(int)]


def save_best_figures(run: ResamplingRun, w: np.ndarray) -> None:
    """At a new best FID: class histogram (with logits) and grids of resampled, lowest and highest weighted images."""
    inputs, outdir = run.inputs, run.outdir
    drawn = draw_indices(torch.as_tensor(w), run.settings.eval_samples, run.settings.seed)
    if inputs.reals.logits is not None and inputs.candidates.logits is not None:
        plot_class_histogram(inputs.reals.logits, inputs.candidates.logits[drawn], outdir / "class_histogram.png",
                             title=f"Top-1 classes, {inputs.mode.tag}: resampled set vs reals")
    if inputs.candidate_image is None:
        return
    order = np.argsort(w, kind="stable")
    tenth = max(1, len(w) // 10)
    grids = {
        "grid_resampled.png": (_spread(drawn, 32), "a draw with p = softmax(w)"),
        "grid_lowest.png": (_spread(order[:tenth], 32), "lowest 10 % weighted candidates"),
        "grid_highest.png": (_spread(order[-tenth:][::-1], 32), "highest 10 % weighted candidates"),
    }
    for name, (indices, what) in grids.items():
        images = [inputs.candidate_image(int(i)) for i in indices]
        save_image_grid(images, outdir / name, title=f"{inputs.mode.tag}: {what}")
