"""One model's pairs study: generate the set once, select by d_i, replace, refill; record by index.

The generated set is z = ``RandomState(latent_seed).randn(N, z_dim)`` (the convention of every
generated set here). One pass produces each image's w, pool3 feature and face flag; the
selected images are then re-synthesised from w′ (their replacements). For the "refill" delete
variant, further latents are taken from the same stream (rows N, N+1, …) skipping any that
would themselves have been selected (d ≤ the largest selected d). Everything needed by the
table and the figures is saved in one ``study.npz``; ``selection.csv`` lists every image.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch

from fidlens.core.atomic import atomic_path
from fidlens.core.errors import FidlensError
from fidlens.generators.generate import latent_batches, ws_for_latents
from fidlens.generators.base import GeneratorBase
from fidlens.generators.sampling import DEFAULT_SAMPLING, Sampling
from fidlens.detectors.base import Detector
from fidlens.core.progress import progress_bar
from fidlens.generators.latents import latents_z
from fidlens.studies.pairs.selection import DEFAULT_FRACTION, PairDirection, select_smallest
from fidlens.studies.pairs.spec import PairsFile
from fidlens.studies.pairs.study_file import FORMAT, Study

DELETE_MODES = ("shrink", "refill")


@dataclass(frozen=True)
class StudySettings:
    num_images: int = 50_000
    latent_seed: int = 0
    fraction: float = DEFAULT_FRACTION
    delete_mode: str = "shrink"
    batch_size: int = 16
    sampling: Sampling = DEFAULT_SAMPLING  # the generator settings every image of the study is made with

    def __post_init__(self) -> None:
        if self.delete_mode not in DELETE_MODES:
            raise FidlensError(f"delete_mode must be one of {DELETE_MODES}, not '{self.delete_mode}'")
        if self.num_images < 2:
            raise FidlensError("a pairs study needs at least 2 generated images")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> StudySettings:
        """From the flat dict the workflow passes: the study's own keys and the sampling keys side by side."""
        own = [f.name for f in fields(cls) if f.name != "sampling"]
        sampling = Sampling.from_mapping(values, ignore=own)
        return cls(**{key: values[key] for key in own if key in values}, sampling=sampling)

    def as_dict(self) -> dict[str, Any]:
        """The flat record written into study.npz (the layout it had before `Sampling` existed)."""
        record = asdict(self)
        record.update(record.pop("sampling"))
        return record


class _Imager:
    """Latents → w's, and latents → uint8 images → (pool3, face flags), batch by batch."""

    def __init__(self, G: GeneratorBase, detector: Detector, settings: StudySettings,
                 has_face: Callable[[np.ndarray], bool] | None, progress: bool):
        self.G, self.detector, self.settings = G, detector, settings
        self.has_face, self.progress = has_face, progress
        self.device = detector.device

    def w(self, z: np.ndarray) -> np.ndarray:
        """The first layer's w (N × w_dim, float64), in batches."""
        step = max(self.settings.batch_size, 256)
        parts = [ws_for_latents(self.G, z[i : i + step], sampling=self.settings.sampling,
                                device=self.device)[:, 0].double().cpu().numpy()
                 for i in range(0, len(z), step)]
        return np.concatenate(parts) if parts else np.empty((0, self.G.w_dim))

    def measure(self, z: np.ndarray, desc: str, edit_ws: Callable[[torch.Tensor], torch.Tensor] | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """Features (N × feature_dim, float32; pool3 for Inception) and face flags (N, bool; all False without a face detector)."""
        pool3 = np.empty((len(z), self.detector.feature_dim), dtype=np.float32)
        faces = np.zeros(len(z), dtype=bool)
        done = 0
        with progress_bar(total=len(z), desc=desc, unit="img", disable=not self.progress) as bar:
            for images in latent_batches(self.G, z, batch_size=self.settings.batch_size, edit_ws=edit_ws,
                                         sampling=self.settings.sampling, device=self.device):
                n = len(images)
                with torch.inference_mode():
                    pool3[done : done + n] = self.detector.features(images)["features"].float().cpu().numpy()
                if self.has_face is not None:
                    faces[done : done + n] = [self.has_face(im) for im in images.permute(0, 2, 3, 1).cpu().numpy()]
                done += n
                bar.update(n)
        return pool3, faces


def _refill_latents(imager: _Imager, direction: PairDirection, settings: StudySettings, count: int,
                    threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` latents after row N of the set's stream whose d exceeds ``threshold``."""
    n, extra = settings.num_images, max(2 * count, 64)
    while True:
        stream = np.random.RandomState(settings.latent_seed).randn(n + extra, imager.G.z_dim)[n:]
        d = direction.scores(imager.w(stream))
        usable = np.flatnonzero(d > threshold)
        if len(usable) >= count:
            chosen = usable[:count]
            return n + chosen, stream[chosen]
        extra *= 2


def run_study(G: GeneratorBase, detector: Detector, pairs: PairsFile, settings: StudySettings, *,
              has_face: Callable[[np.ndarray], bool] | None = None, progress: bool = True) -> dict[str, np.ndarray]:
    """Every array the table and figures need, keyed by name (see :func:`save_study`)."""
    imager = _Imager(G, detector, settings, has_face, progress)
    w_bad = imager.w(latents_z(pairs.bad, G.z_dim, pairs.probe_step))
    w_good = imager.w(latents_z(pairs.good, G.z_dim, pairs.probe_step))
    direction = PairDirection.from_pairs(w_bad, w_good)

    z_all = np.random.RandomState(settings.latent_seed).randn(settings.num_images, G.z_dim)
    w_all = imager.w(z_all)
    d = direction.scores(w_all)
    selected = select_smallest(d, settings.fraction)
    features, faces = imager.measure(z_all, "generated set")
    replaced, replaced_faces = imager.measure(z_all[selected], "replacements", edit_ws=direction.replace)
    out = {
        "w": w_all.astype(np.float32), "d": d, "selected": selected.astype(np.int64),
        "pool3": features, "faces": faces, "pool3_replaced": replaced, "faces_replaced": replaced_faces,
        "w_bad": w_bad, "w_good": w_good, "mean_bad": direction.mean_bad, "mean_good": direction.mean_good,
    }
    if settings.delete_mode == "refill":
        index, z_refill = _refill_latents(imager, direction, settings, len(selected), float(d[selected].max()))
        out["refill_index"] = index.astype(np.int64)
        out["pool3_refill"], out["faces_refill"] = imager.measure(z_refill, "refill")
    return out


def study_meta(G: GeneratorBase, detector: Detector, pairs: PairsFile, settings: StudySettings,
               face_detector: str | None) -> dict:
    return {
        "format": FORMAT, "generator": G.label or G.kind, "generator_kind": G.kind,
        "detector": detector.weights_name, "face_detector": face_detector, "settings": settings.as_dict(),
        "num_pairs": len(pairs.pairs), "probe_step": pairs.probe_step, "pairs_source": pairs.source,
        "pairs_rule": pairs.rule,
    }


def write_selection_csv(study: Study, path: str | os.PathLike) -> None:
    """One row per generated image: index, d_i, whether selected, rank, face flags."""
    a = study.arrays
    rank = {int(i): r for r, i in enumerate(study.selected)}
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["index", "d", "selected", "selection_rank", "face", "face_after_replace"])
        for i in range(study.num_images):
            r = rank.get(i)
            after = "" if r is None else int(a["faces_replaced"][r])
            out.writerow([i, f"{a['d'][i]:.6f}", int(r is not None), "" if r is None else r, int(a["faces"][i]), after])
