"""Clean-room StyleGAN3: NVIDIA-compatible module tree, shapes and basic behaviour (tiny nets)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from fidlens.generators.stylegan3 import (
    Generator,
    SynthesisLayer,
    design_lowpass_filter,
    filtered_lrelu,
)

Z = 32


def tiny_kwargs(variant: str, img_resolution: int = 16, c_dim: int = 0) -> dict:
    """Flat kwargs like an official pickle's ``_init_kwargs``, scaled down."""
    radial = variant == "r"
    return {
        "z_dim": Z,
        "c_dim": c_dim,
        "w_dim": Z,
        "img_resolution": img_resolution,
        "img_channels": 3,
        "mapping_kwargs": {"num_layers": 2},
        "channel_base": 256 if radial else 128,
        "channel_max": 32 if radial else 16,
        "magnitude_ema_beta": 0.999,
        "conv_kernel": 1 if radial else 3,
        "use_radial_filters": radial,
        "num_layers": 4,
        "num_critical": 1,
        "margin_size": 2,
    }


def make(variant: str, seed: int = 0, **kw) -> Generator:
    torch.manual_seed(seed)
    G = Generator(**tiny_kwargs(variant, **kw)).eval()
    # Non-trivial buffers and biases so that the round-trip test means something.
    gen = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for name, t in G.named_parameters():
            if name.endswith(".bias") and "input.affine" not in name:
                t.add_(0.1 * torch.randn(t.shape, generator=gen))
        for name, t in G.named_buffers():
            if name.endswith("magnitude_ema"):
                t.fill_(float(torch.rand([], generator=gen)) + 0.5)
        G.mapping.w_avg.copy_(torch.randn(G.w_dim, generator=gen))
        # Freshly built, the input's affine weight is zero (w[0] is ignored); trained nets differ.
        G.synthesis.input.affine.weight.copy_(0.3 * torch.randn([4, G.w_dim], generator=gen))
    return G


@pytest.fixture(scope="module", autouse=True)
def _threads():
    torch.set_num_threads(2)


@pytest.fixture(scope="module")
def gen_t() -> Generator:
    return make("t")


@pytest.fixture(scope="module")
def gen_r() -> Generator:
    return make("r")


def z_batch(n: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.RandomState(seed).randn(n, Z)).float()


@pytest.mark.parametrize("variant", ["t", "r"])
def test_nvidia_key_names(variant: str, request) -> None:
    G = request.getfixturevalue(f"gen_{variant}")
    assert G.kind == f"stylegan3-{variant}"
    sd = G.state_dict()
    for key in [
        "mapping.fc0.weight",
        "mapping.fc0.bias",
        "mapping.fc1.weight",
        "mapping.fc1.bias",
        "mapping.w_avg",
        "synthesis.input.affine.weight",
        "synthesis.input.affine.bias",
        "synthesis.input.weight",
        "synthesis.input.transform",
        "synthesis.input.freqs",
        "synthesis.input.phases",
    ]:
        assert key in sd, key
    assert "mapping.embed.weight" not in sd
    assert sd["synthesis.input.transform"].shape == (3, 3)
    assert sd["synthesis.input.affine.weight"].shape == (4, Z)
    names = G.synthesis.layer_names
    assert len(names) == G.synthesis.num_layers + 1 == G.num_ws - 1
    for idx, name in enumerate(names):
        m = re.fullmatch(r"L(\d+)_(\d+)_(\d+)", name)
        assert m and int(m.group(1)) == idx
        layer = getattr(G.synthesis, name)
        assert int(m.group(2)) == layer.out_size[0] and int(m.group(3)) == layer.out_channels
        for suffix in ["affine.weight", "affine.bias", "weight", "bias", "magnitude_ema"]:
            assert f"synthesis.{name}.{suffix}" in sd
        assert sd[f"synthesis.{name}.magnitude_ema"].shape == ()
        k = 1 if (variant == "r" or idx == len(names) - 1) else 3
        assert sd[f"synthesis.{name}.weight"].shape == (
            layer.out_channels,
            layer.in_channels,
            k,
            k,
        )
    last = getattr(G.synthesis, names[-1])
    assert names[-1] == f"L{len(names) - 1}_16_3" and last.is_torgb
    # ToRGB resamples nothing: its filters are None and absent from the state dict.
    assert f"synthesis.{names[-1]}.up_filter" not in sd
    assert f"synthesis.{names[-1]}.down_filter" not in sd
    for name in names[:-1]:
        layer = getattr(G.synthesis, name)
        up, down = sd[f"synthesis.{name}.up_filter"], sd[f"synthesis.{name}.down_filter"]
        assert up.ndim == 1 and up.shape[0] == 6 * layer.up_factor
        if variant == "r" and not layer.is_critically_sampled:
            assert down.ndim == 2 and down.shape == (6 * layer.down_factor,) * 2  # radial
        else:
            assert down.ndim == 1 and down.shape[0] == 6 * layer.down_factor
    assert any(getattr(G.synthesis, n).down_radial for n in names) == (variant == "r")


