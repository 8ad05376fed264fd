"""Weighted sums of the KID kernel over whole sets, without ever holding the kernel matrix.

KID's unbiased MMD² needs sums like Σ_{i≠j} k(x_i, x_j). A bootstrap resample or a random
subset is a vector of counts w over the rows, and its sums are the quadratic forms
wᵀKw − Σ_i w_i k(x_i, x_i). Many such vectors share one kernel: each block of K rows is
computed once, in float64, and applied to all count vectors together, so B resamples
cost one O(N² d) kernel pass plus O(N² B) multiply-adds, in O(chunk · N) memory.
"""

from __future__ import annotations

import numpy as np

__all__ = ["kernel_diagonal", "polynomial_kernel", "weighted_kernel_sums"]

# Bytes of one float64 block of kernel rows: small enough for any machine, large enough for BLAS.
BLOCK_BYTES = 64 * 2**20


def polynomial_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """k(a, b) = (a·b / d + 1)³ for all row pairs, float64 (KID's kernel, see `fidlens.metrics.kid`)."""
    d = a.shape[1]
    return (a @ b.T / d + 1.0) ** 3


def kernel_diagonal(x: np.ndarray) -> np.ndarray:
    """k(x_i, x_i) for every row: the terms an unbiased within-set sum leaves out."""
    x = np.asarray(x, dtype=np.float64)
    return (np.einsum("ij,ij->i", x, x) / x.shape[1] + 1.0) ** 3


def _as_columns(weights: np.ndarray, n: int, name: str) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 1:
        w = w[:, None]
    if w.ndim != 2 or w.shape[0] != n:
        raise ValueError(f"{name} must have {n} rows (one weight per sample), got shape {w.shape}")
    return w


def weighted_kernel_sums(
    x: np.ndarray,
    x_weights: np.ndarray,
    y: np.ndarray | None = None,
    y_weights: np.ndarray | None = None,
    *,
    block_bytes: int = BLOCK_BYTES,
) -> np.ndarray:
    """s_b = u_bᵀ K(x, y) v_b for every column b of the weights (K is never materialised).

    ``x_weights`` is (N_x, B) or (N_x,), ``y_weights`` (N_y, B) or (N_y,); a single column
    on one side is shared by every column of the other. ``y=None`` means y = x (and, if
    ``y_weights`` is None too, v = u: the quadratic forms uᵀKu, diagonal included).
    """
    xs = np.asarray(x, dtype=np.float64)
    ys = xs if y is None else np.asarray(y, dtype=np.float64)
    u = _as_columns(x_weights, xs.shape[0], "x_weights")
    v = u if y_weights is None and y is None else _as_columns(y_weights, ys.shape[0], "y_weights")
    if u.shape[1] != v.shape[1] and 1 not in (u.shape[1], v.shape[1]):
        raise ValueError(f"weights disagree on the number of columns: {u.shape[1]} and {v.shape[1]}")
    rows = max(1, int(block_bytes // (8 * max(ys.shape[0], 1))))
    total = np.zeros(max(u.shape[1], v.shape[1]), dtype=np.float64)
    for start in range(0, xs.shape[0], rows):
        block = polynomial_kernel(xs[start : start + rows], ys)  # (rows, N_y)
        applied = block @ v  # (rows, B_v)
        total += (u[start : start + rows] * applied).sum(axis=0)
    return total
