"""Time per FID sensitivity heatmap against recomputing the statistics with the image added.

Ours: the generated statistics (and S = Σr^½, S Σg S) are prepared once; each heatmap is one
Inception forward pass plus one 2048-d eigen-decomposition. Baseline, in the same process:
append the image's feature to the generated features, recompute mean and covariance, and
evaluate FID, which is what a naive implementation does per image (no gradient even).
Usage: python benchmarks/bench_heatmap.py [--generated 10000] [--heatmaps 3]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

from fidlens.assets.store import default_inception_path
from fidlens.metrics.frechet import frechet_distance, mean_and_covariance
from fidlens.studies.heatmap import FidSensitivity
from fidlens.detectors.inception_weights import load_inception
from fidlens.metrics.stats import Statistics


def synthetic_features(rng: np.random.Generator, n: int, shift: float) -> np.ndarray:
    basis = rng.normal(size=(64, 2048)).astype(np.float32) * 0.3
    latent = rng.normal(size=(n, 64)).astype(np.float32)
    return np.abs(latent @ basis + shift + rng.normal(size=(n, 2048)).astype(np.float32) * 0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generated", type=int, default=10000, help="generated images in the statistics")
    parser.add_argument("--heatmaps", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    detector = load_inception(default_inception_path(), device=device)
    reference = Statistics.from_features(synthetic_features(rng, args.generated, 0.0))
    gen_features = synthetic_features(rng, args.generated, 0.05)
    generated = Statistics.from_features(gen_features)
    images = torch.from_numpy(rng.integers(0, 256, size=(args.heatmaps, 3, 256, 256), dtype=np.uint8))

    start = time.perf_counter()
    sensitivity = FidSensitivity(detector, reference, generated)
    setup = time.perf_counter() - start
    start = time.perf_counter()
    fids = [sensitivity.explain(image.to(device)).fid_with_image for image in images]
    ours = (time.perf_counter() - start) / len(images)

    start = time.perf_counter()
    naive = []
    for image in images:
        with torch.inference_mode():
            f = detector(image[None].to(device)).cpu().numpy()
        mu, sigma = mean_and_covariance(np.concatenate([gen_features, f]))
        naive.append(frechet_distance(reference.mu, reference.sigma, mu, sigma))
    baseline = (time.perf_counter() - start) / len(images)

    print(f"device {device}, generated set N={args.generated}+1, {args.heatmaps} heatmaps, "
          f"threads {torch.get_num_threads()}")
    print(f"one-time setup (Σr^½, S Σg S)        : {setup:7.2f} s")
    print(f"per heatmap, ours (map + gradient) : {ours:7.2f} s")
    print(f"per image, recompute stats + FID   : {baseline:7.2f} s  (no map, no gradient)")
    print(f"speed ratio: {baseline / ours:.1f}x; max relative FID difference {max(abs(a - b) / b for a, b in zip(fids, naive)):.1e}")


if __name__ == "__main__":
    main()
