"""Writers only the tests use: a production text or figure, written atomically to a path.

The CLI writes these outputs itself (with every other output of its command, all or none), so
the library keeps the builders (`ranking_csv_text`, `draw_inverse_n`) and the tests keep these
thin wrappers to check a builder's output as a file.
"""

from __future__ import annotations

import os

from fidlens.core.atomic import atomic_path, write_text_atomic
from fidlens.metrics.attribution import Attribution, ranking_csv_text
from fidlens.metrics.fid_infinity import Extrapolation, draw_inverse_n


def write_ranking_csv(path: str | os.PathLike, result: Attribution) -> None:
    """``ranking.csv`` of an attribution, as `fidlens attribute` writes it."""
    write_text_atomic(path, ranking_csv_text(result))


def plot_inverse_n(result: Extrapolation, path: str | os.PathLike, *, title: str | None = None) -> None:
    """The FID∞ figure as a PNG, as `fidlens fid-inf --out` writes it."""
    import matplotlib.pyplot as plt

    fig = draw_inverse_n(result, title=title)
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=120, format="png")
    finally:
        plt.close(fig)
