"""Pair attention maps: where FID looks in a bad image and in its good partner, and what a swap does.

Both images are explained against the same statistics (the study's generated set of N images
plus the explained one, exact rank-1 update; absolute-gradient weighting as in the study), so
FID(set + good) − FID(set + bad) is exactly the change that swapping the one image causes.
Both maps are drawn on one colour scale (min and max over the two raw maps), so their colours
can be compared; the raw maps are written beside the figure.
"""

from __future__ import annotations

import os
import re

import numpy as np
import torch

from fidlens.core.atomic import atomic_path
from fidlens.generators.generate import latent_batches
from fidlens.generators.base import GeneratorBase
from fidlens.generators.sampling import DEFAULT_SAMPLING, Sampling
from fidlens.studies.heatmap import (
    Explanation,
    FidSensitivity,
    class_caption,
    no_labels_note,
    render_overlay,
    shared_limits,
)
from fidlens.studies.heatmap_figures import signed
from fidlens.core.rawdata import write_npz
from fidlens.generators.latents import LatentRef, latent_z
from fidlens.studies.pairs.spec import Pair


def latent_image(G: GeneratorBase, ref: LatentRef, probe_step: float, *, device: torch.device,
                 sampling: Sampling = DEFAULT_SAMPLING) -> torch.Tensor:
    """The uint8 CHW image of one seed or probe."""
    return next(latent_batches(G, latent_z(ref, G.z_dim, probe_step), device=device, sampling=sampling))[0]


def explain_pair(sensitivity: FidSensitivity, G: GeneratorBase, pair: Pair, probe_step: float, *,
                 sampling: Sampling = DEFAULT_SAMPLING) -> tuple[Explanation, Explanation]:
    bad = latent_image(G, pair.bad, probe_step, device=sensitivity.device, sampling=sampling)
    good = latent_image(G, pair.good, probe_step, device=sensitivity.device, sampling=sampling)
    return sensitivity.explain(bad), sensitivity.explain(good)


def swap_change(bad: Explanation, good: Explanation) -> float:
    """FID with the good image in the set minus FID with the bad one."""
    return good.fid_with_image - bad.fid_with_image


def readable_note(note: str) -> str:
    """The pairs file's note for a figure; the automatic rule's "face score A → B" spelled out."""
    match = re.fullmatch(r"face score (.+) → (.+)", note.strip())
    if match is None:
        return f"note: {note}"
    return (f"face detector (OpenCV Haar cascade; higher = more face-like): bad {match[1]}, good {match[2]}")


def pair_limits(bad: Explanation, good: Explanation) -> tuple[float, float]:
    """The one colour scale both maps of a pair are drawn on (min and max over both raw maps)."""
    return shared_limits(bad.cam, good.cam)


def pair_numbers(bad: Explanation, good: Explanation) -> dict:
    """The numbers of a pair figure beyond the FIDs: the shared scale, the set alone, ‖g‖ and classes."""
    lo, hi = pair_limits(bad, good)
    tops = {name: None if ex.top_classes is None else [{"class": i, "probability": p} for i, p in ex.top_classes]
            for name, ex in (("bad", bad), ("good", good))}
    return {"fid_without_image": bad.fid_without_image, "delta_fid_bad": bad.delta_fid,
            "delta_fid_good": good.delta_fid, "gradient_norm_bad": bad.gradient_norm,
            "gradient_norm_good": good.gradient_norm, "map_scale_min": lo, "map_scale_max": hi,
            "top_classes_bad": tops["bad"], "top_classes_good": tops["good"]}


def write_pair_maps(bad: Explanation, good: Explanation, path: str | os.PathLike) -> None:
    """``pair_B_G.npz``: both raw 8×8 maps (before normalisation) and the shared scale."""
    lo, hi = pair_limits(bad, good)
    write_npz(path, bad_map=np.asarray(bad.cam, dtype=np.float64), good_map=np.asarray(good.cam, dtype=np.float64),
              scale=np.array([lo, hi]))


def _footer(bad: Explanation, good: Explanation) -> str:
    if bad.top_classes is None and good.top_classes is None:
        return no_labels_note()
    return f"bad: {class_caption(bad.top_classes)} · good: {class_caption(good.top_classes)}"


def save_pair_figure(bad: Explanation, good: Explanation, pair: Pair, path: str | os.PathLike, *,
                     title: str, subtitle: str, weighting: str = "absolute") -> None:
    """bad image | its map | good image | its map, both maps on one colour scale (with its colourbar),
    the FID each gives and the swap's change."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import cm, colors

    limits = pair_limits(bad, good)
    _, bad_overlay = render_overlay(bad.cam, bad.image, limits=limits)
    _, good_overlay = render_overlay(good.cam, good.image, limits=limits)
    fig = plt.figure(figsize=(12.4, 4.25), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[3.4, 0.85])
    axes = top.subplots(1, 4)
    panels = [(bad.image, f"bad: {pair.bad}"),
              (bad_overlay, f"FID with it {bad.fid_with_image:.3f} (Δ {signed(bad.delta_fid)})"),
              (good.image, f"good: {pair.good}"),
              (good_overlay, f"FID with it {good.fid_with_image:.3f} (Δ {signed(good.delta_fid)})")]
    for ax, (picture, label) in zip(axes, panels):
        ax.imshow(np.clip(picture, 0, 255) if picture.dtype == np.uint8 else np.clip(picture, 0, 1))
        ax.set_title(label, fontsize=9)
        ax.set_axis_off()
    weight = "|∂FID/∂Aᵏ|" if weighting == "absolute" else "(∂FID/∂Aᵏ)²"
    bar = top.colorbar(cm.ScalarMappable(norm=colors.Normalize(*limits), cmap="viridis"), ax=axes,
                       shrink=0.85, pad=0.01)
    bar.set_label(f"map value Σₖ wₖAᵏ, wₖ = {weight}\n(one scale for both maps)", fontsize=7)
    bar.ax.tick_params(labelsize=7)
    bar.formatter.set_powerlimits((-2, 3))
    bar.ax.yaxis.get_offset_text().set_fontsize(7)
    change = swap_change(bad, good)
    verdict = "FID prefers the good image" if change < 0 else "FID prefers the bad image" if change > 0 else "no change"
    top.suptitle(f"{title}\nswap bad → good: ΔFID = {signed(change)} ({verdict})", fontsize=10)
    lines = [f"Δ = FID with the image − FID of the generated set alone ({bad.fid_without_image:.3f}) · "
             f"{_footer(bad, good)}"]
    if pair.note:
        lines.append(readable_note(pair.note))
    lines.append(subtitle)
    for k, line in enumerate(lines):
        bottom.text(0.5, 0.8 - 0.33 * k, line, ha="center", va="center", fontsize=7 if k == len(lines) - 1 else 8,
                    color="0.3" if k == len(lines) - 1 else "black")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
