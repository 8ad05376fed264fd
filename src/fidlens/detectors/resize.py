"""TF1's legacy bilinear resize (``tf.image.resize_bilinear`` with ``align_corners=False``).

The FID Inception graph of 2015-12-05 resizes with this formula, and the value of FID
depends on it: source coordinate = destination index × (in / out), no half-pixel
offset and no antialiasing. torch's ``interpolate`` has no such mode, so we gather the
four neighbours ourselves. The operation is linear in the input, so gradients flow.
"""

from __future__ import annotations

import torch


def _axis_taps(in_size: int, out_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lower index, upper index and float32 interpolation weight along one axis, as TF1 computes them."""
    scale = torch.tensor(in_size / out_size, dtype=torch.float32)
    src = torch.arange(out_size, dtype=torch.float32) * scale
    lower = torch.floor(src)
    frac = src - lower
    lower_idx = lower.to(torch.int64).clamp_(max=in_size - 1)
    upper_idx = (lower_idx + 1).clamp_(max=in_size - 1)
    return lower_idx.to(device), upper_idx.to(device), frac.to(device)


def tf1_resize_bilinear(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a float NCHW batch to ``size`` = (height, width) with TF1's legacy bilinear rule."""
    if images.ndim != 4:
        raise ValueError(f"expected an NCHW batch, got shape {tuple(images.shape)}")
    out_h, out_w = size
    in_h, in_w = images.shape[-2:]
    if (in_h, in_w) == (out_h, out_w):
        return images
    y0, y1, fy = _axis_taps(in_h, out_h, images.device)
    x0, x1, fx = _axis_taps(in_w, out_w, images.device)
    fy = fy.to(images.dtype).view(-1, 1)
    fx = fx.to(images.dtype)
    rows_top = images.index_select(-2, y0)
    rows_bottom = images.index_select(-2, y1)
    top_left = rows_top.index_select(-1, x0)
    top_right = rows_top.index_select(-1, x1)
    bottom_left = rows_bottom.index_select(-1, x0)
    bottom_right = rows_bottom.index_select(-1, x1)
    top = top_left + (top_right - top_left) * fx
    bottom = bottom_left + (bottom_right - bottom_left) * fx
    return top + (bottom - top) * fy
