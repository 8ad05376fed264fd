"""A readable PNG of the images FID dislikes most and likes most, with their ΔFID.

Top row: rank 1, 2, … (removing the image lowers FID the most). Bottom row: rank N,
N−1, … (removing it raises FID the most). Rendered to bytes, so the caller can write
every output of a run atomically after all of them were computed.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["render_attribution_grid"]


def _tile_label(rank: int, name: str, delta: float) -> str:
    short = name if len(name) <= 22 else "…" + name[-21:]
    return f"#{rank} {short}\nΔFID {delta:+.4g}" if short else f"#{rank}\nΔFID {delta:+.4g}"


def render_attribution_grid(
    image_at: Callable[[int], np.ndarray],
    delta: np.ndarray,
    ranks: np.ndarray,
    names: Sequence[str],
    count: int,
    *,
    title: str = "",
    overlay_at: Callable[[int], np.ndarray] | None = None,
    footer: str = "",
) -> bytes:
    """PNG bytes: ``count`` most harmful images (top row) and ``count`` most liked (bottom row).

    ``image_at(i)`` returns image i as (H, W, 3) uint8; ``delta``/``ranks``/``names`` are
    per image. ``count`` is capped at N // 2 so the rows never show the same image twice.
    ``overlay_at(i)`` (same size, uint8), when given, is shown beside image i (its heatmap);
    ``footer`` is a line under the grid (e.g. why there are no heatmaps).
    """
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    order = np.argsort(delta, kind="stable")
    count = max(1, min(count, order.size // 2))
    rows = [
        ("hurt FID most: removing lowers FID", order[:count]),
        ("FID likes most: removing raises FID", order[::-1][:count]),
    ]
    width = 1.9 if overlay_at is None else 3.4
    fig = Figure(figsize=(width * count + 0.4, 4.9 + (0.3 if footer else 0.0)), dpi=110)
    axes = fig.subplots(2, count, squeeze=False)
    for row, (label, indices) in enumerate(rows):
        for col, i in enumerate(indices):
            ax = axes[row][col]
            picture = image_at(int(i))
            if overlay_at is not None:
                picture = np.concatenate([picture, overlay_at(int(i))], axis=1)
            ax.imshow(picture, interpolation="lanczos")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(_tile_label(int(ranks[i]), names[i], float(delta[i])), fontsize=8)
        axes[row][0].set_ylabel(label.split(":")[0], fontsize=9)
    fig.suptitle(title or "ΔFID = FID(set without image) − FID(set)", fontsize=10)
    if footer:
        fig.text(0.5, 0.01, footer, ha="center", va="bottom", fontsize=7, wrap=True)
        fig.tight_layout(rect=(0, 0.05, 1, 1))
    else:
        fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
