"""Exact per-image FID attribution: how FID changes when one image leaves (or joins) a set.

For a generated set with features X (N, d) and reference statistics (μr, Σr):

    ΔFID_i = FID(X without image i) − FID(X)        (leave-one-out, every i)
    ΔFID_c = FID(X with candidate c added) − FID(X)  (add-in, any candidate feature c)

Sign and rank: ΔFID_i < 0 means the set is closer to the reference without image i, so
the image hurts FID; rank 1 is the most negative ΔFID_i (the image whose removal lowers
FID the most), rank N the most positive (the image FID likes most). Ties keep index order.

Why it is cheap and exact (docs/METHODS_attribution.md has the derivation): removing x_i,
v = x_i − μ, moves the mean to μ − v/(N−1) and the scatter to C − N/(N−1)·v vᵀ. With k the
divisor of the convention (N−1 unbiased, N population) and k' the one after removal,
Σ₋ᵢ = a·Σ − β'·v vᵀ with a = k/k', β' = N/((N−1)k'). With W Wᵀ = Σr and
Wᵀ Σ W = Q Λ Qᵀ (one eigh for the whole set), the trace term of FID is
tr √(Wᵀ Σ₋ᵢ W) = √a · tr √(Λ − (β'/a) z zᵀ), z = Qᵀ Wᵀ v, which
fidlens.metrics.rank1_trace evaluates for all images at once to rounding accuracy.
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from fidlens.core.errors import StatisticsError
from fidlens.metrics.covariance import Covariance
from fidlens.metrics.frechet import _drop_noise, frechet_distance, mean_and_covariance
from fidlens.metrics.rank1_trace import QuadratureInfo, trace_sqrt_rank1_delta

__all__ = [
    "COVARIANCES",
    "Attribution",
    "FidAttribution",
    "attribute",
    "ranks_from_delta",
]

COVARIANCES = tuple(c.value for c in Covariance)
_EPS = float(np.finfo(np.float64).eps)
DEFAULT_RTOL = 1e-12  # quadrature tolerance relative to tr Σr + tr Σ (the scale of FID's terms)
# A covariance with an eigenvalue below -_NEGATIVE_TOL * (largest) is not a covariance.
_NEGATIVE_TOL = 1e-8


def _finite_2d(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise StatisticsError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise StatisticsError(f"{name} must be 2-D (N, d), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise StatisticsError(f"{name} contain NaN or infinite values (first at row {bad})")
    return arr


def _reference(mu: np.ndarray, sigma: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise StatisticsError(f"reference mu {mu.shape} and sigma {sigma.shape} do not fit together")
    if mu.shape[0] != d:
        raise StatisticsError(f"feature dimensions differ: reference has d={mu.shape[0]}, features have d={d}")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise StatisticsError("reference statistics contain NaN or infinite values")
    return mu, 0.5 * (sigma + sigma.T)


def _psd_factor(sigma: np.ndarray) -> np.ndarray:
    """W (d, r) with W Wᵀ = sigma, from eigh; refuses a matrix that is clearly not PSD."""
    lam, vec = np.linalg.eigh(sigma)
    top = float(lam.max()) if lam.size else 0.0
    if lam.size and lam.min() < -_NEGATIVE_TOL * max(top, 0.0):
        raise StatisticsError(
            f"reference covariance is not positive semi-definite (eigenvalues {lam.min():.3g} .. {top:.3g})")
    lam = _drop_noise(lam)
    keep = lam > 0
    return vec[:, keep] * np.sqrt(lam[keep])


@dataclass
class Attribution:
    """ΔFID per image of a set, with the FID of the whole set and how it was computed."""

    delta_fid: np.ndarray
    fid: float
    covariance: str
    names: list[str] | None = None
    quadrature: QuadratureInfo | None = None
    extra: dict = field(default_factory=dict)

    @property
    def ranks(self) -> np.ndarray:
        """1 = removing the image lowers FID the most (most harmful); N = raises it the most."""
        return ranks_from_delta(self.delta_fid)

    @property
    def order(self) -> np.ndarray:
        """Image indices from rank 1 (most harmful) to rank N (most helpful)."""
        return np.argsort(self.delta_fid, kind="stable")


def ranks_from_delta(delta: np.ndarray) -> np.ndarray:
    """Rank 1..N by ascending ΔFID (most negative first), ties in index order."""
    order = np.argsort(np.asarray(delta), kind="stable")
    ranks = np.empty(order.size, dtype=np.int64)
    ranks[order] = np.arange(1, order.size + 1)
    return ranks


class FidAttribution:
    """One O(d³) set-up for a generated set; then ΔFID for every image in O(N·d·(d + Q)).

    ``features`` (N, d) are the generated set, ``reference_mu``/``reference_sigma`` the
    reference statistics; ``covariance`` is the divisor convention of the generated set's
    covariance ('unbiased': N−1, 'population': N), kept after removal or addition.
    ``rtol`` bounds each trace change's quadrature error relative to tr Σr + tr Σ.
    """

    def __init__(
        self,
        features: np.ndarray,
        reference_mu: np.ndarray,
        reference_sigma: np.ndarray,
        *,
        covariance: str = "unbiased",
        rtol: float = DEFAULT_RTOL,
        chunk_size: int = 1024,
    ) -> None:
        convention = Covariance.parse(covariance)
        x = _finite_2d(features, "features")
        n, d = x.shape
        if n < 3:
            raise StatisticsError(f"attribution needs at least 3 images (a covariance after removing one), got {n}")
        if chunk_size < 1:
            raise StatisticsError(f"chunk_size must be positive, got {chunk_size}")
        self.features, self.n, self.dim = x, n, d
        self.covariance, self.chunk_size = convention.value, chunk_size
        self._ddof = convention.ddof
        self.ref_mu, self.ref_sigma = _reference(reference_mu, reference_sigma, d)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # N < d is expected and handled here
            self.mu, self.sigma = mean_and_covariance(x, unbiased=convention.unbiased)
        factor = _psd_factor(self.ref_sigma)  # (d, r); refuses a non-PSD reference first
        self.fid = frechet_distance(self.ref_mu, self.ref_sigma, self.mu, self.sigma)
        m = factor.T @ (self.sigma @ factor)
        lam, q = np.linalg.eigh(0.5 * (m + m.T))
        self.lam = _drop_noise(lam)
        self.projection = factor @ q  # z = projectionᵀ v
        self.trace_sqrt = float(np.sqrt(self.lam).sum())
        self.trace_ref = float(np.trace(self.ref_sigma))
        self.trace_gen = float(np.trace(self.sigma))
        self.tol = rtol * (self.trace_ref + self.trace_gen)
        self.rank = int((self.lam > 0).sum())

    # ------------------------------------------------------------------ conventions

    def _divisor(self, count: int) -> int:
        return count - self._ddof

    def _scales(self, remove: bool) -> tuple[float, float, float]:
        """(a − 1, β', σ): Σ' = a·Σ ∓ β' v vᵀ and the normalised rank-1 coefficient σ = ∓β'/a."""
        n, k = self.n, self._divisor(self.n)
        if remove:
            k_new = self._divisor(n - 1)
            beta = n / ((n - 1) * k_new)
        else:
            k_new = self._divisor(n + 1)
            beta = n / ((n + 1) * k_new)
        a = k / k_new
        return (k - k_new) / k_new, beta, (-beta if remove else beta) / a

    # ------------------------------------------------------------------ core

    def _delta(self, rows: np.ndarray, remove: bool) -> tuple[np.ndarray, QuadratureInfo, float]:
        """ΔFID for feature rows (n, d) removed from / added to the set; also the null-space leak."""
        a_minus_1, beta, sigma_norm = self._scales(remove)
        a = 1.0 + a_minus_1
        n = self.n
        v = rows.astype(np.float64) - self.mu
        vv = np.einsum("ij,ij->i", v, v)
        gap = self.ref_mu - self.mu
        if remove:
            d_mean = 2.0 * (v @ gap) / (n - 1) + vv / (n - 1) ** 2
        else:
            d_mean = -2.0 * (v @ gap) / (n + 1) + vv / (n + 1) ** 2
        d_trace = a_minus_1 * self.trace_gen + (-beta if remove else beta) * vv
        z = v @ self.projection
        leak = 0.0
        if remove:
            keep = self.lam > 0
            if not keep.all():
                norm = np.sqrt(np.einsum("ij,ij->i", z, z))
                null = np.sqrt(np.einsum("ij,ij->i", z[:, ~keep], z[:, ~keep]))
                leak = float((null / np.where(norm > 0, norm, 1.0)).max(initial=0.0))
            lam, z = self.lam[keep], z[:, keep]
            c0 = self._c0(z, lam, sigma_norm)
        else:
            lam, c0 = self.lam, None
        change, info = trace_sqrt_rank1_delta(lam, z, sigma_norm, tol=self.tol, c0=c0)
        root_a_minus_1 = a_minus_1 / (math.sqrt(a) + 1.0)
        d_sqrt = root_a_minus_1 * self.trace_sqrt + math.sqrt(a) * change
        return d_mean + d_trace - 2.0 * d_sqrt, info, leak

    def _c0(self, z: np.ndarray, lam: np.ndarray, sigma_norm: float) -> np.ndarray:
        """c₀ = 1 − (N/(N−1))·h_i, h_i the leverage of image i in the reference-projected set.

        When the projected set has full rank N−1 (N−1 ≤ r: every image is needed to span
        it), the leverages are exactly (N−1)/N and c₀ = 0: removing any image makes the
        covariance singular, so it is set exactly. Otherwise it is computed and values at
        rounding level (≤ r·eps, which would give an eigenvalue below fidlens.metrics.frechet's
        noise floor) are set to 0.
        """
        if self.rank == self.n - 1:
            return np.zeros(z.shape[0])
        c0 = 1.0 + sigma_norm * ((z * z) @ (1.0 / lam))
        return np.where(c0 > lam.size * _EPS, c0, 0.0)

    def _chunked(self, rows: np.ndarray, remove: bool) -> tuple[np.ndarray, QuadratureInfo, float]:
        out = np.empty(rows.shape[0])
        worst: QuadratureInfo | None = None
        leak = 0.0
        for start in range(0, rows.shape[0], self.chunk_size):
            part, info, part_leak = self._delta(rows[start : start + self.chunk_size], remove)
            out[start : start + part.size] = part
            leak = max(leak, part_leak)
            if worst is None or info.nodes > worst.nodes or info.error_estimate > worst.error_estimate:
                worst = info
        return out, worst or QuadratureInfo(0, 0.0, 0.0, 0.0, 0.0), leak

    def leave_one_out(self) -> tuple[np.ndarray, QuadratureInfo, float]:
        """(ΔFID_i for every image, quadrature info of the worst chunk, null-space leak of z)."""
        return self._chunked(self.features, remove=True)

    def add_in(self, candidates: np.ndarray) -> np.ndarray:
        """ΔFID_c = FID(set ∪ {c}) − FID(set) for every row c of ``candidates`` (M, d)."""
        c = _finite_2d(candidates, "candidate features")
        if c.shape[1] != self.dim:
            raise StatisticsError(f"feature dimensions differ: candidates have d={c.shape[1]}, the set has d={self.dim}")
        return self._chunked(c, remove=False)[0]


def attribute(
    features: np.ndarray,
    reference_mu: np.ndarray,
    reference_sigma: np.ndarray,
    *,
    names: Sequence[str] | None = None,
    covariance: str = "unbiased",
    rtol: float = DEFAULT_RTOL,
) -> Attribution:
    """Leave-one-out ΔFID of every image of a set against reference statistics."""
    if names is not None and len(names) != len(features):
        raise StatisticsError(f"{len(names)} names for {len(features)} feature rows")
    model = FidAttribution(features, reference_mu, reference_sigma, covariance=covariance, rtol=rtol)
    delta, info, leak = model.leave_one_out()
    return Attribution(delta_fid=delta, fid=model.fid, covariance=model.covariance,
                       names=list(names) if names is not None else None, quadrature=info,
                       extra={"null_space_leak": leak, "rank": model.rank, "tolerance": model.tol})


def ranking_csv_text(result: Attribution) -> str:
    """``index,name,delta_fid,rank`` rows in rank order; ΔFID with round-trip precision."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["index", "name", "delta_fid", "rank"])
    ranks = result.ranks
    for i in result.order:
        name = result.names[i] if result.names is not None else ""
        writer.writerow([int(i), name, repr(float(result.delta_fid[i])), int(ranks[i])])
    return buffer.getvalue()
