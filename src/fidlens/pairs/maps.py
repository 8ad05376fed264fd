"""Pair attention maps: where FID looks in a bad image and in its good partner, and what a swap does.

Both images are explained against the same statistics (the study's generated set of N images
plus the explained one, exact rank-1 update; absolute-gradient weighting as in the study), so
FID(set + good) − FID(set + bad) is exactly the change that swapping the one image causes.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from ..atomic import atomic_path
from ..generate import latent_batches
from ..generators.base import GeneratorBase
from ..heatmap import Explanation, FidSensitivity, class_caption
from .latents import LatentRef, latent_z
from .spec import Pair


def latent_image(G: GeneratorBase, ref: LatentRef, probe_step: float, *, device: torch.device,
                 **sampling) -> torch.Tensor:
    """The uint8 CHW image of one seed or probe (``sampling`` as for latent_batches)."""
    return next(latent_batches(G, latent_z(ref, G.z_dim, probe_step), device=device, **sampling))[0]


def explain_pair(sensitivity: FidSensitivity, G: GeneratorBase, pair: Pair, probe_step: float,
                 **sampling) -> tuple[Explanation, Explanation]:
    bad = latent_image(G, pair.bad, probe_step, device=sensitivity.device, **sampling)
    good = latent_image(G, pair.good, probe_step, device=sensitivity.device, **sampling)
    return sensitivity.explain(bad), sensitivity.explain(good)


def swap_change(bad: Explanation, good: Explanation) -> float:
    """FID with the good image in the set minus FID with the bad one."""
    return good.fid_with_image - bad.fid_with_image


def save_pair_figure(bad: Explanation, good: Explanation, pair: Pair, path: str | os.PathLike, *,
                     title: str, subtitle: str) -> None:
    """bad image | its map | good image | its map, with the FID each gives and the swap's change."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(11.5, 3.9))
    panels = [(bad.image, f"bad: {pair.bad}"), (bad.overlay, f"FID with it {bad.fid_with_image:.3f}"),
              (good.image, f"good: {pair.good}"), (good.overlay, f"FID with it {good.fid_with_image:.3f}")]
    for ax, (picture, label) in zip(axes, panels):
        ax.imshow(np.clip(picture, 0, 255) if picture.dtype == np.uint8 else np.clip(picture, 0, 1))
        ax.set_title(label, fontsize=9)
        ax.set_axis_off()
    change = swap_change(bad, good)
    verdict = "FID prefers the good image" if change < 0 else "FID prefers the bad image" if change > 0 else "no change"
    note = f" · note: {pair.note}" if pair.note else ""
    fig.suptitle(f"{title}\nswap bad → good: ΔFID = {change:+.4f} ({verdict}){note}", fontsize=10, wrap=True)
    fig.text(0.5, 0.07, f"bad: {class_caption(bad.top_classes)} · good: {class_caption(good.top_classes)}",
             ha="center", fontsize=8)
    fig.text(0.5, 0.02, subtitle, ha="center", fontsize=7, color="0.3", wrap=True)
    fig.tight_layout(rect=(0, 0.1, 1, 0.9))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
