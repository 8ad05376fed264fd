"""CLIP ViT image tower: weight loading, attention, preprocessing, config inference (tiny nets)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from fidlens.detectors.clip_encoder import (
    CLIP_MEAN,
    CLIP_STD,
    ClipImageEncoder,
    ClipVisionTransformer,
    ClipWeightsMissing,
    SelfAttention,
    clip_features,
    clip_preprocess,
    clip_vision_config,
    load_clip_encoder,
)
from fidlens.core.errors import AssetError

TINY = dict(input_resolution=32, patch_size=8, width=128, layers=2, heads=2, output_dim=16)  # heads = width // 64


def tiny_vit(seed: int = 0) -> ClipVisionTransformer:
    torch.manual_seed(seed)
    model = ClipVisionTransformer(**TINY).eval()
    with torch.no_grad():  # non-trivial biases and LayerNorm affines, so a misplaced tensor shows
        for name, p in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name or name.startswith(("ln_pre", "ln_post")):
                p.add_(0.1 * torch.randn_like(p))
    return model


class FakeTextTower(nn.Module):
    """Top-level tensors like OpenAI's text tower, named to collide with the image tower's."""

    def __init__(self):
        super().__init__()
        self.token_embedding = nn.Embedding(10, 24)
        self.positional_embedding = nn.Parameter(torch.randn(7, 24))
        self.transformer = nn.Module()
        self.transformer.resblocks = nn.ModuleList([nn.Module()])
        self.transformer.resblocks[0].attn = nn.MultiheadAttention(24, 2)
        self.ln_final = nn.LayerNorm(24)
        self.text_projection = nn.Parameter(torch.randn(24, 16))
        self.logit_scale = nn.Parameter(torch.ones([]))


class FullClip(nn.Module):
    def __init__(self, visual: ClipVisionTransformer):
        super().__init__()
        self.visual = visual
        text = FakeTextTower()
        for name, child in text.named_children():
            self.add_module(name, child)
        for name, param in text.named_parameters(recurse=False):
            self.register_parameter(name, param)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.visual(image)


def images(n: int = 3, h: int = 40, w: int = 48, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, h, w), dtype=torch.uint8, generator=gen)


def reference_forward(model: ClipVisionTransformer, x: torch.Tensor) -> torch.Tensor:
    """An independent forward in OpenAI's (L, N, D) layout using nn.MultiheadAttention."""
    sd = model.state_dict()
    w = model.width

    def ln(t, key):
        return F.layer_norm(t, (w,), sd[f"{key}.weight"], sd[f"{key}.bias"])

    x = F.conv2d(x, sd["conv1.weight"], stride=model.patch_size)
    x = x.reshape(x.shape[0], w, -1).permute(0, 2, 1)
    cls = sd["class_embedding"] + torch.zeros(x.shape[0], 1, w)
    x = torch.cat([cls, x], dim=1) + sd["positional_embedding"]
    x = ln(x, "ln_pre").permute(1, 0, 2)
    for i in range(model.layers):
        p = f"transformer.resblocks.{i}"
        mha = nn.MultiheadAttention(w, model.heads)
        mha.load_state_dict({k[len(p) + 6 :]: v for k, v in sd.items() if k.startswith(f"{p}.attn.")})
        h = ln(x, f"{p}.ln_1")
        x = x + mha(h, h, h, need_weights=False)[0]
        h = F.linear(ln(x, f"{p}.ln_2"), sd[f"{p}.mlp.c_fc.weight"], sd[f"{p}.mlp.c_fc.bias"])
        h = h * torch.sigmoid(1.702 * h)
        x = x + F.linear(h, sd[f"{p}.mlp.c_proj.weight"], sd[f"{p}.mlp.c_proj.bias"])
    return ln(x.permute(1, 0, 2)[:, 0, :], "ln_post") @ sd["proj"]


# --- network ------------------------------------------------------------------------------


