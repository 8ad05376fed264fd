"""Clean-room StyleGAN2 generator (Karras et al., "Analyzing and Improving the Image
Quality of StyleGAN", CVPR 2020) in plain PyTorch, float32 only.

The module tree, constructor arguments and parameter / buffer names follow the layout of
the StyleGAN2-ADA PyTorch release (and ``training.networks_stylegan2`` of the StyleGAN3
release), so that the tensors of a released network pickle load with
``load_state_dict(strict=True)``. Examples of state-dict keys::

    mapping.embed.weight                (conditional models only)
    mapping.fc0.weight, mapping.fc0.bias, ..., mapping.w_avg
    synthesis.b4.const, synthesis.b4.resample_filter
    synthesis.b4.conv1.{weight,bias,noise_const,noise_strength,resample_filter}
    synthesis.b4.conv1.affine.{weight,bias}
    synthesis.b8.conv0.*, synthesis.b8.conv1.*, synthesis.b8.torgb.{weight,bias,affine.*}
    synthesis.b8.skip.{weight,resample_filter}   (architecture 'resnet')

Equalised learning rate: stored weights are multiplied at run time by
``lr_multiplier / sqrt(fan_in)`` and biases by ``lr_multiplier``.

Only inference matters here: fp16 settings, channels-last and the choice of fused /
non-fused modulated convolution are accepted and ignored (results are mathematically
the same); ``conv_clamp`` is honoured.

fp16: NVIDIA's code runs the top ``num_fp16_res`` resolutions in float16 on a GPU (float32
on a CPU). fidlens runs float32 on every device, by design: the images are then the same
on CPU and GPU up to float32 rounding, closer to the network's math, and within a level or
two of NVIDIA's fp16 GPU output (which itself differs from NVIDIA's fp32 output by about
that much). TF32 is off while generators run (`fidlens.core.precision`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from fidlens.generators.base import GeneratorBase
from fidlens.generators.ops import (
    ACTIVATIONS,
    FullyConnectedLayer,
    bias_act,
    conv2d_resample,
    modulated_conv2d,
    normalize_2nd_moment,
    setup_filter,
    upsample2d,
)
from fidlens.generators.sampling import check_noise_mode

__all__ = [
    "Conv2dLayer",
    "FullyConnectedLayer",
    "Generator",
    "MappingNetwork",
    "SynthesisBlock",
    "SynthesisLayer",
    "SynthesisNetwork",
    "ToRGBLayer",
]

_DEFAULT_FILTER = (1, 3, 3, 1)


class Conv2dLayer(nn.Module):
    """Plain (non-modulated) convolution with equalised learning rate and FIR resampling.

    Used for the 1x1 ``skip`` connection of the 'resnet' synthesis architecture.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,
        down: int = 1,
        resample_filter: Sequence[float] = _DEFAULT_FILTER,
        conv_clamp: float | None = None,
        channels_last: bool = False,
        trainable: bool = True,
        **_ignored,
    ):
        super().__init__()
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.activation = activation
        self.up = int(up)
        self.down = int(down)
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = ACTIVATIONS[activation].def_gain
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size])
        b = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = nn.Parameter(weight)
            self.bias = nn.Parameter(b) if b is not None else None
        else:
            self.register_buffer("weight", weight)
            if b is not None:
                self.register_buffer("bias", b)
            else:
                self.bias = None

    def forward(self, x: torch.Tensor, gain: float = 1) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        x = conv2d_resample(x, w, f=self.resample_filter, up=self.up, down=self.down,
                            padding=self.padding, flip_weight=(self.up == 1))
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, act=self.activation, gain=self.act_gain * gain, clamp=clamp)


