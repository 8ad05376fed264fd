"""tr √(Λ + σ z zᵀ) − tr √Λ for many vectors z at once, to rounding accuracy.

Why: the leave-one-out (and add-one) FID of every image of a set needs the trace of the
square root of a rank-1 change of ONE fixed diagonal matrix Λ (see fidlens.metrics.attribution).
An eigen-decomposition per image costs O(d³); this costs O(r·Q) per image, Q ≈ 500
quadrature nodes, and evaluates a whole batch of images with a few matrix products.

The identity. For x ≥ 0, √x = (1/π) ∫₀^∞ x/(x+t) · t^(-1/2) dt, hence for a PSD matrix A
of size r, tr √A = (1/π) ∫₀^∞ (r − t·tr (A+t)⁻¹) t^(-1/2) dt. With A = Λ + σ z zᵀ and
R(t) = (Λ+t)⁻¹, Sherman–Morrison gives tr (A+t)⁻¹ = tr R − σ zᵀR²z / (1 + σ zᵀRz), so

    Δ(z) = tr √(Λ + σ z zᵀ) − tr √Λ = (σ/π) ∫₀^∞ t^(1/2) · zᵀR²z / D(t) dt,
    D(t) = 1 + σ zᵀR z.

Nothing is linearised: this is the exact change, only the integral is evaluated
numerically. The substitution t = eˢ makes the integrand g(s) = t^(3/2) zᵀR²z / D
analytic in the strip |Im s| < π (its poles sit at t = −λ_j and at t = −μ_k, the
eigenvalues of A, all on the negative real axis), so the trapezoidal rule in s converges
exponentially in 1/h; the step is halved until two successive rules agree to ``tol``.

Bounds that fix the range [t₀, T] without looking at the data (both cases below):
zᵀR²z ≤ zᵀR z / t and zᵀR²z ≤ zᵀΛ⁻¹R z, so the t-integrand is at most t^(-1/2)/π and
∫₀^t₀ ≤ (2/π)√t₀ (set to tol/400); for t ≥ T ≥ 2|σ|·|z|², D ≥ 1/2 and
∫_T^∞ ≤ (4/π)|σ||z|²/√T (set to tol/4), and the leading part of that upper tail,
(2σ/π)|z|²/√T, is added back, leaving O((λ_max + |σ||z|²)/T) of it.

Update (σ > 0): D ≥ 1, every term positive. Zero eigenvalues of Λ are allowed (a
candidate image may point out of the span of the set).

Downdate (σ < 0): Λ + σ z zᵀ must stay PSD, i.e. c₀ = 1 + σ Σ z_j²/λ_j ≥ 0 over λ_j > 0,
and z must vanish where λ_j = 0 (the caller drops those directions). D is evaluated as
D(t) = c₀ + |σ|·t·Σ z_j²/(λ_j(λ_j+t)), a sum of non-negative terms, so no cancellation
occurs as t → 0 even when the downdate makes the matrix singular (c₀ = 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fidlens.core.errors import StatisticsError

__all__ = ["QuadratureInfo", "trace_sqrt_rank1_delta"]

_START_STEP = 0.5  # in s = log t; the first accepted rule is usually h = 0.25
_MAX_HALVINGS = 6


@dataclass(frozen=True)
class QuadratureInfo:
    """What the quadrature did: nodes used, final step in log t, range, worst error estimate."""

    nodes: int
    step: float
    t_min: float
    t_max: float
    error_estimate: float


def _range(lam: np.ndarray, zz_max: float, tol: float) -> tuple[float, float]:
    """[t₀, T]: lower tail ≤ tol/400, upper tail ≤ tol/4 before its leading term is added back."""
    t_lo = (math.pi * tol / 800.0) ** 2
    t_hi = max((16.0 * zz_max / (math.pi * tol)) ** 2, 2.0 * zz_max, float(lam.max(initial=0.0)))
    return t_lo, max(t_hi, t_lo * 4.0)


def _integrand(s: np.ndarray, lam: np.ndarray, sq: np.ndarray, sigma: float,
               c0: np.ndarray | None) -> np.ndarray:
    """g(s) = t^(3/2) zᵀR²z / D(t) at nodes s (Q,) for rows of sq = z² (n, r); (n, Q)."""
    t = np.exp(s)
    inv = 1.0 / (lam[:, None] + t[None, :])  # (r, Q)
    a2 = sq @ (inv * inv)
    if sigma > 0:
        denom = 1.0 + sigma * (sq @ inv)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            inv_lam = np.where(lam > 0, 1.0 / lam, 0.0)
        denom = c0[:, None] + (-sigma) * t[None, :] * (sq @ (inv * inv_lam[:, None]))
    out = np.zeros_like(a2)
    np.divide(a2, denom, out=out, where=denom > 0)
    return out * t[None, :] ** 1.5


def trace_sqrt_rank1_delta(
    lam: np.ndarray, z: np.ndarray, sigma: float, *, tol: float, c0: np.ndarray | None = None
) -> tuple[np.ndarray, QuadratureInfo]:
    """Δ_i = tr √(diag(lam) + sigma z_i z_iᵀ) − tr √diag(lam) for every row z_i of z, each to ≤ tol.

    lam (r,) must be ≥ 0; z (n, r). For sigma < 0 pass only directions with lam > 0;
    ``c0`` (n,) may give c₀ = 1 + sigma Σ z²/lam when the caller knows it better (e.g.
    exactly 0); it is otherwise computed here and clipped at 0. The step is halved until
    two trapezoidal rules agree to ``tol`` for every row; the finer one is returned.
    """
    lam = np.asarray(lam, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    if lam.ndim != 1 or z.ndim != 2 or z.shape[1] != lam.shape[0]:
        raise StatisticsError(f"shapes do not fit: lam {lam.shape}, z {z.shape}")
    if not tol > 0:
        raise StatisticsError(f"tolerance must be positive, got {tol}")
    if (lam < 0).any():
        raise StatisticsError("eigenvalues must be non-negative (clip rounding noise first)")
    n = z.shape[0]
    sq = z * z
    zz = sq.sum(axis=1)
    zz_max = abs(sigma) * float(zz.max(initial=0.0))
    if n == 0 or zz_max == 0.0 or sigma == 0.0:
        return np.zeros(n), QuadratureInfo(0, 0.0, 0.0, 0.0, 0.0)
    if sigma < 0:
        if (lam <= 0).any():
            raise StatisticsError("a downdate needs strictly positive eigenvalues (drop the null space)")
        if c0 is None:
            c0 = 1.0 + sigma * (sq @ (1.0 / lam))
        c0 = np.clip(np.asarray(c0, dtype=np.float64), 0.0, None)

    t_lo, t_hi = _range(lam, zz_max, tol)
    s_lo, s_hi = math.log(t_lo), math.log(t_hi)
    count = math.ceil((s_hi - s_lo) / _START_STEP)
    step = (s_hi - s_lo) / count
    nodes = s_lo + step * np.arange(count + 1)
    values = _integrand(nodes, lam, sq, sigma, c0)
    ends = 0.5 * (values[:, 0] + values[:, -1])  # trapezoid: half weight at both ends
    total = values.sum(axis=1)
    scale = sigma / math.pi
    # leading term of the tail beyond T, (σ/π)∫_T^∞ |z|² t^(-3/2) dt (D → 1, R → 1/t); the
    # rest of that tail is O((λ_max + |σ||z|²)/T) smaller, far below tol
    tail = scale * 2.0 * zz / math.sqrt(t_hi)
    coarse = scale * step * (total - ends) + tail
    for _ in range(_MAX_HALVINGS):
        mids = nodes[:-1] + 0.5 * step
        total = total + _integrand(mids, lam, sq, sigma, c0).sum(axis=1)
        nodes = np.sort(np.concatenate([nodes, mids]))
        step *= 0.5
        fine = scale * step * (total - ends) + tail
        error = float(np.abs(fine - coarse).max())
        if error <= tol:
            return fine, QuadratureInfo(nodes.size, step, t_lo, t_hi, error)
        coarse = fine
    raise StatisticsError(f"the trace quadrature did not converge (estimated error {error:.3g} > {tol:.3g})")
