"""FID sensitivity heatmaps: the g-based map equals a full backward pass, the rank-1 update is exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import randomize_inception

from fidlens.core.errors import FidlensError, StatisticsError
from fidlens.metrics.frechet import frechet_distance, frechet_distance_torch, mean_and_covariance
from fidlens.studies.heatmap import FidSensitivity, class_caption, explain_source_images, render_overlay
from fidlens.detectors.inception import FidInceptionV3
from fidlens.metrics.stats import Statistics


def _stats(rng, n_features: int, shift: float = 0.0) -> tuple[Statistics, np.ndarray]:
    """Statistics of real-looking features: positive, correlated, 2048-d."""
    basis = rng.normal(size=(48, 2048)) * 0.3
    features = np.abs(rng.normal(size=(n_features, 48)) @ basis + shift + rng.normal(size=(n_features, 2048)) * 0.2)
    return Statistics.from_features(features), features


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(7)
    with pytest.warns(UserWarning):
        reference, _ = _stats(rng, 300)
        generated, gen_features = _stats(rng, 120, shift=0.1)
    image = torch.from_numpy(rng.integers(0, 256, size=(3, 48, 40), dtype=np.uint8))
    return reference, generated, gen_features, image


def _full_backward_cam(model: FidInceptionV3, reference: Statistics, generated: Statistics, image: torch.Tensor,
                       weighting: str) -> np.ndarray:
    """Independent route: hook mixed_10, back-propagate the Fréchet loss through the whole network."""
    store = {}

    def keep(module, inputs, output):
        output.retain_grad()
        store["A"] = output

    handle = model.layers.mixed_10.register_forward_hook(keep)
    try:
        pixels = image[None].float().requires_grad_(True)
        f = model.extract(pixels).pool3[0].double()
    finally:
        handle.remove()
    n = generated.num_images + 1
    mu_g, sigma_g = torch.from_numpy(generated.mu), torch.from_numpy(generated.sigma)
    mu = ((n - 1) / n) * mu_g + f / n
    sigma = ((n - 2) / (n - 1)) * sigma_g + torch.outer(f - mu_g, f - mu_g) / n
    loss = frechet_distance_torch(torch.from_numpy(reference.mu), torch.from_numpy(reference.sigma), mu, sigma)
    loss.backward()
    a, grad = store["A"][0].double(), store["A"].grad[0].double()
    weights = (grad**2).mean(dim=(1, 2)) if weighting == "squared" else grad.abs().mean(dim=(1, 2))
    assert pixels.grad is not None  # the backward really went through the whole network
    return torch.einsum("k,kij->ij", weights, a.detach()).numpy()


@pytest.mark.slow
@pytest.mark.parametrize("weighting", ["squared", "absolute"])
def test_gradient_map_equals_full_backward_through_mixed_10(random_inception, setup, weighting):
    reference, generated, _, image = setup
    ours = FidSensitivity(random_inception, reference, generated, weighting=weighting).explain(image).cam
    full = _full_backward_cam(random_inception, reference, generated, image, weighting)
    assert ours.shape == (8, 8) and np.ptp(full) > 0
    np.testing.assert_allclose(ours, full, rtol=2e-4, atol=1e-6 * np.abs(full).max())


@pytest.mark.slow
def test_rank_one_update_equals_recomputing_the_statistics(random_inception, setup):
    reference, generated, gen_features, image = setup
    sensitivity = FidSensitivity(random_inception, reference, generated)
    explanation = sensitivity.explain(image)
    with torch.inference_mode():
        f = random_inception(image[None]).double().numpy()
    with pytest.warns(UserWarning):
        mu, sigma = mean_and_covariance(np.concatenate([gen_features, f]))
    direct = frechet_distance(reference.mu, reference.sigma, mu, sigma)
    assert explanation.fid_with_image == pytest.approx(direct, rel=1e-10)


@pytest.mark.slow
def test_feature_gradient_matches_finite_differences(random_inception, setup):
    reference, generated, _, image = setup
    sensitivity = FidSensitivity(random_inception, reference, generated)
    with torch.inference_mode():
        f = random_inception(image[None])[0].double()
    _, grad = sensitivity.loss_and_gradient(f)
    direction = torch.from_numpy(np.random.default_rng(0).normal(size=2048))
    h = 1e-4
    plus, _ = sensitivity.loss_and_gradient(f + h * direction)
    minus, _ = sensitivity.loss_and_gradient(f - h * direction)
    assert float(grad @ direction) == pytest.approx((plus - minus) / (2 * h), rel=1e-5)


@pytest.mark.slow
def test_logits_give_top_classes_and_no_logits_say_so(random_inception, setup):
    reference, generated, _, image = setup
    with_logits = FidSensitivity(random_inception, reference, generated).explain(image)
    probs = [p for _, p in with_logits.top_classes]
    assert len(probs) == 10 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-9
    assert class_caption(with_logits.top_classes).startswith("Top-1: ImageNet class #")
    features_only = randomize_inception(FidInceptionV3(with_logits=False))
    without = FidSensitivity(features_only, reference, generated).explain(image)
    assert without.top_classes is None
    assert class_caption(without.top_classes) == "no class labels: detector has no logits"


def test_overlay_is_image_sized_and_an_all_zero_map_is_left_alone():
    image = np.full((30, 20, 3), 100, np.uint8)
    heat, overlay = render_overlay(np.zeros((8, 8)), image)
    assert heat.shape == overlay.shape == (30, 20, 3)
    assert np.allclose(heat, heat[0, 0])  # constant colour: the zero map was not stretched into noise
    cam = np.zeros((8, 8))
    cam[0, 0] = 5.0
    heat, overlay = render_overlay(cam, image)
    assert overlay.min() == 0.0 and overlay.max() == 1.0
    assert heat[0, 0].sum() > heat[-1, -1].sum()  # the hot corner is brightest (viridis: yellow > purple)


@pytest.mark.slow
def test_inputs_that_cannot_work_are_refused(random_inception, setup, tmp_path):
    reference, generated, _, _ = setup
    with pytest.raises(FidlensError, match="weighting"):
        FidSensitivity(random_inception, reference, generated, weighting="cubed")
    small = Statistics(mu=np.zeros(4), sigma=np.eye(4), meta={"num_images": 10})
    with pytest.raises(StatisticsError, match="dimensions differ"):
        FidSensitivity(random_inception, reference, small)
    population = Statistics(mu=generated.mu, sigma=generated.sigma, meta={"num_images": 120, "covariance": "population"})
    with pytest.raises(StatisticsError, match="unbiased"):
        FidSensitivity(random_inception, reference, population)
    from conftest import write_images

    folder = write_images(tmp_path / "imgs", [np.zeros((12, 12, 3), np.uint8)] * 2)
    with pytest.raises(FidlensError, match="out of range"):
        explain_source_images(FidSensitivity(random_inception, reference, generated), folder, [5])


@pytest.mark.slow
def test_figures_render_with_top10_bars_and_with_the_no_logits_note(random_inception, setup, tmp_path):
    from fidlens.studies.heatmap_figures import save_heatmap_figure, save_heatmap_grid

    reference, generated, _, image = setup
    explained = FidSensitivity(random_inception, reference, generated).explain(image)
    save_heatmap_figure(explained, tmp_path / "with.png", title="t", subtitle="s")
    features_only = randomize_inception(FidInceptionV3(with_logits=False))
    plain = FidSensitivity(features_only, reference, generated).explain(image)
    save_heatmap_figure(plain, tmp_path / "without.png", title="t", subtitle="s")
    save_heatmap_grid([plain, plain], ["a", "b"], 1, 2, tmp_path / "grid.png", title="t", subtitle="s")
    from PIL import Image

    with_bars, without = Image.open(tmp_path / "with.png"), Image.open(tmp_path / "without.png")
    assert with_bars.size[0] > without.size[0]  # the Top-10 panel makes the figure wider
    assert Image.open(tmp_path / "grid.png").size[0] > 0
