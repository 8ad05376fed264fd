"""Improved precision and recall (k = 3) and density and coverage (k = 5) on any feature space.

Kynkäänniemi et al. 2019: each real feature x_i spans a ball of radius r_k(x_i), the
distance to its k-th nearest other real feature. Precision = share of fake features in at
least one real ball; recall = share of real features in at least one fake ball (radii
among the fakes). Naeem et al. 2020 (k = 5): density = Σ_j Σ_i 1[y_j ∈ B(x_i, r_k(x_i))]
/ (k M) for M fakes, coverage = share of real balls that hold at least one fake.
Precision/recall use closed balls (distance ≤ radius, as Kynkäänniemi et al. define
them), density/coverage open ones (distance < radius, as Naeem et al.'s reference code).

Exactness: distances are float64. The N × M matrix is never built: rows are processed
in chunks, squared distances come from one matrix product per chunk (‖a‖² + ‖b‖² − 2a·b),
and every comparison that this fast form cannot decide for certain (|d² − r²| within
its rounding bound, e.g. ties and duplicates) is redone on d² = Σ(a − b)² computed
directly, the definition every decision uses. So the results do not depend on the
chunk size, and duplicates (distance exactly 0) count as they should.

Published values use VGG16 (2019, 2020) or DINOv2 (Stein et al. 2023) features; values in
another space (e.g. Inception pool3) are not comparable to them: every result says in
which feature space it was computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fidlens.core.errors import StatisticsError

__all__ = ["PRDC", "comparability_note", "knn_radii", "prdc"]

DEFAULT_K_PR = 3
DEFAULT_K_DC = 5
BLOCK_BYTES = 32 * 2**20  # one float64 chunk of distances (a few such arrays are alive at once)
_EPS = float(np.finfo(np.float64).eps)
_PAIR_BATCH = 4096


def comparability_note(feature_space: str) -> str:
    """The warning every output carries: published numbers live in other feature spaces."""
    return (f"computed in the {feature_space} feature space; published precision/recall (Kynkäänniemi et al. 2019) "
            "and density/coverage (Naeem et al. 2020) use VGG16 features (or DINOv2, Stein et al. 2023), so values "
            "from other features, e.g. Inception pool3, are not comparable to them")


@dataclass(frozen=True)
class PRDC:
    """Precision, recall, density, coverage, with the k and feature space they were computed with."""

    precision: float
    recall: float
    density: float
    coverage: float
    k_pr: int
    k_dc: int
    n_real: int
    n_fake: int
    feature_space: str

    @property
    def note(self) -> str:
        return comparability_note(self.feature_space)

    def as_dict(self) -> dict[str, Any]:
        return {"precision": self.precision, "recall": self.recall, "density": self.density,
                "coverage": self.coverage, "k_precision_recall": self.k_pr, "k_density_coverage": self.k_dc,
                "n_real": self.n_real, "n_fake": self.n_fake, "feature_space": self.feature_space,
                "note": self.note}


def _features(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise StatisticsError(f"{name} must be real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise StatisticsError(f"{name} must be 2-D (N, d) with d >= 1, got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise StatisticsError(f"{name} contains NaN or infinite values")
    return arr


def _check_k(k: int, n: int, name: str, what: str) -> int:
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise StatisticsError(f"k for {what} must be a whole number >= 1, got {k}")
    if k >= n:
        label = f"{name} features" if name else "features"
        raise StatisticsError(f"k = {k} for {what} needs at least {k + 1} {label} (the k-th nearest "
                              f"neighbour other than the feature itself); there are {n}")
    return int(k)


class _Points:
    """A feature set with its squared norms, and the rounding bound of its fast distances."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = x
        self.sq = np.einsum("ij,ij->i", x, x)
        # |fast d² − direct d²| <= BOUND · (‖a‖² + ‖b‖²): both are sums of d products in float64
        self.bound = (4.0 * x.shape[1] + 16.0) * _EPS * 1.01

    def fast(self, rows: slice, other: _Points) -> tuple[np.ndarray, np.ndarray]:
        """(fast d², its error bound) of self[rows] against every point of OTHER."""
        a, a_sq = self.x[rows], self.sq[rows]
        d2 = a_sq[:, None] + other.sq[None, :] - 2.0 * (a @ other.x.T)
        np.maximum(d2, 0.0, out=d2)
        err = self.bound * (a_sq[:, None] + other.sq[None, :])
        return d2, err


