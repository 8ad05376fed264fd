"""Loading NVIDIA-layout pickles of every kind safely, the demo generator, and generation by seed."""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO
from PIL import Image

from fidlens.cli.main import main as cli_main
from fidlens.core.errors import FidlensError
from fidlens.generators.generate import images_for_seeds, parse_seeds
from fidlens.generators.sampling import Sampling
from fidlens.generators import nvidia_pickle
from fidlens.generators.base import to_uint8
from fidlens.generators.load import load_generator
from fidlens.generators.nvidia_pickle import (
    GeneratorLoadError,
    load_nvidia_generator,
    save_nvidia_pickle,
)
from fidlens.generators.ppca import DEMO_LABEL, fit_ppca
from fidlens.generators.stylegan2 import Generator as StyleGAN2
from fidlens.generators.stylegan3 import Generator as StyleGAN3

Z = 16


def _randomize(G: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Non-trivial values everywhere (biases, noise strengths, w_avg), so a round trip means something."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in G.state_dict().items():
            if tensor.is_floating_point() and ("bias" in name or "noise_strength" in name or "w_avg" in name
                                               or "input.affine.weight" in name):
                tensor.add_(0.1 * torch.randn(tensor.shape, generator=gen))
    return G.eval()


# (kind, constructor, _init_kwargs as the pickles store them)
KINDS = {
    # StyleGAN2-ADA: classes in training.networks, synthesis kwargs nested
    "stylegan2-ada": (StyleGAN2, dict(z_dim=Z, c_dim=0, w_dim=Z, img_resolution=16, img_channels=3,
                                      mapping_kwargs={"num_layers": 2},
                                      synthesis_kwargs={"channel_base": 256, "channel_max": 16, "conv_clamp": 256,
                                                        "architecture": "skip", "num_fp16_res": 4})),
    # StyleGAN2 as shipped with the StyleGAN3 release (training.networks_stylegan2): flat kwargs, conditional
    "stylegan2": (StyleGAN2, dict(z_dim=Z, c_dim=3, w_dim=Z, img_resolution=16, img_channels=3,
                                  mapping_kwargs={"num_layers": 2}, channel_base=256, channel_max=16,
                                  architecture="resnet", conv_clamp=256)),
    "stylegan3-t": (StyleGAN3, dict(z_dim=Z, c_dim=0, w_dim=Z, img_resolution=16, img_channels=3,
                                    mapping_kwargs={"num_layers": 2}, channel_base=128, channel_max=16,
                                    conv_kernel=3, use_radial_filters=False, num_layers=4, num_critical=1,
                                    margin_size=2, magnitude_ema_beta=0.999)),
    "stylegan3-r": (StyleGAN3, dict(z_dim=Z, c_dim=0, w_dim=Z, img_resolution=16, img_channels=3,
                                    mapping_kwargs={"num_layers": 2}, channel_base=256, channel_max=32,
                                    conv_kernel=1, use_radial_filters=True, num_layers=4, num_critical=1,
                                    margin_size=2, magnitude_ema_beta=0.999)),
}


def _write(kind: str, path: Path, **extra) -> tuple[torch.nn.Module, torch.nn.Module]:
    cls, kwargs = KINDS[kind]
    torch.manual_seed(0)
    G, G_ema = _randomize(cls(**kwargs), 1), _randomize(cls(**kwargs), 2)
    save_nvidia_pickle(path, {"G": (G, kwargs), "G_ema": (G_ema, kwargs), "D": (torch.nn.Linear(2, 2), {})},
                       extra={"training_set_kwargs": {"path": "ffhq.zip"}, "augment_pipe": None, **extra})
    return G, G_ema


def _images(G, seeds=(0, 1)):
    c = torch.eye(G.c_dim)[:len(seeds)] if G.c_dim else None
    z = torch.from_numpy(np.concatenate([np.random.RandomState(s).randn(1, G.z_dim) for s in seeds])).float()
    with torch.no_grad():
        return G(z, c, noise_mode="const")


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(KINDS))
def test_pickles_of_every_kind_round_trip(kind, tmp_path):
    G, G_ema = _write(kind, tmp_path / f"{kind}.pkl")
    loaded = load_nvidia_generator(tmp_path / f"{kind}.pkl")
    assert type(loaded) is type(G_ema) and loaded.kind.startswith(kind.split("-ada")[0])
    assert "G_ema" in loaded.label
    torch.testing.assert_close(_images(loaded), _images(G_ema), rtol=0, atol=0)
    assert not torch.equal(_images(loaded), _images(G))  # G_ema by default, not G
    torch.testing.assert_close(_images(load_nvidia_generator(tmp_path / f"{kind}.pkl", which="G")), _images(G),
                               rtol=0, atol=0)
    # Loading imported nothing of NVIDIA's.
    assert not any(name.split(".")[0] in ("torch_utils", "dnnlib", "training") for name in sys.modules)


