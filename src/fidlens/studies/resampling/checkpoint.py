"""Resampling checkpoints as plain data: a ``.npz`` holding a JSON header and the weights, no pickle.

A pickled checkpoint (``torch.save``) runs whatever a planted file names when it is loaded, and it
was loaded before anything checked whose it was. Here the file is a zip of two ``.npy`` arrays,
``header`` (UTF-8 JSON: format, fingerprint, iteration, lr, log rows, best, elapsed time) and
``w`` (float64 log-weights). The header is read and its fingerprint compared first; ``w`` is read
only for a checkpoint of this very run, and its declared shape is checked before any allocation.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fidlens.core.atomic import atomic_path

FORMAT = "fidlens-resampling-checkpoint/1"
MAX_HEADER_BYTES = 64 * 2**20  # the log rows of a 100 000-iteration run are a few MB


class CheckpointMismatch(Exception):
    """The checkpoint cannot be used; the message says why (the run then starts over)."""


@dataclass
class Checkpoint:
    fingerprint: str
    w: np.ndarray
    iteration: int
    lr: float
    rows: list[dict]
    best: dict | None
    elapsed: float


def save_checkpoint(path: str | os.PathLike, state: Checkpoint) -> None:
    """Write ``state`` atomically (a reader sees the old checkpoint or the new one, never half)."""
    header = {"format": FORMAT, "fingerprint": state.fingerprint, "iteration": int(state.iteration),
              "lr": float(state.lr), "rows": state.rows, "best": state.best, "elapsed": float(state.elapsed)}
    encoded = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    w = np.ascontiguousarray(state.w, dtype=np.float64)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, header=encoded, w=w)


def _read_npy(archive: zipfile.ZipFile, name: str, dtype: np.dtype, max_items: int) -> np.ndarray:
    """One 1-D array member, its declared dtype and length checked before it is read."""
    if name not in archive.namelist():
        raise CheckpointMismatch(f"it has no '{name}' array")
    with archive.open(name) as stream:
        version = np.lib.format.read_magic(stream)
        readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in readers:
            raise CheckpointMismatch(f"its '{name}' array has .npy version {version}")
        reader = readers[version]
        shape, _fortran, declared = reader(stream)
        if declared != dtype or len(shape) != 1 or shape[0] > max_items:
            raise CheckpointMismatch(f"its '{name}' array is {declared}{tuple(shape)}, expected 1-d {dtype}")
        data = stream.read(shape[0] * dtype.itemsize + 1)
    if len(data) != shape[0] * dtype.itemsize:
        raise CheckpointMismatch(f"its '{name}' array is truncated")
    return np.frombuffer(data, dtype=dtype).copy()


def _finite(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CheckpointMismatch(f"its {what} is not a finite number")
    return float(value)


def read_checkpoint(path: str | os.PathLike, fingerprint: str, num_candidates: int) -> Checkpoint:
    """The checkpoint at ``path`` if it belongs to the run with ``fingerprint``; else CheckpointMismatch."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            raw = _read_npy(archive, "header.npy", np.dtype(np.uint8), MAX_HEADER_BYTES)
            try:
                header = json.loads(raw.tobytes().decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise CheckpointMismatch("its header is not JSON") from exc
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise CheckpointMismatch("it is not a fidlens resampling checkpoint")
            if header.get("fingerprint") != fingerprint:
                raise CheckpointMismatch("it belongs to other inputs or settings")
            w = _read_npy(archive, "w.npy", np.dtype(np.float64), num_candidates)
    except (OSError, zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise CheckpointMismatch(f"it is unreadable ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from exc
    if w.shape != (num_candidates,):
        raise CheckpointMismatch(f"it has {w.shape[0]} weights, the pool has {num_candidates} candidates")
    iteration, rows, best = header.get("iteration"), header.get("rows"), header.get("best")
    if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 0:
        raise CheckpointMismatch("its iteration is not a non-negative integer")
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise CheckpointMismatch("its log rows are malformed")
    if best is not None and not (isinstance(best, dict) and isinstance(best.get("iteration"), int)
                                 and isinstance(best.get("fid"), (int, float))):
        raise CheckpointMismatch("its best entry is malformed")
    return Checkpoint(fingerprint, w, iteration, _finite(header.get("lr"), "learning rate"), rows, best,
                      _finite(header.get("elapsed"), "elapsed time"))
