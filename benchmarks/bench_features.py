"""Feature extraction speed: our module against running default_1.pt (TorchScript) directly.

Both see the same ORL faces, the same batches and the same TF1 resize; the ratio is
measured in one process, after warm-up runs of each (TorchScript optimises on its first calls).
Then decoding against the network for 1024² PNGs (synthetic, written to a temporary folder at
run time): images/s of one decoding process, of the default DataLoader workers for a GPU, and
of the network (resize included), so one sees whether decoding or the network is the bottleneck.
Usage: python benchmarks/bench_features.py [--images 128] [--batch-size 32] [--device cpu]
           [--decode-images 32] [--decode-size 1024]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from fidlens.assets.store import default_inception_path
from fidlens.data.datasets import open_image_source
from fidlens.detectors.features import _collate, available_cpus, default_workers
from fidlens.detectors.inception import FidInceptionV3
from fidlens.detectors.inception_weights import load_inception

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


def write_synthetic_pngs(folder: Path, count: int, size: int) -> None:
    """Photo-like PNGs (smooth gradients plus mild noise: they compress, and decode, like photos)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for i in range(count):
        a, b, c = rng.uniform(0.5, 3.0, size=3)
        base = np.stack([np.sin(a * 6 * xx + i), np.cos(b * 6 * yy), np.sin(c * 6 * (xx + yy))], axis=2)
        image = (base * 90 + 128 + rng.normal(0, 6, size=(size, size, 3))).clip(0, 255).astype(np.uint8)
        Image.fromarray(image).save(folder / f"img{i:04d}.png")


def decode_rate(source, workers: int, batch_size: int) -> float:
    from torch.utils.data import DataLoader

    loader = DataLoader(source, batch_size=batch_size, num_workers=workers, collate_fn=_collate)
    start = time.perf_counter()
    n = sum(len(batch) for batch in loader)
    return n / (time.perf_counter() - start)


def decode_vs_network(ours, device: torch.device, count: int, size: int, batch_size: int) -> None:
    with tempfile.TemporaryDirectory(prefix="fidlens-bench-decode-") as tmp:
        folder = Path(tmp)
        write_synthetic_pngs(folder, count, size)
        source = open_image_source(folder)
        workers = default_workers(torch.device("cuda"))
        one = decode_rate(source, 0, batch_size)
        many = decode_rate(source, workers, batch_size) if workers else one
        batch = torch.from_numpy(np.stack([source[i] for i in range(min(batch_size, count))])).permute(0, 3, 1, 2)
        batch = batch.contiguous().to(device)
        with torch.inference_mode():
            ours.extract(batch[:1])  # warm-up
            seconds, _ = time_run(lambda b: ours.extract(b).pool3, [batch], device, 2)
    net = batch.shape[0] / seconds
    print(f"{size}² PNGs ({count}), {available_cpus()} usable cores:")
    print(f"decode, main process only      : {one:8.2f} images/s")
    print(f"decode, {workers} worker(s) (GPU default): {many:8.2f} images/s")
    print(f"network on {device} (resize incl.) : {net:8.2f} images/s")
    bound = "decoding" if many < net else "the network"
    print(f"bottleneck: {bound}; workers needed to keep up: {max(1, int(np.ceil(net / one)))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--decode-images", type=int, default=32, help="synthetic PNGs for the decoding test (0: skip)")
    parser.add_argument("--decode-size", type=int, default=1024)
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
    if args.decode_images > 0:
        decode_vs_network(ours, device, args.decode_images, args.decode_size, min(args.batch_size, args.decode_images))


if __name__ == "__main__":
    main()
