"""One set's attribution as the workflow makes it: ranking.csv, attribution.json and grid.png.

Why a module: the workflow job (scripts/attribution_set.py) is a thin wrapper, and the
steps (features → exact ΔFID → grid, with FID sensitivity heatmaps where the generator is
known) are tested here without Snakemake. Every output is computed first and written
atomically afterwards, so a failed job leaves nothing half-written.

Image access: an image set (folder or ZIP) shows its images without heatmaps (no generator
is known to draw them with); a generated set re-renders image i from row i of
``RandomState(latent_seed).randn(N, z_dim)`` — the rows its features came from — and, when
the detector exposes its spatial map, adds each tile's heatmap (`fidlens.studies.heatmap`).
torch is imported only for a generated set.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fidlens.core.atomic import write_bytes_atomic, write_text_atomic
from fidlens.core.errors import FidlensError
from fidlens.metrics.attribution import Attribution, attribute, ranking_csv_text
from fidlens.metrics.stats import FeatureSet, Statistics

__all__ = ["GeneratedSet", "attribution_summary", "feature_space", "run_set_attribution", "tile_indices"]

_INCEPTION = "Inception-v3 pool3"


def feature_space(meta: Mapping[str, Any]) -> str:
    """How outputs name the features: the detector's registry name and its weights file."""
    spec = meta.get("detector_spec")
    kind = spec.get("name") if isinstance(spec, Mapping) else None
    weights = meta.get("detector") or (spec.get("weights_name") if isinstance(spec, Mapping) else None)
    label = _INCEPTION if kind in (None, "inception") else str(kind)
    if kind is None and not weights:
        return "unknown (the feature file records no detector)"
    return f"{label} ({weights})" if weights else label


@dataclass(frozen=True)
class GeneratedSet:
    """Where a generated set's images come from: the generator and the latents of its features."""

    network: str
    num_images: int
    latent_seed: int
    sampling: Mapping[str, Any]
    which: str = "G_ema"


