"""Fig. 4 of the pairs study: the automatically selected bad images beside their w′ replacements.

Why a figure: Table 2 says whether FID noticed the replacement; only the images say whether the
replacement is a better variant of the same face (the paper's expert judged 30 of 31 as variants).
The selection is the study's own (smallest d_i first, ``study.npz``): image i is latent row i of
the study's generated set, its replacement the same latent with w shifted by mean(W_good) −
mean(W_bad). Only the shown images are synthesised again.
"""

from __future__ import annotations

import csv
import os

import numpy as np

from fidlens.core.atomic import atomic_path
from fidlens.core.errors import FidlensError
from fidlens.studies.pairs.selection import PairDirection
from fidlens.studies.pairs.study import StudySettings
from fidlens.studies.pairs.study_file import Study

__all__ = ["compose_rows", "figure4_images", "figure4_indices", "write_figure4"]


def figure4_indices(study: Study, count: int) -> np.ndarray:
    """The COUNT selected images with the smallest d_i (the selection is stored smallest first)."""
    if count < 1:
        raise FidlensError(f"Fig. 4 needs at least one image, not {count}")
    selected = study.selected
    order = np.argsort(study.arrays["d"][selected], kind="stable")  # robust to any stored order
    return selected[order][:count]


def figure4_images(G, study: Study, indices: np.ndarray, *, device: str = "cpu",
                   batch_size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """uint8 NHWC images of the selected latents and of their w′ replacements (same sampling as the study)."""
    from fidlens.generators.generate import latent_batches

    settings = StudySettings.from_mapping(study.meta["settings"])
    z_all = np.random.RandomState(settings.latent_seed).randn(settings.num_images, G.z_dim)
    z = z_all[np.asarray(indices, dtype=np.int64)]
    direction = PairDirection(study.arrays["mean_bad"], study.arrays["mean_good"])

    def images(edit) -> np.ndarray:
        batches = latent_batches(G, z, batch_size=batch_size, edit_ws=edit, sampling=settings.sampling, device=device)
        return np.concatenate([b.permute(0, 2, 3, 1).cpu().numpy() for b in batches])

    return images(None), images(direction.replace)


def compose_rows(top: np.ndarray, bottom: np.ndarray, *, tile: int = 256, gap: int = 4) -> np.ndarray:
    """Two rows of tiles (top: selected, bottom: replacements), resized to TILE, on a white ground."""
    from PIL import Image

    if len(top) != len(bottom) or len(top) == 0:
        raise FidlensError(f"Fig. 4 needs as many replacements as selected images ({len(top)} vs {len(bottom)})")
    cols = len(top)
    canvas = np.full((2 * tile + gap, cols * tile + (cols - 1) * gap, 3), 255, np.uint8)
    for row, images in enumerate((top, bottom)):
        for col, image in enumerate(images):
            rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image
            resized = np.asarray(Image.fromarray(rgb).resize((tile, tile), Image.Resampling.LANCZOS))
            y, x = row * (tile + gap), col * (tile + gap)
            canvas[y : y + tile, x : x + tile] = resized
    return canvas


def write_figure4(study: Study, indices: np.ndarray, top: np.ndarray, bottom: np.ndarray, png: str | os.PathLike,
                  table: str | os.PathLike, *, tile: int = 256) -> None:
    """The figure (PNG) and what it shows (CSV: column, image index, d_i, selection rank)."""
    from PIL import Image

    canvas = compose_rows(top, bottom, tile=tile)
    with atomic_path(png) as tmp:
        Image.fromarray(canvas).save(tmp, format="PNG")
    rank = {int(i): r for r, i in enumerate(study.selected)}
    with atomic_path(table) as tmp, open(tmp, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["column", "index", "d", "selection_rank"])
        for column, index in enumerate(indices):
            out.writerow([column, int(index), f"{study.arrays['d'][index]:.6f}", rank[int(index)]])
