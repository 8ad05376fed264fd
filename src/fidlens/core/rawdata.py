"""The numbers behind a figure, written beside it: strict JSON, CSV and NumPy archives.

Figures are for eyes; these files are for scripts that aggregate maps or re-plot curves.
JSON is strict (NaN and ±inf become null, so every parser reads it) and every write is
atomic, like the figures themselves.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from fidlens.core.atomic import atomic_path
from fidlens.core.jsonio import dumps_strict
from fidlens.core.jsonio import write_json as _write_json


def strict_json(data: Any) -> str:
    """JSON text any strict parser accepts: NaN/inf written as null, never as bare NaN."""
    return dumps_strict(data, indent=2, ensure_ascii=False) + "\n"


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Strict JSON, atomically."""
    _write_json(path, data, indent=2, ensure_ascii=False)


def _cell(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        return repr(float(value)) if math.isfinite(value) else ""
    return "" if value is None else value


def write_csv(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """One row per mapping; floats at full precision, missing or non-finite values empty."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="raise")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in columns})


def write_npz(path: str | os.PathLike, **arrays: Any) -> None:
    """Uncompressed ``.npz`` (float64 kept as float64), atomically."""
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **{k: np.asarray(v) for k, v in arrays.items()})
