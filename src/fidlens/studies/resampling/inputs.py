"""What a resampling run consumes: the measured feature banks and the run's inputs.

Kept apart from `run` so that the candidate pools and the figures can name these types
without importing the optimisation loop (and `run` can import the figures).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fidlens.studies.resampling.modes import Mode

__all__ = ["FeatureBank", "RunInputs"]


@dataclass
class FeatureBank:
    """Everything measured on one set: pool3 always; logits and CLIP embeddings when available."""

    pool3: np.ndarray
    logits: np.ndarray | None = None
    clip: np.ndarray | None = None
    groups: np.ndarray | None = None  # per-candidate label (e.g. which image set it came from)


@dataclass
class RunInputs:
    """The feature mode, the reals and the candidate pool; optional CLIP note, image access and labels."""

    mode: Mode
    reals: FeatureBank
    candidates: FeatureBank
    clip_skip_reason: str | None = None  # e.g. "CLIP-FID skipped: no weights at PATH"
    candidate_image: Callable[[int], np.ndarray] | None = None  # uint8 HWC of candidate i, for grids
    description: dict = field(default_factory=dict)
