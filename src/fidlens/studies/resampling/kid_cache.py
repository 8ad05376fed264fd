"""KID of many draws from one small candidate pool, from kernel values computed once.

A resampling run measures KID for every repeat of every evaluation: each call draws 100
subsets and computes three m x m polynomial kernels of 2048-d features, which made KID
most of the demo's run time. Every kernel value is k(a, b) = (a.b / d + 1)^3 for a pair of
rows of the reals or of the candidate pool, and a draw only picks rows, so the kernels of
all pairs are computed once and each subset gathers its entries. The subsets, their order
and every sum are those of ``fidlens.metrics.kid.kernel_inception_distance``; the dot products are
the same BLAS products on the same rows, so the values agree with it (bit for bit on the
machines checked; tests hold them to 1e-12).

Only for pools whose kernels fit in memory (``fits``); larger runs call
``kernel_inception_distance`` on the drawn features as before.
"""

from __future__ import annotations

import numpy as np

from fidlens.metrics.kid import kernel_inception_distance

MAX_KERNEL_ENTRIES = 2**25  # 256 MB of float64 kernels at most


def _kernel(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    d = a.shape[1]
    gram = a @ (a if b is None else b).T  # a @ a.T: the product numpy computes for a subset too
    return (gram / d + 1.0) ** 3


class PooledKid:
    """KID (mean, std) of the reals against rows ``indices`` of the candidates, as kid.py computes it."""

    def __init__(self, reals: np.ndarray, candidates: np.ndarray):
        real64 = np.asarray(reals, dtype=np.float64)
        cand64 = np.asarray(candidates, dtype=np.float64)
        self.num_reals, self.num_candidates = len(real64), len(cand64)
        self.k_rr = _kernel(real64)
        self.k_cc = _kernel(cand64)
        self.k_rc = _kernel(real64, cand64)

    @staticmethod
    def fits(num_reals: int, num_candidates: int) -> bool:
        """Whether the three kernel matrices stay under MAX_KERNEL_ENTRIES."""
        n, m = num_reals, num_candidates
        return n * n + m * m + n * m <= MAX_KERNEL_ENTRIES

    def __call__(self, indices: np.ndarray, *, num_subsets: int, max_subset_size: int,
                 seed: int) -> tuple[float, float]:
        n1, n2 = self.num_reals, len(indices)
        m = min(n1, n2, max_subset_size)
        rng = np.random.default_rng(seed)
        off = 1.0 / (m * (m - 1))
        values = np.empty(num_subsets, dtype=np.float64)
        for i in range(num_subsets):  # the draw order of kernel_inception_distance: reals, then drawn
            rows = rng.choice(n1, size=m, replace=False)
            cols = np.asarray(indices)[rng.choice(n2, size=m, replace=False)]
            kxx = self.k_rr[np.ix_(rows, rows)]
            kyy = self.k_cc[np.ix_(cols, cols)]
            kxy = self.k_rc[np.ix_(rows, cols)]
            sum_xx = kxx.sum() - np.trace(kxx)
            sum_yy = kyy.sum() - np.trace(kyy)
            values[i] = float(sum_xx * off + sum_yy * off - 2.0 * kxy.mean())
        return float(values.mean()), float(values.std())


def drawn_kid(cache: PooledKid | None, reals: np.ndarray, candidates: np.ndarray, indices: np.ndarray, *,
              num_subsets: int, max_subset_size: int, seed: int) -> tuple[float, float]:
    """KID of the reals against candidates[indices]: from the cache when there is one."""
    if cache is None or num_subsets < 1 or max_subset_size < 2 or min(cache.num_reals, len(indices)) < 2:
        # kid.py's checks say what is wrong with settings or sets that the cache cannot serve
        return kernel_inception_distance(reals, candidates[indices], num_subsets=num_subsets,
                                         max_subset_size=max_subset_size, seed=seed)
    return cache(indices, num_subsets=num_subsets, max_subset_size=max_subset_size, seed=seed)
