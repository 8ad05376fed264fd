"""The one grammar for device strings, shared by the CLI and the workflow config.

Accepted: ``auto`` (CUDA when visible, else CPU), ``cpu``, ``cuda`` and ``cuda:N``. This
module checks the spelling only (no torch import, so config validation stays cheap);
whether the CUDA device exists is checked when it is used (`fidlens.detectors.features.check_device`).
"""

from __future__ import annotations

import re

from fidlens.core.errors import FidlensError

__all__ = ["DEVICE_SPEC_HELP", "DEVICE_SPEC_PATTERN", "parse_device_spec"]

DEVICE_SPEC_PATTERN = r"^(auto|cpu|cuda(:[0-9]{1,4})?)$"
"""The accepted spellings as a regular expression (usable as a JSON-schema ``pattern``)."""

DEVICE_SPEC_HELP = "'auto' (CUDA if visible, else CPU), 'cpu', 'cuda' or 'cuda:N'"

_PATTERN = re.compile(DEVICE_SPEC_PATTERN)


def parse_device_spec(spec: object) -> str:
    """The normalised device string (``cuda:01`` → ``cuda:1``); anything else is a one-line error."""
    text = str(spec).strip() if isinstance(spec, str) else None
    match = _PATTERN.fullmatch(text) if text is not None else None
    if match is None:
        raise FidlensError(f"device must be {DEVICE_SPEC_HELP}, not {spec!r}")
    if text.startswith("cuda:"):
        return f"cuda:{int(text[5:])}"
    return text