class MappingNetwork(nn.Module):
    """z (and optional label c) -> w, broadcast to ``num_ws`` copies, with truncation."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int | None,
        num_layers: int = 8,
        embed_features: int | None = None,
        layer_features: int | None = None,
        activation: str = "lrelu",
        lr_multiplier: float = 0.01,
        w_avg_beta: float | None = 0.995,
        **_ignored,
    ):
        super().__init__()
        self.z_dim = int(z_dim)
        self.c_dim = int(c_dim)
        self.w_dim = int(w_dim)
        self.num_ws = num_ws
        self.num_layers = int(num_layers)
        self.w_avg_beta = w_avg_beta

        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]

        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for i in range(num_layers):
            layer = FullyConnectedLayer(features[i], features[i + 1], activation=activation,
                                        lr_multiplier=lr_multiplier)
            setattr(self, f"fc{i}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self,
        z: torch.Tensor | None,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
        **_ignored,
    ) -> torch.Tensor:
        x = None
        dev = self.fc0.weight.device
        if self.z_dim > 0:
            if z is None or z.ndim != 2 or z.shape[1] != self.z_dim:
                raise ValueError(f"z must have shape (N, {self.z_dim})")
            x = normalize_2nd_moment(torch.as_tensor(z).to(device=dev, dtype=torch.float32))
        if self.c_dim > 0:
            if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
                raise ValueError(f"this generator is conditional: c must have shape "
                                 f"(N, {self.c_dim})")
            c = torch.as_tensor(c).to(device=dev, dtype=torch.float32)
            y = normalize_2nd_moment(self.embed(c))
            x = torch.cat([x, y], dim=1) if x is not None else y
        if x is None:
            raise ValueError("generator has neither z nor c inputs")

        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)

        if update_emas and self.w_avg_beta is not None and hasattr(self, "w_avg"):
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))

        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])

        if truncation_psi != 1:
            if not hasattr(self, "w_avg"):
                raise ValueError("truncation needs w_avg, which this mapping network lacks")
            w_avg = self.w_avg.to(x.dtype)
            if self.num_ws is None or truncation_cutoff is None:
                x = w_avg.lerp(x, truncation_psi)
            else:
                cut = int(truncation_cutoff)
                x = torch.cat([w_avg.lerp(x[:, :cut], truncation_psi), x[:, cut:]], dim=1)
        return x

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, " \
               f"num_ws={self.num_ws}"


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (optionally 2x upsampling), noise, bias, lrelu."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        kernel_size: int = 3,
        up: int = 1,
        use_noise: bool = True,
        activation: str = "lrelu",
        resample_filter: Sequence[float] = _DEFAULT_FILTER,
        conv_clamp: float | None = None,
        channels_last: bool = False,
        **_ignored,
    ):
        super().__init__()
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.w_dim = int(w_dim)
        self.resolution = int(resolution)
        self.up = int(up)
        self.use_noise = bool(use_noise)
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = ACTIVATIONS[activation].def_gain

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(
            torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if self.use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        noise_mode: str = "random",
        fused_modconv: bool = True,
        gain: float = 1,
    ) -> torch.Tensor:
        check_noise_mode(noise_mode)
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode == "random":
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution],
                                device=x.device, dtype=x.dtype) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up,
                             padding=self.padding, resample_filter=self.resample_filter,
                             flip_weight=(self.up == 1), fused_modconv=fused_modconv)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, act=self.activation, gain=self.act_gain * gain,
                        clamp=clamp)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}, " \
               f"resolution={self.resolution}, up={self.up}, activation={self.activation}"


class ToRGBLayer(nn.Module):
    """Modulated (not demodulated) 1x1 convolution to image channels, plus bias."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        kernel_size: int = 1,
        conv_clamp: float | None = None,
        channels_last: bool = False,
        **_ignored,
    ):
        super().__init__()
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.conv_clamp = conv_clamp
        self.padding = kernel_size // 2
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(
            torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = True
                ) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, padding=self.padding, demodulate=False,
                             fused_modconv=fused_modconv)
        return bias_act(x, self.bias, clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network: (const | conv0 up) -> conv1 -> [torgb]."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        is_last: bool,
        architecture: str = "skip",
        resample_filter: Sequence[float] = _DEFAULT_FILTER,
        conv_clamp: float | None = None,
        use_fp16: bool = False,
        fp16_channels_last: bool = False,
        fused_modconv_default=True,
        **layer_kwargs,
    ):
        super().__init__()
        if architecture not in ("orig", "skip", "resnet"):
            raise ValueError(f"unknown architecture {architecture!r}")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.w_dim = int(w_dim)
        self.resolution = int(resolution)
        self.img_channels = int(img_channels)
        self.is_last = bool(is_last)
        self.architecture = architecture
        self.use_fp16 = bool(use_fp16)  # recorded only; computation stays float32
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0

        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim=w_dim,
                                        resolution=resolution, up=2,
                                        resample_filter=resample_filter,
                                        conv_clamp=conv_clamp, **layer_kwargs)
            self.num_conv += 1
        # conv1 does not resample; like the reference it keeps the default filter buffer.
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim=w_dim,
                                    resolution=resolution, conv_clamp=conv_clamp,
                                    **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim,
                                    conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter)

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        ws: torch.Tensor,
        noise_mode: str = "random",
        fused_modconv: bool | None = None,
        **_ignored,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if ws.ndim != 3 or ws.shape[1] != self.num_conv + self.num_torgb:
            raise ValueError(f"block b{self.resolution} expects ws of shape "
                             f"(N, {self.num_conv + self.num_torgb}, {self.w_dim})")
        fused = True if fused_modconv is None else bool(fused_modconv)
        w_iter = iter(ws.unbind(dim=1))
        n = ws.shape[0]

        if self.in_channels == 0:
            x = self.const.to(ws.dtype).unsqueeze(0).repeat([n, 1, 1, 1])
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused)
        elif self.architecture == "resnet":
            gain = np.sqrt(0.5)
            y = self.skip(x, gain=gain)
            x = self.conv0(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused)
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused,
                           gain=gain)
            x = y + x
        else:
            x = self.conv0(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused)
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused)

        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=fused).to(torch.float32)
            img = img + y if img is not None else y
        return x, img

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, architecture={self.architecture}"


