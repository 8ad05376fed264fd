"""Tests of the clean-room StyleGAN2 generator and its pure-PyTorch operators."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fidlens.core.errors import FidlensError
import torch

from fidlens.generators import ops
from fidlens.generators.stylegan2 import Generator

Z = W = 32
CMAX = 32


def make_g(arch: str = "skip", c_dim: int = 0, res: int = 16, seed: int = 0, **syn) -> Generator:
    torch.manual_seed(seed)
    g = Generator(
        z_dim=Z, c_dim=c_dim, w_dim=W, img_resolution=res, img_channels=3,
        mapping_kwargs={"num_layers": 2},
        synthesis_kwargs={"channel_base": 512, "channel_max": CMAX, "num_fp16_res": 4,
                          "conv_clamp": 256, "architecture": arch, **syn},
    )
    with torch.no_grad():
        # Random non-trivial values for parameters that are zero at initialisation.
        for name, p in g.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.3)
            elif name.endswith(".bias"):
                p.add_(0.1 * torch.randn_like(p))
        g.mapping.w_avg.normal_()
    return g.eval()


def inputs(g: Generator, n: int = 2, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, g.z_dim, generator=gen)
    c = torch.eye(g.c_dim)[torch.arange(n) % g.c_dim] if g.c_dim else None
    return z, c


# ---------------------------------------------------------------------------------------
# Structure / state-dict layout


@pytest.mark.parametrize("arch", ["orig", "skip", "resnet"])
@pytest.mark.parametrize("c_dim", [0, 3])
def test_state_dict_layout(arch, c_dim):
    g = make_g(arch, c_dim, res=16)
    sd = g.state_dict()
    C = CMAX  # channel_base 512 // res capped at 32 -> 32 channels everywhere up to 16
    expect = {
        "mapping.fc0.weight": (W, Z + (W if c_dim else 0)),
        "mapping.fc0.bias": (W,),
        "mapping.fc1.weight": (W, W),
        "mapping.w_avg": (W,),
        "synthesis.b4.const": (C, 4, 4),
        "synthesis.b4.resample_filter": (4, 4),
        "synthesis.b4.conv1.weight": (C, C, 3, 3),
        "synthesis.b4.conv1.bias": (C,),
        "synthesis.b4.conv1.affine.weight": (C, W),
        "synthesis.b4.conv1.affine.bias": (C,),
        "synthesis.b4.conv1.noise_const": (4, 4),
        "synthesis.b4.conv1.noise_strength": (),
        "synthesis.b4.conv1.resample_filter": (4, 4),
        "synthesis.b8.conv0.weight": (C, C, 3, 3),
        "synthesis.b8.conv0.noise_const": (8, 8),
        "synthesis.b8.conv0.resample_filter": (4, 4),
        "synthesis.b8.resample_filter": (4, 4),
        "synthesis.b16.conv1.noise_const": (16, 16),
        "synthesis.b16.torgb.weight": (3, C, 1, 1),
        "synthesis.b16.torgb.bias": (3,),
        "synthesis.b16.torgb.affine.weight": (C, W),
    }
    if c_dim:
        expect["mapping.embed.weight"] = (W, c_dim)
        expect["mapping.embed.bias"] = (W,)
    else:
        assert not any(k.startswith("mapping.embed") for k in sd)
    if arch == "skip":
        expect["synthesis.b4.torgb.weight"] = (3, C, 1, 1)
        expect["synthesis.b8.torgb.weight"] = (3, C, 1, 1)
    else:
        assert "synthesis.b8.torgb.weight" not in sd
        assert "synthesis.b4.torgb.weight" not in sd
    if arch == "resnet":
        expect["synthesis.b8.skip.weight"] = (C, C, 1, 1)
        expect["synthesis.b8.skip.resample_filter"] = (4, 4)
        assert "synthesis.b8.skip.bias" not in sd
        assert "synthesis.b4.skip.weight" not in sd
    else:
        assert not any(".skip." in k for k in sd)
    for k, shape in expect.items():
        assert k in sd, k
        assert tuple(sd[k].shape) == shape, (k, tuple(sd[k].shape), shape)
    assert "mapping.fc2.weight" not in sd
    assert g.num_ws == 2 * 3  # b4: conv1 + torgb; b8, b16: 2 convs each (torgb shares)


def test_channel_counts_and_num_ws():
    g = Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=32, img_channels=1,
                  mapping_kwargs={"num_layers": 1},
                  synthesis_kwargs={"channel_base": 256, "channel_max": 32})
    sd = g.state_dict()
    assert tuple(sd["synthesis.b4.const"].shape) == (32, 4, 4)  # min(256 // 4, 32)
    assert tuple(sd["synthesis.b16.conv0.weight"].shape) == (16, 32, 3, 3)  # 256 // 16
    assert tuple(sd["synthesis.b32.conv0.weight"].shape) == (8, 16, 3, 3)
    assert tuple(sd["synthesis.b32.torgb.weight"].shape) == (1, 8, 1, 1)
    assert g.num_ws == 8  # 1 + 2 * 3 + 1
    # 1024 with NVIDIA's FFHQ config has 18 ws (construction only, meta device for speed).
    with torch.device("meta"):
        big = Generator(512, 0, 512, 1024, 3, synthesis_kwargs={"channel_base": 32768})
    assert big.num_ws == 18
    assert big.synthesis.b4.const.shape == (512, 4, 4)
    assert big.synthesis.b1024.torgb.weight.shape == (3, 32, 1, 1)


def test_stylegan3_release_flat_kwargs():
    g = Generator(z_dim=Z, c_dim=0, w_dim=W, img_resolution=8, img_channels=3,
                  mapping_kwargs={"num_layers": 2}, channel_base=256, channel_max=16,
                  num_fp16_res=4, conv_clamp=256, fused_modconv_default="inference_only")
    assert g.synthesis.b4.const.shape == (16, 4, 4)
    assert g.synthesis.b4.conv1.conv_clamp == 256
    assert g.kind == "stylegan2"


# ---------------------------------------------------------------------------------------
# Forward behaviour


@pytest.mark.parametrize("arch", ["orig", "skip", "resnet"])
@pytest.mark.parametrize("c_dim", [0, 3])
def test_forward_shape_and_determinism(arch, c_dim):
    g = make_g(arch, c_dim)
    z, c = inputs(g)
    with torch.no_grad():
        a = g(z, c, noise_mode="const")
        b = g(z, c, noise_mode="const")
        r1 = g(z, c, noise_mode="random")
        r2 = g(z, c, noise_mode="random")
        n = g(z, c, noise_mode="none")
    assert a.shape == (2, 3, 16, 16) and a.dtype == torch.float32
    assert torch.isfinite(a).all()
    assert torch.equal(a, b)
    assert not torch.allclose(r1, r2)
    assert not torch.allclose(a, n)
    with pytest.raises(FidlensError, match="noise"):
        g(z, c, noise_mode="bogus")


def test_conditional_label_matters():
    g = make_g("skip", c_dim=3)
    z, _ = inputs(g, n=1)
    with torch.no_grad():
        a = g(z, torch.tensor([[1.0, 0, 0]]))
        b = g(z, torch.tensor([[0, 1.0, 0]]))
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError):
        g.mapping(z, None)


def test_truncation():
    g = make_g("skip")
    z, c = inputs(g, n=3)
    with torch.no_grad():
        ws0 = g.mapping(z, c, truncation_psi=0)
        ws1 = g.mapping(z, c)
        wsc = g.mapping(z, c, truncation_psi=0.5, truncation_cutoff=2)
    assert ws0.shape == (3, g.num_ws, W)
    assert torch.allclose(ws0, g.mapping.w_avg.expand_as(ws0))
    # Without truncation every layer gets the same w.
    assert torch.equal(ws1, ws1[:, :1].expand_as(ws1))
    half = g.mapping.w_avg + 0.5 * (ws1 - g.mapping.w_avg)
    assert torch.allclose(wsc[:, :2], half[:, :2], atol=1e-6)
    assert torch.equal(wsc[:, 2:], ws1[:, 2:])


def test_mapping_lr_multiplier_convention():
    g = make_g("skip")
    fc = g.mapping.fc0
    assert math.isclose(fc.weight_gain, 0.01 / math.sqrt(Z))
    assert fc.bias_gain == 0.01
    x = torch.randn(4, Z)
    expected = torch.nn.functional.leaky_relu(
        x @ (fc.weight * 0.01 / math.sqrt(Z)).t() + fc.bias * 0.01, 0.2) * math.sqrt(2)
    assert torch.allclose(fc(x), expected, atol=1e-5)
    # z is normalised to unit second moment: scaling z changes nothing.
    z, c = inputs(g)
    with torch.no_grad():
        assert torch.allclose(g.mapping(z, c), g.mapping(5 * z, c), atol=1e-5)
    # The affine layers start at bias 1 (styles near one).
    fresh = Generator(Z, 0, W, 8, 3, synthesis_kwargs={"channel_base": 128, "channel_max": 8})
    assert torch.equal(fresh.synthesis.b4.conv1.affine.bias, torch.ones(8))


def test_w_avg_update_only_on_request():
    g = make_g("skip")
    z, c = inputs(g)
    before = g.mapping.w_avg.clone()
    with torch.no_grad():
        g.mapping(z, c)
    assert torch.equal(before, g.mapping.w_avg)
    with torch.no_grad():
        w = g.mapping(z, c, update_emas=True)[:, 0]
    assert torch.allclose(g.mapping.w_avg, w.mean(0).lerp(before, 0.995), atol=1e-6)


def test_gradients_flow_to_ws():
    g = make_g("resnet")
    z, c = inputs(g)
    ws = g.mapping(z, c).detach().requires_grad_(True)
    img = g.synthesis(ws, noise_mode="const")
    img.square().mean().backward()
    assert ws.grad is not None
    assert torch.isfinite(ws.grad).all()
    assert (ws.grad.abs().sum(dim=(0, 2)) > 0).all()  # every layer's w matters


@pytest.mark.slow
def test_load_state_dict_roundtrip():
    for arch, c_dim in [("skip", 0), ("resnet", 3), ("orig", 3)]:
        g1 = make_g(arch, c_dim, seed=0)
        g2 = make_g(arch, c_dim, seed=123)
        z, c = inputs(g1)
        with torch.no_grad():
            assert not torch.allclose(g1(z, c), g2(z, c))
            g2.load_state_dict(g1.state_dict(), strict=True)
            assert torch.equal(g1(z, c, noise_mode="const"), g2(z, c, noise_mode="const"))
            assert torch.equal(g1(z, c, truncation_psi=0.7), g2(z, c, truncation_psi=0.7))


def test_conv_clamp_honoured():
    g = make_g("skip", conv_clamp=0.05)
    z, c = inputs(g)
    with torch.no_grad():
        img = g(z, c)
    # The final image is the sum of torgb outputs, each clamped to +-0.05 (upsampling
    # of a clamped image with a normalised non-negative filter stays within the clamp).
    assert img.abs().max() <= 3 * 0.05 + 1e-6


# ---------------------------------------------------------------------------------------
# Operators against independent NumPy references


def np_upfirdn2d(x, f, up, down, pad, flip_filter=False, gain=1.0):
    """Direct-summation reference: zero-insert, pad (negative crops), convolve, decimate."""
    n, c, h, w = x.shape
    u = np.zeros((n, c, h * up, w * up))
    u[:, :, ::up, ::up] = x
    px0, px1, py0, py1 = pad
    u = np.pad(u, ((0, 0), (0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0))))
    u = u[:, :, max(-py0, 0): u.shape[2] - max(-py1, 0), max(-px0, 0): u.shape[3] - max(-px1, 0)]
    f2 = np.outer(f, f) if f.ndim == 1 else f
    f2 = f2 * gain
    k = f2 if flip_filter else f2[::-1, ::-1]  # correlation with flipped taps = convolution
    kh, kw = k.shape
    oh, ow = u.shape[2] - kh + 1, u.shape[3] - kw + 1
    out = np.zeros((n, c, oh, ow))
    for i in range(kh):
        for j in range(kw):
            out += k[i, j] * u[:, :, i: i + oh, j: j + ow]
    return out[:, :, ::down, ::down]


@pytest.mark.parametrize("separable", [False, True])
@pytest.mark.parametrize("flip", [False, True])
def test_upfirdn2d_matches_numpy(separable, flip):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 7))
    taps = np.array([1.0, 2.0, 5.0, 3.0])  # asymmetric, so flipping matters
    f1 = taps / taps.sum()
    f = torch.tensor(f1 if separable else np.outer(f1, f1), dtype=torch.float64)
    xt = torch.tensor(x)
    cases = [(2, 1, [2, 1, 2, 1], 4.0), (1, 2, [1, 1, 2, 0], 1.0),
             (2, 2, [1, 2, 0, 3], 2.0), (1, 1, [-1, 2, 3, -2], 1.0)]
    for up, down, pad, gain in cases:
        got = ops.upfirdn2d(xt, f, up=up, down=down, padding=pad, flip_filter=flip, gain=gain)
        ref = np_upfirdn2d(x, f1 if separable else np.outer(f1, f1), up, down, pad, flip, gain)
        assert got.shape == ref.shape, (up, down, pad)
        np.testing.assert_allclose(got.numpy(), ref, atol=1e-10)


def test_resample_helpers_shapes_and_dc_gain():
    f = ops.setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4) and math.isclose(float(f.sum()), 1.0, rel_tol=1e-6)
    assert ops.setup_filter([1] * 8).ndim == 1  # long filters stay separable
    x = torch.ones(1, 2, 8, 8)
    up = ops.upsample2d(x, f)
    down = ops.downsample2d(x, f)
    same = ops.filter2d(x, f)
    assert up.shape == (1, 2, 16, 16) and down.shape == (1, 2, 4, 4) and same.shape == x.shape
    # Constant input is preserved away from the borders.
    assert torch.allclose(up[..., 2:-2, 2:-2], torch.ones(1), atol=1e-6)
    assert torch.allclose(down[..., 1:-1, 1:-1], torch.ones(1), atol=1e-6)


def test_conv2d_resample_up_matches_explicit():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    f = ops.setup_filter([1, 3, 3, 1]).double()
    got = ops.conv2d_resample(x, w, f, up=2, padding=1, flip_weight=False)
    # Explicit: zero-insert + FIR (gain 4) with the combined padding, then true convolution.
    u = ops.upfirdn2d(x, f, up=2, padding=[3, 2, 3, 2], gain=4)
    ref = torch.nn.functional.conv2d(u, w.flip([2, 3]))
    assert got.shape == (2, 4, 12, 12)
    assert torch.allclose(got, ref, atol=1e-10)
    # Down path: FIR then strided correlation.
    got = ops.conv2d_resample(x, w, f, down=2, padding=1)
    ref = torch.nn.functional.conv2d(ops.upfirdn2d(x, f, padding=[2, 2, 2, 2]), w, stride=2)
    assert torch.allclose(got, ref, atol=1e-10)


def test_modulated_conv2d_matches_unfused_math():
    torch.manual_seed(0)
    x = torch.randn(3, 4, 5, 5, dtype=torch.float64)
    w = torch.randn(6, 4, 3, 3, dtype=torch.float64)
    s = torch.randn(3, 4, dtype=torch.float64)
    noise = torch.randn(3, 1, 5, 5, dtype=torch.float64)
    got = ops.modulated_conv2d(x, w, s, noise=noise, padding=1)
    d = ((w[None] * s[:, None, :, None, None]).square().sum([2, 3, 4]) + 1e-8).rsqrt()
    ref = torch.nn.functional.conv2d(x * s[:, :, None, None], w, padding=1) * d[:, :, None, None]
    assert torch.allclose(got, ref + noise, atol=1e-10)
    got = ops.modulated_conv2d(x, w, s, padding=1, demodulate=False)
    assert torch.allclose(got, torch.nn.functional.conv2d(x * s[:, :, None, None], w, padding=1),
                          atol=1e-10)


def test_bias_act():
    x = torch.tensor([[-2.0, -0.5, 0.5, 3.0]]).reshape(1, 4, 1, 1)
    b = torch.tensor([0.0, 1.0, -1.0, 0.5])
    y = ops.bias_act(x, b, act="lrelu")
    v = (x.flatten() + b).numpy()
    ref = np.where(v >= 0, v, 0.2 * v) * np.sqrt(2)
    np.testing.assert_allclose(y.flatten().numpy(), ref, rtol=1e-6)
    y = ops.bias_act(x, b, act="lrelu", gain=1.0, clamp=0.6)
    np.testing.assert_allclose(y.flatten().numpy(), np.clip(np.where(v >= 0, v, 0.2 * v), -.6, .6),
                               rtol=1e-6)
    y = ops.bias_act(x, b, act="relu")
    np.testing.assert_allclose(y.flatten().numpy(), np.maximum(v, 0) * np.sqrt(2), rtol=1e-6)
    assert torch.equal(ops.bias_act(x), x)
    # Bias along another dimension.
    y = ops.bias_act(torch.zeros(2, 3), torch.tensor([1.0, 2.0]), dim=0)
    assert torch.equal(y, torch.tensor([[1.0] * 3, [2.0] * 3]))
    with pytest.raises(ValueError):
        ops.bias_act(x, act="nope")
