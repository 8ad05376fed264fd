"""Which generated images look like the marked bad ones, and how they are fixed (METHODS §4).

With W_bad and W_good the w's of the pairs (the 512-d mapping output; at ψ = 1 it is the same
vector on every layer),

    d_i = ‖w_i − mean(W_bad)‖ − ‖w_i − mean(W_good)‖,

and the selection is the fraction (1.5 %) of images with the *smallest* d_i: nearer the bad mean
than the good one. (The study's text says "larger is closer to bad", which contradicts its own
formula; we follow the formula.) The fix moves every selected w by the pair direction,
w′ = w + mean(W_good) − mean(W_bad), on every layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fidlens.core.errors import FidlensError

if TYPE_CHECKING:  # torch only where ws are edited: reading a saved study (Table 2) needs none
    import torch

DEFAULT_FRACTION = 0.015


@dataclass(frozen=True)
class PairDirection:
    """The two pair means (float64) and the step between them."""

    mean_bad: np.ndarray
    mean_good: np.ndarray

    @classmethod
    def from_pairs(cls, w_bad: np.ndarray, w_good: np.ndarray) -> PairDirection:
        w_bad, w_good = _as_w(w_bad, "W_bad"), _as_w(w_good, "W_good")
        if w_bad.shape[1] != w_good.shape[1]:
            raise FidlensError(f"W_bad and W_good differ in width: {w_bad.shape[1]} vs {w_good.shape[1]}")
        return cls(w_bad.mean(axis=0), w_good.mean(axis=0))

    @property
    def step(self) -> np.ndarray:
        return self.mean_good - self.mean_bad

    def scores(self, w: np.ndarray) -> np.ndarray:
        """d_i for each row of w (N × w_dim): negative means nearer the bad mean."""
        w = _as_w(w, "w")
        if w.shape[1] != self.mean_bad.shape[0]:
            raise FidlensError(f"w has width {w.shape[1]}, the pairs {self.mean_bad.shape[0]}")
        return np.linalg.norm(w - self.mean_bad, axis=1) - np.linalg.norm(w - self.mean_good, axis=1)

    def replace(self, ws: torch.Tensor) -> torch.Tensor:
        """w′ = w + mean(W_good) − mean(W_bad) on every layer of ws (N × num_ws × w_dim)."""
        if ws.ndim != 3 or ws.shape[2] != self.step.shape[0]:
            raise FidlensError(f"expected ws of shape (N, num_ws, {self.step.shape[0]}), got {tuple(ws.shape)}")
        import torch

        step = torch.as_tensor(self.step, dtype=torch.float64, device=ws.device)
        return (ws.to(torch.float64) + step).to(ws.dtype)


def _as_w(w: np.ndarray, name: str) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2 or len(w) == 0:
        raise FidlensError(f"{name} must be a non-empty (N, w_dim) array, got shape {w.shape}")
    if not np.isfinite(w).all():
        raise FidlensError(f"{name} holds NaN or infinite values")
    return w


def selection_size(num_images: int, fraction: float) -> int:
    """round(fraction · N): 750 of 50,000 at 1.5 %. At least one image, and never all of them."""
    if not 0 < fraction < 1:
        raise FidlensError(f"the selection fraction must lie between 0 and 1, not {fraction}")
    count = round(fraction * num_images)
    if not 1 <= count < num_images:
        raise FidlensError(f"selecting {fraction:.2%} of {num_images} images gives {count}: use more images")
    return count


def select_smallest(scores: np.ndarray, fraction: float = DEFAULT_FRACTION) -> np.ndarray:
    """Indices of the ``fraction`` of images with the smallest d_i, smallest first (ties by index)."""
    scores = np.asarray(scores, dtype=np.float64)
    count = selection_size(len(scores), fraction)
    return np.argsort(scores, kind="stable")[:count]


def kept_indices(num_images: int, selected: np.ndarray) -> np.ndarray:
    """Every index not selected, in order."""
    mask = np.ones(num_images, dtype=bool)
    mask[selected] = False
    return np.flatnonzero(mask)
