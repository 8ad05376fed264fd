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

from fidlens.data.datasets import ImageSource
from fidlens.detectors.inception import FidInceptionV3
from fidlens.core.precision import exact_math
from fidlens.core.progress import progress_bar


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def check_device(requested: str | torch.device | None = "auto") -> str:
    """The normalised device string, refused in one line when it is misspelt or its CUDA device is not there.

    Cheap and silent, so the CLI can call it before loading anything.
    """
    from fidlens.core.device_spec import parse_device_spec
    from fidlens.core.errors import FidlensError

    spec = "auto" if requested in (None, "") else parse_device_spec(str(requested))
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise FidlensError(f"device '{spec}' was requested but no CUDA device is visible")
        index = int(spec.partition(":")[2] or 0)
        count = torch.cuda.device_count()
        if index >= count:
            raise FidlensError(f"device '{spec}' was requested but only {count} CUDA device(s) are visible "
                               f"(cuda:0 to cuda:{count - 1})")
    return spec


def pick_device(requested: str | torch.device | None = "auto", log: Callable[[str], None] = _to_stderr) -> torch.device:
    """CUDA when visible and asked for (or ``auto``), else CPU, saying so."""
    spec = check_device(requested)
    if spec == "auto":
        if torch.cuda.is_available():
            log(f"fidlens: running on CUDA device {torch.cuda.current_device()} ({torch.cuda.get_device_name()})")
            return torch.device("cuda")
        log(f"fidlens: no CUDA device visible, running on CPU ({torch.get_num_threads()} threads)")
        return torch.device("cpu")
    return torch.device(spec)


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
    bar = progress_bar(total=len(source), desc=desc or f"features {source.path.name}", unit="img",
                       disable=not progress, dynamic_ncols=True)
    with exact_math(), torch.inference_mode(), bar:  # TF32 off on GPUs (FIDLENS_ALLOW_TF32=1 opts in)
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
        from fidlens.core.errors import StatisticsError

        raise StatisticsError(f"the network produced non-finite features for {source.path}")
    result = {"pool3": pool3}
    if logits is not None:
        result["logits"] = logits
    return result


def available_cpus() -> int:
    """CPU cores this process may run on: its affinity mask where there is one, not the host's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_workers(device: torch.device | str | None = None) -> int:
    """Decoding workers: none on small machines, where the network needs every core.

    With the network on a GPU the cores have nothing else to do, and a 1024² PNG takes tens
    of ms to decode while the GPU takes ~1 ms per image: up to 8 workers, one core kept for
    the main process. On a CPU, half the cores decode and the rest run the network.
    """
    cpus = available_cpus()
    if cpus <= 2:
        return 0
    if device is not None and torch.device(device).type == "cuda" and cpus >= 4:
        return min(8, cpus - 1)
    return min(8, cpus // 2)
