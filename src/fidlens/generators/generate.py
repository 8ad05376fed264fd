"""Generate images by seed with NVIDIA's conventions, and the features of generated sets.

z = ``RandomState(seed).randn(1, z_dim)`` per seed; a generated *set* of N images uses one
``RandomState(latent_seed).randn(N, z_dim)`` (the FID heatmap papers' convention).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fidlens.core.errors import FidlensError
from fidlens.generators.base import GeneratorBase, to_uint8, z_from_seed
from fidlens.detectors.base import Detector
from fidlens.generators.latents import MAX_SEED  # NVIDIA seeds seed numpy's RandomState: 32-bit integers
from fidlens.core.precision import exact_math
from fidlens.core.progress import progress_bar
from fidlens.generators.sampling import DEFAULT_SAMPLING, Sampling

MAX_SEEDS_PER_RUN = 1_000_000  # more is a typo ('0-4294967295'), and the list alone would fill memory


def parse_seeds(text: str) -> list[int]:
    """'0-3,10' → [0, 1, 2, 3, 10]; ranges are inclusive, as in NVIDIA's scripts.

    Seeds must lie in [0, 2**32 - 1] (what RandomState accepts); the count is bounded before
    any list is built.
    """
    parts = [p for p in (p.strip() for p in str(text).split(",")) if p]
    if not parts:
        raise FidlensError("no seeds given: use numbers and ranges like 0-3,10")
    ranges: list[tuple[int, int]] = []
    for part in parts:
        shown = part if len(part) <= 40 else part[:37] + "..."
        match = re.fullmatch(r"([0-9]+)(?:-([0-9]+))?", part)
        if not match:
            raise FidlensError(f"cannot read seeds '{shown}': use numbers and ranges like 0-3,10")
        if any(len(g.lstrip("0")) > 10 for g in match.groups(default="")):  # before int(): no 10**4000
            raise FidlensError(f"seed '{shown}' is larger than 2**32 - 1 = {MAX_SEED}")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        if max(first, last) > MAX_SEED:
            raise FidlensError(f"seed '{shown}' is larger than 2**32 - 1 = {MAX_SEED}")
        if last < first:
            raise FidlensError(f"seed range '{shown}' runs backwards")
        ranges.append((first, last))
    count = sum(last - first + 1 for first, last in ranges)
    if count > MAX_SEEDS_PER_RUN:
        raise FidlensError(f"the seeds name {count} images; at most {MAX_SEEDS_PER_RUN} per run")
    return [seed for first, last in ranges for seed in range(first, last + 1)]


def class_labels(G: GeneratorBase, class_idx: int | None, n: int, device: torch.device) -> torch.Tensor | None:
    if G.c_dim == 0:
        if class_idx is not None:
            raise FidlensError("this generator is unconditional; drop --class")
        return None
    if class_idx is None or not 0 <= class_idx < G.c_dim:
        raise FidlensError(f"this generator is conditional: give --class between 0 and {G.c_dim - 1}")
    c = torch.zeros(n, G.c_dim, device=device)
    c[:, class_idx] = 1
    return c


@torch.no_grad()
@exact_math()  # full float32 on GPUs, every call (see fidlens.core.precision)
def ws_for_latents(G: GeneratorBase, z: np.ndarray, *, sampling: Sampling = DEFAULT_SAMPLING,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """The mapping output (N, num_ws, w_dim) for latents z (N, z_dim), with the sampling's truncation and class."""
    device = torch.device(device)
    zt = torch.from_numpy(np.asarray(z, dtype=np.float32)).to(device)
    c = class_labels(G, sampling.class_idx, zt.shape[0], device)
    return G.mapping(zt, c, **sampling.mapping_kwargs())


@torch.no_grad()
@exact_math()
def synthesize_uint8(G: GeneratorBase, ws: torch.Tensor, sampling: Sampling = DEFAULT_SAMPLING) -> torch.Tensor:
    """uint8 NCHW images from ws with the sampling's noise mode, converted as the reference does."""
    return to_uint8(G.synthesis(ws, noise_mode=sampling.noise_mode))


def images_for_seeds(G: GeneratorBase, seeds: Sequence[int], *, sampling: Sampling = DEFAULT_SAMPLING,
                     device: torch.device | str = "cpu") -> torch.Tensor:
    z = np.concatenate([z_from_seed(s, G.z_dim) for s in seeds])
    ws = ws_for_latents(G, z, sampling=sampling, device=device)
    return synthesize_uint8(G, ws, sampling)


