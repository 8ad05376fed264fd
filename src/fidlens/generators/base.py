"""The interface every generator offers, following NVIDIA's calling conventions.

``G.mapping(z, c, truncation_psi, truncation_cutoff) -> ws`` of shape (N, num_ws, w_dim),
``G.synthesis(ws, noise_mode) -> images`` NCHW float, nominally in [-1, 1], and
``G(z, c, ...)`` doing both. Heatmaps, pair studies and resampling only use this.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

class GeneratorBase(nn.Module):
    """Common attributes: z_dim, c_dim, w_dim, num_ws, img_resolution, img_channels, kind, label."""

    z_dim: int
    c_dim: int
    w_dim: int
    num_ws: int
    img_resolution: int
    img_channels: int
    kind: str = "generator"  # "stylegan2", "stylegan3-t", "stylegan3-r", "ppca-demo"
    label: str = ""  # shown in every output; says what the model is

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "const",
    ) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode)


def z_from_seed(seed: int, z_dim: int) -> np.ndarray:
    """NVIDIA's convention: ``RandomState(seed).randn(1, z_dim)`` (float64, cast by the caller)."""
    return np.random.RandomState(seed).randn(1, z_dim)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] → uint8 as the reference: clamp(x·127.5 + 128, 0, 255), then cast."""
    return (images * 127.5 + 128).clamp(0, 255).to(torch.uint8)
