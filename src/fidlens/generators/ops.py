"""Pure-PyTorch low-level operators used by the StyleGAN generators.

Clean-room implementations (no custom CUDA / C++ extensions) of the operators whose
semantics are described in the StyleGAN2 / StyleGAN2-ADA / StyleGAN3 papers and
releases:

* :func:`bias_act` -- bias add, pointwise activation, gain, clamp.
* :func:`upfirdn2d` -- zero-insertion upsampling, padding, 2-D FIR filtering, decimation.
* :func:`setup_filter`, :func:`upsample2d`, :func:`downsample2d`, :func:`filter2d`.
* :func:`conv2d_resample` -- 2-D convolution fused with FIR up/down-sampling.
* :func:`modulated_conv2d` -- StyleGAN2 weight (de)modulation.

All functions are differentiable and work on any device / floating dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ACTIVATIONS",
    "bias_act",
    "conv2d_resample",
    "downsample2d",
    "filter2d",
    "modulated_conv2d",
    "normalize_2nd_moment",
    "setup_filter",
    "upfirdn2d",
    "upsample2d",
]


# ----------------------------------------------------------------------------------------
# bias_act


@dataclass(frozen=True)
class _Activation:
    func: Callable[[torch.Tensor, float], torch.Tensor]
    def_alpha: float
    def_gain: float


_SQRT2 = math.sqrt(2.0)

ACTIVATIONS: dict[str, _Activation] = {
    "linear": _Activation(lambda x, a: x, 0.0, 1.0),
    "relu": _Activation(lambda x, a: F.relu(x), 0.0, _SQRT2),
    "lrelu": _Activation(lambda x, a: F.leaky_relu(x, a), 0.2, _SQRT2),
    "tanh": _Activation(lambda x, a: torch.tanh(x), 0.0, 1.0),
    "sigmoid": _Activation(lambda x, a: torch.sigmoid(x), 0.0, 1.0),
    "elu": _Activation(lambda x, a: F.elu(x), 0.0, 1.0),
    "selu": _Activation(lambda x, a: F.selu(x), 0.0, 1.0),
    "softplus": _Activation(lambda x, a: F.softplus(x), 0.0, 1.0),
    "swish": _Activation(lambda x, a: x * torch.sigmoid(x), 0.0, _SQRT2),
}


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """``clamp(act(x + b, alpha) * gain, -clamp, clamp)``.

    ``b`` is a 1-D tensor broadcast along axis ``dim`` of ``x``. ``alpha`` and ``gain``
    default to the activation's conventional values (lrelu: alpha 0.2; relu / lrelu /
    swish: gain sqrt(2); others 1). ``clamp=None`` (or negative) disables clamping.
    """
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}; expected one of {sorted(ACTIVATIONS)}")
    spec = ACTIVATIONS[act]
    alpha = float(spec.def_alpha if alpha is None else alpha)
    gain = float(spec.def_gain if gain is None else gain)
    if b is not None:
        if b.ndim != 1 or b.shape[0] != x.shape[dim]:
            raise ValueError(f"bias of shape {tuple(b.shape)} does not match x.shape[{dim}]")
        dim = dim % x.ndim
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + b.to(x.dtype).reshape(shape)
    x = spec.func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-float(clamp), float(clamp))
    return x


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale ``x`` so that its mean square along ``dim`` is one."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


# ----------------------------------------------------------------------------------------
# FIR filtering


def _pair(v: int | Sequence[int], what: str) -> tuple[int, int]:
    """int -> (v, v); (vx, vy) -> (vx, vy)."""
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    v = [int(t) for t in v]
    if len(v) != 2:
        raise ValueError(f"{what} must be an int or a pair, got {v}")
    return v[0], v[1]


def _parse_padding(padding: int | Sequence[int]) -> tuple[int, int, int, int]:
    """int -> all four; (px, py) -> (px, px, py, py); (px0, px1, py0, py1) as is."""
    if isinstance(padding, (int, np.integer)):
        p = int(padding)
        return p, p, p, p
    padding = [int(t) for t in padding]
    if len(padding) == 2:
        px, py = padding
        return px, px, py, py
    if len(padding) == 4:
        return padding[0], padding[1], padding[2], padding[3]
    raise ValueError(f"padding must be an int, a pair or four ints, got {padding}")


def _filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """(width, height) of a 1-D (separable) or 2-D filter; (1, 1) for None."""
    if f is None:
        return 1, 1
    if f.ndim not in (1, 2):
        raise ValueError("filter must be 1-D or 2-D")
    return int(f.shape[-1]), int(f.shape[0])


def setup_filter(
    f,
    device: torch.device | str | None = None,
    normalize: bool = True,
    flip_filter: bool = False,
    gain: float = 1,
    separable: bool | None = None,
) -> torch.Tensor:
    """Turn a filter description into a float32 tensor ready for :func:`upfirdn2d`.

    ``f=None`` means the identity ``[1]``. A 1-D filter with fewer than 8 taps is made
    2-D by an outer product (unless ``separable=True``); a long 1-D filter stays
    separable. ``normalize`` divides by the sum; ``gain`` multiplies the total gain.
    """
    if f is None:
        f = 1
    f = torch.as_tensor(f, dtype=torch.float32)
    if f.ndim == 0:
        f = f.reshape(1)
    if f.ndim not in (1, 2) or f.numel() == 0:
        raise ValueError("filter must be a non-empty 1-D or 2-D array")
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if f.ndim != (1 if separable else 2):
        raise ValueError("a 2-D filter cannot be separable")
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    if device is not None:
        f = f.to(device)
    return f


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: int | Sequence[int] = 1,
    down: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    flip_filter: bool = False,
    gain: float = 1,
) -> torch.Tensor:
    """Upsample (zero insertion), pad, FIR-filter and downsample a batch of NCHW images.

    1. Insert ``up - 1`` zeros after every sample along each axis.
    2. Pad by ``padding = [px0, px1, py0, py1]`` zeros (negative values crop).
    3. Convolve with ``f`` (a true convolution; ``flip_filter=True`` makes it a
       correlation). A 1-D ``f`` is applied separably along x then y; the filter is
       scaled so that the overall gain is multiplied by ``gain``.
    4. Keep every ``down``-th sample along each axis (starting at index 0).
    """
    if x.ndim != 4:
        raise ValueError("x must be NCHW")
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    upx, upy = _pair(up, "up")
    downx, downy = _pair(down, "down")
    px0, px1, py0, py1 = _parse_padding(padding)
    if upx < 1 or upy < 1 or downx < 1 or downy < 1:
        raise ValueError("up and down factors must be >= 1")
    n, c, h, w = x.shape

    # 1. zero insertion
    if upx > 1 or upy > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
        x = x.reshape(n, c, h * upy, w * upx)

    # 2. pad then crop
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    hh, ww = x.shape[2], x.shape[3]
    x = x[:, :, max(-py0, 0) : hh - max(-py1, 0), max(-px0, 0) : ww - max(-px1, 0)]

    # 3. convolution (conv2d is a correlation, so flip the taps for a true convolution)
    f = f.to(device=x.device, dtype=x.dtype) * (gain ** (f.ndim / 2))
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        weight = f.reshape(1, 1, *f.shape).expand(c, 1, *f.shape)
        x = F.conv2d(x, weight, groups=c)
    else:
        k = f.shape[0]
        x = F.conv2d(x, f.reshape(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
        x = F.conv2d(x, f.reshape(1, 1, k, 1).expand(c, 1, k, 1), groups=c)

    # 4. decimation
    if downx > 1 or downy > 1:
        x = x[:, :, ::downy, ::downx]
    return x


def filter2d(x, f, padding=0, flip_filter=False, gain=1) -> torch.Tensor:
    """Filter without changing the resolution (centred 'same' padding plus ``padding``)."""
    px0, px1, py0, py1 = _parse_padding(padding)
    fw, fh = _filter_size(f)
    p = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain)


def upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1) -> torch.Tensor:
    """Upsample by ``up`` with FIR interpolation; output size is input size times ``up``."""
    upx, upy = _pair(up, "up")
    px0, px1, py0, py1 = _parse_padding(padding)
    fw, fh = _filter_size(f)
    p = [
        px0 + (fw + upx - 1) // 2,
        px1 + (fw - upx) // 2,
        py0 + (fh + upy - 1) // 2,
        py1 + (fh - upy) // 2,
    ]
    return upfirdn2d(x, f, up=(upx, upy), padding=p, flip_filter=flip_filter,
                     gain=gain * upx * upy)


def downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1) -> torch.Tensor:
    """Downsample by ``down`` after FIR anti-aliasing; output size is input size / ``down``."""
    downx, downy = _pair(down, "down")
    px0, px1, py0, py1 = _parse_padding(padding)
    fw, fh = _filter_size(f)
    p = [
        px0 + (fw - downx + 1) // 2,
        px1 + (fw - downx) // 2,
        py0 + (fh - downy + 1) // 2,
        py1 + (fh - downy) // 2,
    ]
    return upfirdn2d(x, f, down=(downx, downy), padding=p, flip_filter=flip_filter, gain=gain)


# ----------------------------------------------------------------------------------------
# Convolution with resampling


def _conv(x, w, stride=1, padding=0, groups=1, transpose=False, flip_weight=True):
    """conv2d / conv_transpose2d; ``flip_weight=False`` turns the correlation into a
    convolution by flipping the spatial taps of ``w``."""
    if not flip_weight and (w.shape[2] > 1 or w.shape[3] > 1):
        w = w.flip([2, 3])
    if transpose:
        return F.conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
    return F.conv2d(x, w, stride=stride, padding=padding, groups=groups)


def conv2d_resample(
    x: torch.Tensor,
    w: torch.Tensor,
    f: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: int | Sequence[int] = 0,
    groups: int = 1,
    flip_weight: bool = True,
    flip_filter: bool = False,
) -> torch.Tensor:
    """2-D convolution with weight ``w`` [O, I/groups, kh, kw] fused with FIR resampling.

    Upsampling (``up > 1``) is a stride-``up`` transposed convolution followed by FIR
    filtering with ``f`` (gain ``up**2``); downsampling FIR-filters first and then uses a
    strided convolution. ``padding`` is the padding of the equivalent non-resampled
    convolution. ``flip_weight=True`` means correlation (like ``torch.nn.Conv2d``).
    """
    if not isinstance(up, (int, np.integer)) or not isinstance(down, (int, np.integer)):
        raise TypeError("up and down must be ints")
    up, down = int(up), int(down)
    out_ch, in_per_group, kh, kw = w.shape
    fw, fh = _filter_size(f)
    px0, px1, py0, py1 = _parse_padding(padding)

    # The FIR filter needs extra padding on each side.
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2
    pad4 = [px0, px1, py0, py1]

    pointwise = kw == 1 and kh == 1
    if pointwise and down > 1 and up == 1:
        x = upfirdn2d(x, f, down=down, padding=pad4, flip_filter=flip_filter)
        return _conv(x, w, groups=groups, flip_weight=flip_weight)
    if pointwise and up > 1 and down == 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d(x, f, up=up, padding=pad4, gain=up**2, flip_filter=flip_filter)
    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=pad4, flip_filter=flip_filter)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)

    if up > 1:
        # Transposed convolution: weight layout [I, O/groups, kh, kw].
        if groups == 1:
            wt = w.transpose(0, 1)
        else:
            wt = w.reshape(groups, out_ch // groups, in_per_group, kh, kw)
            wt = wt.transpose(1, 2).reshape(groups * in_per_group, out_ch // groups, kh, kw)
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        # Let the transposed conv crop what it can (it only crops symmetrically).
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        x = _conv(x, wt, stride=up, padding=[pyt, pxt], groups=groups, transpose=True,
                  flip_weight=not flip_weight)
        x = upfirdn2d(x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt],
                      gain=up**2, flip_filter=flip_filter)
        if down > 1:
            x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
        return x

    if up == 1 and down == 1 and px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)

    # General fallback.
    x = upfirdn2d(x, f if up > 1 else None, up=up, padding=pad4, gain=up**2,
                  flip_filter=flip_filter)
    x = _conv(x, w, groups=groups, flip_weight=flip_weight)
    if down > 1:
        x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
    return x


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    noise: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: int | Sequence[int] = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
    flip_weight: bool = True,
    fused_modconv: bool = True,
) -> torch.Tensor:
    """StyleGAN2 modulated convolution.

    ``x`` [N, I, H, W], ``weight`` [O, I, kh, kw], ``styles`` [N, I]. The per-sample
    weight is ``weight * styles[n, i]``; with ``demodulate`` each output channel is then
    divided by ``sqrt(sum(w'**2) + 1e-8)``. ``noise`` (broadcastable to the output) is
    added after demodulation. ``fused_modconv`` is accepted for API compatibility; the
    grouped-convolution path is always used (mathematically identical).
    """
    del fused_modconv
    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    if styles.shape != (n, in_ch):
        raise ValueError(f"styles must be {(n, in_ch)}, got {tuple(styles.shape)}")
    if x.shape[1] != in_ch:
        raise ValueError(f"x has {x.shape[1]} channels, weight expects {in_ch}")

    w = weight.unsqueeze(0) * styles.reshape(n, 1, in_ch, 1, 1)  # [N, O, I, kh, kw]
    if demodulate:
        d = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [N, O]
        w = w * d.reshape(n, out_ch, 1, 1, 1)

    xg = x.reshape(1, n * in_ch, *x.shape[2:])
    wg = w.reshape(n * out_ch, in_ch, kh, kw)
    y = conv2d_resample(xg, wg.to(x.dtype), f=resample_filter, up=up, down=down,
                        padding=padding, groups=n, flip_weight=flip_weight)
    y = y.reshape(n, out_ch, *y.shape[2:])
    if noise is not None:
        y = y + noise.to(y.dtype)
    return y


class FullyConnectedLayer(nn.Module):
    """Dense layer with equalised learning rate: ``y = act(x @ (W·gain)ᵀ + b·lr_multiplier)``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        activation: str = "linear",
        bias: bool = True,
        lr_multiplier: float = 1.0,
        weight_init: float = 1.0,
        bias_init: float | list[float] | np.ndarray = 0.0,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = nn.Parameter(
            torch.randn([out_features, in_features]) * (weight_init / lr_multiplier)
        )
        if bias:
            init = np.broadcast_to(np.asarray(bias_init, dtype=np.float32), [out_features])
            self.bias = nn.Parameter(torch.from_numpy(init / lr_multiplier).to(torch.float32))
        else:
            self.bias = None
        self.weight_gain = lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        x = x.matmul(w.t())
        return bias_act(x, b, act=self.activation)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"
