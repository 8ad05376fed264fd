"""Which device a detector runs on, and how many decoding workers feed it.

torch is imported only when a CUDA device is named or a device is resolved, so the CLI can
check ``--device cpu`` / ``auto`` on a statistics-only command without paying for torch.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from fidlens.core.device_spec import parse_device_spec
from fidlens.core.errors import FidlensError

if TYPE_CHECKING:
    import torch

__all__ = ["available_cpus", "check_device", "default_workers", "pick_device"]


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def check_device(requested: str | torch.device | None = "auto") -> str:
    """The normalised device string, refused in one line when it is misspelt or its CUDA device is not there.

    Cheap and silent, so the CLI can call it before loading anything.
    """
    spec = "auto" if requested in (None, "") else parse_device_spec(str(requested))
    if spec.startswith("cuda"):
        import torch

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
    import torch

    spec = check_device(requested)
    if spec == "auto":
        if torch.cuda.is_available():
            log(f"fidlens: running on CUDA device {torch.cuda.current_device()} ({torch.cuda.get_device_name()})")
            return torch.device("cuda")
        log(f"fidlens: no CUDA device visible, running on CPU ({torch.get_num_threads()} threads)")
        return torch.device("cpu")
    return torch.device(spec)


def available_cpus() -> int:
    """CPU cores this process may run on: its affinity mask where there is one, not the host's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_workers(device: str | torch.device | None = None) -> int:
    """Decoding workers: none on small machines, where the network needs every core.

    With the network on a GPU the cores have nothing else to do, and a 1024² PNG takes tens
    of ms to decode while the GPU takes ~1 ms per image: up to 8 workers, one core kept for
    the main process. On a CPU, half the cores decode and the rest run the network.
    """
    cpus = available_cpus()
    if cpus <= 2:
        return 0
    kind = getattr(device, "type", None) or str(device).partition(":")[0]
    if device is not None and kind == "cuda" and cpus >= 4:
        return min(8, cpus - 1)
    return min(8, cpus // 2)