def save_seed_images(G: GeneratorBase, seeds: Sequence[int], outdir: str | os.PathLike, *, batch_size: int = 8,
                     sampling: Sampling = DEFAULT_SAMPLING, device: torch.device | str = "cpu") -> list[Path]:
    """Write ``outdir/seed0000.png`` … (PNG, native size; RGB, or greyscale for one-channel generators) for each seed."""
    from fidlens.core.atomic import atomic_path

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for start in progress_bar(range(0, len(seeds), batch_size), desc="generate", unit="batch"):
        chunk = list(seeds[start : start + batch_size])
        images = images_for_seeds(G, chunk, sampling=sampling, device=device).permute(0, 2, 3, 1).cpu().numpy()
        for seed, image in zip(chunk, images):
            path = outdir / f"seed{seed:04d}.png"
            with atomic_path(path) as tmp:
                Image.fromarray(image if image.shape[2] == 3 else image[..., 0]).save(tmp, format="PNG")
            written.append(path)
    return written


def latent_batches(G: GeneratorBase, z: np.ndarray, *, batch_size: int = 32,
                   edit_ws: Callable[[torch.Tensor], torch.Tensor] | None = None,
                   sampling: Sampling = DEFAULT_SAMPLING, device: torch.device | str = "cpu") -> Iterator[torch.Tensor]:
    """uint8 NCHW batches of the images of latents z (N × z_dim); ``edit_ws`` may change each batch's ws."""
    for start in range(0, len(z), batch_size):
        ws = ws_for_latents(G, z[start : start + batch_size], sampling=sampling, device=device)
        yield synthesize_uint8(G, ws if edit_ws is None else edit_ws(ws), sampling)


_SKIP_CHUNK = 1 << 22  # normals drawn at once while skipping to a shard's first row (32 MiB)


def latent_rows(latent_seed: int, z_dim: int, start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of RandomState(latent_seed).randn(N, z_dim), for any N ≥ stop, without the rows before.

    Why: a sharded generated set must be the unsharded set image for image. The legacy
    RandomState draws its normals one stream (randn(N, d) fills row by row), so drawing and
    dropping start·d normals first leaves the generator exactly where the full draw reaches row start.
    """
    if not 0 <= start <= stop:
        raise FidlensError(f"latent rows [{start}, {stop}) are not a range")
    rs = np.random.RandomState(latent_seed)
    skip = start * z_dim
    while skip:
        step = min(skip, _SKIP_CHUNK)
        rs.standard_normal(step)
        skip -= step
    return rs.randn(stop - start, z_dim)


def generated_batches(G: GeneratorBase, num_images: int, latent_seed: int, *, first: int = 0,
                      **kwargs) -> Iterator[torch.Tensor]:
    """uint8 NCHW batches of images first … first+num_images-1 of the set z = RandomState(latent_seed).randn(·, z_dim)."""
    z = (np.random.RandomState(latent_seed).randn(num_images, G.z_dim) if first == 0
         else latent_rows(latent_seed, G.z_dim, first, first + num_images))
    yield from latent_batches(G, z, **kwargs)


def generated_features(G: GeneratorBase, detector: Detector, num_images: int, latent_seed: int, *,
                       batch_size: int = 32, progress: bool = True, want_logits: bool = False,
                       sampling: Sampling = DEFAULT_SAMPLING, first: int = 0) -> dict[str, np.ndarray]:
    """The detector's features (float32) of a generated set, and its logits on request, batch by batch.

    ``first`` > 0 makes a shard: images first … first+num_images-1 of the set (see `latent_rows`).
    """
    device = detector.device
    out = {"features": np.empty((num_images, detector.feature_dim), dtype=np.float32)}
    if want_logits:
        out["logits"] = np.empty((num_images, detector.logits_dim), dtype=np.float32)
    done = 0
    with progress_bar(total=num_images, desc="generated features", unit="img", disable=not progress) as bar:
        for images in generated_batches(G, num_images, latent_seed, first=first, batch_size=batch_size,
                                        device=device, sampling=sampling):
            with torch.inference_mode():
                result = detector.features(images.to(device), want_logits=want_logits)
            n = len(result["features"])
            out["features"][done : done + n] = result["features"].float().cpu().numpy()
            if want_logits:
                out["logits"][done : done + n] = result["logits"].float().cpu().numpy()
            done += n
            bar.update(n)
    return out
