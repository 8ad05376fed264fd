"""Clean-room StyleGAN3 generator (alias-free GAN, Karras et al. 2021), float32, pure PyTorch.

Written from the published architecture and the publicly documented facts of NVIDIA's release
(class names, constructor arguments, parameter/buffer names and shapes, numeric conventions) so
that ``Generator(**init_kwargs).load_state_dict(state, strict=True)`` accepts the tensors of an
official ``stylegan3-t-*`` / ``stylegan3-r-*`` pickle. No NVIDIA code is used.

Structure (names as in the official module tree)::

    Generator
      mapping: MappingNetwork   -> embed (c_dim > 0 only), fc0..fc{n-1}, buffer w_avg
      synthesis: SynthesisNetwork
        input: SynthesisInput   -> affine, weight, buffers transform / freqs / phases
        L{idx}_{size}_{channels}: SynthesisLayer (idx = 0..num_layers; the last is ToRGB)
                                -> affine, weight, bias, buffers magnitude_ema, up_filter,
                                   down_filter (None, i.e. absent from the state dict, when the
                                   layer does not resample)

Deliberate differences from the official implementation:

* Everything runs in float32; ``num_fp16_res`` only sets the informational ``use_fp16`` flag.
* The filtered leaky ReLU is the straightforward reference formulation (bias, upsample, leaky
  ReLU + gain + clamp, downsample) built from :mod:`fidlens.generators.ops`; there is no fused
  CUDA kernel.
* ``noise_mode`` is accepted everywhere for interface compatibility and ignored: StyleGAN3 has no
  per-pixel noise inputs, so every mode gives the same image.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.signal
import scipy.special
import torch
from torch import nn
from torch.nn import functional as F

from fidlens.generators.base import GeneratorBase
from fidlens.generators.ops import FullyConnectedLayer, bias_act, upfirdn2d
from fidlens.generators.sampling import check_noise_mode
from fidlens.generators.stylegan2 import MappingNetwork

__all__ = [
    "FullyConnectedLayer",
    "Generator",
    "MappingNetwork",
    "SynthesisInput",
    "SynthesisLayer",
    "SynthesisNetwork",
    "design_lowpass_filter",
    "filtered_lrelu",
    "modulated_conv2d",
]

# Keyword arguments SynthesisLayer understands (everything else reaching it is dropped with a warning).
_LAYER_KWARGS = (
    "conv_kernel",
    "filter_size",
    "lrelu_upsampling",
    "use_radial_filters",
    "conv_clamp",
    "magnitude_ema_beta",
)
_MAPPING_KWARGS = ("num_layers", "lr_multiplier", "w_avg_beta")


# ---------------------------------------------------------------------------------------------
# Small numeric helpers.


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale ``x`` so that its mean square along ``dim`` is one."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def _filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """(width, height) of a 1-D (separable) or 2-D filter; None counts as a 1x1 identity."""
    if f is None:
        return 1, 1
    if f.ndim == 1:
        return int(f.shape[0]), int(f.shape[0])
    return int(f.shape[-1]), int(f.shape[-2])


def design_lowpass_filter(
    numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False
) -> torch.Tensor | None:
    """Kaiser-windowed low-pass FIR filter, or None when ``numtaps == 1`` (no filtering needed).

    Separable case: ``scipy.signal.firwin`` (1-D taps, applied along both axes).
    Radial case: a jinc (``J1``) kernel on a ``numtaps x numtaps`` grid, times the outer product
    of a 1-D Kaiser window whose beta matches the requested transition width, normalised to sum 1.
    """
    if numtaps < 1:
        raise ValueError("numtaps must be >= 1")
    if numtaps == 1:
        return None
    if not radial:
        taps = scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs)
        return torch.as_tensor(taps, dtype=torch.float32)
    coords = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(coords, coords))
    with np.errstate(divide="ignore", invalid="ignore"):
        kernel = scipy.special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
    kernel = np.where(r == 0, cutoff, kernel)  # limit at the centre (only for odd numtaps)
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    window = np.kaiser(numtaps, beta)
    kernel = kernel * np.outer(window, window)
    kernel = kernel / np.sum(kernel)
    return torch.as_tensor(kernel, dtype=torch.float32)


def filtered_lrelu(
    x: torch.Tensor,
    fu: torch.Tensor | None = None,
    fd: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: int | list[int] | tuple[int, ...] = 0,
    gain: float = float(np.sqrt(2)),
    slope: float = 0.2,
    clamp: float | None = None,
    flip_filter: bool = False,
) -> torch.Tensor:
    """Bias, ``up``-x upsampling with ``fu``, leaky ReLU (times ``gain``, clamped to ±``clamp``),
    then ``down``-x downsampling with ``fd`` -- the reference (non-fused) formulation.

    ``padding`` is ``[px0, px1, py0, py1]`` (or a single int / ``[px, py]``) and is applied
    around the upsampled signal before ``fu``. Filters may be 1-D (separable) or 2-D.
    """
    if isinstance(padding, int):
        pad = [padding] * 4
    else:
        pad = [int(p) for p in padding]
        if len(pad) == 2:
            pad = [pad[0], pad[0], pad[1], pad[1]]
    px0, px1, py0, py1 = pad
    fu_w, fu_h = _filter_size(fu)
    fd_w, fd_h = _filter_size(fd)
    _, _, in_h, in_w = x.shape
    out_w = (in_w * up + px0 + px1 - (fu_w - 1) - (fd_w - 1) + (down - 1)) // down
    out_h = (in_h * up + py0 + py1 - (fu_h - 1) - (fd_h - 1) + (down - 1)) // down

    identity = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    if b is not None:
        x = x + b.to(x.dtype).reshape(1, -1, 1, 1)
    x = upfirdn2d(
        x,
        identity if fu is None else fu,
        up=up,
        padding=[px0, px1, py0, py1],
        gain=up**2,
        flip_filter=flip_filter,
    )
    x = bias_act(x, act="lrelu", alpha=slope, gain=gain, clamp=clamp)
    x = upfirdn2d(x, identity if fd is None else fd, down=down, flip_filter=flip_filter)
    if tuple(x.shape[2:]) != (out_h, out_w):  # pragma: no cover - internal consistency check
        raise RuntimeError(f"filtered_lrelu: got {tuple(x.shape[2:])}, expected {(out_h, out_w)}")
    return x


def modulated_conv2d(
    x: torch.Tensor,
    w: torch.Tensor,
    s: torch.Tensor,
    demodulate: bool = True,
    padding: int = 0,
    input_gain: torch.Tensor | None = None,
) -> torch.Tensor:
    """StyleGAN3's modulated convolution (grouped conv, one group per sample).

    x: [N, I, H, W], w: [O, I, k, k], s: [N, I] styles. With ``demodulate`` the weight and the
    styles are first normalised to unit RMS (for numerical range), then each output filter is
    normalised to unit L2 norm. ``input_gain`` ([] or [N, I]) scales the input channels after that.
    """
    batch_size = x.shape[0]
    out_channels, in_channels, kh, kw = w.shape
    if demodulate:
        w = w * w.square().mean([1, 2, 3], keepdim=True).rsqrt()
        s = s * s.square().mean().rsqrt()
    w = w.unsqueeze(0) * s.reshape(batch_size, 1, in_channels, 1, 1)  # [N, O, I, k, k]
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [N, O]
        w = w * dcoefs.reshape(batch_size, out_channels, 1, 1, 1)
    if input_gain is not None:
        gain = input_gain.expand(batch_size, in_channels)
        w = w * gain.reshape(batch_size, 1, in_channels, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_channels, kh, kw)
    x = F.conv2d(x, w.to(x.dtype), padding=padding, groups=batch_size)
    return x.reshape(batch_size, -1, *x.shape[2:])


def _split_known(kwargs: Mapping[str, Any], known: tuple[str, ...], where: str) -> dict[str, Any]:
    kept = {k: v for k, v in kwargs.items() if k in known}
    dropped = sorted(k for k in kwargs if k not in known)
    if dropped:
        warnings.warn(f"StyleGAN3 {where}: ignoring unsupported keyword(s) {dropped}", stacklevel=3)
    return kept


# ---------------------------------------------------------------------------------------------
# Modules.


class SynthesisInput(nn.Module):
    """Fourier-feature input: ``channels`` sinusoids on a ``size``-pixel grid sampled at
    ``sampling_rate``, rotated/translated per sample by an affine map of the first w, mixed by
    a learned channel matrix (``weight``). ``transform`` is a user-settable 3x3 matrix applied
    on top (identity by default) -- e.g. a translation to shift the generated image."""

    def __init__(
        self,
        w_dim: int,
        channels: int,
        size: int | list[int],
        sampling_rate: float,
        bandwidth: float,
    ) -> None:
        super().__init__()
        self.w_dim = w_dim
        self.channels = channels
        self.size = np.broadcast_to(np.asarray(size), [2])
        self.sampling_rate = sampling_rate
        self.bandwidth = bandwidth

        # Random frequencies inside a disc of radius `bandwidth`, random phases.
        freqs = torch.randn([channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs /= radii * radii.square().exp().pow(0.25)
        freqs *= bandwidth
        phases = torch.rand([channels]) - 0.5

        self.weight = nn.Parameter(torch.randn([channels, channels]))
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0, bias_init=[1, 0, 0, 0])
        self.register_buffer("transform", torch.eye(3, 3))
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", phases)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        batch = w.shape[0]
        transforms = self.transform.unsqueeze(0)  # [1, 3, 3]
        freqs = self.freqs.unsqueeze(0)  # [1, C, 2]
        phases = self.phases.unsqueeze(0)  # [1, C]

        # Per-sample rotation (r_c, r_s, normalised) and translation (t_x, t_y) from w.
        t = self.affine(w)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        zero = torch.zeros_like(t[:, 0])
        one = torch.ones_like(t[:, 0])
        m_r = torch.stack(
            [
                torch.stack([t[:, 0], -t[:, 1], zero], dim=1),
                torch.stack([t[:, 1], t[:, 0], zero], dim=1),
                torch.stack([zero, zero, one], dim=1),
            ],
            dim=1,
        )
        m_t = torch.stack(
            [
                torch.stack([one, zero, -t[:, 2]], dim=1),
                torch.stack([zero, one, -t[:, 3]], dim=1),
                torch.stack([zero, zero, one], dim=1),
            ],
            dim=1,
        )
        transforms = m_r @ m_t @ transforms  # [N, 3, 3]

        # Transform frequencies and phases; fade out frequencies that approach Nyquist.
        phases = phases + (freqs @ transforms[:, :2, 2:]).squeeze(2)
        freqs = freqs @ transforms[:, :2, :2]
        amplitudes = (
            1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)
        ).clamp(0, 1)

        # Sampling grid: pixel centres, unit = 1/sampling_rate, centred on the origin.
        theta = torch.eye(2, 3, device=w.device)
        theta[0, 0] = 0.5 * float(self.size[0]) / self.sampling_rate
        theta[1, 1] = 0.5 * float(self.size[1]) / self.sampling_rate
        grids = F.affine_grid(
            theta.unsqueeze(0), [1, 1, int(self.size[1]), int(self.size[0])], align_corners=False
        )  # [1, H, W, 2]

        x = (grids.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)
        x = x + phases.unsqueeze(1).unsqueeze(2)  # [N, H, W, C]
        x = torch.sin(x * (np.pi * 2))
        x = x * amplitudes.unsqueeze(1).unsqueeze(2)
        x = x @ (self.weight / np.sqrt(self.channels)).t()
        x = x.permute(0, 3, 1, 2)  # [N, C, H, W]
        assert x.shape[0] == batch
        return x

    def extra_repr(self) -> str:
        return (
            f"w_dim={self.w_dim}, channels={self.channels}, size={self.size.tolist()}, "
            f"sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}"
        )


class SynthesisLayer(nn.Module):
    """Modulated conv + alias-free (filtered) leaky ReLU; ``is_torgb`` makes it the output layer
    (1x1 kernel, no demodulation, linear, no resampling)."""

    def __init__(
        self,
        w_dim: int,
        is_torgb: bool,
        is_critically_sampled: bool,
        use_fp16: bool,
        in_channels: int,
        out_channels: int,
        in_size: int | list[int],
        out_size: int | list[int],
        in_sampling_rate: float,
        out_sampling_rate: float,
        in_cutoff: float,
        out_cutoff: float,
        in_half_width: float,
        out_half_width: float,
        conv_kernel: int = 3,
        filter_size: int = 6,
        lrelu_upsampling: int = 2,
        use_radial_filters: bool = False,
        conv_clamp: float | None = 256,
        magnitude_ema_beta: float = 0.999,
    ) -> None:
        super().__init__()
        self.w_dim = w_dim
        self.is_torgb = is_torgb
        self.is_critically_sampled = is_critically_sampled
        self.use_fp16 = use_fp16  # informational only: this implementation is float32 throughout
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.in_size = np.broadcast_to(np.asarray(in_size), [2])
        self.out_size = np.broadcast_to(np.asarray(out_size), [2])
        self.in_sampling_rate = in_sampling_rate
        self.out_sampling_rate = out_sampling_rate
        self.tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * (
            1 if is_torgb else lrelu_upsampling
        )
        self.in_cutoff = in_cutoff
        self.out_cutoff = out_cutoff
        self.in_half_width = in_half_width
        self.out_half_width = out_half_width
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(
            torch.randn([out_channels, in_channels, self.conv_kernel, self.conv_kernel])
        )
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))

        # Upsampling filter (never radial).
        self.up_factor = int(np.rint(self.tmp_sampling_rate / in_sampling_rate))
        if in_sampling_rate * self.up_factor != self.tmp_sampling_rate:
            raise ValueError("sampling rates are not integer multiples of each other")
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not is_torgb else 1
        self.register_buffer(
            "up_filter",
            design_lowpass_filter(
                numtaps=self.up_taps,
                cutoff=in_cutoff,
                width=in_half_width * 2,
                fs=self.tmp_sampling_rate,
            ),
        )

        # Downsampling filter (radial for R, except in the critically sampled layers).
        self.down_factor = int(np.rint(self.tmp_sampling_rate / out_sampling_rate))
        if out_sampling_rate * self.down_factor != self.tmp_sampling_rate:
            raise ValueError("sampling rates are not integer multiples of each other")
        self.down_taps = (
            filter_size * self.down_factor if self.down_factor > 1 and not is_torgb else 1
        )
        self.down_radial = bool(use_radial_filters and not is_critically_sampled)
        self.register_buffer(
            "down_filter",
            design_lowpass_filter(
                numtaps=self.down_taps,
                cutoff=out_cutoff,
                width=out_half_width * 2,
                fs=self.tmp_sampling_rate,
                radial=self.down_radial,
            ),
        )

        # Padding so that the output has out_size samples, with the sample grid shifted per the
        # symmetric (pixel-centre) interpretation of upsampling.
        pad_total = (self.out_size - 1) * self.down_factor + 1
        pad_total = pad_total - (self.in_size + self.conv_kernel - 1) * self.up_factor
        pad_total = pad_total + self.up_taps + self.down_taps - 2
        pad_lo = (pad_total + self.up_factor) // 2
        pad_hi = pad_total - pad_lo
        self.padding = [int(pad_lo[0]), int(pad_hi[0]), int(pad_lo[1]), int(pad_hi[1])]

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        noise_mode: str = "random",
        force_fp32: bool = False,
        update_emas: bool = False,
    ) -> torch.Tensor:
        # noise_mode / force_fp32: accepted for call compatibility; no noise, always float32.
        check_noise_mode(noise_mode)
        expected = [self.in_channels, int(self.in_size[1]), int(self.in_size[0])]
        if list(x.shape[1:]) != expected:
            raise ValueError(
                f"{type(self).__name__}: input {list(x.shape)}, expected [N, *{expected}]"
            )
        x = x.to(torch.float32)
        if update_emas:
            with torch.no_grad():
                cur = x.detach().square().mean()
                self.magnitude_ema.copy_(cur.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        input_gain = self.magnitude_ema.rsqrt()

        styles = self.affine(w)
        if self.is_torgb:
            styles = styles * (1 / np.sqrt(self.in_channels * (self.conv_kernel**2)))

        x = modulated_conv2d(
            x,
            self.weight,
            styles,
            padding=self.conv_kernel - 1,
            demodulate=not self.is_torgb,
            input_gain=input_gain,
        )
        x = filtered_lrelu(
            x,
            fu=self.up_filter,
            fd=self.down_filter,
            b=self.bias,
            up=self.up_factor,
            down=self.down_factor,
            padding=self.padding,
            gain=1.0 if self.is_torgb else float(np.sqrt(2)),
            slope=1.0 if self.is_torgb else 0.2,
            clamp=self.conv_clamp,
        )
        expected = [self.out_channels, int(self.out_size[1]), int(self.out_size[0])]
        if list(x.shape[1:]) != expected:  # pragma: no cover - internal consistency check
            raise RuntimeError(
                f"{type(self).__name__}: output {list(x.shape)}, expected {expected}"
            )
        return x

    def extra_repr(self) -> str:
        return (
            f"w_dim={self.w_dim}, is_torgb={self.is_torgb}, "
            f"is_critically_sampled={self.is_critically_sampled}, "
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"in_size={self.in_size.tolist()}, out_size={self.out_size.tolist()}, "
            f"in_sampling_rate={self.in_sampling_rate:g}, out_sampling_rate={self.out_sampling_rate:g}, "
            f"up={self.up_factor}, down={self.down_factor}, padding={self.padding}"
        )


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] → images [N, img_channels, img_resolution, img_resolution]."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_layers: int = 14,
        num_critical: int = 2,
        first_cutoff: float = 2,
        first_stopband: float = 2**2.1,
        last_stopband_rel: float = 2**0.3,
        margin_size: int = 10,
        output_scale: float = 0.25,
        num_fp16_res: int = 4,
        **layer_kwargs: Any,
    ) -> None:
        super().__init__()
        if isinstance(img_resolution, bool) or not isinstance(img_resolution, (int, np.integer)) or img_resolution < 4:
            raise ValueError(f"img_resolution must be an integer >= 4, got {img_resolution!r}")
        if isinstance(num_layers, bool) or not isinstance(num_layers, (int, np.integer)) or num_layers < 1:
            raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
        layer_kwargs = _split_known(layer_kwargs, _LAYER_KWARGS, "SynthesisLayer")
        self.w_dim = w_dim
        self.num_ws = num_layers + 2
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_layers = num_layers
        self.num_critical = num_critical
        self.margin_size = margin_size
        self.output_scale = output_scale
        self.num_fp16_res = num_fp16_res

        # Cutoffs and minimum stopbands grow geometrically from the first layer to the point
        # where the last `num_critical` layers are reached, then stay at their final values.
        last_cutoff = img_resolution / 2
        last_stopband = last_cutoff * last_stopband_rel
        exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
        cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
        stopbands = first_stopband * (last_stopband / first_stopband) ** exponents

        # Sampling rates (powers of two covering twice the stopband), half transition widths,
        # spatial sizes with margins, and channel counts.
        sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
        half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
        sizes = sampling_rates + margin_size * 2
        sizes[-2:] = img_resolution
        channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
        channels[-1] = img_channels

        self.cutoffs = cutoffs
        self.stopbands = stopbands
        self.sampling_rates = sampling_rates
        self.half_widths = half_widths
        self.sizes = sizes
        self.channels = channels

        self.input = SynthesisInput(
            w_dim=w_dim,
            channels=int(channels[0]),
            size=int(sizes[0]),
            sampling_rate=sampling_rates[0],
            bandwidth=cutoffs[0],
        )
        self.layer_names: list[str] = []
        for idx in range(num_layers + 1):
            prev = max(idx - 1, 0)
            layer = SynthesisLayer(
                w_dim=w_dim,
                is_torgb=(idx == num_layers),
                is_critically_sampled=(idx >= num_layers - num_critical),
                use_fp16=bool(sampling_rates[idx] * (2**num_fp16_res) > img_resolution),
                in_channels=int(channels[prev]),
                out_channels=int(channels[idx]),
                in_size=int(sizes[prev]),
                out_size=int(sizes[idx]),
                in_sampling_rate=int(sampling_rates[prev]),
                out_sampling_rate=int(sampling_rates[idx]),
                in_cutoff=cutoffs[prev],
                out_cutoff=cutoffs[idx],
                in_half_width=half_widths[prev],
                out_half_width=half_widths[idx],
                **layer_kwargs,
            )
            name = f"L{idx}_{layer.out_size[0]}_{layer.out_channels}"
            setattr(self, name, layer)
            self.layer_names.append(name)

    def forward(
        self,
        ws: torch.Tensor,
        noise_mode: str = "const",
        force_fp32: bool = True,
        update_emas: bool = False,
        **_ignored: Any,
    ) -> torch.Tensor:
        """``noise_mode`` is validated and otherwise ignored (StyleGAN3 has no noise inputs)."""
        check_noise_mode(noise_mode)
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(
                f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}"
            )
        per_layer = ws.to(torch.float32).unbind(dim=1)
        x = self.input(per_layer[0])
        for name, w in zip(self.layer_names, per_layer[1:]):
            x = getattr(self, name)(x, w, noise_mode=noise_mode, update_emas=update_emas)
        if self.output_scale != 1:
            x = x * self.output_scale
        return x.to(torch.float32)

    def extra_repr(self) -> str:
        return (
            f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, "
            f"img_channels={self.img_channels}, num_layers={self.num_layers}, "
            f"num_critical={self.num_critical}, margin_size={self.margin_size}, "
            f"output_scale={self.output_scale}"
        )


class Generator(GeneratorBase):
    """StyleGAN3 generator: ``mapping`` (MappingNetwork) then ``synthesis`` (SynthesisNetwork).

    Accepts NVIDIA's constructor kwargs. Synthesis options may be given flat (as stored in the
    official pickles' ``_init_kwargs``) and/or grouped in a ``synthesis_kwargs`` dict; flat keys
    win on conflict. Unknown keys are dropped with a warning. ``noise_mode`` is ignored.
    """

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        mapping_kwargs: Mapping[str, Any] | None = None,
        synthesis_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        syn_kwargs = {**dict(synthesis_kwargs or {}), **kwargs}
        map_kwargs = _split_known(dict(mapping_kwargs or {}), _MAPPING_KWARGS, "MappingNetwork")
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = SynthesisNetwork(
            w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels, **syn_kwargs
        )
        self.num_ws = self.synthesis.num_ws
        # StyleGAN3's mapping is StyleGAN2's with two layers and a slower w_avg tracking.
        map_kwargs = {"num_layers": 2, "w_avg_beta": 0.998, **map_kwargs}
        self.mapping = MappingNetwork(
            z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **map_kwargs
        )
        radial = bool(syn_kwargs.get("use_radial_filters", False))
        conv_kernel = int(syn_kwargs.get("conv_kernel", 3))
        variant = "r" if (radial or conv_kernel == 1) else "t"
        self.kind = f"stylegan3-{variant}"
        self.label = (
            f"StyleGAN3-{variant.upper()} {img_resolution}x{img_resolution} "
            "(fidlens clean-room float32 reimplementation)"
        )

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "const",
        update_emas: bool = False,
        **synthesis_kwargs: Any,
    ) -> torch.Tensor:
        ws = self.mapping(
            z,
            c,
            truncation_psi=truncation_psi,
            truncation_cutoff=truncation_cutoff,
            update_emas=update_emas,
        )
        return self.synthesis(
            ws, noise_mode=noise_mode, update_emas=update_emas, **synthesis_kwargs
        )
