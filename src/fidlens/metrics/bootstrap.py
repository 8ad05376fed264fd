"""Seeded bootstrap confidence intervals for FID and KID, and a paired comparison of two sets.

A bootstrap resample of N images is a vector of counts c (how often each image was drawn,
Σc = N). Its statistics are weighted statistics of the original features:
μ* = Xᵀc / N and Σ* = (Xᵀ diag(c) X − N μ*μ*ᵀ) / (N − 1), so no feature is copied. With a
fixed reference the costly parts are prepared once: a factor W of Σr (W Wᵀ = Σr) and
H = (X − x̄) W; each resample then costs one weighted product Hᵀ diag(c) H over the drawn
rows and one ``eigvalsh``. When N is below the rank of Σr the N × N Gram matrix H Hᵀ is
prepared instead and a resample costs an ``eigvalsh`` of the drawn rows' block (the exact
Gram route of `fidlens.metrics.frechet.frechet_distance_from_features`). KID reuses the kernel:
every resample is a column of counts, and one pass over the kernel rows serves them all
(`fidlens.metrics.kernel_sums`).

Intervals are Efron's percentile intervals of the B replicates. FID is biased upwards at
finite N and a resample (which repeats images) carries that bias again, so the raw
percentile interval sits above the estimate by about the bias, often entirely; the default
``bias-corrected`` interval therefore shifts the percentiles by the bootstrap bias
estimate (mean of the replicates − estimate). ``percentile`` gives the raw interval.
Both, and the bias, are always reported. See docs/METHODS_metrics.md.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fidlens.core.errors import StatisticsError
from fidlens.metrics.frechet import (
    FewSamplesWarning,
    _assemble,
    _drop_noise,
    _fast_factor,
    _psd_factor,
    check_statistics,
    frechet_distance,
    mean_and_covariance,
)
from fidlens.metrics.kernel_sums import kernel_diagonal, weighted_kernel_sums

__all__ = [
    "DEFAULT_LEVEL",
    "DEFAULT_RESAMPLES",
    "METHODS",
    "BootstrapInterval",
    "FrechetResampler",
    "PairedComparison",
    "bootstrap_fid",
    "bootstrap_fid_sets",
    "bootstrap_kid",
    "check_level",
    "check_method",
    "check_resamples",
    "compare_fid",
    "draw_counts",
    "resampling_streams",
    "summarize",
]

DEFAULT_RESAMPLES = 200
DEFAULT_LEVEL = 0.95
METHODS = ("bias-corrected", "percentile")
MAX_RESAMPLES = 1_000_000
# Largest set for which the N x N Gram matrix (float64, 512 MiB at 8192) is prepared.
GRAM_MAX = 8192

Reference = np.ndarray | tuple[np.ndarray, np.ndarray]


# ----------------------------------------------------------------------------- checks


def check_level(level: float) -> float:
    """A confidence level strictly between 0 and 1."""
    value = float(level)
    if not 0.0 < value < 1.0:
        raise StatisticsError(f"the confidence level must lie strictly between 0 and 1 (e.g. 0.95), got {level}")
    return value


def check_resamples(resamples: int) -> int:
    """A number of bootstrap resamples: at least 2 (a spread needs two values)."""
    if isinstance(resamples, bool) or int(resamples) != resamples or not 2 <= resamples <= MAX_RESAMPLES:
        raise StatisticsError(f"the number of bootstrap resamples must be a whole number from 2 to "
                              f"{MAX_RESAMPLES}, got {resamples}")
    return int(resamples)


def check_method(method: str) -> str:
    if method not in METHODS:
        raise StatisticsError(f"unknown interval method {method!r}; use one of {', '.join(METHODS)}")
    return method


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise StatisticsError(f"the seed must be a non-negative whole number, got {seed}")
    return int(seed)


def _features64(x: Any, name: str) -> np.ndarray:
    """Features as a float64 (N, d) array, refused with one line when they cannot be resampled."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise StatisticsError(f"{name} must be real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise StatisticsError(f"{name} must be 2-D (N, d), got shape {arr.shape}")
    if arr.shape[0] < 2 or arr.shape[1] < 1:
        raise StatisticsError(f"{name} needs at least 2 samples of at least 1 dimension, got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise StatisticsError(f"{name} contains NaN or infinite values")
    return arr


def _same_dim(d1: int, d2: int, names: tuple[str, str]) -> None:
    if d1 != d2:
        raise StatisticsError(f"feature dimensions differ: {names[0]} has d={d1}, {names[1]} has d={d2}")


# ----------------------------------------------------------------------------- resampling


def resampling_streams(seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent generators for (the reference, the first set, the second set) from one seed.

    Each role has its own stream, so the first set's resamples are the same whether or not
    the reference or a second set is resampled too (`compare_fid` and `bootstrap_fid` agree).
    """
    children = np.random.SeedSequence(_check_seed(seed)).spawn(3)
    return tuple(np.random.default_rng(child) for child in children)  # type: ignore[return-value]


def draw_counts(rng: np.random.Generator, n: int) -> np.ndarray:
    """How often each of n images is drawn in n draws with replacement (int64, sums to n)."""
    return np.bincount(rng.integers(0, n, size=n), minlength=n)


class _Centred:
    """A feature set centred on its full mean (so resampled means are small shifts, no cancellation)."""

    def __init__(self, x: np.ndarray) -> None:
        self.n, self.d = x.shape
        self.mean = x.mean(axis=0)
        self.x = x - self.mean
        self.sq = np.einsum("ij,ij->i", self.x, self.x)

    def moments(self, counts: np.ndarray, unbiased: bool) -> tuple[np.ndarray, np.ndarray, float, int, float]:
        """(shift δ of the mean, drawn rows, count total n, divisor, tr Σ*) of a count vector."""
        n = int(counts.sum())
        if n < 2:
            raise StatisticsError(f"a resample needs at least 2 images, got {n}")
        rows = np.flatnonzero(counts)
        weights = counts.astype(np.float64)
        delta = weights @ self.x / n  # a pass over all rows: cheaper than gathering the drawn ones
        divisor = float(n - 1 if unbiased else n)
        trace = (float(weights @ self.sq) - n * float(delta @ delta)) / divisor
        return delta, rows, n, divisor, trace

    def scatter(self, counts: np.ndarray, unbiased: bool) -> tuple[np.ndarray, np.ndarray]:
        """(μ*, Σ*) of a count vector, Σ* = (Σ c_i x_i x_iᵀ − n δδᵀ) / divisor on centred rows."""
        delta, rows, n, divisor, _ = self.moments(counts, unbiased)
        weighted = self.x[rows] * np.sqrt(counts[rows].astype(np.float64))[:, None]
        sigma = (weighted.T @ weighted - n * np.outer(delta, delta)) / divisor
        return self.mean + delta, 0.5 * (sigma + sigma.T)


def _sum_sqrt(lam: np.ndarray) -> float:
    return float(np.sqrt(_drop_noise(lam)).sum())


# From this size on, eigenvalues come from torch's LAPACK (MKL in the x86 wheels): float64 like
# numpy's, agreeing to ~1e-14, about twice as fast at d = 2048, and it is most of a resample's cost.
TORCH_EIGVALSH_MIN = 256


def _eigvalsh(m: np.ndarray) -> np.ndarray:
    """Eigenvalues of a symmetric float64 matrix (ascending)."""
    if m.shape[0] < TORCH_EIGVALSH_MIN:
        return np.linalg.eigvalsh(m)
    import torch

    return torch.linalg.eigvalsh(torch.from_numpy(np.ascontiguousarray(m))).numpy()


class _FixedTarget:
    """One set against a fixed reference factor W (W Wᵀ = Σr): H = X_c W, and H Hᵀ when N is small."""

    def __init__(self, x: np.ndarray, factor: np.ndarray) -> None:
        self.set = _Centred(x)
        self.h = self.set.x @ factor
        rank = factor.shape[1]
        self.route = "gram" if self.set.n < rank and self.set.n <= GRAM_MAX else "covariance"
        self.gram = self.h @ self.h.T if self.route == "gram" else None

    def parts(self, counts: np.ndarray, unbiased: bool) -> tuple[np.ndarray, float, float]:
        """(μ*, tr Σ*, tr (Σr Σ*)^{1/2}) of a count vector."""
        delta, rows, n, divisor, trace = self.set.moments(counts, unbiased)
        c = counts[rows].astype(np.float64)
        root_c = np.sqrt(c)
        if self.gram is None:
            h_delta = counts.astype(np.float64) @ self.h / n
            weighted = self.h[rows] * root_c[:, None]
            m = weighted.T @ weighted - n * np.outer(h_delta, h_delta)
        else:
            block = self.gram[np.ix_(rows, rows)]
            u = block @ c / n
            s = float(c @ u) / n
            m = (block - u[:, None] - u[None, :] + s) * np.outer(root_c, root_c)
        m = 0.5 * (m + m.T) / divisor
        return self.set.mean + delta, trace, _sum_sqrt(_eigvalsh(m))


class FrechetResampler:
    """FID of count-weighted versions of one or more sets against a reference, prepared once.

    ``reference`` is features (N_r, d) or statistics ``(mu, sigma)``. With
    ``resample_reference`` (features only) the reference is weighted too, by its own counts.
    `fids` returns one FID per set; counts of all ones give the plain FID of the sets.
    ``routes`` names the route each set takes (``gram`` or ``covariance``).
    """

    def __init__(self, reference: Reference, generated: Sequence[np.ndarray], *, resample_reference: bool = False,
                 unbiased: bool = True) -> None:
        self.unbiased = unbiased
        self.resample_reference = resample_reference
        sets = [_features64(x, f"generated set {i + 1}" if len(generated) > 1 else "the generated set")
                for i, x in enumerate(generated)]
        if not sets:
            raise StatisticsError("no generated set to resample")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FewSamplesWarning)  # the plain FID has said it already
            if isinstance(reference, tuple):
                if resample_reference:
                    raise StatisticsError("the reference is statistics (mu, sigma) without per-image features: "
                                          "it cannot be resampled")
                mu_r, sigma_r = check_statistics(*reference, name="the reference")
            else:
                ref = _features64(reference, "the reference")
                if resample_reference:
                    self.reference = _Centred(ref)
                else:
                    mu_r, sigma_r = mean_and_covariance(ref, unbiased=unbiased)
        d_ref = (self.reference.d if resample_reference else mu_r.shape[0])
        for i, x in enumerate(sets):
            _same_dim(d_ref, x.shape[1], ("the reference", f"generated set {i + 1}"))
        if resample_reference:
            self.targets = [_Centred(x) for x in sets]
            small = self.reference.n < d_ref and all(t.n < d_ref for t in self.targets)
            fits = max([self.reference.n] + [t.n for t in self.targets]) <= GRAM_MAX
            self.routes = ["gram" if small and fits else "covariance"] * len(sets)
            self.cross = [self.reference.x @ t.x.T for t in self.targets] if self.routes[0] == "gram" else None
        else:
            self.mu_r, self.trace_r = mu_r, float(np.trace(sigma_r))
            factor = _psd_factor(sigma_r, "sigma of the reference")
            self.fixed = [_FixedTarget(x, factor) for x in sets]
            self.routes = [t.route for t in self.fixed]
        self.sizes = [x.shape[0] for x in sets]

    def _check_counts(self, counts: np.ndarray, n: int, name: str) -> np.ndarray:
        c = np.asarray(counts)
        if c.shape != (n,) or c.dtype.kind not in "iu" or (c < 0).any():
            raise StatisticsError(f"{name} counts must be {n} non-negative whole numbers, got shape {c.shape}")
        return c

    def fids(self, counts: Sequence[np.ndarray], reference_counts: np.ndarray | None = None) -> np.ndarray:
        """FID of each set weighted by its counts (and the reference by ``reference_counts``)."""
        if len(counts) != len(self.sizes):
            raise StatisticsError(f"expected counts for {len(self.sizes)} set(s), got {len(counts)}")
        counts = [self._check_counts(c, n, f"set {i + 1}") for i, (c, n) in enumerate(zip(counts, self.sizes))]
        if not self.resample_reference:
            if reference_counts is not None:
                raise StatisticsError("reference counts given, but the reference is fixed")
            out = []
            for target, c in zip(self.fixed, counts):
                mu, trace, tr_sqrt = target.parts(c, self.unbiased)
                diff = self.mu_r - mu
                out.append(_assemble(float(diff @ diff), self.trace_r, trace, tr_sqrt))
            return np.array(out)
        if reference_counts is None:
            raise StatisticsError("the reference is resampled: give its counts")
        ref = self.reference
        cr = self._check_counts(reference_counts, ref.n, "reference")
        if self.cross is not None:
            return np.array([self._gram_fid(cr, c, k) for k, c in enumerate(counts)])
        mu_r, sigma_r = ref.scatter(cr, self.unbiased)
        factor = _fast_factor(sigma_r, "sigma of the resampled reference")
        trace_r = float(np.trace(sigma_r))
        out = []
        for target, c in zip(self.targets, counts):
            mu, sigma = target.scatter(c, self.unbiased)
            m = factor.T @ (sigma @ factor)
            diff = mu_r - mu
            out.append(_assemble(float(diff @ diff), trace_r, float(np.trace(sigma)),
                                 _sum_sqrt(_eigvalsh(0.5 * (m + m.T)))))
        return np.array(out)

    def _gram_fid(self, cr: np.ndarray, cg: np.ndarray, k: int) -> float:
        """Both sides small: tr(Σr* Σg*)^{1/2} is the nuclear norm of the weighted centred cross-Gram."""
        ref, target, cross = self.reference, self.targets[k], self.cross[k]
        dr, rows_r, nr, div_r, tr_r = ref.moments(cr, self.unbiased)
        dg, rows_g, ng, div_g, tr_g = target.moments(cg, self.unbiased)
        wr, wg = cr[rows_r].astype(np.float64), cg[rows_g].astype(np.float64)
        block = cross[np.ix_(rows_r, rows_g)]
        r_dot_g = block @ wg / ng  # (X_r − x̄_r) δ_g on the drawn reference rows
        g_dot_r = block.T @ wr / nr
        both = float(wr @ r_dot_g) / nr
        centred = block - r_dot_g[:, None] - g_dot_r[None, :] + both
        centred *= np.outer(np.sqrt(wr), np.sqrt(wg))
        tr_sqrt = float(np.linalg.svd(centred, compute_uv=False).sum()) / np.sqrt(div_r * div_g)
        diff = (ref.mean + dr) - (target.mean + dg)
        return _assemble(float(diff @ diff), tr_r, tr_g, tr_sqrt)


# ----------------------------------------------------------------------------- intervals


@dataclass(frozen=True)
class BootstrapInterval:
    """A point estimate, its B bootstrap replicates and the interval made from them."""

    metric: str
    estimate: float
    low: float
    high: float
    level: float
    method: str
    bias: float  # mean of the replicates − estimate
    percentile_low: float  # Efron's raw percentile interval, always reported
    percentile_high: float
    replicates: np.ndarray = field(repr=False)
    seed: int = 0
    resampled: tuple[str, ...] = ()

    @property
    def resamples(self) -> int:
        return int(self.replicates.size)

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def as_dict(self) -> dict[str, Any]:
        """The numbers, JSON-ready (replicates left out: they are in ``replicates``)."""
        return {"metric": self.metric, "estimate": self.estimate, "low": self.low, "high": self.high,
                "level": self.level, "method": self.method, "bias": self.bias,
                "percentile_low": self.percentile_low, "percentile_high": self.percentile_high,
                "resamples": self.resamples, "seed": self.seed, "resampled": list(self.resampled),
                "replicate_std": float(np.std(self.replicates, ddof=1))}


def summarize(metric: str, estimate: float, replicates: np.ndarray, *, level: float = DEFAULT_LEVEL,
              method: str = "bias-corrected", floor: float | None = None, seed: int = 0,
              resampled: Sequence[str] = ()) -> BootstrapInterval:
    """The interval of ``replicates`` around ``estimate``: Efron's percentiles, shifted by the bias if asked.

    ``floor`` clips the interval from below (0 for FID, which cannot be negative).
    """
    level, method = check_level(level), check_method(method)
    reps = np.asarray(replicates, dtype=np.float64)
    if reps.ndim != 1 or reps.size < 2 or not np.isfinite(reps).all():
        raise StatisticsError("bootstrap replicates must be at least 2 finite values")
    alpha = (1.0 - level) / 2.0
    raw_low, raw_high = (float(q) for q in np.quantile(reps, [alpha, 1.0 - alpha]))
    bias = float(reps.mean()) - float(estimate)
    low, high = (raw_low, raw_high) if method == "percentile" else (raw_low - bias, raw_high - bias)
    if floor is not None:
        low, high = max(low, floor), max(high, floor)
    return BootstrapInterval(metric=metric, estimate=float(estimate), low=low, high=high, level=level,
                             method=method, bias=bias, percentile_low=raw_low, percentile_high=raw_high,
                             replicates=reps, seed=seed, resampled=tuple(resampled))


def _progress(total: int, enabled: bool, desc: str):
    from fidlens.core.progress import progress_bar

    return progress_bar(total=total, desc=desc, unit="resample", disable=not enabled)


def _plain_fid(reference: Reference, generated: np.ndarray, unbiased: bool) -> float:
    """The FID `fidlens fid REF GEN` prints for these inputs: statistics of each side, then FID."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewSamplesWarning)  # the caller's data; said by `fidlens fid`
        mu_r, sigma_r = reference if isinstance(reference, tuple) else mean_and_covariance(reference, unbiased=unbiased)
        mu_g, sigma_g = mean_and_covariance(generated, unbiased=unbiased)
    return frechet_distance(mu_r, sigma_r, mu_g, sigma_g)


def bootstrap_fid(reference: Reference, generated: np.ndarray, *, resample_reference: bool = False,
                  resamples: int = DEFAULT_RESAMPLES, level: float = DEFAULT_LEVEL, seed: int = 0,
                  method: str = "bias-corrected", unbiased: bool = True, estimate: float | None = None,
                  progress: bool = False) -> BootstrapInterval:
    """Bootstrap interval of FID(reference, generated), resampling the generated images (and the reference).

    ``estimate`` (the plain FID, if already computed) saves recomputing it.
    """
    resamples, level, method = check_resamples(resamples), check_level(level), check_method(method)
    engine = FrechetResampler(reference, [generated], resample_reference=resample_reference, unbiased=unbiased)
    if estimate is None:
        estimate = _plain_fid(reference, generated, unbiased)
    rng_ref, rng_gen, _ = resampling_streams(seed)
    n_ref = engine.reference.n if resample_reference else 0
    values = np.empty(resamples)
    with _progress(resamples, progress, "bootstrap FID") as bar:
        for b in range(resamples):
            counts = draw_counts(rng_gen, engine.sizes[0])
            ref_counts = draw_counts(rng_ref, n_ref) if resample_reference else None
            values[b] = engine.fids([counts], ref_counts)[0]
            bar.update(1)
    roles = ("generated", "reference") if resample_reference else ("generated",)
    return summarize("FID", estimate, values, level=level, method=method, floor=0.0, seed=seed, resampled=roles)


def bootstrap_fid_sets(reference: Reference, sets: Sequence[np.ndarray], *, resample_reference: bool = False,
                       resamples: int = DEFAULT_RESAMPLES, level: float = DEFAULT_LEVEL, seed: int = 0,
                       method: str = "bias-corrected", unbiased: bool = True) -> list[BootstrapInterval]:
    """`bootstrap_fid` of several sets against one reference, whose factor is prepared once.

    Why: a table of intervals for many sets paid the reference's O(d³) set-up once per set.
    Each set draws its resamples from its own fresh stream of ``seed`` (and the reference from
    the reference stream), exactly as `bootstrap_fid` with the same seed, so each interval is
    the one `bootstrap_fid` gives for that set alone.
    """
    resamples, level, method = check_resamples(resamples), check_level(level), check_method(method)
    engine = FrechetResampler(reference, list(sets), resample_reference=resample_reference, unbiased=unbiased)
    estimates = [_plain_fid(reference, x, unbiased) for x in sets]
    gens = [resampling_streams(seed)[1] for _ in sets]
    rng_ref = resampling_streams(seed)[0]
    n_ref = engine.reference.n if resample_reference else 0
    values = np.empty((resamples, len(gens)))
    for b in range(resamples):
        counts = [draw_counts(rng, n) for rng, n in zip(gens, engine.sizes)]
        ref_counts = draw_counts(rng_ref, n_ref) if resample_reference else None
        values[b] = engine.fids(counts, ref_counts)
    roles = ("generated", "reference") if resample_reference else ("generated",)
    return [summarize("FID", est, values[:, k], level=level, method=method, floor=0.0, seed=seed, resampled=roles)
            for k, est in enumerate(estimates)]


@dataclass(frozen=True)
class PairedComparison:
    """FID(A), FID(B) and FID(A) − FID(B) under the same resamples of the shared reference."""

    fid_a: BootstrapInterval
    fid_b: BootstrapInterval
    difference: BootstrapInterval
    p_a_better: float  # share of (bias-corrected, as the interval) replicates with FID(A) < FID(B)
    p_a_better_raw: float  # share of raw replicates with FID(A) < FID(B)

    def as_dict(self) -> dict[str, Any]:
        return {"fid_a": self.fid_a.as_dict(), "fid_b": self.fid_b.as_dict(),
                "difference": self.difference.as_dict(), "p_a_better": self.p_a_better,
                "p_a_better_raw": self.p_a_better_raw}


def _share_below_zero(values: np.ndarray) -> float:
    """Share of values < 0, ties counted half."""
    return float((values < 0).mean() + 0.5 * (values == 0).mean())


def compare_fid(reference: Reference, a: np.ndarray, b: np.ndarray, *, resample_reference: bool = False,
                resamples: int = DEFAULT_RESAMPLES, level: float = DEFAULT_LEVEL, seed: int = 0,
                method: str = "bias-corrected", unbiased: bool = True, progress: bool = False) -> PairedComparison:
    """Is A better than B? Bootstrap FID(A) − FID(B): A and B resampled independently, the reference jointly.

    With ``resample_reference`` each resample draws the reference once and uses it for both
    sets, so its sampling noise is shared, as in the real comparison.
    """
    resamples, level, method = check_resamples(resamples), check_level(level), check_method(method)
    engine = FrechetResampler(reference, [a, b], resample_reference=resample_reference, unbiased=unbiased)
    est_a, est_b = _plain_fid(reference, a, unbiased), _plain_fid(reference, b, unbiased)
    rng_ref, rng_a, rng_b = resampling_streams(seed)
    n_ref = engine.reference.n if resample_reference else 0
    values = np.empty((resamples, 2))
    with _progress(resamples, progress, "bootstrap FID(A), FID(B)") as bar:
        for i in range(resamples):
            counts_a = draw_counts(rng_a, engine.sizes[0])
            counts_b = draw_counts(rng_b, engine.sizes[1])
            ref_counts = draw_counts(rng_ref, n_ref) if resample_reference else None
            values[i] = engine.fids([counts_a, counts_b], ref_counts)
            bar.update(1)
    roles = ("A", "B", "reference") if resample_reference else ("A", "B")
    common = {"level": level, "method": method, "seed": seed, "resampled": roles}
    fid_a = summarize("FID(A)", est_a, values[:, 0], floor=0.0, **common)
    fid_b = summarize("FID(B)", est_b, values[:, 1], floor=0.0, **common)
    diff = summarize("FID(A) - FID(B)", est_a - est_b, values[:, 0] - values[:, 1], **common)
    raw = values[:, 0] - values[:, 1]
    shifted = raw - diff.bias if method == "bias-corrected" else raw
    return PairedComparison(fid_a, fid_b, diff, _share_below_zero(shifted), _share_below_zero(raw))


# ----------------------------------------------------------------------------- KID


def unbiased_mmd2_from_sums(within_x: np.ndarray, within_y: np.ndarray, cross: np.ndarray, nx: int,
                            ny: int) -> np.ndarray:
    """Unbiased MMD² from Σ_{i≠j} k(x_i, x_j), Σ_{i≠j} k(y_i, y_j) and Σ k(x_i, y_j), any sizes."""
    return within_x / (nx * (nx - 1.0)) + within_y / (ny * (ny - 1.0)) - 2.0 * cross / (nx * float(ny))


def bootstrap_kid(reference: np.ndarray, generated: np.ndarray, *, resample_reference: bool = False,
                  resamples: int = DEFAULT_RESAMPLES, level: float = DEFAULT_LEVEL, seed: int = 0,
                  method: str = "bias-corrected") -> BootstrapInterval:
    """Bootstrap interval of KID as the full-set unbiased MMD² (cubic kernel), all images of both sets.

    A resample repeats images; its MMD² treats repeats as distinct samples (exactly the MMD²
    of the replicated set). The kernel is computed once, block by block, for all resamples
    together (`fidlens.metrics.kernel_sums`). Uses the same resamples as `bootstrap_fid` with the
    same seed.
    """
    resamples, level, method = check_resamples(resamples), check_level(level), check_method(method)
    ref, gen = _features64(reference, "the reference"), _features64(generated, "the generated set")
    _same_dim(ref.shape[1], gen.shape[1], ("the reference", "the generated set"))
    nr, ng = ref.shape[0], gen.shape[0]
    rng_ref, rng_gen, _ = resampling_streams(seed)
    # column 0: all ones (the estimate); columns 1..B: the resamples
    cg = np.ones((ng, resamples + 1))
    cr = np.ones((nr, resamples + 1)) if resample_reference else np.ones((nr, 1))
    for b in range(1, resamples + 1):
        cg[:, b] = draw_counts(rng_gen, ng)
        if resample_reference:
            cr[:, b] = draw_counts(rng_ref, nr)
    within_g = weighted_kernel_sums(gen, cg) - cg.T @ kernel_diagonal(gen)
    within_r = weighted_kernel_sums(ref, cr) - cr.T @ kernel_diagonal(ref)
    cross = weighted_kernel_sums(ref, cr, gen, cg)
    mmd = unbiased_mmd2_from_sums(within_g, within_r, cross, ng, nr)
    roles = ("generated", "reference") if resample_reference else ("generated",)
    return summarize("KID", float(mmd[0]), mmd[1:], level=level, method=method, seed=seed, resampled=roles)
