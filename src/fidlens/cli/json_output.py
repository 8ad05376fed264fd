"""``--json`` for ``fidlens fid``, ``kid`` and ``stats``: one strict JSON object on stdout.

Scripts read the numbers and how they were made (each side's detector, conventions and
image count) without parsing the human lines. Field names are a promise, listed in
docs/CLI_JSON.md; non-finite numbers are written as ``null`` (`fidlens.core.jsonio`), and
warnings and notes stay on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

from fidlens import __version__
from fidlens.metrics.comparability import known_convention
from fidlens.core.jsonio import dumps_strict

__all__ = ["SCHEMA_VERSION", "add_json_option", "emit", "report", "side_record", "source_kind"]

SCHEMA_VERSION = 1  # raised only when a documented field changes meaning or disappears


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """The ``--json`` flag, with the same help on every command that has it."""
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object to stdout instead of the human lines (fields: docs/CLI_JSON.md); "
                             "warnings and notes stay on stderr")


def source_kind(path: str | os.PathLike) -> str:
    """'statistics' or 'features' for a ``.npz`` (from its headers), 'features' for a ``.npy``, else 'images'."""
    from fidlens.extraction.npz_inputs import is_statistics_file, npz_kind

    if str(path).lower().endswith(".npy"):  # embeddings read by the precomputed detector
        return "features"
    return npz_kind(path) if is_statistics_file(path) else "images"


def _count(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def side_record(path: str | os.PathLike, kind: str, meta: Mapping[str, Any], num_images: Any, *,
                covariance: bool = True) -> dict[str, Any]:
    """One input as scripts see it; an unrecorded value (a pytorch-fid file) is null, never a guess."""
    return {
        "path": os.fspath(path),
        "kind": kind,
        "num_images": _count(num_images),
        "detector": meta.get("detector") if isinstance(meta.get("detector"), str) else None,
        "detector_sha256": known_convention(meta, "detector_sha256"),
        "covariance": known_convention(meta, "covariance") if covariance else None,
        "resize": known_convention(meta, "resize"),
    }


def report(command: str, started: float, **fields: Any) -> dict[str, Any]:
    """The object of one command: its fields, then the elapsed seconds and the versions."""
    return {"command": command, **fields, "elapsed_seconds": round(time.perf_counter() - started, 3),
            "fidlens_version": __version__, "schema_version": SCHEMA_VERSION}


def emit(record: Mapping[str, Any]) -> None:
    """Write RECORD to stdout as one line of strict JSON (NaN and infinities as null)."""
    sys.stdout.write(dumps_strict(record) + "\n")
    sys.stdout.flush()
