"""Time and measure the memory of one resampling SGD iteration: chunked closed form vs naive autograd.

    python benchmarks/bench_resampling.py [--candidates 250000] [--dim 2048]
        [--chunk-size 8192] [--iterations 3] [--device cpu|cuda] [--skip-naive]

A synthetic candidate pool (N x d float32: 90% drawn from the "real" Gaussian
N(0, diag(s^2)), 10% shifted outliers) and the exact real statistics. Each
implementation runs in its own child process, so the CPU peak (``ru_maxrss``) of one
does not hide the other's; the peak is reported above the baseline taken after the pool
and statistics exist, i.e. the memory the method itself adds. On CUDA the peak is
``torch.cuda.max_memory_allocated`` above the allocation at the same point.

* ours:  ``ResamplingOptimizer.step`` (``WeightedFrechet``: float64 sums over chunks of
  rows, closed-form gradient per chunk; the pool stays float32).
* naive: ``naive_loss_and_grad`` + the same SGD update: the whole pool converted to
  float64 and differentiated by autograd, as the paper's release does. Autograd keeps
  3 N d float64 arrays after the forward pass and the backward adds gradients of the
  same size: its peak is about 6.5 N d x 8 bytes, and it is skipped with a message when
  that estimate exceeds 80% of the available memory.

Prints seconds per iteration (mean and best), peak extra memory, the ratios, the
agreement of the two gradients, and the projected memory of the paper configuration
(N = 250,000, d = 2048) from the formulas below.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

GB = 1e9
MB = 1e6
# d x d float64 matrices alive at once in ours (scatter/sigma, its symmetrisation,
# Sigma_r^{1/2}, the two products and M, eigenvectors + workspace, G, G*Sigma): a bound
D2_MATRICES = 10


def ours_extra_bytes(n: int, d: int, chunk: int) -> float:
    """Two float64 chunk buffers, O(d^2) matrices, a few float64 N-vectors (w, p, grad, ...)."""
    return 2 * min(chunk, n) * d * 8 + D2_MATRICES * d * d * 8 + 6 * n * 8


def naive_saved_bytes(n: int, d: int) -> float:
    """What autograd keeps after the forward pass: the float64 copy, the centred copy and
    the weighted centred copy (3 N d float64)."""
    return 3 * n * d * 8


def naive_extra_bytes(n: int, d: int) -> float:
    """Peak: the 3 saved arrays plus the backward's N x d gradients of the two centred
    copies and their temporaries, about 6.5 N d float64 (measured 6.4 at N = 20,000,
    d = 2048 on CPU). At N = 250,000, d = 2048 this is the paper's ~26 GB."""
    return 6.5 * n * d * 8


def pool_bytes(n: int, d: int) -> float:
    return n * d * 4


def _available_bytes(device: torch.device) -> float:
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return float(free)
    try:
        import psutil

        return float(psutil.virtual_memory().available)
    except ImportError:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    return float("inf")


def _maxrss_bytes() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return float(rss) * (1 if sys.platform == "darwin" else 1024)


# ----------------------------------------------------------------------------- child


def _make_problem(n: int, d: int, device: torch.device, seed: int):
    gen = torch.Generator(device="cpu").manual_seed(seed)
    scales = torch.linspace(0.5, 1.5, d, dtype=torch.float32)
    features = torch.empty(n, d, dtype=torch.float32, device=device)
    n_out = n // 10
    step = 8192
    for start in range(0, n, step):
        stop = min(start + step, n)
        block = torch.randn(stop - start, d, generator=gen) * scales
        rows = torch.arange(start, stop)
        block[rows >= n - n_out] += 0.8  # outliers at the end of the pool
        features[start:stop] = block.to(device)
    mu_real = np.zeros(d)
    sigma_real = np.diag(scales.double().numpy() ** 2)
    w = (0.1 * torch.randn(n, generator=gen, dtype=torch.float64)).to(device)
    return features, mu_real, sigma_real, w


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def child(args: argparse.Namespace) -> None:
    from fidlens.studies.resampling.optimizer import (
        ResamplingOptimizer,
        WeightedFrechet,
        naive_loss_and_grad,
    )

    device = torch.device(args.device)
    n, d = args.candidates, args.dim
    features, mu_real, sigma_real, w0 = _make_problem(n, d, device, args.seed)
    # load the linear-algebra libraries before the baseline, so it is the method's memory
    small = torch.randn(64, 64, dtype=torch.float64, device=device)
    torch.linalg.eigh(small @ small.T)
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = float(torch.cuda.memory_allocated(device))
    else:
        base = _maxrss_bytes()

    t0 = time.perf_counter()
    if args.child == "ours":
        objective = WeightedFrechet(features, mu_real, sigma_real, chunk_size=args.chunk_size)
        opt = ResamplingOptimizer(objective, lr=10.0)
        opt.w = w0.clone()
        _sync(device)
        setup = time.perf_counter() - t0
        # the gradient at the starting point, for the comparison with naive; not timed
        grad = objective.loss_and_grad(opt.w)[1] if args.compare else None
        times, losses = [], []
        for _ in range(args.iterations):
            t1 = time.perf_counter()
            losses.append(opt.step())
            _sync(device)
            times.append(time.perf_counter() - t1)
    else:
        from fidlens.metrics.frechet import matrix_sqrt_psd

        sqrt_sigma_real = matrix_sqrt_psd(sigma_real)  # once, as ours does
        setup = time.perf_counter() - t0
        w = w0.clone()
        grad = None
        times, losses = [], []
        for _ in range(args.iterations):
            t1 = time.perf_counter()
            value, g = naive_loss_and_grad(
                features, w, mu_real, sigma_real, sqrt_sigma_real=sqrt_sigma_real
            )
            w = w - 10.0 * g
            _sync(device)
            times.append(time.perf_counter() - t1)
            losses.append(value)
            if grad is None:
                grad = g
            del g

    if device.type == "cuda":
        peak = float(torch.cuda.max_memory_allocated(device)) - base
    else:
        peak = _maxrss_bytes() - base
    if grad is not None:
        np.save(args.grad_out, grad.cpu().numpy())
    print(
        json.dumps(
            {
                "times": times,
                "losses": losses,
                "peak_extra": peak,
                "setup": setup,
                "threads": torch.get_num_threads(),
                "device": str(device),
            }
        )
    )


