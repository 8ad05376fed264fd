"""The FID Inception network: parity with default_1.pt, the TF1 resize, weight layouts, logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fidlens.core.errors import AssetError
from fidlens.detectors.inception import FidInceptionV3, LogitsUnavailableError
from fidlens.detectors.inception_weights import LOGITS_WEIGHT_FILES, load_inception, tf_to_torchvision_names
from fidlens.detectors.resize import tf1_resize_bilinear


def numpy_tf1_resize(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Independent reference: TF1 resize_bilinear (align_corners=False), pixel by pixel, float32."""
    in_h, in_w = image.shape[:2]
    sy, sx = np.float32(in_h / out_h), np.float32(in_w / out_w)
    out = np.zeros((out_h, out_w, *image.shape[2:]), dtype=np.float32)
    img = image.astype(np.float32)
    for y in range(out_h):
        fy = np.float32(y) * sy
        y0 = int(np.floor(fy))
        y1 = min(y0 + 1, in_h - 1)
        dy = np.float32(fy - np.float32(y0))
        for x in range(out_w):
            fx = np.float32(x) * sx
            x0 = int(np.floor(fx))
            x1 = min(x0 + 1, in_w - 1)
            dx = np.float32(fx - np.float32(x0))
            top = img[y0, x0] + (img[y0, x1] - img[y0, x0]) * dx
            bottom = img[y1, x0] + (img[y1, x1] - img[y1, x0]) * dx
            out[y, x] = top + (bottom - top) * dy
    return out


@pytest.mark.parametrize("in_hw,out_hw", [((112, 92), (299, 299)), ((64, 40), (29, 37)), ((7, 300), (299, 299))])
def test_resize_matches_numpy_tf1_formula(in_hw, out_hw, rng):
    image = rng.integers(0, 256, size=(*in_hw, 3), dtype=np.uint8)
    ours = tf1_resize_bilinear(torch.from_numpy(image).permute(2, 0, 1)[None].float(), out_hw)[0]
    reference = numpy_tf1_resize(image, *out_hw)
    np.testing.assert_allclose(ours.permute(1, 2, 0).numpy(), reference, atol=1e-4, rtol=0)


def test_resize_is_not_half_pixel_bilinear(rng):
    """Guard against silently using torch's (half-pixel) bilinear, which gives other FIDs."""
    image = torch.from_numpy(rng.integers(0, 256, size=(1, 3, 50, 60)).astype(np.float32))
    ours = tf1_resize_bilinear(image, (299, 299))
    torch_bilinear = torch.nn.functional.interpolate(image, size=(299, 299), mode="bilinear", align_corners=False)
    assert (ours - torch_bilinear).abs().max() > 1.0
    # First output pixel samples the first input pixel exactly (source coordinate 0).
    assert torch.equal(ours[..., 0, 0], image[..., 0, 0])


def test_resize_identity_and_gradient():
    x = torch.rand(2, 3, 299, 299, dtype=torch.float64, requires_grad=True)
    assert tf1_resize_bilinear(x, (299, 299)) is x
    y = torch.rand(1, 3, 20, 30, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: tf1_resize_bilinear(t, (9, 13)), (y,))


@pytest.mark.slow
def test_pool3_parity_with_default_1_torchscript(default_weights):
    """Our module vs the TorchScript file run as it is, on the same normalised input."""
    torch.manual_seed(0)
    ours = load_inception(default_weights)
    scripted = torch.jit.load(str(default_weights), map_location="cpu").eval()
    images = torch.randint(0, 256, (3, 3, 112, 92), dtype=torch.uint8)
    x = FidInceptionV3.normalize(images)
    with torch.inference_mode():
        reference = scripted(x)
        got = ours.forward_normalized(x).pool3
    assert got.shape == (3, 2048)
    assert (got - reference).abs().max().item() <= 1e-4
    assert reference.abs().max().item() > 0.1  # features are not trivially zero