class SynthesisNetwork(nn.Module):
    """Stack of :class:`SynthesisBlock` from 4x4 up to ``img_resolution`` (``b4``, ``b8``, ...)."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 4,
        **block_kwargs,
    ):
        super().__init__()
        if isinstance(img_resolution, bool) or not isinstance(img_resolution, (int, np.integer)) \
                or img_resolution < 4 or img_resolution & (img_resolution - 1):
            raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution!r}")
        log2 = int(img_resolution).bit_length() - 1
        self.w_dim = int(w_dim)
        self.img_resolution = int(img_resolution)
        self.img_resolution_log2 = log2
        self.img_channels = int(img_channels)
        self.num_fp16_res = int(num_fp16_res)
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        channels = {r: min(channel_base // r, channel_max) for r in self.block_resolutions}
        fp16_resolution = max(2 ** (log2 + 1 - self.num_fp16_res), 8)

        self.num_ws = 0
        for res in self.block_resolutions:
            in_ch = channels[res // 2] if res > 4 else 0
            is_last = res == self.img_resolution
            block = SynthesisBlock(in_ch, channels[res], w_dim=w_dim, resolution=res,
                                   img_channels=img_channels, is_last=is_last,
                                   use_fp16=(res >= fp16_resolution), **block_kwargs)
            self.num_ws += block.num_conv
            if is_last:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", **block_kwargs
                ) -> torch.Tensor:
        check_noise_mode(noise_mode)
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape (N, {self.num_ws}, {self.w_dim}), "
                             f"got {tuple(ws.shape)}")
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            cur = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            w_idx += block.num_conv
            x, img = block(x, img, cur, noise_mode=noise_mode, **block_kwargs)
        return img

    def extra_repr(self) -> str:
        return f"w_dim={self.w_dim}, num_ws={self.num_ws}, " \
               f"img_resolution={self.img_resolution}, img_channels={self.img_channels}"


_SYNTHESIS_TOP_LEVEL = {"channel_base", "channel_max", "num_fp16_res", "conv_clamp",
                        "architecture", "resample_filter", "fp16_channels_last",
                        "fused_modconv_default", "use_noise", "kernel_size", "activation"}


class Generator(GeneratorBase):
    """StyleGAN2 generator: ``mapping`` (z, c -> ws) and ``synthesis`` (ws -> image).

    Accepts the constructor kwargs stored in NVIDIA pickles: StyleGAN2-ADA style
    (``mapping_kwargs={...}, synthesis_kwargs={...}``) and StyleGAN3-release style
    (synthesis arguments such as ``channel_base`` given at the top level). Unknown extra
    kwargs are ignored.
    """

    kind = "stylegan2"

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        mapping_kwargs: dict | None = None,
        synthesis_kwargs: dict | None = None,
        label: str = "",
        **extra_kwargs,
    ):
        super().__init__()
        self.z_dim = int(z_dim)
        self.c_dim = int(c_dim)
        self.w_dim = int(w_dim)
        self.img_resolution = int(img_resolution)
        self.img_channels = int(img_channels)
        syn_kwargs = dict(synthesis_kwargs or {})
        for k, v in extra_kwargs.items():
            if k in _SYNTHESIS_TOP_LEVEL:
                syn_kwargs.setdefault(k, v)
        self.ignored_kwargs = sorted(k for k in extra_kwargs if k not in _SYNTHESIS_TOP_LEVEL)
        self.synthesis = SynthesisNetwork(w_dim=self.w_dim, img_resolution=self.img_resolution,
                                          img_channels=self.img_channels, **syn_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=self.z_dim, c_dim=self.c_dim, w_dim=self.w_dim,
                                      num_ws=self.num_ws, **dict(mapping_kwargs or {}))
        self.label = label or (f"StyleGAN2 {self.img_resolution}x{self.img_resolution}"
                               f"{' conditional' if self.c_dim else ''}")