# ----------------------------------------------------------------------------- parent


def _run_child(which: str, args: argparse.Namespace, grad_out: str, compare: bool) -> dict:
    cmd = [
        *(["--compare"] if compare else []),
        "--child",
        which,
        "--grad-out",
        grad_out,
        "--candidates",
        str(args.candidates),
        "--dim",
        str(args.dim),
        "--chunk-size",
        str(args.chunk_size),
        "--iterations",
        str(args.iterations),
        "--device",
        args.device,
        "--seed",
        str(args.seed),
        "--threads",
        str(args.threads),
    ]
    cmd = [sys.executable, os.path.abspath(__file__), *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{which} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _report(name: str, res: dict) -> None:
    times = res["times"]
    print(
        f"  {name:<6} {np.mean(times):8.2f} s/iter (best {min(times):.2f}, {len(times)} iters)   "
        f"peak extra {res['peak_extra'] / MB:9.1f} MB   first loss {res['losses'][0]:.6f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=250_000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--chunk-size", type=int, default=8192)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0: torch's default)"
    )
    parser.add_argument("--child", choices=["ours", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--grad-out", help=argparse.SUPPRESS)
    parser.add_argument("--compare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.child:
        child(args)
        return

    n, d, c = args.candidates, args.dim, args.chunk_size
    device = torch.device(args.device)
    print(
        f"resampling benchmark: N={n} candidates, d={d}, chunk={c}, device={device}, "
        f"torch threads={torch.get_num_threads()}"
    )
    print(f"  pool (float32, shared by both): {pool_bytes(n, d) / MB:.1f} MB")
    print(
        f"  formula extra: ours {ours_extra_bytes(n, d, c) / MB:.1f} MB; naive saved for "
        f"backward (3 N d x 8) {naive_saved_bytes(n, d) / MB:.1f} MB, "
        f"peak (6.5 N d x 8) {naive_extra_bytes(n, d) / MB:.1f} MB"
    )

    need = naive_extra_bytes(n, d)
    avail = _available_bytes(device)
    skip_reason = None
    if args.skip_naive:
        skip_reason = "--skip-naive"
    elif need > 0.8 * avail:
        skip_reason = (
            f"needs about {need / GB:.1f} GB (6.5 N d x 8) beyond the pool, "
            f"{avail / GB:.1f} GB available"
        )

    with tempfile.TemporaryDirectory() as tmp:
        ours_grad, naive_grad = os.path.join(tmp, "ours.npy"), os.path.join(tmp, "naive.npy")
        ours = _run_child("ours", args, ours_grad, compare=skip_reason is None)
        print(f"  ours setup (finite check + Sigma_r^1/2): {ours['setup']:.2f} s")
        _report("ours", ours)
        if skip_reason is not None:
            print(f"  naive  skipped: {skip_reason}")
        else:
            naive = _run_child("naive", args, naive_grad, compare=True)
            print(f"  naive setup (Sigma_r^1/2): {naive['setup']:.2f} s")
            _report("naive", naive)
            g_ours, g_naive = np.load(ours_grad), np.load(naive_grad)
            rel = np.abs(g_ours - g_naive).max() / np.abs(g_naive).max()
            print(
                f"  naive/ours: time x{np.mean(naive['times']) / np.mean(ours['times']):.2f} "
                f"(best x{min(naive['times']) / min(ours['times']):.2f}), "
                f"peak extra memory x{naive['peak_extra'] / max(ours['peak_extra'], 1.0):.1f}; "
                f"gradient max rel diff {rel:.2e}, loss diff "
                f"{abs(naive['losses'][0] - ours['losses'][0]):.2e}"
            )
            print(
                f"  measured/formula extra: ours {ours['peak_extra'] / ours_extra_bytes(n, d, c):.2f}, "
                f"naive {naive['peak_extra'] / naive_extra_bytes(n, d):.2f}"
            )

    pn, pd = 250_000, 2048
    o, v, p = ours_extra_bytes(pn, pd, c), naive_extra_bytes(pn, pd), pool_bytes(pn, pd)
    print(f"projected, paper configuration N={pn}, d={pd}, chunk={c} (formulas):")
    print(f"  pool float32 {p / GB:.2f} GB")
    print(f"  ours : pool + {o / GB:.2f} GB = {(p + o) / GB:.2f} GB")
    print(
        f"  naive: pool + {v / GB:.2f} GB = {(p + v) / GB:.2f} GB peak "
        f"(x{(p + v) / (p + o):.1f}; {naive_saved_bytes(pn, pd) / GB:.2f} GB saved for backward)"
    )


if __name__ == "__main__":
    main()
