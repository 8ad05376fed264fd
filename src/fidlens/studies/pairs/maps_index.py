"""The index of one model's pair maps: a Markdown table and the same numbers as CSV.

Each pair map is ``pair_BAD_GOOD.png`` beside ``.json`` (its numbers) and ``.npz`` (its raw maps),
in ``maps/`` below the index when one job draws them all; the index reads the numbers back and links
each row to its files, relative to itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from fidlens.core.atomic import atomic_path
from fidlens.core.rawdata import write_csv

__all__ = ["CSV_COLUMNS", "write_maps_index"]

CSV_COLUMNS = ["bad", "good", "fid_with_bad", "fid_with_good", "swap_change", "fid_without_image", "figure",
               "numbers", "maps"]


def write_maps_index(figures: Sequence[str | os.PathLike], out: str | os.PathLike,
                     csv_out: str | os.PathLike) -> str:
    """Write the Markdown index OUT and its CSV of the pair maps FIGURES; returns the Markdown."""
    lines = ["| pair | FID with bad | FID with good | ΔFID (swap) | figure |", "|---|---|---|---|---|"]
    rows = []
    here = Path(out).parent

    def link(path: Path) -> str:  # as seen from the index: `pair_….png` beside it, `maps/pair_….png` below
        return Path(os.path.relpath(path, here)).as_posix()

    for figure in map(Path, figures):
        numbers = json.loads(figure.with_suffix(".json").read_text())
        lines.append(f"| {numbers['bad']} → {numbers['good']} | {numbers['fid_with_bad']:.4f} | "
                     f"{numbers['fid_with_good']:.4f} | {numbers['swap_change']:+.4f} | {link(figure)} |")
        rows.append({**{k: numbers.get(k) for k in CSV_COLUMNS[:6]}, "figure": link(figure),
                     "numbers": link(figure.with_suffix(".json")), "maps": link(figure.with_suffix(".npz"))})
    better = sum(row["swap_change"] < 0 for row in rows)
    lines += ["", f"FID preferred the good image in {better} of {len(figures)} pairs.",
              f"The same numbers as CSV: {Path(csv_out).name}; raw maps: pair_BAD_GOOD.npz."]
    text = "\n".join(lines) + "\n"
    with atomic_path(out) as tmp:
        Path(tmp).write_text(text)
    write_csv(csv_out, rows, CSV_COLUMNS)
    return text
