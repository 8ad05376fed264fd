"""The feature spaces the resampling can match: all of pool3, the logits, or class histograms.

``pre_logits`` = pool3 (2048-d); ``logits`` = the 1008 logits; ``top_n`` = a binary vector
marking the N classes with the largest logits; ``middle_n`` = a binary vector marking the N
classes around the median rank (a window centred at sorted position 504 of 1008). After
binarising, only the columns that are non-zero in both the real and the candidate sets are
kept (a column that is zero in either set carries no information and makes Σ singular).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fidlens.core.errors import FidlensError

MODES = ("pre_logits", "logits", "top_n", "middle_n")
BINARY_MODES = ("top_n", "middle_n")


@dataclass(frozen=True)
class Mode:
    """A feature mode and its N (for the class-histogram modes)."""

    name: str
    n: int | None = None

    def __post_init__(self) -> None:
        if self.name not in MODES:
            raise FidlensError(f"unknown resampling mode '{self.name}'; choose from {', '.join(MODES)}")
        if self.name in BINARY_MODES and (self.n is None or self.n < 1):
            raise FidlensError(f"mode {self.name} needs N ≥ 1 (e.g. {self.name}_N1)")
        if self.name not in BINARY_MODES and self.n is not None:
            raise FidlensError(f"mode {self.name} takes no N")

    @property
    def needs_logits(self) -> bool:
        return self.name != "pre_logits"

    @property
    def tag(self) -> str:
        """Directory name: ``pre_logits``, ``top_n_N1``, ..."""
        return self.name if self.n is None else f"{self.name}_N{self.n}"

    @classmethod
    def parse(cls, tag: str) -> Mode:
        name, sep, n = tag.rpartition("_N")
        if sep and name in BINARY_MODES and n.isdigit():
            return cls(name, int(n))
        return cls(tag)


def class_indicator(logits: np.ndarray, mode: Mode) -> np.ndarray:
    """Binary (N, C) matrix marking each row's top-n or middle-n classes by logit rank."""
    order = np.argsort(-logits, axis=1, kind="stable")  # rank 0 = largest logit
    num_classes = logits.shape[1]
    if mode.name == "top_n":
        ranks = np.arange(min(mode.n, num_classes))
    else:
        centre = num_classes // 2
        start = max(0, centre - mode.n // 2)
        ranks = np.arange(start, min(num_classes, start + mode.n))
    out = np.zeros(logits.shape, dtype=np.float32)
    rows = np.arange(logits.shape[0])[:, None]
    out[rows, order[:, ranks]] = 1.0
    return out


def mode_features(mode: Mode, pool3: np.ndarray, logits: np.ndarray | None) -> np.ndarray:
    """The features one mode matches, for one set."""
    if mode.name == "pre_logits":
        return pool3
    if logits is None:
        raise FidlensError(f"mode {mode.tag} needs logits, and these features have none")
    if mode.name == "logits":
        return logits
    return class_indicator(logits, mode)


def matched_features(mode: Mode, real: tuple[np.ndarray, np.ndarray | None],
                     candidates: tuple[np.ndarray, np.ndarray | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(real, candidate, kept column indices) in the mode's space, empty columns dropped for binary modes."""
    r = mode_features(mode, *real)
    c = mode_features(mode, *candidates)
    keep = np.arange(r.shape[1])
    if mode.name in BINARY_MODES:
        keep = np.flatnonzero((r != 0).any(axis=0) & (c != 0).any(axis=0))
        if keep.size == 0:
            raise FidlensError(f"mode {mode.tag}: no class is present in both the real and the candidate sets")
        r, c = r[:, keep], c[:, keep]
    return r, c, keep