def test_conditional_mapping_has_embed() -> None:
    torch.manual_seed(0)
    G = Generator(**tiny_kwargs("t", c_dim=5)).eval()
    sd = G.state_dict()
    assert sd["mapping.embed.weight"].shape == (Z, 5)
    assert sd["mapping.fc0.weight"].shape == (Z, 2 * Z)
    c = torch.eye(5)[:2]
    with torch.no_grad():
        img = G(z_batch(), c)
    assert img.shape == (2, 3, 16, 16) and torch.isfinite(img).all()


T_1024_NAMES = [
    "L0_36_512",
    "L1_36_512",
    "L2_52_512",
    "L3_52_512",
    "L4_84_512",
    "L5_148_512",
    "L6_148_512",
    "L7_276_323",
    "L8_276_203",
    "L9_532_128",
    "L10_1044_81",
    "L11_1044_51",
    "L12_1044_32",
    "L13_1024_32",
    "L14_1024_3",
]
R_1024_NAMES = [
    "L0_36_1024",
    "L1_36_1024",
    "L2_52_1024",
    "L3_52_1024",
    "L4_84_1024",
    "L5_148_1024",
    "L6_148_1024",
    "L7_276_645",
    "L8_276_406",
    "L9_532_256",
    "L10_1044_161",
    "L11_1044_102",
    "L12_1044_64",
    "L13_1024_64",
    "L14_1024_3",
]


@pytest.mark.parametrize("variant", ["t", "r"])
def test_official_1024_layout(variant: str) -> None:
    """The official 1024px T/R configurations give NVIDIA's layer names and buffer shapes."""
    radial = variant == "r"
    with torch.device("meta"):  # geometry only: no weight memory, no forward pass
        G = Generator(
            z_dim=512, c_dim=0, w_dim=512, img_resolution=1024, img_channels=3,
            mapping_kwargs={"num_layers": 2},
            channel_base=65536 if radial else 32768, channel_max=1024 if radial else 512,
            magnitude_ema_beta=0.5 ** (32 / 20000),
            conv_kernel=1 if radial else 3, use_radial_filters=radial,
        )  # fmt: skip
    assert G.num_ws == 16 and G.kind == f"stylegan3-{variant}"
    assert G.synthesis.layer_names == (R_1024_NAMES if radial else T_1024_NAMES)
    shapes = {k: tuple(v.shape) for k, v in G.state_dict().items()}
    assert shapes["synthesis.input.weight"] == (shapes["synthesis.input.freqs"][0],) * 2
    assert shapes["synthesis.input.freqs"] == (1024 if radial else 512, 2)
    l0 = "L0_36_1024" if radial else "L0_36_512"
    assert shapes[f"synthesis.{l0}.weight"][2:] == ((1, 1) if radial else (3, 3))
    for idx, name in enumerate(G.synthesis.layer_names[:-1]):
        down = shapes[f"synthesis.{name}.down_filter"]
        assert len(down) == (2 if radial and idx < 12 else 1)
        assert len(shapes[f"synthesis.{name}.up_filter"]) == 1
    l10 = "L10_1044_161" if radial else "L10_1044_81"
    assert shapes[f"synthesis.{l10}.up_filter"] == (24,)


@pytest.mark.parametrize("variant", ["t", "r"])
def test_output_shape_finite_deterministic(variant: str, request) -> None:
    G = request.getfixturevalue(f"gen_{variant}")
    z = z_batch(3)
    with torch.no_grad():
        a = G(z, None)
        b = G(z, None, noise_mode="random")  # noise_mode is ignored: no noise in StyleGAN3
    assert a.shape == (3, 3, 16, 16) and a.dtype == torch.float32
    assert torch.isfinite(a).all() and a.abs().max() > 0
    assert torch.equal(a, b)
    assert not torch.allclose(a[0], a[1])
    # Batch composition does not matter (up to float rounding).
    with torch.no_grad():
        single = G(z[1:2], None)
    torch.testing.assert_close(single[0], a[1], rtol=1e-4, atol=1e-5)