def _direct(a: np.ndarray, b: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """Σ(a_i − b_j)² for the pairs (ia, ib), computed from the differences (the deciding definition)."""
    out = np.empty(ia.size)
    for start in range(0, ia.size, _PAIR_BATCH):
        diff = a[ia[start : start + _PAIR_BATCH]] - b[ib[start : start + _PAIR_BATCH]]
        out[start : start + _PAIR_BATCH] = (diff * diff).sum(axis=1)
    return out


def _chunk_rows(n_cols: int, block_bytes: int | None) -> int:
    return max(1, int((block_bytes or BLOCK_BYTES) // (8 * max(n_cols, 1))))


def knn_radii(features: np.ndarray, ks: Sequence[int], *, block_bytes: int | None = None) -> dict[int, np.ndarray]:
    """Distance of every feature to its k-th nearest other feature, for each k in KS (float64).

    Duplicates count as neighbours at distance 0; only the feature itself is left out.
    """
    x = _features(features, "the features")
    return {k: np.sqrt(r2) for k, r2 in _knn_squared(x, ks, block_bytes).items()}


def _knn_squared(x: np.ndarray, ks: Sequence[int], block_bytes: int | None) -> dict[int, np.ndarray]:
    """Squared k-NN radii, as the direct d² that every later comparison is decided on."""
    ks = sorted({_check_k(k, x.shape[0], "", "the radii") for k in ks})
    pts = _Points(x)
    top = ks[-1]  # position `top` (0-based) among distances that include the point itself (0)
    out = {k: np.empty(x.shape[0]) for k in ks}
    step = _chunk_rows(x.shape[0], block_bytes)
    for start in range(0, x.shape[0], step):
        rows = slice(start, min(start + step, x.shape[0]))
        d2, err = pts.fast(rows, pts)
        limit = np.partition(d2 + err, top, axis=1)[:, top]  # >= the true (top+1)-th smallest
        ri, cj = np.nonzero(d2 - err <= limit[:, None])  # every point that can be among them
        exact = _direct(x, x, ri + start, cj)
        order = np.lexsort((exact, ri))
        first = np.searchsorted(ri[order], np.arange(d2.shape[0]))
        for k in ks:
            out[k][rows] = exact[order][first + k]
    return out


def _relation(d2: np.ndarray, err: np.ndarray, limit: np.ndarray, strict: bool, pairs_of) -> np.ndarray:
    """d² < limit (strict) or d² <= limit, decided on the direct d² wherever the fast one is unsure."""
    inside = (d2 + err < limit) if strict else (d2 + err <= limit)
    unsure = ~inside & ((d2 - err < limit) if strict else (d2 - err <= limit))
    if unsure.any():
        ri, cj = np.nonzero(unsure)
        exact = pairs_of(ri, cj)
        bound = np.broadcast_to(limit, d2.shape)[ri, cj]
        inside[ri, cj] = exact < bound if strict else exact <= bound
    return inside


def prdc(real: np.ndarray, fake: np.ndarray, *, k_pr: int = DEFAULT_K_PR, k_dc: int = DEFAULT_K_DC,
         feature_space: str = "unknown", block_bytes: int | None = None) -> PRDC:
    """Precision, recall (k_pr), density, coverage (k_dc) of FAKE (M, d) against REAL (N, d)."""
    x = _features(real, "the real features")
    y = _features(fake, "the fake features")
    if x.shape[1] != y.shape[1]:
        raise StatisticsError(f"feature dimensions differ: real has d={x.shape[1]}, fake has d={y.shape[1]}")
    n, m = x.shape[0], y.shape[0]
    k_pr = _check_k(k_pr, n, "real", "precision/recall")
    _check_k(k_pr, m, "fake", "precision/recall")
    k_dc = _check_k(k_dc, n, "real", "density/coverage")
    real_r2 = _knn_squared(x, [k_pr, k_dc], block_bytes)
    r_pr, r_dc = real_r2[k_pr], real_r2[k_dc]
    s_pr = _knn_squared(y, [k_pr], block_bytes)[k_pr]
    xs, ys = _Points(x), _Points(y)
    in_precision = np.zeros(m, dtype=bool)
    density_hits = 0
    covered = np.zeros(n, dtype=bool)
    recalled = np.zeros(n, dtype=bool)
    step = _chunk_rows(n, block_bytes)
    for start in range(0, m, step):
        rows = slice(start, min(start + step, m))
        d2, err = ys.fast(rows, xs)  # (fakes in chunk, reals)

        def pairs(ri: np.ndarray, cj: np.ndarray, start: int = start) -> np.ndarray:
            return _direct(y, x, ri + start, cj)

        pr = _relation(d2, err, r_pr[None, :], False, pairs)
        dc = _relation(d2, err, r_dc[None, :], True, pairs)
        rc = _relation(d2, err, s_pr[rows][:, None], False, pairs)
        in_precision[rows] = pr.any(axis=1)
        density_hits += int(dc.sum())
        covered |= dc.any(axis=0)
        recalled |= rc.any(axis=0)
    return PRDC(precision=float(in_precision.mean()), recall=float(recalled.mean()),
                density=density_hits / (k_dc * m), coverage=float(covered.mean()), k_pr=k_pr, k_dc=k_dc,
                n_real=n, n_fake=m, feature_space=feature_space)