@pytest.mark.parametrize("heads", [1, 2, 4])
def test_attention_matches_multihead_attention(heads):
    torch.manual_seed(heads)
    ours = SelfAttention(32, heads).eval()
    with torch.no_grad():
        ours.in_proj_bias.normal_()
        ours.out_proj.bias.normal_()
    ref = nn.MultiheadAttention(32, heads, batch_first=True).eval()
    assert set(ref.state_dict()) == set(ours.state_dict())
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(3, 9, 32)
    with torch.no_grad():
        expected = ref(x, x, x, need_weights=False)[0]
        torch.testing.assert_close(ours(x), expected, atol=1e-5, rtol=1e-5)


def test_forward_matches_independent_reference():
    model = ClipVisionTransformer(input_resolution=32, patch_size=8, width=64, layers=2, heads=2, output_dim=16)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference_forward(model, x), atol=1e-5, rtol=1e-5)


def test_layernorm_runs_in_float32_for_low_precision_inputs():
    model = tiny_vit()
    ln = model.ln_pre.bfloat16()
    x = (100 + torch.randn(4, 128)).bfloat16()  # large mean: bfloat16 statistics would be poor
    expected = F.layer_norm(x.float(), (128,), ln.weight.float(), ln.bias.float()).bfloat16()
    out = ln(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out, expected, atol=0, rtol=0)
    with torch.no_grad():
        x = torch.randn(2, 3, 32, 32)
        low = tiny_vit().bfloat16()(x.bfloat16())
        assert low.dtype == torch.bfloat16
        torch.testing.assert_close(low.float(), tiny_vit()(x), atol=0.1, rtol=0.1)


def test_full_vit_b32_shapes_and_inferred_config_on_meta():
    with torch.device("meta"):
        model = ClipVisionTransformer()
    sd = model.state_dict()
    assert sd["conv1.weight"].shape == (768, 3, 32, 32)
    assert sd["class_embedding"].shape == (768,)
    assert sd["positional_embedding"].shape == (50, 768)
    assert sd["transformer.resblocks.11.attn.in_proj_weight"].shape == (3 * 768, 768)
    assert sd["transformer.resblocks.11.mlp.c_fc.weight"].shape == (4 * 768, 768)
    assert sd["proj"].shape == (768, 512)
    assert "transformer.resblocks.12.ln_1.weight" not in sd
    assert "conv1.bias" not in sd
    assert clip_vision_config(sd) == dict(
        input_resolution=224, patch_size=32, width=768, layers=12, heads=12, output_dim=512
    )
    assert sum(t.numel() for t in sd.values()) == 87_849_216  # ViT-B/32 image tower


# --- weight files -------------------------------------------------------------------------


def _state_with_text(visual: ClipVisionTransformer) -> dict[str, torch.Tensor]:
    return FullClip(visual).state_dict()


def test_load_plain_state_dict_with_text_tower(tmp_path):
    model = tiny_vit()
    state = _state_with_text(model)
    assert "transformer.resblocks.0.attn.in_proj_weight" in state  # the text tower's
    assert "visual.transformer.resblocks.0.attn.in_proj_weight" in state
    path = tmp_path / "clip.pt"
    torch.save({k: v.half() if k.startswith("visual.") else v for k, v in state.items()}, path)
    encoder = load_clip_encoder(path)
    assert encoder.model.config() == model.config()
    assert encoder.weights_name == "clip.pt"
    assert len(encoder.weights_sha256) == 64
    # float16 storage widened to float32: equal to the half-rounded model
    expected = tiny_vit().half().float()
    with torch.no_grad():
        x = torch.randn(2, 3, 32, 32)
        torch.testing.assert_close(encoder.model(x), expected(x), atol=0, rtol=0)


def test_load_stripped_and_wrapped_state_dicts(tmp_path):
    model = tiny_vit()
    ref = ClipImageEncoder(model)
    imgs = images()
    expected = ref.encode(imgs)
    variants = {
        "stripped.pth": model.state_dict(),
        "openclip.bin": {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in _state_with_text(model).items()}},
    }
    for name, obj in variants.items():
        torch.save(obj, tmp_path / name)
        got = load_clip_encoder(tmp_path / name).encode(imgs)
        assert got.dtype == torch.float32 and got.shape == (3, 16)
        torch.testing.assert_close(got, expected, atol=0, rtol=0)


