"""CLIP ViT image tower for CLIP-FID: the Fréchet distance between CLIP image embeddings.

The network follows the published architecture of CLIP's vision transformer (Radford et al.
2021, "Learning Transferable Visual Models From Natural Language Supervision"): a patch
convolution, a learned class token and position embedding, a pre-LayerNorm, pre-LN residual
blocks (multi-head self-attention, then a 4× MLP with QuickGELU ``x·sigmoid(1.702·x)``), a
LayerNorm on the class token and a linear projection.  Parameter names follow OpenAI's
checkpoints, so the ``visual.*`` tensors of ``ViT-B-32.pt`` load by name once the prefix is
stripped.  The embedding is the *unnormalised* output of ``encode_image`` (512-d for B/32).

Preprocessing reproduces CLIP's reference pipeline on PIL images, one image at a time:
resize the shorter side to 224 with PIL's bicubic filter (PIL antialiases when shrinking),
the longer side to ``int(224 · long / short)`` (truncated, as torchvision's ``Resize`` does),
centre crop with torchvision's offsets (``int(round((size - 224) / 2))``), scale to [0, 1] and
normalise with CLIP's mean and std.  PIL rather than ``torch.nn.functional.interpolate`` is
used because PIL's filter support and its 8-bit intermediate rounding are what the reference
embeddings were computed with; torch's antialiased bicubic differs by a few grey levels.

Weight files (:func:`load_clip_encoder`):

- OpenAI's TorchScript ``ViT-B-32.pt``: only its tensors are read, by `fidlens.assets.safe_torch_archive`
  (named as ``state_dict()`` names them); no code or pickled global in it is ever run; the
  text tower's tensors are ignored.
- a plain state dict (``.pt``, ``.pth``, ``.bin``) with ``visual.*`` keys (OpenAI, open_clip)
  or with the prefix already stripped; a ``state_dict`` wrapper and a ``module.`` prefix (an
  open_clip training checkpoint) are accepted.
- ``.safetensors`` when the optional ``safetensors`` package is installed.

Everything runs in float32 (OpenAI's file stores float16 tensors; widening them is exact).
"""

from __future__ import annotations

import math
import os
import re
import zipfile
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from fidlens.assets.store import stamped_sha256
from fidlens.core.errors import AssetError, StatisticsError
from fidlens.core.progress import progress_bar
from fidlens.assets.safe_torch_archive import torchscript_state_dict

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "ClipImageEncoder",
    "ClipVisionTransformer",
    "ClipWeightsMissing",
    "clip_features",
    "clip_preprocess",
    "clip_vision_config",
    "load_clip_encoder",
    "read_clip_visual_state",
]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
HEAD_WIDTH = 64  # every published CLIP ViT uses 64-wide attention heads


class ClipWeightsMissing(AssetError):
    """The configured CLIP weights file does not exist; CLIP-FID is skipped, the run goes on."""

    def __init__(self, path: str | os.PathLike | None):
        self.path = path
        super().__init__(f"CLIP-FID skipped: no weights at {path}")


# ---------------------------------------------------------------------------------------------
# Network


