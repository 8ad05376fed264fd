"""Time fidlens' exact Fréchet distance against the scipy.linalg.sqrtm textbook formula.

    python benchmarks/bench_frechet.py [--dim 2048] [--samples 4096] [--repeats 3]

Prints the wall time of each, the speed-up, and the relative difference of the FID
values (spec target: >= 8x faster at <= 1e-9 relative difference), then the Gram route
against the covariance route for a small-sample (N < d) comparison.
Timings are the best of ``--repeats`` runs (``--ref-repeats`` for the slow sqrtm), since
the best run is the least disturbed by other load on the machine. The eigh-factor line
times the path ``frechet_distance`` takes when sigma1 is singular or ill conditioned
(it uses a Cholesky factor otherwise).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import scipy.linalg

from fidlens.metrics.frechet import (
    FewSamplesWarning,
    _psd_factor,
    _trace_sqrt_from_factor,
    frechet_distance,
    frechet_distance_from_features,
    mean_and_covariance,
)


def sqrtm_fid(mu1, sigma1, mu2, sigma2) -> float:
    diff = mu1 - mu2
    root = scipy.linalg.sqrtm(sigma1 @ sigma2)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(root).real)


def make_features(rng: np.random.Generator, n: int, d: int, lo: float, hi: float, shift: float):
    """Gaussian features with a spread spectrum, rotated by a random orthogonal matrix."""
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return ((rng.standard_normal((n, d)) * np.linspace(lo, hi, d)) @ q.T + shift).astype(np.float32)


def best_time(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--small-samples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ref-repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    d, n = args.dim, args.samples
    rng = np.random.default_rng(args.seed)

    print(f"building statistics: d={d}, N={n} per set")
    x1 = make_features(rng, n, d, 0.3, 2.0, 0.0)
    x2 = make_features(rng, n, d, 1.8, 0.4, 0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewSamplesWarning)
        mu1, s1 = mean_and_covariance(x1)
        mu2, s2 = mean_and_covariance(x2)
    w1 = np.linalg.eigvalsh(s1)
    print(f"  cond(sigma1) = {w1[-1] / w1[0]:.3g}")

    t_ours, fid_ours = best_time(lambda: frechet_distance(mu1, s1, mu2, s2), args.repeats)

    def eigh_route() -> float:
        diff = mu1 - mu2
        tr_sqrt = _trace_sqrt_from_factor(_psd_factor(0.5 * (s1 + s1.T)), 0.5 * (s2 + s2.T))
        return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt)

    t_eigh, fid_eigh = best_time(eigh_route, args.repeats)
    t_ref, fid_ref = best_time(lambda: sqrtm_fid(mu1, s1, mu2, s2), args.ref_repeats)
    rel = abs(fid_ours - fid_ref) / abs(fid_ref)
    rel_eigh = abs(fid_eigh - fid_ref) / abs(fid_ref)
    print("\nfrechet_distance vs scipy.linalg.sqrtm (covariance route)")
    print(f"  fidlens         : {t_ours:8.3f} s   FID = {fid_ours:.12f}")
    print(f"  fidlens, eigh   : {t_eigh:8.3f} s   FID = {fid_eigh:.12f}")
    print(f"  scipy sqrtm     : {t_ref:8.3f} s   FID = {fid_ref:.12f}")
    print(f"  speed-up        : {t_ref / t_ours:8.2f} x   (target >= 8x)")
    print(f"  speed-up, eigh  : {t_ref / t_eigh:8.2f} x")
    print(f"  relative diff   : {rel:.3e}   (target <= 1e-9); eigh factor: {rel_eigh:.3e}")

    k = args.small_samples
    y1, y2 = x1[:k], x2[:k]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewSamplesWarning)
        t_gram, fid_gram = best_time(lambda: frechet_distance_from_features(y1, y2), args.repeats)

        def covariance_route() -> float:
            return frechet_distance(*mean_and_covariance(y1), *mean_and_covariance(y2))

        t_cov, fid_cov = best_time(covariance_route, args.repeats)
    route = "Gram/SVD" if k < d else "covariance (N >= d, no Gram route)"
    print(f"\nfrom features, {k} vs {k} samples, d={d}: {route}")
    print(f"  features route  : {t_gram:8.3f} s   FID = {fid_gram:.12f}")
    print(f"  covariance route: {t_cov:8.3f} s   FID = {fid_cov:.12f}")
    print(f"  speed-up        : {t_cov / t_gram:8.2f} x")
    print(f"  relative diff   : {abs(fid_gram - fid_cov) / abs(fid_cov):.3e}")


if __name__ == "__main__":
    main()