def test_load_torchscript_archive(tmp_path):
    model = tiny_vit()
    full = FullClip(model).eval()
    traced = torch.jit.trace(full, torch.randn(1, 3, 32, 32))
    path = tmp_path / "ViT-B-32.pt"
    traced.save(str(path))
    assert any(k.startswith("token_embedding") for k in torch.jit.load(str(path)).state_dict())
    imgs = images()
    torch.testing.assert_close(
        load_clip_encoder(path).encode(imgs), ClipImageEncoder(model).encode(imgs), atol=0, rtol=0
    )


def test_missing_file_message(tmp_path):
    path = tmp_path / "nope" / "ViT-B-32.pt"
    with pytest.raises(ClipWeightsMissing) as info:
        load_clip_encoder(path)
    assert str(info.value) == f"CLIP-FID skipped: no weights at {path}"
    assert isinstance(info.value, AssetError)
    with pytest.raises(ClipWeightsMissing, match=r"^CLIP-FID skipped: no weights at None$"):
        load_clip_encoder(None)


def test_wrong_shapes_and_keys_are_asset_errors(tmp_path):
    state = {f"visual.{k}": v for k, v in tiny_vit().state_dict().items()}
    bad = dict(state)
    bad["visual.transformer.resblocks.1.mlp.c_fc.weight"] = torch.zeros(100, 64)
    torch.save(bad, tmp_path / "shape.pt")
    with pytest.raises(AssetError, match=r"c_fc\.weight has shape \(100, 64\)") as info:
        load_clip_encoder(tmp_path / "shape.pt")
    assert not isinstance(info.value, ClipWeightsMissing)

    missing = {k: v for k, v in state.items() if "ln_post" not in k}
    torch.save(missing, tmp_path / "missing.pt")
    with pytest.raises(AssetError, match=r"missing.*ln_post"):
        load_clip_encoder(tmp_path / "missing.pt")

    resnet = {k: v for k, v in state.items() if k != "visual.class_embedding"}
    torch.save(resnet, tmp_path / "resnet.pt")
    with pytest.raises(AssetError, match="class_embedding"):
        load_clip_encoder(tmp_path / "resnet.pt")

    torch.save({"fc.weight": torch.zeros(3, 3)}, tmp_path / "other.pt")
    with pytest.raises(AssetError, match="not a CLIP ViT"):
        load_clip_encoder(tmp_path / "other.pt")

    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(AssetError, match="cannot read CLIP weights"):
        load_clip_encoder(tmp_path / "junk.pt")


def test_safetensors_optional(tmp_path, monkeypatch):
    path = tmp_path / "clip.safetensors"
    path.write_bytes(b"{}")
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    with pytest.raises(AssetError, match="'safetensors' package is not installed"):
        load_clip_encoder(path)


def test_safetensors_roundtrip(tmp_path):
    st = pytest.importorskip("safetensors.torch")
    model = tiny_vit()
    path = tmp_path / "open_clip_model.safetensors"
    st.save_file({k: v.contiguous() for k, v in _state_with_text(model).items()}, str(path))
    imgs = images()
    torch.testing.assert_close(load_clip_encoder(path).encode(imgs), ClipImageEncoder(model).encode(imgs))


# --- preprocessing ------------------------------------------------------------------------


def _norm(values, channel_axis=0):
    mean = np.array(CLIP_MEAN, dtype=np.float32)
    std = np.array(CLIP_STD, dtype=np.float32)
    return (np.asarray(values, dtype=np.float32) / 255.0 - mean) / std


