"""Whether two statistics (or feature sets) measure the same thing, before they are compared.

A FID between statistics made by different detectors, covariance conventions or input
resize conventions is a number without a meaning, and it looks like any other. Each side's
metadata (the keys fidlens writes: ``detector_sha256``, ``covariance``, ``resize``) is read
here; a known difference is refused (or, with an explicit override, warned about, naming
both sides), and an unknown value (a pytorch-fid file without metadata) gets a note.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fidlens.core.errors import StatisticsError
from fidlens.metrics.covariance import Covariance

__all__ = [
    "RESIZE_CONVENTION",
    "ComparabilityNote",
    "ConventionMismatchWarning",
    "Side",
    "check_comparable",
    "known_convention",
]

# How fidlens' detector brings images to 299 x 299: TF1's legacy bilinear resize (see resize.py).
RESIZE_CONVENTION = "tf1-legacy-bilinear"


class ComparabilityNote(UserWarning):
    """A side's detector or convention is not recorded, so the comparison cannot be verified."""


class ConventionMismatchWarning(UserWarning):
    """Two sides differ in detector or convention and the user asked to compare them anyway."""


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a label for messages (usually the path) and its metadata."""

    label: str
    meta: Mapping[str, Any]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return None if text in ("", "None", "null", "unknown") else text


def known_convention(meta: Mapping[str, Any], key: str) -> str | None:
    """The recorded value of KEY ('detector_sha256', 'covariance' or 'resize'), or None if unknown.

    A covariance marked '(assumed ...)' is a guess, not a record. Files written by fidlens
    before ``resize`` was recorded used the only convention fidlens has ever had.
    """
    if key == "covariance":
        convention = Covariance.read(meta.get("covariance"), assumed=False)
        return None if convention is None else convention.value
    if key == "resize":
        value = _text(meta.get("resize"))
        if value is None and _text(meta.get("fidlens_version")) is not None:
            return RESIZE_CONVENTION
        return value
    return _text(meta.get(key))


def _show(key: str, meta: Mapping[str, Any], value: str) -> str:
    if key == "detector_sha256":
        name = _text(meta.get("detector"))
        return f"sha256 {value[:12]}" + (f" ({name})" if name else "")
    return value


_WHAT = {"detector_sha256": "detectors", "covariance": "covariance conventions", "resize": "resize conventions"}


def check_comparable(
    a: Side, b: Side, *, allow_mismatch: bool = False, keys: tuple[str, ...] = tuple(_WHAT)
) -> list[tuple[type[Warning], str]]:
    """Refuse to compare A and B if a recorded convention differs; return notes to show.

    With ``allow_mismatch`` a difference becomes a `ConventionMismatchWarning` message
    instead of an error. A side whose detector is not recorded gives a `ComparabilityNote`.
    Returns (category, message) pairs; the caller decides how to show them.
    """
    notes: list[tuple[type[Warning], str]] = []
    for key in keys:
        va, vb = known_convention(a.meta, key), known_convention(b.meta, key)
        if va is None or vb is None:
            if key == "detector_sha256":
                for side, value in ((a, va), (b, vb)):
                    if value is None:
                        notes.append((ComparabilityNote, f"{side.label} records no detector (e.g. a pytorch-fid file): "
                                                         "its detector is unknown and cannot be checked"))
            continue
        if va == vb:
            continue
        detail = f"{a.label}: {_show(key, a.meta, va)}; {b.label}: {_show(key, b.meta, vb)}"
        if not allow_mismatch:
            raise StatisticsError(
                f"refusing to compare different {_WHAT[key]} ({detail}); pass --allow-mismatch to compare anyway"
            )
        notes.append((ConventionMismatchWarning, f"comparing despite different {_WHAT[key]} ({detail})"))
    return notes
