"""Build the inputs of a resampling run from feature files: reals, the candidate pool, images, the control space.

A pool is either several image sets (their feature files concatenated, each candidate
labelled with its set so the run can report where the weight mass goes) or one generated
set (candidate i is latent row i of ``RandomState(latent_seed).randn(N, z_dim)``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fidlens.core.errors import FidlensError
from fidlens.data.datasets import open_image_source
from fidlens.generators.sampling import Sampling
from fidlens.metrics.stats import FeatureSet
from fidlens.studies.resampling.inputs import FeatureBank


@dataclass
class ImagePool:
    """Candidate i → uint8 image, across several image sets in order."""

    paths: list[str]

    def __post_init__(self) -> None:
        self.sources = [open_image_source(p) for p in self.paths]
        self.offsets = np.cumsum([0] + [len(s) for s in self.sources])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __call__(self, index: int) -> np.ndarray:
        part = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return self.sources[part][index - int(self.offsets[part])]


class GeneratedPool:
    """Candidate i → the generator's image for latent row i of the pool's RandomState.

    Only the figures' few images come from here (their features come from files), so the
    generator is loaded on the first image asked for, not when the run starts.
    """

    def __init__(self, generator_path: str | os.PathLike, num_images: int, latent_seed: int, sampling: Sampling,
                 which: str = "G_ema"):
        self.generator_path, self.which = generator_path, which
        self.num_images, self.latent_seed = num_images, latent_seed
        self.sampling = sampling
        self._G = None
        self._z: np.ndarray | None = None

    @property
    def G(self):
        if self._G is None:
            from fidlens.generators.load import load_generator

            self._G = load_generator(self.generator_path, which=self.which)
        return self._G

    @property
    def z(self) -> np.ndarray:
        if self._z is None:
            self._z = np.random.RandomState(self.latent_seed).randn(self.num_images, self.G.z_dim)
        return self._z

    def __len__(self) -> int:
        return self.num_images

    def __call__(self, index: int) -> np.ndarray:
        from fidlens.generators.generate import synthesize_uint8, ws_for_latents

        ws = ws_for_latents(self.G, self.z[index : index + 1], sampling=self.sampling)
        image = synthesize_uint8(self.G, ws, self.sampling)[0].permute(1, 2, 0).numpy()
        return image[..., 0] if image.shape[2] == 1 else image


def bank_from_files(paths: list[str], labels: list[str] | None = None) -> FeatureBank:
    """Concatenate feature files; logits only if every file has them."""
    sets = [FeatureSet.load(p) for p in paths]
    logits = None
    if all(s.logits is not None for s in sets):
        logits = np.concatenate([s.logits for s in sets])
    groups = None
    if labels is not None:
        groups = np.concatenate([np.full(len(s.pool3), label) for s, label in zip(sets, labels)])
    return FeatureBank(pool3=np.concatenate([s.pool3 for s in sets]), logits=logits, groups=groups)


NO_CONTROL = ("CLIP-FID skipped: no weights configured (set clip_weights to a ViT-B-32 weights file, or "
              "control_detector to any registered detector)")


def control_from_files(reals: FeatureBank, candidates: FeatureBank, control: Mapping[str, str] | None,
                       real_files: list[str], pool_files: list[str]) -> str | None:
    """Fill both banks' control features from files made once per set / pool, or say why they are skipped.

    CONTROL is the control detector ``{name, weights}`` (None: none configured). Why files: every
    mode of a run reads the same features; computing them in each mode's job cost a pass over all
    reals and candidates per mode. The files must match the banks row for row, and must have been
    made by the control detector (a file of another detector is refused, never compared).
    """
    if not control:
        return NO_CONTROL
    for bank, files, what in ((reals, real_files, "reals"), (candidates, pool_files, "candidates")):
        sets = [FeatureSet.load(p) for p in files]
        for path, features in zip(files, sets):
            made_by = (features.meta.get("detector_spec") or {}).get("name")
            if made_by is not None and made_by != control["name"]:
                raise FidlensError(f"{path} holds {made_by} features; the control detector is {control['name']}")
        features = np.concatenate([s.features for s in sets]) if sets else np.empty((0, 0), np.float32)
        if len(features) != len(bank.pool3):
            raise FidlensError(f"the {control['name']} features of the {what} ({', '.join(files)}) have "
                               f"{len(features)} rows, their Inception features {len(bank.pool3)}")
        bank.control = features
    return None


def clip_from_files(reals: FeatureBank, candidates: FeatureBank, clip_weights: str | None,
                    real_files: list[str], pool_files: list[str]) -> str | None:
    """`control_from_files` with CLIP as the control (CLIP_WEIGHTS: its weights file; None: no control)."""
    control = {"name": "clip", "weights": clip_weights} if clip_weights else None
    return control_from_files(reals, candidates, control, real_files, pool_files)


def attach_clip(reals: FeatureBank, candidates: FeatureBank, clip_weights: str | None,
                real_images: Callable[[int], np.ndarray], candidate_images: Callable[[int], np.ndarray],
                *, device: str = "cpu", batch_size: int = 64) -> str | None:
    """Fill the CLIP embeddings of both banks, or return the message saying why CLIP-FID is skipped."""
    from fidlens.detectors.clip_encoder import ClipWeightsMissing, clip_features, load_clip_encoder

    path = Path(clip_weights) if clip_weights else None
    if path is None:
        return "CLIP-FID skipped: no weights configured (set clip_weights to a ViT-B-32 weights file)"
    try:
        encoder = load_clip_encoder(path, device=device)
    except ClipWeightsMissing as exc:
        return str(exc)
    reals.clip = clip_features(_IndexedImages(real_images, len(reals.pool3)), encoder, batch_size=batch_size)
    candidates.clip = clip_features(_IndexedImages(candidate_images, len(candidates.pool3)), encoder,
                                    batch_size=batch_size)
    return None


class _IndexedImages:
    """A sequence view over an index → image callable (what the CLIP feature loop iterates)."""

    def __init__(self, images: Callable[[int], np.ndarray], count: int):
        self.images, self.count = images, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> np.ndarray:
        image = self.images(index)
        return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image