def test_larger_resolution_with_resampling() -> None:
    """32px: the sampling rate grows 16 → 32, exercising 4x upsampling layers."""
    G = make("t", img_resolution=32)
    ups = {getattr(G.synthesis, n).up_factor for n in G.synthesis.layer_names[:-1]}
    assert 4 in ups
    with torch.no_grad():
        img = G(z_batch(1), None)
    assert img.shape == (1, 3, 32, 32) and torch.isfinite(img).all()


def test_truncation_psi_zero_gives_w_avg(gen_t: Generator) -> None:
    with torch.no_grad():
        ws = gen_t.mapping(z_batch(), None, truncation_psi=0)
        assert ws.shape == (2, gen_t.num_ws, Z)
        torch.testing.assert_close(ws, gen_t.mapping.w_avg.expand_as(ws))
        ws_cut = gen_t.mapping(z_batch(), None, truncation_psi=0, truncation_cutoff=2)
        torch.testing.assert_close(ws_cut[:, :2], gen_t.mapping.w_avg.expand(2, 2, Z))
        assert not torch.allclose(ws_cut[:, 2:], gen_t.mapping.w_avg.expand(2, gen_t.num_ws - 2, Z))


@pytest.mark.parametrize("variant", ["t", "r"])
def test_gradients_reach_ws(variant: str, request) -> None:
    G = request.getfixturevalue(f"gen_{variant}")
    with torch.no_grad():
        ws = G.mapping(z_batch(1), None)
    ws = ws.clone().requires_grad_(True)
    G.synthesis(ws).square().sum().backward()
    assert ws.grad is not None and torch.isfinite(ws.grad).all()
    assert (ws.grad.abs().sum(dim=2) > 0).all()  # every per-layer w matters


@pytest.mark.parametrize("variant", ["t", "r"])
def test_state_dict_round_trip(variant: str, request) -> None:
    G = request.getfixturevalue(f"gen_{variant}")
    G2 = make(variant, seed=7)
    with torch.no_grad():
        assert not torch.equal(G(z_batch(), None), G2(z_batch(), None))
    G2.load_state_dict(G.state_dict(), strict=True)
    with torch.no_grad():
        assert torch.equal(G(z_batch(), None), G2(z_batch(), None))


def test_synthesis_kwargs_dict_equivalent() -> None:
    flat = tiny_kwargs("r")
    top = {
        k: flat.pop(k)
        for k in ["z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs"]
    }
    torch.manual_seed(3)
    A = Generator(**top, **flat)
    torch.manual_seed(3)
    B = Generator(**top, synthesis_kwargs=flat)
    assert B.kind == "stylegan3-r"
    sa, sb = A.state_dict(), B.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    with pytest.warns(UserWarning, match="unsupported"):
        Generator(**top, **flat, some_future_option=1)


@pytest.mark.parametrize("variant", ["t", "r"])
def test_transform_translation_shifts_image(variant: str) -> None:
    """Translating the Fourier input by one output pixel (the inverse map goes into `transform`,
    as NVIDIA's scripts do) moves the image by ~one pixel: alias-free translation equivariance."""
    G = make(variant, img_resolution=32)
    with torch.no_grad():
        ws = G.mapping(z_batch(1), None)
        base = G.synthesis(ws)
        shift = torch.eye(3)
        shift[0, 2] = -1 / 32  # content moves +1 px along x
        G.synthesis.input.transform.copy_(shift)
        moved = G.synthesis(ws)
    assert torch.isfinite(moved).all()
    m = 6
    changed = (moved - base)[..., m:-m, m:-m].abs().mean()
    equivariance_error = (moved[..., m:-m, m + 1 : -m + 1] - base[..., m:-m, m:-m]).abs().mean()
    assert changed > 1e-3
    assert equivariance_error < 0.25 * changed


def test_filters() -> None:
    f = design_lowpass_filter(12, cutoff=2.0, width=4.0, fs=32)
    assert f.shape == (12,) and abs(float(f.sum()) - 1) < 1e-5
    torch.testing.assert_close(f, f.flip(0))
    fr = design_lowpass_filter(12, cutoff=2.0, width=4.0, fs=32, radial=True)
    assert fr.shape == (12, 12) and abs(float(fr.sum()) - 1) < 1e-5
    torch.testing.assert_close(fr, fr.t())
    assert design_lowpass_filter(1, cutoff=2.0, width=4.0, fs=32) is None


