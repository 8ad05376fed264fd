"""What a resampling run consumes: the measured feature banks and the run's inputs.

Kept apart from `run` so that the candidate pools and the figures can name these types
without importing the optimisation loop (and `run` can import the figures).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fidlens.studies.resampling.control import CLIP_SPACE, ControlSpace
from fidlens.studies.resampling.modes import Mode

__all__ = ["FeatureBank", "RunInputs"]


@dataclass
class FeatureBank:
    """Everything measured on one set: pool3 always; logits and the control space's features when available."""

    pool3: np.ndarray
    logits: np.ndarray | None = None
    control: np.ndarray | None = None  # the control detector's features (CLIP, pixels, ...), row for row
    groups: np.ndarray | None = None  # per-candidate label (e.g. which image set it came from)

    @property
    def clip(self) -> np.ndarray | None:
        """The control features under their older name (the control used to be CLIP only)."""
        return self.control

    @clip.setter
    def clip(self, value: np.ndarray | None) -> None:
        self.control = value


@dataclass
class RunInputs:
    """The feature mode, the reals and the candidate pool; the control space, image access and labels."""

    mode: Mode
    reals: FeatureBank
    candidates: FeatureBank
    clip_skip_reason: str | None = None  # why the control space's FID is not computed, e.g. "CLIP-FID skipped: ..."
    candidate_image: Callable[[int], np.ndarray] | None = None  # uint8 HWC of candidate i, for grids
    description: dict = field(default_factory=dict)
    control: ControlSpace = CLIP_SPACE  # the second feature space (CLIP unless a control_detector says otherwise)