def tile_indices(delta: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(most harmful, most liked, count): the images the grid shows, count capped at N // 2."""
    order = np.argsort(np.asarray(delta), kind="stable")
    count = max(1, min(int(count), order.size // 2))
    return order[:count], order[::-1][:count], count


def attribution_summary(result: Attribution, *, set_label: str, space: str, reference: str, top: int,
                        heatmaps: str) -> dict:
    """attribution.json: the FID, the sizes, how ΔFID was computed and the extremes."""
    order, ranks = result.order, result.ranks

    def rows(indices: Sequence[int]) -> list[dict]:
        return [{"index": int(i), "name": (result.names or [""] * result.delta_fid.size)[i],
                 "delta_fid": float(result.delta_fid[i]), "rank": int(ranks[i])} for i in indices]

    info = result.quadrature
    return {
        "set": set_label, "reference": reference, "feature_space": space, "fid": result.fid,
        "num_images": int(result.delta_fid.size), "covariance": result.covariance,
        "delta_fid": "FID(set without image) - FID(set), exact (rank-1 downdate); rank 1 = most negative "
                     "(removing it lowers FID the most: the image hurts FID most)",
        "quadrature": None if info is None else {"nodes": info.nodes, "error_estimate": info.error_estimate,
                                                 "tolerance": result.extra.get("tolerance")},
        "heatmaps": heatmaps,
        "most_harmful": rows(order[:top]), "most_helpful": rows(order[::-1][:top]),
    }


def _generated_tiles(generated: GeneratedSet, indices: Sequence[int], *, detector_spec: Any, device: str,
                     reference_stats: str, set_features: FeatureSet, weighting: str, heatmaps: bool,
                     log: Callable[[str], None]) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray] | None, str]:
    """Images (and heatmap overlays) of generated images INDICES, and a note on the heatmaps."""
    from fidlens.detectors.features import pick_device
    from fidlens.detectors.registry import load_detector
    from fidlens.generators.generate import latent_batches
    from fidlens.generators.load import load_generator
    from fidlens.generators.sampling import Sampling
    from fidlens.studies.heatmap import FidSensitivity

    torch_device = pick_device(device, log=log)
    detector = load_detector(detector_spec, device=torch_device) if heatmaps else None
    G = load_generator(generated.network, which=generated.which).to(torch_device)
    z_all = np.random.RandomState(generated.latent_seed).randn(generated.num_images, G.z_dim)
    picked = list(indices)
    sampling = Sampling.from_mapping(generated.sampling)
    batch = next(latent_batches(G, z_all[picked], batch_size=len(picked), sampling=sampling, device=torch_device))
    images = {i: image.permute(1, 2, 0).cpu().numpy() for i, image in zip(picked, batch)}
    images = {i: np.repeat(im, 3, axis=2) if im.shape[2] == 1 else im for i, im in images.items()}
    if detector is None:
        return images, None, "no heatmaps: turned off in the config (attribution.heatmaps: false)"
    if not getattr(detector, "supports_heatmaps", False):
        return images, None, f"no heatmaps: detector {feature_space(set_features.meta)} has no spatial map"
    stats = Statistics.from_features(set_features.features, covariance="unbiased", meta=set_features.meta)
    sensitivity = FidSensitivity(detector, Statistics.load(reference_stats), stats, weighting=weighting)
    overlays = {}
    for i, image in zip(picked, batch):
        overlays[i] = np.uint8(np.clip(sensitivity.explain(image).overlay * 255.0, 0, 255))
    note = (f"heatmaps: {weighting}-weighted FID sensitivity (the heatmap study's map) of each image added once "
            f"more to the {stats.num_images} images' statistics; each map min-max normalised on its own")
    return images, overlays, note


def run_set_attribution(features_path: str | os.PathLike, reference_stats: str | os.PathLike, outputs: Mapping[str, str],
                        *, set_label: str, top: int = 4, covariance: str = "unbiased",
                        images: str | os.PathLike | None = None, generated: GeneratedSet | None = None,
                        detector_spec: Any = None, device: str = "cpu", weighting: str = "squared",
                        heatmaps: bool = True, log: Callable[[str], None] = print) -> Attribution:
    """Attribute every image of one set and write OUTPUTS {ranking, summary, grid}; returns the result.

    Give ``images`` (an image folder or ZIP whose order matches the features) or ``generated``.
    """
    from fidlens.data.datasets import open_image_source
    from fidlens.studies.attribution_grid import render_attribution_grid

    if (images is None) == (generated is None):
        raise FidlensError("attribution grid: give the set's images or its generator, exactly one")
    feats = FeatureSet.load(features_path)
    reference = Statistics.load(reference_stats)
    space = feature_space(feats.meta)
    n = feats.features.shape[0]
    source = None
    if images is not None:
        source = open_image_source(images)
        if len(source) != n:
            raise FidlensError(f"{images} holds {len(source)} images, its features {features_path} {n}")
        names = [str(name) for name in source.names]
    else:
        names = [f"z{generated.latent_seed}[{i}]" for i in range(n)]
    result = attribute(feats.features, reference.mu, reference.sigma, names=names, covariance=covariance)
    harmful, liked, count = tile_indices(result.delta_fid, top)
    shown = [int(i) for i in (*harmful, *liked)]
    overlays = None
    if source is not None:
        pictures = {i: source[i] for i in shown}
        note = "no heatmaps: an image set, so no generator is known to this run to explain its images with"
    else:
        pictures, overlays, note = _generated_tiles(
            generated, shown, detector_spec=detector_spec, device=device, reference_stats=str(reference_stats),
            set_features=feats, weighting=weighting, heatmaps=heatmaps, log=log)
    grid = render_attribution_grid(pictures.__getitem__, result.delta_fid, result.ranks, names, count,
                                   overlay_at=None if overlays is None else overlays.__getitem__,
                                   title=f"{set_label}: ΔFID = FID(without image) − FID(set); FID {result.fid:.3f}, "
                                         f"N = {n}, {space}", footer=note)
    summary = attribution_summary(result, set_label=set_label, space=space, reference=str(reference_stats),
                                  top=count, heatmaps=note)
    write_text_atomic(outputs["ranking"], ranking_csv_text(result))
    write_text_atomic(outputs["summary"], json.dumps(summary, indent=1, allow_nan=False) + "\n")
    write_bytes_atomic(outputs["grid"], grid)
    log(f"{set_label}: FID {result.fid:.4f}, ΔFID from {result.delta_fid.min():+.4g} to {result.delta_fid.max():+.4g}; "
        f"{note}")
    return result
