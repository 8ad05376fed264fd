"""Table 1 of the pairs study: how many good/bad pairs each model's study used, beside the paper's count.

Why beside Table 2: the paper's pairs were never published, so a reproduction runs on pairs someone
picked again; Table 2's numbers can only be set beside the paper's when one also sees how many
pairs each model's W_bad and W_good averaged over. Pure Python: reads the pairs files, no torch.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path

from fidlens.core.atomic import atomic_path
from fidlens.studies.pairs.spec import load_pairs

__all__ = ["COLUMNS", "render_table1", "table1_rows", "write_table1_csv"]

COLUMNS = ("model", "network", "pairs", "published_pairs", "pairs_source")


def table1_rows(pairs_files: Mapping[str, str | os.PathLike], networks: Mapping[str, str],
                published: Mapping[str, Mapping | None]) -> list[dict]:
    """One row per model, in the given order: our pair count (from its pairs file) and the published one."""
    rows = []
    for model, path in pairs_files.items():
        pairs = load_pairs(path)
        theirs = (published.get(model) or {}).get("pairs")
        rows.append({"model": model, "network": Path(networks[model]).name, "pairs": len(pairs.pairs),
                     "published_pairs": "" if theirs is None else int(theirs),
                     "pairs_source": pairs.rule or "by hand"})
    return rows


def write_table1_csv(rows: list[dict], path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)


def render_table1(rows: list[dict]) -> str:
    """Markdown: 'ours (published)' per model, and the totals (the paper's: 159 pairs)."""
    lines = ["| model | network | pairs |", "|---|---|---|"]
    for row in rows:
        theirs = "" if row["published_pairs"] == "" else f" ({row['published_pairs']})"
        lines.append(f"| {row['model']} | {row['network']} | {row['pairs']}{theirs} |")
    ours = sum(row["pairs"] for row in rows)
    known = [row["published_pairs"] for row in rows if row["published_pairs"] != ""]
    total = f" ({sum(known)})" if known else ""
    lines.append(f"| all | | {ours}{total} |")
    lines += ["", "Table 1 of the pairs study: good/bad pairs per model. Values in parentheses are the "
              "published counts (found by hand among about 40,000 images; the pairs themselves were not "
              "published, so ours are picked again)."]
    return "\n".join(lines) + "\n"
