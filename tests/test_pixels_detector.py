"""The `pixels` detector: downsampled grey pixels, an honest offline control feature space (no network)."""

from __future__ import annotations

import numpy as np
import pytest
from bad_input_harness import run_cli
from conftest import write_images

from fidlens.core.errors import FidlensError
from fidlens.detectors.pixels import grey_pixels
from fidlens.detectors.registry import available_detectors, load_detector


def test_area_average_of_grey_matches_block_means(rng):
    image = rng.integers(0, 256, size=(3, 8, 12), dtype=np.uint8)
    grey = 0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2]
    blocks = grey.reshape(4, 2, 4, 3).mean(axis=(1, 3)) / 255.0  # 8x12 → 4x4: exact 2x3 blocks
    np.testing.assert_allclose(grey_pixels(image, 4), blocks.ravel(), rtol=1e-12)


def test_fractional_areas_weigh_partial_pixels():
    image = np.arange(9, dtype=np.uint8).reshape(1, 3, 3) * 10  # 3x3 → 2x2: each output covers 1.5 x 1.5 pixels
    values = grey_pixels(image, 2).reshape(2, 2) * 255.0
    x = np.arange(9.0).reshape(3, 3) * 10
    weights = np.array([[1.0, 0.5, 0.0], [0.0, 0.5, 1.0]]) / 1.5
    np.testing.assert_allclose(values, weights @ x @ weights.T, rtol=1e-12)


def test_registered_and_named_by_its_size():
    assert "pixels" in available_detectors()
    detector = load_detector({"name": "pixels", "weights": "8"}, device="cpu")
    assert detector.feature_dim == 64 and detector.weights_name == "pixels-grey-8x8"
    assert detector.weights_sha256 != load_detector({"name": "pixels"}, device="cpu").weights_sha256
    with pytest.raises(FidlensError, match="from 2 to 64"):
        load_detector({"name": "pixels", "weights": "100"}, device="cpu")


def test_fid_in_pixel_space_from_the_cli(tmp_path, rng):
    a = write_images(tmp_path / "a", [rng.integers(0, 120, (20, 20, 3), dtype=np.uint8) for _ in range(12)])
    b = write_images(tmp_path / "b", [rng.integers(100, 255, (20, 20, 3), dtype=np.uint8) for _ in range(12)])
    same = run_cli(["fid", a, a, "--detector", "pixels", "--no-cache"])
    apart = run_cli(["fid", a, b, "--detector", "pixels", "--no-cache"])
    assert same.code == 0 and apart.code == 0, apart.stderr
    assert abs(float(same.stdout.split()[1])) < 1e-6 < float(apart.stdout.split()[1])
