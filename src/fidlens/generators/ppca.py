"""The demo generator: probabilistic PCA fitted to the demo faces in about a second.

It is *not* a GAN. It exists so the generator path (seeds, w, truncation, noise modes,
heatmaps, pair studies) runs offline with no downloaded weights. The model
(Tipping & Bishop, 1999): x = U w + μ + σ ε, with w = A z, z ~ N(0, I), A diagonal.
The maximum-likelihood fit has U = the top-q principal directions,
A = diag(√(λᵢ − σ²)), σ² = the mean of the discarded eigenvalues. Images live in [−1, 1].
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch
from PIL import Image

from fidlens.core.atomic import atomic_path
from fidlens.data.datasets import open_image_source
from fidlens.core.errors import FidlensError
from fidlens.generators.base import GeneratorBase
from fidlens.generators.sampling import check_noise_mode

DEMO_LABEL = "PPCA demo generator (probabilistic PCA on ORL faces, not a GAN)"


class _PPCAMapping(torch.nn.Module):
    """z → w = A z, then truncation towards w_avg (= 0, the mean of w)."""

    def __init__(self, z_dim: int):
        super().__init__()
        self.register_buffer("scale", torch.ones(z_dim))
        self.register_buffer("w_avg", torch.zeros(z_dim))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None) -> torch.Tensor:
        w = z.to(self.scale.dtype) * self.scale
        ws = w.unsqueeze(1)
        if truncation_psi != 1 and (truncation_cutoff is None or truncation_cutoff > 0):
            ws = self.w_avg.lerp(ws, truncation_psi)
        return ws


class _PPCASynthesis(torch.nn.Module):
    """w → image = U w + μ (+ σ ε according to the noise mode), reshaped to CHW."""

    def __init__(self, w_dim: int, channels: int, resolution: int):
        super().__init__()
        pixels = channels * resolution * resolution
        self.shape = (channels, resolution, resolution)
        self.register_buffer("basis", torch.zeros(pixels, w_dim))
        self.register_buffer("mean", torch.zeros(pixels))
        self.register_buffer("noise_std", torch.zeros(()))
        self.register_buffer("noise_const", torch.zeros(pixels))

    def forward(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        check_noise_mode(noise_mode)
        x = ws[:, 0] @ self.basis.T + self.mean
        if noise_mode == "const":
            x = x + self.noise_std * self.noise_const
        elif noise_mode == "random":
            x = x + self.noise_std * torch.randn_like(x)
        return x.view(-1, *self.shape)


class PPCAGenerator(GeneratorBase):
    """A linear-Gaussian latent-variable image model with StyleGAN's interface (num_ws = 1)."""

    kind = "ppca-demo"

    def __init__(self, z_dim: int, img_resolution: int, img_channels: int = 3):
        super().__init__()
        self.z_dim = self.w_dim = z_dim
        self.c_dim = 0
        self.num_ws = 1
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.label = DEMO_LABEL
        self.mapping = _PPCAMapping(z_dim)
        self.synthesis = _PPCASynthesis(z_dim, img_channels, img_resolution)

    def config(self) -> dict:
        return {"z_dim": self.z_dim, "img_resolution": self.img_resolution, "img_channels": self.img_channels}

    def save(self, path: str | os.PathLike) -> None:
        with atomic_path(path) as tmp:
            torch.save({"format": "fidlens-ppca-1", "config": json.dumps(self.config()),
                        "state": self.state_dict()}, tmp)

    @classmethod
    def load(cls, path: str | os.PathLike) -> PPCAGenerator:
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a damaged file raises many types
            raise FidlensError(f"cannot read demo generator {path}: {exc}".splitlines()[0]) from exc
        if not isinstance(blob, dict) or blob.get("format") != "fidlens-ppca-1":
            raise FidlensError(f"{path} is not a fidlens demo generator")
        model = cls(**json.loads(blob["config"]))
        model.load_state_dict(blob["state"])
        return model.eval()


def face_crop(image: np.ndarray, resolution: int) -> np.ndarray:
    """Centre square crop, then Lanczos resize to ``resolution``² (uint8 HWC)."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = Image.fromarray(image[top : top + side, left : left + side])
    return np.asarray(square.resize((resolution, resolution), Image.Resampling.LANCZOS))


def fit_ppca(images_dir: str | os.PathLike, *, z_dim: int = 32, resolution: int = 64, seed: int = 0) -> PPCAGenerator:
    """Fit the PPCA model to every image in a folder or ZIP (centre-cropped and resized)."""
    source = open_image_source(images_dir)
    if len(source) <= z_dim:
        raise FidlensError(f"the demo generator needs more than z_dim={z_dim} images, {images_dir} has {len(source)}")
    crops = np.stack([face_crop(source[i], resolution) for i in range(len(source))])
    grey = bool((crops == crops[..., :1]).all())
    channels = 1 if grey else 3  # greyscale faces stay greyscale: no colour noise
    data = crops[..., :channels].astype(np.float64).transpose(0, 3, 1, 2).reshape(len(source), -1) / 127.5 - 1.0
    mean = data.mean(axis=0)
    _, singular, vt = np.linalg.svd(data - mean, full_matrices=False)
    eigvals = singular**2 / (len(source) - 1)
    # ML noise variance: the discarded variance spread over all D − q discarded dimensions.
    noise_var = float(eigvals[z_dim:].sum() / (data.shape[1] - z_dim))
    scale = np.sqrt(np.maximum(eigvals[:z_dim] - noise_var, 0.0))
    model = PPCAGenerator(z_dim, resolution, channels)
    rng = np.random.RandomState(seed)
    with torch.no_grad():
        model.mapping.scale.copy_(torch.from_numpy(scale))
        model.synthesis.basis.copy_(torch.from_numpy(vt[:z_dim].T))
        model.synthesis.mean.copy_(torch.from_numpy(mean))
        model.synthesis.noise_std.fill_(float(np.sqrt(noise_var)))
        model.synthesis.noise_const.copy_(torch.from_numpy(rng.randn(mean.size)))
    return model.eval()

