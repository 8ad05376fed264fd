"""CLIP ViT-B/32's image tower as a `Detector` (the registry's ``clip``): CLIP-FID from the same pipeline.

The network, its preprocessing and its weight formats live in `fidlens.detectors.clip_encoder`;
this adapter only gives them the detector protocol: features are the 512-d unnormalised image
embeddings, there are no logits and no spatial map.
"""

from __future__ import annotations

from pathlib import Path

import torch

from fidlens.assets.store import cache_dir
from fidlens.core.errors import AssetError, FidlensError
from fidlens.detectors.base import DEFAULT_WEIGHTS, DetectorSpec
from fidlens.detectors.clip_encoder import ClipImageEncoder, ClipWeightsMissing, load_clip_encoder

__all__ = ["CLIP_DEFAULT_FILENAME", "ClipDetector", "from_spec"]

CLIP_DEFAULT_FILENAME = "ViT-B-32.pt"


class ClipDetector:
    """uint8 images in, CLIP image embeddings out (float32, ``output_dim`` wide)."""

    name = "clip"
    has_logits = False
    logits_dim = None
    reads_images = True
    supports_heatmaps = False

    def __init__(self, encoder: ClipImageEncoder, spec: DetectorSpec):
        self.encoder = encoder
        self.spec = spec

    @property
    def feature_dim(self) -> int:
        return self.encoder.output_dim

    @property
    def resize(self) -> str:
        """CLIP's reference preprocessing: PIL bicubic shorter side, centre crop (see clip_encoder)."""
        return f"clip-pil-bicubic-center-crop-{self.encoder.resolution}"

    @property
    def weights_name(self) -> str:
        return self.encoder.weights_name or "random-init"

    @property
    def weights_sha256(self) -> str | None:
        return self.encoder.weights_sha256

    @property
    def device(self) -> torch.device:
        return self.encoder.device

    def to(self, device: str | torch.device) -> ClipDetector:
        self.encoder.device = torch.device(device)
        self.encoder.model.to(self.encoder.device)
        return self

    def features(self, images: torch.Tensor | list[torch.Tensor], *, want_logits: bool = False) -> dict[str, torch.Tensor]:
        """``{"features": (N, 512)}`` from a uint8 NCHW batch or a list of batches of different sizes."""
        if want_logits:
            raise FidlensError("the clip detector has no logits")
        if isinstance(images, (list, tuple)):
            hwc = [im.permute(1, 2, 0).cpu().numpy() for t in images for im in (t if t.ndim == 4 else t[None])]
            return {"features": self.encoder.encode(hwc)}
        return {"features": self.encoder.encode(images)}


def default_clip_path() -> Path:
    """Where ``--detector clip`` looks for its weights when none are named: ``$FIDLENS_HOME/weights/ViT-B-32.pt``."""
    return cache_dir() / "weights" / CLIP_DEFAULT_FILENAME


def from_spec(spec: DetectorSpec, device: str | torch.device = "auto") -> ClipDetector:
    """The registry's ``clip``: weights 'default' ($FIDLENS_HOME/weights/ViT-B-32.pt) or a path to a CLIP file."""
    from fidlens.detectors.device import pick_device

    path = default_clip_path() if spec.weights == DEFAULT_WEIGHTS else Path(spec.weights).expanduser()
    try:
        encoder = load_clip_encoder(path, device=pick_device(device) if isinstance(device, str) else device)
    except ClipWeightsMissing:
        raise AssetError(f"CLIP weights not found at {path}; give --weights PATH to OpenAI's {CLIP_DEFAULT_FILENAME} "
                         "(`fidlens assets clip-vit-b32` says where to get it)") from None
    return ClipDetector(encoder, spec)