class LayerNormFp32(nn.LayerNorm):
    """LayerNorm computed in float32 whatever the input dtype, cast back afterwards."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.layer_norm(x.float(), self.normalized_shape, self.weight.float(), self.bias.float(), self.eps)
        return out.to(x.dtype)


class QuickGELU(nn.Module):
    """CLIP's sigmoid approximation of GELU: ``x · sigmoid(1.702 x)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class SelfAttention(nn.Module):
    """Multi-head self-attention with ``nn.MultiheadAttention``'s parameter layout.

    ``in_proj_weight`` stacks the query, key and value projections (3·width × width);
    ``out_proj`` is a linear layer.  Input and output are batch-first ``(N, L, width)``.
    """

    def __init__(self, width: int, heads: int):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by {heads} heads")
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, width = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        # (N, L, 3·W) → 3 × (N, heads, L, head_width)
        qkv = qkv.view(n, length, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        out = out.transpose(1, 2).reshape(n, length, width)
        return self.out_proj(out)


class Mlp(nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.c_fc = nn.Linear(width, hidden)
        self.gelu = QuickGELU()
        self.c_proj = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class ResidualAttentionBlock(nn.Module):
    """Pre-LN transformer block: ``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))``."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.ln_1 = LayerNormFp32(width)
        self.attn = SelfAttention(width, heads)
        self.ln_2 = LayerNormFp32(width)
        self.mlp = Mlp(width, 4 * width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.resblocks = nn.Sequential(*(ResidualAttentionBlock(width, heads) for _ in range(layers)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resblocks(x)


class ClipVisionTransformer(nn.Module):
    """CLIP's ViT image tower; defaults are ViT-B/32 (224 px, 32 px patches, 768 wide, 512-d out)."""

    def __init__(
        self,
        input_resolution: int = 224,
        patch_size: int = 32,
        width: int = 768,
        layers: int = 12,
        heads: int = 12,
        output_dim: int = 512,
    ):
        super().__init__()
        if input_resolution % patch_size:
            raise ValueError(f"input_resolution {input_resolution} is not a multiple of patch_size {patch_size}")
        self.input_resolution = input_resolution
        self.patch_size = patch_size
        self.width = width
        self.layers = layers
        self.heads = heads
        self.output_dim = output_dim
        grid = input_resolution // patch_size
        scale = width**-0.5
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, width))
        self.ln_pre = LayerNormFp32(width)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = LayerNormFp32(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def config(self) -> dict[str, int]:
        return {
            "input_resolution": self.input_resolution,
            "patch_size": self.patch_size,
            "width": self.width,
            "layers": self.layers,
            "heads": self.heads,
            "output_dim": self.output_dim,
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images ``(N, 3, R, R)`` → unnormalised embeddings ``(N, output_dim)``."""
        x = x.to(self.conv1.weight.dtype)
        x = self.conv1(x)  # (N, width, grid, grid)
        x = x.flatten(2).transpose(1, 2)  # (N, grid², width), row-major patch order
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x)
        x = self.transformer(x)
        x = self.ln_post(x[:, 0, :])
        return x @ self.proj


# ---------------------------------------------------------------------------------------------
# Preprocessing


def _resized_size(height: int, width: int, resolution: int) -> tuple[int, int]:
    """torchvision ``Resize(int)``: shorter side → resolution, longer side truncated."""
    if width <= height:
        return int(resolution * height / width), resolution
    return resolution, int(resolution * width / height)


def _preprocess_one(image: np.ndarray, resolution: int) -> np.ndarray:
    """One ``(H, W)``, ``(H, W, 1|3|4)`` uint8 image → float32 ``(3, R, R)`` in [0, 1]."""
    if image.dtype != np.uint8:
        raise ValueError(f"CLIP preprocessing needs uint8 images, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]  # PIL's convert("RGB") drops alpha the same way
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"expected an (H, W) or (H, W, 1|3|4) image, got shape {image.shape}")
    height, width = image.shape[:2]
    pil = Image.fromarray(np.ascontiguousarray(image))
    new_h, new_w = _resized_size(height, width, resolution)
    if (new_h, new_w) != (height, width):
        pil = pil.resize((new_w, new_h), Image.Resampling.BICUBIC)
    top = round((new_h - resolution) / 2.0)  # torchvision's CenterCrop offsets
    left = round((new_w - resolution) / 2.0)
    pil = pil.crop((left, top, left + resolution, top + resolution))
    out = np.asarray(pil, dtype=np.float32)
    if out.ndim == 2:  # greyscale is resized in L mode, then repeated (convert("RGB"))
        out = np.repeat(out[:, :, None], 3, axis=2)
    return out.transpose(2, 0, 1) / np.float32(255.0)


def _normalize(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(CLIP_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - mean) / std


def _as_hwc_list(images: torch.Tensor | np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    if isinstance(images, torch.Tensor | np.ndarray):
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"expected uint8 images shaped (N, 3, H, W) or (N, 1, H, W), got {tuple(images.shape)}")
        if isinstance(images, torch.Tensor):
            if images.dtype != torch.uint8:
                raise ValueError(f"CLIP preprocessing needs uint8 images, got {images.dtype}")
            images = images.detach().cpu().numpy()
        return [im.transpose(1, 2, 0) for im in images]
    return [np.asarray(im) for im in images]


def clip_preprocess(
    images_uint8: torch.Tensor | np.ndarray | Sequence[np.ndarray], resolution: int = 224
) -> torch.Tensor:
    """CLIP's reference preprocessing → float32 ``(N, 3, resolution, resolution)``.

    Takes a uint8 ``(N, 3, H, W)`` or ``(N, 1, H, W)`` tensor (greyscale is repeated to three
    channels), or a sequence of ``(H, W, C)`` uint8 arrays of any sizes.  Each image goes
    through PIL: bicubic resize of the shorter side to ``resolution``, centre crop, /255,
    normalisation with CLIP's mean and std.
    """
    arrays = [_preprocess_one(im, resolution) for im in _as_hwc_list(images_uint8)]
    if not arrays:
        return torch.empty((0, 3, resolution, resolution), dtype=torch.float32)
    return _normalize(torch.from_numpy(np.stack(arrays)))


# ---------------------------------------------------------------------------------------------
# Weights

_IGNORED_TOP_LEVEL = {"input_resolution", "context_length", "vocab_size"}


def clip_vision_config(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """ViT hyper-parameters implied by the shapes of an (unprefixed) image-tower state dict."""
    for key in ("conv1.weight", "class_embedding", "positional_embedding", "proj"):
        if key not in state:
            hint = " (a ResNet CLIP model? only ViT image towers are supported)" if key == "class_embedding" else ""
            raise AssetError(f"not a CLIP ViT image tower: tensor '{key}' is missing{hint}")
    conv = state["conv1.weight"]
    if conv.ndim != 4 or conv.shape[1] != 3 or conv.shape[2] != conv.shape[3]:
        raise AssetError(f"conv1.weight has shape {tuple(conv.shape)}, expected (width, 3, patch, patch)")
    width, patch = int(conv.shape[0]), int(conv.shape[2])
    positions = int(state["positional_embedding"].shape[0])
    grid = math.isqrt(max(positions - 1, 0))
    if grid < 1 or grid * grid + 1 != positions:
        raise AssetError(f"positional_embedding has {positions} rows, expected grid² + 1")
    proj = state["proj"]
    if proj.ndim != 2:
        raise AssetError(f"proj has shape {tuple(proj.shape)}, expected (width, output_dim)")
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"transformer\.resblocks\.(\d+)\.", k))}
    if not blocks or blocks != set(range(len(blocks))):
        raise AssetError(f"transformer blocks are not numbered 0..n-1: found {sorted(blocks)[:5]}")
    if width % HEAD_WIDTH:
        raise AssetError(f"width {width} is not a multiple of the {HEAD_WIDTH}-wide attention heads")
    return {
        "input_resolution": patch * grid,
        "patch_size": patch,
        "width": width,
        "layers": len(blocks),
        "heads": width // HEAD_WIDTH,
        "output_dim": int(proj.shape[1]),
    }


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(re.search(r"(^|/)(code/|constants\.pkl$)", n) for n in archive.namelist())


def _read_tensors(path: Path) -> dict[str, Any]:
    if path.suffix.lower() == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as exc:
            raise AssetError(
                f"{path} is a .safetensors file and the optional 'safetensors' package is not "
                "installed; install it or convert the weights to a .pt state dict"
            ) from exc
        try:
            return dict(load_file(str(path), device="cpu"))
        except Exception as exc:
            raise AssetError(f"cannot read CLIP weights {path}: {exc}".splitlines()[0]) from exc
    if _is_torchscript(path):
        # OpenAI's ViT-B-32.pt: tensors only, read without running anything from the archive.
        state: Any = torchscript_state_dict(path)
    else:
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for damaged or foreign files
            raise AssetError(f"cannot read CLIP weights {path}: {exc}".splitlines()[0]) from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # open_clip training checkpoint
    if not isinstance(state, dict):
        raise AssetError(f"{path} does not hold a state dict (found {type(state).__name__})")
    return state


def read_clip_visual_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The image tower's tensors of a CLIP weights file, without the ``visual.`` prefix."""
    state = _read_tensors(Path(path))
    state = {str(k): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    if any(k.startswith("visual.") for k in state):
        return {k[len("visual.") :]: v for k, v in state.items() if k.startswith("visual.")}
    if any(k.startswith("vision_model.") for k in state):
        raise AssetError(
            f"{path} uses Hugging Face transformers' CLIP names (vision_model.*); give OpenAI's "
            "ViT-B-32.pt or an open_clip checkpoint instead"
        )
    return {k: v for k, v in state.items() if k not in _IGNORED_TOP_LEVEL}


def build_clip_vision(state: dict[str, torch.Tensor], source: str = "state dict") -> ClipVisionTransformer:
    """A :class:`ClipVisionTransformer` sized from ``state`` and filled with it (float32, CPU)."""
    config = clip_vision_config(state)
    model = ClipVisionTransformer(**config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise AssetError(f"{source} does not match a CLIP ViT image tower: {detail}")
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise AssetError(
                f"{source}: tensor {key} has shape {tuple(value.shape)}, "
                f"expected {tuple(expected[key].shape)} for {config}"
            )
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return model.eval()


class ClipImageEncoder:
    """CLIP's image tower plus its preprocessing: uint8 images → unnormalised embeddings."""

    def __init__(
        self,
        model: ClipVisionTransformer,
        *,
        device: str | torch.device = "cpu",
        weights_path: str | os.PathLike | None = None,
    ):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.weights_path = Path(weights_path) if weights_path is not None else None
        self.weights_name = self.weights_path.name if self.weights_path is not None else None

    @cached_property
    def weights_sha256(self) -> str | None:
        """sha256 of the weights file (computed on first use; a stamp beside it spares re-hashing)."""
        return stamped_sha256(self.weights_path) if self.weights_path is not None else None

    @property
    def resolution(self) -> int:
        return self.model.input_resolution

    @property
    def output_dim(self) -> int:
        return self.model.output_dim

    def preprocess(self, images_uint8: torch.Tensor | np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
        return clip_preprocess(images_uint8, self.resolution)

    @torch.inference_mode()
    def encode_preprocessed(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.to(self.device)).float().cpu()

    def encode(self, images_uint8: torch.Tensor | np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
        """uint8 ``(N, 3|1, H, W)`` (or a list of HWC arrays) → float32 ``(N, output_dim)`` on CPU."""
        x = self.preprocess(images_uint8)
        if x.shape[0] == 0:
            return torch.empty((0, self.output_dim), dtype=torch.float32)
        return self.encode_preprocessed(x)


def load_clip_encoder(path: str | os.PathLike | None, device: str | torch.device = "cpu") -> ClipImageEncoder:
    """Load CLIP's ViT image tower from ``path`` (see the module docstring for formats).

    Raises :class:`ClipWeightsMissing` (message ``CLIP-FID skipped: no weights at {path}``)
    when there is no file at ``path``, and :class:`AssetError` for an unreadable or foreign file.
    """
    if path is None or str(path) == "" or not Path(path).expanduser().is_file():
        raise ClipWeightsMissing(path)
    file = Path(path).expanduser()
    model = build_clip_vision(read_clip_visual_state(file), source=str(file))
    return ClipImageEncoder(model, device=device, weights_path=file)


def clip_features(
    source: Sequence[np.ndarray],
    encoder: ClipImageEncoder,
    *,
    batch_size: int = 64,
    progress: bool = True,
    desc: str | None = None,
) -> np.ndarray:
    """CLIP embeddings (float32, ``N × output_dim``) of every ``(H, W, 3)`` uint8 image of ``source``."""
    n = len(source)
    out = np.empty((n, encoder.output_dim), dtype=np.float32)
    name = getattr(getattr(source, "path", None), "name", None)
    bar = progress_bar(total=n, desc=desc or (f"CLIP features {name}" if name else "CLIP features"), unit="img",
                       disable=not progress, dynamic_ncols=True)
    with bar:
        for start in range(0, n, batch_size):
            batch = [source[i] for i in range(start, min(start + batch_size, n))]
            out[start : start + len(batch)] = encoder.encode(batch).numpy()
            bar.update(len(batch))
    if not np.isfinite(out).all():
        raise StatisticsError(f"the CLIP network produced non-finite features for {getattr(source, 'path', 'the images')}")
    return out
