"""How the learned resampling weights relate to each candidate's exact ΔFID.

Why: resampling up-weights candidates that bring the pool's statistics closer to the reals.
The exact leave-one-out ΔFID_c = FID(pool without c) − FID(pool) of each candidate
(fidlens.metrics.attribution, against the reals' statistics in FID's own feature space) is
positive for a candidate FID wants (removing it raises FID); −ΔFID_c measures how much c hurts
the pool's FID. A strongly negative correlation between w and −ΔFID says the weights learned
what FID itself would pick one image at a time; a weak one that they learned something else
(another feature mode, or interactions that one-at-a-time removal does not see). Added to
summary.json and the log.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["MAX_CANDIDATES", "weights_vs_delta_fid"]

MAX_CANDIDATES = 50_000  # the attribution benchmark's size: minutes on 2 cores; larger pools are skipped


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank), for Spearman's coefficient."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(x.size)
    ranks[order] = np.arange(x.size, dtype=np.float64)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    if counts.max(initial=1) > 1:
        sums = np.bincount(inverse, weights=ranks)
        ranks = (sums / counts)[inverse]
    return ranks


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / denominator if denominator > 0 else math.nan


def weights_vs_delta_fid(weights: np.ndarray, candidates: np.ndarray, reals_mu: np.ndarray,
                         reals_sigma: np.ndarray) -> dict:
    """Pearson and Spearman correlation of the weights with −ΔFID of each candidate (or why not computed)."""
    w = np.asarray(weights, dtype=np.float64).ravel()
    n = len(candidates)
    if w.size != n:
        return {"skipped": f"{w.size} weights for {n} candidates"}
    if n < 3:
        return {"skipped": f"attribution needs at least 3 candidates, the pool has {n}"}
    if n > MAX_CANDIDATES:
        return {"skipped": f"the pool has {n} candidates, more than the {MAX_CANDIDATES} attribution is run on here"}
    from fidlens.metrics.attribution import attribute

    result = attribute(candidates, reals_mu, reals_sigma)
    minus_delta = -result.delta_fid
    return {
        "pearson": _pearson(w, minus_delta), "spearman": _pearson(_ranks(w), _ranks(minus_delta)),
        "candidates": n, "pool_fid": result.fid,
        "delta_fid": "FID(pool without the candidate) - FID(pool) against the reals, exact; -delta_fid > 0: the "
                     "candidate hurts the pool's FID (removing it lowers FID); a negative correlation: the weights "
                     "favour the candidates FID wants",
    }