def test_output_shape_and_grey_constant():
    x = clip_preprocess(torch.full((2, 3, 300, 260), 128, dtype=torch.uint8))
    assert x.shape == (2, 3, 224, 224) and x.dtype == torch.float32
    expected = _norm([128, 128, 128])  # ≈ (0.0763, 0.1689, 0.3399)
    for c in range(3):
        torch.testing.assert_close(x[:, c], torch.full((2, 224, 224), float(expected[c])), atol=1e-6, rtol=0)
    np.testing.assert_allclose(expected, [0.07634, 0.16890, 0.33995], atol=1e-4)


def test_greyscale_equals_repeated_rgb():
    grey = images(2, 50, 70)[:, :1]
    torch.testing.assert_close(clip_preprocess(grey), clip_preprocess(grey.repeat(1, 3, 1, 1)), atol=0, rtol=0)


def test_non_square_is_centre_cropped():
    img = np.zeros((50, 100, 3), dtype=np.uint8)  # 100 wide, 50 high
    img[:, :20, 0] = 255  # red strip at the left
    img[:, 80:, 2] = 255  # blue strip at the right
    x = clip_preprocess(torch.from_numpy(img).permute(2, 0, 1)[None])
    assert x.shape == (1, 3, 224, 224)
    black = torch.from_numpy(_norm([0, 0, 0])).view(3, 1, 1).expand(3, 224, 224)
    torch.testing.assert_close(x[0], black, atol=1e-6, rtol=0)  # the strips are cropped away
    # transposed: a tall image keeps its middle rows
    tall = clip_preprocess(torch.from_numpy(img.transpose(1, 0, 2).copy()).permute(2, 0, 1)[None])
    torch.testing.assert_close(tall[0], black, atol=1e-6, rtol=0)
    # without cropping (a square image) the strips are there
    sq = clip_preprocess(torch.from_numpy(np.ascontiguousarray(img[:, :50])).permute(2, 0, 1)[None])
    assert sq[0, 0, :, 0].max() > 1.0


def test_matches_reference_pil_pipeline():
    """torchvision's Resize(224, BICUBIC) + CenterCrop(224) on PIL, spelled out."""
    gen = np.random.default_rng(0)
    img = gen.integers(0, 256, (100, 333, 3), dtype=np.uint8)
    pil = Image.fromarray(img).resize((745, 224), Image.Resampling.BICUBIC)  # int(224·333/100)
    pil = pil.crop((260, 0, 484, 224))  # int(round((745 - 224) / 2)) = 260
    expected = _norm(np.asarray(pil)).transpose(2, 0, 1)
    got = clip_preprocess(torch.from_numpy(img).permute(2, 0, 1)[None])[0].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
    # a list of HWC arrays of mixed sizes gives the same per image
    mixed = clip_preprocess([img, img[:60, :60]])
    np.testing.assert_allclose(mixed[0].numpy(), expected, atol=1e-6, rtol=0)


def test_close_to_torch_antialiased_bicubic():
    """The documented alternative (torch bicubic, antialias) agrees to a few grey levels."""
    img = torch.from_numpy(np.array(Image.radial_gradient("L").resize((400, 300)))).expand(3, -1, -1)[None]
    ours = clip_preprocess(img.contiguous())
    t = F.interpolate(img.float(), size=(224, 298), mode="bicubic", antialias=True, align_corners=False)
    t = t.round().clamp(0, 255)[..., 37:261] / 255.0
    t = (t - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    assert (ours - t).abs().max() < 4 / 255 / min(CLIP_STD)


# --- batched features ---------------------------------------------------------------------


def test_clip_features_batches_and_mixed_sizes():
    encoder = ClipImageEncoder(tiny_vit())
    gen = np.random.default_rng(2)
    source = [gen.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(40, 40), (33, 50), (64, 32), (40, 40), (20, 21)]]
    feats = clip_features(source, encoder, batch_size=2, progress=False)
    assert feats.shape == (5, 16) and feats.dtype == np.float32
    one_by_one = np.concatenate([encoder.encode([im]).numpy() for im in source])
    np.testing.assert_allclose(feats, one_by_one, atol=1e-5, rtol=1e-5)
    assert clip_features([], encoder, progress=False).shape == (0, 16)
