"""JSON that every parser reads: non-finite floats become null, and writes are atomic.

Python's json module writes NaN and Infinity as bare tokens by default, which JavaScript,
jq, Go and most strict parsers refuse. Metrics that were not computed (CLIP-FID without
weights) are NaN in memory; on disk they are ``null``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fidlens.core.atomic import write_text_atomic

__all__ = ["dumps_strict", "finite_or_none", "write_json"]


def finite_or_none(value: Any) -> Any:
    """A JSON-ready copy: non-finite floats as None, NumPy scalars and arrays as Python values."""
    if isinstance(value, Mapping):
        return {str(k) if not isinstance(k, str) else k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    if isinstance(value, np.ndarray):
        return finite_or_none(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def dumps_strict(data: Any, *, indent: int | None = None, **kwargs: Any) -> str:
    """json.dumps with NaN/±inf written as null and ``allow_nan=False`` as the guard."""
    return json.dumps(finite_or_none(data), indent=indent, allow_nan=False, **kwargs)


def write_json(path: str | os.PathLike, data: Any, *, indent: int | None = 2, **kwargs: Any) -> Path:
    """Strict JSON (one trailing newline), written atomically."""
    write_text_atomic(path, dumps_strict(data, indent=indent, **kwargs) + "\n")
    return Path(path)
