"""Which inputs are ``.npz`` files and what they hold, from the headers alone: no torch, no arrays.

The CLI sorts its sides with these before anything expensive happens, so ``fidlens fid a.npz
b.npz`` reads two statistics files and computes one distance without importing torch.
"""

from __future__ import annotations

import os

from fidlens.core.npzread import inspect_npz
from fidlens.metrics.feature_files import has_features

__all__ = ["is_statistics_file", "npz_kind"]


def is_statistics_file(path: str | os.PathLike) -> bool:
    """Whether PATH names a ``.npz`` (statistics or features) rather than an image folder or ZIP."""
    return str(path).lower().endswith(".npz")


def npz_kind(path: str | os.PathLike) -> str:
    """'statistics' (it has mu or sigma, or no feature array) or 'features', from the headers only."""
    members = inspect_npz(path, "statistics")
    if "mu" in members or "sigma" in members or not has_features(members):
        return "statistics"
    return "features"