@pytest.mark.slow
def test_default_weights_have_no_logits_and_say_which_files_do(default_weights):
    model = load_inception(default_weights)
    assert not model.has_logits
    with pytest.raises(LogitsUnavailableError) as info:
        model.extract(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), want_logits=True)
    for name in LOGITS_WEIGHT_FILES:
        assert name in str(info.value)


def test_mixed_10_map_pools_to_pool3_and_logits_shape(random_inception):
    images = torch.randint(0, 256, (2, 3, 64, 48), dtype=torch.uint8)
    with torch.inference_mode():
        out = random_inception.extract(images, want_map=True, want_logits=True)
    assert out.mixed_10.shape == (2, 2048, 8, 8)
    assert out.logits.shape == (2, 1008)
    torch.testing.assert_close(out.mixed_10.mean(dim=(2, 3)), out.pool3)


def test_greyscale_batch_equals_repeated_rgb(random_inception):
    grey = torch.randint(0, 256, (1, 1, 40, 40), dtype=torch.uint8)
    with torch.inference_mode():
        a = random_inception(grey)
        b = random_inception(grey.repeat(1, 3, 1, 1))
    torch.testing.assert_close(a, b)


@pytest.mark.slow
def test_gradients_reach_the_pixels(random_inception):
    images = (torch.rand(1, 3, 40, 40) * 255).requires_grad_(True)
    random_inception.extract(images).pool3.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


@pytest.mark.slow
def test_pytorch_fid_layout_loads_to_identical_outputs(random_inception, tmp_path):
    """A state dict in pytorch-fid's torchvision naming (with BN gamma) maps onto our graph."""
    state = tf_to_torchvision_names(random_inception.state_dict())
    assert "Mixed_7c.branch3x3dbl_3b.bn.running_var" in state and "fc.weight" in state
    state["Conv2d_1a_3x3.bn.num_batches_tracked"] = torch.tensor(0)
    path = tmp_path / "pytorch-fid-layout.pth"  # not the published name: that one must hash to its pin
    torch.save(state, path)
    loaded = load_inception(path)
    assert loaded.has_logits and loaded.weights_name == path.name
    images = torch.randint(0, 256, (2, 3, 50, 50), dtype=torch.uint8)
    with torch.inference_mode():
        a = random_inception.extract(images, want_logits=True)
        b = loaded.extract(images, want_logits=True)
    torch.testing.assert_close(a.pool3, b.pool3, rtol=0, atol=0)
    torch.testing.assert_close(a.logits, b.logits, rtol=0, atol=0)


class _NvidiaLayout(torch.nn.Module):
    """A TorchScript-able module with NVIDIA's top-level names: ``layers`` and ``output``."""

    def __init__(self, model: FidInceptionV3):
        super().__init__()
        self.layers = model.layers
        self.output = model.output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.layers(x).mean(dim=(2, 3)))


@pytest.mark.slow
def test_torchscript_with_output_layer_loads_logits(random_inception, tmp_path):
    scripted = torch.jit.trace(_NvidiaLayout(random_inception), torch.zeros(1, 3, 299, 299))
    path = tmp_path / "nvidia-layout.pt"
    scripted.save(str(path))
    loaded = load_inception(path)
    assert loaded.has_logits
    images = torch.randint(0, 256, (1, 3, 30, 30), dtype=torch.uint8)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.extract(images, want_logits=True).logits,
                                   random_inception.extract(images, want_logits=True).logits, rtol=0, atol=0)


def test_bad_weight_files_are_clear_errors(tmp_path, random_inception):
    missing = tmp_path / "nothing.pt"
    with pytest.raises(AssetError, match="not found"):
        load_inception(missing)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(AssetError, match="not a PyTorch weights file"):
        load_inception(junk)
    good = tmp_path / "good.pth"
    torch.save(tf_to_torchvision_names(random_inception.state_dict()), good)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(AssetError):
        load_inception(truncated)
    with pytest.raises(AssetError, match="sha256"):
        load_inception(good, verify_sha256="0" * 64)
    partial = {k: v for k, v in tf_to_torchvision_names(random_inception.state_dict()).items() if "Mixed_7c" not in k}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(AssetError, match="missing"):
        load_inception(tmp_path / "partial.pth")
