"""Time the bootstrap of FID: prepared weighted statistics against naive recomputation per resample.

    python benchmarks/bench_bootstrap.py [--n 10000] [--dim 2048] [--resamples 200]
        [--naive 3] [--resample-reference] [--threads 2]

Synthetic features (N x d float32, a decaying spectrum, the generated set shifted) for the
reference and the generated set. Both methods draw the same resamples (same seed):

* ours:  ``fidlens.metrics.bootstrap.FrechetResampler`` as ``bootstrap_fid`` uses it: the reference
  factor W and H = (X − x̄) W are prepared once (timed as set-up); each resample is one
  weighted product over the drawn rows and one ``eigvalsh`` (see the module's docstring).
* naive: for each resample, copy the drawn rows, recompute mean and covariance from
  scratch (``mean_and_covariance``) and call ``frechet_distance`` against the fixed
  reference statistics: what one would write without this module.

Ours runs all ``--resamples``; naive runs the first ``--naive`` of the same resamples. Totals
for B = 200 are set-up + seconds per resample x 200, labelled as projections unless measured.
Prints the seconds, the ratios from this run, the largest relative difference between the
two, and the load average (the machine may be shared).
"""

from __future__ import annotations

import argparse
import os
import time


def _limit_threads(threads: int) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="images per set (default 10000)")
    parser.add_argument("--dim", type=int, default=2048, help="feature dimension (default 2048)")
    parser.add_argument("--resamples", type=int, default=200, help="bootstrap resamples for ours (default 200)")
    parser.add_argument("--naive", type=int, default=3, help="resamples timed for naive (default 3, projected)")
    parser.add_argument("--resample-reference", action="store_true", help="resample the reference too")
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    _limit_threads(args.threads)

    import warnings

    import numpy as np

    from fidlens.metrics.bootstrap import FrechetResampler, draw_counts, resampling_streams
    from fidlens.metrics.frechet import FewSamplesWarning, frechet_distance, mean_and_covariance

    warnings.simplefilter("ignore", FewSamplesWarning)
    rng = np.random.default_rng(args.seed)
    spectrum = (1.0 / np.sqrt(1.0 + np.arange(args.dim))).astype(np.float32)
    ref = rng.standard_normal((args.n, args.dim), dtype=np.float32) * spectrum
    gen = rng.standard_normal((args.n, args.dim), dtype=np.float32) * spectrum * 1.1 + 0.01
    print(f"N = {args.n} per set, d = {args.dim}, B = {args.resamples}, {args.threads} BLAS threads, "
          f"reference {'resampled' if args.resample_reference else 'fixed'}")

    start, cpu_start = time.perf_counter(), time.process_time()
    engine = FrechetResampler(ref, [gen], resample_reference=args.resample_reference)
    setup, setup_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    rng_ref, rng_gen, _ = resampling_streams(args.seed)
    draws = []
    ours_values = []
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(args.resamples):  # what bootstrap_fid does after the set-up
        counts = draw_counts(rng_gen, args.n)
        ref_counts = draw_counts(rng_ref, args.n) if args.resample_reference else None
        ours_values.append(engine.fids([counts], ref_counts)[0])
        if len(draws) < args.naive:
            draws.append((counts, ref_counts))
    loop, loop_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    per_ours = loop / args.resamples
    print(f"ours:  set-up {setup:.1f} s, then {per_ours:.3f} s per resample (measured on {args.resamples}); "
          f"whole bootstrap {setup + loop:.1f} s measured")
    print(f"       CPU time: set-up {setup_cpu:.1f} s, {loop_cpu / args.resamples:.3f} s per resample")
    for target in sorted({200, args.resamples}):
        label = "measured" if target == args.resamples else f"projected from {args.resamples} measured resamples"
        print(f"       B = {target}: {setup + per_ours * target:.1f} s ({label})")

    mu_r, sigma_r = mean_and_covariance(ref)
    worst = 0.0
    naive_time = naive_cpu = 0.0
    for (counts, ref_counts), ours in zip(draws, ours_values):
        start, cpu_start = time.perf_counter(), time.process_time()
        if ref_counts is not None:
            mu_r, sigma_r = mean_and_covariance(ref[np.repeat(np.arange(args.n), ref_counts)])
        naive = frechet_distance(mu_r, sigma_r, *mean_and_covariance(gen[np.repeat(np.arange(args.n), counts)]))
        naive_time += time.perf_counter() - start
        naive_cpu += time.process_time() - cpu_start
        worst = max(worst, abs(ours - naive) / abs(naive))
    per_naive = naive_time / len(draws)
    print(f"naive: {per_naive:.3f} s per resample (measured on {len(draws)}), no set-up; CPU time "
          f"{naive_cpu / len(draws):.3f} s per resample")
    for target in sorted({200, args.resamples}):
        ratio = per_naive * target / (setup + per_ours * target)
        print(f"ratio naive / ours at B = {target}: {ratio:.2f}x (per resample {per_naive / per_ours:.2f}x; "
              f"naive projected from {len(draws)} resamples, this run)")
    print(f"largest relative difference ours vs naive on {len(draws)} resamples: {worst:.2e}")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
