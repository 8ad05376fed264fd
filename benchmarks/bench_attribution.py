"""Time exact leave-one-out FID attribution against naive recomputation, in one run.

    python benchmarks/bench_attribution.py [--dim 2048] [--images 50000] [--naive 10]

Synthetic features with a realistic spectrum (power-law eigenvalues, as Inception pool3
covariances have), reference statistics with a different spectrum, mean and rotation.
Prints:

- naive: one full FID per image (closed-form downdated statistics + frechet_distance, an
  O(d³) eigen-decomposition each) on ``--naive`` images, seconds per image;
- fast: fidlens.metrics.attribution on a 10,000-image set, then, if its projection for
  ``--images`` is under ``--full-limit`` seconds, on the full set (measured, not projected);
- the speed ratio per image, and the agreement max |ΔFID_fast − ΔFID_naive| / FID on the
  naive subset (plus ``--recompute`` images against statistics rebuilt from scratch).

Target (issue 13): all 50,000 images of a 2048-d set in ≤ 15 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

from fidlens.metrics.attribution import FidAttribution
from fidlens.metrics.frechet import FewSamplesWarning, frechet_distance, mean_and_covariance


def rotation(rng: np.random.Generator, d: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def spectrum(d: int, power: float, total: float) -> np.ndarray:
    lam = np.arange(1, d + 1, dtype=np.float64) ** -power
    return lam * (total / lam.sum())


def make_problem(rng: np.random.Generator, n: int, d: int):
    """Generated features X (n, d) float32 and reference statistics (mu, sigma)."""
    rot_ref = rotation(rng, d)
    lam_ref = spectrum(d, 1.1, 80.0)
    sigma_ref = (rot_ref * lam_ref) @ rot_ref.T
    mu_ref = np.abs(rng.standard_normal(d)) * 0.4
    # the generated set: another spectrum, a rotation 30 % away, a shifted mean
    rot_gen, _ = np.linalg.qr(rot_ref + 0.3 * rng.standard_normal((d, d)) / np.sqrt(d))
    lam_gen = spectrum(d, 1.25, 70.0)
    x = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 4096):
        m = min(4096, n - start)
        x[start : start + m] = (rng.standard_normal((m, d)) * np.sqrt(lam_gen)) @ rot_gen.T + mu_ref + 0.05
    return x, mu_ref, 0.5 * (sigma_ref + sigma_ref.T)


def naive_delta(x: np.ndarray, mu_ref, sigma_ref, indices, covariance: str) -> tuple[np.ndarray, float]:
    """One full FID per image on closed-form downdated statistics; seconds per image."""
    n = x.shape[0]
    unbiased = covariance == "unbiased"
    mu, sigma = mean_and_covariance(x, unbiased=unbiased)
    base = frechet_distance(mu_ref, sigma_ref, mu, sigma)
    k, k_new = (n - 1, n - 2) if unbiased else (n, n - 1)
    out = []
    t0 = time.perf_counter()
    for i in indices:
        v = x[i].astype(np.float64) - mu
        mu_i = mu - v / (n - 1)
        sigma_i = (k / k_new) * sigma - (n / ((n - 1) * k_new)) * np.outer(v, v)
        out.append(frechet_distance(mu_ref, sigma_ref, mu_i, sigma_i) - base)
    return np.array(out), (time.perf_counter() - t0) / len(indices)


def recomputed_delta(x: np.ndarray, mu_ref, sigma_ref, indices, covariance: str) -> np.ndarray:
    """Statistics rebuilt from the features without image i: the definition itself."""
    unbiased = covariance == "unbiased"
    base = frechet_distance(mu_ref, sigma_ref, *mean_and_covariance(x, unbiased=unbiased))
    return np.array([frechet_distance(mu_ref, sigma_ref, *mean_and_covariance(np.delete(x, i, axis=0), unbiased=unbiased)) - base
                     for i in indices])


def run_fast(x: np.ndarray, mu_ref, sigma_ref, covariance: str):
    """(model, ΔFID, quadrature info, set-up s, all-images s, CPU s of both: all threads)."""
    c0, t0 = time.process_time(), time.perf_counter()
    model = FidAttribution(x, mu_ref, sigma_ref, covariance=covariance)
    t1 = time.perf_counter()
    delta, info, _ = model.leave_one_out()
    t2 = time.perf_counter()
    return model, delta, info, t1 - t0, t2 - t1, time.process_time() - c0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--images", type=int, default=50000)
    parser.add_argument("--probe-images", type=int, default=10000, help="size of the first (projecting) fast run")
    parser.add_argument("--naive", type=int, default=10, help="images recomputed naively (default 10)")
    parser.add_argument("--recompute", type=int, default=2, help="images checked against statistics rebuilt from scratch")
    parser.add_argument("--full-limit", type=float, default=300.0, help="run the full set if projected below this (s)")
    parser.add_argument("--covariance", choices=("unbiased", "population"), default="unbiased")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.simplefilter("ignore", FewSamplesWarning)

    threads = os.environ.get("OMP_NUM_THREADS") or os.environ.get("OPENBLAS_NUM_THREADS") or "default"
    print(f"machine: {os.cpu_count()} CPUs visible, BLAS threads {threads}; timings are wall-clock")
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    x, mu_ref, sigma_ref = make_problem(rng, args.images, args.dim)
    print(f"problem: {args.images} x {args.dim} features built in {time.perf_counter() - t0:.1f} s")

    probe = x[: min(args.probe_images, args.images)]
    model, delta, info, setup, loo, cpu = run_fast(probe, mu_ref, sigma_ref, args.covariance)
    n_probe = probe.shape[0]
    print(f"fast, {n_probe} images: set-up {setup:.1f} s + all images {loo:.1f} s, CPU {cpu:.1f} s "
          f"({1e3 * loo / n_probe:.2f} ms/image; {info.nodes} nodes, step {info.step:.3f}, "
          f"quadrature error estimate {info.error_estimate:.2g}); FID {model.fid:.4f}")
    per_image = loo / n_probe
    projected_full = setup * args.images / n_probe + per_image * args.images  # set-up is O(N d²) too
    print(f"projected for {args.images} images: {projected_full:.0f} s")

    subset = np.linspace(0, n_probe - 1, args.naive).astype(int)
    naive, naive_per_image = naive_delta(probe, mu_ref, sigma_ref, subset, args.covariance)
    agreement = float(np.abs(naive - delta[subset]).max() / model.fid)
    print(f"naive, {args.naive} images of the same set: {naive_per_image:.3f} s/image "
          f"(all {args.images} images: {naive_per_image * args.images / 3600:.1f} h)")
    print(f"ratio naive/fast per image: {naive_per_image / per_image:.0f}x "
          f"(including the fast set-up: {naive_per_image * n_probe / (setup + loo):.0f}x)")
    print(f"agreement on {args.naive} images: max |dFID_fast - dFID_naive| / FID = {agreement:.2e}")
    if args.recompute:
        few = subset[: args.recompute]
        rebuilt = recomputed_delta(probe, mu_ref, sigma_ref, few, args.covariance)
        print(f"agreement with statistics rebuilt from scratch ({len(few)} images): "
              f"{float(np.abs(rebuilt - delta[few]).max() / model.fid):.2e}")

    if args.images > n_probe and projected_full < args.full_limit:
        model, delta, info, setup, loo, cpu = run_fast(x, mu_ref, sigma_ref, args.covariance)
        total = setup + loo
        print(f"fast, all {args.images} images (measured): set-up {setup:.1f} s + all images {loo:.1f} s, CPU {cpu:.1f} s "
              f"= {total:.1f} s ({total / 60:.2f} min; target 15 min); FID {model.fid:.4f}, "
              f"{info.nodes} nodes")
    elif args.images > n_probe:
        print(f"full set not run (projection {projected_full:.0f} s > --full-limit {args.full_limit:.0f} s)")


if __name__ == "__main__":
    main()
