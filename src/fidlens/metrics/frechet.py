"""Exact Fréchet distance between Gaussians fitted to feature sets, in float64.

FID = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2}).

Why not ``scipy.linalg.sqrtm(S1 @ S2)``: the product of two covariances is not
symmetric, so a general (Schur) square root is slow, can return spurious complex
parts and loses accuracy. The trace term only needs the eigenvalues of
``(S1 S2)^{1/2}``; those are the square roots of the eigenvalues of the *symmetric
PSD* matrix ``M = A S2 A`` with ``A = S1^{1/2}`` (``M`` is similar to ``S1 S2``).
More generally ``F^T S2 F`` has the same eigenvalues for any factor ``F F^T = S1``;
the numpy path uses a Cholesky factor when ``S1`` is well conditioned (cheapest) and
the ``eigh`` factor ``V sqrt(D)`` otherwise (robust for singular ``S1``). A symmetric
eigensolve is both faster and more accurate than ``sqrtm``.

When both feature sets have fewer samples than dimensions, the trace term is the
nuclear norm of a small cross-Gram matrix (``frechet_distance_from_features``),
which is exact and avoids ever forming ``d x d`` matrices.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.linalg.lapack

from fidlens.core.errors import StatisticsError

__all__ = [
    "MAX_DIM",
    "FewSamplesWarning",
    "ReferenceStatistics",
    "certify_psd",
    "check_eigenvalues",
    "check_statistics",
    "check_statistics_layout",
    "frechet_distance",
    "frechet_distance_from_features",
    "frechet_distance_torch",
    "matrix_sqrt_psd",
    "mean_and_covariance",
    "sqrt_trace_term",
    "trace_sqrt_psd",
]


class FewSamplesWarning(UserWarning):
    """Fewer samples than feature dimensions: the covariance is singular, FID is biased."""


# ----------------------------------------------------------------------------- validation


def _warn_few_samples(n: int, d: int, stacklevel: int = 3) -> None:
    warnings.warn(
        f"covariance is singular (N={n} < d={d}); FID is defined but biased",
        FewSamplesWarning,
        stacklevel=stacklevel,
    )


# Limits on statistics: beyond these a file is damaged or hostile, not a feature space.
MAX_DIM = 100_000
# Relative asymmetry max|S - S^T| / max|S| that is still rounding (it is then symmetrised).
ASYMMETRY_RTOL = 1e-6
# Smallest eigenvalue / largest |eigenvalue| below -INDEFINITE_RTOL: not a covariance.
# Rounding negatives of a singular covariance (N < d) are ~1e-15 in float64 and ~1e-8
# when the file stored float32; a materially indefinite matrix is far beyond both.
INDEFINITE_RTOL = 1e-5
# A total FID below -NEGATIVE_FID_RTOL * (||dmu||^2 + tr S1 + tr S2) is not rounding.
NEGATIVE_FID_RTOL = 1e-8


def _check_numeric(arr: np.ndarray, name: str) -> None:
    kind = arr.dtype.kind
    if kind == "c":
        raise StatisticsError(
            f"{name} is complex ({arr.dtype}); statistics must be real, and fidlens will not drop "
            "an imaginary part silently"
        )
    if kind in "USa":
        raise StatisticsError(f"{name} holds text (dtype {arr.dtype}), not numbers")
    if kind not in "fiu":
        raise StatisticsError(f"{name} must be a real numeric array, got dtype {arr.dtype}")


def _check_dim(d: int, name: str) -> None:
    if d < 1:
        raise StatisticsError(f"{name} has no feature dimensions (d=0)")
    if d > MAX_DIM:
        raise StatisticsError(f"{name} has d={d} feature dimensions, more than the {MAX_DIM} fidlens accepts")


def asymmetry(sigma: np.ndarray) -> float:
    """max|S - S^T| / max|S| (0 for a zero matrix): how far S is from symmetric, relatively."""
    return _symmetrised(sigma)[1]


# Rows per block of the one-pass symmetrisation: S^T is read a block of columns at a time,
# which keeps the transposed reads in cache (about 3x faster than S + S.T at d = 2048).
_SYM_BLOCK = 256


def _symmetrised(sigma: np.ndarray) -> tuple[np.ndarray, float]:
    """((S + S^T) / 2, max|S - S^T| / max|S|) of a square float64 matrix in one blocked pass.

    Element for element the same operations as ``0.5 * (S + S.T)`` (bit-identical result);
    this is every FID's first step on each covariance, so its speed is felt by the CLI.
    """
    d = sigma.shape[0]
    out = np.empty_like(sigma)
    top = max(float(sigma.max()), -float(sigma.min())) if sigma.size else 0.0
    skew = 0.0
    for start in range(0, d, _SYM_BLOCK):
        rows = sigma[start:start + _SYM_BLOCK]
        mirror = sigma[:, start:start + _SYM_BLOCK].T.copy()  # a copy: overwritten below
        np.add(rows, mirror, out=out[start:start + _SYM_BLOCK])
        np.subtract(rows, mirror, out=mirror)
        skew = max(skew, float(mirror.max()), -float(mirror.min()))
    out *= 0.5
    return out, (skew / top if top > 0.0 else 0.0)


def _features(x: Any, name: str) -> np.ndarray:
    """Return ``x`` as a 2-D real array without copying; finiteness is checked by callers."""
    arr = np.asarray(x)
    _check_numeric(arr, name)
    if arr.ndim != 2:
        raise StatisticsError(f"{name} must be 2-D (N, d), got shape {arr.shape}")
    n, d = arr.shape
    if n < 2:
        raise StatisticsError(f"{name} needs at least 2 samples to estimate a covariance, got {n}")
    if d < 1:
        raise StatisticsError(f"{name} has no feature dimensions (shape {arr.shape})")
    return arr


def _finite_or_raise(arr: np.ndarray, name: str) -> None:
    if not np.isfinite(arr).all():
        raise StatisticsError(f"{name} contains NaN or infinite values")


def _mean_vec(mu: Any, name: str) -> np.ndarray:
    arr = np.asarray(mu)
    _check_numeric(arr, name)
    if arr.ndim != 1:
        raise StatisticsError(f"{name} must be 1-D (d,), got shape {arr.shape}")
    _check_dim(arr.shape[0], name)
    arr = arr.astype(np.float64, copy=False)
    _finite_or_raise(arr, name)
    return arr


def _cov_mat(sigma: Any, name: str) -> np.ndarray:
    """Validate a covariance and return its float64 symmetrisation (A + A^T) / 2.

    Only rounding-level asymmetry is symmetrised away; a matrix that is materially
    non-symmetric is not a covariance (a damaged or transposed-wrong file) and is refused.
    """
    arr = np.asarray(sigma)
    _check_numeric(arr, name)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise StatisticsError(f"{name} must be a square 2-D (d, d) matrix, got shape {arr.shape}")
    _check_dim(arr.shape[0], name)
    arr = arr.astype(np.float64, copy=False)
    _finite_or_raise(arr, name)
    sym, skew = _symmetrised(arr)
    if skew > ASYMMETRY_RTOL:
        raise StatisticsError(
            f"{name} is not symmetric: max|S - S^T| / max|S| = {skew:.3g} (rounding allows {ASYMMETRY_RTOL:g})"
        )
    return sym


def check_statistics(mu: Any, sigma: Any, name: str = "statistics") -> tuple[np.ndarray, np.ndarray]:
    """Refuse mu/sigma that cannot be a Gaussian's parameters; return (mu, symmetrised sigma) in float64.

    The structural checks every reader of statistics shares (O(d^2)): real numeric dtype,
    1 <= d <= MAX_DIM, shapes that fit, finite values, symmetric up to rounding. Whether
    sigma is positive semi-definite needs its spectrum and is checked where FID computes it.
    """
    m = _mean_vec(mu, f"mu of {name}")
    s = _cov_mat(sigma, f"sigma of {name}")
    if m.shape[0] != s.shape[0]:
        raise StatisticsError(f"{name}: mu {m.shape} and sigma {s.shape} do not fit together")
    return m, s


def check_statistics_layout(
    mu_shape: tuple[int, ...],
    mu_dtype: np.dtype,
    sigma_shape: tuple[int, ...],
    sigma_dtype: np.dtype,
    name: str = "statistics",
) -> None:
    """The checks of `check_statistics` that need only shapes and dtypes (e.g. a file's headers).

    Run before loading, so that a file declaring text, complex numbers or a 10^6 x 10^6
    covariance is refused without allocating anything.
    """
    _check_numeric(np.empty(0, dtype=mu_dtype), f"mu of {name}")
    _check_numeric(np.empty(0, dtype=sigma_dtype), f"sigma of {name}")
    if len(mu_shape) != 1:
        raise StatisticsError(f"mu of {name} must be 1-D (d,), got shape {tuple(mu_shape)}")
    if len(sigma_shape) != 2 or sigma_shape[0] != sigma_shape[1]:
        raise StatisticsError(f"sigma of {name} must be a square 2-D (d, d) matrix, got shape {tuple(sigma_shape)}")
    _check_dim(mu_shape[0], f"mu of {name}")
    _check_dim(sigma_shape[0], f"sigma of {name}")
    if mu_shape[0] != sigma_shape[0]:
        raise StatisticsError(f"{name}: mu {tuple(mu_shape)} and sigma {tuple(sigma_shape)} do not fit together")


def check_eigenvalues(lam: np.ndarray, name: str) -> None:
    """Refuse a covariance whose eigenvalues ``lam`` are materially negative (see INDEFINITE_RTOL)."""
    if not lam.size:
        return
    low, high = float(lam.min()), float(lam.max())
    scale = max(abs(low), abs(high))
    if low < 0.0 and (scale == 0.0 or low < -INDEFINITE_RTOL * scale):
        count = int(np.count_nonzero(lam < -INDEFINITE_RTOL * scale))
        raise StatisticsError(
            f"{name} is not a covariance: it is indefinite, smallest eigenvalue {low:.6g}, largest {high:.6g} "
            f"({count} eigenvalue(s) below -{INDEFINITE_RTOL:g} x the largest magnitude)"
        )


def certify_psd(sym: np.ndarray, name: str) -> None:
    """Refuse a symmetric float64 matrix that is materially indefinite, without an eigensolve if possible.

    A pivoted Cholesky (LAPACK ``dpstrf``) factors the positive part: rank r costs O(d^2 r),
    full rank one Cholesky. With P^T S P = [L1; L2][L1; L2]^T + diag(0, R) the remainder R
    bounds the most negative eigenvalue: x^T S x >= -||R||_2 |x|^2 >= -||R||_F |x|^2, and the
    largest eigenvalue is at least max(diag S). So ||R||_F <= INDEFINITE_RTOL * max(diag S)
    proves the matrix acceptable; only otherwise is the spectrum computed (``eigvalsh``),
    to decide and to report the smallest and largest eigenvalue.
    """
    d = sym.shape[0]
    top = float(sym.diagonal().max()) if d else 0.0
    if top > 0.0:
        factor, piv, rank, _info = scipy.linalg.lapack.dpstrf(sym, lower=1, tol=1e-7 * top)
        if rank == d:
            return
        order = piv[:d] - 1
        low = factor[rank:, :rank]  # strictly below the diagonal: the computed L2
        rest = sym[np.ix_(order[rank:], order[rank:])] - low @ low.T
        if float(np.linalg.norm(rest)) <= INDEFINITE_RTOL * top:
            return
    check_eigenvalues(np.linalg.eigvalsh(sym), name)


def _check_pair(mu: np.ndarray, sigma: np.ndarray, label: str) -> int:
    if mu.shape[0] != sigma.shape[0]:
        raise StatisticsError(
            f"{label}: mean has d={mu.shape[0]} but covariance is {sigma.shape[0]}x{sigma.shape[1]}"
        )
    return mu.shape[0]


def _check_same_dim(d1: int, d2: int, names: tuple[str, str] | None = None) -> None:
    if d1 != d2:
        a, b = names or ("set 1", "set 2")
        raise StatisticsError(f"feature dimensions differ: {a} has d={d1}, {b} has d={d2}")


# ----------------------------------------------------------------------------- statistics


def mean_and_covariance(
    features: np.ndarray, *, unbiased: bool = True, chunk_size: int = 8192
) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and covariance (d, d) in float64 of features (N, d).

    Accumulates chunk by chunk (two passes: the mean, then centred X^T X), so a large
    float32 array is never copied whole to float64 and the centred accumulation does
    not suffer the cancellation of the one-pass E[xx^T] - mu mu^T formula.
    Divides by N-1 when ``unbiased`` else by N.
    """
    x = _features(features, "features")
    if chunk_size < 1:
        raise StatisticsError(f"chunk_size must be positive, got {chunk_size}")
    n, d = x.shape
    if n < d:
        _warn_few_samples(n, d)

    total = np.zeros(d, dtype=np.float64)
    for start in range(0, n, chunk_size):
        block = x[start : start + chunk_size].astype(np.float64, copy=False)
        if not np.isfinite(block).all():
            raise StatisticsError(
                f"features contain NaN or infinite values (rows {start}..{start + len(block) - 1})"
            )
        total += block.sum(axis=0)
    mu = total / n

    scatter = np.zeros((d, d), dtype=np.float64)
    for start in range(0, n, chunk_size):
        block = x[start : start + chunk_size] - mu  # float64 result: a fresh, centred chunk
        scatter += block.T @ block
    sigma = scatter / (n - 1 if unbiased else n)
    sigma = 0.5 * (sigma + sigma.T)
    return mu, sigma


# ----------------------------------------------------------------------------- numpy FID


_EPS = float(np.finfo(np.float64).eps)


def _drop_noise(lam: np.ndarray) -> np.ndarray:
    """Zero the eigenvalues that are rounding noise: lam <= d * eps * max(lam).

    A symmetric eigensolver returns the zero eigenvalues of a singular covariance as
    +-eps * ||A|| noise, and the square root amplifies that noise to sqrt(eps) ~ 1e-8
    relative per eigenvalue (with hundreds of them when N < d). Dropping them makes the
    covariance route agree with the exact Gram route to ~1e-15 instead of ~1e-8; for a
    full-rank matrix the change is below the rounding error of the result itself.
    """
    top = float(lam.max()) if lam.size else 0.0
    floor = max(top, 0.0) * lam.size * _EPS
    return np.where(lam > floor, lam, 0.0)


def _psd_factor(sym: np.ndarray, name: str = "sigma") -> np.ndarray:
    """W (d, r) with W W^T = sym: eigenvectors scaled by sqrt(eigenvalue), kept ones only.

    ``sym`` must already be symmetric float64. W = V_r diag(sqrt(lam_r)), so
    W^T B W = D^{1/2} V_r^T B V_r D^{1/2} is orthogonally similar to S B S with
    S = sym^{1/2}: same eigenvalues, one matrix product fewer, and r x r instead of
    d x d when ``sym`` is singular. The eigenvalues also prove ``sym`` is a covariance
    (not materially indefinite) at no extra cost.
    """
    w, v = np.linalg.eigh(sym)
    check_eigenvalues(w, name)
    w = _drop_noise(w)
    keep = w > 0.0
    return v[:, keep] * np.sqrt(w[keep])


# Cholesky is used for the factor of sigma1 only when sigma1 is this well conditioned:
# then no eigenvalue is anywhere near the noise floor that _drop_noise would remove, and
# the Cholesky and eigh factors give the same trace term to rounding.
_CHOLESKY_MIN_RCOND = 1e-9


def _fast_factor(sym: np.ndarray, name: str = "sigma1") -> np.ndarray:
    """A factor F with F F^T = sym: Cholesky when sym is well conditioned, else ``eigh``.

    Any such F gives eig(F^T B F) = eig(sym B), so the trace term does not depend on
    which factor is used. Cholesky costs a fraction of ``eigh`` (about 0.13 s against
    0.75 s at d = 2048 here); singular or ill-conditioned covariances (N < d) take the
    ``eigh`` route, whose noise-eigenvalue handling they need. Either route proves that
    ``sym`` is not materially indefinite: a Cholesky exists only for a positive definite
    matrix, and the ``eigh`` route checks the eigenvalues it computes.
    """
    try:
        low = np.linalg.cholesky(sym)
    except np.linalg.LinAlgError:
        return _psd_factor(sym, name)
    anorm = float(np.abs(sym).sum(axis=0).max())
    rcond, info = scipy.linalg.lapack.dpocon(low, anorm, uplo="L")
    if info != 0 or not rcond > _CHOLESKY_MIN_RCOND:
        return _psd_factor(sym, name)
    return low


def matrix_sqrt_psd(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix via ``eigh``.

    Negative and noise-level eigenvalues (rounding noise of a singular covariance, see
    ``_drop_noise``) are set to 0, so the result is always real, symmetric and PSD.
    """
    s = _cov_mat(sigma, "sigma")
    w, v = np.linalg.eigh(s)
    check_eigenvalues(w, "sigma")
    root = (v * np.sqrt(_drop_noise(w))) @ v.T
    return 0.5 * (root + root.T)


def _trace_sqrt_from_factor(factor1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr((S1 S2)^{1/2}) = sum sqrt(eig(W^T S2 W)) given S1 = W W^T and symmetric S2.

    W^T S2 W has the same non-zero eigenvalues as S1 S2 (and as S1^{1/2} S2 S1^{1/2})
    but is symmetric PSD, so ``eigvalsh`` applies.
    """
    m = factor1.T @ (sigma2 @ factor1)
    m = 0.5 * (m + m.T)
    lam = np.linalg.eigvalsh(m)
    return float(np.sqrt(_drop_noise(lam)).sum())


def sqrt_trace_term(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr((Sigma1 Sigma2)^{1/2}), the only non-trivial part of FID.

    Computed as sum sqrt(eig(F^T Sigma2 F)) with F F^T = Sigma1 (F = Sigma1^{1/2} from
    ``eigh``, or the Cholesky factor when Sigma1 is well conditioned; same eigenvalues):
    F^T Sigma2 F is similar to Sigma1 Sigma2 but symmetric PSD, so its eigenvalues are
    real and non-negative and a symmetric eigensolver gives them fast and accurately.
    """
    s1 = _cov_mat(sigma1, "sigma1")
    s2 = _cov_mat(sigma2, "sigma2")
    _check_same_dim(s1.shape[0], s2.shape[0])
    factor = _fast_factor(s1, "sigma1")
    certify_psd(s2, "sigma2")
    return _trace_sqrt_from_factor(factor, s2)


def _assemble(mean_sq: float, tr1: float, tr2: float, tr_sqrt: float) -> float:
    """The FID total; rounding negatives become 0, a real negative is refused with its value.

    FID >= 0 mathematically, so a value like -1e-12 is rounding noise, not information;
    but clipping must never hide a negative that comes from inconsistent statistics.
    """
    total = float(mean_sq + tr1 + tr2 - 2.0 * tr_sqrt)
    scale = abs(mean_sq) + abs(tr1) + abs(tr2) + 2.0 * abs(tr_sqrt)
    if total < -NEGATIVE_FID_RTOL * scale:
        raise StatisticsError(
            f"FID came out negative ({total:.6g}; rounding allows {-NEGATIVE_FID_RTOL * scale:.3g}): "
            f"the statistics are inconsistent (||mu1-mu2||^2 = {mean_sq:.6g}, tr S1 = {tr1:.6g}, "
            f"tr S2 = {tr2:.6g}, tr sqrt(S1 S2) = {tr_sqrt:.6g})"
        )
    return max(total, 0.0)


def _side_names(names: tuple[str, str] | None) -> tuple[tuple[str, str, str], tuple[str, str, str]]:
    """(mu name, sigma name, set name) for each side of a comparison, for error messages."""
    if names is None:
        return ("mu1", "sigma1", "set 1"), ("mu2", "sigma2", "set 2")
    a, b = names
    return (f"mu of {a}", f"sigma of {a}", a), (f"mu of {b}", f"sigma of {b}", b)


def frechet_distance(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    *,
    names: tuple[str, str] | None = None,
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), exact in float64.

    Inputs are validated (real, shapes, matching d, finite, symmetric up to rounding, not
    materially indefinite) and symmetrised; ``names`` (e.g. the two file names) label the
    two sides in error messages. Tiny negative results from rounding are clipped to 0; a
    real negative is an error. Cost: one Cholesky (or ``eigh`` if sigma1 is singular or ill
    conditioned) of sigma1, a pivoted Cholesky of sigma2 (the proof that it is PSD), two
    matrix products and one ``eigvalsh``.
    """
    (mu1_n, s1_n, set1), (mu2_n, s2_n, set2) = _side_names(names)
    m1, s1 = _mean_vec(mu1, mu1_n), _cov_mat(sigma1, s1_n)
    m2, s2 = _mean_vec(mu2, mu2_n), _cov_mat(sigma2, s2_n)
    d1 = _check_pair(m1, s1, set1)
    d2 = _check_pair(m2, s2, set2)
    _check_same_dim(d1, d2, names)
    diff = m1 - m2
    factor = _fast_factor(s1, s1_n)
    certify_psd(s2, s2_n)
    tr_sqrt = _trace_sqrt_from_factor(factor, s2)
    return _assemble(float(diff @ diff), float(np.trace(s1)), float(np.trace(s2)), tr_sqrt)


class ReferenceStatistics:
    """Reference (e.g. real-data) statistics with Sigma^{1/2} precomputed.

    Comparing one reference against many generated sets then costs two matrix products
    and one ``eigvalsh`` per comparison; the ``eigh`` of the reference is paid once.
    Attributes: ``mu``, ``sigma`` (symmetrised float64), ``sqrt_sigma`` (Sigma^{1/2}),
    ``trace`` (tr Sigma), ``dim``.
    """

    def __init__(self, mu: np.ndarray, sigma: np.ndarray) -> None:
        self.mu = _mean_vec(mu, "mu")
        self.sigma = _cov_mat(sigma, "sigma")
        self.dim = _check_pair(self.mu, self.sigma, "reference")
        w, v = np.linalg.eigh(self.sigma)
        check_eigenvalues(w, "sigma")
        root_w = np.sqrt(_drop_noise(w))
        keep = root_w > 0.0
        # W = V_r sqrt(D_r), W W^T = sigma: used by fid(); sqrt_sigma = V sqrt(D) V^T
        self._factor = v[:, keep] * root_w[keep]
        root = (v * root_w) @ v.T
        self.sqrt_sigma = 0.5 * (root + root.T)
        self.trace = float(np.trace(self.sigma))

    @classmethod
    def from_features(cls, features: np.ndarray, *, unbiased: bool = True) -> ReferenceStatistics:
        """Fit the reference Gaussian to features (N, d)."""
        return cls(*mean_and_covariance(features, unbiased=unbiased))

    def fid(self, mu2: np.ndarray, sigma2: np.ndarray) -> float:
        """FID between this reference (as set 1) and N(mu2, sigma2)."""
        m2, s2 = _mean_vec(mu2, "mu2"), _cov_mat(sigma2, "sigma2")
        _check_same_dim(self.dim, _check_pair(m2, s2, "set 2"))
        certify_psd(s2, "sigma2")
        return self._fid_to(m2, s2)

    def fid_of_features(self, features: np.ndarray, *, unbiased: bool = True) -> float:
        """FID between this reference and Gaussians fitted to FEATURES (N, d): ``fid(*mean_and_covariance(x))``.

        The same numbers, without the proof that the covariance is PSD: one computed here as
        X^T X is PSD by construction (the proof is for files, which can be damaged). Loops that
        score many draws (resampling) spend a third of their time on that proof otherwise.
        """
        mu2, sigma2 = mean_and_covariance(features, unbiased=unbiased)
        s2, _skew = _symmetrised(sigma2)
        _check_same_dim(self.dim, s2.shape[0])
        return self._fid_to(mu2, s2)

    def _fid_to(self, mu2: np.ndarray, sigma2: np.ndarray) -> float:
        """The distance itself, for a checked mean and a symmetrised PSD covariance."""
        diff = self.mu - mu2
        tr_sqrt = _trace_sqrt_from_factor(self._factor, sigma2)
        return _assemble(float(diff @ diff), self.trace, float(np.trace(sigma2)), tr_sqrt)

    def __repr__(self) -> str:
        return f"ReferenceStatistics(dim={self.dim}, trace={self.trace:.6g})"


def frechet_distance_from_features(
    x1: np.ndarray, x2: np.ndarray, *, unbiased: bool = True
) -> float:
    """FID between Gaussians fitted to two feature sets (N1, d) and (N2, d).

    If both N1 < d and N2 < d the exact Gram route is used: with centred features
    X1, X2 and c = N-1 (or N), tr((S1 S2)^{1/2}) equals the nuclear norm of
    X1 X2^T / sqrt(c1 c2), an N1 x N2 matrix, so no d x d matrix is built.
    Otherwise this is ``frechet_distance(*mean_and_covariance(x1), *mean_and_covariance(x2))``.
    """
    a = _features(x1, "x1")
    b = _features(x2, "x2")
    _check_same_dim(a.shape[1], b.shape[1])
    (n1, d), n2 = a.shape, b.shape[0]
    if not (n1 < d and n2 < d):
        mu1, s1 = mean_and_covariance(a, unbiased=unbiased)
        mu2, s2 = mean_and_covariance(b, unbiased=unbiased)
        return frechet_distance(mu1, s1, mu2, s2)

    a = a.astype(np.float64, copy=False)
    b = b.astype(np.float64, copy=False)
    _finite_or_raise(a, "x1")
    _finite_or_raise(b, "x2")
    _warn_few_samples(n1, d)
    _warn_few_samples(n2, d)
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    c1 = a - mu1
    c2 = b - mu2
    k1 = (n1 - 1) if unbiased else n1
    k2 = (n2 - 1) if unbiased else n2
    diff = mu1 - mu2
    cross = (c1 @ c2.T) / np.sqrt(float(k1) * float(k2))
    tr_sqrt = float(np.linalg.svd(cross, compute_uv=False).sum())
    tr1 = float(np.einsum("ij,ij->", c1, c1)) / k1
    tr2 = float(np.einsum("ij,ij->", c2, c2)) / k2
    return _assemble(float(diff @ diff), tr1, tr2, tr_sqrt)


# ----------------------------------------------------------------------------- torch FID
#
# torch is imported lazily so that the numpy path does not pay its import cost.

_REL_EIG_TOL = 1e-12


def _torch_functions() -> tuple[Any, Any]:
    """Build (once) the custom autograd Functions; returns (TraceSqrtPSD, SqrtPSD)."""
    global _TORCH_FUNCS
    if _TORCH_FUNCS is not None:
        return _TORCH_FUNCS
    import torch
    from torch.autograd.function import once_differentiable

    def _drop_noise_torch(lam: torch.Tensor) -> torch.Tensor:
        # same rule as _drop_noise, so the torch and numpy values agree
        floor = lam.max().clamp(min=0.0) * (lam.numel() * _EPS)
        return torch.where(lam > floor, lam, torch.zeros_like(lam))

    class TraceSqrtPSD(torch.autograd.Function):
        """tr(M^{1/2}) for symmetric PSD M, with a stable backward.

        Forward drops noise-level eigenvalues like the numpy path. Backward:
        d tr(M^{1/2}) / dM = 1/2 V diag(1/sqrt(lam)) V^T on the range of M; eigen-
        directions with lam <= max(lam) * max(1e-12, d eps) get 0 (the true gradient is
        unbounded there). Unlike eigh's generic backward this has no 1/(lam_i - lam_j)
        terms, so repeated eigenvalues are harmless.
        """

        @staticmethod
        def forward(ctx: Any, m: torch.Tensor) -> torch.Tensor:
            lam, vec = torch.linalg.eigh(m)
            lam = _drop_noise_torch(lam)
            ctx.save_for_backward(lam, vec)
            return lam.sqrt().sum()

        @staticmethod
        @once_differentiable
        def backward(ctx: Any, grad_out: torch.Tensor) -> torch.Tensor:
            lam, vec = ctx.saved_tensors
            thresh = lam.max() * max(_REL_EIG_TOL, lam.numel() * _EPS)
            keep = lam > thresh
            inv = torch.where(keep, 0.5 / lam.clamp(min=1e-300).sqrt(), torch.zeros_like(lam))
            return grad_out * ((vec * inv) @ vec.T)

    class SqrtPSD(torch.autograd.Function):
        """Symmetric PSD square root A^{1/2} with the Daleckii-Krein backward.

        With A = V diag(lam) V^T and s = sqrt(lam), the Fréchet derivative of the square
        root is dA -> V ((V^T dA V) o K) V^T with K_ij = 1/(s_i + s_j) (the divided
        difference of sqrt). K is finite for repeated eigenvalues; pairs where
        s_i + s_j <= max(s) * 1e-6 (both directions in the numerical null space, where
        the true derivative is unbounded) get 0.
        """

        @staticmethod
        def forward(ctx: Any, a: torch.Tensor) -> torch.Tensor:
            lam, vec = torch.linalg.eigh(a)
            s = _drop_noise_torch(lam).sqrt()
            ctx.save_for_backward(s, vec)
            root = (vec * s) @ vec.T
            return 0.5 * (root + root.T)

        @staticmethod
        @once_differentiable
        def backward(ctx: Any, grad_out: torch.Tensor) -> torch.Tensor:
            s, vec = ctx.saved_tensors
            g = 0.5 * (grad_out + grad_out.T)
            denom = s[:, None] + s[None, :]
            thresh = s.max().clamp(min=0.0) * np.sqrt(_REL_EIG_TOL)
            kernel = torch.where(
                denom > thresh, 1.0 / denom.clamp(min=1e-300), torch.zeros_like(denom)
            )
            inner = (vec.T @ g @ vec) * kernel
            return vec @ inner @ vec.T

    _TORCH_FUNCS = (TraceSqrtPSD, SqrtPSD)
    return _TORCH_FUNCS


_TORCH_FUNCS: tuple[Any, Any] | None = None


def trace_sqrt_psd(m: Any) -> Any:
    """Differentiable tr(M^{1/2}) for a symmetric PSD torch tensor M (stable backward)."""
    return _torch_functions()[0].apply(m)


def _torch_sqrt_psd(a: Any) -> Any:
    return _torch_functions()[1].apply(a)


def frechet_distance_torch(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> Any:
    """Differentiable FID as a float64 0-d torch tensor.

    Same algorithm as :func:`frechet_distance` (trace term = sum sqrt(eig(A S2 A)),
    A = S1^{1/2}), but built from custom autograd Functions so gradients are stable:
    they flow into mu1, mu2, sigma2 and also sigma1 (through a Daleckii-Krein backward
    of the PSD square root). Gradients with respect to a sigma are symmetric (inputs are
    symmetrised inside the graph). Eigen-directions in the numerical null space get
    zero gradient, where the exact gradient would be unbounded.

    Inputs may be tensors (any device; the device of ``sigma2`` is used) or arrays;
    they are cast to float64. The result is *not* clipped at 0, to keep the gradient.
    """
    import torch

    ref = sigma2 if isinstance(sigma2, torch.Tensor) else None
    device = ref.device if ref is not None else torch.device("cpu")

    def as64(x: Any, name: str) -> torch.Tensor:
        t = torch.as_tensor(x)
        if t.is_complex() or t.dtype == torch.bool:
            raise StatisticsError(f"{name} must be real, got dtype {t.dtype}")
        t = t.to(device=device, dtype=torch.float64)
        if not bool(torch.isfinite(t.detach()).all()):
            raise StatisticsError(f"{name} contains NaN or infinite values")
        return t

    m1, s1, m2, s2 = (
        as64(mu1, "mu1"),
        as64(sigma1, "sigma1"),
        as64(mu2, "mu2"),
        as64(sigma2, "sigma2"),
    )
    for name, mu in (("mu1", m1), ("mu2", m2)):
        if mu.ndim != 1:
            raise StatisticsError(f"{name} must be 1-D (d,), got shape {tuple(mu.shape)}")
    for name, sg in (("sigma1", s1), ("sigma2", s2)):
        if sg.ndim != 2 or sg.shape[0] != sg.shape[1]:
            raise StatisticsError(
                f"{name} must be a square 2-D (d, d) matrix, got shape {tuple(sg.shape)}"
            )
    if m1.shape[0] != s1.shape[0]:
        raise StatisticsError(
            f"set 1: mean has d={m1.shape[0]} but covariance is {s1.shape[0]}x{s1.shape[1]}"
        )
    if m2.shape[0] != s2.shape[0]:
        raise StatisticsError(
            f"set 2: mean has d={m2.shape[0]} but covariance is {s2.shape[0]}x{s2.shape[1]}"
        )
    _check_same_dim(m1.shape[0], m2.shape[0])

    s1 = 0.5 * (s1 + s1.T)
    s2 = 0.5 * (s2 + s2.T)
    root1 = _torch_sqrt_psd(s1)
    m = root1 @ s2 @ root1
    m = 0.5 * (m + m.T)
    diff = m1 - m2
    return diff @ diff + torch.trace(s1) + torch.trace(s2) - 2.0 * trace_sqrt_psd(m)