def test_filtered_lrelu_identity_and_constant() -> None:
    x = torch.randn(2, 3, 8, 8)
    b = torch.randn(3)
    # No filters, slope 1, gain 1 → just bias + clamp.
    y = filtered_lrelu(x, b=b, gain=1, slope=1, clamp=0.5)
    torch.testing.assert_close(y, (x + b.reshape(1, 3, 1, 1)).clamp(-0.5, 0.5))
    # A constant positive input stays constant (×gain) away from the borders after 2x up/down.
    f = design_lowpass_filter(12, cutoff=4.0, width=8.0, fs=32)
    c = torch.ones(1, 1, 24, 24)
    layer_pad = [6, 5, 6, 5]
    y = filtered_lrelu(c, fu=f, fd=f, up=2, down=2, padding=layer_pad, gain=np.sqrt(2), slope=0.2)
    centre = y[..., 8:-8, 8:-8]
    torch.testing.assert_close(centre, torch.full_like(centre, np.sqrt(2)), rtol=1e-4, atol=1e-4)


def test_layer_padding_matches_sizes() -> None:
    layer = SynthesisLayer(
        w_dim=8, is_torgb=False, is_critically_sampled=False, use_fp16=False,
        in_channels=4, out_channels=4, in_size=36, out_size=36,
        in_sampling_rate=16, out_sampling_rate=16, in_cutoff=2, out_cutoff=2.5,
        in_half_width=6, out_half_width=5.5,
    )  # fmt: skip
    assert layer.up_factor == 2 and layer.down_factor == 2
    # (out-1)*2+1 - (36+2)*2 + 12+12-2 = 71-76+22 = 17 → lo = (17+2)//2 = 9, hi = 8.
    assert layer.padding == [9, 8, 9, 8]
    y = layer(torch.randn(1, 4, 36, 36), torch.randn(1, 8))
    assert y.shape == (1, 4, 36, 36)


@pytest.mark.parametrize(
    ("in_size", "out_size", "in_sr", "out_sr", "critical", "radial"),
    [
        (36, 36, 16, 16, False, False),
        (36, 52, 16, 32, False, False),  # 4x up, 2x down
        (36, 36, 16, 16, False, True),  # radial down filter
        (52, 16, 16, 16, True, False),  # margin cropped away
    ],
)
def test_layer_keeps_sample_grid_centred(
    in_size, out_size, in_sr, out_sr, critical, radial
) -> None:
    """Identity-weighted layer on a smooth positive image symmetric about the centre: the output
    stays symmetric (grids stay centred, i.e. the padding split is right) and ≈ √2 × input."""
    ch = 2
    layer = SynthesisLayer(
        w_dim=4, is_torgb=False, is_critically_sampled=critical, use_fp16=False,
        in_channels=ch, out_channels=ch, in_size=in_size, out_size=out_size,
        in_sampling_rate=in_sr, out_sampling_rate=out_sr, in_cutoff=2, out_cutoff=3,
        in_half_width=in_sr / 2 - 2, out_half_width=out_sr / 2 - 3,
        conv_kernel=1, use_radial_filters=radial,
    )  # fmt: skip
    with torch.no_grad():
        layer.weight.copy_(torch.eye(ch).reshape(ch, ch, 1, 1))
        layer.affine.weight.zero_()

    def image(n: int, sr: float) -> torch.Tensor:
        g = (torch.arange(n) - (n - 1) / 2) / sr
        yy, xx = torch.meshgrid(g, g, indexing="ij")
        return 1 + 0.5 * torch.cos(2 * np.pi * 0.1 * xx) * torch.cos(2 * np.pi * 0.07 * yy)

    x = image(in_size, in_sr).expand(1, ch, in_size, in_size)
    with torch.no_grad():
        y = layer(x, torch.zeros(1, 4))[0, 0, 6:-6, 6:-6]
    torch.testing.assert_close(y, y.flip(-1), rtol=0, atol=1e-5)
    torch.testing.assert_close(y, y.flip(0), rtol=0, atol=1e-5)
    ref = np.sqrt(2) * image(out_size, out_sr)[6:-6, 6:-6]
    torch.testing.assert_close(y, ref, rtol=0, atol=5e-3)
