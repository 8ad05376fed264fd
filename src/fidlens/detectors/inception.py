"""The FID Inception-v3 network (TensorFlow graph of 2015-12-05) as a plain ``torch.nn.Module``.

Written from the published architecture so that every layer can be read and
differentiated: the heatmap and resampling work needs the ``mixed_10`` map, the
logits, and gradients. Parameter names follow the layout of the TorchScript
releases of this graph (``layers.conv``, ``layers.mixed_4.tower_1.conv_2``, ``output``),
so those files load by name; :mod:`fidlens.detectors.inception_weights` maps other layouts
and builds this network for the detector registry. The module implements the
`fidlens.detectors.base.Detector` protocol itself, heatmap capability included.

Two details of the TF graph differ from torchvision's Inception-v3 and change FID:
the average pools exclude padding from the count, and the pool branch of the last
block (``mixed_10``) is a max pool.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from fidlens.core.errors import FidlensError
from fidlens.detectors.base import DetectorSpec
from fidlens.detectors.resize import tf1_resize_bilinear
from fidlens.metrics.comparability import RESIZE_CONVENTION

INPUT_SIZE = 299
FEATURE_DIM = 2048
NUM_LOGITS = 1008
BN_EPSILON = 1e-3
# Weight files that carry the 1008-way output layer (the default default_1.pt does not).
LOGITS_WEIGHT_FILES = ("inception-2015-12-05.pt", "pt_inception-2015-12-05-6726825d.pth")

_Pair = int | tuple[int, int]


class LogitsUnavailableError(FidlensError):
    """Logits were asked of weights that carry no output layer."""


def no_logits_message(weights_name: str) -> str:
    """Why there are no logits, and which weights have them."""
    return (
        f"the Inception weights '{weights_name}' have no output layer, so there are no logits; "
        f"use {' or '.join(LOGITS_WEIGHT_FILES)} (set detector.weights in the config or --weights)"
    )


class ConvBN(nn.Module):
    """Convolution without bias, batch norm with frozen statistics (TF's scale=False), ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel: _Pair, stride: int = 1, padding: _Pair = 0):
        super().__init__()
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        self.stride = stride
        self.padding = (padding, padding) if isinstance(padding, int) else padding
        self.weight = nn.Parameter(torch.zeros(out_ch, in_ch, kh, kw), requires_grad=False)
        self.beta = nn.Parameter(torch.zeros(out_ch), requires_grad=False)
        self.register_buffer("mean", torch.zeros(out_ch))
        self.register_buffer("var", torch.ones(out_ch))
        # The TF graph has no BN scale; the pytorch-fid port stores one (all ones). Kept as a
        # buffer so both layouts load without rewriting the other numbers.
        self.register_buffer("gamma", torch.ones(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Folding the frozen batch norm into the convolution is the same affine map, one
        # pass over memory fewer: about 3.5x faster on CPU, 1e-5 from the unfolded graph.
        inv_std = self.gamma * torch.rsqrt(self.var + BN_EPSILON)
        weight = self.weight * inv_std.view(-1, 1, 1, 1)
        bias = self.beta - self.mean * inv_std
        # ReLU in place on the fresh convolution output: the same values, one allocation fewer
        # (autograd keeps what it needs: conv2d's backward reads its input, relu's its output).
        return F.relu(F.conv2d(x, weight, bias, self.stride, self.padding), inplace=True)


class AvgPool3x3(nn.Module):
    """3×3 stride-1 average pool that, as in TF, does not count the zero padding."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


class MaxPool3x3(nn.Module):
    def __init__(self, stride: int, padding: int = 0):
        super().__init__()
        self.stride = stride
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x, 3, self.stride, self.padding)


def _chain(*convs: ConvBN) -> nn.Sequential:
    names = ["conv"] + [f"conv_{i}" for i in range(1, len(convs))]
    return nn.Sequential(OrderedDict(zip(names, convs)))


def _pool_then_conv(pool: nn.Module, conv: ConvBN) -> nn.Sequential:
    return nn.Sequential(OrderedDict([("pool", pool), ("conv", conv)]))


class Mixed35(nn.Module):
    """35×35 block (TF ``mixed``, ``mixed_1``, ``mixed_2``): 1×1, 5×5, double 3×3 and pool towers."""

    def __init__(self, in_ch: int, pool_ch: int):
        super().__init__()
        self.conv = ConvBN(in_ch, 64, 1)
        self.tower = _chain(ConvBN(in_ch, 48, 1), ConvBN(48, 64, 5, padding=2))
        self.tower_1 = _chain(
            ConvBN(in_ch, 64, 1), ConvBN(64, 96, 3, padding=1), ConvBN(96, 96, 3, padding=1)
        )
        self.tower_2 = _pool_then_conv(AvgPool3x3(), ConvBN(in_ch, pool_ch, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv(x), self.tower(x), self.tower_1(x), self.tower_2(x)], 1)


class Reduce35to17(nn.Module):
    """Grid reduction 35→17 (TF ``mixed_3``)."""

    def __init__(self, in_ch: int):
        super().__init__()
        self.conv = ConvBN(in_ch, 384, 3, stride=2)
        self.tower = _chain(
            ConvBN(in_ch, 64, 1), ConvBN(64, 96, 3, padding=1), ConvBN(96, 96, 3, stride=2)
        )
        self.pool = MaxPool3x3(stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv(x), self.tower(x), self.pool(x)], 1)


class Mixed17(nn.Module):
    """17×17 block with factorised 7×7 convolutions (TF ``mixed_4`` … ``mixed_7``)."""

    def __init__(self, in_ch: int, mid_ch: int):
        super().__init__()
        c = mid_ch
        self.conv = ConvBN(in_ch, 192, 1)
        self.tower = _chain(
            ConvBN(in_ch, c, 1),
            ConvBN(c, c, (1, 7), padding=(0, 3)),
            ConvBN(c, 192, (7, 1), padding=(3, 0)),
        )
        self.tower_1 = _chain(
            ConvBN(in_ch, c, 1),
            ConvBN(c, c, (7, 1), padding=(3, 0)),
            ConvBN(c, c, (1, 7), padding=(0, 3)),
            ConvBN(c, c, (7, 1), padding=(3, 0)),
            ConvBN(c, 192, (1, 7), padding=(0, 3)),
        )
        self.tower_2 = _pool_then_conv(AvgPool3x3(), ConvBN(in_ch, 192, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv(x), self.tower(x), self.tower_1(x), self.tower_2(x)], 1)


class Reduce17to8(nn.Module):
    """Grid reduction 17→8 (TF ``mixed_8``)."""

    def __init__(self, in_ch: int):
        super().__init__()
        self.tower = _chain(ConvBN(in_ch, 192, 1), ConvBN(192, 320, 3, stride=2))
        self.tower_1 = _chain(
            ConvBN(in_ch, 192, 1),
            ConvBN(192, 192, (1, 7), padding=(0, 3)),
            ConvBN(192, 192, (7, 1), padding=(3, 0)),
            ConvBN(192, 192, 3, stride=2),
        )
        self.pool = MaxPool3x3(stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.tower(x), self.tower_1(x), self.pool(x)], 1)


class Mixed8(nn.Module):
    """8×8 block with split 1×3 / 3×1 heads (TF ``mixed_9``, ``mixed_10``).

    ``max_pool_branch`` is True for ``mixed_10``, where the TF graph max-pools.
    """

    def __init__(self, in_ch: int, max_pool_branch: bool):
        super().__init__()
        self.conv = ConvBN(in_ch, 320, 1)
        self.tower_conv = ConvBN(in_ch, 384, 1)
        self.tower_mixed_conv = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.tower_mixed_conv_1 = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.tower_1_conv = ConvBN(in_ch, 448, 1)
        self.tower_1_conv_1 = ConvBN(448, 384, 3, padding=1)
        self.tower_1_mixed_conv = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.tower_1_mixed_conv_1 = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.tower_2_pool = MaxPool3x3(stride=1, padding=1) if max_pool_branch else AvgPool3x3()
        self.tower_2_conv = ConvBN(in_ch, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.tower_conv(x)
        b = self.tower_1_conv_1(self.tower_1_conv(x))
        return torch.cat(
            [
                self.conv(x),
                self.tower_mixed_conv(a),
                self.tower_mixed_conv_1(a),
                self.tower_1_mixed_conv(b),
                self.tower_1_mixed_conv_1(b),
                self.tower_2_conv(self.tower_2_pool(x)),
            ],
            1,
        )


def _build_layers() -> nn.Sequential:
    """Stem and the eleven mixed blocks, from 299×299×3 to the 8×8×2048 ``mixed_10`` map."""
    return nn.Sequential(
        OrderedDict(
            [
                ("conv", ConvBN(3, 32, 3, stride=2)),
                ("conv_1", ConvBN(32, 32, 3)),
                ("conv_2", ConvBN(32, 64, 3, padding=1)),
                ("pool0", MaxPool3x3(stride=2)),
                ("conv_3", ConvBN(64, 80, 1)),
                ("conv_4", ConvBN(80, 192, 3)),
                ("pool1", MaxPool3x3(stride=2)),
                ("mixed", Mixed35(192, 32)),
                ("mixed_1", Mixed35(256, 64)),
                ("mixed_2", Mixed35(288, 64)),
                ("mixed_3", Reduce35to17(288)),
                ("mixed_4", Mixed17(768, 128)),
                ("mixed_5", Mixed17(768, 160)),
                ("mixed_6", Mixed17(768, 160)),
                ("mixed_7", Mixed17(768, 192)),
                ("mixed_8", Reduce17to8(768)),
                ("mixed_9", Mixed8(1280, max_pool_branch=False)),
                ("mixed_10", Mixed8(2048, max_pool_branch=True)),
            ]
        )
    )


class InceptionOutputs(NamedTuple):
    """What one forward pass can give: pool3 always, the map and logits on request."""

    pool3: torch.Tensor
    mixed_10: torch.Tensor | None = None
    logits: torch.Tensor | None = None


class FidInceptionV3(nn.Module):
    """uint8 (or 0–255 float) RGB images of any size in, 2048-d pool3 features out.

    ``forward`` returns pool3 so the module drops into ordinary torch code;
    :meth:`extract` also returns the ``mixed_10`` map and the 1008 logits.
    Construct with ``with_logits=False`` for weights that have no output layer.
    As a `fidlens.detectors.base.Detector` it is named ``inception``; its spatial map makes the
    FID heatmaps possible (``supports_heatmaps``).
    """

    name = "inception"
    feature_dim = FEATURE_DIM
    resize = RESIZE_CONVENTION  # TF1 legacy bilinear to 299 x 299 (fidlens.detectors.resize)
    reads_images = True
    supports_heatmaps = True

    def __init__(self, with_logits: bool = True):
        super().__init__()
        self.layers = _build_layers()
        self.output = nn.Linear(FEATURE_DIM, NUM_LOGITS) if with_logits else None
        if self.output is not None:
            self.output.requires_grad_(False)
        # Filled by the weight loader; say which detector produced a number.
        self.weights_name: str = "random-init"
        self.weights_sha256: str | None = None
        self.spec = DetectorSpec("inception", "random-init")  # the loader records what was asked for
        # channels_last is about 1.8x faster for these convolutions on CPU and GPU.
        self.to(memory_format=torch.channels_last)
        self.eval()

    @property
    def has_logits(self) -> bool:
        return self.output is not None

    @property
    def logits_dim(self) -> int | None:
        return NUM_LOGITS if self.output is not None else None

    @property
    def device(self) -> torch.device:
        return self.layers.conv.weight.device

    @staticmethod
    def normalize(images: torch.Tensor) -> torch.Tensor:
        """uint8/0–255 NCHW → float32, TF1 bilinear resize to 299×299, then (x − 128) / 128."""
        if images.ndim != 4:
            raise ValueError(f"expected an NCHW image batch, got shape {tuple(images.shape)}")
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        if images.shape[1] != 3:
            raise ValueError(f"expected 1 or 3 channels, got {images.shape[1]}")
        x = images.to(torch.float32)
        x = tf1_resize_bilinear(x, (INPUT_SIZE, INPUT_SIZE))
        return (x - 128.0) / 128.0

    def forward_normalized(self, x: torch.Tensor, *, want_map: bool = False, want_logits: bool = False) -> InceptionOutputs:
        """Run the network on an already normalised 299×299 batch (TF32 off on GPUs: `fidlens.core.precision`)."""
        from fidlens.core.precision import exact_math

        with exact_math():
            fmap = self.layers(x.contiguous(memory_format=torch.channels_last))
        pool3 = fmap.mean(dim=(2, 3))
        logits = None
        if want_logits:
            if self.output is None:
                raise LogitsUnavailableError(no_logits_message(self.weights_name))
            logits = self.output(pool3)
        return InceptionOutputs(pool3, fmap if want_map else None, logits)

    def extract(self, images: torch.Tensor, *, want_map: bool = False, want_logits: bool = False) -> InceptionOutputs:
        """pool3 features, and on request the 8×8×2048 ``mixed_10`` map and the 1008 logits."""
        return self.forward_normalized(self.normalize(images), want_map=want_map, want_logits=want_logits)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.extract(images).pool3

    def _normalize_any(self, images: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        """One normalised batch from a batch, or from a list of batches of different sizes (each resized alone)."""
        if isinstance(images, (list, tuple)):
            return torch.cat([self.normalize(t if t.ndim == 4 else t.unsqueeze(0)) for t in images])
        return self.normalize(images)

    def features(self, images: torch.Tensor | list[torch.Tensor], *, want_logits: bool = False) -> dict[str, torch.Tensor]:
        """The `Detector` call: ``{"features": pool3}``, with ``"logits"`` on request."""
        out = self.forward_normalized(self._normalize_any(images), want_logits=want_logits)
        result = {"features": out.pool3}
        if out.logits is not None:
            result["logits"] = out.logits
        return result

    def spatial_features(self, images: torch.Tensor | list[torch.Tensor], *,
                         want_logits: bool = False) -> dict[str, torch.Tensor]:
        """`features` plus ``"spatial_map"``, the 8×8×2048 ``mixed_10`` map pool3 is the mean of (for heatmaps)."""
        out = self.forward_normalized(self._normalize_any(images), want_map=True, want_logits=want_logits)
        result = {"features": out.pool3, "spatial_map": out.mixed_10}
        if out.logits is not None:
            result["logits"] = out.logits
        return result
