"""A generated candidate pool, generated once and measured by every detector in the same pass.

Why: each resampling mode of one run reads the same pool. Generating 250,000 images per mode,
one at a time on the CPU, to recompute their CLIP embeddings made the paper's run impractical;
here each batch of images is synthesised once on the job's device and handed to every detector
(Inception, CLIP, … from `fidlens.detectors.registry`), and each detector's features are written
to their own file, which every mode's job then reads.

Candidate i is latent row i of ``RandomState(latent_seed).randn(N, z_dim)``, the convention of
every generated set here. ``rows=(start, stop)`` measures only rows start..stop-1 of that same
stream, so a pool can be split into shards (one job each) whose files `concatenate_parts` joins
back into exactly the whole pool's arrays.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Mapping, Sequence

import numpy as np

from fidlens.core.errors import FidlensError
from fidlens.core.progress import progress_bar
from fidlens.detectors.base import Detector, detector_record
from fidlens.extraction.pipeline import GenerationSettings
from fidlens.metrics.stats import FeatureSet, provenance

__all__ = ["concatenate_parts", "featurise_generated_pool", "pool_source_hash", "pool_z"]


def pool_z(num_images: int, latent_seed: int, z_dim: int, rows: tuple[int, int] | None = None) -> np.ndarray:
    """The pool's latents (rows start..stop-1 of the whole pool's stream when ``rows`` is given)."""
    start, stop = _rows(num_images, rows)
    return np.random.RandomState(latent_seed).randn(num_images, z_dim)[start:stop]


def _rows(num_images: int, rows: tuple[int, int] | None) -> tuple[int, int]:
    start, stop = (0, num_images) if rows is None else (int(rows[0]), int(rows[1]))
    if not 0 <= start < stop <= num_images:
        raise FidlensError(f"pool rows {start}..{stop} are not inside a pool of {num_images} images")
    return start, stop


def pool_source_hash(generator_sha256: str, which: str, generation: GenerationSettings) -> str:
    """The generated set's identity, as `compute_generated_features` keys it (generator file, settings)."""
    content = json.dumps({"generator": generator_sha256, "which": which, **generation.record()}, sort_keys=True)
    return hashlib.sha256(content.encode()).hexdigest()


def featurise_generated_pool(G, detectors: Mapping[str, Detector], generation: GenerationSettings, *,
                             generator_path: str | os.PathLike, generator_sha256: str, which: str = "G_ema",
                             rows: tuple[int, int] | None = None, batch_size: int = 64,
                             progress: bool = True) -> dict[str, FeatureSet]:
    """Features of the pool (or rows of it) for every detector, from one generation pass.

    G must already be on the device of the detectors. Logits are kept whenever a detector has them
    (the resampling modes logits/top_n/middle_n need them). Returns detector key → FeatureSet, each
    with the metadata a feature file of `compute_generated_features` carries, plus ``rows``.
    """
    import torch

    from fidlens.generators.generate import latent_batches

    if not detectors:
        raise FidlensError("a pool needs at least one detector")
    start, stop = _rows(generation.num_images, rows)
    z = pool_z(generation.num_images, generation.latent_seed, G.z_dim, (start, stop))
    count = len(z)
    arrays = {key: {"features": np.empty((count, d.feature_dim), dtype=np.float32),
                    "logits": np.empty((count, d.logits_dim), dtype=np.float32) if d.has_logits else None}
              for key, d in detectors.items()}
    device = next(iter(detectors.values())).device
    done = 0
    with progress_bar(total=count, desc="pool images", unit="img", disable=not progress) as bar:
        for images in latent_batches(G, z, batch_size=batch_size, sampling=generation.sampling, device=device):
            n = len(images)
            for key, detector in detectors.items():
                with torch.inference_mode():
                    out = detector.features(images.to(detector.device), want_logits=detector.has_logits)
                arrays[key]["features"][done : done + n] = out["features"].float().cpu().numpy()
                if detector.has_logits:
                    arrays[key]["logits"][done : done + n] = out["logits"].float().cpu().numpy()
            done += n
            bar.update(n)
    source_hash = pool_source_hash(generator_sha256, which, generation)
    description = {"kind": "generated", "generator": getattr(G, "label", None), "path": str(generator_path),
                   **generation.record(), "rows": [start, stop]}
    result = {}
    for key, detector in detectors.items():
        features = arrays[key]["features"]
        if not np.isfinite(features).all():
            raise FidlensError(f"the {detector.name} detector produced non-finite features for the pool")
        meta = provenance(description, source_hash, detector.weights_name, detector.weights_sha256)
        meta.update(resize=detector.resize, detector_spec=detector_record(detector), num_images=count)
        result[key] = FeatureSet(features=features, meta=meta, logits=arrays[key]["logits"])
    return result


def concatenate_parts(parts: Sequence[FeatureSet]) -> FeatureSet:
    """Shards of one pool (consecutive rows, in order) as the whole pool's feature set."""
    if not parts:
        raise FidlensError("no pool shards to join")
    rows = [tuple(p.meta["source"]["rows"]) for p in parts]
    for (_, stop), (start, _) in itertools.pairwise(rows):
        if start != stop:
            raise FidlensError(f"pool shards are not consecutive: one ends at row {stop}, the next starts at {start}")
    if len({p.meta["source_hash"] for p in parts}) != 1:
        raise FidlensError("pool shards come from different pools (their source hashes differ)")
    logits = None if any(p.logits is None for p in parts) else np.concatenate([p.logits for p in parts])
    features = np.concatenate([p.features for p in parts])
    meta = json.loads(json.dumps(parts[0].meta))
    meta["source"]["rows"] = [rows[0][0], rows[-1][1]]
    meta["num_images"] = len(features)
    return FeatureSet(features=features, meta=meta, logits=logits)
