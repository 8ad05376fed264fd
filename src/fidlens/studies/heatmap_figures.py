"""Pictures and raw numbers of FID sensitivity heatmaps (the maths is in heatmap.py).

Every figure says what its colours mean (a colourbar; each map min–max normalised on its
own) and what the image does to FID: FID with the image added to the N−1 generated images,
and ΔFID = that minus the FID of the N−1 images alone. Beside each figure the raw 8×8 map
(before any normalisation) and those numbers are written as ``.npz`` + strict ``.json``
(one image) or ``.npz`` + ``.csv`` (a grid: which label sits in which tile), so maps can
be aggregated without reading pixels.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fidlens.core.atomic import atomic_path
from fidlens.studies.heatmap import Explanation, class_caption, no_labels_note
from fidlens.core.rawdata import write_csv, write_json, write_npz

COLORBAR_LABEL = "FID sensitivity\n(each map min–max\nnormalised: 0 least, 1 most)"
TILE_COLUMNS = ["tile", "row", "col", "label", "fid_with_image", "fid_without_image", "delta_fid",
                "gradient_norm", "map_min", "map_max", "top1_class", "top1_probability"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def signed(value: float) -> str:
    """ΔFID with its sign: four decimals (+0.0412), or three digits when smaller (−3.12e-05)."""
    text = f"{value:+.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:+.2e}"
    return "−" + text[1:] if text.startswith("-") else text


def numbers_line(explanation: Explanation) -> str:
    """The one line of numbers a single-image heatmap carries."""
    ex = explanation
    return (f"FID with this image {ex.fid_with_image:.3f} · without it {ex.fid_without_image:.3f} · "
            f"ΔFID {signed(ex.delta_fid)} (> 0: the image raises FID) · ‖∂FID/∂f‖ {ex.gradient_norm:.3g}")


def heatmap_numbers(explanation: Explanation) -> dict:
    """The numbers of one explained image, JSON-ready (top classes only when the detector has logits)."""
    ex = explanation
    top = None if ex.top_classes is None else [{"class": i, "probability": p} for i, p in ex.top_classes]
    return {"fid_with_image": ex.fid_with_image, "fid_without_image": ex.fid_without_image,
            "delta_fid": ex.delta_fid, "gradient_norm": ex.gradient_norm,
            "map_min": float(np.min(ex.cam)), "map_max": float(np.max(ex.cam)), "top_classes": top}


def _colorbar(fig, ax_or_axes, *, label: str, vmin: float = 0.0, vmax: float = 1.0, **kwargs):
    from matplotlib import cm, colors

    mappable = cm.ScalarMappable(norm=colors.Normalize(vmin, vmax), cmap="viridis")
    bar = fig.colorbar(mappable, ax=ax_or_axes, **kwargs)
    bar.set_label(label, fontsize=7)
    bar.ax.tick_params(labelsize=7)
    return bar


def _save(fig, path: str | os.PathLike, dpi: int) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    _pyplot().close(fig)


def save_heatmap_figure(explanation: Explanation, path: str | os.PathLike, *, title: str, subtitle: str,
                        show_top10: bool = True) -> None:
    """Image | overlay + colourbar (| Top-10 bars when logits exist); the numbers and notes below."""
    plt = _pyplot()
    ex = explanation
    bars = show_top10 and ex.top_classes is not None
    fig = plt.figure(figsize=(10.4 if bars else 7.4, 4.3), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[5.2, 1.0])
    axes = top.subplots(1, 3 if bars else 2, width_ratios=[1, 1, 1.1] if bars else [1, 1])
    axes[0].imshow(ex.image)
    axes[0].set_title("image", fontsize=9)
    axes[1].imshow(ex.overlay)
    axes[1].set_title("FID sensitivity overlay", fontsize=9)
    for ax in axes[:2]:
        ax.set_axis_off()
    _colorbar(top, axes[1], label=COLORBAR_LABEL, shrink=0.85, pad=0.02)
    if bars:
        idx, probs = zip(*ex.top_classes)
        axes[2].barh(range(len(idx))[::-1], probs, color="0.4")
        axes[2].set_yticks(range(len(idx))[::-1], [f"#{i}" for i in idx], fontsize=7)
        axes[2].set_xlabel("probability", fontsize=8)
        axes[2].tick_params(axis="x", labelsize=7)
        axes[2].set_title("Top-10 ImageNet classes", fontsize=9)
    top.suptitle(title, fontsize=10)
    bottom.text(0.5, 0.78, numbers_line(ex), ha="center", va="center", fontsize=8)
    bottom.text(0.5, 0.45, class_caption(ex.top_classes), ha="center", va="center", fontsize=8)
    bottom.text(0.5, 0.12, subtitle, ha="center", va="center", fontsize=7, color="0.3")
    _save(fig, path, dpi=130)


def _tile_caption(label: str, ex: Explanation) -> str:
    head = label if ex.top_classes is None else f"{label} · #{ex.top_classes[0][0]}"
    return f"{head}\nΔFID {signed(ex.delta_fid)}"


def save_heatmap_grid(explanations: Sequence[Explanation], labels: Sequence[str], rows: int, cols: int,
                      path: str | os.PathLike, *, title: str, subtitle: str) -> None:
    """rows × cols tiles, each the image beside its overlay, captioned with its label and ΔFID."""
    plt = _pyplot()
    fig = plt.figure(figsize=(2.7 * cols + 1.1, 1.75 * rows + 1.3), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.75 * rows + 0.45, 0.55])
    grid_area, bar_area = top.subfigures(1, 2, width_ratios=[2.7 * cols, 1.1])
    tiles = grid_area.subfigures(rows, cols, squeeze=False, wspace=0.04, hspace=0.02)
    for tile in tiles.flat:
        tile.set_facecolor("none")
    for tile, ex, label in zip(tiles.flat, explanations, labels):
        image_ax, overlay_ax = tile.subplots(1, 2, gridspec_kw={"wspace": 0.02})
        image_ax.imshow(ex.image)
        overlay_ax.imshow(ex.overlay)
        for ax in (image_ax, overlay_ax):
            ax.set_axis_off()
        tile.suptitle(_tile_caption(label, ex), fontsize=7.5)
    _colorbar(bar_area, None, label=COLORBAR_LABEL, cax=bar_area.add_axes((0.12, 0.12, 0.14, 0.72)))
    top.suptitle(f"{title}\neach tile: image | FID sensitivity overlay", fontsize=10)
    note = no_labels_note() if explanations and explanations[0].top_classes is None else "#k = Top-1 ImageNet class"
    without = explanations[0].fid_without_image if explanations else float("nan")
    bottom.text(0.5, 0.78, f"ΔFID = FID with the tile's image added − FID of the generated set alone "
                           f"({without:.3f}) · {note}", ha="center", va="center", fontsize=8)
    bottom.text(0.5, 0.3, subtitle, ha="center", va="center", fontsize=7, color="0.3")
    _save(fig, path, dpi=110)


def write_heatmap_raw(explanation: Explanation, stem: str | os.PathLike, *, label: str, setup: dict) -> list[Path]:
    """``STEM.npz`` (the 8×8 map before normalisation, ∂FID/∂f) and ``STEM.json`` (numbers + setup)."""
    stem = Path(stem)
    npz, numbers = stem.with_name(stem.name + ".npz"), stem.with_name(stem.name + ".json")
    write_npz(npz, map=np.asarray(explanation.cam, dtype=np.float64),
              feature_gradient=np.asarray(explanation.feature_gradient, dtype=np.float64))
    write_json(numbers, {"label": label, **heatmap_numbers(explanation), "map_file": npz.name,
                         "map_shape": list(np.shape(explanation.cam)), **setup})
    return [npz, numbers]


def grid_rows(explanations: Sequence[Explanation], labels: Sequence[str], cols: int) -> list[dict]:
    """Which label sits in which tile (row-major, from 0) and its numbers."""
    rows = []
    for tile, (ex, label) in enumerate(zip(explanations, labels)):
        numbers = heatmap_numbers(ex)
        top1 = numbers.pop("top_classes")
        rows.append({"tile": tile, "row": tile // cols, "col": tile % cols, "label": label, **numbers,
                     "top1_class": top1[0]["class"] if top1 else None,
                     "top1_probability": top1[0]["probability"] if top1 else None})
    return rows


def write_grid_raw(explanations: Sequence[Explanation], labels: Sequence[str], cols: int,
                   csv_path: str | os.PathLike, npz_path: str | os.PathLike) -> None:
    """The tiles' CSV and one ``.npz`` of every raw map (``maps[t]`` is tile t) with its label."""
    write_csv(csv_path, grid_rows(explanations, labels, cols), TILE_COLUMNS)
    write_npz(npz_path, labels=np.asarray(list(labels), dtype=str),
              maps=np.stack([np.asarray(ex.cam, dtype=np.float64) for ex in explanations]),
              fid_with_image=np.array([ex.fid_with_image for ex in explanations]),
              fid_without_image=np.array([ex.fid_without_image for ex in explanations]),
              delta_fid=np.array([ex.delta_fid for ex in explanations]),
              gradient_norm=np.array([ex.gradient_norm for ex in explanations]))
