"""Shared fixtures: real default weights when present, small random networks otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from fidlens.assets.store import default_inception_path
from fidlens.detectors.inception import FidInceptionV3

REPO = Path(__file__).resolve().parents[1]
ORL = REPO / "data" / "orl_faces"
SG3_SAMPLES = REPO / "data" / "stylegan3_t_ffhqu_256_samples"


@pytest.fixture(scope="session")
def default_weights() -> Path:
    """default_1.pt from the cache; `make test` fetches it. CI sets FIDLENS_REQUIRE_WEIGHTS=1."""
    path = default_inception_path()
    if not path.is_file():
        if os.environ.get("FIDLENS_REQUIRE_WEIGHTS") == "1":
            pytest.fail(f"default_1.pt missing at {path}; run `fidlens fetch-inception`")
        pytest.skip(f"default_1.pt not fetched (run `fidlens fetch-inception`); looked at {path}")
    return path


def randomize_inception(model: FidInceptionV3, seed: int = 0) -> FidInceptionV3:
    """Fill every tensor with scale-preserving random values (gamma too, so its handling is tested)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("weight") and tensor.ndim == 4:
                fan_in = tensor[0].numel()
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
            elif name.endswith((".var", ".gamma")):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
            elif name.startswith("output.weight"):
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.02)
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.1)
    return model


@pytest.fixture(scope="session")
def random_inception() -> FidInceptionV3:
    torch.set_num_threads(2)
    return randomize_inception(FidInceptionV3(with_logits=True))


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def write_images(folder: Path, images: list[np.ndarray], prefix: str = "img") -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{prefix}{i:03d}.png")
    return folder
