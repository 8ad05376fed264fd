"""Batched feature extraction over an image source with any `Detector`, with a progress bar.

Images are decoded in DataLoader worker processes while the network runs; batches of
mixed image sizes go to the detector as a list (each detector brings images to its input
size one at a time; the TF resize is per image anyway).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from fidlens.core.precision import exact_math
from fidlens.core.progress import progress_bar
from fidlens.data.datasets import ImageSource
from fidlens.detectors.base import Detector
from fidlens.detectors.device import available_cpus, check_device, default_workers, pick_device

__all__ = ["available_cpus", "check_device", "default_workers", "extract_features", "pick_device"]


def _collate(images: Sequence[np.ndarray]) -> torch.Tensor | list[torch.Tensor]:
    """Stack same-sized images into one uint8 NCHW tensor, otherwise keep a list."""
    tensors = [torch.from_numpy(np.require(im, requirements=("C", "W"))).permute(2, 0, 1) for im in images]
    if all(t.shape == tensors[0].shape for t in tensors):
        return torch.stack(tensors)
    return tensors


def _on_device(batch: torch.Tensor | list[torch.Tensor], device: torch.device) -> torch.Tensor | list[torch.Tensor]:
    if isinstance(batch, list):
        return [t.unsqueeze(0).to(device) for t in batch]
    return batch.to(device, non_blocking=True)


def extract_features(
    source: ImageSource,
    model: Detector,
    *,
    batch_size: int = 64,
    workers: int = 0,
    device: torch.device | str | None = None,
    want_logits: bool = False,
    progress: bool = True,
    desc: str | None = None,
) -> dict[str, np.ndarray]:
    """Features (float32, N × feature_dim) of every image, and the logits on request.

    DEVICE moves the detector there first; None keeps it where it is.
    """
    if device is not None:
        model = model.to(torch.device(device))
    device = torch.device(model.device)
    loader = DataLoader(
        source,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=_collate,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    features = np.empty((len(source), model.feature_dim), dtype=np.float32)
    logits = np.empty((len(source), model.logits_dim), dtype=np.float32) if want_logits else None
    done = 0
    bar = progress_bar(total=len(source), desc=desc or f"features {source.path.name}", unit="img",
                       disable=not progress, dynamic_ncols=True)
    with exact_math(), torch.inference_mode(), bar:  # TF32 off on GPUs (FIDLENS_ALLOW_TF32=1 opts in)
        for batch in loader:
            out = model.features(_on_device(batch, device), want_logits=want_logits)
            n = out["features"].shape[0]
            features[done : done + n] = out["features"].float().cpu().numpy()
            if logits is not None:
                logits[done : done + n] = out["logits"].float().cpu().numpy()
            done += n
            bar.update(n)
    if not np.isfinite(features).all():
        from fidlens.core.errors import StatisticsError

        raise StatisticsError(f"the network produced non-finite features for {source.path}")
    result = {"features": features}
    if logits is not None:
        result["logits"] = logits
    return result
