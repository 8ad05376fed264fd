"""Batched Inception feature extraction over an image source, with a progress bar.

Images are decoded in DataLoader worker processes while the network runs; batches of
mixed image sizes are resized one image at a time (the TF resize is per image anyway).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from .datasets import ImageSource
from .inception import FidInceptionV3


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def pick_device(requested: str | None = "auto", log: Callable[[str], None] = _to_stderr) -> torch.device:
    """CUDA when visible and asked for (or ``auto``), else CPU, saying so."""
    if requested in (None, "", "auto"):
        if torch.cuda.is_available():
            log(f"fidlens: running on CUDA device {torch.cuda.current_device()} ({torch.cuda.get_device_name()})")
            return torch.device("cuda")
        log(f"fidlens: no CUDA device visible, running on CPU ({torch.get_num_threads()} threads)")
        return torch.device("cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        from .errors import FidlensError

        raise FidlensError(f"device '{requested}' was requested but no CUDA device is visible")
    return device


def _collate(images: Sequence[np.ndarray]) -> torch.Tensor | list[torch.Tensor]:
    """Stack same-sized images into one uint8 NCHW tensor, otherwise keep a list."""
    tensors = [torch.from_numpy(np.require(im, requirements=("C", "W"))).permute(2, 0, 1) for im in images]
    if all(t.shape == tensors[0].shape for t in tensors):
        return torch.stack(tensors)
    return tensors


def _normalized_batch(batch: torch.Tensor | list[torch.Tensor], device: torch.device) -> torch.Tensor:
    if isinstance(batch, list):
        return torch.cat([FidInceptionV3.normalize(t.unsqueeze(0).to(device)) for t in batch])
    return FidInceptionV3.normalize(batch.to(device, non_blocking=True))


def extract_features(
    source: ImageSource,
    model: FidInceptionV3,
    *,
    batch_size: int = 64,
    workers: int = 0,
    device: torch.device | str = "cpu",
    want_logits: bool = False,
    progress: bool = True,
    desc: str | None = None,
) -> dict[str, np.ndarray]:
    """pool3 features (float32, N×2048) of every image, and the logits on request."""
    device = torch.device(device)
    model = model.to(device).eval()
    loader = DataLoader(
        source,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=_collate,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    pool3 = np.empty((len(source), 2048), dtype=np.float32)
    logits = np.empty((len(source), 1008), dtype=np.float32) if want_logits else None
    done = 0
    bar = tqdm(total=len(source), desc=desc or f"features {source.path.name}", unit="img",
               disable=not progress, dynamic_ncols=True)
    with torch.inference_mode(), bar:
        for batch in loader:
            x = _normalized_batch(batch, device)
            out = model.forward_normalized(x, want_logits=want_logits)
            n = out.pool3.shape[0]
            pool3[done : done + n] = out.pool3.float().cpu().numpy()
            if logits is not None:
                logits[done : done + n] = out.logits.float().cpu().numpy()
            done += n
            bar.update(n)
    if not np.isfinite(pool3).all():
        from .errors import StatisticsError

        raise StatisticsError(f"the network produced non-finite features for {source.path}")
    result = {"pool3": pool3}
    if logits is not None:
        result["logits"] = logits
    return result


def default_workers() -> int:
    """Decoding workers: none on small machines, where the network needs every core."""
    return 0 if (os.cpu_count() or 1) <= 2 else min(8, (os.cpu_count() or 1) // 2)