def test_embedded_module_source_is_never_executed(tmp_path, monkeypatch):
    marker = tmp_path / "executed"
    monkeypatch.setattr(nvidia_pickle, "_STAND_IN_SOURCE", f"open({str(marker)!r}, 'w').write('x')\n")
    _write("stylegan2-ada", tmp_path / "g.pkl")
    record = nvidia_pickle.read_pickle(tmp_path / "g.pkl")["G_ema"]
    assert "open(" in record.module_src  # the source is there, as in NVIDIA's files ...
    load_nvidia_generator(tmp_path / "g.pkl")
    assert not marker.exists()  # ... and it never ran


class _Evil:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_globals_outside_the_allow_list_are_never_called(tmp_path):
    marker = tmp_path / "pwned"
    _write("stylegan2-ada", tmp_path / "g.pkl", augment_pipe=_Evil(str(marker)))
    data = nvidia_pickle.read_pickle(tmp_path / "g.pkl")
    assert isinstance(data["augment_pipe"], nvidia_pickle.OpaqueObject)
    assert not marker.exists()
    load_nvidia_generator(tmp_path / "g.pkl")
    assert not marker.exists()


def test_bad_generator_files_are_clear_errors(tmp_path):
    with pytest.raises(GeneratorLoadError, match="not found"):
        load_nvidia_generator(tmp_path / "missing.pkl")
    (tmp_path / "junk.pkl").write_bytes(os.urandom(300))
    with pytest.raises(GeneratorLoadError, match="not a readable network pickle"):
        load_nvidia_generator(tmp_path / "junk.pkl")
    _write("stylegan3-t", tmp_path / "good.pkl")
    data = (tmp_path / "good.pkl").read_bytes()
    (tmp_path / "cut.pkl").write_bytes(data[: len(data) // 2])
    with pytest.raises(GeneratorLoadError, match="truncated"):
        load_nvidia_generator(tmp_path / "cut.pkl")
    with pytest.raises(GeneratorLoadError, match="no 'G_emma' network; it holds"):
        load_nvidia_generator(tmp_path / "good.pkl", which="G_emma")
    torch.save({"a": torch.zeros(1)}, tmp_path / "ckpt.pkl")
    with pytest.raises(GeneratorLoadError, match="zip archive"):
        load_nvidia_generator(tmp_path / "ckpt.pkl")


def test_unknown_class_and_missing_tensor_are_named(tmp_path):
    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 3)

    save_nvidia_pickle(tmp_path / "enc.pkl", {"G_ema": (Encoder(), {})})
    with pytest.raises(GeneratorLoadError, match="expected a 'Generator', found class 'Encoder'"):
        load_nvidia_generator(tmp_path / "enc.pkl")

    cls, kwargs = KINDS["stylegan2-ada"]
    G = cls(**kwargs)
    del G.mapping._buffers["w_avg"]
    save_nvidia_pickle(tmp_path / "partial.pkl", {"G_ema": (G, kwargs)})
    with pytest.raises(GeneratorLoadError, match=r"mapping\.w_avg"):
        load_nvidia_generator(tmp_path / "partial.pkl")


def test_cli_generate_writes_native_size_rgb_pngs(tmp_path):
    _, G_ema = _write("stylegan2-ada", tmp_path / "g.pkl")
    assert cli_main(["generate", "--network", str(tmp_path / "g.pkl"), "--seeds", "0-2,7", "--outdir",
                     str(tmp_path / "out"), "--device", "cpu"]) == 0
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["seed0000.png", "seed0001.png", "seed0002.png", "seed0007.png"]
    image = Image.open(tmp_path / "out" / "seed0007.png")
    assert image.mode == "RGB" and image.size == (16, 16)
    # NVIDIA's conventions: z = RandomState(seed).randn(1, z_dim); uint8 = clamp(x*127.5 + 128, 0, 255).
    expected = to_uint8(_images(G_ema, (7,)))[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(np.asarray(image), expected)


def test_truncation_and_class_labels_in_the_generation_api(tmp_path):
    _write("stylegan2", tmp_path / "c.pkl")
    G = load_generator(tmp_path / "c.pkl")
    with pytest.raises(FidlensError, match="conditional"):
        images_for_seeds(G, [0])
    a = images_for_seeds(G, [0, 1], sampling=Sampling(class_idx=1, truncation_psi=0.0))
    assert torch.equal(a[0], a[1])  # psi = 0: every seed (and class: w_avg is shared) gives the average image
    one, two = images_for_seeds(G, [0], sampling=Sampling(class_idx=1)), images_for_seeds(G, [0], sampling=Sampling(class_idx=2))
    assert not torch.equal(one, two)
    half = images_for_seeds(G, [0], sampling=Sampling(class_idx=1, truncation_psi=0.5))
    assert not torch.equal(half, one) and not torch.equal(half, a[:1])


def test_parse_seeds():
    assert parse_seeds("0-3,10") == [0, 1, 2, 3, 10]
    assert parse_seeds(" 5 ") == [5]
    for bad in ("a-b", "3-1", ""):
        with pytest.raises(FidlensError):
            parse_seeds(bad)


@pytest.fixture(scope="module")
def demo_generator(tmp_path_factory):
    faces = tmp_path_factory.mktemp("faces")
    for subject in (1, 2, 3, 4, 5):
        for path in sorted((REPO / "data" / "orl_faces" / f"s{subject}").glob("*.pgm")):
            Image.open(path).save(faces / f"s{subject}_{path.stem}.png")
    return fit_ppca(faces, z_dim=8, resolution=32)


def test_demo_generator_is_labelled_and_follows_the_interface(demo_generator, tmp_path):
    G = demo_generator
    assert "not a GAN" in G.label == DEMO_LABEL and G.kind == "ppca-demo"
    assert G.img_channels == 1 and G.num_ws == 1 and G.z_dim == 8  # greyscale faces give a greyscale model
    z = torch.from_numpy(np.random.RandomState(3).randn(4, 8)).float()
    ws = G.mapping(z)
    assert ws.shape == (4, 1, 8)
    assert torch.equal(G.mapping(z, truncation_psi=0.0), torch.zeros_like(ws))
    const = G.synthesis(ws, noise_mode="const")
    assert const.shape == (4, 1, 32, 32) and torch.equal(const, G.synthesis(ws, noise_mode="const"))
    assert not torch.equal(G.synthesis(ws, noise_mode="random"), G.synthesis(ws, noise_mode="random"))
    mean_face = G.synthesis(torch.zeros(1, 1, 8), noise_mode="none")
    assert torch.allclose(mean_face.flatten(), G.synthesis.mean.float(), atol=1e-6)
    G.save(tmp_path / "demo.pt")
    again = load_generator(tmp_path / "demo.pt")
    torch.testing.assert_close(again(z), G(z))


def test_demo_generator_fit_recovers_the_data_variance(demo_generator):
    """PPCA's ML fit: total model variance = retained scales² + (D − q) σ² = the data's total variance."""
    G = demo_generator
    model_var = float((G.mapping.scale.double() ** 2).sum()
                      + G.synthesis.noise_std.double() ** 2 * (G.synthesis.mean.numel() - G.z_dim)
                      + G.z_dim * G.synthesis.noise_std.double() ** 2)
    assert model_var > 0
    samples = G(torch.randn(4000, 8), noise_mode="random").flatten(1).double()
    np.testing.assert_allclose(samples.var(dim=0).sum().item(), model_var, rtol=0.05)


def test_demo_generator_needs_enough_images(tmp_path):
    from conftest import write_images

    write_images(tmp_path / "few", [np.zeros((8, 8, 3), np.uint8)] * 3)
    with pytest.raises(FidlensError, match="more than z_dim"):
        fit_ppca(tmp_path / "few", z_dim=8)
    (tmp_path / "bad.pt").write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(FidlensError):
        load_generator(tmp_path / "bad.pt")
