"""Feature extraction speed: our module against running default_1.pt (TorchScript) directly.

Both see the same ORL faces, the same batches and the same TF1 resize; the ratio is
measured in one process, after warm-up runs of each (TorchScript optimises on its first calls).
Usage: python benchmarks/bench_features.py [--images 128] [--batch-size 32] [--device cpu]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from fidlens.assets import default_inception_path
from fidlens.datasets import open_image_source
from fidlens.inception import FidInceptionV3
from fidlens.inception_weights import load_inception

REPO = Path(__file__).resolve().parents[1]


def images_from_orl(count: int) -> torch.Tensor:
    source = open_image_source(REPO / "data" / "orl_faces", max_images=count)
    return torch.from_numpy(np.stack([source[i] for i in range(len(source))])).permute(0, 3, 1, 2).contiguous()


def time_run(run, batches: list[torch.Tensor], device: torch.device, repeats: int) -> tuple[float, torch.Tensor]:
    best, out = float("inf"), None
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = torch.cat([run(b) for b in batches])
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    weights = default_inception_path()
    ours = load_inception(weights, device=device)
    scripted = torch.jit.load(str(weights), map_location=device).eval()
    images = images_from_orl(args.images).to(device)
    batches = list(images.split(args.batch_size))
    with torch.inference_mode():
        for _ in range(2):  # warm-up: TorchScript's profiling executor and cuDNN autotuning
            ours.extract(batches[0])
            scripted(FidInceptionV3.normalize(batches[0]))
        t_ours, f_ours = time_run(lambda b: ours.extract(b).pool3, batches, device, args.repeats)
        t_ref, f_ref = time_run(lambda b: scripted(FidInceptionV3.normalize(b)), batches, device, args.repeats)
    n = images.shape[0]
    print(f"device {device}, {n} images of {tuple(images.shape[2:])}, batch {args.batch_size}, "
          f"threads {torch.get_num_threads()}")
    print(f"default_1.pt TorchScript: {n / t_ref:8.2f} images/s")
    print(f"fidlens FidInceptionV3  : {n / t_ours:8.2f} images/s")
    print(f"speed ratio (ours / TorchScript): {t_ref / t_ours:.2f}x")
    print(f"max |feature difference|: {(f_ours - f_ref).abs().max().item():.2e}")


if __name__ == "__main__":
    main()
